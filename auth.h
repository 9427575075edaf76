/*
 * auth.h - the users a listener accepts for AUTH (SPEC 8, RFC 4954):
 * its auth-file, lines of user:crypt-hash (yescrypt, SHA-512 crypt, any
 * method libcrypt knows), read before the session drops its privileges.
 *
 * Owns: reading the file, finding a user, and checking a password with
 * libcrypt, which is loaded with dlopen the first time a password is
 * checked (a session that never says AUTH does not map it).
 *
 * Never: logs or keeps a password, or tells which part of a login was
 * wrong.
 */
#ifndef POSTMASTER_AUTH_H
#define POSTMASTER_AUTH_H

#include <stddef.h>

#include "util.h"

/* Reads an auth-file. -1 with a reason. */
int auth_load(const char *path, struct buf *table, char *why, size_t n);
/* 1: user and password match a line; 0: they do not; -1: the check could
 * not be made (why says so). */
int auth_check(const struct buf *table, const char *user, const char *pass,
	       char *why, size_t n);

#endif
