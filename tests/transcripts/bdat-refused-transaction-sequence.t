# After a refused first BDAT (no recipient yet) the transaction waits for LAST: RCPT is 503 "during BDAT", DATA still "No valid recipients", MAIL "Nested", further chunks 551; LAST ends it and MAIL is taken again. Before MAIL a refused BDAT leaves MAIL open.
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
C: BDAT 3
R: b'abc'
S: 503 5.5.1 No valid recipients (discarded 3 octets)
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: BDAT 3
R: b'def'
S: 503 5.5.1 No valid recipients (discarded 3 octets)
C: RCPT TO:<joe@example.net>
S: 503 5.5.1 RCPT not allowed during BDAT
C: DATA
S: 503 5.5.1 No valid recipients
C: MAIL FROM:<c@d.example>
S: 503 5.5.1 Nested MAIL command
C: BDAT 2
R: b'gh'
S: 551 5.0.0 Discarded 2 octets after an earlier error
C: BDAT 2 LAST
R: b'ij'
S: 551 5.0.0 Discarded 2 octets after an earlier error
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA now
S: 501 5.5.4 Syntax: DATA
C: RSET x
S: 501 5.5.4 Syntax: RSET
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir
