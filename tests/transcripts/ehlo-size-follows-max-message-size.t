# EHLO announces SIZE as the listener's max-message-size, and no X-LMTP when lmtp = no.
[config]
[core]
hostname = mail.example.net
logger = stderr
[smtpd "mail.example.net"]
max-message-size = 1k
lmtp = no
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
S: 250-mail.example.net
S: 250-PIPELINING
S: 250-SIZE 1024
S: 250-8BITMIME
S: 250-BINARYMIME
S: 250-CHUNKING
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250 DSN
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
