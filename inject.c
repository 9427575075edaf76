/*
 * inject.c - local submission (SPEC 2): a message from standard input
 * handed to a session, or a -bs dialogue relayed to one (see inject.h).
 *
 * Owns: what inject_opts.c read from the command line put to work: the
 * end of a message read from a program (EOF, or a lone "." line unless
 * -i), the DSN requests on MAIL and RCPT (ENVID as xtext), the recipients
 * of -t and the removal of Bcc with them, as many transactions as the
 * session's max-recipients asks for, turning the session's
 * replies into sendmail's exit statuses with the reply text on stderr,
 * and a -bs dialogue relayed byte for byte to the session a message
 * would get.
 *
 * Never: writes the spool or delivers itself (the session on the submit
 * socket does, or as root without one the session in a child, by the
 * same rules as for mail from the network), and never keeps
 * more of the message in memory than its header (-t, bounded): the body
 * is read into an unlinked file before the session starts.
 */
#define _GNU_SOURCE /* close_range */
#include "inject.h"
#include "addr.h"
#include "data.h"
#include "deliver.h"
#include "dsn.h"
#include "fmt.h"
#include "io.h"
#include "session.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* -t keeps the header in memory to find the recipients before MAIL. */
#define INJECT_HEADER_MAX (1 << 20)
/* The session bounds its own work; this only ends a wait for a child
 * that stopped answering. */
#define INJECT_TIMEOUT_MS (1000 * 1000)
#define REPLY_LINES_MAX 100
/* At most this many (more are refused, exit 64); the session takes
 * max-recipients of them per transaction. */
#define INJECT_RCPT_MAX 100000
#define REPLY_LINE_MAX 512  /* RFC 5321 4.5.3.1.5 */
#define COMMAND_MAX 4096    /* MAIL and RCPT with their parameters */
/* SPEC 2: where postmaster-submit.socket listens, unless a section's
 * listen-port names another unix socket. */
#define INJECT_SOCKET "/run/postmaster/submit"

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

struct rcpts {
	char **v;
	size_t n, cap;
};

/* Adds one address as an envelope path: a bare local name is at this
 * host, as sendmail and Postfix (myorigin) make it. Past INJECT_RCPT_MAX
 * the list is full (and the caller refuses). */
static void rcpt_add(struct rcpts *r, const char *a, size_t n,
		     const char *host)
{
	if (!n || r->n == INJECT_RCPT_MAX)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	struct buf b = {0};
	buf_add(&b, a, n);
	if (!memchr(a, '@', n))
		buf_printf(&b, "@%s", host);
	r->v[r->n++] = b.s;
}

static void rcpts_free(struct rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
}

struct list_to_rcpts {
	struct rcpts *r;
	const char *host;
};

static void list_rcpt(void *arg, const struct addr_item *it)
{
	struct list_to_rcpts *l = arg;
	rcpt_add(l->r, it->text, it->len, l->host);
}

/* The addresses of an RFC 5322 address list ("Ann <a@x>, b@y (Bob),
 * team: c@z;"), as addr_list_scan() reads them. */
static void address_list(const char *s, size_t n, struct rcpts *r,
			 const char *host)
{
	struct list_to_rcpts l = {r, host};
	addr_list_scan(s, n, list_rcpt, &l);
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* The envelope sender: the first address of -f, read as a From: field
 * reads it ("Site <me@x>", "me@x (Me)", a bare name at this host; "" or
 * "<>" the null sender), as Postfix's sendmail takes it; else the user
 * who runs the program at this host. A control character leaves -f as
 * it is, for envelope_usable() to refuse. -1 when that user has no
 * name. */
static int envelope_sender(const struct inject *in, const char *host,
			   struct buf *out)
{
	if (in->from && has_control(in->from)) {
		buf_adds(out, in->from);
	} else if (in->from) {
		struct rcpts r = {0};
		address_list(in->from, strlen(in->from), &r, host);
		buf_adds(out, r.n ? r.v[0] : "");
		if (r.n > 1) /* Postfix's warning: "malformed sender" */
			fprintf(stderr, "%s: -f names more than one address; "
					"the sender is the first, %s\n",
				in->prog, r.v[0]);
		rcpts_free(&r);
	}
	if (in->from)
		return 0;
	struct passwd *pw = getpwuid(getuid());
	if (!pw)
		return -1;
	buf_printf(out, "%s@%s", pw->pw_name, host);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The message from standard input                                     */

struct src {
	char b[65536];
	size_t pos, len;
	int eof;
	int err; /* errno of a failed read: the input ended unread */
	int fd;  /* standard input, or the file src_keep() made */
	const char *dir; /* where src_keep() keeps it */
	off_t kept;      /* how much of it is written */
};

/* The next piece of a line: at most max bytes, *eol when it ends the line
 * (its LF, and a CR before the LF, are taken off). 0 at the end of input. */
static size_t src_piece(struct src *s, char *p, size_t max, int *eol)
{
	size_t n = 0;
	*eol = 0;
	while (n < max) {
		if (s->pos == s->len) {
			if (s->eof)
				break;
			ssize_t r = read(s->fd, s->b, sizeof s->b);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				s->eof = 1;
				s->err = r < 0 ? errno : 0;
				break;
			}
			s->pos = 0;
			s->len = (size_t)r;
		}
		char c = s->b[s->pos];
		if (c == '\r' && n && n + 1 == max)
			break; /* it may end the line: the next piece takes it */
		s->pos++;
		if (c == '\n') {
			*eol = 1;
			if (n && p[n - 1] == '\r')
				n--;
			break;
		}
		p[n++] = c;
	}
	return n;
}

/* Writes one piece to the session, as SMTP text: a leading dot doubled,
 * CRLF at the end of the line. */
static void emit(struct io *io, const char *p, size_t n, int bol, int eol)
{
	if (bol && n && p[0] == '.')
		io_write(io, ".", 1);
	io_write(io, p, n);
	if (eol)
		io_write(io, "\r\n", 2);
}

/* How the header section ended: at its blank line, at a line that is no
 * header field (the body's first, without a blank line), or with the
 * message. */
enum { HEAD_BODY, HEAD_TEXT, HEAD_END };

struct message {
	struct src src;
	struct buf head;  /* the header fields, LF line ends */
	int end;
	char first[8192]; /* HEAD_TEXT: the first piece of the body */
	size_t nfirst;
	int first_eol;
	unsigned have; /* FIX_*: what the fix-ups need not add */
	unsigned have_resent; /* ... of Resent-Date, -Message-ID, -From */
	int resent;    /* it has Resent- fields: it is being resent */
	struct buf fix; /* the fix-up fields, made once for every copy */
	int fixed;
	int kept;       /* the body is in a file of its own (src_keep) */
};

static int field_start(const char *p, size_t n)
{
	return hdr_field_name(p, n) > 0;
}

/* Whether a piece at the very start of the input is an mbox separator,
 * "From " or ">From " (with any number of '>'), which sendmail drops as
 * Postfix's and sendmail 8's do. */
static int mbox_from_line(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] == '>')
		i++;
	return n - i >= 5 && !memcmp(p + i, "From ", 5);
}

/*
 * Reads the header section into m->head, up to its blank line or the
 * first line that is neither a field nor a field's continuation (kept in
 * m->first), or to the end of the message (EOF, or a lone "." unless
 * -i). -1 when it is larger than INJECT_HEADER_MAX.
 */
static int read_header(struct message *m, const struct inject *in)
{
	char p[sizeof m->first];
	int bol = 1, eol, leading = 1, skip = 0;
	for (;;) {
		size_t n = src_piece(&m->src, p, sizeof p, &eol);
		if (!n && !eol && m->src.eof)
			return m->end = HEAD_END;
		if (bol && leading)
			skip = mbox_from_line(p, n);
		if (skip) { /* the whole line, however many pieces */
			bol = eol;
			continue;
		}
		leading = 0;
		if (bol && eol && n == 1 && p[0] == '.' && !in->dots_are_text)
			return m->end = HEAD_END;
		if (bol && eol && !n)
			return m->end = HEAD_BODY;
		if (bol && !field_start(p, n) &&
		    !(m->head.len && (p[0] == ' ' || p[0] == '\t'))) {
			memcpy(m->first, p, n);
			m->nfirst = n;
			m->first_eol = eol;
			return m->end = HEAD_TEXT;
		}
		buf_add(&m->head, p, n);
		if (eol)
			buf_addc(&m->head, '\n');
		if (m->head.len > INJECT_HEADER_MAX)
			return -1;
		bol = eol;
	}
}

static int field_is(const char *f, size_t n, const char *name)
{
	size_t k = strlen(name);
	return hdr_field_name(f, n) == k && !ascii_casecmp_n(f, k, name, k);
}

/* The end of the field that starts at i: its continuation lines too. */
static size_t field_end(const char *h, size_t len, size_t i)
{
	size_t end = i;
	do {
		const char *nl = memchr(h + end, '\n', len - end);
		end = nl ? (size_t)(nl - h) + 1 : len;
	} while (end < len && (h[end] == ' ' || h[end] == '\t'));
	return end;
}

/* Whether a field's name is Resent-something (RFC 5322 3.6.6). */
static int is_resent(const char *f, size_t n)
{
	return hdr_field_name(f, n) > 7 && !ascii_casecmp_n(f, 7, "resent-", 7);
}

/* Whether a field names recipients: To, Cc and Bcc, or for a message
 * being resent (one with Resent- fields) Resent-To, -Cc and -Bcc only,
 * as Postfix's -t takes them. */
static int recipient_field(const char *f, size_t n, int resent)
{
	if (resent)
		return field_is(f, n, "resent-to") ||
		       field_is(f, n, "resent-cc") ||
		       field_is(f, n, "resent-bcc");
	return field_is(f, n, "to") || field_is(f, n, "cc") ||
	       field_is(f, n, "bcc");
}

/* Writes one field, each of its lines ended by CRLF. */
static void emit_lines(struct io *io, const char *f, size_t n)
{
	for (size_t j = 0; j < n;) {
		const char *nl = memchr(f + j, '\n', n - j);
		size_t k = nl ? (size_t)(nl - f) : n;
		emit(io, f + j, k - j, 1, 1);
		j = k + 1;
	}
}

/* Part of an address field to the session, each LF as CRLF (its lines
 * start with its name or a blank: no dot to double). */
static void put_crlf(void *arg, const char *p, size_t n)
{
	struct io *io = arg;
	for (const char *nl; n && (nl = memchr(p, '\n', n)) != NULL;) {
		size_t k = (size_t)(nl - p);
		io_write(io, p, k);
		io_write(io, "\r\n", 2);
		p += k + 1;
		n -= k + 1;
	}
	io_write(io, p, n);
}

/* A field as the session gets it: in From, To and the other address
 * fields, a local part alone is at this host (Postfix's
 * append_at_myorigin), as the envelope's addresses are; written as it
 * is completed, so that no copy of it grows in memory. */
static void send_field(struct io *io, const char *f, size_t n,
		       const char *host)
{
	if (!addr_field_has_addresses(f, n)) {
		emit_lines(io, f, n);
		return;
	}
	addr_field_qualify(f, n, host, put_crlf, io);
	if (n && f[n - 1] != '\n') /* the input's last line, unended */
		io_write(io, "\r\n", 2);
}

/* The header's fields, each with its continuation lines: with r, the
 * recipients of To, Cc and Bcc (of Resent-To, -Cc and -Bcc when there
 * are Resent- fields), and which fields the fix-ups need not add; with
 * io, every field but Bcc, Resent-Bcc and Return-Path written to the
 * session, their addresses completed. */
static void walk_header(struct message *m, struct io *io, struct rcpts *r,
			const char *host)
{
	const char *h = m->head.s ? m->head.s : "";
	size_t i = 0, len = m->head.len;
	int resent = 0;
	for (size_t k = 0; k < len; k = field_end(h, len, k))
		resent |= is_resent(h + k, field_end(h, len, k) - k);
	m->resent = resent;
	while (i < len) {
		size_t end = field_end(h, len, i);
		const char *f = h + i;
		size_t n = end - i;
		/* Return-Path too: RFC 5321 4.4, as the session's fix-ups */
		int bcc = field_is(f, n, "bcc") || field_is(f, n, "resent-bcc") ||
			  field_is(f, n, "return-path");
		if (r && recipient_field(f, n, resent)) {
			const char *colon = memchr(f, ':', n);
			address_list(colon + 1, n - (size_t)(colon + 1 - f), r,
				     host);
		}
		m->have |= (field_is(f, n, "date") ? FIX_DATE : 0) |
			   (field_is(f, n, "message-id") ? FIX_MSGID : 0) |
			   (field_is(f, n, "from") ? FIX_FROM : 0);
		m->have_resent |=
			(field_is(f, n, "resent-date") ? FIX_DATE : 0) |
			(field_is(f, n, "resent-message-id") ? FIX_MSGID : 0) |
			(field_is(f, n, "resent-from") ? FIX_FROM : 0);
		if (io && !bcc)
			send_field(io, f, n, host);
		i = end;
	}
}

/* RFC 5322 3.6.6: a message being resent gets the Resent- forms of the
 * fix-up fields (as Postfix's cleanup adds them), its own Date, From and
 * Message-ID being the original's: each line of fields gets the prefix. */
static void resent_fields(struct buf *out, const struct buf *plain)
{
	for (size_t i = 0; i < plain->len;) {
		const char *nl = memchr(plain->s + i, '\n', plain->len - i);
		size_t end = nl ? (size_t)(nl - plain->s) + 1 : plain->len;
		if (plain->s[i] != ' ' && plain->s[i] != '\t')
			buf_adds(out, "Resent-");
		buf_add(out, plain->s + i, end - i);
		i = end;
	}
}

/* RFC 6409 8: Date, Message-ID and From where the message has none;
 * made once, so that every transaction of a message sends the same. */
static void fix_ups(struct message *m, const struct inject *in,
		    const char *sender, const char *host, struct io *io)
{
	if (m->fixed) {
		io_write(io, m->fix.s, m->fix.len);
		return;
	}
	m->fixed = 1;
	unsigned char r[8] = {0};
	time_t now = time(NULL);
	if (getrandom(r, sizeof r, 0) != sizeof r)
		memcpy(r, &now, sizeof now < sizeof r ? sizeof now : sizeof r);
	char id[64];
	int k = fmt_snprintf(id, sizeof id, "%lld.", (long long)now);
	for (size_t i = 0; i < sizeof r && k > 0 && (size_t)k + 3 < sizeof id; i++)
		k += fmt_snprintf(id + k, sizeof id - (size_t)k, "%02x", r[i]);
	buf_adds(&m->fix, "");
	if (m->resent) {
		struct buf plain = {0};
		data_fixup_fields(&plain, m->have_resent, sender, in->fullname,
				  id, host, "\r\n");
		resent_fields(&m->fix, &plain);
		buf_free(&plain);
	} else {
		data_fixup_fields(&m->fix, m->have, sender, in->fullname, id,
				  host, "\r\n");
	}
	io_write(io, m->fix.s, m->fix.len);
}

/* The rest of the message, streamed: ends at EOF or a lone "." line
 * (unless -i); a last line without its newline gets one. */
static void send_body(struct io *io, struct src *s, const struct inject *in,
		      int bol)
{
	char p[8192];
	int eol;
	for (;;) {
		size_t n = src_piece(s, p, sizeof p, &eol);
		if (!n && !eol && s->eof)
			break;
		if (bol && eol && n == 1 && p[0] == '.' && !in->dots_are_text)
			break;
		emit(io, p, n, bol, eol);
		bol = eol;
	}
	if (!bol)
		io_write(io, "\r\n", 2);
}

/* What src_keep() writes moves with what it already holds to a new file
 * in /tmp when $TMPDIR has no room for it (postmaster(8)): 0, or -1 with
 * errno. */
static int keep_in_tmp(struct src *s, int *fd)
{
	s->dir = "TMPDIR or /tmp"; /* what a failure names */
	int to = tmpfile_in("/tmp");
	if (to < 0)
		return -1;
	char b[16384];
	for (off_t off = 0; off < s->kept;) {
		size_t want = s->kept - off < (off_t)sizeof b
				      ? (size_t)(s->kept - off) : sizeof b;
		ssize_t r = pread(*fd, b, want, off);
		if (r <= 0 || write_all(to, b, (size_t)r) < 0) {
			int e = r == 0 ? EIO : errno;
			close(to);
			errno = e;
			return -1;
		}
		off += r;
	}
	close(*fd);
	*fd = to;
	s->dir = "/tmp";
	return 0;
}

static int keep_write(struct src *s, int *fd, const char *p, size_t n)
{
	if (write_all(*fd, p, n) == 0) {
		s->kept += (off_t)n;
		return 0;
	}
	if ((errno != ENOSPC && errno != EDQUOT) || !strcmp(s->dir, "/tmp") ||
	    keep_in_tmp(s, fd) < 0)
		return -1;
	return keep_write(s, fd, p, n);
}

/* The rest of the body, up to where send_body() would stop, moved to an
 * unlinked file before the session starts: a program that writes its
 * message slowly (cron streams a job's output as the job runs) never
 * holds a session past its timeout, and the message can go out again
 * when the session takes only so many recipients in one transaction (RFC
 * 5321 4.5.3.1.10). bol: whether the input is at the start of a line (not
 * after a first piece of the body that ended mid-line). 0; -2 when it is
 * larger than max (read to its end all the same); or -1 with errno (that
 * of a failed read in s->err). */
static int src_keep(struct src *s, const struct inject *in,
		    unsigned long long max, int bol)
{
	int fd = tmpfile_open_at(&s->dir);
	if (fd < 0)
		return -1;
	struct buf out = {0};
	char p[8192];
	int eol, bad = 0; /* errno of a failed write */
	unsigned long long kept = 0;
	for (;;) {
		size_t n = src_piece(s, p, sizeof p, &eol);
		if ((!n && !eol && s->eof) ||
		    (bol && eol && n == 1 && p[0] == '.' && !in->dots_are_text))
			break;
		kept += n + 2 * (size_t)eol; /* the session counts CRLF */
		/* where lines begin, kept or not: the lone "." ends the
		 * message past max too */
		bol = eol;
		if (kept > max) { /* read to its end, as the session would */
			out.len = 0;
			continue;
		}
		buf_add(&out, p, n);
		if (eol)
			buf_addc(&out, '\n');
		if (out.len >= sizeof s->b) {
			if (!bad && keep_write(s, &fd, out.s, out.len) < 0)
				bad = errno;
			out.len = 0;
		}
	}
	if (!bad && keep_write(s, &fd, out.s, out.len) < 0)
		bad = errno;
	buf_free(&out);
	if (kept > max && !s->err) {
		close(fd);
		return -2;
	}
	if (bad || s->err) {
		int e = s->err ? s->err : bad;
		close(fd);
		errno = e;
		return -1;
	}
	s->fd = fd;
	return 0;
}

/* Back to the start of the kept body, for the next transaction. */
static void src_rewind(struct src *s)
{
	s->pos = s->len = 0;
	s->eof = 0;
	if (lseek(s->fd, 0, SEEK_SET) < 0) {
		s->eof = 1;
		s->err = errno;
	}
}

/* The message as submitted: its fields but Bcc, the fix-ups, then the
 * body. */
static void send_message(struct io *io, struct message *m,
			 const struct inject *in, const char *sender,
			 const char *host)
{
	walk_header(m, io, NULL, host);
	fix_ups(m, in, sender, host, io);
	if (m->end == HEAD_END)
		return;
	io_write(io, "\r\n", 2);
	int bol = 1;
	if (m->end == HEAD_TEXT) {
		emit(io, m->first, m->nfirst, 1, m->first_eol);
		bol = m->first_eol;
	}
	send_body(io, &m->src, in, bol);
}

/* ------------------------------------------------------------------ */
/* The dialogue with the session                                       */

struct conv {
	struct io io;
	int verbose;
	const char *prog;
	int cut; /* the data stopped without its dot: no QUIT after it */
};

/* One reply, perhaps multiline; its last line's code and text. */
static void get_reply(struct conv *c, struct reply *r)
{
	char line[REPLY_LINE_MAX + 1];
	for (int lines = 0; lines < REPLY_LINES_MAX; lines++) {
		size_t n;
		int bare;
		enum io_status st = io_getline(&c->io, line, REPLY_LINE_MAX, &n,
						  &bare);
		if (st != IO_OK && st != IO_TOOLONG)
			break;
		line[n] = 0;
		if (c->verbose)
			fprintf(stderr, "<<< %s\n", line);
		if (n < 3 || line[0] < '2' || line[0] > '5')
			break;
		if (n > 3 && line[3] == '-')
			continue;
		const char *t = n > 4 ? line + 4 : "";
		size_t d = strcspn(t, " ");
		if (d < sizeof r->dsn && t[0] == line[0] && t[1] == '.') {
			reply_set(r, atoi(line), ESC_NONE, "%s", t + d + (t[d] == ' '));
			memcpy(r->dsn, t, d);
			r->dsn[d] = 0;
		} else {
			reply_set(r, atoi(line), ESC_OTHER, "%s", t);
		}
		return;
	}
	reply_set(r, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
		  "the session ended without a reply");
}

static void command(struct conv *c, const char *line, struct reply *r)
{
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", line);
	io_write(&c->io, line, strlen(line));
	io_write(&c->io, "\r\n", 2);
	io_flush(&c->io);
	get_reply(c, r);
}

/* Says what the session refused, as sendmail does, and what that means
 * as an exit status. */
static int refused(const struct conv *c, const char *what,
		   const struct reply *r)
{
	fprintf(stderr, "%s: %s%s%d %s %s\n", c->prog, what ? what : "",
		what ? ": " : "", r->code, r->dsn, r->text);
	return reply_exit_status(r);
}

static int has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* Whether a RCPT's reply says the transaction has all the recipients it
 * takes (RFC 5321 4.5.3.1.10: 452, RFC 3463's 4.5.3). */
static int recipients_full(const struct reply *rep)
{
	return rep->code == 452 && !strcmp(rep->dsn, "4.5.3");
}

/* MAIL and the RCPTs from *next on, until the session takes no more in
 * this transaction; *next is then the first recipient left for the
 * next one. The exit status of the first refused recipient in
 * *rcpt_status. -1 when no recipient was taken (the status is then in
 * *rcpt_status). */
static int envelope(struct conv *c, const char *from, const struct rcpts *r,
		    size_t *next, const struct inject *in, int *rcpt_status)
{
	char line[COMMAND_MAX];
	struct reply rep;
	int utf8 = has_8bit(from);
	for (size_t i = 0; i < r->n; i++)
		utf8 |= has_8bit(r->v[i]);
	char envid[DSN_ENVID_MAX + 1] = "";
	if (in->envid)
		dsn_xtext_encode(in->envid, envid, sizeof envid);
	fmt_snprintf(line, sizeof line, "MAIL FROM:<%s>%s%s%s%s%s", from,
		 in->seven_bit ? "" : " BODY=8BITMIME", utf8 ? " SMTPUTF8" : "",
		 in->ret == DSN_RET_FULL   ? " RET=FULL"
		 : in->ret == DSN_RET_HDRS ? " RET=HDRS"
					   : "",
		 envid[0] ? " ENVID=" : "", envid);
	char words[32];
	dsn_notify_param(in->notify, words);
	command(c, line, &rep);
	if (rep.code != 250) {
		*rcpt_status = refused(c, from[0] ? from : "<>", &rep);
		return -1;
	}
	int taken = 0, later = 0;
	*rcpt_status = EX_OK;
	size_t i = *next;
	for (; i < r->n; i++) {
		if ((size_t)fmt_snprintf(line, sizeof line, "RCPT TO:<%s>%s%s", r->v[i],
			     words[0] ? " NOTIFY=" : "", words) >=
		    sizeof line)
			reply_set(&rep, 501, ESC_BAD_DEST_MAILBOX_SYNTAX,
				  "address too long");
		else
			command(c, line, &rep);
		if (rep.code == 250 || rep.code == 251) {
			taken++;
		} else if (taken && recipients_full(&rep)) {
			break; /* this one and the rest: the next transaction */
		} else {
			int st = refused(c, r->v[i], &rep);
			if (*rcpt_status == EX_OK)
				*rcpt_status = st;
			later |= rep.code < 500;
		}
	}
	*next = i;
	if (later && taken) {
		/* 75 tells the caller to send it all again: so nothing goes
		 * now, or the recipients taken would get it twice */
		command(c, "RSET", &rep);
		fprintf(stderr, "%s: a recipient was refused for now, so the "
				"message was not sent to any\n",
			c->prog);
		*rcpt_status = EX_TEMPFAIL;
		return -1;
	}
	return taken ? 0 : -1;
}

/* The session that serves the injection, in a child on a socket pair:
 * a local peer whose credentials it knows. body: the kept message, whose
 * file the child does not keep (NULL: none). Its pid, or -1. */
static pid_t start_session(struct cf *cf, const char *smtpd,
			   const struct src *body, int *fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
			_exit(EX_OSERR);
		/* its delivery outlives sendmail: no end of the pair stays
		 * open but the session's (the delivery lets go of the
		 * caller's stderr itself; until then the session says
		 * there why it could not start) */
		close(sv[0]);
		close(sv[1]);
		if (body)
			close(body->fd);
		/* where sendmail found room, the session finds it too */
		if (body && !strcmp(body->dir, "/tmp"))
			unsetenv("TMPDIR");
		/* nothing inherited may pose as the connection's origin */
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("TCPLOCALIP");
		unsetenv("TCPREMOTEIP");
		_exit(session_main(cf, smtpd, 1));
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* SPEC 2: the [smtpd] section that serves injected mail: --smtpd's, else
 * the one that listens on a unix socket (the submit socket), else NULL
 * (the sole section, or the built-in one). */
static const struct cf_section *submit_section(struct cf *cf,
					       const char *smtpd)
{
	if (smtpd)
		return cf_find(cf, CF_SMTPD, smtpd);
	uint32_t n;
	struct cf_section **v = cf_listeners(cf, &n);
	const struct cf_section *found = NULL;
	for (uint32_t i = 0; i < n && !found; i++)
		if (v[i]->listen.path[0])
			found = v[i];
	if (n)
		free(v);
	return found;
}

void inject_close_inherited(void)
{
	if (close_range(3, ~0U, 0) == 0)
		return;
	/* a kernel before 5.9 (ENOSYS), or a container's seccomp filter
	 * that refuses the call (EPERM): one by one, up to the limit on
	 * descriptors (at most 65536 of them: a million would cost a
	 * second) */
	struct rlimit rl;
	int max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
		max = (int)rl.rlim_cur;
	for (int fd = 3; fd < max; fd++)
		close(fd);
}

char *inject_verify_address(struct cf *cf, const struct inject *in,
			    const char **smtpd)
{
	const struct cf_section *sec = submit_section(cf, *smtpd);
	if (sec)
		*smtpd = sec->name;
	struct rcpts r = {0};
	const char *a = in->rcpt[0];
	address_list(a, strlen(a), &r, cf->core->v[CORE_HOSTNAME].s);
	char *out = xstrdup(r.n ? r.v[0] : a);
	rcpts_free(&r);
	return out;
}

/* The section that will serve: submit_section's, else the sole
 * section, else NULL (the built-in listener). */
static const struct cf_section *serving_section(struct cf *cf,
						const char *smtpd)
{
	const struct cf_section *sec = submit_section(cf, smtpd);
	uint32_t n = 0;
	struct cf_section **v = sec ? NULL : cf_listeners(cf, &n);
	if (n == 1)
		sec = v[0];
	if (n)
		free(v);
	return sec;
}

/* The max-message-size of the section that will serve, else core's (the
 * built-in listener's). */
static unsigned long long size_limit(struct cf *cf, const char *smtpd)
{
	const struct cf_section *sec = serving_section(cf, smtpd);
	return sec ? sec->v[SMTPD_MAX_MESSAGE_SIZE].n
		   : cf->core->v[CORE_MAX_MESSAGE_SIZE].n;
}

/* A connection to the local submission socket, or -1 with errno. */
static int submit_connect(const char *path)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof un.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(un.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&un, sizeof un) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * The session that serves the injection: the submit socket's, else (as
 * root only: the session writes the spool) one in a child. The socket is
 * the serving section's own unix: listener, else, with the default
 * configuration and no --smtpd, the system's /run/postmaster/submit; a
 * named configuration or section is never handed to another's. Its pid
 * in *pid (-1 for the socket's), the connection in *fd; the exit status
 * when there is neither.
 */
static int reach_session(struct cf *cf, const struct inject *in,
			 const char *smtpd, const struct src *body, pid_t *pid,
			 int *fd)
{
	const struct cf_section *sec = submit_section(cf, smtpd);
	const char *path = sec && sec->listen.path[0] ? sec->listen.path
			   : !in->config && !smtpd   ? INJECT_SOCKET
						     : NULL;
	*pid = -1;
	if (path && (*fd = submit_connect(path)) >= 0)
		return EX_OK;
	if (geteuid() != 0) {
		if (path)
			fprintf(stderr, "%s: cannot reach the submission "
					"socket %s: %s (start "
					"postmaster-submit.socket)\n",
				in->prog, path, strerror(errno));
		else
			fprintf(stderr, "%s: %s has no unix: listener to "
					"submit to, and only root may serve "
					"the session itself\n",
				in->prog,
				smtpd ? "the [smtpd] section" : in->config);
		return EX_TEMPFAIL;
	}
	*pid = start_session(cf, sec ? sec->name : NULL, body, fd);
	if (*pid < 0) {
		fprintf(stderr, "%s: cannot start a session: %s\n", in->prog,
			strerror(errno));
		return EX_OSERR;
	}
	return EX_OK;
}

static int read_failed(const char *prog, int err)
{
	fprintf(stderr, "%s: reading the message: %s; it was not sent\n",
		prog, strerror(err));
	return EX_IOERR;
}

/* One transaction: MAIL, the RCPTs from *next on that it takes, and
 * the message. 1 when the message went (the exit status for the
 * recipients refused in *status), else 0 with the exit status. */
static int one_copy(struct conv *c, struct message *m,
		    const struct inject *in, const char *from,
		    const struct rcpts *r, size_t *next, const char *host,
		    int *status)
{
	struct reply rep;
	if (envelope(c, from, r, next, in, status) < 0)
		return 0;
	if (m->kept)
		src_rewind(&m->src);
	command(c, "DATA", &rep);
	if (rep.code != 354) {
		*status = refused(c, NULL, &rep);
		return 0;
	}
	send_message(&c->io, m, in, from, host);
	if (m->src.err) {
		/* without its final dot the session delivers nothing */
		c->cut = 1;
		*status = read_failed(c->prog, m->src.err);
		return 0;
	}
	command(c, ".", &rep);
	if (rep.code != 250) {
		*status = refused(c, NULL, &rep);
		return 0;
	}
	return 1;
}

/* The conversation: greeting, EHLO, and as many transactions as the
 * session needs to take every recipient. */
static int transaction(struct conv *c, struct message *m,
		       const struct inject *in, const char *from,
		       struct rcpts *r, const char *host)
{
	struct reply rep;
	get_reply(c, &rep);
	if (rep.code != 220)
		return refused(c, NULL, &rep);
	command(c, "EHLO localhost", &rep);
	if (rep.code != 250)
		return refused(c, NULL, &rep);
	int status = EX_OK;
	for (size_t next = 0; next < r->n;) {
		size_t first = next;
		int st;
		if (!one_copy(c, m, in, from, r, &next, host, &st)) {
			if (first)
				fprintf(stderr, "%s: the message went to the "
						"recipients before <%s> only\n",
					c->prog, r->v[first]);
			return st;
		}
		if (status == EX_OK)
			status = st;
	}
	return status;
}

/* Whether the sender and recipients can go on MAIL and RCPT: EX_OK, or
 * EX_USAGE said on stderr. */
static int envelope_usable(const char *prog, const struct buf *from,
			   const struct rcpts *r)
{
	const char *bad = has_control(from->s ? from->s : "") ? from->s : NULL;
	for (size_t i = 0; i < r->n && !bad; i++)
		if (has_control(r->v[i]))
			bad = r->v[i];
	if (bad) { /* it would end the command and start another */
		struct buf e = {0};
		buf_add_escaped(&e, bad, strlen(bad));
		fprintf(stderr, "%s: a control character in the address %s\n",
			prog, e.s);
		buf_free(&e);
		return EX_USAGE;
	}
	if (!r->n || r->n == INJECT_RCPT_MAX) {
		fprintf(stderr, r->n ? "%s: more than %d recipients\n"
				     : "%s: no recipient addresses found in the "
				       "message header\n",
			prog, INJECT_RCPT_MAX - 1);
		return EX_USAGE;
	}
	return EX_OK;
}

int inject_send(struct cf *cf, const struct inject *in, const char *smtpd)
{
	const char *prog = in->prog;
	const char *host = cf->core->v[CORE_HOSTNAME].s;
	struct buf from = {0};
	struct rcpts r = {0};
	struct message *m = xcalloc(1, sizeof *m);
	int ex = EX_OK;
	if (envelope_sender(in, host, &from) < 0) {
		fprintf(stderr, "%s: uid %u has no user name\n", prog,
			(unsigned)getuid());
		ex = EX_NOUSER;
		goto out;
	}
	for (int i = 0; i < in->nrcpt; i++)
		address_list(in->rcpt[i], strlen(in->rcpt[i]), &r, host);
	if (read_header(m, in) < 0) {
		fprintf(stderr, "%s: the header is larger than %d bytes\n",
			prog, INJECT_HEADER_MAX);
		ex = EX_DATAERR;
		goto out;
	}
	if (m->src.err) {
		ex = read_failed(prog, m->src.err);
		goto out;
	}
	walk_header(m, NULL, in->extract ? &r : NULL, host);
	if ((ex = envelope_usable(prog, &from, &r)) != EX_OK)
		goto out;
	unsigned long long max = size_limit(cf, smtpd);
	if (m->end != HEAD_END) {
		int k = src_keep(&m->src, in, max,
				 m->end == HEAD_TEXT ? m->first_eol : 1);
		if (k == -2) {
			/* the session would refuse it after the data (552) */
			fprintf(stderr, "%s: the message is larger than %llu "
					"bytes (max-message-size); it was not "
					"sent\n",
				prog, max);
			ex = EX_UNAVAILABLE;
			goto out;
		}
		if (k < 0) {
			if (m->src.err) {
				ex = read_failed(prog, m->src.err);
			} else {
				/* no room in TMPDIR nor /tmp: try later, as
				 * Postfix's sendmail says of its queue file */
				fprintf(stderr, "%s: cannot keep the message "
						"in %s: %s; it was not sent\n",
					prog, m->src.dir ? m->src.dir : "/tmp",
					strerror(errno));
				ex = EX_TEMPFAIL;
			}
			goto out;
		}
		m->kept = 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct conv c = {.verbose = in->verbose, .prog = prog};
	int fd;
	pid_t pid;
	if ((ex = reach_session(cf, in, smtpd, m->kept ? &m->src : NULL,
				&pid, &fd)) != EX_OK)
		goto out;
	io_init(&c.io, fd, fd, INJECT_TIMEOUT_MS);
	ex = transaction(&c, m, in, from.s ? from.s : "", &r, host);
	struct reply rep;
	if (!c.cut)
		command(&c, "QUIT", &rep);
	io_free(&c.io);
	close(fd);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
out:
	if (m->kept)
		close(m->src.fd);
	buf_free(&m->head);
	buf_free(&m->fix);
	free(m);
	buf_free(&from);
	rcpts_free(&r);
	return ex;
}

/* ------------------------------------------------------------------ */
/* -bs: the dialogue relayed to the submit socket's session           */

/* Moves what one side has to the other: 0, or -1 at its end (EOF, or
 * an error on either side). */
static int pass_on(int from, int to)
{
	char b[16384];
	ssize_t n = read(from, b, sizeof b);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0 || write_all(to, b, (size_t)n) < 0)
		return -1;
	return 0;
}

/* Copies stdin to the session and the session to stdout until the
 * session ends; the client's EOF half-closes the connection, so the
 * session still answers what it had. */
static void relay(int fd)
{
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN},
			      {.fd = fd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents && pass_on(fd, 1) < 0)
			return;
		if (p[0].revents && pass_on(0, fd) < 0) {
			shutdown(fd, SHUT_WR);
			p[0].fd = -1; /* poll ignores it from now on */
		}
	}
}

/* The session's exit status once it has ended. */
static int wait_session(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EX_OSERR;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
}

/* -bs: the dialogue relayed to the session that a message would get (the
 * submit socket's, or root's in a child on a socket pair), so that the
 * session knows the user (SO_PEERCRED) and the fix-ups apply alike. */
int inject_smtp(struct cf *cf, const struct inject *in, const char *smtpd)
{
	signal(SIGPIPE, SIG_IGN);
	int fd;
	pid_t pid;
	int ex = reach_session(cf, in, smtpd, NULL, &pid, &fd);
	if (ex != EX_OK) {
		static const char busy[] = "421 4.3.2 Local submission is not "
					   "available, try again later\r\n";
		write_all(1, busy, sizeof busy - 1);
		return ex;
	}
	relay(fd);
	close(fd);
	return pid > 0 ? wait_session(pid) : EX_OK;
}
