/* Unit tests for core/vivaldi: convergence on a synthetic latency grid,
 * determinism, and refusal of hostile input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vivaldi.h"
#include "util/err.h"
#include "util/rng.h"

enum { SIDE = 5, N = SIDE * SIDE };

static double truth_ms(int a, int b)
{
	/* Nodes on a 5x5 grid, 10 ms apart, plus 1 ms of access link each. */
	double dx = (a % SIDE) - (b % SIDE), dy = (a / SIDE) - (b / SIDE);
	return 10.0 * sqrt(dx * dx + dy * dy) + 2.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double run_grid(uint64_t seed, cn_vivaldi *v)
{
	cn_rng rng;
	cn_rng_seed(&rng, seed);
	for (int i = 0; i < N; i++)
		cn_vivaldi_init(&v[i], seed * 1000 + (uint64_t)i);
	for (int cycle = 0; cycle < 1000; cycle++) {
		for (int i = 0; i < N; i++) {
			int j = (int)cn_rng_below(&rng, N - 1);
			j += j >= i;
			cn_coord cj;
			cn_vivaldi_get(&v[j], &cj);
			/* Samples carry +-20 % noise; the error is judged on truth. */
			double noisy = truth_ms(i, j) * (0.8 + 0.4 * cn_rng_unit(&rng));
			ck_assert_int_eq(cn_vivaldi_update(&v[i], (uint32_t)j, &cj, noisy), 0);
		}
	}
	static double err[N * N];
	int n = 0;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			cn_coord a, b;
			cn_vivaldi_get(&v[i], &a);
			cn_vivaldi_get(&v[j], &b);
			err[n++] = fabs(cn_coord_rtt_ms(&a, &b) - truth_ms(i, j)) / truth_ms(i, j);
		}
	qsort(err, (size_t)n, sizeof err[0], cmp_double);
	return err[n / 2];
}

START_TEST(converges_on_grid)
{
	static cn_vivaldi v[N];
	double median = run_grid(1, v);
	printf("vivaldi: 5x5 grid, +-20%% noisy samples, 1000 rounds: median relative error %.1f%%\n", 100.0 * median);
	ck_assert_msg(median < 0.15, "median relative error %.3f", median);
	/* The error estimates came down from their 1.5 start. */
	for (int i = 0; i < N; i++)
		ck_assert(v[i].error < 1.0);
}
END_TEST

START_TEST(same_seed_same_coordinates)
{
	static cn_vivaldi a[N], b[N];
	run_grid(9, a);
	run_grid(9, b);
	for (int i = 0; i < N; i++)
		ck_assert(memcmp(a[i].vec, b[i].vec, sizeof a[i].vec) == 0);
}
END_TEST

START_TEST(coincident_coordinates_separate)
{
	cn_vivaldi a, b;
	cn_vivaldi_init(&a, 1);
	cn_vivaldi_init(&b, 2);
	cn_coord cb;
	cn_vivaldi_get(&b, &cb);
	ck_assert_int_eq(cn_vivaldi_update(&a, 2, &cb, 20.0), 0);
	cn_coord ca;
	cn_vivaldi_get(&a, &ca);
	ck_assert(cn_coord_rtt_ms(&ca, &cb) > 0.5);
}
END_TEST

START_TEST(hostile_input_refused)
{
	cn_vivaldi v;
	cn_vivaldi_init(&v, 1);
	cn_coord c;
	memset(&c, 0, sizeof c);
	c.vec[3] = NAN;
	ck_assert_int_eq(cn_vivaldi_update(&v, 1, &c, 10.0), CN_EINVAL);
	c.vec[3] = 0;
	c.height = INFINITY;
	ck_assert_int_eq(cn_vivaldi_update(&v, 1, &c, 10.0), CN_EINVAL);
	c.height = 0;
	ck_assert_int_eq(cn_vivaldi_update(&v, 1, &c, -1.0), CN_EINVAL);
	ck_assert_int_eq(cn_vivaldi_update(&v, 1, &c, 1e9), CN_EINVAL);
	ck_assert_uint_eq(v.updates, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vivaldi");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, converges_on_grid);
	tcase_add_test(tc, same_seed_same_coordinates);
	tcase_add_test(tc, coincident_coordinates_separate);
	tcase_add_test(tc, hostile_input_refused);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
