# DSN (RFC 3461 4.3, 4.4): EHLO advertises it; RET=FULL|HDRS and ENVID=xtext (at most 100 chars) are taken in any case; a bad value, bad xtext or a repeat is 501 5.5.4.
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
C: MAIL FROM:<a@b.example> RET=FULL
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> RET=hdrs
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> ENVID=QQ314159
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> ENVID=a+2Bb+3Dc
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> RET=HDRS ENVID=x SIZE=10 BODY=8BITMIME
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> ENVID=EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE
S: 250 2.1.0 Sender <a@b.example> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example> RET=BOTH
S: 501 5.5.4 Bad RET parameter
C: MAIL FROM:<a@b.example> RET
S: 501 5.5.4 Bad RET parameter
C: MAIL FROM:<a@b.example> RET=
S: 501 5.5.4 Bad RET parameter
C: MAIL FROM:<a@b.example> RET=FULL RET=HDRS
S: 501 5.5.4 Duplicate RET parameter
C: MAIL FROM:<a@b.example> ENVID=
S: 501 5.5.4 Bad ENVID parameter
C: MAIL FROM:<a@b.example> ENVID
S: 501 5.5.4 Bad ENVID parameter
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
