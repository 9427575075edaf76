/*
 * route_load.c - route tables from the configuration (SPEC 6.1, 6.4).
 *
 * Owns: turning the [route] sections' assignments into route tables, in
 * merged order: each line's pattern and targets checked, `file "PATH"`
 * includes read (at most CF_MAX_INCLUDE_DEPTH deep, never in a loop), or
 * a fresh compiled index opened instead of the text. Under --check every
 * top-level route file is read as text and remembered (cf->includes) for
 * check.c to compile.
 *
 * Never: writes a file, touches the network, or resolves an address.
 */
#include "route_load.h"
#include "fmt.h"
#include "route.h"
#include "rtindex.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
			 cf_shown(a->keytext, a->keylen, &tmp), why);
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
			 const struct cf_assign *a, uint32_t sec,
			 struct cf_include *inc);

/* Refuses an include nested too deep or that includes itself. */
static int include_allowed(struct cf *cf, const char *path,
			   const struct cf_pos *at)
{
	struct stat st;
	if (cf->include_depth >= CF_MAX_INCLUDE_DEPTH) {
		cf_error(cf, at, "expected at most %d nested route files, "
				 "found more at \"%s\"",
			 CF_MAX_INCLUDE_DEPTH, path);
		return 0;
	}
	if (stat(path, &st) == 0) {
		for (int i = 0; i < cf->include_depth; i++)
			if (cf->include_stack[i].dev == (uint64_t)st.st_dev &&
			    cf->include_stack[i].ino == (uint64_t)st.st_ino) {
				cf_error(cf, at, "route file \"%s\" includes "
						 "itself (include loop)",
					 path);
				return 0;
			}
	}
	return 1;
}

/* The fast path: a fresh compiled index instead of the text. Returns
 * whether the index serves. */
static int use_index(struct cf *cf, struct route_table *t, const char *path,
		     const struct cf_pos *at)
{
	int stale = 0;
	struct rtindex *ix = rtindex_open(path, &stale);
	if (ix) {
		struct route_entry *e = table_add(t);
		e->type = RE_INDEX;
		e->idx = ix;
		e->pos = *at;
		e->text = "file";
		return 1;
	}
	if (stale)
		cf_warn(cf, at, "the compiled index of \"%s\" is older than "
				"the file and is ignored; run postmaster "
				"--check to rebuild it",
			path);
	return 0;
}

/* --check: remembers a top-level route file read as text, so that its
 * lines can be compiled once the whole configuration is known. */
static struct cf_include *remember(struct cf *cf, struct route_table *t,
				   const struct cf_pos *at)
{
	struct cf_include *inc = xcalloc(1, sizeof *inc), **p = &cf->includes;
	inc->at = *at;
	inc->table = t;
	inc->first = t->n;
	while (*p)
		p = &(*p)->next;
	*p = inc;
	return inc;
}

static void add_dep(struct cf_include *inc, const char *path,
		    const struct stat *st)
{
	inc->deps = xrealloc(inc->deps, (inc->ndeps + 1) * sizeof *inc->deps);
	inc->depst = xrealloc(inc->depst, (inc->ndeps + 1) * sizeof *inc->depst);
	inc->depst[inc->ndeps] = (struct cf_depstat){
		(uint64_t)st->st_size, (uint64_t)st->st_ino,
		(int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec};
	inc->deps[inc->ndeps++] = xstrdup(path);
}

static void include_file(struct cf *cf, struct route_table *t,
			 const char *path, const struct cf_pos *at,
			 uint32_t sec, struct cf_include *inc)
{
	char why[256];
	struct stat st;
	/* one name for a top-level file, whether it is read or its index
	 * is: the index is named after the real path. A nested file keeps
	 * the name its includer gives it, which the index records and
	 * stats: a symlink pointed at another table makes the index stale */
	char real[PATH_MAX];
	if (cf->include_depth == 0 && realpath(path, real))
		path = real;
	if (!include_allowed(cf, path, at))
		return;
	if (!(cf->mode & CF_CHECK) && cf->include_depth == 0 &&
	    use_index(cf, t, path, at))
		return;
	uint32_t first = cf->nas;
	if (cf_load_route_file(cf, path, sec, &st, why, sizeof why) == -2) {
		cf_error(cf, at, "route file \"%s\" %s", path, why);
		return;
	}
	if ((cf->mode & CF_CHECK) && cf->include_depth == 0)
		inc = remember(cf, t, at);
	if (inc)
		add_dep(inc, path, &st);
	cf->include_stack[cf->include_depth].dev = (uint64_t)st.st_dev;
	cf->include_stack[cf->include_depth].ino = (uint64_t)st.st_ino;
	cf->include_depth++;
	/* this file's own lines: nested includes append theirs after */
	uint32_t last = cf->nas;
	for (uint32_t i = first; i < last; i++) {
		struct cf_assign *ia = cf_assign_at(cf, i);
		ia->dead = 1; /* owned by the include, not the top level */
		if (ia->key == KEY_ROUTE)
			add_route_line(cf, t, ia);
		else if (ia->key == KEY_FILE)
			load_include(cf, t, ia, sec, inc);
	}
	cf->include_depth--;
	if (cf->include_depth == 0 && inc) {
		inc->n = t->n - inc->first;
		inc->clean = !cf->nerrors;
	}
}

static void load_include(struct cf *cf, struct route_table *t,
			 const struct cf_assign *a, uint32_t sec,
			 struct cf_include *inc)
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
		n = fmt_snprintf(path, sizeof path, "%s", w->s);
	else
		n = fmt_snprintf(path, sizeof path, "%s/%s", a->basedir, w->s);
	if (n < 0 || (size_t)n >= sizeof path) {
		cf_error(cf, &pos, "expected a shorter path");
		return;
	}
	include_file(cf, t, path, &pos, sec, inc);
}


static void free_tables(struct cf *cf)
{
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct route_table *t = cf->secs[i].table;
		if (!t)
			continue;
		for (uint32_t j = 0; j < t->n; j++)
			if (t->e[j].idx)
				rtindex_close(t->e[j].idx);
		free(t->e);
		free(t);
	}
}

int route_load_tables(struct cf *cf)
{
	cf->tables_free = free_tables;
	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind == CF_ROUTE) {
			cf->secs[i].table = xcalloc(1, sizeof *cf->secs[i].table);
			cf->secs[i].table->name =
				cf->secs[i].name ? cf->secs[i].name : "";
		}
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		struct cf_assign *a = cf->merged[i];
		struct cf_section *sec = &cf->secs[a->sec];
		if (sec->kind != CF_ROUTE)
			continue;
		if (a->key == KEY_ROUTE)
			add_route_line(cf, sec->table, a);
		else if (a->key == KEY_FILE && !(cf->mode & CF_NO_INCLUDES))
			load_include(cf, sec->table, a, a->sec, NULL);
	}
	return cf->nerrors;
}
