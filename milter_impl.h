/*
 * milter_impl.h - what milter.c and milter_eom.c share.
 *
 * Owns: the state of one milter connection and of a session's milters.
 *
 * Never: included outside milter.c and milter_eom.c.
 */
#ifndef POSTMASTER_MILTER_IMPL_H
#define POSTMASTER_MILTER_IMPL_H

#include <stdint.h>

#include "cf.h"
#include "milter.h"
#include "milter_proto.h"
#include "util.h"

/* SMFIR_PROGRESS packets one reply may be preceded by: each restarts the
 * wait, so they are bounded, or a milter could hold a session for ever. */
#define MILTER_MAX_PROGRESS 1000

enum mc_state {
	MC_ACTIVE,
	MC_SKIP_MSG,  /* accepted this transaction: silent until the next */
	MC_SKIP_CONN, /* accepted the connection: silent until QUIT */
	MC_FAILED,    /* down or broken: default-action decides */
};

struct mconn {
	const struct cf_section *sec;
	const char *name;
	int fd;
	enum mc_state st;
	int in_tx;          /* it has seen MAIL: ABORT ends that */
	uint32_t actions;   /* SMFIF_* it may use */
	uint32_t proto;     /* SMFIP_* it asked for */
	char *macros[SMFIM_N]; /* the names it asked for, or NULL */
};

struct milters {
	unsigned n;
	struct mconn *m;
	struct buf pkt, in;      /* the packet being written, the one read */
	int refused;             /* the connect or HELO stage refused */
	struct reply refusal;
	int discard;             /* a milter said discard before the end */
	int skip_body;           /* SMFIR_SKIP: no more body chunks */
	const char *rcpt;        /* {rcpt_addr} while RCPT is reported */
	char quarantine[256];    /* SMFIR_QUARANTINE's reason, or "" */
};

/* milter.c: sends the macros of class cls, then the packet in ms->pkt,
 * and reads the milter's answer when it gives one. */
enum milter_verdict milter_event(struct session *s, struct mconn *m, int cls,
				 int expect_reply, int stage, struct reply *r);
/* The stage of an event, for what accept means and the reject texts. */
enum { STAGE_CONN, STAGE_HELO, STAGE_MAIL, STAGE_RCPT, STAGE_DATA,
       STAGE_CONTENT, STAGE_EOM };
/* m broke (why): closed, and default-action decides (r filled). */
enum milter_verdict milter_failed(struct session *s, struct mconn *m,
				  const char *why, struct reply *r);
/* What a final reply packet (cmd, ms->in) means at stage. */
enum milter_verdict milter_verdict(struct session *s, struct mconn *m,
				   char cmd, int stage, struct reply *r);
/* The timeout of m at stage, in ms. */
int milter_timeout(const struct mconn *m, int stage);
/* m's next reply packet (its command in *cmd, its data in in) but the
 * SMFIR_PROGRESS before it, at most MILTER_MAX_PROGRESS of them. -1 with
 * why when it breaks or sends more. */
int milter_read_reply(struct mconn *m, struct buf *in, int timeout_ms,
		      char *cmd, char *why, size_t n);

#endif
