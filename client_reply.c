/*
 * client_reply.c - the onward client's replies (see client_conn.h):
 * reading one within its timeout, a refusal a peer sent before it went,
 * and a peer's reply as a recipient's verdict, its enhanced code checked
 * and its text made safe for logs, reports and the proxy's replies.
 */
#include "client_conn.h"
#include "fmt.h"
#include "io.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The text of a reply that is kept; lines past it are read and dropped. */
#define REPLY_TEXT_MAX 16384

/* Reads one reply, all of it within one timeout (a peer that trickles
 * continuation lines meets it as a silent one does); lines (without
 * "NNN-") joined by '\n' into text, at most REPLY_TEXT_MAX of it.
 * Returns the code, -1 when the connection broke or the time ran out, or
 * -2 when a line came that is no reply (a protocol error of the peer's). */
int client_read_reply(struct client_conn *c, struct buf *text)
{
	text->len = 0;
	buf_adds(text, "");
	long long deadline = io_now_ms() + c->io.timeout_ms;
	for (;;) {
		char line[1024];
		size_t len;
		int bare;
		enum io_status st = io_getline_until(&c->io, deadline, line,
						     sizeof line - 1, &len,
						     &bare);
		c->timed_out = st == IO_TIMEOUT;
		if (st != IO_OK && st != IO_TOOLONG)
			return -1;
		line[len] = 0;
		if (len < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
			return -2;
		if (text->len + len < REPLY_TEXT_MAX) {
			if (text->len)
				buf_addc(text, '\n');
			buf_adds(text, len > 4 ? line + 4 : "");
		}
		if (len == 3 || line[3] == ' ')
			return atoi(line);
	}
}

int client_early_refusal(struct client_conn *c, struct buf *text)
{
	if (!io_input_pending(&c->io))
		return -1;
	/* what the peer said before it went is in our input already, and
	 * ours to read although it can hear us no more (the io refuses to
	 * read past a failed write: nothing is written here) */
	int wait = c->io.timeout_ms;
	enum io_status out = c->io.wstatus;
	c->io.timeout_ms = EARLY_REPLY_MS;
	c->io.wstatus = IO_OK;
	/* BDAT chunks acknowledged and not yet read come before it; all of
	 * them within EARLY_REPLY_MS, however many 2xx a peer streams */
	long long end = io_now_ms() + EARLY_REPLY_MS;
	int code;
	do
		code = client_read_reply(c, text);
	while (code >= 200 && code < 300 && io_input_pending(&c->io) &&
	       io_now_ms() < end);
	c->io.timeout_ms = wait;
	c->io.wstatus = out;
	c->unsynced = 1;
	return code >= 400 && code != 421 ? code : -1;
}

/* Why the last reply did not come: for the reasons logged and queued. */
const char *client_lost(const struct client_conn *c)
{
	return c->timed_out ? "timed out" : "lost connection";
}

/* A peer's reply as a target's reply: its enhanced code when it gives
 * one of the right class, else a default. */
void client_peer_reply(struct reply *r, int code, const char *text,
		       const char *host)
{
	client_peer_reply_esc(r, code, text, host, ESC_OTHER);
}

/* A reply that is no verdict where a verdict is due (a 3xx to RCPT or
 * to the data: RFC 5321 4.3.2 allows it only to DATA) is the peer's
 * protocol error, a temporary failure (as Postfix's smtp_chat.c). */
void client_peer_refusal(struct reply *r, int code, const char *text,
			 const char *host)
{
	if (code < 400)
		client_peer_reply_esc(r, 451, text, host,
				      ESC_OTHER_PROTOCOL_STATUS);
	else
		client_peer_reply(r, code, text, host);
}

/* Digits of one RFC 3463 subject or detail: 1 to 3 of them; 0 when
 * there are none or too many. */
static size_t esc_part(const char *t)
{
	size_t k = 0;
	while (k < 4 && t[k] >= '0' && t[k] <= '9')
		k++;
	return k <= 3 ? k : 0;
}

/* The length of the enhanced code that starts text, when it is one of
 * RFC 3463 2's form (class "." subject "." detail) and of the class of
 * code, followed by a space or the end; else 0 (a "5...." or
 * "5.1.1.1.1" must not reach a DSN's Status field). */
static size_t peer_esc_len(const char *t, int code)
{
	if (t[0] != '0' + code / 100 || t[1] != '.')
		return 0;
	size_t a = esc_part(t + 2);
	if (!a || t[2 + a] != '.')
		return 0;
	size_t b = esc_part(t + 3 + a);
	size_t k = 3 + a + b;
	return b && (t[k] == ' ' || !t[k]) ? k : 0;
}

void client_peer_reply_esc(struct reply *r, int code, const char *text,
			   const char *host, enum esc dflt)
{
	char dsn[ESC_LEN];
	const char *t = text;
	size_t k = code >= 200 && code < 600 && code / 100 != 3
			   ? peer_esc_len(t, code)
			   : 0;
	if (k) {
		memcpy(dsn, t, k);
		dsn[k] = 0;
		t += k;
		while (*t == ' ')
			t++;
	} else {
		esc_for_code(dsn, code, dflt);
	}
	r->code = code;
	fmt_snprintf(r->dsn, sizeof r->dsn, "%s", dsn);
	/* the peer's text goes into logs, --queue, bounces and the proxy's
	 * replies: one line, controls and invalid UTF-8 escaped (a CR there
	 * once started a field of a bounce's report) */
	struct buf b = {0}, line = {0};
	buf_printf(&b, "%s said: ", host);
	for (const char *p = t; *p; p++)
		buf_addc(&line, *p == '\n' ? ' ' : *p);
	buf_add_escaped(&b, line.s ? line.s : "", line.len);
	fmt_snprintf(r->text, sizeof r->text, "%s", b.s);
	buf_free(&line);
	buf_free(&b);
}
