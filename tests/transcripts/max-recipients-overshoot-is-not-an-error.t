# A client that sends more recipients than max-recipients gets 452 4.5.3 for each extra one and can still send the message
# (RFC 5321 4.5.3.1.10): the 452s must not count toward the 10-error limit, or the message would never get through.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
max-recipients = 2
[route]
@example.net @TMP@/Maildir/
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
C: RCPT TO:<u0@example.net>
C: RCPT TO:<u1@example.net>
C: RCPT TO:<u2@example.net>
C: RCPT TO:<u3@example.net>
C: RCPT TO:<u4@example.net>
C: RCPT TO:<u5@example.net>
C: RCPT TO:<u6@example.net>
C: RCPT TO:<u7@example.net>
C: RCPT TO:<u8@example.net>
C: RCPT TO:<u9@example.net>
C: RCPT TO:<u10@example.net>
C: RCPT TO:<u11@example.net>
C: RCPT TO:<u12@example.net>
C: RCPT TO:<u13@example.net>
S: 250 2.1.5 Recipient <u0@example.net> OK
S: 250 2.1.5 Recipient <u1@example.net> OK
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
S: 452 4.5.3 Too many recipients
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
F: @TMP@/Maildir/new/*
