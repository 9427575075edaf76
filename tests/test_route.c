/*
 * test_route.c - routing (route.c) through realistic tables: each case is
 * an address, the listener it arrives on, the reply a session gives at
 * RCPT time and the final targets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf.h"
#include "route.h"

/* A small ISP-like configuration: an MX listener with its own table, a
 * submission listener, aliases, pipes, a relay, Maildirs, and the global
 * table. The host name is fixed so results do not depend on the machine. */
static const char site_cf[] =
	"[core]\n"
	"hostname = mail.example.net\n"
	"recipient-delimiter = +\n"
	"local-mailer = procmail\n"
	"[pipe \"procmail\"]\n"
	"exec = /usr/bin/procmail -d ${RCPT_TO}\n"
	"max_rcpt_to = 16\n"
	"[pipe \"archive\"]\n"
	"exec = /usr/local/bin/archive ${RCPT_TO}\n"
	"[relay \"smarthost\"]\n"
	"address = [192.0.2.25]:2525\n"
	"[smtpd \"mx.example.net\"]\n"
	"listen-port = 25\n"
	"routing-table = mx\n"
	"[smtpd \"submission\"]\n"
	"name = mail.example.net\n"
	"listen-port = 127.0.0.1:587\n"
	"routing-table = outbound\n"
	"local-rcpt-to = yes\n"
	"[smtpd \"lmtp\"]\n"
	"listen-port = 127.0.0.1:24\n"
	"[route \"mx\"]\n"
	"joe@example.org            /var/mail/joe/Maildir/\n"
	"jane@example.org           jane-alias\n"
	"Sales@Example.ORG          joe@example.org, jane@example.org\n"
	"list@example.org           joe@example.org, archive, \"|/usr/bin/logger -t list\"\n"
	"spam@example.org           discard\n"
	"gone@example.org           reject\n"
	"half@example.org           reject, joe@example.org\n"
	"bob@example.org            bob@example.com\n"
	"old@example.org            new@\n"
	"@example.com               @example.org\n"
	"@forward.example           [192.0.2.7]:2525\n"
	"@relay.example             smarthost\n"
	"@mxd.example               mx\n"
	"@hosted.example            mx.hosted.example\n"
	"@lit.example               /var/mail/lit/\n"
	"loop1@example.org          loop2@example.org\n"
	"loop2@example.org          loop1@example.org\n"
	"self@example.org           self@\n"
	"\"\\\"john doe\\\"@example.org\" /var/mail/john/\n"
	"user%other.example@example.org  /var/mail/percent/\n"
	"@[192.0.2.1]               /var/mail/literal/\n"
	"@[IPv6:2001:db8::1]        /var/mail/literal6/\n"
	"jane+list@example.org      /var/mail/jane-list/\n"
	"tagged@example.org         /var/mail/tagged/\n"
	"noone@example.org          nosuchuser-xyz\n"
	"bin@example.org            bin\n"
	"dup@example.org            joe@example.org, joe@example.org, JOE@example.org\n"
	"[route \"outbound\"]\n"
	"@                          mx\n"
	"[route]\n"
	"jane-alias                 /var/mail/jane/Maildir/\n"
	"postmaster                 root\n"
	"abuse                      postmaster\n"
	"procmail                   /var/mail/not-the-pipe/\n"
	"tagged+x@example.org       /var/mail/tagged-x/\n"
	"daemon                     daemon\n";

static struct cf *site;

static struct cf *load(const char *text)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "test.cf", text, strlen(text));
	cf_finish(cf, 0);
	if (cf->nerrors) {
		print_error("%s", cf->diag.s);
		fail();
	}
	return cf;
}

static int setup(void **state)
{
	(void)state;
	site = load(site_cf);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cf_free(site);
	return 0;
}

struct rcase {
	const char *smtpd; /* NULL: the global table only */
	const char *rcpt;
	int code;
	const char *dsn;
	const char *targets; /* "kind arg <addr>; ..." in order, or NULL */
	const char *text;    /* expected reply text, or NULL */
};

static void describe(const struct route_result *r, char *out, size_t n)
{
	size_t o = 0;
	out[0] = 0;
	for (uint32_t i = 0; i < r->nt && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%s %s <%s>",
				      i ? "; " : "",
				      route_target_kind_name(r->t[i].kind),
				      r->t[i].arg, r->t[i].addr);
}

static void check(const struct cf *cf, const struct rcase *c, size_t i)
{
	const struct cf_section *smtpd =
		c->smtpd ? cf_find(cf, CF_SMTPD, c->smtpd) : NULL;
	struct route_result r;
	route_resolve(cf, smtpd, c->rcpt, strlen(c->rcpt),
		      ROUTE_SMTP | ROUTE_UTF8, &r);
	char got[2048];
	describe(&r, got, sizeof got);
	int bad = r.code != c->code || strcmp(r.dsn, c->dsn) ||
		  (c->targets && strcmp(got, c->targets)) ||
		  (c->text && strcmp(r.text, c->text));
	if (bad) {
		print_error("case %zu %s: %d %s %s\n  targets: %s\n  steps:\n%s",
			    i, c->rcpt, r.code, r.dsn, r.text, got,
			    r.steps.s ? r.steps.s : "");
		route_result_free(&r);
		fail();
	}
	route_result_free(&r);
}

#define MX "mx.example.net"
#define SUB "submission"

static const struct rcase site_cases[] = {
	/* exact matches, case-insensitive, spelling kept */
	{MX, "<joe@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe@example.org>", "<joe@example.org> OK"},
	{MX, "<JOE@EXAMPLE.ORG>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <JOE@EXAMPLE.ORG>", NULL},
	{MX, "joe@example.org", 250, "2.1.5", NULL, NULL},
	/* an alias in the global table */
	{MX, "<jane@example.org>", 250, "2.1.5",
	 "maildir /var/mail/jane/Maildir/ <jane-alias>", NULL},
	/* a list of rewrites; the pattern's own spelling does not matter */
	{MX, "<sales@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe@example.org>; "
	 "maildir /var/mail/jane/Maildir/ <jane-alias>", NULL},
	/* mixed targets: rewrite, pipe by name, |command */
	{MX, "<list@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe@example.org>; "
	 "pipe archive <list@example.org>; "
	 "command /usr/bin/logger -t list <list@example.org>", NULL},
	{MX, "<spam@example.org>", 250, "2.1.5", "discard discard <spam@example.org>",
	 NULL},
	{MX, "<gone@example.org>", 550, "5.1.1", "",
	 "<gone@example.org>: recipient rejected"},
	/* one target refused, another valid: accepted */
	{MX, "<half@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe@example.org>", NULL},
	/* rewrite to another domain, whose rewrite leads back: a loop */
	{MX, "<bob@example.org>", 550, "5.4.6", "",
	 "<bob@example.org>: routing loop"},
	/* empty parts keep the original */
	{MX, "<old@example.org>", 550, "5.1.1", "", "<old@example.org>: user unknown"},
	{MX, "<Joe@Example.COM>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <Joe@example.org>", NULL},
	{MX, "<anyone@example.com>", 550, "5.1.1", "",
	 "<anyone@example.com>: user unknown"},
	/* hosts, relays, mx */
	{MX, "<x@forward.example>", 250, "2.1.5",
	 "host [192.0.2.7]:2525 <x@forward.example>", NULL},
	{MX, "<x@relay.example>", 250, "2.1.5",
	 "relay smarthost <x@relay.example>", NULL},
	{MX, "<x@mxd.example>", 250, "2.1.5", "mx mx <x@mxd.example>", NULL},
	{MX, "<x@hosted.example>", 250, "2.1.5",
	 "host mx.hosted.example <x@hosted.example>", NULL},
	/* loops */
	{MX, "<loop1@example.org>", 550, "5.4.6", "",
	 "<loop1@example.org>: routing loop"},
	{MX, "<self@example.org>", 550, "5.4.6", "", NULL},
	/* quoted local parts, the %-hack, literals */
	{MX, "<\"john doe\"@example.org>", 250, "2.1.5",
	 "maildir /var/mail/john/ <\"john doe\"@example.org>", NULL},
	{MX, "<\"john\\ doe\"@example.org>", 250, "2.1.5", NULL, NULL},
	{MX, "<user%other.example@example.org>", 250, "2.1.5",
	 "maildir /var/mail/percent/ <user%other.example@example.org>", NULL},
	{MX, "<user%remote.example@elsewhere.example>", 550, "5.7.1", "",
	 "<user%remote.example@elsewhere.example>: relaying denied"},
	{MX, "<remote.example!user@elsewhere.example>", 550, "5.7.1", "", NULL},
	{MX, "<@example.org:victim@remote.example>", 550, "5.7.1", "",
	 "<victim@remote.example>: relaying denied"},
	{MX, "<x@[192.0.2.1]>", 250, "2.1.5",
	 "maildir /var/mail/literal/ <x@[192.0.2.1]>", NULL},
	{MX, "<x@[IPv6:2001:DB8::1]>", 250, "2.1.5", NULL, NULL},
	/* the recipient delimiter: the lowest line wins across fallbacks */
	{MX, "<joe+news@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe+news@example.org>", NULL},
	{MX, "<jane+list@example.org>", 250, "2.1.5",
	 "maildir /var/mail/jane/Maildir/ <jane-alias>", NULL},
	{MX, "<tagged+x@example.org>", 250, "2.1.5",
	 "maildir /var/mail/tagged/ <tagged+x@example.org>", NULL},
	/* unknown users at local domains, relaying denied elsewhere */
	{MX, "<nobody-here@example.org>", 550, "5.1.1", "",
	 "<nobody-here@example.org>: user unknown"},
	{MX, "<x@lit.example>", 250, "2.1.5", NULL, NULL},
	{MX, "<x@unknown.example>", 550, "5.7.1", "",
	 "<x@unknown.example>: relaying denied"},
	{MX, "<noone@example.org>", 550, "5.1.1", "",
	 "<noone@example.org>: user unknown"},
	/* a system user through the local mailer */
	{MX, "<bin@example.org>", 250, "2.1.5", "local user bin <bin>", NULL},
	/* duplicates collapse, whatever their case */
	{MX, "<dup@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe@example.org>", NULL},
	/* postmaster: always routable */
	{MX, "<postmaster>", 250, "2.1.5", "local user root <root>", NULL},
	{MX, "<Postmaster@mx.example.net>", 250, "2.1.5", "local user root <root>",
	 NULL},
	{MX, "<postmaster@example.org>", 250, "2.1.5", "local user root <root>",
	 NULL},
	{MX, "<postmaster@remote.example>", 550, "5.7.1", "", NULL},
	{MX, "<abuse@mail.example.net>", 250, "2.1.5", "local user root <root>",
	 NULL},
	/* the host name and localhost reach aliases and system users ... */
	{MX, "<daemon@mail.example.net>", 250, "2.1.5", "local user daemon <daemon>",
	 NULL},
	{MX, "<root@localhost>", 250, "2.1.5", "local user root <root>", NULL},
	{MX, "<root@[127.0.0.1]>", 250, "2.1.5", "local user root <root>", NULL},
	{MX, "<nosuchuser-xyz@localhost>", 550, "5.1.1", "", NULL},
	/* ... but never a [pipe] or [relay] that a client names */
	{MX, "<procmail@localhost>", 250, "2.1.5",
	 "maildir /var/mail/not-the-pipe/ <procmail>", NULL},
	{MX, "<archive@localhost>", 550, "5.1.1", "", NULL},
	{MX, "<smarthost@mail.example.net>", 550, "5.1.1", "", NULL},
	/* bare local names */
	{MX, "<root>", 504, "5.5.2", "", "<root>: need a fully-qualified address"},
	{SUB, "<root>", 250, "2.1.5", "local user root <root>", NULL},
	{SUB, "<abuse>", 250, "2.1.5", "local user root <root>", NULL},
	{SUB, "<archive>", 550, "5.1.1", "", NULL},
	/* the submission listener relays everything to mx */
	{SUB, "<anyone@anywhere.example>", 250, "2.1.5",
	 "mx mx <anyone@anywhere.example>", NULL},
	{SUB, "<joe@example.org>", 250, "2.1.5", "mx mx <joe@example.org>", NULL},
	/* a listener without its own tables: the global table only, whose
	 * tagged+x@example.org line makes example.org local there too */
	{"lmtp", "<joe@example.org>", 550, "5.1.1", "", NULL},
	{"lmtp", "<joe@example.com>", 550, "5.7.1", "", NULL},
	{"lmtp", "<abuse@mail.example.net>", 250, "2.1.5", "local user root <root>",
	 NULL},
	{NULL, "<postmaster@localhost>", 250, "2.1.5", "local user root <root>",
	 NULL},
	/* syntax and UTF-8 */
	{MX, "<joe@@example.org>", 501, "5.1.3", "", NULL},
	{MX, "<>", 501, "5.1.3", "", "<>: the null address is not a recipient"},
	{MX, "<zo\xc3\xab@example.org>", 550, "5.1.1", "", NULL},
	{MX, "<x@b\xc3\xbc" "cher.example>", 550, "5.7.1", "", NULL},
};

static void test_site(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof site_cases / sizeof *site_cases; i++)
		check(site, &site_cases[i], i);
}

/* Without ROUTE_UTF8 a non-ASCII address is 553 5.6.7. */
static void test_nonascii_without_smtputf8(void **state)
{
	(void)state;
	struct route_result r;
	const char *a = "<zo\xc3\xab@example.org>";
	route_resolve(site, cf_find(site, CF_SMTPD, MX), a, strlen(a), ROUTE_SMTP,
		      &r);
	assert_int_equal(r.code, 553);
	assert_string_equal(r.dsn, "5.6.7");
	route_result_free(&r);
}

/* First match wins in table order across kinds; listener tables first. */
static void test_first_match(void **state)
{
	(void)state;
	static const char text[] = "[core]\n"
				   "hostname = h.example\n"
				   "[smtpd \"a\"]\n"
				   "listen-port = 25\n"
				   "routing-table = one\n"
				   "routing-table = two\n"
				   "[route \"one\"]\n"
				   "@d.example /m/one-domain/\n"
				   "joe@d.example /m/one-exact/\n"
				   "[route \"two\"]\n"
				   "joe@d.example /m/two/\n"
				   "ann@ /m/two-local/\n"
				   "[route]\n"
				   "ann@e.example /m/global/\n"
				   "@ /m/all/\n";
	struct cf *cf = load(text);
	static const struct rcase cases[] = {
		{"a", "<joe@d.example>", 250, "2.1.5",
		 "maildir /m/one-domain/ <joe@d.example>", NULL},
		{"a", "<ann@e.example>", 250, "2.1.5",
		 "maildir /m/two-local/ <ann@e.example>", NULL},
		{"a", "<zed@f.example>", 250, "2.1.5",
		 "maildir /m/all/ <zed@f.example>", NULL},
		{NULL, "<ann@e.example>", 250, "2.1.5",
		 "maildir /m/global/ <ann@e.example>", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check(cf, &cases[i], i);
	cf_free(cf);
}

/* 20 rewrites deep is fine; 21 is a loop (SPEC 6). */
static void test_depth_limit(void **state)
{
	(void)state;
	struct buf t = {0};
	buf_adds(&t, "[core]\nhostname = h.example\n[route]\n");
	for (int i = 0; i < 21; i++)
		buf_printf(&t, "a%d@d.example a%d@d.example\n", i, i + 1);
	buf_adds(&t, "a21@d.example /m/end/\n");
	struct cf *cf = load(t.s);
	/* a1 .. a21: 20 rewrites */
	struct rcase ok = {NULL, "<a1@d.example>", 250, "2.1.5",
			   "maildir /m/end/ <a21@d.example>", NULL};
	check(cf, &ok, 0);
	struct rcase deep = {NULL, "<a0@d.example>", 550, "5.4.6", "",
			     "<a0@d.example>: routing loop"};
	check(cf, &deep, 1);
	cf_free(cf);
	buf_free(&t);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A compiled route file answers exactly like its text. */
static void test_compiled_index(void **state)
{
	(void)state;
	char dir[] = "/tmp/pm-test-route.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char rt[300], cfp[300], idx[320];
	snprintf(rt, sizeof rt, "%s/big.rt", dir);
	snprintf(cfp, sizeof cfp, "%s/t.cf", dir);
	snprintf(idx, sizeof idx, "%s/big.rt.pmdb", dir);
	struct buf t = {0};
	buf_adds(&t, "# generated\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&t, "user%d@d%d.example /m/u%d/\n", i, i % 7, i);
	buf_adds(&t, "@d3.example /m/d3/\n"
		     "user5000@d3.example /m/shadowed/\n"
		     "special@ /m/special/\n"
		     "alias /m/alias/\n");
	write_file(rt, t.s);
	write_file(cfp, "[core]\nhostname = h.example\nrecipient-delimiter = +\n"
			"[route]\nfirst@d1.example /m/first/\nfile \"big.rt\"\n"
			"@d1.example /m/after/\nlast@ alias\n");
	static const struct rcase cases[] = {
		{NULL, "<user1999@d4.example>", 250, "2.1.5",
		 "maildir /m/u1999/ <user1999@d4.example>", NULL},
		{NULL, "<USER1@D1.example>", 250, "2.1.5",
		 "maildir /m/u1/ <USER1@D1.example>", NULL},
		{NULL, "<user1+tag@d1.example>", 250, "2.1.5",
		 "maildir /m/u1/ <user1+tag@d1.example>", NULL},
		{NULL, "<first@d1.example>", 250, "2.1.5",
		 "maildir /m/first/ <first@d1.example>", NULL},
		{NULL, "<user5000@d3.example>", 250, "2.1.5",
		 "maildir /m/d3/ <user5000@d3.example>", NULL},
		{NULL, "<special@d1.example>", 250, "2.1.5",
		 "maildir /m/special/ <special@d1.example>", NULL},
		{NULL, "<other@d1.example>", 250, "2.1.5",
		 "maildir /m/after/ <other@d1.example>", NULL},
		{NULL, "<last@d9.example>", 250, "2.1.5",
		 "maildir /m/alias/ <alias>", NULL},
		{NULL, "<x@d9.example>", 550, "5.7.1", "", NULL},
		{NULL, "<x@d6.example>", 550, "5.1.1", "", NULL},
	};
	/* the text, as --check reads it (and then writes the index) */
	struct cf *cf = cf_new();
	assert_true(cf_load(cf, cfp, 1) == 0);
	cf_finish(cf, CF_CHECK);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	assert_non_null(strstr(cf->diag.s, "is never used"));
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check(cf, &cases[i], i);
	cf_free(cf);
	struct stat st;
	assert_int_equal(stat(idx, &st), 0);
	/* the index, as a session opens it */
	cf = cf_new();
	assert_true(cf_load(cf, cfp, 1) == 0);
	cf_finish(cf, 0);
	assert_int_equal(cf->nerrors, 0);
	const struct route_table *g = cf->global_route->table;
	int indexed = 0;
	for (uint32_t i = 0; i < g->n; i++)
		indexed += g->e[i].type == RE_INDEX;
	assert_int_equal(indexed, 1);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check(cf, &cases[i], i);
	cf_free(cf);
	/* a route file changed after --check: the index is stale */
	sleep(1);
	buf_adds(&t, "user1999@d4.example /m/changed/\n");
	write_file(rt, t.s);
	cf = cf_new();
	assert_true(cf_load(cf, cfp, 1) == 0);
	cf_finish(cf, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_non_null(cf->diag.s);
	assert_non_null(strstr(cf->diag.s, "older than the file"));
	check(cf, &cases[0], 0); /* the text is read: the first line wins */
	cf_free(cf);
	unlink(idx);
	unlink(rt);
	unlink(cfp);
	rmdir(dir);
	buf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_site),
		cmocka_unit_test(test_nonascii_without_smtputf8),
		cmocka_unit_test(test_first_match),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_compiled_index),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
