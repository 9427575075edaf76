/*
 * route_check.c - postmaster --check's rules about routes (SPEC 6).
 *
 * Owns: the open-relay probe (each listener whose relay-clients holds
 * every address, or a network nearly as wide, is resolved against its
 * catch-all lines), lines that an
 * earlier line shadows, and targets this host lacks (a NAME that is no
 * pipe, relay, alias or system user; a Maildir without its parent
 * directory).
 *
 * Never: runs for a session, changes a table, or writes anything; it
 * asks the host through route_env_system and stat(2) only.
 */
#include "route_check.h"
#include "fmt.h"
#include "route_impl.h"
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/*
 * The open-relay rule of --check (SPEC 6). Sessions refuse relaying to a
 * client that is neither authenticated nor in relay-clients, whatever
 * the routes say; a listener is an open relay when relay-clients itself
 * holds every address or a large part of the public address space
 * (net_is_wide()). NULL: the built-in listener (relay-clients =
 * loopback). Returns the network that opens it, or NULL.
 */
static const char *open_network(const struct cf_section *s)
{
	if (!s || s->v[SMTPD_AUTH].n == AUTH_REQUIRED)
		return NULL;
	const struct cf_list *l = &s->v[SMTPD_RELAY_CLIENTS].list;
	for (uint32_t i = 0; i < l->n; i++) {
		struct net n;
		if (!net_parse(l->v[i], &n) && net_is_wide(&n))
			return l->v[i];
	}
	return NULL;
}

static void probe_listener(struct cf *cf, const struct cf_section *smtpd,
			   const char *everyone)
{
	static const char probe_domain[] = "relay-probe.invalid";
	const struct route_table *tables[CF_MAX_ROUTING_TABLES + 1];
	uint32_t nt = route_listener_tables(cf, smtpd, tables,
					     CF_MAX_ROUTING_TABLES + 1);
	struct cf_pos reported[16];
	int nrep = 0;
	for (uint32_t ti = 0; ti < nt; ti++) {
		const struct route_table *t = tables[ti];
		for (uint32_t i = 0; i <= t->n; i++) {
			/* each catch-all line, then one address no line names */
			const char *local = NULL;
			if (i < t->n) {
				const struct route_entry *e = &t->e[i];
				if (e->type != RE_LINE ||
				    (e->pkind != PAT_LOCAL && e->pkind != PAT_ALL))
					continue;
				local = e->pkind == PAT_LOCAL ? e->local : NULL;
			} else if (ti + 1 < nt) {
				continue;
			}
			char text[ADDR_PATH_MAX + 64];
			fmt_snprintf(text, sizeof text, "%s@%s",
				 local ? local : "relay-probe", probe_domain);
			struct rctx c;
			struct route_result r;
			const struct route_table *tb[64];
			route_ctx_init(&c, &route_env_system, cf, smtpd, &r, tb);
			struct addr a;
			const char *why;
			size_t where;
			if (addr_parse(text, strlen(text), ADDR_UTF8, &a, &why,
				       &where) != ADDR_OK) {
				route_result_free(&r);
				continue;
			}
			c.rcpt = text;
			route_ctx_resolve(&c, &a, 0, 0);
			route_ctx_finish(&c);
			route_ctx_free(&c);
			if (route_relays(&r) && c.first.file) {
				int dup = 0;
				for (int k = 0; k < nrep; k++)
					if (reported[k].file == c.first.file &&
					    reported[k].line == c.first.line)
						dup = 1;
				if (!dup && nrep < 16) {
					reported[nrep++] = c.first;
					cf_error(cf, &c.first,
						 "open relay: '%s' sends mail "
						 "for any domain (<%s>) to a "
						 "relay, and [smtpd \"%s\"] "
						 "lets every client relay "
						 "without AUTH (relay-clients "
						 "%s)",
						 c.first_pattern, text,
						 smtpd->name, everyone);
				}
			}
			route_result_free(&r);
		}
	}
}

void route_check_listeners(struct cf *cf)
{
	uint32_t n;
	struct cf_section **v = cf_listeners(cf, &n);
	for (uint32_t i = 0; i < n; i++) {
		const char *everyone = open_network(v[i]);
		if (everyone)
			probe_listener(cf, v[i], everyone);
	}
	if (n)
		free(v);
}

struct seen {
	char **keys;
	const struct route_entry **who;
	uint32_t mask, n;
};

static const struct route_entry *seen_get(const struct seen *s, const char *k)
{
	for (uint32_t i = hash_lower(k, strlen(k)) & s->mask; s->keys[i];
	     i = (i + 1) & s->mask)
		if (!strcmp(s->keys[i], k))
			return s->who[i];
	return NULL;
}

static void seen_put(struct seen *s, const char *k, const struct route_entry *e)
{
	uint32_t i = hash_lower(k, strlen(k)) & s->mask;
	for (; s->keys[i]; i = (i + 1) & s->mask)
		if (!strcmp(s->keys[i], k))
			return;
	s->keys[i] = xstrdup(k);
	s->who[i] = e;
	s->n++;
}

/* Room for n keys, the table at most half full. */
static void seen_init(struct seen *s, uint32_t n)
{
	uint32_t sz = 64;
	while (sz < 2ull * n + 64)
		sz *= 2;
	s->keys = xcalloc(sz, sizeof *s->keys);
	s->who = xcalloc(sz, sizeof *s->who);
	s->mask = sz - 1;
	s->n = 0;
}

static void seen_free(struct seen *s)
{
	for (uint32_t i = 0; i <= s->mask; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s->who);
}

void route_check_shadowed(struct cf *cf, const struct route_table *t)
{
	struct seen s;
	seen_init(&s, t->n);
	struct buf k = {0};
	struct rctx c;
	memset(&c, 0, sizeof c);
	c.delim = cf->core->v[CORE_RECIPIENT_DELIMITER].s;
	for (uint32_t i = 0; i < t->n; i++) {
		const struct route_entry *e = &t->e[i];
		if (e->type != RE_LINE)
			continue;
		char basebuf[ADDR_PATH_MAX];
		const char *base = route_base_of(&c, e->local, basebuf, sizeof basebuf);
		struct cand cand[6];
		int nc = 0;
		switch (e->pkind) {
		case PAT_ADDR:
			cand[nc++] = (struct cand){PAT_ADDR, e->local};
			if (base)
				cand[nc++] = (struct cand){PAT_ADDR, base};
			cand[nc++] = (struct cand){PAT_DOMAIN, ""};
			cand[nc++] = (struct cand){PAT_LOCAL, e->local};
			if (base)
				cand[nc++] = (struct cand){PAT_LOCAL, base};
			break;
		case PAT_DOMAIN:
			cand[nc++] = (struct cand){PAT_DOMAIN, ""};
			break;
		case PAT_LOCAL:
			cand[nc++] = (struct cand){PAT_LOCAL, e->local};
			if (base)
				cand[nc++] = (struct cand){PAT_LOCAL, base};
			break;
		case PAT_ALL:
			break;
		case PAT_NAME:
			cand[nc++] = (struct cand){PAT_NAME, e->local};
			if (base)
				cand[nc++] = (struct cand){PAT_NAME, base};
			break;
		}
		if (e->pkind != PAT_NAME)
			cand[nc++] = (struct cand){PAT_ALL, ""};
		const struct route_entry *by = NULL;
		for (int j = 0; j < nc && !by; j++) {
			k.len = 0;
			route_pattern_key(cand[j].k, cand[j].l, e->domain, &k);
			by = seen_get(&s, k.s);
		}
		if (by) {
			cf_warn(cf, &e->pos, "route '%s' is never used: '%s' at "
					     "%s:%u comes first and matches "
					     "every address it matches",
				e->text, by->text, by->pos.file, by->pos.line);
		}
		k.len = 0;
		route_pattern_key(e->pkind, e->local, e->domain, &k);
		seen_put(&s, k.s, e);
	}
	seen_free(&s);
	buf_free(&k);
}

/* What route_check_system asks of every target: the tables, and the
 * local names with a route of their own (PAT_NAME lines of every table,
 * keyed as route_pattern_key does) looked up once each, not by a scan
 * of every line per target. */
struct names {
	struct rctx c;
	struct seen routed;
	int indexed; /* a table has a compiled index: ask route_find_match */
	struct buf k;
};

static void names_init(struct names *nm, struct cf *cf,
		       const struct route_table **all)
{
	memset(nm, 0, sizeof *nm);
	nm->c.env = &route_env_system;
	nm->c.cf = cf;
	nm->c.tables = all;
	nm->c.delim = cf->core->v[CORE_RECIPIENT_DELIMITER].s;
	uint32_t lines = 0;
	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind == CF_ROUTE && cf->secs[i].table) {
			all[nm->c.ntables++] = cf->secs[i].table;
			lines += cf->secs[i].table->n;
		}
	seen_init(&nm->routed, lines);
	for (uint32_t ti = 0; ti < nm->c.ntables; ti++)
		for (uint32_t i = 0; i < all[ti]->n; i++) {
			const struct route_entry *e = &all[ti]->e[i];
			if (e->type == RE_INDEX)
				nm->indexed = 1;
			if (e->type != RE_LINE || e->pkind != PAT_NAME)
				continue;
			nm->k.len = 0;
			route_pattern_key(PAT_NAME, e->local, "", &nm->k);
			seen_put(&nm->routed, nm->k.s, e);
		}
}

static void names_free(struct names *nm)
{
	seen_free(&nm->routed);
	buf_free(&nm->k);
}

/* Whether a line of any table routes the local name name (or its base
 * without the +tag), as route_find_match(c, 1, ...) would find. */
static int name_routed(struct names *nm, const char *name)
{
	if (nm->indexed) {
		struct match m = {0};
		int found = route_find_match(&nm->c, 1, name, "", &m);
		free(m.hit);
		return found;
	}
	char basebuf[ADDR_PATH_MAX];
	const char *base = route_base_of(&nm->c, name, basebuf, sizeof basebuf);
	for (int i = 0; i < 1 + (base != NULL); i++) {
		nm->k.len = 0;
		route_pattern_key(PAT_NAME, i ? base : name, "", &nm->k);
		if (seen_get(&nm->routed, nm->k.s))
			return 1;
	}
	return 0;
}

/* Whether a NAME target names something: a [pipe], a [relay], a local
 * name with a route in any table, a host (a name with a dot), postmaster
 * (built in) or a system user. */
static int name_exists(struct names *nm, const char *name)
{
	struct rctx *c = &nm->c;
	if (cf_find(c->cf, CF_PIPE, name) || cf_find(c->cf, CF_RELAY, name) ||
	    (strchr(name, '.') && !cf_relay_address_error(name)) ||
	    !strcasecmp(name, "postmaster"))
		return 1;
	if (name_routed(nm, name))
		return 1;
	char lower[ADDR_PATH_MAX], basebuf[ADDR_PATH_MAX];
	fmt_snprintf(lower, sizeof lower, "%s", name);
	ascii_lower_str(lower);
	const char *base = route_base_of(c, lower, basebuf, sizeof basebuf);
	char user[ADDR_PATH_MAX];
	const struct route_env *env = c->env;
	return env->user(name, user, sizeof user) ||
	       env->user(lower, user, sizeof user) ||
	       (base && env->user(base, user, sizeof user));
}

/* Why a NAME target that is a host, by its dot, is none an onward
 * connection could take (route.c refuses its recipients); NULL when it
 * is no host or a good one. */
static const char *bad_host(struct names *nm, const char *name)
{
	if (!strchr(name, '.') || cf_find(nm->c.cf, CF_PIPE, name) ||
	    cf_find(nm->c.cf, CF_RELAY, name) || name_routed(nm, name))
		return NULL;
	return cf_relay_address_error(name);
}

/* The directory in which a session writes sub ("tmp/" or "new/") of a
 * Maildir path (ending in '/'), into dir: sub itself when it exists, else
 * the Maildir when it exists (the session makes sub there), else the
 * directory that holds it (a session creates the Maildir and its
 * subdirectories, not its parents). 0 with *st, or -1 when the parent
 * is missing too. */
static int maildir_written_dir(const char *path, const char *sub, char *dir,
			       size_t size, struct stat *st)
{
	const char *const tries[] = {sub, ""};
	for (int i = 0; i < 2; i++) {
		fmt_snprintf(dir, size, "%s%s", path, tries[i]);
		if (stat(dir, st) == 0 && S_ISDIR(st->st_mode))
			return 0;
	}
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 1 && path[n - 1] != '/')
		n--;
	if (n >= size) {
		st->st_mode = 0; /* too long to judge */
		return 0;
	}
	memcpy(dir, path, n);
	dir[n] = 0;
	return stat(dir, st) == 0 && S_ISDIR(st->st_mode) ? 0 : -1;
}

/* A Maildir target whose parent is missing, or that core.user-id cannot
 * write (by owner and mode, with no other group, as sessions run): every
 * delivery to it would fail for now (451), until it is bounced. */
static void check_maildir(struct cf *cf, const struct cf_pos *p,
			  const char *path)
{
	char dir[4096], why[256];
	struct stat st;
	uid_t uid;
	gid_t gid;
	/* a copy is written into tmp/, then linked into new/: both */
	static const char *const sub[] = {"tmp/", "new/"};
	int i = 0;
	for (; i < 2; i++) {
		if (maildir_written_dir(path, sub[i], dir, sizeof dir, &st) < 0) {
			cf_warn(cf, p, "the directory that holds the Maildir "
				       "%s does not exist on this host",
				path);
			return;
		}
		if (st.st_mode &&
		    cf_user_ids(cf, &uid, &gid, why, sizeof why) == 0 &&
		    !dir_writable_by(&st, uid, gid))
			break;
	}
	if (i == 2)
		return;
	cf_warn(cf, p, "the Maildir %s cannot be written by user-id %s "
		       "(%lu:%lu): \"%s\" has owner %lu:%lu, mode %04o, so "
		       "every delivery to it would fail",
		path, cf->core->v[CORE_USER_ID].s, (unsigned long)uid,
		(unsigned long)gid, dir, (unsigned long)st.st_uid,
		(unsigned long)st.st_gid, (unsigned)(st.st_mode & 07777));
}

/* The program of a |command target, its first word, when that is a plain
 * path that /bin/sh runs as written (no quoting, expansion or redirection
 * to read through): as for a [pipe]'s exec, and a relative one through
 * the mailers' PATH. */
static void check_command(struct cf *cf, const struct cf_pos *pos,
			  const char *target, route_program_check *check_program)
{
	const char *cmd = target + 1;
	size_t n = strcspn(cmd, " \t");
	char prog[4096], mailer[300];
	if (n >= 2048 || strspn(cmd, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz"
				     "0123456789/._+-") < n)
		return;
	fmt_snprintf(mailer, sizeof mailer, "'%.200s'", target);
	if (cmd[0] == '/') {
		fmt_snprintf(prog, sizeof prog, "%.*s", (int)n, cmd);
		check_program(cf, pos, prog, mailer);
		return;
	}
	struct stat st;
	for (const char *d = DELIVER_PATH; *d;) {
		size_t dn = strcspn(d, ":");
		fmt_snprintf(prog, sizeof prog, "%.*s/%.*s", (int)dn, d,
			     (int)n, cmd);
		if (stat(prog, &st) == 0) {
			check_program(cf, pos, prog, mailer);
			return;
		}
		d += dn + (d[dn] == ':');
	}
	cf_warn(cf, pos, "\"%.*s\" of %s is no program in the mailers' "
			 "PATH (%s) on this host: write its absolute path",
		(int)n, cmd, mailer, DELIVER_PATH);
}

static void check_targets(struct cf *cf, struct names *nm,
			  const struct route_table *t,
			  route_program_check *check_program)
{
	struct buf b = {0};
	struct tgt tg[MAX_TGTS];
	for (uint32_t i = 0; i < t->n; i++) {
		const struct route_entry *e = &t->e[i];
		const char *why;
		uint32_t col;
		if (e->type != RE_LINE)
			continue;
		int n = route_split_targets(&cf->words[e->w0], e->nw, &b, tg, &why,
				      &col);
		for (int j = 0; j < n; j++) {
			enum tkind k;
			struct addr rw;
			struct cf_pos p = e->pos;
			p.col = tg[j].col;
			if (route_classify(tg[j].text, &k, &rw, &why) < 0)
				continue;
			if (k == TK_NAME && (why = bad_host(nm, tg[j].text)))
				cf_error(cf, &p, "%s, found '%s' (a target with a "
						 "dot that is no [pipe], [relay] "
						 "or alias is a host)",
					 why, tg[j].text);
			else if (k == TK_NAME && !name_exists(nm, tg[j].text))
				cf_warn(cf, &p, "target '%s' names no [pipe], "
						"[relay], alias or system user "
						"on this host",
					tg[j].text);
			if (k == TK_CMD)
				check_command(cf, &p, tg[j].text,
					      check_program);
			if (k == TK_MAILDIR)
				check_maildir(cf, &p, tg[j].text);
		}
	}
	buf_free(&b);
}

/* What a name means as a route target when it is no NAME: a section
 * called that is never reached by one. */
static const char *const tkind_meaning[] = {
	[TK_REWRITE] = "an address to route again",
	[TK_HOST] = "a host to relay to",
	[TK_MX] = "the MX hosts of the recipient's domain",
	[TK_CMD] = "a command",
	[TK_MAILDIR] = "a Maildir",
	[TK_REJECT] = "a refusal (550 5.1.1)",
	[TK_DISCARD] = "accept and drop",
};

/* Warnings for a [pipe] or [relay] that no route can name: "mx",
 * "discard", "host:port" and the other forms mean themselves wherever
 * they are written (only core.local-mailer names a pipe otherwise). */
static void check_section_names(struct cf *cf)
{
	const char *mailer = cf->core->v[CORE_LOCAL_MAILER].s;
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		const struct cf_section *sec = &cf->secs[i];
		if ((sec->kind != CF_PIPE && sec->kind != CF_RELAY) ||
		    sec->builtin ||
		    (sec->kind == CF_PIPE && mailer && !strcmp(mailer, sec->name)))
			continue;
		enum tkind k;
		struct addr rw;
		const char *why;
		int bad = route_classify(sec->name, &k, &rw, &why) < 0;
		if (!bad && k == TK_NAME)
			continue;
		cf_warn(cf, &sec->pos, "[%s \"%s\"] can never be reached: as "
					"a route target, \"%s\" %s%s",
			sec->kind == CF_PIPE ? "pipe" : "relay", sec->name,
			sec->name, bad ? "is refused" : "means ",
			bad ? "" : tkind_meaning[k]);
	}
}

void route_check_system(struct cf *cf, route_program_check *check_program)
{
	check_section_names(cf);
	const struct route_table **all =
		xcalloc(cf->nsecs + 1, sizeof *all);
	struct names nm;
	names_init(&nm, cf, all);
	for (uint32_t i = 0; i < nm.c.ntables; i++)
		check_targets(cf, &nm, all[i], check_program);
	names_free(&nm);
	free(all);
}
