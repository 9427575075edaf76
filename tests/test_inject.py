"""Local submission (SPEC 2, issue 12): `postmaster --inject` and the
program started as sendmail, mailq and newaliases, driven by the programs
that call sendmail on every Linux machine (bsd-mailx, cron's command
line, Python's subprocess), with sendmail's exit statuses. Run as root,
with no submission socket: the session runs in-process."""
import fcntl
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pmtest import (POSTMASTER, ROOT, SANITIZED, ThreadedServer, no_sanitizer_report,
                    remove_tree, scratch_dir, tool, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
USERS = ("ann", "bob", "cat", "root", "other")

pytestmark = pytest.mark.skipif(not ROOT, reason="in-process injection "
                                "needs root (the session drops to nobody)")

CF = """\
[core]
user-id = nobody
spool-directory = {d}/spool
pid-file = {d}/flush.pid
hostname = mail.test
logger = log
[logfile "log"]
file = {d}/log
[relay "down"]
address = [127.0.0.1]:1
[route]
nobody@ reject
dan@ down
ann@ {d}/ann/
bob@ {d}/bob/
cat@ {d}/cat/
root@ {d}/root/
@mail.test {d}/other/
"""


class Site:
    """A configuration, a Maildir per user, and a bin directory whose
    sendmail, mailq and newaliases are links to the binary under test."""

    def __init__(self):
        self.d = scratch_dir("pm-inject-", ("spool",) + USERS)
        self.cf = os.path.join(self.d, "pm.cf")
        with open(self.cf, "w") as f:
            f.write(CF.format(d=self.d))
        self.bin = os.path.join(self.d, "bin")
        os.mkdir(self.bin)
        for name in ("sendmail", "mailq", "newaliases"):
            os.symlink(POSTMASTER, os.path.join(self.bin, name))
        self.env = dict(os.environ, POSTMASTER_CONFIG=self.cf,
                        PATH=self.bin + ":" + os.environ.get("PATH", ""))

    def run(self, argv, data=b"", env=None):
        r = subprocess.run(argv, input=data, capture_output=True,
                           env=env or self.env, timeout=120)
        no_sanitizer_report(r.stderr.decode(errors="replace"), argv[0])
        return r

    def sendmail(self, *args, data=b""):
        return self.run([os.path.join(self.bin, "sendmail"), *args], data)

    def mail(self, user):
        """The messages in user's Maildir."""
        new = os.path.join(self.d, user, "new")
        if not os.path.isdir(new):
            return []
        out = []
        for f in sorted(os.listdir(new)):
            with open(os.path.join(new, f), "rb") as fh:
                out.append(fh.read())
        return out

    def one(self, user):
        m = self.mail(user)
        assert len(m) == 1, (user, m)
        return m[0]


@pytest.fixture
def site():
    s = Site()
    yield s
    remove_tree(s.d)


def header_and_body(msg):
    head, _, body = msg.partition(b"\n\n")
    return head, body


def test_bsd_mailx_delivers_through_the_sendmail_link(site):
    """mail -s subject user: what a person or a script types."""
    mailx = tool("bsd-mailx")
    rc = os.path.join(site.d, "mailrc")
    with open(rc, "w") as f:
        f.write("set sendmail=%s\n" % os.path.join(site.bin, "sendmail"))
    env = dict(site.env, MAILRC=rc)
    r = site.run([mailx, "-s", "Grüße from mailx", "ann"],
                 "hello from mailx\n".encode(), env=env)
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("ann"))
    assert b"Return-Path: <root@mail.test>" in head
    assert "Subject: Grüße from mailx".encode() in head
    assert body == b"hello from mailx\n"


def test_the_cron_command_line(site):
    """cron's own words: sendmail -FCronDaemon -i -B8BITMIME -oem root,
    with a job's output that has a lone dot and 8-bit text."""
    out = "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> job\n" \
          "\nline 1\n.\nnaïve line 3\n".encode()
    r = site.sendmail("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root",
                      data=out)
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("root"))
    assert b"Subject: Cron <root@h> job" in head
    assert body == "line 1\n.\nnaïve line 3\n".encode()
    # a local part alone is at core.hostname, as Postfix's
    # append_at_myorigin makes it: no "From: root" leaves the machine
    assert b"\nFrom: root@mail.test (Cron Daemon)\n" in head, head
    assert b"\nTo: root@mail.test\n" in head, head


def test_header_addresses_without_a_domain_are_completed(site):
    """sendmail sent `To: root, bob@x` and cron's `From: root (Cron
    Daemon)` off the machine as they were (RFC 5322 3.4.1 wants a
    domain). Each local part alone in From, Sender, Reply-To, To, Cc and
    the Resent- forms gets @core.hostname; names, comments, quoting,
    groups and folding stay as they were, and other fields and what
    cannot be read are left alone."""
    msg = b"From: root (Cron, Daemon at x@y.example)\n" \
          b"Sender: \"Ann Smith\" <ann>\n" \
          b"Reply-To: bob (Bob)\n" \
          b"To: ann, bob@example.org,\n\tteam: cat, \"dan x\";\n" \
          b"Cc: undisclosed-recipients:;\n" \
          b"X-Note: root\n" \
          b"Subject: root\n\nroot\n"
    r = site.sendmail("-t", data=msg)
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("ann"))
    assert b"\nFrom: root@mail.test (Cron, Daemon at x@y.example)\n" in head
    assert b"\nSender: \"Ann Smith\" <ann@mail.test>\n" in head
    assert b"\nReply-To: bob@mail.test (Bob)\n" in head
    assert b"\nTo: ann@mail.test, bob@example.org,\n\tteam: cat@mail.test, " \
           b"\"dan x\"@mail.test;\n" in head, head
    assert b"\nCc: undisclosed-recipients:;\n" in head
    assert b"\nX-Note: root\nSubject: root\n" in head
    assert body == b"root\n"
    # a field it cannot read goes as it came; the message still goes
    r = site.sendmail("root", data=b"To: root, \"open\nSubject: s\n\nx\n")
    assert r.returncode == 0, r.stderr
    head, _ = header_and_body(site.one("root"))
    assert b"\nTo: root, \"open\n" in head, head


def test_option_letters_cluster_as_getopt_reads_them(site):
    """BusyBox crond and PHP's sendmail_path say "sendmail -ti", scripts
    "-tif sender": letters run together as getopt(3) reads them, and
    Postfix's -A, -L and -O take a value and are ignored. They were
    unknown options (exit 64), and the mail was lost."""
    msg = b"To: bob@mail.test\nSubject: clustered\n\nbefore\n.\nafter\n"
    for args in (["-ti"], ["-it"], ["-tif", "me@example.org"],
                 ["-tifme@example.org"], ["-Am", "-t", "-i"],
                 ["-L", "label", "-ti"], ["-O", "DeliveryMode=b", "-ti"],
                 ["-tiODeliveryMode=b"]):
        before = site.mail("bob")
        r = site.sendmail(*args, data=msg)
        assert r.returncode == 0, (args, r.stderr)
        got = [m for m in site.mail("bob") if m not in before]
        assert len(got) == 1, (args, got)
        # -i: the lone dot is text, so the whole body arrived
        assert header_and_body(got[0])[1] == b"before\n.\nafter\n", args
        sender = b"me@example.org" if "-tif" in args[0] else b"root@mail.test"
        assert b"Return-Path: <" + sender + b">" in got[0], (args, got)
    assert len(site.mail("bob")) == 8
    r = site.sendmail("-tz", data=msg)
    assert r.returncode == 64
    assert b"sendmail: unknown option -z in -tz" in r.stderr
    r = site.sendmail("-tif", data=msg)
    assert r.returncode == 64
    assert b"sendmail: option -f needs a value" in r.stderr
    # -B names a body type, as Postfix's sendmail checks
    r = site.sendmail("-t", "-B8bit", data=msg)
    assert r.returncode == 64
    assert b"sendmail: -B takes 7BIT or 8BITMIME, not 8bit" in r.stderr
    assert len(site.mail("bob")) == 8


def test_python_subprocess_with_t_and_bcc(site):
    """sendmail -t: To, Cc and Bcc are the recipients; Bcc is not in what
    any of them gets."""
    msg = b"From: me@mail.test\nTo: \"Ann, A.\" <ann@mail.test>\n" \
          b"Cc: team: bob@mail.test (Bob);\nBcc: cat@mail.test\n" \
          b"Subject: t\n\nbody\n"
    r = subprocess.run([os.path.join(site.bin, "sendmail"), "-t", "-oi"],
                       input=msg, capture_output=True, env=site.env,
                       timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "sendmail -t")
    assert r.returncode == 0, r.stderr
    for user in ("ann", "bob", "cat"):
        head, body = header_and_body(site.one(user))
        sent = head[head.index(b"\nFrom: "):]  # below what delivery adds
        assert b"Bcc" not in sent and b"cat@" not in sent, head
        assert b"To: \"Ann, A.\" <ann@mail.test>" in head
        assert body == b"body\n"


def test_t_takes_the_resent_recipients_of_a_resent_message(site):
    """RFC 5322 3.6.6: a message with Resent- fields is being resent, to
    its Resent-To, -Cc and -Bcc. -t once sent it to the original To again
    and left Resent-Bcc for every recipient to read; as Postfix's, it
    goes to the Resent- recipients only, and Resent-Bcc is dropped."""
    msg = (b"From: me@mail.test\nTo: ann@mail.test\nSubject: t\n"
           b"Resent-From: me@mail.test\nResent-To: bob@mail.test\n"
           b"Resent-Bcc: cat@mail.test\n\nbody\n")
    r = site.sendmail("-t", data=msg)
    assert r.returncode == 0, r.stderr
    assert not site.mail("ann")
    for user in ("bob", "cat"):
        got = site.one(user)
        sent = got[got.index(b"\nFrom: "):]  # below what delivery adds
        assert b"Resent-Bcc" not in sent and b"cat@" not in sent, got
        assert b"Resent-To: bob@mail.test" in sent and b"To: ann@mail.test" in sent


def test_t_without_recipients_is_a_usage_error(site):
    r = site.sendmail("-t", data=b"Subject: nobody to send to\n\nx\n")
    assert r.returncode == 64
    assert b"no recipient" in r.stderr
    assert not any(site.mail(u) for u in USERS)


def test_a_lone_dot_ends_the_message_unless_i(site):
    r = site.sendmail("ann", data=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    assert header_and_body(site.one("ann"))[1] == b"before\n"
    r = site.sendmail("-i", "bob", data=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    assert header_and_body(site.one("bob"))[1] == b"before\n.\nafter\n"
    # dots that start longer lines are text either way
    r = site.sendmail("cat", data=b"Subject: dot\n\n..two\n.x\n")
    assert header_and_body(site.one("cat"))[1] == b"..two\n.x\n"


def test_a_message_without_a_final_newline(site):
    r = site.sendmail("ann", data=b"Subject: nl\n\nlast line")
    assert r.returncode == 0, r.stderr
    assert site.one("ann").endswith(b"\n\nlast line\n")
    r = site.sendmail("-t", data=b"To: bob@mail.test")
    assert r.returncode == 0, r.stderr
    assert b"\nTo: bob@mail.test\nDate: " in site.one("bob")


def test_an_empty_message(site):
    r = site.sendmail("ann", data=b"")
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("ann"))
    assert head.startswith(b"Return-Path: <root@mail.test>")
    assert body == b""


def test_8bit_and_utf8_headers_arrive_as_sent(site):
    head = "To: Jürgen <ann@mail.test>\nSubject: Grüße, 日本\n".encode()
    body = "Ünïcödé body\n".encode() + b"latin-1 \xe9\n"
    r = site.sendmail("-t", data=head + b"\n" + body)
    assert r.returncode == 0, r.stderr
    got_head, got_body = header_and_body(site.one("ann"))
    assert head in got_head + b"\n" and got_body == body


def test_a_10_mb_message(site):
    line = b"x" * 99 + b"\n"
    body = line * 100000  # 10 000 000 bytes of text
    r = site.sendmail("ann", data=b"Subject: big\n\n" + body)
    assert r.returncode == 0, r.stderr
    head, got = header_and_body(site.one("ann"))
    assert b"Subject: big" in head and got == body


def test_a_message_over_max_message_size_is_refused_before_any_session(
        site):
    """The body is read before the session starts, and no further than
    the listener's max-message-size: a larger one is not kept on disk
    whole, sendmail says why and exits 69 (as the session's 552 would),
    and nothing is delivered."""
    with open(site.cf, "a") as f:
        f.write('[smtpd "mail.test"]\nmax-message-size = 1000\n')
    r = site.sendmail("ann", data=b"Subject: big\n\n" + b"y" * 5000 + b"\n")
    assert r.returncode == 69, r.stderr
    assert b"larger than 1000 bytes (max-message-size)" in r.stderr
    assert site.mail("ann") == []
    r = site.sendmail("ann", data=b"Subject: small\n\n" + b"y" * 500 + b"\n")
    assert r.returncode == 0, r.stderr
    # line ends count as the CRLF the session counts (RFC 1870): 800
    # octets with LF, 1200 on the wire
    r = site.sendmail("ann", data=b"Subject: lines\n\n" + b"y\n" * 400)
    assert r.returncode == 69, r.stderr
    assert b"larger than 1000 bytes (max-message-size)" in r.stderr


def test_exit_statuses(site):
    r = site.sendmail("-z", "ann", data=b"x\n")
    assert r.returncode == 64
    assert b"sendmail: unknown option -z" in r.stderr
    assert b"usage: sendmail" in r.stderr
    r = site.sendmail(data=b"x\n")
    assert r.returncode == 64
    # an unknown local recipient: 67, the session's reply on stderr; the
    # others still get the message, as with sendmail
    r = site.sendmail("nobody", "ann", data=b"Subject: x\n\nx\n")
    assert r.returncode == 67
    assert b"nobody@mail.test: 550 5.1.1" in r.stderr
    assert len(site.mail("ann")) == 1
    # the service cannot run (no spool): 75, the 421 on stderr
    with open(site.cf, "w") as f:
        f.write(CF.format(d=site.d).replace("/spool", "/none"))
    r = site.sendmail("ann", data=b"x\n")
    assert r.returncode == 75, r.stderr
    assert b"421 4.3.0" in r.stderr
    # a configuration that does not parse: 75 (try later), as Postfix's
    # sendmail, and as when the submission session finds it broken; 78
    # made a caller that hands the message on (procmail's '!', a pipe
    # mailer of another MTA: EX_CONFIG is permanent) bounce it
    with open(site.cf, "w") as f:
        f.write("[core]\nno-such-key = 1\n")
    r = site.sendmail("ann", data=b"x\n")
    assert r.returncode == 75, r
    assert b"no-such-key" in r.stderr
    r = site.sendmail("-t", data=b"To: ann\n\nx\n")
    assert r.returncode == 75, r
    assert len(site.mail("ann")) == 1  # nothing more was delivered


def test_f_sets_the_envelope_sender(site):
    r = site.sendmail("-f", "me@example.org", "ann", data=b"x\n")
    assert r.returncode == 0, r.stderr
    assert site.one("ann").startswith(b"Return-Path: <me@example.org>")
    r = site.sendmail("-rdaemon", "bob", data=b"x\n")
    assert site.one("bob").startswith(b"Return-Path: <daemon@mail.test>")
    r = site.sendmail("-f", "<>", "cat", data=b"x\n")
    assert site.one("cat").startswith(b"Return-Path: <>")


def test_f_takes_the_address_of_a_display_name_or_comment(site):
    """-f as scripts write it ("Site <noreply@...>", a comment, a blank
    in front): the envelope sender is its address, as Postfix's sendmail
    takes it; the whole text once went on MAIL FROM, refused with 67."""
    for user, sender, want in (
            ("ann", "Site <noreply@example.org>", b"noreply@example.org"),
            ("bob", "me@example.org (Me)", b"me@example.org"),
            ("cat", " daemon", b"daemon@mail.test")):
        r = site.sendmail("-f", sender, user, data=b"Subject: f\n\nx\n")
        assert r.returncode == 0, r.stderr
        msg = site.one(user)
        assert msg.startswith(b"Return-Path: <" + want + b">"), msg
        assert b"\nFrom: <" + want + b">\n" in msg, msg
    r = site.sendmail("-f", "a@example.org, b@example.org", "root",
                      data=b"x\n")
    assert r.returncode == 0, r.stderr
    assert b"more than one address" in r.stderr
    assert site.one("root").startswith(b"Return-Path: <a@example.org>")


def test_postmaster_inject_is_the_readme_demo(site):
    r = site.run([POSTMASTER, "--config=" + site.cf, "--inject", "-f",
                  "me@localhost", "ann@mail.test"], b"hi\n")
    assert r.returncode == 0, r.stderr
    assert site.one("ann").endswith(b"\nhi\n")
    r = site.run([POSTMASTER, "--config=" + site.cf, "--inject", "-x!"],
                 b"hi\n")
    assert r.returncode == 64
    assert b"postmaster: unknown option -! in -x!" in r.stderr


def test_a_named_configuration_is_not_handed_to_the_system_socket(site):
    """With --config (or POSTMASTER_CONFIG) naming a file without a unix:
    listener, the system's /run/postmaster/submit, served by another
    configuration, is not used: root serves the session itself. Here
    /run is a directory of the test's in a private mount namespace, where
    a listener answers 421 and counts who came."""
    unshare = tool("unshare")
    if subprocess.run([unshare, "-m", "true"], capture_output=True).returncode:
        pytest.skip("no mount namespace here")
    run = os.path.join(site.d, "run")
    os.makedirs(os.path.join(run, "postmaster"))
    came = []
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(run, "postmaster", "submit"))
    sock.listen(4)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = sock.accept()
            except socket.timeout:
                continue
            came.append(1)
            c.sendall(b"421 4.3.2 another configuration\r\n")
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ns = [unshare, "-m", "--propagation", "private", "sh", "-c",
          'mount --bind "$0" /run && exec "$@"', run]
    try:
        r = site.run(ns + [POSTMASTER, "--config=" + site.cf, "--inject",
                           "-f", "me@localhost", "ann@mail.test"], b"hi\n")
        assert r.returncode == 0, r.stderr
        r = site.run(ns + [os.path.join(site.bin, "sendmail"), "bob"],
                     b"hi\n")
        assert r.returncode == 0, r.stderr
        # the default configuration would go there: the socket works
        r = site.run(ns + [sys.executable, "-c",
                           "import socket; s = socket.socket(socket.AF_UNIX);"
                           "s.connect('/run/postmaster/submit');"
                           "print(s.recv(100))"])
        assert b"421 4.3.2 another" in r.stdout, r.stdout + r.stderr
    finally:
        stop.set()
        t.join()
        sock.close()
    assert site.one("ann").endswith(b"\nhi\n")
    assert site.one("bob").endswith(b"\nhi\n")
    assert len(came) == 1  # the probe's


def test_mailq_bp_q_newaliases_and_bv(site):
    # a message for a relay that is down stays in the spool
    r = site.sendmail("dan", data=b"Subject: queued\n\nx\n")
    assert r.returncode == 0, r.stderr
    for argv in (["mailq"], ["sendmail", "-bp"]):
        r = site.run([os.path.join(site.bin, argv[0]), *argv[1:]])
        assert r.returncode == 0, r.stderr
        assert b"dan@mail.test" in r.stdout and b"root@mail.test" in r.stdout
    r = site.run([os.path.join(site.bin, "sendmail"), "-q"])
    assert r.returncode == 0, r.stderr
    r = site.run([os.path.join(site.bin, "newaliases")])
    assert r.returncode == 0, r.stderr
    assert b"ok:" in r.stdout
    r = site.sendmail("-bv", "ann@mail.test")
    assert r.returncode == 0, r.stderr
    assert b"250 2.1.5" in r.stdout
    r = site.sendmail("-bv", "nobody@mail.test")
    assert r.returncode == 67
    r = site.run([os.path.join(site.bin, "mailq"), "extra"])
    assert r.returncode == 64


def spool_unlocked(spool):
    """Whether no process holds a message of the spool locked (flock of
    the file ID, spool.c)."""
    for name in os.listdir(spool):
        if "." in name:
            continue
        fd = os.open(os.path.join(spool, name), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    return True


def test_q_delivers_everything_queued_now(site):
    """sendmail -q is Postfix's postqueue -f: every queued message is
    tried now. It ran only what was due, so an administrator's retry
    after mending the network did nothing for up to maximal-backoff;
    -q30m (an interval) still runs what is due."""
    r = site.sendmail("dan", data=b"Subject: queued\n\nx\n")
    assert r.returncode == 0, r.stderr

    def attempts():
        r = site.run([POSTMASTER, "--config=" + site.cf, "--queue"])
        found = re.search(rb"<dan@mail\.test> .* attempts=(\d+)", r.stdout)
        return int(found[1]) if found else 0
    wait_for(lambda: attempts() == 1, what="the first attempt")
    # the attempt's process holds the message's lock a moment longer, and
    # -q passes over a message another process delivers
    wait_for(lambda: spool_unlocked(os.path.join(site.d, "spool")),
             what="the first attempt to end")
    r = site.run([os.path.join(site.bin, "sendmail"), "-q30m"])
    assert r.returncode == 0, r.stderr
    assert attempts() == 1
    for n, q in ((2, "-q"), (3, "-qRmail.test")):
        r = site.run([os.path.join(site.bin, "sendmail"), q])
        assert r.returncode == 0, r.stderr
        assert attempts() == n, q


def make(*args):
    r = subprocess.run(["make", "-s", "--no-print-directory", *args],
                       cwd=TOP, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_make_install_sendmail_links(tmp_path):
    """INSTALL_SENDMAIL=yes adds the links; uninstall removes them, and
    without it nothing replaces another MTA's sendmail."""
    dest = str(tmp_path / "plain")
    make("install", "DESTDIR=" + dest)
    assert not os.path.lexists(os.path.join(dest, "usr/sbin/sendmail"))
    dest = str(tmp_path / "links")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr",
         "INSTALL_SENDMAIL=yes")
    for link in ("usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"):
        assert os.readlink(os.path.join(dest, link)) == "/usr/sbin/postmaster"
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    for link in ("usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"):
        assert not os.path.lexists(os.path.join(dest, link))


def test_bs_is_a_session_on_standard_input(site):
    r = site.sendmail("-bs", data=b"EHLO client\r\nMAIL FROM:<a@mail.test>\r\n"
                      b"RCPT TO:<ann@mail.test>\r\nDATA\r\nSubject: bs\r\n\r\n"
                      b"via -bs\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"220 mail.test ESMTP")
    assert b"250 2.0.0" in r.stdout and r.stdout.endswith(b"221 2.0.0 mail.test "
                                                          b"closing connection\r\n")
    assert site.one("ann").endswith(b"\nvia -bs\n")


SECTIONS = """\
[smtpd "mx"]
listen-port = 127.0.0.1:2
[smtpd "submit"]
listen-port = unix:{d}/submit
"""


def test_bs_as_root_takes_the_section_a_message_gets(site):
    """The shipped configuration has several [smtpd] sections: root's -bs
    once answered 421 ("choose one with --smtpd=NAME", which sendmail
    cannot be given) where its message mode found the submit section.
    Without the socket, root serves -bs in-process with that section."""
    with open(site.cf, "a") as f:
        f.write(SECTIONS.format(d=site.d))
    r = site.sendmail("-bs", data=b"EHLO client\r\nMAIL FROM:<root@mail.test>"
                      b"\r\nRCPT TO:<ann@mail.test>\r\nDATA\r\n"
                      b"Subject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r
    assert r.stdout.startswith(b"220 "), r.stdout
    assert b"\r\n250 2.0.0 " in r.stdout, r.stdout
    assert site.one("ann").endswith(b"\nvia -bs\n")
    with open(os.path.join(site.d, "log")) as f:
        assert re.search(r"event=connect client=local smtpd=submit uid=0 "
                         r"user=root$", f.read(), re.M)


def test_bs_as_root_gets_the_submission_fix_ups(site):
    """Root's -bs without the socket was served on the caller's pipe,
    where the session could not tell who its client was: a Bcc reached
    every recipient and no Date, Message-ID or From was added, though
    the section sets submission. It now gets the session a message gets,
    on a socket pair that tells the user."""
    with open(site.cf, "a") as f:
        f.write(SECTIONS.format(d=site.d) + "submission = yes\n")
    r = site.sendmail("-bs", data=b"EHLO client\r\nMAIL FROM:<root@mail.test>"
                      b"\r\nRCPT TO:<ann@mail.test>\r\nDATA\r\n"
                      b"Subject: bs\r\nBcc: secret@example.org\r\n\r\n"
                      b"via -bs\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r
    assert b"\r\n250 2.0.0 " in r.stdout, r.stdout
    assert r.stdout.endswith(b" closing connection\r\n"), r.stdout
    got = site.one("ann")
    assert b"secret@example.org" not in got, got
    assert fields(got, "From") == ["<root@mail.test>"], got
    assert len(fields(got, "Date")) == 1
    assert len(fields(got, "Message-ID")) == 1


def test_a_saved_messages_return_path_is_not_sent_again(site):
    """A saved message resent with sendmail (or -bs on a submission
    section) carried its old Return-Path: below the one the delivery
    adds, so two named different senders. RFC 5321 4.4: the originator
    sends none; Postfix's cleanup drops it. Now the only one left is the
    delivery's, for the envelope sender."""
    saved = (b"Return-Path: <old@example.org>\nReturn-path:\n <old2@example.org>"
             b"\nFrom: Old <old@example.org>\nTo: bob@mail.test\n"
             b"Subject: saved\n\nsaved body\n")
    r = site.sendmail("-oem", "-oi", "--", "bob", data=saved)
    assert r.returncode == 0, r.stderr
    got = site.one("bob")
    assert fields(got, "Return-Path") == ["<root@mail.test>"], got
    assert got.endswith(b"\n\nsaved body\n")
    with open(site.cf, "a") as f:
        f.write(SECTIONS.format(d=site.d) + "submission = yes\n")
    r = site.sendmail("-bs", data=b"EHLO client\r\nMAIL FROM:<root@mail.test>"
                      b"\r\nRCPT TO:<ann@mail.test>\r\nDATA\r\n" +
                      saved.replace(b"\n", b"\r\n") + b".\r\nQUIT\r\n")
    assert r.returncode == 0, r
    got = site.one("ann")
    assert fields(got, "Return-Path") == ["<root@mail.test>"], got


def test_bs_on_a_submission_section_drops_resent_bcc(site):
    """The session's submission fix-ups removed Bcc but not Resent-Bcc
    (RFC 5322 3.6.6: its addresses are not shown to the others): a
    message resent over -bs, or by a client on port 587, showed every
    recipient its blind copies. sendmail's own walk dropped it already."""
    with open(site.cf, "a") as f:
        f.write(SECTIONS.format(d=site.d) + "submission = yes\n")
    r = site.sendmail("-bs", data=b"EHLO client\r\nMAIL FROM:<root@mail.test>"
                      b"\r\nRCPT TO:<ann@mail.test>\r\nDATA\r\n"
                      b"Resent-From: root@mail.test\r\nResent-To: ann@mail.test"
                      b"\r\nResent-Bcc: secret@example.org,\r\n hush@example.org"
                      b"\r\nSubject: resent\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r
    got = site.one("ann")
    assert b"secret@example.org" not in got and b"hush@" not in got, got
    assert fields(got, "Resent-To") == ["ann@mail.test"], got


def test_bs_with_a_broken_configuration_is_try_again_later(site):
    """Root's -bs with a configuration that has errors exited 78, where
    postmaster(8) promised a session's 75. As Postfix's sendmail -bs, it
    says why on standard error and exits 75; no dialogue starts."""
    with open(site.cf) as f:
        text = f.read()
    with open(site.cf, "w") as f:
        f.write(text.replace("[core]\n", "[core]\nbogus-key = 1\n"))
    r = site.sendmail("-bs", data=b"EHLO x\r\nQUIT\r\n")
    assert r.returncode == 75, r
    assert b"expected a key of [core], found 'bogus-key'" in r.stderr, r
    assert r.stdout == b"", r
    r = site.sendmail("-C", os.path.join(site.d, "none.cf"), "-bs",
                      data=b"EHLO x\r\nQUIT\r\n")
    assert r.returncode == 75 and r.stdout == b"", r


def test_bv_answers_for_what_sendmail_address_would_do(site):
    """-bv once needed --smtpd (which sendmail cannot be given) on a
    configuration with several sections, and refused a bare name (504
    5.5.2) that `sendmail ann` delivers to ann@core.hostname."""
    r = site.sendmail("-bv", "ann")
    assert r.returncode == 0, r
    assert b"250 2.1.5 <ann@mail.test> OK" in r.stdout, r.stdout
    with open(site.cf, "a") as f:
        f.write(SECTIONS.format(d=site.d))
    r = site.sendmail("-bv", "ann")
    assert r.returncode == 0, r
    assert r.stdout.startswith(b'route for [smtpd "submit"]:\n'), r.stdout
    assert b"250 2.1.5 <ann@mail.test> OK" in r.stdout, r.stdout
    r = site.sendmail("-bv", "nobody")
    assert r.returncode == 67, r


def fields(msg, name):
    """The values of a header field, below what delivery added."""
    from email import message_from_bytes
    return message_from_bytes(msg).get_all(name) or []


def test_fix_ups_add_date_message_id_and_from_when_missing(site):
    """RFC 6409 8: what cron and mail(1) leave out is added once, with
    -F's name in From."""
    from email.utils import parsedate_to_datetime
    import re
    import time
    r = site.sendmail("-FCron \"Daemon\"", "-i", "root",
                      data=b"Subject: no date\n\nx\n")
    assert r.returncode == 0, r.stderr
    msg = site.one("root")
    (date,) = fields(msg, "Date")
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 60
    (mid,) = fields(msg, "Message-ID")
    assert re.fullmatch(r"<[0-9a-f.]+@mail\.test>", mid), mid
    assert fields(msg, "From") == ['"Cron \\"Daemon\\"" <root@mail.test>']
    # each message its own id
    site.sendmail("root", data=b"Subject: again\n\nx\n")
    ids = [fields(m, "Message-ID")[0] for m in site.mail("root")]
    assert len(set(ids)) == 2


def test_fix_ups_keep_what_the_message_has(site):
    msg = b"From: Ann <ann@example.org>\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n" \
          b"Message-ID: <own@example.org>\nSubject: s\n\nx\n"
    r = site.sendmail("-F", "Other Name", "ann", data=msg)
    assert r.returncode == 0, r.stderr
    got = site.one("ann")
    assert fields(got, "From") == ["Ann <ann@example.org>"]
    assert fields(got, "Date") == ["Tue, 1 Dec 2026 10:00:00 +0000"]
    assert fields(got, "Message-ID") == ["<own@example.org>"]


def test_a_resent_message_gets_resent_from_and_date(site):
    """RFC 5322 3.6.6: a message with Resent- fields MUST have Resent-From
    and Resent-Date; sendmail -t added nothing to one, its own From, Date
    and Message-ID being the original's. They are added, with
    Resent-Message-ID, the original's fields kept as they were; what the
    message has already is not added again."""
    msg = b"Resent-To: bob@mail.test\nFrom: ann@mail.test\n" \
          b"To: ann@mail.test\nDate: Mon, 1 Dec 2026 10:00:00 +0000\n" \
          b"Message-ID: <orig@mail.test>\nSubject: fwd\n\nbody\n"
    r = site.sendmail("-t", "-F", "Root Here", data=msg)
    assert r.returncode == 0, r.stderr
    got = site.one("bob")
    assert fields(got, "Resent-From") == ['"Root Here" <root@mail.test>']
    assert len(fields(got, "Resent-Date")) == 1
    assert re.fullmatch(r"<[^@>]+@mail\.test>",
                        fields(got, "Resent-Message-ID")[0])
    assert fields(got, "From") == ["ann@mail.test"]
    assert fields(got, "Date") == ["Mon, 1 Dec 2026 10:00:00 +0000"]
    assert fields(got, "Message-ID") == ["<orig@mail.test>"]
    assert site.mail("ann") == []
    r = site.sendmail("-t", data=b"Resent-From: cat@mail.test\n" + msg)
    assert r.returncode == 0, r.stderr
    got = site.mail("bob")[1]
    assert fields(got, "Resent-From") == ["cat@mail.test"]
    assert len(fields(got, "Resent-Date")) == 1
    assert len(fields(got, "Resent-Message-ID")) == 1
    assert len(fields(got, "From")) == 1


def test_bcc_is_dropped_without_t_and_f_name_cannot_add_fields(site):
    r = site.sendmail("-F", "Evil\nBcc: x\r\nX-Injected: 1", "ann",
                      data=b"Bcc: cat@mail.test\nSubject: s\n\nx\n")
    assert r.returncode == 0, r.stderr
    got = site.one("ann")
    assert not fields(got, "Bcc") and not fields(got, "X-Injected")
    assert fields(got, "From") == ['"EvilBcc: xX-Injected: 1" <root@mail.test>']
    assert not site.mail("cat")  # without -t, Bcc names no recipient


def test_the_lone_dot_ends_a_message_over_max_message_size(site):
    """Past max-message-size the lone "." still ends the message, even
    after a line longer than 8 KiB straddles the limit: sendmail says the
    message is too large and exits 69 without waiting for the end of its
    input (a producer that waits for sendmail before closing it would
    wait for ever)."""
    with open(site.cf, "a") as f:
        f.write('[smtpd "mail.test"]\nmax-message-size = 10000\n')
    p = subprocess.Popen([os.path.join(site.bin, "sendmail"), "ann"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=site.env)
    try:
        p.stdin.write(b"Subject: big\n\n" + b"a" * 20000 + b"\n" +
                      b"b" * 9000 + b"\n.\n")
        p.stdin.flush()
        status = p.wait(timeout=10)  # standard input still open
    finally:
        p.kill()
        p.wait()
        p.stdin.close()
        err = p.stderr.read()
        p.stderr.close()
    assert status == 69, err
    assert b"larger than 10000 bytes (max-message-size)" in err
    assert site.mail("ann") == []


def test_a_message_that_starts_with_text_gets_a_header(site):
    """echo hi | sendmail user: the text is the body, below the fields the
    fix-ups add and a blank line."""
    r = site.sendmail("bob", data=b"hi there\nsecond")
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("bob"))
    assert b"\nDate: " in head and b"\nFrom: <root@mail.test>" in head
    assert body == b"hi there\nsecond\n"


def test_a_long_first_line_without_a_header_loses_nothing(site):
    """A message without a header whose first line runs past 8 KiB: a
    "." that continues that line is text, not the end of the message."""
    data = b"x" * 8192 + b".\nsecond line\nthird line\n"
    r = site.sendmail("ann", data=data)
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("ann"))
    assert body == data, body[-40:]


def test_recipients_are_bounded(site):
    """A header that names more recipients than any listener may take is
    refused before a session starts, without growing without bound."""
    many = b"To: " + b",".join(b"u%d" % i for i in range(100001)) + b"\n\nx\n"
    r = site.sendmail("-t", data=many)
    assert r.returncode == 64
    assert b"more than 99999 recipients" in r.stderr
    assert not any(site.mail(u) for u in USERS)


def spool_text(site):
    """Every envelope in the spool, as one text. The detached delivery
    may be rewriting one (a temporary file renamed over it): a file gone
    between the listing and the open is skipped."""
    out = b""
    for top, _, files in os.walk(os.path.join(site.d, "spool")):
        for f in files:
            try:
                with open(os.path.join(top, f), "rb") as fh:
                    out += fh.read()
            except FileNotFoundError:
                continue
    return out


def test_a_mailers_refusal_for_now_is_retried_from_the_spool(site):
    """A message for one recipient that a [pipe] delivers in the session:
    the mailer's temporary failure (exit 75) was sendmail's exit 75 with
    the message nowhere, and cron does not retry. The spool takes it over:
    sendmail exits 0, and --flush delivers it once the mailer can."""
    flag = os.path.join(site.d, "busy")
    open(flag, "w").close()
    with open(site.cf) as f:
        text = f.read()
    with open(site.cf, "w") as f:
        f.write(text.replace("[route]\n", '[pipe "busy"]\nexec = /bin/sh -c '
                             '"test -e %s && exit 75; cat >> %s/piped"\n'
                             "[route]\nroot@ busy\n" % (flag, site.d)))
    os.chmod(site.d, 0o1777)
    r = site.sendmail("root", data=b"Subject: cron output\n\nhi\n")
    assert r.returncode == 0, r.stderr
    assert b"root@mail.test" in spool_text(site)
    # the delivery the session started at once meets the busy mailer too
    wait_for(lambda: spool_unlocked(os.path.join(site.d, "spool")),
             what="the first attempt to end")
    os.unlink(flag)
    r = site.run([POSTMASTER, "--config=" + site.cf, "--flush", "--now"])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: os.path.exists(os.path.join(site.d, "piped")),
             what="the retry")
    with open(os.path.join(site.d, "piped"), "rb") as f:
        assert f.read().count(b"Subject: cron output") == 1


def test_n_r_v_are_the_dsn_requests_of_the_envelope(site):
    r = site.sendmail("-N", "never", "-R", "hdrs", "-V", "a b+c=d", "dan",
                      data=b"Subject: dsn\n\nx\n")
    assert r.returncode == 0, r.stderr
    env = spool_text(site)
    assert b"dsn-ret hdrs" in env
    assert b"dsn-envid a+20b+2Bc+3Dd" in env
    r = site.run([POSTMASTER, "--config=" + site.cf, "--queue"])
    assert b"notify=never" in r.stdout
    r = site.sendmail("-Nsuccess,delay", "dan", data=b"x\n")
    assert r.returncode == 0, r.stderr
    r = site.run([POSTMASTER, "--config=" + site.cf, "--queue"])
    assert b"notify=success,delay" in r.stdout


def test_n_takes_words_parted_by_blanks_as_postfix_does(site):
    """mutt passes its dsn_notify as it is written; "failure, delay" was
    a usage error (64, nothing sent) where Postfix's sendmail reads the
    words parted by blanks as well as commas."""
    r = site.sendmail("-N", "failure, delay", "dan", data=b"x\n")
    assert r.returncode == 0, r.stderr
    r = site.run([POSTMASTER, "--config=" + site.cf, "--queue"])
    assert b"notify=failure,delay" in r.stdout


def test_bad_dsn_options_are_usage_errors(site):
    for args in (["-N", "never,success"], ["-N", "sometimes"],
                 ["-R", "body"], ["-V", "x" * 101], ["-V", "tab\there"]):
        r = site.sendmail(*args, "ann", data=b"x\n")
        assert r.returncode == 64, (args, r.stderr)
        assert b"usage: sendmail" in r.stderr
    assert site.mail("ann") == []


MAILQ_HEAD = (b"-Queue ID-  --Size-- ----Arrival Time---- "
              b"-Sender/Recipient-------\n")


def test_mailq_and_bp_show_the_queue_as_postfix_does(site):
    mailq = os.path.join(site.bin, "mailq")
    r = site.run([mailq])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Mail queue is empty\n"
    r = site.sendmail("-f", "ann", "dan", "bob", data=b"Subject: q\n\nx\n")
    assert r.returncode == 0, r.stderr
    # bob's copy goes in the delivery that sendmail leaves running
    wait_for(lambda: b"bob@" not in site.run([mailq]).stdout,
             what="the delivery to bob")
    for argv in ([mailq], [os.path.join(site.bin, "sendmail"), "-bp"]):
        r = site.run(argv)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split(b"\n")
        assert r.stdout.startswith(MAILQ_HEAD), r.stdout
        head = re.fullmatch(rb"([0-9A-F]+) +(\d+) (\w{3} \w{3} [ \d]\d "
                            rb"\d\d:\d\d:\d\d)  ann@mail\.test", lines[1])
        assert head, r.stdout
        # the relay is down: the reason, then the one recipient that
        # waits (bob's copy was delivered and is not listed)
        assert lines[2].startswith(b"(") and lines[2].endswith(b")")
        assert lines[3] == b" " * 41 + b"dan@mail.test"
        assert lines[4] == b""
        kb = (int(head[2]) + 1023) // 1024
        assert lines[5] == b"-- %d Kbytes in 1 Request." % kb
    # --queue keeps its own layout, with every target and its state
    r = site.run([POSTMASTER, "--config=" + site.cf, "--queue"])
    assert b"Queue ID" not in r.stdout and b"<bob@mail.test>" in r.stdout


class BusyRelay(ThreadedServer):
    """A next hop on 127.0.0.1 that answers every RCPT with 451."""

    def _dialogue(self, conn):
        with conn.makefile("rwb") as f:
            f.write(b"220 busy.test ESMTP\r\n")
            f.flush()
            for line in f:
                verb = line[:4].upper()
                if verb == b"QUIT":
                    f.write(b"221 2.0.0 bye\r\n")
                    f.flush()
                    break
                f.write(b"451 4.2.1 mailbox busy\r\n" if verb == b"RCPT"
                        else b"250 ok\r\n")
                f.flush()


def test_mailq_names_the_host_that_deferred_once(site):
    """mailq's reason for a deferred recipient is Postfix's "(host H said:
    451 4.2.1 text)"; it once said "host H said: 451 4.2.1 H said: text"."""
    relay = BusyRelay()
    try:
        with open(site.cf) as f:
            cf = f.read()
        with open(site.cf, "w") as f:
            f.write(cf.replace("[127.0.0.1]:1\n",
                               "[127.0.0.1]:%d\n" % relay.port))
        r = site.sendmail("dan", data=b"Subject: q\n\nx\n")
        assert r.returncode == 0, r.stderr
        # the attempt is made by the delivery that sendmail leaves running
        mailq = os.path.join(site.bin, "mailq")
        wait_for(lambda: b"said:" in site.run([mailq]).stdout,
                 what="the deferred attempt")
        r = site.run([mailq])
    finally:
        relay.stop()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split(b"\n")
    assert lines[2] == b"(host 127.0.0.1[127.0.0.1] said: 451 4.2.1 " \
        b"mailbox busy)", r.stdout


def test_more_recipients_than_a_transaction_takes_go_in_several(site):
    """The listener takes two recipients per transaction, the command line
    names five: the message goes in three transactions (RFC 5321
    4.5.3.1.10), each recipient gets it once, with one Message-ID, and the
    body (longer than the reading buffer, ended by a lone dot) comes whole
    every time. It was exit 75 with nothing sent, for ever."""
    with open(site.cf, "a") as f:
        f.write('[smtpd "mail.test"]\nmax-recipients = 2\n')
    body = b"".join(b"line %06d of a long body\n" % i for i in range(8000))
    r = site.sendmail("ann", "bob", "cat", "root", "other",
                      data=b"Subject: five\n\n" + body + b".\nnot text\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    ids = set()
    for u in ("ann", "bob", "cat", "root", "other"):
        head, got = header_and_body(site.one(u))
        assert got == body, (u, len(got), len(body))
        ids |= set(fields(site.one(u), "Message-ID"))
    assert len(ids) == 1, ids
    with open(os.path.join(site.d, "log"), "rb") as f:
        assert len(re.findall(rb"status=sent", f.read())) == 5


def test_a_program_that_writes_slowly_loses_nothing(site):
    """cron streams a job's output to sendmail as the job runs: a pause
    longer than the listener's timeout once ended the session and the
    output was lost (exit 75). The message is now read whole before the
    session starts."""
    with open(site.cf, "a") as f:
        f.write('[smtpd "mail.test"]\ntimeout = 1s\n')
    p = subprocess.Popen([os.path.join(site.bin, "sendmail"), "ann"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=site.env)
    p.stdin.write(b"Subject: a slow job\n\nfirst line\n")
    p.stdin.flush()
    time.sleep(2.5)
    p.stdin.write(b"a line 2.5 s later\n")
    p.stdin.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0, err
    head, body = header_and_body(site.one("ann"))
    assert body == b"first line\na line 2.5 s later\n"


def test_a_recipient_refused_for_now_sends_nothing(site):
    """Exit 75 tells the caller to submit the message again, so it must
    mean that no recipient got it: when a policy service defers the second
    of three recipients, none gets the message (the first once got it,
    and got it again on the retry). A permanent refusal is different: the
    others still get the message."""
    from test_filters import PolicyServer
    policy = PolicyServer(os.path.join(site.d, "policy"))
    try:
        with open(site.cf, "a") as f:
            f.write('[smtpd "mail.test"]\npolicy-service = unix:%s\n'
                    % policy.path)
        r = site.sendmail("ann", "defer", "bob", data=b"Subject: three\n\nx\n")
    finally:
        policy.stop()
    assert r.returncode == 75, r.stderr
    assert b"defer@mail.test: 450 4.7.1" in r.stderr
    assert b"not sent to any" in r.stderr
    assert not any(site.mail(u) for u in USERS)
    assert spool_text(site) == b""


def test_a_next_hops_refusal_for_now_is_retried_from_the_spool(site):
    """cron's mail through the live proxy: the next hop said 450 to one
    recipient (greylisting, a busy mailbox), sendmail exited 75 and the
    message went to none, not even the one the next hop took; cron does
    not retry, so the job's output was lost. A local submitter's mail now
    goes through the spool: exit 0, the taken recipient gets it now, the
    one refused for now gets it from --flush once the next hop takes it,
    and the unknown one bounces to the local sender, as with Postfix."""
    from test_onward import Aiosmtpd
    peer = Aiosmtpd()
    h = peer.handler
    h.policy = {"later@pf.test": "450 4.2.0 mailbox busy",
                "nobody@pf.test": "550 5.1.1 user unknown"}
    try:
        with open(site.cf) as f:
            text = f.read()
        with open(site.cf, "w") as f:
            f.write(text.replace("[route]\n", '[relay "pf"]\naddress = '
                                 "[127.0.0.1]:%d\n[route]\n@pf.test pf\n"
                                 % peer.port))
        r = site.sendmail("joe@pf.test", "nobody@pf.test", "later@pf.test",
                          data=b"Subject: cron output\n\nhi\n")
        assert r.returncode == 0, r.stderr
        assert r.stderr == b""
        wait_for(lambda: h.delivered_to() == ["joe@pf.test"],
                 what="the delivery to joe")
        wait_for(lambda: b"later@pf.test" in spool_text(site)
                 and b"450 4.2.0" in spool_text(site),
                 what="later's deferral in the spool")
        # the sender, root, hears of the unknown user
        wait_for(lambda: site.mail("root"), what="the bounce to root")
        assert b"nobody@pf.test" in site.one("root")
        h.policy = {}
        r = site.run([POSTMASTER, "--config=" + site.cf, "--flush", "--now"])
        assert r.returncode == 0, r.stderr
        assert h.delivered_to() == ["joe@pf.test", "later@pf.test"]
        for m in h.messages:
            assert b"Subject: cron output" in m["content"]
        assert b"later@pf.test" not in spool_text(site)
    finally:
        peer.stop()


def test_closed_standard_error_is_not_the_session(site):
    """Run with standard error closed (as from some daemons), the socket
    pair to the in-process session would take descriptor 2, and the
    session's own output would go into the dialogue: it hung. /dev/null
    takes the closed descriptor's place."""
    sendmail = os.path.join(site.bin, "sendmail")
    for args in (["ann"], ["nobody@mail.test", "bob"]):
        r = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@" 2>&-', sendmail,
                            *args], input=b"Subject: closed\n\nx\n",
                           capture_output=True, env=site.env, timeout=60)
        user = args[-1]
        assert r.returncode == (0 if args == ["ann"] else 67), r
        assert len(site.mail(user)) == 1, user


class SilentPeer(ThreadedServer):
    """A next hop on 127.0.0.1 that accepts connections and never says a
    word: it holds them (held) until stop()."""

    def __init__(self):
        self.held = []
        super().__init__(backlog=8)

    def _accepted(self, conn):
        self.held.append(conn)

    def stop(self):
        super().stop()
        for c in self.held:  # the deliveries waiting for a greeting end now
            c.close()


def relay_to_a_silent_peer(site):
    """Points the site's relay at a next hop that accepts and never
    greets, so that the delivery sendmail leaves running waits (30 s)."""
    stall = SilentPeer()
    with open(site.cf) as f:
        text = f.read()
    with open(site.cf, "w") as f:
        f.write(text.replace("address = [127.0.0.1]:1\n",
                             "address = [127.0.0.1]:%d\nconnect-timeout = 1s"
                             "\ntimeout = 30s\n" % stall.port))
    return stall


def test_the_detached_delivery_does_not_hold_the_callers_output(site):
    """The next hop accepts the connection and never greets. sendmail
    answers once the message is spooled, but the delivery it leaves
    running kept the caller's standard error open: a caller that reads
    it to its end (subprocess.run(capture_output=True), $(sendmail ...
    2>&1), cron) waited for the whole relay timeout."""
    stall = relay_to_a_silent_peer(site)
    try:
        for args in (["-bs"], ["dan"]):
            data = b"Subject: stalled\n\nx\n" if args == ["dan"] else (
                b"EHLO c\r\nMAIL FROM:<root@mail.test>\r\nRCPT TO:<dan@mail."
                b"test>\r\nDATA\r\nSubject: stalled\r\n\r\nx\r\n.\r\nQUIT\r\n")
            t = time.monotonic()
            r = site.sendmail(*args, data=data)
            took = time.monotonic() - t
            assert r.returncode == 0, r
            assert took < 15, "the caller waited %.1f s" % took
        # each message: the delivery's attempt (a local submitter's
        # session does not proxy)
        wait_for(lambda: len(stall.held) >= 2, what="the deliveries to connect")
    finally:
        stall.stop()
    log = os.path.join(site.d, "log")

    def deferred():
        with open(log) as f:
            return len(re.findall(r"to=<dan@mail\.test> .*status=deferred "
                                  r"dsn=4\.4\.2 ", f.read())) >= 2
    wait_for(deferred, timeout=60, what="the deliveries to end")


# Stands in for a kernel before 5.9, or a container whose seccomp filter
# refuses close_range(2).
NO_CLOSE_RANGE = r"""
#include <errno.h>
int close_range(unsigned first, unsigned last, int flags)
{
	(void)first, (void)last, (void)flags;
	errno = ENOSYS;
	return -1;
}
"""


@pytest.mark.parametrize("close_range", [
    "works",
    pytest.param("refused", marks=pytest.mark.skipif(
        SANITIZED, reason="LD_PRELOAD before the sanitizer runtime"))])
def test_the_detached_delivery_holds_no_descriptor_the_caller_leaked(
        site, close_range):
    """A caller's descriptor past standard error that sendmail inherits
    (a flock(1) lock, `exec 9>lock`, a pipe that a parent reads to its
    end) was held by the delivery that outlives sendmail: the lock stayed
    taken, the parent's read did not end, until the next hop gave up.
    sendmail closes them first, as Postfix's does; where close_range(2)
    is refused (ENOSYS before Linux 5.9, EPERM under an older container
    seccomp profile), one by one, where they were once all kept."""
    env = site.env
    if close_range == "refused":
        src = os.path.join(site.d, "ncr.c")
        with open(src, "w") as f:
            f.write(NO_CLOSE_RANGE)
        shim = os.path.join(site.d, "ncr.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, src],
                       check=True)
        env = dict(site.env, LD_PRELOAD=shim)
    stall = relay_to_a_silent_peer(site)
    lock = os.path.join(site.d, "lock")
    r, w = os.pipe()
    try:
        with open(lock, "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            p = subprocess.run([os.path.join(site.bin, "sendmail"), "dan"],
                               input=b"Subject: leaked\n\nx\n",
                               capture_output=True, env=env, timeout=60,
                               pass_fds=(held.fileno(), w))
            assert p.returncode == 0, p.stderr
        os.close(w)
        wait_for(lambda: len(stall.held) >= 1, what="the delivery to connect")
        # the lock is free: nothing of sendmail's holds it
        with open(lock) as again:
            fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the pipe is at its end: nobody else holds its write end
        ready, _, _ = select.select([r], [], [], 5)
        assert ready and os.read(r, 1) == b"", "the pipe stayed open"
    finally:
        os.close(r)
        stall.stop()


def ignoring_sigchld():
    """What a Perl daemon's $SIG{CHLD} = 'IGNORE' (or swaks --pipe)
    leaves to the programs it starts: an ignored SIGCHLD survives exec."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)


def test_an_ignored_sigchld_loses_no_exit_status(site):
    """With SIGCHLD ignored, waitpid() finds no child: sendmail -q lost
    the exit status of a mailer that had delivered, deferred it ("lost
    the mailer's exit status") and delivered it again on the next run;
    root's sendmail -bs exited 71 after a message it had delivered."""
    mailer = os.path.join(site.d, "mailer.sh")
    with open(mailer, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\n"
                "[ -f %s/allow ] || exit 75\necho x >> %s/delivered\n"
                % (site.d, site.d))
    os.chmod(mailer, 0o755)
    with open(site.cf) as f:
        text = f.read()
    with open(site.cf, "w") as f:
        f.write(text.replace("[route]\n", "[route]\npipe@ |%s\n" % mailer))
    r = site.sendmail("pipe", data=b"Subject: pipe\n\nx\n")
    assert r.returncode == 0, r.stderr
    open(os.path.join(site.d, "allow"), "w").close()
    for _ in range(2):
        r = subprocess.run([os.path.join(site.bin, "sendmail"), "-q"],
                           capture_output=True, env=site.env, timeout=60,
                           preexec_fn=ignoring_sigchld)
        assert r.returncode == 0, r.stderr
    with open(os.path.join(site.d, "delivered")) as f:
        assert f.read() == "x\n"  # once
    assert b"Mail queue is empty" in site.sendmail("-bp").stdout
    dialogue = (b"EHLO c\r\nMAIL FROM:<root@mail.test>\r\nRCPT TO:<ann@mail"
                b".test>\r\nDATA\r\nSubject: bs\r\n\r\nx\r\n.\r\nQUIT\r\n")
    r = subprocess.run([os.path.join(site.bin, "sendmail"), "-bs"],
                       input=dialogue, capture_output=True, env=site.env,
                       timeout=60, preexec_fn=ignoring_sigchld)
    assert r.returncode == 0, r
    assert len(site.mail("ann")) == 1


def test_a_session_that_cannot_start_says_why(site):
    """The session child's standard error was /dev/null, so a session
    that could not start (here: a log file in a directory that does not
    exist) answered only 421 and the caller never learnt why. The
    session keeps the caller's standard error; only the detached
    delivery lets go of it (the test above)."""
    with open(site.cf) as f:
        text = f.read()
    with open(site.cf, "w") as f:
        f.write(text.replace("file = %s/log\n" % site.d,
                             "file = %s/nodir/log\n" % site.d))
    r = site.sendmail("ann", data=b"Subject: x\n\nbody\n")
    assert r.returncode == 75, r
    assert b"cannot open log file %s/nodir/log" % site.d.encode() \
        in r.stderr, r.stderr
    r = site.sendmail("-bs", data=b"EHLO x\r\nQUIT\r\n")
    assert r.stdout.startswith(b"421 4.3.0 "), r
    assert b"cannot open log file" in r.stderr, r.stderr
    assert site.mail("ann") == []


def test_no_room_for_the_message_is_try_again_later(site):
    """sendmail keeps the body in an unlinked file in $TMPDIR first. A
    $TMPDIR that is gone now means /tmp; a file that cannot be written to
    its end (a full disk; here a file size limit) exits 75, as Postfix's
    sendmail does on a queue file error, so that callers retry. Both
    were exit 73, which callers take for a permanent failure."""
    env = dict(site.env, TMPDIR=os.path.join(site.d, "gone"))
    r = site.run([os.path.join(site.bin, "sendmail"), "ann"],
                 b"Subject: gone\n\nx\n", env=env)
    assert r.returncode == 0, r
    assert len(site.mail("ann")) == 1

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    r = subprocess.run([os.path.join(site.bin, "sendmail"), "bob"],
                       input=b"Subject: big\n\n" + b"y" * 70 * 3000 + b"\n",
                       capture_output=True, env=site.env, timeout=60,
                       preexec_fn=small_files)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "sendmail")
    assert r.returncode == 75, r
    assert b"it was not sent" in r.stderr, r.stderr
    assert site.mail("bob") == [] and spool_text(site) == b""


def test_a_full_tmpdir_gives_way_to_tmp(site):
    """A $TMPDIR without room for the message (here a 64 KiB tmpfs in a
    private mount namespace) exited 75 without trying /tmp, though
    postmaster(8) says /tmp is used when $TMPDIR cannot be: the message
    moves to /tmp with what was written and goes."""
    unshare = tool("unshare")
    if subprocess.run([unshare, "-m", "true"],
                      capture_output=True).returncode:
        pytest.skip("no mount namespace here")
    small = os.path.join(site.d, "small")
    os.mkdir(small)
    body = b"".join(b"line %05d " % i + b"y" * 60 + b"\n"
                    for i in range(3000))
    r = site.run([unshare, "-m", "--propagation", "private", "sh", "-c",
                  'mount -t tmpfs -o size=64k tmpfs "$0" || exit 99; '
                  'TMPDIR="$0" exec "$1" bob', small,
                  os.path.join(site.bin, "sendmail")],
                 b"Subject: big\n\n" + body)
    assert r.returncode == 0, r
    head, got = header_and_body(site.one("bob"))
    assert got == body


def test_a_read_error_on_standard_input_sends_nothing(site):
    """A read error is not the end of the message: nothing is sent (the
    data ends without its final dot) and the exit status is 74."""
    fd = os.open(site.d, os.O_RDONLY)  # a directory: read() fails, EISDIR
    try:
        r = subprocess.run([os.path.join(site.bin, "sendmail"), "ann"],
                           stdin=fd, capture_output=True, env=site.env,
                           timeout=60)
    finally:
        os.close(fd)
    assert r.returncode == 74, r
    assert b"reading the message: Is a directory" in r.stderr
    assert site.mail("ann") == [] and spool_text(site) == b""


def test_control_characters_in_addresses_are_usage_errors(site):
    for args in (["-f", "me@example.org>\r\nRCPT TO:<bob@mail.test", "ann"],
                 ["-f", "me@example.org\n", "ann"]):
        r = site.sendmail(*args, data=b"x\n")
        assert r.returncode == 64, r
        assert b"a control character in the address" in r.stderr
    assert not any(site.mail(u) for u in USERS)


@pytest.mark.parametrize("length", [8190, 8191, 8192, 70000])
def test_long_crlf_lines_keep_their_line_ends(site, length):
    """CRLF input lines of any length arrive as lines, without a stray CR
    where the reader's pieces end (a line of 8 191 octets once arrived
    with its CR as text)."""
    line = b"y" * length
    r = site.sendmail("ann", data=b"Subject: long\r\n\r\n" + line + b"\r\nend\r\n")
    assert r.returncode == 0, r.stderr
    head, body = header_and_body(site.one("ann"))
    assert body == line + b"\nend\n"


def test_leading_mbox_from_lines_are_dropped(site):
    """A message saved from an mbox starts with "From sender date" (and
    maybe ">From " lines): sendmail drops them, as Postfix's does, so the
    header that follows is the header (it once became body text, and -t
    found no recipient). A "From " line further down is text."""
    r = site.sendmail("ann", data=b"From root@x Mon Dec  7 10:00:00 2026\n"
                      b">From old@x Sun Dec  6 10:00:00 2026\n"
                      b"Subject: fromline\n\nbody\nFrom here on\n")
    assert r.returncode == 0, r.stderr
    got = site.one("ann")
    assert fields(got, "Subject") == ["fromline"]
    head, body = header_and_body(got)
    assert b"From root@x" not in got and b">From old@x" not in got, got
    assert body == b"body\nFrom here on\n"
    # with -t, and a separator longer than one piece of the reader
    r = site.sendmail("-t", data=b"From " + b"x" * 20000 + b" Mon Dec  7 2026\n"
                      b"To: bob@mail.test\nSubject: s\n\nbody\n")
    assert r.returncode == 0, r.stderr
    got = site.one("bob")
    assert b"xxxx" not in got and fields(got, "Subject") == ["s"], got


def test_blanks_before_the_colon_still_make_a_field(site):
    """RFC 5322 4.5 obsolete syntax: "Bcc : x" is a Bcc field; it is
    dropped, and -t reads "To : x" (such a line once ended the header, so
    the Bcc was shown to all as body text and -t found no recipient)."""
    r = site.sendmail("ann", data=b"Subject : obs\nBcc : cat@mail.test\n\nbody\n")
    assert r.returncode == 0, r.stderr
    got = site.one("ann")
    head, body = header_and_body(got)
    assert b"cat@mail.test" not in got and b"Subject : obs" in head, got
    assert body == b"body\n"
    assert not site.mail("cat")
    r = site.sendmail("-t", data=b"To : bob@mail.test\nBcc\t: cat@mail.test\n"
                      b"Subject : obs\n\nbody\n")
    assert r.returncode == 0, r.stderr
    for user in ("bob", "cat"):
        got = site.one(user)
        assert b"Bcc" not in got and header_and_body(got)[1] == b"body\n", got
