# postmaster - see README.md. `make` builds ./postmaster; `make check` runs
# every test twice: in a normal build and under ASan+UBSan.

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SPOOLDIR ?= /var/spool/postmaster

CC ?= cc
CFLAGS ?= -O2
CFLAGS += -std=c17 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -D_FORTIFY_SOURCE=3 \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
LDFLAGS ?=
LDLIBS ?= -ldl

SRCS = cf.c addr.c route.c rtindex.c util.c io.c log.c deliver.c session.c \
	spool.c flush.c bounce.c client.c dns.c idna.c tls.c mime.c auth.c spf.c
OBJS = $(SRCS:.c=.o)
HDRS = $(wildcard *.h)

# The sanitizer build lives in its own directory so both can coexist.
SAN_DIR = build-san
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

TESTS = test_addr test_cf test_route test_envelope

# Debian packages that building and testing need.
DEPS = build-essential libcmocka-dev clang libclang-rt-14-dev mandoc \
	python3 python3-pytest python3-aiosmtpd hyperfine swaks procmail \
	ucspi-tcp openbsd-inetd postfix systemd time bc dnsmasq-base \
	dovecot-lmtpd libgnutls28-dev libidn2-dev gnutls-bin openssl strace \
	libnet-ssleay-perl libio-socket-ssl-perl libcrypt-dev libspf2-dev \
	iproute2

.PHONY: all check check-normal check-san deps install clean bench fuzz lint demo

all: postmaster

postmaster: postmaster.o $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ postmaster.o $(OBJS) $(LDLIBS)

%.o: %.c $(HDRS)
	$(CC) $(CFLAGS) -c -o $@ $<

tests/%: tests/%.c $(OBJS) $(HDRS)
	$(CC) $(CFLAGS) -I. -o $@ $< $(OBJS) -lcmocka $(LDLIBS)

# Postfix is installed for smtp-source/smtp-sink only: debconf is told
# "No configuration", so no Postfix daemon is set up or started.
deps:
	apt-get update
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS)

check: check-normal check-san lint
	@echo "make check: all suites passed in both builds"

check-normal: postmaster $(addprefix tests/,$(TESTS))
	@tests/run-suites . tests

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
		tests/run-suites $(SAN_DIR) $(SAN_DIR)/tests

lint:
	@mandoc -Tlint -W warning man/postmaster.8 man/postmaster.cf.5 && \
		echo "mandoc -Tlint: man pages clean"

demo:
	tools/demo

bench: postmaster
	bench/route-bench
	bench/session-bench
	bench/spool-bench

fuzz:
	$(MAKE) -C fuzz

install: postmaster
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 755 postmaster $(DESTDIR)$(SBINDIR)/postmaster
	install -m 644 man/postmaster.8 $(DESTDIR)$(MANDIR)/man8/postmaster.8
	install -m 644 man/postmaster.cf.5 $(DESTDIR)$(MANDIR)/man5/postmaster.cf.5
	install -d -m 700 $(DESTDIR)$(SPOOLDIR)
	install -d $(DESTDIR)$(UNITDIR)
	for u in units/*; do \
		sed 's#/usr/local/sbin/postmaster#$(SBINDIR)/postmaster#' $$u > $(DESTDIR)$(UNITDIR)/$${u#units/}; \
	done

clean:
	rm -rf postmaster *.o tests/test_addr tests/test_cf tests/test_route tests/test_envelope \
		$(SAN_DIR) fuzz/build tests/__pycache__ .pytest_cache demo
