# BDAT with spaces around its words (BDAT  6 , BDAT 4 LAST ) is taken as written without them (RFC 5321 4.1.1).
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
R: b'BDAT  6 \r\nx: y\r\n'
S: 250 2.0.0 6 octets received
R: b'BDAT 13  LAST \r\n\r\nchunk two\r\n'
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=chunk two
