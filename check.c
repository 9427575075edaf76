/*
 * check.c - postmaster --check: what only this host can tell.
 *
 * Owns: the warnings about the system a configuration names (users,
 * groups, paths, executables, the journal, a writable spool, listen
 * hosts in /etc/hosts), asking GnuTLS about tls-priority, compiling every
 * route file into its index (rtindex.h), and running the route rules
 * (route_check.h: the open-relay probe, shadowed lines, targets this
 * host lacks) in the order --check has always reported them.
 *
 * Never: runs for a session or a flush, touches the network, or writes
 * anything but the compiled route indexes.
 */
#include "check.h"
#include "fmt.h"
#include "hosts.h"
#include "priv.h"
#include "route.h"
#include "route_check.h"
#include "rtindex.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Root's user or group, or no user-id at all when --check runs as root
 * (the units start sessions as root), makes every session answer 421
 * (priv.c), as
 * Postfix refuses a mail_owner with a privileged user or group id. */
static void check_ids(struct cf *cf, const struct cf_section *core)
{
	uid_t uid;
	gid_t gid;
	char why[256];
	int r = cf_user_ids(cf, &uid, &gid, why, sizeof why);
	if (r == 1 && geteuid() == 0 && !cf->builtin_default &&
	    !(core->bad & (1u << CORE_USER_ID))) {
		/* a file without [core] has no header to point at */
		struct cf_pos pos = {cf->path, 0, 0};
		cf_error(cf, core->pos.line ? &core->pos : &pos,
			 "expected core.user-id: sessions started as root "
			 "refuse to read client input as root without it");
		return;
	}
	if (r != 0 || (uid != 0 && gid != 0))
		return;
	const struct cf_assign *a = core->set[uid == 0 || !core->set[CORE_GROUP_ID]
						      ? CORE_USER_ID
						      : CORE_GROUP_ID];
	struct cf_pos pos = a->pos;
	pos.col = cf->words[a->w0].col;
	if (uid == 0)
		cf_error(cf, &pos, "expected a user other than root: sessions "
				   "refuse to read client input as root");
	else
		cf_error(cf, &pos, "expected a group other than root's (0): "
				   "sessions refuse to read client input with "
				   "it");
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
	    dir_writable_by(&st, uid, gid))
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

/* The assignment of a repeatable key whose value is s, for positions. */
static const struct cf_assign *assign_of(const struct cf *cf,
					 const struct cf_section *sec, int key,
					 const char *s)
{
	for (uint32_t i = 0; i < cf->nmerged; i++) {
		const struct cf_assign *a = cf->merged[i];
		if (&cf->secs[a->sec] == sec && a->key == key &&
		    !strcmp(cf->words[a->w0].s, s))
			return a;
	}
	return sec->set[key];
}

/* --check loads each certificate and key pair as GnuTLS will: a key that
 * does not parse or does not match its certificate would make STARTTLS
 * answer 454 (a pair it cannot read is left to the existence check). */
static void check_tls_pairs(struct cf *cf, const struct cf_section *sec)
{
	const struct cf_list *c = &sec->v[SMTPD_TLS_CERTIFICATE].list;
	const struct cf_list *k = &sec->v[SMTPD_TLS_KEY].list;
	for (uint32_t i = 0; i < c->n && i < k->n; i++) {
		struct buf cert = {0}, key = {0};
		char why[300];
		if (buf_read_file(&cert, AT_FDCWD, c->v[i], 1 << 20) == 0 &&
		    buf_read_file(&key, AT_FDCWD, k->v[i], 1 << 20) == 0) {
			struct tls_keypair p = {cert.s, key.s, cert.len,
						key.len};
			int r = tls_keypair_check(&p, why, sizeof why);
			const struct cf_assign *a =
				assign_of(cf, sec, SMTPD_TLS_KEY, k->v[i]);
			struct cf_pos pos = a ? a->pos : sec->pos;
			if (a)
				pos.col = cf->words[a->w0].col;
			if (r == -1)
				cf_error(cf, &pos, "expected a key that GnuTLS "
						   "takes with %s: %s",
					 c->v[i], why);
			else if (r < 0)
				cf_warn(cf, &pos, "cannot check the TLS key: %s",
					why);
		}
		if (key.s)
			memset(key.s, 0, key.len);
		buf_free(&cert);
		buf_free(&key);
	}
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

/* One key's value: the user, group, path or journal it names. */
static void check_key(struct cf *cf, struct cf_section *sec, int key)
{
	unsigned tr = cf_key_traits(sec->kind, key);
	const struct cf_assign *a = sec->set[key];
	if ((tr & CF_KEY_PATH) && (tr & CF_KEY_REPEAT))
		check_paths_all(cf, sec, key);
	if (!a || (tr & CF_KEY_REPEAT) ||
	    !(tr & (CF_KEY_USER | CF_KEY_GROUP | CF_KEY_PATH | CF_KEY_LOGGER)))
		return;
	const struct cf_word *w = &cf->words[a->w0];
	struct cf_pos pos = a->pos;
	pos.col = w->col;
	uint64_t id;
	const char *end;
	int numeric = cf_parse_uint(w->s, &id, &end) == 0 && !*end;
	if ((tr & CF_KEY_USER) && !numeric && !getpwnam(w->s))
		cf_warn(cf, &pos, "no user '%s' on this host", w->s);
	if ((tr & CF_KEY_GROUP) && !numeric && !getgrnam(w->s))
		cf_warn(cf, &pos, "no group '%s' on this host", w->s);
	if ((tr & CF_KEY_PATH) &&
	    !(sec->kind == CF_CORE && key == CORE_PID_FILE) &&
	    access(w->s, F_OK) < 0)
		cf_warn(cf, &pos, "\"%s\" does not exist on this host", w->s);
	if ((tr & CF_KEY_LOGGER) && !strcmp(w->s, "journal") &&
	    access(JOURNAL_SOCKET, F_OK) < 0)
		cf_warn(cf, &pos, "no systemd journal on this host (%s): its "
				  "log lines would be lost",
			JOURNAL_SOCKET);
}

/* Why this process cannot run the program at path: into why, 0 when it
 * can. The kernel judges (mode bits, ACLs, a noexec mount, a security
 * module), one directory at a time so that the reason names the one. */
static int why_not_runnable(const char *path, char *why, size_t n)
{
	char dir[4096];
	struct stat st;
	if (fmt_snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
		return 0;
	for (char *p = dir; (p = strchr(p + 1, '/'));) {
		*p = 0;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    access(dir, X_OK) < 0) {
			fmt_snprintf(why, n, "its directory %s (owner %lu:%lu, "
					 "mode %04o) is not searchable",
				 dir, (unsigned long)st.st_uid,
				 (unsigned long)st.st_gid,
				 (unsigned)(st.st_mode & 07777));
			return 1;
		}
		*p = '/';
	}
	if (access(path, X_OK) == 0)
		return 0;
	if (errno == EACCES && stat(path, &st) == 0)
		fmt_snprintf(why, n, "has owner %lu:%lu and mode %04o",
			     (unsigned long)st.st_uid,
			     (unsigned long)st.st_gid,
			     (unsigned)(st.st_mode & 07777));
	else
		fmt_snprintf(why, n, "is not executable (%s)", strerror(errno));
	return 1;
}

typedef int why_not_fn(const char *path, char *why, size_t n);

/* Why the sessions cannot use the file at path as probe finds, asked of
 * the kernel by a child that drops to their user as they do
 * (priv_drop()): into why, 0 when they can or it cannot tell. */
static int sessions_cannot(const struct cf *cf, why_not_fn *probe,
			   const char *path, char *why, size_t n)
{
	char *shared = mmap(NULL, n, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return 0;
	shared[0] = 0;
	pid_t pid = fork();
	if (pid == 0) {
		char ignored[256];
		/* a user-id the sessions refuse is check_ids()'s to report */
		_exit(priv_drop(cf, ignored, sizeof ignored) == 0 &&
		      probe(path, shared, n));
	}
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int cannot = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1;
	if (cannot)
		fmt_snprintf(why, n, "%s", shared);
	munmap(shared, n);
	return cannot;
}

/* Whether a probe from this process tells what the sessions' user may
 * do: as root it becomes user-id; else only as user-id itself, or with
 * no user-id to become (the sessions are whoever starts them). Another
 * user's --check (a user's newaliases or sendmail -bi) cannot tell. */
static int speaks_for_sessions(const struct cf *cf)
{
	uid_t uid;
	gid_t gid;
	char ids[256];
	if (geteuid() == 0)
		return 1;
	int r = cf_user_ids(cf, &uid, &gid, ids, sizeof ids);
	return r == 1 || (r == 0 && uid == geteuid());
}

/* Why the sessions' user cannot run the program st at path: into why, 0
 * when it can. As root, the sessions are user-id and group-id and no
 * other group (priv.c); as anyone else, that user. */
static int cannot_run(const struct cf *cf, const char *path,
		      const struct stat *st, char *who, size_t nwho,
		      char *why, size_t n)
{
	uid_t uid;
	gid_t gid;
	char ids[256];
	int root = geteuid() == 0;
	/* as root without a usable user-id sessions refuse to start, which
	 * check_ids() or check_key() report */
	int known = root && cf_user_ids(cf, &uid, &gid, ids, sizeof ids) == 0;
	if (known)
		fmt_snprintf(who, nwho, "user-id %s (%lu:%lu)",
			     cf->core->v[CORE_USER_ID].s, (unsigned long)uid,
			     (unsigned long)gid);
	else
		fmt_snprintf(who, nwho, "this user");
	if (!S_ISREG(st->st_mode)) {
		fmt_snprintf(why, n, "is %s", S_ISDIR(st->st_mode)
						      ? "a directory"
						      : "not a regular file");
		return 1;
	}
	if (root && !known)
		return 0;
	return sessions_cannot(cf, why_not_runnable, path, why, n);
}

/* A program that does not exist may exist where the file is used (a
 * warning); one that exists and the sessions cannot run fails every
 * delivery with 451 (an error). */
void check_program(struct cf *cf, const struct cf_pos *pos, const char *path,
		   const char *mailer)
{
	struct stat st;
	char who[300], why[4200];
	if (stat(path, &st) < 0)
		cf_warn(cf, pos, "\"%s\" is not an executable on this host",
			path);
	else if (cannot_run(cf, path, &st, who, sizeof who, why, sizeof why))
		cf_error(cf, pos, "expected a program that %s can run: \"%s\" "
				  "%s, so every delivery to %s would fail",
			 who, path, why, mailer);
}

static void check_pipe(struct cf *cf, const struct cf_section *sec)
{
	const struct cf_assign *a = sec->set[PIPE_EXEC];
	const struct cf_word *w = &cf->words[a->w0];
	struct cf_pos pos = a->pos;
	pos.col = w->col;
	char mailer[300];
	fmt_snprintf(mailer, sizeof mailer, "[pipe \"%s\"]", sec->name);
	check_program(cf, &pos, w->s, mailer);
}

/* A listen-port host that is no address and not in /etc/hosts: the
 * session matches listeners without DNS, so it serves only pipes. */
static void check_listen_host(struct cf *cf, const struct cf_section *sec)
{
	const char *h = sec->listen.host;
	unsigned char bin[16];
	if (sec->listen.path[0] || !h[0] || !strcmp(h, "localhost") ||
	    !strcmp(h, "ipv6-localhost") ||
	    !strcmp(h, "ip6-localhost") || inet_pton(AF_INET, h, bin) == 1 ||
	    inet_pton(AF_INET6, h, bin) == 1 || hosts_lookup(h, NULL, 0))
		return;
	const struct cf_assign *a = sec->set[SMTPD_LISTEN_PORT];
	struct cf_pos pos = a ? a->pos : sec->pos;
	if (a)
		pos.col = cf->words[a->w0].col;
	cf_warn(cf, &pos, "\"%s\" is not in /etc/hosts: [smtpd \"%s\"] serves "
			  "no network connection, only local pipes",
		h, sec->name);
}

/* AUTH is offered over TLS, or in clear to loopback and local clients
 * only (session_auth.c): with tls = no, a listener on a network address
 * offers it to none of its network clients, and with auth = required
 * refuses all their mail (538). */
static void check_auth_without_tls(struct cf *cf, const struct cf_section *sec)
{
	uint64_t auth = sec->v[SMTPD_AUTH].n;
	if (auth == AUTH_NO || sec->v[SMTPD_TLS].n != 0 || sec->listen.path[0] ||
	    (sec->listen.host[0] && cf_host_is_loopback(sec->listen.host)))
		return;
	const struct cf_assign *a = sec->set[SMTPD_AUTH];
	struct cf_pos pos = a ? a->pos : sec->pos;
	if (a)
		pos.col = cf->words[a->w0].col;
	if (auth == AUTH_REQUIRED)
		cf_error(cf, &pos, "expected tls = starttls or implicit with "
				   "auth = required on a network listener: AUTH "
				   "is never offered in clear text over a "
				   "network, so [smtpd \"%s\"] would refuse all "
				   "its network clients' mail",
			 sec->name);
	else
		cf_warn(cf, &pos, "auth = optional without tls on a network "
				  "listener: [smtpd \"%s\"] offers AUTH to "
				  "loopback and local clients only",
			sec->name);
}

static int why_not_readable(const char *path, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	fmt_snprintf(why, n, "%s", strerror(errno));
	return 1;
}

/* Whether every user of this host may read the file at path. */
static int others_may_read(const char *path, struct stat *st)
{
	return stat(path, st) == 0 && (st->st_mode & S_IROTH);
}

/* The smarthost's password: auth-password in a file every user may read
 * (as postmaster.cf is, for sendmail) is every user's; auth-password-file
 * must be readable by the user that delivers (user-id when started as
 * root, priv.c) and by no one else. */
static void check_relay_password(struct cf *cf, const struct cf_section *sec)
{
	const struct cf_assign *a = sec->set[RELAY_AUTH_PASSWORD];
	struct stat st;
	if (a && others_may_read(a->pos.file, &st))
		cf_warn(cf, &a->pos, "auth-password in \"%s\" (mode %04o), "
				     "which every user may read: put the "
				     "password in an auth-password-file that "
				     "only root and group-id may read (0640)",
			a->pos.file, (unsigned)(st.st_mode & 07777));
	a = sec->set[RELAY_AUTH_PASSWORD_FILE];
	if (!a || (sec->bad & (1u << RELAY_AUTH_PASSWORD_FILE)))
		return;
	const char *path = cf->words[a->w0].s;
	struct cf_pos pos = a->pos;
	pos.col = cf->words[a->w0].col;
	char why[300];
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		cf_error(cf, &pos, "expected a file whose first line is the "
				   "password, found %s \"%s\": mail for "
				   "[relay \"%s\"] would be deferred",
			 S_ISDIR(st.st_mode) ? "the directory" :
					       "the special file",
			 path, sec->name);
	else if (others_may_read(path, &st))
		cf_warn(cf, &pos, "auth-password-file \"%s\" (mode %04o) may "
				  "be read by every user: make it 0640, owner "
				  "root, group group-id",
			path, (unsigned)(st.st_mode & 07777));
	else if (access(path, F_OK) == 0 && speaks_for_sessions(cf) &&
		 sessions_cannot(cf, why_not_readable, path, why, sizeof why))
		cf_warn(cf, &pos, "auth-password-file \"%s\" cannot be read "
				  "by the user that delivers (%s): mail for "
				  "[relay \"%s\"] will be deferred",
			path, why, sec->name);
}

static void check_system(struct cf *cf, struct cf_section *sec)
{
	for (int key = 0; key < cf_nkeys(sec->kind); key++)
		check_key(cf, sec, key);
	if (sec->kind == CF_CORE) {
		check_ids(cf, sec);
		check_spool(cf, sec);
	}
	if (sec->kind == CF_PIPE && sec->set[PIPE_EXEC])
		check_pipe(cf, sec);
	if (sec->kind == CF_RELAY)
		check_relay_password(cf, sec);
	if (sec->kind == CF_SMTPD) {
		check_listen_host(cf, sec);
		check_auth_without_tls(cf, sec);
		if (sec->v[SMTPD_TLS].n != 0)
			check_tls_pairs(cf, sec);
	}
}

/* Compiles one route file read as text into its index; a failure is a
 * warning: sessions then read the text. */
static void compile_include(struct cf *cf, const struct cf_include *inc)
{
	char err[300];
	struct rt_line *v = xcalloc(inc->n + 1, sizeof *v);
	struct buf key = {0};
	for (uint32_t i = 0; i < inc->n; i++) {
		const struct route_entry *e = &inc->table->e[inc->first + i];
		key.len = 0;
		route_pattern_key(e->pkind, e->local, e->domain, &key);
		v[i].key = xstrdup(key.s);
		v[i].domain = e->domain;
		v[i].pattern = e->text;
		v[i].w = &cf->words[e->w0];
		v[i].nw = e->type == RE_LINE ? e->nw : 0;
		v[i].pos = e->pos;
	}
	if (rtindex_write(inc->deps[0], v, inc->n,
			  (const char *const *)inc->deps, inc->depst,
			  inc->ndeps, err, sizeof err) < 0)
		cf_warn(cf, &inc->at, "%s", err);
	for (uint32_t i = 0; i < inc->n; i++)
		free(v[i].key);
	free(v);
	buf_free(&key);
}

int check_config(struct cf *cf)
{
	for (uint32_t i = 0; i < cf->nsecs; i++) {
		struct cf_section *sec = &cf->secs[i];
		if (sec->kind == CF_SMTPD && sec->set[SMTPD_TLS_PRIORITY] &&
		    !(sec->bad & (1u << SMTPD_TLS_PRIORITY)))
			check_tls_priority(cf, sec->set[SMTPD_TLS_PRIORITY]);
	}
	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind != CF_ROUTE)
			check_system(cf, &cf->secs[i]);
	for (uint32_t i = 0; i < cf->nsecs; i++)
		if (cf->secs[i].kind == CF_ROUTE)
			route_check_shadowed(cf, cf->secs[i].table);
	route_check_system(cf, check_program);
	if (!cf->nerrors)
		route_check_listeners(cf);
	/* a file is compiled only from a configuration without errors,
	 * the open-relay rule's included */
	for (const struct cf_include *inc = cf->includes; inc; inc = inc->next)
		if (inc->clean && !cf->nerrors)
			compile_include(cf, inc);
	return cf->nerrors;
}
