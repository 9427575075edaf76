"""Relay trust comes from the connection (SPEC 4 and 6): which [smtpd]
section serves is decided by the address a connection really arrived at,
and relaying without AUTH only for clients whose real address is in
relay-clients. Launchers: a pipe with forged tcpserver variables,
tcpserver and systemd-socket-activate on loopback, and both on a
non-loopback address (192.0.2.1 on a dummy interface, or on lo
where the kernel has no dummy interfaces) inside a private
network namespace, with smtplib (STARTTLS + AUTH) as the client there.
"""
import json
import os
import re
import smtplib
import socket
import subprocess
import sys

import pytest

from pmtest import (POSTMASTER, ROOT, Tcpserver, free_port, make_cert, no_sanitizer_report,
                    remove_tree, scratch_dir, tool, wait_for)


@pytest.fixture
def tmp():
    d = scratch_dir("pm-relay-")
    yield d
    remove_tree(d)


def write_cf(tmp, smtpd, routes="@ mx\n", name="cf"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {tmp}/spool
{user}
{smtpd}
[route]
joe@example.net {tmp}/Maildir/
{routes}""".format(tmp=tmp, smtpd=smtpd, routes=routes,
                   user="user-id = nobody" if ROOT else ""))
    return path


DIALOGUE = (b"EHLO client.example\r\nMAIL FROM:<s@203.example>\r\n"
            b"RCPT TO:<victim@mx.test>\r\nRCPT TO:<joe@example.net>\r\nQUIT\r\n")


def pipe_session(cf, env, *args, dialogue=DIALOGUE):
    e = dict(os.environ)
    for k in ("TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT"):
        e.pop(k, None)
    e.update(env)
    r = subprocess.run([POSTMASTER, "--config=" + cf, *args], input=dialogue, env=e,
                       capture_output=True, timeout=30)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    return r.stdout.decode(), r.stderr.decode(errors="replace"), r.returncode


def replies(out):
    """The final line of every reply."""
    return [l for l in out.split("\r\n") if len(l) > 3 and l[3] == " "]


# ------------------------------------------------- the issue's reproducer

FORGED = {"TCPLOCALIP": "192.0.2.2", "TCPLOCALPORT": "2664", "TCPREMOTEIP": "203.0.113.9"}


@pytest.mark.parametrize("args", [(), ("--smtpd=local",)])
def test_forged_variables_for_another_address_get_421(tmp, args):
    cf = write_cf(tmp, '[smtpd "local"]\nlisten-port = 127.0.0.1:2664\n')
    out, log, rc = pipe_session(cf, FORGED, *args)
    assert out.startswith("421 4.3.5 "), out
    assert "250" not in out
    assert rc == 75
    assert "arrived" in log and "192.0.2.2 port 2664" in log, log
    assert os.listdir(os.path.join(tmp, "spool")) == []


@pytest.mark.parametrize("listen,local,served", [
    ("0.0.0.0:2664", "127.0.0.1", True), ("0.0.0.0:2664", "192.0.2.2", True),
    ("0.0.0.0:2664", "::1", False), ("[::]:2664", "::1", True),
    ("[::]:2664", "192.0.2.2", True), ("[0:0::0]:2664", "2001:db8::1", True),
    ("0.0.0.0:2665", "127.0.0.1", False)])
def test_unspecified_listen_address_is_the_wildcard(tmp, listen, local, served):
    # listen-port = 0.0.0.0:25 is what ListenStream= or tcpserver 0 say:
    # every address of the family ([::] also takes IPv4 connections)
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = %s\n' % listen)
    env = dict(FORGED, TCPLOCALIP=local)
    out, log, rc = pipe_session(cf, env)
    if served:
        assert out.startswith("220 mx ESMTP"), out + log
        assert "250 2.1.5 Recipient <joe@example.net> OK" in out, out
    else:
        assert out.startswith("421 4.3.5 "), out
        assert "%s port 2664" % local in log, log


def test_outside_client_cannot_relay_through_a_catch_all(tmp):
    # the variables say the connection came to the listener's address,
    # from an outside client: served, but never relayed
    cf = write_cf(tmp, '[smtpd "local"]\nlisten-port = 127.0.0.1:2664\n')
    env = dict(FORGED, TCPLOCALIP="127.0.0.1")
    out, log, rc = pipe_session(cf, env, "--smtpd=local")
    assert replies(out)[3:5] == ["554 5.7.1 <victim@mx.test>: relaying denied",
                                 "250 2.1.5 Recipient <joe@example.net> OK"], out
    assert "status=rejected dsn=5.7.1" in log
    assert os.listdir(os.path.join(tmp, "spool")) == []


def test_auth_optional_catch_all_smarthost_does_not_relay_for_outsiders(tmp):
    # a configuration the old --check refused as an open relay, served
    # anyway: the session enforces the rule
    crt, key = make_cert(tmp, "mail.example.net")
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("anna:$6$x$y\n")
    cf = write_cf(tmp, """[relay "smarthost"]
address = [192.0.2.9]:2525
[smtpd "mx"]
listen-port = 25
tls = starttls
tls-certificate = {crt}
tls-key = {key}
auth = optional
auth-file = {users}
proxy = no
""".format(crt=crt, key=key, users=users), routes="@ smarthost\n")
    env = {"TCPLOCALIP": "198.51.100.7", "TCPLOCALPORT": "25", "TCPREMOTEIP": "203.0.113.9"}
    out, log, rc = pipe_session(cf, env)
    assert replies(out)[3] == "554 5.7.1 <victim@mx.test>: relaying denied", out
    # a local pipe is loopback: it relays (and the target is queued)
    out, log, rc = pipe_session(cf, {})
    assert replies(out)[3] == "250 2.1.5 Recipient <victim@mx.test> OK", out


# The relaying decision is the point here, not the delivery: proxy = no
# keeps the accepted remote recipient from being looked up (mx.test)
# and connected to during the session.
def test_relay_clients_lists_networks(tmp):
    smtpd = ('[smtpd "mx"]\nlisten-port = 25\nrelay-clients = 192.0.2.0/24 2001:db8::/32\n'
             'proxy = no\n')
    cf = write_cf(tmp, smtpd)
    for peer, want in [("192.0.2.77", "250 2.1.5"), ("192.0.3.1", "554 5.7.1"),
                       ("2001:db8::5", "250 2.1.5"), ("2001:db9::5", "554 5.7.1"),
                       ("127.0.0.1", "554 5.7.1")]:
        env = {"TCPLOCALIP": "198.51.100.7", "TCPLOCALPORT": "25", "TCPREMOTEIP": peer}
        out, log, rc = pipe_session(cf, env)
        assert replies(out)[3].startswith(want), (peer, out)
    # a local pipe is loopback, which this list leaves out
    out, log, rc = pipe_session(cf, {})
    assert replies(out)[3].startswith("554 5.7.1"), out


def test_an_ipv4_client_written_mapped_is_the_same_client(tmp):
    """An IPv6 tcpserver reports an IPv4 client as ::ffff:a.b.c.d: it
    gets the answer the plain address gets, whichever way relay-clients
    writes the network."""
    for nets in ("192.0.2.0/24", "::ffff:192.0.2.0/120"):
        cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\nrelay-clients = %s\n'
                      'proxy = no\n' % nets)
        for peer, want in [("192.0.2.77", "250 2.1.5"), ("::ffff:192.0.2.77", "250 2.1.5"),
                           ("192.0.3.1", "554 5.7.1"), ("::ffff:192.0.3.1", "554 5.7.1")]:
            env = {"TCPLOCALIP": "198.51.100.7", "TCPLOCALPORT": "25", "TCPREMOTEIP": peer}
            out, log, rc = pipe_session(cf, env)
            assert replies(out)[3].startswith(want), (nets, peer, out)
            # and it is logged as the IPv4 client it is (as getpeername()
            # gives it, and as Postfix's smtpd writes it)
            assert "client=%s " % peer.replace("::ffff:", "") in log, log


def test_relay_clients_none_and_default(tmp):
    out, _, _ = pipe_session(write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\n'
                                      'relay-clients = none\n'), {})
    assert replies(out)[3].startswith("554 5.7.1"), out
    out, _, _ = pipe_session(write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\nproxy = no\n'),
                             {})
    assert replies(out)[3].startswith("250 2.1.5"), out
    # the built-in listener (no [smtpd]) trusts loopback only; it proxies,
    # so remote mail goes to a closed loopback port: refused at once, the
    # recipient is accepted for the spool
    cf = write_cf(tmp, "", routes="@ [127.0.0.1]:%d\n" % free_port())
    out, _, _ = pipe_session(cf, {})
    assert replies(out)[3].startswith("250 2.1.5"), out
    env = {"TCPLOCALIP": "198.51.100.7", "TCPLOCALPORT": "25", "TCPREMOTEIP": "203.0.113.9"}
    out, _, _ = pipe_session(cf, env)
    assert replies(out)[3].startswith("554 5.7.1"), out


@pytest.mark.parametrize("value,col,why", [
    ("10.0.0.0/33", 17, "expected a prefix length from 0 to 32"),
    ("10.0.0.1/8", 17, "expected a network address: bits are set beyond the prefix length"),
    ("mail.example.net", 17, "expected loopback, none, an IP address or a network"),
    ("2001:db8::/129", 17, "expected a prefix length from 0 to 128"),
    ("10.0.0.0/08", 17, "expected a prefix length after '/'"),
    ("loopback none", 26, "expected 'none' alone"),
])
def test_relay_clients_syntax(tmp, value, col, why):
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\nrelay-clients = %s\n' % value)
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"], capture_output=True, text=True)
    assert r.returncode == 78
    assert r.stderr.startswith("%s:8:%d: %s" % (cf, col, why)), r.stderr


def test_route_shows_the_relay_rule(tmp):
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 25\n')
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--route=victim@mx.test"],
                       capture_output=True, text=True)
    assert "relaying: mx.test is not this host's, no @mx.test line takes it, " \
           "and no line names <victim@mx.test>; only relay-clients and " \
           "authenticated clients may send to it, others get 554 5.7.1" in r.stdout, r.stdout
    # the last line is what such a client hears, as the session says it
    assert r.stdout.endswith(
        "relay-clients and authenticated clients: 250 2.1.5 <victim@mx.test> OK\n"
        "554 5.7.1 <victim@mx.test>: relaying denied\n"), r.stdout
    assert r.returncode == 67
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--route=joe@example.net"],
                       capture_output=True, text=True)
    assert "relaying" not in r.stdout
    assert r.stdout.endswith("\n250 2.1.5 <joe@example.net> OK\n") and r.returncode == 0
    # a unix listener's clients are local submitters: authenticated by
    # their uid and never proxied, so the 554 is no client's
    sub = write_cf(tmp, '[smtpd "submit"]\nlisten-port = unix:%s/sock\n'
                   '[relay "hub"]\naddress = 192.0.2.1\n[route]\n@ hub\n'
                   % tmp)
    r = subprocess.run([POSTMASTER, "--config=" + sub, "--smtpd=submit",
                        "--route=victim@mx.test"], capture_output=True, text=True)
    assert r.stdout.endswith("delivery: through the spool\n"
                             "250 2.1.5 <victim@mx.test> OK\n"), r.stdout
    assert r.returncode == 0


POSTMASTER_DIALOGUE = (b"EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\n"
                       b"RCPT TO:<nobody@example.org>\r\nRCPT TO:<Postmaster@EXAMPLE.ORG>\r\n"
                       b"RCPT TO:<postmaster+x@example.org>\r\nRCPT TO:<postmaster@mx.test>\r\n"
                       b"RCPT TO:<postmaster+x%mx.test@example.org>\r\nQUIT\r\n")


def test_postmaster_at_a_listed_users_domain_behind_a_relay(tmp):
    """RFC 5321 4.5.1: postmaster at a local domain is this site's, even
    when the domain's users are listed one by one (no @domain line) and
    postmaster's mailbox is behind a [relay]: every client reaches it.
    Nothing else is opened: another user, postmaster at a remote domain,
    a postmaster local part that names another destination."""
    cf = write_cf(tmp, """recipient-delimiter = +
[relay "dovecot"]
address = [127.0.0.1]:%d
protocol = lmtp
[smtpd "mx"]
listen-port = 25
proxy = no
routing-table = mx
[route "mx"]
joe@example.org dovecot
ann@example.org dovecot
""" % free_port(), routes="postmaster joe@example.org\n")
    env = {"TCPLOCALIP": "198.51.100.7", "TCPLOCALPORT": "25", "TCPREMOTEIP": "203.0.113.9"}
    out, log, rc = pipe_session(cf, env, dialogue=POSTMASTER_DIALOGUE)
    assert replies(out)[3:8] == [
        "550 5.1.1 <nobody@example.org>: user unknown",
        "250 2.1.5 Recipient <Postmaster@EXAMPLE.ORG> OK",
        "250 2.1.5 Recipient <postmaster+x@example.org> OK",
        "550 5.7.1 <postmaster@mx.test>: relaying denied",
        "554 5.7.1 <postmaster+x%mx.test@example.org>: relaying denied"], out
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--route=Postmaster@EXAMPLE.ORG"],
                       capture_output=True, text=True)
    assert "=> relay dovecot for <joe@example.org>" in r.stdout, r.stdout
    assert "relaying" not in r.stdout
    assert r.stdout.endswith("\n250 2.1.5 <Postmaster@EXAMPLE.ORG> OK\n"), r.stdout


# --------------------------------------------- launchers on loopback

def test_tcpserver_connection_to_another_port_is_refused(tmp):
    # the section listens on a port this connection did not arrive at
    other = free_port()
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 127.0.0.1:%d\n' % other)
    srv = Tcpserver([POSTMASTER, "--config=" + cf, "--smtpd=mx"], os.path.join(tmp, "log"))
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as c:
            greeting = c.makefile("rb").readline()
    finally:
        log = srv.stop()
    assert greeting.startswith(b"421 4.3.5 "), greeting
    assert "127.0.0.1 port %d" % srv.port in log, log


def test_socket_activate_ignores_forged_variables(tmp):
    # systemd-socket-activate passes the environment on: the variables
    # claim the listener's port, the socket says otherwise
    other, port = free_port(), free_port()
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 127.0.0.1:%d\n' % other)
    log = open(os.path.join(tmp, "log"), "wb")
    p = subprocess.Popen([tool("systemd-socket-activate"), "-l", "127.0.0.1:%d" % port, "-a",
                          "-E", "TCPLOCALIP=127.0.0.1", "-E", "TCPLOCALPORT=%d" % other,
                          "-E", "TCPREMOTEIP=127.0.0.1",
                          POSTMASTER, "--config=" + cf, "--smtpd=mx"],
                         stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        c = wait_for(lambda: _connect(port), what="systemd-socket-activate")
        with c:
            greeting = c.makefile("rb").readline()
    finally:
        os.killpg(p.pid, 9)
        p.wait()
        log.close()
    assert greeting.startswith(b"421 4.3.5 "), greeting


def _session_over(host, port, dialogue=DIALOGUE):
    """What the server says to dialogue, sent at once from host."""
    with socket.create_connection((host, port), timeout=10) as c:
        c.sendall(dialogue)
        f = c.makefile("rb")
        return f.read().decode()


def test_a_dual_stack_socket_keeps_ipv4_clients_ipv4(tmp):
    """systemd's ListenStream=25 binds [::] with IPV6_V6ONLY off: an IPv4
    client arrives as ::ffff:127.0.0.1 from ::ffff:127.0.0.1. It is the
    IPv4 client in the log and for relay-clients, and a listen-port that
    writes the local address IPv4-mapped (as ss(8) shows it) serves it;
    an IPv6 client is not in an IPv4 network."""
    port = free_port()
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = [::ffff:127.0.0.1]:%d\n'
                  'relay-clients = 127.0.0.0/8\nproxy = no\n' % port)
    log = open(os.path.join(tmp, "log"), "wb")
    p = subprocess.Popen([tool("systemd-socket-activate"), "-l", "[::]:%d" % port, "-a",
                          POSTMASTER, "--config=" + cf, "--smtpd=mx"],
                         stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        wait_for(lambda: _connect(port), what="systemd-socket-activate")
        out = _session_over("127.0.0.1", port)
        write_cf(tmp, '[smtpd "mx"]\nlisten-port = %d\nrelay-clients = 127.0.0.0/8\n'
                 'proxy = no\n' % port)
        out6 = _session_over("::1", port)
        text = wait_for(lambda: (lambda s: s.count("event=disconnect") >= 3 and s)(
            open(os.path.join(tmp, "log")).read()), what="the sessions' logs")
    finally:
        os.killpg(p.pid, 9)
        p.wait()
        log.close()
    assert out.startswith("220 mx ESMTP postmaster\r\n"), out
    assert replies(out)[3].startswith("250 2.1.5"), out
    assert re.search(r"event=connect client=127\.0\.0\.1 port=\d+ smtpd=mx$", text,
                     re.M), text
    assert not [l for l in text.splitlines() if l.startswith("sid=") and "ffff" in l], text
    assert replies(out6)[3].startswith("554 5.7.1"), out6
    assert re.search(r"event=connect client=::1 port=\d+ smtpd=mx$", text, re.M), text


def test_a_client_that_reset_before_the_session_is_not_local(tmp):
    """inetd and systemd hand the session the connected socket; a client
    that sent its whole dialogue and reset the connection before the
    process looked makes getpeername() fail, while what it sent can
    still be read. The session took such a socket for a local pipe
    (client=local: a relay client, AUTH in clear, --smtpd unchecked);
    only its failing greeting kept it from serving. Its client is
    unknown now, and the section is the one its port names."""
    import struct
    import time
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    cf = write_cf(tmp, '[smtpd "mx"]\nlisten-port = 127.0.0.1:%d\n'
                       '[smtpd "other"]\nlisten-port = 127.0.0.1:%d\n' % (port, free_port()))
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"EHLO spam.example\r\nMAIL FROM:<s@spam.example>\r\n"
              b"RCPT TO:<victim@gmail.com>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n"
              b"QUIT\r\n")
    conn, _ = lsock.accept()
    lsock.close()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # a reset
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            conn.getpeername()
        except OSError:
            break
        time.sleep(0.01)
    with pytest.raises(OSError):
        conn.getpeername()
    try:
        r = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=other"],
                           stdin=conn.fileno(), stdout=conn.fileno(),
                           stderr=subprocess.PIPE, timeout=30)
    finally:
        conn.close()
    log = r.stderr.decode(errors="replace")
    no_sanitizer_report(log, "session")
    assert "client=local" not in log, log
    # the connection arrived at mx's port, whatever --smtpd says
    assert "client=unknown" in log and "does not listen on 127.0.0.1 port %d" % port in log, log
    assert os.listdir(os.path.join(tmp, "spool")) == []


def _connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return None


# ------------------------------- a non-loopback address in a namespace

NS_DRIVER = r"""
import json, os, signal, smtplib, socket, ssl, subprocess, sys, time
cfg = json.loads(sys.argv[1])
def sh(*a):
    subprocess.run(a, check=True)
sh("ip", "link", "set", "lo", "up")
# a dummy interface where the kernel has them, else an address on lo
if subprocess.run(["ip", "link", "add", "d0", "type", "dummy"],
                  stderr=subprocess.DEVNULL).returncode == 0:
    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "d0")
    sh("ip", "link", "set", "d0", "up")
else:
    sh("ip", "addr", "add", "192.0.2.1/32", "dev", "lo")
out = {}
for name, launcher in cfg["runs"]:
    port = cfg["port"]
    if launcher == "tcpserver":
        argv = [cfg["tcpserver"], "-HRl0", "0.0.0.0", str(port)]
    else:
        argv = [cfg["activate"], "-l", "192.0.2.1:%d" % port, "-a"]
    argv += [cfg["postmaster"], "--config=" + cfg["cf"][name]] + cfg["args"][name]
    log = open(cfg["log"], "ab")
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    for _ in range(300):
        with open("/proc/net/tcp") as f:
            if any(l.split()[3] == "0A" and l.split()[1].endswith(":%04X" % port)
                   for l in f.read().splitlines()[1:]):
                break
        time.sleep(0.02)
    res = []
    try:
        s = smtplib.SMTP("192.0.2.1", port, local_hostname="client.example", timeout=20)
        try:
            s.ehlo()
            if cfg["auth"].get(name):
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s.starttls(context=ctx)
                s.ehlo()
                s.login("anna", "secret")
            res.append(list(s.mail("s@203.example")))
            res.append(list(s.rcpt("victim@mx.test")))
            res.append(list(s.rcpt("joe@example.net")))
            s.rset()
            s.quit()
        except smtplib.SMTPServerDisconnected as e:
            res.append(["disconnected", str(e)])
    except smtplib.SMTPConnectError as e:
        res.append([e.smtp_code, e.smtp_error.decode()])
    except smtplib.SMTPServerDisconnected as e:
        res.append(["disconnected", str(e)])
    res = [[c, m.decode() if isinstance(m, bytes) else m] for c, m in res]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    log.close()
    out[name] = res
print(json.dumps(out))
"""


def test_non_loopback_address_in_a_namespace(tmp):
    """tcpserver on 0.0.0.0 and systemd-socket-activate on 192.0.2.1; the
    client connects to 192.0.2.1, so its address is 192.0.2.1 too."""
    if not ROOT:
        pytest.skip("a private network namespace needs root")
    port = free_port()
    crt, key = make_cert(tmp, "mail.example.net")
    sha = subprocess.run([tool("openssl"), "passwd", "-6", "secret"], capture_output=True,
                         text=True, check=True).stdout.strip()
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("anna:%s\n" % sha)
    os.chmod(users, 0o600)
    tls = ("tls = starttls\ntls-certificate = %s\ntls-key = %s\nauth = optional\n"
           "auth-file = %s\n" % (crt, key, users))
    cfs = {
        # a loopback-only section never serves 192.0.2.1, --smtpd or not
        "loopback": write_cf(tmp, '[smtpd "local"]\nlisten-port = 127.0.0.1:%d\n' % port,
                             name="loopback.cf"),
        # every address, default relay-clients: served, no relaying
        "any": write_cf(tmp, '[smtpd "mx"]\nlisten-port = %d\n%s' % (port, tls),
                        name="any.cf"),
        # the client's network is trusted
        "trusted": write_cf(tmp, '[smtpd "mx"]\nlisten-port = %d\nrelay-clients = '
                            'loopback 192.0.2.0/24\n' % port, name="trusted.cf"),
    }
    runs = [("loopback", "tcpserver"), ("loopback-named", "tcpserver"),
            ("loopback-activate", "activate"), ("any", "tcpserver"),
            ("any-activate", "activate"), ("trusted", "activate"), ("auth", "tcpserver")]
    cfg = {
        "port": port, "postmaster": POSTMASTER, "log": os.path.join(tmp, "ns.log"),
        "tcpserver": tool("tcpserver"), "activate": tool("systemd-socket-activate"),
        "runs": runs,
        "cf": {"loopback": cfs["loopback"], "loopback-named": cfs["loopback"],
               "loopback-activate": cfs["loopback"], "any": cfs["any"],
               "any-activate": cfs["any"], "trusted": cfs["trusted"], "auth": cfs["any"]},
        "args": {"loopback": [], "loopback-named": ["--smtpd=local"],
                 "loopback-activate": ["--smtpd=local"], "any": [], "any-activate": ["--smtpd=mx"],
                 "trusted": ["--smtpd=mx"], "auth": []},
        "auth": {"auth": True},
    }
    r = subprocess.run([tool("unshare"), "-n", sys.executable, "-c", NS_DRIVER, json.dumps(cfg)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    log = open(cfg["log"], errors="replace").read()
    no_sanitizer_report(log, "sessions in the namespace")
    for name in ("loopback", "loopback-named", "loopback-activate"):
        assert res[name][0][0] == 421 and res[name][0][1].startswith("4.3.5 "), (name, res[name])
    assert "192.0.2.1 port %d" % port in log
    for name in ("any", "any-activate"):
        assert res[name][0][0] == 250, res[name]
        assert res[name][1] == [554, "5.7.1 <victim@mx.test>: relaying denied"], res[name]
        assert res[name][2][0] == 250, res[name]
    assert res["trusted"][1][0] == 250, res["trusted"]
    assert res["auth"][1][0] == 250, res["auth"]
    assert "client=192.0.2.1" in log


@pytest.mark.parametrize("compiled", [False, True])
def test_a_line_for_one_address_does_not_open_its_domain(tmp, compiled):
    """A user@domain line makes that address this site's, not its domain:
    with "spammer@gmail.com reject" in the tables, a catch-all that sends
    the rest off the machine once relayed every gmail.com address (and
    every example.net one but joe's) for any client. Only relay-clients
    may send those now; an address a line names by itself, such as a
    forward to an outside mailbox, still takes mail from anyone. A quoted
    "abuse@" line names no domain. The same for a compiled route file."""
    lines = ("spammer@gmail.com reject\n"
             "info@example.net boss@gmail.com\n"
             '"abuse@" hub\n'
             "@ hub\n")
    routes = lines
    if compiled:
        rt = os.path.join(tmp, "routes.rt")
        with open(rt, "w") as f:
            f.write(lines)
        routes = 'file "%s"\n' % rt
    cf = write_cf(tmp, '[relay "hub"]\naddress = [127.0.0.1]:1\n'
                       '[smtpd "mx"]\nlisten-port = 25\n'
                       'relay-clients = 10.0.0.0/8\n', routes)
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if compiled:
        assert os.path.exists(rt + ".pmdb")
    dialogue = (b"EHLO client.example\r\nMAIL FROM:<s@203.example>\r\n"
                b"RCPT TO:<victim@gmail.com>\r\nRCPT TO:<other@example.net>\r\n"
                b"RCPT TO:<info@example.net>\r\nRCPT TO:<joe@example.net>\r\n"
                b"RCPT TO:<abuse@gmail.com>\r\nQUIT\r\n")
    env = dict(os.environ, TCPREMOTEIP="203.0.113.9", TCPREMOTEPORT="4000",
               TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25")
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=dialogue,
                       env=env, capture_output=True, timeout=30)
    out = p.stdout.decode()
    rcpt = [l for l in out.splitlines()
            if l.startswith(("250 2.1.5", "554", "550"))]
    assert rcpt == [
        "554 5.7.1 <victim@gmail.com>: relaying denied",
        "554 5.7.1 <other@example.net>: relaying denied",
        "250 2.1.5 Recipient <info@example.net> OK",
        "250 2.1.5 Recipient <joe@example.net> OK",
        "554 5.7.1 <abuse@gmail.com>: relaying denied"], out
    # a relay client may send them all
    env["TCPREMOTEIP"] = "10.1.2.3"
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=dialogue,
                       env=env, capture_output=True, timeout=30)
    assert p.stdout.decode().count("250 2.1.5") == 5, p.stdout.decode()


def rcpt_replies(cf, rcpts, ip):
    """A session from ip (tcpserver's variables) to port 25 that gives
    rcpts: its whole output, and the replies to the RCPTs (250 or 554)."""
    dialogue = (b"EHLO client.example\r\nMAIL FROM:<s@203.example>\r\n" +
                b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts) +
                b"QUIT\r\n")
    env = dict(os.environ, TCPREMOTEIP=ip, TCPREMOTEPORT="4000",
               TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25")
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=dialogue,
                       env=env, capture_output=True, timeout=30)
    out = p.stdout.decode()
    return out, [l for l in out.splitlines()
                 if l.startswith(("250 2.1.5", "554"))]


def test_a_local_part_that_names_a_destination_is_not_relayed_for_outsiders(tmp):
    """An inbound MX that forwards a domain to an inner server: an outside
    client once had victim%gmail.com@, gmail.com!victim@ and
    "victim@gmail.com"@example.net handed to the inner server, which may
    route by them (the %-hack, UUCP paths) and trusts the MX. Such local
    parts leave the machine only for relay clients now, as Postfix's
    allow_untrusted_routing = no; delivered here, they are plain
    characters (SPEC 5)."""
    cf = write_cf(tmp, '[relay "inner"]\naddress = [127.0.0.1]:1\n'
                       '[smtpd "mx"]\nlisten-port = 25\n'
                       'relay-clients = 10.0.0.0/8\n',
                  "@example.org inner\n"
                  "joe%%x@example.net %s/Maildir/\n" % tmp)
    rcpts = ["victim%gmail.com@example.org", "gmail.com!victim@example.org",
             '"victim@gmail.com"@example.org', "ann@example.org",
             "joe%x@example.net"]
    out, got = rcpt_replies(cf, rcpts, "203.0.113.9")
    assert got == ["554 5.7.1 <%s>: relaying denied" % r for r in rcpts[:3]] + [
        "250 2.1.5 Recipient <ann@example.org> OK",
        "250 2.1.5 Recipient <joe%x@example.net> OK"], out
    out, _ = rcpt_replies(cf, rcpts, "10.1.2.3")
    assert out.count("250 2.1.5") == 5, out


def test_a_bare_name_that_names_a_destination_is_not_relayed_for_outsiders(tmp):
    """RCPT TO:<postmaster+x%gmail.com>, a bare name that every client may
    send to, matched the 'postmaster' line by its base and left for the
    inner server as postmaster+x%gmail.com@mail.example.net, which that
    server may route to gmail.com: the rule for such local parts held
    only for addresses with a domain. The same for a local-rcpt-to name."""
    cf = write_cf(tmp, 'recipient-delimiter = +\n'
                       '[relay "inner"]\naddress = [127.0.0.1]:1\n'
                       '[smtpd "mx"]\nlisten-port = 25\nlocal-rcpt-to = yes\n'
                       'relay-clients = 10.0.0.0/8\n',
                  "postmaster inner\nalice inner\n")
    rcpts = ["postmaster+x%gmail.com", "postmaster+x!gmail.com",
             "alice+x%gmail.com", "postmaster+x", "alice+y"]
    out, got = rcpt_replies(cf, rcpts, "203.0.113.9")
    assert got == ["554 5.7.1 <%s>: relaying denied" % r for r in rcpts[:3]] + [
        "250 2.1.5 Recipient <postmaster+x> OK",
        "250 2.1.5 Recipient <alice+y> OK"], out
    out, _ = rcpt_replies(cf, rcpts, "10.1.2.3")
    assert out.count("250 2.1.5") == 5, out
