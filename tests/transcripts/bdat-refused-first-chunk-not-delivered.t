# A refused first BDAT chunk of a transaction (bad syntax after a readable size, a bare LF; see also bdat-refused-first-chunk-nul-long.t) loses the message: the rest is discarded up to LAST and nothing is delivered; a refused first chunk that is LAST ends the transaction.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
bare-newline = reject
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: HELO client.example
S: 250 mail.example.net
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
R: b'BDAT 7 junk\r\nFIRST\r\nBDAT 8 LAST\r\nSECOND\r\n'
S: 501 5.5.4 Syntax: BDAT size [LAST] (discarded 7 octets)
S: 551 5.0.0 Discarded 8 octets after an earlier error
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
R: b'BDAT 7\nFIRST\r\nBDAT 8 LAST\r\nSECOND\r\n'
S: 501 5.5.2 Bare CR or LF in command
S: 551 5.0.0 Discarded 8 octets after an earlier error
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
R: b'BDAT 7 LAST\nFIRST\r\nBDAT 8 LAST\r\nSECOND\r\n'
S: 501 5.5.2 Bare CR or LF in command
S: 503 5.5.1 No valid recipients (discarded 8 octets)
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
N: @TMP@/Maildir/new/*
