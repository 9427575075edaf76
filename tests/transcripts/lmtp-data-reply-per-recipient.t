# LMTP: after DATA one reply per accepted recipient, in RCPT order; one mailer failing (451) does not stop the others.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/joe/
mary@example.net "|exit 75"
bob@example.net @TMP@/bob/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: LHLO client.example
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
C: RCPT TO:<nobody@example.net>
S: 550 5.1.1 <nobody@example.net>: user unknown
C: RCPT TO:<mary@example.net>
S: 250 2.1.5 Recipient <mary@example.net> OK
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: lmtp
C:
C: x
C: .
S: 250 2.0.0 delivered to 1 Maildir
S: 451 4.3.0 temporary failure (exit status 75)
S: 250 2.0.0 delivered to 1 Maildir
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Delivered-To: joe@example.net\nReceived: from client.example (local)\n\tby mail.example.net (postmaster) with LMTP id 
M: @TMP@/bob/new/*=Delivered-To: bob@example.net\n
M: @TMP@/bob/new/*=Subject: lmtp\n\nx\n
