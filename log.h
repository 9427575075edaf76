/*
 * log.h - one key=value line per event (SPEC 9).
 *
 * Owns: the logger a session uses (stderr, syslog, the journal, a
 * [logfile]), the session id in every line, and the escaping of every
 * value. The journal's libsystemd is loaded with dlopen the first time the
 * journal logger is used, never at start-up (SPEC 11).
 *
 * Never: writes a value as it came (each is escaped), or loads libsystemd
 * for any logger but the journal.
 */
#ifndef POSTMASTER_LOG_H
#define POSTMASTER_LOG_H

#include "cf.h"

enum log_level { LOG_L_INFO, LOG_L_WARNING, LOG_L_ERR };

/* Chooses the logger named by name (syslog, stderr, journal or a
 * [logfile]). Opens a [logfile] now, before privileges are dropped.
 * Returns -1 with a reason when it cannot. */
int log_open(const struct cf *cf, const char *name, const char *sid,
	     char *why, size_t whylen);
/* Syslog with the defaults, when there is no usable configuration. */
void log_open_syslog(const char *sid);
void log_close(void);
/* From now on warnings and errors also go to standard error, whatever the
 * logger: a session started on a terminal tells its user why it refuses. */
void log_echo_stderr(void);

/*
 * Logs one event: fields is a list of key, value pairs ending in NULL.
 * Values are escaped and quoted when they contain blanks.
 */
void log_event(enum log_level level, const char *key, ...)
	__attribute__((sentinel));

#endif
