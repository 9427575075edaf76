# A quoted local part with blanks is refused (553 5.1.3) when it would reach a [pipe] or a |command, whose RCPT_TO separates recipients by blanks: a script that splits it read "victim@example.net" as a recipient. A Maildir still takes it.
[config]
[core]
hostname = mail.example.net
logger = stderr
[route]
@example.org list
@example.com "|cat > @TMP@/out"
@example.net @TMP@/md/
[pipe "list"]
exec = /bin/sh -c "echo $RCPT_TO >> @TMP@/list; cat > /dev/null"
max_rcpt_to = 10
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: HELO client.example
S: 250 mail.example.net
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<"x victim@example.net y"@example.org>
S: 553 5.1.3 <"x victim@example.net y"@example.org>: an address with a blank cannot go to a mailer, whose RCPT_TO separates addresses by blanks
C: RCPT TO:<"x y"@example.com>
S: 553 5.1.3 <"x y"@example.com>: an address with a blank cannot go to a mailer, whose RCPT_TO separates addresses by blanks
C: RCPT TO:<"x y"@example.net>
S: 250 2.1.5 Recipient <"x y"@example.net> OK
C: RCPT TO:<"x.y"@example.org>
S: 250 2.1.5 Recipient <x.y@example.org> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<a@b.example>
S: 250 2.1.0 Sender <a@b.example> OK
C: RCPT TO:<"x victim@example.net y"@example.org>
S~ 553 5\.1\.3 .*
C: RCPT TO:<joe@example.org>
S: 250 2.1.5 Recipient <joe@example.org> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: t
C:
C: x
C: .
S: 250 2.0.0 delivered
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/list=joe@example.org
N: @TMP@/out
