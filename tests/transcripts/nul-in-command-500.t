# A NUL byte in a command is 500 5.5.2 (never truncating the command there); the session goes on.
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
R: b'NOOP\x00\r\n'
S: 500 5.5.2 NUL character in command
R: b'MAIL FROM:<a@b.example>\x00 SIZE=99999999999\r\n'
S: 500 5.5.2 NUL character in command
R: b'RSET\x00\r\n'
S: 500 5.5.2 NUL character in command
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
