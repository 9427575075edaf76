/*
 * spf.c - SPF checks through a dlopen'd libspf2 (see spf.h).
 *
 * libspf2 asks the servers of /etc/resolv.conf (its own resolver layer),
 * not core.dns-server. Debian's libspf2 has no pkg-config file; its header
 * needs <sys/socket.h> and <netinet/in.h> first.
 */
#include "spf.h"
#include "addr.h"
#include "dns.h"
#include "fmt.h"
#include "idna.h"
#include "log.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spf2/spf.h>

#define FN(name) __typeof__(name) *name
static struct {
	int loaded;
	FN(SPF_server_new);
	FN(SPF_request_new);
	FN(SPF_request_free);
	FN(SPF_request_set_ipv4_str);
	FN(SPF_request_set_ipv6_str);
	FN(SPF_request_set_helo_dom);
	FN(SPF_request_set_env_from);
	FN(SPF_request_query_mailfrom);
	FN(SPF_response_result);
	FN(SPF_response_get_received_spf);
	FN(SPF_response_free);
} L;
#undef FN

static SPF_server_t *server;

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
	SYM(SPF_server_new);
	SYM(SPF_request_new);
	SYM(SPF_request_free);
	SYM(SPF_request_set_ipv4_str);
	SYM(SPF_request_set_ipv6_str);
	SYM(SPF_request_set_helo_dom);
	SYM(SPF_request_set_env_from);
	SYM(SPF_request_query_mailfrom);
	SYM(SPF_response_result);
	SYM(SPF_response_get_received_spf);
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
	server = L.SPF_server_new(SPF_DNS_CACHE, 0);
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
	enum idna_status st = idna_canon(dom, a, sizeof a, why, whyn);
	if (st == IDNA_OK)
		fmt_snprintf(out, n, "%.*s@%s", ll,
			     *sender && at ? sender : "postmaster", a);
	return st;
}

enum spf_result spf_check(const char *ip, const char *helo, const char *sender,
			  struct buf *header, char *why, size_t n)
{
	char from[600], helo_a[ADDR_DOMAIN_MAX + 1], ignored[128];
	enum idna_status st = identity(helo, sender, from, sizeof from, why, n);
	if (st != IDNA_OK) {
		/* RFC 7208 4.3: a malformed domain is none, unlooked-up */
		enum spf_result r = st == IDNA_EINVALID ? SPFR_NONE
							: SPFR_TEMPERROR;
		buf_printf(header, "Received-SPF: %s", spf_result_name(r));
		return r;
	}
	if (load(why, n) < 0)
		return SPFR_TEMPERROR;
	SPF_request_t *req = L.SPF_request_new(server);
	int bad = (strchr(ip, ':') ? L.SPF_request_set_ipv6_str(req, ip)
				   : L.SPF_request_set_ipv4_str(req, ip)) != 0;
	if (!bad && *helo &&
	    idna_canon(helo, helo_a, sizeof helo_a, ignored, sizeof ignored) ==
		    IDNA_OK)
		L.SPF_request_set_helo_dom(req, helo_a);
	if (!bad)
		bad = L.SPF_request_set_env_from(req, from) != 0;
	SPF_response_t *resp = NULL;
	if (!bad)
		L.SPF_request_query_mailfrom(req, &resp);
	enum spf_result r = SPFR_NONE;
	if (resp) {
		switch (L.SPF_response_result(resp)) {
		case SPF_RESULT_NEUTRAL: r = SPFR_NEUTRAL; break;
		case SPF_RESULT_PASS: r = SPFR_PASS; break;
		case SPF_RESULT_FAIL: r = SPFR_FAIL; break;
		case SPF_RESULT_SOFTFAIL: r = SPFR_SOFTFAIL; break;
		case SPF_RESULT_TEMPERROR: r = SPFR_TEMPERROR; break;
		case SPF_RESULT_PERMERROR: r = SPFR_PERMERROR; break;
		default: r = SPFR_NONE; break;
		}
		const char *h = L.SPF_response_get_received_spf(resp);
		/* libspf2 says none for a DNS that failed, too: a domain
		 * whose TXT lookup fails for now is a temperror (RFC 7208
		 * 2.6.6), not a domain without SPF */
		const char *dom = strrchr(from, '@');
		if (r == SPFR_NONE && dom &&
		    dns_txt_status(NULL, dom + 1) == DNS_TEMP)
			r = SPFR_TEMPERROR;
		else if (h)
			buf_adds(header, h);
		L.SPF_response_free(resp);
	}
	if (!header->len)
		buf_printf(header, "Received-SPF: %s", spf_result_name(r));
	L.SPF_request_free(req);
	return r;
}
