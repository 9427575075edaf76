/*
 * dsn.h - the words of RFC 3461 (delivery status notifications) as a
 * session receives them and the spool keeps them: xtext, NOTIFY, RET,
 * ENVID and ORCPT.
 *
 * Owns: their syntax and their one text form (spool, logs, --queue).
 *
 * Never: replies, logs or does I/O; it decides nothing about when a
 * notification is sent.
 */
#ifndef POSTMASTER_DSN_H
#define POSTMASTER_DSN_H

#include <stddef.h>

#define DSN_ENVID_MAX 100 /* RFC 3461 4.4 */
#define DSN_ORCPT_MAX 500 /* RFC 3461 4.2 */

/* NOTIFY= as bits; 0 when the client did not ask */
enum {
	DSN_NEVER = 1,
	DSN_SUCCESS = 2,
	DSN_FAILURE = 4,
	DSN_DELAY = 8,
};
/* RET= */
enum dsn_ret { DSN_RET_NONE, DSN_RET_FULL, DSN_RET_HDRS };

/* Whether s[0..n) is xtext (RFC 3461 4): printable ASCII but '+' and
 * '=', and "+XX" with two upper-case hex digits. */
int dsn_xtext_valid(const char *s, size_t n);
/* Decodes xtext into out (at most n - 1 bytes and a NUL); -1 when it is
 * not xtext or does not fit. */
int dsn_xtext_decode(const char *s, size_t len, char *out, size_t n);
/* RFC 3461 4: s as xtext into out (truncated to n - 1 bytes); the
 * length of the whole encoding, or more than DSN_ENVID_MAX when s has a
 * byte xtext cannot carry (a control or 8-bit one). */
size_t dsn_xtext_encode(const char *s, char *out, size_t n);
/* NOTIFY's value: NEVER alone, or SUCCESS, FAILURE, DELAY each at most
 * once; -1 when malformed. */
int dsn_notify_parse(const char *s, size_t n, unsigned *notify);
/* ORCPT's value: addr-type ";" xtext, at most DSN_ORCPT_MAX chars. */
int dsn_orcpt_valid(const char *s, size_t n);
/* NOTIFY's value as it goes onward: "NEVER", or "SUCCESS,FAILURE,DELAY"
 * in part; "" for 0. */
const char *dsn_notify_param(unsigned notify, char buf[32]);
/* The same in lower case, as the spool and the logs write it. */
const char *dsn_notify_text(unsigned notify, char buf[32]);
/* The inverse of dsn_notify_text (lower or upper case). */
int dsn_notify_from_text(const char *s, unsigned *notify);

#endif
