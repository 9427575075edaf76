# EHLO, HELO and LHLO without a host name are 501 5.5.4, and the session is still not greeted.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO
S: 501 5.5.4 Syntax: EHLO hostname
C: HELO
S: 501 5.5.4 Syntax: HELO hostname
C: LHLO
S: 501 5.5.4 Syntax: LHLO hostname
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Send EHLO or HELO first
C: HELO client.example
S: 250 mail.example.net
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
