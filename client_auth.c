/*
 * client_auth.c - AUTH to a smarthost ([relay] auth-user, SPEC 7.2):
 * PLAIN, or LOGIN when the relay offers only that.
 *
 * Owns: the relay's password (auth-password, or the first line of
 * auth-password-file read at the moment of use, as the delivering user),
 * LOGIN's prompts answered in order, and wiping the secret from memory
 * once it is sent.
 *
 * Never: sends credentials without TLS, keeps the password longer than
 * one login, or opens the password file in a process that does not log
 * in to that relay.
 */
#include "client.h"
#include "client_conn.h"
#include "fmt.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* A password file holds one line; more is no password. */
#define PASSWORD_FILE_MAX 1024

/* The relay's password into pass: auth-password, or the first line of
 * auth-password-file, read now, as the delivering user (root:group-id
 * 0640 serves, and a process that never delivers to the relay never
 * opens it); -1 with why when the file gives none. */
static int relay_password(const struct cf_section *relay, struct buf *pass,
			  char *why, size_t n)
{
	const char *path = relay->v[RELAY_AUTH_PASSWORD_FILE].s;
	if (!path) {
		buf_adds(pass, relay->v[RELAY_AUTH_PASSWORD].s
				       ? relay->v[RELAY_AUTH_PASSWORD].s : "");
		return 0;
	}
	if (buf_read_file(pass, AT_FDCWD, path, PASSWORD_FILE_MAX) < 0) {
		fmt_snprintf(why, n, "auth-password-file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	size_t len = strcspn(pass->s, "\r\n");
	if (!len || len > PASSWORD_FILE_MAX) {
		fmt_snprintf(why, n, "auth-password-file %s: expected a "
				     "password of 1 to %d bytes on its first "
				     "line", path, PASSWORD_FILE_MAX);
		return -1;
	}
	pass->s[len] = 0;
	pass->len = len;
	return 0;
}

static void forget(struct buf *b)
{
	if (b->s)
		explicit_bzero(b->s, b->cap);
	buf_free(b);
}

/* LOGIN is server-first (draft-murchison-sasl-login): "Username:", then
 * "Password:". An initial response is an extension that not every server
 * takes, so none is sent, and each 334 gets the next answer in order (RFC
 * 4954 4): the password never goes where the user name was asked. A third
 * challenge is cancelled with "*". Returns the last reply's code. */
static int auth_login(struct client_conn *c, const char *user,
		      const char *pass, struct buf *t)
{
	const char *answer[2] = {user, pass};
	client_cmd(c, "AUTH LOGIN");
	io_flush(&c->io);
	int code = client_read_reply(c, t);
	for (int i = 0; i < 2 && code == 334; i++) {
		struct buf b = {0};
		buf_add_base64(&b, answer[i], strlen(answer[i]));
		client_cmd(c, "%s", b.s ? b.s : "");
		forget(&b);
		io_flush(&c->io);
		code = client_read_reply(c, t);
	}
	if (code == 334) {
		client_cmd(c, "*");
		io_flush(&c->io);
		if (client_read_reply(c, t) < 0)
			return -1;
	}
	return code;
}

int client_authenticate(struct client_job *j, struct client_conn *c,
			struct buf *t, struct reply *why)
{
	const char *user = j->relay ? j->relay->v[RELAY_AUTH_USER].s : NULL;
	if (!user)
		return 0;
	if (!c->tls) {
		reply_set(why, 451, ESC_ENCRYPTION_NEEDED,
			  "%s: not sending credentials without TLS",
			  c->name);
		return -1;
	}
	struct buf secret = {0};
	char reason[600];
	if (relay_password(j->relay, &secret, reason, sizeof reason) < 0) {
		forget(&secret);
		reply_set(why, 451, ESC_SYSTEM_INCORRECTLY_CONFIGURED,
			  "relay %s: %s", j->relay->name, reason);
		return -1;
	}
	const char *pass = secret.s ? secret.s : "";
	struct buf b = {0};
	int code;
	if (c->ext.auth_plain) {
		struct buf raw = {0};
		buf_addc(&raw, 0);
		buf_adds(&raw, user);
		buf_addc(&raw, 0);
		buf_adds(&raw, pass);
		buf_add_base64(&b, raw.s, raw.len);
		forget(&raw);
		client_cmd(c, "AUTH PLAIN %s", b.s);
		io_flush(&c->io);
		code = client_read_reply(c, t);
	} else if (c->ext.auth_login) {
		code = auth_login(c, user, pass, t);
	} else {
		reply_set(why, 451, ESC_OTHER_SECURITY_STATUS,
			  "%s offers neither AUTH PLAIN nor LOGIN", c->name);
		forget(&secret);
		return -1;
	}
	forget(&b);
	forget(&secret);
	if (code == 235)
		return 0;
	if (code < 0)
		reply_set(why, 451, ESC_BAD_CONNECTION, "%s: %s during AUTH",
			  c->name, client_lost(c));
	else
		client_peer_reply(why, 451, t->s, c->name);
	esc_for_code(why->dsn, 451, ESC_AUTH_CREDENTIALS_INVALID);
	return -1;
}
