/*
 * flush.c - delivering spooled messages (see flush.h).
 *
 * A run takes the due, pending targets of one message: local ones are
 * gathered into as few mailer runs as deliver.c's plan allows (Maildirs get
 * a file name made of the spool id, so a repeated run finds its earlier
 * copy instead of writing a second one), network ones are grouped by
 * destination and sent over one connection. After each run the envelope
 * is rewritten, so a crash repeats at most that run; the bounces and
 * reports a message's run writes go out only once its own state is
 * recorded. A destination that could not be reached is remembered for
 * the rest of the flush.
 */
#include "flush.h"
#include "bounce.h"
#include "client.h"
#include "deliver.h"
#include "fmt.h"
#include "log.h"
#include "priv.h"
#include "reply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 300 /* the built-in listener's timeout */
#define MAX_DEAD 64
/* The reports one run of a message may write: one of each kind. */
#define MAX_REPORTS (REPORT_EXPANDED + 1)
/* Destinations that failed to connect in this process, and local
 * mailers that overran their timeout ("local " keys). */
static struct {
	char key[300];
	struct reply r;
} dead[MAX_DEAD];
static unsigned ndead;

/* The reply that made key dead in this process, or NULL. */
static const struct reply *dead_reply(const char *key)
{
	for (unsigned d = 0; d < ndead; d++)
		if (!strcmp(dead[d].key, key))
			return &dead[d].r;
	return NULL;
}

static void remember_dead(const char *key, const struct reply *r)
{
	if (ndead == MAX_DEAD || dead_reply(key))
		return;
	/* a key cut short may match another mailer's: that one only
	 * waits for the next run */
	fmt_snprintf(dead[ndead].key, sizeof dead[ndead].key, "%s", key);
	dead[ndead++].r = *r;
}

static int is_local(enum target_kind k)
{
	return k != T_RELAY && k != T_HOST && k != T_MX;
}

static const struct cf_section *target_section(const struct cf *cf,
					       const struct spool_target *t)
{
	if (t->kind == T_PIPE || t->kind == T_USER)
		return cf_find(cf, CF_PIPE, t->via);
	if (t->kind == T_RELAY)
		return cf_find(cf, CF_RELAY, t->via);
	return NULL;
}

static int64_t backoff(const struct cf *cf, unsigned attempts)
{
	uint64_t min = cf->core->v[CORE_MINIMAL_BACKOFF].n;
	uint64_t max = cf->core->v[CORE_MAXIMAL_BACKOFF].n;
	uint64_t d = min;
	for (unsigned i = 1; i < attempts && d < max; i++)
		d *= 2;
	return (int64_t)(d > max ? max : d);
}

struct run {
	const struct cf *cf;
	int dirfd;
	struct spool_msg *m;
	unsigned char *fail_now; /* failed in this flush: to be bounced */
	time_t now;
	/* written in this run, delivered once the message's own state is
	 * recorded (see flush_run) */
	struct spool_msg reports[MAX_REPORTS];
	unsigned nreports;
};

static void log_target(const struct run *x, const struct spool_target *t,
		       const char *status)
{
	char f[ADDR_PATH_MAX + 4], to[ADDR_PATH_MAX + 4], code[8], delay[24],
		size[24];
	fmt_snprintf(f, sizeof f, "<%s>", x->m->from);
	fmt_snprintf(to, sizeof to, "<%s>", t->addr);
	fmt_snprintf(code, sizeof code, "%d", t->code);
	fmt_snprintf(delay, sizeof delay, "%lld",
		 (long long)(x->now - x->m->arrival));
	fmt_snprintf(size, sizeof size, "%lld", (long long)x->m->size);
	struct buf rep = {0}, tgt = {0};
	buf_printf(&rep, "%d %s %s", t->code, t->dsn, t->text);
	route_target_text(&tgt, t->kind, t->via, t->arg, t->addr);
	char words[32];
	int peer = t->remote[0] != 0;
	log_event(t->code < 300 ? LOG_L_INFO : LOG_L_WARNING, "id", x->m->id,
		  "from", f, "to", to, "target", tgt.s, "relay",
		  peer ? t->remote : NULL, "tls",
		  peer && t->remote_tls >= 0 ? (t->remote_tls ? "yes" : "no")
					     : NULL,
		  "status", status, "dsn",
		  t->dsn, "dsn-notify",
		  t->notify ? dsn_notify_text(t->notify, words) : NULL, "size",
		  size, "delay", delay, "reply", rep.s, NULL);
	buf_free(&rep);
	buf_free(&tgt);
}

/* What a reply means for one target; success is the report a delivery
 * gives NOTIFY=SUCCESS (REPORT_DELIVERED or REPORT_RELAYED), or -1 when
 * it gives none (a next hop that reports itself). That report is owed
 * from the envelope that records the delivery on, so a run that dies
 * before it is written leaves it to the next run. */
static void apply(struct run *x, unsigned i, const struct reply *r,
		  const char *remote, int tls, int success)
{
	struct spool_target *t = &x->m->t[i];
	t->code = r->code;
	fmt_snprintf(t->dsn, sizeof t->dsn, "%s", r->dsn);
	free(t->text);
	t->text = xstrdup(r->text);
	free(t->remote);
	t->remote = xstrdup(remote ? remote : "");
	t->remote_tls = tls;
	t->attempts++;
	if (r->code < 300) {
		t->state = SP_DELIVERED;
		log_target(x, t, "sent");
		if (success >= 0 && (t->notify & DSN_SUCCESS))
			t->owed = success == REPORT_RELAYED ? SP_OWED_RELAYED
							    : SP_OWED_DELIVERED;
		return;
	}
	int64_t lifetime = (int64_t)x->cf->core->v[CORE_QUEUE_LIFETIME].n;
	if (r->code < 500 && x->now - x->m->arrival < lifetime) {
		t->next = x->now + backoff(x->cf, t->attempts);
		log_target(x, t, "deferred");
		return;
	}
	if (r->code < 500) {
		/* the last temporary reply becomes the final one */
		struct buf b = {0};
		buf_printf(&b, "%s (gave up after %lld seconds in the queue)",
			   t->text, (long long)(x->now - x->m->arrival));
		free(t->text);
		t->text = b.s;
		/* the status stays the peer's 4.x.x, as Postfix reports an
		 * expired message: the failure was never permanent */
	}
	x->fail_now[i] = 1;
	log_target(x, t, "bounced");
}

static int due(const struct run *x, unsigned i, int all)
{
	const struct spool_target *t = &x->m->t[i];
	return t->state == SP_PENDING && !x->fail_now[i] &&
	       (all || t->next <= x->now);
}

static void save(struct run *x)
{
	/* nothing left to do: the removal that follows says it all, and a
	 * crash before it repeats at most this run, as it would anyway */
	unsigned open = 0;
	for (unsigned i = 0; i < x->m->nt; i++)
		open += x->m->t[i].state == SP_PENDING || x->fail_now[i] ||
			x->m->t[i].owed;
	if (!open)
		return;
	if (spool_update(x->dirfd, x->m) < 0)
		log_event(LOG_L_ERR, "id", x->m->id, "event", "spool-error",
			  "reason", strerror(errno), NULL);
}

/* The spooled message as deliver.c and client.c read it. */
static struct msg message_of(const struct run *x)
{
	const struct spool_msg *m = x->m;
	return (struct msg){
		.fd = m->data_fd,
		.off = m->data_off,
		.size = m->size,
		.from = m->from,
		.sid = m->id,
		.hostname = x->cf->core->v[CORE_HOSTNAME].s,
		.binary = m->binary,
	};
}

/* How long a |command of m may run: the timeout of the listener that
 * accepted m, as on the direct path; the built-in listener's when m came
 * from none or from one no longer in the configuration. */
static int command_timeout(const struct cf *cf, const struct spool_msg *m)
{
	const struct cf_section *l =
		m->smtpd && m->smtpd[0] ? cf_find(cf, CF_SMTPD, m->smtpd) : NULL;
	return l ? (int)l->v[SMTPD_TIMEOUT].n : DEFAULT_TIMEOUT;
}

/* What a mailer that hangs is remembered by: its [pipe], the local
 * mailer and the user (whose own filter may be what hangs), or its
 * command; "" for a Maildir, which has no timeout. */
static void mailer_key(const struct spool_target *t, char *key, size_t n)
{
	if (t->kind == T_PIPE)
		fmt_snprintf(key, n, "local pipe %s", t->via);
	else if (t->kind == T_USER)
		fmt_snprintf(key, n, "local user %s %s", t->via, t->arg);
	else if (t->kind == T_CMD)
		fmt_snprintf(key, n, "local cmd %s", t->arg);
	else
		key[0] = 0;
}

/* Delivers local target i and every later local target that fits the same
 * mailer run. A mailer that overran its timeout in this flush is not run
 * again in it: its targets wait for the next one, at once. */
static void local_run(struct run *x, unsigned i, int all, unsigned char *used)
{
	struct spool_msg *m = x->m;
	char key[300];
	mailer_key(&m->t[i], key, sizeof key);
	const struct reply *hung = key[0] ? dead_reply(key) : NULL;
	if (hung) {
		used[i] = 1;
		apply(x, i, hung, NULL, -1, -1);
		save(x);
		return;
	}
	struct plan p = {0};
	p.spool_id = m->id;
	unsigned *idx = xcalloc(m->nt, sizeof *idx);
	unsigned n = 0;
	struct reply r = {0};
	for (unsigned k = i; k < m->nt; k++) {
		struct spool_target *t = &m->t[k];
		if (used[k] || !due(x, k, all) || !is_local(t->kind))
			continue;
		/* a Maildir goes alone: the direct path's all-or-none would let
		 * one recipient's broken Maildir defer (and at last bounce) the
		 * others, and its copies are named after the message, so a
		 * repeated run writes none twice */
		if (k != i && (m->t[i].kind == T_MAILDIR || t->kind == T_MAILDIR))
			continue;
		struct route_target rt = {.kind = t->kind, .arg = t->arg};
		fmt_snprintf(rt.addr, sizeof rt.addr, "%s", t->addr);
		rt.sec = target_section(x->cf, t);
		if ((t->kind == T_PIPE || t->kind == T_USER) && !rt.sec) {
			if (k == i) {
				used[k] = 1;
				reply_code(&r, 451,
					   ESC_SYSTEM_INCORRECTLY_CONFIGURED);
				fmt_snprintf(r.text, sizeof r.text,
					 "no [pipe \"%s\"] in the configuration",
					 t->via);
				apply(x, k, &r, NULL, -1, -1);
				break;
			}
			continue;
		}
		struct route_result rr = {.code = 250, .t = &rt, .nt = 1};
		enum plan_verdict v = plan_add(&p, &rr, t->orig);
		if (v == PLAN_OK) {
			used[k] = 1;
			idx[n++] = k;
		} else if (v == PLAN_REFUSED && k == i) {
			/* a report to such a sender, or an envelope written
			 * before sessions refused it */
			used[k] = 1;
			plan_blank_reply(&r, t->addr);
			apply(x, k, &r, NULL, -1, -1);
			break;
		}
	}
	if (n) {
		struct msg msg = message_of(x);
		if (plan_deliver(&p, &msg, command_timeout(x->cf, m), &r) &&
		    key[0])
			remember_dead(key, &r);
		for (unsigned k = 0; k < n; k++)
			apply(x, idx[k], &r, NULL, -1, REPORT_DELIVERED);
	}
	plan_free(&p);
	free(idx);
	save(x);
}

/* Delivers j's recipients, and those a peer refused for its limit per
 * transaction in further transactions at once, as long as each takes
 * some (RFC 5321 4.5.3.1.8 and 4.5.3.1.10: the client sends the rest in
 * "chunks"); the ones left wait for the next attempt with 452 4.5.3. */
static void deliver_in_transactions(struct client_job *j)
{
	struct client_rcpt *all = j->r;
	unsigned n = j->n, m = n, took = 1;
	unsigned *at = xcalloc(n + 1, sizeof *at);
	struct client_rcpt *rest = xcalloc(n + 1, sizeof *rest);
	char remote[sizeof j->remote] = "";
	int remote_dsn = 0, remote_tls = -1;
	for (unsigned k = 0; k < n; k++)
		at[k] = k;
	while (m && took) {
		for (unsigned k = 0; k < m; k++)
			rest[k] = all[at[k]];
		j->r = rest;
		j->n = m;
		client_deliver(j);
		unsigned left = 0;
		took = 0;
		for (unsigned k = 0; k < m; k++) {
			struct reply *r = &all[at[k]].r;
			*r = rest[k].r;
			took += r->code >= 200 && r->code < 300;
			if (reply_too_many_recipients(r))
				at[left++] = at[k];
		}
		if (j->remote[0]) { /* who took the message, for reports */
			fmt_snprintf(remote, sizeof remote, "%s", j->remote);
			remote_dsn = j->remote_dsn;
			remote_tls = j->remote_tls;
		}
		m = left;
	}
	if (!j->remote[0] && remote[0]) {
		fmt_snprintf(j->remote, sizeof j->remote, "%s", remote);
		j->remote_dsn = remote_dsn;
		j->remote_tls = remote_tls;
	}
	j->r = all;
	j->n = n;
	free(rest);
	free(at);
}

static void net_run(struct run *x, unsigned i, int all, unsigned char *used)
{
	struct spool_msg *m = x->m;
	const struct spool_target *t0 = &m->t[i];
	char key[300], k2[300];
	client_dest_key(t0->kind, t0->via, t0->arg, t0->addr, key, sizeof key);
	unsigned *idx = xcalloc(m->nt, sizeof *idx);
	struct client_rcpt *rc = xcalloc(m->nt, sizeof *rc);
	unsigned n = 0, nr = 0;
	for (unsigned k = i; k < m->nt; k++) {
		const struct spool_target *t = &m->t[k];
		if (used[k] || !due(x, k, all) || is_local(t->kind))
			continue;
		client_dest_key(t->kind, t->via, t->arg, t->addr, k2, sizeof k2);
		if (strcmp(key, k2))
			continue;
		used[k] = 1;
		idx[n++] = k;
	}
	const struct reply *down = dead_reply(key);
	if (down) {
		for (unsigned k = 0; k < n; k++)
			apply(x, idx[k], down, NULL, -1, -1);
		goto out;
	}
	/* one RCPT per distinct address, in any case (joe, JOE: routing
	 * takes them as one), spelt as first given; the DSN parameters are
	 * each RCPT's own (RFC 3461), so only equal ones merge */
	unsigned *slot = xcalloc(n, sizeof *slot);
	for (unsigned k = 0; k < n; k++) {
		const struct spool_target *t = &m->t[idx[k]];
		unsigned s = 0;
		while (s < nr && !(addr_part_eq(rc[s].addr, t->addr) &&
				   rc[s].notify == t->notify &&
				   !rc[s].orcpt == !t->orcpt &&
				   (!t->orcpt || !strcmp(rc[s].orcpt, t->orcpt))))
			s++;
		if (s == nr)
			rc[nr++] = (struct client_rcpt){
				.addr = m->t[idx[k]].addr,
				.notify = m->t[idx[k]].notify,
				.orcpt = m->t[idx[k]].orcpt};
		slot[k] = s;
	}
	struct msg msg = message_of(x);
	const char *at = strrchr(t0->addr, '@'); /* spool.c checked it */
	struct client_job j = {
		.cf = x->cf,
		.kind = t0->kind,
		.relay = t0->kind == T_RELAY ? target_section(x->cf, t0) : NULL,
		.arg = t0->kind == T_MX ? (at ? at + 1 : "") : t0->arg,
		.m = &msg,
		.eightbit = m->eightbit,
		.smtputf8 = m->smtputf8,
		.dsn_ret = m->dsn_ret,
		.envid = m->envid,
		.r = rc,
		.n = nr,
	};
	if (t0->kind == T_RELAY && !j.relay) {
		struct reply r;
		reply_code(&r, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED);
		fmt_snprintf(r.text, sizeof r.text,
			 "no [relay \"%s\"] in the configuration", t0->via);
		for (unsigned k = 0; k < nr; k++)
			rc[k].r = r;
	} else {
		deliver_in_transactions(&j);
	}
	/* nobody answered: do not try this destination again in this flush */
	if (!j.remote[0] && nr && rc[0].r.code >= 400 && rc[0].r.code < 500)
		remember_dead(key, &rc[0].r);
	/* a peer with DSN got NOTIFY and reports for itself, LMTP or not
	 * (RFC 3461 5.2.2); otherwise LMTP delivered, SMTP relayed */
	int lmtp = j.relay && j.relay->v[RELAY_PROTOCOL].n == RELAY_LMTP;
	int success = j.remote_dsn ? -1
		      : lmtp	   ? REPORT_DELIVERED
				   : REPORT_RELAYED;
	for (unsigned k = 0; k < n; k++)
		apply(x, idx[k], &rc[slot[k]].r, j.remote, j.remote_tls,
		      success);
	free(slot);
out:
	free(idx);
	free(rc);
	save(x);
}

/* RFC 3461 4.1: a recipient whose NOTIFY leaves out FAILURE (NEVER, or
 * only SUCCESS or DELAY) fails without a report. */
static int failure_reported(const struct spool_target *t)
{
	return !t->notify || (t->notify & DSN_FAILURE);
}

/* Writes one report of kind about m's targets idx[0..n) into the spool,
 * as bounce_create() does (0: written, to be delivered at the end of the
 * run; 1: none due; -1). */
static int write_report(struct run *x, struct spool_msg *m,
			const unsigned *idx, unsigned n, enum report_kind kind)
{
	if (x->nreports == MAX_REPORTS) {
		errno = EOVERFLOW; /* one of each kind: never reached */
		return -1;
	}
	struct spool_msg *b = &x->reports[x->nreports];
	int r = bounce_create(x->cf, x->dirfd, m, idx, n, kind, b);
	if (r == 0)
		x->nreports++;
	if (r == 0 && kind == REPORT_FAILED)
		log_event(LOG_L_INFO, "id", m->id, "event", "bounce",
			  "bounce-id", b->id, NULL);
	else if (r == 0)
		log_event(LOG_L_INFO, "id", m->id, "event", "report", "action",
			  bounce_action_name(kind), "report-id", b->id, NULL);
	return r;
}

static void write_bounces(struct run *x)
{
	struct spool_msg *m = x->m;
	unsigned *idx = xcalloc(m->nt, sizeof *idx);
	unsigned n = 0, unreported = 0;
	for (unsigned i = 0; i < m->nt; i++) {
		if (!x->fail_now[i])
			continue;
		struct spool_target *t = &m->t[i];
		if (failure_reported(t)) {
			idx[n++] = i;
			continue;
		}
		char to[ADDR_PATH_MAX + 4], words[32];
		fmt_snprintf(to, sizeof to, "<%s>", t->addr);
		log_event(LOG_L_INFO, "id", m->id, "to", to, "event", "bounce",
			  "status", "not-sent", "dsn-notify",
			  dsn_notify_text(t->notify, words), NULL);
		t->state = SP_FAILED;
		x->fail_now[i] = 0;
		unreported++;
	}
	if (unreported && !n)
		save(x);
	if (!n) {
		free(idx);
		return;
	}
	int r = write_report(x, m, idx, n, REPORT_FAILED);
	if (r < 0) {
		/* the targets stay pending: the next flush tries again */
		log_event(LOG_L_ERR, "id", m->id, "event", "bounce-error",
			  "reason", strerror(errno), NULL);
		for (unsigned i = 0; i < n; i++) {
			x->fail_now[idx[i]] = 0;
			m->t[idx[i]].next = x->now + backoff(x->cf, 1);
		}
		free(idx);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		m->t[idx[i]].state = SP_FAILED;
		x->fail_now[idx[i]] = 0;
	}
	free(idx);
	save(x);
}

/* After write_report() returned r: one that could not be written is
 * logged. */
static void report_written(const struct spool_msg *m, int r)
{
	if (r < 0)
		log_event(LOG_L_ERR, "id", m->id, "event", "report-error",
			  "reason", strerror(errno), NULL);
}

/* NOTIFY=SUCCESS: one report per kind of the deliveries that owe one,
 * this run's and those of a run that died before it wrote them. A report
 * that cannot be written is logged and not tried again: the deliveries
 * themselves are done. */
static void write_success_reports(struct run *x)
{
	static const enum sp_owed owed[] = {[REPORT_DELIVERED] =
						    SP_OWED_DELIVERED,
					    [REPORT_RELAYED] = SP_OWED_RELAYED};
	struct spool_msg *m = x->m;
	unsigned *idx = xcalloc(m->nt + 1, sizeof *idx);
	unsigned written = 0;
	for (int kind = REPORT_DELIVERED; kind <= REPORT_RELAYED; kind++) {
		unsigned n = 0;
		for (unsigned i = 0; i < m->nt; i++)
			if (m->t[i].owed == owed[kind])
				idx[n++] = i;
		if (!n)
			continue;
		report_written(m, write_report(x, m, idx, n,
					       (enum report_kind)kind));
		for (unsigned i = 0; i < n; i++)
			m->t[idx[i]].owed = SP_OWED_NONE;
		written += n;
	}
	free(idx);
	/* the reports are synced in the spool: no longer owed */
	if (written)
		save(x);
}

/* The end of the run of targets from i that share its recipient: the
 * session spools a recipient's targets together (handoff.c). */
static unsigned same_recipient_end(const struct spool_msg *m, unsigned i)
{
	unsigned j = i + 1;
	while (j < m->nt && !strcmp(m->t[j].orig, m->t[i].orig))
		j++;
	return j;
}

/* Whether targets i..end-1 are an expansion, not one recipient given
 * twice (two RCPTs of one address spool the same target twice). */
static int expanded(const struct spool_msg *m, unsigned i, unsigned end)
{
	for (unsigned j = i + 1; j < end; j++)
		if (m->t[j].kind != m->t[i].kind ||
		    strcmp(m->t[j].addr, m->t[i].addr) ||
		    strcmp(m->t[j].arg, m->t[i].arg))
			return 1;
	return 0;
}

/* NOTIFY=SUCCESS for a recipient that became several targets (an alias):
 * one report of Action "expanded" for it, once, and SUCCESS is not asked
 * of its targets (RFC 3461 6.2.7.3; Postfix's local(8) reports "alias
 * expanded" alike). */
static void report_expansions(struct run *x)
{
	static char said[] = "alias expanded", none[] = "";
	struct spool_msg *m = x->m;
	struct spool_target *tt = xcalloc(m->nt + 1, sizeof *tt);
	unsigned *idx = xcalloc(m->nt + 1, sizeof *idx);
	unsigned n = 0;
	for (unsigned i = 0, end; i < m->nt; i = end) {
		end = same_recipient_end(m, i);
		if (!(m->t[i].notify & DSN_SUCCESS) || !expanded(m, i, end))
			continue;
		/* the report's line for the recipient itself */
		tt[n] = m->t[i];
		tt[n].addr = tt[n].orig;
		tt[n].code = 250;
		fmt_snprintf(tt[n].dsn, sizeof tt[n].dsn, "2.0.0");
		tt[n].text = said;
		tt[n].remote = none;
		idx[n] = n;
		n++;
		for (unsigned j = i; j < end; j++) {
			struct spool_target *t = &m->t[j];
			t->notify &= ~(unsigned)DSN_SUCCESS;
			if (!(t->notify & (DSN_FAILURE | DSN_DELAY)))
				t->notify = DSN_NEVER;
		}
	}
	if (n) {
		/* remembered before the report is written: never a second */
		save(x);
		struct spool_msg c = *m;
		c.t = tt;
		c.nt = n;
		report_written(m, write_report(x, &c, idx, n, REPORT_EXPANDED));
	}
	free(idx);
	free(tt);
}

/* NOTIFY=DELAY: once core.delay-warning-time has passed, one report for
 * the message of its recipients still waiting after a temporary failure;
 * never again for it. */
static void write_delay_report(struct run *x)
{
	struct spool_msg *m = x->m;
	int64_t after = (int64_t)x->cf->core->v[CORE_DELAY_WARNING_TIME].n;
	if (!after || m->delay_reported || x->now - m->arrival < after)
		return;
	unsigned *idx = xcalloc(m->nt + 1, sizeof *idx);
	unsigned n = 0;
	for (unsigned i = 0; i < m->nt; i++) {
		const struct spool_target *t = &m->t[i];
		if (t->state == SP_PENDING && (t->notify & DSN_DELAY) &&
		    t->code >= 400)
			idx[n++] = i;
	}
	int r = n ? write_report(x, m, idx, n, REPORT_DELAYED) : 1;
	free(idx);
	if (r >= 0 && n) {
		/* remembered before it is delivered: never a second one */
		m->delay_reported = 1;
		save(x);
	}
	report_written(m, r);
}

static void flush_run(const struct cf *cf, int dirfd, struct spool_msg *m,
		      int all, const struct reply *known, const char *remote,
		      int tls);

void flush_message(const struct cf *cf, int dirfd, struct spool_msg *m,
		   int all)
{
	flush_run(cf, dirfd, m, all, NULL, NULL, -1);
}

void flush_message_known(const struct cf *cf, int dirfd, struct spool_msg *m,
			 const struct reply *known, const char *remote,
			 int tls)
{
	flush_run(cf, dirfd, m, FLUSH_ALL, known, remote, tls);
}

static void flush_run(const struct cf *cf, int dirfd, struct spool_msg *m,
		      int all, const struct reply *known, const char *remote,
		      int tls)
{
	if (m->quarantine) { /* held until --release */
		spool_msg_free(m);
		return;
	}
	/* a delivery the envelope cannot record is made again by every run
	 * after it: none while the spool has no room for that record */
	if (!spool_has_room(dirfd, 0)) {
		log_event(LOG_L_ERR, "id", m->id, "event", "spool-full", "reason",
			  "no room to record a delivery: not delivering now",
			  NULL);
		spool_msg_free(m);
		return;
	}
	struct run x = {.cf = cf,
			.dirfd = dirfd,
			.m = m,
			.fail_now = xcalloc(m->nt + 1, 1),
			.now = time(NULL)};
	/* a clock that stepped back leaves times ahead of now: the message
	 * is no younger than now, and an attempt set further off than the
	 * longest back-off is due (or a lifetime and a back-off would
	 * stretch by the step) */
	if (m->arrival > x.now)
		m->arrival = x.now;
	time_t latest = x.now + (time_t)cf->core->v[CORE_MAXIMAL_BACKOFF].n;
	for (unsigned i = 0; i < m->nt; i++)
		if (m->t[i].next > latest)
			m->t[i].next = x.now;
	report_expansions(&x);
	unsigned char *used = xcalloc(m->nt + 1, 1);
	for (unsigned i = 0; i < m->nt; i++) {
		if (used[i] || !due(&x, i, all))
			continue;
		if (known && known[i].code) {
			used[i] = 1;
			apply(&x, i, &known[i], remote, tls, REPORT_DELIVERED);
			save(&x);
		} else if (m->t[i].kind == T_DISCARD) {
			struct reply r;
			reply_set(&r, 250, ESC_OTHER, "discarded");
			used[i] = 1;
			/* delivered, as Postfix's discard(8) reports it */
			apply(&x, i, &r, NULL, -1, REPORT_DELIVERED);
			save(&x);
		} else if (is_local(m->t[i].kind)) {
			local_run(&x, i, all, used);
		} else {
			net_run(&x, i, all, used);
		}
	}
	write_bounces(&x);
	write_success_reports(&x);
	write_delay_report(&x);
	/* The reports are in the spool (synced) before the message's own
	 * state is recorded, and delivered only after: a crash before the
	 * record repeats the run's outcome (the window of an envelope
	 * update), one while a report goes out (to a slow next hop, for
	 * minutes) leaves the report to the next run and nothing else. A
	 * success report a target owed since an earlier save is made from
	 * the envelope (report-owed), by this run or the next. */
	int pending = 0;
	for (unsigned i = 0; i < m->nt; i++)
		pending += m->t[i].state == SP_PENDING;
	if (!pending && spool_remove(dirfd, m) < 0) {
		int e = errno;
		/* this run's outcome in ID.env: the next run only removes
		 * it, rather than bouncing or delivering again */
		spool_update(dirfd, m);
		log_event(LOG_L_WARNING, "id", m->id, "event", "not-removed",
			  "reason", strerror(e), NULL);
	} else if (!pending) {
		log_event(LOG_L_INFO, "id", m->id, "event", "removed", NULL);
	}
	free(x.fail_now);
	free(used);
	spool_msg_free(m);
	for (unsigned k = 0; k < x.nreports; k++)
		flush_message(cf, dirfd, &x.reports[k], FLUSH_ALL);
}

/* ------------------------------------------------------------------ */
/* --flush, --queue, --delete                                          */

/* Whether the caller is neither root nor core.user-id: the spool, and
 * the pid file and log that go with it, are not its to open. */
static int outsider(const struct cf *cf)
{
	uid_t uid;
	gid_t gid;
	char why[256];
	return geteuid() != 0 &&
	       cf_user_ids(cf, &uid, &gid, why, sizeof why) == 0 &&
	       uid != geteuid();
}

#define SPOOL_OWNER "the spool and what is in it must belong to core.user-id"

/* Says why the spool (or its pid file or log) could not be opened, with
 * errno err; the exit status. Denied to an outsider, the spool is
 * private (EX_NOPERM); denied to root or user-id, hint says whose the
 * file must be: that, as anything else, is for later. */
static int cannot_open(const struct cf *cf, const char *why, int err,
		       const char *hint)
{
	int denied = err == EACCES || err == EPERM;
	if (denied && outsider(cf)) {
		fprintf(stderr, "postmaster: %s: the spool is private: only "
				"root and core.user-id may list it or act on "
				"it\n",
			why);
		return EX_NOPERM;
	}
	fprintf(stderr, "postmaster: %s%s%s%s\n", why, denied ? " (" : "",
		denied ? hint : "", denied ? ")" : "");
	return EX_TEMPFAIL;
}

/* Opens the spool as the unprivileged user; -1 after saying why, with
 * the exit status in *ex (cannot_open()). */
static int open_spool(const struct cf *cf, int *ex)
{
	char why[512];
	*ex = EX_TEMPFAIL;
	if (priv_drop(cf, why, sizeof why) < 0) {
		fprintf(stderr, "postmaster: %s\n", why);
		return -1;
	}
	int fd = spool_open(cf->core->v[CORE_SPOOL_DIRECTORY].s, why,
			    sizeof why);
	if (fd < 0)
		*ex = cannot_open(cf, why, errno, SPOOL_OWNER);
	return fd;
}

/* Holds core.pid-file as a lock for the life of the process: its fd;
 * -2 when another run holds it (said here: it is no error), or -1 with
 * a reason and errno. */
static int lock_pid_file(const struct cf *cf, char *why, size_t n)
{
	const char *path = cf->core->v[CORE_PID_FILE].s;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fmt_snprintf(why, n, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char other[32] = "";
		ssize_t r = pread(fd, other, sizeof other - 1, 0);
		if (r > 0)
			other[strcspn(other, "\n")] = 0;
		fprintf(stderr, "postmaster: another --flush (pid %s) holds "
				"%s\n",
			r > 0 ? other : "?", path);
		close(fd);
		return -2;
	}
	char pid[32];
	int len = fmt_snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		int e = errno;
		fmt_snprintf(why, n, "pid file %s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The log; EX_OK, or the exit status after saying why. */
static int open_log(const struct cf *cf, const char *what)
{
	char why[512];
	errno = 0; /* not every failure has one */
	if (log_open(cf, cf->core->v[CORE_LOGGER].s, what, why, sizeof why) < 0)
		return cannot_open(cf, why, errno, "the log must be writable by "
						   "core.user-id");
	return EX_OK;
}

int flush_main(const struct cf *cf, int mode, const char *id)
{
	/* one message needs only its own lock, which a queue run honours:
	 * it runs beside one rather than be dropped */
	char pid_why[512];
	int pidfd = id ? -1 : lock_pid_file(cf, pid_why, sizeof pid_why);
	if (pidfd == -2)
		return EX_OK; /* the timer came round while the last run goes on */
	if (!id && pidfd < 0)
		return cannot_open(cf, pid_why, errno,
				   "a queue run is root's: core.pid-file "
				   "is written before the drop to core.user-id");
	int ex = open_log(cf, "flush");
	if (ex != EX_OK) {
		if (pidfd >= 0)
			close(pidfd);
		return ex;
	}
	int dirfd = open_spool(cf, &ex);
	if (dirfd < 0)
		return ex;
	ex = EX_OK;
	unsigned n = 0;
	char **ids = NULL;
	if (id) {
		ids = xcalloc(1, sizeof *ids);
		ids[0] = xstrdup(id);
		n = 1;
	} else {
		ids = spool_list(dirfd, &n);
		if (spool_list_failed()) { /* never taken for an empty spool */
			log_event(LOG_L_ERR, "event", "spool-error", "reason",
				  strerror(errno), NULL);
			ex = EX_TEMPFAIL;
		}
	}
	client_keep_connections(1);
	for (unsigned i = 0; i < n; i++) {
		struct spool_msg m;
		char why[512];
		int r = spool_load(dirfd, ids[i], 1, &m, why, sizeof why);
		if (r == SPOOL_BUSY && id) {
			fprintf(stderr, "postmaster: %s is being delivered by "
					"another process\n",
				id);
			ex = EX_TEMPFAIL;
			continue;
		}
		if (r == SPOOL_BUSY || (r == SPOOL_GONE && !id))
			continue; /* being delivered, or done meanwhile */
		if (r == SPOOL_TEMP) { /* sound, and tried again later */
			log_event(LOG_L_WARNING, "id", ids[i], "event",
				  "unreadable-now", "reason", why, NULL);
			ex = EX_TEMPFAIL;
			continue;
		}
		if (r != SPOOL_OK && !id) {
			/* kept for the admin (--queue shows it, --delete
			 * removes it); it must not fail every later run */
			log_event(LOG_L_WARNING, "id", ids[i], "event", "damaged",
				  "reason", why, NULL);
			continue;
		}
		if (r != SPOOL_OK) {
			fprintf(stderr, "postmaster: %s\n", why);
			ex = EX_UNAVAILABLE;
			continue;
		}
		if (id && m.quarantine) { /* not silently: it was asked for */
			fprintf(stderr, "postmaster: %s is held (%s): "
					"--release=%s delivers it\n",
				id, m.quarantine, id);
			spool_msg_free(&m);
			ex = EX_UNAVAILABLE;
			continue;
		}
		flush_message(cf, dirfd, &m, id || mode == FLUSH_ALL);
	}
	client_close_connections();
	spool_list_free(ids, n);
	close(dirfd);
	log_close();
	if (pidfd >= 0)
		close(pidfd);
	return ex;
}

static void age_text(time_t secs, char *out, size_t n)
{
	if (secs < 120)
		fmt_snprintf(out, n, "%llds", (long long)secs);
	else if (secs < 7200)
		fmt_snprintf(out, n, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		fmt_snprintf(out, n, "%lldh", (long long)secs / 3600);
	else
		fmt_snprintf(out, n, "%lldd", (long long)secs / 86400);
}

/* --queue's layout: a line per message, then each target with its
 * state, attempts, next attempt and last reply. */
static void show_own(const struct spool_msg *m, time_t now)
{
	char age[32];
	age_text(now - m->arrival, age, sizeof age);
	printf("%s  %8lld  %5s  <%s>%s\n", m->id, (long long)m->size, age,
	       m->from,
	       m->origin == SP_BOUNCE	     ? "  (bounce)"
	       : m->origin == SP_DOUBLE_BOUNCE ? "  (double bounce)"
					      : "");
	if (m->quarantine)
		printf("    held: quarantined by a milter: %s (--release=%s "
		       "delivers it)\n",
		       m->quarantine, m->id);
	for (unsigned k = 0; k < m->nt; k++) {
		const struct spool_target *t = &m->t[k];
		char next[32] = "";
		if (t->state == SP_PENDING && t->next > now)
			age_text(t->next - now, next, sizeof next);
		char words[32];
		printf("    %-9s <%s> %s%s%s attempts=%u%s%s%s%s\n",
		       spool_state_name(t->state), t->addr,
		       route_target_kind_name(t->kind),
		       t->via[0] || t->arg[0] ? " " : "",
		       t->via[0] ? t->via : t->arg, t->attempts,
		       next[0] ? " next-in=" : "", next,
		       t->notify ? " notify=" : "",
		       dsn_notify_text(t->notify, words));
		if (t->code)
			printf("              %d %s %s\n", t->code, t->dsn,
			       t->text);
	}
}

/* Why a pending target waits, as mailq says it: the last reply, with the
 * host that gave it; "" before the first attempt. A peer's text already
 * starts "HOST said: " (client.c): that prefix moves in front of the
 * code, once, as Postfix shows it. */
static void waiting_reason(const struct spool_target *t, char *out, size_t n)
{
	out[0] = 0;
	if (!t->code)
		return;
	size_t k = strlen(t->remote);
	const char *text = t->text;
	if (k && !strncmp(text, t->remote, k) && !strncmp(text + k, " said: ", 7))
		text += k + 7;
	if (k)
		fmt_snprintf(out, n, "host %s said: %d %s %s", t->remote, t->code,
			 t->dsn, text);
	else
		fmt_snprintf(out, n, "%d %s %s", t->code, t->dsn, text);
}

/* mailq's layout, the one of Postfix: id, size, arrival time and sender,
 * then the recipients still to be delivered, each run of them that
 * waits for the same reason under that reason in parentheses; a blank
 * line after each message. */
static void show_postfix(const struct spool_msg *m)
{
	char when[32];
	time_t arrival = (time_t)m->arrival;
	struct tm tm;
	if (!localtime_r(&arrival, &tm) ||
	    !strftime(when, sizeof when, "%a %b %e %H:%M:%S", &tm))
		fmt_snprintf(when, sizeof when, "%lld", (long long)m->arrival);
	/* Postfix marks a message on hold with '!' */
	char id[40];
	fmt_snprintf(id, sizeof id, "%s%s", m->id, m->quarantine ? "!" : "");
	printf("%-11s %8lld %-20.20s %s\n", id, (long long)m->size, when,
	       m->from[0] ? m->from : "MAILER-DAEMON");
	if (m->quarantine)
		printf("(quarantined: %s)\n", m->quarantine);
	char last[1024] = "", why[1024];
	for (unsigned k = 0; k < m->nt; k++) {
		const struct spool_target *t = &m->t[k];
		if (t->state != SP_PENDING)
			continue;
		waiting_reason(t, why, sizeof why);
		if (why[0] && strcmp(why, last))
			printf("(%s)\n", why);
		memcpy(last, why, sizeof last);
		printf("%41s%s\n", "", t->addr);
	}
	printf("\n");
}

/* A message whose envelope cannot be read: shown, so that it can be
 * looked at and removed with --delete, never left unseen. */
static void show_damaged(const char *id, const char *why, int layout)
{
	if (layout == QUEUE_MAILQ)
		printf("%-11s (damaged: %s; --delete=%s removes it)\n\n", id, why,
		       id);
	else
		printf("%s  damaged: %s (--delete=%s removes it)\n", id, why, id);
}

int queue_main(const struct cf *cf, int layout)
{
	int ex;
	int dirfd = open_spool(cf, &ex);
	if (dirfd < 0)
		return ex;
	unsigned n = 0, shown = 0;
	char **ids = spool_list(dirfd, &n);
	if (spool_list_failed()) { /* not an empty spool */
		fprintf(stderr, "postmaster: cannot read the spool: %s\n",
			strerror(errno));
		close(dirfd);
		return EX_TEMPFAIL;
	}
	ex = EX_OK;
	time_t now = time(NULL);
	unsigned long long bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		struct spool_msg m;
		char why[512];
		int r = spool_load(dirfd, ids[i], 0, &m, why, sizeof why);
		if (r == SPOOL_GONE)
			continue; /* delivered meanwhile */
		if (layout == QUEUE_MAILQ && !shown)
			printf("%-11s %8s %-20s %s\n", "-Queue ID-", "--Size--",
			       "----Arrival Time----",
			       "-Sender/Recipient-------");
		shown++;
		if (r == SPOOL_TEMP) { /* sound: this process is short */
			printf("%s  cannot be read now: %s\n", ids[i], why);
			ex = EX_TEMPFAIL;
			continue;
		}
		if (r != SPOOL_OK) {
			show_damaged(ids[i], why, layout);
			continue;
		}
		if (layout == QUEUE_MAILQ)
			show_postfix(&m);
		else
			show_own(&m, now);
		bytes += (unsigned long long)m.size;
		spool_msg_free(&m);
	}
	if (layout == QUEUE_MAILQ && shown)
		printf("-- %llu Kbytes in %u Request%s.\n", (bytes + 1023) / 1024,
		       shown, shown == 1 ? "" : "s");
	else if (layout == QUEUE_MAILQ)
		printf("Mail queue is empty\n");
	else if (!n)
		printf("the spool is empty\n");
	spool_list_free(ids, n);
	close(dirfd);
	return ex;
}

/* --release and --delete: the log, the spool and message id, locked,
 * its envelope read unless only its removal is wanted. EX_OK, or the
 * exit status after saying why (nothing left open). */
static int open_message(const struct cf *cf, const char *what,
			const char *id, int *dirfd, struct spool_msg *m)
{
	int removal = !strcmp(what, "delete");
	int ex = open_log(cf, what);
	if (ex != EX_OK)
		return ex;
	*dirfd = open_spool(cf, &ex);
	if (*dirfd < 0)
		return ex;
	char why[512];
	/* as postsuper -d: a damaged envelope does not keep it in the spool */
	int r = removal ? spool_lock(*dirfd, id, m, why, sizeof why)
			: spool_load(*dirfd, id, 1, m, why, sizeof why);
	if (r == SPOOL_OK)
		return EX_OK;
	fprintf(stderr, "postmaster: %s\n", why);
	close(*dirfd);
	log_close();
	return r == SPOOL_BUSY || r == SPOOL_TEMP ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

int release_main(const struct cf *cf, const char *id)
{
	int dirfd;
	struct spool_msg m;
	int ex = open_message(cf, "release", id, &dirfd, &m);
	if (ex != EX_OK)
		return ex;
	if (!m.quarantine) {
		fprintf(stderr, "postmaster: %s is not held\n", m.id);
		ex = EX_UNAVAILABLE;
	} else {
		free(m.quarantine);
		m.quarantine = NULL;
		if (spool_update(dirfd, &m) < 0) {
			fprintf(stderr, "postmaster: %s: %s\n", m.id,
				strerror(errno));
			ex = EX_TEMPFAIL;
		} else {
			log_event(LOG_L_INFO, "id", m.id, "event", "released",
				  NULL);
			printf("%s: released\n", m.id);
		}
	}
	spool_msg_free(&m);
	close(dirfd);
	log_close();
	return ex;
}

int delete_main(const struct cf *cf, const char *id)
{
	int dirfd;
	struct spool_msg m;
	int ex = open_message(cf, "delete", id, &dirfd, &m);
	if (ex != EX_OK)
		return ex;
	if (spool_remove(dirfd, &m) < 0) {
		fprintf(stderr, "postmaster: %s: %s\n", m.id, strerror(errno));
		spool_msg_free(&m);
		close(dirfd);
		log_close();
		return EX_TEMPFAIL;
	}
	log_event(LOG_L_INFO, "id", m.id, "event", "deleted", NULL);
	printf("%s: deleted\n", m.id);
	spool_msg_free(&m);
	close(dirfd);
	log_close();
	return EX_OK;
}
