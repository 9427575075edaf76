# BDAT text (no BODY=BINARYMIME) counts its line ends as the CRLF sent, as DATA does: 1034 octets in two chunks are over 1024 (552 5.3.4), and 1024 octets, a CR ending the first chunk, are accepted.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
max-message-size = 1k
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
S: 250-mail.example.net
S: 250-PIPELINING
S: 250-SIZE 1024
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-DSN
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: BDAT 600
R: b'Subject: t\r\n\r\n' + b'a\r\n' * 195 + b'a'
S: 250 2.0.0 600 octets received
C: BDAT 434 LAST
R: b'\r\n' + b'a\r\n' * 144
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: BDAT 600
R: b'Subject: t\r\n\r\n' + b'a\r\n' * 194 + b'aaa\r'
S: 250 2.0.0 600 octets received
C: BDAT 424 LAST
R: b'\n' + b'a\r\n' * 141
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=\na\naaa\na\n
