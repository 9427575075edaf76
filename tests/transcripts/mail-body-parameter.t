# BODY=7BIT, 8BITMIME and BINARYMIME (any case) are accepted; other values are 501 5.5.4.
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
C: MAIL FROM:<a@b.example> BODY=QUOTED-PRINTABLE
S: 501 5.5.4 Bad BODY parameter
C: MAIL FROM:<a@b.example> BODY
S: 501 5.5.4 Bad BODY parameter
C: MAIL FROM:<a@b.example> BODY=8BIT
S: 501 5.5.4 Bad BODY parameter
C: MAIL FROM:<a@b.example> BODY=7BIT
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> BODY=8bitmime
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> BODY=BINARYMIME SIZE=10
S: 250 2.1.0 Sender <a@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
