"""The flusher sends several messages to one destination over one
connection, with RSET between them (issue 5, SPEC 7.1), and starts a new
connection when a kept one stops answering.

The peer is aiosmtpd on 127.0.0.1, counting connections and transactions.
The messages first meet a peer that answers 450 to every recipient, so
they stay in the spool; --flush --now then delivers them to a peer that
accepts.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from pmtest import POSTMASTER, ROOT, free_port

aiosmtpd = pytest.importorskip("aiosmtpd.controller")


class Peer:
    def __init__(self, port, answer):
        self.connections = 0
        self.rsets = 0
        self.got = []
        peer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if answer != "250":
                    return answer
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                peer.got.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 2.0.0 stored"

            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                peer.connections += 1  # one EHLO per connection (no TLS here)
                session.host_name = hostname
                return responses

            async def handle_RSET(self, server, session, envelope):
                peer.rsets += 1
                return "250 OK"

        self.c = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
        self.c.start()

    def stop(self):
        self.c.stop()


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-reuse-")
    os.chmod(d, 0o1777)
    os.mkdir(os.path.join(d, "spool"))
    os.chmod(os.path.join(d, "spool"), 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_flush_shares_one_connection_per_destination(tmp):
    port = free_port()
    cf = os.path.join(tmp, "postmaster.cf")
    with open(cf, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {tmp}/spool
pid-file = {tmp}/flush.pid
{user}
# the spool's flusher is the point: the session does not proxy
[smtpd "mail.example.net"]
proxy = no
[route]
@ext.example [127.0.0.1]:{port}
""".format(tmp=tmp, port=port, user="user-id = nobody" if ROOT else ""))
    refusing = Peer(port, "450 4.2.0 try later")
    try:
        for n in range(3):
            p = subprocess.run([POSTMASTER, "--config=" + cf], timeout=60, capture_output=True,
                               input=("EHLO c\r\nMAIL FROM:<s%d@example.org>\r\n"
                                      "RCPT TO:<a%d@ext.example>\r\nDATA\r\nSubject: %d\r\n\r\n"
                                      "x\r\n.\r\nQUIT\r\n" % (n, n, n)).encode())
            assert re.search(rb"^250 2\.0\.0 Ok: queued as", p.stdout, re.M), p.stdout
    finally:
        refusing.stop()
    q = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"], capture_output=True,
                       text=True).stdout
    assert q.count("450 4.2.0") == 3, q
    accepting = Peer(port, "250")
    try:
        r = subprocess.run([POSTMASTER, "--config=" + cf, "--flush", "--now"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert sorted(g[0] for g in accepting.got) == ["s0@example.org", "s1@example.org",
                                                       "s2@example.org"]
        assert accepting.connections == 1
        assert accepting.rsets == 2
    finally:
        accepting.stop()
    q = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"], capture_output=True,
                       text=True).stdout
    assert q == "the spool is empty\n", q
