/*
 * cf_build.c - postmaster.cf: command-line flags, merging, finishing.
 *
 * Owns: SPEC 3.3 (a flag replaces the file's assignments of its key, in
 * place), and cf_finish(): the built-in sections, typed values in merged
 * order, defaults and required keys, the rules between keys of a section,
 * and references between sections.
 *
 * Never: reads route files or builds route tables (route_load.c), looks
 * at the system for --check (check.c), or writes anything.
 */
#include "cf_impl.h"
#include "addr.h"
#include "fmt.h"
#include "idna.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Command-line flags                                                  */

/* What a flag's text before its value names. */
struct flag {
	int kind;
	const char *name;     /* NULL: none */
	const char *keystart; /* in the flag, or the arena when quoted */
	size_t keylen;
	int key_quoted;
	const char *p;        /* after the key */
};

/* KIND."NAME".KEY or KIND.KEY at p (after the '.'). */
static int flag_dotted(struct lexer *lx, const char *p, struct flag *fl)
{
	struct cf_word w;
	if (*p == '"') {
		lx->p = p;
		if (lx_next(lx, &w) != TOK_WORD)
			return -1;
		fl->name = w.s;
		p = lx->p;
		if (*p == 0) {
			fl->keystart = fl->p = p;
			return 0;
		}
		if (*p != '.') {
			lx_error(lx, p, "expected '.' after the section name");
			return -1;
		}
		p++;
	}
	if (*p == '"') {
		lx->p = p;
		if (lx_next(lx, &w) != TOK_WORD)
			return -1;
		fl->keystart = w.s;
		fl->keylen = w.len;
		fl->key_quoted = 1;
		fl->p = lx->p;
	} else {
		fl->keystart = p;
		fl->keylen = strcspn(p, " \t=");
		fl->p = p + fl->keylen;
	}
	return 0;
}

/* KIND-NAME-KEY or KIND-KEY at p (after the '-'). */
static int flag_dashed(struct lexer *lx, const char *p, struct flag *fl)
{
	const struct kind *k = &cf_kinds[fl->kind];
	if (fl->kind != CF_ROUTE && k->named) {
		size_t nl = strcspn(p, "-=");
		if (p[nl] != '-') {
			lx_error(lx, p + nl, "expected %s-NAME-KEY, found no key",
				 k->name);
			return -1;
		}
		char *nm = lx->arena + lx->used;
		memcpy(nm, p, nl);
		nm[nl] = 0;
		lx->used += nl + 1;
		fl->name = nm;
		p += nl + 1;
	}
	fl->keystart = p;
	fl->keylen = strcspn(p, " \t=");
	fl->p = p + fl->keylen;
	return 0;
}

/* The section kind and name, and where the key is. */
static int flag_scope(struct lexer *lx, const char *s, struct flag *fl)
{
	struct buf tmp = {0};
	size_t k = strcspn(s, ".-=");
	memset(fl, 0, sizeof *fl);
	fl->kind = cf_kind_lookup(s, k);
	if (fl->kind < 0) {
		lx_error(lx, s, "expected a section (core, syslog, logfile, "
				"pipe, relay, milter, smtpd, route) at the start of the "
				"flag, found '%s'",
			 cf_shown(s, k, &tmp));
		buf_free(&tmp);
		return -1;
	}
	const struct kind *kd = &cf_kinds[fl->kind];
	int r;
	if (s[k] == '.') {
		r = flag_dotted(lx, s + k + 1, fl);
	} else if (s[k] == '-') {
		r = flag_dashed(lx, s + k + 1, fl);
	} else {
		lx_error(lx, s + k, "expected '.' or '-' after '%s'", kd->name);
		r = -1;
	}
	if (r < 0)
		return -1;
	if ((fl->kind == CF_ROUTE || kd->named == 0) && fl->name &&
	    !fl->name[0])
		fl->name = NULL; /* core."".key is core.key */
	if (kd->named == 0 && fl->name) {
		lx_error(lx, s, "[%s] takes no name", kd->name);
		return -1;
	}
	if (kd->named == 1 && (!fl->name || !fl->name[0])) {
		lx_error(lx, s, "expected a name: %s.\"NAME\".KEY", kd->name);
		return -1;
	}
	return 0;
}

/* A flag without a key declares its section: --smtpd."NAME". */
static int flag_declare(struct lexer *lx, const struct flag *fl, uint32_t sec,
			const struct cf_pos *pos)
{
	const char *p = fl->p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p) {
		lx_error(lx, p, "expected a key after the section");
		return -1;
	}
	struct cf_assign *a = cf_add_assign(lx->cf);
	a->sec = sec;
	a->key = KEY_DECLARE;
	a->pos = *pos;
	a->from_flag = 1;
	return 0;
}

/* The key id the flag names (a key, KEY_ROUTE or KEY_FILE) in *id;
 * -1 (reported) when the section has no such key. */
static int flag_key(struct lexer *lx, const struct flag *fl, const char *key,
		    int *id)
{
	if (fl->kind == CF_ROUTE) {
		*id = (!fl->key_quoted && !strcmp(key, "file")) ? KEY_FILE
								: KEY_ROUTE;
		return 0;
	}
	*id = cf_key_lookup((enum cf_kind)fl->kind, key, fl->keylen);
	if (*id < 0 || fl->key_quoted) {
		struct buf tmp = {0};
		lx_error(lx, fl->keystart, "expected a key of [%s], found '%s'",
			 cf_kinds[fl->kind].name,
			 cf_shown(key, fl->keylen, &tmp));
		buf_free(&tmp);
		return -1;
	}
	return 0;
}

/* The key and its value words: one assignment from the command line. */
static int flag_assign(struct lexer *lx, const struct flag *fl, uint32_t sec,
		       const struct cf_pos *pos)
{
	struct cf *cf = lx->cf;
	/* the key text must outlive the flag: an atom is copied into the
	 * arena, a quoted key is there already */
	char *key;
	if (fl->key_quoted) {
		key = (char *)fl->keystart;
	} else {
		key = lx->arena + lx->used;
		memcpy(key, fl->keystart, fl->keylen);
		key[fl->keylen] = 0;
		lx->used += fl->keylen + 1;
	}
	int keyid;
	if (flag_key(lx, fl, key, &keyid) < 0)
		return -1;
	lx->p = fl->p;
	lx->loose = 0; /* the value: words as in a file */
	lx->glue = keyid == KEY_ROUTE ? "," : NULL;
	uint32_t w0, nw;
	int r = lx_values(lx, fl->keystart, key, &w0, &nw);
	lx->glue = NULL;
	if (r < 0)
		return -1;
	struct cf_assign *a = cf_add_assign(cf);
	a->sec = sec;
	a->key = keyid;
	a->keytext = key;
	a->keylen = (uint32_t)fl->keylen;
	a->key_quoted = (uint8_t)fl->key_quoted;
	a->w0 = w0;
	a->nw = nw;
	a->pos = *pos;
	a->from_flag = 1;
	a->basedir = cf->basedir;
	return 0;
}

int cf_flag(struct cf *cf, const char *arg, int argn)
{
	size_t n = strlen(arg);
	/* room for the copy of the flag and, after it, its unescaped parts */
	struct cf_file *f = cf_add_file(cf, "command line", 2 * n + 8);
	memcpy(f->text, arg, n + 1);
	char *s = f->text;
	struct lexer lx = {
		.cf = cf,
		.path = "command line",
		.p = s,
		.end = s + n,
		.line_start = s,
		.line = (uint32_t)argn,
		.col_base = 2, /* the leading "--" */
		.arena = f->text + n + 1,
		.basedir = cf->basedir,
		.loose = 1,
	};
	struct flag fl;
	struct cf_pos pos = lx_pos(&lx, s);
	if (flag_scope(&lx, s, &fl) < 0)
		return -1;
	uint32_t sec = cf_add_section(cf, (enum cf_kind)fl.kind, fl.name, &pos);
	if (fl.keylen == 0 && !fl.key_quoted)
		return flag_declare(&lx, &fl, sec, &pos);
	return flag_assign(&lx, &fl, sec, &pos);
}

/* ------------------------------------------------------------------ */
/* Merging flags over the file (SPEC 3.3)                              */

static int same_key(const struct cf *cf, const struct cf_assign *a,
		    const struct cf_assign *b)
{
	if (a->sec != b->sec || a->key != b->key)
		return 0;
	if (a->key == KEY_ROUTE)
		return ascii_casecmp_n(a->keytext, a->keylen, b->keytext,
				       b->keylen) == 0;
	(void)cf;
	return a->key >= 0;
}

static void merge(struct cf *cf)
{
	uint32_t nfile = 0;
	while (nfile < cf->nas && !cf_assign_at(cf, nfile)->from_flag)
		nfile++;
	for (uint32_t i = nfile; i < cf->nas; i++) {
		struct cf_assign *f = cf_assign_at(cf, i);
		f->anchor = UINT32_MAX;
		if (f->key == KEY_DECLARE)
			continue;
		/* a second flag for a key a flag already set accumulates */
		int follows = 0;
		for (uint32_t j = nfile; j < i; j++)
			if (same_key(cf, cf_assign_at(cf, j), f)) {
				f->anchor = cf_assign_at(cf, j)->anchor;
				follows = 1;
			}
		if (follows)
			continue;
		for (uint32_t j = 0; j < nfile; j++) {
			struct cf_assign *a = cf_assign_at(cf, j);
			if (!a->dead && same_key(cf, a, f)) {
				if (f->anchor == UINT32_MAX)
					f->anchor = j;
				a->dead = 1;
			}
		}
		if (f->anchor == UINT32_MAX &&
		    (f->key == KEY_ROUTE || f->key == KEY_FILE)) {
			for (uint32_t j = 0; j < nfile; j++) {
				struct cf_assign *a = cf_assign_at(cf, j);
				if (a->sec == f->sec && (a->key == KEY_ROUTE ||
							 a->key == KEY_FILE)) {
					f->anchor = j;
					break;
				}
			}
		}
	}
	cf->merged = xcalloc(cf->nas + 1, sizeof *cf->merged);
	for (uint32_t j = 0; j <= nfile; j++) {
		for (uint32_t i = nfile; i < cf->nas; i++) {
			struct cf_assign *f = cf_assign_at(cf, i);
			uint32_t at = f->anchor == UINT32_MAX ? nfile : f->anchor;
			if (at == j)
				cf->merged[cf->nmerged++] = f;
		}
		if (j < nfile && !cf_assign_at(cf, j)->dead)
			cf->merged[cf->nmerged++] = cf_assign_at(cf, j);
	}
}

/* ------------------------------------------------------------------ */
/* Finishing                                                           */

static void check_ref(struct cf *cf, struct cf_section *sec, int key)
{
	const struct key *k = &cf_kinds[sec->kind].keys[key];
	const struct cf_assign *a = sec->set[key];
	if (!a)
		return;
	struct buf tmp = {0};
	for (uint32_t i = 0; i < a->nw || (k->flags & K_REPEAT && 0); i++) {
		const struct cf_word *w = &cf->words[a->w0 + i];
		struct cf_pos pos = a->pos;
		pos.col = w->col;
		const char *s = w->s;
		int ok = 1;
		if (k->type == V_LOGGER)
			ok = !strcmp(s, "syslog") || !strcmp(s, "stderr") ||
			     !strcmp(s, "journal") || cf_find(cf, CF_LOGFILE, s);
		else if (k->type == V_PIPEREF)
			ok = cf_find(cf, CF_PIPE, s) != NULL;
		else if (k->type == V_ROUTEREF)
			ok = cf_find(cf, CF_ROUTE, s) != NULL;
		else if (k->type == V_MILTERREF)
			ok = cf_find(cf, CF_MILTER, s) != NULL;
		if (!ok)
			cf_error(cf, &pos, "expected %s, found '%s', which no "
					   "section defines",
				 k->type == V_LOGGER
					 ? "syslog, stderr, journal or the "
					   "name of a [logfile]"
				 : k->type == V_PIPEREF ? "the name of a [pipe]"
				 : k->type == V_MILTERREF ? "the name of a [milter]"
							: "the name of a [route]",
				 cf_shown(s, w->len, &tmp));
	}
	buf_free(&tmp);
}

/* Repeatable keys: each assignment line is checked by check_ref above only
 * for its first line; check every line here. */
static void check_refs_all(struct cf *cf, struct cf_section *sec, int key)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] != sec || a->key != key)
			continue;
		/* tables, whether one per line or several on a line */
		if (cf_kinds[sec->kind].keys[key].type == V_ROUTEREF &&
		    n + a->nw > CF_MAX_ROUTING_TABLES) {
			struct cf_pos pos = a->pos;
			pos.col = cf->words[a->w0 + CF_MAX_ROUTING_TABLES - n].col;
			cf_error(cf, &pos, "expected at most %d routing-table "
					   "entries in a listener, found more",
				 CF_MAX_ROUTING_TABLES);
			return;
		}
		n += a->nw;
		const struct cf_assign *save = sec->set[key];
		sec->set[key] = a;
		check_ref(cf, sec, key);
		sec->set[key] = save;
	}
}


/* The sections every configuration has, and the built-in [pipe "local"]
 * that SPEC 2 names. */
static void add_builtin_sections(struct cf *cf)
{
	static const struct cf_pos builtin = {"built-in default", 0, 0};
	cf_add_section(cf, CF_CORE, NULL, &builtin);
	cf_add_section(cf, CF_SYSLOG, NULL, &builtin);
	cf_add_section(cf, CF_ROUTE, NULL, &builtin);
	if (!cf_find(cf, CF_PIPE, "local")) {
		uint32_t i = cf_add_section(cf, CF_PIPE, "local", &builtin);
		struct cf_section *p = &cf->secs[i];
		static const char *argv[] = {"/usr/bin/procmail", "-d",
					     "${RCPT_TO}", NULL};
		p->builtin = 1;
		p->v[PIPE_EXEC].list.v = xmalloc(sizeof argv);
		memcpy(p->v[PIPE_EXEC].list.v, argv, sizeof argv);
		p->v[PIPE_EXEC].list.n = 3;
	}
	/* found after every addition: the array may have moved */
	cf->core = cf_find(cf, CF_CORE, NULL);
	cf->syslog = cf_find(cf, CF_SYSLOG, NULL);
	cf->global_route = cf_find(cf, CF_ROUTE, NULL);
}

/* Typed values in merged order; core first, for inherited defaults. */
static void set_values(struct cf *cf)
{
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < cf->nmerged; i++) {
			struct cf_assign *a = cf->merged[i];
			struct cf_section *sec = &cf->secs[a->sec];
			if ((sec->kind == CF_CORE) != (pass == 0))
				continue;
			if (a->key >= 0)
				cf_set_value(cf, sec, a);
		}
	for (int k = 0; k < CORE_NKEYS; k++)
		if (!cf->core->set[k])
			cf_set_default(cf, cf->core, k);
}

/* Defaults of the unset keys of a section that is not core; a required
 * key that is missing is an error (unless its value was refused). */
static void set_defaults(struct cf *cf, struct cf_section *sec)
{
	for (int k = 0; k < cf_kinds[sec->kind].nkeys; k++) {
		if (sec->set[k] || sec->builtin)
			continue;
		if ((cf_kinds[sec->kind].keys[k].flags & K_REQUIRED) &&
		    !(sec->bad & (1u << k))) {
			cf_error(cf, &sec->pos, "expected '%s' in [%s \"%s\"], "
						"found none",
				 cf_kinds[sec->kind].keys[k].name,
				 cf_kinds[sec->kind].name, sec->name);
			continue;
		}
		cf_set_default(cf, sec, k);
	}
	if (sec->builtin) {
		sec->v[PIPE_MAX_RCPT_TO].n = 1;
		sec->v[PIPE_TIMEOUT].n = 300;
	}
}

/* tls-certificate and tls-key pair in order: each value needs its
 * partner, and a section offers at most CF_MAX_TLS_KEYPAIRS pairs. */
static void check_tls_pairs(struct cf *cf, struct cf_section *sec)
{
	uint32_t nc = sec->v[SMTPD_TLS_CERTIFICATE].list.n;
	uint32_t nk = sec->v[SMTPD_TLS_KEY].list.n;
	int longer = nc > nk ? SMTPD_TLS_CERTIFICATE : SMTPD_TLS_KEY;
	uint32_t seen = 0, first = nc < nk ? nc : nk;
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		const struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] != sec || a->key != longer)
			continue;
		for (uint32_t j = 0; j < a->nw; j++, seen++) {
			struct cf_pos pos = a->pos;
			pos.col = cf->words[a->w0 + j].col;
			if (seen >= first && nc != nk) {
				cf_error(cf, &pos, "expected a %s for this %s "
						   "(they pair in order)",
					 longer == SMTPD_TLS_KEY
						 ? "tls-certificate"
						 : "tls-key",
					 cf_kinds[CF_SMTPD].keys[longer].name);
				return;
			}
			if (seen == CF_MAX_TLS_KEYPAIRS) {
				cf_error(cf, &pos, "expected at most %d "
						   "tls-certificate and tls-key "
						   "pairs",
					 CF_MAX_TLS_KEYPAIRS);
				return;
			}
		}
	}
}

/* A section's NAME where it stands for the host name its name key would
 * give: it must be one. */
static void check_name_as_host(struct cf *cf, struct cf_section *sec,
			       const char *kind)
{
	struct buf msg = {0};
	const char *why = cf_hostname_problem(sec->name, strlen(sec->name),
					      &msg, (cf->mode & CF_CHECK) != 0);
	if (why)
		cf_error(cf, &sec->pos, "%s as the name of [%s \"%s\"] or a "
					"'name' key",
			 why, kind, sec->name);
	buf_free(&msg);
}

/* The rules between the keys of one [smtpd]. */
static void check_smtpd(struct cf *cf, struct cf_section *sec)
{
	if (!sec->set[SMTPD_NAME] && !(sec->bad & (1u << SMTPD_NAME)))
		check_name_as_host(cf, sec, "smtpd");
	if (!sec->set[SMTPD_LISTEN_PORT] &&
	    !(sec->bad & (1u << SMTPD_LISTEN_PORT))) {
		fmt_snprintf(sec->listen.host, sizeof sec->listen.host, "%s",
			 sec->name);
		sec->listen.port = 25;
	}
	if (sec->v[SMTPD_TLS].n != STLS_NO &&
	    (!sec->v[SMTPD_TLS_CERTIFICATE].list.n ||
	     !sec->v[SMTPD_TLS_KEY].list.n))
		cf_error(cf, &sec->set[SMTPD_TLS]->pos,
			 "expected tls-certificate and tls-key with tls = %s",
			 cf->words[sec->set[SMTPD_TLS]->w0].s);
	if (sec->v[SMTPD_TLS].n == STLS_NO ||
	    (sec->v[SMTPD_TLS_CERTIFICATE].list.n &&
	     sec->v[SMTPD_TLS_KEY].list.n))
		check_tls_pairs(cf, sec);
	if (!sec->set[SMTPD_SUBMISSION])
		sec->v[SMTPD_SUBMISSION].n = sec->v[SMTPD_AUTH].n == AUTH_REQUIRED;
	if (sec->v[SMTPD_AUTH].n != AUTH_NO && !sec->v[SMTPD_AUTH_FILE].s)
		cf_error(cf, &sec->set[SMTPD_AUTH]->pos,
			 "expected auth-file with auth = %s",
			 cf->words[sec->set[SMTPD_AUTH]->w0].s);
}

/* Whether a [relay] NAME can be the name tls = verify checks the
 * certificate for: a host name of two labels or more ("hub" is none). */
static int name_verifiable(const char *name)
{
	struct buf msg = {0};
	int ok = strchr(name, '.') &&
		 !cf_hostname_problem(name, strlen(name), &msg, 0);
	buf_free(&msg);
	return ok;
}

/* The rules between the keys of one [relay]. */
static void check_relay(struct cf *cf, struct cf_section *sec)
{
	/* without a name key, NAME is the TLS host name (SNI, and what
	 * verify checks): any label will do ("hub") but for verify, and not
	 * an international one, which TLS would get raw; with tls = no it
	 * names nothing but the relay */
	int tls_off = sec->set[RELAY_TLS] && sec->v[RELAY_TLS].n == RTLS_NO;
	if (!sec->set[RELAY_NAME] && !(sec->bad & (1u << RELAY_NAME)) &&
	    !tls_off && idna_needed(sec->name))
		check_name_as_host(cf, sec, "relay");
	else if (sec->v[RELAY_TLS].n == RTLS_VERIFY && sec->set[RELAY_TLS] &&
		 !sec->set[RELAY_NAME] && !name_verifiable(sec->name))
		cf_error(cf, &sec->set[RELAY_TLS]->pos,
			 "expected a 'name' key (the host name in the relay's "
			 "certificate) with tls = verify: [relay \"%s\"]'s "
			 "NAME is no host name",
			 sec->name);
	if (sec->set[RELAY_AUTH_PASSWORD] && !sec->set[RELAY_AUTH_USER])
		cf_error(cf, &sec->set[RELAY_AUTH_PASSWORD]->pos,
			 "expected 'auth-user' with 'auth-password'");
	if (sec->set[RELAY_AUTH_PASSWORD_FILE] && !sec->set[RELAY_AUTH_USER])
		cf_error(cf, &sec->set[RELAY_AUTH_PASSWORD_FILE]->pos,
			 "expected 'auth-user' with 'auth-password-file'");
	if (sec->set[RELAY_AUTH_PASSWORD_FILE] && sec->set[RELAY_AUTH_PASSWORD])
		cf_error(cf, &sec->set[RELAY_AUTH_PASSWORD_FILE]->pos,
			 "expected 'auth-password' or 'auth-password-file', "
			 "not both");
	if (sec->set[RELAY_AUTH_USER] && sec->v[RELAY_TLS].n == RTLS_NO &&
	    sec->set[RELAY_TLS])
		cf_error(cf, &sec->set[RELAY_TLS]->pos,
			 "expected tls other than 'no' with 'auth-user': "
			 "credentials never travel in clear text");
}

/* References, once every section is known. */
static void check_references(struct cf *cf, struct cf_section *sec)
{
	for (int k = 0; sec->kind != CF_ROUTE && k < cf_kinds[sec->kind].nkeys;
	     k++) {
		enum vtype t = cf_kinds[sec->kind].keys[k].type;
		if (t == V_LOGGER || t == V_PIPEREF)
			check_ref(cf, sec, k);
		else if (t == V_ROUTEREF || t == V_MILTERREF)
			check_refs_all(cf, sec, k);
	}
}

/* The rules of [core] that involve more than one key. */
static void check_core(struct cf *cf)
{
	static const struct cf_pos builtin = {"built-in default", 0, 0};
	if (!cf->core->set[CORE_LOCAL_MAILER] &&
	    !cf_find(cf, CF_PIPE, cf->core->v[CORE_LOCAL_MAILER].s))
		cf_error(cf, &builtin, "expected a [pipe \"local\"] for the "
				       "default local-mailer");
	if (cf->core->v[CORE_MINIMAL_BACKOFF].n >
	    cf->core->v[CORE_MAXIMAL_BACKOFF].n) {
		const struct cf_assign *a = cf->core->set[CORE_MINIMAL_BACKOFF];
		if (!a)
			a = cf->core->set[CORE_MAXIMAL_BACKOFF];
		cf_error(cf, a ? &a->pos : &builtin,
			 "expected minimal-backoff to be at most maximal-backoff");
	}
}

int cf_finish(struct cf *cf, unsigned mode)
{
	cf->mode = mode;
	if (!cf->basedir)
		cf->basedir = xstrdup(".");
	merge(cf);
	add_builtin_sections(cf);
	set_values(cf);
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *sec = &cf->secs[i];
		if (sec->kind == CF_CORE || sec->kind == CF_ROUTE)
			continue;
		set_defaults(cf, sec);
		if (sec->kind == CF_SMTPD)
			check_smtpd(cf, sec);
		if (sec->kind == CF_RELAY)
			check_relay(cf, sec);
	}
	for (uint32_t i = 0; i < cf->nsecs; i++)
		check_references(cf, &cf->secs[i]);
	check_core(cf);
	return cf->nerrors;
}
