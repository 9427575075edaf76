# A whole pipelined transaction in one write gets its replies in order, one each.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
C: MAIL FROM:<a@b.example>
C: RCPT TO:<nobody@example.net>
C: RCPT TO:<joe@example.net>
C: NOOP
C: DATA
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
S: 550 5.1.1 <nobody@example.net>: user unknown
S: 250 2.1.5 Recipient <joe@example.net> OK
S: 250 2.0.0 OK
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: pipelined
C:
C: x
C: .
C: MAIL FROM:<c@d.example>
C: RCPT TO:<joe@example.net>
C: DATA
S: 250 2.0.0 delivered to 1 Maildir
S: 250 2.1.0 Sender <c@d.example> OK
S: 250 2.1.5 Recipient <joe@example.net> OK
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: second
C:
C: y
C: .
C: QUIT
S: 250 2.0.0 delivered to 1 Maildir
S: 221 2.0.0 mail.example.net closing connection
E:
