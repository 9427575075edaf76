# MAIL and RCPT lines may be long (extension parameters, up to 4096 octets); beyond that 500 5.5.2 and the transaction goes on.
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
R: b'MAIL FROM:<a@b.example>' + b' ' * 2000 + b'SIZE=100\r\n'
S: 250 2.1.0 Sender <a@b.example> OK
R: b'RCPT TO:<joe@example.net>' + b' ' * 5000 + b'\r\n'
S: 500 5.5.2 Line too long
R: b'MAIL FROM:<c@d.example>' + b' ' * 5000 + b'SIZE=100\r\n'
S: 500 5.5.2 Line too long
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: x
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Return-Path: <a@b.example>
