/*
 * spf.c - SPF checks through a dlopen'd libspf2 (see spf.h).
 *
 * libspf2 asks the servers of /etc/resolv.conf (its own resolver layer),
 * not core.dns-server. Debian's libspf2 has no pkg-config file; its header
 * needs <sys/socket.h> and <netinet/in.h> first.
 *
 * libspf2 counts DNS mechanisms (the limit of 10) but not void lookups
 * (RFC 7208 4.6.4): a DNS layer of ours on top of its cache counts the
 * address, MX and PTR lookups that find nothing, answers the ones past
 * the limit without asking, and the check is then a permerror.
 */
#include "spf.h"
#include "addr.h"
#include "dns.h"
#include "fmt.h"
#include "idna.h"
#include "log.h"

#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_cache.h>
#include <spf2/spf_dns_resolv.h>

/* RFC 7208 4.6.4: more void lookups than this are a permerror */
#define SPF_VOID_MAX 2

#define FN(name) __typeof__(name) *name
static struct {
	int loaded;
	FN(SPF_server_new_dns);
	FN(SPF_dns_resolv_new);
	FN(SPF_dns_cache_new);
	FN(SPF_dns_rr_new_nxdomain);
	FN(SPF_request_new);
	FN(SPF_request_free);
	FN(SPF_request_set_ipv4_str);
	FN(SPF_request_set_ipv6_str);
	FN(SPF_request_set_helo_dom);
	FN(SPF_request_set_env_from);
	FN(SPF_request_query_mailfrom);
	FN(SPF_response_result);
	FN(SPF_response_free);
} L;
#undef FN

static SPF_server_t *server;
static unsigned void_lookups; /* of the check under way */

/* A lookup by a mechanism (a, mx, ptr, exists; not the TXT of a record):
 * one that finds nothing counts, and past the limit none is made. */
static SPF_dns_rr_t *counted_lookup(SPF_dns_server_t *d, const char *domain,
				    ns_type type, int should_cache)
{
	int counted = type == ns_t_a || type == ns_t_aaaa || type == ns_t_mx ||
		      type == ns_t_ptr;
	if (counted && void_lookups > SPF_VOID_MAX)
		return L.SPF_dns_rr_new_nxdomain(d, domain);
	SPF_dns_rr_t *rr = d->layer_below->lookup(d->layer_below, domain, type,
						  should_cache);
	if (counted && rr &&
	    (rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA ||
	     (rr->herrno == NETDB_SUCCESS && rr->num_rr == 0)))
		void_lookups++;
	return rr;
}

static SPF_dns_server_t counting_layer = {
	.lookup = counted_lookup,
	.name = "void-lookups",
};

static void quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

static void __attribute__((noreturn)) fatal(const char *file, int line,
					    const char *msg)
{
	(void)file;
	(void)line;
	log_event(LOG_L_ERR, "event", "spf-error", "reason", msg, NULL);
	_exit(EX_TEMPFAIL);
}

static int load(char *why, size_t n)
{
	if (L.loaded)
		return L.loaded > 0 ? 0 : -1;
	L.loaded = -1;
	void *h = dlopen("libspf2.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fmt_snprintf(why, n, "cannot load libspf2.so.2: %s", dlerror());
		return -1;
	}
#define SYM(name)                                                   \
	do {                                                        \
		*(void **)&L.name = dlsym(h, #name);                \
		if (!L.name) {                                      \
			fmt_snprintf(why, n, "libspf2 lacks %s", #name); \
			return -1;                                  \
		}                                                   \
	} while (0)
	SYM(SPF_server_new_dns);
	SYM(SPF_dns_resolv_new);
	SYM(SPF_dns_cache_new);
	SYM(SPF_dns_rr_new_nxdomain);
	SYM(SPF_request_new);
	SYM(SPF_request_free);
	SYM(SPF_request_set_ipv4_str);
	SYM(SPF_request_set_ipv6_str);
	SYM(SPF_request_set_helo_dom);
	SYM(SPF_request_set_env_from);
	SYM(SPF_request_query_mailfrom);
	SYM(SPF_response_result);
	SYM(SPF_response_free);
#undef SYM
	/* libspf2 would print to stderr: the client's socket under inetd */
	static const char *const handlers[] = {
		"SPF_warning_handler", "SPF_info_handler", "SPF_debug_handler"};
	for (size_t i = 0; i < 3; i++) {
		void (**hp)(const char *, int, const char *) = dlsym(h, handlers[i]);
		if (hp)
			*hp = quiet;
	}
	void (**eh)(const char *, int, const char *) = dlsym(h, "SPF_error_handler");
	if (eh)
		*eh = fatal;
	/* as SPF_server_new(SPF_DNS_CACHE) builds it, our layer on top */
	SPF_dns_server_t *resolv = L.SPF_dns_resolv_new(NULL, NULL, 0);
	counting_layer.layer_below =
		resolv ? L.SPF_dns_cache_new(resolv, NULL, 0, 8) : NULL;
	if (counting_layer.layer_below)
		server = L.SPF_server_new_dns(&counting_layer, 0);
	if (!server) {
		fmt_snprintf(why, n, "SPF_server_new failed");
		return -1;
	}
	L.loaded = 1;
	return 0;
}

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = {"none", "neutral", "pass", "fail",
					    "softfail", "temperror", "permerror"};
	return names[r];
}

/* The identity checked (RFC 7208 2.4): the sender, or postmaster@ the
 * HELO name for <>, its domain in A-labels (RFC 8616 4): never raw UTF-8
 * in a query. IDNA_EINVALID when the domain is no valid name. */
static enum idna_status identity(const char *helo, const char *sender,
				 char *out, size_t n, char *why, size_t whyn)
{
	const char *at = strrchr(sender, '@');
	const char *dom = *sender ? (at ? at + 1 : sender) : helo;
	int ll = *sender && at ? (int)(at - sender) : 10;
	char a[ADDR_DOMAIN_MAX + 1];
	if (dom[0] == '[') { /* an address literal names no domain */
		fmt_snprintf(why, whyn, "%s is an address literal", dom);
		return IDNA_EINVALID;
	}
	enum idna_status st = idna_canon(dom, a, sizeof a, why, whyn);
	if (st == IDNA_OK && !addr_domain_valid(a, strlen(a), 0)) {
		fmt_snprintf(why, whyn, "%s is not a domain", dom);
		st = IDNA_EINVALID;
	}
	if (st == IDNA_OK)
		fmt_snprintf(out, n, "%.*s@%s", ll,
			     *sender && at ? sender : "postmaster", a);
	return st;
}

/* Appends text to the field, folded before it ("\n\t", which the header
 * writer turns into its line end) when the line would pass 78 octets. */
static void add_folded(struct buf *h, const char *text, size_t n)
{
	size_t line = 0;
	while (line < h->len && h->s[h->len - line - 1] != '\n')
		line++;
	buf_adds(h, line + 1 + n > 78 ? "\n\t" : " ");
	buf_add(h, text, n);
}

/* One key=value of the field (RFC 7208 9.1): a dot-atom as is, else a
 * quoted-string with '"' and '\\' escaped. A value holding a control
 * character, longer than a domain may be, or empty is left out. */
static void add_pair(struct buf *h, const char *key, const char *v)
{
	size_t vl = strlen(v);
	if (!vl || vl > ADDR_PATH_MAX) /* a whole sender fits */
		return;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			return;
	char pair[2 * ADDR_PATH_MAX + 32];
	size_t o = (size_t)fmt_snprintf(pair, sizeof pair, "%s=", key);
	int quote = !addr_dot_atom(v);
	if (quote)
		pair[o++] = '"';
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			pair[o++] = '\\';
		pair[o++] = *p;
	}
	if (quote)
		pair[o++] = '"';
	pair[o++] = ';';
	add_folded(h, pair, o);
}

/* The comment after the result: what it says of domain (an A-label or
 * address literal, which hold no parenthesis or backslash). */
static void add_comment(struct buf *h, enum spf_result r,
			const char *receiver, const char *ip,
			const char *domain)
{
	static const char *const says[] = {
		"domain of %s does not designate permitted sender hosts",
		"domain of %s neither permits nor denies %s as sender",
		"domain of %s designates %s as permitted sender",
		"domain of %s does not designate %s as permitted sender",
		"domain of transitioning %s does not designate %s as "
		"permitted sender",
		"error in processing during lookup of %s",
		"permanent error in processing domain of %s",
	};
	struct buf c = {0};
	buf_printf(&c, "(%s: ", receiver);
	if (!domain)
		buf_adds(&c, "no domain checked");
	else
		buf_printf(&c, says[r], domain, ip);
	buf_addc(&c, ')');
	add_folded(h, c.s, c.len);
	buf_free(&c);
}

/* Received-SPF (RFC 7208 9.1), built from what is known here: the
 * client's HELO and the sender are values, never field syntax. */
static void received_spf(struct buf *h, enum spf_result r,
			 const char *receiver, const char *ip,
			 const char *helo, const char *envelope_from,
			 const char *domain)
{
	buf_printf(h, "Received-SPF: %s", spf_result_name(r));
	add_comment(h, r, receiver, ip, domain);
	add_pair(h, "client-ip", ip);
	add_pair(h, "envelope-from", envelope_from);
	/* an 8-bit HELO (the session keeps valid UTF-8) would put 8-bit
	 * octets into the header of a 7-bit message: left out, as the
	 * Received field shows it with '?' */
	int ascii = 1;
	for (const char *p = helo; *p && ascii; p++)
		ascii = (unsigned char)*p < 0x80;
	if (ascii)
		add_pair(h, "helo", helo);
	add_pair(h, "receiver", receiver);
	add_pair(h, "identity", "mailfrom");
}

/* libspf2's result as ours. */
static enum spf_result result_of(SPF_response_t *resp)
{
	switch (L.SPF_response_result(resp)) {
	case SPF_RESULT_NEUTRAL: return SPFR_NEUTRAL;
	case SPF_RESULT_PASS: return SPFR_PASS;
	case SPF_RESULT_FAIL: return SPFR_FAIL;
	case SPF_RESULT_SOFTFAIL: return SPFR_SOFTFAIL;
	case SPF_RESULT_TEMPERROR: return SPFR_TEMPERROR;
	case SPF_RESULT_PERMERROR: return SPFR_PERMERROR;
	default: return SPFR_NONE;
	}
}

/* check_host() for the identity from, through libspf2. */
static enum spf_result query(const char *ip, const char *helo,
			     const char *from)
{
	char helo_a[ADDR_DOMAIN_MAX + 1], ignored[128];
	SPF_request_t *req = L.SPF_request_new(server);
	int bad = (strchr(ip, ':') ? L.SPF_request_set_ipv6_str(req, ip)
				   : L.SPF_request_set_ipv4_str(req, ip)) != 0;
	if (!bad && *helo &&
	    idna_canon(helo, helo_a, sizeof helo_a, ignored, sizeof ignored) ==
		    IDNA_OK &&
	    addr_domain_valid(helo_a, strlen(helo_a), 0))
		L.SPF_request_set_helo_dom(req, helo_a);
	if (!bad)
		bad = L.SPF_request_set_env_from(req, from) != 0;
	SPF_response_t *resp = NULL;
	void_lookups = 0;
	if (!bad)
		L.SPF_request_query_mailfrom(req, &resp);
	enum spf_result r = SPFR_NONE;
	if (resp) {
		r = void_lookups > SPF_VOID_MAX ? SPFR_PERMERROR
						: result_of(resp);
		/* libspf2 says none for a DNS that failed, too: a domain
		 * whose TXT lookup fails for now is a temperror (RFC 7208
		 * 2.6.6), not a domain without SPF */
		if (r == SPFR_NONE &&
		    dns_txt_status(NULL, strrchr(from, '@') + 1) == DNS_TEMP)
			r = SPFR_TEMPERROR;
		L.SPF_response_free(resp);
	}
	L.SPF_request_free(req);
	return r;
}

enum spf_result spf_check(const char *ip, const char *helo, const char *sender,
			  const char *receiver, struct buf *header, char *why,
			  size_t n)
{
	char from[600] = ""; /* the identity; left empty when it is none */
	enum idna_status st = identity(helo, sender, from, sizeof from, why, n);
	enum spf_result r;
	if (st == IDNA_EINVALID)
		r = SPFR_NONE; /* RFC 7208 4.3: malformed, not looked up */
	else if (st != IDNA_OK || load(why, n) < 0)
		r = SPFR_TEMPERROR;
	else
		r = query(ip, helo, from);
	received_spf(header, r, receiver, ip, helo, *sender ? sender : from,
		     st == IDNA_OK ? strrchr(from, '@') + 1 : NULL);
	return r;
}
