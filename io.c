/*
 * io.c - the session's connection (see io.h).
 *
 * Every wait goes through poll() with the session's timeout, so a client
 * that stops talking, or stops reading, costs one process for at most that
 * long. Output is buffered until the session flushes (qmail's rule: flush
 * before a read only when no pipelined input is waiting) or until it passes
 * IO_OUTMAX, so memory stays flat whatever the client pipelines.
 */
#include "io.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static ssize_t plain_read(struct io *io, void *p, size_t n)
{
	return read(io->rfd, p, n);
}

/* Called once poll() said the peer can take more: it must not block. A
 * socket is asked not to; a pipe with room takes PIPE_BUF bytes at once. */
static ssize_t plain_write(struct io *io, const void *p, size_t n)
{
	if (io->wsock)
		return send(io->wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(io->wfd, p, n < PIPE_BUF ? n : PIPE_BUF);
}

static int plain_pending(struct io *io)
{
	(void)io;
	return 0;
}

static const struct io_transport plain = {plain_read, plain_write,
					  plain_pending};

void io_init(struct io *io, int rfd, int wfd, int timeout_ms)
{
	/* not the 16 KiB input buffer: it needs no zeroing */
	memset(io, 0, offsetof(struct io, in));
	io->rfd = rfd;
	io->wfd = wfd;
	io->timeout_ms = timeout_ms;
	io->tr = &plain;
	struct stat st;
	io->wsock = fstat(wfd, &st) == 0 && S_ISSOCK(st.st_mode);
}

void io_init_socket(struct io *io, int fd, int timeout_ms)
{
	memset(io, 0, offsetof(struct io, in));
	io->rfd = io->wfd = fd;
	io->timeout_ms = timeout_ms;
	io->tr = &plain;
	io->wsock = 1;
}

void io_free(struct io *io)
{
	free(io->out);
	io->out = NULL;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		return r; /* 0: timeout */
	}
}

long long io_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static long long now_ms(void)
{
	return io_now_ms();
}

/* What is left of the time until deadline, for poll(); 0 when none. */
static int left_ms(long long deadline)
{
	long long left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Refills the input buffer; waits until deadline at most. */
static enum io_status fill(struct io *io, long long deadline)
{
	if (io->eof)
		return IO_EOF;
	if (io->err || io->wstatus != IO_OK)
		return IO_ERROR; /* a peer that cannot be answered is done */
	if (io->in_pos == io->in_len)
		io->in_pos = io->in_len = 0;
	if (io->in_len == sizeof io->in) {
		memmove(io->in, io->in + io->in_pos, io->in_len - io->in_pos);
		io->in_len -= io->in_pos;
		io->in_pos = 0;
	}
	if (!io->tr->pending(io)) {
		/* what was said goes out before we wait to hear more
		 * (RFC 2920: replies are sent when the input runs dry) */
		if (io->out_len && io_flush(io) < 0)
			return IO_ERROR;
		int r = wait_fd(io->rfd, POLLIN, left_ms(deadline));
		if (r == 0)
			return IO_TIMEOUT;
		if (r < 0) {
			io->err = 1;
			return IO_ERROR;
		}
	}
	for (;;) {
		ssize_t n = io->tr->read(io, io->in + io->in_len,
					 sizeof io->in - io->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(io->rfd, POLLIN, left_ms(deadline));
			if (r == 0)
				return IO_TIMEOUT;
			continue;
		}
		if (n < 0) {
			io->err = 1;
			return IO_ERROR;
		}
		if (n == 0) {
			io->eof = 1;
			return IO_EOF;
		}
		io->in_len += (size_t)n;
		io->bytes_in += (unsigned long long)n;
		return IO_OK;
	}
}

/* An over-long line keeps its first max bytes. */
static enum io_status too_long(char *line, size_t max, size_t *len)
{
	line[max] = 0;
	*len = max;
	return IO_TOOLONG;
}

enum io_status io_getline(struct io *io, char *line, size_t max, size_t *len,
			  int *bare)
{
	return io_getline_until(io, now_ms() + io->timeout_ms, line, max, len,
				bare);
}

enum io_status io_getline_until(struct io *io, long long deadline, char *line,
				size_t max, size_t *len, int *bare)
{
	size_t n = 0;
	int toolong = 0;
	*len = 0;
	*bare = 0;
	for (;;) {
		char *start = io->in + io->in_pos;
		size_t avail = io->in_len - io->in_pos;
		char *nl = memchr(start, '\n', avail);
		size_t take = nl ? (size_t)(nl - start) : avail;
		if (!toolong) {
			if (n + take > max + 1) { /* +1: a CR before the LF */
				toolong = 1;
				if (n < max)
					memcpy(line + n, start, max - n);
				n = max;
			} else {
				memcpy(line + n, start, take);
				n += take;
			}
		}
		io->in_pos += take;
		if (nl) {
			io->in_pos++;
			if (toolong)
				return too_long(line, max, len);
			if (n && line[n - 1] == '\r') {
				n--;
			} else {
				*bare = 1;
			}
			if (n > max)
				return too_long(line, max, len);
			line[n] = 0;
			*len = n;
			return IO_OK;
		}
		enum io_status st = fill(io, deadline);
		if (st == IO_EOF) {
			if (n == 0 || toolong)
				return IO_EOF;
			*bare = 2;
			if (n > max)
				return too_long(line, max, len);
			line[n] = 0;
			*len = n;
			return IO_OK;
		}
		if (st != IO_OK)
			return st;
	}
}

void io_data_pace(struct io *io, unsigned min_rate)
{
	io->min_rate = min_rate;
	if (min_rate)
		io->data_deadline = now_ms() + io->timeout_ms;
}

enum io_status io_read(struct io *io, char *p, size_t n, size_t *got)
{
	*got = 0;
	long long now = io->min_rate ? now_ms() : 0;
	/* octets that are already here do not buy back time that is gone */
	if (io->min_rate && now >= io->data_deadline)
		return IO_TIMEOUT;
	if (io->in_pos == io->in_len) {
		if (!io->min_rate)
			now = now_ms();
		long long limit = now + io->timeout_ms;
		long long deadline = io->min_rate && io->data_deadline < limit
					     ? io->data_deadline
					     : limit;
		enum io_status st = fill(io, deadline);
		if (st != IO_OK)
			return st;
		if (io->min_rate)
			now = now_ms();
	}
	size_t avail = io->in_len - io->in_pos;
	size_t take = avail < n ? avail : n;
	memcpy(p, io->in + io->in_pos, take);
	io->in_pos += take;
	*got = take;
	if (io->min_rate) {
		/* the bytes taken buy time at min_rate, however they came */
		io->data_deadline += (long long)take * 1000 / io->min_rate;
		if (io->data_deadline > now + io->timeout_ms)
			io->data_deadline = now + io->timeout_ms;
	}
	return IO_OK;
}

int io_input_pending(struct io *io)
{
	if (io->in_pos < io->in_len || io->tr->pending(io))
		return 1;
	if (io->eof || io->err)
		return 0;
	return wait_fd(io->rfd, POLLIN, 0) > 0;
}

int io_line_buffered(struct io *io)
{
	return memchr(io->in + io->in_pos, '\n', io->in_len - io->in_pos) ||
	       io->tr->pending(io);
}

int io_line_pending(struct io *io)
{
	if (io_line_buffered(io))
		return 1;
	if (io->eof || io->err)
		return 0;
	return wait_fd(io->rfd, POLLIN, 0) > 0;
}

int io_input_buffered(const struct io *io)
{
	return io->in_pos < io->in_len;
}

void io_discard_input(struct io *io)
{
	io->in_pos = io->in_len = 0;
}

void io_write(struct io *io, const void *p, size_t n)
{
	if (io->wstatus != IO_OK)
		return;
	if (io->out_len + n > io->out_cap) {
		size_t cap = io->out_cap ? io->out_cap : 1024;
		while (cap < io->out_len + n)
			cap *= 2;
		io->out = xrealloc(io->out, cap);
		io->out_cap = cap;
	}
	memcpy(io->out + io->out_len, p, n);
	io->out_len += n;
	if (io->out_len >= IO_OUTMAX)
		io_flush(io);
}

int io_flush(struct io *io)
{
	size_t off = 0;
	/* a plain socket is written without blocking (MSG_DONTWAIT), so it
	 * is tried first and waited for only when full: one poll() less per
	 * reply; a pipe or a TLS connection waits first */
	int try_first = io->tr == &plain && io->wsock;
	long long deadline = 0;
	while (off < io->out_len && io->wstatus == IO_OK) {
		if (!try_first) {
			if (!deadline) /* the clock is read only when it waits */
				deadline = now_ms() + io->timeout_ms;
			int r = wait_fd(io->wfd, POLLOUT, left_ms(deadline));
			if (r <= 0) {
				io->wstatus = r == 0 ? IO_TIMEOUT : IO_ERROR;
				break;
			}
		}
		try_first = 0;
		ssize_t n = io->tr->write(io, io->out + off, io->out_len - off);
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
			      errno == EWOULDBLOCK))
			continue;
		if (n <= 0) {
			io->wstatus = IO_ERROR;
			break;
		}
		off += (size_t)n;
		io->bytes_out += (unsigned long long)n;
	}
	io->out_len = 0;
	return io->wstatus == IO_OK ? 0 : -1;
}
