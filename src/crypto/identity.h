/* Ed25519 signing keys: a node's identity, and later operators' keys.
 *
 * A cn_sigkey is an Ed25519 key pair (libsodium crypto_sign). Every node
 * makes one at first start and keeps it for life; operators hold their own
 * for signing policy writes. Verification needs only the 32-byte public key.
 *
 * Node id: the first 8 bytes of BLAKE2b-256 (crypto_generichash, unkeyed)
 * over the public key, as 16 lowercase hex characters, e.g.
 * "3fa1c2d4e5f60718". It is short enough for logs and the CLI and long
 * enough that fleets never see an accidental collision (2^-64 per pair);
 * anything that must be unforgeable uses the full public key.
 *
 * Blob (what the agent stores in a mode 0600 file; the bytes are passed in,
 * this module touches no file), exactly:
 *
 *   canopy-identity-v1\n
 *   <base64 of the 32-byte Ed25519 seed>\n
 *
 * The seed is the RFC 8032 private key; the key pair is derived from it, so
 * the blob cannot hold a secret and public key that disagree. Base64 is
 * libsodium's ORIGINAL variant, 44 characters, strict and canonical. The
 * final newline and a CR before either newline are tolerated on input;
 * output is always exactly CN_SIGKEY_BLOB_LEN bytes as above.
 *
 * Secrets: sk (and the seed inside it) lives in the struct; cn_sigkey_wipe()
 * zeroes it, and every function wipes its temporaries on every path. Blobs
 * hold the secret too: the caller wipes its blob buffers. */
#ifndef CN_CRYPTO_IDENTITY_H
#define CN_CRYPTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

enum {
	CN_SIGKEY_SEED_BYTES = 32,   /* crypto_sign_SEEDBYTES */
	CN_SIGKEY_PUBLIC_BYTES = 32, /* crypto_sign_PUBLICKEYBYTES */
	CN_SIGKEY_SECRET_BYTES = 64, /* crypto_sign_SECRETKEYBYTES: seed || public */
	CN_SIG_BYTES = 64,           /* crypto_sign_BYTES */
	CN_SIGKEY_TEXT_LEN = 44,     /* base64 of 32 bytes */
	CN_SIGKEY_TEXT_SIZE = CN_SIGKEY_TEXT_LEN + 1,
	CN_NODE_ID_BYTES = 8,
	CN_NODE_ID_LEN = 2 * CN_NODE_ID_BYTES, /* hex characters */
	CN_NODE_ID_SIZE = CN_NODE_ID_LEN + 1,
	/* "canopy-identity-v1\n" + 44 + "\n" */
	CN_SIGKEY_BLOB_LEN = 19 + CN_SIGKEY_TEXT_LEN + 1,
	CN_SIGKEY_BLOB_MAX = 256, /* longest input cn_sigkey_from_blob reads */
	CN_SIGKEY_WHY_MAX = 128,  /* enough for any reason string */
	CN_SIGKEY_FORMAT_VERSION = 1,
};

typedef struct cn_sigkey {
	uint8_t sk[CN_SIGKEY_SECRET_BYTES]; /* secret: seed || public key */
	uint8_t pk[CN_SIGKEY_PUBLIC_BYTES];
} cn_sigkey;

/* Make a fresh random key pair (and initialise libsodium, see crypto.h).
 * @return 0, or CN_EIO if libsodium could not initialise (k is then wiped). */
int cn_sigkey_generate(cn_sigkey *k);

/* Derive the key pair from a 32-byte seed (deterministic; tests, vectors).
 * @return 0, or CN_EIO if libsodium could not initialise (k is then wiped). */
int cn_sigkey_from_seed(cn_sigkey *k, const uint8_t seed[CN_SIGKEY_SEED_BYTES]);

/* Zero the key pair. Never fails; k may be NULL. */
void cn_sigkey_wipe(cn_sigkey *k);

/* The public key: CN_SIGKEY_PUBLIC_BYTES bytes inside k, valid while k is. */
const uint8_t *cn_sigkey_public(const cn_sigkey *k);

/* Write the blob (format above).
 * @param[out] out, cap  CN_SIGKEY_BLOB_LEN bytes needed; not NUL-terminated.
 * @param[out] outlen    set to CN_SIGKEY_BLOB_LEN on success.
 * @return 0, or CN_ENOSPACE if cap is too small (out untouched). */
int cn_sigkey_to_blob(const cn_sigkey *k, uint8_t *out, size_t cap, size_t *outlen);

/* Parse a blob (hostile bytes are safe).
 * @param[out] k  the key pair on success; wiped on failure.
 * @param[out] why, why_cap  if why != NULL and why_cap > 0, a NUL-terminated
 *                 reason on failure ("" on success), e.g.
 *                 "identity: line 2: secret is not 32 bytes of base64";
 *                 CN_SIGKEY_WHY_MAX bytes always suffice.
 * @return 0, or
 *   CN_EINVAL    not an identity blob, bad base64, trailing data, too long;
 *   CN_EVERSION  a "canopy-identity-vN" blob with N != 1;
 *   CN_EIO       libsodium could not initialise. */
int cn_sigkey_from_blob(cn_sigkey *k, const uint8_t *blob, size_t len, char *why,
			size_t why_cap);

/* Detached signature over msg (msg may be NULL when len == 0). Never fails. */
void cn_sigkey_sign(const cn_sigkey *k, const uint8_t *msg, size_t len,
		    uint8_t sig[CN_SIG_BYTES]);

/* Verify a detached signature. Call cn_crypto_init() (or any constructor of
 * this layer) first. Rejects non-canonical signatures and small-order keys
 * (libsodium's checks).
 * @return 0, or CN_EAUTH if the signature is not valid for pk and msg. */
int cn_sigkey_verify(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES], const uint8_t *msg, size_t len,
		     const uint8_t sig[CN_SIG_BYTES]);

/* Node id of a public key (see above): 16 hex characters and a NUL. */
void cn_sigkey_node_id(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES], char out[CN_NODE_ID_SIZE]);

/* Public key as base64 text (44 characters and a NUL), for operator key
 * configuration and display. Never fails. */
void cn_sigkey_public_encode(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES],
			     char out[CN_SIGKEY_TEXT_SIZE]);

/* Parse a public key's base64 text (exactly 44 characters, canonical).
 * @return 0, or CN_EINVAL. pk is set only on success. */
int cn_sigkey_public_decode(const char *text, size_t len, uint8_t pk[CN_SIGKEY_PUBLIC_BYTES]);

#endif
