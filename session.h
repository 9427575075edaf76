/*
 * session.h - the server side: one SMTP or LMTP session (SPEC 4, 5, 7).
 *
 * session_main() serves the connection that the launcher handed over
 * (stdin/stdout, or fd 3 from systemd with LISTEN_FDS=1), from the
 * greeting to QUIT, and returns the process's exit status.
 *
 * Owns: the whole life of one connection's process on the server side;
 * its parts live in session*.c, data.c and handoff.c behind the private
 * session_state.h.
 *
 * Never: returns before the client has had its last reply, or leaves a
 * message acknowledged that is neither delivered nor in the spool.
 */
#ifndef POSTMASTER_SESSION_H
#define POSTMASTER_SESSION_H

#include "cf.h"

/* smtpd_name: --smtpd=NAME, or NULL to choose by the local address.
 * cf_ok: whether the configuration parsed (if not: 421 and exit). */
int session_main(struct cf *cf, const char *smtpd_name, int cf_ok);

#endif
