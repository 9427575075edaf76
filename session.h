/*
 * session.h - the server side: one SMTP or LMTP session (SPEC 4, 5, 7).
 *
 * session_main() serves the connection that the launcher handed over
 * (stdin/stdout, or fd 3 from systemd with LISTEN_FDS=1), from the
 * greeting to QUIT, and returns the process's exit status.
 */
#ifndef POSTMASTER_SESSION_H
#define POSTMASTER_SESSION_H

#include "cf.h"

/* smtpd_name: --smtpd=NAME, or NULL to choose by the local address.
 * cf_ok: whether the configuration parsed (if not: 421 and exit). */
int session_main(struct cf *cf, const char *smtpd_name, int cf_ok);

/* The DATA/BDAT byte machine, exposed for the unit tests. */
struct datamachine {
	int state;
	int reject_bare; /* bare-newline = reject */
	int bdat;        /* no dot-unstuffing, no end of data */
	int saw_bare;    /* a bare CR or LF was seen */
	int after_bare;  /* the last line ended in a bare LF */
	int done;        /* CRLF.CRLF seen */
};

/* Feeds n input bytes; appends the message bytes to out (LF line ends).
 * Returns how many input bytes were consumed (less than n only when the
 * end of the data was found). */
size_t data_feed(struct datamachine *dm, const char *in, size_t n,
		 char *out, size_t *outlen);

#endif
