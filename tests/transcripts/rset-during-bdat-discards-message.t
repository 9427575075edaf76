# RSET between BDAT chunks abandons the message; a new transaction then delivers only its own content.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
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
C: BDAT 20
R: b'Subject: abandoned\r\n'
S: 250 2.0.0 20 octets received
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<c@d.example>
S: 250 2.1.0 Sender <c@d.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: BDAT 20 LAST
R: b'Subject: kept\r\n\r\nx\r\n'
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Return-Path: <c@d.example>\n
M: @TMP@/Maildir/new/*=\nSubject: kept\n\nx\n
