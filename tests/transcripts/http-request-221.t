# An HTTP request (a browser or proxy probe) gets 221 2.7.0 and the connection closes; the request headers are never read as commands.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: GET / HTTP/1.1
C: Host: mail.example.net
C: MAIL FROM:<a@b.example>
S: 221 2.7.0 This is an SMTP server, not a web or proxy server; goodbye
E:
