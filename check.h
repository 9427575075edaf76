/*
 * check.h - postmaster --check, after the configuration is finished and
 * its route tables are built (route_load.h).
 *
 * Owns: the checks that look at this host and the route rules, and
 * writing the compiled route indexes. Never used by a session.
 */
#ifndef POSTMASTER_CHECK_H
#define POSTMASTER_CHECK_H

#include "cf.h"

/* Runs every --check rule on cf (finished with CF_CHECK, tables built)
 * and compiles its route files when it has no errors. Returns the number
 * of errors. */
int check_config(struct cf *cf);

/* The program at path that mailer (for the message) runs: a warning
 * when it is missing on this host, an error when the sessions' user
 * cannot run it. */
void check_program(struct cf *cf, const struct cf_pos *pos, const char *path,
		   const char *mailer);

#endif
