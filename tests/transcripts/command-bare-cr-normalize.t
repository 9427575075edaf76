# With bare-newline = normalize a bare CR inside a command is a space, never a command separator: NOOP<CR>QUIT is one NOOP.
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
R: b'NOOP\rQUIT\r\n'
S: 250 2.0.0 OK
R: b'RSET\rQUIT\r\n'
S: 501 5.5.4 Syntax: RSET
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
