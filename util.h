/*
 * util.h - small helpers shared by every part of postmaster.
 *
 * Owns: UTF-8 validation, ASCII case folding, escaping of untrusted bytes
 * for replies and logs, a growable byte buffer, checked allocation, and
 * reading a small file whole, writing a buffer whole, an unlinked
 * temporary file, and the RFC 5322
 * date and field names of message headers. Never does other I/O.
 */
#ifndef POSTMASTER_UTIL_H
#define POSTMASTER_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* On a function a plain session does not call (a rare path with a big
 * buffer): its frame never inlines into a common caller, so the common
 * path's stack stays shallow (every stack page touched is a page fault,
 * paid per connection: SPEC 11), and its code sits apart from hot code. */
#define RARE_PATH __attribute__((noinline, cold))

/* Growable byte buffer, always NUL-terminated. */
struct buf {
	char *s;
	size_t len;
	size_t cap;
};

void buf_reserve(struct buf *b, size_t more);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends s escaped for a reply or log line: printable ASCII and valid
 * UTF-8 as is, anything else as \xNN; backslash doubled. */
void buf_add_escaped(struct buf *b, const char *s, size_t n);
void buf_free(struct buf *b);
/* Appends the file at path (relative to dirfd, or AT_FDCWD) to b, at most
 * max bytes. -1 with errno set when it cannot be read. */
int buf_read_file(struct buf *b, int dirfd, const char *path, size_t max);
/* Writes all n bytes to fd, resuming after short writes and EINTR. 0, or
 * -1 with errno set. */
int write_all(int fd, const void *p, size_t n);
/* A new unlinked read-write file in $TMPDIR, else (unset, relative, or
 * unusable) in /tmp: its fd, or -1 with errno set. */
/* Whether uid:gid (and no other group) may create files in the
 * directory st: root may; else the bits of owner, group or others. */
int dir_writable_by(const struct stat *st, uid_t uid, gid_t gid);
int tmpfile_open(void);
/* The same; *where: the directory it is in ($TMPDIR's value, or
 * "/tmp"). */
int tmpfile_open_at(const char **where);
/* An unlinked file in dir, or -1 with errno. */
int tmpfile_in(const char *dir);
/* Appends the base64 form of n bytes (RFC 4648, no line breaks). */
void buf_add_base64(struct buf *b, const void *p, size_t n);
/* Decodes base64 text (RFC 4648, padding required, no blanks) onto b.
 * -1 when it is not base64. */
int base64_decode(const char *s, size_t n, struct buf *b);

/* Whether standard error may carry text: not a socket, or the journal's
 * stream (JOURNAL_STREAM), never a client's connection (inetd). */
int stderr_may_log(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
size_t utf8_seqlen(const unsigned char *p, size_t avail);
/* Offset of the first invalid byte, or n when all n bytes are valid. */
size_t utf8_check(const char *s, size_t n);

static inline unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}
int ascii_casecmp_n(const char *a, size_t an, const char *b, size_t bn);
void ascii_lower_str(char *s);
/* Whether s (NULL counts as empty) holds only ASCII octets. */
int str_ascii(const char *s);

/* t as an RFC 5322 date-time in local time, as Date: and Received: write
 * it ("Mon, 07 Dec 2026 02:15:13 +0000"); out needs 32 bytes. */
void date_rfc5322(time_t t, char *out, size_t n);

/* The length of the field name at the start of p: printable ASCII up to
 * a colon (RFC 5322 2.2), blanks before the colon allowed (4.5's obsolete
 * syntax, which readers must take, as Postfix's is_header() does); 0 when
 * p does not begin a field. Every reader that tells a header field from
 * the body asks it. */
size_t hdr_field_name(const char *p, size_t n);

/* One octet c of a message from its start, while its header section
 * lasts: whether the section goes on after c. *bol says a line starts at
 * c (1 for the first octet); a blank line (LF or CR LF) ends the section;
 * an octet above 127 in it sets *eightbit, when that is not NULL. */
int header_octet(unsigned char c, int *bol, int *eightbit);

/* FNV-1a over the ASCII-lowercased bytes. */
uint32_t hash_lower(const char *s, size_t n);

#endif
