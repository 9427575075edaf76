/*
 * test_addr.c - the RFC 5321 path parser (addr.c), table-driven: what a
 * client or a postmaster.cf may write, and what comes out of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "addr.h"

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
	/* plain paths */
	{"<joe@example.org>", B, ADDR_OK, "joe", "example.org"},
	{"joe@example.org", 0, ADDR_OK, "joe", "example.org"},
	{"joe@example.org", B, ADDR_ESYNTAX, 0, 0},
	{"<Joe.Doe@Example.ORG>", B, ADDR_OK, "Joe.Doe", "Example.ORG"},
	{"<a!b#c$d%e&f'g*h+i-j/k=l?m^n_o`p{q|r}s~t@x.example>", B, ADDR_OK,
	 "a!b#c$d%e&f'g*h+i-j/k=l?m^n_o`p{q|r}s~t", "x.example"},
	/* the null path */
	{"<>", B | N, ADDR_OK, "", ""},
	{"<>", B, ADDR_ENULL, 0, 0},
	/* %-hack and ! are plain local-part characters */
	{"<user%other.example@ours.example>", B, ADDR_OK, "user%other.example",
	 "ours.example"},
	{"<host!user@ours.example>", B, ADDR_OK, "host!user", "ours.example"},
	/* source routes are stripped */
	{"<@a.example,@b.example:user@c.example>", B, ADDR_OK, "user",
	 "c.example"},
	{"<@a.example:user@c.example>", B, ADDR_OK, "user", "c.example"},
	{"<@a.example,b.example:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@a.example user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	{"<@:user@c.example>", B, ADDR_ESYNTAX, 0, 0},
	/* quoted local parts: canonical form */
	{"<\"joe\"@example.org>", B, ADDR_OK, "joe", "example.org"},
	{"<\"john doe\"@example.org>", B, ADDR_OK, "\"john doe\"", "example.org"},
	{"<\"a\\\"b\"@example.org>", B, ADDR_OK, "\"a\\\"b\"", "example.org"},
	{"<\"a\\b\"@example.org>", B, ADDR_OK, "ab", "example.org"},
	{"<\"a@b\"@example.org>", B, ADDR_OK, "\"a@b\"", "example.org"},
	{"<\"\"@example.org>", B, ADDR_OK, "\"\"", "example.org"},
	{"<\"unterminated@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* dots */
	{"<.joe@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe.@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<jo..e@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* domains */
	{"<joe@-example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example-.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example..org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org.>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@exa_mple.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@>", B, ADDR_ENODOMAIN, 0, 0},
	{"<@example.org>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe>", B, ADDR_ENODOMAIN, 0, 0},
	{"<postmaster>", B | D, ADDR_OK, "postmaster", ""},
	{"<Postmaster>", B | D, ADDR_OK, "Postmaster", ""},
	/* address literals */
	{"<joe@[192.0.2.1]>", B, ADDR_OK, "joe", "[192.0.2.1]"},
	{"<joe@[IPv6:2001:db8::1]>", B, ADDR_OK, "joe", "[IPv6:2001:db8::1]"},
	{"<joe@[ipv6:::1]>", B, ADDR_OK, "joe", "[ipv6:::1]"},
	{"<joe@[300.1.1.1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[IPv6:zz::1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[2001:db8::1]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[tag:content]>", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@[192.0.2.1>", B, ADDR_ESYNTAX, 0, 0},
	/* UTF-8 (RFC 6531) */
	{"<zo\xc3\xab@example.org>", B | U, ADDR_OK, "zo\xc3\xab", "example.org"},
	{"<zo\xc3\xab@example.org>", B, ADDR_ENONASCII, 0, 0},
	{"<joe@b\xc3\xbc" "cher.example>", B | U, ADDR_OK, "joe",
	 "b\xc3\xbc" "cher.example"},
	{"<joe@b\xc3\xbc" "cher.example>", B, ADDR_ENONASCII, 0, 0},
	{"<zo\xc3@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	{"<zo\xc0\xab@example.org>", B | U, ADDR_ESYNTAX, 0, 0},
	/* control characters */
	{"<jo\te@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\re@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\ne@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<jo\x7f@example.org>", B, ADDR_ECONTROL, 0, 0},
	{"<\"jo\x01\"@example.org>", B, ADDR_ECONTROL, 0, 0},
	/* brackets */
	{"<joe@example.org", B, ADDR_ESYNTAX, 0, 0},
	{"<joe@example.org>>", B, ADDR_ESYNTAX, 0, 0},
	{"< joe@example.org>", B, ADDR_ESYNTAX, 0, 0},
	/* route patterns and rewrite targets (ADDR_PARTS) */
	{"user@", P | U, ADDR_OK, "user", ""},
	{"@example.org", P | U, ADDR_OK, "", "example.org"},
	{"@", P | U, ADDR_OK, "", ""},
	{"postmaster", P | U, ADDR_OK, "postmaster", ""},
	{"\"a b\"@", P | U, ADDR_OK, "\"a b\"", ""},
	{"us er@", P | U, ADDR_ESYNTAX, 0, 0},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct acase *c = &cases[i];
		struct addr a;
		const char *why = NULL;
		size_t where;
		enum addr_status st =
			addr_parse(c->in, strlen(c->in), c->flags, &a, &why, &where);
		if (st != c->st) {
			print_error("case %zu %s: status %d, expected %d (%s)\n",
				    i, c->in, st, c->st, why ? why : "");
			fail();
		}
		if (st != ADDR_OK) {
			assert_non_null(why);
			continue;
		}
		if (strcmp(a.local, c->local) || strcmp(a.domain, c->domain)) {
			print_error("case %zu %s: got <%s> <%s>\n", i, c->in,
				    a.local, a.domain);
			fail();
		}
	}
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
}

static void fill(char *p, char c, size_t n)
{
	memset(p, c, n);
}

/* RFC 5321 4.5.3.1.3: a path of 256 octets including < and >. */
static void test_path_length(void **state)
{
	(void)state;
	char buf[400];
	struct addr a;
	const char *why;
	size_t where;
	/* <LOCAL@example.org> with LOCAL filling up to exactly 256 octets */
	size_t local = 256 - 2 - strlen("@example.org");
	buf[0] = '<';
	fill(buf + 1, 'a', local);
	snprintf(buf + 1 + local, sizeof buf - 1 - local, "@example.org>");
	assert_int_equal(strlen(buf), 256);
	assert_int_equal(addr_parse(buf, 256, B, &a, &why, &where), ADDR_OK);
	buf[0] = '<';
	fill(buf + 1, 'a', local + 1);
	snprintf(buf + 2 + local, sizeof buf - 2 - local, "@example.org>");
	assert_int_equal(addr_parse(buf, 257, B, &a, &why, &where),
			 ADDR_ETOOLONG);
}

/* Local parts longer than 64 octets are accepted (SRS, VERP). */
static void test_long_local_part(void **state)
{
	(void)state;
	char buf[200];
	struct addr a;
	const char *why;
	size_t where;
	buf[0] = '<';
	fill(buf + 1, 'v', 100);
	snprintf(buf + 101, sizeof buf - 101, "@example.org>");
	assert_int_equal(addr_parse(buf, strlen(buf), B, &a, &why, &where),
			 ADDR_OK);
	assert_int_equal(strlen(a.local), 100);
}

/* RFC 5321 4.5.3.1.2: a domain of 255 octets; labels of 63. */
static void test_domain_length(void **state)
{
	(void)state;
	char d[300];
	size_t n = 0;
	while (n + 64 <= 255) { /* 63-octet labels and dots */
		fill(d + n, 'd', 63);
		n += 63;
		d[n++] = '.';
	}
	while (n < 255)
		d[n++] = 'e';
	assert_true(addr_domain_valid(d, 255, 0));
	d[255] = 'e';
	assert_false(addr_domain_valid(d, 256, 0));
	char label[80];
	fill(label, 'l', 64);
	memcpy(label + 64, ".example", 8);
	assert_false(addr_domain_valid(label, 72, 0));
	assert_true(addr_domain_valid(label + 1, 71, 0));
}

static void test_format_and_postmaster(void **state)
{
	(void)state;
	struct addr a;
	const char *why;
	size_t where;
	char out[300];
	assert_int_equal(addr_parse("<\"a b\"@x.example>", 17, B, &a, &why,
				    &where),
			 ADDR_OK);
	addr_format(&a, out, sizeof out);
	assert_string_equal(out, "\"a b\"@x.example");
	assert_int_equal(addr_parse("<>", 2, B | N, &a, &why, &where), ADDR_OK);
	addr_format(&a, out, sizeof out);
	assert_string_equal(out, "");
	assert_true(a.null);
	assert_int_equal(addr_parse("<PostMaster>", 12, B | D, &a, &why,
				    &where),
			 ADDR_OK);
	assert_true(addr_is_postmaster(&a));
	addr_format(&a, out, sizeof out);
	assert_string_equal(out, "PostMaster");
	assert_int_equal(addr_parse("<postmaster2@x.example>", 23, B, &a, &why,
				    &where),
			 ADDR_OK);
	assert_false(addr_is_postmaster(&a));
}

/* Whatever comes out parses again to the same thing. */
static void test_canonical_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct acase *c = &cases[i];
		struct addr a, b;
		const char *why;
		size_t where;
		if (c->st != ADDR_OK || (c->flags & P) ||
		    addr_parse(c->in, strlen(c->in), c->flags, &a, &why,
			       &where) != ADDR_OK ||
		    a.null)
			continue;
		char out[300];
		addr_format(&a, out, sizeof out);
		assert_int_equal(addr_parse(out, strlen(out),
					    (c->flags & ~B) | D, &b, &why,
					    &where),
				 ADDR_OK);
		assert_string_equal(a.local, b.local);
		assert_string_equal(a.domain, b.domain);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_path_length),
		cmocka_unit_test(test_long_local_part),
		cmocka_unit_test(test_domain_length),
		cmocka_unit_test(test_format_and_postmaster),
		cmocka_unit_test(test_canonical_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
