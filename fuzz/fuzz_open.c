/* Sealed envelopes: cn_seal_open on arbitrary bytes, and a seal/open oracle.
 *
 * Every input is opened on both planes with a ring of two fixed keys. An
 * envelope that opens must be exactly what cn_seal_with_nonce produces for
 * its header and plaintext (so nothing but the sealer's bytes authenticate).
 *
 * When bit 0 of the first byte is set, the rest of the input is sealed
 * (bit 1 picks the primary key, bit 2 the plane, the nonce comes from the
 * input) and must open back to identical bytes and header; one byte of the
 * envelope, chosen by the input, is then flipped and it must not open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keyring.h"
#include "crypto/seal.h"
#include "util/err.h"
#include "wire/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                    \
	do {                                                                        \
		if (!(c)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                    \
		}                                                                   \
	} while (0)

enum { BUF_MAX = 1 << 16 };

static void ring_of_two(cn_keyring *ring, uint32_t ids[2])
{
	uint8_t k[CN_KEY_BYTES];
	CHECK(cn_keyring_init(ring) == 0);
	for (unsigned n = 0; n < 2; n++) {
		for (unsigned i = 0; i < CN_KEY_BYTES; i++)
			k[i] = (uint8_t)(0xA0 + n * 0x31 + i * 7);
		CHECK(cn_keyring_install(ring, k, &ids[n]) == 0);
	}
}

/* Open on one plane; if it opens, check it against a re-seal. */
static void open_one(cn_keyring *ring, uint8_t plane, const uint8_t *data, size_t size)
{
	static uint8_t plain[BUF_MAX], again[BUF_MAX + CN_ENVELOPE_OVERHEAD];
	size_t n = 0, m = 0;
	cn_seal_hdr h;
	int rc = cn_seal_open(ring, plane, data, size, plain, sizeof plain, &n, &h);
	CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
	if (size < CN_ENVELOPE_OVERHEAD)
		CHECK(rc == CN_ETRUNC);
	if (rc != 0)
		return;
	CHECK(n == size - CN_ENVELOPE_OVERHEAD);
	CHECK(h.plane == plane && data[0] == CN_ENVELOPE_MAGIC && data[3] == plane);
	CHECK(h.vmin <= h.vmax);
	CHECK(cn_keyring_use(ring, h.key_id) == 0);
	CHECK(cn_seal_with_nonce(ring, plane, h.vmin, h.vmax, h.nonce, plain, n, again,
				 sizeof again, &m) == 0);
	CHECK(m == size && memcmp(again, data, size) == 0);
}

/* Seal data, open it back, then flip one byte and expect failure. */
static void round_trip(cn_keyring *ring, const uint32_t ids[2], uint8_t ctl, const uint8_t *data,
		       size_t size)
{
	static uint8_t env[BUF_MAX + CN_ENVELOPE_OVERHEAD], plain[BUF_MAX];
	uint8_t nonce[CN_ENVELOPE_NONCE] = {0};
	memcpy(nonce, data, size < sizeof nonce ? size : sizeof nonce);
	uint8_t plane = (ctl & 4) ? CN_PLANE_STREAM : CN_PLANE_DATAGRAM;
	CHECK(cn_keyring_use(ring, ids[(ctl >> 1) & 1]) == 0);
	size_t n = 0, m = 0;
	int rc = cn_seal_with_nonce(ring, plane, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX, nonce,
				    data, size, env, sizeof env, &n);
	if (size + CN_ENVELOPE_OVERHEAD > cn_seal_plane_max(plane)) {
		CHECK(rc == CN_ENOSPACE);
		return;
	}
	CHECK(rc == 0 && n == size + CN_ENVELOPE_OVERHEAD);
	/* A different primary must not matter for opening. */
	CHECK(cn_keyring_use(ring, ids[((ctl >> 1) & 1) ^ (ctl >> 3 & 1)]) == 0);
	cn_seal_hdr h;
	CHECK(cn_seal_open(ring, plane, env, n, plain, sizeof plain, &m, &h) == 0);
	CHECK(m == size && memcmp(plain, data, size) == 0);
	CHECK(h.key_id == ids[(ctl >> 1) & 1] && h.plane == plane);
	CHECK(memcmp(h.nonce, nonce, sizeof nonce) == 0);
	/* The other plane refuses it. */
	uint8_t other = plane == CN_PLANE_STREAM ? CN_PLANE_DATAGRAM : CN_PLANE_STREAM;
	CHECK(cn_seal_open(ring, other, env, n, plain, sizeof plain, &m, NULL) != 0);
	/* Any single flipped byte fails. */
	size_t pos = (size_t)ctl * 131 % n;
	env[pos] ^= (uint8_t)(1u << (ctl & 7));
	CHECK(cn_seal_open(ring, plane, env, n, plain, sizeof plain, &m, NULL) != 0);
	/* So does any truncation. */
	env[pos] ^= (uint8_t)(1u << (ctl & 7));
	CHECK(cn_seal_open(ring, plane, env, n - 1 - pos % n, plain, sizeof plain, &m, NULL) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > BUF_MAX)
		return 0;
	cn_keyring ring;
	uint32_t ids[2];
	ring_of_two(&ring, ids);
	open_one(&ring, CN_PLANE_DATAGRAM, data, size);
	open_one(&ring, CN_PLANE_STREAM, data, size);
	if (size >= 1 && (data[0] & 1))
		round_trip(&ring, ids, data[0], data + 1, size - 1);
	cn_keyring_wipe(&ring);
	return 0;
}
