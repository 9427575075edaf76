"""AUTH for sessions (SPEC 8, RFC 4954) with real clients: swaks (PLAIN
and LOGIN, over STARTTLS and in clear text from loopback) and Python's
smtplib. The auth-file holds a SHA-512 crypt hash made by openssl and a
yescrypt hash made by libcrypt through perl; each session runs under
tcpserver on 127.0.0.1.
"""
import base64
import glob
import os
import re
import smtplib
import subprocess
import time

import pytest

from pmtest import POSTMASTER, ROOT, free_port, make_cert, scratch_dir, Tcpserver, session_maps, tool, remove_tree


@pytest.fixture
def tmp():
    d = scratch_dir("pm-auth-")
    yield d
    remove_tree(d)


def start_server(tmp, auth="required", wrapper=None):
    crt, key = make_cert(tmp, "mail.example.net")
    sha = subprocess.run([tool("openssl"), "passwd", "-6", "secret"], capture_output=True,
                         text=True, check=True).stdout.strip()
    yes = subprocess.run([tool("perl"), "-e", 'print crypt("yes-secret", '
                          'q($y$j9T$abcdefghijklmnopqrstu.$))'],
                         capture_output=True, text=True, check=True).stdout
    assert yes.startswith("$y$") and sha.startswith("$6$")
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("# user:hash\nanna:%s\nyves:%s\n" % (sha, yes))
    os.chmod(users, 0o600)  # root only: read before the privilege drop
    cf = os.path.join(tmp, "postmaster.cf")
    port = free_port()
    with open(cf, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {tmp}/spool
{user}
[smtpd "submission"]
name = mail.example.net
listen-port = 127.0.0.1:{port}
tls = starttls
tls-certificate = {crt}
tls-key = {key}
auth = {auth}
auth-file = {users}
[route]
joe@example.net {tmp}/Maildir/
""".format(tmp=tmp, crt=crt, key=key, auth=auth, users=users, port=port,
           user="user-id = nobody" if ROOT else ""))
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    cmd = [POSTMASTER, "--config=" + cf, "--smtpd=submission"]
    if wrapper:
        cmd = ["/bin/sh", "-c", wrapper + ' exec "$0" "$@"'] + cmd
    srv = Tcpserver(cmd, os.path.join(tmp, "server.log"), port)
    return srv.port, srv


def swaks(port, *args):
    return subprocess.run([tool("swaks"), "--server", "127.0.0.1:%d" % port,
                           "--from", "anna@example.org", "--to", "joe@example.net",
                           *args], capture_output=True, text=True, timeout=60)


def delivered(tmp):
    for _ in range(200):
        files = glob.glob(os.path.join(tmp, "Maildir", "new", "*"))
        if files:
            return open(files[0], "rb").read()
        time.sleep(0.05)
    raise AssertionError("nothing delivered")


@pytest.mark.parametrize("mech,user,password", [("PLAIN", "anna", "secret"),
                                                ("LOGIN", "yves", "yes-secret")])
def test_auth_over_starttls(tmp, mech, user, password):
    port, srv = start_server(tmp)
    try:
        r = swaks(port, "--tls", "--auth", mech, "--auth-user", user,
                  "--auth-password", password)
        assert r.returncode == 0, r.stdout + r.stderr
        # swaks marks lines inside TLS with ~
        assert "<~  235 2.7.0 Authentication successful" in r.stdout, r.stdout
        msg = delivered(tmp)
        assert b"with ESMTPSA id" in msg
    finally:
        text = srv.stop()
    assert re.search(r"event=auth user=%s mechanism=%s" % (user, mech), text), text
    assert password not in text


def test_wrong_password_is_refused_slowly_and_logged(tmp):
    port, srv = start_server(tmp)
    try:
        t0 = time.monotonic()
        r = swaks(port, "--tls", "--auth", "PLAIN", "--auth-user", "anna",
                  "--auth-password", "wrong")
        took = time.monotonic() - t0
        assert "<~* 535 5.7.8 Authentication credentials invalid" in r.stdout, r.stdout
        assert took >= 1.0  # at least the one-second penalty
        # an unknown user gets the same answer
        r = swaks(port, "--tls", "--auth", "PLAIN", "--auth-user", "nobody-here",
                  "--auth-password", "secret")
        assert "<~* 535 5.7.8 Authentication credentials invalid" in r.stdout, r.stdout
    finally:
        text = srv.stop()
    assert "event=auth-failed user=anna mechanism=PLAIN" in text
    assert "wrong" not in text


def test_required_auth_refuses_mail_before_it(tmp):
    port, srv = start_server(tmp)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.example")
            code, text = c.docmd("MAIL", "FROM:<anna@example.org>")
            assert (code, text) == (530, b"5.7.0 Authentication required")
            # loopback in clear text may authenticate (SPEC 8)
            assert c.has_extn("auth")
            c.login("anna", "secret")
            code, _ = c.docmd("MAIL", "FROM:<anna@example.org> AUTH=<>")
            assert code == 250
    finally:
        srv.stop()


def test_clear_text_from_the_network_gets_no_auth(tmp):
    # a session on a pipe believes tcpserver's variables: the client is
    # 192.0.2.7 (test_relay_trust logs in after STARTTLS from a network
    # address in a namespace)
    port, srv = start_server(tmp, auth="optional")
    srv.stop()
    env = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT=str(port),
               TCPREMOTEIP="192.0.2.7")
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(tmp, "postmaster.cf"),
                        "--smtpd=submission"], env=env, capture_output=True, timeout=30,
                       input=b"EHLO client.example\r\nAUTH PLAIN AGFubmEAc2VjcmV0\r\n"
                             b"MAIL FROM:<x@example.org> AUTH=<>\r\nQUIT\r\n")
    out = r.stdout.decode()
    assert "STARTTLS" in out and "AUTH" not in out.split("\r\n250 X-LMTP")[0], out
    assert "\r\n538 5.7.11 Encryption required for requested authentication " \
           "mechanism\r\n" in out, out
    # AUTH= only where AUTH is offered
    assert "\r\n555 5.5.4 " in out, out


def test_auth_protocol_errors(tmp):
    port, srv = start_server(tmp, auth="optional")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            code, _ = c.docmd("AUTH", "PLAIN")
            assert code == 503  # before EHLO
            c.ehlo("client.example")
            assert c.docmd("AUTH", "CRAM-MD5")[0] == 504
            assert c.docmd("AUTH", "PLAIN not-base64!")[0] == 501
            assert c.docmd("AUTH", "LOGIN")[0] == 334
            assert c.docmd("*") == (501, b"5.0.0 Authentication cancelled")
            # an answer longer than any line: refused, and the session
            # goes on (it once ended without a word)
            assert c.docmd("AUTH", "LOGIN")[0] == 334
            code, text = c.docmd("A" * 5000)
            assert (code, text) == (
                500, b"5.5.6 Authentication exchange line is too long"), text
            assert c.docmd("NOOP")[0] == 250
            # RFC 4954: a mechanism is required (501, not 504)
            assert c.docmd("AUTH")[0] == 501
            # PLAIN asking to act as another user ("joe\0anna\0secret"):
            # a failed login, slowed and logged, even with anna's password
            code, text = c.docmd("AUTH", "PLAIN am9lAGFubmEAc2VjcmV0")
            assert (code, text) == (
                535, b"5.7.8 Authentication credentials invalid"), text
            c.login("anna", "secret")
            assert c.docmd("AUTH", "PLAIN AGFubmEAc2VjcmV0")[0] == 503
        # LHLO offers AUTH, and AUTH works after it
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            code, text = c.docmd("LHLO", "client.example")
            assert code == 250 and b"AUTH PLAIN LOGIN" in text, text
            code, text = c.docmd("AUTH", "PLAIN AGFubmEAc2VjcmV0")
            assert code == 235, text
    finally:
        log = srv.stop()
    assert ("event=auth-failed user=anna mechanism=PLAIN "
            "reason=\"asked to act as another user\"") in log, log


def test_a_login_name_with_a_nul_is_not_the_name_before_it(tmp):
    """AUTH LOGIN's user name "anna\\0x" with anna's password once logged
    in as anna: the name was copied as a C string, cut at the NUL, while
    the check meant to refuse a NUL looked at the copy. A name of more
    octets than the session keeps was cut the same way. Both are names
    no user has: 501, and no login."""
    port, srv = start_server(tmp, auth="optional")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.example")
            for name in (b"anna\0x", b"anna\0", b"anna" + b" " * 300):
                assert c.docmd("AUTH", "LOGIN " + base64.b64encode(name).decode())[0] == 334
                code, text = c.docmd(base64.b64encode(b"secret").decode())
                assert code == 501, (name, code, text)
            long_plain = base64.b64encode(b"\0anna" + b" " * 300 + b"\0secret").decode()
            assert c.docmd("AUTH", "PLAIN " + long_plain)[0] == 501
            # the real name still logs in, in the same session
            assert c.docmd("AUTH", "LOGIN " + base64.b64encode(b"anna").decode())[0] == 334
            assert c.docmd(base64.b64encode(b"secret").decode())[0] == 235
    finally:
        log = srv.stop()
    assert log.count("event=auth user=anna mechanism=LOGIN") == 1, log


def test_a_silent_auth_answer_times_out_with_421(tmp):
    """A client that never answers the 334 gets the session's timeout
    reply, as at any command, and the timeout is logged."""
    port, srv = start_server(tmp, auth="optional", wrapper="")
    try:
        with open(os.path.join(tmp, "postmaster.cf")) as f:
            text = f.read()
        with open(os.path.join(tmp, "postmaster.cf"), "w") as f:
            f.write(text.replace("auth = optional\n", "auth = optional\ntimeout = 2s\n"))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.example")
            assert c.docmd("AUTH", "LOGIN")[0] == 334
            t0 = time.monotonic()
            code, text = c.getreply()
            assert (code, text) == (421, b"4.4.2 mail.example.net Timeout during "
                                         b"AUTH, closing connection"), text
            assert 1.5 < time.monotonic() - t0 < 20
    finally:
        srv.stop()
    log = open(os.path.join(tmp, "server.log")).read()
    assert "event=timeout during=AUTH" in log, log


def test_a_session_without_auth_does_not_map_libcrypt(tmp):
    port, srv = start_server(tmp, auth="optional")
    srv.stop()
    cf = os.path.join(tmp, "postmaster.cf")
    maps = session_maps([POSTMASTER, "--config=" + cf, "--smtpd=submission"])
    assert "libcrypt" not in maps and "libc.so" in maps


class Dialogue:
    """A raw SMTP client: one command, the lines of its replies."""

    def __init__(self, port):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def reply(self):
        while True:
            line = self.f.readline().decode("utf-8", "replace").rstrip("\r\n")
            if line[3:4] != "-":
                return line

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        return self.f.readline() == b""

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.mark.parametrize("how", ["undecodable", "wrong-password"])
def test_failed_auth_counts_once_towards_the_error_limit(tmp, how):
    """A failed AUTH is one error of the ten that end a session: nine are
    tolerated, the tenth is answered and followed by 421 4.7.0."""
    port, srv = start_server(tmp, auth="optional")
    try:
        c = Dialogue(port)
        assert c.cmd("EHLO client.example").startswith("250 ")
        if how == "undecodable":
            # no penalty delay: all ten are AUTHs
            auths, bogus = 10, 0
            attempt, refusal = "AUTH PLAIN not-base64!", "501 5.5.2 "
        else:
            # each wrong password costs a growing delay: two will do
            auths, bogus = 2, 8
            attempt, refusal = "AUTH PLAIN AGFubmEAd3Jvbmc=", "535 5.7.8 "
        for i in range(bogus):
            assert c.cmd("BOGUS%d" % i).startswith("500 5.5.2 ")
        for i in range(auths):
            assert c.cmd(attempt).startswith(refusal), (how, i)
            if i < auths - 1:
                assert c.cmd("NOOP") == "250 2.0.0 OK", (how, i)
        assert c.reply() == "421 4.7.0 mail.example.net Too many errors, " \
                            "closing connection", how
        assert c.closed()
        c.close()
    finally:
        text = srv.stop()
    if how == "wrong-password":
        assert text.count("event=auth-failed user=anna") == 2, text


SHA_SLOW, SHA_CHEAP = "$6$rounds=999999$saltsalt$", "$6$cheapsalt$"
BCRYPT_SLOW, BCRYPT_CHEAP = "$2b$12$" + "s" * 22, "$2b$04$" + "c" * 22


@pytest.mark.parametrize("table,logins,settings", [
    ("slow:{slow}\n", ["ghost"], (SHA_SLOW, SHA_CHEAP)),
    ("locked:!\nslow:{slow}\n", ["ghost", "locked"], (SHA_SLOW, SHA_CHEAP)),
    ("cheap:{cheap}\nslow:{slow}\n", ["ghost", "cheap"], (SHA_SLOW, SHA_CHEAP)),
    ("cheap:{cheap}\nslow:{slow}\n", ["ghost", "cheap"],
     (BCRYPT_SLOW, BCRYPT_CHEAP)),
], ids=["one-user", "locked-first", "cheaper-method-first",
        "cheaper-bcrypt-cost-first"])
def test_an_unknown_user_costs_the_hash_of_a_real_one(tmp, table, logins,
                                                      settings):
    """The failed login of an unknown user was hashed with a fixed cheap
    SHA-512 setting, while real users' hashes (yescrypt, or SHA-512 with
    many rounds) took far longer: the time of a 535 told which names
    exist. Then an unknown user cost the first user's method and cost,
    which told them apart all the same when that first line was a locked
    account ("user:!") or of a cheaper method or bcrypt cost than the
    others (a table being migrated). Now every failed login, of an unknown user or a known
    one, costs a hash of each cost class of the table, the slow one
    included. Asserted as a lower bound relative to this machine's own
    crypt time, so a slow or busy machine cannot make it fail."""
    import base64
    import warnings
    with warnings.catch_warnings():  # deprecated in 3.11, still there
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    setting, cheap_setting = settings
    costs = []
    for _ in range(3):
        t0 = time.monotonic()
        slow = crypt.crypt("secret", setting)
        costs.append(time.monotonic() - t0)
    cost = min(costs)
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write(table.format(slow=slow, cheap=crypt.crypt("secret", cheap_setting)))
    cf = os.path.join(tmp, "pm.cf")
    with open(cf, "w") as f:
        f.write("[core]\nhostname = mail.example.net\nlogger = stderr\n"
                "spool-directory = %s/spool\n%s[smtpd \"local\"]\n"
                "listen-port = 127.0.0.1:2587\nauth = optional\n"
                "auth-file = %s\n[route]\n@example.net discard\n"
                % (tmp, "user-id = nobody\n" if ROOT else "", users))
    os.makedirs(os.path.join(tmp, "spool"), exist_ok=True)
    if ROOT:
        os.chown(os.path.join(tmp, "spool"), 65534, 65534)
    for user in logins:
        plain = base64.b64encode(b"\0" + user.encode() + b"\0wrong").decode()
        wire = ("EHLO client.example\r\nAUTH PLAIN %s\r\nQUIT\r\n" % plain).encode()
        t0 = time.monotonic()
        p = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=local"],
                           input=wire, capture_output=True, timeout=60)
        took = time.monotonic() - t0
        assert b"535 5.7.8 " in p.stdout, p.stdout + p.stderr
        # one second of penalty, and the hash of the slow real user
        assert took >= 1.0 + cost / 2, (user, took, cost)
