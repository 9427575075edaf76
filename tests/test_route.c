/*
 * test_route.c - routing (route.c) through realistic tables: each case is
 * an address, the listener it arrives on, the reply a session gives at
 * RCPT time and the final targets (kind, argument, the address the target
 * receives), in order.
 *
 * Every configuration sets core.hostname, so nothing depends on the
 * machine; of the system users only root, daemon, bin and nobody are
 * assumed to exist, and nosuchuser-xyz not to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf.h"
#include "check.h"
#include "route.h"
#include "route_load.h"

/* What postmaster does with a configuration: finish it, build its route
 * tables and, for --check, run the checks. */
static int finish_config(struct cf *cf, unsigned mode)
{
	cf_finish(cf, mode);
	route_load_tables(cf);
	if (mode & CF_CHECK)
		check_config(cf);
	return cf->nerrors;
}

static struct cf *load(const char *text)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "test.cf", text, strlen(text));
	finish_config(cf, 0);
	if (cf->nerrors) {
		print_error("%s", cf->diag.s);
		fail();
	}
	return cf;
}

struct rcase {
	const char *smtpd;   /* NULL: the global table only */
	const char *rcpt;
	int code;
	const char *dsn;
	const char *targets; /* "kind arg <addr>; ..." in order; "" for none */
	const char *text;    /* reply text; NULL on 250: "<rcpt> OK" */
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

static int check_one(const struct cf *cf, const struct rcase *c, size_t i,
		     unsigned flags)
{
	const struct cf_section *smtpd = NULL;
	if (c->smtpd) {
		smtpd = cf_find(cf, CF_SMTPD, c->smtpd);
		assert_non_null(smtpd);
	}
	char text[600];
	if (c->text) {
		snprintf(text, sizeof text, "%s", c->text);
	} else {
		/* a case without its reply text must be an acceptance */
		assert_int_equal(c->code, 250);
		const char *s = c->rcpt;
		size_t n = strlen(s);
		if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
			snprintf(text, sizeof text, "<%.*s> OK", (int)(n - 2),
				 s + 1);
		else
			snprintf(text, sizeof text, "<%s> OK", s);
	}
	assert_non_null(c->targets);
	struct route_result r;
	route_resolve(cf, smtpd, c->rcpt, strlen(c->rcpt), flags | ROUTE_TRACE,
		      &r);
	char got[8192];
	describe(&r, got, sizeof got);
	int bad = r.code != c->code || strcmp(r.dsn, c->dsn) ||
		  strcmp(got, c->targets) || strcmp(r.text, text) ||
		  (r.code == 250) != (r.nt > 0);
	if (bad)
		print_error("case %zu %s%s%s%s: got %d %s %s\n"
			    "  expected %d %s %s\n"
			    "  targets:  %s\n  expected: %s\n  steps:\n%s",
			    i, c->rcpt, c->smtpd ? " (smtpd " : "",
			    c->smtpd ? c->smtpd : "", c->smtpd ? ")" : "",
			    r.code, r.dsn, r.text, c->code, c->dsn, text, got,
			    c->targets, r.steps.s ? r.steps.s : "");
	route_result_free(&r);
	return bad;
}

/* Runs every case and reports every mismatch; returns their number, so
 * that a test frees what it built before it fails. */
static int check_all(const struct cf *cf, const struct rcase *c, size_t n)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += check_one(cf, &c[i], i, ROUTE_SMTP | ROUTE_UTF8);
	return bad;
}

#define CHECK_ALL(cf, cases) check_all(cf, cases, sizeof cases / sizeof *cases)

/* ------------------------------------------------------------------ */
/* A small ISP: an MX listener with its own table, a submission listener,
 * aliases, pipes, a relay, Maildirs, and the global table. */

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
	"three@example.org          /var/mail/1/,/var/mail/2/ , /var/mail/3/\n"
	"spam@example.org           discard\n"
	"gone@example.org           reject\n"
	"half@example.org           reject, joe@example.org\n"
	"bob@example.org            bob@example.com\n"
	"old@example.org            new@\n"
	"old2@example.org           new2@\n"
	"new2@example.org           /var/mail/new2/\n"
	"@example.com               @example.org\n"
	"@forward.example           [192.0.2.7]:2525\n"
	"@relay.example             smarthost\n"
	"@mxd.example               mx\n"
	"@hosted.example            mx.hosted.example\n"
	"@lit.example               /var/mail/lit/\n"
	"@catch.example             /var/mail/catch/\n"
	"loop1@example.org          loop2@example.org\n"
	"loop2@example.org          loop1@example.org\n"
	"self@example.org           self@\n"
	"loopok@example.org         loop1@example.org, /var/mail/ok/\n"
	"rejloop@example.org        reject, loop1@example.org\n"
	"aloop@example.org          alias-a\n"
	"chain@example.org          chain-a\n"
	"ghost@example.org          ghost-xyz\n"
	"\"\\\"john doe\\\"@example.org\" /var/mail/john/\n"
	"user%other.example@example.org  /var/mail/percent/\n"
	"@[192.0.2.1]               /var/mail/literal/\n"
	"@[IPv6:2001:db8::1]        /var/mail/literal6/\n"
	"jane+list@example.org      /var/mail/jane-list/\n"
	"tagged@example.org         /var/mail/tagged/\n"
	"noone@example.org          nosuchuser-xyz\n"
	"bin@example.org            bin\n"
	"dup@example.org            joe@example.org, joe@example.org, JOE@example.org\n"
	"dup2@example.org           sales@example.org, joe@example.org, jane-alias\n"
	"dupuser@example.org        root@localhost, postmaster@localhost, abuse@mail.example.net\n"
	"fwd@example.org            joe@example.org, someone@elsewhere.example\n"
	"zo\xc3\xab@example.org     /var/mail/zoe/\n"
	"@b\xc3\xbc" "cher.example  /var/mail/buecher/\n"
	"[route \"outbound\"]\n"
	"@                          mx\n"
	"[route]\n"
	"jane-alias                 /var/mail/jane/Maildir/\n"
	"postmaster                 root\n"
	"abuse                      postmaster\n"
	"procmail                   /var/mail/not-the-pipe/\n"
	"tagged+x@example.org       /var/mail/tagged-x/\n"
	"daemon                     daemon\n"
	"alias-a                    alias-b\n"
	"alias-b                    alias-a\n"
	"chain-a                    chain-b\n"
	"chain-b                    /var/mail/chain/\n"
	"ghost-xyz                  ghost-xyz\n";

static struct cf *site;

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

#define MX "mx.example.net"
#define SUB "submission"
#define JOE "maildir /var/mail/joe/Maildir/ <joe@example.org>"
#define JANE "maildir /var/mail/jane/Maildir/ <jane-alias>"
#define ROOT "local user root <root>"

static const struct rcase site_cases[] = {
	/* exact matches, case-insensitive, spelling kept */
	{MX, "<joe@example.org>", 250, "2.1.5", JOE, NULL},
	{MX, "<JOE@EXAMPLE.ORG>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <JOE@EXAMPLE.ORG>", NULL},
	{MX, "joe@example.org", 250, "2.1.5", JOE, NULL},
	/* an alias in the global table */
	{MX, "<jane@example.org>", 250, "2.1.5", JANE, NULL},
	/* a list of rewrites; the pattern's own spelling does not matter */
	{MX, "<sales@example.org>", 250, "2.1.5", JOE "; " JANE, NULL},
	/* mixed targets: rewrite, pipe by name, |command */
	{MX, "<list@example.org>", 250, "2.1.5",
	 JOE "; pipe archive <list@example.org>; "
	     "command /usr/bin/logger -t list <list@example.org>",
	 NULL},
	/* commas inside a word and as words of their own */
	{MX, "<three@example.org>", 250, "2.1.5",
	 "maildir /var/mail/1/ <three@example.org>; "
	 "maildir /var/mail/2/ <three@example.org>; "
	 "maildir /var/mail/3/ <three@example.org>",
	 NULL},
	{MX, "<spam@example.org>", 250, "2.1.5",
	 "discard discard <spam@example.org>", NULL},
	{MX, "<gone@example.org>", 550, "5.1.1", "",
	 "<gone@example.org>: recipient rejected"},
	/* one target refused, another valid: accepted */
	{MX, "<half@example.org>", 250, "2.1.5", JOE, NULL},
	/* rewrite to another domain, whose rewrite leads back: a loop */
	{MX, "<bob@example.org>", 550, "5.4.6", "",
	 "<bob@example.org>: routing loop"},
	/* empty parts keep the original part */
	{MX, "<old@example.org>", 550, "5.1.1", "",
	 "<old@example.org>: user unknown"},
	{MX, "<old2@example.org>", 250, "2.1.5",
	 "maildir /var/mail/new2/ <new2@example.org>", NULL},
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
	/* loops: rewrites, aliases, an address that rewrites to itself */
	{MX, "<loop1@example.org>", 550, "5.4.6", "",
	 "<loop1@example.org>: routing loop"},
	{MX, "<self@example.org>", 550, "5.4.6", "",
	 "<self@example.org>: routing loop"},
	{MX, "<aloop@example.org>", 550, "5.4.6", "",
	 "<aloop@example.org>: routing loop"},
	/* a branch that loops does not spoil a valid one ... */
	{MX, "<loopok@example.org>", 250, "2.1.5",
	 "maildir /var/mail/ok/ <loopok@example.org>", NULL},
	/* ... and with none valid, the first failure is the reply */
	{MX, "<rejloop@example.org>", 550, "5.1.1", "",
	 "<rejloop@example.org>: recipient rejected"},
	/* an alias chain */
	{MX, "<chain@example.org>", 250, "2.1.5",
	 "maildir /var/mail/chain/ <chain-b>", NULL},
	/* "name name" is the system user of that name, not a loop */
	{MX, "<ghost@example.org>", 550, "5.1.1", "",
	 "<ghost@example.org>: user unknown"},
	/* quoted local parts, the %-hack, literals */
	{MX, "<\"john doe\"@example.org>", 250, "2.1.5",
	 "maildir /var/mail/john/ <\"john doe\"@example.org>", NULL},
	{MX, "<\"john\\ doe\"@example.org>", 250, "2.1.5",
	 "maildir /var/mail/john/ <\"john doe\"@example.org>",
	 "<\"john doe\"@example.org> OK"},
	{MX, "<\"joe\"@example.org>", 250, "2.1.5", JOE,
	 "<joe@example.org> OK"},
	{MX, "<\"john  doe\"@example.org>", 550, "5.1.1", "",
	 "<\"john  doe\"@example.org>: user unknown"},
	{MX, "<user%other.example@example.org>", 250, "2.1.5",
	 "maildir /var/mail/percent/ <user%other.example@example.org>", NULL},
	{MX, "<user%remote.example@example.org>", 550, "5.1.1", "",
	 "<user%remote.example@example.org>: user unknown"},
	{MX, "<user%remote.example@catch.example>", 250, "2.1.5",
	 "maildir /var/mail/catch/ <user%remote.example@catch.example>", NULL},
	{MX, "<remote.example!user@catch.example>", 250, "2.1.5",
	 "maildir /var/mail/catch/ <remote.example!user@catch.example>", NULL},
	{MX, "<user%remote.example@elsewhere.example>", 550, "5.7.1", "",
	 "<user%remote.example@elsewhere.example>: relaying denied"},
	{MX, "<remote.example!user@elsewhere.example>", 550, "5.7.1", "",
	 "<remote.example!user@elsewhere.example>: relaying denied"},
	{MX, "<@example.org:victim@remote.example>", 550, "5.7.1", "",
	 "<victim@remote.example>: relaying denied"},
	{MX, "<@mail.example.net,@example.org:root@remote.example>", 550, "5.7.1",
	 "", "<root@remote.example>: relaying denied"},
	{MX, "<@remote.example:joe@example.org>", 250, "2.1.5", JOE,
	 "<joe@example.org> OK"},
	{MX, "<root%remote.example@localhost>", 550, "5.1.1", "",
	 "<root%remote.example@localhost>: user unknown"},
	{MX, "<x@[192.0.2.1]>", 250, "2.1.5",
	 "maildir /var/mail/literal/ <x@[192.0.2.1]>", NULL},
	{MX, "<x@[IPv6:2001:db8::1]>", 250, "2.1.5",
	 "maildir /var/mail/literal6/ <x@[IPv6:2001:db8::1]>", NULL},
	{MX, "<x@[ipv6:2001:DB8::1]>", 250, "2.1.5",
	 "maildir /var/mail/literal6/ <x@[ipv6:2001:DB8::1]>", NULL},
	{MX, "<x@[IPv6:2001:db8::2]>", 550, "5.7.1", "",
	 "<x@[IPv6:2001:db8::2]>: relaying denied"},
	{MX, "<x@[192.0.2.99]>", 550, "5.7.1", "",
	 "<x@[192.0.2.99]>: relaying denied"},
	/* the recipient delimiter: the lowest line wins across fallbacks */
	{MX, "<joe+news@example.org>", 250, "2.1.5",
	 "maildir /var/mail/joe/Maildir/ <joe+news@example.org>", NULL},
	{MX, "<jane+list@example.org>", 250, "2.1.5", JANE, NULL},
	{MX, "<tagged+x@example.org>", 250, "2.1.5",
	 "maildir /var/mail/tagged/ <tagged+x@example.org>", NULL},
	{MX, "<root+tag@mail.example.net>", 250, "2.1.5", ROOT, NULL},
	{MX, "<abuse+spam@localhost>", 250, "2.1.5", ROOT, NULL},
	/* unknown users at local domains, relaying denied elsewhere */
	{MX, "<nobody-here@example.org>", 550, "5.1.1", "",
	 "<nobody-here@example.org>: user unknown"},
	{MX, "<x@lit.example>", 250, "2.1.5",
	 "maildir /var/mail/lit/ <x@lit.example>", NULL},
	{MX, "<x@unknown.example>", 550, "5.7.1", "",
	 "<x@unknown.example>: relaying denied"},
	{MX, "<noone@example.org>", 550, "5.1.1", "",
	 "<noone@example.org>: user unknown"},
	/* a system user through the local mailer */
	{MX, "<bin@example.org>", 250, "2.1.5", "local user bin <bin>", NULL},
	/* duplicates collapse, whatever their case and however reached */
	{MX, "<dup@example.org>", 250, "2.1.5", JOE, NULL},
	{MX, "<dup2@example.org>", 250, "2.1.5", JOE "; " JANE, NULL},
	{MX, "<dupuser@example.org>", 250, "2.1.5", ROOT, NULL},
	/* a list target that cannot be routed does not refuse the others */
	{MX, "<fwd@example.org>", 250, "2.1.5", JOE, NULL},
	/* postmaster: always routable */
	{MX, "<postmaster>", 250, "2.1.5", ROOT, NULL},
	{MX, "<POSTMASTER>", 250, "2.1.5", ROOT, NULL},
	{MX, "<Postmaster@mx.example.net>", 250, "2.1.5", ROOT, NULL},
	{MX, "<postmaster@example.org>", 250, "2.1.5", ROOT, NULL},
	{MX, "<postmaster@remote.example>", 550, "5.7.1", "",
	 "<postmaster@remote.example>: relaying denied"},
	{MX, "<abuse@mail.example.net>", 250, "2.1.5", ROOT, NULL},
	/* the host name and localhost reach aliases and system users ... */
	{MX, "<daemon@mail.example.net>", 250, "2.1.5",
	 "local user daemon <daemon>", NULL},
	{MX, "<root@localhost>", 250, "2.1.5", ROOT, NULL},
	{MX, "<root@[127.0.0.1]>", 250, "2.1.5", ROOT, NULL},
	{MX, "<nobody@Mail.Example.NET>", 250, "2.1.5",
	 "local user nobody <nobody>", NULL},
	{MX, "<nosuchuser-xyz@localhost>", 550, "5.1.1", "",
	 "<nosuchuser-xyz@localhost>: user unknown"},
	/* ... but never a [pipe] or [relay] that a client names */
	{MX, "<procmail@localhost>", 250, "2.1.5",
	 "maildir /var/mail/not-the-pipe/ <procmail>", NULL},
	{MX, "<archive@localhost>", 550, "5.1.1", "",
	 "<archive@localhost>: user unknown"},
	{MX, "<archive@mail.example.net>", 550, "5.1.1", "",
	 "<archive@mail.example.net>: user unknown"},
	{MX, "<smarthost@mail.example.net>", 550, "5.1.1", "",
	 "<smarthost@mail.example.net>: user unknown"},
	{MX, "<smarthost@[127.0.0.1]>", 550, "5.1.1", "",
	 "<smarthost@[127.0.0.1]>: user unknown"},
	/* bare local names */
	{MX, "<root>", 504, "5.5.2", "", "<root>: need a fully-qualified address"},
	{MX, "<archive>", 504, "5.5.2", "",
	 "<archive>: need a fully-qualified address"},
	{SUB, "<root>", 250, "2.1.5", ROOT, NULL},
	{SUB, "<abuse>", 250, "2.1.5", ROOT, NULL},
	{SUB, "<jane-alias>", 250, "2.1.5", JANE, NULL},
	{SUB, "<archive>", 550, "5.1.1", "", "<archive>: user unknown"},
	{SUB, "<smarthost>", 550, "5.1.1", "", "<smarthost>: user unknown"},
	{SUB, "<nosuchuser-xyz>", 550, "5.1.1", "",
	 "<nosuchuser-xyz>: user unknown"},
	/* the submission listener relays everything to mx, the %-hack too:
	 * the next hop is example.org's MX, not remote.example */
	{SUB, "<anyone@anywhere.example>", 250, "2.1.5",
	 "mx mx <anyone@anywhere.example>", NULL},
	{SUB, "<joe@example.org>", 250, "2.1.5", "mx mx <joe@example.org>", NULL},
	{SUB, "<user%remote.example@example.org>", 250, "2.1.5",
	 "mx mx <user%remote.example@example.org>", NULL},
	/* a listener without its own tables: the global table only, whose
	 * tagged+x@example.org line makes example.org local there too */
	{"lmtp", "<joe@example.org>", 550, "5.1.1", "",
	 "<joe@example.org>: user unknown"},
	{"lmtp", "<joe@example.com>", 550, "5.7.1", "",
	 "<joe@example.com>: relaying denied"},
	{"lmtp", "<abuse@mail.example.net>", 250, "2.1.5", ROOT, NULL},
	{NULL, "<postmaster@localhost>", 250, "2.1.5", ROOT, NULL},
	{NULL, "<root>", 504, "5.5.2", "", "<root>: need a fully-qualified address"},
	/* syntax and UTF-8 */
	{MX, "<joe@@example.org>", 501, "5.1.3", "",
	 "<joe@@example.org>: invalid domain name"},
	{MX, "<joe@example.org", 501, "5.1.3", "",
	 "<joe@example.org: missing '>'"},
	{MX, "<jo..e@example.org>", 501, "5.1.3", "",
	 "<jo..e@example.org>: empty atom in local part"},
	{MX, "<>", 501, "5.1.3", "", "<>: the null address is not a recipient"},
	{MX, "<zo\xc3\xab@example.org>", 250, "2.1.5",
	 "maildir /var/mail/zoe/ <zo\xc3\xab@example.org>", NULL},
	{MX, "<x@b\xc3\xbc" "cher.example>", 250, "2.1.5",
	 "maildir /var/mail/buecher/ <x@b\xc3\xbc" "cher.example>", NULL},
	{MX, "<zo\xc3\xab@elsewhere.example>", 550, "5.7.1", "",
	 "<zo\xc3\xab@elsewhere.example>: relaying denied"},
	{MX, "<x@b\xc3\xbc" "cher.other>", 550, "5.7.1", "",
	 "<x@b\xc3\xbc" "cher.other>: relaying denied"},
};

static void test_site(void **state)
{
	(void)state;
	assert_int_equal(CHECK_ALL(site, site_cases), 0);
}

/* Without ROUTE_UTF8 a non-ASCII address is 553 5.6.7, routed or not. */
static void test_nonascii_without_smtputf8(void **state)
{
	(void)state;
	static const struct rcase cases[] = {
		{MX, "<zo\xc3\xab@example.org>", 553, "5.6.7", "",
		 "<zo\xc3\xab@example.org>: non-ASCII address without SMTPUTF8"},
		{MX, "<x@b\xc3\xbc" "cher.example>", 553, "5.6.7", "",
		 "<x@b\xc3\xbc" "cher.example>: non-ASCII address without "
		 "SMTPUTF8"},
		{MX, "<zo\xc3\xab@elsewhere.example>", 553, "5.6.7", "",
		 "<zo\xc3\xab@elsewhere.example>: non-ASCII address without "
		 "SMTPUTF8"},
		/* ASCII is unaffected */
		{MX, "<joe@example.org>", 250, "2.1.5", JOE, NULL},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		bad += check_one(site, &cases[i], i, ROUTE_SMTP);
	assert_int_equal(bad, 0);
}

/* What a client wrote never comes back raw in the reply. */
static void test_reply_escapes_client_bytes(void **state)
{
	(void)state;
#define BAD(s) {s, sizeof s - 1}
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		BAD("<a\r\nRSET@example.org>"),
		BAD("<a\x1b[31m@example.org>"),
		BAD("<zo\xff@example.org>"),
		BAD("<jo\0e@example.org>"),
	};
#undef BAD
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct route_result r;
		route_resolve(site, cf_find(site, CF_SMTPD, MX), bad[i].s,
			      bad[i].n, ROUTE_SMTP | ROUTE_UTF8, &r);
		assert_int_equal(r.code, 501);
		assert_string_equal(r.dsn, "5.1.3");
		assert_int_equal(r.nt, 0);
		for (const char *p = r.text; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f ||
			    (unsigned char)*p == 0xff) {
				print_error("case %zu: raw byte 0x%02x in '%s'\n",
					    i, (unsigned char)*p, r.text);
				fail();
			}
		route_result_free(&r);
	}
	/* a path over 256 octets */
	char big[300];
	big[0] = '<';
	memset(big + 1, 'a', 250);
	snprintf(big + 251, sizeof big - 251, "@example.org>");
	struct route_result r;
	route_resolve(site, NULL, big, strlen(big), ROUTE_SMTP | ROUTE_UTF8, &r);
	assert_int_equal(r.code, 501);
	assert_string_equal(r.dsn, "5.1.3");
	assert_non_null(strstr(r.text, "longer than 256"));
	route_result_free(&r);
}

/* The sections that carry the delivery: the pipe, the relay, and the
 * local mailer for system users. */
static void test_target_sections(void **state)
{
	(void)state;
	struct route_result r;
	const struct cf_section *mx = cf_find(site, CF_SMTPD, MX);
	route_resolve(site, mx, "<bin@example.org>", 17, ROUTE_SMTP, &r);
	assert_int_equal(r.nt, 1);
	assert_int_equal(r.t[0].kind, T_USER);
	assert_ptr_equal(r.t[0].sec, cf_find(site, CF_PIPE, "procmail"));
	route_result_free(&r);
	route_resolve(site, mx, "<list@example.org>", 18, ROUTE_SMTP, &r);
	assert_int_equal(r.nt, 3);
	assert_int_equal(r.t[1].kind, T_PIPE);
	assert_ptr_equal(r.t[1].sec, cf_find(site, CF_PIPE, "archive"));
	route_result_free(&r);
	route_resolve(site, mx, "<x@relay.example>", 17, ROUTE_SMTP, &r);
	assert_int_equal(r.nt, 1);
	assert_int_equal(r.t[0].kind, T_RELAY);
	assert_ptr_equal(r.t[0].sec, cf_find(site, CF_RELAY, "smarthost"));
	route_result_free(&r);
	/* without local-mailer: the built-in [pipe "local"] */
	struct cf *cf = load("[core]\nhostname = h.example\n");
	route_resolve(cf, NULL, "<root@localhost>", 16, ROUTE_SMTP, &r);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nt, 1);
	assert_int_equal(r.t[0].kind, T_USER);
	assert_non_null(r.t[0].sec);
	assert_string_equal(r.t[0].sec->name, "local");
	assert_true(r.t[0].sec->builtin);
	route_result_free(&r);
	cf_free(cf);
}

/* ------------------------------------------------------------------ */

/* First match wins in table order across kinds; listener tables first,
 * in routing-table order, then the global [route]. */
static void test_first_match(void **state)
{
	(void)state;
	static const char text[] = "[core]\n"
				   "hostname = h.example\n"
				   "[smtpd \"a\"]\n"
				   "listen-port = 25\n"
				   "routing-table = one\n"
				   "routing-table = two\n"
				   "[smtpd \"b\"]\n"
				   "listen-port = 26\n"
				   "routing-table = two\n"
				   "routing-table = one\n"
				   "[route \"one\"]\n"
				   "@d.example /m/one-domain/\n"
				   "joe@d.example /m/one-exact/\n"
				   "[route \"two\"]\n"
				   "joe@d.example /m/two/\n"
				   "ann@ /m/two-local/\n"
				   "ann@f.example /m/two-ann-f/\n"
				   "@ /m/two-all/\n"
				   "zed@g.example /m/two-never/\n"
				   "[route]\n"
				   "ann@e.example /m/global/\n"
				   "bea@e.example /m/global-bea/\n"
				   "@ /m/all/\n";
	struct cf *cf = load(text);
	static const struct rcase cases[] = {
		{"a", "<joe@d.example>", 250, "2.1.5",
		 "maildir /m/one-domain/ <joe@d.example>", NULL},
		{"a", "<JOE@D.EXAMPLE>", 250, "2.1.5",
		 "maildir /m/one-domain/ <JOE@D.EXAMPLE>", NULL},
		{"b", "<joe@d.example>", 250, "2.1.5",
		 "maildir /m/two/ <joe@d.example>", NULL},
		{"b", "<kim@d.example>", 250, "2.1.5",
		 "maildir /m/two-all/ <kim@d.example>", NULL},
		{"a", "<kim@d.example>", 250, "2.1.5",
		 "maildir /m/one-domain/ <kim@d.example>", NULL},
		{"a", "<ann@e.example>", 250, "2.1.5",
		 "maildir /m/two-local/ <ann@e.example>", NULL},
		{"a", "<ann@f.example>", 250, "2.1.5",
		 "maildir /m/two-local/ <ann@f.example>", NULL},
		{"a", "<bea@e.example>", 250, "2.1.5",
		 "maildir /m/two-all/ <bea@e.example>", NULL},
		{"a", "<zed@g.example>", 250, "2.1.5",
		 "maildir /m/two-all/ <zed@g.example>", NULL},
		{NULL, "<ann@e.example>", 250, "2.1.5",
		 "maildir /m/global/ <ann@e.example>", NULL},
		{NULL, "<bea@e.example>", 250, "2.1.5",
		 "maildir /m/global-bea/ <bea@e.example>", NULL},
		{NULL, "<joe@d.example>", 250, "2.1.5",
		 "maildir /m/all/ <joe@d.example>", NULL},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* Rewrites: an empty part keeps the original part, in its own spelling. */
static void test_rewrites(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "[route]\n"
			     "@example.org @example.net\n"
			     "@example.net /m/net/\n"
			     "user-keep@example.com newname@\n"
			     "newname@example.com /m/newname/\n"
			     "dom-keep@example.com @example.net\n"
			     "both@example.com other@example.net\n"
			     "to-lit@example.com @[192.0.2.1]\n"
			     "@[192.0.2.1] /m/lit/\n"
			     "to-name@example.com @mail.example.net\n");
	static const struct rcase cases[] = {
		{NULL, "<Joe@Example.ORG>", 250, "2.1.5",
		 "maildir /m/net/ <Joe@example.net>", NULL},
		{NULL, "<user-keep@example.com>", 250, "2.1.5",
		 "maildir /m/newname/ <newname@example.com>", NULL},
		{NULL, "<User-Keep@EXAMPLE.COM>", 250, "2.1.5",
		 "maildir /m/newname/ <newname@EXAMPLE.COM>", NULL},
		{NULL, "<dom-keep@example.com>", 250, "2.1.5",
		 "maildir /m/net/ <dom-keep@example.net>", NULL},
		{NULL, "<both@example.com>", 250, "2.1.5",
		 "maildir /m/net/ <other@example.net>", NULL},
		{NULL, "<to-lit@example.com>", 250, "2.1.5",
		 "maildir /m/lit/ <to-lit@[192.0.2.1]>", NULL},
		/* a rewrite to the host name reaches system users */
		{NULL, "<to-name@example.com>", 550, "5.1.1", "",
		 "<to-name@example.com>: user unknown"},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* A rewrite may not produce an address longer than a path allows: 254
 * octets without the brackets is the most. */
static void test_rewrite_too_long(void **state)
{
	(void)state;
	char dom[80];
	memset(dom, 'd', 59);
	snprintf(dom + 59, sizeof dom - 59, ".example"); /* 67 octets */
	char text[400];
	snprintf(text, sizeof text,
		 "[core]\nhostname = h.example\n[route]\n"
		 "@short.example @%s\n@%s /m/long/\n",
		 dom, dom);
	struct cf *cf = load(text);
	for (size_t total = 254; total <= 255; total++) {
		/* local part + "@" + dom = total */
		size_t local = total - 1 - strlen(dom);
		char rcpt[300], want[300];
		rcpt[0] = '<';
		memset(rcpt + 1, 'l', local);
		snprintf(rcpt + 1 + local, sizeof rcpt - 1 - local,
			 "@short.example>");
		struct route_result r;
		route_resolve(cf, NULL, rcpt, strlen(rcpt),
			      ROUTE_SMTP | ROUTE_UTF8, &r);
		if (total == 254) {
			assert_int_equal(r.code, 250);
			assert_int_equal(r.nt, 1);
			assert_int_equal(strlen(r.t[0].addr), 254);
			assert_string_equal(r.t[0].arg, "/m/long/");
		} else {
			assert_int_equal(r.code, 550);
			assert_string_equal(r.dsn, "5.1.3");
			snprintf(want, sizeof want, "%.*s: rewritten address too long",
				 (int)strlen(rcpt), rcpt);
			assert_string_equal(r.text, want);
		}
		route_result_free(&r);
	}
	cf_free(cf);
}

/* NAME targets: a [pipe], a [relay], an alias, a system user, a host (a
 * name with a dot), in that order; else 550 5.1.1. */
static void test_name_order(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "[pipe \"root\"]\n"
			     "exec = /bin/true\n"
			     "[pipe \"both\"]\n"
			     "exec = /bin/true\n"
			     "[relay \"both\"]\n"
			     "address = 192.0.2.9\n"
			     "[relay \"daemon\"]\n"
			     "address = 192.0.2.10\n"
			     "[pipe \"pipe.example.net\"]\n"
			     "exec = /bin/true\n"
			     "[relay \"relay.example.org\"]\n"
			     "address = 192.0.2.11\n"
			     "[route]\n"
			     "a@example.org root\n"
			     "b@example.org both\n"
			     "c@example.org daemon\n"
			     "d@example.org bin\n"
			     "bin /m/bin-alias/\n"
			     "e@example.org alias.example.net\n"
			     "alias.example.net /m/dotted-alias/\n"
			     "f@example.org relay.example.net\n"
			     "g@example.org pipe.example.net\n"
			     "h@example.org nobody\n"
			     "i@example.org nosuchuser-xyz\n"
			     "j@example.org root@mail.example.net\n"
			     "k@example.org relay.example.org\n"
			     "l@example.org nobody, \"|/bin/cat -n\" , /m/l/, "
			     "discard, mx, [192.0.2.1]:2525, reject\n"
			     "m@example.org reject, reject\n"
			     "n@example.org na\n"
			     "na daemon\n"
			     "o@example.org ob\n"
			     "ob relay.example.net\n"
			     "p@example.org pa\n"
			     "pa root\n"
			     "q@example.org 192.0.2.5\n"
			     "r@example.org [relay.example.net], "
			     "relay.example.net:2525\n");
	static const struct rcase cases[] = {
		{NULL, "<a@example.org>", 250, "2.1.5",
		 "pipe root <a@example.org>", NULL},
		{NULL, "<b@example.org>", 250, "2.1.5",
		 "pipe both <b@example.org>", NULL},
		{NULL, "<c@example.org>", 250, "2.1.5",
		 "relay daemon <c@example.org>", NULL},
		{NULL, "<d@example.org>", 250, "2.1.5",
		 "maildir /m/bin-alias/ <bin>", NULL},
		{NULL, "<e@example.org>", 250, "2.1.5",
		 "maildir /m/dotted-alias/ <alias.example.net>", NULL},
		{NULL, "<f@example.org>", 250, "2.1.5",
		 "host relay.example.net <f@example.org>", NULL},
		{NULL, "<g@example.org>", 250, "2.1.5",
		 "pipe pipe.example.net <g@example.org>", NULL},
		{NULL, "<h@example.org>", 250, "2.1.5",
		 "local user nobody <nobody>", NULL},
		{NULL, "<i@example.org>", 550, "5.1.1", "",
		 "<i@example.org>: user unknown"},
		{NULL, "<j@example.org>", 250, "2.1.5", ROOT, NULL},
		{NULL, "<k@example.org>", 250, "2.1.5",
		 "relay relay.example.org <k@example.org>", NULL},
		{NULL, "<l@example.org>", 250, "2.1.5",
		 "local user nobody <nobody>; command /bin/cat -n <l@example.org>; "
		 "maildir /m/l/ <l@example.org>; discard discard <l@example.org>; "
		 "mx mx <l@example.org>; host [192.0.2.1]:2525 <l@example.org>",
		 NULL},
		{NULL, "<m@example.org>", 550, "5.1.1", "",
		 "<m@example.org>: recipient rejected"},
		/* a relay or host reached through an alias gets a qualified
		 * address */
		{NULL, "<n@example.org>", 250, "2.1.5",
		 "relay daemon <na@mail.example.net>", NULL},
		{NULL, "<o@example.org>", 250, "2.1.5",
		 "host relay.example.net <ob@mail.example.net>", NULL},
		{NULL, "<p@example.org>", 250, "2.1.5", "pipe root <pa>", NULL},
		{NULL, "<q@example.org>", 250, "2.1.5",
		 "host 192.0.2.5 <q@example.org>", NULL},
		{NULL, "<r@example.org>", 250, "2.1.5",
		 "host [relay.example.net] <r@example.org>; "
		 "host relay.example.net:2525 <r@example.org>",
		 NULL},
		/* names a client picks reach system users only */
		{NULL, "<root@localhost>", 250, "2.1.5", ROOT, NULL},
		{NULL, "<daemon@mail.example.net>", 250, "2.1.5",
		 "local user daemon <daemon>", NULL},
		{NULL, "<both@localhost>", 550, "5.1.1", "",
		 "<both@localhost>: user unknown"},
		{NULL, "<pipe.example.net@localhost>", 550, "5.1.1", "",
		 "<pipe.example.net@localhost>: user unknown"},
		{NULL, "<relay.example.org@[127.0.0.1]>", 550, "5.1.1", "",
		 "<relay.example.org@[127.0.0.1]>: user unknown"},
		/* an administrator's alias may name a pipe */
		{NULL, "<pa@localhost>", 250, "2.1.5", "pipe root <pa>", NULL},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* Local domains (SPEC 6): what a listener's tables name, core.hostname,
 * the [smtpd] names, localhost and our own address literals. Unknown users
 * there are 550 5.1.1; everything else is 550 5.7.1. No route names
 * postmaster here: it goes to root. */
static void test_local_domains(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "[smtpd \"mx.example.net\"]\n"
			     "listen-port = 25\n"
			     "routing-table = mxroutes\n"
			     "[smtpd \"other\"]\n"
			     "name = other.example.net\n"
			     "listen-port = 2525\n"
			     "routing-table = otherroutes\n"
			     "[smtpd \"names\"]\n"
			     "listen-port = 2526\n"
			     "local-rcpt-to = yes\n"
			     "[route \"mxroutes\"]\n"
			     "joe@ours.example /m/joe/\n"
			     "@catch.example /m/catch/\n"
			     "[route \"otherroutes\"]\n"
			     "ann@theirs.example /m/ann/\n"
			     "[route]\n"
			     "@[192.0.2.1] /m/lit/\n");
#define M "mx.example.net"
	static const struct rcase cases[] = {
		{M, "<joe@ours.example>", 250, "2.1.5",
		 "maildir /m/joe/ <joe@ours.example>", NULL},
		{M, "<x@ours.example>", 550, "5.1.1", "",
		 "<x@ours.example>: user unknown"},
		{M, "<x@OURS.Example>", 550, "5.1.1", "",
		 "<x@OURS.Example>: user unknown"},
		{M, "<x@sub.ours.example>", 550, "5.7.1", "",
		 "<x@sub.ours.example>: relaying denied"},
		{M, "<x@theirs.example>", 550, "5.7.1", "",
		 "<x@theirs.example>: relaying denied"},
		{M, "<x@mail.example.net>", 550, "5.1.1", "",
		 "<x@mail.example.net>: user unknown"},
		{M, "<x@mx.example.net>", 550, "5.1.1", "",
		 "<x@mx.example.net>: user unknown"},
		{M, "<x@other.example.net>", 550, "5.1.1", "",
		 "<x@other.example.net>: user unknown"},
		{M, "<x@localhost>", 550, "5.1.1", "", "<x@localhost>: user unknown"},
		{M, "<x@[127.0.0.1]>", 550, "5.1.1", "",
		 "<x@[127.0.0.1]>: user unknown"},
		{M, "<x@[192.0.2.99]>", 550, "5.7.1", "",
		 "<x@[192.0.2.99]>: relaying denied"},
		{M, "<x@[192.0.2.1]>", 250, "2.1.5", "maildir /m/lit/ <x@[192.0.2.1]>",
		 NULL},
		{M, "<x@elsewhere.example>", 550, "5.7.1", "",
		 "<x@elsewhere.example>: relaying denied"},
		{M, "<x@example.net>", 550, "5.7.1", "",
		 "<x@example.net>: relaying denied"},
		{M, "<x@catch.example>", 250, "2.1.5",
		 "maildir /m/catch/ <x@catch.example>", NULL},
		{M, "<root@mail.example.net>", 250, "2.1.5", ROOT, NULL},
		/* postmaster with no route: root, at every local domain */
		{M, "<postmaster>", 250, "2.1.5", ROOT, NULL},
		{M, "<PostMaster>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@ours.example>", 250, "2.1.5", ROOT, NULL},
		{M, "<POSTMASTER@OURS.EXAMPLE>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@mail.example.net>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@mx.example.net>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@localhost>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@[127.0.0.1]>", 250, "2.1.5", ROOT, NULL},
		{M, "<postmaster@theirs.example>", 550, "5.7.1", "",
		 "<postmaster@theirs.example>: relaying denied"},
		{M, "<root>", 504, "5.5.2", "", "<root>: need a fully-qualified address"},
		/* %, ! and source routes never relay */
		{M, "<user%elsewhere.example@ours.example>", 550, "5.1.1", "",
		 "<user%elsewhere.example@ours.example>: user unknown"},
		{M, "<elsewhere.example!user@ours.example>", 550, "5.1.1", "",
		 "<elsewhere.example!user@ours.example>: user unknown"},
		{M, "<@ours.example:user@elsewhere.example>", 550, "5.7.1", "",
		 "<user@elsewhere.example>: relaying denied"},
		{M, "<@ours.example:joe@ours.example>", 250, "2.1.5",
		 "maildir /m/joe/ <joe@ours.example>", "<joe@ours.example> OK"},
		/* the other listener: its own table, not ours */
		{"other", "<ann@theirs.example>", 250, "2.1.5",
		 "maildir /m/ann/ <ann@theirs.example>", NULL},
		{"other", "<x@theirs.example>", 550, "5.1.1", "",
		 "<x@theirs.example>: user unknown"},
		{"other", "<joe@ours.example>", 550, "5.7.1", "",
		 "<joe@ours.example>: relaying denied"},
		/* the global table only */
		{NULL, "<joe@ours.example>", 550, "5.7.1", "",
		 "<joe@ours.example>: relaying denied"},
		{NULL, "<x@[192.0.2.1]>", 250, "2.1.5",
		 "maildir /m/lit/ <x@[192.0.2.1]>", NULL},
		{NULL, "<postmaster>", 250, "2.1.5", ROOT, NULL},
		/* local-rcpt-to = yes: bare names are system users */
		{"names", "<root>", 250, "2.1.5", ROOT, NULL},
		{"names", "<postmaster>", 250, "2.1.5", ROOT, NULL},
		{"names", "<nosuchuser-xyz>", 550, "5.1.1", "",
		 "<nosuchuser-xyz>: user unknown"},
	};
#undef M
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* International domains are one domain in every spelling (IDNA2008
 * A-labels, Unicode case folded): in patterns, rewrites, local domains
 * (a route's domain, a listener's name, the host name) and the relay
 * check. "bücher" is xn--bcher-kva, "café" xn--caf-dma, "müller"
 * xn--mller-kva, "münchen" xn--mnchen-3ya, "straße" xn--strae-oqa. */
#define U_UE "\xc3\xbc" /* ü */
#define U_UE_UP "\xc3\x9c" /* Ü */
#define U_EA "\xc3\xa9" /* é */
#define U_EA_UP "\xc3\x89" /* É */
static void test_idna_domains(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.xn--bcher-kva.test\n"
			     "[smtpd \"mx\"]\n"
			     "listen-port = 25\n"
			     "name = xn--mnchen-3ya.example\n"
			     "[route]\n"
			     "\"@b" U_UE "cher.test\" /m/buecher/\n"
			     "joe@XN--CAF-DMA.test /m/joe/\n"
			     "\"@M" U_UE_UP "LLER.test\" /m/mueller/\n"
			     "\"@stra\xc3\x9f" "e.test\" /m/strasse/\n"
			     "ann@rewrite.test \"ann@B" U_UE_UP "CHER.TEST\"\n");
#define BU "maildir /m/buecher/ "
#define JO "maildir /m/joe/ "
#define MU "maildir /m/mueller/ "
	static const struct rcase cases[] = {
		/* a U-label pattern: the U-label, its upper case, the A-label */
		{"mx", "<x@b" U_UE "cher.test>", 250, "2.1.5",
		 BU "<x@b" U_UE "cher.test>", NULL},
		{"mx", "<x@B" U_UE_UP "CHER.test>", 250, "2.1.5",
		 BU "<x@B" U_UE_UP "CHER.test>", NULL},
		{"mx", "<x@xn--bcher-kva.test>", 250, "2.1.5",
		 BU "<x@xn--bcher-kva.test>", NULL},
		{"mx", "<x@XN--BCHER-KVA.TEST>", 250, "2.1.5",
		 BU "<x@XN--BCHER-KVA.TEST>", NULL},
		/* an A-label pattern (in upper case): every spelling */
		{"mx", "<joe@caf" U_EA ".test>", 250, "2.1.5",
		 JO "<joe@caf" U_EA ".test>", NULL},
		{"mx", "<JOE@CAF" U_EA_UP ".TEST>", 250, "2.1.5",
		 JO "<JOE@CAF" U_EA_UP ".TEST>", NULL},
		{"mx", "<joe@xn--caf-dma.test>", 250, "2.1.5",
		 JO "<joe@xn--caf-dma.test>", NULL},
		/* an upper-case U-label pattern */
		{"mx", "<x@m" U_UE "ller.test>", 250, "2.1.5",
		 MU "<x@m" U_UE "ller.test>", NULL},
		{"mx", "<x@xn--mller-kva.test>", 250, "2.1.5",
		 MU "<x@xn--mller-kva.test>", NULL},
		/* nontransitional: straße is not strasse */
		{"mx", "<x@xn--strae-oqa.test>", 250, "2.1.5",
		 "maildir /m/strasse/ <x@xn--strae-oqa.test>", NULL},
		{"mx", "<x@strasse.test>", 550, "5.7.1", "",
		 "<x@strasse.test>: relaying denied"},
		/* a rewrite to another spelling */
		{"mx", "<ann@rewrite.test>", 250, "2.1.5",
		 BU "<ann@B" U_UE_UP "CHER.TEST>", NULL},
		/* local domains in every spelling: user unknown, not relaying */
		{"mx", "<x@CAF" U_EA_UP ".test>", 550, "5.1.1", "",
		 "<x@CAF" U_EA_UP ".test>: user unknown"},
		{"mx", "<x@xn--caf-dma.test>", 550, "5.1.1", "",
		 "<x@xn--caf-dma.test>: user unknown"},
		{"mx", "<x@xn--mnchen-3ya.example>", 550, "5.1.1", "",
		 "<x@xn--mnchen-3ya.example>: user unknown"},
		{"mx", "<x@M" U_UE_UP "NCHEN.example>", 550, "5.1.1", "",
		 "<x@M" U_UE_UP "NCHEN.example>: user unknown"},
		{"mx", "<root@MAIL.B" U_UE_UP "CHER.test>", 250, "2.1.5", ROOT,
		 NULL},
		{"mx", "<x@sub.b" U_UE "cher.test>", 550, "5.7.1", "",
		 "<x@sub.b" U_UE "cher.test>: relaying denied"},
		/* no valid international name: 553 5.1.3 */
		{"mx", "<x@xn--zz.test>", 553, "5.1.3", "",
		 "<x@xn--zz.test>: xn--zz.test is not a valid international "
		 "domain name: string contains invalid punycode data"},
		{"mx", "<x@b\xe2\x80\xa4x.test>", 553, "5.1.3", "",
		 "<x@b\xe2\x80\xa4x.test>: b\xe2\x80\xa4x.test is not a valid "
		 "international domain name: string contains a disallowed "
		 "character"},
		/* ASCII without an xn-- label is never checked as IDNA */
		{"mx", "<x@ab--cd.test>", 550, "5.7.1", "",
		 "<x@ab--cd.test>: relaying denied"},
	};
#undef BU
#undef JO
#undef MU
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);

	/* a pattern that is no valid international name is a configuration
	 * error, not a line that can never match */
	cf = cf_new();
	static const char badcf[] = "[route]\n@xn--zz.test /m/x/\n"
				    "x@y.test x@xn--zz.test\n";
	cf_load_text(cf, "test.cf", badcf, strlen(badcf));
	finish_config(cf, 0);
	assert_int_equal(cf->nerrors, 2);
	assert_non_null(strstr(cf->diag.s, "test.cf:2:1: expected a route "
					   "pattern"));
	assert_non_null(strstr(cf->diag.s, "found '@xn--zz.test': xn--zz.test "
					   "is not a valid international "
					   "domain name"));
	assert_non_null(strstr(cf->diag.s, "test.cf:3:10: expected a rewrite "
					   "to a valid domain (xn--zz.test is "
					   "not a valid international domain "
					   "name"));
	cf_free(cf);
}

/* A route for postmaster replaces the built-in root, at every local
 * domain and bare; a more specific line still comes first. */
static void test_postmaster_alias(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "[route]\n"
			     "joe@ours.example /m/joe/\n"
			     "postmaster@special.example /m/pm-special/\n"
			     "postmaster /m/pm/\n");
	static const struct rcase cases[] = {
		{NULL, "<postmaster>", 250, "2.1.5",
		 "maildir /m/pm/ <postmaster>", NULL},
		{NULL, "<Postmaster>", 250, "2.1.5",
		 "maildir /m/pm/ <Postmaster>", NULL},
		{NULL, "<postmaster@ours.example>", 250, "2.1.5",
		 "maildir /m/pm/ <postmaster>", NULL},
		{NULL, "<PostMaster@localhost>", 250, "2.1.5",
		 "maildir /m/pm/ <PostMaster>", NULL},
		{NULL, "<postmaster@[127.0.0.1]>", 250, "2.1.5",
		 "maildir /m/pm/ <postmaster>", NULL},
		{NULL, "<postmaster@special.example>", 250, "2.1.5",
		 "maildir /m/pm-special/ <postmaster@special.example>", NULL},
		{NULL, "<postmaster@remote.example>", 550, "5.7.1", "",
		 "<postmaster@remote.example>: relaying denied"},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* Without a route for postmaster, postmaster is root as an alias would
 * make it: a route for root is followed (it was skipped for the system
 * user root, as if root were its own alias). */
static void test_postmaster_follows_roots_route(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "[route]\n"
			     "root /m/root/\n");
	static const struct rcase cases[] = {
		{NULL, "<postmaster>", 250, "2.1.5", "maildir /m/root/ <root>",
		 NULL},
		{NULL, "<postmaster@mail.example.net>", 250, "2.1.5",
		 "maildir /m/root/ <root>", NULL},
		{NULL, "<root@mail.example.net>", 250, "2.1.5",
		 "maildir /m/root/ <root>", NULL},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* recipient-delimiter: user+tag@d falls back to user@d and user@; the
 * lowest line wins across the exact pattern and the fallbacks. */
static void test_recipient_delimiter(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\n"
			     "hostname = mail.example.net\n"
			     "recipient-delimiter = +\n"
			     "[route]\n"
			     "ann@ /m/ann-any/\n"
			     "ann+x@example.org /m/ann-x/\n"
			     "bob+x@example.org /m/bob-x/\n"
			     "bob@example.org /m/bob/\n"
			     "bob@ /m/bob-any/\n"
			     "cat@example.org /m/cat/\n"
			     "cat+x@ /m/cat-x-any/\n"
			     "dan+x@ /m/dan-x/\n"
			     "dan@example.org /m/dan/\n"
			     "abuse /m/abuse/\n"
			     "@example.com /m/com/\n"
			     "eve@example.com /m/eve/\n");
	static const struct rcase cases[] = {
		{NULL, "<ann+x@example.org>", 250, "2.1.5",
		 "maildir /m/ann-any/ <ann+x@example.org>", NULL},
		{NULL, "<ann+y@other.example>", 250, "2.1.5",
		 "maildir /m/ann-any/ <ann+y@other.example>", NULL},
		{NULL, "<bob+x@example.org>", 250, "2.1.5",
		 "maildir /m/bob-x/ <bob+x@example.org>", NULL},
		{NULL, "<BOB+X@example.org>", 250, "2.1.5",
		 "maildir /m/bob-x/ <BOB+X@example.org>", NULL},
		{NULL, "<bob+y@example.org>", 250, "2.1.5",
		 "maildir /m/bob/ <bob+y@example.org>", NULL},
		{NULL, "<bob+x+y@example.org>", 250, "2.1.5",
		 "maildir /m/bob/ <bob+x+y@example.org>", NULL},
		{NULL, "<bob+y@other.example>", 250, "2.1.5",
		 "maildir /m/bob-any/ <bob+y@other.example>", NULL},
		{NULL, "<bob@example.org>", 250, "2.1.5",
		 "maildir /m/bob/ <bob@example.org>", NULL},
		{NULL, "<bob+@example.org>", 250, "2.1.5",
		 "maildir /m/bob/ <bob+@example.org>", NULL},
		{NULL, "<\"bob+y\"@example.org>", 250, "2.1.5",
		 "maildir /m/bob/ <bob+y@example.org>", "<bob+y@example.org> OK"},
		{NULL, "<cat+x@example.org>", 250, "2.1.5",
		 "maildir /m/cat/ <cat+x@example.org>", NULL},
		{NULL, "<cat+x@other.example>", 250, "2.1.5",
		 "maildir /m/cat-x-any/ <cat+x@other.example>", NULL},
		{NULL, "<dan+x@example.org>", 250, "2.1.5",
		 "maildir /m/dan-x/ <dan+x@example.org>", NULL},
		{NULL, "<dan+y@example.org>", 250, "2.1.5",
		 "maildir /m/dan/ <dan+y@example.org>", NULL},
		/* a domain line before the exact one wins for tagged mail too */
		{NULL, "<eve+x@example.com>", 250, "2.1.5",
		 "maildir /m/com/ <eve+x@example.com>", NULL},
		{NULL, "<+x@example.org>", 550, "5.1.1", "",
		 "<+x@example.org>: user unknown"},
		{NULL, "<erin+x@example.org>", 550, "5.1.1", "",
		 "<erin+x@example.org>: user unknown"},
		/* aliases and system users at the host name */
		{NULL, "<abuse+spam@mail.example.net>", 250, "2.1.5",
		 "maildir /m/abuse/ <abuse+spam>", NULL},
		{NULL, "<root+tag@mail.example.net>", 250, "2.1.5", ROOT, NULL},
		/* postmaster+tag: postmaster, which no route names: root */
		{NULL, "<postmaster+tag@mail.example.net>", 250, "2.1.5", ROOT,
		 NULL},
		{NULL, "<PostMaster+x+y@example.org>", 250, "2.1.5", ROOT, NULL},
		{NULL, "<postmaster+@localhost>", 250, "2.1.5", ROOT, NULL},
		{NULL, "<postmasterx+tag@example.org>", 550, "5.1.1", "",
		 "<postmasterx+tag@example.org>: user unknown"},
		{NULL, "<postmaster+tag@remote.example>", 550, "5.7.1", "",
		 "<postmaster+tag@remote.example>: relaying denied"},
		{NULL, "<nobody+a+b@localhost>", 250, "2.1.5",
		 "local user nobody <nobody>", NULL},
		{NULL, "<nosuchuser-xyz+tag@localhost>", 550, "5.1.1", "",
		 "<nosuchuser-xyz+tag@localhost>: user unknown"},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(bad, 0);
	/* without a delimiter, '+' is an ordinary character */
	cf = load("[core]\nhostname = mail.example.net\n[route]\n"
		  "bob@example.org /m/bob/\nbob@ /m/bob-any/\n");
	static const struct rcase plain[] = {
		{NULL, "<bob+y@example.org>", 550, "5.1.1", "",
		 "<bob+y@example.org>: user unknown"},
		{NULL, "<root+tag@mail.example.net>", 550, "5.1.1", "",
		 "<root+tag@mail.example.net>: user unknown"},
		{NULL, "<postmaster+tag@mail.example.net>", 550, "5.1.1", "",
		 "<postmaster+tag@mail.example.net>: user unknown"},
	};
	bad = CHECK_ALL(cf, plain);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* Rewriting and aliasing recurse at most 20 levels: the first address is
 * level 0 and each rewrite or alias adds one; level 21 is a loop. */
static void test_depth_limit(void **state)
{
	(void)state;
	struct buf t = {0};
	buf_adds(&t, "[core]\nhostname = h.example\n[route]\n");
	/* rewrites: aN@d.example -> aN+1@d.example, a21 is final */
	for (int i = 0; i < 21; i++)
		buf_printf(&t, "a%d@d.example a%d@d.example\n", i, i + 1);
	buf_adds(&t, "a21@d.example /m/end/\n");
	/* aliases: nN -> nN+1, n21 is final */
	for (int i = 0; i < 21; i++)
		buf_printf(&t, "n%d n%d\n", i, i + 1);
	buf_adds(&t, "n21 /m/names/\n");
	buf_adds(&t, "start1@d.example n2\nstart0@d.example n1\n");
	/* mixed: 10 rewrites, then aliases */
	buf_adds(&t, "mixA@d.example a12@d.example\n");
	buf_adds(&t, "mixB@d.example a11@d.example\n");
	struct cf *cf = load(t.s);
	static const struct rcase cases[] = {
		/* a1 .. a21: 20 rewrites */
		{NULL, "<a1@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <a21@d.example>", NULL},
		/* a0 .. a21: 21 */
		{NULL, "<a0@d.example>", 550, "5.4.6", "",
		 "<a0@d.example>: routing loop"},
		/* start1 -> n2 .. n21: 20 aliases */
		{NULL, "<start1@d.example>", 250, "2.1.5",
		 "maildir /m/names/ <n21>", NULL},
		{NULL, "<start0@d.example>", 550, "5.4.6", "",
		 "<start0@d.example>: routing loop"},
		/* rewrites and aliases count alike: mixA -> a12 .. a21 is 10;
		 * mixB -> a11 is 11 */
		{NULL, "<mixA@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <a21@d.example>", NULL},
		{NULL, "<mixB@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <a21@d.example>", NULL},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	buf_free(&t);
	assert_int_equal(bad, 0);
}

/* Whether a recipient is accepted does not depend on the order of a
 * list: x@d.example resolves within the limit through the list's second
 * entry, whatever the first entry's deep path to it does. */
static void test_depth_does_not_depend_on_list_order(void **state)
{
	(void)state;
	struct buf t = {0};
	buf_adds(&t, "[core]\nhostname = h.example\n[route]\n"
		     "l1@d.example a@d.example, x@d.example\n"
		     "l2@d.example x@d.example, a@d.example\n"
		     "a@d.example b2@d.example\n");
	/* a -> b2 .. b18 -> x: x is 18 levels below a */
	for (int i = 2; i < 18; i++)
		buf_printf(&t, "b%d@d.example b%d@d.example\n", i, i + 1);
	buf_adds(&t, "b18@d.example x@d.example\n"
		     "x@d.example y1@d.example\n"
		     "y1@d.example y2@d.example\n"
		     "y2@d.example /m/end/\n");
	struct cf *cf = load(t.s);
	static const struct rcase cases[] = {
		/* alone, each is fine */
		{NULL, "<a@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <y2@d.example>", NULL},
		{NULL, "<x@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <y2@d.example>", NULL},
		{NULL, "<l2@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <y2@d.example>", NULL},
		/* the same list in the other order */
		{NULL, "<l1@d.example>", 250, "2.1.5",
		 "maildir /m/end/ <y2@d.example>", NULL},
	};
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	buf_free(&t);
	assert_int_equal(bad, 0);
}

/* System users are looked up case-insensitively, as aliases are matched
 * (Postfix's local(8) folds the local part to lower case): ROOT@localhost
 * is root, not "user unknown". */
static void test_system_user_case_folded(void **state)
{
	(void)state;
	static const struct rcase cases[] = {
		{MX, "<ROOT@LOCALHOST>", 250, "2.1.5", ROOT, NULL},
		{MX, "<Daemon@mail.example.net>", 250, "2.1.5",
		 "local user daemon <daemon>", NULL},
		{SUB, "<Nobody>", 250, "2.1.5", "local user nobody <nobody>",
		 NULL},
	};
	assert_int_equal(CHECK_ALL(site, cases), 0);
}

/* At most ROUTE_MAX_TARGETS (1000) final targets per recipient. */
static void test_target_limit(void **state)
{
	(void)state;
	for (int total = 1000; total <= 1001; total++) {
		struct buf t = {0};
		buf_adds(&t, "[core]\nhostname = h.example\n[route]\n"
			     "big@d.example ");
		int lists = (total + 127) / 128;
		for (int l = 0; l < lists; l++)
			buf_printf(&t, "%sl%d", l ? ", " : "", l);
		buf_adds(&t, "\n");
		for (int l = 0, n = 0; l < lists; l++) {
			buf_printf(&t, "l%d ", l);
			for (int i = 0; i < 128 && n < total; i++, n++)
				buf_printf(&t, "%s/m/%d/", i ? ", " : "", n);
			buf_adds(&t, "\n");
		}
		struct cf *cf = load(t.s);
		struct route_result r;
		route_resolve(cf, NULL, "<big@d.example>", 15,
			      ROUTE_SMTP | ROUTE_UTF8, &r);
		if (total == 1000) {
			assert_int_equal(r.code, 250);
			assert_int_equal(r.nt, 1000);
			assert_string_equal(r.t[999].arg, "/m/999/");
		} else {
			assert_int_equal(r.code, 550);
			assert_string_equal(r.dsn, "5.4.6");
			assert_int_equal(r.nt, 0);
			assert_string_equal(r.text, "<big@d.example>: routing "
						    "expands to too many targets");
		}
		route_result_free(&r);
		cf_free(cf);
		buf_free(&t);
	}
}

/* ------------------------------------------------------------------ */
/* Compiled route files                                                */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void append_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Moves the file's mtime without changing a byte of it. */
static void touch(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	ts[1].tv_sec += 10;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static uint32_t count_type(const struct cf *cf, int type)
{
	const struct route_table *g = cf->global_route->table;
	uint32_t n = 0;
	for (uint32_t i = 0; i < g->n; i++)
		n += g->e[i].type == type;
	return n;
}

static struct cf *load_mode(const char *text, unsigned mode)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "test.cf", text, strlen(text));
	finish_config(cf, mode);
	if (cf->nerrors) {
		print_error("%s", cf->diag.s);
		fail();
	}
	return cf;
}

/* The temporary directory of an index test; its teardown removes it even
 * when the test failed half-way. */
static struct tmpdir {
	char dir[64];
	char rt[128], nested[128], idx[160], cf[1024];
} tmp;

static void make_dir(void)
{
	snprintf(tmp.dir, sizeof tmp.dir, "/tmp/pm-test-route.XXXXXX");
	assert_non_null(mkdtemp(tmp.dir));
	snprintf(tmp.rt, sizeof tmp.rt, "%s/big.rt", tmp.dir);
	snprintf(tmp.nested, sizeof tmp.nested, "%s/nested.rt", tmp.dir);
	snprintf(tmp.idx, sizeof tmp.idx, "%s/big.rt.pmdb", tmp.dir);
}

static int remove_dir(void **state)
{
	(void)state;
	if (!tmp.dir[0])
		return 0;
	unlink(tmp.idx);
	unlink(tmp.rt);
	unlink(tmp.nested);
	int r = rmdir(tmp.dir);
	if (r < 0)
		print_error("cannot remove %s\n", tmp.dir);
	memset(&tmp, 0, sizeof tmp);
	return r;
}

static const struct rcase index_cases[] = {
	{NULL, "<user1999@d4.example>", 250, "2.1.5",
	 "maildir /m/u1999/ <user1999@d4.example>", NULL},
	{NULL, "<USER1@D1.example>", 250, "2.1.5",
	 "maildir /m/u1/ <USER1@D1.example>", NULL},
	{NULL, "<user1+tag@d1.example>", 250, "2.1.5",
	 "maildir /m/u1/ <user1+tag@d1.example>", NULL},
	/* a line before the include, and after it */
	{NULL, "<first@d1.example>", 250, "2.1.5",
	 "maildir /m/first/ <first@d1.example>", NULL},
	{NULL, "<other@d1.example>", 250, "2.1.5",
	 "maildir /m/after/ <other@d1.example>", NULL},
	/* first match across kinds inside the file */
	{NULL, "<user3@d3.example>", 250, "2.1.5",
	 "maildir /m/u3/ <user3@d3.example>", NULL},
	{NULL, "<user5000@d3.example>", 250, "2.1.5",
	 "maildir /m/d3/ <user5000@d3.example>", NULL},
	{NULL, "<special@d1.example>", 250, "2.1.5",
	 "maildir /m/special/ <special@d1.example>", NULL},
	{NULL, "<special+q@d9.example>", 250, "2.1.5",
	 "maildir /m/special/ <special+q@d9.example>", NULL},
	/* ... and across +tag fallbacks */
	{NULL, "<tagonly+x@d2.example>", 250, "2.1.5",
	 "maildir /m/tag-local/ <tagonly+x@d2.example>", NULL},
	{NULL, "<tagfirst+x@d2.example>", 250, "2.1.5",
	 "maildir /m/tagfirst-exact/ <tagfirst+x@d2.example>", NULL},
	{NULL, "<tagfirst+y@d2.example>", 250, "2.1.5",
	 "maildir /m/tagfirst-base/ <tagfirst+y@d2.example>", NULL},
	/* spelling, quoting, lists with commands and aliases */
	{NULL, "<mixed@d5.example>", 250, "2.1.5",
	 "maildir /m/mixed/ <mixed@d5.example>", NULL},
	{NULL, "<\"a b\"@d5.example>", 250, "2.1.5",
	 "maildir /m/quoted/ <\"a b\"@d5.example>", NULL},
	{NULL, "<list@d5.example>", 250, "2.1.5",
	 "maildir /m/l1/ <list@d5.example>; maildir /m/l2/ <list@d5.example>; "
	 "command /usr/bin/logger -t list <list@d5.example>; "
	 "maildir /m/alias/ <alias>",
	 NULL},
	/* a nested include keeps its place in the order */
	{NULL, "<nested@d8.example>", 250, "2.1.5",
	 "maildir /m/nested/ <nested@d8.example>", NULL},
	{NULL, "<x@d8.example>", 250, "2.1.5", "maildir /m/d8/ <x@d8.example>",
	 NULL},
	{NULL, "<user8@d1.example>", 250, "2.1.5",
	 "maildir /m/u8/ <user8@d1.example>", NULL},
	{NULL, "<after-nested@d5.example>", 250, "2.1.5",
	 "maildir /m/after-nested/ <after-nested@d5.example>", NULL},
	/* an alias in the file, used from outside it */
	{NULL, "<last@d9.example>", 250, "2.1.5", "maildir /m/alias/ <alias>",
	 NULL},
	/* the file's domains are local; others are not */
	{NULL, "<x@d9.example>", 550, "5.7.1", "",
	 "<x@d9.example>: relaying denied"},
	{NULL, "<x@d6.example>", 550, "5.1.1", "", "<x@d6.example>: user unknown"},
	{NULL, "<x@D6.EXAMPLE>", 550, "5.1.1", "", "<x@D6.EXAMPLE>: user unknown"},
	{NULL, "<fresh@d9.example>", 550, "5.7.1", "",
	 "<fresh@d9.example>: relaying denied"},
};

/* A compiled route file answers exactly like its text, and a stale one
 * is ignored with a warning. */
static void test_compiled_index(void **state)
{
	(void)state;
	make_dir();
	struct buf t = {0};
	buf_adds(&t, "# generated\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&t, "user%d@d%d.example /m/u%d/\n", i, i % 7, i);
	buf_adds(&t, "@d3.example /m/d3/\n"
		     "user5000@d3.example /m/shadowed/\n"
		     "special@ /m/special/\n"
		     "special@d1.example /m/special-shadowed/\n"
		     "tagonly@ /m/tag-local/\n"
		     "tagonly+x@d2.example /m/tag-exact/\n"
		     "tagfirst+x@d2.example /m/tagfirst-exact/\n"
		     "tagfirst@d2.example /m/tagfirst-base/\n"
		     "MiXed@D5.Example /m/mixed/\n"
		     "\"\\\"a b\\\"@d5.example\" /m/quoted/\n"
		     "list@d5.example /m/l1/,/m/l2/ , \"|/usr/bin/logger -t list\" "
		     ", alias\n"
		     "file \"nested.rt\"\n"
		     "after-nested@d5.example /m/after-nested/\n"
		     "alias /m/alias/\n");
	write_file(tmp.rt, t.s);
	buf_free(&t);
	write_file(tmp.nested, "nested@d8.example /m/nested/\n"
			       "user8@d1.example /m/nested-shadowed/\n"
			       "@d8.example /m/d8/\n");
	snprintf(tmp.cf, sizeof tmp.cf,
		 "[core]\nhostname = h.example\nrecipient-delimiter = +\n"
		 "user-id = nobody\n" /* --check as root needs it */
		 "[route]\nfirst@d1.example /m/first/\nfile \"%s\"\n"
		 "@d1.example /m/after/\nlast@ alias\n",
		 tmp.rt);
	int bad = 0;

	/* the text, as --check reads it (and then writes the index) */
	struct cf *cf = load_mode(tmp.cf, CF_CHECK);
	assert_non_null(cf->diag.s);
	assert_non_null(strstr(cf->diag.s, "'user5000@d3.example' is never used"));
	assert_non_null(strstr(cf->diag.s, "'special@d1.example' is never used"));
	assert_int_equal(count_type(cf, RE_INDEX), 0);
	bad += CHECK_ALL(cf, index_cases);
	cf_free(cf);
	struct stat st;
	assert_int_equal(stat(tmp.idx, &st), 0);

	/* the index, as a session opens it: one entry stands for the file */
	cf = load_mode(tmp.cf, 0);
	assert_int_equal(cf->nwarnings, 0);
	assert_int_equal(count_type(cf, RE_INDEX), 1);
	assert_int_equal(cf->global_route->table->n, 4);
	bad += CHECK_ALL(cf, index_cases);
	cf_free(cf);

	/* the route file touched, not changed: stale all the same */
	touch(tmp.rt);
	cf = load_mode(tmp.cf, 0);
	assert_non_null(cf->diag.s);
	assert_non_null(strstr(cf->diag.s, "is older than the file"));
	assert_true(cf->nwarnings >= 1);
	assert_int_equal(count_type(cf, RE_INDEX), 0);
	bad += CHECK_ALL(cf, index_cases);
	cf_free(cf);

	/* rebuilt, then the nested file touched: stale too */
	cf_free(load_mode(tmp.cf, CF_CHECK));
	cf = load_mode(tmp.cf, 0);
	assert_int_equal(count_type(cf, RE_INDEX), 1);
	cf_free(cf);
	touch(tmp.nested);
	cf = load_mode(tmp.cf, 0);
	assert_non_null(cf->diag.s);
	assert_non_null(strstr(cf->diag.s, "is older than the file"));
	assert_int_equal(count_type(cf, RE_INDEX), 0);
	cf_free(cf);

	/* a line added after --check: the text, with the new line, is read */
	cf_free(load_mode(tmp.cf, CF_CHECK));
	append_file(tmp.rt, "fresh@d9.example /m/fresh/\n");
	struct rcase fresh = {NULL, "<fresh@d9.example>", 250, "2.1.5",
			      "maildir /m/fresh/ <fresh@d9.example>", NULL};
	cf = load_mode(tmp.cf, 0);
	assert_non_null(cf->diag.s);
	assert_non_null(strstr(cf->diag.s, "is older than the file"));
	assert_int_equal(count_type(cf, RE_INDEX), 0);
	bad += check_one(cf, &fresh, 0, ROUTE_SMTP | ROUTE_UTF8);
	bad += check_one(cf, &index_cases[0], 0, ROUTE_SMTP | ROUTE_UTF8);
	cf_free(cf);
	/* rebuilt: the index has it */
	cf_free(load_mode(tmp.cf, CF_CHECK));
	cf = load_mode(tmp.cf, 0);
	assert_int_equal(cf->nwarnings, 0);
	assert_int_equal(count_type(cf, RE_INDEX), 1);
	bad += check_one(cf, &fresh, 0, ROUTE_SMTP | ROUTE_UTF8);
	cf_free(cf);
	assert_int_equal(bad, 0);
}

/* A route line may have more than 128 words (a long list written with
 * blanks around its commas): the index must answer as the text does. */
static void test_compiled_index_long_line(void **state)
{
	(void)state;
	make_dir();
	struct buf t = {0}, want = {0};
	buf_adds(&t, "big@d.example");
	for (int i = 0; i < 70; i++) {
		buf_printf(&t, " /m/%d/ ,", i);
		buf_printf(&want, "maildir /m/%d/ <big@d.example>; ", i);
	}
	buf_adds(&t, " /m/last/\nother@d.example /m/other/\n");
	buf_adds(&want, "maildir /m/last/ <big@d.example>");
	write_file(tmp.rt, t.s);
	buf_free(&t);
	snprintf(tmp.cf, sizeof tmp.cf,
		 "[core]\nhostname = h.example\nuser-id = nobody\n"
		 "[route]\nfile \"%s\"\n",
		 tmp.rt);
	struct rcase cases[] = {
		{NULL, "<big@d.example>", 250, "2.1.5", want.s, NULL},
		{NULL, "<other@d.example>", 250, "2.1.5",
		 "maildir /m/other/ <other@d.example>", NULL},
		{NULL, "<x@d.example>", 550, "5.1.1", "",
		 "<x@d.example>: user unknown"},
	};
	struct cf *cf = load_mode(tmp.cf, CF_CHECK);
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	cf = load_mode(tmp.cf, 0);
	int indexed = count_type(cf, RE_INDEX);
	bad += CHECK_ALL(cf, cases);
	cf_free(cf);
	buf_free(&want);
	assert_int_equal(indexed, 1);
	assert_int_equal(bad, 0);
}

/* The compiled index keys international domains by their A-labels:
 * either spelling in the file finds either spelling of the recipient,
 * and the file's domains are local in every spelling. */
static void test_compiled_index_idna(void **state)
{
	(void)state;
	make_dir();
	write_file(tmp.rt, "\"@B" U_UE_UP "CHER.test\" /m/buecher/\n"
			   "joe@xn--caf-dma.test /m/joe/\n"
			   "\"ann@m" U_UE "ller.test\" /m/ann/\n");
	snprintf(tmp.cf, sizeof tmp.cf,
		 "[core]\nhostname = h.example\nuser-id = nobody\n"
		 "[route]\nfile \"%s\"\n",
		 tmp.rt);
	static const struct rcase cases[] = {
		{NULL, "<x@xn--bcher-kva.test>", 250, "2.1.5",
		 "maildir /m/buecher/ <x@xn--bcher-kva.test>", NULL},
		{NULL, "<x@b" U_UE "cher.TEST>", 250, "2.1.5",
		 "maildir /m/buecher/ <x@b" U_UE "cher.TEST>", NULL},
		{NULL, "<joe@CAF" U_EA_UP ".test>", 250, "2.1.5",
		 "maildir /m/joe/ <joe@CAF" U_EA_UP ".test>", NULL},
		{NULL, "<ann@XN--MLLER-KVA.test>", 250, "2.1.5",
		 "maildir /m/ann/ <ann@XN--MLLER-KVA.test>", NULL},
		{NULL, "<x@caf" U_EA ".test>", 550, "5.1.1", "",
		 "<x@caf" U_EA ".test>: user unknown"},
		{NULL, "<x@M" U_UE_UP "LLER.test>", 550, "5.1.1", "",
		 "<x@M" U_UE_UP "LLER.test>: user unknown"},
		{NULL, "<x@other.test>", 550, "5.7.1", "",
		 "<x@other.test>: relaying denied"},
	};
	struct cf *cf = load_mode(tmp.cf, CF_CHECK);
	int bad = CHECK_ALL(cf, cases);
	cf_free(cf);
	cf = load_mode(tmp.cf, 0);
	int indexed = count_type(cf, RE_INDEX);
	bad += CHECK_ALL(cf, cases);
	cf_free(cf);
	assert_int_equal(indexed, 1);
	assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------ */
/* The environment routing is given: users and own addresses, stubbed   */

#define FAKE_USER "pmtest-fake-user"

static int fake_user(const char *name, char *out, size_t n)
{
	if (strcmp(name, FAKE_USER))
		return 0;
	snprintf(out, n, "%s", name);
	return 1;
}

/* 192.0.2.77 and 2001:db8::77 are this fake machine's addresses. */
static int fake_own_address(int family, const unsigned char *addr)
{
	static const unsigned char v4[4] = {192, 0, 2, 77};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x77};
	return family == AF_INET ? !memcmp(addr, v4, 4) : !memcmp(addr, v6, 16);
}

static const struct route_env fake_env = {fake_user, fake_own_address};

static void resolve_with(const struct route_env *env, const struct cf *cf,
			 const char *rcpt, int code, const char *dsn,
			 const char *targets)
{
	struct route_result r;
	char got[1024];
	route_resolve_env(env, cf, NULL, rcpt, strlen(rcpt),
			  ROUTE_SMTP | ROUTE_UTF8, &r);
	describe(&r, got, sizeof got);
	if (r.code != code || strcmp(r.dsn, dsn) || strcmp(got, targets))
		print_error("%s: got %d %s \"%s\", expected %d %s \"%s\"\n", rcpt,
			    r.code, r.dsn, got, code, dsn, targets);
	assert_int_equal(r.code, code);
	assert_string_equal(r.dsn, dsn);
	assert_string_equal(got, targets);
	route_result_free(&r);
}

/* System users and the machine's own address literals come only from the
 * environment the caller passes: a stub makes a user and addresses exist
 * that this host does not have, and the host's own answers do not. */
static void test_route_env(void **state)
{
	(void)state;
	struct cf *cf = load("[core]\nhostname = h.example\n");
	const char *user = "local user " FAKE_USER " <" FAKE_USER ">";
	resolve_with(&fake_env, cf, "<" FAKE_USER "@h.example>", 250, "2.1.5",
		     user);
	resolve_with(&fake_env, cf, "<PMTEST-Fake-User@h.example>", 250,
		     "2.1.5", user);
	resolve_with(&fake_env, cf, "<" FAKE_USER "@[192.0.2.77]>", 250,
		     "2.1.5", user);
	resolve_with(&fake_env, cf, "<" FAKE_USER "@[IPv6:2001:db8::77]>", 250,
		     "2.1.5", user);
	resolve_with(&fake_env, cf, "<" FAKE_USER "@[192.0.2.78]>", 550,
		     "5.7.1", "");
	resolve_with(&fake_env, cf, "<root@h.example>", 550, "5.1.1", "");
	/* the host's own answers: no such user, no such address */
	resolve_with(&route_env_system, cf, "<" FAKE_USER "@h.example>", 550,
		     "5.1.1", "");
	resolve_with(&route_env_system, cf, "<" FAKE_USER "@[192.0.2.77]>",
		     550, "5.7.1", "");
	cf_free(cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_site),
		cmocka_unit_test(test_nonascii_without_smtputf8),
		cmocka_unit_test(test_reply_escapes_client_bytes),
		cmocka_unit_test(test_target_sections),
		cmocka_unit_test(test_first_match),
		cmocka_unit_test(test_rewrites),
		cmocka_unit_test(test_rewrite_too_long),
		cmocka_unit_test(test_name_order),
		cmocka_unit_test(test_local_domains),
		cmocka_unit_test(test_idna_domains),
		cmocka_unit_test(test_postmaster_alias),
		cmocka_unit_test(test_postmaster_follows_roots_route),
		cmocka_unit_test(test_recipient_delimiter),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_depth_does_not_depend_on_list_order),
		cmocka_unit_test(test_system_user_case_folded),
		cmocka_unit_test(test_target_limit),
		cmocka_unit_test(test_route_env),
		cmocka_unit_test_teardown(test_compiled_index, remove_dir),
		cmocka_unit_test_teardown(test_compiled_index_idna, remove_dir),
		cmocka_unit_test_teardown(test_compiled_index_long_line,
					  remove_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
