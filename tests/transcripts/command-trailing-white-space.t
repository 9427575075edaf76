# Trailing white space after a command is tolerated (RFC 5321 4.1.1): RSET, DATA, STARTTLS, QUIT with spaces or a tab before CRLF.
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
C: RSET 
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> 
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>  
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA 
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: spaces
C: 
C: after DATA-space
C: .
S: 250 2.0.0 delivered to 1 Maildir
R: b'NOOP\t\r\n'
S: 250 2.0.0 OK
C: STARTTLS 
S: 502 5.5.1 STARTTLS not offered
R: b'QUIT \t \r\n'
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=after DATA-space
