/*
 * proxy.h - the live proxy of SPEC 7 path 2 (Full-Pipelining): a
 * transaction whose recipients all go to one onward destination is
 * carried to it while the client is still connected.
 *
 * Owns: the decision at RCPT time (which recipients it can carry), the
 * onward connection for one transaction, forwarding RCPT and DATA in the
 * client's pipelined group and giving the client the target's own replies
 * in order, the onward copy of the data as it is stored (the store's tee),
 * the target's final replies, and the takeover: when the onward connection
 * fails for reasons other than a reply, the transaction falls back to the
 * spool path with the recipients it holds.
 *
 * Never: acknowledges anything itself (a 2xx the client gets is the
 * target's, or the spool's after its commit), syncs a file, or sends the
 * target a final dot for data the session refused.
 */
#ifndef POSTMASTER_PROXY_H
#define POSTMASTER_PROXY_H

#include <stddef.h>

#include "reply.h"

struct session;
struct rcpt;
struct route_result;

enum proxy_rcpt {
	PROXY_NOT,      /* the usual paths take it (the spool, for a relay) */
	PROXY_SENT,     /* forwarded and kept; proxy_sync() gives its reply */
	PROXY_ANSWERED, /* refused here: r holds the reply */
};

/* Whether the proxy can carry a recipient that routes to r and asked
 * for notify (DSN_* bits): one target that leaves the machine by SMTP or
 * LMTP (a [relay], a host, mx), and not NOTIFY=SUCCESS, whose reports
 * the spool's flusher writes. Its destination's name goes to key. */
int proxy_carriable(const struct route_result *r, unsigned notify, char *key,
		    size_t n);

/* RCPT of a recipient the routes accept (and that may relay): whether
 * the proxy carries it. Starts the proxy at the transaction's first
 * accepted recipient; one for another destination ends it. */
enum proxy_rcpt proxy_rcpt(struct session *s, struct rcpt *rc,
			   struct reply *r);

/* Reads the target's replies that are due and gives the client the ones
 * it waits for, in order. */
void proxy_sync(struct session *s);

/*
 * DATA (bdat 0) or the first BDAT (bdat 1) of a transaction the proxy
 * took part in: the target's answer to its recipients and to DATA. 0: the
 * data may come (onward as the store writes it while the proxy serves,
 * unless hold: then proxy_finish() sends it); -1: the client gets r and
 * the transaction stays (no recipient was accepted); -2: the client gets
 * r (the target refused DATA) and the transaction ends. A DATA that the
 * client did not pipeline goes alone and its reply is read only as the
 * data goes onward: the client has its 354 at once, and a refusal by the
 * target is its reply after the data (proxy_finish).
 */
int proxy_data(struct session *s, int bdat, int hold, struct reply *r);

/* The data is complete and the store flushed; held is the message to
 * send when proxy_data() was told to hold it, else NULL. 0: res[i] holds
 * the target's verdict for s->rcpts[i] (its refusal of the DATA, too);
 * -1: the proxy let go of it (the takeover: the spool commits it). */
struct msg;
int proxy_finish(struct session *s, struct reply *res,
		 const struct msg *held);

/* Whether the onward connection still carries the transaction. */
int proxy_live(const struct session *s);
/* Whether a recipient the proxy gave its target is still in the
 * transaction (one the target refused has left it). */
int proxy_took_rcpts(const struct session *s);
/* The name of the host that gave the replies ("host[ip]"), and whether
 * they came over TLS. */
const char *proxy_remote(const struct session *s);
int proxy_remote_tls(const struct session *s);

/* The data was refused: the onward copy ends without its final dot. */
void proxy_abort(struct session *s);

/* The transaction is over (RSET, MAIL, the end): closes the onward
 * connection. Replies still due are not read: the caller syncs first
 * when the client waits for them. */
void proxy_end(struct session *s);

#endif
