/* Unit tests for src/crypto/keyring, seal and keytext: rotation semantics,
 * sealed envelopes (layout, tampering, planes, truncation, versions, size
 * limits) and the key ring text file. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "crypto/keytext.h"
#include "crypto/seal.h"
#include "util/err.h"
#include "wire/proto.h"

/* Deterministic key number n < 256: n, then bytes n*32+1 .. n*32+31
 * (mod 256). Key 0 is 00 01 02 .. 1f. */
static void key_n(uint8_t key[CN_KEY_BYTES], unsigned n)
{
	ck_assert_uint_lt(n, 256);
	key[0] = (uint8_t)n;
	for (unsigned i = 1; i < CN_KEY_BYTES; i++)
		key[i] = (uint8_t)(n * 32 + i);
}

static uint32_t install_n(cn_keyring *ring, unsigned n)
{
	uint8_t k[CN_KEY_BYTES];
	uint32_t id = 0;
	key_n(k, n);
	ck_assert_int_eq(cn_keyring_install(ring, k, &id), 0);
	ck_assert_uint_eq(id, cn_key_id(k));
	return id;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static const uint8_t nonce0[CN_ENVELOPE_NONCE] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
static const uint8_t hello[] = "hello, fleet";

/* ---- key ids and ring management ---------------------------------- */

START_TEST(key_id_is_blake2b_prefix_big_endian)
{
	/* Independent values from Python's hashlib.blake2b(digest_size=32). */
	uint8_t zero[CN_KEY_BYTES] = {0};
	ck_assert_uint_eq(cn_key_id(zero), 0x89eb0d6aU);
	uint8_t k[CN_KEY_BYTES];
	key_n(k, 0); /* 00 01 02 .. 1f */
	ck_assert_uint_eq(cn_key_id(k), 0xcb2f5160U);
}
END_TEST

START_TEST(ring_install_use_remove)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	uint32_t id = 0;
	ck_assert_int_eq(cn_keyring_primary_id(&ring, &id), CN_ENOKEY);
	ck_assert_ptr_null(cn_keyring_primary(&ring));

	uint32_t a = install_n(&ring, 1);
	ck_assert_int_eq(cn_keyring_primary_id(&ring, &id), 0);
	ck_assert_uint_eq(id, a); /* the first key becomes primary */

	uint8_t k[CN_KEY_BYTES];
	key_n(k, 1);
	ck_assert_int_eq(cn_keyring_install(&ring, k, NULL), CN_EEXIST);
	ck_assert_uint_eq(cn_keyring_count(&ring), 1);

	uint32_t b = install_n(&ring, 2);
	ck_assert_int_eq(cn_keyring_primary_id(&ring, &id), 0);
	ck_assert_uint_eq(id, a); /* installing does not change the primary */

	ck_assert_int_eq(cn_keyring_use(&ring, 0xdeadbeefU), CN_ENOENT);
	ck_assert_int_eq(cn_keyring_use(&ring, b), 0);
	ck_assert_int_eq(cn_keyring_primary_id(&ring, &id), 0);
	ck_assert_uint_eq(id, b);
	ck_assert_int_eq(cn_keyring_remove(&ring, b), CN_EPERM);
	ck_assert_int_eq(cn_keyring_remove(&ring, 0xdeadbeefU), CN_ENOENT);

	cn_keyring_entry e[CN_KEYRING_MAX];
	ck_assert_uint_eq(cn_keyring_list(&ring, e), 2);
	ck_assert_uint_eq(e[0].id, a);
	ck_assert(!e[0].primary);
	ck_assert_uint_eq(e[1].id, b);
	ck_assert(e[1].primary);

	ck_assert_int_eq(cn_keyring_remove(&ring, a), 0);
	ck_assert_int_eq(cn_keyring_remove(&ring, a), CN_ENOENT);
	ck_assert_ptr_null(cn_keyring_find(&ring, a));
	ck_assert_uint_eq(cn_keyring_list(&ring, e), 1);
	ck_assert_uint_eq(e[0].id, b);
	ck_assert(e[0].primary);
	/* The freed slot is wiped. */
	ck_assert(all_zero(ring.keys[1], CN_KEY_BYTES));

	cn_keyring_wipe(&ring);
	ck_assert(all_zero(&ring, sizeof ring));
}
END_TEST

START_TEST(ring_full_and_remove_keeps_order)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	uint32_t ids[CN_KEYRING_MAX];
	for (unsigned i = 0; i < CN_KEYRING_MAX; i++)
		ids[i] = install_n(&ring, i);
	uint8_t k[CN_KEY_BYTES];
	key_n(k, 100);
	ck_assert_int_eq(cn_keyring_install(&ring, k, NULL), CN_EFULL);
	/* A duplicate is reported as a duplicate even when full. */
	key_n(k, 3);
	ck_assert_int_eq(cn_keyring_install(&ring, k, NULL), CN_EEXIST);

	ck_assert_int_eq(cn_keyring_use(&ring, ids[5]), 0);
	ck_assert_int_eq(cn_keyring_remove(&ring, ids[2]), 0);
	ck_assert_int_eq(cn_keyring_remove(&ring, ids[0]), 0);
	cn_keyring_entry e[CN_KEYRING_MAX];
	ck_assert_uint_eq(cn_keyring_list(&ring, e), CN_KEYRING_MAX - 2);
	const unsigned expect[] = {1, 3, 4, 5, 6, 7};
	for (unsigned i = 0; i < 6; i++) {
		ck_assert_uint_eq(e[i].id, ids[expect[i]]);
		ck_assert(e[i].primary == (expect[i] == 5));
		key_n(k, expect[i]);
		ck_assert_mem_eq(cn_keyring_at(&ring, i), k, CN_KEY_BYTES);
	}
	ck_assert(all_zero(ring.keys[6], 2 * CN_KEY_BYTES));
	/* Room again. */
	key_n(k, 100);
	ck_assert_int_eq(cn_keyring_install(&ring, k, NULL), 0);
	cn_keyring_wipe(&ring);
}
END_TEST

/* ---- sealing ------------------------------------------------------- */

START_TEST(seal_layout_matches_spec)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	uint32_t a = install_n(&ring, 1);
	uint8_t env[256];
	size_t n = 0;
	ck_assert_int_eq(cn_seal_with_nonce(&ring, CN_PLANE_DATAGRAM, 1, 1, nonce0, hello,
					    sizeof hello, env, sizeof env, &n),
			 0);
	ck_assert_uint_eq(n, sizeof hello + CN_ENVELOPE_OVERHEAD);
	ck_assert_uint_eq(env[0], 0xC7);
	ck_assert_uint_eq(env[1], 1);
	ck_assert_uint_eq(env[2], 1);
	ck_assert_uint_eq(env[3], CN_PLANE_DATAGRAM);
	ck_assert_uint_eq((uint32_t)env[4] << 24 | (uint32_t)env[5] << 16 | (uint32_t)env[6] << 8 |
				  env[7],
			  a);
	ck_assert_mem_eq(env + 8, nonce0, CN_ENVELOPE_NONCE);

	/* Independent check with libsodium directly: header is the AD. */
	uint8_t k[CN_KEY_BYTES], plain[64];
	unsigned long long mlen = 0;
	key_n(k, 1);
	ck_assert_int_eq(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, env + 32,
								    n - 32, env, 32, nonce0, k),
			 0);
	ck_assert_uint_eq(mlen, sizeof hello);
	ck_assert_mem_eq(plain, hello, sizeof hello);

	/* Deterministic with a given nonce; random nonces otherwise. */
	uint8_t env2[256], env3[256];
	size_t n2 = 0, n3 = 0;
	ck_assert_int_eq(cn_seal_with_nonce(&ring, CN_PLANE_DATAGRAM, 1, 1, nonce0, hello,
					    sizeof hello, env2, sizeof env2, &n2),
			 0);
	ck_assert_mem_eq(env, env2, n);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env2,
				 sizeof env2, &n2),
			 0);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env3,
				 sizeof env3, &n3),
			 0);
	ck_assert_uint_eq(n2, n);
	ck_assert_mem_ne(env2 + 8, env3 + 8, CN_ENVELOPE_NONCE);

	cn_seal_hdr h;
	size_t m = 0;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env2, n2, plain, sizeof plain, &m, &h),
			 0);
	ck_assert_uint_eq(m, sizeof hello);
	ck_assert_mem_eq(plain, hello, m);
	ck_assert_uint_eq(h.key_id, a);
	ck_assert_uint_eq(h.plane, CN_PLANE_DATAGRAM);
	ck_assert_uint_eq(h.vmin, 1);
	ck_assert_uint_eq(h.vmax, 1);
	ck_assert_mem_eq(h.nonce, env2 + 8, CN_ENVELOPE_NONCE);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(seal_empty_plaintext_and_empty_ring)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	uint8_t env[CN_ENVELOPE_OVERHEAD + 8];
	size_t n = 0, m = 99;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, hello, 3, env, sizeof env, &n),
			 CN_ENOKEY);
	install_n(&ring, 1);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, NULL, 0, env, sizeof env, &n), 0);
	ck_assert_uint_eq(n, CN_ENVELOPE_OVERHEAD);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, NULL, 0, &m, NULL), 0);
	ck_assert_uint_eq(m, 0);

	cn_keyring empty;
	ck_assert_int_eq(cn_keyring_init(&empty), 0);
	ck_assert_int_eq(cn_seal_open(&empty, CN_PLANE_STREAM, env, n, NULL, 0, &m, NULL),
			 CN_ENOKEY);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(rotation_old_packets_open_until_removed)
{
	cn_keyring ring, peer_old;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	ck_assert_int_eq(cn_keyring_init(&peer_old), 0);
	uint32_t a = install_n(&ring, 1);
	install_n(&peer_old, 1); /* a peer that has only key A */

	uint8_t env_a[128], env_b[128], out[128];
	size_t na = 0, nb = 0, m = 0;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env_a,
				 sizeof env_a, &na),
			 0);
	/* Step 1: install B. A still seals. */
	uint32_t b = install_n(&ring, 2);
	cn_seal_hdr h;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env_b,
				 sizeof env_b, &nb),
			 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env_b, nb, out, sizeof out, &m, &h), 0);
	ck_assert_uint_eq(h.key_id, a);
	/* Step 2: B becomes primary. Old packets under A still open. */
	ck_assert_int_eq(cn_keyring_use(&ring, b), 0);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env_b,
				 sizeof env_b, &nb),
			 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env_b, nb, out, sizeof out, &m, &h), 0);
	ck_assert_uint_eq(h.key_id, b);
	ck_assert_mem_eq(out, hello, sizeof hello);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env_a, na, out, sizeof out, &m, &h), 0);
	ck_assert_uint_eq(h.key_id, a);
	ck_assert_mem_eq(out, hello, sizeof hello);
	/* A peer without B cannot open B's packets. */
	ck_assert_int_eq(cn_seal_open(&peer_old, CN_PLANE_DATAGRAM, env_b, nb, out, sizeof out, &m,
				      NULL),
			 CN_ENOKEY);
	/* Step 3: remove A. A's packets no longer open; B's do. */
	ck_assert_int_eq(cn_keyring_remove(&ring, a), 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env_a, na, out, sizeof out, &m, NULL),
			 CN_ENOKEY);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env_b, nb, out, sizeof out, &m, NULL),
			 0);
	cn_keyring_wipe(&ring);
	cn_keyring_wipe(&peer_old);
}
END_TEST

START_TEST(tamper_every_byte_never_opens)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	install_n(&ring, 2); /* a second key installed: a flipped id may not land on it */
	uint8_t env[128], bad[128], out[128];
	size_t n = 0, m = 0;
	ck_assert_int_eq(cn_seal_with_nonce(&ring, CN_PLANE_DATAGRAM, 1, 1, nonce0, hello,
					    sizeof hello, env, sizeof env, &n),
			 0);
	const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xFF};
	for (size_t i = 0; i < n; i++) {
		for (size_t f = 0; f < sizeof flips; f++) {
			memcpy(bad, env, n);
			bad[i] ^= flips[f];
			memset(out, 0xAA, sizeof out);
			int rc = cn_seal_open(&ring, CN_PLANE_DATAGRAM, bad, n, out, sizeof out, &m,
					      NULL);
			int want;
			if (i == 0 || i == 3) {
				want = CN_EINVAL; /* magic, plane */
			} else if (i == 1 || i == 2) {
				/* version bytes: out of range, or in range and the tag fails */
				uint8_t vmin = bad[1], vmax = bad[2];
				want = (vmin <= vmax && vmin <= CN_PROTO_VERSION_MAX &&
					vmax >= CN_PROTO_VERSION_MIN)
					       ? CN_EAUTH
					       : CN_EVERSION;
			} else if (i < 8) {
				uint32_t id = (uint32_t)bad[4] << 24 | (uint32_t)bad[5] << 16 |
					      (uint32_t)bad[6] << 8 | bad[7];
				want = cn_keyring_find(&ring, id) != NULL ? CN_EAUTH : CN_ENOKEY;
			} else {
				want = CN_EAUTH;
			}
			ck_assert_msg(rc == want, "byte %zu ^ %02x: got %d want %d", i, flips[f], rc,
				      want);
			if (rc == CN_EAUTH) /* no partial plaintext left behind */
				ck_assert(all_zero(out, n - CN_ENVELOPE_OVERHEAD));
		}
	}
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(wrong_plane_refused)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	uint8_t env[128], out[128];
	size_t n = 0, m = 0;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env,
				 sizeof env, &n),
			 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EINVAL);
	/* Rewriting the plane byte does not help: it is authenticated. */
	env[3] = CN_PLANE_STREAM;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EAUTH);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, hello, sizeof hello, env,
				 sizeof env, &n),
			 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, n, out, sizeof out, &m, NULL),
			 CN_EINVAL);
	env[3] = CN_PLANE_DATAGRAM;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, n, out, sizeof out, &m, NULL),
			 CN_EAUTH);
	/* Unknown plane bytes. */
	env[3] = 0;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EINVAL);
	env[3] = 3;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EINVAL);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(truncation_and_extension)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	uint8_t env[128], out[128];
	size_t n = 0, m = 0;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, hello, sizeof hello, env,
				 sizeof env, &n),
			 0);
	for (size_t len = 0; len < n; len++) {
		/* A heap copy of exactly len bytes: ASan catches any over-read. */
		uint8_t *p = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(p);
		memcpy(p, env, len);
		int rc = cn_seal_open(&ring, CN_PLANE_DATAGRAM, p, len, out, sizeof out, &m, NULL);
		ck_assert_int_eq(rc, len < CN_ENVELOPE_OVERHEAD ? CN_ETRUNC : CN_EAUTH);
		free(p);
	}
	env[n] = 0;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, n + 1, out, sizeof out, &m,
				      NULL),
			 CN_EAUTH);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, NULL, 0, out, sizeof out, &m, NULL),
			 CN_ETRUNC);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(version_ranges)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	static const struct {
		uint8_t vmin, vmax;
		int want;
	} cases[] = {
		{CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX, 0},
		{0, CN_PROTO_VERSION_MIN, 0},   /* older sender that also speaks ours */
		{1, 200, 0},                    /* newer sender that still speaks ours */
		{0, 255, 0},
		{0, 0, CN_EVERSION},            /* too old */
		{CN_PROTO_VERSION_MAX + 1, 255, CN_EVERSION}, /* too new */
		{255, 255, CN_EVERSION},
	};
	uint8_t env[128], out[128];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = 0, m = 0;
		cn_seal_hdr h;
		ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, cases[i].vmin, cases[i].vmax, hello,
					 sizeof hello, env, sizeof env, &n),
				 0);
		int rc = cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, &h);
		ck_assert_msg(rc == cases[i].want, "case %zu: %d", i, rc);
		if (rc == 0) {
			ck_assert_uint_eq(h.vmin, cases[i].vmin);
			ck_assert_uint_eq(h.vmax, cases[i].vmax);
		}
	}
	/* An empty range (vmin > vmax) cannot be sealed; forged, it is refused
	 * before any key is tried. */
	size_t n = 0, m = 0;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, hello, sizeof hello, env, sizeof env,
				 &n),
			 0);
	env[1] = 2;
	env[2] = 1;
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EVERSION);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(size_limits)
{
	cn_keyring ring;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	static uint8_t plain[CN_DATAGRAM_MAX + 1], env[CN_DATAGRAM_MAX + 64], out[CN_DATAGRAM_MAX];
	size_t n = 0, m = 0;
	/* Datagram: 1352 plaintext bytes fill exactly 1400. */
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, plain, CN_DATAGRAM_PLAIN_MAX, env,
				 sizeof env, &n),
			 0);
	ck_assert_uint_eq(n, CN_DATAGRAM_MAX);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, n, out, CN_DATAGRAM_PLAIN_MAX,
				      &m, NULL),
			 0);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, n, out,
				      CN_DATAGRAM_PLAIN_MAX - 1, &m, NULL),
			 CN_ENOSPACE);
	n = 7;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, plain, CN_DATAGRAM_PLAIN_MAX + 1,
				 env, sizeof env, &n),
			 CN_ENOSPACE);
	ck_assert_uint_eq(n, 7); /* untouched on failure */
	/* The caller's capacity. */
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, plain, 10, env,
				 10 + CN_ENVELOPE_OVERHEAD - 1, &n),
			 CN_ENOSPACE);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, plain, 0, env, 0, &n), CN_ENOSPACE);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_DATAGRAM, 1, 1, plain, SIZE_MAX, env, sizeof env,
				 &n),
			 CN_ENOSPACE);
	/* Oversized datagram input is refused before any work. */
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_DATAGRAM, env, CN_DATAGRAM_MAX + 1, out,
				      sizeof out, &m, NULL),
			 CN_ELIMIT);

	/* Stream: up to CN_STREAM_MAX sealed bytes. */
	size_t big = CN_STREAM_MAX - CN_ENVELOPE_OVERHEAD;
	uint8_t *bp = calloc(1, big + 1), *be = malloc(CN_STREAM_MAX + 1), *bo = malloc(big);
	ck_assert(bp && be && bo);
	bp[big - 1] = 0x5A;
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, bp, big + 1, be, CN_STREAM_MAX + 1,
				 &n),
			 CN_ENOSPACE);
	ck_assert_int_eq(cn_seal(&ring, CN_PLANE_STREAM, 1, 1, bp, big, be, CN_STREAM_MAX + 1, &n),
			 0);
	ck_assert_uint_eq(n, CN_STREAM_MAX);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, be, n, bo, big, &m, NULL), 0);
	ck_assert_uint_eq(m, big);
	ck_assert_mem_eq(bo, bp, big);
	ck_assert_int_eq(cn_seal_open(&ring, CN_PLANE_STREAM, be, n + 1, bo, big, &m, NULL),
			 CN_ELIMIT);
	free(bp);
	free(be);
	free(bo);
	cn_keyring_wipe(&ring);
}
END_TEST

START_TEST(foreign_key_with_known_id_fails_auth)
{
	/* Same id, different key: the only way to reach the tag check with a
	 * key that did not seal. Forge the id into an envelope sealed by B. */
	cn_keyring ra, rb;
	ck_assert_int_eq(cn_keyring_init(&ra), 0);
	ck_assert_int_eq(cn_keyring_init(&rb), 0);
	uint32_t a = install_n(&ra, 1);
	install_n(&rb, 2);
	uint8_t env[128], out[128];
	size_t n = 0, m = 0;
	ck_assert_int_eq(cn_seal(&rb, CN_PLANE_STREAM, 1, 1, hello, sizeof hello, env, sizeof env,
				 &n),
			 0);
	env[4] = (uint8_t)(a >> 24);
	env[5] = (uint8_t)(a >> 16);
	env[6] = (uint8_t)(a >> 8);
	env[7] = (uint8_t)a;
	ck_assert_int_eq(cn_seal_open(&ra, CN_PLANE_STREAM, env, n, out, sizeof out, &m, NULL),
			 CN_EAUTH);
	cn_keyring_wipe(&ra);
	cn_keyring_wipe(&rb);
}
END_TEST

/* ---- key text ------------------------------------------------------ */

START_TEST(keytext_encode_decode)
{
	uint8_t k[CN_KEY_BYTES], back[CN_KEY_BYTES];
	char t[CN_KEYTEXT_SIZE];
	key_n(k, 0);
	cn_keytext_encode(k, t);
	ck_assert_str_eq(t, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="); /* Python base64 */
	ck_assert_int_eq(cn_keytext_decode(t, strlen(t), back), 0);
	ck_assert_mem_eq(back, k, CN_KEY_BYTES);

	const char *bad[] = {
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",   /* 43: no padding */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", /* 45 */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",  /* unused bits set */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A",  /* 33 bytes */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",  /* URL-safe alphabet */
		"AAECAwQFBgcICQoLDA0ODxAREhMU FRYXGBkaGxwdHh8=", /* blank inside */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH=8=",  /* padding inside */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",  /* 31 bytes, 44 chars */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRY\xc3GBkaGxwdHh8=", /* high byte: libsodium reads '/' */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\xff",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(cn_keytext_decode(bad[i], strlen(bad[i]), back) == CN_EINVAL,
			      "accepted '%s'", bad[i]);

	char g1[CN_KEYTEXT_SIZE], g2[CN_KEYTEXT_SIZE];
	ck_assert_int_eq(cn_keytext_keygen(g1), 0);
	ck_assert_int_eq(cn_keytext_keygen(g2), 0);
	ck_assert_uint_eq(strlen(g1), CN_KEYTEXT_LEN);
	ck_assert_str_ne(g1, g2);
	ck_assert_int_eq(cn_keytext_decode(g1, CN_KEYTEXT_LEN, back), 0);
}
END_TEST

/* Text of key n, with a newline. */
static void line_n(char *dst, unsigned n)
{
	uint8_t k[CN_KEY_BYTES];
	char t[CN_KEYTEXT_SIZE];
	key_n(k, n);
	cn_keytext_encode(k, t);
	strcat(dst, t);
	strcat(dst, "\n");
}

START_TEST(keytext_parse_good_file)
{
	char file[2048] = "\xEF\xBB\xBF# cluster keys \xE2\x80\x94 rotated 2024-05\r\n\r\n";
	strcat(file, "   ");
	line_n(file, 3);
	file[strlen(file) - 1] = '\0';
	strcat(file, " \t\r\n   # old key, remove after rollout\n\n\t\n");
	line_n(file, 1);
	line_n(file, 2);
	file[strlen(file) - 1] = '\0'; /* no final newline */

	cn_keyring ring;
	char why[CN_KEYTEXT_WHY_MAX] = "x";
	size_t line = 99;
	ck_assert_int_eq(cn_keytext_parse_ring((const uint8_t *)file, strlen(file), &ring, why,
					       sizeof why, &line),
			 0);
	ck_assert_str_eq(why, "");
	ck_assert_uint_eq(line, 0);
	ck_assert_uint_eq(cn_keyring_count(&ring), 3);
	const unsigned order[] = {3, 1, 2};
	for (unsigned i = 0; i < 3; i++) {
		uint8_t k[CN_KEY_BYTES];
		key_n(k, order[i]);
		ck_assert_mem_eq(cn_keyring_at(&ring, i), k, CN_KEY_BYTES);
	}
	uint8_t k3[CN_KEY_BYTES];
	key_n(k3, 3);
	ck_assert_mem_eq(cn_keyring_primary(&ring), k3, CN_KEY_BYTES);
	cn_keyring_wipe(&ring);
}
END_TEST

static void expect_bad(const char *file, size_t len, size_t want_line, const char *want_why)
{
	cn_keyring ring;
	char why[CN_KEYTEXT_WHY_MAX];
	size_t line = 99;
	int rc = cn_keytext_parse_ring((const uint8_t *)file, len, &ring, why, sizeof why, &line);
	ck_assert_int_eq(rc, CN_EINVAL);
	ck_assert_str_eq(why, want_why);
	ck_assert_uint_eq(line, want_line);
	ck_assert(all_zero(&ring, sizeof ring)); /* wiped on failure */
}

START_TEST(keytext_parse_bad_files)
{
	char f[4096];
	expect_bad("", 0, 0, "no keys");
	expect_bad("# only a comment\n\n   \n", 22, 0, "no keys");

	strcpy(f, "# keys\n");
	line_n(f, 1);
	strcat(f, "c2hvcnQga2V5\n");
	expect_bad(f, strlen(f), 3,
		   "line 3: key is not 32 bytes of base64 (got 12 characters, want 44)");

	strcpy(f, "\n");
	line_n(f, 1);
	line_n(f, 2);
	line_n(f, 1);
	char want[128];
	uint8_t k1[CN_KEY_BYTES];
	key_n(k1, 1);
	snprintf(want, sizeof want, "line 4: duplicate key (id %08x, first on line 2)",
		 cn_key_id(k1));
	expect_bad(f, strlen(f), 4, want);

	f[0] = '\0';
	for (unsigned i = 0; i < CN_KEYRING_MAX + 1; i++)
		line_n(f, i);
	expect_bad(f, strlen(f), 9, "line 9: more than 8 keys");

	/* A comment after a key is not allowed: the reason says why. */
	f[0] = '\0';
	line_n(f, 1);
	f[strlen(f) - 1] = '\0';
	strcat(f, " # primary\n");
	expect_bad(f, strlen(f), 1,
		   "line 1: key is not 32 bytes of base64 (got 54 characters, want 44)");

	/* Same length, wrong alphabet. */
	strcpy(f, "#\n#\n");
	line_n(f, 1);
	f[10] = '*';
	expect_bad(f, strlen(f), 3, "line 3: key is not 32 bytes of base64");

	/* NUL byte and invalid UTF-8, even inside comments. */
	strcpy(f, "#a\n");
	line_n(f, 1);
	strcat(f, "# x\n");
	size_t n = strlen(f);
	f[n - 2] = '\0';
	expect_bad(f, n, 3, "line 3: NUL byte");
	strcpy(f, "# caf\xC3 \n");
	line_n(f, 1);
	expect_bad(f, strlen(f), 1, "line 1: not valid UTF-8");
	strcpy(f, "# \xED\xA0\x80 surrogate\n"); /* U+D800 */
	line_n(f, 1);
	expect_bad(f, strlen(f), 1, "line 1: not valid UTF-8");
	strcpy(f, "# \xC0\xAF overlong\n");
	expect_bad(f, strlen(f), 1, "line 1: not valid UTF-8");

	/* Too large as a whole. */
	size_t big = CN_KEYTEXT_FILE_MAX + 1;
	char *bf = malloc(big);
	ck_assert_ptr_nonnull(bf);
	memset(bf, '\n', big);
	expect_bad(bf, big, 0, "file larger than 65536 bytes");
	/* Just under the limit is fine (and bounded: one pass). */
	bf[0] = '\0';
	line_n(bf, 5);
	bf[strlen(bf)] = '\n';
	cn_keyring ring;
	ck_assert_int_eq(cn_keytext_parse_ring((const uint8_t *)bf, big - 1, &ring, NULL, 0, NULL), 0);
	ck_assert_uint_eq(cn_keyring_count(&ring), 1);
	cn_keyring_wipe(&ring);
	free(bf);

	/* A small reason buffer truncates safely. */
	char why[8];
	ck_assert_int_eq(cn_keytext_parse_ring((const uint8_t *)"x\n", 2, &ring, why, sizeof why,
					       NULL),
			 CN_EINVAL);
	ck_assert_str_eq(why, "line 1:");
}
END_TEST

START_TEST(keytext_format_round_trip)
{
	cn_keyring ring, back;
	ck_assert_int_eq(cn_keyring_init(&ring), 0);
	install_n(&ring, 1);
	uint32_t b = install_n(&ring, 2);
	install_n(&ring, 3);
	ck_assert_int_eq(cn_keyring_use(&ring, b), 0);

	char text[CN_KEYTEXT_RING_MAX];
	size_t n = 0;
	ck_assert_int_eq(cn_keytext_format_ring(&ring, text, sizeof text, &n), 0);
	ck_assert_uint_eq(n, strlen(text));
	char want[1024] = "# canopy cluster key ring: one base64 key per line, the first one seals\n";
	line_n(want, 2);
	line_n(want, 1);
	line_n(want, 3);
	ck_assert_str_eq(text, want);

	ck_assert_int_eq(cn_keytext_parse_ring((const uint8_t *)text, n, &back, NULL, 0, NULL), 0);
	ck_assert_uint_eq(cn_keyring_count(&back), 3);
	uint32_t id = 0;
	ck_assert_int_eq(cn_keyring_primary_id(&back, &id), 0);
	ck_assert_uint_eq(id, b);
	for (size_t i = 0; i < 3; i++) {
		const uint8_t *k = cn_keyring_at(&back, i);
		ck_assert_ptr_nonnull(cn_keyring_find(&ring, cn_key_id(k)));
		ck_assert_mem_eq(cn_keyring_find(&ring, cn_key_id(k)), k, CN_KEY_BYTES);
	}

	/* Full ring fits CN_KEYTEXT_RING_MAX. */
	for (unsigned i = 4; i < 4 + CN_KEYRING_MAX - 3; i++)
		install_n(&ring, i);
	ck_assert_int_eq(cn_keytext_format_ring(&ring, text, sizeof text, &n), 0);
	/* Too small: CN_ENOSPACE, and no key text left behind. */
	ck_assert_int_eq(cn_keytext_format_ring(&ring, text, n, &n), CN_ENOSPACE);
	ck_assert(all_zero(text, n));
	ck_assert_int_eq(cn_keytext_format_ring(&ring, text, 0, &n), CN_ENOSPACE);

	cn_keyring empty;
	ck_assert_int_eq(cn_keyring_init(&empty), 0);
	ck_assert_int_eq(cn_keytext_format_ring(&empty, text, sizeof text, &n), CN_ENOKEY);
	cn_keyring_wipe(&ring);
	cn_keyring_wipe(&back);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("keyring");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, key_id_is_blake2b_prefix_big_endian);
	tcase_add_test(tc, ring_install_use_remove);
	tcase_add_test(tc, ring_full_and_remove_keeps_order);
	tcase_add_test(tc, seal_layout_matches_spec);
	tcase_add_test(tc, seal_empty_plaintext_and_empty_ring);
	tcase_add_test(tc, rotation_old_packets_open_until_removed);
	tcase_add_test(tc, tamper_every_byte_never_opens);
	tcase_add_test(tc, wrong_plane_refused);
	tcase_add_test(tc, truncation_and_extension);
	tcase_add_test(tc, version_ranges);
	tcase_add_test(tc, size_limits);
	tcase_add_test(tc, foreign_key_with_known_id_fails_auth);
	tcase_add_test(tc, keytext_encode_decode);
	tcase_add_test(tc, keytext_parse_good_file);
	tcase_add_test(tc, keytext_parse_bad_files);
	tcase_add_test(tc, keytext_format_round_trip);
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
