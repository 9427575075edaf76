/*
 * dnsbl.h - DNS block and allow lists (SPEC 8: [smtpd] dnsbl, dnswl):
 * the client's address looked up in each zone, as Postfix's
 * reject_rbl_client and permit_dnswl_client do.
 *
 * Owns: the syntax of a list word (ZONE, ZONE=d.d.d.d with Postfix's
 * [n;n..m] octet patterns, or ZONE=A..B), the reversed query names
 * (IPv4 octets, IPv6 nibbles), one non-blocking UDP socket that sends
 * every query at once, the collection of answers, and the fixed bound on
 * waiting for them (DNSBL_WAIT_MS from the start, one resend after
 * DNSBL_RESEND_MS, whether the session is in the greet-pause or at the
 * first RCPT).
 *
 * Never: blocks on the network outside dnsbl_wait(), reads or writes the
 * client's connection, or decides what a listing means for a recipient
 * (session_filters.c does).
 */
#ifndef POSTMASTER_DNSBL_H
#define POSTMASTER_DNSBL_H

#include <stddef.h>
#include <stdint.h>

#define DNSBL_MAX 16        /* zones per listener, both keys together */
#define DNSBL_WAIT_MS 5000  /* from the queries to the last wait */
#define DNSBL_RESEND_MS 2000

enum dnsbl_state { DNSBL_PENDING, DNSBL_LISTED, DNSBL_CLEAR, DNSBL_FAILED };

struct dnsbl_zone {
	char zone[256];
	int allow;              /* a dnswl zone */
	int any;                /* no pattern: every A record lists */
	uint8_t pat[4][32];     /* per octet, the values that list */
	char qname[1040];       /* the reversed address, then the zone */
	unsigned id;
	enum dnsbl_state state;
	const char *why;        /* DNSBL_FAILED: the server's failure */
	unsigned char code[4];  /* the listing answer */
};

struct dnsbl {
	int fd;
	unsigned n;
	long long started, resent; /* monotonic ms; resent 0 until then */
	struct dnsbl_zone z[DNSBL_MAX];
};

/* Parses one dnsbl or dnswl word into z: NULL, or what was expected. */
const char *dnsbl_parse(const char *word, struct dnsbl_zone *z);

/* Sends one A query per zone of bl and wl for the client address ip
 * (IPv4 or IPv6 text) to the DNS server (core.dns-server, or NULL for
 * resolv.conf's). 0, or -1 with why when no query could leave (then
 * fd is -1). */
int dnsbl_start(struct dnsbl *d, const char *server, const char *ip,
		const char *const *bl, unsigned nbl, const char *const *wl,
		unsigned nwl, char *why, size_t n);
/* Takes the answers that have arrived, without waiting. */
void dnsbl_receive(struct dnsbl *d);
/* Whether some zone still waits for its answer. */
int dnsbl_pending(const struct dnsbl *d);
/* Sends the queries still unanswered again, once, when DNSBL_RESEND_MS
 * have passed since the start: the ms until that is due, or -1 when no
 * resend is to come. Whoever polls the socket calls it. */
long long dnsbl_resend_due(struct dnsbl *d);
/* Waits for the answers still missing that could change the verdict
 * (a block list's; an allow list's only once a block list lists the
 * client), until DNSBL_WAIT_MS after the start at most, then closes the
 * socket; when no resend had been made yet, it is made now and waited
 * for as long as one made in time would be. 1 when the time ran out
 * with such an answer missing. */
int dnsbl_wait(struct dnsbl *d);
/* The first zone of the kind (allow or block) that lists the client, or
 * NULL. */
const struct dnsbl_zone *dnsbl_listed(const struct dnsbl *d, int allow);
/* Closes the socket. */
void dnsbl_end(struct dnsbl *d);

#endif
