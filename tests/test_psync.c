/* Policy replication (core/psync) through real nodes on the deterministic
 * network of tests/simnet.h: announcements on gossip, fetches and
 * anti-entropy on the stream plane, audit chains, refused writes. */
#include "simnet.h"

#include "core/policy.h"
#include "core/policy_mem.h"
#include "core/psync.h"
#include "policy_fixture.h"

static const int64_t EPOCH = INT64_C(1790000000000) - 1000000; /* wall = now + EPOCH */

typedef struct fleet {
	net t;
	cn_policy_mem *mem[NET_MAX];
	cn_policy *p[NET_MAX];
	cn_sigkey root, stranger;
} fleet;

static uint64_t wall_of(const fleet *f) { return (uint64_t)((int64_t)f->t.now_ms + EPOCH); }

/* Open node i's replica (trusting root, and stranger too if extra) and
 * attach it; the node must be started. */
static void replica_attach(fleet *f, int i, bool extra)
{
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, f->t.nodes[i].cfg.name);
	cfg.history_max = 4;
	cn_trust roots;
	cn_trust_init(&roots);
	ck_assert_int_eq(cn_trust_add_root(&roots, cn_sigkey_public(&f->root)), 0);
	if (extra)
		ck_assert_int_eq(cn_trust_add_root(&roots, cn_sigkey_public(&f->stranger)), 0);
	if (f->mem[i] == NULL)
		f->mem[i] = cn_policy_mem_new();
	char why[CN_POLICY_WHY_MAX];
	ck_assert_int_eq(cn_policy_open(&cfg, cn_policy_mem_store(f->mem[i]), &roots, wall_of(f),
					&f->p[i], why, sizeof why), 0);
	cn_trust_free(&roots);
	ck_assert_int_eq(cn_node_attach_policy(f->t.nodes[i].node, f->p[i], f->t.now_ms), 0);
	cn_node_policy_wall_offset(f->t.nodes[i].node, EPOCH);
}

static void fleet_init(fleet *f, int n, int started, uint64_t seed)
{
	memset(f, 0, sizeof *f);
	net_init(&f->t, n, seed, true);
	fx_key(&f->root, 1);
	fx_key(&f->stranger, 3);
	start_and_join(&f->t, started);
	for (int i = 0; i < started; i++)
		replica_attach(f, i, false);
}

static void fleet_free(fleet *f)
{
	for (int i = 0; i < f->t.n; i++)
		if (f->t.nodes[i].up)
			node_stop(&f->t, i); /* detaches: the node frees its psync */
	for (int i = 0; i < f->t.n; i++) {
		cn_policy_free(f->p[i]);
		cn_policy_mem_free(f->mem[i]);
	}
	net_free(&f->t);
}

/* An operator write on node i: stamp, sign, apply, announce. Returns the
 * version. */
static uint64_t write_on(fleet *f, int i, const char *name, uint64_t value, const cn_sigkey *k)
{
	uint64_t v;
	ck_assert_int_eq(cn_policy_stamp(f->p[i], wall_of(f), &v), 0);
	fx_doc d;
	ck_assert_int_eq(fx_make(&d, "config", name, v, f->t.nodes[i].cfg.name, k, false, value), 0);
	int outcome = 0;
	char why[CN_POLICY_WHY_MAX] = "";
	int rc = cn_policy_apply_local(f->p[i], &d.d, wall_of(f), &outcome, why, sizeof why);
	ck_assert_msg(rc == 0, "apply_local: %d %s", rc, why);
	ck_assert_int_eq(outcome, CN_POLICY_APPLIED);
	cn_node_policy_announce(f->t.nodes[i].node, &d.d, f->t.now_ms);
	drain_all(&f->t);
	return v;
}

/* The value stored under config/name on node i, or -1. */
static int64_t value_on(const fleet *f, int i, const char *name, uint64_t *version)
{
	cn_doc d;
	uint8_t body[256];
	if (cn_policy_get(f->p[i], "config", name, 0, &d, body, sizeof body) != 0)
		return -1;
	cn_mp_reader r;
	uint32_t n, kl;
	const char *k;
	uint64_t v;
	cn_mp_reader_init(&r, d.body, d.body_len);
	if (cn_mp_read_map(&r, &n, 1) != 0 || cn_mp_read_str(&r, &k, &kl, 8) != 0 ||
	    cn_mp_read_u64(&r, &v) != 0)
		return -1;
	if (version != NULL)
		*version = d.version;
	return (int64_t)v;
}

typedef struct expect {
	const fleet *f;
	const char *name;
	int64_t value;
} expect;

static bool all_hold(const net *t, const void *arg)
{
	const expect *e = arg;
	for (int i = 0; i < t->n; i++)
		if (live(t, i) && e->f->p[i] != NULL && value_on(e->f, i, e->name, NULL) != e->value)
			return false;
	return true;
}

static bool roots_equal(const net *t, const void *arg)
{
	const fleet *f = arg;
	uint8_t first[32], r[32];
	bool have = false;
	for (int i = 0; i < t->n; i++) {
		if (!live(t, i) || f->p[i] == NULL)
			continue;
		cn_policy_digest_root(f->p[i], have ? r : first);
		if (have && memcmp(first, r, 32) != 0)
			return false;
		have = true;
	}
	return have;
}

static uint64_t audit_entries(cn_policy *p)
{
	cn_policy_audit_report rep = {0};
	char why[CN_POLICY_WHY_MAX] = "";
	int rc = cn_policy_audit_verify(p, &rep, why, sizeof why);
	ck_assert_msg(rc == 0, "audit: %s", why);
	return rep.entries;
}

/* ------------------------------------------------------------------ */

START_TEST(write_reaches_every_node)
{
	fleet f;
	fleet_init(&f, 24, 24, 7);
	net_run(&f.t, 5000); /* membership settles */
	write_on(&f, 3, "telemetry", 42, &f.root);
	expect e = {&f, "telemetry", 42};
	uint64_t took = net_run_until(&f.t, all_hold, &e, 30000);
	ck_assert_msg(took != UINT64_MAX, "not every node holds the write after 30 s");
	fprintf(stderr, "write reached 24 nodes in %llu ms\n", (unsigned long long)took);
	/* It travelled by announcement and fetch, not by a body in a datagram:
	 * every other node fetched it exactly once. */
	uint64_t fetched = 0, applied = 0;
	for (int i = 0; i < f.t.n; i++) {
		const cn_psync_stats *st = cn_node_psync_stats(f.t.nodes[i].node);
		ck_assert_ptr_nonnull(st);
		fetched += st->docs_fetched;
		applied += st->docs_applied;
	}
	ck_assert_uint_eq(applied, 23);
	ck_assert_uint_ge(fetched, 23);
	ck_assert(roots_equal(&f.t, &f));
	/* A newer write supersedes on every node. */
	write_on(&f, 17, "telemetry", 43, &f.root);
	e.value = 43;
	ck_assert_uint_ne(net_run_until(&f.t, all_hold, &e, 30000), UINT64_MAX);
	check_invariants(&f.t);
	fleet_free(&f);
}
END_TEST

START_TEST(late_joiner_is_repaired_by_push_pull)
{
	fleet f;
	fleet_init(&f, 6, 5, 11);
	net_run(&f.t, 3000);
	for (int w = 0; w < 20; w++) {
		char name[32];
		snprintf(name, sizeof name, "item-%02d", w);
		write_on(&f, w % 5, name, (uint64_t)w + 100, &f.root);
		net_run(&f.t, 200);
	}
	net_run(&f.t, 60000); /* every announcement has been sent out and dropped */
	ck_assert(roots_equal(&f.t, &f));
	/* Audit chains travel by the exchanges that fetches and push-pulls
	 * start: all 5 writers' chains (20 entries) reach node 0 in time. */
	uint64_t held = 0;
	for (int k = 0; k < 300 && (held = audit_entries(f.p[0])) < 20; k++)
		net_run(&f.t, 1000);
	ck_assert_uint_eq(held, 20);

	node_start(&f.t, 5);
	replica_attach(&f, 5, false);
	cn_addr seed = node_addr(0);
	ck_assert_int_eq(cn_node_join(f.t.nodes[5].node, &seed, 1, f.t.now_ms), 0);
	drain_all(&f.t);
	uint64_t took = net_run_until(&f.t, roots_equal, &f, 10000);
	ck_assert_msg(took != UINT64_MAX, "the late joiner was not repaired");
	fprintf(stderr, "late joiner repaired in %llu ms\n", (unsigned long long)took);
	for (int w = 0; w < 20; w++) {
		char name[32];
		snprintf(name, sizeof name, "item-%02d", w);
		ck_assert_int_eq(value_on(&f, 5, name, NULL), w + 100);
	}
	const cn_psync_stats *st = cn_node_psync_stats(f.t.nodes[5].node);
	ck_assert_uint_ge(st->syncs_out, 1);
	ck_assert_uint_eq(st->docs_applied, 20);
	/* The audit chains came along and verify. */
	uint64_t entries = 0;
	for (int k = 0; k < 100 && (entries = audit_entries(f.p[5])) < 20; k++)
		net_run(&f.t, 1000);
	ck_assert_uint_eq(entries, 20);
	fleet_free(&f);
}
END_TEST

START_TEST(partitioned_writes_converge_after_heal)
{
	fleet f;
	fleet_init(&f, 8, 8, 23);
	net_run(&f.t, 5000);
	for (int i = 4; i < 8; i++)
		f.t.nodes[i].group = 1;
	net_run(&f.t, 2000);
	/* Both sides write the same name (and one name each). */
	uint64_t va = write_on(&f, 1, "shared", 1, &f.root);
	net_run(&f.t, 50);
	uint64_t vb = write_on(&f, 6, "shared", 2, &f.root);
	write_on(&f, 2, "left-only", 10, &f.root);
	write_on(&f, 5, "right-only", 20, &f.root);
	net_run(&f.t, 20000);
	/* Each side has its own winner during the partition. */
	ck_assert_int_eq(value_on(&f, 0, "shared", NULL), 1);
	ck_assert_int_eq(value_on(&f, 7, "shared", NULL), 2);
	ck_assert_int_eq(value_on(&f, 0, "right-only", NULL), -1);
	for (int i = 0; i < 8; i++)
		f.t.nodes[i].group = 0;
	uint64_t took = net_run_until(&f.t, roots_equal, &f, 300000);
	ck_assert_msg(took != UINT64_MAX, "no convergence 300 s after the heal");
	fprintf(stderr, "converged %llu ms after the heal\n", (unsigned long long)took);
	int64_t want = vb > va ? 2 : 1; /* the higher version wins everywhere */
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(value_on(&f, i, "shared", NULL), want);
		ck_assert_int_eq(value_on(&f, i, "left-only", NULL), 10);
		ck_assert_int_eq(value_on(&f, i, "right-only", NULL), 20);
	}
	check_invariants(&f.t);
	fleet_free(&f);
}
END_TEST

START_TEST(refused_writes_stay_out_and_are_not_refetched)
{
	fleet f;
	memset(&f, 0, sizeof f);
	net_init(&f.t, 6, 31, true);
	fx_key(&f.root, 1);
	fx_key(&f.stranger, 3);
	start_and_join(&f.t, 6);
	for (int i = 0; i < 6; i++)
		replica_attach(&f, i, i == 0); /* only node 0 trusts the stranger */
	net_run(&f.t, 3000);
	write_on(&f, 0, "rogue", 66, &f.stranger);
	net_run(&f.t, 120000); /* several push-pulls: anti-entropy keeps seeing the difference */
	ck_assert_int_eq(value_on(&f, 0, "rogue", NULL), 66);
	for (int i = 1; i < 6; i++) {
		ck_assert_int_eq(value_on(&f, i, "rogue", NULL), -1);
		const cn_psync_stats *st = cn_node_psync_stats(f.t.nodes[i].node);
		ck_assert_uint_ge(st->docs_refused, 1);
		/* refused once (or a few times in flight), not once per push-pull */
		ck_assert_uint_le(st->docs_refused, 3);
		ck_assert_uint_ge(cn_policy_get_stats(f.p[i])->refused_perm, 1);
	}
	fleet_free(&f);
}
END_TEST

START_TEST(garbage_streams_are_refused)
{
	fleet f;
	fleet_init(&f, 2, 2, 5);
	cn_node *n = f.t.nodes[0].node;
	/* Well-formed headers of each policy request type with broken bodies. */
	static const uint8_t bad[][16] = {
		{0x93, 0x01, 22, 0x81, 0x01, 0x91, 0x91, 0xa1, 'x'},      /* fetch: [kind] only */
		{0x93, 0x01, 20, 0x81, 0x01, 0xc4, 0x02, 0x00, 0x00},     /* sync: short buckets */
		{0x93, 0x01, 24, 0x81, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}, /* audit: huge count */
		{0x93, 0x01, 22, 0x82, 0x01, 0x90, 0x01, 0x90},           /* fetch: key twice */
		{0x93, 0x01, 23, 0x80},                                    /* a reply as a request */
	};
	static const size_t lens[] = {9, 9, 10, 8, 4};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		const uint8_t *reply = NULL;
		size_t rl = 0;
		int rc = cn_node_stream_serve(n, &f.t.nodes[1].cfg.addr, bad[i], lens[i], f.t.now_ms,
					      &reply, &rl);
		ck_assert_msg(rc != 0, "garbage %zu was served", i);
	}
	/* An empty fetch is valid and answered with an empty list. */
	static const uint8_t empty[] = {0x93, 0x01, 22, 0x81, 0x01, 0x90};
	const uint8_t *reply = NULL;
	size_t rl = 0;
	ck_assert_int_eq(cn_node_stream_serve(n, &f.t.nodes[1].cfg.addr, empty, sizeof empty,
					      f.t.now_ms, &reply, &rl), 0);
	static const uint8_t want[] = {0x93, 0x01, 23, 0x81, 0x01, 0x90};
	ck_assert_uint_eq(rl, sizeof want);
	ck_assert_mem_eq(reply, want, sizeof want);
	fleet_free(&f);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("psync");
	TCase *tc = tcase_create("replication");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, write_reaches_every_node);
	tcase_add_test(tc, late_joiner_is_repaired_by_push_pull);
	tcase_add_test(tc, partitioned_writes_converge_after_heal);
	tcase_add_test(tc, refused_writes_stay_out_and_are_not_refetched);
	tcase_add_test(tc, garbage_streams_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
