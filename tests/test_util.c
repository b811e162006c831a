/* Unit tests for src/util: error strings, the deterministic generator and
 * address parsing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"
#include "util/err.h"
#include "util/rng.h"

START_TEST(strerror_covers_every_code)
{
	for (int e = 0; e >= CN_ERR_MIN_; e--)
		ck_assert_str_ne(cn_strerror(e), "unknown error");
	ck_assert_str_eq(cn_strerror(-999), "unknown error");
}
END_TEST

START_TEST(rng_same_seed_same_stream)
{
	cn_rng a, b, c;
	cn_rng_seed(&a, 42);
	cn_rng_seed(&b, 42);
	cn_rng_seed(&c, 43);
	int differ = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = cn_rng_next(&a);
		ck_assert_uint_eq(x, cn_rng_next(&b));
		differ += x != cn_rng_next(&c);
	}
	ck_assert_int_gt(differ, 990);
}
END_TEST

START_TEST(rng_below_is_in_range_and_spread)
{
	cn_rng r;
	cn_rng_seed(&r, 7);
	unsigned hist[10] = {0};
	for (int i = 0; i < 100000; i++) {
		uint64_t v = cn_rng_below(&r, 10);
		ck_assert_uint_lt(v, 10);
		hist[v]++;
	}
	/* Each bucket expects 10000; 5 sigma is about 475. */
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_gt(hist[i], 9500);
		ck_assert_uint_lt(hist[i], 10500);
	}
	for (int i = 0; i < 1000; i++) {
		double u = cn_rng_unit(&r);
		ck_assert(u >= 0.0 && u < 1.0);
	}
}
END_TEST

START_TEST(rng_shuffle_is_a_permutation)
{
	cn_rng r;
	cn_rng_seed(&r, 1);
	uint32_t v[100];
	for (uint32_t i = 0; i < 100; i++)
		v[i] = i;
	cn_rng_shuffle(&r, v, 100, sizeof v[0]);
	int seen[100] = {0}, moved = 0;
	for (uint32_t i = 0; i < 100; i++) {
		ck_assert_uint_lt(v[i], 100);
		seen[v[i]]++;
		moved += v[i] != i;
	}
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_int_gt(moved, 80);
}
END_TEST

START_TEST(addr_parse_and_format)
{
	cn_addr a;
	char buf[CN_ADDR_STR_MAX];
	ck_assert_int_eq(cn_addr_parse("127.0.0.1:7980", 0, &a), 0);
	ck_assert_int_eq(a.family, CN_ADDR_V4);
	ck_assert_int_eq(a.port, 7980);
	cn_addr_format(&a, buf, sizeof buf);
	ck_assert_str_eq(buf, "127.0.0.1:7980");

	ck_assert_int_eq(cn_addr_parse("[::1]:80", 0, &a), 0);
	ck_assert_int_eq(a.family, CN_ADDR_V6);
	cn_addr_format(&a, buf, sizeof buf);
	ck_assert_str_eq(buf, "[::1]:80");

	ck_assert_int_eq(cn_addr_parse("10.1.2.3", 7980, &a), 0);
	ck_assert_int_eq(a.port, 7980);
	ck_assert_int_eq(cn_addr_parse("[fe80::1]", 7980, &a), 0);
	ck_assert_int_eq(a.port, 7980);

	const char *bad[] = {"", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x",
			     "::1:80", "[::1", "[]:80", "[::1]x", "host:80", "1.2.3.4:123456",
			     "[::1]:", "1.2.3.4:"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(cn_addr_parse(bad[i], 0, &a) == CN_EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(addr_wire_roundtrip)
{
	const char *texts[] = {"192.168.1.9:1", "[2001:db8::7]:65535"};
	for (int i = 0; i < 2; i++) {
		cn_addr a, b;
		uint8_t w[CN_ADDR_WIRE_V6];
		ck_assert_int_eq(cn_addr_parse(texts[i], 0, &a), 0);
		size_t n = cn_addr_to_wire(&a, w);
		ck_assert_uint_eq(n, i == 0 ? CN_ADDR_WIRE_V4 : CN_ADDR_WIRE_V6);
		ck_assert_int_eq(cn_addr_from_wire(w, n, &b), 0);
		ck_assert(cn_addr_eq(&a, &b));
	}
	uint8_t zero[6] = {1, 2, 3, 4, 0, 0};
	cn_addr c;
	ck_assert_int_eq(cn_addr_from_wire(zero, 6, &c), CN_EINVAL);
	ck_assert_int_eq(cn_addr_from_wire(zero, 5, &c), CN_EINVAL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, strerror_covers_every_code);
	tcase_add_test(tc, rng_same_seed_same_stream);
	tcase_add_test(tc, rng_below_is_in_range_and_spread);
	tcase_add_test(tc, rng_shuffle_is_a_permutation);
	tcase_add_test(tc, addr_parse_and_format);
	tcase_add_test(tc, addr_wire_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
