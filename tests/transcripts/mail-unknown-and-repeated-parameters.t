# Unknown MAIL parameters (MT-PRIORITY, AUTH before it is offered) are 555 5.5.4 (RFC 5321 4.1.1.11); a repeated one is malformed, 501 5.5.4, as a repeated DSN parameter is (RFC 3461 4); SMTPUTF8 takes no value (501).
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
C: MAIL FROM:<a@b.example> MT-PRIORITY=3
S: 555 5.5.4 Unsupported parameter MT-PRIORITY
C: MAIL FROM:<a@b.example> XFOO
S: 555 5.5.4 Unsupported parameter XFOO
C: MAIL FROM:<a@b.example> AUTH=<>
S: 555 5.5.4 Unsupported parameter AUTH
C: MAIL FROM:<a@b.example> SIZE=10 SIZE=20
S: 501 5.5.4 Duplicate SIZE parameter
C: MAIL FROM:<a@b.example> BODY=7BIT BODY=8BITMIME
S: 501 5.5.4 Duplicate BODY parameter
C: MAIL FROM:<a@b.example> SMTPUTF8 SMTPUTF8
S: 501 5.5.4 Duplicate SMTPUTF8 parameter
C: MAIL FROM:<a@b.example> SMTPUTF8=yes
S: 501 5.5.4 SMTPUTF8 takes no value
C: MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8
S: 250 2.1.0 Sender <a@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
