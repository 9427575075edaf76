# Malformed MAIL commands: wrong keyword 501 5.5.4; a bad path 501 5.1.7; the null sender <> is fine.
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
C: MAIL TO:<a@b.example>
S: 501 5.5.4 Syntax: MAIL FROM:<address>
C: MAIL FROM <a@b.example>
S: 501 5.5.4 Syntax: MAIL FROM:<address>
C: MAIL FROM:a@b.example
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@b.example
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@b.example>junk
S: 501 5.1.7 Bad sender address syntax
C: MAIL FROM:<a@@b.example>
S~ 501 5\.1\.7 Bad sender address syntax: .+
C: MAIL FROM:<>
S: 250 2.1.0 Sender <> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
