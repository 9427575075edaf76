/*
 * addr.h - the one parser for RFC 5321 mail addresses.
 *
 * Every address postmaster reads - MAIL FROM, RCPT TO, --route, route
 * patterns and rewrite targets - goes through addr_parse(). It owns the
 * syntax rules (RFC 5321 4.1.2, RFC 6531 for UTF-8), the length limits, and
 * the canonical form in which addresses are compared and printed. It never
 * resolves anything and never touches the network.
 *
 * '%' and '!' are plain local-part characters; a source route
 * (<@a,@b:user@c>) is accepted and stripped (RFC 5321 4.1.1.3, C.).
 */
#ifndef POSTMASTER_ADDR_H
#define POSTMASTER_ADDR_H

#include <stddef.h>

#define ADDR_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, including < and > */
#define ADDR_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */

enum {
	ADDR_NULL_OK = 1 << 0,     /* "<>" is acceptable (reverse-path) */
	ADDR_UTF8 = 1 << 1,        /* non-ASCII allowed (SMTPUTF8, RFC 6531) */
	ADDR_NODOMAIN_OK = 1 << 2, /* "<postmaster>", local names */
	ADDR_BRACKETS = 1 << 3,    /* the path must be written <...> */
	ADDR_PARTS = 1 << 4,       /* route pattern or rewrite target: either
				      side of '@' may be empty */
	ADDR_NODASH = 1 << 5,      /* no local part that begins with '-': it
				      would pass for an option where a
				      mailer's command line takes it (as
				      Postfix's allow_min_user = no) */
};

enum addr_status {
	ADDR_OK = 0,
	ADDR_ESYNTAX,   /* not an RFC 5321 path */
	ADDR_ENONASCII, /* non-ASCII without SMTPUTF8: 553 5.6.7 */
	ADDR_ETOOLONG,  /* path over 256 or domain over 255 octets */
	ADDR_ECONTROL,  /* a control character */
	ADDR_ENODOMAIN, /* no domain where one is required */
	ADDR_ENULL,     /* "<>" where it is not allowed */
};

struct addr {
	/* Canonical local part: a dot-string as is, otherwise a quoted
	 * string with only '"' and '\' escaped. Empty for "<>" and for a
	 * pattern or target without a local part. */
	char local[ADDR_PATH_MAX];
	char domain[ADDR_DOMAIN_MAX + 1];
	unsigned char null;     /* "<>" */
	unsigned char has_at;   /* an '@' was present */
	unsigned char literal;  /* the domain is an address literal */
	unsigned char nonascii; /* contains UTF-8 beyond ASCII */
};

/*
 * Parses n bytes at s. On failure returns the status and sets *why to a
 * short English reason (static storage) and *where to the offending
 * offset in s.
 */
enum addr_status addr_parse(const char *s, size_t n, unsigned flags,
			    struct addr *a, const char **why, size_t *where);

/* Writes "local@domain" (or "local", or "" for <>) into out. */
void addr_format(const struct addr *a, char *out, size_t outsize);

/* Case-insensitive comparison of the ASCII letters; other bytes exact. */
int addr_part_eq(const char *a, const char *b);

/* Whether s is a syntactically valid domain name or address literal: the
 * rule addr_parse() applies after '@', control characters (C0, DEL, C1)
 * refused alike. */
int addr_domain_valid(const char *s, size_t n, int utf8);

/* Whether s is an RFC 5322 dot-atom of ASCII atext: atoms of at least
 * one character, joined by single dots. */
int addr_dot_atom(const char *s);

/* Whether the canonical local part is "postmaster" in any case. */
int addr_is_postmaster(const struct addr *a);

#endif
