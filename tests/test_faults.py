"""System calls that fail (strace --inject), one at a time, in a session
or a flush: the reply to the end of the data is still the truth (SPEC 7),
and a message is delivered once, or again only where a crash would have
repeated it (SPEC 7.1).

Each test runs postmaster under `strace -f -b execve`: the faults reach
postmaster and the processes it forks, never the mailers it executes.
strace counts calls per process, so `when=N` is the Nth call of each.

Every server here runs on 127.0.0.1; every test directory is removed.
Tests run as root (strace, and the session runs as nobody).
"""
import glob
import os
import re
import subprocess
import threading

import pytest

from pmtest import POSTMASTER, ROOT, no_sanitizer_report, tool
from test_spool import (Session, copy_state, flush, maildir_files,
                        make_message, mkdir, read_bytes, read_text,
                        send_one, smtp_data, spool_files, tmp, write_cf)  # noqa: F401

pytestmark = pytest.mark.skipif(not ROOT, reason="strace and user-id = "
                                "nobody need root")


def strace_argv(trace, syscall, fault, paths=()):
    """strace before postmaster: syscall fails with fault (error=E:when=N)
    in postmaster and its forks (only on paths, when given); the calls
    are logged to trace."""
    return [tool("strace"), "-f", "-b", "execve", "-qq", "-o", trace,
            *[a for p in paths for a in ("-P", p)],
            "-e", "trace=" + syscall,
            "-e", "inject=%s:%s" % (syscall, fault)]


class TracedSession(Session):
    """A Session (test_spool) whose postmaster runs under strace_argv."""

    def __init__(self, cf, trace, syscall, fault, paths=()):
        self.proc = subprocess.Popen(
            strace_argv(trace, syscall, fault, paths) +
            [POSTMASTER, "--config=" + cf],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.buf = b""
        self.err = b""
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()


def injected(trace, pattern):
    """Whether the strace log shows a call matching pattern that failed
    by injection: the test hit the call it means."""
    return re.search(pattern + r".*\(INJECTED\)", read_text(trace))


def copies(paths, marker, body):
    """How many of the files are whole copies of the message, and how many
    are anything else (a copy cut short, an empty file)."""
    whole = [p for p in paths if copy_state(read_bytes(p), marker, body) == "complete"]
    return len(whole), len(paths) - len(whole)


def test_a_mailer_whose_stdin_cannot_be_set_up_gets_no_message(tmp):
    """The mailer's child once ignored a failed dup2() of the message onto
    its stdin: the mailer then read the session's own stdin (the client's
    connection), hung there, and took what it read for the message. Now
    the child exits 75: the client gets 451 4.3.0 and nothing is
    delivered."""
    mkdir(tmp + "/out")
    cf = write_cf(tmp, 'p@example.net "|cat > @DIR@/out/p"\n')
    trace = tmp + "/trace"
    msg, _ = make_message("dup2")
    s = TracedSession(cf, trace, "dup2", "error=EINTR:when=1").start()
    s.cmd("MAIL FROM:<a@sender.example>", "250 ")
    s.cmd("RCPT TO:<p@example.net>", "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(msg))
    try:
        final = s.reply(timeout=10)[-1]
    finally:
        log = s.end()
    assert injected(trace, r"dup2\(\d+, 0\)"), read_text(trace)
    assert re.match(r"451 4\.3\.0 ", final), final
    assert read_text(tmp + "/out/p") == "", "the mailer delivered something"
    assert "status=deferred" in log, log


def test_a_data_file_that_cannot_be_sized_is_not_delivered(tmp):
    """The session measured the message with lseek(SEEK_END) and did not
    check it: a failure made its size negative, and a direct delivery
    wrote the Return-Path and Delivered-To headers alone to both Maildirs
    and answered 250. Now the client gets 451 4.3.0 and neither Maildir
    has anything."""
    cf = write_cf(tmp, "m@example.net @DIR@/A/, @DIR@/B/\n")
    trace = tmp + "/trace"
    msg, _ = make_message("lseek")
    s = TracedSession(cf, trace, "lseek", "error=EIO:when=2").start()
    final = s.mail("a@sender.example", ["m@example.net"], msg)
    s.end()
    assert injected(trace, r"lseek\(\d+, 0, SEEK_END\)"), read_text(trace)
    assert re.match(r"451 4\.3\.0 ", final), final
    for box in ("A", "B"):
        assert maildir_files(tmp + "/" + box) == [], box


def test_a_message_whose_file_cannot_be_removed_is_not_delivered_again(tmp):
    """A flush delivers a command target and a Maildir and bounces a third
    target, then fails to remove the message file (EIO). It used to remove
    ID.env anyway, so that the next flush read the envelope at the head of
    the message file, where every target was still pending, and ran the
    command and sent the bounce a second time. Now ID.env stays, holding
    this run's outcome, and the next flush only removes the message."""
    os.mkdir(tmp + "/box", 0o755)  # not the session user's yet: deferred
    mkdir(tmp + "/cmd")
    mkdir(tmp + "/bounces")
    cf = write_cf(tmp, 'list@example.net @DIR@/box/A/, '
                       '"|test -e @DIR@/go || exit 75; cat > $(mktemp @DIR@/cmd/m.XXXXXX)", '
                       '"|test -e @DIR@/go || exit 75; exit 67"\n'
                       'a@sender.example @DIR@/bounces/\n')
    msg, body = make_message("removal")
    r, qid, log = send_one(cf, "a@sender.example", ["list@example.net"], msg)
    assert qid, r
    assert log.count("status=deferred") == 3, log
    os.chmod(tmp + "/box", 0o1777)
    open(tmp + "/go", "w").close()
    trace = tmp + "/trace"
    p = subprocess.run(strace_argv(trace, "unlinkat", "error=EIO:when=1") +
                       [POSTMASTER, "--config=" + cf, "--flush", "--now"],
                       capture_output=True, text=True, errors="replace",
                       timeout=60)
    no_sanitizer_report(p.stdout + p.stderr, "--flush")
    assert injected(trace, r'unlinkat\(\d+, "%s", 0\)' % qid), read_text(trace)
    again = flush(cf, "--now").stderr + flush(cf, "--now").stderr
    assert copies(glob.glob(tmp + "/cmd/m.*"), "removal", body) == (1, 0)
    assert copies(maildir_files(tmp + "/box/A"), "removal", body) == (1, 0)
    assert len(maildir_files(tmp + "/bounces")) == 1
    assert spool_files(tmp + "/spool") == []
    # the logs say what happened
    assert "id=%s event=not-removed" % qid in p.stderr, p.stderr
    assert "id=%s event=removed" % qid not in p.stderr, p.stderr
    assert not re.search(r"id=%s .*status=" % qid, again), again
    assert "id=%s event=removed" % qid in again, again


def test_a_delivery_without_dev_null_leaves_the_client_s_connection(tmp):
    """The detached delivery (SPEC 7 path 3) puts /dev/null on its stdin
    and stdout, which are the client's connection when the session is on
    one (inetd, tcpserver, pipes). When /dev/null could not be opened
    (ENFILE) it went on with the connection: the client saw it close only
    once a slow delivery had ended. Now that process leaves the message
    to the flusher at once and says so."""
    cf = write_cf(tmp, 'list@example.net @DIR@/A/, "|sleep 3; cat > @DIR@/out"\n')
    trace = tmp + "/trace"
    # the delivery process's open of /dev/null alone
    s = TracedSession(cf, trace, "openat", "error=ENFILE:when=1",
                      paths=("/dev/null",))
    s.start()
    msg, body = make_message("devnull")
    r = s.mail("a@sender.example", ["list@example.net"], msg)
    assert r.startswith("250 "), r
    s.cmd("QUIT", "221 ")
    s.proc.stdin.close()
    closed = []
    t = threading.Thread(target=lambda: closed.append(s.proc.stdout.read()))
    t.start()
    t.join(1.5)
    assert closed == [b""], "the connection is still open after QUIT"
    s.proc.wait(timeout=30)
    s.reader.join(30)
    log = s.err.decode("utf-8", "replace")
    no_sanitizer_report(log, "session")
    assert injected(trace, r'openat\(AT_FDCWD, "/dev/null"'), read_text(trace)
    assert "event=left-to-flush" in log, log
    flush(cf, "--now")
    assert copies(maildir_files(tmp + "/A"), "devnull", body) == (1, 0)
    assert copies([tmp + "/out"], "devnull", body) == (1, 0)
