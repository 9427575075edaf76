"""The configuration tools as an administrator runs them (SPEC 2, 3, 6;
postmaster(8)): --check, --dump [--defaults], --route, flags, compiled
route files, and the exit statuses (64 usage, 67 refused, 69 unavailable,
75 temporary, 78 configuration)."""
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import time

import pytest

from pmtest import remove_tree, scratch_dir, session_maps

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
POSTMASTER = os.path.abspath(os.environ.get("POSTMASTER", os.path.join(TOP, "postmaster")))
DATA = os.path.join(HERE, "data")


def pm(*args, cwd=None):
    r = subprocess.run([POSTMASTER, *args], capture_output=True, text=True,
                       cwd=cwd, timeout=60)
    for mark in ("Sanitizer", "runtime error:", "LeakSanitizer"):
        assert mark not in r.stderr, r.stderr
    return r


def check(cf, *flags, cwd=None):
    """postmaster --config=CF [FLAGS] --check. Run as root, --check refuses
    a file without core.user-id (every session started as root refuses
    it); a test about another rule checks such a file as the units would
    run it, with --core-user-id=nobody (after its own flags, so that their
    "command line" positions stay)."""
    cf = str(cf)
    path = cf if os.path.isabs(cf) or cwd is None else os.path.join(cwd, cf)
    extra = []
    if os.geteuid() == 0 and os.path.isfile(path) and not any("user-id" in f for f in flags):
        with open(path, errors="replace") as f:
            if "user-id" not in f.read():
                extra = ["--core-user-id=nobody"]
    return pm("--config=" + cf, *flags, *extra, "--check", cwd=cwd)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.fixture
def seed(tmp_path):
    """A copy of the seed's example (seed.cf including seed.rt), so that no
    compiled index is written into or read from tests/data."""
    for name in ("seed.cf", "seed.rt"):
        shutil.copy(os.path.join(DATA, name), tmp_path / name)
    return str(tmp_path / "seed.cf")


SEED_DUMP = """\
core.logger = syslog
core.user-id = "postmaster"
core.group-id = "nobody"
core.pid-file = "/var/run/postmaster.pid"
core.spool-directory = "/var/spool/mailqueue"
core.local-mailer = procmail
syslog.ident = "postmaster"
syslog.facility = "mail"
logfile."system-wide-logfile".file = "/var/log/postmaster-%Y-%m-%d"
pipe."procmail".exec = "/usr/bin/procmail" "-f" "${MAIL_FROM}" "-d" "${RCPT_TO}"
pipe."procmail".max_rcpt_to = 16
relay."relay.example.org".name = relay.example.org
relay."relay.example.org".address = 10.0.0.1
relay."relay.example.org".address = 10.0.0.2
smtpd."mx.example.net".name = mx.example.net
smtpd."mx.example.net".listen-port = 25
smtpd."mx.example.net".routing-table = extern
smtpd."localhost".listen-port = ipv6-localhost:submission
smtpd."localhost".logger = system-wide-logfile
smtpd."localhost".routing-table = local-routes
smtpd."localhost".local-rcpt-to = yes
route."".postmaster = joe
route."".postmaster@acme.example.net = postmaster
route."".postmaster@acme.example.org = postmaster
route."".file = "seed.rt"
route."extern".@example.com = @example.org
route."extern".@example.org = mx.example.net
route."local-routes".root@ = postmaster
route."local-routes".bin@ = postmaster
route."local-routes".cron@ = postmaster
route."local-routes".games@ = postmaster
"""


# ---------------------------------------------------------------- --check

def test_check_seed(seed):
    r = check(seed)
    assert r.returncode == 0, r.stderr
    assert r.stdout == seed + ": ok: 2 listeners, 3 route tables, 14 routes\n"
    # whatever this host lacks (the user postmaster, /var/spool/mailqueue)
    # is a warning, never an error
    for line in r.stderr.splitlines():
        assert ": warning: " in line, line


def test_check_every_error(tmp_path):
    write(tmp_path / "inc.rt", "ok@example.org /tmp/ok/\nbad@example.org /var/mail/bad\n")
    bad = write(tmp_path / "bad.cf", """\
[core]
hostname = -x
bounce-to = nobody
[smtpd "a"]
lmtp = maybe
listen-port = 25
routing-table = nosuch
[nosuch]
x = y
[route]
joe@example.org joe jane
file "inc.rt"
file "missing.rt"
""")
    r = check(bad, "--core-queue-lifetime=5y")
    assert r.returncode == 78
    assert r.stdout == ""
    inc = str(tmp_path / "inc.rt")
    assert r.stderr == (
        bad + ":2:12: expected a host name, found '-x'\n" +
        bad + ":3:13: expected sender, postmaster or both, found 'nobody'\n" +
        bad + ":5:8: expected yes or no, found 'maybe'\n" +
        bad + ":7:17: expected the name of a [route], found 'nosuch', which no section defines\n" +
        bad + ":8:2: expected a section (core, syslog, logfile, pipe, relay, milter, smtpd, route), found 'nosuch'\n" +
        bad + ":11:17: expected ',' between targets (only a |command may contain blanks), found 'joe jane'\n" +
        bad + ":13:6: route file \"" + str(tmp_path / "missing.rt") + "\" cannot open: No such file or directory\n" +
        "command line:2:23: expected a duration such as 300, 30s, 30m, 4h or 5d, found '5y'\n" +
        inc + ":2:17: expected a Maildir path ending in '/' (mbox files are not supported), found '/var/mail/bad'\n")
    # nothing was compiled from a configuration with errors
    assert not os.path.exists(inc + ".pmdb")


def test_check_bad_value_has_no_follow_up_warning(tmp_path):
    # the listener's listen-port is wrong: that is the one thing to say;
    # a warning about the default NAME:25 it did not ask for misleads
    bad = write(tmp_path / "b.cf", '[smtpd "mx.example"]\nlisten-port = 99999\n')
    r = check(bad)
    assert r.returncode == 78
    assert r.stderr == bad + ":2:15: expected a port number or service name, found '99999'\n"


def test_check_syntax_error_and_value_errors_in_one_run(tmp_path):
    bad = write(tmp_path / "s.cf", '[syslog]\nident = "open\nfacility = nope\n')
    r = check(bad)
    assert r.returncode == 78
    assert r.stderr == (
        bad + ":2:9: expected '\"' to close the string, found the end of the line\n" +
        bad + ":3:12: expected mail, daemon, user, local0, local1, local2, local3, "
        "local4, local5, local6 or local7, found 'nope'\n")


def test_byte_order_mark_at_the_start_of_a_file_is_skipped(tmp_path):
    # editors write one; it must not become part of the first pattern
    # (then '\ufeff@example.net' made example.net local and refused it all)
    rt = tmp_path / "b.rt"
    rt.write_bytes(b"\xef\xbb\xbfjoe@example.org /tmp/joe/\n")
    cf = tmp_path / "b.cf"
    cf.write_bytes(b'\xef\xbb\xbf@example.net /tmp/all/\n[route]\nfile "b.rt"\n')
    r = check(str(cf))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert pm("--config=" + str(cf), "--dump").stdout == (
        'route."".@example.net = /tmp/all/\nroute."".file = "b.rt"\n')
    r = pm("--config=" + str(cf), "--route=joe@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "250 2.1.5 <joe@example.org> OK"
    # columns count from after the mark
    cf.write_bytes(b"\xef\xbb\xbfhostname\n")
    r = check(str(cf))
    assert r.stderr == str(cf) + ":1:9: expected a value after 'hostname', found the end of the line\n"


def test_byte_order_mark_anywhere_else_is_an_error(tmp_path):
    cf = tmp_path / "b.cf"
    cf.write_bytes(b"x@example.org discard\n\xef\xbb\xbfy@example.org discard\n"
                   b"z@example.org \xef\xbb\xbfdiscard\n")
    r = check(str(cf))
    assert r.returncode == 78
    why = ": expected a word, found a byte-order mark (U+FEFF), which only the start of a file may hold\n"
    assert r.stderr == str(cf) + ":2:1" + why + str(cf) + ":3:15" + why


def test_host_names_are_ascii(tmp_path):
    """hostname and the names of [smtpd] and [relay] go on the wire
    (greeting, EHLO, Received, SNI), where RFC 5321 allows no U-label:
    'bücher.test' was accepted and greeted raw in UTF-8."""
    cf = write(tmp_path / "h.cf", """\
[core]
hostname = bücher.test
[smtpd "bücher.example"]
listen-port = 2525
[smtpd "mx"]
name = xn--zz.test
listen-port = 2526
[relay "r"]
address = 192.0.2.1
name = bücher.example
""")
    r = check(cf)
    assert r.returncode == 78
    bad_punycode = ("expected a host name whose xn-- labels are A-labels (xn--zz.test is not "
                    "a valid international domain name: string contains invalid punycode data)")
    assert r.stderr == (
        cf + ":2:12: expected an ASCII host name (the A-label form 'xn--bcher-kva.test'), "
        "found 'bücher.test'\n" +
        cf + ":3:1: expected an ASCII host name (the A-label form 'xn--bcher-kva.example') "
        "as the name of [smtpd \"bücher.example\"] or a 'name' key\n" +
        cf + ":6:8: " + bad_punycode + ", found 'xn--zz.test'\n" +
        cf + ":10:8: expected an ASCII host name (the A-label form 'xn--bcher-kva.example'), "
        "found 'bücher.example'\n"), r.stderr
    s = subprocess.run([POSTMASTER, "--config=" + cf, "--core-user-id=nobody"],
                       input=b"EHLO x\r\nQUIT\r\n", capture_output=True, timeout=30)
    assert s.stdout.startswith(b"421 4.3.0 "), s.stdout
    assert all(b < 0x80 for b in s.stdout), s.stdout


def test_an_international_relay_name_needs_a_name_key(tmp_path):
    """[relay "bücher.test"] without name took the U-label as its TLS
    host name; it is now refused as a 'name' key with it would be (--check
    names the A-label), while a NAME such as "hub" and an international
    NAME with an ASCII name key still do."""
    cf = write(tmp_path / "r.cf", """\
[core]
logger = stderr
[relay "bücher.test"]
address = [127.0.0.1]:2525
tls = verify
[relay "hub"]
address = [127.0.0.1]:2526
[relay "münchen.test"]
name = xn--mnchen-3ya.test
address = [127.0.0.1]:2527
[route]
@example.org bücher.test
@a.example hub
@b.example münchen.test
""")
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr == (
        cf + ":3:1: expected an ASCII host name (the A-label form 'xn--bcher-kva.test') "
        "as the name of [relay \"bücher.test\"] or a 'name' key\n"), r.stderr
    write(cf, open(cf).read().replace('[relay "bücher.test"]\n',
                                      '[relay "bücher.test"]\nname = xn--bcher-kva.test\n'))
    r = check(cf)
    assert r.returncode == 0, r.stderr
    # without TLS the NAME is no host name anywhere: it stays as it was
    write(cf, open(cf).read().replace("name = xn--bcher-kva.test\ntls = verify\n",
                                      "tls = no\n"))
    r = check(cf)
    assert r.returncode == 0, r.stderr


def test_a_label_host_names_are_accepted():
    d = scratch_dir("pm-alabel-", ("spool",))
    try:
        cf = write(os.path.join(d, "a.cf"), "[core]\nhostname = XN--BCHER-KVA.test\n"
                   "user-id = nobody\nlogger = stderr\nspool-directory = %s/spool\n"
                   '[smtpd "xn--bcher-kva.example"]\nlisten-port = 2525\n'
                   "[route]\n@x.test discard\n" % d)
        r = check(cf)
        assert r.returncode == 0, r.stderr
        env = {k: v for k, v in os.environ.items() if not k.startswith("TCP")}
        s = subprocess.run([POSTMASTER, "--config=" + cf, "--smtpd=xn--bcher-kva.example"],
                           input=b"EHLO x\r\nQUIT\r\n", capture_output=True, env=env,
                           timeout=30)
    finally:
        remove_tree(d)
    lines = s.stdout.split(b"\r\n")
    assert lines[0] == b"220 xn--bcher-kva.example ESMTP postmaster", s.stdout
    assert lines[1].startswith(b"250-xn--bcher-kva.example"), s.stdout


def test_an_a_label_host_name_loads_no_library_in_a_session():
    """A session greets with an xn-- host name as it is: it checks the
    label's Punycode shape itself and maps no libidn2 (SPEC 11); --check
    still has libidn2 judge the label, and a label that is no Punycode
    stops the session too."""
    d = scratch_dir("pm-alabel-", ("spool",))
    try:
        head = ("[core]\nuser-id = nobody\nlogger = stderr\n"
                "spool-directory = %s/spool\n" % d)
        cf = write(os.path.join(d, "a.cf"), head +
                   "hostname = xn--bcher-kva.example\n[route]\n@x.test discard\n")
        maps = session_maps([POSTMASTER, "--config=" + cf])
        assert "libidn2" not in maps
        bad = write(os.path.join(d, "b.cf"), head +
                    "hostname = xn--zz.test\n[route]\n@x.test discard\n")
        r = check(bad)
        assert r.returncode == 78 and "invalid punycode" in r.stderr, r.stderr
        s = subprocess.run([POSTMASTER, "--config=" + bad], input=b"QUIT\r\n",
                           capture_output=True, timeout=30)
        assert s.stdout.startswith(b"421 4.3.0 "), s.stdout
        assert b"xn--zz.test" in s.stderr, s.stderr
    finally:
        remove_tree(d)


def test_missing_config():
    r = pm("--config=/nonexistent/postmaster.cf", "--check")
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr == "/nonexistent/postmaster.cf: cannot open: No such file or directory\n"
    for mode in ("--dump", "--route=root@localhost"):
        r = pm("--config=/nonexistent/postmaster.cf", mode)
        assert r.returncode == 78
        assert r.stderr == "/nonexistent/postmaster.cf: cannot open: No such file or directory\n"


def test_config_is_a_directory(tmp_path):
    r = check(str(tmp_path))
    assert r.returncode == 78
    assert r.stderr == str(tmp_path) + ": is a directory, expected a file\n"


def test_a_fifo_is_refused_not_waited_for(tmp_path):
    """A route file (or the configuration) that is a FIFO: --check says
    it is not a regular file at once; opening it once waited for a
    writer for ever."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    cf = str(tmp_path / "pm.cf")
    write(cf, '[core]\nhostname = a.example\n[route]\nfile "%s"\n' % fifo)
    r = check(cf)
    assert r.returncode == 78, r
    assert r.stderr.endswith(':4:6: route file "%s" is not a regular file\n' % fifo), r.stderr
    r = check(fifo)
    assert (r.returncode, r.stderr) == (78, fifo + ": is not a regular file\n"), r


def test_unknown_smtpd(seed):
    for mode in ("--check", "--route=joe@example.org", "--dump"):
        r = pm("--config=" + seed, "--smtpd=nosuch", mode)
        assert r.returncode == 78, mode
        assert r.stdout == ""
        assert r.stderr.endswith("command line: --smtpd=nosuch: no [smtpd \"nosuch\"] section\n")


# ------------------------------------------------------------------ --dump

def test_dump_seed(seed):
    r = pm("--config=" + seed, "--dump")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == SEED_DUMP


def test_dump_does_not_read_route_files(tmp_path):
    # the include stays a file assignment; its content is not inlined
    write(tmp_path / "r.rt", "joe@example.org /m/joe/\n")
    cf = write(tmp_path / "i.cf", "a@example.org discard\nfile \"r.rt\"\n")
    r = pm("--config=" + cf, "--dump")
    assert r.returncode == 0
    assert r.stdout == 'route."".a@example.org = discard\nroute."".file = "r.rt"\n'


def test_dump_with_flags(tmp_path):
    cf = write(tmp_path / "f.cf", """\
[relay "r"]
address = 10.0.0.1
address = 10.0.0.2
[route]
a@ x@example.org
postmaster joe
b@ y@example.org
[smtpd "foo"]
listen-port 25
""")
    r = pm("--config=" + cf, '--smtpd."foo".listen-port = 2525', "--core-spool-directory=/x",
           "--route-postmaster=root", '--relay."r".address=10.0.0.3', '--route."".c@=z@example.org',
           '--smtpd."new"', "--smtpd-foo-timeout=1m", "--dump")
    assert r.returncode == 0, r.stderr
    assert r.stdout == """\
relay."r".address = 10.0.0.3
route."".c@ = z@example.org
route."".a@ = x@example.org
route."".postmaster = root
route."".b@ = y@example.org
smtpd."foo".listen-port = 2525
core.spool-directory = /x
smtpd."new"
smtpd."foo".timeout = 1m
"""


def test_bad_flag(tmp_path):
    cf = write(tmp_path / "e.cf", "")
    r = pm("--config=" + cf, "--dump", "--smtpd-foo=1", '--smtpd."foo".listen-port = abc')
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr == (
        "command line:3:12: expected smtpd-NAME-KEY, found no key\n"
        "command line:4:29: expected a port number or service name, found 'abc'\n")


def round_trip(cfpath, tmp_path):
    first = pm("--config=" + cfpath, "--dump")
    assert first.returncode == 0, first.stderr
    empty = write(tmp_path / "empty.cf", "")
    flags = ["--" + line for line in first.stdout.splitlines()]
    second = pm("--config=" + empty, *flags, "--dump")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    return first.stdout


def test_dump_round_trip_seed(seed, tmp_path):
    assert round_trip(seed, tmp_path) == SEED_DUMP


def test_dump_round_trip_corners(tmp_path):
    cf = write(tmp_path / "c.cf", """\
joe@example.org /m/joe/, "|/usr/bin/logger -t \\"x y\\""
"srs0=ab=cd@example.org" /m/srs/
"a=b@" "|/bin/echo a=b, c" , x@example.org
[relay "r"]
address = 192.0.2.1
address = "[192.0.2.2]:2525"
address 192.0.2.3 192.0.2.4
[smtpd "a.example"]
routing-table = t1
routing-table = t2
[route "t1"]
[route "t2"]
@example.org mx
[syslog]
ident = "with # hash and \\\\ backslash"
""")
    out = round_trip(cf, tmp_path)
    assert out == """\
route."".joe@example.org = /m/joe/, "|/usr/bin/logger -t \\"x y\\""
route."".\"srs0=ab=cd@example.org" = /m/srs/
route.""."a=b@" = "|/bin/echo a=b, c" , x@example.org
relay."r".address = 192.0.2.1
relay."r".address = "[192.0.2.2]:2525"
relay."r".address = 192.0.2.3 192.0.2.4
smtpd."a.example".routing-table = t1
smtpd."a.example".routing-table = t2
route."t1"
route."t2".@example.org = mx
syslog.ident = "with # hash and \\\\ backslash"
"""


def test_dump_round_trip_names_and_empty_sections(tmp_path):
    cf = write(tmp_path / "n.cf", """\
[route "empty"]
[smtpd "localhost"]
[pipe "p.q-r"]
exec = /usr/bin/x "${RCPT_TO}" "" "caf\u00e9"
[route "odd \\"name\\""]
"x=y@" discard
[core]
hostname = mx.example.org
[core]
recipient-delimiter = "+"
""")
    out = round_trip(cf, tmp_path)
    assert out == """\
route."empty"
smtpd."localhost"
pipe."p.q-r".exec = /usr/bin/x "${RCPT_TO}" "" "caf\u00e9"
route."odd \\"name\\""."x=y@" = discard
core.hostname = mx.example.org
core.recipient-delimiter = "+"
"""


def test_dump_round_trip_empty_unnamed_sections(tmp_path):
    """An empty [core] or [syslog] declares nothing (both always exist):
    --dump printed the bare scope 'core', which no flag reads back (64)."""
    cf = write(tmp_path / "u.cf", """\
[core]
[syslog]
[route]
[smtpd "mx"]
""")
    out = round_trip(cf, tmp_path)
    assert out == 'route.""\nsmtpd."mx"\n'


def test_dump_defaults(seed):
    r = pm("--config=" + seed, "--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for want in ('core.logger = syslog',
                 'core.hostname = ' + socket.gethostname(),
                 'core.queue-lifetime = 432000s',
                 'core.max-message-size = 10240000',
                 'core.bounce-to = sender',
                 'core.minimal-backoff = 300s',
                 'core.maximal-backoff = 4000s',
                 '# core.dns-server: not set: the servers of /etc/resolv.conf',
                 '# core.recipient-delimiter: not set: no address extensions',
                 'syslog.facility = "mail"',
                 'pipe."procmail".timeout = 300s',
                 'pipe."local".exec = "/usr/bin/procmail" "-d" "${RCPT_TO}"',
                 'pipe."local".max_rcpt_to = 1',
                 'relay."relay.example.org".protocol = smtp',
                 'relay."relay.example.org".tls = opportunistic',
                 'smtpd."mx.example.net".max-recipients = 100',
                 'smtpd."mx.example.net".max-message-size = 10240000',
                 'smtpd."mx.example.net".logger = syslog',
                 'smtpd."mx.example.net".bare-newline = normalize',
                 'smtpd."mx.example.net".lmtp = yes',
                 'smtpd."mx.example.net".accept-mail = yes',
                 'smtpd."localhost".name = localhost',
                 'smtpd."localhost".listen-port = ipv6-localhost:submission',
                 'smtpd."localhost".logger = system-wide-logfile',
                 'smtpd."localhost".timeout = 300s',
                 'smtpd."localhost".tls = no',
                 'route."".file = "seed.rt"'):
        assert want in lines, want
    # set keys keep their place and text; one line per key or value
    assert lines.count('pipe."procmail".max_rcpt_to = 16') == 1
    assert r.stdout.index('core.') < r.stdout.index('syslog.') < r.stdout.index('pipe.') \
        < r.stdout.index('relay.') < r.stdout.index('smtpd.') < r.stdout.index('route.')


def test_dump_defaults_listen_port_default(tmp_path):
    cf = write(tmp_path / "d.cf", '[smtpd "mx.example.org"]\n[core]\nmax-message-size = 1M\n')
    r = pm("--config=" + cf, "--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert 'smtpd."mx.example.org".listen-port = mx.example.org:25' in lines
    assert 'smtpd."mx.example.org".max-message-size = 1048576' in lines
    assert '# smtpd."mx.example.org".routing-table: not set: only the global [route]' in lines


def test_dump_defaults_says_what_an_unset_user_id_does(tmp_path):
    """The comment of an unset user-id said a session stays the user that
    started it; started as root, it refuses to serve. The manual quotes
    the comment."""
    spool = tmp_path / "spool"
    spool.mkdir()
    cf = write(tmp_path / "d.cf", "[core]\nhostname = mx.test\nlogger = stderr\n"
               "spool-directory = %s\n" % spool)
    r = pm("--config=" + cf, "--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    said = [l for l in r.stdout.splitlines() if l.startswith("# core.user-id:")]
    assert said == ["# core.user-id: not set: stay the user that started "
                    "postmaster; started as root, refuse to serve"]
    with open(os.path.join(TOP, "man", "postmaster.8")) as f:
        assert said[0] + "\n" in f.read()
    if os.geteuid() == 0:
        s = subprocess.run([POSTMASTER, "--config=" + cf], input=b"QUIT\r\n",
                           capture_output=True, timeout=30)
        assert s.stdout.startswith(b"421 4.3.0 "), s.stdout
        assert b"started as root without core.user-id" in s.stderr


@pytest.mark.skipif(os.path.exists("/etc/postmaster.cf"),
                    reason="this machine has an /etc/postmaster.cf")
def test_builtin_default():
    r = pm("--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# no configuration file: the built-in default\n")
    lines = r.stdout.splitlines()
    assert 'pipe."local".exec = "/usr/bin/procmail" "-d" "${RCPT_TO}"' in lines
    assert "core.local-mailer = local" in lines
    assert "core.user-id = nobody" in lines
    assert not any(l.startswith("smtpd.") for l in lines)
    r = pm("--check")
    assert r.returncode == 0
    assert r.stdout == "built-in default: ok: 0 listeners, 1 route table, 0 routes\n"
    # postmaster at the host name goes to root; a remote domain is refused
    host = socket.gethostname()
    r = pm("--route=postmaster@" + host)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deliver: local user root <root>\n" in r.stdout
    assert r.stdout.endswith("250 2.1.5 <postmaster@%s> OK\n" % host)
    r = pm("--route=someone@example.com")
    assert r.returncode == 67
    assert r.stdout.endswith("550 5.7.1 <someone@example.com>: relaying denied\n")


# ----------------------------------------------------------------- --route

ROUTES = """\
[core]
hostname = mail.example.net
[smtpd "mx.example.net"]
listen-port = 25
routing-table = t
[route "t"]
joe@example.org /m/joe/
bob@example.org joe@example.org
relay@example.org [192.0.2.7]
gone@example.org reject
"""


def test_route_steps_and_exit_statuses(tmp_path):
    cf = write(tmp_path / "r.cf", ROUTES)
    r = pm("--config=" + cf, "--route=bob@example.org")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        'route for [smtpd "mx.example.net"]:\n'
        "  <bob@example.org> matches 'bob@example.org' in [route \"t\"] at %s:8: joe@example.org\n"
        "  rewrite to <joe@example.org>\n"
        "    <joe@example.org> matches 'joe@example.org' in [route \"t\"] at %s:7: /m/joe/\n"
        "    => maildir /m/joe/ for <joe@example.org>\n"
        "deliver: maildir /m/joe/ <joe@example.org>\n"
        "delivery: direct, without the spool\n"
        "250 2.1.5 <bob@example.org> OK\n" % (cf, cf))
    r = pm("--config=" + cf, "--route=<JOE@Example.ORG>")
    assert r.returncode == 0
    assert "deliver: maildir /m/joe/ <JOE@Example.ORG>\n" in r.stdout
    r = pm("--config=" + cf, "--route=x@example.org")
    assert r.returncode == 67
    assert r.stdout.endswith("550 5.1.1 <x@example.org>: user unknown\n")
    r = pm("--config=" + cf, "--route=gone@example.org")
    assert r.returncode == 67
    assert r.stdout == (
        'route for [smtpd "mx.example.net"]:\n'
        "  <gone@example.org> matches 'gone@example.org' in [route \"t\"] at %s:10: reject\n"
        "  => 550 5.1.1 <gone@example.org> is rejected\n"
        "550 5.1.1 <gone@example.org>: recipient rejected\n" % cf)
    r = pm("--config=" + cf, "--route=x@elsewhere.example")
    assert r.returncode == 67
    assert r.stdout.endswith("550 5.7.1 <x@elsewhere.example>: relaying denied\n")
    # the session's syntax: a local part that could be a mailer's option
    r = pm("--config=" + cf, "--route=-oQ@example.org")
    assert r.returncode != 0
    assert r.stdout.endswith("501 5.1.3 <-oQ@example.org>: a local part that "
                             "begins with '-'\n"), r.stdout
    r = pm("--config=" + cf, "--route=relay@example.org")
    assert r.returncode == 0
    # one onward destination: the live proxy carries it (SPEC 7 path 2)
    assert r.stdout.endswith("deliver: host [192.0.2.7] <relay@example.org>\n"
                             "delivery: proxy to host [192.0.2.7], live while the "
                             "client is connected, when the transaction's first "
                             "recipient goes there and the others too (else "
                             "through the spool)\n"
                             "250 2.1.5 <relay@example.org> OK\n")
    # and the spool when the listener says proxy = no
    r = pm("--config=" + cf, '--smtpd."mx.example.net".proxy=no',
           "--route=relay@example.org")
    assert r.returncode == 0
    assert r.stdout.endswith("deliver: host [192.0.2.7] <relay@example.org>\n"
                             "delivery: through the spool\n"
                             "250 2.1.5 <relay@example.org> OK\n")
    r = pm("--config=" + cf, "--route=<>")
    assert r.returncode == 67
    assert r.stdout.endswith("501 5.1.3 <>: the null address is not a recipient\n")


def test_postmaster_with_a_tag_goes_to_root(tmp_path):
    """With a recipient-delimiter, user+tag falls back to user; so must
    postmaster+tag, which was refused 550 5.1.1 (no system user
    'postmaster+tag')."""
    cf = write(tmp_path / "p.cf", "[core]\nhostname = h.example\nrecipient-delimiter = +\n"
               "[route]\n@x.example discard\ny@z.example discard\n")
    for a in ("postmaster+tag@h.example", "Postmaster+a+b@z.example"):
        r = pm("--config=" + cf, "--route=" + a)
        assert r.returncode == 0, r.stdout
        assert "deliver: local user root <root>\n" in r.stdout, r.stdout
        assert r.stdout.endswith("250 2.1.5 <%s> OK\n" % a), r.stdout


def test_commas_touch_quoted_targets(tmp_path):
    """Blanks around the commas between targets are optional, as
    postmaster.cf(5) says, beside a quoted target too: '"|cmd",/m/' was
    refused with 'expected a blank between two words, found ','."""
    cf = write(tmp_path / "q.cf", 'x@y.example "|/bin/echo a, b",/tmp/m/,"/tmp/n/"\n'
               'z@y.example /tmp/a/ ,"/tmp/b/", "/tmp/c/" ,discard\n')
    r = check(cf)
    assert r.returncode == 0, r.stderr
    r = pm("--config=" + cf, "--route=x@y.example")
    assert [l for l in r.stdout.splitlines() if l.startswith("deliver:")] == [
        "deliver: command /bin/echo a, b <x@y.example>",
        "deliver: maildir /tmp/m/ <x@y.example>",
        "deliver: maildir /tmp/n/ <x@y.example>"], r.stdout
    r = pm("--config=" + cf, "--route=z@y.example")
    assert [l for l in r.stdout.splitlines() if l.startswith("deliver:")] == [
        "deliver: maildir /tmp/a/ <z@y.example>", "deliver: maildir /tmp/b/ <z@y.example>",
        "deliver: maildir /tmp/c/ <z@y.example>", "deliver: discard discard <z@y.example>"], r.stdout
    # the same as a flag
    r = pm("--config=" + write(tmp_path / "e.cf", ""),
           '--route."".w@y.example="/tmp/a/",/tmp/b/', "--route=w@y.example")
    assert r.returncode == 0, r.stdout + r.stderr
    # two words still need a blank between them, and a comma needs a target
    for line, col, found in (('x@y.example "/tmp/a/""/tmp/b/"', 22, "'\"'"),
                             ('x@y.example "/tmp/a/"discard', 22, "'d'"),
                             ('x@y.example discard"/tmp/a/"', 20, "'\"'")):
        write(cf, line + "\n")
        r = check(cf)
        assert r.returncode == 78
        assert r.stderr == "%s:1:%d: expected a blank between two words, found %s\n" % (
            cf, col, found), r.stderr


def test_route_flag_changes_the_answer(tmp_path):
    cf = write(tmp_path / "r.cf", ROUTES)
    r = pm("--config=" + cf, '--route."t".x@example.org=discard', "--route=x@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  <x@example.org> matches 'x@example.org' in [route \"t\"] at command line:2: discard\n" in r.stdout
    assert r.stdout.endswith("250 2.1.5 <x@example.org> OK\n")


def test_route_needs_smtpd_with_several(seed):
    r = pm("--config=" + seed, "--route=joe@example.org")
    assert r.returncode == 64
    assert r.stdout == ""
    assert r.stderr == ("postmaster: several [smtpd] sections; choose one with "
                        "--smtpd=NAME: mx.example.net localhost\n")
    r = pm("--config=" + seed, "--smtpd=mx.example.net", "--route=x@example.com")
    assert r.returncode == 0
    assert r.stdout.endswith("deliver: host mx.example.net <x@example.org>\n"
                             "delivery: proxy to host mx.example.net, live while the "
                             "client is connected, when the transaction's first "
                             "recipient goes there and the others too (else "
                             "through the spool)\n250 2.1.5 <x@example.com> OK\n")
    assert r.stdout.startswith(
        'route for [smtpd "mx.example.net"]:\n'
        "  <x@example.com> matches '@example.com' in [route \"extern\"] at %s:44: @example.org\n"
        "  rewrite to <x@example.org>\n" % seed)


# ------------------------------------------------------- the open-relay rule
# Sessions refuse relaying to clients outside relay-clients (test_relay_trust);
# --check refuses a listener whose relay-clients lets every client relay.

HEAD = """\
[relay "smarthost"]
address = 192.0.2.9
[smtpd "mx.example"]
listen-port = 25 # relay-clients
[route]
"""
EVERYONE = HEAD.replace("# relay-clients", "\nrelay-clients = 192.0.2.0/24 0.0.0.0/0")

OPEN = [
    ("@ mx", 7, "@"),
    ("@ [192.0.2.1]", 7, "@"),
    ("@ smarthost", 7, "@"),
    ("user@ mx", 7, "user@"),
    ("joe@example.org /tmp/joe/\n@example.org discard\npostmaster@ mx", 9, "postmaster@"),
    ("x@hub.example smarthost\n@ x@hub.example", 8, "@"),
    ("@hub.example [192.0.2.7]\n@ x@hub.example", 8, "@"),
    ("x@hub.example mx\nuser@ x@hub.example", 8, "user@"),
]


def open_relay_error(cf, line, pattern, network="0.0.0.0/0"):
    return re.compile(
        re.escape("%s:%d:1: open relay: '%s' sends mail for any domain (<" % (cf, line, pattern)) +
        r"[^<>@]*@[^<>@]*" +
        re.escape('>) to a relay, and [smtpd "mx.example"] lets every client relay without '
                  "AUTH (relay-clients %s)\n" % network))


@pytest.mark.parametrize("routes,line,pattern", OPEN)
def test_open_relay(tmp_path, routes, line, pattern):
    cf = write(tmp_path / "o.cf", EVERYONE + routes + "\n")
    r = check(cf)
    assert r.returncode == 78, r.stderr
    assert r.stdout == ""
    assert open_relay_error(cf, line, pattern).fullmatch(r.stderr), r.stderr


@pytest.mark.parametrize("routes,line,pattern", OPEN)
@pytest.mark.parametrize("port", ["25", "0.0.0.0:25", "127.0.0.1:25", "[::1]:587"])
def test_default_relay_clients_is_no_open_relay(tmp_path, routes, line, pattern, port):
    cf = write(tmp_path / "l.cf", HEAD.replace("listen-port = 25", "listen-port = " + port) + routes + "\n")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert "open relay" not in r.stderr


def test_auth_required_is_no_open_relay(tmp_path):
    users = write(tmp_path / "users", "anna:$6$x$y\n")
    cf = write(tmp_path / "a.cf", EVERYONE.replace(
        "[route]", "auth = required\nauth-file = %s\ntls = starttls\n"
        "tls-certificate = /c\ntls-key = /k\n[route]" % users) + "@ mx\n")
    r = check(cf)
    assert "open relay" not in r.stderr, r.stderr


def test_open_relay_for_every_ipv6_client(tmp_path):
    cf = write(tmp_path / "a.cf", HEAD.replace("# relay-clients", "\nrelay-clients = ::/0") + "@ mx\n")
    r = check(cf)
    assert r.returncode == 78
    assert open_relay_error(cf, 7, "@", "::/0").fullmatch(r.stderr), r.stderr


@pytest.mark.parametrize("nets,network", [
    ("0.0.0.0/1 128.0.0.0/1", "0.0.0.0/1"),      # every IPv4 client, in halves
    ("192.0.2.0/24 64.0.0.0/7", "64.0.0.0/7"),
    ("::/1 8000::/1", "::/1"),
    ("fd00::/8 2000::/3", "2000::/3"),
    ("fe80::/9", "fe80::/9"),                    # wider than link-local
    ("::ffff:0.0.0.0/96", "::ffff:0.0.0.0/96"),  # every IPv4 client, mapped
    ("::ffff:0.0.0.0/97", "::ffff:0.0.0.0/97"),  # as 0.0.0.0/1
])
def test_open_relay_for_a_wide_network(tmp_path, nets, network):
    cf = write(tmp_path / "w.cf", HEAD.replace("# relay-clients", "\nrelay-clients = " + nets) + "@ mx\n")
    r = check(cf)
    assert r.returncode == 78, r.stderr
    assert open_relay_error(cf, 7, "@", network).fullmatch(r.stderr), r.stderr


@pytest.mark.parametrize("nets", ["10.0.0.0/8", "192.0.2.0/24 198.51.100.7", "2001:db8::/32",
                                  "2000::/16", "fc00::/7", "fd12:3456::/32", "fe80::/10",
                                  "::ffff:10.0.0.0/104", "::ffff:192.0.2.7",
                                  # IPv6 networks hold no IPv4-mapped client:
                                  # those are matched as IPv4
                                  "::/80", "2001:db8::/32 ::/64"])
def test_private_or_narrow_networks_are_no_open_relay(tmp_path, nets):
    cf = write(tmp_path / "n.cf", HEAD.replace("# relay-clients", "\nrelay-clients = " + nets) + "@ mx\n")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert "open relay" not in r.stderr


def test_built_in_listener_is_no_open_relay(tmp_path):
    # it trusts loopback only (relay-clients' default)
    cf = write(tmp_path / "o.cf", "joe@example.org /m/joe/\n@ mx\n")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert "open relay" not in r.stderr


def test_open_relay_in_a_route_file(tmp_path):
    rt = write(tmp_path / "r.rt", "joe@example.org /tmp/joe/\n@ mx\n")
    cf = write(tmp_path / "o.cf", EVERYONE + 'file "r.rt"\n')
    r = check(cf)
    assert r.returncode == 78
    assert open_relay_error(rt, 2, "@").fullmatch(r.stderr), r.stderr


def test_no_open_relay_for_named_domains_or_unused_tables(tmp_path):
    cf = write(tmp_path / "n.cf", EVERYONE + """\
@example.org mx
joe@example.net smarthost
@ reject
[route "unused"]
@ mx
""")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == cf + ": ok: 1 listener, 2 route tables, 4 routes\n"


def test_open_relay_through_the_listener_table(tmp_path):
    cf = write(tmp_path / "t.cf", EVERYONE.replace("listen-port = 25", "listen-port = 25\nrouting-table = out") + """\
joe@example.org /tmp/joe/
[route "out"]
@ smarthost
""")
    r = check(cf)
    assert r.returncode == 78
    assert open_relay_error(cf, 10, "@").fullmatch(r.stderr), r.stderr


# -------------------------------------------------------- shadowed routes

def test_shadowed_routes(tmp_path):
    cf = write(tmp_path / "w.cf", """\
[core]
hostname = mail.example.net
[route]
@example.org /tmp/all/
joe@example.org /tmp/joe/
ann@ /tmp/ann/
ann@example.com /tmp/ann2/
bob@example.net /tmp/bob/
@example.net /tmp/net/
@EXAMPLE.org /tmp/again/
[route "t"]
@ discard
joe@example.org /tmp/joe/
x@ reject
@example.com discard
[route "u"]
joe@ discard
@ reject
""")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stdout == cf + ": ok: 0 listeners, 3 route tables, 13 routes\n"

    def never(line, pat, by, byline):
        return ("%s:%d:1: warning: route '%s' is never used: '%s' at %s:%d comes first "
                "and matches every address it matches\n" % (cf, line, pat, by, cf, byline))
    assert r.stderr == (
        never(5, "joe@example.org", "@example.org", 4) +
        never(7, "ann@example.com", "ann@", 6) +
        never(10, "@EXAMPLE.org", "@example.org", 4) +
        never(13, "joe@example.org", "@", 12) +
        never(14, "x@", "@", 12) +
        never(15, "@example.com", "@", 12))
    # a more general line after a more specific one is no warning:
    # lines 8/9 (bob@example.net, @example.net) and 17/18 (joe@, @)


def test_shadow_warning_does_not_fail_check(tmp_path):
    cf = write(tmp_path / "s.cf", "@ discard\njoe@example.org reject\n")
    r = check(cf)
    assert r.returncode == 0
    assert r.stderr == ("%s:2:1: warning: route 'joe@example.org' is never used: '@' at "
                        "%s:1 comes first and matches every address it matches\n" % (cf, cf))


# ----------------------------------------------------- compiled route files

def test_compiled_seed_route_file(seed, tmp_path):
    # run as an administrator would, from the configuration's directory
    cwd = str(tmp_path)
    args = ("--config=seed.cf", "--smtpd=localhost", "--route=acme@list.example.org")
    plain = pm(*args, cwd=cwd)
    assert plain.returncode == 67
    # route files are named by their real path, text and index alike
    rt = os.path.realpath(os.path.join(cwd, "seed.rt"))
    assert "in [route] at %s:6: joe, jane, acme-archive@, @mirror.example.net\n" % rt in plain.stdout
    r = check("seed.cf", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(os.path.join(cwd, "seed.rt.pmdb"))
    indexed = pm(*args, cwd=cwd)
    assert indexed.returncode == plain.returncode
    assert indexed.stderr == plain.stderr == ""
    # the index answers exactly as the text did, file name included
    assert indexed.stdout == plain.stdout


def big(tmp_path):
    rt = write(tmp_path / "big.rt", "".join("u%d@d.example /m/%d/\n" % (i, i) for i in range(3000)))
    cf = write(tmp_path / "i.cf", "[core]\nhostname = h.example\n[route]\nfile \"big.rt\"\n")
    return rt, cf


# Stands in for an administrator who edits a route file while --check
# reads it: once the file named by PM_GROW has been read from, LINE is
# appended to it.
GROW = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
ssize_t read(int fd, void *p, size_t n)
{
	static int done;
	ssize_t (*next)(int, void *, size_t) =
		(ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	ssize_t r = next(fd, p, n);
	const char *file = getenv("PM_GROW");
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t k = readlink(link, path, sizeof path - 1);
	if (r > 0 && !done && file && k > 0) {
		path[k] = 0;
		if (!strcmp(path, file)) {
			done = 1;
			int w = open(file, O_WRONLY | O_APPEND);
			const char *line = getenv("PM_GROW_LINE");
			if (w >= 0 && write(w, line, strlen(line)) < 0)
				perror("append");
			close(w);
		}
	}
	return r;
}
"""


def test_a_route_file_edited_while_check_reads_it(tmp_path):
    """The index records the route file as it was when read: a line added
    while --check was reading makes the index stale, so sessions read the
    text and find the line. The index once recorded the file as it was
    when written, and the line was never found."""
    if "build-san" in POSTMASTER:
        pytest.skip("LD_PRELOAD before the sanitizer runtime")
    rt, cf = big(tmp_path)
    shim = str(tmp_path / "grow.so")
    write(tmp_path / "grow.c", GROW)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", shim, str(tmp_path / "grow.c"),
                    "-ldl"], check=True)
    env = dict(os.environ, LD_PRELOAD=shim, PM_GROW=os.path.realpath(rt),
               PM_GROW_LINE="new@d.example /m/new/\n")
    as_root = ["--core-user-id=nobody"] if os.geteuid() == 0 else []
    r = subprocess.run([POSTMASTER, "--config=" + cf, *as_root, "--check"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert open(rt).read().endswith("new@d.example /m/new/\n")
    found = pm("--config=" + cf, "--route=new@d.example")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "deliver: maildir /m/new/ <new@d.example>\n" in found.stdout


def test_compiled_route_file(tmp_path):
    rt, cf = big(tmp_path)
    plain = pm("--config=" + cf, "--route=u2999@d.example")
    assert plain.returncode == 0
    assert "deliver: maildir /m/2999/ <u2999@d.example>\n" in plain.stdout
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stdout == cf + ": ok: 0 listeners, 1 route table, 3000 routes\n"
    assert os.path.exists(rt + ".pmdb")
    indexed = pm("--config=" + cf, "--route=u2999@d.example")
    assert indexed.returncode == 0
    assert indexed.stderr == ""
    assert indexed.stdout == plain.stdout
    # first match across pattern kinds holds in the index too
    for addr, target in (("u0@d.example", "/m/0/"), ("U1500@D.EXAMPLE", "/m/1500/")):
        r = pm("--config=" + cf, "--route=" + addr)
        assert r.returncode == 0
        assert "deliver: maildir %s <%s>\n" % (target, addr) in r.stdout
    r = pm("--config=" + cf, "--route=nobody@d.example")
    assert r.returncode == 67


def test_fresh_index_is_what_route_reads(tmp_path):
    rt, cf = big(tmp_path)
    assert check(cf).returncode == 0
    # the same size, inode and mtime: the index counts as fresh
    st = os.stat(rt)
    text = open(rt).read().replace("/m/2999/", "/m/X999/")
    with open(rt, "r+") as f:
        f.write(text)
    os.utime(rt, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = pm("--config=" + cf, "--route=u2999@d.example")
    assert r.returncode == 0 and r.stderr == ""
    assert "deliver: maildir /m/2999/ <u2999@d.example>\n" in r.stdout


def test_stale_index(tmp_path):
    rt, cf = big(tmp_path)
    assert check(cf).returncode == 0
    write(rt, "u2999@d.example /m/new/\n" + open(rt).read())
    stale = pm("--config=" + cf, "--route=u2999@d.example")
    assert stale.returncode == 0
    assert stale.stderr == (cf + ":4:6: warning: the compiled index of \"" + rt +
                            "\" is older than the file and is ignored; run postmaster "
                            "--check to rebuild it\n")
    assert "deliver: maildir /m/new/ <u2999@d.example>\n" in stale.stdout
    assert " at %s:1: /m/new/\n" % rt in stale.stdout
    # --check rebuilds it
    assert check(cf).returncode == 0
    fresh = pm("--config=" + cf, "--route=u2999@d.example")
    assert fresh.stderr == ""
    assert "deliver: maildir /m/new/ <u2999@d.example>\n" in fresh.stdout


def test_stale_index_of_a_nested_file(tmp_path):
    top = write(tmp_path / "top.rt", "a@d.example /m/a/\nfile \"nested.rt\"\n")
    nested = write(tmp_path / "nested.rt", "b@d.example /m/b/\n")
    cf = write(tmp_path / "n.cf", "[core]\nhostname = h.example\n[route]\nfile \"top.rt\"\n")
    assert check(cf).returncode == 0
    assert os.path.exists(top + ".pmdb")
    r = pm("--config=" + cf, "--route=b@d.example")
    assert r.stderr == "" and "deliver: maildir /m/b/ <b@d.example>\n" in r.stdout
    write(nested, "b@d.example /m/b2/\n")
    r = pm("--config=" + cf, "--route=b@d.example")
    assert r.returncode == 0
    assert "is older than the file and is ignored" in r.stderr
    assert "deliver: maildir /m/b2/ <b@d.example>\n" in r.stdout


def test_stale_index_when_a_nested_symlink_is_repointed(tmp_path):
    """Deploying a new table by pointing a symlink at it: the index named
    the file it pointed to before, stayed fresh and kept routing by the
    old table, with no warning."""
    write(tmp_path / "top.rt", "file \"sub.rt\"\n")
    write(tmp_path / "old.rt", "b@d.example reject\n")
    write(tmp_path / "new.rt", "b@d.example /m/new/\n")
    os.symlink("old.rt", str(tmp_path / "sub.rt"))
    cf = write(tmp_path / "s.cf", "[core]\nhostname = h.example\n[route]\nfile \"top.rt\"\n")
    assert check(cf).returncode == 0
    r = pm("--config=" + cf, "--route=b@d.example")
    assert r.stderr == "" and r.stdout.endswith("recipient rejected\n"), r.stdout
    os.unlink(str(tmp_path / "sub.rt"))
    os.symlink("new.rt", str(tmp_path / "sub.rt"))
    r = pm("--config=" + cf, "--route=b@d.example")
    assert "is older than the file and is ignored" in r.stderr, r.stderr
    assert "deliver: maildir /m/new/ <b@d.example>\n" in r.stdout, r.stdout


# ----------------------------------------------------------------- the rest

def test_version_help_and_absent_modes():
    r = pm("--version")
    assert r.returncode == 0
    assert re.fullmatch(r"postmaster \d+\.\d+\S*\n", r.stdout)
    r = pm("--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: postmaster ")
    for mode in ("--check", "--dump", "--route=ADDRESS", "--config=FILE", "--smtpd=NAME"):
        assert mode in r.stdout
    for mode in ("--flush [--now]", "--flush=ID", "--queue", "--delete=ID"):
        assert mode in r.stdout
    r = pm("--inject")
    assert r.returncode == 64
    assert r.stderr.startswith("postmaster: no recipients (give them, or -t)\n"
                               "usage: sendmail ")
    for two in (("--check", "--dump"), ("--check", "--inject", "a@b"),
                ("--queue", "--inject", "-bp"),
                ("--route=a@b", "--inject", "-bv", "c@d")):
        r = pm(*two)
        assert r.returncode == 64, two
        assert r.stderr == ("postmaster: choose one of --check, --dump, "
                            "--route, --flush, --queue, --delete, "
                            "--release and --inject\n")
    r = pm("--now")
    assert r.returncode == 64
    assert r.stderr == "postmaster: --now goes with --flush\n"
    r = pm("--delete=../etc")
    assert r.returncode == 64
    assert r.stderr == "postmaster: not a queue id: ../etc\n"
    r = pm("--defaults")
    assert r.returncode == 64
    assert r.stderr == "postmaster: --defaults goes with --dump\n"
    r = pm("stray")
    assert r.returncode == 64
    assert r.stderr.startswith("postmaster: unexpected argument 'stray'\n")


USAGE_ERRORS = [
    (["--bogus"], "unknown option '--bogus'"),
    (["--bogus=1"], "unknown option '--bogus=1'"),
    (["--nosuch-x-y=1"], "unknown option '--nosuch-x-y=1'"),
    (["--core"], "unknown option '--core'"),
    (["--=x"], "unknown option '--=x'"),
    (["-x"], "unexpected argument '-x'"),
    (["--"], "unexpected argument '--'"),
    (["stray"], "unexpected argument 'stray'"),
    (["--check=1"], "--check takes no value"),
    (["--version=2"], "--version takes no value"),
    (["--config"], "--config needs a value: --config=FILE"),
    (["--config="], "--config needs a value: --config=FILE"),
    (["--smtpd"], "--smtpd needs a value: --smtpd=NAME"),
    (["--route"], "--route needs a value: --route=ADDRESS"),
    (["--delete"], "--delete needs a value: --delete=ID"),
    (["--release="], "--release needs a value: --release=ID"),
    (["--flush="], "--flush= needs a value: --flush=ID, or --flush alone"),
    (["--check", "--bogus"], "unknown option '--bogus'"),
]


@pytest.mark.parametrize("args,why", USAGE_ERRORS)
def test_usage_error_is_one_line_and_64(tmp_path, args, why):
    """A malformed option gets its reason and one usage line, exit 64, and
    no SMTP reply: it never reaches the configuration or a session."""
    cf = write(tmp_path / "u.cf", "")
    r = subprocess.run([POSTMASTER, "--config=" + cf, *args], input="QUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 64, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == "postmaster: " + why
    assert len(lines) == 2 and lines[1].startswith("usage: postmaster [--config=FILE]")
    # every mode is named, --inject and --version too
    assert "--inject" in lines[1] and "--version" in lines[1], lines[1]


@pytest.mark.parametrize("flag,err", [
    ("--core-bogus=1", "command line:2:8: expected a key of [core], found 'bogus'\n"),
    ("--smtpd-foo=1", "command line:2:12: expected smtpd-NAME-KEY, found no key\n"),
])
def test_config_flag_error_is_78_without_a_session(tmp_path, flag, err):
    """A flag shaped as SECTION-KEY stays a configuration flag: an unknown
    key is a configuration error (78) with its position, and a session is
    not started to answer 421."""
    cf = write(tmp_path / "u.cf", "")
    r = subprocess.run([POSTMASTER, "--config=" + cf, flag], input="QUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr == err


# ------------------------------------------- --check: what this host lacks

def test_check_auth_without_tls_on_a_network_listener(tmp_path):
    """AUTH is never offered in clear text over a network: auth = required
    with tls = no refused every network client's MAIL (538) and --check
    said ok. Now an error; auth = optional is a warning; on loopback
    both are fine."""
    base = ('[core]\nhostname = h.example\n[smtpd "mx"]\nlisten-port = %s\n'
            'auth = %s\nauth-file = /etc/hostname\n')
    cf = write(tmp_path / "a.cf", base % ("25", "required"))
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr.startswith("%s:5:8: expected tls = starttls or implicit "
                               "with auth = required on a network listener"
                               % cf), r.stderr
    cf = write(tmp_path / "a.cf", base % ("25", "optional"))
    r = check(cf)
    assert r.returncode == 0
    assert "5:8: warning: auth = optional without tls" in r.stderr, r.stderr
    cf = write(tmp_path / "a.cf", base % ("127.0.0.1:25", "required"))
    r = check(cf)
    assert r.returncode == 0 and r.stderr == "", r.stderr

@pytest.mark.parametrize("ids,col,what", [
    ("user-id = root\n", 11, "a user other than root: sessions refuse to "
                             "read client input as root"),
    ("user-id = nobody\ngroup-id = root\n", 12,
     "a group other than root's (0): sessions refuse to read client input "
     "with it"),
    ("user-id = nobody\ngroup-id = 0\n", 12,
     "a group other than root's (0): sessions refuse to read client input "
     "with it")])
def test_check_refuses_root_ids(tmp_path, ids, col, what):
    """Sessions would run with root's group (group-id = root once passed,
    and the session read client input with group id 0) or refuse to run
    at all (user-id = root); --check says so, as Postfix refuses a
    privileged mail_owner."""
    cf = write(tmp_path / "r.cf", "[core]\n" + ids + "[route]\n@example.org discard\n")
    line = ids.count("\n") + 1
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr == "%s:%d:%d: expected %s\n" % (cf, line, col, what), r.stderr
    if os.geteuid() == 0:
        s = subprocess.run([POSTMASTER, "--config=" + cf], input="QUIT\r\n",
                           capture_output=True, text=True, timeout=30)
        assert s.stdout.startswith("421 4.3.0 "), s.stdout

def test_relay_without_address_is_an_error(tmp_path):
    """A [relay] with no address can deliver nothing: its mail was
    accepted 250 and sat in the spool until it bounced days later."""
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    cf = write(tmp_path / "r.cf", "[core]\nhostname = h.example\n%s\n"
               "logger = stderr\nspool-directory = %s\n"
               '[relay "hub"]\nprotocol = smtp\n[relay "unused"]\ntls = no\n'
               "[route]\n@example.org hub\n"
               % ("user-id = nobody" if os.geteuid() == 0 else "", spool))
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr == (
        '%s:6:1: expected \'address\' in [relay "hub"], found none\n'
        '%s:8:1: expected \'address\' in [relay "unused"], found none\n' % (cf, cf))
    s = subprocess.run([POSTMASTER, "--config=" + cf], capture_output=True, text=True,
                       input="EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n"
                       "QUIT\r\n", timeout=30)
    assert s.stdout.startswith("421 4.3.0 "), s.stdout
    assert "250" not in s.stdout
    r = pm("--config=" + cf, "--relay-hub-address=192.0.2.1",
           "--relay-unused-address=192.0.2.2", "--check")
    assert r.returncode == 0, r.stderr


def test_unknown_exec_placeholder_is_an_error(tmp_path):
    """A pipe expands ${MAIL_FROM} and ${RCPT_TO} only; '-d ${RCPT}' passed
    --check and asked procmail to deliver to the user '${RCPT}'."""
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    cf = write(tmp_path / "p.cf", "[core]\nlogger = stderr\nspool-directory = %s\n%s"
               '[pipe "p"]\n'
               'exec = /usr/bin/procmail -f ${MAIL_FROM} -d ${RCPT} "x ${Rcpt_To}" ${RCPT_TO\n'
               "[route]\n@example.org p\n"
               % (spool, "user-id = nobody\n" if os.geteuid() == 0 else ""))
    line = 6 if os.geteuid() == 0 else 5
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr == (
        "%s:%d:45: expected ${MAIL_FROM} or ${RCPT_TO}, found '${RCPT}'\n"
        "%s:%d:53: expected ${MAIL_FROM} or ${RCPT_TO}, found '${Rcpt_To}'\n"
        "%s:%d:68: expected ${MAIL_FROM} or ${RCPT_TO}, found '${RCPT_TO'\n"
        % (cf, line, cf, line, cf, line)), r.stderr
    s = subprocess.run([POSTMASTER, "--config=" + cf], capture_output=True, text=True,
                       input="EHLO x\r\nMAIL FROM:<a@b.example>\r\n"
                       "RCPT TO:<u@example.org>\r\nQUIT\r\n", timeout=30)
    assert s.stdout.startswith("421 4.3.0 "), s.stdout
    # the two it knows, anywhere in a word, pass
    write(cf, '[pipe "p"]\nexec = /bin/sh -c "exec cat" sh -f${MAIL_FROM} "<${RCPT_TO}>"\n'
          "[route]\n@example.org p\n")
    r = check(cf)
    assert r.returncode == 0, r.stderr


def test_shell_syntax_in_exec_is_not_a_placeholder():
    """Only ${NAME} with a plain name is a placeholder: the shell's
    ${RCPT_TO%%@*}, ${MAIL_FROM:-MAILER-DAEMON}, ${#RCPT_TO} and ${1} in
    an sh -c script reach the shell as before and the mail is delivered;
    ${HOME} (write $HOME) is still refused."""
    d = scratch_dir("pm-shell-", ("spool",))
    try:
        user = "user-id = nobody\n" if os.geteuid() == 0 else ""
        head = ("[core]\nhostname = mail.example.net\nlogger = stderr\n"
                "spool-directory = %s/spool\n%s" % (d, user))
        cf = os.path.join(d, "p.cf")
        write(cf, head + '[pipe "p"]\n'
              'exec = /bin/sh -c "echo ${RCPT_TO%%%%@*} ${MAIL_FROM:-MAILER-DAEMON}'
              ' ${#RCPT_TO} ${1} >> %s/out; cat >/dev/null" sh ${RCPT_TO}\n'
              "[route]\n@example.org p\n" % d)
        r = check(cf)
        assert r.returncode == 0, r.stderr
        s = subprocess.run([POSTMASTER, "--config=" + cf], capture_output=True,
                           text=True, timeout=30,
                           input="HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.org>\r\n"
                           "DATA\r\nSubject: t\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert "\n250 2.0.0 " in s.stdout, s.stdout + s.stderr
        with open(os.path.join(d, "out")) as f:
            assert f.read() == "joe MAILER-DAEMON 15 joe@example.org\n"
        write(cf, head + '[pipe "p"]\nexec = /bin/sh -c "cd ${HOME} && cat" sh ${RCPT_TO}\n'
              "[route]\n@example.org p\n")
        r = check(cf)
        assert r.returncode == 78
        assert "expected ${MAIL_FROM} or ${RCPT_TO}, found '${HOME}'" in r.stderr, r.stderr
    finally:
        remove_tree(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only")
def test_check_as_root_needs_user_id(tmp_path):
    """Every session started as root refuses a configuration without
    core.user-id (421 4.3.0); --check as root called it ok."""
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    cf = write(tmp_path / "u.cf", "[core]\nlogger = stderr\nspool-directory = %s\n"
               "[route]\n@example.org discard\n" % spool)
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 78
    assert r.stderr == (cf + ":1:1: expected core.user-id: sessions started as root "
                        "refuse to read client input as root without it\n")
    s = subprocess.run([POSTMASTER, "--config=" + cf], input="QUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert s.stdout.startswith("421 4.3.0 "), s.stdout
    assert "without core.user-id" in s.stderr, s.stderr
    # a file without [core]: the file is named, there is no line to point at
    bare = write(tmp_path / "b.cf", "@example.org discard\n")
    r = pm("--config=" + bare, "--check")
    assert r.returncode == 78
    assert r.stderr.startswith(bare + ": expected core.user-id: "), r.stderr
    for ok in (["--core-user-id=nobody"], ["--core-user-id=65534"]):
        r = pm("--config=" + cf, *ok, "--check")
        assert r.returncode == 0 and r.stderr == "", r.stderr
    # (the built-in default drops to nobody: test_builtin_default)


def test_check_warns_spool_not_writable_by_user_id(tmp_path):
    """A spool that user-id cannot write is a warning in --check, and
    indeed every session answers 421 on it."""
    spool = tmp_path / "spool"
    spool.mkdir()
    if os.geteuid() == 0:
        user, ids = "nobody", "%d:%d" % (pwd.getpwnam("nobody").pw_uid,
                                         pwd.getpwnam("nobody").pw_gid)
        os.chmod(spool, 0o700)  # root's
    else:
        user, ids = str(os.getuid()), "%d:%d" % (os.getuid(), os.getgid())
        os.chmod(spool, 0o500)
    st = os.stat(spool)
    cf = write(tmp_path / "s.cf", "[core]\nuser-id = %s\nspool-directory = %s\n"
               "[route]\n@example.org discard\n" % (user, spool))
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        '%s:3:19: warning: spool-directory "%s" (owner %d:%d, mode %04o) is not '
        "writable by user-id %s (%s): sessions will answer 421\n"
        % (cf, spool, st.st_uid, st.st_gid, st.st_mode & 0o7777, user, ids))
    s = subprocess.run([POSTMASTER, "--config=" + cf], input="QUIT\r\n",
                       capture_output=True, text=True, timeout=30)
    assert s.stdout.startswith("421 4.3.0 "), s.stdout
    # writable by that user: no warning
    os.chmod(spool, 0o1777)
    r = check(cf)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.fixture
def open_dir():
    """A directory that every user may search (pytest's own is root's
    alone), removed after the test."""
    import tempfile
    from pmtest import remove_tree
    d = tempfile.mkdtemp(prefix="pm-cli-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    remove_tree(d)


def pipe_program_cf(tmp_path, program):
    """A configuration whose [pipe "p"] runs program (line 5, column 8)
    as nobody when we are root."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    os.chmod(spool, 0o1777)
    user = "nobody" if os.geteuid() == 0 else str(os.getuid())
    return write(tmp_path / "p.cf", "[core]\nuser-id = %s\nspool-directory = %s\n"
                 '[pipe "p"]\nexec = %s "${RCPT_TO}"\n[route]\n@example.org p\n'
                 % (user, spool, program))


@pytest.mark.parametrize("case", ["directory", "not-executable-for-the-user",
                                  "in-a-private-directory"])
def test_check_refuses_a_pipe_program_the_sessions_cannot_run(open_dir, case):
    """--check tested a [pipe]'s program with the caller's access(): as
    root, "ok" for a directory or for a program that only root may run,
    and every delivery as user-id was deferred 451 forever. It now judges
    a regular file by the mode the sessions' user and group get, and says
    so as an error at the exec word."""
    tmp_path = open_dir
    who = "this user"
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        who = "user-id nobody (%d:%d)" % (pw.pw_uid, pw.pw_gid)
    prog = tmp_path / "mailer.sh"
    if case == "in-a-private-directory":
        if os.geteuid() != 0:
            pytest.skip("a directory this user cannot search is not its own")
        (tmp_path / "private").mkdir(mode=0o700)
        prog = tmp_path / "private" / "mailer.sh"
    prog.write_text("#!/bin/sh\ncat >/dev/null\n")
    os.chmod(prog, 0o700 if os.geteuid() == 0 else 0o600)
    if case == "directory":
        prog = tmp_path
    elif case == "in-a-private-directory":
        os.chmod(prog, 0o755)
    cf = pipe_program_cf(tmp_path, prog)
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 78, r.stderr
    why = {"directory": "is a directory",
           "in-a-private-directory": "its directory %s (owner 0:0, mode 0700) "
                                     "is not searchable" % prog.parent}.get(case)
    if why is None:
        st = os.stat(prog)
        why = "has owner %d:%d and mode %04o" % (st.st_uid, st.st_gid, st.st_mode & 0o7777)
    assert r.stderr == ('%s:5:8: expected a program that %s can run: "%s" %s, so every '
                        'delivery to [pipe "p"] would fail\n' % (cf, who, prog, why)), r.stderr
    if os.geteuid() == 0:
        # indeed: the session, as nobody, cannot run it
        s = subprocess.run([POSTMASTER, "--config=" + cf],
                           input=b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n"
                                 b"DATA\r\n\r\nhi\r\n.\r\nQUIT\r\n",
                           capture_output=True, timeout=30)
        assert b"\r\n451 4.3.0 " in s.stdout, s.stdout


def test_check_takes_a_pipe_program_the_sessions_can_run(open_dir):
    tmp_path = open_dir
    prog = tmp_path / "mailer.sh"
    prog.write_text("#!/bin/sh\ncat >/dev/null\n")
    os.chmod(prog, 0o755)
    r = pm("--config=" + pipe_program_cf(tmp_path, prog), "--check")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def set_acl(path, user_perm, mode):
    """setfacl -m u:nobody:PERM on path, whose other bits give nothing:
    the POSIX ACL written as its extended attribute (no setfacl here)."""
    import struct
    uid = pwd.getpwnam("nobody").pw_uid

    def entry(tag, perm, ident=0xFFFFFFFF):
        return struct.pack("<HHI", tag, perm, ident)
    acl = (struct.pack("<I", 2) + entry(1, mode >> 6 & 7) + entry(2, user_perm, uid) +
           entry(4, mode >> 3 & 7) + entry(0x10, user_perm | (mode >> 3 & 7)) +
           entry(0x20, 0))
    try:
        os.setxattr(path, "system.posix_acl_access", acl)
    except OSError as e:
        pytest.skip("no POSIX ACLs here: %s" % e)


def test_check_takes_a_pipe_program_an_acl_lets_the_sessions_run(open_dir):
    """--check computed the session user's permission from the mode bits
    alone: a program opened to that user by an ACL entry (setfacl -m
    u:nobody:rx), in a directory opened the same way, was an error (exit
    78) while every delivery worked. The kernel now judges, in a child
    that drops to user-id and group-id as the sessions do."""
    if os.geteuid() != 0:
        pytest.skip("the sessions run as user-id only when started as root")
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    set_acl(private, 1, 0o700)
    prog = private / "mailer.sh"
    prog.write_text("#!/bin/sh\ncat > %s/got\n" % open_dir)
    os.chmod(prog, 0o750)
    set_acl(prog, 5, 0o750)
    os.chmod(open_dir, 0o1777)
    cf = pipe_program_cf(open_dir, prog)
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    s = subprocess.run([POSTMASTER, "--config=" + cf],
                       input=b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n"
                             b"DATA\r\n\r\nacl-marker\r\n.\r\nQUIT\r\n",
                       capture_output=True, timeout=30)
    assert b"\r\n250 2.0.0 delivered\r\n" in s.stdout, s.stdout
    assert "acl-marker" in (open_dir / "got").read_text()
    # without the entry for nobody, the same program is an error again
    os.removexattr(prog, "system.posix_acl_access")
    os.chmod(prog, 0o750)
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 78 and "has owner 0:0 and mode 0750, so every " \
        "delivery to [pipe \"p\"] would fail" in r.stderr, r.stderr


def test_check_warns_route_target_naming_nothing(tmp_path):
    cf = write(tmp_path / "n.cf", """\
[pipe "deliver"]
exec = /bin/cat
[relay "hub"]
address = 192.0.2.1
[route]
a@example.org nosuch-name-xyz
b@example.org deliver, hub, alias, root, postmaster, mx.example.net
c@example.org root,nosuch-other
alias root
""")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        "%s:6:15: warning: target 'nosuch-name-xyz' names no [pipe], [relay], alias "
        "or system user on this host\n"
        "%s:8:20: warning: target 'nosuch-other' names no [pipe], [relay], alias "
        "or system user on this host\n" % (cf, cf))


def test_check_warns_of_a_section_no_route_can_name(tmp_path):
    """A [relay "mx"] or [pipe "discard"] is never reached: mx, discard,
    host:port and user@domain mean themselves as route targets. A pipe
    named by core.local-mailer is reached that way."""
    cf = write(tmp_path / "s.cf", """\
[core]
local-mailer = reject
[relay "mx"]
address = 192.0.2.1
[pipe "discard"]
exec = /bin/cat
[pipe "reject"]
exec = /bin/cat
[relay "hub:25"]
address = 192.0.2.1
[relay "hub"]
address = 192.0.2.1
[route]
@example.org hub
""")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        '%s:3:1: warning: [relay "mx"] can never be reached: as a route '
        'target, "mx" means the MX hosts of the recipient\'s domain\n'
        '%s:5:1: warning: [pipe "discard"] can never be reached: as a route '
        'target, "discard" means accept and drop\n'
        '%s:9:1: warning: [relay "hub:25"] can never be reached: as a route '
        'target, "hub:25" means a host to relay to\n' % (cf, cf, cf)), r.stderr


def test_check_of_a_large_alias_file_is_not_quadratic(tmp_path):
    """--check looks each name target up once, not by a scan of every
    line: 40 000 lines whose targets are aliases of the same file took
    minutes (each target scanned the lines before its alias)."""
    n = 20000
    rt = tmp_path / "al.rt"
    with open(rt, "w") as f:
        for i in range(n):
            f.write("user%d@example.org Name%d\n" % (i, i))
        f.write("last@example.org nosuch-name-xyz\n")
        for i in range(n):
            f.write("name%d root\n" % i)
    cf = write(tmp_path / "al.cf", '[route]\nfile "%s"\n' % rt)
    # the same number of lines with targets that name nothing to look up
    # (Maildirs): the time of this machine and build for a linear check
    flat = tmp_path / "flat.rt"
    with open(flat, "w") as f:
        for i in range(2 * n + 1):
            f.write("user%d@example.org /var/mail/u%d/\n" % (i, i))
    t0 = time.monotonic()
    assert check(write(tmp_path / "flat.cf",
                       '[route]\nfile "%s"\n' % flat)).returncode == 0
    linear = time.monotonic() - t0
    t0 = time.monotonic()
    r = check(cf)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        "%s:%d:18: warning: target 'nosuch-name-xyz' names no [pipe], "
        "[relay], alias or system user on this host\n" % (rt, n + 1)), r.stderr
    # a ratio, not a time: the scan of every line took 65 times the
    # linear check here, the hash one and a half times
    assert took < 8 * linear + 0.5, (took, linear)


def test_check_looks_at_the_program_of_a_command_target(tmp_path):
    """A |command target's program gets the [pipe] exec check: missing on
    this host or not in the mailers' PATH, a warning at the target; there
    but not runnable (the session would answer 554 at the end of data),
    an error."""
    cf = write(tmp_path / "c.cf", """\
[route]
a@y.test |/nonexistent/prog
b@y.test "|/usr/bin/nonexist -x", |/bin/cat
c@y.test |nosuchprog-typo arg
d@y.test |cat >/dev/null, |/bin/cat -u
""")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        '{0}:2:10: warning: "/nonexistent/prog" is not an executable on this host\n'
        '{0}:3:10: warning: "/usr/bin/nonexist" is not an executable on this host\n'
        '{0}:4:10: warning: "nosuchprog-typo" of \'|nosuchprog-typo arg\' is no '
        "program in the mailers' PATH (/usr/local/bin:/usr/bin:/bin) on this host: "
        "write its absolute path\n".format(cf)), r.stderr
    data = tmp_path / "data"
    data.write_text("not a program\n")
    data.chmod(0o644)
    cf = write(tmp_path / "d.cf", "[route]\na@y.test |%s --flag\n" % data)
    r = check(cf)
    assert r.returncode == 78, r.stderr
    assert re.search(r"^%s:2:10: expected a program that .* can run: \"%s\" "
                     r".*so every delivery to '\|%s --flag' would fail$"
                     % (re.escape(cf), re.escape(str(data)), re.escape(str(data))),
                     r.stderr, re.M), r.stderr


def test_check_warns_maildir_without_parent(tmp_path):
    missing = str(tmp_path / "no-such-dir" / "Maildir") + "/"
    there = str(tmp_path / "Maildir") + "/"
    os.chmod(tmp_path, 0o1777)  # a directory that user-id can write
    cf = write(tmp_path / "m.cf", "a@example.org %s\nb@example.org %s\n" % (missing, there))
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("%s:1:15: warning: the directory that holds the Maildir %s "
                        "does not exist on this host\n" % (cf, missing))


def test_check_warns_maildir_that_user_id_cannot_write(tmp_path):
    """A Maildir target that core.user-id cannot write (a user's own
    ~/Maildir, a home directory it cannot create one in) passed --check,
    and every delivery to it failed with 451 until it was bounced. The
    directory judged is new/ of an existing Maildir, or the one that
    holds a Maildir the session would create. A copy is written into
    tmp/ and linked into new/: a Maildir whose new/ alone was open to
    user-id passed, and every delivery to it answered 451."""
    os.chmod(tmp_path, 0o755)
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    own = tmp_path / "own"
    for d in ("", "new", "cur", "tmp"):
        (own / d).mkdir(mode=0o700)
    shared = tmp_path / "shared"
    half = tmp_path / "half"
    for m in (shared, half):
        for d in ("", "new", "cur", "tmp"):
            (m / d).mkdir(mode=0o755)
        os.chmod(m / "new", 0o1777)
    os.chmod(shared / "tmp", 0o1777)  # all a delivery needs
    cf = write(tmp_path / "w.cf",
               "a@example.org %s/Maildir/\nb@example.org %s/\nc@example.org %s/\n"
               "d@example.org %s/\n"
               "[core]\nuser-id = nobody\n" % (home, own, shared, half))
    r = check(cf)
    assert r.returncode == 0, r.stderr
    nobody = "nobody (%d:%d)" % (pwd.getpwnam("nobody").pw_uid,
                                 pwd.getpwnam("nobody").pw_gid)
    me = "%d:%d" % (os.geteuid(), os.getegid())
    assert r.stderr == (
        '%s:1:15: warning: the Maildir %s/Maildir/ cannot be written by user-id %s: '
        '"%s/" has owner %s, mode 0755, so every delivery to it would fail\n'
        '%s:2:15: warning: the Maildir %s/ cannot be written by user-id %s: '
        '"%s/tmp/" has owner %s, mode 0700, so every delivery to it would fail\n'
        '%s:4:15: warning: the Maildir %s/ cannot be written by user-id %s: '
        '"%s/tmp/" has owner %s, mode 0755, so every delivery to it would fail\n'
        % (cf, home, nobody, home, me, cf, own, nobody, own, me,
           cf, half, nobody, half, me)), r.stderr


def test_check_warns_journal_logger_without_journal(tmp_path):
    cf = write(tmp_path / "j.cf", "[core]\nlogger = journal\n[smtpd \"mx\"]\n"
               "listen-port = 127.0.0.1:25\nlogger = journal\n[route]\n@example.org discard\n")
    r = check(cf)
    assert r.returncode == 0, r.stderr
    if os.path.exists("/run/systemd/journal/socket"):
        assert r.stderr == ""
        return
    why = ("warning: no systemd journal on this host (/run/systemd/journal/socket): "
           "its log lines would be lost\n")
    assert r.stderr == "%s:2:10: %s%s:5:10: %s" % (cf, why, cf, why)


@pytest.mark.parametrize("n,per_line", [(63, 1), (64, 1), (64, 64)])
def test_at_most_63_routing_tables_per_listener(tmp_path, n, per_line):
    """Tables past the 63rd were silently left out: their routes, rejects
    and local domains never applied. A 64th is refused with its
    position, one table per line or all on one line."""
    lines = ['[core]', 'hostname = h.example', '[smtpd "mx"]',
             'listen-port = 25']
    names = ['t%d' % i for i in range(1, n + 1)]
    lines += ['routing-table = ' + ' '.join(names[i:i + per_line])
              for i in range(0, n, per_line)]
    for i in range(1, n + 1):
        lines += ['[route "t%d"]' % i, 'u%d@example.org reject' % i]
    cf = tmp_path / "many.cf"
    cf.write_text("\n".join(lines) + "\n")
    r = check(cf)
    if n == 63:
        assert r.returncode == 0, r.stderr
        r = pm("--config=%s" % cf, "--route=u63@example.org")
        assert r.stdout.endswith("550 5.1.1 <u63@example.org>: "
                                 "recipient rejected\n"), r.stdout
    else:
        # the 64th table: line 68 alone, or the 64th word of line 5
        where = "68:17" if per_line == 1 else "5:%d" % (
            17 + len(" ".join(names[:63])) + 1)
        assert r.returncode == 78
        assert r.stderr.startswith("%s:%s: expected at most 63 "
                                   "routing-table entries in a listener, "
                                   "found more" % (cf, where)), r.stderr


def test_check_compiles_nothing_for_an_open_relay(tmp_path):
    """The open-relay rule runs after the route files are read; an error
    it finds, like any other, leaves no compiled file behind (one was
    written before the rule ran)."""
    rt = tmp_path / "r.rt"
    rt.write_text("@ mx\n")
    cf = tmp_path / "relay.cf"
    cf.write_text('[core]\nhostname = h.example\n[smtpd "mx"]\n'
                  'listen-port = 25\nrelay-clients = 0.0.0.0/0\n'
                  '[route]\nfile "%s"\n' % rt)
    r = check(cf)
    assert r.returncode == 78 and "open relay" in r.stderr, r.stderr
    assert not os.path.exists(str(rt) + ".pmdb")
    cf.write_text('[core]\nhostname = h.example\n[route]\nfile "%s"\n' % rt)
    r = check(cf)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(str(rt) + ".pmdb")


def test_a_key_before_any_header_is_no_route(tmp_path):
    """'spf = reject' written before any section header (or under [route])
    was a route for the local name "spf": --check said ok, and no [smtpd]
    checked SPF. A key of another section followed by '=' is an error
    there, on the line and column of the key; a quoted pattern is still a
    route."""
    cf = write(tmp_path / "k.cf", """\
hostname = mx.example.org
spf = reject
[smtpd "mx"]
listen-port = 25
[route]
postmaster = root
  relay-clients = 192.0.2.0/24
"name" = root
""")
    r = check(cf)
    assert r.returncode == 78
    err = r.stderr
    assert cf + ":1:1: expected a route, found the key 'hostname' of [core]" in err
    assert cf + ":2:1: expected a route, found the key 'spf' of [smtpd]" in err
    assert cf + ":7:3: expected a route, found the key 'relay-clients' of [smtpd]" in err
    assert ":6:" not in err and ":8:" not in err


def test_a_target_that_is_no_host_is_refused_not_queued():
    """A target with a dot that names no [pipe], [relay] or alias is a
    host; '192.0.2.0/24' (a network pasted as a target) passed --check,
    and a session accepted its mail (250) and queued it with '451 4.3.5
    bad address' until it bounced. --check names the line and column, and
    the session answers the recipient 451 4.3.5 at RCPT, as for a target
    that does not parse: the sender keeps the mail until the route is
    mended (a 550 5.1.1 'user unknown' once bounced it for the
    administrator's typo)."""
    d = scratch_dir("pm-nohost-", ("spool",))
    try:
        user = "user-id = nobody\n" if os.geteuid() == 0 else ""
        cf = write(os.path.join(d, "h.cf"), """\
[core]
logger = stderr
spool-directory = %s/spool
[route]
x@example.org 192.0.2.0/24
y@example.org mx.example.net, [192.0.2.1]:2525
%s""" % (d, "[core]\n" + user))
        r = check(cf)
        assert r.returncode == 78
        assert r.stderr.splitlines() == [
            cf + ":5:15: expected host, ip, [ip], host:port, [ip]:port or "
            "unix:/path, found '192.0.2.0/24' (a target with a dot that is "
            "no [pipe], [relay] or alias is a host)"]
        s = subprocess.run([POSTMASTER, "--config=" + cf], capture_output=True,
                           text=True, timeout=30,
                           input="HELO x\r\nMAIL FROM:<a@b.example>\r\n"
                           "RCPT TO:<x@example.org>\r\nDATA\r\nSubject: t\r\n"
                           "\r\nx\r\n.\r\nQUIT\r\n")
        assert "\n451 4.3.5 <x@example.org>: route misconfigured\n" in \
            s.stdout, s.stdout + s.stderr
        assert "status=rejected dsn=4.3.5" in s.stderr, s.stderr
        assert os.listdir(os.path.join(d, "spool")) == []
    finally:
        remove_tree(d)


def test_a_refused_value_is_not_also_missing(tmp_path):
    """A key whose line the lexer refuses (a bare CR in a value, an
    unterminated quote) was also reported as missing: 'expected
    core.user-id' at the [core] header, "expected 'exec' in [pipe "p"],
    found none", each pointing away from the one mistake."""
    cf = write(tmp_path / "r.cf", '[core]\nuser-id = nob\rody\n'
               '[pipe "p"]\nexec = "/bin/cat\n')
    r = check(cf)
    assert r.returncode == 78
    assert r.stderr.splitlines() == [
        cf + ":2:14: expected a word, found a bare carriage return",
        cf + ":4:8: expected '\"' to close the string, found the end of "
        "the line"]


def test_a_route_file_keeps_its_routes_spelt_like_keys(tmp_path):
    """A route file has no section headers, so a key of another section
    cannot be out of place in it: 'timeout = ...' there is the route for
    the local name "timeout" it always was. The rule against keys before
    any header once refused such a file, and with it every session
    (421)."""
    box = tmp_path / "box"
    rt = write(tmp_path / "users.rt", "timeout = %s/\nname %s/\n" % (box, box))
    cf = write(tmp_path / "rt.cf", '[core]\nhostname = h.example\n'
                                   '[route]\nfile "%s"\n' % rt)
    for step in ("text", "index"):
        r = pm("--config=" + cf, "--route=timeout@h.example")
        assert r.returncode == 0, (step, r.stderr)
        assert "maildir %s/" % box in r.stdout, (step, r.stdout)
        if step == "text":
            r = check(cf)
            assert r.returncode == 0, r.stderr
            assert os.path.exists(rt + ".pmdb")
