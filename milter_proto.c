/*
 * milter_proto.c - the milter protocol on the wire (see milter_proto.h).
 *
 * Owns: the milter socket's connect, packet framing, and the timeout of
 * every wait on a milter.
 *
 * Never: interprets a reply, logs, or reads a packet longer than
 * MP_MAX_PACKET (a milter cannot make the session's memory grow).
 */
#include "milter_proto.h"
#include "io.h"
#include "client.h"
#include "fmt.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Waits for ev on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short ev, long long deadline)
{
	for (;;) {
		long long left = deadline - io_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {fd, ev, 0};
		int r = poll(&p, 1, left > 1 << 30 ? 1 << 30 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int mp_connect(const char *address, int timeout_ms, char *why, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *bad = net_stream_address_parse(address, &ss, &len);
	if (bad) {
		fmt_snprintf(why, n, "bad address: %s", bad);
		return -1;
	}
	char reason[256];
	int fd = client_connect(&ss, len, timeout_ms, reason, sizeof reason);
	if (fd < 0) {
		fmt_snprintf(why, n, "connect to %s: %s", address, reason);
		return -1;
	}
	/* non-blocking (client_connect): every wait on it is this file's,
	 * bounded */
	return fd;
}

void mp_begin(struct buf *b, char cmd)
{
	b->len = 0;
	buf_add(b, "\0\0\0\0", 4);
	buf_addc(b, cmd);
}

void mp_put_u32(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	buf_add(b, c, 4);
}

void mp_put_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s) + 1);
}

uint32_t mp_get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

int mp_send(int fd, struct buf *b, int timeout_ms, char *why, size_t n)
{
	uint32_t len = (uint32_t)(b->len - 4);
	unsigned char c[4] = {(unsigned char)(len >> 24),
			      (unsigned char)(len >> 16),
			      (unsigned char)(len >> 8), (unsigned char)len};
	memcpy(b->s, c, 4);
	long long deadline = io_now_ms() + timeout_ms;
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = send(fd, b->s + off, b->len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN) {
			fmt_snprintf(why, n, "write: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(fd, POLLOUT, deadline) <= 0) {
			fmt_snprintf(why, n, "timeout while writing");
			return -1;
		}
	}
	return 0;
}

int mp_unasked(int fd, char *why, size_t n)
{
	char c;
	ssize_t r;
	do
		r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		fmt_snprintf(why, n, "the milter sent a packet it was not "
				 "asked for");
	else if (r == 0)
		fmt_snprintf(why, n, "the milter closed the connection");
	/* nothing to read (or an error, which the write then meets) */
	return r >= 0;
}

/* Reads exactly n bytes by deadline: 0, or -1 with why. */
static int read_full(int fd, char *p, size_t len, long long deadline,
		     char *why, size_t n)
{
	size_t off = 0;
	while (off < len) {
		ssize_t r = recv(fd, p + off, len - off, 0);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == 0) {
			fmt_snprintf(why, n, "the milter closed the connection");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			fmt_snprintf(why, n, "read: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(fd, POLLIN, deadline) <= 0) {
			fmt_snprintf(why, n, "timeout while waiting for the milter");
			return -1;
		}
	}
	return 0;
}

int mp_read(int fd, int timeout_ms, char *cmd, struct buf *data, char *why,
	    size_t n)
{
	long long deadline = io_now_ms() + timeout_ms;
	char h[5];
	if (read_full(fd, h, 4, deadline, why, n) < 0)
		return -1;
	uint32_t len = mp_get_u32(h);
	if (len == 0 || len > MP_MAX_PACKET) {
		fmt_snprintf(why, n, "bad packet length %u", len);
		return -1;
	}
	if (read_full(fd, h + 4, 1, deadline, why, n) < 0)
		return -1;
	*cmd = h[4];
	data->len = 0;
	buf_reserve(data, len);
	if (read_full(fd, data->s, len - 1, deadline, why, n) < 0)
		return -1;
	data->len = len - 1;
	data->s[data->len] = 0;
	return 0;
}
