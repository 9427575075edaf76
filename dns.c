/*
 * dns.c - MX and address lookups (see dns.h).
 *
 * The answer is parsed here with dn_expand(3) rather than libresolv's
 * ns_parserr, so the lookup costs no extra shared library: res_nquery and
 * dn_expand live in glibc itself.
 */
#include "dns.h"
#include "idna.h"
#include "io.h"
#include "net.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define ANSWER_MAX 65536

/* Sets up a resolver, pointed at server when it is given (IPv4 only:
 * glibc keeps IPv6 name servers in private fields). */
static int resolver(const char *server, struct __res_state *st)
{
	memset(st, 0, sizeof *st);
	if (res_ninit(st) < 0)
		return -1;
	if (!server)
		return 0;
	struct net_endpoint ep;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	if (net_endpoint_parse(server, 53, &ep) || ep.family != AF_INET ||
	    inet_pton(AF_INET, ep.host, &sin.sin_addr) != 1) {
		res_nclose(st);
		return -1;
	}
	sin.sin_port = htons(ep.port);
	st->nsaddr_list[0] = sin;
	st->nscount = 1;
	st->retry = 2;
	st->retrans = 2;
	return 0;
}

/* Shortens the resolver's retry schedule (its first wait, then twice that,
 * per server) to what is left before deadline: -1 when nothing is. */
static int bound_by(struct __res_state *st, long long deadline)
{
	if (!deadline)
		return 0;
	long long now = io_now_ms();
	if (deadline <= now)
		return -1;
	long long left = (deadline - now) / 1000;
	int ns = st->nscount > 0 ? st->nscount : 1;
	if (left < 3LL * st->retrans * ns) {
		st->retry = 1;
		st->retrans = left / ns > 0 ? (int)(left / ns) : 1;
	}
	return 0;
}

static enum dns_status query(const char *server, const char *name, int type,
			     unsigned char *ans, int *len, long long deadline)
{
	struct __res_state st;
	if (resolver(server, &st) < 0)
		return DNS_TEMP;
	if (bound_by(&st, deadline) < 0) {
		res_nclose(&st);
		return DNS_TEMP;
	}
	*len = res_nquery(&st, name, ns_c_in, type, ans, ANSWER_MAX);
	int herr = st.res_h_errno;
	res_nclose(&st);
	if (*len >= 0)
		return DNS_OK;
	if (herr == HOST_NOT_FOUND)
		return DNS_NOTFOUND;
	if (herr == NO_DATA)
		return DNS_NODATA;
	return DNS_TEMP;
}

/* Calls fn for each answer record of the wanted type. */
static int each_answer(const unsigned char *ans, int len, int type,
		       void (*fn)(const unsigned char *ans, int len,
				  const unsigned char *rd, int rdlen, void *arg),
		       void *arg)
{
	if (len < 12)
		return -1;
	const unsigned char *end = ans + len, *p = ans + 12;
	unsigned qd = (unsigned)(ans[4] << 8 | ans[5]);
	unsigned an = (unsigned)(ans[6] << 8 | ans[7]);
	char name[NS_MAXDNAME];
	for (unsigned i = 0; i < qd; i++) {
		int n = dn_expand(ans, end, p, name, sizeof name);
		if (n < 0 || p + n + 4 > end)
			return -1;
		p += n + 4;
	}
	for (unsigned i = 0; i < an; i++) {
		int n = dn_expand(ans, end, p, name, sizeof name);
		if (n < 0 || p + n + 10 > end)
			return -1;
		p += n;
		int t = p[0] << 8 | p[1];
		int rdlen = p[8] << 8 | p[9];
		p += 10;
		if (p + rdlen > end)
			return -1;
		if (t == type)
			fn(ans, len, p, rdlen, arg);
		p += rdlen;
	}
	return 0;
}

struct mx_acc {
	struct dns_mx *mx;
	int max, n, nullmx, full; /* full: a record did not fit */
};

/* The kept record of the worst preference, which a better one replaces
 * once the set is full. */
static int worst_mx(const struct mx_acc *a)
{
	int w = 0;
	for (int i = 1; i < a->n; i++)
		if (a->mx[i].pref > a->mx[w].pref)
			w = i;
	return w;
}

/* Keeps the max best records whatever their order in the answer: a cut
 * in answer order could drop the best MX, or this machine's own record
 * (RFC 5321 5.1). */
static void add_mx(const unsigned char *ans, int len, const unsigned char *rd,
		   int rdlen, void *arg)
{
	struct mx_acc *a = arg;
	struct dns_mx m;
	if (rdlen < 3 || a->max < 1)
		return;
	m.pref = (unsigned)(rd[0] << 8 | rd[1]);
	if (dn_expand(ans, ans + len, rd + 2, m.host, sizeof m.host) < 0)
		return;
	if (!m.host[0] || !strcmp(m.host, ".")) {
		a->nullmx = 1;
		return;
	}
	if (a->n < a->max) {
		a->mx[a->n++] = m;
		return;
	}
	a->full = 1;
	int w = worst_mx(a);
	if (m.pref < a->mx[w].pref)
		a->mx[w] = m;
}

/* After a cut the records at the worst kept preference may lack one
 * dropped at the same preference (this machine's, say): the better ones
 * are used alone when there are any. */
static int complete_mx(const struct dns_mx *mx, int n, int full)
{
	if (!full || !n)
		return n;
	int k = n;
	while (k > 0 && mx[k - 1].pref == mx[n - 1].pref)
		k--;
	return k ? k : n;
}

enum dns_status dns_txt_status(const char *server, const char *name)
{
	static unsigned char ans[ANSWER_MAX];
	int len;
	return query(server, name, ns_t_txt, ans, &len, 0);
}

/* RFC 5321 5.1: hosts of one preference are tried in random order, so
 * that the load spreads (the server's order is often the same every
 * time). A Fisher-Yates shuffle of each run, from one getrandom seed. */
static void shuffle_equals(struct dns_mx *mx, int n)
{
	uint64_t x = 0;
	if (getrandom(&x, sizeof x, 0) != sizeof x || !x)
		x = 0x9e3779b97f4a7c15u ^ (uint64_t)getpid();
	for (int i = 0; i < n;) {
		int end = i + 1;
		while (end < n && mx[end].pref == mx[i].pref)
			end++;
		for (int k = end - 1; k > i; k--) {
			x ^= x << 13; /* xorshift64 */
			x ^= x >> 7;
			x ^= x << 17;
			int r = i + (int)(x % (uint64_t)(k - i + 1));
			struct dns_mx t = mx[k];
			mx[k] = mx[r];
			mx[r] = t;
		}
		i = end;
	}
}

enum dns_status dns_mx(const char *server, const char *domain,
		       struct dns_mx *mx, int max, int *n, long long deadline)
{
	static unsigned char ans[ANSWER_MAX];
	int len;
	*n = 0;
	enum dns_status s = query(server, domain, ns_t_mx, ans, &len, deadline);
	if (s != DNS_OK)
		return s;
	struct mx_acc a = {mx, max, 0, 0, 0};
	if (each_answer(ans, len, ns_t_mx, add_mx, &a) < 0)
		return DNS_TEMP;
	if (a.nullmx && a.n == 0)
		return DNS_NULLMX;
	/* insertion sort by preference */
	for (int i = 1; i < a.n; i++) {
		struct dns_mx t = mx[i];
		int j = i;
		for (; j > 0 && mx[j - 1].pref > t.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
	shuffle_equals(mx, a.n);
	*n = complete_mx(mx, a.n, a.full);
	return a.n ? DNS_OK : DNS_NODATA;
}

struct addr_acc {
	struct sockaddr_storage *out;
	int max, n, port;
};

static void add_addr(const unsigned char *ans, int len,
		     const unsigned char *rd, int rdlen, void *arg)
{
	struct addr_acc *a = arg;
	(void)ans;
	(void)len;
	if (a->n >= a->max)
		return;
	struct sockaddr_storage *ss = &a->out[a->n];
	memset(ss, 0, sizeof *ss);
	if (rdlen == 16) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->port);
		memcpy(&s6->sin6_addr, rd, 16);
	} else if (rdlen == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->port);
		memcpy(&s4->sin_addr, rd, 4);
	} else {
		return;
	}
	a->n++;
}

enum dns_status dns_addrs(const char *server, const char *host, int port,
			  struct sockaddr_storage *out, int max, int *n,
			  long long deadline)
{
	static unsigned char ans[ANSWER_MAX];
	struct addr_acc a = {out, max, 0, port};
	enum dns_status worst = DNS_NOTFOUND;
	static const int types[] = {ns_t_aaaa, ns_t_a};
	for (int i = 0; i < 2; i++) {
		int len;
		enum dns_status s = query(server, host, types[i], ans, &len,
					  deadline);
		if (s == DNS_OK) {
			if (each_answer(ans, len, types[i], add_addr, &a) < 0)
				s = DNS_TEMP;
		}
		if (s == DNS_TEMP)
			worst = DNS_TEMP;
		else if (s == DNS_NODATA && worst == DNS_NOTFOUND)
			worst = DNS_NODATA;
	}
	*n = a.n;
	return a.n ? DNS_OK : worst;
}

int dns_alabel(const char *domain, char *out, size_t n, char *why,
	       size_t whyn)
{
	return idna_canon(domain, out, n, why, whyn) == IDNA_OK ? 0 : -1;
}

int dns_server_address(const char *server, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (server) {
		struct net_endpoint ep;
		if (net_endpoint_parse(server, 53, &ep) || ep.kind != NET_EP_IP)
			return -1;
		if (ep.family == AF_INET6) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(ep.port);
			*len = sizeof *s6;
			return inet_pton(AF_INET6, ep.host, &s6->sin6_addr) == 1
				       ? 0
				       : -1;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons(ep.port);
		*len = sizeof *s4;
		return inet_pton(AF_INET, ep.host, &s4->sin_addr) == 1 ? 0 : -1;
	}
	struct __res_state st;
	memset(&st, 0, sizeof st);
	if (res_ninit(&st) < 0)
		return -1;
	int r = -1;
	/* glibc keeps an IPv6 name server in its private extension */
	if (st.nscount > 0 && st.nsaddr_list[0].sin_family == AF_INET) {
		*s4 = st.nsaddr_list[0];
		*len = sizeof *s4;
		r = 0;
	} else if (st.nscount > 0 && st._u._ext.nsaddrs[0]) {
		*s6 = *st._u._ext.nsaddrs[0];
		*len = sizeof *s6;
		r = 0;
	}
	res_nclose(&st);
	return r;
}

int dns_build_query(const char *name, int type, unsigned char *out,
		    int max, unsigned *id)
{
	/* no res_ninit: the options are given, nothing is read */
	struct __res_state st;
	memset(&st, 0, sizeof st);
	st.options = RES_INIT | RES_RECURSE;
	int n = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0,
			     NULL, out, max);
	if (n < 12)
		return -1;
	*id = (unsigned)(out[0] << 8 | out[1]);
	return n;
}

struct a_acc {
	unsigned char (*addrs)[4];
	int max, n;
};

static void add_a(const unsigned char *ans, int len, const unsigned char *rd,
		  int rdlen, void *arg)
{
	struct a_acc *a = arg;
	(void)ans;
	(void)len;
	if (rdlen == 4 && a->n < a->max)
		memcpy(a->addrs[a->n++], rd, 4);
}

int dns_answer_a(const unsigned char *ans, int len, unsigned id,
		 const char *name, unsigned char (*addrs)[4], int max)
{
	char q[NS_MAXDNAME];
	/* a response (QR) to our id that asks our one question */
	if (len < 12 || (unsigned)(ans[0] << 8 | ans[1]) != id ||
	    !(ans[2] & 0x80) || (ans[4] << 8 | ans[5]) != 1 ||
	    dn_expand(ans, ans + len, ans + 12, q, sizeof q) < 0 ||
	    strcasecmp(q, name))
		return DNS_ANSWER_ALIEN;
	if (ans[2] & 0x02)
		return DNS_ANSWER_TRUNCATED;
	int rcode = ans[3] & 0x0f;
	if (rcode == ns_r_nxdomain)
		return DNS_ANSWER_NONE;
	if (rcode != ns_r_noerror)
		return DNS_ANSWER_FAIL;
	struct a_acc a = {addrs, max, 0};
	if (each_answer(ans, len, ns_t_a, add_a, &a) < 0)
		return DNS_ANSWER_ALIEN;
	return a.n ? a.n : DNS_ANSWER_NONE;
}
