/*
 * cf.c - postmaster.cf: storage, lookup and diagnostics (SPEC 3).
 *
 * Owns: the struct cf that the cf_*.c files fill (sections, assignments
 * in blocks whose pointers stay valid, words, the per-file arenas and the
 * bump allocator), finding sections, the ids core.user-id names, and the
 * diagnostics: collected, never printed while parsing, as
 * "file:line:column: what was expected, what was found", and printed
 * sorted by file, line and column.
 *
 * Never: touches the network, resolves DNS, writes a file, or knows what
 * a route table holds (route_load.c builds and frees them).
 */
#include "cf_impl.h"
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Diagnostics                                                         */

void cf_diag(struct cf *cf, const struct cf_pos *pos, const char *kind,
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
	cf_diag(cf, pos, "", fmt, ap);
	va_end(ap);
	cf->nerrors++;
}

void cf_warn(struct cf *cf, const struct cf_pos *pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cf_diag(cf, pos, "warning: ", fmt, ap);
	va_end(ap);
	cf->nwarnings++;
}

/* Text of untrusted bytes for a diagnostic, escaped, at most 60 bytes. */
const char *cf_shown(const char *s, size_t n, struct buf *tmp)
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
	return xcalloc(1, sizeof(struct cf));
}

const char *cf_default_hostname(struct cf *cf)
{
	/* asked only when core.hostname is unset: a configuration that sets
	 * it pays no uname() (nor the page of libc it lives on) */
	if (!cf->hostname[0] &&
	    (gethostname(cf->hostname, sizeof cf->hostname - 1) < 0 ||
	     !cf->hostname[0]))
		fmt_snprintf(cf->hostname, sizeof cf->hostname, "localhost");
	return cf->hostname;
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
		/* small first, then doubling: a plain configuration uses
		 * a few hundred bytes, and an untouched tail would push
		 * every later allocation onto pages of its own */
		size_t cap = cf->pool ? 2 * cf->pool->cap : 1024;
		if (cap > 65536)
			cap = 65536;
		if (cap < n)
			cap = n;
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

/*
 * The arrays below start small and double: a plain session's
 * configuration has a handful of sections, assignments and words, and a
 * large empty tail would push every allocation after it onto pages of
 * its own (each page a session touches is a page fault: SPEC 11).
 */
uint32_t cf_add_section(struct cf *cf, enum cf_kind kind,
			    const char *name, const struct cf_pos *pos)
{
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *s = &cf->secs[i];
		if (s->kind == kind && ((!s->name && !name) ||
					(s->name && name && !strcmp(s->name, name))))
			return i;
	}
	if (cf->nsecs == cf->capsecs) {
		cf->capsecs = cf->capsecs ? cf->capsecs * 2 : 4;
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

struct cf_assign *cf_add_assign(struct cf *cf)
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

struct cf_word *cf_add_word(struct cf *cf)
{
	if (cf->nwords == cf->capwords) {
		cf->capwords = cf->capwords ? cf->capwords * 2 : 32;
		cf->words = xrealloc(cf->words, cf->capwords * sizeof *cf->words);
	}
	struct cf_word *w = &cf->words[cf->nwords++];
	memset(w, 0, sizeof *w);
	return w;
}


struct cf_file *cf_add_file(struct cf *cf, const char *path, size_t size)
{
	struct cf_file *f = xcalloc(1, sizeof *f);
	f->path = xstrdup(path);
	f->dir = cf_dir_of(path);
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
			if (s->kind != CF_ROUTE && k < cf_kinds[s->kind].nkeys &&
			    (cf_kinds[s->kind].keys[k].flags & K_REPEAT ||
			     cf_kinds[s->kind].keys[k].type == V_ARGV))
				free(s->v[k].list.v);
	}
	if (cf->tables_free)
		cf->tables_free(cf);
	while (cf->includes) {
		struct cf_include *inc = cf->includes;
		cf->includes = inc->next;
		for (uint32_t i = 0; i < inc->ndeps; i++)
			free(inc->deps[i]);
		free(inc->deps);
		free(inc->depst);
		free(inc);
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

int cf_choose_listener(const struct cf *cf, const char *name,
		       int (*serves)(const struct cf_section *, const void *),
		       const void *ctx, const struct cf_section **out)
{
	uint32_t n;
	struct cf_section **v = cf_listeners(cf, &n);
	int r = -1;
	*out = NULL;
	if (name) {
		*out = cf_find(cf, CF_SMTPD, name);
		r = *out && (!serves || serves(*out, ctx)) ? 0 : -1;
	} else if (n == 0) {
		r = 0; /* the built-in listener */
	} else if (n == 1 || serves) {
		for (uint32_t i = 0; i < n && r < 0; i++)
			if (!serves || serves(v[i], ctx)) {
				*out = v[i];
				r = 0;
			}
	}
	if (r < 0)
		*out = NULL;
	if (n)
		free(v);
	return r;
}

/* Whether the "passwd:" line of the nsswitch file at path names "files"
 * first. */
/* Past spaces and tabs. Neither this nor the scans around it use
 * strspn() and kin: on a session's path, they alone fault in one more
 * 64 KiB stretch of libc (SPEC 11). */
static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int passwd_files_first(const char *path)
{
	struct buf b = {0};
	int files = 0;
	if (buf_read_file(&b, AT_FDCWD, path, 65536) < 0)
		return 0;
	for (const char *l = b.s; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		const char *p = skip_blanks(l);
		if (!strncmp(p, "passwd:", 7)) {
			p = skip_blanks(p + 7);
			files = !strncmp(p, "files", 5) &&
				(p[5] == ' ' || p[5] == '\t' || p[5] == '\n' ||
				 !p[5]);
			break;
		}
		l += n + (l[n] == '\n');
	}
	buf_free(&b);
	return files;
}

/* A decimal id ending at ':': its end, or NULL. */
static char *passwd_id(char *p, unsigned long *id)
{
	uint64_t v;
	const char *end;
	if (cf_parse_uint(p, &v, &end) < 0 || *end != ':' || v > UINT_MAX)
		return NULL;
	*id = (unsigned long)v;
	return (char *)end;
}

int cf_passwd_files(const char *nsswitch, const char *passwd,
		    const char *name, uid_t *uid, gid_t *gid)
{
	/* glibc's getpwnam opens nscd's socket twice, parses nsswitch.conf
	 * and reads the passwd file through stdio: about 40 000
	 * instructions and 17 syscalls a session; this reads two files */
	if (!*name || strchr(name, ':') || strchr(name, '\n') ||
	    !passwd_files_first(nsswitch))
		return 0; /* no such name can be on a line of its own */
	struct buf b = {0};
	if (buf_read_file(&b, AT_FDCWD, passwd, 1 << 20) < 0)
		return 0;
	size_t len = strlen(name);
	int found = 0;
	for (char *l = b.s, *e; !found && (e = strchr(l, '\n')); l = e + 1) {
		*e = 0;
		if (strncmp(l, name, len) || l[len] != ':')
			continue;
		/* the first line of that name decides; a malformed one is
		 * left to getpwnam */
		char *u = strchr(l + len + 1, ':');
		unsigned long uv, gv;
		char *ge = u ? passwd_id(u + 1, &uv) : NULL;
		if (ge && passwd_id(ge + 1, &gv)) {
			*uid = (uid_t)uv;
			*gid = (gid_t)gv;
			found = 1;
		}
		break;
	}
	buf_free(&b);
	return found;
}

int cf_user_ids(const struct cf *cf, uid_t *uid, gid_t *gid, char *why,
		size_t n)
{
	const char *user = cf->core->v[CORE_USER_ID].s;
	const char *group = cf->core->v[CORE_GROUP_ID].s;
	if (!user)
		return 1;
	/* numeric ids need no user database (each connection pays for one) */
	/* cf_parse_uint, not strtoul: no page of libc for a session */
	const char *end;
	uint64_t id;
	int numeric = cf_parse_uint(user, &id, &end) == 0 && !*end;
	int listed = !numeric && cf_passwd_files("/etc/nsswitch.conf",
						 "/etc/passwd", user, uid, gid);
	struct passwd *pw = numeric || listed ? NULL : getpwnam(user);
	if (!numeric && !listed && !pw) {
		fmt_snprintf(why, n, "no user '%s'", user);
		return -1;
	}
	if (!listed) {
		*uid = pw ? pw->pw_uid : (uid_t)id;
		*gid = pw ? pw->pw_gid : (gid_t)id;
	}
	if (group) {
		uint64_t g;
		if (cf_parse_uint(group, &g, &end) == 0 && !*end) {
			*gid = (gid_t)g;
		} else {
			struct group *gr = getgrnam(group);
			if (!gr) {
				fmt_snprintf(why, n, "no group '%s'", group);
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

