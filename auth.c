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

/* One line of the table: user and hash, the hash without trailing CR or
 * spaces. */
struct entry {
	const char *user, *hash;
	size_t ul, hl;
};

/* The entry of the line at *l, moving *l to the next line; 0 at the end.
 * A comment, or a line without "user:", gives an entry with ul 0. */
static int next_entry(const char **l, struct entry *e)
{
	const char *s = *l;
	if (!s || !*s)
		return 0;
	const char *nl = strchr(s, '\n');
	size_t len = nl ? (size_t)(nl - s) : strlen(s);
	*l = nl ? nl + 1 : NULL;
	const char *c = memchr(s, ':', len);
	*e = (struct entry){0};
	if (s[0] == '#' || !c || c == s)
		return 1;
	e->user = s;
	e->ul = (size_t)(c - s);
	e->hash = c + 1;
	e->hl = len - e->ul - 1;
	while (e->hl && (e->hash[e->hl - 1] == '\r' || e->hash[e->hl - 1] == ' '))
		e->hl--;
	return 1;
}

/* Copies an entry's hash into out as a crypt setting; 0 when it has
 * none or it does not fit. */
static int copy_hash(const struct entry *e, char *out, size_t n)
{
	if (!e->hl || e->hl >= n)
		return 0;
	memcpy(out, e->hash, e->hl);
	out[e->hl] = 0;
	return 1;
}

/* The hash stored for user, copied into out; 0 when there is none. */
static int find_user(const struct buf *table, const char *user, char *out,
		     size_t n)
{
	size_t ul = strlen(user);
	struct entry e;
	for (const char *l = table->s; next_entry(&l, &e);)
		if (e.ul == ul && !memcmp(e.user, user, ul))
			return copy_hash(&e, out, n);
	return 0;
}

/* What sets a hash's cost: its method and parameters, without salt and
 * hash ("$6$", "$6$rounds=N$", "$y$j9T$", "$2b$12$"); its length, 0 for
 * none. */
static size_t cost_class(const char *h, size_t hl)
{
	/* bcrypt ($2b$NN$) and scrypt ($7$ and 11 characters of N, r, p)
	 * write their cost next to the salt, without a '$' between */
	if (hl >= 7 && h[0] == '$' && h[1] == '2' && h[3] == '$' && h[6] == '$')
		return 7;
	if (hl >= 14 && !strncmp(h, "$7$", 3))
		return 14;
	size_t n = hl;
	while (n && h[n - 1] != '$') /* the hash */
		n--;
	if (n)
		n--;
	while (n && h[n - 1] != '$') /* the salt */
		n--;
	return n;
}

/* Each cost class of the table once, at most AUTH_CLASSES of them: a
 * login hashes with one hash of each, so it takes as long whoever the
 * user (an unknown one, a locked "user:!" one, one of a cheaper method
 * in a table that is being migrated). */
#define AUTH_CLASSES 8

static int cost_classes(const struct buf *table, struct entry *cls)
{
	int n = 0;
	struct entry e;
	for (const char *l = table->s; n < AUTH_CLASSES && next_entry(&l, &e);) {
		if (!e.hl)
			continue;
		size_t k = cost_class(e.hash, e.hl);
		int i = 0;
		while (i < n && !(cost_class(cls[i].hash, cls[i].hl) == k &&
				  !memcmp(cls[i].hash, e.hash, k)))
			i++;
		if (i == n)
			cls[n++] = e;
	}
	return n;
}

/* Whether the hash stored and that of a class are of the same class. */
static int same_class(const char *stored, const struct entry *c)
{
	size_t k = cost_class(stored, strlen(stored));
	return k == cost_class(c->hash, c->hl) && !memcmp(stored, c->hash, k);
}

typedef char *crypt_fn_t(const char *, const char *, struct crypt_data *);

/* Whether pass hashes with the setting stored to stored itself. */
static int hash_matches(crypt_fn_t *fn, const char *pass, const char *stored,
			struct crypt_data *cd)
{
	const char *h = fn(pass, stored, cd);
	if (!h || h[0] == '*')
		return 0;
	size_t hl = strlen(h), sl = strlen(stored);
	unsigned diff = (unsigned)(hl ^ sl);
	for (size_t i = 0; i < hl && i < sl; i++)
		diff |= (unsigned char)(h[i] ^ stored[i]);
	return diff == 0;
}

int auth_check(const struct buf *table, const char *user, const char *pass,
	       char *why, size_t n)
{
	static crypt_fn_t *crypt_fn;
	if (!crypt_fn) {
		void *h = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
		if (h)
			*(void **)&crypt_fn = dlsym(h, "crypt_r");
		if (!crypt_fn) {
			fmt_snprintf(why, n, "cannot load crypt_r from libcrypt.so.1");
			return -1;
		}
	}
	char stored[512], setting[512];
	int known = *user && !strchr(user, ':') && !strchr(user, '\n') &&
		    find_user(table, user, stored, sizeof stored);
	struct entry cls[AUTH_CLASSES];
	int ncls = cost_classes(table, cls);
	struct crypt_data *cd = calloc(1, sizeof *cd);
	if (!cd) {
		fmt_snprintf(why, n, "out of memory");
		return -1;
	}
	/* the user's own hash stands in for its class; an unknown user
	 * costs a hash of every class too, so timing does not tell */
	int ok = 0, done = !known;
	for (int i = 0; i < ncls; i++) {
		if (!done && same_class(stored, &cls[i])) {
			ok = hash_matches(crypt_fn, pass, stored, cd);
			done = 1;
		} else if (copy_hash(&cls[i], setting, sizeof setting)) {
			hash_matches(crypt_fn, pass, setting, cd);
		}
	}
	if (!done) /* a class past AUTH_CLASSES */
		ok = hash_matches(crypt_fn, pass, stored, cd);
	else if (!ncls) /* no users: still a hash */
		hash_matches(crypt_fn, pass, "$6$postmaster$", cd);
	free(cd);
	return known && ok;
}
