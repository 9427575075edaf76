"""The live proxy (SPEC 7 path 2, issue 11): when the first recipient of a
transaction resolves to one onward destination, the session connects
there at that RCPT and gives the client the target's own replies; the
data goes on as it arrives; when the onward connection fails for
non-protocol reasons the session takes the message over into the spool.

The peers are real programs started by each test on loopback addresses
or unix sockets (the fixtures of test_onward.py: Dovecot's LMTP server,
a private Postfix, aiosmtpd, Postfix's smtp-sink) and a small scripted
server in this file that fails on purpose (closes during the data, never
answers, ...). A session runs on a pipe; the proxy is on by default, so
no configuration here says `proxy = yes`.

What every test checks besides its replies: nothing bounces later, the
spool is empty once the client has its answer (unless the message was
taken over, when `--queue` lists it at the moment of the 250), and each
accepted message arrives once, whole.

1. In-session replies from real targets (Dovecot, Postfix with
   relay_recipient_maps, aiosmtpd, smtp-sink's injected failures, an LMTP
   target's per-recipient verdicts), BDAT, DSN parameters, what ends the
   proxy, what never reaches the target, and no fsync on this path.
2. Takeover: refused, silent, closing and killed targets.
3. (test_spool.py: the kill -9 storm while proxying.)
4. (test_proxy_rtt.py: round trips behind a 20 ms delay line, and under
   netem where the kernel has it.)
5. Conversion and refusal: SMTPUTF8, 8-bit and binary content.
"""
import email
import email.policy
import os
import re
import signal
import socket
import struct
import threading
import time

import pytest
from pmtest import ROOT, ThreadedServer, free_port, tool, wait_for
from test_onward import (SENDER, BINARY_PAYLOAD, Dovecot, Session, SmtpSink,
                         aiosmtpd_peer, check_content, converted, eightbit_message,
                         flush, maildir_files, message, peers, postfix, queue,
                         queue_targets, status_lines, tmp, write_cf, Sent, bounces,
                         report)

assert peers and postfix and tmp  # fixtures, imported for the tests below

SAID = "127.0.0.1[127.0.0.1] said: "
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$")


# ------------------------------------------------------------------ #
# Configurations and dialogues                                       #


def proxy_cf(tmp, addresses, protocol=None, relay="", domain="example.net", core=""):
    """Mail for @domain goes to [relay "next"] at addresses; relay adds
    keys to that section."""
    text = '[relay "next"]\n' + "".join("address = %s\n" % a for a in addresses)
    if protocol:
        text += "protocol = %s\n" % protocol
    text += relay + "[route]\n@%s next\n" % domain
    return write_cf(tmp, text, core=core, smtpd="")


def greeted(cf, hello="EHLO client.example"):
    s = Session(cf)
    assert s.reply().startswith("220 ")
    s.cmd(hello, "250")
    return s


def quit_and_close(s):
    s.cmd("QUIT", "221 ")
    return s.close()


def stuffed(msg):
    """msg (CRLF lines) dot-stuffed and ended with the final dot."""
    lines = msg.split(b"\r\n")
    assert lines[-1] == b""
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                    for l in lines[:-1]) + b".\r\n"


def big_message(subject, size):
    """A text message of about size octets whose lines name their number."""
    head = message(subject)
    lines = [b"%08d " % i + b"z" * 68 + b"\r\n" for i in range(size // 78 + 1)]
    return head + b"".join(lines)


def intact(content, msg):
    """content (CRLF lines) is msg as the client sent it, below our
    Received header."""
    assert content.endswith(msg), "truncated or altered: %d octets, ends %r" % (
        len(content), content[-200:])
    assert content[:-len(msg)].startswith(b"Received: from client.example "), \
        content[:300]


def nothing_later(cf, tmp):
    """Nothing left in the spool, and a flush finds nothing to bounce."""
    assert queue(cf) == "the spool is empty\n"
    flush(cf)
    assert maildir_files(os.path.join(tmp, "bounces")) == [], "a bounce came later"


def proxied(log, rcpt):
    line = status_lines(log)[rcpt]
    assert "status=sent" in line and "via=proxy" in line, log
    return line


def rejected(log, rcpt, reply):
    line = status_lines(log)[rcpt]
    assert "status=rejected" in line, log
    assert reply in line, line
    return line


# ------------------------------------------------------------------ #
# 1. In-session rejection with real targets                          #


def test_dovecot_unknown_user_is_refused_at_rcpt(tmp, peers):
    dv = Dovecot(tmp)
    peers.append(dv)
    cf = proxy_cf(tmp, ["unix:" + dv.socket], protocol="lmtp")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        got = s.cmd("RCPT TO:<nobody-here@example.net>", "550 ")
        s.cmd("RCPT TO:<ann@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    # Dovecot's own words, and who said them (the socket's path)
    assert re.fullmatch(r"550 5\.1\.1 (unix:)?%s said: <nobody-here@example\.net> User "
                        r"doesn't exist: nobody-here@example\.net" % re.escape(dv.socket),
                        got), got
    assert reply.startswith("250 2.") and "queued as" not in reply, reply
    for u in ("joe", "ann"):
        proxied(log, u + "@example.net")
        (path,) = dv.inbox(u)
        with open(path, "rb") as f:
            data = f.read()
        assert data.startswith(b"Return-Path: <ann@sender.example>\n"), data
        assert data.endswith(message().replace(b"\r\n", b"\n")), data
    rejected(log, "nobody-here@example.net", "User doesn't exist")
    nothing_later(cf, tmp)
    assert dv.inbox("nobody-here") == []


@pytest.mark.parametrize("client", ["LHLO", "EHLO"])
def test_dovecot_failure_after_the_data(tmp, peers, client):
    """locked's mailbox cannot be made: Dovecot says 4xx for it after the
    data. An LMTP client gets each recipient's reply; an SMTP client gets
    250 and the spool retries locked alone."""
    dv = Dovecot(tmp)
    peers.append(dv)
    cf = proxy_cf(tmp, ["unix:" + dv.socket], protocol="lmtp")
    s = greeted(cf, client + " client.example")
    rcpts = ["joe@example.net", "locked@example.net", "ann@example.net"]
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        for r in rcpts:
            s.cmd("RCPT TO:<%s>" % r, "250 ")
        s.cmd("DATA", "354 ")
        replies = [s.data(message())]
        if client == "LHLO":
            replies += [s.reply(), s.reply()]
    finally:
        log = quit_and_close(s)
    if client == "LHLO":
        assert replies[0].startswith("250 2.") and replies[2].startswith("250 2."), replies
        assert re.match(r"4\d\d 4\.\d+\.\d+ (unix:)?%s said: <locked@example\.net> "
                        % re.escape(dv.socket), replies[1]), replies
        # the client has the 4xx and retries: nothing of it in our spool
        assert queue(cf) == "the spool is empty\n"
    else:
        assert replies[0].startswith("250 2."), replies
        q = queue_targets(cf)
        assert q["locked@example.net"][0] == "pending", queue(cf)
        assert q["locked@example.net"][2].startswith("4"), queue(cf)
        os.chown(os.path.join(dv.dir, "locked"), 65534, 65534)
        flush(cf, "--now")
        assert len(dv.inbox("locked/home")) == 1
    for u in ("joe", "ann"):
        # a mixed verdict for an SMTP client is recorded by the spool's run
        if client == "LHLO":
            proxied(log, u + "@example.net")
        else:
            assert "status=sent" in status_lines(log)[u + "@example.net"], log
        assert len(dv.inbox(u)) == 1
    nothing_later(cf, tmp)


class LmtpPeer:
    """aiosmtpd's LMTP server on a unix socket: after the data it gives
    each recipient the reply that verdicts names (250 by default), one
    line each, as LMTP does; it keeps (recipients, content) of each
    message."""

    def __init__(self, path):
        pytest.importorskip("aiosmtpd.controller")
        from aiosmtpd.controller import UnixSocketController
        from aiosmtpd.lmtp import LMTP
        self.verdicts, self.messages = {}, []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((list(envelope.rcpt_tos), envelope.original_content))
                return "\r\n".join(outer.verdicts.get(r, "250 2.0.0 <%s> delivered" % r)
                                   for r in envelope.rcpt_tos)

        class Controller(UnixSocketController):
            def factory(self):
                return LMTP(self.handler, **self.SMTP_kwargs)
        self.c = Controller(Handler(), unix_socket=path, ready_timeout=5)
        self.c.start()
        os.chmod(path, 0o666)

    def stop(self):
        self.c.stop()


LMTP_CASES = {
    "all-delivered": {},
    "all-452": {"a@example.net": "452 4.2.2 <a@example.net> mailbox full",
                "b@example.net": "452 4.2.2 <b@example.net> mailbox full"},
    "mixed": {"b@example.net": "452 4.2.2 <b@example.net> mailbox full",
              "c@example.net": "550 5.1.1 <c@example.net> no such user"},
}


@pytest.mark.parametrize("case", sorted(LMTP_CASES))
def test_lmtp_verdicts_for_an_smtp_client(tmp, peers, case):
    """An SMTP client has one reply for the data: 250 when every recipient
    was delivered, the common failure when all failed alike (nothing kept
    here: the client has it), else 250 with the failures in the spool
    (4xx retried, 5xx bounced)."""
    sock = os.path.join(tmp, "lmtp.sock")
    peer = LmtpPeer(sock)
    peers.append(peer)
    peer.verdicts = dict(LMTP_CASES[case])
    rcpts = ["a@example.net", "b@example.net"] + (["c@example.net"] if case == "mixed" else [])
    cf = proxy_cf(tmp, ["unix:" + sock], protocol="lmtp")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        for r in rcpts:
            s.cmd("RCPT TO:<%s>" % r, "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert len(peer.messages) == 1 and peer.messages[0][0] == rcpts, peer.messages
    if case == "all-452":
        assert re.fullmatch(r"452 4\.2\.2 (unix:)?%s said: <a@example\.net> mailbox full"
                            % re.escape(sock), reply), reply
        nothing_later(cf, tmp)
        return
    if case == "all-delivered":
        assert reply.startswith("250 2.") and "queued as" not in reply, reply
        for r in rcpts:
            proxied(log, r)
        nothing_later(cf, tmp)
        return
    # mixed: the failures are the spool's, c bounced at once, b retried
    # until the target takes it
    assert re.fullmatch(r"250 2\.0\.0 Ok: delivered to 1, queued as [0-9A-F]+ for 2",
                        reply), reply
    q = queue_targets(cf)
    assert q["b@example.net"][0] == "pending", queue(cf)
    peer.verdicts = {}
    flush(cf, "--now")
    assert [m[0] for m in peer.messages] == [rcpts, ["b@example.net"]], peer.messages
    assert queue(cf) == "the spool is empty\n"
    (b,) = bounces(tmp)
    _, brcpts, _, _ = report(b)
    assert list(brcpts) == ["c@example.net"], brcpts


def test_a_line_that_is_no_reply_among_lmtp_verdicts(tmp, peers):
    """An LMTP target answers the data of a and b with a line that is no
    reply, then a's 550 and b's 250. The line after it was taken for b's
    verdict: b, which the target delivered, was bounced with a's "no such
    user" (and with the lines the other way round, a refused recipient
    would be recorded as delivered, its bounce lost). After such a line
    no reply can be attributed: every recipient gets the 451, and the
    client sends the message again (a copy more for b; nothing lost,
    nothing bounced)."""
    sock = os.path.join(tmp, "lmtp.sock")
    peer = LmtpPeer(sock)
    peers.append(peer)
    peer.verdicts = {"a@example.net":
                     "hello there\r\n550 5.1.1 <a@example.net> no such user"}
    cf = proxy_cf(tmp, ["unix:" + sock], protocol="lmtp")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<a@example.net>", "250 ")
        s.cmd("RCPT TO:<b@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert re.fullmatch(r"451 4\.5\.0 (unix:)?%s answered the data with no "
                        r"valid reply" % re.escape(sock), reply), reply
    for r in ("a@example.net", "b@example.net"):
        rejected(log, r, "451 4.5.0")
    assert "status=bounced" not in log, log
    nothing_later(cf, tmp)


@pytest.mark.parametrize("path", ["proxy", "spool"])
def test_one_address_in_several_cases_is_delivered_once(tmp, peers, path):
    """postmaster(8): an address given more than once, in any case, with
    the same targets is delivered once. joe, JOE and joe@EXAMPLE.NET are
    one address to routing; the target got one RCPT (and so one copy)
    for each spelling, through the proxy and through the spool alike.
    Each RCPT still has its 250; the first spelling goes onward."""
    sock = os.path.join(tmp, "lmtp.sock")
    peer = LmtpPeer(sock)
    peers.append(peer)
    if path == "proxy":
        cf = proxy_cf(tmp, ["unix:" + sock], protocol="lmtp")
    else:
        cf = write_cf(tmp, '[relay "next"]\naddress = unix:%s\nprotocol = lmtp\n'
                      '[route]\n@example.net next\n' % sock)
    rcpts = ["joe@example.net", "JOE@example.net", "joe@EXAMPLE.NET"]
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        for r in rcpts:
            s.cmd("RCPT TO:<%s>" % r, "250 2.1.5 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message("dupcase"))
    finally:
        log = quit_and_close(s)
    assert reply.startswith("250 2."), reply
    wait_for(lambda: queue(cf) == "the spool is empty\n", 20, "the delivery")
    flush(cf, "--now")
    assert [m[0] for m in peer.messages] == [["joe@example.net"]], peer.messages
    nothing_later(cf, tmp)


def test_a_mixed_lmtp_verdict_without_a_delivery_process(tmp, peers):
    """The recipients an LMTP target took are done in the envelope before
    the 250, whether a delivery process runs or not: with none (the
    session cannot fork here; its 8 slots busy is the same), the flusher
    once sent the message to them again."""
    if not ROOT:
        pytest.skip("the session runs as nobody, whose processes prlimit bounds")
    sock = os.path.join(tmp, "lmtp.sock")
    peer = LmtpPeer(sock)
    peers.append(peer)
    peer.verdicts = dict(LMTP_CASES["mixed"])
    rcpts = ["a@example.net", "b@example.net", "c@example.net"]
    cf = proxy_cf(tmp, ["unix:" + sock], protocol="lmtp")
    s = Session(cf, prefix=(tool("prlimit"), "--nproc=1:1"))
    assert s.reply().startswith("220 ")
    s.cmd("EHLO client.example", "250")
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        for r in rcpts:
            s.cmd("RCPT TO:<%s>" % r, "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert reply.startswith("250 2.0.0 Ok: delivered to 1, queued as "), reply
    proxied(log, "a@example.net")
    q = queue_targets(cf)
    assert q["a@example.net"][0] == "delivered", queue(cf)
    peer.verdicts = {}
    flush(cf, "--now")
    assert [m[0] for m in peer.messages] == [
        rcpts, ["b@example.net", "c@example.net"]], peer.messages


def test_postfix_relay_recipient_maps_refuse_at_rcpt(tmp, postfix):
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % postfix.port], domain="relay.example")
    body = message("relay")
    before = postfix.maillog().count("disconnect from localhost[127.0.0.1]")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@relay.example>", "250 ")
        got = s.cmd("RCPT TO:<unknown@relay.example>", "550 ")
        s.cmd("RCPT TO:<ann@relay.example>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(body)
    finally:
        log = quit_and_close(s)
    assert got == ("550 5.1.1 " + SAID + "<unknown@relay.example>: Recipient address "
                   "rejected: User unknown in relay recipient table"), got
    # Postfix's own reply to the data, its queue id named
    assert re.fullmatch(r"250 2\.0\.0 " + re.escape(SAID) + r"Ok: queued as \w+", reply), reply
    for u in ("joe", "ann"):
        proxied(log, u + "@relay.example")
        (path,) = wait_for(lambda: postfix.inbox("relay-" + u), 10, "Postfix's delivery")
        with open(path, "rb") as f:
            data = f.read()
        # Postfix adds a Date field below ours: the body, whole
        assert data.endswith(b"\n\n" + body.split(b"\r\n\r\n", 1)[1].replace(
            b"\r\n", b"\n")), data[-300:]
        assert b"\nReceived: from client.example (local)\n\tby mail.example.net " in data
        assert b"\nMessage-ID: <relay.1@sender.example>\n" in data
    rejected(log, "unknown@relay.example", "User unknown in relay recipient table")
    nothing_later(cf, tmp)
    # one connection for the whole transaction
    assert postfix.maillog().count("disconnect from localhost[127.0.0.1]") == before + 1, \
        postfix.maillog()


def bdat(s, msg, size):
    """Sends msg in BDAT chunks of size octets, the last one LAST."""
    chunks = [msg[i:i + size] for i in range(0, len(msg), size)]
    for i, c in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        s.send(b"BDAT %d%s\r\n" % (len(c), last.encode()) + c)
        reply = s.reply()
        if last:
            return reply
        assert reply.startswith("250 "), reply


def test_bdat_goes_on_as_bdat_to_a_chunking_target(tmp, postfix):
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % postfix.port], domain="relay.example")
    body = big_message("bdat", 100000)
    before = len(re.findall(r" bdat=\d+", postfix.maillog()))
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<ann@relay.example>", "250 ")
        reply = bdat(s, body, 30000)
    finally:
        log = quit_and_close(s)
    # Postfix's reply to BDAT LAST counts what it got
    assert re.fullmatch(r"250 2\.0\.0 " + re.escape(SAID) + r"Ok: \d+ bytes queued as \w+",
                        reply), reply
    proxied(log, "ann@relay.example")
    paths = wait_for(lambda: [p for p in postfix.inbox("relay-ann")
                              if b"Subject: bdat" in open(p, "rb").read()],
                     10, "Postfix's delivery")
    assert len(paths) == 1
    with open(paths[0], "rb") as f:
        assert f.read().endswith(body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n"))
    # Postfix counted BDAT commands for that session, no DATA
    last = postfix.maillog().rstrip().split("disconnect from localhost[127.0.0.1] ")[-1]
    assert len(re.findall(r" bdat=\d+", postfix.maillog())) == before + 1, last
    assert "data=" not in last.split("\n")[0], last
    nothing_later(cf, tmp)


def test_bdat_goes_on_as_data_to_a_target_without_chunking(tmp, peers):
    peer = aiosmtpd_peer(peers)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    body = message() + b"..more dots\r\n.\r\n"
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        reply = bdat(s, body, 50)
    finally:
        log = quit_and_close(s)
    assert reply == "250 2.0.0 " + SAID + "Ok: stored", reply
    proxied(log, "joe@example.net")
    (m,) = peer.handler.messages
    intact(m["content"], body)  # dot-stuffed on the way, unstuffed by aiosmtpd
    nothing_later(cf, tmp)


def test_a_second_destination_ends_the_proxy(tmp, peers):
    """A recipient for another destination (or a local one) is accepted
    all the same: the onward connection is closed and the transaction goes
    on through the spool with every recipient."""
    one, two = aiosmtpd_peer(peers), aiosmtpd_peer(peers)
    box = os.path.join(tmp, "box")
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(box, sub), exist_ok=True)
        os.chmod(os.path.join(box, sub), 0o1777)
    cf = write_cf(tmp, """\
[relay "one"]
address = [127.0.0.1]:%d
[relay "two"]
address = [127.0.0.1]:%d
[route]
local@example.net %s/
@example.net one
@example.org two
""" % (one.port, two.port, box), smtpd="")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        first = s.cmd("RCPT TO:<a@example.net>", "250 ")
        s.cmd("RCPT TO:<b@example.org>", "250 ")
        s.cmd("RCPT TO:<local@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert SAID in first, first  # proxied until the second destination
    assert QUEUED.match(reply), reply
    flush(cf, "--now")
    assert [m["rcpts"] for m in one.handler.messages] == [["a@example.net"]]
    assert [m["rcpts"] for m in two.handler.messages] == [["b@example.org"]]
    for m in one.handler.messages + two.handler.messages:
        check_content(m["content"])
    assert len(maildir_files(box)) == 1
    # the proxy's connection to one, and the spool's own
    assert one.handler.ehlos == 2, one.handler.ehlos
    assert "via=proxy" not in log
    nothing_later(cf, tmp)


@pytest.mark.parametrize("hello", ["LHLO", "EHLO"])
@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_data_after_the_target_refused_every_recipient(tmp, peers, hello, how):
    """Every recipient was refused by the target: DATA (BDAT) gets what
    it gets when routing refused them, 503 5.5.1 (SPEC 5 for LMTP), not
    554, and the session goes on."""
    peer = ScriptedPeer("refuse-bad")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf, hello + " client.example")
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<bad@example.net>", "550 5.1.1 " + SAID + "no such user")
        if how == "BDAT":
            s.send(b"BDAT 5 LAST\r\nxxxxx")
            got = s.reply()
            assert got == "503 5.5.1 No valid recipients (discarded 5 octets)", got
        else:
            s.cmd("DATA", "503 5.5.1 No valid recipients")
        s.cmd("RSET", "250 ")
    finally:
        quit_and_close(s)
    nothing_later(cf, tmp)
    # the refusals were known before DATA: no DATA went to the target,
    # whose 354 would have been followed by an empty message
    assert peer.accepted == []


def test_a_refusal_stands_for_a_recipient_with_notify_success(tmp, peers):
    """The target refused MAIL: a later recipient for it that asks for a
    success report (which the spool path carries) gets the refusal too;
    it was accepted, spooled, refused again and bounced."""
    peer = ScriptedPeer("refuse-mail")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> RET=HDRS" % SENDER, "250 ")
        s.cmd("RCPT TO:<b@example.net>", "550 ")
        s.cmd("RCPT TO:<c@example.net> NOTIFY=SUCCESS,FAILURE", "550 ")
        s.cmd("DATA", "503 5.5.1 No valid recipients")
    finally:
        quit_and_close(s)
    nothing_later(cf, tmp)


def local_box(tmp):
    box = os.path.join(tmp, "box")
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(box, sub), exist_ok=True)
        os.chmod(os.path.join(box, sub), 0o1777)
    return box


@pytest.mark.parametrize("how", ["refuse-mail", "smtputf8"])
def test_a_refusing_destination_stays_refused_after_another(tmp, peers, how):
    """The target refuses the transaction (550 to MAIL; no SMTPUTF8 for
    a message that needs it): every recipient for it gets that reply,
    also after a recipient for another destination (a local Maildir).
    Once that other recipient made the proxy forget the refusal: the
    next recipient for the target was accepted, spooled, refused again
    by the target and bounced to the sender."""
    peer = ScriptedPeer(how if how == "refuse-mail" else None)
    peers.append(peer)
    box = local_box(tmp)
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n'
                  "local@example.org %s/\n@example.net next\n" % (peer.port, box),
                  smtpd="")
    s = greeted(cf)
    try:
        # an ASCII sender would go without SMTPUTF8: a UTF-8 one needs it
        s.cmd("MAIL FROM:<%s>" % SENDER if how == "refuse-mail"
              else "MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8", "250 ")
        first = s.cmd("RCPT TO:<b@example.net>", "550 ")
        s.cmd("RCPT TO:<local@example.org>", "250 ")
        again = s.cmd("RCPT TO:<c@example.net>", "5")
        s.cmd("DATA", "354 ")
        reply = s.data(message("refused-" + how))
    finally:
        log = quit_and_close(s)
    want = ("550 5.7.1 " + SAID + "no mail from you" if how == "refuse-mail"
            else "550 5.6.7 127.0.0.1[127.0.0.1] does not support SMTPUTF8, "
            "which this message needs")
    assert first == want and again == want, (first, again)
    assert reply.startswith("250 2.0.0 "), reply
    flush(cf, "--now")
    assert len(maildir_files(box)) == 1
    assert peer.accepted == []
    nothing_later(cf, tmp)


@pytest.mark.parametrize("exit_code,want", [(67, "550 5.1.1 no such mailbox here"),
                                            (75, "451 4.2.0 no such mailbox here")],
                         ids=["67", "75"])
def test_a_refused_recipient_leaves_no_spool_behind(tmp, peers, exit_code, want):
    """The target refuses the first recipient; the next one goes to a
    local pipe, which refuses the message. The refused recipient left the
    transaction, so the rest takes the direct path and the client hears
    the mailer's verdict. Once the proxy had marked the transaction for
    the spool at that first RCPT: the client got 250 and the sender a
    bounce later (or the spool retried a temporary failure)."""
    peer = ScriptedPeer("refuse-bad")
    peers.append(peer)
    code = want[4:9]
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n'
                  'l@fail.example "|cat >/dev/null; echo %s no such mailbox here; '
                  'exit %d"\n@example.net next\n' % (peer.port, code, exit_code),
                  smtpd="")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<bad@example.net>", "550 5.1.1 " + SAID + "no such user")
        s.cmd("RCPT TO:<l@fail.example>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message("refused-first"))
    finally:
        log = quit_and_close(s)
    assert reply == want, reply
    rejected(log, "bad@example.net", "no such user")
    nothing_later(cf, tmp)


def test_aiosmtpd_replies_reach_the_client_per_recipient(tmp, peers):
    peer = aiosmtpd_peer(peers)
    h = peer.handler
    h.policy = {"later@example.net": "450 4.2.1 mailbox busy, try later",
                "bad@example.net": "550 5.1.1 no such mailbox here"}
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<ok@example.net>", "250 ")
        later = s.cmd("RCPT TO:<later@example.net>", "450 ")
        bad = s.cmd("RCPT TO:<bad@example.net>", "550 ")
        s.cmd("RCPT TO:<ok2@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert later == "450 4.2.1 " + SAID + "mailbox busy, try later"
    assert bad == "550 5.1.1 " + SAID + "no such mailbox here"
    assert reply == "250 2.0.0 " + SAID + "Ok: stored", reply
    # one connection, one transaction, every RCPT asked once
    assert h.ehlos == 1
    assert [r for r, _ in h.rcpts] == ["ok@example.net", "later@example.net",
                                       "bad@example.net", "ok2@example.net"]
    (m,) = h.messages
    assert m["rcpts"] == ["ok@example.net", "ok2@example.net"]
    check_content(m["content"])
    proxied(log, "ok@example.net")
    proxied(log, "ok2@example.net")
    rejected(log, "later@example.net", "mailbox busy, try later")
    rejected(log, "bad@example.net", "no such mailbox here")
    nothing_later(cf, tmp)
    assert len(h.messages) == 1


@pytest.mark.parametrize("reply", ["452 4.5.3 Error: too many recipients",
                                   "552 5.5.3 Too many recipients"],
                         ids=["452", "552-of-rfc821"])
def test_a_targets_recipient_limit_is_temporary_for_the_client(tmp, peers, reply):
    """RFC 5321 4.5.3.1.10: a target's limit of recipients per transaction
    is temporary, also as RFC 821's 552 (which a client such as Postfix
    bounces): the client gets 452 4.5.3 and sends that recipient again,
    as the spool's client does (flush.c). It got the 552 through."""
    peer = aiosmtpd_peer(peers)
    peer.handler.policy = {"c@example.net": reply}
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<a@example.net>", "250 ")
        got = s.cmd("RCPT TO:<c@example.net>", "")
        s.cmd("DATA", "354 ")
        assert s.data(message()).startswith("250 ")
    finally:
        log = quit_and_close(s)
    assert got == "452 4.5.3 " + SAID + reply[10:], got
    rejected(log, "c@example.net", "452 4.5.3")
    (m,) = peer.handler.messages
    assert m["rcpts"] == ["a@example.net"]
    nothing_later(cf, tmp)


def slow_transaction(cf, rcpts, replies):
    """A transaction whose data takes over a second: its log."""
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        for rcpt, want in zip(rcpts, replies):
            s.cmd("RCPT TO:<%s>" % rcpt, want)
        s.cmd("DATA", "354 ")
        s.send(b"Subject: slow\r\n\r\nfirst line\r\n")
        time.sleep(1.2)
        assert s.data(b"second line\r\n").startswith("250 ")
    finally:
        log = quit_and_close(s)
    return log


def test_direct_and_proxied_lines_name_the_target_and_delay(tmp, peers):
    """postmaster(8) LOGGING: a recipient's fate names its target= and
    its delay= (seconds since arrival), as the spool's lines do. The
    session's lines for a proxied recipient (sent, or refused by the
    target) and for a Maildir written while the client waits had
    neither."""
    peer = aiosmtpd_peer(peers)
    peer.handler.policy = {"later@example.net": "450 4.2.1 mailbox busy"}
    box = local_box(tmp)
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n'
                  "local@example.org %s/\n@example.net next\n"
                  % (peer.port, box), smtpd="")
    log = slow_transaction(cf, ["ok@example.net", "later@example.net"],
                           ["250 ", "450 "])
    line = proxied(log, "ok@example.net")
    assert re.search(r' target="relay next" relay=127\.0\.0\.1\S* .* '
                     r"delay=[12] reply=", line), line
    line = rejected(log, "later@example.net", "mailbox busy")
    assert ' target="relay next" ' in line, line
    log = slow_transaction(cf, ["local@example.org"], ["250 "])
    line = status_lines(log)["local@example.org"]
    assert re.search(r' target="maildir %s/" status=sent .* delay=[12] reply='
                     % re.escape(box), line), line
    assert len(maildir_files(box)) == 1
    nothing_later(cf, tmp)


def test_replies_go_out_when_a_group_ends_inside_a_line(tmp, peers):
    """RFC 2920: a server sends its replies when its input runs dry. A
    group that ended inside a line (the rest of RCPT to come only after
    the replies) once kept the target's RCPT reply back until the rest
    arrived: a client that waits for it stalled to the timeout."""
    peer = ScriptedPeer(None)  # PIPELINING: the RCPT replies are read late
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    s.TIMEOUT = 10
    try:
        s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\n"
               b"RCPT TO:<ann@exa" % SENDER.encode())
        assert s.reply().startswith("250 2.1.0 ")
        assert s.reply() == "250 2.0.0 " + SAID + "Ok"  # joe's
        s.send(b"mple.net>\r\n")
        assert s.reply() == "250 2.0.0 " + SAID + "Ok"  # ann's
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert reply.startswith("250 2.0.0 " + SAID), reply
    proxied(log, "ann@example.net")


def test_a_reply_that_never_ends_is_bounded(tmp, peers):
    """A next hop that answers RCPT with 250- lines forever once held the
    session as long as it went on (each line restarted the timeout) and
    kept every line (1.1 GB in 16 s). The whole reply now has one
    timeout, and its text a bound: the client hears within the relay's
    timeout (2 s here; 15 s of slack)."""
    peer = ScriptedPeer("rcpt-endless")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port], relay="timeout = 2s\n")
    s = greeted(cf)
    s.TIMEOUT = 15
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<joe@example.net>", "")
    finally:
        peer.stopping = True
        quit_and_close(s)
    assert got.split("\n")[-1][:1] in "245", got


def test_a_target_that_answers_the_dot_with_no_reply(tmp, peers):
    """The target read the message and answered its dot with a line that
    is no reply: once taken for a lost connection, taken over (250) and
    sent to the same target again. It is a protocol error, not a lost
    connection: the client hears 451 (as from Postfix's proxy), nothing
    is spooled, and the target got the message once."""
    peer = ScriptedPeer("dot-garbage")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        got = s.data(message())
    finally:
        log = quit_and_close(s)
    assert got == "451 4.5.0 127.0.0.1[127.0.0.1] answered the data with no " \
                  "valid reply", got
    assert "event=takeover" not in log, log
    assert queue(cf) == "the spool is empty\n"
    assert len(peer.accepted) == 1


@pytest.mark.parametrize("how", ["MAIL", "RCPT", "DATA-pipelined", "DATA-alone"])
def test_a_line_that_is_no_reply_is_no_takeover(tmp, peers, how):
    """The target answers MAIL, RCPT or DATA with a line that is no
    reply. That was taken for a lost connection: a takeover, logged as
    "no reply in time", and 250 for a recipient the target never took (a
    bounce later, for an unknown user). It is the target's protocol
    error: what it answered gets 451 (as from Postfix's proxy), and
    nothing is taken over or spooled."""
    cmd = how.split("-")[0]
    peer = ScriptedPeer(cmd.lower() + "-garbage")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    want = "451 4.5.0 127.0.0.1[127.0.0.1] answered %s with no valid reply" % cmd
    s = greeted(cf)
    try:
        if how == "DATA-pipelined":
            s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\n"
                   b"DATA\r\n" % SENDER.encode())
            replies = [s.reply() for _ in range(3)]
            assert replies[1] == "250 2.0.0 " + SAID + "Ok", replies
            got = replies[2]
        else:
            s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
            if cmd == "DATA":
                s.cmd("RCPT TO:<joe@example.net>", "250 2.0.0 " + SAID)
                s.cmd("DATA", "354 ")
                got = s.data(message("garbage"))
            else:
                got = s.cmd("RCPT TO:<joe@example.net>", "4")
                s.cmd("RCPT TO:<ann@example.net>", want)
                s.cmd("DATA", "5")
        assert got == want, got
        s.cmd("RSET", "250 ")
    finally:
        log = quit_and_close(s)
    assert "event=takeover" not in log, log
    rejected(log, "joe@example.net", "no valid reply")
    assert peer.accepted == []
    nothing_later(cf, tmp)


def test_a_354_to_rcpt_is_no_answer(tmp, peers):
    """RFC 5321 4.3.2: RCPT's replies are 2xx, 4xx or 5xx. A target's 354
    went to the client as its RCPT reply (354 3.1.0, no valid enhanced
    code), which may start its message text; it is a 451 now, as MAIL's
    and the data's are."""
    peer = ScriptedPeer("rcpt-354")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<joe@example.net>", "451 ")
    finally:
        quit_and_close(s)
    assert got.startswith("451 4.") and SAID in got, got


def test_a_proxied_message_is_never_synced(tmp, peers):
    """The common path costs no fsync at all: the data goes onward, and
    its spool copy (kept until the target's 250) is never synced."""
    from pmtest import tool
    peer = aiosmtpd_peer(peers)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    trace = os.path.join(tmp, "strace.out")
    s = Session(cf, prefix=[tool("strace"), "-f", "-qq", "-o", trace,
                            "-e", "trace=fsync,fdatasync,sync_file_range,syncfs,sync"])
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(big_message("unsynced", 200000))
    finally:
        log = quit_and_close(s)
    assert reply == "250 2.0.0 " + SAID + "Ok: stored", reply
    proxied(log, "joe@example.net")
    with open(trace, errors="replace") as f:
        calls = [l for l in f if "sync" in l]
    assert calls == [], "synced:\n" + "".join(calls)
    assert len(peer.handler.messages) == 1
    assert queue(cf) == "the spool is empty\n"


# smtp-sink's injected failures (-r: 4xx, -f: 5xx; both imply no
# PIPELINING) at each command: the client gets the sink's reply to it.
SINK_FAILS = [("-r", "RCPT"), ("-f", "RCPT"), ("-r", "DATA"), ("-f", "DATA"),
              ("-r", "."), ("-f", ".")]


@pytest.mark.parametrize("opt,command", SINK_FAILS, ids=["%s%s" % f for f in SINK_FAILS])
def test_smtp_sink_failure_reaches_the_client(tmp, peers, opt, command):
    text = "450 4.3.2 try later please" if opt == "-r" else "554 5.7.1 no thanks"
    sink = SmtpSink(tmp, opt, command, "-b" if opt == "-r" else "-B", text)
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    want = text[:10] + SAID + text[10:]
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        if command == "RCPT":
            got = s.cmd("RCPT TO:<joe@example.net>", text[:4])
            # no recipient: the data is refused by the session itself
            s.cmd("DATA", "5")
        else:
            s.cmd("RCPT TO:<joe@example.net>", "250 ")
            # a DATA the client did not pipeline has its 354 at once: the
            # target's refusal of it is the reply to the message
            s.cmd("DATA", "354 ")
            got = s.data(message())
    finally:
        log = quit_and_close(s)
    assert got == want, got
    # one log line for the recipient, with the target's reply (a refused
    # RCPT is "rejected"; after it the client has the reply to retry or
    # bounce, whatever the line's status)
    line = status_lines(log).get("joe@example.net", "")
    assert text[10:] in line, "no log line with the target's reply:\n" + log
    if command == "RCPT":
        rejected(log, "joe@example.net", text[10:])
    nothing_later(cf, tmp)
    if command != ".":  # smtp-sink dumps the data before it answers the dot
        assert sink.messages() == []


def test_a_lone_data_has_its_354_before_the_targets(tmp, peers):
    """A client that waits for each reply sends DATA alone: the session
    answers 354 at once and reads the target's 354 while the message
    comes, so the target's round trip is not the client's. The scripted
    target here holds its 354 until the client has the session's."""
    peer = ScriptedPeer("hold-354")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    msg = message("early-354")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")  # the target has not answered DATA yet
        peer.release.set()
        got = s.data(msg)
    finally:
        log = quit_and_close(s)
    assert got == "250 2.0.0 " + SAID + "Ok: kept", got
    proxied(log, "joe@example.net")
    (content,) = peer.accepted
    intact(content, msg)
    nothing_later(cf, tmp)


@pytest.mark.parametrize("body", [b"", b"Subject: short\r\n\r\nhi\r\n"],
                         ids=["empty", "short"])
@pytest.mark.parametrize("pipelined", [False, True], ids=["alone", "pipelined"])
def test_a_target_refusing_data(tmp, peers, pipelined, body):
    """The target says 554 to DATA. A client that pipelined DATA with its
    RCPT gets the refusal as its reply to DATA (the session read the
    target's reply in the group); one that sent DATA alone had its 354 at
    once and gets the refusal after the message, an empty one too. Either
    way nothing is delivered, spooled or bounced, and the recipient's log
    line says rejected."""
    peer = ScriptedPeer("refuse-data")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    want = "554 5.3.0 " + SAID + "no data today"
    s = greeted(cf)
    try:
        if pipelined:
            s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\n"
                   b"DATA\r\n" % SENDER.encode())
            replies = [s.reply() for _ in range(3)]
            assert replies[0].startswith("250 ") and replies[1].startswith("250 "), replies
            got = replies[2]
        else:
            s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
            s.cmd("RCPT TO:<joe@example.net>", "250 ")
            s.cmd("DATA", "354 ")
            got = s.data(body)
        assert got == want, got
        # the session goes on: the next transaction is served
        s.cmd("RSET", "250 ")
    finally:
        log = quit_and_close(s)
    rejected(log, "joe@example.net", "no data today")
    assert peer.accepted == [] and peer.data_octets == 0
    nothing_later(cf, tmp)


@pytest.mark.parametrize("pipelined", [False, True], ids=["alone", "pipelined"])
def test_a_451_to_data_is_logged_as_rejected(tmp, peers, pipelined):
    """The target says 451 to DATA: the client has the 451 and nothing is
    queued here, whether DATA came alone or in the group. It was logged
    status=rejected one way and status=deferred the other, and
    "deferred" names a message in our queue."""
    peer = ScriptedPeer("defer-data")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    want = "451 4.3.2 " + SAID + "not now"
    s = greeted(cf)
    try:
        if pipelined:
            s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\n"
                   b"DATA\r\n" % SENDER.encode())
            got = [s.reply() for _ in range(3)][2]
        else:
            s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
            s.cmd("RCPT TO:<joe@example.net>", "250 ")
            s.cmd("DATA", "354 ")
            got = s.data(message("deferred"))
    finally:
        log = quit_and_close(s)
    assert got == want, got
    line = rejected(log, "joe@example.net", want)
    assert "dsn=4.3.2" in line, line
    assert queue(cf) == "the spool is empty\n"


@pytest.mark.parametrize("how", ["alone", "pipelined", "bdat"])
def test_data_again_after_a_storage_failure(tmp, peers, how):
    """The spool cannot take the message at DATA (its directory is
    read-only for a moment), so the client hears 451 and, as RFC 5321
    lets it, sends DATA (BDAT) again. The first DATA had gone onward: the
    second went on as message text and the target delivered the message
    with a "DATA" line on top of its header, or, its 354 read in the
    group, the data waited for a reply that never came, then a takeover.
    The onward transaction ends at the 451; the second try is the
    spool's, and the message arrives once, whole."""
    peer = ScriptedPeer(None)
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port],
                  relay="timeout = 5s\n")
    spool = os.path.join(tmp, "spool")
    msg = message("again")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        os.chmod(spool, 0o555)
        if how == "pipelined":
            s.send(b"RCPT TO:<joe@example.net>\r\nDATA\r\n")
            assert s.reply() == "250 2.0.0 " + SAID + "Ok"
            refused = s.reply()
        else:
            s.cmd("RCPT TO:<joe@example.net>", "250 2.0.0 " + SAID)
            if how == "bdat":
                s.send(b"BDAT 5 LAST\r\nxxxxx")
                refused = s.reply()
            else:
                refused = s.cmd("DATA", "451 ")
        assert refused.startswith("451 4.3.0 Cannot store the message"), refused
        os.chmod(spool, 0o1777)
        if how == "bdat":
            reply = bdat(s, msg, len(msg))
        else:
            s.cmd("DATA", "354 ")
            reply = s.data(msg)
    finally:
        os.chmod(spool, 0o1777)
        log = quit_and_close(s)
    flush(cf, "--now")
    (content,) = peer.accepted
    intact(content, msg)
    assert reply.startswith("250 2.0.0 "), reply
    assert "event=takeover" not in log, log
    nothing_later(cf, tmp)


def through(tmp, peer, path, subject, rcpt_reply="250 "):
    """One message to joe@example.net through the proxy or (path
    "spool") through the spool to the scripted peer, flushed; the peer
    must hold it once, whole, and nothing may be left or bounce."""
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    if path == "spool":
        cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n'
                      "[route]\n@example.net next\n" % peer.port)
    msg = message(subject)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", rcpt_reply if path == "proxy" else "250 ")
        s.cmd("DATA", "354 ")
        got = s.data(msg)
    finally:
        log = quit_and_close(s)
    assert got.startswith("250 "), got
    log += flush(cf)
    (content,) = peer.accepted
    intact(content, msg)
    nothing_later(cf, tmp)
    return got, log


@pytest.mark.parametrize("path", ["proxy", "spool"])
def test_a_252_to_rcpt_accepts_the_recipient(tmp, peers, path):
    """A target that answers MAIL and RCPT with 252 (any 2xx is a positive
    completion, RFC 5321 4.2.1) gets the message, through the proxy and
    through the spool; the spool's client once took the RCPT's 252 for
    the recipient's final verdict, logged it sent and removed the message
    without sending it (and a 252 to MAIL deferred it)."""
    peer = ScriptedPeer("rcpt-252")
    peers.append(peer)
    through(tmp, peer, path, "two-five-two", rcpt_reply="252 ")


@pytest.mark.parametrize("path", ["proxy", "spool"])
def test_an_over_long_reply_line_is_a_reply(tmp, peers, path):
    """A target whose 250 to the dot runs past 1 000 octets has taken the
    message: the reply keeps its code (and the start of its text), and the
    message is delivered once. Such a line was once read as a lost
    connection: the proxy took the message over and the spool sent it
    again at every run, until it bounced."""
    peer = ScriptedPeer("long-reply")
    peers.append(peer)
    got, log = through(tmp, peer, path, "long-reply")
    assert "status=sent" in status_lines(log)["joe@example.net"], log
    assert "takeover" not in log, log
    if path == "proxy":
        assert got.startswith("250 2.0.0 " + SAID + "Ok, and then "), got


@pytest.mark.parametrize("chunk_reply", [b"251 2.0.0 chunk fine",
                                         b"354 go on", b"550 5.7.1 not this"],
                         ids=["251", "354", "550"])
def test_bdat_chunk_replies_in_a_queue_run(tmp, peers, chunk_reply):
    """Two messages wait in the spool for a CHUNKING target, which takes
    both in one queue run on one connection (kept between messages). The
    first message's first chunk gets chunk_reply: a 2xx other than 250
    takes the chunk (the message is delivered); a 354 (no reply for a
    chunk) or a 550 fails the message, deferred or bounced, and the second
    message still gets its own replies. The client once took the chunk's
    reply for the message's verdict and left the rest of the replies
    unread on a connection it kept: the next message read the previous
    one's replies (a refused message logged sent, a delivered one
    deferred)."""
    peer = ScriptedPeer("down", chunking=True, chunk_reply=chunk_reply)
    peers.append(peer)
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n'
                  "[route]\n@example.net next\n" % peer.port)
    # the first message takes two chunks
    msgs = [message("chunk %d" % i) + (b"x" * 78 + b"\r\n") * (500 if i == 0 else 1)
            for i in range(2)]
    for i, msg in enumerate(msgs):
        s = greeted(cf)
        try:
            s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
            s.cmd("RCPT TO:<m%d@example.net>" % i, "250 ")
            s.cmd("DATA", "354 ")
            assert QUEUED.match(s.data(msg))
        finally:
            quit_and_close(s)
    peer.fault = None
    log = flush(cf)
    lines = status_lines(log)
    assert "status=sent" in lines["m1@example.net"], log
    code = chunk_reply[:3].decode()
    if code == "251":
        assert "status=sent" in lines["m0@example.net"], log
        assert len(peer.accepted) == 2, peer.accepted
        for msg in msgs:
            assert [c for c in peer.accepted if c.endswith(msg)]
    elif code == "354":
        assert "status=deferred" in lines["m0@example.net"], log
        assert "451 " in lines["m0@example.net"], log
        (c,) = peer.accepted
        assert c.endswith(msgs[1])
        flush(cf)  # the retry meets no fault
        assert len(peer.accepted) == 2 and peer.accepted[1].endswith(msgs[0])
    else:
        assert "status=bounced" in lines["m0@example.net"], log
        assert "550 5.7.1" in lines["m0@example.net"], log
        (c,) = peer.accepted
        assert c.endswith(msgs[1])
        assert len(maildir_files(os.path.join(tmp, "bounces"))) == 1
    assert queue(cf) == "the spool is empty\n"


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_chunk_answered_with_no_reply(tmp, peers, size):
    """A CHUNKING target answers the first BDAT chunk with a line that is
    no reply (and then, as its transaction failed, LAST with 503). That is
    its protocol error: the client gets 451 and sends the message again,
    as for DATA (postmaster(8), THE PROXY). A small message got the 503 to
    LAST, a permanent failure that makes the client bounce it; a large
    one, whose chunk reply comes while the data streams, was taken over
    as a "lost connection" (a connection that was not lost)."""
    peer = ScriptedPeer(None, chunking=True, chunk_reply=b"hello there")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    msg = message("no-reply") if size == "small" else big_message("no-reply", 6 << 20)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        reply = bdat(s, msg, 100 if size == "small" else 1 << 20)
    finally:
        log = quit_and_close(s)
    assert re.fullmatch(r"451 4\.5\.0 127\.0\.0\.1\[127\.0\.0\.1\] answered "
                        r"(BDAT|the data) with no valid reply", reply), reply
    assert "event=takeover" not in log, log
    rejected(log, "joe@example.net", "451 4.5.0")
    assert peer.accepted == []
    nothing_later(cf, tmp)


def test_an_lmtp_target_gone_after_some_replies(tmp, peers):
    """An LMTP target delivers to the first of two recipients, says so, and
    is gone before the second's reply: the first recipient's delivery
    stands (the client gets 250 once the spool holds the message for the
    second), and the flusher delivers to the second alone. The proxy once
    took the whole message over, and the first recipient got it twice."""
    peer = ScriptedPeer("lmtp-drop")
    peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port], protocol="lmtp")
    msg = message("lmtp-drop")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<a@example.net>", "250 ")
        s.cmd("RCPT TO:<b@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        got = s.data(msg)
    finally:
        quit_and_close(s)
    assert re.match(r"^250 2\.0\.0 Ok: delivered to 1, queued as [0-9A-F]+ for 1$", got), got
    flush(cf)
    assert sorted(peer.delivered) == ["a@example.net", "b@example.net"], peer.delivered
    nothing_later(cf, tmp)


def test_a_peers_control_characters_stay_out_of_the_bounce(tmp, peers):
    """A peer's reply text goes into logs, --queue and bounces: a bare CR
    in it once started a field of its own in the bounce's report (here
    an 'Action: delivered'), and escapes reached terminals. Controls and
    invalid UTF-8 are escaped."""
    peer = ScriptedPeer("rcpt-control")
    peers.append(peer)
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n'
                  "[route]\n@example.net next\n" % peer.port)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        assert QUEUED.match(s.data(message("controls")))
    finally:
        log = quit_and_close(s)
    (b,) = bounces(tmp)
    per_message, per_rcpt, text, _ = report(b)
    block = per_rcpt["joe@example.net"]
    assert block["Action"] == "failed" and len(block.get_all("Action")) == 1, str(block)
    assert "\\x0DAction: delivered\\x1B[31m \\xFF" in str(block["Diagnostic-Code"]), str(block)
    assert "\r" not in b.as_string().replace("\r\n", "")
    assert "\x1b" not in log and "\x1b" not in text


@pytest.mark.parametrize("dsn", [True, False], ids=["dsn", "no-dsn"])
def test_dsn_parameters_go_on_only_to_a_target_with_dsn(tmp, peers, dsn):
    sink = SmtpSink(tmp, *(() if dsn else ("-N",)))
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> RET=HDRS ENVID=QQ+2B1" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<joe@example.net> NOTIFY=FAILURE,DELAY "
                    "ORCPT=rfc822;Joe+2Bx@example.org", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert SAID in got and SAID in reply, (got, reply)
    proxied(log, "joe@example.net")
    ((fields, _),) = wait_for(sink.messages, what="the dump")
    mail = [f for f in fields if f.startswith("X-Mail-Args: ")]
    rcpt = [f for f in fields if f.startswith("X-Rcpt-Args: ")]
    if dsn:
        assert mail == ["X-Mail-Args: <ann@sender.example> RET=HDRS ENVID=QQ+2B1"], mail
        assert rcpt == ["X-Rcpt-Args: <joe@example.net> NOTIFY=FAILURE,DELAY "
                        "ORCPT=rfc822;Joe+2Bx@example.org"], rcpt
    else:
        assert mail == ["X-Mail-Args: <ann@sender.example>"], mail
        assert rcpt == ["X-Rcpt-Args: <joe@example.net>"], rcpt
    nothing_later(cf, tmp)


def test_notify_success_takes_the_spool_path(tmp, peers):
    """NOTIFY=SUCCESS asks for our own "relayed" or "delivered" report, so
    that recipient is not proxied: our own 250 at RCPT, the spool after."""
    peer = aiosmtpd_peer(peers)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<joe@example.net> NOTIFY=SUCCESS", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message())
    finally:
        log = quit_and_close(s)
    assert "said:" not in got, got
    assert QUEUED.match(reply), reply
    assert "via=proxy" not in log
    flush(cf, "--now")
    assert [m["rcpts"] for m in peer.handler.messages] == [["joe@example.net"]]
    assert queue(cf) == "the spool is empty\n"


def test_an_lmtp_clients_loop_refuses_only_that_recipient(tmp, peers):
    """LMTP gives each recipient its own reply: a message that already
    carries our Delivered-To for joe is a loop for joe alone. The proxied
    transaction is not finished (the target must not have it for joe);
    ann is queued and delivered. Every recipient was once refused 554."""
    peer = aiosmtpd_peer(peers)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf, "LHLO client.example")
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("RCPT TO:<ann@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        replies = [s.data(b"Delivered-To: joe@example.net\r\n" + message("loop"))]
        replies.append(s.reply())
    finally:
        log = quit_and_close(s)
    assert replies[0] == "554 5.4.6 <joe@example.net>: mail forwarding loop", replies
    assert QUEUED.match(replies[1]), replies
    flush(cf, "--now")
    assert [m["rcpts"] for m in peer.handler.messages] == [["ann@example.net"]]
    assert queue(cf) == "the spool is empty\n"


REFUSED_DATA = ["size", "loop", "bare-newline", "abort"]


@pytest.mark.parametrize("how", REFUSED_DATA)
def test_refused_data_never_reaches_the_target(tmp, peers, how):
    """A message that the session refuses (over SIZE, a mail loop, a bare
    line feed under bare-newline = reject) or that the client abandons
    mid-data: the onward transaction ends without its final dot, so the
    target delivers nothing, and nothing is left to deliver here."""
    peer = ScriptedPeer(None)
    peers.append(peer)
    smtpd = '[smtpd "mail.example.net"]\nbare-newline = reject\n' \
        if how == "bare-newline" else ""
    text = '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n@example.net next\n' \
        % peer.port
    cf = write_cf(tmp, text, smtpd=smtpd,
                  core="max-message-size = 100000" if how == "size" else "")
    msg = big_message("refused-" + how, 300000 if how == "size" else 150000)
    if how == "loop":
        msg = b"".join(b"Received: from h%d.example\r\n\tby h%d.example; Tue, 1 Dec 2026 "
                       b"00:00:00 +0000\r\n" % (i, i + 1) for i in range(100)) + msg
    if how == "bare-newline":
        msg = msg.replace(b"00000100 ", b"00000100\nbare ")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 2.")
        s.cmd("DATA", "354 ")
        data = stuffed(msg)
        if how == "abort":
            s.send(data[:len(data) // 2])
            # mid-data: the target has some of it
            wait_for(lambda: peer.data_octets > 20000, 30, "the data to go on")
            s.proc.stdin.close()
            s.proc.wait(timeout=30)
        else:
            s.send(data)
            reply = s.reply()
            want = {"size": "552 5.3.4 ", "loop": "554 5.4.6 ",
                    "bare-newline": "550 5.5.2 "}[how]
            assert reply.startswith(want), reply
            s.cmd("QUIT", "221 ")
    finally:
        s.close()
    wait_for(lambda: all(not t.is_alive() for t in peer.threads), 30,
             "the onward connection to end")
    assert peer.accepted == [], "the target got the refused message"
    assert peer.connections >= 1  # the proxy did connect at the RCPT
    assert queue(cf) == "the spool is empty\n"
    flush(cf, "--now")
    assert peer.accepted == []


def test_smuggled_end_of_data_stays_content_at_the_target(tmp, peers):
    """A bare line feed before "." (SMTP smuggling): under bare-newline =
    normalize the line after it is content here, so it must be
    dot-stuffed on the way and stay content at the target, one message."""
    peer = aiosmtpd_peer(peers)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    smuggled = (b"Subject: smuggle\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@example.org>\r\n"
                b"RCPT TO:<victim@example.net>\r\nDATA\r\nforged\r\n")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        s.send(smuggled + b".\r\n")
        reply = s.reply()
    finally:
        log = quit_and_close(s)
    assert reply == "250 2.0.0 " + SAID + "Ok: stored", reply
    proxied(log, "joe@example.net")
    (m,) = peer.handler.messages
    assert m["rcpts"] == ["joe@example.net"]
    assert m["content"].endswith(b"\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.org>\r\n"
                                 b"RCPT TO:<victim@example.net>\r\nDATA\r\nforged\r\n"), \
        m["content"]
    assert [a for a, _ in peer.handler.mails] == [SENDER]


# ------------------------------------------------------------------ #
# 2. Takeover                                                        #


class ScriptedPeer(ThreadedServer):
    """An ESMTP server (PIPELINING, 8BITMIME) on 127.0.0.1:port that fails
    on purpose while fault is set, read at each connection:
    "close-in-data" closes the connection after 64 KiB of message text,
    "hang-at-dot" reads the whole message and never answers its dot,
    "hang-greeting" never greets, "refuse-data" says 554 to DATA,
    "hold-354" answers DATA only once the test sets release, "rcpt-252"
    says 252 to MAIL and RCPT, "long-reply" answers the dot with a 250 of 1 100
    octets, "down" says 421 at once; with chunking, it offers CHUNKING and
    answers the first message's first chunk with chunk_reply (a chunk
    refused, with anything but a 2xx, fails the transaction: a LAST after
    it gets 503); "lmtp-drop" gives one reply per recipient after the
    data (LMTP) and, on its first connection, closes after the first;
    "rcpt-control" refuses RCPT with a CR, an escape and a stray byte in
    its text; "rcpt-endless" answers RCPT with continuation lines that
    never end; "rcpt-354" answers RCPT with a 354; "dot-garbage" answers
    the final dot with a line that is no reply; "refuse-mail" says 550
    to MAIL, "refuse-bad" to RCPT TO:<bad@...>; "mail-garbage",
    "rcpt-garbage" and "data-garbage" answer that command with a line
    that is no reply, "stall-rcpt" and "stall-data" never do;
    "defer-data" says 451 to DATA; "early-554" and "early-452" refuse
    the message with that code after 64 KiB of its text, before its end,
    and close the connection; "late-ack-554" (with chunking) reads the
    first chunk, reads no more for a second, then answers it with "250"
    and a refusal of the message, "554", together, and closes; "helo-only" refuses EHLO with 500 and takes HELO (a server
    without extensions).
    Otherwise it says 250 to everything.
    accepted: the messages it said 250 to (CRLF, unstuffed); unacked: the
    whole messages it read and never acknowledged; partial: the
    messages cut short by its own close; data_octets: the message text
    read in all; commands: every command line it read."""

    timeout = 60
    threaded = True

    def __init__(self, fault, port=None, chunking=False, chunk_reply=None):
        self.fault = fault
        self.chunking = chunking
        self.chunk_reply = chunk_reply
        self.messages_seen = 0
        self.accepted, self.unacked, self.partial = [], [], []
        self.delivered = []  # LMTP: the recipients given a 250
        self.data_octets = 0
        self.commands = []
        self.release = threading.Event()
        super().__init__(port, backlog=16)

    def _dialogue(self, conn):
        fault = self.fault
        f = conn.makefile("rb")
        if fault == "hang-greeting":
            f.read()  # until the client gives up
            return
        if fault == "down":
            conn.sendall(b"421 4.3.2 not now\r\n")
            return
        conn.sendall(b"220 peer.example ESMTP\r\n")
        chunks, failed, first = [], False, True
        rcpts = []
        connection = self.connections
        for line in f:
            self.commands.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO" and fault == "helo-only":
                conn.sendall(b"500 5.5.1 command unrecognized\r\n")
            elif verb == b"HELO" and fault == "helo-only":
                conn.sendall(b"250 peer.example\r\n")
            elif verb in (b"EHLO", b"LHLO"):
                conn.sendall(b"250-peer.example\r\n250-PIPELINING\r\n" +
                             (b"250-CHUNKING\r\n" if self.chunking else b"") +
                             b"250 8BITMIME\r\n")
            elif verb == b"BDAT":
                words = line.split()
                chunks.append(f.read(int(words[1])))
                if len(words) > 2:  # LAST
                    if failed:
                        conn.sendall(b"503 5.5.1 the transaction failed\r\n")
                    else:
                        self.accepted.append(b"".join(chunks))
                        conn.sendall(b"250 2.0.0 Ok: kept\r\n")
                    chunks, failed, first = [], False, True
                    continue
                if fault == "late-ack-554":
                    # the client fills the connection meanwhile: its
                    # write fails at the close, both replies unread
                    time.sleep(1)
                    conn.sendall(b"250 2.0.0 chunk ok\r\n"
                                 b"554 5.7.1 not this one\r\n")
                    self.partial.append(b"".join(chunks))
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                if fault and fault.startswith("early-"):  # as in _data
                    conn.sendall(fault[6:].encode() + b" 5.7.1 not this one\r\n")
                    self.partial.append(b"".join(chunks))
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                if first and self.messages_seen == 0 and self.chunk_reply:
                    reply = self.chunk_reply
                    failed = not reply.startswith(b"2")
                else:
                    reply = b"250 2.0.0 chunk ok"
                first = False
                if len(chunks) == 1:
                    self.messages_seen += 1
                conn.sendall(reply + b"\r\n")
            elif verb in (b"RSET", b"MAIL") and chunks:
                chunks, failed, first = [], False, True  # a new transaction
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif fault == "stall-" + verb.decode().lower():
                f.read()  # no reply, until the client gives up
                return
            elif fault == verb.decode().lower() + "-garbage":
                conn.sendall(b"hello there\r\n")
            elif verb == b"RCPT" and fault == "refuse-bad" and b"<bad@" in line:
                conn.sendall(b"550 5.1.1 no such user\r\n")
            elif verb == b"MAIL" and fault == "refuse-mail":
                conn.sendall(b"550 5.7.1 no mail from you\r\n")
            elif verb == b"RCPT" and fault == "rcpt-control":
                conn.sendall(b"550 5.1.1 no such user\rAction: delivered"
                             b"\x1b[31m \xff\r\n")
            elif verb == b"RCPT" and fault == "lmtp-drop":
                rcpts.append(line.split(b"<")[1].split(b">")[0].decode())
                conn.sendall(b"250 2.1.5 Ok\r\n")
            elif verb == b"RCPT" and fault == "rcpt-354":
                conn.sendall(b"354 2.1.5 go ahead\r\n")
            elif verb == b"RCPT" and fault == "rcpt-endless":
                while not self.stopping:  # a reply that never ends
                    conn.sendall(b"250-" + b"x" * 900 + b"\r\n")
                    time.sleep(0.05)
                return
            elif verb in (b"MAIL", b"RCPT") and fault == "rcpt-252":
                conn.sendall(b"252 2.1.5 will try\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif verb == b"DATA" and fault == "defer-data":
                conn.sendall(b"451 4.3.2 not now\r\n")
            elif verb == b"DATA" and fault == "refuse-data":
                conn.sendall(b"554 5.3.0 no data today\r\n")
            elif verb == b"DATA" and fault == "lmtp-drop":
                conn.sendall(b"354 go ahead\r\n")
                if self._data(conn, f, None, reply=False) is None:
                    return
                for rcpt in rcpts:
                    self.delivered.append(rcpt)
                    conn.sendall(b"250 2.0.0 <%s> delivered\r\n" % rcpt.encode())
                    if connection == 1:  # the first: gone after one reply
                        return
                rcpts = []
            elif verb == b"DATA":
                if fault == "hold-354":
                    self.release.wait(30)
                conn.sendall(b"354 go ahead\r\n")
                if not self._data(conn, f, fault):
                    return
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 what?\r\n")

    def _data(self, conn, f, fault, reply=True):
        text = []
        size = 0
        for line in f:
            if line == b".\r\n":
                content = b"".join(text)
                if not reply:
                    return content
                if fault == "hang-at-dot":
                    self.unacked.append(content)
                    f.read()  # no reply, until the client gives up
                    return False
                self.accepted.append(content)
                if fault == "long-reply":
                    conn.sendall(b"250 2.0.0 Ok, and then " + b"x" * 1100 + b"\r\n")
                elif fault == "dot-garbage":
                    conn.sendall(b"hello there\r\n")
                else:
                    conn.sendall(b"250 2.0.0 Ok: kept\r\n")
                return True
            text.append(line[1:] if line.startswith(b".") else line)
            size += len(line)
            self.data_octets += len(line)
            if fault and fault.startswith("early-") and size > 65536:
                # a refusal before the end (no RFC allows it; servers do
                # it when a message is too big or a filter has seen enough)
                conn.sendall(fault[6:].encode() + b" 5.7.1 not this one\r\n")
                self.partial.append(b"".join(text))
                conn.shutdown(socket.SHUT_RDWR)
                return False
            if fault == "close-in-data" and size > 65536:
                self.partial.append(b"".join(text))
                conn.shutdown(socket.SHUT_RDWR)
                return False
        return False


def taken_over(log):
    m = re.search(r'event=takeover .*reason="([^"]+)"', log)
    assert m, "no takeover logged:\n" + log
    return m[1]


TAKEOVERS = ["refused", "hang-greeting", "close-in-data", "hang-at-dot"]


@pytest.mark.parametrize("how", TAKEOVERS)
def test_takeover(tmp, peers, how):
    """The target fails for no protocol reason: the client gets 250 once
    the message is durably spooled (--queue lists it as the 250 arrives),
    and the flusher delivers it once the target is back."""
    port = free_port()
    peer = None
    if how != "refused":
        peer = ScriptedPeer(how, port)
        peers.append(peer)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % port],
                  relay="timeout = 3s\nconnect-timeout = 3s\n")
    msg = big_message("takeover-" + how, 400000)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        t0 = time.monotonic()
        # a connect failure or a silent target at the first RCPT: the
        # recipient is accepted for the spool path
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        rcpt_time = time.monotonic() - t0
        s.cmd("DATA", "354 ")
        t0 = time.monotonic()
        s.send(stuffed(msg))
        reply = s.reply()
        data_time = time.monotonic() - t0
        m = QUEUED.match(reply)
        assert m, reply
        # durable at the moment of the 250, before the session goes on
        listed = queue(cf)
        assert m[1] in listed, listed
    finally:
        log = quit_and_close(s)
    reason = taken_over(log)
    if how == "hang-greeting":
        assert rcpt_time >= 2.9, "the RCPT reply came before the timeout"
        # a silence is told apart from a lost connection
        assert reason.endswith("timed out before the greeting"), reason
    if how == "hang-at-dot":
        assert data_time >= 2.9, "the 250 came before the timeout"
    # the target is back: --flush --now delivers the message, once
    if peer is None:
        peer = ScriptedPeer(None, port)
        peers.append(peer)
    peer.fault = None
    flush(cf, "--now")
    assert queue(cf) == "the spool is empty\n"
    copies = [c for c in peer.accepted if c.endswith(msg)]
    assert len(copies) == 1, "%d acknowledged copies (reason %s)" % (len(copies), reason)
    intact(copies[0], msg)
    # Duplicates: a target that read the whole message and never said so
    # (hang-at-dot) may deliver it anyway, and then holds it twice (RFC
    # 1047); the client has one 250 and the spool one delivery, so at
    # most that one unacknowledged copy may exist, and only then.
    # (the detached delivery after the 250 may meet the same silent target
    # again: one more such copy)
    if how == "hang-at-dot":
        assert len(peer.unacked) >= 1, peer.unacked
    else:
        assert peer.unacked == [], peer.unacked
    assert all(len(p) < len(msg) for p in peer.partial)
    assert maildir_files(os.path.join(tmp, "bounces")) == []


@pytest.mark.parametrize("stall", ["RCPT", "DATA"])
def test_a_silent_target_is_taken_over_within_proxy_timeout(tmp, peers, stall):
    """The client pipelines MAIL, RCPT and DATA, as every MTA does, and
    the target never answers RCPT (DATA). The proxy waited for it the
    relay's whole timeout (300 s), far past the 2 minutes RFC 5321 gives
    the client for DATA's reply: the takeover came after the client had
    gone. It waits proxy-timeout (100 s, 2 s here) at most while the
    client waits, and the message arrives once."""
    peer = ScriptedPeer("stall-" + stall.lower())
    peers.append(peer)
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n'
                  "@example.net next\n" % peer.port,
                  smtpd='[smtpd "mail.example.net"]\nproxy-timeout = 2s\n')
    msg = message("stalled-" + stall)
    s = greeted(cf)
    try:
        t0 = time.monotonic()
        s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\nDATA\r\n"
               % SENDER.encode())
        replies = [s.reply() for _ in range(3)]
        waited = time.monotonic() - t0
        assert replies[1].startswith("250 ") and replies[2].startswith("354 "), replies
        assert 1.9 < waited < 10, waited
        peer.fault = None  # the detached delivery finds it well
        reply = s.data(msg)
    finally:
        log = quit_and_close(s)
    assert QUEUED.match(reply), reply
    assert "no reply in time" in taken_over(log)
    wait_for(lambda: len(peer.accepted) == 1, 30, "the spool's delivery")
    intact(peer.accepted[0], msg)
    nothing_later(cf, tmp)


@pytest.mark.parametrize("command", ["RCPT", "DATA", "."])
def test_takeover_after_a_421(tmp, peers, command):
    """smtp-sink says 421 and hangs up at one command: the target is going
    away, which is no verdict on the message, so the session takes it over;
    the sink started again gets it from the flusher, once."""
    port = free_port()
    sink = SmtpSink(tmp, "-Q", command, port=port, name="closing")
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % port])
    msg = message("four-two-one")
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(msg)
        m = QUEUED.match(reply)
        assert m, reply
        listed = queue(cf)
        assert m[1] in listed, listed
    finally:
        log = quit_and_close(s)
    taken_over(log)
    first = sink.messages()
    sink.stop()
    peers.remove(sink)
    back = SmtpSink(tmp, port=port, name="back")
    peers.append(back)
    flush(cf, "--now")
    assert queue(cf) == "the spool is empty\n"
    (got,) = back.messages()
    assert got[1].endswith(msg.replace(b"\r\n", b"\n"))
    # Duplicates: smtp-sink writes its dump before it answers the dot, so
    # with a 421 to the dot it holds a copy it never accepted for each try
    # (the proxy's, and the detached delivery's right after the 250); a
    # real server that said 421 there has not taken the message
    if command == ".":
        assert len(first) in (1, 2), first
    else:
        assert first == [], first
    assert maildir_files(os.path.join(tmp, "bounces")) == []


def test_takeover_when_the_target_is_killed_mid_data(tmp, peers):
    """smtp-sink is killed (SIGKILL) while a 24 MB message streams to it:
    the client still gets its 250, once the message is durably spooled,
    and the flusher delivers it whole to the sink started again."""
    port = free_port()
    sink = SmtpSink(tmp, port=port, name="killed")
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % port], core="max-message-size = 64M")
    msg = big_message("killed", 24 << 20)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 2.")
        s.cmd("DATA", "354 ")
        sender = threading.Thread(target=s.send, args=(stuffed(msg),), daemon=True)
        sender.start()

        def dumped():
            sizes = [os.path.getsize(os.path.join(sink.dump, p))
                     for p in os.listdir(sink.dump)]
            return sizes and max(sizes) > (2 << 20)
        # mid-data: the sink has written 2 MB of the message
        wait_for(dumped, 120, "the sink to receive 2 MB")
        os.kill(sink.d.proc.pid, signal.SIGKILL)
        sender.join(300)
        assert not sender.is_alive()
        reply = s.reply()
        m = QUEUED.match(reply)
        assert m, reply
        listed = queue(cf)
        assert m[1] in listed, listed
    finally:
        log = quit_and_close(s)
    taken_over(log)
    back = SmtpSink(tmp, port=port, name="back")
    peers.append(back)
    flush(cf, "--now")
    assert queue(cf) == "the spool is empty\n"
    (got,) = back.messages(timeout=60)
    # smtp-sink stores LF lines
    assert got[1].endswith(msg.replace(b"\r\n", b"\n")), (len(got[1]), len(msg))


@pytest.mark.parametrize("path,fault", [
    ("proxy", "early-554"), ("proxy", "early-452"), ("bdat", "early-554"),
    ("spool", "early-554"), ("bdat", "late-ack-554"),
    ("spool-bdat", "late-ack-554")])
def test_a_refusal_before_the_end_of_the_data_is_no_takeover(tmp, peers, path,
                                                             fault):
    """The target refuses a 6 MB message after 64 KiB of it and closes
    the connection, so that writing the rest fails. Its reply is in our
    input: it is the verdict, not a lost connection. The proxy took the
    message over (250 to the client, then the spool deferred it as "lost
    connection" for the queue's lifetime and bounced it: backscatter);
    now the client gets the target's refusal, and nothing is queued. On
    the spool path the delivery records the refusal (a bounce with the
    target's reason) instead of retrying for days. With BDAT to a
    target with CHUNKING, the refusal is that of the first chunk; also
    when it comes behind that chunk's 250, unread when the write fails
    (late-ack: that 250 was taken for the verdict, so a lost
    connection)."""
    code = fault[-3:]
    peer = ScriptedPeer(fault, chunking="bdat" in path)
    peers.append(peer)
    route = '[relay "next"]\naddress = [127.0.0.1]:%d\ntimeout = 5s\n' \
        "[route]\n@example.net next\n" % peer.port
    cf = write_cf(tmp, route, smtpd="" if not path.startswith("spool") else
                  '[smtpd "mail.example.net"]\nproxy = no\n')
    msg = big_message(fault, 6 << 20)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        if "bdat" in path:
            reply = bdat(s, msg, 1 << 20)
        else:
            s.cmd("DATA", "354 ")
            s.send(stuffed(msg))
            reply = s.reply()
    finally:
        log = quit_and_close(s)
    assert peer.partial and peer.accepted == [], "the target took it"
    if not path.startswith("spool"):
        assert reply.startswith(code + " ") and "not this one" in reply, reply
        assert "event=takeover" not in log, log
        rejected(log, "joe@example.net", code + " ")
        nothing_later(cf, tmp)
        return
    assert QUEUED.match(reply), reply
    assert "status=deferred" not in log, log
    (bounce,) = bounces(tmp)
    assert "not this one" in bounce.as_string(), bounce.as_string()
    assert queue(cf) == "the spool is empty\n"


@pytest.mark.parametrize("path", ["proxy", "spool"])
def test_a_target_that_refuses_ehlo_is_greeted_with_helo(tmp, peers, path):
    """A server without extensions answers EHLO with 500 and stays
    greeted (RFC 5321 3.2, RFC 1869 4.7); the client says HELO, as
    Postfix does. The EHLO refusal moved on to the next address, and
    with none left the proxy took the message over, the spool deferred it
    for the queue's lifetime and then bounced it: such a server never got
    mail. Now it gets it, without extension parameters."""
    peer = ScriptedPeer("helo-only")
    peers.append(peer)
    route = '[relay "next"]\naddress = [127.0.0.1]:%d\n[route]\n' \
        "@example.net next\n" % peer.port
    cf = write_cf(tmp, route, smtpd="" if path == "proxy" else
                  '[smtpd "mail.example.net"]\nproxy = no\n')
    msg = message("helo-" + path)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, len(msg)), "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(msg)
    finally:
        log = quit_and_close(s)
    if path == "proxy":
        assert reply == "250 2.0.0 " + SAID + "Ok: kept", reply
        proxied(log, "joe@example.net")
    else:
        assert QUEUED.match(reply), reply
        wait_for(lambda: peer.accepted, 30, "the spool's delivery")
    assert "event=takeover" not in log, log
    (got,) = peer.accepted
    intact(got, msg)
    helo = [c for c in peer.commands if c[:5].upper() in (b"HELO ", b"MAIL ")]
    assert helo == [b"HELO mail.example.net\r\n",
                    b"MAIL FROM:<%s>\r\n" % SENDER.encode()], peer.commands
    nothing_later(cf, tmp)


@pytest.mark.parametrize("opt", ["-e", "-P"])
def test_smtp_sink_without_esmtp_gets_the_mail_through_the_proxy(tmp, peers, opt):
    """smtp-sink -e (no ESMTP) and -P (as behind a Cisco PIX, which hides
    EHLO) answer EHLO "500 5.5.1 Error: unknown command": the proxy
    says HELO and the sink gets the message, where it was taken over and
    deferred on every queue run until it bounced."""
    sink = SmtpSink(tmp, opt)
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    msg = message("no-esmtp" + opt)
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 2.1.5 " + SAID)
        s.cmd("DATA", "354 ")
        reply = s.data(msg)
    finally:
        log = quit_and_close(s)
    assert reply == "250 2.0.0 " + SAID + "Ok", reply
    proxied(log, "joe@example.net")
    (got,) = sink.messages()
    assert got[1].endswith(msg.replace(b"\r\n", b"\n"))
    nothing_later(cf, tmp)


# ------------------------------------------------------------------ #
# 5. Conversion and refusal                                          #


def test_smtputf8_to_a_target_without_it_is_refused_at_rcpt(tmp, peers):
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<j\u00f6rg@example.net>", "550 ")
    finally:
        quit_and_close(s)
    assert got.startswith("550 5.6.7 "), got
    assert "SMTPUTF8" in got
    assert peer.handler.messages == []
    nothing_later(cf, tmp)


def test_smtputf8_that_is_not_needed_is_proxied_without_it(tmp, peers):
    """A client that says SMTPUTF8 whenever it is offered, with an ASCII
    envelope and header: the target without SMTPUTF8 gets it live, MAIL
    without the parameter (RFC 6531 3.4), and a UTF-8 recipient beside
    it is refused alone. Every RCPT was refused with 5.6.7."""
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        got = s.cmd("RCPT TO:<j\u00f6rg@example.net>", "550 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message("ascii"))
    finally:
        quit_and_close(s)
    assert got == ("550 5.6.7 127.0.0.1[127.0.0.1] does not support "
                   "SMTPUTF8, which this recipient needs"), got
    assert reply == "250 2.0.0 127.0.0.1[127.0.0.1] said: Ok: stored", reply
    (m,) = peer.handler.messages
    assert m["rcpts"] == ["joe@example.net"] and "SMTPUTF8" not in m["options"]
    nothing_later(cf, tmp)


def test_a_utf8_header_without_target_smtputf8_is_refused_after_the_data(tmp, peers):
    """The header shows only in the data: the message is refused at its
    end with 5.6.7, the target never gets the end of the data, and
    nothing is left to bounce later."""
    peer = aiosmtpd_peer(peers, enable_SMTPUTF8=False)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER, "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message("Gr\u00fc\u00dfe"))
    finally:
        log = quit_and_close(s)
    assert reply == ("550 5.6.7 127.0.0.1[127.0.0.1] does not support "
                     "SMTPUTF8, which this message's header needs"), reply
    assert peer.handler.messages == []
    assert "to=<joe@example.net>" in log and "dsn=5.6.7" in log, log
    nothing_later(cf, tmp)


@pytest.mark.parametrize("declared", [True, False], ids=["BODY=8BITMIME", "undeclared"])
def test_8bit_to_smtp_sink_without_8bitmime(tmp, peers, declared):
    """Declared: not proxied (the spool path converts). Undeclared: the
    8-bit octet shows only in the data, so the message is taken over. Either
    way it arrives once, as quoted-printable (or base64), intact."""
    sink = SmtpSink(tmp, "-8")
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s>%s" % (SENDER, " BODY=8BITMIME" if declared else ""), "250 ")
        s.cmd("RCPT TO:<joe@example.net>", "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(eightbit_message())
    finally:
        log = quit_and_close(s)
    assert QUEUED.match(reply), reply
    if not declared:
        taken_over(log)
    flush(cf, "--now")
    # smtp-sink dumps as it reads: an abandoned onward transaction leaves
    # a dump without the end of the message, which is no delivery
    dumps = []
    for name in sorted(os.listdir(sink.dump)):
        with open(os.path.join(sink.dump, name), "rb") as f:
            dumps.append(f.read())
    complete = [d for d in dumps if d.endswith(b"\n.dot\n\n")]
    assert len(complete) == 1, dumps
    got = complete[0][complete[0].index(b"\nReceived: from client.example") + 1:-1]
    assert max(got) < 0x80, "8-bit octets went to a 7-bit peer"
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert msg.get_content() == "Gr\u00fc\u00dfe aus K\u00f6ln\n.dot\n"
    assert queue(cf) == "the spool is empty\n"


def test_binarymime_to_a_target_without_it_takes_the_spool_path(tmp, peers):
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<%s> BODY=BINARYMIME" % SENDER, "250 ")
        got = s.cmd("RCPT TO:<joe@example.net>", "250 ")
        data = (b"Subject: binary\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: binary\r\n\r\n" + BINARY_PAYLOAD)
        s.send(b"BDAT %d LAST\r\n" % len(data) + data)
        reply = s.reply()
    finally:
        log = quit_and_close(s)
    # not proxied: our own replies, and the spool converts
    assert "said:" not in got, got
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    assert "via=proxy" not in log
    sent = Sent(reply, log)
    (m,) = sink.messages()
    msg = converted(sent, m[1].replace(b"\n", b"\r\n"), "joe@example.net")
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content() == BINARY_PAYLOAD


# ------------------------------------------------------------------ #
# The MX hosts' addresses while the client waits at RCPT             #


class BlackholeDns:
    """A DNS server on 127.0.0.1 that answers the MX query of domain with
    16 hosts and never answers anything else (the hosts' zone is black-
    holed); it counts the address queries it gets."""

    def __init__(self, domain):
        self.domain = domain
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address_queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _name(msg, off):
        labels = []
        while msg[off]:
            n = msg[off]
            labels.append(msg[off + 1:off + 1 + n].decode())
            off += n + 1
        return ".".join(labels), off + 1

    @staticmethod
    def _wire(name):
        return b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"

    def _serve(self):
        while not self.stopping:
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            name, off = self._name(q, 12)
            qtype = struct.unpack(">H", q[off:off + 2])[0]
            if qtype != 15 or name != self.domain:
                self.address_queries += 1
                continue
            ans = b""
            for i in range(16):
                host = self._wire("mx%d.%s" % (i, self.domain))
                ans += b"\xc0\x0c" + struct.pack(">HHIH", 15, 1, 60, 2 + len(host)) + \
                    struct.pack(">H", 10 + i) + host
            head = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 16, 0, 0)
            self.sock.sendto(head + q[12:off + 4] + ans, peer)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def test_mx_hosts_without_answers_bound_the_rcpt_wait(tmp, peers):
    """The recipient's MX hosts never resolve: the proxy gives finding
    their addresses connect-timeout (30 s for MX) in all, looks them up in
    preference order only, and then the spool takes the recipient (250),
    where it used to wait for every host's AAAA and A (over two minutes)."""
    dns = BlackholeDns("slow.example")
    peers.append(dns)
    cf = write_cf(tmp, "[route]\n@slow.example mx\n", dns_port=dns.port, smtpd="")
    s = greeted(cf)
    s.TIMEOUT = 60
    try:
        s.cmd("MAIL FROM:<%s>" % SENDER, "250 ")
        t0 = time.monotonic()
        s.cmd("RCPT TO:<joe@slow.example>", "250 2.1.5 ")
        waited = time.monotonic() - t0
        s.cmd("RSET", "250 ")
    finally:
        log = quit_and_close(s)
    assert 25 <= waited <= 35, waited
    assert taken_over(log) == "looking up the MX hosts of slow.example took too long", log
    # about 30 s of 4 s queries: the first few hosts only
    assert dns.address_queries <= 16, dns.address_queries


def test_a_target_that_refuses_mail_names_itself_in_the_log(tmp, peers):
    """A recipient refused because the proxy's target refused MAIL: the
    log line names the route target, as a target's refusal of the RCPT
    does (the reply names the peer already)."""
    peer = aiosmtpd_peer(peers)

    async def refuse(server, session, envelope, address, mail_options):
        return "550 5.7.1 sender refused here"
    peer.handler.handle_MAIL = refuse
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    s = greeted(cf)
    try:
        s.cmd("MAIL FROM:<s@example.org>", "250 ")
        s.cmd("RCPT TO:<a@example.net>", "550 ")
    finally:
        log = quit_and_close(s)
    line = status_lines(log)["a@example.net"]
    assert ' target="relay next" status=rejected ' in line, line
