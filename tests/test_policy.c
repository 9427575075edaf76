/*
 * test_policy.c - the pure parts of the filters: what each policy
 * service action means (policy.c), how a request attribute is written,
 * the service address syntax (net.c), and the dnsbl/dnswl word syntax
 * (dnsbl.c), table-driven.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dnsbl.h"
#include "net.h"
#include "policy.h"

struct acase {
	const char *action;
	enum policy_kind kind;
	int code;
	const char *dsn, *text;
};

static const struct acase actions[] = {
	{"OK", POLICY_DUNNO, 0, "", ""},
	{"dunno", POLICY_DUNNO, 0, "", ""},
	{"DEFER_IF_REJECT maybe", POLICY_DUNNO, 0, "", ""},
	{"REJECT", POLICY_REFUSE, 550, "5.7.1", "Access denied"},
	{"reject go away", POLICY_REFUSE, 550, "5.7.1", "go away"},
	{"REJECT 5.1.1 no such user", POLICY_REFUSE, 550, "5.1.1",
	 "no such user"},
	{"REJECT 4.1.1 class fixed", POLICY_REFUSE, 550, "5.1.1",
	 "class fixed"},
	{"DEFER", POLICY_REFUSE, 450, "4.7.1", "Try again later"},
	{"DEFER_IF_PERMIT 4.2.0 Greylisted, see http://x/",
	 POLICY_REFUSE, 450, "4.2.0", "Greylisted, see http://x/"},
	{"421 4.4.5 busy", POLICY_REFUSE, 421, "4.4.5", "busy"},
	{"554 nope", POLICY_REFUSE, 554, "5.7.1", "nope"},
	{"554", POLICY_REFUSE, 554, "5.7.1", "Access denied"},
	{"521 5.1.1.1 odd", POLICY_REFUSE, 521, "5.7.1", "5.1.1.1 odd"},
	{"PREPEND X-Greylist: delayed 3 seconds", POLICY_PREPEND, 0, "",
	 "X-Greylist: delayed 3 seconds"},
	{"PREPEND no colon", POLICY_UNKNOWN, 0, "", "no colon"},
	{"PREPEND : empty name", POLICY_UNKNOWN, 0, "", ": empty name"},
	{"WARN look at this", POLICY_LOG, 0, "", "look at this"},
	{"HOLD", POLICY_UNKNOWN, 0, "", ""},
	{"DISCARD", POLICY_UNKNOWN, 0, "", ""},
	{"250 fine", POLICY_UNKNOWN, 0, "", ""},
	{"OKAY", POLICY_UNKNOWN, 0, "", ""},
	{"", POLICY_UNKNOWN, 0, "", ""},
};

static void test_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
		const struct acase *c = &actions[i];
		struct policy_verdict v;
		policy_action(c->action, &v);
		if (v.kind != c->kind)
			fail_msg("%s: kind %d, expected %d", c->action, v.kind,
				 c->kind);
		if (c->kind == POLICY_REFUSE) {
			assert_int_equal(v.r.code, c->code);
			assert_string_equal(v.r.dsn, c->dsn);
			assert_string_equal(v.r.text, c->text);
		} else if (c->text[0]) {
			assert_string_equal(v.text, c->text);
		}
	}
}

static void test_control_characters_are_dropped(void **state)
{
	(void)state;
	struct policy_verdict v;
	policy_action("REJECT bad\r\n250 ok", &v);
	assert_string_equal(v.r.text, "bad250 ok");
}

static void test_a_long_prepend_is_whole_or_refused(void **state)
{
	(void)state;
	char a[1200], want[1100];
	struct policy_verdict v;
	/* 600 bytes: kept whole (it was cut at 320) */
	memset(want, 'a', 600);
	memcpy(want, "X-Long: ", 8);
	want[600] = 0;
	snprintf(a, sizeof a, "PREPEND %s", want);
	policy_action(a, &v);
	assert_int_equal(v.kind, POLICY_PREPEND);
	assert_string_equal(v.text, want);
	/* 998 is the most a field may hold; 999 is refused, not cut */
	memset(want, 'a', 999);
	memcpy(want, "X-Long: ", 8);
	want[998] = 0;
	snprintf(a, sizeof a, "PREPEND %s", want);
	policy_action(a, &v);
	assert_int_equal(v.kind, POLICY_PREPEND);
	assert_int_equal(strlen(v.text), 998);
	want[998] = 'a';
	want[999] = 0;
	snprintf(a, sizeof a, "PREPEND %s", want);
	policy_action(a, &v);
	assert_int_equal(v.kind, POLICY_UNKNOWN);
	/* a refusal's text is still cut for the reply */
	memset(want, 'b', 600);
	want[600] = 0;
	snprintf(a, sizeof a, "REJECT %s", want);
	policy_action(a, &v);
	assert_int_equal(strlen(v.r.text), POLICY_TEXT_MAX);
}

static void test_attributes_cannot_end_a_line(void **state)
{
	(void)state;
	struct buf b = {0};
	policy_attr(&b, "helo_name", "evil\nrecipient=x\r");
	policy_attr(&b, "sender", NULL);
	assert_string_equal(b.s, "helo_name=evil?recipient=x?\nsender=\n");
	buf_free(&b);
}

static void test_service_addresses(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_null(net_stream_address_parse("unix:/run/pg.sock", &ss, &len));
	assert_int_equal(ss.ss_family, AF_UNIX);
	assert_string_equal(((struct sockaddr_un *)&ss)->sun_path,
			    "/run/pg.sock");
	assert_null(net_stream_address_parse("inet:127.0.0.1:10023", &ss,
					     &len));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_null(net_stream_address_parse("inet:[::1]:10023", &ss, &len));
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_null(net_stream_address_parse("inet:localhost:10023", &ss,
					     &len));
	assert_non_null(net_stream_address_parse("inet:127.0.0.1", &ss, &len));
	assert_non_null(net_stream_address_parse("inet:pg.example:1", &ss,
						 &len));
	assert_non_null(net_stream_address_parse("unix:rel", &ss, &len));
	assert_non_null(net_stream_address_parse("/run/pg.sock", &ss, &len));
}

static int lists(const struct dnsbl_zone *z, int a, int b, int c, int d)
{
	const int o[4] = {a, b, c, d};
	if (z->any)
		return 1;
	for (int i = 0; i < 4; i++)
		if (!(z->pat[i][o[i] >> 3] & (1u << (o[i] & 7))))
			return 0;
	return 1;
}

static void test_dnsbl_words(void **state)
{
	(void)state;
	struct dnsbl_zone z;
	assert_null(dnsbl_parse("zen.spamhaus.org", &z));
	assert_string_equal(z.zone, "zen.spamhaus.org");
	assert_true(z.any);
	assert_null(dnsbl_parse("zen.spamhaus.org=127.0.0.[2..11]", &z));
	assert_false(z.any);
	assert_true(lists(&z, 127, 0, 0, 2) && lists(&z, 127, 0, 0, 11));
	assert_false(lists(&z, 127, 0, 0, 1) || lists(&z, 127, 0, 0, 12) ||
		     lists(&z, 127, 0, 1, 2));
	assert_null(dnsbl_parse("wl.test=127.0.[0..255].[1;3;5..6]", &z));
	assert_true(lists(&z, 127, 0, 200, 3) && lists(&z, 127, 0, 9, 6));
	assert_false(lists(&z, 127, 0, 9, 4) || lists(&z, 127, 0, 9, 2));
	assert_null(dnsbl_parse("bl.test=127.0.0.2..127.0.0.9", &z));
	assert_true(lists(&z, 127, 0, 0, 9));
	assert_false(lists(&z, 127, 0, 0, 10));
	static const char *const bad[] = {
		"", "=127.0.0.2", "-bad-.test", "bl.test=", "bl.test=127.0.0",
		"bl.test=127.0.0.256", "bl.test=127.0.0.[2..1]",
		"bl.test=127.0.0.[2", "bl.test=127.0.0.[2;]",
		"bl.test=127.0.0.2..127.0.1.9", "bl.test=127.0.0.2x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (!dnsbl_parse(bad[i], &z))
			fail_msg("accepted '%s'", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_control_characters_are_dropped),
		cmocka_unit_test(test_a_long_prepend_is_whole_or_refused),
		cmocka_unit_test(test_attributes_cannot_end_a_line),
		cmocka_unit_test(test_service_addresses),
		cmocka_unit_test(test_dnsbl_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
