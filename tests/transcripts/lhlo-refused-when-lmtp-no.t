# With lmtp = no the listener refuses LHLO (502 5.5.1) and stays usable with EHLO.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
lmtp = no
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: LHLO client.example
S: 502 5.5.1 LMTP is not accepted on this port
C: MAIL FROM:<a@b.example>
S: 503 5.5.1 Send EHLO or HELO first
C: EHLO client.example
S: 250-mail.example.net
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250 DSN
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
