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
import shutil
import subprocess
import time

import pytest

from pmtest import (POSTMASTER, ROOT, descendants, free_port, make_cert, remove_tree,
                    scratch_dir, session_maps, Tcpserver, tool, wait_for)


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
        wait_for(lambda: "version" in open(os.path.join(tmp, "server.log")).read(), 30,
                 "the failed handshake in the log")
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


@pytest.mark.parametrize("bad", ["other key", "garbage"])
def test_a_key_gnutls_refuses_gets_454_and_the_session_goes_on(tmp, cert, bad):
    """A key that does not match its certificate, or does not parse: the
    session once said 220 Ready to start TLS and then dropped the
    connection. RFC 3207 4: 454 before anything is promised, and the
    client may go on in clear (as Postfix)."""
    cf = config(tmp, cert, "starttls")
    if bad == "other key":
        os.mkdir(os.path.join(tmp, "other"))
        other = make_cert(os.path.join(tmp, "other"), "mail.example.net")
        shutil.copy(other[1], cert[1])
    else:
        with open(cert[1], "w") as f:
            f.write("garbage\n")
    p = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=mx"],
                       input=b"EHLO client.example\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n",
                       capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert "\r\n454 4.7.0 TLS not available due to local problem\r\n" \
           "250 2.0.0 OK\r\n221 " in out, out
    assert b"event=tls-unavailable" in p.stderr, p.stderr
    # and --check says so, at the tls-key line (it once said ok)
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78, r.stderr
    assert re.search(r"^%s:\d+:\d+: expected a key that GnuTLS takes with "
                     % re.escape(cf), r.stderr, re.M), r.stderr


# ---------------------------------------------------------------------
# TLS policy (issue 9): priorities, server order, two certificates,
# alerts, renegotiation, and the session timeout once TLS runs.

def policy_server(tmp, mode="starttls", auth=False, extra="", timeout="300s"):
    """A listener on its own port with an RSA and an ECDSA certificate:
    opportunistic (starttls, no AUTH) or one that takes passwords
    (implicit TLS with AUTH)."""
    rsa = make_cert(tmp, "mail.example.net")
    ecdsa = make_cert(tmp, "mail.example.net", "ecdsa")
    port = free_port()
    path = os.path.join(tmp, "policy.cf")
    auth_lines = ""
    if auth:
        with open(os.path.join(tmp, "auth"), "w") as f:
            f.write("joe:$6$salt$x\n")
        auth_lines = "auth = optional\nauth-file = %s/auth\n" % tmp
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
timeout = {timeout}
tls-certificate = {rsa[0]}
tls-key = {rsa[1]}
tls-certificate = {ecdsa[0]}
tls-key = {ecdsa[1]}
{auth}{extra}
[route]
joe@example.net {tmp}/Maildir/
""".format(tmp=tmp, mode=mode, rsa=rsa, ecdsa=ecdsa, port=port, auth=auth_lines,
           extra=extra, timeout=timeout, user="user-id = nobody" if ROOT else ""))
    r = subprocess.run([POSTMASTER, "--config=" + path, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return Tcpserver([POSTMASTER, "--config=" + path, "--smtpd=mx"],
                     os.path.join(tmp, "server.log"), port=port)


def s_client(srv, *args, starttls=True, stdin=b"QUIT\r\n"):
    """openssl s_client's report of one handshake (stdout and stderr)."""
    argv = [tool("openssl"), "s_client", "-ign_eof", "-connect",
            "127.0.0.1:%d" % srv.port]
    if starttls:
        argv += ["-starttls", "smtp"]
    r = subprocess.run(argv + list(args), input=stdin, capture_output=True, timeout=60)
    return (r.stdout + r.stderr).decode(errors="replace")


def negotiated(report):
    m = re.search(r"Cipher is (\S+)", report)
    return m.group(1) if m else None


def test_the_server_order_wins(tmp):
    """A client that lists a static-RSA CBC suite, then a weaker AEAD one,
    first gets the server's choice."""
    srv = policy_server(tmp)
    try:
        r = s_client(srv, "-tls1_2", "-cipher",
                     "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
        assert negotiated(r) == "ECDHE-RSA-AES256-GCM-SHA384", r
    finally:
        srv.stop()


def test_tls_priority_cannot_bring_back_tls_1_0(tmp):
    """SPEC 8: TLS 1.2 and 1.3 only. A tls-priority that adds TLS 1.0 and
    1.1 once had them negotiated; the floor now holds whatever the
    string says, and TLS 1.2 still works."""
    srv = policy_server(tmp, extra='tls-priority = "NORMAL:+VERS-TLS1.0:'
                                   '+VERS-TLS1.1:+SHA1"\n')
    try:
        for old in ("-tls1", "-tls1_1"):
            r = s_client(srv, old, "-cipher", "DEFAULT:@SECLEVEL=0")
            assert negotiated(r) in (None, "(NONE)"), r
        assert negotiated(s_client(srv, "-tls1_2")) not in (None, "(NONE)")
    finally:
        srv.stop()


@pytest.mark.parametrize("suite", ["AES128-SHA", "AES256-GCM-SHA384"])
def test_static_rsa_is_refused_on_port_25(tmp, suite):
    srv = policy_server(tmp)
    try:
        r = s_client(srv, "-tls1_2", "-cipher", suite)
        assert negotiated(r) in (None, "(NONE)"), r
        assert "alert handshake failure" in r, r
        # the control: a forward-secret suite
        assert negotiated(s_client(srv, "-tls1_2", "-cipher",
                                   "ECDHE-RSA-AES128-GCM-SHA256")) == \
            "ECDHE-RSA-AES128-GCM-SHA256"
        log_says(tmp, "(alert Handshake failed sent)")
    finally:
        log = srv.stop()
    assert re.search(r"event=tls-failed reason=\"TLS handshake failed: .*"
                     r"\(alert Handshake failed sent\)", log), log


@pytest.mark.parametrize("suite", ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA",
                                   "ECDHE-ECDSA-AES256-SHA", "DHE-RSA-AES128-SHA"])
def test_listener_with_passwords_takes_only_the_intermediate_profile(tmp, suite):
    """Static RSA and CBC-SHA1 are refused where passwords travel (AUTH,
    implicit TLS: Mozilla's intermediate profile)."""
    srv = policy_server(tmp, mode="implicit", auth=True)
    try:
        r = s_client(srv, "-tls1_2", "-cipher", suite, starttls=False)
        assert negotiated(r) in (None, "(NONE)"), r
        ok = s_client(srv, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256",
                      starttls=False)
        assert negotiated(ok) == "DHE-RSA-AES128-GCM-SHA256", ok
    finally:
        srv.stop()


def test_a_tls_1_1_client_gets_the_protocol_version_alert(tmp):
    srv = policy_server(tmp, mode="implicit")
    try:
        g = subprocess.run([tool("gnutls-cli"), "--insecure", "--port", str(srv.port),
                            "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1", "127.0.0.1"],
                           input=b"", capture_output=True, timeout=60)
        out = (g.stdout + g.stderr).decode(errors="replace")
        assert "Handshake was completed" not in out
        assert "Received alert [70]" in out, out
        log_says(tmp, "(alert Error in protocol version sent)")
    finally:
        srv.stop()


@pytest.mark.parametrize("tls13", [False, True])
def test_rsa_and_ecdsa_certificates_side_by_side(tmp, tls13):
    srv = policy_server(tmp)
    try:
        if tls13:
            ec = s_client(srv, "-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256")
            rsa = s_client(srv, "-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256")
        else:
            ec = s_client(srv, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
            rsa = s_client(srv, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        assert "Server public key is 256 bit" in ec, ec
        assert "Peer signature type: ECDSA" in ec, ec
        assert "Server public key is 2048 bit" in rsa, rsa
        assert "Peer signature type: RSA" in rsa, rsa
        assert "221 2.0.0" in ec and "221 2.0.0" in rsa
    finally:
        srv.stop()


def test_tls_priority_is_honoured_and_checked(tmp):
    srv = policy_server(tmp, extra="tls-priority = NORMAL:-VERS-ALL:+VERS-TLS1.2:"
                        "-CIPHER-ALL:+CHACHA20-POLY1305")
    try:
        r = s_client(srv)
        assert negotiated(r).endswith("-CHACHA20-POLY1305"), r
    finally:
        srv.stop()
    bad = os.path.join(tmp, "bad.cf")
    with open(bad, "w") as f:
        f.write('[smtpd "mx"]\nlisten-port = 2525\n'
                'tls-priority = NORMAL:-VERS-ALL:+VERS-TLS1.9\n')
    r = subprocess.run([POSTMASTER, "--config=" + bad, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 78
    assert "bad.cf:3:33: expected a GnuTLS priority string" in r.stderr, r.stderr
    # a string GnuTLS takes, but that leaves no version above TLS 1.1:
    # every STARTTLS would fail, so --check says so
    with open(bad, "w") as f:
        f.write('[smtpd "mx"]\nlisten-port = 2525\n'
                'tls-priority = NORMAL:-VERS-ALL:+VERS-TLS1.1\n')
    r = subprocess.run([POSTMASTER, "--config=" + bad, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 78
    assert ("bad.cf:3:16: expected a GnuTLS priority string: it leaves no "
            "protocol version once TLS 1.0 and 1.1 are taken out") in r.stderr, r.stderr


def test_client_renegotiation_is_refused_and_logged(tmp):
    srv = policy_server(tmp, mode="implicit")
    try:
        p = subprocess.Popen([tool("openssl"), "s_client", "-tls1_2", "-connect",
                              "127.0.0.1:%d" % srv.port],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        wait_for(lambda: "event=tls " in open(os.path.join(tmp, "server.log")).read(),
                 30, "the handshake")
        p.stdin.write(b"R\n")
        p.stdin.flush()
        out = p.communicate(timeout=30)[0].decode(errors="replace")
        assert "RENEGOTIATING" in out and "no renegotiation" in out, out
    finally:
        log = srv.stop()
    assert "event=tls-renegotiation action=refused" in log, log


def log_says(tmp, text):
    """Waits for the sessions' log to say text (a session logs a failed
    handshake after its alert has reached the client); fails after 30 s."""
    path = os.path.join(tmp, "server.log")
    wait_for(lambda: text in open(path, errors="replace").read(), 30, text)


def wait_session_end(srv, sock, limit):
    """Seconds until the server closed sock and no session process is
    left under tcpserver; fails after limit seconds."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout, ssl.SSLError):
        pass
    wait_for(lambda: not descendants(srv.p.pid), limit, "the session to end")
    return time.monotonic() - start


def test_a_client_that_stalls_mid_record_is_timed_out(tmp):
    """Three bytes of a TLS record, then nothing: the session ends after
    its timeout as in clear text (421 4.4.2, logged)."""
    srv = policy_server(tmp, mode="implicit", timeout="3s")
    try:
        t = ssl._create_unverified_context().wrap_socket(
            socket.create_connection(("127.0.0.1", srv.port), timeout=30))
        assert t.recv(100).startswith(b"220 ")
        raw = socket.socket(fileno=os.dup(t.fileno()))
        raw.sendall(b"\x17\x03\x03")
        t.settimeout(60)
        assert t.recv(100).startswith(b"421 4.4.2"), "no timeout reply"
        assert wait_session_end(srv, raw, 60) < 60
        raw.close()
        t.close()
    finally:
        log = srv.stop()
    assert "event=timeout tls=yes" in log, log


def test_a_trickled_client_hello_has_one_deadline(tmp):
    """A ClientHello sent one byte a second never completes within a 3 s
    timeout: the handshake has one deadline, not one per byte."""
    srv = policy_server(tmp, mode="implicit", timeout="3s")
    try:
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ssl._create_unverified_context().wrap_bio(inb, outb)
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outb.read()
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        start = time.monotonic()
        closed = False
        for b in hello[:40]:
            try:
                sock.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            sock.settimeout(1)
            try:
                if not sock.recv(100):
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        assert closed, "the handshake went on for %.0f s" % (time.monotonic() - start)
        assert time.monotonic() - start < 20
        wait_for(lambda: not descendants(srv.p.pid), 30, "the session to end")
        sock.close()
    finally:
        log = srv.stop()
    assert "TLS handshake timed out after 3 s" in log, log


def test_check_names_each_certificate_that_is_missing(tmp):
    rsa = make_cert(tmp, "mail.example.net")
    path = os.path.join(tmp, "two.cf")
    with open(path, "w") as f:
        f.write('[smtpd "mx"]\nlisten-port = 2525\ntls = starttls\n'
                'tls-certificate = %s\ntls-key = %s\n'
                'tls-certificate = %s/ecdsa-cert.pem\ntls-key = %s/ecdsa-key.pem\n'
                % (rsa[0], rsa[1], tmp, tmp))
    # as root, --check needs a user-id (sessions refuse to run without one)
    as_root = ["--core-user-id=nobody"] if ROOT else []
    r = subprocess.run([POSTMASTER, "--config=" + path, *as_root, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'two.cf:6:19: warning: "%s/ecdsa-cert.pem" does not exist' % tmp in r.stderr
    assert 'two.cf:7:11: warning: "%s/ecdsa-key.pem" does not exist' % tmp in r.stderr


def test_a_failed_implicit_tls_handshake_ends_the_session_properly(tmp, cert):
    """tls = implicit and a client that sends no ClientHello (here a
    clear-text EHLO): the session once exited at once after its
    tls-failed line, without its disconnect line and without the
    milter's QUIT (the milter had been told of the connection). It now
    ends as every session does."""
    from pmmilter import Milter
    m = Milter(os.path.join(tmp, "m.sock"))
    try:
        path = os.path.join(tmp, "implicit.cf")
        with open(path, "w") as f:
            f.write(open(config(tmp, cert, "implicit")).read().replace(
                "[smtpd \"mx\"]\n",
                "[milter \"t\"]\naddress = unix:%s\n[smtpd \"mx\"]\nmilters = t\n" % m.path))
        p = subprocess.run([POSTMASTER, "--config=" + path, "--smtpd=mx"],
                           input=b"EHLO client.example\r\n", capture_output=True, timeout=30)
        log = p.stderr.decode()
        assert re.search(r"event=tls-failed .*\n.*event=disconnect ", log), log
        wait_for(lambda: "Q" in m.cmds(), 10, "QUIT at the milter")
    finally:
        m.close()
