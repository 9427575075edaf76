/*
 * mime.c - 7-bit forms of 8-bit and binary mail (see mime.h).
 *
 * The message is mapped read-only and walked as a tree of entities: an
 * entity is a header section and a body; a multipart body is split at its
 * boundary lines, a message/rfc822 body is an entity again, and any other
 * body is a leaf. A leaf is copied as it is when it is 7-bit (no octet
 * above 127, no NUL, no bare CR, lines of at most 998 octets); otherwise
 * text becomes quoted-printable and anything else base64. What goes out
 * labelled 8bit or binary is relabelled 7bit. Text mail is stored with
 * LF line ends; binary mail as received, with CRLF; base64 encodes the
 * CRLF form either way.
 */
#include "mime.h"
#include "fmt.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_DEPTH 20
#define QP_LINE 76
#define LINE_7BIT 998 /* RFC 5322 2.1.1, without CRLF */
#define ANY_LINE SIZE_MAX

/* Memory stays bounded whatever the message size (SPEC 5, 11): the
 * output goes to the file whenever SPILL octets are waiting, and the pages
 * of the mapping behind the reading cursor are given back every FORGET
 * octets (they come back from the page cache if a part is read again). */
#define SPILL 65536
#define FORGET (1024 * 1024)

struct conv {
	struct buf out;
	int fd;   /* where the output goes */
	int werr; /* the errno of a failed write, or 0 */
	int crlf; /* the input's line ends are CRLF (binary mail) */
	const char *map; /* the mapping, page aligned */
	size_t kept;     /* the pages before map + kept were given back */
	size_t page;
	char *why;
	size_t whyn;
};

static void write_out(struct conv *cv)
{
	if (!cv->werr && cv->out.len && write_all(cv->fd, cv->out.s,
						  cv->out.len) < 0)
		cv->werr = errno ? errno : EIO;
	cv->out.len = 0;
}

static void spill(struct conv *cv)
{
	if (cv->out.len >= SPILL)
		write_out(cv);
}

/* Appends n octets from p, spilling as the buffer fills. */
static void emit(struct conv *cv, const char *p, size_t n)
{
	while (n) {
		size_t k = n < SPILL ? n : SPILL;
		buf_add(&cv->out, p, k);
		spill(cv);
		p += k;
		n -= k;
	}
}

/* The reading cursor is at p: the pages well behind it go back. */
static void forget_before(struct conv *cv, const char *p)
{
	size_t upto = (size_t)(p - cv->map);
	upto -= upto % cv->page;
	if (upto < cv->kept)
		cv->kept = upto; /* a part read again */
	else if (upto - cv->kept >= FORGET &&
		 madvise((void *)cv->map, upto, MADV_DONTNEED) == 0)
		cv->kept = upto;
}

/* The end of the line that starts at p (before its LF or CRLF) and the
 * start of the next one. */
static const char *line_end(const struct conv *cv, const char *p,
			    const char *end, const char **next)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	if (!lf) {
		*next = end;
		return end;
	}
	*next = lf + 1;
	if (cv->crlf && lf > p && lf[-1] == '\r')
		return lf - 1;
	return lf;
}

/* No octet above 127, no NUL, no bare CR and no line over max_line
 * octets: text that needs no encoding. Header sections, preambles and
 * epilogues pass ANY_LINE: the wire writer folds their long lines, as
 * Postfix's smtp_line_length_limit does. */
static int is_7bit(struct conv *cv, const char *p, size_t n,
		   size_t max_line)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(i % SPILL))
			forget_before(cv, p + i);
		if (c >= 0x80 || c == 0)
			return 0;
		if (c == '\n') {
			col = 0;
			continue;
		}
		if (c == '\r' && !(cv->crlf && i + 1 < n && p[i + 1] == '\n'))
			return 0; /* a bare CR */
		if (c != '\r' && ++col > max_line)
			return 0;
	}
	return 1;
}

/* The line p..e starts the header field name (any value, even none yet
 * before a fold). */
static int field_is(const char *p, const char *e, const char *name)
{
	size_t nl = strlen(name);
	return (size_t)(e - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':';
}

/* The value of header field name in the header section h..hend, unfolded
 * into out; 0 when it is absent. */
static int header_value(const struct conv *cv, const char *h, const char *hend,
			const char *name, char *out, size_t n)
{
	for (const char *p = h, *next; p < hend; p = next) {
		const char *e = line_end(cv, p, hend, &next);
		if (!field_is(p, e, name))
			continue;
		size_t o = 0;
		const char *v = p + strlen(name) + 1;
		for (;;) {
			for (; v < e && o + 1 < n; v++)
				out[o++] = *v == '\t' ? ' ' : *v;
			if (next >= hend || (*next != ' ' && *next != '\t'))
				break;
			v = next;
			e = line_end(cv, v, hend, &next);
		}
		out[o] = 0;
		return 1;
	}
	return 0;
}

/* Past blanks and comments (RFC 5322 CFWS, unfolded). */
static const char *skip_blanks(const char *q)
{
	for (int depth = 0;; q++) {
		if (*q == '(')
			depth++;
		else if (*q == ')' && depth)
			depth--;
		else if (*q == '\\' && depth && q[1])
			q++;
		else if (!(*q == ' ' || *q == '\t' || (depth && *q)))
			return q;
	}
}

/* The next ';' of a header value from p that separates parameters: not
 * one inside a quoted string or a comment (RFC 2045 5.1, RFC 5322 3.2.2);
 * NULL when there is none. */
static const char *next_semicolon(const char *p)
{
	int depth = 0; /* of nested comments */
	for (; *p; p++) {
		if (*p == '\\' && depth && p[1]) {
			p++;
		} else if (*p == '"' && !depth) {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth) {
			depth--;
		} else if (*p == ';' && !depth) {
			return p;
		}
	}
	return NULL;
}

/* The parameter param of a Content-Type value (quotes removed). */
static int param(const char *v, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	for (const char *p = next_semicolon(v); p; p = next_semicolon(p + 1)) {
		const char *q = skip_blanks(p + 1);
		if (strncasecmp(q, name, nl))
			continue;
		q = skip_blanks(q + nl);
		if (*q != '=')
			continue;
		q = skip_blanks(q + 1);
		size_t o = 0;
		if (*q == '"') {
			for (q++; *q && *q != '"' && o + 1 < n; q++)
				out[o++] = *q == '\\' && q[1] ? *++q : *q;
		} else {
			for (; *q && *q != ';' && *q != ' ' && *q != '\t' &&
			       *q != '(' && o + 1 < n;
			     q++)
				out[o++] = *q;
		}
		out[o] = 0;
		return o > 0;
	}
	return 0;
}

/* Copies lines p..end with LF line ends. */
static void copy_lines(struct conv *cv, const char *p, const char *end)
{
	for (const char *next; p < end; p = next) {
		const char *e = line_end(cv, p, end, &next);
		forget_before(cv, p);
		emit(cv, p, (size_t)(e - p));
		if (next > e)
			buf_addc(&cv->out, '\n');
	}
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
	       (c >= 'a' && c <= 'f');
}

/* An octet that no 7-bit encoded body may hold: 8-bit, NUL or bare CR
 * (a CR of a CRLF line end is never inside a line). */
static int is_raw(unsigned char c)
{
	return c >= 0x80 || c == 0 || c == '\r';
}

/* Quoted-printable (RFC 2045 6.7), lines within 76 characters. With
 * requote, the body was declared quoted-printable already and still
 * holds raw octets: only those are escaped; its own =XX escapes and soft
 * breaks keep their meaning. */
static void quoted_printable(struct conv *cv, const char *p, const char *end,
			     int requote)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const char *next; p < end; p = next) {
		const char *e = line_end(cv, p, end, &next);
		size_t col = 0;
		forget_before(cv, p);
		for (const char *q = p; q < e; q++) {
			unsigned char c = (unsigned char)*q;
			int last = q + 1 == e;
			int keep = requote && e - q >= 3 && c == '=' &&
				   is_hex(q[1]) && is_hex(q[2]);
			int raw = requote ? is_raw(c)
					  : !((c >= 33 && c <= 126 && c != '=') ||
					      ((c == ' ' || c == '\t') && !last));
			size_t w = keep || raw ? 3 : 1;
			int soft_end = requote && c == '=' && last;
			if (col + w > QP_LINE - 1 && !soft_end) {
				buf_adds(&cv->out, "=\n");
				spill(cv);
				forget_before(cv, q);
				col = 0;
			}
			if (keep) {
				buf_add(&cv->out, q, 3);
				q += 2;
			} else if (raw) {
				buf_addc(&cv->out, '=');
				buf_addc(&cv->out, hex[c >> 4]);
				buf_addc(&cv->out, hex[c & 15]);
			} else {
				buf_addc(&cv->out, (char)c);
			}
			col += w;
		}
		/* a last line without its end stays without one: the line end
		 * that follows belongs to a boundary, or is added on the wire */
		if (next > e)
			buf_addc(&cv->out, '\n');
		spill(cv);
	}
}

/* A body the sender declared base64 that still holds raw octets: those
 * are not base64 and decoders skip them (RFC 2045 6.8), so they go. */
static void drop_raw(struct conv *cv, const char *p, const char *end)
{
	for (const char *next; p < end; p = next) {
		const char *e = line_end(cv, p, end, &next);
		forget_before(cv, p);
		for (const char *q = p, *run = p; q <= e; q++) {
			if (q < e && !is_raw((unsigned char)*q))
				continue;
			emit(cv, run, (size_t)(q - run));
			run = q + 1;
		}
		if (next > e)
			buf_addc(&cv->out, '\n');
		spill(cv);
	}
}

/* One base64 line: 57 octets make 76 characters. */
static void base64_line(struct conv *cv, const char *p, size_t n)
{
	buf_add_base64(&cv->out, p, n);
	buf_addc(&cv->out, '\n');
	spill(cv);
}

/* One octet onto the pending base64 line, which goes out when full. */
static void base64_octet(struct conv *cv, char *line, size_t *n, char c)
{
	line[(*n)++] = c;
	if (*n == 57) {
		base64_line(cv, line, *n);
		*n = 0;
	}
}

/* base64 of the octets a leaf stands for: binary mail's as stored; text
 * mail is stored with LF line ends, and its content had CRLF (RFC 2045
 * 2.8), which the encoded octets keep. */
static void base64(struct conv *cv, const char *p, const char *end)
{
	if (cv->crlf) {
		for (; p < end; p += 57) {
			base64_line(cv, p, end - p < 57 ? (size_t)(end - p) : 57);
			forget_before(cv, p);
		}
		return;
	}
	char line[57];
	size_t n = 0;
	for (; p < end; p++) {
		if (*p == '\n')
			base64_octet(cv, line, &n, '\r');
		base64_octet(cv, line, &n, *p);
		if (!n) /* everything up to p is encoded */
			forget_before(cv, p);
	}
	if (n)
		base64_line(cv, line, n);
}

static int memchr_8bit(struct conv *cv, const char *p, const char *end)
{
	for (size_t i = 0; p + i < end; i++) {
		if (!(i % SPILL))
			forget_before(cv, p + i);
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	}
	return 0;
}

static int fail(struct conv *cv, const char *what)
{
	fmt_snprintf(cv->why, cv->whyn, "%s", what);
	return -1;
}

/* Copies a header section without its Content-Transfer-Encoding field
 * (and that field's continuation lines). */
static void headers_without_cte(struct conv *cv, const char *h,
				const char *hend)
{
	int skipping = 0;
	for (const char *p = h, *next; p < hend; p = next) {
		const char *e = line_end(cv, p, hend, &next);
		if (*p == ' ' || *p == '\t') {
			if (skipping)
				continue;
		} else {
			skipping = field_is(p, e, "Content-Transfer-Encoding");
			if (skipping)
				continue;
		}
		emit(cv, p, (size_t)(e - p));
		buf_addc(&cv->out, '\n');
	}
}

/* What an entity is to its parent: the message itself, or a part of a
 * multipart/digest (whose parts are message/rfc822 by default, RFC 2046
 * 5.1.5), or neither (0). */
enum { E_TOP = 1, E_IN_DIGEST = 2 };

static int entity(struct conv *cv, const char *p, const char *end, int depth,
		  int role);

/* The Content-Transfer-Encoding value v is the mechanism word. */
static int cte_is(const char *v, const char *word)
{
	size_t wl = strlen(word);
	v = skip_blanks(v);
	return !strncasecmp(v, word, wl) && !*skip_blanks(v + wl);
}

/* The header section p..hend of an entity whose body goes out 7-bit, and
 * its empty line (to body): a CTE of 8bit or binary becomes 7bit (RFC
 * 2045 6.4; RFC 6152 3 keeps 8bit from a peer without 8BITMIME), as
 * Postfix's mime_state does for multipart and message entities. */
static void headers_7bit(struct conv *cv, const char *p,
			      const char *hend, const char *body,
			      const char *cte)
{
	if (!cte_is(cte, "8bit") && !cte_is(cte, "binary")) {
		copy_lines(cv, p, body);
		return;
	}
	headers_without_cte(cv, p, hend);
	buf_adds(&cv->out, "Content-Transfer-Encoding: 7bit\n");
	copy_lines(cv, hend, body);
}

/* A multipart body: its parts each converted, the boundaries kept. */
static int multipart(struct conv *cv, const char *b, const char *end,
		     const char *boundary, int depth, int digest)
{
	int role = digest ? E_IN_DIGEST : 0;
	size_t bl = strlen(boundary);
	const char *part = NULL; /* start of the current part's entity */
	for (const char *p = b, *next; p < end; p = next) {
		const char *e = line_end(cv, p, end, &next);
		forget_before(cv, p);
		int delim = (size_t)(e - p) >= bl + 2 && p[0] == '-' &&
			    p[1] == '-' && !memcmp(p + 2, boundary, bl);
		if (!delim)
			continue;
		/* RFC 2046 5.1.1: "--" boundary ["--"], then only blanks */
		const char *rest = p + 2 + bl;
		int close = e - rest >= 2 && rest[0] == '-' && rest[1] == '-';
		for (const char *q = rest + (close ? 2 : 0); q < e && delim; q++)
			delim = *q == ' ' || *q == '\t';
		if (!delim)
			continue;
		if (part) {
			/* the line end before the delimiter belongs to it */
			const char *pe = p;
			if (pe > part && pe[-1] == '\n')
				pe--;
			if (cv->crlf && pe > part && pe[-1] == '\r')
				pe--;
			if (entity(cv, part, pe, depth + 1, role) < 0)
				return -1;
			buf_addc(&cv->out, '\n');
		} else if (!is_7bit(cv, b, (size_t)(p - b), ANY_LINE)) {
			return fail(cv, "8-bit octets in a MIME preamble");
		} else {
			copy_lines(cv, b, p);
		}
		copy_lines(cv, p, next);
		if (close) {
			if (!is_7bit(cv, next, (size_t)(end - next), ANY_LINE))
				return fail(cv, "8-bit octets in a MIME epilogue");
			copy_lines(cv, next, end);
			return 0;
		}
		part = next;
	}
	/* no closing delimiter: the last part runs to the end */
	if (part)
		return entity(cv, part, end, depth + 1, role);
	return fail(cv, "a multipart body without its boundary");
}

/* One entity (header section and body) from p to end. */
static int entity(struct conv *cv, const char *p, const char *end, int depth,
		  int role)
{
	if (depth > MAX_DEPTH)
		return fail(cv, "MIME parts nested too deep to convert");
	/* the header section ends at the first empty line */
	const char *hend = end, *body = end;
	for (const char *q = p, *next; q < end; q = next) {
		const char *e = line_end(cv, q, end, &next);
		forget_before(cv, q);
		if (e == q) {
			hend = q;
			body = next;
			break;
		}
	}
	if (!is_7bit(cv, p, (size_t)(hend - p), ANY_LINE)) {
		if (memchr_8bit(cv, p, hend))
			return fail(cv, "8-bit octets in a header field, "
					"which MIME cannot encode here");
		return fail(cv, "a header line with NUL or a bare CR");
	}
	char ct[1024] = "", cte[128] = "", boundary[256];
	int has_ct = header_value(cv, p, hend, "Content-Type", ct, sizeof ct);
	header_value(cv, p, hend, "Content-Transfer-Encoding", cte, sizeof cte);
	char *t = ct;
	while (*t == ' ')
		t++;
	int is_multipart = !strncasecmp(t, "multipart/", 10);
	int is_message = has_ct ? !strncasecmp(t, "message/rfc822", 14)
				: role == E_IN_DIGEST;
	int is_text = has_ct ? !strncasecmp(t, "text/", 5) : !is_message;
	if (is_multipart && param(t, "boundary", boundary, sizeof boundary)) {
		headers_7bit(cv, p, hend, body, cte);
		return multipart(cv, body, end, boundary, depth,
				 !strncasecmp(t, "multipart/digest", 16));
	}
	if (is_message) {
		headers_7bit(cv, p, hend, body, cte);
		return entity(cv, body, end, depth + 1, 0);
	}
	if (is_7bit(cv, body, (size_t)(end - body), LINE_7BIT) &&
	    !cte_is(cte, "binary")) {
		headers_7bit(cv, p, hend, body, cte);
		copy_lines(cv, body, end);
		return 0;
	}
	/* already encoded by the sender, with raw octets left in: keep the
	 * encoding and its meaning, mend only those octets */
	if (cte_is(cte, "quoted-printable") || cte_is(cte, "base64")) {
		copy_lines(cv, p, body);
		if (cte_is(cte, "base64"))
			drop_raw(cv, body, end);
		else
			quoted_printable(cv, body, end, 1);
		return 0;
	}
	headers_without_cte(cv, p, hend);
	if (role == E_TOP &&
	    !header_value(cv, p, hend, "MIME-Version", cte, sizeof cte))
		buf_adds(&cv->out, "MIME-Version: 1.0\n");
	if (!has_ct) /* RFC 2045 5.2's default, unless 8-bit says otherwise */
		buf_printf(&cv->out, "Content-Type: text/plain; charset=%s\n",
			   memchr_8bit(cv, body, end) ? "unknown-8bit"
						      : "us-ascii");
	buf_printf(&cv->out, "Content-Transfer-Encoding: %s\n\n",
		   is_text ? "quoted-printable" : "base64");
	if (is_text)
		quoted_printable(cv, body, end, 0);
	else
		base64(cv, body, end);
	return 0;
}

int mime_downgrade(const struct msg *m, int out_fd, char *why, size_t n)
{
	struct conv cv = {.fd = out_fd, .crlf = m->binary, .why = why,
			  .whyn = n};
	cv.page = (size_t)sysconf(_SC_PAGESIZE);
	off_t start = m->off - m->off % (off_t)cv.page;
	size_t len = (size_t)(m->off - start + m->size);
	if (!m->size) {
		fmt_snprintf(why, n, "an empty message");
		return -1;
	}
	char *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, m->fd, start);
	if (map == MAP_FAILED) {
		fmt_snprintf(why, n, "cannot read the message: %s", strerror(errno));
		return -1;
	}
	cv.map = map;
	const char *p = map + (m->off - start);
	int r = entity(&cv, p, p + m->size, 0, E_TOP);
	munmap(map, len);
	if (r == 0)
		write_out(&cv);
	if (r == 0 && cv.werr) {
		fmt_snprintf(why, n, "cannot write the converted message: %s",
			 strerror(cv.werr));
		r = -1;
	}
	buf_free(&cv.out);
	return r;
}
