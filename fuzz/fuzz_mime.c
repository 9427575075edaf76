/*
 * fuzz_mime.c - libFuzzer target for the 7-bit conversion (mime.c), which
 * reads what any client sent.
 *
 * The first input byte chooses text (LF line ends) or binary (CRLF) mail;
 * the rest is the message. Invariants that abort (and so become
 * findings):
 *   - a refusal names a reason;
 *   - a converted message is 7-bit: no octet above 127, no NUL, no CR
 *     (the output has LF line ends). Line length is not checked: header
 *     sections, preambles and epilogues keep their long lines, which the
 *     wire writer folds (client.c), so only encoded bodies are short.
 * The message and the result live in memfd files: no disk, no network.
 */
#define _GNU_SOURCE /* memfd_create */
#include "mime.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int in = memfd_create("in", 0), out = memfd_create("out", 0);
	if (in < 0 || out < 0)
		abort();
	if (write(in, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	struct msg m = {.fd = in, .off = 0, .size = (off_t)(size - 1),
			.binary = data[0] & 1};
	char why[200] = "";
	int r = mime_downgrade(&m, out, why, sizeof why);
	if (r < 0 && !why[0])
		FAIL("a refusal without a reason\n");
	off_t n = lseek(out, 0, SEEK_END);
	if (r == 0 && n > 0) {
		char *p = malloc((size_t)n);
		if (pread(out, p, (size_t)n, 0) != n)
			abort();
		for (off_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c >= 0x80 || c == 0 || c == '\r')
				FAIL("octet %02x at %lld of the output\n", c,
				     (long long)i);
		}
		free(p);
	}
	close(in);
	close(out);
	return 0;
}
