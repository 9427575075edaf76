/*
 * test_addr.c - the RFC 5321 path parser (addr.c), table-driven: what a
 * client or a postmaster.cf may write, and what comes out of it: the
 * status a session turns into its reply, and the canonical local part and
 * domain that routing compares and logs show.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "util.h"

#define B ADDR_BRACKETS
#define N ADDR_NULL_OK
#define U ADDR_UTF8
#define D ADDR_NODOMAIN_OK
#define P ADDR_PARTS

struct acase {
	const char *in;
	unsigned flags;
	enum addr_status st;
	const char *local, *domain; /* expected canonical parts on ADDR_OK */
};

static const struct acase cases[] = {
	/* plain paths; the brackets are optional unless ADDR_BRACKETS */
	{"<joe@example.org>", B, ADDR_OK, "joe", "example.org"},
	{"<joe@example.org>", 0, ADDR_OK, "joe", "example.org"},
	{"joe@example.org", 0, ADDR_OK, "joe", "example.org"},
	{"joe@example.org", B, ADDR_ESYNTAX, 0, 0},
	{"<Joe.Doe@Example.ORG>", B, ADDR_OK, "Joe.Doe", "Example.ORG"},
	{"<a.b.c@x.example>", B, ADDR_OK, "a.b.c", "x.example"},
	{"<joe@localhost>", B, ADDR_OK, "joe", "localhost"},
	{"<joe@123.example>", B, ADDR_OK, "joe", "123.example"},
	{"<joe@a--b.example>", B, ADDR_OK, "joe", "a--b.example"},
	{"<joe@xn--bcher-kva.example>", B, ADDR_OK, "joe", "xn--bcher-kva.example"},
	{"<a!b#c$d%e&f'g*h+i-j/k=l?m^n_o`p{q|r}s~t@x.example>", B, ADDR_OK,
	 "a!b#c$d%e&f'g*h+i-j/k=l?m^n_o`p{q|r}s~t", "x.example"},
	/* the null path */
	{"<>", B | N, ADDR_OK, "", ""},
	{"<>", N, ADDR_OK, "", ""},
	{"<>", B, ADDR_ENULL, 0, 0},
	{"<>", 0, ADDR_ENULL, 0, 0},
	{"<>", B | U | D, ADDR_ENULL, 0, 0},
	{"<> ", B | N, ADDR_ESYNTAX, 0, 0},
	/* %-hack and ! are plain local-part characters */
	{"<user%other.example@ours.example>", B, ADDR_OK, "user%other.example",
	 "ours.example"},
	{"<host!user@ours.example>", B, ADDR_OK, "host!user", "ours.example"},
	{"<a%b%c@ours.example>", B, ADDR_OK, "a%b%c", "ours.example"},
	/* source routes are validated and stripped */
	{"<@a.example,@b.example:user@c.example>", B, ADDR_OK, "user",
	 "c.example"},
	{"<@a.example:user@c.example>", B, ADDR_OK, "user", "c.example"},
	{"<@a.example,@b.example,@c.example:user@d.example>", B, ADDR_OK, "user",
	 "d.example"},
	{"<@[192.0.2.1]:user@c.example>", B, ADDR_OK, "user", "c.example"},
	{"@a.example:user@c.example", 0, ADDR_OK, "user", "c.example"},
	{"<@a.example,b.example:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example,:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a..example:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example:@b.example:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example,@b.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example:>", B, ADDR_ESYNTAX, 0, 0},
	{"<:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	/* quoted local parts: a valid dot-string comes out unquoted, anything
	 * else quoted with only '"' and '\' escaped */
	{"<\"joe\"@example.org>", B, ADDR_OK, "joe", "example.org"},
	{"<\"a.b\"@example.org>", B, ADDR_OK, "a.b", "example.org"},
	{"<\"john doe\"@example.org>", B, ADDR_OK, "\"john doe\"", "example.org"},
	{"<\"john\\ doe\"@example.org>", B, ADDR_OK, "\"john doe\"",
	 "example.org"},
	{"<\"a\\\"b\"@example.org>", B, ADDR_OK, "\"a\\\"b\"", "example.org"},
	{"<\"a\\\\b\"@example.org>", B, ADDR_OK, "\"a\\\\b\"", "example.org"},
	{"<\"a\\b\"@example.org>", B, ADDR_OK, "ab", "example.org"},
	{"<\"a@b\"@example.org>", B, ADDR_OK, "\"a@b\"", "example.org"},
	{"<\"a,b\"@example.org>", B, ADDR_OK, "\"a,b\"", "example.org"},
	{"<\"a..b\"@example.org>", B, ADDR_OK, "\"a..b\"", "example.org"},
	{"<\".a\"@example.org>", B, ADDR_OK, "\".a\"", "example.org"},
	{"<\"\"@example.org>", B, ADDR_OK, "\"\"", "example.org"},
	{"<\"joe\">", B | D, ADDR_OK, "joe", ""},
	{"<\"unterminated@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<\"a\\\"@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<\"joe\".x@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<x.\"joe\"@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<\"joe\"@>", B, ADDR_ENODOMAIN, 0, 0},
	/* dots */
	{"<.joe@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe.@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo..e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<.@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* characters that are neither atext nor allowed */
	{"<jo e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo(e)@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo<e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo,e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo@e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* domains */
	{"<joe@-example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example-.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org->", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example..org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@.example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org.>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@exa_mple.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@exa mple.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org >", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org:25>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.123>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@192.0.2.1>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@>", B, ADDR_ENODOMAIN, 0, 0},
	{"<@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* no domain: only postmaster and local names, when asked for */
	{"<joe>", B, ADDR_ENODOMAIN, 0, 0},
	{"<joe>", B | D, ADDR_OK, "joe", ""},
	{"<postmaster>", B, ADDR_ENODOMAIN, 0, 0},
	{"<postmaster>", B | D, ADDR_OK, "postmaster", ""},
	{"<Postmaster>", B | D, ADDR_OK, "Postmaster", ""},
	{"postmaster", D, ADDR_OK, "postmaster", ""},
	{"<postmaster@>", B | D, ADDR_ENODOMAIN, 0, 0},
	/* address literals */
	{"<joe@[192.0.2.1]>", B, ADDR_OK, "joe", "[192.0.2.1]"},
	{"<joe@[127.0.0.1]>", B, ADDR_OK, "joe", "[127.0.0.1]"},
	{"<joe@[IPv6:2001:db8::1]>", B, ADDR_OK, "joe", "[IPv6:2001:db8::1]"},
	{"<joe@[ipv6:::1]>", B, ADDR_OK, "joe", "[ipv6:::1]"},
	{"<joe@[IPv6:::ffff:192.0.2.1]>", B, ADDR_OK, "joe",
	 "[IPv6:::ffff:192.0.2.1]"},
	{"<joe@[300.1.1.1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2.1.5]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[ 192.0.2.1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[IPv6:zz]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[IPv6:zz::1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[IPv6:2001:db8::1::2]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[IPv6:192.0.2.1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[2001:db8::1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[tag:content]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[x400:c=us;a=x]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2.1>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2.1]x>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2.1].example>", B, ADDR_ESYNTAX, 0, 0},
	/* UTF-8 (RFC 6531) */
	{"<zo\xc3\xab@example.org>", B | U, ADDR_OK, "zo\xc3\xab", "example.org"},
	{"<zo\xc3\xab@example.org>", B, ADDR_ENONASCII, 0, 0},
	{"<joe@b\xc3\xbc" "cher.example>", B | U, ADDR_OK, "joe",
	 "b\xc3\xbc" "cher.example"},
	{"<joe@b\xc3\xbc" "cher.example>", B, ADDR_ENONASCII, 0, 0},
	{"<\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b.example>", B | U, ADDR_OK,
	 "\xe7\x94\xb0\xe4\xb8\xad", "\xe4\xbe\x8b.example"},
	{"<smile\xf0\x9f\x98\x80@example.org>", B | U, ADDR_OK,
	 "smile\xf0\x9f\x98\x80", "example.org"},
	{"<\"zo\xc3\xab x\"@example.org>", B | U, ADDR_OK, "\"zo\xc3\xab x\"",
	 "example.org"},
	{"<\"zo\xc3\xab\"@example.org>", B | U, ADDR_OK, "zo\xc3\xab",
	 "example.org"},
	{"<\"zo\xc3\xab\"@example.org>", B, ADDR_ENONASCII, 0, 0},
	{"<@b\xc3\xbc" "cher.example:joe@example.org>", B, ADDR_ENONASCII, 0, 0},
	/* invalid UTF-8 is a syntax error, with or without SMTPUTF8 */
	{"<zo\xc3@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<zo\xc3@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<zo\xff@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<zo\xc0\xab@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<zo\x80@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<zo\xed\xa0\x80@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<zo\xf4\x90\x80\x80@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<joe@b\xfc" "cher.example>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<\"a\\\xc3\xab\"@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	/* control characters, wherever they are */
	{"<jo\te@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\re@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\ne@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\x7f@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\x1b@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<joe@exa\x01mple.org>", B, ADDR_ECONTROL, 0, 0},
	{"<\"jo\x01\"@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<\"jo\\\t\"@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<joe@example.org>\r\n", B, ADDR_ECONTROL, 0, 0},
	{"\x01<joe@example.org>", 0, ADDR_ECONTROL, 0, 0},
	/* brackets */
	{"<joe@example.org", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org>>", B, ADDR_ESYNTAX, 0, 0},
	{"<<joe@example.org>>", B, ADDR_ESYNTAX, 0, 0},
	{"< joe@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<", B, ADDR_ESYNTAX, 0, 0},
	{"joe@example.org>", 0, ADDR_ESYNTAX, 0, 0},
	/* route patterns and rewrite targets (ADDR_PARTS) */
	{"user@", P | U, ADDR_OK, "user", ""},
	{"@example.org", P | U, ADDR_OK, "", "example.org"},
	{"@[192.0.2.1]", P | U, ADDR_OK, "", "[192.0.2.1]"},
	{"@", P | U, ADDR_OK, "", ""},
	{"postmaster", P | U, ADDR_OK, "postmaster", ""},
	{"user@example.org", P | U, ADDR_OK, "user", "example.org"},
	{"\"a b\"@", P | U, ADDR_OK, "\"a b\"", ""},
	{"us er@", P | U, ADDR_ESYNTAX, 0, 0},
	{"us..er@", P | U, ADDR_ESYNTAX, 0, 0},
	{"@-bad.example", P | U, ADDR_ESYNTAX, 0, 0},
	{"@bad.example.", P | U, ADDR_ESYNTAX, 0, 0},
};

static const char *status_name(enum addr_status st)
{
	static const char *const names[] = {
		"OK", "ESYNTAX", "ENONASCII", "ETOOLONG", "ECONTROL",
		"ENODOMAIN", "ENULL",
	};
	return (unsigned)st < sizeof names / sizeof *names ? names[st] : "?";
}

static enum addr_status parse(const char *s, size_t n, unsigned flags,
			      struct addr *a)
{
	const char *why = NULL;
	size_t where = 0;
	enum addr_status st = addr_parse(s, n, flags, a, &why, &where);
	/* every refusal says why and points inside the input */
	if (st != ADDR_OK) {
		assert_non_null(why);
		assert_true(where <= n);
	}
	return st;
}

static void test_table(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct acase *c = &cases[i];
		struct addr a;
		const char *why = NULL;
		size_t where = 0;
		enum addr_status st =
			addr_parse(c->in, strlen(c->in), c->flags, &a, &why, &where);
		if (st != c->st) {
			print_error("case %zu '%s': %s, expected %s (%s)\n", i,
				    c->in, status_name(st), status_name(c->st),
				    why ? why : "");
			bad++;
			continue;
		}
		if (st != ADDR_OK) {
			if (!why || where > strlen(c->in)) {
				print_error("case %zu '%s': no reason or a "
					    "position outside the input\n",
					    i, c->in);
				bad++;
			}
			continue;
		}
		if (strcmp(a.local, c->local) || strcmp(a.domain, c->domain)) {
			print_error("case %zu '%s': got <%s> <%s>, expected "
				    "<%s> <%s>\n",
				    i, c->in, a.local, a.domain, c->local,
				    c->domain);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The flags that describe the result: null, '@', literal, non-ASCII. */
static void test_result_flags(void **state)
{
	(void)state;
	struct addr a;
	assert_int_equal(parse("<>", 2, B | N, &a), ADDR_OK);
	assert_true(a.null);
	assert_false(a.has_at);
	assert_int_equal(parse("<joe@example.org>", 17, B, &a), ADDR_OK);
	assert_false(a.null);
	assert_true(a.has_at);
	assert_false(a.literal);
	assert_false(a.nonascii);
	assert_int_equal(parse("<joe@[192.0.2.1]>", 17, B, &a), ADDR_OK);
	assert_true(a.literal);
	static const char utf[] = "<zo\xc3\xab@example.org>";
	assert_int_equal(parse(utf, sizeof utf - 1, B | U, &a), ADDR_OK);
	assert_true(a.nonascii);
	/* a dropped source route does not make the address need SMTPUTF8 */
	static const char sr[] = "<@b\xc3\xbc" "cher.example:joe@example.org>";
	assert_int_equal(parse(sr, sizeof sr - 1, B | U, &a), ADDR_OK);
	assert_string_equal(a.local, "joe");
	assert_false(a.nonascii);
	assert_int_equal(parse("<postmaster>", 12, B | D, &a), ADDR_OK);
	assert_false(a.has_at);
	assert_int_equal(parse("user@", 5, P, &a), ADDR_OK);
	assert_true(a.has_at);
	assert_int_equal(parse("alias", 5, P, &a), ADDR_OK);
	assert_false(a.has_at);
	/* a refusal leaves nothing behind that a caller might use */
	assert_int_equal(parse("<jo..e@example.org>", 19, B, &a), ADDR_ESYNTAX);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
}

/* A NUL inside the given length is a control character, not the end. */
static void test_nul_inside(void **state)
{
	(void)state;
	static const char in[] = "<jo\0e@example.org>";
	struct addr a;
	const char *why;
	size_t where;
	assert_int_equal(addr_parse(in, sizeof in - 1, B, &a, &why, &where),
			 ADDR_ECONTROL);
	assert_int_equal(where, 3);
	static const char dom[] = "<joe@example.org\0>";
	assert_int_equal(addr_parse(dom, sizeof dom - 1, B, &a, &why, &where),
			 ADDR_ECONTROL);
	assert_int_equal(where, 16);
	/* ... and the length, not a NUL, ends the input */
	static const char pre[] = "<joe@example.org>trailing";
	assert_int_equal(addr_parse(pre, 17, B, &a, &why, &where), ADDR_OK);
	assert_string_equal(a.domain, "example.org");
	/* the position of a DEL is reported too */
	assert_int_equal(addr_parse("<abc\x7f@x.example>", 15, B, &a, &why,
				    &where),
			 ADDR_ECONTROL);
	assert_int_equal(where, 4);
}

/* U+0080..U+009F are control characters (SPEC 5: "an address with control
 * characters ... is refused"), even in valid UTF-8 under SMTPUTF8. */
static void test_c1_controls_refused(void **state)
{
	(void)state;
	struct addr a;
	static const char nel[] = "<jo\xc2\x85" "e@example.org>";
	assert_int_equal(parse(nel, sizeof nel - 1, B | U, &a), ADDR_ECONTROL);
	static const char csi[] = "<joe\xc2\x9b" "31m@example.org>";
	assert_int_equal(parse(csi, sizeof csi - 1, B | U, &a), ADDR_ECONTROL);
	/* U+00A0 and above are fine */
	static const char nbsp[] = "<jo\xc2\xa9" "e@example.org>";
	assert_int_equal(parse(nbsp, sizeof nbsp - 1, B | U, &a), ADDR_OK);
}

/* <LOCAL@example.org> with LOCAL filling up to exactly total octets. */
static size_t make_path(char *buf, size_t size, size_t total, int brackets)
{
	static const char dom[] = "@example.org";
	size_t extra = strlen(dom) + (brackets ? 2 : 0);
	size_t local = total - extra;
	assert_true(total + 1 <= size);
	size_t o = 0;
	if (brackets)
		buf[o++] = '<';
	memset(buf + o, 'a', local);
	o += local;
	memcpy(buf + o, dom, strlen(dom));
	o += strlen(dom);
	if (brackets)
		buf[o++] = '>';
	buf[o] = 0;
	assert_int_equal(o, total);
	return o;
}

/* RFC 5321 4.5.3.1.3: a path of 256 octets including < and >. */
static void test_path_length(void **state)
{
	(void)state;
	char buf[400];
	struct addr a;
	size_t n = make_path(buf, sizeof buf, 256, 1);
	assert_int_equal(parse(buf, n, B, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 256 - 2 - strlen("@example.org"));
	n = make_path(buf, sizeof buf, 257, 1);
	assert_int_equal(parse(buf, n, B, &a), ADDR_ETOOLONG);
	/* written without brackets, the limit is the same path */
	n = make_path(buf, sizeof buf, 254, 0);
	assert_int_equal(parse(buf, n, 0, &a), ADDR_OK);
	n = make_path(buf, sizeof buf, 255, 0);
	assert_int_equal(parse(buf, n, 0, &a), ADDR_ETOOLONG);
	/* a source route counts: the path as written is too long */
	char sr[600];
	n = make_path(buf, sizeof buf, 240, 0);
	assert_int_equal(parse(buf, n, 0, &a), ADDR_OK);
	n = (size_t)snprintf(sr, sizeof sr, "<@relay.example:%.240s>", buf);
	assert_int_equal(n, 257);
	assert_int_equal(parse(sr, n, B, &a), ADDR_ETOOLONG);
	/* so does the quoting, though the canonical form is shorter */
	char q[400];
	q[0] = '<';
	q[1] = '"';
	memset(q + 2, 'q', 240);
	snprintf(q + 242, sizeof q - 242, "\"@example.org>");
	assert_int_equal(strlen(q), 256);
	assert_int_equal(parse(q, 256, B, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 240);
	memmove(q + 3, q + 2, strlen(q + 2) + 1);
	q[2] = 'q';
	assert_int_equal(strlen(q), 257);
	assert_int_equal(parse(q, 257, B, &a), ADDR_ETOOLONG);
}

/* Local parts longer than 64 octets are accepted (SRS, VERP). */
static void test_long_local_part(void **state)
{
	(void)state;
	char buf[300];
	struct addr a;
	buf[0] = '<';
	memset(buf + 1, 'v', 100);
	snprintf(buf + 101, sizeof buf - 101, "@example.org>");
	assert_int_equal(parse(buf, strlen(buf), B, &a), ADDR_OK);
	assert_int_equal(strlen(a.local), 100);
	/* an SRS address as a forwarder writes it */
	static const char srs[] =
		"<SRS0=HHH=TT=example.org=a-very-long-local-part.with.dots+and-"
		"a-tag-that-makes-it-longer-than-sixty-four@forwarder.example>";
	assert_int_equal(parse(srs, sizeof srs - 1, B, &a), ADDR_OK);
	assert_true(strlen(a.local) > 64);
	assert_string_equal(a.domain, "forwarder.example");
}

/* RFC 5321 4.5.3.1.2: a domain of 255 octets; labels of 63. */
static void test_domain_length(void **state)
{
	(void)state;
	char d[300];
	size_t n = 0;
	while (n + 64 <= 255) { /* 63-octet labels and dots */
		memset(d + n, 'd', 63);
		n += 63;
		d[n++] = '.';
	}
	while (n < 255)
		d[n++] = 'e';
	assert_true(addr_domain_valid(d, 255, 0));
	d[255] = 'e';
	assert_false(addr_domain_valid(d, 256, 0));
	char label[80];
	memset(label, 'l', 64);
	memcpy(label + 64, ".example", 8);
	assert_false(addr_domain_valid(label, 72, 0));
	assert_true(addr_domain_valid(label + 1, 71, 0));
	/* the same limits inside a path */
	char path[120];
	struct addr a;
	snprintf(path, sizeof path, "<joe@%.71s>", label + 1);
	assert_int_equal(parse(path, strlen(path), B, &a), ADDR_OK);
	snprintf(path, sizeof path, "<joe@%.72s>", label);
	assert_int_equal(parse(path, strlen(path), B, &a), ADDR_ESYNTAX);
	/* a 63-octet label last, and one of 64 */
	snprintf(path, sizeof path, "<joe@example.%.63s>", label);
	assert_int_equal(parse(path, strlen(path), B, &a), ADDR_OK);
	snprintf(path, sizeof path, "<joe@example.%.64s>", label);
	assert_int_equal(parse(path, strlen(path), B, &a), ADDR_ESYNTAX);
	/* other shapes addr_domain_valid refuses */
	assert_false(addr_domain_valid("", 0, 0));
	assert_false(addr_domain_valid("a..b", 4, 0));
	assert_false(addr_domain_valid("b\xc3\xbc" "cher.example", 13, 0));
	assert_true(addr_domain_valid("b\xc3\xbc" "cher.example", 13, 1));
	assert_true(addr_domain_valid("[192.0.2.1]", 11, 0));
	assert_false(addr_domain_valid("[192.0.2.256]", 13, 0));
}

/* fuzz/crashes/addr-c1-control-domain: a C1 control (U+0085) is refused
 * by addr_domain_valid as addr_parse refuses it, so no host name in the
 * configuration can hold one. */
static void test_domain_c1_control(void **state)
{
	(void)state;
	struct addr a;
	assert_false(addr_domain_valid("\xc2\x85", 2, 1));
	assert_false(addr_domain_valid("a\xc2\x9f.example", 11, 1));
	assert_int_equal(parse("x@\xc2\x85", 4, ADDR_UTF8, &a), ADDR_ECONTROL);
	/* U+00A0 and beyond are not controls */
	assert_true(addr_domain_valid("a\xc2\xa0.example", 11, 1));
	assert_true(addr_domain_valid("\xc3\xa9.example", 10, 1));
}

static void format(const char *in, unsigned flags, const char *want)
{
	struct addr a;
	char out[300];
	assert_int_equal(parse(in, strlen(in), flags, &a), ADDR_OK);
	addr_format(&a, out, sizeof out);
	assert_string_equal(out, want);
}

static void test_format(void **state)
{
	(void)state;
	format("<Joe@Example.ORG>", B, "Joe@Example.ORG");
	format("<\"a b\"@x.example>", B, "\"a b\"@x.example");
	format("<\"joe\"@x.example>", B, "joe@x.example");
	format("<\"a\\\"b\"@x.example>", B, "\"a\\\"b\"@x.example");
	format("<>", B | N, "");
	format("<PostMaster>", B | D, "PostMaster");
	format("<@a.example,@b.example:user@c.example>", B, "user@c.example");
	format("<joe@[IPv6:2001:db8::1]>", B, "joe@[IPv6:2001:db8::1]");
	format("user@", P, "user@");
	format("@example.org", P, "@example.org");
	format("@", P, "@");
	format("alias", P, "alias");
	/* a small buffer is cut, never overrun */
	struct addr a;
	char small[8];
	memset(small, 'X', sizeof small);
	assert_int_equal(parse("<joe@example.org>", 17, B, &a), ADDR_OK);
	addr_format(&a, small, 5);
	assert_string_equal(small, "joe@");
	assert_int_equal(small[5], 'X');
}

static int is_pm(const char *in, unsigned flags)
{
	struct addr a;
	assert_int_equal(parse(in, strlen(in), flags, &a), ADDR_OK);
	return addr_is_postmaster(&a);
}

static void test_is_postmaster(void **state)
{
	(void)state;
	assert_true(is_pm("<postmaster>", B | D));
	assert_true(is_pm("<PostMaster>", B | D));
	assert_true(is_pm("<POSTMASTER>", B | D));
	assert_true(is_pm("<postmaster@example.org>", B));
	assert_true(is_pm("<\"postmaster\"@example.org>", B));
	assert_false(is_pm("<postmaster2@example.org>", B));
	assert_false(is_pm("<postmasters>", B | D));
	assert_false(is_pm("<post.master@example.org>", B));
	assert_false(is_pm("<post>", B | D));
	assert_false(is_pm("<>", B | N));
	/* addr_part_eq: ASCII letters fold, other bytes do not */
	assert_true(addr_part_eq("Example.ORG", "example.org"));
	assert_false(addr_part_eq("example.org", "example.org."));
	assert_false(addr_part_eq("\xc3\x8b", "\xc3\xab"));
	assert_true(addr_part_eq("\xc3\xab", "\xc3\xab"));
}

/* Whatever comes out parses again to the same thing. */
static void test_dot_atom(void **state)
{
	(void)state;
	assert_true(addr_dot_atom("mail.example.net"));
	assert_true(addr_dot_atom("192.0.2.1"));
	assert_true(addr_dot_atom("a=b"));
	assert_false(addr_dot_atom(""));
	assert_false(addr_dot_atom("a..b"));
	assert_false(addr_dot_atom(".a"));
	assert_false(addr_dot_atom("a."));
	assert_false(addr_dot_atom("a;b"));
	assert_false(addr_dot_atom("a@b"));
	assert_false(addr_dot_atom("2001:db8::1"));
	assert_false(addr_dot_atom("a b"));
	assert_false(addr_dot_atom("\"a\""));
	assert_false(addr_dot_atom("b\xc3\xbc"));
}

static void test_canonical_round_trip(void **state)
{
	(void)state;
	int tried = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct acase *c = &cases[i];
		struct addr a, b;
		if (c->st != ADDR_OK || (c->flags & P) ||
		    parse(c->in, strlen(c->in), c->flags, &a) != ADDR_OK ||
		    a.null)
			continue;
		char out[300];
		addr_format(&a, out, sizeof out);
		if (parse(out, strlen(out), (c->flags & ~B) | D, &b) != ADDR_OK) {
			print_error("case %zu '%s': canonical '%s' does not "
				    "parse\n",
				    i, c->in, out);
			fail();
		}
		assert_string_equal(a.local, b.local);
		assert_string_equal(a.domain, b.domain);
		tried++;
	}
	assert_true(tried > 40);
}

/* ------------------------------------------------------------------ */
/* Header address lists: local parts alone completed (addr_field_qualify) */

static void to_buf(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* The field as the fix-ups write it, and how many it completed. */
static size_t qualified(const char *field, char *out, size_t outsize)
{
	struct buf b = {0};
	size_t k = addr_field_qualify(field, strlen(field), "mail.example.net",
				      to_buf, &b);
	assert_true(b.len < outsize);
	memcpy(out, b.s ? b.s : "", b.len);
	out[b.len] = 0;
	buf_free(&b);
	return k;
}

static const struct {
	const char *in, *out;
	size_t completed;
} qualify_cases[] = {
	/* what Debian's cron writes */
	{"From: root (Cron Daemon)\n",
	 "From: root@mail.example.net (Cron Daemon)\n", 1},
	{"To: root, bob@x.example\n",
	 "To: root@mail.example.net, bob@x.example\n", 1},
	{"To: root\r\n", "To: root@mail.example.net\r\n", 1},
	/* display names, angle brackets, blanks inside them */
	{"From: \"Cron Daemon\" <root>\n",
	 "From: \"Cron Daemon\" <root@mail.example.net>\n", 1},
	{"Reply-To: Ann Smith < ann >\n",
	 "Reply-To: Ann Smith < ann@mail.example.net >\n", 1},
	/* comments with commas, '@' and nesting are left alone */
	{"From: root (Cron, Daemon at x@y.example (really))\n",
	 "From: root@mail.example.net (Cron, Daemon at x@y.example (really))\n",
	 1},
	{"To: (a, b@c) ann (d@e, f)\n",
	 "To: (a, b@c) ann@mail.example.net (d@e, f)\n", 1},
	/* quoted local parts, a quoted '@' and ',' */
	{"To: \"john smith\", \"a@b, c\" <ann>\n",
	 "To: \"john smith\"@mail.example.net, \"a@b, c\" "
	 "<ann@mail.example.net>\n", 2},
	{"To: \"x\\\"y\"\n", "To: \"x\\\"y\"@mail.example.net\n", 1},
	/* an encoded word is a display name, never a local part (RFC 2047
	 * 5); its address, when it has one, is completed */
	{"To: =?utf-8?q?J=C3=B6rg?=, =?utf-8?q?Smith,_J?= <js>\n",
	 "To: =?utf-8?q?J=C3=B6rg?=, =?utf-8?q?Smith,_J?= "
	 "<js@mail.example.net>\n", 1},
	/* groups */
	{"To: undisclosed-recipients:;\n", "To: undisclosed-recipients:;\n", 0},
	{"Cc: team: ann, bob@x.example, \"carl\";, dan\n",
	 "Cc: team: ann@mail.example.net, bob@x.example, "
	 "\"carl\"@mail.example.net;, dan@mail.example.net\n", 3},
	/* folded: every line keeps its fold */
	{"To: Ann <ann>,\n\tbob (Bob),\n  carl@x.example,\n dan\n",
	 "To: Ann <ann@mail.example.net>,\n\tbob@mail.example.net (Bob),\n"
	 "  carl@x.example,\n dan@mail.example.net\n", 3},
	{"Resent-To: root\n", "Resent-To: root@mail.example.net\n", 1},
	/* what is no local part alone is left as it is */
	{"To: John Smith\n", "To: John Smith\n", 0},
	{"To: ro\n ot\n", "To: ro\n ot\n", 0},
	{"From: <>\n", "From: <>\n", 0},
	{"To: <@relay.example:ann@x.example>\n",
	 "To: <@relay.example:ann@x.example>\n", 0},
	{"To: a[b]\n", "To: a[b]\n", 0},
	{"To: .ann\n", "To: .ann\n", 0},
	/* a field it cannot read stays whole, even its good addresses */
	{"To: root, \"open\n", "To: root, \"open\n", 0},
	{"To: root, Ann <ann\n", "To: root, Ann <ann\n", 0},
	{"To: root (open\n", "To: root (open\n", 0},
	{"No colon here\n", "No colon here\n", 0},
};

static void test_header_local_parts_completed(void **state)
{
	(void)state;
	char out[512];
	for (size_t i = 0; i < sizeof qualify_cases / sizeof *qualify_cases;
	     i++) {
		size_t k = qualified(qualify_cases[i].in, out, sizeof out);
		if (strcmp(out, qualify_cases[i].out) ||
		    k != qualify_cases[i].completed) {
			print_error("case %zu: '%s' gave '%s' (%zu)\n", i,
				    qualify_cases[i].in, out, k);
			fail();
		}
	}
}

/* RFC 5322 2.1.1: no line grows past 998 characters; a folded list
 * completes line by line. */
static void test_header_lines_stay_within_998(void **state)
{
	(void)state;
	struct buf in = {0}, out = {0};
	buf_adds(&in, "To: ");
	for (int i = 0; i < 60; i++)
		buf_adds(&in, "a, ");
	buf_adds(&in, "b\n");
	assert_int_equal(addr_field_qualify(in.s, in.len, "mail.example.net",
					    to_buf, &out),
			 0);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.s, in.s, in.len);
	in.len = out.len = 0;
	buf_adds(&in, "To: ");
	for (int i = 0; i < 60; i++)
		buf_adds(&in, "a,\n ");
	buf_adds(&in, "b\n");
	assert_int_equal(addr_field_qualify(in.s, in.len, "mail.example.net",
					    to_buf, &out),
			 61);
	assert_int_equal(out.len, in.len + 61 * strlen("@mail.example.net"));
	buf_free(&in);
	buf_free(&out);
}

static void test_address_fields(void **state)
{
	(void)state;
	static const char *const yes[] = {
		"From:", "sender:", "Reply-To:", "TO:", "Cc:", "Resent-From:",
		"Resent-Sender:", "resent-to:", "Resent-Cc:", "To :"};
	static const char *const no[] = {"Subject:", "Bcc:", "Received:",
					 "Message-ID:", "Resent-Bcc:",
					 "Tox:", "To"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
		assert_true(addr_field_has_addresses(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof no / sizeof *no; i++)
		assert_false(addr_field_has_addresses(no[i], strlen(no[i])));
}

/* The list as sendmail -t reads it: each address, where it ends. */
static void list_seen(void *arg, const struct addr_item *it)
{
	struct buf *b = arg;
	buf_printf(b, "[%.*s %zu %d]", (int)it->len, it->text, it->end,
		   it->whole);
}

static void test_address_list_scan(void **state)
{
	(void)state;
	struct buf b = {0};
	const char *l = " Ann <a@x>, b@y (Bob), team: \"c d\"@z;";
	assert_int_equal(addr_list_scan(l, strlen(l), list_seen, &b), 0);
	assert_string_equal(b.s, "[a@x 9 1][b@y 15 1][\"c d\"@z 36 1]");
	b.len = 0;
	l = "Ann Smith, x <y";
	assert_int_equal(addr_list_scan(l, strlen(l), list_seen, &b), -1);
	assert_string_equal(b.s, "[AnnSmith 9 0][y 15 1]");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_result_flags),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_dot_atom),
		cmocka_unit_test(test_c1_controls_refused),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_long_local_part),
		cmocka_unit_test(test_domain_length),
		cmocka_unit_test(test_domain_c1_control),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_is_postmaster),
		cmocka_unit_test(test_canonical_round_trip),
		cmocka_unit_test(test_header_local_parts_completed),
		cmocka_unit_test(test_header_lines_stay_within_998),
		cmocka_unit_test(test_address_fields),
		cmocka_unit_test(test_address_list_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
