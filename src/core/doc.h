/* Policy documents: the value type of the replicated policy store.
 *
 * A document is one version of one named register: kind ("job", "role",
 * "rule", "alert", "config", "key", "revoke", ...), name, body (one msgpack
 * object, at most CN_DOC_BODY_MAX bytes), version (a hybrid logical clock
 * timestamp, core/hlc.h), writer (the node that stamped the version), the
 * operator public key that signed it, a deleted flag (tombstone: no body),
 * and an Ed25519 signature over the document's CANONICAL BYTES:
 *
 *   msgpack array of 8, each element in the shortest msgpack encoding
 *   (msgpack-c's packer: positive fixint/uint8/16/32/64, fixstr/str8/16,
 *   bin8), no floats, no maps:
 *     [0] str  "canopy-doc/1"          domain separation and format version
 *     [1] str  kind                    1..16 bytes, [a-z0-9-], starts a-z
 *     [2] str  name                    1..128 bytes, [A-Za-z0-9._:/-],
 *                                      not starting with '/'
 *     [3] uint version                 HLC, > 0
 *     [4] str  writer                  1..64 bytes, printable ASCII, no space
 *     [5] bin  key                     32-byte Ed25519 public key of the signer
 *     [6] bool deleted
 *     [7] bin  body_hash               BLAKE2b-256 of the body bytes (32)
 *
 * The body enters through its hash, so a signature can be checked against
 * an announcement that carries no body, and the canonical bytes stay small
 * (at most CN_DOC_CANON_MAX). The document hash (cn_doc_hash) is BLAKE2b-256
 * of the canonical bytes: the identity of one version, carried in policy
 * announcements and folded into the anti-entropy digest.
 *
 * Order (last-writer-wins): documents of one kind/name compare by
 * (version, writer, document hash) — version as an integer, writer as bytes,
 * hash as bytes. It is a total order on distinct documents (two documents
 * with equal hashes are the same document up to the signature, which
 * libsodium's strict verification makes unique per key and message), so
 * merge = "keep the maximum" is commutative, associative and idempotent.
 *
 * ENCODED FORM (storage and fetch): a msgpack map with integer keys
 *   1 kind (str)  2 name (str)  3 version (uint)  4 writer (str)
 *   5 key (bin 32)  6 deleted (bool)  7 body (bin, the msgpack bytes)
 *   8 sig (bin 64)
 * All eight are required; unknown keys are skipped and counted (a newer
 * agent may add unsigned hints); a repeated key is CN_EINVAL. The body hash
 * is not sent: the decoder computes it, so it cannot disagree with the body.
 * The decoder checks structure and field syntax, never the signature
 * (that is trust's job, core/trust.h). */
#ifndef CN_CORE_DOC_H
#define CN_CORE_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/proto.h"

enum {
	CN_DOC_KIND_MAX = CN_POLICY_KIND_MAX,   /* 16 */
	CN_DOC_NAME_MAX = CN_POLICY_NAME_MAX,   /* 128 */
	CN_DOC_WRITER_MAX = CN_NAME_MAX,        /* 64: a node name */
	CN_DOC_KEY_BYTES = 32,                  /* Ed25519 public key */
	CN_DOC_SIG_BYTES = 64,
	CN_DOC_HASH_BYTES = CN_HASH_BYTES,      /* 32: BLAKE2b-256 */
	CN_DOC_BODY_MAX = 64 * 1024,
	/* 1 + 13 + (2+16) + (2+128) + 9 + (2+64) + (2+32) + 1 + (2+32) = 306 */
	CN_DOC_CANON_MAX = 320,
	/* map header, 8 keys, fields, bin32 body header, 64 KiB body, sig */
	CN_DOC_WIRE_MAX = CN_DOC_BODY_MAX + 512,
	CN_DOC_FIELDS_MAX = CN_MSG_FIELDS_MAX,  /* keys in the encoded map */
};

static_assert(CN_DOC_CANON_MAX >= 306, "canonical bytes budget");

#define CN_DOC_DOMAIN "canopy-doc/1"

/* One document. Strings are NUL-terminated copies. body points to bytes the
 * document does not own: into the decoder's input (valid while that input
 * is), or to the caller's buffer when built by hand; NULL iff body_len 0. */
typedef struct cn_doc {
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
	uint64_t version;
	char writer[CN_DOC_WRITER_MAX + 1];
	uint8_t key[CN_DOC_KEY_BYTES];
	bool deleted;
	const uint8_t *body;
	uint32_t body_len;
	uint8_t body_hash[CN_DOC_HASH_BYTES]; /* always BLAKE2b-256(body) */
	uint8_t sig[CN_DOC_SIG_BYTES];
} cn_doc;

/* Field syntax (see the table above). Each returns true if valid. */
bool cn_doc_kind_ok(const char *s, size_t len);
bool cn_doc_name_ok(const char *s, size_t len);
bool cn_doc_writer_ok(const char *s, size_t len);

/* Fill the unsigned fields of d and compute body_hash; sig is zeroed.
 * body is borrowed (see cn_doc). For a tombstone pass deleted = true and no
 * body. @return 0, or CN_EINVAL naming the field in why (may be NULL):
 * bad kind/name/writer syntax, version 0, a body that is not exactly one
 * msgpack object, a tombstone with a body, or a body over CN_DOC_BODY_MAX. */
int cn_doc_init(cn_doc *d, const char *kind, const char *name, uint64_t version,
		const char *writer, const uint8_t key[CN_DOC_KEY_BYTES], bool deleted,
		const uint8_t *body, size_t body_len, char *why, size_t why_cap);

/* Same checks on an existing document (for documents built field by field).
 * Also checks that body_hash matches the body. @return 0 or CN_EINVAL. */
int cn_doc_validate(const cn_doc *d, char *why, size_t why_cap);

/* Canonical bytes (the signed message). out must hold CN_DOC_CANON_MAX.
 * @return 0 and *len, or CN_ENOSPACE. */
int cn_doc_canonical(const cn_doc *d, uint8_t *out, size_t cap, size_t *len);

/* BLAKE2b-256 of the canonical bytes. Never fails for a valid document. */
void cn_doc_hash(const cn_doc *d, uint8_t out[CN_DOC_HASH_BYTES]);

/* Signature check only (no scope): 0 or CN_EAUTH. Pure; libsodium's
 * verification needs sodium_init() first (the crypto layer's constructors
 * call it; cn_crypto_init() does it explicitly). */
int cn_doc_verify_sig(const cn_doc *d);

/* Last-writer-wins order (see above): -1, 0 or 1. a and b must have the
 * same kind/name to be meaningful; the function does not check that. */
int cn_doc_cmp(const cn_doc *a, const cn_doc *b);

/* Encode d (the encoded form above). out needs at most CN_DOC_WIRE_MAX.
 * @return 0 and *len, or CN_ENOSPACE. */
int cn_doc_encode(const cn_doc *d, uint8_t *out, size_t cap, size_t *len);
/* Bytes cn_doc_encode would write. */
size_t cn_doc_encoded_size(const cn_doc *d);

/* Decode one document from hostile bytes; the whole input must be one map.
 * d->body then points into buf. unknown_keys (may be NULL) is incremented
 * per unknown key. @return 0, or
 *   CN_ETRUNC, CN_ETYPE, CN_ELIMIT, CN_EDEPTH  malformed msgpack / too big;
 *   CN_EMISSING  a required key is absent;
 *   CN_EINVAL    a field fails its syntax, or a key is repeated;
 *   CN_ETRAILING bytes after the map. */
int cn_doc_decode(const uint8_t *buf, size_t len, cn_doc *d, uint64_t *unknown_keys);

/* Are two documents field-for-field equal (body compared by content)? */
bool cn_doc_equal(const cn_doc *a, const cn_doc *b);

#endif
