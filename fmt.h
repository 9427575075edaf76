/*
 * fmt.h - snprintf for every line postmaster writes.
 *
 * Owns: formatting of replies, log lines, header fields and file names
 * with the printf conversions the code uses (flags '-' and '0', width and
 * precision, also as '*'; hh h l ll z j t; d i u o x X c s m %), each
 * exactly as C's snprintf formats it. Anything else (a conversion or flag
 * not in that list) is handed whole to the C library's vsnprintf, so the
 * result is always snprintf's. Never allocates, never does I/O.
 *
 * Why not snprintf itself: every session is a new process (SPEC 11), and
 * on the plain path the C library's printf machinery costs more page
 * faults (its code, its tables, its deep stack frames) than the session's
 * own formatting does work.
 */
#ifndef POSTMASTER_FMT_H
#define POSTMASTER_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* GCC checks the size against the buffer; clang (the fuzzers' compiler)
 * has no access attribute. */
#if defined(__GNUC__) && !defined(__clang__)
#define FMT_WRITES_N __attribute__((access(write_only, 1, 2)))
#else
#define FMT_WRITES_N
#endif

/* As snprintf: writes at most n - 1 bytes and a NUL (when n > 0) and
 * returns the length the whole result has, or -1 on an output error. */
int fmt_snprintf(char *dst, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4))) FMT_WRITES_N;
int fmt_vsnprintf(char *dst, size_t n, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0))) FMT_WRITES_N;

#endif
