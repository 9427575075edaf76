# The %-hack and bang paths never relay: user%remote@local is an unknown local user, not a relay.
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
C: RCPT TO:<victim%remote.example@example.net>
S: 550 5.1.1 <victim%remote.example@example.net>: user unknown
C: RCPT TO:<remote.example!victim@example.net>
S: 550 5.1.1 <remote.example!victim@example.net>: user unknown
C: RCPT TO:<@example.net:victim@remote.example>
S: 550 5.7.1 <victim@remote.example>: relaying denied
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
