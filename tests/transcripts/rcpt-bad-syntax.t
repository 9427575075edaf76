# Malformed RCPT commands: wrong keyword 501 5.5.4; bad path or <> 501 5.1.3; an unknown parameter 555 5.5.4, named by its keyword as MAIL's are.
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
C: RCPT FROM:<joe@example.net>
S: 501 5.5.4 Syntax: RCPT TO:<address>
C: RCPT TO:joe@example.net
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<joe@example.net
S: 501 5.1.3 Bad recipient address syntax
C: RCPT TO:<>
S~ 501 5\.1\.3 Bad recipient address syntax: .+
C: RCPT TO:<joe@@example.net>
S~ 501 5\.1\.3 Bad recipient address syntax: .+
C: RCPT TO:<joe@example.net> MT-PRIORITY=3
S: 555 5.5.4 Unsupported parameter MT-PRIORITY
C: RCPT TO:<joe@example.net> SIZE=10
S: 555 5.5.4 Unsupported parameter SIZE
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
