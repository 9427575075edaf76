# With max-recipients = 2 the third RCPT is 452 4.5.3; the two accepted recipients still get the message.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
max-recipients = 2
[route]
joe@example.net @TMP@/joe/
mary@example.net @TMP@/mary/
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
C: RCPT TO:<mary@example.net>
S: 250 2.1.5 Recipient <mary@example.net> OK
C: RCPT TO:<bob@example.net>
S: 452 4.5.3 Too many recipients
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: two of three
C:
C: x
C: .
S: 250 2.0.0 delivered to 2 Maildirs
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Subject: two of three
M: @TMP@/mary/new/*=Subject: two of three
N: @TMP@/bob
