# BODY=BINARYMIME content (NUL, bare CR, bare LF, CR CR LF, a lone dot line, 8-bit bytes) is stored byte for byte.
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
C: MAIL FROM:<a@b.example> BODY=BINARYMIME
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: BDAT 13
R: b'a\x00b\rc\nd\r\r\n.\r\n'
S: 250 2.0.0 13 octets received
C: BDAT 5 LAST
R: b'..\xff\xfe\r'
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Return-Path: <a@b.example>\r\nDelivered-To: joe@example.net\r\nReceived: from client.example (local)\r\n
M: @TMP@/Maildir/new/*=\r\na\x00b\rc\nd\r\r\n.\r\n..\\xff\\xfe\r
