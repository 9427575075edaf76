/*
 * addr.c - the one parser for RFC 5321 mail addresses (see addr.h).
 *
 * Grammar (RFC 5321 4.1.2, extended by RFC 6531 3.3 for UTF-8):
 *   Path        = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox     = Local-part "@" ( Domain / address-literal )
 *   Local-part  = Dot-string / Quoted-string
 * Lengths are checked against the text as written; the canonical form that
 * comes out is what routing compares and what logs and headers show.
 * Below them, the RFC 5322 address lists of header fields (3.4), read
 * for sendmail -t and for completing a local part alone in the fix-ups.
 */
#include "addr.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

struct scan {
	const char *s;
	size_t n, i;
	unsigned flags;
	int nonascii;
	const char *why;
	enum addr_status st;
};

static int fail(struct scan *sc, enum addr_status st, const char *why)
{
	if (sc->st == ADDR_OK) {
		sc->st = st;
		sc->why = why;
	}
	return -1;
}

/* Consumes one UTF-8 character beyond ASCII at sc->i; -1 when invalid or
 * not allowed. */
static int take_utf8(struct scan *sc)
{
	size_t l = utf8_seqlen((const unsigned char *)sc->s + sc->i,
			       sc->n - sc->i);
	if (!l)
		return fail(sc, ADDR_ESYNTAX, "invalid UTF-8");
	if (!(sc->flags & ADDR_UTF8))
		return fail(sc, ADDR_ENONASCII,
			    "non-ASCII address without SMTPUTF8");
	sc->nonascii = 1;
	sc->i += l;
	return 0;
}

/* The one control-character rule of addresses and domains: C0, DEL, and
 * the C1 controls U+0080..U+009F in UTF-8. Returns the offset of the first
 * one, or n. */
static size_t control_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		     (unsigned char)s[i + 1] <= 0x9f))
			return i;
	}
	return n;
}

static int check_control(struct scan *sc)
{
	size_t i = control_at(sc->s, sc->n);
	if (i == sc->n)
		return 0;
	sc->i = i;
	return fail(sc, ADDR_ECONTROL, "control character");
}

/* Dot-string: atoms separated by single dots. Writes the bytes to out. */
static int scan_dot_string(struct scan *sc, struct buf *out)
{
	int need_atom = 1;
	while (sc->i < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->i];
		if (c == '.') {
			if (need_atom)
				return fail(sc, ADDR_ESYNTAX,
					    "empty atom in local part");
			need_atom = 1;
			buf_addc(out, '.');
			sc->i++;
		} else if (is_atext(c)) {
			need_atom = 0;
			buf_addc(out, (char)c);
			sc->i++;
		} else if (c >= 0x80) {
			size_t at = sc->i;
			if (take_utf8(sc) < 0)
				return -1;
			buf_add(out, sc->s + at, sc->i - at);
			need_atom = 0;
		} else {
			break;
		}
	}
	if (need_atom)
		return fail(sc, ADDR_ESYNTAX, out->len ? "local part ends in a dot"
						       : "empty local part");
	return 0;
}

/* Quoted-string: decodes into out (without the quotes). */
static int scan_quoted(struct scan *sc, struct buf *out)
{
	sc->i++; /* opening quote */
	while (sc->i < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->i];
		if (c == '"') {
			sc->i++;
			return 0;
		}
		if (c == '\\') {
			if (sc->i + 1 >= sc->n)
				break;
			unsigned char d = (unsigned char)sc->s[sc->i + 1];
			if (d < 32 || d > 126)
				return fail(sc, ADDR_ESYNTAX,
					    "invalid quoted pair");
			buf_addc(out, (char)d);
			sc->i += 2;
		} else if (c >= 0x80) {
			size_t at = sc->i;
			if (take_utf8(sc) < 0)
				return -1;
			buf_add(out, sc->s + at, sc->i - at);
		} else if (c >= 32 && c <= 126) {
			buf_addc(out, (char)c);
			sc->i++;
		} else {
			return fail(sc, ADDR_ESYNTAX,
				    "invalid character in quoted string");
		}
	}
	return fail(sc, ADDR_ESYNTAX, "unterminated quoted string");
}

static int dot_string_valid(const char *s, size_t n)
{
	int need_atom = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (need_atom)
				return 0;
			need_atom = 1;
		} else if (is_atext(c) || c >= 0x80) {
			need_atom = 0;
		} else {
			return 0;
		}
	}
	return !need_atom;
}

static int scan_local(struct scan *sc, struct buf *canon)
{
	if (sc->i < sc->n && sc->s[sc->i] == '"') {
		struct buf raw = {0};
		if (scan_quoted(sc, &raw) < 0) {
			buf_free(&raw);
			return -1;
		}
		if (raw.len && dot_string_valid(raw.s, raw.len)) {
			buf_add(canon, raw.s, raw.len);
		} else {
			buf_addc(canon, '"');
			for (size_t i = 0; i < raw.len; i++) {
				if (raw.s[i] == '"' || raw.s[i] == '\\')
					buf_addc(canon, '\\');
				buf_addc(canon, raw.s[i]);
			}
			buf_addc(canon, '"');
		}
		buf_free(&raw);
		return 0;
	}
	return scan_dot_string(sc, canon);
}

static int literal_valid(const char *s, size_t n)
{
	char tmp[ADDR_DOMAIN_MAX + 1];
	unsigned char bin[16];
	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof tmp ||
	    memchr(s, 0, n))
		return 0;
	memcpy(tmp, s + 1, n - 2);
	tmp[n - 2] = 0;
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, bin) == 1;
	return inet_pton(AF_INET, tmp, bin) == 1;
}

int addr_domain_valid(const char *s, size_t n, int utf8)
{
	if (n == 0 || n > ADDR_DOMAIN_MAX || control_at(s, n) != n)
		return 0;
	if (s[0] == '[')
		return literal_valid(s, n);
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c >= 0x80) {
			size_t l = utf8_seqlen((const unsigned char *)s + i,
					       n - i);
			if (!utf8 || !l)
				return 0;
			i += l - 1;
		} else if (c == '-') {
			if (label == 0)
				return 0;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9'))) {
			return 0;
		}
		if (++label > 63)
			return 0;
	}
	if (label == 0 || s[n - 1] == '-')
		return 0;
	/* an all-numeric top-level label is an IP address gone wrong */
	for (size_t i = n - label; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 1;
	return 0;
}

/* Domain or address literal, up to '>' or the end. */
static int scan_domain(struct scan *sc, struct addr *a)
{
	size_t start = sc->i;
	if (sc->i < sc->n && sc->s[sc->i] == '[') {
		while (sc->i < sc->n && sc->s[sc->i] != ']')
			sc->i++;
		if (sc->i >= sc->n)
			return fail(sc, ADDR_ESYNTAX,
				    "unterminated address literal");
		sc->i++;
		a->literal = 1;
	} else {
		while (sc->i < sc->n && sc->s[sc->i] != '>' &&
		       sc->s[sc->i] != ',' && sc->s[sc->i] != ':') {
			if ((unsigned char)sc->s[sc->i] >= 0x80) {
				if (take_utf8(sc) < 0)
					return -1;
			} else {
				sc->i++;
			}
		}
	}
	size_t len = sc->i - start;
	if (len > ADDR_DOMAIN_MAX)
		return fail(sc, ADDR_ETOOLONG, "domain longer than 255 octets");
	if (!addr_domain_valid(sc->s + start, len, 1)) {
		sc->i = start;
		return fail(sc, ADDR_ESYNTAX,
			    a->literal ? "invalid address literal"
				       : "invalid domain name");
	}
	memcpy(a->domain, sc->s + start, len);
	a->domain[len] = 0;
	return 0;
}

/* "@a,@b:" before the mailbox: validated and dropped. */
static int skip_source_route(struct scan *sc)
{
	struct addr tmp;
	while (sc->i < sc->n && sc->s[sc->i] == '@') {
		sc->i++;
		memset(&tmp, 0, sizeof tmp);
		if (scan_domain(sc, &tmp) < 0)
			return -1;
		if (sc->i < sc->n && sc->s[sc->i] == ',') {
			sc->i++;
			if (sc->i >= sc->n || sc->s[sc->i] != '@')
				return fail(sc, ADDR_ESYNTAX,
					    "invalid source route");
			continue;
		}
		if (sc->i < sc->n && sc->s[sc->i] == ':') {
			sc->i++;
			return 0;
		}
		return fail(sc, ADDR_ESYNTAX, "invalid source route");
	}
	return 0;
}

enum addr_status addr_parse(const char *s, size_t n, unsigned flags,
			    struct addr *a, const char **why, size_t *where)
{
	struct scan sc = {.s = s, .n = n, .flags = flags};
	struct buf local = {0};
	memset(a, 0, sizeof *a);
	int bracketed = n >= 1 && s[0] == '<';

	if (check_control(&sc) < 0)
		goto out;
	if (bracketed) {
		if (s[n - 1] != '>' || n < 2) {
			sc.i = n;
			fail(&sc, ADDR_ESYNTAX, "missing '>'");
			goto out;
		}
		sc.i = 1;
		sc.n = n - 1;
	} else if (flags & ADDR_BRACKETS) {
		fail(&sc, ADDR_ESYNTAX, "address must be enclosed in <>");
		goto out;
	}
	if ((bracketed ? n : n + 2) > ADDR_PATH_MAX) {
		fail(&sc, ADDR_ETOOLONG, "path longer than 256 octets");
		goto out;
	}
	if (sc.i == sc.n && !(flags & ADDR_PARTS)) {
		a->null = 1;
		if (!(flags & ADDR_NULL_OK))
			fail(&sc, ADDR_ENULL, "null address not allowed here");
		goto out;
	}
	if (!(flags & ADDR_PARTS) && skip_source_route(&sc) < 0)
		goto out;
	sc.nonascii = 0; /* a dropped source route says nothing */

	if (sc.i < sc.n && sc.s[sc.i] != '@') {
		if (scan_local(&sc, &local) < 0)
			goto out;
	} else if (!(flags & ADDR_PARTS)) {
		fail(&sc, ADDR_ESYNTAX, "empty local part");
		goto out;
	}
	if (local.len >= sizeof a->local) {
		fail(&sc, ADDR_ETOOLONG, "path longer than 256 octets");
		goto out;
	}
	if (local.len)
		memcpy(a->local, local.s, local.len + 1);
	if ((flags & ADDR_NODASH) && a->local[0] == '-') {
		fail(&sc, ADDR_ESYNTAX, "a local part that begins with '-'");
		goto out;
	}

	if (sc.i < sc.n && sc.s[sc.i] == '@') {
		a->has_at = 1;
		sc.i++;
		if (sc.i < sc.n) {
			if (scan_domain(&sc, a) < 0)
				goto out;
		} else if (!(flags & ADDR_PARTS)) {
			fail(&sc, ADDR_ENODOMAIN, "missing domain after '@'");
			goto out;
		}
	} else if (sc.i == sc.n && !(flags & (ADDR_NODOMAIN_OK | ADDR_PARTS))) {
		fail(&sc, ADDR_ENODOMAIN, "address has no domain");
		goto out;
	}
	if (sc.i != sc.n)
		fail(&sc, ADDR_ESYNTAX, "unexpected character");
out:
	buf_free(&local);
	a->nonascii = (unsigned char)sc.nonascii;
	if (why)
		*why = sc.why;
	if (where)
		*where = sc.i;
	if (sc.st != ADDR_OK)
		memset(a, 0, sizeof *a);
	return sc.st;
}

/* Appends s to out[*len], truncating as snprintf would. */
static void put(char *out, size_t outsize, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n >= outsize)
		n = outsize - 1 - *len;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = 0;
}

void addr_format(const struct addr *a, char *out, size_t outsize)
{
	/* without snprintf: each command and log line formats addresses */
	size_t len = 0;
	if (!outsize)
		return;
	out[0] = 0;
	put(out, outsize, &len, a->local);
	if (a->has_at) {
		put(out, outsize, &len, "@");
		put(out, outsize, &len, a->domain);
	}
}

int addr_part_eq(const char *a, const char *b)
{
	return ascii_casecmp_n(a, strlen(a), b, strlen(b)) == 0;
}

int addr_dot_atom(const char *s)
{
	int atom = 0; /* characters in the current atom */
	for (; *s; s++) {
		if (*s == '.' && atom)
			atom = 0;
		else if (is_atext((unsigned char)*s))
			atom++;
		else
			return 0;
	}
	return atom > 0;
}

int addr_is_postmaster(const struct addr *a)
{
	return addr_part_eq(a->local, "postmaster");
}

/* ------------------------------------------------------------------ */
/* RFC 5322 address lists (header fields)                              */

/* The address being read: its words outside comments, or its
 * angle-addr's content, without blanks. */
struct list_part {
	struct buf text;
	size_t end; /* just past its last character in the list */
	int gap;    /* a blank or comment came after its last character */
	int split;  /* and then another character: it is not one run */
};

struct list_scan {
	struct list_part word, angle;
	int quoted, comment, in_angle, had_angle;
	addr_item_fn *fn;
	void *arg;
};

static void part_add(struct list_part *p, char c, size_t i)
{
	buf_addc(&p->text, c);
	p->split |= p->gap;
	p->gap = 0;
	p->end = i + 1;
}

static void part_gap(struct list_part *p)
{
	if (p->text.len)
		p->gap = 1;
}

static void part_reset(struct list_part *p)
{
	p->text.len = 0;
	p->end = 0;
	p->gap = p->split = 0;
}

/* A comma, a semicolon or the end: the address read so far is one. */
static void list_item(struct list_scan *ls)
{
	struct list_part *p = ls->had_angle ? &ls->angle : &ls->word;
	if (p->text.len && ls->fn) {
		struct addr_item it = {.text = p->text.s,
				       .len = p->text.len,
				       .end = p->end,
				       .whole = !p->split};
		ls->fn(ls->arg, &it);
	}
	part_reset(&ls->word);
	part_reset(&ls->angle);
	ls->had_angle = 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One character of the list at *i (two for a quoted pair). */
static void list_char(struct list_scan *ls, const char *s, size_t n,
		      size_t *i)
{
	char c = s[*i];
	struct list_part *p = ls->in_angle ? &ls->angle : &ls->word;
	if (ls->quoted) {
		if (c == '\\' && *i + 1 < n) {
			part_add(p, c, *i);
			(*i)++;
		} else if (c == '"') {
			ls->quoted = 0;
		}
		part_add(p, s[*i], *i);
	} else if (ls->comment) {
		if (c == '\\' && *i + 1 < n)
			(*i)++;
		else
			ls->comment += c == '(' ? 1 : c == ')' ? -1 : 0;
	} else if (c == '(') {
		ls->comment = 1;
		part_gap(p);
	} else if (c == '"') {
		ls->quoted = 1;
		part_add(p, c, *i);
	} else if (is_blank(c)) {
		part_gap(p);
	} else if (ls->in_angle) {
		if (c == '>')
			ls->in_angle = 0;
		else
			part_add(p, c, *i);
	} else if (c == '<') {
		ls->in_angle = ls->had_angle = 1;
		part_reset(&ls->angle);
	} else if (c == ':') {
		part_reset(&ls->word); /* a group's display name */
	} else if (c == ',' || c == ';') {
		list_item(ls);
	} else {
		part_add(p, c, *i);
	}
}

int addr_list_scan(const char *s, size_t n, addr_item_fn *fn, void *arg)
{
	struct list_scan ls = {.fn = fn, .arg = arg};
	for (size_t i = 0; i < n; i++)
		list_char(&ls, s, n, &i);
	/* the end ends the last address, whatever is open */
	int open = ls.quoted || ls.comment || ls.in_angle;
	ls.in_angle = 0;
	list_item(&ls);
	buf_free(&ls.word.text);
	buf_free(&ls.angle.text);
	return open ? -1 : 0;
}

/* RFC 5322 2.1.1: a line of at most 998 characters, its CRLF aside. */
#define LINE_MAX_5322 998

/* The fields whose addresses a local submission's fix-ups complete, as
 * Postfix's cleanup rewrites them (Bcc is removed anyway). */
int addr_field_has_addresses(const char *field, size_t n)
{
	static const char *const names[] = {
		"from",	       "sender",	"reply-to",	 "to",
		"cc",	       "resent-from",	"resent-sender", "resent-to",
		"resent-cc",
	};
	size_t k = hdr_field_name(field, n);
	for (size_t i = 0; k && i < sizeof names / sizeof *names; i++)
		if (!ascii_casecmp_n(field, k, names[i], strlen(names[i])))
			return 1;
	return 0;
}

struct qualify {
	const char *s;    /* the field */
	size_t body;      /* where its list starts */
	const char *domain;
	size_t dlen;
	size_t done;      /* pass 2: what of the field is written */
	size_t pos, line; /* pass 1: how far the lines are measured, and
			     where the current one starts */
	size_t grow;      /* pass 1: what the current line gains */
	int toolong;
	size_t count;     /* pass 2: addresses completed */
	void (*write)(void *arg, const char *p, size_t n);
	void *arg;
};

/* Whether an address is a local part alone, written as one run: what
 * gets "@domain" after it. */
static int bare_local_part(const struct qualify *q, const struct addr_item *it)
{
	struct addr a;
	const char *why;
	size_t where;
	/* "=?" begins an encoded word (RFC 2047), which may not stand in
	 * an addr-spec: a display name without its address, left alone */
	int encoded = it->len >= 2 && !memcmp(it->text, "=?", 2);
	return it->whole && !encoded && !memchr(it->text, '@', it->len) &&
	       it->len + 1 + q->dlen + 2 <= ADDR_PATH_MAX &&
	       addr_parse(it->text, it->len, ADDR_NODOMAIN_OK | ADDR_UTF8, &a,
			  &why, &where) == ADDR_OK;
}

/* Pass 1: measures the lines up to the field's offset to; a line that
 * would grow past the limit leaves the field as it is. */
static void measure_to(struct qualify *q, size_t to)
{
	for (; q->pos < to; q->pos++) {
		if (q->s[q->pos] != '\n')
			continue;
		size_t len = q->pos - q->line;
		if (len && q->s[q->pos - 1] == '\r')
			len--;
		if (len + q->grow > LINE_MAX_5322)
			q->toolong = 1;
		q->line = q->pos + 1;
		q->grow = 0;
	}
}

static void measure_item(void *arg, const struct addr_item *it)
{
	struct qualify *q = arg;
	if (!bare_local_part(q, it))
		return;
	measure_to(q, q->body + it->end);
	q->grow += 1 + q->dlen;
}

static void complete_item(void *arg, const struct addr_item *it)
{
	struct qualify *q = arg;
	if (!bare_local_part(q, it))
		return;
	size_t end = q->body + it->end;
	q->write(q->arg, q->s + q->done, end - q->done);
	q->write(q->arg, "@", 1);
	q->write(q->arg, q->domain, q->dlen);
	q->done = end;
	q->count++;
}

size_t addr_field_qualify(const char *field, size_t n, const char *domain,
			  void (*write)(void *arg, const char *p, size_t n),
			  void *arg)
{
	const char *colon = memchr(field, ':', n);
	struct qualify q = {.s = field, .domain = domain,
			    .dlen = strlen(domain), .write = write, .arg = arg};
	q.body = colon ? (size_t)(colon - field) + 1 : n;
	/* a field it cannot read as a list stays as it is */
	q.toolong = !colon || !q.dlen ||
		    addr_list_scan(field + q.body, n - q.body, measure_item,
				   &q) < 0;
	measure_to(&q, n);
	if (n - q.line + q.grow > LINE_MAX_5322) /* a last line unended */
		q.toolong = 1;
	if (!q.toolong)
		addr_list_scan(field + q.body, n - q.body, complete_item, &q);
	write(arg, field + q.done, n - q.done);
	return q.count;
}
