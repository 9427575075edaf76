/*
 * postmaster.c - main(): reads the command line, loads the configuration
 * and dispatches to --check, --dump or --route.
 *
 * Owns: option parsing and exit statuses (<sysexits.h>: EX_USAGE, EX_NOUSER
 * for a refused address, EX_TEMPFAIL for a temporary refusal, EX_CONFIG
 * for a configuration error). Everything
 * else lives in the file that owns the concern. A configuration that does
 * not parse never gets past this file.
 */
#include "cf.h"
#include "check.h"
#include "deliver.h"
#include "flush.h"
#include "fmt.h"
#include "inject.h"
#include "log.h"
#include "reply.h"
#include "proxy.h"
#include "route.h"
#include "route_load.h"
#include "rtindex.h"
#include "session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#define VERSION "0.1"

static const char usage[] =
	"usage: postmaster [--config=FILE] [--smtpd=NAME] [--SCOPE=VALUE ...] MODE\n"
	"modes:\n"
	"  --check                validate the configuration, compile route files\n"
	"  --dump [--defaults]    print the configuration as scoped assignments\n"
	"  --route=ADDRESS        show where ADDRESS goes, step by step\n"
	"  --flush [--now]        deliver what the spool holds that is due (--now: all)\n"
	"  --flush=ID             deliver one spooled message now\n"
	"  --queue                list the spool\n"
	"  --delete=ID            remove a spooled message without a bounce\n"
	"  --release=ID           free a message a milter quarantined (the next\n"
	"                         --flush delivers it)\n"
	"  --inject [sendmail options] [RECIPIENT ...]\n"
	"                         submit the message on standard input\n"
	"  --version, --help\n"
	"Any line that --dump prints is also a flag: --'core.hostname=mx.example.org'.\n"
	"Without a mode, serves one SMTP/LMTP session on stdin/stdout (or fd 3\n"
	"with systemd's LISTEN_FDS=1). Started as sendmail, mailq or newaliases,\n"
	"it takes sendmail's options (postmaster(8), SENDMAIL COMPATIBILITY).\n";

static const char usage_line[] =
	"usage: postmaster [--config=FILE] [--smtpd=NAME] [--SECTION-KEY=VALUE ...] "
	"[--check | --dump | --route=ADDRESS | --flush | --queue | --delete=ID | "
	"--release=ID | --inject ...] [--version] "
	"(--help: more)\n";

/* The options; every other "--" argument must be a configuration flag
 * (cf_flag_shaped), and anything else is a usage error. */
enum opt { O_CHECK, O_CONFIG, O_DEFAULTS, O_DELETE, O_DUMP, O_FLUSH, O_HELP,
	   O_INJECT, O_NOW, O_QUEUE, O_RELEASE, O_ROUTE, O_SMTPD, O_VERSION,
	   O_NOPTS };
enum { V_NONE, V_REQUIRED, V_OPTIONAL };
static const struct {
	const char *name;
	int value;
} opts[O_NOPTS] = {
	[O_CHECK] = {"check", V_NONE},	   [O_CONFIG] = {"config", V_REQUIRED},
	[O_DEFAULTS] = {"defaults", V_NONE}, [O_DELETE] = {"delete", V_REQUIRED},
	[O_DUMP] = {"dump", V_NONE},	   [O_FLUSH] = {"flush", V_OPTIONAL},
	[O_HELP] = {"help", V_NONE},	   [O_INJECT] = {"inject", V_NONE},
	[O_NOW] = {"now", V_NONE},	   [O_QUEUE] = {"queue", V_NONE},
	[O_RELEASE] = {"release", V_REQUIRED},
	[O_ROUTE] = {"route", V_REQUIRED},   [O_SMTPD] = {"smtpd", V_REQUIRED},
	[O_VERSION] = {"version", V_NONE},
};
enum { ARG_FLAG = -1, ARG_BAD = -2 };

/* Which option a is (its value in *value), ARG_FLAG for a configuration
 * flag, or ARG_BAD with the usage error in why. */
static int classify(const char *a, const char **value, char *why,
		    size_t whylen)
{
	*value = NULL;
	if (!strcmp(a, "-h"))
		return O_HELP;
	if (strncmp(a, "--", 2) || !a[2]) {
		fmt_snprintf(why, whylen, "unexpected argument '%s'", a);
		return ARG_BAD;
	}
	const char *name = a + 2, *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	for (int o = 0; o < O_NOPTS; o++) {
		if (strlen(opts[o].name) != n || strncmp(opts[o].name, name, n))
			continue;
		if (eq && opts[o].value == V_NONE) {
			fmt_snprintf(why, whylen, "--%s takes no value", opts[o].name);
			return ARG_BAD;
		}
		if ((!eq || !eq[1]) && opts[o].value == V_REQUIRED) {
			fmt_snprintf(why, whylen, "--%s needs a value: --%s=%s",
				 opts[o].name, opts[o].name,
				 o == O_CONFIG ? "FILE"
				 : o == O_DELETE || o == O_RELEASE ? "ID"
				 : o == O_ROUTE ? "ADDRESS" : "NAME");
			return ARG_BAD;
		}
		if (eq && !eq[1] && opts[o].value == V_OPTIONAL) {
			fmt_snprintf(why, whylen, "--%s= needs a value: --%s=ID, "
				     "or --%s alone", opts[o].name,
				     opts[o].name, opts[o].name);
			return ARG_BAD;
		}
		*value = eq ? eq + 1 : NULL;
		return o;
	}
	if (cf_flag_shaped(name))
		return ARG_FLAG;
	fmt_snprintf(why, whylen, "unknown option '%s'", a);
	return ARG_BAD;
}

static int report(struct cf *cf)
{
	cf_print_diagnostics(cf, stderr);
	return cf->nerrors ? EX_CONFIG : EX_OK;
}

/* A relayed recipient as a session answers a client that is neither
 * authenticated nor in relay-clients; the line before says what those
 * get. */
static void refuse_relaying(struct route_result *r, const char *addr)
{
	printf("relay-clients and authenticated clients: %d %s %s\n", r->code,
	       r->dsn, r->text);
	struct addr a;
	const char *why;
	size_t where;
	char rcpt[ADDR_PATH_MAX + 8];
	addr_parse(addr, strlen(addr), ADDR_NODOMAIN_OK | ADDR_UTF8, &a, &why,
		   &where);
	addr_format(&a, rcpt, sizeof rcpt);
	r->code = 554;
	esc_for_code(r->dsn, r->code, ESC_DELIVERY_NOT_AUTHORIZED);
	fmt_snprintf(r->text, sizeof r->text, "<%s>: relaying denied", rcpt);
}

/* --route: its result's buffers stay off a session's stack; outside: the
 * last line is the reply to a client outside relay-clients (sendmail -bv
 * asks for a local submitter's, and a unix listener has no other) */
RARE_PATH static int do_route(struct cf *cf, const char *addr,
			      const char *smtpd_name, int outside)
{
	const struct cf_section *smtpd;
	if (cf_choose_listener(cf, smtpd_name, NULL, NULL, &smtpd) < 0) {
		uint32_t n;
		struct cf_section **v = cf_listeners(cf, &n);
		fprintf(stderr, "postmaster: several [smtpd] sections; choose "
				"one with --smtpd=NAME:");
		for (uint32_t i = 0; i < n; i++)
			fprintf(stderr, " %s", v[i]->name);
		fputc('\n', stderr);
		if (n)
			free(v);
		return EX_USAGE;
	}
	/* a local submitter (SO_PEERCRED) is never proxied nor refused
	 * relaying: sendmail, or any client of a unix socket */
	int local = !outside || (smtpd && smtpd->listen.path[0]);
	struct route_result r;
	route_resolve(cf, smtpd, addr, strlen(addr),
		      ROUTE_SMTP | ROUTE_UTF8 | ROUTE_TRACE, &r);
	if (smtpd)
		printf("route for [smtpd \"%s\"]:\n", smtpd->name);
	else
		printf("route for the built-in listener:\n");
	fputs(r.steps.s ? r.steps.s : "", stdout);
	for (uint32_t i = 0; i < r.nt; i++) {
		const struct route_target *t = &r.t[i];
		printf("deliver: %s %s <%s>\n", route_target_kind_name(t->kind),
		       t->arg, t->addr);
	}
	plan_refuse_blanks(&r, addr);
	if (r.code == 250) {
		/* what a session of this build answers for it */
		struct plan p = {0};
		struct addr a;
		const char *why;
		size_t where;
		char rcpt[ADDR_PATH_MAX + 8];
		addr_parse(addr, strlen(addr), ADDR_NODOMAIN_OK | ADDR_UTF8, &a,
			   &why, &where);
		addr_format(&a, rcpt, sizeof rcpt);
		char key[300];
		int proxy = !local && (smtpd ? smtpd->v[SMTPD_PROXY].n : 1);
		if (plan_add(&p, &r, rcpt) == PLAN_OK)
			printf("delivery: direct, without the spool\n");
		else if (proxy && proxy_carriable(&r, 0, key, sizeof key))
			printf("delivery: proxy to %s, live while the client "
			       "is connected, when the transaction's first "
			       "recipient goes there and the others too "
			       "(else through the spool)\n",
			       key);
		else
			printf("delivery: through the spool\n");
		plan_free(&p);
	}
	if (r.code == 250 && r.relaying && !local)
		refuse_relaying(&r, addr);
	printf("%d %s %s\n", r.code, r.dsn, r.text);
	int ex = sysexits_for_code(r.code);
	route_result_free(&r);
	return ex;
}

static void summary(const struct cf *cf)
{
	uint32_t listeners = 0, tables = 0, routes = 0, compiled = 0;
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		const struct cf_section *s = &cf->secs[i];
		if (s->kind == CF_SMTPD)
			listeners++;
		if (s->kind != CF_ROUTE)
			continue;
		tables++;
		for (uint32_t j = 0; j < s->table->n; j++) {
			if (s->table->e[j].type == RE_INDEX) {
				compiled++;
				routes += rtindex_count(s->table->e[j].idx);
			} else {
				routes++;
			}
		}
	}
	printf("%s: ok: %u listener%s, %u route table%s, %u route%s\n",
	       cf->path ? cf->path : "built-in default", listeners,
	       listeners == 1 ? "" : "s", tables, tables == 1 ? "" : "s",
	       routes, routes == 1 ? "" : "s");
	(void)compiled;
}

/* What the command line asks for. */
struct opts {
	const char *config, *smtpd, *route, *flush_id, *delete_id, *release_id;
	int check, dump, defaults, flush, now, queue;
	int nflags; /* --SECTION-KEY=VALUE flags, applied after the file */
	int nargs;  /* postmaster's own arguments; sendmail's follow */
	int inject, sending;
	struct inject inj;
};

/* Reads argv into o: -1 to go on, or the exit status (after --version,
 * --help, or a word that is no option). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	o->nargs = argc;
	o->inject = inject_named(argv[0]);
	if (o->inject && inject_options(argc, argv, &o->inj) < 0)
		return EX_USAGE;
	for (int i = o->inject ? argc : 1; i < argc; i++) {
		const char *v;
		char why[256];
		switch (classify(argv[i], &v, why, sizeof why)) {
		case ARG_BAD:
			fprintf(stderr, "postmaster: %s\n%s", why, usage_line);
			return EX_USAGE;
		case ARG_FLAG:
			o->nflags++; /* applied after the file */
			break;
		case O_CONFIG: o->config = v; break;
		case O_SMTPD: o->smtpd = v; break;
		case O_ROUTE: o->route = v; break;
		case O_CHECK: o->check = 1; break;
		case O_DUMP: o->dump = 1; break;
		case O_DEFAULTS: o->defaults = 1; break;
		case O_VERSION:
			printf("postmaster %s\n", VERSION);
			return EX_OK;
		case O_HELP:
			fputs(usage, stdout);
			return EX_OK;
		case O_FLUSH:
			o->flush = 1;
			o->flush_id = v;
			break;
		case O_NOW: o->now = 1; break;
		case O_QUEUE: o->queue = 1; break;
		case O_DELETE: o->delete_id = v; break;
		case O_RELEASE: o->release_id = v; break;
		case O_INJECT:
			if (inject_options(argc - i, argv + i, &o->inj) < 0)
				return EX_USAGE;
			o->inject = 1;
			o->nargs = i;
			i = argc;
			break;
		}
	}
	if (o->inject) { /* sendmail's modes are postmaster's */
		o->check += o->inj.mode == INJ_CHECK;
		o->queue += o->inj.mode == INJ_QUEUE;
		o->flush += o->inj.mode == INJ_FLUSH;
		o->now += o->inj.mode == INJ_FLUSH && o->inj.flush_all;
		if (o->inj.mode == INJ_ROUTE) /* "": two modes */
			o->route = o->route ? "" : o->inj.rcpt[0];
		if (!o->config)
			o->config = o->inj.config;
		/* the configuration named (NULL: the default one), which
		 * decides whether the system's submit socket may serve */
		o->inj.config = o->config;
	}
	/* -bs: relayed to the submit socket's session, or served by root
	 * in-process with the section a message would get (inject_smtp) */
	o->sending = o->inject && (o->inj.mode == INJ_SEND ||
				   o->inj.mode == INJ_SMTP);
	return -1;
}

/* Options that do not go together: -1 to go on, or the exit status. */
static int check_args(const struct opts *o)
{
	if (o->check + o->dump + (o->route != NULL) + o->flush + o->queue +
		    (o->delete_id != NULL) + (o->release_id != NULL) +
			    o->sending > 1 ||
	    (o->route && !*o->route)) {
		fprintf(stderr, "postmaster: choose one of --check, --dump, "
				"--route, --flush, --queue, --delete, "
				"--release and --inject\n");
		return EX_USAGE;
	}
	if (o->now && !o->flush) {
		fprintf(stderr, "postmaster: --now goes with --flush\n");
		return EX_USAGE;
	}
	const char *qid = o->flush_id	 ? o->flush_id
			  : o->delete_id ? o->delete_id
					 : o->release_id;
	for (const char *id = qid; id && *id; id++)
		if (!((*id >= '0' && *id <= '9') || (*id >= 'A' && *id <= 'F'))) {
			fprintf(stderr, "postmaster: not a queue id: %s\n",
				qid);
			return EX_USAGE;
		}
	if (o->defaults && !o->dump) {
		fprintf(stderr, "postmaster: --defaults goes with --dump\n");
		return EX_USAGE;
	}
	return -1;
}

/* Adds the command line's --SECTION-KEY=VALUE flags on top of the file;
 * returns how many were refused. */
static int apply_flags(struct cf *cf, int nargs, char **argv)
{
	int errors = 0;
	for (int i = 1; i < nargs; i++) {
		const char *v;
		char why[256];
		if (classify(argv[i], &v, why, sizeof why) == ARG_FLAG &&
		    cf_flag(cf, argv[i] + 2, i) < 0)
			errors++;
	}
	return errors;
}

/* One session on stdin/stdout or fd 3. It answers 421 on a broken
 * configuration, and its diagnostics never go to a stderr that is the
 * client's socket (inetd). */
static int serve(struct cf *cf, const char *smtpd)
{
	int ok = cf->nerrors == 0;
	if (cf->diag.len) {
		struct stat st;
		if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode))
			fputs(cf->diag.s, stderr);
		openlog("postmaster", LOG_PID, LOG_MAIL);
		for (char *l = strtok(cf->diag.s, "\n"); l;
		     l = strtok(NULL, "\n"))
			syslog(ok ? LOG_WARNING : LOG_ERR, "%s", l);
		closelog();
	}
	return session_main(cf, smtpd, ok);
}

/* sendmail -bv: --route for what `sendmail ADDRESS` would meet. */
static int verify(struct cf *cf, const struct opts *o)
{
	const char *smtpd = o->smtpd;
	char *addr = inject_verify_address(cf, &o->inj, &smtpd);
	int ex = do_route(cf, addr, smtpd, 0);
	free(addr);
	return ex;
}

/* The diagnostics, and the exit status of a configuration with errors:
 * 78, but sendmail and sendmail -bs, as Postfix's, say why on stderr and
 * exit 75 (try later), as a session that cannot serve does: a caller
 * that hands on a message (procmail's '!', a .forward pipe, another MTA's
 * pipe mailer) keeps it for a retry instead of bouncing it. */
static int report_for(struct cf *cf, const struct opts *o)
{
	int ex = report(cf);
	return ex && o->sending ? EX_TEMPFAIL : ex;
}

/* --check, --dump, --route, --flush, --queue, --delete or --inject, on a
 * configuration without errors. */
static int run_tool(struct cf *cf, const struct opts *o)
{
	int ex = report_for(cf, o);
	if (ex)
		return ex;
	if (o->check) {
		summary(cf);
	} else if (o->dump) {
		cf_dump(cf, o->defaults, stdout);
	} else if (o->route && o->inject && o->inj.mode == INJ_ROUTE) {
		ex = verify(cf, o);
	} else if (o->route) {
		ex = do_route(cf, o->route, o->smtpd, 1);
	} else if (o->flush) {
		ex = flush_main(cf, o->now ? FLUSH_ALL : FLUSH_DUE, o->flush_id);
	} else if (o->queue) {
		ex = queue_main(cf, o->inject && o->inj.mode == INJ_QUEUE
					? QUEUE_MAILQ
					: QUEUE_OWN);
	} else if (o->delete_id) {
		ex = delete_main(cf, o->delete_id);
	} else if (o->release_id) {
		ex = release_main(cf, o->release_id);
	} else if (o->sending) {
		ex = o->inj.mode == INJ_SMTP
			     ? inject_smtp(cf, &o->inj, o->smtpd)
			     : inject_send(cf, &o->inj, o->smtpd);
	}
	return ex;
}

int main(int argc, char **argv)
{
	/* a standard descriptor that is closed would be the next file this
	 * process opens (a socket pair, a spool file), and what it writes
	 * to standard error would go there: /dev/null takes its place */
	struct pollfd std[3] = {{.fd = 0}, {.fd = 1}, {.fd = 2}};
	if (poll(std, 3, 0) > 0)
		for (int fd = 0; fd < 3; fd++)
			if ((std[fd].revents & POLLNVAL) &&
			    open("/dev/null", O_RDWR) != fd)
				return EX_OSERR;
	/* past a file size limit (ulimit -f, LimitFSIZE=) a write fails
	 * with EFBIG, which becomes a reply, instead of killing the session
	 * mid-data */
	signal(SIGXFSZ, SIG_IGN);
	/* a caller may leave SIGCHLD ignored (swaks --pipe, a Perl daemon's
	 * $SIG{CHLD} = 'IGNORE'), and an ignored SIGCHLD survives exec: then
	 * waitpid() loses every child's exit status, that of a mailer that
	 * delivered (retried: a second copy) and that of -bs's session */
	signal(SIGCHLD, SIG_DFL);
	struct opts o = {0};
	int ex = parse_args(argc, argv, &o);
	if (ex < 0)
		ex = check_args(&o);
	if (ex >= 0)
		return ex;

	/* what a program that calls sendmail leaked (a lock, a pipe it reads
	 * to its end) is not held by the session and its delivery */
	if (o.sending)
		inject_close_inherited();
	struct cf *cf = cf_new();
	int serving = !o.check && !o.dump && !o.route && !o.flush && !o.queue &&
		      !o.delete_id && !o.release_id && !o.sending;
	/* syntax errors go on to the value checks: every error in one run */
	if (cf_load(cf, o.config ? o.config : "/etc/postmaster.cf",
		    o.config != NULL) == -2 &&
	    !serving) {
		ex = report_for(cf, &o);
		cf_free(cf);
		return ex;
	}
	int flag_errors = o.nflags ? apply_flags(cf, o.nargs, argv) : 0;
	unsigned mode = o.check ? CF_CHECK : 0;
	if (o.dump && !o.defaults)
		mode |= CF_NO_INCLUDES;
	cf_finish(cf, mode);
	route_load_tables(cf);
	if (o.check)
		check_config(cf);
	if (!cf->nerrors && o.smtpd && !cf_find(cf, CF_SMTPD, o.smtpd)) {
		struct cf_pos pos = {"command line", 0, 0};
		cf_error(cf, &pos, "--smtpd=%s: no [smtpd \"%s\"] section",
			 o.smtpd, o.smtpd);
	}
	if (serving && flag_errors)
		ex = report(cf); /* the command line is wrong: no session */
	else if (serving)
		ex = serve(cf, o.smtpd);
	else
		ex = run_tool(cf, &o);
	cf_free(cf);
	return ex;
}
