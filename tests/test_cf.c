/*
 * test_cf.c - postmaster.cf (cf.c, SPEC 3): the seed's example, every
 * grammar corner, every value type with good and bad values, references,
 * policies this build cannot enforce, defaults, route includes, command-line
 * flags, --dump, and malformed configurations with their exact
 * file:line:column messages (each column checked by hand against the text).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* The diagnostics as postmaster prints them (sorted by file, line, col). */
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
	finish_config(cf, mode);
	return cf;
}

static struct cf *parse_ok(const char *text)
{
	struct cf *cf = parse(text, strlen(text), 0);
	if (cf->nerrors || cf->nwarnings) {
		print_error("unexpected diagnostics:\n%s", cf->diag.s);
		fail();
	}
	return cf;
}

/* The targets of a route line, as one string "w1 w2 ...". */
static const char *targets(const struct cf *cf, const struct route_entry *e)
{
	static char s[512];
	size_t n = 0;
	s[0] = 0;
	for (uint32_t i = 0; i < e->nw && n < sizeof s; i++)
		n += (size_t)snprintf(s + n, sizeof s - n, "%s%s", i ? " " : "",
				      cf->words[e->w0 + i].s);
	return s;
}

static const struct route_table *table(const struct cf *cf, const char *name)
{
	const struct cf_section *s = cf_find(cf, CF_ROUTE, name);
	assert_non_null(s);
	assert_non_null(s->table);
	return s->table;
}

static void assert_route(const struct cf *cf, const struct route_entry *e,
			 const char *pattern, const char *tg)
{
	assert_int_equal(e->type, RE_LINE);
	assert_string_equal(e->text, pattern);
	assert_string_equal(targets(cf, e), tg);
}

/* ------------------------------------------------------------------ */
/* Temporary directories for files                                     */

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/pm-test-cf.XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void copy_in(const char *from, const char *name)
{
	char buf[4096];
	FILE *in = fopen(from, "r");
	assert_non_null(in);
	size_t n = fread(buf, 1, sizeof buf - 1, in);
	fclose(in);
	buf[n] = 0;
	put(name, buf);
}

static struct cf *load_in_dir(const char *name, unsigned mode)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	struct cf *cf = cf_new();
	cf_load(cf, p, 1);
	finish_config(cf, mode);
	return cf;
}

/* Diagnostics name files by path: drop the temporary directory. */
static char *strip_dir(char *d)
{
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

/* ------------------------------------------------------------------ */
/* The seed's example configuration                                    */

static void test_seed(void **state)
{
	(void)state;
	/* a copy, so that no compiled index left in tests/data is used */
	make_dir();
	copy_in("tests/data/seed.cf", "seed.cf");
	copy_in("tests/data/seed.rt", "seed.rt");
	struct cf *cf = load_in_dir("seed.cf", 0);
	if (cf->nerrors || cf->nwarnings)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(cf->nwarnings, 0);

	const struct cf_section *core = cf->core;
	assert_string_equal(core->v[CORE_LOGGER].s, "syslog");
	assert_string_equal(core->v[CORE_USER_ID].s, "postmaster");
	assert_string_equal(core->v[CORE_GROUP_ID].s, "nobody");
	assert_string_equal(core->v[CORE_PID_FILE].s, "/var/run/postmaster.pid");
	assert_string_equal(core->v[CORE_SPOOL_DIRECTORY].s,
			    "/var/spool/mailqueue");
	assert_string_equal(core->v[CORE_LOCAL_MAILER].s, "procmail");
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s, "postmaster");
	assert_int_equal(cf->syslog->v[SYSLOG_FACILITY].n, 0); /* mail */
	const struct cf_section *lf = cf_find(cf, CF_LOGFILE,
					      "system-wide-logfile");
	assert_non_null(lf);
	assert_string_equal(lf->v[LOGFILE_FILE].s,
			    "/var/log/postmaster-%Y-%m-%d");

	const struct cf_section *p = cf_find(cf, CF_PIPE, "procmail");
	assert_non_null(p);
	assert_false(p->builtin);
	assert_int_equal(p->v[PIPE_EXEC].list.n, 5);
	static const char *const argv[] = {"/usr/bin/procmail", "-f",
					   "${MAIL_FROM}", "-d", "${RCPT_TO}"};
	for (int i = 0; i < 5; i++)
		assert_string_equal(p->v[PIPE_EXEC].list.v[i], argv[i]);
	assert_null(p->v[PIPE_EXEC].list.v[5]);
	assert_int_equal(p->v[PIPE_MAX_RCPT_TO].n, 16);
	assert_int_equal(p->v[PIPE_TIMEOUT].n, 300);

	const struct cf_section *r = cf_find(cf, CF_RELAY, "relay.example.org");
	assert_non_null(r);
	assert_string_equal(r->v[RELAY_NAME].s, "relay.example.org");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 2);
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[0], "10.0.0.1");
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[1], "10.0.0.2");
	assert_int_equal(r->v[RELAY_PROTOCOL].n, RELAY_SMTP);

	uint32_t n;
	struct cf_section **l = cf_listeners(cf, &n);
	assert_int_equal(n, 2);
	assert_string_equal(l[0]->name, "mx.example.net");
	assert_string_equal(l[1]->name, "localhost");
	free(l);
	const struct cf_section *mx = cf_find(cf, CF_SMTPD, "mx.example.net");
	assert_string_equal(mx->v[SMTPD_NAME].s, "mx.example.net");
	assert_string_equal(mx->listen.host, "");
	assert_int_equal(mx->listen.port, 25);
	assert_int_equal(mx->v[SMTPD_ROUTING_TABLE].list.n, 1);
	assert_string_equal(mx->v[SMTPD_ROUTING_TABLE].list.v[0], "extern");
	assert_string_equal(mx->v[SMTPD_LOGGER].s, "syslog");
	assert_int_equal(mx->v[SMTPD_LOCAL_RCPT_TO].n, 0);
	const struct cf_section *lo = cf_find(cf, CF_SMTPD, "localhost");
	assert_string_equal(lo->v[SMTPD_NAME].s, "localhost");
	assert_string_equal(lo->listen.host, "ipv6-localhost");
	assert_int_equal(lo->listen.port, 587);
	assert_string_equal(lo->v[SMTPD_ROUTING_TABLE].list.v[0],
			    "local-routes");
	assert_string_equal(lo->v[SMTPD_LOGGER].s, "system-wide-logfile");
	assert_int_equal(lo->v[SMTPD_LOCAL_RCPT_TO].n, 1);

	/* the global table: its three lines, then the included file's */
	const struct route_table *g = table(cf, NULL);
	assert_ptr_equal(g, cf->global_route->table);
	assert_int_equal(g->n, 8);
	assert_route(cf, &g->e[0], "postmaster", "joe");
	assert_int_equal(g->e[0].pkind, PAT_NAME);
	assert_route(cf, &g->e[1], "postmaster@acme.example.net", "postmaster");
	assert_int_equal(g->e[1].pkind, PAT_ADDR);
	assert_route(cf, &g->e[2], "postmaster@acme.example.org", "postmaster");
	assert_route(cf, &g->e[3], "joe@example.org", "joe");
	assert_route(cf, &g->e[4], "joe.doe@example.org", "joe");
	assert_route(cf, &g->e[5], "jane@example.org", "jane");
	assert_route(cf, &g->e[6], "jane.dow@example.org", "jane");
	assert_route(cf, &g->e[7], "acme@list.example.org",
		     "joe, jane, acme-archive@, @mirror.example.net");
	assert_int_equal(g->e[3].pos.line, 2);
	char *f = strip_dir(strdup(g->e[3].pos.file));
	assert_string_equal(f, "seed.rt");
	free(f);
	const struct route_table *ext = table(cf, "extern");
	assert_int_equal(ext->n, 2);
	assert_route(cf, &ext->e[0], "@example.com", "@example.org");
	assert_int_equal(ext->e[0].pkind, PAT_DOMAIN);
	assert_string_equal(ext->e[0].domain, "example.com");
	assert_route(cf, &ext->e[1], "@example.org", "mx.example.net");
	assert_int_equal(ext->e[1].pos.line, 45);
	const struct route_table *lr = table(cf, "local-routes");
	assert_int_equal(lr->n, 4);
	assert_route(cf, &lr->e[0], "root@", "postmaster");
	assert_int_equal(lr->e[0].pkind, PAT_LOCAL);
	assert_route(cf, &lr->e[1], "bin@", "postmaster");
	assert_route(cf, &lr->e[2], "cron@", "postmaster");
	assert_route(cf, &lr->e[3], "games@", "postmaster");
	cf_free(cf);
	remove_dir();
}

/* ------------------------------------------------------------------ */
/* Malformed configurations: the exact diagnostics                     */

struct bad {
	const char *name;
	const char *text;
	size_t len;
	const char *diag;
};

#define C(name, text, diag) {name, text, sizeof text - 1, diag}
#define SECTIONS "(core, syslog, logfile, pipe, relay, milter, smtpd, route)"
#define PATTERN "expected a route pattern (user@domain, @domain, user@, @ " \
		"or a local name), found "

static const struct bad bad[] = {
	/* section headers */
	C("unknown section", "[cor]\nhostname = x\n",
	  "t.cf:1:2: expected a section " SECTIONS ", found 'cor'\n"),
	C("lines after a broken header are not reported again",
	  "[bogus]\nfoo = bar\nbaz\n[core]\nhostname = ok.example\n",
	  "t.cf:1:2: expected a section " SECTIONS ", found 'bogus'\n"),
	C("section name missing", "[]\n",
	  "t.cf:1:2: expected a section name after '[', found ']'\n"),
	C("section name missing, blanks", "[ ]\n",
	  "t.cf:1:3: expected a section name after '[', found ']'\n"),
	C("lone [", "[\n",
	  "t.cf:1:2: expected a section name after '[', found the end of the "
	  "line\n"),
	C("name on core", "[core \"x\"]\n",
	  "t.cf:1:7: expected ']': [core] takes no name\n"),
	C("name on syslog", "[syslog \"x\"]\nident = a\n",
	  "t.cf:1:9: expected ']': [syslog] takes no name\n"),
	C("pipe without name", "[pipe]\nexec = /bin/cat\n",
	  "t.cf:1:6: expected a quoted name: [pipe \"NAME\"]\n"),
	C("smtpd with empty name", "[smtpd \"\"]\n",
	  "t.cf:1:8: expected a quoted name: [smtpd \"NAME\"]\n"),
	C("unclosed header", "[smtpd \"a\"\n",
	  "t.cf:1:11: expected ']' to close the section header, found the end "
	  "of the line\n"),
	C("unclosed header without name", "[core\n",
	  "t.cf:1:6: expected ']' to close the section header, found the end "
	  "of the line\n"),
	C("junk before ]", "[smtpd \"a\" x]\n",
	  "t.cf:1:12: expected ']' to close the section header, found 'x'\n"),
	C("unterminated section name", "[route \"x\n",
	  "t.cf:1:8: expected '\"' to close the string, found the end of the "
	  "line\n"),
	C("text after header", "[core] hostname\n",
	  "t.cf:1:8: expected the end of the line after the section header, "
	  "found more text\n"),
	/* keys */
	C("unknown key", "[core]\nhostnme = x\n",
	  "t.cf:2:1: expected a key of [core], found 'hostnme'\n"),
	C("unknown key in smtpd", "[smtpd \"a\"]\nlisten = 25\n",
	  "t.cf:2:1: expected a key of [smtpd], found 'listen'\n"),
	C("quoted key", "[core]\n\"hostname\" = x\n",
	  "t.cf:2:1: expected a key of [core], found the quoted string "
	  "'hostname'\n"),
	C("empty quoted key", "[core]\n\"\" = x\n",
	  "t.cf:2:1: expected a key of [core], found the quoted string ''\n"),
	C("value missing", "[syslog]\nident\n",
	  "t.cf:2:6: expected a value after 'ident', found the end of the "
	  "line\n"),
	C("value missing after =", "[syslog]\nident =\n",
	  "t.cf:2:8: expected a value after 'ident', found the end of the "
	  "line\n"),
	C("value missing before a comment", "[syslog]\nident = # none\n",
	  "t.cf:2:15: expected a value after 'ident', found the end of the "
	  "line\n"),
	C("= twice", "[syslog]\nident = a = b\n",
	  "t.cf:2:11: expected a value, found '=' (quote a value that contains "
	  "'=')\n"),
	C("= = in a route", "joe@example.org = = x\n",
	  "t.cf:1:19: expected a value, found '=' (quote a value that contains "
	  "'=')\n"),
	C("= before key", "= x\n", "t.cf:1:1: expected a key before '='\n"),
	/* the lexer */
	C("unterminated quote", "[syslog]\nident = \"abc\n",
	  "t.cf:2:9: expected '\"' to close the string, found the end of the "
	  "line\n"),
	C("unterminated quote, CRLF", "[syslog]\r\nident = \"abc\r\n",
	  "t.cf:2:9: expected '\"' to close the string, found the end of the "
	  "line\n"),
	C("backslash at end", "[syslog]\nident = \"abc\\\n",
	  "t.cf:2:13: expected a character after '\\', found the end of the "
	  "line\n"),
	C("backslash outside quotes", "[syslog]\nident = a\\b\n",
	  "t.cf:2:10: expected a word, found '\\' outside a quoted string\n"),
	C("backslash starting a word", "\\joe joe\n",
	  "t.cf:1:1: expected a word, found '\\' outside a quoted string\n"),
	C("control character", "[syslog]\nident = a\x01" "b\n",
	  "t.cf:2:10: expected a word, found control character 0x01\n"),
	C("DEL", "[syslog]\nident = a\x7f" "b\n",
	  "t.cf:2:10: expected a word, found control character 0x7F\n"),
	C("control character in quotes", "[syslog]\nident = \"a\x1b" "b\"\n",
	  "t.cf:2:11: expected text in the quoted string, found control "
	  "character 0x1B\n"),
	C("escaped control character", "[syslog]\nident = \"\\\x01\"\n",
	  "t.cf:2:11: expected text in the quoted string, found control "
	  "character 0x01\n"),
	C("NUL byte", "[syslog]\nident = a\x00" "b\n",
	  "t.cf:2:10: expected a word, found a NUL byte\n"),
	C("NUL byte in quotes", "[syslog]\nident = \"a\x00" "b\"\n",
	  "t.cf:2:11: expected text in the quoted string, found a NUL byte\n"),
	C("invalid UTF-8 in quotes", "[syslog]\nident = \"a\xff" "b\"\n",
	  "t.cf:2:11: expected UTF-8 in the quoted string, found byte 0xFF\n"),
	C("truncated UTF-8 in quotes", "[syslog]\nident = \"\xc3\"\n",
	  "t.cf:2:10: expected UTF-8 in the quoted string, found byte 0xC3\n"),
	C("invalid UTF-8 in atom", "[syslog]\nident = a\xc3" "\n",
	  "t.cf:2:10: expected UTF-8, found byte 0xC3\n"),
	C("bare CR", "[syslog]\nident = a\x0d" "b\n",
	  "t.cf:2:10: expected a word, found a bare carriage return\n"),
	C("bare CR in quotes", "[syslog]\nident = \"a\rb\"\n",
	  "t.cf:2:11: expected text in the quoted string, found a bare "
	  "carriage return\n"),
	C("glued words", "[syslog]\nident = \"a\"b\n",
	  "t.cf:2:12: expected a blank between two words, found 'b'\n"),
	C("glued words 2", "[syslog]\nident = a\"b\"\n",
	  "t.cf:2:10: expected a blank between two words, found '\"'\n"),
	C("quote inside an atom", "[syslog]\nident = a\"b\n",
	  "t.cf:2:10: expected a blank between two words, found '\"'\n"),
	/* single values */
	C("two values", "[syslog]\nident = a b\n",
	  "t.cf:2:11: expected one value for 'ident', found 2 (quote a value "
	  "that contains blanks)\n"),
	C("duplicate key", "[core]\nhostname = a.example\nhostname = b.example\n",
	  "t.cf:3:1: expected 'hostname' once in [core], found it again (first "
	  "set at t.cf:2)\n"),
	C("duplicate key across repeated sections",
	  "[core]\nhostname = a.example\n[syslog]\nident = x\n[core]\n"
	  "hostname = b.example\n",
	  "t.cf:6:1: expected 'hostname' once in [core], found it again (first "
	  "set at t.cf:2)\n"),
	C("duplicate exec", "[pipe \"p\"]\nexec = /bin/cat\nexec = /bin/true\n",
	  "t.cf:3:1: expected 'exec' once in [pipe \"p\"], found it again "
	  "(first set at t.cf:2)\n"),
	/* sizes, durations, booleans, enums, numbers */
	C("bad size", "[core]\nmax-message-size = 10X\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found "
	  "'10X'\n"),
	C("size with two letters", "[core]\nmax-message-size = 10MB\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found "
	  "'10MB'\n"),
	C("zero size", "[core]\nmax-message-size = 0\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found "
	  "'0'\n"),
	C("bounce size negative", "[core]\nbounce-size-limit = -1\n",
	  "t.cf:2:21: expected a size such as 10240000, 500k, 10M or 1G, found "
	  "'-1'\n"),
	C("size overflow", "[core]\nmax-message-size = 99999999999G\n",
	  "t.cf:2:20: expected a size such as 10240000, 500k, 10M or 1G, found "
	  "'99999999999G'\n"),
	C("bad duration", "[core]\nqueue-lifetime = 5 days\n",
	  "t.cf:2:20: expected one value for 'queue-lifetime', found 2 (quote a "
	  "value that contains blanks)\n"),
	C("bad duration suffix", "[core]\nqueue-lifetime = 5y\n",
	  "t.cf:2:18: expected a duration such as 300, 30s, 30m, 4h or 5d, "
	  "found '5y'\n"),
	C("zero duration", "[pipe \"p\"]\nexec = /bin/cat\ntimeout = 0\n",
	  "t.cf:3:11: expected a duration such as 300, 30s, 30m, 4h or 5d, "
	  "found '0'\n"),
	C("negative duration", "[pipe \"p\"]\nexec = /bin/cat\ntimeout = -5\n",
	  "t.cf:3:11: expected a duration such as 300, 30s, 30m, 4h or 5d, "
	  "found '-5'\n"),
	C("duration overflow", "[core]\nqueue-lifetime = 99999999999999999999w\n",
	  "t.cf:2:18: expected a duration such as 300, 30s, 30m, 4h or 5d, "
	  "found '99999999999999999999w'\n"),
	/* a timeout is counted in milliseconds in an int: a day at most
	 * (25d overflowed it: every milter wait ended at once) */
	C("timeout over a day", "[milter \"m\"]\naddress = unix:/m\n"
	  "command-timeout = 25d\n",
	  "t.cf:3:19: expected at most 1d, found '25d'\n"),
	C("smtpd timeout over a day", "[smtpd \"a\"]\ntimeout = 86401\n",
	  "t.cf:2:11: expected at most 1d, found '86401'\n"),
	C("lifetime over a year", "[core]\nqueue-lifetime = 366d\n",
	  "t.cf:2:18: expected at most 365d, found '366d'\n"),
	/* a number too big for an id is no user name either (it was taken
	 * for one, then read as uid 4294967295) */
	C("user id overflow", "[core]\nuser-id = 99999999999999999999\n",
	  "t.cf:2:11: expected a user name or number, found "
	  "'99999999999999999999'\n"),
	C("bad bool", "[smtpd \"a\"]\nlmtp = Yes\n",
	  "t.cf:2:8: expected yes or no, found 'Yes'\n"),
	C("bool as number", "[smtpd \"a\"]\nlocal-rcpt-to = 1\n",
	  "t.cf:2:17: expected yes or no, found '1'\n"),
	C("bad enum", "[core]\nbounce-to = everyone\n",
	  "t.cf:2:13: expected sender, postmaster or both, found 'everyone'\n"),
	C("bad facility", "[syslog]\nfacility = local9\n",
	  "t.cf:2:12: expected mail, daemon, user, local0, local1, local2, "
	  "local3, local4, local5, local6 or local7, found 'local9'\n"),
	C("bad protocol", "[relay \"r\"]\nprotocol = esmtp\naddress = r\n",
	  "t.cf:2:12: expected smtp or lmtp, found 'esmtp'\n"),
	C("bad relay tls", "[relay \"r\"]\ntls = yes\naddress = r\n",
	  "t.cf:2:7: expected opportunistic, required, verify or no, found "
	  "'yes'\n"),
	C("bad bare-newline", "[smtpd \"a\"]\nbare-newline = keep\n",
	  "t.cf:2:16: expected normalize or reject, found 'keep'\n"),
	C("bad uint", "[pipe \"p\"]\nexec = /bin/cat\nmax_rcpt_to = 0\n",
	  "t.cf:3:15: expected a number from 1 to 1000, found '0'\n"),
	C("uint too big", "[smtpd \"a\"]\nmax-recipients = 100001\n",
	  "t.cf:2:18: expected a number from 1 to 100000, found '100001'\n"),
	C("no junk commands at all", "[smtpd \"a\"]\njunk-command-limit = 0\n",
	  "t.cf:2:22: expected a number from 1 to 10000000, found '0'\n"),
	C("junk limit not a number",
	  "[smtpd \"a\"]\njunk-command-limit = 100x\n",
	  "t.cf:2:22: expected a number from 1 to 10000000, found '100x'\n"),
	C("uint not a number", "[smtpd \"a\"]\nmax-recipients = 1e3\n",
	  "t.cf:2:18: expected a number from 1 to 100000, found '1e3'\n"),
	/* ports and addresses */
	C("bad port", "[smtpd \"a\"]\nlisten-port = 70000\n",
	  "t.cf:2:15: expected a port number or service name, found '70000'\n"),
	C("port zero", "[smtpd \"a\"]\nlisten-port = 0\n",
	  "t.cf:2:15: expected a port number or service name, found '0'\n"),
	C("bad service", "[smtpd \"a\"]\nlisten-port = localhost:nosuchservice\n",
	  "t.cf:2:15: expected a port number or service name, found "
	  "'localhost:nosuchservice'\n"),
	C("ipv6 without brackets", "[smtpd \"a\"]\nlisten-port = ::1:25\n",
	  "t.cf:2:15: write an IPv6 address as [ADDRESS]:PORT, found "
	  "'::1:25'\n"),
	C("bracketed address without port",
	  "[smtpd \"a\"]\nlisten-port = [192.0.2.1]\n",
	  "t.cf:2:15: expected [ADDRESS]:PORT, found '[192.0.2.1]'\n"),
	C("bracketed name", "[smtpd \"a\"]\nlisten-port = [example.org]:25\n",
	  "t.cf:2:15: expected a numeric address inside [ ], found "
	  "'[example.org]:25'\n"),
	C("listen host empty", "[smtpd \"a\"]\nlisten-port = :25\n",
	  "t.cf:2:15: expected HOST:PORT, found ':25'\n"),
	C("listen host invalid", "[smtpd \"a\"]\nlisten-port = bad_host:25\n",
	  "t.cf:2:15: expected a host name or address, found 'bad_host:25'\n"),
	C("unix listen path relative", "[smtpd \"a\"]\nlisten-port = unix:run/s\n",
	  "t.cf:2:15: expected an absolute path after unix:, found "
	  "'unix:run/s'\n"),
	C("trusted user invalid", "[core]\ntrusted-users = \"a b\"\n",
	  "t.cf:2:17: expected a user name or number, found 'a b'\n"),
	C("bad dns server", "[core]\ndns-server = dns.example\n",
	  "t.cf:2:14: expected a numeric address, found 'dns.example'\n"),
	C("bad dns server port", "[core]\ndns-server = 127.0.0.1:99999\n",
	  "t.cf:2:14: expected a port number, found '127.0.0.1:99999'\n"),
	C("dns server in brackets without port", "[core]\ndns-server = [::1]\n",
	  "t.cf:2:14: expected an IPv4 address (this build asks an IPv6 DNS "
	  "server only when resolv.conf names it), found '[::1]'\n"),
	C("dns server on IPv6 with a port",
	  "[core]\ndns-server = [::1]:5353\n",
	  "t.cf:2:14: expected an IPv4 address (this build asks an IPv6 DNS "
	  "server only when resolv.conf names it), found '[::1]:5353'\n"),
	C("dns server on IPv6", "[core]\ndns-server = 2001:db8::53\n",
	  "t.cf:2:14: expected an IPv4 address (this build asks an IPv6 DNS "
	  "server only when resolv.conf names it), found '2001:db8::53'\n"),
	C("dns server on a socket", "[core]\ndns-server = unix:/run/dns\n",
	  "t.cf:2:14: expected a numeric address, found 'unix:/run/dns'\n"),
	C("dns server named in brackets",
	  "[core]\ndns-server = [dns.example]:53\n",
	  "t.cf:2:14: expected a numeric address, found '[dns.example]:53'\n"),
	C("bad relay address", "[relay \"r\"]\naddress = unix:relative\n",
	  "t.cf:2:11: expected unix:/absolute/path, found 'unix:relative'\n"),
	C("bad relay host", "[relay \"r\"]\naddress = a..b\n",
	  "t.cf:2:11: expected host, ip, [ip], host:port, [ip]:port or "
	  "unix:/path, found 'a..b'\n"),
	C("bad relay port", "[relay \"r\"]\naddress = host.example:99999\n",
	  "t.cf:2:11: expected a port number or service name, found "
	  "'host.example:99999'\n"),
	C("bad second relay address",
	  "[relay \"r\"]\naddress = 10.0.0.1\naddress = [10.0.0.300]\n",
	  "t.cf:3:11: expected a host or address inside [ ], found "
	  "'[10.0.0.300]'\n"),
	C("IPv6 tag on an IPv4 relay address",
	  "[relay \"r\"]\naddress = [IPv6:127.0.0.1]:2525\n",
	  "t.cf:2:11: expected an IPv6 address after IPv6:, found "
	  "'[IPv6:127.0.0.1]:2525'\n"),
	C("IPv6 tag on a relay host name",
	  "[relay \"r\"]\naddress = [IPv6:relay.example]\n",
	  "t.cf:2:11: expected an IPv6 address after IPv6:, found "
	  "'[IPv6:relay.example]'\n"),
	C("tls = verify with a one-label relay NAME",
	  "[relay \"smart\"]\naddress = [127.0.0.1]:2525\ntls = verify\n",
	  "t.cf:3:1: expected a 'name' key (the host name in the relay's "
	  "certificate) with tls = verify: [relay \"smart\"]'s NAME is no "
	  "host name\n"),
	C("tls = verify with a relay NAME that is no host name",
	  "[relay \"my_hub\"]\naddress = hub.example\ntls = verify\n",
	  "t.cf:3:1: expected a 'name' key (the host name in the relay's "
	  "certificate) with tls = verify: [relay \"my_hub\"]'s NAME is no "
	  "host name\n"),
	/* paths, users, names */
	C("relative path", "[core]\nspool-directory = var/spool\n",
	  "t.cf:2:19: expected an absolute path, found 'var/spool'\n"),
	C("relative logfile",
	  "[logfile \"l\"]\nfile = log/%Y\n[core]\nlogger = l\n",
	  "t.cf:2:8: expected an absolute path, found 'log/%Y'\n"),
	C("relative exec", "[pipe \"p\"]\nexec = procmail -d ${RCPT_TO}\n",
	  "t.cf:2:8: expected an absolute path to the program, found "
	  "'procmail'\n"),
	C("missing exec", "[pipe \"p\"]\nmax_rcpt_to = 2\n",
	  "t.cf:1:1: expected 'exec' in [pipe \"p\"], found none\n"),
	C("missing logfile file", "[logfile \"l\"]\n",
	  "t.cf:1:1: expected 'file' in [logfile \"l\"], found none\n"),
	C("bad user", "[core]\nuser-id = \"bad user\"\n",
	  "t.cf:2:11: expected a user name or number, found 'bad user'\n"),
	C("user name too long", "[core]\nuser-id = abcdefghijabcdefghijabcdefghijabc\n",
	  "t.cf:2:11: expected a user name or number, found "
	  "'abcdefghijabcdefghijabcdefghijabc'\n"),
	C("bad group", "[core]\ngroup-id = -x\n",
	  "t.cf:2:12: expected a group name or number, found '-x'\n"),
	C("bad hostname", "[core]\nhostname = -bad.example\n",
	  "t.cf:2:12: expected a host name, found '-bad.example'\n"),
	C("hostname with a blank", "[core]\nhostname = \"a b\"\n",
	  "t.cf:2:12: expected a host name, found 'a b'\n"),
	C("smtpd name literal", "[smtpd \"a\"]\nname = [192.0.2.1]\n",
	  "t.cf:2:8: expected a host name, found '[192.0.2.1]'\n"),
	C("bad name key is not also a missing name",
	  "[smtpd \"my listener\"]\nname = -bad\n",
	  "t.cf:2:8: expected a host name, found '-bad'\n"),
	C("smtpd name not a host", "[smtpd \"my listener\"]\n",
	  "t.cf:1:1: expected a host name as the name of [smtpd \"my "
	  "listener\"] or a 'name' key\n"),
	C("empty string", "[syslog]\nident = \"\"\n",
	  "t.cf:2:9: expected a non-empty value, found ''\n"),
	C("bad delimiter", "[core]\nrecipient-delimiter = @\n",
	  "t.cf:2:23: expected delimiter characters such as + or -, found "
	  "'@'\n"),
	/* references */
	C("unknown routing table", "[smtpd \"a\"]\nrouting-table = nosuch\n",
	  "t.cf:2:17: expected the name of a [route], found 'nosuch', which no "
	  "section defines\n"),
	C("second routing table unknown",
	  "[smtpd \"a\"]\nrouting-table = t\nrouting-table = nosuch\n[route \"t\"]\n",
	  "t.cf:3:17: expected the name of a [route], found 'nosuch', which no "
	  "section defines\n"),
	C("second word of routing table unknown",
	  "[smtpd \"a\"]\nrouting-table = t nosuch\n[route \"t\"]\n",
	  "t.cf:2:19: expected the name of a [route], found 'nosuch', which no "
	  "section defines\n"),
	C("unknown local mailer", "[core]\nlocal-mailer = nosuch\n",
	  "t.cf:2:16: expected the name of a [pipe], found 'nosuch', which no "
	  "section defines\n"),
	C("local mailer is a relay", "[core]\nlocal-mailer = r\n[relay \"r\"]\naddress = 10.0.0.1\n",
	  "t.cf:2:16: expected the name of a [pipe], found 'r', which no "
	  "section defines\n"),
	C("unknown logger", "[core]\nlogger = nosuch\n",
	  "t.cf:2:10: expected syslog, stderr, journal or the name of a "
	  "[logfile], found 'nosuch', which no section defines\n"),
	C("unknown smtpd logger", "[smtpd \"a\"]\nlogger = Syslog\n",
	  "t.cf:2:10: expected syslog, stderr, journal or the name of a "
	  "[logfile], found 'Syslog', which no section defines\n"),
	/* policies that need other keys */
	C("tls starttls without a key", "[smtpd \"a\"]\ntls = starttls\n"
	  "tls-certificate = /etc/ssl/certs/x.pem\n",
	  "t.cf:2:1: expected tls-certificate and tls-key with tls = "
	  "starttls\n"),
	C("tls implicit without a certificate", "[smtpd \"a\"]\ntls = implicit\n",
	  "t.cf:2:1: expected tls-certificate and tls-key with tls = "
	  "implicit\n"),
	C("auth required without a file", "[smtpd \"a\"]\nauth = required\n",
	  "t.cf:2:1: expected auth-file with auth = required\n"),
	C("auth optional without a file", "[smtpd \"a\"]\nauth = optional\n",
	  "t.cf:2:1: expected auth-file with auth = optional\n"),
	C("relay auth-user without tls",
	  "[relay \"r\"]\nauth-user = u\nauth-password = p\ntls = no\n"
	  "address = r\n",
	  "t.cf:4:1: expected tls other than 'no' with 'auth-user': "
	  "credentials never travel in clear text\n"),
	C("auth-password alone",
	  "[relay \"r\"]\nauth-password = p\naddress = r\n",
	  "t.cf:2:1: expected 'auth-user' with 'auth-password'\n"),
	C("auth-password-file alone",
	  "[relay \"r\"]\nauth-password-file = /etc/pw\naddress = r\n",
	  "t.cf:2:1: expected 'auth-user' with 'auth-password-file'\n"),
	C("both passwords",
	  "[relay \"r\"]\nauth-user = u\nauth-password = p\n"
	  "auth-password-file = /etc/pw\naddress = r\n",
	  "t.cf:4:1: expected 'auth-password' or 'auth-password-file', "
	  "not both\n"),
	C("auth-password-file relative",
	  "[relay \"r\"]\nauth-user = u\nauth-password-file = pw\n"
	  "address = r\n",
	  "t.cf:3:22: expected an absolute path, found 'pw'\n"),
	C("relay without address", "[relay \"r\"]\nprotocol = lmtp\n",
	  "t.cf:1:1: expected 'address' in [relay \"r\"], found none\n"),
	C("backoff order", "[core]\nminimal-backoff = 1h\nmaximal-backoff = 10m\n",
	  "t.cf:2:1: expected minimal-backoff to be at most maximal-backoff\n"),
	/* route lines */
	C("bad pattern", "joe@@example.org joe\n",
	  "t.cf:1:1: " PATTERN "'joe@@example.org': invalid domain name\n"),
	C("pattern with brackets", "<joe@example.org> joe\n",
	  "t.cf:1:1: " PATTERN "'<joe@example.org>': write patterns without "
	  "< >\n"),
	C("empty pattern", "\"\" joe\n",
	  "t.cf:1:1: " PATTERN "'': empty pattern\n"),
	C("pattern in a named table", "[route \"t\"]\n  joe@@x joe\n",
	  "t.cf:2:3: " PATTERN "'joe@@x': invalid domain name\n"),
	C("route without target", "joe@example.org\n",
	  "t.cf:1:16: expected a value after 'joe@example.org', found the end "
	  "of the line\n"),
	C("maildir without slash", "joe@example.org /var/mail/joe\n",
	  "t.cf:1:17: expected a Maildir path ending in '/' (mbox files are not "
	  "supported), found '/var/mail/joe'\n"),
	C("@ alone target", "joe@example.org @\n",
	  "t.cf:1:17: expected a rewrite that changes something ('@' alone "
	  "keeps the address as it is), found '@'\n"),
	C("rewrite to a bad domain", "joe@example.org x@-bad.example\n",
	  "t.cf:1:17: expected a rewrite (user@domain, user@ or @domain): "
	  "invalid domain name, found 'x@-bad.example'\n"),
	C("host with an empty label", "@a.example mail..example.net\n",
	  "t.cf:1:12: expected a host name, a local name, or the name of a "
	  "[pipe] or [relay] (no empty label between dots), found "
	  "'mail..example.net'\n"),
	C("name beginning with a dot", "@a.example .foo\n",
	  "t.cf:1:12: expected a host name, a local name, or the name of a "
	  "[pipe] or [relay] (no empty label between dots), found '.foo'\n"),
	C("missing comma", "joe@example.org joe jane\n",
	  "t.cf:1:17: expected ',' between targets (only a |command may contain "
	  "blanks), found 'joe jane'\n"),
	C("empty target", "joe@example.org a,,b\n",
	  "t.cf:1:19: expected a target before ','\n"),
	C("empty target between blanks", "joe@example.org a, ,b\n",
	  "t.cf:1:20: expected a target before ','\n"),
	C("trailing comma", "joe@example.org a,\n",
	  "t.cf:1:19: expected a target after the last ','\n"),
	C("leading comma", "joe@example.org ,a\n",
	  "t.cf:1:17: expected a target before ','\n"),
	C("empty quoted target", "joe@example.org \"\"\n",
	  "t.cf:1:17: expected a target, not an empty string\n"),
	C("empty pipe", "joe@example.org |\n",
	  "t.cf:1:17: expected a command after '|', found '|'\n"),
	C("unix target", "joe@example.org unix:/run/lmtp\n",
	  "t.cf:1:17: expected a host; a unix socket needs a [relay], found "
	  "'unix:/run/lmtp'\n"),
	C("bad host target", "joe@example.org [300.1.1.1]\n",
	  "t.cf:1:17: expected a host or address inside [ ], found "
	  "'[300.1.1.1]'\n"),
	C("bad host target port", "joe@example.org [192.0.2.1]:99999\n",
	  "t.cf:1:17: expected a port number or service name, found "
	  "'[192.0.2.1]:99999'\n"),
	C("sendmail include target", "joe@example.org a, :include:/x\n",
	  "t.cf:1:20: expected a route target: NAME, user@domain, host, "
	  "[host]:port, mx, |command, /path/Maildir/, reject or discard (a file "
	  "of routes is included with a line file \"PATH\"), found "
	  "':include:/x'\n"),
	C("target that is no form", "joe@example.org %x:y\n",
	  "t.cf:1:17: expected a route target: NAME, user@domain, host, "
	  "[host]:port, mx, |command, /path/Maildir/, reject or discard, found "
	  "'%x:y'\n"),
	C("host name with a bad port", "joe@example.org relay.example:smtpx\n",
	  "t.cf:1:17: expected a port number or service name, found "
	  "'relay.example:smtpx'\n"),
	C("second target bad", "joe@example.org /m/joe/, /m/x\n",
	  "t.cf:1:26: expected a Maildir path ending in '/' (mbox files are not "
	  "supported), found '/m/x'\n"),
	C("file with two paths", "file a.rt b.rt\n",
	  "t.cf:1:11: expected one path after 'file', found 2 words\n"),
	C("file with an empty path", "file \"\"\n",
	  "t.cf:1:6: expected a path after 'file', found an empty string\n"),
	/* every error of a file in one run, in file order */
	C("several errors",
	  "[core]\nhostname = -x\nbounce-to = nobody\n[smtpd \"a\"]\nlmtp = maybe\n"
	  "[nosuch]\nx = y\n[route]\njoe@example.org /m/joe\n",
	  "t.cf:2:12: expected a host name, found '-x'\n"
	  "t.cf:3:13: expected sender, postmaster or both, found 'nobody'\n"
	  "t.cf:5:8: expected yes or no, found 'maybe'\n"
	  "t.cf:6:2: expected a section " SECTIONS ", found 'nosuch'\n"
	  "t.cf:9:17: expected a Maildir path ending in '/' (mbox files are not "
	  "supported), found '/m/joe'\n"),
	C("an RSA and an ECDSA certificate with one key",
	  "[smtpd \"a\"]\ntls = starttls\ntls-certificate = /r.pem\n"
	  "tls-key = /r.key\ntls-certificate = /e.pem\n",
	  "t.cf:5:19: expected a tls-key for this tls-certificate (they pair "
	  "in order)\n"),
	C("a key without its certificate, two on one line",
	  "[smtpd \"a\"]\ntls-certificate = /r.pem\n"
	  "tls-key = /r.key /e.key\n",
	  "t.cf:3:18: expected a tls-certificate for this tls-key (they pair "
	  "in order)\n"),
	C("five certificate and key pairs",
	  "[smtpd \"a\"]\ntls-certificate = /1 /2 /3 /4 /5\n"
	  "tls-key = /1 /2 /3 /4 /5\n",
	  "t.cf:3:23: expected at most 4 tls-certificate and tls-key pairs\n"),
	C("several errors on one line and after it",
	  "[syslog]\nident = \"x\nfacility = nope\n[relay \"r\"]\nname = -r\n"
	  "address = 10.0.0.1 unix:x\n",
	  "t.cf:2:9: expected '\"' to close the string, found the end of the "
	  "line\n"
	  "t.cf:3:12: expected mail, daemon, user, local0, local1, local2, "
	  "local3, local4, local5, local6 or local7, found 'nope'\n"
	  "t.cf:5:8: expected a host name, found '-r'\n"
	  "t.cf:6:20: expected unix:/absolute/path, found 'unix:x'\n"),
};

static void test_malformed(void **state)
{
	(void)state;
	int failed = 0;
	assert_true(sizeof bad / sizeof *bad >= 45);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct cf *cf = parse(bad[i].text, bad[i].len, 0);
		char *d = diagnostics(cf);
		if (!cf->nerrors || strcmp(d, bad[i].diag)) {
			print_error("%s: want\n%sgot\n%s\n", bad[i].name,
				    bad[i].diag, d);
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
	assert_int_equal(cf->nerrors, 1);
	/* the line after it is read normally */
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "ok.example");
	free(d);
	cf_free(cf);
	buf_free(&b);
	/* exactly 4096 bytes before the newline is fine */
	buf_adds(&b, "[syslog]\nident = ");
	while (b.len < 9 + 4096)
		buf_addc(&b, 'y');
	buf_adds(&b, "\n");
	cf = parse(b.s, b.len, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(strlen(cf->syslog->v[SYSLOG_IDENT].s), 4096 - 8);
	cf_free(cf);
	/* and so with CRLF, or a CR ending the file: the CR is no text */
	b.len -= 1;
	buf_adds(&b, "\r\n");
	cf = parse(b.s, b.len, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(strlen(cf->syslog->v[SYSLOG_IDENT].s), 4096 - 8);
	cf_free(cf);
	cf = parse(b.s, b.len - 1, 0);
	assert_int_equal(cf->nerrors, 0);
	cf_free(cf);
	/* one byte more is too long, CRLF or not */
	b.len -= 2;
	buf_adds(&b, "y\r\n");
	cf = parse(b.s, b.len, 0);
	d = diagnostics(cf);
	assert_string_equal(d, "t.cf:2:4097: expected at most 4096 bytes in a "
			       "line, found 4097\n");
	free(d);
	cf_free(cf);
	buf_free(&b);
}

static void test_missing_and_directory(void **state)
{
	(void)state;
	struct cf *cf = cf_new();
	assert_int_equal(cf_load(cf, "/nonexistent/postmaster.cf", 1), -2);
	assert_int_equal(cf->nerrors, 1);
	assert_string_equal(cf->diag.s, "/nonexistent/postmaster.cf: cannot "
					"open: No such file or directory\n");
	cf_free(cf);
	cf = cf_new();
	assert_int_equal(cf_load(cf, "/tmp", 1), -2);
	assert_int_equal(cf->nerrors, 1);
	assert_string_equal(cf->diag.s,
			    "/tmp: is a directory, expected a file\n");
	cf_free(cf);
	/* not required and absent: the built-in default */
	cf = cf_new();
	assert_int_equal(cf_load(cf, "/nonexistent/postmaster.cf", 0), 0);
	assert_true(cf->builtin_default);
	finish_config(cf, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_string_equal(cf->core->v[CORE_USER_ID].s, "nobody");
	assert_string_equal(cf->core->v[CORE_LOCAL_MAILER].s, "local");
	assert_non_null(cf_find(cf, CF_PIPE, "local"));
	uint32_t n;
	cf_listeners(cf, &n);
	assert_int_equal(n, 0);
	cf_free(cf);
	/* a syntax error is -1, and the rest of the file is still read */
	cf = cf_new();
	static const char syn[] = "[core]\nx y\nhostname = h.example\n";
	assert_int_equal(cf_load_text(cf, "t.cf", syn, strlen(syn)), -1);
	finish_config(cf, 0);
	assert_int_equal(cf->nerrors, 1);
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "h.example");
	cf_free(cf);
}

/* An optional configuration file (serving without --config) that exists
 * but cannot be read is an error, never the built-in default: only a file
 * that does not exist means "no configuration". Whatever errno an earlier
 * call left behind must not change that. */
static void test_optional_directory(void **state)
{
	(void)state;
	struct cf *cf = cf_new();
	errno = ENOENT;
	assert_int_equal(cf_load(cf, "/tmp", 0), -2);
	assert_false(cf->builtin_default);
	assert_string_equal(cf->diag.s ? cf->diag.s : "",
			    "/tmp: is a directory, expected a file\n");
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Grammar corners that must parse (SPEC 3.1)                          */

static void test_grammar_corners(void **state)
{
	(void)state;
	static const char text[] =
		"# a file of bare route lines needs no section\r\n"
		"joe@example.org /m/joe/\r\n"
		"  \t \r\n"
		"\r\n"
		"\t# an indented comment\r\n"
		"postmaster=joe # '=' without blanks, a comment after the value\r\n"
		"[core]   # a comment after a header\r\n"
		"hostname=mx.example.org\r\n"
		"  logger   =   stderr   # a comment after a value\r\n"
		"spool-directory= /var/spool/x#no blank before the comment\r\n"
		"pid-file =/run/p.pid\r\n"
		"[syslog]\r\n"
		"ident \"a \\\"q\\\" \\\\ \\x # not a comment\"\r\n"
		"[ smtpd  \"a.example\" ]\r\n"
		"listen-port = [192.0.2.1]:2525\r\n"
		"routing-table = one\r\n"
		"routing-table = two\r\n"
		"[route \"one\"]\r\n"
		"user@[192.0.2.1] /m/literal/\r\n"
		"\"srs=x=y@example.org\" /m/srs/\r\n"
		"any@ [192.0.2.1]:2525\r\n"
		"[route \"two\"]\r\n"
		"[core]\r\n"
		"max-message-size = 1M\r\n"
		"[route \"one\"]\r\n"
		"later@example.org discard\r\n"
		"[smtpd \"b.example\"]\n"
		"listen-port = ipv6-localhost:submission\n"
		"name = \"b.example\"\n"
		"[smtpd \"c.example\"]\n"
		"listen-port\t=\tsmtp\n"
		"\ttimeout\t5m\t\n"
		"[route \"\"]\n"
		"\"p\xc3\xb6stmaster@example.org\" \"/m/\xe2\x9c\x89/\"\n"
		"[syslog]\n"
		"facility = local3\n"
		"[pipe \"utf\"]\n"
		"exec = \"/usr/bin/x\" \"caf\xc3\xa9\" ${RCPT_TO}\n"
		"[route]\n"
		"last@example.org discard"; /* no newline at the end */
	struct cf *cf = parse_ok(text);
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "mx.example.org");
	assert_string_equal(cf->core->v[CORE_LOGGER].s, "stderr");
	assert_string_equal(cf->core->v[CORE_SPOOL_DIRECTORY].s, "/var/spool/x");
	assert_string_equal(cf->core->v[CORE_PID_FILE].s, "/run/p.pid");
	/* a repeated [core] merges */
	assert_int_equal(cf->core->v[CORE_MAX_MESSAGE_SIZE].n, 1048576);
	/* \" and \\ and \x is x; # inside quotes is text */
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s,
			    "a \"q\" \\ x # not a comment");
	assert_int_equal(cf->syslog->v[SYSLOG_FACILITY].n, 6);
	const struct cf_section *a = cf_find(cf, CF_SMTPD, "a.example");
	assert_non_null(a);
	assert_string_equal(a->listen.host, "192.0.2.1");
	assert_int_equal(a->listen.port, 2525);
	assert_int_equal(a->v[SMTPD_ROUTING_TABLE].list.n, 2);
	assert_string_equal(a->v[SMTPD_ROUTING_TABLE].list.v[0], "one");
	assert_string_equal(a->v[SMTPD_ROUTING_TABLE].list.v[1], "two");
	/* [ only opens a section at the start of a line; repeated [route
	 * "one"] appends */
	const struct route_table *one = table(cf, "one");
	assert_int_equal(one->n, 4);
	assert_route(cf, &one->e[0], "user@[192.0.2.1]", "/m/literal/");
	assert_string_equal(one->e[0].domain, "[192.0.2.1]");
	assert_route(cf, &one->e[1], "srs=x=y@example.org", "/m/srs/");
	assert_string_equal(one->e[1].local, "srs=x=y");
	assert_route(cf, &one->e[2], "any@", "[192.0.2.1]:2525");
	assert_route(cf, &one->e[3], "later@example.org", "discard");
	assert_int_equal(one->e[3].pos.line, 26);
	assert_int_equal(table(cf, "two")->n, 0);
	/* the implicit leading [route], [route ""] and [route] are one table */
	const struct route_table *g = cf->global_route->table;
	assert_int_equal(g->n, 4);
	assert_route(cf, &g->e[0], "joe@example.org", "/m/joe/");
	assert_int_equal(g->e[0].pos.line, 2);
	assert_int_equal(g->e[0].pos.col, 1);
	assert_route(cf, &g->e[1], "postmaster", "joe");
	assert_route(cf, &g->e[2], "p\xc3\xb6stmaster@example.org",
		     "/m/\xe2\x9c\x89/");
	assert_route(cf, &g->e[3], "last@example.org", "discard");
	const struct cf_section *b = cf_find(cf, CF_SMTPD, "b.example");
	assert_string_equal(b->listen.host, "ipv6-localhost");
	assert_int_equal(b->listen.port, 587);
	assert_string_equal(b->v[SMTPD_NAME].s, "b.example");
	const struct cf_section *c = cf_find(cf, CF_SMTPD, "c.example");
	assert_string_equal(c->listen.host, "");
	assert_int_equal(c->listen.port, 25);
	assert_int_equal(c->v[SMTPD_TIMEOUT].n, 300);
	const struct cf_section *u = cf_find(cf, CF_PIPE, "utf");
	assert_int_equal(u->v[PIPE_EXEC].list.n, 3);
	assert_string_equal(u->v[PIPE_EXEC].list.v[1], "caf\xc3\xa9");
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Defaults (SPEC 3.2)                                                 */

static void test_defaults(void **state)
{
	(void)state;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	struct cf *cf = parse_ok("[smtpd \"mx.example.org\"]\n"
				 "[relay \"r.example\"]\naddress = r.example\n"
				 "[pipe \"p\"]\nexec = /bin/cat\n");
	const struct cf_section *core = cf->core;
	assert_string_equal(core->v[CORE_LOGGER].s, "syslog");
	assert_null(core->v[CORE_USER_ID].s);
	assert_null(core->v[CORE_GROUP_ID].s);
	assert_string_equal(core->v[CORE_PID_FILE].s, "/run/postmaster.pid");
	assert_string_equal(core->v[CORE_SPOOL_DIRECTORY].s,
			    "/var/spool/postmaster");
	assert_string_equal(core->v[CORE_LOCAL_MAILER].s, "local");
	assert_string_equal(core->v[CORE_HOSTNAME].s, host[0] ? host : "localhost");
	assert_int_equal(core->v[CORE_MAX_MESSAGE_SIZE].n, 10240000);
	assert_int_equal(core->v[CORE_QUEUE_LIFETIME].n, 5 * 86400);
	assert_int_equal(core->v[CORE_BOUNCE_TO].n, BOUNCE_SENDER);
	assert_null(core->v[CORE_DNS_SERVER].s);
	assert_null(core->v[CORE_RECIPIENT_DELIMITER].s);
	assert_int_equal(core->v[CORE_MINIMAL_BACKOFF].n, 300);
	assert_int_equal(core->v[CORE_MAXIMAL_BACKOFF].n, 4000);
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s, "postmaster");
	assert_int_equal(cf->syslog->v[SYSLOG_FACILITY].n, 0); /* mail */

	const struct cf_section *p = cf_find(cf, CF_PIPE, "p");
	assert_int_equal(p->v[PIPE_MAX_RCPT_TO].n, 1);
	assert_int_equal(p->v[PIPE_TIMEOUT].n, 300);

	const struct cf_section *r = cf_find(cf, CF_RELAY, "r.example");
	assert_string_equal(r->v[RELAY_NAME].s, "r.example");
	assert_int_equal(r->v[RELAY_PROTOCOL].n, RELAY_SMTP);
	assert_int_equal(r->v[RELAY_TLS].n, RTLS_OPPORTUNISTIC);
	assert_null(r->v[RELAY_AUTH_USER].s);
	assert_null(r->v[RELAY_AUTH_PASSWORD].s);

	const struct cf_section *s = cf_find(cf, CF_SMTPD, "mx.example.org");
	assert_string_equal(s->v[SMTPD_NAME].s, "mx.example.org");
	/* listen-port defaults to NAME:25 */
	assert_string_equal(s->listen.host, "mx.example.org");
	assert_int_equal(s->listen.port, 25);
	assert_int_equal(s->v[SMTPD_ROUTING_TABLE].list.n, 0);
	assert_string_equal(s->v[SMTPD_LOGGER].s, "syslog");
	assert_int_equal(s->v[SMTPD_LOCAL_RCPT_TO].n, 0);
	assert_int_equal(s->v[SMTPD_TLS].n, STLS_NO);
	assert_null(s->v[SMTPD_TLS_CERTIFICATE].s);
	assert_null(s->v[SMTPD_TLS_KEY].s);
	assert_int_equal(s->v[SMTPD_AUTH].n, AUTH_NO);
	assert_null(s->v[SMTPD_AUTH_FILE].s);
	assert_int_equal(s->v[SMTPD_SPF].n, SPF_OFF);
	assert_int_equal(s->v[SMTPD_VERIFY_SENDER].n, 0);
	assert_int_equal(s->v[SMTPD_ACCEPT_MAIL].n, 1);
	assert_int_equal(s->v[SMTPD_MAX_RECIPIENTS].n, 100);
	assert_int_equal(s->v[SMTPD_MAX_MESSAGE_SIZE].n, 10240000);
	assert_int_equal(s->v[SMTPD_BARE_NEWLINE].n, BARE_NORMALIZE);
	assert_int_equal(s->v[SMTPD_TIMEOUT].n, 300);
	assert_int_equal(s->v[SMTPD_LMTP].n, 1);

	/* the built-in [pipe "local"] that the default local-mailer names */
	const struct cf_section *local = cf_find(cf, CF_PIPE, "local");
	assert_non_null(local);
	assert_true(local->builtin);
	assert_int_equal(local->v[PIPE_EXEC].list.n, 3);
	assert_string_equal(local->v[PIPE_EXEC].list.v[0], "/usr/bin/procmail");
	assert_string_equal(local->v[PIPE_EXEC].list.v[1], "-d");
	assert_string_equal(local->v[PIPE_EXEC].list.v[2], "${RCPT_TO}");
	assert_int_equal(local->v[PIPE_MAX_RCPT_TO].n, 1);
	assert_int_equal(local->v[PIPE_TIMEOUT].n, 300);
	/* an ordinary configuration keeps the user it was started as */
	assert_false(cf->builtin_default);
	cf_free(cf);

	/* smtpd inherits core's logger and size; its own value wins */
	cf = parse_ok("[core]\nlogger = stderr\nmax-message-size = 5k\n"
		      "[smtpd \"x.example\"]\n"
		      "[smtpd \"y.example\"]\nlogger = journal\n"
		      "max-message-size = 1G\n");
	s = cf_find(cf, CF_SMTPD, "x.example");
	assert_string_equal(s->v[SMTPD_LOGGER].s, "stderr");
	assert_int_equal(s->v[SMTPD_MAX_MESSAGE_SIZE].n, 5120);
	s = cf_find(cf, CF_SMTPD, "y.example");
	assert_string_equal(s->v[SMTPD_LOGGER].s, "journal");
	assert_int_equal(s->v[SMTPD_MAX_MESSAGE_SIZE].n, 1073741824);
	cf_free(cf);

	/* a [pipe "local"] of the file replaces the built-in one */
	cf = parse_ok("[pipe \"local\"]\nexec = /usr/lib/dovecot/deliver -d "
		      "${RCPT_TO}\n");
	local = cf_find(cf, CF_PIPE, "local");
	assert_false(local->builtin);
	assert_string_equal(local->v[PIPE_EXEC].list.v[0],
			    "/usr/lib/dovecot/deliver");
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Good values of every type                                           */

static void test_values(void **state)
{
	(void)state;
	static const struct {
		const char *size;
		uint64_t n;
	} sizes[] = {{"1", 1}, {"500k", 512000}, {"10M", 10485760},
		     {"1G", 1073741824}, {"2K", 2048}, {"10240000", 10240000}};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		char text[128];
		snprintf(text, sizeof text, "[core]\nmax-message-size = %s\n",
			 sizes[i].size);
		struct cf *cf = parse_ok(text);
		assert_true(cf->core->v[CORE_MAX_MESSAGE_SIZE].n == sizes[i].n);
		cf_free(cf);
	}
	static const struct {
		const char *d;
		uint64_t n;
	} durs[] = {{"30", 30}, {"30s", 30}, {"30m", 1800}, {"4h", 14400},
		    {"5d", 432000}, {"1w", 604800}};
	for (size_t i = 0; i < sizeof durs / sizeof *durs; i++) {
		char text[128];
		snprintf(text, sizeof text, "[core]\nqueue-lifetime = %s\n",
			 durs[i].d);
		struct cf *cf = parse_ok(text);
		assert_true(cf->core->v[CORE_QUEUE_LIFETIME].n == durs[i].n);
		cf_free(cf);
	}
	uint64_t n;
	assert_int_equal(cf_parse_size("99999999999999999999999", &n), -1);
	assert_int_equal(cf_parse_duration("5 d", &n), -1);
	assert_int_equal(cf_parse_duration("5D", &n), -1);

	/* [host:]port with numbers, service names and built-in host names */
	static const struct {
		const char *v, *host;
		uint16_t port;
	} listens[] = {
		{"25", "", 25},
		{"smtp", "", 25},
		{"submission", "", 587},
		{"submissions", "", 465},
		{"ipv6-localhost:submission", "ipv6-localhost", 587},
		{"ip6-localhost:2525", "ip6-localhost", 2525},
		{"localhost:smtp", "localhost", 25},
		{"[::1]:587", "::1", 587},
		{"[192.0.2.1]:2525", "192.0.2.1", 2525},
		{"127.0.0.1:2525", "127.0.0.1", 2525},
		{"mx.example.org:24", "mx.example.org", 24},
	};
	for (size_t i = 0; i < sizeof listens / sizeof *listens; i++) {
		char text[128];
		snprintf(text, sizeof text,
			 "[smtpd \"a.example\"]\nlisten-port = %s\n",
			 listens[i].v);
		struct cf *cf = parse_ok(text);
		const struct cf_section *s = cf_find(cf, CF_SMTPD, "a.example");
		assert_string_equal(s->listen.host, listens[i].host);
		assert_int_equal(s->listen.port, listens[i].port);
		cf_free(cf);
	}

	struct cf *cf = parse_ok(
		"[core]\ndns-server = 127.0.0.1:5353\nrecipient-delimiter = +-\n"
		"user-id = 1000\ngroup-id = mail\nbounce-to = both\n"
		"[syslog]\nfacility = local7\nident = pm\n"
		"[relay \"r\"]\naddress = unix:/run/dovecot/lmtp\n"
		"address = [192.0.2.1]:2525\naddress = host.example:26\n"
		"address = 192.0.2.9\naddress = [mx.example]\n"
		"address = relay.example\naddress = 2001:db8::1\n"
		"address = [2001:db8::2]:587\nprotocol = lmtp\ntls = no\n"
		"name = relay.example\n"
		"[smtpd \"b.example\"]\nlocal-rcpt-to = yes\naccept-mail = no\n"
		"lmtp = no\nbare-newline = reject\nmax-recipients = 100000\n"
		"timeout = 2m\ntls = no\nauth = no\nspf = off\n"
		"verify-sender = no\ntls-certificate = /etc/ssl/c.pem\n"
		"tls-key = /etc/ssl/k.pem\nauth-file = /etc/pm.auth\n"
		"[pipe \"p\"]\nexec = /bin/cat\nmax_rcpt_to = 1000\n"
		"timeout = 1h\n");
	assert_string_equal(cf->core->v[CORE_DNS_SERVER].s, "127.0.0.1:5353");
	assert_string_equal(cf->core->v[CORE_RECIPIENT_DELIMITER].s, "+-");
	assert_string_equal(cf->core->v[CORE_USER_ID].s, "1000");
	assert_string_equal(cf->core->v[CORE_GROUP_ID].s, "mail");
	assert_int_equal(cf->core->v[CORE_BOUNCE_TO].n, BOUNCE_BOTH);
	assert_int_equal(cf->syslog->v[SYSLOG_FACILITY].n, 10);
	assert_string_equal(cf->syslog->v[SYSLOG_IDENT].s, "pm");
	const struct cf_section *r = cf_find(cf, CF_RELAY, "r");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 8);
	static const char *const addrs[] = {
		"unix:/run/dovecot/lmtp", "[192.0.2.1]:2525", "host.example:26",
		"192.0.2.9", "[mx.example]", "relay.example", "2001:db8::1",
		"[2001:db8::2]:587"};
	for (int i = 0; i < 8; i++)
		assert_string_equal(r->v[RELAY_ADDRESS].list.v[i], addrs[i]);
	assert_int_equal(r->v[RELAY_PROTOCOL].n, RELAY_LMTP);
	assert_int_equal(r->v[RELAY_TLS].n, RTLS_NO);
	assert_string_equal(r->v[RELAY_NAME].s, "relay.example");
	const struct cf_section *s = cf_find(cf, CF_SMTPD, "b.example");
	assert_int_equal(s->v[SMTPD_LOCAL_RCPT_TO].n, 1);
	assert_int_equal(s->v[SMTPD_ACCEPT_MAIL].n, 0);
	assert_int_equal(s->v[SMTPD_LMTP].n, 0);
	assert_int_equal(s->v[SMTPD_BARE_NEWLINE].n, BARE_REJECT);
	assert_int_equal(s->v[SMTPD_MAX_RECIPIENTS].n, 100000);
	assert_int_equal(s->v[SMTPD_TIMEOUT].n, 120);
	assert_int_equal(s->v[SMTPD_TLS_KEY].list.n, 1);
	assert_string_equal(s->v[SMTPD_TLS_KEY].list.v[0], "/etc/ssl/k.pem");
	assert_string_equal(s->v[SMTPD_AUTH_FILE].s, "/etc/pm.auth");
	const struct cf_section *p = cf_find(cf, CF_PIPE, "p");
	assert_int_equal(p->v[PIPE_MAX_RCPT_TO].n, 1000);
	assert_int_equal(p->v[PIPE_TIMEOUT].n, 3600);
	cf_free(cf);

	/* dns-server: ip, ip:port (IPv6 is refused above) */
	static const char *const dns[] = {"192.0.2.53", "192.0.2.53:5353"};
	for (size_t i = 0; i < sizeof dns / sizeof *dns; i++) {
		char text[128];
		snprintf(text, sizeof text, "[core]\ndns-server = %s\n", dns[i]);
		cf = parse_ok(text);
		assert_string_equal(cf->core->v[CORE_DNS_SERVER].s, dns[i]);
		cf_free(cf);
	}

	assert_null(cf_relay_address_error("host.example"));
	assert_null(cf_relay_address_error("[192.0.2.1]"));
	assert_null(cf_relay_address_error("unix:/run/lmtp"));
	assert_non_null(cf_relay_address_error("unix:run/lmtp"));
	assert_non_null(cf_relay_address_error("host..example"));
	/* what the client connects to at run time is what --check accepts */
	assert_null(cf_relay_address_error("[mx.example]:2525"));
	assert_null(cf_relay_address_error("[IPv6:2001:db8::1]:25"));
	/* tls = verify needs a host name: NAME, or the name key */
	cf_free(parse_ok("[relay \"hub.example\"]\naddress = [127.0.0.1]\n"
			 "tls = verify\n"));
	cf_free(parse_ok("[relay \"smart\"]\naddress = [127.0.0.1]\n"
			 "name = relay.example\ntls = verify\n"));
	cf_free(parse_ok("[relay \"smart\"]\naddress = [127.0.0.1]\n"
			 "tls = required\n"));
	assert_string_equal(cf_relay_address_error("[mx.example]:99999"),
			    "expected a port number or service name");
	assert_true(cf_host_is_loopback("127.0.0.2"));
	assert_true(cf_host_is_loopback("::1"));
	assert_true(cf_host_is_loopback("localhost"));
	assert_true(cf_host_is_loopback("ipv6-localhost"));
	assert_true(cf_host_is_loopback("ip6-localhost"));
	assert_false(cf_host_is_loopback("192.0.2.1"));
	assert_false(cf_host_is_loopback(""));
}

/* References resolve to sections of the file, in any order. */
static void test_references(void **state)
{
	(void)state;
	static const char *const loggers[] = {"syslog", "stderr", "journal",
					      "lf"};
	for (size_t i = 0; i < 4; i++) {
		char text[256];
		snprintf(text, sizeof text,
			 "[core]\nlogger = %s\n[smtpd \"a.example\"]\n"
			 "logger = %s\n[logfile \"lf\"]\nfile = /var/log/pm\n",
			 loggers[i], loggers[i]);
		struct cf *cf = parse_ok(text);
		assert_string_equal(cf->core->v[CORE_LOGGER].s, loggers[i]);
		assert_string_equal(
			cf_find(cf, CF_SMTPD, "a.example")->v[SMTPD_LOGGER].s,
			loggers[i]);
		cf_free(cf);
	}
	/* sections named after their use, declared after it */
	struct cf *cf = parse_ok("[core]\nlocal-mailer = deliver\n"
				 "[smtpd \"a.example\"]\nrouting-table = t1\n"
				 "routing-table = t2\n"
				 "[pipe \"deliver\"]\nexec = /usr/bin/deliver\n"
				 "[route \"t2\"]\n[route \"t1\"]\n");
	assert_string_equal(cf->core->v[CORE_LOCAL_MAILER].s, "deliver");
	const struct cf_section *s = cf_find(cf, CF_SMTPD, "a.example");
	assert_string_equal(s->v[SMTPD_ROUTING_TABLE].list.v[0], "t1");
	assert_string_equal(s->v[SMTPD_ROUTING_TABLE].list.v[1], "t2");
	cf_free(cf);
	/* a routing table that exists only because a flag declared it */
	cf = cf_new();
	static const char rt[] = "[smtpd \"a.example\"]\nrouting-table = t\n";
	cf_load_text(cf, "t.cf", rt, strlen(rt));
	cf_flag(cf, "route.\"t\"", 1);
	finish_config(cf, 0);
	assert_int_equal(cf->nerrors, 0);
	assert_non_null(cf_find(cf, CF_ROUTE, "t"));
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Flags (SPEC 3.3)                                                    */

static struct cf *with_flags(const char *text, const char *const *flags,
			     unsigned mode)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "t.cf", text, strlen(text));
	for (int i = 0; flags[i]; i++)
		cf_flag(cf, flags[i], i + 1);
	finish_config(cf, mode);
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
				   "address = 192.0.2.2\nprotocol = smtp\n"
				   "[smtpd \"foo\"]\nlisten-port = 25\n"
				   "[route]\njoe@x.example /m/joe/\n"
				   "postmaster jane\n"
				   "ann@x.example /m/ann/\n"
				   "[route \"t\"]\nt1@x.example discard\n";
	const char *flags[] = {
		"core-hostname=b.example",
		"relay.\"r\".address = 192.0.2.3",
		"smtpd.\"foo\".listen-port = 2525",
		"smtpd.\"new\".listen-port=2526",
		"smtpd-new-timeout=10s",
		"route.\"\".ANN@x.example=/m/ann2/",
		"route-zed@x.example=/m/zed/",
		"route.\"\".\"a=b@x.example\" = /m/srs/",
		"route-postmaster=root",
		"route.\"t\".t0@x.example=reject",
		"core.\"\".logger=stderr",
		"core-spool-directory=/x",
		"route.\"empty\"",
		"smtpd.\"declared\"",
		NULL,
	};
	struct cf *cf = with_flags(text, flags, CF_NO_INCLUDES);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	assert_string_equal(cf->core->v[CORE_HOSTNAME].s, "b.example");
	assert_string_equal(cf->core->v[CORE_SPOOL_DIRECTORY].s, "/x");
	assert_string_equal(cf->core->v[CORE_LOGGER].s, "stderr");
	/* a flag replaces the whole value list */
	const struct cf_section *r = cf_find(cf, CF_RELAY, "r");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 1);
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[0], "192.0.2.3");
	assert_int_equal(cf_find(cf, CF_SMTPD, "foo")->listen.port, 2525);
	const struct cf_section *s = cf_find(cf, CF_SMTPD, "new");
	assert_non_null(s);
	assert_int_equal(s->listen.port, 2526);
	assert_int_equal(s->v[SMTPD_TIMEOUT].n, 10);
	assert_non_null(cf_find(cf, CF_SMTPD, "declared"));
	assert_non_null(cf_find(cf, CF_ROUTE, "empty"));
	/* route flags: a new pattern comes before the table's lines, a known
	 * one (case-insensitively) replaces its line in place */
	const struct route_table *g = cf->global_route->table;
	assert_int_equal(g->n, 5);
	assert_route(cf, &g->e[0], "zed@x.example", "/m/zed/");
	assert_route(cf, &g->e[1], "a=b@x.example", "/m/srs/");
	assert_route(cf, &g->e[2], "joe@x.example", "/m/joe/");
	assert_route(cf, &g->e[3], "postmaster", "root");
	assert_route(cf, &g->e[4], "ANN@x.example", "/m/ann2/");
	assert_string_equal(g->e[0].pos.file, "command line");
	assert_int_equal(g->e[0].pos.line, 7);
	const struct route_table *t = table(cf, "t");
	assert_int_equal(t->n, 2);
	assert_route(cf, &t->e[0], "t0@x.example", "reject");
	assert_route(cf, &t->e[1], "t1@x.example", "discard");
	char *d = dump(cf);
	assert_string_equal(
		d, "core.hostname = b.example\n"
		   "relay.\"r\".address = 192.0.2.3\n"
		   "relay.\"r\".protocol = smtp\n"
		   "smtpd.\"foo\".listen-port = 2525\n"
		   "route.\"\".zed@x.example = /m/zed/\n"
		   "route.\"\".\"a=b@x.example\" = /m/srs/\n"
		   "route.\"\".joe@x.example = /m/joe/\n"
		   "route.\"\".postmaster = root\n"
		   "route.\"\".ANN@x.example = /m/ann2/\n"
		   "route.\"t\".t0@x.example = reject\n"
		   "route.\"t\".t1@x.example = discard\n"
		   "smtpd.\"new\".listen-port = 2526\n"
		   "smtpd.\"new\".timeout = 10s\n"
		   "core.logger = stderr\n"
		   "core.spool-directory = /x\n"
		   "route.\"empty\"\n"
		   "smtpd.\"declared\"\n");
	free(d);
	cf_free(cf);

	/* several flags for a repeatable key build its list, in order */
	const char *addrs[] = {"relay.\"r\".address=192.0.2.7",
			       "relay-r-address=[192.0.2.8]:2525", NULL};
	cf = with_flags(text, addrs, 0);
	assert_int_equal(cf->nerrors, 0);
	r = cf_find(cf, CF_RELAY, "r");
	assert_int_equal(r->v[RELAY_ADDRESS].list.n, 2);
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[0], "192.0.2.7");
	assert_string_equal(r->v[RELAY_ADDRESS].list.v[1], "[192.0.2.8]:2525");
	cf_free(cf);
}

static void test_bad_flags(void **state)
{
	(void)state;
	static const struct {
		const char *flag, *diag;
	} cases[] = {
		{"nosuch-key=1", "command line:7:3: expected a section (core, "
				 "syslog, logfile, pipe, relay, milter, smtpd, route) at "
				 "the start of the flag, found 'nosuch'\n"},
		{"core", "command line:7:7: expected '.' or '-' after 'core'\n"},
		{"core-hostnme=x", "command line:7:8: expected a key of [core], "
				   "found 'hostnme'\n"},
		{"core.bogus=1", "command line:7:8: expected a key of [core], "
				 "found 'bogus'\n"},
		{"core.hostname", "command line:7:16: expected a value after "
				  "'hostname', found the end of the line\n"},
		{"core.hostname=", "command line:7:17: expected a value after "
				   "'hostname', found the end of the line\n"},
		{"core.hostname==x", "command line:7:17: expected a value, found "
				     "'=' (quote a value that contains '=')\n"},
		{"core.hostname=a b", "command line:7:19: expected one value for "
				      "'hostname', found 2 (quote a value that "
				      "contains blanks)\n"},
		{"core-hostname=-x", "command line:7:17: expected a host name, "
				     "found '-x'\n"},
		{"smtpd-x=1", "command line:7:10: expected smtpd-NAME-KEY, "
			      "found no key\n"},
		{"smtpd.listen-port=25", "command line:7:3: expected a name: "
					 "smtpd.\"NAME\".KEY\n"},
		{"smtpd.\"\".listen-port=25", "command line:7:3: expected a "
					      "name: smtpd.\"NAME\".KEY\n"},
		{"core.\"x\".hostname=a", "command line:7:3: [core] takes no "
					  "name\n"},
		{"smtpd.\"x\"extra", "command line:7:12: expected '.' after the "
				     "section name\n"},
		{"core.hostname=\"unterminated", "command line:7:17: expected "
						 "'\"' to close the string, "
						 "found the end of the line\n"},
		{"smtpd.\"foo\".listen-port = abc", "command line:7:29: expected "
						    "a port number or service "
						    "name, found 'abc'\n"},
		{"smtpd-foo-listen-port=abc", "command line:7:25: expected a "
					      "port number or service name, "
					      "found 'abc'\n"},
		{"route-postmaster=", "command line:7:20: expected a value after "
				      "'postmaster', found the end of the "
				      "line\n"},
		{"route-joe@x.example=/var/mail/joe", "command line:7:23: "
						      "expected a Maildir path "
						      "ending in '/' (mbox "
						      "files are not "
						      "supported), found "
						      "'/var/mail/joe'\n"},
		{"smtpd.\"x\".tls=starttls", "command line:7:3: expected "
					     "tls-certificate and tls-key with "
					     "tls = starttls\n"},
		{"smtpd.\"x\".routing-table=nosuch", "command line:7:27: "
						     "expected the name of a "
						     "[route], found 'nosuch', "
						     "which no section "
						     "defines\n"},
	};
	int failed = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct cf *cf = cf_new();
		cf_load_text(cf, "t.cf", "", 0);
		cf_flag(cf, cases[i].flag, 7);
		finish_config(cf, 0);
		char *d = diagnostics(cf);
		if (!cf->nerrors || strcmp(d, cases[i].diag)) {
			print_error("--%s: want\n%sgot\n%s\n", cases[i].flag,
				    cases[i].diag, d);
			failed++;
		}
		free(d);
		cf_free(cf);
	}
	assert_int_equal(failed, 0);
	/* the same single-valued key twice on the command line */
	const char *twice[] = {"core-hostname=a.example",
			       "core.hostname=b.example", NULL};
	struct cf *cf = with_flags("", twice, 0);
	char *d = diagnostics(cf);
	assert_string_equal(d, "command line:2:3: expected 'hostname' once in "
			       "[core], found it again (first set at command "
			       "line:1)\n");
	free(d);
	cf_free(cf);
	/* errors of the file and of flags, each in its place */
	const char *one[] = {"core-bounce-to=nobody", NULL};
	cf = with_flags("[core]\nhostname = -x\n", one, 0);
	d = diagnostics(cf);
	assert_string_equal(d, "t.cf:2:12: expected a host name, found '-x'\n"
			       "command line:1:18: expected sender, postmaster "
			       "or both, found 'nobody'\n");
	free(d);
	cf_free(cf);
}

/* Feeding --dump back as flags over an empty file gives the same dump. */
static void round_trip(const char *text)
{
	struct cf *cf = cf_new();
	cf_load_text(cf, "t.cf", text, strlen(text));
	finish_config(cf, CF_NO_INCLUDES);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
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
	finish_config(cf, CF_NO_INCLUDES);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	char *d2 = dump(cf);
	assert_string_equal(d1, d2);
	free(copy);
	free(d1);
	free(d2);
	cf_free(cf);
}

static void test_dump_round_trip(void **state)
{
	(void)state;
	char buf[4096];
	FILE *f = fopen("tests/data/seed.cf", "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	round_trip(buf);
	round_trip("joe@example.org /m/joe/, \"|/usr/bin/logger -t \\\"x y\\\"\"\n"
		   "\"srs0=ab=cd@example.org\" /m/srs/\n"
		   "\"x=y@example.org\" \"|/bin/echo a=b\" , discard\n"
		   "[relay \"r\"]\naddress = 192.0.2.1\naddress = \"[192.0.2.2]:2525\"\n"
		   "address 192.0.2.3 192.0.2.4\n"
		   "[smtpd \"a.example\"]\nrouting-table = t1\nrouting-table = t2\n"
		   "[smtpd \"submit\"]\nlisten-port = unix:/run/postmaster/submit\n"
		   "[core]\ntrusted-users = root daemon\n"
		   "[route \"t1\"]\n[route \"t2\"]\n@example.org mx\n"
		   "[syslog]\nident = \"with # hash, \\\\ backslash and \\\"\"\n"
		   "[pipe \"p\"]\nexec = /bin/x \"\" \"two words\" \"\xc3\xa9\"\n"
		   "[route \"odd.name-with \\\"quotes\\\"\"]\nx@ discard\n");
	/* the dump of that file, exactly */
	static const char small[] =
		"\"srs0=ab=cd@example.org\" /m/srs/\n[route \"t\"]\n"
		"[pipe \"p\"]\nexec = /bin/x \"\" \"a b\"\n";
	struct cf *cf = parse(small, strlen(small), CF_NO_INCLUDES);
	assert_int_equal(cf->nerrors, 0);
	char *d = dump(cf);
	assert_string_equal(d, "route.\"\".\"srs0=ab=cd@example.org\" = /m/srs/\n"
			       "route.\"t\"\n"
			       "pipe.\"p\".exec = /bin/x \"\" \"a b\"\n");
	free(d);
	cf_free(cf);
}

/* ------------------------------------------------------------------ */
/* Includes                                                            */

static void test_includes(void **state)
{
	(void)state;
	make_dir();
	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	/* relative to the including file, nested, in order */
	put("main.cf", "[route]\nfirst@x.example /m/1/\nfile \"sub/a.rt\"\n"
		       "last@x.example /m/4/\n[route \"named\"]\nfile \"sub/b.rt\"\n"
		       /* --check as root needs it */
		       "[core]\nuser-id = nobody\n");
	put("sub/a.rt", "# a route file\na@x.example /m/2/\nfile \"b.rt\"\n");
	put("sub/b.rt", "b@x.example /m/3/\n");
	struct cf *cf = load_in_dir("main.cf", 0);
	if (cf->nerrors)
		print_error("%s", cf->diag.s);
	assert_int_equal(cf->nerrors, 0);
	const struct route_table *g = cf->global_route->table;
	assert_int_equal(g->n, 4);
	assert_route(cf, &g->e[0], "first@x.example", "/m/1/");
	assert_route(cf, &g->e[1], "a@x.example", "/m/2/");
	assert_int_equal(g->e[1].pos.line, 2);
	assert_route(cf, &g->e[2], "b@x.example", "/m/3/");
	assert_route(cf, &g->e[3], "last@x.example", "/m/4/");
	const struct route_table *nt = table(cf, "named");
	assert_int_equal(nt->n, 1);
	assert_route(cf, &nt->e[0], "b@x.example", "/m/3/");
	cf_free(cf);

	/* an absolute path */
	char text[400];
	snprintf(text, sizeof text, "file \"%s/sub/b.rt\"\n", dir);
	put("abs.cf", text);
	cf = load_in_dir("abs.cf", 0);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(cf->global_route->table->n, 1);
	cf_free(cf);

	/* --check compiles each top-level route file; a later run uses the
	 * index, and ignores it with a warning once the text changed */
	cf = load_in_dir("main.cf", CF_CHECK);
	assert_int_equal(cf->nerrors, 0);
	cf_free(cf);
	char ix[320];
	snprintf(ix, sizeof ix, "%s/sub/a.rt.pmdb", dir);
	assert_int_equal(access(ix, F_OK), 0);
	cf = load_in_dir("main.cf", 0);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(cf->nwarnings, 0);
	g = cf->global_route->table;
	assert_int_equal(g->n, 3);
	assert_int_equal(g->e[1].type, RE_INDEX);
	cf_free(cf);
	put("sub/b.rt", "b@x.example /m/3/\nc@x.example /m/5/\n");
	cf = load_in_dir("main.cf", 0);
	assert_int_equal(cf->nerrors, 0);
	char *d = diagnostics(cf);
	assert_string_equal(strip_dir(d),
			    "main.cf:3:6: warning: the compiled index of "
			    "\"sub/a.rt\" is older than the file and is ignored; "
			    "run postmaster --check to rebuild it\n"
			    "main.cf:6:6: warning: the compiled index of "
			    "\"sub/b.rt\" is older than the file and is ignored; "
			    "run postmaster --check to rebuild it\n");
	free(d);
	g = cf->global_route->table;
	assert_int_equal(g->n, 5);
	assert_route(cf, &g->e[3], "c@x.example", "/m/5/");
	cf_free(cf);

	/* a loop, through another file and directly */
	snprintf(ix, sizeof ix, "%s/sub/b.rt.pmdb", dir);
	unlink(ix);
	snprintf(ix, sizeof ix, "%s/sub/a.rt.pmdb", dir);
	unlink(ix);
	put("main.cf", "file \"sub/a.rt\"\n");
	put("sub/b.rt", "b@x.example /m/3/\nfile \"a.rt\"\n");
	cf = load_in_dir("main.cf", 0);
	d = diagnostics(cf);
	assert_string_equal(strip_dir(d), "sub/b.rt:2:6: route file "
					  "\"sub/a.rt\" includes itself "
					  "(include loop)\n");
	free(d);
	cf_free(cf);
	put("self.cf", "file \"self.rt\"\n");
	put("self.rt", "x@x.example /m/x/\nfile \"self.rt\"\n");
	cf = load_in_dir("self.cf", 0);
	d = diagnostics(cf);
	assert_string_equal(strip_dir(d), "self.rt:2:6: route file \"self.rt\" "
					  "includes itself (include loop)\n");
	free(d);
	cf_free(cf);

	/* deeper than 8 */
	put("deep.cf", "file \"d1.rt\"\n");
	for (int i = 1; i <= 10; i++) {
		char name[32], t[64];
		snprintf(name, sizeof name, "d%d.rt", i);
		snprintf(t, sizeof t, "d%d@x.example /m/%d/\nfile \"d%d.rt\"\n",
			 i, i, i + 1);
		put(name, t);
	}
	put("d11.rt", "x@x.example /m/x/\n");
	cf = load_in_dir("deep.cf", 0);
	d = diagnostics(cf);
	assert_string_equal(strip_dir(d), "d8.rt:2:6: expected at most 8 nested "
					  "route files, found more at "
					  "\"d9.rt\"\n");
	free(d);
	cf_free(cf);
	/* exactly 8 is fine */
	put("d8.rt", "d8@x.example /m/8/\n");
	cf = load_in_dir("deep.cf", 0);
	assert_int_equal(cf->nerrors, 0);
	assert_int_equal(cf->global_route->table->n, 8);
	cf_free(cf);

	/* missing, a directory, a section header inside, an error inside */
	put("main.cf", "file \"missing.rt\"\nfile \"sub\"\nfile \"hdr.rt\"\n"
		       "file \"bad.rt\"\n");
	put("hdr.rt", "a@x.example /m/a/\n[core]\n");
	put("bad.rt", "ok@x.example /m/ok/\n\nb@x.example /m/b\n");
	cf = load_in_dir("main.cf", 0);
	d = diagnostics(cf);
	assert_string_equal(strip_dir(d),
			    "main.cf:1:6: route file \"missing.rt\" cannot "
			    "open: No such file or directory\n"
			    "main.cf:2:6: route file \"sub\" is a directory, "
			    "expected a file\n"
			    "hdr.rt:2:1: expected a route line, found a section "
			    "header (a route file holds routes only)\n"
			    "bad.rt:3:13: expected a Maildir path ending in '/' "
			    "(mbox files are not supported), found '/m/b'\n");
	free(d);
	cf_free(cf);
	/* --dump does not read route files, so their errors wait */
	cf = load_in_dir("main.cf", CF_NO_INCLUDES);
	assert_int_equal(cf->nerrors, 0);
	cf_free(cf);
	remove_dir();
}

/* cf_passwd_files(): /etc/passwd answers for user-id only where glibc's
 * getpwnam would take the same answer from it (files first in
 * nsswitch.conf, the name on a whole, well-formed line); everything else
 * is left to getpwnam. */
static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_passwd_files(void **state)
{
	(void)state;
	char tmp[] = "/tmp/pm-passwd.XXXXXX";
	assert_non_null(mkdtemp(tmp));
	char ns[64], pw[64];
	snprintf(ns, sizeof ns, "%s/nsswitch.conf", tmp);
	snprintf(pw, sizeof pw, "%s/passwd", tmp);
	write_text(pw, "root:x:0:0:root:/root:/bin/bash\n"
		       "nob:x:7:7::/:/bin/sh\n"
		       "nobody:x:65534:65533:nobody:/nonexistent:/usr/sbin/nologin\n"
		       "bad:x:12a:3::/:/bin/sh\n"
		       "neg:x:-1:3::/:/bin/sh\n"
		       "a:b:1:2:3:/:/bin/sh\n"
		       "cut:x:42:4");
	uid_t u = 1;
	gid_t g = 1;
	write_text(ns, "# comment passwd: compat\n\n  passwd:\tfiles systemd\n"
		       "group: files\n");
	assert_int_equal(cf_passwd_files(ns, pw, "nobody", &u, &g), 1);
	assert_int_equal(u, 65534);
	assert_int_equal(g, 65533);
	assert_int_equal(cf_passwd_files(ns, pw, "nob", &u, &g), 1);
	assert_int_equal(u, 7);
	assert_int_equal(cf_passwd_files(ns, pw, "root", &u, &g), 1);
	assert_int_equal(u, 0);
	/* not there, a prefix of a name, malformed or cut off: getpwnam */
	u = 99;
	assert_int_equal(cf_passwd_files(ns, pw, "nobod", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "_postmaster", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "bad", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "neg", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "cut", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "a:b", &u, &g), 0);
	assert_int_equal(cf_passwd_files(ns, pw, "", &u, &g), 0);
	assert_int_equal(u, 99);
	/* another source first, compat's +/- rules, no passwd line, no file */
	const char *others[] = {"passwd: systemd files\n", "passwd: compat\n",
				"passwd: filesystem\n", "group: files\n"};
	for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
		write_text(ns, others[i]);
		assert_int_equal(cf_passwd_files(ns, pw, "nobody", &u, &g), 0);
	}
	unlink(ns);
	assert_int_equal(cf_passwd_files(ns, pw, "nobody", &u, &g), 0);
	unlink(pw);
	assert_int_equal(rmdir(tmp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_missing_and_directory),
		cmocka_unit_test(test_optional_directory),
		cmocka_unit_test(test_grammar_corners),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_includes),
		cmocka_unit_test(test_passwd_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
