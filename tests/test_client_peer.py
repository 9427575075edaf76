"""The onward client (SPEC 7.2) against a scripted next hop whose replies
real servers send but the happy-path peers of test_onward.py never do: a
3xx where a verdict is due, malformed enhanced status codes, the LOGIN
mechanism's server-first prompts, a long AUTH line, a peer that greets
with our own host name (a loop), and the SNI it is sent.

The peer is a small threaded SMTP server on 127.0.0.1 and a free port,
with Python's ssl for STARTTLS; it records every line it reads and the
SNI it gets, and is stopped when the test ends. Messages go through the
spool (proxy = no) unless a test says otherwise. POSTMASTER names the
binary under test.
"""
import base64
import os
import re
import ssl

import pytest
from pmtest import ThreadedServer, make_cert
from test_onward import (Session, bounces, peers, queue_targets, relay_cf, report,
                         status_lines, submit, tmp, write_cf)

assert peers and tmp  # fixtures, imported for the tests below


class ScriptedPeer(ThreadedServer):
    """An SMTP server whose replies come from keyword arguments:
    greeting, ehlo (the EHLO reply's lines after the first), rcpt and
    dot (replies to RCPT and to the end of the data), auth ("login": the
    LOGIN mechanism's prompts one by one, "ok": 235 at once) and cert
    (a (certificate, key) pair: STARTTLS offered)."""

    def __init__(self, greeting=b"220 peer.test ESMTP", ehlo=(),
                 rcpt=b"250 2.1.5 ok", dot=b"250 2.0.0 stored", auth=None,
                 cert=None, name=b"peer.test"):
        self.greeting, self.ehlo, self.rcpt, self.dot = greeting, ehlo, rcpt, dot
        self.auth, self.cert, self.name = auth, cert, name
        self.lines, self.sni, self.auth_answers = [], [], []
        super().__init__()

    def _send(self, conn, *lines):
        conn.sendall(b"".join(l + b"\r\n" for l in lines))

    def _read(self, f):
        line = f.readline()
        if line:
            self.lines.append(line.rstrip(b"\r\n"))
        return line

    def _starttls(self, conn):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*self.cert)
        ctx.sni_callback = lambda so, name, c: self.sni.append(name)
        return ctx.wrap_socket(conn, server_side=True)

    def _ehlo(self, conn, tls):
        ext = [self.name, b"PIPELINING"]
        if self.cert and not tls:
            ext.append(b"STARTTLS")
        ext += list(self.ehlo) + [b"8BITMIME"]
        self._send(conn, *[b"250-" + e for e in ext[:-1]] + [b"250 " + ext[-1]])

    def _login(self, conn, f):
        for prompt in (b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"):  # Username:, Password:
            self._send(conn, b"334 " + prompt)
            line = self._read(f)
            if not line:
                return
            self.auth_answers.append(base64.b64decode(line.strip()))
        self._send(conn, b"235 2.7.0 ok")

    def _dialogue(self, conn):
        f = conn.makefile("rb")
        self._send(conn, self.greeting)
        tls = False
        while True:
            line = self._read(f)
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"LHLO"):
                self._ehlo(conn, tls)
            elif verb == b"STAR":
                self._send(conn, b"220 2.0.0 go ahead")
                conn = self._starttls(conn)
                f = conn.makefile("rb")
                tls = True
            elif verb == b"AUTH":
                if self.auth == "login":
                    self._login(conn, f)
                else:
                    self._send(conn, b"235 2.7.0 ok")
            elif verb == b"RCPT":
                self._send(conn, self.rcpt)
            elif verb == b"DATA":
                self._send(conn, b"354 go ahead")
                while self._read(f) not in (b".\r\n", b""):
                    pass
                self._send(conn, self.dot)
            elif verb == b"QUIT":
                self._send(conn, b"221 2.0.0 bye")
                return
            else:
                self._send(conn, b"250 2.0.0 ok")

    def commands(self):
        return [l.split(b" ", 1)[0].upper() for l in self.lines]


def scripted(peers, **kw):
    p = ScriptedPeer(**kw)
    peers.append(p)
    return p


def one_message(tmp, peer, relay_keys=""):
    """One message for joe@example.net through the spool to peer (a
    [relay] with relay_keys); its delivery log line."""
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port])
    if relay_keys:
        with open(cf) as f:
            text = f.read()
        with open(cf, "w") as f:
            f.write(text.replace("[route]", relay_keys + "\n[route]", 1))
    sent = submit(cf, ["joe@example.net"])
    return cf, status_lines(sent.log)["joe@example.net"]


# ------------------------------------------------------------------ #
# Replies that are no verdict, malformed enhanced codes               #


@pytest.mark.parametrize("where", ["rcpt", "dot"])
def test_a_3xx_where_a_verdict_is_due_is_a_protocol_error(tmp, peers, where):
    """A 354 to RCPT or to the end of the data is no verdict (RFC 5321
    4.3.2): the recipient is deferred with 451 4.5.0, never kept with a
    made-up status 3.0.0 that would end up in a DSN."""
    reply = b"354 2.1.5 rcpt weird" if where == "rcpt" else b"354 3.0.0 dot weird"
    peer = scripted(peers, **{where: reply})
    cf, line = one_message(tmp, peer)
    assert "status=deferred dsn=4.5.0 " in line, line
    assert 'reply="451 4.5.0 127.0.0.1[127.0.0.1] said: ' in line, line
    assert "weird" in line
    state, attempts, said = queue_targets(cf)["joe@example.net"]
    assert state == "pending" and said.startswith("451 4.5.0 "), said


@pytest.mark.parametrize("text,dsn", [
    (b"550 5.... no such user", "5.0.0"),
    (b"550 5.1.1.1.1 no such user", "5.0.0"),
    (b"550 5.1234.1 no such user", "5.0.0"),
    (b"550 5.1. no such user", "5.0.0"),
    (b"550 4.1.1 no such user", "5.0.0"),   # not the reply's class
    (b"550 5.1.10 no such user", "5.1.10"),  # well formed: kept
])
def test_a_malformed_enhanced_code_is_not_passed_on(tmp, peers, text, dsn):
    """RFC 3463 2: class.subject.detail, 1 to 3 digits each, of the
    reply's class; anything else is replaced by X.0.0 and stays in the
    text, and the bounce's Status field is valid."""
    peer = scripted(peers, rcpt=text)
    _, line = one_message(tmp, peer)
    assert "status=bounced dsn=%s " % dsn in line, line
    said = text[4:].decode()
    if dsn == "5.0.0":
        assert 'said: %s"' % said in line, line
    _, per_rcpt, _, _ = report(bounces(tmp)[0])
    assert per_rcpt["joe@example.net"]["Status"] == dsn


def test_the_proxy_does_not_pass_on_a_malformed_enhanced_code(tmp, peers):
    """Through the live proxy the client itself would get the peer's
    "5.1.1.1.1" in our reply to its RCPT: it gets 5.1.0, the proxy's
    default for a refused RCPT."""
    peer = scripted(peers, rcpt=b"550 5.1.1.1.1 no such user")
    cf = write_cf(tmp, '[relay "next"]\naddress = [127.0.0.1]:%d\n'
                  '[route]\n@example.net next\n' % peer.port, smtpd="")
    s = Session(cf)
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<ann@sender.example>", "250 ")
        got = s.cmd("RCPT TO:<joe@example.net>", "550 ")
        s.cmd("QUIT", "221 ")
    finally:
        s.close()
    assert got == "550 5.1.0 127.0.0.1[127.0.0.1] said: 5.1.1.1.1 no such user", got


# ------------------------------------------------------------------ #
# Outbound AUTH                                                       #

CREDENTIALS = "auth-user = u\nauth-password = secretpw"


def test_auth_login_answers_the_prompts_in_order(tmp, peers):
    """A LOGIN server prompts "Username:" then "Password:" (it takes no
    initial response): it gets the user name, then the password, never
    the password as the user name."""
    peer = scripted(peers, ehlo=[b"AUTH LOGIN"], auth="login",
                    cert=make_cert(tmp, "relay.test"))
    _, line = one_message(tmp, peer, CREDENTIALS)
    assert b"AUTH LOGIN" in peer.lines, peer.lines
    assert peer.auth_answers == [b"u", b"secretpw"], peer.auth_answers
    assert "tls=yes status=sent " in line, line


def test_a_long_auth_line_is_read_to_its_end(tmp, peers):
    """A Cyrus SASL server lists every mechanism it has: PLAIN and LOGIN
    past the 63rd octet of the line are found, and the mail goes."""
    peer = scripted(peers, ehlo=[b"AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 "
                                 b"SCRAM-SHA-1-PLUS SCRAM-SHA-1 DIGEST-MD5 "
                                 b"CRAM-MD5 NTLM LOGIN PLAIN"],
                    auth="ok", cert=make_cert(tmp, "relay.test"))
    _, line = one_message(tmp, peer, CREDENTIALS)
    auth = [l for l in peer.lines if l.startswith(b"AUTH ")]
    assert auth == [b"AUTH PLAIN " + base64.b64encode(b"\0u\0secretpw")], peer.lines
    assert "tls=yes status=sent " in line, line


# ------------------------------------------------------------------ #
# A next hop that is this machine                                     #


@pytest.mark.parametrize("how", ["greeting", "ehlo"])
def test_a_peer_with_our_own_host_name_is_a_loop(tmp, peers, how):
    """A next hop that greets or answers EHLO with our own host name is
    this machine, reached by an address that is no interface's (a NAT's
    public address, 127.0.0.2): the mail bounces 5.4.6 at the first hop,
    as Postfix's does, instead of looping until the hop count; the
    relay's next address is not tried."""
    kw = {"greeting": b"220 Mail.Example.NET ESMTP postmaster"} \
        if how == "greeting" else {"name": b"mail.example.net"}
    peer = scripted(peers, **kw)
    other = scripted(peers)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % peer.port,
                        "[127.0.0.1]:%d" % other.port])
    sent = submit(cf, ["joe@example.net"])
    line = status_lines(sent.log)["joe@example.net"]
    assert "status=bounced dsn=5.4.6 " in line, line
    assert 'reply="554 5.4.6 mail for next loops back to myself ' \
        '(127.0.0.1[127.0.0.1] %s my own host name)"' % (
            "greeted me with" if how == "greeting"
            else "answered EHLO with") in line, line
    assert b"MAIL" not in peer.commands(), peer.lines
    assert other.lines == []
    _, per_rcpt, _, _ = report(bounces(tmp)[0])
    assert per_rcpt["joe@example.net"]["Status"] == "5.4.6"


def test_an_lmtp_server_may_use_our_host_name(tmp, peers):
    """An LMTP server (Dovecot's) runs on this machine and greets with its
    name: no loop there."""
    peer = scripted(peers, greeting=b"220 mail.example.net Dovecot ready.",
                    name=b"mail.example.net")
    _, line = one_message(tmp, peer, "protocol = lmtp")
    assert "status=sent " in line, line


# ------------------------------------------------------------------ #
# SNI                                                                 #


@pytest.mark.parametrize("host", ["[127.0.0.1]", "127.0.0.1"])
def test_no_sni_for_an_address_literal(tmp, peers, host):
    """RFC 6066 3: a host target written as an IP address gets TLS
    without a server name; literal addresses are not host names."""
    peer = scripted(peers, cert=make_cert(tmp, "relay.test"))
    cf = write_cf(tmp, "[route]\n@example.net %s:%d\n" % (host, peer.port))
    sent = submit(cf, ["joe@example.net"])
    line = status_lines(sent.log)["joe@example.net"]
    assert "tls=yes status=sent " in line, line
    assert b"STARTTLS" in peer.commands()
    assert [n for n in peer.sni if n is not None] == [], peer.sni


def test_a_relay_name_goes_as_sni(tmp, peers):
    """The counterpart: a relay's host name is sent."""
    peer = scripted(peers, cert=make_cert(tmp, "relay.test"))
    _, line = one_message(tmp, peer, "name = relay.test")
    assert "tls=yes status=sent " in line, line
    assert peer.sni == ["relay.test"], peer.sni
