/*
 * route.h - pure routing: an address in, a list of final targets out.
 *
 * route.c owns SPEC 6: pattern matching (first match in table order, the
 * listener's routing-table list and then the global [route]), target
 * resolution (pipe, relay, alias, system user, rewrites, hosts, mx, |cmd,
 * Maildir, reject, discard), recursion and expansion limits, local versus
 * remote domains, and the reply that the session gives at RCPT time. The
 * result is one structure that the session, the spool and --route share.
 *
 * route.c never touches the network, the spool or the file system; the
 * only lookups it makes are the ones it is given: the configuration, the
 * route tables with their compiled indexes (route_load.h), and a struct
 * route_env for system users and the machine's own addresses
 * (route_env.c answers with getpwnam(3) and getifaddrs(3); tests stub
 * it). --check's rules live in route_check.h.
 */
#ifndef POSTMASTER_ROUTE_H
#define POSTMASTER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "cf.h"

#define ROUTE_MAX_DEPTH 20
#define ROUTE_MAX_TARGETS 1000
#define ROUTE_MAX_STEPS 10000

enum pat_kind {
	PAT_ADDR,   /* user@example.org */
	PAT_DOMAIN, /* @example.org */
	PAT_LOCAL,  /* user@ */
	PAT_ALL,    /* @ */
	PAT_NAME,   /* user: a local name */
};

enum { RE_LINE, RE_INDEX };

struct rtindex;

struct route_entry {
	uint8_t type;  /* RE_LINE or RE_INDEX */
	uint8_t pkind; /* enum pat_kind */
	const char *local, *domain; /* canonical pattern parts */
	const char *text;           /* the pattern as written */
	uint32_t w0, nw;            /* target words in cf->words */
	struct cf_pos pos;
	struct rtindex *idx;        /* RE_INDEX: a compiled route file */
};

struct route_table {
	const char *name; /* "" for the global [route] */
	struct route_entry *e;
	uint32_t n, cap;
};

enum target_kind {
	T_PIPE,    /* a [pipe]: arg = its name */
	T_RELAY,   /* a [relay]: arg = its name */
	T_USER,    /* a system user through core.local-mailer: arg = user */
	T_HOST,    /* a host: arg = host, [host], [ip]:port, host:port */
	T_MX,      /* the MX hosts of the address's domain */
	T_CMD,     /* |command: arg = the command */
	T_MAILDIR, /* arg = the Maildir path, ending in '/' */
	T_DISCARD,
};

struct route_target {
	enum target_kind kind;
	char addr[ADDR_PATH_MAX]; /* the address this target receives */
	char *arg;
	const struct cf_section *sec; /* T_PIPE, T_RELAY, and T_USER's mailer */
};

struct route_result {
	int code;           /* 250, 4xx or 5xx: the reply at RCPT time */
	char dsn[12];
	char text[512];     /* reply text after the enhanced code */
	struct route_target *t;
	uint32_t nt;
	int relaying;       /* the domain is not local and a target leaves
			     * the machine: the session allows it only to
			     * relay-clients and authenticated clients */
	struct buf steps;   /* one line per step, with ROUTE_TRACE */
	uint32_t nsteps;
};

enum {
	ROUTE_SMTP = 1 << 0,     /* the address came from RCPT TO */
	ROUTE_UTF8 = 1 << 1,     /* SMTPUTF8 was given */
	ROUTE_TRACE = 1 << 2,    /* fill steps (--route): a session, which
				  * never shows them, skips their printf */
};

/* What routing may ask of the host it runs on. */
struct route_env {
	/* Whether name is a system user; copies the user's name (as the
	 * user database spells it) to out. */
	int (*user)(const char *name, char *out, size_t n);
	/* Whether addr (4 bytes for AF_INET, 16 for AF_INET6) is one of
	 * this machine's addresses. */
	int (*own_address)(int family, const unsigned char *addr);
};

/* The host's own answers: getpwnam(3) and getifaddrs(3) (route_env.c). */
extern const struct route_env route_env_system;

/*
 * Resolves the recipient written in text (with or without <>) as the
 * listener smtpd (NULL: the global table only, as the built-in default)
 * would. Always fills r; r->code says whether the recipient is accepted.
 */
void route_resolve_env(const struct route_env *env, const struct cf *cf,
		       const struct cf_section *smtpd, const char *text,
		       size_t len, unsigned flags, struct route_result *r);
/* route_resolve_env() with route_env_system (route_env.c). */
void route_resolve(const struct cf *cf, const struct cf_section *smtpd,
		   const char *text, size_t len, unsigned flags,
		   struct route_result *r);
void route_result_free(struct route_result *r);

/* A target kind as people read it (--route, logs: "local user",
 * "command"). */
const char *route_target_kind_name(enum target_kind k);
/* A target as the log lines' target= names it, appended to b: its kind
 * and its section's name (via, "" for none), else arg, else for mx the
 * domain of addr: "relay dovecot", "maildir /var/mail/joe/". */
void route_target_text(struct buf *b, enum target_kind k, const char *via,
		       const char *arg, const char *addr);
/* A target kind as one word, as the spool records it ("user", "cmd");
 * and back: -1 for a word that names no kind. */
const char *route_target_kind_word(enum target_kind k);
int route_target_kind_parse(const char *word, enum target_kind *k);

/* Table building (route_load.c) and checks (route_check.c). The domain
 * of a pattern comes out canonical (idna.h); one that is no valid
 * international domain name is refused with the reason. */
int route_pattern_parse(const char *s, size_t n, enum pat_kind *kind,
			struct addr *a, const char **why);
/* Validates the target words of one route line; reports through cf_error.
 * Returns the number of errors. */
int route_check_targets(struct cf *cf, const struct cf_word *w, uint32_t nw,
			const struct cf_pos *pos);
/* Whether domain (either spelling, idna.h) is one of the listener's local
 * domains (SPEC 6). */
int route_domain_is_local(const struct route_env *env, const struct cf *cf,
			  const struct cf_section *smtpd, const char *domain);

/* Canonical lookup key of a pattern, ASCII-lowercased: "a:l@d", "d:d",
 * "l:l", "*", "n:l". */
void route_pattern_key(enum pat_kind kind, const char *local,
		       const char *domain, struct buf *out);

/* The PATH of every mailer (deliver.c): where /bin/sh finds a |command's
 * program, and --check looks for it. */
#define DELIVER_PATH "/usr/local/bin:/usr/bin:/bin"

#endif
