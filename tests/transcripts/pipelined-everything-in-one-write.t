# A client that writes the whole session at once (greeting not awaited) still gets every reply in order and one delivery.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
C: EHLO client.example
C: MAIL FROM:<a@b.example>
C: RCPT TO:<joe@example.net>
C: DATA
C: Subject: all at once
C:
C: x
C: .
C: QUIT
S: 220 mail.example.net ESMTP postmaster
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
S: 250 2.1.0 Sender <a@b.example> OK
S: 250 2.1.5 Recipient <joe@example.net> OK
S: 354 End data with <CR><LF>.<CR><LF>
S: 250 2.0.0 delivered to 1 Maildir
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Subject: all at once
