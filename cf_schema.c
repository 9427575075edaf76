/*
 * cf_schema.c - postmaster.cf: the sections, their keys and value types.
 *
 * Owns: one table per section kind of its keys (type, default, flags,
 * help), one parse function per value type, and storing a key's value or
 * its default. Sizes, durations, ports, listen addresses, relay addresses
 * and DNS servers are parsed here and nowhere else.
 *
 * Never: looks at the system (users, paths, hosts): those are --check's
 * warnings (check.c); never resolves a name but a service port.
 */
#include "cf_impl.h"
#include "addr.h"
#include "dnsbl.h"
#include "fmt.h"
#include "idna.h"
#include "net.h"

/* The longest durations: a timeout's (max DAY), any other's. */
#define DAY (24 * 3600)
#define YEAR (365 * DAY)

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Key tables                                                          */

static const char *const e_bounce[] = {"sender", "postmaster", "both", 0};
static const char *const e_facility[] = {
	"mail", "daemon", "user", "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7", 0};
static const char *const e_protocol[] = {"smtp", "lmtp", 0};
static const char *const e_rtls[] = {"opportunistic", "required", "verify",
				     "no", 0};
static const char *const e_stls[] = {"no", "starttls", "implicit", 0};
static const char *const e_auth[] = {"no", "optional", "required", 0};
static const char *const e_spf[] = {"off", "tag", "reject", 0};
static const char *const e_bare[] = {"normalize", "reject", 0};
static const char *const e_poldef[] = {"defer", "dunno", 0};
static const char *const e_milter[] = {"tempfail", "accept", "reject", 0};

static const struct key core_keys[] = {
	[CORE_LOGGER] = {"logger", V_LOGGER, 0, "syslog", 0, 0, 0, 0},
	[CORE_USER_ID] = {"user-id", V_USER, 0, 0, 0, 0, 0,
			  "not set: stay the user that started postmaster; "
			  "started as root, refuse to serve"},
	[CORE_GROUP_ID] = {"group-id", V_GROUP, 0, 0, 0, 0, 0,
			   "not set: the user-id's primary group"},
	[CORE_PID_FILE] = {"pid-file", V_PATH, 0, "/run/postmaster.pid", 0, 0,
			   0, 0},
	[CORE_SPOOL_DIRECTORY] = {"spool-directory", V_PATH, 0,
				  "/var/spool/postmaster", 0, 0, 0, 0},
	[CORE_LOCAL_MAILER] = {"local-mailer", V_PIPEREF, 0, "local", 0, 0, 0,
			       0},
	[CORE_HOSTNAME] = {"hostname", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[CORE_MAX_MESSAGE_SIZE] = {"max-message-size", V_SIZE, 0, "10240000",
				   0, 0, 0, 0},
	[CORE_QUEUE_LIFETIME] = {"queue-lifetime", V_DURATION, K_ZERO, "5d", 0, 0,
				 0, 0},
	[CORE_BOUNCE_TO] = {"bounce-to", V_ENUM, 0, "sender", e_bounce, 0, 0,
			    0},
	[CORE_DNS_SERVER] = {"dns-server", V_DNS, 0, 0, 0, 0, 0,
			     "not set: the servers of /etc/resolv.conf"},
	[CORE_RECIPIENT_DELIMITER] = {"recipient-delimiter", V_DELIM, 0, 0, 0,
				      0, 0, "not set: no address extensions"},
	[CORE_MINIMAL_BACKOFF] = {"minimal-backoff", V_DURATION, 0, "300s", 0,
				  0, 0, 0},
	[CORE_MAXIMAL_BACKOFF] = {"maximal-backoff", V_DURATION, 0, "4000s", 0,
				  0, 0, 0},
	[CORE_TRUSTED_USERS] = {"trusted-users", V_USER, K_REPEAT, 0, 0, 0, 0,
				"not set: every local user may choose the "
				"sender"},
	[CORE_DELAY_WARNING_TIME] = {"delay-warning-time", V_DURATION, K_ZERO,
				     "4h", 0, 0, 0, 0},
	[CORE_BOUNCE_SIZE_LIMIT] = {"bounce-size-limit", V_SIZE, K_ZERO,
				    "50000", 0, 0, 0, 0},
};

static const struct key syslog_keys[] = {
	[SYSLOG_IDENT] = {"ident", V_STRING, 0, "postmaster", 0, 0, 0, 0},
	[SYSLOG_FACILITY] = {"facility", V_ENUM, 0, "mail", e_facility, 0, 0,
			     0},
};

static const struct key logfile_keys[] = {
	[LOGFILE_FILE] = {"file", V_STRFTIME_PATH, K_REQUIRED, 0, 0, 0, 0, 0},
};

static const struct key pipe_keys[] = {
	[PIPE_EXEC] = {"exec", V_ARGV, K_REQUIRED, 0, 0, 0, 0, 0},
	[PIPE_MAX_RCPT_TO] = {"max_rcpt_to", V_UINT, 0, "1", 0, 1, 1000, 0},
	[PIPE_TIMEOUT] = {"timeout", V_DURATION, 0, "300s", 0, 0, DAY, 0},
};

static const struct key relay_keys[] = {
	[RELAY_NAME] = {"name", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[RELAY_ADDRESS] = {"address", V_RELAYADDR, K_REPEAT | K_REQUIRED, 0, 0,
			   0, 0, 0},
	[RELAY_PROTOCOL] = {"protocol", V_ENUM, 0, "smtp", e_protocol, 0, 0,
			    0},
	[RELAY_TLS] = {"tls", V_ENUM, 0, "opportunistic", e_rtls, 0, 0, 0},
	[RELAY_AUTH_USER] = {"auth-user", V_STRING, 0, 0, 0, 0, 0,
			     "not set: no AUTH"},
	[RELAY_AUTH_PASSWORD] = {"auth-password", V_STRING, 0, 0, 0, 0, 0,
				 "not set"},
	[RELAY_AUTH_PASSWORD_FILE] = {"auth-password-file", V_PATH, 0, 0, 0, 0,
				      0, "not set"},
	[RELAY_CONNECT_TIMEOUT] = {"connect-timeout", V_DURATION, 0, "30s", 0,
				   0, DAY, 0},
	[RELAY_TIMEOUT] = {"timeout", V_DURATION, 0, "300s", 0, 0, DAY, 0},
};

static const struct key milter_keys[] = {
	[MILTER_ADDRESS] = {"address", V_MILTERADDR, K_REQUIRED, 0, 0, 0, 0, 0},
	[MILTER_CONNECT_TIMEOUT] = {"connect-timeout", V_DURATION, 0, "30s", 0,
				    0, DAY, 0},
	[MILTER_COMMAND_TIMEOUT] = {"command-timeout", V_DURATION, 0, "30s", 0,
				    0, DAY, 0},
	[MILTER_CONTENT_TIMEOUT] = {"content-timeout", V_DURATION, 0, "300s", 0,
				    0, DAY, 0},
	[MILTER_DEFAULT_ACTION] = {"default-action", V_ENUM, 0, "tempfail",
				   e_milter, 0, 0, 0},
};

static const struct key smtpd_keys[] = {
	[SMTPD_NAME] = {"name", V_HOSTNAME, 0, 0, 0, 0, 0, 0},
	[SMTPD_LISTEN_PORT] = {"listen-port", V_LISTEN, 0, 0, 0, 0, 0, 0},
	[SMTPD_ROUTING_TABLE] = {"routing-table", V_ROUTEREF, K_REPEAT, 0, 0,
				 0, 0, "not set: only the global [route]"},
	[SMTPD_LOGGER] = {"logger", V_LOGGER, 0, 0, 0, 0, 0, 0},
	[SMTPD_LOCAL_RCPT_TO] = {"local-rcpt-to", V_BOOL, 0, "no", 0, 0, 0, 0},
	[SMTPD_TLS] = {"tls", V_ENUM, 0, "no", e_stls, 0, 0, 0},
	[SMTPD_TLS_CERTIFICATE] = {"tls-certificate", V_PATH, K_REPEAT, 0, 0, 0,
				   0, "not set"},
	[SMTPD_TLS_KEY] = {"tls-key", V_PATH, K_REPEAT, 0, 0, 0, 0, "not set"},
	[SMTPD_TLS_PRIORITY] = {"tls-priority", V_STRING, 0, 0, 0, 0, 0,
				"not set: the Mozilla intermediate profile "
				"where passwords are taken, else any "
				"forward-secret AEAD suite"},
	[SMTPD_AUTH] = {"auth", V_ENUM, 0, "no", e_auth, 0, 0, 0},
	[SMTPD_AUTH_FILE] = {"auth-file", V_PATH, 0, 0, 0, 0, 0, "not set"},
	[SMTPD_SUBMISSION] = {"submission", V_BOOL, 0, 0, 0, 0, 0,
			      "not set: yes when auth = required"},
	[SMTPD_SPF] = {"spf", V_ENUM, 0, "off", e_spf, 0, 0, 0},
	[SMTPD_VERIFY_SENDER] = {"verify-sender", V_BOOL, 0, "no", 0, 0, 0, 0},
	[SMTPD_ACCEPT_MAIL] = {"accept-mail", V_BOOL, 0, "yes", 0, 0, 0, 0},
	[SMTPD_MAX_RECIPIENTS] = {"max-recipients", V_UINT, 0, "100", 0, 1,
				  100000, 0},
	[SMTPD_MAX_MESSAGE_SIZE] = {"max-message-size", V_SIZE, 0, 0, 0, 0, 0,
				    0},
	[SMTPD_BARE_NEWLINE] = {"bare-newline", V_ENUM, 0, "normalize", e_bare,
				0, 0, 0},
	[SMTPD_TIMEOUT] = {"timeout", V_DURATION, 0, "300s", 0, 0, DAY, 0},
	[SMTPD_JUNK_COMMAND_LIMIT] = {"junk-command-limit", V_UINT, 0, "100", 0,
				      1, 10000000, 0},
	[SMTPD_LMTP] = {"lmtp", V_BOOL, 0, "yes", 0, 0, 0, 0},
	[SMTPD_RELAY_CLIENTS] = {"relay-clients", V_NETWORK, K_REPEAT, 0, 0, 0,
				 0, "not set: loopback"},
	[SMTPD_GREET_PAUSE] = {"greet-pause", V_DURATION, K_ZERO, "0", 0, 0, DAY,
			       0},
	[SMTPD_DNSBL] = {"dnsbl", V_DNSLIST, K_REPEAT, 0, 0, 0, 0,
			 "not set: no block list"},
	[SMTPD_DNSWL] = {"dnswl", V_DNSLIST, K_REPEAT, 0, 0, 0, 0,
			 "not set: no allow list"},
	[SMTPD_POLICY_SERVICE] = {"policy-service", V_POLICYADDR, 0, 0, 0, 0,
				  0, "not set: no policy service"},
	[SMTPD_POLICY_TIMEOUT] = {"policy-timeout", V_DURATION, 0, "10s", 0, 0,
				  DAY, 0},
	[SMTPD_POLICY_DEFAULT_ACTION] = {"policy-default-action", V_ENUM, 0,
					 "defer", e_poldef, 0, 0, 0},
	[SMTPD_POLICY_END_OF_DATA] = {"policy-end-of-data", V_BOOL, 0, "no", 0,
				      0, 0, 0},
	[SMTPD_PROXY] = {"proxy", V_BOOL, 0, "yes", 0, 0, 0, 0},
	[SMTPD_PROXY_TIMEOUT] = {"proxy-timeout", V_DURATION, 0, "100s", 0, 0,
				 DAY, 0},
	[SMTPD_MILTERS] = {"milters", V_MILTERREF, K_REPEAT, 0, 0, 0, 0,
			   "not set: no milter"},
};

const struct kind cf_kinds[CF_NKINDS] = {
	[CF_CORE] = {"core", core_keys, CORE_NKEYS, 0},
	[CF_SYSLOG] = {"syslog", syslog_keys, SYSLOG_NKEYS, 0},
	[CF_LOGFILE] = {"logfile", logfile_keys, LOGFILE_NKEYS, 1},
	[CF_PIPE] = {"pipe", pipe_keys, PIPE_NKEYS, 1},
	[CF_RELAY] = {"relay", relay_keys, RELAY_NKEYS, 1},
	[CF_MILTER] = {"milter", milter_keys, MILTER_NKEYS, 1},
	[CF_SMTPD] = {"smtpd", smtpd_keys, SMTPD_NKEYS, 1},
	[CF_ROUTE] = {"route", NULL, 0, 2},
};


const char *cf_kind_name(enum cf_kind kind)
{
	return cf_kinds[kind].name;
}

int cf_nkeys(enum cf_kind kind)
{
	return cf_kinds[kind].nkeys;
}

unsigned cf_key_traits(enum cf_kind kind, int key)
{
	static const unsigned by_type[V_NTYPES] = {
		[V_USER] = CF_KEY_USER, [V_GROUP] = CF_KEY_GROUP,
		[V_PATH] = CF_KEY_PATH, [V_LOGGER] = CF_KEY_LOGGER,
		[V_NETWORK] = 0,
	};
	const struct key *k = &cf_kinds[kind].keys[key];
	return by_type[k->type] | (k->flags & K_REPEAT ? CF_KEY_REPEAT : 0);
}

int cf_kind_lookup(const char *s, size_t n)
{
	for (int k = 0; k < CF_NKINDS; k++)
		if (strlen(cf_kinds[k].name) == n && memcmp(cf_kinds[k].name, s, n) == 0)
			return k;
	return -1;
}

int cf_flag_shaped(const char *arg)
{
	size_t k = strcspn(arg, ".-=");
	return cf_kind_lookup(arg, k) >= 0 && (arg[k] == '.' || arg[k] == '-');
}

int cf_key_lookup(enum cf_kind kind, const char *s, size_t n)
{
	for (int i = 0; i < cf_kinds[kind].nkeys; i++) {
		const char *k = cf_kinds[kind].keys[i].name;
		if (strlen(k) == n && memcmp(k, s, n) == 0)
			return i;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

int cf_parse_uint(const char *s, uint64_t *v, const char **end)
{
	if (!(*s >= '0' && *s <= '9'))
		return -1;
	uint64_t x = 0;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
		s++;
	}
	*v = x;
	*end = s;
	return 0;
}

static int parse_scaled(const char *s, const char *suffixes,
			const uint64_t *mult, uint64_t *v)
{
	const char *end;
	uint64_t x;
	if (cf_parse_uint(s, &x, &end) < 0)
		return -1;
	if (*end) {
		const char *k = strchr(suffixes, *end);
		if (!k || end[1])
			return -1;
		uint64_t m = mult[k - suffixes];
		if (x > UINT64_MAX / m)
			return -1;
		x *= m;
	}
	*v = x;
	return 0;
}

int cf_parse_size(const char *s, uint64_t *v)
{
	static const uint64_t m[] = {1024, 1024, 1024 * 1024,
				     1024 * 1024 * 1024};
	return parse_scaled(s, "kKMG", m, v);
}

int cf_parse_duration(const char *s, uint64_t *v)
{
	static const uint64_t m[] = {1, 60, 3600, 86400, 604800};
	return parse_scaled(s, "smhdw", m, v);
}

int cf_host_is_loopback(const char *host)
{
	if (!strcmp(host, "localhost") || !strcmp(host, "ipv6-localhost") ||
	    !strcmp(host, "ip6-localhost") || !strcmp(host, "::1"))
		return 1;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/*
 * "[host:]port": port alone, host:port, [ip]:port; or unix:/path. Returns
 * NULL or the reason it is not one.
 */
static const char *parse_listen(const char *s, struct cf_listen *l)
{
	char host[256];
	const char *port;
	memset(l, 0, sizeof *l);
	if (!strncmp(s, "unix:", 5)) {
		if (s[5] != '/')
			return "expected an absolute path after unix:";
		if (strlen(s + 5) >= sizeof l->path)
			return "expected a unix socket path of at most 107 bytes";
		fmt_snprintf(l->path, sizeof l->path, "%s", s + 5);
		return NULL;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return "expected [ADDRESS]:PORT";
		size_t n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof host)
			return "expected an address inside [ ]";
		memcpy(host, s + 1, n);
		host[n] = 0;
		unsigned char bin[16];
		if (inet_pton(AF_INET6, host, bin) != 1 &&
		    inet_pton(AF_INET, host, bin) != 1)
			return "expected a numeric address inside [ ]";
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			host[0] = 0;
			port = s;
		} else {
			size_t n = (size_t)(colon - s);
			if (n == 0 || n >= sizeof host)
				return "expected HOST:PORT";
			memcpy(host, s, n);
			host[n] = 0;
			port = colon + 1;
			unsigned char bin[16];
			if (strchr(host, ':'))
				return "write an IPv6 address as [ADDRESS]:PORT";
			if (inet_pton(AF_INET, host, bin) != 1 &&
			    !addr_domain_valid(host, n, 0))
				return "expected a host name or address";
		}
	}
	if (!*port || net_port_parse(port, &l->port) < 0)
		return NET_EXPECTED_PORT;
	fmt_snprintf(l->host, sizeof l->host, "%s", host);
	return NULL;
}

/*
 * dns-server: what the resolver connects to (net_endpoint_parse with port
 * 53), but only a numeric IPv4 address: libc's resolver, which the MX
 * and address lookups use, takes an IPv6 server only from resolv.conf
 * (dns.c), and a server that half the lookups cannot ask is refused
 * rather than failing them at run time (SPEC 3.2).
 */
static const char *parse_dns(const char *s)
{
	struct net_endpoint ep;
	const char *why = net_endpoint_parse(s, 53, &ep);
	if (why && !strcmp(why, NET_EXPECTED_PORT))
		return "expected a port number";
	if (why || ep.kind != NET_EP_IP)
		return "expected a numeric address";
	if (ep.family != AF_INET)
		return "expected an IPv4 address (this build asks an IPv6 DNS "
		       "server only when resolv.conf names it)";
	return NULL;
}

/* What the onward client accepts at run time (client_dest.c). */
const char *cf_relay_address_error(const char *s)
{
	struct net_endpoint ep;
	return net_endpoint_parse(s, 25, &ep);
}

static int valid_user_name(const char *s)
{
	uint64_t v;
	const char *end;
	size_t n = strlen(s), digits = 0;
	while (digits < n && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (n && digits == n) /* a number: one that fits, not a name */
		return cf_parse_uint(s, &v, &end) == 0 && !*end &&
		       v < UINT32_MAX;
	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		/* ASCII by hand: no page of the C library's locale tables */
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      (c == '-' && i > 0) || (c == '$' && i == n - 1)))
			return 0;
	}
	return 1;
}

/*
 * One parser per value type: each checks word i of a and leaves its
 * number in *n (sizes, durations, yes/no, enumerations, counts). It
 * returns NULL, or what was expected; msg holds text it builds.
 */
struct vctx {
	struct cf_section *sec;
	const struct key *k;
	const struct cf_assign *a;
	const struct cf_word *w;
	struct buf *msg;
	int full; /* --check: what needs a library is checked too */
};

typedef const char *vparse_fn(const struct vctx *c, uint64_t *n);

static const char *p_string(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return c->w->s[0] ? NULL : "expected a non-empty value";
}

static const char *p_path(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return c->w->s[0] == '/' ? NULL : "expected an absolute path";
}

static const char *p_user(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return valid_user_name(c->w->s) ? NULL : "expected a user name or number";
}

static const char *p_group(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return valid_user_name(c->w->s) ? NULL
					: "expected a group name or number";
}

/* A session checks the shape of an xn-- label only, loading no library
 * for a name it merely greets with (SPEC 11); --check (full) has libidn2
 * tell whether it is an A-label, and name the A-label of a U-label. */
const char *cf_hostname_problem(const char *s, size_t n, struct buf *msg,
				int full)
{
	char canon[ADDR_DOMAIN_MAX + 1], why[300];
	if (s[0] == '[' || !addr_domain_valid(s, n, 1))
		return "expected a host name";
	if (!idna_needed(s))
		return NULL;
	size_t i = 0;
	while (i < n && (unsigned char)s[i] < 0x80)
		i++;
	enum idna_status st = IDNA_ENOLIB;
	if (full)
		st = idna_canon(s, canon, sizeof canon, why, sizeof why);
	if (i < n && st == IDNA_OK)
		buf_printf(msg, "expected an ASCII host name (the A-label form "
				"'%s')",
			   canon);
	else if (i < n)
		buf_printf(msg, "expected an ASCII host name");
	else if (st == IDNA_EINVALID)
		buf_printf(msg, "expected a host name whose xn-- labels are "
				"A-labels (%s)",
			   why);
	else if (!idna_alabels_well_formed(s))
		buf_printf(msg, "expected a host name whose xn-- labels are "
				"A-labels (Punycode that encodes a non-ASCII "
				"label)");
	return msg->len ? msg->s : NULL;
}

static const char *p_hostname(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return cf_hostname_problem(c->w->s, c->w->len, c->msg, c->full);
}

static const char *p_size(const struct vctx *c, uint64_t *n)
{
	if (cf_parse_size(c->w->s, n) < 0 ||
	    (*n == 0 && !(c->k->flags & K_ZERO)))
		return "expected a size such as 10240000, 500k, 10M or 1G";
	return NULL;
}

static const char *p_duration(const struct vctx *c, uint64_t *n)
{
	if (cf_parse_duration(c->w->s, n) < 0 ||
	    (*n == 0 && !(c->k->flags & K_ZERO)))
		return "expected a duration such as 300, 30s, 30m, 4h or 5d";
	/* a timeout is counted in milliseconds in an int: a day at most */
	uint64_t max = c->k->max ? c->k->max : YEAR;
	if (*n > max) {
		buf_printf(c->msg, "expected at most %s",
			   max == DAY ? "1d" : "365d");
		return c->msg->s;
	}
	return NULL;
}

static const char *p_bool(const struct vctx *c, uint64_t *n)
{
	if (!strcmp(c->w->s, "yes"))
		*n = 1;
	else if (strcmp(c->w->s, "no"))
		return "expected yes or no";
	return NULL;
}

static const char *p_enum(const struct vctx *c, uint64_t *n)
{
	const char *const *e = c->k->enums;
	for (int j = 0; e[j]; j++)
		if (!strcmp(c->w->s, e[j])) {
			*n = (uint64_t)j;
			return NULL;
		}
	buf_adds(c->msg, "expected ");
	for (int m = 0; e[m]; m++)
		buf_printf(c->msg, "%s%s",
			   m ? (e[m + 1] ? ", " : " or ") : "", e[m]);
	return c->msg->s;
}

static const char *p_uint(const struct vctx *c, uint64_t *n)
{
	const char *end;
	if (cf_parse_uint(c->w->s, n, &end) < 0 || *end || *n < c->k->min ||
	    *n > c->k->max) {
		buf_printf(c->msg, "expected a number from %llu to %llu",
			   (unsigned long long)c->k->min,
			   (unsigned long long)c->k->max);
		return c->msg->s;
	}
	return NULL;
}

static const char *p_listen(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return parse_listen(c->w->s, &c->sec->listen);
}

static const char *p_dns(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return parse_dns(c->w->s);
}

static const char *p_relayaddr(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return cf_relay_address_error(c->w->s);
}

static const char *p_delim(const struct vctx *c, uint64_t *n)
{
	(void)n;
	if (!c->w->s[0] || c->w->len > 8)
		return "expected 1 to 8 delimiter characters";
	for (const char *s = c->w->s; *s; s++)
		if (!ispunct((unsigned char)*s) || *s == '@' || *s == '"' ||
		    *s == '\\' || *s == '.')
			return "expected delimiter characters such as + or -";
	return NULL;
}

/* loggers, pipes and routes are resolved once every section is known */
static const char *p_reference(const struct vctx *c, uint64_t *n)
{
	(void)n;
	return c->w->s[0] ? NULL : "expected a name";
}

static const char *p_network(const struct vctx *c, uint64_t *n)
{
	(void)n;
	struct net net;
	const struct cf_list *l = &c->sec->v[c->a->key].list;
	const char *why = net_parse(c->w->s, &net);
	if (!why && (net.family == NET_NONE
			     ? c->a->nw > 1 || l->n
			     : l->n && !strcmp(l->v[0], "none")))
		why = "expected 'none' alone";
	return why;
}

/* dnsbl, dnswl: ZONE[=PATTERN], at most half of DNSBL_MAX per key */
static const char *p_dnslist(const struct vctx *c, uint64_t *n)
{
	(void)n;
	struct dnsbl_zone z;
	if (c->sec->v[c->a->key].list.n >= DNSBL_MAX / 2) {
		buf_printf(c->msg, "expected at most %d zones", DNSBL_MAX / 2);
		return c->msg->s;
	}
	return dnsbl_parse(c->w->s, &z);
}

/* policy-service, a [milter]'s address: unix:/path or inet:ADDRESS:PORT */
static const char *p_streamaddr(const struct vctx *c, uint64_t *n)
{
	(void)n;
	struct sockaddr_storage ss;
	socklen_t len;
	return net_stream_address_parse(c->w->s, &ss, &len);
}

static vparse_fn *const parsers[] = {
	[V_STRING] = p_string,     [V_PATH] = p_path,
	[V_STRFTIME_PATH] = p_path, [V_USER] = p_user,
	[V_GROUP] = p_group,       [V_HOSTNAME] = p_hostname,
	[V_SIZE] = p_size,         [V_DURATION] = p_duration,
	[V_BOOL] = p_bool,         [V_ENUM] = p_enum,
	[V_UINT] = p_uint,         [V_LISTEN] = p_listen,
	[V_DNS] = p_dns,           [V_RELAYADDR] = p_relayaddr,
	[V_LOGGER] = p_reference,  [V_PIPEREF] = p_reference,
	[V_ROUTEREF] = p_reference, [V_ARGV] = NULL,
	[V_DELIM] = p_delim,       [V_NETWORK] = p_network,
	[V_DNSLIST] = p_dnslist,   [V_POLICYADDR] = p_streamaddr,
	[V_MILTERADDR] = p_streamaddr, [V_MILTERREF] = p_reference,
};

static int numeric_type(enum vtype t)
{
	return t == V_SIZE || t == V_DURATION || t == V_BOOL || t == V_ENUM ||
	       t == V_UINT;
}

/* The length of the shell name (a letter or '_', then letters, digits
 * and '_') at p; 0 when there is none. */
static size_t shell_name(const char *p)
{
	size_t n = 0;
	for (;; n++) {
		char c = p[n];
		int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_';
		if (!letter && !(n && c >= '0' && c <= '9'))
			return n;
	}
}

/* ${NAME} in an exec word, closed or running to the word's end, is a
 * placeholder as a pipe reads it (deliver.c): one that is neither
 * ${MAIL_FROM} nor ${RCPT_TO}, a misspelt one, would reach the mailer as
 * it is written. Other shell syntax (${RCPT_TO%%@*}, ${HOME:-/}, ${1})
 * is the program's. */
static void check_placeholders(struct cf *cf, const struct cf_assign *a,
			       const struct cf_word *w, struct buf *tmp)
{
	for (const char *p = strstr(w->s, "${"); p; p = strstr(p + 2, "${")) {
		size_t n = shell_name(p + 2);
		if (!n || (p[2 + n] && p[2 + n] != '}'))
			continue;
		size_t len = 2 + n + (p[2 + n] == '}');
		if ((len == 12 && !strncmp(p, "${MAIL_FROM}", 12)) ||
		    (len == 10 && !strncmp(p, "${RCPT_TO}", 10)))
			continue;
		struct cf_pos pos = a->pos;
		/* in a quoted word, escapes make the offset no column */
		pos.col = w->col + (w->quoted ? 0 : (uint32_t)(p - w->s));
		cf_error(cf, &pos, "expected ${MAIL_FROM} or ${RCPT_TO}, found "
				   "'%s'",
			 cf_shown(p, len, tmp));
		return;
	}
}

/* An exec line: the whole argv, the program by absolute path. */
static void set_argv(struct cf *cf, struct cf_section *sec,
		     const struct cf_assign *a)
{
	struct buf tmp = {0};
	const struct cf_word *w = &cf->words[a->w0];
	union cf_value *v = &sec->v[a->key];
	v->list.v = xmalloc((a->nw + 1) * sizeof *v->list.v);
	for (uint32_t i = 0; i < a->nw; i++)
		v->list.v[i] = w[i].s;
	v->list.v[a->nw] = NULL;
	v->list.n = a->nw;
	if (w[0].s[0] != '/') {
		struct cf_pos pos = a->pos;
		pos.col = w->col;
		cf_error(cf, &pos, "expected an absolute path to the program, "
				   "found '%s'",
			 cf_shown(w[0].s, w[0].len, &tmp));
	}
	for (uint32_t i = 0; i < a->nw; i++)
		check_placeholders(cf, a, &w[i], &tmp);
	sec->set[a->key] = a;
	buf_free(&tmp);
}

/* Whether a may set its key at all: once, and one word unless repeatable. */
static int may_set(struct cf *cf, const struct cf_section *sec,
		   const struct key *k, const struct cf_assign *a)
{
	if (sec->set[a->key] && !(k->flags & K_REPEAT)) {
		const struct cf_pos *p = &sec->set[a->key]->pos;
		cf_error(cf, &a->pos, "expected '%s' once in [%s%s%s%s], found "
				      "it again (first set at %s:%u)",
			 k->name, cf_kinds[sec->kind].name,
			 sec->name ? " \"" : "", sec->name ? sec->name : "",
			 sec->name ? "\"" : "", p->file, p->line);
		return 0;
	}
	if (k->type != V_ARGV && a->nw != 1 && !(k->flags & K_REPEAT)) {
		struct cf_pos p2 = a->pos;
		p2.col = cf->words[a->w0 + 1].col;
		cf_error(cf, &p2, "expected one value for '%s', found %u "
				  "(quote a value that contains blanks)",
			 k->name, a->nw);
		return 0;
	}
	return 1;
}

/* Parses and stores every word of a; 0, or -1 after the first refusal. */
static int set_words(struct cf *cf, struct cf_section *sec,
		     const struct key *k, const struct cf_assign *a)
{
	struct buf tmp = {0}, msg = {0};
	union cf_value *v = &sec->v[a->key];
	int r = 0;
	for (uint32_t i = 0; i < a->nw && r == 0; i++) {
		const struct cf_word *w = &cf->words[a->w0 + i];
		struct vctx c = {sec, k, a, w, &msg,
				 (cf->mode & CF_CHECK) != 0};
		uint64_t n = 0;
		msg.len = 0;
		const char *why = parsers[k->type](&c, &n);
		if (why) {
			struct cf_pos pos = a->pos;
			pos.col = w->col;
			cf_error(cf, &pos, "%s, found '%s'", why,
				 cf_shown(w->s, w->len, &tmp));
			r = -1;
		} else if (k->flags & K_REPEAT) {
			v->list.v = xrealloc(v->list.v,
					     (v->list.n + 2) * sizeof *v->list.v);
			v->list.v[v->list.n++] = w->s;
			v->list.v[v->list.n] = NULL;
		} else if (numeric_type(k->type)) {
			v->n = n;
		} else {
			v->s = w->s;
		}
	}
	buf_free(&tmp);
	buf_free(&msg);
	return r;
}

void cf_set_value(struct cf *cf, struct cf_section *sec,
		  const struct cf_assign *a)
{
	const struct key *k = &cf_kinds[sec->kind].keys[a->key];
	int errors = cf->nerrors;
	if (may_set(cf, sec, k, a)) {
		if (k->type == V_ARGV)
			set_argv(cf, sec, a);
		else if (set_words(cf, sec, k, a) == 0 && !sec->set[a->key])
			sec->set[a->key] = a;
	}
	if (cf->nerrors > errors)
		sec->bad |= 1u << a->key;
}

/* Default of an unset key, converted like a value. */
void cf_set_default(struct cf *cf, struct cf_section *sec, int key)
{
	const struct key *k = &cf_kinds[sec->kind].keys[key];
	union cf_value *v = &sec->v[key];
	const char *def = k->def;
	if (sec->kind == CF_CORE && key == CORE_HOSTNAME)
		def = cf_default_hostname(cf);
	/* the built-in default must serve as root too, never as root */
	if (sec->kind == CF_CORE && key == CORE_USER_ID && cf->builtin_default)
		def = "nobody";
	if (sec->kind == CF_SMTPD && key == SMTPD_NAME)
		def = sec->name;
	if (sec->kind == CF_RELAY && key == RELAY_NAME)
		def = sec->name;
	if (sec->kind == CF_SMTPD && key == SMTPD_LOGGER)
		def = cf->core->v[CORE_LOGGER].s;
	if (sec->kind == CF_SMTPD && key == SMTPD_MAX_MESSAGE_SIZE) {
		v->n = cf->core->v[CORE_MAX_MESSAGE_SIZE].n;
		return;
	}
	if (!def)
		return;
	switch (k->type) {
	case V_SIZE:
		cf_parse_size(def, &v->n);
		break;
	case V_DURATION:
		cf_parse_duration(def, &v->n);
		break;
	case V_BOOL:
		v->n = !strcmp(def, "yes");
		break;
	case V_UINT: {
		const char *end;
		cf_parse_uint(def, &v->n, &end);
		break;
	}
	case V_ENUM:
		for (int j = 0; k->enums[j]; j++)
			if (!strcmp(def, k->enums[j]))
				v->n = (uint64_t)j;
		break;
	default:
		v->s = def;
	}
}

