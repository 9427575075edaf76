# RFC 2920: replies go out when the input runs dry. A client whose group ends inside a line (here the rest of RCPT comes only after it has read the replies) gets the replies so far before postmaster waits for the rest.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net discard
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: EHLO client.example
C: MAIL FROM:<a@b.example>
R: b'RCPT TO:<joe@exa'
S: 250-mail.example.net
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S: 250 X-LMTP
S: 250 2.1.0 Sender <a@b.example> OK
R: b'mple.net>\r\nDATA\r\n'
S: 250 2.1.5 Recipient <joe@example.net> OK
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: .
C: QUIT
S: 250 2.0.0 discarded
S: 221 2.0.0 mail.example.net closing connection
E:
