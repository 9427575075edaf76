# LMTP: one address given several ways (joe, JOE, joe@EXAMPLE.NET) is delivered once, as over SMTP; each RCPT still gets its reply after DATA (RFC 2033 4.2), the first one's; a failing mailer's duplicates get its reply too.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/joe/
ann@example.net @TMP@/ann/
mary@example.net "|exit 75"
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: LHLO client.example
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
C: RCPT TO:<JOE@example.net>
S: 250 2.1.5 Recipient <JOE@example.net> OK
C: RCPT TO:<ann@example.net>
S: 250 2.1.5 Recipient <ann@example.net> OK
C: RCPT TO:<joe@EXAMPLE.NET>
S: 250 2.1.5 Recipient <joe@EXAMPLE.NET> OK
C: RCPT TO:<Mary@example.net>
S: 250 2.1.5 Recipient <Mary@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: dup
C: 
C: once
C: .
S: 250 2.0.0 delivered to 1 Maildir
S: 451 4.3.0 temporary failure (exit status 75)
S: 250 2.0.0 delivered to 1 Maildir
S: 250 2.0.0 delivered to 1 Maildir
S: 250 2.0.0 delivered to 1 Maildir
S: 451 4.3.0 temporary failure (exit status 75)
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe/new/*=once
M: @TMP@/ann/new/*=once
