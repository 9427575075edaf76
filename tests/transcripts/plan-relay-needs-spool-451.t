# Routes that need the spool or the network (a relay host, mx, a list of mixed targets) are 451 4.3.5 at RCPT.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
relay@example.net [192.0.2.1]
host@example.net relay.example.org
out@example.net mx
list@example.net @TMP@/list/, "|true"
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
C: RCPT TO:<relay@example.net>
S: 451 4.3.5 <relay@example.net>: this route needs the spool, which is not in this build
C: RCPT TO:<host@example.net>
S: 451 4.3.5 <host@example.net>: this route needs the spool, which is not in this build
C: RCPT TO:<out@example.net>
S: 451 4.3.5 <out@example.net>: this route needs the spool, which is not in this build
C: RCPT TO:<list@example.net>
S: 451 4.3.5 <list@example.net>: this route needs the spool, which is not in this build
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
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
N: @TMP@/list
