/* Unit tests for src/wire/mp: the bounded msgpack reader and the writer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

START_TEST(huge_map_is_truncated)
{
	static const uint8_t b[] = {0xdf, 0xbf, 0xff, 0xff, 0x28};
	cn_mp_reader r;
	uint32_t n;
	cn_mp_reader_init(&r, b, sizeof b);
	ck_assert_int_eq(cn_mp_read_map(&r, &n, UINT32_MAX), CN_ETRUNC);
	ck_assert_int_eq(cn_mp_skip(&r), CN_ETRUNC);
}
END_TEST

static Suite *mp_suite(void)
{
	Suite *s = suite_create("mp");
	TCase *tc = tcase_create("reader");
	tcase_add_test(tc, huge_map_is_truncated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
