"""Onward delivery through the spool to real peers (SPEC 7.1, 7.2), with
the live proxy off (`proxy = no`: tests/test_proxy.py tests the proxy).

A session on a pipe accepts a message for a relay, a host or `mx`; it answers
"250 2.0.0 Ok: queued as ID" and a detached process delivers at once. That
process keeps the session's stderr open until it is done, so reading the
session's stderr to its end waits for the delivery (and collects its log).

The peers are real programs started by each test on loopback addresses and
stopped when it ends: Postfix's smtp-sink (with and without PIPELINING and
8BITMIME, and with injected failures), aiosmtpd (per-recipient replies,
SIZE, SMTPUTF8, counting connections), Dovecot's LMTP server (over a unix
socket and over TCP), a private Postfix instance (PIPELINING, CHUNKING) and
dnsmasq for the MX records. MX hosts listen on port 25 of random
127.x.y.z addresses: those are not interface addresses, so they count as
remote, while 127.0.0.1 is this machine.

Bounces are routed (global [route]) to a Maildir and parsed with Python's
email package as RFC 3464 reports. POSTMASTER names the binary under test.
"""
import email
import email.policy
import glob
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from pmtest import POSTMASTER, ROOT, SANITIZED, ThreadedServer, tool, no_sanitizer_report, free_port, wait_for, listening, descendants

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SENDER = "ann@sender.example"


# ------------------------------------------------------------------ #
# Ports, addresses, processes                                        #


class Daemon:
    """A peer program in its own session, its output in a file; stop()
    ends it and whatever it started (by pid, never by name)."""

    def __init__(self, argv, log, ready, what, timeout=10):
        self.argv = argv
        self.log = log
        self.out = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                if self.proc.poll() is not None:
                    raise RuntimeError("%s exited with %s:\n%s" % (
                        what, self.proc.returncode, self.output()))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s did not start:\n%s" % (what, self.output()))
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            pids = descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.out.close()


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-onward-")
    os.chmod(d, 0o1777)  # the session and its delivery run as nobody
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def peers():
    """Everything a test starts: stopped at its end, in reverse order."""
    started = []
    yield started
    for p in reversed(started):
        p.stop()


def mkdir(*parts):
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


def maildir(path):
    for sub in ("tmp", "new", "cur"):
        mkdir(path, sub)
    return path


def maildir_files(path):
    return sorted(glob.glob(os.path.join(path, "new", "*")))


# ------------------------------------------------------------------ #
# postmaster: configuration, sessions over pipes, --flush, --queue   #


# The tests here are about the spool path (SPEC 7 path 3) and its onward
# client, so their sessions do not proxy (tests/test_proxy.py does): the
# one [smtpd] section, which serves a pipe, says proxy = no.
SPOOLED = '[smtpd "mail.example.net"]\nproxy = no\n'


def write_cf(tmp, text, dns_port=None, core="", smtpd=SPOOLED):
    """A configuration for onward delivery: the spool in tmp, bounces to
    SENDER in tmp/bounces/, postmaster's mail in tmp/postmaster/; text
    adds sections and global routes; smtpd is the listener's section
    (none: the built-in settings, which proxy)."""
    maildir(os.path.join(tmp, "bounces"))
    maildir(os.path.join(tmp, "postmaster"))
    spool = mkdir(tmp, "spool")
    lines = ["[core]",
             "hostname = mail.example.net",
             "logger = stderr",
             "spool-directory = " + spool,
             "pid-file = " + os.path.join(tmp, "flush.pid"),
             "minimal-backoff = 1s",
             "maximal-backoff = 1s"]
    if ROOT:
        lines.append("user-id = nobody")
    if dns_port:
        lines.append("dns-server = 127.0.0.1:%d" % dns_port)
    if core:
        lines.append(core)
    text = "\n".join(lines) + "\n" + smtpd + text.replace("@DIR@", tmp)
    if "[route]" not in text:
        text += "[route]\n"
    text += ("@sender.example %s/bounces/\npostmaster %s/postmaster/\n" % (tmp, tmp))
    path = os.path.join(tmp, "postmaster.cf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([POSTMASTER, "--config=" + path, "--check"],
                       capture_output=True, text=True, errors="replace")
    assert r.returncode == 0, "--check: " + r.stdout + r.stderr + "\n" + text
    no_sanitizer_report(r.stdout + r.stderr, "--check")
    return path


class Session:
    """One postmaster session over pipes, driven line by line; prefix is
    a command that runs postmaster (valgrind)."""

    TIMEOUT = 30

    def __init__(self, cf, prefix=()):
        self.proc = subprocess.Popen([*prefix, POSTMASTER, "--config=" + cf],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.err = b""
        self.buf = b""
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        self.transcript = []

    def _drain(self):
        self.err = self.proc.stderr.read()

    def _line(self):
        deadline = time.monotonic() + self.TIMEOUT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready = select.select([self.proc.stdout], [], [], max(left, 0))[0]
            if not ready:
                raise AssertionError("no reply in %ds after %r" % (
                    self.TIMEOUT, self.transcript))
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError("session closed after %r" % self.transcript)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def reply(self):
        lines = []
        while True:
            text = self._line()
            lines.append(text)
            self.transcript.append("<- " + text)
            if text[3:4] != "-":
                return "\n".join(lines)

    def send(self, data):
        view = memoryview(data)
        while view:
            view = view[self.proc.stdin.write(view):]

    def cmd(self, line, expect):
        self.transcript.append("-> " + line)
        self.send(line.encode() + b"\r\n")
        got = self.reply()
        assert got.split("\n")[-1].startswith(expect), "%s: %s\n%s" % (
            line, got, "\n".join(self.transcript))
        return got

    def data(self, body):
        """Sends body (LF or CRLF lines) dot-stuffed, then the final dot."""
        lines = body.replace(b"\r\n", b"\n").split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                       for l in lines)
        self.send(out + b".\r\n")
        got = self.reply()
        self.transcript.append("(data)")
        return got

    def close(self):
        """Ends the session and waits for the delivery it started (it holds
        the session's stderr until it is done)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the session did not end: %r" % self.transcript)
        self.proc.stdout.close()
        self.reader.join(self.TIMEOUT)
        assert not self.reader.is_alive(), \
            "the delivery did not end in %ds" % self.TIMEOUT
        log = self.err.decode("utf-8", "replace")
        no_sanitizer_report(log, "session")
        return log


class Sent:
    def __init__(self, reply, log):
        self.reply = reply
        self.log = log
        m = re.search(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", reply)
        self.id = m[1] if m else None


def submit(cf, rcpts, body=None, sender=SENDER, params="", prefix=()):
    """One transaction; returns the reply to the data (and the queue id)
    once the delivery that the session started has ended."""
    if body is None:
        body = message()
    s = Session(cf, prefix)
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<%s>%s" % (sender, params), "250 ")
        for r in rcpts:
            s.cmd("RCPT TO:<%s>" % r, "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(body)
        s.cmd("QUIT", "221 ")
    finally:
        log = s.close()
    sent = Sent(reply, log)
    assert sent.id, reply + "\n" + log
    return sent


def pm(cf, *args, timeout=60):
    r = subprocess.run([POSTMASTER, "--config=" + cf, *args], capture_output=True,
                       text=True, errors="replace", timeout=timeout)
    no_sanitizer_report(r.stdout + r.stderr, " ".join(args))
    return r


def flush(cf, *flags):
    r = pm(cf, *flags, "--flush", "--now")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stderr


def queue(cf):
    r = pm(cf, "--queue")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def queue_targets(cf):
    """{recipient: (state, attempts, reply line)} of the spool."""
    out = {}
    lines = queue(cf).splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^    (\w+)\s+<([^>]*)> .* attempts=(\d+)", line)
        if m:
            nxt = lines[i + 1].strip() if i + 1 < len(lines) and \
                lines[i + 1].startswith("              ") else ""
            out[m[2]] = (m[1], int(m[3]), nxt)
    return out


def status_lines(log, status=None):
    """The delivery log lines of the message (not of its bounces):
    {recipient: line}, the last one wins."""
    out = {}
    for line in log.splitlines():
        if " from=<> " in line:
            continue
        m = re.search(r" to=<([^>]*)> .*status=(\w+)", line)
        if m and m[2] != "queued" and (status is None or m[2] == status):
            out[m[1]] = line
    return out


def message(subject="onward", extra=b""):
    """A text message whose body has lines that need dot-stuffing."""
    return (b"From: Ann <ann@sender.example>\r\n"
            b"To: <joe@example.net>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.encode() + b".1@sender.example>\r\n"
            b"\r\n" + BODY + extra)


# The lines that need dot-stuffing: a lone dot, lines that start with dots.
BODY = (b"first line\r\n"
        b".\r\n"
        b".starts with a dot\r\n"
        b"..two dots\r\n"
        b" . not at the start\r\n"
        b"last line\r\n")


def check_content(content, rcpt=None):
    """The content as a peer received it: CRLF lines only, our Received
    header on top, the body intact after dot-(un)stuffing."""
    assert content.endswith(b"\r\n")
    assert b"\n" not in content.replace(b"\r\n", b""), content
    assert b"\r" not in content.replace(b"\r\n", b""), content
    assert content.startswith(b"Received: from client.example (local)\r\n"
                              b"\tby mail.example.net (postmaster) with ESMTP id "), content
    if rcpt:
        assert b"\tfor <%s>; " % rcpt.encode() in content
    assert content.endswith(b"\r\n\r\n" + BODY), content
    assert b"\r\nSubject: onward\r\n" in content


def bounces(tmp, n=1, timeout=10):
    """The bounces in tmp/bounces/, parsed; waits for n of them."""
    box = os.path.join(tmp, "bounces")
    files = wait_for(lambda: len(maildir_files(box)) >= n and maildir_files(box),
                     timeout, "%d bounce(s) in %s" % (n, box))
    assert len(files) == n, files
    out = []
    for path in files:
        with open(path, "rb") as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def report(msg):
    """An RFC 3464 report (RFC 6533's global one for an SMTPUTF8
    message): its per-message fields and {recipient: fields}."""
    assert msg.get_content_type() == "multipart/report", msg
    glob = "global-" if msg.get_param("report-type").startswith("global-") \
        else ""
    assert msg.get_param("report-type") == glob + "delivery-status"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.net"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["To"].addresses[0].addr_spec == SENDER
    assert msg["Return-Path"] == "<>"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/%sdelivery-status" % glob,
        "message/global-headers" if glob else "text/rfc822-headers"], parts
    blocks = parts[1].get_payload()
    if glob:  # one message to Python's email package: its blocks here
        raw = parts[1].get_payload(decode=True)
        if raw is None:
            raw = blocks[0].as_bytes()
        blocks = [email.message_from_string(b)
                  for b in raw.decode().strip("\n").split("\n\n")]
    per_message, per_rcpt = blocks[0], {}
    assert per_message["Reporting-MTA"] == "dns; mail.example.net"
    for b in blocks[1:]:
        kind, addr = b["Final-Recipient"].split(";", 1)
        assert kind.strip().lower() in ("rfc822", "utf-8"), b["Final-Recipient"]
        per_rcpt[addr.strip()] = b
    headers = parts[2].get_payload() if parts[2].is_multipart() else \
        parts[2].get_content()
    return per_message, per_rcpt, parts[0].get_content(), str(headers)


def failed(block, status_re, diag_re, remote=None):
    assert block["Action"] == "failed", str(block)
    assert re.fullmatch(status_re, block["Status"]), str(block)
    # permanent, or a temporary one that outlived the queue lifetime
    assert re.fullmatch(r"[45]\.\d{1,3}\.\d{1,3}", block["Status"]), str(block)
    diag = " ".join(str(block["Diagnostic-Code"]).split())
    assert re.fullmatch(diag_re, diag), diag
    if remote:
        assert block["Remote-MTA"] == "dns; " + remote, str(block)


# ------------------------------------------------------------------ #
# Peers                                                              #


class SmtpSink:
    """Postfix's smtp-sink: each transaction dumped to a file."""

    def __init__(self, tmp, *opts, host="127.0.0.1", port=None, name="sink"):
        self.host, self.port = host, port or free_port()
        self.dump = mkdir(tmp, name + "-dump")
        argv = [tool("smtp-sink")] + (["-u", "nobody"] if ROOT else []) + [
            "-d", self.dump + "/%H%M%S.", *opts, "%s:%d" % (host, self.port), "10"]
        self.d = Daemon(argv, os.path.join(tmp, name + ".log"),
                        lambda: listening(self.port, host), "smtp-sink")

    def messages(self, timeout=5):
        """The dumped transactions, oldest first: (X- fields, content);
        waits for a dump that is still being written."""
        deadline = time.monotonic() + timeout
        while True:
            out = self._read()
            if out is not None:
                return out
            if time.monotonic() > deadline:
                raise AssertionError("an incomplete dump in " + self.dump)
            time.sleep(0.02)

    def _read(self):
        out = []
        paths = [p for p in glob.glob(self.dump + "/*") if os.path.isfile(p)]
        for path in sorted(paths, key=os.path.getmtime):
            with open(path, "rb") as f:
                data = f.read()
            fields, rest = [], data
            while rest.startswith(b"X-") and b"\n" in rest:
                line, rest = rest.split(b"\n", 1)
                fields.append(line.decode())
            # smtp-sink's own Received header (3 lines) comes next, and
            # an empty line after the message
            if not rest.startswith(b"Received: from ") or rest.count(b"\n") < 4 or \
                    not rest.endswith(b"\n\n"):
                return None
            for _ in range(3):
                rest = rest.split(b"\n", 1)[1]
            out.append((fields, rest[:-1]))
        return out

    def stop(self):
        self.d.stop()


class Recorder:
    """An aiosmtpd handler that answers RCPT per recipient (policy), the
    data with data_reply, and records connections and transactions."""

    def __init__(self):
        self.policy = {}
        self.data_reply = "250 2.0.0 Ok: stored"
        self.ehlos = 0
        self.mails = []
        self.rcpts = []
        self.messages = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails.append((address, list(mail_options)))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.policy.get(address, "250 2.1.5 Ok")
        self.rcpts.append((address, reply))
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from,
                              "options": list(envelope.mail_options),
                              "rcpts": list(envelope.rcpt_tos),
                              "content": envelope.original_content,
                              "peer": session.peer})
        return self.data_reply

    def delivered_to(self):
        return sorted(r for m in self.messages for r in m["rcpts"])


class Aiosmtpd:
    def __init__(self, host="127.0.0.1", port=None, **kw):
        from aiosmtpd.controller import Controller
        self.handler = Recorder()
        self.host, self.port = host, port or free_port()
        kw.setdefault("enable_SMTPUTF8", False)
        self.c = Controller(self.handler, hostname=host, port=self.port,
                            ready_timeout=5, server_hostname="aio.example", **kw)
        self.c.start()

    def stop(self):
        self.c.stop()


def aiosmtpd_peer(peers, **kw):
    pytest.importorskip("aiosmtpd.controller")
    p = Aiosmtpd(**kw)
    peers.append(p)
    return p


# ------------------------------------------------------------------ #
# 1. smtp-sink                                                       #


def relay_cf(tmp, addresses, protocol=None, dns_port=None, core=""):
    text = '[relay "next"]\n' + "".join("address = %s\n" % a for a in addresses)
    if protocol:
        text += "protocol = %s\n" % protocol
    text += "[route]\n@example.net next\n"
    return write_cf(tmp, text, dns_port=dns_port, core=core)


@pytest.mark.parametrize("opts", [(), ("-p",)], ids=["pipelining", "no-pipelining"])
def test_smtp_sink_delivery(tmp, peers, opts):
    sink = SmtpSink(tmp, *opts)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit(cf, ["joe@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    assert sorted(st) == ["ann@example.net", "joe@example.net"], sent.log
    for line in st.values():
        assert 'target="relay next" relay=127.0.0.1[127.0.0.1] tls=no status=sent dsn=2.0.0' in line
        assert "id=" + sent.id in line
    msgs = wait_for(sink.messages, what="the dump")
    assert len(msgs) == 1, msgs  # both recipients in one transaction
    fields, content = msgs[0]
    # smtp-sink announces no SIZE: no SIZE parameter; 7bit: no BODY
    assert "X-Mail-Args: <ann@sender.example>" in fields, fields
    assert "X-Helo-Args: mail.example.net" in fields
    assert [f for f in fields if f.startswith("X-Rcpt-Args")] == [
        "X-Rcpt-Args: <joe@example.net>", "X-Rcpt-Args: <ann@example.net>"]
    # smtp-sink stores LF lines: the body after dot-unstuffing
    assert content.startswith(b"Received: from client.example (local)\n"), content
    assert content.endswith(b"\n\n" + BODY.replace(b"\r\n", b"\n")), content
    assert queue(cf) == "the spool is empty\n"


def eightbit_message(subject="8bit"):
    return (b"From: <ann@sender.example>\r\nSubject: " + subject.encode() +
            b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
            b".dot\r\n")


def converted(sent, got, rcpt):
    """A message that the peer could not take as it was, delivered in a
    7-bit form (RFC 6152 3, RFC 3030 3): got is what the peer received."""
    assert "status=sent" in status_lines(sent.log)[rcpt], sent.log
    assert got is not None, "nothing arrived"
    assert max(got) < 0x80, "8-bit octets went to a 7-bit peer"
    return email.message_from_bytes(got, policy=email.policy.default)


@pytest.mark.parametrize("declared", [True, False], ids=["BODY=8BITMIME", "undeclared"])
def test_smtp_sink_without_8bitmime(tmp, peers, declared):
    # the need for 8BITMIME is judged by the content (SPEC 7), so 8-bit
    # octets never reach the peer, declared or not: the body is converted
    sink = SmtpSink(tmp, "-8")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit(cf, ["joe@example.net"], eightbit_message(),
                  params=" BODY=8BITMIME" if declared else "")
    msgs = sink.messages()
    assert len(msgs) == 1, sent.log
    assert "X-Mail-Args: <ann@sender.example>" in msgs[0][0]  # no BODY=
    msg = converted(sent, msgs[0][1], "joe@example.net")
    assert msg["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert msg.get_content() == "Gr\u00fc\u00dfe aus K\u00f6ln\n.dot\n"
    # 7bit goes through as it is
    sent = submit(cf, ["ann@example.net"])
    assert "status=sent" in status_lines(sent.log)["ann@example.net"]
    msgs = sink.messages()
    assert len(msgs) == 2
    assert "X-Mail-Args: <ann@sender.example>" in msgs[1][0]
    assert msgs[1][1].endswith(b"\n\n" + BODY.replace(b"\r\n", b"\n"))
    assert b"Content-Transfer-Encoding" not in msgs[1][1]
    assert queue(cf) == "the spool is empty\n"


def test_smtp_sink_without_8bitmime_unconvertible_bounces(tmp, peers):
    # 8-bit octets in a header field have no 7-bit form: 554 5.6.3
    sink = SmtpSink(tmp, "-8")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit(cf, ["joe@example.net"],
                  eightbit_message().replace(b"Subject: 8bit", b"Subject: K\xc3\xb6ln"),
                  params=" BODY=8BITMIME")
    assert "status=bounced dsn=5.6.3" in status_lines(sent.log)["joe@example.net"], \
        sent.log
    assert sink.messages() == []
    _, rcpts, text, headers = report(bounces(tmp)[0])
    failed(rcpts["joe@example.net"], r"5\.6\.3",
           r"x-postmaster; 554 5\.6\.3 127\.0\.0\.1\[127\.0\.0\.1\] accepts only 7-bit "
           r"mail and this message cannot be converted: .*header.*")
    assert "<joe@example.net>: 554 5.6.3 " in text
    assert queue(cf) == "the spool is empty\n"


# Injected failures: -r (soft, 4xx) and -f (hard, 5xx) for one command.
# Both imply -p (no PIPELINING).
@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA", "."])
def test_smtp_sink_soft_failure_is_retried(tmp, peers, command):
    port = free_port()
    sink = SmtpSink(tmp, "-r", command, "-b", "450 4.3.2 try later please", port=port)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % port])
    sent = submit(cf, ["joe@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    for r in ("joe@example.net", "ann@example.net"):
        assert "status=deferred dsn=4.3.2" in st[r], sent.log
        assert 'reply="450 4.3.2 127.0.0.1[127.0.0.1] said: try later please"' in st[r]
    if command != ".":  # smtp-sink dumps the data before it answers the dot
        assert sink.messages() == []
    q = queue_targets(cf)
    assert sorted(q) == ["ann@example.net", "joe@example.net"], queue(cf)
    for state, attempts, last in q.values():
        assert (state, attempts) == ("pending", 1)
        assert last == "450 4.3.2 127.0.0.1[127.0.0.1] said: try later please"
    assert sent.id in queue(cf)
    # the peer gets better: --flush --now delivers both, once
    sink.stop()
    peers.remove(sink)
    sink = SmtpSink(tmp, port=port, name="sink2")
    peers.append(sink)
    log = flush(cf)
    st = status_lines(log)
    assert sorted(st) == ["ann@example.net", "joe@example.net"], log
    assert all("status=sent" in line for line in st.values()), log
    msgs = wait_for(sink.messages, what="the dump")
    assert len(msgs) == 1  # one transaction for both
    assert [f for f in msgs[0][0] if f.startswith("X-Rcpt-Args")] == [
        "X-Rcpt-Args: <joe@example.net>", "X-Rcpt-Args: <ann@example.net>"]
    assert msgs[0][1].endswith(b"\n\n" + BODY.replace(b"\r\n", b"\n"))
    assert queue(cf) == "the spool is empty\n"
    assert flush(cf) == ""  # nothing left to do
    assert len(sink.messages()) == 1
    assert maildir_files(tmp + "/bounces") == []


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA", "."])
def test_smtp_sink_hard_failure_bounces(tmp, peers, command):
    sink = SmtpSink(tmp, "-f", command, "-B", "554 5.7.1 no thanks, says the sink")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit(cf, ["joe@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    for r in ("joe@example.net", "ann@example.net"):
        assert "status=bounced dsn=5.7.1" in st[r], sent.log
    assert queue(cf) == "the spool is empty\n"
    (b,) = bounces(tmp)
    per_msg, rcpts, text, headers = report(b)
    assert per_msg["X-Postmaster-Queue-ID"] == sent.id
    assert sorted(rcpts) == ["ann@example.net", "joe@example.net"]
    for r in rcpts.values():
        # the peer's own words, and the peer named, whichever command
        failed(r, r"5\.7\.1", r"smtp; 554 5\.7\.1 no thanks, says the sink",
               remote="127.0.0.1")
    assert "<joe@example.net>: 554 5.7.1 127.0.0.1[127.0.0.1] said: no thanks, " \
           "says the sink" in text
    assert "Subject: onward" in headers
    assert "Message-ID: <onward.1@sender.example>" in headers


# How the first address of a relay fails; the second one then gets the
# mail (SPEC 7.2: connection failures, 421, a 4xx/5xx greeting or EHLO
# reply: next address; a refused EHLO is followed by HELO, as Postfix
# does, so the sink refuses both).
FIRST_FAILS = {
    "refused": None,
    "421-greeting": ("-Q", "CONNECT"),
    "554-greeting": ("-f", "CONNECT", "-B", "554 5.3.2 not today"),
    "450-greeting": ("-r", "CONNECT"),
    "5xx-ehlo": ("-f", "EHLO,HELO"),
    "4xx-ehlo": ("-r", "EHLO,HELO"),
    "421-mail": ("-Q", "MAIL"),
    "421-rcpt": ("-Q", "RCPT"),  # PIPELINING on: the RCPTs go out together
    "hangup-rcpt": ("-q", "RCPT"),
    "hangup-data": ("-q", "DATA"),
}


@pytest.mark.parametrize("how", sorted(FIRST_FAILS))
def test_relay_next_address(tmp, peers, how):
    first_port = free_port()
    if FIRST_FAILS[how]:
        first = SmtpSink(tmp, *FIRST_FAILS[how], port=first_port, name="first")
        peers.append(first)
    second = SmtpSink(tmp, name="second")
    peers.append(second)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % first_port, "[127.0.0.1]:%d" % second.port])
    sent = submit(cf, ["joe@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    assert sorted(st) == ["ann@example.net", "joe@example.net"], sent.log
    assert all("status=sent" in line for line in st.values()), sent.log
    msgs = wait_for(second.messages, what="the dump")
    assert len(msgs) == 1
    assert [f for f in msgs[0][0] if f.startswith("X-Rcpt-Args")] == [
        "X-Rcpt-Args: <joe@example.net>", "X-Rcpt-Args: <ann@example.net>"]
    if FIRST_FAILS[how]:
        assert first.messages() == []
    assert queue(cf) == "the spool is empty\n"


def test_relay_address_is_copied_within_bounds(tmp, peers):
    # an address from getaddrinfo(3) is shorter than a sockaddr_storage:
    # copying more than ai_addrlen reads past its allocation, which the
    # sanitizer build aborts on; the normal build runs under valgrind
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    if SANITIZED:
        sent = submit(cf, ["joe@example.net"])  # fails on the sanitizer's report
        assert "status=sent" in status_lines(sent.log)["joe@example.net"]
        return
    valgrind = tool("valgrind")
    logs = os.path.join(tmp, "valgrind")
    os.mkdir(logs)
    os.chmod(logs, 0o1777)
    sent = submit(cf, ["joe@example.net"], prefix=[
        valgrind, "-q", "--vgdb=no", "--log-file=%s/%%p" % logs,
        "--error-exitcode=0"])
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    reports = ""
    for path in glob.glob(logs + "/*"):
        with open(path, errors="replace") as f:
            reports += f.read()
    assert "Invalid read" not in reports and "Invalid write" not in reports, reports


@pytest.mark.parametrize("opts", [("-f", "CONNECT"), ("-Q", "CONNECT"),
                                  ("-f", "EHLO,HELO")],
                         ids=["5xx-greeting", "421-greeting", "5xx-ehlo"])
def test_relay_every_address_fails_is_deferred(tmp, peers, opts):
    a = SmtpSink(tmp, *opts, name="a")
    b = SmtpSink(tmp, *opts, name="b")
    peers.extend([a, b])
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % a.port, "[127.0.0.1]:%d" % b.port])
    sent = submit(cf, ["joe@example.net"])
    line = status_lines(sent.log)["joe@example.net"]
    assert "status=deferred dsn=4." in line, sent.log
    q = queue_targets(cf)
    assert q["joe@example.net"][:2] == ("pending", 1), queue(cf)
    assert q["joe@example.net"][2].startswith("4"), queue(cf)
    assert maildir_files(tmp + "/bounces") == []


# ------------------------------------------------------------------ #
# 2. aiosmtpd: one reply per recipient                               #


def test_aiosmtpd_per_recipient_replies(tmp, peers):
    peer = aiosmtpd_peer(peers)
    h = peer.handler
    h.policy = {"later@example.net": "450 4.2.1 mailbox busy, try later",
                "bad@example.net": "550 5.1.1 no such mailbox here"}
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    rcpts = ["ok@example.net", "later@example.net", "bad@example.net"]
    sent = submit(cf, rcpts)
    st = status_lines(sent.log)
    assert "status=sent dsn=2.0.0" in st["ok@example.net"], sent.log
    assert 'status=deferred dsn=4.2.1' in st["later@example.net"], sent.log
    assert 'reply="450 4.2.1 127.0.0.1[127.0.0.1] said: mailbox busy, try later"' \
        in st["later@example.net"]
    assert "status=bounced dsn=5.1.1" in st["bad@example.net"], sent.log
    # one connection, one transaction, every RCPT asked once
    assert h.ehlos == 1
    assert [r for r, _ in h.rcpts] == rcpts
    assert len(h.messages) == 1
    m = h.messages[0]
    assert m["from"] == SENDER and m["rcpts"] == ["ok@example.net"]
    check_content(m["content"])
    # the mail options: SIZE (aiosmtpd announces it) with CRLF line ends
    # and without dot-stuffing (RFC 1870), no BODY for 7bit
    assert h.mails[0] == (SENDER, ["SIZE=%d" % len(m["content"])])
    # the 450 stays in the spool, visible with --queue
    q = queue_targets(cf)
    assert q["later@example.net"] == (
        "pending", 1, "450 4.2.1 127.0.0.1[127.0.0.1] said: mailbox busy, try later"), q
    assert q["ok@example.net"][:2] == ("delivered", 1)
    assert q["bad@example.net"][:2] == ("failed", 1)
    assert sent.id in queue(cf)
    # the 550 is bounced at once, with the peer's words
    (b,) = bounces(tmp)
    per_msg, brcpts, text, headers = report(b)
    assert list(brcpts) == ["bad@example.net"]
    assert per_msg["X-Postmaster-Queue-ID"] == sent.id
    assert per_msg["X-Postmaster-Sender"] == "rfc822; " + SENDER
    failed(brcpts["bad@example.net"], r"5\.1\.1",
           r"smtp; 550 5\.1\.1 no such mailbox here", remote="127.0.0.1")
    assert "<bad@example.net>: 550 5.1.1 127.0.0.1[127.0.0.1] said: no such mailbox " \
           "here" in text
    assert "Message-ID: <onward.1@sender.example>" in headers
    # the peer now accepts: --flush --now delivers the 450 one, once
    h.policy = {}
    log = flush(cf)
    st = status_lines(log)
    assert list(st) == ["later@example.net"], log
    assert "status=sent" in st["later@example.net"]
    assert h.ehlos == 2 and len(h.messages) == 2
    assert h.messages[1]["rcpts"] == ["later@example.net"]
    check_content(h.messages[1]["content"])
    assert h.messages[1]["content"] == m["content"]
    assert queue(cf) == "the spool is empty\n"
    assert flush(cf) == ""
    assert h.delivered_to() == ["later@example.net", "ok@example.net"]
    assert len(bounces(tmp)) == 1


def test_aiosmtpd_data_reply_applies_to_every_recipient(tmp, peers):
    peer = aiosmtpd_peer(peers)
    peer.handler.data_reply = "452 4.3.1 insufficient system storage"
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["a@example.net", "b@example.net"])
    st = status_lines(sent.log)
    assert all("status=deferred dsn=4.3.1" in l for l in st.values()) and len(st) == 2
    peer.handler.data_reply = "250 2.0.0 Ok"
    log = flush(cf)
    assert len(status_lines(log, "sent")) == 2, log
    assert [m["rcpts"] for m in peer.handler.messages] == [
        ["a@example.net", "b@example.net"]] * 2
    assert queue(cf) == "the spool is empty\n"



class RecipientLimit(Recorder):
    """A peer that takes at most `limit` recipients per transaction and
    refuses the next ones with `reply`, as Postfix's
    smtpd_recipient_limit does."""

    def __init__(self, limit, reply):
        super().__init__()
        self.limit, self.reply = limit, reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.limit:
            self.rcpts.append((address, self.reply))
            return self.reply
        return await super().handle_RCPT(server, session, envelope, address,
                                         rcpt_options)


@pytest.mark.parametrize("reply", ["452 4.5.3 Error: too many recipients",
                                   "552 5.5.3 Too many recipients"],
                         ids=["452", "552-of-rfc821"])
def test_a_peers_recipient_limit_sends_the_rest_at_once(tmp, peers, reply):
    # RFC 5321 4.5.3.1.8/4.5.3.1.10: the recipients over the peer's limit
    # go in further transactions at once (not after a back-off), and its
    # 552 for that is temporary (no bounce)
    peer = aiosmtpd_peer(peers)
    peer.handler = RecipientLimit(2, reply)
    peer.c.handler = peer.handler
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    rcpts = ["r%d@example.net" % i for i in range(5)]
    sent = submit(cf, rcpts)
    st = status_lines(sent.log)
    assert sorted(st) == rcpts, sent.log
    assert all("status=sent dsn=2.0.0" in st[r] for r in rcpts), sent.log
    assert [m["rcpts"] for m in peer.handler.messages] == [
        rcpts[0:2], rcpts[2:4], rcpts[4:5]]
    assert peer.handler.delivered_to() == rcpts
    assert queue(cf) == "the spool is empty\n"
    assert maildir_files(os.path.join(tmp, "bounces")) == []


def test_a_recipient_limit_that_takes_nothing_defers_the_rest(tmp, peers):
    # a transaction that takes none ends the chunks: what is left waits
    # for the next attempt with the peer's 452, never a bounce
    peer = aiosmtpd_peer(peers)
    peer.handler = RecipientLimit(0, "452 4.5.3 Error: too many recipients")
    peer.c.handler = peer.handler
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["a@example.net", "b@example.net"])
    st = status_lines(sent.log)
    assert all("status=deferred dsn=4.5.3" in st[r] for r in st) and len(st) == 2, \
        sent.log
    # one transaction: no loop
    assert len(peer.handler.rcpts) == 2 and peer.handler.messages == []
    q = queue_targets(cf)
    assert [q[r][:2] for r in ("a@example.net", "b@example.net")] == \
        [("pending", 1)] * 2, q
    assert maildir_files(os.path.join(tmp, "bounces")) == []


def test_flush_tries_each_message_after_a_rcpt_450(tmp, peers):
    # a peer that answered (450 to every RCPT of one message) is no
    # unreachable destination: the next message is tried all the same
    port = free_port()
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % port])
    # two messages while the relay is down: both pending
    a = submit(cf, ["first@example.net"], message("first"))
    b = submit(cf, ["second@example.net"], message("second"))
    assert status_lines(a.log)["first@example.net"].count("status=deferred")
    assert status_lines(b.log)["second@example.net"].count("status=deferred")
    # the spool goes in name (age) order: the older one gets a 450
    older, newer = sorted([(a.id, "first@example.net"), (b.id, "second@example.net")])
    peer = aiosmtpd_peer(peers, port=port)
    peer.handler.policy = {older[1]: "450 4.2.1 busy, try later"}
    log = flush(cf)
    st = status_lines(log)
    assert "status=deferred dsn=4.2.1" in st[older[1]], log
    assert [r for r, _ in peer.handler.rcpts] == [older[1], newer[1]], (
        "the second message was not tried:\n" + log)
    assert "status=sent" in st[newer[1]], log


def test_aiosmtpd_8bitmime(tmp, peers):
    peer = aiosmtpd_peer(peers)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["joe@example.net"], eightbit_message(), params=" BODY=8BITMIME")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    (m,) = peer.handler.messages
    assert "BODY=8BITMIME" in m["options"]
    assert m["content"].endswith(b"\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n.dot\r\n")


def test_aiosmtpd_size_limit_bounces_without_sending(tmp, peers):
    peer = aiosmtpd_peer(peers, data_size_limit=100)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["joe@example.net"])
    line = status_lines(sent.log)["joe@example.net"]
    assert "status=bounced dsn=5.3.4" in line, sent.log
    assert peer.handler.mails == [] and peer.handler.messages == []
    _, rcpts, _, _ = report(bounces(tmp)[0])
    failed(rcpts["joe@example.net"], r"5\.3\.4",
           r"x-postmaster; 552 5\.3\.4 message size \d+ exceeds the limit of "
           r"127\.0\.0\.1\[127\.0\.0\.1\] \(100\)")
    assert queue(cf) == "the spool is empty\n"


def many_lines(n=2000):
    return b"Subject: many lines\r\n\r\n" + b"x\r\n" * n


def test_size_limit_counts_crlf(tmp, peers):
    # RFC 1870: the size counts CRLF line ends (the spool stores LF)
    body = many_lines()
    lf = len(body.replace(b"\r\n", b"\n"))
    # above the stored size (+ a Received header of < 400 octets), below
    # the size on the wire (+ 2000 CRs)
    limit = lf + 400 + 500
    peer = aiosmtpd_peer(peers, data_size_limit=limit)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["joe@example.net"], body)
    line = status_lines(sent.log)["joe@example.net"]
    stored = int(re.search(r" size=(\d+)", line)[1])
    assert lf < stored < limit < stored + 2000
    assert peer.handler.mails == [], "sent with %s although the peer's SIZE is %d" % (
        peer.handler.mails[0][1], limit)
    assert "status=bounced dsn=5.3.4" in line, sent.log
    wire = int(re.search(r"message size (\d+) exceeds", line)[1])
    # one CR more per line: the body's lines and our Received header's
    assert 0 < wire - stored - body.count(b"\r\n") <= 5, (wire, stored)


def test_smtputf8_to_a_peer_without_it_bounces(tmp, peers):
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    rcpt = "j\u00f6rg@example.net"
    sent = submit(cf, [rcpt], params=" SMTPUTF8")
    assert "status=bounced dsn=5.6.7" in status_lines(sent.log)[rcpt], sent.log
    assert peer.handler.mails == []
    _, rcpts, _, _ = report(bounces(tmp)[0])
    block = rcpts[rcpt]
    assert block["Final-Recipient"].split(";")[0].strip().lower() == "utf-8"
    failed(block, r"5\.6\.7", r"x-postmaster; 550 5\.6\.7 127\.0\.0\.1\[127\.0\.0\.1\] "
           r"does not support SMTPUTF8, which this message needs")


def test_smtputf8_to_a_peer_with_it(tmp, peers):
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=True)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    rcpt = "j\u00f6rg@example.net"
    sent = submit(cf, [rcpt], params=" SMTPUTF8")
    assert "status=sent" in status_lines(sent.log)[rcpt], sent.log
    (m,) = peer.handler.messages
    assert m["rcpts"] == [rcpt] and "SMTPUTF8" in m["options"]


def test_smtputf8_mail_that_does_not_need_it_goes_without_it(tmp, peers):
    """Clients that say SMTPUTF8 whenever it is offered: an ASCII sender,
    recipients and header go to a peer without SMTPUTF8 all the same,
    MAIL without the parameter (RFC 6531 3.4; Postfix delivers them
    too). It was bounced with 5.6.7."""
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    body = message("ascii") + "caf\u00e9 in the body\r\n".encode()
    sent = submit(cf, ["joe@example.net"], body=body, params=" SMTPUTF8")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    (m,) = peer.handler.messages
    assert m["rcpts"] == ["joe@example.net"]
    assert "SMTPUTF8" not in m["options"] and "BODY=8BITMIME" in m["options"]
    assert "caf\u00e9 in the body".encode() in m["content"]


def test_smtputf8_mail_with_a_utf8_header_or_recipient_still_bounces(tmp, peers):
    """What does need SMTPUTF8 does not go without it: a UTF-8 header
    fails the message, a UTF-8 recipient fails that recipient alone (the
    ASCII one in the same transaction is delivered)."""
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    utf8 = "j\u00f6rg@example.net"
    sent = submit(cf, ["joe@example.net", utf8], params=" SMTPUTF8")
    st = status_lines(sent.log)
    assert "status=sent" in st["joe@example.net"], sent.log
    assert "status=bounced dsn=5.6.7" in st[utf8], sent.log
    assert [m["rcpts"] for m in peer.handler.messages] == [["joe@example.net"]]
    (b,) = bounces(tmp)
    assert list(report(b)[1]) == [utf8]
    sent = submit(cf, ["ann@example.net"], params=" SMTPUTF8",
                  body=message("Gr\u00fc\u00dfe"))
    assert "status=bounced dsn=5.6.7" in status_lines(sent.log)["ann@example.net"], sent.log
    assert len(peer.handler.messages) == 1


# ------------------------------------------------------------------ #
# 6. Several recipients at one destination: one connection           #


def test_one_connection_per_destination(tmp, peers):
    one, two = aiosmtpd_peer(peers), aiosmtpd_peer(peers)
    cf = write_cf(tmp, """\
[relay "one"]
address = [127.0.0.1]:%d
[relay "two"]
address = [127.0.0.1]:%d
[route]
list@example.com a@example.net, b@example.net, c@example.com, a@example.net
@example.net one
@example.org one
@example.com two
""" % (one.port, two.port))
    rcpts = ["a@example.net", "b@example.net", "c@example.org", "d@example.com",
             "e@example.com", "list@example.com"]
    sent = submit(cf, rcpts)
    st = status_lines(sent.log, "sent")
    assert sorted(st) == ["a@example.net", "b@example.net", "c@example.com",
                          "c@example.org", "d@example.com", "e@example.com"], sent.log
    # one connection and one transaction each; an address reached twice
    # is sent once
    assert one.handler.ehlos == 1 and two.handler.ehlos == 1
    assert [m["rcpts"] for m in one.handler.messages] == [
        ["a@example.net", "b@example.net", "c@example.org"]]
    assert [m["rcpts"] for m in two.handler.messages] == [
        ["d@example.com", "e@example.com", "c@example.com"]]
    for m in one.handler.messages + two.handler.messages:
        check_content(m["content"])
    assert queue(cf) == "the spool is empty\n"


def test_queue_run_does_not_wait_for_delayed_acks(tmp, peers):
    """A queue run to one host sends its messages back to back. Each
    message ends with the final dot written after the data; with Nagle's
    algorithm on, that small write waits for the peer's delayed ACK, at
    least 40 ms on Linux (TCP_DELACK_MIN), so 25 messages would take a
    second or more. With TCP_NODELAY they take a few ms each, under the
    sanitizers too: the bound below is far from both."""
    port = free_port()
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % port])
    for _ in range(25):  # the relay is down: each one stays queued
        sent = submit(cf, ["joe@example.net"])
        assert "status=deferred" in sent.log, sent.log
    sink = SmtpSink(tmp, port=port)
    peers.append(sink)
    t0 = time.monotonic()
    log = flush(cf)
    took = time.monotonic() - t0
    st = re.findall(r"^.* to=<joe@example.net> .*status=sent.*$", log, re.M)
    assert len(st) == 25, log
    assert len(wait_for(lambda: len(sink.messages()) == 25 and sink.messages(),
                        what="25 dumps")) == 25
    assert took < 0.75, "25 messages took %.2f s: waiting for ACKs?" % took
    assert queue(cf) == "the spool is empty\n"


# ------------------------------------------------------------------ #
# 3. LMTP: Dovecot                                                   #


class Dovecot:
    """A private Dovecot that serves LMTP only, on a unix socket and on
    127.0.0.1:port, for the users joe and ann (anyone else is unknown)."""

    def __init__(self, tmp):
        dovecot = tool("dovecot")
        if not os.path.exists("/usr/lib/dovecot/lmtp"):
            pytest.skip("Dovecot's LMTP server is not installed")
        if not ROOT:
            pytest.skip("a private Dovecot needs root here")
        self.dir = d = os.path.join(tmp, "dovecot")
        os.makedirs(os.path.join(d, "run"))
        os.chmod(d, 0o755)
        self.mail = mkdir(d, "mail")
        self.socket = os.path.join(d, "lmtp.sock")
        self.port = free_port()
        with open(os.path.join(d, "users"), "w") as f:
            for u in ("joe", "ann"):
                f.write("%s:{PLAIN}x:65534:65534::%s/%s::\n" % (u, self.mail, u))
            # a user whose mailbox cannot be made: a failure after the data
            locked = os.path.join(d, "locked")
            os.mkdir(locked, 0o755)
            f.write("locked:{PLAIN}x:65534:65534::%s/home::\n" % locked)
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
mail_location = maildir:~/Maildir
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service lmtp {{
  unix_listener lmtp {{
    path = {sock}
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
""".format(d=d, sock=self.socket, port=self.port))
        try:
            self.d = Daemon([dovecot, "-F", "-c", conf], os.path.join(d, "stdout.log"),
                            lambda: os.path.exists(self.socket) and
                            listening(self.port, "127.0.0.1"), "dovecot")
        except RuntimeError as e:
            pytest.skip("Dovecot cannot run here: %s" % e)

    def inbox(self, user):
        home = os.path.join(self.dir, user) if user.startswith("locked") else \
            os.path.join(self.mail, user)
        return sorted(glob.glob(os.path.join(home, "Maildir", "new", "*")))

    def stop(self):
        self.d.stop()


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_dovecot_lmtp(tmp, peers, via):
    dv = Dovecot(tmp)
    peers.append(dv)
    address = "unix:" + dv.socket if via == "unix" else "[127.0.0.1]:%d" % dv.port
    remote = address if via == "unix" else "127.0.0.1[127.0.0.1]"
    cf = relay_cf(tmp, [address], protocol="lmtp")
    # joe and ann are delivered, nobody-here is unknown (550 at RCPT),
    # locked fails after the data (451): LMTP's one reply per recipient
    sent = submit(cf, ["joe@example.net", "nobody-here@example.net",
                       "locked@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    for u in ("joe", "ann"):
        line = st[u + "@example.net"]
        assert "status=sent dsn=2.0.0" in line, sent.log
        assert " relay=%s tls=no status=" % remote in line
        assert "said: <%s@example.net> " % u in line  # Dovecot's reply for u
        (path,) = dv.inbox(u)
        with open(path, "rb") as f:
            data = f.read()
        # Dovecot stores LF lines, after its Return-Path and Delivered-To
        assert data.startswith(b"Return-Path: <ann@sender.example>\n"), data
        assert b"\nReceived: from client.example (local)\n\tby mail.example.net " \
            b"(postmaster) with ESMTP id " in data
        assert data.endswith(b"\n\n" + BODY.replace(b"\r\n", b"\n")), data
    assert "status=deferred dsn=4." in st["locked@example.net"], sent.log
    assert "said: <locked@example.net> " in st["locked@example.net"]
    # the unknown user: Dovecot's own 550 at RCPT, bounced at once
    assert "status=bounced dsn=5.1.1" in st["nobody-here@example.net"], sent.log
    _, rcpts, text, _ = report(bounces(tmp)[0])
    assert list(rcpts) == ["nobody-here@example.net"]
    failed(rcpts["nobody-here@example.net"], r"5\.1\.1",
           r"smtp; 550 5\.1\.1 <nobody-here@example\.net> User doesn't exist: "
           r"nobody-here@example\.net",
           remote=None if via == "unix" else "127.0.0.1")
    q = queue_targets(cf)
    assert q["locked@example.net"][:2] == ("pending", 1), queue(cf)
    assert [q[r][0] for r in ("joe@example.net", "ann@example.net",
                              "nobody-here@example.net")] == [
        "delivered", "delivered", "failed"], queue(cf)
    # the mailbox can be made now: the flush delivers it, and only it
    os.chown(os.path.join(dv.dir, "locked"), 65534, 65534)
    log = flush(cf)
    assert list(status_lines(log)) == ["locked@example.net"], log
    assert "status=sent" in status_lines(log)["locked@example.net"], log
    assert len(dv.inbox("locked/home")) == 1
    assert len(dv.inbox("joe")) == 1 and len(dv.inbox("ann")) == 1
    assert queue(cf) == "the spool is empty\n"
    dlog = open(os.path.join(dv.dir, "dovecot.log"), errors="replace").read()
    assert dlog.count("Connect from") == 2, dlog  # one per delivery run


# ------------------------------------------------------------------ #
# 4. A private Postfix instance as the next hop                      #


class Postfix:
    """A private Postfix (its own configuration, queue and logs) on
    127.0.0.1:port that delivers joe@, ann@ and later@pf.example into
    Maildirs (virtual(8)); later@ gets a 450 at RCPT, rejected@sender.example
    a 554 at MAIL, other users 550 (unknown). It also relays for
    relay.example, whose known recipients are listed in
    relay_recipient_maps (joe@ and ann@, delivered into Maildirs relay-joe/
    and relay-ann/): anyone else there gets 550 5.1.1 at RCPT."""

    def __init__(self):
        postfix = tool("postfix")
        if not ROOT:
            pytest.skip("a private Postfix instance needs root")
        if not os.path.exists("/usr/share/postfix/master.cf.dist"):
            pytest.skip("no /usr/share/postfix/master.cf.dist")
        self.dir = d = tempfile.mkdtemp(prefix="pm-onward-postfix-")
        os.chmod(d, 0o755)
        for sub in ("etc", "queue", "data"):
            os.mkdir(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "data"), "postfix")
        self.mail = os.path.join(d, "mail")
        os.mkdir(self.mail)
        shutil.chown(self.mail, "nobody")
        self.port = free_port()
        self.etc = os.path.join(d, "etc")
        self.log = os.path.join(d, "maillog")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = pf.localdomain
mydestination =
relay_domains = relay.example
relay_recipient_maps = inline:{{ joe@relay.example=ok, ann@relay.example=ok }}
relay_transport = virtual:
alias_maps =
local_recipient_maps =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = pf.example
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = inline:{{ joe@pf.example=joe/, ann@pf.example=ann/, later@pf.example=later/,
    joe@relay.example=relay-joe/, ann@relay.example=relay-ann/ }}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access inline:{{ {{rejected@sender.example=554 5.7.1 sender refused by policy}} }}
smtpd_recipient_restrictions = check_recipient_access inline:{{ {{later@pf.example=450 4.2.0 mailbox busy}} }}, permit_mynetworks, reject
maillog_file = {d}/maillog
maillog_file_prefixes = /tmp, /var
""".format(d=d))
        with open("/usr/share/postfix/master.cf.dist") as f:
            master = f.read()
        master = re.sub(r"(?m)^smtp      inet.*$",
                        "127.0.0.1:%d inet n - n - - smtpd" % self.port, master)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)
        r = subprocess.run([postfix, "-c", self.etc, "start"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            out = r.stdout + r.stderr + self.maillog()
            self.stop()
            pytest.skip("Postfix cannot start here: " + out)
        try:
            wait_for(lambda: listening(self.port, "127.0.0.1"), 15, "Postfix")
        except AssertionError:
            self.stop()
            raise

    def maillog(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def inbox(self, user):
        return sorted(glob.glob(os.path.join(self.mail, user, "new", "*")))

    def stop(self):
        subprocess.run([tool("postfix"), "-c", self.etc, "stop"], capture_output=True,
                       timeout=60)
        pidfile = os.path.join(self.dir, "queue", "pid", "master.pid")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    pid = int(f.read().split()[0])
                os.kill(pid, 0)
            except (OSError, ValueError, IndexError):
                break
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix():
    p = Postfix()
    yield p
    p.stop()


def test_postfix_next_hop(tmp, postfix):
    cf = write_cf(tmp, '[relay "pf"]\naddress = [127.0.0.1]:%d\n[route]\n@pf.example pf\n'
                  % postfix.port)
    # a body over 32 KiB: several BDAT chunks (Postfix offers CHUNKING)
    big = b"".join(b"%05d " % i + b"y" * 70 + b"\r\n" for i in range(600))
    body = message("onward") + big
    rcpts = ["joe@pf.example", "unknown@pf.example", "later@pf.example", "ann@pf.example"]
    sent = submit(cf, rcpts, body)
    st = status_lines(sent.log)
    assert "status=sent dsn=2.0.0" in st["joe@pf.example"], sent.log
    assert "status=sent dsn=2.0.0" in st["ann@pf.example"], sent.log
    assert "status=bounced dsn=5.1.1" in st["unknown@pf.example"], sent.log
    assert "status=deferred dsn=4.2.0" in st["later@pf.example"], sent.log
    assert re.search(r"said: Ok: \d+ bytes queued as \w+\"$", st["joe@pf.example"])
    for u in ("joe", "ann"):
        (path,) = wait_for(lambda: postfix.inbox(u), 10, "Postfix's delivery to " + u)
        with open(path, "rb") as f:
            data = f.read()
        # Postfix's Return-Path, Delivered-To and Received, then ours
        assert data.startswith(b"Return-Path: <ann@sender.example>\n"), data
        assert b"by pf.localdomain (Postfix) with ESMTP id " in data
        assert b"\nReceived: from client.example (local)\n\tby mail.example.net " \
            b"(postmaster) with ESMTP id " in data
        assert data.endswith(b"\n\n" + body.split(b"\r\n\r\n", 1)[1].replace(
            b"\r\n", b"\n")), data[-300:]
    # one connection, one transaction, in BDAT chunks
    log = postfix.maillog()
    disconnects = re.findall(r"disconnect from localhost\[127\.0\.0\.1\] (.*)", log)
    assert len(disconnects) == 1, log
    stored = int(re.search(r" size=(\d+)", st["joe@pf.example"])[1])
    chunks = (stored + 32767) // 32768
    assert chunks >= 2
    assert " bdat=%d " % (chunks + 1) in disconnects[0], disconnects  # and BDAT 0 LAST
    assert "rcpt=2/4" in disconnects[0], disconnects
    assert "data=" not in disconnects[0]
    _, brcpts, _, _ = report(bounces(tmp)[0])
    assert list(brcpts) == ["unknown@pf.example"]
    failed(brcpts["unknown@pf.example"], r"5\.1\.1",
           r"smtp; 550 5\.1\.1 <unknown@pf\.example>: Recipient address rejected: "
           r"User unknown in virtual mailbox table", remote="127.0.0.1")
    q = queue_targets(cf)
    assert q["later@pf.example"] == ("pending", 1, "450 4.2.0 127.0.0.1[127.0.0.1] said: "
                                     "<later@pf.example>: Recipient address rejected: "
                                     "mailbox busy"), queue(cf)


def test_postfix_refuses_the_sender(tmp, postfix):
    # a pipelined MAIL that is refused: the RCPT replies that follow are
    # skipped, and every recipient bounces with the MAIL reply
    cf = write_cf(tmp, '[relay "pf"]\naddress = [127.0.0.1]:%d\n[route]\n@pf.example pf\n'
                  % postfix.port)
    sent = submit(cf, ["joe@pf.example", "ann@pf.example"],
                  sender="rejected@sender.example")
    st = status_lines(sent.log)
    assert len(st) == 2, sent.log
    assert all("status=bounced dsn=5.7.1" in l for l in st.values()), sent.log
    assert queue(cf) == "the spool is empty\n"
    msg = bounces(tmp)[0]
    assert msg["To"].addresses[0].addr_spec == "rejected@sender.example"
    blocks = msg.get_payload()[1].get_payload()[1:]
    assert sorted(b["Final-Recipient"] for b in blocks) == [
        "rfc822; ann@pf.example", "rfc822; joe@pf.example"]
    for b in blocks:
        failed(b, r"5\.7\.1", r"smtp; 554 5\.7\.1 <rejected@sender\.example>: Sender "
               r"address rejected: sender refused by policy", remote="127.0.0.1")


# ------------------------------------------------------------------ #
# 5. MX records (dnsmasq) and MX hosts on port 25 of 127.x.y.z       #


class Dnsmasq:
    def __init__(self, tmp, records):
        self.port = free_port()
        argv = [tool("dnsmasq"), "--no-daemon", "--conf-file=/dev/null",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll",
                "--pid-file=" + os.path.join(tmp, "dnsmasq.pid"),
                "--local=/example/", "--log-queries", "--log-facility=-"]
        if ROOT:
            argv += ["--user=nobody", "--group=nogroup"]
        self.d = Daemon(argv + list(records), os.path.join(tmp, "dnsmasq.log"),
                        lambda: listening(self.port, "127.0.0.1"), "dnsmasq")

    def queries(self):
        return re.findall(r"query\[(\w+)\] (\S+) from", self.d.output())

    def stop(self):
        self.d.stop()


@pytest.fixture
def mxnet():
    """A random 127.x.y.0/24 (not an interface address: remote) whose
    .2 to .9 can listen on port 25; skips when port 25 is taken."""
    if not ROOT:
        pytest.skip("port 25 needs root")
    if listening(25, "0.0.0.0"):
        pytest.skip("something listens on *:25")
    for _ in range(20):
        base = "127.%d.%d." % (random.randint(1, 254), random.randint(1, 254))
        try:
            for i in range(2, 10):
                with socket.socket() as s:
                    s.bind((base + str(i), 25))
            return base
        except OSError:
            continue
    pytest.skip("cannot bind port 25 on 127.x.y.z")


def mx_cf(tmp, dns, routes, core=""):
    return write_cf(tmp, "[route]\n" + routes, dns_port=dns.port, core=core)


def test_queue_lifetime_zero(tmp):
    for lifetime in ("1s", "0s"):
        cf = os.path.join(tmp, "q.cf")
        with open(cf, "w") as f:
            f.write("[core]\nqueue-lifetime = %s\n%s" % (
                lifetime, "user-id = nobody\n" if ROOT else ""))
        r = pm(cf, "--check")
        assert r.returncode == 0, lifetime + ": " + r.stdout + r.stderr


def test_mx_best_down_next_is_used(tmp, peers, mxnet):
    dns = Dnsmasq(tmp, [
        "--mx-host=multi.example,mx1.multi.example,10",
        "--mx-host=multi.example,mx2.multi.example,20",
        "--mx-host=multi.example,mx3.multi.example,30",
        "--host-record=mx1.multi.example," + mxnet + "2",
        "--host-record=mx2.multi.example," + mxnet + "3",
        "--host-record=mx3.multi.example," + mxnet + "4"])
    peers.append(dns)
    mx2 = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    mx3 = aiosmtpd_peer(peers, host=mxnet + "4", port=25)
    cf = mx_cf(tmp, dns, "@multi.example mx\n")
    rcpts = ["a@multi.example", "b@multi.example", "c@multi.example"]
    sent = submit(cf, rcpts)
    st = status_lines(sent.log)
    assert sorted(st) == rcpts, sent.log
    for line in st.values():
        assert ' target="mx' in line
        assert ' relay=mx2.multi.example[%s3] tls=no status=sent' % mxnet in line, sent.log
    # the three recipients in one connection and one transaction
    assert mx2.handler.ehlos == 1
    assert [m["rcpts"] for m in mx2.handler.messages] == [rcpts]
    check_content(mx2.handler.messages[0]["content"])
    assert mx3.handler.ehlos == 0 and mx3.handler.messages == []
    assert ("MX", "multi.example") in dns.queries()
    assert queue(cf) == "the spool is empty\n"


def test_mx_all_down_deferred_then_bounced(tmp, peers, mxnet):
    dns = Dnsmasq(tmp, [
        "--mx-host=down.example,mx1.down.example,10",
        "--mx-host=down.example,mx2.down.example,20",
        "--host-record=mx1.down.example," + mxnet + "2",
        "--host-record=mx2.down.example," + mxnet + "3"])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@down.example mx\n")
    sent = submit(cf, ["joe@down.example", "ann@down.example"])
    st = status_lines(sent.log)
    why = "451 4.4.1 connect to mx2.down.example[%s3]: Connection refused" % mxnet
    for r in ("joe@down.example", "ann@down.example"):
        assert "status=deferred dsn=4.4.1" in st[r], sent.log
        assert 'reply="%s"' % why in st[r]
    q = queue_targets(cf)
    assert q == {"joe@down.example": ("pending", 1, why),
                 "ann@down.example": ("pending", 1, why)}, queue(cf)
    # retried by --flush --now: still down, one more attempt each
    log = flush(cf)
    assert len(status_lines(log, "deferred")) == 2, log
    q = queue_targets(cf)
    assert [v[:2] for v in q.values()] == [("pending", 2)] * 2, queue(cf)
    assert maildir_files(tmp + "/bounces") == []
    # past the queue lifetime the next failure bounces
    log = flush(cf, "--core-queue-lifetime=0s")
    st = status_lines(log)
    # the expired failure keeps its 4.x.x status (Postfix does the same)
    assert all("status=bounced dsn=4.4.1" in l for l in st.values()) and len(st) == 2, log
    assert queue(cf) == "the spool is empty\n"
    (b,) = bounces(tmp)
    per_msg, rcpts, text, headers = report(b)
    assert per_msg["X-Postmaster-Queue-ID"] == sent.id
    assert per_msg["Arrival-Date"]
    assert sorted(rcpts) == ["ann@down.example", "joe@down.example"]
    for block in rcpts.values():
        failed(block, r"4\.4\.1",
               r"x-postmaster; 451 4\.4\.1 connect to mx2\.down\.example\[%s3\]: "
               r"Connection refused \(gave up after \d+ seconds in the queue\)"
               % re.escape(mxnet))
    assert "Subject: onward" in headers
    assert "could not\nbe delivered to the following recipients" in text


@pytest.mark.parametrize("record", ["--dns-rr=nullmx.example,15,000000",
                                    "--mx-host=nullmx.example,.,0"],
                         ids=["rdata", "dot"])
def test_null_mx_bounces_at_once(tmp, peers, record):
    dns = Dnsmasq(tmp, [record])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@nullmx.example mx\n")
    sent = submit(cf, ["joe@nullmx.example"])
    line = status_lines(sent.log)["joe@nullmx.example"]
    assert "status=bounced dsn=5.1.10" in line, sent.log
    assert queue(cf) == "the spool is empty\n"
    _, rcpts, _, _ = report(bounces(tmp)[0])
    failed(rcpts["joe@nullmx.example"], r"5\.1\.10",
           r"x-postmaster; 556 5\.1\.10 domain nullmx\.example accepts no mail "
           r"\(null MX\)")
    assert [q for q in dns.queries() if q[1] == "nullmx.example"] == [("MX", "nullmx.example")]


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "::",
                                     "::ffff:127.0.0.1"])
def test_mx_loops_back_to_myself(tmp, peers, address):
    """An interface address, the unspecified address (a connection to it
    reaches this machine) and the v4-mapped form of one: all this
    machine."""
    dns = Dnsmasq(tmp, ["--mx-host=loop.example,mx.loop.example,10",
                        "--host-record=mx.loop.example," + address])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@loop.example mx\n")
    sent = submit(cf, ["joe@loop.example"])
    assert "status=bounced dsn=5.4.6" in status_lines(sent.log)["joe@loop.example"], sent.log
    _, rcpts, _, _ = report(bounces(tmp)[0])
    failed(rcpts["joe@loop.example"], r"5\.4\.6",
           r"x-postmaster; 554 5\.4\.6 mail for loop\.example loops back to myself")
    assert queue(cf) == "the spool is empty\n"


def test_mx_hosts_worse_than_myself_are_not_used(tmp, peers, mxnet):
    # RFC 5321 5.1: MX hosts at or below this host's own preference are
    # dropped; the better one is down, so the mail waits (no loop, and
    # the worse MX gets nothing)
    dns = Dnsmasq(tmp, [
        "--mx-host=mid.example,better.mid.example,5",
        "--mx-host=mid.example,self.mid.example,10",
        "--mx-host=mid.example,worse.mid.example,20",
        "--host-record=better.mid.example," + mxnet + "2",
        "--host-record=self.mid.example,127.0.0.1",
        "--host-record=worse.mid.example," + mxnet + "3"])
    peers.append(dns)
    worse = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    cf = mx_cf(tmp, dns, "@mid.example mx\n")
    sent = submit(cf, ["joe@mid.example"])
    line = status_lines(sent.log)["joe@mid.example"]
    assert "status=deferred dsn=4.4.1" in line, sent.log
    assert "connect to better.mid.example[%s2]: Connection refused" % mxnet in line
    assert worse.handler.ehlos == 0
    # the better one comes up: delivered there
    better = aiosmtpd_peer(peers, host=mxnet + "2", port=25)
    log = flush(cf)
    assert "relay=better.mid.example[%s2] tls=no status=sent" % mxnet in \
        status_lines(log)["joe@mid.example"], log
    assert len(better.handler.messages) == 1 and worse.handler.ehlos == 0


def test_mx_self_first_is_a_loop_even_with_worse_hosts(tmp, peers, mxnet):
    dns = Dnsmasq(tmp, [
        "--mx-host=first.example,self.first.example,10",
        "--mx-host=first.example,worse.first.example,20",
        "--host-record=self.first.example,127.0.0.1",
        "--host-record=worse.first.example," + mxnet + "3"])
    peers.append(dns)
    worse = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    cf = mx_cf(tmp, dns, "@first.example mx\n")
    sent = submit(cf, ["joe@first.example"])
    assert "status=bounced dsn=5.4.6" in status_lines(sent.log)["joe@first.example"]
    assert worse.handler.ehlos == 0


def test_mx_equal_preference_with_myself_is_a_loop(tmp, peers, mxnet):
    # RFC 5321 5.1: records at this host's preference level are dropped
    # too, whatever their order in the answer
    # the same MX set twice, in both orders, so that the result does not
    # depend on the order in which dnsmasq answers
    records = []
    for dom, order in (("eq1.example", ("self", "other")),
                       ("eq2.example", ("other", "self"))):
        for h in order:
            records.append("--mx-host=%s,%s.%s,10" % (dom, h, dom))
        records += ["--host-record=self.%s,127.0.0.1" % dom,
                    "--host-record=other.%s,%s3" % (dom, mxnet)]
    dns = Dnsmasq(tmp, records)
    peers.append(dns)
    other = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    cf = mx_cf(tmp, dns, "@eq1.example mx\n@eq2.example mx\n")
    sent = submit(cf, ["joe@eq1.example", "joe@eq2.example"])
    st = status_lines(sent.log)
    for r in ("joe@eq1.example", "joe@eq2.example"):
        assert "status=bounced dsn=5.4.6" in st[r], sent.log
    assert other.handler.messages == []


@pytest.mark.parametrize("best", ["self", "primary"])
def test_mx_best_record_last_of_seventeen_counts(tmp, peers, mxnet, best):
    # 17 MX records, the best one last in the answer (dnsmasq answers in
    # the reverse order of its options): the whole set is sorted before
    # any is dropped, so this machine's own record still makes a loop,
    # and a real primary still gets the mail (RFC 5321 5.1)
    records = ["--mx-host=big.example,best.big.example,10",
               "--host-record=best.big.example," +
               ("127.0.0.1" if best == "self" else mxnet + "2")]
    for i in range(16):
        records += ["--mx-host=big.example,mx%d.big.example,20" % i,
                    "--host-record=mx%d.big.example,%s3" % (i, mxnet)]
    dns = Dnsmasq(tmp, records)
    peers.append(dns)
    backup = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    primary = aiosmtpd_peer(peers, host=mxnet + "2", port=25)
    cf = mx_cf(tmp, dns, "@big.example mx\n")
    sent = submit(cf, ["joe@big.example"])
    line = status_lines(sent.log)["joe@big.example"]
    if best == "self":
        assert "status=bounced dsn=5.4.6" in line, sent.log
        assert "mail for big.example loops back to myself" in line
    else:
        assert "relay=best.big.example[%s2] tls=no status=sent" % mxnet in line, sent.log
        assert len(primary.handler.messages) == 1
    assert backup.handler.ehlos == 0 and backup.handler.messages == []


def test_mx_hosts_of_equal_preference_share_the_load(tmp, peers, mxnet):
    # RFC 5321 5.1: hosts of one preference MUST be tried in random
    # order; dnsmasq gives them in the same order every time
    dns = Dnsmasq(tmp, ["--mx-host=eq.example,mxa.eq.example,10",
                        "--mx-host=eq.example,mxb.eq.example,10",
                        "--host-record=mxa.eq.example," + mxnet + "2",
                        "--host-record=mxb.eq.example," + mxnet + "3"])
    peers.append(dns)
    a = aiosmtpd_peer(peers, host=mxnet + "2", port=25)
    b = aiosmtpd_peer(peers, host=mxnet + "3", port=25)
    cf = mx_cf(tmp, dns, "@eq.example mx\n")
    for i in range(16):  # all at one host: 2 chances in 65536
        sent = submit(cf, ["joe%d@eq.example" % i])
        assert "status=sent" in status_lines(sent.log)["joe%d@eq.example" % i], sent.log
    assert len(a.handler.messages) + len(b.handler.messages) == 16
    assert a.handler.messages and b.handler.messages, \
        (len(a.handler.messages), len(b.handler.messages))


@pytest.mark.parametrize("primary", ["timeout", "nxdomain"])
def test_backup_mx_waits_when_the_primary_has_no_address(tmp, peers, primary):
    # this machine is the backup MX; the primary's address cannot be
    # found: no loop (a better MX exists), the mail waits for it, as
    # Postfix does ("unable to find primary relay", 4.4.4; 4.4.3 when
    # the lookup failed for now)
    host = "primary.dead.test" if primary == "timeout" else "primary.backup.example"
    dns = Dnsmasq(tmp, ["--server=/dead.test/127.0.0.1#9",
                        "--mx-host=backup.example,%s,10" % host,
                        "--mx-host=backup.example,self.backup.example,20",
                        "--host-record=self.backup.example,127.0.0.1"])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@backup.example mx\n")
    sent = submit(cf, ["joe@backup.example"])
    line = status_lines(sent.log)["joe@backup.example"]
    dsn = "4.4.3" if primary == "timeout" else "4.4.4"
    assert "status=deferred dsn=" + dsn in line, sent.log
    why = "451 %s unable to find primary relay for backup.example" % dsn
    assert 'reply="%s"' % why in line
    assert queue_targets(cf) == {"joe@backup.example": ("pending", 1, why)}, queue(cf)
    assert maildir_files(tmp + "/bounces") == []


class Tarpit:
    """Listeners on port 25 of some addresses that answer 421 at once
    (or, with greet, greet, answer EHLO and then MAIL with 421) and count
    the connections."""

    def __init__(self, addresses, greet=False, port=25):
        self.greet = greet
        self.socks = []
        for a in addresses:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a, port))
            s.listen(8)
            self.socks.append(s)
        self.connections = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            ready = select.select(self.socks, [], [], 0.2)[0]
            for s in ready:
                c, _ = s.accept()
                self.connections.append(s.getsockname()[0])
                if self.greet:
                    c.settimeout(5)
                    f = c.makefile("rb")
                    c.sendall(b"220 tarpit ESMTP\r\n")
                    f.readline()
                    c.sendall(b"250 tarpit\r\n")
                    f.readline()
                c.sendall(b"421 4.3.2 busy\r\n")
                c.close()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for s in self.socks:
            s.close()


@pytest.mark.parametrize("hosts", ["refusing", "tarpits", "sessions"])
def test_one_attempt_tries_five_addresses_and_two_sessions(tmp, peers, mxnet, hosts):
    # eight MX hosts, one address each: a delivery attempt tries at most
    # five addresses and at most two sessions that got past EHLO (Postfix's
    # smtp_mx_address_limit and smtp_mx_session_limit), so a domain of
    # tarpits cannot hold the flusher for hours
    records = []
    for i in range(8):
        records += ["--mx-host=many.example,mx%d.many.example,%d" % (i, 10 * (i + 1)),
                    "--host-record=mx%d.many.example,%s%d" % (i, mxnet, i + 2)]
    dns = Dnsmasq(tmp, records)
    peers.append(dns)
    if hosts == "refusing":  # the first five refuse; the last would take it
        tarpit = Tarpit([mxnet + "7", mxnet + "8"])
        last = aiosmtpd_peer(peers, host=mxnet + "9", port=25)
    else:
        tarpit = Tarpit([mxnet + str(i + 2) for i in range(8)],
                        greet=hosts == "sessions")
    peers.append(tarpit)
    cf = mx_cf(tmp, dns, "@many.example mx\n")
    sent = submit(cf, ["joe@many.example"])
    line = status_lines(sent.log)["joe@many.example"]
    if hosts == "refusing":
        assert "status=deferred dsn=4.4.1" in line, sent.log
        assert "connect to mx4.many.example[%s6]: Connection refused" % mxnet in line
        assert tarpit.connections == [] and last.handler.ehlos == 0
    elif hosts == "sessions":
        assert "status=deferred dsn=4.3.2" in line, sent.log
        assert "mx1.many.example[%s3] said: busy" % mxnet in line
        assert tarpit.connections == [mxnet + "2", mxnet + "3"]
    else:  # a 421 greeting is no session: five addresses are tried
        assert "status=deferred dsn=4.3.2" in line, sent.log
        assert "mx4.many.example[%s6] said: busy" % mxnet in line
        assert tarpit.connections == [mxnet + str(i + 2) for i in range(5)]
    asked = [q[1] for q in dns.queries() if q[0] == "A"]
    assert "mx7.many.example" not in asked, asked


def test_a_relays_address_list_is_tried_whole(tmp, peers):
    # the limit of five addresses is an MX list's: a [relay] whose sixth
    # address is the only one that answers delivers there (it once
    # deferred until the message bounced)
    last = aiosmtpd_peer(peers)
    dead = ["[127.0.0.1]:%d" % free_port() for _ in range(5)]
    cf = relay_cf(tmp, dead + ["[127.0.0.1]:%d" % last.port])
    sent = submit(cf, ["joe@example.net"])
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    assert [m["rcpts"] for m in last.handler.messages] == [["joe@example.net"]]


def test_a_relays_address_list_is_tried_whole_past_two_sessions(tmp, peers):
    # the limit of two sessions is an MX list's too: a [relay] whose first
    # two addresses greet, answer EHLO and refuse MAIL with 421 delivers
    # to its third (it once deferred at every run until the bounce)
    last = aiosmtpd_peer(peers)
    busy = [Tarpit(["127.0.0.1"], greet=True, port=free_port())
            for _ in range(2)]
    peers.extend(busy)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % b.socks[0].getsockname()[1]
                        for b in busy] + ["[127.0.0.1]:%d" % last.port])
    sent = submit(cf, ["joe@example.net"])
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    assert [b.connections for b in busy] == [["127.0.0.1"], ["127.0.0.1"]]


def test_mx_domain_not_found_bounces(tmp, peers):
    dns = Dnsmasq(tmp, [])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@nosuch.example mx\n")
    sent = submit(cf, ["joe@nosuch.example"])
    assert "status=bounced dsn=5.1.2" in status_lines(sent.log)["joe@nosuch.example"], \
        sent.log
    _, rcpts, _, _ = report(bounces(tmp)[0])
    failed(rcpts["joe@nosuch.example"], r"5\.1\.2",
           r"x-postmaster; 550 5\.1\.2 domain nosuch\.example not found")


def test_no_mx_uses_the_address_record(tmp, peers, mxnet):
    # RFC 5321 5.1: without MX records the domain itself is the MX
    dns = Dnsmasq(tmp, ["--host-record=plain.example," + mxnet + "5"])
    peers.append(dns)
    peer = aiosmtpd_peer(peers, host=mxnet + "5", port=25)
    cf = mx_cf(tmp, dns, "@plain.example mx\n")
    sent = submit(cf, ["joe@plain.example"])
    assert "relay=plain.example[%s5] tls=no status=sent" % mxnet in \
        status_lines(sent.log)["joe@plain.example"], sent.log
    assert [m["rcpts"] for m in peer.handler.messages] == [["joe@plain.example"]]
    assert ("MX", "plain.example") in dns.queries()


def test_host_target_with_port_goes_through_its_mx(tmp, peers, mxnet):
    # a bare host name target: its MX records, then their addresses, on
    # the target's port
    peer = aiosmtpd_peer(peers, host=mxnet + "6")
    dns = Dnsmasq(tmp, ["--mx-host=hub.example,in.hub.example,10",
                        "--host-record=in.hub.example," + mxnet + "6",
                        "--host-record=hub.example," + mxnet + "7"])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@example.net hub.example:%d\n" % peer.port)
    sent = submit(cf, ["joe@example.net", "ann@example.net"])
    st = status_lines(sent.log)
    for r in ("joe@example.net", "ann@example.net"):
        assert "relay=in.hub.example[%s6] tls=no status=sent" % mxnet in st[r], sent.log
    assert [m["rcpts"] for m in peer.handler.messages] == [
        ["joe@example.net", "ann@example.net"]]
    assert ("MX", "hub.example") in dns.queries()


def test_bracketed_host_name_uses_dns_server(tmp, peers, mxnet):
    # core.dns-server answers for the address records of a bracketed host
    # name (no MX lookup), as for every lookup of onward delivery
    peer = aiosmtpd_peer(peers, host=mxnet + "6", port=25)
    dns = Dnsmasq(tmp, ["--mx-host=hub.example,elsewhere.hub.example,10",
                        "--host-record=hub.example," + mxnet + "6"])
    peers.append(dns)
    cf = mx_cf(tmp, dns, "@example.net [hub.example]\n")
    sent = submit(cf, ["joe@example.net"])
    assert "relay=hub.example[%s6] tls=no status=sent" % mxnet in \
        status_lines(sent.log)["joe@example.net"], sent.log
    assert len(peer.handler.messages) == 1


@pytest.mark.parametrize("target", ["[@IP@]:smtp", "@IP@:smtp"])
def test_port_written_as_a_service_name(tmp, peers, mxnet, target):
    # --check accepts a service name for the port: delivery connects to
    # that port too (one endpoint parser for both), not to port 0
    ip = mxnet + "7"
    peer = aiosmtpd_peer(peers, host=ip, port=25)
    cf = write_cf(tmp, "[route]\n@example.net %s\n" % target.replace("@IP@", ip))
    assert pm(cf, "--check").returncode == 0
    sent = submit(cf, ["joe@example.net"])
    assert "relay=%s[%s] tls=no status=sent" % (ip, ip) in \
        status_lines(sent.log)["joe@example.net"], sent.log
    assert len(peer.handler.messages) == 1


# ------------------------------------------------------------------ #
# What the peer cannot take                                          #


BINARY_PAYLOAD = bytes(range(256)) + b"\r\n.\r\nlone\rCR lone\nLF\x00" + b"z" * 2000


def test_binarymime_to_a_peer_without_it(tmp, peers):
    # BODY=BINARYMIME to a peer without CHUNKING and BINARYMIME: base64
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    s = Session(cf)
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<%s> BODY=BINARYMIME" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        data = (b"Subject: binary\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: binary\r\n\r\n" + BINARY_PAYLOAD)
        s.send(b"BDAT %d LAST\r\n" % len(data) + data)
        reply = s.reply()
        assert reply.startswith("250 2.0.0 Ok: queued as "), reply
        s.cmd("QUIT", "221 ")
    finally:
        log = s.close()
    sent = Sent(reply, log)
    msgs = sink.messages()
    assert len(msgs) == 1, log
    # smtp-sink stores LF line ends: CRLF back for the parser
    got = msgs[0][1].replace(b"\n", b"\r\n")
    msg = converted(sent, got, "joe@example.net")
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content() == BINARY_PAYLOAD


def test_long_line_is_folded_for_the_next_hop(tmp, peers):
    # SPEC 5: lines over 1000 octets are accepted and folded where the
    # next hop needs it (as Postfix's smtp_line_length_limit)
    peer = aiosmtpd_peer(peers)  # refuses lines over 1000 octets
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    long_line = b"word " * 600
    sent = submit(cf, ["joe@example.net"],
                  b"Subject: long\r\n\r\nshort\r\n" + long_line + b"\r\nend\r\n")
    line = status_lines(sent.log)["joe@example.net"]
    assert "status=sent" in line, sent.log
    (m,) = peer.handler.messages
    lines = m["content"].split(b"\r\n")
    assert max(len(l) for l in lines) <= 998, [len(l) for l in lines]
    # folded with CRLF SPACE: unfolding gives the line back
    assert m["content"].replace(b"\r\n ", b"").endswith(
        b"\r\n\r\nshort\r\n" + long_line + b"\r\nend\r\n"), lines


def test_mx_of_a_utf8_domain_is_asked_by_its_a_label(tmp, peers, mxnet):
    # SPEC 7.2: IDNA through libidn2, loaded when a domain first needs it
    dns = Dnsmasq(tmp, [
        "--mx-host=xn--bcher-kva.example,mx1.idn.example,10",
        "--host-record=mx1.idn.example," + mxnet + "2"])
    peers.append(dns)
    mx1 = aiosmtpd_peer(peers, host=mxnet + "2", port=25, enable_SMTPUTF8=True)
    cf = mx_cf(tmp, dns, "\"@bücher.example\" mx\n")
    sent = submit(cf, ["anna@bücher.example"], params=" SMTPUTF8")
    st = status_lines(sent.log)
    assert ' relay=mx1.idn.example[%s2] tls=no status=sent' % mxnet in st["anna@bücher.example"], \
        sent.log
    assert ("MX", "xn--bcher-kva.example") in dns.queries()
    assert [m["rcpts"] for m in mx1.handler.messages] == [["anna@bücher.example"]]


def test_an_invalid_utf8_domain_is_refused_before_any_mx_lookup(tmp, peers, mxnet):
    dns = Dnsmasq(tmp, [])
    peers.append(dns)
    # U+2024 ONE DOT LEADER is disallowed by IDNA 2008: the domain is
    # refused at RCPT time, before routing (SPEC 6), so nothing is queued
    # or asked
    cf = mx_cf(tmp, dns, "\"@b\u00fccher.example\" mx\n")
    s = Session(cf)
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<anna@b\u2024x.example>", "553 5.1.3 ")
        assert "not a valid international domain name" in got, got
        s.cmd("QUIT", "221 ")
    finally:
        s.close()
    assert queue(cf) == "the spool is empty\n"
    assert not [q for q in dns.queries() if "x.example" in q[1]], dns.queries()


# ------------------------------------------------------------------ #
# verify-sender (SPEC 8, RFC 2505 2.9), with the same local DNS        #


def test_verify_sender_needs_a_domain_that_can_receive(tmp, peers):
    dns = Dnsmasq(tmp, [
        "--mx-host=good.example,mx.good.example,10",
        "--host-record=mx.good.example,192.0.2.10",
        "--host-record=aonly.example,192.0.2.11",
        "--mx-host=nullmx.example,.,0",
        "--txt-record=txtonly.example,hello"])
    peers.append(dns)
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\nverify-sender = yes\n'
                       '[route]\njoe@example.net @DIR@/joe/\n', dns_port=dns.port)
    senders = {
        "a@good.example": "250 2.1.0 Sender <a@good.example> OK",
        "a@aonly.example": "250 2.1.0 Sender <a@aonly.example> OK",
        "a@nosuch.example": "550 5.1.8 Sender address rejected: domain "
                            "nosuch.example not found",
        "a@txtonly.example": "550 5.1.8 Sender address rejected: domain "
                             "txtonly.example not found",
        "a@nullmx.example": "550 5.7.27 Sender address rejected: domain "
                            "nullmx.example accepts no mail (null MX)",
        "": "250 2.1.0 Sender <> OK",
        "a@[192.0.2.1]": "250 2.1.0 Sender <a@[192.0.2.1]> OK",
    }
    wire = b"EHLO client.example\r\n"
    for sender in senders:
        wire += b"MAIL FROM:<%s>\r\nRSET\r\n" % sender.encode()
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=mx"], input=wire + b"QUIT\r\n",
                       capture_output=True, timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    replies = [l for l in r.stdout.decode().split("\r\n")
               if l.startswith(("250 2.1.0", "550 ", "451 "))]
    assert replies == list(senders.values()), r.stdout.decode()
    asked = dns.queries()
    assert ("MX", "good.example") in asked and ("A", "aonly.example") in asked


def test_verify_sender_temporary_dns_failure_is_451(tmp, peers):
    # a DNS server that does not answer: the resolver gives up, temporarily
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\nverify-sender = yes\n',
                      dns_port=silent.getsockname()[1])
        r = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=mx"],
                           input=b"EHLO c\r\nMAIL FROM:<a@slow.example>\r\nQUIT\r\n",
                           capture_output=True, timeout=120)
        assert b"451 4.4.3 Sender address rejected: cannot look up domain slow.example now\r\n" \
            in r.stdout, r.stdout
    finally:
        silent.close()


# ------------------------------------------------------------------ #
# A peer that says 354 to a DATA without recipients                  #


class RefusingPeer(ThreadedServer):
    """A small SMTP server on 127.0.0.1 that offers PIPELINING, refuses
    every RCPT and yet answers 354 to DATA (as some servers do): it
    records the commands it reads, and the text lines it reads after its
    354 up to the end of the data."""

    def __init__(self, mail_reply=b"250 2.1.0 Ok"):
        self.mail_reply = mail_reply
        self.commands, self.text = [], []
        super().__init__()

    def _dialogue(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 refuser.example ESMTP\r\n")
        in_data = False
        for raw in f:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if in_data:
                if line == ".":
                    in_data = False
                    conn.sendall(b"554 5.5.1 Error: no valid recipients\r\n")
                else:
                    self.text.append(line)
                continue
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-refuser.example\r\n250 PIPELINING\r\n")
            elif verb == "MAIL":
                conn.sendall(self.mail_reply + b"\r\n")
            elif verb == "RCPT":
                conn.sendall(b"550 5.1.1 no such user here\r\n")
            elif verb == "DATA":
                in_data = True
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 Ok\r\n")


@pytest.mark.parametrize("mail", ["accepted", "refused"])
def test_unexpected_354_gets_the_lone_dot_not_quit(tmp, peers, mail):
    """Every RCPT (or MAIL) refused, but the pipelined DATA answered 354:
    the client ends the empty data with "." (RFC 2920 3.1), then QUITs;
    QUIT is never sent where the peer reads message text."""
    refused = mail == "refused"
    peer = RefusingPeer(b"550 5.7.1 not from you" if refused else b"250 2.1.0 Ok")
    peers.append(peer)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    sent = submit(cf, ["nobody@example.net"])
    assert peer.done.wait(10), peer.commands
    assert peer.text == [], "the peer read as message text: %r" % peer.text
    assert [c.split(" ", 1)[0] for c in peer.commands] == \
        ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"], peer.commands
    st = status_lines(sent.log)
    dsn, said = ("5.7.1", "not from you") if refused else ("5.1.1", "no such user here")
    assert "status=bounced dsn=" + dsn in st["nobody@example.net"], sent.log
    assert said in st["nobody@example.net"]
    assert len(bounces(tmp)) == 1
