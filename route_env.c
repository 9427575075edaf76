/*
 * route_env.c - the host's answers to routing's questions (route.h).
 *
 * Owns: route_env_system: system users through getpwnam(3) (which may
 * load NSS modules: only routing asks, and only for names that may be
 * users) and the machine's own addresses (net.c's net_is_own_address,
 * the check the onward client also makes); and
 * route_resolve(), routing as this host sees it.
 *
 * Never: decides anything about routes; route.c does, given these.
 */
#include "fmt.h"
#include "route.h"
#include "net.h"

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

const struct route_env route_env_system = {system_user, net_is_own_address};

void route_resolve(const struct cf *cf, const struct cf_section *smtpd,
		   const char *text, size_t len, unsigned flags,
		   struct route_result *r)
{
	route_resolve_env(&route_env_system, cf, smtpd, text, len, flags, r);
}
