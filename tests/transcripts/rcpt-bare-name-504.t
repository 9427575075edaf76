# RCPT TO:<joe> without a domain is 504 5.5.2 unless local-rcpt-to is on; <postmaster> in any case is always accepted.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
postmaster @TMP@/pm/
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
C: RCPT TO:<joe>
S: 504 5.5.2 <joe>: need a fully-qualified address
C: RCPT TO:<Postmaster>
S: 250 2.1.5 Recipient <Postmaster> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: to the postmaster
C:
C: x
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/pm/new/*=Subject: to the postmaster
N: @TMP@/Maildir/new/*
