"""The first minutes of a new user (SPEC 2, 9, 10): postmaster started on
a terminal, syslog without a syslog daemon, `make install` into a DESTDIR
served by the installed unit's command line under systemd-socket-activate,
`make uninstall`, `make demo` and what `make deps` leaves running.

Every server here is started by the test on 127.0.0.1 and a free port and
stopped when the test ends; every test directory is removed.
"""
import os
import pty
import re
import select
import shlex
import signal
import smtplib
import stat
import subprocess
import tempfile
import time
import tty

import pytest
from pmtest import (POSTMASTER, ROOT, tool, no_sanitizer_report, remove_tree,
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
