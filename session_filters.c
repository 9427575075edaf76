/*
 * session_filters.c - the filters of SPEC 8 that a session applies
 * itself: greet-pause (early talkers), DNS block and allow lists, and
 * the policy service; the hooks session.c, session_start.c and
 * handoff.c call.
 *
 * Owns: struct session_filters (allocated only for a section that names
 * a DNS list or a policy service: a plain session pays nothing, SPEC
 * 11), the moment each filter runs (queries when the connection opens,
 * the pause before the 220, the lists' verdict at the first RCPT, the
 * policy at each RCPT and at the end of the data), the request's
 * attributes with Postfix's names, and the header fields a policy
 * prepends.
 *
 * Never: reads a client byte but during the pause, or delays the
 * greeting for the DNS answers.
 */
#include "fmt.h"
#include "io.h"
#include "session_state.h"
#include "dnsbl.h"
#include "log.h"
#include "net.h"
#include "policy.h"
#include "route.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PREPEND_MAX 8192 /* header fields policy answers may add */

struct session_filters {
	int lists;           /* DNS lists were asked */
	int decided;         /* their verdict is known */
	int allowlisted;     /* a dnswl zone lists the client */
	const struct dnsbl_zone *blocked;
	struct dnsbl dnsbl;
	int policy;          /* a policy service is configured */
	int policy_dunno;    /* policy-default-action = dunno */
	int policy_eom;      /* policy-end-of-data = yes */
	unsigned instance;   /* transactions asked about */
	struct policy_client pc;
	struct buf prepend;  /* "Name: value\n" lines */
};

/* ------------------------------------------------------------------ */
/* The start                                                           */

/* The DNS queries leave now; their answers are read later. */
static void start_lists(struct session *s, struct session_filters *f)
{
	const struct cf_list *bl = &s->smtpd->v[SMTPD_DNSBL].list;
	const struct cf_list *wl = &s->smtpd->v[SMTPD_DNSWL].list;
	char why[256];
	if (!bl->n && !wl->n)
		return;
	f->lists = 1;
	if (dnsbl_start(&f->dnsbl, s->cf->core->v[CORE_DNS_SERVER].s, s->peer,
			bl->v, bl->n, wl->v, wl->n, why, sizeof why) < 0) {
		log_event(LOG_L_WARNING, "event", "dnsbl-error", "reason", why,
			  NULL);
		f->decided = 1; /* no answer will come: the client passes */
	}
}

void session_filters_start(struct session *s)
{
	const struct cf_section *l = s->smtpd;
	if (!l || (!l->v[SMTPD_DNSBL].list.n && !l->v[SMTPD_DNSWL].list.n &&
		   !l->v[SMTPD_POLICY_SERVICE].s))
		return;
	struct session_filters *f = xcalloc(1, sizeof *f);
	f->dnsbl.fd = -1;
	s->filters = f;
	/* a local pipe or socket is never looked up, nor a relay client:
	 * Postfix's permit_mynetworks comes before reject_rbl_client */
	if (!s->peer_is_pipe && !envelope_relay_allowed(s))
		start_lists(s, f);
	if (l->v[SMTPD_POLICY_SERVICE].s &&
	    !net_stream_address_parse(l->v[SMTPD_POLICY_SERVICE].s, &f->pc.ss,
				      &f->pc.len)) {
		f->policy = 1;
		f->pc.timeout_ms = (int)l->v[SMTPD_POLICY_TIMEOUT].n * 1000;
		f->policy_dunno = l->v[SMTPD_POLICY_DEFAULT_ACTION].n ==
				  POLICY_DEFAULT_DUNNO;
		f->policy_eom = (int)l->v[SMTPD_POLICY_END_OF_DATA].n;
	}
}

void session_filters_end(struct session *s)
{
	struct session_filters *f = s->filters;
	if (!f)
		return;
	dnsbl_end(&f->dnsbl);
	policy_close(&f->pc);
	buf_free(&f->prepend);
	free(f);
	s->filters = NULL;
}

/* ------------------------------------------------------------------ */
/* greet-pause                                                         */

/* Whether a dnswl answer already lets the client skip the pause. */
static int allowlisted_now(struct session *s)
{
	struct session_filters *f = s->filters;
	if (!f || !f->lists || f->dnsbl.fd < 0)
		return 0;
	dnsbl_receive(&f->dnsbl);
	return dnsbl_listed(&f->dnsbl, 1) != NULL;
}

/* The client talked first: what it sent is logged (escaped, a few
 * bytes), it gets 554 5.5.0 and the session ends. */
static int early_talker(struct session *s)
{
	char b[513];
	ssize_t n;
	do
		n = recv(s->io.rfd, b, sizeof b - 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ENOTSOCK)
		n = read(s->io.rfd, b, sizeof b - 1);
	if (n <= 0) {
		log_event(LOG_L_INFO, "event", "lost", "during", "greet-pause",
			  NULL);
		return -1;
	}
	char count[24];
	fmt_snprintf(count, sizeof count, "%zd", n);
	/* log_event escapes it; a NUL ends what is shown */
	b[n > 64 ? 64 : n] = 0;
	log_event(LOG_L_WARNING, "event", "pregreet", "bytes", count, "data", b,
		  NULL);
	reply(s, 554, ESC_OTHER_PROTOCOL_STATUS,
	      "%s Protocol error: talking before the greeting", s->name);
	return -1;
}

int session_greet_pause(struct session *s)
{
	long long pause = s->smtpd ? (long long)s->smtpd->v[SMTPD_GREET_PAUSE].n
				   : 0;
	/* implicit TLS: the client speaks first, by design */
	if (!pause || s->tls_mode == STLS_IMPLICIT || allowlisted_now(s))
		return 0;
	struct session_filters *f = s->filters;
	long long end = io_now_ms() + pause * 1000;
	for (;;) {
		long long left = end - io_now_ms();
		if (left <= 0)
			return 0;
		int dns = f && f->dnsbl.fd >= 0 && dnsbl_pending(&f->dnsbl);
		long long due = dns ? dnsbl_resend_due(&f->dnsbl) : -1;
		struct pollfd p[2] = {{s->io.rfd, POLLIN, 0},
				      {dns ? f->dnsbl.fd : -1, POLLIN, 0}};
		int r = poll(p, 2, (int)(due >= 0 && due < left ? due : left));
		if (r < 0 && errno != EINTR)
			return 0;
		if (r > 0 && p[0].revents)
			return early_talker(s);
		if (r > 0 && p[1].revents && allowlisted_now(s))
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/* The DNS lists at RCPT                                               */

/* The answers, once: waited for no longer than dnsbl.h's bound. */
static void lists_decide(struct session_filters *f)
{
	if (f->decided)
		return;
	f->decided = 1;
	int late = dnsbl_wait(&f->dnsbl);
	for (unsigned i = 0; i < f->dnsbl.n; i++) {
		const struct dnsbl_zone *z = &f->dnsbl.z[i];
		if (z->state == DNSBL_PENDING && late)
			log_event(LOG_L_WARNING, "event", "dnsbl-timeout",
				  "zone", z->zone, NULL);
		else if (z->state == DNSBL_FAILED)
			log_event(LOG_L_WARNING, "event", "dnsbl-error",
				  "zone", z->zone, "reason", z->why, NULL);
	}
	const struct dnsbl_zone *w = dnsbl_listed(&f->dnsbl, 1);
	f->allowlisted = w != NULL;
	f->blocked = w ? NULL : dnsbl_listed(&f->dnsbl, 0);
	const struct dnsbl_zone *z = w ? w : f->blocked;
	if (z) {
		char code[16];
		fmt_snprintf(code, sizeof code, "%u.%u.%u.%u", z->code[0],
			 z->code[1], z->code[2], z->code[3]);
		log_event(LOG_L_INFO, "event", w ? "dnswl" : "dnsbl", "zone",
			  z->zone, "answer", code, NULL);
	}
}

/* postmaster@ and abuse@ of a local domain (or without one) stay
 * reachable from a listed client, so it can ask to be removed. */
static int always_reachable(struct session *s, const struct addr *a)
{
	if (strcasecmp(a->local, "postmaster") && strcasecmp(a->local, "abuse"))
		return 0;
	return !a->domain[0] || route_domain_is_local(&route_env_system, s->cf,
						      s->smtpd, a->domain);
}

/* ------------------------------------------------------------------ */
/* The policy service                                                  */

static const char *protocol_name(const struct session *s)
{
	return s->proto == P_LHLO ? "LMTP" : s->proto == P_EHLO ? "ESMTP"
								 : "SMTP";
}

/* The request, with the attributes of Postfix's SMTPD_POLICY_README. */
static void policy_request(struct session *s, const char *state,
			   const char *rcpt, struct buf *q)
{
	struct session_filters *f = s->filters;
	char num[32], inst[48], tls[128] = "";
	policy_attr(q, "request", "smtpd_access_policy");
	policy_attr(q, "protocol_state", state);
	policy_attr(q, "protocol_name", protocol_name(s));
	policy_attr(q, "helo_name", s->helo);
	policy_attr(q, "queue_id", s->sid);
	policy_attr(q, "sender", s->from);
	policy_attr(q, "recipient", rcpt);
	fmt_snprintf(num, sizeof num, "%u", rcpt && *state == 'R' ? 0 : s->nrcpt);
	policy_attr(q, "recipient_count", num);
	policy_attr(q, "client_address", s->peer_is_pipe ? "" : s->peer);
	fmt_snprintf(num, sizeof num, "%d", s->peer_port);
	policy_attr(q, "client_port", s->peer_is_pipe ? "" : num);
	policy_attr(q, "client_name", s->peer_is_pipe ? "localhost" : "unknown");
	policy_attr(q, "reverse_client_name",
		    s->peer_is_pipe ? "localhost" : "unknown");
	policy_attr(q, "server_address", s->peer_is_pipe ? "" : s->local);
	fmt_snprintf(num, sizeof num, "%d", s->local_port);
	policy_attr(q, "server_port", s->peer_is_pipe ? "" : num);
	fmt_snprintf(inst, sizeof inst, "%s.%u", s->sid, f->instance);
	policy_attr(q, "instance", inst);
	policy_attr(q, "sasl_method", "");
	policy_attr(q, "sasl_username", s->auth_user);
	policy_attr(q, "sasl_sender", "");
	fmt_snprintf(num, sizeof num, "%llu",
		 (unsigned long long)(*state == 'E' ? s->header_size +
							      s->data.size
						     : s->declared_size));
	policy_attr(q, "size", num);
	policy_attr(q, "ccert_subject", "");
	policy_attr(q, "ccert_issuer", "");
	policy_attr(q, "ccert_fingerprint", "");
	policy_attr(q, "ccert_pubkey_fingerprint", "");
	if (s->tls_on)
		tls_describe(&s->io, tls, sizeof tls);
	char *sp = strchr(tls, ' ');
	if (sp)
		*sp++ = 0;
	policy_attr(q, "encryption_protocol", tls);
	policy_attr(q, "encryption_cipher", sp ? sp : "");
	policy_attr(q, "encryption_keysize", "");
	policy_attr(q, "etrn_domain", "");
	policy_attr(q, "stress", "");
	policy_attr(q, "smtpd_name", s->smtpd->name);
}

/* The service unreachable or broken: policy-default-action decides. */
static int policy_failed(struct session_filters *f, const char *why,
			 struct reply *r)
{
	log_event(LOG_L_WARNING, "event", "policy-error", "reason", why,
		  "action", f->policy_dunno ? "dunno" : "defer", NULL);
	if (f->policy_dunno)
		return 0;
	reply_set(r, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
		  "Server configuration problem: policy service unavailable");
	return 1;
}

/* Keeps a PREPEND header field for the message, within PREPEND_MAX. */
static void keep_prepend(struct session_filters *f, const char *h)
{
	if (f->prepend.len + strlen(h) + 1 > PREPEND_MAX) {
		log_event(LOG_L_WARNING, "event", "policy", "reason",
			  "too many PREPEND header fields: dropped", NULL);
		return;
	}
	buf_printf(&f->prepend, "%s\n", h);
}

/* Asks the service about one stage: 0 to go on, 1 with a refusal in r
 * (the prefix names what was refused). */
static int policy_check(struct session *s, const char *state,
			const char *rcpt, const char *prefix, struct reply *r)
{
	struct session_filters *f = s->filters;
	struct buf q = {0};
	char action[POLICY_LINE_MAX + 1], why[256];
	policy_request(s, state, rcpt, &q);
	int rc = policy_ask(&f->pc, &q, action, sizeof action, why, sizeof why);
	buf_free(&q);
	if (rc < 0)
		return policy_failed(f, why, r);
	struct policy_verdict v;
	policy_action(action, &v);
	/* log_event escapes the action; OK and DUNNO are not worth a line */
	if (v.kind != POLICY_DUNNO)
		log_event(v.kind == POLICY_UNKNOWN ? LOG_L_WARNING : LOG_L_INFO,
			  "event",
			  v.kind == POLICY_UNKNOWN ? "policy-unknown-action"
						   : "policy",
			  "state", state, "action", action, NULL);
	switch (v.kind) {
	case POLICY_REFUSE:
		*r = v.r;
		fmt_snprintf(r->text, sizeof r->text, "%s%s", prefix, v.text);
		return 1;
	case POLICY_PREPEND:
		if (*state == 'R')
			keep_prepend(f, v.text);
		return 0;
	case POLICY_UNKNOWN:
		reply_set(r, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
			  "Server configuration error");
		return 1;
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* The hooks                                                           */

void session_filters_rcpt(struct session *s, const struct addr *a,
			  const char *addr, struct route_result *rr)
{
	struct session_filters *f = s->filters;
	if (!f || rr->code != 250)
		return;
	char prefix[ADDR_PATH_MAX + 48];
	struct reply r;
	int refused = 0;
	/* an authenticated client is not held to the lists (Postfix's
	 * permit_sasl_authenticated first): roaming users send from the
	 * dynamic addresses they list */
	if (f->lists && !s->auth_user[0] && !always_reachable(s, a)) {
		lists_decide(f);
		if (f->blocked) {
			reply_set(&r, 554, ESC_DELIVERY_NOT_AUTHORIZED,
				  "Service unavailable; client [%s] blocked "
				  "using %s",
				  s->peer, f->blocked->zone);
			refused = 1;
		}
	}
	if (!refused && f->policy) {
		fmt_snprintf(prefix, sizeof prefix,
			 "<%s>: Recipient address rejected: ", addr);
		refused = policy_check(s, "RCPT", addr, prefix, &r);
	}
	if (!refused)
		return;
	rr->code = r.code;
	fmt_snprintf(rr->dsn, sizeof rr->dsn, "%s", r.dsn);
	fmt_snprintf(rr->text, sizeof rr->text, "%s", r.text);
}

int session_filters_eom(struct session *s, struct reply *r)
{
	struct session_filters *f = s->filters;
	if (!f || !f->policy || !f->policy_eom)
		return 0;
	return policy_check(s, "END-OF-MESSAGE",
			    s->nrcpt == 1 ? s->rcpts[0].addr : "",
			    "End-of-data rejected: ", r);
}

void session_filters_headers(struct session *s, struct buf *h,
			     const char *eol)
{
	struct session_filters *f = s->filters;
	if (!f || !f->prepend.len)
		return;
	for (const char *p = f->prepend.s; *p;) {
		size_t n = strcspn(p, "\n");
		buf_printf(h, "%.*s%s", (int)n, p, eol);
		p += n + 1;
	}
}

void session_filters_reset(struct session *s)
{
	if (!s->filters)
		return;
	s->filters->prepend.len = 0;
	s->filters->instance++; /* the policy's "instance": per message */
}
