"""The live proxy's round trips (issue 11): with a PIPELINING target the
proxy turns on its onward connection as often as Postfix's own smtp client
does (connect, greeting, EHLO, MAIL+RCPT+DATA, data and dot: 5 round
trips) and no more, so that a client's transaction through the proxy
costs what it would cost talking to the target itself.

The onward leg is slowed by a delay line in this file (a TCP relay on
loopback that holds each octet 10 ms each way and counts the client's
turns) and, where the kernel has sch_netem, by netem in a private network
namespace. `pytest -s` prints the figures. The sessions and peers are
those of test_proxy.py and test_onward.py.
"""
import os
import socket
import threading
import time

import pytest
from pmtest import ThreadedServer, free_port, wait_for
from test_onward import SENDER, SmtpSink, message, peers, postfix, tmp
from test_proxy import greeted, proxy_cf, quit_and_close, stuffed

assert peers and postfix and tmp  # fixtures, imported for the tests below


# ------------------------------------------------------------------ #
# 4. Round trips on a slow onward leg                                #

# One round trip of the onward leg. A PIPELINING target costs Postfix's
# own smtp client 5 of them per message: connect, greeting, EHLO,
# MAIL+RCPT+DATA, data and dot. The proxy may spend those and no more.
RTT = 0.020
POSTFIX_ROUND_TRIPS = 5


class DelayLine(ThreadedServer):
    """A TCP relay on 127.0.0.1 in front of 127.0.0.1:port that delays
    every octet by half a round trip in each direction, and holds a new
    connection for 1.5 round trips before it connects onward (SYN,
    SYN-ACK, ACK), so that the greeting arrives two round trips after the
    connect, as on a real link. It records what each connection carries
    and when: flights() counts the client's turns."""

    def __init__(self, port, rtt=RTT):
        self.target, self.half = port, rtt / 2
        self.conns = []
        self.lock = threading.Lock()
        super().__init__(backlog=16)

    def _accepted(self, down):
        rec = {"start": time.monotonic(), "events": []}
        self.conns.append(rec)
        threading.Thread(target=self._connect, args=(down, rec), daemon=True).start()

    def _connect(self, down, rec):
        time.sleep(3 * self.half)
        try:
            up = socket.create_connection(("127.0.0.1", self.target), timeout=30)
        except OSError:
            down.close()
            return
        for src, dst, way in ((down, up, "c2s"), (up, down, "s2c")):
            threading.Thread(target=self._pump, args=(src, dst, way, rec),
                             daemon=True).start()

    def _pump(self, src, dst, way, rec):
        import queue as queue_mod
        q = queue_mod.Queue()

        def deliver():
            while True:
                due, data = q.get()
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return
        threading.Thread(target=deliver, daemon=True).start()
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            now = time.monotonic()
            with self.lock:
                rec["events"].append((now, way, data))
            q.put((now + self.half, data))
            if not data:
                return

    def flights(self, rec):
        """The client's flights before its QUIT: runs of octets towards
        the target that follow octets from it (one per round trip after
        the greeting)."""
        n, last = 0, "s2c"
        with self.lock:
            events = sorted(rec["events"], key=lambda e: e[0])
        for _, way, data in events:
            if not data:
                continue
            if way == "c2s" and last == "s2c" and not data.upper().startswith(b"QUIT"):
                n += 1
            last = way
        return n


ROUND_TRIP_MESSAGE = message("round trips")


def proxied_transaction(cf):
    """A pipelining client's MAIL, RCPT and DATA, then the data: seconds
    from its MAIL to the reply to its dot, and when that reply came."""
    s = greeted(cf)
    try:
        t0 = time.monotonic()
        s.send(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\nDATA\r\n" % SENDER.encode())
        replies = [s.reply() for _ in range(3)]
        assert [r[:4] for r in replies] == ["250 ", "250 ", "354 "], replies
        s.send(stuffed(ROUND_TRIP_MESSAGE))
        reply = s.reply()
        t1 = time.monotonic()
        assert reply.startswith("250 2.0.0 "), reply
    finally:
        quit_and_close(s)
    return t1 - t0, t1


def direct_transaction(port):
    """The same client talking to 127.0.0.1:port itself: seconds from its
    connect to the reply to its dot."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        f = c.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                assert line[:1] in b"2345", line
                if line[3:4] != b"-":
                    return line
        reply()
        c.sendall(b"EHLO client.example\r\n")
        reply()
        c.sendall(b"MAIL FROM:<%s>\r\nRCPT TO:<joe@example.net>\r\nDATA\r\n" % SENDER.encode())
        assert [reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        c.sendall(stuffed(ROUND_TRIP_MESSAGE))
        assert reply().startswith(b"250 ")
        t = time.monotonic() - t0
        c.sendall(b"QUIT\r\n")
        reply()
    return t


def test_round_trips_to_a_pipelining_target(tmp, peers):
    """smtp-sink (PIPELINING) behind a delay line of 20 ms: the proxy's
    onward connection turns as often as Postfix's client would, and the
    client's transaction costs those round trips, as if it talked to the
    target itself."""
    sink = SmtpSink(tmp)
    peers.append(sink)
    line = DelayLine(sink.port)
    peers.append(line)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % line.port])
    times, flights = [], []
    for _ in range(5):
        took, replied = proxied_transaction(cf)
        rec = line.conns[-1] if line.conns else None
        assert rec and rec["start"] < replied, \
            "no onward connection before the client's reply: not proxied"
        times.append(took)
        flights.append(line.flights(rec))
    before = len(line.conns)
    direct = min(direct_transaction(line.port) for _ in range(5))
    direct_flights = [line.flights(r) for r in line.conns[before:]]
    best = min(times)
    print("\nround trips of %.0f ms: the client's transaction %.0f ms through the "
          "proxy (best of 5; %.1f round trips), %.0f ms talking to the target "
          "directly; onward flights %s (directly: %s)"
          % (RTT * 1000, best * 1000, best / RTT, direct * 1000, flights,
             direct_flights))
    # EHLO, MAIL+RCPT+DATA, data+dot: after the connect and the greeting
    assert flights == [POSTFIX_ROUND_TRIPS - 2] * 5, flights
    assert direct_flights == [POSTFIX_ROUND_TRIPS - 2] * 5, direct_flights
    # and in time: those round trips, and less than one more than the
    # client spends talking to the target itself
    assert POSTFIX_ROUND_TRIPS * RTT <= best < direct + RTT, \
        "%.1f round trips, %.1f directly" % (best / RTT, direct / RTT)


def test_round_trips_match_postfix_own_client(tmp, peers, postfix):
    """The count the proxy is held to, measured: the private Postfix
    relays one message to smtp-sink through the same delay line, and its
    smtp client turns as often as the proxy does."""
    import smtplib
    import subprocess
    from pmtest import tool
    sink = SmtpSink(tmp)
    peers.append(sink)
    line = DelayLine(sink.port)
    peers.append(line)
    r = subprocess.run([tool("postconf"), "-c", postfix.etc, "-e",
                        "transport_maps = inline:{ far.example=smtp:[127.0.0.1]:%d }"
                        % line.port], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([tool("postfix"), "-c", postfix.etc, "reload"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    time.sleep(1)  # the reload restarts Postfix's daemons
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as c:
        c.sendmail(SENDER, ["x@far.example"], ROUND_TRIP_MESSAGE)
    wait_for(lambda: len(sink.messages()) == 1, 30, "Postfix's relaying")
    (rec,) = line.conns
    postfix_flights = line.flights(rec)
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % line.port])
    proxied_transaction(cf)
    proxy_flights = line.flights(line.conns[-1])
    print("\nonward flights after the greeting: Postfix's smtp client %d, the proxy %d"
          % (postfix_flights, proxy_flights))
    assert postfix_flights == POSTFIX_ROUND_TRIPS - 2, postfix_flights
    assert proxy_flights == postfix_flights


NETEM_DRIVER = r"""
import json, os, subprocess, sys, time
cfg = json.loads(sys.argv[1])
sys.path.insert(0, cfg["tests"])
os.environ["POSTMASTER"] = cfg["postmaster"]
def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True)
run("ip", "link", "set", "lo", "up")
r = run("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio")
r2 = r.returncode == 0 and run("tc", "qdisc", "add", "dev", "lo", "parent", "1:3",
                               "handle", "30:", "netem", "delay", "%dms" % cfg["half_ms"])
if r.returncode != 0 or r2.returncode != 0:
    print(json.dumps({"skip": (r.stderr + (r2.stderr if r2 else "")).strip()}))
    sys.exit(0)
for match in ("dport", "sport"):
    r = run("tc", "filter", "add", "dev", "lo", "parent", "1:0", "protocol", "ip",
            "u32", "match", "ip", match, str(cfg["port"]), "0xffff", "flowid", "1:3")
    assert r.returncode == 0, r.stderr
sink = subprocess.Popen(cfg["sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    import test_proxy_rtt as test_proxy
    from pmtest import wait_for, listening
    wait_for(lambda: listening(cfg["port"]), 10, "smtp-sink")
    proxied = [test_proxy.proxied_transaction(cfg["cf"])[0] for _ in range(5)]
    direct = [test_proxy.direct_transaction(cfg["port"]) for _ in range(5)]
    print(json.dumps({"proxied": proxied, "direct": direct}))
finally:
    sink.kill()
    sink.wait()
"""


def test_round_trips_with_netem(tmp):
    """The same on a real link: in a private network namespace, netem
    delays the onward leg only (packets to and from the target's port,
    10 ms each way) and the client's transaction takes Postfix's round
    trips and no more. Skipped where the kernel has no sch_netem."""
    import json
    import subprocess
    import sys
    from pmtest import POSTMASTER, ROOT, tool
    if not ROOT:
        pytest.skip("a network namespace needs root here")
    tool("tc")
    port = free_port()
    cf = proxy_cf(tmp, ["[127.0.0.1]:%d" % port])
    sink = [tool("smtp-sink"), "-u", "nobody", "127.0.0.1:%d" % port, "10"]
    cfg = {"tests": os.path.dirname(os.path.abspath(__file__)), "postmaster": POSTMASTER,
           "half_ms": int(RTT * 500), "port": port, "cf": cf, "sink": sink}
    r = subprocess.run([tool("unshare"), "-n", sys.executable, "-c", NETEM_DRIVER,
                        json.dumps(cfg)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in res:
        pytest.skip("netem is not available (kernel module sch_netem): " + res["skip"])
    best, direct = min(res["proxied"]), min(res["direct"])
    print("\nnetem, round trips of %.0f ms: the client's transaction %.0f ms through "
          "the proxy (%.1f round trips), %.0f ms talking to the target directly"
          % (RTT * 1000, best * 1000, best / RTT, direct * 1000))
    assert POSTFIX_ROUND_TRIPS * RTT <= best < direct + RTT, \
        "%.1f round trips, %.1f directly" % (best / RTT, direct / RTT)
