/*
 * client.c - onward SMTP and LMTP delivery (see client.h).
 *
 * Per SPEC 7.2: a connection failure, a 421, or a 4xx/5xx greeting or
 * EHLO/LHLO reply moves on to the next address; otherwise the replies are
 * final for this attempt. An MX list that reaches this machine's own
 * addresses is cut there (RFC 5321 5.1); when nothing is left, the mail
 * loops back to myself (5.4.6). Text mail is stored with LF line ends and
 * goes out with CRLF, dot-stuffed for DATA or in BDAT chunks when the
 * peer offers CHUNKING; binary mail goes out only by BDAT.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "client.h"
#include "dns.h"
#include "io.h"
#include "mime.h"
#include "net.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 30000
#define REPLY_TIMEOUT_MS 300000
#define MAX_CANDS 32

struct cand {
	char host[256];
	struct sockaddr_storage ss;
	socklen_t len;
};

struct ext {
	int pipelining, eightbit, binary, chunking, smtputf8, starttls;
	int auth_plain, auth_login;
	unsigned long long size;
};

static void set_all(struct client_job *j, const struct reply *r)
{
	for (unsigned i = 0; i < j->n; i++)
		if (!j->r[i].r.code)
			j->r[i].r = *r;
}

void client_dest_key(enum target_kind kind, const char *via, const char *arg,
		     const char *addr, char *out, size_t n)
{
	if (kind == T_RELAY) {
		snprintf(out, n, "relay %s", via);
	} else if (kind == T_HOST) {
		snprintf(out, n, "host %s", arg);
	} else {
		const char *at = strrchr(addr, '@');
		snprintf(out, n, "mx %s", at ? at + 1 : "");
		for (char *p = out; *p; p++)
			*p = (char)ascii_lower((unsigned char)*p);
	}
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

static void sa_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip,
			  sizeof ip);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
			  ip, sizeof ip);
	else if (ss->ss_family == AF_UNIX)
		snprintf(ip, sizeof ip, "unix");
	snprintf(out, n, "%s", ip);
}

static void add_cand(struct cand *c, int *n, const char *host,
		     const void *ss, socklen_t len)
{
	if (*n >= MAX_CANDS)
		return;
	snprintf(c[*n].host, sizeof c[*n].host, "%s", host);
	/* ss may be a shorter sockaddr (getaddrinfo's): copy only len */
	memset(&c[*n].ss, 0, sizeof c[*n].ss);
	memcpy(&c[*n].ss, ss, len < sizeof c[*n].ss ? len : sizeof c[*n].ss);
	c[*n].len = len;
	(*n)++;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/* Address records: from core.dns-server when it is set, else (and for
 * names it does not know) through getaddrinfo: /etc/hosts, then DNS. */
static int lookup_host(const struct client_job *j, const char *host, int port,
		       struct cand *c, int *n, struct reply *err)
{
	const char *server = j->cf->core->v[CORE_DNS_SERVER].s;
	unsigned char bin[16];
	if (server && inet_pton(AF_INET, host, bin) != 1 &&
	    inet_pton(AF_INET6, host, bin) != 1) {
		struct sockaddr_storage a[DNS_MAX_ADDRS];
		int na = 0;
		enum dns_status s = dns_addrs(server, host, port, a,
					      DNS_MAX_ADDRS, &na);
		for (int k = 0; k < na; k++)
			add_cand(c, n, host, &a[k], sa_len(&a[k]));
		if (na)
			return 0;
		if (s == DNS_TEMP) {
			reply_set(err, 451, "4.4.3", "cannot find host %s: DNS "
					       "temporary failure",
			    host);
			return -1;
		}
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV}, *res, *ai;
	char ps[8];
	snprintf(ps, sizeof ps, "%d", port);
	int e = getaddrinfo(host, ps, &hints, &res);
	if (e) {
		int perm = e == EAI_NONAME;
		reply_set(err, perm ? 550 : 451, perm ? "5.1.2" : "4.4.3",
		    "cannot find host %s: %s", host, gai_strerror(e));
		return -1;
	}
	/* IPv6 first, then IPv4 */
	for (int fam = 0; fam < 2; fam++)
		for (ai = res; ai; ai = ai->ai_next)
			if (ai->ai_family == (fam ? AF_INET : AF_INET6))
				add_cand(c, n, host, ai->ai_addr,
					 ai->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}


/* Whether ss is one of this machine's own addresses. */
static int is_own_address(const struct sockaddr_storage *ss)
{
	struct ifaddrs *ifa, *i;
	if (getifaddrs(&ifa) < 0)
		return 0;
	int own = 0;
	for (i = ifa; i && !own; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != ss->ss_family)
			continue;
		if (ss->ss_family == AF_INET)
			own = !memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				      &((const struct sockaddr_in *)ss)->sin_addr,
				      4);
		else if (ss->ss_family == AF_INET6)
			own = !memcmp(
				&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
				&((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
	freeifaddrs(ifa);
	return own;
}

/* The MX hosts of domain, each with its addresses, best first. */
static int lookup_mx(const struct client_job *j, const char *domain, int port,
		     struct cand *c, int *n, struct reply *err)
{
	const char *server = j->cf->core->v[CORE_DNS_SERVER].s;
	struct dns_mx mx[DNS_MAX_MX];
	int nmx = 0;
	char alabel[256], why[300];
	if (dns_alabel(domain, alabel, sizeof alabel, why, sizeof why) < 0) {
		reply_set(err, 550, "5.1.2", "%s", why);
		return -1;
	}
	enum dns_status s = dns_mx(server, alabel, mx, DNS_MAX_MX, &nmx);
	switch (s) {
	case DNS_NULLMX:
		reply_set(err, 556, "5.1.10", "domain %s accepts no mail (null MX)",
		    domain);
		return -1;
	case DNS_NOTFOUND:
		reply_set(err, 550, "5.1.2", "domain %s not found", domain);
		return -1;
	case DNS_TEMP:
		reply_set(err, 451, "4.4.3", "cannot look up the MX of %s: DNS "
				       "temporary failure",
		    domain);
		return -1;
	case DNS_NODATA: /* no MX: the domain's own address (RFC 5321 5.1) */
		nmx = 1;
		mx[0].pref = 0;
		snprintf(mx[0].host, sizeof mx[0].host, "%s", alabel);
		break;
	case DNS_OK:
		break;
	}
	/* RFC 5321 5.1: when this machine is one of the MX hosts, only the
	 * hosts preferred to it may be used */
	struct sockaddr_storage (*a)[DNS_MAX_ADDRS] =
		xcalloc((size_t)nmx, sizeof *a);
	int *na = xcalloc((size_t)nmx, sizeof *na);
	int temp = 0, loops = 0;
	unsigned own = ~0u;
	for (int i = 0; i < nmx; i++) {
		if (dns_addrs(server, mx[i].host, port, a[i], DNS_MAX_ADDRS,
			      &na[i]) == DNS_TEMP)
			temp = 1;
		for (int k = 0; k < na[i]; k++)
			if (is_own_address(&a[i][k]) && mx[i].pref < own)
				own = mx[i].pref;
	}
	for (int i = 0; i < nmx; i++) {
		if (mx[i].pref >= own) {
			loops = 1;
			continue;
		}
		for (int k = 0; k < na[i]; k++)
			add_cand(c, n, mx[i].host, &a[i][k], sa_len(&a[i][k]));
	}
	free(a);
	free(na);
	if (*n)
		return 0;
	if (loops)
		reply_set(err, 554, "5.4.6", "mail for %s loops back to myself",
		    domain);
	else if (temp)
		reply_set(err, 451, "4.4.3", "cannot find the address of the MX "
				       "hosts of %s",
		    domain);
	else
		reply_set(err, 550, "5.1.2", "no address for the MX hosts of %s",
		    domain);
	return -1;
}

/* The addresses of one [relay] address or host target (net.h's forms):
 * a bare host name of a host target goes through its MX records first. */
static void add_endpoint(const struct client_job *j, const char *spec,
			 uint16_t defport, struct cand *c, int *n,
			 struct reply *err)
{
	struct net_endpoint ep;
	if (net_endpoint_parse(spec, defport, &ep)) {
		reply_set(err, 451, "4.3.5", "bad address %s", spec);
		return;
	}
	if (ep.kind == NET_EP_UNIX) {
		struct sockaddr_storage ss = {0};
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, ep.host, strlen(ep.host) + 1);
		add_cand(c, n, spec, &ss, sizeof *su);
	} else if (j->kind == T_HOST && !ep.bracketed) {
		lookup_mx(j, ep.host, ep.port, c, n, err);
	} else {
		lookup_host(j, ep.host, ep.port, c, n, err);
	}
}

static int candidates(struct client_job *j, struct cand *c, int *n,
		      struct reply *err)
{
	*n = 0;
	int lmtp = j->relay && j->relay->v[RELAY_PROTOCOL].n == RELAY_LMTP;
	int defport = lmtp ? 24 : 25;
	if (j->kind == T_MX)
		return lookup_mx(j, j->arg, defport, c, n, err);
	const char *one[1] = {j->arg};
	const char *const *specs = one;
	uint32_t nspecs = 1;
	if (j->kind == T_RELAY) {
		specs = j->relay->v[RELAY_ADDRESS].list.v;
		nspecs = j->relay->v[RELAY_ADDRESS].list.n;
		if (!nspecs) {
			reply_set(err, 451, "4.3.5", "[relay \"%s\"] has no address",
			    j->relay->name);
			return -1;
		}
	}
	struct reply last = {0};
	for (uint32_t i = 0; i < nspecs; i++)
		add_endpoint(j, specs[i], (uint16_t)defport, c, n, &last);
	if (*n)
		return 0;
	*err = last;
	return -1;
}

/* ------------------------------------------------------------------ */
/* The conversation                                                    */

struct conn {
	struct io io;
	int fd;
	char name[320];
	const char *host; /* the name TLS checks and sends (SNI) */
	struct ext ext;
	int lmtp;
	int tls_mode;     /* RTLS_* */
	int tls;          /* TLS is on */
};

static int connect_to(const struct cand *c, char *why, size_t n)
{
	int fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	if (fd < 0) {
		snprintf(why, n, "%s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&c->ss, c->len) < 0 &&
	    errno != EINPROGRESS) {
		snprintf(why, n, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	struct pollfd p = {fd, POLLOUT, 0};
	int r = poll(&p, 1, CONNECT_TIMEOUT_MS);
	int err = 0;
	socklen_t el = sizeof err;
	if (r <= 0) {
		snprintf(why, n, "connection timed out");
		close(fd);
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		snprintf(why, n, "%s", strerror(err));
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* Reads one reply; lines (without "NNN-") joined by '\n' into text.
 * Returns the code, or -1 when the connection broke. */
static int read_reply(struct conn *c, struct buf *text)
{
	text->len = 0;
	buf_adds(text, "");
	for (;;) {
		char line[1024];
		size_t len;
		int bare;
		enum io_status st = io_getline(&c->io, line, sizeof line - 1,
					       &len, &bare);
		if (st != IO_OK && st != IO_TOOLONG)
			return -1;
		line[len] = 0;
		if (len < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		if (text->len)
			buf_addc(text, '\n');
		buf_adds(text, len > 4 ? line + 4 : "");
		if (len == 3 || line[3] == ' ')
			return atoi(line);
	}
}

/* A peer's reply as a target's reply: its enhanced code when it gives
 * one of the right class, else a default. */
static void peer_reply(struct reply *r, int code, const char *text,
		       const char *host)
{
	char dsn[12];
	const char *t = text;
	size_t k = 0;
	while (k < 11 && (t[k] == '.' || (t[k] >= '0' && t[k] <= '9')))
		k++;
	if (k >= 5 && t[0] == '0' + code / 100 && t[1] == '.' &&
	    (t[k] == ' ' || !t[k])) {
		memcpy(dsn, t, k);
		dsn[k] = 0;
		t += k;
		while (*t == ' ')
			t++;
	} else {
		snprintf(dsn, sizeof dsn, "%c.0.0", '0' + (code / 100) % 10);
	}
	r->code = code;
	snprintf(r->dsn, sizeof r->dsn, "%s", dsn);
	struct buf b = {0};
	buf_printf(&b, "%s said: ", host);
	for (const char *p = t; *p; p++)
		buf_addc(&b, *p == '\n' ? ' ' : *p);
	buf_add_escaped(&b, "", 0);
	snprintf(r->text, sizeof r->text, "%s", b.s);
	buf_free(&b);
}

static void parse_ehlo(struct conn *c, const char *text)
{
	memset(&c->ext, 0, sizeof c->ext);
	const char *l = strchr(text, '\n');
	while (l) {
		l++;
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char kw[64];
		snprintf(kw, sizeof kw, "%.*s", (int)(n < 63 ? n : 63), l);
		if (!strcasecmp(kw, "PIPELINING"))
			c->ext.pipelining = 1;
		else if (!strcasecmp(kw, "8BITMIME"))
			c->ext.eightbit = 1;
		else if (!strcasecmp(kw, "BINARYMIME"))
			c->ext.binary = 1;
		else if (!strcasecmp(kw, "CHUNKING"))
			c->ext.chunking = 1;
		else if (!strcasecmp(kw, "SMTPUTF8"))
			c->ext.smtputf8 = 1;
		else if (!strcasecmp(kw, "STARTTLS"))
			c->ext.starttls = 1;
		else if (!strncasecmp(kw, "SIZE", 4) && (kw[4] == ' ' || !kw[4]))
			c->ext.size = strtoull(kw + 4, NULL, 10);
		else if (!strncasecmp(kw, "AUTH", 4) && kw[4] == ' ') {
			for (char *w = strtok(kw + 5, " "); w; w = strtok(NULL, " ")) {
				if (!strcasecmp(w, "PLAIN"))
					c->ext.auth_plain = 1;
				else if (!strcasecmp(w, "LOGIN"))
					c->ext.auth_login = 1;
			}
		}
		l = e;
	}
}

static void cmd(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cmd(struct conn *c, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, "\r\n");
	io_write(&c->io, b.s, b.len);
	buf_free(&b);
}

#define LINE_MAX_WIRE 998 /* RFC 5321 4.5.3.1.6, without CRLF */

/* How text leaves: LF becomes CRLF, a line that would pass 998 octets is
 * folded with CRLF SPACE (as Postfix's smtp_line_length_limit does), and
 * for DATA a leading dot is doubled. The one place that decides, for the
 * SIZE count and for the bytes sent alike. */
struct wire {
	long col;
	int bol;
};

/* Appends the wire form of ch to out (when not NULL); returns how many
 * octets it takes, not counting the dot-stuffing that SIZE ignores. */
static int wire_byte(struct wire *w, char ch, int stuff, struct buf *out)
{
	if (ch == '\n') {
		if (out)
			buf_add(out, "\r\n", 2);
		w->col = 0;
		w->bol = 1;
		return 2;
	}
	int n = 1;
	if (w->col >= LINE_MAX_WIRE) {
		if (out)
			buf_add(out, "\r\n ", 3);
		w->col = 1;
		w->bol = 0;
		n += 3;
	}
	if (w->bol && ch == '.' && stuff) {
		if (out)
			buf_addc(out, '.');
		w->col++;
	}
	if (out)
		buf_addc(out, ch);
	w->col++;
	w->bol = 0;
	return n;
}

/* The message's size on the wire (RFC 1870 counts CRLF) and whether it
 * holds 8-bit octets, whatever its BODY said (RFC 6152 is about content). */
static void scan_body(const struct msg *m, off_t *wire, int *eightbit)
{
	char in[32768];
	struct wire w = {0, 1};
	off_t off = 0, size = 0;
	*eightbit = 0;
	while (off < m->size) {
		ssize_t n = msg_read(m, off, in, sizeof in);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if ((unsigned char)in[i] >= 0x80)
				*eightbit = 1;
			size += m->binary ? 1 : wire_byte(&w, in[i], 0, NULL);
		}
		off += n;
	}
	*wire = size;
}

/* Sends the message body: DATA's dot-stuffed text, or BDAT chunks. */
static int send_body(struct conn *c, const struct msg *m, int bdat)
{
	char in[32768];
	struct buf out = {0};
	struct wire w = {0, 1};
	off_t off = 0;
	char last = '\n';
	while (off < m->size) {
		ssize_t n = msg_read(m, off, in, sizeof in);
		if (n <= 0)
			return -1;
		off += n;
		out.len = 0;
		if (m->binary)
			buf_add(&out, in, (size_t)n);
		else
			for (ssize_t i = 0; i < n; i++)
				wire_byte(&w, in[i], !bdat, &out);
		last = in[n - 1];
		if (bdat) {
			char h[40];
			int hl = snprintf(h, sizeof h, "BDAT %zu\r\n", out.len);
			io_write(&c->io, h, (size_t)hl);
		}
		io_write(&c->io, out.s, out.len);
		if (io_flush(&c->io) < 0) {
			buf_free(&out);
			return -1;
		}
	}
	buf_free(&out);
	if (bdat) {
		cmd(c, "BDAT 0 LAST");
	} else {
		if (last != '\n' && m->size)
			io_write(&c->io, "\r\n", 2);
		io_write(&c->io, ".\r\n", 3);
	}
	return io_flush(&c->io);
}

/* BDAT chunks each get a 250 before the last; reads them. */
static int bdat_replies(struct conn *c, const struct msg *m, struct buf *t)
{
	/* one reply per chunk written, then the LAST one */
	off_t chunks = (m->size + 32767) / 32768;
	for (off_t i = 0; i < chunks; i++) {
		int code = read_reply(c, t);
		if (code != 250)
			return code;
	}
	return 0;
}

enum { NEXT_ADDRESS = 1, AGAIN_IN_CLEAR = 2, OWN_VERDICT = 3 };

/* EHLO or LHLO and its reply; 0 when it was 250. */
static int hello(struct client_job *j, struct conn *c, struct buf *t,
		 struct reply *why)
{
	cmd(c, "%s %s", c->lmtp ? "LHLO" : "EHLO",
	    j->cf->core->v[CORE_HOSTNAME].s);
	io_flush(&c->io);
	int code = read_reply(c, t);
	if (code == 250) {
		parse_ehlo(c, t->s);
		return 0;
	}
	if (code < 0)
		reply_set(why, 451, "4.4.2", "%s: lost connection after %s", c->name,
		    c->lmtp ? "LHLO" : "EHLO");
	else
		peer_reply(why, 451, t->s, c->name);
	why->dsn[0] = '4';
	return -1;
}

/* STARTTLS as the relay's tls key says (opportunistic for hosts and MX).
 * Returns 0 to go on, NEXT_ADDRESS or AGAIN_IN_CLEAR with why. */
static int start_tls(struct client_job *j, struct conn *c, struct buf *t,
		     struct reply *why)
{
	int must = c->tls_mode == RTLS_REQUIRED || c->tls_mode == RTLS_VERIFY;
	if (c->tls_mode == RTLS_NO || (!c->ext.starttls && !must))
		return 0;
	if (!c->ext.starttls) {
		reply_set(why, 451, "4.7.4", "TLS is required, but %s does not offer "
				       "STARTTLS",
		    c->name);
		return NEXT_ADDRESS;
	}
	cmd(c, "STARTTLS");
	io_flush(&c->io);
	int code = read_reply(c, t);
	if (code != 220) {
		if (code < 0) {
			reply_set(why, 451, "4.4.2", "%s: lost connection after "
					       "STARTTLS",
			    c->name);
			return NEXT_ADDRESS;
		}
		if (!must)
			return 0; /* still the same clear-text session */
		peer_reply(why, 451, t->s, c->name);
		why->dsn[0] = '4';
		return NEXT_ADDRESS;
	}
	char reason[300];
	if (tls_client_start(&c->io, c->host, c->tls_mode == RTLS_VERIFY, reason,
			     sizeof reason) < 0) {
		reply_set(why, 451, "4.7.5", "%s: %s", c->name, reason);
		return must ? NEXT_ADDRESS : AGAIN_IN_CLEAR;
	}
	c->tls = 1;
	/* RFC 3207 4.2: forget what was learnt before TLS */
	return hello(j, c, t, why) < 0 ? NEXT_ADDRESS : 0;
}

/* AUTH PLAIN or LOGIN to a smarthost, never in clear text. */
static int authenticate(struct client_job *j, struct conn *c, struct buf *t,
			struct reply *why)
{
	const char *user = j->relay ? j->relay->v[RELAY_AUTH_USER].s : NULL;
	if (!user)
		return 0;
	const char *pass = j->relay->v[RELAY_AUTH_PASSWORD].s;
	if (!pass)
		pass = "";
	if (!c->tls) {
		reply_set(why, 451, "4.7.10", "%s: not sending credentials without "
					"TLS",
		    c->name);
		return NEXT_ADDRESS;
	}
	struct buf b = {0};
	int code;
	if (c->ext.auth_plain) {
		struct buf raw = {0};
		buf_addc(&raw, 0);
		buf_adds(&raw, user);
		buf_addc(&raw, 0);
		buf_adds(&raw, pass);
		buf_add_base64(&b, raw.s, raw.len);
		buf_free(&raw);
		cmd(c, "AUTH PLAIN %s", b.s);
		io_flush(&c->io);
		code = read_reply(c, t);
	} else if (c->ext.auth_login) {
		buf_add_base64(&b, user, strlen(user));
		cmd(c, "AUTH LOGIN %s", b.s);
		io_flush(&c->io);
		code = read_reply(c, t);
		if (code == 334) {
			b.len = 0;
			buf_add_base64(&b, pass, strlen(pass));
			cmd(c, "%s", b.s ? b.s : "");
			io_flush(&c->io);
			code = read_reply(c, t);
		}
	} else {
		reply_set(why, 451, "4.7.0", "%s offers neither AUTH PLAIN nor LOGIN",
		    c->name);
		return NEXT_ADDRESS;
	}
	buf_free(&b);
	if (code == 235)
		return 0;
	if (code < 0)
		reply_set(why, 451, "4.4.2", "%s: lost connection during AUTH",
		    c->name);
	else
		peer_reply(why, 451, t->s, c->name);
	snprintf(why->dsn, sizeof why->dsn, "4.7.8");
	return NEXT_ADDRESS;
}

/* One attempt over an open connection. Returns NEXT_ADDRESS when the
 * remaining recipients should try the next address, with why. */
/* The greeting, EHLO/LHLO, STARTTLS and AUTH: 0 when the connection is
 * ready for a transaction, else NEXT_ADDRESS or AGAIN_IN_CLEAR with why. */
static int open_session(struct client_job *j, struct conn *c,
			struct reply *why)
{
	struct buf t = {0};
	const char *host = c->name;
	int ret = 0;
	int code = read_reply(c, &t);
	if (code != 220) {
		if (code < 0)
			reply_set(why, 451, "4.4.2", "%s: lost connection before the "
					       "greeting",
			    host);
		else
			peer_reply(why, code < 400 ? 451 : code, t.s, host);
		if (why->code >= 500)
			why->code = 451, why->dsn[0] = '4';
		ret = NEXT_ADDRESS;
		goto quit;
	}
	if (hello(j, c, &t, why) < 0) {
		ret = NEXT_ADDRESS;
		goto quit;
	}
	if ((ret = start_tls(j, c, &t, why)) == 0)
		ret = authenticate(j, c, &t, why);
quit:
	if (ret) {
		cmd(c, "QUIT");
		io_flush(&c->io);
	}
	buf_free(&t);
	return ret;
}

/* The 7-bit form of the job's message, made once per job in an unlinked
 * file; -1 with j->conv_why when it cannot be made. */
static int downgrade(struct client_job *j)
{
	if (j->conv_state)
		return j->conv_state > 0 ? 0 : -1;
	j->conv_state = -1;
	const char *dir = getenv("TMPDIR");
	int fd = open(dir && dir[0] == '/' ? dir : "/tmp",
		      O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(j->conv_why, sizeof j->conv_why,
			 "no room to convert it: %s", strerror(errno));
		return -1;
	}
	if (mime_downgrade(j->m, fd, j->conv_why, sizeof j->conv_why) < 0) {
		close(fd);
		return -1;
	}
	j->conv = *j->m;
	j->conv.fd = fd;
	j->conv.off = 0;
	j->conv.size = lseek(fd, 0, SEEK_END);
	j->conv.binary = 0;
	int eightbit;
	scan_body(&j->conv, &j->conv_wire, &eightbit);
	j->conv_state = 1;
	return 0;
}

/* Reads the reply to one RCPT: a refusal is that recipient's reply, an
 * acceptance (-1) waits for the final one. Returns the code (-1: the
 * connection broke; 421: it is closing, the reply is not the recipient's). */
static int rcpt_reply(struct conn *c, struct client_rcpt *r, struct buf *t)
{
	int code = read_reply(c, t);
	if (code < 0 || code == 421)
		return code;
	if (code == 250 || code == 251)
		r->r.code = -1; /* accepted: the final reply comes later */
	else
		peer_reply(&r->r, code, t->s, c->name);
	return code;
}

/* Reads the reply to a pipelined DATA that no recipient can use. A peer
 * that answers 354 all the same gets the lone "." and its reply is
 * discarded (RFC 2920 3.1, as Postfix does): whatever else we sent would
 * be taken as message text. */
static void skip_data_reply(struct conn *c, struct buf *t)
{
	if (read_reply(c, t) != 354)
		return;
	cmd(c, ".");
	io_flush(&c->io);
	read_reply(c, t);
}

/* One transaction on a ready connection: a reply for every recipient, or
 * NEXT_ADDRESS (with why) for those the connection could not serve. */
static int transaction(struct client_job *j, struct conn *c, struct reply *why)
{
	struct buf t = {0};
	const char *host = c->name;
	int ret = 0, code;
	const struct msg *m = j->m;
	off_t wire = j->wire_size;
	int eightbit = j->eightbit;
	struct reply fail = {0};
	if (j->smtputf8 && !c->ext.smtputf8) {
		reply_set(&fail, 550, "5.6.7", "%s does not support SMTPUTF8, which "
					 "this message needs",
		    host);
	} else if ((m->binary && !(c->ext.binary && c->ext.chunking)) ||
		   (eightbit && !c->ext.eightbit)) {
		/* RFC 6152 3, RFC 3030 3: a 7-bit form for this peer */
		if (downgrade(j) < 0) {
			reply_set(&fail, 554, "5.6.3", "%s accepts only 7-bit mail and "
						 "this message cannot be "
						 "converted: %s",
			    host, j->conv_why);
		} else {
			m = &j->conv;
			wire = j->conv_wire;
			eightbit = 0;
		}
	}
	if (!fail.code && c->ext.size && (unsigned long long)wire > c->ext.size)
		reply_set(&fail, 552, "5.3.4", "message size %lld exceeds the limit "
					 "of %s (%llu)",
		    (long long)wire, host, c->ext.size);
	if (fail.code) {
		/* our own verdict, not the peer's reply */
		set_all(j, &fail);
		ret = OWN_VERDICT;
		goto quit;
	}
	char params[128] = "";
	size_t pl = 0;
	if (c->ext.size)
		pl += (size_t)snprintf(params + pl, sizeof params - pl,
				       " SIZE=%lld", (long long)wire);
	if (m->binary)
		pl += (size_t)snprintf(params + pl, sizeof params - pl,
				       " BODY=BINARYMIME");
	else if (eightbit)
		pl += (size_t)snprintf(params + pl, sizeof params - pl,
				       " BODY=8BITMIME");
	if (j->smtputf8)
		snprintf(params + pl, sizeof params - pl, " SMTPUTF8");
	int pipe = c->ext.pipelining;
	int bdat = m->binary || c->ext.chunking;
	cmd(c, "MAIL FROM:<%s>%s", m->from, params);
	if (!pipe)
		io_flush(&c->io);
	int mail = pipe ? 0 : read_reply(c, &t);
	if (!pipe && mail != 250)
		goto mail_failed;
	for (unsigned i = 0; i < j->n; i++) {
		if (j->r[i].r.code)
			continue;
		cmd(c, "RCPT TO:<%s>", j->r[i].addr);
		if (!pipe) {
			io_flush(&c->io);
			code = rcpt_reply(c, &j->r[i], &t);
			if (code < 0)
				goto lost;
			if (code == 421)
				goto closing;
		}
	}
	if (pipe && !bdat)
		cmd(c, "DATA");
	if (pipe) {
		io_flush(&c->io);
		mail = read_reply(c, &t);
		if (mail != 250) {
			/* the RCPT and DATA replies still come: skip them */
			struct buf skip = {0};
			for (unsigned i = 0; i < j->n; i++)
				if (!j->r[i].r.code)
					read_reply(c, &skip);
			if (!bdat)
				skip_data_reply(c, &skip);
			buf_free(&skip);
			goto mail_failed;
		}
		for (unsigned i = 0; i < j->n; i++) {
			if (j->r[i].r.code)
				continue;
			code = rcpt_reply(c, &j->r[i], &t);
			if (code < 0)
				goto lost;
			if (code == 421)
				goto closing;
		}
	}
	unsigned accepted = 0;
	for (unsigned i = 0; i < j->n; i++)
		accepted += j->r[i].r.code == -1;
	if (!accepted) {
		if (pipe && !bdat)
			skip_data_reply(c, &t); /* 503 or 554, or a 354 */
		goto quit;
	}
	if (!bdat) {
		if (!pipe) {
			cmd(c, "DATA");
			io_flush(&c->io);
		}
		code = read_reply(c, &t);
		if (code != 354) {
			struct reply r;
			if (code < 0)
				goto lost;
			peer_reply(&r, code < 400 ? 451 : code, t.s, host);
			for (unsigned i = 0; i < j->n; i++)
				if (j->r[i].r.code == -1)
					j->r[i].r = r;
			goto quit;
		}
	}
	if (send_body(c, m, bdat) < 0)
		goto lost;
	if (bdat && (code = bdat_replies(c, m, &t)) != 0) {
		if (code < 0)
			goto lost;
		struct reply r;
		peer_reply(&r, code, t.s, host);
		for (unsigned i = 0; i < j->n; i++)
			if (j->r[i].r.code == -1)
				j->r[i].r = r;
		goto quit;
	}
	/* SMTP: one final reply; LMTP: one per accepted recipient */
	struct reply final = {0};
	for (unsigned i = 0; i < j->n; i++) {
		if (j->r[i].r.code != -1)
			continue;
		if (c->lmtp || !final.code) {
			code = read_reply(c, &t);
			if (code < 0)
				goto lost;
			peer_reply(&final, code, t.s, host);
		}
		j->r[i].r = final;
	}
	goto quit;

mail_failed:
	if (mail < 0)
		goto lost;
	if (mail == 421)
		goto closing;
	{
		struct reply r;
		peer_reply(&r, mail < 400 ? 451 : mail, t.s, host);
		set_all(j, &r);
	}
	goto quit;
closing:
	peer_reply(why, 451, t.s, host);
	why->dsn[0] = '4';
	ret = NEXT_ADDRESS;
	goto clear;
lost:
	reply_set(why, 451, "4.4.2", "%s: lost connection", host);
	ret = NEXT_ADDRESS;
clear:
	/* what was not final is tried again at the next address */
	for (unsigned i = 0; i < j->n; i++)
		if (j->r[i].r.code == -1)
			j->r[i].r.code = 0;
	buf_free(&t);
	return ret;
quit:
	/* replies of this peer are final: name it in logs and reports */
	if (ret == 0)
		snprintf(j->remote, sizeof j->remote, "%s", host);
	buf_free(&t);
	return ret == OWN_VERDICT ? 0 : ret;
}

/* ------------------------------------------------------------------ */
/* Connections kept for the next message to the same destination      */

#define CACHE_MAX 8

static struct cached {
	char key[300];
	struct conn *c;
	int fd;
} cache[CACHE_MAX];
static int caching;

void client_keep_connections(int on) { caching = on; }

static void hang_up(struct conn *c, int fd, int quit)
{
	if (quit) {
		cmd(c, "QUIT");
		io_flush(&c->io);
	}
	tls_end(&c->io);
	io_free(&c->io);
	close(fd);
}

void client_close_connections(void)
{
	for (int i = 0; i < CACHE_MAX; i++)
		if (cache[i].c) {
			hang_up(cache[i].c, cache[i].fd, 1);
			free(cache[i].c);
			cache[i].c = NULL;
		}
}

static void keep(const char *key, struct conn *c, int fd)
{
	int slot = 0;
	for (int i = 0; i < CACHE_MAX; i++)
		if (!cache[i].c) {
			slot = i;
			break;
		} else if (i == CACHE_MAX - 1) {
			hang_up(cache[0].c, cache[0].fd, 1); /* the oldest */
			free(cache[0].c);
			memmove(cache, cache + 1, (CACHE_MAX - 1) * sizeof *cache);
			cache[CACHE_MAX - 1].c = NULL;
			slot = CACHE_MAX - 1;
		}
	snprintf(cache[slot].key, sizeof cache[slot].key, "%s", key);
	cache[slot].c = xmalloc(sizeof *c);
	*cache[slot].c = *c;
	cache[slot].fd = fd;
}

/* A kept connection to key, reset for a new transaction (RSET), taken out
 * of the cache; NULL when there is none or it no longer answers. */
static struct conn *reuse(const char *key, int *fd)
{
	for (int i = 0; i < CACHE_MAX; i++) {
		if (!cache[i].c || strcmp(cache[i].key, key))
			continue;
		struct conn *c = cache[i].c;
		*fd = cache[i].fd;
		cache[i].c = NULL;
		struct buf t = {0};
		cmd(c, "RSET");
		int ok = io_flush(&c->io) == 0 && read_reply(c, &t) == 250;
		buf_free(&t);
		if (ok)
			return c;
		hang_up(c, *fd, 0);
		free(c);
		return NULL;
	}
	return NULL;
}

static void deliver(struct client_job *j);

void client_deliver(struct client_job *j)
{
	j->conv_state = 0;
	deliver(j);
	if (j->conv_state > 0)
		close(j->conv.fd);
}

static void deliver(struct client_job *j)
{
	struct cand *c = xcalloc(MAX_CANDS, sizeof *c);
	int n = 0;
	struct reply err = {0};
	j->remote[0] = 0;
	for (unsigned i = 0; i < j->n; i++)
		memset(&j->r[i].r, 0, sizeof j->r[i].r);
	if (candidates(j, c, &n, &err) < 0) {
		set_all(j, &err);
		free(c);
		return;
	}
	int eightbit;
	scan_body(j->m, &j->wire_size, &eightbit);
	if (eightbit && !j->m->binary)
		j->eightbit = 1;
	char key[300];
	snprintf(key, sizeof key, "%d %s", (int)j->kind,
		 j->relay ? j->relay->name : j->arg);
	if (!j->relay)
		ascii_lower_str(key);
	int kept_fd;
	struct conn *kept = caching ? reuse(key, &kept_fd) : NULL;
	if (kept) {
		struct reply lost = {0};
		int r = transaction(j, kept, &lost);
		if (r == 0) {
			keep(key, kept, kept_fd);
			free(kept);
			free(c);
			return;
		}
		/* the kept connection failed: the others start afresh */
		hang_up(kept, kept_fd, 0);
		free(kept);
	}
	struct reply why = {0};
	int lmtp = j->relay && j->relay->v[RELAY_PROTOCOL].n == RELAY_LMTP;
	int mode = j->relay ? (int)j->relay->v[RELAY_TLS].n : RTLS_OPPORTUNISTIC;
	int in_clear = 0;
	for (int i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN + 8], reason[256];
		struct conn conn = {.lmtp = lmtp,
				    .tls_mode = in_clear ? RTLS_NO : mode};
		conn.host = j->relay ? j->relay->v[RELAY_NAME].s : c[i].host;
		if (c[i].ss.ss_family == AF_UNIX)
			snprintf(conn.name, sizeof conn.name, "%s", c[i].host);
		else {
			sa_text(&c[i].ss, ip, sizeof ip);
			snprintf(conn.name, sizeof conn.name, "%s[%s]", c[i].host,
				 ip);
		}
		int fd = connect_to(&c[i], reason, sizeof reason);
		if (fd < 0) {
			reply_set(&why, 451, "4.4.1", "connect to %s: %s", conn.name,
			    reason);
			continue;
		}
		io_init(&conn.io, fd, fd, REPLY_TIMEOUT_MS);
		int r = open_session(j, &conn, &why);
		if (r == 0)
			r = transaction(j, &conn, &why);
		in_clear = 0;
		if (r == 0 && caching) {
			keep(key, &conn, fd);
			break;
		}
		hang_up(&conn, fd, r == 0);
		if (r == AGAIN_IN_CLEAR) {
			/* opportunistic TLS that failed: this address again,
			 * without it, as Postfix does */
			in_clear = 1;
			i--;
			continue;
		}
		if (r != NEXT_ADDRESS)
			break;
	}
	if (!why.code)
		reply_set(&why, 451, "4.4.1", "no address to deliver to");
	set_all(j, &why);
	free(c);
}
