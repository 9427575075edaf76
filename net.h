/*
 * net.h - IP networks as the configuration writes them (relay-clients).
 *
 * Owns: parsing "loopback", "none", an address and "address/prefix" (IPv4
 * and IPv6, RFC 4632 / RFC 4291 notation), and deciding whether a client
 * address is inside one. Never does I/O and never resolves a name.
 */
#ifndef POSTMASTER_NET_H
#define POSTMASTER_NET_H

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

/* Whether n holds every address of its family (a prefix of 0). */
int net_is_everything(const struct net *n);

#endif
