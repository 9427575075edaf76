/*
 * session_local.c - a client on a local stream socket (SPEC 2): a user's
 * sendmail on the submit socket, or the session that --inject starts as
 * root on a socket pair.
 *
 * Owns: the client's credentials (SO_PEERCRED) and user name, its
 * standing as an authenticated local submitter, and the rule on its
 * envelope sender: its own address user@hostname, any other only for
 * core.trusted-users (everyone when unset, root always).
 *
 * Never: believes what the client says about who it is, or looks at a
 * connection that is no AF_UNIX socket.
 */
#define _GNU_SOURCE /* struct ucred */
#include "fmt.h"
#include "session_state.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int session_local_peer(struct session *s, int fd)
{
	struct ucred c;
	socklen_t n = sizeof c;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &n) < 0 ||
	    n != sizeof c)
		return -1;
	s->cred.known = 1;
	s->cred.uid = c.uid;
	s->cred.gid = c.gid;
	s->cred.pid = c.pid;
	struct passwd *pw = getpwuid(c.uid);
	if (pw && strlen(pw->pw_name) < sizeof s->cred.user)
		fmt_snprintf(s->cred.user, sizeof s->cred.user, "%s", pw->pw_name);
	/* authenticated by the kernel: relaying and the submission
	 * fix-ups follow as after AUTH */
	fmt_snprintf(s->auth_user, sizeof s->auth_user, "%s", s->cred.user);
	return 0;
}

/* Whether one trusted-users entry, a user name or number, is the
 * client. */
static int is_client(const struct session *s, const char *who)
{
	uint64_t uid;
	const char *end;
	if (cf_parse_uint(who, &uid, &end) == 0 && !*end)
		return uid == s->cred.uid;
	return s->cred.user[0] && !strcmp(who, s->cred.user);
}

/* Whether the local user may name any envelope sender (-f). */
static int trusted(const struct session *s)
{
	const struct cf_list *t = &s->cf->core->v[CORE_TRUSTED_USERS].list;
	if (s->cred.uid == 0 || !s->cf->core->set[CORE_TRUSTED_USERS])
		return 1;
	for (uint32_t i = 0; i < t->n; i++)
		if (is_client(s, t->v[i]))
			return 1;
	return 0;
}

int session_local_sender_ok(const struct session *s, const struct addr *a,
			    struct reply *r)
{
	if (!s->cred.known || trusted(s))
		return 1;
	const char *host = s->cf->core->v[CORE_HOSTNAME].s;
	if (s->cred.user[0] && !a->null && !strcmp(a->local, s->cred.user) &&
	    addr_part_eq(a->domain, host))
		return 1;
	if (s->cred.user[0])
		reply_set(r, 550, ESC_DELIVERY_NOT_AUTHORIZED,
			  "Only trusted-users may choose the sender; user %s "
			  "sends as <%s@%s>",
			  s->cred.user, s->cred.user, host);
	else
		reply_set(r, 550, ESC_DELIVERY_NOT_AUTHORIZED,
			  "Only trusted-users may choose the sender, and uid "
			  "%u has no user name",
			  (unsigned)s->cred.uid);
	return 0;
}
