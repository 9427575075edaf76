# postmaster - see README.md. `make` builds ./postmaster; `make check` runs
# every test twice: in a normal build and under ASan+UBSan.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SPOOLDIR ?= /var/spool/postmaster
# The system user sessions run as (core.user-id of the installed
# configuration). Not "postmaster": that is the mailbox every domain must
# have (RFC 5321 4.5.1); the leading "_" is Debian's mark of a system user.
PMUSER ?= _postmaster
# Setting up this machine (the user, the spool's owner, the host name in
# /etc/postmaster.cf, systemd's view of the units) is for an install onto
# the machine itself; into a DESTDIR, a package's maintainer scripts do it.
ifeq ($(DESTDIR),)
SETUP_HOST ?= yes
else
SETUP_HOST ?= no
endif
# INSTALL_SENDMAIL=yes: the links local programs (cron, mail(1)) call,
# where the distribution looks for them; they replace another MTA's.
INSTALL_SENDMAIL ?= no
SENDMAIL_LINKS = /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases
UNITS = $(notdir $(wildcard units/*))
UNIT_SED = -e 's\#/usr/local/sbin/postmaster\#$(SBINDIR)/postmaster\#' \
	-e 's\#/var/spool/postmaster\#$(SPOOLDIR)\#g'
CF_SED = -e 's/^user-id = _postmaster$$/user-id = $(PMUSER)/' \
	-e 's\#^spool-directory = /var/spool/postmaster$$\#spool-directory = $(SPOOLDIR)\#'
ifeq ($(SETUP_HOST),yes)
# the fully qualified name, where Debian's /etc/hostname has the short one:
# the greeting's name and core.hostname (whose users are delivered, and the
# domain of local mail) must be one
HOST_FQDN = $(shell hostname --fqdn 2>/dev/null || hostname)
CF_SED += -e 's/^name = localhost$$/name = $(HOST_FQDN)/' \
	-e 's/^\# hostname = mail.example.org .*$$/hostname = $(HOST_FQDN)/'
endif
# systemctl is asked only when systemd runs this machine (not in a
# container without it, nor for a DESTDIR).
SYSTEMCTL = if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl

CC ?= cc
CFLAGS ?= -O2
CFLAGS += -std=c17 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -D_FORTIFY_SOURCE=3 \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
LDFLAGS ?=
LDLIBS ?= -ldl

# The link order places each file's static data: session_reply.c's few
# hot bytes (esc()'s ring) come before session.c's session, whose 16 KiB
# input buffer is last, so they share a page already touched (issue 15).
SRCS = fmt.c cf.c cf_lex.c cf_schema.c cf_build.c cf_dump.c check.c addr.c \
	route_syntax.c route.c route_env.c route_load.c route_check.c rtindex.c \
	util.c io.c log.c deliver.c session_reply.c session.c session_data.c \
	session_start.c session_envelope.c inject.c inject_opts.c session_auth.c \
	session_local.c data.c handoff.c proxy.c priv.c spool.c flush.c \
	bounce.c client.c client_reply.c client_auth.c client_dest.c dns.c dnsbl.c idna.c tls.c mime.c auth.c spf.c net.c hosts.c \
	reply.c dsn.c policy.c session_filters.c milter.c milter_eom.c milter_proto.c
OBJS = $(SRCS:.c=.o)
HDRS = $(wildcard *.h)

# The sanitizer build lives in its own directory so both can coexist.
SAN_DIR = build-san
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

TESTS = test_addr test_cf test_route test_envelope test_data test_net test_reply \
	test_policy test_fmt test_io

# Debian packages that building and testing need.
DEPS = build-essential libcmocka-dev clang libclang-rt-14-dev mandoc \
	python3 python3-pytest python3-aiosmtpd hyperfine swaks procmail \
	ucspi-tcp openbsd-inetd postfix systemd time bc dnsmasq-base \
	dovecot-lmtpd libgnutls28-dev libidn2-dev gnutls-bin openssl strace \
	libnet-ssleay-perl libio-socket-ssl-perl libcrypt-dev libspf2-dev \
	iproute2 testssl.sh bsd-mailx postgrey opendkim opendkim-tools \
	python3-dkim rspamd linux-perf valgrind

.PHONY: all check check-normal check-san deps install uninstall clean bench fuzz lint demo \
	demo-clean tls-audit

all: postmaster

postmaster: postmaster.o $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ postmaster.o $(OBJS) $(LDLIBS)

%.o: %.c $(HDRS)
	$(CC) $(CFLAGS) -c -o $@ $<

tests/%: tests/%.c $(OBJS) $(HDRS)
	$(CC) $(CFLAGS) -I. -o $@ $< $(OBJS) -lcmocka $(LDLIBS)

# Postfix is installed for smtp-source/smtp-sink only (debconf is told "No
# configuration"; its package replaces another MTA's), Dovecot for LMTP and
# openbsd-inetd as a launcher: tools/deps leaves none of their services
# enabled or running.
deps:
	tools/deps $(DEPS)

check: check-normal check-san lint
	@echo "make check: all suites passed in both builds"

check-normal: postmaster $(addprefix tests/,$(TESTS))
	@tests/run-suites . tests $(TESTS)

# The sanitizer build: its own objects under build-san/.
SAN_CFLAGS = -std=c17 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter $(SAN_FLAGS)
SAN_OBJS = $(addprefix $(SAN_DIR)/,$(OBJS))

$(SAN_DIR)/%.o: %.c $(HDRS)
	@mkdir -p $(SAN_DIR)/tests
	$(CC) $(SAN_CFLAGS) -c -o $@ $<

$(SAN_DIR)/postmaster: $(SAN_DIR)/postmaster.o $(SAN_OBJS)
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LDLIBS)

$(SAN_DIR)/tests/%: tests/%.c $(SAN_OBJS) $(HDRS)
	$(CC) $(SAN_CFLAGS) -I. -o $@ $< $(SAN_OBJS) -lcmocka $(LDLIBS)

check-san: $(SAN_DIR)/postmaster $(addprefix $(SAN_DIR)/tests/,$(TESTS))
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		tests/run-suites $(SAN_DIR) $(SAN_DIR)/tests $(TESTS)

lint:
	@mandoc -Tlint -W warning man/postmaster.8 man/postmaster.cf.5 && \
		echo "mandoc -Tlint: man pages clean"

# make demo [DEMO_PORT=2525]: serves demo/postmaster.cf, written only when
# absent; make demo-clean removes demo/ to start afresh.
DEMO_PORT ?= 2525
demo:
	DEMO_PORT=$(DEMO_PORT) tools/demo

demo-clean:
	rm -rf demo

# testssl.sh against a STARTTLS and an implicit-TLS listener on loopback:
# fails on any MEDIUM or worse finding but the test certificate's own.
tls-audit: postmaster
	tools/tls-audit

bench: postmaster bench/pipe-source
	bench/route-bench
	bench/session-bench
	bench/session-cost
	bench/spool-bench
	bench/proxy-bench
	bench/milter-bench

bench/pipe-source: bench/pipe-source.c
	$(CC) $(CFLAGS) -o $@ bench/pipe-source.c

fuzz:
	$(MAKE) -C fuzz

# Installs the program, its manual pages and units, a configuration when
# there is none (etc/postmaster.cf: local delivery, no relaying), the spool
# and, on this machine, the session user (created as Debian's maintainer
# scripts do, or with useradd where adduser is not Debian's) who owns it.
install: postmaster
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc
	install -m 755 postmaster $(DESTDIR)$(SBINDIR)/postmaster
	install -m 644 man/postmaster.8 $(DESTDIR)$(MANDIR)/man8/postmaster.8
	install -m 644 man/postmaster.cf.5 $(DESTDIR)$(MANDIR)/man5/postmaster.cf.5
	for u in $(UNITS); do \
		sed $(UNIT_SED) units/$$u > $(DESTDIR)$(UNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -d -m 700 $(DESTDIR)$(SPOOLDIR)
ifeq ($(INSTALL_SENDMAIL),yes)
	for l in $(SENDMAIL_LINKS); do \
		install -d $(DESTDIR)$$(dirname $$l) && \
		ln -sfn $(SBINDIR)/postmaster $(DESTDIR)$$l || exit 1; \
	done
endif
ifeq ($(SETUP_HOST),yes)
	if ! getent passwd $(PMUSER) >/dev/null; then \
		if adduser --version 2>/dev/null | grep -q '^adduser version'; then \
			adduser --system --group --no-create-home \
				--home $(SPOOLDIR) $(PMUSER); \
		else \
			useradd --system --user-group --no-create-home \
				--home-dir $(SPOOLDIR) --shell /usr/sbin/nologin \
				$(PMUSER); \
		fi; \
	fi
	chown $(PMUSER): $(DESTDIR)$(SPOOLDIR)
endif
	@if [ -e $(DESTDIR)/etc/postmaster.cf ]; then \
		echo "kept $(DESTDIR)/etc/postmaster.cf"; \
	else \
		sed $(CF_SED) etc/postmaster.cf > $(DESTDIR)/etc/postmaster.cf && \
		chmod 644 $(DESTDIR)/etc/postmaster.cf && \
		echo "wrote $(DESTDIR)/etc/postmaster.cf"; \
	fi
ifeq ($(SETUP_HOST),yes)
	$(DESTDIR)$(SBINDIR)/postmaster --check --config=$(DESTDIR)/etc/postmaster.cf
	@$(SYSTEMCTL) daemon-reload; fi
	@echo "To serve port 25: systemctl enable --now postmaster.socket postmaster-flush.timer"
	@echo "For local users' sendmail: systemctl enable --now postmaster-submit.socket"
endif

# Removes what install added, except the mail in the spool, the user, and
# an /etc/postmaster.cf that differs from the one install writes.
uninstall:
	@$(SYSTEMCTL) disable --now postmaster.socket \
		postmaster-submission.socket postmaster-submissions.socket \
		postmaster-submit.socket postmaster-flush.timer; fi
	rm -f $(DESTDIR)$(SBINDIR)/postmaster \
		$(DESTDIR)$(MANDIR)/man8/postmaster.8 \
		$(DESTDIR)$(MANDIR)/man5/postmaster.cf.5 \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	@for l in $(SENDMAIL_LINKS); do \
		if [ "$$(readlink $(DESTDIR)$$l)" = $(SBINDIR)/postmaster ]; then \
			rm -f $(DESTDIR)$$l; \
		fi; \
	done
	@if [ -e $(DESTDIR)/etc/postmaster.cf ]; then \
		if sed $(CF_SED) etc/postmaster.cf | \
				cmp -s - $(DESTDIR)/etc/postmaster.cf; then \
			rm -f $(DESTDIR)/etc/postmaster.cf; \
		else \
			echo "kept $(DESTDIR)/etc/postmaster.cf: it was changed"; \
		fi; \
	fi
	@rmdir $(DESTDIR)$(SPOOLDIR) 2>/dev/null || \
		echo "kept $(DESTDIR)$(SPOOLDIR): it is not empty"
	@$(SYSTEMCTL) daemon-reload; fi
ifeq ($(SETUP_HOST),yes)
	@echo "kept the user $(PMUSER) (userdel $(PMUSER) removes it)"
endif

clean:
	rm -rf postmaster bench/pipe-source *.o $(addprefix tests/,$(TESTS)) \
		$(SAN_DIR) fuzz/build tests/__pycache__ .pytest_cache demo
