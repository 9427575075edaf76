/*
 * tls.c - TLS with a dlopen'd GnuTLS (see tls.h).
 *
 * Only the GnuTLS header is used at build time; every function is looked
 * up in libgnutls.so.30 when the first TLS connection starts, so the
 * binary carries no link-time dependency on it.
 */
#include "tls.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define LIBGNUTLS "libgnutls.so.30"
#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#define FN(name) __typeof__(name) *name
static struct {
	int loaded;
	FN(gnutls_global_init);
	FN(gnutls_init);
	FN(gnutls_deinit);
	FN(gnutls_priority_set_direct);
	FN(gnutls_certificate_allocate_credentials);
	FN(gnutls_certificate_free_credentials);
	FN(gnutls_certificate_set_x509_system_trust);
	FN(gnutls_certificate_set_x509_key_mem2);
	FN(gnutls_credentials_set);
	FN(gnutls_server_name_set);
	FN(gnutls_session_set_verify_cert);
	FN(gnutls_transport_set_int2);
	FN(gnutls_handshake);
	FN(gnutls_handshake_set_timeout);
	FN(gnutls_record_send);
	FN(gnutls_record_recv);
	FN(gnutls_record_check_pending);
	FN(gnutls_bye);
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
		snprintf(why, n, "cannot load %s: %s", LIBGNUTLS, dlerror());
		G.loaded = -1;
		return -1;
	}
#define SYM(name)                                                     \
	do {                                                          \
		*(void **)&G.name = dlsym(h, #name);                  \
		if (!G.name) {                                        \
			snprintf(why, n, "%s lacks %s", LIBGNUTLS, #name); \
			G.loaded = -1;                                \
			return -1;                                    \
		}                                                     \
	} while (0)
	SYM(gnutls_global_init);
	SYM(gnutls_init);
	SYM(gnutls_deinit);
	SYM(gnutls_priority_set_direct);
	SYM(gnutls_certificate_allocate_credentials);
	SYM(gnutls_certificate_free_credentials);
	SYM(gnutls_certificate_set_x509_system_trust);
	SYM(gnutls_certificate_set_x509_key_mem2);
	SYM(gnutls_credentials_set);
	SYM(gnutls_server_name_set);
	SYM(gnutls_session_set_verify_cert);
	SYM(gnutls_transport_set_int2);
	SYM(gnutls_handshake);
	SYM(gnutls_handshake_set_timeout);
	SYM(gnutls_record_send);
	SYM(gnutls_record_recv);
	SYM(gnutls_record_check_pending);
	SYM(gnutls_bye);
	SYM(gnutls_strerror);
	SYM(gnutls_error_is_fatal);
	SYM(gnutls_protocol_get_version);
	SYM(gnutls_protocol_get_name);
	SYM(gnutls_cipher_get);
	SYM(gnutls_cipher_get_name);
#undef SYM
	if (G.gnutls_global_init() < 0) {
		snprintf(why, n, "gnutls_global_init failed");
		G.loaded = -1;
		return -1;
	}
	G.loaded = 1;
	return 0;
}

struct tls {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
};

static ssize_t tls_read(struct io *io, void *p, size_t n)
{
	struct tls *t = io->tr_state;
	for (;;) {
		ssize_t r = G.gnutls_record_recv(t->s, p, n);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0; /* the peer closed without close_notify */
		if (r < 0) {
			errno = EPROTO;
			return -1;
		}
		return r;
	}
}

static ssize_t tls_write(struct io *io, const void *p, size_t n)
{
	struct tls *t = io->tr_state;
	for (;;) {
		ssize_t r = G.gnutls_record_send(t->s, p, n);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r < 0) {
			errno = EPIPE;
			return -1;
		}
		return r;
	}
}

static int tls_pending(struct io *io)
{
	struct tls *t = io->tr_state;
	return G.gnutls_record_check_pending(t->s) > 0;
}

static const struct io_transport tls_transport = {tls_read, tls_write,
						  tls_pending};

static void free_tls(struct tls *t)
{
	if (t->s)
		G.gnutls_deinit(t->s);
	if (t->cred)
		G.gnutls_certificate_free_credentials(t->cred);
	free(t);
}

/* The handshake on a prepared session; io carries TLS afterwards. */
static int handshake(struct io *io, struct tls *t, char *why, size_t n)
{
	G.gnutls_transport_set_int2(t->s, io->rfd, io->wfd);
	G.gnutls_handshake_set_timeout(t->s, (unsigned)io->timeout_ms);
	/* the handshake blocks: bound each wait on the socket */
	struct timeval tv = {io->timeout_ms / 1000, (io->timeout_ms % 1000) * 1000};
	setsockopt(io->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(io->wfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int r;
	do {
		r = G.gnutls_handshake(t->s);
	} while (r < 0 && !G.gnutls_error_is_fatal(r));
	if (r < 0) {
		snprintf(why, n, "TLS handshake failed: %s", G.gnutls_strerror(r));
		free_tls(t);
		return -1;
	}
	io->tr = &tls_transport;
	io->tr_state = t;
	return 0;
}

/* A session of the given side with TLS 1.2+ priorities and empty
 * certificate credentials; NULL with why. */
static struct tls *new_tls(unsigned side, char *why, size_t n)
{
	struct tls *t = xcalloc(1, sizeof *t);
	int r;
	const char *step = "gnutls_init";
	if ((r = G.gnutls_init(&t->s, side)) < 0)
		goto fail;
	step = "priorities";
	if ((r = G.gnutls_priority_set_direct(t->s, PRIORITY, NULL)) < 0)
		goto fail;
	step = "credentials";
	if ((r = G.gnutls_certificate_allocate_credentials(&t->cred)) < 0)
		goto fail;
	return t;
fail:
	snprintf(why, n, "TLS %s failed: %s", step, G.gnutls_strerror(r));
	free_tls(t);
	return NULL;
}

/* Attaches the credentials, or fails with why and frees t. */
static int set_credentials(struct tls *t, char *why, size_t n)
{
	int r = G.gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred);
	if (r >= 0)
		return 0;
	snprintf(why, n, "TLS credentials failed: %s", G.gnutls_strerror(r));
	free_tls(t);
	return -1;
}

int tls_server_start(struct io *io, const char *cert, size_t certlen,
		     const char *key, size_t keylen, char *why, size_t n)
{
	struct tls *t;
	if (load(why, n) < 0 || !(t = new_tls(GNUTLS_SERVER, why, n)))
		return -1;
	gnutls_datum_t c = {(unsigned char *)cert, (unsigned)certlen};
	gnutls_datum_t k = {(unsigned char *)key, (unsigned)keylen};
	int r = G.gnutls_certificate_set_x509_key_mem2(t->cred, &c, &k,
						       GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		snprintf(why, n, "TLS certificate and key failed: %s",
			 G.gnutls_strerror(r));
		free_tls(t);
		return -1;
	}
	if (set_credentials(t, why, n) < 0)
		return -1;
	return handshake(io, t, why, n);
}

int tls_client_start(struct io *io, const char *name, int verify, char *why,
		     size_t n)
{
	struct tls *t;
	if (load(why, n) < 0 || !(t = new_tls(GNUTLS_CLIENT, why, n)))
		return -1;
	int r;
	if (verify &&
	    (r = G.gnutls_certificate_set_x509_system_trust(t->cred)) < 0) {
		snprintf(why, n, "TLS system trust store failed: %s",
			 G.gnutls_strerror(r));
		free_tls(t);
		return -1;
	}
	if (set_credentials(t, why, n) < 0)
		return -1;
	if (name && *name && name[0] != '[')
		G.gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name,
					 strlen(name));
	if (verify)
		G.gnutls_session_set_verify_cert(t->s, name, 0);
	return handshake(io, t, why, n);
}

void tls_describe(const struct io *io, char *out, size_t n)
{
	const struct tls *t = io->tr_state;
	if (!t || io->tr != &tls_transport) {
		snprintf(out, n, "none");
		return;
	}
	const char *v = G.gnutls_protocol_get_name(
		G.gnutls_protocol_get_version(t->s));
	const char *c = G.gnutls_cipher_get_name(G.gnutls_cipher_get(t->s));
	snprintf(out, n, "%s %s", v ? v : "TLS", c ? c : "");
}

void tls_end(struct io *io)
{
	if (io->tr != &tls_transport)
		return;
	struct tls *t = io->tr_state;
	G.gnutls_bye(t->s, GNUTLS_SHUT_WR);
	free_tls(t);
	io->tr_state = NULL;
}
