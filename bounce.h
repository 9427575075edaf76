/*
 * bounce.h - delivery status notifications (RFC 3464, RFC 6522).
 *
 * Owns: who gets a bounce (the sender, postmaster, or both per
 * core.bounce-to; a failed bounce goes to postmaster as a double bounce; a
 * failed double bounce is dropped), how it is routed (with the tables of
 * the [smtpd] that accepted the message, then the global [route]), and
 * the report itself: from <>, with
 * Auto-Submitted: auto-replied, a human-readable part, a
 * message/delivery-status part (with the client's ENVID and ORCPT, RFC
 * 3461) and the original headers, or the whole message for RET=FULL.
 *
 * Never: bounces a bounce back to its sender, or delivers anything itself:
 * the report is a new spool message that flush.c delivers.
 */
#ifndef POSTMASTER_BOUNCE_H
#define POSTMASTER_BOUNCE_H

#include "cf.h"
#include "spool.h"

/* What a report says of its recipients (RFC 3464 2.3.3 Action). */
enum report_kind {
	REPORT_FAILED,
	REPORT_DELIVERED, /* NOTIFY=SUCCESS: delivered here (local, LMTP) */
	REPORT_RELAYED,   /* NOTIFY=SUCCESS: to a next hop without DSN */
	REPORT_DELAYED,   /* NOTIFY=DELAY: still queued after a while */
	REPORT_EXPANDED,  /* NOTIFY=SUCCESS: an alias of several targets */
};

/*
 * Writes a report of kind about orig's targets idx[0..n) into the spool:
 * a failure as core.bounce-to says, the others to the sender alone. Returns
 * 0 with *out loaded and locked, 1 when no report is due (a double bounce
 * failed: logged and dropped), -1 when it could not be written (errno).
 */
int bounce_create(const struct cf *cf, int dirfd, const struct spool_msg *orig,
		  const unsigned *idx, unsigned n, enum report_kind kind,
		  struct spool_msg *out);

/* "failed", "delivered", "relayed", "delayed" or "expanded" */
const char *bounce_action_name(enum report_kind kind);

#endif
