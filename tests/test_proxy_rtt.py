"""Round trips of the live proxy's onward leg (issue 11, SPEC 7 path 2:
"the proxy adds no round trip of its own").

The target (Postfix's smtp-sink, with PIPELINING) sits behind a relay of
the test's own that delays every chunk by DELAY seconds in each direction
and records the order in which chunks pass. netem would do the delaying
in the kernel, but this machine's kernel has no sch_netem; the relay
works anywhere and, more usefully, the order it records gives the count
of round trips without any timing: a round trip is a run of chunks from
the client that had to wait for the target's answer before the next run.

The proxy is compared with Postfix's own smtp client relaying the same
message through the same relay to the same sink: the number of runs must
be the same (greeting wait, EHLO, MAIL+RCPT+DATA, data+dot). The client's
transaction times, through the proxy and talking to the target directly
through the relay, are printed for the record (pytest -s), not asserted.
"""
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from pmtest import POSTMASTER, ROOT, free_port, listening, no_sanitizer_report, remove_tree, tool, wait_for

DELAY = 0.02  # each way


class DelayRelay:
    """Accepts on 127.0.0.1:port, connects each client to the target,
    and forwards every chunk DELAY seconds after it arrived, in order.
    events: (connection number, "c" or "s", bytes) in arrival order."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.events = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.conns = 0
        self.open = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            s = socket.create_connection(("127.0.0.1", self.target))
            self.open += [c, s]
            for a, b, tag in ((c, s, "c"), (s, c, "s")):
                q = queue.Queue()
                threading.Thread(target=self.pump_in, args=(a, q, tag, self.conns),
                                 daemon=True).start()
                threading.Thread(target=self.pump_out, args=(b, q),
                                 daemon=True).start()

    def pump_in(self, a, q, tag, n):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                if data:
                    self.events.append((n, tag, data))
            q.put((time.monotonic() + DELAY, data))
            if not data:
                return

    def pump_out(self, b, q):
        while True:
            when, data = q.get()
            time.sleep(max(0, when - time.monotonic()))
            try:
                if not data:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(data)
            except OSError:
                return

    def runs(self, n):
        """The client's runs of chunks on connection n up to the target's
        reply to the end of the data: each had to wait for the target."""
        runs, last, text = [], None, b""
        with self.lock:
            events = [(tag, d) for k, tag, d in self.events if k == n]
        for tag, data in events:
            if tag == "c":
                if last != "c":
                    runs.append(b"")
                runs[-1] += data
            last = tag
            if tag == "c":
                text += data
            if tag == "s" and b"\r\n.\r\n" in text:
                break  # the reply to the data: what follows is QUIT
        return runs

    def data_answered(self, n):
        """Whether the target has answered the data on connection n."""
        text = b""
        with self.lock:
            for k, tag, data in self.events:
                if k != n:
                    continue
                if tag == "c":
                    text += data
                elif b"\r\n.\r\n" in text:
                    return True
        return False

    def close(self):
        self.sock.close()
        for c in self.open:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-proxy-rtt-")
    os.chmod(d, 0o755)
    yield d
    remove_tree(d)


@pytest.fixture
def sink(tmp):
    port = free_port()
    argv = [tool("smtp-sink")] + (["-u", "nobody"] if ROOT else []) + [
        "127.0.0.1:%d" % port, "16"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: listening(port, "127.0.0.1"), what="smtp-sink")
    yield port
    p.kill()
    p.wait()


MESSAGE = "Subject: rtt\r\n\r\n" + "a line of text\r\n" * 200


def proxy_session(tmp, relay_port):
    spool = os.path.join(tmp, "spool")
    os.makedirs(spool, exist_ok=True)
    if ROOT:
        shutil.chown(spool, "nobody")
    cf = os.path.join(tmp, "pm.cf")
    with open(cf, "w") as f:
        f.write("[core]\nhostname = mx.rtt.test\nlogger = stderr\n"
                "spool-directory = %s\n%s"
                "[route]\n@rtt.example [127.0.0.1]:%d\n"
                % (spool, "user-id = nobody\n" if ROOT else "", relay_port))
    wire = ("EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\n"
            "RCPT TO:<b@rtt.example>\r\nDATA\r\n")
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()  # the greeting
    t0 = time.monotonic()
    p.stdin.write(wire.encode())
    p.stdin.flush()
    out = b""
    while not re.search(rb"(?m)^354 ", out):
        line = p.stdout.readline()
        assert line, out
        out += line
    p.stdin.write(MESSAGE.encode() + b".\r\n")
    p.stdin.flush()
    final = p.stdout.readline()
    t1 = time.monotonic()
    rest, err = p.communicate(b"QUIT\r\n", timeout=30)
    no_sanitizer_report(err.decode(errors="replace"), "session")
    assert final.startswith(b"250 ") and b"said:" in final, \
        (out + final + rest + err).decode(errors="replace")
    return t1 - t0


def direct_session(port):
    """A pipelining client talking to the target itself (through the
    relay): MAIL+RCPT+DATA in one group, then the data."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO client.example\r\n")
    while f.readline()[3:4] == b"-":
        pass
    t0 = time.monotonic()
    s.sendall(b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@rtt.example>\r\nDATA\r\n")
    for _ in range(3):
        f.readline()
    s.sendall(MESSAGE.encode() + b".\r\n")
    f.readline()
    t1 = time.monotonic()
    s.sendall(b"QUIT\r\n")
    s.close()
    return t1 - t0


def test_proxy_adds_no_round_trip(tmp, sink):
    relay = DelayRelay(sink)
    try:
        took = proxy_session(tmp, relay.port)
        runs = relay.runs(1)
        relay2 = DelayRelay(sink)
        direct = direct_session(relay2.port)
        relay2.close()
    finally:
        relay.close()
    # EHLO; MAIL+RCPT+DATA in one group; the data with its final dot
    assert len(runs) == 3, runs
    assert runs[0].startswith(b"EHLO ")
    assert re.match(rb"MAIL FROM:<a@sender.example>.*\r\nRCPT TO:<b@rtt.example>"
                    rb".*\r\nDATA\r\n$", runs[1], re.S), runs[1]
    assert runs[2].endswith(b"\r\n.\r\n")
    print("\nclient's transaction (MAIL to the final reply), %d ms each way "
          "on the onward leg: through the proxy %.0f ms, a client talking to "
          "the target directly %.0f ms" % (DELAY * 1000, took * 1000,
                                          direct * 1000))


class RelayingPostfix:
    """A private Postfix that relays rtt.example to a next hop with its
    own smtp client: the reference for the number of round trips."""

    def __init__(self, next_hop):
        if not ROOT:
            pytest.skip("a private Postfix instance needs root")
        if not os.path.exists("/usr/share/postfix/master.cf.dist"):
            pytest.skip("no /usr/share/postfix/master.cf.dist")
        self.dir = d = tempfile.mkdtemp(prefix="pm-rtt-postfix-")
        os.chmod(d, 0o755)
        for sub in ("etc", "queue", "data"):
            os.mkdir(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "data"), "postfix")
        self.port = free_port()
        self.etc = os.path.join(d, "etc")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("""\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = pf.localdomain
mydestination =
relay_domains = rtt.example
relay_transport = smtp:[127.0.0.1]:{hop}
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
maillog_file = {d}/maillog
maillog_file_prefixes = /tmp, /var
""".format(d=d, hop=next_hop))
        with open("/usr/share/postfix/master.cf.dist") as f:
            master = f.read()
        master = re.sub(r"(?m)^smtp      inet.*$",
                        "127.0.0.1:%d inet n - n - - smtpd" % self.port, master)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)
        r = subprocess.run([tool("postfix"), "-c", self.etc, "start"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            log = ""
            if os.path.exists(os.path.join(d, "maillog")):
                log = open(os.path.join(d, "maillog"), errors="replace").read()
            self.stop()
            pytest.skip("Postfix cannot start here: " + r.stdout + r.stderr + log)
        wait_for(lambda: listening(self.port, "127.0.0.1"), 15, "Postfix")

    def stop(self):
        subprocess.run([tool("postfix"), "-c", self.etc, "stop"],
                       capture_output=True, timeout=60)
        remove_tree(self.dir)


def test_postfix_client_takes_as_many_round_trips(tmp, sink):
    """The reference: Postfix's smtp client, relaying the same message to
    the same sink through the same relay, waits as many times."""
    relay = DelayRelay(sink)
    pf = RelayingPostfix(relay.port)
    try:
        s = socket.create_connection(("127.0.0.1", pf.port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO client.example\r\n")
        while f.readline()[3:4] == b"-":
            pass
        s.sendall(b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@rtt.example>\r\nDATA\r\n")
        for _ in range(3):
            f.readline()
        s.sendall(MESSAGE.encode() + b".\r\n")
        assert f.readline().startswith(b"250 ")
        s.sendall(b"QUIT\r\n")
        s.close()
        wait_for(lambda: relay.data_answered(1), 30,
                 "Postfix's delivery through the relay")
        runs = relay.runs(1)
    finally:
        pf.stop()
        relay.close()
    assert len(runs) == 3, runs
    assert runs[0].startswith(b"EHLO ")
    assert runs[1].startswith(b"MAIL FROM:") and runs[1].endswith(b"DATA\r\n")
