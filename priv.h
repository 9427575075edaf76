/*
 * priv.h - giving up root before anything untrusted is read (SPEC 11).
 *
 * Owns: the switch from root to core.user-id and its group, for the
 * sessions and the flusher alike.
 *
 * Never: reads client input, opens the spool, or logs: it returns -1 with
 * a reason and its caller says it once.
 */
#ifndef POSTMASTER_PRIV_H
#define POSTMASTER_PRIV_H

#include <stddef.h>

#include "cf.h"

/* Started as root: becomes core.user-id (and group-id), for good. 0 when
 * not root or done; -1 with a reason in why when it cannot. */
int priv_drop(const struct cf *cf, char *why, size_t n);

#endif
