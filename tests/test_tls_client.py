"""Onward STARTTLS and AUTH (SPEC 7.2, 8, 11) against a real TLS peer.

The peer is aiosmtpd on 127.0.0.1 with Python's ssl (OpenSSL) and a
self-signed test certificate made by the openssl command; it records, for
each message, whether it arrived over TLS and authenticated. postmaster
relays to it through the spool (the listener says proxy = no) and through
the live proxy, which starts TLS and AUTH per the same settings; what fails
stays deferred in the spool (the proxy takes such a message over), as
--queue shows.
"""
import os
import pwd
import re
import shutil
import ssl
import subprocess
import tempfile

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult  # noqa: E402
from pmtest import POSTMASTER, ROOT, ThreadedServer, free_port, make_cert


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-tls-")
    os.chmod(d, 0o1777)
    os.mkdir(os.path.join(d, "spool"))
    os.chmod(os.path.join(d, "spool"), 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cert(tmp):
    return make_cert(tmp, "relay.test")


class Peer:
    """aiosmtpd with optional STARTTLS and AUTH; records each message."""

    def __init__(self, cert=None, require_tls=False, auth=False):
        self.got = []
        self.port = free_port()
        peer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                peer.got.append({"tls": session.ssl is not None,
                                 "auth": bool(session.authenticated),
                                 "rcpts": list(envelope.rcpt_tos),
                                 "data": envelope.content})
                return "250 2.0.0 stored"

        kw = {}
        if cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*cert)
            kw.update(tls_context=ctx, require_starttls=require_tls)
        def check(srv, sess, env, mech, data):
            ok = data.login == b"u" and data.password == b"secret"
            # handled=False: aiosmtpd itself answers 535 to a failure
            return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

        if auth:
            kw.update(authenticator=check, auth_require_tls=True)
        self.c = aiosmtpd.Controller(Handler(), hostname="127.0.0.1",
                                     port=self.port, **kw)
        self.c.start()

    def stop(self):
        self.c.stop()


@pytest.fixture(params=["spool", "proxy"])
def via(request):
    """Who talks to the relay: the spool's onward client (the listener
    says proxy = no), or the live proxy during the session, which starts
    TLS and AUTH per the same settings."""
    return request.param


def config(tmp, relay, via="spool", check=True):
    text = """[core]
hostname = mail.example.net
logger = stderr
spool-directory = {tmp}/spool
pid-file = {tmp}/flush.pid
minimal-backoff = 1s
{user}
{smtpd}[relay "smart"]
{relay}
[route]
a@ext.example smart
""".format(tmp=tmp, relay=relay, user="user-id = nobody" if ROOT else "",
           smtpd='[smtpd "mail.example.net"]\nproxy = no\n' if via == "spool" else "")
    path = os.path.join(tmp, "postmaster.cf")
    with open(path, "w") as f:
        f.write(text)
    if check:
        r = subprocess.run([POSTMASTER, "--config=" + path, "--check"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return path


def send(cf, via="spool", prefix=()):
    """One message through a session (run under the prefix argv, if
    any); returns its queue id (None when the proxy delivered it) and the
    log, once the delivery it started is done (its stderr closes then)."""
    p = subprocess.run([*prefix, POSTMASTER, "--config=" + cf],
                       input=b"EHLO client.example\r\nMAIL FROM:<s@example.org>\r\n"
                             b"RCPT TO:<a@ext.example>\r\nDATA\r\nSubject: tls\r\n\r\n"
                             b"body\r\n.\r\nQUIT\r\n",
                       capture_output=True, timeout=60)
    out = p.stdout.decode()
    assert "runtime error" not in p.stderr.decode() and "Sanitizer" not in p.stderr.decode()
    m = re.search(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r$", out, re.M)
    # the proxy gives the client the peer's reply, unless it took over
    said = re.search(r"^250 2\.0\.0 127\.0\.0\.1\[127\.0\.0\.1\] said: stored\r$",
                     out, re.M)
    assert m or (via == "proxy" and said), out
    return (m.group(1) if m else None), p.stderr.decode()


def queue(cf):
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_opportunistic_tls_is_used_when_offered(tmp, cert, via):
    peer = Peer(cert)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d" % peer.port, via)
        qid, log = send(cf, via)
        assert (qid is None) == (via == "proxy"), qid
        assert len(peer.got) == 1 and peer.got[0]["tls"], peer.got
        assert b"Subject: tls\r\n" in peer.got[0]["data"]
        # the recipient's log line says the relay was reached over TLS
        assert re.search(r" relay=127\.0\.0\.1\[127\.0\.0\.1\] tls=yes "
                         r"(via=proxy )?status=sent", log), log
        assert queue(cf) == "the spool is empty\n"
    finally:
        peer.stop()


def test_opportunistic_without_starttls_goes_in_clear(tmp, via):
    peer = Peer()
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d" % peer.port, via)
        qid, log = send(cf, via)
        assert (qid is None) == (via == "proxy"), qid
        assert len(peer.got) == 1 and not peer.got[0]["tls"]
        assert re.search(r" relay=127\.0\.0\.1\[127\.0\.0\.1\] tls=no "
                         r"(via=proxy )?status=sent", log), log
    finally:
        peer.stop()


def test_required_tls_against_a_peer_without_it_defers(tmp, via):
    peer = Peer()
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = required" % peer.port, via)
        qid, _ = send(cf, via)
        assert peer.got == []
        q = queue(cf)
        assert qid in q and "pending" in q and "attempts=1" in q, q
        assert "451 4.7.4 TLS is required, but 127.0.0.1[127.0.0.1] does not offer STARTTLS" in q
    finally:
        peer.stop()


def test_required_tls_against_a_tls_peer_delivers(tmp, cert, via):
    peer = Peer(cert, require_tls=True)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = required" % peer.port, via)
        qid, _ = send(cf, via)
        assert (qid is None) == (via == "proxy"), qid
        assert len(peer.got) == 1 and peer.got[0]["tls"]
    finally:
        peer.stop()


def test_verify_refuses_an_untrusted_certificate(tmp, cert, via):
    peer = Peer(cert)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = verify\nname = relay.test"
                    % peer.port, via)
        qid, _ = send(cf, via)
        assert peer.got == []
        q = queue(cf)
        assert qid in q and re.search(r"451 4\.7\.5 127\.0\.0\.1\[127\.0\.0\.1\]: "
                                      r"TLS handshake failed: .*certificate", q), q
    finally:
        peer.stop()


def signed_cert(tmp, cn):
    """A test CA and a certificate for cn that it signed: (ca, cert, key)."""
    d = os.path.join(tmp, "ca")
    os.mkdir(d)
    ca, ca_key = make_cert(d, "Test CA")
    key, csr, crt = (os.path.join(d, n) for n in ("leaf-key.pem", "leaf.csr", "leaf.pem"))
    ext = os.path.join(d, "ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\n" % cn)
    for argv in (["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", "/CN=" + cn],
                 ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                  "-out", crt, "-days", "2", "-extfile", ext]):
        r = subprocess.run(["openssl", *argv], capture_output=True)
        assert r.returncode == 0, r.stderr
    return ca, crt, key


def trusting(ca):
    """An argv prefix that runs a command in a mount namespace of its own
    whose system trust store (GnuTLS's default file) holds ca alone."""
    store = "/etc/ssl/certs/ca-certificates.crt"
    if not ROOT or not os.path.exists(store) or not shutil.which("unshare") or \
            subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs root and mount namespaces to trust a test CA")
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" %s && exec "$@"' % store, ca]


@pytest.mark.parametrize("case", ["untrusted issuer", "other name"])
def test_verify_says_why_the_certificate_was_refused(tmp, via, case):
    """tls = verify: the deferral (what --queue shows and a delay notice
    tells) once said only "Error in the certificate verification" for a
    certificate of an unknown issuer and for one that names another host
    alike, so the administrator could not tell which to fix. Each now
    says which check failed, and the mail still waits, never in clear."""
    ca, crt, key = signed_cert(tmp, "relay.test")
    if case == "untrusted issuer":
        name, prefix, want = "relay.test", (), "(certificate: issuer not trusted)"
    else:
        name, prefix, want = "other.test", trusting(ca), "(certificate: name does not match)"
    peer = Peer((crt, key))
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = verify\nname = %s"
                    % (peer.port, name), via)
        qid, log = send(cf, via, prefix)
        assert peer.got == []
    finally:
        peer.stop()
    q = queue(cf)
    assert qid in q and "451 4.7.5 127.0.0.1[127.0.0.1]: TLS handshake failed: " in q, q
    assert want in q and want in log, q + log


def test_verify_delivers_to_a_trusted_certificate_of_its_name(tmp, via):
    ca, crt, key = signed_cert(tmp, "relay.test")
    peer = Peer((crt, key))
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = verify\nname = relay.test"
                    % peer.port, via)
        send(cf, via, trusting(ca))
        assert len(peer.got) == 1 and peer.got[0]["tls"], peer.got
    finally:
        peer.stop()
    assert queue(cf) == "the spool is empty\n"


def test_auth_plain_under_tls(tmp, cert, via):
    peer = Peer(cert, require_tls=True, auth=True)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = required\n"
                         "auth-user = u\nauth-password = secret" % peer.port, via)
        qid, _ = send(cf, via)
        assert (qid is None) == (via == "proxy"), qid
        assert len(peer.got) == 1 and peer.got[0]["tls"] and peer.got[0]["auth"]
    finally:
        peer.stop()


def test_auth_failure_defers(tmp, cert, via):
    peer = Peer(cert, require_tls=True, auth=True)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\n"
                         "auth-user = u\nauth-password = wrong" % peer.port, via)
        qid, _ = send(cf, via)
        assert peer.got == []
        q = queue(cf)
        assert qid in q and "451 4.7.8" in q, q
    finally:
        peer.stop()


def password_file(tmp, mode, text="secret\n"):
    """The smarthost password in a file of root and nobody's group."""
    path = os.path.join(tmp, "smart.pw")
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, 0, pwd.getpwnam("nobody").pw_gid)
    os.chmod(path, mode)
    return path


@pytest.mark.skipif(not ROOT, reason="a file of root's that the session "
                    "reads as user-id nobody")
def test_auth_password_file_is_read_by_the_delivering_user(tmp, cert, via):
    """auth-password in postmaster.cf, which every user's sendmail must
    read, was every user's to read. auth-password-file keeps it apart:
    root:group-id 0640 serves the delivery (which runs as user-id), and a
    file only root may read defers the mail, saying why."""
    peer = Peer(cert, require_tls=True, auth=True)
    try:
        path = password_file(tmp, 0o640)
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = required\n"
                         "auth-user = u\nauth-password-file = %s"
                    % (peer.port, path), via)
        qid, _ = send(cf, via)
        assert (qid is None) == (via == "proxy"), qid
        assert len(peer.got) == 1 and peer.got[0]["auth"], peer.got
        os.chmod(path, 0o600)
        qid, _ = send(cf, via)
        assert len(peer.got) == 1, peer.got
        q = queue(cf)
        assert "451 4.3.5 relay smart: auth-password-file %s: Permission " \
            "denied" % path in q, q
    finally:
        peer.stop()


@pytest.mark.skipif(not ROOT, reason="files of root's")
def test_check_warns_where_the_smarthost_password_is_readable(tmp):
    """--check names an auth-password that every user may read, and an
    auth-password-file that every user, or not the delivering user, can
    read."""
    cf = config(tmp, "address = [127.0.0.1]:1\nauth-user = u\n"
                     "auth-password = secret")
    os.chmod(cf, 0o644)
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r'^%s:13:1: warning: auth-password in "%s" \(mode '
                     r"0644\), which every user may read"
                     % (re.escape(cf), re.escape(cf)), r.stderr, re.M), \
        r.stderr
    os.chmod(cf, 0o600)
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert "auth-password" not in r.stderr, r.stderr
    for mode, said in ((0o644, "may be read by every user"),
                       (0o600, "cannot be read by the user that delivers "
                               "(Permission denied)"),
                       (0o640, None)):
        path = password_file(tmp, mode)
        cf = config(tmp, "address = [127.0.0.1]:1\nauth-user = u\n"
                         "auth-password-file = " + path)
        r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if said:
            assert 'warning: auth-password-file "%s" ' % path in r.stderr
            assert said in r.stderr, (mode, r.stderr)
        else:
            assert "auth-password" not in r.stderr, r.stderr


@pytest.mark.parametrize("mode", [0o750, 0o755])
def test_check_refuses_a_directory_as_auth_password_file(tmp, mode):
    """A directory (the config directory instead of the file in it) can
    never give a password: every delivery to the relay would be deferred.
    --check refuses it with its position, whatever its mode."""
    d = os.path.join(tmp, "pwdir")
    os.mkdir(d, mode)
    os.chmod(d, mode)
    cf = config(tmp, "address = [127.0.0.1]:1\nauth-user = u\n"
                     "auth-password-file = " + d, check=False)
    line = open(cf).read().split("\n").index("auth-password-file = " + d) + 1
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 78, r.stderr
    assert re.search(r'^%s:%d:22: expected a file whose first line is the '
                     r'password, found the directory "%s"'
                     % (re.escape(cf), line, re.escape(d)), r.stderr, re.M), \
        r.stderr
    assert "may be read by every user" not in r.stderr, r.stderr


def test_credentials_never_go_in_clear(tmp, via):
    peer = Peer(auth=True)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\n"
                         "auth-user = u\nauth-password = secret" % peer.port, via)
        qid, _ = send(cf, via)
        assert peer.got == []
        assert "451 4.7.10 127.0.0.1[127.0.0.1]: not sending credentials without TLS" in queue(cf)
    finally:
        peer.stop()


def test_a_session_without_tls_does_not_map_gnutls(tmp):
    """SPEC 11: GnuTLS is loaded when a connection first needs it."""
    cf = config(tmp, "address = [127.0.0.1]:1")
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline().startswith(b"220 ")
        with open("/proc/%d/maps" % p.pid) as f:
            maps = f.read()
        assert "libgnutls" not in maps
        assert "libc.so" in maps
    finally:
        p.stdin.write(b"QUIT\r\n")
        p.stdin.close()
        p.wait(timeout=10)


class InjectingPeer(ThreadedServer):
    """Offers STARTTLS and answers it with its 220 and, in the same
    segment, replies in clear for the commands to come (a man in the
    middle's injection); inside TLS it would refuse the recipient."""

    timeout = 10
    threaded = True

    def __init__(self, cert):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(*cert)
        self.seen = []
        super().__init__()

    def _dialogue(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 peer.test ESMTP\r\n")
        for line in f:
            self.seen.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-peer.test\r\n250 STARTTLS\r\n")
            elif verb == b"STAR":
                conn.sendall(b"220 go ahead\r\n250 fake\r\n250 2.1.0 ok\r\n"
                             b"250 2.1.5 ok\r\n354 go\r\n250 2.0.0 injected\r\n")
                tls = self.ctx.wrap_socket(conn, server_side=True)
                g = tls.makefile("rb")
                for l in g:
                    self.seen.append(b"tls: " + l)
                    v = l[:4].upper()
                    tls.sendall(b"550 5.1.1 no such user\r\n" if v == b"RCPT" else
                                b"554 5.5.1 no\r\n" if v == b"DATA" else
                                b"250 ok\r\n")
                return
            elif verb == b"DATA":  # in clear: no STARTTLS this time
                conn.sendall(b"354 go\r\n")
                for l in f:
                    if l == b".\r\n":
                        self.seen.append(b"clear message")
                        conn.sendall(b"250 2.0.0 stored\r\n")
                        break
            else:
                conn.sendall(b"250 ok\r\n")


@pytest.mark.parametrize("mode", ["required", "opportunistic"])
def test_replies_injected_after_the_starttls_220_are_refused(tmp, cert, via, mode):
    """Bytes that come in clear after the 220 to STARTTLS would be read
    as the first replies inside TLS: the message was logged sent on an
    injected '250 ... injected' and removed while the real server refused
    it. Such a connection gets no TLS: required TLS defers the message,
    opportunistic TLS sends it again in clear and says so."""
    peer = InjectingPeer(cert)
    try:
        cf = config(tmp, "address = [127.0.0.1]:%d\ntls = %s" % (peer.port, mode), via)
        qid, log = send(cf, via)
    finally:
        peer.stop()
    assert "injected" not in log, log
    assert not any(l.startswith(b"tls: ") for l in peer.seen), peer.seen
    q = queue(cf)
    if mode == "required":
        assert qid in q and "pending" in q, q + log
        assert "data after the 220 to STARTTLS" in q, q
        assert b"clear message" not in peer.seen
    else:
        assert "event=tls-fallback" in log and "data after the 220" in log, log
        assert peer.seen.count(b"clear message") == 1, (peer.seen, log)
        assert q == "the spool is empty\n", q
