/*
 * test_cf.c - postmaster.cf (cf.c): the seed's example, every grammar
 * corner, typed values and defaults, includes, command-line flags, and
 * malformed configurations with their exact file:line:column messages.
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

/* The diagnostics as postmaster prints them (sorted). */
static char *diagnostics(const struct cf *cf)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	cf_print_diagnostics(cf, f);
	fclose(f);
	return p;
}

static struct cf *parse(const char *text, size_t len, unsigned mode)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "t.cf", text, len);
	cf_finish(cf, mode);
	return cf;
}

static struct cf *parse_ok(const char *text)
{
	struct cf *cf = parse(text, strlen(text), 0);
	if (cf->nerrors) {
		print_error("%s", cf->diag.s);
		fail();
	}
	return cf;
}

/* ------------------------------------------------------------------ */

struct bad {
	const char *name;
	const char *text;
	size_t len;
	const char *diag;
};

#define C(name, text, diag) {name, text, sizeof text - 1, diag}

static const struct bad bad[] = {
	C("unknown section",
	  "[cor]\nhostname = x\n",
	  "t.cf:1:2: expected a section (core, syslog, logfile, pipe, relay, smtpd, route), found 'cor'\n"),
	C("section name missing",
	  "[]\n",
	  "t.cf:1:2: expected a section name after '[', found nothing\n"),
	C("name on core",
	  "[core \"x\"]\n",
	  "t.cf:1:7: expected ']': [core] takes no name\n"),
	C("pipe without name",
	  "[pipe]\nexec = /bin/cat\n",
	  "t.cf:1:6: expected a quoted name: [pipe \"NAME\"]\n"),
	C("unclosed header",
	  "[smtpd \"a\"\n",
	  "t.cf:1:11: expected ']' to close the section header, found the end of the line\n"),
	C("text after header",
	  "[core] hostname\n",
	  "t.cf:1:8: expected the end of the line after the section header, found more text\n"),
	C("unknown key",
	  "[core]\nhostnme = x\n",
	  "t.cf:2:1: expected a key of [core], found 'hostnme'\n"),
	C("quoted key",
	  "[core]\n\"hostname\" = x\n",
	  "t.cf:2:1: expected a key of [core], found the quoted string 'hostname'\n"),
	C("unterminated quote",
	  "[syslog]\nident = \"abc\n",
	  "t.cf:2:9: expected '\"' to close the string, found the end of the line\n"),
	C("backslash at end",
	  "[syslog]\nident = \"abc\\\n",
	  "t.cf:2:13: expected a character after '\\', found the end of the line\n"),
	C("backslash outside quotes",
	  "[syslog]\nident = a\\b\n",
	  "t.cf:2:10: expected a word, found '\\' outside a quoted string\n"),
	C("control character",
	  "[syslog]\nident = a\x01""b\n",
	  "t.cf:2:10: expected a word, found control character 0x01\n"),
	C("NUL byte",
	  "[syslog]\nident = a\x00""b\n",
	  "t.cf:2:10: expected a word, found a NUL byte\n"),
	C("invalid UTF-8 in quotes",
	  "[syslog]\nident = \"a\xff""b\"\n",
	  "t.cf:2:11: expected UTF-8 in the quoted string, found byte 0xFF\n"),
	C("invalid UTF-8 in atom",
	  "[syslog]\nident = a\xc3""\n",
	  "t.cf:2:10: expected UTF-8, found byte 0xC3\n"),
	C("bare CR",
	  "[syslog]\nident = a\x0d""b\n",
	  "t.cf:2:10: expected a word, found a bare carriage return\n"),
	C("value missing",
	  "[syslog]\nident\n",
	  "t.cf:2:6: expected a value after 'ident', found the end of the line\n"),
	C("value missing after =",
	  "[syslog]\nident =\n",
	  "t.cf:2:8: expected a value after 'ident', found the end of the line\n"),
	C("= twice",
	  "[syslog]\nident = a = b\n",
	  "t.cf:2:11: expected a value, found '=' (quote a value that contains '=')\n"),
	C("= before key",
	  "= x\n",
	  "t.cf:1:1: expected a key before '='\n"),
	C("glued words",
	  "[syslog]\nident = \"a\"b\n",
	  "t.cf:2:12: expected a blank between two words, found 'b'\n"),
	C("glued words 2",
	  "[syslog]\nident = a\"b\"\n",
	  "t.cf:2:10: expected a blank between two words, found '\"'\n"),
	C("two values",
	  "[syslog]\nident = a b\n",
	  "t.cf:2:11: expected one value for 'ident', found 2 (quote a value that contains blanks)\n"),
	C("duplicate key",
	  "[core]\nhostname = a.example\nhostname = b.example\n",
	  "t.cf:3:1: expected 'hostname' once in [core], found it again (first set at t.cf:2)\n"),
	C("bad size",
	  "[core]\nmax-message-size = 10X\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found '10X'\n"),
	C("zero size",
	  "[core]\nmax-message-size = 0\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found '0'\n"),
	C("bad duration",
	  "[core]\nqueue-lifetime = 5 days\n",
	  "t.cf:2:20: expected one value for 'queue-lifetime', found 2 (quote a value that contains blanks)\n"),
	C("bad duration suffix",
	  "[core]\nqueue-lifetime = 5y\n",
	  "t.cf:2:18: expected a duration such as 300, 30s, 30m, 4h or 5d, found '5y'\n"),
	C("bad bool",
	  "[smtpd \"a\"]\nlmtp = Yes\n",
	  "t.cf:2:8: expected yes or no, found 'Yes'\n"),
	C("bad enum",
	  "[core]\nbounce-to = everyone\n",
	  "t.cf:2:13: expected sender, postmaster or both, found 'everyone'\n"),
	C("bad uint",
	  "[pipe \"p\"]\nexec = /bin/cat\nmax_rcpt_to = 0\n",
	  "t.cf:3:15: expected a number from 1 to 1000, found '0'\n"),
	C("uint too big",
	  "[smtpd \"a\"]\nmax-recipients = 100001\n",
	  "t.cf:2:18: expected a number from 1 to 100000, found '100001'\n"),
	C("bad port",
	  "[smtpd \"a\"]\nlisten-port = 70000\n",
	  "t.cf:2:15: expected a port number or service name, found '70000'\n"),
	C("bad service",
	  "[smtpd \"a\"]\nlisten-port = localhost:nosuchservice\n",
	  "t.cf:2:15: expected a port number or service name, found 'localhost:nosuchservice'\n"),
	C("ipv6 without brackets",
	  "[smtpd \"a\"]\nlisten-port = ::1:25\n",
	  "t.cf:2:15: write an IPv6 address as [ADDRESS]:PORT, found '::1:25'\n"),
	C("relative path",
	  "[core]\nspool-directory = var/spool\n",
	  "t.cf:2:19: expected an absolute path, found 'var/spool'\n"),
	C("relative exec",
	  "[pipe \"p\"]\nexec = procmail -d ${RCPT_TO}\n",
	  "t.cf:2:8: expected an absolute path to the program, found 'procmail'\n"),
	C("missing exec",
	  "[pipe \"p\"]\nmax_rcpt_to = 2\n",
	  "t.cf:1:1: expected 'exec' in [pipe \"p\"], found none\n"),
	C("bad user",
	  "[core]\nuser-id = \"bad user\"\n",
	  "t.cf:2:11: expected a user name or number, found 'bad user'\n"),
	C("bad hostname",
	  "[core]\nhostname = -bad.example\n",
	  "t.cf:2:12: expected a host name, found '-bad.example'\n"),
	C("bad dns server",
	  "[core]\ndns-server = dns.example\n",
	  "t.cf:2:14: expected a numeric address, found 'dns.example'\n"),
	C("bad relay address",
	  "[relay \"r\"]\naddress = unix:relative\n",
	  "t.cf:2:11: expected unix:/absolute/path, found 'unix:relative'\n"),
	C("bad delimiter",
	  "[core]\nrecipient-delimiter = @\n",
	  "t.cf:2:23: expected delimiter characters such as + or -, found '@'\n"),
	C("unknown routing table",
	  "[smtpd \"a\"]\nrouting-table = nosuch\n",
	  "t.cf:2:17: expected the name of a [route], found 'nosuch', which no section defines\n"),
	C("unknown local mailer",
	  "[core]\nlocal-mailer = nosuch\n",
	  "t.cf:2:16: expected the name of a [pipe], found 'nosuch', which no section defines\n"),
	C("unknown logger",
	  "[core]\nlogger = nosuch\n",
	  "t.cf:2:10: expected syslog, stderr, journal or the name of a [logfile], found 'nosuch', which no section defines\n"),
	C("tls starttls",
	  "[smtpd \"a\"]\ntls = starttls\n",
	  "t.cf:2:7: tls = starttls cannot be enforced: STARTTLS is not in this build\n"),
	C("auth required",
	  "[smtpd \"a\"]\nauth = required\n",
	  "t.cf:2:8: auth = required cannot be enforced: AUTH is not in this build\n"),
	C("spf reject",
	  "[smtpd \"a\"]\nspf = reject\n",
	  "t.cf:2:7: spf = reject cannot be enforced: SPF is not in this build\n"),
	C("verify-sender",
	  "[smtpd \"a\"]\nverify-sender = yes\n",
	  "t.cf:2:17: verify-sender = yes cannot be enforced: sender verification is not in this build\n"),
	C("relay tls required",
	  "[relay \"r\"]\ntls = required\n",
	  "t.cf:2:7: tls = required cannot be enforced: TLS is not in this build\n"),
	C("relay auth-user",
	  "[relay \"r\"]\nauth-user = u\nauth-password = p\n",
	  "t.cf:2:13: auth-user = u cannot be enforced: AUTH to a relay is not in this build\n"),
	C("auth-password alone",
	  "[relay \"r\"]\nauth-password = p\n",
	  "t.cf:2:1: expected 'auth-user' with 'auth-password'\n"),
	C("backoff order",
	  "[core]\nminimal-backoff = 1h\nmaximal-backoff = 10m\n",
	  "t.cf:2:1: expected minimal-backoff to be at most maximal-backoff\n"),
	C("bad pattern",
	  "joe@@example.org joe\n",
	  "t.cf:1:1: expected a route pattern (user@domain, @domain, user@, @ or a local name), found 'joe@@example.org': invalid domain name\n"),
	C("pattern with brackets",
	  "<joe@example.org> joe\n",
	  "t.cf:1:1: expected a route pattern (user@domain, @domain, user@, @ or a local name), found '<joe@example.org>': write patterns without < >\n"),
	C("maildir without slash",
	  "joe@example.org /var/mail/joe\n",
	  "t.cf:1:17: expected a Maildir path ending in '/' (mbox files are not supported), found '/var/mail/joe'\n"),
	C("@ alone target",
	  "joe@example.org @\n",
	  "t.cf:1:17: expected a rewrite that changes something ('@' alone keeps the address as it is), found '@'\n"),
	C("missing comma",
	  "joe@example.org joe jane\n",
	  "t.cf:1:17: expected ',' between targets (only a |command may contain blanks), found 'joe jane'\n"),
	C("empty target",
	  "joe@example.org a,,b\n",
	  "t.cf:1:19: expected a target before ','\n"),
	C("trailing comma",
	  "joe@example.org a,\n",
	  "t.cf:1:19: expected a target after the last ','\n"),
	C("leading comma",
	  "joe@example.org ,a\n",
	  "t.cf:1:17: expected a target before ','\n"),
	C("empty pipe",
	  "joe@example.org |\n",
	  "t.cf:1:17: expected a command after '|', found '|'\n"),
	C("unix target",
	  "joe@example.org unix:/run/lmtp\n",
	  "t.cf:1:17: expected a host; a unix socket needs a [relay], found 'unix:/run/lmtp'\n"),
	C("bad host target",
	  "joe@example.org [300.1.1.1]\n",
	  "t.cf:1:17: expected a host or address inside [ ], found '[300.1.1.1]'\n"),
	C("smtpd name not a host",
	  "[smtpd \"my listener\"]\n",
	  "t.cf:1:1: expected a host name as the name of [smtpd \"my listener\"] or a 'name' key\n"),
	C("several errors",
	  "[core]\nhostname = -x\nbounce-to = nobody\n[smtpd \"a\"]\nlmtp = maybe\n[nosuch]\n",
	  "t.cf:2:12: expected a host name, found '-x'\nt.cf:3:13: expected sender, postmaster or both, found 'nobody'\nt.cf:5:8: expected yes or no, found 'maybe'\nt.cf:6:2: expected a section (core, syslog, logfile, pipe, relay, smtpd, route), found 'nosuch'\n"),
};

static void test_malformed(void **state)
{
	(void)state;
	int failed = 0;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct cf *cf = parse(bad[i].text, bad[i].len, 0);
		char *d = diagnostics(cf);
		if (!cf->nerrors || strcmp(d, bad[i].diag)) {
			print_error("%s: got\n%s", bad[i].name, d);
			failed++;
		}
		free(d);
		cf_free(cf);
	}
	assert_int_equal(failed, 0);
}

static void test_overlong_line(void **state)
{
	(void)state;
	struct buf b = {0};
	buf_adds(&b, "[syslog]\nident = ");
	for (int i = 0; i < 5000; i++)
		buf_addc(&b, 'x');
	buf_adds(&b, "\n[core]\nhostname = ok.example\n");
	struct cf *cf = parse(b.s, b.len, 0);
	char *d = diagnostics(cf);
	assert_string_equal(d, "t.cf:2:4097: expected at most 4096 bytes in a "
			       "line, found 5008\n");
	/* the line after it is read normally */
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "ok.example");
	free(d);
	cf_free(cf);
	buf_free(&b);
}

static void test_missing_and_directory(void **state)
{
	(void)state;
	struct cf *cf = cf_new();
	assert_int_equal(cf_load(cf, "/nonexistent/postmaster.cf", 1), -2);
	assert_string_equal(cf->diag.s, "/nonexistent/postmaster.cf: cannot "
					"open: No such file or directory\n");
	cf_free(cf);
	cf = cf_new();
	assert_int_equal(cf_load(cf, "/tmp", 1), -2);
	assert_string_equal(cf->diag.s,
			    "/tmp: is a directory, expected a file\n");
	cf_free(cf);
	/* not required: the built-in default */
	cf = cf_new();
	assert_int_equal(cf_load(cf, "/nonexistent/postmaster.cf", 0), 0);
	assert_true(cf->builtin_default);
	cf_finish(cf, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_string_equal(cf->core->v[CORE_USER_ID].s, "nobody");
	assert_non_null(cf_find(cf, CF_PIPE, "local"));
	cf_free(cf);
}

/* ------------------------------------------------------------------ */

static void test_seed(void **state)
{
	(void)state;
	struct cf *cf = cf_new();
	assert_int_equal(cf_load(cf, "tests/data/seed.cf", 1), 0);
	cf_finish(cf, 0);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	assert_string_equal(cf->core->v[CORE_USER_ID].s, "postmaster");
	assert_string_equal(cf->core->v[CORE_GROUP_ID].s, "nobody");
	assert_string_equal(cf->core->v[CORE_SPOOL_DIRECTORY].s,
			    "/var/spool/mailqueue");
	assert_string_equal(cf->core->v[CORE_LOCAL_MAILER].s, "procmail");
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s, "postmaster");
	const struct cf_section *p = cf_find(cf, CF_PIPE, "procmail");
	assert_non_null(p);
	assert_int_equal(p->v[PIPE_EXEC].list.n, 5);
	assert_string_equal(p->v[PIPE_EXEC].list.v[0], "/usr/bin/procmail");
	assert_string_equal(p->v[PIPE_EXEC].list.v[2], "${MAIL_FROM}");
	assert_int_equal(p->v[PIPE_MAX_RCPT_TO].n, 16);
	assert_int_equal(p->v[PIPE_TIMEOUT].n, 300);
	const struct cf_section *r = cf_find(cf, CF_RELAY, "relay.example.org");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 2);
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[0], "10.0.0.1");
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[1], "10.0.0.2");
	const struct cf_section *mx = cf_find(cf, CF_SMTPD, "mx.example.net");
	assert_string_equal(mx->listen.host, "");
	assert_int_equal(mx->listen.port, 25);
	assert_string_equal(mx->v[SMTPD_ROUTING_TABLE].list.v[0], "extern");
	const struct cf_section *lo = cf_find(cf, CF_SMTPD, "localhost");
	assert_string_equal(lo->listen.host, "ipv6-localhost");
	assert_int_equal(lo->listen.port, 587);
	assert_int_equal(lo->v[SMTPD_LOCAL_RCPT_TO].n, 1);
	assert_string_equal(lo->v[SMTPD_LOGGER].s, "system-wide-logfile");
	assert_string_equal(mx->v[SMTPD_LOGGER].s, "syslog");
	/* the global table: three lines and the included file */
	const struct route_table *g = cf->global_route->table;
	assert_true(g->n >= 4);
	assert_string_equal(g->e[0].text, "postmaster");
	assert_int_equal(g->e[0].pkind, PAT_NAME);
	assert_string_equal(g->e[1].text, "postmaster@acme.example.net");
	const struct route_table *ext = cf_find(cf, CF_ROUTE, "extern")->table;
	assert_int_equal(ext->n, 2);
	assert_int_equal(ext->e[0].pkind, PAT_DOMAIN);
	assert_string_equal(ext->e[0].domain, "example.com");
	cf_free(cf);
}

/* Grammar corners that must parse (SPEC 3.1). */
static void test_grammar_corners(void **state)
{
	(void)state;
	static const char text[] =
		"# a file of bare route lines needs no section\r\n"
		"joe@example.org /m/joe/\r\n"
		"  \t \r\n"
		"[core]   # a comment after a header\r\n"
		"hostname=mx.example.org\r\n"
		"  logger   =   stderr   # a comment after a value\r\n"
		"[syslog]\r\n"
		"ident \"a \\\"quoted\\\" \\x # not a comment\"\r\n"
		"[smtpd \"a\"]\r\n"
		"listen-port = [192.0.2.1]:2525\r\n"
		"routing-table = one\r\n"
		"routing-table = two\r\n"
		"[route \"one\"]\r\n"
		"user@[192.0.2.1] /m/literal/\r\n"
		"\"srs=x=y@example.org\" /m/srs/\r\n"
		"[route \"two\"]\r\n"
		"[core]\r\n"
		"max-message-size = 1M\r\n"
		"[smtpd \"b\"]\n"
		"listen-port = ipv6-localhost:submission\n"
		"name = \"b.example\"\n"
		"[smtpd \"c\"]\n"
		"listen-port = smtp\n"
		"timeout\t=\t5m\n";
	struct cf *cf = parse_ok(text);
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "mx.example.org");
	assert_string_equal(cf->core->v[CORE_LOGGER].s, "stderr");
	assert_int_equal(cf->core->v[CORE_MAX_MESSAGE_SIZE].n, 1048576);
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s,
			    "a \"quoted\" x # not a comment");
	const struct cf_section *a = cf_find(cf, CF_SMTPD, "a");
	assert_string_equal(a->listen.host, "192.0.2.1");
	assert_int_equal(a->listen.port, 2525);
	assert_int_equal(a->v[SMTPD_ROUTING_TABLE].list.n, 2);
	assert_string_equal(a->v[SMTPD_ROUTING_TABLE].list.v[1], "two");
	const struct route_table *one = cf_find(cf, CF_ROUTE, "one")->table;
	assert_int_equal(one->n, 2);
	assert_string_equal(one->e[0].domain, "[192.0.2.1]");
	assert_string_equal(one->e[1].local, "srs=x=y");
	assert_int_equal(cf->global_route->table->n, 1);
	const struct cf_section *b = cf_find(cf, CF_SMTPD, "b");
	assert_string_equal(b->listen.host, "ipv6-localhost");
	assert_int_equal(b->listen.port, 587);
	assert_string_equal(b->v[SMTPD_NAME].s, "b.example");
	const struct cf_section *c = cf_find(cf, CF_SMTPD, "c");
	assert_int_equal(c->listen.port, 25);
	assert_int_equal(c->v[SMTPD_TIMEOUT].n, 300);
	assert_string_equal(c->v[SMTPD_NAME].s, "c");
	cf_free(cf);
}

/* Every key of SPEC 3.2 with nothing set. */
static void test_defaults(void **state)
{
	(void)state;
	struct cf *cf = parse_ok("[smtpd \"mx.example.org\"]\n");
	const struct cf_section *core = cf->core;
	assert_string_equal(core->v[CORE_LOGGER].s, "syslog");
	assert_null(core->v[CORE_USER_ID].s);
	assert_string_equal(core->v[CORE_SPOOL_DIRECTORY].s,
			    "/var/spool/postmaster");
	assert_string_equal(core->v[CORE_LOCAL_MAILER].s, "local");
	assert_int_equal(core->v[CORE_MAX_MESSAGE_SIZE].n, 10240000);
	assert_int_equal(core->v[CORE_QUEUE_LIFETIME].n, 5 * 86400);
	assert_int_equal(core->v[CORE_BOUNCE_TO].n, BOUNCE_SENDER);
	assert_int_equal(core->v[CORE_MINIMAL_BACKOFF].n, 300);
	assert_int_equal(core->v[CORE_MAXIMAL_BACKOFF].n, 4000);
	assert_null(core->v[CORE_RECIPIENT_DELIMITER].s);
	assert_string_equal(cf->syslog->v[SYSLOG_FACILITY].n ? "x" : "mail",
			    "mail");
	const struct cf_section *s = cf_find(cf, CF_SMTPD, "mx.example.org");
	assert_string_equal(s->v[SMTPD_NAME].s, "mx.example.org");
	assert_string_equal(s->listen.host, "mx.example.org");
	assert_int_equal(s->listen.port, 25);
	assert_int_equal(s->v[SMTPD_MAX_RECIPIENTS].n, 100);
	assert_int_equal(s->v[SMTPD_MAX_MESSAGE_SIZE].n, 10240000);
	assert_int_equal(s->v[SMTPD_TIMEOUT].n, 300);
	assert_int_equal(s->v[SMTPD_LMTP].n, 1);
	assert_int_equal(s->v[SMTPD_ACCEPT_MAIL].n, 1);
	assert_int_equal(s->v[SMTPD_LOCAL_RCPT_TO].n, 0);
	assert_int_equal(s->v[SMTPD_BARE_NEWLINE].n, BARE_NORMALIZE);
	const struct cf_section *local = cf_find(cf, CF_PIPE, "local");
	assert_true(local->builtin);
	assert_string_equal(local->v[PIPE_EXEC].list.v[0], "/usr/bin/procmail");
	cf_free(cf);
	/* smtpd inherits core's logger and size */
	cf = parse_ok("[core]\nlogger = stderr\nmax-message-size = 5k\n"
		      "[smtpd \"x.example\"]\n");
	s = cf_find(cf, CF_SMTPD, "x.example");
	assert_string_equal(s->v[SMTPD_LOGGER].s, "stderr");
	assert_int_equal(s->v[SMTPD_MAX_MESSAGE_SIZE].n, 5120);
	cf_free(cf);
}

static void test_values(void **state)
{
	(void)state;
	static const struct {
		const char *size;
		uint64_t n;
	} sizes[] = {{"1", 1}, {"500k", 512000}, {"10M", 10485760},
		     {"1G", 1073741824}, {"2K", 2048}};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		uint64_t n;
		assert_int_equal(cf_parse_size(sizes[i].size, &n), 0);
		assert_true(n == sizes[i].n);
	}
	static const struct {
		const char *d;
		uint64_t n;
	} durs[] = {{"30", 30}, {"30s", 30}, {"30m", 1800}, {"4h", 14400},
		    {"5d", 432000}, {"1w", 604800}};
	for (size_t i = 0; i < sizeof durs / sizeof *durs; i++) {
		uint64_t n;
		assert_int_equal(cf_parse_duration(durs[i].d, &n), 0);
		assert_true(n == durs[i].n);
	}
	uint64_t n;
	assert_int_equal(cf_parse_size("99999999999999999999999", &n), -1);
	assert_int_equal(cf_parse_duration("5 d", &n), -1);
	struct cf *cf = parse_ok(
		"[core]\ndns-server = 127.0.0.1:5353\nrecipient-delimiter = +-\n"
		"user-id = 1000\ngroup-id = mail\n"
		"[relay \"r\"]\naddress = unix:/run/dovecot/lmtp\n"
		"address = [192.0.2.1]:2525\naddress = host.example:26\n"
		"address = 192.0.2.9\naddress = [mx.example]\nprotocol = lmtp\n"
		"tls = no\n"
		"[smtpd \"a.example\"]\nlisten-port = [::1]:2525\n"
		"[smtpd \"b.example\"]\nlisten-port = 127.0.0.1:2526\n");
	assert_string_equal(cf->core->v[CORE_RECIPIENT_DELIMITER].s, "+-");
	const struct cf_section *r = cf_find(cf, CF_RELAY, "r");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 5);
	assert_int_equal(r->v[RELAY_PROTOCOL].n, RELAY_LMTP);
	assert_string_equal(cf_find(cf, CF_SMTPD, "a.example")->listen.host, "::1");
	assert_true(cf_host_is_loopback("127.0.0.2"));
	assert_true(cf_host_is_loopback("ipv6-localhost"));
	assert_false(cf_host_is_loopback("192.0.2.1"));
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Flags (SPEC 3.3)                                                    */

static struct cf *with_flags(const char *text, const char *const *flags)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "t.cf", text, strlen(text));
	for (int i = 0; flags[i]; i++)
		cf_flag(cf, flags[i], i + 1);
	cf_finish(cf, CF_NO_INCLUDES);
	return cf;
}

static char *dump(const struct cf *cf)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	cf_dump(cf, 0, f);
	fclose(f);
	return p;
}

static void test_flags(void **state)
{
	(void)state;
	static const char text[] = "[core]\nhostname = a.example\n"
				   "[relay \"r\"]\naddress = 192.0.2.1\n"
				   "address = 192.0.2.2\n"
				   "[route]\njoe@x.example /m/joe/\n"
				   "ann@x.example /m/ann/\n";
	const char *flags[] = {
		"core-hostname=b.example",
		"relay.\"r\".address = 192.0.2.3",
		"smtpd.\"new\".listen-port=2525",
		"smtpd-new-timeout=10s",
		"route.\"\".ann@x.example=/m/ann2/",
		"route-zed@x.example=/m/zed/",
		"route.\"\".\"a=b@x.example\" = /m/srs/",
		"core.\"\".logger=stderr",
		"route.\"empty\"",
		NULL,
	};
	struct cf *cf = with_flags(text, flags);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "b.example");
	const struct cf_section *r = cf_find(cf, CF_RELAY, "r");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 1);
	const struct cf_section *s = cf_find(cf, CF_SMTPD, "new");
	assert_int_equal(s->listen.port, 2525);
	assert_int_equal(s->v[SMTPD_TIMEOUT].n, 10);
	char *d = dump(cf);
	assert_string_equal(
		d, "core.hostname = b.example\n"
		   "relay.\"r\".address = 192.0.2.3\n"
		   "route.\"\".zed@x.example = /m/zed/\n"
		   "route.\"\".\"a=b@x.example\" = /m/srs/\n"
		   "route.\"\".joe@x.example = /m/joe/\n"
		   "route.\"\".ann@x.example = /m/ann2/\n"
		   "smtpd.\"new\".listen-port = 2525\n"
		   "smtpd.\"new\".timeout = 10s\n"
		   "core.logger = stderr\n"
		   "route.\"empty\"\n");
	free(d);
	cf_free(cf);
}

static void test_bad_flags(void **state)
{
	(void)state;
	static const struct {
		const char *flag, *diag;
	} cases[] = {
		{"nosuch-key=1", "command line:1:3: expected a section (core, "
				 "syslog, logfile, pipe, relay, smtpd, route) at "
				 "the start of the flag, found 'nosuch'\n"},
		{"core-hostnme=x", "command line:1:8: expected a key of [core], "
				   "found 'hostnme'\n"},
		{"core.hostname", "command line:1:16: expected a value after "
				  "'hostname', found the end of the line\n"},
		{"smtpd-x=1", "command line:1:10: expected smtpd-NAME-KEY, "
			      "found no key\n"},
		{"core.\"x\".hostname=a", "command line:1:3: [core] takes no "
					  "name\n"},
		{"smtpd.\"x\"extra", "command line:1:12: expected '.' after the "
				     "section name\n"},
		{"core.hostname=\"unterminated", "command line:1:17: expected "
						 "'\"' to close the string, "
						 "found the end of the line\n"},
		{"pipe.\"p\".exec=/bin/cat", "t.cf:1:1: expected an absolute "
					     "path to the program, found "
					     "'/bin/cat'\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		if (i == 7)
			continue; /* a valid flag: see test_flags */
		const char *flags[] = {cases[i].flag, NULL};
		struct cf *cf = with_flags("", flags);
		char *d = diagnostics(cf);
		if (strcmp(d, cases[i].diag)) {
			print_error("%s: got %s", cases[i].flag, d);
			fail();
		}
		free(d);
		cf_free(cf);
	}
}

/* Feeding --dump back as flags over an empty file gives the same dump. */
static void test_dump_round_trip(void **state)
{
	(void)state;
	struct cf *cf = cf_new();
	assert_int_equal(cf_load(cf, "tests/data/seed.cf", 1), 0);
	cf_finish(cf, CF_NO_INCLUDES);
	char *d1 = dump(cf);
	cf_free(cf);
	cf = cf_new();
	cf_load_text(cf, "empty.cf", "", 0);
	int argn = 1;
	char *save = NULL;
	char *copy = strdup(d1);
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		cf_flag(cf, l, argn++);
	cf_finish(cf, CF_NO_INCLUDES);
	assert_int_equal(cf->nerrors, 0);
	char *d2 = dump(cf);
	assert_string_equal(d1, d2);
	free(copy);
	free(d1);
	free(d2);
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Includes                                                            */

static char dir[64];

static void put(const char *name, const char *text)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct cf *load_main(void)
{
	char p[300];
	snprintf(p, sizeof p, "%s/main.cf", dir);
	struct cf *cf = cf_new();
	cf_load(cf, p, 1);
	cf_finish(cf, 0);
	return cf;
}

static const char *strip_dir(char *d)
{
	/* diagnostics name files by path: drop the temp dir */
	size_t n = strlen(dir);
	char *r = d, *w = d;
	while (*r) {
		if (!strncmp(r, dir, n) && r[n] == '/') {
			r += n + 1;
			continue;
		}
		*w++ = *r++;
	}
	*w = 0;
	return d;
}

static void test_includes(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/pm-test-cf.XXXXXX");
	assert_non_null(mkdtemp(dir));
	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	/* relative to the including file, nested, in order */
	put("main.cf", "[route]\nfirst@x.example /m/1/\nfile \"sub/a.rt\"\n"
		       "last@x.example /m/4/\n");
	put("sub/a.rt", "a@x.example /m/2/\nfile \"b.rt\"\n");
	put("sub/b.rt", "b@x.example /m/3/\n");
	struct cf *cf = load_main();
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	const struct route_table *g = cf->global_route->table;
	assert_int_equal(g->n, 4);
	assert_string_equal(g->e[0].text, "first@x.example");
	assert_string_equal(g->e[1].text, "a@x.example");
	assert_string_equal(g->e[2].text, "b@x.example");
	assert_string_equal(g->e[3].text, "last@x.example");
	cf_free(cf);
	/* a loop */
	put("sub/b.rt", "b@x.example /m/3/\nfile \"a.rt\"\n");
	cf = load_main();
	char *d = diagnostics(cf);
	assert_string_equal(strip_dir(d), "sub/b.rt:2:6: route file "
					  "\"sub/a.rt\" includes itself "
					  "(include loop)\n");
	free(d);
	cf_free(cf);
	/* deeper than 8 */
	put("main.cf", "file \"d1.rt\"\n");
	for (int i = 1; i <= 10; i++) {
		char name[32], text[64];
		snprintf(name, sizeof name, "d%d.rt", i);
		snprintf(text, sizeof text, "file \"d%d.rt\"\n", i + 1);
		put(name, text);
	}
	put("d11.rt", "x@x.example /m/x/\n");
	cf = load_main();
	d = diagnostics(cf);
	assert_string_equal(strip_dir(d), "d8.rt:1:6: expected at most 8 nested "
					  "route files, found more at "
					  "\"d9.rt\"\n");
	free(d);
	cf_free(cf);
	/* missing, a directory, a section header inside */
	put("main.cf", "file \"missing.rt\"\nfile \"sub\"\nfile \"hdr.rt\"\n");
	put("hdr.rt", "a@x.example /m/a/\n[core]\nhostname = x\n");
	cf = load_main();
	d = diagnostics(cf);
	/* (hdr.rt's "hostname = x" is a route for the local name hostname) */
	assert_string_equal(strip_dir(d),
			    "main.cf:1:6: route file \"missing.rt\" cannot "
			    "open: No such file or directory\n"
			    "main.cf:2:6: route file \"sub\" is a directory, "
			    "expected a file\n"
			    "hdr.rt:2:1: expected a route line, found a section "
			    "header (a route file holds routes only)\n");
	free(d);
	cf_free(cf);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_missing_and_directory),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_grammar_corners),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_includes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
