"""The first minutes of a new user (SPEC 2, 9, 10): postmaster started on
a terminal, syslog without a syslog daemon, `make install` into a DESTDIR
served by the installed unit's command line under systemd-socket-activate,
`make uninstall`, `make demo` and what `make deps` leaves running.

Every server here is started by the test on 127.0.0.1 and a free port and
stopped when the test ends; every test directory is removed.
"""
import os
import pty
import pwd
import re
import select
import shlex
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
import tty

import pytest
from pmtest import (POSTMASTER, ROOT, SANITIZED, tool, no_sanitizer_report, remove_tree,
                    free_port, listening, descendants, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
NO_SYSLOG = "postmaster: no syslog socket /dev/log: logging to standard error"


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pm-inst-")
    os.chmod(d, 0o1777)  # the session runs as nobody when we are root
    yield d
    remove_tree(d)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def session_cf(tmp, logger, spool=True):
    """A configuration that delivers @example.net into tmp/Maildir/; its
    spool exists only when spool is true."""
    sp = os.path.join(tmp, "spool")
    if spool:
        os.makedirs(sp, exist_ok=True)
        os.chmod(sp, 0o1777)
    md = os.path.join(tmp, "Maildir")
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
        os.chmod(os.path.join(md, sub), 0o1777)
    return write(os.path.join(tmp, "t.cf"), """\
[core]
%shostname = mail.example.net
logger = %s
spool-directory = %s
[logfile "x"]
file = %s/log
[route]
@example.net %s/
""" % ("user-id = nobody\n" if ROOT else "", logger, sp, tmp, md))


# ------------------------------------------------------------------ #
# On a terminal                                                      #


def on_terminal(argv, lines=(b"QUIT\r\n",), timeout=20):
    """Runs argv with a terminal (a raw pty) as stdin and stdout and a pipe
    as stderr; sends lines once the greeting has come. Returns (what the
    terminal showed, stderr, exit status)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=err,
                         start_new_session=True)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the session closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not sent and re.search(rb"^(220|421) ", shown, re.M):
                for line in lines:
                    os.write(master, line)
                sent = True
            if p.poll() is not None and not r:
                break
        status = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    err.seek(0)
    text = err.read().decode("utf-8", "replace")
    no_sanitizer_report(text, "postmaster on a terminal")
    return shown.decode("utf-8", "replace"), text, status


WAITING = ("postmaster: waiting for an SMTP client on standard input (this "
           "terminal): type EHLO, MAIL FROM:<...>, RCPT TO:<...>, DATA, QUIT\n")


def test_terminal_says_what_it_waits_for(tmp):
    cf = session_cf(tmp, "x")
    shown, err, status = on_terminal([POSTMASTER, "--config=" + cf])
    assert status == 0, err
    assert err == WAITING
    assert "220 mail.example.net ESMTP postmaster" in shown
    assert "221 2.0.0" in shown


def test_terminal_says_why_it_refuses(tmp):
    """The reason of a 421 reaches the terminal's user, although the
    logger is a file."""
    cf = session_cf(tmp, "x", spool=False)
    shown, err, status = on_terminal([POSTMASTER, "--config=" + cf])
    assert status == 75
    assert "421 4.3.0 mail.example.net Service not available" in shown
    assert "waiting for" not in err
    assert re.fullmatch(r'postmaster: sid=\w{12} event=unavailable reason="spool '
                        r'directory %s/spool: No such file or directory"\n' % re.escape(tmp),
                        err), err
    with open(os.path.join(tmp, "log")) as f:
        assert "event=unavailable" in f.read()


def test_pipe_session_says_nothing_on_stderr(tmp):
    """Not on a terminal (swaks --pipe, inetd, tcpserver): no notice, no
    copy of the log on stderr."""
    for spool in (True, False):
        d = os.path.join(tmp, str(spool))
        os.mkdir(d)
        os.chmod(d, 0o1777)
        cf = session_cf(d, "x", spool=spool)
        r = subprocess.run([POSTMASTER, "--config=" + cf], input=b"QUIT\r\n",
                           capture_output=True, timeout=20)
        assert r.stderr == b""
        assert r.stdout.startswith(b"220 " if spool else b"421 ")


# ------------------------------------------------------------------ #
# syslog without a syslog daemon                                     #


def without_dev_log(argv):
    """argv in a world without a syslog socket: as it is when /dev/log is
    missing, else in a mount namespace where /dev/null covers /dev/log."""
    if not os.path.exists("/dev/log"):
        return argv
    unshare = tool("unshare")
    r = subprocess.run([unshare, "-m", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("no mount namespace here: " + r.stderr.decode())
    return [unshare, "-m", "--propagation", "private", "sh", "-c",
            'mount --bind /dev/null /dev/log && exec "$@"', "sh"] + argv


def test_syslog_without_dev_log_falls_back_to_stderr(tmp):
    cf = session_cf(tmp, "syslog")
    r = subprocess.run(without_dev_log([POSTMASTER, "--config=" + cf]),
                       input=b"EHLO x\r\nNOOP\r\nQUIT\r\n", capture_output=True,
                       timeout=20)
    err = r.stderr.decode()
    no_sanitizer_report(err, "session")
    assert r.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == NO_SYSLOG
    assert err.count("no syslog socket") == 1
    assert re.match(r"sid=\w{12} event=connect client=local", lines[1]), lines
    assert re.match(r"sid=\w{12} event=disconnect", lines[-1]), lines


def test_syslog_fallback_tells_why_it_refuses(tmp):
    """A refused session without syslog: the reason is on stderr, not lost."""
    cf = session_cf(tmp, "syslog", spool=False)
    r = subprocess.run(without_dev_log([POSTMASTER, "--config=" + cf]),
                       input=b"QUIT\r\n", capture_output=True, timeout=20)
    assert r.returncode == 75
    assert r.stdout.startswith(b"421 4.3.0 ")
    err = r.stderr.decode()
    assert err.startswith(NO_SYSLOG + "\n")
    assert "event=unavailable reason=\"spool directory %s/spool: No such file" % tmp in err


def test_spooled_delivery_logs_to_the_journal_stream(tmp):
    """Under the units (StandardError=journal) standard error is a socket
    that JOURNAL_STREAM names: the detached delivery's lines go there. A
    socket that is not the journal's (inetd's client) gets none of them."""
    cf = session_cf(tmp, "stderr")
    with open(cf) as f:
        text = f.read().replace("[route]\n", "[route]\ntwo@example.net "
                                "%s/Maildir/, r\n" % tmp)
    write(cf, text + '[relay "r"]\naddress = [127.0.0.1]:%d\n' % free_port())
    dialogue = (b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
                b"RCPT TO:<two@example.net>\r\nDATA\r\nSubject: t\r\n\r\n"
                b"hi\r\n.\r\nQUIT\r\n")
    for journal in (True, False):
        a, b = socket.socketpair()
        st = os.fstat(b.fileno())
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        r = subprocess.run([POSTMASTER, "--config=" + cf], input=dialogue,
                           stdout=subprocess.PIPE, stderr=b, env=env,
                           timeout=20)
        b.close()
        assert b"250 2.0.0 Ok: queued as" in r.stdout, r.stdout
        a.settimeout(20)
        err = b""
        while True:  # to the end: the detached delivery closes it last
            d = a.recv(65536)
            if not d:
                break
            err += d
        a.close()
        sent = re.search(rb'target="maildir [^"]*" status=sent', err)
        deferred = re.search(rb'target="relay r" status=deferred', err)
        if journal:
            assert sent and deferred, err
        else:
            assert not sent and not deferred, err
        assert b"status=queued" in err


# ------------------------------------------------------------------ #
# make install / make uninstall                                      #


def make(*args, timeout=300):
    r = subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=TOP,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def exec_start(unit_path):
    with open(unit_path) as f:
        m = re.search(r"^ExecStart=(.*)$", f.read(), re.M)
    assert m, unit_path
    return shlex.split(m[1])


class Served:
    """A launcher (argv) that listens on 127.0.0.1:port, in its own process
    group, its output in a file."""

    def __init__(self, argv, port, log, env=None):
        self.port = port
        self.log = open(log, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env=env, cwd=TOP)
        try:
            wait_for(lambda: listening(port) or self.p.poll() is not None, 60,
                     "%s on port %d" % (argv[0], port))
            assert self.p.poll() is None, self.output()
        except BaseException:
            self.stop()
            raise

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        pids = [self.p.pid] + descendants(self.p.pid)
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait(timeout=10)
        self.log.close()
        no_sanitizer_report(self.output(), self.p.args[0])


def activated(argv, port, log):
    """argv under systemd-socket-activate on 127.0.0.1:port."""
    return Served([tool("systemd-socket-activate"), "-l", "127.0.0.1:%d" % port,
                   "-a", *argv], port, log)


def maildir_new(md):
    new = os.path.join(md, "new")
    return [os.path.join(new, f) for f in os.listdir(new)] if os.path.isdir(new) else []


def test_make_install_destdir_serves_with_the_installed_unit(tmp):
    """The installed binary, configuration and postmaster@.service command
    line, under systemd-socket-activate, take a message for a local user:
    what `systemctl enable --now postmaster.socket` starts."""
    tool("systemd-socket-activate")
    dest = os.path.join(tmp, "root")
    out = make("install", "DESTDIR=" + dest)
    assert "wrote %s/etc/postmaster.cf" % dest in out.stdout
    unitdir = os.path.join(dest, "usr/local/lib/systemd/system")
    cf = os.path.join(dest, "etc/postmaster.cf")
    with open(os.path.join(TOP, "etc/postmaster.cf")) as f:
        shipped = f.read()
    with open(cf) as f:
        assert f.read() == shipped  # no host set-up into a DESTDIR
    assert os.stat(cf).st_mode & 0o777 == 0o644
    spool = os.path.join(dest, "var/spool/postmaster")
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700
    assert os.stat(spool).st_uid == os.geteuid()  # no chown into a DESTDIR

    # the installed configuration checks, and every unit's --smtpd is one
    # of its sections
    binary = os.path.join(dest, "usr/local/sbin/postmaster")
    r = subprocess.run([binary, "--config=" + cf, "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == cf + ": ok: 4 listeners, 1 route table, 0 routes\n"
    names = set()
    for unit in sorted(os.listdir(unitdir)):
        if unit.endswith("@.service"):
            argv = exec_start(os.path.join(unitdir, unit))
            assert argv[0] == "/usr/local/sbin/postmaster"
            smtpd = [a[8:] for a in argv if a.startswith("--smtpd=")]
            assert len(smtpd) == 1 and ('[smtpd "%s"]\n' % smtpd[0]) in shipped, unit
            names.add(smtpd[0])
    assert names == {"mx", "submission", "submissions", "submit"}

    # the same configuration with this test's paths and port
    port = free_port()
    md = os.path.join(tmp, "Maildir")
    sp = os.path.join(tmp, "spool")
    os.mkdir(sp)
    os.chmod(sp, 0o1777)
    text = shipped.replace("spool-directory = /var/spool/postmaster",
                           "spool-directory = " + sp)
    text = text.replace("user-id = _postmaster", "user-id = nobody" if ROOT else "")
    text = text.replace("listen-port = 25\n", "listen-port = 127.0.0.1:%d\n" % port)
    text = text.replace("[route]\n", "[route]\nyou@localhost %s/\n" % md)
    assert text.count(sp) == 1 and text.count(md) == 1 and str(port) in text
    adjusted = write(os.path.join(tmp, "adjusted.cf"), text)
    os.makedirs(md)
    os.chmod(md, 0o1777)
    argv = exec_start(os.path.join(unitdir, "postmaster@.service"))
    argv = [dest + argv[0], "--config=" + adjusted] + argv[1:]
    server = activated(argv, port, os.path.join(tmp, "activate.log"))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            code, banner = c.ehlo("client.example")
            assert code == 250
            refused = c.sendmail("me@example.org", ["you@localhost"],
                                 b"Subject: installed\r\n\r\nhello\r\n")
            assert refused == {}
            # it relays nothing
            with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
                c.sendmail("me@example.org", ["x@example.com"], b"Subject: no\r\n\r\nno\r\n")
            assert e.value.recipients["x@example.com"][0] == 550
    finally:
        server.stop()
    files = maildir_new(md)
    assert len(files) == 1
    with open(files[0], "rb") as f:
        assert b"Subject: installed" in f.read()


@pytest.mark.skipif(not ROOT, reason="chown of the spool needs root")
def test_make_install_destdir_with_host_setup(tmp):
    """SETUP_HOST=yes into a DESTDIR sets up that tree: its spool's owner,
    the fully qualified host name as core.hostname and the listeners'
    name, and --check of its own configuration (not the host's). PMUSER
    is an existing user, so no user is created."""
    dest = os.path.join(tmp, "root")
    # a spool path the host does not have: a chown of the host's own
    # (not DESTDIR's) fails, and the path must stay absent on the host
    spooldir = "/var/spool/pm-test-%d" % os.getpid()
    assert not os.path.exists(spooldir)
    make("install", "DESTDIR=" + dest, "SETUP_HOST=yes", "PMUSER=nobody",
         "SPOOLDIR=" + spooldir)
    spool = dest + spooldir
    assert os.stat(spool).st_uid == pwd.getpwnam("nobody").pw_uid
    assert not os.path.exists(spooldir)
    fqdn = subprocess.run(["hostname", "--fqdn"], capture_output=True,
                          text=True).stdout.strip()
    with open(os.path.join(dest, "etc/postmaster.cf")) as f:
        text = f.read()
    assert re.search(r"^hostname = %s$" % re.escape(fqdn), text, re.M), text
    assert text.count("\nname = %s\n" % fqdn) == 4
    assert "user-id = nobody\n" in text


def test_installed_units_verify(tmp):
    """systemd-analyze verify accepts the units as installed (ExecStart
    pointing at the installed binary)."""
    analyze = tool("systemd-analyze")
    dest = os.path.join(tmp, "root")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    unitdir = os.path.join(dest, "usr/lib/systemd/system")
    paths = []
    for unit in sorted(os.listdir(unitdir)):
        with open(os.path.join(unitdir, unit)) as f:
            text = f.read()
        if unit.endswith(".service"):
            assert "ExecStart=/usr/sbin/postmaster " in text
            text = text.replace("ExecStart=/usr/sbin/postmaster",
                                "ExecStart=" + dest + "/usr/sbin/postmaster")
        paths.append(write(os.path.join(tmp, unit), text))
    r = subprocess.run([analyze, "verify", "--man=no", *paths], cwd=tmp,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "postmaster" not in r.stderr, r.stderr


def test_session_units_are_collected_when_they_fail():
    """A session a client lets time out exits 75, so its Accept=yes unit
    ends failed: each template unloads it anyway, or every such
    connection stays in PID 1 until reset-failed."""
    unitdir = os.path.join(TOP, "units")
    templates = [u for u in sorted(os.listdir(unitdir)) if u.endswith("@.service")]
    assert len(templates) == 4, templates
    for unit in templates:
        with open(os.path.join(unitdir, unit)) as f:
            assert re.search(r"^CollectMode=inactive-or-failed$", f.read(),
                             re.M), unit


def test_installed_units_allow_getifaddrs(tmp):
    """Every installed service runs sessions or the flusher, which ask
    getifaddrs(3) for the machine's own addresses (SPEC 6 address literals,
    SPEC 7.2 MX loops): glibc asks over an AF_NETLINK socket, so a
    RestrictAddressFamilies= without it makes every own address foreign."""
    dest = os.path.join(tmp, "root")
    make("install", "DESTDIR=" + dest)
    unitdir = os.path.join(dest, "usr/local/lib/systemd/system")
    services = [u for u in sorted(os.listdir(unitdir)) if u.endswith(".service")]
    assert len(services) == 5, services
    for unit in services:
        with open(os.path.join(unitdir, unit)) as f:
            families = re.findall(r"^RestrictAddressFamilies=(.*)$", f.read(), re.M)
        assert families, unit
        for line in families:
            assert "AF_NETLINK" in line.split(), (unit, line)


def test_unknown_own_addresses_are_logged(tmp):
    """When getifaddrs(3) fails (here: the first socket(2) refused, as a
    sandbox refuses AF_NETLINK) the address literal is still refused, and
    the log says why instead of nothing."""
    strace = tool("strace")
    cf = session_cf(tmp, "stderr")
    r = subprocess.run([strace, "-f", "-o", "/dev/null", "-e", "trace=socket",
                        "-e", "inject=socket:error=EAFNOSUPPORT:when=1",
                        POSTMASTER, "--config=" + cf, "--route=root@[127.0.0.1]"],
                       capture_output=True, text=True, timeout=60)
    assert "event=own-addresses-unknown" in r.stderr, r.stderr
    assert r.stderr.count("own-addresses-unknown") == 1, r.stderr
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--route=root@[127.0.0.1]"],
                       capture_output=True, text=True, timeout=60)
    assert "own-addresses-unknown" not in r.stderr, r.stderr


def test_make_uninstall_destdir(tmp):
    dest = os.path.join(tmp, "root")
    make("install", "DESTDIR=" + dest)
    r = make("uninstall", "DESTDIR=" + dest)
    left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    assert left == []
    assert not os.path.exists(os.path.join(dest, "var/spool/postmaster"))
    assert "kept" not in r.stdout

    # an edited configuration and the spool's mail stay
    make("install", "DESTDIR=" + dest)
    cf = os.path.join(dest, "etc/postmaster.cf")
    with open(cf, "a") as f:
        f.write("alice@localhost /home/alice/Maildir/\n")
    msg = write(os.path.join(dest, "var/spool/postmaster/0123456789ABCDEF01"), "mail")
    r = make("uninstall", "DESTDIR=" + dest)
    assert "kept %s: it was changed" % cf in r.stdout
    assert "kept %s/var/spool/postmaster: it is not empty" % dest in r.stdout
    assert os.path.exists(cf) and os.path.exists(msg)
    assert not os.path.exists(os.path.join(dest, "usr/local/sbin/postmaster"))

    # install again keeps the edited configuration
    r = make("install", "DESTDIR=" + dest)
    assert "kept %s" % cf in r.stdout
    with open(cf) as f:
        assert f.read().endswith("alice@localhost /home/alice/Maildir/\n")


HOST_INSTALL = r"""
set -eu
t=$1
mkdir -p "$t/up" "$t/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$t/up,workdir=$t/work" /etc
mount -t tmpfs tmpfs /usr/local
mount -t tmpfs tmpfs /var/spool
mount -t tmpfs -o mode=2775 tmpfs /var/mail
ip link set lo up
! getent passwd _postmaster >/dev/null || { echo "_postmaster exists already"; exit 3; }
make -s --no-print-directory install
echo "user: $(getent passwd _postmaster | cut -d: -f1,6,7)"
echo "spool: $(stat -c '%U:%G %a' /var/spool/postmaster)"
echo "cf: $(grep -c "^name = $(hostname --fqdn 2>/dev/null || hostname)\$" /etc/postmaster.cf)"
start=$(sed -n 's/^ExecStart=//p' /usr/local/lib/systemd/system/postmaster@.service)
systemd-socket-activate -l 127.0.0.1:25 -a $start >"$t/activate.log" 2>&1 &
for i in $(seq 100); do [ -n "$(ss -Htln 'sport = :25')" ] && break; sleep 0.05; done
swaks --server 127.0.0.1:25 --from me@example.org --to root@localhost \
	--header "Subject: installed on the host" >"$t/swaks.log" 2>&1 || true
echo "swaks: $(grep -c '<-  250 2.0.0' "$t/swaks.log")"
kill %1; wait || true
echo "mail: $(grep -c '^Subject: installed on the host' /var/mail/root)"
make -s --no-print-directory uninstall
echo "left: $(ls -d /usr/local/sbin/postmaster /usr/local/lib/systemd/system/postmaster* /etc/postmaster.cf /var/spool/postmaster 2>/dev/null | wc -l)"
echo "user after: $(getent passwd _postmaster | cut -d: -f1)"
"""


def test_make_install_on_the_host(tmp):
    """`make install` without DESTDIR, on this machine seen through a
    private mount and network namespace (an overlay over /etc, empty
    /usr/local, /var/spool and /var/mail): it creates the user, gives it
    the spool, writes /etc/postmaster.cf with the host name, and the
    installed unit's command line on port 25 delivers to root's mailbox
    through procmail at once; `make uninstall` removes it all but the user."""
    if not ROOT:
        pytest.skip("installs as root")
    for t in ("swaks", "systemd-socket-activate", "procmail", "ip", "ss", "unshare"):
        tool(t)
    r = subprocess.run(["unshare", "-mn", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("no namespaces here: " + r.stderr.decode())
    r = subprocess.run(["unshare", "-mn", "--propagation", "private", "bash", "-c",
                        HOST_INSTALL, "bash", tmp], cwd=TOP, capture_output=True,
                       text=True, timeout=300)
    if "overlay" in r.stderr and r.returncode:
        pytest.skip("no overlay file system here: " + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "user: _postmaster:/var/spool/postmaster:/usr/sbin/nologin\n" in out, out + r.stderr
    assert "spool: _postmaster:_postmaster 700\n" in out
    assert "/etc/postmaster.cf: ok: 4 listeners, 1 route table, 0 routes\n" in out
    assert "cf: 4\n" in out
    assert "swaks: 1\n" in out, open(os.path.join(tmp, "swaks.log")).read()
    assert "mail: 1\n" in out
    assert "left: 0\n" in out
    assert "user after: _postmaster\n" in out
    assert "kept the user _postmaster" in out
    # nothing of it reached this machine
    assert subprocess.run(["getent", "passwd", "_postmaster"]).returncode != 0


# ------------------------------------------------------------------ #
# make demo                                                          #


def demo_env(tmp, port):
    env = dict(os.environ, DEMO_PORT=str(port), DEMO_DIR=os.path.join(tmp, "demo"))
    return env


def swaks(*args):
    return subprocess.run([tool("swaks"), *args], capture_output=True, text=True,
                          timeout=60)


def test_demo_on_its_port(tmp):
    """tools/demo on DEMO_PORT: the Maildir is there before any mail, the
    line it prints works, and the message lands."""
    tool("systemd-socket-activate")
    port = free_port()
    demo = os.path.join(tmp, "demo")
    server = Served([os.path.join(TOP, "tools", "demo")], port,
                    os.path.join(tmp, "demo.out"), env=demo_env(tmp, port))
    try:
        assert os.path.isdir(os.path.join(demo, "Maildir", "new"))
        assert maildir_new(os.path.join(demo, "Maildir")) == []
        printed = server.output()
        cmd = re.search(r"^\s+(swaks .*)$", printed, re.M)
        assert cmd, printed
        argv = shlex.split(cmd[1])
        assert argv[:3] == ["swaks", "--server", "127.0.0.1:%d" % port], argv
        assert "postmaster serves 127.0.0.1:%d " % port in printed
        r = swaks(*argv[1:])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "<-  250 2.0.0 " in r.stdout
    finally:
        server.stop()
    files = maildir_new(os.path.join(demo, "Maildir"))
    assert len(files) == 1
    with open(files[0], "rb") as f:
        assert b"\nDelivered-To: you@localhost\n" in f.read()

    # the README's --inject line, after make demo, as written (with this
    # test's demo directory and binary)
    with open(os.path.join(TOP, "README.md")) as f:
        line = re.search(r"^\s+(echo hi \| \./postmaster .*--inject .*)$",
                         f.read(), re.M)
    assert line and " --config=demo/postmaster.cf " in line[1], line
    cmd = line[1].replace("demo/postmaster.cf",
                          shlex.quote(os.path.join(demo, "postmaster.cf")))
    cmd = cmd.replace("./postmaster", shlex.quote(POSTMASTER))
    r = subprocess.run(cmd, shell=True, cwd=TOP, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(maildir_new(os.path.join(demo, "Maildir"))) == 2


def test_demo_keeps_an_edited_configuration(tmp):
    tool("systemd-socket-activate")
    port = free_port()
    demo = os.path.join(tmp, "demo")
    os.mkdir(demo)
    os.chmod(demo, 0o1777)
    cf = os.path.join(demo, "postmaster.cf")
    # an edited demo configuration, written for another port
    text = """\
# mine
[core]
hostname = localhost
logger = stderr
spool-directory = %s/spool
%s
[smtpd "demo"]
name = localhost
listen-port = 127.0.0.1:1
[route]
kept@localhost discard
@localhost %s/Maildir/
""" % (demo, "user-id = nobody" if ROOT else "", demo)
    write(cf, text)
    server = Served([os.path.join(TOP, "tools", "demo")], port,
                    os.path.join(tmp, "demo.out"), env=demo_env(tmp, port))
    try:
        assert "using %s as it is" % cf in server.output()
        r = swaks("--server", "127.0.0.1:%d" % port, "--from", "me@localhost",
                  "--to", "kept@localhost")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "<-  250 2.0.0 " in r.stdout
    finally:
        server.stop()
    with open(cf) as f:
        assert f.read() == text
    assert maildir_new(os.path.join(demo, "Maildir")) == []  # discarded, as edited


def test_demo_refuses_a_busy_port(tmp):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([os.path.join(TOP, "tools", "demo")], env=demo_env(tmp, port),
                           cwd=TOP, capture_output=True, text=True, timeout=120)
    assert r.returncode == 69
    assert ("tools/demo: 127.0.0.1:%d is in use; choose another port: make demo "
            "DEMO_PORT=2526\n" % port) in r.stderr
    assert "swaks" not in r.stdout


def test_make_demo_clean():
    demo = os.path.join(TOP, "demo")
    if os.path.exists(demo):
        pytest.skip("demo/ is in use here")
    os.mkdir(demo)
    write(os.path.join(demo, "postmaster.cf"), "# edited\n")
    make("demo-clean")
    assert not os.path.exists(demo)


# ------------------------------------------------------------------ #
# make deps                                                          #


DEPS_RUN = r"""
set -eu
t=$1 before=$2
# only in a fresh directory and a private mount namespace
[ -n "$t" ] && [ -d "$t" ] || exit 2
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/$PPID/ns/mnt)" ] || exit 2
for d in etc sbin; do mkdir -p "$t/$d-up" "$t/$d-work"; done
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$t/etc-up,workdir=$t/etc-work" /etc
mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$t/sbin-up,workdir=$t/sbin-work" /usr/sbin
rm -f /usr/sbin/policy-rc.d
# the packages as their maintainer scripts leave them: not masked (this
# machine's own make deps masks what it installed)
for u in postfix.service dovecot.service dovecot.socket inetd.service; do
	[ "$(readlink "/etc/systemd/system/$u")" != /dev/null ] || rm "/etc/systemd/system/$u"
done
# init scripts that only say they were asked to stop (their LSB headers
# kept for update-rc.d)
for s in postfix dovecot openbsd-inetd; do
	sed '/^### END INIT INFO/q' "/etc/init.d/$s" > "$t/$s.init"
	printf '%s\n' 'echo "${0##*/} $1" >> "$T/stops"' >> "$t/$s.init"
	cat "$t/$s.init" > "/etc/init.d/$s"
done
mkdir "$t/bin"
# apt and dpkg stand-ins: the packages appear when apt-get installs them,
# with their services enabled, as their maintainer scripts leave them
printf '%s\n' '#!/bin/sh' \
	'[ "$1" = install ] || exit 0' \
	'/usr/sbin/policy-rc.d postfix start; echo $? > "$T/policy.rc"' \
	'touch "$T/installed"' \
	'systemctl enable postfix.service dovecot.service inetd.service 2>/dev/null' \
	'update-rc.d postfix enable; update-rc.d dovecot enable; update-rc.d openbsd-inetd enable' \
	> "$t/bin/apt-get"
printf '%s\n' '#!/bin/sh' \
	'if [ -e "$T/installed" ] || [ "$BEFORE" = yes ]; then echo "install ok installed"; else exit 1; fi' \
	> "$t/bin/dpkg-query"
printf '%s\n' '#!/bin/sh' 'cat >/dev/null' > "$t/bin/debconf-set-selections"
chmod 755 "$t/bin/apt-get" "$t/bin/dpkg-query" "$t/bin/debconf-set-selections"
T=$t BEFORE=$before PATH=$t/bin:$PATH tools/deps postfix dovecot-lmtpd openbsd-inetd
echo "policy after: $(ls /usr/sbin/policy-rc.d 2>/dev/null | wc -l)"
echo "policy during: $(cat "$t/policy.rc")"
for u in postfix.service dovecot.service dovecot.socket inetd.service; do
	echo "$u: $(systemctl is-enabled $u 2>/dev/null || true)"
done
echo "stops: $(sort "$t/stops" 2>/dev/null | tr '\n' ' ')"
echo "rc2: $(ls /etc/rc2.d | grep -cE '^S..(postfix|dovecot|openbsd-inetd)$' || true)"
"""


@pytest.mark.parametrize("before", ["no", "yes"])
def test_make_deps_leaves_no_service_on(tmp, before):
    """tools/deps (make deps) with apt and dpkg stood in for, in a mount
    namespace over this machine's /etc and /usr/sbin: no daemon may start
    while it installs, and the services of the packages it installed end
    disabled and masked, in systemd's files and System V's links; packages
    that were there before keep their state."""
    if not ROOT:
        pytest.skip("needs root")
    for t in ("unshare", "systemctl", "update-rc.d"):
        tool(t)
    if not os.path.exists("/lib/systemd/system/postfix.service") or \
            not os.path.exists("/etc/init.d/dovecot"):
        pytest.skip("postfix and dovecot are not installed here")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c",
                        DEPS_RUN, "bash", tmp, before], cwd=TOP, capture_output=True,
                       text=True, timeout=300)
    if "overlay" in r.stderr and r.returncode:
        pytest.skip("no overlay file system here: " + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "policy after: 0\n" in out
    assert "policy during: 101\n" in out
    if before == "no":
        for pkg in ("postfix", "dovecot-core", "openbsd-inetd"):
            assert "make deps: %s is here for its programs: its services stay off\n" % pkg in out
        for u in ("postfix.service", "dovecot.service", "dovecot.socket", "inetd.service"):
            assert "%s: masked\n" % u in out, out
        assert "rc2: 0\n" in out, out
        if not os.path.isdir("/run/systemd/system"):
            assert "stops: dovecot stop openbsd-inetd stop postfix stop \n" in out, out
    else:
        assert "stops: \n" in out, out
        assert "stay off" not in out
        assert "postfix.service: enabled\n" in out, out
        assert "rc2: 3\n" in out, out


OOM_SHIM = r"""
#include <errno.h>
#include <stdlib.h>
extern void *__libc_malloc(size_t);
static long n, at = -1;
void *malloc(size_t s)
{
	if (at < 0) {
		const char *e = getenv("PM_FAIL_MALLOC_AT");
		at = e ? atol(e) : 0;
	}
	if (at && ++n == at) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(s);
}
"""


@pytest.mark.skipif(SANITIZED, reason="LD_PRELOAD before the sanitizer runtime")
def test_out_of_memory_under_inetd_says_nothing_to_the_client(tmp):
    """inetd gives a session its connection as standard error too: when a
    malloc failed, 'postmaster: out of memory' went to the SMTP client as
    its greeting. The process now writes it only where log lines may go."""
    src = os.path.join(tmp, "oom.c")
    write(src, OOM_SHIM)
    shim = os.path.join(tmp, "oom.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, src], check=True)
    cf = session_cf(tmp, "stderr")
    seen = set()
    for at in range(3, 40):
        a, b = socket.socketpair()
        env = dict(os.environ, LD_PRELOAD=shim, PM_FAIL_MALLOC_AT=str(at))
        env.pop("JOURNAL_STREAM", None)
        p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=b, stdout=b,
                             stderr=b, env=env)
        b.close()
        a.settimeout(20)
        got = b""
        try:
            a.sendall(b"EHLO x\r\nQUIT\r\n")
        except OSError:
            pass  # a session whose malloc failed at once has gone: read
            # what it wrote all the same
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
        a.close()
        seen.add(p.wait(timeout=20))
        assert b"out of memory" not in got, (at, got)
    assert 75 in seen  # some malloc failed in a session
