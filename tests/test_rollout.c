/* Unit tests for agent/rollout: stage numbering, advancing only over
 * settled stages, the max/OR merge (commutative, idempotent, in any
 * order), sticky revert, pause without auto_revert, completion. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/rollout.h"
#include "util/rng.h"

START_TEST(stage_numbering)
{
	/* canary 1, max_parallel 2, 4 replicas: r0 | r1 r2 | r3 */
	ck_assert_uint_eq(cn_rollout_stage(0, 1, 2), 0);
	ck_assert_uint_eq(cn_rollout_stage(1, 1, 2), 1);
	ck_assert_uint_eq(cn_rollout_stage(2, 1, 2), 1);
	ck_assert_uint_eq(cn_rollout_stage(3, 1, 2), 2);
	ck_assert_uint_eq(cn_rollout_stages(4, 1, 2), 3);
	/* no canary: batches from replica 0 */
	ck_assert_uint_eq(cn_rollout_stage(0, 0, 2), 0);
	ck_assert_uint_eq(cn_rollout_stage(1, 0, 2), 0);
	ck_assert_uint_eq(cn_rollout_stage(2, 0, 2), 1);
	ck_assert_uint_eq(cn_rollout_stages(5, 0, 2), 3);
	/* defaults: one at a time; max_parallel 0 reads as 1 */
	ck_assert_uint_eq(cn_rollout_stages(3, 0, 1), 3);
	ck_assert_uint_eq(cn_rollout_stage(2, 0, 0), 2);
	/* canaries: all of them first, in one stage */
	ck_assert_uint_eq(cn_rollout_stage(2, 3, 10), 0);
	ck_assert_uint_eq(cn_rollout_stage(3, 3, 10), 1);
	ck_assert_uint_eq(cn_rollout_stages(0, 3, 10), 0);
	ck_assert_uint_eq(cn_rollout_stages(2, 3, 10), 1); /* fewer than the canaries */
	ck_assert_uint_ne(cn_rollout_job_hash("a"), cn_rollout_job_hash("b"));
	ck_assert_uint_eq(cn_rollout_job_hash(""), 2166136261u);
}
END_TEST

START_TEST(advance_only_when_settled)
{
	cn_rollout_state s = {7, 100, 0, false};
	bool settled[4] = {false, false, false, false};
	/* stage 0 (the canary) runs the new version, the rest the old */
	ck_assert(cn_rollout_runs_new(&s, 0, 1, 2));
	ck_assert(!cn_rollout_runs_new(&s, 1, 1, 2));
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_uint_eq(s.done, 0);
	/* a later stage settled early changes nothing */
	settled[1] = settled[2] = true;
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, false));
	settled[1] = settled[2] = false;
	settled[0] = true;
	ck_assert(cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_uint_eq(s.done, 1);
	ck_assert(cn_rollout_runs_new(&s, 1, 1, 2) && cn_rollout_runs_new(&s, 2, 1, 2));
	ck_assert(!cn_rollout_runs_new(&s, 3, 1, 2));
	settled[1] = true; /* half a batch is not enough */
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, false));
	settled[2] = true;
	ck_assert(cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_uint_eq(s.done, 2);
	ck_assert_str_eq(cn_rollout_state_name(&s, 3, false), "in_progress");
	settled[3] = true;
	ck_assert(cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_uint_eq(s.done, CN_ROLLOUT_DONE_ALL);
	ck_assert_str_eq(cn_rollout_state_name(&s, 3, false), "complete");
	/* complete is final: more replicas later start new at once */
	ck_assert(cn_rollout_runs_new(&s, 9, 1, 2));
	memset(settled, 0, sizeof settled);
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_uint_eq(s.done, CN_ROLLOUT_DONE_ALL);
	/* a view with fewer replicas placed than stages known done (an agent
	 * just restarted, alone): nothing completes */
	cn_rollout_state few = {7, 100, 2, false};
	bool all_settled[4] = {true, true, true, true};
	ck_assert(!cn_rollout_advance(&few, all_settled, 1, 1, 2, false));
	ck_assert_uint_eq(few.done, 2);
	ck_assert(cn_rollout_runs_new(&few, 0, 1, 2));
	ck_assert(cn_rollout_advance(&few, all_settled, 4, 1, 2, false)); /* full view again */
	ck_assert_uint_eq(few.done, CN_ROLLOUT_DONE_ALL);
	/* no replicas placed: nothing completes */
	cn_rollout_state e = {7, 100, 0, false};
	ck_assert(!cn_rollout_advance(&e, settled, 0, 1, 2, false));
	ck_assert_uint_eq(e.done, 0);
}
END_TEST

START_TEST(advance_several_stages_at_once)
{
	cn_rollout_state s = {7, 100, 0, false};
	bool settled[5] = {true, true, true, true, false};
	ck_assert(cn_rollout_advance(&s, settled, 5, 0, 1, false));
	ck_assert_uint_eq(s.done, 4);
}
END_TEST

START_TEST(pause_without_auto_revert)
{
	cn_rollout_state s = {7, 100, 1, false};
	bool settled[4] = {true, true, true, true};
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, true));
	ck_assert_uint_eq(s.done, 1);
	ck_assert_str_eq(cn_rollout_state_name(&s, 3, true), "paused");
	ck_assert(cn_rollout_advance(&s, settled, 4, 1, 2, false)); /* failure gone */
	ck_assert_uint_eq(s.done, CN_ROLLOUT_DONE_ALL);
}
END_TEST

START_TEST(revert_is_sticky)
{
	cn_rollout_state s = {7, 100, 1, false};
	cn_rollout_report other = {100, 7, 0, CN_ROLLOUT_REVERTED, 0};
	ck_assert(cn_rollout_merge(&s, &other));
	ck_assert(s.reverted);
	ck_assert_uint_eq(s.done, 1); /* max: a lower done never lowers it */
	for (uint32_t r = 0; r < 4; r++)
		ck_assert(!cn_rollout_runs_new(&s, r, 1, 2));
	cn_rollout_report clean = {100, 7, 2, CN_ROLLOUT_SETTLED, 0};
	ck_assert(cn_rollout_merge(&s, &clean));
	ck_assert(s.reverted);
	bool settled[4] = {true, true, true, true};
	ck_assert(!cn_rollout_advance(&s, settled, 4, 1, 2, false));
	ck_assert_str_eq(cn_rollout_state_name(&s, 3, false), "reverted");
	/* reports of another job or version are not merged */
	cn_rollout_state t = {7, 101, 0, false};
	ck_assert(!cn_rollout_merge(&t, &other));
	cn_rollout_report wrong_job = {101, 8, 5, CN_ROLLOUT_REVERTED, 0};
	ck_assert(!cn_rollout_merge(&t, &wrong_job));
	ck_assert(!t.reverted);
	ck_assert_uint_eq(t.done, 0);
}
END_TEST

/* Any order, any repetition of the same reports gives the same state. */
START_TEST(merge_commutes_and_is_idempotent)
{
	cn_rng rng;
	cn_rng_seed(&rng, 6);
	for (int round = 0; round < 200; round++) {
		enum { N = 12 };
		cn_rollout_report reps[N];
		for (int i = 0; i < N; i++) {
			uint32_t x = (uint32_t)cn_rng_next(&rng);
			reps[i] = (cn_rollout_report){100 + (x & 1), 7, (uint16_t)((x >> 1) % 6),
						      (uint8_t)((x >> 4) & 7), 0};
			if ((x >> 8) % 7 != 0)
				reps[i].flags &= (uint8_t)~CN_ROLLOUT_REVERTED;
		}
		cn_rollout_state ref = {7, 100, 0, false};
		for (int i = 0; i < N; i++)
			cn_rollout_merge(&ref, &reps[i]);
		for (int shuffle = 0; shuffle < 5; shuffle++) {
			cn_rollout_state s = {7, 100, 0, false};
			for (int k = 0; k < 3 * N; k++) /* with repeats */
				cn_rollout_merge(&s, &reps[cn_rng_next(&rng) % N]);
			for (int i = 0; i < N; i++) /* and every report at least once */
				cn_rollout_merge(&s, &reps[(i + shuffle) % N]);
			ck_assert_uint_eq(s.done, ref.done);
			ck_assert_int_eq(s.reverted, ref.reverted);
		}
		/* merging a state's own report back changes nothing */
		cn_rollout_report mine = {ref.version, ref.job_hash, ref.done,
					  ref.reverted ? CN_ROLLOUT_REVERTED : 0, 0};
		cn_rollout_state again = ref;
		cn_rollout_merge(&again, &mine);
		ck_assert_uint_eq(again.done, ref.done);
		ck_assert_int_eq(again.reverted, ref.reverted);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rollout");
	TCase *tc = tcase_create("rollout");
	tcase_add_test(tc, stage_numbering);
	tcase_add_test(tc, advance_only_when_settled);
	tcase_add_test(tc, advance_several_stages_at_once);
	tcase_add_test(tc, pause_without_auto_revert);
	tcase_add_test(tc, revert_is_sticky);
	tcase_add_test(tc, merge_commutes_and_is_idempotent);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
