/*
 * pipe-source.c - a load generator for make bench that speaks SMTP as
 * real senders do (RFC 2920): MAIL, RCPT and DATA in one group, unlike
 * Postfix's smtp-source, which waits for each reply. One message of size
 * octets per connection; sessions sessions at a time (forked workers),
 * messages in all. Exits 1 when any reply is not the one expected.
 *
 * usage: pipe-source -s sessions -m messages -l size -f from -t to host:port
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[65536];
static size_t have;

/* Reads replies until n final lines (code and a space) have come; the
 * code of the last, or -1. */
static int replies(int fd, int n)
{
	int code = -1;
	while (n > 0) {
		char *nl;
		while (!(nl = memchr(buf, '\n', have))) {
			ssize_t r = read(fd, buf + have, sizeof buf - have);
			if (r <= 0)
				return -1;
			have += (size_t)r;
		}
		size_t len = (size_t)(nl - buf) + 1;
		if (len > 3 && buf[3] == ' ') {
			code = atoi(buf);
			n--;
		}
		memmove(buf, buf + len, have - len);
		have -= len;
	}
	return code;
}

static int put(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int one(const struct sockaddr_in *sa, const char *group,
	       const char *body, size_t blen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	have = 0;
	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
		return -1;
	int ok = replies(fd, 1) == 220 &&
		 put(fd, "EHLO pipe-source.example\r\n", 26) == 0 &&
		 replies(fd, 1) == 250 && put(fd, group, strlen(group)) == 0 &&
		 replies(fd, 3) == 354 && put(fd, body, blen) == 0 &&
		 replies(fd, 1) == 250 && put(fd, "QUIT\r\n", 6) == 0 &&
		 replies(fd, 1) == 221;
	close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int sessions = 1, messages = 1, size = 4096, c;
	const char *from = "a@pipe-source.example", *to = "b@pipe-source.example";
	while ((c = getopt(argc, argv, "s:m:l:f:t:")) != -1) {
		if (c == 's')
			sessions = atoi(optarg);
		else if (c == 'm')
			messages = atoi(optarg);
		else if (c == 'l')
			size = atoi(optarg);
		else if (c == 'f')
			from = optarg;
		else if (c == 't')
			to = optarg;
		else
			return 2;
	}
	if (optind != argc - 1 || sessions < 1 || messages < 1 || size < 0) {
		fprintf(stderr, "usage: pipe-source -s sessions -m messages -l "
				"size -f from -t to host:port\n");
		return 2;
	}
	char *colon = strrchr(argv[optind], ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	if (!colon || (*colon = 0, inet_pton(AF_INET, argv[optind],
					       &sa.sin_addr) != 1))
		return 2;
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	char group[1200];
	snprintf(group, sizeof group,
		 "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", from, to);
	/* a header, then lines of 72 octets, then the final dot */
	size_t cap = (size_t)size + 256;
	char *body = malloc(cap);
	size_t blen = (size_t)snprintf(body, cap,
				       "From: <%s>\r\nTo: <%s>\r\n"
				       "Subject: pipe-source\r\n\r\n",
				       from, to);
	while (blen + 74 < (size_t)size + 74 && blen + 74 < cap - 8) {
		memset(body + blen, 'x', 72);
		memcpy(body + blen + 72, "\r\n", 2);
		blen += 74;
	}
	memcpy(body + blen, ".\r\n", 3);
	blen += 3;
	int fails = 0;
	for (int w = 0; w < sessions; w++) {
		int mine = messages / sessions + (w < messages % sessions);
		if (fork() == 0) {
			int bad = 0;
			for (int i = 0; i < mine; i++)
				bad |= one(&sa, group, body, blen) < 0;
			_exit(bad);
		}
	}
	int st;
	while (wait(&st) > 0)
		fails |= !WIFEXITED(st) || WEXITSTATUS(st);
	free(body);
	return fails;
}
