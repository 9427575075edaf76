# A sender address with a control character is refused 501 5.1.7 and the byte is not echoed raw.
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
R: b'MAIL FROM:<a\x01b@b.example>\r\n'
S~ 501 5\.1\.7 Bad sender address syntax[^\x01]*
C: MAIL FROM:<ab@b.example>
S: 250 2.1.0 Sender <ab@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
