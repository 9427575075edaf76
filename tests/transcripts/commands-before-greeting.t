# Commands sent before the greeting are answered, in order, after it.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
C: NOOP
C: EHLO early.example
S: 220 mail.example.net ESMTP postmaster
S: 250 2.0.0 OK
S: 250-mail.example.net
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
