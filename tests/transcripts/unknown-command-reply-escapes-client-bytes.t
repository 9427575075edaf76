# A reply never echoes raw control bytes: an unknown verb with an ESC character is shown escaped.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
R: b'F\x1bO\r\n'
S~ 500 5\.5\.2 Command unrecognized: F[^\x1b]*O
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
