/*
 * net.h - network addresses as the configuration writes them.
 *
 * Owns: IP networks for relay-clients ("loopback", "none", an address and
 * "address/prefix", RFC 4632 / RFC 4291 notation) and whether a client
 * address is inside one; and the one parser of endpoints (host, ip, [ip],
 * host:port, [ip]:port, unix:/path) that configuration checks, the onward
 * client and the DNS resolver share, so that what --check accepts is what
 * a delivery connects to; the policy service's unix:/inet: addresses;
 * a socket address as text, as logs and headers
 * show it; and whether an address is one of this machine's own.
 *
 * Never: connects, or resolves a host name (a port may be a service name,
 * looked up in /etc/services as getservbyname(3) does).
 */
#ifndef POSTMASTER_NET_H
#define POSTMASTER_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The peer text a session uses for a client that is not on the network
 * (a pipe or a local socket). */
#define NET_LOCAL_PEER "local"

struct net {
	int family;              /* AF_INET, AF_INET6, or NET_LOOPBACK */
	unsigned char addr[16];  /* masked to prefix bits */
	unsigned prefix;
};

#define NET_LOOPBACK (-1) /* 127.0.0.0/8, ::1 and local pipes/sockets */
#define NET_NONE (-2)     /* "none": no network at all */

/* Parses one relay-clients word. Returns NULL, or why it is not one. */
const char *net_parse(const char *s, struct net *n);

/* Whether the client at peer (an address as text, or NET_LOCAL_PEER)
 * is inside n. */
int net_contains(const struct net *n, const char *peer);

/* Whether peer is inside any of the networks written in words (each one
 * valid for net_parse; NULL-terminated list of n words). */
int net_list_contains(const char *const *words, unsigned n, const char *peer);

/* Whether n covers a large part of the public address space: an IPv4
 * prefix shorter than 8, or an IPv6 prefix shorter than 16 outside
 * fc00::/7 (unique local) and fe80::/10 (link-local). --check counts
 * such a relay-clients network as every client. */
int net_is_wide(const struct net *n);

enum net_endpoint_kind {
	NET_EP_NAME, /* a host name: its MX or address records */
	NET_EP_IP,   /* a numeric IPv4 or IPv6 address */
	NET_EP_UNIX, /* a local socket */
};

struct net_endpoint {
	enum net_endpoint_kind kind;
	int family;      /* NET_EP_IP: AF_INET or AF_INET6 */
	int bracketed;   /* [host] or an address: no MX lookup */
	uint16_t port;   /* the default when none is written */
	char host[256];  /* the name or address, without brackets or "IPv6:";
			  * NET_EP_UNIX: the path */
};

/* The reason net_endpoint_parse gives for a port it cannot read. */
#define NET_EXPECTED_PORT "expected a port number or service name"

/* Parses one endpoint: host, ip, [ip], [host], host:port, [ip]:port or
 * unix:/path, with defport when no port is written. Returns NULL, or why
 * s is not one ("expected ..."). */
const char *net_endpoint_parse(const char *s, uint16_t defport,
			       struct net_endpoint *ep);

/* A service's address as Postfix writes it: unix:/path, or
 * inet:ADDRESS:PORT with a numeric address (or localhost). NULL with the
 * socket address in ss, or what was expected. */
const char *net_stream_address_parse(const char *s,
				     struct sockaddr_storage *ss,
				     socklen_t *len);

/* A port: a number from 1 to 65535 or a service name. 0 or -1. */
int net_port_parse(const char *s, uint16_t *port);

/* Whether addr (4 bytes for AF_INET, 16 for AF_INET6) is one of this
 * machine's own interface addresses (getifaddrs(3)), the unspecified
 * address (0.0.0.0, ::), which also reaches it, or the v4-mapped IPv6
 * form of one of those: 1 or 0; -1 with errno when the interfaces
 * cannot be listed (route_env.c's own_address says so in the log). */
int net_is_own_address(int family, const unsigned char *addr);

/* Room for the longest text net_ip_text writes, and its NUL. */
#define NET_IP_TEXT 46

/* addr (4 bytes for AF_INET, 16 for AF_INET6) as inet_ntop(3) writes it,
 * but an IPv4-mapped IPv6 address as plain IPv4; out has NET_IP_TEXT
 * bytes. */
void net_ip_text(int family, const unsigned char *addr, char *out);

/* The address of an IPv4 or IPv6 socket as text (an IPv4 client on an
 * IPv6 socket as plain IPv4), and its port when port is not NULL. -1, with
 * out empty, for any other family. */
int net_sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t n,
		      int *port);

#endif
