"""Submission fix-ups (RFC 6409 8, SPEC 8) in sessions: a client that
authenticated on a listener with `submission = yes` (the default with
`auth = required`) gets Bcc dropped and Date, Message-ID and From added
when missing; relayed or inbound mail is stored as it came."""
import base64
import os
import re
import subprocess
from email import message_from_bytes

import pytest

from pmtest import (POSTMASTER, ROOT, no_sanitizer_report, remove_tree,
                    scratch_dir, tool)

CF = """\
[core]
hostname = mail.test
logger = stderr
spool-directory = {d}/spool
{user}
[smtpd "sub"]
name = sub.test
auth = {auth}
auth-file = {d}/users
{extra}
[route]
@mail.test {d}/Maildir/
"""


@pytest.fixture
def d():
    d = scratch_dir("pm-submission-")
    h = subprocess.run([tool("openssl"), "passwd", "-6", "secret"],
                       capture_output=True, text=True, check=True).stdout
    with open(os.path.join(d, "users"), "w") as f:
        f.write("anna:%s" % h)
    yield d
    remove_tree(d)


def session(d, auth="required", extra="", login=True, message=b""):
    with open(os.path.join(d, "pm.cf"), "w") as f:
        f.write(CF.format(d=d, auth=auth, extra=extra,
                          user="user-id = nobody" if ROOT else ""))
    cred = base64.b64encode(b"\0anna\0secret")
    dialogue = b"EHLO client.test\r\n"
    if login:
        dialogue += b"AUTH PLAIN " + cred + b"\r\n"
    dialogue += b"MAIL FROM:<anna@mail.test>\r\nRCPT TO:<joe@mail.test>\r\n" \
                b"DATA\r\n" + message + b".\r\nQUIT\r\n"
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf"),
                        "--smtpd=sub"], input=dialogue, capture_output=True,
                       timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    assert b"\r\n250 2.0.0" in r.stdout, r.stdout + r.stderr
    new = os.path.join(d, "Maildir", "new")
    (name,) = os.listdir(new)
    with open(os.path.join(new, name), "rb") as f:
        got = f.read()
    os.unlink(os.path.join(new, name))
    return got


BARE = b"To: joe@mail.test\r\nBcc: secret@mail.test,\r\n  other@mail.test\r\n" \
       b"Subject: s\r\n\r\nbody\r\nBcc: in the body stays\r\n"


def test_authenticated_submission_gets_the_fix_ups(d):
    got = session(d, message=BARE)
    m = message_from_bytes(got)
    assert m.get_all("Bcc") is None and b"secret@" not in got
    assert b"  other@" not in got
    # at core.hostname, as sendmail's, not at the listener's name
    assert re.fullmatch(r"<\d+\.[0-9a-f]+\.1@mail\.test>", m["Message-ID"])
    assert m["From"] == "<anna@mail.test>"
    assert m["Date"] and m["Subject"] == "s"
    assert got.endswith(b"\n\nbody\nBcc: in the body stays\n")
    # what the message has is kept, once
    got = session(d, message=b"From: Anna <a@x.test>\r\nDate: Tue, 1 Dec "
                  b"2026 10:00:00 +0000\r\nMessage-ID: <own@x.test>\r\n\r\nb\r\n")
    m = message_from_bytes(got)
    assert m.get_all("From") == ["Anna <a@x.test>"]
    assert m.get_all("Message-ID") == ["<own@x.test>"]
    assert m.get_all("Date") == ["Tue, 1 Dec 2026 10:00:00 +0000"]
    # a message without a body, and an empty one
    got = session(d, message=b"Subject: only\r\n")
    assert re.search(rb"\nSubject: only\nDate: .*\nMessage-ID: .*\nFrom: "
                     rb"<anna@mail.test>\n$", got), got
    got = session(d, message=b"")
    assert message_from_bytes(got)["From"] == "<anna@mail.test>"


def test_local_parts_alone_get_the_host_name(d):
    """A submission listener stored `From: root (Cron Daemon)` and `To:
    root, bob@x` as they came, while the same header through sendmail
    was to be completed: the fix-ups complete each local part alone in
    the address fields with core.hostname, keeping names, comments,
    groups and folds, and leave other fields and lists they cannot read
    as they are."""
    got = session(d, message=b"From: root (Cron Daemon)\r\n"
                  b"To: root, bob@x.test,\r\n\tTeam: \"a b\", <c>;\r\n"
                  b"Cc: undisclosed-recipients:;\r\n"
                  b"Resent-To : ann (A, b@c)\r\n"
                  b"Subject: root\r\nX-Open: root\r\n"
                  b"Reply-To: root, \"open\r\n\r\nTo: root\r\n")
    head, body = got.split(b"\n\n", 1)
    assert b"\nFrom: root@mail.test (Cron Daemon)\n" in head, got
    assert b"\nTo: root@mail.test, bob@x.test,\n\tTeam: \"a b\"@mail.test, " \
           b"<c@mail.test>;\n" in head, got
    assert b"\nCc: undisclosed-recipients:;\n" in head, got
    assert b"\nResent-To : ann@mail.test (A, b@c)\n" in head, got
    assert b"\nSubject: root\nX-Open: root\n" in head, got
    assert b"\nReply-To: root, \"open\n" in head, got
    assert body == b"To: root\n", got
    # the last field of a message that is all header
    got = session(d, message=b"Subject: s\r\nTo: root\r\n")
    assert b"\nTo: root@mail.test\nDate: " in got, got
    # a field past 64 KiB is not held whole: it is stored as it came
    long_to = b"To: root" + b",\r\n a" * 20000 + b"\r\n"
    got = session(d, message=long_to + b"Cc: root\r\n\r\nx\r\n")
    assert long_to.replace(b"\r\n", b"\n") in got
    assert b"\nCc: root@mail.test\n" in got


def submit_onward(d, port, message):
    """An authenticated submission for bob@out.test, which goes to the
    relay at port: the session's log and the queue's listing."""
    text = CF.format(d=d, auth="required", extra="",
                     user="user-id = nobody" if ROOT else "")
    text = text.replace("[route]\n", '[relay "next"]\naddress = '
                        "[127.0.0.1]:%d\n[route]\n@out.test next\n" % port)
    cf = os.path.join(d, "pm.cf")
    with open(cf, "w") as f:
        f.write(text)
    cred = base64.b64encode(b"\0anna\0secret")
    dialogue = b"EHLO client.test\r\nAUTH PLAIN " + cred + b"\r\n" \
        b"MAIL FROM:<anna@mail.test>\r\nRCPT TO:<bob@out.test>\r\n" \
        b"DATA\r\n" + message + b".\r\nQUIT\r\n"
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=sub"],
                       input=dialogue, capture_output=True, timeout=60)
    log = r.stderr.decode(errors="replace")
    no_sanitizer_report(log, "session")
    assert b"\r\n250 2.0.0" in r.stdout, r.stdout + r.stderr
    q = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"],
                       capture_output=True, text=True, timeout=60)
    return log, q.stdout


def test_logged_size_is_the_stored_size_after_the_fix_ups(d):
    """postmaster(8) LOGGING: size= is the message as stored and
    delivered, the same in the session's line, every later one and
    --queue. The session logged the size before the fix-ups (Bcc gone,
    Date and Message-ID added), smaller than what --queue, the delivery
    and the next hop saw."""
    # the next hop is down: the spool takes it over
    log, q = submit_onward(d, 1, BARE)
    queued = re.search(r" id=(\w+) .*to=<bob@out\.test> .*status=queued "
                       r"size=(\d+)", log)
    assert queued, log
    qid, size = queued[1], int(queued[2])
    listed = re.search(r"^%s\s+(\d+) " % qid, q, re.M)
    assert listed and int(listed[1]) == size, (size, q)
    assert len(BARE) - BARE.count(b"\r\n") < size  # Date, Message-ID
    # through the live proxy: the octets the next hop got, in LF lines
    from test_onward import Aiosmtpd
    peer = Aiosmtpd()
    try:
        log, _ = submit_onward(d, peer.port, BARE)
        (m,) = peer.handler.messages
    finally:
        peer.stop()
    got = m["content"].replace(b"\r\n", b"\n")
    assert b"Message-ID: <" in got and b"secret@" not in got
    sent = re.search(r"to=<bob@out\.test> .*via=proxy status=sent .*"
                     r"size=(\d+)", log)
    assert sent and int(sent[1]) == len(got), (len(got), log)


def test_blanks_before_the_colon_name_the_same_field(d):
    """RFC 5322 4.5 obsolete syntax: "Bcc :" is a Bcc field (dropped, as
    --inject -t drops it), "From :" and "Date :" are the message's own."""
    got = session(d, message=b"From : Anna <anna@mail.test>\r\n"
                  b"Date\t: Mon, 07 Dec 2026 20:00:00 +0000\r\n"
                  b"To: joe@mail.test\r\nBcc : secret@mail.test,\r\n"
                  b"  other@mail.test\r\nMessage-ID" + b" " * 40 +
                  b": <own@x.test>\r\nBCC" + b"\t" * 30 + b": hidden@x.test\r\n"
                  b"Subject: s\r\n\r\nbody\r\n")
    assert b"secret@" not in got and b"other@" not in got, got
    assert b"hidden@" not in got, got
    head = got.split(b"\n\n", 1)[0]
    assert len(re.findall(rb"(?mi)^from[ \t]*:", head)) == 1, got
    assert len(re.findall(rb"(?mi)^date[ \t]*:", head)) == 1, got
    assert len(re.findall(rb"(?mi)^message-id[ \t]*:", head)) == 1, got
    assert b"From : Anna <anna@mail.test>\n" in head, got
    assert re.search(rb"\nMessage-ID +: <own@x.test>\n", head), got
    assert got.endswith(b"\nSubject: s\n\nbody\n"), got
    # not a field: kept as it came
    got = session(d, message=b"Subject: s\r\nBcc x : y\r\n\r\nb\r\n")
    assert b"\nBcc x : y\n" in got, got


def test_no_fix_ups_without_auth_or_with_submission_no(d):
    for kw in ({"auth": "optional", "login": False},
               {"auth": "required", "extra": "submission = no"},
               {"auth": "optional", "extra": "submission = no"}):
        got = session(d, message=BARE, **kw)
        assert b"\nBcc: secret@mail.test,\n  other@mail.test\n" in got, kw
        m = message_from_bytes(got)
        assert m["Date"] is None and m["Message-ID"] is None, kw
        assert m["From"] is None, kw


def test_submission_default_follows_auth(d):
    with open(os.path.join(d, "pm.cf"), "w") as f:
        f.write(CF.format(d=d, auth="required", extra="", user=""))
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf"),
                        "--dump", "--defaults"], capture_output=True, text=True)
    assert 'smtpd."sub".submission = yes' in r.stdout.splitlines()
    with open(os.path.join(d, "pm.cf"), "w") as f:
        f.write(CF.format(d=d, auth="optional", extra="", user=""))
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf"),
                        "--dump", "--defaults"], capture_output=True, text=True)
    assert 'smtpd."sub".submission = no' in r.stdout.splitlines()
    with open(os.path.join(d, "pm.cf"), "a") as f:
        f.write('[smtpd "sub"]\nsubmission = maybe\n')
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf"),
                        "--check"], capture_output=True, text=True)
    assert r.returncode == 78 and "submission" in r.stderr


def test_binary_mail_keeps_its_crlf_lines(d):
    """BDAT BODY=BINARYMIME is stored as received: the fix-ups follow its
    CRLF line ends."""
    with open(os.path.join(d, "pm.cf"), "w") as f:
        f.write(CF.format(d=d, auth="required", extra="",
                          user="user-id = nobody" if ROOT else ""))
    msg = b"Bcc: x@mail.test\r\nSubject: bin\r\n\r\n\x00\xff binary\r\n"
    dialogue = b"EHLO c\r\nAUTH PLAIN " + base64.b64encode(b"\0anna\0secret") + \
        b"\r\nMAIL FROM:<anna@mail.test> BODY=BINARYMIME\r\n" \
        b"RCPT TO:<joe@mail.test>\r\nBDAT %d LAST\r\n" % len(msg) + msg + \
        b"QUIT\r\n"
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf"),
                        "--smtpd=sub"], input=dialogue, capture_output=True,
                       timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    assert b"\r\n250 2.0.0" in r.stdout, r.stdout
    new = os.path.join(d, "Maildir", "new")
    (name,) = os.listdir(new)
    with open(os.path.join(new, name), "rb") as f:
        got = f.read()
    assert b"Bcc" not in got
    assert re.search(rb"\r\nSubject: bin\r\nDate: [^\r\n]+\r\nMessage-ID: "
                     rb"<[^\r\n]+>\r\nFrom: <anna@mail.test>\r\n\r\n"
                     rb"\x00\xff binary\r\n$", got), got


@pytest.mark.parametrize("text", [
    b"The job said:\r\n",       # a colon after words: no field name
    b"The cron job\r\n",        # no colon at all
    b"output follows\r\n",      # blanks inside what would be the name
    b"X-Not-A-Field\r\n",       # a name without its colon
])
def test_the_header_ends_at_a_line_that_is_no_field(d, text):
    """A message whose text follows its header without a blank line: the
    header ends at the first line that is no field (as sendmail's and
    Postfix's do), the fix-ups' fields and a blank line go before it, and
    later lines that look like fields are body: neither completed
    (To: root) nor dropped (Bcc:) nor taken for the From field."""
    got = session(d, message=b"Subject: s\r\n" + text +
                  b"To: root\r\nBcc: x\r\nFrom: daemon\r\n")
    head, body = got.split(b"\n\n", 1)
    assert body == text.replace(b"\r\n", b"\n") + \
        b"To: root\nBcc: x\nFrom: daemon\n", got
    assert b"\nFrom: <anna@mail.test>\n" in head + b"\n", got
    assert b"\nDate: " in head and b"\nMessage-ID: " in head, got


def test_blanks_before_the_colon_of_an_address_field(d):
    """The obsolete syntax 'To<blanks>:' (RFC 5322 4.5) is the To field
    however many blanks there are, as sendmail reads it."""
    got = session(d, message=b"To" + b" " * 20 + b": root\r\nSubject: s\r\n"
                  b"\r\nx\r\n")
    assert re.search(rb"\nTo +: root@mail\.test\n", got), got
