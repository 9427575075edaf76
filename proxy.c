/*
 * proxy.c - the live proxy (see proxy.h).
 *
 * The onward connection opens at the transaction's first accepted
 * recipient that goes to one onward destination: greeting, EHLO or LHLO,
 * STARTTLS and AUTH as the spool's client does them (client_conn.h), then
 * MAIL and that RCPT. Commands are queued and their replies read in order
 * only when the client needs them: when its input runs dry, before any
 * reply of our own, and at DATA, which joins the group (RFC 2920), so the
 * proxy adds no round trip of its own; a DATA that comes alone has its
 * 354 at once, and the target's is read as the data goes onward, so the
 * client does not wait for that round trip either. The data goes onward
 * as the store writes it (its tee), while the same octets go to an
 * uncommitted spool file; the target's final reply is the client's, and
 * the file is then dropped unsynced. Whatever breaks the onward
 * connection other than a reply (connect failure, reset, timeout, 421)
 * lets go of the transaction: the session finishes it on the spool path,
 * and the 250 the client gets is the spool's, after its commit.
 */
#include "proxy.h"
#include "fmt.h"
#include "session_state.h"
#include "client_conn.h"
#include "deliver.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

enum px_state {
	PX_LIVE,    /* the onward connection carries the transaction */
	PX_REFUSED, /* the destination refuses it: every RCPT for it gets
		       refusal, whatever came between */
	PX_OFF,     /* the spool path carries it */
};

enum { PEND_MAIL = -1, PEND_DATA = -2 }; /* else an index in s->rcpts */

#define PROXY_ADDRESSES 2 /* tried while the client waits */

struct proxy {
	enum px_state state;
	char key[300];         /* the destination (client_dest_key) */
	char *arg;             /* the job's host or domain */
	struct client_job job;
	struct client_conn c;
	int open;              /* c is connected */
	int *pending;          /* commands whose replies are due, in order */
	unsigned npending, cap;
	struct reply refusal;  /* PX_REFUSED */
	int data_code;         /* DATA's reply; 0 before it */
	int await_354;         /* DATA went alone: its reply is read as the
				  first octets go onward */
	int data_refused;      /* the target refused that DATA: the message
				  gets px->refusal after its end */
	int in_data;           /* the target is in its data phase (its 354
				  read, or octets sent): no QUIT now */
	int bdat;              /* the data goes as BDAT chunks */
	unsigned chunks;       /* BDAT chunks whose replies are due */
	struct reply chunk_refusal; /* the first chunk a target refused */
	int utf8_off;          /* MAIL went without the client's SMTPUTF8,
				  which the target lacks and the envelope
				  does not need; the header must not either */
	int header, bol;       /* the data's header section lasts; a line
				  starts (header_octet) */
	struct client_wire w;
	char last;             /* the last octet that went onward */
	int sent;              /* any did */
	struct buf out, t;
};

int proxy_took_rcpts(const struct session *s)
{
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].proxied)
			return 1;
	return 0;
}

int proxy_live(const struct session *s)
{
	return s->px && s->px->state == PX_LIVE;
}

const char *proxy_remote(const struct session *s)
{
	return s->px ? s->px->c.name : "";
}

int proxy_remote_tls(const struct session *s)
{
	return s->px && s->px->c.tls;
}

static void push(struct session *s, int what)
{
	struct proxy *px = s->px;
	if (px->npending == px->cap) {
		px->cap = px->cap ? 2 * px->cap : 8;
		px->pending = xrealloc(px->pending, px->cap * sizeof *px->pending);
	}
	px->pending[px->npending++] = what;
	s->px_pending = px->npending;
}

/* Ends the onward connection for this transaction; why (logged as a
 * takeover) says what broke, NULL when nothing did. */
static void let_go(struct session *s, const char *why)
{
	struct proxy *px = s->px;
	px->state = PX_OFF;
	s->data.tee = NULL;
	if (why)
		log_event(LOG_L_WARNING, "event", "takeover", "relay",
			  px->c.name[0] ? px->c.name : px->key, "reason", why,
			  NULL);
	if (px->open) {
		/* a QUIT after message octets, or after a DATA whose 354 is
		 * unread, would be message text; after a line that is no
		 * reply, nobody knows */
		client_hang_up(&px->c, !why && !px->in_data &&
					       !px->await_354 && !px->c.unsynced);
		px->open = 0;
	}
}

/* ------------------------------------------------------------------ */
/* RCPT                                                                */

int proxy_carriable(const struct route_result *r, unsigned notify, char *key,
		    size_t n)
{
	if (r->nt != 1 || (notify & DSN_SUCCESS))
		return 0;
	const struct route_target *t = &r->t[0];
	if (t->kind != T_RELAY && t->kind != T_HOST && t->kind != T_MX)
		return 0;
	if (t->kind == T_RELAY && !t->sec)
		return 0;
	client_dest_key(t->kind, t->sec ? t->sec->name : "", t->arg, t->addr,
			key, n);
	return 1;
}

/* 550 5.6.7 for what (the message, a recipient, the header) that a
 * target without SMTPUTF8 cannot take (RFC 6531 3.4). */
static void sans_smtputf8_reply(const struct session *s, struct reply *r,
				const char *what)
{
	reply_set(r, 550, ESC_NON_ASCII_ADDRESS,
		  "%s does not support SMTPUTF8, which this %s needs",
		  s->px->c.name, what);
}

/* The target refuses the transaction for what: every recipient for it
 * gets that reply (PX_REFUSED). */
static void refuse_sans_smtputf8(struct session *s, const char *what)
{
	sans_smtputf8_reply(s, &s->px->refusal, what);
	let_go(s, NULL);
	s->px->state = PX_REFUSED;
}

/* What the target must offer for this transaction, judged once its EHLO
 * reply is known. SMTPUTF8 cannot be converted: a non-ASCII sender is
 * refused (RFC 6531 3.4); a body that needs converting takes the spool
 * path, which converts. */
static void judge_extensions(struct session *s)
{
	struct proxy *px = s->px;
	const struct client_ext *e = &px->c.ext;
	if (s->smtputf8 && !e->smtputf8 && !str_ascii(s->from)) {
		refuse_sans_smtputf8(s, "message");
		return;
	}
	/* what does not need it goes without it (RFC 6531 3.4): the
	 * recipients and the header are judged as they come */
	px->utf8_off = s->smtputf8 && !e->smtputf8;
	if ((s->body == BODY_BINARYMIME && !(e->binary && e->chunking)) ||
		   (s->body == BODY_8BITMIME && !e->eightbit)) {
		let_go(s, "the target cannot take this body unconverted");
	}
}

static void send_mail(struct session *s)
{
	struct proxy *px = s->px;
	const struct client_ext *e = &px->c.ext;
	char size[32] = "";
	if (e->size && s->declared_size)
		fmt_snprintf(size, sizeof size, " SIZE=%llu",
			 (unsigned long long)s->declared_size);
	struct buf dsn = {0};
	client_mail_dsn_params(&px->job, e->dsn, &dsn);
	client_cmd(&px->c, "MAIL FROM:<%s>%s%s%s%s", s->from, size,
		   s->body == BODY_BINARYMIME ? " BODY=BINARYMIME"
		   : s->body == BODY_8BITMIME ? " BODY=8BITMIME"
					      : "",
		   s->smtputf8 && !px->utf8_off ? " SMTPUTF8" : "",
		   dsn.s ? dsn.s : "");
	buf_free(&dsn);
	push(s, PEND_MAIL);
	if (!e->pipelining) /* RFC 5321: MAIL's reply before the RCPT */
		proxy_sync(s);
}

/* Connects to the destination of rc and sends MAIL. The proxy comes out
 * live, refusing (a destination that does not exist), or off (the spool
 * takes the transaction). */
static void start(struct session *s, const struct rcpt *rc, const char *key)
{
	struct proxy *px = s->px = xcalloc(1, sizeof *px);
	const struct route_target *t = &rc->r.t[0];
	const char *at = strrchr(t->addr, '@');
	fmt_snprintf(px->key, sizeof px->key, "%s", key);
	px->arg = xstrdup(t->kind == T_MX ? (at ? at + 1 : "")
			  : t->arg	  ? t->arg
					  : "");
	px->job = (struct client_job){
		.cf = s->cf,
		.kind = t->kind,
		.relay = t->kind == T_RELAY ? t->sec : NULL,
		.arg = px->arg,
		.smtputf8 = s->smtputf8,
		.dsn_ret = s->dsn_ret,
		.envid = s->envid[0] ? s->envid : NULL,
	};
	/* the client waits at its RCPT: finding the addresses gets
	 * connect-timeout in all, the greeting, EHLO, STARTTLS and AUTH
	 * replies get it each (proxy-timeout at most), and two addresses
	 * are tried; the spool tries the others */
	px->job.open_ms = client_connect_ms(&px->job);
	if (px->job.open_ms > s->proxy_ms)
		px->job.open_ms = s->proxy_ms;
	px->state = PX_OFF;
	struct client_cand *c = xcalloc(PROXY_ADDRESSES, sizeof *c);
	int n = 0, next = 0;
	struct reply why = {0};
	if (client_candidates_within(&px->job, c, PROXY_ADDRESSES,
				     px->job.open_ms, &n, &why) < 0) {
		if (why.code >= 500) { /* no such domain, a null MX */
			px->state = PX_REFUSED;
			px->refusal = why;
		} else {
			log_event(LOG_L_WARNING, "event", "takeover", "relay",
				  key, "reason", why.text, NULL);
		}
	} else if (client_conn_open(&px->job, c, n, &next, &px->c, &why) < 0) {
		log_event(LOG_L_WARNING, "event", "takeover", "relay", key,
			  "reason", why.text, NULL);
	} else {
		px->open = 1;
		px->state = PX_LIVE;
		/* the client waits for every reply until the data's end, and
		 * for the data to go on: RFC 5321 4.5.3.2 gives it 2 minutes
		 * for DATA's reply, so the takeover must come before that */
		if (px->c.io.timeout_ms > s->proxy_ms)
			px->c.io.timeout_ms = s->proxy_ms;
		judge_extensions(s);
		if (px->state == PX_LIVE)
			send_mail(s);
	}
	free(c);
}

static void send_rcpt(struct session *s, struct rcpt *rc)
{
	struct proxy *px = s->px;
	const struct client_ext *e = &px->c.ext;
	char words[32];
	client_cmd(&px->c, "RCPT TO:<%s>%s%s%s%s", rc->r.t[0].addr,
		   e->dsn && rc->dsn.notify ? " NOTIFY=" : "",
		   e->dsn ? dsn_notify_param(rc->dsn.notify, words) : "",
		   e->dsn && rc->dsn.orcpt[0] ? " ORCPT=" : "",
		   e->dsn ? rc->dsn.orcpt : "");
	/* should the proxy let go, the spool has it (SMTP: the whole
	 * transaction, while the target has one it took, handoff.c) */
	if (s->proto == P_LHLO)
		rc->spooled = 1;
	envelope_keep_rcpt(s, rc);
	s->rcpts[s->nrcpt - 1].proxied = 1;
	push(s, (int)s->nrcpt - 1);
	if (!e->pipelining)
		proxy_sync(s);
}

/* Whether the target already has rc's address, in any case, from an
 * earlier RCPT of this transaction. */
static int proxied_already(const struct session *s, const struct rcpt *rc)
{
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].proxied && s->rcpts[i].nt &&
		    addr_part_eq(s->rcpts[i].t[0].addr, rc->r.t[0].addr))
			return 1;
	return 0;
}

enum proxy_rcpt proxy_rcpt(struct session *s, struct rcpt *rc,
			   struct reply *r)
{
	char key[300];
	int dest = proxy_carriable(&rc->r, 0, key, sizeof key);
	int can = dest && !(rc->dsn.notify & DSN_SUCCESS);
	if (s->px && s->px->state == PX_REFUSED && dest &&
	    !strcmp(key, s->px->key)) {
		/* the destination refused the transaction: also for a
		 * recipient the spool would carry (NOTIFY=SUCCESS) */
		*r = s->px->refusal;
		return PROXY_ANSWERED;
	}
	if (!s->px) {
		if (!can || !s->proxy_ok || s->nrcpt)
			return PROXY_NOT;
		start(s, rc, key);
	} else if (!can || strcmp(key, s->px->key)) {
		/* a second destination: the spool takes the transaction,
		 * after the client has the replies it waits for; one that
		 * refused the transaction goes on refusing its recipients */
		if (s->px->state == PX_LIVE)
			proxy_sync(s);
		if (s->px->state == PX_LIVE)
			let_go(s, NULL);
		return PROXY_NOT;
	}
	if (proxied_already(s, rc)) {
		/* a second RCPT would be a second copy (joe, JOE): one
		 * client RCPT is one onward RCPT here, so the spool takes the
		 * transaction and sends the address once (flush.c); unless
		 * the target refused the first, which then left */
		proxy_sync(s);
		if (proxy_live(s) && proxied_already(s, rc))
			let_go(s, NULL);
	}
	if (s->px->state == PX_OFF)
		return PROXY_NOT;
	if (s->px->state == PX_REFUSED) {
		*r = s->px->refusal;
		return PROXY_ANSWERED;
	}
	if (s->px->utf8_off && (!str_ascii(rc->r.t[0].addr) ||
				!str_ascii(rc->dsn.orcpt))) {
		sans_smtputf8_reply(s, r, "recipient");
		return PROXY_ANSWERED;
	}
	send_rcpt(s, rc);
	return PROXY_SENT;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */

static void log_refused(struct session *s, const struct kept_rcpt *k,
			const struct reply *r)
{
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4];
	struct buf rep = {0}, tgt = {0};
	buf_printf(&rep, "%d %s %s", r->code, r->dsn, r->text);
	log_event(LOG_L_INFO, "from", angle(s->from, f, sizeof f), "to",
		  angle(k->addr, t, sizeof t), "target",
		  envelope_targets_text(k, &tgt), "relay", proxy_remote(s),
		  "tls", proxy_remote_tls(s) ? "yes" : "no", "via", "proxy",
		  "status", "rejected", "dsn", r->dsn, "reply", rep.s, NULL);
	buf_free(&rep);
	buf_free(&tgt);
}

/* The reply to the RCPT of s->rcpts[i]; code -1 when the connection
 * broke before it. A refused recipient leaves the transaction: 1. */
static int take_rcpt(struct session *s, unsigned i, int code, int lost)
{
	struct proxy *px = s->px;
	struct kept_rcpt *k = &s->rcpts[i];
	struct reply r;
	if (lost) {
		/* the spool takes it, as it would have without the proxy */
		reply(s, 250, ESC_DEST_MAILBOX_VALID, "Recipient <%s> OK",
		      esc(k->addr, strlen(k->addr)));
		return 0;
	}
	if (px->state == PX_REFUSED)
		r = px->refusal;
	else if (code >= 300 && code < 400) /* no answer to RCPT: 451 */
		client_peer_refusal(&r, code, px->t.s, px->c.name);
	else
		client_peer_reply_esc(&r, code, px->t.s, px->c.name,
				      code < 300 ? ESC_DEST_MAILBOX_VALID
						 : ESC_OTHER_ADDRESS_STATUS);
	/* a target's limit of recipients per transaction is temporary
	 * whatever its code (RFC 5321 4.5.3.1.10): the client sends the
	 * rest in another transaction, as the spool does (flush.c) */
	reply_too_many_recipients(&r);
	reply_dsn(s, r.code, r.dsn, "%s", r.text);
	if (r.code < 300)
		return 0;
	log_refused(s, k, &r);
	envelope_drop_rcpt(s, i);
	return 1;
}

/* MAIL's reply: a refusal answers every RCPT of the transaction. */
static void take_mail(struct session *s, int code)
{
	struct proxy *px = s->px;
	if (px->state != PX_LIVE || (code >= 200 && code < 300))
		return; /* no_reply() answered it; any 2xx accepts it */
	client_peer_refusal(&px->refusal, code, px->t.s, px->c.name);
	let_go(s, NULL);
	px->state = PX_REFUSED;
}

/* The target answered cmd with a line that is no reply: its protocol
 * error, not a lost connection, so nothing is taken over. As from
 * Postfix's proxy, what went to it in this transaction gets 451. */
static void no_reply(struct session *s, const char *cmd)
{
	struct proxy *px = s->px;
	reply_set(&px->refusal, 451, ESC_OTHER_PROTOCOL_STATUS,
		  "%s answered %s with no valid reply", px->c.name, cmd);
	px->c.unsynced = 1;
	let_go(s, NULL);
	px->state = PX_REFUSED;
}

static const char *pending_verb(int what)
{
	return what == PEND_MAIL ? "MAIL" : what == PEND_DATA ? "DATA" : "RCPT";
}

void proxy_sync(struct session *s)
{
	struct proxy *px = s->px;
	if (!px || !px->npending || s->px_syncing)
		return;
	s->px_syncing = 1;
	const char *lost = NULL;
	if (px->open && io_flush(&px->c.io) < 0)
		lost = "lost connection";
	unsigned dropped = 0;
	for (unsigned k = 0; k < px->npending; k++) {
		int what = px->pending[k];
		int code = -1;
		if (!lost && px->open) {
			code = client_read_reply(&px->c, &px->t);
			if (code == -2)
				no_reply(s, pending_verb(what));
			else if (code < 0)
				lost = px->c.timed_out ? "no reply in time"
						       : "lost connection";
			else if (code == 421)
				lost = "the target is closing (421)";
		}
		if (what == PEND_MAIL)
			take_mail(s, lost ? 250 : code);
		else if (what == PEND_DATA)
			px->in_data = (px->data_code = lost ? -1 : code) == 354;
		else
			dropped += (unsigned)take_rcpt(
				s, (unsigned)what - dropped, code, lost != NULL);
	}
	px->npending = 0;
	s->px_pending = 0;
	if (lost && px->state == PX_LIVE)
		let_go(s, lost);
	s->px_syncing = 0;
}

/* ------------------------------------------------------------------ */
/* The data                                                            */

/* Sending the data failed. When the target refused the message before
 * its end (an early reply, or a refused chunk) and went away or stopped
 * reading, that refusal is the message's verdict, as a reply after the
 * dot would be: no takeover, which would accept what the target refused
 * and bounce it later. 1 then; else 0 (the caller lets go). */
static int refused_early(struct session *s)
{
	struct proxy *px = s->px;
	int code = client_early_refusal(&px->c, &px->t);
	if (code > 0)
		client_peer_refusal(&px->refusal, code, px->t.s, px->c.name);
	else if (px->chunk_refusal.code)
		px->refusal = px->chunk_refusal;
	else
		return 0;
	px->data_refused = 1;
	let_go(s, NULL);
	px->state = PX_REFUSED;
	return 1;
}

/* The replies to BDAT chunks that have come already: read as they come,
 * so that a target never waits for us to read them. The first refusal
 * is kept: it refuses the message. */
static void drain_chunk_replies(struct session *s)
{
	struct proxy *px = s->px;
	while (px->chunks && io_input_pending(&px->c.io)) {
		int code = client_read_reply(&px->c, &px->t);
		if (code == -2) { /* its protocol error, as for DATA */
			no_reply(s, "BDAT");
			px->data_refused = 1;
			return;
		}
		if (code < 0 && refused_early(s))
			return;
		if (code < 0 || code == 421) {
			let_go(s, code < 0 ? (px->c.timed_out
						      ? "no reply to a chunk in time"
						      : "lost connection during the data")
					   : "the target is closing (421)");
			return;
		}
		px->chunks--;
		if (code >= 300 && !px->chunk_refusal.code)
			client_peer_refusal(&px->chunk_refusal, code,
					    px->t.s, px->c.name);
	}
}

/* The reply to a DATA that went alone (the client did not pipeline it
 * with its RCPTs): the client had its 354 at once, and the target's comes
 * while the client sends the message, so that no round trip of the
 * target's stands between the client's DATA and its data. -1 when the
 * target refused the DATA (the message gets that refusal after its end,
 * and nothing goes onward) or the connection broke (the spool takes it). */
static int await_354(struct session *s)
{
	struct proxy *px = s->px;
	px->await_354 = 0;
	int code = client_read_reply(&px->c, &px->t);
	if (code == -2) {
		no_reply(s, "DATA");
		px->data_refused = 1;
		return -1;
	}
	if (code < 0 || code == 421) {
		let_go(s, code < 0 ? (px->c.timed_out
					      ? "no reply to DATA in time"
					      : "lost connection after DATA")
				   : "the target is closing (421)");
		return -1;
	}
	if (code != 354) {
		client_peer_refusal(&px->refusal, code, px->t.s, px->c.name);
		let_go(s, NULL);
		px->state = PX_REFUSED;
		px->data_refused = 1;
		return -1;
	}
	px->data_code = 354;
	px->in_data = 1;
	return 0;
}

/* Watches the header section of a message going onward without
 * SMTPUTF8: an octet above 127 in it refuses the message after its end
 * (550 5.6.7), and the target gets no end of data. Whether it did. */
static int header_8bit(struct session *s, const char *p, size_t n)
{
	struct proxy *px = s->px;
	int found = 0;
	for (size_t i = 0; i < n && px->header && !found; i++)
		px->header = header_octet((unsigned char)p[i], &px->bol, &found);
	if (!found)
		return 0;
	refuse_sans_smtputf8(s, "message's header");
	px->data_refused = 1;
	return 1;
}

/* The store's tee: what it writes goes onward in wire form. */
static void tee(void *arg, const char *p, size_t n)
{
	struct session *s = arg;
	struct proxy *px = s->px;
	if (!px || px->state != PX_LIVE || (px->await_354 && await_354(s) < 0))
		return;
	if (px->utf8_off && px->header && header_8bit(s, p, n))
		return;
	px->out.len = 0;
	if (s->body == BODY_BINARYMIME) {
		buf_add(&px->out, p, n);
	} else {
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)p[i] >= 0x80 && !px->c.ext.eightbit) {
				let_go(s, "8-bit data for a target without "
					  "8BITMIME: the spool converts it");
				return;
			}
			client_wire_byte(&px->w, p[i], !px->bdat, &px->out);
		}
	}
	px->last = p[n - 1];
	px->sent = 1;
	px->in_data = 1;
	if (px->bdat) {
		char h[40];
		int hl = fmt_snprintf(h, sizeof h, "BDAT %zu\r\n", px->out.len);
		io_write(&px->c.io, h, (size_t)hl);
		px->chunks++;
	}
	io_write(&px->c.io, px->out.s, px->out.len);
	drain_chunk_replies(s);
	if (px->state == PX_LIVE && px->c.io.wstatus != IO_OK &&
	    !refused_early(s))
		let_go(s, px->c.io.wstatus == IO_TIMEOUT
				  ? "the target stopped reading the data"
				  : "lost connection during the data");
}

/* A DATA that no recipient can use gets the lone dot when the target
 * answered 354 (as client.c does). A refusing proxy stays one. */
static void end_unwanted_data(struct session *s)
{
	struct proxy *px = s->px;
	if (px->state != PX_LIVE)
		return;
	if (px->data_code == 354) {
		client_cmd(&px->c, ".");
		if (io_flush(&px->c.io) == 0 &&
		    client_read_reply(&px->c, &px->t) > 0)
			px->in_data = 0;
	}
	let_go(s, NULL);
}

int proxy_data(struct session *s, int bdat, int hold, struct reply *r)
{
	struct proxy *px = s->px;
	if (px->state == PX_LIVE) {
		px->bdat = s->body == BODY_BINARYMIME ||
			   (bdat && px->c.ext.chunking);
		/* with every recipient refused and no reply to wait for, a
		 * DATA could only carry an empty message to a lenient target */
		if (!px->bdat && (s->nrcpt || px->npending)) {
			client_cmd(&px->c, "DATA");
			if (px->npending || !s->nrcpt) {
				push(s, PEND_DATA); /* joins the group */
			} else if (io_flush(&px->c.io) < 0) {
				let_go(s, "lost connection");
			} else {
				px->await_354 = 1;
			}
		}
	}
	proxy_sync(s);
	if (!s->nrcpt) {
		end_unwanted_data(s);
		/* as when the routes refused them all (SPEC 5: LMTP's 503) */
		reply_set(r, 503, ESC_INVALID_COMMAND, "No valid recipients");
		return -1;
	}
	if (px->c.unsynced && proxy_took_rcpts(s)) {
		/* no verdict on recipients it has, none on DATA: 451 */
		*r = px->refusal;
		for (unsigned i = 0; i < s->nrcpt; i++)
			log_refused(s, &s->rcpts[i], r);
		return -2;
	}
	if (px->state != PX_LIVE)
		return 0;
	if (!px->bdat && !px->await_354 && px->data_code != 354) {
		client_peer_refusal(r, px->data_code, px->t.s, px->c.name);
		for (unsigned i = 0; i < s->nrcpt; i++)
			log_refused(s, &s->rcpts[i], r);
		let_go(s, NULL);
		return -2;
	}
	px->w = (struct client_wire){0, 1};
	px->header = px->bol = 1;
	if (!hold) {
		s->data.tee = tee;
		s->data.tee_arg = s;
	}
	return 0;
}

/* Reads one reply after the data; -1 (and the proxy lets go) when the
 * connection broke or the target is closing. */
static int final_reply(struct session *s, struct reply *r)
{
	struct proxy *px = s->px;
	int code = client_read_reply(&px->c, &px->t);
	if (code == -2) {
		/* the target read the data and said something that is no
		 * reply: not a lost connection, so no takeover (it may have
		 * taken the message), but no verdict either; as Postfix's
		 * proxy, the client hears 451 and sends it again */
		px->c.unsynced = 1;
		reply_set(r, 451, ESC_OTHER_PROTOCOL_STATUS,
			  "%s answered the data with no valid reply",
			  px->c.name);
		return 0;
	}
	if (code < 0 || code == 421) {
		let_go(s, code < 0 ? "no reply to the data in time, or lost "
				     "connection"
				   : "the target is closing (421)");
		return -1;
	}
	/* a 3xx here is no verdict the client could take */
	if (code < 300)
		client_peer_reply(r, code, px->t.s, px->c.name);
	else
		client_peer_refusal(r, code, px->t.s, px->c.name);
	return 0;
}

/* A held message goes onward now, through the tee as if streamed; what
 * ends the proxy on the way (a refusal, a takeover) leaves it not live. */
static void send_held(struct session *s, const struct msg *m)
{
	char buf[32768];
	for (off_t off = 0; off < m->size && proxy_live(s);) {
		ssize_t n = msg_read(m, off, buf, sizeof buf);
		if (n <= 0) {
			let_go(s, "cannot read the message back");
			return;
		}
		tee(s, buf, (size_t)n);
		off += n;
	}
}

int proxy_finish(struct session *s, struct reply *res,
		 const struct msg *held)
{
	struct proxy *px = s->px;
	if (px && px->await_354 && proxy_live(s))
		await_354(s); /* an empty or a held message: not awaited yet */
	if (held && proxy_live(s))
		send_held(s, held); /* the target may refuse it on the way */
	if (px && px->data_refused) {
		for (unsigned i = 0; i < s->nrcpt; i++)
			res[i] = px->refusal;
		return 0;
	}
	if (!proxy_live(s))
		return -1;
	s->data.tee = NULL;
	if (px->bdat) {
		client_cmd(&px->c, "BDAT 0 LAST");
		px->chunks++;
	} else {
		if (px->sent && px->last != '\n')
			io_write(&px->c.io, "\r\n", 2);
		io_write(&px->c.io, ".\r\n", 3);
	}
	px->in_data = 1;
	if (io_flush(&px->c.io) < 0) {
		if (refused_early(s)) {
			for (unsigned i = 0; i < s->nrcpt; i++)
				res[i] = px->refusal;
			return 0;
		}
		let_go(s, "lost connection at the end of the data");
		return -1;
	}
	/* the final reply may take the target's full timeout */
	px->c.io.timeout_ms = client_reply_ms(&px->job);
	/* each BDAT chunk but the last has its own reply: a refused chunk
	 * refuses the message */
	struct reply *chunk = &px->chunk_refusal, r;
	for (; px->chunks > 1; px->chunks--) {
		if (final_reply(s, &r) < 0)
			return -1;
		if (r.code >= 300 && !chunk->code)
			*chunk = r;
	}
	if (px->c.unsynced) { /* a chunk's reply was no reply: the replies
				 that follow cannot be told apart */
		for (unsigned i = 0; i < s->nrcpt; i++)
			res[i] = *chunk;
		return 0;
	}
	unsigned n = px->c.lmtp ? s->nrcpt : 1;
	for (unsigned i = 0; i < n; i++) {
		if (final_reply(s, &res[i]) == 0) {
			/* after a line that is no reply, the lines that follow
			 * cannot be told apart: one of them may be the reply
			 * due to this recipient. All the others get its 451 */
			for (unsigned k = i + 1; px->c.unsynced && k < n; k++)
				res[k] = res[i];
			if (px->c.unsynced)
				break;
			continue;
		}
		if (i == 0)
			return -1; /* no verdict at all: the takeover */
		/* an LMTP target gave some recipients their replies and went
		 * away: those stand; the others are the spool's to retry */
		for (; i < n; i++)
			reply_set(&res[i], 451, ESC_BAD_CONNECTION,
				  "%s: lost connection after the data",
				  px->c.name);
	}
	for (unsigned i = 0; i < s->nrcpt; i++) {
		if (!px->c.lmtp)
			res[i] = res[0];
		if (chunk->code && res[i].code < 300)
			res[i] = *chunk;
	}
	px->in_data = 0; /* the transaction is over: QUIT may follow */
	return 0;
}

void proxy_abort(struct session *s)
{
	if (proxy_live(s))
		let_go(s, NULL);
}

void proxy_end(struct session *s)
{
	struct proxy *px = s->px;
	if (!px)
		return;
	if (px->open)
		client_hang_up(&px->c, !px->in_data && !px->await_354);
	s->data.tee = NULL;
	free(px->pending);
	free(px->arg);
	buf_free(&px->out);
	buf_free(&px->t);
	free(px);
	s->px = NULL;
	s->px_pending = 0;
}
