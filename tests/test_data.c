/*
 * test_data.c - the message bytes of DATA and BDAT (data.c): the byte
 * machine finds only CRLF.CRLF, unstuffs dots and marks bare line ends;
 * the store counts against the size limit and writes what it buffered;
 * the header watch counts Received fields and keeps Delivered-To values;
 * the Received header reads as RFC 5321 4.4 and RFC 3848 say.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

/* Feeds in as one piece (or byte by byte) and returns the output. */
static size_t feed(struct datamachine *dm, const char *in, int bytewise,
		   char *out, size_t *used)
{
	size_t n = strlen(in), ol = 0;
	*used = 0;
	if (!bytewise) {
		*used = data_feed(dm, in, n, out, &ol);
	} else {
		for (size_t i = 0; i < n && !dm->done; i++)
			*used += data_feed(dm, in + i, 1, out, &ol);
	}
	out[ol] = 0;
	return ol;
}

static void test_end_and_unstuffing(void **state)
{
	(void)state;
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct datamachine dm = {0};
		char out[256];
		size_t used;
		const char *in = "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
		feed(&dm, in, bytewise, out, &used);
		assert_string_equal(out, "Subject: x\n\n.dot\n");
		assert_true(dm.done);
		assert_false(dm.saw_bare);
		/* what follows the final dot is given back */
		assert_int_equal(used, strlen(in) - strlen("QUIT\r\n"));
	}
}

static void test_bare_lf_is_never_the_end(void **state)
{
	(void)state;
	struct datamachine dm = {0};
	char out[256];
	size_t used;
	feed(&dm, "a\n.\r\nb\r\n.\n", 0, out, &used);
	assert_false(dm.done);
	assert_true(dm.saw_bare);
	assert_string_equal(out, "a\n.\nb\n.\n");
	feed(&dm, "\r\n.\r\n", 0, out, &used);
	assert_true(dm.done);
}

static void test_bare_cr_becomes_space(void **state)
{
	(void)state;
	struct datamachine dm = {0};
	char out[256];
	size_t used;
	feed(&dm, "a\rb\r\n.\r\n", 0, out, &used);
	assert_string_equal(out, "a b\n");
	assert_true(dm.saw_bare);
	assert_true(dm.done);
}

static void test_reject_bare_keeps_line(void **state)
{
	(void)state;
	/* with bare-newline = reject a bare LF does not start a line */
	struct datamachine dm = {.reject_bare = 1};
	char out[256];
	size_t used;
	feed(&dm, "a\n.\r\n", 0, out, &used);
	assert_false(dm.done);
	assert_true(dm.saw_bare);
}

static void test_bdat_no_unstuffing(void **state)
{
	(void)state;
	struct datamachine dm = {.bdat = 1};
	char out[256];
	size_t used;
	feed(&dm, "..x\r\n.\r\nmore\r", 0, out, &used);
	assert_false(dm.done);
	assert_string_equal(out, "..x\n.\nmore");
	size_t ol = 0;
	data_finish_chunks(&dm, out, &ol);
	assert_int_equal(ol, 1);
	assert_int_equal(out[0], ' ');
	assert_true(dm.saw_bare);
}

static void test_headers(void **state)
{
	(void)state;
	struct headerwatch hw = {.on = 1};
	const char *h = "Received: a\r\nreceived: b\r\nDelivered-To:  "
			"User@Example.ORG \r\nSubject: s\r\n\r\nReceived: c\n";
	/* split anywhere: the watch keeps its line across pieces */
	headers_watch(&hw, h, 7);
	headers_watch(&hw, h + 7, strlen(h) - 7);
	assert_int_equal(hw.received, 2);
	assert_int_equal(hw.ndelivered, 1);
	assert_string_equal(hw.delivered_to[0], "User@Example.ORG");
	assert_true(headers_delivered_to(&hw, "User@example.org"));
	assert_false(headers_delivered_to(&hw, "other@example.org"));
	assert_false(hw.on);
	headers_reset(&hw);
	assert_int_equal(hw.ndelivered, 0);
	assert_int_equal(hw.received, 0);
	/* a folded field is judged unfolded (RFC 5322 2.2.3): its value
	 * on the next line still names the recipient; a byte at a time */
	const char *f = "Delivered-To:\r\n user@example.org\r\nReceived:\r\n\tx\r\n"
			"X: y\r\n\r\n";
	hw.on = 1;
	for (size_t i = 0; f[i]; i++)
		headers_watch(&hw, f + i, 1);
	assert_int_equal(hw.ndelivered, 1);
	assert_string_equal(hw.delivered_to[0], "user@example.org");
	assert_true(headers_delivered_to(&hw, "user@example.org"));
	assert_int_equal(hw.received, 1);
	headers_reset(&hw);
}

static void test_headers_bounded(void **state)
{
	(void)state;
	struct headerwatch hw = {.on = 1};
	for (int i = 0; i < 200; i++)
		headers_watch(&hw, "Delivered-To: a@b\n", 18);
	assert_int_equal(hw.ndelivered, DATA_MAX_DELIVERED_TO);
	char big[5000];
	memset(big, 'x', sizeof big);
	headers_watch(&hw, big, sizeof big);
	assert_true(hw.len <= sizeof hw.line);
	headers_reset(&hw);
}

static void test_store_limit_and_file(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	assert_non_null(f);
	struct datastore ds = {.fd = fileno(f), .max = 100000};
	data_store_write_ours(&ds, "Received: ours\n", 15);
	for (int i = 0; i < 99; i++)
		data_store_write(&ds, "0123456789", 10);
	char big[70000];
	memset(big, 'y', sizeof big);
	data_store_write(&ds, big, 10); /* 1000 in all */
	assert_int_equal(ds.size, 1000);
	assert_false(ds.toobig);
	assert_int_equal(data_store_flush(&ds), 0);
	assert_int_equal(lseek(ds.fd, 0, SEEK_END), 1015);
	data_store_write(&ds, big, sizeof big); /* straight to the file */
	assert_int_equal(data_store_flush(&ds), 0);
	assert_int_equal(lseek(ds.fd, 0, SEEK_END), 1015 + sizeof big);
	data_store_write(&ds, big, sizeof big); /* past max */
	assert_true(ds.toobig);
	data_store_write(&ds, "z", 1);
	assert_int_equal(ds.size, 1000 + sizeof big);
	data_store_free(&ds);
	fclose(f);
}

static void test_store_counts_without_file(void **state)
{
	(void)state;
	struct datastore ds = {.fd = -1, .max = 10};
	data_store_write(&ds, "12345", 5);
	data_store_write(&ds, "12345", 5);
	assert_false(ds.toobig);
	data_store_write(&ds, "1", 1);
	assert_true(ds.toobig);
	assert_null(ds.wbuf);
	data_store_free(&ds);
}

static void test_store_write_failure(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]); /* EPIPE: SIGPIPE is the session's to ignore */
	signal(SIGPIPE, SIG_IGN);
	struct datastore ds = {.fd = p[1], .max = 100};
	data_store_write(&ds, "abc", 3);
	assert_int_equal(data_store_flush(&ds), -1);
	assert_true(ds.failed);
	assert_int_not_equal(ds.err, 0);
	data_store_free(&ds);
	close(p[1]);
}

static void test_received(void **state)
{
	(void)state;
	char proto[24];
	struct buf h = {0};
	struct received_info ri = {
		.helo = "client(x)",
		.peer = "2001:db8::1",
		.by = "mx.example.org",
		.protocol = data_protocol("EHLO", 1, 1, 1, proto, sizeof proto),
		.id = "abc123",
		.rcpt = "u@example.org",
		.spf = "Received-SPF: pass",
		.when = 0,
	};
	data_received(&h, &ri);
	assert_string_equal(proto, "UTF8SMTPSA");
	assert_non_null(strstr(h.s, "Received-SPF: pass\nReceived: from "
				    "client?x? ([IPv6:2001:db8::1])\n\tby "
				    "mx.example.org (postmaster) with "
				    "UTF8SMTPSA id abc123\n\tfor "
				    "<u@example.org>; "));
	buf_free(&h);
	ri = (struct received_info){.peer_is_pipe = 1, .peer = "",
				    .by = "b", .id = "i", .crlf = 1,
				    .spf = "Received-SPF: none\n\thelo=b;",
				    .protocol = data_protocol(
					    "LHLO", 0, 0, 0, proto,
					    sizeof proto)};
	data_received(&h, &ri);
	assert_string_equal(proto, "LMTP");
	/* spf.c's folds get the message's line end */
	assert_true(!strncmp(h.s, "Received-SPF: none\r\n\thelo=b;\r\n"
				  "Received: from unknown (local)\r\n\tby b "
				  "(postmaster) with LMTP id i\r\n\t; ",
			     98));
	buf_free(&h);
	assert_string_equal(data_protocol("HELO", 1, 0, 0, proto, sizeof proto),
			    "SMTP");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_and_unstuffing),
		cmocka_unit_test(test_bare_lf_is_never_the_end),
		cmocka_unit_test(test_bare_cr_becomes_space),
		cmocka_unit_test(test_reject_bare_keeps_line),
		cmocka_unit_test(test_bdat_no_unstuffing),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_headers_bounded),
		cmocka_unit_test(test_store_limit_and_file),
		cmocka_unit_test(test_store_counts_without_file),
		cmocka_unit_test(test_store_write_failure),
		cmocka_unit_test(test_received),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
