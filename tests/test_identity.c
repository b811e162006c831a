/* Unit tests for src/crypto/identity: Ed25519 key pairs (RFC 8032 vector),
 * detached signatures and tampering, node ids, and the identity blob. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/identity.h"
#include "util/err.h"

/* RFC 8032 section 7.1, TEST 1 (empty message). */
static const char rfc_seed_hex[] =
	"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc_pk_hex[] =
	"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char rfc_sig_hex[] =
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/* base64 of the seed and BLAKE2b-256(pk)[0..8), from Python. */
static const char rfc_seed_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char rfc_node_id[] = "7849ac3049680be1";

static void hex(uint8_t *out, size_t n, const char *h)
{
	size_t got = 0;
	ck_assert_int_eq(sodium_hex2bin(out, n, h, strlen(h), NULL, &got, NULL), 0);
	ck_assert_uint_eq(got, n);
}

static void rfc_key(cn_sigkey *k)
{
	uint8_t seed[CN_SIGKEY_SEED_BYTES];
	hex(seed, sizeof seed, rfc_seed_hex);
	ck_assert_int_eq(cn_sigkey_from_seed(k, seed), 0);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

START_TEST(rfc8032_vector)
{
	cn_sigkey k;
	rfc_key(&k);
	uint8_t pk[32], sig[64], want[64];
	hex(pk, sizeof pk, rfc_pk_hex);
	hex(want, sizeof want, rfc_sig_hex);
	ck_assert_mem_eq(cn_sigkey_public(&k), pk, 32);
	cn_sigkey_sign(&k, NULL, 0, sig);
	ck_assert_mem_eq(sig, want, 64);
	ck_assert_int_eq(cn_sigkey_verify(pk, NULL, 0, sig), 0);
	char id[CN_NODE_ID_SIZE];
	cn_sigkey_node_id(pk, id);
	ck_assert_str_eq(id, rfc_node_id);
	cn_sigkey_wipe(&k);
	ck_assert(all_zero(&k, sizeof k));
}
END_TEST

START_TEST(sign_verify_and_tamper)
{
	cn_sigkey k, other;
	ck_assert_int_eq(cn_sigkey_generate(&k), 0);
	ck_assert_int_eq(cn_sigkey_generate(&other), 0);
	ck_assert_mem_ne(k.pk, other.pk, 32);
	const uint8_t msg[] = "job web: replicas=3, region=eu";
	uint8_t sig[CN_SIG_BYTES], bad_sig[CN_SIG_BYTES], bad_msg[sizeof msg], bad_pk[32];
	cn_sigkey_sign(&k, msg, sizeof msg, sig);
	ck_assert_int_eq(cn_sigkey_verify(k.pk, msg, sizeof msg, sig), 0);
	ck_assert_int_eq(cn_sigkey_verify(other.pk, msg, sizeof msg, sig), CN_EAUTH);
	ck_assert_int_eq(cn_sigkey_verify(k.pk, msg, sizeof msg - 1, sig), CN_EAUTH);
	for (size_t i = 0; i < sizeof msg; i++) {
		memcpy(bad_msg, msg, sizeof msg);
		bad_msg[i] ^= 0x01;
		ck_assert_int_eq(cn_sigkey_verify(k.pk, bad_msg, sizeof msg, sig), CN_EAUTH);
	}
	for (size_t i = 0; i < CN_SIG_BYTES; i++) {
		for (unsigned f = 1; f < 256; f <<= 1) {
			memcpy(bad_sig, sig, sizeof sig);
			bad_sig[i] ^= (uint8_t)f;
			ck_assert_int_eq(cn_sigkey_verify(k.pk, msg, sizeof msg, bad_sig), CN_EAUTH);
		}
	}
	for (size_t i = 0; i < 32; i++) {
		memcpy(bad_pk, k.pk, 32);
		bad_pk[i] ^= 0x04;
		ck_assert_int_eq(cn_sigkey_verify(bad_pk, msg, sizeof msg, sig), CN_EAUTH);
	}
	/* The all-zero (small-order) public key verifies nothing. */
	memset(bad_pk, 0, sizeof bad_pk);
	memset(bad_sig, 0, sizeof bad_sig);
	ck_assert_int_eq(cn_sigkey_verify(bad_pk, msg, sizeof msg, bad_sig), CN_EAUTH);
	cn_sigkey_wipe(&k);
	cn_sigkey_wipe(&other);
}
END_TEST

START_TEST(node_id_shape)
{
	cn_sigkey k;
	ck_assert_int_eq(cn_sigkey_generate(&k), 0);
	char id[CN_NODE_ID_SIZE];
	cn_sigkey_node_id(k.pk, id);
	ck_assert_uint_eq(strlen(id), CN_NODE_ID_LEN);
	for (size_t i = 0; i < CN_NODE_ID_LEN; i++)
		ck_assert(strchr("0123456789abcdef", id[i]) != NULL);
	cn_sigkey_wipe(&k);
}
END_TEST

START_TEST(blob_round_trip)
{
	cn_sigkey k, back;
	rfc_key(&k);
	uint8_t blob[CN_SIGKEY_BLOB_LEN + 8];
	size_t n = 0;
	ck_assert_int_eq(cn_sigkey_to_blob(&k, blob, sizeof blob, &n), 0);
	ck_assert_uint_eq(n, CN_SIGKEY_BLOB_LEN);
	const char *want_prefix = "canopy-identity-v1\n";
	ck_assert_mem_eq(blob, want_prefix, 19);
	ck_assert_mem_eq(blob + 19, rfc_seed_b64, 44);
	ck_assert_uint_eq(blob[63], '\n');

	char why[CN_SIGKEY_WHY_MAX] = "x";
	ck_assert_int_eq(cn_sigkey_from_blob(&back, blob, n, why, sizeof why), 0);
	ck_assert_str_eq(why, "");
	ck_assert_mem_eq(back.sk, k.sk, sizeof k.sk);
	ck_assert_mem_eq(back.pk, k.pk, sizeof k.pk);

	/* A fresh key survives the trip and still signs for its public key. */
	cn_sigkey g;
	uint8_t sig[CN_SIG_BYTES];
	ck_assert_int_eq(cn_sigkey_generate(&g), 0);
	ck_assert_int_eq(cn_sigkey_to_blob(&g, blob, sizeof blob, &n), 0);
	ck_assert_int_eq(cn_sigkey_from_blob(&back, blob, n, NULL, 0), 0);
	cn_sigkey_sign(&back, blob, n, sig);
	ck_assert_int_eq(cn_sigkey_verify(g.pk, blob, n, sig), 0);

	/* Tolerated: no final newline, CRLF. */
	char text[128];
	strcpy(text, "canopy-identity-v1\n");
	strcat(text, rfc_seed_b64);
	ck_assert_int_eq(cn_sigkey_from_blob(&back, (uint8_t *)text, strlen(text), NULL, 0), 0);
	ck_assert_mem_eq(back.pk, k.pk, 32);
	strcpy(text, "canopy-identity-v1\r\n");
	strcat(text, rfc_seed_b64);
	strcat(text, "\r\n");
	ck_assert_int_eq(cn_sigkey_from_blob(&back, (uint8_t *)text, strlen(text), NULL, 0), 0);
	ck_assert_mem_eq(back.pk, k.pk, 32);

	/* Small buffer. */
	n = 5;
	ck_assert_int_eq(cn_sigkey_to_blob(&k, blob, CN_SIGKEY_BLOB_LEN - 1, &n), CN_ENOSPACE);
	ck_assert_uint_eq(n, 5);
	cn_sigkey_wipe(&k);
	cn_sigkey_wipe(&back);
	cn_sigkey_wipe(&g);
}
END_TEST

static void expect_bad(const char *blob, size_t len, int want_rc, const char *want_why)
{
	cn_sigkey k;
	memset(&k, 0x55, sizeof k);
	char why[CN_SIGKEY_WHY_MAX];
	/* An exact-size heap copy: ASan catches any over-read. */
	uint8_t *p = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(p);
	memcpy(p, blob, len);
	int rc = cn_sigkey_from_blob(&k, p, len, why, sizeof why);
	free(p);
	ck_assert_msg(rc == want_rc, "'%.*s': rc %d", (int)len, blob, rc);
	ck_assert_str_eq(why, want_why);
	ck_assert(all_zero(&k, sizeof k));
}

START_TEST(bad_blobs)
{
	const char *not_id = "identity: not a canopy identity (first line must be 'canopy-identity-v1')";
	const char *line1 = "identity: line 1: must be 'canopy-identity-v1'";
	const char *line2 = "identity: line 2: secret is not 32 bytes of base64";
	char b[512];

	expect_bad("", 0, CN_EINVAL, not_id);
	expect_bad("canopy-identity", 15, CN_EINVAL, not_id);
	expect_bad("CANOPY-IDENTITY-v1\n", 19, CN_EINVAL, not_id);
	expect_bad("canopy-identity-v", 17, CN_EINVAL, line1);
	expect_bad("canopy-identity-v1", 18, CN_EINVAL, line1);
	expect_bad("canopy-identity-v\n", 18, CN_EINVAL, line1);
	expect_bad("canopy-identity-v01\n", 20, CN_EINVAL, line1);
	expect_bad("canopy-identity-v1x\n", 20, CN_EINVAL, line1);
	expect_bad("canopy-identity-v1234567890\n", 28, CN_EINVAL, line1);

	snprintf(b, sizeof b, "canopy-identity-v2\n%s\n", rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EVERSION,
		   "identity: format version 2 not supported (this build reads v1)");
	snprintf(b, sizeof b, "canopy-identity-v999999999\n");
	expect_bad(b, strlen(b), CN_EVERSION,
		   "identity: format version 999999999 not supported (this build reads v1)");

	expect_bad("canopy-identity-v1\n", 19, CN_EINVAL, line2);
	expect_bad("canopy-identity-v1\n\n", 20, CN_EINVAL, line2);
	snprintf(b, sizeof b, "canopy-identity-v1\n %s\n", rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EINVAL, line2);
	snprintf(b, sizeof b, "canopy-identity-v1\n%.43s\n", rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EINVAL, line2);
	snprintf(b, sizeof b, "canopy-identity-v1\n%s\r", rfc_seed_b64); /* lone CR */
	expect_bad(b, strlen(b), CN_EINVAL, line2);
	/* A high byte where a base64 character belongs (libsodium alone takes it). */
	snprintf(b, sizeof b, "canopy-identity-v1\n%s\n", rfc_seed_b64);
	b[19 + 10] = (char)0xC3;
	expect_bad(b, strlen(b), CN_EINVAL, line2);
	/* The 64-byte libsodium secret key is not the format. */
	snprintf(b, sizeof b, "canopy-identity-v1\n%s%s\n", rfc_seed_b64, rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EINVAL, line2);

	snprintf(b, sizeof b, "canopy-identity-v1\n%s\n\n", rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EINVAL, "identity: trailing data after line 2");
	snprintf(b, sizeof b, "canopy-identity-v1\n%s\npublic xyz\n", rfc_seed_b64);
	expect_bad(b, strlen(b), CN_EINVAL, "identity: trailing data after line 2");

	memset(b, '\n', sizeof b);
	memcpy(b, "canopy-identity-v1\n", 19);
	expect_bad(b, CN_SIGKEY_BLOB_MAX + 1, CN_EINVAL, "identity: longer than 256 bytes");

	/* Every truncation of a good blob fails (except dropping the final
	 * newline), and never reads past the end. */
	cn_sigkey k;
	rfc_key(&k);
	uint8_t good[CN_SIGKEY_BLOB_LEN];
	size_t n = 0;
	ck_assert_int_eq(cn_sigkey_to_blob(&k, good, sizeof good, &n), 0);
	for (size_t len = 0; len < n - 1; len++) {
		uint8_t *p = malloc(len ? len : 1);
		memcpy(p, good, len);
		ck_assert_int_ne(cn_sigkey_from_blob(&k, p, len, NULL, 0), 0);
		free(p);
	}
	/* Flipping any bit of the seed's text either fails or gives another key;
	 * flipping the header always fails. */
	for (size_t i = 0; i < n; i++) {
		uint8_t t[CN_SIGKEY_BLOB_LEN];
		memcpy(t, good, n);
		t[i] ^= 0x20;
		int rc = cn_sigkey_from_blob(&k, t, n, NULL, 0);
		if (i < 19 || i == n - 1)
			ck_assert_int_ne(rc, 0);
	}
	cn_sigkey_wipe(&k);
}
END_TEST

START_TEST(public_text)
{
	uint8_t pk[32], back[32];
	hex(pk, sizeof pk, rfc_pk_hex);
	char t[CN_SIGKEY_TEXT_SIZE];
	cn_sigkey_public_encode(pk, t);
	ck_assert_uint_eq(strlen(t), CN_SIGKEY_TEXT_LEN);
	ck_assert_int_eq(cn_sigkey_public_decode(t, strlen(t), back), 0);
	ck_assert_mem_eq(back, pk, 32);
	ck_assert_int_eq(cn_sigkey_public_decode(t, strlen(t) - 1, back), CN_EINVAL);
	t[0] = '!';
	ck_assert_int_eq(cn_sigkey_public_decode(t, strlen(t), back), CN_EINVAL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, rfc8032_vector);
	tcase_add_test(tc, sign_verify_and_tamper);
	tcase_add_test(tc, node_id_shape);
	tcase_add_test(tc, blob_round_trip);
	tcase_add_test(tc, bad_blobs);
	tcase_add_test(tc, public_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (cn_crypto_init() != 0)
		return EXIT_FAILURE;
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
