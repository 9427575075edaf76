/*
 * util.c - small helpers shared by every part of postmaster.
 *
 * Owns: checked allocation, the growable buffer, UTF-8 validation and the
 * one escaping function through which every untrusted byte passes before it
 * reaches a reply, a log line or a diagnostic. Allocation failure is fatal
 * here (EX_TEMPFAIL): no caller can do better, and a session that
 * cannot allocate must not acknowledge anything.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "util.h"
#include "fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sysexits.h>
#include <sys/stat.h>
#include <unistd.h>

/* JOURNAL_STREAM is "DEVICE:INODE" of the journal's stream. */
int stderr_may_log(void)
{
	struct stat st;
	if (fstat(2, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return 1;
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	       dev == (unsigned long long)st.st_dev &&
	       ino == (unsigned long long)st.st_ino;
}

static void out_of_memory(void)
{
	/* not into a client's connection (inetd puts it on fd 2) */
	static const char msg[] = "postmaster: out of memory\n";
	if (stderr_may_log()) {
		ssize_t r = write(2, msg, sizeof msg - 1);
		(void)r;
	}
	_exit(EX_TEMPFAIL);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + more + 1)
		cap *= 2;
	b->s = xrealloc(b->s, cap);
	b->cap = cap;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = 0;
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	/* one pass when it fits, which is nearly always */
	va_list ap2;
	buf_reserve(b, 128);
	va_copy(ap2, ap);
	int n = fmt_vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->s[b->len] = 0;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		fmt_vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_add_escaped(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '\\') {
			buf_add(b, "\\\\", 2);
			i++;
		} else if (c >= 0x20 && c < 0x7f) {
			/* a run of plain ASCII at once: every log value and
			 * address goes through here */
			size_t j = i + 1;
			while (j < n && p[j] >= 0x20 && p[j] < 0x7f &&
			       p[j] != '\\')
				j++;
			buf_add(b, p + i, j - i);
			i = j;
		} else if (c >= 0x80) {
			size_t l = utf8_seqlen(p + i, n - i);
			/* U+0080..U+009F are C1 controls: escape them too. */
			if (l == 2 && c == 0xc2 && p[i + 1] < 0xa0)
				l = 0;
			if (l) {
				buf_add(b, p + i, l);
				i += l;
			} else {
				buf_printf(b, "\\x%02X", c);
				i++;
			}
		} else {
			buf_printf(b, "\\x%02X", c);
			i++;
		}
	}
}

void buf_free(struct buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

size_t utf8_seqlen(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t utf8_check(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t l = utf8_seqlen(p + i, n - i);
		if (!l)
			return i;
		i += l;
	}
	return n;
}

int ascii_casecmp_n(const char *a, size_t an, const char *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	for (size_t i = 0; i < n; i++) {
		int d = ascii_lower((unsigned char)a[i]) -
			ascii_lower((unsigned char)b[i]);
		if (d)
			return d;
	}
	return an < bn ? -1 : an > bn;
}

void ascii_lower_str(char *s)
{
	for (; *s; s++)
		*s = (char)ascii_lower((unsigned char)*s);
}

int str_ascii(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

int header_octet(unsigned char c, int *bol, int *eightbit)
{
	if (c == '\n') {
		if (*bol)
			return 0;
		*bol = 1;
	} else if (c != '\r') {
		*bol = 0;
		if (c >= 0x80 && eightbit)
			*eightbit = 1;
	}
	return 1;
}

size_t hdr_field_name(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] > ' ' && p[i] < 127 && p[i] != ':')
		i++;
	size_t k = i;
	while (k < n && (p[k] == ' ' || p[k] == '\t'))
		k++;
	return i > 0 && k < n && p[k] == ':' ? i : 0;
}

uint32_t hash_lower(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= ascii_lower((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void buf_add_base64(struct buf *b, const void *p, size_t n)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)u[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)u[i + 1] << 8;
		if (i + 2 < n)
			v |= u[i + 2];
		char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63],
			     i + 1 < n ? b64[v >> 6 & 63] : '=',
			     i + 2 < n ? b64[v & 63] : '='};
		buf_add(b, q, 4);
	}
	if (!b->s)
		buf_adds(b, "");
}

int base64_decode(const char *s, size_t n, struct buf *b)
{
	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			const char *c = s[i + k] ? strchr(b64, s[i + k]) : NULL;
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (!c || pad)
				return -1;
			v = v << 6 | (unsigned)(c - b64);
		}
		char out[3] = {(char)(v >> 16), (char)(v >> 8), (char)v};
		buf_add(b, out, (size_t)(3 - pad));
	}
	if (!b->s)
		buf_adds(b, "");
	return 0;
}

int buf_read_file(struct buf *b, int dirfd, const char *path, size_t max)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* straight into b: no chunk on the stack, no copy */
	ssize_t r;
	size_t start = b->len;
	do {
		buf_reserve(b, 4096);
		r = read(fd, b->s + b->len, b->cap - b->len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			b->s[b->len] = 0;
			close(fd);
			errno = e;
			return -1;
		}
		b->len += (size_t)r;
	} while (r && b->len - start < max);
	b->s[b->len] = 0;
	close(fd);
	return 0;
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ENOSPC; /* a file that takes nothing is full */
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

void date_rfc5322(time_t t, char *out, size_t n)
{
	/* strftime's names in the C locale, without its locale machinery */
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	localtime_r(&t, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	int r = fmt_snprintf(out, n, "%s, %02d %s %d %02d:%02d:%02d %c%02ld%02ld",
			     days[tm.tm_wday % 7], tm.tm_mday,
			     months[tm.tm_mon % 12], tm.tm_year + 1900,
			     tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
			     off % 60);
	if ((r < 0 || (size_t)r >= n) && n)
		out[0] = 0;
}

int tmpfile_in(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	fmt_snprintf(path, sizeof path, "%s/postmaster.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

int tmpfile_open_at(const char **where)
{
	const char *dir = getenv("TMPDIR");
	int fd = dir && dir[0] == '/' ? tmpfile_in(dir) : -1;
	*where = fd >= 0 ? dir : "/tmp";
	/* a $TMPDIR that is gone (or not ours) is no reason to fail */
	return fd >= 0 ? fd : tmpfile_in("/tmp");
}

int dir_writable_by(const struct stat *st, uid_t uid, gid_t gid)
{
	mode_t need = st->st_uid == uid	  ? S_IWUSR | S_IXUSR
		      : st->st_gid == gid ? S_IWGRP | S_IXGRP
					  : S_IWOTH | S_IXOTH;
	return uid == 0 || (st->st_mode & need) == need;
}

int tmpfile_open(void)
{
	const char *where;
	return tmpfile_open_at(&where);
}
