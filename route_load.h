/*
 * route_load.h - building the route tables of a finished configuration.
 *
 * Owns: the [route] sections' tables (cf_section.table) and their
 * `file` includes, read as text or through a fresh compiled index
 * (rtindex.h). Never writes a file: --check compiles indexes (check.h).
 */
#ifndef POSTMASTER_ROUTE_LOAD_H
#define POSTMASTER_ROUTE_LOAD_H

#include "cf.h"

/* Builds every [route] table after cf_finish(), in merged order; reads no
 * route file under CF_NO_INCLUDES, and every one as text under CF_CHECK.
 * Returns the number of errors of the configuration. cf_free() frees the
 * tables. */
int route_load_tables(struct cf *cf);

#endif
