/*
 * tls.h - TLS over an io connection, with GnuTLS loaded by dlopen the
 * first time a connection needs it (SPEC 11: a session that never says
 * STARTTLS never maps the library).
 *
 * Owns: loading GnuTLS, the handshake (TLS 1.2 and 1.3 only, SPEC 8),
 * certificate verification against the system trust store and a host
 * name, and the io transport that carries records afterwards.
 *
 * Never: falls back to clear text by itself (the caller decides), or
 * hides why a handshake failed.
 */
#ifndef POSTMASTER_TLS_H
#define POSTMASTER_TLS_H

#include <stddef.h>

#include "io.h"

/* Starts TLS as a client on io's connection. name is sent as SNI and,
 * with verify, must match the peer's certificate, which must chain to the
 * system trust store. -1 with a reason when it fails. */
int tls_client_start(struct io *io, const char *name, int verify, char *why,
		     size_t n);
/* Starts TLS as a server: the certificate chain and key are PEM text read
 * before privileges were dropped (SPEC 10). -1 with a reason. */
int tls_server_start(struct io *io, const char *cert, size_t certlen,
		     const char *key, size_t keylen, char *why, size_t n);
/* "TLSv1.3 (cipher)" of a started connection, for logs. */
void tls_describe(const struct io *io, char *out, size_t n);
/* Says goodbye and frees the TLS state of io (nothing when there is none). */
void tls_end(struct io *io);

#endif
