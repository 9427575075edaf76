/*
 * spool.c - the durable queue's files (see spool.h).
 *
 * The envelope is text, one item per line, each field %XX-escaped where it
 * holds a blank, a '%', a control byte or is empty ("-"):
 *
 *   postmaster-envelope 1
 *   arrival 1764560000
 *   sender a@example.org
 *   origin client|bounce|double-bounce
 *   body 7bit|8bitmime|binarymime
 *   smtputf8 0|1
 *   session SID
 *   client [192.0.2.1]
 *   smtpd NAME
 *   dsn-ret full|hdrs
 *   dsn-envid XTEXT
 *   dsn-delayed 1
 *   quarantine REASON
 *   target STATE ATTEMPTS NEXT KIND VIA ADDR ORIG ARG
 *   dsn NOTIFY ORCPT
 *   report-owed delivered|relayed
 *   reply CODE DSN REMOTE TEXT
 *
 * An envelope written before the "smtpd" line existed loads without it.
 * The "dsn-ret", "dsn-envid" and "dsn" lines (RFC 3461) are there only
 * when the client asked for them, "dsn-delayed" once the delay report
 * went out, "quarantine" while a milter's quarantine holds the message
 * (until --release), "report-owed" while a delivered target's
 * NOTIFY=SUCCESS report is not yet in the spool; NOTIFY is "never" or a
 * comma list of
 * success, failure, delay, or "-"; ORCPT is "type;xtext" or "-". A "dsn"
 * or "reply" line belongs to the target line before it. In the file ID a
 * line "message" ends the envelope; ID.env holds the envelope alone. ID is
 * locked (flock) by whoever delivers the message; ID.env is replaced by
 * rename, so its inode cannot carry a lock.
 */
#define _GNU_SOURCE
#include "spool.h"
#include "fmt.h"
#include "util.h"

#include <dirent.h>
#include <sys/statvfs.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ORPHAN_AGE 3600 /* an ID.env.PID this old is dead */
#define TMP_AGE 60       /* an unlocked tmp.ID this old is dead */

static const char *const state_names[] = {"pending", "delivered", "failed"};
static const char *const owed_names[] = {"", "delivered", "relayed"};
static const char *const origin_names[] = {"client", "bounce",
					   "double-bounce"};

const char *spool_state_name(enum sp_state s) { return state_names[s]; }

int spool_open(const char *dir, char *why, size_t n)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fmt_snprintf(why, n, "spool directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		fmt_snprintf(why, n, "spool directory %s: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A failure that leaves the message sound: this process is short of
 * descriptors or memory. */
static int temporary(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == EAGAIN || err == EINTR;
}

static void name_of(char *out, size_t n, const char *id, const char *ext)
{
	if (!*ext)
		fmt_snprintf(out, n, "%s", id);
	else if (!strcmp(ext, "tmp"))
		fmt_snprintf(out, n, "tmp.%s", id);
	else
		fmt_snprintf(out, n, "%s.%s", id, ext);
}

static int is_id(const char *s)
{
	size_t n = 0;
	for (; (s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'F'); n++)
		;
	return n == 18 && !s[n];
}

int spool_has_room(int dirfd, uint64_t need)
{
	struct statvfs fs;
	if (fstatvfs(dirfd, &fs) < 0)
		return 1;
	uint64_t bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (bytes < SPOOL_RUN_ROOM || bytes - SPOOL_RUN_ROOM < need)
		return 0;
	/* a file system without an inode count (f_files 0) never runs out */
	return !fs.f_files || fs.f_favail >= SPOOL_RUN_INODES + (need ? 2 : 0);
}

int spool_create(int dirfd, struct spool_msg *m)
{
	for (int tries = 0; tries < 10; tries++) {
		uint32_t rnd;
		if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
			rnd = (uint32_t)getpid() ^ (uint32_t)clock();
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* seconds, microseconds, random: name order is arrival
		 * order to the microsecond */
		fmt_snprintf(m->id, sizeof m->id, "%010llX%05lX%03X",
			 (unsigned long long)ts.tv_sec & 0xffffffffffULL,
			 (unsigned long)(ts.tv_nsec / 1000) & 0xfffff,
			 rnd & 0xfff);
		char name[64];
		name_of(name, sizeof name, m->id, "tmp");
		int fd = openat(dirfd, name,
				O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			unlinkat(dirfd, name, 0);
			close(fd);
			errno = e;
			return -1;
		}
		m->data_fd = fd;
		m->arrival = ts.tv_sec;
		return 0;
	}
	errno = EEXIST;
	return -1;
}

void spool_add_target(struct spool_msg *m, const struct route_target *t,
		      const char *orig)
{
	m->t = xrealloc(m->t, (m->nt + 1) * sizeof *m->t);
	struct spool_target *x = &m->t[m->nt++];
	memset(x, 0, sizeof *x);
	x->kind = t->kind;
	x->state = SP_PENDING;
	x->via = xstrdup(t->sec && t->sec->name ? t->sec->name : "");
	x->addr = xstrdup(t->addr);
	x->orig = xstrdup(orig);
	x->arg = xstrdup(t->arg ? t->arg : "");
	x->remote = xstrdup("");
	x->text = xstrdup("");
}

/* ------------------------------------------------------------------ */
/* The envelope text                                                   */

static void put_field(struct buf *b, const char *s)
{
	buf_addc(b, ' ');
	if (!*s || !strcmp(s, "-")) {
		buf_adds(b, *s ? "%2D" : "-");
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '%' || c == 0x7f)
			buf_printf(b, "%%%02X", c);
		else
			buf_addc(b, (char)c);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Unescapes one field in place; NULL when it is malformed. */
static char *get_field(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	char *start = s, *o = s;
	while (*s && *s != ' ') {
		if (*s == '%') {
			int h = hexval(s[1]), l = h < 0 ? -1 : hexval(s[2]);
			if (l < 0)
				return NULL;
			*o++ = (char)(h * 16 + l);
			s += 3;
		} else {
			*o++ = *s++;
		}
	}
	char *next = *s ? s + 1 : s;
	*o = 0;
	*p = next;
	if (!strcmp(start, "-"))
		start[0] = 0;
	return start;
}

static void envelope_text(const struct spool_msg *m, struct buf *b)
{
	buf_adds(b, "postmaster-envelope 1\n");
	buf_printf(b, "arrival %lld\n", (long long)m->arrival);
	buf_adds(b, "sender");
	put_field(b, m->from);
	buf_printf(b, "\norigin %s\n", origin_names[m->origin]);
	buf_printf(b, "body %s\n", m->binary     ? "binarymime"
				   : m->eightbit ? "8bitmime"
						 : "7bit");
	buf_printf(b, "smtputf8 %d\n", m->smtputf8);
	buf_adds(b, "session");
	put_field(b, m->sid ? m->sid : "");
	buf_adds(b, "\nclient");
	put_field(b, m->client ? m->client : "");
	buf_adds(b, "\nsmtpd");
	put_field(b, m->smtpd ? m->smtpd : "");
	buf_addc(b, '\n');
	if (m->dsn_ret != DSN_RET_NONE)
		buf_printf(b, "dsn-ret %s\n",
			   m->dsn_ret == DSN_RET_FULL ? "full" : "hdrs");
	if (m->delay_reported)
		buf_adds(b, "dsn-delayed 1\n");
	if (m->quarantine) {
		buf_adds(b, "quarantine");
		put_field(b, m->quarantine);
		buf_addc(b, '\n');
	}
	if (m->envid) {
		buf_adds(b, "dsn-envid");
		put_field(b, m->envid);
		buf_addc(b, '\n');
	}
	for (unsigned i = 0; i < m->nt; i++) {
		const struct spool_target *t = &m->t[i];
		buf_printf(b, "target %s %u %lld %s", state_names[t->state],
			   t->attempts, (long long)t->next,
			   route_target_kind_word(t->kind));
		put_field(b, t->via);
		put_field(b, t->addr);
		put_field(b, t->orig);
		put_field(b, t->arg);
		buf_addc(b, '\n');
		if (t->notify || t->orcpt) {
			char words[32];
			buf_adds(b, "dsn");
			put_field(b, dsn_notify_text(t->notify, words));
			put_field(b, t->orcpt ? t->orcpt : "");
			buf_addc(b, '\n');
		}
		if (t->owed)
			buf_printf(b, "report-owed %s\n", owed_names[t->owed]);
		if (t->code) {
			buf_printf(b, "reply %d", t->code);
			put_field(b, t->dsn);
			put_field(b, t->remote);
			buf_addc(b, ' ');
			for (const char *s = t->text; *s; s++)
				buf_addc(b, *s == '\n' || *s == '\r' ? ' ' : *s);
			buf_addc(b, '\n');
		}
	}
}

int spool_begin_message(struct spool_msg *m)
{
	struct buf b = {0};
	envelope_text(m, &b);
	buf_adds(&b, "message\n");
	int r = write_all(m->data_fd, b.s, b.len);
	m->data_off = (off_t)b.len;
	buf_free(&b);
	return r;
}

/* Writes the envelope under a temporary name and renames it into place. */
static int write_envelope(int dirfd, const struct spool_msg *m)
{
	char tmp[64], name[64];
	fmt_snprintf(tmp, sizeof tmp, "%s.env.%ld", m->id, (long)getpid());
	name_of(name, sizeof name, m->id, "env");
	struct buf b = {0};
	envelope_text(m, &b);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (fd < 0) {
		buf_free(&b);
		return -1;
	}
	int err = write_all(fd, b.s, b.len) < 0 || fsync(fd) < 0;
	int e = errno;
	buf_free(&b);
	if (close(fd) < 0 && !err) {
		err = 1;
		e = errno;
	}
	if (err || renameat(dirfd, tmp, dirfd, name) < 0) {
		if (!err)
			e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	return fsync(dirfd);
}

int spool_commit(int dirfd, struct spool_msg *m)
{
	struct stat st;
	char tmp[64], name[64];
	name_of(tmp, sizeof tmp, m->id, "tmp");
	name_of(name, sizeof name, m->id, "");
	if (fsync(m->data_fd) < 0 || fstat(m->data_fd, &st) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0)
		return -1;
	m->size = st.st_size - m->data_off;
	if (fsync(dirfd) < 0) {
		/* renamed but perhaps not durable: not acknowledged either */
		int e = errno;
		unlinkat(dirfd, name, 0);
		errno = e;
		return -1;
	}
	return 0;
}

int spool_update(int dirfd, const struct spool_msg *m)
{
	return write_envelope(dirfd, m);
}

int spool_remove(int dirfd, const struct spool_msg *m)
{
	char name[64];
	name_of(name, sizeof name, m->id, "");
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -1; /* ID.env stays: without it, the envelope at the
			    * head of ID would deliver every target again */
	name_of(name, sizeof name, m->id, "env");
	unlinkat(dirfd, name, 0);
	/* no directory sync: a removal lost in a crash brings the message
	 * back, to be delivered again (at least once), never lost */
	return 0;
}

void spool_discard(int dirfd, struct spool_msg *m)
{
	char name[64];
	name_of(name, sizeof name, m->id, "tmp");
	unlinkat(dirfd, name, 0);
	if (m->data_fd >= 0)
		close(m->data_fd);
	m->data_fd = -1;
}

static int parse_index(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

/* A "dsn" line's fields into the target before it. */
static int target_dsn(struct spool_target *t, char *p)
{
	char *notify = get_field(&p), *orcpt = notify ? get_field(&p) : NULL;
	if (!orcpt || (*notify && dsn_notify_from_text(notify, &t->notify) < 0))
		return -1;
	free(t->orcpt);
	t->orcpt = *orcpt ? xstrdup(orcpt) : NULL;
	return 0;
}

/* Whether a target has what its kind is delivered with: a run would
 * otherwise take a damaged line for a destination (an mx address without
 * a domain, an empty command that "delivers" to nobody). */
static int target_sound(const struct spool_target *t)
{
	const char *at = strrchr(t->addr, '@');
	switch (t->kind) {
	case T_MX:
		return at && at[1];
	case T_HOST:
	case T_USER:
	case T_CMD:
	case T_MAILDIR:
		return t->arg[0] != 0;
	default:
		return 1;
	}
}

/* A "target" line's eight fields (p after the key) as m's next target:
 * state, attempts, next try, kind, via, address, original recipient,
 * argument. -1 when one is missing or unsound. */
static int parse_target_line(char *p, struct spool_msg *m)
{
	char *fs[8];
	for (int i = 0; i < 8; i++)
		if (!(fs[i] = get_field(&p)))
			return -1;
	int st = parse_index(fs[0], state_names, 3);
	struct route_target rt = {0};
	if (st < 0 || route_target_kind_parse(fs[3], &rt.kind) < 0)
		return -1;
	spool_add_target(m, &rt, fs[6]);
	struct spool_target *t = &m->t[m->nt - 1];
	t->state = (enum sp_state)st;
	t->attempts = (unsigned)strtoul(fs[1], NULL, 10);
	t->next = strtoll(fs[2], NULL, 10);
	free(t->via);
	free(t->addr);
	free(t->arg);
	t->via = xstrdup(fs[4]);
	t->addr = xstrdup(fs[5]);
	t->arg = xstrdup(fs[7]);
	return target_sound(t) ? 0 : -1;
}

/* A "reply" line (p after the key): the last reply the last target had,
 * code, enhanced code, remote host and text. -1 when a field is missing
 * or no target came before. */
static int parse_reply_line(char *p, struct spool_msg *m)
{
	if (!m->nt)
		return -1;
	struct spool_target *t = &m->t[m->nt - 1];
	char *code = get_field(&p), *dsn, *remote;
	if (!code || !(dsn = get_field(&p)) || !(remote = get_field(&p)))
		return -1;
	t->code = atoi(code);
	fmt_snprintf(t->dsn, sizeof t->dsn, "%s", dsn);
	free(t->remote);
	free(t->text);
	t->remote = xstrdup(remote);
	t->text = xstrdup(p);
	return 0;
}

static int parse_envelope(char *text, struct spool_msg *m)
{
	char *save = NULL;
	int lineno = 0;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save), lineno++) {
		if (!strcmp(l, "message"))
			break;
		char *sp = strchr(l, ' ');
		if (!sp)
			return -1;
		*sp = 0;
		char *key = l, *p = sp + 1, *f;
		if (lineno == 0) {
			if (strcmp(key, "postmaster-envelope") || strcmp(p, "1"))
				return -1;
		} else if (!strcmp(key, "arrival")) {
			m->arrival = strtoll(p, NULL, 10);
		} else if (!strcmp(key, "sender")) {
			if (!(f = get_field(&p)))
				return -1;
			free(m->from);
			m->from = xstrdup(f);
		} else if (!strcmp(key, "origin")) {
			int o = parse_index(p, origin_names, 3);
			if (o < 0)
				return -1;
			m->origin = (enum sp_origin)o;
		} else if (!strcmp(key, "body")) {
			m->binary = !strcmp(p, "binarymime");
			m->eightbit = !strcmp(p, "8bitmime");
		} else if (!strcmp(key, "smtputf8")) {
			m->smtputf8 = atoi(p);
		} else if (!strcmp(key, "session") || !strcmp(key, "client") ||
			   !strcmp(key, "smtpd") || !strcmp(key, "quarantine")) {
			if (!(f = get_field(&p)))
				return -1;
			char **dst = !strcmp(key, "session")  ? &m->sid
				     : !strcmp(key, "client") ? &m->client
				     : !strcmp(key, "smtpd")  ? &m->smtpd
							      : &m->quarantine;
			free(*dst);
			*dst = xstrdup(f);
		} else if (!strcmp(key, "target")) {
			if (parse_target_line(p, m) < 0)
				return -1;
		} else if (!strcmp(key, "dsn-ret")) {
			if (strcmp(p, "full") && strcmp(p, "hdrs"))
				return -1;
			m->dsn_ret = !strcmp(p, "full") ? DSN_RET_FULL
							: DSN_RET_HDRS;
		} else if (!strcmp(key, "dsn-delayed")) {
			m->delay_reported = atoi(p) > 0;
		} else if (!strcmp(key, "dsn-envid")) {
			if (!(f = get_field(&p)))
				return -1;
			free(m->envid);
			m->envid = xstrdup(f);
		} else if (!strcmp(key, "dsn")) {
			if (!m->nt || target_dsn(&m->t[m->nt - 1], p) < 0)
				return -1;
		} else if (!strcmp(key, "report-owed")) {
			int o = parse_index(p, owed_names, 3);
			if (!m->nt || o <= 0)
				return -1;
			m->t[m->nt - 1].owed = (enum sp_owed)o;
		} else if (!strcmp(key, "reply")) {
			if (parse_reply_line(p, m) < 0)
				return -1;
		}
		/* unknown keys: a later version's additions, ignored */
	}
	/* an envelope always has its targets (their states kept to the
	 * end): one without is cut short, never a message done with */
	return lineno > 0 && m->from && m->nt ? 0 : -1;
}

/* The envelope at the head of ID; *off is set to where the message
 * starts. NULL when the line "message" is missing. */
static char *read_head(int fd, off_t *off)
{
	struct buf b = {0};
	char chunk[8192];
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof chunk, (off_t)b.len);
		if (n <= 0)
			break;
		size_t from = b.len > 8 ? b.len - 8 : 0;
		buf_add(&b, chunk, (size_t)n);
		const char *mark = b.len >= 8 && !memcmp(b.s, "message\n", 8)
					   ? b.s
					   : memmem(b.s + from, b.len - from,
						    "\nmessage\n", 9);
		if (mark) {
			if (mark != b.s)
				mark++;
			*off = (off_t)(mark - b.s) + 8;
			b.s[*off] = 0;
			return b.s;
		}
	}
	buf_free(&b);
	return NULL;
}

/* Opens the data file ID into m (and, with lock, locks it), its stat in
 * *st; SPOOL_OK, or a status with why and nothing left open. */
static int open_data(int dirfd, const char *id, int lock, struct spool_msg *m,
		     struct stat *st, char *why, size_t n)
{
	memset(m, 0, sizeof *m);
	m->data_fd = -1;
	fmt_snprintf(m->id, sizeof m->id, "%s", id);
	char name[64];
	name_of(name, sizeof name, id, "");
	m->data_fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (m->data_fd < 0) {
		fmt_snprintf(why, n, "%s: %s", name, strerror(errno));
		return errno == ENOENT	   ? SPOOL_GONE
		       : temporary(errno) ? SPOOL_TEMP
					   : SPOOL_BAD;
	}
	if (lock && flock(m->data_fd, LOCK_EX | LOCK_NB) < 0) {
		fmt_snprintf(why, n, "%s: locked by another process", id);
		spool_msg_free(m);
		return SPOOL_BUSY;
	}
	if (fstat(m->data_fd, st) < 0) {
		fmt_snprintf(why, n, "%s: %s", name, strerror(errno));
		spool_msg_free(m);
		return SPOOL_BAD;
	}
	/* the holder before us may have delivered and removed it between
	 * our open and our lock: the file we hold is no longer the spool's */
	struct stat named;
	if (lock && (st->st_nlink == 0 || fstatat(dirfd, name, &named, 0) < 0 ||
		     named.st_ino != st->st_ino || named.st_dev != st->st_dev)) {
		fmt_snprintf(why, n, "%s: removed as we opened it", id);
		spool_msg_free(m);
		return SPOOL_GONE;
	}
	return SPOOL_OK;
}

int spool_lock(int dirfd, const char *id, struct spool_msg *m, char *why,
	       size_t n)
{
	struct stat st;
	return open_data(dirfd, id, 1, m, &st, why, n);
}

int spool_load(int dirfd, const char *id, int lock, struct spool_msg *m,
	       char *why, size_t n)
{
	struct stat st;
	int r = open_data(dirfd, id, lock, m, &st, why, n);
	if (r != SPOOL_OK)
		return r;
	/* read after the lock: the holder before us may have updated it */
	char *head = read_head(m->data_fd, &m->data_off);
	char name[64];
	name_of(name, sizeof name, id, "env");
	struct buf env = {0};
	char *text = buf_read_file(&env, dirfd, name, SIZE_MAX) == 0 ? env.s : NULL;
	if (!text && errno != ENOENT) {
		/* the state after the commit is in there: the one at the
		 * head of ID would deliver its delivered targets again */
		int e = errno;
		fmt_snprintf(why, n, "%s: %s", name, strerror(e));
		buf_free(&env);
		free(head);
		spool_msg_free(m);
		return temporary(e) ? SPOOL_TEMP : SPOOL_BAD;
	}
	if (!text)
		buf_free(&env);
	int bad = !head || parse_envelope(text ? text : head, m) < 0;
	free(head);
	free(text);
	if (bad) {
		fmt_snprintf(why, n, "%s: malformed envelope", id);
		spool_msg_free(m);
		return SPOOL_BAD;
	}
	m->size = st.st_size - m->data_off;
	return SPOOL_OK;
}

static void target_free(struct spool_target *t)
{
	free(t->via);
	free(t->addr);
	free(t->orig);
	free(t->arg);
	free(t->orcpt);
	free(t->remote);
	free(t->text);
}

void spool_drop_rcpt(struct spool_msg *m, const char *orig)
{
	unsigned w = 0;
	for (unsigned i = 0; i < m->nt; i++) {
		if (strcmp(m->t[i].orig, orig))
			m->t[w++] = m->t[i];
		else
			target_free(&m->t[i]);
	}
	m->nt = w;
}

void spool_msg_free(struct spool_msg *m)
{
	for (unsigned i = 0; i < m->nt; i++)
		target_free(&m->t[i]);
	free(m->t);
	free(m->from);
	free(m->sid);
	free(m->client);
	free(m->quarantine);
	free(m->smtpd);
	free(m->envid);
	if (m->data_fd >= 0)
		close(m->data_fd); /* releases the lock */
	memset(m, 0, sizeof *m);
	m->data_fd = -1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What a dead process left: tmp.ID (a session before its commit), ID.env
 * without ID or tmp.ID (a removal cut short), ID.env.PID (an update cut
 * short). */
static void remove_leftover(int dirfd, const char *name)
{
	char id[32];
	const char *base = !strncmp(name, "tmp.", 4) ? name + 4 : name;
	fmt_snprintf(id, sizeof id, "%.*s", (int)strcspn(base, "."), base);
	struct stat st;
	if (!is_id(id) || fstatat(dirfd, name, &st, 0) < 0)
		return;
	if (!strncmp(name, "tmp.", 4)) {
		if (time(NULL) - st.st_mtime < TMP_AGE)
			return;
		int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlinkat(dirfd, name, 0);
		close(fd);
		return;
	}
	/* tmp.ID first, then ID: an LMTP session writes the envelope of
	 * a message before it renames tmp.ID to ID (handoff.c) */
	char tmp[40];
	fmt_snprintf(tmp, sizeof tmp, "tmp.%s", id);
	struct stat idst;
	if (fstatat(dirfd, tmp, &idst, 0) == 0)
		return;
	if (fstatat(dirfd, id, &idst, 0) < 0 && errno == ENOENT)
		unlinkat(dirfd, name, 0);
	else if (strcmp(name + 18, ".env") && time(NULL) - st.st_mtime > ORPHAN_AGE)
		unlinkat(dirfd, name, 0); /* ID.env.PID: an update that died */
}

static int list_failed;

int spool_list_failed(void)
{
	return list_failed;
}

char **spool_list(int dirfd, unsigned *n)
{
	*n = 0;
	list_failed = 1;
	int fd = dup(dirfd);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	list_failed = 0;
	rewinddir(d);
	char **ids = NULL;
	unsigned cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (!is_id(e->d_name)) {
			remove_leftover(dirfd, e->d_name);
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			ids = xrealloc(ids, cap * sizeof *ids);
		}
		ids[(*n)++] = xstrdup(e->d_name);
	}
	closedir(d);
	/* ids begin with the arrival time in hex: name order is age order */
	if (*n)
		qsort(ids, *n, sizeof *ids, by_name);
	return ids;
}

void spool_list_free(char **ids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}
