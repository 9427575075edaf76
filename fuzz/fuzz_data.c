/*
 * fuzz_data.c - libFuzzer target for the DATA/BDAT byte machine, the
 * header watch and the message store (data.c), which see every byte a
 * client sends after DATA or BDAT.
 *
 * The first input byte chooses bare-newline = reject, BDAT mode and the
 * size of the pieces the rest is fed in. Invariants that abort (and so
 * become findings):
 *   - feeding in pieces gives what feeding at once gives: the same
 *     output, the same end, the same bytes consumed;
 *   - the output never holds a CR and is at most twice the input;
 *   - the end of data is seen only in DATA mode, right after ".\r\n";
 *   - the store never counts past its limit, the watch never keeps more
 *     than 64 Delivered-To values.
 * The store writes to a memfd: no disk, no network.
 */
#define _GNU_SOURCE /* memfd_create */
#include "data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                       \
	do {                                                            \
		fprintf(stderr, "invariant broken: " __VA_ARGS__);      \
		abort();                                                \
	} while (0)

/* Feeds in pieces of step bytes; returns the bytes consumed. */
static size_t run(struct datamachine *dm, const char *in, size_t n,
		  size_t step, char *out, size_t *ol)
{
	size_t used = 0;
	*ol = 0;
	while (used < n && !dm->done) {
		size_t take = n - used < step ? n - used : step;
		used += data_feed(dm, in + used, take, out, ol);
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct datamachine a = {.reject_bare = data[0] & 1,
				.bdat = (data[0] >> 1) & 1};
	struct datamachine b = a;
	size_t step = (size_t)(data[0] >> 2) + 1;
	char *oa = malloc(2 * n + 2), *ob = malloc(2 * n + 2);
	size_t la, lb;
	size_t ua = run(&a, in, n, n ? n : 1, oa, &la);
	size_t ub = run(&b, in, n, step, ob, &lb);
	if (ua != ub || la != lb || a.done != b.done || memcmp(oa, ob, la))
		FAIL("pieces of %zu differ from the whole\n", step);
	if (la > 2 * n || memchr(oa, '\r', la))
		FAIL("output of %zu bytes from %zu, or with a CR\n", la, n);
	if (a.done && (a.bdat || ua < 3 || memcmp(in + ua - 3, ".\r\n", 3)))
		FAIL("end of data without CRLF.CRLF\n");
	if (a.bdat)
		data_finish_chunks(&a, oa, &la);

	struct datastore ds = {.fd = memfd_create("data", 0), .max = n / 2};
	if (ds.fd < 0)
		abort();
	ds.hw.on = 1;
	data_store_write(&ds, oa, la / 2);
	data_store_write(&ds, oa + la / 2, la - la / 2);
	data_store_flush(&ds);
	if (ds.size > ds.max || (!ds.toobig && ds.size != la))
		FAIL("stored %llu of %zu with max %llu\n",
		     (unsigned long long)ds.size, la,
		     (unsigned long long)ds.max);
	if (ds.hw.ndelivered > DATA_MAX_DELIVERED_TO)
		FAIL("%u Delivered-To values kept\n", ds.hw.ndelivered);
	close(ds.fd);
	data_store_free(&ds);
	free(oa);
	free(ob);
	return 0;
}
