"""A session is bounded in time and memory whatever the client does
(SPEC 5, SPEC 11): a client that stops reading its replies is cut off
after the timeout, pipelined commands do not grow the output, and
recipients cost constant time and little memory each.

CPU time and peak RSS (VmHWM) are the session's own, read from /proc
while it is still there. Bounds are generous and no assertion depends on
wall-clock time. The sanitizer build's memory is not comparable (shadow
memory, redzones, a quarantine of freed blocks), so the RSS bounds are
skipped there; everything else runs in both builds.
"""
import os
import socket
import subprocess
import threading

import pytest

from pmtest import (POSTMASTER, ROOT, SANITIZED, Tcpserver, no_sanitizer_report,
                    remove_tree, scratch_dir, wait_for)

NEVER_READS = "client stopped reading replies"
RSS_LIMIT_KIB = 8 * 1024
MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "man")  # SPEC 11: a session's peak RSS under 8 MiB


@pytest.fixture
def tmp():
    d = scratch_dir("pm-bounds-")
    yield d
    remove_tree(d)


def write_cf(tmp, route="{tmp}/Maildir/", extra="", timeout="60s",
             junk=10000000, max_rcpt=100000):
    cf = os.path.join(tmp, "postmaster.cf")
    with open(cf, "w") as f:
        f.write("""[core]
{user}
hostname = mx.example.net
logger = stderr
spool-directory = {tmp}/spool
[smtpd "mx"]
timeout = {timeout}
max-recipients = {max_rcpt}
{junk}
{extra}
[route]
@example.net {route}
""".format(user="user-id = nobody" if ROOT else "", tmp=tmp, extra=extra,
           timeout=timeout, max_rcpt=max_rcpt,
           junk="" if junk is None else "junk-command-limit = %d" % junk,
           route=route.format(tmp=tmp)))
    r = subprocess.run([POSTMASTER, "--config=" + cf, "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return cf


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def proc_figures(pid):
    """(CPU seconds, peak RSS in KiB) of a live process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/status" % pid) as f:
        hwm = [l for l in f if l.startswith("VmHWM:")][0]
    return cpu, int(hwm.split()[1])


MARK = b"VRFY mark\r\n"
TAIL = b"NOOP\r\n" * 20000 + b"QUIT\r\n"


def run_session(tmp, cf, script):
    """Runs one session on script + MARK + TAIL, from a file on stdin (input
    is always waiting: only the output limit can make the session write
    before the end), and returns (exit status, the replies before the
    mark's, log, CPU seconds, peak RSS in KiB). The figures are read
    from /proc once the mark's reply arrived: the replies to TAIL cannot
    all fit the pipe, so the session is still there."""
    path = os.path.join(tmp, "in")
    with open(path, "wb") as f:
        f.write(script + MARK + TAIL)
    with open(path, "rb") as i, open(os.path.join(tmp, "log"), "wb") as e:
        p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=i,
                             stdout=subprocess.PIPE, stderr=e)
    try:
        replies = []
        for line in p.stdout:
            if line.startswith(b"252 2.5.0 "):
                break
            replies.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        else:
            raise AssertionError("no reply to the mark: %s" % replies[-2:])
        cpu, rss = proc_figures(p.pid)
        rest = p.stdout.read()
        status = p.wait(timeout=60)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    assert rest.count(b"250 2.0.0 OK\r\n") == 20000
    log = read(os.path.join(tmp, "log"))
    no_sanitizer_report(log, "session")
    return status, replies, log, cpu, rss


# ------------------------------------------------------------------ #
# A client that never reads its replies                             #


def send_noops_until_refused(write, stop):
    """Pipelines NOOPs without ever reading, until the other side stops
    taking them (or the test gives up)."""
    chunk = b"NOOP\r\n" * 1000
    try:
        write(b"EHLO client.example\r\n")
        while not stop.is_set():
            write(chunk)
    except OSError:
        pass


def test_client_that_never_reads_is_cut_off_on_a_pipe(tmp):
    # the recipe: a client that writes commands and reads nothing
    cf = write_cf(tmp, timeout="2s")
    log_path = os.path.join(tmp, "log")
    with open(log_path, "wb") as log:
        p = subprocess.Popen([POSTMASTER, "--config=" + cf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=log)

    def write(b):
        p.stdin.write(b)
        p.stdin.flush()
    stop = threading.Event()
    writer = threading.Thread(target=send_noops_until_refused,
                              args=(write, stop))
    writer.start()
    try:
        # timeout = 2s; 60 s is only an upper bound for a loaded machine
        status = p.wait(timeout=60)
    finally:
        stop.set()
        p.kill()
        p.wait()
        writer.join(timeout=30)
        p.stdout.close()
        try:
            p.stdin.close()
        except OSError:
            pass
    assert not writer.is_alive()
    assert status == 75
    text = read(log_path)
    no_sanitizer_report(text, "session")
    assert "event=timeout" in text and NEVER_READS in text, text


def test_client_that_never_reads_is_cut_off_on_a_socket(tmp):
    cf = os.path.join(tmp, "postmaster.cf")
    srv = Tcpserver([POSTMASTER, "--config=" + cf], os.path.join(tmp, "log"))
    stop = threading.Event()
    c = None
    try:
        # the port is known once tcpserver listens; each connection reads
        # the configuration afresh
        write_cf(tmp, extra="listen-port = 127.0.0.1:%d" % srv.port,
                 timeout="2s")
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", srv.port))
        writer = threading.Thread(target=send_noops_until_refused,
                                  args=(c.sendall, stop))
        writer.start()
        wait_for(lambda: NEVER_READS in read(os.path.join(tmp, "log")),
                 60, "the session to give up on a client that never reads")
        # the session is over: the connection was closed under the writer
        writer.join(timeout=30)
        assert not writer.is_alive()
        # it closes the connection first, then logs its end
        wait_for(lambda: "event=disconnect" in read(os.path.join(tmp, "log")),
                 30, "the session's last log line")
    finally:
        stop.set()
        if c:
            try:
                c.shutdown(socket.SHUT_RDWR)  # wakes a blocked writer
            except OSError:
                pass  # reset by the session
            c.close()
        text = srv.stop()
    assert "event=disconnect" in text, text


# ------------------------------------------------------------------ #
# Pipelined commands                                                 #


def test_a_million_pipelined_commands_keep_memory_flat(tmp):
    cf = write_cf(tmp)
    n = 1000000
    status, replies, log, cpu, rss = run_session(
        tmp, cf, b"EHLO client.example\r\n" + b"RSET\r\n" * n)
    assert status == 0, log
    assert replies.count("250 2.0.0 OK") == n, replies[-5:]
    if SANITIZED:
        pytest.skip("RSS of the sanitizer build is not comparable (shadow "
                    "memory, quarantine of freed blocks)")
    # 15 MiB before the output was bounded
    assert rss < RSS_LIMIT_KIB, "peak RSS %d KiB" % rss


# ------------------------------------------------------------------ #
# Many recipients                                                    #


def transaction(n):
    rcpts = b"".join(b"RCPT TO:<user%d@example.net>\r\n" % i for i in range(n))
    return (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n" +
            rcpts + b"DATA\r\nSubject: many\r\n\r\nHello.\r\n.\r\n")


@pytest.mark.parametrize("target", ["Maildir", "discard"])
def test_recipients_cost_constant_time(tmp, target):
    route = "{tmp}/Maildir/" if target == "Maildir" else "discard"
    cf = write_cf(tmp, route=route)
    n = 20000
    status, replies, log, cpu, rss = run_session(tmp, cf, transaction(n))
    assert status == 0, log
    assert sum(r.startswith("250 2.1.5 ") for r in replies) == n
    if target == "Maildir":
        assert replies[-1] == "250 2.0.0 delivered to 1 Maildir", replies[-2:]
        new = os.listdir(os.path.join(tmp, "Maildir", "new"))
        assert len(new) == 1
    else:
        assert replies[-1] == "250 2.0.0 discarded", replies[-2:]
    # 20.7 s of CPU when each RCPT copied every earlier recipient
    assert cpu < 5, "%d recipients cost %.1f s of CPU" % (n, cpu)


def test_ten_thousand_recipients_fit_in_8_MiB(tmp):
    if SANITIZED:
        pytest.skip("RSS of the sanitizer build is not comparable (shadow "
                    "memory, redzones around every recipient)")
    cf = write_cf(tmp)
    status, replies, log, cpu, rss = run_session(tmp, cf, transaction(10000))
    assert status == 0, log
    assert replies[-1] == "250 2.0.0 delivered to 1 Maildir", replies[-2:]
    # 18.8 MiB at 1.9 KiB per recipient before
    assert rss < RSS_LIMIT_KIB, "peak RSS %d KiB" % rss


# ------------------------------------------------------------------ #
# A client that trickles, or never ends a line                        #


def trickle_session(tmp, opening, drip, every=0.3):
    """A session on pipes (timeout 2s) that gets opening, then drip for
    ever, one piece every `every` seconds, each piece well within the
    timeout, until the session stops taking them. Returns (exit status,
    output, log). Before per-command deadlines it never ended."""
    cf = write_cf(tmp, timeout="2s")
    log_path = os.path.join(tmp, "log")
    with open(log_path, "wb") as log:
        p = subprocess.Popen([POSTMASTER, "--config=" + cf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=log)
    stop = threading.Event()

    def writer():
        try:
            p.stdin.write(opening)
            p.stdin.flush()
            while not stop.wait(every):
                p.stdin.write(drip)
                p.stdin.flush()
        except OSError:
            pass
    t = threading.Thread(target=writer)
    t.start()
    try:
        status = p.wait(timeout=60)  # an upper bound only
        out = p.stdout.read()
    finally:
        stop.set()
        p.kill()
        p.wait()
        t.join(timeout=30)
        p.stdout.close()
        try:
            p.stdin.close()
        except OSError:
            pass
    text = read(log_path)
    no_sanitizer_report(text, "session")
    return status, out, text


def test_a_command_trickled_a_byte_at_a_time_ends_the_session(tmp):
    status, out, log = trickle_session(tmp, b"EHLO client.example\r\n", b"N")
    assert b"\r\n421 4.4.2 mx Timeout exceeded, closing connection\r\n" \
        in out, out
    assert status == 75 and "event=timeout" in log, log


def test_an_endless_line_ends_the_session(tmp):
    status, out, log = trickle_session(tmp, b"EHLO client.example\r\n",
                                       b"x" * 65536, every=0.01)
    assert b"\r\n421 4.4.2 mx Timeout exceeded" in out, out[-300:]
    assert status == 75, log


def test_data_trickled_below_the_minimum_rate_ends_the_session(tmp):
    opening = (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n"
               b"RCPT TO:<joe@example.net>\r\nDATA\r\nSubject: slow\r\n\r\n")
    status, out, log = trickle_session(tmp, opening, b"x")
    assert b"\r\n354 " in out and \
        out.endswith(b"421 4.4.2 mx Timeout during data, closing\r\n"), out
    assert not os.path.isdir(os.path.join(tmp, "Maildir", "new")) or \
        os.listdir(os.path.join(tmp, "Maildir", "new")) == []


def test_commands_without_mail_are_limited(tmp):
    """junk-command-limit: the fifth command that carries no mail since
    the last delivered message ends the session; a delivered message
    starts the count again."""
    cf = write_cf(tmp, junk=5)
    mail = (b"MAIL FROM:<ann@sender.example>\r\nRCPT TO:<joe@example.net>\r\n"
            b"DATA\r\nSubject: x\r\n\r\nx\r\n.\r\n")
    script = (b"EHLO client.example\r\n" + b"NOOP\r\n" * 3 + mail +
              b"RSET\r\nVRFY joe\r\nNOOP\r\nHELP\r\nNOOP\r\nNOOP\r\n")
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=script,
                       capture_output=True, timeout=60)
    replies = [l for l in p.stdout.decode().split("\r\n") if l[3:4] == " "]
    assert replies[2:5] == ["250 2.0.0 OK"] * 3, replies
    assert replies[-1] == "421 4.7.0 mx Too many commands " \
        "without mail, closing connection", replies
    # after the delivery: RSET, VRFY, NOOP, HELP and the fifth, NOOP
    assert replies[-3].startswith("502 ") and replies[-2] == "250 2.0.0 OK", replies
    assert len(os.listdir(os.path.join(tmp, "Maildir", "new"))) == 1


def replies_to(cf, script):
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=script,
                       capture_output=True, timeout=60)
    no_sanitizer_report(p.stderr.decode("utf-8", "replace"), "session")
    return [l for l in p.stdout.decode().split("\r\n") if l[3:4] == " "]


def test_recipients_past_the_overshoot_end_the_session(tmp):
    """Past max-recipients, 1000 RCPTs answered 452 4.5.3 are no error
    (RFC 5321 4.5.3.1.10); each one after them is, so the tenth such
    ends the session instead of a client sending them for ever."""
    cf = write_cf(tmp, max_rcpt=1)
    script = (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n" +
              b"RCPT TO:<joe@example.net>\r\n" * 5000 + b"QUIT\r\n")
    replies = replies_to(cf, script)
    assert replies.count("250 2.1.5 Recipient <joe@example.net> OK") == 1
    assert replies.count("452 4.5.3 Too many recipients") == 1010, replies[-3:]
    assert replies[-1] == "421 4.7.0 mx Too many errors, closing " \
        "connection", replies[-3:]


def test_empty_chunks_count_as_junk(tmp):
    """BDAT 0 without LAST carries no mail: junk-command-limit ends a
    session that sends nothing else."""
    cf = write_cf(tmp, junk=5)
    script = (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n"
              b"RCPT TO:<joe@example.net>\r\n" + b"BDAT 0\r\n" * 5000 +
              b"QUIT\r\n")
    replies = replies_to(cf, script)
    # EHLO and four empty chunks, answered; then the session ends
    assert replies.count("250 2.0.0 0 octets received") == 4, replies[-3:]
    assert replies[-1] == "421 4.7.0 mx Too many commands " \
        "without mail, closing connection", replies[-3:]
    assert not os.listdir(os.path.join(tmp, "Maildir"))


def test_junk_command_limit_is_what_the_manuals_say(tmp):
    """postmaster(8) and postmaster.cf(5) agree with the code: with the
    default limit the hundredth command without mail (EHLO counts) is
    answered, then the session ends with 421 4.7.0."""
    cf = write_cf(tmp, junk=None)
    replies = replies_to(cf, b"EHLO client.example\r\n" +
                         b"NOOP\r\n" * 120 + b"QUIT\r\n")
    assert replies[2:] == ["250 2.0.0 OK"] * 99 + [
        "421 4.7.0 mx Too many commands without mail, closing connection"]
    man5 = read(os.path.join(MAN, "postmaster.cf.5"))
    entry = man5.split(".It Ic junk-command-limit")[1].split(".It ")[0]
    entry = " ".join(entry.split())
    assert "default: 100" in entry and "the last of them is answered" in \
        entry and "the hundredth such command is the last" in entry, entry
    man8 = " ".join(read(os.path.join(MAN, "postmaster.8")).split())
    assert "the hundredth command that carries no mail" in man8 and \
        "once it has been answered" in man8


def test_chunks_trickled_below_the_minimum_rate_end_the_session(tmp):
    """BDAT is paced as DATA is: one octet per chunk, each chunk well
    within the timeout, is far below 500 bytes/s, and the session ends
    within about twice the timeout instead of living on."""
    opening = (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n"
               b"RCPT TO:<joe@example.net>\r\n")
    status, out, log = trickle_session(tmp, opening, b"BDAT 1\r\nx")
    assert b"250 2.0.0 1 octets received\r\n" in out, out
    assert out.endswith(b"421 4.4.2 mx Timeout during BDAT, closing\r\n"), \
        out[-200:]
    assert status == 75, log
    assert not os.listdir(os.path.join(tmp, "Maildir"))


def test_a_chunk_refused_before_mail_leaves_no_pace(tmp):
    """A BDAT refused before MAIL (503, its chunk discarded) starts no
    message: the commands after it each get the whole timeout (2s), not
    what is left of a BDAT pace."""
    cf = write_cf(tmp, timeout="2s")
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        steps = [b"EHLO client.example\r\nBDAT 3\r\nabc", b"NOOP\r\n",
                 b"MAIL FROM:<ann@sender.example>\r\n",
                 b"RCPT TO:<joe@example.net>\r\n"]
        for step in steps:
            p.stdin.write(step)
            p.stdin.flush()
            threading.Event().wait(1.5)
        p.stdin.write(b"QUIT\r\n")
        p.stdin.close()
        out = p.stdout.read()
        err = p.stderr.read()
        p.wait(timeout=60)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
    replies = [l for l in out.decode().split("\r\n") if l[3:4] == " "]
    assert replies[2:] == [
        "503 5.5.1 No valid recipients (discarded 3 octets)", "250 2.0.0 OK",
        "250 2.1.0 Sender <ann@sender.example> OK",
        "250 2.1.5 Recipient <joe@example.net> OK",
        "221 2.0.0 mx closing connection"], replies
    no_sanitizer_report(err.decode("utf-8", "replace"), "session")


def test_chunks_at_a_fair_rate_are_not_cut_off(tmp):
    """A client whose chunks come faster than 500 bytes/s on average is
    never cut off, however long the message takes in all."""
    opening = (b"EHLO client.example\r\nMAIL FROM:<ann@sender.example>\r\n"
               b"RCPT TO:<joe@example.net>\r\nBDAT 9\r\nSubject: ")
    chunk = b"BDAT 400\r\n" + b"y" * 398 + b"\r\n"
    cf = write_cf(tmp, timeout="2s")
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(opening)
        p.stdin.flush()
        for _ in range(20):  # 6 s at about 1300 bytes/s
            p.stdin.write(chunk)
            p.stdin.flush()
            threading.Event().wait(0.3)
        p.stdin.write(b"BDAT 0 LAST\r\nQUIT\r\n")
        p.stdin.close()
        out = p.stdout.read()
        err = p.stderr.read()
        p.wait(timeout=60)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
    assert b"\r\n250 2.0.0 delivered to 1 Maildir\r\n" in out, out[-300:]
    assert out.endswith(b"221 2.0.0 mx closing connection\r\n"), out[-200:]
    no_sanitizer_report(err.decode("utf-8", "replace"), "session")


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<a@example.org> " + b"\x01" * 120 + b"=1",
    b"MAIL FROM:<a@example.org> " + b"\xff" * 300,
    b"MAIL FROM:<a@example.org> " + b"\\" * 300 + b"=1",
    b"RCPT TO:<joe@example.net> " + b"\xff" * 300,
])
def test_a_reply_that_quotes_the_client_fits_in_512_octets(tmp, line):
    """A reply quotes at most 200 characters of what the client sent,
    counted after escaping (a control byte is four: \\x01): every reply
    line is at most 512 octets (RFC 5321 4.5.3.1.5)."""
    cf = write_cf(tmp)
    pre = b"" if line.startswith(b"MAIL") else b"MAIL FROM:<a@example.org>\r\n"
    lines = replies_to(cf, b"EHLO x\r\n" + pre + line + b"\r\nQUIT\r\n")
    assert any(l.startswith(("555 5.5.4 ", "501 5.5.4 ")) for l in lines), lines
    assert max(len(l.encode()) + 2 for l in lines) <= 512, lines


@pytest.mark.parametrize("last", [b"BDAT 0 LAST", b"BDAT 0 LAST\r", b"RSET"])
def test_a_command_cut_off_by_the_end_of_input_is_not_run(tmp, last):
    """A connection that ends inside a command line never sent that
    command (RFC 5321 2.3.8): the fragment is dropped as an end of input,
    and a BDAT 0 LAST without its line end delivers nothing."""
    cf = write_cf(tmp)
    lines = replies_to(cf, b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
                           b"RCPT TO:<joe@example.net>\r\nBDAT 3\r\nabc" + last)
    assert lines[-1] == "250 2.0.0 3 octets received", lines
    new = os.path.join(tmp, "Maildir", "new")
    assert not os.path.isdir(new) or os.listdir(new) == []


@pytest.mark.skipif(SANITIZED, reason="the sanitizer runtime needs more "
                    "descriptors than the limit this test sets")
def test_a_data_refused_for_storage_does_not_run_the_content(tmp):
    """The store cannot be opened (four descriptors: no message file):
    DATA is refused, and content pipelined behind it without waiting for
    the 354 ends the session with 554 5.5.0 (SPEC 5), as every other DATA
    refusal does; it was read as commands, and a transaction hidden in
    the body was delivered."""
    cf = write_cf(tmp)
    wire = (b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<joe@example.net>\r\nDATA\r\nSubject: x\r\n\r\nRSET\r\n"
            b"MAIL FROM:<smuggled@example.org>\r\nRCPT TO:<joe@example.net>\r\n"
            b"DATA\r\n.\r\nQUIT\r\n")
    r = subprocess.run(["prlimit", "--nofile=4:4", POSTMASTER, "--config=" + cf],
                       input=wire, capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert "554 5.5.0 " in out, out
    assert "smuggled" not in out, out
    assert "event=spool-error" in r.stderr.decode(), r.stderr
    new = os.path.join(tmp, "Maildir", "new")
    assert not os.path.isdir(new) or os.listdir(new) == []


@pytest.mark.parametrize("rcpt", ["joe@example.net", "two@example.net"])
def test_a_message_past_the_file_size_limit_gets_552(tmp, rcpt):
    """Under a file size limit (ulimit -f, systemd's LimitFSIZE=) the write
    past it killed the session with SIGXFSZ mid-data: no reply, nothing
    logged. The write fails instead, and the client hears 552 5.3.4 after
    its data, for the direct path and the spool alike; nothing is kept."""
    cf = write_cf(tmp, extra='[pipe "cat"]\nexec = /bin/sh -c "cat >/dev/null"\n')
    with open(cf) as f:
        text = f.read()
    with open(cf, "w") as f:
        f.write(text.replace("[route]\n", "[route]\ntwo@example.net "
                             "{0}/Maildir/, cat\n".format(tmp)))
    body = b"Subject: x\r\n\r\n" + (b"x" * 78 + b"\r\n") * 4000
    wire = (b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\n"
            b"DATA\r\n" % rcpt.encode()) + body + b".\r\nQUIT\r\n"
    r = subprocess.run(["prlimit", "--fsize=100000", POSTMASTER,
                        "--config=" + cf], input=wire, capture_output=True,
                       timeout=60)
    out = r.stdout.decode()
    assert "\r\n552 5.3.4 Message too big for this system" in out, out + \
        r.stderr.decode()
    assert out.splitlines()[-1].startswith("221 2.0.0 "), out
    new = os.path.join(tmp, "Maildir", "new")
    assert not os.path.isdir(new) or os.listdir(new) == []
    assert [f for f in os.listdir(os.path.join(tmp, "spool"))
            if not f.startswith(".")] == []
