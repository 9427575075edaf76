"""International domain names route as one domain (SPEC 6): "bücher.test",
"BÜCHER.test" and "xn--bcher-kva.test" are the same domain in route
patterns, in the compiled index that --check writes, in local domains and
the relay check, whichever spelling the client uses; a domain that is no
valid international name is refused with 553 5.1.3. libidn2 is loaded
only when a domain needs it.

Sessions run over a pipe (as swaks --pipe would) and under tcpserver with
Python's smtplib as the client; every directory is removed at the end."""
import os
import smtplib
import subprocess

import pytest
from pmtest import POSTMASTER, ROOT, Tcpserver, no_sanitizer_report, remove_tree, scratch_dir, tool

BUECHER_U = "bücher.test"
BUECHER_UP = "BÜCHER.test"
BUECHER_A = "xn--bcher-kva.test"


@pytest.fixture
def tmp():
    d = scratch_dir("pm-idna-", ("spool", "b", "m", "b2"))
    yield d
    remove_tree(d)


def write_cf(tmp, routes, name="pm.cf"):
    text = ("[core]\nhostname = mail.example.net\nspool-directory = %s/spool\n"
            % tmp)
    if ROOT:
        text += "user-id = nobody\n"
    text += "[route]\n" + routes.replace("@DIR@", tmp)
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def pm(*args):
    r = subprocess.run([POSTMASTER, *args], capture_output=True, timeout=60)
    out, err = r.stdout.decode(), r.stderr.decode(errors="replace")
    no_sanitizer_report(err, " ".join(args))
    return r.returncode, out, err


def session(cf, rcpts, data=True):
    """One SMTPUTF8 transaction over a pipe: the replies to each RCPT, and
    to the end of the data when data is true."""
    wire = "EHLO client.example\r\nMAIL FROM:<s@example.org> SMTPUTF8\r\n"
    for r in rcpts:
        wire += "RCPT TO:<%s>\r\n" % r
    if data:
        wire += "DATA\r\nSubject: idna\r\n\r\nhello\r\n.\r\n"
    wire += "QUIT\r\n"
    r = subprocess.run([POSTMASTER, "--config=" + cf], input=wire.encode(),
                       capture_output=True, timeout=60)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "session")
    lines = [l for l in r.stdout.decode().split("\r\n") if l]
    # greeting, EHLO (multiline), MAIL; then one line per RCPT
    start = next(i for i, l in enumerate(lines) if l.startswith("250 2.1.0"))
    replies = lines[start + 1:start + 1 + len(rcpts)]
    end = lines[start + 1 + len(rcpts) + 1] if data else None
    return replies, end


def delivered(maildir):
    new = os.path.join(maildir, "new")
    return sorted(os.listdir(new)) if os.path.isdir(new) else []


@pytest.mark.parametrize("pattern", [BUECHER_A, BUECHER_U, BUECHER_UP])
def test_rcpt_in_every_spelling_matches_every_pattern(tmp, pattern):
    cf = write_cf(tmp, '"@%s" @DIR@/b/\n"joe@m\u00fcller.test" @DIR@/m/\n'
                  % pattern)
    rcpts = ["x@" + BUECHER_UP, "y@" + BUECHER_U, "z@" + BUECHER_A,
             "w@XN--BCHER-KVA.TEST", "joe@xn--mller-kva.test",
             "JOE@M\u00dcLLER.TEST"]
    replies, end = session(cf, rcpts)
    assert replies == ["250 2.1.5 Recipient <%s> OK" % r for r in rcpts], replies
    assert end.startswith("250 2.0.0"), end
    assert len(delivered(os.path.join(tmp, "b"))) == 1
    assert len(delivered(os.path.join(tmp, "m"))) == 1


def test_local_domain_and_relay_check_in_every_spelling(tmp):
    cf = write_cf(tmp, '"joe@%s" @DIR@/b/\n' % BUECHER_UP)
    replies, _ = session(cf, ["x@" + BUECHER_A, "x@" + BUECHER_U,
                              "x@sub." + BUECHER_A], data=False)
    # a known domain without that user is "user unknown", not a relay
    assert replies == [
        "550 5.1.1 <x@%s>: user unknown" % BUECHER_A,
        "550 5.1.1 <x@%s>: user unknown" % BUECHER_U,
        "550 5.7.1 <x@sub.%s>: relaying denied" % BUECHER_A], replies


def test_invalid_international_domain_is_553(tmp):
    cf = write_cf(tmp, '"@%s" @DIR@/b/\n' % BUECHER_U)
    replies, _ = session(cf, ["x@xn--zz.test", "x@b\u2024x.test",
                              "x@" + BUECHER_A], data=False)
    assert replies[0].startswith("553 5.1.3 <x@xn--zz.test>: xn--zz.test is "
                                 "not a valid international domain name"), replies
    assert replies[1].startswith("553 5.1.3 <x@b\u2024x.test>: b\u2024x.test "
                                 "is not a valid international domain name"), replies
    assert replies[2] == "250 2.1.5 Recipient <x@%s> OK" % BUECHER_A


def test_invalid_international_pattern_is_a_configuration_error(tmp):
    cf = write_cf(tmp, '"@b\u2024x.test" @DIR@/b/\n')
    rc, out, err = pm("--config=" + cf, "--check")
    assert rc == 78
    assert "%s:6:1: expected a route pattern" % cf in err
    assert "b\u2024x.test is not a valid international domain name" in err


@pytest.mark.parametrize("pattern,rcpt", [(BUECHER_A, "x@" + BUECHER_UP),
                                          (BUECHER_UP, "x@" + BUECHER_A)])
def test_route_flag_shows_the_match(tmp, pattern, rcpt):
    cf = write_cf(tmp, '"@%s" @DIR@/b/\n' % pattern)
    rc, out, err = pm("--config=" + cf, "--route=" + rcpt)
    assert rc == 0, out + err
    assert "<%s> matches '@%s' in [route] at %s:6: %s/b/\n" % (
        rcpt, pattern, cf, tmp) in out, out
    assert out.endswith("250 2.1.5 <%s> OK\n" % rcpt), out


def test_compiled_index_answers_every_spelling(tmp):
    rt = os.path.join(tmp, "idn.rt")
    with open(rt, "w", encoding="utf-8") as f:
        f.write('"@%s" %s/b/\n"ann@xn--mller-kva.test" %s/m/\n'
                % (BUECHER_UP, tmp, tmp))
    cf = write_cf(tmp, 'file "%s"\n' % rt)
    rc, out, err = pm("--config=" + cf, "--check")
    assert rc == 0, out + err
    assert os.path.exists(rt + ".pmdb")
    # the text changed behind the index's back, same size and times: a
    # session that answers from /b/ and /m/ answers from the index
    st = os.stat(rt)
    with open(rt, encoding="utf-8") as f:
        text = f.read()
    with open(rt, "r+", encoding="utf-8") as f:
        f.write(text.replace("/b/", "/X/").replace("/m/", "/Y/"))
    os.utime(rt, ns=(st.st_atime_ns, st.st_mtime_ns))
    rc, out, err = pm("--config=" + cf, "--route=x@" + BUECHER_A)
    assert rc == 0 and err == "", out + err
    assert "deliver: maildir %s/b/ <x@%s>\n" % (tmp, BUECHER_A) in out, out
    rcpts = ["x@" + BUECHER_U, "y@" + BUECHER_A, "ann@M\u00dcLLER.test"]
    replies, end = session(cf, rcpts)
    assert replies == ["250 2.1.5 Recipient <%s> OK" % r for r in rcpts], replies
    assert end.startswith("250 2.0.0"), end
    assert len(delivered(os.path.join(tmp, "b"))) == 1
    assert len(delivered(os.path.join(tmp, "m"))) == 1
    # the file's domains are local in every spelling
    replies, _ = session(cf, ["bob@xn--mller-kva.test", "bob@m\u00fcller.test"],
                         data=False)
    assert [r[:9] for r in replies] == ["550 5.1.1"] * 2, replies


def test_smtplib_sends_to_an_upper_case_u_label(tmp):
    cf = write_cf(tmp, '"@%s" @DIR@/b/\n' % BUECHER_A)
    srv = Tcpserver([POSTMASTER, "--config=" + cf], os.path.join(tmp, "log"))
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
            c.ehlo("client.example")
            assert c.has_extn("smtputf8")
            refused = c.sendmail("s@example.org", ["anna@" + BUECHER_UP],
                                 b"Subject: idna\r\n\r\nhello\r\n",
                                 mail_options=["SMTPUTF8"])
            assert refused == {}
    finally:
        srv.stop()
    (name,) = delivered(os.path.join(tmp, "b"))
    with open(os.path.join(tmp, "b", "new", name), "rb") as f:
        assert b"hello" in f.read()


def maps_after(cf, rcpt):
    """The memory map of a session after it answered RCPT TO:<rcpt>."""
    p = subprocess.Popen([POSTMASTER, "--config=" + cf], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(("EHLO c.example\r\nMAIL FROM:<s@example.org> SMTPUTF8\r\n"
                       "RCPT TO:<%s>\r\n" % rcpt).encode())
        p.stdin.flush()
        while True:
            line = p.stdout.readline()
            assert line, "session ended"
            if line.startswith((b"250 2.1.5", b"5")) and not line.startswith(b"250 2.1.0"):
                break
        with open("/proc/%d/maps" % p.pid) as f:
            return line.decode(), f.read()
    finally:
        p.stdin.write(b"QUIT\r\n")
        p.stdin.close()
        p.wait(timeout=10)


def test_libidn2_is_loaded_only_for_international_domains(tmp):
    cf = write_cf(tmp, "@example.org @DIR@/b/\n")
    reply, maps = maps_after(cf, "joe@Example.ORG")
    assert reply.startswith("250 2.1.5") and "libidn2" not in maps, reply
    reply, maps = maps_after(cf, "joe@" + BUECHER_U)
    assert reply.startswith("550 5.7.1") and "libidn2" in maps, reply


@pytest.mark.skipif(not ROOT, reason="hides libidn2 with a bind mount")
def test_without_libidn2_international_domains_wait(tmp):
    # a private mount namespace where libidn2.so.0 is an empty file: an
    # international recipient is deferred (451 4.3.0), ASCII routes as
    # ever, and a pattern that needs the library is a configuration error
    lib = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True,
                         text=True).stdout
    path = next(l.split("=> ")[1] for l in lib.splitlines()
                if l.strip().startswith("libidn2.so.0 "))
    cf = write_cf(tmp, "@example.org @DIR@/b/\n")
    bad = write_cf(tmp, '"@%s" @DIR@/b/\n' % BUECHER_U, name="bad.cf")
    r = subprocess.run(
        [tool("unshare"), "-m", "sh", "-c",
         'mount --bind /dev/null "$(readlink -f "$0")" || exit 99; '
         '"$1" --config="$2" --route="x@$3"; echo "rc=$?"; '
         '"$1" --config="$2" --route=x@example.org; echo "rc=$?"; '
         '"$1" --config="$4" --check 2>&1; echo "rc=$?"',
         path, POSTMASTER, cf, BUECHER_U, bad],
        capture_output=True, timeout=60)
    out = r.stdout.decode()
    no_sanitizer_report(out + r.stderr.decode(errors="replace"), "no libidn2")
    assert r.returncode == 0, out + r.stderr.decode()
    assert ("451 4.3.0 <x@%s>: cannot check an international domain name "
            "now\nrc=75\n" % BUECHER_U) in out, out
    assert "250 2.1.5 <x@example.org> OK\nrc=0\n" in out, out
    assert out.endswith(": expected a route pattern (user@domain, @domain, "
                        "user@, @ or a local name), found '@%s': cannot load "
                        "libidn2.so.0 for %s\nrc=78\n" % (BUECHER_U, BUECHER_U)), out


@pytest.mark.parametrize("compiled", [False, True])
def test_address_literals_compare_as_addresses(tmp, compiled):
    """One IPv6 address has many spellings, and an IPv4 address can be
    written IPv4-mapped: a route for [IPv6:::1] or [127.0.0.1] once missed
    [IPv6:0::1], [IPv6:0:0:0:0:0:0:0:1] and [IPv6:::ffff:127.0.0.1],
    which reached the system user instead of the reject. Patterns,
    recipients and compiled keys now share one spelling per address."""
    lines = "@[IPv6:0:0::1] reject\n@[127.0.0.1] reject\n"
    routes = lines
    if compiled:
        rt = os.path.join(tmp, "lit.rt")
        with open(rt, "w") as f:
            f.write(lines)
        routes = 'file "%s"\n' % rt
    cf = write_cf(tmp, routes)
    if compiled:
        rc, out, err = pm("--config=" + cf, "--check")
        assert rc == 0, out + err
        assert os.path.exists(rt + ".pmdb")
    rcpts = ["root@[IPv6:::1]", "root@[IPv6:0::1]",
             "root@[IPv6:0:0:0:0:0:0:0:1]", "root@[IPV6:0000::0001]",
             "root@[IPv6:::ffff:127.0.0.1]", "root@[127.0.0.1]"]
    replies, _ = session(cf, rcpts, data=False)
    assert replies == ["550 5.1.1 <%s>: recipient rejected" % r
                       for r in rcpts], replies
    if compiled:
        # a file that the version before wrote held literals as written:
        # it counts as out of date, and the text answers
        with open(rt + ".pmdb", "r+b") as f:
            assert f.read(8) == b"PMRTIX04"
            f.seek(0)
            f.write(b"PMRTIX03")
        rc, out, err = pm("--config=" + cf, "--route=root@[IPv6:0::1]")
        assert "is older than the file and is ignored" in err, err
        assert out.endswith("recipient rejected\n"), out
