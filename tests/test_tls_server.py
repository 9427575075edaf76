"""The server side of TLS (SPEC 8): STARTTLS (RFC 3207) and implicit TLS
(RFC 8314) with real clients: swaks, OpenSSL's s_client, GnuTLS's
gnutls-cli and Python's ssl. Each session runs under tcpserver on
127.0.0.1 with a self-signed test certificate made by openssl.
"""
import glob
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from pmtest import POSTMASTER, ROOT, free_port, make_cert, scratch_dir, Tcpserver, session_maps, tool, remove_tree


@pytest.fixture
def tmp():
    d = scratch_dir("pm-tlss-")
    yield d
    remove_tree(d)


@pytest.fixture
def cert(tmp):
    # the key readable by root only: read before the privilege drop
    return make_cert(tmp, "mail.example.net")


def config(tmp, cert, mode):
    path = os.path.join(tmp, "postmaster.cf")
    with open(path, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {tmp}/spool
{user}
[smtpd "mx"]
name = mail.example.net
listen-port = 127.0.0.1:{port}
tls = {mode}
tls-certificate = {crt}
tls-key = {key}
[route]
joe@example.net {tmp}/Maildir/
""".format(tmp=tmp, mode=mode, crt=cert[0], key=cert[1], port=free_port(),
           user="user-id = nobody" if ROOT else ""))
    r = subprocess.run([POSTMASTER, "--config=" + path, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return path


def Server(cf, tmp):
    # on the port of the listener's listen-port: it serves no other
    port = int(re.search(r"listen-port = 127\.0\.0\.1:(\d+)", open(cf).read()).group(1))
    return Tcpserver([POSTMASTER, "--config=" + cf, "--smtpd=mx"],
                     os.path.join(tmp, "server.log"), port)


def delivered(tmp, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        files = glob.glob(os.path.join(tmp, "Maildir", "new", "*"))
        if files:
            return open(files[0], "rb").read()
        time.sleep(0.05)
    raise AssertionError("nothing was delivered")


def test_starttls_with_swaks(tmp, cert):
    srv = Server(config(tmp, cert, "starttls"), tmp)
    try:
        r = subprocess.run([tool("swaks"), "--server", "127.0.0.1:%d" % srv.port, "--tls",
                            "--from", "a@client.example", "--to", "joe@example.net",
                            "--header", "Subject: over tls"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "<-  220 2.0.0 Ready to start TLS" in r.stdout
        assert "=== TLS started with cipher TLSv1." in r.stdout
        # after the handshake the EHLO reply no longer offers STARTTLS
        after = r.stdout.split("TLS started", 1)[1]
        assert "STARTTLS" not in after.split("MAIL FROM", 1)[0]
        msg = delivered(tmp)
        assert re.search(rb"by mail\.example\.net \(postmaster\) with ESMTPS id", msg), msg
        assert b"Subject: over tls" in msg
    finally:
        log = srv.stop()
    assert "event=tls cipher=" in log


def test_starttls_with_openssl_and_gnutls_clients(tmp, cert):
    srv = Server(config(tmp, cert, "starttls"), tmp)
    try:
        dialogue = b"EHLO client.example\r\nQUIT\r\n"
        o = subprocess.run([tool("openssl"), "s_client", "-starttls", "smtp", "-quiet",
                            "-connect", "127.0.0.1:%d" % srv.port],
                           input=dialogue, capture_output=True, timeout=60)
        assert b"250-mail.example.net" in o.stdout, o.stdout + o.stderr
        assert b"STARTTLS" not in o.stdout  # offered only before TLS
        assert b"221 2.0.0" in o.stdout
        # gnutls-cli ends the session at EOF on its input: keep it open
        # until the replies are in
        g = subprocess.Popen([tool("gnutls-cli"), "--insecure", "--starttls-proto=smtp",
                              "--port", str(srv.port), "127.0.0.1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        g.stdin.write(dialogue)
        g.stdin.flush()
        time.sleep(1)
        out, err = g.communicate(timeout=60)
        assert b"250-mail.example.net" in out, out + err
        assert b"221 2.0.0" in out, out + err
        assert re.search(rb"Description: \(TLS1\.[23]-", out), out
    finally:
        srv.stop()


def test_old_tls_versions_are_refused(tmp, cert):
    """SPEC 8: TLS 1.2 and 1.3 only. gnutls-cli offers one version at a
    time; the same client with 1.2 is the control."""
    srv = Server(config(tmp, cert, "implicit"), tmp)
    try:
        def handshake(version):
            return subprocess.run(
                [tool("gnutls-cli"), "--insecure", "--port", str(srv.port),
                 "--priority", "NORMAL:-VERS-ALL:+VERS-" + version, "127.0.0.1"],
                input=b"", capture_output=True, timeout=60)
        ok = handshake("TLS1.2")
        assert b"Handshake was completed" in ok.stdout, ok.stdout + ok.stderr
        old = handshake("TLS1.1")
        assert b"Handshake was completed" not in old.stdout
        assert b"*** Fatal error" in old.stderr, old.stdout + old.stderr
    finally:
        log = srv.stop()
    assert re.search(r"event=tls-failed reason=\"TLS handshake failed: [^\"]*"
                     r"(version|protocol)", log, re.I), log


def test_implicit_tls_greets_inside_tls(tmp, cert):
    srv = Server(config(tmp, cert, "implicit"), tmp)
    try:
        ctx = ssl._create_unverified_context()
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, context=ctx, timeout=30) as c:
            code, text = c.ehlo("client.example")
            assert code == 250 and b"STARTTLS" not in text
            c.sendmail("a@client.example", ["joe@example.net"],
                       b"Subject: implicit\r\n\r\nbody\r\n")
        msg = delivered(tmp)
        assert b"with ESMTPS id" in msg and b"Subject: implicit" in msg
        # a client that does not speak TLS gets no greeting at all
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"EHLO clear\r\n")
            s.settimeout(10)
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""
            assert not got.startswith(b"220"), got
    finally:
        srv.stop()


def test_commands_pipelined_after_starttls_are_dropped(tmp, cert):
    """RFC 3207 5.2 (the STARTTLS command injection of CVE-2011-0411):
    what the client sent in clear text after STARTTLS must not be taken
    for commands of the TLS session."""
    srv = Server(config(tmp, cert, "starttls"), tmp)
    try:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")
        raw.sendall(b"EHLO client.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
        assert f.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        tls = ssl._create_unverified_context().wrap_socket(raw)
        tls.sendall(b"RCPT TO:<joe@example.net>\r\n")
        reply = tls.recv(200)
        # MAIL was never seen: a fresh session wants EHLO and MAIL first
        assert reply.startswith(b"503 5.5.1"), reply
        tls.close()
    finally:
        srv.stop()


def test_starttls_session_that_stays_clear_does_not_map_gnutls(tmp, cert):
    cf = config(tmp, cert, "starttls")
    maps = session_maps([POSTMASTER, "--config=" + cf, "--smtpd=mx"])
    assert "libgnutls" not in maps and "libc.so" in maps


def test_unreadable_key_greets_421(tmp, cert):
    cf = config(tmp, cert, "starttls")
    os.rename(cert[1], cert[1] + ".gone")
    p = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=mx"], input=b"QUIT\r\n",
                       capture_output=True, timeout=30)
    assert p.stdout.startswith(b"421 4.3.0 "), p.stdout
    assert b"key.pem: No such file or directory" in p.stderr
