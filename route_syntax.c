/*
 * route_syntax.c - the language of a route line (SPEC 6.1): its
 * patterns and its targets.
 *
 * Owns: a pattern's parts and kind, its domain in canonical form
 * (idna.h) and its key in a compiled index; the split of a line's words
 * into targets, each target's form (NAME, rewrite, host, mx, |command,
 * Maildir, reject, discard) and the diagnostics for one that is none;
 * the names and spool words of the kinds a resolution yields.
 *
 * Never: resolves an address (route.c does) or reads a table; it sees
 * one line's text at a time.
 */
#include "fmt.h"
#include "route_impl.h"
#include "idna.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Patterns                                                            */

/* The parts of a pattern or rewrite target, domain as written. */
static int pattern_parts(const char *s, size_t n, enum pat_kind *kind,
			 struct addr *a, const char **why)
{
	size_t where;
	if (n == 0) {
		*why = "empty pattern";
		return -1;
	}
	if (s[0] == '<') {
		*why = "write patterns without < >";
		return -1;
	}
	if (addr_parse(s, n, ADDR_PARTS | ADDR_UTF8, a, why, &where) != ADDR_OK)
		return -1;
	if (!a->has_at)
		*kind = PAT_NAME;
	else if (a->local[0] && a->domain[0])
		*kind = PAT_ADDR;
	else if (a->domain[0])
		*kind = PAT_DOMAIN;
	else if (a->local[0])
		*kind = PAT_LOCAL;
	else
		*kind = PAT_ALL;
	return 0;
}

/* The canonical form of domain into out, or -1 with the reason. */
static int pattern_domain(const char *domain, char *out, const char **why)
{
	static char reason[300];
	if (idna_canon(domain, out, ADDR_DOMAIN_MAX + 1, reason,
		       sizeof reason) != IDNA_OK) {
		*why = reason;
		return -1;
	}
	return 0;
}

int route_pattern_parse(const char *s, size_t n, enum pat_kind *kind,
			struct addr *a, const char **why)
{
	char canon[ADDR_DOMAIN_MAX + 1];
	if (pattern_parts(s, n, kind, a, why) < 0)
		return -1;
	if (a->domain[0]) {
		if (pattern_domain(a->domain, canon, why) < 0)
			return -1;
		memcpy(a->domain, canon, sizeof a->domain);
	}
	return 0;
}

void route_pattern_key(enum pat_kind kind, const char *local,
		       const char *domain, struct buf *out)
{
	size_t start = out->len;
	switch (kind) {
	case PAT_ADDR:
		buf_printf(out, "a:%s@%s", local, domain);
		break;
	case PAT_DOMAIN:
		buf_printf(out, "d:%s", domain);
		break;
	case PAT_LOCAL:
		buf_printf(out, "l:%s", local);
		break;
	case PAT_ALL:
		buf_adds(out, "*");
		break;
	case PAT_NAME:
		buf_printf(out, "n:%s", local);
		break;
	}
	for (size_t i = start; i < out->len; i++)
		out->s[i] = (char)ascii_lower((unsigned char)out->s[i]);
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */

/*
 * Splits the words of a route line into targets: commas separate targets
 * (inside unquoted words too); blanks join the words of one |command.
 * Returns the number of targets or -1 with why and the column.
 */
int route_split_targets(const struct cf_word *w, uint32_t nw, struct buf *b,
			 struct tgt *t, const char **why, uint32_t *col)
{
	int n = 0;
	int open = 0; /* a target has words and no comma yet */
	size_t *starts = xmalloc((MAX_TGTS + 1) * sizeof *starts);
	b->len = 0;
	buf_reserve(b, 16);
	for (uint32_t i = 0; i < nw; i++) {
		const char *s = w[i].s;
		uint32_t len = w[i].len;
		uint32_t j = 0;
		do {
			uint32_t k = j;
			if (!w[i].quoted)
				while (k < len && s[k] != ',')
					k++;
			else
				k = len;
			if (k > j) {
				if (open) {
					buf_addc(b, ' ');
				} else {
					if (n == MAX_TGTS) {
						*why = "more than 128 targets";
						*col = w[i].col;
						free(starts);
						return -1;
					}
					starts[n] = b->len;
					t[n].col = w[i].col + j;
					n++;
					open = 1;
				}
				buf_add(b, s + j, k - j);
			}
			if (k < len) { /* a comma */
				if (!open) {
					*why = "a target before ','";
					*col = w[i].col + k;
					free(starts);
					return -1;
				}
				buf_addc(b, 0);
				open = 0;
				k++;
				if (k == len && i + 1 == nw) {
					*why = "a target after the last ','";
					*col = w[i].col + k;
					free(starts);
					return -1;
				}
			}
			j = k;
		} while (j < len);
		if (w[i].quoted && len == 0) {
			*why = "a target, not an empty string";
			*col = w[i].col;
			free(starts);
			return -1;
		}
	}
	if (open)
		buf_addc(b, 0);
	for (int i = 0; i < n; i++)
		t[i].text = b->s + starts[i];
	free(starts);
	return n;
}

#define TARGET_FORMS                                                         \
	"a route target: NAME, user@domain, host, [host]:port, mx, "         \
	"|command, /path/Maildir/, reject or discard"

/* Whether a target with a ':' and no '@' was meant as host:port, so that
 * its diagnostic may be about the host form alone. */
static int meant_as_host(const char *s)
{
	size_t n = strcspn(s, ":");
	return s[0] == '[' || !strncmp(s, "unix:", 5) ||
	       (n > 0 && addr_domain_valid(s, n, 1));
}

/* Classifies one target text; -1 with why when it is none. */
int route_classify(const char *s, enum tkind *k, struct addr *rw,
		    const char **why)
{
	if (s[0] == '|') {
		*k = TK_CMD;
		if (!s[1] || s[1] == ' ') {
			*why = "a command after '|'";
			return -1;
		}
		return 0;
	}
	if (strchr(s, ' ')) {
		*why = "',' between targets (only a |command may contain "
		       "blanks)";
		return -1;
	}
	if (s[0] == '/') {
		*k = TK_MAILDIR;
		if (s[strlen(s) - 1] != '/') {
			*why = "a Maildir path ending in '/' (mbox files are "
			       "not supported)";
			return -1;
		}
		return 0;
	}
	if (!strcasecmp(s, "mx")) {
		*k = TK_MX;
		return 0;
	}
	if (!strcasecmp(s, "reject")) {
		*k = TK_REJECT;
		return 0;
	}
	if (!strcasecmp(s, "discard")) {
		*k = TK_DISCARD;
		return 0;
	}
	if (s[0] == '[' || (strchr(s, ':') && !strchr(s, '@'))) {
		*k = TK_HOST;
		*why = cf_relay_address_error(s);
		if (*why && !meant_as_host(s)) {
			*why = !strncmp(s, ":include:", 9)
				       ? TARGET_FORMS " (a file of routes is "
						      "included with a line "
						      "file \"PATH\")"
				       : TARGET_FORMS;
			return -1;
		}
		if (*why && !strncmp(*why, "expected ", 9))
			*why += 9; /* the caller says "expected" */
		if (!*why && !strncmp(s, "unix:", 5))
			*why = "a host; a unix socket needs a [relay]";
		return *why ? -1 : 0;
	}
	if (strchr(s, '@') || s[0] == '"') {
		*k = TK_REWRITE;
		enum pat_kind pk;
		/* the rewrite keeps the domain as written; it must be valid */
		char canon[ADDR_DOMAIN_MAX + 1];
		static char msg[400];
		if (pattern_parts(s, strlen(s), &pk, rw, why) < 0) {
			fmt_snprintf(msg, sizeof msg, "a rewrite (user@domain, "
						  "user@ or @domain): %s",
				 *why);
			*why = msg;
			return -1;
		}
		if (rw->domain[0] && pattern_domain(rw->domain, canon, why) < 0) {
			fmt_snprintf(msg, sizeof msg, "a rewrite to a valid domain "
						  "(%s)",
				 *why);
			*why = msg;
			return -1;
		}
		if (pk == PAT_ALL) {
			*why = "a rewrite that changes something ('@' alone "
			       "keeps the address as it is)";
			return -1;
		}
		if (pk == PAT_NAME) {
			*k = TK_NAME;
			return 0;
		}
		return 0;
	}
	/* a host name, a local name or a section's: none has an empty
	 * label (mail..example.net, .foo); a host name may end in the
	 * root's dot */
	if (s[0] == '.' || strstr(s, "..")) {
		*why = "a host name, a local name, or the name of a [pipe] or "
		       "[relay] (no empty label between dots)";
		return -1;
	}
	*k = TK_NAME;
	return 0;
}

int route_check_targets(struct cf *cf, const struct cf_word *w, uint32_t nw,
			const struct cf_pos *pos)
{
	struct buf b = {0}, tmp = {0};
	struct tgt t[MAX_TGTS];
	const char *why = NULL;
	uint32_t col = 0;
	int errors = 0;
	int n = route_split_targets(w, nw, &b, t, &why, &col);
	struct cf_pos p = *pos;
	if (n < 0) {
		p.col = col;
		cf_error(cf, &p, "expected %s", why);
		errors++;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		enum tkind k;
		struct addr rw;
		if (route_classify(t[i].text, &k, &rw, &why) < 0) {
			p.col = t[i].col;
			tmp.len = 0;
			buf_add_escaped(&tmp, t[i].text, strlen(t[i].text));
			cf_error(cf, &p, "expected %s, found '%s'", why, tmp.s);
			errors++;
		}
	}
	buf_free(&b);
	buf_free(&tmp);
	return errors;
}

/* Each kind's two spellings: the spool's word is a file format that
 * queued messages already carry, the name is what --route prints. */
static const struct {
	const char *word, *name;
} kind_names[] = {
	[T_PIPE] = {"pipe", "pipe"},
	[T_RELAY] = {"relay", "relay"},
	[T_USER] = {"user", "local user"},
	[T_HOST] = {"host", "host"},
	[T_MX] = {"mx", "mx"},
	[T_CMD] = {"cmd", "command"},
	[T_MAILDIR] = {"maildir", "maildir"},
	[T_DISCARD] = {"discard", "discard"},
};

const char *route_target_kind_name(enum target_kind k)
{
	return kind_names[k].name;
}

void route_target_text(struct buf *b, enum target_kind k, const char *via,
		       const char *arg, const char *addr)
{
	const char *at = strrchr(addr, '@');
	const char *what = k == T_MX	     ? (at ? at + 1 : "")
			   : k == T_DISCARD ? ""
			   : via && via[0]  ? via
			   : arg	    ? arg
					    : "";
	buf_printf(b, "%s%s%s", route_target_kind_name(k), what[0] ? " " : "",
		   what);
}

const char *route_target_kind_word(enum target_kind k)
{
	return kind_names[k].word;
}

int route_target_kind_parse(const char *word, enum target_kind *k)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof *kind_names; i++)
		if (kind_names[i].word && !strcmp(word, kind_names[i].word)) {
			*k = (enum target_kind)i;
			return 0;
		}
	return -1;
}
