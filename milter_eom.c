/*
 * milter_eom.c - the end of a message with milters (see milter.h,
 * milter_end_of_message).
 *
 * Owns: reading the stored message as milters want it (header fields
 * name and value, body chunks of at most 65535 bytes with CRLF line
 * ends), the modifications they ask for at its end, and writing the
 * modified message to a new unlinked file: inserted, changed, deleted
 * and added header fields, a replaced body; changes of sender and
 * recipients applied to the session's envelope.
 *
 * Never: changes the file it was given, holds the message in memory (a
 * header field a milter sees is cut at FIELD_MAX; the modifications of
 * one message are bounded by MODS_MAX and MODS_BYTES, a replaced body
 * with the header shown by max-message-size, and all of them by one
 * content-timeout), or applies a modification of a message that was then
 * refused.
 */
#include "fmt.h"
#include "session_state.h"
#include "milter_impl.h"
#include "handoff.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RD_SIZE 65536
#define FIELD_MAX 65536         /* of a field's text a milter sees */
#define FIELD_LINE_PEEK 998     /* where a field's colon must be */
#define MODS_MAX 10000
#define MODS_BYTES (4u << 20)

/* A buffered reader of the message file. */
struct rd {
	int fd;
	off_t off;  /* file offset of buf[0] */
	char *buf;
	size_t pos, len;
	uint64_t lines; /* consumed */
	int eof, err;
};

static void rd_init(struct rd *rd, int fd, off_t off)
{
	*rd = (struct rd){.fd = fd, .off = off, .buf = xmalloc(RD_SIZE)};
}

/* Has at least need bytes at pos unless the file ends first. */
static void rd_ensure(struct rd *rd, size_t need)
{
	if (rd->len - rd->pos >= need || rd->eof)
		return;
	memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
	rd->off += (off_t)rd->pos;
	rd->len -= rd->pos;
	rd->pos = 0;
	while (rd->len < need && rd->len < RD_SIZE && !rd->eof) {
		ssize_t r = pread(rd->fd, rd->buf + rd->len, RD_SIZE - rd->len,
				  rd->off + (off_t)rd->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rd->eof = 1;
			rd->err = r < 0;
		} else {
			rd->len += (size_t)r;
		}
	}
}

static off_t rd_tell(const struct rd *rd)
{
	return rd->off + (off_t)rd->pos;
}

/* Consumes one line, appending at most cap bytes of it to text. */
static void rd_line(struct rd *rd, struct buf *text, size_t cap)
{
	for (;;) {
		rd_ensure(rd, 1);
		if (rd->pos == rd->len)
			return;
		char *p = rd->buf + rd->pos;
		size_t avail = rd->len - rd->pos;
		char *lf = memchr(p, '\n', avail);
		size_t k = lf ? (size_t)(lf - p) + 1 : avail;
		if (text && text->len < cap)
			buf_add(text, p, k < cap - text->len ? k : cap - text->len);
		rd->pos += k;
		if (lf) {
			rd->lines++;
			return;
		}
	}
}

/* What starts at the reader: a header field (hdr_field_name(), as
 * inject.c reads one), the blank line after the header, or something
 * else (the body without a blank line). */
enum { AT_FIELD, AT_BLANK, AT_BODY };
static int rd_what(struct rd *rd)
{
	rd_ensure(rd, FIELD_LINE_PEEK);
	const char *p = rd->buf + rd->pos;
	size_t n = rd->len - rd->pos;
	if (n == 0)
		return AT_BODY;
	if (p[0] == '\n' || (n > 1 && p[0] == '\r' && p[1] == '\n'))
		return AT_BLANK;
	return hdr_field_name(p, n) ? AT_FIELD : AT_BODY;
}

/* One header field: its bytes [start, end) in the file, and its text
 * (cut at FIELD_MAX) with line ends removed and continuation lines joined
 * by "\n", as Sendmail sends them. */
struct field {
	off_t start, end;
	struct buf text;
	size_t colon; /* where ':' is in text */
};

/* Where each of our own header fields starts in a file, in ascending
 * order: no milter sees or changes them. A milter may insert fields above
 * and between them, so after a rewrite they need not be at the top nor
 * together; a field a milter inserted is never ours. As many as the
 * fields we put on top (PREPEND_MAX bounds a policy service's). */
struct ours {
	off_t *at;
	unsigned n, cap;
};

static void ours_add(struct ours *o, off_t start)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 8;
		o->at = xrealloc(o->at, o->cap * sizeof *o->at);
	}
	o->at[o->n++] = start;
}

/* Whether f is ours; *next: the first of o not before the fields seen so
 * far (the fields are read in file order). */
static int is_ours(const struct ours *o, unsigned *next, const struct field *f)
{
	while (*next < o->n && o->at[*next] < f->start)
		++*next;
	return *next < o->n && o->at[*next] == f->start;
}

static void trim_eol(struct buf *b, size_t from)
{
	size_t w = from;
	for (size_t i = from; i < b->len; i++)
		if (b->s[i] != '\r' && b->s[i] != '\n')
			b->s[w++] = b->s[i];
	b->len = w;
	b->s[w] = 0;
}

static void rd_field(struct rd *rd, struct field *f)
{
	f->text.len = 0;
	buf_reserve(&f->text, 1);
	f->start = rd_tell(rd);
	rd_line(rd, &f->text, FIELD_MAX);
	trim_eol(&f->text, 0);
	for (;;) {
		rd_ensure(rd, 1);
		if (rd->pos == rd->len ||
		    (rd->buf[rd->pos] != ' ' && rd->buf[rd->pos] != '\t'))
			break;
		size_t at = f->text.len;
		if (at < FIELD_MAX)
			buf_addc(&f->text, '\n');
		rd_line(rd, &f->text, FIELD_MAX);
		trim_eol(&f->text, at + 1 <= f->text.len ? at + 1 : at);
	}
	f->end = rd_tell(rd);
	f->colon = strcspn(f->text.s, ":");
}

/* ------------------------------------------------------------------ */
/* Sending the message                                                 */

static enum milter_verdict send_header(struct session *s, struct mconn *m,
				       struct field *f, struct reply *r)
{
	struct milters *ms = s->milters;
	size_t nl = f->colon;
	while (nl && (f->text.s[nl - 1] == ' ' || f->text.s[nl - 1] == '\t'))
		nl--;
	const char *v = f->text.s + f->colon + (f->colon < f->text.len);
	if (!(m->proto & SMFIP_HDR_LEADSPC) && *v == ' ')
		v++;
	mp_begin(&ms->pkt, SMFIC_HEADER);
	buf_add(&ms->pkt, f->text.s, nl);
	buf_addc(&ms->pkt, 0);
	mp_put_str(&ms->pkt, v);
	return milter_event(s, m, -1, !(m->proto & SMFIP_NR_HDR),
			    STAGE_CONTENT, r);
}

/* The body from the reader to the end, LF made CRLF unless binary, in
 * chunks of at most MP_CHUNK bytes; stops early when the milter says
 * SMFIR_SKIP. */
/* One body chunk (in ms->pkt) and its answer; SMFIR_SKIP ends the body
 * for this milter. */
static enum milter_verdict body_chunk(struct session *s, struct mconn *m,
				      struct reply *r)
{
	struct milters *ms = s->milters;
	if (m->proto & SMFIP_NR_BODY)
		return milter_event(s, m, -1, 0, STAGE_CONTENT, r);
	char why[160], cmd;
	int t = milter_timeout(m, STAGE_CONTENT);
	if (mp_unasked(m->fd, why, sizeof why) ||
	    mp_send(m->fd, &ms->pkt, t, why, sizeof why) < 0)
		return milter_failed(s, m, why, r);
	if (milter_read_reply(m, &ms->in, t, &cmd, why, sizeof why) < 0)
		return milter_failed(s, m, why, r);
	if (cmd == SMFIR_SKIP) {
		ms->skip_body = 1;
		return MILTER_CONTINUE;
	}
	return milter_verdict(s, m, cmd, STAGE_CONTENT, r);
}

static enum milter_verdict send_body(struct session *s, struct mconn *m,
				     struct rd *rd, int binary,
				     struct reply *r)
{
	struct milters *ms = s->milters;
	const size_t full = 5 + MP_CHUNK - 1; /* room for one more CRLF */
	mp_begin(&ms->pkt, SMFIC_BODY);
	for (;;) {
		rd_ensure(rd, 1);
		int last = rd->pos == rd->len;
		while (rd->pos < rd->len && ms->pkt.len < full) {
			char c = rd->buf[rd->pos++];
			if (c == '\n' && !binary)
				buf_addc(&ms->pkt, '\r');
			buf_addc(&ms->pkt, c);
		}
		if (!last && ms->pkt.len < full)
			continue;
		if (ms->pkt.len == 5)
			return MILTER_CONTINUE;
		enum milter_verdict v = body_chunk(s, m, r);
		if (v != MILTER_CONTINUE || m->st != MC_ACTIVE || last ||
		    ms->skip_body)
			return v;
		mp_begin(&ms->pkt, SMFIC_BODY);
	}
}

/* The size of what the reader consumed since at (lines lines before),
 * its line ends counted as CRLF: the stored file has LF ones but for
 * BINARYMIME. */
static uint64_t crlf_size(const struct rd *rd, off_t at, uint64_t lines,
			  int binary)
{
	return (uint64_t)(rd_tell(rd) - at) + (binary ? 0 : rd->lines - lines);
}

/* Headers but ours, end of headers and body to m; the file is read
 * from in_off. *size: of the header but ours and the blank line after
 * it, line ends counted as CRLF. */
static enum milter_verdict send_message(struct session *s, struct mconn *m,
					int fd, off_t in_off,
					const struct ours *ours,
					uint64_t *size, struct reply *r)
{
	struct milters *ms = s->milters;
	struct rd rd;
	struct field f = {0};
	enum milter_verdict v = MILTER_CONTINUE;
	int binary = s->body == BODY_BINARYMIME;
	unsigned next = 0;
	rd_init(&rd, fd, in_off);
	*size = 0;
	while (v == MILTER_CONTINUE && m->st == MC_ACTIVE &&
	       rd_what(&rd) == AT_FIELD) {
		off_t at = rd_tell(&rd);
		uint64_t lines = rd.lines;
		rd_field(&rd, &f);
		if (is_ours(ours, &next, &f))
			continue;
		*size += crlf_size(&rd, at, lines, binary);
		if (!(m->proto & SMFIP_NOHDRS))
			v = send_header(s, m, &f, r);
	}
	if (v == MILTER_CONTINUE && m->st == MC_ACTIVE &&
	    !(m->proto & SMFIP_NOEOH)) {
		mp_begin(&ms->pkt, SMFIC_EOH);
		v = milter_event(s, m, SMFIM_EOH, !(m->proto & SMFIP_NR_EOH),
				 STAGE_CONTENT, r);
	}
	*size += 2;
	if (rd_what(&rd) == AT_BLANK)
		rd_line(&rd, NULL, 0);
	ms->skip_body = 0;
	if (v == MILTER_CONTINUE && m->st == MC_ACTIVE &&
	    !(m->proto & SMFIP_NOBODY))
		v = send_body(s, m, &rd, binary, r);
	buf_free(&f.text);
	free(rd.buf);
	return v;
}

/* ------------------------------------------------------------------ */
/* Modifications                                                       */

struct mod {
	char cmd;
	uint32_t index;
	char *name, *value; /* header name and value; an address; args */
};

struct mods {
	struct mod *v;
	unsigned n;
	size_t bytes;
	int body_fd;  /* the replaced body so far, or -1 */
	int body_cr;  /* the last chunk ended in a CR */
	int failed;
	/* the header the milter was shown and the replaced body so far, line
	 * ends counted as CRLF */
	uint64_t size;
};

static void mods_free(struct mods *md)
{
	for (unsigned i = 0; i < md->n; i++) {
		free(md->v[i].name);
		free(md->v[i].value);
	}
	free(md->v);
	if (md->body_fd >= 0)
		close(md->body_fd);
	memset(md, 0, sizeof *md);
	md->body_fd = -1;
}

/* A SMFIR_REPLBODY chunk appended to the new body, CRLF made LF and a
 * bare CR a space, as a client's (bare-newline): it must not reach the
 * store or the next hop. */
static int add_body(struct mods *md, const char *p, size_t n, int binary)
{
	if (md->body_fd < 0 && (md->body_fd = tmpfile_open()) < 0)
		return -1;
	struct buf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (md->body_cr && p[i] != '\n')
			buf_addc(&b, ' ');
		md->body_cr = !binary && p[i] == '\r';
		if (!md->body_cr)
			buf_addc(&b, p[i]);
	}
	int r = b.len ? write_all(md->body_fd, b.s, b.len) : 0;
	buf_free(&b);
	return r;
}

/* The two NUL-terminated strings of a packet (the second may be absent). */
static int two_strings(const char *p, size_t n, char **a, char **b)
{
	size_t k = strnlen(p, n);
	if (k == n)
		return -1;
	*a = xstrdup(p);
	size_t k2 = k + 1 < n ? strnlen(p + k + 1, n - k - 1) : 0;
	*b = k + 1 + k2 < n ? xstrndup(p + k + 1, k2) : NULL;
	return 0;
}

/* RFC 5322 2.2: printable ASCII but ':', at least one. */
static int is_field_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 127 || *s == ':')
			return 0;
	return 1;
}

/* Records one modification packet; -1 when it is malformed or not
 * allowed by the negotiated actions. */
static int add_mod(struct session *s, struct mconn *m, struct mods *md,
		   char cmd, const struct buf *in)
{
	static const struct {
		char cmd;
		uint32_t action;
		int indexed;
	} kinds[] = {
		{SMFIR_ADDHEADER, SMFIF_ADDHDRS, 0},
		{SMFIR_INSHEADER, SMFIF_ADDHDRS, 1},
		{SMFIR_CHGHEADER, SMFIF_CHGHDRS, 1},
		{SMFIR_ADDRCPT, SMFIF_ADDRCPT, 0},
		{SMFIR_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR, 0},
		{SMFIR_DELRCPT, SMFIF_DELRCPT, 0},
		{SMFIR_CHGFROM, SMFIF_CHGFROM, 0},
		{SMFIR_REPLBODY, SMFIF_CHGBODY, 0},
	};
	unsigned k = 0;
	while (k < sizeof kinds / sizeof *kinds && kinds[k].cmd != cmd)
		k++;
	if (k == sizeof kinds / sizeof *kinds || !(m->actions & kinds[k].action))
		return -1;
	if (cmd == SMFIR_REPLBODY)
		return add_body(md, in->s, in->len, s->body == BODY_BINARYMIME);
	if (md->n >= MODS_MAX || md->bytes + in->len > MODS_BYTES)
		return -1;
	struct mod mo = {.cmd = cmd};
	size_t skip = kinds[k].indexed ? 4 : 0;
	if (in->len < skip)
		return -1;
	if (skip)
		mo.index = mp_get_u32(in->s);
	if (two_strings(in->s + skip, in->len - skip, &mo.name, &mo.value) < 0)
		return -1;
	if ((cmd == SMFIR_ADDHEADER || cmd == SMFIR_INSHEADER ||
	     cmd == SMFIR_CHGHEADER) && (!mo.value || !is_field_name(mo.name))) {
		free(mo.name);
		free(mo.value);
		return -1;
	}
	md->v = xrealloc(md->v, (md->n + 1) * sizeof *md->v);
	md->v[md->n++] = mo;
	md->bytes += in->len;
	return 0;
}

/* The size of a SMFIR_REPLBODY chunk as the client's data is counted: a
 * line end as CRLF, whether the milter sent CRLF or LF (add_body() has
 * not yet taken the chunk: md->body_cr is the CR before it). */
static uint64_t body_size(const struct mods *md, const struct buf *in,
			  int binary)
{
	uint64_t n = in->len;
	for (size_t i = 0; i < in->len && !binary; i++)
		if (in->s[i] == '\n' && !(i ? in->s[i - 1] == '\r' : md->body_cr))
			n++;
	return n;
}

/* A milter's quarantine reason, escaped as peers' text is (it reaches
 * --queue and mailq on an administrator's terminal, and the envelope):
 * no control bytes, no invalid UTF-8. */
static void quarantine_reason(char *out, size_t n, const char *why)
{
	struct buf b = {0};
	buf_add_escaped(&b, why, strlen(why));
	fmt_snprintf(out, n, "%s", b.len ? b.s : "quarantined");
	buf_free(&b);
}

/* Whether cmd is one of the modifications of add_mod(). */
static int is_modification(char cmd)
{
	static const char mods[] = {SMFIR_ADDHEADER, SMFIR_INSHEADER,
				    SMFIR_CHGHEADER, SMFIR_ADDRCPT,
				    SMFIR_ADDRCPT_PAR, SMFIR_DELRCPT,
				    SMFIR_CHGFROM, SMFIR_REPLBODY, 0};
	return cmd && strchr(mods, cmd) != NULL;
}

/* SMFIC_BODYEOB, then modifications until the final reply. */
static enum milter_verdict end_of_body(struct session *s, struct mconn *m,
				       struct mods *md, struct reply *r)
{
	struct milters *ms = s->milters;
	char why[160];
	mp_begin(&ms->pkt, SMFIC_BODYEOB);
	enum milter_verdict v = milter_event(s, m, SMFIM_EOM, 0, STAGE_EOM, r);
	if (v != MILTER_CONTINUE)
		return v;
	int progress = 0;
	char quarantine[sizeof ms->quarantine] = "";
	/* one wait for all the modifications and the verdict: a milter
	 * that keeps sending must not hold the session for ever */
	long long deadline = io_now_ms() + milter_timeout(m, STAGE_EOM);
	for (;;) {
		char cmd;
		long long left = deadline - io_now_ms();
		if (left <= 0)
			return milter_failed(s, m, "timeout while waiting for "
					     "the end of the message", r);
		if (mp_read(m->fd, (int)left, &cmd, &ms->in, why,
			    sizeof why) < 0)
			return milter_failed(s, m, why, r);
		switch (cmd) {
		case SMFIR_PROGRESS:
			/* each one restarts the wait: a bounded number */
			if (++progress > MILTER_MAX_PROGRESS)
				return milter_failed(s, m,
						     "too many SMFIR_PROGRESS", r);
			deadline = io_now_ms() + milter_timeout(m, STAGE_EOM);
			continue;
		case SMFIR_QUARANTINE:
			if (!(m->actions & SMFIF_QUARANTINE) || !ms->in.len)
				return milter_failed(s, m, "quarantine refused", r);
			/* held until its verdict: a milter that then breaks
			 * changes nothing */
			quarantine_reason(quarantine, sizeof quarantine,
					  ms->in.s);
			continue;
		case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_REJECT:
		case SMFIR_TEMPFAIL: case SMFIR_REPLYCODE: case SMFIR_DISCARD:
		case SMFIR_SHUTDOWN: case SMFIR_CONN_FAIL:
			if (quarantine[0])
				memcpy(ms->quarantine, quarantine,
				       sizeof ms->quarantine);
			return milter_verdict(s, m, cmd, STAGE_EOM, r);
		}
		if (!is_modification(cmd)) {
			fmt_snprintf(why, sizeof why,
				 "unexpected reply '%c' (0x%02x) at the end of "
				 "the message",
				 cmd > ' ' && cmd < 127 ? cmd : '?',
				 (unsigned char)cmd);
			return milter_failed(s, m, why, r);
		}
		if (cmd == SMFIR_REPLBODY &&
		    (md->size += body_size(md, &ms->in,
					   s->body == BODY_BINARYMIME)) >
			    s->max_size)
			return milter_failed(s, m, "replaced body larger than "
					     "max-message-size", r);
		if (add_mod(s, m, md, cmd, &ms->in) < 0) {
			fmt_snprintf(why, sizeof why,
				 "modification '%c' refused (not negotiated, "
				 "malformed, or too many)",
				 cmd > ' ' && cmd < 127 ? cmd : '?');
			return milter_failed(s, m, why, r);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Writing the modified message                                        */

struct out {
	int fd;
	struct buf b;
	off_t size; /* of all that was added */
	int failed;
	const char *eol;
};

static void out_add(struct out *o, const void *p, size_t n)
{
	buf_add(&o->b, p, n);
	o->size += (off_t)n;
	if (o->b.len >= RD_SIZE) {
		if (!o->failed && write_all(o->fd, o->b.s, o->b.len) < 0)
			o->failed = 1;
		o->b.len = 0;
	}
}

/* Copies [from, to) of fd; to < 0: to the end. */
static void out_copy(struct out *o, int fd, off_t from, off_t to)
{
	char buf[16384];
	while (to < 0 || from < to) {
		size_t want = sizeof buf;
		if (to >= 0 && (off_t)want > to - from)
			want = (size_t)(to - from);
		ssize_t r = pread(fd, buf, want, from);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			o->failed |= r < 0 || to >= 0;
			return;
		}
		out_add(o, buf, (size_t)r);
		from += r;
	}
}

/* "Name: value", the value's "\n" (or "\r\n") made our line end; a line
 * of the value that does not start with a blank gets a tab, so that it
 * continues the field and cannot start a new one; a bare CR becomes a
 * space, as a client's does (bare-newline). */
static void out_field(struct out *o, const char *name, const char *value,
		      int leadspc)
{
	out_add(o, name, strlen(name));
	out_add(o, leadspc ? ":" : ": ", leadspc ? 1 : 2);
	/* line ends that end the value would end the header section */
	size_t n = strlen(value);
	while (n && (value[n - 1] == '\n' || value[n - 1] == '\r'))
		n--;
	const char *end = value + n;
	for (const char *p = value; p < end; p++) {
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			continue;
		if (*p == '\n') {
			out_add(o, o->eol, strlen(o->eol));
			if (p[1] != ' ' && p[1] != '\t')
				out_add(o, "\t", 1);
		} else {
			out_add(o, *p == '\r' ? " " : p, 1);
		}
	}
	out_add(o, o->eol, strlen(o->eol));
}

static int name_is(const struct field *f, const char *name)
{
	size_t nl = f->colon;
	while (nl && (f->text.s[nl - 1] == ' ' || f->text.s[nl - 1] == '\t'))
		nl--;
	return strlen(name) == nl && !strncasecmp(f->text.s, name, nl);
}

/* The change (CHGHEADER) of the visible field f, if one names it: seen[i]
 * counts the visible fields so far that change i names, and the one it
 * changes is its index's (0 is 1, as Sendmail and Postfix read it). One
 * counter per change: time and memory do not grow with the fields seen. */
static struct mod *change_of(struct mods *md, const struct field *f,
			     unsigned *seen, unsigned *used)
{
	struct mod *hit = NULL;
	for (unsigned i = 0; i < md->n; i++) {
		struct mod *mo = &md->v[i];
		if (mo->cmd != SMFIR_CHGHEADER || !name_is(f, mo->name))
			continue;
		if (++seen[i] == (mo->index ? mo->index : 1)) {
			hit = mo;
			used[i] = 1;
		}
	}
	return hit;
}

static int has_mod(const struct mods *md, char cmd)
{
	for (unsigned i = 0; i < md->n; i++)
		if (md->v[i].cmd == cmd)
			return 1;
	return 0;
}

/* An inserted or added field and the field of the header as it was (0
 * the first, the number of fields: the end) that it goes before. */
struct placed {
	const struct mod *mod;
	uint32_t before;
};

/* Whether md's i-th modification adds a field at the end: an added
 * field, or a change of a field that is not there (used[i] is not set),
 * which Sendmail and Postfix add when they apply it. */
static int adds_field(const struct mods *md, unsigned i, const unsigned *used)
{
	const struct mod *mo = &md->v[i];
	return mo->cmd == SMFIR_ADDHEADER ||
	       (mo->cmd == SMFIR_CHGHEADER && !used[i] && mo->value[0]);
}

/* The inserted and added fields of md in the order they end up in the
 * header of nfields fields (ours counted): one after another, each before
 * what is at its index in the header as the earlier ones left it (past
 * the end, and an added field: at the end), as Sendmail's
 * smfi_insheader(), smfi_addheader() and smfi_chgheader() and Postfix
 * apply them. The k-th of pl is at index k + pl[k].before. */
static unsigned place_inserts(const struct mods *md, const unsigned *used,
			      uint32_t nfields, struct placed *pl)
{
	unsigned n = 0;
	for (unsigned i = 0; i < md->n; i++) {
		const struct mod *mo = &md->v[i];
		if (mo->cmd != SMFIR_INSHEADER && !adds_field(md, i, used))
			continue;
		unsigned k = n;
		uint32_t before = nfields;
		if (mo->cmd == SMFIR_INSHEADER) {
			k = 0;
			while (k < n && (uint64_t)k + pl[k].before < mo->index)
				k++;
			if (k < n && (uint64_t)k + pl[k].before == mo->index)
				before = pl[k].before; /* above that one */
			else if (mo->index - k < nfields)
				before = mo->index - k;
		}
		memmove(pl + k + 1, pl + k, (n - k) * sizeof *pl);
		pl[k] = (struct placed){mo, before};
		n++;
	}
	return n;
}

/* The inserts of pl[*next...] that go before field pos. */
static void inserts_at(struct out *o, const struct placed *pl, unsigned n,
		       unsigned *next, uint32_t pos, int leadspc)
{
	for (; *next < n && pl[*next].before <= pos; ++*next)
		out_field(o, pl[*next].mod->name, pl[*next].mod->value,
			  leadspc);
}

/* The number of header fields of the file at off (ours counted); sets
 * used[i] for each change of md that names a field the milter was shown. */
static uint32_t count_fields(int fd, off_t off, const struct ours *ours,
			     struct mods *md, unsigned *used)
{
	struct rd rd;
	struct field f = {0};
	unsigned *seen = xcalloc(md->n ? md->n : 1, sizeof *seen);
	unsigned next = 0;
	uint32_t n = 0;
	rd_init(&rd, fd, off);
	while (rd_what(&rd) == AT_FIELD && n < UINT32_MAX) {
		rd_field(&rd, &f);
		if (!is_ours(ours, &next, &f))
			change_of(md, &f, seen, used);
		n++;
	}
	free(seen);
	buf_free(&f.text);
	free(rd.buf);
	return n;
}

/* The header section with md applied; *ours moves to where our fields
 * are in the output. */
static void write_header(struct out *o, struct rd *rd, struct mods *md,
			 struct ours *ours, int leadspc, unsigned *used)
{
	struct field f = {0};
	unsigned *seen = xcalloc(md->n ? md->n : 1, sizeof *seen);
	struct placed *pl = xcalloc(md->n ? md->n : 1, sizeof *pl);
	unsigned next = 0;
	uint32_t nfields = UINT32_MAX; /* added fields only: no need to count */
	if (has_mod(md, SMFIR_INSHEADER) || has_mod(md, SMFIR_CHGHEADER))
		nfields = count_fields(rd->fd, rd_tell(rd), ours, md, used);
	unsigned npl = place_inserts(md, used, nfields, pl);
	uint32_t pos = 0;
	struct ours was = *ours;
	unsigned next_ours = 0;
	*ours = (struct ours){0};
	while (rd_what(rd) == AT_FIELD) {
		rd_field(rd, &f);
		inserts_at(o, pl, npl, &next, pos++, leadspc);
		if (is_ours(&was, &next_ours, &f)) {
			ours_add(ours, o->size);
			out_copy(o, rd->fd, f.start, f.end);
			continue;
		}
		struct mod *ch = change_of(md, &f, seen, used);
		if (!ch)
			out_copy(o, rd->fd, f.start, f.end);
		else if (ch->value[0])
			out_field(o, ch->name, ch->value, leadspc);
	}
	inserts_at(o, pl, npl, &next, UINT32_MAX, leadspc);
	free(pl);
	free(was.at);
	free(seen);
	buf_free(&f.text);
}

/* The message of fd at in_off with md applied, in a new file: its fd
 * (*ours moved into it), or -1 with errno. */
static int write_message(struct session *s, struct mconn *m, int fd,
			 off_t in_off, struct ours *ours, struct mods *md)
{
	struct out o = {.fd = tmpfile_open(),
			.eol = s->body == BODY_BINARYMIME ? "\r\n" : "\n"};
	if (o.fd < 0)
		return -1;
	struct rd rd;
	rd_init(&rd, fd, in_off);
	unsigned *used = xcalloc(md->n + 1, sizeof *used);
	write_header(&o, &rd, md, ours, (m->proto & SMFIP_HDR_LEADSPC) != 0,
		     used);
	free(used);
	int blank = rd_what(&rd) == AT_BLANK;
	off_t body = rd_tell(&rd);
	free(rd.buf);
	if (md->body_fd >= 0) {
		/* a CR that ended the new body had no LF */
		if (md->body_cr && write_all(md->body_fd, " ", 1) < 0)
			o.failed = 1;
		out_add(&o, o.eol, strlen(o.eol));
		out_copy(&o, md->body_fd, 0, -1);
	} else {
		if (!blank && body < lseek(fd, 0, SEEK_END))
			out_add(&o, o.eol, strlen(o.eol));
		out_copy(&o, fd, body, -1);
	}
	if (!o.failed && o.b.len && write_all(o.fd, o.b.s, o.b.len) < 0)
		o.failed = 1;
	buf_free(&o.b);
	if (o.failed) {
		int e = errno;
		close(o.fd);
		errno = e ? e : EIO;
		return -1;
	}
	return o.fd;
}

/* Sender and recipient changes, in the order the milter sent them. */
static void apply_envelope(struct session *s, struct mconn *m,
			   struct mods *md)
{
	for (unsigned i = 0; i < md->n; i++) {
		struct mod *mo = &md->v[i];
		struct reply r;
		const char *what = NULL;
		int bad = 0;
		if (mo->cmd == SMFIR_ADDRCPT || mo->cmd == SMFIR_ADDRCPT_PAR) {
			what = "add-rcpt";
			bad = envelope_add_rcpt(s, mo->name, &r);
		} else if (mo->cmd == SMFIR_DELRCPT) {
			what = "delete-rcpt";
			bad = envelope_delete_rcpt(s, mo->name, &r);
		} else if (mo->cmd == SMFIR_CHGFROM) {
			what = "change-sender";
			bad = envelope_change_sender(s, mo->name, &r);
		}
		if (!what)
			continue;
		if (!bad)
			s->envelope_changed = 1;
		log_event(bad ? LOG_L_WARNING : LOG_L_INFO, "event", "milter",
			  "milter", m->name, "action", what, "address", mo->name,
			  "status", bad ? "refused" : "done", "reason",
			  bad ? r.text : NULL, NULL);
	}
}

/* One milter's turn at the end of the message: *fd, *off and *ours move
 * to the file it modified. */
static enum milter_verdict one_milter(struct session *s, struct mconn *m,
				      int *fd, off_t *off, struct ours *ours,
				      int *owned, struct reply *r)
{
	struct mods md = {.body_fd = -1};
	enum milter_verdict v = send_message(s, m, *fd, *off, ours, &md.size,
					     r);
	if (v == MILTER_CONTINUE && m->st == MC_ACTIVE)
		v = end_of_body(s, m, &md, r);
	if (m->st == MC_FAILED) {
		/* a milter that broke half-way changes nothing */
		mods_free(&md);
		return v;
	}
	int headers = 0;
	for (unsigned i = 0; i < md.n; i++)
		headers |= md.v[i].cmd == SMFIR_ADDHEADER ||
			   md.v[i].cmd == SMFIR_INSHEADER ||
			   md.v[i].cmd == SMFIR_CHGHEADER;
	if (v == MILTER_CONTINUE && (headers || md.body_fd >= 0)) {
		int nfd = write_message(s, m, *fd, *off, ours, &md);
		if (nfd < 0) {
			handoff_storage_reply(r, errno);
			mods_free(&md);
			return MILTER_REFUSE;
		}
		if (*owned)
			close(*fd);
		*fd = nfd;
		*off = 0;
		*owned = 1;
	}
	if (v == MILTER_CONTINUE)
		apply_envelope(s, m, &md);
	mods_free(&md);
	return v;
}

/* Our fields: those that start in the first our_size bytes at off. */
static void find_ours(int fd, off_t off, off_t our_size, struct ours *o)
{
	struct rd rd;
	struct field f = {0};
	rd_init(&rd, fd, off);
	while (rd_tell(&rd) < off + our_size && rd_what(&rd) == AT_FIELD) {
		rd_field(&rd, &f);
		ours_add(o, f.start);
	}
	buf_free(&f.text);
	free(rd.buf);
}

enum milter_verdict milter_end_of_message(struct session *s, int in_fd,
					  off_t in_off, off_t our_size,
					  int *out_fd, const char **quarantine,
					  struct reply *r)
{
	*out_fd = -1;
	*quarantine = NULL;
	struct milters *ms = s->milters;
	if (!ms)
		return MILTER_CONTINUE;
	int fd = in_fd, owned = 0;
	off_t off = in_off;
	struct ours ours = {0};
	find_ours(fd, in_off, our_size, &ours);
	enum milter_verdict v = MILTER_CONTINUE;
	for (unsigned i = 0; i < ms->n && v == MILTER_CONTINUE; i++) {
		struct mconn *m = &ms->m[i];
		if (m->st == MC_FAILED)
			v = milter_failed(s, m, "", r);
		else if (m->st == MC_ACTIVE)
			v = one_milter(s, m, &fd, &off, &ours, &owned, r);
	}
	for (unsigned i = 0; i < ms->n; i++)
		ms->m[i].in_tx = 0;
	free(ours.at);
	if (v != MILTER_CONTINUE || ms->discard) {
		if (owned)
			close(fd);
		return v != MILTER_CONTINUE ? v : MILTER_DISCARD;
	}
	if (owned)
		*out_fd = fd;
	if (ms->quarantine[0])
		*quarantine = ms->quarantine;
	return MILTER_CONTINUE;
}
