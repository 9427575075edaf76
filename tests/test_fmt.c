/*
 * test_fmt.c - fmt_snprintf against the C library's snprintf: for every
 * conversion the code uses and the odd ones it hands back to the library,
 * the same text, the same return value and the same truncation at every
 * buffer size from 0 to past the end; and the RFC 5322 date of message
 * headers, which is written with it, and util.c's test of a header
 * field's name, which the milters' and sendmail's header readers share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

#include "fmt.h"
#include "util.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* Formats with both at each size n and compares; returns the full text's
 * length. A macro, so that each call's arguments keep their own types. */
#define SAME(...)                                                             \
	do {                                                                  \
		char want[512], got[512];                                     \
		int wl = snprintf(want, sizeof want, __VA_ARGS__);            \
		assert_true(wl >= 0 && wl < (int)sizeof want);                \
		for (size_t n = 0; n <= (size_t)wl + 2; n++) {                \
			char a[512], b[512];                                  \
			memset(a, 'Z', sizeof a);                             \
			memset(b, 'Z', sizeof b);                             \
			int ra = snprintf(a, n, __VA_ARGS__);                 \
			int rb = fmt_snprintf(b, n, __VA_ARGS__);             \
			assert_int_equal(ra, rb);                             \
			assert_memory_equal(a, b, n + 1);                     \
		}                                                             \
		fmt_snprintf(got, sizeof got, __VA_ARGS__);                   \
		assert_string_equal(want, got);                               \
	} while (0)

static void test_text_and_strings(void **state)
{
	const char *s = "hello";
	SAME("plain text, no conversion");
	SAME("");
	SAME("%s", "");
	SAME("%s and %s", s, "world");
	SAME("[%8s][%-8s][%2s]", s, s, s);
	SAME("[%.3s][%.0s][%.9s][%8.2s][%-8.2s]", s, s, s, s, s);
	SAME("[%.*s][%.*s][%*s][%-*s]", 2, s, -1, s, 7, s, 7, s);
	SAME("[%*s]", -7, s); /* a negative '*' width: left-justified */
	SAME("%c%c%c [%3c][%-3c]", 'a', '\0' + 'b', 'c', 'x', 'y');
	SAME("100%% sure, %s%%", s);
	SAME("%s", "a \"quoted\" \\ value\twith a tab");
}

static void test_integers(void **state)
{
	SAME("%d %d %d %i", 0, -1, 2147483647, -2147483647 - 1);
	SAME("%u %u %x %X %o", 0u, 4294967295u, 0xdeadbeefu, 0xabcdefu, 8u);
	SAME("%ld %lu %lld %llu", -9223372036854775807L - 1,
	     18446744073709551615UL, -42LL, 18446744073709551615ULL);
	SAME("%zu %zd %jd %ju %td", (size_t)123456, (ssize_t)-5,
	     (intmax_t)-77, (uintmax_t)77, (ptrdiff_t)-3);
	SAME("%hhu %hhd %hu %hd", 300, 200, 70000, 40000);
	SAME("[%02x][%02X][%08x][%5d][%-5d][%05d][%05d]", 5u, 255u, 0xabcu,
	     42, 42, 42, -42);
	SAME("[%3d][%1d][%8lld][%010llX][%05lX][%03X][%04o]", 7, 12345,
	     -123LL, 0xfeedULL, 0xabcUL, 0xfffu, 0644u);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat" /* '0' with a precision */
	SAME("[%.3d][%.0d][%.0u][%5.0d][%-6.3d][%06.3d][%.3x]", 7, 0, 0u, 0,
	     -7, 7, 10u);
#pragma GCC diagnostic pop
	SAME("[%*d][%-*d][%.*d]", 6, 1, 6, 1, 4, 1);
	SAME("%s=%d %s=%llu %s=%zu", "a", 1, "b", 2ULL, "c", (size_t)3);
}

/* What fmt.c does not do itself goes to the library, whole (some of it
 * is what the compiler would flag in real code). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
static void test_handed_to_the_library(void **state)
{
	SAME("%+d % d %#x %#o", 5, 5, 255u, 8u);
	SAME("%f %.2f %e %g", 1.5, 2.345, 1e10, 0.0001);
	SAME("%p", (void *)0);
	SAME("%s then %+d", "mixed", 3);
	SAME("%5%");
	SAME("%ls", L"wide");
	SAME("[%05s]", "ab");
	char big[16];
	assert_int_equal(fmt_snprintf(big, sizeof big, "%100000d", 1), 100000);
	assert_string_equal(big, "               ");
}
#pragma GCC diagnostic pop

static void test_errno_text(void **state)
{
	char w[128], g[128];
	errno = ENOENT;
	snprintf(w, sizeof w, "open: %s", strerror(ENOENT));
	errno = ENOENT;
	fmt_snprintf(g, sizeof g, "open: %m");
	assert_string_equal(w, g);
	assert_int_equal(errno, ENOENT); /* left as it was */
	errno = EACCES;
	SAME("[%m] [%20m] [%-20.5m]");
}

/* One conversion built at random from the grammar fmt.c does itself,
 * formatted by both with arguments of its exact types; n is the buffer
 * size. Returns 0 when they agree. */
static int one_random(unsigned *seed, size_t n)
{
	static const char *const lens[] = {"", "hh", "h", "l", "ll", "z", "j"};
	static const char convs[] = "diuoxXcs";
	char f[64], a[256], b[256];
	int star_w = rand_r(seed) % 4 == 0, star_p = rand_r(seed) % 4 == 0;
	int w = rand_r(seed) % 41 - 20, p = rand_r(seed) % 12 - 1;
	char conv = convs[rand_r(seed) % (sizeof convs - 1)];
	const char *len = strchr("cs", conv) ? "" : lens[rand_r(seed) % 7];
	size_t k = 0;
	f[k++] = '%';
	if (rand_r(seed) % 3 == 0)
		f[k++] = '-';
	if (rand_r(seed) % 3 == 0 && !strchr("cs", conv))
		f[k++] = '0';
	if (star_w)
		f[k++] = '*';
	else if (w > 0)
		k += (size_t)sprintf(f + k, "%d", w);
	if (star_p)
		k += (size_t)sprintf(f + k, ".*");
	else if (p >= 0 && conv != 'c')
		k += (size_t)sprintf(f + k, ".%d", p);
	k += (size_t)sprintf(f + k, "%s%c", len, conv);
	unsigned long long v = ((unsigned long long)rand_r(seed) << 33) ^
			       ((unsigned long long)rand_r(seed) << 11) ^
			       (unsigned long long)rand_r(seed);
	v >>= rand_r(seed) % 64;
	const char *str = "random text";
	memset(a, 'Z', sizeof a);
	memset(b, 'Z', sizeof b);
	int ra, rb;
	/* the arguments: [width] [precision] value, each of its own type */
#define BOTH(...)                                                             \
	do {                                                                  \
		if (star_w && star_p) {                                       \
			ra = snprintf(a, n, f, w, p, __VA_ARGS__);            \
			rb = fmt_snprintf(b, n, f, w, p, __VA_ARGS__);        \
		} else if (star_w) {                                          \
			ra = snprintf(a, n, f, w, __VA_ARGS__);               \
			rb = fmt_snprintf(b, n, f, w, __VA_ARGS__);           \
		} else if (star_p) {                                          \
			ra = snprintf(a, n, f, p, __VA_ARGS__);               \
			rb = fmt_snprintf(b, n, f, p, __VA_ARGS__);           \
		} else {                                                      \
			ra = snprintf(a, n, f, __VA_ARGS__);                  \
			rb = fmt_snprintf(b, n, f, __VA_ARGS__);              \
		}                                                             \
	} while (0)
	int is_signed = conv == 'd' || conv == 'i';
	if (conv == 's')
		BOTH(str + v % 12);
	else if (conv == 'c')
		BOTH((int)(' ' + v % 95));
	else if (!strcmp(len, "ll"))
		BOTH(v);
	else if (!strcmp(len, "l")) {
		if (is_signed)
			BOTH((long)v);
		else
			BOTH((unsigned long)v);
	} else if (!strcmp(len, "z")) {
		if (is_signed)
			BOTH((ssize_t)v);
		else
			BOTH((size_t)v);
	} else if (!strcmp(len, "j")) {
		if (is_signed)
			BOTH((intmax_t)v);
		else
			BOTH((uintmax_t)v);
	} else {
		if (is_signed)
			BOTH((int)v);
		else
			BOTH((unsigned)v);
	}
#undef BOTH
	if (ra != rb || memcmp(a, b, n < sizeof a ? n + 1 : sizeof a)) {
		print_error("%s (n=%zu): snprintf %d \"%.*s\", fmt %d \"%.*s\"\n",
			    f, n, ra, (int)n, a, rb, (int)n, b);
		return -1;
	}
	return 0;
}

/* Many conversions at random against the library: each one's flags,
 * width, precision, length and value drawn from fmt.c's own grammar. */
static void test_random_conversions(void **state)
{
	unsigned seed = 20261207;
	int bad = 0;
	for (int i = 0; i < 200000 && bad < 5; i++)
		bad += one_random(&seed, (size_t)(rand_r(&seed) % 70)) < 0;
	assert_int_equal(bad, 0);
}

/* date_rfc5322 writes what strftime("%a, %d %b %Y %H:%M:%S %z") does,
 * east and west of UTC and on the half hour. */
static void test_rfc5322_date(void **state)
{
	static const char *const zones[] = {"UTC0", "NST3:30", "IST-5:30",
					    "PST8", "NZST-12"};
	static const time_t times[] = {0, 951782400, 1796601600, 1765065600};
	for (size_t z = 0; z < sizeof zones / sizeof *zones; z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
			char want[64], got[64];
			struct tm tm;
			localtime_r(&times[i], &tm);
			strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S %z",
				 &tm);
			date_rfc5322(times[i], got, sizeof got);
			assert_string_equal(want, got);
		}
	}
	char small[8] = "x";
	date_rfc5322(0, small, sizeof small);
	assert_string_equal(small, ""); /* too small: empty, as before */
	unsetenv("TZ");
	tzset();
}

static void test_header_field_name(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		size_t name; /* 0: not a field */
	} cases[] = {
		{"Subject: hi", 7},
		{"Subject:", 7},
		{"From : obsolete", 4},   /* RFC 5322 4.5 */
		{"From\t \t: tabs", 4},
		{"X-A:b", 3},
		{" folded", 0},            /* a continuation line */
		{"\tfolded: x", 0},
		{": no name", 0},
		{"no colon at all", 0},
		{"Two words: x", 0},
		{"From a@b Mon Dec  7", 0}, /* an mbox separator */
		{"Caf\xc3\xa9: x", 0},     /* 8-bit is not a name */
		{"Subject", 0},
		{"Subject   ", 0},
		{"", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		assert_int_equal(hdr_field_name(cases[i].line,
						strlen(cases[i].line)),
				 cases[i].name);
	/* the length given bounds it: the colon past it does not count */
	assert_int_equal(hdr_field_name("Subject: x", 7), 0);
	assert_int_equal(hdr_field_name("Subject: x", 8), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_and_strings),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_handed_to_the_library),
		cmocka_unit_test(test_errno_text),
		cmocka_unit_test(test_rfc5322_date),
		cmocka_unit_test(test_header_field_name),
		cmocka_unit_test(test_random_conversions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
