# DSN (RFC 3461 4.1, 4.2): NOTIFY=NEVER or SUCCESS,FAILURE,DELAY and ORCPT=addr-type;xtext (at most 500 chars) on RCPT; NEVER with another keyword, an unknown or repeated keyword, or a repeated NOTIFY is 501 5.5.4.
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
C: RCPT TO:<joe@example.net> NOTIFY=NEVER
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=failure
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=DELAY
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS,FAILURE,DELAY
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=delay,success
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> ORCPT=rfc822;joe@example.net
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> ORCPT=rfc822;joe+2Balias@example.net
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> ORCPT=utf-8;joe@example.net
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;joe@example.net
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> ORCPT=rfc822;jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
S: 250 2.1.5 Recipient <joe@example.net> OK
C: RCPT TO:<joe@example.net> NOTIFY=NEVER,SUCCESS
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=FAILURE,NEVER
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS,SUCCESS
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=ALWAYS
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS,
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=,DELAY
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY
S: 501 5.5.4 Bad NOTIFY parameter
C: RCPT TO:<joe@example.net> NOTIFY=SUCCESS NOTIFY=FAILURE
S: 501 5.5.4 Duplicate NOTIFY parameter
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
