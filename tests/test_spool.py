"""The spool (SPEC 7 path 3, 7.1): durability under kill -9, a full
file system, the flusher and its back-off, RFC 3464 bounces, double
bounces, --queue / --delete / --flush=ID, concurrent flushers, and the
Received-header loop limit.

Every server here runs on 127.0.0.1 and a free port and is stopped when
its test ends; every test directory (and tmpfs mount) is removed. Tests
run as root, so every configuration has `user-id = nobody` and every
directory a session or a delivery writes is mode 1777.

POSTMASTER names the binary under test (tests/run-suites sets it to the
normal or the sanitizer build); every output is searched for sanitizer
reports.

Run `pytest -s tests/test_spool.py` to see the figures of the crash test.
"""
import email
import email.utils
import glob
import hashlib
import os
import queue as queue_mod
import random
import re
import select
import signal
import smtplib
import subprocess
import tempfile
import threading
import time

import pytest
from pmtest import POSTMASTER, SANITIZED, tool, no_sanitizer_report, remove_tree, free_port, listening, wait_for

QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]{18})$")
HOST = "mail.example.net"


# ------------------------------------------------------------------ #
# Directories, configurations, processes                             #


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-spool-")
    os.chmod(d, 0o1777)  # the session runs as nobody when we are root
    yield d
    # nothing we started may outlive the test
    for pid in processes_under(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    remove_tree(d)


def mkdir(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


def write_cf(tmp, routes, core="", extra="", name="postmaster.cf"):
    """A configuration with its spool in tmp/spool and its flusher lock
    in tmp/flush.pid (@DIR@ = tmp); checked with --check."""
    spool = os.path.join(tmp, "spool")
    if not os.path.isdir(spool):
        mkdir(spool)
    text = ("[core]\n"
            "user-id = nobody\n"
            "hostname = %s\n"
            "logger = stderr\n"
            "spool-directory = %s\n"
            "pid-file = %s/flush.pid\n"
            "%s%s"
            "[route]\n%s") % (HOST, spool, tmp, core, extra, routes)
    text = text.replace("@DIR@", tmp)
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([POSTMASTER, "--config=" + path, "--check"],
                       capture_output=True, text=True, errors="replace")
    assert r.returncode == 0, "--check: " + r.stdout + r.stderr
    no_sanitizer_report(r.stdout + r.stderr, "--check")
    return path


def pm(cf, *args, timeout=60):
    """Runs postmaster --config=cf ARGS (--flush, --queue, --delete...)."""
    r = subprocess.run([POSTMASTER, "--config=" + cf, *args],
                       capture_output=True, text=True, errors="replace",
                       timeout=timeout)
    no_sanitizer_report(r.stdout + r.stderr, " ".join(args))
    return r


def flush(cf, *args, timeout=60):
    r = pm(cf, "--flush", *args, timeout=timeout)
    assert r.returncode == 0, "--flush %s: %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def closed_port():
    """A port on which nothing listens (connections are refused)."""
    return free_port()


def proc_info(pid):
    """(ppid, argv) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), [a.decode("utf-8", "replace") for a in argv if a]


def processes_under(text, exclude=()):
    """Live processes whose command line mentions text (a directory or
    configuration path of one test)."""
    out = []
    me = os.getpid()
    for d in glob.glob("/proc/[0-9]*"):
        pid = int(d[6:])
        if pid == me or pid in exclude:
            continue
        info = proc_info(pid)
        if info and any(text in a for a in info[1]):
            out.append(pid)
    return out


# ------------------------------------------------------------------ #
# The spool's files                                                  #


def unescape(field):
    if field == "-":
        return ""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), field)


def envelope(spool, qid):
    """The envelope of qid, whichever of the spool's layouts holds it
    (ID.env, or the head of the message file up to its "message" line): a
    dict of its header items and 'targets', a list of dicts (state,
    attempts, next, kind, via, addr, orig, arg, and code, dsn, remote,
    text of the last reply)."""
    for name in (qid + ".env", qid):
        path = os.path.join(spool, name)
        if os.path.exists(path):
            break
    with open(path, "rb") as f:
        text = f.read().split(b"\nmessage\n", 1)[0].decode("utf-8", "replace")
    lines = text.splitlines()
    assert lines[0] == "postmaster-envelope 1", lines
    env = {"targets": []}
    for line in lines[1:]:
        key, _, rest = line.partition(" ")
        if key == "target":
            f = rest.split(" ")
            assert len(f) == 8, line
            env["targets"].append(dict(
                state=f[0], attempts=int(f[1]), next=int(f[2]), kind=f[3],
                via=unescape(f[4]), addr=unescape(f[5]), orig=unescape(f[6]),
                arg=unescape(f[7]), code=0))
        elif key == "reply":
            code, dsn, remote, text = (rest.split(" ", 3) + [""])[:4]
            env["targets"][-1].update(code=int(code), dsn=unescape(dsn),
                                      remote=unescape(remote), text=text)
        else:
            env[key] = rest
    return env


def spool_files(spool):
    return sorted(f for f in os.listdir(spool) if f != "lost+found")


def files_of(spool, qids):
    """The spool's files that belong to none of qids."""
    return [f for f in spool_files(spool)
            if not any(re.fullmatch(re.escape(q) + r"(\.\w+)?", f) for q in qids)]


QUEUE_HEAD = re.compile(r"^([0-9A-F]{18})  +(\d+)  +(\S+)  <([^>]*)>(.*)$")
QUEUE_TARGET = re.compile(r"^    (\w+) +<([^>]*)> (.*?) attempts=(\d+)(?: next-in=(\S+))?$")


def queue(cf):
    """--queue as {id: dict(size, age, sender, note, targets=[dict(state,
    addr, target, attempts, next_in, reply)])}, in the listed order."""
    r = pm(cf, "--queue")
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    cur = None
    for line in r.stdout.splitlines():
        m = QUEUE_HEAD.match(line)
        if m:
            cur = out[m[1]] = dict(size=int(m[2]), age=m[3], sender=m[4],
                                   note=m[5].strip(), targets=[])
            continue
        m = QUEUE_TARGET.match(line)
        if m:
            cur["targets"].append(dict(state=m[1], addr=m[2], target=m[3],
                                       attempts=int(m[4]), next_in=m[5],
                                       reply=None))
            continue
        if line.startswith("              ") and cur and cur["targets"]:
            cur["targets"][-1]["reply"] = line.strip()
            continue
        assert line == "the spool is empty" and not out, "--queue: %r" % line
    return out


def maildir_files(path, sub="new"):
    return sorted(glob.glob(os.path.join(path, sub, "*")))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ------------------------------------------------------------------ #
# An SMTP session over pipes                                         #


class Session:
    """One postmaster session on its stdin and stdout. Its stderr (the
    log, logger = stderr) is read to the end in a thread: the detached
    delivery process keeps stderr, so the end of stderr is the end of the
    session AND of the delivery it started."""

    def __init__(self, cf, *args, env=None):
        self.proc = subprocess.Popen([POSTMASTER, "--config=" + cf, *args],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env=dict(os.environ, **(env or {})))
        self.buf = b""
        self.err = b""
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        self.err = self.proc.stderr.read()

    def reply(self, timeout=30):
        """The next reply, as a list of lines."""
        lines = []
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no reply; got %r %r" % (lines, self.buf))
                r, _, _ = select.select([fd], [], [], left)
                if not r:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError("connection closed after %r %r"
                                         % (lines, self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return lines

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def cmd(self, line, expect=None):
        self.send(line.encode() + b"\r\n")
        got = self.reply()
        if expect is not None:
            assert got[-1].startswith(expect), "%r: %r" % (line, got)
        return got[-1]

    def start(self):
        greeting = self.reply()
        assert greeting[-1].startswith("220 "), greeting
        self.cmd("EHLO client.example", "250 ")
        return self

    def mail(self, sender, rcpts, message, mail_args=""):
        """One transaction; the reply to the end of the data (or the first
        refusal)."""
        r = self.cmd("MAIL FROM:<%s>%s" % (sender, mail_args))
        if not r.startswith("250"):
            return r
        for rcpt in rcpts:
            self.cmd("RCPT TO:<%s>" % rcpt, "250 ")
        r = self.cmd("DATA")
        if not r.startswith("354 "):
            return r
        self.send(smtp_data(message))
        return self.reply()[-1]

    def end(self, timeout=30):
        """QUIT, then waits for the session and the delivery it started;
        returns the log."""
        try:
            self.cmd("QUIT", "221 ")
            self.proc.stdin.close()
        except (BrokenPipeError, AssertionError):
            pass
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout)
        assert not self.reader.is_alive(), "the delivery did not end"
        log = self.err.decode("utf-8", "replace")
        no_sanitizer_report(log, "session")
        return log


def smtp_data(message):
    """message (bytes, LF line ends) as DATA: CRLF, dot-stuffed, ended."""
    lines = message.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                   for l in lines)
    return out + b".\r\n"


def send_one(cf, sender, rcpts, message):
    """A whole session with one transaction: (final reply, queue id or
    None, log)."""
    s = Session(cf).start()
    r = s.mail(sender, rcpts, message)
    log = s.end()
    m = QUEUED.match(r)
    return r, m and m[1], log


def make_message(marker, size=2000, extra_headers=b""):
    """A message whose every copy can be recognised (X-Marker) and checked
    for completeness (the body ends with an END line)."""
    head = (b"From: Ann <a@sender.example>\n"
            b"To: list@example.net\n"
            b"Subject: spool test " + marker.encode() + b"\n"
            b"Message-ID: <" + marker.encode() + b"@sender.example>\n"
            b"X-Marker: " + marker.encode() + b"\n" + extra_headers)
    lines, n, total = [], 0, 0
    while total < size:
        line = b"%s line %06d %s\n" % (marker.encode(), n,
                                       hashlib.sha1(b"%s%d" % (marker.encode(), n))
                                       .hexdigest().encode())
        lines.append(line)
        total += len(line)
        n += 1
    lines.append(b"END " + marker.encode() + b"\n")
    body = b"".join(lines)
    return head + b"\n" + body, body


def copy_state(data, marker, body):
    """'complete', 'partial' (a truncated copy) of one stored copy."""
    if data.endswith(b"\n\n" + body) and \
            (b"\nX-Marker: " + marker.encode() + b"\n") in data:
        return "complete"
    return "partial"


MARKER = re.compile(rb"^X-Marker: (\S+)$", re.M)


# ------------------------------------------------------------------ #
# A small SMTP server (aiosmtpd) as the onward relay                 #


class Relay:
    """An aiosmtpd server on 127.0.0.1:port that keeps what it receives."""

    def __init__(self, port):
        from aiosmtpd.controller import Controller
        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((envelope.mail_from,
                                       list(envelope.rcpt_tos),
                                       envelope.original_content))
                return "250 2.0.0 Ok: kept"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


@pytest.fixture
def relay():
    started = []

    def start(port):
        r = Relay(port)
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


# ------------------------------------------------------------------ #
# 1. kill -9 at random moments                                       #

# Two Maildirs and a command: never one mailer run, so always spooled. The
# command stores each delivery in a file of its own (rather than appending
# to one file, where two deliveries running at once could interleave their
# writes), so that every copy can be counted and checked whole.
CRASH_ROUTES = """\
list@example.net @DIR@/A/, @DIR@/B/, "|cat > $(mktemp @DIR@/cmd/m.XXXXXX)"
"""


def classify_copies(paths, bodies):
    """{marker: [states]} and the copies that name no marker at all."""
    seen, unknown = {}, []
    for p in paths:
        data = read_bytes(p)
        m = MARKER.search(data)
        if not m or m[1].decode() not in bodies:
            unknown.append(p)
            continue
        marker = m[1].decode()
        seen.setdefault(marker, []).append(copy_state(data, marker, bodies[marker]))
    return seen, unknown


def crash_traffic(tmp, cf, rcpt, n_msgs, prefix="crash", sizes=(300, 2000, 9000)):
    """n_msgs messages to rcpt from six clients at once over tcpserver
    while sessions, their detached deliveries and concurrent flushers
    (--flush --now in a loop) are killed with SIGKILL at random moments;
    returns once every survivor has ended: (bodies {marker: body},
    results {marker: (code, reply)} of the data, kills {kind: count},
    number of flusher runs, seconds spent sending)."""
    port = free_port()
    server_out = open(tmp + "/tcpserver.out", "wb")
    server = subprocess.Popen(
        [tool("tcpserver"), "-HRl0", "-c", "200", "127.0.0.1", str(port),
         POSTMASTER, "--config=" + cf],
        stdin=subprocess.DEVNULL, stdout=server_out, stderr=subprocess.STDOUT,
        start_new_session=True)
    flush_log = open(tmp + "/flush.log", "wb")
    try:
        wait_for(lambda: listening(port) or server.poll() is not None,
                 what="tcpserver")
        assert server.poll() is None, read_text(tmp + "/tcpserver.out")

        messages, bodies = {}, {}
        for i in range(n_msgs):
            marker = "%s-%04d-%08x" % (prefix, i, random.getrandbits(32))
            msg, body = make_message(marker, size=random.choice(sizes))
            messages[marker] = msg.replace(b"\n", b"\r\n")
            bodies[marker] = body
        results = {}
        todo = queue_mod.Queue()
        for marker in messages:
            todo.put(marker)

        def sender():
            while True:
                try:
                    marker = todo.get_nowait()
                except queue_mod.Empty:
                    return
                try:
                    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
                    try:
                        c.ehlo("client.example")
                        if c.mail("a@sender.example")[0] != 250:
                            continue
                        if c.rcpt(rcpt)[0] != 250:
                            continue
                        code, resp = c.data(messages[marker])
                        results[marker] = (code, resp.decode())
                        c.quit()
                    finally:
                        c.close()
                except (smtplib.SMTPException, OSError):
                    pass

        stop = threading.Event()
        kills = {"session": 0, "delivery": 0, "flusher": 0}
        killed = set()

        def killer():
            rnd = random.Random()
            while not stop.is_set():
                time.sleep(rnd.uniform(0, 0.006))
                cands = {}
                infos = {}
                for pid in processes_under("--config=" + cf, exclude={server.pid}):
                    info = proc_info(pid)
                    if info:
                        infos[pid] = info
                for pid, (ppid, argv) in infos.items():
                    if ppid in infos:
                        # the child between the two forks of a delivery,
                        # or a sanitizer's helper (LeakSanitizer's tracer
                        # shares its parent's command line)
                        continue
                    if "--flush" in argv:
                        kind = "flusher"
                    elif ppid == server.pid:
                        kind = "session"
                    else:
                        kind = "delivery"
                    cands.setdefault(kind, []).append(pid)
                if not cands:
                    continue
                kind = rnd.choice(sorted(cands))
                pid = rnd.choice(cands[kind])
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                kills[kind] += 1
                killed.add(pid)

        flushes = []

        def flusher():
            while not stop.is_set():
                p = subprocess.Popen([POSTMASTER, "--config=" + cf, "--flush", "--now"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=flush_log)
                p.wait()
                flushes.append(p.returncode)
                time.sleep(0.05)

        t0 = time.monotonic()
        helpers = [threading.Thread(target=killer), threading.Thread(target=flusher)]
        senders = [threading.Thread(target=sender) for _ in range(6)]
        for t in helpers + senders:
            t.start()
        for t in senders:
            t.join()
        stop.set()
        for t in helpers:
            t.join()
        send_time = time.monotonic() - t0
        # what the survivors started ends by itself
        wait_for(lambda: not processes_under(tmp, exclude={server.pid}),
                 timeout=60, what="the deliveries to end")
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        server.wait(timeout=10)
        server_out.close()
        flush_log.close()
    no_sanitizer_report(read_text(tmp + "/tcpserver.out"), "sessions")
    no_sanitizer_report(read_text(tmp + "/flush.log"), "flushers")
    return bodies, results, kills, len(flushes), send_time


def test_crash_safety_under_kill_9(tmp):
    """Sessions, their detached deliveries and concurrent flushers are
    killed with SIGKILL at random moments while messages arrive (six
    clients at once over tcpserver). Then the spool is flushed until empty.
    Every acknowledged message must have reached both Maildirs exactly once,
    whole, named after its queue id, and the command at least once whole;
    an unacknowledged message may have been delivered, but never truncated,
    into a Maildir or to the command; nothing stays in the spool or in a
    Maildir's tmp/. The figures are printed (-s).
    SPOOL_CRASH_MESSAGES sets the number of messages (300)."""
    n_msgs = int(os.environ.get("SPOOL_CRASH_MESSAGES", "300"))
    mkdir(tmp + "/cmd")
    cf = write_cf(tmp, CRASH_ROUTES,
                  core="minimal-backoff = 1s\nmaximal-backoff = 2s\n")
    spool = tmp + "/spool"
    bodies, results, kills, n_flushes, send_time = crash_traffic(
        tmp, cf, "list@example.net", n_msgs)

    # flush until nothing is pending (--now: the back-off does not matter)
    rounds = 0
    while queue(cf) and rounds < 5:
        flush(cf, "--now")
        rounds += 1
    assert queue(cf) == {}, "still queued after %d flushes:\n%s" % (
        rounds, pm(cf, "--queue").stdout)
    # what killed sessions left before their commit, and what a killed
    # removal left, is removed by a later flush once old enough (an hour)
    orphans = spool_files(spool)
    old = time.time() - 7200
    for f in orphans:
        os.utime(os.path.join(spool, f), (old, old))
    flush(cf)
    leftovers = spool_files(spool)
    assert leftovers == [], "left in the spool for good: %r" % leftovers

    acked = {m for m, (code, _) in results.items() if code == 250}
    qids = {m: QUEUED.match("250 " + resp)[1] for m, (code, resp) in results.items()
            if code == 250}
    refused = {m: r for m, r in results.items() if r[0] != 250}
    assert not refused, "refused without a kill: %r" % refused

    report = {}
    tmp_leftovers = []
    for box in ("A", "B"):
        seen, unknown = classify_copies(maildir_files(tmp + "/" + box), bodies)
        assert unknown == [], "%s: copies of no message: %r" % (box, unknown)
        partial = {m: s for m, s in seen.items() if "partial" in s}
        assert partial == {}, "%s: truncated copies: %r" % (box, partial)
        missing = sorted(m for m in acked if m not in seen)
        assert missing == [], "%s: acknowledged, never delivered: %r" % (box, missing)
        twice = {m: len(s) for m, s in seen.items() if len(s) > 1}
        assert twice == {}, "%s: delivered more than once: %r" % (box, twice)
        names = {}
        for p in maildir_files(tmp + "/" + box):
            mk = MARKER.search(read_bytes(p))[1].decode()
            names[mk] = os.path.basename(p)
            assert re.fullmatch(r"[0-9A-F]{18}\.[0-9a-f]{8}\.%s" % re.escape(HOST),
                                names[mk]), names[mk]
        for m in acked:
            assert names[m].startswith(qids[m] + "."), (m, qids[m], names[m])
        report[box] = len(seen)
        tmp_leftovers += maildir_files(tmp + "/" + box, "tmp")

    seen, unknown = classify_copies(glob.glob(tmp + "/cmd/m.*"), bodies)
    complete = {m: s.count("complete") for m, s in seen.items()}
    missing = sorted(m for m in acked if not complete.get(m))
    assert missing == [], "command: acknowledged, never delivered whole: %r" % missing
    duplicates = sum(max(0, n - 1) for n in complete.values())
    cmd_partial = sum(s.count("partial") for s in seen.values()) + len(unknown)
    # the mailer reads a whole file, never a pipe its killed feeder left
    assert cmd_partial == 0, "command: truncated copies: %r" % {
        m: s for m, s in seen.items() if "partial" in s}
    # a Maildir delivery from the spool leaves no tmp/ file for good
    assert tmp_leftovers == [], tmp_leftovers

    print("\ncrash test: %d messages in %.1fs, %d acknowledged, %d not "
          "(connection killed); kills: %d sessions, %d deliveries, %d flushers "
          "(%d flusher runs); %d final flush rounds"
          % (n_msgs, send_time, len(acked), n_msgs - len(acked),
             kills["session"], kills["delivery"], kills["flusher"], n_flushes,
             rounds))
    print("crash test: Maildir A holds %d messages, B %d, all exactly once; "
          "command: %d messages, %d duplicate deliveries, %d truncated copies; "
          "%d unacknowledged messages delivered; %d spool files left by dead "
          "processes, all removed by a flush; %d Maildir tmp/ files left for "
          "good by killed processes"
          % (report["A"], report["B"], len(complete), duplicates, cmd_partial,
             len(set(seen) - acked), len(orphans), len(tmp_leftovers)))


def test_crash_safety_under_kill_9_while_proxying(tmp, relay):
    """The same storm with the live proxy: every message goes to one
    onward server (aiosmtpd on 127.0.0.1), so the sessions are killed
    while they proxy (at RCPT, while the data streams, while waiting for
    the target's reply to the dot), and flushers run all along. No message
    answered 250 may be lost (it is at the target, or in the spool and
    then delivered by the last flushes), none may arrive truncated, and
    since each message is sent once, none may arrive twice. The figures
    are printed (-s). PROXY_CRASH_MESSAGES sets the number (200)."""
    n_msgs = int(os.environ.get("PROXY_CRASH_MESSAGES", "200"))
    port = free_port()
    target = relay(port)
    cf = write_cf(tmp, "@example.net [127.0.0.1]:%d\n" % port,
                  core="minimal-backoff = 1s\nmaximal-backoff = 2s\n")
    spool = tmp + "/spool"
    bodies, results, kills, n_flushes, send_time = crash_traffic(
        tmp, cf, "joe@example.net", n_msgs, prefix="proxy", sizes=(300, 9000, 200000))
    log = read_text(tmp + "/tcpserver.out")
    assert "via=proxy" in log, "no message was proxied:\n" + log[-3000:]
    rounds = 0
    while queue(cf) and rounds < 5:
        flush(cf, "--now")
        rounds += 1
    assert queue(cf) == {}, "still queued after %d flushes:\n%s" % (
        rounds, pm(cf, "--queue").stdout)
    # the unsynced copies of killed sessions are never delivered, and a
    # flush removes them once old
    orphans = spool_files(spool)
    old = time.time() - 7200
    for f in orphans:
        os.utime(os.path.join(spool, f), (old, old))
    flush(cf)
    assert spool_files(spool) == [], "left in the spool for good"

    acked = {m for m, (code, _) in results.items() if code == 250}
    refused = {m: r for m, r in results.items() if r[0] != 250}
    assert not refused, "refused without a kill: %r" % refused
    copies, partial = {}, []
    for _, rcpts, content in target.messages:
        assert rcpts == ["joe@example.net"], rcpts
        data = content.replace(b"\r\n", b"\n")
        m = MARKER.search(data)
        assert m and m[1].decode() in bodies, data[:300]
        marker = m[1].decode()
        if copy_state(data, marker, bodies[marker]) != "complete":
            partial.append(marker)
        copies[marker] = copies.get(marker, 0) + 1
    assert partial == [], "truncated at the target: %r" % partial
    missing = sorted(acked - set(copies))
    assert missing == [], "acknowledged, never delivered: %r" % missing
    twice = {m: n for m, n in copies.items() if n > 1}
    assert twice == {}, "delivered more than once: %r" % twice
    print("\nproxy crash test: %d messages in %.1fs, %d acknowledged; kills: %d "
          "sessions, %d deliveries, %d flushers (%d flusher runs); %d final flush "
          "rounds; %d at the target, %d of them unacknowledged; %d spool files "
          "left by dead processes, all removed by a flush"
          % (n_msgs, send_time, len(acked), kills["session"], kills["delivery"],
             kills["flusher"], n_flushes, rounds, len(copies),
             len(set(copies) - acked), len(orphans)))


# ------------------------------------------------------------------ #
# Leftovers of a kill -9, one at a time                              #

def strace_kill_at(syscalls, argv, timeout=60):
    """Runs argv under strace, which kills it (SIGKILL) when it enters the
    first of these system calls; the call is not made."""
    names = ",".join(syscalls)
    r = subprocess.run([tool("strace"), "-f", "-qq", "-o", "/dev/null",
                        "-e", "trace=" + names,
                        "-e", "inject=%s:error=EIO:signal=SIGKILL:when=1" % names,
                        *argv], capture_output=True, text=True,
                       errors="replace", timeout=timeout)
    no_sanitizer_report(r.stdout + r.stderr, " ".join(argv))
    if r.returncode not in (-signal.SIGKILL, 128 + signal.SIGKILL) and \
            "ptrace" in r.stderr:
        pytest.skip("strace cannot trace here: " + r.stderr.strip()[-200:])
    return r


DEFERRED_MAILDIR = """\
x@example.net @DIR@/box/A/ , "|cat > @DIR@/x.cmd" , "|exit 75"
"""


def spool_with_deferred_maildir(tmp):
    """A message spooled for a Maildir that cannot be written yet (its
    parent is not writable by the session's user), a command, and a
    command that always fails temporarily; returns (cf, id) once the first
    delivery deferred the Maildir."""
    os.mkdir(tmp + "/box", 0o755)
    cf = write_cf(tmp, DEFERRED_MAILDIR,
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    msg, _ = make_message("deferred-maildir")
    r, qid, log = send_one(cf, "a@sender.example", ["x@example.net"], msg)
    assert qid, r
    assert 'target="maildir %s/box/A/" status=deferred' % tmp in log, log
    os.chmod(tmp + "/box", 0o1777)
    return cf, qid


def test_killed_maildir_delivery_leaves_no_tmp_file(tmp):
    cf, qid = spool_with_deferred_maildir(tmp)
    r = strace_kill_at(["link", "linkat"], [POSTMASTER, "--config=" + cf,
                                            "--flush=" + qid])
    assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), r
    assert maildir_files(tmp + "/box/A") == []
    assert len(maildir_files(tmp + "/box/A", "tmp")) == 1  # the killed run's
    flush(cf, "--now")
    new = maildir_files(tmp + "/box/A")
    assert len(new) == 1 and os.path.basename(new[0]).startswith(qid + ".")
    assert copy_state(read_bytes(new[0]), "deferred-maildir",
                      make_message("deferred-maildir")[1]) == "complete"
    flush(cf, "--now")
    assert maildir_files(tmp + "/box/A", "tmp") == [], \
        "left in tmp/ after the message was delivered"


def test_killed_envelope_update_leaves_no_temporary_file(tmp):
    """A flush killed while it writes the envelope's new state: the next
    runs deliver the rest, and once the message is gone nothing of it
    stays in the spool."""
    cf, qid = spool_with_deferred_maildir(tmp)
    spool = tmp + "/spool"
    r = strace_kill_at(["rename", "renameat", "renameat2"],
                       [POSTMASTER, "--config=" + cf, "--flush=" + qid])
    assert r.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), r
    # the Maildir was written before the envelope update that died
    assert len(maildir_files(tmp + "/box/A")) == 1
    temps = [f for f in spool_files(spool) if re.fullmatch(qid + r"\.env\.\d+", f)]
    assert temps, spool_files(spool)
    flush(cf, "--now")
    assert len(maildir_files(tmp + "/box/A")) == 1  # exactly once
    r = pm(cf, "--delete=" + qid)
    assert r.returncode == 0, r.stderr
    flush(cf)
    flush(cf)
    assert spool_files(spool) == [], "left in the spool"


LOOP_WIRE = (b"LHLO c\r\nMAIL FROM:<s@example.net>\r\n"
             b"RCPT TO:<joe@example.net> NOTIFY=SUCCESS\r\n"
             b"RCPT TO:<ann@example.net> NOTIFY=SUCCESS\r\nDATA\r\n"
             b"Delivered-To: joe@example.net\r\nSubject: t\r\n\r\nhi\r\n.\r\nQUIT\r\n")


@pytest.mark.parametrize("when", ["delay_enter", "delay_exit"])
def test_a_looping_lmtp_recipient_is_never_delivered_after_a_kill(tmp, when):
    """LMTP answers 554 5.4.6 for a recipient the message already reached
    (its Delivered-To) and spools it for the others. The envelope without
    the looping recipient was written after the commit: a session killed
    between the two left a committed message that the next flush
    delivered to joe, and told the sender so. The reduced envelope is now
    in place before the commit: the session is killed in its second
    rename (before it: the commit; after it: the commit done), and no
    flush ever delivers to joe, while ann gets it exactly once or the
    message was never committed (no reply was given)."""
    os.chmod(tmp, 0o755)
    mkdir(tmp + "/out")
    os.chmod(tmp + "/out", 0o1777)
    cf = write_cf(tmp, 'joe@example.net "|cat > @DIR@/out/joe"\n'
                       'ann@example.net "|cat > @DIR@/out/ann"\n'
                       's@example.net "|cat > /dev/null"\n')
    spool = tmp + "/spool"
    with open(tmp + "/wire", "wb") as f:
        f.write(LOOP_WIRE)
    with open(tmp + "/wire", "rb") as wire:
        p = subprocess.Popen([tool("strace"), "-f", "-qq", "-o", "/dev/null",
                              "-e", "trace=rename,renameat,renameat2",
                              "-e", "inject=rename,renameat,renameat2:%s=5000000:when=2"
                              % when, POSTMASTER, "--config=" + cf],
                             stdin=wire, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: any(re.search(r"\.env(\.\d+)?$", f) for f in spool_files(spool)),
             what="the session's envelope")
    time.sleep(1)  # into the delayed rename
    assert p.poll() is None, p.stderr.read()
    os.killpg(p.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=30)
    if b"ptrace" in err:
        pytest.skip("strace cannot trace here")
    assert b"\r\n250 " not in out.split(b"354 ")[-1], out  # no reply to the data
    flush(cf, "--now")
    flush(cf, "--now")
    assert not os.path.exists(tmp + "/out/joe"), "the looping recipient got it"
    if when == "delay_exit":
        assert read_bytes(tmp + "/out/ann").endswith(b"hi\n")
        assert queue(cf) == {}


def test_killed_session_leaves_nothing_behind(tmp):
    """A session killed in the middle of the data acknowledged nothing:
    what it wrote to the spool is never delivered, and a flush removes
    it once it is old."""
    cf = write_cf(tmp, DEFERRED_MAILDIR.replace("box/A", "A"))
    spool = tmp + "/spool"
    s = Session(cf).start()
    s.cmd("MAIL FROM:<a@sender.example>", "250 ")
    s.cmd("RCPT TO:<x@example.net>", "250 ")
    s.cmd("DATA", "354 ")
    msg, _ = make_message("killed-session", size=200000)
    s.send(smtp_data(msg)[:150000])
    wait_for(lambda: sum(os.path.getsize(os.path.join(spool, f))
                         for f in spool_files(spool)) > 100000,
             what="the session to write the data")
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=10)
    s.reader.join(10)
    assert spool_files(spool), "nothing written"
    assert queue(cf) == {}
    flush(cf, "--now")  # a young leftover may be the data of a live session
    assert maildir_files(tmp + "/A") == [] and not os.path.exists(tmp + "/x.cmd")
    old = time.time() - 7200
    for f in spool_files(spool):
        os.utime(os.path.join(spool, f), (old, old))
    flush(cf)
    assert spool_files(spool) == [], "an hour later, left in the spool"
    assert maildir_files(tmp + "/A") == [] and not os.path.exists(tmp + "/x.cmd")


def test_killed_command_delivery_is_never_truncated(tmp):
    """The message is far larger than a pipe's buffer, and the command
    starts reading only after the process that started it was killed.
    Every copy the command stores must be whole (were its stdin a pipe,
    it would see EOF in the middle of the message)."""
    mkdir(tmp + "/cmd")
    cf = write_cf(tmp, 'big@example.net @DIR@/A/ , "|touch @DIR@/started; '
                  'sleep 2; cat > $(mktemp @DIR@/cmd/m.XXXXXX)"\n',
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    msg, body = make_message("big-command", size=2000000)
    s = Session(cf).start()
    s.cmd("MAIL FROM:<a@sender.example>", "250 ")
    s.cmd("RCPT TO:<big@example.net>", "250 ")
    s.cmd("DATA", "354 ")
    # the session's own delivery runs at once: kill it while the command
    # runs
    s.send(smtp_data(msg))
    r = s.reply()[-1]
    qid = QUEUED.match(r)[1]
    wait_for(lambda: os.path.exists(tmp + "/started"), what="the command")
    time.sleep(0.3)
    for pid in processes_under("--config=" + cf, exclude={s.proc.pid}):
        info = proc_info(pid)
        if info and info[0] not in (s.proc.pid,):
            os.kill(pid, signal.SIGKILL)
    s.end()
    wait_for(lambda: not processes_under(tmp), timeout=30, what="the command")
    flush(cf, "--now")
    copies = glob.glob(tmp + "/cmd/m.*")
    assert copies, "the command got nothing"
    states = [copy_state(read_bytes(p), "big-command", body) for p in copies]
    assert "complete" in states
    assert states.count("partial") == 0, \
        "%d of %d copies of %s truncated: sizes %r (whole: %d)" % (
            states.count("partial"), len(states), qid,
            [os.path.getsize(p) for p in copies], len(msg))


# ------------------------------------------------------------------ #
# 2. A full file system                                              #

@pytest.fixture
def small_fs(tmp):
    """A 2 MB tmpfs mounted on tmp/spool; skips where mount fails."""
    path = tmp + "/spool"
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=1777",
                        "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + r.stderr.strip())
    os.chmod(path, 0o1777)
    yield path
    for pid in processes_under(tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: not processes_under(tmp), what="processes to end")
    r = subprocess.run(["umount", path], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path])
    assert not os.path.ismount(path)


def fill(path, name="filler"):
    """Fills the file system of path with one file; returns its path."""
    filler = os.path.join(path, name)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# A spooled route that delivers to a Maildir at once and to a command once
# tmp/go exists: what the spool holds stays there until the test says.
HELD = ('r@example.net @DIR@/M/ , "|test -e @DIR@/go || exit 75; '
        'cat > $(mktemp @DIR@/out/m.XXXXXX)"\n')


def held_copies(tmp, bodies):
    """{marker: [states]} of what the held route's command stored."""
    seen, unknown = classify_copies(glob.glob(tmp + "/out/m.*"), bodies)
    assert unknown == [], unknown
    return seen


def test_sessions_leave_the_flusher_its_room(tmp, small_fs):
    """Sessions filled the spool to its last block, and then no run could
    deliver, bounce or expire anything (a run wants 256 KiB to record
    what it did). A message is taken only when it fits besides that room:
    SIZE= counts, and the DATA of one that would not fit is 452 4.3.1."""
    spool = small_fs
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD, core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    filler = fill(spool)
    os.truncate(filler, os.path.getsize(filler) - 400 * 1024)
    s = Session(cf).start()
    msg, _ = make_message("declared", size=100)
    r = s.mail("a@sender.example", ["r@example.net"], msg,
               mail_args=" SIZE=200000")
    assert r.startswith("452 4.3.1 "), r  # 200 KB + 256 KiB > 400 KiB
    s.cmd("RSET", "250 ")
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r  # a small one fits
    log = s.end()
    assert "event=spool-error" in log, log
    second = fill(spool, "filler2")
    os.truncate(second, os.path.getsize(second) - 100 * 1024)
    assert free_bytes(spool) < 256 * 1024
    s = Session(cf).start()
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert r.startswith("452 4.3.1 "), r  # nothing past the room
    s.end()
    os.unlink(filler)
    os.unlink(second)
    open(tmp + "/go", "w").close()
    flush(cf, "--now")
    assert queue(cf) == {}


def test_no_run_delivers_while_the_spool_has_no_inode_free(tmp, small_fs):
    """Every record of a delivery is a new ID.env: with blocks free but no
    inode, the runs delivered and could not record it, and so delivered
    the same recipient again on every run. No run delivers then."""
    spool = small_fs
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD, core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    s = Session(cf).start()
    msg, _ = make_message("inodes", size=100)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    s.end()
    wait_for(lambda: not processes_under("--config=" + cf),
             what="the delivery to end")
    used = os.statvfs(spool).f_files - os.statvfs(spool).f_ffree
    r = subprocess.run(["mount", "-o", "remount,nr_inodes=%d" % (used + 20),
                        spool], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("cannot remount the tmpfs: " + r.stderr)
    fillers = []
    while True:
        try:
            fillers.append(os.path.join(spool, ".i%d" % len(fillers)))
            open(fillers[-1], "w").close()
        except OSError:
            fillers.pop()
            break
    open(tmp + "/go", "w").close()
    for _ in range(3):
        r = flush(cf, "--now")
        assert "event=spool-full" in r.stderr, r.stderr
    assert os.listdir(tmp + "/out") == []  # the command never ran
    for f in fillers:
        os.unlink(f)
    flush(cf, "--now")
    assert queue(cf) == {}
    assert len(os.listdir(tmp + "/out")) == 1


def test_full_spool_says_452_and_loses_nothing(tmp, small_fs):
    spool = small_fs
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD, core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    bodies, acked = {}, {}

    def wait_deliveries(session):
        wait_for(lambda: set(processes_under("--config=" + cf)) <= {session.proc.pid},
                 what="the deliveries to end")

    s = Session(cf).start()
    # 1. what fits is acknowledged
    for i in range(3):
        marker = "full-%d" % i
        msg, bodies[marker] = make_message(marker, size=400000)
        r = s.mail("a@sender.example", ["r@example.net"], msg)
        assert QUEUED.match(r), r
        acked[marker] = QUEUED.match(r)[1]
    wait_deliveries(s)
    assert free_bytes(spool) < 1200000, free_bytes(spool)

    # 2. a message larger than the space left: 452 at the end of the data
    msg, bodies["too-big"] = make_message("too-big", size=1500000)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert r.startswith("452 4.3.1 "), r
    wait_deliveries(s)
    assert files_of(spool, acked.values()) == [], "left after a 452"
    s.cmd("RSET", "250 ")

    # 3. a file system without one free block: 452 at DATA or at its end
    filler = fill(spool)
    assert free_bytes(spool) == 0
    msg, bodies["no-space"] = make_message("no-space", size=100)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert r.startswith("452 4.3.1 "), r
    s.cmd("RSET", "250 ")
    wait_deliveries(s)
    assert files_of(spool, list(acked.values()) + ["filler"]) == [], \
        "left after a 452"

    # 4. one free block (the envelope and the message may not both fit):
    # acknowledged whole, or refused with 452 and nothing left
    os.truncate(filler, os.path.getsize(filler) - 4096)
    msg, bodies["one-block"] = make_message("one-block", size=100)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    if QUEUED.match(r):
        acked["one-block"] = QUEUED.match(r)[1]
    else:
        assert r.startswith("452 4.3.1 "), r
        s.cmd("RSET", "250 ")
    print("\nfull spool: with one free block: %s" % r)
    wait_deliveries(s)
    left = files_of(spool, list(acked.values()) + ["filler"])
    assert left == [], "left after %r: %r" % (r, left)

    # 5. space again: the same session takes mail again
    os.unlink(filler)
    msg, bodies["again"] = make_message("again", size=100000)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    acked["again"] = QUEUED.match(r)[1]
    s.end()
    assert files_of(spool, acked.values()) == [], "left when the session ended"
    assert sorted(queue(cf)) == sorted(acked.values())

    # 6. nothing acknowledged was lost: all of it is delivered whole, and
    # nothing else
    open(tmp + "/go", "w").close()
    flush(cf, "--now")
    assert queue(cf) == {}
    assert held_copies(tmp, bodies) == {m: ["complete"] for m in acked}
    seen, unknown = classify_copies(maildir_files(tmp + "/M"), bodies)
    assert unknown == [] and seen == {m: ["complete"] for m in acked}, seen


def test_a_full_spool_delivers_nothing_it_cannot_record(tmp, small_fs):
    """With the spool full, a delivery could not be recorded in the
    envelope, and every queue run made it again (the same copy, once per
    run, for as long as the spool stayed full). A run now delivers
    nothing while the spool has no room for that record
    (event=spool-full), and delivers once there is room."""
    spool = small_fs
    mkdir(tmp + "/out")
    cf = write_cf(tmp, 'r@example.net "|test -e @DIR@/go || exit 75; '
                  'cat > $(mktemp @DIR@/out/m.XXXXXX)" , '
                  '"|test -e @DIR@/go2 || exit 75; cat > /dev/null"\n',
                  core="minimal-backoff = 1s\nmaximal-backoff = 1s\n")
    s = Session(cf).start()
    msg, body = make_message("full-record", size=500)
    assert QUEUED.match(s.mail("a@sender.example", ["r@example.net"], msg))
    s.end()
    filler = fill(spool)
    open(tmp + "/go", "w").close()  # the first target could go now
    for _ in range(3):
        log = flush(cf, "--now").stderr
        assert "event=spool-full" in log, log
    assert glob.glob(tmp + "/out/m.*") == []
    os.unlink(filler)
    open(tmp + "/go2", "w").close()
    flush(cf, "--now")
    assert held_copies(tmp, {"full-record": body}) == {"full-record": ["complete"]}
    assert queue(cf) == {}


def test_data_again_after_452_at_data_leaves_nothing_behind(tmp, small_fs):
    spool = small_fs
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD, core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    filler = fill(spool)
    s = Session(cf).start()
    msg, body = make_message("retry-data", size=100)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert r.startswith("452 4.3.1 "), r
    os.unlink(filler)
    # the transaction (MAIL, RCPT) stands: the client tries DATA again
    r = s.cmd("DATA")
    if r.startswith("354 "):
        s.send(smtp_data(msg))
        r = s.reply()[-1]
        assert QUEUED.match(r), r
        qids = [QUEUED.match(r)[1]]
    else:
        assert r.startswith("503 "), r  # or it ended the transaction
        qids = []
    log = s.end()
    assert files_of(spool, qids) == [], "left when the session ended"
    assert "Sanitizer" not in log


def test_unusable_spool_directory_greets_421(tmp):
    cf = write_cf(tmp, "r@example.net [127.0.0.1]:%d\n" % closed_port())
    os.mkdir(tmp + "/root-only", 0o755)
    for spool in (tmp + "/missing", tmp + "/root-only"):
        s = Session(cf, "--core-spool-directory=" + spool)
        greeting = s.reply()
        assert greeting[-1].startswith("421 4.3.0 "), greeting
        s.proc.stdin.close()
        assert s.proc.wait(timeout=10) == 75
        s.reader.join(10)
        no_sanitizer_report(s.err.decode("utf-8", "replace"), "session")
        assert os.listdir(tmp + "/root-only") == []


# ------------------------------------------------------------------ #
# 3. The flusher: back-off, queue lifetime, the bounce                #

def test_flush_retries_when_due_and_bounces_after_the_queue_lifetime(tmp):
    port = closed_port()
    cf = write_cf(tmp, "r@example.net [127.0.0.1]:%d\n"
                  "a@sender.example @DIR@/bounces/\n" % port,
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    spool = tmp + "/spool"
    msg, body = make_message("flush-me", extra_headers=b"X-Original-Only: 1\n")
    r, qid, log = send_one(cf, "a@sender.example", ["r@example.net"], msg)
    assert qid, r
    assert re.search(r"id=%s .*to=<r@example\.net> .*status=deferred dsn=4\.4\.1 " % qid,
                     log), log

    def target():
        q = queue(cf)
        assert list(q) == [qid], q
        assert q[qid]["sender"] == "a@sender.example"
        assert q[qid]["size"] > len(msg)
        assert len(q[qid]["targets"]) == 1, q
        return q[qid]["targets"][0]

    # deferred: pending, one attempt, the refusal, due in an hour
    t = target()
    assert (t["state"], t["addr"], t["target"], t["attempts"]) == \
        ("pending", "r@example.net", "host [127.0.0.1]:%d" % port, 1), t
    # the port, not the protocol's: which of the host's servers is down
    assert t["reply"] == "451 4.4.1 connect to 127.0.0.1[127.0.0.1]:%d: " \
        "Connection refused" % port, t
    assert 'reply="451 4.4.1 connect to 127.0.0.1[127.0.0.1]:%d: ' % port in log, log
    assert t["next_in"] in ("59m", "60m"), t
    env = envelope(spool, qid)
    arrival = int(env["arrival"])
    assert abs(env["targets"][0]["next"] - (arrival + 3600)) <= 2, env

    # --flush: not due, not tried
    r = flush(cf)
    assert qid not in r.stderr, r.stderr
    assert target()["attempts"] == 1

    # --flush --now: tried again; the back-off doubles
    r = flush(cf, "--now")
    assert "status=deferred" in r.stderr, r.stderr
    t = target()
    assert t["attempts"] == 2 and t["state"] == "pending", t
    assert t["reply"].startswith("451 4.4.1 "), t
    env = envelope(spool, qid)
    assert abs(env["targets"][0]["next"] - (time.time() + 7200)) <= 3, env
    assert maildir_files(tmp + "/bounces") == []

    # past the queue lifetime (0: at once), the next failure bounces
    r = flush(cf, "--now", "--core-queue-lifetime=0s")
    assert "status=bounced" in r.stderr, r.stderr
    assert queue(cf) == {}
    assert pm(cf, "--queue").stdout == "the spool is empty\n"
    assert spool_files(spool) == [], spool_files(spool)
    bounces = maildir_files(tmp + "/bounces")
    assert len(bounces) == 1, bounces
    raw = read_bytes(bounces[0])
    # an expired temporary failure keeps its 4.x.x status, as Postfix's
    # reports of expired mail do; the action says it failed
    check_report(raw, to="a@sender.example", rcpt="r@example.net",
                 arrival=arrival, diagnostic="refused", status=r"4\.4\.1",
                 original=[b"X-Original-Only: 1", b"Message-ID: <flush-me@sender.example>",
                           b"Subject: spool test flush-me"],
                 body=body)


def check_report(raw, to, rcpt, arrival=None, diagnostic=None, original=(),
                 body=None, status=r"5\.\d{1,3}\.\d{1,3}"):
    """A delivered RFC 3464 report (as local delivery stored it)."""
    # the envelope sender of a bounce is empty; local delivery says so
    assert raw.startswith(b"Return-Path: <>\n"), raw[:200]
    assert b"\nDelivered-To: " in raw.split(b"\n\n", 1)[0]
    b = email.message_from_bytes(raw)
    assert b["Auto-Submitted"] == "auto-replied", b["Auto-Submitted"]
    assert "MAILER-DAEMON@" + HOST in b["From"], b["From"]
    assert to in b["To"], b["To"]
    assert b["Date"] and email.utils.parsedate_to_datetime(b["Date"])
    assert b["Message-ID"]
    assert b.get_content_type() == "multipart/report", b.get_content_type()
    assert b.get_param("report-type") == "delivery-status"
    parts = b.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "text/rfc822-headers"], \
        [p.get_content_type() for p in parts]
    assert rcpt in parts[0].get_payload()
    blocks = parts[1].get_payload()
    assert len(blocks) == 2, [dict(x) for x in blocks]
    per_msg, per_rcpt = blocks
    assert per_msg["Reporting-MTA"] == "dns; " + HOST, dict(per_msg)
    when = email.utils.parsedate_to_datetime(per_msg["Arrival-Date"])
    if arrival is not None:
        assert int(when.timestamp()) == arrival, (per_msg["Arrival-Date"], arrival)
    assert per_rcpt["Final-Recipient"] == "rfc822; " + rcpt, dict(per_rcpt)
    assert per_rcpt["Action"] == "failed", dict(per_rcpt)
    assert re.fullmatch(status, per_rcpt["Status"]), dict(per_rcpt)
    diag = per_rcpt["Diagnostic-Code"]
    assert diag and re.match(r"[A-Za-z][\w-]*; \S", diag), dict(per_rcpt)
    if diagnostic:
        assert diagnostic in diag, diag
    headers = parts[2].get_payload()
    if isinstance(headers, list):  # parsed as a message by some versions
        headers = "".join(str(h) for h in headers)
    headers = headers.encode() if isinstance(headers, str) else headers
    for line in original:
        assert line in headers, (line, headers)
    if body is not None:
        assert body.splitlines()[1] not in raw, "the body is in the report"
    return b


# ------------------------------------------------------------------ #
# 4. A bounce is never bounced                                        #

@pytest.mark.parametrize("postmaster", ["works", "fails"])
def test_null_sender_failure_goes_to_postmaster_and_never_loops(tmp, postmaster):
    routes = 'x@example.net "|exit 67" , @DIR@/keep/\n'
    if postmaster == "works":
        routes += "postmaster @DIR@/pm/\n"
    else:
        routes += 'postmaster "|exit 67"\n'
    cf = write_cf(tmp, routes)
    msg, body = make_message("from-null")
    r, qid, log = send_one(cf, "", ["x@example.net"], msg)
    assert qid, r
    assert len(maildir_files(tmp + "/keep")) == 1
    assert re.search(r"id=%s .*to=<x@example\.net> .*status=bounced dsn=5\.1\.1 " % qid, log), log
    # one report, no more
    assert len(re.findall(r"event=bounce bounce-id=", log)) == 1, log
    if postmaster == "works":
        reports = maildir_files(tmp + "/pm")
        assert len(reports) == 1, reports
        check_report(read_bytes(reports[0]), to="postmaster@" + HOST,
                     rcpt="x@example.net", status=r"5\.1\.1",
                     original=[b"X-Marker: from-null"])
        assert "double-bounce" not in log.replace("origin double-bounce", "")
    else:
        assert re.search(r"event=double-bounce status=dropped", log), log
    flush(cf, "--now")
    flush(cf)
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


def test_failed_bounce_goes_to_postmaster(tmp):
    """The sender's own route fails: the bounce fails, and its report (a
    double bounce) goes to postmaster."""
    cf = write_cf(tmp, 'x@example.net "|exit 67" , @DIR@/keep/\n'
                  's@example.net "|exit 77"\n'
                  "postmaster @DIR@/pm/\n")
    msg, body = make_message("bounce-fails")
    r, qid, log = send_one(cf, "s@example.net", ["x@example.net"], msg)
    assert qid, r
    assert len(re.findall(r"event=bounce bounce-id=", log)) == 2, log
    # the fall-back to postmaster says why
    assert re.search(r'event=bounce to=postmaster reason="the bounce to '
                     r'<s@example\.net> failed: 5\d\d 5\.7\.1 ', log), log
    reports = maildir_files(tmp + "/pm")
    assert len(reports) == 1, (reports, log)
    b = check_report(read_bytes(reports[0]), to="postmaster@" + HOST,
                     rcpt="s@example.net", status=r"5\.7\.1",
                     original=[b"Subject: Undelivered Mail Returned to Sender",
                               b"Auto-Submitted: auto-replied"])
    assert b is not None
    flush(cf, "--now")
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


# ------------------------------------------------------------------ #
# 5. --queue, --delete=ID, --flush=ID                                 #

def test_queue_delete_and_flush_one(tmp):
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    spool = tmp + "/spool"
    assert pm(cf, "--queue").stdout == "the spool is empty\n"
    ids, bodies = [], {}
    s = Session(cf).start()
    for i in range(3):
        msg, bodies["q-%d" % i] = make_message("q-%d" % i, size=1000 * 3 ** i)
        r = s.mail("a@sender.example", ["r@example.net"], msg)
        assert QUEUED.match(r), r
        ids.append(QUEUED.match(r)[1])
    s.end()
    assert len(maildir_files(tmp + "/M")) == 3
    q = queue(cf)
    assert list(q) == sorted(ids), q  # oldest first: ids begin with the time
    cmd = ("command test -e %s/go || exit 75; cat > $(mktemp %s/out/m.XXXXXX)"
           % (tmp, tmp))
    for qid in ids:
        e = q[qid]
        assert e["sender"] == "a@sender.example" and e["note"] == "", e
        assert re.fullmatch(r"\d+s", e["age"]), e
        delivered, pending = e["targets"]
        assert (delivered["state"], delivered["addr"], delivered["target"],
                delivered["attempts"], delivered["next_in"]) == \
            ("delivered", "r@example.net", "maildir %s/M/" % tmp, 1, None), e
        assert delivered["reply"].startswith("250 2.0.0 "), e
        assert (pending["state"], pending["addr"], pending["target"],
                pending["attempts"]) == ("pending", "r@example.net", cmd, 1), e
        assert re.fullmatch(r"\d+m", pending["next_in"]), e
        assert pending["reply"].startswith("451 4.3.0 "), e
    assert len(msg) < q[ids[2]]["size"]
    assert q[ids[0]]["size"] < q[ids[1]]["size"] < q[ids[2]]["size"]

    # --delete: gone, without a bounce
    r = pm(cf, "--delete=" + ids[0])
    assert (r.returncode, r.stdout) == (0, ids[0] + ": deleted\n"), r
    assert list(queue(cf)) == sorted(ids[1:])
    assert [f for f in spool_files(spool) if ids[0] in f] == []
    flush(cf)
    assert list(queue(cf)) == sorted(ids[1:])
    r = pm(cf, "--delete=" + ids[0])
    assert r.returncode == 69 and ids[0] in r.stderr, r
    r = pm(cf, "--flush=" + ids[0])
    assert r.returncode == 69 and ids[0] in r.stderr, r
    r = pm(cf, "--delete=../etc/passwd")
    assert r.returncode == 64, r

    # --flush=ID: that message, now; the others untouched
    open(tmp + "/go", "w").close()
    r = pm(cf, "--flush=" + ids[1])
    assert r.returncode == 0, r
    assert "status=sent" in r.stderr, r.stderr
    q = queue(cf)
    assert list(q) == [ids[2]], q
    assert q[ids[2]]["targets"][1]["attempts"] == 1
    assert held_copies(tmp, bodies) == {"q-1": ["complete"]}
    # --flush: nothing due; --flush --now: the rest
    flush(cf)
    assert list(queue(cf)) == [ids[2]]
    flush(cf, "--now")
    assert queue(cf) == {}
    assert held_copies(tmp, bodies) == {"q-1": ["complete"], "q-2": ["complete"]}
    assert maildir_files(tmp + "/bounces") == [] and maildir_files(tmp + "/pm") == []
    assert len(maildir_files(tmp + "/M")) == 3


def test_an_envelope_cut_short_is_kept_not_removed(tmp):
    """A deferred message whose ID.env lost its target lines (cut short by
    something other than postmaster, whose own updates are synced and
    renamed into place) is malformed: --flush keeps it and says so, and it
    is delivered once the envelope is whole again. Such an envelope was
    once read as a message with nothing left to do, and removed."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    spool = tmp + "/spool"
    s = Session(cf).start()
    msg, body = make_message("cut-short", size=1000)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    qid = QUEUED.match(r)[1]
    s.end()
    env = os.path.join(spool, qid + ".env")
    whole = open(env).read()
    with open(env, "w") as f:
        f.write("".join(l for l in whole.splitlines(True)
                        if not l.startswith(("target", "reply", "dsn "))))
    open(tmp + "/go", "w").close()
    r = pm(cf, "--flush", "--now")
    assert r.returncode == 0, r
    assert qid in r.stderr and "malformed" in r.stderr, r.stderr
    assert qid + ".env" in spool_files(spool) and qid in spool_files(spool)
    assert maildir_files(tmp + "/bounces") == [] and glob.glob(tmp + "/out/m.*") == []
    with open(env, "w") as f:
        f.write(whole)
    flush(cf, "--now")
    assert held_copies(tmp, {"cut-short": body}) == {"cut-short": ["complete"]}
    assert spool_files(spool) == []


def test_flush_one_runs_beside_a_queue_run(tmp):
    """--flush=ID while another --flush holds core.pid-file delivers that
    message under its own lock (it once printed a note and exited 0 having
    tried nothing); while another process holds the message itself it
    exits 75, as postmaster(8) EXIT STATUS says. A whole-spool --flush
    still leaves the queue run alone and exits 0."""
    import fcntl
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    msg, body = make_message("beside", size=1000)
    s = Session(cf).start()
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    s.end()
    qid = QUEUED.match(r)[1]
    open(tmp + "/go", "w").close()
    with open(tmp + "/flush.pid", "w") as pidf:
        fcntl.flock(pidf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        pidf.write("%d\n" % os.getpid())
        pidf.flush()
        r = pm(cf, "--flush", "--now")
        assert r.returncode == 0 and "another --flush" in r.stderr, r
        assert list(queue(cf)) == [qid]
        with open(os.path.join(tmp, "spool", qid)) as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = pm(cf, "--flush=" + qid)
            assert r.returncode == 75, r
            assert "%s is being delivered by another process" % qid in r.stderr, r
        assert list(queue(cf)) == [qid]
        r = pm(cf, "--flush=" + qid)
        assert r.returncode == 0, r
        assert "status=sent" in r.stderr, r.stderr
    assert queue(cf) == {}
    assert held_copies(tmp, {"beside": body}) == {"beside": ["complete"]}


def test_a_damaged_envelope_is_listed_skipped_and_deletable(tmp):
    """A message whose ID.env does not parse (here: cut after its first
    lines) is not delivered, bounced or removed by --flush, which logs it
    and goes on with the others and exits 0 (it once exited 75 on every
    run, for ever); --queue and mailq list it as damaged (it was once left
    out); --delete=ID removes it as postsuper -d would (it once refused
    with 69)."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    spool = tmp + "/spool"
    s = Session(cf).start()
    bodies, ids = {}, []
    for name in ("damaged", "sound"):
        msg, bodies[name] = make_message(name, size=1000)
        r = s.mail("a@sender.example", ["r@example.net"], msg)
        assert QUEUED.match(r), r
        ids.append(QUEUED.match(r)[1])
    s.end()
    bad, good = ids
    env = os.path.join(spool, bad + ".env")
    with open(env) as f:
        head = f.read(40)
    with open(env, "w") as f:
        f.write(head)

    r = pm(cf, "--queue")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert ("%s  damaged: %s: malformed envelope (--delete=%s removes it)"
            % (bad, bad, bad)) in lines, r.stdout
    assert any(l.startswith(good + "  ") for l in lines), r.stdout
    r = pm(cf, "--inject", "-bp")  # mailq's layout
    assert r.returncode == 0, r
    assert ("%s (damaged: %s: malformed envelope; --delete=%s removes it)"
            % (bad, bad, bad)) in r.stdout.splitlines(), r.stdout
    assert r.stdout.endswith(" in 2 Requests.\n"), r.stdout

    open(tmp + "/go", "w").close()
    r = pm(cf, "--flush", "--now")
    assert r.returncode == 0, r
    assert "id=%s event=damaged" % bad in r.stderr, r.stderr
    assert "malformed envelope" in r.stderr, r.stderr
    assert held_copies(tmp, bodies) == {"sound": ["complete"]}
    assert sorted(spool_files(spool)) == [bad, bad + ".env"]
    assert maildir_files(tmp + "/bounces") == [] and maildir_files(tmp + "/pm") == []

    r = pm(cf, "--delete=" + bad)
    assert (r.returncode, r.stdout) == (0, bad + ": deleted\n"), r
    assert spool_files(spool) == []
    assert pm(cf, "--queue").stdout == "the spool is empty\n"


SLOW_REPORT_ROUTES = (
    'r1@example.net "|test -e @DIR@/go || exit 75; cat > $(mktemp @DIR@/out/r1.XXXXXX)"\n'
    'r2@example.net "|test -e @DIR@/go || exit 75; cat > $(mktemp @DIR@/out/r2.XXXXXX)"\n'
    'bad@example.net "|test -e @DIR@/go || exit 75; cat > /dev/null; exit 67"\n'
    # the sender's mailbox takes its first message, then hangs
    's@example.net "|cat > $(mktemp @DIR@/out/report.XXXXXX); '
    'test -e @DIR@/slept || { touch @DIR@/slept; sleep 60; }"\n'
    "postmaster @DIR@/pm/\n")


@pytest.mark.parametrize("second, notify", [("r2@example.net", " NOTIFY=SUCCESS"),
                                            ("bad@example.net", "")])
def test_a_run_killed_while_its_report_goes_out_repeats_nothing(tmp, second, notify):
    """A queue run finishes a message's last targets (r1 and r2 delivered
    with NOTIFY=SUCCESS; or r1 delivered and bad failed) and is killed -9
    while the report goes to the sender's hanging mailer. The next run
    delivers that report (again: at least once) and nothing else: the
    message's own state was recorded before the report went out. The
    envelope once still said "pending" during the report's delivery, and
    the next run delivered r2 a second time, or bounced bad again with a
    second, different bounce message."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, SLOW_REPORT_ROUTES,
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net>", "250 ")
    s.cmd("RCPT TO:<r1@example.net>" + notify, "250 ")
    s.cmd("RCPT TO:<%s>%s" % (second, notify), "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(b"Subject: kill during the report\n\nbody\n"))
    r = s.reply()[-1]
    assert QUEUED.match(r), r
    qid = QUEUED.match(r)[1]
    s.end()  # both deferred: no go file yet
    open(tmp + "/go", "w").close()
    run = subprocess.Popen([POSTMASTER, "--config=" + cf, "--flush", "--now"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(tmp + "/slept"), timeout=30,
                 what="the report in the sender's mailer")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
    assert qid not in spool_files(tmp + "/spool"), spool_files(tmp + "/spool")
    r = flush(cf, "--now")
    assert "status=sent" in r.stderr and "event=bounce " not in r.stderr, r.stderr
    out = sorted(os.listdir(tmp + "/out"))
    assert len([f for f in out if f.startswith("r1.")]) == 1, out
    assert len([f for f in out if f.startswith("r2.")]) == (second[:2] == "r2"), out
    reports = {re.search(r"^Message-ID: (.*)$", read_text(tmp + "/out/" + f), re.M)[1]
               for f in out if f.startswith("report.")}
    assert len(reports) == 1, reports
    assert spool_files(tmp + "/spool") == []


def test_an_unreadable_envelope_update_is_not_read_as_the_first(tmp):
    """A message whose ID.env exists but cannot be read (here: mode 000)
    is left alone by the run, with a log line, until it can be read: its
    Maildir target, delivered at once, is not delivered again. The
    envelope at the head of ID (all targets pending, as committed) was
    once read instead, silently, and the Maildir got a second copy."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    spool = tmp + "/spool"
    s = Session(cf).start()
    msg, body = make_message("unreadable", size=1000)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    qid = QUEUED.match(r)[1]
    s.end()
    assert len(maildir_files(tmp + "/M")) == 1
    env = os.path.join(spool, qid + ".env")
    os.chmod(env, 0)
    open(tmp + "/go", "w").close()
    r = pm(cf, "--flush=" + qid)
    assert r.returncode == 69, r
    assert "%s.env: Permission denied" % qid in r.stderr, r.stderr
    r = pm(cf, "--flush", "--now")
    assert r.returncode == 0, r
    assert "id=%s event=damaged" % qid in r.stderr, r.stderr
    assert "Permission denied" in r.stderr, r.stderr
    assert "status=sent" not in r.stderr, r.stderr
    assert "damaged: %s.env: Permission denied" % qid in pm(cf, "--queue").stdout
    assert len(maildir_files(tmp + "/M")) == 1
    os.chmod(env, 0o600)
    flush(cf, "--now")
    assert len(maildir_files(tmp + "/M")) == 1
    assert held_copies(tmp, {"unreadable": body}) == {"unreadable": ["complete"]}
    assert spool_files(spool) == []


def hand_written(spool, qid, target, arrival):
    """A message file written by something other than postmaster, with
    one target line (STATE ATTEMPTS NEXT KIND VIA ADDR ORIG ARG), owned
    by the session user as the spool's own files are."""
    import pwd
    path = os.path.join(spool, qid)
    with open(path, "w") as f:
        f.write("postmaster-envelope 1\narrival %d\nsender s@example.net\n"
                "origin client\nbody 7bit\nsmtputf8 0\nsession x\n"
                "client local\nsmtpd -\ntarget %s\nmessage\n"
                "Subject: hand-written\n\nbody\n" % (arrival, target))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


def test_a_target_line_without_its_destination_is_damage(tmp):
    """Target lines that lack what their kind is delivered with (an mx
    address without a domain, an empty command) make the envelope
    damaged: listed, skipped, deletable, and the run goes on with the
    newer messages. The mx line once crashed every queue run (NULL + 1,
    SIGSEGV) before any newer message was reached, and the empty command
    was run as `sh -c ""` and logged sent: a copy lost."""
    mkdir(tmp + "/M")
    cf = write_cf(tmp, "r@example.net @DIR@/M/\n")
    spool = tmp + "/spool"
    now = int(time.time())
    bad = ["%010X%05X%03X" % (now - 100 + i, i, 0) for i in (1, 2)]
    good = "%010X%05X%03X" % (now - 90, 3, 0)
    hand_written(spool, bad[0], "pending 0 0 mx - foo foo -", now - 99)
    hand_written(spool, bad[1], "pending 0 0 cmd - r@example.net "
                 "r@example.net -", now - 98)
    hand_written(spool, good, "pending 0 0 maildir - r@example.net "
                 "r@example.net %s/M/" % tmp, now - 90)
    listed = pm(cf, "--queue").stdout
    for qid in bad:
        assert "%s  damaged: %s: malformed envelope" % (qid, qid) in listed, listed
    r = pm(cf, "--flush", "--now")
    assert r.returncode == 0, r
    for qid in bad:
        assert "id=%s event=damaged" % qid in r.stderr, r.stderr
    sent = [l for l in r.stderr.splitlines() if "status=sent" in l]
    assert len(sent) == 1 and "id=" + good in sent[0], r.stderr
    assert len(maildir_files(tmp + "/M")) == 1
    assert spool_files(spool) == bad
    for qid in bad:
        assert pm(cf, "--delete=" + qid).returncode == 0
    assert spool_files(spool) == []


def test_a_mailer_that_hangs_holds_up_a_queue_run_once(tmp):
    """Four spooled messages for a [pipe] that hangs (killed at its 2 s
    timeout), then one for another [pipe] and one for a Maildir: a queue
    run waits for the hanging mailer once, defers its three other
    messages at once with the same 451, and delivers the newer ones. It
    once ran the mailer, and waited its timeout, for every message: with
    the default 300 s, twelve such messages filled the flush service's
    hour before any newer one was reached."""
    mkdir(tmp + "/M")
    mkdir(tmp + "/out")
    cf = write_cf(tmp, "h@example.net hang\nk@example.net ok\n"
                  "r@example.net @DIR@/M/\n",
                  extra='[pipe "hang"]\nexec = /bin/sleep 100\ntimeout = 2s\n'
                        '[pipe "ok"]\nexec = /bin/sh -c "cat > @DIR@/out/ok"\n')
    spool = tmp + "/spool"
    now = int(time.time())
    hung = ["%010X%05X%03X" % (now - 100 + i, i, 0) for i in range(4)]
    for qid in hung:
        hand_written(spool, qid, "pending 0 0 pipe hang h@example.net "
                     "h@example.net hang", now - 100)
    hand_written(spool, "%010X%05X%03X" % (now - 50, 8, 0), "pending 0 0 pipe "
                 "ok k@example.net k@example.net ok", now - 50)
    hand_written(spool, "%010X%05X%03X" % (now - 50, 9, 0), "pending 0 0 maildir "
                 "- r@example.net r@example.net %s/M/" % tmp, now - 50)
    t0 = time.monotonic()
    r = flush(cf, "--now")
    took = time.monotonic() - t0
    deferred = re.findall(r" id=(\w+) .*to=<h@example\.net> .*status=deferred "
                          r"dsn=4\.3\.0 .*reply=\"451 4\.3\.0 mailer timed out "
                          r"after 2s\"", r.stderr)
    assert deferred == hung, r.stderr
    assert took < 7, "%.1f s: the mailer was waited for more than once" % took
    assert os.path.exists(tmp + "/out/ok"), r.stderr
    assert len(maildir_files(tmp + "/M")) == 1, r.stderr
    assert sorted(queue(cf)) == hung
    for qid in hung:
        assert envelope(spool, qid)["targets"][0]["attempts"] == 1


# ------------------------------------------------------------------ #
# 6. Concurrent flushers                                              #

def test_a_session_runs_at_most_eight_deliveries_at_once(tmp):
    """Twelve messages in one session to a slow command: the session
    starts a delivery for each of the first eight and leaves the other
    four to the flusher (event=left-to-flush), rather than one process
    per message without end; the flusher delivers those four, and every
    message arrives once."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, 'r@example.net @DIR@/M/ , '
                  '"|sleep 2; cat > $(mktemp @DIR@/out/m.XXXXXX)"\n'
                  "a@sender.example @DIR@/bounces/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    s = Session(cf).start()
    bodies = {}
    for i in range(12):
        msg, bodies["slow-%d" % i] = make_message("slow-%d" % i, size=500)
        assert QUEUED.match(s.mail("a@sender.example", ["r@example.net"], msg))
    log = s.end(timeout=60)
    assert log.count("event=left-to-flush") == 4, log
    assert len(glob.glob(tmp + "/out/m.*")) == 8
    flush(cf, "--now")
    assert held_copies(tmp, bodies) == {k: ["complete"] for k in bodies}
    assert len(maildir_files(tmp + "/M")) == 12
    assert spool_files(tmp + "/spool") == []


def test_one_broken_maildir_does_not_hold_back_the_others(tmp):
    """Through the spool, each recipient's Maildir is delivered on its
    own: one that cannot be written is deferred, the others get the
    message. All Maildirs of a message once went in one all-or-none run,
    so one recipient's broken Maildir deferred the others and at last
    bounced them with its own error."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, "a@example.net @DIR@/A/\nro@example.net @DIR@/RO/\n"
                  'held@example.net "|test -e @DIR@/go || exit 75; '
                  'cat > $(mktemp @DIR@/out/m.XXXXXX)"\n'
                  "s@sender.example @DIR@/bounces/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(tmp, "RO", sub))
    os.chmod(os.path.join(tmp, "RO", "tmp"), 0o555)
    os.chmod(os.path.join(tmp, "RO"), 0o555)
    s = Session(cf).start()
    msg, body = make_message("broken-maildir", size=800)
    r = s.mail("s@sender.example", ["a@example.net", "ro@example.net",
                                    "held@example.net"], msg)
    assert QUEUED.match(r), r
    log = s.end()
    assert len(maildir_files(tmp + "/A")) == 1, log
    assert maildir_files(tmp + "/RO") == []
    lines = [l for l in log.splitlines() if "status=" in l]
    assert any("to=<a@example.net>" in l and "status=sent" in l for l in lines), log
    assert any("to=<ro@example.net>" in l and "status=deferred" in l for l in lines), log
    assert maildir_files(tmp + "/bounces") == []


def test_a_maildir_retry_writes_a_fresh_file(tmp):
    """A spooled Maildir copy has a fixed name (the message id and the
    Maildir's), so a run after a crash finds its own tmp/ file again; it
    writes a fresh one, never through what it finds there (a file linked
    into new/ by the crashed run, or a link someone planted): the victim
    of a planted symlink keeps its content."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, 'r@example.net @DIR@/M/ , "|cat > /dev/null"\n'
                  "s@sender.example @DIR@/bounces/\n",
                  core="minimal-backoff = 1s\nmaximal-backoff = 1s\n")
    s = Session(cf).start()
    msg, _ = make_message("first", size=500)
    assert QUEUED.match(s.mail("s@sender.example", ["r@example.net"], msg))
    s.end()
    (first,) = maildir_files(tmp + "/M")
    qid1, dirhash, host = os.path.basename(first).split(".", 2)
    # the next message's first run cannot link into new/
    os.chmod(tmp + "/M/new", 0o555)
    s = Session(cf).start()
    msg, body = make_message("second", size=500)
    r = s.mail("s@sender.example", ["r@example.net"], msg)
    qid2 = QUEUED.match(r)[1]
    s.end()
    assert len(maildir_files(tmp + "/M")) == 1 and os.listdir(tmp + "/M/tmp") == []
    victim = tmp + "/victim"
    with open(victim, "w") as f:
        f.write("precious\n")
    os.chmod(victim, 0o666)
    os.chmod(tmp + "/M/tmp", 0o1777)
    os.symlink(victim, "%s/M/tmp/%s.%s.%s" % (tmp, qid2, dirhash, host))
    os.chmod(tmp + "/M/new", 0o755)
    time.sleep(1.1)  # the retry is due
    flush(cf)
    assert open(victim).read() == "precious\n"
    assert len(maildir_files(tmp + "/M")) == 2
    assert spool_files(tmp + "/spool") == []


def test_a_clock_that_stepped_back_stretches_nothing(tmp):
    """Times in the envelope ahead of the clock (it stepped back a day
    since they were written): an attempt set further off than
    maximal-backoff is due, and the message is no younger than now, so
    neither the back-off nor queue-lifetime stretch by the step (a flush
    did nothing for a day, and the lifetime counted from a day ahead)."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "a@sender.example @DIR@/bounces/\n"
                  "postmaster @DIR@/pm/\n",
                  core="minimal-backoff = 1s\nmaximal-backoff = 1s\n"
                       "queue-lifetime = 2s\n")
    s = Session(cf).start()
    msg, _ = make_message("clock", size=500)
    qid = QUEUED.match(s.mail("a@sender.example", ["r@example.net"], msg))[1]
    s.end()
    env = os.path.join(tmp, "spool", qid + ".env")
    text = open(env).read()
    day = 86400
    text = re.sub(r"^arrival (\d+)$", lambda m: "arrival %d" % (int(m[1]) + day),
                  text, flags=re.M)
    text = re.sub(r"^target pending (\d+) (\d+) ",
                  lambda m: "target pending %s %d " % (m[1], int(m[2]) + day),
                  text, flags=re.M)
    with open(env, "w") as f:
        f.write(text)
    log = flush(cf).stderr  # a day off, past maximal-backoff: due, deferred
    assert re.search(r"to=<r@example\.net> .*status=deferred", log), log
    time.sleep(2.2)
    log = flush(cf).stderr  # past the lifetime, counted from no later than now
    assert re.search(r"to=<r@example\.net> .*status=bounced", log), log
    assert len(maildir_files(tmp + "/bounces")) == 1


# Stands in for a flusher descheduled between opening a message's file
# and locking it: flock() on a spool message (18 hex digits) waits 2 s.
SLOW_FLOCK = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int flock(int fd, int op)
{
	int (*next)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n > 0) {
		path[n] = 0;
		const char *b = strrchr(path, '/');
		b = b ? b + 1 : path;
		if (strspn(b, "0123456789ABCDEF") == 18)
			sleep(2);
	}
	return next(fd, op);
}
"""


@pytest.mark.skipif(SANITIZED, reason="LD_PRELOAD before the sanitizer runtime")
def test_a_message_removed_as_a_flusher_opens_it_is_not_delivered_again(tmp):
    """The session's delivery holds a message's lock while a slow command
    takes it; a flusher lists and opens the message meanwhile, and locks
    it only once the delivery is done and the files are gone. The file it
    holds is then no longer the spool's: it is skipped. It was once read
    as a message nobody had delivered yet, and delivered again."""
    mkdir(tmp + "/out")
    shim = tmp + "/slowflock.so"
    with open(tmp + "/slowflock.c", "w") as f:
        f.write(SLOW_FLOCK)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, tmp + "/slowflock.c",
                    "-ldl"], check=True)
    # two targets: the message goes through the spool
    cf = write_cf(tmp, 'r@example.net @DIR@/M/ , '
                  '"|sleep 1; cat > $(mktemp @DIR@/out/m.XXXXXX)"\n'
                  "a@sender.example @DIR@/bounces/\n")
    s = Session(cf).start()
    msg, body = make_message("once", size=1000)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    flusher = subprocess.Popen([POSTMASTER, "--config=" + cf, "--flush", "--now"],
                               env=dict(os.environ, LD_PRELOAD=shim),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    s.end()  # waits for the session's delivery
    out, err = flusher.communicate(timeout=60)
    assert flusher.returncode == 0, err
    assert held_copies(tmp, {"once": body}) == {"once": ["complete"]}, err
    assert len(maildir_files(tmp + "/M")) == 1
    assert spool_files(tmp + "/spool") == []


def test_concurrent_flushers_deliver_each_target_once(tmp):
    n = 20
    mkdir(tmp + "/out")
    cf = write_cf(tmp, 'c@example.net "|test -e @DIR@/go || exit 75; sleep 0.2; '
                  'cat > $(mktemp @DIR@/out/m.XXXXXX)" , @DIR@/M/\n',
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    bodies = {}
    s = Session(cf).start()
    for i in range(n):
        marker = "conc-%02d" % i
        msg, bodies[marker] = make_message(marker)
        r = s.mail("a@sender.example", ["c@example.net"], msg)
        assert QUEUED.match(r), r
    log = s.end()
    assert log.count("status=deferred dsn=4.3.0") == n, log
    assert len(queue(cf)) == n
    open(tmp + "/go", "w").close()

    def start(*args):
        return subprocess.Popen([POSTMASTER, "--config=" + cf, "--flush", "--now", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    a = start()
    b = start("--core-pid-file=%s/flush2.pid" % tmp)  # another lock: both run
    wait_for(lambda: read_text(tmp + "/flush.pid").strip() == str(a.pid),
             what="the first flusher's pid file")
    # a third on the first one's pid file: a note, exit 0, at once
    t0 = time.monotonic()
    c = pm(cf, "--flush", "--now", timeout=30)
    took = time.monotonic() - t0
    assert a.poll() is None, "the first flusher ended too soon to tell"
    assert c.returncode == 0, c
    assert "another --flush (pid %d) holds %s/flush.pid" % (a.pid, tmp) in c.stderr, c.stderr
    assert "status=" not in c.stderr, c.stderr
    assert took < 2, took
    out_a, err_a = a.communicate(timeout=60)
    out_b, err_b = b.communicate(timeout=60)
    err_a, err_b = err_a.decode(), err_b.decode()
    no_sanitizer_report(err_a + err_b, "flushers")
    assert (a.returncode, b.returncode) == (0, 0), err_a + err_b
    seen, unknown = classify_copies(glob.glob(tmp + "/out/m.*"), bodies)
    assert unknown == []
    counts = {m: len(v) for m, v in seen.items()}
    assert counts == {m: 1 for m in bodies}, counts
    assert all(v == ["complete"] for v in seen.values())
    assert len(maildir_files(tmp + "/M")) == n
    assert queue(cf) == {}
    print("\nconcurrent flushers: %d deliveries by the first, %d by the second; "
          "the third (same pid file) exited 0 in %.2fs"
          % (err_a.count("status=sent"), err_b.count("status=sent"), took))


# ------------------------------------------------------------------ #
# 7. The hop limit                                                    #

def received_headers(n):
    return b"".join(b"Received: from h%d.example (h%d.example [192.0.2.%d])\n"
                    b"\tby h%d.example; Tue, 1 Dec 2026 00:00:%02d +0000\n"
                    % (i, i, i % 250 + 1, i + 1, i % 60) for i in range(n))


def test_hundred_received_headers_refused_and_never_relayed(tmp, relay):
    port = free_port()
    rel = relay(port)
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD + "far@example.net [127.0.0.1]:%d\n" % port)
    s = Session(cf).start()
    msg, _ = make_message("hops-100")
    r = s.mail("a@sender.example", ["far@example.net", "r@example.net"],
               received_headers(100) + msg)
    assert r.startswith("554 5.4.6 "), r
    # 99 of them, or Received lines in the body, are fine
    bodies = {}
    msg, bodies["hops-99"] = make_message("hops-99")
    r = s.mail("a@sender.example", ["r@example.net"], received_headers(99) + msg)
    assert QUEUED.match(r), r
    msg, bodies["hops-body"] = make_message("hops-body")
    msg += received_headers(150)
    bodies["hops-body"] += received_headers(150)
    r = s.mail("a@sender.example", ["r@example.net"], msg)
    assert QUEUED.match(r), r
    s.end()
    assert rel.messages == []
    seen, unknown = classify_copies(maildir_files(tmp + "/M"), bodies)
    assert unknown == [] and seen == {"hops-99": ["complete"],
                                      "hops-body": ["complete"]}, (seen, unknown)
    for p in maildir_files(tmp + "/M"):
        head = read_bytes(p).split(b"\n\n", 1)[0]
        n = len(re.findall(rb"^Received:", head, re.M))
        assert n in (1, 100), n  # ours makes a hundred
    open(tmp + "/go", "w").close()
    flush(cf, "--now")
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []
    assert rel.messages == []


def test_relayed_from_the_spool_whole_with_our_received_header(tmp, relay):
    port = free_port()
    rel = relay(port)
    # relayed from the spool: the listener does not proxy
    cf = write_cf(tmp, "far@example.net [127.0.0.1]:%d\n" % port,
                  extra='[smtpd "%s"]\nproxy = no\n' % HOST)
    msg, body = make_message("hops-99")
    r, qid, log = send_one(cf, "a@sender.example", ["far@example.net"],
                           received_headers(99) + msg)
    assert qid, r
    assert re.search(r"id=%s .*status=sent" % qid, log), log
    assert len(rel.messages) == 1
    sender, rcpts, data = rel.messages[0]
    data = data.replace(b"\r\n", b"\n")
    assert (sender, rcpts) == ("a@sender.example", ["far@example.net"])
    assert copy_state(data, "hops-99", body) == "complete"
    head = data.split(b"\n\n", 1)[0]
    assert len(re.findall(rb"^Received:", head, re.M)) == 100
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


# ------------------------------------------------------------------ #
# 7. Bounces go where the sender lives                                #

# A listener with a table of its own, reached as tcpserver would hand it a
# connection on 127.0.0.1:2525; the sender is known to that table only.
MX_LISTENER = """\
[smtpd "mx"]
listen-port = 127.0.0.1:2525
routing-table = mx-senders
[route "mx-senders"]
s@inside.example @DIR@/sender/
"""
MX_ENV = {"TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": "2525",
          "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": "40000"}


def send_to_mx(cf, rcpts, message):
    s = Session(cf, "--smtpd=mx", env=MX_ENV).start()
    r = s.mail("s@inside.example", rcpts, message)
    log = s.end()
    m = QUEUED.match(r)
    assert m, r
    return m[1], log


def test_bounce_routed_by_the_accepting_listener(tmp):
    cf = write_cf(tmp, 'x@example.net "|exit 67" , @DIR@/keep/\n'
                  "postmaster @DIR@/pm/\n", extra=MX_LISTENER)
    msg, body = make_message("mx-bounce")
    s = Session(cf, "--smtpd=mx", env=MX_ENV).start()
    r = s.cmd("MAIL FROM:<s@inside.example>", "250 ")
    r = s.cmd("RCPT TO:<x@example.net>", "250 ")
    r = s.cmd("DATA", "354 ")
    s.send(smtp_data(msg))
    r = s.reply()[-1]
    qid = QUEUED.match(r)[1]
    # the envelope names the listener before anything is delivered
    assert envelope(tmp + "/spool", qid)["smtpd"] == "mx"
    log = s.end()
    assert re.search(r"id=%s .*to=<x@example\.net> .*status=bounced" % qid, log), log
    reports = maildir_files(tmp + "/sender")
    assert len(reports) == 1, (reports, maildir_files(tmp + "/pm"), log)
    check_report(read_bytes(reports[0]), to="s@inside.example",
                 rcpt="x@example.net", status=r"5\.\d+\.\d+",
                 original=[b"X-Marker: mx-bounce"], body=body)
    assert maildir_files(tmp + "/pm") == []
    assert "to=postmaster" not in log, log
    flush(cf, "--now")
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


def test_bounce_to_postmaster_says_why(tmp):
    """A sender that no table routes: the report goes to postmaster, and
    the log says why."""
    cf = write_cf(tmp, 'x@example.net "|exit 67" , @DIR@/keep/\n'
                  "postmaster @DIR@/pm/\n",
                  extra=MX_LISTENER.replace("s@inside.example", "other@inside.example"))
    msg, _ = make_message("mx-nowhere")
    qid, log = send_to_mx(cf, ["x@example.net"], msg)
    assert len(maildir_files(tmp + "/pm")) == 1, log
    assert maildir_files(tmp + "/sender") == []
    m = re.search(r"id=%s event=bounce to=postmaster reason=(.*)$" % qid, log, re.M)
    assert m, log
    assert "<s@inside.example> has no route: 5" in m[1], m[1]


def test_bounce_of_a_listener_gone_from_the_configuration(tmp):
    """The message waits in the spool; meanwhile [smtpd "mx"] leaves the
    configuration: its bounce is routed with the global tables, and the log
    says so."""
    port = closed_port()
    routes = ("x@example.net [127.0.0.1]:%d, @DIR@/keep/\n"
              "postmaster @DIR@/pm/\n" % port)
    cf = write_cf(tmp, routes, extra=MX_LISTENER)
    msg, _ = make_message("mx-gone")
    qid, log = send_to_mx(cf, ["x@example.net"], msg)
    assert re.search(r"id=%s .*status=deferred" % qid, log), log
    later = write_cf(tmp, routes + "s@inside.example @DIR@/global/\n",
                     name="later.cf")
    r = flush(later, "--now", "--core-queue-lifetime=0s")
    assert re.search(r'id=%s event=bounce smtpd=mx reason="no \[smtpd '
                     r'\\?"mx\\?"\] in the configuration: routed with the '
                     r'global tables"' % qid, r.stderr), r.stderr
    assert len(maildir_files(tmp + "/global")) == 1, r.stderr
    assert maildir_files(tmp + "/sender") == []
    assert maildir_files(tmp + "/pm") == []
    assert queue(later) == {}


# ------------------------------------------------------------------ #
# 8. One meaning of size=                                             #

def test_size_is_the_stored_message_in_every_log_line(tmp):
    """size= is the message as stored and delivered, our Received header
    included (Postfix's queue file message size): the same figure in the
    queued, sent and deferred lines, in --queue, and in a Maildir copy
    without the two lines that local delivery puts on top."""
    cf = write_cf(tmp, 'spooled@example.net @DIR@/M/, "|exit 75"\n'
                  "direct@example.net @DIR@/D/\n")
    msg, _ = make_message("sizes")
    s = Session(cf).start()
    r = s.mail("a@sender.example", ["spooled@example.net"], msg)
    qid = QUEUED.match(r)[1]
    assert s.mail("a@sender.example", ["direct@example.net"], msg).startswith("250 ")
    log = s.end()
    sizes = {m[1]: int(m[2]) for m in
             re.finditer(r"^.* to=<(\S+)> .*?status=(?:queued|sent|deferred) .*?"
                         r"size=(\d+)", log, re.M)}

    def stored(path):
        data = read_bytes(path)
        assert data.startswith(b"Return-Path: "), data[:100]
        return len(data[data.index(b"\nReceived: ") + 1:])
    (copy,) = maildir_files(tmp + "/M")
    (direct,) = maildir_files(tmp + "/D")
    lines = re.findall(r"^.*id=%s .*size=(\d+).*$" % qid, log, re.M)
    assert len(lines) == 3, log  # queued, sent, deferred
    assert set(lines) == {str(stored(copy))}, log
    assert queue(cf)[qid]["size"] == stored(copy)
    assert sizes["direct@example.net"] == stored(direct), log
    assert stored(direct) > len(msg)


def test_a_delivery_that_cannot_start_is_logged_and_left_to_flush(tmp):
    """fork failing for the session's immediate delivery left no trace in
    the log; the message is safe in the spool and --flush delivers it."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD)
    open(tmp + "/go", "w").close()
    msg, _ = make_message("nofork", size=100)
    wire = ("EHLO x\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<r@example.net>\r\n"
            "DATA\r\n").encode() + smtp_data(msg) + b"QUIT\r\n"
    # one process for the user: the session runs, its fork fails
    r = subprocess.run(["prlimit", "--nproc=1:1", POSTMASTER, "--config=" + cf],
                       input=wire, capture_output=True, timeout=60)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert any(QUEUED.match(l) for l in out.split("\r\n")), out + err
    assert "event=left-to-flush reason=" in err, err
    assert len(queue(cf)) == 1
    flush(cf, "--now")
    assert queue(cf) == {}
    assert len(os.listdir(tmp + "/out")) == 1


@pytest.mark.skipif(SANITIZED, reason="the sanitizer runtime needs more "
                    "descriptors than the limits this test sets")
def test_out_of_descriptors_the_spool_is_neither_empty_nor_damaged(tmp):
    """Short of file descriptors, --queue said 'the spool is empty' or
    called sound messages 'damaged ... --delete removes it', --flush
    logged them damaged, and both exited 0. Whatever the limit, the
    answer is the messages or a temporary failure (exit 75)."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, HELD, core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    s = Session(cf).start()
    ids = []
    for i in range(2):
        msg, _ = make_message("fd-%d" % i, size=100)
        r = s.mail("a@sender.example", ["r@example.net"], msg)
        assert QUEUED.match(r), r
        ids.append(QUEUED.match(r)[1])
    s.end()
    wait_for(lambda: not processes_under("--config=" + cf),
             what="the deliveries to end")
    for limit in range(4, 12):
        for mode in ("--queue", "--flush"):
            r = subprocess.run(["prlimit", "--nofile=%d:%d" % (limit, limit),
                                POSTMASTER, "--config=" + cf, mode],
                               capture_output=True, text=True, timeout=60)
            said = r.stdout + r.stderr
            assert "empty" not in said and "damaged" not in said, (limit, said)
            if mode == "--queue" and r.returncode == 0:
                assert all(i in r.stdout for i in ids), (limit, said)
            else:
                assert r.returncode in (0, 75), (limit, r.returncode, said)
    assert sorted(queue(cf)) == sorted(ids)
