"""8-bit and binary mail to a next hop without 8BITMIME or BINARYMIME is
converted per MIME part (RFC 6152 3, RFC 3030 3, RFC 2045): text parts to
quoted-printable, the others to base64, judged by their content. What
cannot be converted (8-bit header fields) bounces with 5.6.3.

The next hop is Postfix's smtp-sink started with -8 (no 8BITMIME; it never
offers BINARYMIME), dumping each message to a file; the delivered message
is parsed with Python's email package and every part, decoded, must equal
what the client sent.
"""
import base64
import email
import email.policy
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from pmtest import POSTMASTER, ROOT, SANITIZED, free_port

SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")


@pytest.fixture
def env():
    if not SINK:
        pytest.skip("smtp-sink is not installed")
    d = tempfile.mkdtemp(prefix="pm-mime-")
    os.chmod(d, 0o1777)
    for sub in ("spool", "sink"):
        os.mkdir(os.path.join(d, sub))
        os.chmod(os.path.join(d, sub), 0o1777)
    port = free_port()
    sink = subprocess.Popen([SINK] + (["-u", "nobody"] if ROOT else []) +
                            ["-8", "-d", os.path.join(d, "sink", "%M."),
                             "127.0.0.1:%d" % port, "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    cf = os.path.join(d, "postmaster.cf")
    with open(cf, "w") as f:
        f.write("""[core]
hostname = mail.example.net
logger = stderr
spool-directory = {d}/spool
pid-file = {d}/flush.pid
{user}
# the conversion is the spool path's (SPEC 7.2): the session does not proxy
[smtpd "mail.example.net"]
proxy = no
[route]
@ext.example [127.0.0.1]:{port}
s@example.org {d}/bounces/
""".format(d=d, port=port, user="user-id = nobody" if ROOT else ""))
    yield d, cf
    sink.kill()
    sink.wait()
    shutil.rmtree(d, ignore_errors=True)


def send(cf, wire):
    p = subprocess.run([POSTMASTER, "--config=" + cf], input=wire, capture_output=True,
                       timeout=60)
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    assert re.search(rb"^250 2\.0\.0 Ok: queued as", p.stdout, re.M), p.stdout
    return p


def delivered(d):
    files = glob.glob(os.path.join(d, "sink", "*"))
    assert len(files) == 1, files
    raw = open(files[0], "rb").read()
    assert max(raw) < 0x80, "8-bit octets reached a 7-bit peer"
    return raw, email.message_from_bytes(raw, policy=email.policy.compat32)


TEXT = "Grüße, café = naïve \n".encode("utf-8") * 3 + b"tail with tab\t"
BLOB = bytes(range(256)) * 4


def multipart():
    return (b"Subject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"=b\"\r\n\r\n"
            b"preamble\r\n--=b\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
            TEXT.replace(b"\n", b"\r\n") +
            b"\r\n--=b\r\nContent-Type: message/rfc822\r\n\r\n"
            b"Subject: inner\r\nContent-Type: text/plain; charset=latin1\r\n\r\n"
            b"inner \xe9t\xe9\r\n"
            b"--=b--\r\nepilogue\r\n")


def test_8bit_parts_become_quoted_printable(env):
    d, cf = env
    body = multipart().replace(b"\r\n.", b"\r\n..")
    send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org> BODY=8BITMIME\r\n"
             b"RCPT TO:<a@ext.example>\r\nDATA\r\n" + body + b"\r\n.\r\nQUIT\r\n")
    raw, msg = delivered(d)
    parts = list(msg.walk())
    text = [p for p in parts if p.get_content_type() == "text/plain"]
    assert text[0]["Content-Transfer-Encoding"] == "quoted-printable"
    # smtp-sink writes LF line ends
    assert text[0].get_payload(decode=True) == TEXT
    # the line end before a boundary belongs to the boundary (RFC 2046 5.1.1)
    assert text[1].get_payload(decode=True) == b"inner \xe9t\xe9"
    assert b"preamble" in raw and b"epilogue" in raw
    assert b"X-Mail-Args: <s@example.org>\n" in raw  # no BODY=8BITMIME sent


def test_undeclared_8bit_plain_message_gets_mime_headers(env):
    d, cf = env
    send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<a@ext.example>\r\n"
             b"DATA\r\nSubject: plain\r\n\r\n" + TEXT.replace(b"\n", b"\r\n") +
             b"\r\n.\r\nQUIT\r\n")
    raw, msg = delivered(d)
    assert msg["MIME-Version"] == "1.0"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    # smtp-sink writes LF line ends and a line end for the final dot
    assert msg.get_payload(decode=True).rstrip(b"\n") == TEXT


def test_binarymime_becomes_base64(env):
    d, cf = env
    body = (b"Subject: bin\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + BLOB)
    send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org> BODY=BINARYMIME\r\n"
             b"RCPT TO:<a@ext.example>\r\nBDAT %d LAST\r\n" % len(body) + body +
             b"QUIT\r\n")
    raw, msg = delivered(d)
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_payload(decode=True) == BLOB  # base64 lines: no line end games


def test_8bit_attachment_keeps_its_crlf_octets(env):
    """An 8bit application/* part of 8BITMIME mail (stored with LF line
    ends) is base64 of the octets sent, CRLF included (RFC 2045 2.8): a
    Windows text file or signed data decodes as it was attached."""
    d, cf = env
    att = b"line1\r\nline\xff2\r\n\r\nend"
    send_8bitmime(cf, b"Subject: att\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                      b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                      b"--b\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Transfer-Encoding: 8bit\r\n\r\n" + att +
                      b"\r\n--b--\r\n")
    raw, msg = delivered(d)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert parts[1]["Content-Transfer-Encoding"] == "base64"
    assert parts[1].get_payload(decode=True) == att
    assert parts[0].get_payload(decode=True) == b"hi"


def test_long_8bit_attachment_keeps_every_crlf(env):
    """Lines of every length, so that a CRLF falls on each side of the
    57-octet boundary of a base64 line: every octet comes back."""
    d, cf = env
    att = b"".join(b"\xff" * k + b"\r\n" for k in range(300))
    send_8bitmime(cf, b"Subject: att\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                      b"--b\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Transfer-Encoding: 8bit\r\n\r\n" + att +
                      b"\r\n--b--\r\n")
    raw, msg = delivered(d)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert parts[0]["Content-Transfer-Encoding"] == "base64"
    assert parts[0].get_payload(decode=True) == att


def test_8bit_header_cannot_be_converted_and_bounces(env):
    d, cf = env
    send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<a@ext.example>\r\n"
             b"DATA\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert glob.glob(os.path.join(d, "sink", "*")) == []
    bounces = glob.glob(os.path.join(d, "bounces", "new", "*"))
    assert len(bounces) == 1
    report = email.message_from_bytes(open(bounces[0], "rb").read())
    # the original's header is 8-bit: the report has the global types
    assert report.get_param("report-type") == "global-delivery-status"
    status = [p for p in report.walk()
              if p.get_content_type() == "message/global-delivery-status"]
    text = status[0].as_string()
    assert "Status: 5.6.3" in text
    assert "8-bit octets in a header field" in text


def send_8bitmime(cf, body):
    return send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org> BODY=8BITMIME\r\n"
                    b"RCPT TO:<a@ext.example>\r\nDATA\r\n" +
                body.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\nQUIT\r\n")


def test_cte_folded_after_its_colon_is_replaced(env):
    # RFC 5322 2.2.3 allows the fold right after the colon; the old field
    # must go, or the part has two encodings and decodes as the first
    d, cf = env
    send_8bitmime(cf, b"Subject: fold\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: text/plain; charset=utf-8\r\n"
                      b"Content-Transfer-Encoding:\r\n 8bit\r\n\r\n"
                      b"caf\xc3\xa9\r\n")
    raw, msg = delivered(d)
    assert msg.get_all("Content-Transfer-Encoding") == ["quoted-printable"], raw
    assert msg.get_payload(decode=True).rstrip(b"\n") == b"caf\xc3\xa9"


LONG = b"X-Long: " + b"a" * 1200


def max_line(raw):
    return max(len(line) for line in raw.split(b"\n"))


def test_ascii_declared_8bitmime_goes_unconverted(env):
    # BODY=8BITMIME on ASCII content (common from MUAs labelling ASCII
    # "8bit"): the content decides; a long header line is folded on the
    # wire as for any 7-bit mail, not a reason to bounce
    d, cf = env
    body = (b"Subject: ascii\r\n" + LONG + b"\r\n\r\nshort\r\n" +
            b"b" * 1200 + b"\r\n")
    send_8bitmime(cf, body)
    assert glob.glob(os.path.join(d, "bounces", "new", "*")) == []
    raw, msg = delivered(d)
    assert max_line(raw) <= 998
    assert msg["Content-Transfer-Encoding"] is None, raw[:300]
    assert msg["Content-Type"] is None, raw[:300]
    assert msg["X-Long"].replace("\n", "").replace(" ", "") == "a" * 1200
    assert b"X-Mail-Args: <s@example.org>\n" in raw  # no BODY=8BITMIME


def test_8bit_body_with_a_long_header_line_is_converted(env):
    d, cf = env
    send_8bitmime(cf, b"Subject: long\r\n" + LONG + b"\r\n"
                      b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                      b"caf\xc3\xa9\r\n")
    assert glob.glob(os.path.join(d, "bounces", "new", "*")) == []
    raw, msg = delivered(d)
    assert max_line(raw) <= 998
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_payload(decode=True).rstrip(b"\n") == b"caf\xc3\xa9"


def test_ascii_part_encoded_for_its_long_line_stays_us_ascii(env):
    # in a message converted for another part, an untyped ASCII part whose
    # line is too long is encoded, and is not labelled an unknown 8-bit
    # charset
    d, cf = env
    send_8bitmime(cf, b"Subject: mixed\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                      b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                      b"caf\xc3\xa9\r\n--b\r\n\r\n" + b"c" * 1200 +
                      b"\r\n--b--\r\n")
    raw, msg = delivered(d)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert parts[1]["Content-Type"] == "text/plain; charset=us-ascii", raw
    assert parts[1].get_payload(decode=True) == b"c" * 1200


def test_boundary_inside_another_quoted_parameter_is_not_the_boundary(env):
    # RFC 2045 5.1: a quoted-string may hold ";" and "boundary="
    d, cf = env
    send_8bitmime(cf, b"Subject: q\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; foo=\"; boundary=evil\";"
                      b" boundary=good\r\n\r\n"
                      b"--good\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                      b"caf\xc3\xa9\r\n--good\r\nContent-Type: text/plain\r\n\r\n"
                      b"two\r\n--good--\r\n")
    assert glob.glob(os.path.join(d, "bounces", "new", "*")) == []
    raw, msg = delivered(d)
    parts = [p.get_payload(decode=True) for p in msg.walk()
             if not p.is_multipart()]
    assert parts == [b"caf\xc3\xa9", b"two"], raw


def test_boundary_after_a_comment_is_found(env):
    # RFC 5322 CFWS: a comment, even one holding ";", may precede the name
    d, cf = env
    send_8bitmime(cf, b"Subject: c\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; (a; b=c)boundary = good\r\n"
                      b"\r\n--good\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"\r\ncaf\xc3\xa9\r\n--good--\r\n")
    raw, msg = delivered(d)
    # the part converted on its own, the delimiters kept as they were
    assert b"\n--good\nContent-Type: text/plain; charset=utf-8\n" in raw, raw
    assert b"\ncaf=C3=A9\n--good--\n" in raw, raw


def test_nothing_stays_labelled_8bit(env):
    # RFC 2045 6.4: once its parts are 7-bit a multipart or message is
    # 7bit; a 7-bit leaf labelled 8bit would claim 8BITMIME's data
    d, cf = env
    send_8bitmime(cf, b"Subject: labels\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=b\r\n"
                      b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                      b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"Content-Transfer-Encoding: 8BIT\r\n\r\ncaf\xc3\xa9\r\n"
                      b"--b\r\nContent-Type: message/rfc822\r\n"
                      b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                      b"Subject: in\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"\r\nna\xc3\xafve\r\n"
                      b"--b\r\nContent-Type: text/plain\r\n"
                      b"Content-Transfer-Encoding: 8bit (ascii really)\r\n\r\n"
                      b"plain\r\n--b--\r\n")
    raw, msg = delivered(d)
    ctes = {p.get_content_type() + ":" + p.get_payload(decode=False)[:5]
            if not p.is_multipart() and p.get_content_type() == "text/plain"
            else p.get_content_type(): p.get_all("Content-Transfer-Encoding")
            for p in msg.walk()}
    assert b"8bit" not in raw.lower(), raw
    assert ctes["multipart/mixed"] == ["7bit"], ctes
    assert ctes["message/rfc822"] == ["7bit"], ctes
    assert ctes["text/plain:plain"] == ["7bit"], ctes
    assert ctes["text/plain:caf=C"] == ["quoted-printable"], ctes
    leaves = [p.get_payload(decode=True) for p in msg.walk()
              if not p.is_multipart() and p.get_content_type() == "text/plain"]
    assert leaves == [b"caf\xc3\xa9", b"na\xc3\xafve", b"plain"], leaves


def test_digest_part_without_content_type_stays_a_message(env):
    # RFC 2046 5.1.5: in a multipart/digest a part is message/rfc822 unless
    # it says otherwise; its inner entity is converted, not the whole part
    d, cf = env
    send_8bitmime(cf, b"Subject: digest\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
                      b"--d\r\n\r\nSubject: m1\r\n"
                      b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                      b"body \xc3\xa9\r\n"
                      b"--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n"
                      b"--d--\r\n")
    raw, msg = delivered(d)
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/digest", "message/rfc822", "text/plain",
                     "text/plain"], raw
    inner = list(msg.walk())[2]  # the enclosed message itself
    assert inner["Subject"] == "m1", raw
    assert inner["Content-Type"] == "text/plain; charset=utf-8", raw
    assert inner.get_payload(decode=True) == b"body \xc3\xa9"
    assert b"Content-Type: text/plain; charset=unknown-8bit" not in raw


def test_conversion_memory_does_not_grow_with_the_message(env):
    # SPEC 5/11: a 9 MB 8-bit message converted for a 7-bit next hop by
    # the flusher stays within the 8 MiB target (the whole converted
    # message used to be built in memory: 38 MB)
    d, cf = env
    port = free_port()
    with open(cf, "a") as f:
        f.write("@later.example [127.0.0.1]:%d\n" % port)
    body = (b"Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
            ("é".encode() * 38 + b"\r\n") * 120000)
    send(cf, b"EHLO c\r\nMAIL FROM:<s@example.org> BODY=8BITMIME\r\n"
             b"RCPT TO:<a@later.example>\r\nDATA\r\n" + body +
             b"\r\n.\r\nQUIT\r\n")
    dump = os.path.join(d, "later")
    os.mkdir(dump)
    os.chmod(dump, 0o1777)
    sink = subprocess.Popen([SINK] + (["-u", "nobody"] if ROOT else []) +
                            ["-8", "-d", os.path.join(dump, "%M."),
                             "127.0.0.1:%d" % port, "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        p = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M", POSTMASTER,
                            "--flush", "--now", "--config=" + cf],
                           capture_output=True, timeout=120)
        err = p.stderr.decode(errors="replace")
        assert "status=sent" in err, err
        rss_kib = int(re.search(r"maxrss=(\d+)", err).group(1))
        # a sanitizer's shadow memory is no measure of ours
        assert SANITIZED or rss_kib < 8192, err
        (path,) = glob.glob(os.path.join(dump, "*"))
        msg = email.message_from_binary_file(open(path, "rb"),
                                             policy=email.policy.compat32)
        assert msg["Content-Transfer-Encoding"] == "quoted-printable"
        assert msg.get_payload(decode=True).rstrip(b"\n") == \
            body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n").rstrip(b"\n")
    finally:
        sink.kill()
        sink.wait()


def test_large_parts_read_again_convert_exactly(env):
    # parts well over the window of pages given back while converting:
    # the part scanned for its boundary is read again, and must come out
    # the same
    d, cf = env
    big8 = ("ü".encode() * 30 + b" x\r\n") * 25000
    big7 = (b"seven bit " * 7 + b"\r\n") * 25000
    send_8bitmime(cf, b"Subject: parts\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=z\r\n\r\n"
                      b"--z\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
                      big8 + b"--z\r\nContent-Type: text/plain\r\n\r\n" + big7 +
                      b"--z\r\nContent-Type: application/octet-stream\r\n\r\n" +
                      big8 + b"--z--\r\n")
    raw, msg = delivered(d)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    # text decodes with the sink's LF line ends, base64 to the octets sent
    want = [big8.replace(b"\r\n", b"\n")[:-1],
            big7.replace(b"\r\n", b"\n")[:-1], big8[:-2]]
    assert [p.get_payload(decode=True) for p in parts] == want
    assert [p["Content-Transfer-Encoding"] for p in parts] == \
        ["quoted-printable", None, "base64"]


def test_declared_encodings_with_raw_octets_keep_their_meaning(env):
    # a part declared quoted-printable that carries raw UTF-8 (broken
    # mailers): only the raw octets are escaped, its own =XX escapes are
    # not encoded again; raw octets in base64 are not base64 and go
    d, cf = env
    long_qp = b"=C3=A9" * 12 + b"\xc3\xa9" * 10
    send_8bitmime(cf, b"Subject: qp\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=q\r\n\r\n"
                      b"--q\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                      b"caf=C3=A9 na\xc3\xafve=\r\n joined\r\n" + long_qp +
                      b"\r\n--q\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Transfer-Encoding: base64\r\n\r\n"
                      b"aGVs\xffbG8=\r\n--q--\r\n")
    raw, msg = delivered(d)
    qp, b64 = [p for p in msg.walk() if not p.is_multipart()]
    assert qp["Content-Transfer-Encoding"] == "quoted-printable"
    assert qp.get_payload(decode=True) == \
        "café naïve joined\n".encode() + "é".encode() * 22
    assert max_line(qp.get_payload().encode()) <= 76
    assert b64.get_payload(decode=True) == b"hello"


@pytest.mark.parametrize("smtputf8", [b" SMTPUTF8", b""])
def test_ret_full_bounce_of_a_utf8_header_reaches_a_7bit_sender(env, smtputf8):
    # RET=FULL bounce of a message whose header is UTF-8, with SMTPUTF8
    # or without it (raw UTF-8 in a plain message, as many clients send
    # it), to a sender behind the 7-bit next hop: the message goes back as
    # message/global (RFC 6532 3.7, RFC 6533), which may be base64-encoded,
    # not as message/rfc822, which may not. It once failed with 554 5.6.3
    # "8-bit octets in a header field" and went to postmaster instead.
    d, cf = env
    with open(cf, "a") as f:
        f.write('x@example.org "|exit 67" , %s/keep/\n' % d)
    original = b"Subject: caf\xc3\xa9\r\nFrom: <s@ext.example>\r\n\r\nbody\r\n"
    p = send(cf, b"EHLO c\r\nMAIL FROM:<s@ext.example> RET=FULL" + smtputf8 +
                 b"\r\nRCPT TO:<x@example.org>\r\nDATA\r\n" + original +
                 b".\r\nQUIT\r\n")
    assert b"5.6.3" not in p.stderr and b"to=postmaster" not in p.stderr, p.stderr
    raw, report = delivered(d)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "global-delivery-status"
    part = raw.split(b"Content-Description: Undelivered Message\n", 1)[1]
    head, body = part.split(b"\n\n", 1)
    assert head == (b"Content-Type: message/global\n"
                    b"Content-Transfer-Encoding: base64"), raw
    # the encoded message is the one sent, its line ends CRLF (RFC 2045 2.8)
    assert base64.b64decode(body.split(b"\n--", 1)[0]).endswith(
        b"\r\n" + original)
