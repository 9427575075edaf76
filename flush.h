/*
 * flush.h - delivering what the spool holds (SPEC 7 path 3, 7.1).
 *
 * Owns: the delivery runs of a spooled message (local targets through
 * deliver.c, network targets through client.c, grouped by destination),
 * what each reply means for a target (2xx delivered; 4xx retried with
 * back-off until queue-lifetime; 5xx failed), bouncing the failed ones
 * through bounce.c, the flusher (--flush, locked by core.pid-file) and the
 * queue listings (--queue, and mailq in Postfix's layout), --release and
 * --delete.
 *
 * Never: delivers a message it has not locked, or forgets a target: every
 * run ends with the envelope rewritten or the message removed.
 */
#ifndef POSTMASTER_FLUSH_H
#define POSTMASTER_FLUSH_H

#include "cf.h"
#include "spool.h"

/* Delivers the due targets of a loaded, locked message; frees m. */
void flush_message(const struct cf *cf, int dirfd, struct spool_msg *m,
		   int all);

/* The same for a message whose targets got their replies already from
 * remote (the live proxy's LMTP target; tls: whether it spoke over TLS):
 * known[i] is target i's reply
 * (code 0: none), applied as this run's result: 2xx delivered, 4xx
 * retried later, 5xx bounced now. */
struct reply;
void flush_message_known(const struct cf *cf, int dirfd, struct spool_msg *m,
			 const struct reply *known, const char *remote,
			 int tls);

enum { FLUSH_DUE, FLUSH_ALL };
/* --flush [--now], or --flush=ID (one message, now). Returns an exit
 * status. */
int flush_main(const struct cf *cf, int mode, const char *id);
/* --queue in its own layout (every target with its state, attempts,
 * next attempt and last reply), or as mailq and sendmail -bp show it, in
 * Postfix's layout (the recipients still to be delivered under the
 * reason they wait). Returns an exit status. */
enum { QUEUE_OWN, QUEUE_MAILQ };
int queue_main(const struct cf *cf, int layout);
/* --release=ID: a message a milter quarantined is held no more; the next
 * flush delivers it. */
int release_main(const struct cf *cf, const char *id);
/* --delete=ID: removes a message without a bounce. */
int delete_main(const struct cf *cf, const char *id);

#endif
