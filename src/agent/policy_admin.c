/* `canopy policy ...` and `canopy audit` inside the agent.
 *
 * Admin requests (wire/admin.h; cmd "policy", args[0] the operation):
 *   stamp                      -> "VERSION WRITER": a fresh version for a
 *                                 write (cn_policy_stamp) and this node's name
 *   apply DOC                  DOC = base64 of a signed cn_doc_encode'd
 *                                 document; cn_policy_apply_local, then the
 *                                 fleet is told (cn_node_policy_announce)
 *   check DOC                  the same as a dry run (cn_policy_check_local)
 *                                 with a line diff of the specs as JSON
 *   get KIND/NAME [VERSION]    the winner or a kept version
 *   raw KIND/NAME [VERSION]    -> base64 of that version's encoded form (the
 *                                 CLI's rollback reads the old body from it)
 *   list [KIND]                every winner, tombstones included
 *   history KIND/NAME          kept versions, oldest first
 * cmd "audit", args [] or ["verify"].
 * The agent never sees an operator's secret key: the CLI signs.
 * Replies are text, or JSON with CN_ADMIN_JSON; field names are a public
 * interface (add, never rename). */
#include "agent/agent.h"
#include "cli/mpjson.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/admin.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The largest argument: base64 of the largest encoded document. */
static_assert(4 * ((CN_DOC_WIRE_MAX + 2) / 3) <= CN_ADMIN_ARG_MAX,
	      "an encoded policy document fits one admin argument as base64");

typedef struct target {
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
} target;

/* "KIND/NAME" (the name may hold more slashes). */
static int parse_target(cn_agent *a, const char *s, size_t n, target *t)
{
	const char *slash = memchr(s, '/', n);
	size_t kl = slash ? (size_t)(slash - s) : 0;
	if (slash == NULL || !cn_doc_kind_ok(s, kl) || !cn_doc_name_ok(slash + 1, n - kl - 1)) {
		cn_buf_printf(&a->reply, "'%.*s' is not KIND/NAME (e.g. config/app-a)", (int)(n > 200 ? 200 : n), s);
		return CN_EINVAL;
	}
	memcpy(t->kind, s, kl);
	t->kind[kl] = '\0';
	memcpy(t->name, slash + 1, n - kl - 1);
	t->name[n - kl - 1] = '\0';
	return 0;
}

static int parse_version(cn_agent *a, const char *s, size_t n, uint64_t *v)
{
	char text[32];
	char *end;
	if (n == 0 || n >= sizeof text) {
		cn_buf_printf(&a->reply, "a version is a positive integer (see canopy policy history)");
		return CN_EINVAL;
	}
	memcpy(text, s, n);
	text[n] = '\0';
	*v = strtoull(text, &end, 10);
	if (*end || text[0] == '-' || *v == 0) {
		cn_buf_printf(&a->reply, "'%s' is not a version (a positive integer, see canopy policy "
			      "history)", text);
		return CN_EINVAL;
	}
	return 0;
}

/* A version's wall time: "2026-11-29T08:46:40.123Z", with "+N" when the
 * logical counter is not 0. */
static void version_time(uint64_t version, char *out, size_t cap)
{
	uint64_t ms = cn_hlc_physical(version), logical = cn_hlc_logical(version);
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char stamp[32];
	gmtime_r(&sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	if (logical)
		snprintf(out, cap, "%s.%03uZ+%u", stamp, (unsigned)(ms % 1000), (unsigned)logical);
	else
		snprintf(out, cap, "%s.%03uZ", stamp, (unsigned)(ms % 1000));
}

static void json_doc(cn_json *j, const cn_doc *d)
{
	char id[CN_TRUST_KEY_ID_SIZE], when[48], key64[CN_SIGKEY_TEXT_SIZE];
	char hash[2 * CN_DOC_HASH_BYTES + 1];
	cn_trust_key_id(d->key, id);
	cn_sigkey_public_encode(d->key, key64);
	version_time(d->version, when, sizeof when);
	sodium_bin2hex(hash, sizeof hash, d->body_hash, sizeof d->body_hash);
	cn_json_obj_begin(j);
	cn_json_kv_str(j, "kind", d->kind);
	cn_json_kv_str(j, "name", d->name);
	cn_json_kv_u64(j, "version", d->version);
	cn_json_kv_str(j, "time", when);
	cn_json_kv_str(j, "writer", d->writer);
	cn_json_kv_str(j, "key", id);
	cn_json_kv_str(j, "key_base64", key64);
	cn_json_kv_bool(j, "deleted", d->deleted);
	cn_json_kv_str(j, "body_hash", hash);
	if (d->deleted) {
		cn_json_key(j, "spec");
		cn_json_null(j);
	} else {
		cn_mpjson_kv(j, "spec", d->body, d->body_len);
	}
	cn_json_obj_end(j);
}

/* One line: KIND/NAME VERSION TIME WRITER KEY [deleted]. */
static void text_line(cn_buf *out, const cn_doc *d, bool with_name)
{
	char id[CN_TRUST_KEY_ID_SIZE], when[48], what[CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + 2];
	cn_trust_key_id(d->key, id);
	version_time(d->version, when, sizeof when);
	snprintf(what, sizeof what, "%s/%s", d->kind, d->name);
	if (with_name)
		cn_buf_printf(out, "%-32s ", what);
	cn_buf_printf(out, "%-20" PRIu64 " %-30s %-16s %s%s\n", d->version, when, d->writer, id,
		      d->deleted ? "  (deleted)" : "");
}

/* The spec as indented JSON, each line indented by pad; "(deleted)" for a
 * tombstone, base64 when it does not render. */
static void text_spec(cn_buf *out, const cn_doc *d, const char *pad)
{
	if (d->deleted) {
		cn_buf_printf(out, "%s(deleted)\n", pad);
		return;
	}
	cn_buf pretty;
	cn_buf_init(&pretty, out->max);
	if (cn_mpjson_pretty(d->body, d->body_len, &pretty) != 0) {
		cn_buf_reset(&pretty);
		cn_buf_puts(&pretty, "(not JSON-renderable msgpack; --json gives it as base64)\n");
	}
	const char *p = cn_buf_str(&pretty);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t k = nl ? (size_t)(nl - p) : strlen(p);
		cn_buf_printf(out, "%s%.*s\n", pad, (int)k, p);
		p += k + (nl ? 1 : 0);
	}
	cn_buf_free(&pretty);
}

static void text_doc(cn_buf *out, const cn_doc *d)
{
	char id[CN_TRUST_KEY_ID_SIZE], when[48];
	cn_trust_key_id(d->key, id);
	version_time(d->version, when, sizeof when);
	cn_buf_printf(out, "kind:     %s\nname:     %s\nversion:  %" PRIu64 " (%s)\nwriter:   %s\n"
		      "key:      %s\ndeleted:  %s\nspec:\n", d->kind, d->name, d->version, when,
		      d->writer, id, d->deleted ? "yes" : "no");
	text_spec(out, d, "  ");
}

/* Decode base64 + cn_doc_decode. bytes (CN_DOC_WIRE_MAX) holds what d
 * points into. */
static int decode_arg(cn_agent *a, const char *b64, size_t n, uint8_t *bytes, cn_doc *d)
{
	size_t len = 0;
	if (sodium_base642bin(bytes, CN_DOC_WIRE_MAX, b64, n, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		cn_buf_printf(&a->reply, "policy: the document is not base64 of at most %d bytes",
			      CN_DOC_WIRE_MAX);
		return CN_EINVAL;
	}
	int rc = cn_doc_decode(bytes, len, d, NULL);
	if (rc != 0)
		cn_buf_printf(&a->reply, "policy: malformed document: %s", cn_strerror(rc));
	return rc;
}

static void refusal(cn_agent *a, const cn_doc *d, int rc, const char *why)
{
	cn_buf_printf(&a->reply, "refused: %s/%s: %s", d->kind, d->name,
		      why[0] ? why : cn_strerror(rc));
	if (rc == CN_EPERM && !a->have_roots)
		cn_buf_printf(&a->reply, " (this agent was started without --trust, so no operator "
			      "key is trusted)");
}

/* Does the stored winner already say what d says (the same spec, or both
 * deleted)? Then a write would only add a version: re-applying a file
 * that did not change is a no-op, as operators expect from `apply`.
 * *stored gets the winner's version. */
static bool same_as_stored(cn_agent *a, const cn_doc *d, uint64_t *stored)
{
	uint8_t *body = malloc(CN_DOC_BODY_MAX);
	cn_doc cur;
	bool same = false;
	if (body != NULL &&
	    cn_policy_get(a->policy, d->kind, d->name, 0, &cur, body, CN_DOC_BODY_MAX) == 0) {
		*stored = cur.version;
		same = cur.deleted == d->deleted && cur.body_len == d->body_len &&
		       (d->body_len == 0 || memcmp(cur.body, d->body, d->body_len) == 0);
	}
	free(body);
	return same;
}

static int op_apply(cn_agent *a, const cn_admin_req *req, uint64_t now_ms)
{
	uint8_t *bytes = malloc(CN_DOC_WIRE_MAX);
	cn_doc d;
	char why[CN_POLICY_WHY_MAX] = "";
	int outcome = 0;
	uint64_t stored = 0;
	if (bytes == NULL)
		return CN_ENOMEM;
	int rc = decode_arg(a, req->args[1], req->arg_len[1], bytes, &d);
	/* Refusals first (an unauthorised key hears "refused", not
	 * "unchanged"), then the no-op check, then the write. */
	if (rc == 0)
		rc = cn_policy_check_local(a->policy, &d, cn_agent_wall_ms(), &outcome, why, sizeof why);
	if (rc != 0 && a->reply.len == 0) {
		/* Refused: let apply_local refuse it again, the same way, so
		 * the refusal is counted (the dry run counts nothing). */
		rc = cn_policy_apply_local(a->policy, &d, cn_agent_wall_ms(), &outcome, why, sizeof why);
		if (a->reply.len == 0 && rc != 0)
			refusal(a, &d, rc, why);
		free(bytes);
		return rc;
	}
	if (outcome == CN_POLICY_APPLIED && same_as_stored(a, &d, &stored)) {
		cn_buf_printf(&a->reply, "%s/%s: unchanged (version %" PRIu64 " already has this %s)",
			      d.kind, d.name, stored, d.deleted ? "deletion" : "spec");
		free(bytes);
		return 0;
	}
	if (rc == 0)
		rc = cn_policy_apply_local(a->policy, &d, cn_agent_wall_ms(), &outcome, why, sizeof why);
	if (rc == 0 && outcome == CN_POLICY_APPLIED) {
		char id[CN_TRUST_KEY_ID_SIZE];
		cn_trust_key_id(d.key, id);
		cn_node_policy_announce(a->node, &d, now_ms);
		cn_buf_printf(&a->reply, "%s %s/%s version %" PRIu64 " (writer %s, key %s)",
			      d.deleted ? "deleted" : "applied", d.kind, d.name, d.version, d.writer, id);
		cn_agent_log("policy: %s %s/%s version %" PRIu64 " signed by %s",
			     d.deleted ? "deleted" : "applied", d.kind, d.name, d.version, id);
	} else if (rc == 0) {
		cn_buf_printf(&a->reply, "%s/%s: unchanged (this exact version is already stored)",
			      d.kind, d.name);
	} else if (a->reply.len == 0) {
		refusal(a, &d, rc, why);
	}
	free(bytes);
	return rc;
}

static int op_check(cn_agent *a, const cn_admin_req *req)
{
	uint8_t *bytes = malloc(CN_DOC_WIRE_MAX), *old_body = malloc(CN_DOC_BODY_MAX);
	cn_doc d, old;
	char why[CN_POLICY_WHY_MAX] = "";
	int outcome = 0, rc = bytes && old_body ? 0 : CN_ENOMEM;
	if (rc == 0)
		rc = decode_arg(a, req->args[1], req->arg_len[1], bytes, &d);
	if (rc == 0)
		rc = cn_policy_check_local(a->policy, &d, cn_agent_wall_ms(), &outcome, why, sizeof why);
	if (rc != 0) {
		if (a->reply.len == 0)
			refusal(a, &d, rc, why);
		free(bytes);
		free(old_body);
		return rc;
	}
	int have = cn_policy_get(a->policy, d.kind, d.name, 0, &old, old_body, CN_DOC_BODY_MAX);
	cn_buf *out = &a->reply;
	if (have == 0 && old.deleted == d.deleted && old.body_len == d.body_len &&
	    (d.body_len == 0 || memcmp(old.body, d.body, d.body_len) == 0)) {
		cn_buf_printf(out, "dry run: %s/%s: unchanged (version %" PRIu64 " already has this "
			      "%s)\n", d.kind, d.name, old.version, d.deleted ? "deletion" : "spec");
	} else if (outcome != CN_POLICY_APPLIED) {
		cn_buf_printf(out, "dry run: %s/%s: unchanged (this exact version is already stored)\n",
			      d.kind, d.name);
	} else {
		if (have == 0)
			cn_buf_printf(out, "dry run: %s/%s would be %s (replacing version %" PRIu64
				      ", writer %s)\n", d.kind, d.name, d.deleted ? "deleted" : "updated",
				      old.version, old.writer);
		else
			cn_buf_printf(out, "dry run: %s/%s would be %s\n", d.kind, d.name,
				      d.deleted ? "deleted (it does not exist)" : "created");
		cn_buf a_text, b_text;
		cn_buf_init(&a_text, out->max);
		cn_buf_init(&b_text, out->max);
		if (have == 0)
			text_spec(&a_text, &old, "");
		text_spec(&b_text, &d, "");
		cn_buf_printf(out, "--- stored\n+++ new\n");
		rc = cn_text_diff(cn_buf_str(&a_text), cn_buf_str(&b_text), out);
		cn_buf_free(&a_text);
		cn_buf_free(&b_text);
	}
	cn_buf_puts(out, "nothing was written (--dry-run)\n");
	free(bytes);
	free(old_body);
	return rc ? rc : out->err;
}

static int missing(cn_agent *a, const target *t, uint64_t version)
{
	if (version)
		cn_buf_printf(&a->reply, "%s/%s: no version %" PRIu64 " in this replica's history "
			      "(see canopy policy history %s/%s)", t->kind, t->name, version, t->kind,
			      t->name);
	else
		cn_buf_printf(&a->reply, "%s/%s: no such document", t->kind, t->name);
	return CN_ENOENT;
}

static int op_get(cn_agent *a, const cn_admin_req *req, bool raw)
{
	target t;
	uint64_t version = 0;
	int rc = parse_target(a, req->args[1], req->arg_len[1], &t);
	if (rc == 0 && req->n_args >= 3)
		rc = parse_version(a, req->args[2], req->arg_len[2], &version);
	if (rc != 0)
		return rc;
	uint8_t *body = malloc(CN_DOC_BODY_MAX), *enc = raw ? malloc(CN_DOC_WIRE_MAX) : NULL;
	cn_doc d;
	if (body == NULL || (raw && enc == NULL)) {
		free(body);
		free(enc);
		return CN_ENOMEM;
	}
	rc = cn_policy_get(a->policy, t.kind, t.name, version, &d, body, CN_DOC_BODY_MAX);
	if (rc == CN_ENOENT) {
		rc = missing(a, &t, version);
	} else if (rc != 0) {
		cn_buf_printf(&a->reply, "%s/%s: %s", t.kind, t.name, cn_strerror(rc));
	} else if (raw) {
		size_t len = 0;
		rc = cn_doc_encode(&d, enc, CN_DOC_WIRE_MAX, &len);
		size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
		char *text = rc == 0 ? malloc(cap) : NULL;
		if (text != NULL) {
			sodium_bin2base64(text, cap, enc, len, sodium_base64_VARIANT_ORIGINAL);
			cn_buf_puts(&a->reply, text);
			free(text);
		} else {
			rc = rc ? rc : CN_ENOMEM;
		}
	} else if (req->flags & CN_ADMIN_JSON) {
		cn_json j;
		cn_json_init(&j, &a->reply);
		json_doc(&j, &d);
		cn_buf_puts(&a->reply, "\n");
	} else {
		text_doc(&a->reply, &d);
	}
	free(body);
	free(enc);
	return rc ? rc : a->reply.err;
}

typedef struct render {
	cn_agent *a;
	cn_json j;
	bool json, with_name;
	size_t n;
} render;

static int render_cb(void *arg, const cn_doc *d)
{
	render *r = arg;
	if (r->json)
		json_doc(&r->j, d);
	else
		text_line(&r->a->reply, d, r->with_name);
	r->n++;
	return r->a->reply.err;
}

static int op_list(cn_agent *a, const cn_admin_req *req, bool history)
{
	render r = {.a = a, .json = (req->flags & CN_ADMIN_JSON) != 0, .with_name = !history};
	char kind[CN_DOC_KIND_MAX + 1] = "";
	target t;
	int rc = 0;
	if (history) {
		if ((rc = parse_target(a, req->args[1], req->arg_len[1], &t)) != 0)
			return rc;
	} else if (req->n_args >= 2) {
		if (!cn_doc_kind_ok(req->args[1], req->arg_len[1])) {
			cn_buf_printf(&a->reply, "--kind: '%.*s' is not a kind", (int)req->arg_len[1] & 63,
				      req->args[1]);
			return CN_EINVAL;
		}
		memcpy(kind, req->args[1], req->arg_len[1]);
		kind[req->arg_len[1]] = '\0';
	}
	if (r.json) {
		cn_json_init(&r.j, &a->reply);
		cn_json_arr_begin(&r.j);
	} else if (history) {
		cn_buf_printf(&a->reply, "%s/%s, oldest first:\n%-20s %-30s %-16s %s\n", t.kind, t.name,
			      "VERSION", "TIME", "WRITER", "KEY");
	} else {
		cn_buf_printf(&a->reply, "%-32s %-20s %-30s %-16s %s\n", "KIND/NAME", "VERSION", "TIME",
			      "WRITER", "KEY");
	}
	rc = history ? cn_policy_history(a->policy, t.kind, t.name, render_cb, &r)
		     : cn_policy_list(a->policy, kind[0] ? kind : NULL, render_cb, &r);
	if (rc != 0) {
		cn_buf_reset(&a->reply);
		cn_buf_printf(&a->reply, "policy: reading the store: %s", cn_strerror(rc));
		return rc;
	}
	if (history && r.n == 0) {
		cn_buf_reset(&a->reply);
		return missing(a, &t, 0);
	}
	if (r.json) {
		cn_json_arr_end(&r.j);
		cn_buf_puts(&a->reply, "\n");
	}
	return a->reply.err;
}

int cn_agent_admin_policy(cn_agent *a, const cn_admin_req *req, uint64_t now_ms)
{
	char op[16];
	snprintf(op, sizeof op, "%.*s", (int)(req->arg_len[0] < 15 ? req->arg_len[0] : 15),
		 req->args[0]);
	uint32_t n = req->n_args;
	if (!strcmp(op, "stamp") && n == 1) {
		uint64_t v = 0;
		int rc = cn_policy_stamp(a->policy, cn_agent_wall_ms(), &v);
		if (rc != 0) {
			cn_buf_printf(&a->reply, "policy stamp: the wall clock is out of range");
			return rc;
		}
		cn_buf_printf(&a->reply, "%" PRIu64 " %s", v, a->opts.name);
		return 0;
	}
	if (!strcmp(op, "apply") && n == 2)
		return op_apply(a, req, now_ms);
	if (!strcmp(op, "check") && n == 2)
		return op_check(a, req);
	if ((!strcmp(op, "get") || !strcmp(op, "raw")) && (n == 2 || n == 3))
		return op_get(a, req, op[0] == 'r');
	if (!strcmp(op, "list") && n <= 2)
		return op_list(a, req, false);
	if (!strcmp(op, "history") && n == 2)
		return op_list(a, req, true);
	cn_buf_printf(&a->reply, "policy: unknown operation or wrong arguments: %s", op);
	return CN_EINVAL;
}

/* ---- audit ------------------------------------------------------------------ */

typedef struct audit_render {
	cn_agent *a;
	cn_json j;
	bool json;
} audit_render;

static int audit_cb(void *arg, const cn_audit_entry *e)
{
	audit_render *r = arg;
	char id[CN_TRUST_KEY_ID_SIZE], when[48], what[CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + 2];
	char hash[2 * CN_DOC_HASH_BYTES + 1], prev[2 * CN_DOC_HASH_BYTES + 1];
	cn_trust_key_id(e->key, id);
	version_time(e->when, when, sizeof when);
	snprintf(what, sizeof what, "%s/%s", e->kind, e->name);
	if (!r->json) {
		cn_buf_printf(&r->a->reply, "%-16s %5" PRIu64 " %-30s %-16s %-32s %-20" PRIu64 " %s%s\n",
			      e->node, e->seq, when, id, what, e->version, e->writer,
			      e->deleted ? " (delete)" : "");
		return r->a->reply.err;
	}
	sodium_bin2hex(hash, sizeof hash, e->body_hash, sizeof e->body_hash);
	sodium_bin2hex(prev, sizeof prev, e->prev, sizeof e->prev);
	cn_json *j = &r->j;
	cn_json_obj_begin(j);
	cn_json_kv_str(j, "node", e->node);
	cn_json_kv_u64(j, "seq", e->seq);
	cn_json_kv_u64(j, "when", e->when);
	cn_json_kv_str(j, "time", when);
	cn_json_kv_str(j, "key", id);
	cn_json_kv_str(j, "kind", e->kind);
	cn_json_kv_str(j, "name", e->name);
	cn_json_kv_u64(j, "version", e->version);
	cn_json_kv_str(j, "writer", e->writer);
	cn_json_kv_bool(j, "deleted", e->deleted);
	cn_json_kv_str(j, "body_hash", hash);
	cn_json_kv_str(j, "prev", prev);
	cn_json_obj_end(j);
	return r->a->reply.err;
}

int cn_agent_admin_audit(cn_agent *a, const cn_admin_req *req)
{
	bool json = (req->flags & CN_ADMIN_JSON) != 0;
	cn_buf *out = &a->reply;
	if (req->n_args == 1 && req->arg_len[0] == 6 && memcmp(req->args[0], "verify", 6) == 0) {
		cn_policy_audit_report rep = {0};
		char why[CN_POLICY_WHY_MAX] = "";
		int rc = cn_policy_audit_verify(a->policy, &rep, why, sizeof why);
		if (json) {
			cn_json j;
			cn_json_init(&j, out);
			cn_json_obj_begin(&j);
			cn_json_kv_bool(&j, "ok", rc == 0);
			cn_json_kv_u64(&j, "entries", rep.entries);
			cn_json_kv_u64(&j, "chains", rep.chains);
			cn_json_kv_str(&j, "error", rc == 0 ? "" : why[0] ? why : cn_strerror(rc));
			cn_json_obj_end(&j);
			cn_buf_puts(out, "\n");
		} else if (rc == 0) {
			cn_buf_printf(out, "audit verified: %" PRIu64 " entries in %" PRIu64 " chain(s)",
				      rep.entries, rep.chains);
		} else {
			cn_buf_printf(out, "audit verification FAILED: %s",
				      why[0] ? why : cn_strerror(rc));
		}
		return rc;
	}
	if (req->n_args != 0) {
		cn_buf_printf(out, "usage: canopy audit [--verify] [--json]");
		return CN_EINVAL;
	}
	audit_render r = {.a = a, .json = json};
	if (json) {
		cn_json_init(&r.j, out);
		cn_json_arr_begin(&r.j);
	} else {
		cn_buf_printf(out, "%-16s %5s %-30s %-16s %-32s %-20s %s\n", "NODE", "SEQ", "TIME", "KEY",
			      "KIND/NAME", "VERSION", "WRITER");
	}
	int rc = cn_policy_audit_list(a->policy, audit_cb, &r);
	if (rc != 0) {
		cn_buf_reset(out);
		cn_buf_printf(out, "audit: reading the store: %s", cn_strerror(rc));
		return rc;
	}
	if (json) {
		cn_json_arr_end(&r.j);
		cn_buf_puts(out, "\n");
	}
	return out->err;
}
