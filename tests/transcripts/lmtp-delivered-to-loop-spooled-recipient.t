# LMTP: a spooled recipient the message already reached (our Delivered-To) gets 554 5.4.6 alone; a direct and another spooled recipient are delivered. It once refused all three.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/joe/
bob@example.net @TMP@/bob/ , "|exit 0"
ann@example.net @TMP@/ann/ , "|exit 0"
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
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: RCPT TO:<ann@example.net>
S: 250 2.1.5 Recipient <ann@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Delivered-To: bob@example.net
C: Subject: looping
C:
C: x
C: .
S: 250 2.0.0 delivered to 1 Maildir
S: 554 5.4.6 <bob@example.net>: mail forwarding loop
S~ 250 2\.0\.0 Ok: queued as [0-9A-F]{18}
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Subject: looping
M: @TMP@/ann/new/*=Subject: looping
N: @TMP@/bob/new/*
Q: 0
