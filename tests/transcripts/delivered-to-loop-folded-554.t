# A Delivered-To: field folded over two lines still names its recipient: the loop is seen in the unfolded field (RFC 5322 2.2.3), 554 5.4.6, nothing delivered.
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
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Delivered-To:
C:  joe@example.net
C: Subject: t
C:
C: body
C: .
S: 554 5.4.6 <joe@example.net>: mail forwarding loop
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir/new/*
