/*
 * tls.c - TLS with a dlopen'd GnuTLS (see tls.h).
 *
 * Only the GnuTLS header is used at build time; every function is looked
 * up in libgnutls.so.30 when the first TLS connection starts, so the
 * binary carries no link-time dependency on it.
 *
 * GnuTLS moves bytes through our pull and push functions, which never
 * block: a record that is not all there yet is GNUTLS_E_AGAIN, and the
 * waiting is done with poll() by io.c (records) or here (the handshake,
 * under one deadline), so a peer that stalls mid-record or trickles its
 * handshake costs at most the session timeout.
 */
#include "tls.h"
#include "io.h"
#include "fmt.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LIBGNUTLS "libgnutls.so.30"
/* the onward client: what the peer offers, TLS 1.2 and 1.3 only */
#define PRIORITY_CLIENT "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* client-initiated renegotiations refused before the session is ended */
#define MAX_RENEGOTIATIONS 3

#define FN(name) __typeof__(name) *name
static struct {
	int loaded;
	FN(gnutls_global_init);
	FN(gnutls_init);
	FN(gnutls_deinit);
	FN(gnutls_priority_set_direct);
	FN(gnutls_priority_init);
	FN(gnutls_priority_deinit);
	FN(gnutls_priority_protocol_list);
	FN(gnutls_certificate_allocate_credentials);
	FN(gnutls_certificate_free_credentials);
	FN(gnutls_certificate_set_x509_system_trust);
	FN(gnutls_certificate_set_x509_key_mem2);
	FN(gnutls_certificate_set_known_dh_params);
	FN(gnutls_credentials_set);
	FN(gnutls_server_name_set);
	FN(gnutls_session_set_verify_cert);
	FN(gnutls_session_get_verify_cert_status);
	FN(gnutls_transport_set_ptr);
	FN(gnutls_transport_set_push_function);
	FN(gnutls_transport_set_pull_function);
	FN(gnutls_transport_set_pull_timeout_function);
	FN(gnutls_handshake);
	FN(gnutls_record_get_direction);
	FN(gnutls_record_send);
	FN(gnutls_record_recv);
	FN(gnutls_record_check_pending);
	FN(gnutls_bye);
	FN(gnutls_alert_send);
	FN(gnutls_alert_get);
	FN(gnutls_alert_get_name);
	FN(gnutls_error_to_alert);
	FN(gnutls_strerror);
	FN(gnutls_error_is_fatal);
	FN(gnutls_protocol_get_version);
	FN(gnutls_protocol_get_name);
	FN(gnutls_cipher_get);
	FN(gnutls_cipher_get_name);
} G;
#undef FN

static int load(char *why, size_t n)
{
	if (G.loaded)
		return G.loaded > 0 ? 0 : -1;
	void *h = dlopen(LIBGNUTLS, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fmt_snprintf(why, n, "cannot load %s: %s", LIBGNUTLS, dlerror());
		G.loaded = -1;
		return -1;
	}
#define SYM(name)                                                     \
	do {                                                          \
		*(void **)&G.name = dlsym(h, #name);                  \
		if (!G.name) {                                        \
			fmt_snprintf(why, n, "%s lacks %s", LIBGNUTLS, #name); \
			G.loaded = -1;                                \
			return -1;                                    \
		}                                                     \
	} while (0)
	SYM(gnutls_global_init);
	SYM(gnutls_init);
	SYM(gnutls_deinit);
	SYM(gnutls_priority_set_direct);
	SYM(gnutls_priority_init);
	SYM(gnutls_priority_deinit);
	SYM(gnutls_priority_protocol_list);
	SYM(gnutls_certificate_allocate_credentials);
	SYM(gnutls_certificate_free_credentials);
	SYM(gnutls_certificate_set_x509_system_trust);
	SYM(gnutls_certificate_set_x509_key_mem2);
	SYM(gnutls_certificate_set_known_dh_params);
	SYM(gnutls_credentials_set);
	SYM(gnutls_server_name_set);
	SYM(gnutls_session_set_verify_cert);
	SYM(gnutls_session_get_verify_cert_status);
	SYM(gnutls_transport_set_ptr);
	SYM(gnutls_transport_set_push_function);
	SYM(gnutls_transport_set_pull_function);
	SYM(gnutls_transport_set_pull_timeout_function);
	SYM(gnutls_handshake);
	SYM(gnutls_record_get_direction);
	SYM(gnutls_record_send);
	SYM(gnutls_record_recv);
	SYM(gnutls_record_check_pending);
	SYM(gnutls_bye);
	SYM(gnutls_alert_send);
	SYM(gnutls_alert_get);
	SYM(gnutls_alert_get_name);
	SYM(gnutls_error_to_alert);
	SYM(gnutls_strerror);
	SYM(gnutls_error_is_fatal);
	SYM(gnutls_protocol_get_version);
	SYM(gnutls_protocol_get_name);
	SYM(gnutls_cipher_get);
	SYM(gnutls_cipher_get_name);
#undef SYM
	if (G.gnutls_global_init() < 0) {
		fmt_snprintf(why, n, "gnutls_global_init failed");
		G.loaded = -1;
		return -1;
	}
	G.loaded = 1;
	return 0;
}

struct tls {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	int rfd, wfd;
	int timeout_ms;
	int renegotiations;
};

/* ------------------------------------------------------------------ */
/* The transport under GnuTLS: never blocks                            */

static int fd_ready(int fd, short ev, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *p, size_t n)
{
	struct tls *t = ptr;
	ssize_t r = recv(t->rfd, p, n, MSG_DONTWAIT);
	if (r >= 0 || errno != ENOTSOCK)
		return r;
	/* a pipe (sendmail -bs, tests): read only what is there */
	if (fd_ready(t->rfd, POLLIN, 0) > 0)
		return read(t->rfd, p, n);
	errno = EAGAIN;
	return -1;
}

static ssize_t push(gnutls_transport_ptr_t ptr, const void *p, size_t n)
{
	struct tls *t = ptr;
	ssize_t r = send(t->wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r >= 0 || errno != ENOTSOCK)
		return r;
	/* a pipe takes PIPE_BUF octets without blocking once writable */
	if (fd_ready(t->wfd, POLLOUT, 0) > 0)
		return write(t->wfd, p, n < PIPE_BUF ? n : PIPE_BUF);
	errno = EAGAIN;
	return -1;
}

/* What GnuTLS asks when it wants to wait itself: never longer than the
 * session timeout. */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	struct tls *t = ptr;
	if (ms == GNUTLS_INDEFINITE_TIMEOUT || ms > (unsigned)t->timeout_ms)
		ms = (unsigned)t->timeout_ms;
	return fd_ready(t->rfd, POLLIN, (int)ms);
}

/* Waits until the socket is ready for what GnuTLS last wanted (read or
 * write), at most until deadline. 1 ready, 0 deadline passed, -1 error. */
static int wait_until(struct tls *t, long long deadline)
{
	long long left = deadline - io_now_ms();
	if (left <= 0)
		return 0;
	if (G.gnutls_record_get_direction(t->s))
		return fd_ready(t->wfd, POLLOUT, (int)left);
	return fd_ready(t->rfd, POLLIN, (int)left);
}

/* ------------------------------------------------------------------ */
/* Records, through io.c                                               */

/* A client that asks to renegotiate gets the no_renegotiation warning
 * and the session goes on (RFC 5246 7.2.2, what OpenSSL does with
 * SSL_OP_NO_RENEGOTIATION); a client that keeps asking is cut off. Logged
 * here: the read that met it has nothing to report to its caller. */
static int refuse_renegotiation(struct tls *t)
{
	t->renegotiations++;
	log_event(LOG_L_WARNING, "event", "tls-renegotiation", "action",
		  t->renegotiations > MAX_RENEGOTIATIONS ? "disconnect"
							 : "refused",
		  NULL);
	if (t->renegotiations > MAX_RENEGOTIATIONS)
		return -1;
	/* a warning alert fits the socket buffer; if not, it is dropped */
	G.gnutls_alert_send(t->s, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
	return 0;
}

static ssize_t tls_read(struct io *io, void *p, size_t n)
{
	struct tls *t = io->tr_state;
	for (;;) {
		ssize_t r = G.gnutls_record_recv(t->s, p, n);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_AGAIN) {
			errno = EAGAIN; /* io.c waits with the timeout */
			return -1;
		}
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_REHANDSHAKE && refuse_renegotiation(t) == 0)
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0; /* the peer closed without close_notify */
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue; /* it took a record: no loop without input */
		errno = G.gnutls_error_is_fatal((int)r) ? EPROTO : EAGAIN;
		return -1;
	}
}

static ssize_t tls_write(struct io *io, const void *p, size_t n)
{
	struct tls *t = io->tr_state;
	for (;;) {
		/* after GNUTLS_E_AGAIN io.c calls again with the same bytes,
		 * as GnuTLS wants */
		ssize_t r = G.gnutls_record_send(t->s, p, n);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_AGAIN) {
			errno = EAGAIN; /* io.c waits with the timeout */
			return -1;
		}
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		errno = EPIPE;
		return -1;
	}
}

static int tls_pending(struct io *io)
{
	struct tls *t = io->tr_state;
	return G.gnutls_record_check_pending(t->s) > 0;
}

static const struct io_transport tls_transport = {tls_read, tls_write,
						  tls_pending};

/* ------------------------------------------------------------------ */
/* Sessions and the handshake                                          */

static void free_tls(struct tls *t)
{
	if (t->s)
		G.gnutls_deinit(t->s);
	if (t->cred)
		G.gnutls_certificate_free_credentials(t->cred);
	free(t);
}

/* Tells the peer why its handshake failed with the alert that fits err,
 * unless the peer is gone or sent its own; says which in why. */
static void alert_failure(struct tls *t, int err, long long deadline,
			  char *why, size_t n)
{
	size_t len = strlen(why);
	if (err == GNUTLS_E_FATAL_ALERT_RECEIVED ||
	    err == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		const char *a = G.gnutls_alert_get_name(G.gnutls_alert_get(t->s));
		fmt_snprintf(why + len, n - len, " (alert %s received)", a ? a : "?");
		return;
	}
	if (err == GNUTLS_E_PREMATURE_TERMINATION ||
	    err == GNUTLS_E_PUSH_ERROR || err == GNUTLS_E_PULL_ERROR)
		return;
	int level;
	int alert = G.gnutls_error_to_alert(err, &level);
	if (alert < 0)
		return;
	int r;
	do {
		r = G.gnutls_alert_send(t->s, (gnutls_alert_level_t)level,
					(gnutls_alert_description_t)alert);
	} while (r == GNUTLS_E_AGAIN && wait_until(t, deadline) > 0);
	const char *a = G.gnutls_alert_get_name((gnutls_alert_description_t)alert);
	if (r >= 0)
		fmt_snprintf(why + len, n - len, " (alert %s sent)", a ? a : "?");
}

/* Why the peer's certificate was refused (tls = verify), appended to why
 * in words an administrator can act on, as Postfix's "untrusted issuer"
 * and "hostname mismatch": GnuTLS's own error text says only that the
 * verification failed. */
static void verify_failure(struct tls *t, char *why, size_t n)
{
	static const struct {
		unsigned bit;
		const char *text;
	} reasons[] = {
		{GNUTLS_CERT_SIGNER_NOT_FOUND, "issuer not trusted"},
		{GNUTLS_CERT_SIGNER_NOT_CA, "issuer is not a CA"},
		{GNUTLS_CERT_UNEXPECTED_OWNER, "name does not match"},
		{GNUTLS_CERT_EXPIRED, "expired"},
		{GNUTLS_CERT_NOT_ACTIVATED, "not yet valid"},
		{GNUTLS_CERT_REVOKED, "revoked"},
		{GNUTLS_CERT_INSECURE_ALGORITHM, "insecure algorithm"},
		{GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature"},
		{GNUTLS_CERT_PURPOSE_MISMATCH, "not for a TLS server"},
	};
	unsigned st = G.gnutls_session_get_verify_cert_status(t->s);
	if (st == (unsigned)-1 || !st)
		return;
	const char *sep = " (certificate: ";
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
		if (!(st & reasons[i].bit))
			continue;
		size_t len = strlen(why);
		fmt_snprintf(why + len, n - len, "%s%s", sep, reasons[i].text);
		sep = ", ";
	}
	size_t len = strlen(why);
	if (*sep == ',')
		fmt_snprintf(why + len, n - len, ")");
}

/* The handshake on a prepared session, within one deadline (the session
 * timeout) however the peer spreads its bytes; io carries TLS afterwards.
 * On failure t is freed. */
static int handshake(struct io *io, struct tls *t, char *why, size_t n)
{
	t->rfd = io->rfd;
	t->wfd = io->wfd;
	t->timeout_ms = io->timeout_ms > 0 ? io->timeout_ms : 300000;
	G.gnutls_transport_set_ptr(t->s, t);
	G.gnutls_transport_set_pull_function(t->s, pull);
	G.gnutls_transport_set_push_function(t->s, push);
	G.gnutls_transport_set_pull_timeout_function(t->s, pull_timeout);
	long long deadline = io_now_ms() + t->timeout_ms;
	int r;
	for (;;) {
		r = G.gnutls_handshake(t->s);
		if (r >= 0)
			break;
		if (G.gnutls_error_is_fatal(r)) {
			fmt_snprintf(why, n, "TLS handshake failed: %s",
				 G.gnutls_strerror(r));
			if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
				verify_failure(t, why, n);
			alert_failure(t, r, deadline, why, n);
			free_tls(t);
			return -1;
		}
		/* a warning alert took a record: go on, within the deadline */
		int w = r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED
				? wait_until(t, deadline)
				: io_now_ms() < deadline;
		if (w <= 0) {
			fmt_snprintf(why, n, "TLS handshake %s after %d s",
				 w == 0 ? "timed out" : "failed",
				 t->timeout_ms / 1000);
			free_tls(t);
			return -1;
		}
	}
	io->tr = &tls_transport;
	io->tr_state = t;
	return 0;
}

/* A session of the given side with the given priorities (the server's
 * order first on a server) and empty certificate credentials; NULL with
 * why. */
/* A server's priority string as GnuTLS gets it: TLS 1.2 and 1.3 only
 * (SPEC 8) whatever a tls-priority adds, the server's order first. */
static void server_priority(const char *priority, struct buf *out)
{
	buf_printf(out, "%s:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
			":%%SERVER_PRECEDENCE",
		   priority);
}

static struct tls *new_tls(unsigned side, const char *priority, char *why,
			   size_t n)
{
	struct tls *t = xcalloc(1, sizeof *t);
	struct buf prio = {0};
	if (side == GNUTLS_SERVER)
		server_priority(priority, &prio);
	else
		buf_adds(&prio, priority);
	int r;
	const char *step = "gnutls_init";
	if ((r = G.gnutls_init(&t->s, side | GNUTLS_NONBLOCK)) < 0)
		goto fail;
	step = "priorities";
	if ((r = G.gnutls_priority_set_direct(t->s, prio.s, NULL)) < 0)
		goto fail;
	step = "credentials";
	if ((r = G.gnutls_certificate_allocate_credentials(&t->cred)) < 0)
		goto fail;
	buf_free(&prio);
	return t;
fail:
	fmt_snprintf(why, n, "TLS %s failed: %s", step, G.gnutls_strerror(r));
	buf_free(&prio);
	free_tls(t);
	return NULL;
}

/* Attaches the credentials, or fails with why and frees t. */
static int set_credentials(struct tls *t, char *why, size_t n)
{
	int r = G.gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred);
	if (r >= 0)
		return 0;
	fmt_snprintf(why, n, "TLS credentials failed: %s", G.gnutls_strerror(r));
	free_tls(t);
	return -1;
}

struct tls *tls_server_prepare(const char *priority,
			       const struct tls_keypair *pairs, size_t npairs,
			       char *why, size_t n)
{
	struct tls *t;
	if (load(why, n) < 0 ||
	    !(t = new_tls(GNUTLS_SERVER, priority, why, n)))
		return NULL;
	for (size_t i = 0; i < npairs; i++) {
		gnutls_datum_t c = {(unsigned char *)pairs[i].cert,
				    (unsigned)pairs[i].certlen};
		gnutls_datum_t k = {(unsigned char *)pairs[i].key,
				    (unsigned)pairs[i].keylen};
		int r = G.gnutls_certificate_set_x509_key_mem2(
			t->cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
		if (r < 0) {
			fmt_snprintf(why, n, "TLS certificate and key %zu failed: %s",
				 i + 1, G.gnutls_strerror(r));
			free_tls(t);
			return NULL;
		}
	}
	/* DHE for clients that do not name an RFC 7919 group: ffdhe2048, as
	 * Mozilla's intermediate profile */
	G.gnutls_certificate_set_known_dh_params(t->cred,
						 GNUTLS_SEC_PARAM_MEDIUM);
	return set_credentials(t, why, n) < 0 ? NULL : t;
}

int tls_server_handshake(struct io *io, struct tls *t, char *why, size_t n)
{
	return handshake(io, t, why, n);
}

int tls_keypair_check(const struct tls_keypair *pair, char *why, size_t n)
{
	if (load(why, n) < 0)
		return -2;
	struct tls *t = tls_server_prepare("NORMAL", pair, 1, why, n);
	if (!t)
		return -1;
	free_tls(t);
	return 0;
}

/* Whether name may go as SNI: RFC 6066 3 permits no address literal,
 * bracketed or not. */
static int sni_name(const char *name)
{
	unsigned char a[16];
	return name && *name && name[0] != '[' &&
	       inet_pton(AF_INET, name, a) != 1 &&
	       inet_pton(AF_INET6, name, a) != 1;
}

int tls_client_start(struct io *io, const char *name, int verify, char *why,
		     size_t n)
{
	struct tls *t;
	if (load(why, n) < 0 ||
	    !(t = new_tls(GNUTLS_CLIENT, PRIORITY_CLIENT, why, n)))
		return -1;
	int r;
	if (verify &&
	    (r = G.gnutls_certificate_set_x509_system_trust(t->cred)) < 0) {
		fmt_snprintf(why, n, "TLS system trust store failed: %s",
			 G.gnutls_strerror(r));
		free_tls(t);
		return -1;
	}
	if (set_credentials(t, why, n) < 0)
		return -1;
	if (sni_name(name))
		G.gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name,
					 strlen(name));
	if (verify)
		G.gnutls_session_set_verify_cert(t->s, name, 0);
	return handshake(io, t, why, n);
}

int tls_priority_check(const char *priority, size_t *at, char *why, size_t n)
{
	*at = 0;
	if (load(why, n) < 0)
		return -2;
	gnutls_priority_t p;
	const char *err = NULL;
	int r = G.gnutls_priority_init(&p, priority, &err);
	if (r < 0) {
		fmt_snprintf(why, n, "%s", G.gnutls_strerror(r));
		if (err && err >= priority)
			*at = (size_t)(err - priority);
		return -1;
	}
	G.gnutls_priority_deinit(p);
	/* as sessions use it: with the floor, some version must be left */
	struct buf full = {0};
	server_priority(priority, &full);
	int nv = 0;
	if (G.gnutls_priority_init(&p, full.s, NULL) >= 0) {
		const unsigned *versions;
		nv = G.gnutls_priority_protocol_list(p, &versions);
		G.gnutls_priority_deinit(p);
	}
	buf_free(&full);
	if (nv <= 0) {
		fmt_snprintf(why, n, "it leaves no protocol version once TLS "
				     "1.0 and 1.1 are taken out (only TLS 1.2 "
				     "and 1.3 are ever offered)");
		return -1;
	}
	return 0;
}

void tls_describe(const struct io *io, char *out, size_t n)
{
	const struct tls *t = io->tr_state;
	if (!t || io->tr != &tls_transport) {
		fmt_snprintf(out, n, "none");
		return;
	}
	const char *v = G.gnutls_protocol_get_name(
		G.gnutls_protocol_get_version(t->s));
	const char *c = G.gnutls_cipher_get_name(G.gnutls_cipher_get(t->s));
	fmt_snprintf(out, n, "%s %s", v ? v : "TLS", c ? c : "");
}

void tls_end(struct io *io)
{
	if (io->tr != &tls_transport)
		return;
	struct tls *t = io->tr_state;
	/* close_notify, waiting for the socket no longer than the timeout */
	long long deadline = io_now_ms() + t->timeout_ms;
	while (G.gnutls_bye(t->s, GNUTLS_SHUT_WR) == GNUTLS_E_AGAIN &&
	       wait_until(t, deadline) > 0)
		;
	free_tls(t);
	io->tr_state = NULL;
}
