# Content sent before the 354 of a refused DATA ends the session (SPEC 5).
[config]
[core]
hostname = mail.example.net
[route]
joe@example.net discard
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
S~ 250-mail.example.net
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250 X-LMTP
C: MAIL FROM:<a@b.example>
C: RCPT TO:<nobody@remote.example>
C: DATA
C: Subject: smuggled
C: .
S: 250 2.1.0 Sender <a@b.example> OK
S: 550 5.7.1 <nobody@remote.example>: relaying denied
S: 554 5.5.0 Protocol error: message content sent before 354
E:
