/*
 * route_env.c - the host's answers to routing's questions (route.h).
 *
 * Owns: route_env_system: system users through getpwnam(3) (which may
 * load NSS modules: only routing asks, and only for names that may be
 * users) and the machine's own addresses (net.c's net_is_own_address,
 * the check the onward client also makes, which logs once when the
 * machine cannot list them); and
 * route_resolve(), routing as this host sees it.
 *
 * Never: decides anything about routes; route.c does, given these.
 */
#include "fmt.h"
#include "log.h"
#include "route.h"
#include "net.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

static int system_user(const char *name, char *out, size_t n)
{
	struct passwd *pw = getpwnam(name);
	if (!pw)
		return 0;
	fmt_snprintf(out, n, "%s", pw->pw_name);
	return 1;
}

/* An address is not ours when the interfaces cannot be listed; a sandbox
 * without AF_NETLINK is said once, not a silent "no". */
static int own_address(int family, const unsigned char *addr)
{
	static int warned;
	int r = net_is_own_address(family, addr);
	if (r < 0 && !warned++)
		log_event(LOG_L_WARNING, "event", "own-addresses-unknown",
			  "reason", strerror(errno), NULL);
	return r > 0;
}

const struct route_env route_env_system = {system_user, own_address};

void route_resolve(const struct cf *cf, const struct cf_section *smtpd,
		   const char *text, size_t len, unsigned flags,
		   struct route_result *r)
{
	route_resolve_env(&route_env_system, cf, smtpd, text, len, flags, r);
}
