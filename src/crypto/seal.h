/* Sealed envelopes: authenticated encryption of every datagram and stream
 * message with the cluster key ring (keyring.h).
 *
 * Layout (CN_ENVELOPE_OVERHEAD = 48 bytes more than the plaintext):
 *
 *   offset size  field
 *   0      1     magic CN_ENVELOPE_MAGIC (0xC7)
 *   1      1     vmin  oldest protocol version the sender speaks
 *   2      1     vmax  newest protocol version the sender speaks
 *   3      1     plane CN_PLANE_DATAGRAM (1) or CN_PLANE_STREAM (2)
 *   4      4     key id of the sealing key, big-endian (keyring.h)
 *   8      24    nonce, random per envelope
 *   32     n     ciphertext of the n plaintext bytes
 *   32+n   16    Poly1305 tag
 *
 * Cipher: crypto_aead_xchacha20poly1305_ietf with the 32-byte header as
 * associated data, so no header byte can be changed without the tag failing.
 * The plane byte is authenticated, and open() insists on the plane the
 * caller received on: a datagram cannot be replayed as a stream message or
 * the other way round. 192-bit random nonces make collisions negligible for
 * any number of envelopes a key will ever seal (about 2^80 before a 2^-32
 * collision risk).
 *
 * Not provided here: replay protection within a plane. The protocol above
 * tolerates duplicates (SWIM messages are idempotent, sequence-numbered and
 * incarnation-ordered) and stream requests carry their own state.
 *
 * Every byte from outside is hostile: cn_seal_open() checks lengths before
 * it reads, never reads past in[len), never writes past out[cap), and
 * writes no plaintext unless the tag verifies. */
#ifndef CN_CRYPTO_SEAL_H
#define CN_CRYPTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "wire/proto.h"

enum { CN_ENVELOPE_NONCE = 24 };

/* The header of an envelope, decoded. */
typedef struct cn_seal_hdr {
	uint8_t vmin;
	uint8_t vmax;
	uint8_t plane;
	uint32_t key_id;
	uint8_t nonce[CN_ENVELOPE_NONCE];
} cn_seal_hdr;

/* Largest sealed size accepted on a plane: CN_DATAGRAM_MAX or CN_STREAM_MAX. */
size_t cn_seal_plane_max(uint8_t plane);

/* Seal plaintext with the ring's primary key and a fresh random nonce.
 * @param[in] ring        key ring; its primary key seals.
 * @param[in] plane       CN_PLANE_DATAGRAM or CN_PLANE_STREAM (asserted).
 * @param[in] vmin, vmax  protocol versions the sender speaks; vmin <= vmax
 *                        (asserted).
 * @param[in] plain, len  plaintext (plain may be NULL when len == 0).
 * @param[out] out, cap   destination; must not overlap plain. Needs
 *                        len + CN_ENVELOPE_OVERHEAD bytes.
 * @param[out] outlen     bytes written, set only on success.
 * @return 0, or
 *   CN_ENOKEY    the ring is empty;
 *   CN_ENOSPACE  cap is too small, or the envelope would exceed the plane's
 *                limit (CN_DATAGRAM_MAX, CN_STREAM_MAX); out is untouched. */
int cn_seal(const cn_keyring *ring, uint8_t plane, uint8_t vmin, uint8_t vmax,
	    const uint8_t *plain, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* As cn_seal() with the nonce given, for test vectors and fuzzing. Reusing a
 * nonce with the same key destroys confidentiality and authenticity:
 * production code calls cn_seal(). Same errors as cn_seal(). */
int cn_seal_with_nonce(const cn_keyring *ring, uint8_t plane, uint8_t vmin, uint8_t vmax,
		       const uint8_t nonce[CN_ENVELOPE_NONCE], const uint8_t *plain,
		       size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* Authenticate and decrypt an envelope. Checks run in this order, and the
 * first failure is returned:
 * @param[in] ring     key ring; any installed key may open.
 * @param[in] plane    the plane the bytes arrived on (asserted valid).
 * @param[in] in, len  the received bytes, hostile; in may be NULL if len == 0.
 * @param[out] out, cap  plaintext destination, len - CN_ENVELOPE_OVERHEAD
 *                       bytes needed; must not overlap in.
 * @param[out] outlen  plaintext length, set only on success.
 * @param[out] hdr_out if not NULL, the decoded header, set only on success.
 * @return 0, or
 *   CN_ETRUNC    len < CN_ENVELOPE_OVERHEAD;
 *   CN_ELIMIT    len exceeds the plane's limit (cn_seal_plane_max);
 *   CN_EINVAL    bad magic, unknown plane byte, or the envelope's plane is
 *                not `plane`;
 *   CN_EVERSION  the sender's [vmin, vmax] is empty or does not overlap
 *                [CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX];
 *   CN_ENOKEY    no installed key has the envelope's key id;
 *   CN_ENOSPACE  cap is too small for the plaintext;
 *   CN_EAUTH     the tag does not verify (tampered, or a foreign key whose
 *                id collides); out is zeroed, never partial plaintext.
 * Everything before CN_EAUTH is read from the unauthenticated header and
 * only tells where the envelope failed, not who sent it. */
int cn_seal_open(const cn_keyring *ring, uint8_t plane, const uint8_t *in, size_t len,
		 uint8_t *out, size_t cap, size_t *outlen, cn_seal_hdr *hdr_out);

/* Decode the header without authenticating it (for counters and logs).
 * @return 0, CN_ETRUNC (len < CN_ENVELOPE_OVERHEAD) or CN_EINVAL (magic). */
int cn_seal_peek(const uint8_t *in, size_t len, cn_seal_hdr *hdr_out);

#endif
