/*
 * session_start.c - what a session settles before its greeting (SPEC 4,
 * 8, 11): who the peer is, which [smtpd] serves the connection, the log,
 * the TLS and AUTH secrets read while still root, the drop of root, the
 * spool, and the limits of the section.
 *
 * Owns: the peer and local addresses (socket, tcpserver's variables, or
 * a local pipe; a unix socket's path), the choice of the [smtpd] section,
 * the session id.
 *
 * Never: reads a client byte or writes a reply (session.c greets or
 * refuses), or reads a secret after root has been dropped.
 */
#include "fmt.h"
#include "session_state.h"
#include "auth.h"
#include "hosts.h"
#include "log.h"
#include "net.h"
#include "priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * An AF_UNIX socket: the path it is bound to (an accepted connection's
 * local address is its listener's; a socket pair has none) and who the
 * client is. 0, or -1 when fd is no AF_UNIX socket.
 */
static int unix_socket(struct session *s, int fd)
{
	struct sockaddr_un un;
	socklen_t sl = sizeof un;
	memset(&un, 0, sizeof un);
	if (getsockname(fd, (struct sockaddr *)&un, &sl) < 0 ||
	    un.sun_family != AF_UNIX)
		return -1;
	size_t n = sl > offsetof(struct sockaddr_un, sun_path)
			   ? sl - offsetof(struct sockaddr_un, sun_path)
			   : 0;
	if (n > sizeof un.sun_path)
		n = sizeof un.sun_path;
	/* an abstract name ("\0name") becomes "@name": no listen-port
	 * names one, so no section serves it */
	int abstract = n > 1 && !un.sun_path[0];
	const char *name = un.sun_path + abstract;
	n = strnlen(name, n - (size_t)abstract);
	if (n)
		fmt_snprintf(s->unix_path, sizeof s->unix_path, "%s%.*s",
			 abstract ? "@" : "", (int)n, name);
	return 0;
}

/*
 * Peer and local addresses (SPEC 4), from the connection itself: the
 * socket when fd is one; else tcpserver's variables (a launcher that hands
 * over a pipe); else a local pipe. The variables never override a real
 * socket: whoever can set them cannot choose the trust they imply. A
 * local stream socket (the submit socket, --inject's socket pair) is
 * local, and its client is known by its credentials.
 */
/* An address as a launcher gives it: an IPv4 one written IPv4-mapped
 * (an IPv6 tcpserver's ::ffff:192.0.2.7) is written as IPv4, as
 * getpeername()'s is (net_ip_text) and as Postfix's smtpd does, so that
 * logs, the Received field, DNSBL and the policy service see the client
 * it is. */
static void put_ip(char *out, size_t n, const char *ip)
{
	if (!ascii_casecmp_n(ip, 7, "::ffff:", 7) && strchr(ip + 7, '.') &&
	    !strchr(ip + 7, ':'))
		ip += 7;
	fmt_snprintf(out, n, "%s", ip);
}

static void find_addresses(struct session *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		net_sockaddr_text(&ss, s->peer, sizeof s->peer, &s->peer_port);
		sl = sizeof ss;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			net_sockaddr_text(&ss, s->local, sizeof s->local,
					  &s->local_port);
		return;
	}
	int is_unix = unix_socket(s, fd) == 0;
	const char *tl = getenv("TCPLOCALIP"), *tp = getenv("TCPLOCALPORT");
	const char *tr = getenv("TCPREMOTEIP"), *trp = getenv("TCPREMOTEPORT");
	if (!s->unix_path[0] && tl && tp && tr && *tl && *tr) {
		put_ip(s->local, sizeof s->local, tl);
		put_ip(s->peer, sizeof s->peer, tr);
		s->local_port = atoi(tp);
		s->peer_port = trp ? atoi(trp) : 0;
		return;
	}
	/* a network socket whose client reset the connection before this
	 * process looked (getpeername() fails on a closed socket, while
	 * what the client sent can still be read) is no local pipe: its
	 * client is unknown, a relay client nowhere, as Postfix's is */
	sl = sizeof ss;
	if (!is_unix && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		net_sockaddr_text(&ss, s->local, sizeof s->local,
				  &s->local_port);
		fmt_snprintf(s->peer, sizeof s->peer, "unknown");
		return;
	}
	s->peer_is_pipe = 1;
	fmt_snprintf(s->peer, sizeof s->peer, NET_LOCAL_PEER);
	fmt_snprintf(s->local, sizeof s->local, NET_LOCAL_PEER);
	if (is_unix)
		session_local_peer(s, fd);
}

/* Whether a and b are one address; an IPv4-mapped one (::ffff:192.0.2.1,
 * as ss(8) shows the local end of an IPv4 client on a [::] socket) is the
 * IPv4 address it holds (net_parse), as ip is (net_ip_text). */
static int same_ip(const char *a, const char *b)
{
	struct net x, y;
	if (strchr(a, '/') || strchr(b, '/') || net_parse(a, &x) ||
	    net_parse(b, &y) || (x.family != AF_INET && x.family != AF_INET6))
		return 0;
	return x.family == y.family && !memcmp(x.addr, y.addr, sizeof x.addr);
}

/* AF_INET or AF_INET6 when host is that family's unspecified address
 * (0.0.0.0, ::), bind(2)'s wildcard; else 0. */
static int unspecified_family(const char *host)
{
	static const unsigned char zero[16];
	unsigned char b[16];
	if (inet_pton(AF_INET, host, b) == 1)
		return memcmp(b, zero, 4) ? 0 : AF_INET;
	if (inet_pton(AF_INET6, host, b) == 1)
		return memcmp(b, zero, 16) ? 0 : AF_INET6;
	return 0;
}

/* Whether a listen-port host names the local address ip. 0.0.0.0 is
 * every IPv4 address; :: every address, as a [::] socket also takes
 * IPv4 connections (v4-mapped, which ip has already unmapped). */
static int listen_host_matches(const char *host, const char *ip)
{
	if (!host[0])
		return 1;
	int any = unspecified_family(host);
	if (any)
		return any == AF_INET6 || !strchr(ip, ':');
	if (!strcmp(host, "localhost"))
		return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1");
	if (!strcmp(host, "ipv6-localhost") || !strcmp(host, "ip6-localhost"))
		return !strcmp(ip, "::1");
	if (same_ip(host, ip))
		return 1;
	char found[8][64];
	int n = hosts_lookup(host, found, 8);
	for (int i = 0; i < n && i < 8; i++)
		if (same_ip(found[i], ip))
			return 1;
	return 0;
}

/* Whether section l may serve the network connection of session ctx:
 * it must have arrived at l's address. */
static int listener_serves(const struct cf_section *l, const void *ctx)
{
	const struct session *s = ctx;
	return !l->listen.path[0] && l->listen.port == s->local_port &&
	       listen_host_matches(l->listen.host, s->local);
}

/* Whether section l may serve a connection on the unix socket bound to
 * the path ctx: only a section that listens there. */
static int unix_listener_serves(const struct cf_section *l, const void *ctx)
{
	return l->listen.path[0] && !strcmp(l->listen.path, ctx);
}

/* SPEC 4. Returns 0, or -1 when no section may serve. A socket pair has
 * no path: like a pipe, it is whoever made it that chose the section. */
static int choose_smtpd(struct session *s, const char *name)
{
	if (s->unix_path[0])
		return cf_choose_listener(s->cf, name, unix_listener_serves,
					  s->unix_path, &s->smtpd);
	return cf_choose_listener(s->cf, name,
				  s->peer_is_pipe ? NULL : listener_serves, s,
				  &s->smtpd);
}

/* Reads a TLS certificate or key while still privileged. */
static int read_secret(const char *path, struct buf *b, char *why, size_t n)
{
	if (buf_read_file(b, AT_FDCWD, path, 1 << 20) < 0) {
		fmt_snprintf(why, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!b->len) {
		fmt_snprintf(why, n, "%s: empty", path);
		return -1;
	}
	return 0;
}

/* The TLS priorities of a section: its tls-priority, else the Mozilla
 * "intermediate" profile where passwords travel (AUTH, implicit TLS, the
 * submission ports) and the broader forward-secret one for opportunistic
 * TLS on port 25. */
static const char *tls_priority(const struct cf_section *smtpd)
{
	if (smtpd->v[SMTPD_TLS_PRIORITY].s)
		return smtpd->v[SMTPD_TLS_PRIORITY].s;
	if (smtpd->v[SMTPD_AUTH].n != AUTH_NO ||
	    smtpd->v[SMTPD_TLS].n == STLS_IMPLICIT ||
	    smtpd->listen.port == 465 || smtpd->listen.port == 587)
		return TLS_PRIORITY_INTERMEDIATE;
	return TLS_PRIORITY_OPPORTUNISTIC;
}

/* Reads every certificate and key pair of the section (cf.c has checked
 * that they pair up) while still privileged. */
static int read_tls_secrets(struct session *s, char *why, size_t n)
{
	const struct cf_list *c = &s->smtpd->v[SMTPD_TLS_CERTIFICATE].list;
	const struct cf_list *k = &s->smtpd->v[SMTPD_TLS_KEY].list;
	s->tls_priority = tls_priority(s->smtpd);
	for (uint32_t i = 0; i < c->n && i < k->n && i < CF_MAX_TLS_KEYPAIRS;
	     i++) {
		if (read_secret(c->v[i], &s->tls_cert[i], why, n) < 0 ||
		    read_secret(k->v[i], &s->tls_key[i], why, n) < 0)
			return -1;
		s->tls_npairs++;
	}
	return 0;
}

static void new_sid(char *out, size_t n)
{
	unsigned char r[6];
	if (getrandom(r, sizeof r, 0) != sizeof r) {
		unsigned long long t = (unsigned long long)time(NULL) ^
				       ((unsigned long long)getpid() << 20);
		memcpy(r, &t, sizeof r);
	}
	fmt_snprintf(out, n, "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
		 r[4], r[5]);
}

/* SPEC 4: the [smtpd] section, or why none may serve (START_NO_SMTPD). */
static int start_choose(struct session *s, const char *name, char *why,
			size_t n)
{
	if (choose_smtpd(s, name) == 0)
		return 0;
	if (s->unix_path[0])
		fmt_snprintf(why, n, "no [smtpd] section%s%s%s listens on unix:%s, "
				 "where this connection arrived",
			 name ? " \"" : "", name ? name : "", name ? "\"" : "",
			 s->unix_path);
	else if (name)
		fmt_snprintf(why, n, "[smtpd \"%s\"] does not listen on %s port %d, "
				 "where this connection arrived",
			 name, s->local, s->local_port);
	else if (s->peer_is_pipe)
		fmt_snprintf(why, n, "several [smtpd] sections and a local pipe: "
				 "choose one with --smtpd=NAME");
	else
		fmt_snprintf(why, n, "no [smtpd] section listens on %s port %d, "
				 "where this connection arrived",
			 s->local, s->local_port);
	return START_NO_SMTPD;
}

/* The section's logger; syslog when stderr is the client's socket. */
static int start_log(struct session *s, int cf_ok, int rfd, char *why,
		     size_t n)
{
	if (!cf_ok) {
		log_open_syslog(s->sid);
		return 0;
	}
	const char *logger = s->smtpd ? s->smtpd->v[SMTPD_LOGGER].s
				       : s->cf->core->v[CORE_LOGGER].s;
	struct stat e, c;
	if (!strcmp(logger, "stderr") && fstat(2, &e) == 0 &&
	    fstat(rfd, &c) == 0 && e.st_dev == c.st_dev && e.st_ino == c.st_ino)
		logger = "syslog"; /* inetd: stderr is the client's socket */
	return log_open(s->cf, logger, s->sid, why, n) < 0 ? START_FAILED : 0;
}

/* Secrets while root, then the drop, then the spool as the user. */
static int start_privileged(struct session *s, char *why, size_t n)
{
	if (s->smtpd && (s->tls_mode = (int)s->smtpd->v[SMTPD_TLS].n) &&
	    read_tls_secrets(s, why, n) < 0)
		return START_FAILED;
	if (s->smtpd &&
	    (s->auth_mode = (int)s->smtpd->v[SMTPD_AUTH].n) != AUTH_NO &&
	    auth_load(s->smtpd->v[SMTPD_AUTH_FILE].s, &s->auth_table, why,
		      n) < 0)
		return START_FAILED;
	if (priv_drop(s->cf, why, n) < 0)
		return START_FAILED;
	s->spool_fd = spool_open(s->cf->core->v[CORE_SPOOL_DIRECTORY].s, why, n);
	return s->spool_fd < 0 ? START_FAILED : 0;
}

/* SPEC 5's limits: the section's, or the built-in listener's. */
static void start_limits(struct session *s, int cf_ok)
{
	const struct cf_section *l = s->smtpd;
	if (l) {
		fmt_snprintf(s->name, sizeof s->name, "%s", l->v[SMTPD_NAME].s);
		s->max_size = l->v[SMTPD_MAX_MESSAGE_SIZE].n;
		s->max_rcpt = (unsigned)l->v[SMTPD_MAX_RECIPIENTS].n;
		s->timeout = (int)l->v[SMTPD_TIMEOUT].n;
		s->max_junk = (int)l->v[SMTPD_JUNK_COMMAND_LIMIT].n;
		s->bare_reject = l->v[SMTPD_BARE_NEWLINE].n == BARE_REJECT;
		s->lmtp_ok = (int)l->v[SMTPD_LMTP].n;
		s->proxy_ok = (int)l->v[SMTPD_PROXY].n;
		s->proxy_ms = (int)l->v[SMTPD_PROXY_TIMEOUT].n * 1000;
		s->accept_mail = (int)l->v[SMTPD_ACCEPT_MAIL].n;
		s->verify_sender = (int)l->v[SMTPD_VERIFY_SENDER].n;
		s->spf_mode = (int)l->v[SMTPD_SPF].n;
		s->submission = (int)l->v[SMTPD_SUBMISSION].n;
	} else if (cf_ok) {
		s->max_size = s->cf->core->v[CORE_MAX_MESSAGE_SIZE].n;
		s->max_rcpt = 100;
		s->timeout = 300;
		s->max_junk = 100;
		s->lmtp_ok = 1;
		s->proxy_ok = 1;
		s->proxy_ms = 100000;
		s->accept_mail = 1;
	}
	/* a local submitter (sendmail, cron) cannot retry a next hop's 4xx
	 * as an MTA does: the spool takes its mail and retries it */
	if (s->cred.known)
		s->proxy_ok = 0;
	if (s->timeout > 0)
		s->io.timeout_ms = s->timeout * 1000;
}

int session_start(struct session *s, const char *smtpd_name, int cf_ok,
		  char *why, size_t n)
{
	int rfd = s->io.rfd;
	new_sid(s->sid, sizeof s->sid);
	find_addresses(s, rfd);
	fmt_snprintf(s->name, sizeof s->name, "%s",
		 cf_ok ? s->cf->core->v[CORE_HOSTNAME].s : "postmaster");
	int fail = cf_ok ? start_choose(s, smtpd_name, why, n) : START_FAILED;
	char lwhy[512];
	if (start_log(s, cf_ok, rfd, lwhy, sizeof lwhy)) {
		fmt_snprintf(why, n, "%s", lwhy);
		fail = START_FAILED;
	}
	s->spool_fd = -1;
	s->sm.data_fd = -1;
	if (!fail)
		fail = start_privileged(s, why, n);
	start_limits(s, cf_ok);
	return fail;
}
