/*
 * inject.h - local submission (SPEC 2): `postmaster --inject`, and the
 * program started as sendmail, mailq or newaliases.
 *
 * Owns: sendmail's command line (Postfix's sendmail(1) options), reading
 * the message from standard input, the recipients of -t, and the exit
 * status (sysexits) that the serving session's replies mean.
 *
 * Never: writes the spool or delivers: a session does, the one behind
 * the local submission socket (or, as root without it, one in a child on
 * a socket pair), so injected mail meets the same routing, relaying rule
 * and limits as mail from the network.
 */
#ifndef POSTMASTER_INJECT_H
#define POSTMASTER_INJECT_H

#include "cf.h"

/* What the command line asks for; all but INJ_SEND are postmaster's own
 * modes under sendmail's names. */
enum inject_mode { INJ_SEND, INJ_SMTP, INJ_QUEUE, INJ_FLUSH, INJ_CHECK,
		   INJ_ROUTE };

struct inject {
	enum inject_mode mode;
	const char *prog;     /* for messages: sendmail, or postmaster */
	const char *config;   /* -C FILE, --config, else $POSTMASTER_CONFIG */
	const char *from;     /* -f / -r: the envelope sender */
	const char *fullname; /* -F */
	int extract;          /* -t: recipients from To, Cc, Bcc */
	int dots_are_text;    /* -i, -oi: a lone "." does not end the message */
	int seven_bit;        /* -B7BIT */
	int verbose;          /* -v: the dialogue on standard error */
	int flush_all;        /* -q, -qR, -qI: everything queued, not what is due */
	unsigned notify;      /* -N: DSN_* bits for each RCPT's NOTIFY=, or 0 */
	int ret;              /* -R: enum dsn_ret, RET= on MAIL */
	const char *envid;    /* -V: ENVID= on MAIL (xtext-encoded there) */
	char **rcpt;          /* the recipient arguments (or -bv's address) */
	int nrcpt;
};

/* Whether argv0's base name is sendmail, mailq or newaliases. */
int inject_named(const char *argv0);

/* Parses sendmail's options (argv[0] is the program name, as started).
 * 0, or -1 after printing the error and a usage line (exit 64). */
int inject_options(int argc, char **argv, struct inject *in);

/* INJ_ROUTE (-bv): the address as `sendmail ADDRESS` submits it (a bare
 * name at core.hostname), to be freed, and in *smtpd, unless it names
 * one already, the section that serves injection (NULL: the only one,
 * or the built-in listener). */
char *inject_verify_address(struct cf *cf, const struct inject *in,
			    const char **smtpd);

/* Closes every descriptor past standard error that the caller left
 * open, as Postfix's sendmail does: before the configuration is read, so
 * that neither the session nor the delivery that outlives sendmail holds
 * the caller's lock or the pipe it reads to its end. */
void inject_close_inherited(void);

/* Serves INJ_SEND: the message on stdin to the recipients, through the
 * submit socket's session, else (root only) one in a child process. The
 * exit status (sysexits). */
int inject_send(struct cf *cf, const struct inject *in, const char *smtpd);

/* Serves INJ_SMTP: the SMTP dialogue on stdin and stdout relayed to the
 * submit socket's session, which knows the user by SO_PEERCRED and
 * writes the spool. Without the socket, root serves the session itself,
 * with the section a message would get; any other user gets 421 on
 * stdout and 75. The exit status. */
int inject_smtp(struct cf *cf, const struct inject *in, const char *smtpd);

#endif
