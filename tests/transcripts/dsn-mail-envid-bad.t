# DSN (RFC 3461 4, 4.4): ENVID that is not xtext ('=', a '+' without two upper-case hex digits, non-ASCII), over 100 chars, or repeated is 501 5.5.4.
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
C: MAIL FROM:<a@b.example> ENVID=a=b
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=a+2
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=a+2b
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=a+ZZ
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=été
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID=a ENVID=b
S: 501 5.5.4 Duplicate ENVID parameter
C: MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ314159
S: 250 2.1.0 Sender <a@b.example> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
