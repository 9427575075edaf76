/*
 * session_auth.c - AUTH PLAIN and LOGIN on the server side (SPEC 8,
 * RFC 4954, RFC 4616).
 *
 * Owns: when AUTH is offered, the exchange of 334 challenges and base64
 * answers, and the pause after a failed login.
 *
 * Never: offers a password exchange in clear text over a network, logs
 * or keeps a password, or grants an authorization identity other than
 * the one that logged in.
 */
#include "fmt.h"
#include "session_state.h"
#include "auth.h"
#include "log.h"

#include <string.h>
#include <strings.h>
#include <unistd.h>

/* AUTH is offered over TLS, or in clear text to a loopback or local
 * client only (SPEC 8): a password never crosses a network in clear. */
int session_auth_offered(const struct session *s)
{
	return s->auth_mode != AUTH_NO &&
	       (s->tls_on || s->peer_is_pipe || cf_host_is_loopback(s->peer));
}

/* Sends a 334 challenge and reads the client's base64 answer into out:
 * 0, or -1 when the client cancelled ("*"), -2 when it is not base64,
 * -3 when the session ends (the connection did, or the answer did not
 * come in time: 421), -4 when the answer is too long or ends in a bare
 * line end that the listener refuses (replied). */
static int auth_answer(struct session *s, const char *challenge, struct buf *out)
{
	reply(s, 334, ESC_NONE, "%s", challenge);
	flush(s);
	char line[CMD_MAX_EXT + 2];
	size_t len;
	int bare;
	enum io_status st = io_getline(&s->io, line, CMD_MAX_EXT, &len, &bare);
	if (st == IO_TIMEOUT) {
		log_event(LOG_L_WARNING, "event", "timeout", "during", "AUTH",
			  NULL);
		reply(s, 421, ESC_BAD_CONNECTION,
		      "%s Timeout during AUTH, closing connection", s->name);
		return -3;
	}
	if (st == IO_TOOLONG) {
		reply(s, 500, ESC_AUTH_LINE_TOO_LONG,
		      "Authentication exchange line is too long");
		return -4;
	}
	if (st != IO_OK)
		return -3;
	if (s->bare_reject && (bare || memchr(line, '\r', len))) {
		reply(s, 501, ESC_SYNTAX_ERROR, "Bare CR or LF in AUTH answer");
		return -4;
	}
	if (len == 1 && line[0] == '*')
		return -1;
	return base64_decode(line, len, out) < 0 ? -2 : 0;
}

/* Whether AUTH may not start now; replies why. */
static int auth_refused(struct session *s)
{
	if (s->auth_mode == AUTH_NO)
		reply(s, 502, ESC_INVALID_COMMAND, "AUTH not offered");
	else if (s->proto != P_EHLO && s->proto != P_LHLO)
		reply(s, 503, ESC_INVALID_COMMAND, "Send EHLO or LHLO first");
	else if (s->auth_user[0])
		reply(s, 503, ESC_INVALID_COMMAND, "Already authenticated");
	else if (!session_auth_offered(s))
		reply(s, 538, ESC_ENCRYPTION_REQUIRED_FOR_AUTH,
		      "Encryption required for requested "
		      "authentication mechanism");
	else
		return 0;
	return 1;
}

/* The decoded answers: user name and password, with auth_answer()'s
 * results (0, -1 cancelled, -2 not decodable, -3 the session ends, -4
 * refused and replied), or -5 when PLAIN asks for an authorization
 * identity other than the login name (user is the login name). */
static int auth_credentials(struct session *s, int plain, const char *initial,
			    char *user, size_t un, struct buf *pass)
{
	struct buf a = {0};
	int r = 0;
	if (initial && strcmp(initial, "="))
		r = base64_decode(initial, strlen(initial), &a) < 0 ? -2 : 0;
	else if (initial)
		buf_adds(&a, ""); /* "=": an empty initial response */
	else
		r = auth_answer(s, plain ? "" : "VXNlcm5hbWU6", &a);
	if (r == 0 && !plain)
		r = auth_answer(s, "UGFzc3dvcmQ6", pass);
	if (r == 0 && plain) {
		/* authzid NUL authcid NUL password; a different authzid is
		 * not something this server grants */
		char *u = memchr(a.s, 0, a.len);
		char *p2 = u ? memchr(u + 1, 0, a.len - (size_t)(u + 1 - a.s)) : NULL;
		if (!p2 || (size_t)(p2 - u) > un) {
			r = -2; /* a name too long for user is no name here */
		} else {
			fmt_snprintf(user, un, "%s", u + 1);
			buf_add(pass, p2 + 1, a.len - (size_t)(p2 + 1 - a.s));
			if (u != a.s && strcmp(a.s, u + 1))
				r = -5;
		}
	} else if (r == 0) {
		/* LOGIN: the whole answer is the name, so a NUL in it (which
		 * the copy would cut the name at) is no name at all */
		if ((a.len && memchr(a.s, 0, a.len)) || a.len >= un)
			r = -2;
		else
			fmt_snprintf(user, un, "%.*s", (int)a.len, a.s);
	}
	if (r == 0 && (!pass->s || memchr(pass->s, 0, pass->len)))
		r = -2;
	if (a.s)
		memset(a.s, 0, a.len);
	buf_free(&a);
	return r;
}

/* The reply to a login: ok as auth_check() returned it; why says what
 * went wrong (for a failure, when it is more than a wrong password). */
static void auth_result(struct session *s, int ok, const char *user,
			const char *mech, const char *why)
{
	if (ok < 0) {
		log_event(LOG_L_ERR, "event", "auth-error", "reason", why, NULL);
		reply(s, 454, ESC_OTHER_SECURITY_STATUS,
		      "Temporary authentication failure");
		return;
	}
	if (!ok) {
		/* slowed: each failure costs the client one second more */
		s->auth_failures++;
		log_event(LOG_L_WARNING, "event", "auth-failed", "user", user,
			  "mechanism", mech, "reason", why[0] ? why : NULL,
			  NULL);
		flush(s);
		sleep((unsigned)(s->auth_failures < 5 ? s->auth_failures : 5));
		reply(s, 535, ESC_AUTH_CREDENTIALS_INVALID,
		      "Authentication credentials invalid");
		return;
	}
	fmt_snprintf(s->auth_user, sizeof s->auth_user, "%s", user);
	fmt_snprintf(s->auth_mech, sizeof s->auth_mech, "%s", mech);
	log_event(LOG_L_INFO, "event", "auth", "user", user, "mechanism", mech,
		  NULL);
	reply(s, 235, ESC_OTHER_SECURITY_STATUS, "Authentication successful");
}

void session_cmd_auth(struct session *s, char *arg)
{
	if (auth_refused(s))
		return;
	while (*arg == ' ')
		arg++;
	char *initial = strchr(arg, ' ');
	if (initial)
		*initial++ = 0;
	int plain = !strcasecmp(arg, "PLAIN"), login = !strcasecmp(arg, "LOGIN");
	if (!*arg) {
		reply(s, 501, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (!plain && !login) {
		reply(s, 504, ESC_INVALID_COMMAND_ARGUMENTS,
		      "Unrecognized authentication type");
		return;
	}
	struct buf pass = {0};
	char user[256] = "", why[256] = "";
	int r = auth_credentials(s, plain, initial, user, sizeof user, &pass);
	int ok = r == 0 ? auth_check(&s->auth_table, user, pass.s, why,
				     sizeof why)
			: 0;
	if (r == -5) /* a failed login, whatever the password */
		fmt_snprintf(why, sizeof why, "asked to act as another user");
	if (pass.s)
		memset(pass.s, 0, pass.len);
	buf_free(&pass);
	if (r == -3)
		s->quit = 1;
	else if (r == -4)
		; /* replied */
	else if (r == -1)
		reply(s, 501, ESC_OTHER, "Authentication cancelled");
	else if (r == -2)
		reply(s, 501, ESC_SYNTAX_ERROR,
		      "Cannot decode the AUTH response");
	else /* 0 or -5 */
		auth_result(s, ok, user, plain ? "PLAIN" : "LOGIN", why);
}
