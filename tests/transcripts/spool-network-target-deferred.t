# Network targets and mixed lists are spooled at RCPT time; an unreachable relay host is deferred and stays in the spool, the list's targets are delivered.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
relay@example.net [127.0.0.1]:1
list@example.net @TMP@/list/, "|cat > @TMP@/list.msg"
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
C: RCPT TO:<relay@example.net>
S: 250 2.1.5 Recipient <relay@example.net> OK
C: RCPT TO:<list@example.net>
S: 250 2.1.5 Recipient <list@example.net> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S~ 250 2\.0\.0 Ok: queued as [0-9A-F]{18}
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
F: @TMP@/Maildir/new/*
F: @TMP@/list/new/*
M: @TMP@/list.msg=Subject: t\n\nbody\n
Q: 1
