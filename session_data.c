/*
 * session_data.c - the message's transfer: DATA (RFC 5321 4.1.1.4) and
 * BDAT (RFC 3030), from the 354 or the first chunk to the handoff.
 *
 * Owns: the 354 and the reading up to CRLF.CRLF through data.c's
 * machine, BDAT's syntax and chunks (kept, or read and dropped when
 * refused so that their octets never run as commands, SPEC 5), the
 * slowest data rate a session keeps, and the end of the data: the
 * policy's last word, then handoff.c.
 *
 * Never: holds the message in memory (data.c streams it to the store),
 * or acknowledges it itself: handoff.c's verdict is the reply.
 */
#include "session_state.h"
#include "handoff.h"
#include "log.h"
#include "milter.h"
#include "proxy.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* The slowest data that keeps a session (bytes per second, io_data_pace:
 * Postfix's smtpd_min_data_rate). */
#define DATA_MIN_RATE 500

/* A BDAT chunk's bytes into the store: through the data machine but
 * for BODY=BINARYMIME. */
static void data_bytes(struct session *s, const char *p, size_t n)
{
	if (s->body == BODY_BINARYMIME) {
		data_store_write(&s->data, p, n);
		return;
	}
	char out[1024 * 2 + 4]; /* small: see data_receive() */
	while (n) {
		size_t take = n > 1024 ? 1024 : n;
		size_t ol = 0;
		data_feed(&s->dm, p, take, out, &ol);
		data_store_write(&s->data, out, ol);
		p += take;
		n -= take;
	}
}

/* Delivery's reply for the client, and a delivered message's mark. */
static void send_result(struct session *s, const struct reply *r)
{
	reply_dsn(s, r->code, r->dsn, "%s", r->text);
	if (r->code < 300)
		s->delivered = 1;
}

/* A refused DATA: with content already waiting, the client did not
 * wait for the 354 (RFC 2920 3.1) and is not talking SMTP with us. */
void session_refuse_data(struct session *s, const struct reply *r)
{
	if (io_input_pending(&s->io)) {
		reply(s, 554, ESC_OTHER_PROTOCOL_STATUS,
		      "Protocol error: message content sent before 354");
		s->quit = 1;
		return;
	}
	reply_dsn(s, r->code, r->dsn, "%s", r->text);
}

/* Reads the data up to CRLF.CRLF into the store; -1 when the session
 * ends instead (timeout, or the client went away). */
static int data_receive(struct session *s)
{
	/* small: every stack page a session touches is a page fault, and
	 * the connection's own buffer already saves the syscalls */
	char buf[1024], out[1024 * 2 + 4];
	io_data_pace(&s->io, DATA_MIN_RATE);
	for (;;) {
		size_t got;
		enum io_status st = io_read(&s->io, buf, sizeof buf, &got);
		if (st == IO_TIMEOUT) {
			reply(s, 421, ESC_BAD_CONNECTION,
			      "%s Timeout during data, closing", s->name);
			return -1;
		}
		if (st != IO_OK) {
			/* the client went away: nothing is delivered */
			log_event(LOG_L_WARNING, "event", "lost", "during",
				  "DATA", NULL);
			return -1;
		}
		size_t ol = 0;
		size_t used = data_feed(&s->dm, buf, got, out, &ol);
		data_store_write(&s->data, out, ol);
		if (s->dm.done) {
			/* give back what followed the final dot */
			s->io.in_pos -= got - used;
			return 0;
		}
	}
}

/* A refusal whose text the policy service chose: escaped. */
static void send_refusal(struct session *s, const struct reply *r)
{
	reply_dsn(s, r->code, r->dsn, "%s", esc(r->text, strlen(r->text)));
}

/* The end of the message: the policy's last word, then the handoff. */
static void end_of_data(struct session *s)
{
	struct reply r;
	if (!s->data.toobig && !s->data.failed && session_filters_eom(s, &r))
		handoff_refuse(s, &r, send_refusal, 1);
	else
		handoff_deliver(s, send_result);
	session_transaction_reset(s);
}

/* The verb table has checked the state and that there is no argument. */
void session_cmd_data(struct session *s, char *arg)
{
	(void)arg;
	if (s->body == BODY_BINARYMIME) {
		struct reply r;
		reply_set(&r, 503, ESC_INVALID_COMMAND,
			  "BODY=BINARYMIME requires BDAT");
		session_refuse_data(s, &r);
		return;
	}
	struct reply mr;
	if (milter_data(s, &mr) != MILTER_CONTINUE) {
		session_refuse_data(s, &mr);
		return;
	}
	int px = s->px ? proxy_data(s, 0, s->milters != NULL, &mr) : 0;
	if (px < 0) {
		if (!s->nrcpt)
			session_set_state(s, ST_MAIL);
		session_refuse_data(s, &mr);
		if (px == -2)
			session_transaction_reset(s);
		return;
	}
	if (handoff_begin(s) < 0) {
		struct reply r;
		handoff_storage_reply(&r, errno);
		log_event(LOG_L_ERR, "event", "spool-error", "reason", r.text,
			  NULL);
		/* the target's DATA is open: a DATA again would be its text */
		proxy_abort(s);
		session_refuse_data(s, &r);
		return;
	}
	reply(s, 354, ESC_NONE, "End data with <CR><LF>.<CR><LF>");
	flush(s);
	if (data_receive(s) < 0) {
		s->quit = 1;
		session_transaction_reset(s);
		return;
	}
	end_of_data(s);
}

/* BDAT's size, the first word after the verb, with *rest after it: 0,
 * or -1 when it is no number that fits (then the chunk cannot be found). */
static int bdat_size(const char *arg, uint64_t *n, const char **rest)
{
	const char *p = arg;
	if (*p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	if (!(*p >= '0' && *p <= '9'))
		return -1;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_C(1) << 56))
			return -1;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	if (*p && *p != ' ')
		return -1;
	*n = v;
	*rest = p;
	return 0;
}

/* "BDAT size [LAST]", words apart by any run of spaces: 0; -1 when the
 * size cannot be read; -2 when only what follows it is wrong (*n set,
 * the chunk can be skipped). */
static int parse_bdat(const char *arg, uint64_t *n, int *last)
{
	const char *p;
	if (bdat_size(arg, n, &p) < 0)
		return -1;
	while (*p == ' ')
		p++;
	*last = *p != 0;
	return !*p || !strcasecmp(p, "LAST") ? 0 : -2;
}

/* Reads n octets of a chunk; keeps them when keep. -1: client gone. */
static int bdat_chunk(struct session *s, uint64_t n, int keep)
{
	char buf[8192];
	/* one pace for all the transaction's chunks and the commands between
	 * them, as for DATA (serve_line() ends it with the transaction) */
	if (!s->io.min_rate)
		io_data_pace(&s->io, DATA_MIN_RATE);
	while (n) {
		size_t got;
		enum io_status st = io_read(&s->io, buf,
					    n > sizeof buf ? sizeof buf : n, &got);
		if (st == IO_TIMEOUT) {
			reply(s, 421, ESC_BAD_CONNECTION,
			      "%s Timeout during BDAT, closing", s->name);
			return -1;
		}
		if (st != IO_OK)
			return -1;
		if (keep)
			data_bytes(s, buf, got);
		n -= got;
	}
	return 0;
}

/* A BDAT whose chunk cannot be found: the octets that follow are not
 * commands, and where they end nobody knows (SPEC 5). */
static void bdat_lost(struct session *s)
{
	reply(s, 421, ESC_OTHER_PROTOCOL_STATUS,
	      "%s Cannot resynchronize after a bad BDAT, closing", s->name);
	s->quit = 1;
}

/*
 * A BDAT refused before its chunk was read: the chunk is read and dropped
 * all the same, so that its octets never run as commands (SPEC 5), and the
 * message of a transaction under way has lost it, be it the first chunk
 * or a later one: the rest is discarded up to LAST, or the transaction
 * ends here with this LAST. -1 when the session ends (the client left, or
 * timed out: replied).
 */
static int bdat_skip(struct session *s, uint64_t n, int last)
{
	if (bdat_chunk(s, n, 0) < 0) {
		s->quit = 1;
		session_transaction_reset(s);
		return -1;
	}
	int in_transaction = s->state >= ST_MAIL;
	if (last && (in_transaction || s->bdat != BDAT_NONE)) {
		session_transaction_reset(s);
	} else if (!last && in_transaction) {
		s->bdat = BDAT_DISCARDING;
		session_set_state(s, ST_BDAT);
	}
	return 0;
}

/*
 * The first BDAT of a transaction: after RCPT it starts the message
 * (ST_BDAT); anywhere else, or when the data cannot be stored, its chunk
 * is read and discarded, and so are the next ones until LAST. -1 when
 * this command is done with.
 */
static int bdat_first(struct session *s, uint64_t n, int last)
{
	const char *why = NULL;
	struct reply r;
	reply_code(&r, 503, ESC_INVALID_COMMAND);
	int px = 0;
	if (s->state != ST_RCPT) {
		why = "No valid recipients";
	} else if (milter_data(s, &r) != MILTER_CONTINUE) {
		why = r.text;
	} else if (s->px &&
		   (px = proxy_data(s, 1, s->milters != NULL, &r)) < 0) {
		why = r.text;
		if (px == -2)
			session_transaction_reset(s);
		else
			session_set_state(s, ST_MAIL);
	} else if (handoff_begin(s) < 0) {
		handoff_storage_reply(&r, errno);
		proxy_abort(s); /* as in session_cmd_data() */
		why = r.text;
	}
	if (!why) {
		s->bdat = BDAT_RECEIVING;
		s->dm.bdat = 1;
		session_set_state(s, ST_BDAT);
		return 0;
	}
	if (bdat_chunk(s, n, 0) < 0) {
		s->quit = 1;
		return -1;
	}
	reply_dsn(s, r.code, r.dsn, "%s (discarded %llu octets)", why,
		  (unsigned long long)n);
	s->bdat = last ? BDAT_NONE : BDAT_DISCARDING;
	/* a transaction under way: RCPT and DATA wait for its LAST */
	if (!last && s->state >= ST_MAIL)
		session_set_state(s, ST_BDAT);
	return -1;
}

void session_cmd_bdat(struct session *s, char *arg)
{
	uint64_t n;
	int last;
	int syntax = parse_bdat(arg, &n, &last);
	if (syntax == -1) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: BDAT size [LAST]");
		bdat_lost(s);
		return;
	}
	if (syntax < 0) {
		/* the size says where the chunk ends: it is skipped and the
		 * session goes on (RFC 5321 4.1.1 asks for tolerance) */
		if (bdat_skip(s, n, 0) == 0)
			reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
			      "Syntax: BDAT size [LAST] (discarded %llu octets)",
			      (unsigned long long)n);
		return;
	}
	/* a chunk that carries nothing carries no mail: junk, or a client
	 * could send them for ever */
	s->junk += !n && !last;
	if (s->state != ST_BDAT && s->bdat == BDAT_NONE &&
	    bdat_first(s, n, last) < 0)
		return;
	int keep = s->bdat == BDAT_RECEIVING;
	if (bdat_chunk(s, n, keep) < 0) {
		s->quit = 1;
		session_transaction_reset(s);
		return;
	}
	if (!keep) {
		reply(s, 551, ESC_OTHER,
		      "Discarded %llu octets after an earlier error",
		      (unsigned long long)n);
		if (last)
			session_transaction_reset(s);
		return;
	}
	if (last) {
		/* a CR that ended the last chunk had no LF: it was bare */
		if (s->body != BODY_BINARYMIME) {
			char cr[1];
			size_t n1 = 0;
			data_finish_chunks(&s->dm, cr, &n1);
			data_store_write(&s->data, cr, n1);
		}
		end_of_data(s);
		return;
	}
	if (s->data.toobig) {
		reply(s, 552, ESC_MESSAGE_TOO_BIG_FOR_SYSTEM,
		      "Message size exceeds fixed maximum message size");
		s->bdat = BDAT_DISCARDING;
		return;
	}
	reply(s, 250, ESC_OTHER, "%llu octets received", (unsigned long long)n);
}

/* A command line refused before its verb ran (accept-mail = no, a bare
 * LF or CR, a NUL, too long): a BDAT's chunk follows it all the same and
 * is skipped before the refusal, or, when its size cannot be read, the
 * session ends (SPEC 5). */
void session_refuse_line(struct session *s, const char *line,
			 const struct reply *r)
{
	uint64_t n;
	int last, syntax = -1;
	int bdat = !strncasecmp(line, "BDAT", 4) &&
		   (!line[4] || line[4] == ' ');
	if (bdat)
		syntax = parse_bdat(line + 4, &n, &last);
	if (bdat && syntax != -1 && bdat_skip(s, n, !syntax && last) < 0)
		return;
	reply_dsn(s, r->code, r->dsn, "%s", r->text);
	if (bdat && syntax == -1)
		bdat_lost(s);
}
