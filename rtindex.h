/*
 * rtindex.h - compiled route files, as postmap(1) compiles Postfix tables.
 *
 * `postmaster --check` parses every route file that postmaster.cf includes
 * with `file "PATH"` and writes PATH.pmdb: an on-disk hash table from the
 * canonical pattern key to the first line that has that pattern, with its
 * targets and position. A session then opens the index instead of parsing
 * the text, so a 100 000-line route file costs a few page faults per
 * lookup. First-match semantics are kept exactly: every line carries its
 * ordinal, and route.c takes the lowest ordinal over all candidate keys.
 *
 * An index is used only while every file it was built from still has the
 * size, mtime and inode recorded in it; otherwise it is ignored with a
 * warning and the text is parsed. The file is never trusted further than
 * its own bounds: every offset is checked before use.
 */
#ifndef POSTMASTER_RTINDEX_H
#define POSTMASTER_RTINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "cf.h"

struct rtindex;

#define RT_MAX_WORDS 2048 /* a 4096-byte line holds at most this many */

struct rt_hit {
	uint32_t seq;
	const char *file;
	uint32_t line, col;
	const char *pattern; /* as written */
	uint32_t nw;
	struct cf_word w[RT_MAX_WORDS];
};

/* NULL when there is no usable index; *stale is set when one exists but
 * is out of date or damaged. */
struct rtindex *rtindex_open(const char *srcpath, int *stale);
void rtindex_close(struct rtindex *ix);

/* One route line to compile, in file order. */
struct rt_line {
	char *key;             /* its pattern key (route_pattern_key) */
	const char *domain;    /* its canonical domain, "" for none */
	const char *pattern;   /* as written */
	const struct cf_word *w;
	uint32_t nw;
	struct cf_pos pos;
};

/* Writes srcpath.pmdb from the n lines read from srcpath and the files it
 * includes (deps, each as it was when read: depst). Returns -1 with a
 * reason in err. */
int rtindex_write(const char *srcpath, const struct rt_line *e, uint32_t n,
		  const char *const *deps, const struct cf_depstat *depst,
		  uint32_t ndeps, char *err, size_t errlen);

/* Finds the first line whose pattern key is key. Returns 1 and fills hit,
 * or 0. */
int rtindex_lookup(const struct rtindex *ix, const char *key, size_t keylen,
		   struct rt_hit *hit);
/* Whether a pattern of the file names domain (canonical, idna.h): with
 * whole, an @domain pattern; else that or a user@domain one. */
int rtindex_names_domain(const struct rtindex *ix, const char *domain,
			 int whole);
const char *rtindex_path(const struct rtindex *ix);
uint32_t rtindex_count(const struct rtindex *ix);

#endif
