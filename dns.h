/*
 * dns.h - the DNS lookups of onward delivery: MX records and address
 * records, through the resolver in libc (res_nquery), honouring
 * core.dns-server; and the query messages and answers of the DNS lists
 * (dnsbl.c sends and receives them without blocking).
 *
 * Owns: the query, the parsing of answers, the MX order (preference, then
 * random among equals, RFC 5321 5.1), the null MX of RFC 7505, and the
 * mapping of resolver failures to permanent or temporary outcomes.
 *
 * Never: caches, connects anywhere but the DNS server, or decides what a
 * failed lookup means for a message (client.c does).
 */
#ifndef POSTMASTER_DNS_H
#define POSTMASTER_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#define DNS_MAX_MX 16
#define DNS_MAX_ADDRS 16

enum dns_status {
	DNS_OK,
	DNS_NOTFOUND, /* the name does not exist (NXDOMAIN) */
	DNS_NODATA,   /* the name exists but has no such records */
	DNS_TEMP,     /* try again later */
	DNS_NULLMX,   /* RFC 7505: the domain accepts no mail */
};

struct dns_mx {
	unsigned pref;
	char host[256];
};

/* The name to ask for domain: its canonical A-label form (idna.h, where
 * libidn2 is loaded when a domain needs it). -1 with a reason when it is
 * not a valid international name or libidn2 cannot be loaded. */
int dns_alabel(const char *domain, char *out, size_t n, char *why,
	       size_t whyn);

/* The DNS server's socket address: server (core.dns-server, IPv4 or
 * IPv6), else the first name server of /etc/resolv.conf. -1 when there
 * is none. */
int dns_server_address(const char *server, struct sockaddr_storage *ss,
		       socklen_t *len);
/* One query message for name and type (res_nmkquery): its length, or -1.
 * *id is the message's id. */
int dns_build_query(const char *name, int type, unsigned char *out,
		    int max, unsigned *id);
/* The IPv4 addresses of an answer to the A query of id for name: the
 * number found (at most max), DNS_NOTFOUND's -2 for NXDOMAIN or no
 * data, -1 for an answer that is not to this query or is broken, -3 for
 * a server failure, -4 for a truncated answer (TC: incomplete, so no
 * negative answer either). */
enum {
	DNS_ANSWER_ALIEN = -1,
	DNS_ANSWER_NONE = -2,
	DNS_ANSWER_FAIL = -3,
	DNS_ANSWER_TRUNCATED = -4,
};
int dns_answer_a(const unsigned char *ans, int len, unsigned id,
		 const char *name, unsigned char (*addrs)[4], int max);

/* The MX records of domain, best first (equals in random order): the max
 * best of the whole answer, however the server ordered it; when some did
 * not fit, the worst kept preference is left out (unless it is the only
 * one), as it may lack a record that would have cut it (RFC 5321 5.1).
 * server: NULL for /etc/resolv.conf, else core.dns-server's value;
 * deadline: 0, or an io_now_ms() time past which no query waits (about a
 * second at most): DNS_TEMP then. */
enum dns_status dns_mx(const char *server, const char *domain,
		       struct dns_mx *mx, int max, int *n, long long deadline);
/* AAAA then A records of host, IPv6 first; port in each; deadline as for
 * dns_mx. */
enum dns_status dns_addrs(const char *server, const char *host, int port,
			  struct sockaddr_storage *out, int max, int *n,
			  long long deadline);

/* What a TXT lookup of name says, records aside: SPF asks it when
 * libspf2 found no record, which it also says when the DNS failed. */
enum dns_status dns_txt_status(const char *server, const char *name);

#endif
