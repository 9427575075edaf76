# After HELO (not EHLO) DSN's parameters are refused 555 5.5.4 on MAIL and on RCPT.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: HELO client.example
S: 250 mail.example.net
C: MAIL FROM:<a@b.example> RET=HDRS
S: 555 5.5.4 MAIL parameters need EHLO
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net> NOTIFY=NEVER
S: 555 5.5.4 RCPT parameters need EHLO
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
