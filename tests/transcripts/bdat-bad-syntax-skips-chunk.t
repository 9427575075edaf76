# A BDAT whose size parses but whose rest does not is 501 5.5.4; its chunk is skipped (never run as commands) and the session goes on; inside a transaction, first chunk or not, the rest of the message is discarded up to LAST.
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
R: b'BDAT 6 LAST now\r\nQUIT\r\n'
S: 501 5.5.4 Syntax: BDAT size [LAST] (discarded 6 octets)
C: NOOP
S: 250 2.0.0 OK
R: b'BDAT 5\r\nx: y\n'
S: 551 5.0.0 Discarded 5 octets after an earlier error
R: b'BDAT 6 LAST LAST\r\nRSET\r\n'
S: 501 5.5.4 Syntax: BDAT size [LAST] (discarded 6 octets)
R: b'BDAT 4 LAST\r\nhi\r\n'
S: 551 5.0.0 Discarded 4 octets after an earlier error
C: MAIL FROM:<c@d.example>
S: 250 2.1.0 Sender <c@d.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
R: b'BDAT 4 LAST\r\nok\r\n'
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Return-Path: <c@d.example>
