"""DSN (RFC 3461, issue 14) with real next hops. The parameters go on from
the spool to a next hop that advertises DSN, and only to one: Postfix's
smtp-sink with and without DSN (-N), its dump showing the MAIL and RCPT
arguments it got, and a private Postfix instance, whose own success
report (read with postcat) carries our ENVID and ORCPT. NOTIFY=SUCCESS
gets a "relayed" report from us when the next hop has no DSN, none when it
has, and a "delivered" report after Dovecot's LMTP took the message.

Every server runs on 127.0.0.1 and a free port and is stopped when its
test ends. POSTMASTER names the binary under test.
"""
import email
import os
import re
import subprocess

import pytest

from pmtest import tool, wait_for
from test_onward import (Dovecot, Postfix, Sent, Session, SmtpSink, bounces,
                         maildir_files, message, peers, postfix, relay_cf,
                         status_lines, tmp, write_cf)

assert peers and postfix and tmp  # fixtures, imported for the tests below


def submit_dsn(cf, rcpts, mail_params, rcpt_params):
    """One transaction; a recipient is an address (with rcpt_params) or
    an (address, its own parameters) pair."""
    s = Session(cf)
    try:
        assert s.reply().startswith("220 ")
        s.cmd("EHLO client.example", "250 ")
        s.cmd("MAIL FROM:<ann@sender.example>" + mail_params, "250 ")
        for r in rcpts:
            addr, params = r if isinstance(r, tuple) else (r, rcpt_params)
            s.cmd("RCPT TO:<%s>%s" % (addr, params), "250 ")
        s.cmd("DATA", "354 ")
        reply = s.data(message("dsn onward"))
        s.cmd("QUIT", "221 ")
    finally:
        log = s.close()
    sent = Sent(reply, log)
    assert sent.id, reply + "\n" + log
    return sent


def sink_args(sink):
    msgs = wait_for(sink.messages, what="the dump")
    assert len(msgs) == 1, msgs
    fields = msgs[0][0]
    mail = [f for f in fields if f.startswith("X-Mail-Args: ")]
    rcpt = [f for f in fields if f.startswith("X-Rcpt-Args: ")]
    return mail, rcpt


def test_parameters_go_on_to_a_peer_with_dsn(tmp, peers):
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit_dsn(cf, ["joe@example.net"], " RET=HDRS ENVID=QQ+2B1",
                      " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Joe+2Bx@example.org")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    mail, rcpt = sink_args(sink)
    assert mail == ["X-Mail-Args: <ann@sender.example> RET=HDRS ENVID=QQ+2B1"], mail
    assert rcpt == ["X-Rcpt-Args: <joe@example.net> NOTIFY=SUCCESS,FAILURE "
                    "ORCPT=rfc822;Joe+2Bx@example.org"], rcpt


@pytest.mark.parametrize("first,second,want", [
    ("", " NOTIFY=SUCCESS ORCPT=rfc822;JOE@example.net",
     ["X-Rcpt-Args: <joe@example.net>",
      "X-Rcpt-Args: <JOE@example.net> NOTIFY=SUCCESS "
      "ORCPT=rfc822;JOE@example.net"]),
    (" NOTIFY=NEVER", "",
     ["X-Rcpt-Args: <joe@example.net> NOTIFY=NEVER",
      "X-Rcpt-Args: <JOE@example.net>"]),
    (" NOTIFY=NEVER", " NOTIFY=NEVER",
     ["X-Rcpt-Args: <joe@example.net> NOTIFY=NEVER"]),
])
def test_one_address_in_two_cases_keeps_each_rcpts_dsn_parameters(
        tmp, peers, first, second, want):
    """joe and JOE go onward as one RCPT only when their NOTIFY and ORCPT
    agree (RFC 3461: they are each RCPT's own): a merged RCPT kept the
    first one's, so a requested success report was never asked for and
    one recipient's NOTIFY=NEVER silenced the other's bounces."""
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    submit_dsn(cf, [("joe@example.net", first), ("JOE@example.net", second)],
               "", "")
    mail, rcpt = sink_args(sink)
    assert rcpt == want, rcpt


def test_parameters_stay_here_for_a_peer_without_dsn(tmp, peers):
    sink = SmtpSink(tmp, "-N")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit_dsn(cf, ["joe@example.net"], " RET=FULL ENVID=e1",
                      " NOTIFY=FAILURE ORCPT=rfc822;joe@example.net")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    mail, rcpt = sink_args(sink)
    assert mail == ["X-Mail-Args: <ann@sender.example>"], mail
    assert rcpt == ["X-Rcpt-Args: <joe@example.net>"], rcpt


def test_postfix_next_hop_gets_the_parameters(tmp, postfix):
    cf = write_cf(tmp, '[relay "pf"]\naddress = [127.0.0.1]:%d\n[route]\n'
                  '@pf.example pf\n' % postfix.port)
    sent = submit_dsn(cf, ["ann@pf.example"], " RET=HDRS ENVID=pm-envid-1",
                      " NOTIFY=SUCCESS ORCPT=rfc822;first+2Bann@orig.example")
    assert "status=sent dsn=2.0.0" in \
        status_lines(sent.log)["ann@pf.example"], sent.log

    # Postfix honours NOTIFY=SUCCESS: its own "delivered" report to the
    # sender (which it cannot send on from here, so it waits in its queue)
    def notified():
        return re.search(r"sender delivery status notification: (\w+)",
                         postfix.maillog())
    qid = wait_for(notified, 15, "Postfix's success notification")[1]
    r = subprocess.run([tool("postcat"), "-c", postfix.etc, "-bh", "-q", qid],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    report = email.message_from_bytes(r.stdout)
    assert report.get_content_type() == "multipart/report", r.stdout[:500]
    status = report.get_payload()[1]
    assert status.get_content_type() == "message/delivery-status"
    per_msg, per_rcpt = status.get_payload()
    assert per_msg["Original-Envelope-Id"] == "pm-envid-1", str(per_msg)
    assert per_rcpt["Original-Recipient"] == "rfc822;first+ann@orig.example", \
        str(per_rcpt)
    assert per_rcpt["Action"] == "delivered", str(per_rcpt)
    assert per_rcpt["Status"] == "2.0.0", str(per_rcpt)
    # RET=HDRS: Postfix returns the headers, not the body
    assert report.get_payload()[2].get_content_type() == "text/rfc822-headers"


def success_report(tmp):
    """The one report in tmp/bounces/ (SENDER's mailbox): its
    per-recipient blocks by Final-Recipient address."""
    (msg,) = bounces(tmp)
    assert msg.get_content_type() == "multipart/report"
    assert msg["Subject"] == "Successful Mail Delivery Report"
    parts = msg.get_payload()
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    return blocks[0], {b["Final-Recipient"].split(";", 1)[1].strip(): b
                       for b in blocks[1:]}


def test_notify_success_to_a_peer_without_dsn_reports_relayed(tmp, peers):
    sink = SmtpSink(tmp, "-N")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit_dsn(cf, ["joe@example.net"], " ENVID=relayed-1",
                      " NOTIFY=SUCCESS ORCPT=rfc822;joe+2Borig@example.net")
    assert re.search(r"id=%s event=report action=relayed report-id=" % sent.id,
                     sent.log), sent.log
    per_msg, rcpts = success_report(tmp)
    assert per_msg["Original-Envelope-Id"] == "relayed-1"
    b = rcpts["joe@example.net"]
    assert b["Action"] == "relayed", str(b)
    assert b["Status"] == "2.0.0", str(b)
    assert b["Original-Recipient"] == "rfc822; joe+orig@example.net", str(b)
    assert b["Remote-MTA"] == "dns; 127.0.0.1", str(b)


def test_notify_success_to_a_peer_with_dsn_leaves_the_report_to_it(tmp, peers):
    sink = SmtpSink(tmp)
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port])
    sent = submit_dsn(cf, ["joe@example.net"], "", " NOTIFY=SUCCESS")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"]
    assert "event=report" not in sent.log, sent.log
    assert maildir_files(os.path.join(tmp, "bounces")) == []


def test_notify_success_over_dovecot_lmtp_reports_delivered(tmp, peers):
    dv = Dovecot(tmp)
    peers.append(dv)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % dv.port], protocol="lmtp")
    sent = submit_dsn(cf, ["joe@example.net", "ann@example.net"],
                      " RET=FULL ENVID=lmtp-1", " NOTIFY=SUCCESS,FAILURE")
    assert re.search(r"id=%s event=report action=delivered report-id=" % sent.id,
                     sent.log), sent.log
    assert len(dv.inbox("joe")) == 1 and len(dv.inbox("ann")) == 1
    per_msg, rcpts = success_report(tmp)
    assert per_msg["Original-Envelope-Id"] == "lmtp-1"
    assert sorted(rcpts) == ["ann@example.net", "joe@example.net"]
    for b in rcpts.values():
        assert b["Action"] == "delivered", str(b)
        assert b["Status"] == "2.0.0", str(b)


def test_notify_success_over_lmtp_with_dsn_leaves_the_report_to_it(tmp, peers):
    # an LMTP server that announces DSN got NOTIFY=SUCCESS and reports
    # itself (RFC 3461 5.2.2): a second "delivered" report from us would
    # give the sender two
    sink = SmtpSink(tmp, "-L")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port], protocol="lmtp")
    sent = submit_dsn(cf, ["joe@example.net"], "", " NOTIFY=SUCCESS")
    assert "status=sent" in status_lines(sent.log)["joe@example.net"], sent.log
    mail, rcpt = sink_args(sink)
    assert rcpt == ["X-Rcpt-Args: <joe@example.net> NOTIFY=SUCCESS"], rcpt
    assert "event=report" not in sent.log, sent.log
    assert maildir_files(os.path.join(tmp, "bounces")) == []


def test_notify_success_over_lmtp_without_dsn_reports_delivered(tmp, peers):
    sink = SmtpSink(tmp, "-L", "-N")
    peers.append(sink)
    cf = relay_cf(tmp, ["[127.0.0.1]:%d" % sink.port], protocol="lmtp")
    sent = submit_dsn(cf, ["joe@example.net"], "", " NOTIFY=SUCCESS")
    mail, rcpt = sink_args(sink)
    assert rcpt == ["X-Rcpt-Args: <joe@example.net>"], rcpt
    assert re.search(r"id=%s event=report action=delivered report-id=" % sent.id,
                     sent.log), sent.log
    per_msg, rcpts = success_report(tmp)
    assert rcpts["joe@example.net"]["Action"] == "delivered"
