/*
 * test_io.c - io_getline, the one bounded line reader: how a line ends,
 * and an over-long line, which is consumed to its end and keeps its first
 * max bytes (an onward peer's over-long reply keeps its code), however
 * the input arrives split; and io_read's pace (io_data_pace).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "io.h"

/* A transport that hands out a string step bytes per read. */
static struct {
	const char *p;
	size_t left, step;
} feed;

static ssize_t feed_read(struct io *io, void *p, size_t n)
{
	(void)io;
	size_t k = feed.step < n ? feed.step : n;
	if (k > feed.left)
		k = feed.left;
	memcpy(p, feed.p, k);
	feed.p += k;
	feed.left -= k;
	return (ssize_t)k; /* 0: the end of the input */
}

static ssize_t feed_write(struct io *io, const void *p, size_t n)
{
	(void)io;
	(void)p;
	return (ssize_t)n;
}

static int feed_pending(struct io *io)
{
	(void)io;
	return 1; /* never poll: the feed is always ready */
}

static const struct io_transport feed_tr = {feed_read, feed_write,
					    feed_pending};

static struct io io;

static void open_feed(const char *text, size_t step)
{
	io_init(&io, -1, -1, 1000);
	io.tr = &feed_tr;
	feed.p = text;
	feed.left = strlen(text);
	feed.step = step;
}

/* The next line must be want with status st and end bare. */
static void expect(size_t max, enum io_status st, const char *want, int bare)
{
	char line[64];
	size_t len = 99;
	int b = 9;
	assert_true(max < sizeof line);
	assert_int_equal(io_getline(&io, line, max, &len, &b), st);
	if (st != IO_OK && st != IO_TOOLONG)
		return;
	assert_int_equal(len, strlen(want));
	assert_string_equal(line, want);
	if (st == IO_OK)
		assert_int_equal(b, bare);
}

static const size_t steps[] = {1, 2, 3, 7, 8, 9, 10, 64};

static void test_line_ends(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		open_feed("250 ok\r\nbare\nend", steps[i]);
		expect(16, IO_OK, "250 ok", 0);
		expect(16, IO_OK, "bare", 1);
		expect(16, IO_OK, "end", 2);
		expect(16, IO_EOF, NULL, 0);
	}
}

static void test_exactly_max(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		/* max bytes and CRLF; max bytes and a bare LF */
		open_feed("12345678\r\nabcdefgh\nnext\r\n", steps[i]);
		expect(8, IO_OK, "12345678", 0);
		expect(8, IO_OK, "abcdefgh", 1);
		expect(8, IO_OK, "next", 0);
	}
}

static void test_over_long_keeps_its_head(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		/* one byte over (with and without CR), a CR past max that is
		 * not the line's last, and far over, then a line read whole */
		open_feed("123456789\n123456789\r\n12345678\rx\r\n"
			  "250 2.0.0 Ok, and a very long text after it\r\n"
			  "250 fine\r\n12345678901\n",
			  steps[i]);
		expect(8, IO_TOOLONG, "12345678", 0);
		expect(8, IO_TOOLONG, "12345678", 0);
		expect(8, IO_TOOLONG, "12345678", 0);
		expect(8, IO_TOOLONG, "250 2.0.", 0);
		expect(8, IO_OK, "250 fine", 0);
		expect(8, IO_TOOLONG, "12345678", 0);
		expect(8, IO_EOF, NULL, 0);
	}
}

static void test_over_long_at_the_end(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		/* an unterminated last line one byte too long */
		open_feed("ok\n123456789", steps[i]);
		expect(8, IO_OK, "ok", 1);
		expect(8, IO_TOOLONG, "12345678", 0);
	}
}

/* Octets already buffered do not buy back time that is gone: a client
 * that trickled its chunk's octets in with each BDAT line (read with the
 * command, not by io_read) is cut off all the same. */
static void test_pace_deadline_passed_with_bytes_buffered(void **state)
{
	(void)state;
	char buf[16];
	size_t got;
	open_feed("BDAT 1\r\nx", 64);
	expect(32, IO_OK, "BDAT 1", 0);
	io_data_pace(&io, 500);
	io.data_deadline = io_now_ms() - 1;
	assert_int_equal(io_read(&io, buf, sizeof buf, &got), IO_TIMEOUT);
	assert_int_equal(got, 0);
}

/* The bytes io_read returns buy time at the rate, whoever read them in;
 * never more than the timeout ahead. */
static void test_pace_credits_bytes_taken(void **state)
{
	(void)state;
	char buf[16];
	size_t got;
	open_feed("BDAT 10\r\n0123456789", 64);
	expect(32, IO_OK, "BDAT 10", 0);
	io_data_pace(&io, 500);
	long long before = io.data_deadline;
	assert_int_equal(io_read(&io, buf, 4, &got), IO_OK);
	assert_int_equal(got, 4);
	assert_true(io.data_deadline >= before); /* capped at 1 s ahead */
	io.data_deadline = io_now_ms() + 10;
	before = io.data_deadline;
	assert_int_equal(io_read(&io, buf, 6, &got), IO_OK);
	assert_int_equal(got, 6);
	assert_true(io.data_deadline == before + 12);
	io_data_pace(&io, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_exactly_max),
		cmocka_unit_test(test_over_long_keeps_its_head),
		cmocka_unit_test(test_over_long_at_the_end),
		cmocka_unit_test(test_pace_deadline_passed_with_bytes_buffered),
		cmocka_unit_test(test_pace_credits_bytes_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
