/*
 * dsn.c - RFC 3461's parameter syntax and its text forms (see dsn.h).
 */
#include "dsn.h"
#include "fmt.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int upper_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte an xtext item at s[*i] stands for, *i past it; -1 if none. */
static int xtext_char(const char *s, size_t len, size_t *i)
{
	unsigned char c = (unsigned char)s[*i];
	if (c == '+') {
		if (len - *i < 3)
			return -1;
		int hi = upper_hex(s[*i + 1]), lo = upper_hex(s[*i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		*i += 3;
		return hi * 16 + lo;
	}
	if (c < '!' || c > '~' || c == '=')
		return -1;
	*i += 1;
	return c;
}

int dsn_xtext_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;)
		if (xtext_char(s, n, &i) < 0)
			return 0;
	return 1;
}

int dsn_xtext_decode(const char *s, size_t len, char *out, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		int c = xtext_char(s, len, &i);
		if (c <= 0 || o + 1 >= n)
			return -1; /* a NUL would cut the text short */
		out[o++] = (char)c;
	}
	if (!n)
		return -1;
	out[o] = 0;
	return 0;
}

static const struct {
	const char *word;
	unsigned bit;
} notify_words[] = {{"NEVER", DSN_NEVER},
		    {"SUCCESS", DSN_SUCCESS},
		    {"FAILURE", DSN_FAILURE},
		    {"DELAY", DSN_DELAY}};
#define NWORDS (sizeof notify_words / sizeof *notify_words)

static unsigned notify_bit(const char *w, size_t n)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (strlen(notify_words[i].word) == n &&
		    !strncasecmp(w, notify_words[i].word, n))
			return notify_words[i].bit;
	return 0;
}

int dsn_notify_parse(const char *s, size_t n, unsigned *notify)
{
	*notify = 0;
	size_t i = 0;
	do {
		size_t w = i;
		while (i < n && s[i] != ',')
			i++;
		unsigned bit = notify_bit(s + w, i - w);
		if (!bit || (*notify & bit))
			return -1;
		*notify |= bit;
	} while (i++ < n);
	/* RFC 3461 4.1: NEVER stands alone */
	if ((*notify & DSN_NEVER) && *notify != DSN_NEVER)
		return -1;
	return 0;
}

int dsn_orcpt_valid(const char *s, size_t n)
{
	if (n > DSN_ORCPT_MAX)
		return 0;
	const char *semi = memchr(s, ';', n);
	if (!semi || semi == s)
		return 0;
	/* addr-type is an atom (RFC 3461 4.2, RFC 5322 3.2.3) */
	for (const char *p = s; p < semi; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < '!' || c > '~' || strchr("()<>[]:;@\\,.\"", c))
			return 0;
	}
	size_t rest = n - (size_t)(semi + 1 - s);
	return rest > 0 && dsn_xtext_valid(semi + 1, rest);
}

const char *dsn_notify_param(unsigned notify, char buf[32])
{
	buf[0] = 0;
	size_t o = 0;
	for (size_t i = 0; i < NWORDS; i++) {
		if (!(notify & notify_words[i].bit))
			continue;
		o += (size_t)fmt_snprintf(buf + o, 32 - o, "%s%s", o ? "," : "",
				      notify_words[i].word);
	}
	return buf;
}

const char *dsn_notify_text(unsigned notify, char buf[32])
{
	dsn_notify_param(notify, buf);
	ascii_lower_str(buf);
	return buf;
}

int dsn_notify_from_text(const char *s, unsigned *notify)
{
	return dsn_notify_parse(s, strlen(s), notify);
}

size_t dsn_xtext_encode(const char *s, char *out, size_t n)
{
	size_t o = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char item[4];
		if (c < ' ' || c > '~')
			return DSN_ENVID_MAX + 1;
		if (c == '+' || c == '=' || c == ' ')
			fmt_snprintf(item, sizeof item, "+%02X", c);
		else
			fmt_snprintf(item, sizeof item, "%c", c);
		for (const char *p = item; *p; p++, o++)
			if (o + 1 < n)
				out[o] = *p;
	}
	if (n)
		out[o < n ? o : n - 1] = 0;
	return o;
}
