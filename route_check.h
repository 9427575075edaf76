/*
 * route_check.h - postmaster --check's rules about route tables.
 *
 * Owns: the diagnostics that need a whole configuration and this host:
 * open relays, shadowed lines, targets this host lacks. Never used by a
 * session; check.c runs them.
 */
#ifndef POSTMASTER_ROUTE_CHECK_H
#define POSTMASTER_ROUTE_CHECK_H

#include "route.h"

/* The open-relay rule: an error for each catch-all that relays any
 * domain from a listener that lets every client relay without AUTH. */
void route_check_listeners(struct cf *cf);
/* Warnings for lines of t that an earlier line always wins over. */
void route_check_shadowed(struct cf *cf, const struct route_table *t);
/* How --check judges a program a mailer runs (check.c's check_program):
 * path, the mailer named for the message. */
typedef void route_program_check(struct cf *cf, const struct cf_pos *pos,
				 const char *path, const char *mailer);
/* Warnings for targets of every table that this host lacks: a NAME that
 * is no pipe, relay, alias or system user; a Maildir whose parent
 * directory is missing; the program of a |command, judged by
 * check_program. */
void route_check_system(struct cf *cf, route_program_check *check_program);

#endif
