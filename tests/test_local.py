"""Local delivery on the direct path and through the spool (SPEC 7):
[pipe] mailers and |command targets, one reply per recipient in LMTP,
and what --check says about a mailer's program.

Every session runs over a pipe, as `swaks --pipe` would; the test
directories are removed when a test ends. POSTMASTER names the binary
under test.
"""
import os
import subprocess
import time

import pytest
from pmtest import POSTMASTER, ROOT, SANITIZED, no_sanitizer_report, remove_tree, scratch_dir


@pytest.fixture
def tmp():
    d = scratch_dir("pm-local-", subdirs=("spool", "out"))
    yield d
    remove_tree(d)


def write_cf(tmp, routes, rest=""):
    """A configuration with these routes ([route]) and sections (@DIR@ =
    tmp); its path."""
    text = ("[core]\nhostname = mx.test\nlogger = stderr\n"
            "spool-directory = @DIR@/spool\n" +
            ("user-id = nobody\n" if ROOT else "") +
            "[route]\n" + routes + rest).replace("@DIR@", tmp)
    path = os.path.join(tmp, "postmaster.cf")
    with open(path, "w") as f:
        f.write(text)
    return path


def script(tmp, name, body):
    """An executable shell script in tmp; its path."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body.replace("@DIR@", tmp))
    os.chmod(path, 0o755)
    return path


def transaction(greeting, rcpts, body="Subject: t\r\n\r\nhi\r\n"):
    """The client's lines of one transaction and QUIT, as bytes."""
    lines = [greeting + " client.example", "MAIL FROM:<a@b.example>"]
    lines += ["RCPT TO:<%s>" % r if "<" not in r else "RCPT TO:" + r
              for r in rcpts]
    lines += ["DATA"]
    return ("\r\n".join(lines) + "\r\n" + body + ".\r\nQUIT\r\n").encode()


def session(cf, wire, env=None, args=()):
    """One session fed wire at once: (its reply lines, its log)."""
    r = subprocess.run([POSTMASTER, "--config=" + cf] + list(args),
                       input=wire, capture_output=True, timeout=120,
                       env=env)
    err = r.stderr.decode("utf-8", "replace")
    no_sanitizer_report(err, "session")
    return r.stdout.decode("utf-8", "replace").split("\r\n"), err


def final_replies(lines, n):
    """The n replies after the 354 of DATA."""
    i = next(k for k, l in enumerate(lines) if l.startswith("354 "))
    return lines[i + 1:i + 1 + n]


# ------------------------------------------------------------------ #
# The mailer's input                                                 #

NO_TMPFILE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
/* a file system without O_TMPFILE (NFS, vfat, CIFS): EOPNOTSUPP */
#define SHIM(name, ...) \
int name(__VA_ARGS__, int flags, ...) \
{ \
	va_list a; \
	va_start(a, flags); \
	mode_t m = va_arg(a, mode_t); \
	va_end(a); \
	if ((flags & O_TMPFILE) == O_TMPFILE) { \
		errno = EOPNOTSUPP; \
		return -1; \
	}
SHIM(open, const char *p)
	int (*next)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
	return next(p, flags, m);
}
SHIM(open64, const char *p)
	int (*next)(const char *, int, ...) = dlsym(RTLD_NEXT, "open64");
	return next(p, flags, m);
}
SHIM(openat, int d, const char *p)
	int (*next)(int, const char *, int, ...) = dlsym(RTLD_NEXT, "openat");
	return next(d, p, flags, m);
}
"""


@pytest.mark.skipif(SANITIZED, reason="LD_PRELOAD before the sanitizer runtime")
def test_a_mailer_is_run_where_tmpdir_has_no_o_tmpfile(tmp):
    """On a file system without O_TMPFILE the session's data file falls
    back to a named file that is unlinked at once; the mailer's input did
    not, and every pipe delivery was deferred 451."""
    src = os.path.join(tmp, "notmp.c")
    with open(src, "w") as f:
        f.write(NO_TMPFILE)
    shim = os.path.join(tmp, "notmp.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, src, "-ldl"],
                   check=True)
    save = script(tmp, "save.sh", "cat > @DIR@/out/msg\n")
    cf = write_cf(tmp, "p@example.org mailer\n",
                  '[pipe "mailer"]\nexec = %s\n' % save)
    env = dict(os.environ, LD_PRELOAD=shim, TMPDIR=tmp + "/out")
    lines, log = session(cf, transaction("EHLO", ["p@example.org"]), env=env)
    assert final_replies(lines, 1) == ["250 2.0.0 delivered"], log
    with open(os.path.join(tmp, "out", "msg")) as f:
        assert f.read().endswith("Subject: t\n\nhi\n")
    # the fallback's named file is gone once the mailer has it
    assert os.listdir(os.path.join(tmp, "out")) == ["msg"]


# ------------------------------------------------------------------ #
# LMTP: one reply per recipient                                      #

def timed_replies(cf, wire, n):
    """Feeds wire to a session and reads the n replies after the 354 of
    DATA: [(seconds after the 354, reply)], and the session's log."""
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = []
    try:
        p.stdin.write(wire)
        p.stdin.flush()
        t0 = None
        while len(out) < n:
            line = p.stdout.readline()
            assert line, "the session ended early: %r" % out
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if t0 is not None:
                out.append((time.monotonic() - t0, line))
            elif line.startswith("354 "):
                t0 = time.monotonic()
        p.stdin.close()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode("utf-8", "replace")
    no_sanitizer_report(err, "session")
    return out, err


def test_lmtp_replies_go_out_as_each_recipient_is_delivered(tmp):
    """Each recipient's reply was held until every recipient's mailer had
    finished: a client whose per-reply timer is shorter than the sum of
    the runs gave up and sent the message again to those delivered."""
    slow = script(tmp, "slow.sh", "cat >/dev/null; sleep 2\n")
    cf = write_cf(tmp, "@example.org slow\n",
                  '[pipe "slow"]\nexec = %s "${RCPT_TO}"\n' % slow)
    got, log = timed_replies(cf, transaction("LHLO", ["a@example.org", "b@example.org",
                                                      "c@example.org"]), 3)
    assert [r for _, r in got] == ["250 2.0.0 delivered"] * 3, log
    # the first after one run, not three; each about one run after the other
    assert got[0][0] < 3.5, got
    assert got[1][0] - got[0][0] > 1.5 and got[2][0] - got[1][0] > 1.5, got


# ------------------------------------------------------------------ #
# How long a |command may run                                        #

@pytest.mark.parametrize("rcpts", [["c1@example.com"],
                                   ["c1@example.com", "c2@example.com"]],
                         ids=["direct", "spooled"])
def test_a_command_runs_for_the_listeners_timeout(tmp, rcpts):
    """A |command may run for the listener's timeout, on the direct path
    and from the spool (two commands: one run each, through the spool)
    alike; the spool once gave it 300 s whatever the listener said."""
    cf = write_cf(tmp, 'c1@example.com "|sleep 4"\nc2@example.com "|sleep 4"\n',
                  '[smtpd "mx.test"]\nlisten-port = 25\ntimeout = 1s\n')
    t0 = time.monotonic()
    lines, log = session(cf, transaction("EHLO", rcpts), args=["--smtpd=mx.test"])
    took = time.monotonic() - t0
    got = [l for l in log.splitlines() if "to=<c1@example.com>" in l and
           "status=queued" not in l]
    assert len(got) == 1, log
    assert "status=deferred" in got[0], got
    assert 'reply="451 4.3.0 mailer timed out after 1s"' in got[0], got
    assert took < 6, log


# ------------------------------------------------------------------ #
# Waiting for a mailer                                               #

def test_waiting_for_a_mailer_that_closed_its_output_does_not_spin(tmp):
    """A mailer that closes its output and works on (a wrapper that sends
    its output to a log) was waited for by polling waitpid() a thousand
    times a second: thousands of context switches in 2 s, for as long as
    [pipe] timeout allows. The session now sleeps until it exits."""
    quiet = script(tmp, "quiet.sh", "cat >/dev/null; exec >/dev/null 2>&1; sleep 2\n")
    cf = write_cf(tmp, "q@example.org quiet\n",
                  '[pipe "quiet"]\nexec = %s\ntimeout = 10s\n' % quiet)
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(transaction("EHLO", ["q@example.org"]))
    p.stdin.close()
    out, err = p.stdout.read(), p.stderr.read().decode("utf-8", "replace")
    # the session's own rusage, with its mailer's, which it waited for
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    p.stderr.close()
    no_sanitizer_report(err, "session")
    lines = out.decode().split("\r\n")
    assert final_replies(lines, 1) == ["250 2.0.0 delivered"], err
    # the session's, its mailer's and the shell's sleep's switches
    assert usage.ru_nvcsw < 200, usage


def test_a_mailer_that_closed_its_output_is_killed_at_its_timeout(tmp):
    """The deadline still holds while the session sleeps for the exit."""
    quiet = script(tmp, "quiet.sh", "cat >/dev/null; exec >/dev/null 2>&1; sleep 30\n")
    cf = write_cf(tmp, "q@example.org quiet\n",
                  '[pipe "quiet"]\nexec = %s\ntimeout = 1s\n' % quiet)
    t0 = time.monotonic()
    lines, log = session(cf, transaction("EHLO", ["q@example.org"]))
    assert final_replies(lines, 1) == ["451 4.3.0 mailer timed out after 1s"], log
    assert time.monotonic() - t0 < 5


# ------------------------------------------------------------------ #
# A |command killed by a signal                                      #

@pytest.mark.parametrize("rcpts", [["k1@example.com"],
                                   ["k1@example.com", "k2@example.com"]],
                         ids=["direct", "spooled"])
def test_a_command_killed_by_a_signal_is_retried_not_bounced(tmp, rcpts):
    """/bin/sh -c reports a command killed by signal n as exit 128 + n:
    a |command that the OOM killer or an administrator killed got 554
    5.3.0 (exit status 137) and its message bounced, where a [pipe]
    mailer killed the same way gets 451 and is retried (SPEC 7: killed
    -> 451 4.3.0). An exit status of its own still counts as before."""
    killed = script(tmp, "killed.sh", "cat >/dev/null; kill -9 $$\n")
    cf = write_cf(tmp, 'k1@example.com "|%s"\nk2@example.com "|%s"\n'
                  'x@example.com "|exit 1"\n' % (killed, killed))
    lines, log = session(cf, transaction("EHLO", rcpts))
    got = [l for l in log.splitlines() if "to=<k1@example.com>" in l and
           "status=queued" not in l]
    assert len(got) == 1, log
    assert "status=deferred" in got[0], got
    assert 'reply="451 4.3.0 mailer killed by signal 9' in got[0], got
    if len(rcpts) == 1:
        assert final_replies(lines, 1)[0].startswith("451 4.3.0 mailer killed by signal 9")
    lines, log = session(cf, transaction("EHLO", ["x@example.com"]))
    assert final_replies(lines, 1) == ["554 5.3.0 mailer failed (exit status 1)"], log


def test_a_failing_mailers_output_reaches_the_reply_and_the_bounce(tmp):
    """A mailer that failed and said why (not with a D.S.N) had what it
    said dropped: the client, the log and the bounce read only 'mailer
    failed (exit status 1)'. Its first line now follows, as Postfix's
    'Command output:'."""
    why = script(tmp, "why.sh", "cat >/dev/null\n"
                 "echo 'cannot write /var/mail/joe: Disk quota exceeded'\n"
                 "echo 'second line' >&2\nexit 1\n")
    cf = write_cf(tmp, 'w@example.com "|%s"\nw2@example.com "|%s"\n'
                  'a@b.example @DIR@/out/\n' % (why, why))
    lines, log = session(cf, transaction("EHLO", ["w@example.com"]))
    assert final_replies(lines, 1) == [
        "554 5.3.0 mailer failed (exit status 1): "
        "cannot write /var/mail/joe: Disk quota exceeded"], log
    # through the spool: the bounce to the sender tells it too
    lines, log = session(cf, transaction("EHLO", ["w@example.com", "w2@example.com"]))
    out = os.path.join(tmp, "out", "new")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not os.listdir(out):
        time.sleep(0.1)
    bounces = [open(os.path.join(out, f), encoding="utf-8").read()
               for f in os.listdir(out)]
    assert len(bounces) == 1, log
    assert "Disk quota exceeded" in bounces[0], bounces[0]
    assert "second line" not in bounces[0]


def test_a_mailer_that_cannot_be_run_says_why(tmp):
    """A [pipe] whose program is missing (procmail not installed, the
    built-in local mailer's) deferred every message with '451 4.3.0
    temporary failure (exit status 75)': nothing said what was wrong.
    The reply now names the program and the error."""
    cf = write_cf(tmp, "g@example.org gone\n",
                  '[pipe "gone"]\nexec = /nonexistent/procmail -d ${RCPT_TO}\n')
    lines, log = session(cf, transaction("EHLO", ["g@example.org"]))
    assert final_replies(lines, 1) == [
        "451 4.3.0 cannot run /nonexistent/procmail: No such file or directory"], log
