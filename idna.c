/*
 * idna.c - canonical domain names through a dlopen'd libidn2 (see idna.h).
 *
 * The library is looked up once per process, on the first domain that
 * needs it; a process that sees ASCII domains only never maps it (tests
 * read /proc/PID/maps for that).
 */
#include "idna.h"
#include "addr.h"
#include "fmt.h"
#include "util.h"

#include <dlfcn.h>
#include <idn2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* UTS #46 mapping (Unicode case folding, NFC) and IDNA2008 checks, as a
 * resolver would look the name up; nontransitional keeps "ß" and ZWJ. */
#define IDNA_FLAGS \
	(IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES)

static struct {
	int tried;
	__typeof__(idn2_to_ascii_8z) *to_ascii;
	__typeof__(idn2_free) *release;
	__typeof__(idn2_strerror) *error_text;
} lib;

static int load(void)
{
	if (lib.tried)
		return lib.to_ascii ? 0 : -1;
	lib.tried = 1;
	void *h = dlopen("libidn2.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -1;
	*(void **)&lib.to_ascii = dlsym(h, "idn2_to_ascii_8z");
	*(void **)&lib.release = dlsym(h, "idn2_free");
	*(void **)&lib.error_text = dlsym(h, "idn2_strerror");
	if (!lib.to_ascii || !lib.release || !lib.error_text) {
		lib.to_ascii = NULL;
		dlclose(h);
		return -1;
	}
	return 0;
}

int idna_needed(const char *domain)
{
	if (domain[0] == '[')
		return 0;
	for (const char *p = domain; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	for (const char *l = domain; l; l = strchr(l, '.')) {
		if (*l == '.')
			l++;
		if (!strncasecmp(l, "xn--", 4))
			return 1;
	}
	return 0;
}

static enum idna_status copy_lower(const char *s, char *out, size_t n,
				   char *why, size_t whyn)
{
	if ((size_t)fmt_snprintf(out, n, "%s", s) >= n) {
		fmt_snprintf(why, whyn, "domain longer than %zu octets", n - 1);
		return IDNA_EINVALID;
	}
	ascii_lower_str(out);
	return IDNA_OK;
}

enum idna_status idna_canon(const char *domain, char *out, size_t n,
			    char *why, size_t whyn)
{
	if (!idna_needed(domain))
		return copy_lower(domain, out, n, why, whyn);
	if (load() < 0) {
		fmt_snprintf(why, whyn, "cannot load libidn2.so.0 for %s", domain);
		return IDNA_ENOLIB;
	}
	char *a = NULL;
	int r = lib.to_ascii(domain, &a, IDNA_FLAGS);
	if (r != IDN2_OK) {
		fmt_snprintf(why, whyn, "%s is not a valid international domain "
				    "name: %s",
			 domain, lib.error_text(r));
		return IDNA_EINVALID;
	}
	enum idna_status st = IDNA_EINVALID;
	if (!addr_domain_valid(a, strlen(a), 0))
		fmt_snprintf(why, whyn, "%s is not a valid international domain "
				    "name: its A-label form %s is not a domain",
			 domain, a);
	else
		st = copy_lower(a, out, n, why, whyn);
	lib.release(a);
	return st;
}
