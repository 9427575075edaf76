/*
 * client.h - the onward SMTP and LMTP client of SPEC 7.2.
 *
 * Owns: finding the addresses of a destination (a [relay]'s list, a host,
 * the MX hosts of a domain), trying them in order, the conversation
 * (EHLO/LHLO, PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING, DSN), and one
 * reply per recipient. Which reply means what for the message is the
 * caller's business (flush.c).
 *
 * Never: writes to the spool, or sends a message that a peer announced it
 * would refuse (SIZE) or could not carry (8bit, binary, SMTPUTF8).
 */
#ifndef POSTMASTER_CLIENT_H
#define POSTMASTER_CLIENT_H

#include "cf.h"
#include "deliver.h"
#include "route.h"

#include <sys/socket.h>

struct client_rcpt {
	const char *addr;
	unsigned notify;   /* RFC 3461 NOTIFY as DSN_* bits, or 0 */
	const char *orcpt; /* ORCPT (xtext) or NULL */
	struct reply r;    /* filled for every recipient */
};

struct client_job {
	const struct cf *cf;
	enum target_kind kind;         /* T_RELAY, T_HOST or T_MX */
	const struct cf_section *relay; /* T_RELAY */
	const char *arg;               /* T_HOST: the host; T_MX: the domain */
	const struct msg *m;
	int eightbit, smtputf8;
	int dsn_ret;       /* enum dsn_ret */
	const char *envid; /* ENVID (xtext) or NULL */
	int open_ms;       /* when not 0, the bound of each wait while a
			    * connection opens (the proxy's: a client waits) */
	int sessions;      /* sessions this attempt opened past EHLO and
			    * TLS (at most CLIENT_MAX_SESSIONS) */
	struct client_rcpt *r;
	unsigned n;
	char remote[320]; /* "host[ip]" that gave the replies, or "" */
	int remote_dsn;   /* ... and it advertised DSN: the parameters went on */
	int remote_tls;   /* ... and the replies came over TLS */
	/* found by client_deliver in the message itself */
	off_t wire_size;  /* with CRLF line ends, as SIZE counts it */
	int has8bit;      /* an octet above 127, whatever BODY declared */
	int hdr8bit;      /* ... in the header section */
	/* the 7-bit form, made when a peer needs it (mime.c) */
	int conv_state;   /* 0 not yet, 1 made, -1 impossible */
	struct msg conv;
	off_t conv_wire;
	char conv_why[200];
};

void client_deliver(struct client_job *j);

/* With on, a connection that served a transaction stays open for the next
 * message to the same destination (RSET between), until
 * client_close_connections(). The flusher's; a session's delivery child
 * sends one message and hangs up. */
void client_keep_connections(int on);
void client_close_connections(void);
/* A stream connection to ss within timeout_ms, non-blocking (every read
 * and write on it waits with poll() and a deadline): its fd, or -1 with
 * why. The policy and milter clients share it. */
int client_connect(const struct sockaddr_storage *ss, socklen_t len,
		   int timeout_ms, char *why, size_t n);

/* The destination's name for grouping and logs ("relay NAME", "host H",
 * "mx D"). */
void client_dest_key(enum target_kind kind, const char *via, const char *arg,
		     const char *addr, char *out, size_t n);

#endif
