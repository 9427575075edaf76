# A SIZE value that is empty, missing, signed, not decimal or longer than 20 digits is 501 5.5.4.
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
C: MAIL FROM:<a@b.example> SIZE=abc
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE=
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE=-1
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE=12k
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> SIZE=100000000000000000000000
S: 501 5.5.4 Bad SIZE parameter
C: MAIL FROM:<a@b.example> size=100
S: 250 2.1.0 Sender <a@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
