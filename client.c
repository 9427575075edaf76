/*
 * client.c - onward SMTP and LMTP delivery (see client.h).
 *
 * Per SPEC 7.2: a connection failure, a 421, or a 4xx/5xx greeting or
 * EHLO/LHLO reply moves on to the next address (client_dest.c finds
 * them); otherwise the replies are final for this attempt. Text mail is
 * stored with LF line ends and goes out with CRLF, dot-stuffed for DATA or
 * in BDAT chunks when the peer offers CHUNKING; binary mail goes out only
 * by BDAT.
 */
#include "client.h"
#include "client_conn.h"
#include "client_dest.h"
#include "dsn.h"
#include "fmt.h"
#include "io.h"
#include "log.h"
#include "mime.h"
#include "net.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>


static void set_all(struct client_job *j, const struct reply *r)
{
	for (unsigned i = 0; i < j->n; i++)
		if (!j->r[i].r.code)
			j->r[i].r = *r;
}

void client_dest_key(enum target_kind kind, const char *via, const char *arg,
		     const char *addr, char *out, size_t n)
{
	if (kind == T_RELAY) {
		fmt_snprintf(out, n, "relay %s", via);
	} else if (kind == T_HOST) {
		fmt_snprintf(out, n, "host %s", arg);
	} else {
		const char *at = strrchr(addr, '@');
		fmt_snprintf(out, n, "mx %s", at ? at + 1 : "");
		for (char *p = out; *p; p++)
			*p = (char)ascii_lower((unsigned char)*p);
	}
}

/* ------------------------------------------------------------------ */
/* The conversation                                                    */

int client_connect(const struct sockaddr_storage *ss, socklen_t len,
		   int timeout_ms, char *why, size_t n)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	if (fd < 0) {
		fmt_snprintf(why, n, "%s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 &&
	    errno != EINPROGRESS) {
		fmt_snprintf(why, n, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = {fd, POLLOUT, 0};
	int r = poll(&p, 1, timeout_ms);
	int err = 0;
	socklen_t el = sizeof err;
	if (r <= 0) {
		fmt_snprintf(why, n, "connection timed out");
		close(fd);
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		fmt_snprintf(why, n, "%s", strerror(err));
		close(fd);
		return -1;
	}
	/* it stays non-blocking: every wait on it is io.c's (or milter's),
	 * bounded by a deadline */
	/* Every write here is a whole command group, data chunk or the final
	 * dot, buffered by io.c: Nagle's algorithm would hold a small one
	 * (the dot after the last chunk) until the peer's delayed ACK, 40 ms
	 * and more per message on Linux. */
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return fd;
}

/* The mechanisms of an EHLO AUTH line (RFC 4954 3), from the line
 * itself: a list of them has no length limit but the reply's. */
static void parse_auth(struct client_conn *c, const char *p, size_t n)
{
	const char *end = p + n;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		size_t w = 0;
		while (p + w < end && p[w] != ' ')
			w++;
		if (w == 5 && !strncasecmp(p, "PLAIN", 5))
			c->ext.auth_plain = 1;
		else if (w == 5 && !strncasecmp(p, "LOGIN", 5))
			c->ext.auth_login = 1;
		p += w;
	}
}

static void parse_ehlo(struct client_conn *c, const char *text)
{
	memset(&c->ext, 0, sizeof c->ext);
	const char *l = strchr(text, '\n');
	while (l) {
		l++;
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char kw[64];
		fmt_snprintf(kw, sizeof kw, "%.*s", (int)(n < 63 ? n : 63), l);
		if (!strcasecmp(kw, "PIPELINING"))
			c->ext.pipelining = 1;
		else if (!strcasecmp(kw, "8BITMIME"))
			c->ext.eightbit = 1;
		else if (!strcasecmp(kw, "BINARYMIME"))
			c->ext.binary = 1;
		else if (!strcasecmp(kw, "CHUNKING"))
			c->ext.chunking = 1;
		else if (!strcasecmp(kw, "SMTPUTF8"))
			c->ext.smtputf8 = 1;
		else if (!strcasecmp(kw, "STARTTLS"))
			c->ext.starttls = 1;
		else if (!strcasecmp(kw, "DSN"))
			c->ext.dsn = 1;
		else if (!strncasecmp(kw, "SIZE", 4) && (kw[4] == ' ' || !kw[4]))
			c->ext.size = strtoull(kw + 4, NULL, 10);
		else if (!strncasecmp(kw, "AUTH", 4) && kw[4] == ' ')
			parse_auth(c, l + 5, n - 5);
		l = e;
	}
}

void client_cmd(struct client_conn *c, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, "\r\n");
	io_write(&c->io, b.s, b.len);
	buf_free(&b);
}

#define LINE_MAX_WIRE 998 /* RFC 5321 4.5.3.1.6, without CRLF */

int client_wire_byte(struct client_wire *w, char ch, int stuff, struct buf *out)
{
	if (ch == '\n') {
		if (out)
			buf_add(out, "\r\n", 2);
		w->col = 0;
		w->bol = 1;
		return 2;
	}
	int n = 1;
	if (w->col >= LINE_MAX_WIRE) {
		if (out)
			buf_add(out, "\r\n ", 3);
		w->col = 1;
		w->bol = 0;
		n += 3;
	}
	if (w->bol && ch == '.' && stuff) {
		if (out)
			buf_addc(out, '.');
		w->col++;
	}
	if (out)
		buf_addc(out, ch);
	w->col++;
	w->bol = 0;
	return n;
}

/* The message's size on the wire (RFC 1870 counts CRLF) and whether it
 * holds 8-bit octets, whatever its BODY said (RFC 6152 is about content). */
/* The message's size on the wire, and whether it holds an octet above 127
 * anywhere (eightbit) and in its header section (hdr8bit, may be NULL). */
static void scan_body(const struct msg *m, off_t *wire, int *eightbit,
		      int *hdr8bit)
{
	char in[32768];
	struct client_wire w = {0, 1};
	off_t off = 0, size = 0;
	int header = 1, bol = 1;
	*eightbit = 0;
	if (hdr8bit)
		*hdr8bit = 0;
	while (off < m->size) {
		ssize_t n = msg_read(m, off, in, sizeof in);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)in[i];
			if (c >= 0x80)
				*eightbit = 1;
			if (header)
				header = header_octet(c, &bol, hdr8bit);
			size += m->binary ? 1 : client_wire_byte(&w, in[i], 0, NULL);
		}
		off += n;
	}
	*wire = size;
}

/* LOOPS_BACK: the peer is this machine, a final verdict for all */
enum { NEXT_ADDRESS = 1, AGAIN_IN_CLEAR = 2, LOOPS_BACK = 3 };

/* Whether an SMTP peer's greeting or EHLO reply (text) names it with our
 * own host name: this machine, reached by an address that is no
 * interface's (a NAT's public address, 127.0.0.2), so the mail would loop
 * (RFC 5321 5.1); Postfix's smtp_helo checks the same. An LMTP server
 * (Dovecot) runs here and may well use the machine's name. */
static int names_myself(const struct client_job *j,
			const struct client_conn *c, const char *text)
{
	const char *me = j->cf->core->v[CORE_HOSTNAME].s;
	size_t n = 0;
	while (text[n] && text[n] != ' ' && text[n] != '\n')
		n++;
	return !c->lmtp && me && n == strlen(me) && !strncasecmp(text, me, n);
}

/* LOOPS_BACK with why (554 5.4.6) when names_myself(); else 0. */
static int loops_back(const struct client_job *j, const struct client_conn *c,
		      const char *text, const char *what, struct reply *why)
{
	if (!names_myself(j, c, text))
		return 0;
	reply_set(why, 554, ESC_ROUTING_LOOP,
		  "mail for %s loops back to myself (%s %s my own host name)",
		  j->relay ? j->relay->name : j->arg, c->name, what);
	return LOOPS_BACK;
}

/* EHLO or LHLO and its reply: 0 when it was 250, else NEXT_ADDRESS or
 * LOOPS_BACK with why. An SMTP server that refuses EHLO (but for 421:
 * it is closing) is one without extensions, which stays greeted (RFC
 * 5321 3.2, RFC 1869 4.7): HELO then, as Postfix falls back. */
static int hello(struct client_job *j, struct client_conn *c, struct buf *t,
		 struct reply *why)
{
	client_cmd(c, "%s %s", c->lmtp ? "LHLO" : "EHLO",
	    j->cf->core->v[CORE_HOSTNAME].s);
	io_flush(&c->io);
	int code = client_read_reply(c, t);
	if (code == 250) {
		parse_ehlo(c, t->s);
		return loops_back(j, c, t->s, "answered EHLO with", why);
	}
	const char *verb = c->lmtp ? "LHLO" : "EHLO";
	if (code > 0 && code != 421 && !c->lmtp) {
		verb = "HELO";
		client_cmd(c, "HELO %s", j->cf->core->v[CORE_HOSTNAME].s);
		io_flush(&c->io);
		code = client_read_reply(c, t);
		if (code == 250) {
			memset(&c->ext, 0, sizeof c->ext);
			return loops_back(j, c, t->s, "answered HELO with", why);
		}
	}
	if (code < 0)
		reply_set(why, 451, ESC_BAD_CONNECTION, "%s: %s after %s",
			  c->name, client_lost(c), verb);
	else
		client_peer_reply(why, 451, t->s, c->name);
	return NEXT_ADDRESS;
}

/* STARTTLS as the relay's tls key says (opportunistic for hosts and MX).
 * Returns 0 to go on, NEXT_ADDRESS, AGAIN_IN_CLEAR or (from the EHLO
 * after it) LOOPS_BACK with why. */
static int start_tls(struct client_job *j, struct client_conn *c, struct buf *t,
		     struct reply *why)
{
	int must = c->tls_mode == RTLS_REQUIRED || c->tls_mode == RTLS_VERIFY;
	if (c->tls_mode == RTLS_NO || (!c->ext.starttls && !must))
		return 0;
	if (!c->ext.starttls) {
		reply_set(why, 451, ESC_SECURITY_FEATURES_NOT_SUPPORTED,
			  "TLS is required, but %s does not offer STARTTLS",
			  c->name);
		return NEXT_ADDRESS;
	}
	client_cmd(c, "STARTTLS");
	io_flush(&c->io);
	int code = client_read_reply(c, t);
	if (code != 220) {
		if (code < 0) {
			reply_set(why, 451, ESC_BAD_CONNECTION,
				  "%s: %s after STARTTLS", c->name,
				  client_lost(c));
			return NEXT_ADDRESS;
		}
		if (!must)
			return 0; /* still the same clear-text session */
		client_peer_reply(why, 451, t->s, c->name);
		return NEXT_ADDRESS;
	}
	char reason[300];
	if (io_input_buffered(&c->io)) {
		/* bytes that came in clear after the 220 would be read as
		 * replies inside TLS (a man in the middle's, CVE-2011-0411's
		 * client side): no TLS on this connection */
		reply_set(why, 451, ESC_CRYPTOGRAPHIC_FAILURE,
			  "%s: data after the 220 to STARTTLS", c->name);
		return must ? NEXT_ADDRESS : AGAIN_IN_CLEAR;
	}
	if (tls_client_start(&c->io, c->host, c->tls_mode == RTLS_VERIFY, reason,
			     sizeof reason) < 0) {
		reply_set(why, 451, ESC_CRYPTOGRAPHIC_FAILURE, "%s: %s",
			  c->name, reason);
		return must ? NEXT_ADDRESS : AGAIN_IN_CLEAR;
	}
	c->tls = 1;
	/* RFC 3207 4.2: forget what was learnt before TLS */
	return hello(j, c, t, why);
}

/* The peer's 220 greeting; NEXT_ADDRESS with why when it gives none (a
 * refusal is temporary for this address: the next one may serve), or
 * LOOPS_BACK. */
static int greeting(const struct client_job *j, struct client_conn *c,
		    struct buf *t, struct reply *why)
{
	int code = client_read_reply(c, t);
	if (code == 220)
		return loops_back(j, c, t->s, "greeted me with", why);
	if (code < 0)
		reply_set(why, 451, ESC_BAD_CONNECTION,
			  "%s: %s before the greeting", c->name,
			  client_lost(c));
	else
		client_peer_refusal(why, code, t->s, c->name);
	if (why->code >= 500)
		reply_defer(why);
	return NEXT_ADDRESS;
}

/* The greeting, EHLO/LHLO, STARTTLS and AUTH: 0 when the connection is
 * ready for a transaction, else NEXT_ADDRESS, AGAIN_IN_CLEAR or
 * LOOPS_BACK with why (and QUIT sent). */
static int open_session(struct client_job *j, struct client_conn *c,
			struct reply *why)
{
	struct buf t = {0};
	int ret = greeting(j, c, &t, why);
	if (!ret)
		ret = hello(j, c, &t, why);
	if (!ret)
		ret = start_tls(j, c, &t, why);
	if (!ret && client_authenticate(j, c, &t, why) < 0)
		ret = NEXT_ADDRESS;
	if (ret) {
		client_cmd(c, "QUIT");
		io_flush(&c->io);
	}
	buf_free(&t);
	return ret;
}

/* The 7-bit form of the job's message, made once per job in an unlinked
 * file; -1 with j->conv_why when it cannot be made. */
static int downgrade(struct client_job *j)
{
	if (j->conv_state)
		return j->conv_state > 0 ? 0 : -1;
	j->conv_state = -1;
	int fd = tmpfile_open();
	if (fd < 0) {
		fmt_snprintf(j->conv_why, sizeof j->conv_why,
			 "no room to convert it: %s", strerror(errno));
		return -1;
	}
	if (mime_downgrade(j->m, fd, j->conv_why, sizeof j->conv_why) < 0) {
		close(fd);
		return -1;
	}
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0) { /* a size of -1 would send nothing of it */
		fmt_snprintf(j->conv_why, sizeof j->conv_why,
			     "cannot convert it: %s", strerror(errno));
		close(fd);
		return -1;
	}
	j->conv = *j->m;
	j->conv.fd = fd;
	j->conv.off = 0;
	j->conv.size = end;
	j->conv.binary = 0;
	int eightbit;
	scan_body(&j->conv, &j->conv_wire, &eightbit, NULL);
	j->conv_state = 1;
	return 0;
}

/*
 * One transaction as RFC 2920 3.1 has the client speak: commands go out in
 * groups and their replies are read back in the same order. With
 * PIPELINING, MAIL and every RCPT form one group that DATA ends (BDAT
 * chunks follow only once the envelope is settled); without it, every
 * command is a group of one.
 */
enum { PEND_MAIL = -1, PEND_DATA = -2 }; /* else a recipient's index */

enum tx_end {
	TX_OPEN,    /* the transaction goes on */
	TX_FINAL,   /* every recipient has this peer's reply */
	TX_LOST,    /* the connection broke */
	TX_CLOSING, /* the peer said 421 */
};

struct tx {
	struct client_job *j;
	struct client_conn *c;
	const struct msg *m; /* the form that goes out: j->m or its 7-bit form */
	off_t wire;
	int eightbit, bdat;
	int utf8;            /* MAIL says SMTPUTF8 */
	int data;            /* DATA's reply; 0 while DATA is not answered */
	int *pending;        /* the commands sent whose replies are due */
	unsigned npending;
	unsigned char *accepted; /* per recipient: its RCPT got a 2xx */
	unsigned naccepted;
	unsigned chunks_due; /* BDAT chunks sent whose replies are unread */
	int last_sent;       /* BDAT 0 LAST went */
	struct reply chunk_refusal; /* the first chunk the peer refused */
	struct buf t;        /* the text of the last reply */
};

/* Gives every recipient that the peer accepted the message's reply r. */
static void set_accepted(struct tx *x, const struct reply *r)
{
	for (unsigned i = 0; i < x->j->n; i++)
		if (x->accepted[i])
			x->j->r[i].r = *r;
}

/* A message sent with SMTPUTF8 goes to a peer without it when it does not
 * need it (RFC 6531 3.4; Postfix's rule): its header and sender are ASCII,
 * and so is each recipient of this transaction with its ORCPT; the others
 * get 550 5.6.7 and are not sent. -1 with fail when none can go. */
static int sans_smtputf8(struct tx *x, struct reply *fail)
{
	struct client_job *j = x->j;
	reply_set(fail, 550, ESC_NON_ASCII_ADDRESS,
		  "%s does not support SMTPUTF8, which this message needs",
		  x->c->name);
	if (j->hdr8bit || !str_ascii(x->m->from))
		return -1;
	unsigned left = 0;
	for (unsigned i = 0; i < j->n; i++) {
		if (j->r[i].r.code)
			continue;
		if (str_ascii(j->r[i].addr) && str_ascii(j->r[i].orcpt))
			left++;
		else
			j->r[i].r = *fail;
	}
	return left ? 0 : -1;
}

/* The message's form for this peer, or -1 with our own verdict for every
 * recipient when the peer cannot take it (RFC 6152 3, RFC 3030 3, RFC
 * 6531 3.4, RFC 1870). */
static int choose_form(struct tx *x, struct reply *fail)
{
	struct client_job *j = x->j;
	const struct client_ext *e = &x->c->ext;
	x->utf8 = j->smtputf8 && e->smtputf8;
	if (j->smtputf8 && !e->smtputf8 && sans_smtputf8(x, fail) < 0)
		return -1;
	/* the content decides (SPEC 7): ASCII declared BODY=8BITMIME goes
	 * as it is, long lines folded on the wire like 7-bit mail */
	if ((x->m->binary && !(e->binary && e->chunking)) ||
	    (j->has8bit && !e->eightbit)) {
		if (downgrade(j) < 0) {
			reply_set(fail, 554, ESC_CONVERSION_NOT_SUPPORTED,
				  "%s accepts only 7-bit mail "
				  "and this message cannot "
				  "be converted: %s",
				  x->c->name, j->conv_why);
			return -1;
		}
		x->m = &j->conv;
		x->wire = j->conv_wire;
		x->eightbit = 0;
	}
	if (!e->eightbit)
		x->eightbit = 0;
	if (e->size && (unsigned long long)x->wire > e->size) {
		reply_set(fail, 552, ESC_MESSAGE_TOO_BIG_FOR_SYSTEM,
			  "message size %lld exceeds the limit of %s (%llu)",
			  (long long)x->wire, x->c->name, e->size);
		return -1;
	}
	x->bdat = x->m->binary || e->chunking;
	return 0;
}

/* RFC 3461 5.2: RET and ENVID go on to a peer that advertises DSN, and
 * only to one. */
void client_mail_dsn_params(const struct client_job *j, int peer_dsn,
			   struct buf *out)
{
	if (!peer_dsn)
		return;
	if (j->dsn_ret != DSN_RET_NONE)
		buf_adds(out, j->dsn_ret == DSN_RET_FULL ? " RET=FULL"
							 : " RET=HDRS");
	if (j->envid)
		buf_printf(out, " ENVID=%s", j->envid);
}

/* Sends one command of the transaction; its reply is read later, in
 * order, by read_replies(). */
static void send_command(struct tx *x, int what)
{
	struct client_conn *c = x->c;
	if (what == PEND_MAIL) {
		char size[32] = "";
		if (c->ext.size)
			fmt_snprintf(size, sizeof size, " SIZE=%lld",
				 (long long)x->wire);
		struct buf dsn = {0};
		client_mail_dsn_params(x->j, c->ext.dsn, &dsn);
		client_cmd(c, "MAIL FROM:<%s>%s%s%s%s", x->m->from, size,
		    x->m->binary ? " BODY=BINARYMIME"
		    : x->eightbit ? " BODY=8BITMIME"
				  : "",
		    x->utf8 ? " SMTPUTF8" : "", dsn.s ? dsn.s : "");
		buf_free(&dsn);
	} else if (what == PEND_DATA) {
		client_cmd(c, "DATA");
	} else {
		const struct client_rcpt *r = &x->j->r[what];
		char words[32];
		client_cmd(c, "RCPT TO:<%s>%s%s%s%s", r->addr,
		    c->ext.dsn && r->notify ? " NOTIFY=" : "",
		    c->ext.dsn ? dsn_notify_param(r->notify, words) : "",
		    c->ext.dsn && r->orcpt ? " ORCPT=" : "",
		    c->ext.dsn && r->orcpt ? r->orcpt : "");
	}
	x->pending[x->npending++] = what;
}

/* A DATA that no recipient can use: a peer that answers 354 all the same
 * gets the lone "." and its reply is discarded (RFC 2920 3.1, as Postfix
 * does): whatever else we sent would be taken as message text. */
static void end_unwanted_data(struct tx *x, int code)
{
	if (code != 354)
		return;
	client_cmd(x->c, ".");
	io_flush(&x->c->io);
	client_read_reply(x->c, &x->t);
}

/* What one reply means; code is -1 when the connection broke. */
static enum tx_end take_reply(struct tx *x, int what, int code)
{
	struct reply r;
	if (what == PEND_DATA && !x->naccepted) {
		end_unwanted_data(x, code);
		return TX_FINAL;
	}
	if (code < 0)
		return TX_LOST;
	if (what == PEND_DATA) {
		x->data = code; /* even a 421: the peer's verdict on the data */
		return TX_OPEN;
	}
	if (code == 421)
		return TX_CLOSING; /* the peer is closing: not a verdict */
	if (what == PEND_MAIL) {
		if (code >= 200 && code < 300) /* any 2xx, as for RCPT */
			return TX_OPEN;
		client_peer_refusal(&r, code, x->t.s, x->c->name);
		set_all(x->j, &r);
		return TX_FINAL;
	}
	if (code >= 200 && code < 300) {
		/* any 2xx accepts the recipient (RFC 5321 4.2.1, as Postfix
		 * reads it): 250, 251, and a 252 too; its verdict comes after
		 * the data, which it must not go without */
		x->accepted[what] = 1;
		x->naccepted++;
	} else {
		client_peer_refusal(&x->j->r[what].r, code, x->t.s,
				    x->c->name);
	}
	return TX_OPEN;
}

/* Reads the replies to the commands sent, in the order they were sent.
 * After a refused MAIL the rest of the group is read and discarded (a
 * 354 to its DATA gets the lone dot). */
static enum tx_end read_replies(struct tx *x)
{
	enum tx_end end = TX_OPEN;
	io_flush(&x->c->io);
	for (unsigned k = 0; k < x->npending; k++) {
		int what = x->pending[k];
		int code = client_read_reply(x->c, &x->t);
		if (end == TX_FINAL) {
			if (code < 0)
				break;
			if (what == PEND_DATA)
				end_unwanted_data(x, code);
			continue;
		}
		end = take_reply(x, what, code);
		if (end == TX_LOST || end == TX_CLOSING)
			break;
	}
	x->npending = 0;
	return end;
}

/* Sends one command and, without PIPELINING, reads its reply at once. */
static enum tx_end step(struct tx *x, int what)
{
	send_command(x, what);
	return x->c->ext.pipelining ? TX_OPEN : read_replies(x);
}

/* The send phase of the envelope and, with PIPELINING, its read phase:
 * MAIL, one RCPT per recipient still without a reply, and DATA to end the
 * group unless the body goes by BDAT. */
static enum tx_end envelope(struct tx *x)
{
	enum tx_end end = step(x, PEND_MAIL);
	for (unsigned i = 0; i < x->j->n && end == TX_OPEN; i++)
		if (!x->j->r[i].r.code)
			end = step(x, (int)i);
	if (end != TX_OPEN || !x->c->ext.pipelining)
		return end;
	if (!x->bdat)
		send_command(x, PEND_DATA);
	return read_replies(x);
}

/* SMTP: one final reply for all; LMTP: one per accepted recipient. */
static enum tx_end final_replies(struct tx *x)
{
	struct client_job *j = x->j;
	struct reply final = {0};
	for (unsigned i = 0; i < j->n; i++) {
		if (!x->accepted[i])
			continue;
		if (x->c->lmtp || !final.code) {
			int code = client_read_reply(x->c, &x->t);
			if (code < 0)
				return TX_LOST;
			if (code < 300)
				client_peer_reply(&final, code, x->t.s,
						  x->c->name);
			else /* a 3xx here is no verdict */
				client_peer_refusal(&final, code, x->t.s,
						    x->c->name);
		}
		j->r[i].r = final;
	}
	return TX_FINAL;
}

/* A BDAT chunk's reply (RFC 3030 2): any 2xx takes the chunk; the first
 * other one refuses the message (a 1xx or 3xx as a temporary failure).
 * -1 when the connection broke or the peer is closing (421). */
static int chunk_reply(struct tx *x)
{
	int code = client_read_reply(x->c, &x->t);
	if (code < 0 || code == 421)
		return -1;
	x->chunks_due--;
	if ((code < 200 || code >= 300) && !x->chunk_refusal.code)
		client_peer_refusal(&x->chunk_refusal, code, x->t.s,
				    x->c->name);
	return 0;
}

/* Sends the message body: DATA's dot-stuffed text, or BDAT chunks, whose
 * replies are read as they come (a peer never waits for us to read
 * them); after a refused chunk no more go, nor LAST (RFC 3030 2). */
static int send_body(struct tx *x)
{
	struct client_conn *c = x->c;
	const struct msg *m = x->m;
	int bdat = x->bdat;
	char in[32768];
	struct buf out = {0};
	struct client_wire w = {0, 1};
	off_t off = 0;
	char last = '\n';
	while (off < m->size && !x->chunk_refusal.code) {
		ssize_t n = msg_read(m, off, in, sizeof in);
		if (n <= 0)
			goto lost;
		off += n;
		out.len = 0;
		if (m->binary)
			buf_add(&out, in, (size_t)n);
		else
			for (ssize_t i = 0; i < n; i++)
				client_wire_byte(&w, in[i], !bdat, &out);
		last = in[n - 1];
		if (bdat) {
			char h[40];
			int hl = fmt_snprintf(h, sizeof h, "BDAT %zu\r\n", out.len);
			io_write(&c->io, h, (size_t)hl);
			x->chunks_due++;
		}
		io_write(&c->io, out.s, out.len);
		if (io_flush(&c->io) < 0)
			goto lost;
		while (bdat && x->chunks_due && io_input_pending(&c->io))
			if (chunk_reply(x) < 0)
				goto lost;
	}
	buf_free(&out);
	if (bdat) {
		if (x->chunk_refusal.code)
			return 0;
		client_cmd(c, "BDAT 0 LAST");
		x->last_sent = 1;
	} else {
		if (last != '\n' && m->size)
			io_write(&c->io, "\r\n", 2);
		io_write(&c->io, ".\r\n", 3);
	}
	return io_flush(&c->io);
lost:
	buf_free(&out);
	return -1;
}

/* The content once the envelope is settled: DATA's 354 (when DATA was not
 * in the pipelined group), the body, and the final replies. */
static enum tx_end content(struct tx *x)
{
	struct reply r;
	if (!x->naccepted)
		return TX_FINAL;
	if (!x->bdat && !x->data) { /* DATA was not in a pipelined group */
		send_command(x, PEND_DATA);
		enum tx_end end = read_replies(x);
		if (end != TX_OPEN)
			return end;
	}
	if (!x->bdat && x->data != 354) {
		client_peer_refusal(&r, x->data, x->t.s, x->c->name);
		set_accepted(x, &r);
		return TX_FINAL;
	}
	if (send_body(x) < 0) {
		/* a peer that refused the message before its end and went
		 * away gave its verdict: a refused chunk's, or an early one */
		int code = client_early_refusal(x->c, &x->t);
		if (code > 0)
			client_peer_refusal(&r, code, x->t.s, x->c->name);
		else if (x->chunk_refusal.code)
			r = x->chunk_refusal;
		else
			return TX_LOST;
		set_accepted(x, &r);
		x->c->unsynced = 1;
		return TX_FINAL;
	}
	while (x->chunks_due)
		if (chunk_reply(x) < 0)
			return TX_LOST;
	if (x->chunk_refusal.code) {
		set_accepted(x, &x->chunk_refusal);
		/* LAST's reply (or an LMTP peer's replies) may still come */
		x->c->unsynced = x->last_sent;
		return TX_FINAL;
	}
	return final_replies(x);
}

/* One transaction on a ready connection: a reply for every recipient, or
 * NEXT_ADDRESS (with why) for those the connection could not serve. */
static int transaction(struct client_job *j, struct client_conn *c, struct reply *why)
{
	struct tx x = {.j = j, .c = c, .m = j->m, .wire = j->wire_size,
		       .eightbit = j->eightbit};
	struct reply fail = {0};
	if (choose_form(&x, &fail) < 0) {
		set_all(j, &fail); /* our own verdict, not the peer's reply */
		return 0;
	}
	x.pending = xcalloc(j->n + 2, sizeof *x.pending);
	x.accepted = xcalloc(j->n, 1);
	enum tx_end end = envelope(&x);
	if (end == TX_OPEN)
		end = content(&x);
	if (end == TX_FINAL) {
		/* replies of this peer are final: name it in logs and reports */
		fmt_snprintf(j->remote, sizeof j->remote, "%s", c->name);
		j->remote_dsn = c->ext.dsn;
		j->remote_tls = c->tls;
	} else if (end == TX_CLOSING) {
		client_peer_reply(why, 451, x.t.s, c->name);
	} else {
		reply_set(why, 451, ESC_BAD_CONNECTION, "%s: %s", c->name,
			  client_lost(c));
	}
	/* unless final, the accepted recipients have no reply yet: they go
	 * to the next address with the others */
	free(x.accepted);
	free(x.pending);
	buf_free(&x.t);
	return end == TX_FINAL ? 0 : NEXT_ADDRESS;
}

/* ------------------------------------------------------------------ */
/* Connections kept for the next message to the same destination      */

#define CACHE_MAX 8

static struct cached {
	char key[300];
	struct client_conn *c;
} cache[CACHE_MAX];
static int caching;

void client_keep_connections(int on) { caching = on; }

void client_hang_up(struct client_conn *c, int quit)
{
	int fd = c->fd;
	if (quit) {
		client_cmd(c, "QUIT");
		io_flush(&c->io);
	}
	tls_end(&c->io);
	io_free(&c->io);
	close(fd);
}

void client_close_connections(void)
{
	for (int i = 0; i < CACHE_MAX; i++)
		if (cache[i].c) {
			client_hang_up(cache[i].c, 1);
			free(cache[i].c);
			cache[i].c = NULL;
		}
}

static void keep(const char *key, struct client_conn *c)
{
	if (c->unsynced) { /* its next reply may be an old one */
		client_hang_up(c, 1);
		return;
	}
	int slot = 0;
	for (int i = 0; i < CACHE_MAX; i++)
		if (!cache[i].c) {
			slot = i;
			break;
		} else if (i == CACHE_MAX - 1) {
			client_hang_up(cache[0].c, 1); /* the oldest */
			free(cache[0].c);
			memmove(cache, cache + 1, (CACHE_MAX - 1) * sizeof *cache);
			cache[CACHE_MAX - 1].c = NULL;
			slot = CACHE_MAX - 1;
		}
	fmt_snprintf(cache[slot].key, sizeof cache[slot].key, "%s", key);
	cache[slot].c = xmalloc(sizeof *c);
	*cache[slot].c = *c;
}

/* A kept connection to key, reset for a new transaction (RSET), taken out
 * of the cache; NULL when there is none or it no longer answers. */
static struct client_conn *reuse(const char *key)
{
	for (int i = 0; i < CACHE_MAX; i++) {
		if (!cache[i].c || strcmp(cache[i].key, key))
			continue;
		struct client_conn *c = cache[i].c;
		cache[i].c = NULL;
		struct buf t = {0};
		client_cmd(c, "RSET");
		int ok = io_flush(&c->io) == 0 && client_read_reply(c, &t) == 250;
		buf_free(&t);
		if (ok)
			return c;
		client_hang_up(c, 0);
		free(c);
		return NULL;
	}
	return NULL;
}

static void deliver(struct client_job *j);

void client_deliver(struct client_job *j)
{
	j->conv_state = 0;
	j->sessions = 0;
	deliver(j);
	if (j->conv_state > 0)
		close(j->conv.fd);
}

/* The timeouts of j's destination, in milliseconds: its [relay]'s, or
 * the defaults for hosts and MX. */
int client_connect_ms(const struct client_job *j)
{
	return (int)(j->relay ? j->relay->v[RELAY_CONNECT_TIMEOUT].n : 30) * 1000;
}

int client_reply_ms(const struct client_job *j)
{
	return (int)(j->relay ? j->relay->v[RELAY_TIMEOUT].n : 300) * 1000;
}

int client_conn_open(struct client_job *j, const struct client_cand *c,
		     int n, int *next, struct client_conn *conn,
		     struct reply *why)
{
	int lmtp = j->relay && j->relay->v[RELAY_PROTOCOL].n == RELAY_LMTP;
	int mode = j->relay ? (int)j->relay->v[RELAY_TLS].n : RTLS_OPPORTUNISTIC;
	int in_clear = 0;
	/* the session limit is an MX list's; a relay's list is tried whole */
	while (*next < n &&
	       (j->kind == T_RELAY || j->sessions < CLIENT_MAX_SESSIONS)) {
		const struct client_cand *cd = &c[*next];
		char ip[INET6_ADDRSTRLEN + 8], reason[256], port[8] = "";
		int p = 0;
		*conn = (struct client_conn){.lmtp = lmtp,
					     .tls_mode = in_clear ? RTLS_NO : mode,
					     .fd = -1};
		conn->host = j->relay ? j->relay->v[RELAY_NAME].s : cd->host;
		if (cd->ss.ss_family == AF_UNIX) {
			fmt_snprintf(conn->name, sizeof conn->name, "%s", cd->host);
		} else {
			if (net_sockaddr_text(&cd->ss, ip, sizeof ip, &p) < 0)
				fmt_snprintf(ip, sizeof ip, "?");
			fmt_snprintf(conn->name, sizeof conn->name, "%s[%s]",
				 cd->host, ip);
		}
		/* which of one host's servers is down: the port, when it is
		 * not the protocol's (Postfix's smtp(8) names it always) */
		if (p && p != (lmtp ? 24 : 25))
			fmt_snprintf(port, sizeof port, ":%d", p);
		conn->fd = client_connect(&cd->ss, cd->len, client_connect_ms(j),
					  reason, sizeof reason);
		if (conn->fd < 0) {
			reply_set(why, 451, ESC_NO_ANSWER_FROM_HOST,
				  "connect to %s%s: %s", conn->name, port, reason);
			in_clear = 0;
			++*next;
			continue;
		}
		io_init_socket(&conn->io, conn->fd,
			j->open_ms ? j->open_ms : client_reply_ms(j));
		int r = open_session(j, conn, why);
		conn->io.timeout_ms = client_reply_ms(j);
		if (r == 0) {
			/* a session counts once greeted, EHLO and TLS done,
			 * as with Postfix's smtp_mx_session_limit */
			j->sessions++;
			return 0;
		}
		client_hang_up(conn, 0);
		if (r == LOOPS_BACK)
			return -1; /* no other address can help */
		if (r == AGAIN_IN_CLEAR && !in_clear) {
			/* opportunistic TLS that failed: this address again,
			 * without it, as Postfix does, and said */
			log_event(LOG_L_WARNING, "event", "tls-fallback", "relay",
				  conn->name, "reason", why->text, NULL);
			in_clear = 1;
			continue;
		}
		in_clear = 0;
		++*next;
	}
	if (!why->code)
		reply_set(why, 451, ESC_NO_ANSWER_FROM_HOST,
			  "no address to deliver to");
	return -1;
}

static void deliver(struct client_job *j)
{
	struct client_cand *c = xcalloc(CLIENT_MAX_CANDS, sizeof *c);
	int n = 0;
	struct reply err = {0};
	j->remote[0] = 0;
	for (unsigned i = 0; i < j->n; i++)
		memset(&j->r[i].r, 0, sizeof j->r[i].r);
	if (client_candidates(j, c, &n, &err) < 0) {
		set_all(j, &err);
		free(c);
		return;
	}
	scan_body(j->m, &j->wire_size, &j->has8bit, &j->hdr8bit);
	if (j->has8bit && !j->m->binary)
		j->eightbit = 1;
	char key[300];
	fmt_snprintf(key, sizeof key, "%d %s", (int)j->kind,
		 j->relay ? j->relay->name : j->arg);
	if (!j->relay)
		ascii_lower_str(key);
	struct client_conn *kept = caching ? reuse(key) : NULL;
	if (kept) {
		struct reply lost = {0};
		int r = transaction(j, kept, &lost);
		if (r == 0) {
			keep(key, kept);
			free(kept);
			free(c);
			return;
		}
		/* the kept connection failed: the others start afresh */
		client_hang_up(kept, 0);
		free(kept);
	}
	struct reply why = {0};
	struct client_conn conn;
	for (int next = 0; client_conn_open(j, c, n, &next, &conn, &why) == 0;
	     next++) {
		int r = transaction(j, &conn, &why);
		if (r == 0 && caching) {
			keep(key, &conn);
			break;
		}
		client_hang_up(&conn, r == 0);
		if (r != NEXT_ADDRESS)
			break;
	}
	set_all(j, &why);
	free(c);
}
