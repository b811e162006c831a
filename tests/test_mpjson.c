/* msgpack -> JSON and the line diff (src/cli/mpjson.c): exact output for
 * every type, the pretty form, hostile inputs (ext, container keys, depth,
 * truncation, trailing bytes, huge declared counts), the base64 fallback,
 * and diffs against hand-computed answers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cli/mpjson.h"
#include "util/err.h"
#include "wire/mp.h"

static int render(const uint8_t *mp, size_t len, char *out, size_t cap)
{
	cn_buf b;
	cn_buf_init(&b, 1 << 20);
	int rc = cn_mpjson(mp, len, &b);
	snprintf(out, cap, "%s", cn_buf_str(&b));
	cn_buf_free(&b);
	return rc;
}

START_TEST(scalars_and_containers)
{
	uint8_t buf[512];
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_mp_put_map(&w, 9);
	cn_mp_put_cstr(&w, "n");
	cn_mp_put_nil(&w);
	cn_mp_put_cstr(&w, "t");
	cn_mp_put_bool(&w, true);
	cn_mp_put_cstr(&w, "u");
	cn_mp_put_uint(&w, UINT64_MAX);
	cn_mp_put_cstr(&w, "i");
	cn_mp_put_int(&w, INT64_MIN);
	cn_mp_put_cstr(&w, "f");
	cn_mp_put_f64(&w, 0.5);
	cn_mp_put_cstr(&w, "s");
	cn_mp_put_cstr(&w, "a\"b\n");
	cn_mp_put_cstr(&w, "b");
	cn_mp_put_bin(&w, "\x00\x01\x02\xff", 4);
	cn_mp_put_cstr(&w, "a");
	cn_mp_put_array(&w, 3);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_array(&w, 0);
	cn_mp_put_map(&w, 0);
	cn_mp_put_uint(&w, 7); /* an integer key */
	cn_mp_put_f32(&w, 1.0f / 0.0f);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	char out[1024];
	ck_assert_int_eq(render(buf, len, out, sizeof out), 0);
	ck_assert_str_eq(out, "{\"n\":null,\"t\":true,\"u\":18446744073709551615,"
			      "\"i\":-9223372036854775808,\"f\":0.5,\"s\":\"a\\\"b\\n\","
			      "\"b\":{\"base64\":\"AAEC/w==\"},\"a\":[1,[],{}],\"7\":null}");
	/* A lone scalar is a JSON value too. */
	uint8_t one[] = {0x2a};
	ck_assert_int_eq(render(one, 1, out, sizeof out), 0);
	ck_assert_str_eq(out, "42");
}
END_TEST

START_TEST(pretty_form)
{
	uint8_t buf[256];
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_mp_put_map(&w, 3);
	cn_mp_put_cstr(&w, "a");
	cn_mp_put_uint(&w, 1);
	cn_mp_put_cstr(&w, "b");
	cn_mp_put_array(&w, 2);
	cn_mp_put_cstr(&w, "x,{");
	cn_mp_put_map(&w, 0);
	cn_mp_put_cstr(&w, "c");
	cn_mp_put_array(&w, 0);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_buf b;
	cn_buf_init(&b, 1 << 16);
	ck_assert_int_eq(cn_mpjson_pretty(buf, len, &b), 0);
	ck_assert_str_eq(cn_buf_str(&b), "{\n  \"a\": 1,\n  \"b\": [\n    \"x,{\",\n    {}\n  ],\n"
					 "  \"c\": []\n}\n");
	cn_buf_free(&b);
}
END_TEST

START_TEST(hostile_inputs)
{
	char out[256];
	/* ext value, 0xc1, a container as a key, a bin key */
	uint8_t ext[] = {0xd4, 0x01, 0x00};
	ck_assert_int_eq(render(ext, sizeof ext, out, sizeof out), CN_ETYPE);
	uint8_t c1[] = {0xc1};
	ck_assert_int_eq(render(c1, 1, out, sizeof out), CN_ETYPE);
	uint8_t ckey[] = {0x81, 0x90, 0x01};
	ck_assert_int_eq(render(ckey, sizeof ckey, out, sizeof out), CN_ETYPE);
	uint8_t bkey[] = {0x81, 0xc4, 0x01, 0x41, 0x01};
	ck_assert_int_eq(render(bkey, sizeof bkey, out, sizeof out), CN_ETYPE);
	/* truncated, trailing, empty */
	uint8_t trunc[] = {0x92, 0x01};
	ck_assert_int_eq(render(trunc, sizeof trunc, out, sizeof out), CN_ETRUNC);
	uint8_t trail[] = {0x01, 0x02};
	ck_assert_int_eq(render(trail, sizeof trail, out, sizeof out), CN_ETRAILING);
	ck_assert_int_eq(render(trail, 0, out, sizeof out), CN_ETRUNC);
	/* an array claiming 2^32-1 elements in 5 bytes */
	uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(render(huge, sizeof huge, out, sizeof out), CN_ETRUNC);
	/* nesting: CN_MP_DEPTH_MAX arrays render, one more does not */
	uint8_t deep[CN_MP_DEPTH_MAX + 2];
	memset(deep, 0x91, sizeof deep);
	deep[CN_MP_DEPTH_MAX] = 0x01;
	ck_assert_int_eq(render(deep, CN_MP_DEPTH_MAX + 1, out, sizeof out), 0);
	deep[CN_MP_DEPTH_MAX] = 0x91;
	deep[CN_MP_DEPTH_MAX + 1] = 0x01;
	ck_assert_int_eq(render(deep, CN_MP_DEPTH_MAX + 2, out, sizeof out), CN_EDEPTH);
	/* every truncation of a valid object fails cleanly */
	uint8_t ok[] = {0x82, 0xa1, 'a', 0x92, 0xcd, 0x01, 0x00, 0xc3, 0xa1, 'b', 0xc4, 0x02, 1, 2};
	for (size_t n = 0; n < sizeof ok; n++)
		ck_assert_int_ne(render(ok, n, out, sizeof out), 0);
	ck_assert_int_eq(render(ok, sizeof ok, out, sizeof out), 0);
	ck_assert_str_eq(out, "{\"a\":[256,true],\"b\":{\"base64\":\"AQI=\"}}");
}
END_TEST

START_TEST(kv_fallback_to_base64)
{
	cn_buf b;
	cn_json j;
	cn_buf_init(&b, 4096);
	cn_json_init(&j, &b);
	cn_json_obj_begin(&j);
	uint8_t good[] = {0x81, 0xa1, 'k', 0x05};
	uint8_t bad[] = {0xd4, 0x01, 0x00};
	cn_mpjson_kv(&j, "spec", good, sizeof good);
	cn_mpjson_kv(&j, "other", bad, sizeof bad);
	cn_json_kv_u64(&j, "after", 1);
	cn_json_obj_end(&j);
	ck_assert_str_eq(cn_buf_str(&b), "{\"spec\":{\"k\":5},\"other\":null,\"other_base64\":\"1AEA\","
					 "\"after\":1}");
	cn_buf_free(&b);
}
END_TEST

static void diff_is(const char *a, const char *b, const char *want)
{
	cn_buf out;
	cn_buf_init(&out, 1 << 16);
	ck_assert_int_eq(cn_text_diff(a, b, &out), 0);
	ck_assert_str_eq(cn_buf_str(&out), want);
	cn_buf_free(&out);
}

START_TEST(line_diff)
{
	diff_is("a\nb\nc\n", "a\nb\nc\n", "  a\n  b\n  c\n");
	diff_is("a\nb\nc\n", "a\nx\nc\n", "  a\n- b\n+ x\n  c\n");
	diff_is("", "a\nb\n", "+ a\n+ b\n");
	diff_is("a\nb\n", "", "- a\n- b\n");
	diff_is("a\nb\nc\nd\n", "b\nc\nd\ne\n", "- a\n  b\n  c\n  d\n+ e\n");
	/* the LCS keeps the common middle line */
	diff_is("x\nm\ny\n", "p\nm\nq\n", "- x\n+ p\n  m\n- y\n+ q\n");
	/* a last line without a newline counts */
	diff_is("a\nb", "a\nc", "  a\n- b\n+ c\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mpjson");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, scalars_and_containers);
	tcase_add_test(tc, pretty_form);
	tcase_add_test(tc, hostile_inputs);
	tcase_add_test(tc, kv_fallback_to_base64);
	tcase_add_test(tc, line_diff);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
