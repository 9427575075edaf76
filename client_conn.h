/*
 * client_conn.h - one onward SMTP or LMTP connection, shared by the
 * spool's client (client.c) and the session's live proxy (proxy.c).
 *
 * Owns: opening a connection to the first address of a destination that
 * answers (connect with the destination's connect-timeout, greeting,
 * EHLO or LHLO, STARTTLS and AUTH as its [relay] says), what the peer
 * advertised, sending a command, reading one reply, a peer's reply as
 * ours ("HOST said: ..."), and the wire form of stored text (CRLF line
 * ends, dot-stuffing, folding past 998 octets).
 *
 * Never: decides what a reply means for a message, or touches the spool.
 */
#ifndef POSTMASTER_CLIENT_CONN_H
#define POSTMASTER_CLIENT_CONN_H

#include "client.h"
#include "client_dest.h"
#include "io.h"
#include "util.h"

/* What the peer's EHLO or LHLO reply advertised. */
struct client_ext {
	int pipelining, eightbit, binary, chunking, smtputf8, starttls, dsn;
	int auth_plain, auth_login;
	unsigned long long size;
};

struct client_conn {
	struct io io;
	int fd;
	char name[320];   /* "host[ip]", or the unix socket's path */
	const char *host; /* the name TLS checks and sends (SNI) */
	struct client_ext ext;
	int lmtp;
	int tls_mode;     /* RTLS_* */
	int tls;          /* TLS is on */
	int unsynced;     /* replies may still be owed: not kept for reuse */
	int timed_out;    /* the last reply was not read in time */
};

/*
 * Opens a session with the first of the candidates c[*next..n) that
 * gives one: connected, greeted, EHLO/LHLO, STARTTLS and AUTH done.
 * 0 with *next at the one that serves; -1 with why (a 4xx for every
 * recipient) when none does, or when j has had CLIENT_MAX_SESSIONS
 * sessions already; at once with 554 5.4.6 when an SMTP peer greets
 * or answers EHLO with our own host name (a loop).
 */
int client_conn_open(struct client_job *j, const struct client_cand *c,
		     int n, int *next, struct client_conn *conn,
		     struct reply *why);
/* The destination's connect-timeout in milliseconds ([relay] key, or 30
 * seconds for hosts and MX). */
int client_connect_ms(const struct client_job *j);
/* Its timeout for each reply ([relay] timeout, or 300 seconds). */
int client_reply_ms(const struct client_job *j);
/* QUIT (when quit), then closes the connection. */
void client_hang_up(struct client_conn *c, int quit);

/* AUTH PLAIN or LOGIN to j's relay when it has an auth-user, never in
 * clear text: 0 (logged in, or nothing to do), or -1 with why (a 4xx:
 * the next address may serve). */
int client_authenticate(struct client_job *j, struct client_conn *c,
			struct buf *t, struct reply *why);
/* Queues one command line (CRLF added); io_flush() sends it. */
void client_cmd(struct client_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reads one reply; its lines (without "NNN-") joined by '\n' into text.
 * The code, or -1 when the connection broke or timed out (timed_out
 * says which), -2 for a line that is no reply. */
int client_read_reply(struct client_conn *c, struct buf *text);
/* Sending the message failed: the refusal (a 4xx or 5xx, not 421) that
 * a peer sent before the end of the data and then closed or stopped
 * reading (RFC 5321 does not allow it; real servers do it), read from
 * what is already in our input after any 2xx (BDAT chunks acknowledged
 * and not yet read); -1 when there is none. The connection
 * is unsynced afterwards. */
#define EARLY_REPLY_MS 2000
int client_early_refusal(struct client_conn *c, struct buf *text);
/* "timed out" or "lost connection": why the last reply did not come. */
const char *client_lost(const struct client_conn *c);
/* A peer's reply as ours: its enhanced code when it gives one of the
 * right class, else a default; text "HOST said: ..." (escaped, one
 * line). */
void client_peer_reply(struct reply *r, int code, const char *text,
		       const char *host);
/* A peer's reply that refuses: one that is no verdict (a 3xx where
 * none belongs) is made a temporary failure, 451. */
void client_peer_refusal(struct reply *r, int code, const char *text,
			 const char *host);
/* The same with dflt as the default enhanced code's subject and detail
 * (a RCPT's 250 without one is 2.1.5). */
void client_peer_reply_esc(struct reply *r, int code, const char *text,
			   const char *host, enum esc dflt);
/* MAIL's RET= and ENVID= for a peer that advertises DSN (RFC 3461 5.2),
 * appended to out; nothing for one that does not. */
void client_mail_dsn_params(const struct client_job *j, int peer_dsn,
			    struct buf *out);

/* How stored text leaves: LF becomes CRLF, a line that would pass 998
 * octets is folded with CRLF SPACE (as Postfix's smtp_line_length_limit
 * does), and for DATA a leading dot is doubled. The one place that
 * decides, for the SIZE count and for the bytes sent alike. Zeroed but
 * for bol = 1, it is at the start of a line. */
struct client_wire {
	long col;
	int bol;
};
/* Appends the wire form of ch to out (when not NULL); returns how many
 * octets it takes, not counting the dot-stuffing that SIZE ignores. */
int client_wire_byte(struct client_wire *w, char ch, int stuff,
		     struct buf *out);

#endif
