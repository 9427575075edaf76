# Before EHLO/HELO: MAIL, RCPT, DATA and BDAT are 503 5.5.1; NOOP, RSET, VRFY work; EHLO then opens the session.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Send EHLO or HELO first
C: RCPT TO:<joe@example.net>
S: 503 5.5.1 Send EHLO or HELO first
C: DATA
S: 503 5.5.1 Need MAIL and RCPT first
C: BDAT 4
R: b'QUIT'
S: 503 5.5.1 No valid recipients (discarded 4 octets)
C: NOOP
S: 250 2.0.0 OK
C: RSET
S: 250 2.0.0 OK
C: VRFY joe
S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
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
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
