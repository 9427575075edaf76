/*
 * session_envelope.c - the envelope a session collects: MAIL's path and
 * parameters (RFC 5321 4.1.2, RFC 1870, RFC 6152, RFC 3030, RFC 6531,
 * RFC 4954 5, RFC 3461 4), RCPT's (RFC 3461 4), whether a client may relay (SPEC 6), and the recipients a
 * transaction keeps.
 *
 * Owns: the syntax of MAIL's and RCPT's parameters and the compact form of accepted
 * recipients (SPEC 11: a transaction holds max-recipients of them).
 *
 * Never: replies or logs: it fills a reply the session sends, once.
 */
#include "fmt.h"
#include "session_state.h"
#include "dsn.h"
#include "net.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "<path>" at p, quotes honoured; returns the end after '>' or NULL. */
char *envelope_path_end(char *p)
{
	if (*p != '<')
		return NULL;
	int quoted = 0;
	for (char *q = p + 1; *q; q++) {
		if (quoted && *q == '\\' && q[1]) {
			q++;
		} else if (*q == '"') {
			quoted = !quoted;
		} else if (*q == '>' && !quoted) {
			return q + 1;
		}
	}
	return NULL;
}

/*
 * SPEC 6: a recipient that leaves the machine for a domain that is not
 * ours is taken only from an authenticated client or one whose real
 * address is in relay-clients (default: loopback and local pipes).
 */
int envelope_relay_allowed(struct session *s)
{
	if (s->auth_user[0])
		return 1;
	if (!s->relay_client) {
		static const char *const loopback[] = {"loopback", NULL};
		const struct cf_list *l =
			s->smtpd ? &s->smtpd->v[SMTPD_RELAY_CLIENTS].list : NULL;
		int in = l && l->n ? net_list_contains(l->v, l->n, s->peer)
				   : net_list_contains(loopback, 1, s->peer);
		s->relay_client = in ? 1 : -1;
	}
	return s->relay_client > 0;
}

void envelope_free_rcpt(struct kept_rcpt *k)
{
	free(k->t);
	if (k->plan)
		plan_free(k->plan);
	free(k->plan);
}

void envelope_drop_rcpt(struct session *s, unsigned i)
{
	envelope_free_rcpt(&s->rcpts[i]);
	memmove(&s->rcpts[i], &s->rcpts[i + 1],
		(s->nrcpt - i - 1) * sizeof *s->rcpts);
	s->nrcpt--;
}

/* Appends rc to the transaction's recipients in the small form; takes
 * over rc's plan, leaves its route result to the caller. */
void envelope_keep_rcpt(struct session *s, struct rcpt *rc)
{
	if (s->nrcpt == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? 2 * s->rcpt_cap : 8;
		s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof *s->rcpts);
	}
	const struct route_result *r = &rc->r;
	size_t size = r->nt * sizeof(struct kept_target) + strlen(rc->addr) + 1;
	if (rc->dsn.orcpt[0])
		size += strlen(rc->dsn.orcpt) + 1;
	for (uint32_t k = 0; k < r->nt; k++) {
		if (strcmp(r->t[k].addr, rc->addr))
			size += strlen(r->t[k].addr) + 1;
		if (r->t[k].arg)
			size += strlen(r->t[k].arg) + 1;
	}
	struct kept_target *t = xmalloc(size);
	char *str = (char *)(t + r->nt);
	struct kept_rcpt *k = &s->rcpts[s->nrcpt++];
	*k = (struct kept_rcpt){.t = t, .nt = r->nt, .spooled = rc->spooled};
	k->addr = str;
	str = stpcpy(str, rc->addr) + 1;
	k->notify = rc->dsn.notify;
	if (rc->dsn.orcpt[0]) {
		k->orcpt = str;
		str = stpcpy(str, rc->dsn.orcpt) + 1;
	}
	for (uint32_t i = 0; i < r->nt; i++) {
		t[i] = (struct kept_target){.kind = r->t[i].kind,
					    .sec = r->t[i].sec,
					    .addr = k->addr};
		/* a target mostly receives the recipient itself */
		if (strcmp(r->t[i].addr, rc->addr)) {
			t[i].addr = str;
			str = stpcpy(str, r->t[i].addr) + 1;
		}
		if (r->t[i].arg) {
			t[i].arg = str;
			str = stpcpy(str, r->t[i].arg) + 1;
		}
	}
	if (s->proto == P_LHLO) {
		k->plan = xmalloc(sizeof *k->plan);
		*k->plan = rc->plan;
	}
	memset(&rc->plan, 0, sizeof rc->plan);
}

const char *envelope_targets_text(const struct kept_rcpt *k, struct buf *b)
{
	for (uint32_t i = 0; i < k->nt; i++) {
		const struct kept_target *t = &k->t[i];
		if (i)
			buf_adds(b, ", ");
		route_target_text(b, t->kind,
				  t->sec && t->sec->name ? t->sec->name : "",
				  t->arg, t->addr);
	}
	return b->len ? b->s : NULL;
}

/* LMTP: a recipient whose own run may serve another's. */
static int runs_directly(const struct kept_rcpt *k)
{
	return !k->spooled && !k->milter_added && !k->milter_deleted;
}

static int by_address(const void *a, const void *b)
{
	const struct kept_rcpt *x = *(const struct kept_rcpt *const *)a;
	const struct kept_rcpt *y = *(const struct kept_rcpt *const *)b;
	int c = strcasecmp(x->addr, y->addr);
	return c ? c : (x > y) - (x < y); /* RCPT order within an address */
}

static int same_targets(const struct kept_rcpt *a, const struct kept_rcpt *b)
{
	if (a->nt != b->nt)
		return 0;
	for (uint32_t i = 0; i < a->nt; i++) {
		const struct kept_target *x = &a->t[i], *y = &b->t[i];
		if (x->kind != y->kind || x->sec != y->sec ||
		    strcasecmp(x->addr, y->addr) || !x->arg != !y->arg ||
		    (x->arg && strcmp(x->arg, y->arg)))
			return 0;
	}
	return 1;
}

unsigned envelope_shared_runs(const struct session *s, int **slot)
{
	*slot = NULL;
	if (s->nrcpt < 2)
		return 0;
	const struct kept_rcpt **v = xmalloc(s->nrcpt * sizeof *v);
	unsigned n = 0, slots = 0;
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (runs_directly(&s->rcpts[i]))
			v[n++] = &s->rcpts[i];
	/* sorted, not compared pairwise: max-recipients may be 100000 */
	qsort(v, n, sizeof *v, by_address);
	for (unsigned a = 0, b; a < n; a = b) {
		int shared = 0;
		for (b = a + 1; b < n && !strcasecmp(v[a]->addr, v[b]->addr); b++) {
			if (!same_targets(v[a], v[b]))
				continue;
			if (!*slot) {
				*slot = xmalloc(s->nrcpt * sizeof **slot);
				for (unsigned i = 0; i < s->nrcpt; i++)
					(*slot)[i] = -1;
			}
			(*slot)[v[b] - s->rcpts] = (int)slots;
			shared = 1;
		}
		if (shared)
			(*slot)[v[a] - s->rcpts] = (int)slots++;
	}
	free(v);
	return slots;
}

void envelope_spool_duplicates(struct session *s)
{
	if (s->proto != P_LHLO || s->nrcpt < 2)
		return;
	const struct kept_rcpt **v = xmalloc(s->nrcpt * sizeof *v);
	unsigned n = 0;
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (!s->rcpts[i].milter_deleted)
			v[n++] = &s->rcpts[i];
	qsort(v, n, sizeof *v, by_address);
	for (unsigned a = 0, b; a < n; a = b) {
		const struct kept_rcpt *spooled = NULL;
		for (b = a; b < n && !strcasecmp(v[a]->addr, v[b]->addr); b++)
			if (!spooled && v[b]->spooled)
				spooled = v[b];
		for (unsigned i = a; spooled && i < b; i++)
			if (same_targets(spooled, v[i]))
				s->rcpts[v[i] - s->rcpts].spooled = 1;
	}
	free(v);
}

/* One MAIL parameter: its keyword and value (NULL without '='). */
struct param {
	const char *kw, *val;
	size_t nlen, vlen;
};

static int refuse(struct reply *r, int code, const char *text)
{
	reply_set(r, code, ESC_INVALID_COMMAND_ARGUMENTS, "%s", text);
	return -1;
}

static int is_kw(const struct param *p, const char *name)
{
	return p->nlen == strlen(name) && !strncasecmp(p->kw, name, p->nlen);
}

/* RFC 1870: SIZE=digits; a value past 2^64 - 1 stands for that. */
static int size_param(const struct param *p, uint64_t *size, struct reply *r)
{
	if (!p->val || p->vlen == 0 || p->vlen > 20 ||
	    strspn(p->val, "0123456789") < p->vlen)
		return refuse(r, 501, "Bad SIZE parameter");
	*size = 0;
	for (size_t i = 0; i < p->vlen; i++) {
		uint64_t d = (uint64_t)(p->val[i] - '0');
		*size = *size > (UINT64_MAX - d) / 10 ? UINT64_MAX
						     : *size * 10 + d;
	}
	return 0;
}

static int body_param(const struct param *p, enum body *body,
		      struct reply *r)
{
	static const struct {
		const char *name;
		enum body body;
	} bodies[] = {{"7BIT", BODY_7BIT},
		      {"8BITMIME", BODY_8BITMIME},
		      {"BINARYMIME", BODY_BINARYMIME}};
	for (size_t i = 0; p->val && i < sizeof bodies / sizeof *bodies; i++)
		if (p->vlen == strlen(bodies[i].name) &&
		    !strncasecmp(p->val, bodies[i].name, p->vlen)) {
			*body = bodies[i].body;
			return 0;
		}
	return refuse(r, 501, "Bad BODY parameter");
}

/* RFC 3461 4.3, 4.4: RET=FULL|HDRS, ENVID=xtext of at most 100 chars. */
static int ret_param(const struct param *p, enum dsn_ret *ret,
		     struct reply *r)
{
	if (p->val && p->vlen == 4 && !strncasecmp(p->val, "FULL", 4))
		*ret = DSN_RET_FULL;
	else if (p->val && p->vlen == 4 && !strncasecmp(p->val, "HDRS", 4))
		*ret = DSN_RET_HDRS;
	else
		return refuse(r, 501, "Bad RET parameter");
	return 0;
}

static int envid_param(const struct param *p, char *envid, struct reply *r)
{
	if (!p->val || !p->vlen || p->vlen > DSN_ENVID_MAX ||
	    !dsn_xtext_valid(p->val, p->vlen))
		return refuse(r, 501, "Bad ENVID parameter");
	memcpy(envid, p->val, p->vlen);
	envid[p->vlen] = 0;
	return 0;
}

/* One parameter into mp; seen counts SIZE, BODY, SMTPUTF8, RET, ENVID. */
static int one_param(const struct param *p, int auth_ok, unsigned seen[5],
		     struct mail_params *mp, struct reply *r, const char **bad)
{
	if (is_kw(p, "SIZE"))
		return seen[0]++ ? refuse(r, 501, "Duplicate SIZE parameter")
				 : size_param(p, &mp->size, r);
	if (is_kw(p, "BODY"))
		return seen[1]++ ? refuse(r, 501, "Duplicate BODY parameter")
				 : body_param(p, &mp->body, r);
	if (is_kw(p, "AUTH") && auth_ok)
		/* RFC 4954 5: the submitter's identity, taken note of and
		 * not passed on */
		return p->val && p->vlen ? 0
					 : refuse(r, 501, "Bad AUTH parameter");
	if (is_kw(p, "SMTPUTF8")) {
		if (seen[2]++)
			return refuse(r, 501, "Duplicate SMTPUTF8 parameter");
		if (p->val)
			return refuse(r, 501, "SMTPUTF8 takes no value");
		mp->smtputf8 = 1;
		return 0;
	}
	/* RFC 3461 4: a repeated DSN parameter is malformed */
	if (is_kw(p, "RET"))
		return seen[3]++ ? refuse(r, 501, "Duplicate RET parameter")
				 : ret_param(p, &mp->ret, r);
	if (is_kw(p, "ENVID"))
		return seen[4]++ ? refuse(r, 501, "Duplicate ENVID parameter")
				 : envid_param(p, mp->envid, r);
	*bad = p->kw;
	return -1;
}

/* The next blank-separated parameter at *q into p; 0 at the end. */
static int next_param(char **q, struct param *p)
{
	while (**q == ' ')
		(*q)++;
	if (!**q)
		return 0;
	*p = (struct param){.kw = *q};
	while (**q && **q != ' ')
		(*q)++;
	size_t klen = (size_t)(*q - p->kw);
	const char *eq = memchr(p->kw, '=', klen);
	p->nlen = eq ? (size_t)(eq - p->kw) : klen;
	p->val = eq ? eq + 1 : NULL;
	p->vlen = eq ? (size_t)(*q - eq - 1) : 0;
	return 1;
}

int envelope_mail_params(char *q, int helo, int auth_ok,
			 struct mail_params *mp, struct reply *r,
			 const char **bad)
{
	unsigned seen[5] = {0, 0, 0, 0, 0};
	*mp = (struct mail_params){.body = BODY_7BIT};
	*bad = NULL;
	struct param p;
	while (next_param(&q, &p)) {
		if (helo)
			return refuse(r, 555, "MAIL parameters need EHLO");
		if (one_param(&p, auth_ok, seen, mp, r, bad) < 0)
			return -1;
	}
	return 0;
}

int envelope_rcpt_params(char *q, int helo, struct rcpt_params *rp,
			 struct reply *r, const char **bad)
{
	unsigned seen_notify = 0, seen_orcpt = 0;
	*rp = (struct rcpt_params){0};
	*bad = NULL;
	struct param p;
	while (next_param(&q, &p)) {
		if (helo)
			return refuse(r, 555, "RCPT parameters need EHLO");
		if (is_kw(&p, "NOTIFY")) {
			if (seen_notify++)
				return refuse(r, 501,
					      "Duplicate NOTIFY parameter");
			if (!p.val || !p.vlen ||
			    dsn_notify_parse(p.val, p.vlen, &rp->notify) < 0)
				return refuse(r, 501, "Bad NOTIFY parameter");
		} else if (is_kw(&p, "ORCPT")) {
			if (seen_orcpt++)
				return refuse(r, 501,
					      "Duplicate ORCPT parameter");
			if (!p.val || !dsn_orcpt_valid(p.val, p.vlen))
				return refuse(r, 501, "Bad ORCPT parameter");
			memcpy(rp->orcpt, p.val, p.vlen);
			rp->orcpt[p.vlen] = 0;
		} else {
			*bad = p.kw;
			return -1;
		}
	}
	return 0;
}

/* A milter's address, "<addr>" or bare, parsed; its "<addr>" in path. */
static int milter_address(struct session *s, const char *given,
			  unsigned flags, struct addr *a,
			  char path[ADDR_PATH_MAX + 3], struct reply *r)
{
	fmt_snprintf(path, ADDR_PATH_MAX + 3, given[0] == '<' ? "%s" : "<%s>",
		 given);
	const char *why;
	size_t where;
	if (addr_parse(path, strlen(path),
		       flags | ADDR_BRACKETS | (s->smtputf8 ? ADDR_UTF8 : 0), a,
		       &why, &where) != ADDR_OK) {
		reply_set(r, 501, ESC_BAD_DEST_MAILBOX_SYNTAX,
			  "bad address syntax: %s", why);
		return -1;
	}
	return 0;
}

int envelope_add_rcpt(struct session *s, const char *given, struct reply *r)
{
	struct addr a;
	char path[ADDR_PATH_MAX + 3];
	if (milter_address(s, given, ADDR_NODOMAIN_OK, &a, path, r) < 0)
		return -1;
	struct rcpt rc;
	memset(&rc, 0, sizeof rc);
	addr_format(&a, rc.addr, sizeof rc.addr);
	route_resolve(s->cf, s->smtpd, path, strlen(path),
		      ROUTE_SMTP | (s->smtputf8 ? ROUTE_UTF8 : 0), &rc.r);
	plan_refuse_blanks(&rc.r, rc.addr);
	if (rc.r.code != 250) {
		reply_set(r, rc.r.code, ESC_OTHER, "%s", rc.r.text);
		route_result_free(&rc.r);
		return -1;
	}
	if (s->proto == P_LHLO)
		rc.spooled = 1;
	else
		s->spooled = 1;
	envelope_keep_rcpt(s, &rc);
	s->rcpts[s->nrcpt - 1].milter_added = 1;
	route_result_free(&rc.r);
	return 0;
}

int envelope_delete_rcpt(struct session *s, const char *given,
			 struct reply *r)
{
	struct addr a;
	char path[ADDR_PATH_MAX + 3], want[ADDR_PATH_MAX];
	if (milter_address(s, given, ADDR_NODOMAIN_OK, &a, path, r) < 0)
		return -1;
	addr_format(&a, want, sizeof want);
	unsigned w = 0, hits = 0;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		struct kept_rcpt *k = &s->rcpts[i];
		if (strcasecmp(k->addr, want) || k->milter_deleted) {
			s->rcpts[w++] = *k;
			continue;
		}
		hits++;
		if (s->proto == P_LHLO && !k->milter_added) {
			/* still answered after the data: kept, marked */
			k->milter_deleted = 1;
			k->spooled = 0;
			plan_free(k->plan);
			memset(k->plan, 0, sizeof *k->plan);
			s->rcpts[w++] = *k;
			continue;
		}
		free(k->t);
		if (k->plan)
			plan_free(k->plan);
		free(k->plan);
	}
	s->nrcpt = w;
	if (!hits) {
		reply_set(r, 550, ESC_BAD_DEST_MAILBOX, "no such recipient");
		return -1;
	}
	/* the direct path's plan was made for the old list */
	if (s->proto != P_LHLO)
		s->spooled = 1;
	return 0;
}

int envelope_change_sender(struct session *s, const char *given,
			   struct reply *r)
{
	struct addr a;
	char path[ADDR_PATH_MAX + 3];
	if (milter_address(s, given, ADDR_NULL_OK, &a, path, r) < 0)
		return -1;
	addr_format(&a, s->from, sizeof s->from);
	return 0;
}
