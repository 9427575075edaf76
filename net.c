/*
 * net.c - IP networks for relay-clients (see net.h).
 *
 * Owns the CIDR syntax and the containment test. Never does I/O, never
 * resolves a host name: a network is written as numbers or "loopback".
 */
#include "net.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void mask(unsigned char *a, unsigned prefix, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
		if (bits < 8)
			a[i] &= (unsigned char)(0xff00u >> bits);
	}
}

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
		return "expected loopback, none, an IP address or a network "
		       "such as 192.0.2.0/24 or 2001:db8::/32";
	memcpy(ip, s, len);
	ip[len] = 0;
	if (inet_pton(AF_INET, ip, n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, n->addr) == 1)
		n->family = AF_INET6;
	else
		return "expected loopback, none, an IP address or a network "
		       "such as 192.0.2.0/24 or 2001:db8::/32";
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

int net_is_everything(const struct net *n)
{
	return (n->family == AF_INET || n->family == AF_INET6) &&
	       n->prefix == 0;
}
