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
#include "net.h"
#include "util.h"

#include <arpa/inet.h>
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

/* RFC 3492 6.1 */
static unsigned long adapt(unsigned long delta, unsigned long points,
			   int first)
{
	unsigned long k = 0;
	delta = first ? delta / 700 : delta / 2;
	delta += delta / points;
	for (; delta > (36 - 1) * 26 / 2; k += 36)
		delta /= 36 - 1;
	return k + (36 - 1 + 1) * delta / (delta + 38);
}

static int punycode_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0' + 26;
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	return -1;
}

/* Whether the len octets at p decode as Punycode (RFC 3492 6.2) into a
 * label with at least one non-ASCII code point; nothing is written. */
static int punycode_valid(const char *p, size_t len)
{
	const unsigned long max = 0x10FFFF * 64UL; /* far from overflow */
	size_t b = 0, in;
	for (size_t j = 0; j < len; j++)
		if (p[j] == '-')
			b = j;
	unsigned long n = 0x80, i = 0, bias = 72, out = b;
	in = b > 0 ? b + 1 : 0;
	if (in >= len)
		return 0;
	while (in < len) {
		unsigned long oldi = i, w = 1;
		for (unsigned long k = 36;; k += 36) {
			int d = in < len ? punycode_digit(p[in++]) : -1;
			if (d < 0 || (unsigned long)d > (max - i) / w)
				return 0;
			i += (unsigned long)d * w;
			unsigned long t = k <= bias ? 1 : k >= bias + 26 ? 26
								  : k - bias;
			if ((unsigned long)d < t)
				break;
			if (w > max / (36 - t))
				return 0;
			w *= 36 - t;
		}
		out++;
		bias = adapt(i - oldi, out, oldi == 0);
		n += i / out;
		i %= out;
		if (n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF) || out > 63)
			return 0;
		i++;
	}
	return 1;
}

int idna_alabels_well_formed(const char *domain)
{
	for (const char *l = domain; l; l = strchr(l, '.')) {
		if (*l == '.')
			l++;
		size_t len = strcspn(l, ".");
		if (len > 4 && !strncasecmp(l, "xn--", 4) &&
		    !punycode_valid(l + 4, len - 4))
			return 0;
		if (len == 4 && !strncasecmp(l, "xn--", 4))
			return 0;
	}
	return 1;
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

/* An address literal in one spelling per address: an IPv6 address has
 * many ([IPv6:::1], [IPv6:0::1], [IPv6:0:0:0:0:0:0:0:1]), and an IPv4 one
 * written as IPv4-mapped IPv6 is that IPv4 address. 0 when s is none. */
static int literal_canon(const char *s, char *out, size_t n)
{
	char tmp[ADDR_DOMAIN_MAX + 1], text[NET_IP_TEXT];
	unsigned char bin[16];
	size_t len = strlen(s);
	if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof tmp)
		return 0;
	memcpy(tmp, s + 1, len - 2);
	tmp[len - 2] = 0;
	int v6 = !strncasecmp(tmp, "IPv6:", 5);
	if (inet_pton(v6 ? AF_INET6 : AF_INET, v6 ? tmp + 5 : tmp, bin) != 1)
		return 0;
	net_ip_text(v6 ? AF_INET6 : AF_INET, bin, text);
	return (size_t)fmt_snprintf(out, n, "[%s%s]",
				    v6 && strchr(text, ':') ? "ipv6:" : "",
				    text) < n;
}

enum idna_status idna_canon(const char *domain, char *out, size_t n,
			    char *why, size_t whyn)
{
	if (domain[0] == '[' && literal_canon(domain, out, n))
		return IDNA_OK;
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
