/*
 * log.c - one key=value line per event (see log.h).
 *
 * A line looks like `sid=1a2b3c4d5e6f from=<a@b> to=<c@d> status=sent
 * dsn=2.0.0 reply="250 2.0.0 OK"`: greppable like Postfix's. Client bytes
 * never reach a log line unescaped. Without a syslog socket the syslog
 * logger writes to standard error instead (saying so once), unless
 * standard error is a socket other than the journal's, which under inetd
 * is the client's connection.
 */
#include "log.h"
#include "fmt.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum sink { SINK_STDERR, SINK_SYSLOG, SINK_JOURNAL, SINK_FILE };

static struct {
	enum sink sink;
	int fd;
	char sid[32];
	char ident[64];
	int (*journal_sendv)(const struct iovec *iov, int n);
	int echo; /* warnings and errors also to stderr (a terminal) */
} L = {SINK_STDERR, 2, "", "postmaster", NULL, 0};

/* Opens syslog, or falls back to stderr when no syslog daemon listens on
 * _PATH_LOG (a container, a minimal system): the lines would be lost. */
static void open_syslog(int facility)
{
	static int warned;
	struct stat st;
	if ((stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode)) ||
	    !stderr_may_log()) {
		L.sink = SINK_SYSLOG;
		openlog(L.ident, LOG_PID | LOG_NDELAY, facility);
		return;
	}
	L.sink = SINK_STDERR;
	L.fd = 2;
	/* a constant line written as is: stdio's set-up of stderr (fstat,
	 * ioctl, lseek) for dprintf cost each session three more syscalls */
	static const char note[] = "postmaster: no syslog socket " _PATH_LOG
				   ": logging to standard error\n";
	if (!warned++)
		(void)write_all(2, note, sizeof note - 1);
}

void log_echo_stderr(void)
{
	L.echo = 1;
}

static int facility_code(const char *f)
{
	static const struct {
		const char *name;
		int code;
	} t[] = {{"mail", LOG_MAIL},	 {"daemon", LOG_DAEMON},
		 {"user", LOG_USER},	 {"local0", LOG_LOCAL0},
		 {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
		 {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
		 {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
		 {"local7", LOG_LOCAL7}};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (!strcmp(f, t[i].name))
			return t[i].code;
	return LOG_MAIL;
}

/* A [logfile NAME] section: its file, named by strftime() now. */
RARE_PATH static int open_log_file(const struct cf *cf, const char *name,
				   char *why, size_t whylen)
{
	const struct cf_section *lf = cf_find(cf, CF_LOGFILE, name);
	if (!lf) {
		fmt_snprintf(why, whylen, "no logger '%s'", name);
		return -1;
	}
	char path[4096];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	if (!strftime(path, sizeof path, lf->v[LOGFILE_FILE].s, &tm)) {
		fmt_snprintf(why, whylen, "log file name too long");
		return -1;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		fmt_snprintf(why, whylen, "cannot open log file %s: %m", path);
		return -1;
	}
	L.sink = SINK_FILE;
	L.fd = fd;
	return 0;
}

int log_open(const struct cf *cf, const char *name, const char *sid,
	     char *why, size_t whylen)
{
	static const char *const facilities[] = {
		"mail", "daemon", "user", "local0", "local1", "local2",
		"local3", "local4", "local5", "local6", "local7"};
	fmt_snprintf(L.sid, sizeof L.sid, "%s", sid);
	fmt_snprintf(L.ident, sizeof L.ident, "%s", cf->syslog->v[SYSLOG_IDENT].s);
	if (!strcmp(name, "stderr")) {
		L.sink = SINK_STDERR;
		L.fd = 2;
		return 0;
	}
	if (!strcmp(name, "syslog")) {
		open_syslog(facility_code(
			facilities[cf->syslog->v[SYSLOG_FACILITY].n]));
		return 0;
	}
	if (!strcmp(name, "journal")) {
		void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
		if (h)
			*(void **)&L.journal_sendv = dlsym(h, "sd_journal_sendv");
		if (!L.journal_sendv) {
			fmt_snprintf(why, whylen, "cannot load libsystemd.so.0 for the "
					      "journal logger: %s",
				 dlerror());
			return -1;
		}
		L.sink = SINK_JOURNAL;
		return 0;
	}
	return open_log_file(cf, name, why, whylen);
}

void log_open_syslog(const char *sid)
{
	fmt_snprintf(L.sid, sizeof L.sid, "%s", sid);
	open_syslog(LOG_MAIL);
}

void log_close(void)
{
	if (L.sink == SINK_FILE)
		close(L.fd);
	if (L.sink == SINK_SYSLOG)
		closelog();
	L.sink = SINK_STDERR;
	L.fd = 2;
}

static int needs_quotes(const char *v)
{
	if (!*v)
		return 1;
	for (; *v; v++)
		if (*v == ' ' || *v == '"' || *v == '=')
			return 1;
	return 0;
}

void log_event(enum log_level level, const char *key, ...)
{
	struct buf line = {0};
	struct iovec iov[40];
	struct buf fields[40];
	int nf = 0;
	va_list ap;
	/* no printf here: every session logs a few lines */
	buf_adds(&line, "sid=");
	buf_adds(&line, L.sid);
	va_start(ap, key);
	for (const char *k = key; k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		if (!v)
			continue;
		struct buf esc = {0};
		buf_add_escaped(&esc, v, strlen(v));
		if (!esc.s)
			buf_adds(&esc, "");
		buf_addc(&line, ' ');
		buf_adds(&line, k);
		buf_addc(&line, '=');
		if (needs_quotes(esc.s)) {
			buf_addc(&line, '"');
			for (const char *p = esc.s; *p; p++) {
				if (*p == '"')
					buf_addc(&line, '\\');
				buf_addc(&line, *p);
			}
			buf_addc(&line, '"');
		} else {
			buf_adds(&line, esc.s);
		}
		if (L.sink == SINK_JOURNAL && nf < 30) {
			memset(&fields[nf], 0, sizeof fields[nf]);
			buf_adds(&fields[nf], "POSTMASTER_");
			for (const char *p = k; *p; p++)
				buf_addc(&fields[nf], *p == '-' ? '_'
					 : (*p >= 'a' && *p <= 'z') ? (char)(*p - 32)
								    : *p);
			buf_addc(&fields[nf], '=');
			buf_adds(&fields[nf], esc.s);
			nf++;
		}
		buf_free(&esc);
	}
	va_end(ap);
	switch (L.sink) {
	case SINK_SYSLOG:
		syslog(level == LOG_L_ERR       ? LOG_ERR
		       : level == LOG_L_WARNING ? LOG_WARNING
						: LOG_INFO,
		       "%s", line.s);
		break;
	case SINK_JOURNAL: {
		struct buf msg = {0}, prio = {0}, ident = {0}, sid = {0};
		buf_printf(&msg, "MESSAGE=%s", line.s);
		buf_printf(&prio, "PRIORITY=%d",
			   level == LOG_L_ERR ? 3 : level == LOG_L_WARNING ? 4 : 6);
		buf_printf(&ident, "SYSLOG_IDENTIFIER=%s", L.ident);
		buf_printf(&sid, "POSTMASTER_SID=%s", L.sid);
		struct buf *fixed[] = {&msg, &prio, &ident, &sid};
		int n = 0;
		for (int i = 0; i < 4; i++)
			iov[n++] = (struct iovec){fixed[i]->s, fixed[i]->len};
		for (int i = 0; i < nf; i++)
			iov[n++] = (struct iovec){fields[i].s, fields[i].len};
		L.journal_sendv(iov, n);
		for (int i = 0; i < 4; i++)
			buf_free(fixed[i]);
		break;
	}
	case SINK_FILE: {
		char ts[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%z", &tm);
		struct buf out = {0};
		buf_printf(&out, "%s %s[%ld]: %s\n", ts, L.ident, (long)getpid(),
			   line.s);
		ssize_t w = write(L.fd, out.s, out.len);
		(void)w;
		buf_free(&out);
		break;
	}
	case SINK_STDERR: {
		buf_addc(&line, '\n');
		ssize_t w = write(L.fd, line.s, line.len);
		(void)w;
		break;
	}
	}
	if (L.echo && level != LOG_L_INFO &&
	    !(L.sink == SINK_STDERR && L.fd == 2))
		dprintf(2, "postmaster: %s\n", line.s);
	for (int i = 0; i < nf; i++)
		buf_free(&fields[i]);
	buf_free(&line);
}
