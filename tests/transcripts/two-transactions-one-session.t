# Two transactions in one session each deliver their own message with their own sender.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/joe/
bob@example.net @TMP@/bob/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
S: 250-mail.example.net
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-DSN
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: first
C:
C: 1
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: MAIL FROM:<c@d.example>
S: 250 2.1.0 Sender <c@d.example> OK
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: second
C:
C: 2
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Return-Path: <a@b.example>\n
M: @TMP@/joe/new/*=Subject: first\n\n1\n
M: @TMP@/bob/new/*=Return-Path: <c@d.example>\n
M: @TMP@/bob/new/*=Subject: second\n\n2\n
