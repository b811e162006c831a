/* Admin-plane and key-operation codecs (src/wire/admin.c, keyop.c), and
 * the text helpers the agent renders with (src/util/buf.c, json.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/admin.h"
#include "wire/keyop.h"
#include "wire/proto.h"

START_TEST(admin_request_roundtrip)
{
	uint8_t buf[512];
	size_t len;
	cn_mp_writer w;
	const char *args[] = {"install", "abc="};
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_admin_req_encode(&w, "keys", args, 2, CN_ADMIN_JSON);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_admin_req r;
	ck_assert_int_eq(cn_admin_req_decode(buf, len, &r), 0);
	ck_assert_str_eq(r.cmd, "keys");
	ck_assert_uint_eq(r.n_args, 2);
	ck_assert_uint_eq(r.arg_len[1], 4);
	ck_assert(memcmp(r.args[1], "abc=", 4) == 0);
	ck_assert_uint_eq(r.flags, CN_ADMIN_JSON);
	/* Every truncation fails cleanly. */
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_ne(cn_admin_req_decode(buf, cut, &r), 0);
	/* Trailing garbage is refused. */
	buf[len] = 0xc0;
	ck_assert_int_eq(cn_admin_req_decode(buf, len + 1, &r), CN_ETRAILING);
}
END_TEST

START_TEST(admin_request_hostile)
{
	cn_admin_req r;
	/* An array that claims 2^32-1 elements in five bytes. */
	const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(cn_admin_req_decode(huge, sizeof huge, &r), CN_ELIMIT);
	/* [1, "members", [<array claiming 1e9 args>], 0] */
	const uint8_t many[] = {0x94, 0x01, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's',
				0xdd, 0x3b, 0x9a, 0xca, 0x00, 0x00};
	ck_assert_int_eq(cn_admin_req_decode(many, sizeof many, &r), CN_ELIMIT);
	/* Wrong version. */
	const uint8_t v2[] = {0x94, 0x02, 0xa1, 'x', 0x90, 0x00};
	ck_assert_int_eq(cn_admin_req_decode(v2, sizeof v2, &r), CN_EVERSION);
	/* NUL inside an argument. */
	const uint8_t nul[] = {0x94, 0x01, 0xa1, 'x', 0x91, 0xa2, 'a', 0x00, 0x00};
	ck_assert_int_eq(cn_admin_req_decode(nul, sizeof nul, &r), CN_EINVAL);
	/* Empty command. */
	const uint8_t empty[] = {0x94, 0x01, 0xa0, 0x90, 0x00};
	ck_assert_int_eq(cn_admin_req_decode(empty, sizeof empty, &r), CN_EINVAL);
}
END_TEST

START_TEST(admin_reply_roundtrip)
{
	uint8_t buf[256];
	size_t len;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_admin_reply_encode(&w, CN_EPERM, "no", 2);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	int status;
	const char *text;
	size_t tl;
	ck_assert_int_eq(cn_admin_reply_decode(buf, len, &status, &text, &tl), 0);
	ck_assert_int_eq(status, CN_EPERM);
	ck_assert_uint_eq(tl, 2);
	/* Positive status is not a cn_err. */
	const uint8_t pos[] = {0x92, 0x05, 0xa0};
	ck_assert_int_eq(cn_admin_reply_decode(pos, sizeof pos, &status, &text, &tl), CN_ERANGE);
}
END_TEST

START_TEST(keyop_roundtrip)
{
	cn_keyop_req req = {.op = CN_KEYOP_SYNC, .n_ring = 3, .version = 1ull << 40};
	for (int i = 0; i < 3; i++)
		memset(req.ring[i], 0x10 + i, CN_KEYOP_KEY_BYTES);
	uint8_t buf[512];
	size_t len;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_keyop_req_encode(&w, &req);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_keyop_req got;
	ck_assert_int_eq(cn_keyop_req_decode(buf, len, &got), 0);
	ck_assert_uint_eq(got.op, CN_KEYOP_SYNC);
	ck_assert_uint_eq(got.n_ring, 3);
	ck_assert(memcmp(got.ring[2], req.ring[2], CN_KEYOP_KEY_BYTES) == 0);
	ck_assert_uint_eq(got.version, 1ull << 40);
	uint8_t type;
	ck_assert_int_eq(cn_stream_peek_type(buf, len, &type), 0);
	ck_assert_uint_eq(type, CN_MSG_KEY_OP);
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_ne(cn_keyop_req_decode(buf, cut, &got), 0);

	cn_keyop_reply rep = {.status = 0, .n_ids = 2, .ids = {7, 9}, .primary = 9};
	snprintf(rep.err, sizeof rep.err, "bad\x01news");
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_keyop_reply_encode(&w, &rep);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_keyop_reply r2;
	ck_assert_int_eq(cn_keyop_reply_decode(buf, len, &r2), 0);
	ck_assert_uint_eq(r2.n_ids, 2);
	ck_assert_uint_eq(r2.ids[1], 9);
	ck_assert_uint_eq(r2.primary, 9);
	/* Control bytes from a peer never reach an operator's terminal. */
	ck_assert_str_eq(r2.err, "bad?news");
	/* A reply is not a request. */
	ck_assert_int_eq(cn_keyop_req_decode(buf, len, &got), CN_EUNKNOWN);
}
END_TEST

START_TEST(keyop_rejects_bad_fields)
{
	cn_keyop_req got;
	/* install without a key */
	const uint8_t nokey[] = {0x93, 0x01, CN_MSG_KEY_OP, 0x81, 0x01, CN_KEYOP_INSTALL};
	ck_assert_int_eq(cn_keyop_req_decode(nokey, sizeof nokey, &got), CN_EMISSING);
	/* op out of range */
	const uint8_t badop[] = {0x93, 0x01, CN_MSG_KEY_OP, 0x81, 0x01, 0x09};
	ck_assert_int_eq(cn_keyop_req_decode(badop, sizeof badop, &got), CN_EINVAL);
	/* key of 3 bytes */
	const uint8_t shortkey[] = {0x93, 0x01, CN_MSG_KEY_OP, 0x82, 0x01, CN_KEYOP_USE,
				    0x02, 0xc4, 0x03, 1, 2, 3};
	ck_assert_int_eq(cn_keyop_req_decode(shortkey, sizeof shortkey, &got), CN_EINVAL);
	/* ring claiming 9 keys (limit 8) */
	const uint8_t ring9[] = {0x93, 0x01, CN_MSG_KEY_OP, 0x82, 0x01, CN_KEYOP_SYNC, 0x03, 0x99};
	ck_assert_int_eq(cn_keyop_req_decode(ring9, sizeof ring9, &got), CN_ELIMIT);
	/* unknown keys are skipped */
	const uint8_t unknown[] = {0x93, 0x01, CN_MSG_KEY_OP, 0x82, 0x01, CN_KEYOP_LIST,
				   0x63, 0x92, 0xa1, 'x', 0xc0};
	ck_assert_int_eq(cn_keyop_req_decode(unknown, sizeof unknown, &got), 0);
	ck_assert_uint_eq(got.op, CN_KEYOP_LIST);
}
END_TEST

START_TEST(buf_ceiling_is_sticky)
{
	cn_buf b;
	cn_buf_init(&b, 16);
	ck_assert_int_eq(cn_buf_puts(&b, "0123456789"), 0);
	ck_assert_int_eq(cn_buf_puts(&b, "0123456789"), CN_ENOSPACE);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(cn_buf_str(&b), "0123456789");
	ck_assert_int_eq(cn_buf_puts(&b, "x"), CN_ENOSPACE);
	cn_buf_reset(&b);
	ck_assert_int_eq(cn_buf_printf(&b, "%d-%s", 42, "ok"), 0);
	ck_assert_str_eq(cn_buf_str(&b), "42-ok");
	cn_buf_free(&b);
}
END_TEST

START_TEST(json_shapes_and_escapes)
{
	cn_buf b;
	cn_buf_init(&b, 4096);
	cn_json j;
	cn_json_init(&j, &b);
	cn_json_obj_begin(&j);
	cn_json_kv_str(&j, "name", "a\"b\\c\n\x01");
	cn_json_key(&j, "list");
	cn_json_arr_begin(&j);
	cn_json_u64(&j, 1);
	cn_json_i64(&j, -2);
	cn_json_bool(&j, true);
	cn_json_null(&j);
	cn_json_f64(&j, 0.0 / 0.0);
	cn_json_arr_end(&j);
	cn_json_key(&j, "empty");
	cn_json_obj_begin(&j);
	cn_json_obj_end(&j);
	cn_json_obj_end(&j);
	ck_assert_str_eq(cn_buf_str(&b),
			 "{\"name\":\"a\\\"b\\\\c\\n\\u0001\",\"list\":[1,-2,true,null,null],\"empty\":{}}");
	cn_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, admin_request_roundtrip);
	tcase_add_test(tc, admin_request_hostile);
	tcase_add_test(tc, admin_reply_roundtrip);
	tcase_add_test(tc, keyop_roundtrip);
	tcase_add_test(tc, keyop_rejects_bad_fields);
	tcase_add_test(tc, buf_ceiling_is_sticky);
	tcase_add_test(tc, json_shapes_and_escapes);
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
