/*
 * mime.h - 7-bit forms of 8-bit and binary mail (RFC 6152 3, RFC 3030 3,
 * RFC 2045), for a next hop that lacks 8BITMIME or BINARYMIME.
 *
 * Owns: walking the MIME structure (multipart bodies, message/rfc822
 * parts, leaves), judging each leaf by its content, and re-encoding the
 * leaves that need it: text as quoted-printable, anything else as base64,
 * with their Content-Transfer-Encoding rewritten.
 *
 * Never: changes the content of a part that is already 7-bit (only its
 * label 8bit becomes 7bit), encodes again what the sender encoded, holds
 * the message whole in memory, or guesses at what cannot be converted
 * (8-bit header fields, nesting too deep): it says why.
 */
#ifndef POSTMASTER_MIME_H
#define POSTMASTER_MIME_H

#include <stddef.h>

#include "deliver.h"

/* Writes the 7-bit form of m to out_fd as text with LF line ends (the
 * form the spool stores text mail in). -1 with a reason when m cannot be
 * converted. */
int mime_downgrade(const struct msg *m, int out_fd, char *why, size_t n);

#endif
