/*
 * data.c - the message bytes of DATA and BDAT (see data.h).
 *
 * Owns: the named-state byte machine (qmail's blast(): start of line,
 * text, saw CR, saw dot, saw dot CR), the store's size accounting and
 * 64 KiB write buffer, the header watch, and the Received header text.
 *
 * Never: holds a message in memory beyond the write buffer, reads the
 * connection, replies or logs.
 */
#include "data.h"
#include "addr.h"
#include "fmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WBUF_SIZE 65536

/* ------------------------------------------------------------------ */
/* The byte machine                                                    */

enum { D_BOL, D_TEXT, D_CR, D_DOT, D_DOTCR };

/* The length of the run at p that holds no CR and no LF: bytes that the
 * machine copies unchanged in D_TEXT, found with memchr rather than one
 * state step a byte (a 4 KiB message: 74 000 instructions -> 10 000). */
static size_t text_run(const char *p, size_t n)
{
	const char *cr = memchr(p, '\r', n);
	size_t end = cr ? (size_t)(cr - p) : n;
	const char *lf = memchr(p, '\n', end);
	return lf ? (size_t)(lf - p) : end;
}

size_t data_feed(struct datamachine *dm, const char *in, size_t n, char *out,
		 size_t *outlen)
{
	size_t o = *outlen;
	for (size_t i = 0; i < n; i++) {
		if (dm->state == D_TEXT) {
			size_t run = text_run(in + i, n - i);
			memcpy(out + o, in + i, run);
			o += run;
			i += run;
			if (i == n)
				break;
		}
		char c = in[i];
		switch (dm->state) {
		case D_BOL:
			if (c == '.' && !dm->bdat) {
				dm->state = D_DOT;
				break;
			}
			/* fall through */
		case D_TEXT:
			if (c == '\r') {
				dm->state = D_CR;
			} else if (c == '\n') {
				/* a bare LF ends a line only when normalizing,
				 * and never makes the next "." the end */
				dm->saw_bare = 1;
				out[o++] = '\n';
				dm->state = dm->reject_bare ? D_TEXT : D_BOL;
				dm->after_bare = 1;
			} else {
				out[o++] = c;
				dm->state = D_TEXT;
			}
			break;
		case D_CR:
			if (c == '\n') {
				out[o++] = '\n';
				dm->state = D_BOL;
				dm->after_bare = 0;
			} else {
				/* a bare CR becomes a space */
				dm->saw_bare = 1;
				out[o++] = ' ';
				if (c != '\r') {
					out[o++] = c;
					dm->state = D_TEXT;
				}
			}
			break;
		case D_DOT:
			if (c == '\r') {
				dm->state = D_DOTCR;
			} else if (c == '\n') {
				/* ".\n" is content, never the end */
				dm->saw_bare = 1;
				out[o++] = '.';
				out[o++] = '\n';
				dm->state = dm->reject_bare ? D_TEXT : D_BOL;
				dm->after_bare = 1;
			} else {
				out[o++] = c; /* the stuffed dot is dropped */
				dm->state = D_TEXT;
			}
			break;
		case D_DOTCR:
			if (c == '\n' && dm->after_bare) {
				/* <LF>.<CR><LF>: content, not the end (SPEC 5) */
				out[o++] = '.';
				out[o++] = '\n';
				dm->state = D_BOL;
				dm->after_bare = 0;
				break;
			}
			if (c == '\n') {
				dm->done = 1;
				*outlen = o;
				return i + 1;
			}
			dm->saw_bare = 1;
			out[o++] = ' ';
			if (c == '\r') {
				dm->state = D_CR;
			} else {
				out[o++] = c;
				dm->state = D_TEXT;
			}
			break;
		}
	}
	*outlen = o;
	return n;
}

void data_finish_chunks(struct datamachine *dm, char *out, size_t *outlen)
{
	if (dm->state != D_CR)
		return;
	dm->saw_bare = 1;
	out[(*outlen)++] = ' ';
	dm->state = D_TEXT;
}

/* ------------------------------------------------------------------ */
/* The header section                                                  */

/* One complete header line (without its line end). */
static void header_line(struct headerwatch *hw, const char *l, size_t n)
{
	if (n >= 9 && !strncasecmp(l, "Received:", 9)) {
		hw->received++;
	} else if (n >= 13 && !strncasecmp(l, "Delivered-To:", 13) &&
		   hw->ndelivered < DATA_MAX_DELIVERED_TO) {
		const char *v = l + 13;
		size_t vn = n - 13;
		while (vn && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
		hw->delivered_to = xrealloc(hw->delivered_to,
					    (hw->ndelivered + 1) *
						    sizeof *hw->delivered_to);
		hw->delivered_to[hw->ndelivered++] = xstrndup(v, vn);
	}
}

/* The field held whole: judged, and the line free for the next. */
static void held_field(struct headerwatch *hw)
{
	hw->held = 0;
	header_line(hw, hw->line, hw->len);
	hw->len = 0;
}

/* A field is judged once unfolded (RFC 5322 2.2.3): at its last line's
 * end, seen when the next line does not begin with white space. */
void headers_watch(struct headerwatch *hw, const char *p, size_t n)
{
	for (size_t i = 0; i < n && hw->on; i++) {
		if (hw->held && (p[i] == ' ' || p[i] == '\t')) {
			hw->held = 0;
			if (hw->len < sizeof hw->line)
				hw->line[hw->len++] = ' ';
			continue; /* the field goes on */
		}
		if (hw->held)
			held_field(hw);
		if (p[i] != '\n') {
			if (hw->len < sizeof hw->line)
				hw->line[hw->len++] = p[i];
			continue;
		}
		if (hw->len && hw->line[hw->len - 1] == '\r')
			hw->len--;
		if (hw->len == 0)
			hw->on = 0; /* the empty line ends the headers */
		else
			hw->held = 1;
	}
}

int headers_delivered_to(const struct headerwatch *hw, const char *rcpt)
{
	for (unsigned i = 0; i < hw->ndelivered; i++)
		if (addr_part_eq(hw->delivered_to[i], rcpt))
			return 1;
	return 0;
}

void headers_reset(struct headerwatch *hw)
{
	for (unsigned i = 0; i < hw->ndelivered; i++)
		free(hw->delivered_to[i]);
	free(hw->delivered_to);
	hw->delivered_to = NULL;
	hw->ndelivered = 0;
	hw->received = 0;
	hw->on = 0;
	hw->len = 0;
	hw->held = 0;
}

/* ------------------------------------------------------------------ */
/* The store                                                           */

/* Writes p to the file; on failure remembers why and returns -1. */
static int store_out(struct datastore *ds, const char *p, size_t n)
{
	if (!ds->failed && write_all(ds->fd, p, n) < 0) {
		ds->failed = 1;
		ds->err = errno;
	}
	if (ds->failed)
		return -1;
	if (ds->tee && n)
		ds->tee(ds->tee_arg, p, n);
	return 0;
}

static void store_bytes(struct datastore *ds, const char *p, size_t n)
{
	ds->stored += n;
	if (ds->fd < 0) /* nothing will read it: count only */
		return;
	if (!ds->wbuf)
		ds->wbuf = xmalloc(WBUF_SIZE); /* only what is stored */
	if (ds->wlen + n > WBUF_SIZE) {
		if (store_out(ds, ds->wbuf, ds->wlen) < 0)
			return;
		ds->wlen = 0;
	}
	if (n > WBUF_SIZE) {
		store_out(ds, p, n);
		return;
	}
	memcpy(ds->wbuf + ds->wlen, p, n);
	ds->wlen += n;
}

/* ------------------------------------------------------------------ */
/* Submission fix-ups (RFC 6409 8)                                     */

/* Quoted, without control characters: a name cannot add a field. */
static void add_phrase(struct buf *b, const char *name)
{
	buf_addc(b, '"');
	for (; *name; name++) {
		if ((unsigned char)*name < ' ' || *name == 127)
			continue;
		if (*name == '"' || *name == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *name);
	}
	buf_adds(b, "\" ");
}

void data_fixup_fields(struct buf *b, unsigned have, const char *from,
		       const char *name, const char *id, const char *host,
		       const char *eol)
{
	if (!(have & FIX_DATE)) {
		char date[64];
		date_rfc5322(time(NULL), date, sizeof date);
		buf_printf(b, "Date: %s%s", date, eol);
	}
	if (!(have & FIX_MSGID))
		buf_printf(b, "Message-ID: <%s@%s>%s", id, host, eol);
	if (!(have & FIX_FROM)) {
		buf_adds(b, "From: ");
		if (name && name[0])
			add_phrase(b, name);
		if (from[0])
			buf_printf(b, "<%s>%s", from, eol);
		else
			buf_printf(b, "<MAILER-DAEMON@%s>%s", host, eol);
	}
}

/* FX_HOLD: in an address field, held; FX_HELD_BOL: at the start of the
 * line after it, which may continue it. */
enum { FX_BOL, FX_NAME, FX_PASS, FX_DROP, FX_HOLD, FX_HELD_BOL, FX_DONE };

static void fix_add_fields(struct datastore *ds)
{
	struct submitfix *f = &ds->fix;
	struct buf b = {0};
	data_fixup_fields(&b, f->have, f->from, NULL, f->id, f->host,
			  f->crlf ? "\r\n" : "\n");
	if (b.len)
		store_bytes(ds, b.s, b.len);
	buf_free(&b);
	f->state = FX_DONE;
}

/* The name held, with a colon after it, into line (sizeof f->name + 1
 * bytes); its length. */
static size_t fix_name_line(const struct submitfix *f, char *line)
{
	memcpy(line, f->name, f->nlen);
	line[f->nlen] = ':';
	return f->nlen + 1;
}

/* Which field the name held is: FIX_* for those the fix-ups add, -1 for
 * those dropped, 0 for any other; blanks before the colon are the
 * obsolete syntax (RFC 5322 4.5) of the same field. Dropped: Bcc and
 * Resent-Bcc (RFC 5322 3.6.3, 3.6.6), and Return-Path (RFC 5321 4.4:
 * the originator sends none, the final delivery adds it), as Postfix's
 * cleanup drops them. */
static int fix_field(const struct submitfix *f)
{
	static const struct {
		const char *name;
		int which;
	} names[] = {{"bcc", -1},	  {"resent-bcc", -1},
		     {"return-path", -1}, {"date", FIX_DATE},
		     {"message-id", FIX_MSGID}, {"from", FIX_FROM}};
	char line[sizeof f->name + 1];
	size_t k = hdr_field_name(line, fix_name_line(f, line));
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (k && strlen(names[i].name) == k &&
		    !strncasecmp(f->name, names[i].name, k))
			return names[i].which;
	return 0;
}

static void fix_put(void *arg, const char *p, size_t n)
{
	store_bytes(arg, p, n);
}

/* The held address field, its local parts alone completed (as
 * --inject's: Postfix's append_at_myorigin for local submissions). */
static void fix_release(struct datastore *ds)
{
	struct submitfix *f = &ds->fix;
	addr_field_qualify(f->held.s, f->held.len, f->host, fix_put, ds);
	f->held.len = 0;
}

/* More of the held field; past DATA_FIX_HELD_MAX it goes as it is. */
static void fix_hold(struct datastore *ds, const char *p, size_t n)
{
	struct submitfix *f = &ds->fix;
	if (f->held.len + n <= DATA_FIX_HELD_MAX) {
		buf_add(&f->held, p, n);
		return;
	}
	store_bytes(ds, f->held.s, f->held.len);
	store_bytes(ds, p, n);
	f->held.len = 0;
	f->state = FX_PASS;
}

/* A line's start is a field name (what it is decides the state). */
static void fix_name_known(struct datastore *ds)
{
	struct submitfix *f = &ds->fix;
	int which = fix_field(f);
	if (which < 0) {
		f->drop = 1;
		f->state = FX_DROP;
		return;
	}
	f->have |= (unsigned)which;
	char line[sizeof f->name + 1];
	size_t n = fix_name_line(f, line);
	if (addr_field_has_addresses(line, n)) {
		buf_add(&f->held, line, n);
		f->state = FX_HOLD;
		return;
	}
	store_bytes(ds, line, n);
	f->state = FX_PASS;
}

/* The held name of a field we look for is followed by more blanks than
 * the buffer holds: one held stands for them all. */
static int fix_blanks_squeeze(const struct submitfix *f, char c)
{
	char last = f->name[f->nlen - 1];
	if ((c != ' ' && c != '\t') || (last != ' ' && last != '\t'))
		return 0;
	char line[sizeof f->name + 1];
	return fix_field(f) != 0 ||
	       addr_field_has_addresses(line, fix_name_line(f, line));
}

/* Whether the line begun in the name buffer cannot be a field: blanks
 * inside its name (only blanks may stand between name and colon, RFC
 * 5322 4.5), or a colon after no valid name. */
static int fix_not_a_field(const struct submitfix *f, char c)
{
	if (c == ':') {
		char line[sizeof f->name + 1];
		return hdr_field_name(line, fix_name_line(f, line)) == 0;
	}
	if (c == ' ' || c == '\t')
		return 0;
	return memchr(f->name, ' ', f->nlen) || memchr(f->name, '\t', f->nlen);
}

/* A line that is no field ends the header, as --inject's read_header
 * takes it: the fix-ups' fields and a blank line go before it. */
static void fix_text_line(struct datastore *ds, char c)
{
	struct submitfix *f = &ds->fix;
	fix_add_fields(ds);
	store_bytes(ds, f->crlf ? "\r\n" : "\n", f->crlf ? 2 : 1);
	store_bytes(ds, f->name, f->nlen);
	store_bytes(ds, &c, 1);
}

/* One byte at a line's start, or of a field name. */
static void fix_byte(struct datastore *ds, char c)
{
	struct submitfix *f = &ds->fix;
	if (f->state == FX_HELD_BOL) {
		if (c == ' ' || c == '\t') { /* the held field goes on */
			fix_hold(ds, &c, 1);
			if (f->state == FX_HELD_BOL)
				f->state = FX_HOLD;
			return;
		}
		fix_release(ds);
		f->state = FX_BOL;
	}
	int cr = f->state == FX_NAME && f->nlen == 1 && f->name[0] == '\r';
	if ((f->state == FX_BOL && c == '\n') || (cr && c == '\n')) {
		fix_add_fields(ds); /* the blank line ends the header */
		store_bytes(ds, cr ? "\r\n" : "\n", cr ? 2 : 1);
	} else if (f->state == FX_BOL && (c == ' ' || c == '\t')) {
		if (!f->drop) /* a continuation: of its field's fate */
			store_bytes(ds, &c, 1);
		f->state = f->drop ? FX_DROP : FX_PASS;
	} else if (f->state == FX_BOL) {
		f->drop = 0;
		f->name[0] = c;
		f->nlen = 1;
		f->state = FX_NAME;
	} else if (c == '\n' || fix_not_a_field(f, c)) {
		fix_text_line(ds, c);
	} else if (c == ':') {
		fix_name_known(ds);
	} else if (f->nlen == sizeof f->name && fix_blanks_squeeze(f, c)) {
		/* "Bcc" and blanks: the colon may still come */
	} else if (f->nlen == sizeof f->name) {
		store_bytes(ds, f->name, f->nlen); /* no field we look for */
		store_bytes(ds, &c, 1);
		f->state = FX_PASS;
	} else {
		f->name[f->nlen++] = c;
	}
}

/* The header section through the fix-ups; the rest as it is. */
static void fix_write(struct datastore *ds, const char *p, size_t n)
{
	struct submitfix *f = &ds->fix;
	size_t i = 0;
	while (i < n && f->state != FX_DONE) {
		if (f->state == FX_PASS || f->state == FX_DROP ||
		    f->state == FX_HOLD) {
			const char *nl = memchr(p + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - p) + 1 : n;
			int held = f->state == FX_HOLD;
			if (held)
				fix_hold(ds, p + i, end - i);
			else if (f->state == FX_PASS)
				store_bytes(ds, p + i, end - i);
			if (nl)
				f->state = held && f->state == FX_HOLD
						   ? FX_HELD_BOL
						   : FX_BOL;
			i = end;
			continue;
		}
		fix_byte(ds, p[i++]);
	}
	if (i < n)
		store_bytes(ds, p + i, n - i);
}

void data_store_end(struct datastore *ds)
{
	if (ds->hw.held) /* a message that is all header: its last field */
		held_field(&ds->hw);
	struct submitfix *f = &ds->fix;
	if (!f->on || f->state == FX_DONE || ds->failed || ds->toobig)
		return;
	int unended = f->state == FX_NAME || f->state == FX_PASS ||
		   f->state == FX_HOLD;
	if (f->state == FX_HOLD || f->state == FX_HELD_BOL)
		fix_release(ds);
	if (f->state == FX_NAME)
		store_bytes(ds, f->name, f->nlen);
	if (unended)
		store_bytes(ds, f->crlf ? "\r\n" : "\n", f->crlf ? 2 : 1);
	fix_add_fields(ds);
}

/* The octets of p as the client sent them: in text mail's store a line
 * ends in a newline alone. */
static uint64_t client_octets(const struct datastore *ds, const char *p,
			      size_t n)
{
	uint64_t c = n;
	const char *e = p + n;
	if (ds->lf_eol)
		for (; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
			c++;
	return c;
}

void data_store_write(struct datastore *ds, const char *p, size_t n)
{
	if (ds->failed || ds->toobig)
		return;
	if (ds->hw.on)
		headers_watch(&ds->hw, p, n);
	uint64_t c = client_octets(ds, p, n);
	if (c > ds->max || ds->counted > ds->max - c) {
		ds->toobig = 1;
		return;
	}
	ds->counted += c;
	ds->size += n;
	if (ds->fix.on)
		fix_write(ds, p, n);
	else
		store_bytes(ds, p, n);
}

void data_store_write_ours(struct datastore *ds, const char *p, size_t n)
{
	if (!ds->failed)
		store_bytes(ds, p, n);
}

int data_store_flush(struct datastore *ds)
{
	if (ds->fd < 0)
		return 0;
	if (!ds->failed)
		store_out(ds, ds->wbuf, ds->wlen);
	ds->wlen = 0;
	return ds->failed ? -1 : 0;
}

void data_store_reset(struct datastore *ds)
{
	ds->wlen = 0;
	ds->size = 0;
	ds->counted = 0;
	ds->stored = 0;
	ds->toobig = 0;
	ds->failed = 0;
	ds->err = 0;
	buf_free(&ds->fix.held);
	memset(&ds->fix, 0, sizeof ds->fix);
	headers_reset(&ds->hw);
}

void data_store_free(struct datastore *ds)
{
	data_store_reset(ds);
	free(ds->wbuf);
	ds->wbuf = NULL;
}

/* ------------------------------------------------------------------ */
/* The Received header                                                 */

/* The HELO name as a header may show it: printable ASCII, no parens. */
static void helo_for_header(const char *h, char *out, size_t n)
{
	size_t o = 0;
	for (; *h && o + 1 < n; h++) {
		unsigned char c = (unsigned char)*h;
		out[o++] = (c > 32 && c < 127 && c != '(' && c != ')' &&
			    c != ';' && c != '\\')
				   ? (char)c
				   : '?';
	}
	out[o] = 0;
}

const char *data_protocol(const char *greeting, int smtputf8, int tls,
			  int auth, char *out, size_t n)
{
	int helo = !strcmp(greeting, "HELO"), ehlo = !strcmp(greeting, "EHLO");
	const char *base = !strcmp(greeting, "LHLO") ? "LMTP"
			   : ehlo                    ? "ESMTP"
						     : "SMTP";
	fmt_snprintf(out, n, "%s%s%s%s", smtputf8 && !helo ? "UTF8" : "",
		 smtputf8 && ehlo ? base + 1 : base, tls ? "S" : "",
		 auth ? "A" : "");
	return out;
}

void data_received(struct buf *h, const struct received_info *ri)
{
	char date[64], helo[256];
	date_rfc5322(ri->when, date, sizeof date);
	helo_for_header(ri->helo && ri->helo[0] ? ri->helo : "unknown", helo,
			sizeof helo);
	const char *eol = ri->crlf ? "\r\n" : "\n";
	/* RFC 7208 9.1: above the Received field of this hop */
	for (const char *p = ri->spf; p && *p;) {
		size_t n = strcspn(p, "\n"); /* spf.c folds with "\n\t" */
		buf_printf(h, "%.*s%s", (int)n, p, eol);
		p += n + (p[n] == '\n');
	}
	if (ri->peer_is_pipe)
		buf_printf(h, "Received: from %s (local)%s", helo, eol);
	else if (strchr(ri->peer, ':'))
		buf_printf(h, "Received: from %s ([IPv6:%s])%s", helo, ri->peer,
			   eol);
	else
		buf_printf(h, "Received: from %s ([%s])%s", helo, ri->peer, eol);
	buf_printf(h, "\tby %s (postmaster) with %s id %s%s", ri->by,
		   ri->protocol, ri->id, eol);
	if (ri->rcpt)
		buf_printf(h, "\tfor <%s>; %s%s", ri->rcpt, date, eol);
	else
		buf_printf(h, "\t; %s%s", date, eol);
}
