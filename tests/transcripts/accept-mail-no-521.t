# With accept-mail = no the greeting is 521 and every command but QUIT is 521 5.3.2.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
accept-mail = no
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 521 mail.example.net does not accept mail
C: EHLO client.example
S: 521 5.3.2 mail.example.net does not accept mail
C: MAIL FROM:<a@b.example>
S: 521 5.3.2 mail.example.net does not accept mail
C: RCPT TO:<joe@example.net>
S: 521 5.3.2 mail.example.net does not accept mail
C: NOOP
S: 521 5.3.2 mail.example.net does not accept mail
C: FOO
S: 521 5.3.2 mail.example.net does not accept mail
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir
