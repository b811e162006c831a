/* cn_policy_check_local (core/policy.h): the dry run behind
 * `canopy policy apply --dry-run`. It must give the answer apply_local
 * would give and change nothing: not the store, not the digest, not the
 * clock, not the stats. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/policy_mem.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "util/err.h"

#define T0 UINT64_C(1700000000000)

static cn_sigkey root, op;
static cn_policy_mem *mem;
static cn_policy *p;

static void setup(void)
{
	ck_assert_int_eq(cn_crypto_init(), 0);
	fx_key(&root, 1);
	fx_key(&op, 2);
	mem = cn_policy_mem_new();
	ck_assert_ptr_nonnull(mem);
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, "n1");
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	char why[CN_POLICY_WHY_MAX] = "";
	ck_assert_int_eq(cn_policy_open(&cfg, cn_policy_mem_store(mem), &roots, T0, &p, why,
					sizeof why), 0);
	cn_trust_free(&roots);
}

static void teardown(void)
{
	cn_policy_free(p);
	cn_policy_mem_free(mem);
	cn_sigkey_wipe(&root);
	cn_sigkey_wipe(&op);
}

/* Everything observable about the replica, to compare before and after. */
typedef struct snapshot {
	cn_policy_stats stats;
	uint8_t root[CN_DOC_HASH_BYTES];
	uint32_t names;
	uint64_t last_active;
	uint64_t audit_seq;
} snapshot;

static void snap(snapshot *s)
{
	memset(s, 0, sizeof *s);
	s->stats = *cn_policy_get_stats(p);
	cn_policy_digest_root(p, s->root);
	s->names = cn_policy_names(p);
	s->last_active = cn_policy_last_active(p);
	uint8_t h[CN_DOC_HASH_BYTES];
	if (cn_policy_audit_head(p, "n1", &s->audit_seq, h) != 0)
		s->audit_seq = 0;
}

static void same(const snapshot *a, const snapshot *b)
{
	ck_assert(memcmp(&a->stats, &b->stats, sizeof a->stats) == 0);
	ck_assert(memcmp(a->root, b->root, sizeof a->root) == 0);
	ck_assert_uint_eq(a->names, b->names);
	ck_assert_uint_eq(a->last_active, b->last_active);
	ck_assert_uint_eq(a->audit_seq, b->audit_seq);
}

START_TEST(check_new_update_duplicate)
{
	fx_doc a, b;
	snapshot s0, s1;
	int outcome = 0;
	char why[CN_POLICY_WHY_MAX];
	ck_assert_int_eq(fx_make(&a, "config", "app", T0 << 16, "n1", &root, false, 1), 0);

	/* New name: would apply; nothing changes. */
	snap(&s0);
	ck_assert_int_eq(cn_policy_check_local(p, &a.d, T0, &outcome, why, sizeof why), 0);
	ck_assert_int_eq(outcome, CN_POLICY_APPLIED);
	snap(&s1);
	same(&s0, &s1);
	cn_doc got;
	uint8_t body[256];
	ck_assert_int_eq(cn_policy_get(p, "config", "app", 0, &got, body, sizeof body), CN_ENOENT);

	/* Stored: the same document is a duplicate, a newer one would apply. */
	ck_assert_int_eq(cn_policy_apply_local(p, &a.d, T0, &outcome, why, sizeof why), 0);
	ck_assert_int_eq(outcome, CN_POLICY_APPLIED);
	snap(&s0);
	outcome = 0;
	ck_assert_int_eq(cn_policy_check_local(p, &a.d, T0, &outcome, why, sizeof why), 0);
	ck_assert_int_eq(outcome, CN_POLICY_DUPLICATE);
	ck_assert_int_eq(fx_make(&b, "config", "app", (T0 << 16) + 5, "n1", &root, false, 2), 0);
	ck_assert_int_eq(cn_policy_check_local(p, &b.d, T0, &outcome, why, sizeof why), 0);
	ck_assert_int_eq(outcome, CN_POLICY_APPLIED);
	snap(&s1);
	same(&s0, &s1);
	ck_assert_int_eq(cn_policy_get(p, "config", "app", 0, &got, body, sizeof body), 0);
	ck_assert_uint_eq(got.version, T0 << 16);
}
END_TEST

START_TEST(check_refusals_match_apply)
{
	fx_doc newer, older, unsigned_, stranger, future;
	snapshot s0, s1;
	int outcome = 0;
	char why[CN_POLICY_WHY_MAX], why2[CN_POLICY_WHY_MAX];
	ck_assert_int_eq(fx_make(&newer, "config", "app", (T0 << 16) + 9, "n1", &root, false, 1), 0);
	ck_assert_int_eq(cn_policy_apply_local(p, &newer.d, T0, &outcome, why, sizeof why), 0);
	ck_assert_int_eq(fx_make(&older, "config", "app", T0 << 16, "n1", &root, false, 2), 0);
	ck_assert_int_eq(fx_make(&unsigned_, "config", "x", T0 << 16, "n1", NULL, false, 3), 0);
	ck_assert_int_eq(fx_make(&stranger, "config", "x", T0 << 16, "n1", &op, false, 3), 0);
	ck_assert_int_eq(fx_make(&future, "config", "x", (T0 + 3600000) << 16, "n1", &root, false, 3),
			 0);
	struct {
		const cn_doc *d;
		int rc;
		const char *why;
	} cases[] = {
		{&older.d, CN_ESTATE, "is newer"},
		{&unsigned_.d, CN_EPERM, "unsigned"},
		{&stranger.d, CN_EPERM, "unknown key"},
		{&future.d, CN_ERANGE, "ahead"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snap(&s0);
		why[0] = '\0';
		ck_assert_int_eq(cn_policy_check_local(p, cases[i].d, T0, &outcome, why, sizeof why),
				 cases[i].rc);
		ck_assert_msg(strstr(why, cases[i].why) != NULL, "case %zu: %s", i, why);
		snap(&s1);
		same(&s0, &s1);
		/* apply_local says the same (and counts it). */
		ck_assert_int_eq(cn_policy_apply_local(p, cases[i].d, T0, &outcome, why2, sizeof why2),
				 cases[i].rc);
		ck_assert_str_eq(why, why2);
	}
	/* A tampered body is malformed: check says so too. */
	fx_doc bad;
	ck_assert_int_eq(fx_make(&bad, "config", "y", T0 << 16, "n1", &root, false, 3), 0);
	bad.body[bad.d.body_len - 1] ^= 1;
	ck_assert_int_eq(cn_policy_check_local(p, &bad.d, T0, &outcome, why, sizeof why), CN_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy_check");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, check_new_update_duplicate);
	tcase_add_test(tc, check_refusals_match_apply);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
