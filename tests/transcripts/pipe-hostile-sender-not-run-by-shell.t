# A sender address full of shell syntax reaches |command and [pipe] mailers as data only: nothing in it is executed.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net "|cat > @TMP@/joe.msg"
bob@example.net argv
[pipe "argv"]
exec = /bin/sh -c "printf %s \"$1\" > @TMP@/bob.arg" sh ${MAIL_FROM}
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
C: MAIL FROM:<"$(touch @TMP@/pwned1);`touch @TMP@/pwned2`"@b.example>
S: 250 2.1.0 Sender <"$(touch @TMP@/pwned1);`touch @TMP@/pwned2`"@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S: 250 2.0.0 delivered
C: MAIL FROM:<"$(touch @TMP@/pwned3)"@b.example>
S: 250 2.1.0 Sender <"$(touch @TMP@/pwned3)"@b.example> OK
C: RCPT TO:<bob@example.net>
S: 250 2.1.5 Recipient <bob@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: body
C: .
S: 250 2.0.0 delivered
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/joe.msg=Return-Path: <"$(touch @TMP@/pwned1);`touch @TMP@/pwned2`"@b.example>
M: @TMP@/bob.arg="$(touch @TMP@/pwned3)"@b.example
N: @TMP@/pwned*
