/*
 * deliver.h - local delivery: the direct path of SPEC 7 (no spool).
 *
 * Owns: the delivery plan of a transaction (which mailer runs and Maildir
 * writes its recipients need, and whether this build can serve them
 * directly), running pipe mailers and |commands, writing Maildirs all or
 * none, and the one table that turns a mailer's exit status into a reply
 * (Postfix's sys_exits.c is the model).
 *
 * Never: delivers a message that is not complete, puts an address into a
 * shell command's text, or writes outside the Maildirs it was given.
 */
#ifndef POSTMASTER_DELIVER_H
#define POSTMASTER_DELIVER_H

#include <sys/types.h>

#include "route.h"

struct reply {
	int code;
	char dsn[12];
	char text[400];
};

/* Fills r: code, enhanced status code, and printf-formatted text. */
void reply_set(struct reply *r, int code, const char *dsn, const char *fmt,
	       ...) __attribute__((format(printf, 4, 5)));

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
};

/*
 * Adds the targets of one recipient to p, or leaves p unchanged and says
 * why it cannot. This is the one place that decides what the direct path
 * can serve: a transaction with a recipient that does not fit goes to the
 * spool (SPEC 7 path 3). Its cost does not grow with the recipients that
 * p already holds.
 */
enum plan_verdict plan_add(struct plan *p, const struct route_result *r,
			   const char *rcpt);
void plan_free(struct plan *p);

/* Runs the plan on the message. */
void plan_deliver(const struct plan *p, const struct msg *m, int timeout_s,
		  struct reply *out);

/* The reply for a mailer's wait status (sysexits, signals). first_line is
 * the mailer's first output line, which may supply "D.S.N text". */
void exit_status_reply(int wstatus, const char *first_line,
		       struct reply *out);

/* The other way, for local programs (sendmail's exit status): 0 for a
 * 2xx, EX_TEMPFAIL for a 4xx; for a 5xx, the status of the one row of the
 * table that carries its enhanced code, else EX_NOUSER for an address
 * problem (5.1.x) and EX_UNAVAILABLE for the rest. */
int reply_exit_status(const struct reply *r);

#endif
