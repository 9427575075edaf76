/*
 * test_reply.c - the reply vocabulary of reply.c: named enhanced codes
 * written in their reply code's class, and the sysexits table that turns
 * a mailer's exit status into the reply a client or a bounce shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/wait.h>

#include "reply.h"

/* A wait status as waitpid(2) reports a normal exit. */
#define EXITED(st) ((st) << 8)

static void test_esc_names(void **state)
{
	static const struct {
		int code;
		enum esc e;
		const char *dsn;
	} cases[] = {
		{250, ESC_OTHER, "2.0.0"},
		{250, ESC_DEST_MAILBOX_VALID, "2.1.5"},
		{550, ESC_BAD_DEST_MAILBOX, "5.1.1"},
		{451, ESC_ROUTING_SERVER_FAILURE, "4.4.3"},
		{452, ESC_TOO_MANY_RECIPIENTS, "4.5.3"},
		{553, ESC_NON_ASCII_ADDRESS, "5.6.7"},
		{451, ESC_ENCRYPTION_NEEDED, "4.7.10"},
		{538, ESC_ENCRYPTION_REQUIRED_FOR_AUTH, "5.7.11"},
		{550, ESC_SENDER_NULL_MX, "5.7.27"},
		{556, ESC_RECIPIENT_NULL_MX, "5.1.10"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char dsn[ESC_LEN] = "x";
		esc_for_code(dsn, cases[i].code, cases[i].e);
		assert_string_equal(dsn, cases[i].dsn);
	}
}

static void test_class_follows_code(void **state)
{
	/* the same name is 4.x.y after a 4xx and 5.x.y after a 5xx */
	char dsn[ESC_LEN];
	esc_for_code(dsn, 452, ESC_INVALID_COMMAND_ARGUMENTS);
	assert_string_equal(dsn, "4.5.4");
	esc_for_code(dsn, 501, ESC_INVALID_COMMAND_ARGUMENTS);
	assert_string_equal(dsn, "5.5.4");
	esc_format(dsn, 2, ESC_OTHER);
	assert_string_equal(dsn, "2.0.0");
	/* no enhanced code: the greeting, EHLO, 354, 334 */
	esc_for_code(dsn, 354, ESC_NONE);
	assert_string_equal(dsn, "");
}

static void test_reply_set(void **state)
{
	struct reply r;
	reply_set(&r, 550, ESC_BAD_DEST_MAILBOX, "<%s>: user unknown",
		  "nobody@example.org");
	assert_int_equal(r.code, 550);
	assert_string_equal(r.dsn, "5.1.1");
	assert_string_equal(r.text, "<nobody@example.org>: user unknown");
	reply_code(&r, 554, ESC_ROUTING_LOOP);
	assert_string_equal(r.dsn, "5.4.6");
	assert_string_equal(r.text, "");
	reply_set(&r, 550, ESC_BAD_DEST_SYSTEM, "mx said: no");
	reply_defer(&r);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.1.2");
	assert_string_equal(r.text, "mx said: no");
}

static void test_sysexits_table(void **state)
{
	static const struct {
		int status;
		int code;
		const char *dsn, *text;
	} cases[] = {
		{EX_USAGE, 550, "5.3.0", "mailer usage error (exit status 64)"},
		{EX_DATAERR, 550, "5.6.0", "data format error (exit status 65)"},
		{EX_NOUSER, 550, "5.1.1", "user unknown (exit status 67)"},
		{EX_NOHOST, 550, "5.1.2", "host name unknown (exit status 68)"},
		{EX_OSERR, 451, "4.3.0",
		 "system resource problem (exit status 71)"},
		{EX_CANTCREAT, 550, "5.2.0",
		 "cannot create user output file (exit status 73)"},
		{EX_TEMPFAIL, 451, "4.3.0", "temporary failure (exit status 75)"},
		{EX_PROTOCOL, 550, "5.5.0",
		 "remote error in protocol (exit status 76)"},
		{EX_NOPERM, 550, "5.7.1", "permission denied (exit status 77)"},
		{EX_CONFIG, 550, "5.3.5",
		 "local configuration error (exit status 78)"},
		{1, 554, "5.3.0", "mailer failed (exit status 1)"},
		{100, 554, "5.3.0", "mailer failed (exit status 100)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct reply r;
		exit_status_reply(EXITED(cases[i].status), NULL, &r);
		assert_int_equal(r.code, cases[i].code);
		assert_string_equal(r.dsn, cases[i].dsn);
		assert_string_equal(r.text, cases[i].text);
	}
	struct reply r;
	exit_status_reply(EXITED(EX_OK), NULL, &r);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.dsn, "2.0.0");
	assert_string_equal(r.text, "delivered");
	exit_status_reply(9, NULL, &r); /* killed by SIGKILL */
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_string_equal(r.text, "mailer killed by signal 9");
}

static void test_mailer_own_code(void **state)
{
	struct reply r;
	/* the mailer's D.S.N counts when its class agrees with the status */
	exit_status_reply(EXITED(EX_NOUSER), "5.2.2 mailbox full", &r);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.dsn, "5.2.2");
	assert_string_equal(r.text, "mailbox full");
	exit_status_reply(EXITED(EX_TEMPFAIL), "5.2.2 mailbox full", &r);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.dsn, "4.3.0");
	assert_string_equal(r.text,
			    "temporary failure (exit status 75): 5.2.2 mailbox full");
	/* its text is escaped */
	exit_status_reply(EXITED(EX_TEMPFAIL), "4.2.1 busy\x01", &r);
	assert_string_equal(r.dsn, "4.2.1");
	assert_string_equal(r.text, "busy\\x01");
}

static void test_mailer_output_in_the_text(void **state)
{
	struct reply r;
	/* a failing mailer's first line of output tells why, as Postfix's
	 * "Command output:" does: the bounce and the log said only the
	 * status */
	exit_status_reply(EXITED(1), "cannot open /home/joe/.forward\r", &r);
	assert_int_equal(r.code, 554);
	assert_string_equal(r.text, "mailer failed (exit status 1): "
				    "cannot open /home/joe/.forward");
	exit_status_reply(9, "Killed", &r);
	assert_string_equal(r.text, "mailer killed by signal 9: Killed");
	exit_status_reply(EXITED(EX_OK), "1 message saved", &r);
	assert_string_equal(r.text, "delivered");
	exit_status_reply(EXITED(1), "", &r);
	assert_string_equal(r.text, "mailer failed (exit status 1)");
	char line[600];
	memset(line, 'x', sizeof line - 1);
	line[sizeof line - 1] = 0;
	exit_status_reply(EXITED(1), line, &r);
	assert_int_equal(strlen(r.text), strlen("mailer failed (exit status 1): ") + 200);
}

static void test_softerror(void **state)
{
	assert_true(sysexits_softerror(EX_TEMPFAIL));
	assert_true(sysexits_softerror(EX_OSERR));
	assert_false(sysexits_softerror(EX_OK));
	assert_false(sysexits_softerror(EX_NOUSER));
	assert_false(sysexits_softerror(EX_CONFIG));
	assert_false(sysexits_softerror(1));
	assert_int_equal(sysexits_for_code(250), EX_OK);
	assert_int_equal(sysexits_for_code(451), EX_TEMPFAIL);
	assert_int_equal(sysexits_for_code(550), EX_NOUSER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_esc_names),
		cmocka_unit_test(test_class_follows_code),
		cmocka_unit_test(test_reply_set),
		cmocka_unit_test(test_sysexits_table),
		cmocka_unit_test(test_mailer_own_code),
		cmocka_unit_test(test_mailer_output_in_the_text),
		cmocka_unit_test(test_softerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
