/*
 * handoff.c - what becomes of a received message (see handoff.h).
 *
 * Owns: choosing between a temporary file and the spool, the Received
 * header's place at the top, the message's verdict, plan_deliver() while
 * the client waits, spool_commit() before the 250, and the child
 * that delivers a committed message (SPEC 7 path 3); for a proxied
 * transaction (proxy.c), the target's verdict as the client's answer.
 *
 * Never: acknowledges what was not delivered or committed, or holds the
 * client's connection in the delivery child.
 */
#include "handoff.h"
#include "fmt.h"
#include "proxy.h"
#include "session_state.h"
#include "flush.h"
#include "log.h"
#include "milter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECEIVED 100
/* Deliveries of one session's messages that run at once; the next
 * message waits for the flusher (postmaster-flush.timer). */
#define MAX_DELIVERIES 8

/* Drops the spooled message being received, if it was not committed. */
void handoff_abandon(struct session *s)
{
	if (s->sm_uncommitted) {
		spool_discard(s->spool_fd, &s->sm); /* closes data_fd */
		s->data.fd = -1;
		s->sm_uncommitted = 0;
	}
	s->sm.data_fd = -1; /* a committed one's fd is data_fd's business */
	spool_msg_free(&s->sm);
}

static const char *greeting_name(enum proto p)
{
	return p == P_HELO ? "HELO" : p == P_EHLO ? "EHLO" : "LHLO";
}

/* SMTP: whether the transaction goes to the spool. A recipient the
 * proxy gave its target sends it there (the copy for a takeover, and
 * after one the spool delivers); one the target refused has left the
 * transaction and decides nothing. */
static int smtp_spooled(const struct session *s)
{
	return s->spooled || proxy_took_rcpts(s);
}

/* Whether any recipient's delivery reads the stored message. */
static int message_needed(const struct session *s)
{
	if (s->proto != P_LHLO)
		return smtp_spooled(s) || s->plan.kind != RUN_NONE;
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].spooled || s->rcpts[i].plan->kind != RUN_NONE)
			return 1;
	return 0;
}

static int spool_needed(const struct session *s)
{
	if (s->proto != P_LHLO)
		return smtp_spooled(s);
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (s->rcpts[i].spooled)
			return 1;
	return 0;
}

/* Creates the spool file and writes the envelope of the spooled
 * recipients' targets, which the message follows. */
static int spool_begin(struct session *s, const char *quarantine)
{
	struct spool_msg *m = &s->sm;
	handoff_abandon(s);
	memset(m, 0, sizeof *m);
	m->data_fd = -1;
	/* what the client declared (SIZE=) must fit besides the room the
	 * flusher keeps to record and bounce: a spool filled to its last
	 * block by sessions would deliver nothing more */
	if (!spool_has_room(s->spool_fd,
			    s->declared_size ? s->declared_size : 1)) {
		errno = ENOSPC;
		return -1;
	}
	if (spool_create(s->spool_fd, m) < 0)
		return -1;
	s->data.fd = m->data_fd;
	s->sm_uncommitted = 1;
	m->from = xstrdup(s->from);
	m->origin = SP_CLIENT;
	m->binary = s->body == BODY_BINARYMIME;
	m->eightbit = s->body == BODY_8BITMIME;
	m->smtputf8 = s->smtputf8;
	m->dsn_ret = s->dsn_ret;
	m->envid = s->envid[0] ? xstrdup(s->envid) : NULL;
	m->sid = xstrdup(s->sid);
	char client[96];
	fmt_snprintf(client, sizeof client, s->peer_is_pipe ? "local" : "[%s]",
		 s->peer);
	m->client = xstrdup(client);
	m->smtpd = xstrdup(s->smtpd && s->smtpd->name ? s->smtpd->name : "");
	m->quarantine = quarantine ? xstrdup(quarantine) : NULL;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		const struct kept_rcpt *rc = &s->rcpts[i];
		if (s->proto == P_LHLO && !rc->spooled)
			continue;
		for (uint32_t k = 0; k < rc->nt; k++) {
			/* a discard too: the run logs it and reports it to
			 * NOTIFY=SUCCESS, and the envelope is never empty */
			const struct kept_target *kt = &rc->t[k];
			struct route_target t = {.kind = kt->kind,
						 .arg = kt->arg,
						 .sec = kt->sec};
			fmt_snprintf(t.addr, sizeof t.addr, "%s", kt->addr);
			spool_add_target(m, &t, rc->addr);
			struct spool_target *st = &m->t[m->nt - 1];
			st->notify = rc->notify;
			st->orcpt = rc->orcpt ? xstrdup(rc->orcpt) : NULL;
		}
	}
	if (spool_begin_message(m) == 0)
		return 0;
	int e = errno;
	handoff_abandon(s); /* a DATA after this 452 starts afresh */
	errno = e;
	return -1;
}

/* RFC 6409 8, for a client that authenticated on a submission listener:
 * the store drops Bcc and adds what the header lacks, at core.hostname
 * as --inject's (a listener's name may be no domain: "submission"). */
static void start_fix_ups(struct session *s)
{
	static unsigned n; /* transactions of this session */
	fmt_snprintf(s->msgid, sizeof s->msgid, "%lld.%s.%u", (long long)time(NULL),
		 s->sid, ++n);
	s->data.fix = (struct submitfix){
		.on = 1,
		.from = s->from,
		.id = s->msgid,
		.host = s->cf->core->v[CORE_HOSTNAME].s,
		.crlf = s->body == BODY_BINARYMIME,
	};
}

/* Opens the data file and writes the Received header (RFC 5321 4.4). */
int handoff_begin(struct session *s)
{
	envelope_spool_duplicates(s);
	if (s->milters) {
		/* the milters read it first; then it may go to the spool */
		s->data.fd = tmpfile_open();
	} else if (spool_needed(s)) {
		if (spool_begin(s, NULL) < 0)
			return -1;
	} else {
		s->data.fd = message_needed(s) ? tmpfile_open() : -1;
	}
	if (s->data.fd < 0 && (message_needed(s) || s->milters))
		return -1;
	data_store_reset(&s->data);
	s->data.max = s->max_size;
	s->data.lf_eol = s->body != BODY_BINARYMIME;
	memset(&s->dm, 0, sizeof s->dm);
	s->dm.reject_bare = s->bare_reject;
	char proto[24];
	struct received_info ri = {
		.helo = s->helo,
		.peer = s->peer,
		.peer_is_pipe = s->peer_is_pipe,
		.by = s->name,
		.protocol = data_protocol(greeting_name(s->proto), s->smtputf8,
					  s->tls_on, s->auth_user[0] != 0, proto,
					  sizeof proto),
		.id = s->sid,
		.rcpt = s->nrcpt == 1 ? s->rcpts[0].addr : NULL,
		.spf = s->received_spf.len ? s->received_spf.s : NULL,
		.crlf = s->body == BODY_BINARYMIME,
		.when = time(NULL),
	};
	s->arrival = ri.when;
	struct buf h = {0};
	session_filters_headers(s, &h, ri.crlf ? "\r\n" : "\n");
	data_received(&h, &ri);
	/* the header does not count against the client's SIZE, nor as one of
	 * the client's Received headers */
	data_store_write_ours(&s->data, h.s, h.len);
	s->header_size = h.len;
	s->data.hw.on = 1;
	buf_free(&h);
	if (s->submission && s->auth_user[0])
		start_fix_ups(s);
	return 0;
}

/* size= of the log lines: the message as stored and delivered, our
 * header fields and the fix-ups included (the flusher's size= of the
 * spooled copy) */
static const char *size_text(const struct session *s, char *buf, size_t n)
{
	fmt_snprintf(buf, n, "%llu", (unsigned long long)s->data.stored);
	return buf;
}

/* delay= of the log lines: whole seconds since the data began, as the
 * spool's lines count them from the message's arrival */
static const char *delay_text(const struct session *s, char *buf, size_t n)
{
	fmt_snprintf(buf, n, "%lld", (long long)(time(NULL) - s->arrival));
	return buf;
}

/* The client's NOTIFY for a log line, NULL when it gave none. */
static const char *notify_words(const struct kept_rcpt *rc, char words[32])
{
	return rc->notify ? dsn_notify_text(rc->notify, words) : NULL;
}

static void log_result(struct session *s, const struct kept_rcpt *rc,
		       const struct reply *r)
{
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4];
	char size[24], delay[24], words[32];
	struct buf rep = {0}, tgt = {0};
	buf_printf(&rep, "%d %s %s", r->code, r->dsn, r->text);
	log_event(r->code < 300 ? LOG_L_INFO : LOG_L_WARNING, "from",
		  angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "target",
		  envelope_targets_text(rc, &tgt), "status",
		  r->code < 300 ? "sent" : r->code < 500 ? "deferred" : "rejected",
		  "dsn", r->dsn, "dsn-notify", notify_words(rc, words), "size",
		  size_text(s, size, sizeof size), "delay",
		  delay_text(s, delay, sizeof delay), "reply", rep.s, NULL);
	buf_free(&rep);
	buf_free(&tgt);
}

/* LMTP: a recipient a milter deleted, answered and delivered to nobody */
static void log_deleted(struct session *s, const struct kept_rcpt *rc)
{
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4];
	log_event(LOG_L_INFO, "from", angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "status", "discarded",
		  "reason", "deleted by a milter", NULL);
}

/* Out of space is 452 4.3.1 (RFC 3463); any other failure 451 4.3.0. */
void handoff_storage_reply(struct reply *r, int err)
{
	if (err == EFBIG) { /* the file size limit: too big for good */
		reply_code(r, 552, ESC_MESSAGE_TOO_BIG_FOR_SYSTEM);
		fmt_snprintf(r->text, sizeof r->text,
			     "Message too big for this system: %s",
			     strerror(err));
		return;
	}
	if (err == ENOSPC || err == EDQUOT)
		reply_code(r, 452, ESC_MAIL_SYSTEM_FULL);
	else
		reply_code(r, 451, ESC_OTHER_MAIL_SYSTEM_STATUS);
	fmt_snprintf(r->text, sizeof r->text, "%s: %s",
		 r->code == 452 ? "Insufficient system storage"
				: "Cannot store the message",
		 strerror(err));
}

/* What the data itself decides, for every recipient alike. */
static int data_verdict(struct session *s, const struct msg *m,
			struct reply *r)
{
	if (s->data.toobig) {
		reply_code(r, 552, ESC_MESSAGE_TOO_BIG_FOR_SYSTEM);
		fmt_snprintf(r->text, sizeof r->text,
			 "Message size exceeds fixed maximum message size");
		return 1;
	}
	if (s->data.failed) {
		handoff_storage_reply(r, s->data.err);
		return 1;
	}
	if (s->body != BODY_BINARYMIME && s->bare_reject && s->dm.saw_bare) {
		reply_code(r, 550, ESC_SYNTAX_ERROR);
		fmt_snprintf(r->text, sizeof r->text,
			 "Message refused: bare CR or LF received");
		return 1;
	}
	(void)m;
	if (s->data.hw.received >= MAX_RECEIVED) {
		reply_code(r, 554, ESC_ROUTING_LOOP);
		fmt_snprintf(r->text, sizeof r->text,
			 "Too many Received headers: mail loop");
		return 1;
	}
	return 0;
}

static int loops_for(const struct session *s, const char *rcpt,
		     struct reply *r)
{
	if (!headers_delivered_to(&s->data.hw, rcpt))
		return 0;
	reply_code(r, 554, ESC_ROUTING_LOOP);
	fmt_snprintf(r->text, sizeof r->text, "<%s>: mail forwarding loop", rcpt);
	return 1;
}

/* Delivery of a committed message starts at once, in a child that holds
 * the message's lock and not the client's connection (SPEC 7 path 3):
 * neither the client nor the launcher waits for it. One fork, not a
 * double fork: a launcher waits only for its own children, and the
 * session no longer waits for an intermediate one before it reads the
 * next command. Earlier children that are done are reaped here, the rest
 * by init once the session exits. */
/* SPEC 1: the session that sendmail started on a socket pair (its client
 * is its parent) has the caller's standard error, which a caller that
 * reads sendmail's output to its end would hold open for as long as the
 * delivery takes: the delivery lets go of it, unless the session logs
 * there (logger = stderr). */
static int holds_callers_stderr(const struct session *s)
{
	const char *logger = s->smtpd ? s->smtpd->v[SMTPD_LOGGER].s
				      : s->cf->core->v[CORE_LOGGER].s;
	return s->cred.known && s->cred.pid == getppid() &&
	       strcmp(logger, "stderr") != 0;
}

static void start_delivery(struct session *s, const struct reply *known)
{
	while (s->deliveries && waitpid(-1, NULL, WNOHANG) > 0)
		s->deliveries--;
	if (s->deliveries >= MAX_DELIVERIES) {
		/* a client that sends faster than its mail goes out does not
		 * make the session fork without end: the flusher has it */
		log_event(LOG_L_INFO, "id", s->sm.id, "event", "left-to-flush",
			  "reason", "the session's deliveries are all busy",
			  NULL);
		return;
	}
	int drop_stderr = holds_callers_stderr(s);
	pid_t pid = fork();
	if (pid > 0)
		s->deliveries++;
	if (pid < 0) /* safe in the spool: the flusher delivers it */
		log_event(LOG_L_WARNING, "id", s->sm.id, "event",
			  "left-to-flush", "reason", strerror(errno), NULL);
	if (pid != 0)
		return;
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* the journal's stream carries the delivery's log lines; a client's
	 * socket (inetd) must not */
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    ((drop_stderr || !stderr_may_log()) && dup2(null, 2) < 0)) {
		/* it would hold the client's connection open until it
		 * ends: the flusher delivers the message */
		log_event(LOG_L_WARNING, "id", s->sm.id, "event",
			  "left-to-flush", "reason", strerror(errno), NULL);
		log_close();
		_exit(0);
	}
	if (s->io.rfd > 2)
		close(s->io.rfd);
	if (s->io.wfd > 2 && s->io.wfd != s->io.rfd)
		close(s->io.wfd);
	struct spool_msg m;
	char why[256];
	if (spool_load(s->spool_fd, s->sm.id, 0, &m, why, sizeof why) !=
	    SPOOL_OK) {
		log_event(LOG_L_WARNING, "id", s->sm.id, "event",
			  "left-to-flush", "reason", why, NULL);
	} else {
		close(m.data_fd);
		m.data_fd = s->data.fd; /* the fd that holds the lock */
		if (known)
			flush_message_known(s->cf, s->spool_fd, &m, known,
					    proxy_remote(s),
					    proxy_remote_tls(s));
		else
			flush_message(s->cf, s->spool_fd, &m, FLUSH_ALL);
	}
	log_close();
	_exit(0);
}

/* Commits the spooled recipients' targets; 0 when the message is safe. */
static int spool_transaction(struct session *s, struct reply *r)
{
	struct spool_msg *m = &s->sm;
	if (data_store_flush(&s->data) < 0 || spool_commit(s->spool_fd, m) < 0) {
		handoff_storage_reply(r, s->data.failed ? s->data.err : errno);
		return -1;
	}
	s->sm_uncommitted = 0;
	reply_code(r, 250, ESC_OTHER);
	fmt_snprintf(r->text, sizeof r->text, "Ok: queued as %s", m->id);
	return 0;
}

/*
 * LMTP: a spooled recipient that the message already reached (our
 * Delivered-To for it) gets loop[i], 554, and leaves the envelope; the
 * others are committed (SPEC 7: each recipient stands alone). 0 when the
 * spool holds the message for them, else -1 with queued set (or none
 * left to hold it for).
 */
static int spool_lmtp(struct session *s, struct reply *loop,
		      struct reply *queued)
{
	unsigned left = 0, looped = 0;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		if (!s->rcpts[i].spooled)
			continue;
		if (loops_for(s, s->rcpts[i].addr, &loop[i]))
			looped++;
		else
			left++;
	}
	if (!left)
		return -1;
	if (!looped)
		return spool_transaction(s, queued);
	/* the envelope without the looping recipients is in place before
	 * the message is committed: whenever this process dies, no run
	 * finds them (an ID.env beside tmp.ID is the session's, spool.c) */
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (loop[i].code)
			spool_drop_rcpt(&s->sm, s->rcpts[i].addr);
	if (spool_update(s->spool_fd, &s->sm) < 0) {
		handoff_storage_reply(queued, errno);
		spool_remove(s->spool_fd, &s->sm);
		return -1;
	}
	if (spool_transaction(s, queued) == 0)
		return 0;
	spool_remove(s->spool_fd, &s->sm); /* the envelope, uncommitted */
	return -1;
}

static void log_queued(struct session *s, const struct kept_rcpt *rc)
{
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4], size[24], delay[24],
		words[32];
	struct buf tgt = {0};
	log_event(LOG_L_INFO, "id", s->sm.id, "from",
		  angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "target",
		  envelope_targets_text(rc, &tgt), "status", "queued",
		  "dsn-notify", notify_words(rc, words), "size",
		  size_text(s, size, sizeof size), "delay",
		  delay_text(s, delay, sizeof delay), NULL);
	buf_free(&tgt);
}

/* A proxied recipient's verdict: the target's, which the client has; a
 * refusal, 4xx too, is "rejected" (nothing of it is queued here). */
static void log_proxied(struct session *s, const struct kept_rcpt *rc,
			const struct reply *r)
{
	char f[ADDR_PATH_MAX + 4], t[ADDR_PATH_MAX + 4], size[24], delay[24],
		words[32];
	struct buf rep = {0}, tgt = {0};
	buf_printf(&rep, "%d %s %s", r->code, r->dsn, r->text);
	log_event(r->code < 300 ? LOG_L_INFO : LOG_L_WARNING, "from",
		  angle(s->from, f, sizeof f), "to",
		  angle(rc->addr, t, sizeof t), "target",
		  envelope_targets_text(rc, &tgt), "relay", proxy_remote(s),
		  "tls", proxy_remote_tls(s) ? "yes" : "no", "via", "proxy",
		  "status", r->code < 300 ? "sent" : "rejected", "dsn", r->dsn,
		  "dsn-notify", notify_words(rc, words), "size",
		  size_text(s, size, sizeof size), "delay",
		  delay_text(s, delay, sizeof delay), "reply", rep.s, NULL);
	buf_free(&rep);
	buf_free(&tgt);
}

/*
 * An LMTP target accepted some recipients of an SMTP client's message and
 * not others: the client gets 250 once the spool holds the message with
 * the accepted recipients done, and the delivery process records the
 * others' replies as its own attempt (4xx retried, 5xx bounced; without
 * one, the flusher tries them); or the spool's failure when it cannot,
 * and the client sends it again (the recipients who got it get it twice:
 * nothing is lost).
 */
static void commit_failures(struct session *s, const struct reply *res,
			    struct reply *r)
{
	if (spool_transaction(s, r) < 0)
		return;
	/* in the envelope before the 250, whatever becomes of the delivery
	 * process: no run sends them the message again */
	for (unsigned i = 0; i < s->nrcpt && i < s->sm.nt; i++) {
		if (res[i].code >= 300)
			continue;
		s->sm.t[i].state = SP_DELIVERED;
		log_proxied(s, &s->rcpts[i], &res[i]);
	}
	if (spool_update(s->spool_fd, &s->sm) < 0)
		log_event(LOG_L_ERR, "id", s->sm.id, "event", "spool-error",
			  "reason", strerror(errno), NULL);
	unsigned failed = 0;
	for (unsigned i = 0; i < s->nrcpt; i++)
		failed += res[i].code >= 300;
	fmt_snprintf(r->text, sizeof r->text,
		 "Ok: delivered to %u, queued as %s for %u", s->nrcpt - failed,
		 s->sm.id, failed);
}

/*
 * SPEC 7 path 2: the target's verdict is the client's. 1 when the client
 * has its answers; 0 when the spool path takes the message (the proxy let
 * go of it: it is committed there before any 250). held is the message
 * as the milters left it, sent now; NULL when it went onward as it came.
 */
static int deliver_proxied(struct session *s, int refused,
			   const struct msg *held,
			   void (*answer)(struct session *, const struct reply *))
{
	/* a loop is the spool path's to answer: in LMTP for that recipient
	 * alone, and the target must not see the message at all */
	struct reply loop;
	for (unsigned i = 0; !refused && i < s->nrcpt; i++)
		refused = loops_for(s, s->rcpts[i].addr, &loop);
	/* milters that changed the envelope or quarantined the message
	 * leave it to the spool, which routes and holds */
	if (refused || s->envelope_changed || s->sm.quarantine) {
		proxy_abort(s); /* no final dot: nothing is delivered */
		return 0;
	}
	struct reply *res = xcalloc(s->nrcpt ? s->nrcpt : 1, sizeof *res);
	if (proxy_finish(s, res, held) < 0) {
		free(res);
		return 0;
	}
	unsigned ok = 0, same = 1;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		ok += res[i].code < 300;
		same &= res[i].code == res[0].code;
	}
	int mixed = s->proto != P_LHLO && ok < s->nrcpt && (ok || !same);
	/* a mixed verdict's failures are logged by the spool's run that
	 * records them, its deliveries by commit_failures() */
	for (unsigned i = 0; i < s->nrcpt && !mixed; i++)
		log_proxied(s, &s->rcpts[i], &res[i]);
	if (s->proto == P_LHLO) {
		for (unsigned i = 0; i < s->nrcpt; i++)
			answer(s, &res[i]);
	} else if (ok == s->nrcpt || (!ok && same)) {
		answer(s, &res[0]);
	} else {
		struct reply r;
		commit_failures(s, res, &r);
		answer(s, &r);
		if (r.code < 300) {
			io_flush(&s->io);
			start_delivery(s, res);
		}
	}
	free(res);
	io_flush(&s->io);
	return 1;
}

/* The message moves from its temporary file to a new spool file. */
RARE_PATH static int respool(struct session *s, struct msg *m, const char *quarantine,
		   struct reply *r)
{
	int msgfd = s->data.fd;
	off_t from = m->off;
	s->data.fd = -1;
	if (spool_begin(s, quarantine) < 0) {
		handoff_storage_reply(r, errno);
		close(msgfd);
		return -1;
	}
	char buf[16384];
	ssize_t n;
	while ((n = pread(msgfd, buf, sizeof buf, from)) > 0) {
		if (write_all(s->data.fd, buf, (size_t)n) < 0)
			break;
		from += n;
	}
	int e = errno;
	close(msgfd);
	if (n != 0) {
		handoff_storage_reply(r, e);
		return -1;
	}
	m->fd = s->data.fd;
	m->off = s->sm.data_off;
	return 0;
}

/* A local submitter (sendmail, cron, mail(1)) does not retry what a
 * mailer refused for now, as an MTA would: the spool takes the message
 * over and retries it. 0 with *queued when it holds the message. */
static int take_over_for_later(struct session *s, struct msg *m,
			       struct reply *queued)
{
	struct reply r;
	s->spooled = 1;
	if (respool(s, m, NULL, &r) == 0 && spool_transaction(s, queued) == 0)
		return 0;
	s->spooled = 0;
	return -1;
}

/* The milters' end of message (milter.h): 0 to deliver m (perhaps a new
 * file, perhaps new recipients), 1 refused with r, 2 discarded with r. */
static int milters_decide(struct session *s, struct msg *m, struct reply *r)
{
	int out;
	const char *quarantine;
	enum milter_verdict v = milter_end_of_message(s, s->data.fd, m->off,
						      (off_t)s->header_size,
						      &out, &quarantine, r);
	if (v == MILTER_REFUSE)
		return 1;
	unsigned live = 0;
	for (unsigned i = 0; i < s->nrcpt; i++)
		live += !s->rcpts[i].milter_deleted;
	if (v == MILTER_DISCARD || live == 0) {
		char f[ADDR_PATH_MAX + 4];
		log_event(LOG_L_INFO, "from", angle(s->from, f, sizeof f),
			  "status", "discarded", "reason",
			  v == MILTER_DISCARD ? "milter discard"
					      : "milter removed every recipient",
			  NULL);
		reply_set(r, 250, ESC_OTHER, "Ok: discarded");
		return 2;
	}
	if (out >= 0) {
		close(s->data.fd);
		s->data.fd = m->fd = out;
		m->off = 0;
		m->size = lseek(out, 0, SEEK_END);
		if (m->size < 0) { /* the milters' message cannot be sized */
			handoff_storage_reply(r, errno);
			return 1;
		}
		s->data.stored = (uint64_t)m->size; /* the milters' message */
	}
	envelope_spool_duplicates(s); /* an added address given before */
	if (quarantine) {
		/* held in the spool until --release */
		s->spooled = 1;
		for (unsigned i = 0; i < s->nrcpt; i++)
			s->rcpts[i].spooled = !s->rcpts[i].milter_deleted;
	}
	if (spool_needed(s) && respool(s, m, quarantine, r) < 0)
		return 1;
	if (quarantine)
		log_event(LOG_L_WARNING, "id", s->sm.id, "event", "quarantine",
			  "reason", quarantine, NULL);
	return 0;
}

void handoff_refuse(struct session *s, const struct reply *r,
		    void (*answer)(struct session *, const struct reply *),
		    int log)
{
	for (unsigned i = 0; log && i < s->nrcpt; i++)
		log_result(s, &s->rcpts[i], r);
	if (s->proto != P_LHLO) {
		answer(s, r);
		return;
	}
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (!s->rcpts[i].milter_added)
			answer(s, r);
}

/* LMTP: each recipient's own reply, in RCPT order, and the delivery of
 * those neither refused, looping nor spooled (common: the transaction's
 * reply so far; queued: a spooled recipient's; looping: each spooled
 * recipient's loop, or NULL). */
static void answer_each_recipient(struct session *s, struct msg *m,
				  const struct reply *common,
				  const struct reply *queued,
				  const struct reply *looping, int refused,
				  int spooled,
				  void (*answer)(struct session *,
						 const struct reply *))
{
	/* one address given several ways is delivered once; each RCPT
	 * still has its reply (RFC 2033 4.2), the first one's */
	int *slot;
	unsigned nslots = envelope_shared_runs(s, &slot);
	struct reply *shared = nslots ? xcalloc(nslots, sizeof *shared) : NULL;
	for (unsigned i = 0; i < s->nrcpt; i++) {
		struct reply r = *common;
		int sl = slot ? slot[i] : -1;
		if (s->rcpts[i].milter_deleted) {
			if (!refused)
				reply_set(&r, 250, ESC_OTHER, "Ok: discarded");
			log_deleted(s, &s->rcpts[i]);
		} else if (looping && looping[i].code) {
			r = looping[i];
			log_result(s, &s->rcpts[i], &r);
		} else if (s->rcpts[i].spooled) {
			r = *queued;
			if (spooled)
				log_queued(s, &s->rcpts[i]);
			else
				log_result(s, &s->rcpts[i], &r);
		} else if (sl >= 0 && shared[sl].code) {
			r = shared[sl];
			log_result(s, &s->rcpts[i], &r);
		} else {
			if (!refused && !loops_for(s, s->rcpts[i].addr, &r)) {
				/* the replies known so far go out before this
				 * run: a client's timer restarts with each
				 * (RFC 2033 4.2) */
				io_flush(&s->io);
				plan_deliver(s->rcpts[i].plan, m, s->timeout,
					     &r);
			}
			log_result(s, &s->rcpts[i], &r);
			if (sl >= 0)
				shared[sl] = r;
		}
		if (!s->rcpts[i].milter_added)
			answer(s, &r);
	}
	free(shared);
	free(slot);
}

void handoff_deliver(struct session *s,
		     void (*answer)(struct session *, const struct reply *))
{
	struct msg m = {
		.fd = s->data.fd,
		.from = s->from,
		.sid = s->sid,
		.hostname = s->name,
		.binary = s->body == BODY_BINARYMIME,
	};
	struct reply common;
	data_store_end(&s->data);
	if (data_store_flush(&s->data) < 0)
		s->data.failed = 1;
	if (s->sm_uncommitted)
		m.off = s->sm.data_off;
	off_t end = s->data.fd >= 0 ? lseek(s->data.fd, 0, SEEK_END) : m.off;
	if (end < 0) { /* a size of -1 would deliver the headers alone */
		s->data.failed = 1;
		s->data.err = errno;
		end = m.off;
	}
	m.size = end - m.off;
	int refused = data_verdict(s, &m, &common);
	if (!refused && s->milters) {
		refused = milters_decide(s, &m, &common);
		if (refused == 2) {
			proxy_abort(s); /* nothing is delivered */
			handoff_refuse(s, &common, answer, 0); /* logged */
			handoff_abandon(s); /* gone before the client hears */
			io_flush(&s->io);
			return;
		}
	}
	if (s->px && deliver_proxied(s, refused, s->milters ? &m : NULL,
				     answer))
		return;
	struct reply queued = common;
	struct reply *looping = NULL; /* LMTP: each spooled recipient's loop */
	int spooled = 0;
	if (!refused && spool_needed(s) && s->proto == P_LHLO) {
		looping = xcalloc(s->nrcpt, sizeof *looping);
		spooled = spool_lmtp(s, looping, &queued) == 0;
	} else if (!refused && spool_needed(s)) {
		for (unsigned i = 0; i < s->nrcpt && !refused; i++)
			refused = loops_for(s, s->rcpts[i].addr, &common);
		if (refused)
			queued = common;
		else
			spooled = spool_transaction(s, &queued) == 0;
	}
	if (s->proto == P_LHLO) {
		answer_each_recipient(s, &m, &common, &queued, looping,
				      refused, spooled, answer);
		free(looping);
	} else if (smtp_spooled(s)) {
		for (unsigned i = 0; i < s->nrcpt; i++) {
			if (spooled)
				log_queued(s, &s->rcpts[i]);
			else
				log_result(s, &s->rcpts[i], &queued);
		}
		answer(s, &queued);
	} else {
		struct reply r = common;
		int loop = 0;
		for (unsigned i = 0; !refused && !loop && i < s->nrcpt; i++)
			loop = loops_for(s, s->rcpts[i].addr, &r);
		if (!refused && !loop)
			plan_deliver(&s->plan, &m, s->timeout, &r);
		for (unsigned i = 0; i < s->nrcpt; i++)
			log_result(s, &s->rcpts[i], &r);
		if (!refused && !loop && r.code / 100 == 4 && s->cred.known &&
		    take_over_for_later(s, &m, &queued) == 0) {
			spooled = 1;
			for (unsigned i = 0; i < s->nrcpt; i++)
				log_queued(s, &s->rcpts[i]);
			answer(s, &queued);
		} else {
			answer(s, &r);
		}
	}
	if (spooled) {
		io_flush(&s->io); /* the client has its answer before the fork */
		start_delivery(s, NULL);
	} else {
		/* a spool file not committed is gone before the client has
		 * the answer: a 452 means the space is free again */
		handoff_abandon(s);
	}
	io_flush(&s->io);
}
