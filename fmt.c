/*
 * fmt.c - snprintf for every line postmaster writes (see fmt.h).
 *
 * One pass over the format: plain text is copied, each conversion is
 * parsed into a spec and written with its padding. A conversion this file
 * does not do returns -1 from format(), and fmt_vsnprintf then formats the
 * whole string again with the C library's vsnprintf from its own copy of
 * the arguments: the output is the same either way, only the cost differs.
 */
#include "fmt.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#define FMT_MAX_WIDTH 65536 /* wider is left to the C library */

enum len { L_NONE, L_HH, L_H, L_L, L_LL, L_Z, L_J, L_T };

struct spec {
	int minus, zero;
	int width; /* 0: none */
	int prec;  /* -1: none */
	enum len len;
	char conv;
};

struct out {
	char *dst;
	size_t n;   /* size of dst */
	size_t len; /* length of the whole result so far */
};

static void put(struct out *o, const char *s, size_t k)
{
	if (o->n && o->len < o->n - 1) {
		size_t room = o->n - 1 - o->len;
		memcpy(o->dst + o->len, s, k < room ? k : room);
	}
	o->len += k;
}

static void pad(struct out *o, char c, size_t k)
{
	static const char zeros[16] = "0000000000000000",
			  blanks[16] = "                ";
	while (k) {
		size_t step = k < 16 ? k : 16;
		put(o, c == '0' ? zeros : blanks, step);
		k -= step;
	}
}

/* A decimal number in the format (width or precision), or '*'. */
static int number(const char **f, va_list *ap, int *v)
{
	if (**f == '*') {
		(*f)++;
		*v = va_arg(*ap, int);
		return 0;
	}
	long n = 0;
	while (**f >= '0' && **f <= '9') {
		n = n * 10 + (**f - '0');
		if (n > FMT_MAX_WIDTH)
			return -1;
		(*f)++;
	}
	*v = (int)n;
	return 0;
}

/* Length modifiers: hh h l ll z j t. */
static enum len length(const char **f)
{
	switch (*(*f)++) {
	case 'h':
		return **f == 'h' ? ((*f)++, L_HH) : L_H;
	case 'l':
		return **f == 'l' ? ((*f)++, L_LL) : L_L;
	case 'z': return L_Z;
	case 'j': return L_J;
	case 't': return L_T;
	}
	(*f)--;
	return L_NONE;
}

static int parse_spec(const char **f, va_list *ap, struct spec *sp)
{
	*sp = (struct spec){.prec = -1};
	for (;; (*f)++) {
		if (**f == '-')
			sp->minus = 1;
		else if (**f == '0')
			sp->zero = 1;
		else if (**f == '+' || **f == ' ' || **f == '#' ||
			 **f == '\'' || **f == 'I')
			return -1;
		else
			break;
	}
	if ((**f == '*' || (**f >= '1' && **f <= '9')) &&
	    number(f, ap, &sp->width) < 0)
		return -1;
	if (sp->width < 0) { /* a negative '*' width: left-justified */
		if (sp->width < -FMT_MAX_WIDTH)
			return -1;
		sp->minus = 1;
		sp->width = -sp->width;
	}
	if (sp->width > FMT_MAX_WIDTH)
		return -1;
	if (**f == '.') {
		(*f)++;
		if (number(f, ap, &sp->prec) < 0 || sp->prec > FMT_MAX_WIDTH)
			return -1;
		if (sp->prec < 0) /* a negative '*' precision: none */
			sp->prec = -1;
	}
	sp->len = length(f);
	sp->conv = **f;
	if (sp->conv)
		(*f)++;
	return 0;
}

static uintmax_t get_unsigned(va_list *ap, enum len l)
{
	switch (l) {
	case L_HH: return (unsigned char)va_arg(*ap, unsigned);
	case L_H: return (unsigned short)va_arg(*ap, unsigned);
	case L_L: return va_arg(*ap, unsigned long);
	case L_LL: return va_arg(*ap, unsigned long long);
	case L_Z: return va_arg(*ap, size_t);
	case L_J: return va_arg(*ap, uintmax_t);
	case L_T: return (uintmax_t)va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, unsigned);
	}
}

static intmax_t get_signed(va_list *ap, enum len l)
{
	switch (l) {
	case L_HH: return (signed char)va_arg(*ap, int);
	case L_H: return (short)va_arg(*ap, int);
	case L_L: return va_arg(*ap, long);
	case L_LL: return va_arg(*ap, long long);
	case L_Z: return va_arg(*ap, ssize_t);
	case L_J: return va_arg(*ap, intmax_t);
	case L_T: return va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, int);
	}
}

/* An integer conversion: the sign, zeros up to the precision, the digits,
 * blanks or zeros up to the width, as C does. */
static void put_integer(struct out *o, const struct spec *sp, va_list *ap)
{
	uintmax_t v;
	int negative = 0;
	if (sp->conv == 'd' || sp->conv == 'i') {
		intmax_t x = get_signed(ap, sp->len);
		negative = x < 0;
		v = negative ? -(uintmax_t)x : (uintmax_t)x;
	} else {
		v = get_unsigned(ap, sp->len);
	}
	unsigned base = sp->conv == 'o'				  ? 8
			: sp->conv == 'x' || sp->conv == 'X' ? 16
							     : 10;
	const char *digits = sp->conv == 'X' ? "0123456789ABCDEF"
					     : "0123456789abcdef";
	char tmp[3 * sizeof v];
	size_t nd = 0;
	for (; v; v /= base)
		tmp[sizeof tmp - ++nd] = digits[v % base];
	if (!nd && sp->prec < 0)
		tmp[sizeof tmp - ++nd] = '0'; /* "%.0d" of 0 is empty */
	size_t zeros = sp->prec > (int)nd ? (size_t)sp->prec - nd : 0;
	size_t body = (size_t)negative + zeros + nd;
	size_t fill = (size_t)sp->width > body ? (size_t)sp->width - body : 0;
	if (sp->zero && !sp->minus && sp->prec < 0) {
		zeros += fill;
		fill = 0;
	}
	if (!sp->minus)
		pad(o, ' ', fill);
	if (negative)
		put(o, "-", 1);
	pad(o, '0', zeros);
	put(o, tmp + sizeof tmp - nd, nd);
	if (sp->minus)
		pad(o, ' ', fill);
}

static void put_text(struct out *o, const struct spec *sp, const char *s,
		     size_t k)
{
	size_t fill = (size_t)sp->width > k ? (size_t)sp->width - k : 0;
	if (!sp->minus)
		pad(o, ' ', fill);
	put(o, s, k);
	if (sp->minus)
		pad(o, ' ', fill);
}

/* One conversion; -1 for one that is left to the C library. */
static int convert(struct out *o, const struct spec *sp, va_list *ap,
		   int err)
{
	switch (sp->conv) {
	case 'd': case 'i': case 'u': case 'o': case 'x': case 'X':
		put_integer(o, sp, ap);
		return 0;
	case '%':
		if (sp->width || sp->prec >= 0 || sp->len || sp->zero ||
		    sp->minus)
			return -1;
		put(o, "%", 1);
		return 0;
	}
	if (sp->len != L_NONE || sp->zero)
		return -1;
	if (sp->conv == 'c') {
		if (sp->prec >= 0)
			return -1;
		char c = (char)(unsigned char)va_arg(*ap, int);
		put_text(o, sp, &c, 1);
		return 0;
	}
	const char *s;
	if (sp->conv == 's')
		s = va_arg(*ap, const char *);
	else if (sp->conv == 'm')
		s = strerror(err);
	else
		return -1;
	if (!s) /* the C library's "(null)" */
		return -1;
	size_t k = sp->prec >= 0 ? strnlen(s, (size_t)sp->prec) : strlen(s);
	put_text(o, sp, s, k);
	return 0;
}

static int format(struct out *o, const char *f, va_list *ap, int err)
{
	for (;;) {
		const char *pct = strchr(f, '%');
		if (!pct) {
			put(o, f, strlen(f));
			return 0;
		}
		put(o, f, (size_t)(pct - f));
		f = pct + 1;
		if (f[0] == 's') { /* most of them: a plain %s */
			const char *a = va_arg(*ap, const char *);
			if (!a)
				return -1;
			put(o, a, strlen(a));
			f++;
			continue;
		}
		struct spec sp;
		if (parse_spec(&f, ap, &sp) < 0 || convert(o, &sp, ap, err) < 0)
			return -1;
	}
}

int fmt_vsnprintf(char *dst, size_t n, const char *fmt, va_list ap)
{
	int err = errno;
	struct out o = {dst, n, 0};
	va_list mine;
	va_copy(mine, ap);
	int r = format(&o, fmt, &mine, err);
	va_end(mine);
	if (r < 0 || o.len > INT_MAX) {
		errno = err;
		return vsnprintf(dst, n, fmt, ap);
	}
	if (n)
		dst[o.len < n ? o.len : n - 1] = 0;
	return (int)o.len;
}

int fmt_snprintf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = fmt_vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	return r;
}
