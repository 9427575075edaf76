/*
 * policy.c - the policy delegation client (see policy.h).
 *
 * Actions, as Postfix's access(5) defines them for a policy service:
 * OK and DUNNO accept; REJECT is 550 5.7.1, DEFER and DEFER_IF_PERMIT
 * 450 4.7.1 (no later restriction can permit here), each with the
 * enhanced code its text may begin with; DEFER_IF_REJECT
 * changes nothing (nothing later rejects); NNN [X.Y.Z] text is that
 * reply; PREPEND adds a header field; WARN and INFO are logged. Anything
 * else (HOLD, DISCARD, FILTER, REDIRECT, BCC, garbage) is unknown.
 */
#include "policy.h"
#include "client.h"
#include "fmt.h"
#include "io.h"
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

void policy_attr(struct buf *req, const char *name, const char *value)
{
	buf_printf(req, "%s=", name);
	for (const char *p = value ? value : ""; *p; p++)
		buf_addc(req, (unsigned char)*p < 32 || *p == 127 ? '?' : *p);
	buf_addc(req, '\n');
}

static int policy_connect(struct policy_client *pc, char *why, size_t whyn)
{
	int fd = client_connect(&pc->ss, pc->len, pc->timeout_ms, why, whyn);
	if (fd < 0)
		return -1;
	pc->io = xmalloc(sizeof *pc->io);
	io_init_socket(pc->io, fd, pc->timeout_ms);
	return 0;
}

void policy_close(struct policy_client *pc)
{
	if (!pc->io)
		return;
	close(pc->io->rfd);
	io_free(pc->io);
	free(pc->io);
	pc->io = NULL;
}

/* Reads one answer up to its empty line, all of it within the timeout
 * (a service that trickles its lines meets it as a silent one does); the
 * action's value in action. 0, 1 when the service closed before
 * answering at all, or -1. */
static int read_answer(struct policy_client *pc, char *action, size_t n,
		       char *why, size_t whyn)
{
	char line[POLICY_LINE_MAX + 2];
	int found = 0;
	long long deadline = io_now_ms() + pc->timeout_ms;
	for (int i = 0; i <= POLICY_MAX_LINES; i++) {
		size_t len;
		int bare;
		enum io_status st = io_getline_until(pc->io, deadline, line,
						     POLICY_LINE_MAX, &len,
						     &bare);
		/* closed before answering: at its end of file, or with our
		 * request unread (a reset) when it closed as we wrote */
		if ((st == IO_EOF || st == IO_ERROR) && i == 0)
			return 1;
		if (st == IO_TIMEOUT) {
			fmt_snprintf(why, whyn, "timed out waiting for the answer");
			return -1;
		}
		if (st != IO_OK && st != IO_TOOLONG) {
			fmt_snprintf(why, whyn, "connection lost in the answer");
			return -1;
		}
		if (st == IO_OK && len == 0) {
			if (found)
				return 0;
			fmt_snprintf(why, whyn, "an answer without action=");
			return -1;
		}
		if (st == IO_OK && !found && !strncmp(line, "action=", 7)) {
			fmt_snprintf(action, n, "%s", line + 7);
			found = 1;
		}
	}
	fmt_snprintf(why, whyn, "an answer of more than %d lines",
		 POLICY_MAX_LINES);
	return -1;
}

int policy_ask(struct policy_client *pc, const struct buf *req, char *action,
	       size_t n, char *why, size_t whyn)
{
	/* a kept connection that has something to read before the request
	 * is out of step (a service that sent a blank line too many, or two
	 * answers): that would be taken for this request's answer, so the
	 * connection is opened again (as Postfix's client recovers one that
	 * broke); so is one the service has closed */
	if (pc->io && io_input_pending(pc->io))
		policy_close(pc);
	/* a kept connection the service has closed is opened again, once */
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = !pc->io;
		if (fresh && policy_connect(pc, why, whyn) < 0)
			return -1;
		io_write(pc->io, req->s, req->len);
		io_write(pc->io, "\n", 1);
		int r = io_flush(pc->io) < 0 ? 1 : 0;
		if (!r)
			r = read_answer(pc, action, n, why, whyn);
		if (r == 0)
			return 0;
		policy_close(pc);
		if (r < 0 || fresh) {
			if (r > 0)
				fmt_snprintf(why, whyn, "the service closed the "
						    "connection");
			return -1;
		}
	}
	return -1;
}

/* Whether word (up to its end at e) is keyword, any case. */
static int is_word(const char *word, size_t wl, const char *keyword)
{
	return wl == strlen(keyword) && !strncasecmp(word, keyword, wl);
}

/* The text after the keyword, or def; control characters dropped. */
static void take_text(const char *p, const char *def, char *out, size_t n)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		p = def;
	size_t o = 0;
	for (; *p && o + 1 < n; p++)
		if ((unsigned char)*p >= 32 && *p != 127)
			out[o++] = *p;
	out[o] = 0;
}

/* An enhanced code X.Y.Z at *p, its class made the reply's (as
 * Postfix does): copied to dsn, *p past it. Else dsn stays. */
static void take_dsn(const char **p, int code, char dsn[ESC_LEN])
{
	const char *q = *p;
	while (*q == ' ')
		q++;
	size_t dl = strspn(q, "0123456789.");
	unsigned x, y, z;
	char tail, tmp[ESC_LEN];
	if (!dl || dl >= sizeof tmp || (q[dl] != ' ' && q[dl]))
		return;
	memcpy(tmp, q, dl);
	tmp[dl] = 0;
	if (sscanf(tmp, "%u.%u.%u%c", &x, &y, &z, &tail) != 3 || x > 9 ||
	    y > 999 || z > 999)
		return;
	char t[40];
	fmt_snprintf(t, sizeof t, "%d.%u.%u", code / 100, y, z);
	memcpy(dsn, t, strlen(t) + 1); /* at most 9 bytes: y, z < 1000 */
	*p = q + dl;
}

static void refuse(struct policy_verdict *v, int code, const char *rest,
		   const char *def)
{
	char dsn[ESC_LEN];
	esc_for_code(dsn, code, ESC_DELIVERY_NOT_AUTHORIZED);
	take_dsn(&rest, code, dsn);
	take_text(rest, def, v->text, POLICY_TEXT_MAX + 1);
	v->kind = POLICY_REFUSE;
	v->r.code = code;
	fmt_snprintf(v->r.dsn, sizeof v->r.dsn, "%s", dsn);
	fmt_snprintf(v->r.text, sizeof v->r.text, "%s", v->text);
}

/* "NNN [X.Y.Z] text": 4xx and 5xx only. */
static void numeric_action(const char *a, struct policy_verdict *v)
{
	int code = (a[0] - '0') * 100 + (a[1] - '0') * 10 + (a[2] - '0');
	refuse(v, code, a + 3, code < 500 ? "Try again later" : "Access denied");
}

/* A header field as PREPEND gives it: "Name: value", one line. */
static int header_ok(const char *h)
{
	size_t nl = strcspn(h, ":");
	if (!nl || !h[nl] || strlen(h) > POLICY_HEADER_MAX)
		return 0;
	for (size_t i = 0; i < nl; i++)
		if ((unsigned char)h[i] <= 32 || (unsigned char)h[i] >= 127)
			return 0;
	for (const char *p = h + nl; *p; p++)
		if (((unsigned char)*p < 32 && *p != '\t') || *p == 127)
			return 0;
	return 1;
}

void policy_action(const char *a, struct policy_verdict *v)
{
	memset(v, 0, sizeof *v);
	size_t wl = strcspn(a, " \t");
	const char *rest = a + wl;
	if (is_word(a, wl, "OK") || is_word(a, wl, "DUNNO") ||
	    is_word(a, wl, "DEFER_IF_REJECT")) {
		v->kind = POLICY_DUNNO;
	} else if (is_word(a, wl, "REJECT")) {
		refuse(v, 550, rest, "Access denied");
	} else if (is_word(a, wl, "DEFER") ||
		   is_word(a, wl, "DEFER_IF_PERMIT")) {
		refuse(v, 450, rest, "Try again later");
	} else if (wl == 3 && (a[0] == '4' || a[0] == '5') &&
		   isdigit((unsigned char)a[1]) &&
		   isdigit((unsigned char)a[2])) {
		numeric_action(a, v);
	} else if (is_word(a, wl, "PREPEND")) {
		/* one byte more than a field may hold: a longer one is
		 * refused by header_ok, never cut */
		take_text(rest, "", v->text, sizeof v->text);
		v->kind = header_ok(v->text) ? POLICY_PREPEND : POLICY_UNKNOWN;
	} else if (is_word(a, wl, "WARN") || is_word(a, wl, "INFO")) {
		take_text(rest, "", v->text, POLICY_TEXT_MAX + 1);
		v->kind = POLICY_LOG;
	} else {
		v->kind = POLICY_UNKNOWN;
	}
}
