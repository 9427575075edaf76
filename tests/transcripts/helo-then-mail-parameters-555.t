# After HELO (not EHLO) a MAIL with SIZE, BODY or SMTPUTF8 parameters is refused 555 5.5.4; plain MAIL works.
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
C: MAIL FROM:<a@b.example> SIZE=100
S: 555 5.5.4 MAIL parameters need EHLO
C: MAIL FROM:<a@b.example> BODY=8BITMIME
S: 555 5.5.4 MAIL parameters need EHLO
C: MAIL FROM:<a@b.example> SMTPUTF8
S: 555 5.5.4 MAIL parameters need EHLO
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
