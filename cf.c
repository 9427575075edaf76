/*
 * cf.c - postmaster.cf: lexer, scoped assignments, command-line flags,
 * typed values with defaults, references, and --dump.
 *
 * Owns: SPEC 3 in full. A file is read whole into memory and its words are
 * unescaped into one arena per file: no per-line allocation, because every
 * connection pays for this. Diagnostics are collected, never printed here,
 * as "file:line:column: what was expected, what was found".
 *
 * Never: touches the network, resolves DNS, or acts on a configuration that
 * reported errors. The checks that need the system (users, paths) are
 * warnings and only run for --check.
 */
#include "cf.h"
#include "net.h"
#include "tls.h"
#include "addr.h"
#include "route.h"
#include "rtindex.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Key tables                                                          */

enum vtype {
	V_STRING, V_PATH, V_STRFTIME_PATH, V_USER, V_GROUP, V_HOSTNAME, V_SIZE,
	V_DURATION, V_BOOL, V_ENUM, V_UINT, V_LISTEN, V_DNS, V_RELAYADDR,
	V_LOGGER, V_PIPEREF, V_ROUTEREF, V_ARGV, V_DELIM, V_NETWORK,
};

enum { K_REPEAT = 1, K_REQUIRED = 2, K_ZERO = 4 /* a zero duration is valid */ };

struct key {
	const char *name;
	enum vtype type;
	unsigned flags;
	const char *def;        /* default as text; NULL = not set */
	const char *const *enums;
	uint64_t min, max;      /* V_UINT */
	const char *help;       /* what --dump --defaults says when unset */
};

static const char *const e_bounce[] = {"sender", "postmaster", "both", 0};
static const char *const e_facility[] = {
	"mail", "daemon", "user", "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7", 0};
static const char *const e_protocol[] = {"smtp", "lmtp", 0};
static const char *const e_rtls[] = {"opportunistic", "required", "verify",
				     "no", 0};
static const char *const e_stls[] = {"no", "starttls", "implicit", 0};
static const char *const e_auth[] = {"no", "optional", "required", 0};
static const char *const e_spf[] = {"off", "tag", "reject", 0};
static const char *const e_bare[] = {"normalize", "reject", 0};

static const struct key core_keys[] = {
	[CORE_LOGGER] = {"logger", V_LOGGER, 0, "syslog", 0, 0, 0, 0},
	[CORE_USER_ID] = {"user-id", V_USER, 0, 0, 0, 0, 0,
			  "not set: stay the user that started postmaster"},
	[CORE_GROUP_ID] = {"group-id", V_GROUP, 0, 0, 0, 0, 0,
			   "not set: the user-id's primary group"},
	[CORE_PID_FILE] = {"pid-file", V_PATH, 0, "/run/postmaster.pid", 0, 0,
			   0, 0},
	[CORE_SPOOL_DIRECTORY] = {"spool-directory", V_PATH, 0,
				  "/var/spool/postmaster", 0, 0, 0, 0},
	[CORE_LOCAL_MAILER] = {"local-mailer", V_PIPEREF, 0, "local", 0, 0, 0,
			       0},
	[CORE_HOSTNAME] = {"hostname", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[CORE_MAX_MESSAGE_SIZE] = {"max-message-size", V_SIZE, 0, "10240000",
				   0, 0, 0, 0},
	[CORE_QUEUE_LIFETIME] = {"queue-lifetime", V_DURATION, K_ZERO, "5d", 0, 0,
				 0, 0},
	[CORE_BOUNCE_TO] = {"bounce-to", V_ENUM, 0, "sender", e_bounce, 0, 0,
			    0},
	[CORE_DNS_SERVER] = {"dns-server", V_DNS, 0, 0, 0, 0, 0,
			     "not set: the servers of /etc/resolv.conf"},
	[CORE_RECIPIENT_DELIMITER] = {"recipient-delimiter", V_DELIM, 0, 0, 0,
				      0, 0, "not set: no address extensions"},
	[CORE_MINIMAL_BACKOFF] = {"minimal-backoff", V_DURATION, 0, "300s", 0,
				  0, 0, 0},
	[CORE_MAXIMAL_BACKOFF] = {"maximal-backoff", V_DURATION, 0, "4000s", 0,
				  0, 0, 0},
};

static const struct key syslog_keys[] = {
	[SYSLOG_IDENT] = {"ident", V_STRING, 0, "postmaster", 0, 0, 0, 0},
	[SYSLOG_FACILITY] = {"facility", V_ENUM, 0, "mail", e_facility, 0, 0,
			     0},
};

static const struct key logfile_keys[] = {
	[LOGFILE_FILE] = {"file", V_STRFTIME_PATH, K_REQUIRED, 0, 0, 0, 0, 0},
};

static const struct key pipe_keys[] = {
	[PIPE_EXEC] = {"exec", V_ARGV, K_REQUIRED, 0, 0, 0, 0, 0},
	[PIPE_MAX_RCPT_TO] = {"max_rcpt_to", V_UINT, 0, "1", 0, 1, 1000, 0},
	[PIPE_TIMEOUT] = {"timeout", V_DURATION, 0, "300s", 0, 0, 0, 0},
};

static const struct key relay_keys[] = {
	[RELAY_NAME] = {"name", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[RELAY_ADDRESS] = {"address", V_RELAYADDR, K_REPEAT, 0, 0, 0, 0, 0},
	[RELAY_PROTOCOL] = {"protocol", V_ENUM, 0, "smtp", e_protocol, 0, 0,
			    0},
	[RELAY_TLS] = {"tls", V_ENUM, 0, "opportunistic", e_rtls, 0, 0, 0},
	[RELAY_AUTH_USER] = {"auth-user", V_STRING, 0, 0, 0, 0, 0,
			     "not set: no AUTH"},
	[RELAY_AUTH_PASSWORD] = {"auth-password", V_STRING, 0, 0, 0, 0, 0,
				 "not set"},
};

static const struct key smtpd_keys[] = {
	[SMTPD_NAME] = {"name", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[SMTPD_LISTEN_PORT] = {"listen-port", V_LISTEN, 0, 0, 0, 0, 0, 0},
	[SMTPD_ROUTING_TABLE] = {"routing-table", V_ROUTEREF, K_REPEAT, 0, 0,
				 0, 0, "not set: only the global [route]"},
	[SMTPD_LOGGER] = {"logger", V_LOGGER, 0, 0, 0, 0, 0, 0},
	[SMTPD_LOCAL_RCPT_TO] = {"local-rcpt-to", V_BOOL, 0, "no", 0, 0, 0, 0},
	[SMTPD_TLS] = {"tls", V_ENUM, 0, "no", e_stls, 0, 0, 0},
	[SMTPD_TLS_CERTIFICATE] = {"tls-certificate", V_PATH, K_REPEAT, 0, 0, 0,
				   0, "not set"},
	[SMTPD_TLS_KEY] = {"tls-key", V_PATH, K_REPEAT, 0, 0, 0, 0, "not set"},
	[SMTPD_TLS_PRIORITY] = {"tls-priority", V_STRING, 0, 0, 0, 0, 0,
				"not set: the Mozilla intermediate profile "
				"where passwords are taken, else any "
				"forward-secret AEAD suite"},
	[SMTPD_AUTH] = {"auth", V_ENUM, 0, "no", e_auth, 0, 0, 0},
	[SMTPD_AUTH_FILE] = {"auth-file", V_PATH, 0, 0, 0, 0, 0, "not set"},
	[SMTPD_SPF] = {"spf", V_ENUM, 0, "off", e_spf, 0, 0, 0},
	[SMTPD_VERIFY_SENDER] = {"verify-sender", V_BOOL, 0, "no", 0, 0, 0, 0},
	[SMTPD_ACCEPT_MAIL] = {"accept-mail", V_BOOL, 0, "yes", 0, 0, 0, 0},
	[SMTPD_MAX_RECIPIENTS] = {"max-recipients", V_UINT, 0, "100", 0, 1,
				  100000, 0},
	[SMTPD_MAX_MESSAGE_SIZE] = {"max-message-size", V_SIZE, 0, 0, 0, 0, 0,
				    0},
	[SMTPD_BARE_NEWLINE] = {"bare-newline", V_ENUM, 0, "normalize", e_bare,
				0, 0, 0},
	[SMTPD_TIMEOUT] = {"timeout", V_DURATION, 0, "300s", 0, 0, 0, 0},
	[SMTPD_LMTP] = {"lmtp", V_BOOL, 0, "yes", 0, 0, 0, 0},
	[SMTPD_RELAY_CLIENTS] = {"relay-clients", V_NETWORK, K_REPEAT, 0, 0, 0,
				 0, "not set: loopback"},
};

static const struct {
	const char *name;
	const struct key *keys;
	int nkeys;
	int named; /* 0: never, 1: always, 2: optional */
} kinds[CF_NKINDS] = {
	[CF_CORE] = {"core", core_keys, CORE_NKEYS, 0},
	[CF_SYSLOG] = {"syslog", syslog_keys, SYSLOG_NKEYS, 0},
	[CF_LOGFILE] = {"logfile", logfile_keys, LOGFILE_NKEYS, 1},
	[CF_PIPE] = {"pipe", pipe_keys, PIPE_NKEYS, 1},
	[CF_RELAY] = {"relay", relay_keys, RELAY_NKEYS, 1},
	[CF_SMTPD] = {"smtpd", smtpd_keys, SMTPD_NKEYS, 1},
	[CF_ROUTE] = {"route", NULL, 0, 2},
};


const char *cf_kind_name(enum cf_kind kind)
{
	return kinds[kind].name;
}

static int kind_lookup(const char *s, size_t n)
{
	for (int k = 0; k < CF_NKINDS; k++)
		if (strlen(kinds[k].name) == n && memcmp(kinds[k].name, s, n) == 0)
			return k;
	return -1;
}

int cf_flag_shaped(const char *arg)
{
	size_t k = strcspn(arg, ".-=");
	return kind_lookup(arg, k) >= 0 && (arg[k] == '.' || arg[k] == '-');
}

static int key_lookup(enum cf_kind kind, const char *s, size_t n)
{
	for (int i = 0; i < kinds[kind].nkeys; i++) {
		const char *k = kinds[kind].keys[i].name;
		if (strlen(k) == n && memcmp(k, s, n) == 0)
			return i;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Diagnostics                                                         */

static void diag(struct cf *cf, const struct cf_pos *pos, const char *kind,
		 const char *fmt, va_list ap)
{
	if (pos && pos->file) {
		if (pos->line)
			buf_printf(&cf->diag, "%s:%u:%u: %s", pos->file,
				   pos->line, pos->col, kind);
		else
			buf_printf(&cf->diag, "%s: %s", pos->file, kind);
	} else {
		buf_printf(&cf->diag, "postmaster: %s", kind);
	}
	buf_vprintf(&cf->diag, fmt, ap);
	buf_addc(&cf->diag, '\n');
}

void cf_error(struct cf *cf, const struct cf_pos *pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag(cf, pos, "", fmt, ap);
	va_end(ap);
	cf->nerrors++;
}

void cf_warn(struct cf *cf, const struct cf_pos *pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag(cf, pos, "warning: ", fmt, ap);
	va_end(ap);
	cf->nwarnings++;
}

/* Text of untrusted bytes for a diagnostic, escaped, at most 60 bytes. */
static const char *shown(const char *s, size_t n, struct buf *tmp)
{
	tmp->len = 0;
	if (n > 60) {
		buf_add_escaped(tmp, s, 57);
		buf_adds(tmp, "...");
	} else {
		buf_add_escaped(tmp, s, n);
	}
	if (!tmp->s)
		buf_adds(tmp, "");
	return tmp->s;
}

/* ------------------------------------------------------------------ */
/* Storage                                                             */

struct cf *cf_new(void)
{
	struct cf *cf = xcalloc(1, sizeof *cf);
	if (gethostname(cf->hostname, sizeof cf->hostname - 1) < 0 ||
	    !cf->hostname[0])
		snprintf(cf->hostname, sizeof cf->hostname, "localhost");
	return cf;
}

struct cf_pool {
	struct cf_pool *next;
	size_t used, cap;
	char mem[];
};

void *cf_alloc(struct cf *cf, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!cf->pool || cf->pool->cap - cf->pool->used < n) {
		size_t cap = n > 8192 ? n : 8192;
		struct cf_pool *p = xmalloc(sizeof *p + cap);
		p->next = cf->pool;
		p->used = 0;
		p->cap = cap;
		cf->pool = p;
	}
	void *r = cf->pool->mem + cf->pool->used;
	cf->pool->used += n;
	return r;
}

static uint32_t add_section(struct cf *cf, enum cf_kind kind,
			    const char *name, const struct cf_pos *pos)
{
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *s = &cf->secs[i];
		if (s->kind == kind && ((!s->name && !name) ||
					(s->name && name && !strcmp(s->name, name))))
			return i;
	}
	if (cf->nsecs == cf->capsecs) {
		cf->capsecs = cf->capsecs ? cf->capsecs * 2 : 16;
		cf->secs = xrealloc(cf->secs, cf->capsecs * sizeof *cf->secs);
	}
	struct cf_section *s = &cf->secs[cf->nsecs];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->name = name;
	if (pos)
		s->pos = *pos;
	return cf->nsecs++;
}

static struct cf_assign *add_assign(struct cf *cf)
{
	if (cf->nas % CF_ABLK == 0) {
		uint32_t nb = cf->nas / CF_ABLK;
		cf->ablk = xrealloc(cf->ablk, (nb + 1) * sizeof *cf->ablk);
		cf->ablk[nb] = xmalloc(CF_ABLK * sizeof **cf->ablk);
	}
	struct cf_assign *a = cf_assign_at(cf, cf->nas++);
	memset(a, 0, sizeof *a);
	return a;
}

static struct cf_word *add_word(struct cf *cf)
{
	if (cf->nwords == cf->capwords) {
		cf->capwords = cf->capwords ? cf->capwords * 2 : 256;
		cf->words = xrealloc(cf->words, cf->capwords * sizeof *cf->words);
	}
	struct cf_word *w = &cf->words[cf->nwords++];
	memset(w, 0, sizeof *w);
	return w;
}

static char *dir_of(const char *path);

static struct cf_file *add_file(struct cf *cf, const char *path, size_t size)
{
	struct cf_file *f = xcalloc(1, sizeof *f);
	f->path = xstrdup(path);
	f->dir = dir_of(path);
	/* every word is at most as long as its source plus a NUL */
	f->text = xmalloc(2 * size + 2);
	f->next = cf->files;
	cf->files = f;
	return f;
}

void cf_free(struct cf *cf)
{
	if (!cf)
		return;
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *s = &cf->secs[i];
		for (int k = 0; k < CF_MAXKEYS; k++)
			if (s->kind != CF_ROUTE && k < kinds[s->kind].nkeys &&
			    (kinds[s->kind].keys[k].flags & K_REPEAT ||
			     kinds[s->kind].keys[k].type == V_ARGV))
				free(s->v[k].list.v);
		if (s->table) {
			for (uint32_t j = 0; j < s->table->n; j++)
				if (s->table->e[j].idx)
					rtindex_close(s->table->e[j].idx);
			free(s->table->e);
			free(s->table);
		}
	}
	while (cf->files) {
		struct cf_file *f = cf->files;
		cf->files = f->next;
		free(f->path);
		free(f->dir);
		free(f->text);
		free(f);
	}
	while (cf->pool) {
		struct cf_pool *p = cf->pool;
		cf->pool = p->next;
		free(p);
	}
	for (uint32_t i = 0; i < cf->ndeps; i++)
		free(cf->deps[i]);
	free(cf->deps);
	free(cf->secs);
	for (uint32_t i = 0; i < (cf->nas + CF_ABLK - 1) / CF_ABLK; i++)
		free(cf->ablk[i]);
	free(cf->ablk);
	free(cf->words);
	free(cf->merged);
	free((char *)cf->basedir);
	buf_free(&cf->diag);
	free(cf);
}

/* ------------------------------------------------------------------ */
/* Lexer                                                               */

struct lexer {
	struct cf *cf;
	const char *path;
	const char *p, *end;
	const char *line_start;
	uint32_t line;
	uint32_t col_base; /* flags: column of p's string start */
	char *arena;
	size_t used;
	int route_only; /* a route file: no section headers */
	uint32_t cursec;
	const char *basedir;
	int errors;
	const char *glue; /* what may touch a closing quote: ']' in a section
			     header */
	int loose;        /* a flag's scope: its own checks follow */
};

enum tok { TOK_END, TOK_WORD, TOK_EQ, TOK_ERROR };

static struct cf_pos lx_pos(const struct lexer *lx, const char *at)
{
	struct cf_pos pos = {lx->path, lx->line,
			     (uint32_t)(at - lx->line_start) + 1 + lx->col_base};
	return pos;
}

static void lx_error(struct lexer *lx, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void lx_error(struct lexer *lx, const char *at, const char *fmt, ...)
{
	struct cf_pos pos = lx_pos(lx, at);
	va_list ap;
	va_start(ap, fmt);
	diag(lx->cf, &pos, "", fmt, ap);
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

static int is_atom_char(unsigned char c)
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
		snprintf(tmp, n, "control character 0x%02X", c);
		return tmp;
	}
	snprintf(tmp, n, "'%c'", c);
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

/*
 * Reads the next token of the current line. A word is unescaped into the
 * arena and recorded in cf->words.
 */
static enum tok lx_next(struct lexer *lx, struct cf_word *out)
{
	char tmp[40];
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
	if (*lx->p == '"') {
		lx->p++;
		for (;;) {
			if (at_eol(lx, lx->p) && !(lx->p < lx->end &&
						   *lx->p == '\r' &&
						   lx->p + 1 < lx->end &&
						   lx->p[1] != '\n')) {
				lx_error(lx, start,
					 "expected '\"' to close the string, "
					 "found the end of the line");
				return TOK_ERROR;
			}
			unsigned char c = (unsigned char)*lx->p;
			if (c == '"') {
				lx->p++;
				break;
			}
			if (c == '\\') {
				if (at_eol(lx, lx->p + 1)) {
					lx_error(lx, lx->p,
						 "expected a character after "
						 "'\\', found the end of the line");
					return TOK_ERROR;
				}
				lx->p++;
				c = (unsigned char)*lx->p;
			}
			if (c < 0x20 && c != '\t') {
				lx_error(lx, lx->p,
					 "expected text in the quoted string, "
					 "found %s",
					 describe_char(c, tmp, sizeof tmp));
				return TOK_ERROR;
			}
			if (c >= 0x80) {
				if (lx_utf8(lx, dst, &len, " in the quoted string") < 0)
					return TOK_ERROR;
				continue;
			}
			dst[len++] = (char)c;
			lx->p++;
		}
		out->quoted = 1;
	} else {
		while (lx->p < lx->end && !at_eol(lx, lx->p)) {
			unsigned char c = (unsigned char)*lx->p;
			if (c == ' ' || c == '\t' || c == '#' || c == '=' ||
			    c == '"')
				break;
			if (!is_atom_char(c)) {
				if (c == '\\')
					lx_error(lx, lx->p,
						 "expected a word, found '\\' "
						 "outside a quoted string");
				else
					lx_error(lx, lx->p,
						 "expected a word, found %s",
						 describe_char(c, tmp,
							       sizeof tmp));
				return TOK_ERROR;
			}
			if (c >= 0x80) {
				if (lx_utf8(lx, dst, &len, "") < 0)
					return TOK_ERROR;
				continue;
			}
			dst[len++] = (char)c;
			lx->p++;
		}
	}
	if (lx->p < lx->end && !at_eol(lx, lx->p) && !lx->loose &&
	    (*lx->p == '"' || (out->quoted && is_atom_char((unsigned char)*lx->p) &&
				!(lx->glue && strchr(lx->glue, *lx->p))))) {
		char tmp2[40];
		lx_error(lx, lx->p, "expected a blank between two words, found %s",
			 describe_char((unsigned char)*lx->p, tmp2, sizeof tmp2));
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
	int kind = kind_lookup(k, (size_t)(lx->p - k));
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
				 "pipe, relay, smtpd, route), found '%s'",
				 shown(k, (size_t)(lx->p - k), &tmp));
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
	if (kinds[kind].named == 0 && name) {
		lx_error(lx, name_at, "expected ']': [%s] takes no name",
			 kinds[kind].name);
		goto skip;
	}
	if (kinds[kind].named == 1 && (!name || !name[0])) {
		lx_error(lx, name ? name_at : lx->p - 1,
			 "expected a quoted name: [%s \"NAME\"]",
			 kinds[kind].name);
		goto skip;
	}
	lx->cursec = add_section(lx->cf, (enum cf_kind)kind, name, &pos);
	struct cf_assign *a = add_assign(lx->cf);
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
static int lx_values(struct lexer *lx, const char *keyat, const char *key,
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
		*add_word(lx->cf) = w;
		(*nw)++;
	}
	if (*nw == 0) {
		lx_error(lx, lx->p, "expected a value after '%s', found the "
				    "end of the line",
			 shown(key, strlen(key), &tmp));
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
		keyid = key_lookup(sec->kind, key.s, key.len);
		if (keyid < 0 || key.quoted) {
			lx_error(lx, keyat, "expected a key of [%s], found %s'%s'",
				 kinds[sec->kind].name,
				 key.quoted ? "the quoted string " : "",
				 shown(key.s, key.len, &tmp));
			goto skip;
		}
	}
	uint32_t w0, nw;
	if (lx_values(lx, keyat, key.s, &w0, &nw) < 0)
		goto skip;
	struct cf_assign *a = add_assign(lx->cf);
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
		if (eol - lx->p > CF_MAX_LINE) {
			lx_error(lx, lx->p + CF_MAX_LINE,
				 "expected at most %d bytes in a line, found %zu",
				 CF_MAX_LINE, (size_t)(eol - lx->p));
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

static char *dir_of(const char *path)
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
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) < 0) {
		snprintf(why, whylen, "cannot stat: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st->st_mode)) {
		snprintf(why, whylen, "is a directory, expected a file");
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "is not a regular file");
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (st->st_size > (off_t)256 << 20) {
		snprintf(why, whylen, "is larger than 256 MiB");
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
			snprintf(why, whylen, "cannot read: %s", strerror(errno));
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
	struct cf_file *f = add_file(cf, name, len);
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
		cf->basedir = dir_of(name);
	struct cf_pos pos = {name, 1, 1};
	uint32_t g = add_section(cf, CF_ROUTE, NULL, &pos);
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

/* ------------------------------------------------------------------ */
/* Command-line flags                                                  */

int cf_flag(struct cf *cf, const char *arg, int argn)
{
	struct buf tmp = {0};
	size_t n = strlen(arg);
	/* room for the copy of the flag and, after it, its unescaped parts */
	struct cf_file *f = add_file(cf, "command line", 2 * n + 8);
	memcpy(f->text, arg, n + 1);
	char *s = f->text;
	char *arena = f->text + n + 1;
	struct lexer lx = {
		.cf = cf,
		.path = "command line",
		.p = s,
		.end = s + n,
		.line_start = s,
		.line = (uint32_t)argn,
		.col_base = 2, /* the leading "--" */
		.arena = arena,
		.basedir = cf->basedir,
		.loose = 1,
	};
	int r = -1;
	size_t k = strcspn(s, ".-=");
	int kind = kind_lookup(s, k);
	if (kind < 0) {
		lx_error(&lx, s, "expected a section (core, syslog, logfile, "
				 "pipe, relay, smtpd, route) at the start of "
				 "the flag, found '%s'",
			 shown(s, k, &tmp));
		goto out;
	}
	const char *name = NULL;
	const char *p = s + k;
	const char *keystart;
	size_t keylen;
	int key_quoted = 0;
	struct cf_pos pos = lx_pos(&lx, s);
	if (*p == '.') {
		p++;
		if (*p == '"') {
			lx.p = p;
			struct cf_word w;
			if (lx_next(&lx, &w) != TOK_WORD)
				goto out;
			name = w.s;
			p = lx.p;
			if (*p == 0) {
				keystart = p;
				keylen = 0;
				goto have_key;
			}
			if (*p != '.') {
				lx_error(&lx, p, "expected '.' after the section "
						 "name");
				goto out;
			}
			p++;
		}
		if (*p == '"') {
			lx.p = p;
			struct cf_word w;
			if (lx_next(&lx, &w) != TOK_WORD)
				goto out;
			keystart = w.s;
			keylen = w.len;
			key_quoted = 1;
			p = lx.p;
		} else {
			keystart = p;
			keylen = strcspn(p, " \t=");
			p += keylen;
		}
	} else if (*p == '-') {
		p++;
		if (kind != CF_ROUTE && kinds[kind].named) {
			size_t nl = strcspn(p, "-=");
			if (p[nl] != '-') {
				lx_error(&lx, p + nl,
					 "expected %s-NAME-KEY, found no key",
					 kinds[kind].name);
				goto out;
			}
			char *nm = arena + lx.used;
			memcpy(nm, p, nl);
			nm[nl] = 0;
			lx.used += nl + 1;
			name = nm;
			p += nl + 1;
		}
		keystart = p;
		keylen = strcspn(p, " \t=");
		p += keylen;
	} else {
		lx_error(&lx, p, "expected '.' or '-' after '%s'",
			 kinds[kind].name);
		goto out;
	}
have_key:
	if ((kind == CF_ROUTE || kinds[kind].named == 0) && name && !name[0])
		name = NULL; /* core."".key is core.key */
	if (kinds[kind].named == 0 && name) {
		lx_error(&lx, s, "[%s] takes no name", kinds[kind].name);
		goto out;
	}
	if (kinds[kind].named == 1 && (!name || !name[0])) {
		lx_error(&lx, s, "expected a name: %s.\"NAME\".KEY",
			 kinds[kind].name);
		goto out;
	}
	/* the key text must outlive the flag: an atom is copied into the
	 * arena, a quoted key is there already */
	char *key;
	if (key_quoted) {
		key = (char *)keystart;
	} else {
		key = arena + lx.used;
		memcpy(key, keystart, keylen);
		key[keylen] = 0;
		lx.used += keylen + 1;
	}

	uint32_t sec = add_section(cf, (enum cf_kind)kind, name, &pos);
	struct cf_assign *a;
	if (keylen == 0 && !key_quoted) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p) {
			lx_error(&lx, p, "expected a key after the section");
			goto out;
		}
		a = add_assign(cf);
		a->sec = sec;
		a->key = KEY_DECLARE;
		a->pos = pos;
		a->from_flag = 1;
		r = 0;
		goto out;
	}
	int keyid;
	if (kind == CF_ROUTE) {
		keyid = (!key_quoted && !strcmp(key, "file")) ? KEY_FILE
							      : KEY_ROUTE;
	} else {
		keyid = key_lookup((enum cf_kind)kind, key, keylen);
		if (keyid < 0 || key_quoted) {
			lx_error(&lx, keystart, "expected a key of [%s], found '%s'",
				 kinds[kind].name, shown(key, keylen, &tmp));
			goto out;
		}
	}
	lx.p = p;
	lx.loose = 0; /* the value: words as in a file */
	uint32_t w0, nw;
	if (lx_values(&lx, keystart, key, &w0, &nw) < 0)
		goto out;
	a = add_assign(cf);
	a->sec = sec;
	a->key = keyid;
	a->keytext = key;
	a->keylen = (uint32_t)keylen;
	a->key_quoted = (uint8_t)key_quoted;
	a->w0 = w0;
	a->nw = nw;
	a->pos = pos;
	a->from_flag = 1;
	a->basedir = cf->basedir;
	r = 0;
out:
	buf_free(&tmp);
	return r;
}

/* ------------------------------------------------------------------ */
/* Merging flags over the file (SPEC 3.3)                              */

static int same_key(const struct cf *cf, const struct cf_assign *a,
		    const struct cf_assign *b)
{
	if (a->sec != b->sec || a->key != b->key)
		return 0;
	if (a->key == KEY_ROUTE)
		return ascii_casecmp_n(a->keytext, a->keylen, b->keytext,
				       b->keylen) == 0;
	(void)cf;
	return a->key >= 0;
}

static void merge(struct cf *cf)
{
	uint32_t nfile = 0;
	while (nfile < cf->nas && !cf_assign_at(cf, nfile)->from_flag)
		nfile++;
	for (uint32_t i = nfile; i < cf->nas; i++) {
		struct cf_assign *f = cf_assign_at(cf, i);
		f->anchor = UINT32_MAX;
		if (f->key == KEY_DECLARE)
			continue;
		/* a second flag for a key a flag already set accumulates */
		int follows = 0;
		for (uint32_t j = nfile; j < i; j++)
			if (same_key(cf, cf_assign_at(cf, j), f)) {
				f->anchor = cf_assign_at(cf, j)->anchor;
				follows = 1;
			}
		if (follows)
			continue;
		for (uint32_t j = 0; j < nfile; j++) {
			struct cf_assign *a = cf_assign_at(cf, j);
			if (!a->dead && same_key(cf, a, f)) {
				if (f->anchor == UINT32_MAX)
					f->anchor = j;
				a->dead = 1;
			}
		}
		if (f->anchor == UINT32_MAX &&
		    (f->key == KEY_ROUTE || f->key == KEY_FILE)) {
			for (uint32_t j = 0; j < nfile; j++) {
				struct cf_assign *a = cf_assign_at(cf, j);
				if (a->sec == f->sec && (a->key == KEY_ROUTE ||
							 a->key == KEY_FILE)) {
					f->anchor = j;
					break;
				}
			}
		}
	}
	cf->merged = xcalloc(cf->nas + 1, sizeof *cf->merged);
	for (uint32_t j = 0; j <= nfile; j++) {
		for (uint32_t i = nfile; i < cf->nas; i++) {
			struct cf_assign *f = cf_assign_at(cf, i);
			uint32_t at = f->anchor == UINT32_MAX ? nfile : f->anchor;
			if (at == j)
				cf->merged[cf->nmerged++] = f;
		}
		if (j < nfile && !cf_assign_at(cf, j)->dead)
			cf->merged[cf->nmerged++] = cf_assign_at(cf, j);
	}
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

static int parse_uint(const char *s, uint64_t *v, const char **end)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	uint64_t x = 0;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
		s++;
	}
	*v = x;
	*end = s;
	return 0;
}

static int parse_scaled(const char *s, const char *suffixes,
			const uint64_t *mult, uint64_t *v)
{
	const char *end;
	uint64_t x;
	if (parse_uint(s, &x, &end) < 0)
		return -1;
	if (*end) {
		const char *k = strchr(suffixes, *end);
		if (!k || end[1])
			return -1;
		uint64_t m = mult[k - suffixes];
		if (x > UINT64_MAX / m)
			return -1;
		x *= m;
	}
	*v = x;
	return 0;
}

int cf_parse_size(const char *s, uint64_t *v)
{
	static const uint64_t m[] = {1024, 1024, 1024 * 1024,
				     1024 * 1024 * 1024};
	return parse_scaled(s, "kKMG", m, v);
}

int cf_parse_duration(const char *s, uint64_t *v)
{
	static const uint64_t m[] = {1, 60, 3600, 86400, 604800};
	return parse_scaled(s, "smhdw", m, v);
}

static int port_lookup(const char *s, uint16_t *port)
{
	static const struct {
		const char *name;
		uint16_t port;
	} builtin[] = {{"smtp", 25},  {"submission", 587},
		       {"submissions", 465}, {"smtps", 465},
		       {"lmtp", 24},  {"domain", 53}};
	uint64_t v;
	const char *end;
	if (parse_uint(s, &v, &end) == 0 && !*end) {
		if (v == 0 || v > 65535)
			return -1;
		*port = (uint16_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
		if (!strcmp(s, builtin[i].name)) {
			*port = builtin[i].port;
			return 0;
		}
	struct servent *se = getservbyname(s, "tcp");
	if (!se)
		return -1;
	*port = ntohs((uint16_t)se->s_port);
	return 0;
}

int cf_host_is_loopback(const char *host)
{
	if (!strcmp(host, "localhost") || !strcmp(host, "ipv6-localhost") ||
	    !strcmp(host, "ip6-localhost") || !strcmp(host, "::1"))
		return 1;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/*
 * "[host:]port": port alone, host:port, [ip]:port. Returns NULL or the
 * reason it is not one.
 */
static const char *parse_listen(const char *s, struct cf_listen *l)
{
	char host[256];
	const char *port;
	memset(l, 0, sizeof *l);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return "expected [ADDRESS]:PORT";
		size_t n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof host)
			return "expected an address inside [ ]";
		memcpy(host, s + 1, n);
		host[n] = 0;
		unsigned char bin[16];
		if (inet_pton(AF_INET6, host, bin) != 1 &&
		    inet_pton(AF_INET, host, bin) != 1)
			return "expected a numeric address inside [ ]";
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			host[0] = 0;
			port = s;
		} else {
			size_t n = (size_t)(colon - s);
			if (n == 0 || n >= sizeof host)
				return "expected HOST:PORT";
			memcpy(host, s, n);
			host[n] = 0;
			port = colon + 1;
			unsigned char bin[16];
			if (strchr(host, ':'))
				return "write an IPv6 address as [ADDRESS]:PORT";
			if (inet_pton(AF_INET, host, bin) != 1 &&
			    !addr_domain_valid(host, n, 0))
				return "expected a host name or address";
		}
	}
	if (!*port || port_lookup(port, &l->port) < 0)
		return "expected a port number or service name";
	snprintf(l->host, sizeof l->host, "%s", host);
	return NULL;
}

/* "ip" or "ip:port" or "[ip]:port" (dns-server). */
static const char *parse_dns(const char *s)
{
	char host[64];
	unsigned char bin[16];
	uint16_t port;
	if (inet_pton(AF_INET6, s, bin) == 1 || inet_pton(AF_INET, s, bin) == 1)
		return NULL;
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s) > sizeof host)
			return "expected [IPV6]:PORT";
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = 0;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof host)
			return "expected a numeric address";
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	if (inet_pton(AF_INET6, host, bin) != 1 &&
	    inet_pton(AF_INET, host, bin) != 1)
		return "expected a numeric address (no DNS for the DNS server)";
	if (port_lookup(colon + 1, &port) < 0)
		return "expected a port number";
	return NULL;
}

/* host, ip, [ip], host:port, [ip]:port, unix:/path */
const char *cf_relay_address_error(const char *s)
{
	struct cf_listen l;
	unsigned char bin[16];
	if (!strncmp(s, "unix:", 5))
		return s[5] == '/' ? NULL : "expected unix:/absolute/path";
	if (inet_pton(AF_INET6, s, bin) == 1 || inet_pton(AF_INET, s, bin) == 1)
		return NULL;
	if (s[0] == '[') {
		size_t n = strlen(s);
		if (s[n - 1] == ']') {
			char host[256];
			if (n - 2 >= sizeof host)
				return "expected [ADDRESS]";
			memcpy(host, s + 1, n - 2);
			host[n - 2] = 0;
			if (inet_pton(AF_INET6, host, bin) == 1 ||
			    inet_pton(AF_INET, host, bin) == 1 ||
			    addr_domain_valid(host, n - 2, 1))
				return NULL;
			return "expected a host or address inside [ ]";
		}
		const char *why = parse_listen(s, &l);
		return why;
	}
	if (strchr(s, ':'))
		return parse_listen(s, &l);
	if (addr_domain_valid(s, strlen(s), 1))
		return NULL;
	return "expected host, ip, [ip], host:port, [ip]:port or unix:/path";
}

static int valid_user_name(const char *s)
{
	uint64_t v;
	const char *end;
	if (parse_uint(s, &v, &end) == 0 && !*end)
		return v < UINT32_MAX;
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c == '_' || c == '.' ||
		      (c == '-' && i > 0) || (c == '$' && i == n - 1)))
			return 0;
	}
	return 1;
}

/* Converts the words of one assignment into its key's value. */
static void set_value(struct cf *cf, struct cf_section *sec,
		      const struct cf_assign *a)
{
	struct buf tmp = {0};
	const struct key *k = &kinds[sec->kind].keys[a->key];
	const struct cf_word *w = &cf->words[a->w0];
	struct cf_pos pos = a->pos;
	pos.col = w->col;
	union cf_value *v = &sec->v[a->key];
	int errors = cf->nerrors;

	if (sec->set[a->key] && !(k->flags & K_REPEAT)) {
		const struct cf_pos *p = &sec->set[a->key]->pos;
		cf_error(cf, &a->pos, "expected '%s' once in [%s%s%s%s], found "
				      "it again (first set at %s:%u)",
			 k->name, kinds[sec->kind].name, sec->name ? " \"" : "",
			 sec->name ? sec->name : "", sec->name ? "\"" : "",
			 p->file, p->line);
		goto out;
	}
	if (k->type == V_ARGV) {
		v->list.v = xmalloc((a->nw + 1) * sizeof *v->list.v);
		for (uint32_t i = 0; i < a->nw; i++)
			v->list.v[i] = w[i].s;
		v->list.v[a->nw] = NULL;
		v->list.n = a->nw;
		if (w[0].s[0] != '/') {
			cf_error(cf, &pos, "expected an absolute path to the "
					   "program, found '%s'",
				 shown(w[0].s, w[0].len, &tmp));
		}
		sec->set[a->key] = a;
		goto out;
	}
	if (a->nw != 1 && !(k->flags & K_REPEAT)) {
		struct cf_pos p2 = a->pos;
		p2.col = w[1].col;
		cf_error(cf, &p2, "expected one value for '%s', found %u "
				  "(quote a value that contains blanks)",
			 k->name, a->nw);
		goto out;
	}
	for (uint32_t i = 0; i < a->nw; i++) {
		const char *s = w[i].s;
		const char *why = NULL;
		pos.col = w[i].col;
		uint64_t n = 0;
		switch (k->type) {
		case V_STRING:
			if (!*s)
				why = "expected a non-empty value";
			break;
		case V_PATH:
		case V_STRFTIME_PATH:
			if (s[0] != '/')
				why = "expected an absolute path";
			break;
		case V_USER:
		case V_GROUP:
			if (!valid_user_name(s))
				why = k->type == V_USER
					      ? "expected a user name or number"
					      : "expected a group name or number";
			break;
		case V_HOSTNAME:
			if (s[0] == '[' || !addr_domain_valid(s, w[i].len, 1))
				why = "expected a host name";
			break;
		case V_SIZE:
			if (cf_parse_size(s, &n) < 0 || n == 0)
				why = "expected a size such as 10240000, 500k, "
				      "10M or 1G";
			break;
		case V_DURATION:
			if (cf_parse_duration(s, &n) < 0 ||
			    (n == 0 && !(k->flags & K_ZERO)))
				why = "expected a duration such as 300, 30s, "
				      "30m, 4h or 5d";
			break;
		case V_BOOL:
			if (!strcmp(s, "yes"))
				n = 1;
			else if (strcmp(s, "no"))
				why = "expected yes or no";
			break;
		case V_ENUM: {
			int j;
			for (j = 0; k->enums[j]; j++)
				if (!strcmp(s, k->enums[j]))
					break;
			if (!k->enums[j]) {
				struct buf list = {0};
				for (int m = 0; k->enums[m]; m++)
					buf_printf(&list, "%s%s",
						   m ? (k->enums[m + 1] ? ", "
									: " or ")
						     : "",
						   k->enums[m]);
				cf_error(cf, &pos, "expected %s, found '%s'",
					 list.s, shown(s, w[i].len, &tmp));
				buf_free(&list);
				goto out;
			}
			n = (uint64_t)j;
			break;
		}
		case V_UINT: {
			const char *end;
			if (parse_uint(s, &n, &end) < 0 || *end ||
			    n < k->min || n > k->max) {
				cf_error(cf, &pos,
					 "expected a number from %llu to %llu, "
					 "found '%s'",
					 (unsigned long long)k->min,
					 (unsigned long long)k->max,
					 shown(s, w[i].len, &tmp));
				goto out;
			}
			break;
		}
		case V_LISTEN:
			why = parse_listen(s, &sec->listen);
			break;
		case V_DNS:
			why = parse_dns(s);
			break;
		case V_RELAYADDR:
			why = cf_relay_address_error(s);
			break;
		case V_DELIM:
			if (!*s || w[i].len > 8)
				why = "expected 1 to 8 delimiter characters";
			for (const char *c = s; !why && *c; c++)
				if (!ispunct((unsigned char)*c) || *c == '@' ||
				    *c == '"' || *c == '\\' || *c == '.')
					why = "expected delimiter characters "
					      "such as + or -";
			break;
		case V_LOGGER:
		case V_PIPEREF:
		case V_ROUTEREF:
			if (!*s)
				why = "expected a name";
			break; /* resolved once every section is known */
		case V_NETWORK: {
			struct net net;
			why = net_parse(s, &net);
			if (!why && (net.family == NET_NONE
					     ? a->nw > 1 || v->list.n
					     : v->list.n &&
						       !strcmp(v->list.v[0], "none")))
				why = "expected 'none' alone";
			break;
		}
		case V_ARGV:
			break;
		}
		if (why) {
			cf_error(cf, &pos, "%s, found '%s'", why,
				 shown(s, w[i].len, &tmp));
			goto out;
		}
		if (k->flags & K_REPEAT) {
			v->list.v = xrealloc(v->list.v,
					     (v->list.n + 2) * sizeof *v->list.v);
			v->list.v[v->list.n++] = s;
			v->list.v[v->list.n] = NULL;
		} else if (k->type == V_SIZE || k->type == V_DURATION ||
			   k->type == V_BOOL || k->type == V_ENUM ||
			   k->type == V_UINT) {
			v->n = n;
		} else {
			v->s = s;
		}
	}
	if (!sec->set[a->key])
		sec->set[a->key] = a;
out:
	if (cf->nerrors > errors)
		sec->bad |= 1u << a->key;
	buf_free(&tmp);
}

/* Default of an unset key, converted like a value. */
static void set_default(struct cf *cf, struct cf_section *sec, int key)
{
	const struct key *k = &kinds[sec->kind].keys[key];
	union cf_value *v = &sec->v[key];
	const char *def = k->def;
	if (sec->kind == CF_CORE && key == CORE_HOSTNAME)
		def = cf->hostname;
	/* the built-in default must serve as root too, never as root */
	if (sec->kind == CF_CORE && key == CORE_USER_ID && cf->builtin_default)
		def = "nobody";
	if (sec->kind == CF_SMTPD && key == SMTPD_NAME)
		def = sec->name;
	if (sec->kind == CF_RELAY && key == RELAY_NAME)
		def = sec->name;
	if (sec->kind == CF_SMTPD && key == SMTPD_LOGGER)
		def = cf->core->v[CORE_LOGGER].s;
	if (sec->kind == CF_SMTPD && key == SMTPD_MAX_MESSAGE_SIZE) {
		v->n = cf->core->v[CORE_MAX_MESSAGE_SIZE].n;
		return;
	}
	if (!def)
		return;
	switch (k->type) {
	case V_SIZE:
		cf_parse_size(def, &v->n);
		break;
	case V_DURATION:
		cf_parse_duration(def, &v->n);
		break;
	case V_BOOL:
		v->n = !strcmp(def, "yes");
		break;
	case V_UINT:
		v->n = strtoull(def, NULL, 10);
		break;
	case V_ENUM:
		for (int j = 0; k->enums[j]; j++)
			if (!strcmp(def, k->enums[j]))
				v->n = (uint64_t)j;
		break;
	default:
		v->s = def;
	}
}

struct cf_section *cf_find(const struct cf *cf, enum cf_kind kind,
			   const char *name)
{
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *s = &cf->secs[i];
		if (s->kind != kind)
			continue;
		if ((!name && !s->name) || (name && s->name && !strcmp(name, s->name)))
			return s;
	}
	return NULL;
}

struct cf_section **cf_listeners(const struct cf *cf, uint32_t *n)
{
	static struct cf_section *none[1];
	struct cf_section **v = NULL;
	*n = 0;
	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind == CF_SMTPD) {
			v = xrealloc(v, (*n + 1) * sizeof *v);
			v[(*n)++] = &cf->secs[i];
		}
	return v ? v : none;
}

/* ------------------------------------------------------------------ */
/* Route tables and includes                                           */

static struct route_entry *table_add(struct route_table *t)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->e = xrealloc(t->e, t->cap * sizeof *t->e);
	}
	struct route_entry *e = &t->e[t->n++];
	memset(e, 0, sizeof *e);
	return e;
}

static void add_route_line(struct cf *cf, struct route_table *t,
			   const struct cf_assign *a)
{
	struct buf tmp = {0};
	struct addr pat;
	enum pat_kind kind;
	const char *why;
	if (route_pattern_parse(a->keytext, a->keylen, &kind, &pat, &why) < 0) {
		cf_error(cf, &a->pos, "expected a route pattern (user@domain, "
				      "@domain, user@, @ or a local name), "
				      "found '%s': %s",
			 shown(a->keytext, a->keylen, &tmp), why);
		buf_free(&tmp);
		return;
	}
	buf_free(&tmp);
	if (route_check_targets(cf, &cf->words[a->w0], a->nw, &a->pos))
		return;
	struct route_entry *e = table_add(t);
	e->type = RE_LINE;
	e->pkind = (uint8_t)kind;
	/* canonical parts live in the file arena's spare room: copy */
	size_t ll = strlen(pat.local), dl = strlen(pat.domain);
	char *mem = cf_alloc(cf, ll + dl + 2);
	memcpy(mem, pat.local, ll + 1);
	memcpy(mem + ll + 1, pat.domain, dl + 1);
	e->local = mem;
	e->domain = mem + ll + 1;
	e->text = a->keytext;
	e->w0 = a->w0;
	e->nw = a->nw;
	e->pos = a->pos;
}

static void load_include(struct cf *cf, struct route_table *t,
			 const struct cf_assign *a, uint32_t sec);

static void include_file(struct cf *cf, struct route_table *t,
			 const char *path, const struct cf_pos *at,
			 uint32_t sec)
{
	char why[256];
	size_t size;
	struct stat st;
	/* one name for the file, whether it is read or its index is: the
	 * index records the real path */
	char real[PATH_MAX];
	if (realpath(path, real))
		path = real;
	if (cf->include_depth >= CF_MAX_INCLUDE_DEPTH) {
		cf_error(cf, at, "expected at most %d nested route files, "
				 "found more at \"%s\"",
			 CF_MAX_INCLUDE_DEPTH, path);
		return;
	}
	if (stat(path, &st) == 0) {
		for (int i = 0; i < cf->include_depth; i++)
			if (cf->include_stack[i].dev == (uint64_t)st.st_dev &&
			    cf->include_stack[i].ino == (uint64_t)st.st_ino) {
				cf_error(cf, at, "route file \"%s\" includes "
						 "itself (include loop)",
					 path);
				return;
			}
	}
	/* the fast path: a fresh compiled index instead of the text */
	if (!(cf->mode & CF_CHECK) && cf->include_depth == 0) {
		int stale = 0;
		struct rtindex *ix = rtindex_open(path, &stale);
		if (ix) {
			struct route_entry *e = table_add(t);
			e->type = RE_INDEX;
			e->idx = ix;
			e->pos = *at;
			e->text = "file";
			return;
		}
		if (stale)
			cf_warn(cf, at, "the compiled index of \"%s\" is older "
					"than the file and is ignored; run "
					"postmaster --check to rebuild it",
				path);
	}
	char *text = read_whole(path, &size, &st, why, sizeof why);
	if (!text) {
		cf_error(cf, at, "route file \"%s\" %s", path, why);
		return;
	}
	if (cf->include_depth == 0) {
		for (uint32_t i = 0; i < cf->ndeps; i++)
			free(cf->deps[i]);
		cf->ndeps = 0;
	}
	cf->deps = xrealloc(cf->deps, (cf->ndeps + 1) * sizeof *cf->deps);
	cf->deps[cf->ndeps++] = xstrdup(path);
	cf->include_stack[cf->include_depth].dev = (uint64_t)st.st_dev;
	cf->include_stack[cf->include_depth].ino = (uint64_t)st.st_ino;
	cf->include_depth++;
	uint32_t first = cf->nas;
	load_buffer(cf, path, text, size, 1, sec, NULL);
	/* this file's own lines: nested includes append theirs after */
	uint32_t last = cf->nas;
	uint32_t start = t->n;
	for (uint32_t i = first; i < last; i++) {
		struct cf_assign *ia = cf_assign_at(cf, i);
		ia->dead = 1; /* owned by the include, not the top level */
		if (ia->key == KEY_ROUTE)
			add_route_line(cf, t, ia);
		else if (ia->key == KEY_FILE)
			load_include(cf, t, ia, sec);
	}
	cf->include_depth--;
	free(text);
	if ((cf->mode & CF_CHECK) && cf->include_depth == 0 && !cf->nerrors) {
		char err[300];
		if (rtindex_write(path, cf, t->e + start, t->n - start,
				  (const char *const *)cf->deps, cf->ndeps, err,
				  sizeof err) < 0)
			cf_warn(cf, at, "%s", err);
	}
}

static void load_include(struct cf *cf, struct route_table *t,
			 const struct cf_assign *a, uint32_t sec)
{
	const struct cf_word *w = &cf->words[a->w0];
	struct cf_pos pos = a->pos;
	pos.col = w->col;
	if (a->nw != 1) {
		pos.col = w[1].col;
		cf_error(cf, &pos, "expected one path after 'file', found %u "
				   "words",
			 a->nw);
		return;
	}
	if (!w->len) {
		cf_error(cf, &pos, "expected a path after 'file', found an "
				   "empty string");
		return;
	}
	char path[PATH_MAX];
	int n;
	if (w->s[0] == '/' || !a->basedir)
		n = snprintf(path, sizeof path, "%s", w->s);
	else
		n = snprintf(path, sizeof path, "%s/%s", a->basedir, w->s);
	if (n < 0 || (size_t)n >= sizeof path) {
		cf_error(cf, &pos, "expected a shorter path");
		return;
	}
	include_file(cf, t, path, &pos, sec);
}

/* ------------------------------------------------------------------ */
/* Finishing                                                           */

static void check_ref(struct cf *cf, struct cf_section *sec, int key)
{
	const struct key *k = &kinds[sec->kind].keys[key];
	const struct cf_assign *a = sec->set[key];
	if (!a)
		return;
	struct buf tmp = {0};
	for (uint32_t i = 0; i < a->nw || (k->flags & K_REPEAT && 0); i++) {
		const struct cf_word *w = &cf->words[a->w0 + i];
		struct cf_pos pos = a->pos;
		pos.col = w->col;
		const char *s = w->s;
		int ok = 1;
		if (k->type == V_LOGGER)
			ok = !strcmp(s, "syslog") || !strcmp(s, "stderr") ||
			     !strcmp(s, "journal") || cf_find(cf, CF_LOGFILE, s);
		else if (k->type == V_PIPEREF)
			ok = cf_find(cf, CF_PIPE, s) != NULL;
		else if (k->type == V_ROUTEREF)
			ok = cf_find(cf, CF_ROUTE, s) != NULL;
		if (!ok)
			cf_error(cf, &pos, "expected %s, found '%s', which no "
					   "section defines",
				 k->type == V_LOGGER
					 ? "syslog, stderr, journal or the "
					   "name of a [logfile]"
				 : k->type == V_PIPEREF ? "the name of a [pipe]"
							: "the name of a [route]",
				 shown(s, w->len, &tmp));
	}
	buf_free(&tmp);
}

/* Repeatable keys: each assignment line is checked by check_ref above only
 * for its first line; check every line here. */
static void check_refs_all(struct cf *cf, struct cf_section *sec, int key)
{
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] != sec || a->key != key)
			continue;
		const struct cf_assign *save = sec->set[key];
		sec->set[key] = a;
		check_ref(cf, sec, key);
		sec->set[key] = save;
	}
}


int cf_user_ids(const struct cf *cf, uid_t *uid, gid_t *gid, char *why,
		size_t n)
{
	const char *user = cf->core->v[CORE_USER_ID].s;
	const char *group = cf->core->v[CORE_GROUP_ID].s;
	if (!user)
		return 1;
	/* numeric ids need no user database (each connection pays for one) */
	char *end;
	unsigned long id = strtoul(user, &end, 10);
	int numeric = *user && !*end;
	struct passwd *pw = numeric ? NULL : getpwnam(user);
	if (!numeric && !pw) {
		snprintf(why, n, "no user '%s'", user);
		return -1;
	}
	*uid = pw ? pw->pw_uid : (uid_t)id;
	*gid = pw ? pw->pw_gid : (gid_t)id;
	if (group) {
		unsigned long g = strtoul(group, &end, 10);
		if (*group && !*end) {
			*gid = (gid_t)g;
		} else {
			struct group *gr = getgrnam(group);
			if (!gr) {
				snprintf(why, n, "no group '%s'", group);
				return -1;
			}
			*gid = gr->gr_gid;
		}
	} else if (numeric) {
		struct passwd *byid = getpwuid(*uid);
		if (byid)
			*gid = byid->pw_gid;
	}
	return 0;
}

/* Whether uid:gid (and no other group) may create files in st. */
static int may_write_dir(const struct stat *st, uid_t uid, gid_t gid)
{
	mode_t need = st->st_uid == uid	  ? S_IWUSR | S_IXUSR
		      : st->st_gid == gid ? S_IWGRP | S_IXGRP
					  : S_IWOTH | S_IXOTH;
	return uid == 0 || (st->st_mode & need) == need;
}

/* A spool that core.user-id cannot write makes every session answer 421. */
static void check_spool(struct cf *cf, const struct cf_section *core)
{
	uid_t uid;
	gid_t gid;
	char why[256];
	struct stat st;
	const char *dir = core->v[CORE_SPOOL_DIRECTORY].s;
	if (cf_user_ids(cf, &uid, &gid, why, sizeof why) != 0 ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    may_write_dir(&st, uid, gid))
		return;
	static const struct cf_pos builtin = {"built-in default", 0, 0};
	const struct cf_assign *a = core->set[CORE_SPOOL_DIRECTORY];
	if (!a)
		a = core->set[CORE_USER_ID];
	struct cf_pos pos = a ? a->pos : builtin;
	if (a)
		pos.col = cf->words[a->w0].col;
	cf_warn(cf, &pos, "spool-directory \"%s\" (owner %lu:%lu, mode %04o) "
			  "is not writable by user-id %s (%lu:%lu): sessions "
			  "will answer 421",
		dir, (unsigned long)st.st_uid, (unsigned long)st.st_gid,
		(unsigned)(st.st_mode & 07777), core->v[CORE_USER_ID].s,
		(unsigned long)uid, (unsigned long)gid);
}

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* tls-certificate and tls-key pair in order: each value needs its
 * partner, and a section offers at most TLS_MAX_KEYPAIRS pairs. */
static void check_tls_pairs(struct cf *cf, struct cf_section *sec)
{
	uint32_t nc = sec->v[SMTPD_TLS_CERTIFICATE].list.n;
	uint32_t nk = sec->v[SMTPD_TLS_KEY].list.n;
	int longer = nc > nk ? SMTPD_TLS_CERTIFICATE : SMTPD_TLS_KEY;
	uint32_t seen = 0, first = nc < nk ? nc : nk;
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		const struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] != sec || a->key != longer)
			continue;
		for (uint32_t j = 0; j < a->nw; j++, seen++) {
			struct cf_pos pos = a->pos;
			pos.col = cf->words[a->w0 + j].col;
			if (seen >= first && nc != nk) {
				cf_error(cf, &pos, "expected a %s for this %s "
						   "(they pair in order)",
					 longer == SMTPD_TLS_KEY
						 ? "tls-certificate"
						 : "tls-key",
					 kinds[CF_SMTPD].keys[longer].name);
				return;
			}
			if (seen == TLS_MAX_KEYPAIRS) {
				cf_error(cf, &pos, "expected at most %d "
						   "tls-certificate and tls-key "
						   "pairs",
					 TLS_MAX_KEYPAIRS);
				return;
			}
		}
	}
}

/* --check asks GnuTLS whether it takes the priority string; a host
 * without GnuTLS gets a warning. */
static void check_tls_priority(struct cf *cf, const struct cf_assign *a)
{
	const struct cf_word *w = &cf->words[a->w0];
	char why[256];
	size_t at;
	struct cf_pos pos = a->pos;
	int r = tls_priority_check(w->s, &at, why, sizeof why);
	pos.col = w->col + w->quoted + (uint32_t)at;
	if (r == -1)
		cf_error(cf, &pos, "expected a GnuTLS priority string: %s", why);
	else if (r < 0)
		cf_warn(cf, &pos, "cannot check tls-priority: %s", why);
}

/* --check: every value of a repeatable path key (the tls-certificate
 * and tls-key pairs) should exist on this host. */
static void check_paths_all(struct cf *cf, struct cf_section *sec, int key)
{
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		const struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] != sec || a->key != key)
			continue;
		for (uint32_t j = 0; j < a->nw; j++) {
			const struct cf_word *w = &cf->words[a->w0 + j];
			struct cf_pos pos = a->pos;
			pos.col = w->col;
			if (access(w->s, F_OK) < 0)
				cf_warn(cf, &pos, "\"%s\" does not exist on "
						  "this host",
					w->s);
		}
	}
}

static void check_system(struct cf *cf, struct cf_section *sec)
{
	for (int key = 0; key < kinds[sec->kind].nkeys; key++) {
		const struct key *k = &kinds[sec->kind].keys[key];
		const struct cf_assign *a = sec->set[key];
		if (k->type == V_PATH && (k->flags & K_REPEAT))
			check_paths_all(cf, sec, key);
		if (!a || (k->flags & K_REPEAT) ||
		    (k->type != V_USER && k->type != V_GROUP &&
		     k->type != V_PATH && k->type != V_LOGGER))
			continue;
		const struct cf_word *w = &cf->words[a->w0];
		struct cf_pos pos = a->pos;
		pos.col = w->col;
		uint64_t id;
		const char *end;
		int numeric = parse_uint(w->s, &id, &end) == 0 && !*end;
		if (k->type == V_USER && !numeric && !getpwnam(w->s))
			cf_warn(cf, &pos, "no user '%s' on this host", w->s);
		if (k->type == V_GROUP && !numeric && !getgrnam(w->s))
			cf_warn(cf, &pos, "no group '%s' on this host", w->s);
		if (k->type == V_PATH && key != CORE_PID_FILE &&
		    access(w->s, F_OK) < 0)
			cf_warn(cf, &pos, "\"%s\" does not exist on this host",
				w->s);
		if (k->type == V_LOGGER && !strcmp(w->s, "journal") &&
		    access(JOURNAL_SOCKET, F_OK) < 0)
			cf_warn(cf, &pos, "no systemd journal on this host "
					  "(%s): its log lines would be lost",
				JOURNAL_SOCKET);
	}
	if (sec->kind == CF_CORE)
		check_spool(cf, sec);
	if (sec->kind == CF_PIPE && sec->set[PIPE_EXEC]) {
		const struct cf_assign *a = sec->set[PIPE_EXEC];
		const struct cf_word *w = &cf->words[a->w0];
		struct cf_pos pos = a->pos;
		pos.col = w->col;
		if (access(w->s, X_OK) < 0)
			cf_warn(cf, &pos, "\"%s\" is not an executable on this "
					  "host",
				w->s);
	}
	if (sec->kind == CF_SMTPD && sec->listen.host[0] &&
	    strcmp(sec->listen.host, "localhost") &&
	    strcmp(sec->listen.host, "ipv6-localhost") &&
	    strcmp(sec->listen.host, "ip6-localhost")) {
		unsigned char bin[16];
		const char *h = sec->listen.host;
		if (inet_pton(AF_INET, h, bin) != 1 &&
		    inet_pton(AF_INET6, h, bin) != 1 &&
		    !cf_hosts_lookup(h, NULL, 0)) {
			const struct cf_assign *a = sec->set[SMTPD_LISTEN_PORT];
			struct cf_pos pos = a ? a->pos : sec->pos;
			if (a)
				pos.col = cf->words[a->w0].col;
			cf_warn(cf, &pos, "\"%s\" is not in /etc/hosts: "
					  "[smtpd \"%s\"] serves no network "
					  "connection, only local pipes",
				h, sec->name);
		}
	}
}

/* Looks a name up in /etc/hosts; fills up to n numeric addresses. */
int cf_hosts_lookup(const char *name, char (*out)[64], int n)
{
	FILE *f = fopen("/etc/hosts", "re");
	if (!f)
		return 0;
	char line[1024];
	int found = 0;
	while (fgets(line, sizeof line, f)) {
		char *save = NULL;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *ip = strtok_r(line, " \t\r\n", &save);
		if (!ip)
			continue;
		char *h;
		while ((h = strtok_r(NULL, " \t\r\n", &save)))
			if (!strcasecmp(h, name)) {
				if (found < n)
					snprintf(out[found], 64, "%s", ip);
				found++;
				break;
			}
	}
	fclose(f);
	return found;
}

int cf_finish(struct cf *cf, unsigned mode)
{
	cf->mode = mode;
	if (!cf->basedir)
		cf->basedir = xstrdup(".");
	merge(cf);
	static const struct cf_pos builtin = {"built-in default", 0, 0};
	cf->core = &cf->secs[add_section(cf, CF_CORE, NULL, &builtin)];
	cf->syslog = &cf->secs[add_section(cf, CF_SYSLOG, NULL, &builtin)];
	cf->global_route = &cf->secs[add_section(cf, CF_ROUTE, NULL, &builtin)];
	if (!cf_find(cf, CF_PIPE, "local")) {
		/* the local mailer that SPEC 2 names */
		uint32_t i = add_section(cf, CF_PIPE, "local", &builtin);
		struct cf_section *p = &cf->secs[i];
		static const char *argv[] = {"/usr/bin/procmail", "-d",
					     "${RCPT_TO}", NULL};
		p->builtin = 1;
		p->v[PIPE_EXEC].list.v = xmalloc(sizeof argv);
		memcpy(p->v[PIPE_EXEC].list.v, argv, sizeof argv);
		p->v[PIPE_EXEC].list.n = 3;
	}
	/* the pointers above may have moved with the array */
	cf->core = cf_find(cf, CF_CORE, NULL);
	cf->syslog = cf_find(cf, CF_SYSLOG, NULL);
	cf->global_route = cf_find(cf, CF_ROUTE, NULL);

	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind == CF_ROUTE) {
			cf->secs[i].table = xcalloc(1, sizeof *cf->secs[i].table);
			cf->secs[i].table->name =
				cf->secs[i].name ? cf->secs[i].name : "";
		}
	/* typed values, in merged order; core first for inherited defaults */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < cf->nmerged; i++) {
			struct cf_assign *a = cf->merged[i];
			struct cf_section *sec = &cf->secs[a->sec];
			if ((sec->kind == CF_CORE) != (pass == 0))
				continue;
			if (a->key >= 0)
				set_value(cf, sec, a);
		}
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *sec = &cf->secs[i];
		if (sec->kind == CF_CORE)
			for (int k = 0; k < CORE_NKEYS; k++)
				if (!sec->set[k])
					set_default(cf, sec, k);
	}
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *sec = &cf->secs[i];
		if (sec->kind == CF_CORE || sec->kind == CF_ROUTE)
			continue;
		for (int k = 0; k < kinds[sec->kind].nkeys; k++) {
			if (sec->set[k] || sec->builtin)
				continue;
			if ((kinds[sec->kind].keys[k].flags & K_REQUIRED) &&
			    !(sec->bad & (1u << k))) {
				cf_error(cf, &sec->pos, "expected '%s' in [%s \"%s\"], "
							"found none",
					 kinds[sec->kind].keys[k].name,
					 kinds[sec->kind].name, sec->name);
				continue;
			}
			set_default(cf, sec, k);
		}
		if (sec->builtin) {
			sec->v[PIPE_MAX_RCPT_TO].n = 1;
			sec->v[PIPE_TIMEOUT].n = 300;
		}
		if (sec->kind == CF_SMTPD && !sec->set[SMTPD_NAME] &&
		    !(sec->bad & (1u << SMTPD_NAME)) &&
		    !addr_domain_valid(sec->name, strlen(sec->name), 1))
			cf_error(cf, &sec->pos, "expected a host name as the "
						"name of [smtpd \"%s\"] or a "
						"'name' key",
				 sec->name);
		if (sec->kind == CF_SMTPD && !sec->set[SMTPD_LISTEN_PORT] &&
		    !(sec->bad & (1u << SMTPD_LISTEN_PORT))) {
			snprintf(sec->listen.host, sizeof sec->listen.host,
				 "%s", sec->name);
			sec->listen.port = 25;
		}
		if (sec->kind == CF_RELAY && sec->set[RELAY_AUTH_PASSWORD] &&
		    !sec->set[RELAY_AUTH_USER])
			cf_error(cf, &sec->set[RELAY_AUTH_PASSWORD]->pos,
				 "expected 'auth-user' with 'auth-password'");
		if (sec->kind == CF_SMTPD && sec->v[SMTPD_TLS].n != STLS_NO &&
		    (!sec->v[SMTPD_TLS_CERTIFICATE].list.n ||
		     !sec->v[SMTPD_TLS_KEY].list.n))
			cf_error(cf, &sec->set[SMTPD_TLS]->pos,
				 "expected tls-certificate and tls-key with "
				 "tls = %s",
				 cf->words[sec->set[SMTPD_TLS]->w0].s);
		if (sec->kind == CF_SMTPD &&
		    (sec->v[SMTPD_TLS].n == STLS_NO ||
		     (sec->v[SMTPD_TLS_CERTIFICATE].list.n &&
		      sec->v[SMTPD_TLS_KEY].list.n)))
			check_tls_pairs(cf, sec);
		if (sec->kind == CF_SMTPD && (mode & CF_CHECK) &&
		    sec->set[SMTPD_TLS_PRIORITY] &&
		    !(sec->bad & (1u << SMTPD_TLS_PRIORITY)))
			check_tls_priority(cf, sec->set[SMTPD_TLS_PRIORITY]);
		if (sec->kind == CF_SMTPD && sec->v[SMTPD_AUTH].n != AUTH_NO &&
		    !sec->v[SMTPD_AUTH_FILE].s)
			cf_error(cf, &sec->set[SMTPD_AUTH]->pos,
				 "expected auth-file with auth = %s",
				 cf->words[sec->set[SMTPD_AUTH]->w0].s);
		if (sec->kind == CF_RELAY && sec->set[RELAY_AUTH_USER] &&
		    sec->v[RELAY_TLS].n == RTLS_NO && sec->set[RELAY_TLS])
			cf_error(cf, &sec->set[RELAY_TLS]->pos,
				 "expected tls other than 'no' with 'auth-user': "
				 "credentials never travel in clear text");
	}
	/* references, once every section is known */
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *sec = &cf->secs[i];
		for (int k = 0; sec->kind != CF_ROUTE && k < kinds[sec->kind].nkeys;
		     k++) {
			enum vtype t = kinds[sec->kind].keys[k].type;
			if (t == V_LOGGER || t == V_PIPEREF)
				check_ref(cf, sec, k);
			else if (t == V_ROUTEREF)
				check_refs_all(cf, sec, k);
		}
		if ((mode & CF_CHECK) && sec->kind != CF_ROUTE)
			check_system(cf, sec);
	}
	if (!cf->core->set[CORE_LOCAL_MAILER] &&
	    !cf_find(cf, CF_PIPE, cf->core->v[CORE_LOCAL_MAILER].s))
		cf_error(cf, &builtin, "expected a [pipe \"local\"] for the "
				       "default local-mailer");
	if (cf->core->v[CORE_MINIMAL_BACKOFF].n >
	    cf->core->v[CORE_MAXIMAL_BACKOFF].n) {
		const struct cf_assign *a = cf->core->set[CORE_MINIMAL_BACKOFF];
		if (!a)
			a = cf->core->set[CORE_MAXIMAL_BACKOFF];
		cf_error(cf, a ? &a->pos : &builtin,
			 "expected minimal-backoff to be at most maximal-backoff");
	}
	/* route tables, in merged order */
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		struct cf_assign *a = cf->merged[i];
		struct cf_section *sec = &cf->secs[a->sec];
		if (sec->kind != CF_ROUTE)
			continue;
		if (a->key == KEY_ROUTE)
			add_route_line(cf, sec->table, a);
		else if (a->key == KEY_FILE && !(mode & CF_NO_INCLUDES))
			load_include(cf, sec->table, a, a->sec);
	}
	if (mode & CF_CHECK) {
		for (uint32_t i = 0; i < cf->nsecs; i++)
			if (cf->secs[i].kind == CF_ROUTE) {
				route_check_shadowed(cf, cf->secs[i].table);
				route_check_system(cf, cf->secs[i].table);
			}
		if (!cf->nerrors)
			route_check_listeners(cf);
	}
	return cf->nerrors;
}

/* ------------------------------------------------------------------ */
/* Diagnostics in file order                                           */

struct dline {
	const char *s;
	size_t n;
	int file; /* order in which the file was read; INT_MAX: no position */
	unsigned long line, col;
	size_t seq;
};

static int dline_cmp(const void *a, const void *b)
{
	const struct dline *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cf_print_diagnostics(const struct cf *cf, FILE *out)
{
	if (!cf->diag.len)
		return;
	/* files in the order they were read (cf->files is newest first) */
	const char *order[256];
	int nf = 0;
	for (const struct cf_file *f = cf->files; f && nf < 256; f = f->next)
		order[nf++] = f->path;
	size_t n = 0, cap = 16;
	struct dline *v = xmalloc(cap * sizeof *v);
	const char *p = cf->diag.s;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (n == cap) {
			cap *= 2;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct dline *d = &v[n];
		d->s = p;
		d->n = len;
		d->seq = n++;
		d->file = INT_MAX;
		d->line = d->col = 0;
		for (int i = 0; i < nf; i++) {
			size_t fl = strlen(order[i]);
			if (!strncmp(p, order[i], fl) && p[fl] == ':' &&
			    p[fl + 1] >= '0' && p[fl + 1] <= '9') {
				char *end;
				d->file = nf - 1 - i;
				d->line = strtoul(p + fl + 1, &end, 10);
				if (*end == ':')
					d->col = strtoul(end + 1, NULL, 10);
				break;
			}
		}
		p += len;
	}
	qsort(v, n, sizeof *v, dline_cmp);
	for (size_t i = 0; i < n; i++)
		fwrite(v[i].s, 1, v[i].n, out);
	free(v);
}

/* ------------------------------------------------------------------ */
/* --dump                                                              */

static int needs_quotes(const char *s)
{
	if (!*s)
		return 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (!is_atom_char(*p))
			return 1;
	return 0;
}

static void put_word(FILE *out, const char *s, int quoted)
{
	if (!quoted && !needs_quotes(s)) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void put_scope(FILE *out, const struct cf_section *sec)
{
	fputs(kinds[sec->kind].name, out);
	if (sec->name || sec->kind == CF_ROUTE) {
		fputc('.', out);
		put_word(out, sec->name ? sec->name : "", 1);
	}
}

static void put_assign(const struct cf *cf, FILE *out, const struct cf_assign *a)
{
	const struct cf_section *sec = &cf->secs[a->sec];
	put_scope(out, sec);
	if (a->key == KEY_DECLARE) {
		fputc('\n', out);
		return;
	}
	fputc('.', out);
	if (a->key >= 0)
		fputs(kinds[sec->kind].keys[a->key].name, out);
	else
		put_word(out, a->keytext, a->key_quoted);
	fputs(" =", out);
	for (uint32_t i = 0; i < a->nw; i++) {
		fputc(' ', out);
		put_word(out, cf->words[a->w0 + i].s, cf->words[a->w0 + i].quoted);
	}
	fputc('\n', out);
}

static int section_has_assignments(const struct cf *cf, uint32_t sec)
{
	for (uint32_t i = 0; i < cf->nmerged; i++)
		if (cf->merged[i]->sec == sec && cf->merged[i]->key != KEY_DECLARE)
			return 1;
	return 0;
}

static void put_default(const struct cf *cf, FILE *out,
			const struct cf_section *sec, int key)
{
	const struct key *k = &kinds[sec->kind].keys[key];
	const union cf_value *v = &sec->v[key];
	char num[32];
	const char *text = NULL;
	switch (k->type) {
	case V_SIZE:
	case V_UINT:
		snprintf(num, sizeof num, "%llu", (unsigned long long)v->n);
		text = num;
		break;
	case V_DURATION:
		snprintf(num, sizeof num, "%llus", (unsigned long long)v->n);
		text = num;
		break;
	case V_BOOL:
		text = v->n ? "yes" : "no";
		break;
	case V_ENUM:
		text = k->enums[v->n];
		break;
	case V_ARGV:
		if (v->list.n) {
			put_scope(out, sec);
			fprintf(out, ".%s =", k->name);
			for (uint32_t i = 0; i < v->list.n; i++) {
				fputc(' ', out);
				put_word(out, v->list.v[i], 1);
			}
			fputc('\n', out);
			return;
		}
		break;
	case V_LISTEN:
		if (sec->listen.port) {
			snprintf(num, sizeof num, "%u", sec->listen.port);
			put_scope(out, sec);
			fprintf(out, ".%s = ", k->name);
			if (sec->listen.host[0])
				fprintf(out, "%s:", sec->listen.host);
			fprintf(out, "%s\n", num);
			return;
		}
		break;
	default:
		if (!(k->flags & K_REPEAT))
			text = v->s;
	}
	if (!text) {
		fputs("# ", out);
		put_scope(out, sec);
		fprintf(out, ".%s: %s\n", k->name,
			k->help ? k->help : "not set");
		return;
	}
	put_scope(out, sec);
	fprintf(out, ".%s = ", k->name);
	put_word(out, text, 0);
	fputc('\n', out);
}

void cf_dump(const struct cf *cf, int defaults, FILE *out)
{
	if (!defaults) {
		for (uint32_t i = 0; i < cf->nmerged; i++) {
			const struct cf_assign *a = cf->merged[i];
			if (a->key == KEY_DECLARE &&
			    section_has_assignments(cf, a->sec))
				continue;
			/* one declaration per empty section */
			if (a->key == KEY_DECLARE) {
				int first = 1;
				for (uint32_t j = 0; j < i; j++)
					if (cf->merged[j]->sec == a->sec)
						first = 0;
				if (!first)
					continue;
			}
			put_assign(cf, out, a);
		}
		return;
	}
	if (cf->builtin_default)
		fputs("# no configuration file: the built-in default\n", out);
	static const enum cf_kind order[] = {CF_CORE,  CF_SYSLOG, CF_LOGFILE,
					     CF_PIPE,  CF_RELAY,  CF_SMTPD,
					     CF_ROUTE};
	for (size_t o = 0; o < sizeof order / sizeof *order; o++) {
		for (uint32_t i = 0; i < cf->nsecs; i++) {
			const struct cf_section *sec = &cf->secs[i];
			if (sec->kind != order[o])
				continue;
			if (sec->kind == CF_ROUTE) {
				int any = 0;
				for (uint32_t j = 0; j < cf->nmerged; j++) {
					const struct cf_assign *a = cf->merged[j];
					if (a->sec != i || a->key == KEY_DECLARE)
						continue;
					put_assign(cf, out, a);
					any = 1;
				}
				if (!any && sec->name) {
					put_scope(out, sec);
					fputc('\n', out);
				}
				continue;
			}
			for (int k = 0; k < kinds[sec->kind].nkeys; k++) {
				if (!sec->set[k]) {
					put_default(cf, out, sec, k);
					continue;
				}
				for (uint32_t j = 0; j < cf->nmerged; j++) {
					const struct cf_assign *a = cf->merged[j];
					if (&cf->secs[a->sec] == sec && a->key == k)
						put_assign(cf, out, a);
				}
			}
		}
	}
	fputs("# built in: postmaster at a local domain goes to root when no "
	      "table routes it\n",
	      out);
}
