"""What the pytest suites share: the binary under test, whether we are
root, finding a tool, sanitizer reports, free ports, removing a test
directory and the base of the scripted TCP peers (ThreadedServer).
Imported by the test files (pytest puts tests/ on sys.path).

POSTMASTER names the binary under test (tests/run-suites sets it to the
normal or the sanitizer build).
"""
import os
import shutil
import time
import socket
import threading

import pytest

POSTMASTER = os.path.abspath(os.environ.get("POSTMASTER", "./postmaster"))
ROOT = os.geteuid() == 0
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
             "runtime error:", "UndefinedBehaviorSanitizer")


def sanitized(path):
    """Whether the binary at path is the sanitizer build."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = sanitized(POSTMASTER)


def tool(name):
    """The path of an installed program, or a skip."""
    path = shutil.which(name, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        pytest.skip("%s is not installed" % name)
    return path


def no_sanitizer_report(text, what):
    for mark in SANITIZER:
        assert mark not in text, "%s: sanitizer report:\n%s" % (what, text)


def remove_tree(path):
    # a test may have made directories read-only for the session user
    for d, dirs, _ in os.walk(path):
        for x in dirs:
            try:
                os.chmod(os.path.join(d, x), 0o755)
            except OSError:
                pass
    # a detached delivery (SPEC 7 path 3) may still be finishing in it:
    # it is nobody's child here, so give it a moment rather than race it
    deadline = time.monotonic() + 10
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not os.path.exists(path), "cannot remove %s" % path


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """A scripted peer on 127.0.0.1 and port (default: a free one), served
    by a daemon thread until stop() or the end of a with block. Accepting
    waits 0.2 s at a time, so that the thread sees stop() at once: one
    blocked in accept() would outlive the test and take the next test's
    connections on a reused descriptor.

    A subclass sets its own state, then calls this __init__ (which starts
    the thread), and defines _dialogue(conn). Each connection is read with
    timeout seconds per read and served in turn, or, with threaded, in a
    thread of its own (kept in threads), so that several run at once; an
    OSError (ssl.SSLError too) ends that connection only. connections
    counts the connections accepted; done is set once one has been
    served and closed. A subclass that takes over the accepted socket
    itself overrides _accepted(conn)."""

    timeout = 30
    threaded = False

    def __init__(self, port=None, backlog=4):
        self.sock = socket.socket()
        if port:  # a fixed port may still have connections in TIME_WAIT
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.threads = []
        self.done = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self._accepted(conn)

    def _accepted(self, conn):
        if not self.threaded:
            self._handle(conn)
            return
        t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
        self.threads.append(t)
        t.start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(self.timeout)
            try:
                self._dialogue(conn)
            except OSError:
                pass  # the client went away or went silent
        self.done.set()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Tcpserver:
    """postmaster under tcpserver -HRl0 on 127.0.0.1 and port (default: a
    free one; a listener serves only its listen-port), one process per
    connection; its stderr (the sessions' log) goes to
    log_path. stop() kills the whole group and returns the log, checked
    for sanitizer reports."""

    def __init__(self, argv, log_path, port=None):
        import subprocess
        import time
        self.port = port or free_port()
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen([tool("tcpserver"), "-HRl0", "127.0.0.1",
                                   str(self.port)] + argv,
                                  stdout=subprocess.DEVNULL, stderr=self.log,
                                  start_new_session=True)
        # until it listens (read from /proc: a probe connection would start
        # a session of its own), however loaded the machine is
        deadline = time.monotonic() + 30
        while not listening(self.port):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("tcpserver does not listen on port %d"
                                     % self.port)
            time.sleep(0.02)

    def stop(self):
        os.killpg(self.p.pid, 9)
        self.p.wait()
        self.log.close()
        with open(self.log.name, errors="replace") as f:
            text = f.read()
        no_sanitizer_report(text, "postmaster under tcpserver")
        return text


def session_maps(argv):
    """The memory map of a session that has greeted and not yet been sent
    anything (what libraries a plain session loads)."""
    import subprocess
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline().startswith(b"220 ")
        with open("/proc/%d/maps" % p.pid) as f:
            return f.read()
    finally:
        p.stdin.write(b"QUIT\r\n")
        p.stdin.close()
        p.wait(timeout=10)


def scratch_dir(prefix, subdirs=("spool", "Maildir")):
    """A fresh directory, and subdirectories, that the session user (nobody
    when we are root) may write into; remove it with remove_tree."""
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o1777)
    for sub in subdirs:
        os.mkdir(os.path.join(d, sub))
        os.chmod(os.path.join(d, sub), 0o1777)
    return d


def private_dir(prefix):
    """A fresh directory (0700) on a path that no other user may write
    into, at any level: programs such as opendkim refuse a configuration
    or key below a directory like /tmp. Next to the tests when the
    checkout is on such a path, else under /run or the home directory;
    None when there is none (the caller skips)."""
    import tempfile

    def safe(path):
        path = os.path.abspath(path)
        while True:
            try:
                if os.stat(path).st_mode & 0o022:
                    return False
            except OSError:
                return False
            if path == "/":
                return True
            path = os.path.dirname(path)

    here = os.path.dirname(os.path.abspath(__file__))
    for base in (here, "/run", os.path.expanduser("~")):
        if safe(base) and os.access(base, os.W_OK):
            return tempfile.mkdtemp(prefix=prefix, dir=base)
    return None


def listening(port, ip="127.0.0.1"):
    """Whether something listens on ip:port, or on every address at port
    (read from /proc/net/tcp: no connection is made, since a probe would
    start a session)."""
    import struct

    def proc_addr(a):
        return "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(a))[0], port)
    wants = (proc_addr(ip), proc_addr("0.0.0.0"))
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] in wants and fields[3] == "0A":
                return True
    return False


def descendants(pid):
    """Every process below pid, from /proc."""
    import glob
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        me = int(stat.split("/")[2])
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(me)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def wait_for(pred, timeout=10, what="condition"):
    """pred's first true value, polled until timeout seconds have gone."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def make_cert(directory, cn, kind="rsa"):
    """A self-signed test certificate made by openssl: (cert, key) paths in
    directory; the key readable by its owner only. kind is "rsa" (cert.pem,
    key.pem) or "ecdsa" (a P-256 key: ecdsa-cert.pem, ecdsa-key.pem)."""
    import subprocess
    prefix = "" if kind == "rsa" else kind + "-"
    key = os.path.join(directory, prefix + "key.pem")
    crt = os.path.join(directory, prefix + "cert.pem")
    newkey = {"rsa": ["-newkey", "rsa:2048"],
              "ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]}[kind]
    r = subprocess.run([tool("openssl"), "req", "-x509"] + newkey + ["-nodes",
                        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o600)
    return crt, key
