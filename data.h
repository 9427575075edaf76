/*
 * data.h - the message bytes of DATA and BDAT (SPEC 5, RFC 5321 4.1.4,
 * RFC 3030).
 *
 * Owns: the byte machine that finds CRLF.CRLF, unstuffs dots and applies
 * the bare-newline policy; the store that counts the message against its
 * size limit and buffers it onto a file; watching the client's header
 * section (Received count, Delivered-To); the submission fix-ups of RFC
 * 6409 8 (Bcc dropped; Date, Message-ID, From added when missing; a
 * local part alone in an address field completed with the host); the
 * text of our Received header.
 *
 * Never: reads the connection, replies, logs, or decides what happens to
 * a message: it reports, and the session decides.
 */
#ifndef POSTMASTER_DATA_H
#define POSTMASTER_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

#define DATA_MAX_DELIVERED_TO 64 /* Delivered-To values kept */
#define DATA_FIX_HELD_MAX 65536  /* an address field the fix-ups hold */

/* The DATA/BDAT byte machine. Zeroed, it expects the start of a line. */
struct datamachine {
	int state;
	int reject_bare; /* bare-newline = reject */
	int bdat;        /* no dot-unstuffing, no end of data */
	int saw_bare;    /* a bare CR or LF was seen */
	int after_bare;  /* the last line ended in a bare LF */
	int done;        /* CRLF.CRLF seen */
};

/* Feeds n input bytes; appends the message bytes to out (LF line ends),
 * which must have room for 2 * n bytes. Returns how many input bytes were
 * consumed (less than n only when the end of the data was found). */
size_t data_feed(struct datamachine *dm, const char *in, size_t n,
		 char *out, size_t *outlen);

/* The last BDAT chunk ended: a CR the machine still holds had no LF, so
 * it was bare. Appends what it stands for to out (at most 1 byte). */
void data_finish_chunks(struct datamachine *dm, char *out, size_t *outlen);

/* The client's header section as it streams by. */
struct headerwatch {
	int on;              /* still inside the header section */
	char line[300];      /* the current field, unfolded, cut at its size */
	size_t len;
	int held;            /* line holds a field whose next line may continue it */
	int received;        /* Received fields */
	char **delivered_to; /* Delivered-To values, at most 64 */
	unsigned ndelivered;
};

void headers_watch(struct headerwatch *hw, const char *p, size_t n);
/* Whether a Delivered-To field names rcpt (a forwarding loop). */
int headers_delivered_to(const struct headerwatch *hw, const char *rcpt);
/* Frees the values and starts over, not watching. */
void headers_reset(struct headerwatch *hw);

/* What a submission's header lacks: the fields the fix-ups add. */
enum { FIX_DATE = 1, FIX_MSGID = 2, FIX_FROM = 4 };

/*
 * Appends to b the fields of RFC 6409 8 that have (FIX_*) says are not
 * there, each ended by eol: Date (now), Message-ID <id@host>, From (the
 * envelope sender, "" for MAILER-DAEMON@host, with name as its phrase:
 * quoted, control characters dropped).
 */
void data_fixup_fields(struct buf *b, unsigned have, const char *from,
		       const char *name, const char *id, const char *host,
		       const char *eol);

/* The fix-ups applied as the header streams into the store. */
struct submitfix {
	int on;
	int state;
	char name[16];  /* the start of a line, until its field name is known */
	size_t nlen;
	int drop;       /* the current field is Bcc, continuations too */
	/* an address field (From, To, ...), held whole to complete its
	 * local parts at host; up to DATA_FIX_HELD_MAX, then it passes as
	 * it is */
	struct buf held;
	unsigned have;  /* FIX_* */
	const char *from, *id, *host; /* for data_fixup_fields */
	int crlf;       /* binary mail: lines end in CRLF */
};

/* Where the message bytes go: a file (fd >= 0), or nowhere, counted
 * either way against max. */
struct datastore {
	int fd;
	char *wbuf; /* 64 KiB, allocated once there is a file */
	size_t wlen;
	uint64_t size, max;
	/* the client's octets, its line ends counted as CRLF (RFC 1870),
	 * what max limits */
	uint64_t counted;
	/* the octets of the message as stored and delivered: our header
	 * fields and the fix-ups' changes included (size= of the logs) */
	uint64_t stored;
	int lf_eol; /* text mail: each stored newline was a line end, CRLF */
	int toobig; /* the message passed max: nothing more is stored */
	int failed; /* a write failed with err */
	int err;
	struct headerwatch hw;
	struct submitfix fix; /* on: the store applies the fix-ups */
	/* what goes to the file goes to tee too, as written (the proxy's
	 * onward copy); data_store_reset() leaves it */
	void (*tee)(void *arg, const char *p, size_t n);
	void *tee_arg;
};

/* Appends n message bytes (watching the headers). */
void data_store_write(struct datastore *ds, const char *p, size_t n);
/* The message is complete: fix-ups still due (a message without a
 * blank line after its header) are added. */
void data_store_end(struct datastore *ds);
/* Appends bytes that do not count against max nor as the client's. */
void data_store_write_ours(struct datastore *ds, const char *p, size_t n);
/* Writes out what is buffered: 0, or -1 when a write failed. */
int data_store_flush(struct datastore *ds);
/* Forgets the message (not the fd, which its owner closes). */
void data_store_reset(struct datastore *ds);
void data_store_free(struct datastore *ds);

/* What our Received header says (RFC 5321 4.4). */
struct received_info {
	const char *helo;     /* the client's greeting name, or NULL */
	const char *peer;     /* its IP address */
	int peer_is_pipe;     /* a local pipe: no address */
	const char *by;       /* our name */
	const char *protocol; /* RFC 3848 name, data_protocol() */
	const char *id;
	const char *rcpt;     /* the one recipient, or NULL */
	const char *spf;      /* a Received-SPF field folded with "\n\t", or NULL */
	int crlf;             /* binary: lines end in CRLF */
	time_t when;
};

/* Appends the Received-SPF field (if any) and the Received field. */
void data_received(struct buf *h, const struct received_info *ri);

/* RFC 3848 and RFC 6531 protocol names: greeting is "HELO", "EHLO" or
 * "LHLO"; then S for TLS and A for AUTH. */
const char *data_protocol(const char *greeting, int smtputf8, int tls,
			  int auth, char *out, size_t n);

#endif
