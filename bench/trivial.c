/*
 * trivial.c - the ceiling of a per-connection design: a responder started
 * the same way as postmaster (one process per connection) that answers the
 * same SMTP dialogue and does no work at all. `make bench` compares
 * postmaster with it (SPEC 11: at least 0.9x).
 *
 * It speaks just enough SMTP for smtp-source: greeting, EHLO/HELO, MAIL,
 * RCPT, DATA up to CRLF.CRLF, RSET, NOOP, QUIT. On stdin/stdout, or on fd 3
 * when LISTEN_FDS is set (systemd-socket-activate -a).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int in_fd = 0, out_fd = 1;
static char buf[65536];
static size_t pos, len;

static int getbyte(void)
{
	if (pos == len) {
		ssize_t n = read(in_fd, buf, sizeof buf);
		if (n <= 0)
			return -1;
		pos = 0;
		len = (size_t)n;
	}
	return (unsigned char)buf[pos++];
}

static int getline_crlf(char *line, size_t max)
{
	size_t n = 0;
	int c;
	while ((c = getbyte()) >= 0 && c != '\n')
		if (n + 1 < max)
			line[n++] = (char)c;
	if (c < 0)
		return -1;
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = 0;
	return (int)n;
}

/* Replies are held while more of the client's input is already read,
 * and written together when it runs dry (RFC 2920), as postmaster does:
 * one write per group, so that no reply waits for a delayed ACK. */
static char out[4096];
static size_t out_len;

static void flush_out(void)
{
	ssize_t w = write(out_fd, out, out_len);
	(void)w;
	out_len = 0;
}

static void say(const char *s)
{
	size_t n = strlen(s);
	if (out_len + n > sizeof out)
		flush_out();
	memcpy(out + out_len, s, n);
	out_len += n;
	if (pos == len)
		flush_out();
}

int main(void)
{
	char line[4096];
	if (getenv("LISTEN_FDS"))
		in_fd = out_fd = 3;
	say("220 trivial ESMTP\r\n");
	while (getline_crlf(line, sizeof line) >= 0) {
		if (!strncasecmp(line, "EHLO", 4))
			say("250-trivial\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
			    "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
		else if (!strncasecmp(line, "HELO", 4))
			say("250 trivial\r\n");
		else if (!strncasecmp(line, "MAIL", 4))
			say("250 2.1.0 OK\r\n");
		else if (!strncasecmp(line, "RCPT", 4))
			say("250 2.1.5 OK\r\n");
		else if (!strncasecmp(line, "DATA", 4)) {
			say("354 go ahead\r\n");
			while (getline_crlf(line, sizeof line) >= 0 &&
			       strcmp(line, "."))
				;
			say("250 2.0.0 OK\r\n");
		} else if (!strncasecmp(line, "QUIT", 4)) {
			say("221 2.0.0 bye\r\n");
			break;
		} else
			say("250 2.0.0 OK\r\n");
	}
	if (out_len)
		flush_out();
	return 0;
}
