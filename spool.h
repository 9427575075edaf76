/*
 * spool.h - the durable queue of SPEC 7.1: storage, locking, listing.
 *
 * Owns: the spool directory's files and the order in which they reach
 * the disk. A message is one file, ID: its envelope (human-readable text,
 * one line per delivery target), a line "message", then the message, one
 * copy whatever the number of recipients. It is written as tmp.ID, synced,
 * and renamed to ID, and the directory is synced: one file sync and one
 * directory sync before the 250 (SPEC 11). Later states of the envelope go
 * to ID.env (written the same way), which supersedes the one in ID. The
 * per-message lock is flock on ID, which keeps two processes from
 * delivering one message at once.
 *
 * Never: acknowledges anything itself, talks to the network, or decides
 * what a reply means for a target (flush.c does).
 */
#ifndef POSTMASTER_SPOOL_H
#define POSTMASTER_SPOOL_H

#include <stdint.h>
#include <sys/types.h>

#include "dsn.h"
#include "route.h"

enum sp_state { SP_PENDING, SP_DELIVERED, SP_FAILED };
/* NOTIFY=SUCCESS: the report a delivered target still owes its sender */
enum sp_owed { SP_OWED_NONE, SP_OWED_DELIVERED, SP_OWED_RELAYED };
enum sp_origin { SP_CLIENT, SP_BOUNCE, SP_DOUBLE_BOUNCE };

struct spool_target {
	enum target_kind kind;
	enum sp_state state;
	unsigned attempts;
	int64_t next;  /* next attempt, seconds since the epoch */
	char *via;     /* [pipe]/[relay] name; T_USER: the mailer's [pipe] */
	char *addr;    /* the address the target receives */
	char *orig;    /* the recipient as the client gave it */
	char *arg;
	unsigned notify; /* NOTIFY= as DSN_* bits, 0 when not given */
	char *orcpt;     /* ORCPT= as given (xtext), NULL when none */
	enum sp_owed owed; /* recorded with the delivery, cleared once its
			    * report is in the spool */
	/* the last reply */
	int code;
	char dsn[12];
	char *remote;  /* the host that gave it, or "" */
	int remote_tls; /* ... over TLS: 1, 0, or -1 not known (for the log
			 * line only: the envelope does not keep it) */
	char *text;
};

struct spool_msg {
	char id[24];
	int64_t arrival;
	char *from;    /* "" for <> */
	enum sp_origin origin;
	int binary;    /* BODY=BINARYMIME */
	int eightbit;  /* BODY=8BITMIME */
	int smtputf8;
	enum dsn_ret dsn_ret; /* RET= */
	char *envid;   /* ENVID= as given (xtext), NULL when none */
	int delay_reported; /* NOTIFY=DELAY: the one delay report went out */
	char *quarantine;   /* a milter's reason to hold it until --release,
			     * or NULL */
	char *sid;     /* the session that received it */
	char *client;  /* "[ip]" or "local", for the bounce */
	char *smtpd;   /* the [smtpd] that accepted it: its tables route the
			* bounces; "" or NULL (an envelope older than the
			* field) for the built-in listener */
	struct spool_target *t;
	unsigned nt;
	int data_fd;   /* the file ID, open and locked while held */
	off_t data_off; /* where the message starts in it */
	off_t size;     /* of the message */
};

/* Opens the spool directory; -1 with a reason when it cannot be used. */
int spool_open(const char *dir, char *why, size_t n);

/* What a delivery run needs free before it delivers: the envelope's
 * update (a new ID.env each time, so an inode) and the bounce it may
 * write. */
#define SPOOL_RUN_ROOM (256 * 1024)
#define SPOOL_RUN_INODES 16
/* Whether the spool's file system has room for need bytes and a run's
 * records besides: a new message takes only what leaves the flusher its
 * room, or the spool fills to the last block and no run can deliver,
 * bounce or expire anything. 1 when it has, or when it cannot tell. */
int spool_has_room(int dirfd, uint64_t need);
/* Creates a new message as tmp.ID, locked; fills m->id and m->data_fd.
 * -1 with errno set when it cannot. */
int spool_create(int dirfd, struct spool_msg *m);
/* Adds a target (copies the strings). */
void spool_add_target(struct spool_msg *m, const struct route_target *t,
		      const char *orig);
/* Writes the envelope of a created message; the message follows it.
 * -1 with errno set. */
int spool_begin_message(struct spool_msg *m);
/* Makes the message durable: synced, renamed to ID, directory synced.
 * -1 with errno set when it cannot (the caller then discards it). */
int spool_commit(int dirfd, struct spool_msg *m);
/* Writes the envelope's new state to ID.env (same commit order). */
int spool_update(int dirfd, const struct spool_msg *m);
/* Removes a message whose targets are all done; -1 with errno when ID
 * cannot be removed (its ID.env, the state after the commit, is kept). */
int spool_remove(int dirfd, const struct spool_msg *m);
/* Removes an uncommitted message and closes it. */
void spool_discard(int dirfd, struct spool_msg *m);

enum { SPOOL_OK = 0, SPOOL_BUSY = 1, SPOOL_GONE = 2, SPOOL_BAD = 3,
       SPOOL_TEMP = 4 };
/* Loads a committed message; with lock, takes its lock without waiting
 * (SPOOL_BUSY when another process holds it). SPOOL_BAD is a message
 * that cannot be read or parsed; SPOOL_TEMP one this process cannot read
 * now (out of descriptors or memory): it is sound. */
int spool_load(int dirfd, const char *id, int lock, struct spool_msg *m,
	       char *why, size_t n);
/* Opens and locks the message id without reading its envelope (which
 * may be damaged), for its removal: fills m->id and m->data_fd. */
int spool_lock(int dirfd, const char *id, struct spool_msg *m, char *why,
	       size_t n);
/* Removes the targets of the recipient orig (as the client gave it);
 * spool_update() records it. */
void spool_drop_rcpt(struct spool_msg *m, const char *orig);
void spool_msg_free(struct spool_msg *m);

/* The ids of committed messages, oldest first; removes what a process
 * that died left behind (tmp.ID of a session before its commit, ID.env of
 * a removal cut short). */
char **spool_list(int dirfd, unsigned *n);
/* Whether spool_list's empty answer was a failure to read the directory
 * (errno tells why), not an empty spool. */
int spool_list_failed(void);
void spool_list_free(char **ids, unsigned n);

const char *spool_state_name(enum sp_state s);

#endif
