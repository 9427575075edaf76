/*
 * client_dest.h - the addresses the onward client tries for one job.
 *
 * Owns: turning a destination (a [relay]'s address list, a host target,
 * the MX hosts of a domain) into socket addresses in the order to try
 * them, through net.h's endpoint parser and dns.h's lookups, and the
 * reply when there is none.
 *
 * Never: connects, speaks SMTP, or decides what a failed lookup means for
 * the message beyond the reply it gives (client.c and flush.c do).
 */
#ifndef POSTMASTER_CLIENT_DEST_H
#define POSTMASTER_CLIENT_DEST_H

#include "client.h"

#include <sys/socket.h>

/* The addresses one delivery attempt may try (a [relay]'s list, a host's
 * addresses); of an MX list at most CLIENT_MX_ADDRESSES, and, but for a
 * [relay]'s list, at most CLIENT_MAX_SESSIONS sessions that got past the
 * greeting, EHLO and TLS: a domain of tarpits cannot hold the flusher
 * for hours (Postfix's smtp_mx_address_limit and smtp_mx_session_limit). */
#define CLIENT_MAX_CANDS 32
#define CLIENT_MX_ADDRESSES 5
#define CLIENT_MAX_SESSIONS 2

struct client_cand {
	char host[256]; /* the name it was found by (or the unix: address) */
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Fills c (room for CLIENT_MAX_CANDS) with j's addresses, best first.
 * -1 with err (a 4xx or 5xx reply for every recipient) when there is
 * none. */
int client_candidates(const struct client_job *j, struct client_cand *c,
		      int *n, struct reply *err);
/* The same for a client that waits (the live proxy): at most max
 * addresses, the MX hosts looked up only as far as it takes to find
 * them, and all within timeout_ms (0: no bound), past which the reply is
 * a 451 (the spool tries later). */
int client_candidates_within(const struct client_job *j,
			     struct client_cand *c, int max, int timeout_ms,
			     int *n, struct reply *err);

#endif
