/*
 * priv.c - giving up root (see priv.h).
 *
 * Owns: setgroups/setgid/setuid to core.user-id, and the check that root
 * cannot be regained.
 *
 * Never: keeps any privilege it was asked to drop, or proceeds as root
 * without a core.user-id to become.
 */
#include "priv.h"
#include "fmt.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int priv_drop(const struct cf *cf, char *why, size_t n)
{
	if (geteuid() != 0)
		return 0;
	uid_t uid;
	gid_t gid;
	int r = cf_user_ids(cf, &uid, &gid, why, n);
	if (r == 1)
		fmt_snprintf(why, n, "started as root without core.user-id: "
				 "refusing to read client input as root");
	if (r != 0)
		return -1;
	if (uid == 0 || gid == 0) {
		fmt_snprintf(why, n, "core.%s is root's: refusing to read "
				 "client input with root's %s",
			 uid == 0 ? "user-id" : "group-id",
			 uid == 0 ? "user id" : "group id 0");
		return -1;
	}
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0 ||
	    setuid(0) == 0) {
		fmt_snprintf(why, n, "cannot drop privileges to %s: %s",
			 cf->core->v[CORE_USER_ID].s, strerror(errno));
		return -1;
	}
	return 0;
}
