/*
 * cf.h - postmaster.cf: the parser, the typed configuration, the scoped
 * assignments that --dump prints and command-line flags set.
 *
 * A configuration is an ordered list of scoped assignments
 * (SECTION."NAME".KEY = WORDS). cf_load() reads the file, cf_flag() adds
 * command-line assignments on top, and cf_finish() merges them, checks every
 * value against its key's type and resolves references. Route tables are
 * built next to routing (route_load.h); --check's rules about this host
 * live in check.h. Every problem is collected with file:line:column;
 * nothing may use a configuration that reported an error.
 *
 * The family: cf.c (storage, lookup, diagnostics), cf_lex.c, cf_schema.c,
 * cf_build.c, cf_dump.c, sharing cf_impl.h. It never touches the network
 * and never writes a file.
 */
#ifndef POSTMASTER_CF_H
#define POSTMASTER_CF_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util.h"

enum cf_kind {
	CF_CORE,
	CF_SYSLOG,
	CF_LOGFILE,
	CF_PIPE,
	CF_RELAY,
	CF_MILTER,
	CF_SMTPD,
	CF_ROUTE,
	CF_NKINDS
};

/* Key ids, in the order of each kind's key table in cf.c. */
enum {
	CORE_LOGGER, CORE_USER_ID, CORE_GROUP_ID, CORE_PID_FILE,
	CORE_SPOOL_DIRECTORY, CORE_LOCAL_MAILER, CORE_HOSTNAME,
	CORE_MAX_MESSAGE_SIZE, CORE_QUEUE_LIFETIME, CORE_BOUNCE_TO,
	CORE_DNS_SERVER, CORE_RECIPIENT_DELIMITER, CORE_MINIMAL_BACKOFF,
	CORE_MAXIMAL_BACKOFF, CORE_TRUSTED_USERS, CORE_DELAY_WARNING_TIME,
	CORE_BOUNCE_SIZE_LIMIT, CORE_NKEYS
};
enum { SYSLOG_IDENT, SYSLOG_FACILITY, SYSLOG_NKEYS };
enum { LOGFILE_FILE, LOGFILE_NKEYS };
enum { PIPE_EXEC, PIPE_MAX_RCPT_TO, PIPE_TIMEOUT, PIPE_NKEYS };
enum {
	RELAY_NAME, RELAY_ADDRESS, RELAY_PROTOCOL, RELAY_TLS, RELAY_AUTH_USER,
	RELAY_AUTH_PASSWORD, RELAY_AUTH_PASSWORD_FILE, RELAY_CONNECT_TIMEOUT,
	RELAY_TIMEOUT, RELAY_NKEYS
};
enum {
	MILTER_ADDRESS, MILTER_CONNECT_TIMEOUT, MILTER_COMMAND_TIMEOUT,
	MILTER_CONTENT_TIMEOUT, MILTER_DEFAULT_ACTION, MILTER_NKEYS
};
enum {
	SMTPD_NAME, SMTPD_LISTEN_PORT, SMTPD_ROUTING_TABLE, SMTPD_LOGGER,
	SMTPD_LOCAL_RCPT_TO, SMTPD_TLS, SMTPD_TLS_CERTIFICATE, SMTPD_TLS_KEY,
	SMTPD_TLS_PRIORITY,
	SMTPD_AUTH, SMTPD_AUTH_FILE, SMTPD_SUBMISSION, SMTPD_SPF, SMTPD_VERIFY_SENDER,
	SMTPD_ACCEPT_MAIL, SMTPD_MAX_RECIPIENTS, SMTPD_MAX_MESSAGE_SIZE,
	SMTPD_BARE_NEWLINE, SMTPD_TIMEOUT, SMTPD_JUNK_COMMAND_LIMIT,
	SMTPD_LMTP, SMTPD_RELAY_CLIENTS,
	SMTPD_GREET_PAUSE, SMTPD_DNSBL, SMTPD_DNSWL, SMTPD_POLICY_SERVICE,
	SMTPD_POLICY_TIMEOUT, SMTPD_POLICY_DEFAULT_ACTION,
	SMTPD_POLICY_END_OF_DATA,
	SMTPD_PROXY, SMTPD_PROXY_TIMEOUT, SMTPD_MILTERS, SMTPD_NKEYS
};
#define CF_MAXKEYS SMTPD_NKEYS

/* Enumerated values (index into the key's list of words). */
enum { BOUNCE_SENDER, BOUNCE_POSTMASTER, BOUNCE_BOTH };
enum { RELAY_SMTP, RELAY_LMTP };
enum { RTLS_OPPORTUNISTIC, RTLS_REQUIRED, RTLS_VERIFY, RTLS_NO };
enum { STLS_NO, STLS_STARTTLS, STLS_IMPLICIT };
enum { AUTH_NO, AUTH_OPTIONAL, AUTH_REQUIRED };
enum { SPF_OFF, SPF_TAG, SPF_REJECT };
enum { BARE_NORMALIZE, BARE_REJECT };
enum { POLICY_DEFAULT_DEFER, POLICY_DEFAULT_DUNNO };
enum { MILTER_TEMPFAIL, MILTER_ACCEPT, MILTER_REJECT };

struct cf_pos {
	const char *file; /* "command line" for flags */
	uint32_t line;    /* argv index for flags */
	uint32_t col;
};

struct cf_word {
	const char *s; /* unescaped, NUL-terminated */
	uint32_t len;
	uint32_t col;
	uint8_t quoted;
};

struct cf_list {
	const char **v;
	uint32_t n;
};

union cf_value {
	const char *s;
	uint64_t n;
	struct cf_list list;
};

struct cf_listen {
	char host[256]; /* "" = any address */
	uint16_t port;
	char path[108]; /* unix:/path (sun_path's size): then no host, no port */
};

struct route_table;

struct cf_section {
	enum cf_kind kind;
	const char *name; /* NULL for [core], [syslog] and the global [route] */
	struct cf_pos pos;
	int builtin;      /* the built-in [pipe "local"] */
	uint32_t bad;     /* keys whose value was refused: no second message */
	union cf_value v[CF_MAXKEYS];
	const struct cf_assign *set[CF_MAXKEYS];
	struct cf_listen listen;     /* [smtpd]: parsed listen-port */
	struct route_table *table;   /* [route] */
};

enum { KEY_ROUTE = -1, KEY_FILE = -2, KEY_DECLARE = -3 };

struct cf_assign {
	uint32_t sec;      /* index into cf->secs */
	int key;           /* key id, or KEY_ROUTE / KEY_FILE / KEY_DECLARE */
	const char *keytext;
	uint32_t keylen;
	uint8_t key_quoted;
	uint8_t from_flag;
	uint8_t dead;      /* replaced by a flag */
	uint32_t w0, nw;   /* words: cf->words[w0 .. w0+nw) */
	struct cf_pos pos;
	uint32_t anchor;   /* flags: where the merged list places it */
	const char *basedir; /* directory that relative includes start from */
};

/* What a route file was when it was read: the index records this, not
 * what the file is when the index is written, so that a change made
 * meanwhile makes the index stale rather than wrong. */
struct cf_depstat {
	uint64_t size, ino;
	int64_t sec, nsec;
};

/* A route file that postmaster.cf includes, read as text: --check
 * compiles its lines into an index (rtindex.h). */
struct cf_include {
	struct cf_pos at;            /* the `file` line */
	struct route_table *table;
	uint32_t first, n;           /* its lines: table entries [first, first+n) */
	char **deps;                 /* deps[0] its real path, then what it
					includes */
	struct cf_depstat *depst;    /* each one as it was when read */
	uint32_t ndeps;
	int clean;                   /* no error so far when it was read */
	struct cf_include *next;
};

struct cf_file {
	char *path;
	char *dir;    /* where relative includes start */
	char *text;   /* arena holding the unescaped words */
	struct cf_file *next;
};

enum {
	CF_CHECK = 1 << 0,    /* --check: read every route file as text,
				 so that check.c can compile it */
	CF_NO_INCLUDES = 1 << 1, /* do not read route files (--dump) */
};

struct cf {
	struct cf_section *secs;
	uint32_t nsecs, capsecs;
	struct cf_assign **ablk; /* blocks of CF_ABLK: pointers stay valid */
	uint32_t nas;
	struct cf_word *words;
	uint32_t nwords, capwords;
	struct cf_assign **merged; /* effective order after cf_finish() */
	uint32_t nmerged;
	struct cf_file *files;
	const char *path;    /* main file, or NULL for the built-in default */
	const char *basedir; /* its directory */
	int builtin_default;
	unsigned mode;
	struct buf diag;     /* "file:line:col: message\n" lines */
	int nerrors, nwarnings;
	char hostname[256];   /* cf_default_hostname()'s, once asked */
	struct cf_section *core, *syslog, *global_route;
	struct cf_pool *pool; /* small allocations that live with cf */
	struct cf_include *includes; /* top-level route files read as text */
	void (*tables_free)(struct cf *cf); /* set by whoever builds tables */
	int include_depth;
	struct { uint64_t dev, ino; } include_stack[9];
};

#define CF_ABLK 8 /* small blocks: see cf_add_section() */
static inline struct cf_assign *cf_assign_at(const struct cf *cf, uint32_t i)
{
	return &cf->ablk[i / CF_ABLK][i % CF_ABLK];
}

#define CF_MAX_LINE 4096
/* How many tls-certificate and tls-key pairs an [smtpd] section may name,
 * one a kind of key (RSA, ECDSA...): the most a server offers. */
#define CF_MAX_TLS_KEYPAIRS 4
#define CF_MAX_INCLUDE_DEPTH 8
/* A listener's routing-table entries; the global [route] comes after
 * them. */
#define CF_MAX_ROUTING_TABLES 63

struct cf *cf_new(void);
/* The machine's name (gethostname(), else "localhost"): core.hostname's
 * default. */
const char *cf_default_hostname(struct cf *cf);
/* n bytes that live as long as cf (a bump allocator: no per-line malloc). */
void *cf_alloc(struct cf *cf, size_t n);
void cf_free(struct cf *cf);

/* Reads a configuration file. required = 0: a missing file means the
 * built-in default. Returns -2 when the file cannot be read, -1 when it
 * has syntax errors (both recorded in cf->diag). */
int cf_load(struct cf *cf, const char *path, int required);
/* Parses text as if it were a file (tests, fuzzing). */
int cf_load_text(struct cf *cf, const char *name, const char *text,
		 size_t len);
/* One command-line assignment, without the leading "--". */
int cf_flag(struct cf *cf, const char *arg, int argn);
/* Whether arg (after its "--") is shaped as a configuration flag: a
 * section kind followed by '.' or '-'. Anything else is an option. */
int cf_flag_shaped(const char *arg);
/* Merges, types, validates. Returns the number of errors. */
int cf_finish(struct cf *cf, unsigned mode);

void cf_dump(const struct cf *cf, int defaults, FILE *out);
/* The diagnostics sorted by file (in reading order), line and column. */
void cf_print_diagnostics(const struct cf *cf, FILE *out);

void cf_error(struct cf *cf, const struct cf_pos *pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cf_warn(struct cf *cf, const struct cf_pos *pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* What --check may look for on this host about a key (check.c). */
enum {
	CF_KEY_USER = 1 << 0,   /* a user name or number */
	CF_KEY_GROUP = 1 << 1,  /* a group name or number */
	CF_KEY_PATH = 1 << 2,   /* an absolute path */
	CF_KEY_LOGGER = 1 << 3, /* a logger name */
	CF_KEY_REPEAT = 1 << 4, /* may be given more than once */
};
int cf_nkeys(enum cf_kind kind);
unsigned cf_key_traits(enum cf_kind kind, int key);

struct cf_section *cf_find(const struct cf *cf, enum cf_kind kind,
			   const char *name);
const char *cf_kind_name(enum cf_kind kind);

/* The [smtpd] sections in file order; n is set to their number. */
struct cf_section **cf_listeners(const struct cf *cf, uint32_t *n);

/*
 * SPEC 4: the [smtpd] section that serves a connection. A name (--smtpd)
 * chooses among the sections, never past serves(section, ctx); without
 * one, the first section that serves, except that a local connection
 * (serves NULL: a pipe, which any section serves) takes only a sole
 * section. 0 with *out set (NULL when there is no [smtpd]: the built-in
 * listener), or -1 with *out NULL when no section may serve.
 */
int cf_choose_listener(const struct cf *cf, const char *name,
		       int (*serves)(const struct cf_section *, const void *),
		       const void *ctx, const struct cf_section **out);

/* Listen address helpers shared by --check and the session. */
int cf_host_is_loopback(const char *host);
/* The uid and gid that core.user-id and core.group-id name: 0, 1 when
 * user-id is not set, -1 with why when a name is unknown. */
/* name's uid and gid read from the passwd file when the nsswitch file's
 * "passwd:" line names "files" first, as glibc would answer for a name
 * found there: 1, or 0 (ask getpwnam) when the name is not on a whole,
 * well-formed line or another source comes first. */
int cf_passwd_files(const char *nsswitch, const char *passwd,
		    const char *name, uid_t *uid, gid_t *gid);
int cf_user_ids(const struct cf *cf, uid_t *uid, gid_t *gid, char *why,
		size_t n);
/* Text of untrusted bytes for a diagnostic, escaped, at most 60 bytes,
 * built in tmp. */
const char *cf_shown(const char *s, size_t n, struct buf *tmp);

/* Reads a route file (route lines only, no section headers) into
 * assignments of section sec. Returns 0, -1 when it had syntax errors
 * (recorded), or -2 with why when it cannot be read; st is its stat. */
int cf_load_route_file(struct cf *cf, const char *path, uint32_t sec,
		       struct stat *st, char *why, size_t whylen);

/* A decimal number without sign or suffix; end is set after it. */
int cf_parse_uint(const char *s, uint64_t *v, const char **end);
int cf_parse_size(const char *s, uint64_t *v);
/* NULL when s is host, ip, [ip], host:port, [ip]:port or unix:/path;
 * otherwise what was expected. */
const char *cf_relay_address_error(const char *s);
int cf_parse_duration(const char *s, uint64_t *v);

#endif
