# LMTP: after BDAT ... LAST one reply per accepted recipient (250, 451, 250).
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
C: RCPT TO:<joe@example.net>
C: RCPT TO:<mary@example.net>
C: RCPT TO:<bob@example.net>
C: BDAT 20
R: b'Subject: chunked\r\n\r\n'
C: BDAT 6 LAST
R: b'body\r\n'
S: 250 2.1.0 Sender <a@b.example> OK
S: 250 2.1.5 Recipient <joe@example.net> OK
S: 250 2.1.5 Recipient <mary@example.net> OK
S: 250 2.1.5 Recipient <bob@example.net> OK
S: 250 2.0.0 20 octets received
S: 250 2.0.0 delivered to 1 Maildir
S: 451 4.3.0 temporary failure (exit status 75)
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=Subject: chunked\n\nbody\n
M: @TMP@/bob/new/*=Subject: chunked\n\nbody\n
