/* Unit tests for core/doc: field syntax, the exact canonical bytes,
 * signatures against tampering of every field, the codec (round trip,
 * unknown/duplicate/missing keys, every truncation) and the LWW order's
 * algebra (total order; merge commutative, associative, idempotent). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/doc.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "util/err.h"
#include "util/rng.h"

START_TEST(field_syntax)
{
	ck_assert(cn_doc_kind_ok("config", 6));
	ck_assert(cn_doc_kind_ok("alert-rule2", 11));
	ck_assert(!cn_doc_kind_ok("Config", 6));
	ck_assert(!cn_doc_kind_ok("2x", 2));
	ck_assert(!cn_doc_kind_ok("", 0));
	ck_assert(!cn_doc_kind_ok("abcdefghijklmnopq", 17));
	ck_assert(cn_doc_name_ok("tenant-a/web.v2:x_y", 19));
	ck_assert(!cn_doc_name_ok("/abs", 4));
	ck_assert(!cn_doc_name_ok("a b", 3));
	ck_assert(!cn_doc_name_ok("", 0));
	ck_assert(cn_doc_writer_ok("node-1", 6));
	ck_assert(!cn_doc_writer_ok("node 1", 6));
	ck_assert(!cn_doc_writer_ok("n\x7f", 2));
}
END_TEST

START_TEST(init_names_the_field)
{
	cn_doc d;
	uint8_t key[32] = {1};
	char why[128];
	uint8_t nil = 0xc0, two[2] = {0xc0, 0xc0}, bad = 0xc1;
	ck_assert_int_eq(cn_doc_init(&d, "Bad", "n", 1, "w", key, false, &nil, 1, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "kind");
	ck_assert_int_eq(cn_doc_init(&d, "k", "/n", 1, "w", key, false, &nil, 1, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "name");
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 0, "w", key, false, &nil, 1, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "version");
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "", key, false, &nil, 1, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "writer");
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, false, two, 2, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "body");
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, false, &bad, 1, why, sizeof why), CN_EINVAL);
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, false, NULL, 0, why, sizeof why), CN_EINVAL);
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, true, &nil, 1, why, sizeof why), CN_EINVAL);
	ck_assert_str_eq(strtok(why, ":"), "body");
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, false, &nil, CN_DOC_BODY_MAX + 1, why, sizeof why), CN_EINVAL);
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, true, NULL, 0, why, sizeof why), 0);
	ck_assert_int_eq(cn_doc_init(&d, "k", "n", 1, "w", key, false, &nil, 1, why, sizeof why), 0);
	ck_assert_int_eq(cn_doc_validate(&d, why, sizeof why), 0);
	d.body_hash[0] ^= 1;
	ck_assert_int_eq(cn_doc_validate(&d, why, sizeof why), CN_EINVAL);
}
END_TEST

/* The canonical bytes, spelled out byte by byte (doc.h). */
START_TEST(canonical_bytes_exact)
{
	uint8_t key[32], nil = 0xc0, hash[32];
	memset(key, 0x11, sizeof key);
	crypto_generichash(hash, 32, &nil, 1, NULL, 0);
	cn_doc d;
	ck_assert_int_eq(cn_doc_init(&d, "config", "a", 5, "n1", key, false, &nil, 1, NULL, 0), 0);
	uint8_t want[200];
	size_t n = 0;
	want[n++] = 0x98;
	want[n++] = 0xac;
	memcpy(want + n, "canopy-doc/1", 12), n += 12;
	want[n++] = 0xa6;
	memcpy(want + n, "config", 6), n += 6;
	want[n++] = 0xa1;
	want[n++] = 'a';
	want[n++] = 0x05;
	want[n++] = 0xa2;
	want[n++] = 'n';
	want[n++] = '1';
	want[n++] = 0xc4;
	want[n++] = 0x20;
	memcpy(want + n, key, 32), n += 32;
	want[n++] = 0xc2;
	want[n++] = 0xc4;
	want[n++] = 0x20;
	memcpy(want + n, hash, 32), n += 32;
	uint8_t got[CN_DOC_CANON_MAX];
	size_t m = 0;
	ck_assert_int_eq(cn_doc_canonical(&d, got, sizeof got, &m), 0);
	ck_assert_uint_eq(m, n);
	ck_assert_mem_eq(got, want, n);
	uint8_t h1[32], h2[32];
	cn_doc_hash(&d, h1);
	crypto_generichash(h2, 32, want, n, NULL, 0);
	ck_assert_mem_eq(h1, h2, 32);
	/* The largest fields fit CN_DOC_CANON_MAX; a big version takes 9 bytes. */
	char kind[17], name[129], writer[65];
	memset(kind, 'k', 16), kind[16] = 0;
	memset(name, 'n', 128), name[128] = 0;
	memset(writer, 'w', 64), writer[64] = 0;
	ck_assert_int_eq(cn_doc_init(&d, kind, name, UINT64_MAX, writer, key, true, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(cn_doc_canonical(&d, got, sizeof got, &m), 0);
	ck_assert_uint_le(m, CN_DOC_CANON_MAX);
	ck_assert_uint_eq(m, 305);
}
END_TEST

START_TEST(signature_detects_tampering)
{
	cn_sigkey k, other;
	fx_key(&k, 1);
	fx_key(&other, 2);
	fx_doc f;
	ck_assert_int_eq(fx_make(&f, "job", "web", 77, "n1", &k, false, 3), 0);
	ck_assert_int_eq(cn_doc_verify_sig(&f.d), 0);
	for (int field = 0; field < 8; field++) {
		fx_doc t = f;
		fx_fix(&t);
		uint8_t body2[64];
		switch (field) {
		case 0: strcpy(t.d.kind, "jobs"); break;
		case 1: strcpy(t.d.name, "weB"); break;
		case 2: t.d.version++; break;
		case 3: strcpy(t.d.writer, "n2"); break;
		case 4: memcpy(t.d.key, cn_sigkey_public(&other), 32); break;
		case 5: t.d.deleted = true; break;
		case 6: {
			size_t n = fx_body(body2, sizeof body2, 4);
			t.d.body = body2;
			t.d.body_len = (uint32_t)n;
			crypto_generichash(t.d.body_hash, 32, body2, n, NULL, 0);
			break;
		}
		case 7: t.d.sig[10] ^= 0x40; break;
		}
		ck_assert_int_eq(cn_doc_verify_sig(&t.d), CN_EAUTH);
	}
	cn_sigkey_wipe(&k);
	cn_sigkey_wipe(&other);
}
END_TEST

START_TEST(codec_round_trip_and_errors)
{
	cn_sigkey k;
	fx_key(&k, 3);
	fx_doc f;
	ck_assert_int_eq(fx_make(&f, "config", "tenant-a/telemetry", 123456789, "node-7", &k, false, 5000), 0);
	uint8_t buf[1024];
	size_t n = 0;
	ck_assert_int_eq(cn_doc_encode(&f.d, buf, sizeof buf, &n), 0);
	ck_assert_uint_eq(n, cn_doc_encoded_size(&f.d));
	cn_doc d;
	uint64_t unknown = 0;
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, &unknown), 0);
	ck_assert(cn_doc_equal(&d, &f.d));
	ck_assert_uint_eq(unknown, 0);
	ck_assert_int_eq(cn_doc_verify_sig(&d), 0);
	/* every truncation fails cleanly */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_ne(cn_doc_decode(buf, i, &d, NULL), 0);
	/* trailing byte */
	buf[n] = 0xc0;
	ck_assert_int_eq(cn_doc_decode(buf, n + 1, &d, NULL), CN_ETRAILING);
	/* encoder overflow */
	ck_assert_int_eq(cn_doc_encode(&f.d, buf, n - 1, &n), CN_ENOSPACE);
	/* tombstone round trip */
	ck_assert_int_eq(fx_make(&f, "config", "x", 9, "n", &k, true, 0), 0);
	ck_assert_int_eq(cn_doc_encode(&f.d, buf, sizeof buf, &n), 0);
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, NULL), 0);
	ck_assert(d.deleted && d.body == NULL && d.body_len == 0);
	ck_assert(cn_doc_equal(&d, &f.d));
	cn_sigkey_wipe(&k);
}
END_TEST

/* Builds a map by hand to test unknown, repeated and missing keys. */
static size_t hand_doc(uint8_t *buf, size_t cap, int extra, bool repeat, bool drop_sig)
{
	uint8_t key[32] = {0}, sig[64] = {1}, nil = 0xc0;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, (uint32_t)(8 + extra + (repeat ? 1 : 0) - (drop_sig ? 1 : 0)));
	for (int i = 0; i < extra; i++) {
		cn_mp_put_uint(&w, 99 + (uint64_t)i);
		cn_mp_put_array(&w, 1);
		cn_mp_put_cstr(&w, "future");
	}
	cn_mp_put_uint(&w, 1), cn_mp_put_cstr(&w, "config");
	cn_mp_put_uint(&w, 2), cn_mp_put_cstr(&w, "n");
	cn_mp_put_uint(&w, 3), cn_mp_put_uint(&w, 5);
	cn_mp_put_uint(&w, 4), cn_mp_put_cstr(&w, "w");
	cn_mp_put_uint(&w, 5), cn_mp_put_bin(&w, key, 32);
	cn_mp_put_uint(&w, 6), cn_mp_put_bool(&w, false);
	cn_mp_put_uint(&w, 7), cn_mp_put_bin(&w, &nil, 1);
	if (!drop_sig)
		cn_mp_put_uint(&w, 8), cn_mp_put_bin(&w, sig, 64);
	if (repeat)
		cn_mp_put_uint(&w, 2), cn_mp_put_cstr(&w, "m");
	size_t n = 0;
	cn_mp_writer_end(&w, &n);
	return n;
}

START_TEST(codec_keys)
{
	uint8_t buf[512];
	cn_doc d;
	uint64_t unknown = 0;
	size_t n = hand_doc(buf, sizeof buf, 0, false, false);
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, &unknown), 0);
	n = hand_doc(buf, sizeof buf, 2, false, false);
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, &unknown), 0);
	ck_assert_uint_eq(unknown, 2);
	n = hand_doc(buf, sizeof buf, 0, true, false);
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, NULL), CN_EINVAL);
	n = hand_doc(buf, sizeof buf, 0, false, true);
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, NULL), CN_EMISSING);
	/* a body that is not one msgpack object, inside a valid bin */
	n = hand_doc(buf, sizeof buf, 0, false, false);
	uint8_t *nilp = memchr(buf, 0xc0, n);
	ck_assert_ptr_nonnull(nilp);
	*nilp = 0xc1;
	ck_assert_int_eq(cn_doc_decode(buf, n, &d, NULL), CN_EINVAL);
	/* a map declaring 2^32-1 entries in 5 bytes */
	uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_ne(cn_doc_decode(huge, sizeof huge, &d, NULL), 0);
}
END_TEST

/* Merge = max; check the algebra on random documents of one name. */
static const cn_doc *merge(const cn_doc *a, const cn_doc *b)
{
	return cn_doc_cmp(a, b) >= 0 ? a : b;
}

START_TEST(order_is_total_and_merge_is_a_semilattice)
{
	cn_sigkey k;
	fx_key(&k, 4);
	enum { N = 40 };
	static fx_doc f[N];
	cn_rng rng;
	cn_rng_seed(&rng, 1234);
	const char *writers[] = {"a", "b", "ab"};
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(fx_make(&f[i], "job", "x", 1 + cn_rng_below(&rng, 4),
					 writers[cn_rng_below(&rng, 3)], &k, cn_rng_below(&rng, 5) == 0,
					 cn_rng_below(&rng, 3)), 0);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(cn_doc_cmp(&f[i].d, &f[i].d), 0);
		for (int j = 0; j < N; j++) {
			int c = cn_doc_cmp(&f[i].d, &f[j].d);
			ck_assert_int_eq(c, -cn_doc_cmp(&f[j].d, &f[i].d));
			if (c == 0) /* same fields, same key: Ed25519 gives the same signature */
				ck_assert(cn_doc_equal(&f[i].d, &f[j].d));
			ck_assert_ptr_eq(merge(&f[i].d, &f[j].d), c >= 0 ? &f[i].d : &f[j].d);
			ck_assert_int_eq(cn_doc_cmp(merge(&f[i].d, &f[j].d), merge(&f[j].d, &f[i].d)), 0);
			ck_assert_ptr_eq(merge(&f[i].d, &f[i].d), &f[i].d);
			for (int l = 0; l < N; l += 3) {
				const cn_doc *x = merge(merge(&f[i].d, &f[j].d), &f[l].d);
				const cn_doc *y = merge(&f[i].d, merge(&f[j].d, &f[l].d));
				ck_assert_int_eq(cn_doc_cmp(x, y), 0);
				if (c < 0 && cn_doc_cmp(&f[j].d, &f[l].d) < 0)
					ck_assert_int_lt(cn_doc_cmp(&f[i].d, &f[l].d), 0);
			}
		}
	}
	cn_sigkey_wipe(&k);
}
END_TEST

int main(void)
{
	if (cn_crypto_init() != 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("doc");
	TCase *tc = tcase_create("doc");
	tcase_add_test(tc, field_syntax);
	tcase_add_test(tc, init_names_the_field);
	tcase_add_test(tc, canonical_bytes_exact);
	tcase_add_test(tc, signature_detects_tampering);
	tcase_add_test(tc, codec_round_trip_and_errors);
	tcase_add_test(tc, codec_keys);
	tcase_add_test(tc, order_is_total_and_merge_is_a_semilattice);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
