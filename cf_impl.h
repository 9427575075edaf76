/*
 * cf_impl.h - what the cf_*.c files share and nobody else sees.
 *
 * Owns: the key schema's shape (value types, key flags, the table of
 * section kinds), the lexer's state, and the storage helpers that append
 * sections, assignments, words and files to a struct cf.
 *
 * Never: included outside cf.c, cf_lex.c, cf_schema.c, cf_build.c and
 * cf_dump.c; everything else goes through cf.h.
 */
#ifndef POSTMASTER_CF_IMPL_H
#define POSTMASTER_CF_IMPL_H

#include <stdarg.h>

#include "cf.h"

/* ---- the schema (cf_schema.c) ---- */

enum vtype {
	V_STRING, V_PATH, V_STRFTIME_PATH, V_USER, V_GROUP, V_HOSTNAME, V_SIZE,
	V_DURATION, V_BOOL, V_ENUM, V_UINT, V_LISTEN, V_DNS, V_RELAYADDR,
	V_LOGGER, V_PIPEREF, V_ROUTEREF, V_ARGV, V_DELIM, V_NETWORK,
	V_DNSLIST, V_POLICYADDR, V_MILTERADDR, V_MILTERREF,
	V_NTYPES
};

enum { K_REPEAT = 1, K_REQUIRED = 2, K_ZERO = 4 /* a zero duration or size is valid */ };

struct key {
	const char *name;
	enum vtype type;
	unsigned flags;
	const char *def;        /* default as text; NULL = not set */
	const char *const *enums;
	uint64_t min, max;      /* V_UINT; V_DURATION: max seconds (0: 365d) */
	const char *help;       /* what --dump --defaults says when unset */
};

struct kind {
	const char *name;
	const struct key *keys;
	int nkeys;
	int named; /* 0: never, 1: always, 2: optional */
};

extern const struct kind cf_kinds[CF_NKINDS];

int cf_kind_lookup(const char *s, size_t n);
int cf_key_lookup(enum cf_kind kind, const char *s, size_t n);
/* Converts the words of one assignment into its key's value. */
void cf_set_value(struct cf *cf, struct cf_section *sec,
		  const struct cf_assign *a);
/* Default of an unset key, converted like a value. */
void cf_set_default(struct cf *cf, struct cf_section *sec, int key);
/* NULL when s is a host name fit for the wire: a domain, not a literal,
 * in ASCII (RFC 5321 4.1.2: no U-label in a greeting or an EHLO), whose
 * xn-- labels are A-labels (with full, for --check, as libidn2 tells when
 * it can be loaded; otherwise well-formed Punycode); otherwise what was
 * expected (in msg, or a constant). */
const char *cf_hostname_problem(const char *s, size_t n, struct buf *msg,
				int full);

/* ---- storage and diagnostics (cf.c) ---- */

void cf_diag(struct cf *cf, const struct cf_pos *pos, const char *kind,
	     const char *fmt, va_list ap);
uint32_t cf_add_section(struct cf *cf, enum cf_kind kind, const char *name,
			const struct cf_pos *pos);
struct cf_assign *cf_add_assign(struct cf *cf);
struct cf_word *cf_add_word(struct cf *cf);
struct cf_file *cf_add_file(struct cf *cf, const char *path, size_t size);

/* ---- the lexer (cf_lex.c) ---- */

struct lexer {
	struct cf *cf;
	const char *path;
	const char *p, *end;
	const char *line_start;
	uint32_t line;
	uint32_t col_base; /* flags: column of p's string start */
	char *arena;
	size_t used;
	int route_only; /* a route file: no section headers */
	uint32_t cursec;
	const char *basedir;
	int errors;
	const char *glue; /* what may touch a quote without a blank: ']' in
			     a section header, ',' in a route's targets */
	int loose;        /* a flag's scope: its own checks follow */
};

enum tok { TOK_END, TOK_WORD, TOK_EQ, TOK_ERROR };

struct cf_pos lx_pos(const struct lexer *lx, const char *at);
void lx_error(struct lexer *lx, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reads the next token of the current line. A word is unescaped into the
 * arena and recorded in cf->words. */
enum tok lx_next(struct lexer *lx, struct cf_word *out);
/* Reads the words of an assignment after its key: ['='] word+. Returns 0
 * and fills w0/nw, or -1. */
int lx_values(struct lexer *lx, const char *keyat, const char *key,
	      uint32_t *w0, uint32_t *nw);
int cf_is_atom_char(unsigned char c);
char *cf_dir_of(const char *path);

#endif
