# SMTP smuggling, bare-newline = normalize: a bare LF, a dot and a bare LF (b'\n.\n') does not end the data;
# the smuggled MAIL/RCPT/DATA inside stays content: no extra replies, exactly one message.
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
C: RCPT TO:<joe@example.net>
S: 250 2.1.5 Recipient <joe@example.net> OK
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
R: b'Subject: innocent\r\n\r\nhello\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<joe@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n'
C: .
S: 250 2.0.0 delivered to 1 Maildir
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 mail.example.net closing connection
E:
M: @TMP@/Maildir/new/*=Subject: innocent\n\nhello
M: @TMP@/Maildir/new/*=MAIL FROM:<evil@x.example>\nRCPT TO:<joe@example.net>\nDATA\nSubject: smuggled\n\nevil\n
