# Two recipients that need two mailer runs: the transaction goes to the spool (one 250), both runs happen, the spool is left empty.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net "|cat > @TMP@/joe.msg"
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
S: 250-DSN
S: 250 X-LMTP
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<mary@example.net>
S: 250 2.1.5 Recipient <mary@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: two runs
C:
C: x
C: .
S~ 250 2\.0\.0 Ok: queued as [0-9A-F]{18}
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe.msg=Delivered-To: joe@example.net\nReceived: from client.example (local)
M: @TMP@/joe.msg=Subject: two runs\n\nx\n
M: @TMP@/mary.msg=Delivered-To: mary@example.net\n
Q: 0
