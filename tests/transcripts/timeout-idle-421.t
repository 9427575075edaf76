# With timeout = 1s a client that sends nothing after EHLO gets 421 4.4.2 and the connection closes.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
timeout = 1s
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
S: 421 4.4.2 mail.example.net Timeout exceeded, closing connection
E:
