# LMTP: data over max-message-size is read to its end and each accepted recipient gets 552 5.3.4; nothing is delivered.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
max-message-size = 1k
[route]
joe@example.net @TMP@/joe/
bob@example.net @TMP@/bob/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: LHLO client.example
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
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
R: b'Subject: big\r\n\r\n' + b'y' * 2000 + b'\r\n.\r\n'
S: 552 5.3.4 Message size exceeds fixed maximum message size
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/joe/new/*
N: @TMP@/bob/new/*
