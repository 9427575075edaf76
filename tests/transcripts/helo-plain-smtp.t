# HELO gets a one-line 250 with no extensions, and the message is received "with SMTP".
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: HELO client.example
S: 250 mail.example.net
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: helo
C:
C: body
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Received: from client.example (local)\n\tby mail.example.net (postmaster) with SMTP id 
