/*
 * deliver.h - local delivery: the direct path of SPEC 7 (no spool).
 *
 * Owns: the delivery plan of a transaction (which mailer runs and Maildir
 * writes its recipients need, and whether this build can serve them
 * directly), running pipe mailers and |commands, writing Maildirs all or
 * none. A mailer's exit status becomes a reply through reply.h's table.
 *
 * Never: delivers a message that is not complete, puts an address into a
 * shell command's text, or writes outside the Maildirs it was given.
 */
#ifndef POSTMASTER_DELIVER_H
#define POSTMASTER_DELIVER_H

#include <sys/types.h>

#include "reply.h"
#include "route.h"

/* The message as the session stored it: Received header first, text mail
 * with LF line endings, binary mail as received. */
struct msg {
	int fd;
	off_t off; /* where the message starts in fd (after a spool envelope) */
	off_t size;
	const char *from; /* "" for <> */
	const char *sid;
	const char *hostname;
	int binary; /* BODY=BINARYMIME: headers we add end in CRLF */
};

/* Up to n bytes of the message from off (0 is its first byte): fewer
 * only at its end; 0 past it, -1 with errno on a read error. */
ssize_t msg_read(const struct msg *m, off_t off, void *p, size_t n);

enum run_kind { RUN_NONE, RUN_MAILDIRS, RUN_PIPE, RUN_CMD };

/* The runs one transaction (SMTP) or one recipient (LMTP) needs. */
struct plan {
	enum run_kind kind;
	const struct cf_section *pipe; /* RUN_PIPE */
	char *cmd;                     /* RUN_CMD */
	char **values;                 /* RCPT_TO values (RUN_PIPE, RUN_CMD) */
	unsigned nvalues;
	char **maildirs, **maildir_rcpts; /* RUN_MAILDIRS */
	unsigned nmaildirs, maildirs_cap;
	/* an open hash of the Maildirs (index + 1, 0 free), so that adding
	 * a recipient costs the same however many came before */
	unsigned *maildir_slots;
	unsigned nslots;
	char *first_rcpt;   /* the first recipient as the client gave it */
	int several_rcpts;  /* and a different one came after it */
	unsigned discards;
	/* from the spool: Maildir files are named after the message, so a
	 * repeated run finds the copy it wrote before */
	const char *spool_id;
};

enum plan_verdict {
	PLAN_OK,
	PLAN_LATER, /* another run of the direct path would serve it */
	PLAN_SPOOL, /* needs the spool or the network */
	PLAN_REFUSED, /* no mailer may take it: see plan_blank_reply() */
};

/*
 * Adds the targets of one recipient to p, or leaves p unchanged and says
 * why it cannot. This is the one place that decides what the direct path
 * can serve: a transaction with a recipient that does not fit goes to the
 * spool (SPEC 7 path 3). Its cost does not grow with the recipients that
 * p already holds. A target that would put a blank into a mailer's
 * RCPT_TO is PLAN_REFUSED here, whichever path routed it (a session, a
 * report to a sender, the flusher), so that no caller can miss it.
 */
enum plan_verdict plan_add(struct plan *p, const struct route_result *r,
			   const char *rcpt);
void plan_free(struct plan *p);

/* A mailer's RCPT_TO lists its recipients separated by blanks: a target
 * of r that would put a blank or a tab in it (a quoted local part) makes
 * r a 553 5.1.3 refusal, so that no mailer reads one address as two. */
void plan_refuse_blanks(struct route_result *r, const char *rcpt);

/* The 553 5.1.3 that refusal gives, in r. */
void plan_blank_reply(struct reply *r, const char *rcpt);

/* Runs the plan on the message: 1 when its mailer was killed at its
 * timeout (the flusher then spares that mailer's other messages the
 * wait), else 0. */
int plan_deliver(const struct plan *p, const struct msg *m, int timeout_s,
		 struct reply *out);

#endif
