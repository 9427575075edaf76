/*
 * test_envelope.c - the spool's file format (spool.c) and the 7-bit
 * conversion (mime.c), through their interfaces on temporary files:
 * an envelope with awkward values survives a write and a read; an update
 * supersedes the envelope in the message file; leftovers of dead processes
 * are removed; quoted-printable and base64 come out as RFC 2045 says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsn.h"
#include "mime.h"
#include "spool.h"

static char dir[64];
static int dirfd_;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/pm-envelope.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
	return dirfd_ < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	close(dirfd_);
	return system(cmd) == 0 ? 0 : -1;
}

static void target(struct spool_msg *m, enum target_kind kind, const char *arg,
		   const char *addr, const char *orig)
{
	struct route_target t = {.kind = kind, .arg = (char *)arg};
	snprintf(t.addr, sizeof t.addr, "%s", addr);
	spool_add_target(m, &t, orig);
}

static void write_message(struct spool_msg *m, const char *text)
{
	assert_int_equal(spool_create(dirfd_, m), 0);
	assert_int_equal(spool_begin_message(m), 0);
	assert_int_equal(write(m->data_fd, text, strlen(text)),
			 (ssize_t)strlen(text));
	assert_int_equal(spool_commit(dirfd_, m), 0);
}

static void envelope_round_trip(void **state)
{
	(void)state;
	struct spool_msg m = {.data_fd = -1};
	m.from = strdup("\"john doe\"@example.org");
	m.sid = strdup("abc");
	m.client = strdup("[192.0.2.1]");
	m.smtpd = strdup("mx two");
	m.eightbit = 1;
	target(&m, T_CMD, "cat > /tmp/x 100%", "list@example.net",
	       "List@Example.NET");
	target(&m, T_MX, "", "-@example.com", "-@example.com");
	target(&m, T_MAILDIR, "/var/mail/a b/", "a@b", "a@b");
	write_message(&m, "Subject: x\n\nbody\n");
	char id[24];
	snprintf(id, sizeof id, "%s", m.id);
	m.t[0].state = SP_DELIVERED;
	m.t[0].attempts = 1;
	m.t[0].code = 250;
	snprintf(m.t[0].dsn, sizeof m.t[0].dsn, "2.0.0");
	free(m.t[0].text);
	m.t[0].text = strdup("ok\nwith a newline");
	m.t[1].next = 1796000000;
	assert_int_equal(spool_update(dirfd_, &m), 0);
	spool_msg_free(&m);

	struct spool_msg l;
	char why[256];
	assert_int_equal(spool_load(dirfd_, id, 1, &l, why, sizeof why),
			 SPOOL_OK);
	assert_string_equal(l.from, "\"john doe\"@example.org");
	assert_string_equal(l.client, "[192.0.2.1]");
	assert_string_equal(l.smtpd, "mx two");
	assert_true(l.eightbit);
	assert_int_equal(l.nt, 3);
	assert_int_equal(l.t[0].state, SP_DELIVERED);
	assert_string_equal(l.t[0].arg, "cat > /tmp/x 100%");
	assert_string_equal(l.t[0].orig, "List@Example.NET");
	assert_string_equal(l.t[0].text, "ok with a newline");
	assert_int_equal(l.t[1].kind, T_MX);
	assert_string_equal(l.t[1].arg, "");
	assert_string_equal(l.t[1].addr, "-@example.com");
	assert_int_equal(l.t[1].next, 1796000000);
	assert_string_equal(l.t[2].arg, "/var/mail/a b/");
	assert_int_equal(l.size, 17);
	char body[32] = "";
	assert_int_equal(pread(l.data_fd, body, sizeof body, l.data_off), 17);
	assert_memory_equal(body, "Subject: x\n\nbody\n", 17);

	/* a second loader cannot take the lock meanwhile */
	struct spool_msg busy;
	assert_int_equal(spool_load(dirfd_, id, 1, &busy, why, sizeof why),
			 SPOOL_BUSY);
	spool_remove(dirfd_, &l);
	spool_msg_free(&l);
	assert_int_equal(spool_load(dirfd_, id, 0, &busy, why, sizeof why),
			 SPOOL_GONE);
}

/* RFC 3461: RET, ENVID and each target's NOTIFY and ORCPT survive the
 * spool; a message without them writes none of their lines. */
static void dsn_fields_round_trip(void **state)
{
	(void)state;
	struct spool_msg m = {.data_fd = -1};
	m.from = strdup("a@example.org");
	m.dsn_ret = DSN_RET_HDRS;
	m.envid = strdup("QQ+2B314");
	target(&m, T_MAILDIR, "/var/mail/a/", "a@b", "a@b");
	target(&m, T_MAILDIR, "/var/mail/c/", "c@d", "c@d");
	target(&m, T_MAILDIR, "/var/mail/e/", "e@f", "e@f");
	m.t[0].notify = DSN_SUCCESS | DSN_FAILURE;
	m.t[0].orcpt = strdup("rfc822;x+2By@example.org");
	m.t[1].notify = DSN_NEVER;
	write_message(&m, "Subject: x\n\nbody\n");
	char id[24];
	snprintf(id, sizeof id, "%s", m.id);
	spool_msg_free(&m);

	struct spool_msg l;
	char why[256];
	assert_int_equal(spool_load(dirfd_, id, 1, &l, why, sizeof why),
			 SPOOL_OK);
	assert_int_equal(l.dsn_ret, DSN_RET_HDRS);
	assert_string_equal(l.envid, "QQ+2B314");
	assert_int_equal(l.nt, 3);
	assert_int_equal(l.t[0].notify, DSN_SUCCESS | DSN_FAILURE);
	assert_string_equal(l.t[0].orcpt, "rfc822;x+2By@example.org");
	assert_int_equal(l.t[1].notify, DSN_NEVER);
	assert_null(l.t[1].orcpt);
	assert_int_equal(l.t[2].notify, 0);
	assert_null(l.t[2].orcpt);
	/* the state written again by the flusher keeps them */
	l.t[0].code = 451;
	snprintf(l.t[0].dsn, sizeof l.t[0].dsn, "4.0.0");
	assert_int_equal(spool_update(dirfd_, &l), 0);
	spool_msg_free(&l);
	assert_int_equal(spool_load(dirfd_, id, 1, &l, why, sizeof why),
			 SPOOL_OK);
	assert_int_equal(l.dsn_ret, DSN_RET_HDRS);
	assert_int_equal(l.t[0].notify, DSN_SUCCESS | DSN_FAILURE);
	assert_int_equal(l.t[0].code, 451);
	assert_string_equal(l.t[0].orcpt, "rfc822;x+2By@example.org");
	spool_remove(dirfd_, &l);
	spool_msg_free(&l);
}

/* dsn.c: xtext and NOTIFY as RFC 3461 4 and 4.1 write them. */
static void dsn_words(void **state)
{
	(void)state;
	char out[16], words[32];
	assert_int_equal(dsn_xtext_decode("a+2Bb+3D", 8, out, sizeof out), 0);
	assert_string_equal(out, "a+b=");
	assert_int_equal(dsn_xtext_decode("a+2b", 4, out, sizeof out), -1);
	assert_int_equal(dsn_xtext_decode("a+00", 4, out, sizeof out), -1);
	assert_int_equal(dsn_xtext_decode("abcd", 4, out, 4), -1);
	assert_false(dsn_xtext_valid("a b", 3));
	assert_true(dsn_xtext_valid("", 0));
	unsigned n;
	assert_int_equal(dsn_notify_parse("Delay,SUCCESS", 13, &n), 0);
	assert_int_equal(n, DSN_DELAY | DSN_SUCCESS);
	assert_string_equal(dsn_notify_text(n, words), "success,delay");
	assert_int_equal(dsn_notify_from_text("never", &n), 0);
	assert_int_equal(n, DSN_NEVER);
	assert_int_equal(dsn_notify_parse("NEVER,DELAY", 11, &n), -1);
	assert_int_equal(dsn_notify_parse("DELAY,DELAY", 11, &n), -1);
	assert_true(dsn_orcpt_valid("rfc822;a@b", 10));
	assert_false(dsn_orcpt_valid("rfc.822;a@b", 11));
}

static void list_skips_and_cleans_leftovers(void **state)
{
	(void)state;
	struct spool_msg m = {.data_fd = -1};
	m.from = strdup("");
	target(&m, T_DISCARD, "", "x@y", "x@y");
	write_message(&m, "x\n");
	char id[24];
	snprintf(id, sizeof id, "%s", m.id);
	spool_msg_free(&m);
	/* an envelope whose message is gone, and an uncommitted tmp file
	 * whose writer died an hour ago */
	int fd = openat(dirfd_, "006B0E0000000000AA.env", O_CREAT | O_WRONLY, 0600);
	close(fd);
	fd = openat(dirfd_, "tmp.006B0E0000000000BB", O_CREAT | O_WRONLY, 0600);
	close(fd);
	char old[128];
	snprintf(old, sizeof old, "touch -d '2 hours ago' %s/tmp.006B0E0000000000BB",
		 dir);
	assert_int_equal(system(old), 0);
	unsigned n;
	char **ids = spool_list(dirfd_, &n);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], id);
	spool_list_free(ids, n);
	struct stat st;
	assert_int_not_equal(fstatat(dirfd_, "006B0E0000000000AA.env", &st, 0), 0);
	assert_int_not_equal(fstatat(dirfd_, "tmp.006B0E0000000000BB", &st, 0), 0);
	struct spool_msg l;
	char why[128];
	assert_int_equal(spool_load(dirfd_, id, 1, &l, why, sizeof why), SPOOL_OK);
	spool_remove(dirfd_, &l);
	spool_msg_free(&l);
}

/* An envelope written before the "smtpd" line existed still loads; its
 * message was accepted by no named listener as far as bounces go. */
static void envelope_without_listener_loads(void **state)
{
	(void)state;
	const char *id = "006B0E00000000002B";
	const char *text = "postmaster-envelope 1\narrival 1764560000\n"
			   "sender a@example.org\norigin client\nbody 7bit\n"
			   "smtputf8 0\nsession abc\nclient [192.0.2.1]\n"
			   "target pending 0 0 maildir - r@example.net "
			   "r@example.net /var/mail/r/\nmessage\nSubject: x\n";
	int fd = openat(dirfd_, id, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct spool_msg m;
	char why[128];
	assert_int_equal(spool_load(dirfd_, id, 1, &m, why, sizeof why), SPOOL_OK);
	assert_null(m.smtpd);
	assert_int_equal(m.dsn_ret, DSN_RET_NONE);
	assert_null(m.envid);
	assert_int_equal(m.t[0].notify, 0);
	assert_null(m.t[0].orcpt);
	assert_string_equal(m.from, "a@example.org");
	assert_int_equal(m.nt, 1);
	assert_int_equal(m.size, 11);
	/* an update writes the field; the message loads the same */
	assert_int_equal(spool_update(dirfd_, &m), 0);
	spool_msg_free(&m);
	assert_int_equal(spool_load(dirfd_, id, 1, &m, why, sizeof why), SPOOL_OK);
	assert_string_equal(m.smtpd, "");
	assert_int_equal(m.nt, 1);
	spool_remove(dirfd_, &m);
	spool_msg_free(&m);
}

/* A spool file that is not what spool.c writes is refused, not guessed
 * at: damaged files (a disk error, a hand edit) must not be delivered. */
static void malformed_envelopes_are_refused(void **state)
{
	(void)state;
	static const struct {
		const char *head, *env;
	} cases[] = {
		{"garbage\nmessage\nx\n", NULL},             /* no magic line */
		{"postmaster-envelope 2\nsender a@b\nmessage\n", NULL},
		{"postmaster-envelope 1\nsender a@b\n", NULL}, /* no "message" */
		{"postmaster-envelope 1\nmessage\nx\n", NULL}, /* no sender */
		{"postmaster-envelope 1\nsender a@b\ntarget pending 0 0 pipe\n"
		 "message\n",
		 NULL}, /* a target line cut short */
		{"postmaster-envelope 1\nsender a@b\ntarget bogus 0 0 cmd - a a "
		 "x\nmessage\n",
		 NULL}, /* an unknown state */
		{"postmaster-envelope 1\nsender a@b\nreply 250 2.0.0 - ok\n"
		 "message\n",
		 NULL}, /* a reply without its target */
		{"postmaster-envelope 1\nsender a@b\nmessage\nx\n",
		 "postmaster-envelope 1\nsender %zz\n"}, /* bad %-escape in ID.env */
		{"postmaster-envelope 1\nsender a@b\ndsn never -\nmessage\n",
		 NULL}, /* a dsn line without its target */
		{"postmaster-envelope 1\nsender a@b\ntarget pending 0 0 maildir "
		 "- a a /m/\ndsn never,success -\nmessage\n",
		 NULL}, /* NEVER with another word */
		{"postmaster-envelope 1\nsender a@b\ndsn-ret most\nmessage\n",
		 NULL}, /* an unknown RET */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *id = "006B0E00000000001A";
		int fd = openat(dirfd_, id, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		assert_int_equal(write(fd, cases[i].head, strlen(cases[i].head)),
				 (ssize_t)strlen(cases[i].head));
		close(fd);
		unlinkat(dirfd_, "006B0E00000000001A.env", 0);
		if (cases[i].env) {
			fd = openat(dirfd_, "006B0E00000000001A.env",
				    O_CREAT | O_TRUNC | O_WRONLY, 0600);
			assert_int_equal(write(fd, cases[i].env, strlen(cases[i].env)),
					 (ssize_t)strlen(cases[i].env));
			close(fd);
		}
		struct spool_msg m;
		char why[128];
		int r = spool_load(dirfd_, id, 1, &m, why, sizeof why);
		if (r != SPOOL_BAD)
			print_error("case %zu: %d\n", i, r);
		assert_int_equal(r, SPOOL_BAD);
		assert_non_null(strstr(why, "malformed envelope"));
	}
	unlinkat(dirfd_, "006B0E00000000001A", 0);
	unlinkat(dirfd_, "006B0E00000000001A.env", 0);
}

/* Runs mime_downgrade on text and returns the result (malloc'd). */
static char *downgrade(const char *text, size_t len, int binary, int *ok)
{
	char path[96];
	snprintf(path, sizeof path, "%s/in", dir);
	int in = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(in, text, len), (ssize_t)len);
	snprintf(path, sizeof path, "%s/out", dir);
	int out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct msg m = {.fd = in, .off = 0, .size = (off_t)len, .binary = binary};
	char why[200];
	*ok = mime_downgrade(&m, out, why, sizeof why) == 0;
	off_t n = lseek(out, 0, SEEK_END);
	char *r = calloc(1, (size_t)n + 1 + sizeof why);
	assert_int_equal(pread(out, r, (size_t)n, 0), n);
	if (!*ok)
		snprintf(r, sizeof why, "%s", why);
	close(in);
	close(out);
	return r;
}

static void quoted_printable_rules(void **state)
{
	(void)state;
	int ok;
	/* =, trailing blanks, 8-bit octets; soft breaks keep lines <= 76 */
	char long_line[200];
	memset(long_line, 0xe9, 100);
	long_line[100] = '\n';
	long_line[101] = 0;
	struct { const char *in, *want; } cases[] = {
		{"Content-Type: text/plain\n\na=b \xc3\xa9\t\n",
		 "Content-Type: text/plain\nMIME-Version: 1.0\n"
		 "Content-Transfer-Encoding: quoted-printable\n\n"
		 "a=3Db =C3=A9=09\n"},
		{"MIME-Version: 1.0\nContent-Type: text/plain\n\n\xe9\n",
		 "MIME-Version: 1.0\nContent-Type: text/plain\n"
		 "Content-Transfer-Encoding: quoted-printable\n\n=E9\n"},
		{"Subject: s\nContent-Transfer-Encoding: 8bit\n\n\xff\n",
		 "Subject: s\nMIME-Version: 1.0\nContent-Type: text/plain; "
		 "charset=unknown-8bit\nContent-Transfer-Encoding: "
		 "quoted-printable\n\n=FF\n"},
		{"Subject: 7bit stays\n\nplain\n", "Subject: 7bit stays\n\nplain\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *r = downgrade(cases[i].in, strlen(cases[i].in), 0, &ok);
		assert_true(ok);
		assert_string_equal(r, cases[i].want);
		free(r);
	}
	char in[300];
	snprintf(in, sizeof in, "Content-Type: text/plain\n\n%s", long_line);
	char *r = downgrade(in, strlen(in), 0, &ok);
	assert_true(ok);
	char *body = strstr(r, "\n\n") + 2;
	for (char *l = body; *l; l = strchr(l, '\n') + 1)
		assert_true(strchr(l, '\n') - l <= 76);
	assert_non_null(strstr(body, "=E9=\n=E9"));
	free(r);
}

static void base64_and_refusals(void **state)
{
	(void)state;
	int ok;
	const char bin[] = "Content-Type: application/octet-stream\r\n"
			   "Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\r\x80";
	char *r = downgrade(bin, sizeof bin - 1, 1, &ok);
	assert_true(ok);
	assert_string_equal(r, "Content-Type: application/octet-stream\n"
			       "MIME-Version: 1.0\n"
			       "Content-Transfer-Encoding: base64\n\nAAENgA==\n");
	free(r);
	const char hdr[] = "Subject: caf\xc3\xa9\n\nx\n";
	r = downgrade(hdr, sizeof hdr - 1, 0, &ok);
	assert_false(ok);
	assert_string_equal(r, "8-bit octets in a header field, which MIME "
			       "cannot encode here");
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(envelope_round_trip),
		cmocka_unit_test(list_skips_and_cleans_leftovers),
		cmocka_unit_test(envelope_without_listener_loads),
		cmocka_unit_test(dsn_fields_round_trip),
		cmocka_unit_test(dsn_words),
		cmocka_unit_test(malformed_envelopes_are_refused),
		cmocka_unit_test(quoted_printable_rules),
		cmocka_unit_test(base64_and_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
