/*
 * policy.h - the client of Postfix's policy delegation protocol (SPEC 8:
 * [smtpd] policy-service; Postfix's SMTPD_POLICY_README): a request is
 * name=value lines and an empty line; the answer is action=... lines and
 * an empty line. Services written for Postfix (postgrey, rate limiters)
 * work unchanged.
 *
 * Owns: the one connection of a session (opened at the first request, kept open,
 * opened again when the service had closed it or sent more than its
 * answer), the bounded read of an answer, and what each action means as
 * a reply.
 *
 * Never: builds a request from the session (session_filters.c does),
 * logs, or writes to the client.
 */
#ifndef POSTMASTER_POLICY_H
#define POSTMASTER_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "reply.h"
#include "util.h"

#define POLICY_LINE_MAX 4096 /* one answer line */
#define POLICY_MAX_LINES 64  /* lines of one answer */
#define POLICY_TEXT_MAX 320  /* of a reply text an action gives */
#define POLICY_HEADER_MAX 998 /* of a PREPEND header field (RFC 5322 2.1.1) */

struct io;

struct policy_client {
	struct sockaddr_storage ss;
	socklen_t len;
	int timeout_ms; /* the connect and each read or write */
	struct io *io;  /* NULL until connected */
};

/* Appends name=value to a request, with every control character of
 * value (CR, LF, ...) shown as '?': nothing can end a line early. */
void policy_attr(struct buf *req, const char *name, const char *value);

/* Sends the request (its attributes; the empty line is added) and reads
 * the answer's action into action. 0, or -1 with why (unreachable,
 * timeout, closed, no action). */
int policy_ask(struct policy_client *pc, const struct buf *req, char *action,
	       size_t n, char *why, size_t whyn);

/* Closes the connection. */
void policy_close(struct policy_client *pc);

enum policy_kind {
	POLICY_DUNNO,   /* no opinion: OK, DUNNO, DEFER_IF_REJECT, WARN, INFO */
	POLICY_REFUSE,  /* the reply in v: REJECT, DEFER, DEFER_IF_PERMIT, NNN */
	POLICY_PREPEND, /* a header field in v->text, whole */
	POLICY_LOG,     /* WARN or INFO: v->text goes to the log */
	POLICY_UNKNOWN, /* not an action this server takes (or malformed) */
};

struct policy_verdict {
	enum policy_kind kind;
	struct reply r; /* POLICY_REFUSE: code and enhanced code, text */
	/* a text cut at POLICY_TEXT_MAX; a header field is never cut:
	 * longer than POLICY_HEADER_MAX, it is POLICY_UNKNOWN */
	char text[POLICY_HEADER_MAX + 2];
};

/* What an action says (the keyword case-insensitive, as Postfix's
 * access(5)). A refusal's text is the action's text or a default. */
void policy_action(const char *action, struct policy_verdict *v);

#endif
