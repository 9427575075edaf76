"""SPF (SPEC 8, RFC 7208, RFC 7372) through libspf2, against a DNS server
of the test's own.

libspf2 asks the servers of /etc/resolv.conf, so each test runs its
sessions inside a private network and mount namespace (unshare -mn, as
root): loopback up, dnsmasq on 127.0.0.1:53 holding the SPF records, and
a resolv.conf that names it bind-mounted over /etc/resolv.conf. The
sessions run on a pipe with the tcpserver variables saying that the
client is 192.0.2.1.
"""
import glob
import os
import re
import subprocess

import pytest

from pmtest import POSTMASTER, ROOT, scratch_dir, session_maps, tool, no_sanitizer_report, remove_tree

RECORDS = [
    ("pass.example", "v=spf1 ip4:192.0.2.1 -all"),
    ("fail.example", "v=spf1 ip4:192.0.2.99 -all"),
    ("soft.example", "v=spf1 ~all"),
    # two SPF records are a permanent error (RFC 7208 4.5)
    ("perm.example", "v=spf1 -all"),
    ("perm.example", "v=spf1 +all"),
    ("xn--bcher-kva.example", "v=spf1 ip4:192.0.2.99 -all"),
    # names without addresses: two void lookups are allowed, a third is
    # a permerror (RFC 7208 4.6.4), even before a mechanism that passes
    ("void.example", "v=spf1 a:n1.void.example mx:n2.void.example "
     "a:n3.void.example ip4:192.0.2.1 -all"),
    ("twovoid.example", "v=spf1 a:n1.twovoid.example a:n2.twovoid.example "
     "ip4:192.0.2.1 -all"),
]


@pytest.fixture
def tmp():
    if not ROOT:
        pytest.skip("a private network namespace needs root")
    d = scratch_dir("pm-spf-")
    yield d
    remove_tree(d)


def run_sessions(tmp, mode, senders, extra=""):
    """One session per (helo, sender[, MAIL parameters]) inside the
    namespace; returns the replies to MAIL FROM and the sessions' logs."""
    cf = os.path.join(tmp, "postmaster.cf")
    with open(cf, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
user-id = nobody
spool-directory = {tmp}/spool
[smtpd "mx"]
name = mail.example.net
listen-port = 25
spf = {mode}
{extra}[route]
joe@example.net {tmp}/Maildir/
""".format(tmp=tmp, mode=mode, extra=extra))
    with open(os.path.join(tmp, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    dns = [tool("dnsmasq"), "--no-daemon", "--conf-file=/dev/null", "--port=53",
           "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
           "--no-hosts", "--local=/pass.example/fail.example/soft.example/"
           "perm.example/none.example/xn--bcher-kva.example/"
           "void.example/twovoid.example/",
           # a domain whose name server is dead: SERVFAIL
           "--server=/servfail.example/127.0.0.1#9",
           "--user=nobody", "--group=nogroup", "--log-queries", "--log-facility=-"]
    dns += ['--txt-record=%s,%s' % kv for kv in RECORDS]
    lines = ["set -e", "ip link set lo up",
             "mount --bind %s/resolv.conf /etc/resolv.conf" % tmp,
             " ".join("'%s'" % a for a in dns) + " >/dev/null 2>%s/dnsmasq.log &" % tmp,
             "dns=$!", "trap 'kill $dns 2>/dev/null' EXIT", "sleep 0.5",
             "export TCPLOCALIP=127.0.0.1 TCPLOCALPORT=25 TCPREMOTEIP=192.0.2.1"]
    for i, (helo, sender, *params) in enumerate(senders):
        wire = ("EHLO %s\\r\\nMAIL FROM:<%s>%s\\r\\nRCPT TO:<joe@example.net>\\r\\n"
                "DATA\\r\\nSubject: spf %d\\r\\n\\r\\nbody\\r\\n.\\r\\nQUIT\\r\\n"
                % (helo, sender, "".join(" " + p for p in params), i))
        lines.append("echo '=== %d'; printf '%s' | %s --config=%s 2>>%s/session.log || true"
                     % (i, wire, POSTMASTER, cf, tmp))
    script = os.path.join(tmp, "run.sh")
    with open(script, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([tool("unshare"), "-mn", "/bin/sh", script], capture_output=True,
                       text=True, errors="replace", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    log = open(os.path.join(tmp, "session.log"), errors="replace").read()
    no_sanitizer_report(log, "sessions")
    replies = {}
    for block in r.stdout.split("=== ")[1:]:
        n, rest = block.split("\n", 1)
        mail = [l for l in rest.split("\n") if re.match(r"^(250 2\.1\.0|[45]\d\d )", l)]
        replies[int(n)] = mail[0] if mail else rest
    return [replies[i] for i in range(len(senders))], log


def test_spf_reject(tmp):
    senders = [("client.example", "a@pass.example"), ("client.example", "a@fail.example"),
               ("client.example", "a@soft.example"), ("client.example", "a@perm.example"),
               ("client.example", "a@none.example"),
               ("pass.example", ""), ("fail.example", ""),
               ("client.example", "a@servfail.example")]
    replies, log = run_sessions(tmp, "reject", senders)
    assert replies == [
        "250 2.1.0 Sender <a@pass.example> OK",
        "550 5.7.23 SPF validation failed for <a@fail.example>",
        "250 2.1.0 Sender <a@soft.example> OK",
        "550 5.7.24 SPF validation error",
        "250 2.1.0 Sender <a@none.example> OK",
        "250 2.1.0 Sender <> OK",
        "550 5.7.23 SPF validation failed for <>",
        "451 4.7.24 SPF validation error (temporary)",
    ], replies
    assert "event=spf from=<a@fail.example> result=fail" in log
    assert "event=spf from=<a@perm.example> result=permerror" in log
    assert "event=spf from=<> result=pass" in log
    # a DNS that fails is a temperror, not "none" (libspf2 says none)
    assert "event=spf from=<a@servfail.example> result=temperror" in log, log


def test_spf_void_lookup_limit(tmp):
    """RFC 7208 4.6.4: a record whose mechanisms look up a third name
    that does not exist is a permerror (libspf2 does not count them: such
    a record was neutral or pass); two are allowed."""
    replies, log = run_sessions(tmp, "reject", [
        ("client.example", "a@void.example"),
        ("client.example", "a@twovoid.example")])
    assert replies == ["550 5.7.24 SPF validation error",
                       "250 2.1.0 Sender <a@twovoid.example> OK"], replies
    assert "event=spf from=<a@void.example> result=permerror" in log, log
    assert "event=spf from=<a@twovoid.example> result=pass" in log, log


def test_spf_spares_relay_clients(tmp):
    """A relay client (and an authenticated one) sends for its users from
    wherever they are: as Postfix's permit_mynetworks before an SPF
    policy, it is not checked; it was refused 550 5.7.23 for a sender
    whose domain does not list it."""
    replies, log = run_sessions(tmp, "reject",
                                [("client.example", "a@fail.example")],
                                extra="relay-clients = 192.0.2.0/24\n")
    assert replies == ["250 2.1.0 Sender <a@fail.example> OK"], replies
    assert "event=spf" not in log, log


def test_spf_tag_adds_received_spf_above_received(tmp):
    senders = [("client.example", "a@pass.example"), ("client.example", "a@fail.example")]
    replies, log = run_sessions(tmp, "tag", senders)
    assert replies == ["250 2.1.0 Sender <a@pass.example> OK",
                       "250 2.1.0 Sender <a@fail.example> OK"], replies
    msgs = {}
    for p in glob.glob(os.path.join(tmp, "Maildir", "new", "*")):
        text = open(p, errors="replace").read()
        msgs[re.search(r"Subject: spf (\d)", text).group(1)] = text
    assert sorted(msgs) == ["0", "1"]
    for n, result in (("0", "pass"), ("1", "fail")):
        head = msgs[n].split("\n\n", 1)[0].replace("\n\t", " ").split("\n")
        # Return-Path and Delivered-To come from local delivery; then this
        # hop's trace fields: Received-SPF above Received (RFC 7208 9.1)
        assert head[2].startswith("Received-SPF: %s " % result), head
        assert head[3].startswith("Received: from client.example ([192.0.2.1])"), head


def test_spf_off_and_local_sessions_load_no_libspf2(tmp):
    senders = [("client.example", "a@fail.example")]
    replies, _ = run_sessions(tmp, "off", senders)
    assert replies == ["250 2.1.0 Sender <a@fail.example> OK"]
    cf = os.path.join(tmp, "postmaster.cf")
    maps = session_maps([POSTMASTER, "--config=" + cf, "--smtpd=mx"])
    assert "libspf2" not in maps and "libc.so" in maps


def test_spf_checks_an_international_domain_by_its_a_label(tmp):
    # xn--bcher-kva.example is bücher.example: its record fails 192.0.2.1
    senders = [("client.example", "a@xn--bcher-kva.example"),
               ("client.example", "a@bücher.example", "SMTPUTF8"),
               ("client.example", "ä@BÜCHER.example", "SMTPUTF8"),
               ("bücher.example", ""),
               ("client.example", "a@b\u00fc--x.example", "SMTPUTF8")]
    replies, log = run_sessions(tmp, "reject", senders)
    assert replies == [
        "550 5.7.23 SPF validation failed for <a@xn--bcher-kva.example>",
        "550 5.7.23 SPF validation failed for <a@bücher.example>",
        "550 5.7.23 SPF validation failed for <ä@BÜCHER.example>",
        "550 5.7.23 SPF validation failed for <>",
        "250 2.1.0 Sender <a@bü--x.example> OK",
    ], replies
    # the invalid name was not looked up: none, with the reason
    assert re.search(r"event=spf from=<a@b.*--x.example> result=none reason=", log), log
    queries = open(os.path.join(tmp, "dnsmasq.log"), errors="replace").read()
    assert "query[TXT] xn--bcher-kva.example" in queries, queries
    assert "<name unprintable>" not in queries and "--x.example" not in queries, queries


def received_spf(tmp):
    """The Received-SPF field of each stored message, unfolded, by Subject."""
    out = {}
    for p in glob.glob(os.path.join(tmp, "Maildir", "new", "*")):
        text = open(p, errors="replace").read()
        head = text.split("\n\n", 1)[0]
        assert all(len(l) <= 998 for l in head.split("\n")), head
        head = head.replace("\n\t", " ")
        field = re.search(r"^Received-SPF: (.*)$", head, re.M).group(1)
        out[re.search(r"Subject: spf (\d)", text).group(1)] = field
    return [out[k] for k in sorted(out)]


def pairs(field):
    """The key=value pairs after the comment, parsed as RFC 7208 9.1 says:
    a value is a dot-atom or a quoted-string."""
    rest = field.split(") ", 1)[1]
    return re.findall(r'([a-z-]+)=("(?:[^"\\]|\\.)*"|[^";\s]+);', rest)


def test_received_spf_quotes_what_the_client_chose(tmp):
    senders = [("a;client-ip=6.6.6.6;x", "a@pass.example"),
               ("c.example", '"x;client-ip=6.6.6.6;y"@pass.example'),
               ('x"y\\\\z', "a@pass.example")]
    replies, _ = run_sessions(tmp, "tag", senders)
    assert all(r.startswith("250 2.1.0") for r in replies), replies
    fields = received_spf(tmp)
    assert len(fields) == 3, fields
    # the receiver is this listener, not the machine's host name
    for f in fields:
        assert f.startswith("pass (mail.example.net: domain of pass.example "
                            "designates 192.0.2.1 as permitted sender) "), f
        kv = pairs(f)
        keys = [k for k, _ in kv]
        assert keys == ["client-ip", "envelope-from", "helo", "receiver",
                        "identity"], f
        assert dict(kv)["client-ip"] == "192.0.2.1"
        assert dict(kv)["receiver"] == "mail.example.net"
        assert dict(kv)["identity"] == "mailfrom"
    assert dict(pairs(fields[0]))["helo"] == '"a;client-ip=6.6.6.6;x"'
    assert dict(pairs(fields[0]))["envelope-from"] == '"a@pass.example"'
    assert dict(pairs(fields[1]))["envelope-from"] == \
        '"\\"x;client-ip=6.6.6.6;y\\"@pass.example"'
    # x"y\\z (the shell's printf made each \\\\ one \\)
    assert dict(pairs(fields[2]))["helo"] == '"x\\"y\\\\\\\\z"'


def test_no_identity_no_query_no_envelope_from(tmp):
    """MAIL FROM:<> after an invalid HELO name has no identity to check:
    the Received-SPF field once took its envelope-from from a buffer that
    was never filled (stack bytes in the message). A sender at an address
    literal names no domain either: none, without a DNS query."""
    senders = [("foo_bar", ""), ("client.example", "a@[192.0.2.1]")]
    replies, log = run_sessions(tmp, "tag", senders)
    assert replies == ["250 2.1.0 Sender <> OK",
                       "250 2.1.0 Sender <a@[192.0.2.1]> OK"], replies
    fields = received_spf(tmp)
    assert len(fields) == 2, fields
    assert fields[0].startswith("none ") and \
        "envelope-from" not in dict(pairs(fields[0])), fields[0]
    assert fields[1].startswith("none "), fields[1]
    assert dict(pairs(fields[1]))["envelope-from"] == '"a@[192.0.2.1]"'
    assert "event=spf from=<a@[192.0.2.1]> result=none" in log, log
    queries = open(os.path.join(tmp, "dnsmasq.log"), errors="replace").read()
    assert "192.0.2.1]" not in queries and "foo_bar" not in queries, queries


def test_an_8bit_helo_stays_out_of_received_spf(tmp):
    """The session keeps a HELO name in valid UTF-8; in Received-SPF it put
    8-bit octets into the header of a 7-bit message (RFC 6532 allows them
    only with SMTPUTF8). The helo pair is left out; the Received field
    shows the name with '?'."""
    replies, log = run_sessions(tmp, "tag", [("h\u00fcgel.example",
                                              "a@pass.example")])
    assert replies[0].startswith("250 2.1.0"), replies
    files = glob.glob(os.path.join(tmp, "Maildir", "new", "*"))
    assert files
    for p in files:
        with open(p, "rb") as f:
            head = f.read().split(b"\n\n", 1)[0]
        assert b"Received-SPF: pass" in head, head
        assert all(b < 0x80 for b in head), head
