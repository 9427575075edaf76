/*
 * inject_opts.c - sendmail's command line (SPEC 2), read as Postfix's
 * sendmail(1) reads it, into a struct inject (see inject.h).
 *
 * Owns: the names the binary answers to (sendmail, mailq, newaliases),
 * the option table and getopt(3)'s reading of it (-ti is -t -i), the
 * modes of -b, the DSN requests of -N, -R and -V, and the usage errors
 * (64) with one usage line.
 *
 * Never: reads the message, the configuration or the spool, and never
 * talks to a session: inject.c does, with what this file filled in.
 */
#include "inject.h"
#include "dsn.h"
#include "fmt.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_line[] =
	"usage: sendmail [-t] [-i] [-f sender] [-F name] [-B body] [-N dsn] "
	"[-R ret] [-V envid] [-o option] [-C config] [-v] "
	"[-bm | -bs | -bp | -bi | -bv] [-q] [recipient ...]\n";

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int inject_named(const char *argv0)
{
	const char *b = base_name(argv0);
	return !strcmp(b, "sendmail") || !strcmp(b, "mailq") ||
	       !strcmp(b, "newaliases");
}

static int usage(const char *prog, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_line);
	return -1;
}

/* -bX: what sendmail calls its modes. */
static int set_mode(struct inject *in, const char *prog, const char *m)
{
	static const struct {
		const char *name;
		enum inject_mode mode;
	} modes[] = {
		{"m", INJ_SEND}, {"s", INJ_SMTP}, {"p", INJ_QUEUE},
		{"i", INJ_CHECK}, {"v", INJ_ROUTE},
	};
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		if (!strcmp(modes[i].name, m)) {
			in->mode = modes[i].mode;
			return 0;
		}
	return usage(prog, "unsupported mode -b%s", m);
}

/* -N's words, parted by commas or blanks as Postfix's sendmail reads
 * them ("failure, delay"), as RFC 3461's NOTIFY= list: 0, or -1. */
static int notify_words(const char *v, unsigned *notify)
{
	struct buf b = {0};
	for (const char *p = v; *(p += strspn(p, ", \t"));) {
		size_t w = strcspn(p, ", \t");
		if (b.len)
			buf_addc(&b, ',');
		buf_add(&b, p, w);
		p += w;
	}
	int r = dsn_notify_parse(b.s ? b.s : "", b.len, notify);
	buf_free(&b);
	return r;
}

/* -N, -R, -V: the DSN requests (RFC 3461) that MAIL and each RCPT carry,
 * as Postfix's sendmail(1) takes them. */
static int set_dsn(struct inject *in, const char *prog, char o,
		   const char *v)
{
	if (o == 'N' && notify_words(v, &in->notify) < 0)
		return usage(prog, "bad -N value '%s' (never, or success, "
				   "failure and delay joined by commas or "
				   "blanks)", v);
	if (o == 'R') {
		if (!strcasecmp(v, "full"))
			in->ret = DSN_RET_FULL;
		else if (!strcasecmp(v, "hdrs"))
			in->ret = DSN_RET_HDRS;
		else
			return usage(prog, "bad -R value '%s' (full or hdrs)", v);
	}
	if (o == 'V') {
		char enc[3 * DSN_ENVID_MAX + 1];
		if (!*v || dsn_xtext_encode(v, enc, sizeof enc) > DSN_ENVID_MAX)
			return usage(prog, "bad -V value '%s' (printable text of "
				   "at most 100 characters as xtext)", v);
		in->envid = v;
	}
	return 0;
}

/* -oX: -oi is -i; the others (-oem, -odb, -oA...) are accepted and
 * ignored, as Postfix does. */
static void set_o(struct inject *in, const char *v)
{
	if (!strcmp(v, "i"))
		in->dots_are_text = 1;
}

/* The option letters that take a value: attached (-fme) or the next
 * argument (-f me). Those not named in the switch are ignored (-A, -L,
 * -O, -X, -e, -h, -p), as in Postfix's GETOPT_LIST. */
static const char with_value[] = "ABCFLNORVXbefhopr";
/* Accepted without a value and without effect: -G -U -m -n -x -c. */
static const char ignored[] = "GUmnxc";

static int one_option(struct inject *in, const char *prog, char o,
		      const char *v)
{
	switch (o) {
	case 'B':
		if (strcmp(v, "7BIT") && strcmp(v, "8BITMIME"))
			return usage(prog, "-B takes 7BIT or 8BITMIME, not %s",
				     v);
		in->seven_bit = !strcmp(v, "7BIT");
		break;
	case 'C': in->config = v; break;
	case 'N':
	case 'R':
	case 'V': return set_dsn(in, prog, o, v);
	case 'F': in->fullname = v; break;
	case 'b': return set_mode(in, prog, v);
	case 'f':
	case 'r': in->from = v; break;
	case 'o': set_o(in, v); break;
	case 'I': in->mode = INJ_CHECK; break;
	case 'i': in->dots_are_text = 1; break;
	case 't': in->extract = 1; break;
	case 'v': in->verbose = 1; break;
	}
	return 0;
}

/* The option letters of argv[i], as getopt(3) reads them: -ti is -t -i,
 * and a letter that takes a value takes the rest of the argument or the
 * next one (-tif me is -t -i -f me). The index of the last argument
 * used, or -1 after a usage error. */
static int one_argument(struct inject *in, const char *prog, int argc,
			char **argv, int i)
{
	const char *a = argv[i];
	for (size_t k = 1; a[k]; k++) {
		char o = a[k], letter[3] = {'-', o, 0};
		if (o == 'q') { /* run the queue once */
			in->mode = INJ_FLUSH;
			/* all of it now, as Postfix's postqueue -f (-q) and
			 * -s (-qRsite); an interval (-q30m) is what is due */
			in->flush_all = !(a[k + 1] >= '0' && a[k + 1] <= '9');
			return i;
		}
		if (strchr(with_value, o)) {
			const char *v = a[k + 1] ? a + k + 1
				      : i + 1 < argc ? argv[++i] : NULL;
			if (!v)
				return usage(prog, "option %s needs a value",
					     letter);
			return one_option(in, prog, o, v) < 0 ? -1 : i;
		}
		if (!strchr("Iitv", o) && !strchr(ignored, o)) {
			char what[64];
			fmt_snprintf(what, sizeof what, "%s in %s", letter, a);
			return usage(prog, "unknown option %s",
				     a[2] ? what : a);
		}
		one_option(in, prog, o, NULL);
	}
	return i;
}

int inject_options(int argc, char **argv, struct inject *in)
{
	const char *prog = inject_named(argv[0]) ? base_name(argv[0])
						 : "postmaster";
	memset(in, 0, sizeof *in);
	in->prog = prog;
	in->config = getenv("POSTMASTER_CONFIG");
	if (!strcmp(prog, "mailq"))
		in->mode = INJ_QUEUE;
	else if (!strcmp(prog, "newaliases"))
		in->mode = INJ_CHECK;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if ((i = one_argument(in, prog, argc, argv, i)) < 0)
			return -1;
	}
	in->rcpt = argv + i;
	in->nrcpt = argc - i;
	if (in->mode == INJ_ROUTE && in->nrcpt != 1)
		return usage(prog, "%s", "-bv takes one address");
	if ((in->mode == INJ_QUEUE || in->mode == INJ_FLUSH ||
	     in->mode == INJ_CHECK || in->mode == INJ_SMTP) && in->nrcpt)
		return usage(prog, "unexpected argument '%s'", in->rcpt[0]);
	if (in->mode == INJ_SEND && !in->extract && !in->nrcpt)
		return usage(prog, "%s", "no recipients (give them, or -t)");
	return 0;
}
