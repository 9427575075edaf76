/*
 * idna.h - the one canonical form of domain names: IDNA2008 A-labels.
 *
 * Owns: the dlopen(3) of libidn2 (SPEC 11: loaded the first time a domain
 * needs it, that is a domain with a non-ASCII octet or an "xn--" label;
 * a plain ASCII domain never loads it), the processing flags, and what
 * comes out: lowercase ASCII, so "bücher.test", "BÜCHER.test" and
 * "XN--BCHER-KVA.test" all become "xn--bcher-kva.test". Routes, local
 * domains, the compiled index and the MX lookup all compare or ask by it.
 *
 * Never: resolves anything, touches the network, or logs; a failure comes
 * back with a reason for the caller to report.
 */
#ifndef POSTMASTER_IDNA_H
#define POSTMASTER_IDNA_H

#include <stddef.h>

enum idna_status {
	IDNA_OK = 0,
	IDNA_EINVALID = -1, /* not a valid international domain name */
	IDNA_ENOLIB = -2,   /* libidn2 cannot be loaded */
};

/* Whether domain has a non-ASCII octet or a label that starts "xn--" (in
 * any case): only such a domain needs libidn2. */
int idna_needed(const char *domain);

/* Whether every "xn--" label of domain (ASCII) is well-formed Punycode
 * (RFC 3492) that encodes at least one non-ASCII code point: the shape of
 * an A-label, told without libidn2. It does not apply IDNA2008's rules
 * to what the label encodes; idna_canon() does. */
int idna_alabels_well_formed(const char *domain);

/*
 * Writes the canonical form of domain into out (n octets, at least
 * ADDR_DOMAIN_MAX + 1). An address literal or a domain that does not need
 * IDNA is copied with ASCII letters lowercased. Otherwise libidn2 maps and
 * checks it as UTS #46 nontransitional lookup with STD3 rules and NFC
 * input (IDNA2008 with Unicode case folded, so "ß" stays "ß"); the result
 * must again be a valid domain (addr_domain_valid). On failure out is
 * untouched and why says what is wrong.
 */
enum idna_status idna_canon(const char *domain, char *out, size_t n,
			    char *why, size_t whyn);

#endif
