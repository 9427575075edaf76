/*
 * reply.c - the reply vocabulary (see reply.h): enhanced codes written
 * from their names, and the sysexits table for mailers' exit statuses.
 */
#include "reply.h"
#include "fmt.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* Writes n (below 1000) in decimal at p; returns the end. */
static char *put_decimal(char *p, unsigned n)
{
	if (n >= 100)
		*p++ = (char)('0' + n / 100);
	if (n >= 10)
		*p++ = (char)('0' + n / 10 % 10);
	*p++ = (char)('0' + n % 10);
	return p;
}

void esc_format(char dsn[ESC_LEN], int class, enum esc e)
{
	if (e == ESC_NONE) {
		dsn[0] = 0;
		return;
	}
	/* RFC 3463: a class digit, subject and detail of 1 to 3 digits;
	 * written by hand, since every reply has one (snprintf costs a
	 * session about 1 300 instructions each time) */
	char *p = dsn;
	*p++ = (char)('0' + (unsigned)class % 10);
	*p++ = '.';
	p = put_decimal(p, (unsigned)e / 1000 % 1000);
	*p++ = '.';
	p = put_decimal(p, (unsigned)e % 1000);
	*p = 0;
}

void esc_for_code(char dsn[ESC_LEN], int code, enum esc e)
{
	esc_format(dsn, code / 100, e);
}

void reply_set(struct reply *r, int code, enum esc e, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	esc_for_code(r->dsn, code, e);
	va_start(ap, fmt);
	fmt_vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
}

void reply_code(struct reply *r, int code, enum esc e)
{
	r->code = code;
	esc_for_code(r->dsn, code, e);
	r->text[0] = 0;
}

void reply_defer(struct reply *r)
{
	r->code = 451;
	if (r->dsn[0])
		r->dsn[0] = '4';
}

int reply_too_many_recipients(struct reply *r)
{
	if ((r->code != 452 && r->code != 552) || strcmp(r->dsn + 1, ".5.3"))
		return 0;
	r->code = 452;
	r->dsn[0] = '4';
	return 1;
}

/* ------------------------------------------------------------------ */
/* Exit statuses (Postfix's sys_exits.c is the model; SPEC 7)          */

static const struct sysexit {
	int status;
	int soft; /* 451 and class 4, else 550 and class 5 */
	enum esc esc;
	const char *text;
} sysexits[] = {
	{EX_USAGE, 0, ESC_OTHER_MAIL_SYSTEM_STATUS, "mailer usage error"},
	{EX_DATAERR, 0, ESC_OTHER_MEDIA_ERROR, "data format error"},
	{EX_NOINPUT, 0, ESC_OTHER_MAIL_SYSTEM_STATUS,
	 "mailer cannot open input"},
	{EX_NOUSER, 0, ESC_BAD_DEST_MAILBOX, "user unknown"},
	{EX_NOHOST, 0, ESC_BAD_DEST_SYSTEM, "host name unknown"},
	{EX_UNAVAILABLE, 0, ESC_OTHER_MAIL_SYSTEM_STATUS,
	 "service unavailable"},
	{EX_SOFTWARE, 0, ESC_OTHER_MAIL_SYSTEM_STATUS,
	 "internal software error"},
	{EX_OSERR, 1, ESC_OTHER_MAIL_SYSTEM_STATUS, "system resource problem"},
	{EX_OSFILE, 0, ESC_OTHER_MAIL_SYSTEM_STATUS,
	 "critical OS file missing"},
	{EX_CANTCREAT, 0, ESC_OTHER_MAILBOX_STATUS,
	 "cannot create user output file"},
	{EX_IOERR, 0, ESC_OTHER_MAIL_SYSTEM_STATUS, "input/output error"},
	{EX_TEMPFAIL, 1, ESC_OTHER_MAIL_SYSTEM_STATUS, "temporary failure"},
	{EX_PROTOCOL, 0, ESC_OTHER_PROTOCOL_STATUS, "remote error in protocol"},
	{EX_NOPERM, 0, ESC_DELIVERY_NOT_AUTHORIZED, "permission denied"},
	{EX_CONFIG, 0, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
	 "local configuration error"},
};

static const struct sysexit *sysexit_find(int status)
{
	for (size_t i = 0; i < sizeof sysexits / sizeof *sysexits; i++)
		if (sysexits[i].status == status)
			return &sysexits[i];
	return NULL;
}

int sysexits_softerror(int status)
{
	const struct sysexit *x = sysexit_find(status);
	return x && x->soft;
}

int sysexits_for_code(int code)
{
	return code < 300 ? EX_OK : code < 500 ? EX_TEMPFAIL : EX_NOUSER;
}

int reply_exit_status(const struct reply *r)
{
	if (r->code >= 200 && r->code < 300)
		return EX_OK;
	if (r->code >= 400 && r->code < 500)
		return EX_TEMPFAIL;
	int status = -1;
	for (size_t i = 0; i < sizeof sysexits / sizeof *sysexits; i++) {
		char dsn[ESC_LEN];
		esc_format(dsn, sysexits[i].soft ? 4 : 5, sysexits[i].esc);
		if (!strcmp(dsn, r->dsn))
			status = status < 0 ? sysexits[i].status : -2;
	}
	if (status > 0)
		return status;
	return !strncmp(r->dsn, "5.1.", 4) ? EX_NOUSER : EX_UNAVAILABLE;
}

/* "D.S.N text" with D in 2, 4, 5. Returns the text after it or NULL. */
static const char *dsn_prefix(const char *line, char *dsn, size_t n)
{
	const char *p = line;
	if (!line || !(*p == '2' || *p == '4' || *p == '5') || p[1] != '.')
		return NULL;
	p += 2;
	for (int part = 0; part < 2; part++) {
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 4) {
			p++;
			digits++;
		}
		if (!digits || digits > 3)
			return NULL;
		if (part == 0 && *p++ != '.')
			return NULL;
	}
	if (*p != ' ' && *p != 0)
		return NULL;
	size_t len = (size_t)(p - line);
	if (len >= n)
		return NULL;
	memcpy(dsn, line, len);
	dsn[len] = 0;
	while (*p == ' ')
		p++;
	return p;
}

void exit_status_reply(int wstatus, const char *first_line, struct reply *out)
{
	char dsn[ESC_LEN];
	const char *text = dsn_prefix(first_line, dsn, sizeof dsn);
	struct buf esc = {0};
	if (text) {
		buf_add_escaped(&esc, text,
				strlen(text) > 200 ? 200 : strlen(text));
		if (!esc.s)
			buf_adds(&esc, "");
	}
	if (WIFSIGNALED(wstatus)) {
		reply_set(out, 451, ESC_OTHER_MAIL_SYSTEM_STATUS,
			  "mailer killed by signal %d", WTERMSIG(wstatus));
		goto said;
	}
	int st = WEXITSTATUS(wstatus);
	if (st == EX_OK) {
		reply_set(out, 250, ESC_OTHER, "delivered");
		goto done;
	}
	const struct sysexit *x = sysexit_find(st);
	int code = !x ? 554 : sysexits_softerror(st) ? 451 : 550;
	char d[ESC_LEN];
	esc_for_code(d, code, x ? x->esc : ESC_OTHER_MAIL_SYSTEM_STATUS);
	/* the mailer's own D.S.N counts when its class agrees */
	if (text && dsn[0] == d[0]) {
		out->code = code;
		fmt_snprintf(out->dsn, sizeof out->dsn, "%s", dsn);
		fmt_snprintf(out->text, sizeof out->text, "%s", esc.s);
		goto done;
	}
	reply_set(out, code, x ? x->esc : ESC_OTHER_MAIL_SYSTEM_STATUS,
		  "%s (exit status %d)", x ? x->text : "mailer failed", st);
said:
	/* what the mailer said, as Postfix's "Command output:": without
	 * it the bounce and the log tell no one why */
	if (first_line) {
		size_t n = strlen(first_line);
		while (n && (first_line[n - 1] == '\r' ||
			     first_line[n - 1] == ' '))
			n--;
		struct buf said = {0};
		buf_add_escaped(&said, first_line, n > 200 ? 200 : n);
		if (said.s)
			fmt_snprintf(out->text + strlen(out->text),
				     sizeof out->text - strlen(out->text),
				     ": %s", said.s);
		buf_free(&said);
	}
done:
	buf_free(&esc);
}
