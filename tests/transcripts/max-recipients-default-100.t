# By default 100 recipients are accepted (RFC 5321 4.5.3.1.8); the 101st is 452 4.5.3 and the message still goes to the 100.
[config]
[core]
hostname = mail.example.net
logger = stderr
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
C: RCPT TO:<u14@example.net>
C: RCPT TO:<u15@example.net>
C: RCPT TO:<u16@example.net>
C: RCPT TO:<u17@example.net>
C: RCPT TO:<u18@example.net>
C: RCPT TO:<u19@example.net>
C: RCPT TO:<u20@example.net>
C: RCPT TO:<u21@example.net>
C: RCPT TO:<u22@example.net>
C: RCPT TO:<u23@example.net>
C: RCPT TO:<u24@example.net>
C: RCPT TO:<u25@example.net>
C: RCPT TO:<u26@example.net>
C: RCPT TO:<u27@example.net>
C: RCPT TO:<u28@example.net>
C: RCPT TO:<u29@example.net>
C: RCPT TO:<u30@example.net>
C: RCPT TO:<u31@example.net>
C: RCPT TO:<u32@example.net>
C: RCPT TO:<u33@example.net>
C: RCPT TO:<u34@example.net>
C: RCPT TO:<u35@example.net>
C: RCPT TO:<u36@example.net>
C: RCPT TO:<u37@example.net>
C: RCPT TO:<u38@example.net>
C: RCPT TO:<u39@example.net>
C: RCPT TO:<u40@example.net>
C: RCPT TO:<u41@example.net>
C: RCPT TO:<u42@example.net>
C: RCPT TO:<u43@example.net>
C: RCPT TO:<u44@example.net>
C: RCPT TO:<u45@example.net>
C: RCPT TO:<u46@example.net>
C: RCPT TO:<u47@example.net>
C: RCPT TO:<u48@example.net>
C: RCPT TO:<u49@example.net>
C: RCPT TO:<u50@example.net>
C: RCPT TO:<u51@example.net>
C: RCPT TO:<u52@example.net>
C: RCPT TO:<u53@example.net>
C: RCPT TO:<u54@example.net>
C: RCPT TO:<u55@example.net>
C: RCPT TO:<u56@example.net>
C: RCPT TO:<u57@example.net>
C: RCPT TO:<u58@example.net>
C: RCPT TO:<u59@example.net>
C: RCPT TO:<u60@example.net>
C: RCPT TO:<u61@example.net>
C: RCPT TO:<u62@example.net>
C: RCPT TO:<u63@example.net>
C: RCPT TO:<u64@example.net>
C: RCPT TO:<u65@example.net>
C: RCPT TO:<u66@example.net>
C: RCPT TO:<u67@example.net>
C: RCPT TO:<u68@example.net>
C: RCPT TO:<u69@example.net>
C: RCPT TO:<u70@example.net>
C: RCPT TO:<u71@example.net>
C: RCPT TO:<u72@example.net>
C: RCPT TO:<u73@example.net>
C: RCPT TO:<u74@example.net>
C: RCPT TO:<u75@example.net>
C: RCPT TO:<u76@example.net>
C: RCPT TO:<u77@example.net>
C: RCPT TO:<u78@example.net>
C: RCPT TO:<u79@example.net>
C: RCPT TO:<u80@example.net>
C: RCPT TO:<u81@example.net>
C: RCPT TO:<u82@example.net>
C: RCPT TO:<u83@example.net>
C: RCPT TO:<u84@example.net>
C: RCPT TO:<u85@example.net>
C: RCPT TO:<u86@example.net>
C: RCPT TO:<u87@example.net>
C: RCPT TO:<u88@example.net>
C: RCPT TO:<u89@example.net>
C: RCPT TO:<u90@example.net>
C: RCPT TO:<u91@example.net>
C: RCPT TO:<u92@example.net>
C: RCPT TO:<u93@example.net>
C: RCPT TO:<u94@example.net>
C: RCPT TO:<u95@example.net>
C: RCPT TO:<u96@example.net>
C: RCPT TO:<u97@example.net>
C: RCPT TO:<u98@example.net>
C: RCPT TO:<u99@example.net>
C: RCPT TO:<u100@example.net>
S: 250 2.1.5 Recipient <u0@example.net> OK
S: 250 2.1.5 Recipient <u1@example.net> OK
S: 250 2.1.5 Recipient <u2@example.net> OK
S: 250 2.1.5 Recipient <u3@example.net> OK
S: 250 2.1.5 Recipient <u4@example.net> OK
S: 250 2.1.5 Recipient <u5@example.net> OK
S: 250 2.1.5 Recipient <u6@example.net> OK
S: 250 2.1.5 Recipient <u7@example.net> OK
S: 250 2.1.5 Recipient <u8@example.net> OK
S: 250 2.1.5 Recipient <u9@example.net> OK
S: 250 2.1.5 Recipient <u10@example.net> OK
S: 250 2.1.5 Recipient <u11@example.net> OK
S: 250 2.1.5 Recipient <u12@example.net> OK
S: 250 2.1.5 Recipient <u13@example.net> OK
S: 250 2.1.5 Recipient <u14@example.net> OK
S: 250 2.1.5 Recipient <u15@example.net> OK
S: 250 2.1.5 Recipient <u16@example.net> OK
S: 250 2.1.5 Recipient <u17@example.net> OK
S: 250 2.1.5 Recipient <u18@example.net> OK
S: 250 2.1.5 Recipient <u19@example.net> OK
S: 250 2.1.5 Recipient <u20@example.net> OK
S: 250 2.1.5 Recipient <u21@example.net> OK
S: 250 2.1.5 Recipient <u22@example.net> OK
S: 250 2.1.5 Recipient <u23@example.net> OK
S: 250 2.1.5 Recipient <u24@example.net> OK
S: 250 2.1.5 Recipient <u25@example.net> OK
S: 250 2.1.5 Recipient <u26@example.net> OK
S: 250 2.1.5 Recipient <u27@example.net> OK
S: 250 2.1.5 Recipient <u28@example.net> OK
S: 250 2.1.5 Recipient <u29@example.net> OK
S: 250 2.1.5 Recipient <u30@example.net> OK
S: 250 2.1.5 Recipient <u31@example.net> OK
S: 250 2.1.5 Recipient <u32@example.net> OK
S: 250 2.1.5 Recipient <u33@example.net> OK
S: 250 2.1.5 Recipient <u34@example.net> OK
S: 250 2.1.5 Recipient <u35@example.net> OK
S: 250 2.1.5 Recipient <u36@example.net> OK
S: 250 2.1.5 Recipient <u37@example.net> OK
S: 250 2.1.5 Recipient <u38@example.net> OK
S: 250 2.1.5 Recipient <u39@example.net> OK
S: 250 2.1.5 Recipient <u40@example.net> OK
S: 250 2.1.5 Recipient <u41@example.net> OK
S: 250 2.1.5 Recipient <u42@example.net> OK
S: 250 2.1.5 Recipient <u43@example.net> OK
S: 250 2.1.5 Recipient <u44@example.net> OK
S: 250 2.1.5 Recipient <u45@example.net> OK
S: 250 2.1.5 Recipient <u46@example.net> OK
S: 250 2.1.5 Recipient <u47@example.net> OK
S: 250 2.1.5 Recipient <u48@example.net> OK
S: 250 2.1.5 Recipient <u49@example.net> OK
S: 250 2.1.5 Recipient <u50@example.net> OK
S: 250 2.1.5 Recipient <u51@example.net> OK
S: 250 2.1.5 Recipient <u52@example.net> OK
S: 250 2.1.5 Recipient <u53@example.net> OK
S: 250 2.1.5 Recipient <u54@example.net> OK
S: 250 2.1.5 Recipient <u55@example.net> OK
S: 250 2.1.5 Recipient <u56@example.net> OK
S: 250 2.1.5 Recipient <u57@example.net> OK
S: 250 2.1.5 Recipient <u58@example.net> OK
S: 250 2.1.5 Recipient <u59@example.net> OK
S: 250 2.1.5 Recipient <u60@example.net> OK
S: 250 2.1.5 Recipient <u61@example.net> OK
S: 250 2.1.5 Recipient <u62@example.net> OK
S: 250 2.1.5 Recipient <u63@example.net> OK
S: 250 2.1.5 Recipient <u64@example.net> OK
S: 250 2.1.5 Recipient <u65@example.net> OK
S: 250 2.1.5 Recipient <u66@example.net> OK
S: 250 2.1.5 Recipient <u67@example.net> OK
S: 250 2.1.5 Recipient <u68@example.net> OK
S: 250 2.1.5 Recipient <u69@example.net> OK
S: 250 2.1.5 Recipient <u70@example.net> OK
S: 250 2.1.5 Recipient <u71@example.net> OK
S: 250 2.1.5 Recipient <u72@example.net> OK
S: 250 2.1.5 Recipient <u73@example.net> OK
S: 250 2.1.5 Recipient <u74@example.net> OK
S: 250 2.1.5 Recipient <u75@example.net> OK
S: 250 2.1.5 Recipient <u76@example.net> OK
S: 250 2.1.5 Recipient <u77@example.net> OK
S: 250 2.1.5 Recipient <u78@example.net> OK
S: 250 2.1.5 Recipient <u79@example.net> OK
S: 250 2.1.5 Recipient <u80@example.net> OK
S: 250 2.1.5 Recipient <u81@example.net> OK
S: 250 2.1.5 Recipient <u82@example.net> OK
S: 250 2.1.5 Recipient <u83@example.net> OK
S: 250 2.1.5 Recipient <u84@example.net> OK
S: 250 2.1.5 Recipient <u85@example.net> OK
S: 250 2.1.5 Recipient <u86@example.net> OK
S: 250 2.1.5 Recipient <u87@example.net> OK
S: 250 2.1.5 Recipient <u88@example.net> OK
S: 250 2.1.5 Recipient <u89@example.net> OK
S: 250 2.1.5 Recipient <u90@example.net> OK
S: 250 2.1.5 Recipient <u91@example.net> OK
S: 250 2.1.5 Recipient <u92@example.net> OK
S: 250 2.1.5 Recipient <u93@example.net> OK
S: 250 2.1.5 Recipient <u94@example.net> OK
S: 250 2.1.5 Recipient <u95@example.net> OK
S: 250 2.1.5 Recipient <u96@example.net> OK
S: 250 2.1.5 Recipient <u97@example.net> OK
S: 250 2.1.5 Recipient <u98@example.net> OK
S: 250 2.1.5 Recipient <u99@example.net> OK
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
M: @TMP@/Maildir/new/*=\n\t; 
