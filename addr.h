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
 *
 * It also reads the address lists of header fields (RFC 5322 3.4:
 * "Ann <a@x>, b@y (Bob), team: c@z;"), for sendmail -t's recipients and
 * for the fix-ups that complete a local part alone with a domain.
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

/* One address of an RFC 5322 address list, as addr_list_scan() finds
 * it: the part in angle brackets where there is one, else the words
 * outside comments, without blanks. */
struct addr_item {
	const char *text;
	size_t len;
	size_t end; /* in the list: just past the address's last character */
	int whole;  /* written as one run: no blank, fold or comment inside */
};
typedef void addr_item_fn(void *arg, const struct addr_item *it);

/*
 * Calls fn (when not NULL) for each non-empty address of the list of n
 * bytes at s: commas and semicolons end an address; a colon outside
 * quotes and brackets ends a group's name. The end of s ends whatever is
 * open; then -1 (a quote, comment or angle bracket left open), else 0.
 */
int addr_list_scan(const char *s, size_t n, addr_item_fn *fn, void *arg);

/* Whether the field that starts at field is one whose addresses a local
 * submission completes: From, Sender, Reply-To, To, Cc and their Resent-
 * forms. */
int addr_field_has_addresses(const char *field, size_t n);

/*
 * Writes the field of n bytes at field ("Name: list", folded or not)
 * through write, with "@domain" after each address of its list that is a
 * local part alone (RFC 5322 3.4.1 wants a domain), everything else as
 * it is: names, comments, quoting, groups and folding. A field whose
 * list does not scan, or one of whose lines would grow past 998
 * characters, is written unchanged. How many addresses it completed.
 */
size_t addr_field_qualify(const char *field, size_t n, const char *domain,
			  void (*write)(void *arg, const char *p, size_t n),
			  void *arg);

#endif
