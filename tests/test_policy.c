/* Unit and property tests for core/policy over the memory store: apply and
 * merge outcomes, refusals (forged, unsigned, out of scope, future,
 * replayed), history bound, rollback, tombstones and collection,
 * re-validation after role changes and revocations, store failures leaving
 * the replica usable, audit chains (verify passes; fails after an altered,
 * removed or reordered entry; remote chains), and convergence of replicas
 * fed random operations in random orders with duplicates. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/policy.h"
#include "core/policy_mem.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "util/err.h"
#include "util/rng.h"

#define T0 UINT64_C(1700000000000) /* wall ms of the tests' "now" */

static cn_sigkey root, op, stranger;

static void setup(void)
{
	fx_key(&root, 1);
	fx_key(&op, 2);
	fx_key(&stranger, 3);
}

static void teardown(void)
{
	cn_sigkey_wipe(&root);
	cn_sigkey_wipe(&op);
	cn_sigkey_wipe(&stranger);
}

typedef struct replica {
	cn_policy_mem *mem;
	cn_policy *p;
} replica;

static void replica_open(replica *r, const char *node, uint32_t history_max)
{
	if (r->mem == NULL)
		r->mem = cn_policy_mem_new();
	ck_assert_ptr_nonnull(r->mem);
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, node);
	cfg.history_max = history_max;
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	char why[CN_POLICY_WHY_MAX] = "";
	ck_assert_int_eq(cn_policy_open(&cfg, cn_policy_mem_store(r->mem), &roots, T0, &r->p, why,
					sizeof why), 0);
	cn_trust_free(&roots);
}

static void replica_close(replica *r)
{
	cn_policy_free(r->p);
	cn_policy_mem_free(r->mem);
	r->p = NULL;
	r->mem = NULL;
}

static uint64_t ver(uint64_t ms, uint64_t logical)
{
	return cn_hlc_make(ms, logical);
}

static int apply_r(replica *r, const cn_doc *d, int *outcome)
{
	return cn_policy_apply_remote(r->p, d, T0, outcome, NULL, 0);
}

/* The value v of the winner's {"v": v} body, or -1 if none, -2 tombstone. */
static int64_t value_of(replica *r, const char *kind, const char *name, uint64_t version)
{
	cn_doc d;
	uint8_t body[CN_DOC_BODY_MAX];
	int rc = cn_policy_get(r->p, kind, name, version, &d, body, sizeof body);
	if (rc == CN_ENOENT)
		return -1;
	ck_assert_int_eq(rc, 0);
	if (d.deleted)
		return -2;
	cn_mp_reader rd;
	uint32_t n, kl;
	const char *k;
	uint64_t v;
	cn_mp_reader_init(&rd, d.body, d.body_len);
	ck_assert_int_eq(cn_mp_read_map(&rd, &n, 1), 0);
	ck_assert_int_eq(cn_mp_read_str(&rd, &k, &kl, 8), 0);
	ck_assert_int_eq(cn_mp_read_u64(&rd, &v), 0);
	return (int64_t)v;
}

START_TEST(apply_merge_outcomes)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	fx_doc a, b;
	int out = 0;
	char why[CN_POLICY_WHY_MAX];
	fx_make(&a, "config", "telemetry", ver(T0 - 10, 0), "n2", &root, false, 1);
	ck_assert_int_eq(apply_r(&r, &a.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_APPLIED);
	ck_assert_int_eq(apply_r(&r, &a.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_DUPLICATE);
	fx_make(&b, "config", "telemetry", ver(T0 - 5, 0), "n3", &root, false, 2);
	ck_assert_int_eq(apply_r(&r, &b.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_APPLIED);
	/* the older one again: a replay, inert */
	ck_assert_int_eq(apply_r(&r, &a.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_STALE);
	ck_assert_int_eq(value_of(&r, "config", "telemetry", 0), 2);
	/* same version, writer tie-break: "n4" > "n3" */
	fx_make(&a, "config", "telemetry", ver(T0 - 5, 0), "n4", &root, false, 3);
	ck_assert_int_eq(apply_r(&r, &a.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_APPLIED);
	/* a re-signed body with a stale version loses, from a peer or locally */
	fx_make(&a, "config", "telemetry", ver(T0 - 6, 0), "n9", &root, false, 99);
	ck_assert_int_eq(apply_r(&r, &a.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_STALE);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &a.d, T0, &out, why, sizeof why), CN_ESTATE);
	ck_assert_ptr_nonnull(strstr(why, "is newer"));
	ck_assert_int_eq(value_of(&r, "config", "telemetry", 0), 3);
	const cn_policy_stats *st = cn_policy_get_stats(r.p);
	ck_assert_uint_eq(st->applied_remote, 3);
	ck_assert_uint_eq(st->duplicate, 1);
	ck_assert_uint_eq(st->stale, 3);
	ck_assert_uint_eq(cn_policy_names(r.p), 1);
	replica_close(&r);
}
END_TEST

START_TEST(refusals)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	fx_doc f;
	int out = 0;
	char why[CN_POLICY_WHY_MAX];
	uint8_t d0[32], d1[32];
	cn_policy_digest_root(r.p, d0);
	fx_make(&f, "config", "a", ver(T0, 0), "n1", NULL, false, 1);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_str_eq(why, "unsigned");
	fx_make(&f, "config", "a", ver(T0, 0), "n1", &stranger, false, 1);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &f.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "unknown key"));
	fx_make(&f, "config", "a", ver(T0, 0), "n1", &root, false, 1);
	f.body[3] ^= 1; /* body altered after signing (hash no longer matches) */
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &f.d, T0, &out, why, sizeof why), CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "body"));
	fx_make(&f, "config", "a", ver(T0, 0), "n1", &root, false, 1);
	strcpy(f.d.name, "b"); /* renamed after signing */
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &f.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "bad signature"));
	fx_make(&f, "config", "a", ver(T0 + 61000, 0), "n1", &root, false, 1);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &f.d, T0, &out, why, sizeof why), CN_ERANGE);
	ck_assert_ptr_nonnull(strstr(why, "ahead"));
	const cn_policy_stats *st = cn_policy_get_stats(r.p);
	ck_assert_uint_eq(st->refused_perm, 3);
	ck_assert_uint_eq(st->refused_invalid, 1);
	ck_assert_uint_eq(st->refused_future, 1);
	ck_assert_uint_eq(cn_policy_names(r.p), 0);
	cn_policy_digest_root(r.p, d1);
	ck_assert_mem_eq(d0, d1, 32);
	/* a malformed encoding from a peer */
	uint8_t junk[] = {0x81, 0x01, 0xc1};
	ck_assert_int_eq(cn_policy_apply_remote_bytes(r.p, junk, sizeof junk, T0, &out), CN_EINVAL);
	replica_close(&r);
}
END_TEST

START_TEST(scope_and_revalidation)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	const char *kinds[] = {"config"}, *pa[] = {"tenant-a/"}, *pb[] = {"tenant-b/"};
	fx_doc role, f, g;
	int out = 0;
	char why[CN_POLICY_WHY_MAX];
	fx_make(&f, "config", "tenant-a/x", ver(T0 - 100, 0), "n1", &op, false, 1);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), CN_EPERM); /* no role yet */
	fx_role(&role, "ops", ver(T0 - 200, 0), "n1", &root, &op, kinds, 1, pa, 1);
	ck_assert_int_eq(apply_r(&r, &role.d, &out), 0);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_APPLIED);
	fx_make(&g, "job", "tenant-a/x", ver(T0 - 100, 0), "n1", &op, false, 1);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &g.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "kind 'job' not granted"));
	fx_make(&g, "config", "tenant-b/x", ver(T0 - 100, 0), "n1", &op, false, 1);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &g.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "outside the prefixes"));
	/* a root write under the name first, then op's newer write */
	fx_make(&g, "config", "tenant-a/y", ver(T0 - 90, 0), "n1", &root, false, 7);
	ck_assert_int_eq(apply_r(&r, &g.d, &out), 0);
	fx_make(&g, "config", "tenant-a/y", ver(T0 - 80, 0), "n1", &op, false, 8);
	ck_assert_int_eq(apply_r(&r, &g.d, &out), 0);
	ck_assert_int_eq(value_of(&r, "config", "tenant-a/y", 0), 8);
	/* narrow the role to tenant-b: op's writes are retracted; y falls back
	 * to the root's version, x is forgotten */
	fx_role(&role, "ops", ver(T0 - 50, 0), "n1", &root, &op, kinds, 1, pb, 1);
	ck_assert_int_eq(apply_r(&r, &role.d, &out), 0);
	ck_assert_int_eq(value_of(&r, "config", "tenant-a/y", 0), 7);
	ck_assert_int_eq(value_of(&r, "config", "tenant-a/x", 0), -1);
	ck_assert_uint_eq(cn_policy_get_stats(r.p)->retracted, 2);
	/* revocation with a cutoff: op's tenant-b write before it stays */
	fx_make(&g, "config", "tenant-b/early", ver(T0 - 40, 0), "n1", &op, false, 1);
	ck_assert_int_eq(apply_r(&r, &g.d, &out), 0);
	fx_make(&g, "config", "tenant-b/late", ver(T0 - 20, 0), "n1", &op, false, 1);
	ck_assert_int_eq(apply_r(&r, &g.d, &out), 0); /* arrives before the revocation */
	char name[80] = "key/";
	sodium_bin2hex(name + 4, 65, cn_sigkey_public(&op), 32);
	fx_make(&f, "revoke", name, ver(T0 - 30, 0), "n1", &root, false, 0);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), 0);
	ck_assert_int_eq(value_of(&r, "config", "tenant-b/early", 0), 1);
	ck_assert_int_eq(value_of(&r, "config", "tenant-b/late", 0), -1);
	fx_make(&g, "config", "tenant-b/later", ver(T0 - 10, 0), "n1", &op, false, 1);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &g.d, T0, &out, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "revoked"));
	ck_assert(cn_trust_key_revoked(cn_policy_trust(r.p), cn_sigkey_public(&op), 0));
	/* reopen over the same store: same state */
	uint8_t d0[32], d1[32];
	cn_policy_digest_root(r.p, d0);
	uint32_t names = cn_policy_names(r.p);
	cn_policy_free(r.p);
	replica_open(&r, "n1", 0);
	cn_policy_digest_root(r.p, d1);
	ck_assert_mem_eq(d0, d1, 32);
	ck_assert_uint_eq(cn_policy_names(r.p), names);
	ck_assert_int_eq(value_of(&r, "config", "tenant-b/early", 0), 1);
	replica_close(&r);
}
END_TEST

typedef struct hist_vers {
	uint64_t *seen;
	size_t *n;
} hist_vers;

static int hist_cb(void *arg, const cn_doc *d)
{
	hist_vers *hv = arg;
	hv->seen[(*hv->n)++] = d->version;
	return 0;
}

START_TEST(history_bound_and_rollback)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	fx_doc f;
	int out;
	for (uint64_t i = 1; i <= 20; i++) {
		fx_make(&f, "job", "web", ver(T0 - 1000 + i, 0), "n1", &root, false, i);
		ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, NULL, 0), 0);
	}
	uint64_t seen[64];
	size_t n = 0;
	hist_vers hv = {seen, &n};
	ck_assert_int_eq(cn_policy_history(r.p, "job", "web", hist_cb, &hv), 0);
	ck_assert_uint_eq(n, CN_POLICY_HISTORY_DEFAULT);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(seen[i], ver(T0 - 1000 + 5 + i, 0)); /* 5..20, oldest first */
	ck_assert_int_eq(value_of(&r, "job", "web", ver(T0 - 1000 + 5, 0)), 5);
	ck_assert_int_eq(value_of(&r, "job", "web", ver(T0 - 1000 + 4, 0)), -1);
	/* rollback to version 7: a new write carrying its body */
	cn_doc old;
	uint8_t body[CN_DOC_BODY_MAX];
	ck_assert_int_eq(cn_policy_get(r.p, "job", "web", ver(T0 - 1000 + 7, 0), &old, body, sizeof body), 0);
	uint64_t v;
	ck_assert_int_eq(cn_policy_stamp(r.p, T0, &v), 0);
	ck_assert_uint_gt(v, ver(T0 - 1000 + 20, 0));
	cn_doc rb;
	ck_assert_int_eq(cn_doc_init(&rb, "job", "web", v, "n1", cn_sigkey_public(&root), false,
				     old.body, old.body_len, NULL, 0), 0);
	fx_sign(&rb, &root);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &rb, T0, &out, NULL, 0), 0);
	ck_assert_int_eq(value_of(&r, "job", "web", 0), 7);
	ck_assert_uint_eq(cn_policy_names(r.p), 1);
	/* small history for the simulator */
	replica s = {0};
	replica_open(&s, "n2", 1);
	for (uint64_t i = 1; i <= 3; i++) {
		fx_make(&f, "job", "web", ver(T0 - 1000 + i, 0), "n1", &root, false, i);
		ck_assert_int_eq(apply_r(&s, &f.d, &out), 0);
	}
	n = 0;
	ck_assert_int_eq(cn_policy_history(s.p, "job", "web", hist_cb, &hv), 0);
	ck_assert_uint_eq(n, 1);
	replica_close(&s);
	replica_close(&r);
}
END_TEST

START_TEST(tombstones_and_collection)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	fx_doc f;
	int out;
	uint8_t empty[32], d[32];
	cn_policy_digest_root(r.p, empty);
	fx_make(&f, "alert", "cpu", ver(T0 - 5000, 0), "n2", &root, false, 1);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), 0);
	fx_make(&f, "alert", "cpu", ver(T0 - 4000, 0), "n2", &root, true, 0);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), 0);
	ck_assert_int_eq(value_of(&r, "alert", "cpu", 0), -2);
	/* the live version again: older than the tombstone, inert */
	fx_make(&f, "alert", "cpu", ver(T0 - 5000, 0), "n2", &root, false, 1);
	ck_assert_int_eq(apply_r(&r, &f.d, &out), 0);
	ck_assert_int_eq(out, CN_POLICY_STALE);
	uint32_t collected = 9;
	ck_assert_int_eq(cn_policy_collect(r.p, T0, 100, &collected), 0);
	ck_assert_uint_eq(collected, 0); /* younger than the ttl */
	uint64_t later = T0 - 4000 + CN_POLICY_TTL_DEFAULT_MS;
	ck_assert_int_eq(cn_policy_collect(r.p, later, 100, &collected), 0);
	ck_assert_uint_eq(collected, 1);
	ck_assert_int_eq(value_of(&r, "alert", "cpu", 0), -1);
	ck_assert_uint_eq(cn_policy_names(r.p), 0);
	cn_policy_digest_root(r.p, d);
	ck_assert_mem_eq(d, empty, 32);
	/* the collected tombstone, re-sent by a peer, stays forgotten */
	fx_make(&f, "alert", "cpu", ver(T0 - 4000, 0), "n2", &root, true, 0);
	ck_assert_int_eq(cn_policy_apply_remote(r.p, &f.d, later, &out, NULL, 0), 0);
	ck_assert_int_eq(out, CN_POLICY_EXPIRED);
	ck_assert_uint_eq(cn_policy_names(r.p), 0);
	replica_close(&r);
}
END_TEST

START_TEST(store_failures_leave_replica_usable)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	fx_doc f;
	int out;
	char why[CN_POLICY_WHY_MAX];
	fx_make(&f, "config", "a", ver(T0 - 10, 0), "n1", &root, false, 1);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, NULL, 0), 0);
	uint8_t d0[32], d1[32];
	cn_policy_digest_root(r.p, d0);
	fx_make(&f, "config", "a", ver(T0 - 5, 0), "n1", &root, false, 2);
	cn_policy_mem_fail_commits(r.mem, 1);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, why, sizeof why), CN_EIO);
	cn_policy_digest_root(r.p, d1);
	ck_assert_mem_eq(d0, d1, 32);
	ck_assert_int_eq(value_of(&r, "config", "a", 0), 1);
	cn_policy_mem_set_bytes_max(r.mem, cn_policy_mem_bytes(r.mem) + 10);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, why, sizeof why), CN_EFULL);
	ck_assert_str_eq(why, "policy store is full (nothing was written)");
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
	cn_policy_mem_set_bytes_max(r.mem, 0);
	ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, why, sizeof why), 0);
	ck_assert_int_eq(value_of(&r, "config", "a", 0), 2);
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
	replica_close(&r);
	/* the names limit */
	replica s = {0};
	s.mem = cn_policy_mem_new();
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, "n1");
	cfg.names_max = 2;
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	ck_assert_int_eq(cn_policy_open(&cfg, cn_policy_mem_store(s.mem), &roots, T0, &s.p, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof name, "n%d", i);
		fx_make(&f, "config", name, ver(T0, 0), "n1", &root, false, 1);
		ck_assert_int_eq(apply_r(&s, &f.d, &out), i < 2 ? 0 : CN_EFULL);
	}
	cfg.node[0] = ' ';
	cn_policy *bad = NULL;
	ck_assert_int_eq(cn_policy_open(&cfg, cn_policy_mem_store(s.mem), &roots, T0, &bad, why, sizeof why), CN_EINVAL);
	ck_assert_ptr_null(bad);
	cn_trust_free(&roots);
	replica_close(&s);
}
END_TEST

static void write_n(replica *r, int n, uint64_t base)
{
	fx_doc f;
	int out;
	for (int i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof name, "c%d", i % 3);
		fx_make(&f, "config", name, ver(base + (uint64_t)i, 0), "n1", &root, i == 4, (uint64_t)i);
		ck_assert_int_eq(cn_policy_apply_local(r->p, &f.d, T0, &out, NULL, 0), 0);
	}
}

typedef struct audit_copy {
	uint8_t bytes[16][CN_POLICY_AUDIT_MAX];
	size_t len[16];
	size_t n;
} audit_copy;

static int audit_copy_cb(void *arg, const cn_audit_entry *e)
{
	audit_copy *c = arg;
	ck_assert_int_eq(cn_policy_audit_encode(e, c->bytes[c->n], CN_POLICY_AUDIT_MAX, &c->len[c->n]), 0);
	c->n++;
	return 0;
}

START_TEST(audit_chain)
{
	replica r = {0};
	replica_open(&r, "n1", 0);
	write_n(&r, 6, T0 - 100);
	char why[CN_POLICY_WHY_MAX];
	cn_policy_audit_report rep;
	ck_assert_int_eq(cn_policy_audit_verify(r.p, &rep, why, sizeof why), 0);
	ck_assert_uint_eq(rep.entries, 6);
	ck_assert_uint_eq(rep.chains, 1);
	audit_copy ac = {.n = 0};
	ck_assert_int_eq(cn_policy_audit_list(r.p, audit_copy_cb, &ac), 0);
	ck_assert_uint_eq(ac.n, 6);
	cn_audit_entry e;
	ck_assert_int_eq(cn_policy_audit_decode(ac.bytes[4], ac.len[4], &e), 0);
	ck_assert_str_eq(e.node, "n1");
	ck_assert_uint_eq(e.seq, 5);
	ck_assert(e.deleted);
	ck_assert_mem_eq(e.key, cn_sigkey_public(&root), 32);

	/* remote chain: another replica takes n1's entries, in order only */
	replica s = {0};
	replica_open(&s, "n2", 0);
	ck_assert_int_eq(cn_policy_audit_apply_remote(s.p, ac.bytes[1], ac.len[1]), CN_ESTATE);
	for (size_t i = 0; i < ac.n; i++)
		ck_assert_int_eq(cn_policy_audit_apply_remote(s.p, ac.bytes[i], ac.len[i]), 0);
	ck_assert_int_eq(cn_policy_audit_apply_remote(s.p, ac.bytes[2], ac.len[2]), CN_EEXIST);
	ck_assert_int_eq(cn_policy_audit_apply_remote(r.p, ac.bytes[0], ac.len[0]), CN_EPERM);
	ck_assert_int_eq(cn_policy_audit_verify(s.p, &rep, why, sizeof why), 0);
	ck_assert_uint_eq(rep.entries, 6);
	uint64_t seq1, seq2;
	uint8_t h1[32], h2[32];
	ck_assert_int_eq(cn_policy_audit_head(r.p, "n1", &seq1, h1), 0);
	ck_assert_int_eq(cn_policy_audit_head(s.p, "n1", &seq2, h2), 0);
	ck_assert_uint_eq(seq1, seq2);
	ck_assert_mem_eq(h1, h2, 32);
	/* a forged next link (wrong prev) is refused */
	cn_audit_entry forged = e;
	forged.seq = 7;
	uint8_t fb[CN_POLICY_AUDIT_MAX];
	size_t fl;
	ck_assert_int_eq(cn_policy_audit_encode(&forged, fb, sizeof fb, &fl), 0);
	ck_assert_int_eq(cn_policy_audit_apply_remote(s.p, fb, fl), CN_ESTATE);
	write_n(&s, 2, T0 - 50); /* s's own chain next to n1's */
	ck_assert_int_eq(cn_policy_audit_verify(s.p, &rep, why, sizeof why), 0);
	ck_assert_uint_eq(rep.chains, 2);
	replica_close(&s);

	/* altering any byte of any entry is detected */
	for (size_t idx = 0; idx < 6; idx++) {
		for (size_t off = 0; off < ac.len[idx]; off += 7) {
			uint8_t orig = ac.bytes[idx][off];
			ck_assert_int_eq(cn_policy_mem_audit_poke(r.mem, idx, off, orig ^ 0x01), 0);
			ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), CN_EAUTH);
			ck_assert_int_eq(cn_policy_mem_audit_poke(r.mem, idx, off, orig), 0);
		}
	}
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
	/* removing the middle, the first or the last entry is detected */
	ck_assert_int_eq(cn_policy_mem_audit_remove(r.mem, 2), 0);
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), CN_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "missing or reordered"));
	replica_close(&r);

	replica t = {0};
	replica_open(&t, "n1", 0);
	write_n(&t, 3, T0 - 100);
	ck_assert_int_eq(cn_policy_mem_audit_remove(t.mem, 2), 0);
	ck_assert_int_eq(cn_policy_audit_verify(t.p, NULL, why, sizeof why), CN_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "recorded head"));
	ck_assert_int_eq(cn_policy_mem_audit_remove(t.mem, 0), 0);
	ck_assert_int_eq(cn_policy_audit_verify(t.p, NULL, why, sizeof why), CN_EAUTH);
	ck_assert_int_eq(cn_policy_mem_audit_remove(t.mem, 0), 0);
	ck_assert_int_eq(cn_policy_audit_verify(t.p, NULL, why, sizeof why), CN_EAUTH);
	replica_close(&t);
}
END_TEST

/* ---- convergence ------------------------------------------------------ */

enum { REPLICAS = 5, OPS = 120, NAMES = 10 };

typedef struct winner {
	char kind[CN_DOC_KIND_MAX + 1], name[CN_DOC_NAME_MAX + 1];
	uint64_t version;
	uint8_t hash[32];
} winner;

typedef struct winners {
	winner v[256];
	size_t n;
} winners;

static int winners_cb(void *arg, const cn_doc *d)
{
	winners *w = arg;
	ck_assert_uint_lt(w->n, 256);
	winner *x = &w->v[w->n++];
	strcpy(x->kind, d->kind);
	strcpy(x->name, d->name);
	x->version = d->version;
	cn_doc_hash(d, x->hash);
	return 0;
}

static void assert_converged(replica *rs, size_t n, uint64_t seed)
{
	static winners w0, wi;
	uint8_t d0[32], di[32];
	w0.n = 0;
	ck_assert_int_eq(cn_policy_list(rs[0].p, NULL, winners_cb, &w0), 0);
	cn_policy_digest_root(rs[0].p, d0);
	for (size_t i = 1; i < n; i++) {
		wi.n = 0;
		ck_assert_int_eq(cn_policy_list(rs[i].p, NULL, winners_cb, &wi), 0);
		cn_policy_digest_root(rs[i].p, di);
		ck_assert_msg(wi.n == w0.n && memcmp(&wi.v, &w0.v, w0.n * sizeof w0.v[0]) == 0,
			      "seed %" PRIu64 ": replica %zu holds other winners", seed, i);
		ck_assert_msg(memcmp(di, d0, 32) == 0, "seed %" PRIu64 ": digest differs", seed);
	}
}

/* Anti-entropy between a and b: for every differing bucket, each sends
 * its winners there to the other. */
typedef struct ae_ctx {
	replica *to;
} ae_ctx;

static int ae_send(void *arg, const cn_doc *d)
{
	ae_ctx *c = arg;
	int out;
	uint8_t buf[1024];
	size_t n;
	ck_assert_int_eq(cn_doc_encode(d, buf, sizeof buf, &n), 0);
	int rc = cn_policy_apply_remote_bytes(c->to->p, buf, n, T0, &out);
	ck_assert(rc == 0 || rc == CN_EPERM);
	return 0;
}

static void anti_entropy(replica *a, replica *b)
{
	uint8_t mask[CN_POLICY_BUCKETS / 8] = {0};
	const uint8_t(*da)[32] = cn_policy_digest(a->p);
	const uint8_t(*db)[32] = cn_policy_digest(b->p);
	bool any = false;
	for (int k = 0; k < CN_POLICY_BUCKETS; k++)
		if (memcmp(da[k], db[k], 32) != 0) {
			mask[k / 8] |= (uint8_t)(1u << (k % 8));
			any = true;
		}
	if (!any)
		return;
	ae_ctx to_b = {b}, to_a = {a};
	ck_assert_int_eq(cn_policy_bucket_list(a->p, mask, ae_send, &to_b), 0);
	ck_assert_int_eq(cn_policy_bucket_list(b->p, mask, ae_send, &to_a), 0);
}

/* Random operations (writes, deletes, from several writers; with_trust
 * adds role grants, role changes and revocations), each delivered to every
 * replica 1-3 times in a random global order. */
static void run_schedule(uint64_t seed, bool with_trust)
{
	cn_rng rng;
	cn_rng_seed(&rng, seed);
	static fx_doc ops[OPS];
	const char *writers[] = {"n0", "n1", "n2"};
	const char *all[] = {"*"}, *pa[] = {"a/"}, *pb[] = {"b/"};
	char revoke_name[80] = "key/";
	sodium_bin2hex(revoke_name + 4, 65, cn_sigkey_public(&op), 32);
	for (int i = 0; i < OPS; i++) {
		char name[16];
		uint64_t r = cn_rng_below(&rng, 100);
		uint64_t v = ver(T0 - 10000 + cn_rng_below(&rng, 200), cn_rng_below(&rng, 2));
		const char *w = writers[cn_rng_below(&rng, 3)];
		snprintf(name, sizeof name, "%s%d", cn_rng_below(&rng, 2) ? "a/" : "b/",
			 (int)cn_rng_below(&rng, NAMES));
		if (with_trust && r < 6) {
			fx_role(&ops[i], "ops", v, w, &root, &op, all, 1,
				cn_rng_below(&rng, 2) ? pa : pb, 1);
		} else if (with_trust && r < 8) {
			fx_make(&ops[i], "role", "ops", v, w, &root, true, 0);
		} else if (with_trust && r < 9) {
			fx_make(&ops[i], "revoke", revoke_name, v, w, &root, false, 0);
		} else {
			const cn_sigkey *k = with_trust && cn_rng_below(&rng, 2) ? &op : &root;
			fx_make(&ops[i], cn_rng_below(&rng, 3) ? "config" : "job", name, v, w, k,
				cn_rng_below(&rng, 6) == 0, cn_rng_below(&rng, 1000));
		}
	}
	static replica rs[REPLICAS];
	for (int i = 0; i < REPLICAS; i++) {
		char node[8];
		snprintf(node, sizeof node, "r%d", i);
		memset(&rs[i], 0, sizeof rs[i]);
		replica_open(&rs[i], node, 1 + (uint32_t)cn_rng_below(&rng, 16));
	}
	/* deliveries: (replica, op) pairs, 1-3 copies each, shuffled */
	static uint32_t del[REPLICAS * OPS * 3];
	size_t nd = 0;
	for (uint32_t i = 0; i < REPLICAS; i++)
		for (uint32_t j = 0; j < OPS; j++)
			for (uint64_t c = 1 + cn_rng_below(&rng, 3); c > 0; c--)
				del[nd++] = i * OPS + j;
	cn_rng_shuffle(&rng, del, nd, sizeof del[0]);
	for (size_t i = 0; i < nd; i++) {
		int out;
		int rc = apply_r(&rs[del[i] / OPS], &ops[del[i] % OPS].d, &out);
		ck_assert_msg(rc == 0 || (with_trust && rc == CN_EPERM), "seed %" PRIu64 ": rc %d",
			      seed, rc);
	}
	if (with_trust) {
		/* Refusals depend on what trust a replica had when a write
		 * arrived, so convergence needs anti-entropy, as in the fleet:
		 * bounded rounds of pairwise digest comparison. */
		for (int round = 0; round < 6; round++)
			for (int i = 0; i < REPLICAS; i++)
				for (int j = i + 1; j < REPLICAS; j++)
					anti_entropy(&rs[i], &rs[j]);
	}
	assert_converged(rs, REPLICAS, seed);
	if (!with_trust) {
		/* the oracle: each name's winner is the maximum of its writes */
		for (int i = 0; i < OPS; i++) {
			bool top = true;
			for (int j = 0; j < OPS && top; j++)
				if (strcmp(ops[i].d.kind, ops[j].d.kind) == 0 &&
				    strcmp(ops[i].d.name, ops[j].d.name) == 0 &&
				    cn_doc_cmp(&ops[j].d, &ops[i].d) > 0)
					top = false;
			if (!top)
				continue;
			cn_doc d;
			uint8_t body[256];
			ck_assert_int_eq(cn_policy_get(rs[0].p, ops[i].d.kind, ops[i].d.name, 0, &d, body, sizeof body), 0);
			ck_assert_int_eq(cn_doc_cmp(&d, &ops[i].d), 0);
		}
	}
	for (int i = 0; i < REPLICAS; i++) {
		char why[CN_POLICY_WHY_MAX];
		ck_assert_int_eq(cn_policy_audit_verify(rs[i].p, NULL, why, sizeof why), 0);
		replica_close(&rs[i]);
	}
}

START_TEST(converges_lww_random_orders)
{
	for (uint64_t seed = 1; seed <= 30; seed++)
		run_schedule(seed, false);
}
END_TEST

START_TEST(converges_with_trust_changes)
{
	for (uint64_t seed = 100; seed < 130; seed++)
		run_schedule(seed, true);
}
END_TEST

int main(void)
{
	if (cn_crypto_init() != 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, apply_merge_outcomes);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, scope_and_revalidation);
	tcase_add_test(tc, history_bound_and_rollback);
	tcase_add_test(tc, tombstones_and_collection);
	tcase_add_test(tc, store_failures_leave_replica_usable);
	tcase_add_test(tc, audit_chain);
	tcase_add_test(tc, converges_lww_random_orders);
	tcase_add_test(tc, converges_with_trust_changes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
