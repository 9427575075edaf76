/*
 * route.c - pure routing (SPEC 6; see route.h).
 *
 * A recipient is resolved by matching it against the listener's tables in
 * routing-table order and then the global [route]; the first line that
 * matches wins, across pattern kinds and recipient-delimiter fallbacks.
 * Each target of that line is either final (a pipe, relay, system user,
 * host, mx, |cmd, Maildir, discard) or leads to another resolution (a
 * rewrite, an alias), at most ROUTE_MAX_DEPTH deep. A line's patterns
 * and targets are read by route_syntax.c.
 *
 * Domains are compared in their canonical form (idna.h): patterns hold it
 * from the moment they are parsed, and each address is brought to it once
 * per step, so "bücher.test", "BÜCHER.test" and "xn--bcher-kva.test" are
 * one domain in patterns, local domains and compiled indexes.
 *
 * Names that a client chooses (the local part at the local host name, a
 * bare RCPT TO:<name>) resolve only to aliases and system users; only a
 * target that the administrator wrote can name a [pipe] or [relay].
 *
 * System users and the machine's own address literals come from the
 * struct route_env the caller passes (route_env.c, or a test's stub).
 *
 * Never: touches the network, the spool or the file system, calls the
 * user database, or writes anything.
 */
#include "fmt.h"
#include "route_impl.h"
#include "reply.h"
#include "idna.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Resolution                                                          */

/* Adds text to the done set; returns 1 when it was there already. */
static int done_add(struct rctx *c, const char *text, int depth)
{
	size_t n = strlen(text);
	if (2 * (c->ndone + 1) > c->donecap) {
		uint32_t cap = c->donecap ? c->donecap * 2 : 64;
		char **v = xcalloc(cap, sizeof *v);
		int *d = xcalloc(cap, sizeof *d);
		for (uint32_t i = 0; i < c->donecap; i++) {
			if (!c->done[i])
				continue;
			uint32_t j = hash_lower(c->done[i], strlen(c->done[i])) &
				     (cap - 1);
			while (v[j])
				j = (j + 1) & (cap - 1);
			v[j] = c->done[i];
			d[j] = c->donedepth[i];
		}
		free(c->done);
		free(c->donedepth);
		c->done = v;
		c->donedepth = d;
		c->donecap = cap;
	}
	uint32_t j = hash_lower(text, n) & (c->donecap - 1);
	for (; c->done[j]; j = (j + 1) & (c->donecap - 1))
		if (!ascii_casecmp_n(c->done[j], strlen(c->done[j]), text, n)) {
			/* a shorter path may get further than the first did */
			if (c->donedepth[j] <= depth)
				return 1;
			c->donedepth[j] = depth;
			return 0;
		}
	c->done[j] = xstrdup(text);
	c->donedepth[j] = depth;
	c->ndone++;
	return 0;
}

void route_ctx_free(struct rctx *c)
{
	for (uint32_t i = 0; i < c->donecap; i++)
		free(c->done[i]);
	free(c->done);
	free(c->donedepth);
	c->done = NULL;
	c->donedepth = NULL;
	c->ndone = c->donecap = 0;
}

static void step(struct rctx *c, int depth, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void step(struct rctx *c, int depth, const char *fmt, ...)
{
	if (!c->trace)
		return;
	va_list ap;
	for (int i = 0; i < depth + 1; i++)
		buf_adds(&c->r->steps, "  ");
	va_start(ap, fmt);
	buf_vprintf(&c->r->steps, fmt, ap);
	va_end(ap);
	buf_addc(&c->r->steps, '\n');
	c->r->nsteps++;
}

/*
 * One target failed. The client sees "<rcpt>: reason", never the aliases
 * and rewrites behind it; the steps (for --route and logs) get the detail.
 */
static void failure(struct rctx *c, int depth, int code, enum esc e,
		    const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void failure(struct rctx *c, int depth, int code, enum esc e,
		    const char *reason, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	fmt_vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	char dsn[ESC_LEN];
	esc_for_code(dsn, code, e);
	step(c, depth, "=> %d %s %s", code, dsn, text);
	int temp = code < 500;
	int *cp = temp ? &c->tcode : &c->pcode;
	if (*cp)
		return;
	*cp = code;
	fmt_snprintf(temp ? c->tdsn : c->pdsn, sizeof c->tdsn, "%s", dsn);
	fmt_snprintf(temp ? c->ttext : c->ptext, sizeof c->ttext, "<%s>: %s",
		 c->rcpt, reason);
}

/* The part of local before the first delimiter character, or NULL. */
const char *route_base_of(const struct rctx *c, const char *local,
			   char *out, size_t n)
{
	if (!c->delim || local[0] == '"')
		return NULL;
	size_t k = strcspn(local, c->delim);
	if (k == 0 || !local[k] || k >= n)
		return NULL;
	memcpy(out, local, k);
	out[k] = 0;
	return out;
}

static int eq(const char *a, const char *b)
{
	return addr_part_eq(a, b);
}

/* Whether a's local part is postmaster, or postmaster+tag with the
 * recipient-delimiter: the built-in postmaster rule takes both, as any
 * user+tag falls back to user. */
static int is_postmaster(const struct rctx *c, const struct addr *a)
{
	char basebuf[ADDR_PATH_MAX];
	const char *base = route_base_of(c, a->local, basebuf, sizeof basebuf);
	return addr_is_postmaster(a) || (base && eq(base, "postmaster"));
}

/* canon (canonical already) and a domain from the configuration, compared
 * in canonical form; a name that is no valid IDNA compares as written. */
static int same_domain(const char *canon, const char *other)
{
	char o[ADDR_DOMAIN_MAX + 1], why[300];
	if (idna_canon(other, o, sizeof o, why, sizeof why) == IDNA_OK)
		other = o;
	return eq(canon, other);
}

static int line_matches(const struct route_entry *e, int is_name,
			const char *local, const char *base,
			const char *domain)
{
	if (is_name)
		return e->pkind == PAT_NAME &&
		       (eq(e->local, local) || (base && eq(e->local, base)));
	switch (e->pkind) {
	case PAT_ADDR:
		return eq(e->domain, domain) &&
		       (eq(e->local, local) || (base && eq(e->local, base)));
	case PAT_DOMAIN:
		return eq(e->domain, domain);
	case PAT_LOCAL:
		return eq(e->local, local) || (base && eq(e->local, base));
	case PAT_ALL:
		return 1;
	default:
		return 0;
	}
}

/* The first indexed line that matches, in best; *named says whether its
 * pattern names the domain. */
static int index_match(const struct route_entry *e, int is_name,
		       const char *local, const char *base,
		       const char *domain, struct rt_hit *best, int *named)
{
	struct buf key = {0};
	struct rt_hit *hit = xmalloc(sizeof *hit);
	int found = 0;
	struct cand cand[6];
	int nc = 0;
	if (is_name) {
		cand[nc++] = (struct cand){PAT_NAME, local};
		if (base)
			cand[nc++] = (struct cand){PAT_NAME, base};
	} else {
		cand[nc++] = (struct cand){PAT_ADDR, local};
		if (base)
			cand[nc++] = (struct cand){PAT_ADDR, base};
		cand[nc++] = (struct cand){PAT_DOMAIN, ""};
		cand[nc++] = (struct cand){PAT_LOCAL, local};
		if (base)
			cand[nc++] = (struct cand){PAT_LOCAL, base};
		cand[nc++] = (struct cand){PAT_ALL, ""};
	}
	for (int i = 0; i < nc; i++) {
		key.len = 0;
		route_pattern_key(cand[i].k, cand[i].l, domain, &key);
		if (rtindex_lookup(e->idx, key.s, key.len, hit) &&
		    (!found || hit->seq < best->seq)) {
			memcpy(best, hit, offsetof(struct rt_hit, w) +
						  hit->nw * sizeof hit->w[0]);
			*named = cand[i].k == PAT_ADDR ||
				 cand[i].k == PAT_DOMAIN;
			found = 1;
		}
	}
	free(hit);
	buf_free(&key);
	return found;
}

/* The first line of the listener's tables that matches. */
int route_find_match(struct rctx *c, int is_name, const char *local,
		      const char *domain, struct match *m)
{
	char basebuf[ADDR_PATH_MAX];
	const char *base = route_base_of(c, local, basebuf, sizeof basebuf);
	for (uint32_t ti = 0; ti < c->ntables; ti++) {
		const struct route_table *t = c->tables[ti];
		for (uint32_t i = 0; i < t->n; i++) {
			const struct route_entry *e = &t->e[i];
			if (e->type == RE_INDEX) {
				if (!m->hit)
					m->hit = xmalloc(sizeof *m->hit);
				if (!index_match(e, is_name, local, base,
						 domain, m->hit,
						 &m->names_domain))
					continue;
				m->table = t->name;
				m->file = m->hit->file;
				m->line = m->hit->line;
				m->col = m->hit->col;
				m->pattern = m->hit->pattern;
				m->w = m->hit->w;
				m->nw = m->hit->nw;
				return 1;
			}
			if (!line_matches(e, is_name, local, base, domain))
				continue;
			m->table = t->name;
			m->file = e->pos.file;
			m->line = e->pos.line;
			m->col = e->pos.col;
			m->pattern = e->text;
			m->names_domain = e->pkind == PAT_ADDR ||
					  e->pkind == PAT_DOMAIN;
			m->w = &c->cf->words[e->w0];
			m->nw = e->nw;
			return 1;
		}
	}
	return 0;
}

/* Whether a line of t names domain d: with whole, as @d (the domain
 * whole); else as that or as user@d. */
static int table_names_domain(const struct route_table *t, const char *d,
			      int whole)
{
	for (uint32_t i = 0; i < t->n; i++) {
		const struct route_entry *e = &t->e[i];
		if (e->type == RE_INDEX) {
			if (rtindex_names_domain(e->idx, d, whole))
				return 1;
		} else if ((e->pkind == PAT_DOMAIN ||
			    (e->pkind == PAT_ADDR && !whole)) &&
			   eq(e->domain, d)) {
			return 1;
		}
	}
	return 0;
}

/* An address literal of one of this machine's addresses. */
static int own_literal(const struct route_env *env, const char *d)
{
	char tmp[ADDR_DOMAIN_MAX + 1];
	unsigned char want[16];
	int fam;
	size_t n = strlen(d);
	if (n < 3 || d[0] != '[' || d[n - 1] != ']')
		return 0;
	memcpy(tmp, d + 1, n - 2);
	tmp[n - 2] = 0;
	if (!strncasecmp(tmp, "IPv6:", 5)) {
		fam = AF_INET6;
		if (inet_pton(AF_INET6, tmp + 5, want) != 1)
			return 0;
	} else {
		fam = AF_INET;
		if (inet_pton(AF_INET, tmp, want) != 1)
			return 0;
	}
	return env->own_address(fam, want);
}

/* localhost, the host name, our own literals: local users live here.
 * d is canonical. */
static int local_host_domain(const struct route_env *env, const struct cf *cf,
			     const char *d)
{
	return eq(d, "localhost") ||
	       same_domain(d, cf->core->v[CORE_HOSTNAME].s) ||
	       own_literal(env, d);
}

uint32_t route_listener_tables(const struct cf *cf,
				const struct cf_section *smtpd,
				const struct route_table **out, uint32_t max)
{
	uint32_t n = 0;
	if (smtpd) {
		const struct cf_list *l = &smtpd->v[SMTPD_ROUTING_TABLE].list;
		for (uint32_t i = 0; i < l->n && n + 1 < max; i++) {
			const struct cf_section *s = cf_find(cf, CF_ROUTE, l->v[i]);
			if (s)
				out[n++] = s->table;
		}
	}
	out[n++] = cf->global_route->table;
	return n;
}

/* route_domain_is_local for a domain in canonical form; with whole, a
 * domain that only user@domain lines name is not local. */
static int canonical_is_local(const struct route_env *env,
			      const struct cf *cf,
			      const struct cf_section *smtpd, const char *domain,
			      int whole)
{
	if (local_host_domain(env, cf, domain))
		return 1;
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		const struct cf_section *s = &cf->secs[i];
		if (s->kind == CF_SMTPD && same_domain(domain, s->v[SMTPD_NAME].s))
			return 1;
	}
	const struct route_table *tables[CF_MAX_ROUTING_TABLES + 1];
	uint32_t n = route_listener_tables(cf, smtpd, tables,
					 CF_MAX_ROUTING_TABLES + 1);
	for (uint32_t i = 0; i < n; i++)
		if (table_names_domain(tables[i], domain, whole))
			return 1;
	return 0;
}

/* canonical_is_local for a domain as written. */
static int domain_is_local(const struct route_env *env, const struct cf *cf,
			   const struct cf_section *smtpd, const char *domain,
			   int whole)
{
	char canon[ADDR_DOMAIN_MAX + 1], why[300];
	if (idna_canon(domain, canon, sizeof canon, why, sizeof why) == IDNA_OK)
		domain = canon;
	return canonical_is_local(env, cf, smtpd, domain, whole);
}

int route_domain_is_local(const struct route_env *env, const struct cf *cf,
			  const struct cf_section *smtpd, const char *domain)
{
	return domain_is_local(env, cf, smtpd, domain, 0);
}

/* The domain of a in canonical form in out ("" without one), or -1 after a
 * failure: a recipient at a domain that is no valid international name is
 * refused; one that cannot be checked now is deferred. */
static int canonical_domain(struct rctx *c, const struct addr *a, int depth,
			    const char *text, char *out, size_t n)
{
	char why[300];
	out[0] = 0;
	if (!a->has_at)
		return 0;
	enum idna_status st = idna_canon(a->domain, out, n, why, sizeof why);
	if (st == IDNA_ENOLIB)
		failure(c, depth, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			"cannot check an international domain name now",
			"<%s>: %s", text, why);
	else if (st != IDNA_OK)
		failure(c, depth, 553, ESC_BAD_DEST_MAILBOX_SYNTAX, why,
			"<%s>: %s", text, why);
	return st == IDNA_OK ? 0 : -1;
}

static void add_target(struct rctx *c, int depth, enum target_kind kind,
		       const char *addr, const char *arg,
		       const struct cf_section *sec)
{
	struct route_result *r = c->r;
	/* a local name qualified with the host name can outgrow a path
	 * (RFC 5321 4.5.3.1.3): cut, it would name another domain */
	if (strlen(addr) + 2 > ADDR_PATH_MAX) {
		failure(c, depth, 550, ESC_BAD_DEST_MAILBOX_SYNTAX,
			"address too long",
			"%s %s would receive an address of %u octets, longer "
			"than a path may be",
			route_target_kind_name(kind), arg,
			(unsigned)strlen(addr));
		return;
	}
	for (uint32_t i = 0; i < r->nt; i++)
		if (r->t[i].kind == kind && !strcmp(r->t[i].addr, addr) &&
		    !strcmp(r->t[i].arg, arg)) {
			step(c, depth, "=> %s %s for <%s> (duplicate, once)",
			     route_target_kind_name(kind), arg, addr);
			return;
		}
	if (r->nt >= ROUTE_MAX_TARGETS) {
		c->aborted = 1;
		return;
	}
	r->t = xrealloc(r->t, (r->nt + 1) * sizeof *r->t);
	struct route_target *t = &r->t[r->nt++];
	memset(t, 0, sizeof *t);
	t->kind = kind;
	fmt_snprintf(t->addr, sizeof t->addr, "%s", addr);
	t->arg = xstrdup(arg);
	t->sec = sec;
	step(c, depth, "=> %s %s for <%s>", route_target_kind_name(kind), arg,
	     addr);
}


/* Whether a target leaves the machine (SPEC 6: relaying). */
int route_relays(const struct route_result *r)
{
	for (uint32_t i = 0; i < r->nt; i++)
		if (r->t[i].kind == T_RELAY || r->t[i].kind == T_HOST ||
		    r->t[i].kind == T_MX)
			return 1;
	return 0;
}

/* The address with the host name as its domain when it has none. */
static void qualified(const struct rctx *c, const struct addr *a, char *out,
		      size_t n)
{
	if (a->has_at)
		addr_format(a, out, n);
	else
		fmt_snprintf(out, n, "%s@%s", a->local,
			 c->cf->core->v[CORE_HOSTNAME].s);
}

static void system_user(struct rctx *c, const char *name, int depth)
{
	char basebuf[ADDR_PATH_MAX];
	const char *user = name;
	/* user names are lower case; local parts match without case, as
	 * Postfix's local(8) folds them */
	char lower[ADDR_PATH_MAX];
	fmt_snprintf(lower, sizeof lower, "%s", name);
	ascii_lower_str(lower);
	char found[ADDR_PATH_MAX];
	int pw = c->env->user(name, found, sizeof found);
	if (!pw && strcmp(lower, name))
		pw = c->env->user(lower, found, sizeof found);
	if (!pw) {
		user = route_base_of(c, lower, basebuf, sizeof basebuf);
		pw = user ? c->env->user(user, found, sizeof found) : 0;
	}
	if (!pw) {
		failure(c, depth, 550, ESC_BAD_DEST_MAILBOX, "user unknown",
			"no system user %s", name);
		return;
	}
	const struct cf_section *mailer =
		cf_find(c->cf, CF_PIPE, c->cf->core->v[CORE_LOCAL_MAILER].s);
	add_target(c, depth, T_USER, found, found, mailer);
}

/* A NAME target written by the administrator. */
static void resolve_name_target(struct rctx *c, const char *name,
				const struct addr *cur, int depth)
{
	char addr[ADDR_PATH_MAX + 256];
	const struct cf_section *s;
	if ((s = cf_find(c->cf, CF_PIPE, name))) {
		addr_format(cur, addr, sizeof addr);
		add_target(c, depth, T_PIPE, addr, name, s);
		return;
	}
	if ((s = cf_find(c->cf, CF_RELAY, name))) {
		qualified(c, cur, addr, sizeof addr);
		add_target(c, depth, T_RELAY, addr, name, s);
		return;
	}
	/* an alias of itself ("daemon daemon") means the user, as in
	 * aliases(5) */
	if (!cur->has_at && addr_part_eq(cur->local, name)) {
		system_user(c, name, depth);
		return;
	}
	struct addr nm;
	memset(&nm, 0, sizeof nm);
	fmt_snprintf(nm.local, sizeof nm.local, "%s", name);
	struct match m = {0};
	int found = route_find_match(c, 1, name, "", &m);
	free(m.hit);
	if (found || !strchr(name, '.')) {
		route_ctx_resolve(c, &nm, depth + 1, 0);
		return;
	}
	/* a name with a dot that is no pipe, relay or alias is a host: no
	 * user lookup, which may load NSS modules (SPEC 11). One that no
	 * onward connection could take ('192.0.2.0/24') is the
	 * administrator's mistake (--check names it), as a target that does
	 * not parse: 451, so that the sender keeps the mail until the route
	 * is mended, rather than queued until it bounces or refused for good
	 * as an unknown user */
	const char *bad = cf_relay_address_error(name);
	if (bad) {
		failure(c, depth, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
			"route misconfigured", "bad route target '%s': %s", name,
			bad);
		return;
	}
	qualified(c, cur, addr, sizeof addr);
	add_target(c, depth, T_HOST, addr, name, NULL);
}

static void expand(struct rctx *c, const struct match *m,
		   const struct addr *cur, int depth)
{
	struct buf b = {0};
	/* not on the stack: 3 KiB there would deepen every session's
	 * stack by a page (a fault each) for the one or two targets used */
	struct tgt *t = xmalloc(MAX_TGTS * sizeof *t);
	const char *why;
	uint32_t col;
	char addr[ADDR_PATH_MAX + 256];
	int n = route_split_targets(m->w, m->nw, &b, t, &why, &col);
	for (int i = 0; i < n && !c->aborted; i++) {
		enum tkind k;
		struct addr rw;
		if (route_classify(t[i].text, &k, &rw, &why) < 0) {
			failure(c, depth, 451,
				ESC_SYSTEM_INCORRECTLY_CONFIGURED,
				"route misconfigured",
				"bad route target '%s' at %s:%u", t[i].text,
				m->file, m->line);
			continue;
		}
		switch (k) {
		case TK_NAME:
			resolve_name_target(c, t[i].text, cur, depth);
			break;
		case TK_REWRITE: {
			struct addr na = *cur;
			if (rw.local[0])
				memcpy(na.local, rw.local, sizeof na.local);
			if (rw.domain[0]) {
				memcpy(na.domain, rw.domain, sizeof na.domain);
				na.has_at = 1;
				na.literal = rw.literal;
			}
			addr_format(&na, addr, sizeof addr);
			if (strlen(addr) + 2 > ADDR_PATH_MAX) {
				failure(c, depth, 550,
					ESC_BAD_DEST_MAILBOX_SYNTAX,
					"rewritten address too long",
					"<%s> is too long", addr);
				break;
			}
			step(c, depth, "rewrite to <%s>", addr);
			route_ctx_resolve(c, &na, depth + 1, 0);
			break;
		}
		case TK_HOST:
			qualified(c, cur, addr, sizeof addr);
			add_target(c, depth, T_HOST, addr, t[i].text, NULL);
			break;
		case TK_MX:
			qualified(c, cur, addr, sizeof addr);
			add_target(c, depth, T_MX, addr, "mx", NULL);
			break;
		case TK_CMD:
			addr_format(cur, addr, sizeof addr);
			add_target(c, depth, T_CMD, addr, t[i].text + 1, NULL);
			break;
		case TK_MAILDIR:
			addr_format(cur, addr, sizeof addr);
			add_target(c, depth, T_MAILDIR, addr, t[i].text, NULL);
			break;
		case TK_REJECT:
			addr_format(cur, addr, sizeof addr);
			failure(c, depth, 550, ESC_BAD_DEST_MAILBOX,
				"recipient rejected", "<%s> is rejected", addr);
			break;
		case TK_DISCARD:
			addr_format(cur, addr, sizeof addr);
			add_target(c, depth, T_DISCARD, addr, "discard", NULL);
			break;
		}
	}
	free(t);
	buf_free(&b);
}

/*
 * Resolves one address or local name. client_name: the name came from the
 * client (a local part at the host name, RCPT TO:<name>), so it may reach
 * aliases and system users only.
 */
void route_ctx_resolve(struct rctx *c, const struct addr *a, int depth,
		    int client_name)
{
	char text[ADDR_PATH_MAX + 8];
	addr_format(a, text, sizeof text);
	if (c->aborted)
		return;
	if (++c->steps > ROUTE_MAX_STEPS) {
		c->aborted = 1;
		return;
	}
	/* an address that repeats on its own chain loops for sure; a chain
	 * deeper than ROUTE_MAX_DEPTH is taken for one */
	int repeat = 0;
	for (int i = 0; i < depth && i <= ROUTE_MAX_DEPTH; i++)
		if (c->chain[i] && addr_part_eq(c->chain[i], text))
			repeat = 1;
	if (repeat || depth > ROUTE_MAX_DEPTH) {
		struct buf chain = {0};
		for (int i = 0; i < depth && i <= ROUTE_MAX_DEPTH; i++)
			if (c->chain[i])
				buf_printf(&chain, "%s -> ", c->chain[i]);
		failure(c, depth, 550, ESC_ROUTING_LOOP, "routing loop",
			"routing loop: %s%s", chain.s ? chain.s : "", text);
		buf_free(&chain);
		return;
	}
	/* reached again by another branch: its targets are in already */
	if (done_add(c, text, depth)) {
		step(c, depth, "<%s> is resolved above", text);
		return;
	}
	char dom[ADDR_DOMAIN_MAX + 1];
	if (canonical_domain(c, a, depth, text, dom, sizeof dom) < 0)
		return;
	char *mine = xstrdup(text);
	c->chain[depth] = mine;
	struct match mm = {0}, *m = &mm;
	if (route_find_match(c, !a->has_at, a->local, dom, m)) {
		if (!c->first.file) {
			c->first.file = m->file;
			c->first.line = m->line;
			c->first.col = m->col;
			c->first_pattern = m->pattern;
			c->first_names_domain = m->names_domain;
		}
		struct buf tw = {0};
		for (uint32_t i = 0; i < m->nw; i++)
			buf_printf(&tw, "%s%s", i ? " " : "", m->w[i].s);
		step(c, depth, "<%s> matches '%s' in [route%s%s%s] at %s:%u: %s",
		     text, m->pattern, m->table[0] ? " \"" : "", m->table,
		     m->table[0] ? "\"" : "", m->file, m->line, tw.s);
		buf_free(&tw);
		expand(c, m, a, depth);
	} else if (!a->has_at) {
		if (is_postmaster(c, a) && depth <= ROUTE_MAX_DEPTH) {
			step(c, depth, "<%s> has no route: postmaster goes to "
				       "root (built in)",
			     text);
			/* as an alias "postmaster: root": root's own route
			 * first, the system user root only without one */
			resolve_name_target(c, "root", a, depth);
		} else {
			step(c, depth, "<%s> has no route: a system user?",
			     text);
			system_user(c, a->local, depth);
		}
		(void)client_name;
	} else if (local_host_domain(c->env, c->cf, dom)) {
		step(c, depth, "<%s> has no route; %s is this host: local "
			       "name %s",
		     text, a->domain, a->local);
		struct addr nm;
		memset(&nm, 0, sizeof nm);
		memcpy(nm.local, a->local, sizeof nm.local);
		route_ctx_resolve(c, &nm, depth + 1, 1);
	} else if (canonical_is_local(c->env, c->cf, c->smtpd, dom, 0)) {
		if (is_postmaster(c, a)) {
			step(c, depth, "<%s> has no route: postmaster at a local "
				       "domain",
			     text);
			if (depth == 0)
				c->postmaster_rule = 1;
			struct addr nm;
			memset(&nm, 0, sizeof nm);
			strcpy(nm.local, "postmaster");
			route_ctx_resolve(c, &nm, depth + 1, 1);
		} else {
			failure(c, depth, 550, ESC_BAD_DEST_MAILBOX,
				"user unknown",
				"<%s>: no route at a local domain", text);
		}
	} else {
		failure(c, depth, 550, ESC_DELIVERY_NOT_AUTHORIZED,
			"relaying denied",
			"<%s>: no route, and %s is not a local domain", text,
			a->domain);
	}
	free(mm.hit);
	free(mine);
	c->chain[depth] = NULL;
}

void route_ctx_init(struct rctx *c, const struct route_env *env,
		    const struct cf *cf, const struct cf_section *smtpd,
		    struct route_result *r, const struct route_table **tables)
{
	memset(c, 0, sizeof *c);
	memset(r, 0, sizeof *r);
	c->env = env;
	c->cf = cf;
	c->smtpd = smtpd;
	c->r = r;
	c->tables = tables;
	c->ntables = route_listener_tables(cf, smtpd, tables,
					 CF_MAX_ROUTING_TABLES + 1);
	c->delim = cf->core->v[CORE_RECIPIENT_DELIMITER].s;
}

void route_ctx_finish(struct rctx *c)
{
	const char *rcpt = c->rcpt;
	struct route_result *r = c->r;
	if (c->aborted) {
		for (uint32_t i = 0; i < r->nt; i++)
			free(r->t[i].arg);
		free(r->t);
		r->t = NULL;
		r->nt = 0;
		c->tcode = 0;
		c->pcode = 550;
		esc_for_code(c->pdsn, c->pcode, ESC_ROUTING_LOOP);
		fmt_snprintf(c->ptext, sizeof c->ptext,
			 "<%s>: routing expands to too many targets", rcpt);
	}
	if (r->nt) {
		r->code = 250;
		esc_for_code(r->dsn, r->code, ESC_DEST_MAILBOX_VALID);
		fmt_snprintf(r->text, sizeof r->text, "<%s> OK", rcpt);
	} else if (c->tcode) {
		r->code = c->tcode;
		memcpy(r->dsn, c->tdsn, sizeof r->dsn);
		memcpy(r->text, c->ttext, sizeof r->text);
	} else {
		r->code = c->pcode ? c->pcode : 550;
		if (c->pcode) {
			memcpy(r->dsn, c->pdsn, sizeof r->dsn);
			memcpy(r->text, c->ptext, sizeof r->text);
		} else {
			esc_for_code(r->dsn, r->code, ESC_BAD_DEST_MAILBOX);
			fmt_snprintf(r->text, sizeof r->text, "<%s>: user unknown",
				 rcpt);
		}
	}
}

static const char *addr_reason(enum addr_status st, int *code, enum esc *e)
{
	*code = 501;
	*e = ESC_BAD_DEST_MAILBOX_SYNTAX;
	switch (st) {
	case ADDR_ENONASCII:
		*code = 553;
		*e = ESC_NON_ASCII_ADDRESS;
		return "non-ASCII address without SMTPUTF8";
	case ADDR_ENULL:
		return "the null address is not a recipient";
	default:
		return NULL;
	}
}

/* Whether a local part carries a destination of its own: postmaster never
 * routes by it (SPEC 5), but a next hop may (sendmail's %-hack, a UUCP
 * path, a quoted address): Postfix's allow_untrusted_routing = no. */
static int names_a_destination(const char *local)
{
	for (; *local; local++)
		if (*local == '%' || *local == '!' || *local == '@')
			return 1;
	return 0;
}

/*
 * Whether a recipient whose targets leave the machine is still mail for
 * this site, which any client may send: its domain is local as a whole
 * (this host, an [smtpd] name, an @domain line), or the line that routed
 * it names its domain (user@domain: the administrator routed that address
 * by name), or it is postmaster at a local domain, which the built-in
 * rule routes wherever postmaster's mail goes. A user@domain line makes
 * its address ours, not its domain: a "spammer@gmail.com reject" line
 * must not let a catch-all relay take every other gmail.com address from
 * every client.
 */
static int for_this_site(const struct rctx *c, const char *domain)
{
	if (c->first_names_domain || c->postmaster_rule)
		return 1; /* it matched, so that domain is the recipient's */
	return domain_is_local(c->env, c->cf, c->smtpd, domain, 1);
}

void route_resolve_env(const struct route_env *env, const struct cf *cf,
		       const struct cf_section *smtpd, const char *text,
		       size_t len, unsigned flags, struct route_result *r)
{
	struct rctx c;
	const struct route_table *tables[CF_MAX_ROUTING_TABLES + 1];
	route_ctx_init(&c, env, cf, smtpd, r, tables);
	c.trace = (flags & ROUTE_TRACE) != 0;
	struct addr a;
	const char *why;
	size_t where;
	/* as RCPT parses it: a leading '-' could be an option to a mailer */
	unsigned af = ADDR_NODOMAIN_OK | ((flags & ROUTE_UTF8) ? ADDR_UTF8 : 0) |
		      ((flags & ROUTE_SMTP) ? ADDR_NODASH : 0);
	enum addr_status st = addr_parse(text, len, af, &a, &why, &where);
	if (st != ADDR_OK) {
		int code;
		enum esc ec;
		const char *w = addr_reason(st, &code, &ec);
		r->code = code;
		esc_for_code(r->dsn, code, ec);
		struct buf e = {0};
		buf_add_escaped(&e, text, len);
		int bracketed = len && text[0] == '<';
		fmt_snprintf(r->text, sizeof r->text, "%s%s%s: %s",
			 bracketed ? "" : "<", e.s ? e.s : "", bracketed ? "" : ">",
			 w ? w : why);
		buf_free(&e);
		step(&c, 0, "=> %d %s %s", r->code, r->dsn, r->text);
		return;
	}
	char rcpt[ADDR_PATH_MAX + 8];
	addr_format(&a, rcpt, sizeof rcpt);
	if (!a.has_at && !addr_is_postmaster(&a) &&
	    !(smtpd && smtpd->v[SMTPD_LOCAL_RCPT_TO].n)) {
		r->code = 504;
		esc_for_code(r->dsn, r->code, ESC_SYNTAX_ERROR);
		fmt_snprintf(r->text, sizeof r->text,
			 "<%s>: need a fully-qualified address", rcpt);
		step(&c, 0, "<%s> is a local name and local-rcpt-to is no",
		     rcpt);
		step(&c, 0, "=> %d %s %s", r->code, r->dsn, r->text);
		return;
	}
	c.rcpt = rcpt;
	route_ctx_resolve(&c, &a, 0, !a.has_at);
	route_ctx_finish(&c);
	route_ctx_free(&c);
	if (r->code != 250 || !route_relays(r))
		return;
	/* a bare name (postmaster+tag, a local-rcpt-to name) is ours, but
	 * leaves qualified with the host name: its local part is held to
	 * the same rule as any other's */
	if (a.has_at && !for_this_site(&c, a.domain)) {
		r->relaying = 1;
		step(&c, 0, "relaying: %s is not this host's, no @%s line "
			    "takes it, and no line names <%s>; only "
			    "relay-clients and authenticated clients may send "
			    "to it, others get 554 5.7.1",
		     a.domain, a.domain, rcpt);
	} else if (names_a_destination(a.local)) {
		r->relaying = 1;
		step(&c, 0, "relaying: the local part of <%s> names another "
			    "destination (%%, ! or @) that the next hop may "
			    "route to; only relay-clients and authenticated "
			    "clients may send it, others get 554 5.7.1",
		     rcpt);
	}
}

void route_result_free(struct route_result *r)
{
	for (uint32_t i = 0; i < r->nt; i++)
		free(r->t[i].arg);
	free(r->t);
	buf_free(&r->steps);
	memset(r, 0, sizeof *r);
}

