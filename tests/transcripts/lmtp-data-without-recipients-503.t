# LMTP: DATA when every recipient was refused is 503 5.5.1 (RFC 2033), and no reply list follows.
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
C: RCPT TO:<nobody@example.net>
S: 550 5.1.1 <nobody@example.net>: user unknown
C: DATA
S: 503 5.5.1 No valid recipients
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
