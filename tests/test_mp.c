/* Unit tests for src/wire/mp: the bounded msgpack reader and the writer.
 *
 * Covers every msgpack format (the reader's header table), truncation of
 * valid objects at every byte offset, inputs that declare huge containers or
 * payloads in a few bytes, the skip depth limit, and the writer's sticky
 * overflow. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

/* One encoded object and what a skip must consume (the whole of it). */
struct obj {
	const char *what;
	uint8_t b[48];
	size_t len;
};

#define OBJ(what, ...) {what, {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})}

static const struct obj objs[] = {
	OBJ("positive fixint", 0x05),
	OBJ("fixint 0x7f", 0x7f),
	OBJ("negative fixint", 0xe0),
	OBJ("nil", 0xc0),
	OBJ("false", 0xc2),
	OBJ("true", 0xc3),
	OBJ("uint8", 0xcc, 0xff),
	OBJ("uint16", 0xcd, 0x01, 0x00),
	OBJ("uint32", 0xce, 0x00, 0x01, 0x00, 0x00),
	OBJ("uint64", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	OBJ("int8", 0xd0, 0x80),
	OBJ("int16", 0xd1, 0x80, 0x00),
	OBJ("int32", 0xd2, 0xff, 0xff, 0xff, 0xfe),
	OBJ("int64", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0),
	OBJ("float32", 0xca, 0x3f, 0xc0, 0x00, 0x00),
	OBJ("float64", 0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18),
	OBJ("fixstr", 0xa3, 'a', 'b', 'c'),
	OBJ("empty fixstr", 0xa0),
	OBJ("str8", 0xd9, 0x02, 'h', 'i'),
	OBJ("str16", 0xda, 0x00, 0x01, 'x'),
	OBJ("str32", 0xdb, 0x00, 0x00, 0x00, 0x01, 'y'),
	OBJ("bin8", 0xc4, 0x02, 0x00, 0xff),
	OBJ("bin16", 0xc5, 0x00, 0x01, 0x00),
	OBJ("bin32", 0xc6, 0x00, 0x00, 0x00, 0x00),
	OBJ("fixarray", 0x92, 0x01, 0xa1, 'z'),
	OBJ("array16", 0xdc, 0x00, 0x02, 0xc0, 0xc3),
	OBJ("array32", 0xdd, 0x00, 0x00, 0x00, 0x01, 0x90),
	OBJ("fixmap", 0x81, 0x01, 0x80),
	OBJ("map16", 0xde, 0x00, 0x01, 0xa1, 'k', 0x92, 0x01, 0x02),
	OBJ("map32", 0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0xc0),
	OBJ("fixext1", 0xd4, 0x01, 0xaa),
	OBJ("fixext2", 0xd5, 0x01, 0xaa, 0xbb),
	OBJ("fixext4", 0xd6, 0xff, 1, 2, 3, 4),
	OBJ("fixext8", 0xd7, 0x02, 1, 2, 3, 4, 5, 6, 7, 8),
	OBJ("fixext16", 0xd8, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
	OBJ("ext8", 0xc7, 0x03, 0x05, 1, 2, 3),
	OBJ("ext8 empty", 0xc7, 0x00, 0x05),
	OBJ("ext16", 0xc8, 0x00, 0x02, 0x05, 1, 2),
	OBJ("ext32", 0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 1),
	OBJ("nested", 0x82, 0x01, 0x93, 0xc0, 0xd4, 0x01, 0x00, 0x81, 0xa1, 'a', 0xc4, 0x01,
	    0x07, 0xa1, 'b', 0xdc, 0x00, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
};
enum { N_OBJS = sizeof objs / sizeof objs[0] };

START_TEST(skip_consumes_each_format_exactly)
{
	for (int i = 0; i < N_OBJS; i++) {
		uint8_t b[64];
		memcpy(b, objs[i].b, objs[i].len);
		b[objs[i].len] = 0x2a; /* the next object */
		cn_mp_reader r;
		cn_mp_reader_init(&r, b, objs[i].len + 1);
		ck_assert_msg(cn_mp_skip(&r) == 0, "%s", objs[i].what);
		ck_assert_msg(r.p == b + objs[i].len, "%s: skip consumed %td", objs[i].what,
			      r.p - b);
		uint64_t next;
		ck_assert_int_eq(cn_mp_read_u64(&r, &next), 0);
		ck_assert_uint_eq(next, 0x2a);
	}
}
END_TEST

START_TEST(truncation_at_every_offset)
{
	for (int i = 0; i < N_OBJS; i++) {
		for (size_t cut = 0; cut < objs[i].len; cut++) {
			cn_mp_reader r;
			cn_mp_reader_init(&r, objs[i].b, cut);
			ck_assert_msg(cn_mp_skip(&r) == CN_ETRUNC, "%s cut at %zu", objs[i].what,
				      cut);
			ck_assert_ptr_eq(r.p, objs[i].b); /* untouched */
			/* Typed reads fail too and leave the cursor alone; a
			 * container header may be complete, but only if its
			 * elements could still fit. */
			uint64_t u;
			double d;
			const char *s;
			const uint8_t *bin;
			uint32_t n;
			bool bl;
			ck_assert_int_ne(cn_mp_read_u64(&r, &u), 0);
			ck_assert_int_ne(cn_mp_read_f64(&r, &d), 0);
			ck_assert_int_ne(cn_mp_read_str(&r, &s, &n, UINT32_MAX), 0);
			ck_assert_int_ne(cn_mp_read_bin(&r, &bin, &n, UINT32_MAX), 0);
			ck_assert_int_ne(cn_mp_read_bool(&r, &bl), 0);
			ck_assert_int_ne(cn_mp_read_nil(&r), 0);
			ck_assert_ptr_eq(r.p, objs[i].b);
		}
	}
}
END_TEST

START_TEST(scalars_read_by_type)
{
	cn_mp_reader r;
	uint64_t u;
	int64_t i;
	uint32_t u32;
	double d;
	bool b;
#define AT(k) cn_mp_reader_init(&r, objs[k].b, objs[k].len)
	AT(0); ck_assert_int_eq(cn_mp_read_u64(&r, &u), 0); ck_assert_uint_eq(u, 5);
	AT(2); ck_assert_int_eq(cn_mp_read_i64(&r, &i), 0); ck_assert_int_eq(i, -32);
	AT(2); ck_assert_int_eq(cn_mp_read_u64(&r, &u), CN_ERANGE);
	AT(3); ck_assert_int_eq(cn_mp_read_nil(&r), 0);
	AT(4); ck_assert_int_eq(cn_mp_read_bool(&r, &b), 0); ck_assert(!b);
	AT(5); ck_assert_int_eq(cn_mp_read_bool(&r, &b), 0); ck_assert(b);
	AT(5); ck_assert_int_eq(cn_mp_read_u64(&r, &u), CN_ETYPE);
	AT(6); ck_assert_int_eq(cn_mp_read_u64(&r, &u), 0); ck_assert_uint_eq(u, 255);
	AT(7); ck_assert_int_eq(cn_mp_read_u64(&r, &u), 0); ck_assert_uint_eq(u, 256);
	AT(8); ck_assert_int_eq(cn_mp_read_u32(&r, &u32), 0); ck_assert_uint_eq(u32, 65536);
	AT(9); ck_assert_int_eq(cn_mp_read_u64(&r, &u), 0); ck_assert_uint_eq(u, UINT64_MAX);
	AT(9); ck_assert_int_eq(cn_mp_read_u32(&r, &u32), CN_ERANGE);
	ck_assert_ptr_eq(r.p, objs[9].b);
	AT(9); ck_assert_int_eq(cn_mp_read_i64(&r, &i), CN_ERANGE);
	AT(10); ck_assert_int_eq(cn_mp_read_i64(&r, &i), 0); ck_assert_int_eq(i, -128);
	AT(11); ck_assert_int_eq(cn_mp_read_i64(&r, &i), 0); ck_assert_int_eq(i, -32768);
	AT(12); ck_assert_int_eq(cn_mp_read_i64(&r, &i), 0); ck_assert_int_eq(i, -2);
	AT(13); ck_assert_int_eq(cn_mp_read_i64(&r, &i), 0); ck_assert_int_eq(i, INT64_MIN);
	AT(14); ck_assert_int_eq(cn_mp_read_f64(&r, &d), 0); ck_assert(d == 1.5);
	AT(15); ck_assert_int_eq(cn_mp_read_f64(&r, &d), 0); ck_assert(fabs(d - M_PI) < 1e-15);
	AT(12); ck_assert_int_eq(cn_mp_read_f64(&r, &d), 0); ck_assert(d == -2.0);
	AT(16); ck_assert_int_eq(cn_mp_read_f64(&r, &d), CN_ETYPE);
#undef AT
	/* A non-negative value in a signed encoding reads as unsigned. */
	static const uint8_t pos_int8[] = {0xd0, 0x05};
	cn_mp_reader_init(&r, pos_int8, sizeof pos_int8);
	ck_assert_int_eq(cn_mp_read_u64(&r, &u), 0);
	ck_assert_uint_eq(u, 5);
	/* 0xc1 is reserved. */
	static const uint8_t never[] = {0xc1};
	cn_mp_reader_init(&r, never, 1);
	ck_assert_int_eq(cn_mp_skip(&r), CN_ETYPE);
	ck_assert_int_eq(cn_mp_read_nil(&r), CN_ETYPE);
}
END_TEST

START_TEST(strings_and_binaries)
{
	cn_mp_reader r;
	const char *s;
	const uint8_t *b;
	uint32_t n;
	cn_mp_reader_init(&r, objs[16].b, objs[16].len);
	ck_assert_int_eq(cn_mp_read_str(&r, &s, &n, 2), CN_ELIMIT);
	ck_assert_ptr_eq(r.p, objs[16].b);
	ck_assert_int_eq(cn_mp_read_bin(&r, &b, &n, 64), CN_ETYPE);
	ck_assert_int_eq(cn_mp_read_str(&r, &s, &n, 3), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(s, "abc", 3) == 0);
	for (int k = 18; k <= 20; k++) {
		cn_mp_reader_init(&r, objs[k].b, objs[k].len);
		ck_assert_int_eq(cn_mp_read_str(&r, &s, &n, 64), 0);
		ck_assert_uint_eq(cn_mp_remaining(&r), 0);
	}
	cn_mp_reader_init(&r, objs[21].b, objs[21].len);
	ck_assert_int_eq(cn_mp_read_bin(&r, &b, &n, 64), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(b[1], 0xff);
	cn_mp_reader_init(&r, objs[23].b, objs[23].len);
	ck_assert_int_eq(cn_mp_read_bin(&r, &b, &n, 0), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* A few bytes that declare gigantic things: each is refused at once with
 * CN_ETRUNC (nothing is sized by a declared count; the reader has no
 * allocator to call). */
START_TEST(hostile_declared_sizes)
{
	static const struct obj hostile[] = {
		OBJ("map32", 0xdf, 0xbf, 0xff, 0xff, 0x28),
		OBJ("array32", 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0),
		OBJ("array16", 0xdc, 0xff, 0xff, 0xc0, 0xc0),
		OBJ("map16", 0xde, 0x00, 0x02, 0x01, 0x02, 0x03),
		OBJ("str32", 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'),
		OBJ("bin32", 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00),
		OBJ("ext32", 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00),
		OBJ("str8 short", 0xd9, 0x05, 'a'),
		OBJ("fixarray short", 0x93, 0x01),
		OBJ("nested huge", 0x91, 0x91, 0xdf, 0x7f, 0xff, 0xff, 0xff),
	};
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		cn_mp_reader r;
		uint32_t n;
		const char *s;
		const uint8_t *b;
		cn_mp_reader_init(&r, hostile[i].b, hostile[i].len);
		ck_assert_msg(cn_mp_skip(&r) == CN_ETRUNC, "%s", hostile[i].what);
		ck_assert_ptr_eq(r.p, hostile[i].b);
		int rc;
		switch (hostile[i].b[0]) {
		case 0xdf: case 0xde: rc = cn_mp_read_map(&r, &n, UINT32_MAX); break;
		case 0xdd: case 0xdc: case 0x93: rc = cn_mp_read_array(&r, &n, UINT32_MAX); break;
		case 0xdb: case 0xd9: rc = cn_mp_read_str(&r, &s, &n, UINT32_MAX); break;
		case 0xc6: rc = cn_mp_read_bin(&r, &b, &n, UINT32_MAX); break;
		default: rc = CN_ETRUNC; break;
		}
		ck_assert_msg(rc == CN_ETRUNC, "%s: %d", hostile[i].what, rc);
	}
	/* The protocol limit is checked before the input length. */
	cn_mp_reader r;
	uint32_t n;
	cn_mp_reader_init(&r, hostile[0].b, hostile[0].len);
	ck_assert_int_eq(cn_mp_read_map(&r, &n, 64), CN_ELIMIT);
	/* A count the input can hold passes. */
	static const uint8_t ok[] = {0x93, 0x01, 0x02, 0x03};
	cn_mp_reader_init(&r, ok, sizeof ok);
	ck_assert_int_eq(cn_mp_read_array(&r, &n, 3), 0);
	ck_assert_uint_eq(n, 3);
}
END_TEST

START_TEST(depth_limit)
{
	uint8_t b[CN_MP_DEPTH_MAX + 8];
	cn_mp_reader r;
	/* CN_MP_DEPTH_MAX nested arrays around nil: fine. */
	memset(b, 0x91, CN_MP_DEPTH_MAX);
	b[CN_MP_DEPTH_MAX] = 0xc0;
	cn_mp_reader_init(&r, b, CN_MP_DEPTH_MAX + 1);
	ck_assert_int_eq(cn_mp_skip(&r), 0);
	ck_assert_uint_eq(cn_mp_remaining(&r), 0);
	/* One more level: refused, cursor untouched. */
	memset(b, 0x91, CN_MP_DEPTH_MAX + 1);
	b[CN_MP_DEPTH_MAX + 1] = 0xc0;
	cn_mp_reader_init(&r, b, CN_MP_DEPTH_MAX + 2);
	ck_assert_int_eq(cn_mp_skip(&r), CN_EDEPTH);
	ck_assert_ptr_eq(r.p, b);
	/* Maps count too; empty containers do not nest. */
	memset(b, 0xc0, sizeof b);
	memset(b, 0x81, CN_MP_DEPTH_MAX + 1);
	cn_mp_reader_init(&r, b, sizeof b);
	ck_assert_int_eq(cn_mp_skip(&r), CN_EDEPTH);
	memset(b, 0x90, 8);
	cn_mp_reader_init(&r, b, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(cn_mp_skip(&r), 0);
	ck_assert_int_eq(cn_mp_skip(&r), CN_ETRUNC);
}
END_TEST

/* A long flat array skips without recursion or counters overflowing. */
START_TEST(skip_wide_structures)
{
	enum { N = 100000 };
	uint8_t *b = malloc(5 + 2 * N);
	b[0] = 0xdf;
	b[1] = (uint8_t)(N >> 24), b[2] = (uint8_t)(N >> 16), b[3] = (uint8_t)(N >> 8),
	b[4] = (uint8_t)N;
	for (int i = 0; i < N; i++)
		b[5 + 2 * i] = 0x01, b[6 + 2 * i] = 0x90;
	cn_mp_reader r;
	cn_mp_reader_init(&r, b, 5 + 2 * N);
	ck_assert_int_eq(cn_mp_skip(&r), 0);
	ck_assert_uint_eq(cn_mp_remaining(&r), 0);
	cn_mp_reader_init(&r, b, 4 + 2 * N);
	ck_assert_int_eq(cn_mp_skip(&r), CN_ETRUNC);
	free(b);
}
END_TEST

START_TEST(writer_roundtrip_and_sticky_overflow)
{
	uint8_t b[64];
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, b, sizeof b);
	cn_mp_put_array(&w, 6);
	cn_mp_put_uint(&w, 300);
	cn_mp_put_int(&w, -5);
	cn_mp_put_bool(&w, true);
	cn_mp_put_f32(&w, 0.5f);
	cn_mp_put_cstr(&w, "hi");
	cn_mp_put_bin(&w, "\x01\x02", 2);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	static const uint8_t want[] = {0x96, 0xcd, 0x01, 0x2c, 0xfb, 0xc3, 0xca, 0x3f, 0x00,
				       0x00, 0x00, 0xa2, 'h',  'i',  0xc4, 0x02, 0x01, 0x02};
	ck_assert_uint_eq(len, sizeof want);
	ck_assert_mem_eq(b, want, len);

	cn_mp_writer_init(&w, b, 4);
	cn_mp_put_uint(&w, 1);          /* 1 byte */
	cn_mp_put_cstr(&w, "abcd");     /* does not fit */
	size_t at = w.len;
	cn_mp_put_uint(&w, 2);          /* would fit, but overflow is sticky */
	cn_mp_put_nil(&w);
	ck_assert_uint_eq(w.len, at);
	ck_assert(w.overflow);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), CN_ENOSPACE);
	ck_assert_uint_le(w.len, 4);

	cn_mp_writer_init(&w, b, 0);
	cn_mp_put_nil(&w);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), CN_ENOSPACE);
}
END_TEST

static Suite *mp_suite(void)
{
	Suite *s = suite_create("mp");
	TCase *tc = tcase_create("reader");
	tcase_add_test(tc, skip_consumes_each_format_exactly);
	tcase_add_test(tc, truncation_at_every_offset);
	tcase_add_test(tc, scalars_read_by_type);
	tcase_add_test(tc, strings_and_binaries);
	tcase_add_test(tc, hostile_declared_sizes);
	tcase_add_test(tc, depth_limit);
	tcase_add_test(tc, skip_wide_structures);
	suite_add_tcase(s, tc);
	TCase *tw = tcase_create("writer");
	tcase_add_test(tw, writer_roundtrip_and_sticky_overflow);
	suite_add_tcase(s, tw);
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
