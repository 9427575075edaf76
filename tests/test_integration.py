"""Integration with real peers and real launchers (SPEC 4, 5, 7, 9, 10).

Every server here is started by the test on 127.0.0.1 and a free port, in
its own process group, and stopped (with every process it started) when
the test ends; every test directory is removed. The clients are the real
ones a user has: swaks, Python's smtplib, Postfix's smtp-source, and a raw
socket for BDAT with binary data. The launchers are the three the manual
documents: systemd-socket-activate, tcpserver and openbsd-inetd.

POSTMASTER names the binary under test (tests/run-suites sets it to the
normal or the sanitizer build); every launcher's output is searched for
sanitizer reports when it stops.
"""
import email.generator
import email.message
import glob
import io
import os
import pwd
import re
import shlex
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time

import pytest
from pmtest import POSTMASTER, ROOT, tool, no_sanitizer_report, remove_tree, free_port, listening, descendants, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
# ------------------------------------------------------------------ #
# Directories, configurations, ports, processes                      #


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-int-")
    os.chmod(d, 0o1777)  # the session runs as nobody when we are root
    yield d
    remove_tree(d)


def write_cf(tmp, text, name="postmaster.cf"):
    """Writes a configuration (@DIR@ = tmp) and checks that it is valid."""
    text = text.replace("@DIR@", tmp)
    if ROOT:
        assert "[core]\n" in text
        text = text.replace("[core]\n", "[core]\nuser-id = nobody\n", 1)
    if "spool-directory" not in text and "[core]\n" in text:
        spool = os.path.join(tmp, "spool")
        os.makedirs(spool, exist_ok=True)
        os.chmod(spool, 0o1777)
        text = text.replace("[core]\n", "[core]\nspool-directory = %s\n" % spool, 1)
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([POSTMASTER, "--config=" + path, "--check"],
                       capture_output=True, text=True, errors="replace")
    assert r.returncode == 0, "--check: " + r.stdout + r.stderr
    no_sanitizer_report(r.stdout + r.stderr, "--check")
    return path


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Launcher:
    """A launcher (or tools/demo) in its own process group."""

    def __init__(self, argv, tmp, port, name, cwd=None, timeout=10):
        self.argv = argv
        self.port = port
        self.out_path = os.path.join(tmp, name + ".out")
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=cwd)
        try:
            deadline = time.monotonic() + timeout
            while not listening(port):
                if self.proc.poll() is not None:
                    raise AssertionError("%s exited with %s:\n%s" % (
                        argv[0], self.proc.returncode, self.output()))
                if time.monotonic() > deadline:
                    raise AssertionError("%s does not listen on port %d:\n%s"
                                         % (argv[0], port, self.output()))
                time.sleep(0.01)
        except BaseException:
            self.stop()
            raise

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def session_log(self, client_port, timeout=10):
        """The log lines of the session of the client at client_port, once
        it has ended."""
        def find():
            text = self.output()
            m = re.search(r"^sid=(\w+) event=connect client=127\.0\.0\.1 "
                          r"port=%d\b" % client_port, text, re.M)
            if not m or not re.search(r"^sid=%s event=disconnect" % m[1],
                                      text, re.M):
                return None
            return [l for l in text.splitlines()
                    if l.startswith("sid=%s " % m[1])]
        return wait_for(find, timeout, "the log of the session from port %d"
                        % client_port)

    def stop(self):
        pids = [self.proc.pid] + descendants(self.proc.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                continue
            deadline = time.monotonic() + 3
            while any(alive(p) for p in pids[1:]) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not any(alive(p) for p in pids[1:]):
                break
        self.out.close()
        assert not listening(self.port), "port %d still open" % self.port


@pytest.fixture
def launch(tmp):
    """launch(kind, cf, port=None) starts POSTMASTER under a launcher."""
    started = []

    def start(kind, cf, port=None, inetd_proto="tcp"):
        port = port or free_port()
        if kind == "systemd":
            argv = [tool("systemd-socket-activate"), "-l", "127.0.0.1:%d" % port,
                    "-a", POSTMASTER, "--config=" + cf]
        elif kind == "tcpserver":
            argv = [tool("tcpserver"), "-HRl0", "127.0.0.1", str(port),
                    POSTMASTER, "--config=" + cf]
        elif kind == "inetd":
            conf = os.path.join(tmp, "inetd.conf")
            with open(conf, "w") as f:
                f.write(inetd_line(port, cf, inetd_proto) + "\n")
            argv = [tool("inetd"), "-d", conf]
        else:
            raise ValueError(kind)
        launcher = Launcher(argv, tmp, port, "%s-%d" % (kind, len(started)))
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop()
    for launcher in started:
        no_sanitizer_report(launcher.output(), launcher.argv[0])


def inetd_line(port, cf, proto="tcp"):
    """The inetd.conf line that the manual documents."""
    user = "root" if ROOT else pwd_name()
    return "127.0.0.1:%d stream %s %s %s %s postmaster --config=%s" % (
        port, proto, documented_inetd_wait(), user, POSTMASTER, cf)


def documented_inetd_wait():
    """The wait/nowait field of postmaster(8)'s inetd.conf line."""
    with open(os.path.join(TOP, "man", "postmaster.8")) as f:
        m = re.search(r"^smtp stream tcp (nowait\S*) ", f.read(), re.M)
    assert m, "postmaster(8) has no inetd.conf line"
    return m[1]


def pwd_name():
    return pwd.getpwuid(os.geteuid()).pw_name


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def maildir_files(path, sub="new"):
    return sorted(glob.glob(os.path.join(path, sub, "*")))


def all_files(path):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(path)
                  for f in files)


def one_message(maildir):
    files = maildir_files(maildir)
    assert len(files) == 1, "%s/new holds %r" % (maildir, files)
    assert maildir_files(maildir, "tmp") == []
    with open(files[0], "rb") as f:
        return f.read()


def split_added(data, eol=b"\n"):
    """The headers postmaster added on top (Return-Path, Delivered-To,
    Received with its continuation lines) as one text, and the rest."""
    pos, names = 0, []
    for want in (b"Return-Path:", b"Delivered-To:", b"Received:"):
        if data.startswith(want, pos):
            names.append(want[:-1].decode())
            pos = data.index(eol, pos) + len(eol)
            while data.startswith(b"\t", pos):
                pos = data.index(eol, pos) + len(eol)
    return names, data[:pos], data[pos:]


def swaks(*args, timeout=60, env=None):
    r = subprocess.run([tool("swaks"), "--timeout", "20", *args],
                       capture_output=True, text=True, errors="replace",
                       timeout=timeout, env=env)
    no_sanitizer_report(r.stdout + r.stderr, "swaks")
    return r


def flatten(msg, utf8=False):
    """What smtplib.send_message stores, with LF line endings."""
    b = io.BytesIO()
    policy = msg.policy.clone(utf8=True) if utf8 else None
    g = email.generator.BytesGenerator(b, policy=policy) if policy else \
        email.generator.BytesGenerator(b)
    g.flatten(msg, linesep="\r\n")
    data = b.getvalue()
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data.replace(b"\r\n", b"\n")


class Client:
    """A raw SMTP client: for BDAT with binary data and for hanging up."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.port = self.sock.getsockname()[1]
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise AssertionError("connection closed after %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return lines

    def cmd(self, line, expect):
        self.sock.sendall(line + b"\r\n")
        got = self.reply()
        assert got[-1].startswith(expect), "%r: %r" % (line, got)
        return got

    def start(self, rcpt=b"joe@example.net", body=b""):
        assert self.reply()[0].startswith("220 ")
        self.cmd(b"EHLO client.example", "250 ")
        self.cmd(b"MAIL FROM:<a@b.example>" + body, "250 2.1.0")
        self.cmd(b"RCPT TO:<" + rcpt + b">", "250 2.1.5")

    def close(self):
        self.sock.close()


def send_binary(port, payload, rcpt=b"joe@example.net", sizes=(1, 7, 300)):
    """Sends payload with BODY=BINARYMIME in BDAT chunks of varied sizes,
    then BDAT 0 LAST; returns the final reply."""
    c = Client(port)
    try:
        c.start(rcpt, b" BODY=BINARYMIME")
        pos, i = 0, 0
        while pos < len(payload):
            n = sizes[i % len(sizes)] if i < 3 * len(sizes) else len(payload) - pos
            chunk = payload[pos:pos + n]
            c.sock.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
            got = c.reply()
            assert got == ["250 2.0.0 %d octets received" % len(chunk)], got
            pos += n
            i += 1
        c.sock.sendall(b"BDAT 0 LAST\r\n")
        final = c.reply()
        c.cmd(b"QUIT", "221 2.0.0")
        return final
    finally:
        c.close()


# Arbitrary bytes: NUL, lone CR, lone LF, 0xFF, a CRLF.CRLF that is not an
# end, a line far longer than 1000 octets, and no final line ending.
BINARY = (b"Subject: binary\r\nMIME-Version: 1.0\r\n\r\n" + bytes(range(256)) +
          b"\r\n.\r\n" + b"lone\rCR lone\nLF\x00NUL\xff\xfe" + b"\n.\n" +
          b"y" * 3000 + b"\r\r\n\n." + bytes(range(255, -1, -1)))


# ------------------------------------------------------------------ #
# swaks over a pipe and over each launcher                           #

MAILDIR_CF = """\
[core]
hostname = mail.example.net
logger = stderr
[route]
@example.net @DIR@/Maildir/
"""


def test_swaks_pipe(tmp):
    cf = write_cf(tmp, MAILDIR_CF)
    r = swaks("--pipe", "%s --config=%s" % (shlex.quote(POSTMASTER), shlex.quote(cf)),
              "--from", "a@b.example", "--to", "joe@example.net",
              "--header", "Subject: over a pipe", "--body", "Hello, pipe.")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 mail.example.net ESMTP postmaster" in r.stdout
    assert "<-  250 2.0.0 delivered to 1 Maildir" in r.stdout
    names, added, rest = split_added(one_message(tmp + "/Maildir"))
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert added.startswith(b"Return-Path: <a@b.example>\nDelivered-To: "
                            b"joe@example.net\nReceived: from ")
    assert b" (local)\n\tby mail.example.net (postmaster) with ESMTP id " in added
    assert b"\n\tfor <joe@example.net>; " in added
    assert b"\nSubject: over a pipe\n" in b"\n" + rest
    assert rest.endswith(b"\n\nHello, pipe.\n\n\n")  # swaks adds two CRLF


def two_listeners_cf(tmp, port, logger="stderr"):
    """Two [smtpd] sections: the one whose listen-port is the launcher's
    must serve (SPEC 4)."""
    return write_cf(tmp, """\
[core]
hostname = mail.example.net
logger = %s
[logfile "file"]
file = @DIR@/pm.log
[smtpd "right.example"]
listen-port = 127.0.0.1:%d
[smtpd "wrong.example"]
listen-port = 127.0.0.1:%d
[route]
@example.net @DIR@/Maildir/
""" % (logger, port, port + 1 if port < 65535 else port - 1))


def check_tcp_delivery(tmp, r, log):
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 right.example ESMTP postmaster" in r.stdout
    assert "<-  250 2.0.0 delivered to 1 Maildir" in r.stdout
    names, added, rest = split_added(one_message(tmp + "/Maildir"))
    assert names == ["Return-Path", "Delivered-To", "Received"]
    m = re.search(rb"\nReceived: from client\.example \(\[127\.0\.0\.1\]\)\n"
                  rb"\tby right\.example \(postmaster\) with ESMTP id (\w+)\n"
                  rb"\tfor <joe@example\.net>; ", added)
    assert m, added
    sid = m[1].decode()
    assert re.search(r"^sid=%s event=connect client=127\.0\.0\.1 port=\d+ "
                     r"smtpd=right\.example$" % sid, log, re.M), log
    assert re.search(r"^sid=%s from=<a@b\.example> to=<joe@example\.net> "
                     r"target=\"maildir [^\"]+\" status=sent dsn=2\.0\.0 "
                     % sid, log, re.M), log
    assert rest.endswith(b"\n\nover TCP\n\n\n")


def swaks_tcp(port):
    return swaks("--server", "127.0.0.1:%d" % port, "--helo", "client.example",
                 "--from", "a@b.example", "--to", "joe@example.net",
                 "--body", "over TCP")


@pytest.mark.parametrize("kind", ["systemd", "tcpserver"])
def test_swaks_over_launcher(tmp, launch, kind):
    port = free_port()
    cf = two_listeners_cf(tmp, port)
    server = launch(kind, cf, port)
    r = swaks_tcp(port)
    wait_for(lambda: "event=disconnect" in server.output(), what="disconnect")
    check_tcp_delivery(tmp, r, server.output())


@pytest.mark.parametrize("proto", ["tcp", "tcp4"])
def test_swaks_over_inetd(tmp, launch, proto):
    # inetd gives the service the socket as stdin, stdout AND stderr:
    # logging to stderr would write into the SMTP dialogue, so log to a file
    port = free_port()
    cf = two_listeners_cf(tmp, port, logger="file")
    launch("inetd", cf, port, inetd_proto=proto)
    r = swaks_tcp(port)
    log = wait_for(lambda: "event=disconnect" in read_text(tmp + "/pm.log")
                   and read_text(tmp + "/pm.log"), what="the log file")
    check_tcp_delivery(tmp, r, re.sub(r"(?m)^\S+ postmaster\[\d+\]: ", "", log))


def test_inetd_line_survives_a_burst_of_connections(tmp, launch):
    """openbsd-inetd stops a nowait service for ten minutes once it has
    started more sessions in a minute than the line allows (256 by
    default): with the line the manual gives, 300 connections in a row
    are each greeted."""
    port = free_port()
    cf = two_listeners_cf(tmp, port, logger="file")
    launch("inetd", cf, port)
    greeted = 0
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            if f.readline().startswith(b"220 right.example"):
                greeted += 1
            s.sendall(b"QUIT\r\n")
            f.readline()
    assert greeted == 300


def test_tcpserver_environment_names_the_peer(tmp):
    # tcpserver passes the addresses in TCP* variables; they decide the
    # [smtpd] and the Received header even when stdin is not a socket
    cf = two_listeners_cf(tmp, 2587)
    env = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="2587",
               TCPREMOTEIP="192.0.2.7", TCPREMOTEPORT="40000")
    r = swaks("--pipe", "%s --config=%s" % (shlex.quote(POSTMASTER), shlex.quote(cf)),
              "--helo", "client.example", "--from", "a@b.example",
              "--to", "joe@example.net", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 right.example ESMTP postmaster" in r.stdout
    data = one_message(tmp + "/Maildir")
    assert b"\nReceived: from client.example ([192.0.2.7])\n\tby right.example " in data
    assert "event=connect client=192.0.2.7 port=40000 smtpd=right.example" in r.stderr


# ------------------------------------------------------------------ #
# Python's smtplib: 7bit, 8BITMIME, SMTPUTF8, byte for byte          #


@pytest.fixture
def smtp_server(tmp, launch):
    def start(cf_text, kind="tcpserver"):
        port = free_port()
        return launch(kind, write_cf(tmp, cf_text), port), port
    return start


def smtplib_message(subject, body, cte=None):
    msg = email.message.EmailMessage()
    msg["From"] = "Ann <a@b.example>"
    msg["To"] = "joe@example.net"
    msg["Subject"] = subject
    msg["Message-ID"] = "<test.1@b.example>"
    if cte:
        msg.set_content(body, cte=cte)
    else:
        msg.set_content(body)
    return msg


BODY_7BIT = ("Plain ASCII.\n.a line that starts with a dot\n..two dots\n"
             ".\nFrom the start of a line\n\ttab\n" + "x" * 900 + "\nend\n")
BODY_8BIT = ("Grüße aus Köln — ünïcödé ✓\n.dot\nnaïve café\n"
             "日本語のテキスト\n")


@pytest.mark.parametrize("kind", ["7bit", "8bitmime", "smtputf8"])
def test_smtplib_send_message(tmp, smtp_server, kind):
    server, port = smtp_server(MAILDIR_CF)
    rcpt, utf8, options = "joe@example.net", False, []
    if kind == "7bit":
        msg = smtplib_message("seven bits", BODY_7BIT)
    elif kind == "8bitmime":
        msg = smtplib_message("eight bits", BODY_8BIT, cte="8bit")
        options = ["BODY=8BITMIME"]
    else:
        # a UTF-8 local part: send_message itself adds SMTPUTF8 and
        # BODY=8BITMIME to MAIL FROM (passing them again duplicates them)
        rcpt, utf8 = "zoë@example.net", True
        msg = email.message.EmailMessage()
        msg["From"] = "Jörg <jörg@b.example>"
        msg["To"] = rcpt
        msg["Subject"] = "Grüße"
        msg["Message-ID"] = "<test.2@b.example>"
        msg.set_content(BODY_8BIT, cte="8bit")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                      timeout=20) as s:
        s.ehlo()
        assert s.has_extn("8bitmime") and s.has_extn("smtputf8")
        refused = s.send_message(msg, mail_options=options)
        assert refused == {}
        client_port = s.sock.getsockname()[1]
    names, added, rest = split_added(one_message(tmp + "/Maildir"))
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert rest == flatten(msg, utf8)
    sender = "jörg@b.example" if utf8 else "a@b.example"
    assert added.startswith(("Return-Path: <%s>\nDelivered-To: %s\n" %
                             (sender, rcpt)).encode())
    proto = b"UTF8SMTP" if utf8 else b"ESMTP"
    assert b"\tby mail.example.net (postmaster) with " + proto + b" id " in added
    assert ("\tfor <%s>; " % rcpt).encode() in added
    log = "\n".join(server.session_log(client_port))
    assert re.search(r"to=<%s> .*status=sent dsn=2\.0\.0" % re.escape(rcpt),
                     log), log


# ------------------------------------------------------------------ #
# Binary mail with BDAT                                               #


def test_bdat_binarymime_byte_for_byte(tmp, smtp_server):
    server, port = smtp_server(MAILDIR_CF)
    final = send_binary(port, BINARY)
    assert final == ["250 2.0.0 delivered to 1 Maildir"]
    names, added, rest = split_added(one_message(tmp + "/Maildir"), b"\r\n")
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert added.startswith(b"Return-Path: <a@b.example>\r\nDelivered-To: "
                            b"joe@example.net\r\nReceived: from client.example "
                            b"([127.0.0.1])\r\n\tby mail.example.net ")
    assert rest == BINARY


def test_bdat_text_body_is_normalized(tmp, smtp_server):
    # text mail sent with BDAT follows the line rules: CRLF stored as LF,
    # and no dot-unstuffing (BDAT has no dot-stuffing)
    server, port = smtp_server(MAILDIR_CF)
    c = Client(port)
    try:
        c.start()
        text = b"Subject: chunked\r\n\r\n..two dots stay\r\n.\r\nlast\r\n"
        c.sock.sendall(b"BDAT %d LAST\r\n" % len(text) + text)
        assert c.reply() == ["250 2.0.0 delivered to 1 Maildir"]
        c.cmd(b"QUIT", "221")
    finally:
        c.close()
    _, _, rest = split_added(one_message(tmp + "/Maildir"))
    assert rest == b"Subject: chunked\n\n..two dots stay\n.\nlast\n"


# ------------------------------------------------------------------ #
# smtp-source, as the benchmark uses it                               #

SOURCE_CF = """\
[core]
hostname = localhost
logger = stderr
[route]
@localhost %s
"""


@pytest.mark.parametrize("target", ["discard", "maildir"])
@pytest.mark.parametrize("kind", ["systemd", "tcpserver"])
def test_smtp_source(tmp, launch, kind, target):
    maildir = os.path.join(tmp, "Maildir")
    cf = write_cf(tmp, SOURCE_CF % ("discard" if target == "discard"
                                    else maildir + "/"))
    server = launch(kind, cf)
    r = subprocess.run([tool("smtp-source"), "-s", "5", "-m", "50", "-l", "4096",
                        "-f", "a@localhost", "-t", "b@localhost",
                        "127.0.0.1:%d" % server.port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: server.output().count("event=disconnect") >= 50,
             what="50 sessions")
    log = server.output()
    assert len(re.findall(r"^sid=\w+ from=<a@localhost> to=<b@localhost> "
                          r"target=(?:discard|\"maildir [^\"]+\") "
                          r"status=sent dsn=2\.0\.0 ", log, re.M)) == 50, log
    if target == "discard":
        assert "reply=\"250 2.0.0 discarded\"" in log
        assert not os.path.exists(maildir)
        return
    files = maildir_files(maildir)
    assert len(files) == 50
    assert maildir_files(maildir, "tmp") == []
    bodies = set()
    for f in files:
        with open(f, "rb") as fh:
            _, _, rest = split_added(fh.read())
        bodies.add(rest.split(b"\n\n", 1)[1])
    # every message has the same body: -l 4096 octets of "1XXX...X" lines
    # with CRLF, and a final CRLF; stored with LF
    assert len(bodies) == 1
    body = bodies.pop()
    assert len(body) + body.count(b"\n") == 4096 + 2
    assert re.fullmatch(rb"(\dX{77}\n)+X*\n", body), body


@pytest.mark.parametrize("kind", ["systemd", "tcpserver"])
def test_smtp_source_options(tmp, launch, kind):
    """-d (several messages per connection), -r (several recipients),
    -S (a subject), -M (the HELO name) and -L (LMTP: one reply per
    recipient; each recipient's delivery stands alone)."""
    maildir = os.path.join(tmp, "Maildir")
    server = launch(kind, write_cf(tmp, SOURCE_CF % (maildir + "/")))
    target = "127.0.0.1:%d" % server.port
    r = subprocess.run([tool("smtp-source"), "-d", "-s", "2", "-m", "10",
                        "-r", "3", "-S", "from smtp-source", "-M", "client.example",
                        "-f", "a@localhost", "-t", "b@localhost", target],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    files = maildir_files(maildir)
    assert len(files) == 10  # three recipients, one Maildir: one copy each
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        assert b"\nSubject: from smtp-source\n" in data
        assert b"\nReceived: from client.example ([127.0.0.1])\n" in data
    r = subprocess.run([tool("smtp-source"), "-L", "-m", "4", "-r", "2",
                        "-f", "a@localhost", "-t", "b@localhost", target],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    files = maildir_files(maildir)
    assert len(files) == 10 + 8
    lmtp = [f for f in files if " with LMTP id " in read_text(f)]
    assert len(lmtp) == 8


# ------------------------------------------------------------------ #
# procmail as the local mailer                                        #

PROCMAIL_CF = """\
[core]
hostname = mail.example.net
logger = stderr
local-mailer = procmail
[pipe "procmail"]
exec = /usr/bin/procmail -m @DIR@/procmailrc
timeout = %s
[route]
joe@example.net %s
"""

SYSTEM_USER = "nobody"


def procmail_setup(tmp, timeout="60s", logger="stderr"):
    tool("procmail")
    with open(os.path.join(tmp, "procmailrc"), "w") as f:
        # ORGMAIL: nothing may fall back to /var/mail
        f.write("DEFAULT=%s/pmail/\nORGMAIL=%s/procmail-fallback\n" % (tmp, tmp))
    return write_cf(tmp, PROCMAIL_CF.replace("logger = stderr", "logger = " + logger)
                    % (timeout, SYSTEM_USER))


@pytest.mark.parametrize("launcher,kind", [
    ("tcpserver", "7bit"), ("tcpserver", "8bitmime"), ("tcpserver", "binary"),
    ("systemd", "7bit"), ("inetd", "7bit")])
def test_procmail_local_mailer(tmp, launch, launcher, kind):
    cf = procmail_setup(tmp, logger="syslog" if launcher == "inetd" else "stderr")
    server = launch(launcher, cf)
    if kind == "binary":
        assert send_binary(server.port, BINARY) == ["250 2.0.0 delivered"]
        eol, want = b"\r\n", BINARY
    else:
        if kind == "7bit":
            msg, options = smtplib_message("via procmail", BODY_7BIT), []
        else:
            msg = smtplib_message("via procmail", BODY_8BIT, cte="8bit")
            options = ["BODY=8BITMIME"]
        with smtplib.SMTP("127.0.0.1", server.port,
                          local_hostname="client.example", timeout=20) as s:
            assert s.send_message(msg, mail_options=options) == {}
        eol, want = b"\n", flatten(msg)
    names, added, rest = split_added(one_message(tmp + "/pmail"), eol)
    assert names == ["Return-Path", "Delivered-To", "Received"]
    assert added.startswith(b"Return-Path: <a@b.example>" + eol +
                            b"Delivered-To: joe@example.net" + eol)
    assert rest == want
    assert not os.path.exists(tmp + "/procmail-fallback")


def test_swaks_pipe_to_procmail(tmp):
    # swaks --pipe starts its child with SIGCHLD ignored; a session must
    # still learn its mailer's exit status (and not time out after a
    # delivery that happened)
    cf = procmail_setup(tmp, timeout="4s")
    t0 = time.monotonic()
    r = swaks("--pipe", "%s --config=%s" % (shlex.quote(POSTMASTER), shlex.quote(cf)),
              "--from", "a@b.example", "--to", "joe@example.net",
              "--body", "through procmail")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 delivered" in r.stdout, r.stdout + r.stderr
    assert time.monotonic() - t0 < 4
    _, _, rest = split_added(one_message(tmp + "/pmail"))
    assert rest.endswith(b"\n\nthrough procmail\n\n\n")


# ------------------------------------------------------------------ #
# Failures, end to end                                                #

FAIL_CF = """\
[core]
hostname = mail.example.net
logger = stderr
[pipe "tempfail"]
exec = /bin/sh -c "cat >/dev/null; exit 75"
[pipe "nouser"]
exec = /bin/sh -c "cat >/dev/null; exit 67"
[route]
temp@example.net tempfail
gone@example.net nouser
ro@example.net @DIR@/ro/
a@example.net @DIR@/A/
b@example.net @DIR@/B/
"""


@pytest.mark.parametrize("rcpt,code,dsn,status", [
    ("temp@example.net", 451, b"4.3.0", "deferred"),
    ("gone@example.net", 550, b"5.1.1", "rejected"),
])
def test_mailer_exit_status(tmp, smtp_server, rcpt, code, dsn, status):
    server, port = smtp_server(FAIL_CF)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        client_port = s.sock.getsockname()[1]
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("a@b.example", [rcpt], b"Subject: x\r\n\r\nbody\r\n")
        assert e.value.smtp_code == code
        assert e.value.smtp_error.startswith(dsn + b" ")
    log = "\n".join(server.session_log(client_port))
    assert re.search(r"to=<%s> .*status=%s dsn=%s " % (re.escape(rcpt), status,
                                                    dsn.decode()), log), log


def read_only_dir(path, owner_writable_sub=()):
    """A Maildir the session cannot write (root makes it root's; anyone
    else makes it read-only); subdirectories in owner_writable_sub stay
    writable for the session."""
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub))
        os.chmod(os.path.join(path, sub), 0o1777 if sub in owner_writable_sub
                 else 0o555)
    os.chmod(path, 0o555)


def test_unwritable_maildir(tmp, smtp_server):
    server, port = smtp_server(FAIL_CF)
    read_only_dir(tmp + "/ro")
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("a@b.example", ["ro@example.net"], b"Subject: x\r\n\r\nbody\r\n")
        assert 400 <= e.value.smtp_code < 500
    assert all_files(tmp + "/ro") == []


def test_maildirs_fail_together(tmp, smtp_server):
    # B's tmp/ is writable, its new/ is not: A must not keep its copy,
    # and nothing may stay behind in either tmp/
    server, port = smtp_server(FAIL_CF)
    read_only_dir(tmp + "/B", owner_writable_sub=("tmp",))
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("a@b.example", ["a@example.net", "b@example.net"],
                       b"Subject: x\r\n\r\nbody\r\n")
        assert 400 <= e.value.smtp_code < 500
    assert all_files(tmp + "/A") == []
    assert all_files(tmp + "/B") == []


@pytest.mark.parametrize("have", [(), ("tmp",), ("tmp", "cur")])
def test_maildir_directories_made_when_missing(tmp, smtp_server, have):
    # a delivery tries the Maildir's files first and makes its directories
    # only when one is missing: the whole Maildir, or new/ and cur/ after
    # tmp/ was there
    server, port = smtp_server(FAIL_CF)
    for sub in have:
        os.makedirs(os.path.join(tmp, "A", sub))
    for d in glob.glob(tmp + "/A") + glob.glob(tmp + "/A/*"):
        os.chmod(d, 0o1777)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("a@b.example", ["a@example.net"], b"Subject: x\r\n\r\nbody\r\n")
    assert sorted(os.listdir(tmp + "/A")) == ["cur", "new", "tmp"]
    assert len(maildir_files(tmp + "/A")) == 1
    assert maildir_files(tmp + "/A", "tmp") == []


def test_a_maildir_made_on_delivery_is_synced_into_its_parent(tmp):
    """new/'s sync makes a copy's name durable; a Maildir that the
    delivery made must be durable too, or a crash after the 250 could
    take the whole Maildir, and the message, away. strace shows each
    directory made synced into its parent before the reply."""
    cf = write_cf(tmp, FAIL_CF)
    script = (b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<a@example.net>\r\n"
              b"DATA\r\nSubject: x\r\n\r\nx\r\n.\r\nQUIT\r\n")
    trace = os.path.join(tmp, "trace")
    r = subprocess.run([tool("strace"), "-f", "-o", trace, "-e",
                        "trace=mkdir,openat,fsync,write", POSTMASTER,
                        "--config=" + cf], input=script, capture_output=True,
                       timeout=60)
    assert b"250 2.0.0 delivered to 1 Maildir" in r.stdout, r.stdout
    calls = read_text(trace)
    fds = {}
    synced, made = set(), []
    for line in calls.splitlines():
        m = re.search(r'openat\(AT_FDCWD, "([^"]+)", [^)]*O_DIRECTORY[^)]*\) = (\d+)', line)
        if m:
            fds[m[2]] = m[1].rstrip("/")
        m = re.search(r'fsync\((\d+)\)\s+= 0', line)
        if m and m[1] in fds:
            synced.add(fds[m[1]])
        m = re.search(r'mkdir\("([^"]+)", \d+\)\s+= 0', line)
        if m:
            made.append(os.path.dirname(m[1].rstrip("/")))
        if "250 2.0.0 delivered" in line:
            break
    assert made == [tmp, tmp + "/A", tmp + "/A", tmp + "/A"], calls
    assert set(made) <= synced, calls


@pytest.mark.parametrize("how", ["data", "bdat-short-chunk", "bdat-without-last"])
def test_client_hangs_up_mid_data(tmp, smtp_server, how):
    server, port = smtp_server(MAILDIR_CF)
    c = Client(port)
    try:
        c.start()
        if how == "data":
            c.cmd(b"DATA", "354")
            c.sock.sendall(b"Subject: cut\r\n\r\nsome text\r\n.")
        elif how == "bdat-short-chunk":
            c.sock.sendall(b"BDAT 1000 LAST\r\nSubject: cut\r\n\r\nonly part")
        else:
            c.sock.sendall(b"BDAT 20\r\nSubject: cut\r\n\r\n1234")
            assert c.reply() == ["250 2.0.0 20 octets received"]
        client_port = c.port
    finally:
        c.close()
    log = server.session_log(client_port)
    assert not any("status=sent" in l for l in log), log
    assert all_files(tmp + "/Maildir") == []


# ------------------------------------------------------------------ #
# Logging                                                             #

LOG_CF = """\
[core]
hostname = mail.example.net
logger = %s
[logfile "x"]
file = @DIR@/log-%%Y
[route]
@example.net @DIR@/Maildir/
"""


def swaks_pipe(cf, *extra):
    return swaks("--pipe", "%s --config=%s" % (shlex.quote(POSTMASTER), shlex.quote(cf)),
                 "--from", "a@b.example", "--to", "joe@example.net", *extra)


def check_delivery_lines(lines):
    sids = {re.match(r"sid=(\w+) ", l)[1] for l in lines if l.startswith("sid=")}
    assert len(sids) == 1, lines
    assert all(l.startswith("sid=") for l in lines), lines
    assert any(re.match(r"sid=\w{12} from=<a@b\.example> to=<joe@example\.net> "
                        r"target=\"maildir [^\"]+/\" status=sent dsn=2\.0\.0 "
                        r"size=\d+ delay=\d+ reply=\"250 2\.0\.0 ", l)
               for l in lines), lines
    assert any(" event=connect client=local" in l for l in lines), lines
    assert any(" event=disconnect " in l for l in lines), lines


def test_logger_stderr(tmp):
    r = swaks_pipe(write_cf(tmp, LOG_CF % "stderr"))
    assert r.returncode == 0, r.stdout + r.stderr
    check_delivery_lines([l for l in r.stderr.splitlines() if l])


def test_logger_logfile(tmp):
    r = swaks_pipe(write_cf(tmp, LOG_CF % "x"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sid=" not in r.stderr
    path = os.path.join(tmp, "log-" + time.strftime("%Y"))
    with open(path) as f:
        lines = f.read().splitlines()
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} postmaster\[\d+\]: "
    assert all(re.match(stamp, l) for l in lines), lines
    check_delivery_lines([re.sub(stamp, "", l) for l in lines])


def test_logger_syslog(tmp):
    r = swaks_pipe(write_cf(tmp, LOG_CF % "syslog"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 delivered to 1 Maildir" in r.stdout
    assert "421" not in r.stdout
    assert len(maildir_files(tmp + "/Maildir")) == 1
    if stat.S_ISSOCK(os.stat("/dev/log").st_mode if os.path.exists("/dev/log") else 0):
        assert "sid=" not in r.stderr
    else:
        # no syslog daemon: the lines go to stderr, after one warning
        lines = [l for l in r.stderr.splitlines() if l]
        assert lines[0] == "postmaster: no syslog socket /dev/log: logging to standard error"
        check_delivery_lines(lines[1:])


def test_logger_journal(tmp):
    if not os.path.exists("/run/systemd/journal/socket"):
        pytest.skip("no systemd journal on this machine")
    r = swaks_pipe(write_cf(tmp, LOG_CF % "journal"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 delivered to 1 Maildir" in r.stdout
    assert "sid=" not in r.stderr and "421" not in r.stdout


# ------------------------------------------------------------------ #
# systemd units                                                       #


@pytest.mark.parametrize("socket_unit,service_unit", [
    ("postmaster.socket", "postmaster@.service"),
    ("postmaster-submission.socket", "postmaster-submission@.service"),
    ("postmaster-submissions.socket", "postmaster-submissions@.service"),
    ("postmaster-submit.socket", "postmaster-submit@.service"),
])
def test_units_verify(tmp, socket_unit, service_unit):
    analyze = tool("systemd-analyze")
    paths = []
    for unit in (socket_unit, service_unit):
        with open(os.path.join(TOP, "units", unit)) as f:
            text = f.read()
        if unit.endswith(".socket"):
            assert re.search(r"^Accept=yes$", text, re.M)
            assert re.search(r"^MaxConnections=\d+$", text, re.M)
            # systemd fails a socket that hits its trigger limit (by
            # default 200 connections in 2 s) until it is restarted: a
            # flood from one client would close the port for good
            assert re.search(r"^TriggerLimit(IntervalSec|Burst)=0$", text,
                             re.M), socket_unit
            # a source is an IP address: none on the unix socket
            if not re.search(r"^ListenStream=/", text, re.M):
                assert re.search(r"^MaxConnectionsPerSource=\d+$", text, re.M)
            else:
                assert re.search(r"^SocketMode=0666$", text, re.M)
        else:
            new = re.sub(r"^ExecStart=\S+", "ExecStart=" + POSTMASTER, text,
                         flags=re.M)
            assert new != text and re.search(r"^ExecStart=\S+ --smtpd=\S+$",
                                             new, re.M), text
            text = new
        paths.append(os.path.join(tmp, unit))
        with open(paths[-1], "w") as f:
            f.write(text)
    r = subprocess.run([analyze, "verify", "--man=no", *paths], cwd=tmp,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # warnings (unknown keys, bad values) do not change the exit status
    assert socket_unit not in r.stderr and service_unit.split("@")[0] not in r.stderr, r.stderr


def test_make_install_destdir(tmp):
    dest = os.path.join(tmp, "root")
    r = subprocess.run(["make", "-s", "install", "DESTDIR=" + dest, "PREFIX=/usr"],
                       cwd=TOP, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("usr/sbin/postmaster", "usr/share/man/man8/postmaster.8",
              "usr/share/man/man5/postmaster.cf.5",
              "usr/lib/systemd/system/postmaster-flush.service",
              "usr/lib/systemd/system/postmaster-flush.timer",
              "usr/lib/systemd/system/postmaster@.service"):
        assert os.path.isfile(os.path.join(dest, f)), f
    spool = os.path.join(dest, "var/spool/postmaster")
    assert os.path.isdir(spool) and os.stat(spool).st_mode & 0o777 == 0o700
    with open(os.path.join(dest, "usr/lib/systemd/system/postmaster-flush.service")) as f:
        assert "ExecStart=/usr/sbin/postmaster --flush\n" in f.read()


def test_flush_units_verify(tmp):
    analyze = tool("systemd-analyze")
    paths = []
    for unit in ("postmaster-flush.service", "postmaster-flush.timer"):
        with open(os.path.join(TOP, "units", unit)) as f:
            text = f.read()
        if unit.endswith(".service"):
            new = re.sub(r"^ExecStart=\S+", "ExecStart=" + POSTMASTER, text,
                         flags=re.M)
            assert re.search(r"^ExecStart=\S+ --flush$", new, re.M), text
            assert re.search(r"^Type=oneshot$", new, re.M)
            assert re.search(r"^ProtectSystem=strict$", new, re.M)
            text = new
        else:
            assert re.search(r"^OnUnitInactiveSec=\d+min$", text, re.M)
        paths.append(os.path.join(tmp, unit))
        with open(paths[-1], "w") as f:
            f.write(text)
    r = subprocess.run([analyze, "verify", "--man=no", *paths], cwd=tmp,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "postmaster-flush" not in r.stderr, r.stderr
    # the session units let the detached delivery child outlive the session
    for unit in ("postmaster@.service", "postmaster-submission@.service"):
        with open(os.path.join(TOP, "units", unit)) as f:
            assert re.search(r"^KillMode=process$", f.read(), re.M), unit


MAILER_CF = """\
[core]
hostname = mail.example.net
logger = stderr
[pipe "background"]
exec = /bin/sh -c "cat > @DIR@/bg.out; (sleep 20 &); exit 0"
timeout = 10s
[pipe "argv"]
exec = /bin/sh -c "printf '%s\\n' \\"$@\\" > @DIR@/argv.out" argv ${RCPT_TO}
[route]
fds@example.net "|ls -l /proc/self/fd/ > @DIR@/fds.out"
bg@example.net background
@example.org argv
"""


@pytest.mark.parametrize("kind", ["systemd", "tcpserver"])
def test_a_mailer_gets_none_of_the_sessions_descriptors(tmp, smtp_server, kind):
    """Under socket activation the connection is fd 3: a mailer that
    inherited it could read and forge the SMTP dialogue. A mailer has
    its input, its output (the pipe the session reads) and nothing else."""
    server, port = smtp_server(MAILER_CF, kind)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail("a@b.example", ["fds@example.net"], b"Subject: fds\r\n\r\nx\r\n")
    listing = read_text(os.path.join(tmp, "fds.out"))
    fds = sorted(int(m) for m in re.findall(r" (\d+) -> ", listing))
    assert fds == [0, 1, 2, 3], listing  # 3: ls's own directory
    assert "socket:" not in listing, listing


def test_a_mailer_that_exits_while_its_child_holds_the_output(tmp, smtp_server):
    """A mailer that exits 0 with a background child still holding its
    output has delivered: 250 once it exits, not 451 when the timeout
    ends the wait for the output to close (the client then sent the
    message again, and it arrived twice)."""
    server, port = smtp_server(MAILER_CF)
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("a@b.example", ["bg@example.net"], b"Subject: bg\r\n\r\nx\r\n")
    assert time.monotonic() - t0 < 9, "the session waited for the child"
    assert "Subject: bg" in read_text(os.path.join(tmp, "bg.out"))


def test_a_local_part_that_begins_with_a_dash_is_refused(tmp, smtp_server):
    """It would pass for an option where a mailer's command line takes
    the address (-oQ/tmp/x@...): refused at RCPT and at MAIL, as Postfix
    does, and nothing runs."""
    server, port = smtp_server(MAILER_CF)
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example")
        code, text = s.docmd("MAIL FROM:<-f@b.example>")
        assert code == 501 and text.startswith(b"5.1.7 "), text
        assert s.docmd("MAIL FROM:<a@b.example>")[0] == 250
        code, text = s.docmd("RCPT TO:<-oQ/tmp/evil@example.org>")
        assert code == 501 and b"begins with '-'" in text, text
        assert text.startswith(b"5.1.3 "), text
        assert s.docmd("RCPT TO:<ok-dash@example.org>")[0] == 250
        s.docmd("RSET")
    assert not os.path.exists(os.path.join(tmp, "argv.out"))
