#include "crypto/seal.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"

static_assert(CN_ENVELOPE_NONCE == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
static_assert(CN_ENVELOPE_TAG == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
static_assert(CN_ENVELOPE_HEADER == 4 + CN_KEY_ID_BYTES + CN_ENVELOPE_NONCE, "header layout");
static_assert((int)CN_DATAGRAM_MAX > (int)CN_ENVELOPE_OVERHEAD, "a datagram carries something");
static_assert((int)CN_STREAM_MAX > (int)CN_DATAGRAM_MAX, "stream plane is the large one");
static_assert((unsigned long long)CN_STREAM_MAX <
		      crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX,
	      "every stream message is within the cipher's limit");

enum { OFF_MAGIC = 0, OFF_VMIN = 1, OFF_VMAX = 2, OFF_PLANE = 3, OFF_KEY_ID = 4, OFF_NONCE = 8 };

static bool plane_valid(uint8_t plane)
{
	return plane == CN_PLANE_DATAGRAM || plane == CN_PLANE_STREAM;
}

size_t cn_seal_plane_max(uint8_t plane)
{
	assert(plane_valid(plane));
	return plane == CN_PLANE_DATAGRAM ? (size_t)CN_DATAGRAM_MAX : (size_t)CN_STREAM_MAX;
}

static void put_header(uint8_t *h, uint8_t plane, uint8_t vmin, uint8_t vmax, uint32_t key_id,
		       const uint8_t nonce[CN_ENVELOPE_NONCE])
{
	h[OFF_MAGIC] = CN_ENVELOPE_MAGIC;
	h[OFF_VMIN] = vmin;
	h[OFF_VMAX] = vmax;
	h[OFF_PLANE] = plane;
	h[OFF_KEY_ID + 0] = (uint8_t)(key_id >> 24);
	h[OFF_KEY_ID + 1] = (uint8_t)(key_id >> 16);
	h[OFF_KEY_ID + 2] = (uint8_t)(key_id >> 8);
	h[OFF_KEY_ID + 3] = (uint8_t)key_id;
	memcpy(h + OFF_NONCE, nonce, CN_ENVELOPE_NONCE);
}

int cn_seal_with_nonce(const cn_keyring *ring, uint8_t plane, uint8_t vmin, uint8_t vmax,
		       const uint8_t nonce[CN_ENVELOPE_NONCE], const uint8_t *plain,
		       size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	assert(ring != NULL && out != NULL && outlen != NULL && nonce != NULL);
	assert(plain != NULL || len == 0);
	assert(plane_valid(plane));
	assert(vmin <= vmax);
	const uint8_t *key = cn_keyring_primary(ring);
	if (key == NULL)
		return CN_ENOKEY;
	/* Compare without forming len + overhead, which could wrap. */
	size_t limit = cn_seal_plane_max(plane);
	if (cap < limit)
		limit = cap;
	if (limit < CN_ENVELOPE_OVERHEAD || len > limit - CN_ENVELOPE_OVERHEAD)
		return CN_ENOSPACE;
	/* out and plain must not overlap: the header is written first. */
	assert(plain == NULL || out + len + CN_ENVELOPE_OVERHEAD <= plain || plain + len <= out);

	uint32_t key_id = 0;
	int err = cn_keyring_primary_id(ring, &key_id);
	assert(err == 0);
	(void)err;
	put_header(out, plane, vmin, vmax, key_id, nonce);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + CN_ENVELOPE_HEADER, &clen, plain, len,
						   out, CN_ENVELOPE_HEADER, NULL, out + OFF_NONCE,
						   key);
	assert(clen == len + CN_ENVELOPE_TAG);
	*outlen = CN_ENVELOPE_HEADER + (size_t)clen;
	return 0;
}

int cn_seal(const cn_keyring *ring, uint8_t plane, uint8_t vmin, uint8_t vmax,
	    const uint8_t *plain, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t nonce[CN_ENVELOPE_NONCE];
	randombytes_buf(nonce, sizeof nonce);
	return cn_seal_with_nonce(ring, plane, vmin, vmax, nonce, plain, len, out, cap, outlen);
}

int cn_seal_peek(const uint8_t *in, size_t len, cn_seal_hdr *hdr_out)
{
	assert(hdr_out != NULL);
	if (len < CN_ENVELOPE_OVERHEAD)
		return CN_ETRUNC;
	assert(in != NULL);
	if (in[OFF_MAGIC] != CN_ENVELOPE_MAGIC)
		return CN_EINVAL;
	hdr_out->vmin = in[OFF_VMIN];
	hdr_out->vmax = in[OFF_VMAX];
	hdr_out->plane = in[OFF_PLANE];
	hdr_out->key_id = (uint32_t)in[OFF_KEY_ID] << 24 | (uint32_t)in[OFF_KEY_ID + 1] << 16 |
			  (uint32_t)in[OFF_KEY_ID + 2] << 8 | in[OFF_KEY_ID + 3];
	memcpy(hdr_out->nonce, in + OFF_NONCE, CN_ENVELOPE_NONCE);
	return 0;
}

static bool versions_overlap(uint8_t vmin, uint8_t vmax)
{
	return vmin <= vmax && vmin <= CN_PROTO_VERSION_MAX && vmax >= CN_PROTO_VERSION_MIN;
}

int cn_seal_open(const cn_keyring *ring, uint8_t plane, const uint8_t *in, size_t len,
		 uint8_t *out, size_t cap, size_t *outlen, cn_seal_hdr *hdr_out)
{
	assert(ring != NULL && outlen != NULL);
	assert(plane_valid(plane));
	/* Size first: an oversized input costs nothing more. (ETRUNC and
	 * ELIMIT exclude each other, so their order is not observable.) */
	if (len > cn_seal_plane_max(plane))
		return CN_ELIMIT;
	cn_seal_hdr hdr;
	int err = cn_seal_peek(in, len, &hdr);
	if (err)
		return err;
	if (!plane_valid(hdr.plane) || hdr.plane != plane)
		return CN_EINVAL;
	if (!versions_overlap(hdr.vmin, hdr.vmax))
		return CN_EVERSION;
	const uint8_t *key = cn_keyring_find(ring, hdr.key_id);
	if (key == NULL)
		return CN_ENOKEY;
	size_t plain_len = len - CN_ENVELOPE_OVERHEAD;
	if (cap < plain_len)
		return CN_ENOSPACE;
	assert(out != NULL || plain_len == 0);
	/* With plain_len == 0 libsodium writes nothing, but wants a pointer. */
	uint8_t dummy;
	uint8_t *dst = out != NULL ? out : &dummy;
	unsigned long long mlen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL, in + CN_ENVELOPE_HEADER,
						       len - CN_ENVELOPE_HEADER, in,
						       CN_ENVELOPE_HEADER, hdr.nonce, key) != 0) {
		/* libsodium verifies before it decrypts; zero anyway so a
		 * failure never leaves anything behind. */
		if (out != NULL)
			sodium_memzero(out, plain_len);
		return CN_EAUTH;
	}
	assert(mlen == plain_len);
	*outlen = plain_len;
	if (hdr_out != NULL)
		*hdr_out = hdr;
	return 0;
}
