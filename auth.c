/*
 * auth.c - checking logins against an auth-file (see auth.h).
 */
#include "auth.h"
#include "fmt.h"

#include <crypt.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUTH_FILE_MAX (4 << 20)

int auth_load(const char *path, struct buf *table, char *why, size_t n)
{
	if (buf_read_file(table, AT_FDCWD, path, AUTH_FILE_MAX) == 0)
		return 0;
	fmt_snprintf(why, n, "%s: %s", path, strerror(errno));
	return -1;
}

/* The hash stored for user, copied into out; 0 when there is none. With
 * user NULL, the first user's. */
static int find_user(const struct buf *table, const char *user, char *out,
		     size_t n)
{
	size_t ul = user ? strlen(user) : 0;
	for (const char *l = table->s; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		if (!user) {
			const char *c = memchr(l, ':', len);
			ul = c && c != l ? (size_t)(c - l) : len;
		}
		if (len > ul && l[0] != '#' &&
		    (!user || !memcmp(l, user, ul)) && l[ul] == ':') {
			size_t hl = len - ul - 1;
			while (hl && (l[ul + 1 + hl - 1] == '\r' ||
				      l[ul + 1 + hl - 1] == ' '))
				hl--;
			if (hl == 0 || hl >= n)
				return 0;
			memcpy(out, l + ul + 1, hl);
			out[hl] = 0;
			return 1;
		}
		l = e ? e + 1 : NULL;
	}
	return 0;
}

int auth_check(const struct buf *table, const char *user, const char *pass,
	       char *why, size_t n)
{
	static __typeof__(crypt_r) *crypt_fn;
	if (!crypt_fn) {
		void *h = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
		if (h)
			*(void **)&crypt_fn = dlsym(h, "crypt_r");
		if (!crypt_fn) {
			fmt_snprintf(why, n, "cannot load crypt_r from libcrypt.so.1");
			return -1;
		}
	}
	char stored[512];
	/* an unknown user costs a hash too, with the first user's method
	 * and cost (yescrypt, SHA-512 rounds...), so timing does not tell */
	int known = *user && !strchr(user, ':') && !strchr(user, '\n') &&
		    find_user(table, user, stored, sizeof stored);
	if (!known && !find_user(table, NULL, stored, sizeof stored))
		fmt_snprintf(stored, sizeof stored, "$6$postmaster$");
	struct crypt_data *cd = calloc(1, sizeof *cd);
	if (!cd) {
		fmt_snprintf(why, n, "out of memory");
		return -1;
	}
	const char *h = crypt_fn(pass, stored, cd);
	int ok = 0;
	if (h && h[0] != '*') {
		size_t hl = strlen(h), sl = strlen(stored);
		unsigned diff = (unsigned)(hl ^ sl);
		for (size_t i = 0; i < hl && i < sl; i++)
			diff |= (unsigned char)(h[i] ^ stored[i]);
		ok = known && diff == 0;
	}
	free(cd);
	return ok;
}
