/*
 * cf_lex.c - postmaster.cf: the lexer and reading files (SPEC 3.1).
 *
 * Owns: turning bytes into section headers and assignments: words, quoted
 * strings with their escapes, UTF-8 checks, line limits; reading a file
 * whole (a route file too) and unescaping its words into one arena per
 * file, so no line costs an allocation.
 *
 * Never: gives a value a meaning (cf_schema.c does), or reads anything
 * but the file it is asked to.
 */
#include "cf_impl.h"
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Lexer                                                               */

struct cf_pos lx_pos(const struct lexer *lx, const char *at)
{
	struct cf_pos pos = {lx->path, lx->line,
			     (uint32_t)(at - lx->line_start) + 1 + lx->col_base};
	return pos;
}

void lx_error(struct lexer *lx, const char *at, const char *fmt, ...)
{
	struct cf_pos pos = lx_pos(lx, at);
	va_list ap;
	va_start(ap, fmt);
	cf_diag(lx->cf, &pos, "", fmt, ap);
	va_end(ap);
	lx->cf->nerrors++;
	lx->errors++;
}

static int at_eol(const struct lexer *lx, const char *p)
{
	return p >= lx->end || *p == '\n' || (*p == '\r' && p + 1 < lx->end &&
					      p[1] == '\n') ||
	       (*p == '\r' && p + 1 == lx->end);
}

int cf_is_atom_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '\\' && c != '"' && c != '#' &&
	       c != '=';
}

static const char *describe_char(unsigned char c, char *tmp, size_t n)
{
	if (c == 0)
		return "a NUL byte";
	if (c == '\r')
		return "a bare carriage return";
	if (c < 0x20 || c == 0x7f) {
		fmt_snprintf(tmp, n, "control character 0x%02X", c);
		return tmp;
	}
	fmt_snprintf(tmp, n, "'%c'", c);
	return tmp;
}

/* Copies the UTF-8 character at lx->p to dst; -1 (reported) when the
 * bytes are not UTF-8. */
static int lx_utf8(struct lexer *lx, char *dst, size_t *len, const char *where)
{
	size_t l = utf8_seqlen((const unsigned char *)lx->p,
			       (size_t)(lx->end - lx->p));
	if (!l) {
		lx_error(lx, lx->p, "expected UTF-8%s, found byte 0x%02X", where,
			 (unsigned char)*lx->p);
		return -1;
	}
	memcpy(dst + *len, lx->p, l);
	*len += l;
	lx->p += l;
	return 0;
}

/* The body of a quoted string after its '"', unescaped into dst. */
static enum tok lx_quoted(struct lexer *lx, const char *start, char *dst,
			  size_t *len)
{
	char tmp[40];
	lx->p++;
	for (;;) {
		if (at_eol(lx, lx->p) && !(lx->p < lx->end && *lx->p == '\r' &&
					   lx->p + 1 < lx->end &&
					   lx->p[1] != '\n')) {
			lx_error(lx, start, "expected '\"' to close the string, "
					    "found the end of the line");
			return TOK_ERROR;
		}
		unsigned char c = (unsigned char)*lx->p;
		if (c == '"') {
			lx->p++;
			return TOK_WORD;
		}
		if (c == '\\') {
			if (at_eol(lx, lx->p + 1)) {
				lx_error(lx, lx->p, "expected a character after "
						    "'\\', found the end of the "
						    "line");
				return TOK_ERROR;
			}
			lx->p++;
			c = (unsigned char)*lx->p;
		}
		if (c < 0x20 && c != '\t') {
			lx_error(lx, lx->p, "expected text in the quoted string, "
					    "found %s",
				 describe_char(c, tmp, sizeof tmp));
			return TOK_ERROR;
		}
		if (c >= 0x80) {
			if (lx_utf8(lx, dst, len, " in the quoted string") < 0)
				return TOK_ERROR;
			continue;
		}
		dst[(*len)++] = (char)c;
		lx->p++;
	}
}

static int is_bom(const struct lexer *lx, const char *p)
{
	return lx->end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3);
}

/* An unquoted word, copied to dst. */
static enum tok lx_atom(struct lexer *lx, char *dst, size_t *len)
{
	char tmp[40];
	while (lx->p < lx->end && !at_eol(lx, lx->p)) {
		unsigned char c = (unsigned char)*lx->p;
		if (c == ' ' || c == '\t' || c == '#' || c == '=' || c == '"')
			break;
		if (!cf_is_atom_char(c)) {
			if (c == '\\')
				lx_error(lx, lx->p, "expected a word, found '\\' "
						    "outside a quoted string");
			else
				lx_error(lx, lx->p, "expected a word, found %s",
					 describe_char(c, tmp, sizeof tmp));
			return TOK_ERROR;
		}
		if (is_bom(lx, lx->p)) {
			lx_error(lx, lx->p, "expected a word, found a byte-order "
					    "mark (U+FEFF), which only the "
					    "start of a file may hold");
			return TOK_ERROR;
		}
		if (c >= 0x80) {
			if (lx_utf8(lx, dst, len, "") < 0)
				return TOK_ERROR;
			continue;
		}
		dst[(*len)++] = (char)c;
		lx->p++;
	}
	return TOK_WORD;
}

/* Whether the word just read (quoted or not, its last character in
 * dst[len - 1]) may touch the character at lx->p: a blank must separate
 * two words, except that a character of lx->glue may touch a quote on
 * either side ('[smtpd "x"]', '"|cmd",/m/' and '/m/,"|cmd"'). */
static int glued(const struct lexer *lx, int quoted, const char *dst,
		 size_t len)
{
	unsigned char c = (unsigned char)*lx->p;
	if (c == '"')
		return !quoted && lx->glue && len && strchr(lx->glue, dst[len - 1]);
	return !quoted || !cf_is_atom_char(c) || (lx->glue && strchr(lx->glue, c));
}

enum tok lx_next(struct lexer *lx, struct cf_word *out)
{
	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		lx->p++;
	if (at_eol(lx, lx->p))
		return TOK_END;
	if (*lx->p == '#') {
		while (!at_eol(lx, lx->p))
			lx->p++;
		return TOK_END;
	}
	if (*lx->p == '=') {
		lx->p++;
		return TOK_EQ;
	}
	const char *start = lx->p;
	char *dst = lx->arena + lx->used;
	size_t len = 0;
	memset(out, 0, sizeof *out);
	out->col = (uint32_t)(start - lx->line_start) + 1 + lx->col_base;
	out->quoted = *lx->p == '"';
	if ((out->quoted ? lx_quoted(lx, start, dst, &len)
			 : lx_atom(lx, dst, &len)) == TOK_ERROR)
		return TOK_ERROR;
	if (lx->p < lx->end && !at_eol(lx, lx->p) && !lx->loose &&
	    !glued(lx, out->quoted, dst, len)) {
		char tmp[40];
		lx_error(lx, lx->p, "expected a blank between two words, found %s",
			 describe_char((unsigned char)*lx->p, tmp, sizeof tmp));
		return TOK_ERROR;
	}
	dst[len] = 0;
	lx->used += len + 1;
	out->s = dst;
	out->len = (uint32_t)len;
	return TOK_WORD;
}

static void lx_skip_line(struct lexer *lx)
{
	while (lx->p < lx->end && *lx->p != '\n')
		lx->p++;
}

/* "[kind "name"]" at lx->p. */
static void lx_section(struct lexer *lx)
{
	struct buf tmp = {0};
	const char *open = lx->p;
	struct cf_pos pos = lx_pos(lx, open);
	lx->p++;
	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		lx->p++;
	const char *k = lx->p;
	while (lx->p < lx->end && !at_eol(lx, lx->p) && *lx->p != ']' &&
	       *lx->p != ' ' && *lx->p != '\t' && *lx->p != '"')
		lx->p++;
	int kind = cf_kind_lookup(k, (size_t)(lx->p - k));
	if (kind < 0) {
		if (lx->p == k) {
			char d[40];
			lx_error(lx, k, "expected a section name after '[', "
					"found %s",
				 at_eol(lx, k) ? "the end of the line"
					       : describe_char((unsigned char)*k, d,
							       sizeof d));
		}
		else
			lx_error(lx, k,
				 "expected a section (core, syslog, logfile, "
				 "pipe, relay, milter, smtpd, route), found '%s'",
				 cf_shown(k, (size_t)(lx->p - k), &tmp));
		goto skip;
	}
	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		lx->p++;
	const char *name = NULL;
	const char *name_at = lx->p;
	if (lx->p < lx->end && *lx->p == '"') {
		struct cf_word w;
		lx->glue = "]";
		enum tok nt = lx_next(lx, &w);
		lx->glue = NULL;
		if (nt != TOK_WORD)
			goto skip;
		name = w.s;
		while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
			lx->p++;
	}
	if (lx->p >= lx->end || *lx->p != ']') {
		char d[40];
		lx_error(lx, lx->p, "expected ']' to close the section header, "
				    "found %s",
			 at_eol(lx, lx->p) ? "the end of the line"
					   : describe_char((unsigned char)*lx->p, d,
							   sizeof d));
		goto skip;
	}
	lx->p++;
	struct cf_word w;
	enum tok t = lx_next(lx, &w);
	if (t == TOK_ERROR)
		goto skip;
	if (t != TOK_END) {
		lx_error(lx, lx->p - (t == TOK_EQ ? 1 : 0) -
				     (t == TOK_WORD ? w.len : 0),
			 "expected the end of the line after the section "
			 "header, found more text");
		goto skip;
	}
	if (name && !name[0] && kind == CF_ROUTE)
		name = NULL;
	if (cf_kinds[kind].named == 0 && name) {
		lx_error(lx, name_at, "expected ']': [%s] takes no name",
			 cf_kinds[kind].name);
		goto skip;
	}
	if (cf_kinds[kind].named == 1 && (!name || !name[0])) {
		lx_error(lx, name ? name_at : lx->p - 1,
			 "expected a quoted name: [%s \"NAME\"]",
			 cf_kinds[kind].name);
		goto skip;
	}
	lx->cursec = cf_add_section(lx->cf, (enum cf_kind)kind, name, &pos);
	struct cf_assign *a = cf_add_assign(lx->cf);
	a->sec = lx->cursec;
	a->key = KEY_DECLARE;
	a->pos = pos;
	a->basedir = lx->basedir;
	buf_free(&tmp);
	return;
skip:
	/* later lines must not land in the previous section */
	lx->cursec = UINT32_MAX;
	buf_free(&tmp);
	lx_skip_line(lx);
}

/*
 * Reads the words of an assignment after its key: ['='] word+.
 * Returns 0 and fills w0/nw, or -1.
 */
int lx_values(struct lexer *lx, const char *keyat, const char *key,
		     uint32_t *w0, uint32_t *nw)
{
	struct buf tmp = {0};
	struct cf_word w;
	int seen_eq = 0;
	*w0 = lx->cf->nwords;
	*nw = 0;
	for (;;) {
		const char *at = lx->p;
		while (at < lx->end && (*at == ' ' || *at == '\t'))
			at++;
		enum tok t = lx_next(lx, &w);
		if (t == TOK_ERROR)
			goto bad;
		if (t == TOK_END)
			break;
		if (t == TOK_EQ) {
			if (seen_eq || *nw) {
				lx_error(lx, at,
					 "expected a value, found '=' (quote a "
					 "value that contains '=')");
				goto bad;
			}
			seen_eq = 1;
			continue;
		}
		*cf_add_word(lx->cf) = w;
		(*nw)++;
	}
	if (*nw == 0) {
		lx_error(lx, lx->p, "expected a value after '%s', found the "
				    "end of the line",
			 cf_shown(key, strlen(key), &tmp));
		(void)keyat;
		goto bad;
	}
	buf_free(&tmp);
	return 0;
bad:
	lx->cf->nwords = *w0;
	buf_free(&tmp);
	return -1;
}

/* 1 + the kind of another section that has the route pattern just read
 * as a key, when '=' follows it ('spf = reject' before any header, or
 * under [route], would be a route for the local name "spf"); else 0. A
 * route file has no section headers, so no key is out of place there:
 * its 'timeout = root' is the route it always was. */
static int lx_key_elsewhere(const struct lexer *lx, const struct cf_word *key)
{
	if (lx->route_only)
		return 0;
	const char *q = lx->p;
	while (q < lx->end && (*q == ' ' || *q == '\t'))
		q++;
	if (q >= lx->end || *q != '=' || memchr(key->s, '@', key->len))
		return 0;
	for (int k = 0; k < CF_NKINDS; k++)
		if (k != CF_ROUTE && cf_key_lookup((enum cf_kind)k, key->s,
						   key->len) >= 0)
			return k + 1;
	return 0;
}

static void lx_assignment(struct lexer *lx)
{
	struct buf tmp = {0};
	struct cf_word key;
	const char *keyat = lx->p;
	enum tok t = lx_next(lx, &key);
	if (t == TOK_ERROR)
		goto skip;
	if (t == TOK_EQ) {
		lx_error(lx, keyat, "expected a key before '='");
		goto skip;
	}
	struct cf_pos pos = lx_pos(lx, keyat);
	if (lx->cursec == UINT32_MAX)
		goto skip; /* the broken header was reported */
	struct cf_section *sec = &lx->cf->secs[lx->cursec];
	int keyid;
	if (sec->kind == CF_ROUTE) {
		keyid = (!key.quoted && !strcmp(key.s, "file")) ? KEY_FILE
								  : KEY_ROUTE;
	} else {
		keyid = cf_key_lookup(sec->kind, key.s, key.len);
		if (keyid < 0 || key.quoted) {
			lx_error(lx, keyat, "expected a key of [%s], found %s'%s'",
				 cf_kinds[sec->kind].name,
				 key.quoted ? "the quoted string " : "",
				 cf_shown(key.s, key.len, &tmp));
			goto skip;
		}
	}
	int other = keyid == KEY_ROUTE && !key.quoted
			    ? lx_key_elsewhere(lx, &key)
			    : 0;
	if (other) {
		lx_error(lx, keyat,
			 "expected a route, found the key '%s' of [%s] (a key "
			 "goes under its section's header; quote a local name "
			 "that is spelt like a key)",
			 cf_shown(key.s, key.len, &tmp),
			 cf_kinds[other - 1].name);
		goto skip;
	}
	uint32_t w0, nw;
	/* commas between targets need no blanks, beside quotes too */
	lx->glue = keyid == KEY_ROUTE ? "," : NULL;
	int r = lx_values(lx, keyat, key.s, &w0, &nw);
	lx->glue = NULL;
	if (r < 0) {
		/* reported: no second message that the key is missing */
		if (keyid >= 0)
			sec->bad |= 1u << keyid;
		goto skip;
	}
	struct cf_assign *a = cf_add_assign(lx->cf);
	a->sec = lx->cursec;
	a->key = keyid;
	a->keytext = key.s;
	a->keylen = key.len;
	a->key_quoted = key.quoted;
	a->w0 = w0;
	a->nw = nw;
	a->pos = pos;
	a->basedir = lx->basedir;
	buf_free(&tmp);
	return;
skip:
	buf_free(&tmp);
	lx_skip_line(lx);
}

/* Lexes a whole buffer: a postmaster.cf, or (route_only) a route file. */
static void lx_run(struct lexer *lx)
{
	while (lx->p < lx->end) {
		lx->line++;
		lx->line_start = lx->p;
		const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
		const char *eol = nl ? nl : lx->end;
		/* the limit counts neither the LF nor the CR of a CRLF */
		const char *text_end = eol > lx->p && eol[-1] == '\r' ? eol - 1
								       : eol;
		if (text_end - lx->p > CF_MAX_LINE) {
			lx_error(lx, lx->p + CF_MAX_LINE,
				 "expected at most %d bytes in a line, found %zu",
				 CF_MAX_LINE, (size_t)(text_end - lx->p));
		} else {
			const char *q = lx->p;
			while (q < eol && (*q == ' ' || *q == '\t'))
				q++;
			if (q == eol || *q == '#' || (*q == '\r' && q + 1 == eol)) {
				/* blank or comment */
			} else if (*q == '[' && lx->route_only) {
				lx_error(lx, q, "expected a route line, found a "
						"section header (a route file "
						"holds routes only)");
			} else if (*q == '[') {
				lx->p = q;
				lx_section(lx);
			} else {
				lx->p = q;
				lx_assignment(lx);
			}
		}
		lx->p = nl ? nl + 1 : lx->end;
	}
}

char *cf_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/*
 * Reads a file whole. Returns its buffer (caller frees) or NULL with a
 * reason in why.
 */
static char *read_whole(const char *path, size_t *size, struct stat *st,
			char *why, size_t whylen)
{
	/* O_NONBLOCK: a FIFO is refused below, not waited for (a regular
	 * file reads the same with it) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		fmt_snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) < 0) {
		fmt_snprintf(why, whylen, "cannot stat: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st->st_mode)) {
		fmt_snprintf(why, whylen, "is a directory, expected a file");
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		fmt_snprintf(why, whylen, "is not a regular file");
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (st->st_size > (off_t)256 << 20) {
		fmt_snprintf(why, whylen, "is larger than 256 MiB");
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	size_t n = (size_t)st->st_size, got = 0;
	char *text = xmalloc(n + 1);
	while (got < n) {
		ssize_t r = read(fd, text + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fmt_snprintf(why, whylen, "cannot read: %s", strerror(errno));
			free(text);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	text[got] = 0;
	*size = got;
	return text;
}

static int load_buffer(struct cf *cf, const char *name, const char *text,
		       size_t len, int route_only, uint32_t sec,
		       const char *basedir)
{
	struct cf_file *f = cf_add_file(cf, name, len);
	/* editors write a UTF-8 byte-order mark first; it is no part of
	 * the first word (columns count from after it) */
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
		text += 3;
		len -= 3;
	}
	struct lexer lx = {
		.cf = cf,
		.path = f->path,
		.p = text,
		.end = text + len,
		.arena = f->text,
		.route_only = route_only,
		.cursec = sec,
		.basedir = basedir ? basedir : f->dir,
	};
	lx_run(&lx);
	return lx.errors ? -1 : 0;
}

int cf_load_text(struct cf *cf, const char *name, const char *text, size_t len)
{
	cf->path = name;
	if (!cf->basedir)
		cf->basedir = cf_dir_of(name);
	struct cf_pos pos = {name, 1, 1};
	uint32_t g = cf_add_section(cf, CF_ROUTE, NULL, &pos);
	return load_buffer(cf, name, text, len, 0, g, cf->basedir);
}

int cf_load(struct cf *cf, const char *path, int required)
{
	char why[256];
	size_t size;
	struct stat st;
	char *text = read_whole(path, &size, &st, why, sizeof why);
	if (!text) {
		if (!required && errno == ENOENT) {
			cf->builtin_default = 1;
			return 0;
		}
		struct cf_pos pos = {path, 0, 0};
		cf_error(cf, &pos, "%s", why);
		return -2;
	}
	int r = cf_load_text(cf, path, text, size);
	free(text);
	return r;
}


int cf_load_route_file(struct cf *cf, const char *path, uint32_t sec,
		       struct stat *st, char *why, size_t whylen)
{
	size_t size;
	char *text = read_whole(path, &size, st, why, whylen);
	if (!text)
		return -2;
	int r = load_buffer(cf, path, text, size, 1, sec, NULL);
	free(text);
	return r;
}
