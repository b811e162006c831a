/* Unit tests for core/suspicion: the Lifeguard timeout formula, the
 * confirmation rules and the suspect table (index + deadline heap). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/suspicion.h"
#include "util/rng.h"

START_TEST(min_formula_known_points)
{
	/* mult 4, interval 1 s: small clusters floor at log10 = 1. */
	ck_assert_uint_eq(cn_suspicion_min_ms(4, 0, 1000), 4000);
	ck_assert_uint_eq(cn_suspicion_min_ms(4, 1, 1000), 4000);
	ck_assert_uint_eq(cn_suspicion_min_ms(4, 10, 1000), 4000);
	ck_assert_uint_eq(cn_suspicion_min_ms(4, 100, 1000), 8000);
	ck_assert_uint_eq(cn_suspicion_min_ms(4, 1000, 1000), 12000);
	ck_assert_uint_eq(cn_suspicion_min_ms(5, 10000, 200), 4000);
}
END_TEST

START_TEST(timeout_formula_known_points)
{
	/* min 2 s, max 30 s, k 3 (memberlist's published table). */
	ck_assert_uint_eq(cn_suspicion_timeout_ms(0, 3, 2000, 30000), 30000);
	ck_assert_uint_eq(cn_suspicion_timeout_ms(1, 3, 2000, 30000), 16000);
	ck_assert_uint_eq(cn_suspicion_timeout_ms(2, 3, 2000, 30000), 7810);
	ck_assert_uint_eq(cn_suspicion_timeout_ms(3, 3, 2000, 30000), 2000);
	ck_assert_uint_eq(cn_suspicion_timeout_ms(9, 3, 2000, 30000), 2000);
	/* k < 1: nobody can confirm, use min at once. */
	ck_assert_uint_eq(cn_suspicion_timeout_ms(0, 0, 2000, 30000), 2000);
}
END_TEST

START_TEST(only_distinct_confirmers_count)
{
	cn_suspicion s;
	cn_suspicion_start(&s, 7, 1, 3, 2000, 30000, 100);
	ck_assert_uint_eq(s.deadline_ms, 30100);
	ck_assert(!cn_suspicion_confirm(&s, 1)); /* the accuser */
	ck_assert(cn_suspicion_confirm(&s, 2));
	ck_assert_uint_eq(s.deadline_ms, 16100);
	ck_assert(!cn_suspicion_confirm(&s, 2)); /* repeat */
	ck_assert(cn_suspicion_confirm(&s, 3));
	ck_assert(cn_suspicion_confirm(&s, 4));
	ck_assert_uint_eq(s.deadline_ms, 2100);
	ck_assert(!cn_suspicion_confirm(&s, 5)); /* beyond k */
	ck_assert_uint_eq(s.confirmations, 3);
}
END_TEST

START_TEST(table_orders_deadlines)
{
	cn_suspicion_table t;
	cn_suspicion_table_init(&t, 3);
	cn_rng rng;
	cn_rng_seed(&rng, 3);
	enum { N = 500 };
	for (uint32_t i = 0; i < N; i++) {
		cn_suspicion s;
		uint64_t min = 1000 + cn_rng_below(&rng, 5000);
		cn_suspicion_start(&s, i * 3, 9999, 3, min, 6 * min, cn_rng_below(&rng, 1000));
		ck_assert_int_eq(cn_suspicion_table_add(&t, &s), 0);
	}
	/* Confirmations move deadlines earlier; removals punch holes. */
	for (uint32_t i = 0; i < N; i += 7)
		ck_assert(cn_suspicion_table_confirm(&t, i * 3, 42));
	for (uint32_t i = 0; i < N; i += 5)
		ck_assert(cn_suspicion_table_remove(&t, i * 3));
	ck_assert(!cn_suspicion_table_remove(&t, 0));
	cn_suspicion s;
	ck_assert(!cn_suspicion_table_find(&t, 5 * 3, NULL));
	ck_assert(cn_suspicion_table_find(&t, 1 * 3, &s));
	ck_assert_uint_eq(s.ident, 1 * 3);
	ck_assert_uint_eq(s.accuser, 9999);
	/* Confirmers survive the heap moves: a repeat still does not count. */
	for (uint32_t i = 7; i < N; i += 7) {
		if (i % 5 == 0)
			continue;
		ck_assert(!cn_suspicion_table_confirm(&t, i * 3, 42));
		ck_assert(cn_suspicion_table_confirm(&t, i * 3, 43));
		ck_assert(cn_suspicion_table_find(&t, i * 3, &s));
		ck_assert_uint_eq(s.confirmations, 2);
		ck_assert_uint_eq(s.confirmers[0], 42);
		ck_assert_uint_eq(s.confirmers[1], 43);
	}
	uint64_t last = 0;
	uint32_t popped = 0;
	while (cn_suspicion_table_pop_expired(&t, UINT64_MAX - 1, &s)) {
		ck_assert_uint_ge(s.deadline_ms, last);
		last = s.deadline_ms;
		popped++;
	}
	ck_assert_uint_eq(popped, N - N / 5);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), UINT64_MAX);
	cn_suspicion_table_free(&t);
}
END_TEST

START_TEST(pop_respects_now)
{
	cn_suspicion_table t;
	cn_suspicion_table_init(&t, 3);
	cn_suspicion s;
	cn_suspicion_start(&s, 1, 2, 0, 4000, 24000, 0);
	ck_assert_int_eq(cn_suspicion_table_add(&t, &s), 0);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 4000);
	ck_assert(!cn_suspicion_table_pop_expired(&t, 3999, &s));
	ck_assert(cn_suspicion_table_pop_expired(&t, 4000, &s));
	ck_assert_uint_eq(s.ident, 1);
	cn_suspicion_table_free(&t);
}
END_TEST

/* Last calls: `calls` of them gap apart, the last a gap before the
 * deadline; they follow the deadline in when confirmations move it, never
 * come closer than a gap, and never reach the deadline. */
START_TEST(last_calls_precede_the_deadline)
{
	cn_suspicion s;
	cn_suspicion_start(&s, 7, 1, 3, 2000, 30000, 100);
	ck_assert_uint_eq(s.call_ms, UINT64_MAX); /* unarmed: none */
	cn_suspicion_arm_calls(&s, 3, 1000);
	ck_assert_uint_eq(s.deadline_ms, 30100);
	ck_assert_uint_eq(s.call_ms, 27100);

	cn_suspicion_table t;
	cn_suspicion_table_init(&t, CN_SUSPICION_CONFIRM_MAX);
	ck_assert_int_eq(cn_suspicion_table_add(&t, &s), 0);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 27100);
	cn_suspicion c;
	ck_assert(!cn_suspicion_table_take_call(&t, 27099, &c));
	ck_assert(cn_suspicion_table_take_call(&t, 27100, &c));
	ck_assert_uint_eq(c.ident, 7);
	ck_assert(!cn_suspicion_table_take_call(&t, 27100, &c)); /* once */
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 28100);
	/* Two confirmations pull the deadline to 7,810 ms after the start:
	 * the next call may not come before 28,100 (a gap after the last),
	 * which is past the deadline now, so there is none. */
	ck_assert(cn_suspicion_table_confirm(&t, 7, 2));
	ck_assert(cn_suspicion_table_confirm(&t, 7, 3));
	cn_suspicion f;
	ck_assert(cn_suspicion_table_find(&t, 7, &f));
	ck_assert_uint_eq(f.deadline_ms, 7910);
	ck_assert_uint_eq(f.call_ms, UINT64_MAX);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 7910);
	ck_assert(cn_suspicion_table_pop_expired(&t, 30000, &c));
	cn_suspicion_table_free(&t);

	/* Confirmed before any call: the calls move in with the deadline. */
	cn_suspicion_start(&s, 8, 1, 3, 2000, 30000, 100);
	cn_suspicion_arm_calls(&s, 3, 1000);
	ck_assert(cn_suspicion_confirm(&s, 2));
	ck_assert_uint_eq(s.deadline_ms, 16100);
	ck_assert_uint_eq(s.call_ms, 13100);
	/* A deadline closer than the calls span: the first call at the start,
	 * then a gap apart, none at or after the deadline. */
	cn_suspicion_start(&s, 9, 1, 0, 2500, 2500, 100);
	cn_suspicion_arm_calls(&s, 3, 1000);
	ck_assert_uint_eq(s.call_ms, 100);
	cn_suspicion_table_init(&t, CN_SUSPICION_CONFIRM_MAX);
	ck_assert_int_eq(cn_suspicion_table_add(&t, &s), 0);
	uint64_t at[4];
	int n = 0;
	for (uint64_t now = 0; now <= 2600; now++)
		while (cn_suspicion_table_take_call(&t, now, &c))
			at[n++] = now;
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(at[0], 100);
	ck_assert_uint_eq(at[1], 1100);
	ck_assert_uint_eq(at[2], 2100);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 2600);
	cn_suspicion_table_free(&t);
}
END_TEST

/* A due call at the top of the heap hides an expired timer below it:
 * pop_expired waits until the call is taken; both come out in order. */
START_TEST(calls_and_deadlines_share_the_heap)
{
	cn_suspicion_table t;
	cn_suspicion_table_init(&t, CN_SUSPICION_CONFIRM_MAX);
	cn_suspicion a, b, c;
	cn_suspicion_start(&a, 1, 9, 0, 10000, 10000, 0); /* call at 7,000, deadline 10,000 */
	cn_suspicion_arm_calls(&a, 3, 1000);
	cn_suspicion_start(&b, 2, 9, 0, 7500, 7500, 0);   /* unarmed, deadline 7,500 */
	ck_assert_int_eq(cn_suspicion_table_add(&t, &a), 0);
	ck_assert_int_eq(cn_suspicion_table_add(&t, &b), 0);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), 7000);
	ck_assert(!cn_suspicion_table_pop_expired(&t, 8000, &c)); /* a's call first */
	ck_assert(cn_suspicion_table_take_call(&t, 8000, &c));
	ck_assert_uint_eq(c.ident, 1);
	ck_assert(cn_suspicion_table_pop_expired(&t, 8000, &c));
	ck_assert_uint_eq(c.ident, 2);
	ck_assert(cn_suspicion_table_take_call(&t, 8000, &c)); /* a's second, due at 8,000 */
	ck_assert(!cn_suspicion_table_take_call(&t, 8999, &c));
	ck_assert(!cn_suspicion_table_pop_expired(&t, 8999, &c));
	ck_assert(cn_suspicion_table_take_call(&t, 9000, &c));
	ck_assert(!cn_suspicion_table_take_call(&t, 20000, &c)); /* three made */
	ck_assert(cn_suspicion_table_pop_expired(&t, 10000, &c));
	ck_assert_uint_eq(c.ident, 1);
	ck_assert_uint_eq(cn_suspicion_table_next_ms(&t), UINT64_MAX);
	cn_suspicion_table_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("suspicion");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, min_formula_known_points);
	tcase_add_test(tc, timeout_formula_known_points);
	tcase_add_test(tc, only_distinct_confirmers_count);
	tcase_add_test(tc, table_orders_deadlines);
	tcase_add_test(tc, pop_respects_now);
	tcase_add_test(tc, last_calls_precede_the_deadline);
	tcase_add_test(tc, calls_and_deadlines_share_the_heap);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
