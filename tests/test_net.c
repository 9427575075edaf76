/*
 * test_net.c - the endpoint parser of net.c, table-driven: every form a
 * [relay] address, a host target or core.dns-server may take, what the
 * client connects to for it, and why the forms that are not endpoints
 * are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

struct ecase {
	const char *in;
	const char *err;      /* NULL: valid; else a prefix of the reason */
	enum net_endpoint_kind kind;
	const char *host;
	unsigned port;
	int bracketed, family;
};

static const struct ecase cases[] = {
	{"mx.example.org", NULL, NET_EP_NAME, "mx.example.org", 25, 0, 0},
	{"mx.example.org:2525", NULL, NET_EP_NAME, "mx.example.org", 2525, 0,
	 0},
	{"mx.example.org:submission", NULL, NET_EP_NAME, "mx.example.org", 587,
	 0, 0},
	{"[mx.example.org]", NULL, NET_EP_NAME, "mx.example.org", 25, 1, 0},
	{"[mx.example.org]:26", NULL, NET_EP_NAME, "mx.example.org", 26, 1, 0},
	{"192.0.2.1", NULL, NET_EP_IP, "192.0.2.1", 25, 1, AF_INET},
	{"192.0.2.1:2525", NULL, NET_EP_IP, "192.0.2.1", 2525, 1, AF_INET},
	{"[192.0.2.1]", NULL, NET_EP_IP, "192.0.2.1", 25, 1, AF_INET},
	{"[192.0.2.1]:lmtp", NULL, NET_EP_IP, "192.0.2.1", 24, 1, AF_INET},
	{"2001:db8::1", NULL, NET_EP_IP, "2001:db8::1", 25, 1, AF_INET6},
	{"::1", NULL, NET_EP_IP, "::1", 25, 1, AF_INET6},
	{"[::1]:2525", NULL, NET_EP_IP, "::1", 2525, 1, AF_INET6},
	{"[IPv6:2001:db8::2]:25", NULL, NET_EP_IP, "2001:db8::2", 25, 1,
	 AF_INET6},
	{"unix:/run/dovecot/lmtp", NULL, NET_EP_UNIX, "/run/dovecot/lmtp", 25,
	 0, 0},
	/* refused */
	{"unix:run/lmtp", "expected unix:/absolute/path", 0, 0, 0, 0, 0},
	{"mx.example.org:", "expected a port", 0, 0, 0, 0, 0},
	{"mx.example.org:0", "expected a port", 0, 0, 0, 0, 0},
	{"mx.example.org:65536", "expected a port", 0, 0, 0, 0, 0},
	{"mx.example.org:99999999999999999999", "expected a port", 0, 0, 0, 0,
	 0},
	{"mx.example.org:no-such-service", "expected a port", 0, 0, 0, 0, 0},
	{"[192.0.2.1]:", "expected a port", 0, 0, 0, 0, 0},
	{"[192.0.2.1]x", "expected a port", 0, 0, 0, 0, 0},
	{"[192.0.2.1", "expected [ADDRESS]", 0, 0, 0, 0, 0},
	{"[]:25", "expected a host or address inside [ ]", 0, 0, 0, 0, 0},
	{"[bad host]", "expected a host or address inside [ ]", 0, 0, 0, 0, 0},
	{"[IPv6:127.0.0.1]:25", "expected an IPv6 address after IPv6:", 0, 0,
	 0, 0, 0},
	{"[ipv6:relay.example]", "expected an IPv6 address after IPv6:", 0, 0,
	 0, 0, 0},
	{"2001:db8::1:25x", "write an IPv6 address as [ADDRESS]:PORT", 0, 0, 0,
	 0, 0},
	{"", "expected host, ip", 0, 0, 0, 0, 0},
	{":25", "expected host, ip", 0, 0, 0, 0, 0},
	{"bad host", "expected host, ip", 0, 0, 0, 0, 0},
	{"joe@example.org", "expected host, ip", 0, 0, 0, 0, 0},
};

static void test_endpoints(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct ecase *c = &cases[i];
		struct net_endpoint ep;
		const char *why = net_endpoint_parse(c->in, 25, &ep);
		if (c->err) {
			if (!why || strncmp(why, c->err, strlen(c->err)))
				fail_msg("%s: expected \"%s...\", got \"%s\"",
					 c->in, c->err, why ? why : "(valid)");
			continue;
		}
		if (why)
			fail_msg("%s: refused: %s", c->in, why);
		assert_int_equal(ep.kind, c->kind);
		assert_string_equal(ep.host, c->host);
		assert_int_equal(ep.port, c->port);
		assert_int_equal(ep.bracketed, c->bracketed);
		if (c->kind == NET_EP_IP)
			assert_int_equal(ep.family, c->family);
	}
}

static void test_default_port(void **state)
{
	(void)state;
	struct net_endpoint ep;
	assert_null(net_endpoint_parse("192.0.2.53", 53, &ep));
	assert_int_equal(ep.port, 53);
	assert_null(net_endpoint_parse("192.0.2.53:5353", 53, &ep));
	assert_int_equal(ep.port, 5353);
}

static void test_socket_path_fits(void **state)
{
	(void)state;
	char s[200] = "unix:/";
	memset(s + 6, 'a', sizeof s - 7);
	s[sizeof s - 1] = 0;
	struct net_endpoint ep;
	assert_non_null(net_endpoint_parse(s, 24, &ep));
}

static void test_ports(void **state)
{
	(void)state;
	uint16_t p;
	assert_int_equal(net_port_parse("25", &p), 0);
	assert_int_equal(p, 25);
	assert_int_equal(net_port_parse("65535", &p), 0);
	assert_int_equal(p, 65535);
	assert_int_equal(net_port_parse("smtps", &p), 0);
	assert_int_equal(p, 465);
	assert_int_equal(net_port_parse("025x", &p), -1);
	assert_int_equal(net_port_parse("-1", &p), -1);
	assert_int_equal(net_port_parse("", &p), -1);
}

static void test_networks(void **state)
{
	(void)state;
	struct net n;
	assert_null(net_parse("192.0.2.0/24", &n));
	assert_true(net_contains(&n, "192.0.2.77"));
	assert_false(net_contains(&n, "192.0.3.1"));
	assert_non_null(net_parse("192.0.2.1/24", &n));
	assert_null(net_parse("loopback", &n));
	assert_true(net_contains(&n, NET_LOCAL_PEER));
	assert_true(net_contains(&n, "::1"));
	/* an IPv4 client is one client, written either way */
	assert_null(net_parse("::ffff:192.0.2.0/120", &n));
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 24);
	assert_true(net_contains(&n, "192.0.2.77"));
	assert_true(net_contains(&n, "::ffff:192.0.2.77"));
	assert_false(net_contains(&n, "::ffff:192.0.3.1"));
	assert_null(net_parse("192.0.2.0/24", &n));
	assert_true(net_contains(&n, "::FFFF:192.0.2.77"));
	assert_null(net_parse("2001:db8::/32", &n));
	assert_false(net_contains(&n, "::ffff:192.0.2.77"));
}

/* --check's open-relay rule counts these relay-clients as every client */
static void test_wide_networks(void **state)
{
	(void)state;
	static const struct {
		const char *net;
		int wide;
	} c[] = {
		{"0.0.0.0/0", 1},	{"0.0.0.0/1", 1},	 {"128.0.0.0/1", 1},
		{"64.0.0.0/7", 1},	{"10.0.0.0/8", 0},	 {"192.0.2.0/24", 0},
		{"::/0", 1},		{"8000::/1", 1},	 {"2000::/3", 1},
		{"2000::/15", 1},	{"2001::/16", 0},	 {"2001:db8::/32", 0},
		{"fc00::/7", 0},	{"fd00::/8", 0},	 {"fe80::/10", 0},
		{"fe80::/9", 1},	{"fc00::/6", 1},	 {"fe00::/7", 1},
		{"loopback", 0},	{"none", 0},		 {"192.0.2.1", 0},
		/* every IPv4 client, written IPv4-mapped: read as IPv4;
		 * an IPv6 network holds no mapped client (they are unmapped) */
		{"::ffff:0.0.0.0/96", 1}, {"::/64", 0},	 {"::/80", 0},
		{"::fffe:0:0/95", 0},	{"::ffff:0.0.0.0/97", 1},
		{"::ffff:10.0.0.0/104", 0}, {"::ffff:192.0.2.1", 0},
		{"::/96", 0},		{"::1", 0},		 {"::2/127", 0},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct net n;
		assert_null(net_parse(c[i].net, &n));
		if (net_is_wide(&n) != c[i].wide)
			fail_msg("%s: expected %s", c[i].net,
				 c[i].wide ? "wide" : "not wide");
	}
}

/* net_ip_text against inet_ntop: zero runs of every length at every
 * place (each group 0 or not), then random addresses; an IPv4-mapped
 * address comes out as plain IPv4 */
static void check_ip_text(int family, const unsigned char *a)
{
	char want[INET6_ADDRSTRLEN], got[NET_IP_TEXT];
	assert_non_null(inet_ntop(family, a, want, sizeof want));
	net_ip_text(family, a, got);
	const char *w = want;
	if (family == AF_INET6 && !strncmp(w, "::ffff:", 7) &&
	    strchr(w + 7, '.'))
		w += 7;
	assert_string_equal(got, w);
}

static void test_ip_text(void **state)
{
	(void)state;
	unsigned char a[16];
	for (unsigned pattern = 0; pattern < 256; pattern++)
		for (unsigned fill = 0; fill < 4; fill++) {
			static const unsigned v[4] = {1, 0xffff, 0xab0, 0x10};
			for (int i = 0; i < 8; i++) {
				unsigned g = pattern >> i & 1 ? v[(fill + i) % 4]
							      : 0;
				a[2 * i] = (unsigned char)(g >> 8);
				a[2 * i + 1] = (unsigned char)g;
			}
			check_ip_text(AF_INET6, a);
		}
	srandom(5952);
	for (int n = 0; n < 100000; n++) {
		for (int i = 0; i < 16; i++)
			a[i] = (unsigned char)(random() % 3 ? 0 : random());
		check_ip_text(AF_INET6, a);
		check_ip_text(AF_INET, a);
	}
	static const unsigned char mapped[16] = {[10] = 0xff, [11] = 0xff,
						 [12] = 192, [15] = 7};
	char got[NET_IP_TEXT];
	net_ip_text(AF_INET6, mapped, got);
	assert_string_equal(got, "192.0.0.7");
	static const unsigned char v4[4] = {255, 255, 255, 255};
	net_ip_text(AF_INET, v4, got);
	assert_string_equal(got, "255.255.255.255");
}

static int own(int family, const char *text)
{
	unsigned char a[16];
	assert_int_equal(inet_pton(family, text, a), 1);
	return net_is_own_address(family, a);
}

/* A connection to any of these reaches this machine: an MX host with
 * such an address is a loop, not a next hop (RFC 5321 5.1). */
static void test_own_addresses(void **state)
{
	(void)state;
	assert_true(own(AF_INET, "127.0.0.1"));
	assert_true(own(AF_INET, "0.0.0.0"));
	assert_true(own(AF_INET6, "::"));
	assert_true(own(AF_INET6, "::ffff:127.0.0.1"));
	assert_true(own(AF_INET6, "::ffff:0.0.0.0"));
	assert_false(own(AF_INET, "192.0.2.1"));
	assert_false(own(AF_INET6, "::ffff:192.0.2.1"));
	assert_false(own(AF_INET6, "2001:db8::1"));
	assert_false(own(AF_INET6, "::2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_default_port),
		cmocka_unit_test(test_socket_path_fits),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_wide_networks),
		cmocka_unit_test(test_ip_text),
		cmocka_unit_test(test_own_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
