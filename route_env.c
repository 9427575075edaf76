/*
 * route_env.c - the host's answers to routing's questions (route.h).
 *
 * Owns: route_env_system: system users through getpwnam(3) (which may
 * load NSS modules: only routing asks, and only for names that may be
 * users) and the machine's own addresses through getifaddrs(3); and
 * route_resolve(), routing as this host sees it.
 *
 * Never: decides anything about routes; route.c does, given these.
 */
#include "route.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int system_user(const char *name, char *out, size_t n)
{
	struct passwd *pw = getpwnam(name);
	if (!pw)
		return 0;
	snprintf(out, n, "%s", pw->pw_name);
	return 1;
}

static int own_address(int family, const unsigned char *addr)
{
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) < 0)
		return 0;
	int found = 0;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET)
			found = !memcmp(&((struct sockaddr_in *)(void *)i->ifa_addr)
						 ->sin_addr,
					addr, 4);
		else
			found = !memcmp(&((struct sockaddr_in6 *)(void *)i->ifa_addr)
						 ->sin6_addr,
					addr, 16);
	}
	freeifaddrs(ifa);
	return found;
}

const struct route_env route_env_system = {system_user, own_address};

void route_resolve(const struct cf *cf, const struct cf_section *smtpd,
		   const char *text, size_t len, unsigned flags,
		   struct route_result *r)
{
	route_resolve_env(&route_env_system, cf, smtpd, text, len, flags, r);
}
