/* Unit tests for core/awareness: the Lifeguard local-health score. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/awareness.h"

START_TEST(score_saturates_both_ways)
{
	cn_awareness a;
	cn_awareness_init(&a, 8);
	ck_assert_uint_eq(cn_awareness_score(&a), 0);
	cn_awareness_apply(&a, -1);
	ck_assert_uint_eq(cn_awareness_score(&a), 0);
	cn_awareness_apply(&a, 3);
	ck_assert_uint_eq(cn_awareness_score(&a), 3);
	cn_awareness_apply(&a, 100);
	ck_assert_uint_eq(cn_awareness_score(&a), 7);
	cn_awareness_apply(&a, INT32_MIN);
	ck_assert_uint_eq(cn_awareness_score(&a), 0);
}
END_TEST

START_TEST(scale_multiplies_by_score_plus_one)
{
	cn_awareness a;
	cn_awareness_init(&a, 8);
	ck_assert_uint_eq(cn_awareness_scale_ms(&a, 500), 500);
	cn_awareness_apply(&a, 2);
	ck_assert_uint_eq(cn_awareness_scale_ms(&a, 500), 1500);
	cn_awareness_apply(&a, 10);
	ck_assert_uint_eq(cn_awareness_scale_ms(&a, 1000), 8000);
	ck_assert_uint_eq(cn_awareness_scale_ms(&a, UINT32_MAX), UINT32_MAX);
}
END_TEST

START_TEST(max_one_disables)
{
	cn_awareness a;
	cn_awareness_init(&a, 1);
	cn_awareness_apply(&a, 5);
	ck_assert_uint_eq(cn_awareness_score(&a), 0);
	ck_assert_uint_eq(cn_awareness_scale_ms(&a, 700), 700);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("awareness");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, score_saturates_both_ways);
	tcase_add_test(tc, scale_multiplies_by_score_plus_one);
	tcase_add_test(tc, max_one_disables);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
