# A command line over 512 octets is consumed to its end and answered 500 5.5.2; one of exactly 512 (with CRLF) is fine.
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
R: b'NOOP ' + b'n' * 600 + b'\r\n'
S: 500 5.5.2 Line too long
R: b'NOOP ' + b'n' * 505 + b'\r\n'
S: 250 2.0.0 OK
R: b'VRFY ' + b'v' * 3000 + b'\r\n'
S: 500 5.5.2 Line too long
R: b'HELO ' + b'h' * 600 + b'\r\n'
S: 500 5.5.2 Line too long
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
