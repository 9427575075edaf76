/*
 * milter.c - a session's milters, from the connection to QUIT (see
 * milter.h); the end of the message is milter_eom.c's.
 *
 * Owns: connecting and negotiating (SMFIC_OPTNEG), the macros of each
 * stage, the events of connect, HELO, MAIL, RCPT and DATA, ABORT and
 * QUIT, what a reply means, and default-action.
 *
 * Never: replies to the client or logs a refusal the session reports
 * (those at RCPT and at the end of the message, in the recipients'
 * result lines; the others are logged here);
 * waits on a milter without its timeout; allocates anything for a session
 * whose [smtpd] names no milter.
 */
#include "fmt.h"
#include "session_state.h"
#include "milter_impl.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The macros sent when a milter names none (Postfix's defaults). */
static const char *const default_macros[SMFIM_N] = {
	[SMFIM_CONNECT] = "j {daemon_name} {if_name} {if_addr} {client_addr} "
			  "{client_port} {client_name} v",
	[SMFIM_HELO] = "{tls_version} {cipher}",
	[SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {mail_addr}",
	[SMFIM_ENVRCPT] = "{rcpt_addr}",
	[SMFIM_DATA] = "i",
	[SMFIM_EOM] = "i",
	[SMFIM_EOH] = "",
};

/* The command each macro class goes with. */
static const char class_cmd[SMFIM_N] = {
	[SMFIM_CONNECT] = SMFIC_CONNECT, [SMFIM_HELO] = SMFIC_HELO,
	[SMFIM_ENVFROM] = SMFIC_MAIL,    [SMFIM_ENVRCPT] = SMFIC_RCPT,
	[SMFIM_DATA] = SMFIC_DATA,       [SMFIM_EOM] = SMFIC_BODYEOB,
	[SMFIM_EOH] = SMFIC_EOH,
};

/* The value of one macro, or NULL when this session does not know it. */
static const char *macro_value(const struct session *s, const char *name,
			       char *tmp, size_t n)
{
	const struct milters *ms = s->milters;
	if (!strcmp(name, "j") || !strcmp(name, "{if_name}"))
		return s->name;
	if (!strcmp(name, "v"))
		return "postmaster";
	if (!strcmp(name, "{daemon_name}"))
		return s->smtpd && s->smtpd->name ? s->smtpd->name : "postmaster";
	if (!strcmp(name, "{if_addr}"))
		return s->local[0] ? s->local : NULL;
	if (!strcmp(name, "{client_addr}"))
		return s->peer_is_pipe ? "127.0.0.1" : s->peer;
	if (!strcmp(name, "{client_port}")) {
		fmt_snprintf(tmp, n, "%d", s->peer_is_pipe ? 0 : s->peer_port);
		return tmp;
	}
	if (!strcmp(name, "{client_name}"))
		return s->peer_is_pipe ? "localhost" : "unknown";
	if (!strcmp(name, "i"))
		return s->sid;
	if (!strcmp(name, "{auth_type}"))
		return s->auth_user[0] ? s->auth_mech : NULL;
	if (!strcmp(name, "{auth_authen}"))
		return s->auth_user[0] ? s->auth_user : NULL;
	if (!strcmp(name, "{mail_addr}"))
		return s->from;
	if (!strcmp(name, "{rcpt_addr}"))
		return ms->rcpt;
	if (!strcmp(name, "{tls_version}") || !strcmp(name, "{cipher}")) {
		if (!s->tls_on)
			return NULL;
		tls_describe(&s->io, tmp, n);
		char *sp = strchr(tmp, ' ');
		if (!sp)
			return NULL;
		if (name[1] == 't') {
			*sp = 0;
			return tmp;
		}
		return sp + 1;
	}
	return NULL;
}

/* SMFIC_MACRO for class cls: the names m asked for that have a value. */
static int send_macros(struct session *s, struct mconn *m, int cls,
		       char *why, size_t n)
{
	const char *list = m->macros[cls] ? m->macros[cls] : default_macros[cls];
	struct buf b = {0};
	mp_begin(&b, SMFIC_MACRO);
	buf_addc(&b, class_cmd[cls]);
	size_t empty = b.len;
	char name[128], tmp[256];
	while (*list) {
		size_t k = strcspn(list, " ,");
		if (k && k < sizeof name) {
			memcpy(name, list, k);
			name[k] = 0;
			const char *v = macro_value(s, name, tmp, sizeof tmp);
			if (v) {
				mp_put_str(&b, name);
				mp_put_str(&b, v);
			}
		}
		list += k;
		list += strspn(list, " ,");
	}
	int r = b.len == empty ? 0 : mp_send(m->fd, &b, milter_timeout(m, 0),
					     why, n);
	buf_free(&b);
	return r;
}

int milter_timeout(const struct mconn *m, int stage)
{
	int key = stage == STAGE_EOM || stage == STAGE_CONTENT
			  ? MILTER_CONTENT_TIMEOUT
			  : MILTER_COMMAND_TIMEOUT;
	return (int)m->sec->v[key].n * 1000;
}

enum milter_verdict milter_failed(struct session *s, struct mconn *m,
				  const char *why, struct reply *r)
{
	if (why[0])
		log_event(LOG_L_WARNING, "event", "milter-failed", "milter",
			  m->name, "reason", why, NULL);
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	m->st = MC_FAILED;
	m->in_tx = 0;
	switch (m->sec->v[MILTER_DEFAULT_ACTION].n) {
	case MILTER_ACCEPT:
		return MILTER_CONTINUE;
	case MILTER_REJECT:
		reply_set(r, 550, ESC_DELIVERY_NOT_AUTHORIZED,
			  "Service unavailable");
		return MILTER_REFUSE;
	default:
		reply_set(r, 451, ESC_DELIVERY_NOT_AUTHORIZED,
			  "Service unavailable - try again later");
		return MILTER_REFUSE;
	}
}

/* One line of a milter's text, as the client will read it: ASCII, no
 * controls; Sendmail's doubled '%' (libmilter's replies are format
 * strings) made one, a lone '%' dropped, as Postfix does. */
static size_t reply_text(char *out, const char *p, size_t l)
{
	size_t n = 0;
	for (size_t i = 0; i < l; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '%' && (i + 1 == l || p[i + 1] != '%'))
			continue;
		i += c == '%';
		out[n++] = c < ' ' || c >= 0x7f ? '?' : (char)c;
	}
	return n;
}

/* SMFIR_REPLYCODE's "NNN x.y.z text": a 4xx or 5xx; lines after the
 * first ("NNN-x.y.z text\r\n") become the lines of one reply. An
 * enhanced code of another class than the reply's ("450 5.7.1") is
 * malformed, as Postfix has it. */
static int replycode(const char *p, struct reply *r)
{
	if (!(p[0] == '4' || p[0] == '5') || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-'))
		return -1;
	int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	r->code = code;
	r->dsn[0] = 0;
	r->text[0] = 0;
	size_t tl = 0;
	const char *first = p;
	while (*p) {
		/* every line has the first line's code, then '-' or ' ' */
		if (p != first &&
		    (strncmp(p, first, 3) || (p[3] != ' ' && p[3] != '-')))
			return -1;
		p += 4;
		int a, b, c, k = 0;
		if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &k) == 3 &&
		    (p[k] == ' ' || !p[k] || p[k] == '\r')) {
			if (a != code / 100)
				return -1;
			if (!r->dsn[0])
				fmt_snprintf(r->dsn, sizeof r->dsn, "%d.%d.%d", a, b,
					 c);
			p += k + (p[k] == ' ');
		}
		size_t l = strcspn(p, "\r\n");
		if (tl + l + 2 < sizeof r->text) {
			if (tl)
				r->text[tl++] = '\n';
			tl += reply_text(r->text + tl, p, l);
			r->text[tl] = 0;
		}
		p += l;
		if (*p == '\r' && p[1] == '\n')
			p += 2;
		else if (*p)
			return -1; /* a bare CR or LF: no line of a reply */
	}
	if (!r->dsn[0])
		esc_for_code(r->dsn, code, ESC_OTHER);
	if (!tl)
		fmt_snprintf(r->text, sizeof r->text, "Command rejected");
	return 0;
}

enum milter_verdict milter_verdict(struct session *s, struct mconn *m,
				   char cmd, int stage, struct reply *r)
{
	struct milters *ms = s->milters;
	const char *what = stage == STAGE_EOM || stage == STAGE_CONTENT
				   ? "Message content rejected"
				   : "Command rejected";
	switch (cmd) {
	case SMFIR_CONTINUE:
		return MILTER_CONTINUE;
	case SMFIR_ACCEPT:
		m->st = stage <= STAGE_HELO ? MC_SKIP_CONN : MC_SKIP_MSG;
		return MILTER_CONTINUE;
	case SMFIR_REJECT:
		reply_set(r, 550, ESC_DELIVERY_NOT_AUTHORIZED, "%s", what);
		break;
	case SMFIR_TEMPFAIL:
		reply_set(r, 451, ESC_DELIVERY_NOT_AUTHORIZED,
			  "Service unavailable - try again later");
		break;
	case SMFIR_REPLYCODE:
		if (replycode(ms->in.s, r) < 0)
			return milter_failed(s, m, "bad SMFIR_REPLYCODE", r);
		break;
	case SMFIR_DISCARD:
		if (stage <= STAGE_HELO)
			return milter_failed(s, m, "discard before MAIL", r);
		ms->discard = 1;
		m->st = MC_SKIP_MSG;
		return MILTER_CONTINUE;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		reply_set(r, 421, ESC_DELIVERY_NOT_AUTHORIZED,
			  "%s Service unavailable - closing connection",
			  s->name);
		/* at the connection the reply is only remembered: the
		 * session ends when HELO, EHLO or MAIL is given it */
		if (stage != STAGE_CONN)
			s->quit = 1;
		break;
	default: {
		char why[64];
		fmt_snprintf(why, sizeof why, "unexpected reply '%c' (0x%02x)",
			 cmd > ' ' && cmd < 127 ? cmd : '?',
			 (unsigned char)cmd);
		return milter_failed(s, m, why, r);
	}
	}
	/* a refused RCPT leaves the transaction to the other recipients */
	if (stage != STAGE_RCPT && stage > STAGE_HELO)
		m->st = MC_SKIP_MSG;
	return MILTER_REFUSE;
}

enum milter_verdict milter_event(struct session *s, struct mconn *m, int cls,
				 int expect_reply, int stage, struct reply *r)
{
	struct milters *ms = s->milters;
	char why[160];
	/* anything it sent before this command would be read as its answer
	 * to it, and every answer after as one step late */
	if (mp_unasked(m->fd, why, sizeof why) ||
	    (cls >= 0 && send_macros(s, m, cls, why, sizeof why) < 0) ||
	    mp_send(m->fd, &ms->pkt, milter_timeout(m, stage), why,
		    sizeof why) < 0)
		return milter_failed(s, m, why, r);
	if (!expect_reply)
		return MILTER_CONTINUE;
	char cmd;
	if (milter_read_reply(m, &ms->in, milter_timeout(m, stage), &cmd, why,
			      sizeof why) < 0)
		return milter_failed(s, m, why, r);
	return milter_verdict(s, m, cmd, stage, r);
}

int milter_read_reply(struct mconn *m, struct buf *in, int timeout_ms,
		      char *cmd, char *why, size_t n)
{
	for (int i = 0; i <= MILTER_MAX_PROGRESS; i++) {
		if (mp_read(m->fd, timeout_ms, cmd, in, why, n) < 0)
			return -1;
		if (*cmd != SMFIR_PROGRESS)
			return 0;
	}
	fmt_snprintf(why, n, "too many SMFIR_PROGRESS");
	return -1;
}

/* The milter's answer to SMFIC_OPTNEG: its version, actions, protocol
 * flags, and the macro lists it asks for. */
static int negotiate(struct milters *ms, struct mconn *m, char *why,
		     size_t n)
{
	mp_begin(&ms->pkt, SMFIC_OPTNEG);
	mp_put_u32(&ms->pkt, MP_VERSION);
	mp_put_u32(&ms->pkt, MP_ACTIONS);
	mp_put_u32(&ms->pkt, MP_PROTOCOL);
	/* connect-timeout covers the negotiation too */
	int t = (int)m->sec->v[MILTER_CONNECT_TIMEOUT].n * 1000;
	char cmd;
	if (mp_send(m->fd, &ms->pkt, t, why, n) < 0 ||
	    mp_read(m->fd, t, &cmd, &ms->in, why, n) < 0)
		return -1;
	if (cmd != SMFIC_OPTNEG || ms->in.len < 12) {
		fmt_snprintf(why, n, "bad option negotiation reply");
		return -1;
	}
	uint32_t version = mp_get_u32(ms->in.s);
	if (version < 2) {
		fmt_snprintf(why, n, "milter protocol version %u", version);
		return -1;
	}
	m->actions = mp_get_u32(ms->in.s + 4) & MP_ACTIONS;
	/* what we did not offer (rejected recipients) is not done */
	m->proto = mp_get_u32(ms->in.s + 8) & MP_PROTOCOL;
	for (size_t at = 12; at + 4 < ms->in.len;) {
		uint32_t cls = mp_get_u32(ms->in.s + at);
		const char *names = ms->in.s + at + 4;
		size_t l = strnlen(names, ms->in.len - at - 4);
		if (cls < SMFIM_N && !m->macros[cls])
			m->macros[cls] = xstrndup(names, l);
		at += 4 + l + 1;
	}
	return 0;
}

/* SMFIC_CONNECT's data: host name, family, port, address. */
static void connect_packet(struct session *s, struct buf *b)
{
	mp_begin(b, SMFIC_CONNECT);
	if (s->peer_is_pipe || !s->peer[0]) {
		mp_put_str(b, "localhost");
		buf_addc(b, 'L');
		buf_add(b, "\0\0", 2);
		mp_put_str(b, s->unix_path[0] ? s->unix_path : "local");
		return;
	}
	char host[96];
	fmt_snprintf(host, sizeof host, "[%s]", s->peer);
	mp_put_str(b, host);
	buf_addc(b, strchr(s->peer, ':') ? '6' : '4');
	unsigned char port[2] = {(unsigned char)(s->peer_port >> 8),
				 (unsigned char)s->peer_port};
	buf_add(b, port, 2);
	mp_put_str(b, s->peer);
}

static enum milter_verdict open_one(struct session *s, struct mconn *m,
				    struct reply *r)
{
	struct milters *ms = s->milters;
	char why[200];
	const char *addr = m->sec->v[MILTER_ADDRESS].s;
	m->fd = mp_connect(addr, (int)m->sec->v[MILTER_CONNECT_TIMEOUT].n * 1000,
			   why, sizeof why);
	if (m->fd < 0 || negotiate(ms, m, why, sizeof why) < 0)
		return milter_failed(s, m, why, r);
	if (m->proto & SMFIP_NOCONNECT)
		return MILTER_CONTINUE;
	connect_packet(s, &ms->pkt);
	return milter_event(s, m, SMFIM_CONNECT, !(m->proto & SMFIP_NR_CONN),
			    STAGE_CONN, r);
}

/* A refusal that no recipient's result line reports (at the connection,
 * HELO, MAIL or DATA) is logged here with the milter that made it: the
 * session answers it and logs nothing. */
static void log_refusal(const struct mconn *m, const char *stage,
			const struct reply *r)
{
	char code[8];
	fmt_snprintf(code, sizeof code, "%d", r->code);
	log_event(LOG_L_INFO, "event", "milter", "milter", m->name, "stage",
		  stage, "code", code, "dsn", r->dsn, "reason", r->text, NULL);
}

void milter_connect(struct session *s)
{
	const struct cf_section *sm = s->smtpd;
	if (!sm || !sm->v[SMTPD_MILTERS].list.n)
		return;
	const struct cf_list *l = &sm->v[SMTPD_MILTERS].list;
	struct milters *ms = xcalloc(1, sizeof *ms);
	s->milters = ms;
	ms->m = xcalloc(l->n, sizeof *ms->m);
	for (uint32_t i = 0; i < l->n; i++) {
		struct mconn *m = &ms->m[ms->n++];
		m->sec = cf_find(s->cf, CF_MILTER, l->v[i]);
		m->name = l->v[i];
		m->fd = -1;
		if (open_one(s, m, &ms->refusal) == MILTER_REFUSE) {
			ms->refused = 1;
			log_refusal(m, "connect", &ms->refusal);
			break;
		}
	}
}

/* One event to every milter that takes it, in order, until one refuses. */
static enum milter_verdict each(struct session *s, int cls, uint32_t nosend,
				uint32_t noreply, int stage,
				void (*build)(struct session *, struct buf *,
					      const void *),
				const void *arg, struct reply *r)
{
	struct milters *ms = s->milters;
	if (ms->refused) {
		*r = ms->refusal;
		return MILTER_REFUSE;
	}
	for (unsigned i = 0; i < ms->n; i++) {
		struct mconn *m = &ms->m[i];
		enum milter_verdict v = MILTER_CONTINUE;
		if (m->st == MC_FAILED) {
			v = milter_failed(s, m, "", r);
		} else if (m->st == MC_ACTIVE && !(m->proto & nosend)) {
			build(s, &ms->pkt, arg);
			v = milter_event(s, m, cls, !(m->proto & noreply), stage,
					 r);
		}
		if (stage == STAGE_MAIL &&
		    (m->st == MC_ACTIVE || m->st == MC_SKIP_MSG))
			m->in_tx = 1;
		if (v != MILTER_CONTINUE && stage != STAGE_RCPT)
			log_refusal(m, stage == STAGE_HELO   ? "helo"
				       : stage == STAGE_MAIL ? "mail"
							     : "data",
				    r);
		if (v != MILTER_CONTINUE)
			return v;
	}
	return MILTER_CONTINUE;
}

static void helo_packet(struct session *s, struct buf *b, const void *arg)
{
	mp_begin(b, SMFIC_HELO);
	mp_put_str(b, s->helo);
}

enum milter_verdict milter_helo(struct session *s, struct reply *r)
{
	if (!s->milters)
		return MILTER_CONTINUE;
	enum milter_verdict v = each(s, SMFIM_HELO, SMFIP_NOHELO, SMFIP_NR_HELO,
				     STAGE_HELO, helo_packet, NULL, r);
	return v;
}

/* "<path>" and then each ESMTP parameter, each with its NUL. */
static void path_packet(struct buf *b, char cmd, const char *path,
			const char *args)
{
	mp_begin(b, cmd);
	buf_addc(b, '<');
	buf_adds(b, path);
	buf_add(b, ">", 2);
	while (*args) {
		args += strspn(args, " ");
		size_t k = strcspn(args, " ");
		if (k) {
			buf_add(b, args, k);
			buf_addc(b, 0);
		}
		args += k;
	}
}

static void mail_packet(struct session *s, struct buf *b, const void *arg)
{
	path_packet(b, SMFIC_MAIL, s->from, arg);
}

enum milter_verdict milter_mail(struct session *s, const char *args,
				struct reply *r)
{
	if (!s->milters)
		return MILTER_CONTINUE;
	struct milters *ms = s->milters;
	ms->discard = 0;
	ms->quarantine[0] = 0;
	for (unsigned i = 0; i < ms->n; i++)
		if (ms->m[i].st == MC_SKIP_MSG)
			ms->m[i].st = MC_ACTIVE;
	return each(s, SMFIM_ENVFROM, SMFIP_NOMAIL, SMFIP_NR_MAIL, STAGE_MAIL,
		    mail_packet, args, r);
}

struct rcpt_arg {
	const char *rcpt, *args;
};

static void rcpt_packet(struct session *s, struct buf *b, const void *arg)
{
	const struct rcpt_arg *a = arg;
	path_packet(b, SMFIC_RCPT, a->rcpt, a->args);
}

enum milter_verdict milter_rcpt(struct session *s, const char *rcpt,
				const char *args, struct reply *r)
{
	if (!s->milters)
		return MILTER_CONTINUE;
	struct rcpt_arg a = {rcpt, args};
	s->milters->rcpt = rcpt;
	enum milter_verdict v = each(s, SMFIM_ENVRCPT, SMFIP_NORCPT,
				     SMFIP_NR_RCPT, STAGE_RCPT, rcpt_packet, &a,
				     r);
	s->milters->rcpt = NULL;
	return v;
}

static void data_packet(struct session *s, struct buf *b, const void *arg)
{
	mp_begin(b, SMFIC_DATA);
}

enum milter_verdict milter_data(struct session *s, struct reply *r)
{
	if (!s->milters)
		return MILTER_CONTINUE;
	return each(s, SMFIM_DATA, SMFIP_NODATA, SMFIP_NR_DATA, STAGE_DATA,
		    data_packet, NULL, r);
}

/* A command that needs no answer; a broken milter is only closed. */
static void tell(struct session *s, struct mconn *m, char cmd)
{
	struct milters *ms = s->milters;
	char why[160];
	struct reply r;
	mp_begin(&ms->pkt, cmd);
	if (m->fd >= 0 && mp_send(m->fd, &ms->pkt, milter_timeout(m, 0), why,
				  sizeof why) < 0)
		milter_failed(s, m, why, &r);
}

void milter_abort(struct session *s)
{
	struct milters *ms = s->milters;
	if (!ms)
		return;
	for (unsigned i = 0; i < ms->n; i++) {
		struct mconn *m = &ms->m[i];
		if (m->in_tx && m->st != MC_FAILED)
			tell(s, m, SMFIC_ABORT);
		m->in_tx = 0;
		if (m->st == MC_SKIP_MSG)
			m->st = MC_ACTIVE;
	}
	ms->discard = 0;
	ms->quarantine[0] = 0;
}

void milter_quit(struct session *s)
{
	struct milters *ms = s->milters;
	if (!ms)
		return;
	for (unsigned i = 0; i < ms->n; i++) {
		struct mconn *m = &ms->m[i];
		if (m->fd >= 0) {
			tell(s, m, SMFIC_QUIT);
			close(m->fd);
		}
		for (int k = 0; k < SMFIM_N; k++)
			free(m->macros[k]);
	}
	free(ms->m);
	buf_free(&ms->pkt);
	buf_free(&ms->in);
	free(ms);
	s->milters = NULL;
}
