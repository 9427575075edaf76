# A POST after EHLO (cross-protocol attack) also ends the session with 221 2.7.0.
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
C: POST /form HTTP/1.0
C: Content-Length: 10
S: 221 2.7.0 This is an SMTP server, not a web or proxy server; goodbye
E:
