# The null sender after an earlier sender and RSET is echoed as <> (the reply's escaping buffer once kept the earlier text).
[config]
[core]
hostname = mail.example.net
logger = stderr
[dialogue]
S: 220 mail.example.net ESMTP postmaster
C: HELO client.example
S: 250 mail.example.net
C: MAIL FROM:<s1@example.org>
S: 250 2.1.0 Sender <s1@example.org> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<s2@example.org>
S: 250 2.1.0 Sender <s2@example.org> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<s3@example.org>
S: 250 2.1.0 Sender <s3@example.org> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<s4@example.org>
S: 250 2.1.0 Sender <s4@example.org> OK
C: RSET
S: 250 2.0.0 OK
C: MAIL FROM:<>
S: 250 2.1.0 Sender <> OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
