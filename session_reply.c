/*
 * session_reply.c - the session's one reply function (SPEC 5: enhanced
 * status codes on every reply but the greeting, EHLO/HELO/LHLO, 354 and
 * 334; replies in order, the live proxy's that are due first).
 *
 * Owns: writing replies (single and multiline), refusing to send an
 * enhanced code of the wrong class, counting a failed command for the
 * dispatcher, escaping client bytes for replies and logs.
 *
 * Never: flushes on its own (the dialogue decides when a group's replies
 * go out) or writes client bytes unescaped.
 */
#include "session_state.h"
#include "log.h"
#include "proxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes one reply; dsn NULL for none. Text with '\n' becomes a
 * multiline reply. */
static void send_reply(struct session *s, int code, const char *dsn,
		       const char *text)
{
	struct buf out = {0};
	char fallback[ESC_LEN], too_many[ESC_LEN];
	/* replies go out in order: the target's that are due come first */
	if (s->px_pending)
		proxy_sync(s);
	if (dsn && dsn[0] != '0' + code / 100) {
		/* a class mismatch is a bug: never send it */
		log_event(LOG_L_ERR, "event", "bug", "reply", text, NULL);
		if (code < 400)
			esc_format(fallback, 2, ESC_OTHER);
		else
			esc_format(fallback, code < 500 ? 4 : 5,
				   ESC_OTHER_MAIL_SYSTEM_STATUS);
		dsn = fallback;
	}
	const char *p = text;
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		/* by hand: an EHLO reply alone has a dozen lines */
		char head[4] = {(char)('0' + code / 100 % 10),
				(char)('0' + code / 10 % 10),
				(char)('0' + code % 10), nl ? '-' : ' '};
		buf_add(&out, head, sizeof head);
		if (dsn) {
			buf_adds(&out, dsn);
			buf_addc(&out, ' ');
		}
		buf_add(&out, p, n);
		buf_add(&out, "\r\n", 2);
		if (!nl)
			break;
		p = nl + 1;
	}
	io_write(&s->io, out.s, out.len);
	/* 421 closes the channel (RFC 5321 4.2.2), whoever chose it: the
	 * session's own, a milter's or a policy service's */
	if (code == 421)
		s->quit = 1;
	/* RFC 5321 4.5.3.1.10: a client that sends too many recipients
	 * did nothing wrong; the dispatcher counts a failed command once */
	esc_for_code(too_many, 452, ESC_TOO_MANY_RECIPIENTS);
	if (code >= 400 && code != 421 &&
	    !(code == 452 && dsn && !strcmp(dsn, too_many)))
		s->failed = 1;
	buf_free(&out);
}

void reply(struct session *s, int code, enum esc e, const char *fmt, ...)
{
	struct buf text = {0};
	char dsn[ESC_LEN];
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&text, fmt, ap);
	va_end(ap);
	esc_for_code(dsn, code, e);
	send_reply(s, code, e == ESC_NONE ? NULL : dsn, text.s ? text.s : "");
	buf_free(&text);
}

void reply_dsn(struct session *s, int code, const char *dsn, const char *fmt,
	       ...)
{
	struct buf text = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&text, fmt, ap);
	va_end(ap);
	send_reply(s, code, dsn, text.s ? text.s : "");
	buf_free(&text);
}

/* Client bytes for a reply or a log line (a ring of a few buffers), at
 * most ESC_MAX characters once escaped: a control byte takes four, and a
 * reply line has 512 octets (RFC 5321 4.5.3.1.5). */
#define ESC_MAX 200
const char *esc(const char *s, size_t n)
{
	static struct buf ring[4];
	static int next;
	struct buf *b = &ring[next++ % 4];
	if (n > ESC_MAX)
		n = ESC_MAX;
	for (;;) {
		b->len = 0;
		if (b->s)
			b->s[0] = 0; /* nothing to add must not show old text */
		buf_add_escaped(b, s, n);
		if (b->len <= ESC_MAX)
			break;
		n = n * ESC_MAX / b->len; /* fewer bytes, until it fits */
	}
	if (!b->s)
		buf_adds(b, "");
	return b->s;
}

void flush(struct session *s)
{
	io_flush(&s->io);
}
