/* The policy replica: apply, merge, re-validation, collection, digest and
 * audit chains over a cn_policy_store. See policy.h for the rules. */
#include "core/policy.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "wire/mp.h"

#define META_HLC "policy.hlc"
#define META_AUDIT "policy.audit." /* + node name: seq (8, big-endian) + hash */
enum { HEAD_VALUE_LEN = 8 + CN_DOC_HASH_BYTES };

static_assert(sizeof(META_AUDIT) - 1 + CN_DOC_WRITER_MAX < CN_POLICY_META_KEY_MAX,
	      "meta key for an audit head fits");
static_assert(CN_POLICY_BUCKETS == 256, "a bucket is one byte of a hash");

typedef struct chain_head {
	char node[CN_DOC_WRITER_MAX + 1];
	uint64_t seq;
	uint8_t hash[CN_DOC_HASH_BYTES];
} chain_head;

struct cn_policy {
	cn_policy_config cfg;
	cn_policy_store store;
	cn_hlc hlc;
	cn_trust trust;
	uint8_t buckets[CN_POLICY_BUCKETS][CN_DOC_HASH_BYTES];
	uint32_t names;
	chain_head *heads; /* owned; every chain this replica holds */
	uint32_t n_heads, cap_heads;
	cn_policy_stats stats;
};

/* A document copied out of the store: d.body points into bytes. */
typedef struct held {
	uint8_t *bytes;
	size_t len;
	cn_doc d;
} held;

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
	if (why == NULL || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static void put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static void held_free(held *h)
{
	free(h->bytes);
	h->bytes = NULL;
}

/* ---- audit entry codec ------------------------------------------------ */

int cn_policy_audit_encode(const cn_audit_entry *e, uint8_t *out, size_t cap, size_t *len)
{
	cn_mp_writer w;
	cn_mp_writer_init(&w, out, cap);
	cn_mp_put_array(&w, 13);
	cn_mp_put_cstr(&w, CN_AUDIT_DOMAIN);
	cn_mp_put_cstr(&w, e->node);
	cn_mp_put_uint(&w, e->seq);
	cn_mp_put_bin(&w, e->prev, CN_DOC_HASH_BYTES);
	cn_mp_put_uint(&w, e->when);
	cn_mp_put_bin(&w, e->key, CN_DOC_KEY_BYTES);
	cn_mp_put_cstr(&w, e->kind);
	cn_mp_put_cstr(&w, e->name);
	cn_mp_put_uint(&w, e->version);
	cn_mp_put_cstr(&w, e->writer);
	cn_mp_put_bool(&w, e->deleted);
	cn_mp_put_bin(&w, e->body_hash, CN_DOC_HASH_BYTES);
	return cn_mp_writer_end(&w, len);
}

static int rd_str(cn_mp_reader *r, char *dst, size_t max, bool (*ok)(const char *, size_t))
{
	const char *s;
	uint32_t n;
	int rc = cn_mp_read_str(r, &s, &n, (uint32_t)max);
	if (rc != 0)
		return rc;
	if (!ok(s, n))
		return CN_EINVAL;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int rd_bin32(cn_mp_reader *r, uint8_t *dst)
{
	const uint8_t *b;
	uint32_t n;
	int rc = cn_mp_read_bin(r, &b, &n, 32);
	if (rc != 0)
		return rc;
	if (n != 32)
		return CN_EINVAL;
	memcpy(dst, b, 32);
	return 0;
}

static bool domain_ok(const char *s, size_t n)
{
	return n == sizeof(CN_AUDIT_DOMAIN) - 1 && memcmp(s, CN_AUDIT_DOMAIN, n) == 0;
}

int cn_policy_audit_decode(const uint8_t *buf, size_t len, cn_audit_entry *e)
{
	memset(e, 0, sizeof *e);
	if (len > CN_POLICY_AUDIT_MAX)
		return CN_ELIMIT;
	cn_mp_reader r;
	cn_mp_reader_init(&r, buf, len);
	uint32_t n;
	char domain[sizeof CN_AUDIT_DOMAIN];
	int rc = cn_mp_read_array(&r, &n, 13);
	if (rc == 0 && n != 13)
		rc = CN_EINVAL;
	if (rc == 0)
		rc = rd_str(&r, domain, sizeof domain - 1, domain_ok);
	if (rc == 0)
		rc = rd_str(&r, e->node, CN_DOC_WRITER_MAX, cn_doc_writer_ok);
	if (rc == 0)
		rc = cn_mp_read_u64(&r, &e->seq);
	if (rc == 0)
		rc = rd_bin32(&r, e->prev);
	if (rc == 0)
		rc = cn_mp_read_u64(&r, &e->when);
	if (rc == 0)
		rc = rd_bin32(&r, e->key);
	if (rc == 0)
		rc = rd_str(&r, e->kind, CN_DOC_KIND_MAX, cn_doc_kind_ok);
	if (rc == 0)
		rc = rd_str(&r, e->name, CN_DOC_NAME_MAX, cn_doc_name_ok);
	if (rc == 0)
		rc = cn_mp_read_u64(&r, &e->version);
	if (rc == 0)
		rc = rd_str(&r, e->writer, CN_DOC_WRITER_MAX, cn_doc_writer_ok);
	if (rc == 0)
		rc = cn_mp_read_bool(&r, &e->deleted);
	if (rc == 0)
		rc = rd_bin32(&r, e->body_hash);
	if (rc == 0 && cn_mp_remaining(&r) != 0)
		rc = CN_ETRAILING;
	if (rc == 0 && e->seq == 0)
		rc = CN_EINVAL;
	if (rc == 0) {
		/* Canonical only: the chain hashes bytes, so one entry must have
		 * exactly one encoding (no long-form integers or strings). */
		uint8_t again[CN_POLICY_AUDIT_MAX];
		size_t m = 0;
		if (cn_policy_audit_encode(e, again, sizeof again, &m) != 0 || m != len ||
		    memcmp(again, buf, len) != 0)
			rc = CN_EINVAL;
	}
	if (rc != 0)
		memset(e, 0, sizeof *e);
	return rc;
}

void cn_policy_audit_hash(const uint8_t *bytes, size_t len, uint8_t out[CN_DOC_HASH_BYTES])
{
	crypto_generichash(out, CN_DOC_HASH_BYTES, bytes, len, NULL, 0);
}

/* ---- small helpers ---------------------------------------------------- */

void cn_policy_config_default(cn_policy_config *cfg, const char *node)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->node, sizeof cfg->node, "%s", node);
	cfg->history_max = CN_POLICY_HISTORY_DEFAULT;
	cfg->tombstone_ttl_ms = CN_POLICY_TTL_DEFAULT_MS;
	cfg->max_drift_ms = CN_HLC_DRIFT_DEFAULT_MS;
	cfg->names_max = CN_POLICY_NAMES_DEFAULT;
}

uint8_t cn_policy_bucket_of(const char *kind, const char *name)
{
	crypto_generichash_state st;
	uint8_t h[16];
	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const uint8_t *)kind, strlen(kind) + 1);
	crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
	crypto_generichash_final(&st, h, sizeof h);
	return h[0];
}

static void digest_toggle(cn_policy *p, const cn_doc *d)
{
	uint8_t h[CN_DOC_HASH_BYTES];
	cn_doc_hash(d, h);
	uint8_t *b = p->buckets[cn_policy_bucket_of(d->kind, d->name)];
	for (size_t i = 0; i < sizeof h; i++)
		b[i] ^= h[i];
}

static chain_head *head_find(const cn_policy *p, const char *node)
{
	for (uint32_t i = 0; i < p->n_heads; i++)
		if (strcmp(p->heads[i].node, node) == 0)
			return &p->heads[i];
	return NULL;
}

static int head_set(cn_policy *p, const char *node, uint64_t seq, const uint8_t *hash)
{
	chain_head *h = head_find(p, node);
	if (h == NULL) {
		if (p->n_heads == p->cap_heads) {
			uint32_t cap = p->cap_heads ? p->cap_heads * 2 : 4;
			chain_head *n = realloc(p->heads, cap * sizeof *n);
			if (n == NULL)
				return CN_ENOMEM;
			p->heads = n;
			p->cap_heads = cap;
		}
		h = &p->heads[p->n_heads++];
		snprintf(h->node, sizeof h->node, "%s", node);
	}
	h->seq = seq;
	memcpy(h->hash, hash, CN_DOC_HASH_BYTES);
	return 0;
}

/* Room for one more head, taken before a commit so that recording the
 * head after it cannot fail. */
static int head_reserve(cn_policy *p)
{
	if (p->n_heads < p->cap_heads)
		return 0;
	uint32_t cap = p->cap_heads ? p->cap_heads * 2 : 4;
	chain_head *n = realloc(p->heads, cap * sizeof *n);
	if (n == NULL)
		return CN_ENOMEM;
	p->heads = n;
	p->cap_heads = cap;
	return 0;
}

static bool is_trust_kind(const char *kind)
{
	return strcmp(kind, CN_KIND_ROLE) == 0 || strcmp(kind, CN_KIND_REVOKE) == 0;
}

static bool expired(const cn_policy *p, uint64_t version, uint64_t wall_ms)
{
	return cn_hlc_physical(version) + p->cfg.tombstone_ttl_ms <= wall_ms;
}

/* ---- reading the store ------------------------------------------------ */

static int copy_cb(void *arg, const uint8_t *bytes, size_t len)
{
	held *h = arg;
	h->bytes = malloc(len ? len : 1);
	if (h->bytes == NULL)
		return CN_ENOMEM;
	memcpy(h->bytes, bytes, len);
	h->len = len;
	return 1;
}

/* The stored winner, decoded into h (caller frees with held_free). */
static int load_latest(cn_policy *p, const char *kind, const char *name, held *h)
{
	memset(h, 0, sizeof *h);
	int rc = p->store.ops->latest(p->store.ctx, kind, name, copy_cb, h);
	if (rc == 0 && h->bytes == NULL)
		rc = CN_EIO; /* a store that said "found" but gave nothing */
	if (rc == 0 && cn_doc_decode(h->bytes, h->len, &h->d, NULL) != 0)
		rc = CN_EIO; /* bytes at rest no longer decode: storage damage */
	if (rc != 0)
		held_free(h);
	return rc;
}

typedef struct doc_visit {
	cn_policy_doc_fn fn;
	void *arg;
	int bad; /* stored bytes that failed to decode */
} doc_visit;

static int doc_visit_cb(void *arg, const uint8_t *bytes, size_t len)
{
	doc_visit *v = arg;
	cn_doc d;
	if (cn_doc_decode(bytes, len, &d, NULL) != 0) {
		v->bad++;
		return 0;
	}
	return v->fn(v->arg, &d);
}

static int scan_docs(cn_policy *p, const char *kind, cn_policy_doc_fn fn, void *arg)
{
	doc_visit v = {fn, arg, 0};
	int rc = p->store.ops->scan(p->store.ctx, kind, doc_visit_cb, &v);
	return rc != 0 ? rc : v.bad ? CN_EIO : 0;
}

/* History of a name as held copies (oldest first). */
typedef struct hist {
	held v[CN_POLICY_HISTORY_MAX + 1];
	size_t n;
} hist;

static int hist_cb(void *arg, const uint8_t *bytes, size_t len)
{
	hist *h = arg;
	if (h->n == CN_POLICY_HISTORY_MAX + 1)
		return 1;
	held *x = &h->v[h->n];
	memset(x, 0, sizeof *x);
	int rc = copy_cb(x, bytes, len);
	if (rc < 0)
		return rc;
	if (cn_doc_decode(x->bytes, x->len, &x->d, NULL) != 0) {
		held_free(x);
		return 0; /* damaged version: skip it */
	}
	h->n++;
	return 0;
}

static void hist_free(hist *h)
{
	for (size_t i = 0; i < h->n; i++)
		held_free(&h->v[i]);
	h->n = 0;
}

/* ---- trust state ------------------------------------------------------ */

static int trust_doc_cb(void *arg, const cn_doc *d)
{
	cn_trust *t = arg;
	if (d->deleted)
		return 0;
	int rc = strcmp(d->kind, CN_KIND_ROLE) == 0 ? cn_trust_set_role(t, d)
						    : cn_trust_set_revocation(t, d);
	return rc == CN_ENOMEM ? rc : 0; /* a malformed stored one: ignore */
}

/* Trust = roots + the winning role and revoke documents in the store. */
static int rebuild_trust(cn_policy *p)
{
	cn_trust_clear_docs(&p->trust);
	int rc = scan_docs(p, CN_KIND_ROLE, trust_doc_cb, &p->trust);
	if (rc == 0)
		rc = scan_docs(p, CN_KIND_REVOKE, trust_doc_cb, &p->trust);
	return rc;
}

/* ---- retraction (re-validation) --------------------------------------- */

static int check_doc(const cn_policy *p, const cn_doc *d, bool full)
{
	return full ? cn_trust_check(&p->trust, d, NULL, 0)
		    : cn_trust_check_scope(&p->trust, d, NULL, 0);
}

/* Replace the winner of kind/name by the newest kept version that still
 * passes, or forget the name. One commit. */
static int retract(cn_policy *p, const char *kind, const char *name, bool full)
{
	hist h = {.n = 0};
	held cur;
	int rc = load_latest(p, kind, name, &cur);
	if (rc != 0)
		return rc == CN_ENOENT ? 0 : rc;
	rc = p->store.ops->history(p->store.ctx, kind, name, hist_cb, &h);
	cn_policy_put puts[CN_POLICY_HISTORY_MAX + 1];
	uint8_t hashes[CN_POLICY_HISTORY_MAX + 1][CN_DOC_HASH_BYTES];
	size_t n = 0;
	for (size_t i = 0; rc == 0 && i < h.n; i++) {
		const cn_doc *d = &h.v[i].d;
		if (cn_doc_cmp(d, &cur.d) >= 0 || check_doc(p, d, full) != 0)
			continue;
		cn_doc_hash(d, hashes[n]);
		puts[n] = (cn_policy_put){d->kind, d->name, d->writer, d->version, hashes[n],
					  h.v[i].bytes, h.v[i].len};
		n++;
	}
	char kbuf[CN_DOC_KIND_MAX + 1], nbuf[CN_DOC_NAME_MAX + 1];
	snprintf(kbuf, sizeof kbuf, "%s", kind);
	snprintf(nbuf, sizeof nbuf, "%s", name);
	cn_policy_commit c = {.erase_kind = kbuf, .erase_name = nbuf, .puts = puts, .n_puts = n,
			      .history_max = p->cfg.history_max};
	if (rc == 0)
		rc = p->store.ops->commit(p->store.ctx, &c);
	if (rc == 0) {
		digest_toggle(p, &cur.d);
		if (n > 0) {
			size_t last = 0;
			for (size_t i = 0; i < h.n; i++)
				if (h.v[i].bytes == puts[n - 1].bytes)
					last = i;
			digest_toggle(p, &h.v[last].d);
		} else {
			p->names--;
		}
		p->stats.retracted++;
	}
	hist_free(&h);
	held_free(&cur);
	return rc;
}

typedef struct name_ref {
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
} name_ref;

typedef struct failing {
	const cn_policy *p;
	bool full;
	bool trust_kinds; /* true: only role/revoke; false: only the others */
	name_ref *v;
	size_t n, cap;
} failing;

static int failing_cb(void *arg, const cn_doc *d)
{
	failing *f = arg;
	if (is_trust_kind(d->kind) != f->trust_kinds || check_doc(f->p, d, f->full) == 0)
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		name_ref *v = realloc(f->v, cap * sizeof *v);
		if (v == NULL)
			return CN_ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	snprintf(f->v[f->n].kind, sizeof f->v[f->n].kind, "%s", d->kind);
	snprintf(f->v[f->n].name, sizeof f->v[f->n].name, "%s", d->name);
	f->n++;
	return 0;
}

/* Re-check every winner (of trust kinds, or of the others) and retract
 * what fails. Scan first, change after: a visitor must not write. */
static int revalidate(cn_policy *p, bool full, bool trust_kinds)
{
	failing f = {.p = p, .full = full, .trust_kinds = trust_kinds};
	int rc = scan_docs(p, NULL, failing_cb, &f);
	for (size_t i = 0; rc == 0 && i < f.n; i++)
		rc = retract(p, f.v[i].kind, f.v[i].name, full);
	free(f.v);
	return rc;
}

/* ---- open / free ------------------------------------------------------ */

static int digest_cb(void *arg, const cn_doc *d)
{
	cn_policy *p = arg;
	digest_toggle(p, d);
	p->names++;
	cn_hlc_restore(&p->hlc, d->version);
	return 0;
}

typedef struct head_scan {
	cn_policy *p;
	int rc;
} head_scan;

static int head_cb(void *arg, const uint8_t *bytes, size_t len)
{
	head_scan *s = arg;
	cn_audit_entry e;
	if (cn_policy_audit_decode(bytes, len, &e) != 0)
		return 0; /* verify reports it; open must not fail on it */
	uint8_t h[CN_DOC_HASH_BYTES];
	cn_policy_audit_hash(bytes, len, h);
	chain_head *cur = head_find(s->p, e.node);
	if (cur != NULL && e.seq <= cur->seq)
		return 0;
	return head_set(s->p, e.node, e.seq, h);
}

static int config_check(const cn_policy_config *in, cn_policy_config *cfg, char *why,
			size_t cap)
{
	*cfg = *in;
	if (!cn_doc_writer_ok(cfg->node, strnlen(cfg->node, sizeof cfg->node))) {
		say(why, cap, "node: 1-64 printable characters without spaces");
		return CN_EINVAL;
	}
	if (cfg->history_max == 0)
		cfg->history_max = CN_POLICY_HISTORY_DEFAULT;
	if (cfg->history_max > CN_POLICY_HISTORY_MAX) {
		say(why, cap, "history_max: at most %d", CN_POLICY_HISTORY_MAX);
		return CN_EINVAL;
	}
	if (cfg->tombstone_ttl_ms == 0)
		cfg->tombstone_ttl_ms = CN_POLICY_TTL_DEFAULT_MS;
	if (cfg->tombstone_ttl_ms > (UINT64_C(1) << 50)) {
		say(why, cap, "tombstone_ttl_ms: too large");
		return CN_EINVAL;
	}
	if (cfg->max_drift_ms == 0)
		cfg->max_drift_ms = CN_HLC_DRIFT_DEFAULT_MS;
	if (cfg->max_drift_ms > (UINT64_C(1) << 40)) {
		say(why, cap, "max_drift_ms: too large");
		return CN_EINVAL;
	}
	if (cfg->names_max == 0)
		cfg->names_max = CN_POLICY_NAMES_DEFAULT;
	return 0;
}

int cn_policy_open(const cn_policy_config *cfg, cn_policy_store store, const cn_trust *roots,
		   uint64_t wall_ms, cn_policy **out, char *why, size_t why_cap)
{
	(void)wall_ms;
	*out = NULL;
	cn_policy *p = calloc(1, sizeof *p);
	if (p == NULL)
		return CN_ENOMEM;
	int rc = config_check(cfg, &p->cfg, why, why_cap);
	if (rc != 0) {
		free(p);
		return rc;
	}
	p->store = store;
	cn_hlc_init(&p->hlc, p->cfg.max_drift_ms);
	cn_trust_init(&p->trust);
	for (uint32_t i = 0; i < roots->n_roots; i++)
		(void)cn_trust_add_root(&p->trust, roots->roots[i]);
	uint8_t b[8];
	size_t n = 0;
	rc = store.ops->meta_get(store.ctx, META_HLC, b, sizeof b, &n);
	if (rc == 0 && n == 8)
		cn_hlc_restore(&p->hlc, get_be64(b));
	rc = rc == CN_ENOENT || rc == 0 ? 0 : rc;
	/* Trust documents first (they depend on the roots alone), then the
	 * trust they define, then everything else against it. */
	if (rc == 0)
		rc = revalidate(p, true, true);
	if (rc == 0)
		rc = rebuild_trust(p);
	if (rc == 0)
		rc = revalidate(p, true, false);
	if (rc == 0) {
		memset(p->buckets, 0, sizeof p->buckets);
		p->names = 0;
		rc = scan_docs(p, NULL, digest_cb, p);
	}
	head_scan hs = {p, 0};
	if (rc == 0)
		rc = store.ops->audit_scan(store.ctx, head_cb, &hs);
	if (rc != 0) {
		if (why != NULL && why_cap > 0 && why[0] == '\0')
			say(why, why_cap, "policy store: %s", cn_strerror(rc));
		cn_policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void cn_policy_free(cn_policy *p)
{
	if (p == NULL)
		return;
	cn_trust_free(&p->trust);
	free(p->heads);
	free(p);
}

int cn_policy_stamp(cn_policy *p, uint64_t wall_ms, uint64_t *version)
{
	return cn_hlc_now(&p->hlc, wall_ms, version);
}

/* ---- apply ------------------------------------------------------------ */

/* Steps 1-4 of APPLY: everything but the commit. Returns an error, or 0
 * with *wins false and *outcome set (inert: DUPLICATE, STALE, EXPIRED), or
 * 0 with *wins true: d beats the stored winner, which is in *cur when *had
 * (the caller frees it with held_free). Counts refusals in p->stats. */
static int admit(cn_policy *p, const cn_doc *d, uint64_t wall_ms, bool local, int *outcome,
		 bool *wins, held *cur, bool *had, char *why, size_t cap)
{
	*wins = false;
	*had = false;
	say(why, cap, "%s", "");
	if (cn_doc_validate(d, why, cap) != 0) {
		p->stats.refused_invalid++;
		return CN_EINVAL;
	}
	if (cn_hlc_check(&p->hlc, d->version, wall_ms) != 0) {
		p->stats.refused_future++;
		p->hlc.refused_future++;
		say(why, cap, "version: %" PRIu64 " ms is more than %" PRIu64
		    " ms ahead of this node's clock", cn_hlc_physical(d->version),
		    p->cfg.max_drift_ms);
		return CN_ERANGE;
	}
	if (cn_trust_check(&p->trust, d, why, cap) != 0) {
		p->stats.refused_perm++;
		return CN_EPERM;
	}
	if (!local && d->deleted && expired(p, d->version, wall_ms)) {
		p->stats.expired++;
		if (outcome)
			*outcome = CN_POLICY_EXPIRED;
		return 0;
	}
	int rc = load_latest(p, d->kind, d->name, cur);
	*had = rc == 0;
	if (rc != 0 && rc != CN_ENOENT)
		return rc;
	if (*had) {
		int c = cn_doc_cmp(d, &cur->d);
		if (c <= 0) {
			if (c == 0)
				p->stats.duplicate++;
			else
				p->stats.stale++;
			if (c < 0 && local)
				say(why, cap, "%s/%s: the stored version %" PRIu64
				    " (writer %s) is newer", d->kind, d->name, cur->d.version,
				    cur->d.writer);
			held_free(cur);
			*had = false;
			if (c < 0 && local)
				return CN_ESTATE;
			if (outcome)
				*outcome = c == 0 ? CN_POLICY_DUPLICATE : CN_POLICY_STALE;
			return 0;
		}
	} else if (p->names >= p->cfg.names_max) {
		p->stats.refused_full++;
		say(why, cap, "policy store holds %" PRIu32 " names, its limit", p->names);
		return CN_EFULL;
	}
	*wins = true;
	return 0;
}

int cn_policy_check_local(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			  char *why, size_t why_cap)
{
	/* A dry run counts nothing: the stats describe what happened. */
	cn_policy_stats saved = p->stats;
	uint64_t refused_future = p->hlc.refused_future;
	held cur;
	bool wins = false, had = false;
	int rc = admit(p, d, wall_ms, true, outcome, &wins, &cur, &had, why, why_cap);
	if (had)
		held_free(&cur);
	p->stats = saved;
	p->hlc.refused_future = refused_future;
	if (rc == 0 && wins && outcome)
		*outcome = CN_POLICY_APPLIED;
	return rc;
}

static int apply(cn_policy *p, const cn_doc *d, uint64_t wall_ms, bool local, int *outcome,
		 char *why, size_t cap)
{
	held cur;
	bool wins = false, had = false;
	int rc = admit(p, d, wall_ms, local, outcome, &wins, &cur, &had, why, cap);
	if (rc != 0 || !wins)
		return rc;

	/* Everything below is computed on copies; memory changes only after
	 * the store commit succeeded. */
	cn_hlc clock = p->hlc;
	uint64_t when = 0;
	rc = cn_hlc_update(&clock, d->version, wall_ms, &when);
	assert(rc == 0); /* cn_hlc_check passed above */
	size_t need = cn_doc_encoded_size(d), len = 0;
	uint8_t *enc = malloc(need);
	if (enc == NULL) {
		if (had)
			held_free(&cur);
		return CN_ENOMEM;
	}
	rc = cn_doc_encode(d, enc, need, &len);
	assert(rc == 0 && len == need);
	uint8_t hash[CN_DOC_HASH_BYTES];
	cn_doc_hash(d, hash);
	cn_policy_put put = {d->kind, d->name, d->writer, d->version, hash, enc, len};
	cn_policy_commit c = {.puts = &put, .n_puts = 1, .history_max = p->cfg.history_max};
	uint8_t hlc_val[8];
	put_be64(hlc_val, clock.last);
	c.meta_key[0] = META_HLC;
	c.meta_val[0] = hlc_val;
	c.meta_len[0] = 8;
	c.n_meta = 1;

	cn_audit_entry e;
	uint8_t abytes[CN_POLICY_AUDIT_MAX], ahash[CN_DOC_HASH_BYTES], head_val[HEAD_VALUE_LEN];
	char head_key[CN_POLICY_META_KEY_MAX];
	size_t alen = 0;
	if (local) {
		const chain_head *h = head_find(p, p->cfg.node);
		memset(&e, 0, sizeof e);
		snprintf(e.node, sizeof e.node, "%s", p->cfg.node);
		e.seq = h ? h->seq + 1 : 1;
		if (h)
			memcpy(e.prev, h->hash, sizeof e.prev);
		e.when = when;
		memcpy(e.key, d->key, sizeof e.key);
		memcpy(e.kind, d->kind, sizeof e.kind);
		memcpy(e.name, d->name, sizeof e.name);
		e.version = d->version;
		memcpy(e.writer, d->writer, sizeof e.writer);
		e.deleted = d->deleted;
		memcpy(e.body_hash, d->body_hash, sizeof e.body_hash);
		rc = cn_policy_audit_encode(&e, abytes, sizeof abytes, &alen);
		assert(rc == 0);
		cn_policy_audit_hash(abytes, alen, ahash);
		c.audit_node = e.node;
		c.audit_seq = e.seq;
		c.audit = abytes;
		c.audit_len = alen;
		snprintf(head_key, sizeof head_key, META_AUDIT "%s", e.node);
		put_be64(head_val, e.seq);
		memcpy(head_val + 8, ahash, CN_DOC_HASH_BYTES);
		c.meta_key[1] = head_key;
		c.meta_val[1] = head_val;
		c.meta_len[1] = sizeof head_val;
		c.n_meta = 2;
	}
	rc = head_reserve(p);
	if (rc == 0)
		rc = p->store.ops->commit(p->store.ctx, &c);
	free(enc);
	if (rc != 0) {
		if (rc == CN_EFULL) {
			p->stats.refused_full++;
			say(why, cap, "policy store is full (nothing was written)");
		} else {
			say(why, cap, "policy store: %s", cn_strerror(rc));
		}
		if (had)
			held_free(&cur);
		return rc;
	}
	/* Committed: now memory follows. */
	p->hlc = clock;
	if (had) {
		digest_toggle(p, &cur.d);
		held_free(&cur);
	} else {
		p->names++;
	}
	digest_toggle(p, d);
	if (local) {
		p->stats.applied_local++;
		rc = head_set(p, e.node, e.seq, ahash);
	} else {
		p->stats.applied_remote++;
	}
	if (outcome)
		*outcome = CN_POLICY_APPLIED;
	if (rc == 0 && is_trust_kind(d->kind)) {
		rc = rebuild_trust(p);
		if (rc == 0)
			rc = revalidate(p, false, false);
	}
	return rc;
}

int cn_policy_apply_local(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			  char *why, size_t why_cap)
{
	return apply(p, d, wall_ms, true, outcome, why, why_cap);
}

int cn_policy_apply_remote(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			   char *why, size_t why_cap)
{
	return apply(p, d, wall_ms, false, outcome, why, why_cap);
}

int cn_policy_apply_remote_bytes(cn_policy *p, const uint8_t *bytes, size_t len,
				 uint64_t wall_ms, int *outcome)
{
	cn_doc d;
	if (len > CN_DOC_WIRE_MAX || cn_doc_decode(bytes, len, &d, NULL) != 0) {
		p->stats.refused_invalid++;
		return CN_EINVAL;
	}
	return apply(p, &d, wall_ms, false, outcome, NULL, 0);
}

/* ---- reading ---------------------------------------------------------- */

typedef struct get_ctx {
	uint64_t version;
	cn_doc *out;
	uint8_t *body;
	size_t cap;
	int rc;
} get_ctx;

static int get_cb(void *arg, const cn_doc *d)
{
	get_ctx *g = arg;
	if (g->version != 0 && d->version != g->version)
		return 0;
	if (d->body_len > g->cap) {
		g->rc = CN_ENOSPACE;
		return 1;
	}
	*g->out = *d;
	if (d->body_len) {
		memcpy(g->body, d->body, d->body_len);
		g->out->body = g->body;
	}
	g->rc = 0;
	return 0; /* keep going: the last match is the highest */
}

int cn_policy_get(cn_policy *p, const char *kind, const char *name, uint64_t version,
		  cn_doc *out, uint8_t *body_buf, size_t body_cap)
{
	get_ctx g = {version, out, body_buf, body_cap, CN_ENOENT};
	doc_visit v = {get_cb, &g, 0};
	int rc = version == 0
			 ? p->store.ops->latest(p->store.ctx, kind, name, doc_visit_cb, &v)
			 : p->store.ops->history(p->store.ctx, kind, name, doc_visit_cb, &v);
	if (rc != 0)
		return rc;
	return g.rc;
}

int cn_policy_history(cn_policy *p, const char *kind, const char *name, cn_policy_doc_fn fn,
		      void *arg)
{
	doc_visit v = {fn, arg, 0};
	return p->store.ops->history(p->store.ctx, kind, name, doc_visit_cb, &v);
}

int cn_policy_list(cn_policy *p, const char *kind, cn_policy_doc_fn fn, void *arg)
{
	return scan_docs(p, kind, fn, arg);
}

/* ---- collection ------------------------------------------------------- */

typedef struct collect_ctx {
	const cn_policy *p;
	uint64_t wall_ms;
	uint32_t max;
	name_ref *v;
	uint32_t n;
} collect_ctx;

static int collect_cb(void *arg, const cn_doc *d)
{
	collect_ctx *c = arg;
	if (!d->deleted || !expired(c->p, d->version, c->wall_ms))
		return 0;
	snprintf(c->v[c->n].kind, sizeof c->v[c->n].kind, "%s", d->kind);
	snprintf(c->v[c->n].name, sizeof c->v[c->n].name, "%s", d->name);
	return ++c->n == c->max ? 1 : 0;
}

int cn_policy_collect(cn_policy *p, uint64_t wall_ms, uint32_t max, uint32_t *collected)
{
	if (collected)
		*collected = 0;
	if (max > CN_POLICY_COLLECT_MAX)
		max = CN_POLICY_COLLECT_MAX;
	if (max == 0)
		return 0;
	collect_ctx c = {p, wall_ms, max, calloc(max, sizeof(name_ref)), 0};
	if (c.v == NULL)
		return CN_ENOMEM;
	int rc = scan_docs(p, NULL, collect_cb, &c);
	for (uint32_t i = 0; rc == 0 && i < c.n; i++) {
		held cur;
		rc = load_latest(p, c.v[i].kind, c.v[i].name, &cur);
		if (rc != 0)
			break;
		cn_policy_commit cm = {.erase_kind = c.v[i].kind, .erase_name = c.v[i].name,
				       .history_max = p->cfg.history_max};
		rc = p->store.ops->commit(p->store.ctx, &cm);
		if (rc == 0) {
			digest_toggle(p, &cur.d);
			p->names--;
			p->stats.collected++;
			if (collected)
				(*collected)++;
		}
		bool trust = is_trust_kind(cur.d.kind);
		held_free(&cur);
		if (rc == 0 && trust)
			rc = rebuild_trust(p);
	}
	free(c.v);
	return rc;
}

/* ---- digest ----------------------------------------------------------- */

const uint8_t (*cn_policy_digest(const cn_policy *p))[CN_DOC_HASH_BYTES]
{
	return p->buckets;
}

void cn_policy_digest_root(const cn_policy *p, uint8_t root[CN_DOC_HASH_BYTES])
{
	crypto_generichash(root, CN_DOC_HASH_BYTES, &p->buckets[0][0], sizeof p->buckets, NULL, 0);
}

typedef struct bucket_ctx {
	const uint8_t *mask;
	cn_policy_doc_fn fn;
	void *arg;
} bucket_ctx;

static int bucket_cb(void *arg, const cn_doc *d)
{
	bucket_ctx *b = arg;
	uint8_t k = cn_policy_bucket_of(d->kind, d->name);
	if (!((b->mask[k / 8] >> (k % 8)) & 1))
		return 0;
	return b->fn(b->arg, d);
}

int cn_policy_bucket_list(cn_policy *p, const uint8_t mask[CN_POLICY_BUCKETS / 8],
			  cn_policy_doc_fn fn, void *arg)
{
	bucket_ctx b = {mask, fn, arg};
	return scan_docs(p, NULL, bucket_cb, &b);
}

/* ---- audit ------------------------------------------------------------ */

typedef struct audit_visit {
	cn_policy_audit_fn fn;
	void *arg;
	int bad;
} audit_visit;

static int audit_visit_cb(void *arg, const uint8_t *bytes, size_t len)
{
	audit_visit *v = arg;
	cn_audit_entry e;
	if (cn_policy_audit_decode(bytes, len, &e) != 0) {
		v->bad++;
		return 0;
	}
	return v->fn(v->arg, &e);
}

int cn_policy_audit_list(cn_policy *p, cn_policy_audit_fn fn, void *arg)
{
	audit_visit v = {fn, arg, 0};
	int rc = p->store.ops->audit_scan(p->store.ctx, audit_visit_cb, &v);
	return rc != 0 ? rc : v.bad ? CN_EIO : 0;
}

typedef struct verify_ctx {
	char node[CN_DOC_WRITER_MAX + 1];
	uint64_t seq;
	uint8_t hash[CN_DOC_HASH_BYTES];
	chain_head *ends; /* last entry of each chain seen */
	uint32_t n_ends, cap_ends;
	uint64_t entries;
	char *why;
	size_t cap;
	int rc;
} verify_ctx;

static int verify_end_chain(verify_ctx *v)
{
	if (v->node[0] == '\0')
		return 0;
	if (v->n_ends == v->cap_ends) {
		uint32_t cap = v->cap_ends ? v->cap_ends * 2 : 8;
		chain_head *n = realloc(v->ends, cap * sizeof *n);
		if (n == NULL)
			return CN_ENOMEM;
		v->ends = n;
		v->cap_ends = cap;
	}
	chain_head *h = &v->ends[v->n_ends++];
	memcpy(h->node, v->node, sizeof h->node);
	h->seq = v->seq;
	memcpy(h->hash, v->hash, sizeof h->hash);
	return 0;
}

static int verify_cb(void *arg, const uint8_t *bytes, size_t len)
{
	verify_ctx *v = arg;
	cn_audit_entry e;
	v->entries++;
	if (cn_policy_audit_decode(bytes, len, &e) != 0) {
		say(v->why, v->cap, "audit: entry %" PRIu64 " after node %s seq %" PRIu64
		    " does not decode (altered)", v->entries, v->node[0] ? v->node : "-", v->seq);
		v->rc = CN_EAUTH;
		return 1;
	}
	if (strcmp(e.node, v->node) != 0) {
		int rc = verify_end_chain(v);
		if (rc != 0)
			return rc;
		snprintf(v->node, sizeof v->node, "%s", e.node);
		v->seq = 0;
		memset(v->hash, 0, sizeof v->hash);
	}
	if (e.seq != v->seq + 1) {
		say(v->why, v->cap, "audit: node %s: entry %" PRIu64 " follows entry %" PRIu64
		    " (missing or reordered entries)", e.node, e.seq, v->seq);
		v->rc = CN_EAUTH;
		return 1;
	}
	if (sodium_memcmp(e.prev, v->hash, sizeof v->hash) != 0) {
		say(v->why, v->cap, "audit: node %s seq %" PRIu64
		    ": prev does not match the hash of entry %" PRIu64 " (altered)", e.node, e.seq,
		    v->seq);
		v->rc = CN_EAUTH;
		return 1;
	}
	v->seq = e.seq;
	cn_policy_audit_hash(bytes, len, v->hash);
	return 0;
}

static int check_head(cn_policy *p, const chain_head *h, char *why, size_t cap)
{
	char key[CN_POLICY_META_KEY_MAX];
	uint8_t val[HEAD_VALUE_LEN];
	size_t n = 0;
	snprintf(key, sizeof key, META_AUDIT "%s", h->node);
	int rc = p->store.ops->meta_get(p->store.ctx, key, val, sizeof val, &n);
	if (rc == CN_ENOENT && h->seq == 0)
		return 0;
	if (rc != 0 && rc != CN_ENOENT && rc != CN_ENOSPACE)
		return rc;
	if (rc != 0 || n != HEAD_VALUE_LEN) {
		say(why, cap, "audit: node %s: no recorded head for its chain", h->node);
		return CN_EAUTH;
	}
	uint64_t seq = get_be64(val);
	if (seq != h->seq || sodium_memcmp(val + 8, h->hash, CN_DOC_HASH_BYTES) != 0) {
		say(why, cap, "audit: node %s: chain ends at entry %" PRIu64
		    " but its recorded head is entry %" PRIu64 " (%s)", h->node, h->seq, seq,
		    seq == h->seq ? "last entry altered" : "entries removed or added");
		return CN_EAUTH;
	}
	return 0;
}

int cn_policy_audit_verify(cn_policy *p, cn_policy_audit_report *report, char *why,
			   size_t why_cap)
{
	say(why, why_cap, "%s", "");
	verify_ctx v = {.why = why, .cap = why_cap};
	int rc = p->store.ops->audit_scan(p->store.ctx, verify_cb, &v);
	if (rc == 0)
		rc = v.rc;
	if (rc == 0)
		rc = verify_end_chain(&v);
	bool self_seen = false;
	for (uint32_t i = 0; rc == 0 && i < v.n_ends; i++) {
		self_seen |= strcmp(v.ends[i].node, p->cfg.node) == 0;
		rc = check_head(p, &v.ends[i], why, why_cap);
	}
	if (rc == 0 && !self_seen) {
		/* This node's chain vanished entirely? Its head says. */
		chain_head none = {.seq = 0};
		snprintf(none.node, sizeof none.node, "%s", p->cfg.node);
		rc = check_head(p, &none, why, why_cap);
	}
	if (report) {
		report->entries = v.entries;
		report->chains = v.n_ends;
	}
	free(v.ends);
	return rc;
}

int cn_policy_audit_apply_remote(cn_policy *p, const uint8_t *bytes, size_t len)
{
	cn_audit_entry e;
	if (cn_policy_audit_decode(bytes, len, &e) != 0) {
		p->stats.audit_refused++;
		return CN_EINVAL;
	}
	if (strcmp(e.node, p->cfg.node) == 0) {
		p->stats.audit_refused++;
		return CN_EPERM;
	}
	const chain_head *h = head_find(p, e.node);
	uint64_t seq = h ? h->seq : 0;
	static const uint8_t zero[CN_DOC_HASH_BYTES];
	if (e.seq <= seq)
		return CN_EEXIST;
	if (e.seq != seq + 1 || memcmp(e.prev, h ? h->hash : zero, CN_DOC_HASH_BYTES) != 0) {
		p->stats.audit_refused++;
		return CN_ESTATE;
	}
	uint8_t hash[CN_DOC_HASH_BYTES], val[HEAD_VALUE_LEN];
	char key[CN_POLICY_META_KEY_MAX];
	cn_policy_audit_hash(bytes, len, hash);
	snprintf(key, sizeof key, META_AUDIT "%s", e.node);
	put_be64(val, e.seq);
	memcpy(val + 8, hash, CN_DOC_HASH_BYTES);
	cn_policy_commit c = {.history_max = p->cfg.history_max, .audit_node = e.node,
			      .audit_seq = e.seq, .audit = bytes, .audit_len = len,
			      .meta_key = {key}, .meta_val = {val}, .meta_len = {sizeof val},
			      .n_meta = 1};
	int rc = head_reserve(p);
	if (rc == 0)
		rc = p->store.ops->commit(p->store.ctx, &c);
	if (rc != 0)
		return rc;
	p->stats.audit_remote++;
	return head_set(p, e.node, e.seq, hash);
}

int cn_policy_audit_head(const cn_policy *p, const char *node, uint64_t *seq,
			 uint8_t hash[CN_DOC_HASH_BYTES])
{
	const chain_head *h = head_find(p, node);
	if (h == NULL)
		return CN_ENOENT;
	*seq = h->seq;
	memcpy(hash, h->hash, CN_DOC_HASH_BYTES);
	return 0;
}

const cn_policy_stats *cn_policy_get_stats(const cn_policy *p) { return &p->stats; }
const cn_trust *cn_policy_trust(const cn_policy *p) { return &p->trust; }
uint32_t cn_policy_names(const cn_policy *p) { return p->names; }
uint64_t cn_policy_last_active(const cn_policy *p) { return cn_hlc_physical(p->hlc.last); }
