/*
 * bounce.c - delivery status notifications (see bounce.h).
 *
 * The report is stored as the session stores text mail (LF line ends) and
 * routed as the listener that accepted the message (recorded in its
 * envelope) would route it: that [smtpd]'s routing-tables, then the global
 * [route]; postmaster as a local name. Every fall-back (to the global
 * tables, to postmaster) is logged here, with its reason.
 */
#include "bounce.h"
#include "fmt.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 65536

/* The original header section, LF line ends, at most MAX_HEADERS. */
static void original_headers(const struct spool_msg *m, struct buf *out)
{
	char chunk[8192];
	off_t off = 0;
	int nl = 1;
	while (off < m->size && out->len < MAX_HEADERS) {
		ssize_t n = pread(m->data_fd, chunk, sizeof chunk, m->data_off + off);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = chunk[i];
			if (c == '\r')
				continue;
			if (c == '\n' && nl)
				return; /* the empty line */
			buf_addc(out, c);
			nl = c == '\n';
		}
		off += n;
	}
	if (out->len && out->s[out->len - 1] != '\n')
		buf_addc(out, '\n');
}

/* RET=FULL (RFC 3461 4.3): the whole message, LF line ends; 0 when it
 * cannot be read whole. */
static int original_message(const struct spool_msg *m, struct buf *out)
{
	char chunk[8192];
	for (off_t off = 0; off < m->size;) {
		ssize_t n = pread(m->data_fd, chunk, sizeof chunk,
				  m->data_off + off);
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			if (chunk[i] != '\r')
				buf_addc(out, chunk[i]);
		off += n;
	}
	if (out->len && out->s[out->len - 1] != '\n')
		buf_addc(out, '\n');
	return 1;
}

/* What goes back, into b: the message with RET=FULL when it is text and
 * within core.bounce-size-limit (returns 1), else its headers (0): a
 * larger one is not cut, which would break its MIME structure (Postfix's
 * bounce_size_limit does the same), and a report the size of the
 * message would often be refused by the sender's own server. */
static int returned_content(const struct cf *cf, const struct spool_msg *m,
			    int failed, struct buf *b)
{
	if (failed && m->dsn_ret == DSN_RET_FULL && !m->binary &&
	    (uint64_t)m->size <= cf->core->v[CORE_BOUNCE_SIZE_LIMIT].n) {
		if (original_message(m, b))
			return 1;
		b->len = 0;
	}
	original_headers(m, b);
	return 0;
}

/* The length of the header section of returned content: up to its
 * first empty line, or all of it. */
static size_t header_section(const struct buf *ret)
{
	for (size_t i = 0; i < ret->len; i++)
		if (ret->s[i] == '\n' && (i == 0 || ret->s[i - 1] == '\n'))
			return i;
	return ret->len;
}

static int has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* An xtext value (ENVID, ORCPT's address) as a report shows it. */
static void put_xtext(struct buf *b, const char *xtext)
{
	char text[DSN_ORCPT_MAX + 1];
	if (dsn_xtext_decode(xtext, strlen(xtext), text, sizeof text) < 0 ||
	    has_8bit(text, strlen(text)))
		/* one that decodes to UTF-8 is shown as the xtext it came
		 * in, in either type of report: RFC 6533's utf-8-addr
		 * forms are not made */
		fmt_snprintf(text, sizeof text, "%s", xtext);
	for (const char *p = text; *p; p++)
		buf_addc(b, (unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f
				    ? ' '
				    : *p);
}

static const struct {
	const char *subject, *what, *action;
} report_words[] = {
	[REPORT_FAILED] = {"Undelivered Mail Returned to Sender",
			   "could not\nbe delivered to the following", "failed"},
	[REPORT_DELIVERED] = {"Successful Mail Delivery Report",
			      "was\ndelivered to the following", "delivered"},
	[REPORT_RELAYED] = {"Successful Mail Delivery Report",
			    "was\nrelayed, to a host that does not report "
			    "delivery, for the following", "relayed"},
	[REPORT_DELAYED] = {"Delayed Mail (still being retried)",
			    "has not\nyet been delivered (it will be retried) "
			    "to the following", "delayed"},
	[REPORT_EXPANDED] = {"Successful Mail Delivery Report",
			     "was\nreceived, to be delivered to several addresses "
			     "each, for the following", "expanded"},
};

const char *bounce_action_name(enum report_kind kind)
{
	return report_words[kind].action;
}

/* RFC 6533: the report on an internationalised message (SMTPUTF8, or
 * a recipient with a UTF-8 address) has the global types, whose fields
 * and returned header may be UTF-8; Postfix does the same. So does the
 * report on a message whose header has 8-bit octets without SMTPUTF8
 * (raw UTF-8, as many clients send it): message/rfc822 must not be
 * encoded (RFC 2046 5.2.1), so to a next hop without 8BITMIME it could
 * not go at all, while message/global may be base64 (RFC 6532 3.7),
 * as the 7-bit conversion (mime.c) does with any part not rfc822. */
static int global_report(const struct spool_msg *m, const unsigned *idx,
			 unsigned n, const struct buf *ret)
{
	int global = m->smtputf8 || has_8bit(ret->s, header_section(ret));
	for (unsigned i = 0; i < n && !global; i++) {
		const struct spool_target *t = &m->t[idx[i]];
		global = has_8bit(t->addr, strlen(t->addr)) ||
			 has_8bit(t->orig, strlen(t->orig));
	}
	return global;
}

/* The delivery report's fields for one recipient (RFC 3464 2.3), after
 * the blank line that separates them from the ones before. */
static void put_recipient_fields(struct buf *b, const struct spool_target *t,
				 enum report_kind kind)
{
	const char *type = has_8bit(t->addr, strlen(t->addr)) ? "utf-8"
							       : "rfc822";
	buf_printf(b, "\nFinal-Recipient: %s; %s\n", type, t->addr);
	const char *semi = t->orcpt ? strchr(t->orcpt, ';') : NULL;
	if (semi) {
		/* RFC 3461 4.2: the client's ORCPT, as it gave it */
		buf_printf(b, "Original-Recipient: %.*s; ",
			   (int)(semi - t->orcpt), t->orcpt);
		put_xtext(b, semi + 1);
		buf_addc(b, '\n');
	} else if (strcmp(t->orig, t->addr))
		buf_printf(b, "Original-Recipient: %s; %s\n",
			   has_8bit(t->orig, strlen(t->orig)) ? "utf-8"
							      : "rfc822",
			   t->orig);
	buf_printf(b, "Action: %s\nStatus: %s\n", report_words[kind].action,
		   t->dsn);
	if (t->remote[0]) {
		char rhost[300];
		fmt_snprintf(rhost, sizeof rhost, "%s", t->remote);
		rhost[strcspn(rhost, "[")] = 0;
		buf_printf(b, "Remote-MTA: dns; %s\n", rhost);
		/* the peer's own words, after "host said: " */
		const char *said = strstr(t->text, " said: ");
		buf_printf(b, "Diagnostic-Code: smtp; %d %s %s\n", t->code,
			   t->dsn, said ? said + 7 : t->text);
	} else {
		buf_printf(b, "Diagnostic-Code: x-postmaster; %d %s %s\n",
			   t->code, t->dsn, t->text);
	}
}

static void compose(const struct cf *cf, const struct spool_msg *m,
		    const unsigned *idx, unsigned n, enum report_kind kind,
		    const char *to, const char *id, struct buf *b)
{
	const char *host = cf->core->v[CORE_HOSTNAME].s;
	struct buf ret = {0};
	/* RFC 3461 4.3: RET is about failures; other reports carry headers */
	int whole = returned_content(cf, m, kind == REPORT_FAILED, &ret);
	int global = global_report(m, idx, n, &ret);
	char date[64], arrival[64];
	time_t now = time(NULL);
	date_rfc5322(now, date, sizeof date);
	date_rfc5322((time_t)m->arrival, arrival, sizeof arrival);
	char boundary[80];
	fmt_snprintf(boundary, sizeof boundary, "%s/%s", id, host);
	buf_printf(b, "Received: by %s (postmaster) id %s; %s\n", host, id, date);
	buf_printf(b, "Date: %s\n", date);
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", host);
	buf_printf(b, "To: <%s>\n", to);
	buf_printf(b, "Subject: %s\n", report_words[kind].subject);
	buf_printf(b, "Message-ID: <%s.bounce@%s>\n", id, host);
	buf_printf(b, "Auto-Submitted: auto-replied\n");
	buf_printf(b, "MIME-Version: 1.0\n");
	buf_printf(b, "Content-Type: multipart/report; "
		      "report-type=%sdelivery-status;\n\tboundary=\"%s\"\n",
		   global ? "global-" : "", boundary);
	buf_printf(b, "\nThis is a MIME-encapsulated message.\n\n");

	buf_printf(b, "--%s\n", boundary);
	buf_printf(b, "Content-Description: Notification\n"
		      "Content-Type: text/plain; charset=utf-8\n\n");
	buf_printf(b, "This is the mail system at host %s.\n\n", host);
	buf_printf(b, "Your message, received %s with queue id %s, %s "
		      "recipient%s:\n\n",
		   arrival, m->id, report_words[kind].what, n == 1 ? "" : "s");
	for (unsigned i = 0; i < n; i++) {
		const struct spool_target *t = &m->t[idx[i]];
		buf_printf(b, "<%s>: %d %s %s\n", t->addr, t->code, t->dsn,
			   t->text);
	}
	buf_printf(b, "\n%s at the end.\n\n",
		   whole ? "Your message follows"
			 : "The headers of your message follow");

	buf_printf(b, "--%s\n", boundary);
	buf_printf(b, "Content-Description: Delivery report\n"
		      "Content-Type: message/%sdelivery-status\n\n",
		   global ? "global-" : "");
	buf_printf(b, "Reporting-MTA: dns; %s\n", host);
	buf_printf(b, "X-Postmaster-Queue-ID: %s\n", m->id);
	buf_printf(b, "X-Postmaster-Sender: rfc822; %s\n", m->from);
	if (m->envid) {
		buf_adds(b, "Original-Envelope-Id: ");
		put_xtext(b, m->envid);
		buf_addc(b, '\n');
	}
	buf_printf(b, "Arrival-Date: %s\n", arrival);
	for (unsigned i = 0; i < n; i++)
		put_recipient_fields(b, &m->t[idx[i]], kind);
	buf_printf(b, "\n--%s\n", boundary);
	if (whole)
		buf_printf(b, "Content-Description: Undelivered Message\n"
			      "Content-Type: message/%s\n\n",
			   global ? "global" : "rfc822");
	else
		buf_printf(b, "Content-Description: Undelivered Message "
			      "Headers\nContent-Type: %s\n\n",
			   global ? "message/global-headers"
				  : "text/rfc822-headers");
	buf_add(b, ret.s, ret.len);
	buf_free(&ret);
	buf_printf(b, "\n--%s--\n", boundary);
}

/* The targets of a report's recipient as the listener smtpd routes it;
 * 0 when it has some, else -1 with the routing's reply in why. */
static int route_to(const struct cf *cf, const struct cf_section *smtpd,
		    const char *rcpt, struct spool_msg *b, char *why, size_t n)
{
	struct route_result r;
	route_resolve(cf, smtpd, rcpt, strlen(rcpt), ROUTE_UTF8, &r);
	int ok = r.code == 250;
	for (uint32_t i = 0; ok && i < r.nt; i++)
		spool_add_target(b, &r.t[i], rcpt);
	if (!ok)
		fmt_snprintf(why, n, "<%s> has no route: %d %s %s", rcpt, r.code,
			 r.dsn, r.text);
	route_result_free(&r);
	return ok ? 0 : -1;
}

/* The listener whose tables route orig's reports: the [smtpd] that
 * accepted it, or NULL (the global tables) for the built-in listener and
 * for one that is no longer in the configuration (logged). */
static const struct cf_section *listener_of(const struct cf *cf,
					    const struct spool_msg *orig)
{
	if (!orig->smtpd || !orig->smtpd[0])
		return NULL;
	const struct cf_section *smtpd = cf_find(cf, CF_SMTPD, orig->smtpd);
	if (!smtpd) {
		char why[300];
		fmt_snprintf(why, sizeof why,
			 "no [smtpd \"%s\"] in the configuration: routed "
			 "with the global tables",
			 orig->smtpd);
		log_event(LOG_L_WARNING, "id", orig->id, "event", "bounce",
			  "smtpd", orig->smtpd, "reason", why, NULL);
	}
	return smtpd;
}

/* Why a failed report is reported again: its first failure. */
static void failed_bounce_reason(const struct spool_msg *orig,
				 const unsigned *idx, unsigned n, char *why,
				 size_t len)
{
	const struct spool_target *t = &orig->t[idx[0]];
	fmt_snprintf(why, len, "the bounce to <%s>%s failed: %d %s %s", t->addr,
		 n > 1 ? " and others" : "", t->code, t->dsn, t->text);
}

int bounce_create(const struct cf *cf, int dirfd, const struct spool_msg *orig,
		  const unsigned *idx, unsigned n, enum report_kind kind,
		  struct spool_msg *out)
{
	memset(out, 0, sizeof *out);
	out->data_fd = -1;
	int failed = kind == REPORT_FAILED;
	int to_sender = orig->origin == SP_CLIENT && orig->from[0] &&
			(!failed ||
			 cf->core->v[CORE_BOUNCE_TO].n != BOUNCE_POSTMASTER);
	int to_postmaster = failed && (orig->origin != SP_CLIENT ||
				       !orig->from[0] ||
				       cf->core->v[CORE_BOUNCE_TO].n !=
					       BOUNCE_SENDER);
	if (!to_sender && !to_postmaster)
		return 1; /* only a failure is worth postmaster's time */
	char why[ADDR_PATH_MAX + 600] = "";
	if (orig->origin != SP_CLIENT)
		failed_bounce_reason(orig, idx, n, why, sizeof why);
	if (orig->origin == SP_DOUBLE_BOUNCE) {
		log_event(LOG_L_ERR, "id", orig->id, "event", "double-bounce",
			  "status", "dropped", "reason", why, NULL);
		return 1;
	}
	out->from = xstrdup("");
	out->origin = to_sender ? SP_BOUNCE : SP_DOUBLE_BOUNCE;
	out->sid = xstrdup(orig->id);
	out->client = xstrdup("local");
	/* a failed bounce's own report is routed by the same listener */
	out->smtpd = xstrdup(orig->smtpd ? orig->smtpd : "");
	const struct cf_section *smtpd = listener_of(cf, orig);
	if (to_sender && !failed &&
	    route_to(cf, smtpd, orig->from, out, why, sizeof why) < 0) {
		log_event(LOG_L_WARNING, "id", orig->id, "event", "report",
			  "action", report_words[kind].action, "status",
			  "dropped", "reason", why, NULL);
		spool_msg_free(out);
		return 1;
	}
	if (to_sender && failed &&
	    route_to(cf, smtpd, orig->from, out, why, sizeof why) < 0) {
		/* the sender cannot be reached at all: postmaster's turn */
		to_postmaster = 1;
		to_sender = 0;
		out->origin = SP_DOUBLE_BOUNCE;
	}
	if (why[0])
		log_event(LOG_L_WARNING, "id", orig->id, "event", "bounce",
			  "to", "postmaster", "reason", why, NULL);
	char pm_why[600];
	if (to_postmaster &&
	    route_to(cf, smtpd, "postmaster", out, pm_why, sizeof pm_why) < 0 &&
	    !to_sender) {
		log_event(LOG_L_ERR, "id", orig->id, "event", "bounce",
			  "status", "dropped", "reason", pm_why, NULL);
		spool_msg_free(out);
		return 1;
	}
	if (spool_create(dirfd, out) < 0) {
		int e = errno;
		spool_msg_free(out);
		errno = e;
		return -1;
	}
	struct buf b = {0};
	char to[ADDR_PATH_MAX + 32];
	if (to_sender)
		fmt_snprintf(to, sizeof to, "%s", orig->from);
	else
		fmt_snprintf(to, sizeof to, "postmaster@%s",
			 cf->core->v[CORE_HOSTNAME].s);
	compose(cf, orig, idx, n, kind, to, out->id, &b);
	out->eightbit = has_8bit(b.s, b.len);
	out->smtputf8 = has_8bit(to, strlen(to));
	int bad = spool_begin_message(out) < 0 ||
		  write_all(out->data_fd, b.s, b.len) < 0;
	buf_free(&b);
	if (bad || spool_commit(dirfd, out) < 0) {
		int e = errno;
		spool_discard(dirfd, out);
		spool_msg_free(out);
		errno = e;
		return -1;
	}
	return 0;
}
