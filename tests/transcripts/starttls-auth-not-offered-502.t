# With tls = no and auth = no (the defaults), STARTTLS and AUTH are not advertised and are answered 502; the session goes on in clear text.
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
C: STARTTLS
S: 502 5.5.1 STARTTLS not offered
C: STARTTLS now
S: 501 5.5.4 Syntax: STARTTLS
C: AUTH PLAIN AGFubmEAc2VjcmV0
S: 502 5.5.1 AUTH not offered
C: MAIL FROM:<a@b.example> AUTH=<>
S: 555 5.5.4 Unsupported parameter AUTH
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
