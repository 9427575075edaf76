/*
 * handoff.h - what becomes of a received message (SPEC 7): stored for
 * direct delivery or spooled, delivered while the client waits, or
 * committed and passed to a detached delivery process.
 *
 * Owns: the data file or spool file a transaction writes, the verdict on
 * the data as a whole (size, bare newlines, loops), direct delivery,
 * spooling and its commit, and the detached child.
 *
 * Never: reads the connection or writes to it but through the answer
 * function the session gives; a result is answered only once the message
 * is delivered or safe in the spool.
 */
#ifndef POSTMASTER_HANDOFF_H
#define POSTMASTER_HANDOFF_H

#include "deliver.h"

struct session;

/* Opens where the data goes (a temporary file, the spool, or nowhere)
 * and writes our Received header. -1 with errno when it cannot. */
int handoff_begin(struct session *s);

/* The data is complete: delivers or spools it and gives each result to
 * answer (one per recipient in LMTP, one in SMTP), then flushes them to
 * the client. The caller resets the transaction. */
void handoff_deliver(struct session *s,
		     void (*answer)(struct session *, const struct reply *));

/* A refusal of the message as a whole given to answer: once in SMTP,
 * once per recipient the client gave in LMTP (RFC 2033 4.2); with log,
 * each recipient's result line is logged (SPEC 9). */
void handoff_refuse(struct session *s, const struct reply *r,
		    void (*answer)(struct session *, const struct reply *),
		    int log);

/* Drops a spooled message being received that was not committed. */
void handoff_abandon(struct session *s);

/* The reply for a storage failure with errno err. */
void handoff_storage_reply(struct reply *r, int err);

#endif
