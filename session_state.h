/*
 * session_state.h - the state of one session, shared by the files that
 * serve it: session.c (the dialogue), session_start.c (before the
 * greeting), session_envelope.c (MAIL and RCPT arguments),
 * session_auth.c (AUTH), session_reply.c (the one reply function),
 * session_filters.c (SPEC 8), milter.c and milter_eom.c (the milters),
 * handoff.c (what becomes of a received message) and proxy.c (the live
 * proxy). Private to them.
 *
 * Owns: struct session, its states, and the transaction it holds.
 *
 * Never: included by any other file: the rest of the program sees
 * session.h only.
 */
#ifndef POSTMASTER_SESSION_STATE_H
#define POSTMASTER_SESSION_STATE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "addr.h"
#include "cf.h"
#include "data.h"
#include "deliver.h"
#include "dsn.h"
#include "fmt.h"
#include "io.h"
#include "route.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

struct proxy;

#define CMD_MAX 512      /* RFC 5321 4.5.3.1.4 */
#define CMD_MAX_EXT 4096 /* with extension parameters (MAIL, RCPT) */

/* ST_BDAT: BDAT chunks of the transaction are being received (or, after
 * an error, discarded) until LAST. */
enum state { ST_GREETED, ST_READY, ST_MAIL, ST_RCPT, ST_BDAT };
enum body { BODY_7BIT, BODY_8BITMIME, BODY_BINARYMIME };
enum proto { P_NONE, P_HELO, P_EHLO, P_LHLO };
enum bdat { BDAT_NONE, BDAT_RECEIVING, BDAT_DISCARDING };


/* RCPT's parameters (RFC 3461 4.1, 4.2) */
struct rcpt_params {
	unsigned notify;               /* DSN_* bits; 0 when not given */
	char orcpt[DSN_ORCPT_MAX + 1]; /* "type;xtext" as given, or "" */
};

/* A recipient while RCPT decides on it. */
struct rcpt {
	char addr[ADDR_PATH_MAX];
	struct route_result r;
	struct plan plan; /* LMTP: each recipient stands alone */
	int spooled;      /* LMTP: this recipient goes to the spool */
	struct rcpt_params dsn;
};

/* A target as the spool needs it, without route_target's fixed buffer. */
struct kept_target {
	enum target_kind kind;
	const struct cf_section *sec;
	char *addr, *arg; /* arg NULL when the target has none */
};

/*
 * An accepted recipient, kept small: a transaction holds up to
 * max-recipients of them (SPEC 11). Its address, targets and their strings
 * share one allocation, at t.
 */
struct kept_rcpt {
	char *addr;
	struct kept_target *t;
	uint32_t nt;
	int spooled;       /* LMTP: this recipient goes to the spool */
	struct plan *plan; /* LMTP: its own run; NULL in SMTP */
	unsigned notify;   /* NOTIFY= as DSN_* bits, 0 when not given */
	char *orcpt;       /* ORCPT= as given, NULL when none */
	/* LMTP: a milter added it (no reply of its own), or deleted it (it
	 * is answered, delivered to nobody) */
	unsigned char milter_added, milter_deleted;
	unsigned char proxied; /* the live proxy gave it to its target */
};

struct session {
	struct cf *cf;
	const struct cf_section *smtpd;
	char sid[16];
	char msgid[64]; /* the fix-ups' Message-ID, without <@host> */
	char name[256];
	char peer[80], local[80];
	int peer_port, local_port;
	int peer_is_pipe;
	/* an AF_UNIX socket bound to this path (sun_path's 108 bytes, an
	 * abstract name's "@" and the NUL) */
	char unix_path[110];
	struct {
		int known; /* an AF_UNIX peer: SO_PEERCRED told who it is */
		uid_t uid;
		gid_t gid;
		pid_t pid;
		char user[64]; /* "" when the uid has no name */
	} cred;
	int relay_client; /* 0: not known yet, 1: in relay-clients, -1: not */
	enum state state;
	enum proto proto;
	char helo[256];
	int errors;
	int junk;    /* commands without mail (junk-command-limit) */
	int deliveries; /* detached delivery processes not yet reaped */
	int failed;  /* the command being served got a 4xx/5xx reply */
	int delivered; /* ... and delivered or queued mail */
	int quit;
	/* limits */
	uint64_t max_size;
	unsigned max_rcpt;
	int timeout;
	int max_junk;
	int bare_reject;
	int lmtp_ok;
	int accept_mail;
	int verify_sender;
	int spf_mode;         /* SPF_* */
	struct buf received_spf; /* the transaction's Received-SPF field */
	/* TLS (SPEC 8): the secrets are read before privileges are dropped,
	 * GnuTLS is loaded only when a handshake starts */
	int tls_mode; /* STLS_* */
	int tls_on;
	const char *tls_priority;
	struct buf tls_cert[CF_MAX_TLS_KEYPAIRS], tls_key[CF_MAX_TLS_KEYPAIRS];
	size_t tls_npairs;
	/* AUTH (SPEC 8, RFC 4954): the auth-file is read before the drop */
	int auth_mode; /* AUTH_* */
	int submission; /* [smtpd] submission: fix-ups for authenticated mail */
	struct buf auth_table;
	char auth_user[256]; /* set once a login succeeded */
	char auth_mech[8];   /* PLAIN or LOGIN, with auth_user */
	int auth_failures;
	/* the transaction */
	char from[ADDR_PATH_MAX];
	enum body body;
	int smtputf8;
	enum dsn_ret dsn_ret;           /* RET= */
	char envid[DSN_ENVID_MAX + 1];  /* ENVID= as given, or "" */
	struct kept_rcpt *rcpts;
	unsigned nrcpt, rcpt_cap;
	unsigned rcpt_overshoot; /* RCPTs answered 452 4.5.3 */
	struct plan plan; /* SMTP: one plan for the transaction */
	int spooled;      /* SMTP: the transaction goes to the spool */
	uint64_t declared_size; /* MAIL's SIZE=, 0 when not given */
	/* the live proxy (proxy.c): NULL unless this transaction uses it */
	int proxy_ok;         /* [smtpd] proxy */
	int proxy_ms;         /* [smtpd] proxy-timeout */
	struct proxy *px;
	unsigned px_pending;  /* the target's replies due */
	int px_syncing;       /* they are being given */
	int spool_fd;     /* the spool directory */
	struct spool_msg sm; /* the spooled message being received */
	int sm_uncommitted;  /* its data file exists, its envelope not */
	enum bdat bdat;
	uint64_t header_size; /* the header fields we put on top */
	time_t arrival;       /* when the data began: delay= of its lines */
	struct datamachine dm;
	struct datastore data; /* the message, its headers watched */
	/* SPEC 8's DNS lists and policy service: NULL unless the section
	 * names one (session_filters.c) */
	struct session_filters *filters;
	struct milters *milters; /* NULL when [smtpd] names no milter */
	int envelope_changed;    /* the milters changed sender or recipients */
	/* last: its 16 KiB input buffer comes after every small field, so
	 * that those share the few pages a session touches */
	struct io io;
};

/* "<addr>" for a log line */
/* session.c: the one reply function. e is ESC_NONE exactly for the
 * replies that carry no enhanced code: the greeting, EHLO/HELO/LHLO, 354
 * and 334 (SPEC 5); the enhanced code's class is the reply code's. Text
 * with '\n' becomes a multiline reply. Client text must be escaped with
 * esc(), which keeps a ring of a few results. */
void reply(struct session *s, int code, enum esc e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with an enhanced code written elsewhere (a route's result, a
 * mailer's or a peer's reply); one of the wrong class is never sent. */
void reply_dsn(struct session *s, int code, const char *dsn,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *esc(const char *s, size_t n);
/* Sends what the replies buffered. */
void flush(struct session *s);

/* session.c: the one writer of the state (the verb table reads it), and
 * the end of a transaction: the envelope, the data and the filters'
 * state forgotten, the state back to ST_READY. */
void session_set_state(struct session *s, enum state st);
void session_transaction_reset(struct session *s);

/* session_data.c: DATA and BDAT; a refused DATA (content already sent
 * ends the session); and a command line refused before its verb ran,
 * whose BDAT chunk is skipped before the refusal (SPEC 5). */
void session_cmd_data(struct session *s, char *arg);
void session_cmd_bdat(struct session *s, char *arg);
void session_refuse_data(struct session *s, const struct reply *r);
void session_refuse_line(struct session *s, const char *line,
			 const struct reply *r);

/* session_auth.c: whether AUTH is offered now, and the AUTH command. */
int session_auth_offered(const struct session *s);
void session_cmd_auth(struct session *s, char *arg);

/* session_envelope.c: the arguments of MAIL and RCPT, and the recipients
 * a transaction keeps. */
/* Frees what a kept recipient holds. */
void envelope_free_rcpt(struct kept_rcpt *k);
/* target= of k's log lines, appended to b: its targets as the spool's
 * lines name them, joined as a route line joins them; NULL for none. */
const char *envelope_targets_text(const struct kept_rcpt *k, struct buf *b);
/* Takes s->rcpts[i] out of the transaction (the proxy's target refused
 * it). */
void envelope_drop_rcpt(struct session *s, unsigned i);
struct mail_params {
	uint64_t size; /* SIZE=, 0 when not given */
	enum body body;
	int smtputf8;
	enum dsn_ret ret;
	char envid[DSN_ENVID_MAX + 1]; /* xtext as given; "" when none */
};
/* "<path>" at p, quotes honoured; returns the end after '>' or NULL. */
char *envelope_path_end(char *p);
/* The parameters after MAIL's path: 0, or -1 with the reply in r, or
 * with *bad at a parameter this server does not take. */
int envelope_mail_params(char *q, int helo, int auth_ok,
			 struct mail_params *mp, struct reply *r,
			 const char **bad);
/* The parameters after RCPT's path, likewise. */
int envelope_rcpt_params(char *q, int helo, struct rcpt_params *rp,
			 struct reply *r, const char **bad);
/* SPEC 6: whether this client may relay. */
int envelope_relay_allowed(struct session *s);
/* Appends rc to the transaction's recipients in the small form; takes
 * over rc's plan, leaves its route result to the caller. */
void envelope_keep_rcpt(struct session *s, struct rcpt *rc);
/* LMTP after the data: recipients that one run serves (the same address
 * as routing compares it, case aside, with the same targets, both on the
 * direct path) share a slot in *slot, -1 for none; the run is the first
 * of them's. The number of slots; 0 with *slot NULL when no two share. */
unsigned envelope_shared_runs(const struct session *s, int **slot);
/* LMTP: when one RCPT of an address goes to the spool (NOTIFY=SUCCESS,
 * or a milter added it), every RCPT of it with the same targets does, so
 * that the message is delivered once (the direct run would deliver a
 * second copy). At the data's start and after the milters. Linear: the
 * recipients sorted by address. */
void envelope_spool_duplicates(struct session *s);
/* A milter's changes of the envelope (SMFIR_ADDRCPT, SMFIR_DELRCPT,
 * SMFIR_CHGFROM): 0, or -1 with why in r. An added recipient is routed
 * like a RCPT (without the relay check: the milter vouches for it) and,
 * like any change of recipients, sends the transaction to the spool. */
int envelope_add_rcpt(struct session *s, const char *path, struct reply *r);
int envelope_delete_rcpt(struct session *s, const char *path,
			 struct reply *r);
int envelope_change_sender(struct session *s, const char *path,
			   struct reply *r);

/* session_local.c: a client on an AF_UNIX socket (SPEC 2). Learns who
 * it is from the kernel and makes it an authenticated local submitter:
 * 0, or -1 when fd tells no credentials. */
int session_local_peer(struct session *s, int fd);
/* Whether a may be the envelope sender of this client; if not, r says
 * why (550 5.7.1). Always 1 but for a local submitter. */
int session_local_sender_ok(const struct session *s, const struct addr *a,
			    struct reply *r);

/* session_start.c: settles everything before the greeting. 0, or
 * START_FAILED or START_NO_SMTPD with the reason in why. */
enum { START_FAILED = 1, START_NO_SMTPD = 2 };
int session_start(struct session *s, const char *smtpd_name, int cf_ok,
		  char *why, size_t n);

/* session_filters.c: greet-pause, DNS lists, the policy service. Each
 * hook does nothing (no system call) for a section without them. */
struct session_filters;
/* When the connection opens: the DNS queries leave. */
void session_filters_start(struct session *s);
/* Before the greeting: 0 to greet, -1 when the client talked first (it
 * has its 554 reply) or left. */
int session_greet_pause(struct session *s);
/* At RCPT, for a recipient the routes accept (rr->code 250): the lists'
 * verdict and the policy's; a refusal replaces rr's code and text. */
void session_filters_rcpt(struct session *s, const struct addr *a,
			  const char *addr, struct route_result *rr);
/* After the data: 1 with the policy's refusal in r, else 0. */
int session_filters_eom(struct session *s, struct reply *r);
/* The header fields the policy prepends, on top of the message. */
void session_filters_headers(struct session *s, struct buf *h,
			     const char *eol);
/* The transaction ends; and the session. */
void session_filters_reset(struct session *s);
void session_filters_end(struct session *s);

static inline const char *angle(const char *a, char *buf, size_t n)
{
	fmt_snprintf(buf, n, "<%s>", a);
	return buf;
}

#endif
