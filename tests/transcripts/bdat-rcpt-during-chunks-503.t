# RCPT and MAIL between BDAT chunks are refused (503 5.5.1); the message goes only to the first recipient.
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
C: BDAT 3
R: b'x\r\n'
S: 250 2.0.0 3 octets received
C: RCPT TO:<bob@example.net>
S: 503 5.5.1 RCPT not allowed during BDAT
C: MAIL FROM:<c@d.example>
S: 503 5.5.1 Nested MAIL command
C: BDAT 0 LAST
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
F: @TMP@/joe/new/*
N: @TMP@/bob
