# With accept-mail = no a BDAT is refused 521 5.3.2 after its chunk is read: the chunk's octets never run as commands; a BDAT whose size cannot be read ends the session.
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
R: b'BDAT 6\r\nQUIT\r\n'
S: 521 5.3.2 mail.example.net does not accept mail
R: b'BDAT 6 LAST\r\nQUIT\r\n'
S: 521 5.3.2 mail.example.net does not accept mail
C: NOOP
S: 521 5.3.2 mail.example.net does not accept mail
C: BDAT 6x
S: 521 5.3.2 mail.example.net does not accept mail
S: 421 4.5.0 mail.example.net Cannot resynchronize after a bad BDAT, closing
E:
