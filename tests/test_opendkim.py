"""OpenDKIM through postmaster's milter client (issue 13): a private
opendkim (own configuration, socket and key in a scratch directory, in
the foreground) signs mail that an authenticated client submits, and the
signature verifies with Python's dkim (python3-dkim) against the public
key opendkim-genkey wrote; and it verifies inbound mail signed with that
key, adding its Authentication-Results field. Its public key reaches it
through TestPublicKeys, so nothing is looked up in DNS.

opendkim refuses a configuration or a key on a path that other users may
write (/tmp is such a path), so those live in a private directory (0700)
on a path only root may write (pmtest.private_dir: next to this file, or
under /run or the home directory), removed at the end; its socket is in the scratch
directory, where the session user (nobody) may connect to it."""
import base64
import glob
import os
import re
import subprocess

import pytest

from pmmilter import Milter
from pmtest import POSTMASTER, ROOT, no_sanitizer_report, private_dir, remove_tree, scratch_dir, tool, wait_for

dkim = pytest.importorskip("dkim")


def txt_record(path):
    """The TXT data of opendkim-genkey's mail.txt."""
    return "".join(re.findall(r'"([^"]*)"', open(path).read()))


@pytest.fixture
def d():
    d = scratch_dir("pm-dkim-", ("spool", "Maildir"))
    priv = private_dir(".pm-dkim-")
    if priv is None:
        remove_tree(d)
        pytest.skip("no directory that only we may write to, which "
                    "opendkim requires for its key")
    try:
        yield from with_opendkim(d, priv)
    finally:
        remove_tree(priv)
        remove_tree(d)


def with_opendkim(d, priv):
    subprocess.run([tool("opendkim-genkey"), "-D", priv, "-d", "example.org",
                    "-s", "mail"], check=True)
    txt = txt_record(os.path.join(priv, "mail.txt"))
    with open(os.path.join(priv, "keys"), "w") as f:
        f.write("mail._domainkey.example.org %s\n" % txt)
    conf = os.path.join(priv, "opendkim.conf")
    with open(conf, "w") as f:
        f.write("""Syslog no
Background no
Socket local:{d}/dkim.sock
UMask 000
PidFile {p}/opendkim.pid
Domain example.org
Selector mail
KeyFile {p}/mail.private
Mode sv
InternalHosts 192.0.2.99
TestPublicKeys {p}/keys
AuthservID mail.example.net
""".format(d=d, p=priv))
    h = subprocess.run([tool("openssl"), "passwd", "-6", "secret"],
                       capture_output=True, text=True, check=True).stdout
    with open(os.path.join(d, "users"), "w") as f:
        f.write("anna:%s" % h)
    with open(os.path.join(d, "pm.cf"), "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {d}/spool
{user}
[milter "dkim"]
address = unix:{d}/dkim.sock
default-action = tempfail
[smtpd "submission"]
listen-port = 587
auth = optional
auth-file = {d}/users
submission = no
milters = dkim
[smtpd "mx"]
listen-port = 25
milters = dkim
[milter "rec"]
address = unix:{d}/rec.sock
[smtpd "chain"]
listen-port = 2525
milters = dkim rec
[route]
joe@example.net {d}/Maildir/
""".format(d=d, user="user-id = nobody" if ROOT else ""))
    p = subprocess.Popen([tool("opendkim"), "-f", "-x", conf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(os.path.join(d, "dkim.sock")) or
                 p.poll() is not None, what="opendkim's socket")
        assert p.poll() is None, p.stdout.read()
        running.update(txt=txt, key=os.path.join(priv, "mail.private"))
        yield d
    finally:
        p.terminate()  # opendkim lingers 5 s on SIGTERM: no need to wait
        try:
            p.wait(timeout=1)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


running = {}  # the key of the running test: its TXT data, its private file


MESSAGE = ("From: Anna <anna@example.org>\r\nTo: joe@example.net\r\n"
           "Subject: signed by OpenDKIM\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\n"
           "Message-ID: <1@example.org>\r\n\r\nHello Joe,\r\n\r\n"
           "this line has  two spaces and a trailing blank \r\n.dot-stuffed\r\n")


def send(d, port, client, message, auth):
    dialogue = "EHLO client.example\r\n"
    if auth:
        dialogue += "AUTH PLAIN %s\r\n" % base64.b64encode(
            b"\0anna\0secret").decode()
    dialogue += ("MAIL FROM:<anna@example.org>\r\nRCPT TO:<joe@example.net>\r\n"
                 "DATA\r\n" + message.replace("\r\n.", "\r\n..") +
                 ".\r\nQUIT\r\n")
    env = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT=str(port),
               TCPREMOTEIP=client, TCPREMOTEPORT="40000")
    r = subprocess.run([POSTMASTER, "--config=" + os.path.join(d, "pm.cf")],
                       input=dialogue.encode(), capture_output=True, env=env,
                       timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    out = r.stdout.decode()
    assert "\r\n250 2.0.0" in out, out + r.stderr.decode()
    (path,) = glob.glob(os.path.join(d, "Maildir", "new", "*"))
    got = open(path, "rb").read()
    os.unlink(path)
    return got


def verify(d, msg):
    txt = running["txt"].encode()

    def dnsfunc(name, timeout=5):
        assert name in (b"mail._domainkey.example.org.",
                        "mail._domainkey.example.org.")
        return txt
    return dkim.verify(msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                       dnsfunc=dnsfunc)


def test_signs_mail_of_an_authenticated_client(d):
    got = send(d, 587, "127.0.0.1", MESSAGE, auth=True)
    assert b"DKIM-Signature:" in got, got
    assert b"d=example.org" in got and b"s=mail" in got
    assert verify(d, got)
    # a changed body no longer verifies: the check can fail
    assert not verify(d, got.replace(b"Hello Joe", b"Hello Jim"))


def test_does_not_sign_without_auth(d):
    got = send(d, 587, "127.0.0.1", MESSAGE, auth=False)
    assert b"DKIM-Signature:" not in got


def test_verifies_inbound_mail(d):
    key = open(running["key"], "rb").read()
    crlf = MESSAGE.encode()
    sig = dkim.sign(crlf, b"mail", b"example.org", key,
                    include_headers=[b"from", b"to", b"subject", b"date"])
    good = send(d, 25, "192.0.2.7", (sig + crlf).decode(), auth=False)
    ar = re.search(rb"Authentication-Results: mail.example.net;[^\n]*(\n[ \t][^\n]*)*",
                   good)
    assert ar, good
    assert b"dkim=pass" in ar.group(0), ar.group(0)
    bad = send(d, 25, "192.0.2.7",
               (sig + crlf).decode().replace("Hello Joe", "Hello Jim"),
               auth=False)
    assert b"dkim=fail" in bad, bad


def test_the_milter_after_opendkim_sees_the_header(d):
    """OpenDKIM (Debian's) inserts Authentication-Results at index 0,
    above our Received field: the next milter got no header at all and
    the rest of the header as body. It sees OpenDKIM's field (OpenDMARC
    reads it there) and the client's fields."""
    key = open(running["key"], "rb").read()
    crlf = MESSAGE.encode()
    sig = dkim.sign(crlf, b"mail", b"example.org", key,
                    include_headers=[b"from", b"to", b"subject", b"date"])
    rec = Milter(os.path.join(d, "rec.sock"))
    try:
        got = send(d, 2525, "192.0.2.7", (sig + crlf).decode(), auth=False)
    finally:
        rec.close()
    names = [e[1][0] for e in rec.events if e[0] == "L"]
    assert names == ["Authentication-Results", "DKIM-Signature", "From",
                     "To", "Subject", "Date", "Message-ID"], names
    assert bytes(rec.body).startswith(b"Hello Joe,\r\n\r\n")
    assert b"dkim=pass" in got, got
