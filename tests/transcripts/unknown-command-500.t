# Unknown verbs, an empty line and an absurdly long verb are 500 5.5.2; verbs are case-insensitive.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
joe@example.net @TMP@/Maildir/
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: FOO bar
S: 500 5.5.2 Command unrecognized: FOO
C:
S: 500 5.5.2 Command unrecognized
C: ABCDEFGHIJKLMNOPQRSTUVWXYZ
S: 500 5.5.2 Command unrecognized
C: ETRN example.org
S: 500 5.5.2 Command unrecognized: ETRN
C: ehlo client.example
S~ 250-mail\.example\.net
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S~ 250-.*
S: 250 X-LMTP
C: mail from:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: NoOp
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
