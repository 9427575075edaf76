# BDAT without an accepted recipient is 503 5.5.1, and its octets are read and dropped: the QUIT/RSET/MAIL text inside is never answered.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
S: 250-mail.example.net
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-DSN
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<nobody@example.net>
S: 550 5.1.1 <nobody@example.net>: user unknown
C: BDAT 67
R: b'RSET\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<joe@example.net>\r\nQUIT\r\n'
S: 503 5.5.1 No valid recipients (discarded 67 octets)
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir
