# DSN (RFC 3461 4.2): a malformed ORCPT (no addr-type, an addr-type that is not an atom, bad or empty xtext, over 500 chars) or a repeated one is 501 5.5.4.
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
C: RCPT TO:<joe@example.net> ORCPT=joe@example.net
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=;joe@example.net
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc822;
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc822;joe=x@example.net
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc822;joe+2x@example.net
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc@822;joe@example.net
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc822;jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
S: 501 5.5.4 Bad ORCPT parameter
C: RCPT TO:<joe@example.net> ORCPT=rfc822;a@b ORCPT=rfc822;c@d
S: 501 5.5.4 Duplicate ORCPT parameter
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
