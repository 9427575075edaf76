# A UTF-8 address without SMTPUTF8 is 553 5.6.7 (sender and recipient); with SMTPUTF8 it is accepted and the Received header says UTF8SMTP.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
jörg@example.net @TMP@/Maildir/
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
C: MAIL FROM:<rémy@b.example>
S: 553 5.6.7 Non-ASCII sender address needs SMTPUTF8
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<jörg@example.net>
S: 553 5.6.7 Non-ASCII recipient address needs SMTPUTF8
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<rémy@b.example> SMTPUTF8
S: 250 2.1.0 Sender <rémy@b.example> OK
C: RCPT TO:<jörg@example.net>
S: 250 2.1.5 Recipient <jörg@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: utf8
C:
C: x
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Return-Path: <r\u00e9my@b.example>\nDelivered-To: j\u00f6rg@example.net\nReceived: from client.example (local)\n\tby mail.example.net (postmaster) with UTF8SMTP id 
