# Nine errors are tolerated; the tenth ends the session with 421 4.7.0.
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
C: BOGUS1
S: 500 5.5.2 Command unrecognized: BOGUS1
C: BOGUS2
S: 500 5.5.2 Command unrecognized: BOGUS2
C: BOGUS3
S: 500 5.5.2 Command unrecognized: BOGUS3
C: BOGUS4
S: 500 5.5.2 Command unrecognized: BOGUS4
C: BOGUS5
S: 500 5.5.2 Command unrecognized: BOGUS5
C: BOGUS6
S: 500 5.5.2 Command unrecognized: BOGUS6
C: BOGUS7
S: 500 5.5.2 Command unrecognized: BOGUS7
C: BOGUS8
S: 500 5.5.2 Command unrecognized: BOGUS8
C: BOGUS9
S: 500 5.5.2 Command unrecognized: BOGUS9
C: NOOP
S: 250 2.0.0 OK
C: BOGUS10
S: 500 5.5.2 Command unrecognized: BOGUS10
S: 421 4.7.0 mail.example.net Too many errors, closing connection
E:
