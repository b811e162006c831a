/* Unit tests for core/hlc: monotonic now() (also when wall time goes back),
 * causality through update(), the drift refusal and its counter, logical
 * overflow, restore after restart, and the (timestamp, node) order. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hlc.h"
#include "util/err.h"
#include "util/rng.h"

START_TEST(now_is_monotonic_when_wall_goes_back)
{
	cn_hlc h;
	cn_hlc_init(&h, 0);
	ck_assert_uint_eq(h.max_drift_ms, CN_HLC_DRIFT_DEFAULT_MS);
	uint64_t prev = 0, ts;
	cn_rng rng;
	cn_rng_seed(&rng, 11);
	uint64_t wall = 100000000;
	for (int i = 0; i < 20000; i++) {
		/* wall time jitters, sometimes jumping back by up to 5 s */
		wall = wall + cn_rng_below(&rng, 3) - (cn_rng_below(&rng, 100) == 0 ? 5000 : 0);
		ck_assert_int_eq(cn_hlc_now(&h, wall, &ts), 0);
		ck_assert_uint_gt(ts, prev);
		ck_assert_uint_ge(cn_hlc_physical(ts), cn_hlc_physical(prev));
		prev = ts;
	}
}
END_TEST

START_TEST(now_follows_wall_time)
{
	cn_hlc h;
	cn_hlc_init(&h, 0);
	uint64_t ts;
	ck_assert_int_eq(cn_hlc_now(&h, 5000, &ts), 0);
	ck_assert_uint_eq(ts, cn_hlc_make(5000, 0));
	ck_assert_int_eq(cn_hlc_now(&h, 5000, &ts), 0);
	ck_assert_uint_eq(ts, cn_hlc_make(5000, 1));
	ck_assert_int_eq(cn_hlc_now(&h, 6000, &ts), 0);
	ck_assert_uint_eq(ts, cn_hlc_make(6000, 0));
	ck_assert_int_eq(cn_hlc_now(&h, CN_HLC_PHYSICAL_MAX + 1, &ts), CN_ERANGE);
}
END_TEST

START_TEST(update_is_causal)
{
	cn_hlc a, b;
	cn_hlc_init(&a, 0);
	cn_hlc_init(&b, 0);
	uint64_t ta, tb, tr;
	/* a's clock is 30 s ahead of b's */
	ck_assert_int_eq(cn_hlc_now(&a, 130000, &ta), 0);
	ck_assert_int_eq(cn_hlc_update(&b, ta, 100000, &tr), 0);
	ck_assert_uint_gt(tr, ta);
	ck_assert_int_eq(cn_hlc_now(&b, 100001, &tb), 0);
	ck_assert_uint_gt(tb, ta); /* a write after seeing ta orders after it */
	ck_assert_uint_eq(cn_hlc_physical(tb), 130000);
	/* an old remote timestamp does not move the clock back */
	ck_assert_int_eq(cn_hlc_update(&b, cn_hlc_make(10, 0), 100002, &tr), 0);
	ck_assert_uint_gt(tr, tb);
	ck_assert_int_eq(cn_hlc_update(&b, cn_hlc_make(10, 0), 100002, NULL), 0);
}
END_TEST

START_TEST(drift_refused_and_counted)
{
	cn_hlc h;
	cn_hlc_init(&h, 0);
	uint64_t before = h.last, out = 7;
	ck_assert_int_eq(cn_hlc_update(&h, cn_hlc_make(100000 + 60001, 0), 100000, &out), CN_ERANGE);
	ck_assert_uint_eq(h.refused_future, 1);
	ck_assert_uint_eq(h.last, before);
	ck_assert_uint_eq(out, 7);
	/* exactly at the limit is fine (any logical counter) */
	ck_assert_int_eq(cn_hlc_update(&h, cn_hlc_make(160000, 99), 100000, &out), 0);
	ck_assert_uint_eq(h.refused_future, 1);
	ck_assert_int_eq(cn_hlc_check(&h, cn_hlc_make(160001, 0), 100000), CN_ERANGE);
	ck_assert_uint_eq(h.refused_future, 1); /* check does not count */
	/* a configured drift */
	cn_hlc_init(&h, 10);
	ck_assert_int_eq(cn_hlc_update(&h, cn_hlc_make(111, 0), 100, NULL), CN_ERANGE);
	ck_assert_int_eq(cn_hlc_update(&h, cn_hlc_make(110, 0), 100, NULL), 0);
	ck_assert_int_eq(cn_hlc_update(&h, UINT64_MAX, 100, NULL), CN_ERANGE);
}
END_TEST

START_TEST(logical_overflow_borrows_a_millisecond)
{
	cn_hlc h;
	cn_hlc_init(&h, 0);
	uint64_t ts = 0, prev = 0;
	for (uint32_t i = 0; i < 70000; i++) {
		ck_assert_int_eq(cn_hlc_now(&h, 42, &ts), 0);
		ck_assert_uint_gt(ts, prev);
		prev = ts;
	}
	ck_assert_uint_eq(cn_hlc_physical(ts), 43);
	ck_assert_uint_eq(cn_hlc_logical(ts), 70000 - 65536 - 1);
}
END_TEST

START_TEST(restore_never_goes_back)
{
	cn_hlc h;
	cn_hlc_init(&h, 0);
	uint64_t ts;
	cn_hlc_restore(&h, cn_hlc_make(9000, 5));
	cn_hlc_restore(&h, cn_hlc_make(10, 0));
	ck_assert_int_eq(cn_hlc_now(&h, 100, &ts), 0);
	ck_assert_uint_eq(ts, cn_hlc_make(9000, 6));
}
END_TEST

START_TEST(cmp_breaks_ties_by_node)
{
	ck_assert_int_eq(cn_hlc_cmp(5, "b", 6, "a"), -1);
	ck_assert_int_eq(cn_hlc_cmp(6, "a", 5, "b"), 1);
	ck_assert_int_eq(cn_hlc_cmp(5, "a", 5, "b"), -1);
	ck_assert_int_eq(cn_hlc_cmp(5, "b", 5, "a"), 1);
	ck_assert_int_eq(cn_hlc_cmp(5, "a", 5, "ab"), -1);
	ck_assert_int_eq(cn_hlc_cmp(5, "n1", 5, "n1"), 0);
	ck_assert_int_eq(cn_hlc_cmp(5, "\xff", 5, "a"), 1); /* bytes are unsigned */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hlc");
	TCase *tc = tcase_create("hlc");
	tcase_add_test(tc, now_is_monotonic_when_wall_goes_back);
	tcase_add_test(tc, now_follows_wall_time);
	tcase_add_test(tc, update_is_causal);
	tcase_add_test(tc, drift_refused_and_counted);
	tcase_add_test(tc, logical_overflow_borrows_a_millisecond);
	tcase_add_test(tc, restore_never_goes_back);
	tcase_add_test(tc, cmp_breaks_ties_by_node);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
