# A |command that does not exist (the shell exits 127) gives 554 5.3.0.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net "|/nonexistent/mailer"
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
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S~ 554 5\.3\.0 mailer failed \(exit status 127\): .*not found
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
