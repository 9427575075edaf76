/*
 * client_dest.c - where the onward client connects (see client_dest.h).
 *
 * A [relay]'s addresses are tried in order, a host target's name goes
 * through its MX records unless it is bracketed, an MX target's domain
 * always does. An MX list that reaches this machine's own addresses is cut
 * before that preference (RFC 5321 5.1): when this machine is the best
 * MX, the mail loops back to myself (5.4.6); when better hosts gave no
 * address, it waits for them (4.4.4, as Postfix does).
 */
#include "client_dest.h"
#include "dns.h"
#include "fmt.h"
#include "io.h"
#include "net.h"
#include "route.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* The addresses found so far, and how far to look. */
struct cands {
	struct client_cand *c;
	int n, max;
	long long deadline; /* io_now_ms() clock; 0: none */
};

static void add_cand(struct cands *l, const char *host, const void *ss,
		     socklen_t len)
{
	if (l->n >= l->max)
		return;
	struct client_cand *c = &l->c[l->n++];
	fmt_snprintf(c->host, sizeof c->host, "%s", host);
	/* ss may be a shorter sockaddr (getaddrinfo's): copy only len */
	memset(&c->ss, 0, sizeof c->ss);
	memcpy(&c->ss, ss, len < sizeof c->ss ? len : sizeof c->ss);
	c->len = len;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/* Address records: from core.dns-server when it is set, else (and for
 * names it does not know) through getaddrinfo: /etc/hosts, then DNS. */
static int lookup_host(const struct client_job *j, const char *host, int port,
		       struct cands *l, struct reply *err)
{
	const char *server = j->cf->core->v[CORE_DNS_SERVER].s;
	unsigned char bin[16];
	if (server && inet_pton(AF_INET, host, bin) != 1 &&
	    inet_pton(AF_INET6, host, bin) != 1) {
		struct sockaddr_storage a[DNS_MAX_ADDRS];
		int na = 0;
		enum dns_status s = dns_addrs(server, host, port, a,
					      DNS_MAX_ADDRS, &na, l->deadline);
		for (int k = 0; k < na; k++)
			add_cand(l, host, &a[k], sa_len(&a[k]));
		if (na)
			return 0;
		if (s == DNS_TEMP) {
			reply_set(err, 451, ESC_ROUTING_SERVER_FAILURE,
				  "cannot find host %s: DNS temporary failure",
				  host);
			return -1;
		}
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV}, *res, *ai;
	char ps[8];
	fmt_snprintf(ps, sizeof ps, "%d", port);
	int e = getaddrinfo(host, ps, &hints, &res);
	if (e) {
		int perm = e == EAI_NONAME;
		reply_set(err, perm ? 550 : 451,
			  perm ? ESC_BAD_DEST_SYSTEM
			       : ESC_ROUTING_SERVER_FAILURE,
			  "cannot find host %s: %s", host, gai_strerror(e));
		return -1;
	}
	/* IPv6 first, then IPv4 */
	for (int fam = 0; fam < 2; fam++)
		for (ai = res; ai; ai = ai->ai_next)
			if (ai->ai_family == (fam ? AF_INET : AF_INET6))
				add_cand(l, host, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}


/* Whether ss is one of this machine's own addresses, as routing sees
 * them. */
static int is_own_address(const struct sockaddr_storage *ss)
{
	const struct route_env *env = &route_env_system;
	if (ss->ss_family == AF_INET)
		return env->own_address(
			AF_INET, (const unsigned char *)&((const struct sockaddr_in *)ss)
					 ->sin_addr);
	if (ss->ss_family == AF_INET6)
		return env->own_address(
			AF_INET6,
			(const unsigned char *)&((const struct sockaddr_in6 *)ss)
				->sin6_addr);
	return 0;
}

/* What the MX walk found beside the addresses. */
struct mx_walk {
	int temp;   /* an address lookup failed temporarily */
	int late;   /* the deadline passed before the walk ended */
	int own;    /* a host at the last preference looked at is this
		     * machine */
	int groups; /* preferences looked at */
};

/* The addresses of the hosts mx[0..end) of one preference, added to l
 * unless one of them is this machine: then that preference and all
 * worse ones are not used (RFC 5321 5.1), and nothing is added; nor is
 * anything when the deadline cuts the preference short, as a host not
 * looked up may be this machine. */
static void add_mx_group(const struct client_job *j, const struct dns_mx *mx,
			 int end, int port, struct cands *l, struct mx_walk *w)
{
	const char *server = j->cf->core->v[CORE_DNS_SERVER].s;
	struct sockaddr_storage a[DNS_MAX_ADDRS];
	int before = l->n;
	w->groups++;
	for (int i = 0; i < end && !w->own && !w->late; i++) {
		int na = 0;
		if (dns_addrs(server, mx[i].host, port, a, DNS_MAX_ADDRS,
			      &na, l->deadline) == DNS_TEMP)
			w->temp = 1;
		if (l->deadline && io_now_ms() >= l->deadline)
			w->late = 1;
		for (int k = 0; k < na; k++)
			if (is_own_address(&a[k]))
				w->own = 1;
		for (int k = 0; k < na && !w->own; k++)
			add_cand(l, mx[i].host, &a[k], sa_len(&a[k]));
	}
	if (w->own || w->late)
		l->n = before;
}

/* The reply when the MX hosts gave no address to try. */
static void no_mx_address(const struct mx_walk *w, const char *domain,
			  struct reply *err)
{
	if (w->late)
		reply_set(err, 451, ESC_ROUTING_SERVER_FAILURE,
			  "looking up the MX hosts of %s took too long",
			  domain);
	else if (w->own && w->groups == 1) /* this machine is the best MX */
		reply_set(err, 554, ESC_ROUTING_LOOP,
			  "mail for %s loops back to myself", domain);
	else if (w->own) /* better ones exist, with no address now */
		reply_set(err, 451,
			  w->temp ? ESC_ROUTING_SERVER_FAILURE
				  : ESC_UNABLE_TO_ROUTE,
			  "unable to find primary relay for %s", domain);
	else if (w->temp)
		reply_set(err, 451, ESC_ROUTING_SERVER_FAILURE,
			  "cannot find the address of the MX hosts of %s",
			  domain);
	else
		reply_set(err, 550, ESC_BAD_DEST_SYSTEM,
			  "no address for the MX hosts of %s", domain);
}

/* The MX hosts of domain, each with its addresses, best first, one
 * preference at a time, up to the first that holds this machine or the
 * one that fills l: the hosts beyond are not looked up. */
static int lookup_mx(const struct client_job *j, const char *domain, int port,
		     struct cands *l, struct reply *err)
{
	const char *server = j->cf->core->v[CORE_DNS_SERVER].s;
	struct dns_mx mx[DNS_MAX_MX];
	int nmx = 0;
	char alabel[256], why[300];
	if (dns_alabel(domain, alabel, sizeof alabel, why, sizeof why) < 0) {
		reply_set(err, 550, ESC_BAD_DEST_SYSTEM, "%s", why);
		return -1;
	}
	enum dns_status s = dns_mx(server, alabel, mx, DNS_MAX_MX, &nmx,
				   l->deadline);
	switch (s) {
	case DNS_NULLMX:
		reply_set(err, 556, ESC_RECIPIENT_NULL_MX,
			  "domain %s accepts no mail (null MX)", domain);
		return -1;
	case DNS_NOTFOUND:
		reply_set(err, 550, ESC_BAD_DEST_SYSTEM, "domain %s not found",
			  domain);
		return -1;
	case DNS_TEMP:
		reply_set(err, 451, ESC_ROUTING_SERVER_FAILURE,
			  "cannot look up the MX of %s: DNS temporary failure",
			  domain);
		return -1;
	case DNS_NODATA: /* no MX: the domain's own address (RFC 5321 5.1) */
		nmx = 1;
		mx[0].pref = 0;
		fmt_snprintf(mx[0].host, sizeof mx[0].host, "%s", alabel);
		break;
	case DNS_OK:
		break;
	}
	struct mx_walk w = {0};
	int max = l->max; /* an MX list gives CLIENT_MX_ADDRESSES at most */
	if (l->max > l->n + CLIENT_MX_ADDRESSES)
		l->max = l->n + CLIENT_MX_ADDRESSES;
	for (int i = 0, end; i < nmx && !w.own && !w.late && l->n < l->max;
	     i = end) {
		for (end = i + 1; end < nmx && mx[end].pref == mx[i].pref;)
			end++;
		add_mx_group(j, mx + i, end - i, port, l, &w);
	}
	l->max = max;
	if (l->n)
		return 0;
	no_mx_address(&w, domain, err);
	return -1;
}

/* The addresses of one [relay] address or host target (net.h's forms):
 * a bare host name of a host target goes through its MX records first. */
static void add_endpoint(const struct client_job *j, const char *spec,
			 uint16_t defport, struct cands *l, struct reply *err)
{
	struct net_endpoint ep;
	if (net_endpoint_parse(spec, defport, &ep)) {
		reply_set(err, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
			  "bad address %s", spec);
		return;
	}
	if (ep.kind == NET_EP_UNIX) {
		struct sockaddr_storage ss = {0};
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, ep.host, strlen(ep.host) + 1);
		add_cand(l, spec, &ss, sizeof *su);
	} else if (j->kind == T_HOST && !ep.bracketed) {
		lookup_mx(j, ep.host, ep.port, l, err);
	} else {
		lookup_host(j, ep.host, ep.port, l, err);
	}
}

int client_candidates_within(const struct client_job *j,
			     struct client_cand *c, int max, int timeout_ms,
			     int *n, struct reply *err)
{
	struct cands l = {c, 0, max < CLIENT_MAX_CANDS ? max : CLIENT_MAX_CANDS,
			  timeout_ms ? io_now_ms() + timeout_ms : 0};
	int lmtp = j->relay && j->relay->v[RELAY_PROTOCOL].n == RELAY_LMTP;
	int defport = lmtp ? 24 : 25;
	*n = 0;
	if (j->kind == T_MX) {
		int r = lookup_mx(j, j->arg, defport, &l, err);
		*n = l.n;
		return r;
	}
	const char *one[1] = {j->arg};
	const char *const *specs = one;
	uint32_t nspecs = 1;
	if (j->kind == T_RELAY) {
		specs = j->relay->v[RELAY_ADDRESS].list.v;
		nspecs = j->relay->v[RELAY_ADDRESS].list.n;
		if (!nspecs) {
			reply_set(err, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
				  "[relay \"%s\"] has no address",
				  j->relay->name);
			return -1;
		}
	}
	struct reply last = {0};
	for (uint32_t i = 0; i < nspecs && l.n < l.max; i++)
		add_endpoint(j, specs[i], (uint16_t)defport, &l, &last);
	*n = l.n;
	if (l.n)
		return 0;
	*err = last;
	return -1;
}

int client_candidates(const struct client_job *j, struct client_cand *c,
		      int *n, struct reply *err)
{
	return client_candidates_within(j, c, CLIENT_MAX_CANDS, 0, n, err);
}
