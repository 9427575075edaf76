/*
 * cf_dump.c - postmaster --dump: the effective configuration as text.
 *
 * Owns: printing the merged assignments as postmaster.cf lines that read
 * back to the same configuration, and with --defaults every key with its
 * value or why it has none.
 *
 * Never: changes the configuration it prints.
 */
#include "cf_impl.h"
#include "fmt.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* --dump                                                              */

static int needs_quotes(const char *s)
{
	if (!*s)
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (!cf_is_atom_char(*p))
			return 1;
	return 0;
}

static void put_word(FILE *out, const char *s, int quoted)
{
	if (!quoted && !needs_quotes(s)) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void put_scope(FILE *out, const struct cf_section *sec)
{
	fputs(cf_kinds[sec->kind].name, out);
	if (sec->name || sec->kind == CF_ROUTE) {
		fputc('.', out);
		put_word(out, sec->name ? sec->name : "", 1);
	}
}

static void put_assign(const struct cf *cf, FILE *out, const struct cf_assign *a)
{
	const struct cf_section *sec = &cf->secs[a->sec];
	put_scope(out, sec);
	if (a->key == KEY_DECLARE) {
		fputc('\n', out);
		return;
	}
	fputc('.', out);
	if (a->key >= 0)
		fputs(cf_kinds[sec->kind].keys[a->key].name, out);
	else
		put_word(out, a->keytext, a->key_quoted);
	fputs(" =", out);
	for (uint32_t i = 0; i < a->nw; i++) {
		fputc(' ', out);
		put_word(out, cf->words[a->w0 + i].s, cf->words[a->w0 + i].quoted);
	}
	fputc('\n', out);
}

static int section_has_assignments(const struct cf *cf, uint32_t sec)
{
	for (uint32_t i = 0; i < cf->nmerged; i++)
		if (cf->merged[i]->sec == sec && cf->merged[i]->key != KEY_DECLARE)
			return 1;
	return 0;
}

static void put_default(const struct cf *cf, FILE *out,
			const struct cf_section *sec, int key)
{
	const struct key *k = &cf_kinds[sec->kind].keys[key];
	const union cf_value *v = &sec->v[key];
	char num[32];
	const char *text = NULL;
	switch (k->type) {
	case V_SIZE:
	case V_UINT:
		fmt_snprintf(num, sizeof num, "%llu", (unsigned long long)v->n);
		text = num;
		break;
	case V_DURATION:
		fmt_snprintf(num, sizeof num, "%llus", (unsigned long long)v->n);
		text = num;
		break;
	case V_BOOL:
		text = v->n ? "yes" : "no";
		break;
	case V_ENUM:
		text = k->enums[v->n];
		break;
	case V_ARGV:
		if (v->list.n) {
			put_scope(out, sec);
			fprintf(out, ".%s =", k->name);
			for (uint32_t i = 0; i < v->list.n; i++) {
				fputc(' ', out);
				put_word(out, v->list.v[i], 1);
			}
			fputc('\n', out);
			return;
		}
		break;
	case V_LISTEN:
		if (sec->listen.path[0]) {
			put_scope(out, sec);
			fprintf(out, ".%s = unix:%s\n", k->name,
				sec->listen.path);
			return;
		}
		if (sec->listen.port) {
			fmt_snprintf(num, sizeof num, "%u", sec->listen.port);
			put_scope(out, sec);
			fprintf(out, ".%s = ", k->name);
			if (sec->listen.host[0])
				fprintf(out, "%s:", sec->listen.host);
			fprintf(out, "%s\n", num);
			return;
		}
		break;
	default:
		if (!(k->flags & K_REPEAT))
			text = v->s;
	}
	if (!text) {
		fputs("# ", out);
		put_scope(out, sec);
		fprintf(out, ".%s: %s\n", k->name,
			k->help ? k->help : "not set");
		return;
	}
	put_scope(out, sec);
	fprintf(out, ".%s = ", k->name);
	put_word(out, text, 0);
	fputc('\n', out);
}

void cf_dump(const struct cf *cf, int defaults, FILE *out)
{
	if (!defaults) {
		for (uint32_t i = 0; i < cf->nmerged; i++) {
			const struct cf_assign *a = cf->merged[i];
			/* [core] and [syslog] always exist: declaring one
			 * empty says nothing, and no flag would read it back */
			if (a->key == KEY_DECLARE &&
			    (section_has_assignments(cf, a->sec) ||
			     cf_kinds[cf->secs[a->sec].kind].named == 0))
				continue;
			/* one declaration per empty section */
			if (a->key == KEY_DECLARE) {
				int first = 1;
				for (uint32_t j = 0; j < i; j++)
					if (cf->merged[j]->sec == a->sec)
						first = 0;
				if (!first)
					continue;
			}
			put_assign(cf, out, a);
		}
		return;
	}
	if (cf->builtin_default)
		fputs("# no configuration file: the built-in default\n", out);
	static const enum cf_kind order[] = {CF_CORE,  CF_SYSLOG, CF_LOGFILE,
					     CF_PIPE,  CF_RELAY,  CF_MILTER, CF_SMTPD,
					     CF_ROUTE};
	for (size_t o = 0; o < sizeof order / sizeof *order; o++) {
		for (uint32_t i = 0; i < cf->nsecs; i++) {
			const struct cf_section *sec = &cf->secs[i];
			if (sec->kind != order[o])
				continue;
			if (sec->kind == CF_ROUTE) {
				int any = 0;
				for (uint32_t j = 0; j < cf->nmerged; j++) {
					const struct cf_assign *a = cf->merged[j];
					if (a->sec != i || a->key == KEY_DECLARE)
						continue;
					put_assign(cf, out, a);
					any = 1;
				}
				if (!any && sec->name) {
					put_scope(out, sec);
					fputc('\n', out);
				}
				continue;
			}
			for (int k = 0; k < cf_kinds[sec->kind].nkeys; k++) {
				if (!sec->set[k]) {
					put_default(cf, out, sec, k);
					continue;
				}
				for (uint32_t j = 0; j < cf->nmerged; j++) {
					const struct cf_assign *a = cf->merged[j];
					if (&cf->secs[a->sec] == sec && a->key == k)
						put_assign(cf, out, a);
				}
			}
		}
	}
	fputs("# built in: postmaster at a local domain goes to root when no "
	      "table routes it\n",
	      out);
}

