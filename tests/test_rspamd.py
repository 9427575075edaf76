"""rspamd through its milter interface (issue 13): a private rspamd (its
proxy worker with milter = yes on a unix socket in a scratch directory,
self_scan, no normal worker, no fuzzy worker, console logging, its
databases and run files in the scratch directory, DNS pointed at a port
where nothing answers: the machine has no network) started once for this
file; it takes about 20 s to compile its TLD list before it listens.
postmaster's sessions run on a pipe with the milter in [smtpd] milters."""
import glob
import os
import signal
import subprocess
import time

import pytest

from pmtest import POSTMASTER, ROOT, free_port, no_sanitizer_report, remove_tree, scratch_dir, tool

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def rspamd():
    d = scratch_dir("pm-rspamd-", ("conf", "db", "run", "log", "Maildir", "spool"))
    for sub in ("local.d", "override.d"):
        os.mkdir(os.path.join(d, "conf", sub))
    files = {
        "override.d/worker-proxy.inc":
            'milter = yes;\ntimeout = 120s;\nbind_socket = "%s/rspamd.sock mode=0666";\n'
            'self_scan = yes;\ncount = 1;\n'
            'upstream "local" { default = yes; self_scan = yes; }\n'
            'reject_message = "Spam message rejected";\n' % d,
        "override.d/worker-normal.inc": "enabled = false;\n",
        "override.d/worker-fuzzy.inc": "enabled = false;\ncount = 0;\n",
        "override.d/worker-controller.inc":
            'bind_socket = "127.0.0.1:%d";\ncount = 1;\n' % free_port(),
        "override.d/logging.inc": 'type = "console";\nlevel = "info";\n',
        # port 9 (discard): nothing answers, every query fails at once
        "local.d/options.inc":
            'dns { nameserver = ["127.0.0.1:9"]; timeout = 1s; retransmits = 1; }\n',
        "local.d/milter_headers.conf":
            'use = ["x-spamd-result"];\nskip_local = false;\n'
            'skip_authenticated = false;\n',
    }
    for name, text in files.items():
        with open(os.path.join(d, "conf", name), "w") as f:
            f.write(text)
    argv = [tool("rspamd"), "-f", "-c", "/etc/rspamd/rspamd.conf"]
    if ROOT:
        argv += ["-u", "nobody", "-g", "nogroup"]
    for var, sub in (("LOCAL_CONFDIR", "conf"), ("DBDIR", "db"),
                     ("RUNDIR", "run"), ("LOGDIR", "log")):
        argv.append("--var=%s=%s/%s" % (var, d, sub))
    log = open(os.path.join(d, "rspamd.log"), "wb")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        deadline = time.time() + 180
        sock = os.path.join(d, "rspamd.sock")
        while not os.path.exists(sock):
            assert p.poll() is None and time.time() < deadline, \
                open(log.name, errors="replace").read()[-3000:]
            time.sleep(0.2)
        with open(os.path.join(d, "pm.cf"), "w") as f:
            f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {d}/spool
{user}
[milter "rspamd"]
address = unix:{d}/rspamd.sock
content-timeout = 60s
[smtpd "mx"]
name = mail.example.net
listen-port = 25
milters = rspamd
[route]
joe@example.net {d}/Maildir/
""".format(d=d, user="user-id = nobody" if ROOT else ""))
        yield d
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        log.close()
        remove_tree(d)


def send(d, body):
    wire = ("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n"
            "RCPT TO:<joe@example.net>\r\nDATA\r\nFrom: a@example.org\r\n"
            "To: joe@example.net\r\nSubject: rspamd\r\n"
            "Message-ID: <%f@example.org>\r\n"
            "Date: Mon, 07 Dec 2026 04:00:00 +0000\r\n\r\n%s\r\n.\r\nQUIT\r\n"
            % (time.time(), body))
    env = dict(os.environ, TCPLOCALIP="127.0.0.1", TCPLOCALPORT="25",
               TCPREMOTEIP="192.0.2.7")
    r = subprocess.run([POSTMASTER, "--config=%s/pm.cf" % d], input=wire.encode(),
                       capture_output=True, env=env, timeout=150)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    return r.stdout.decode(), r.stderr.decode()


def test_gtube_is_rejected_with_rspamds_text(rspamd):
    out, err = send(rspamd, GTUBE)
    assert "\r\n554 5.7.1 Gtube pattern\r\n" in out, out + err
    assert glob.glob(os.path.join(rspamd, "Maildir", "new", "*")) == []


def test_a_plain_message_passes_with_rspamds_header(rspamd):
    out, err = send(rspamd, "Hello Joe, this is an ordinary message.")
    assert "\r\n250 2.0.0" in out, out + err
    (path,) = glob.glob(os.path.join(rspamd, "Maildir", "new", "*"))
    msg = open(path).read()
    os.unlink(path)
    assert "X-Spamd-Result: default: False" in msg, msg
