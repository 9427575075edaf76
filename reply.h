/*
 * reply.h - the reply vocabulary: SMTP reply codes, enhanced status codes
 * (RFC 3463) and sysexits(3) statuses, and the one table between them.
 *
 * Owns: struct reply (a code, an enhanced code, a text), the named
 * enhanced codes (subject and detail; the class comes from the reply code,
 * so the two cannot disagree), and the sysexits table that turns a
 * mailer's exit status into a reply (Postfix's sys_exits.c is the model).
 * postmaster's own exit statuses are the <sysexits.h> names too.
 *
 * Never: does I/O, or writes an enhanced code whose class is not its reply
 * code's.
 */
#ifndef POSTMASTER_REPLY_H
#define POSTMASTER_REPLY_H

#include <sysexits.h>

/* "C.SSS.DDD" and its NUL */
#define ESC_LEN 12

/* An enhanced code without its class: subject and detail (RFC 3463 and the
 * IANA registry of SMTP enhanced status codes). */
#define ESC(subject, detail) ((subject) * 1000 + (detail))

enum esc {
	ESC_NONE = -1, /* the greeting, EHLO/HELO/LHLO, 354, 334 */
	ESC_OTHER = ESC(0, 0),
	ESC_OTHER_ADDRESS_STATUS = ESC(1, 0),
	ESC_BAD_DEST_MAILBOX = ESC(1, 1),
	ESC_BAD_DEST_SYSTEM = ESC(1, 2),
	ESC_BAD_DEST_MAILBOX_SYNTAX = ESC(1, 3),
	ESC_DEST_MAILBOX_VALID = ESC(1, 5),
	ESC_BAD_SENDER_MAILBOX_SYNTAX = ESC(1, 7),
	ESC_BAD_SENDER_SYSTEM = ESC(1, 8),
	ESC_RECIPIENT_NULL_MX = ESC(1, 10),
	ESC_OTHER_MAILBOX_STATUS = ESC(2, 0),
	ESC_OTHER_MAIL_SYSTEM_STATUS = ESC(3, 0),
	ESC_MAIL_SYSTEM_FULL = ESC(3, 1),
	ESC_SYSTEM_NOT_ACCEPTING = ESC(3, 2),
	ESC_MESSAGE_TOO_BIG_FOR_SYSTEM = ESC(3, 4),
	ESC_SYSTEM_INCORRECTLY_CONFIGURED = ESC(3, 5),
	ESC_NO_ANSWER_FROM_HOST = ESC(4, 1),
	ESC_BAD_CONNECTION = ESC(4, 2),
	ESC_ROUTING_SERVER_FAILURE = ESC(4, 3),
	ESC_UNABLE_TO_ROUTE = ESC(4, 4),
	ESC_ROUTING_LOOP = ESC(4, 6),
	ESC_OTHER_PROTOCOL_STATUS = ESC(5, 0),
	ESC_INVALID_COMMAND = ESC(5, 1),
	ESC_SYNTAX_ERROR = ESC(5, 2),
	ESC_TOO_MANY_RECIPIENTS = ESC(5, 3),
	ESC_INVALID_COMMAND_ARGUMENTS = ESC(5, 4),
	ESC_AUTH_LINE_TOO_LONG = ESC(5, 6),
	ESC_OTHER_MEDIA_ERROR = ESC(6, 0),
	ESC_CONVERSION_NOT_SUPPORTED = ESC(6, 3),
	ESC_NON_ASCII_ADDRESS = ESC(6, 7),
	ESC_OTHER_SECURITY_STATUS = ESC(7, 0),
	ESC_DELIVERY_NOT_AUTHORIZED = ESC(7, 1),
	ESC_SECURITY_FEATURES_NOT_SUPPORTED = ESC(7, 4),
	ESC_CRYPTOGRAPHIC_FAILURE = ESC(7, 5),
	ESC_AUTH_CREDENTIALS_INVALID = ESC(7, 8),
	ESC_ENCRYPTION_NEEDED = ESC(7, 10),
	ESC_ENCRYPTION_REQUIRED_FOR_AUTH = ESC(7, 11),
	ESC_SPF_VALIDATION_FAILED = ESC(7, 23),
	ESC_SPF_VALIDATION_ERROR = ESC(7, 24),
	ESC_SENDER_NULL_MX = ESC(7, 27),
};

struct reply {
	int code;
	char dsn[ESC_LEN]; /* "" when there is none */
	char text[400];
};

/* "class.subject.detail" in dsn, class 2, 4 or 5; "" for ESC_NONE. */
void esc_format(char dsn[ESC_LEN], int class, enum esc e);

/* The enhanced code a reply code and e make: its class is code / 100. */
void esc_for_code(char dsn[ESC_LEN], int code, enum esc e);

/* Fills r: code, the enhanced code of e in code's class, and
 * printf-formatted text. */
void reply_set(struct reply *r, int code, enum esc e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fills r with code and e's enhanced code, and no text. */
void reply_code(struct reply *r, int code, enum esc e);

/* A permanent reply made temporary: 451, its enhanced code in class 4 with
 * the same subject and detail, the same text. */
void reply_defer(struct reply *r);

/* Whether r is a peer's refusal of a recipient for its limit per
 * transaction: 452, or the 552 that RFC 821 gave it, with X.5.3 (RFC
 * 3463: too many recipients). RFC 5321 4.5.3.1.10 has a client take that
 * 552 as temporary: r is then made 452 4.5.3. */
int reply_too_many_recipients(struct reply *r);

/* 1 when status (a sysexits name) says "try again later" (EX_TEMPFAIL,
 * EX_OSERR), 0 when it is final or not a sysexits status. */
int sysexits_softerror(int status);

/* The exit status that says what a final reply code said: EX_OK for 2xx,
 * EX_TEMPFAIL for 4xx, EX_NOUSER for 5xx. */
int sysexits_for_code(int code);

/* The other way, for local programs (sendmail's exit status): EX_OK for a
 * 2xx, EX_TEMPFAIL for a 4xx; for a 5xx, the status of the one row of the
 * table that carries its enhanced code, else EX_NOUSER for an address
 * problem (5.1.x) and EX_UNAVAILABLE for the rest. */
int reply_exit_status(const struct reply *r);

/* The reply for a mailer's wait status (sysexits, signals). first_line is
 * the mailer's first output line, which may supply "D.S.N text". */
void exit_status_reply(int wstatus, const char *first_line,
		       struct reply *out);

#endif
