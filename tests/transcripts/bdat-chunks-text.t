# BDAT text mail in chunks: chunks join, a CRLF split across chunks is one line end, and leading dots are not unstuffed.
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
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: BDAT 18
R: b'Subject: chunks\r\n\r'
S: 250 2.0.0 18 octets received
C: BDAT 12
R: b'\n..dots\r\nend'
S: 250 2.0.0 12 octets received
C: BDAT 2 LAST
R: b'\r\n'
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=for <joe@example.net>; 
M: @TMP@/Maildir/new/*=\nSubject: chunks\n\n..dots\nend\n
