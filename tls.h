/*
 * tls.h - TLS over an io connection, with GnuTLS loaded by dlopen the
 * first time a connection needs it (SPEC 11: a session that never says
 * STARTTLS never maps the library).
 *
 * Owns: loading GnuTLS, the handshake (TLS 1.2 and 1.3 only, SPEC 8) and
 * its one deadline, the priorities (server order, the default profiles),
 * the certificates a server offers, certificate verification against the
 * system trust store and a host name, the alert that a failed handshake
 * sends, and the io transport that carries records afterwards: it never
 * blocks, so io.c waits for it with poll() and the session timeout.
 *
 * Never: falls back to clear text by itself (the caller decides), hides
 * why a handshake failed, or lets a peer renegotiate.
 */
#ifndef POSTMASTER_TLS_H
#define POSTMASTER_TLS_H

#include <stddef.h>

#include "io.h"

/* Opportunistic TLS (port 25): anything forward-secret with an AEAD
 * cipher, since the alternative for a peer we refuse is clear text. */
#define TLS_PRIORITY_OPPORTUNISTIC                                          \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-SHA1"
/* Listeners that take passwords: Mozilla's "intermediate" profile (TLS
 * 1.3, and TLS 1.2 with ECDHE or DHE and AES-GCM or ChaCha20-Poly1305). */
#define TLS_PRIORITY_INTERMEDIATE                                           \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-SHA1:"            \
	"-AES-128-CCM:-AES-256-CCM:-GROUP-ALL:+GROUP-X25519:"               \
	"+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-FFDHE2048:"              \
	"+GROUP-FFDHE3072:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1"

/* One certificate chain and its key, PEM text read before privileges
 * were dropped (SPEC 10). */
struct tls_keypair {
	const char *cert, *key;
	size_t certlen, keylen;
};

/* Starts TLS as a client on io's connection. name is sent as SNI and,
 * with verify, must match the peer's certificate, which must chain to the
 * system trust store. -1 with a reason when it fails. */
int tls_client_start(struct io *io, const char *name, int verify, char *why,
		     size_t n);
/* The server side of TLS with the given priority string (the server's
 * order wins) and certificates (GnuTLS offers each client the one its
 * algorithms allow), made before anything is said to the client: NULL
 * with a reason when GnuTLS cannot be loaded or refuses a pair (a key
 * that does not parse or does not match its certificate). */
struct tls;
struct tls *tls_server_prepare(const char *priority,
			       const struct tls_keypair *pairs, size_t npairs,
			       char *why, size_t n);
/* --check: whether GnuTLS takes a certificate and key pair: 0, -1 with
 * why, -2 with why when GnuTLS cannot be loaded. */
int tls_keypair_check(const struct tls_keypair *pair, char *why, size_t n);
/* Starts a prepared t on io's connection, which owns it from then on (t
 * is freed when the handshake fails): -1 with a reason (and the alert
 * sent) when it does. */
int tls_server_handshake(struct io *io, struct tls *t, char *why, size_t n);
/* 0 when GnuTLS takes priority; else -1 with why and, when GnuTLS says
 * where, the offset of the bad part in *at (else *at is 0); -2 with why
 * when GnuTLS cannot be loaded. */
int tls_priority_check(const char *priority, size_t *at, char *why, size_t n);
/* "TLSv1.3 (cipher)" of a started connection, for logs. */
void tls_describe(const struct io *io, char *out, size_t n);
/* Says goodbye and frees the TLS state of io (nothing when there is none). */
void tls_end(struct io *io);

#endif
