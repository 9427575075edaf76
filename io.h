/*
 * io.h - the session's connection: buffered reads and writes with a
 * timeout, over a transport that a TLS layer can replace.
 *
 * Owns: the input buffer (so pipelined commands are seen and can be
 * discarded, e.g. after STARTTLS), the output buffer (flushed when no input
 * is waiting, when the caller forces it, or when it passes IO_OUTMAX), the
 * one bounded line reader, and the timeout of every read and every write.
 * Never interprets what it carries, and never blocks longer than the
 * timeout on a peer that stops reading.
 */
#ifndef POSTMASTER_IO_H
#define POSTMASTER_IO_H

#include <stddef.h>
#include <sys/types.h>

#define IO_BUFSIZE 16384
/* Pending output that forces a flush: a pipelined group of replies still
 * costs one write, and a client that pipelines without end cannot make
 * the output grow (SPEC 5 PIPELINING, SPEC 11). */
#define IO_OUTMAX 8192

enum io_status { IO_OK, IO_EOF, IO_TOOLONG, IO_TIMEOUT, IO_ERROR };

struct io;

/* A transport moves bytes; plain sockets and pipes use read/write. */
struct io_transport {
	ssize_t (*read)(struct io *io, void *p, size_t n);
	ssize_t (*write)(struct io *io, const void *p, size_t n);
	int (*pending)(struct io *io); /* bytes buffered inside the transport */
};

struct io {
	int rfd, wfd;
	int timeout_ms;
	const struct io_transport *tr;
	void *tr_state;
	size_t in_pos, in_len;
	char *out;
	size_t out_len, out_cap;
	int eof, err;
	int wsock;                /* wfd is a socket: send() never blocks */
	unsigned min_rate;        /* io_data_pace: bytes/s; 0: off */
	long long data_deadline;  /* io_data_pace: CLOCK_MONOTONIC ms */
	enum io_status wstatus;   /* IO_OK, or why output stopped for good */
	unsigned long long bytes_in, bytes_out;
	/* last: only the part that input fills is ever touched, and the
	 * fields above share their pages with their owner's */
	char in[IO_BUFSIZE];
};

/* The monotonic clock in ms, which every timeout here counts on. */
long long io_now_ms(void);

void io_init(struct io *io, int rfd, int wfd, int timeout_ms);
/* The same for a socket the caller made (no fstat to find out). */
void io_init_socket(struct io *io, int fd, int timeout_ms);
void io_free(struct io *io);

/*
 * Reads one line into line (at most max bytes without its terminator; LF,
 * CRLF), all of it within one timeout: a peer that trickles a line gets
 * IO_TIMEOUT as one that sends nothing does, and an over-long line is
 * discarded for one timeout at most. *len is set to its length; *bare
 * tells how it ended: 0 CRLF, 1 a
 * bare LF, 2 EOF without LF. An over-long line is consumed to its LF and
 * reported as IO_TOOLONG, with its first max bytes in line (a peer's
 * over-long reply keeps its code). line has room for max + 1 bytes.
 */
enum io_status io_getline(struct io *io, char *line, size_t max, size_t *len,
			  int *bare);
/* The same by a deadline of io_now_ms()'s clock, for a reply or answer of
 * several lines that must come whole within one timeout. */
enum io_status io_getline_until(struct io *io, long long deadline, char *line,
				size_t max, size_t *len, int *bare);
/* Up to n bytes, at least one (waits). IO_EOF at the end. */
enum io_status io_read(struct io *io, char *p, size_t n, size_t *got);
/*
 * Paces io_read() from now on (min_rate bytes per second; 0 ends it): its
 * waits share one deadline, the timeout from now, which each read moves on
 * by the time the bytes it returns justify at min_rate, never past the
 * timeout from then; once the deadline has passed io_read() says
 * IO_TIMEOUT even with bytes buffered. A client that sends at min_rate or
 * faster never meets it; one that trickles is cut off within about twice
 * the timeout, however it spaces its bytes (Postfix's
 * smtpd_min_data_rate). The caller may wait for other input by
 * data_deadline too (BDAT: the commands between chunks).
 */
void io_data_pace(struct io *io, unsigned min_rate);
/* Whether input is already waiting (buffered or readable now). */
int io_input_pending(struct io *io);
/* Whether a whole line is buffered (no system call). */
int io_line_buffered(struct io *io);
/* Whether a whole line is buffered, or more input can be read now: when
 * not, a peer that sent part of a line may be waiting for our replies. */
int io_line_pending(struct io *io);
/* Whether input is in the buffer, read and not yet taken. */
int io_input_buffered(const struct io *io);
/* Drops everything buffered on input (after STARTTLS: RFC 3207 5.2). */
void io_discard_input(struct io *io);

/* Buffers output; past IO_OUTMAX it is flushed at once. Once a flush has
 * failed, output is dropped (nobody reads it) and reads fail too. */
void io_write(struct io *io, const void *p, size_t n);
/*
 * Sends the buffered output, all of it within one timeout, however the
 * peer spaces its reads. 0, or -1 when the peer is gone (wstatus
 * IO_ERROR) or has not taken it all in the timeout (IO_TIMEOUT).
 */
int io_flush(struct io *io);

#endif
