/*
 * spf.h - SPF (RFC 7208) for MAIL FROM, or the HELO name for <>, through
 * libspf2, which is loaded with dlopen the first time a session checks
 * (SPEC 8, 11).
 *
 * Owns: the check and its result, and the Received-SPF header (RFC 7208
 * 9.1). Never: decides the reply (session.c does) or writes to stderr,
 * which may be the client's socket (libspf2's own handlers are replaced).
 */
#ifndef POSTMASTER_SPF_H
#define POSTMASTER_SPF_H

#include <stddef.h>

#include "util.h"

enum spf_result {
	SPFR_NONE, SPFR_NEUTRAL, SPFR_PASS, SPFR_FAIL, SPFR_SOFTFAIL,
	SPFR_TEMPERROR, SPFR_PERMERROR,
};

/*
 * Checks sender (empty for <>: then postmaster@helo) sent from ip, which
 * said helo; a domain in UTF-8 by its A-labels, one that is no valid
 * name is SPFR_NONE with why (RFC 7208 4.3). Appends the Received-SPF
 * header field, without its line end, to header: receiver (this
 * listener's name) in its comment and receiver=, the client's values
 * (helo=, envelope-from=) as dot-atoms or quoted strings. Returns the
 * result; SPFR_TEMPERROR with why when the check could not be made at
 * all (libspf2 or libidn2 missing).
 */
enum spf_result spf_check(const char *ip, const char *helo, const char *sender,
			  const char *receiver, struct buf *header, char *why,
			  size_t n);
const char *spf_result_name(enum spf_result r);

#endif
