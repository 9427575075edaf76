# RCPT answers from routing: unknown user at a local domain 550 5.1.1, a remote domain 550 5.7.1, a reject route 550 5.1.1, a routing loop 550 5.4.6.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
gone@example.net reject
loop1@example.net loop2@example.net
loop2@example.net loop1@example.net
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
C: RCPT TO:<nobody@example.net>
S: 550 5.1.1 <nobody@example.net>: user unknown
C: RCPT TO:<someone@remote.example>
S: 550 5.7.1 <someone@remote.example>: relaying denied
C: RCPT TO:<gone@example.net>
S: 550 5.1.1 <gone@example.net>: recipient rejected
C: RCPT TO:<loop1@example.net>
S: 550 5.4.6 <loop1@example.net>: routing loop
C: RCPT TO:<JOE@Example.NET>
S: 250 2.1.5 Recipient <JOE@Example.NET> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
F: @TMP@/Maildir/new/*
