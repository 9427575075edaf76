"""Milters (SPEC 8, issue 13): the milter protocol, version 6, to the test
milter of pmmilter.py on a unix socket in a scratch directory. Sessions
run on a pipe; mail for joe@example.net goes to a Maildir."""
import glob
import os
import struct
import subprocess
import time

import pytest

from pmmilter import Milter, packet
from pmtest import Tcpserver, free_port, make_cert, POSTMASTER, ROOT, SANITIZED, no_sanitizer_report, remove_tree, scratch_dir, tool, wait_for


@pytest.fixture
def tmp():
    d = scratch_dir("pm-milter-", ("spool", "Maildir", "Maildir2"))
    yield d
    remove_tree(d)


def config(tmp, milters, extra="", listen="25"):
    cf = os.path.join(tmp, "postmaster.cf")
    names = " ".join(m[0] for m in milters)
    with open(cf, "w") as f:
        f.write("[core]\nhostname = mail.example.net\nlogger = stderr\n"
                "spool-directory = %s/spool\npid-file = %s/flush.pid\n"
                % (tmp, tmp))
        if ROOT:
            f.write("user-id = nobody\n")
        for name, address, keys in milters:
            f.write('[milter "%s"]\naddress = %s\n%s\n' % (name, address, keys))
        f.write('[smtpd "mx"]\nname = mail.example.net\nlisten-port = %s\n'
                'milters = %s\n%s\n'
                '[route]\njoe@example.net %s/Maildir/\n'
                'ann@example.net %s/Maildir2/\n'
                % (listen, names, extra, tmp, tmp))
    return cf


def session(cf, wire, env=None, timeout=60):
    e = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
             TCPREMOTEIP="192.0.2.7", TCPREMOTEPORT="4711")
    e.update(env or {})
    r = subprocess.run([POSTMASTER, "--config=" + cf], input=wire.encode(),
                       capture_output=True, env=e, timeout=timeout)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def waiting_session(cf, wire, expect):
    """A session whose client stops after wire until expect arrives."""
    e = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
             TCPREMOTEIP="192.0.2.7")
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    p.stdin.write(wire.encode())
    p.stdin.flush()
    out = ""
    while expect not in out:
        line = p.stdout.readline().decode()
        if not line:
            break
        out += line
    p.stdin.close()
    out += p.stdout.read().decode()
    err = p.stderr.read().decode()
    p.wait(timeout=30)
    return out, err


def mail(body="Subject: hi\r\nFrom: a@example.org\r\n\r\nhello\r\n",
         rcpts=("joe@example.net",)):
    w = "EHLO client.example\r\nMAIL FROM:<a@example.org> SIZE=100\r\n"
    for r in rcpts:
        w += "RCPT TO:<%s>\r\n" % r
    return w + "DATA\r\n" + body + ".\r\nQUIT\r\n"


def delivered(tmp, box="Maildir"):
    files = glob.glob(os.path.join(tmp, box, "new", "*"))
    return [open(f, "rb").read().decode(errors="replace") for f in files]


def lines(out):
    return out.replace("\r\n", "\n").split("\n")


def test_events_macros_and_accept(tmp):
    m = Milter(os.path.join(tmp, "m.sock"))
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
        assert quit_seen(m) == ["O", "C", "H", "M", "R", "T", "L", "L", "N",
                                "B", "E", "Q"]
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    conn = [e for e in m.events if e[0] == "C"][0][1]
    assert conn == ["[192.0.2.7]", "4\x12g192.0.2.7"]
    mailev = [e for e in m.events if e[0] == "M"][0][1]
    assert mailev == ["<a@example.org>", "SIZE=100"]
    assert m.macro("{client_addr}") == "192.0.2.7"
    assert m.macro("{client_port}") == "4711"
    assert m.macro("j") == "mail.example.net"
    assert m.macro("{daemon_name}") == "mx"
    assert m.macro("{mail_addr}") == "a@example.org"
    assert m.macro("{rcpt_addr}") == "joe@example.net"
    assert m.macro("i")
    headers = [e[1] for e in m.events if e[0] == "L"]
    # our Received header is not shown; one space after the colon eaten
    assert headers == [["Subject", "hi"], ["From", "a@example.org"]]
    assert bytes(m.body) == b"hello\r\n"
    assert len(delivered(tmp)) == 1


def test_asked_macros_and_no_header_replies(tmp):
    # SMFIM_ENVRCPT asks for {rcpt_addr} and i; SMFIP_NR_HDR: no header
    # replies; SMFIP_NOBODY: no body; SMFIP_HDR_LEADSPC keeps the space
    m = Milter(os.path.join(tmp, "m.sock"), macros={3: "i {rcpt_addr}"},
               protocol=(1 << 7) | (1 << 4) | (1 << 20))
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    assert "B" not in m.cmds()
    rcpt_macros = [e[1][1] for e in m.events if e[0] == "D" and e[1][0] == "R"]
    assert set(rcpt_macros[0]) == {"i", "{rcpt_addr}"}
    headers = [e[1] for e in m.events if e[0] == "L"]
    assert headers[0] == ["Subject", " hi"]


@pytest.mark.parametrize("stage,reply,expect", [
    ("R", ("y", b"550 5.7.1 Recipient not wanted here\0"),
     "550 5.7.1 Recipient not wanted here"),
    ("R", ("t", b""), "451 4.7.1 Service unavailable - try again later"),
    ("M", ("r", b""), "550 5.7.1 Command rejected"),
    ("E", ("y", b"554 5.7.0 Your message smells\0"), "554 5.7.0 Your message smells"),
    ("E", ("r", b""), "550 5.7.1 Message content rejected"),
    ("E", ("t", b""), "451 4.7.1 Service unavailable - try again later"),
    ("L", ("r", b""), "550 5.7.1 Message content rejected"),
    ("B", ("y", b"452 4.3.1 Body too hot\0"), "452 4.3.1 Body too hot"),
    ("T", ("y", b"554 5.7.1 No data for you\0"), "554 5.7.1 No data for you"),
    ("H", ("y", b"550 5.7.1 Bad HELO\0"), "550 5.7.1 Bad HELO"),
    ("C", ("y", b"554 5.7.1 Go away\0"), "554 5.7.1 Go away"),
    ("R", ("y", b"550-5.7.1 first line\r\n550 5.7.1 second line\0"),
     "550-5.7.1 first line\r\n550 5.7.1 second line\r\n"),
    ("M", ("4", b""), "421 4.7.1 mail.example.net Service unavailable - closing"),
    ("E", ("y", b"554 5.7.1 bad\x07bell\x1b[2J\0"), "554 5.7.1 bad?bell?[2J\r\n"),
    ("E", ("y", b"554 5.7.1 caf\xc3\xa9\0"), "554 5.7.1 caf??\r\n"),
    # a line of another code, or lines without one: no reply, a broken milter
    ("R", ("y", b"550-5.7.1 a\r\n\r\n\r\n250 2.0.0 b\0"),
     "451 4.7.1 Service unavailable - try again later"),
    ("R", ("y", b"550 5.7.1 a\nb\nc\0"),
     "451 4.7.1 Service unavailable - try again later"),
    # an enhanced code of another class is malformed, as in Postfix (it
    # once stayed in the text: "450 4.0.0 5.7.1 greylisted")
    ("R", ("y", b"450 5.7.1 greylisted\0"),
     "451 4.7.1 Service unavailable - try again later"),
    ("R", ("y", b"550-5.7.1 one\r\n550 4.7.1 two\0"),
     "451 4.7.1 Service unavailable - try again later"),
    # libmilter's replies are format strings: '%%' is one '%', a lone '%'
    # is dropped, as Postfix does
    ("R", ("y", b"550 5.7.1 100%% spam %score\0"), "550 5.7.1 100% spam score\r\n"),
])
def test_refusals_reach_the_client(tmp, stage, reply, expect):
    m = Milter(os.path.join(tmp, "m.sock"), script={stage: [reply]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        if stage == "T":
            # a client that waits for DATA's reply (content sent anyway is
            # 554 5.5.0)
            out, err = waiting_session(cf, mail().split("DATA\r\n")[0] +
                                       "DATA\r\n", expect)
        else:
            out, err = session(cf, mail())
    finally:
        m.close()
    assert expect in out, out + err
    assert delivered(tmp) == []


@pytest.mark.parametrize("stage,name", [("H", "helo"), ("M", "mail"),
                                        ("T", "data")])
def test_a_refusal_before_any_recipient_line_is_logged(tmp, stage, name):
    """A milter's refusal of HELO, MAIL or DATA: the client has it, and
    the log says which milter refused what, with the reply (the session
    once logged nothing, and a DATA refused after its recipients were
    accepted left no line at all)."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={stage: [("y", b"554 5.7.1 go away spammer\0")]})
    try:
        cf = config(tmp, [("spamcheck", "unix:" + m.path, "")])
        wire = mail().split("DATA\r\n")[0] + "DATA\r\n"
        out, err = waiting_session(cf, wire, "554 5.7.1")
    finally:
        m.close()
    assert "554 5.7.1 go away spammer" in out, out + err
    assert ("event=milter milter=spamcheck stage=%s code=554 dsn=5.7.1 "
            'reason="go away spammer"' % name) in err, err
    assert delivered(tmp) == []


def test_a_milters_421_ends_the_session(tmp):
    """A 421 closes the channel (RFC 5321 4.2.2), whoever chose it: after
    a milter's 421 to MAIL the session answers nothing more (it once
    went on and answered the next MAIL and QUIT)."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"M": [("y", b"421 4.7.0 go away\0")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, "EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
                           "MAIL FROM:<b@example.org>\r\nQUIT\r\n")
    finally:
        m.close()
    assert out.endswith("421 4.7.0 go away\r\n"), out + err
    assert out.count("421 ") == 1 and "221 " not in out, out


@pytest.mark.parametrize("reply", [("4", b""), ("y", b"421 4.7.0 busy\0")])
def test_a_milters_shutdown_at_connect_is_a_421(tmp, reply):
    """A milter that shuts down (or says 421) at the connection: the
    client's EHLO gets the 421 and the session ends there, and the log
    says why (a SMFIR_SHUTDOWN once ended the session after the greeting
    with no reply and no log line)."""
    m = Milter(os.path.join(tmp, "m.sock"), script={"C": [reply]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, "EHLO x\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n"
                           "QUIT\r\n")
    finally:
        m.close()
    assert lines(out)[0].startswith("220 "), out
    assert lines(out)[1].startswith("421 4.7."), out + err
    assert out.count("\r\n") == 2, out
    assert "event=milter milter=t stage=connect code=421" in err, err


def test_progress_and_discard(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("p", b""), ("p", b""), ("d", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0 Ok: discarded" in out, out + err
    assert "status=discarded" in err
    assert delivered(tmp) == []


@pytest.mark.parametrize("stage", ["B", "E"])
def test_progress_without_end_is_a_failed_milter(tmp, stage):
    """Each SMFIR_PROGRESS restarts the wait for the reply, so a milter
    that sends them without end would hold the session for ever: past
    1000 for one reply the milter has failed (default-action tempfail)."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={stage: [("p", b"")] * 1001 + [("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1" in out, out + err
    assert "too many SMFIR_PROGRESS" in err, err
    assert delivered(tmp) == []


def test_accept_at_connect_skips_the_milter(tmp):
    m = Milter(os.path.join(tmp, "m.sock"), script={"C": [("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
        assert "250 2.0.0" in out
        # before the milter closes: its thread may not have read the
        # QUIT yet when the session has ended
        assert quit_seen(m) == ["O", "C", "Q"]
    finally:
        m.close()


def test_rset_aborts(tmp):
    m = Milter(os.path.join(tmp, "m.sock"))
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRSET\r\n"
                           "QUIT\r\n")
        assert quit_seen(m) == ["O", "C", "H", "M", "A", "Q"]
    finally:
        m.close()


def quit_seen(m):
    wait_for(lambda: "Q" in m.cmds(), what="QUIT at the milter")
    return [c for c in m.cmds() if c != "D"]


def hdr(name, value):
    return name.encode() + b"\0" + value.encode() + b"\0"


def test_header_modifications(tmp):
    mods = [("h", hdr("X-Added", "one")),
            ("h", hdr("X-Lines", "a\nBcc: not a field")),
            ("i", struct.pack(">I", 0) + hdr("X-Top", "first")),
            ("m", struct.pack(">I", 1) + hdr("Subject", "changed\n\tfolded")),
            ("m", struct.pack(">I", 2) + hdr("X-Two", "")),
            ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    body = ("Subject: hi\r\nX-Two: a\r\nX-Two: b\r\nFrom: a@example.org\r\n"
            "\r\nhello\r\n")
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail(body))
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    head = msg.split("\n\n")[0].split("\n")
    # index 0: above our Received (Maildir delivery adds Return-Path and
    # Delivered-To above everything)
    assert head.index("X-Top: first") + 1 == \
        [i for i, h in enumerate(head) if h.startswith("Received: ")][0]
    assert "Subject: changed" in head and "\tfolded" in head
    assert "X-Two: a" in head and "X-Two: b" not in head
    assert head[-3:] == ["X-Added: one", "X-Lines: a", "\tBcc: not a field"]
    assert msg.endswith("\n\nhello\n")


def test_header_values_ending_in_a_line_end_stay_fields(tmp):
    """A value a milter ends with "\\n" (or "\\r\\n") once wrote an empty line:
    the fields below it became body text. Index 0 of a change is the
    first field of its name, as Sendmail and Postfix read it (it added a
    second field)."""
    mods = [("i", struct.pack(">I", 0) + hdr("X-Top", "first\n")),
            ("h", hdr("X-End", "last\r\n")),
            ("m", struct.pack(">I", 0) + hdr("Subject", "changed")),
            ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    head, body = msg.split("\n\n", 1)
    assert body == "hello\n", msg
    lines = head.split("\n")
    assert "X-Top: first" in lines and lines[-1] == "X-End: last", msg
    assert [l for l in lines if l.startswith("Subject:")] == ["Subject: changed"], msg


def test_many_header_fields_with_a_changing_milter_in_bounded_memory(tmp):
    """100 000 header fields (600 KB) and a milter that changes a header:
    the rewrite kept a copy of every field's name and searched it for
    each field (19.6 s and 14 MiB here); now it counts per change."""
    big = "Subject: many\r\n" + "A: b\r\n" * 100000 + "\r\nbody\r\n"
    mods = [("h", hdr("X-Added", "yes")),
            ("m", struct.pack(">I", 99999) + hdr("A", "changed")),
            ("a", b"")]
    # SMFIP_NOHDRS, SMFIP_NOBODY: the milter sees neither
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods},
               protocol=(1 << 5) | (1 << 4))
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        timef = os.path.join(tmp, "rss")
        e = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
                 TCPREMOTEIP="192.0.2.7")
        r = subprocess.run([tool("time"), "-f", "%M", "-o", timef, POSTMASTER,
                            "--config=" + cf], input=mail(big).encode(),
                           capture_output=True, env=e, timeout=120)
    finally:
        m.close()
    assert "250 2.0.0" in r.stdout.decode(), r.stdout + r.stderr
    [msg] = delivered(tmp)
    head = msg.split("\n\n")[0].split("\n")
    assert head.count("A: b") == 99999 and head[-1] == "X-Added: yes"
    assert head.index("A: changed") == len(head) - 3, head[-4:]
    rss_kib = int(open(timef).read().split()[-1])
    if not os.environ.get("POSTMASTER", "").count("build-san"):
        assert rss_kib < 8 * 1024, rss_kib


def test_replace_body_in_chunks(tmp):
    mods = [("b", b"new body line 1\r\n"), ("b", b"line 2\r"), ("b", b"\nend\r\n"),
            ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    assert msg.endswith("Subject: hi\nFrom: a@example.org\n\nnew body line 1\nline 2\nend\n")


def test_modification_not_negotiated_is_refused(tmp):
    # the milter may only add headers, and then changes the body
    m = Milter(os.path.join(tmp, "m.sock"), actions=1,
               script={"E": [("b", b"x\r\n"), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1" in out, out + err
    assert delivered(tmp) == []


@pytest.mark.parametrize("code", [b"Z", b"s", b"\0"])
def test_an_unknown_reply_at_the_end_of_the_message_is_named_so(tmp, code):
    """A reply the protocol does not have at the end of the message (or
    SMFIR_SKIP, which answers a body chunk) breaks the milter, and the log
    says what came: it once called it a modification not negotiated."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("raw", struct.pack(">I", 1) + code)]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1 Service unavailable - try again later" in out, out + err
    assert ("event=milter-failed milter=t reason=\"unexpected reply '%s' "
            "(0x%02x) at the end of the message\""
            % (chr(code[0]) if code[0] > 32 else "?", code[0])) in err, err
    assert "refused (not negotiated" not in err
    assert delivered(tmp) == []


@pytest.mark.parametrize("script,protocol", [
    # a reply too many to RCPT
    ({"R": [("c", b""), ("c", b"")]}, 0),
    # a reply to RCPT, which it said it would not answer (SMFIP_NR_RCPT)
    ({"R": [("c", b"")]}, 1 << 15),
])
def test_a_milter_a_reply_ahead_is_a_broken_milter(tmp, script, protocol):
    """A milter that sends a packet it was not asked for: the session once
    read it as the answer to its next command, and every answer after as
    one step late, so the milter's 550 at the end of the message was never
    read and the message was delivered. It is a broken milter now
    (default-action), and nothing it meant to refuse is delivered."""
    script = dict(script, E=[("y", b"550 5.7.1 spam\0")])
    m = Milter(os.path.join(tmp, "m.sock"), script=script, protocol=protocol)
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    # refused at DATA or at the first header field, whenever the packet
    # arrives: 451 4.7.1 (or 554 5.5.0 to this client, which does not
    # wait for DATA's reply)
    assert "250 2.0.0" not in out, out + err
    assert ('event=milter-failed milter=t reason="the milter sent a packet '
            'it was not asked for"') in err, err
    assert delivered(tmp) == []


def test_recipients_and_sender_changed(tmp):
    mods = [("-", b"<joe@example.net>\0"), ("+", b"<ann@example.net>\0"),
            ("e", b"<changed@example.org>\0"), ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0 Ok: queued as" in out, out + err
    wait_for(lambda: delivered(tmp, "Maildir2"), what="delivery to ann")
    assert delivered(tmp) == []
    [msg] = delivered(tmp, "Maildir2")
    assert msg.startswith("Return-Path: <changed@example.org>\n"), msg
    assert "action=add-rcpt" in err and "action=delete-rcpt" in err


class SlowBody(Milter):
    """Answers the end of the message with n SMFIR_REPLBODY chunks, gap
    seconds apart, then accept."""
    n, chunk, gap = 1, b"", 0

    def answer(self, c, cmd, data):
        if cmd != "E":
            return Milter.answer(self, c, cmd, data)
        for _ in range(self.n):
            c.sendall(packet("b", self.chunk))
            time.sleep(self.gap)
        c.sendall(packet("a"))


@pytest.mark.parametrize("n,chunk,gap", [
    # each chunk within content-timeout, all of them well past it
    (8, b"y" * 100 + b"\r\n", 0.5),
    # a body twice max-message-size, sent at once
    (20, b"z" * 998 + b"\r\n", 0),
], ids=["slow", "large"])
def test_a_replaced_body_is_bounded_in_time_and_size(tmp, n, chunk, gap):
    """A milter's replaced body gets one content-timeout in all and at
    most max-message-size: it once delivered whatever the milter sent for
    as long as it kept sending (a 60 MB message on a listener of 10 000
    bytes, or 25 s with content-timeout = 2s)."""
    m = SlowBody(os.path.join(tmp, "m.sock"))
    m.n, m.chunk, m.gap = n, chunk, gap
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "content-timeout = 2s")],
                    "max-message-size = 10000")
        t0 = time.monotonic()
        out, err = session(cf, mail())
        elapsed = time.monotonic() - t0
    finally:
        m.close()
    assert "451 4.7.1" in out, out + err
    assert delivered(tmp) == []
    assert elapsed < 3.5, elapsed
    failed = [l for l in err.split("\n") if "event=milter-failed" in l]
    assert failed and ("timeout" if gap else "replaced body larger than "
                       "max-message-size") in failed[0], err


@pytest.mark.parametrize("body,ok", [
    # 8 000 bytes sent, 12 000 with CRLF line ends
    (b"x\n" * 4000, False),
    # 9 990 bytes, and the header of 36 takes it past 10 000
    (b"x\r\n" * 3330, False),
    # header and body 9 936 bytes
    (b"x\r\n" * 3300, True),
    (b"x\n" * 3300, True),
], ids=["lf", "header", "crlf-fits", "lf-fits"])
def test_a_replaced_body_counts_as_the_clients_data(tmp, body, ok):
    """The replaced body's bound counts as max-message-size does for the
    client's data: line ends as CRLF, header and body; a body of bare LF
    lines got twice the allowance, and the header none."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("b", body), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")],
                    "max-message-size = 10000")
        out, err = session(cf, mail())
    finally:
        m.close()
    if ok:
        assert "250 2.0.0" in out, out + err
        [msg] = delivered(tmp)
        assert msg.split("\n\n", 1)[1] == "x\n" * 3300
    else:
        assert "451 4.7.1" in out, out + err
        assert delivered(tmp) == []
        assert "replaced body larger than max-message-size" in err, err


def test_replace_body_of_10_mb_in_bounded_memory(tmp):
    big = "Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 10240
    # the milter replaces the body with 160 chunks of 64 KiB
    chunk = (b"y" * 1022 + b"\r\n") * 64
    mods = [("b", chunk)] * 160 + [("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")],
                    "max-message-size = 20M")
        timef = os.path.join(tmp, "rss")
        e = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
                 TCPREMOTEIP="192.0.2.7")
        r = subprocess.run([tool("time"), "-f", "%M", "-o", timef, POSTMASTER,
                            "--config=" + cf], input=mail(big).encode(),
                           capture_output=True, env=e, timeout=120)
    finally:
        m.close()
    out = r.stdout.decode()
    assert "250 2.0.0" in out, out + r.stderr.decode()
    assert max(m.chunks) <= 65535 and len(m.chunks) >= 150
    assert len(m.body) == 1000 * 10240
    [msg] = delivered(tmp)
    assert msg.count("y" * 1022 + "\n") == 64 * 160
    rss_kib = int(open(timef).read().split()[-1])
    if not os.environ.get("POSTMASTER", "").count("build-san"):
        assert rss_kib < 8 * 1024, rss_kib


@pytest.mark.parametrize("action,expect", [
    ("tempfail", "451 4.7.1 Service unavailable - try again later"),
    ("reject", "550 5.7.1 Service unavailable"),
    ("accept", "250 2.0.0"),
])
def test_milter_down(tmp, action, expect):
    cf = config(tmp, [("t", "unix:%s/nothing.sock" % tmp,
                       "default-action = %s" % action)])
    out, err = session(cf, mail())
    assert expect in out, out + err
    assert "event=milter-failed" in err
    assert len(delivered(tmp)) == (1 if action == "accept" else 0)


@pytest.mark.parametrize("action,expect", [
    ("tempfail", "451 4.7.1 Service unavailable - try again later"),
    ("reject", "550 5.7.1 Service unavailable"),
    ("accept", "250 2.0.0"),
])
def test_milter_hanging(tmp, action, expect):
    m = Milter(os.path.join(tmp, "m.sock"), hang=True)
    try:
        cf = config(tmp, [("t", "unix:" + m.path,
                           "default-action = %s\ncommand-timeout = 1s\n"
                           "connect-timeout = 1s" % action)])
        t0 = time.time()
        out, err = session(cf, mail())
    finally:
        m.close()
    assert expect in out, out + err
    assert "timeout" in err
    assert time.time() - t0 < 10
    assert len(delivered(tmp)) == (1 if action == "accept" else 0)


def test_two_milters_in_order(tmp):
    a = Milter(os.path.join(tmp, "a.sock"),
               script={"E": [("h", hdr("X-A", "1")), ("a", b"")]})
    b = Milter(os.path.join(tmp, "b.sock"),
               script={"E": [("h", hdr("X-B", "2")), ("a", b"")]})
    try:
        cf = config(tmp, [("a", "unix:" + a.path, ""), ("b", "unix:" + b.path, "")])
        out, err = session(cf, mail())
    finally:
        a.close()
        b.close()
    assert "250 2.0.0" in out, out + err
    # the second milter sees the first one's header
    assert ["X-A", "1"] in [e[1] for e in b.events if e[0] == "L"]
    [msg] = delivered(tmp)
    assert "X-A: 1\nX-B: 2\n" in msg


def syscalls(cf, tmp):
    trace = os.path.join(tmp, "strace")
    r = subprocess.run([tool("strace"), "-f", "-o", trace, POSTMASTER,
                        "--config=" + cf], input=mail().encode(),
                       capture_output=True, timeout=60)
    assert b"250 2.0.0" in r.stdout
    calls = [l.split("(")[0].split()[-1] for l in open(trace) if "(" in l]
    return calls, open(trace).read()


def test_no_milter_costs_nothing(tmp):
    """A [milter] section that the [smtpd] does not name costs a session
    no syscall: the same calls as without it."""
    cf = config(tmp, [("t", "unix:%s/m.sock" % tmp, "")])
    text = open(cf).read()
    open(cf, "w").write(text.replace("milters = t\n", ""))
    syscalls(cf, tmp)  # the Maildir's directories are made once, here
    with_section, trace = syscalls(cf, tmp)
    assert "m.sock" not in trace
    open(cf, "w").write(text.replace("milters = t\n", "").replace(
        '[milter "t"]\naddress = unix:%s/m.sock\n' % tmp, ""))
    without, _ = syscalls(cf, tmp)
    # the same kinds of calls, and as many sockets and connections (how
    # many reads a pipe takes varies from run to run)
    if not SANITIZED:  # the sanitizer's own threads vary
        assert set(with_section) == set(without)
    for call in ("socket", "connect", "sendto", "recvfrom", "poll"):
        assert with_section.count(call) == without.count(call), call


def test_check_validates_keys(tmp):
    cf = os.path.join(tmp, "bad.cf")
    with open(cf, "w") as f:
        f.write('[milter "x"]\naddress = tcp:1.2.3.4\ndefault-action = maybe\n'
                'command-timeout = soon\n[smtpd "mx"]\nmilters = x y\n')
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 78
    assert "bad.cf:2:11: expected unix:/path or inet:ADDRESS:PORT" in r.stderr
    assert "bad.cf:3:18: expected tempfail, accept or reject" in r.stderr
    assert "bad.cf:4:19: expected a duration" in r.stderr
    assert "bad.cf:6:13: expected the name of a [milter]" in r.stderr


def test_quarantine_holds_until_release(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("q", b"looks like a virus\0"), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0 Ok: queued as" in out, out + err
    qid = out.split("queued as ")[1].split()[0]
    assert "event=quarantine" in err and "looks like a virus" in err

    def pm(*args):
        r = subprocess.run([POSTMASTER, "--config=" + cf] + list(args),
                           capture_output=True, text=True, timeout=60)
        no_sanitizer_report(r.stderr, " ".join(args))
        return r
    q = pm("--queue")
    assert "held: quarantined by a milter: looks like a virus" in q.stdout, q.stdout
    assert pm("--flush", "--now").returncode == 0
    assert delivered(tmp) == []
    # asked for by its id, a held message says so (it once did nothing
    # and exited 0)
    one = pm("--flush=" + qid)
    assert one.returncode == 69 and "is held" in one.stderr and \
        "--release=" + qid in one.stderr, one.stderr
    assert delivered(tmp) == []
    r = pm("--release=" + qid)
    assert r.returncode == 0 and "%s: released" % qid in r.stdout, r.stdout + r.stderr
    assert "held" not in pm("--queue").stdout
    again = pm("--release=" + qid)
    assert again.returncode != 0 and "not held" in again.stderr
    # an id that names no message, or a path: refused, nothing touched
    for bad, status in (("0000000000000000", 69), ("../etc/passwd", 64)):
        r = pm("--release=" + bad)
        assert r.returncode == status and r.stderr.startswith("postmaster: "), \
            r.stdout + r.stderr
    assert pm("--flush").returncode == 0
    assert len(delivered(tmp)) == 1


def test_a_milter_that_breaks_after_its_quarantine_changes_nothing(tmp):
    """A milter that asks for quarantine and then breaks (an unknown
    reply) with default-action = accept: the message goes on as if the
    milter were not there, not held (the quarantine once survived)."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("q", b"suspicious\0"), ("Z", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "default-action = accept")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    assert "event=quarantine" not in err, err
    assert len(delivered(tmp)) == 1


def test_quarantine_needs_the_action(tmp):
    m = Milter(os.path.join(tmp, "m.sock"), actions=0x1ff & ~0x20,
               script={"E": [("q", b"x\0"), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1" in out, out + err


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_inet_milter(tmp, address):
    port = free_port()
    m = Milter(("::1" if address == "::1" else "127.0.0.1", port),
               script={"R": [("y", b"550 5.7.1 Not over TCP either\0")]})
    host = "[::1]" if address == "::1" else address
    try:
        cf = config(tmp, [("t", "inet:%s:%d" % (host, port), "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "550 5.7.1 Not over TCP either" in out, out + err


def test_lmtp_end_of_message_refusal_for_each_recipient(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("y", b"554 5.7.1 Not for anyone\0")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        wire = mail(rcpts=("joe@example.net", "ann@example.net")).replace(
            "EHLO", "LHLO")
        out, err = session(cf, wire)
    finally:
        m.close()
    assert out.count("554 5.7.1 Not for anyone") == 2, out + err
    assert delivered(tmp) == [] and delivered(tmp, "Maildir2") == []


def test_bdat_message_with_a_header_added(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-Chunked", "yes")), ("a", b"")]})
    body = b"Subject: chunks\r\n\r\nfirst\r\nsecond\r\n"
    wire = ("EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<joe@example.net>\r\n"
            "BDAT %d LAST\r\n" % len(body)).encode() + body + b"QUIT\r\n"
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        e = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
                 TCPREMOTEIP="192.0.2.7")
        r = subprocess.run([POSTMASTER, "--config=" + cf], input=wire,
                           capture_output=True, env=e, timeout=60)
    finally:
        m.close()
    assert b"250 2.0.0" in r.stdout, r.stdout + r.stderr
    assert bytes(m.body) == b"first\r\nsecond\r\n"
    [msg] = delivered(tmp)
    assert "X-Chunked: yes\n" in msg and msg.endswith("\n\nfirst\nsecond\n")


def test_tls_macros_at_helo(tmp):
    import smtplib
    import ssl
    crt, key = make_cert(tmp, "mail.example.net")
    m = Milter(os.path.join(tmp, "m.sock"))
    port = free_port()
    cf = config(tmp, [("t", "unix:" + m.path, "")],
                "tls = starttls\ntls-certificate = %s\ntls-key = %s" % (crt, key),
                listen="127.0.0.1:%d" % port)
    srv = Tcpserver([POSTMASTER, "--config=" + cf], os.path.join(tmp, "log"), port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.starttls(context=ssl._create_unverified_context())
            c.sendmail("a@example.org", ["joe@example.net"],
                       b"Subject: tls\r\n\r\nhi\r\n")
        wait_for(lambda: "Q" in m.cmds(), what="QUIT at the milter")
    finally:
        srv.stop()
        m.close()
    helo = [e[1][1] for e in m.events if e[0] == "D" and e[1][0] == "H"]
    # the HELO before STARTTLS has no TLS; the one after it has
    assert helo[-1]["{tls_version}"].startswith("TLS"), helo
    assert helo[-1]["{cipher}"], helo
    assert m.macro("{client_addr}") == "127.0.0.1"


def test_lmtp_recipients_changed_keep_one_reply_each(tmp):
    """LMTP answers each recipient the client gave, once: a deleted one
    gets 250 and nothing, an added one no reply of its own."""
    mods = [("-", b"<joe@example.net>\0"), ("+", b"<ann@example.net>\0"),
            ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        wire = mail().replace("EHLO", "LHLO")
        out, err = session(cf, wire)
    finally:
        m.close()
    after_data = out.split("354 ")[1].split("\r\n")[1:]
    assert after_data[0] == "250 2.0.0 Ok: discarded", out
    assert after_data[1].startswith("221 "), out
    assert "reason=\"deleted by a milter\"" in err
    wait_for(lambda: delivered(tmp, "Maildir2"), what="delivery to ann")
    assert delivered(tmp) == []


@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_a_milter_that_breaks_half_way_changes_nothing(tmp, action):
    mods = [("h", hdr("X-Half", "1")), ("b", b"new body\r\n"),
            ("e", b"<other@example.org>\0"), ("close", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "default-action = " + action)])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "event=milter-failed" in err
    if action == "tempfail":
        assert "451 4.7.1" in out, out + err
        assert delivered(tmp) == []
    else:
        assert "250 2.0.0" in out, out + err
        [msg] = delivered(tmp)
        assert "X-Half" not in msg and msg.endswith("\n\nhello\n")
        assert msg.startswith("Return-Path: <a@example.org>")


def test_an_oversized_packet_is_refused_unread(tmp):
    """A milter cannot make a session allocate what it claims: a packet
    longer than 1 MiB breaks the protocol."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"R": [("raw", struct.pack(">I", 1 << 30) + b"c")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1" in out, out + err
    assert "bad packet length 1073741824" in err


def test_connect_timeout_covers_the_negotiation(tmp):
    m = Milter(os.path.join(tmp, "m.sock"), hang=True)
    try:
        cf = config(tmp, [("t", "unix:" + m.path,
                           "connect-timeout = 1s\ncommand-timeout = 60s")])
        t0 = time.time()
        out, err = session(cf, mail())
    finally:
        m.close()
    assert time.time() - t0 < 10
    assert "451 4.7.1" in out and "timeout" in err, out + err


@pytest.mark.parametrize("stage,keys", [
    ("R", "command-timeout = 1s"),
    ("E", "content-timeout = 1s"),
])
def test_a_milter_hanging_later_times_out(tmp, stage, keys):
    m = Milter(os.path.join(tmp, "m.sock"), hang=stage)
    try:
        cf = config(tmp, [("t", "unix:" + m.path, keys)])
        t0 = time.time()
        out, err = session(cf, mail())
    finally:
        m.close()
    assert time.time() - t0 < 10
    assert "451 4.7.1 Service unavailable" in out, out + err
    assert "timeout while waiting for the milter" in err
    assert delivered(tmp) == []


def test_a_bad_header_name_breaks_the_protocol(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-Bad: injected", "v")), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "451 4.7.1" in out and "modification 'h' refused" in err, out + err
    assert delivered(tmp) == []


# ------------------------------------------------------------------ #
# Milters and the live proxy: the data is held until their verdict    #

def proxy_config(tmp, milter_path, port):
    """A listener whose mail for @relay.example goes live to the aiosmtpd
    on port, through the test milter."""
    cf = os.path.join(tmp, "postmaster.cf")
    with open(cf, "w") as f:
        f.write("[core]\nhostname = mail.example.net\nlogger = stderr\n"
                "spool-directory = %s/spool\npid-file = %s/flush.pid\n"
                % (tmp, tmp))
        if ROOT:
            f.write("user-id = nobody\n")
        f.write('[milter "t"]\naddress = unix:%s\n' % milter_path)
        f.write('[smtpd "mx"]\nname = mail.example.net\nlisten-port = 25\n'
                'milters = t\nrelay-clients = 192.0.2.0/24\n'
                '[route]\n@relay.example [127.0.0.1]:%d\n'
                'ann@example.net %s/Maildir2/\n' % (port, tmp))
    return cf


@pytest.fixture
def target():
    from test_onward import Aiosmtpd
    a = Aiosmtpd()
    yield a
    a.stop()


def test_proxy_sends_the_message_as_the_milter_left_it(tmp, target):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-Milter", "signed")), ("a", b"")]})
    try:
        cf = proxy_config(tmp, m.path, target.port)
        out, err = session(cf, mail(rcpts=("bob@relay.example",)))
    finally:
        m.close()
    # the target's replies are the client's: the proxy carried it
    assert "250 2.1.5 127.0.0.1[127.0.0.1] said: Ok" in out, out + err
    assert "said: Ok: stored" in out, out + err
    assert "via=proxy" in err and "status=sent" in err, err
    [msg] = target.handler.messages
    head = msg["content"].decode().split("\r\n\r\n")[0]
    assert "X-Milter: signed" in head.split("\r\n"), head
    # the milter saw the whole message before the target got any of it
    assert [c for c, _ in m.events if c in "EM"][-1] == "E"
    assert os.listdir(os.path.join(tmp, "spool")) == []


def test_proxy_held_message_refused_before_its_end(tmp):
    """The milter accepts; the held message goes onward; the target
    refuses it after 64 KiB and closes (test_proxy.py's early refusal):
    the client gets the target's 554, not a takeover's 250 (and a
    spooled message that the target refuses on every try)."""
    from test_proxy import ScriptedPeer
    peer = ScriptedPeer("early-554")
    m = Milter(os.path.join(tmp, "m.sock"))
    try:
        cf = proxy_config(tmp, m.path, peer.port)
        line = "z" * 76 + "\r\n"
        body = "Subject: big\r\nFrom: a@example.org\r\n\r\n" + line * 80000
        out, err = session(cf, mail(body, rcpts=("bob@relay.example",)))
    finally:
        m.close()
        peer.stop()
    assert "554 5.7.1 127.0.0.1[127.0.0.1] said: not this one" in out, out + err
    assert "event=takeover" not in err and "queued as" not in out, out + err
    assert peer.partial and peer.accepted == []
    assert os.listdir(os.path.join(tmp, "spool")) == []


def test_proxy_milter_refusal_at_end_of_data_sends_no_final_dot(tmp, target):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("y", b"550 5.7.1 spam, go away\0")]})
    try:
        cf = proxy_config(tmp, m.path, target.port)
        out, err = session(cf, mail(rcpts=("bob@relay.example",)))
    finally:
        m.close()
    assert "550 5.7.1 spam, go away" in out, out + err
    # the target accepted the recipient and never got a message
    assert target.handler.rcpts == [("bob@relay.example", "250 2.1.5 Ok")]
    assert target.handler.messages == []
    assert os.listdir(os.path.join(tmp, "spool")) == []


def test_proxy_milter_changing_recipients_hands_over_to_the_spool(tmp, target):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("+", b"<ann@example.net>\0"), ("a", b"")]})
    try:
        cf = proxy_config(tmp, m.path, target.port)
        out, err = session(cf, mail(rcpts=("bob@relay.example",)))
    finally:
        m.close()
    # the spool routes the new envelope: both recipients get the message
    assert "250 2.0.0 Ok: queued as" in out, out + err
    wait_for(lambda: delivered(tmp, "Maildir2"), what="delivery to ann")
    wait_for(lambda: target.handler.messages, what="delivery to bob")
    assert target.handler.delivered_to() == ["bob@relay.example"]


def prepending_policy(tmp):
    """A policy service at tmp/p.sock that PREPENDs X-Policy: with our
    Received, two fields of ours on top."""
    import socket
    import threading
    ps = socket.socket(socket.AF_UNIX)
    ps.bind(os.path.join(tmp, "p.sock"))
    os.chmod(os.path.join(tmp, "p.sock"), 0o666)
    ps.listen(4)

    def answer():
        c, _ = ps.accept()
        with c, c.makefile("rwb") as f:
            for line in f:
                if line == b"\n":
                    f.write(b"action=PREPEND X-Policy: greylisted 0s\n\n")
                    f.flush()
    threading.Thread(target=answer, daemon=True).start()
    return ps


def test_milters_see_the_client_header_not_the_fields_we_put_on_top(tmp):
    """postmaster(8): the milters see the message as the client sent it,
    not the fields postmaster puts on top (a policy service's PREPEND,
    Received-SPF, Received), which are delivered above the client's."""
    ps = prepending_policy(tmp)
    m = Milter(os.path.join(tmp, "m.sock"))
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")],
                    "policy-service = unix:%s/p.sock" % tmp)
        out, err = session(cf, mail())
    finally:
        m.close()
        ps.close()
    assert "250 2.0.0" in out, out + err
    assert [e[1] for e in m.events if e[0] == "L"] == [
        ["Subject", "hi"], ["From", "a@example.org"]]
    [msg] = delivered(tmp)
    assert msg.index("X-Policy: greylisted 0s\n") < msg.index("Received: ") \
        < msg.index("Subject: hi\n"), msg

def test_blanks_before_the_colon_keep_a_field(tmp):
    """'From : x' (RFC 5322 4.5's obsolete syntax, which readers must
    accept) ended the header for the milters: they saw it and every later
    field as body, and a milter that added a field moved them into the
    delivered body."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-Spam", "no")), ("a", b"")]})
    body = ("Subject: hi\r\nFrom : ceo@victim.example\r\n"
            "To: joe@example.net\r\n\r\nhello\r\n")
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail(body))
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    assert [e[1] for e in m.events if e[0] == "L"] == [
        ["Subject", "hi"], ["From", "ceo@victim.example"],
        ["To", "joe@example.net"]]
    assert bytes(m.body) == b"hello\r\n"
    [msg] = delivered(tmp)
    head, rest = msg.split("\n\n", 1)
    assert head.split("\n")[-3:] == ["From : ceo@victim.example",
                                     "To: joe@example.net", "X-Spam: no"]
    assert rest == "hello\n", msg


def test_a_client_header_led_by_a_folded_line_stays_a_header(tmp):
    """A client header whose first line is blank-led (' folded'): a milter
    that added a field put a blank line under it, and the client's
    Subject and From were delivered as body.  The message delivered is the
    one delivered without milters plus the added field, and the milter
    sees the client's fields as fields."""
    data = " folded\r\nSubject: hi\r\nFrom: a@example.org\r\n\r\nhello\r\n"
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-Spam", "no")), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail(data))
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    assert [e[1] for e in m.events if e[0] == "L"] == [
        ["Subject", "hi"], ["From", "a@example.org"]]
    assert bytes(m.body) == b"hello\r\n"
    [msg] = delivered(tmp)
    head, rest = msg.split("\n\n", 1)
    assert "\nReceived: from client.example" in head, msg
    assert head.split("\n")[-4:] == [" folded", "Subject: hi",
                                     "From: a@example.org", "X-Spam: no"], msg
    assert rest == "hello\n", msg


def test_a_field_inserted_above_ours_leaves_the_next_milter_a_header(tmp):
    """The first milter inserts at index 0, above our Received (as
    Debian's OpenDKIM does with DKIM-Signature): the second milter got no
    header at all and a body that began inside our Received field; it
    sees the inserted field and the client's, and its changes apply."""
    a = Milter(os.path.join(tmp, "a.sock"),
               script={"E": [("i", struct.pack(">I", 0) + hdr("X-Top", "x")),
                             ("a", b"")]})
    b = Milter(os.path.join(tmp, "b.sock"),
               script={"E": [("m", struct.pack(">I", 1) + hdr("Subject", "new")),
                             ("i", struct.pack(">I", 1) + hdr("X-B", "b")),
                             ("a", b"")]})
    c = Milter(os.path.join(tmp, "c.sock"))
    try:
        cf = config(tmp, [("a", "unix:" + a.path, ""),
                          ("b", "unix:" + b.path, ""),
                          ("c", "unix:" + c.path, "")])
        out, err = session(cf, mail())
    finally:
        a.close()
        b.close()
        c.close()
    assert "250 2.0.0" in out, out + err
    assert [e[1] for e in b.events if e[0] == "L"] == [
        ["X-Top", "x"], ["Subject", "hi"], ["From", "a@example.org"]]
    assert bytes(b.body) == b"hello\r\n"
    assert [e[1] for e in c.events if e[0] == "L"] == [
        ["X-Top", "x"], ["X-B", "b"], ["Subject", "new"],
        ["From", "a@example.org"]]
    assert bytes(c.body) == b"hello\r\n"
    [msg] = delivered(tmp)
    head, body = msg.split("\n\n", 1)
    fields = [l for l in head.split("\n") if not l.startswith("\t")][2:]
    assert fields[0:2] == ["X-Top: x", "X-B: b"], msg
    assert fields[2].startswith("Received: from client.example"), msg
    assert fields[3:] == ["Subject: new", "From: a@example.org"], msg
    assert body == "hello\n"


def test_a_field_inserted_between_ours_is_shown_to_the_next_milter(tmp):
    """With two fields of ours on top (a policy PREPEND and Received), a
    milter inserts at index 1, between them, as OpenDMARC does with its
    Authentication-Results: the next milter was not shown the field and
    its change of it became a second field.  It sees the field and
    changes it; ours stay hidden."""
    ps = prepending_policy(tmp)
    a = Milter(os.path.join(tmp, "a.sock"),
               script={"E": [("i", struct.pack(">I", 1) + hdr("X-Mid", "m")),
                             ("a", b"")]})
    b = Milter(os.path.join(tmp, "b.sock"),
               script={"E": [("m", struct.pack(">I", 1) + hdr("X-Mid", "changed")),
                             ("a", b"")]})
    c = Milter(os.path.join(tmp, "c.sock"))
    try:
        cf = config(tmp, [("a", "unix:" + a.path, ""),
                          ("b", "unix:" + b.path, ""),
                          ("c", "unix:" + c.path, "")],
                    "policy-service = unix:%s/p.sock" % tmp)
        out, err = session(cf, mail())
    finally:
        a.close()
        b.close()
        c.close()
        ps.close()
    assert "250 2.0.0" in out, out + err
    assert [e[1] for e in b.events if e[0] == "L"] == [
        ["X-Mid", "m"], ["Subject", "hi"], ["From", "a@example.org"]]
    assert [e[1] for e in c.events if e[0] == "L"] == [
        ["X-Mid", "changed"], ["Subject", "hi"], ["From", "a@example.org"]]
    [msg] = delivered(tmp)
    head = msg.split("\n\n", 1)[0]
    fields = [l for l in head.split("\n") if not l.startswith("\t")][2:]
    assert fields[0:2] == ["X-Policy: greylisted 0s", "X-Mid: changed"], msg
    assert fields[2].startswith("Received: from client.example"), msg
    assert fields[3:] == ["Subject: hi", "From: a@example.org"], msg


def test_inserts_apply_one_after_another(tmp):
    """Each SMFIR_INSHEADER goes before what is at its index once the
    earlier ones are in, as Sendmail's smfi_insheader() and Postfix apply
    them (OpenARC's three ARC fields, two DKIM signatures): two inserts at
    index 0 came out in reverse order, an index that counts an earlier
    insert landed further down, and added fields went below every
    insert past the end."""
    mods = [("i", struct.pack(">I", 0) + hdr("X-A", "first")),
            ("i", struct.pack(">I", 0) + hdr("X-B", "second")),
            ("i", struct.pack(">I", 3) + hdr("X-C", "third")),
            ("h", hdr("X-Added", "last")),
            ("i", struct.pack(">I", 99) + hdr("X-D", "end")),
            ("i", struct.pack(">I", 7) + hdr("X-E", "above X-D")),
            ("i", struct.pack(">I", 6) + hdr("X-F", "above X-Added")),
            ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    head = [l for l in msg.split("\n\n")[0].split("\n")
            if not l.startswith("\t")][2:]
    assert head[2].startswith("Received: from client.example"), head
    assert head[:2] + head[3:] == [
        "X-B: second", "X-A: first", "X-C: third", "Subject: hi",
        "From: a@example.org", "X-F: above X-Added", "X-Added: last",
        "X-E: above X-D", "X-D: end"], head


def test_a_change_that_adds_keeps_its_place_among_additions(tmp):
    """A change of a field that is not there adds it, when it is applied
    (Sendmail, Postfix): a CHGHEADER X-New then an ADDHEADER X-A came out
    as X-A above X-New; and an insert's index counts the field it
    added."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("m", struct.pack(">I", 1) + hdr("X-New", "first")),
                             ("h", hdr("X-A", "second")),
                             ("m", struct.pack(">I", 1) + hdr("Subject", "new")),
                             ("i", struct.pack(">I", 4) + hdr("X-I", "third")),
                             ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    head = msg.split("\n\n", 1)[0].split("\n")
    assert head[-5:] == ["Subject: new", "From: a@example.org",
                         "X-New: first", "X-I: third", "X-A: second"], msg


def bare_cr(data):
    return data.replace(b"\r\n", b"").count(b"\r")


def test_a_milters_bare_cr_becomes_a_space(tmp, target):
    """A bare CR in a milter's header value or replaced body went to the
    next hop as it was (a client's bare CR becomes a space: bare-newline),
    so a milter copying client text into a field handed the client a way
    past that rule: "\\r.\\r" on the onward wire."""
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-A", "one\r.\rtwo")),
                             ("b", b"x\r.\ry\r\n"), ("b", b"end\r"),
                             ("a", b"")]})
    try:
        cf = proxy_config(tmp, m.path, target.port)
        out, err = session(cf, mail("Subject: a\rb\r\n\r\nhello\r\n",
                                    rcpts=("bob@relay.example",)))
    finally:
        m.close()
    assert "said: Ok: stored" in out, out + err
    [msg] = target.handler.messages
    content = msg["content"]
    assert bare_cr(content) == 0, content
    head, body = content.split(b"\r\n\r\n", 1)
    assert b"Subject: a b" in head.split(b"\r\n"), head
    assert b"X-A: one . two" in head.split(b"\r\n"), head
    assert body.startswith(b"x . y\r\nend "), body


def test_a_milters_bare_cr_is_not_stored(tmp):
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("h", hdr("X-A", "one\rBcc: evil@example.org")),
                             ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0" in out, out + err
    [msg] = delivered(tmp)
    assert "\r" not in msg, repr(msg)
    assert "\nX-A: one Bcc: evil@example.org\n\nhello\n" in msg, msg


@pytest.mark.parametrize("hello", ["EHLO", "LHLO"])
@pytest.mark.parametrize("added", ["joe@example.net", "JOE@example.net"])
def test_an_added_recipient_given_already_is_delivered_once(tmp, hello, added):
    """A milter's ADDRCPT of an address the client gave: one copy. Over
    LMTP the client's RCPT went by the direct run and the added one by the
    spool, two copies; the client's now goes with it (its reply is the
    spool's 'queued')."""
    mods = [("+", b"<%s>\0" % added.encode()), ("a", b"")]
    m = Milter(os.path.join(tmp, "m.sock"), script={"E": mods})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail().replace("EHLO", hello))
    finally:
        m.close()
    assert "\r\n250 2.0.0 " in out, out + err
    spool = os.path.join(tmp, "spool")
    wait_for(lambda: delivered(tmp) and not [
        f for f in os.listdir(spool) if not f.startswith(".")],
        what="the spooled copy")
    assert len(delivered(tmp)) == 1, (out, err)


def test_a_quarantine_reason_reaches_the_queue_listing_escaped(tmp):
    """The reason a milter gives for a quarantine is printed by --queue
    and mailq on an administrator's terminal: escape sequences (a title,
    a cleared screen) and a newline that forged a queue entry came out
    raw. It is escaped as a peer's reply text is."""
    reason = (b"virus\x1b]0;pwned\x07\x1b[2J\rX\n\n00000000000000000A"
              b"       1     0s  <boss@example.net>\0")
    m = Milter(os.path.join(tmp, "m.sock"),
               script={"E": [("q", reason), ("a", b"")]})
    try:
        cf = config(tmp, [("t", "unix:" + m.path, "")])
        out, err = session(cf, mail())
    finally:
        m.close()
    assert "250 2.0.0 Ok: queued as" in out, out + err
    q = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"],
                       capture_output=True)
    assert q.returncode == 0, q.stderr
    assert b"virus\\x1B]0;pwned" in q.stdout, q.stdout
    assert not any(c in q.stdout for c in (b"\x1b", b"\x07", b"\r")), q.stdout
    assert b"\n00000000000000000A" not in q.stdout, q.stdout
