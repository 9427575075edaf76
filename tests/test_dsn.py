"""Delivery status notifications as senders ask for them (RFC 3461,
issue 14): NOTIFY=NEVER fails without a report; with NOTIFY=FAILURE the
RFC 3464 report carries the client's ENVID (Original-Envelope-Id) and
ORCPT (Original-Recipient), and returns the whole message for RET=FULL
and the headers for RET=HDRS (and by default).

Every report is parsed with Python's email package and checked field by
field. Sessions run over pipes; the failing target is a mailer that exits
67 (EX_NOUSER), so the failure is permanent and reported at once.

POSTMASTER names the binary under test; every output is searched for
sanitizer reports.
"""
import email
import os
import re
import subprocess
import time

import pytest

from pmtest import POSTMASTER, wait_for

from test_spool import (HOST, QUEUED, Session, flush, maildir_files, mkdir, queue,
                        read_bytes, read_text, smtp_data, spool_files, tmp,
                        write_cf)

assert tmp  # the fixture, imported for the tests below

ROUTES = ('x@example.net "|exit 67" , @DIR@/keep/\n'
          "s@example.net @DIR@/sender/\n"
          "postmaster @DIR@/pm/\n")
MESSAGE = (b"From: s@example.net\n"
           b"To: x@example.net\n"
           b"Subject: dsn test\n"
           b"X-Marker: dsn-marker\n"
           b"\n"
           b"the body line that RET=HDRS leaves out\n")


def transaction(cf, mail_params="", rcpt_params=""):
    """One session, one transaction to x@example.net: (queue id, log)."""
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net>" + mail_params, "250 ")
    s.cmd("RCPT TO:<x@example.net>" + rcpt_params, "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    r = s.reply()[-1]
    log = s.end()
    m = QUEUED.match(r)
    assert m, r
    return m[1], log


def the_report(tmp, kind="delivery-status"):
    reports = maildir_files(tmp + "/sender")
    assert len(reports) == 1, reports
    b = email.message_from_bytes(read_bytes(reports[0]))
    assert b.get_content_type() == "multipart/report"
    assert b.get_param("report-type") == kind
    return b


def status_blocks(report):
    parts = report.get_payload()
    if parts[1].get_content_type() == "message/global-delivery-status":
        # RFC 6533: the same fields, in a type Python's email package
        # reads as one message: its blocks parsed here
        raw = parts[1].get_payload()
        raw = raw[0].as_string() if isinstance(raw, list) else raw
        return [email.message_from_string(block)
                for block in raw.strip("\n").split("\n\n")][:2]
    assert parts[1].get_content_type() == "message/delivery-status"
    per_msg, per_rcpt = parts[1].get_payload()
    return per_msg, per_rcpt


def test_notify_never_failure_leaves_no_bounce_anywhere(tmp):
    cf = write_cf(tmp, ROUTES)
    qid, log = transaction(cf, " RET=FULL ENVID=never-1",
                           " NOTIFY=NEVER ORCPT=rfc822;x@example.net")
    assert re.search(r"id=%s .*to=<x@example\.net> .*status=queued "
                     r"dsn-notify=never " % qid, log), log
    assert re.search(r"id=%s .*to=<x@example\.net> .*status=bounced "
                     r"dsn=5\.1\.1 dsn-notify=never " % qid, log), log
    assert re.search(r"id=%s to=<x@example\.net> event=bounce "
                     r"status=not-sent dsn-notify=never" % qid, log), log
    assert "bounce-id=" not in log, log
    flush(cf, "--now")
    assert maildir_files(tmp + "/sender") == []
    assert maildir_files(tmp + "/pm") == []
    assert len(maildir_files(tmp + "/keep")) == 1
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


def test_notify_success_only_reports_the_expansion_not_the_failure(tmp):
    """x@ reaches a mailer that fails and a Maildir that takes it: with
    NOTIFY=SUCCESS the sender hears that x@ was expanded (RFC 3461
    6.2.7.3), and of nothing its targets do."""
    cf = write_cf(tmp, ROUTES)
    _, log = transaction(cf, "", " NOTIFY=SUCCESS")
    assert "status=not-sent dsn-notify=never" in log, log
    assert maildir_files(tmp + "/pm") == []
    per_msg, per_rcpt = status_blocks(the_report(tmp))
    assert per_rcpt["Action"] == "expanded", str(per_rcpt)
    assert per_rcpt["Status"] == "2.0.0", str(per_rcpt)


def test_failure_report_with_envid_orcpt_and_whole_message(tmp):
    cf = write_cf(tmp, ROUTES)
    qid, log = transaction(cf, " RET=FULL ENVID=QQ+2B314+3D",
                           " NOTIFY=FAILURE,DELAY "
                           "ORCPT=rfc822;Original+2Bx@example.org")
    assert re.search(r"id=%s .*status=bounced .*dsn-notify=failure,delay "
                     % qid, log), log
    b = the_report(tmp)
    parts = b.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/delivery-status", "message/rfc822"]
    per_msg, per_rcpt = status_blocks(b)
    assert per_msg["Original-Envelope-Id"] == "QQ+314=", dict(per_msg)
    assert per_rcpt["Original-Recipient"] == \
        "rfc822; Original+x@example.org", dict(per_rcpt)
    assert per_rcpt["Final-Recipient"] == "rfc822; x@example.net"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    returned = parts[2].get_payload()[0]
    assert returned["X-Marker"] == "dsn-marker"
    assert returned.get_payload() == \
        "the body line that RET=HDRS leaves out\n"
    assert "Your message follows" in parts[0].get_payload()


def test_a_utf8_orcpt_stays_in_its_xtext(tmp):
    """An ORCPT whose address decodes to UTF-8 is shown as the xtext it
    came in, not decoded (its non-ASCII bytes once became spaces:
    'j  e@example.net')."""
    cf = write_cf(tmp, ROUTES)
    transaction(cf, " SMTPUTF8", " NOTIFY=FAILURE ORCPT=utf-8;j+C3+B6e@example.net")
    per_msg, per_rcpt = status_blocks(the_report(tmp, "global-delivery-status"))
    assert per_rcpt["Original-Recipient"] == "utf-8; j+C3+B6e@example.net", \
        str(per_rcpt)


@pytest.mark.parametrize("ret, returned", [
    (" RET=FULL", "message/global"),
    (" RET=HDRS", "message/global-headers")])
def test_the_report_on_an_smtputf8_message_has_the_global_types(
        tmp, ret, returned):
    """RFC 6533: a report on an internationalised message is a
    global-delivery-status report, and what it returns is message/global
    or message/global-headers, whose header may be UTF-8 (they were
    message/delivery-status and message/rfc822, which must be ASCII)."""
    cf = write_cf(tmp, ROUTES)
    qid, log = transaction(cf, " SMTPUTF8" + ret, " NOTIFY=FAILURE")
    b = the_report(tmp, "global-delivery-status")
    parts = b.get_payload()
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/global-delivery-status", returned]
    per_msg, per_rcpt = status_blocks(b)
    assert per_msg["X-Postmaster-Queue-ID"] == qid, str(per_msg)
    assert per_rcpt["Final-Recipient"] == "rfc822; x@example.net"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert b"X-Marker: dsn-marker" in b.as_bytes()


def test_failure_report_with_ret_hdrs_returns_headers_only(tmp):
    cf = write_cf(tmp, ROUTES)
    transaction(cf, " RET=HDRS ENVID=hdrs-1", " NOTIFY=FAILURE")
    b = the_report(tmp)
    parts = b.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    raw = b.as_bytes()
    assert b"X-Marker: dsn-marker" in raw
    assert b"RET=HDRS leaves out" not in raw
    per_msg, per_rcpt = status_blocks(b)
    assert per_msg["Original-Envelope-Id"] == "hdrs-1"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Original-Recipient"] is None  # no ORCPT, no alias


@pytest.mark.parametrize("limit", ["100", "0"])
def test_ret_full_past_the_limit_returns_headers_only(tmp, limit):
    # RET=FULL returns the whole message only up to core.bounce-size-limit
    # (0: never); past it the headers come back, the MIME structure whole
    cf = write_cf(tmp, ROUTES, core="bounce-size-limit = %s\n" % limit)
    transaction(cf, " RET=FULL ENVID=big-1", " NOTIFY=FAILURE")
    b = the_report(tmp)
    parts = b.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    raw = b.as_bytes()
    assert b"X-Marker: dsn-marker" in raw
    assert b"RET=HDRS leaves out" not in raw
    per_msg, per_rcpt = status_blocks(b)
    assert per_msg["Original-Envelope-Id"] == "big-1"
    assert per_rcpt["Action"] == "failed"


def test_ret_full_of_a_large_message_returns_headers_by_default(tmp):
    """The default limit is Postfix's 50000 bytes: a 60 kB message that
    the listener took (max-message-size 10240000) comes back as its
    headers, not as a report the sender's server may refuse."""
    cf = write_cf(tmp, ROUTES)
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net> RET=FULL", "250 ")
    s.cmd("RCPT TO:<x@example.net> NOTIFY=FAILURE", "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE + (b"y" * 70 + b"\n") * 850))
    assert QUEUED.match(s.reply()[-1])
    s.end()
    b = the_report(tmp)
    parts = b.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"X-Marker: dsn-marker" in b.as_bytes()
    assert b"yyyy" not in b.as_bytes()


def test_without_dsn_parameters_the_bounce_is_as_before(tmp):
    cf = write_cf(tmp, ROUTES)
    qid, log = transaction(cf)
    assert "dsn-notify" not in log, log
    b = the_report(tmp)
    parts = b.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    per_msg, per_rcpt = status_blocks(b)
    assert per_msg["Original-Envelope-Id"] is None
    assert per_rcpt["Action"] == "failed"
    assert b"RET=HDRS leaves out" not in b.as_bytes()


def test_queue_shows_the_requested_notifications(tmp):
    """A relay that is not there: the message waits, and --queue says
    what the client asked to hear about."""
    from test_spool import closed_port
    port = closed_port()
    cf = write_cf(tmp, "y@remote.example [127.0.0.1]:%d\n"
                  "s@example.net @DIR@/sender/\n" % port)
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net> RET=HDRS ENVID=q1", "250 ")
    s.cmd("RCPT TO:<y@remote.example> NOTIFY=DELAY,FAILURE", "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    r = s.reply()[-1]
    s.end()
    qid = QUEUED.match(r)[1]
    out = subprocess.run([POSTMASTER, "--config=" + cf, "--queue"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = [l for l in out.stdout.splitlines() if "<y@remote.example>" in l]
    assert len(line) == 1 and line[0].endswith(" notify=failure,delay"), \
        out.stdout
    assert out.stdout.startswith(qid + " "), out.stdout


SUCCESS_ROUTES = ("m@example.net @DIR@/mbox/\n"
                  "p@example.net keep\n"
                  "s@example.net @DIR@/sender/\n"
                  "postmaster @DIR@/pm/\n")
KEEP_MAILER = '[pipe "keep"]\nexec = /bin/sh -c "cat >> @DIR@/piped"\n'


def success_session(cf, rcpts):
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net> RET=FULL ENVID=ok-1", "250 ")
    for r, params in rcpts:
        s.cmd("RCPT TO:<%s>%s" % (r, params), "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    r = s.reply()[-1]
    log = s.end()
    return r, log


def test_notify_success_on_local_delivery_reports_delivered(tmp):
    """A Maildir and a pipe mailer, both on the direct path without DSN:
    with NOTIFY=SUCCESS the message goes through the spool and the
    flusher sends one "delivered" report for both."""
    mkdir(tmp + "/mbox")
    cf = write_cf(tmp, SUCCESS_ROUTES, extra=KEEP_MAILER)
    r, log = success_session(cf, [
        ("m@example.net", " NOTIFY=SUCCESS ORCPT=rfc822;box+2Bm@example.org"),
        ("p@example.net", " NOTIFY=SUCCESS,FAILURE")])
    qid = QUEUED.match(r)
    assert qid, r
    assert re.search(r"id=%s event=report action=delivered report-id=" % qid[1],
                     log), log
    assert len(maildir_files(tmp + "/mbox")) == 1
    assert b"X-Marker: dsn-marker" in open(tmp + "/piped", "rb").read()
    b = the_report(tmp)
    assert b["Subject"] == "Successful Mail Delivery Report"
    parts = b.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"RET=HDRS leaves out" not in b.as_bytes()  # headers only
    blocks = parts[1].get_payload()
    per_msg, rcpts = blocks[0], blocks[1:]
    assert per_msg["Original-Envelope-Id"] == "ok-1"
    got = {x["Final-Recipient"]: x for x in rcpts}
    assert sorted(got) == ["rfc822; m@example.net", "rfc822; p@example.net"]
    for x in rcpts:
        assert x["Action"] == "delivered", str(x)
        assert x["Status"].startswith("2."), str(x)
    assert got["rfc822; m@example.net"]["Original-Recipient"] == \
        "rfc822; box+m@example.org"
    assert queue(cf) == {}


def test_notify_success_to_a_discard_reports_delivered_and_leaves_nothing(tmp):
    """A recipient routed to `discard` with NOTIFY=SUCCESS: the message
    goes through the spool, is done at once (logged as sent to the
    discard target), the sender gets a "delivered" report, and the spool
    is empty. The discard was once left out of the spooled envelope: an
    envelope without targets, kept for ever as damaged, and no report."""
    cf = write_cf(tmp, "d@example.net discard\n" + SUCCESS_ROUTES,
                  extra=KEEP_MAILER)
    r, log = success_session(cf, [("d@example.net", " NOTIFY=SUCCESS")])
    qid = QUEUED.match(r)
    assert qid, r
    assert re.search(r"id=%s .*to=<d@example\.net> target=discard "
                     r"status=sent .*reply=\"250 2\.0\.0 discarded\"" % qid[1],
                     log), log
    assert re.search(r"id=%s event=report action=delivered report-id=" % qid[1],
                     log), log
    per_msg, per_rcpt = status_blocks(the_report(tmp))
    assert per_rcpt["Final-Recipient"] == "rfc822; d@example.net"
    assert per_rcpt["Action"] == "delivered", str(per_rcpt)
    assert queue(cf) == {}
    assert spool_files(tmp + "/spool") == []


def test_without_notify_success_the_direct_path_stays(tmp):
    mkdir(tmp + "/mbox")
    cf = write_cf(tmp, SUCCESS_ROUTES, extra=KEEP_MAILER)
    r, log = success_session(cf, [("m@example.net", " NOTIFY=FAILURE")])
    assert r.startswith("250 ") and not QUEUED.match(r), r
    assert re.search(r"to=<m@example\.net> .*status=sent dsn=2\.0\.0 "
                     r"dsn-notify=failure ", log), log
    assert len(maildir_files(tmp + "/mbox")) == 1
    assert maildir_files(tmp + "/sender") == []


def deferred_session(tmp, core):
    """A message to a relay that is not there: it waits in the spool."""
    from test_spool import closed_port
    cf = write_cf(tmp, "y@remote.example [127.0.0.1]:%d\n"
                  "s@example.net @DIR@/sender/\n"
                  "postmaster @DIR@/pm/\n" % closed_port(), core=core)
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net> ENVID=slow-1", "250 ")
    s.cmd("RCPT TO:<y@remote.example> NOTIFY=DELAY,FAILURE", "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    r = s.reply()[-1]
    log = s.end()
    qid = QUEUED.match(r)[1]
    assert re.search(r"id=%s .*status=deferred" % qid, log), log
    return cf, qid


def reports_in(tmp):
    return [email.message_from_bytes(read_bytes(p))
            for p in maildir_files(tmp + "/sender")]


def test_delay_report_once_then_the_final_report(tmp):
    # 3 s: the session's own first attempt, slow under the sanitizers,
    # must come before the warning time
    cf, qid = deferred_session(tmp, "delay-warning-time = 3s\n")
    assert reports_in(tmp) == []
    time.sleep(3.2)
    r = flush(cf, "--now")
    assert re.search(r"id=%s event=report action=delayed report-id=" % qid,
                     r.stderr), r.stderr
    (delayed,) = reports_in(tmp)
    assert delayed["Subject"] == "Delayed Mail (still being retried)"
    per_msg, per_rcpt = status_blocks(delayed)
    assert per_msg["Original-Envelope-Id"] == "slow-1"
    assert per_rcpt["Action"] == "delayed", str(per_rcpt)
    assert per_rcpt["Status"].startswith("4."), str(per_rcpt)
    assert delayed.get_payload()[2].get_content_type() == "text/rfc822-headers"
    # later runs send no second delay report
    r = flush(cf, "--now")
    assert "action=delayed" not in r.stderr, r.stderr
    assert len(reports_in(tmp)) == 1
    # the end of the queue lifetime: the final report
    r = flush(cf, "--now", "--core-queue-lifetime=0s")
    assert re.search(r"id=%s event=bounce bounce-id=" % qid, r.stderr), r.stderr
    reports = reports_in(tmp)
    assert len(reports) == 2
    failed = [b for b in reports
              if b["Subject"] == "Undelivered Mail Returned to Sender"]
    assert len(failed) == 1
    assert status_blocks(failed[0])[1]["Action"] == "failed"
    assert queue(cf) == {}


def test_delay_warning_time_0_sends_no_delay_report(tmp):
    cf, qid = deferred_session(tmp, "delay-warning-time = 0\n")
    time.sleep(1.2)
    r = flush(cf, "--now")
    assert "action=delayed" not in r.stderr, r.stderr
    assert reports_in(tmp) == []


def test_notify_success_to_an_alias_reports_one_expansion(tmp):
    """RFC 3461 6.2.7.3: a recipient that becomes several addresses gets
    one "expanded" report, not one "delivered" per address; SUCCESS is
    not asked of the addresses."""
    mkdir(tmp + "/mb1")
    mkdir(tmp + "/mb2")
    cf = write_cf(tmp, "list@example.net @DIR@/mb1/ , @DIR@/mb2/\n" +
                  SUCCESS_ROUTES, extra=KEEP_MAILER)
    r, log = success_session(cf, [("list@example.net", " NOTIFY=SUCCESS"),
                                  ("m@example.net", " NOTIFY=SUCCESS")])
    qid = QUEUED.match(r)
    assert qid, r
    assert re.search(r"id=%s event=report action=expanded report-id=" % qid[1],
                     log), log
    assert len(maildir_files(tmp + "/mb1")) == 1
    assert len(maildir_files(tmp + "/mb2")) == 1
    reports = [email.message_from_bytes(read_bytes(p))
               for p in maildir_files(tmp + "/sender")]
    assert len(reports) == 2, log  # the expansion, m@'s delivery
    blocks = {}
    for b in reports:
        for x in b.get_payload()[1].get_payload()[1:]:
            blocks.setdefault(x["Final-Recipient"], []).append(x)
    assert sorted(blocks) == ["rfc822; list@example.net",
                              "rfc822; m@example.net"], blocks
    (ls,) = blocks["rfc822; list@example.net"]
    assert ls["Action"] == "expanded" and ls["Status"] == "2.0.0", str(ls)
    (m,) = blocks["rfc822; m@example.net"]
    assert m["Action"] == "delivered", str(m)
    assert queue(cf) == {}


def test_a_recipient_given_twice_is_no_expansion(tmp):
    """Two RCPTs of one address spool the same target twice: that is not
    an alias, and NOTIFY=SUCCESS hears "delivered", not "expanded"."""
    mkdir(tmp + "/mbox")
    cf = write_cf(tmp, SUCCESS_ROUTES, extra=KEEP_MAILER)
    r, log = success_session(cf, [("m@example.net", " NOTIFY=SUCCESS"),
                                  ("m@example.net", " NOTIFY=SUCCESS")])
    assert QUEUED.match(r), r
    assert "action=expanded" not in log, log
    actions = [x["Action"]
               for p in maildir_files(tmp + "/sender")
               for x in email.message_from_bytes(read_bytes(p))
               .get_payload()[1].get_payload()[1:]]
    assert actions and set(actions) == {"delivered"}, actions


@pytest.mark.parametrize("first", [" NOTIFY=SUCCESS", ""])
def test_lmtp_address_twice_one_with_notify_success_is_delivered_once(
        tmp, first):
    """LMTP: one address given twice, once with NOTIFY=SUCCESS (in either
    order): both RCPTs go through the spool, one copy arrives and each
    RCPT hears the same "queued" reply (the spooled one and a direct run
    each delivered a copy)."""
    mkdir(tmp + "/mbox")
    cf = write_cf(tmp, SUCCESS_ROUTES, extra=KEEP_MAILER)
    s = Session(cf).start()
    s.cmd("LHLO client.example", "250 ")
    s.cmd("MAIL FROM:<s@example.net>", "250 ")
    s.cmd("RCPT TO:<m@example.net>" + first, "250 ")
    s.cmd("RCPT TO:<M@example.net>" + (" NOTIFY=SUCCESS" if not first
                                       else ""), "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    replies = [s.reply()[-1], s.reply()[-1]]
    log = s.end()
    assert all(QUEUED.match(r) for r in replies), replies
    assert replies[0] == replies[1], replies
    assert len(maildir_files(tmp + "/mbox")) == 1, log


def test_a_report_to_a_sender_with_a_blank_never_reaches_a_mailer(tmp):
    """RCPT refuses an address with a blank bound for a mailer, whose
    RCPT_TO separates addresses by blanks; the same address as MAIL FROM
    is taken, and the bounce to it must not hand the catch-all pipe an
    RCPT_TO in which a script that splits it reads victim@example.net.
    The report's delivery fails 553 5.1.3 instead."""
    cf = write_cf(tmp, 'x@example.net "|exit 67"\n'
                       "k@example.net @DIR@/keep/\n"
                       "postmaster @DIR@/postmaster/\n"
                       "@example.org list\n",
                  extra='[pipe "list"]\n'
                        'exec = /bin/sh -c "echo $RCPT_TO >> @DIR@/list; '
                        'cat > /dev/null"\n'
                        "max_rcpt_to = 10\n")
    sender = '"x victim@example.net y"@example.org'
    s = Session(cf).start()
    r = s.mail(sender, ["x@example.net", "k@example.net"], MESSAGE)
    assert QUEUED.match(r), r
    log = s.end()
    assert len(maildir_files(tmp + "/keep")) == 1
    assert re.search(r'from=<> to="<\\"x victim@example.net y\\"@example.org>"'
                     r'.* status=bounced dsn=5\.1\.3 ', log), log
    assert not os.path.exists(tmp + "/list"), read_text(tmp + "/list")
    # the failed bounce is postmaster's (here, not the host's root)
    assert len(maildir_files(tmp + "/postmaster")) == 1, log


@pytest.mark.parametrize("pad, where, kind", [
    (110, "header", "global-delivery-status"),
    (10, "header", "global-delivery-status"),
    (110, "body", "delivery-status")])
def test_ret_full_report_type_follows_the_returned_header(tmp, pad, where, kind):
    """The report type was chosen from the first 64 KiB of the header,
    but RET=FULL returns the whole message: an 8-bit field after 77 kB of
    header came back raw in message/rfc822, which no 7-bit hop may carry
    (RFC 2046 5.2.1). The type now follows the header of what goes back;
    8-bit octets in the body alone still leave it message/rfc822."""
    cf = write_cf(tmp, ROUTES, core="bounce-size-limit = 1M\n")
    head = b"".join(b"X-Pad-%d: %s\n" % (i, b"a" * 700) for i in range(pad))
    eight = "café".encode()
    msg = (head + b"Subject: " + (eight if where == "header" else b"cafe") +
           b"\n\n" + (eight if where == "body" else b"hi") + b"\n")
    s = Session(cf).start()
    r = s.mail("s@example.net", ["x@example.net"], msg, " RET=FULL")
    assert QUEUED.match(r), r
    s.end()
    b = the_report(tmp, kind)
    parts = b.get_payload()
    returned = "message/global" if kind.startswith("global") else "message/rfc822"
    assert [p.get_content_type() for p in parts] == \
        ["text/plain", "message/" + kind, returned]
    assert eight in read_bytes(maildir_files(tmp + "/sender")[0])


def test_a_success_report_survives_a_kill_of_the_run(tmp):
    """r1 and r2 both ask NOTIFY=SUCCESS. A flush delivers r1, records it
    (the envelope is saved after each mailer run), and is killed -9 while
    r2's mailer still runs. r1's report existed only in that process's
    memory: the next run delivered r2 and reported r2 alone. The debt is
    now in the envelope with the delivery, and the next run pays it."""
    import signal
    os.chmod(tmp, 0o777)
    mkdir(tmp + "/out")
    gate = ("test -e @DIR@/go || exit 75; ")
    cf = write_cf(tmp, 'r1@example.net "|%scat > @DIR@/out/r1"\n' % gate +
                  'r2@example.net "|%stest -e @DIR@/fast || '
                  '{ echo $$ > @DIR@/r2.pid; sleep 60; }; cat > @DIR@/out/r2"\n' % gate +
                  "s@example.net @DIR@/sender/\n",
                  core="minimal-backoff = 1h\nmaximal-backoff = 2h\n")
    os.chmod(tmp + "/out", 0o1777)
    s = Session(cf).start()
    s.cmd("MAIL FROM:<s@example.net>", "250 ")
    s.cmd("RCPT TO:<r1@example.net> NOTIFY=SUCCESS", "250 ")
    s.cmd("RCPT TO:<r2@example.net> NOTIFY=SUCCESS", "250 ")
    s.cmd("DATA", "354 ")
    s.send(smtp_data(MESSAGE))
    assert QUEUED.match(s.reply()[-1])
    assert "status=deferred" in s.end()
    open(tmp + "/go", "w").close()
    p = subprocess.Popen([POSTMASTER, "--config=" + cf, "--flush", "--now"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(tmp + "/r2.pid"), what="r2's mailer")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        try:  # the mailer runs in a process group of its own
            mailer = int(open(tmp + "/r2.pid").read())
            os.killpg(os.getpgid(mailer), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    assert os.path.exists(tmp + "/out/r1") and reports_in(tmp) == []
    open(tmp + "/fast", "w").close()
    r = flush(cf, "--now")
    assert re.search(r"to=<r2@example.net> .*status=sent", r.stderr), r.stderr
    reported = sorted(x["Final-Recipient"] for b in reports_in(tmp)
                      for x in b.get_payload()[1].get_payload()[1:])
    assert reported == ["rfc822; r1@example.net", "rfc822; r2@example.net"], reported
    assert queue(cf) == {}
