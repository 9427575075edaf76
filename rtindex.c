/*
 * rtindex.c - compiled route files (see rtindex.h).
 *
 * Layout of PATH.pmdb (native byte order, 4-byte aligned):
 *   header   magic "PMRTIX04", nfiles, nbuckets, nentries, off_buckets,
 *            total size
 *   files    per source file: size, mtime (s, ns), inode, path
 *   buckets  nbuckets x u32: offset of an entry, 0 = empty (linear probing)
 *   entries  seq, file, line, col, nw, key\0, pattern\0, nw x (quoted, col,
 *            word\0)
 * Keys are route_pattern_key() strings; "=:domain" keys record the domains
 * that patterns name. Domains in keys are canonical (idna.h: lowercase
 * A-labels, an address literal as its address), so any spelling of a name
 * finds them; older files ("PMRTIX02": domains as written, "PMRTIX03":
 * literals as written) count as stale. The first line of a key wins, as
 * in the text.
 *
 * Never: follows an offset it has not checked against the file size.
 */
#include "rtindex.h"
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "PMRTIX04"

struct hdr {
	char magic[8];
	uint32_t nfiles, nbuckets, nentries, off_buckets;
	uint64_t size;
};

struct filerec {
	uint64_t size;
	int64_t mtime_s, mtime_ns;
	uint64_t ino;
	uint32_t pathlen;
	uint32_t pad;
};

struct entrec {
	uint32_t seq, file, line, col, nw;
};

struct rtindex {
	const unsigned char *map;
	size_t size;
	const struct hdr *h;
	const uint32_t *buckets;
	char *path;
	const char **files;
	uint32_t nfiles;
};

static size_t align4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

const char *rtindex_path(const struct rtindex *ix)
{
	return ix->path;
}

uint32_t rtindex_count(const struct rtindex *ix)
{
	return ix->h->nentries;
}

static void index_name(const char *src, char *out, size_t n)
{
	fmt_snprintf(out, n, "%s.pmdb", src);
}

void rtindex_close(struct rtindex *ix)
{
	if (!ix)
		return;
	munmap((void *)ix->map, ix->size);
	free(ix->files);
	free(ix->path);
	free(ix);
}

struct rtindex *rtindex_open(const char *srcpath, int *stale)
{
	char name[PATH_MAX + 8];
	struct stat st;
	*stale = 0;
	index_name(srcpath, name, sizeof name);
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size < sizeof(struct hdr)) {
		close(fd);
		*stale = 1;
		return NULL;
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		*stale = 1;
		return NULL;
	}
	struct rtindex *ix = xcalloc(1, sizeof *ix);
	ix->map = map;
	ix->size = (size_t)st.st_size;
	ix->h = map;
	ix->path = xstrdup(srcpath);
	const struct hdr *h = ix->h;
	if (memcmp(h->magic, MAGIC, 8) || h->size != ix->size ||
	    h->nbuckets == 0 || h->off_buckets % 4 ||
	    (uint64_t)h->off_buckets + 4ull * h->nbuckets > ix->size ||
	    h->nfiles == 0 || h->nfiles > 100000)
		goto bad;
	ix->buckets = (const uint32_t *)(ix->map + h->off_buckets);
	ix->files = xcalloc(h->nfiles, sizeof *ix->files);
	size_t off = sizeof *h;
	for (uint32_t i = 0; i < h->nfiles; i++) {
		struct filerec fr;
		if (off + sizeof fr > h->off_buckets)
			goto bad;
		memcpy(&fr, ix->map + off, sizeof fr);
		off += sizeof fr;
		if (fr.pathlen == 0 || off + fr.pathlen > h->off_buckets ||
		    ix->map[off + fr.pathlen - 1] != 0)
			goto bad;
		const char *p = (const char *)ix->map + off;
		ix->files[i] = p;
		off = align4(off + fr.pathlen);
		struct stat s2;
		if (stat(p, &s2) < 0 || (uint64_t)s2.st_size != fr.size ||
		    (int64_t)s2.st_mtim.tv_sec != fr.mtime_s ||
		    (int64_t)s2.st_mtim.tv_nsec != fr.mtime_ns ||
		    (uint64_t)s2.st_ino != fr.ino)
			goto bad;
	}
	/* the first file must be the one asked for */
	struct stat s1, s2;
	if (stat(srcpath, &s1) < 0 || stat(ix->files[0], &s2) < 0 ||
	    s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev)
		goto bad;
	ix->nfiles = h->nfiles;
	return ix;
bad:
	*stale = 1;
	rtindex_close(ix);
	return NULL;
}

/* Reads the entry at off; 0 when it is out of bounds. */
static int entry_at(const struct rtindex *ix, uint32_t off, struct entrec *er,
		    const char **key, const char **pat, size_t *next)
{
	if (off < ix->h->off_buckets || (size_t)off + sizeof *er > ix->size)
		return 0;
	memcpy(er, ix->map + off, sizeof *er);
	size_t p = off + sizeof *er;
	const char *k = (const char *)ix->map + p;
	const char *e = memchr(k, 0, ix->size - p);
	if (!e)
		return 0;
	p += (size_t)(e - k) + 1;
	const char *pt = (const char *)ix->map + p;
	e = memchr(pt, 0, ix->size - p);
	if (!e)
		return 0;
	p += (size_t)(e - pt) + 1;
	*key = k;
	*pat = pt;
	*next = p;
	return er->file < ix->nfiles && er->nw <= RT_MAX_WORDS;
}

int rtindex_lookup(const struct rtindex *ix, const char *key, size_t keylen,
		   struct rt_hit *hit)
{
	uint32_t nb = ix->h->nbuckets;
	uint32_t b = hash_lower(key, keylen) % nb;
	for (uint32_t probe = 0; probe < nb; probe++, b = (b + 1) % nb) {
		uint32_t off = ix->buckets[b];
		if (!off)
			return 0;
		struct entrec er;
		const char *k, *pat;
		size_t p;
		if (!entry_at(ix, off, &er, &k, &pat, &p))
			return 0;
		if (strlen(k) != keylen || memcmp(k, key, keylen))
			continue;
		hit->seq = er.seq;
		hit->file = ix->files[er.file];
		hit->line = er.line;
		hit->col = er.col;
		hit->pattern = pat;
		hit->nw = er.nw;
		for (uint32_t i = 0; i < er.nw; i++) {
			if (p + 5 > ix->size)
				return 0;
			struct cf_word *w = &hit->w[i];
			w->quoted = ix->map[p];
			memcpy(&w->col, ix->map + p + 1, 4);
			p += 5;
			const char *s = (const char *)ix->map + p;
			const char *e = memchr(s, 0, ix->size - p);
			if (!e)
				return 0;
			w->s = s;
			w->len = (uint32_t)(e - s);
			p += w->len + 1u;
		}
		return 1;
	}
	return 0;
}

int rtindex_names_domain(const struct rtindex *ix, const char *domain,
			 int whole)
{
	struct buf k = {0};
	struct rt_hit *hit = xmalloc(sizeof *hit);
	buf_adds(&k, whole ? "d:" : "=:"); /* route_pattern_key's, or ours */
	buf_adds(&k, domain);
	for (size_t i = 0; i < k.len; i++)
		k.s[i] = (char)ascii_lower((unsigned char)k.s[i]);
	int r = rtindex_lookup(ix, k.s, k.len, hit);
	free(hit);
	buf_free(&k);
	return r;
}

/* ------------------------------------------------------------------ */

struct wentry {
	uint32_t hash;
	uint32_t off; /* in the entry area */
	char *key;
};

struct wset {
	uint32_t *slot; /* index + 1 into tab, 0 = empty */
	uint32_t mask;
};

static int put_entry(struct buf *area, struct wentry **tab, uint32_t *ntab,
		     uint32_t *cap, struct wset *set, const char *key,
		     uint32_t seq, uint32_t file, const struct rt_line *e)
{
	/* first line wins: skip keys already present */
	uint32_t h = hash_lower(key, strlen(key));
	uint32_t s = h & set->mask;
	for (; set->slot[s]; s = (s + 1) & set->mask) {
		const struct wentry *o = &(*tab)[set->slot[s] - 1];
		if (o->hash == h && !strcmp(o->key, key))
			return 0;
	}
	if (*ntab == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*tab = xrealloc(*tab, *cap * sizeof **tab);
	}
	set->slot[s] = *ntab + 1;
	struct wentry *we = &(*tab)[(*ntab)++];
	we->hash = h;
	we->off = (uint32_t)area->len;
	we->key = xstrdup(key);
	struct entrec er = {seq, file, e->pos.line, e->pos.col, e->nw};
	buf_add(area, &er, sizeof er);
	buf_add(area, key, strlen(key) + 1);
	buf_add(area, e->pattern, strlen(e->pattern) + 1);
	for (uint32_t i = 0; i < er.nw; i++) {
		const struct cf_word *w = &e->w[i];
		buf_addc(area, (char)w->quoted);
		buf_add(area, &w->col, 4);
		buf_add(area, w->s, w->len + 1);
	}
	while (area->len % 4)
		buf_addc(area, 0);
	return 0;
}

/* The header's file records: each file's size, mtime, inode (as it was
 * when read, so that a change made since makes the index stale) and
 * path, so that a session can tell a stale index: the real path of the
 * top file (the index's name), a nested file's as its includer names it
 * (absolute), so that a symlink pointed at another file is a change. */
static int put_deps(struct buf *head, const char *const *deps,
		    const struct cf_depstat *depst, uint32_t ndeps, char *err,
		    size_t errlen)
{
	for (uint32_t i = 0; i < ndeps; i++) {
		char abs[PATH_MAX];
		if (i && deps[i][0] == '/')
			fmt_snprintf(abs, sizeof abs, "%s", deps[i]);
		else if (!realpath(deps[i], abs)) {
			fmt_snprintf(err, errlen, "cannot index \"%s\": %s", deps[i],
				 strerror(errno));
			return -1;
		}
		const struct cf_depstat *st = &depst[i];
		struct filerec fr = {st->size, st->sec, st->nsec, st->ino,
				     (uint32_t)strlen(abs) + 1, 0};
		buf_add(head, &fr, sizeof fr);
		buf_add(head, abs, fr.pathlen);
		while (head->len % 4)
			buf_addc(head, 0);
	}
	return 0;
}

/* The entries: each line under its pattern key and, with a domain, under
 * "=:domain"; the first line of each key wins. */
static void put_lines(struct buf *area, struct wentry **tab, uint32_t *ntab,
		      const struct rt_line *e, uint32_t n,
		      const char *const *deps, uint32_t ndeps)
{
	struct buf key = {0};
	uint32_t cap = 0;
	/* at most two keys per line; the set keeps the first of each */
	struct wset set;
	uint32_t sz = 64;
	while (sz < 4ull * n + 64)
		sz *= 2;
	set.slot = xcalloc(sz, sizeof *set.slot);
	set.mask = sz - 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t file = 0;
		for (uint32_t d = 0; d < ndeps; d++)
			if (!strcmp(deps[d], e[i].pos.file))
				file = d;
		put_entry(area, tab, ntab, &cap, &set, e[i].key, i, file, &e[i]);
		if (e[i].domain[0]) {
			key.len = 0;
			buf_adds(&key, "=:");
			buf_adds(&key, e[i].domain);
			ascii_lower_str(key.s);
			put_entry(area, tab, ntab, &cap, &set, key.s, i, file,
				  &e[i]);
		}
	}
	free(set.slot);
	buf_free(&key);
}

/* Writes the parts to tmp, synced, and renames it to name. */
static int write_parts(const char *tmp, const char *name,
		       const struct buf *head, const uint32_t *buckets,
		       size_t nbuckets, const struct buf *area, char *err,
		       size_t errlen)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fmt_snprintf(err, errlen, "cannot write the index \"%s\": %s", name,
			 strerror(errno));
		return -1;
	}
	struct {
		const void *p;
		size_t n;
	} parts[] = {{head->s, head->len},
		     {buckets, 4 * nbuckets},
		     {area->s, area->len}};
	for (size_t i = 0; i < 3; i++)
		if (write_all(fd, parts[i].p, parts[i].n) < 0) {
			fmt_snprintf(err, errlen, "cannot write \"%s\": %s", tmp,
				 strerror(errno));
			close(fd);
			return -1;
		}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fmt_snprintf(err, errlen, "cannot write \"%s\": %s", tmp,
			 strerror(errno));
		return -1;
	}
	if (rename(tmp, name) < 0) {
		fmt_snprintf(err, errlen, "cannot rename \"%s\": %s", tmp,
			 strerror(errno));
		return -1;
	}
	return 0;
}

int rtindex_write(const char *srcpath, const struct rt_line *e, uint32_t n,
		  const char *const *deps, const struct cf_depstat *depst,
		  uint32_t ndeps, char *err, size_t errlen)
{
	char name[PATH_MAX + 8], tmp[PATH_MAX + 32];
	struct buf head = {0}, area = {0};
	struct wentry *tab = NULL;
	uint32_t ntab = 0;
	int r = -1;
	uint32_t *buckets = NULL;

	index_name(srcpath, name, sizeof name);
	fmt_snprintf(tmp, sizeof tmp, "%s.tmp%ld", name, (long)getpid());
	struct hdr h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, MAGIC, 8);
	h.nfiles = ndeps;
	buf_add(&head, &h, sizeof h);
	if (put_deps(&head, deps, depst, ndeps, err, errlen) < 0)
		goto out;
	put_lines(&area, &tab, &ntab, e, n, deps, ndeps);
	h.nentries = ntab;
	h.nbuckets = ntab * 2 + 1;
	h.off_buckets = (uint32_t)head.len;
	uint64_t base = head.len + 4ull * h.nbuckets;
	h.size = base + area.len;
	if (h.size > UINT32_MAX) {
		fmt_snprintf(err, errlen, "cannot index \"%s\": too large", srcpath);
		goto out;
	}
	buckets = xcalloc(h.nbuckets, 4);
	for (uint32_t i = 0; i < ntab; i++) {
		uint32_t b = tab[i].hash % h.nbuckets;
		while (buckets[b])
			b = (b + 1) % h.nbuckets;
		buckets[b] = (uint32_t)(base + tab[i].off);
	}
	memcpy(head.s, &h, sizeof h);
	r = write_parts(tmp, name, &head, buckets, h.nbuckets, &area, err,
			errlen);
out:
	if (r < 0)
		unlink(tmp);
	for (uint32_t i = 0; i < ntab; i++)
		free(tab[i].key);
	free(tab);
	free(buckets);
	buf_free(&head);
	buf_free(&area);
	return r;
}
