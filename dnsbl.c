/*
 * dnsbl.c - DNS block and allow lists (see dnsbl.h).
 *
 * The queries are built and their answers read by dns.c; this file owns
 * the socket and the clock. Every query leaves at once when the
 * connection opens, so the answers arrive while the greeting (and any
 * greet-pause) goes on; the session waits for what is missing only when
 * it needs the verdict.
 */
#include "dnsbl.h"
#include "io.h"
#include "addr.h"
#include "dns.h"
#include "fmt.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void set_bit(uint8_t set[32], unsigned v)
{
	set[v >> 3] |= (uint8_t)(1u << (v & 7));
}

/* A number 0..255 at *p; advances *p. -1 when there is none. */
static int octet(const char **p)
{
	const char *s = *p;
	unsigned v = 0;
	int digits = 0;
	while (*s >= '0' && *s <= '9' && digits < 4) {
		v = v * 10 + (unsigned)(*s++ - '0');
		digits++;
	}
	if (!digits || digits > 3 || v > 255)
		return -1;
	*p = s;
	return (int)v;
}

/* One octet pattern: n, or [n;n..m;...]. 0, or -1. */
static int octet_pattern(const char **p, uint8_t set[32])
{
	const char *s = *p;
	if (*s != '[') {
		int v = octet(&s);
		if (v < 0)
			return -1;
		set_bit(set, (unsigned)v);
		*p = s;
		return 0;
	}
	s++;
	for (;;) {
		int lo = octet(&s), hi = lo;
		if (lo < 0)
			return -1;
		if (s[0] == '.' && s[1] == '.') {
			s += 2;
			if ((hi = octet(&s)) < lo)
				return -1;
		}
		for (int v = lo; v <= hi; v++)
			set_bit(set, (unsigned)v);
		if (*s == ']')
			break;
		if (*s++ != ';')
			return -1;
	}
	*p = s + 1;
	return 0;
}

/* d.d.d.d with octet patterns. 0, or -1. */
static int address_pattern(const char *s, struct dnsbl_zone *z)
{
	for (int i = 0; i < 4; i++) {
		if (octet_pattern(&s, z->pat[i]) < 0)
			return -1;
		if (i < 3 && *s++ != '.')
			return -1;
	}
	return *s ? -1 : 0;
}

/* A..B within one /24: the last octet from A's to B's. 0, or -1. */
static int address_range(const char *s, const char *dots,
			 struct dnsbl_zone *z)
{
	char a[16], b[16];
	unsigned char x[4], y[4];
	size_t al = (size_t)(dots - s);
	if (al >= sizeof a || strlen(dots + 2) >= sizeof b)
		return -1;
	memcpy(a, s, al);
	a[al] = 0;
	fmt_snprintf(b, sizeof b, "%s", dots + 2);
	if (inet_pton(AF_INET, a, x) != 1 || inet_pton(AF_INET, b, y) != 1 ||
	    memcmp(x, y, 3) || x[3] > y[3])
		return -1;
	for (int i = 0; i < 3; i++)
		set_bit(z->pat[i], x[i]);
	for (unsigned v = x[3]; v <= y[3]; v++)
		set_bit(z->pat[3], v);
	return 0;
}

const char *dnsbl_parse(const char *word, struct dnsbl_zone *z)
{
	memset(z, 0, sizeof *z);
	const char *eq = strchr(word, '=');
	size_t zl = eq ? (size_t)(eq - word) : strlen(word);
	if (!zl || zl >= sizeof z->zone || !addr_domain_valid(word, zl, 1))
		return "expected a DNS zone such as zen.spamhaus.org";
	memcpy(z->zone, word, zl);
	z->zone[zl] = 0;
	if (!eq) {
		z->any = 1;
		return NULL;
	}
	const char *v = eq + 1, *dots = strstr(v, "..");
	int r = dots && !strchr(v, '[') ? address_range(v, dots, z)
					: address_pattern(v, z);
	return r < 0 ? "expected ZONE=d.d.d.d, where an octet may be "
		       "[n;n..m], or ZONE=A..B within one /24"
		     : NULL;
}

/* The query name: the address reversed (octets, or IPv6 nibbles), then
 * the zone. -1 for no IP address. */
static int reversed_name(const char *ip, const char *zone, char *out,
			 size_t n)
{
	unsigned char a[16];
	size_t o = 0;
	if (inet_pton(AF_INET, ip, a) == 1) {
		o = (size_t)fmt_snprintf(out, n, "%u.%u.%u.%u.", a[3], a[2], a[1],
				     a[0]);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0 && o + 4 < n; i--) {
			out[o++] = hex[a[i] & 15];
			out[o++] = '.';
			out[o++] = hex[a[i] >> 4];
			out[o++] = '.';
		}
	} else {
		return -1;
	}
	size_t zl = strlen(zone);
	if (o + zl >= n)
		return -1;
	memcpy(out + o, zone, zl + 1);
	return 0;
}

/* Sends the zone's query; again keeps the first query's id, so that an
 * answer to the first try, arriving late, still counts. */
static int send_query(struct dnsbl *d, struct dnsbl_zone *z, int again)
{
	unsigned char q[NS_PACKETSZ];
	unsigned id;
	int len = dns_build_query(z->qname, ns_t_a, q, sizeof q, &id);
	if (len < 0)
		return -1;
	if (again) {
		q[0] = (unsigned char)(z->id >> 8);
		q[1] = (unsigned char)z->id;
	} else {
		z->id = id;
	}
	if (send(d->fd, q, (size_t)len, MSG_DONTWAIT) != len)
		return -1;
	return 0;
}

static void add_zones(struct dnsbl *d, const char *ip,
		      const char *const *words, unsigned nw, int allow)
{
	for (unsigned i = 0; i < nw && d->n < DNSBL_MAX; i++) {
		struct dnsbl_zone *z = &d->z[d->n];
		if (dnsbl_parse(words[i], z) ||
		    reversed_name(ip, z->zone, z->qname, sizeof z->qname) < 0)
			continue; /* cf.c refused the word already */
		z->allow = allow;
		d->n++;
	}
}

int dnsbl_start(struct dnsbl *d, const char *server, const char *ip,
		const char *const *bl, unsigned nbl, const char *const *wl,
		unsigned nwl, char *why, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	d->fd = -1;
	d->n = 0;
	d->resent = 0;
	add_zones(d, ip, wl, nwl, 1);
	add_zones(d, ip, bl, nbl, 0);
	if (dns_server_address(server, &ss, &sl) < 0) {
		fmt_snprintf(why, n, "no DNS server");
		return -1;
	}
	d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0);
	if (d->fd < 0 || connect(d->fd, (struct sockaddr *)&ss, sl) < 0) {
		fmt_snprintf(why, n, "DNS socket: %s", strerror(errno));
		dnsbl_end(d);
		return -1;
	}
	d->started = io_now_ms();
	int sent = 0;
	for (unsigned i = 0; i < d->n; i++) {
		if (send_query(d, &d->z[i], 0) == 0) {
			sent++;
		} else {
			d->z[i].state = DNSBL_FAILED;
			d->z[i].why = "query not sent";
		}
	}
	if (!sent) {
		fmt_snprintf(why, n, "sending the queries: %s", strerror(errno));
		dnsbl_end(d);
		return -1;
	}
	return 0;
}

static int matches(const struct dnsbl_zone *z, const unsigned char a[4])
{
	if (z->any)
		return 1;
	for (int i = 0; i < 4; i++)
		if (!(z->pat[i][a[i] >> 3] & (1u << (a[i] & 7))))
			return 0;
	return 1;
}

/* Gives the answer in ans to the zone that asked for it. */
static void take_answer(struct dnsbl *d, const unsigned char *ans, int len)
{
	unsigned char addrs[16][4];
	for (unsigned i = 0; i < d->n; i++) {
		struct dnsbl_zone *z = &d->z[i];
		if (z->state != DNSBL_PENDING)
			continue;
		int r = dns_answer_a(ans, len, z->id, z->qname, addrs, 16);
		if (r == DNS_ANSWER_ALIEN)
			continue;
		z->state = r == DNS_ANSWER_FAIL || r == DNS_ANSWER_TRUNCATED
				   ? DNSBL_FAILED
				   : DNSBL_CLEAR;
		z->why = r == DNS_ANSWER_TRUNCATED ? "truncated answer"
						   : "server failure";
		for (int k = 0; k < r; k++)
			if (matches(z, addrs[k])) {
				z->state = DNSBL_LISTED;
				memcpy(z->code, addrs[k], 4);
				break;
			}
		return;
	}
}

void dnsbl_receive(struct dnsbl *d)
{
	unsigned char ans[NS_PACKETSZ * 2];
	while (d->fd >= 0 && dnsbl_pending(d)) {
		ssize_t len = recv(d->fd, ans, sizeof ans, MSG_DONTWAIT);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return; /* nothing more now (or refused: a timeout) */
		take_answer(d, ans, (int)len);
	}
}

int dnsbl_pending(const struct dnsbl *d)
{
	for (unsigned i = 0; i < d->n; i++)
		if (d->z[i].state == DNSBL_PENDING)
			return 1;
	return 0;
}

/* Whether an answer still missing could change the verdict: none once
 * an allow list lists the client; else a block list's, or an allow
 * list's once a block list has listed the client. */
static int undecided(const struct dnsbl *d)
{
	int block_pending = 0, allow_pending = 0, blocked = 0;
	for (unsigned i = 0; i < d->n; i++) {
		const struct dnsbl_zone *z = &d->z[i];
		if (z->state == DNSBL_LISTED && z->allow)
			return 0;
		if (z->state == DNSBL_PENDING && z->allow)
			allow_pending = 1;
		else if (z->state == DNSBL_PENDING)
			block_pending = 1;
		else if (z->state == DNSBL_LISTED)
			blocked = 1;
	}
	return block_pending || (blocked && allow_pending);
}

long long dnsbl_resend_due(struct dnsbl *d)
{
	if (d->resent || d->fd < 0 || !dnsbl_pending(d))
		return -1;
	long long t = io_now_ms(), due = d->started + DNSBL_RESEND_MS - t;
	if (due > 0)
		return due;
	/* one resend: a lost datagram is no verdict */
	d->resent = t;
	for (unsigned i = 0; i < d->n; i++)
		if (d->z[i].state == DNSBL_PENDING)
			send_query(d, &d->z[i], 1);
	return -1;
}

int dnsbl_wait(struct dnsbl *d)
{
	int late = 0;
	dnsbl_receive(d);
	while (d->fd >= 0 && undecided(d)) {
		long long due = dnsbl_resend_due(d), t = io_now_ms();
		/* a resend made late (the session was elsewhere) still gets
		 * the time a resend at DNSBL_RESEND_MS would have */
		long long end = d->started + DNSBL_WAIT_MS;
		if (d->resent + DNSBL_WAIT_MS - DNSBL_RESEND_MS > end)
			end = d->resent + DNSBL_WAIT_MS - DNSBL_RESEND_MS;
		long long left = end - t;
		if (left <= 0) {
			late = 1;
			break;
		}
		struct pollfd p = {d->fd, POLLIN, 0};
		if (poll(&p, 1, (int)(due >= 0 && due < left ? due : left)) < 0 &&
		    errno != EINTR)
			break;
		dnsbl_receive(d);
	}
	dnsbl_end(d);
	return late;
}

const struct dnsbl_zone *dnsbl_listed(const struct dnsbl *d, int allow)
{
	for (unsigned i = 0; i < d->n; i++)
		if (d->z[i].allow == allow && d->z[i].state == DNSBL_LISTED)
			return &d->z[i];
	return NULL;
}

void dnsbl_end(struct dnsbl *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
