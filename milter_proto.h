/*
 * milter_proto.h - the Sendmail/Postfix milter protocol, version 6, on
 * the wire: packets of a 4-byte length (network order), a command byte
 * and its data.
 *
 * Owns: the command, reply, action (SMFIF_*), protocol (SMFIP_*) and
 * macro class (SMFIM_*) codes; connecting to unix:/path and inet:host:port
 * within a timeout; writing one packet and reading one within a timeout,
 * no packet longer than MP_MAX_PACKET.
 *
 * Never: decides what a reply means for the session (milter.c does), or
 * waits without a timeout.
 */
#ifndef POSTMASTER_MILTER_PROTO_H
#define POSTMASTER_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MP_VERSION 6
#define MP_CHUNK 65535            /* a body chunk, at most */
#define MP_MAX_PACKET (1u << 20)  /* what we read from a milter, at most */

/* MTA to milter */
enum {
	SMFIC_ABORT = 'A', SMFIC_BODY = 'B', SMFIC_CONNECT = 'C',
	SMFIC_MACRO = 'D', SMFIC_BODYEOB = 'E', SMFIC_HELO = 'H',
	SMFIC_HEADER = 'L', SMFIC_MAIL = 'M', SMFIC_EOH = 'N',
	SMFIC_OPTNEG = 'O', SMFIC_QUIT = 'Q', SMFIC_RCPT = 'R',
	SMFIC_DATA = 'T', SMFIC_UNKNOWN = 'U', SMFIC_QUIT_NC = 'K',
};

/* milter to MTA */
enum {
	SMFIR_ADDRCPT = '+', SMFIR_DELRCPT = '-', SMFIR_ACCEPT = 'a',
	SMFIR_REPLBODY = 'b', SMFIR_CONTINUE = 'c', SMFIR_DISCARD = 'd',
	SMFIR_CONN_FAIL = 'f', SMFIR_CHGHEADER = 'm', SMFIR_PROGRESS = 'p',
	SMFIR_REJECT = 'r', SMFIR_TEMPFAIL = 't', SMFIR_SHUTDOWN = '4',
	SMFIR_ADDHEADER = 'h', SMFIR_INSHEADER = 'i', SMFIR_REPLYCODE = 'y',
	SMFIR_QUARANTINE = 'q', SMFIR_SKIP = 's', SMFIR_CHGFROM = 'e',
	SMFIR_ADDRCPT_PAR = '2', SMFIR_SETSYMLIST = 'l',
};

/* what a milter may do at the end of a message */
enum {
	SMFIF_ADDHDRS = 1 << 0, SMFIF_CHGBODY = 1 << 1, SMFIF_ADDRCPT = 1 << 2,
	SMFIF_DELRCPT = 1 << 3, SMFIF_CHGHDRS = 1 << 4,
	SMFIF_QUARANTINE = 1 << 5, SMFIF_CHGFROM = 1 << 6,
	SMFIF_ADDRCPT_PAR = 1 << 7, SMFIF_SETSYMLIST = 1 << 8,
};
#define MP_ACTIONS 0x1ff

/* what a milter does not want sent, or will not answer */
enum {
	SMFIP_NOCONNECT = 1 << 0, SMFIP_NOHELO = 1 << 1, SMFIP_NOMAIL = 1 << 2,
	SMFIP_NORCPT = 1 << 3, SMFIP_NOBODY = 1 << 4, SMFIP_NOHDRS = 1 << 5,
	SMFIP_NOEOH = 1 << 6, SMFIP_NR_HDR = 1 << 7, SMFIP_NOUNKNOWN = 1 << 8,
	SMFIP_NODATA = 1 << 9, SMFIP_SKIP = 1 << 10, SMFIP_RCPT_REJ = 1 << 11,
	SMFIP_NR_CONN = 1 << 12, SMFIP_NR_HELO = 1 << 13,
	SMFIP_NR_MAIL = 1 << 14, SMFIP_NR_RCPT = 1 << 15,
	SMFIP_NR_DATA = 1 << 16, SMFIP_NR_UNKN = 1 << 17,
	SMFIP_NR_EOH = 1 << 18, SMFIP_NR_BODY = 1 << 19,
	SMFIP_HDR_LEADSPC = 1 << 20,
};
/* everything but SMFIP_RCPT_REJ (rejected recipients are not sent) */
#define MP_PROTOCOL (0x1fffff & ~SMFIP_RCPT_REJ)

/* macro classes of the SMFIM_* lists a milter may ask for */
enum {
	SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVFROM, SMFIM_ENVRCPT, SMFIM_DATA,
	SMFIM_EOM, SMFIM_EOH, SMFIM_N
};

/* Connects to address (unix:/path, inet:host:port, inet:[ip]:port):
 * the fd, or -1 with why. */
int mp_connect(const char *address, int timeout_ms, char *why, size_t n);

/* Packets are built in a buf: mp_begin() leaves room for the length and
 * writes the command; mp_send() fills in the length and writes it. */
void mp_begin(struct buf *b, char cmd);
void mp_put_u32(struct buf *b, uint32_t v);
void mp_put_str(struct buf *b, const char *s); /* with its NUL */
/* 0, or -1 with why (timeout, broken connection). */
int mp_send(int fd, struct buf *b, int timeout_ms, char *why, size_t n);

/* Reads one packet: its command in *cmd, its data in data (replaced).
 * 0, or -1 with why. */
int mp_read(int fd, int timeout_ms, char *cmd, struct buf *data, char *why,
	    size_t n);

/* Whether the milter has sent something before a command that it must
 * answer only after (a reply too many, or one to a step it said it
 * would not answer), or has closed: 1 with why, else 0. What it sent is
 * left unread. */
int mp_unasked(int fd, char *why, size_t n);

/* The big-endian number at p. */
uint32_t mp_get_u32(const char *p);

#endif
