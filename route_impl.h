/*
 * route_impl.h - what route.c shares with route_syntax.c and
 * route_check.c and nobody else.
 *
 * Owns: the resolution context (struct rctx), the target forms a route
 * line may hold, and the steps of a resolution that --check's rules
 * replay (route_check.c).
 *
 * Never: included outside route.c, route_syntax.c and route_check.c;
 * everything else goes through route.h.
 */
#ifndef POSTMASTER_ROUTE_IMPL_H
#define POSTMASTER_ROUTE_IMPL_H

#include "route.h"
#include "rtindex.h"

enum tkind {
	TK_NAME, TK_REWRITE, TK_HOST, TK_MX, TK_CMD, TK_MAILDIR, TK_REJECT,
	TK_DISCARD
};

struct tgt {
	enum tkind kind;
	const char *text; /* NUL-terminated inside the split buffer */
	uint32_t col;
};

#define MAX_TGTS 128

struct cand {
	enum pat_kind k;
	const char *l;
};

struct match {
	const char *table;
	const char *file;
	uint32_t line, col;
	const char *pattern;
	int names_domain; /* a user@domain or @domain pattern */
	const struct cf_word *w;
	uint32_t nw;
	/* storage for an indexed match, allocated when an index is asked
	 * (49 KiB: a session whose tables have none never touches it);
	 * the caller frees it */
	struct rt_hit *hit;
};

struct rctx {
	const struct route_env *env;
	const struct cf *cf;
	const struct cf_section *smtpd;
	const struct route_table **tables;
	uint32_t ntables;
	struct route_result *r;
	const char *delim;
	uint32_t steps;
	int trace; /* ROUTE_TRACE: write the steps */
	int aborted;
	/* the first failure of each class */
	int tcode, pcode;
	char tdsn[12], pdsn[12];
	char ttext[512], ptext[512];
	const char *chain[ROUTE_MAX_DEPTH + 2];
	const char *rcpt;
	/* the first line that matched, for --check */
	struct cf_pos first;
	const char *first_pattern;
	int first_names_domain;
	/* the built-in rule took postmaster at a local domain (RFC 5321
	 * 4.5.1): the recipient is this site's wherever its mailbox is */
	int postmaster_rule;
	/* addresses and names resolved already: each is expanded once */
	char **done;
	int *donedepth; /* the shallowest depth each was reached at */
	uint32_t ndone, donecap; /* donecap: a power of two, or 0 */
};

/* route_syntax.c: splits the words of a route line into targets: commas separate targets
 * (inside unquoted words too); blanks join the words of one |command.
 * Returns the number of targets or -1 with why and the column. */
int route_split_targets(const struct cf_word *w, uint32_t nw, struct buf *b,
			struct tgt *t, const char **why, uint32_t *col);
/* Classifies one target text; -1 with why when it is none. */
int route_classify(const char *s, enum tkind *k, struct addr *rw,
		   const char **why);

void route_ctx_init(struct rctx *c, const struct route_env *env,
		    const struct cf *cf, const struct cf_section *smtpd,
		    struct route_result *r, const struct route_table **tables);
void route_ctx_resolve(struct rctx *c, const struct addr *a, int depth,
		       int client_name);
/* Turns the context's targets or first failures into c->r. */
void route_ctx_finish(struct rctx *c);
void route_ctx_free(struct rctx *c);

/* The tables a listener consults, in order (at most max). */
uint32_t route_listener_tables(const struct cf *cf,
			       const struct cf_section *smtpd,
			       const struct route_table **out, uint32_t max);
/* The first line of the context's tables that matches. */
int route_find_match(struct rctx *c, int is_name, const char *local,
		     const char *domain, struct match *m);
/* The part of local before the first delimiter character, or NULL. */
const char *route_base_of(const struct rctx *c, const char *local, char *out,
			  size_t n);
/* Whether a target leaves the machine (SPEC 6: relaying). */
int route_relays(const struct route_result *r);

#endif
