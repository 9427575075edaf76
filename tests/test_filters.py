"""The filters a session applies itself (SPEC 8): greet-pause, DNS block
and allow lists, and Postfix's policy delegation protocol.

Sessions run on a pipe, the tcpserver variables saying which client
address they serve (they are trusted for a pipe: session_start.c). The
DNS lists are test zones served by dnsmasq on a free port (core.dns-server
points there); a "never answers" server is a UDP socket the test holds
and never reads. The policy services are a small Python server that
answers each action and records the requests, and postgrey, run
privately on a unix socket in the scratch directory with its own
--dbdir and a 2 s delay. POSTMASTER names the binary under test.
"""
import base64
import glob
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

from pmtest import POSTMASTER, ROOT, Tcpserver, free_port, no_sanitizer_report, remove_tree, scratch_dir, tool, wait_for
from test_onward import Daemon, Dnsmasq

CLIENT = "192.0.2.1"            # listed in bl.test, clear in the others
CLIENT6 = "2001:db8::5"         # listed in bl.test (nibbles)
ALLOWED = "192.0.2.7"           # listed in bl.test and in wl.test
CODED = "192.0.2.9"             # bl.test answers 127.0.0.10 for it


@pytest.fixture
def tmp():
    d = scratch_dir("pm-filters-")
    yield d
    remove_tree(d)


def write_cf(tmp, smtpd="", core="", name="postmaster.cf", listen="25"):
    cf = os.path.join(tmp, name)
    with open(cf, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
{user}
spool-directory = {tmp}/spool
{core}
[smtpd "mx"]
name = mail.example.net
listen-port = {listen}
{smtpd}
[route]
@example.net {tmp}/Maildir/
postmaster {tmp}/Maildir/
""".format(tmp=tmp, core=core, smtpd=smtpd, listen=listen,
           user="user-id = nobody" if ROOT else ""))
    return cf


class Session:
    """postmaster on a pipe, the client at ip; a line-by-line client."""

    def __init__(self, tmp, cf, ip=CLIENT):
        env = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
                   TCPREMOTEIP=ip, TCPREMOTEPORT="40000")
        self.log = os.path.join(tmp, "session.log")
        self.err = open(self.log, "ab")
        self.started = time.monotonic()
        self.buf = b""
        self.p = subprocess.Popen([POSTMASTER, "--config=" + cf], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err)

    def line(self, timeout):
        """One line of output, or "" at its end."""
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.p.stdout], [], [], timeout)
            assert r, "no reply within %s s" % timeout
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")

    def reply(self, timeout=20):
        """One whole reply (its last line), or "" at the end of output."""
        while True:
            line = self.line(timeout)
            if not line or line[3:4] != "-":
                return line

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\r\n")
        self.p.stdin.flush()

    def cmd(self, line, timeout=20):
        self.send(line)
        return self.reply(timeout)

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=20)
        self.err.close()
        text = open(self.log, errors="replace").read()
        no_sanitizer_report(text, "session")
        return text


def transaction(s, rcpts, sender="ann@sender.example", body="Subject: t\r\n\r\nhi"):
    """EHLO, MAIL, each RCPT, DATA when one was accepted: the replies."""
    out = [s.cmd("EHLO client.example"), s.cmd("MAIL FROM:<%s>" % sender)]
    for r in rcpts:
        out.append(s.cmd("RCPT TO:<%s>" % r))
    if any(r.startswith("250") for r in out[2:]):
        assert s.cmd("DATA").startswith("354")
        for line in body.split("\r\n"):
            s.send(line)
        out.append(s.cmd("."))
    out.append(s.cmd("QUIT"))
    return out


def delivered(tmp):
    return [open(p, errors="replace").read()
            for p in sorted(glob.glob(os.path.join(tmp, "Maildir", "new", "*")))]


# ------------------------------------------------------------------ #
# greet-pause                                                        #


def test_greet_pause_refuses_a_client_that_talks_first(tmp):
    cf = write_cf(tmp, "greet-pause = 2")
    s = Session(tmp, cf)
    s.send("EHLO early.example")
    first = s.reply()
    assert first.startswith("554 5.5.0 "), first
    assert s.reply() == ""  # and the session ends
    log = s.close()
    assert "event=pregreet bytes=20" in log
    assert 'data="EHLO early.example\\x0D\\x0A"' in log, log
    assert delivered(tmp) == []


def test_greet_pause_serves_a_client_that_waits(tmp):
    cf = write_cf(tmp, "greet-pause = 1")
    s = Session(tmp, cf)
    greeting = s.reply()
    waited = time.monotonic() - s.started
    assert greeting.startswith("220 "), greeting
    assert waited >= 1.0, waited
    out = transaction(s, ["joe@example.net"])
    assert out[-2].startswith("250 2.0.0"), out
    assert "pregreet" not in s.close()
    assert len(delivered(tmp)) == 1


def test_no_greet_pause_greets_at_once(tmp):
    s = Session(tmp, write_cf(tmp))
    s.send("EHLO early.example")  # no pause: talking first is no offence
    assert s.reply().startswith("220 ")
    assert s.reply().startswith("250 ")
    s.cmd("QUIT")
    s.close()


# ------------------------------------------------------------------ #
# DNS block and allow lists                                          #


def reversed4(ip):
    return ".".join(reversed(ip.split(".")))


def reversed6(ip):
    full = socket.inet_pton(socket.AF_INET6, ip).hex()
    return ".".join(reversed(full))


@pytest.fixture
def zones(tmp):
    records = ["--local=/test/"]
    for ip, zone, answer in [(CLIENT, "bl.test", "127.0.0.2"),
                             (ALLOWED, "bl.test", "127.0.0.2"),
                             (ALLOWED, "wl.test", "127.0.10.3"),
                             (CODED, "bl.test", "127.0.0.10")]:
        records.append("--host-record=%s.%s,%s" % (reversed4(ip), zone, answer))
    records.append("--host-record=%s.bl.test,127.0.0.4" % reversed6(CLIENT6))
    records.append("--host-record=2.0.0.127.bl.test,127.0.0.2")
    d = Dnsmasq(tmp, records)
    yield d
    d.stop()


def dns_cf(tmp, server, smtpd, name="postmaster.cf"):
    return write_cf(tmp, smtpd, "dns-server = 127.0.0.1:%d" % server, name)


def test_dnsbl_listed_client_is_refused_at_rcpt(tmp, zones):
    cf = dns_cf(tmp, zones.port, "dnsbl = clean.test bl.test")
    s = Session(tmp, cf)
    assert s.reply().startswith("220 ")
    out = transaction(s, ["joe@example.net", "postmaster@example.net",
                          "abuse@example.net", "postmaster"])
    assert out[2] == ("554 5.7.1 Service unavailable; client [%s] blocked "
                      "using bl.test" % CLIENT), out
    # postmaster@ and abuse@ stay reachable
    assert out[3].startswith("250 2.1.5"), out
    assert out[4].startswith("250 2.1.5"), out
    assert out[6].startswith("250 2.0.0"), out
    log = s.close()
    # one copy for the three, postmaster's in this Maildir too (it went
    # to the host's /var/mail/root)
    assert len(os.listdir(os.path.join(tmp, "Maildir", "new"))) == 1, log
    assert re.search(r'to=<postmaster> target="maildir [^"]*/Maildir/" '
                     r'status=sent', log), log
    assert "event=dnsbl zone=bl.test answer=127.0.0.2" in log
    q = zones.queries()
    assert ("A", "%s.bl.test" % reversed4(CLIENT)) in q
    assert ("A", "%s.clean.test" % reversed4(CLIENT)) in q


def test_dnsbl_ipv6_client_nibbles(tmp, zones):
    cf = dns_cf(tmp, zones.port, "dnsbl = bl.test")
    s = Session(tmp, cf, ip=CLIENT6)
    s.reply()
    out = transaction(s, ["joe@example.net"])
    assert out[2].startswith("554 5.7.1 Service unavailable; client [%s]" % CLIENT6), out
    s.close()


def test_dnsbl_not_listed_and_code_patterns(tmp, zones):
    # 192.0.2.9 answers 127.0.0.10: outside [2..9], and not 127.0.0.2..127.0.0.9
    for spec in ('"bl.test=127.0.0.[2..9]"', '"bl.test=127.0.0.2..127.0.0.9"',
                 "clean.test"):
        cf = dns_cf(tmp, zones.port, "dnsbl = " + spec)
        s = Session(tmp, cf, ip=CODED)
        s.reply()
        out = transaction(s, ["joe@example.net"])
        assert out[2].startswith("250 2.1.5"), (spec, out)
        s.close()
    cf = dns_cf(tmp, zones.port, 'dnsbl = "bl.test=127.0.0.[2;10]"')
    s = Session(tmp, cf, ip=CODED)
    s.reply()
    assert transaction(s, ["joe@example.net"])[2].startswith("554 5.7.1"), spec
    s.close()


def test_dnswl_allowlisted_client_skips_dnsbl_and_greet_pause(tmp, zones):
    cf = dns_cf(tmp, zones.port,
                "dnsbl = bl.test\ndnswl = \"wl.test=127.0.[0..255].[0..255]\"\n"
                "greet-pause = 3")
    s = Session(tmp, cf, ip=ALLOWED)
    greeting = s.reply()
    assert greeting.startswith("220 "), greeting
    assert time.monotonic() - s.started < 2.5  # the pause ended with the answer
    out = transaction(s, ["joe@example.net"])
    assert out[2].startswith("250 2.1.5"), out
    log = s.close()
    assert "event=dnswl zone=wl.test answer=127.0.10.3" in log


def socket_dialogue(port, source, talk_first=False):
    """A TCP client from source: the lines the server said."""
    with socket.create_connection(("127.0.0.1", port), timeout=20,
                                  source_address=(source, 0)) as c:
        f = c.makefile("rwb")
        if talk_first:
            f.write(b"EHLO early.example\r\n")
            f.flush()
            return [l.decode().rstrip() for l in f]
        said = [f.readline()]
        for cmd in (b"EHLO c.example", b"MAIL FROM:<a@b.example>",
                    b"RCPT TO:<joe@example.net>", b"QUIT"):
            f.write(cmd + b"\r\n")
            f.flush()
            while True:
                line = f.readline()
                said.append(line)
                if line[3:4] != b"-":
                    break
        return [l.decode().rstrip() for l in said]


def test_filters_on_a_socket_under_tcpserver(tmp, zones):
    """The client's real address decides: 127.0.0.2 is listed, 127.0.0.3
    is not; and on a socket too, talking first is refused."""
    cf = os.path.join(tmp, "postmaster.cf")
    srv = Tcpserver([POSTMASTER, "--config=" + cf], os.path.join(tmp, "log"))
    try:
        write_cf(tmp, "dnsbl = bl.test\ngreet-pause = 1\n"
                 "relay-clients = 192.0.2.0/24",
                 "dns-server = 127.0.0.1:%d" % zones.port,
                 listen="127.0.0.1:%d" % srv.port)
        listed = socket_dialogue(srv.port, "127.0.0.2")
        clear = socket_dialogue(srv.port, "127.0.0.3")
        early = socket_dialogue(srv.port, "127.0.0.3", talk_first=True)
    finally:
        log = srv.stop()
    assert listed[0].startswith("220 "), listed
    assert listed[-2] == ("554 5.7.1 Service unavailable; client [127.0.0.2] "
                          "blocked using bl.test"), listed
    assert clear[-2].startswith("250 2.1.5"), clear
    assert len(early) == 1 and early[0].startswith("554 5.5.0 "), early
    assert "event=pregreet bytes=20" in log


def test_dnsbl_spares_authenticated_and_relay_clients(tmp, zones):
    h = subprocess.run([tool("openssl"), "passwd", "-6", "secret"],
                       capture_output=True, text=True, check=True).stdout
    with open(os.path.join(tmp, "users"), "w") as f:
        f.write("joe:%s" % h)
    lists = "dnsbl = bl.test\ndnswl = wl.test\n"
    # 127.0.0.2 is listed; loopback, it may AUTH without TLS
    cf = dns_cf(tmp, zones.port, lists + "auth = optional\nauth-file = %s/users\n"
                "relay-clients = 10.0.0.1" % tmp)
    # a listed client that authenticates sends, without waiting
    s = Session(tmp, cf, ip="127.0.0.2")
    s.reply()
    s.cmd("EHLO client.example")
    assert s.cmd("AUTH PLAIN %s" % base64.b64encode(b"\0joe\0secret").decode()
                 ).startswith("235 ")
    s.cmd("MAIL FROM:<joe@example.net>")
    assert s.cmd("RCPT TO:<ann@example.net>").startswith("250 2.1.5"), s
    s.cmd("QUIT")
    assert "event=dnsbl " not in s.close()
    # the same client unauthenticated is refused
    s = Session(tmp, cf, ip="127.0.0.2")
    s.reply()
    assert transaction(s, ["ann@example.net"])[2].startswith("554 5.7.1 "), s
    s.close()
    # a relay client is not even looked up
    n = len(zones.queries())
    s = Session(tmp, dns_cf(tmp, zones.port, lists + "relay-clients = 192.0.2.0/24",
                            "relay.cf"))
    s.reply()
    assert transaction(s, ["ann@example.net"])[2].startswith("250 2.1.5")
    s.close()
    assert len(zones.queries()) == n, zones.queries()


def test_dns_lists_never_look_up_a_local_pipe(tmp, zones):
    cf = dns_cf(tmp, zones.port, "dnsbl = bl.test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCP")}
    wire = b"EHLO l\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<joe@example.net>\r\nQUIT\r\n"
    r = subprocess.run([POSTMASTER, "--config=" + cf], input=wire, env=env,
                       capture_output=True, timeout=30)
    assert b"250 2.1.5" in r.stdout, r.stdout
    assert zones.queries() == []


@pytest.fixture
def silent_dns():
    """A DNS server that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        yield u


def greeting_ms(tmp, cf):
    s = Session(tmp, cf)
    assert s.reply().startswith("220 ")
    ms = (time.monotonic() - s.started) * 1000
    s.cmd("QUIT")
    s.close()
    return ms


def test_dnsbl_timeout_lets_the_client_through_without_delaying_the_greeting(tmp, silent_dns):
    port = silent_dns.getsockname()[1]
    plain = dns_cf(tmp, port, "")
    listed = dns_cf(tmp, port, "dnsbl = bl.test\ndnswl = wl.test", "lists.cf")
    without = sorted(greeting_ms(tmp, plain) for _ in range(7))[3]
    with_lists = sorted(greeting_ms(tmp, listed) for _ in range(7))[3]
    assert with_lists < without + 25, (without, with_lists)
    s = Session(tmp, listed)
    s.reply()
    t0 = time.monotonic()
    out = transaction(s, ["joe@example.net"])
    waited = time.monotonic() - t0
    assert out[2].startswith("250 2.1.5"), out
    assert 3.0 < waited < 8, waited  # the 5 s bound, counted from the connection
    log = s.close()
    assert "event=dnsbl-timeout zone=bl.test" in log
    assert "event=dnsbl-timeout zone=wl.test" in log
    # the server saw the queries (two per session), and one resend of
    # each in the session that waited
    silent_dns.setblocking(False)
    n = 0
    while True:
        try:
            silent_dns.recv(512)
            n += 1
        except BlockingIOError:
            break
    assert n == 7 * 2 + 4, n


class ScriptedDns:
    """A DNS server on a free UDP port that answers each A query as
    how(packet) says: (delay in s, answer bytes) or None for no answer.
    Records the ids of the queries it saw."""

    def __init__(self, how):
        self.how = how
        self.ids = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                p, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            self.ids.append(p[:2])
            what = self.how(p)
            if what:
                threading.Thread(target=self.answer, args=(what, addr),
                                 daemon=True).start()

    def answer(self, what, addr):
        time.sleep(what[0])
        try:
            self.sock.sendto(what[1], addr)
        except OSError:
            pass

    def stop(self):
        self.sock.close()


def a_answer(p, flags=0x8180, rr=b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\x7f\0\0\2"):
    """The answer to query p: its question, and rr (127.0.0.2) unless empty."""
    o = 12
    while p[o]:
        o += p[o] + 1
    return p[:2] + struct.pack(">HHHHH", flags, 1, 1 if rr else 0, 0, 0) + p[12:o + 5] + rr


def test_dnsbl_answer_to_the_first_query_counts_after_the_resend(tmp):
    # answered 3 s after each query: after the resend at 2 s, inside 5 s
    dns = ScriptedDns(lambda p: (3.0, a_answer(p)))
    try:
        s = Session(tmp, dns_cf(tmp, dns.port, "dnsbl = bl.test"))
        s.reply()
        out = transaction(s, ["joe@example.net"])
        log = s.close()
    finally:
        dns.stop()
    assert out[2].startswith("554 5.7.1 Service unavailable"), out
    assert "dnsbl-timeout" not in log
    assert len(dns.ids) == 2 and dns.ids[0] == dns.ids[1], dns.ids


@pytest.mark.parametrize("pause", [5, 0])
def test_dnsbl_resend_is_made_whatever_the_session_is_doing(tmp, pause):
    """The first query is lost; the first RCPT comes after 5 s: during a
    greet-pause or a slow client's dialogue, the resend still goes out."""
    dns = ScriptedDns(lambda p: (0, a_answer(p)) if dns.ids[1:] else None)
    try:
        s = Session(tmp, dns_cf(tmp, dns.port, "dnsbl = bl.test\ngreet-pause = %d"
                                % pause))
        assert s.reply().startswith("220 ")
        time.sleep(5.2 - (time.monotonic() - s.started))
        out = transaction(s, ["joe@example.net"])
        log = s.close()
    finally:
        dns.stop()
    assert out[2].startswith("554 5.7.1 Service unavailable"), out
    assert "dnsbl-timeout" not in log
    assert len(dns.ids) == 2, dns.ids


def test_allow_lists_are_not_awaited_when_no_block_list_lists(tmp):
    # the block list answers "not listed" at once; the allow list never
    dns = ScriptedDns(lambda p: (0, a_answer(p, flags=0x8183, rr=b""))
                      if b"\x02bl\x04test" in p else None)
    try:
        for lists in ("dnswl = wl.test", "dnsbl = bl.test\ndnswl = wl.test"):
            s = Session(tmp, dns_cf(tmp, dns.port, lists))
            s.reply()
            t0 = time.monotonic()
            out = transaction(s, ["joe@example.net"])
            waited = time.monotonic() - t0
            log = s.close()
            assert out[2].startswith("250 2.1.5"), (lists, out)
            assert waited < 1.5, (lists, waited)
            assert "dnsbl-timeout" not in log, log
    finally:
        dns.stop()


def test_dnsbl_truncated_answer_is_a_failure_not_a_clear(tmp):
    # TC set, no answer record: incomplete, so no "not listed" either
    dns = ScriptedDns(lambda p: (0, a_answer(p, flags=0x8380, rr=b"")))
    try:
        s = Session(tmp, dns_cf(tmp, dns.port, "dnsbl = bl.test"))
        s.reply()
        out = transaction(s, ["joe@example.net"])
        log = s.close()
    finally:
        dns.stop()
    assert out[2].startswith("250 2.1.5"), out  # a failed list lets it through
    assert 'event=dnsbl-error zone=bl.test reason="truncated answer"' in log, log


def test_bad_dns_list_words_are_config_errors(tmp):
    cf = write_cf(tmp, 'dnsbl = "bl.test=127.0.0.[2..x]"\ndnswl = -bad-\n'
                  "greet-pause = soon\npolicy-service = tcp:1.2.3.4\n"
                  "policy-default-action = maybe")
    r = subprocess.run([POSTMASTER, "--check", "--config=" + cf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r.stdout + r.stderr
    err = r.stderr
    assert re.search(r"postmaster\.cf:\d+:9: expected ZONE=d\.d\.d\.d", err), err
    assert re.search(r"postmaster\.cf:\d+:9: expected a DNS zone", err), err
    assert re.search(r"postmaster\.cf:\d+:15: expected a duration", err), err
    assert re.search(r"postmaster\.cf:\d+:18: expected unix:/path or inet:", err), err
    assert re.search(r"postmaster\.cf:\d+:25: expected defer or dunno", err), err


# ------------------------------------------------------------------ #
# The policy service                                                 #


ACTIONS = {
    "ok": "OK",
    "dunno": "dunno",
    "reject": "REJECT go away",
    "rejectbare": "REJECT",
    "defer": "DEFER come back later",
    "dip": "DEFER_IF_PERMIT Greylisted for a while",
    "coded": "553 5.7.9 not you",
    "numeric": "450 slow down",
    "classfix": "REJECT 4.1.1 wrong class",
    "prepend": "PREPEND X-Policy: checked by the test",
    "warn": "WARN looks odd",
    "hold": "HOLD",
    "badprepend": "PREPEND no colon here",
    "longprepend": "PREPEND X-Long: " + "a" * 600,
}
CLOSING = {"closing": "421 4.7.0 closing now"}  # ends the session
HUGE = {"hugeprepend": "PREPEND X-Huge: " + "b" * 1000}


class PolicyServer:
    """Answers every request by the recipient's local part (ACTIONS), or
    by the sender's at END-OF-MESSAGE; records requests and connections."""

    def __init__(self, path, hang=False, once=False, close_unread=False,
                 trickle=0):
        self.path = path
        self.trickle = trickle  # s between lines of an answer
        self.once = once
        self.close_unread = close_unread
        self.requests = []
        self.connections = 0
        self.hang = hang
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(8)
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        f = c.makefile("rwb")
        req = {}
        try:
            for raw in f:
                line = raw.decode().rstrip("\n")
                if line:
                    k, _, v = line.partition("=")
                    req[k] = v
                    continue
                self.requests.append(req)
                if self.hang:
                    time.sleep(5)
                    return
                who = req["recipient"] if req["protocol_state"] == "RCPT" else req["sender"]
                action = {**ACTIONS, **CLOSING, **HUGE}.get(who.split("@")[0], "DUNNO")
                for _ in range(8 if self.trickle else 0):
                    f.write(b"x=1\n")
                    f.flush()
                    time.sleep(self.trickle)
                f.write(("action=%s\n\n" % action).encode())
                f.flush()
                req = {}
                if self.close_unread:
                    # the next request arrives and stays unread: the
                    # close then resets the client's connection
                    select.select([c], [], [], 10)
                    return
                if self.once:
                    return
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def policy(tmp):
    p = PolicyServer(os.path.join(tmp, "policy.sock"))
    yield p
    p.stop()


def test_policy_actions_at_rcpt(tmp, policy):
    cf = write_cf(tmp, "policy-service = unix:" + policy.path)
    s = Session(tmp, cf)
    s.reply()
    rcpts = [k + "@example.net" for k in ACTIONS]
    out = dict(zip(ACTIONS, transaction(s, rcpts)[2:2 + len(ACTIONS)]))
    assert out["ok"].startswith("250 2.1.5")
    assert out["dunno"].startswith("250 2.1.5")
    assert out["reject"] == "550 5.7.1 <reject@example.net>: Recipient address rejected: go away"
    assert out["rejectbare"] == "550 5.7.1 <rejectbare@example.net>: Recipient address rejected: Access denied"
    assert out["defer"] == "450 4.7.1 <defer@example.net>: Recipient address rejected: come back later"
    assert out["dip"] == "450 4.7.1 <dip@example.net>: Recipient address rejected: Greylisted for a while"
    assert out["coded"] == "553 5.7.9 <coded@example.net>: Recipient address rejected: not you"
    assert out["numeric"] == "450 4.7.1 <numeric@example.net>: Recipient address rejected: slow down"
    assert out["classfix"] == "550 5.1.1 <classfix@example.net>: Recipient address rejected: wrong class"
    assert out["prepend"].startswith("250 2.1.5")
    assert out["warn"].startswith("250 2.1.5")
    assert out["hold"] == "451 4.3.5 Server configuration error"
    assert out["badprepend"] == "451 4.3.5 Server configuration error"
    assert out["longprepend"].startswith("250 2.1.5")
    log = s.close()
    assert "event=policy-unknown-action state=RCPT action=HOLD" in log
    assert 'event=policy state=RCPT action="REJECT go away"' in log
    assert 'event=policy state=RCPT action="WARN looks odd"' in log
    assert "action=OK" not in log and "action=dunno" not in log
    # one connection for the whole session, kept open (as Postfix does)
    assert policy.connections == 1
    # the attributes, by Postfix's names
    r = policy.requests[0]
    assert r["request"] == "smtpd_access_policy"
    assert r["protocol_state"] == "RCPT"
    assert r["protocol_name"] == "ESMTP"
    assert r["helo_name"] == "client.example"
    assert r["sender"] == "ann@sender.example"
    assert r["recipient"] == "ok@example.net"
    assert r["client_address"] == CLIENT
    assert r["client_name"] == "unknown"
    assert r["recipient_count"] == "0"
    for k in ("queue_id", "instance", "reverse_client_name", "sasl_method",
              "sasl_username", "sasl_sender", "size", "ccert_subject",
              "ccert_issuer", "ccert_fingerprint", "encryption_protocol",
              "encryption_cipher", "encryption_keysize"):
        assert k in r, k
    # PREPEND: on top of the stored message, above our Received
    msgs = delivered(tmp)
    assert len(msgs) == 1
    assert "\nX-Policy: checked by the test\n" in msgs[0], msgs[0][:300]
    assert msgs[0].index("X-Policy:") < msgs[0].index("Received:")
    # a long field whole, never cut; the one too long not at all
    assert "\nX-Long: " + "a" * 600 + "\n" in msgs[0], msgs[0][:1500]


def test_a_policy_prepend_too_long_is_refused_not_cut(tmp, policy):
    s = Session(tmp, write_cf(tmp, "policy-service = unix:" + policy.path))
    s.reply()
    out = transaction(s, ["hugeprepend@example.net", "joe@example.net"])
    assert out[2] == "451 4.3.5 Server configuration error", out
    assert out[-2].startswith("250 2.0.0"), out
    assert "event=policy-unknown-action" in s.close()
    assert "X-Huge" not in delivered(tmp)[0]


def test_a_policy_421_ends_the_session(tmp, policy):
    """A 421 closes the channel (RFC 5321 4.2.2), the policy service's
    too: nothing is answered after it (the dialogue once went on)."""
    cf = write_cf(tmp, "policy-service = unix:" + policy.path)
    s = Session(tmp, cf)
    s.reply()
    s.cmd("EHLO client.example")
    s.cmd("MAIL FROM:<ann@sender.example>")
    got = s.cmd("RCPT TO:<closing@example.net>")
    assert got.startswith("421 4.7.0 ") and "closing now" in got, got
    try:
        s.send("RCPT TO:<ok@example.net>")
    except BrokenPipeError:
        pass  # the session is gone
    assert s.reply() == ""
    s.close()
    assert delivered(tmp) == []


def test_policy_at_end_of_message(tmp, policy):
    cf = write_cf(tmp, "policy-service = unix:%s\npolicy-end-of-data = yes" % policy.path)
    s = Session(tmp, cf)
    s.reply()
    out = transaction(s, ["joe@example.net"], sender="reject@sender.example")
    assert out[2].startswith("250 2.1.5"), out
    assert out[3] == "550 5.7.1 End-of-data rejected: go away", out
    log = s.close()
    assert delivered(tmp) == []  # nothing half-done is delivered
    # the recipient's result line, as for every other refusal (SPEC 9)
    assert re.search(r'from=<reject@sender\.example> to=<joe@example\.net> '
                     r'target="maildir [^"]*" status=rejected dsn=5\.7\.1 ',
                     log), log
    assert 'reply="550 5.7.1 End-of-data rejected: go away"' in log, log
    eom = [r for r in policy.requests if r["protocol_state"] == "END-OF-MESSAGE"]
    assert len(eom) == 1
    assert eom[0]["recipient_count"] == "1"
    assert int(eom[0]["size"]) > 0
    s = Session(tmp, cf)
    s.reply()
    assert transaction(s, ["joe@example.net"])[3].startswith("250 2.0.0")
    s.close()
    assert len(delivered(tmp)) == 1


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_lmtp_policy_refusal_at_end_of_message_answers_each_recipient(tmp, policy, how):
    cf = write_cf(tmp, "policy-service = unix:%s\npolicy-end-of-data = yes" % policy.path)
    s = Session(tmp, cf)
    s.reply()
    s.cmd("LHLO client.example")
    s.cmd("MAIL FROM:<reject@sender.example>")
    for u in ("a", "b", "c"):
        assert s.cmd("RCPT TO:<%s@example.net>" % u).startswith("250")
    body = "Subject: t\r\n\r\nhi\r\n"
    if how == "DATA":
        assert s.cmd("DATA").startswith("354")
        s.send(body + ".")
    else:
        s.p.stdin.write(("BDAT %d LAST\r\n%s" % (len(body), body)).encode())
    s.send("NOOP")
    replies = [s.reply() for _ in range(4)]
    s.cmd("QUIT")
    s.close()
    # RFC 2033 4.2: one reply per recipient, then the NOOP's
    assert replies[:3] == ["550 5.7.1 End-of-data rejected: go away"] * 3, replies
    assert replies[3].startswith("250 2.0.0"), replies
    assert delivered(tmp) == []


def test_policy_service_down_or_hanging(tmp):
    missing = os.path.join(tmp, "nobody-listens.sock")
    for extra, want in (("", "451 4.3.5 "),
                        ("policy-default-action = dunno", "250 2.1.5")):
        cf = write_cf(tmp, "policy-service = unix:%s\n%s" % (missing, extra))
        s = Session(tmp, cf)
        s.reply()
        out = transaction(s, ["joe@example.net"])
        assert out[2].startswith(want), (extra, out)
        log = s.close()
        assert "event=policy-error" in log
    hang = PolicyServer(os.path.join(tmp, "hang.sock"), hang=True)
    try:
        cf = write_cf(tmp, "policy-service = unix:%s\npolicy-timeout = 1" % hang.path)
        s = Session(tmp, cf)
        s.reply()
        t0 = time.monotonic()
        out = transaction(s, ["joe@example.net"])
        assert out[2].startswith("451 4.3.5 "), out
        assert time.monotonic() - t0 < 4
        assert "timed out" in s.close()
    finally:
        hang.stop()


def test_policy_timeout_bounds_the_whole_answer(tmp):
    # eight lines 0.4 s apart: each within the 1 s timeout, the answer not
    slow = PolicyServer(os.path.join(tmp, "slow.sock"), trickle=0.4)
    try:
        cf = write_cf(tmp, "policy-service = unix:%s\npolicy-timeout = 1" % slow.path)
        s = Session(tmp, cf)
        s.reply()
        t0 = time.monotonic()
        out = transaction(s, ["ok@example.net"])
        waited = time.monotonic() - t0
        log = s.close()
    finally:
        slow.stop()
    assert out[2].startswith("451 4.3.5 "), out
    assert waited < 2.5, waited
    assert "timed out waiting for the answer" in log, log


@pytest.mark.parametrize("how", ["once", "close_unread"])
def test_policy_service_that_closes_after_each_answer(tmp, how):
    """A kept connection the service has closed is opened again: closed
    at its end of file (once), or as our next request arrives, which it
    leaves unread, so that the session's read is reset (close_unread)."""
    p = PolicyServer(os.path.join(tmp, "once.sock"), **{how: True})
    try:
        cf = write_cf(tmp, "policy-service = unix:" + p.path)
        s = Session(tmp, cf)
        s.reply()
        out = transaction(s, ["reject@example.net", "defer@example.net",
                              "ok@example.net"])
        s.close()
    finally:
        p.stop()
    assert out[2].startswith("550 5.7.1 "), out
    assert out[3].startswith("450 4.7.1 "), out
    assert out[4].startswith("250 2.1.5"), out
    assert p.connections == 3


class SloppyPolicy(PolicyServer):
    """Answers REJECT to a recipient whose local part is "reject", DUNNO to
    the others, each answer followed by extra (more than an answer)."""

    def __init__(self, path, extra):
        self.extra = extra
        super().__init__(path)

    def serve(self, c):
        rcpt = ""
        try:
            for raw in c.makefile("rb"):
                if raw.startswith(b"recipient="):
                    rcpt = raw[10:].decode().strip()
                if raw == b"\n":
                    action = "REJECT no" if rcpt.startswith("reject@") else "DUNNO"
                    c.sendall(("action=%s\n\n" % action).encode() + self.extra)
        except OSError:
            pass
        finally:
            c.close()


@pytest.mark.parametrize("extra", [b"\n", b"action=REJECT stale\n\n"])
def test_a_service_that_sends_more_than_its_answer_is_not_read_out_of_step(tmp, extra):
    """A service that sends a blank line too many, or a second answer: what
    it sent too much was once read as the answer to the next request, so
    every other recipient got 451 4.3.5 ("an answer without action=") or
    another recipient's 550 (the stale answer). The connection is opened
    again instead, and each recipient gets its own answer."""
    p = SloppyPolicy(os.path.join(tmp, "sloppy.sock"), extra)
    try:
        cf = write_cf(tmp, "policy-service = unix:" + p.path)
        s = Session(tmp, cf)
        s.reply()
        out = transaction(s, ["a@example.net", "b@example.net",
                              "reject@example.net", "c@example.net"])
        log = s.close()
    finally:
        p.stop()
    assert [r[:9] for r in out[2:6]] == ["250 2.1.5", "250 2.1.5",
                                        "550 5.7.1", "250 2.1.5"], out
    assert out[6].startswith("250 2.0.0"), out
    assert "policy-error" not in log and "stale" not in log, log
    assert len(delivered(tmp)) == 1


def test_policy_over_inet(tmp):
    port = free_port()
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    got = []

    def serve():
        c, _ = srv.accept()
        f = c.makefile("rwb")
        for raw in f:
            got.append(raw)
            if raw == b"\n":
                f.write(b"action=REJECT inet says no\n\n")
                f.flush()
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    cf = write_cf(tmp, "policy-service = inet:127.0.0.1:%d" % port)
    s = Session(tmp, cf)
    s.reply()
    out = transaction(s, ["joe@example.net"])
    assert out[2].endswith("Recipient address rejected: inet says no"), out
    s.close()
    srv.close()
    assert b"request=smtpd_access_policy\n" in got


@pytest.fixture
def postgrey(tmp):
    if not os.path.exists("/usr/sbin/postgrey"):
        pytest.skip("postgrey is not installed (make deps)")
    db = os.path.join(tmp, "postgrey-db")
    os.mkdir(db)
    os.chmod(db, 0o777)
    sock = os.path.join(tmp, "postgrey.sock")
    argv = ["/usr/sbin/postgrey", "--unix=" + sock, "--dbdir=" + db,
            "--delay=2", "--pidfile=" + os.path.join(tmp, "postgrey.pid"),
            "--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
            "--hostname=mail.example.net"]
    if ROOT:
        argv += ["--user=nobody", "--group=nogroup"]
    d = Daemon(argv, os.path.join(tmp, "postgrey.log"),
               lambda: os.path.exists(sock), "postgrey", timeout=30)
    yield sock
    d.stop()


def test_postgrey_greylists_then_accepts(tmp, postgrey):
    cf = write_cf(tmp, "policy-service = unix:" + postgrey)
    s = Session(tmp, cf)
    s.reply()
    first = transaction(s, ["joe@example.net"])[2]
    s.close()
    # postgrey's DEFER_IF_PERMIT with its own enhanced code
    assert first.startswith("450 4.2.0 <joe@example.net>: Recipient address "
                            "rejected: Greylisted, see http"), first
    time.sleep(3)
    s = Session(tmp, cf)
    s.reply()
    out = transaction(s, ["joe@example.net"])
    s.close()
    assert out[2].startswith("250 2.1.5"), out
    assert out[3].startswith("250 2.0.0"), out
    msgs = delivered(tmp)
    assert len(msgs) == 1
    assert re.search(r"\nX-Greylist: delayed \d+ seconds by postgrey-[^\n]*\nReceived: ",
                     msgs[0]), msgs[0][:300]
