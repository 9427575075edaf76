/*
 * net.c - IP networks and endpoints as the configuration writes them
 * (see net.h).
 *
 * Owns the CIDR syntax, the containment test and the endpoint syntax.
 * Never connects and never resolves a host name: a network is written as
 * numbers or "loopback", and an endpoint's host is only checked for form.
 */
#include "net.h"
#include "addr.h"
#include "fmt.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

static void mask(unsigned char *a, unsigned prefix, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
		if (bits < 8)
			a[i] &= (unsigned char)(0xff00u >> bits);
	}
}

/* ::ffff:0:0/96, where IPv6 writes IPv4 addresses (RFC 4291 2.5.5.2) */
static const unsigned char v4_mapped[16] = {[10] = 0xff, [11] = 0xff};

static const char not_a_network[] =
	"expected loopback, none, an IP address or a network "
	"such as 192.0.2.0/24 or 2001:db8::/32";

const char *net_parse(const char *s, struct net *n)
{
	memset(n, 0, sizeof *n);
	if (!strcmp(s, "loopback")) {
		n->family = NET_LOOPBACK;
		return NULL;
	}
	if (!strcmp(s, "none")) {
		n->family = NET_NONE;
		return NULL;
	}
	char ip[64];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof ip)
		return not_a_network;
	memcpy(ip, s, len);
	ip[len] = 0;
	if (inet_pton(AF_INET, ip, n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, n->addr) == 1)
		n->family = AF_INET6;
	else
		return not_a_network;
	unsigned max = n->family == AF_INET ? 32 : 128;
	n->prefix = max;
	if (slash) {
		char *end;
		const char *p = slash + 1;
		if (*p < '0' || *p > '9' || (p[0] == '0' && p[1]))
			return "expected a prefix length after '/'";
		unsigned long v = strtoul(p, &end, 10);
		if (*end || v > max)
			return n->family == AF_INET
				       ? "expected a prefix length from 0 to 32"
				       : "expected a prefix length from 0 to 128";
		n->prefix = (unsigned)v;
		unsigned char m[16];
		memcpy(m, n->addr, sizeof m);
		mask(m, n->prefix, max / 8);
		if (memcmp(m, n->addr, max / 8))
			return "expected a network address: bits are set "
			       "beyond the prefix length";
	}
	/* ::ffff:a.b.c.d/(96+p) is the IPv4 network a.b.c.d/p, as the
	 * clients it holds are IPv4 ones (net_contains() unmaps them) */
	if (n->family == AF_INET6 && n->prefix >= 96 &&
	    !memcmp(n->addr, v4_mapped, 12)) {
		n->family = AF_INET;
		memmove(n->addr, n->addr + 12, 4);
		memset(n->addr + 4, 0, 12);
		n->prefix -= 96;
	}
	return NULL;
}

static int in_prefix(const unsigned char *net, const unsigned char *a,
		     unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(net, a, full))
		return 0;
	if (!rest)
		return 1;
	unsigned char m = (unsigned char)(0xff00u >> rest);
	return (net[full] & m) == (a[full] & m);
}

int net_contains(const struct net *n, const char *peer)
{
	if (n->family == NET_NONE)
		return 0;
	unsigned char a[16];
	int fam;
	if (!strcmp(peer, NET_LOCAL_PEER))
		return n->family == NET_LOOPBACK;
	if (inet_pton(AF_INET, peer, a) == 1)
		fam = AF_INET;
	else if (inet_pton(AF_INET6, peer, a) == 1)
		fam = AF_INET6;
	else
		return 0;
	/* an IPv4 client written as IPv4-mapped IPv6 (an IPv6 tcpserver's
	 * TCPREMOTEIP) is the IPv4 client it is from getpeername() */
	if (fam == AF_INET6 && !memcmp(a, v4_mapped, 12)) {
		fam = AF_INET;
		memmove(a, a + 12, 4);
	}
	if (n->family == NET_LOOPBACK) {
		static const unsigned char v6lo[16] = {[15] = 1};
		return fam == AF_INET ? a[0] == 127 : !memcmp(a, v6lo, 16);
	}
	return fam == n->family && in_prefix(n->addr, a, n->prefix);
}

int net_list_contains(const char *const *words, unsigned n, const char *peer)
{
	for (unsigned i = 0; i < n; i++) {
		struct net x;
		if (!net_parse(words[i], &x) && net_contains(&x, peer))
			return 1;
	}
	return 0;
}

/* Whether n lies within the IPv6 network whose first bytes are top. */
static int v6_within(const struct net *n, unsigned char top0,
		     unsigned char top1, unsigned prefix)
{
	unsigned char a[2] = {n->addr[0], n->addr[1]};
	unsigned char t[2] = {top0, top1};
	mask(a, prefix, 2);
	return n->prefix >= prefix && !memcmp(a, t, 2);
}

int net_is_wide(const struct net *n)
{
	if (n->family == AF_INET)
		return n->prefix < 8;
	/* an IPv6 network holds no IPv4-mapped client: net_contains()
	 * unmaps them, and net_parse() makes ::ffff:0:0/(96+p) IPv4 */
	if (n->family != AF_INET6 || n->prefix >= 16)
		return 0;
	/* unique local (fc00::/7) and link-local (fe80::/10) nets are private */
	return !v6_within(n, 0xfc, 0x00, 7) && !v6_within(n, 0xfe, 0x80, 10);
}

int net_port_parse(const char *s, uint16_t *port)
{
	static const struct {
		const char *name;
		uint16_t port;
	} builtin[] = {{"smtp", 25},	    {"submission", 587},
		       {"submissions", 465}, {"smtps", 465},
		       {"lmtp", 24},	    {"domain", 53}};
	if (*s >= '0' && *s <= '9') {
		unsigned long v = 0;
		for (; *s >= '0' && *s <= '9' && v <= 65535; s++)
			v = v * 10 + (unsigned long)(*s - '0');
		if (*s || v == 0 || v > 65535)
			return -1;
		*port = (uint16_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
		if (!strcmp(s, builtin[i].name)) {
			*port = builtin[i].port;
			return 0;
		}
	struct servent *se = *s ? getservbyname(s, "tcp") : NULL;
	if (!se)
		return -1;
	*port = ntohs((uint16_t)se->s_port);
	return 0;
}

/* Sets ep's kind from its host text: a numeric address or a name. */
static int classify_host(struct net_endpoint *ep)
{
	unsigned char bin[16];
	if (inet_pton(AF_INET, ep->host, bin) == 1)
		ep->family = AF_INET;
	else if (inet_pton(AF_INET6, ep->host, bin) == 1)
		ep->family = AF_INET6;
	else
		return addr_domain_valid(ep->host, strlen(ep->host), 1) ? 0
									: -1;
	ep->kind = NET_EP_IP;
	ep->bracketed = 1;
	return 0;
}

/* Copies n bytes of s as ep's host; -1 when they do not fit or are none. */
static int set_host(struct net_endpoint *ep, const char *s, size_t n)
{
	if (n == 0 || n >= sizeof ep->host)
		return -1;
	memcpy(ep->host, s, n);
	ep->host[n] = 0;
	return 0;
}

/* "[host]" or "[ip]:port", with RFC 5321's "IPv6:" tag allowed inside. */
static const char *parse_bracketed(const char *s, struct net_endpoint *ep)
{
	const char *close = strchr(s, ']');
	if (!close)
		return "expected [ADDRESS] or [ADDRESS]:PORT";
	const char *in = s + 1;
	int v6tag = !strncasecmp(in, "IPv6:", 5);
	if (v6tag)
		in += 5;
	if (set_host(ep, in, (size_t)(close - in)) < 0 ||
	    classify_host(ep) < 0)
		return "expected a host or address inside [ ]";
	if (v6tag && ep->family != AF_INET6) /* RFC 5321 4.1.3 */
		return "expected an IPv6 address after IPv6:";
	ep->bracketed = 1;
	if (!close[1])
		return NULL;
	if (close[1] != ':' || net_port_parse(close + 2, &ep->port) < 0)
		return NET_EXPECTED_PORT;
	return NULL;
}

const char *net_endpoint_parse(const char *s, uint16_t defport,
			       struct net_endpoint *ep)
{
	static const char forms[] =
		"expected host, ip, [ip], host:port, [ip]:port or unix:/path";
	memset(ep, 0, sizeof *ep);
	ep->port = defport;
	if (!strncmp(s, "unix:", 5)) {
		ep->kind = NET_EP_UNIX;
		if (s[5] != '/')
			return "expected unix:/absolute/path";
		if (set_host(ep, s + 5, strlen(s + 5)) < 0 ||
		    strlen(ep->host) >= sizeof((struct sockaddr_un *)0)->sun_path)
			return "expected a shorter socket path";
		return NULL;
	}
	if (s[0] == '[')
		return parse_bracketed(s, ep);
	unsigned char bin[16];
	if (inet_pton(AF_INET6, s, bin) == 1) {
		/* a bare IPv6 address: its colons are not a port */
		set_host(ep, s, strlen(s));
		return classify_host(ep) < 0 ? forms : NULL;
	}
	const char *colon = strrchr(s, ':');
	if (colon && memchr(s, ':', (size_t)(colon - s)))
		return "write an IPv6 address as [ADDRESS]:PORT";
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	if (set_host(ep, s, n) < 0 || classify_host(ep) < 0)
		return forms;
	if (colon && net_port_parse(colon + 1, &ep->port) < 0)
		return NET_EXPECTED_PORT;
	return NULL;
}

static char *put_dec(char *o, unsigned v)
{
	if (v >= 100)
		*o++ = (char)('0' + v / 100);
	if (v >= 10)
		*o++ = (char)('0' + v / 10 % 10);
	*o++ = (char)('0' + v % 10);
	return o;
}

static char *put_ipv4(char *o, const unsigned char *a)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*o++ = '.';
		o = put_dec(o, a[i]);
	}
	return o;
}

/* RFC 5952 text, as glibc's inet_ntop writes it (the first longest run
 * of two or more zero groups as "::"; an IPv4-compatible address with
 * its last 32 bits dotted), but without the stdio pages that inet_ntop
 * touches through sprintf: every session formats its client's address */
static char *put_ipv6(char *o, const unsigned char *a)
{
	unsigned w[8];
	int best = -1, blen = 0;
	for (int i = 0, run = 0; i < 8; i++) {
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		run = w[i] ? 0 : run + 1;
		if (run > blen && run >= 2) {
			blen = run;
			best = i - run + 1;
		}
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			*o++ = ':';
			if (best + blen == 8)
				*o++ = ':';
			i += blen - 1;
			continue;
		}
		if (i)
			*o++ = ':';
		if (i == 6 && best == 0 &&
		    (blen == 6 || (blen == 7 && w[7] != 1) ||
		     (blen == 5 && w[5] == 0xffff)))
			return put_ipv4(o, a + 12);
		int started = 0;
		for (int sh = 12; sh >= 0; sh -= 4) {
			unsigned d = w[i] >> sh & 15;
			if (d || started || !sh) {
				*o++ = "0123456789abcdef"[d];
				started = 1;
			}
		}
	}
	return o;
}

void net_ip_text(int family, const unsigned char *addr, char *out)
{
	char *o;
	if (family == AF_INET)
		o = put_ipv4(out, addr);
	else if (!memcmp(addr, v4_mapped, 12))
		o = put_ipv4(out, addr + 12); /* an IPv4 client, IPv6 socket */
	else
		o = put_ipv6(out, addr);
	*o = 0;
}

int net_sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t n,
		      int *port)
{
	char text[NET_IP_TEXT];
	int p;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		net_ip_text(AF_INET, (const void *)&s4->sin_addr, text);
		p = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		net_ip_text(AF_INET6, s6->sin6_addr.s6_addr, text);
		p = ntohs(s6->sin6_port);
	} else {
		if (n)
			out[0] = 0;
		return -1;
	}
	fmt_snprintf(out, n, "%s", text);
	if (port)
		*port = p;
	return 0;
}

int net_is_own_address(int family, const unsigned char *addr)
{
	static const unsigned char any[16];
	struct ifaddrs *ifa;
	if (family == AF_INET6 && !memcmp(addr, v4_mapped, 12))
		return net_is_own_address(AF_INET, addr + 12);
	/* a connection to 0.0.0.0 or :: reaches this machine */
	if ((family == AF_INET || family == AF_INET6) &&
	    !memcmp(addr, any, family == AF_INET ? 4 : 16))
		return 1;
	if (getifaddrs(&ifa) < 0)
		return -1; /* a sandbox without AF_NETLINK */
	int found = 0;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET)
			found = !memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)
						 ->sin_addr,
					addr, 4);
		else if (family == AF_INET6)
			found = !memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)
						 ->sin6_addr,
					addr, 16);
	}
	freeifaddrs(ifa);
	return found;
}

const char *net_stream_address_parse(const char *s,
				     struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		if (s[5] != '/' || strlen(s + 5) >= sizeof un->sun_path)
			return "expected unix:/path (at most 107 bytes)";
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s + 5, strlen(s + 5) + 1);
		*len = sizeof *un;
		return NULL;
	}
	struct net_endpoint ep;
	if (strncmp(s, "inet:", 5) || net_endpoint_parse(s + 5, 0, &ep) ||
	    !ep.port)
		return "expected unix:/path or inet:ADDRESS:PORT";
	if (ep.kind == NET_EP_NAME && !strcmp(ep.host, "localhost")) {
		fmt_snprintf(ep.host, sizeof ep.host, "127.0.0.1");
		ep.family = AF_INET;
		ep.kind = NET_EP_IP;
	}
	if (ep.kind != NET_EP_IP)
		return "expected inet: with a numeric address or localhost";
	if (ep.family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(ep.port);
		inet_pton(AF_INET6, ep.host, &s6->sin6_addr);
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(ep.port);
		inet_pton(AF_INET, ep.host, &s4->sin_addr);
		*len = sizeof *s4;
	}
	return NULL;
}
