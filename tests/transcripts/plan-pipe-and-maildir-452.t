# A Maildir recipient after a pipe recipient is 452 4.5.3 (the direct path runs one kind of delivery per transaction).
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
mary@example.net "|cat > @TMP@/mary.msg"
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
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<mary@example.net>
S: 250 2.1.5 Recipient <mary@example.net> OK
C: RCPT TO:<joe@example.net>
S: 452 4.5.3 <joe@example.net>: send this recipient in a separate transaction
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: x
C: .
S: 250 2.0.0 delivered
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
F: @TMP@/mary.msg
N: @TMP@/Maildir/new/*
