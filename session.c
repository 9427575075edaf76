/*
 * session.c - one SMTP or LMTP session as a state machine (SPEC 4, 5, 7).
 *
 * Owns: choosing the [smtpd] that serves the connection, dropping root
 * privileges (priv.c) before the first client byte, the verb table and
 * the one state writer, the one reply function, and the limits of SPEC 5
 * that the dialogue enforces: line length, recipients, errors, time per
 * command. DATA and BDAT are session_data.c's; the message bytes go
 * through data.c (streamed to a file, never held in memory); handoff.c
 * decides what becomes of them.
 *
 * Never: acknowledges what was not delivered, lets client bytes reach a
 * reply or log line unescaped, or advertises what this build cannot do.
 */
#include "session.h"
#include "fmt.h"
#include "session_state.h"
#include "handoff.h"
#include "proxy.h"
#include "addr.h"
#include "data.h"
#include "deliver.h"
#include "reply.h"
#include "dns.h"
#include "io.h"
#include "log.h"
#include "milter.h"
#include "route.h"
#include "spf.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_ERRORS 10
/* Recipients past max-recipients in one transaction that are not errors
 * (RFC 5321 4.5.3.1.10); each one after them is (Postfix's
 * smtpd_recipient_overshoot_limit), so the error limit ends the session. */
#define RCPT_OVERSHOOT 1000


/* ------------------------------------------------------------------ */
/* The transaction                                                     */

/* The one writer of the state: the verb table reads it. */
void session_set_state(struct session *s, enum state st)
{
	s->state = st;
}

void session_transaction_reset(struct session *s)
{
	proxy_end(s);
	io_data_pace(&s->io, 0);
	for (unsigned i = 0; i < s->nrcpt; i++)
		envelope_free_rcpt(&s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->rcpt_cap = 0;
	s->rcpt_overshoot = 0;
	plan_free(&s->plan);
	s->spooled = 0;
	handoff_abandon(s);
	s->received_spf.len = 0;
	s->from[0] = 0;
	s->body = BODY_7BIT;
	s->smtputf8 = 0;
	s->dsn_ret = DSN_RET_NONE;
	s->envid[0] = 0;
	s->declared_size = 0;
	s->envelope_changed = 0;
	s->bdat = BDAT_NONE;
	if (s->data.fd >= 0)
		close(s->data.fd);
	s->data.fd = -1;
	s->header_size = 0;
	session_filters_reset(s);
	data_store_reset(&s->data);
	milter_abort(s);
	if (s->state > ST_READY)
		session_set_state(s, ST_READY);
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

static int verb_is(const char *arg, const char *prefix)
{
	return !strncasecmp(arg, prefix, strlen(prefix));
}

static void do_helo(struct session *s, char *arg, enum proto p)
{
	const char *verb = p == P_HELO ? "HELO" : p == P_EHLO ? "EHLO" : "LHLO";
	while (*arg == ' ')
		arg++;
	if (!*arg) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: %s hostname", verb);
		return;
	}
	if (p == P_LHLO && !s->lmtp_ok) {
		reply(s, 502, ESC_INVALID_COMMAND,
		      "LMTP is not accepted on this port");
		return;
	}
	char *sp = strchr(arg, ' ');
	if (sp)
		*sp = 0;
	session_transaction_reset(s);
	fmt_snprintf(s->helo, sizeof s->helo, "%s", esc(arg, strlen(arg)));
	struct reply mr;
	if (milter_helo(s, &mr) != MILTER_CONTINUE) {
		reply_dsn(s, mr.code, mr.dsn, "%s", mr.text);
		return;
	}
	s->proto = p;
	session_set_state(s, ST_READY);
	if (p == P_HELO) {
		reply(s, 250, ESC_NONE, "%s", s->name);
		return;
	}
	struct buf b = {0};
	buf_printf(&b, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nBINARYMIME\n"
		       "CHUNKING\nENHANCEDSTATUSCODES\nSMTPUTF8\nDSN",
		   s->name, (unsigned long long)s->max_size);
	if (s->tls_mode == STLS_STARTTLS && !s->tls_on)
		buf_adds(&b, "\nSTARTTLS");
	if (session_auth_offered(s))
		buf_adds(&b, "\nAUTH PLAIN LOGIN");
	if (s->lmtp_ok)
		buf_adds(&b, "\nX-LMTP");
	reply(s, 250, ESC_NONE, "%s", b.s);
	buf_free(&b);
}

static void cmd_ehlo(struct session *s, char *arg) { do_helo(s, arg, P_EHLO); }
static void cmd_helo(struct session *s, char *arg) { do_helo(s, arg, P_HELO); }
static void cmd_lhlo(struct session *s, char *arg) { do_helo(s, arg, P_LHLO); }

/* verify-sender (SPEC 8, RFC 2505 2.9): the sender's domain must be able
 * to receive a bounce: an MX, or an address record. Replies itself and
 * returns 0 when it cannot. */
static int sender_domain_ok(struct session *s, const char *domain)
{
	const char *server = s->cf->core->v[CORE_DNS_SERVER].s;
	char alabel[256], why[300];
	if (dns_alabel(domain, alabel, sizeof alabel, why, sizeof why) < 0) {
		reply(s, 550, ESC_BAD_SENDER_SYSTEM,
		      "Sender address rejected: %s", esc(why, strlen(why)));
		return 0;
	}
	struct dns_mx mx[4];
	int n = 0;
	enum dns_status st = dns_mx(server, alabel, mx, 4, &n, 0);
	if (st == DNS_NODATA) {
		struct sockaddr_storage a[2];
		st = dns_addrs(server, alabel, 25, a, 2, &n, 0);
	}
	if (st == DNS_OK)
		return 1;
	if (st == DNS_TEMP) {
		reply(s, 451, ESC_ROUTING_SERVER_FAILURE,
		      "Sender address rejected: cannot look up domain %s now",
		      esc(domain, strlen(domain)));
	} else if (st == DNS_NULLMX) {
		/* RFC 7505 4.2: it could never receive the bounce */
		reply(s, 550, ESC_SENDER_NULL_MX,
		      "Sender address rejected: domain %s "
		      "accepts no mail (null MX)",
		      esc(domain, strlen(domain)));
	} else {
		reply(s, 550, ESC_BAD_SENDER_SYSTEM,
		      "Sender address rejected: domain %s not found",
		      esc(domain, strlen(domain)));
	}
	return 0;
}

/* SPF (SPEC 8, RFC 7208) for the sender just given: with spf = reject,
 * fail, temperror and permerror refuse it (RFC 7372 codes); either way
 * the result becomes the transaction's Received-SPF field. */
static int spf_allows(struct session *s)
{
	char why[256] = "";
	struct buf h = {0};
	enum spf_result r = spf_check(s->peer, s->helo, s->from, s->name, &h,
				      why, sizeof why);
	char f[ADDR_PATH_MAX + 4];
	log_event(r == SPFR_FAIL ? LOG_L_WARNING : LOG_L_INFO, "event", "spf",
		  "from", angle(s->from, f, sizeof f), "result",
		  spf_result_name(r), "reason", why[0] ? why : NULL, NULL);
	if (s->spf_mode == SPF_REJECT &&
	    (r == SPFR_FAIL || r == SPFR_TEMPERROR || r == SPFR_PERMERROR)) {
		if (r == SPFR_FAIL)
			reply(s, 550, ESC_SPF_VALIDATION_FAILED,
			      "SPF validation failed for <%s>",
			      esc(s->from, strlen(s->from)));
		else if (r == SPFR_TEMPERROR)
			reply(s, 451, ESC_SPF_VALIDATION_ERROR,
			      "SPF validation error (temporary)");
		else
			reply(s, 550, ESC_SPF_VALIDATION_ERROR,
			      "SPF validation error");
		buf_free(&h);
		s->from[0] = 0;
		return 0;
	}
	s->received_spf.len = 0;
	buf_add(&s->received_spf, h.s ? h.s : "", h.len);
	buf_free(&h);
	return 1;
}

/* A MAIL or RCPT parameter this server does not take, named by its
 * keyword alone, whatever value it has. */
static void unsupported_parameter(struct session *s, const char *param)
{
	reply(s, 555, ESC_INVALID_COMMAND_ARGUMENTS, "Unsupported parameter %s",
	      esc(param, strcspn(param, "= ")));
}

static void mail_from(struct session *s, char *arg, const char *given)
{
	if (s->auth_mode == AUTH_REQUIRED && !s->auth_user[0]) {
		reply(s, 530, ESC_OTHER_SECURITY_STATUS,
		      "Authentication required");
		return;
	}
	if (!verb_is(arg, " FROM:")) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: MAIL FROM:<address>");
		return;
	}
	char *p = arg + 6;
	while (*p == ' ')
		p++;
	char *end = envelope_path_end(p);
	if (!end || (*end && *end != ' ')) {
		reply(s, 501, ESC_BAD_SENDER_MAILBOX_SYNTAX,
		      "Bad sender address syntax");
		return;
	}
	size_t plen = (size_t)(end - p);
	const char *margs = given ? given + (end - arg) : "";
	struct mail_params mp;
	struct reply r;
	const char *bad = NULL;
	if (envelope_mail_params(end, s->proto == P_HELO, session_auth_offered(s), &mp,
				 &r, &bad) < 0) {
		if (bad)
			unsupported_parameter(s, bad);
		else
			reply_dsn(s, r.code, r.dsn, "%s", r.text);
		return;
	}
	struct addr a;
	const char *why;
	size_t where;
	enum addr_status st =
		addr_parse(p, plen,
			   ADDR_NULL_OK | ADDR_BRACKETS | ADDR_NODASH |
				   (mp.smtputf8 ? ADDR_UTF8 : 0),
			   &a, &why, &where);
	if (st == ADDR_ENONASCII) {
		reply(s, 553, ESC_NON_ASCII_ADDRESS,
		      "Non-ASCII sender address needs SMTPUTF8");
		return;
	}
	if (st != ADDR_OK) {
		reply(s, 501, ESC_BAD_SENDER_MAILBOX_SYNTAX,
		      "Bad sender address syntax: %s", why);
		return;
	}
	if (mp.size > s->max_size) {
		reply(s, 552, ESC_MESSAGE_TOO_BIG_FOR_SYSTEM,
		      "Message size exceeds fixed maximum message size");
		return;
	}
	if (!session_local_sender_ok(s, &a, &r)) {
		reply_dsn(s, r.code, r.dsn, "%s", r.text);
		return;
	}
	if (s->verify_sender && !a.null && a.has_at && !a.literal &&
	    !sender_domain_ok(s, a.domain))
		return;
	session_transaction_reset(s);
	addr_format(&a, s->from, sizeof s->from);
	/* an authenticated client or a relay client sends for its users
	 * from wherever they are: Postfix's permit_mynetworks and
	 * permit_sasl_authenticated come before an SPF policy */
	if (s->spf_mode != SPF_OFF && !s->peer_is_pipe &&
	    !envelope_relay_allowed(s) && !spf_allows(s))
		return;
	if (milter_mail(s, margs, &r) != MILTER_CONTINUE) {
		reply_dsn(s, r.code, r.dsn, "%s", r.text);
		s->from[0] = 0;
		return;
	}
	s->body = mp.body;
	s->declared_size = mp.size;
	s->smtputf8 = mp.smtputf8;
	s->dsn_ret = mp.ret;
	memcpy(s->envid, mp.envid, sizeof s->envid);
	session_set_state(s, ST_MAIL);
	reply(s, 250, ESC_OTHER_ADDRESS_STATUS, "Sender <%s> OK",
	      esc(s->from, strlen(s->from)));
}

/* The milters see the parameters as the client gave them, which parsing
 * cuts up: a copy for them only, not 4 KiB on every session's stack. */
static void cmd_mail(struct session *s, char *arg)
{
	char *given = s->milters ? xstrdup(arg) : NULL;
	mail_from(s, arg, given);
	free(given);
}

/* Whether the live proxy took rc: then its reply is due from the
 * target. A refusal of the proxy's becomes rc's route result. */
static int rcpt_proxied(struct session *s, struct rcpt *rc)
{
	struct reply pr;
	enum proxy_rcpt how = proxy_rcpt(s, rc, &pr);
	if (how == PROXY_SENT) {
		session_set_state(s, ST_RCPT);
		route_result_free(&rc->r);
		return 1;
	}
	if (how == PROXY_ANSWERED) {
		rc->r.code = pr.code;
		fmt_snprintf(rc->r.dsn, sizeof rc->r.dsn, "%s", pr.dsn);
		fmt_snprintf(rc->r.text, sizeof rc->r.text, "%s", pr.text);
	}
	return 0;
}

/* The milters' say on a recipient that routing accepted: 1 when they
 * refused it (replied, logged, rc's results freed). The milters' text
 * is theirs: lines, no control characters (milter.c). */
static int rcpt_milters(struct session *s, struct rcpt *rc, const char *args)
{
	struct reply r;
	if (rc->r.code != 250 ||
	    milter_rcpt(s, rc->addr, args, &r) == MILTER_CONTINUE)
		return 0;
	struct buf rep = {0};
	buf_printf(&rep, "%d %s %s", r.code, r.dsn, r.text);
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4];
	log_event(LOG_L_INFO, "from", angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "status", "rejected", "dsn",
		  r.dsn, "reply", rep.s, NULL);
	buf_free(&rep);
	reply_dsn(s, r.code, r.dsn, "%s", r.text);
	route_result_free(&rc->r);
	plan_free(&rc->plan);
	return 1;
}

/* Whether the direct path can take an accepted recipient (deliver.c
 * decides): else it, or the transaction, goes through the spool. */
static void plan_recipient(struct session *s, struct rcpt *rc)
{
	/* NOTIFY=SUCCESS: the flusher reports the delivery, so it goes
	 * through the spool */
	if ((rc->dsn.notify & DSN_SUCCESS) ||
	    plan_add(s->proto == P_LHLO ? &rc->plan : &s->plan, &rc->r,
		     rc->addr) != PLAN_OK) {
		if (s->proto == P_LHLO)
			rc->spooled = 1;
		else
			s->spooled = 1;
	}
}

/* A recipient refused by routing, the filters or the proxy: logged and
 * answered with its result's text, escaped; rc's results freed. */
static void refuse_recipient(struct session *s, struct rcpt *rc)
{
	struct buf rep = {0}, tt = {0};
	buf_printf(&rep, "%d %s %s", rc->r.code, rc->r.dsn, rc->r.text);
	/* the targets routing gave, when a filter or the proxy's target
	 * refused them */
	for (uint32_t i = 0; i < rc->r.nt; i++) {
		const struct route_target *x = &rc->r.t[i];
		if (i)
			buf_adds(&tt, ", ");
		route_target_text(&tt, x->kind,
				  x->sec && x->sec->name ? x->sec->name : "",
				  x->arg, x->addr);
	}
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4];
	log_event(LOG_L_INFO, "from", angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "target", tt.s, "status",
		  "rejected", "dsn", rc->r.dsn, "reply", rep.s, NULL);
	buf_free(&tt);
	buf_free(&rep);
	reply_dsn(s, rc->r.code, rc->r.dsn, "%s",
		  esc(rc->r.text, strlen(rc->r.text)));
	route_result_free(&rc->r);
	plan_free(&rc->plan);
}

static void rcpt_to(struct session *s, char *arg, const char *given)
{
	if (!verb_is(arg, " TO:")) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: RCPT TO:<address>");
		return;
	}
	char *p = arg + 4;
	while (*p == ' ')
		p++;
	char *end = envelope_path_end(p);
	if (!end || (*end && *end != ' ')) {
		reply(s, 501, ESC_BAD_DEST_MAILBOX_SYNTAX,
		      "Bad recipient address syntax");
		return;
	}
	struct rcpt_params rp;
	struct reply r;
	const char *bad = NULL;
	const char *rargs = given ? given + (end - arg) : "";
	if (envelope_rcpt_params(end, s->proto == P_HELO, &rp, &r, &bad) < 0) {
		if (bad)
			unsupported_parameter(s, bad);
		else
			reply_dsn(s, r.code, r.dsn, "%s", r.text);
		return;
	}
	if (s->nrcpt >= s->max_rcpt) {
		reply(s, 452, ESC_TOO_MANY_RECIPIENTS, "Too many recipients");
		if (++s->rcpt_overshoot > RCPT_OVERSHOOT)
			s->failed = 1;
		return;
	}
	struct addr a;
	const char *why;
	size_t where;
	enum addr_status st =
		addr_parse(p, (size_t)(end - p),
			   ADDR_BRACKETS | ADDR_NODOMAIN_OK | ADDR_NODASH |
				   (s->smtputf8 ? ADDR_UTF8 : 0),
			   &a, &why, &where);
	if (st == ADDR_ENONASCII) {
		reply(s, 553, ESC_NON_ASCII_ADDRESS,
		      "Non-ASCII recipient address needs SMTPUTF8");
		return;
	}
	if (st != ADDR_OK) {
		reply(s, 501, ESC_BAD_DEST_MAILBOX_SYNTAX,
		      "Bad recipient address syntax: %s", why);
		return;
	}
	struct rcpt rc;
	memset(&rc, 0, sizeof rc);
	rc.dsn = rp;
	addr_format(&a, rc.addr, sizeof rc.addr);
	route_resolve(s->cf, s->smtpd, p, (size_t)(end - p),
		      ROUTE_SMTP | (s->smtputf8 ? ROUTE_UTF8 : 0), &rc.r);
	if (rc.r.code == 250 && rc.r.relaying && !envelope_relay_allowed(s)) {
		rc.r.code = 554;
		esc_for_code(rc.r.dsn, rc.r.code, ESC_DELIVERY_NOT_AUTHORIZED);
		fmt_snprintf(rc.r.text, sizeof rc.r.text, "<%s>: relaying denied",
			 rc.addr);
	}
	plan_refuse_blanks(&rc.r, rc.addr);
	session_filters_rcpt(s, &a, rc.addr, &rc.r);
	if (rcpt_milters(s, &rc, rargs))
		return;
	if (rc.r.code == 250 && (s->proxy_ok || s->px) && rcpt_proxied(s, &rc))
		return;
	if (rc.r.code == 250)
		plan_recipient(s, &rc);
	if (rc.r.code != 250) {
		refuse_recipient(s, &rc);
		return;
	}
	envelope_keep_rcpt(s, &rc);
	session_set_state(s, ST_RCPT);
	reply(s, 250, ESC_DEST_MAILBOX_VALID, "Recipient <%s> OK",
	      esc(rc.addr, strlen(rc.addr)));
	route_result_free(&rc.r);
}

/* As cmd_mail(): the milters' copy of the parameters. */
static void cmd_rcpt(struct session *s, char *arg)
{
	char *given = s->milters ? xstrdup(arg) : NULL;
	rcpt_to(s, arg, given);
	free(given);
}

static void cmd_rset(struct session *s, char *arg)
{
	(void)arg; /* the verb table refuses an argument */
	session_transaction_reset(s);
	reply(s, 250, ESC_OTHER, "OK");
}

/* The listener's TLS, ready to start: NULL (logged) when it cannot be
 * had, before anything is promised to the client. */
static struct tls *prepare_tls(struct session *s)
{
	char why[300];
	struct tls_keypair pairs[CF_MAX_TLS_KEYPAIRS];
	for (size_t i = 0; i < s->tls_npairs; i++)
		pairs[i] = (struct tls_keypair){s->tls_cert[i].s, s->tls_key[i].s,
						s->tls_cert[i].len,
						s->tls_key[i].len};
	struct tls *t = tls_server_prepare(s->tls_priority, pairs,
					   s->tls_npairs, why, sizeof why);
	if (!t)
		log_event(LOG_L_ERR, "event", "tls-unavailable", "reason", why,
			  NULL);
	return t;
}

/* Starts TLS on the connection: tls = starttls (RFC 3207), or at once
 * before the greeting with tls = implicit (RFC 8314). 0 when it runs. */
static int start_tls(struct session *s, struct tls *t)
{
	char why[300], desc[96];
	if (tls_server_handshake(&s->io, t, why, sizeof why) < 0) {
		log_event(LOG_L_WARNING, "event", "tls-failed", "reason", why,
			  NULL);
		return -1;
	}
	s->tls_on = 1;
	tls_describe(&s->io, desc, sizeof desc);
	log_event(LOG_L_INFO, "event", "tls", "cipher", desc, NULL);
	return 0;
}

static void cmd_starttls(struct session *s, char *arg)
{
	if (*arg) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: STARTTLS");
		return;
	}
	if (s->tls_on) {
		reply(s, 503, ESC_INVALID_COMMAND, "TLS already active");
		return;
	}
	if (s->tls_mode != STLS_STARTTLS) {
		reply(s, 502, ESC_INVALID_COMMAND, "STARTTLS not offered");
		return;
	}
	/* RFC 3207 4: a certificate or key that GnuTLS refuses, or no
	 * GnuTLS, is a temporary reason; the session goes on in clear, as
	 * Postfix's does */
	struct tls *t = prepare_tls(s);
	if (!t) {
		reply(s, 454, ESC_OTHER_SECURITY_STATUS,
		      "TLS not available due to local problem");
		return;
	}
	reply(s, 220, ESC_OTHER, "Ready to start TLS");
	flush(s);
	/* RFC 3207 5.2: nothing sent in clear text after STARTTLS counts */
	io_discard_input(&s->io);
	if (start_tls(s, t) < 0) {
		s->quit = 1; /* the connection is in no state to go on */
		return;
	}
	/* RFC 3207 4.2: forget what the client said before TLS */
	session_transaction_reset(s);
	s->helo[0] = 0;
	s->auth_user[0] = 0;
	s->proto = P_NONE;
	session_set_state(s, ST_GREETED);
}

static void cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	reply(s, 250, ESC_OTHER, "OK");
}

static void cmd_quit(struct session *s, char *arg)
{
	(void)arg;
	reply(s, 221, ESC_OTHER, "%s closing connection", s->name);
	s->quit = 1;
}

static void cmd_vrfy(struct session *s, char *arg)
{
	(void)arg;
	reply(s, 252, ESC_OTHER_PROTOCOL_STATUS,
	      "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_unimpl(struct session *s, char *arg)
{
	(void)arg;
	reply(s, 502, ESC_INVALID_COMMAND, "Command not implemented");
}

/* The 503 texts of a verb in a state where it is not legal. */
static const char *seq_auth(const struct session *s)
{
	(void)s;
	return "AUTH not allowed during a mail transaction";
}

static const char *seq_starttls(const struct session *s)
{
	(void)s;
	return "STARTTLS not allowed during a mail transaction";
}

static const char *seq_mail(const struct session *s)
{
	return s->state == ST_GREETED ? "Send EHLO or HELO first"
				      : "Nested MAIL command";
}

static const char *seq_rcpt(const struct session *s)
{
	return s->state == ST_GREETED ? "Send EHLO or HELO first"
	       : s->state == ST_BDAT  ? "RCPT not allowed during BDAT"
				      : "Need MAIL before RCPT";
}

static const char *seq_data(const struct session *s)
{
	if (s->state == ST_GREETED || s->state == ST_READY)
		return "Need MAIL and RCPT first";
	return s->state == ST_BDAT && s->nrcpt ? "DATA not allowed after BDAT"
					       : "No valid recipients";
}

enum {
	F_FLUSH = 1, /* flush the replies: no pipelined command follows */
	F_NOARG = 2, /* takes no argument: 501 before the state is looked at */
	F_DATA = 4,  /* a refusal with input waiting is content before 354 */
	F_JUNK = 8,  /* carries no mail: counts towards junk-command-limit */
};
#define ALL ((1u << ST_GREETED) | (1u << ST_READY) | (1u << ST_MAIL) | \
	     (1u << ST_RCPT) | (1u << ST_BDAT))
#define NO_TRANSACTION ((1u << ST_GREETED) | (1u << ST_READY))

/* Sorted by name for bsearch. BDAT is legal everywhere: its octets follow
 * the command whatever the state, and session_cmd_bdat reads or discards
 * them. */
static const struct verb {
	const char *name;
	void (*fn)(struct session *, char *);
	unsigned states;
	unsigned flags;
	const char *(*sequence)(const struct session *); /* the 503 text */
} verbs[] = {
	{"AUTH", session_cmd_auth, NO_TRANSACTION, F_FLUSH, seq_auth},
	{"BDAT", session_cmd_bdat, ALL, 0, NULL},
	{"DATA", session_cmd_data, 1u << ST_RCPT, F_FLUSH | F_NOARG | F_DATA,
	 seq_data},
	{"EHLO", cmd_ehlo, ALL, F_FLUSH | F_JUNK, NULL},
	{"EXPN", cmd_unimpl, ALL, F_FLUSH | F_JUNK, NULL},
	{"HELO", cmd_helo, ALL, F_FLUSH | F_JUNK, NULL},
	{"HELP", cmd_unimpl, ALL, F_FLUSH | F_JUNK, NULL},
	{"LHLO", cmd_lhlo, ALL, F_FLUSH | F_JUNK, NULL},
	{"MAIL", cmd_mail, 1u << ST_READY, 0, seq_mail},
	{"NOOP", cmd_noop, ALL, F_FLUSH | F_JUNK, NULL},
	{"QUIT", cmd_quit, ALL, F_FLUSH, NULL},
	{"RCPT", cmd_rcpt, (1u << ST_MAIL) | (1u << ST_RCPT), 0, seq_rcpt},
	{"RSET", cmd_rset, ALL, F_NOARG | F_JUNK, NULL},
	{"SAML", cmd_unimpl, ALL, F_FLUSH, NULL},
	{"SEND", cmd_unimpl, ALL, F_FLUSH, NULL},
	{"SOML", cmd_unimpl, ALL, F_FLUSH, NULL},
	{"STARTTLS", cmd_starttls, NO_TRANSACTION, F_FLUSH, seq_starttls},
	{"TURN", cmd_unimpl, ALL, F_FLUSH, NULL},
	{"VRFY", cmd_vrfy, ALL, F_FLUSH | F_JUNK, NULL},
};

static int verb_cmp(const void *k, const void *v)
{
	return strcasecmp(k, ((const struct verb *)v)->name);
}

/* Whether the table lets v run now; if not, replies why. */
static int verb_allowed(struct session *s, const struct verb *v, char *arg)
{
	char why[64];
	int code;
	if ((v->flags & F_NOARG) && *arg) {
		code = 501;
		fmt_snprintf(why, sizeof why, "Syntax: %s", v->name);
	} else if (!(v->states & (1u << s->state))) {
		code = 503;
		fmt_snprintf(why, sizeof why, "%s",
			 v->sequence ? v->sequence(s)
				     : "Bad sequence of commands");
	} else {
		return 1;
	}
	enum esc e = code == 501 ? ESC_INVALID_COMMAND_ARGUMENTS
				 : ESC_INVALID_COMMAND;
	struct reply r;
	reply_set(&r, code, e, "%s", why);
	if (v->flags & F_DATA)
		session_refuse_data(s, &r);
	else
		reply_dsn(s, r.code, r.dsn, "%s", r.text);
	return 0;
}

/* Commands of other protocols: the client is not talking SMTP. */
static int foreign_command(const char *verb)
{
	static const char *const v[] = {"GET", "POST", "HEAD", "PUT",
					"CONNECT", "OPTIONS", "USER"};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		if (!strcasecmp(verb, v[i]))
			return 1;
	return 0;
}

static void command(struct session *s, char *line, size_t len)
{
	char verb[16];
	size_t vl = 0; /* strcspn(line, " "), without its page of libc */
	while (line[vl] && line[vl] != ' ')
		vl++;
	if (vl == 0 || vl >= sizeof verb) {
		reply(s, 500, ESC_SYNTAX_ERROR, "Command unrecognized");
		flush(s);
		return;
	}
	memcpy(verb, line, vl);
	verb[vl] = 0;
	struct reply r;
	if (!s->accept_mail && strcasecmp(verb, "QUIT")) {
		reply_set(&r, 521, ESC_SYSTEM_NOT_ACCEPTING,
			  "%s does not accept mail", s->name);
		session_refuse_line(s, line, &r);
		flush(s);
		return;
	}
	const struct verb *v = bsearch(verb, verbs, sizeof verbs / sizeof *verbs,
				       sizeof *verbs, verb_cmp);
	if (!v) {
		if (foreign_command(verb)) {
			reply(s, 221, ESC_OTHER_SECURITY_STATUS,
			      "This is an SMTP server, not a "
			      "web or proxy server; goodbye");
			s->quit = 1;
			return;
		}
		reply(s, 500, ESC_SYNTAX_ERROR, "Command unrecognized: %s",
		      esc(verb, vl));
		flush(s);
		return;
	}
	if (len > CMD_MAX && strcmp(v->name, "MAIL") && strcmp(v->name, "RCPT")) {
		reply_set(&r, 500, ESC_SYNTAX_ERROR, "Line too long");
		session_refuse_line(s, line, &r);
		flush(s);
		return;
	}
	/* the target's replies to earlier commands come before this one's:
	 * RCPT, DATA and BDAT read them when they need them */
	if (s->px_pending && v->fn != cmd_rcpt && v->fn != session_cmd_data &&
	    v->fn != session_cmd_bdat)
		proxy_sync(s);
	if (!verb_allowed(s, v, line + vl))
		return;
	v->fn(s, line + vl);
	s->junk += (v->flags & F_JUNK) != 0;
	if (v->flags & F_FLUSH)
		flush(s);
}

/*
 * One line from the client: what is not a command line is refused here,
 * the rest goes through the verb table. A failed command counts once,
 * here and nowhere else (Postfix's smtpd.c); delivered mail forgives.
 */
static void serve_line(struct session *s, char *line, size_t len,
		       int toolong, int bare)
{
	struct reply r;
	s->failed = 0;
	s->delivered = 0;
	if (toolong) {
		reply_set(&r, 500, ESC_SYNTAX_ERROR, "Line too long");
		session_refuse_line(s, line, &r);
	} else if (memchr(line, 0, len)) {
		reply_set(&r, 500, ESC_SYNTAX_ERROR, "NUL character in command");
		session_refuse_line(s, line, &r);
	} else if (s->bare_reject && (bare || memchr(line, '\r', len))) {
		reply_set(&r, 501, ESC_SYNTAX_ERROR, "Bare CR or LF in command");
		session_refuse_line(s, line, &r);
	} else {
		for (size_t i = 0; i < len; i++)
			if (line[i] == '\r')
				line[i] = ' ';
		/* RFC 5321 4.1.1: trailing white space is tolerated */
		while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = 0;
		command(s, line, len);
	}
	/* no message being received (a chunk refused before MAIL included):
	 * no pace, each command has the whole timeout */
	if (s->bdat == BDAT_NONE || s->state < ST_MAIL)
		io_data_pace(&s->io, 0);
	if (s->delivered) /* errors and junk count until mail is delivered */
		s->errors = s->junk = 0;
	s->errors += s->failed;
	if (s->errors >= MAX_ERRORS && !s->quit) {
		reply(s, 421, ESC_OTHER_SECURITY_STATUS,
		      "%s Too many errors, closing connection", s->name);
		s->quit = 1;
	} else if (s->max_junk && s->junk >= s->max_junk && !s->quit) {
		/* commands that carry no mail (NOOP, RSET, VRFY, HELO, ...)
		 * since the last delivered message: a client cannot hold the
		 * session forever one harmless command at a time (Postfix's
		 * smtpd_junk_command_limit) */
		reply(s, 421, ESC_OTHER_SECURITY_STATUS,
		      "%s Too many commands without mail, closing connection",
		      s->name);
		s->quit = 1;
	}
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */

/* sd_listen_fds(3) with Accept=yes hands the connection over as fd 3. */
static void take_listen_fd(int *rfd, int *wfd)
{
	const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
	if (lp && lf && (pid_t)atol(lp) == getpid() && atoi(lf) == 1) {
		*rfd = *wfd = 3;
		/* no program this session runs may read or write it */
		fcntl(3, F_SETFD, FD_CLOEXEC);
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
}

/* A session that cannot serve says so once and ends (EX_TEMPFAIL). */
static int refuse_service(struct session *s, int fail, const char *why)
{
	log_event(LOG_L_ERR, "event", "unavailable", "reason",
		  why[0] ? why : "configuration error", NULL);
	if (fail == START_NO_SMTPD)
		reply(s, 421, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
		      "%s Service not available: no "
		      "configuration for this address",
		      s->name);
	else
		reply(s, 421, ESC_OTHER_MAIL_SYSTEM_STATUS,
		      "%s Service not available, closing connection",
		      s->name);
	flush(s);
	io_free(&s->io);
	return EX_TEMPFAIL;
}

/* The greeting, after implicit TLS where the section asks for it.
 * -1 when TLS failed: no greeting can reach a client without it. */
static int greet(struct session *s, int tty)
{
	if (tty)
		fputs("postmaster: waiting for an SMTP client on standard input "
		      "(this terminal): type EHLO, MAIL FROM:<...>, RCPT "
		      "TO:<...>, DATA, QUIT\n",
		      stderr);
	if (s->tls_mode == STLS_IMPLICIT) {
		struct tls *t = prepare_tls(s);
		if (!t || start_tls(s, t) < 0)
			return -1;
	}
	if (s->accept_mail)
		reply(s, 220, ESC_NONE, "%s ESMTP postmaster", s->name);
	else
		reply(s, 521, ESC_NONE, "%s does not accept mail", s->name);
	flush(s);
	return 0;
}

/* Commands until QUIT, the end of input, or a limit; the exit status. */
static int dialogue(struct session *s)
{
	char line[CMD_MAX_EXT + 2];
	while (!s->quit) {
		/* qmail's rule: a pipelined group costs one write, when it
		 * came in one read (RFC 2920: replies go out when the input
		 * runs dry; asking the socket would cost a client that waits
		 * for each reply a poll() per command); the proxy's replies
		 * are read when the group has been read, also when the rest
		 * of it is still on its way or it ends inside a line, so
		 * that the target's replies overlap the client's sending */
		if ((s->io.out_len || s->px_pending) &&
		    !(s->px_pending ? io_line_pending(&s->io)
				    : io_line_buffered(&s->io))) {
			proxy_sync(s);
			flush(s);
		}
		if (s->io.wstatus != IO_OK)
			break; /* gone, or not reading what we said */
		size_t len;
		int bare;
		long long deadline = io_now_ms() + s->io.timeout_ms;
		/* between BDAT chunks the data's pace goes on: a client
		 * cannot trickle its message one small chunk at a time */
		int paced = s->io.min_rate && s->io.data_deadline < deadline;
		if (paced)
			deadline = s->io.data_deadline;
		enum io_status st = io_getline_until(&s->io, deadline, line,
						     CMD_MAX_EXT, &len, &bare);
		if (st == IO_TIMEOUT) {
			log_event(LOG_L_WARNING, "event", "timeout", "tls",
				  s->tls_on ? "yes" : "no", NULL);
			reply(s, 421, ESC_BAD_CONNECTION,
			      paced ? "%s Timeout during BDAT, closing"
				    : "%s Timeout exceeded, closing connection",
			      s->name);
			return EX_TEMPFAIL;
		}
		/* a line that the end of the input cut off (bare == 2) was
		 * never sent whole: dropped, as an EOF (RFC 5321 2.3.8) */
		if (st == IO_EOF || st == IO_ERROR || bare == 2)
			break;
		serve_line(s, line, len, st == IO_TOOLONG, bare);
	}
	return EX_OK;
}

/* Says goodbye on the connection, then does the bookkeeping. */
static int session_end(struct session *s, int exit_status)
{
	flush(s);
	if (s->io.wstatus == IO_TIMEOUT) {
		char secs[16];
		fmt_snprintf(secs, sizeof secs, "%d", s->io.timeout_ms / 1000);
		log_event(LOG_L_WARNING, "event", "timeout", "reason",
			  "client stopped reading replies", "seconds", secs,
			  NULL);
		exit_status = 75;
	}
	tls_end(&s->io);
	/* the client sees the end now, not after our bookkeeping */
	close(s->io.rfd);
	if (s->io.wfd != s->io.rfd)
		close(s->io.wfd);
	char in[24], out[24];
	fmt_snprintf(in, sizeof in, "%llu", s->io.bytes_in);
	fmt_snprintf(out, sizeof out, "%llu", s->io.bytes_out);
	log_event(LOG_L_INFO, "event", "disconnect", "in", in, "out", out, NULL);
	session_transaction_reset(s);
	session_filters_end(s);
	milter_quit(s);
	data_store_free(&s->data);
	buf_free(&s->received_spf);
	for (size_t i = 0; i < CF_MAX_TLS_KEYPAIRS; i++) {
		buf_free(&s->tls_cert[i]);
		buf_free(&s->tls_key[i]);
	}
	buf_free(&s->auth_table);
	io_free(&s->io);
	log_close();
	return exit_status;
}

int session_main(struct cf *cf, const char *smtpd_name, int cf_ok)
{
	/* static: zero pages cost nothing until touched (start-up is paid
	 * per connection) */
	static struct session s;
	s.cf = cf;
	s.data.fd = -1;
	int rfd = 0, wfd = 1;
	take_listen_fd(&rfd, &wfd);
	signal(SIGPIPE, SIG_IGN);
	io_init(&s.io, rfd, wfd, 300 * 1000);
	int tty = isatty(rfd);
	if (tty)
		log_echo_stderr(); /* a person waits for the reason */
	char why[512] = "";
	int fail = session_start(&s, smtpd_name, cf_ok, why, sizeof why);
	char port[16], uid[16];
	fmt_snprintf(port, sizeof port, "%d", s.peer_port);
	fmt_snprintf(uid, sizeof uid, "%u", (unsigned)s.cred.uid);
	log_event(LOG_L_INFO, "event", "connect", "client", s.peer, "port",
		  s.peer_is_pipe ? NULL : port, "smtpd",
		  s.smtpd ? s.smtpd->name : NULL, "uid",
		  s.cred.known ? uid : NULL, "user",
		  s.cred.known && s.cred.user[0] ? s.cred.user : NULL, NULL);
	if (fail)
		return refuse_service(&s, fail, why);
	session_filters_start(&s);
	milter_connect(&s);
	if (session_greet_pause(&s) < 0)
		return session_end(&s, EX_OK);
	if (greet(&s, tty) < 0) /* nothing can be said without TLS */
		return session_end(&s, EX_TEMPFAIL);
	return session_end(&s, dialogue(&s));
}
