/*
 * milter.h - the session's milters (SPEC 8): the Sendmail/Postfix milter
 * protocol, version 6, to the [milter] sections that [smtpd] milters
 * names, in order.
 *
 * Owns: one connection per milter for the whole SMTP session, option
 * negotiation, the events of each stage with the macros milters ask for,
 * what each reply means (accept, continue, reject, tempfail, replycode,
 * discard, quarantine, progress, skip), default-action when a milter is
 * down or breaks, and the end of message: the milters' modifications
 * written to a new file and applied to the envelope.
 *
 * Never: touches the client's connection (it fills a struct reply, and
 * the session replies), changes a message file it was given, or runs
 * when the [smtpd] names no milter: then s->milters stays NULL and every
 * function here returns at once, with no allocation and no syscall.
 *
 * For the live proxy: with milters configured the proxy must hold the
 * data (not stream it to the target) until milter_end_of_message() has
 * answered, then forward the file it returns (*out_fd, or the input when
 * *out_fd is -1) to the target, with the envelope as the milters left it
 * (s->from, s->rcpts: a milter may add, delete or change them; the
 * changed recipients must be routed again, which the spool does).
 */
#ifndef POSTMASTER_MILTER_H
#define POSTMASTER_MILTER_H

#include <sys/types.h>

#include "reply.h"

struct session;

enum milter_verdict {
	MILTER_CONTINUE = 0, /* go on (r untouched) */
	MILTER_REFUSE = 1,   /* reply r instead (4xx, 5xx; 421 ends the
				session: s->quit is set) */
	MILTER_DISCARD = 2,  /* end of message: accept it, deliver nothing */
};

/* Connects to the milters of s->smtpd and reports the connection. A
 * refusal here is remembered and given to HELO, EHLO and MAIL. */
void milter_connect(struct session *s);
enum milter_verdict milter_helo(struct session *s, struct reply *r);
/* args: MAIL's ESMTP parameters as the client wrote them ("" if none) */
enum milter_verdict milter_mail(struct session *s, const char *args,
				struct reply *r);
enum milter_verdict milter_rcpt(struct session *s, const char *rcpt,
				const char *args, struct reply *r);
enum milter_verdict milter_data(struct session *s, struct reply *r);

/*
 * The end of the message: the message (as stored: LF line ends, or CRLF
 * for BODY=BINARYMIME) is read from in_fd at in_off, its first our_size
 * bytes being the header fields postmaster put on top, which the milters
 * do not see. Headers, body chunks (at most 65535 bytes each) and the end
 * of message go to each milter in turn; each milter's modifications are
 * written to a new unlinked file that the next milter reads. *out_fd is
 * that file at offset 0 (the caller closes it), or -1 when nothing
 * changed the message. Changes of sender and recipients are applied to
 * s. MILTER_REFUSE with r, or MILTER_DISCARD (accepted, delivered to
 * nobody). *quarantine is a milter's reason to hold the message in the
 * spool until --release (valid until the next transaction), or NULL.
 */
enum milter_verdict milter_end_of_message(struct session *s, int in_fd,
					  off_t in_off, off_t our_size,
					  int *out_fd, const char **quarantine,
					  struct reply *r);

/* The transaction ended (RSET, a new MAIL, HELO, refused data). */
void milter_abort(struct session *s);
/* The session ends: QUIT to each milter, connections closed. */
void milter_quit(struct session *s);

#endif
