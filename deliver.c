/*
 * deliver.c - local delivery on the direct path (see deliver.h).
 *
 * A pipe mailer gets the message on its standard input, after a
 * Return-Path header (and Delivered-To when it delivers to one recipient),
 * with the sender and recipients in its environment (MAIL_FROM, RCPT_TO)
 * and, for a [pipe], expanded into its argv words. A |command runs through
 * /bin/sh -c with the addresses in the environment only. Maildir messages
 * are written to tmp/, fsync'd, and renamed into new/ together once every
 * one is written, so a transaction's Maildirs succeed or fail as one.
 */
#define _GNU_SOURCE /* pipe2 */
#include "deliver.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Plans                                                               */

static int has_value(char **v, unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static void push(char ***v, unsigned *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = xstrdup(s);
}

/* FNV-1a of a path, exact bytes: indexes a plan's Maildirs, and names a
 * spooled message's Maildir copy */
static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot of dir in p's Maildir hash: where it is, or the free one. */
static unsigned *maildir_slot(const struct plan *p, const char *dir)
{
	unsigned mask = p->nslots - 1;
	for (unsigned h = path_hash(dir) & mask;; h = (h + 1) & mask) {
		unsigned *slot = &p->maildir_slots[h];
		if (!*slot || !strcmp(p->maildirs[*slot - 1], dir))
			return slot;
	}
}

static void maildir_rehash(struct plan *p)
{
	free(p->maildir_slots);
	p->nslots = p->nslots ? p->nslots * 2 : 16;
	p->maildir_slots = xcalloc(p->nslots, sizeof *p->maildir_slots);
	for (unsigned i = 0; i < p->nmaildirs; i++)
		*maildir_slot(p, p->maildirs[i]) = i + 1;
}

/* A Maildir, once, and the recipient whose Delivered-To it gets. */
static void add_maildir(struct plan *p, const char *dir, const char *rcpt)
{
	if (2 * (p->nmaildirs + 1) > p->nslots)
		maildir_rehash(p);
	unsigned *slot = maildir_slot(p, dir);
	if (*slot)
		return;
	if (p->nmaildirs == p->maildirs_cap) {
		p->maildirs_cap = p->maildirs_cap ? 2 * p->maildirs_cap : 4;
		p->maildirs = xrealloc(p->maildirs,
				       p->maildirs_cap * sizeof *p->maildirs);
		p->maildir_rcpts = xrealloc(p->maildir_rcpts,
					    p->maildirs_cap *
						    sizeof *p->maildir_rcpts);
	}
	p->maildirs[p->nmaildirs] = xstrdup(dir);
	p->maildir_rcpts[p->nmaildirs] = xstrdup(rcpt);
	*slot = ++p->nmaildirs;
}

/* Whether a target of r before the i-th already gave the pipe addr. */
static int pipe_value_before(const struct route_result *r, uint32_t i,
			     const char *addr)
{
	for (uint32_t k = 0; k < i; k++)
		if ((r->t[k].kind == T_PIPE || r->t[k].kind == T_USER) &&
		    !strcmp(r->t[k].addr, addr))
			return 1;
	return 0;
}

/*
 * Whether the targets of r fit the runs of p: PLAN_OK or why not. With
 * apply, p takes them; it is only called so after the same targets were
 * found to fit, so a recipient never leaves p half-changed, and nothing
 * is copied.
 */
static enum plan_verdict fit(struct plan *p, const struct route_result *r,
			     const char *rcpt, int apply)
{
	enum run_kind kind = p->kind;
	const struct cf_section *pipe = p->pipe;
	const char *cmd = p->cmd, *cmd_value = p->nvalues ? p->values[0] : NULL;
	unsigned nvalues = p->nvalues;
	for (uint32_t i = 0; i < r->nt; i++) {
		const struct route_target *t = &r->t[i];
		enum run_kind want = RUN_NONE;
		switch (t->kind) {
		case T_DISCARD:
			if (apply)
				p->discards++;
			continue;
		case T_MAILDIR:
			want = RUN_MAILDIRS;
			break;
		case T_PIPE:
		case T_USER:
			want = RUN_PIPE;
			break;
		case T_CMD:
			want = RUN_CMD;
			break;
		case T_RELAY:
		case T_HOST:
		case T_MX:
			return PLAN_SPOOL;
		}
		if (kind != RUN_NONE && kind != want)
			return PLAN_LATER;
		if (want == RUN_PIPE) {
			if (kind == RUN_PIPE && pipe != t->sec)
				return PLAN_LATER;
			pipe = t->sec;
			if (!has_value(p->values, p->nvalues, t->addr) &&
			    !pipe_value_before(r, i, t->addr)) {
				if (nvalues >= pipe->v[PIPE_MAX_RCPT_TO].n)
					return PLAN_LATER;
				nvalues++;
				if (apply)
					push(&p->values, &p->nvalues, t->addr);
			}
		} else if (want == RUN_CMD) {
			if (kind == RUN_CMD && (strcmp(cmd, t->arg) ||
						strcmp(cmd_value, t->addr)))
				return PLAN_LATER;
			cmd = t->arg;
			cmd_value = t->addr;
			if (apply && kind != RUN_CMD) {
				p->cmd = xstrdup(t->arg);
				push(&p->values, &p->nvalues, t->addr);
			}
		} else if (apply) {
			add_maildir(p, t->arg, rcpt);
		}
		kind = want;
		if (apply) {
			p->kind = kind;
			p->pipe = pipe;
		}
	}
	return PLAN_OK;
}

enum plan_verdict plan_add(struct plan *p, const struct route_result *r,
			   const char *rcpt)
{
	enum plan_verdict v = fit(p, r, rcpt, 0);
	if (v != PLAN_OK)
		return v;
	fit(p, r, rcpt, 1);
	if (!p->first_rcpt)
		p->first_rcpt = xstrdup(rcpt);
	else if (strcmp(p->first_rcpt, rcpt))
		p->several_rcpts = 1;
	return PLAN_OK;
}

/* The recipient of a run that has exactly one, for its Delivered-To. */
static const char *only_rcpt(const struct plan *p)
{
	return p->several_rcpts ? NULL : p->first_rcpt;
}

void plan_free(struct plan *p)
{
	for (unsigned i = 0; i < p->nvalues; i++)
		free(p->values[i]);
	for (unsigned i = 0; i < p->nmaildirs; i++) {
		free(p->maildirs[i]);
		free(p->maildir_rcpts[i]);
	}
	free(p->values);
	free(p->maildirs);
	free(p->maildir_rcpts);
	free(p->maildir_slots);
	free(p->first_rcpt);
	free(p->cmd);
	memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ */
/* The message                                                         */

ssize_t msg_read(const struct msg *m, off_t off, void *p, size_t n)
{
	if (off >= m->size)
		return 0;
	if ((off_t)n > m->size - off)
		n = (size_t)(m->size - off);
	for (;;) {
		ssize_t r = pread(m->fd, p, n, m->off + off);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Copies the message to fd after the header prefix. */
static int copy_message(const struct msg *m, const char *prefix, int fd)
{
	char buf[65536];
	if (write_all(fd, prefix, strlen(prefix)) < 0)
		return -1;
	off_t off = 0;
	while (off < m->size) {
		ssize_t n = msg_read(m, off, buf, sizeof buf);
		if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

static void header_prefix(const struct msg *m, const char *delivered_to,
			  struct buf *b)
{
	const char *eol = m->binary ? "\r\n" : "\n";
	buf_printf(b, "Return-Path: <%s>%s", m->from, eol);
	if (delivered_to)
		buf_printf(b, "Delivered-To: %s%s", delivered_to, eol);
}

/* ------------------------------------------------------------------ */
/* Pipe mailers                                                        */

static void expand_word(const char *w, const char *from, const char *rcpt,
			struct buf *out)
{
	out->len = 0;
	buf_adds(out, "");
	while (*w) {
		if (!strncmp(w, "${MAIL_FROM}", 12)) {
			buf_adds(out, from);
			w += 12;
		} else if (!strncmp(w, "${RCPT_TO}", 10) && rcpt) {
			buf_adds(out, rcpt);
			w += 10;
		} else {
			buf_addc(out, *w++);
		}
	}
}

/* The mailer's standard input: an unlinked file holding the header
 * prefix and the whole message, so that the mailer never reads a message
 * cut short, whatever happens to the process that started it (a pipe
 * would show it EOF, which looks like the end of the message). */
static int mailer_input(const struct msg *m, const char *prefix)
{
	const char *dir = getenv("TMPDIR");
	int fd = open(dir && dir[0] == '/' ? dir : "/tmp",
		      O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int bad = write_all(fd, prefix, strlen(prefix)) < 0;
	for (off_t off = m->off, end = m->off + m->size; !bad && off < end;) {
		ssize_t n = copy_file_range(m->fd, &off, fd, NULL,
					    (size_t)(end - off), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* no copy_file_range here: read and write */
			off_t done = off - m->off;
			struct msg rest = *m;
			rest.off = off;
			rest.size = m->size - done;
			bad = n < 0 && errno != EXDEV && errno != ENOSYS &&
					      errno != EINVAL
				      ? 1
				      : copy_message(&rest, "", fd) < 0;
			break;
		}
	}
	if (bad || lseek(fd, 0, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Runs argv with the message on stdin; fills out. */
static void run_mailer(char **argv, char **envp, const struct msg *m,
		       const char *prefix, int timeout_s, struct reply *out)
{
	int in = mailer_input(m, prefix), res[2];
	if (in < 0) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "cannot prepare the message for the mailer: %s",
			  strerror(errno));
		return;
	}
	if (pipe2(res, O_CLOEXEC) < 0) {
		close(in);
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "cannot create a pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "cannot fork: %s", strerror(errno));
		close(in);
		close(res[0]);
		close(res[1]);
		return;
	}
	if (pid == 0) {
		setsid();
		signal(SIGPIPE, SIG_DFL);
		dup2(in, 0);
		dup2(res[1], 1);
		dup2(res[1], 2);
		execve(argv[0], argv, envp);
		_exit(EX_TEMPFAIL);
	}
	close(in);
	close(res[1]);

	char first[1024];
	size_t flen = 0;
	int timed_out = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed = (long)(now.tv_sec - t0.tv_sec) * 1000 +
			       (now.tv_nsec - t0.tv_nsec) / 1000000;
		long left = (long)timeout_s * 1000 - elapsed;
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		struct pollfd pf = {res[0], POLLIN, 0};
		int r = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		/* the first line of the output may carry a D.S.N; the rest is
		 * read and dropped so the mailer never blocks on it */
		char tmp[4096];
		ssize_t n = read(res[0], tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (flen < sizeof first - 1) {
			size_t take = (size_t)n;
			if (take > sizeof first - 1 - flen)
				take = sizeof first - 1 - flen;
			memcpy(first + flen, tmp, take);
			flen += take;
		}
	}
	close(res[0]);
	int status = 0;
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "mailer timed out after %ds", timeout_s);
		return;
	}
	/* the output closed: wait for the exit within the deadline */
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "lost the mailer's exit status: %s",
				  strerror(errno));
			return;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > timeout_s) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "mailer timed out after %ds", timeout_s);
			return;
		}
		usleep(1000);
	}
	first[flen] = 0;
	char *nl = strchr(first, '\n');
	if (nl)
		*nl = 0;
	exit_status_reply(status, first, out);
}

static char **mailer_env(const char *from, char **values, unsigned n)
{
	struct buf rc = {0};
	for (unsigned i = 0; i < n; i++)
		buf_printf(&rc, "%s%s", i ? " " : "", values[i]);
	char **env = xcalloc(8, sizeof *env);
	struct buf b = {0};
	buf_printf(&b, "MAIL_FROM=%s", from);
	env[0] = b.s;
	memset(&b, 0, sizeof b);
	buf_printf(&b, "RCPT_TO=%s", rc.s ? rc.s : "");
	env[1] = b.s;
	env[2] = xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");
	env[3] = xstrdup("SHELL=/bin/sh");
	env[4] = xstrdup("HOME=/");
	buf_free(&rc);
	return env;
}

static void free_vec(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static void deliver_pipe(const struct plan *p, const struct msg *m,
			 struct reply *out)
{
	const struct cf_list *exec = &p->pipe->v[PIPE_EXEC].list;
	char **argv = NULL;
	size_t argc = 0;
	struct buf w = {0};
	for (uint32_t i = 0; i < exec->n; i++) {
		const char *word = exec->v[i];
		unsigned reps = strstr(word, "${RCPT_TO}") ? p->nvalues : 1;
		for (unsigned k = 0; k < reps; k++) {
			expand_word(word, m->from,
				    strstr(word, "${RCPT_TO}") ? p->values[k] : NULL,
				    &w);
			argv = xrealloc(argv, (argc + 2) * sizeof *argv);
			argv[argc++] = xstrdup(w.s);
		}
	}
	argv[argc] = NULL;
	buf_free(&w);
	char **env = mailer_env(m->from, p->values, p->nvalues);
	struct buf prefix = {0};
	header_prefix(m, only_rcpt(p), &prefix);
	run_mailer(argv, env, m, prefix.s, (int)p->pipe->v[PIPE_TIMEOUT].n, out);
	buf_free(&prefix);
	free_vec(argv);
	free_vec(env);
}

static void deliver_cmd(const struct plan *p, const struct msg *m,
			int timeout_s, struct reply *out)
{
	char *argv[] = {"/bin/sh", "-c", p->cmd, NULL};
	char **env = mailer_env(m->from, p->values, p->nvalues);
	struct buf prefix = {0};
	header_prefix(m, only_rcpt(p), &prefix);
	run_mailer(argv, env, m, prefix.s, timeout_s, out);
	buf_free(&prefix);
	free_vec(env);
}

/* ------------------------------------------------------------------ */
/* Maildirs                                                            */

static int ensure_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static void deliver_maildirs(const struct plan *p, const struct msg *m,
			     struct reply *out)
{
	unsigned n = p->nmaildirs;
	char **tmp = xcalloc(n, sizeof *tmp);
	char **dst = xcalloc(n, sizeof *dst);
	unsigned done = 0, renamed = 0;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned rnd = 0;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (unsigned)tv.tv_usec;
	for (; done < n; done++) {
		const char *dir = p->maildirs[done];
		struct buf b = {0};
		buf_printf(&b, "%stmp", dir);
		char base[512];
		if (p->spool_id)
			snprintf(base, sizeof base, "%s.%08x.%s", p->spool_id,
				 path_hash(dir), m->hostname);
		else
			snprintf(base, sizeof base, "%lld.M%ldP%ldR%08xQ%u.%s",
				 (long long)tv.tv_sec, (long)tv.tv_usec,
				 (long)getpid(), rnd, done, m->hostname);
		struct buf nw = {0};
		buf_printf(&nw, "%snew", dir);
		struct buf cur = {0};
		buf_printf(&cur, "%scur", dir);
		int ok = ensure_dir(dir) == 0 && ensure_dir(b.s) == 0 &&
			 ensure_dir(nw.s) == 0 && ensure_dir(cur.s) == 0;
		buf_free(&cur);
		/* from the spool the tmp name is fixed too: the message's lock
		 * keeps it ours, and a run that was killed leaves a file that
		 * the next run overwrites and moves, instead of one forever */
		buf_printf(&b, "/%s", base);
		buf_printf(&nw, "/%s", base);
		tmp[done] = b.s;
		dst[done] = nw.s;
		int fd = ok ? open(b.s, O_WRONLY | O_CREAT | O_CLOEXEC |
					       (p->spool_id ? O_TRUNC : O_EXCL),
				   0600)
			    : -1;
		if (fd < 0) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "cannot write Maildir %s: %s", dir,
				  strerror(errno));
			free(tmp[done]);
			tmp[done] = NULL;
			break;
		}
		struct buf prefix = {0};
		header_prefix(m, p->maildir_rcpts[done], &prefix);
		int err = copy_message(m, prefix.s, fd) < 0 || fsync(fd) < 0;
		int saved = errno;
		buf_free(&prefix);
		if (close(fd) < 0 || err) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "cannot write Maildir %s: %s", dir,
				  strerror(err ? saved : errno));
			done++;
			goto undo;
		}
	}
	if (done < n)
		goto undo;
	for (; renamed < n; renamed++) {
		if (!p->spool_id) {
			if (rename(tmp[renamed], dst[renamed]) == 0)
				continue;
		} else {
			int linked = link(tmp[renamed], dst[renamed]);
			if (linked == 0 || errno == EEXIST) {
				/* EEXIST: an earlier run of this spooled
				 * message delivered it; that copy stays */
				if (linked < 0) {
					free(dst[renamed]);
					dst[renamed] = NULL;
				}
				unlink(tmp[renamed]);
				continue;
			}
		}
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "cannot deliver into %s: %s", p->maildirs[renamed],
			  strerror(errno));
		goto undo;
	}
	for (unsigned i = 0; i < n; i++) {
		struct buf d = {0};
		buf_printf(&d, "%snew", p->maildirs[i]);
		if (fsync_dir(d.s) < 0) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "cannot sync %s: %s", d.s, strerror(errno));
			buf_free(&d);
			goto undo;
		}
		buf_free(&d);
	}
	reply_set(out, 250, ESC_OTHER, "delivered to %u Maildir%s", n,
		  n == 1 ? "" : "s");
	goto out;
undo:
	/* none or all: take back what was already written or moved */
	for (unsigned i = 0; i < done && i < n; i++) {
		if (i < renamed) {
			if (dst[i])
				unlink(dst[i]);
		} else if (tmp[i]) {
			unlink(tmp[i]);
		}
	}
out:
	for (unsigned i = 0; i < n; i++) {
		free(tmp[i]);
		free(dst[i]);
	}
	free(tmp);
	free(dst);
}

void plan_deliver(const struct plan *p, const struct msg *m, int timeout_s,
		  struct reply *out)
{
	switch (p->kind) {
	case RUN_NONE:
		reply_set(out, 250, ESC_OTHER, "discarded");
		break;
	case RUN_MAILDIRS:
		deliver_maildirs(p, m, out);
		break;
	case RUN_PIPE:
		deliver_pipe(p, m, out);
		break;
	case RUN_CMD:
		deliver_cmd(p, m, timeout_s, out);
		break;
	}
}
