"""The configuration tools as an administrator runs them: --check, --dump,
--route, their output and exit statuses (postmaster(8), EXIT STATUS)."""
import os
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
POSTMASTER = os.path.abspath(os.environ.get("POSTMASTER", os.path.join(TOP, "postmaster")))
SEED = os.path.join(HERE, "data", "seed.cf")


def pm(*args, cwd=None):
    r = subprocess.run([POSTMASTER, *args], capture_output=True, text=True,
                       cwd=cwd, timeout=60)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


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


def test_dump_seed():
    r = pm("--config=" + SEED, "--dump")
    assert r.returncode == 0, r.stderr
    assert r.stdout == SEED_DUMP


def round_trip(cfpath, tmp_path):
    first = pm("--config=" + cfpath, "--dump")
    assert first.returncode == 0, first.stderr
    empty = write(tmp_path / "empty.cf", "")
    flags = ["--" + line for line in first.stdout.splitlines()]
    second = pm("--config=" + empty, *flags, "--dump")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    return first.stdout


def test_dump_round_trip_seed(tmp_path):
    round_trip(SEED, tmp_path)


def test_dump_round_trip_corners(tmp_path):
    cf = write(tmp_path / "c.cf", """\
joe@example.org /m/joe/, "|/usr/bin/logger -t \\"x y\\""
"srs0=ab=cd@example.org" /m/srs/
[relay "r"]
address = 192.0.2.1
address = "[192.0.2.2]:2525"
[smtpd "a.example"]
routing-table = t1
routing-table = t2
[route "t1"]
[route "t2"]
@ mx
[syslog]
ident = "with # hash and \\\\ backslash"
""")
    out = round_trip(cf, tmp_path)
    assert 'route."t1"\n' in out
    assert 'route."".joe@example.org = /m/joe/, "|/usr/bin/logger -t \\"x y\\""' in out
    assert 'route."".\"srs0=ab=cd@example.org\" = /m/srs/' in out


def test_dump_defaults():
    r = pm("--config=" + SEED, "--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for want in ('core.queue-lifetime = 432000s', 'core.max-message-size = 10240000',
                 'core.bounce-to = sender', 'core.minimal-backoff = 300s',
                 'smtpd."mx.example.net".max-recipients = 100',
                 'smtpd."mx.example.net".bare-newline = normalize',
                 'smtpd."localhost".listen-port = ipv6-localhost:submission',
                 'smtpd."localhost".timeout = 300s',
                 'pipe."local".exec = "/usr/bin/procmail" "-d" "${RCPT_TO}"',
                 'relay."relay.example.org".tls = opportunistic',
                 '# core.dns-server: not set: the servers of /etc/resolv.conf'):
        assert want in lines, want


@pytest.mark.skipif(os.path.exists("/etc/postmaster.cf"),
                    reason="this machine has an /etc/postmaster.cf")
def test_builtin_default():
    r = pm("--dump", "--defaults")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# no configuration file: the built-in default\n")
    assert 'pipe."local".exec = "/usr/bin/procmail" "-d" "${RCPT_TO}"' in r.stdout
    assert "core.user-id = nobody" in r.stdout
    r = pm("--route=root@localhost")
    assert r.returncode == 0
    assert r.stdout.endswith("250 2.1.5 <root@localhost> OK\n")


def test_missing_config():
    r = pm("--config=/nonexistent/postmaster.cf", "--check")
    assert r.returncode == 78
    assert r.stderr == "/nonexistent/postmaster.cf: cannot open: No such file or directory\n"


def test_check_ok_and_errors(tmp_path):
    r = pm("--config=" + SEED, "--check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(": ok: 2 listeners, 3 route tables, 14 routes\n")
    bad = write(tmp_path / "bad.cf", "[core]\nhostname = -x\n[smtpd \"a\"]\nlmtp = maybe\n"
                "listen-port = 25\n"
                "[route]\njoe@example.org /var/mail/joe\n")
    r = pm("--config=" + bad, "--check")
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr == (
        bad + ":2:12: expected a host name, found '-x'\n" +
        bad + ":4:8: expected yes or no, found 'maybe'\n" +
        bad + ":7:17: expected a Maildir path ending in '/' (mbox files are not "
        "supported), found '/var/mail/joe'\n")


def test_check_warnings(tmp_path):
    cf = write(tmp_path / "w.cf", """\
[core]
user-id = no-such-user-xyz
spool-directory = /nonexistent/spool
[route]
@example.org /m/all/
joe@example.org /m/joe/
ann@ /m/ann/
ann@example.com /m/ann2/
bob@example.net /m/bob/
@example.net /m/net/
""")
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 0
    assert cf + ":2:11: warning: no user 'no-such-user-xyz' on this host\n" in r.stderr
    assert cf + ":3:19: warning: \"/nonexistent/spool\" does not exist on this host\n" in r.stderr
    assert (cf + ":6:1: warning: route 'joe@example.org' is never used: "
            "'@example.org' at " + cf + ":5 comes first and matches every "
            "address it matches\n") in r.stderr
    assert ":8:1: warning: route 'ann@example.com'" in r.stderr
    # a more general line after a specific one is not shadowed
    assert ":10:1" not in r.stderr


OPEN = [
    ("@ mx", 6, "@"),
    ("@ [192.0.2.1]", 6, "@"),
    ("postmaster@ mx", 6, "postmaster@"),
    ("x@hub.example smarthost\n@ x@hub.example", 7, "@"),
]


@pytest.mark.parametrize("routes,line,pattern", OPEN)
def test_open_relay(tmp_path, routes, line, pattern):
    head = "[relay \"smarthost\"]\naddress = 192.0.2.9\n[smtpd \"mx.example\"]\nlisten-port = 25\n[route]\n"
    cf = write(tmp_path / "o.cf", head + routes + "\n")
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 78
    assert r.stderr.startswith("%s:%d:1: open relay: '%s' sends mail for any domain" % (cf, line, pattern)), r.stderr
    assert 'on [smtpd "mx.example"], which neither requires AUTH nor listens only on loopback' in r.stderr
    # the same tables on loopback only are fine
    for port in ("127.0.0.1:25", "localhost:25", "[::1]:587"):
        cf = write(tmp_path / "l.cf", head.replace("listen-port = 25", "listen-port = " + port) + routes + "\n")
        r = pm("--config=" + cf, "--check")
        assert r.returncode == 0, (port, r.stderr)


def test_open_relay_without_listener(tmp_path):
    cf = write(tmp_path / "o.cf", "@ mx\n")
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 78
    assert "on the built-in listener" in r.stderr


def test_route_exit_statuses(tmp_path):
    cf = write(tmp_path / "r.cf", """\
[core]
hostname = mail.example.net
[smtpd "mx.example.net"]
listen-port = 25
routing-table = t
[route "t"]
joe@example.org /m/joe/
bob@example.org joe@example.org
relay@example.org [192.0.2.7]
""")
    r = pm("--config=" + cf, "--route=bob@example.org")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        'route for [smtpd "mx.example.net"]:\n'
        "  <bob@example.org> matches 'bob@example.org' in [route \"t\"] at %s:8: joe@example.org\n"
        "  rewrite to <joe@example.org>\n"
        "    <joe@example.org> matches 'joe@example.org' in [route \"t\"] at %s:7: /m/joe/\n"
        "    => maildir /m/joe/ for <joe@example.org>\n"
        "deliver: maildir /m/joe/ <joe@example.org>\n"
        "250 2.1.5 <bob@example.org> OK\n" % (cf, cf))
    r = pm("--config=" + cf, "--route=x@example.org")
    assert r.returncode == 67
    assert r.stdout.endswith("550 5.1.1 <x@example.org>: user unknown\n")
    r = pm("--config=" + cf, "--route=x@elsewhere.example")
    assert r.returncode == 67
    assert r.stdout.endswith("550 5.7.1 <x@elsewhere.example>: relaying denied\n")
    r = pm("--config=" + cf, "--route=relay@example.org")
    assert r.returncode == 75
    assert r.stdout.endswith("451 4.3.5 <relay@example.org>: this route needs the spool, "
                             "which is not in this build\n")
    r = pm("--config=" + cf, "--route=<>")
    assert r.returncode == 67
    assert r.stdout.endswith("501 5.1.3 <>: the null address is not a recipient\n")
    r = pm("--config=" + cf, "--smtpd=nosuch", "--route=joe@example.org")
    assert r.returncode == 78
    assert r.stderr == "command line: --smtpd=nosuch: no [smtpd \"nosuch\"] section\n"


def test_route_needs_smtpd_with_several(tmp_path):
    r = pm("--config=" + SEED, "--route=joe@example.org")
    assert r.returncode == 64
    assert "several [smtpd] sections; choose one with --smtpd=NAME: mx.example.net localhost" in r.stderr


def test_compiled_route_file(tmp_path):
    rt = write(tmp_path / "big.rt", "".join("u%d@d.example /m/%d/\n" % (i, i) for i in range(3000)))
    cf = write(tmp_path / "i.cf", "[core]\nhostname = h.example\n[route]\nfile \"big.rt\"\n")
    plain = pm("--config=" + cf, "--route=u2999@d.example")
    assert plain.returncode == 0
    r = pm("--config=" + cf, "--check")
    assert r.returncode == 0, r.stderr
    assert os.path.exists(rt + ".pmdb")
    indexed = pm("--config=" + cf, "--route=u2999@d.example")
    assert indexed.returncode == 0 and indexed.stderr == ""
    assert indexed.stdout == plain.stdout.replace(" at big.rt:", " at %s:" % os.path.realpath(rt)) \
        or indexed.stdout.endswith("250 2.1.5 <u2999@d.example> OK\n")
    assert "maildir /m/2999/" in indexed.stdout
    time.sleep(1.1)
    write(rt, "u2999@d.example /m/new/\n" + open(rt).read())
    stale = pm("--config=" + cf, "--route=u2999@d.example")
    assert stale.returncode == 0
    assert "older than the file and is ignored" in stale.stderr
    assert "maildir /m/new/" in stale.stdout


def test_version_help_and_absent_modes():
    r = pm("--version")
    assert r.returncode == 0 and r.stdout.startswith("postmaster ")
    r = pm("--help")
    assert r.returncode == 0 and "--route=ADDRESS" in r.stdout
    for mode in ("--flush", "--queue", "--inject"):
        r = pm(mode)
        assert r.returncode == 69
        assert r.stderr == "postmaster: %s is not in this build yet\n" % mode
    r = pm("--check", "--dump")
    assert r.returncode == 64
    r = pm("stray")
    assert r.returncode == 64
