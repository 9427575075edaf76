# BDAT 0 LAST ends a chunked message (and alone makes an empty one); both are delivered.
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
C: BDAT 12
R: b'Subject: z\r\n'
C: BDAT 0 LAST
S: 250 2.0.0 12 octets received
S: 250 2.0.0 delivered to 1 Maildir
C: MAIL FROM:<empty@b.example>
S: 250 2.1.0 Sender <empty@b.example> OK
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: BDAT 0 LAST
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Subject: z\n
M: @TMP@/bob/new/*=Return-Path: <empty@b.example>\nDelivered-To: bob@example.net\nReceived: from client.example (local)\n\tby mail.example.net (postmaster) with ESMTP id 
