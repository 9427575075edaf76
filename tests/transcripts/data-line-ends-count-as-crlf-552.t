# Line ends count as the CRLF the client sent (RFC 1870): 340 empty lines and a header, 1034 octets on the wire but 692 stored with LF, are over a max-message-size of 1024 and refused 552 5.3.4.
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
C: MAIL FROM:<a@b.example> SIZE=1034
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
R: b'Subject: t\r\n\r\n' + b'a\r\n' * 340
C: .
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir/new/*
