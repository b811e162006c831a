/* Unit tests for core/pool (interning and dedupe) and the compact member
 * table in core/members (index invariants and record size). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/members.h"
#include "core/pool.h"
#include "util/err.h"

START_TEST(names_intern_to_dense_stable_idents)
{
	cn_pool *p;
	ck_assert_int_eq(cn_pool_new(&p), 0);
	char name[32];
	for (uint32_t i = 0; i < 5000; i++) {
		uint32_t id;
		snprintf(name, sizeof name, "node-%u", i);
		ck_assert_int_eq(cn_pool_intern_name(p, name, &id), 0);
		ck_assert_uint_eq(id, i);
	}
	uint32_t id;
	ck_assert_int_eq(cn_pool_intern_name(p, "node-1234", &id), 0);
	ck_assert_uint_eq(id, 1234);
	ck_assert_int_eq(cn_pool_find_name(p, "node-77", &id), 0);
	ck_assert_str_eq(cn_pool_name(p, id), "node-77");
	ck_assert_int_eq(cn_pool_find_name(p, "nobody", &id), CN_ENOENT);
	ck_assert_int_eq(cn_pool_intern_name(p, "", &id), CN_EINVAL);
	ck_assert_int_eq(cn_pool_intern_name(p, "bad\nname", &id), CN_EINVAL);
	char longname[CN_NAME_MAX + 2];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ck_assert_int_eq(cn_pool_intern_name(p, longname, &id), CN_EINVAL);
	ck_assert_uint_eq(cn_pool_ident_count(p), 5000);
	cn_pool_free(p);
}
END_TEST

START_TEST(meta_is_stored_once_and_refcounted)
{
	cn_pool *p;
	ck_assert_int_eq(cn_pool_new(&p), 0);
	cn_meta a, b;
	memset(&a, 0, sizeof a);
	strcpy(a.arch, "arm64");
	a.cpus = 4;
	/* Same content, different garbage after the terminators. */
	memset(&b, 0x5a, sizeof b);
	b.n_labels = 0;
	b.n_accel = 0;
	strcpy(b.arch, "arm64");
	b.os[0] = '\0';
	b.cpus = 4;
	b.mem_mb = b.load_milli = b.mem_free_mb = 0;
	b.power = b.battery_pct = 0;
	b.n_rollout = 0;
	b.n_workloads = 0;
	uint32_t ra, rb, rc;
	ck_assert_int_eq(cn_pool_meta_acquire(p, &a, &ra), 0);
	ck_assert_int_eq(cn_pool_meta_acquire(p, &b, &rb), 0);
	ck_assert_uint_eq(ra, rb);
	cn_pool_stats st;
	cn_pool_stats_get(p, &st);
	ck_assert_uint_eq(st.metas, 1);
	ck_assert_uint_eq(st.meta_hits, 1);
	a.cpus = 8;
	ck_assert_int_eq(cn_pool_meta_acquire(p, &a, &rc), 0);
	ck_assert_uint_ne(rc, ra);
	ck_assert_uint_eq(cn_pool_meta_get(p, rc)->cpus, 8);
	cn_pool_meta_release(p, ra);
	cn_pool_meta_release(p, rb);
	cn_pool_stats_get(p, &st);
	ck_assert_uint_eq(st.metas, 1);
	/* The freed slot is reused, the live one still found. */
	a.cpus = 16;
	uint32_t rd, re;
	ck_assert_int_eq(cn_pool_meta_acquire(p, &a, &rd), 0);
	a.cpus = 8;
	ck_assert_int_eq(cn_pool_meta_acquire(p, &a, &re), 0);
	ck_assert_uint_eq(re, rc);
	cn_pool_free(p);
}
END_TEST

START_TEST(endpoints_dedupe_by_address_and_versions)
{
	cn_pool *p;
	ck_assert_int_eq(cn_pool_new(&p), 0);
	cn_addr x = {.family = CN_ADDR_V4, .ip = {10, 0, 0, 1}, .port = 7946};
	uint32_t r1, r2, r3;
	ck_assert_int_eq(cn_pool_endpoint_acquire(p, &x, 1, 1, &r1), 0);
	ck_assert_int_eq(cn_pool_endpoint_acquire(p, &x, 1, 1, &r2), 0);
	ck_assert_int_eq(cn_pool_endpoint_acquire(p, &x, 1, 2, &r3), 0);
	ck_assert_uint_eq(r1, r2);
	ck_assert_uint_ne(r1, r3);
	ck_assert(cn_addr_eq(&cn_pool_endpoint_get(p, r3)->addr, &x));
	ck_assert_uint_eq(cn_pool_endpoint_get(p, r3)->vmax, 2);
	cn_pool_free(p);
}
END_TEST

START_TEST(many_metas_churn_without_growth)
{
	cn_pool *p;
	ck_assert_int_eq(cn_pool_new(&p), 0);
	cn_meta m;
	memset(&m, 0, sizeof m);
	uint32_t held = 0;
	for (uint32_t i = 0; i < 10000; i++) {
		uint32_t r;
		m.load_milli = i;
		ck_assert_int_eq(cn_pool_meta_acquire(p, &m, &r), 0);
		cn_pool_meta_release(p, held);
		held = r;
	}
	cn_pool_stats st;
	cn_pool_stats_get(p, &st);
	ck_assert_uint_eq(st.metas, 1);
	ck_assert_uint_lt(st.bytes, 64 * 1024);
	cn_pool_free(p);
}
END_TEST

START_TEST(member_table_index_and_size)
{
	ck_assert_uint_eq(sizeof(cn_member_rec), 32);
	cn_members m;
	cn_members_init(&m, 100, 0);
	for (uint32_t i = 0; i < 100; i++) {
		cn_member_rec r = {.ident = i * 2, .state = CN_STATE_ALIVE};
		ck_assert_int_eq(cn_members_add(&m, &r), 0);
	}
	cn_member_rec r = {.ident = 999};
	ck_assert_int_eq(cn_members_add(&m, &r), CN_EFULL);
	cn_rng rng;
	cn_rng_seed(&rng, 5);
	cn_members_shuffle(&m, &rng);
	ck_assert(cn_members_check(&m));
	cn_members_set_state(&m, cn_members_find(&m, 10), CN_STATE_DEAD, 5000);
	ck_assert_uint_eq(m.n_state[CN_STATE_DEAD], 1);
	ck_assert_uint_eq(cn_members_changed_ms(&m, cn_members_find(&m, 10)), 5000);
	cn_member_rec out;
	cn_members_remove(&m, cn_members_slot(&m, cn_members_find(&m, 10)), &out);
	ck_assert_uint_eq(out.ident, 10);
	ck_assert_ptr_null(cn_members_find(&m, 10));
	ck_assert_ptr_nonnull(cn_members_find(&m, 12));
	ck_assert(cn_members_check(&m));
	ck_assert_uint_eq(m.n_state[CN_STATE_DEAD], 0);
	cn_members_free(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, names_intern_to_dense_stable_idents);
	tcase_add_test(tc, meta_is_stored_once_and_refcounted);
	tcase_add_test(tc, endpoints_dedupe_by_address_and_versions);
	tcase_add_test(tc, many_metas_churn_without_growth);
	tcase_add_test(tc, member_table_index_and_size);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
