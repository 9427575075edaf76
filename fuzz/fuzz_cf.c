/*
 * fuzz_cf.c - libFuzzer target for the postmaster.cf parser (cf.c) and,
 * through the route tables it builds, for route.c.
 *
 * One input is used three ways: as a whole configuration file
 * (cf_load_text, cf_finish, route_load_tables), as one command-line flag
 * over a small fixed configuration (cf_flag), and, when the file is
 * valid, once more under --check's rules (check_config). Valid configurations are dumped and a few addresses are
 * routed through every listener.
 *
 * Hermetic: every cf_finish() runs with CF_NO_INCLUDES, so no route file
 * named in the input is ever read and no .pmdb is ever written. What is
 * left touches the disk only to read /etc/hosts, /etc/services and the
 * user database, and (under CF_CHECK) to stat paths the input names.
 */
#include "cf.h"
#include "check.h"
#include "route.h"
#include "route_load.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What postmaster does with a configuration: finish it, build its route
 * tables and, for --check, run the checks. */
static int finish_config(struct cf *cf, unsigned mode)
{
	cf_finish(cf, mode);
	route_load_tables(cf);
	if (mode & CF_CHECK)
		check_config(cf);
	return cf->nerrors;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* A configuration that the flag lands on: sections it may name exist. */
static const char base_cf[] =
	"[core]\n"
	"hostname = mx.example.net\n"
	"[pipe \"procmail\"]\n"
	"exec = \"/usr/bin/procmail\" \"-d\" \"${RCPT_TO}\"\n"
	"[relay \"relay.example.org\"]\n"
	"address = 10.0.0.1\n"
	"[smtpd \"mx.example.net\"]\n"
	"listen-port = 127.0.0.1:2525\n"
	"routing-table = extern\n"
	"[route]\n"
	"postmaster joe\n"
	"[route \"extern\"]\n"
	"@example.org procmail\n";

static const char *const rcpts[] = {
	"joe@example.org", "<postmaster>", "postmaster@mx.example.net",
	"user+tag@example.com", "root@[127.0.0.1]", "joe",
};

static void route_some(const struct cf *cf)
{
	uint32_t n = 0;
	struct cf_section **v = cf_listeners(cf, &n);
	for (uint32_t l = 0; l <= n && l < 3; l++) {
		const struct cf_section *smtpd = l ? v[l - 1] : NULL;
		for (size_t i = 0; i < sizeof rcpts / sizeof *rcpts; i++) {
			struct route_result r;
			route_resolve(cf, smtpd, rcpts[i], strlen(rcpts[i]),
				      ROUTE_SMTP | ROUTE_UTF8, &r);
			route_result_free(&r);
		}
	}
	if (n)
		free(v);
}

/* 1 when the configuration came out without errors. */
static int finish_and_use(struct cf *cf, unsigned mode)
{
	finish_config(cf, mode);
	cf_print_diagnostics(cf, devnull);
	if (cf->nerrors)
		return 0; /* cf.h: nothing may use such a configuration */
	cf_dump(cf, 0, devnull);
	cf_dump(cf, 1, devnull);
	route_some(cf);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!devnull && !(devnull = fopen("/dev/null", "w")))
		abort();
	if (size > 64 * 1024)
		return 0;

	/* an exact-size copy, no NUL after it: reads past len are caught */
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);

	struct cf *cf = cf_new();
	cf_load_text(cf, "fuzz.cf", text, size);
	int ok = finish_and_use(cf, CF_NO_INCLUDES);
	cf_free(cf);

	if (ok) {
		/* --check's extra rules: shadowed lines, open relays */
		cf = cf_new();
		cf_load_text(cf, "fuzz.cf", text, size);
		finish_and_use(cf, CF_CHECK | CF_NO_INCLUDES);
		cf_free(cf);
	}
	free(text);

	/* the same bytes as one flag (argv strings end at a NUL) */
	size_t flen = strnlen((const char *)data, size);
	char *flag = malloc(flen + 1);
	if (!flag)
		abort();
	memcpy(flag, data, flen);
	flag[flen] = 0;
	cf = cf_new();
	cf_load_text(cf, "base.cf", base_cf, sizeof base_cf - 1);
	cf_flag(cf, flag, 1);
	finish_and_use(cf, CF_NO_INCLUDES);
	cf_free(cf);
	free(flag);
	return 0;
}
