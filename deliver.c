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
#include "fmt.h"
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
#include <sys/syscall.h>
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

/* Whether target t would put a blank or a tab into a mailer's RCPT_TO. */
static int blank_for_mailer(const struct route_target *t)
{
	return (t->kind == T_PIPE || t->kind == T_USER || t->kind == T_CMD) &&
	       t->addr[strcspn(t->addr, " \t")];
}

enum plan_verdict plan_add(struct plan *p, const struct route_result *r,
			   const char *rcpt)
{
	for (uint32_t i = 0; i < r->nt; i++)
		if (blank_for_mailer(&r->t[i]))
			return PLAN_REFUSED;
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

void plan_blank_reply(struct reply *r, const char *rcpt)
{
	reply_code(r, 553, ESC_BAD_DEST_MAILBOX_SYNTAX);
	fmt_snprintf(r->text, sizeof r->text,
		     "<%s>: an address with a blank cannot go to a mailer, "
		     "whose RCPT_TO separates addresses by blanks",
		     rcpt);
}

void plan_refuse_blanks(struct route_result *r, const char *rcpt)
{
	for (uint32_t i = 0; r->code == 250 && i < r->nt; i++) {
		if (!blank_for_mailer(&r->t[i]))
			continue;
		struct reply why;
		plan_blank_reply(&why, rcpt);
		r->code = why.code;
		fmt_snprintf(r->dsn, sizeof r->dsn, "%s", why.dsn);
		fmt_snprintf(r->text, sizeof r->text, "%s", why.text);
	}
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
	int fd = tmpfile_open();
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

/* Starts argv in a session of its own with in as its stdin and its
 * output into *res_fd. Closes in. The pid, or -1 with out set. */
static pid_t start_mailer(char **argv, char **envp, int in, int *res_fd,
			  struct reply *out)
{
	int res[2];
	if (pipe2(res, O_CLOEXEC) < 0) {
		close(in);
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "cannot create a pipe: %s",
			  strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "cannot fork: %s", strerror(errno));
		close(in);
		close(res[0]);
		close(res[1]);
		return -1;
	}
	if (pid == 0) {
		setsid();
		signal(SIGPIPE, SIG_DFL);
		/* a mailer without the message on its stdin would deliver
		 * whatever it reads there (nothing, or the client's data) */
		if (dup2(in, 0) < 0 || dup2(res[1], 1) < 0 ||
		    dup2(res[1], 2) < 0)
			_exit(EX_TEMPFAIL);
		/* nothing else of the session's: not the connection (fd 3
		 * under socket activation), not the spool */
		close_range(3, ~0U, 0);
		execve(argv[0], argv, envp);
		/* said as the mailer's own first line: the reply tells why */
		char why[512];
		int e = errno;
		fmt_snprintf(why, sizeof why, "4.3.0 cannot run %s: %s\n",
			     argv[0], strerror(e));
		ssize_t said = write(1, why, strlen(why));
		(void)said;
		_exit(EX_TEMPFAIL);
	}
	close(in);
	close(res[1]);
	*res_fd = res[0];
	return pid;
}

/* Milliseconds left of timeout_s seconds since t0; 0 or less: none. */
static long ms_left(const struct timespec *t0, int timeout_s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long elapsed = (long)(now.tv_sec - t0->tv_sec) * 1000 +
		       (now.tv_nsec - t0->tv_nsec) / 1000000;
	return (long)timeout_s * 1000 - elapsed;
}

/*
 * Reads the mailer's output until it closes, keeping its first line in
 * first (size n): it may carry a D.S.N; the rest is read and dropped so
 * the mailer never blocks on it. -1 when the deadline passed first. A
 * mailer that has exited while a child of its own keeps the output open
 * ends it too: what it wrote is read, and *status is its exit (*exited).
 */
static int read_mailer_output(int fd, pid_t pid, const struct timespec *t0,
			      int timeout_s, char *first, size_t n,
			      int *status, int *exited)
{
	size_t flen = 0;
	int timed_out = 0;
	*exited = 0;
	for (;;) {
		long left = ms_left(t0, timeout_s);
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		struct pollfd pf = {fd, POLLIN, 0};
		int r = poll(&pf, 1, *exited ? 0 : (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0 && *exited)
			break; /* all it wrote is read */
		if (r == 0 && waitpid(pid, status, WNOHANG) == pid)
			*exited = 1;
		if (r <= 0)
			continue;
		char tmp[4096];
		ssize_t got = read(fd, tmp, sizeof tmp);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		size_t take = (size_t)got;
		if (take > n - 1 - flen)
			take = n - 1 - flen;
		memcpy(first + flen, tmp, take);
		flen += take;
	}
	first[flen] = 0;
	char *nl = strchr(first, '\n');
	if (nl)
		*nl = 0;
	return timed_out ? -1 : 0;
}

/* Ends a mailer that overran its time, and its children. */
static void kill_mailer(pid_t pid, int timeout_s, struct reply *out)
{
	int status;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "mailer timed out after %ds", timeout_s);
}

/* Sleeps until the mailer exits or ms pass: its pidfd becomes readable
 * when it exits. Without pidfds (Linux before 5.3) it naps, briefly. */
static void await_exit(int pidfd, long ms)
{
	struct pollfd pf = {pidfd, POLLIN, 0};
	if (pidfd < 0)
		poll(NULL, 0, (int)(ms > 50 ? 50 : ms));
	else
		poll(&pf, 1, (int)(ms > 86400000L ? 86400000L : ms));
}

/* Waits for the mailer's exit within the deadline: 0 with *status, or
 * with out set -1 (lost its status) or 1 (killed at the deadline). */
static int wait_mailer(pid_t pid, const struct timespec *t0, int timeout_s,
		       int *status, struct reply *out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r = -1;
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid) {
			r = 0;
			break;
		}
		if (w < 0 && errno != EINTR) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "lost the mailer's exit status: %s",
				  strerror(errno));
			break;
		}
		long left = ms_left(t0, timeout_s);
		if (left <= 0) {
			kill_mailer(pid, timeout_s, out);
			r = 1;
			break;
		}
		await_exit(pidfd, left);
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

/* The status of a command that /bin/sh -c ran: the shell reports a
 * command killed by signal n as its own exit with 128 + n, which would
 * read as an unknown status (554, a bounce). A mailer killed (the OOM
 * killer, a reboot, an administrator's kill) has failed for now: the
 * status becomes the signal's, as if the command had been run alone. */
static int shell_status(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) <= 128 ||
	    WEXITSTATUS(status) > 128 + 64)
		return status;
	return WEXITSTATUS(status) - 128; /* a wait status: killed by n */
}

/* Runs argv with the message on stdin; fills out (by_shell: argv is
 * /bin/sh -c COMMAND). 1 when the mailer was killed at its timeout,
 * else 0. */
static int run_mailer(char **argv, char **envp, const struct msg *m,
		      const char *prefix, int timeout_s, int by_shell,
		      struct reply *out)
{
	int in = mailer_input(m, prefix), res;
	if (in < 0) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "cannot prepare the message for "
					     "the mailer: %s",
			  strerror(errno));
		return 0;
	}
	pid_t pid = start_mailer(argv, envp, in, &res, out);
	if (pid < 0)
		return 0;
	char first[1024];
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int status = 0, exited;
	int timed_out = read_mailer_output(res, pid, &t0, timeout_s, first,
					   sizeof first, &status, &exited) < 0;
	close(res);
	if (timed_out && !exited) {
		kill_mailer(pid, timeout_s, out);
		return 1;
	}
	/* the output closed: wait for the exit within the deadline */
	int waited = exited ? 0 : wait_mailer(pid, &t0, timeout_s, &status, out);
	if (waited)
		return waited > 0;
	exit_status_reply(by_shell ? shell_status(status) : status, first, out);
	return 0;
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
	env[2] = xstrdup("PATH=" DELIVER_PATH);
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

static int deliver_pipe(const struct plan *p, const struct msg *m,
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
	int late = run_mailer(argv, env, m, prefix.s,
			      (int)p->pipe->v[PIPE_TIMEOUT].n, 0, out);
	buf_free(&prefix);
	free_vec(argv);
	free_vec(env);
	return late;
}

static int deliver_cmd(const struct plan *p, const struct msg *m,
		       int timeout_s, struct reply *out)
{
	char *argv[] = {"/bin/sh", "-c", p->cmd, NULL};
	char **env = mailer_env(m->from, p->values, p->nvalues);
	struct buf prefix = {0};
	header_prefix(m, only_rcpt(p), &prefix);
	int late = run_mailer(argv, env, m, prefix.s, timeout_s, 1, out);
	buf_free(&prefix);
	free_vec(env);
	return late;
}

/* ------------------------------------------------------------------ */
/* Maildirs                                                            */

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

/* A directory made here is synced into its parent: new/'s sync makes a
 * copy's name durable, which is worth nothing if the Maildir itself is
 * gone after a crash. */
static int ensure_dir(const char *path)
{
	if (mkdir(path, 0700) < 0)
		return errno == EEXIST ? 0 : -1;
	struct buf parent = {0};
	buf_adds(&parent, path);
	while (parent.len > 1 && parent.s[parent.len - 1] == '/')
		parent.s[--parent.len] = 0;
	char *slash = strrchr(parent.s, '/');
	int r = 0;
	if (slash) {
		slash[slash == parent.s] = 0; /* "/x" has the parent "/" */
		r = fsync_dir(parent.s);
	}
	buf_free(&parent);
	return r;
}

/* Makes a Maildir's directories: on demand, after a file operation in it
 * failed with ENOENT, so a delivery into an existing Maildir pays no
 * mkdir (four syscalls a copy). */
static int maildir_dirs(const char *dir)
{
	struct buf b = {0};
	int ok = ensure_dir(dir) == 0;
	for (const char *const *sub = (const char *const[]){"tmp", "new",
							      "cur", NULL};
	     ok && *sub; sub++) {
		b.len = 0;
		buf_printf(&b, "%s%s", dir, *sub);
		ok = ensure_dir(b.s) == 0;
	}
	buf_free(&b);
	return ok ? 0 : -1;
}

/* One delivery into every Maildir of a plan: each copy's name in tmp/
 * and in new/, how many were written to tmp/ and how many moved. */
struct maildir_run {
	unsigned n, done, renamed;
	char **tmp, **dst;
	struct timeval tv;
	unsigned rnd;
};

/* Copy i's file name: Maildir's time.MusecPpidRrandQi.host; from the
 * spool a fixed one (the message's lock keeps it ours, and a run that was
 * killed leaves a file the next run replaces and moves, not one
 * forever). */
static void maildir_name(const struct plan *p, const struct msg *m,
			 const struct maildir_run *r, unsigned i, char *base,
			 size_t n)
{
	const char *dir = p->maildirs[i];
	if (p->spool_id)
		fmt_snprintf(base, n, "%s.%08x.%s", p->spool_id, path_hash(dir),
			 m->hostname);
	else
		fmt_snprintf(base, n, "%lld.M%ldP%ldR%08xQ%u.%s",
			 (long long)r->tv.tv_sec, (long)r->tv.tv_usec,
			 (long)getpid(), r->rnd, i, m->hostname);
}

/* Writes the next copy into its Maildir's tmp/, making the Maildir's
 * directories when they are missing. 0, or -1 with out set; r->done counts
 * the files in tmp/ to take back. */
static int maildir_write(const struct plan *p, const struct msg *m,
			 struct maildir_run *r, struct reply *out)
{
	unsigned i = r->done;
	const char *dir = p->maildirs[i];
	char base[512];
	maildir_name(p, m, r, i, base, sizeof base);
	struct buf b = {0}, nw = {0};
	buf_printf(&b, "%stmp/%s", dir, base);
	buf_printf(&nw, "%snew/%s", dir, base);
	r->tmp[i] = b.s;
	r->dst[i] = nw.s;
	/* a fresh file, never one found there: an earlier run's tmp file
	 * may also be its copy in new/ (killed between the link and the
	 * unlink), which truncating would spoil, or a link planted there */
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_EXCL;
	if (p->spool_id)
		unlink(b.s);
	int fd = open(b.s, flags, 0600);
	if (fd < 0 && errno == ENOENT && maildir_dirs(dir) == 0)
		fd = open(b.s, flags, 0600);
	if (fd < 0) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "cannot write Maildir %s: %s",
			  dir, strerror(errno));
		free(r->tmp[i]);
		r->tmp[i] = NULL;
		return -1;
	}
	r->done++;
	struct buf prefix = {0};
	header_prefix(m, p->maildir_rcpts[i], &prefix);
	int err = copy_message(m, prefix.s, fd) < 0 || fsync(fd) < 0;
	int saved = errno;
	buf_free(&prefix);
	if (close(fd) < 0 || err) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "cannot write Maildir %s: %s",
			  dir, strerror(err ? saved : errno));
		return -1;
	}
	return 0;
}

/* Moves every copy from tmp/ to new/. From the spool by a link, where
 * EEXIST means that an earlier run of this message delivered it and that
 * copy stays. 0, or -1 with out set. */
static int maildir_move(const struct plan *p, struct maildir_run *r,
			struct reply *out)
{
	for (; r->renamed < r->n; r->renamed++) {
		unsigned i = r->renamed;
		if (!p->spool_id) {
			if (rename(r->tmp[i], r->dst[i]) == 0 ||
			    (errno == ENOENT && maildir_dirs(p->maildirs[i]) == 0 &&
			     rename(r->tmp[i], r->dst[i]) == 0))
				continue;
		} else {
			int linked = link(r->tmp[i], r->dst[i]);
			if (linked < 0 && errno == ENOENT &&
			    maildir_dirs(p->maildirs[i]) == 0)
				linked = link(r->tmp[i], r->dst[i]);
			if (linked == 0 || errno == EEXIST) {
				if (linked < 0) {
					free(r->dst[i]);
					r->dst[i] = NULL;
				}
				unlink(r->tmp[i]);
				continue;
			}
		}
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS, "cannot deliver into %s: %s",
			  p->maildirs[i], strerror(errno));
		return -1;
	}
	return 0;
}

/* Makes every new/ durable. 0, or -1 with out set. */
static int maildir_sync(const struct plan *p, struct reply *out)
{
	for (unsigned i = 0; i < p->nmaildirs; i++) {
		struct buf d = {0};
		buf_printf(&d, "%snew", p->maildirs[i]);
		if (fsync_dir(d.s) < 0) {
			reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
				  "cannot sync %s: %s", d.s, strerror(errno));
			buf_free(&d);
			return -1;
		}
		buf_free(&d);
	}
	return 0;
}

/* None or all: takes back what was already written or moved. */
static void maildir_undo(const struct maildir_run *r)
{
	for (unsigned i = 0; i < r->done && i < r->n; i++) {
		if (i < r->renamed) {
			if (r->dst[i])
				unlink(r->dst[i]);
		} else if (r->tmp[i]) {
			unlink(r->tmp[i]);
		}
	}
}

static void deliver_maildirs(const struct plan *p, const struct msg *m,
			     struct reply *out)
{
	struct maildir_run r = {.n = p->nmaildirs};
	r.tmp = xcalloc(r.n, sizeof *r.tmp);
	r.dst = xcalloc(r.n, sizeof *r.dst);
	gettimeofday(&r.tv, NULL);
	if (getrandom(&r.rnd, sizeof r.rnd, 0) != sizeof r.rnd)
		r.rnd = (unsigned)r.tv.tv_usec;
	int ok = 1;
	while (ok && r.done < r.n)
		ok = maildir_write(p, m, &r, out) == 0;
	ok = ok && maildir_move(p, &r, out) == 0 && maildir_sync(p, out) == 0;
	if (ok)
		reply_set(out, 250, ESC_OTHER, "delivered to %u Maildir%s", r.n,
			  r.n == 1 ? "" : "s");
	else
		maildir_undo(&r);
	for (unsigned i = 0; i < r.n; i++) {
		free(r.tmp[i]);
		free(r.dst[i]);
	}
	free(r.tmp);
	free(r.dst);
}

int plan_deliver(const struct plan *p, const struct msg *m, int timeout_s,
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
		return deliver_pipe(p, m, out);
	case RUN_CMD:
		return deliver_cmd(p, m, timeout_s, out);
	}
	return 0;
}
