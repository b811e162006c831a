#include "crypto/identity.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "crypto/keytext.h"
#include "util/err.h"

static_assert(CN_SIGKEY_SEED_BYTES == crypto_sign_SEEDBYTES, "seed");
static_assert(CN_SIGKEY_PUBLIC_BYTES == crypto_sign_PUBLICKEYBYTES, "public key");
static_assert(CN_SIGKEY_SECRET_BYTES == crypto_sign_SECRETKEYBYTES, "secret key");
static_assert(CN_SIG_BYTES == crypto_sign_BYTES, "signature");
/* Seeds and public keys share the key ring's 32-byte base64 text form. */
static_assert((int)CN_SIGKEY_SEED_BYTES == (int)CN_KEY_BYTES &&
		      (int)CN_SIGKEY_PUBLIC_BYTES == (int)CN_KEY_BYTES,
	      "32-byte text form");
static_assert((int)CN_SIGKEY_TEXT_LEN == (int)CN_KEYTEXT_LEN, "same text length");
static_assert(CN_NODE_ID_BYTES <= crypto_generichash_BYTES, "node id is a hash prefix");

static const char magic[] = "canopy-identity-v"; /* then the version and '\n' */
static_assert(sizeof magic - 1 + 2 + CN_SIGKEY_TEXT_LEN + 1 == CN_SIGKEY_BLOB_LEN, "blob length");
static_assert(CN_SIGKEY_BLOB_LEN <= CN_SIGKEY_BLOB_MAX, "our own blobs parse");

int cn_sigkey_from_seed(cn_sigkey *k, const uint8_t seed[CN_SIGKEY_SEED_BYTES])
{
	assert(k != NULL && seed != NULL);
	int err = cn_crypto_init();
	if (err) {
		cn_sigkey_wipe(k);
		return err;
	}
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	return 0;
}

int cn_sigkey_generate(cn_sigkey *k)
{
	assert(k != NULL);
	int err = cn_crypto_init();
	if (err) {
		cn_sigkey_wipe(k);
		return err;
	}
	crypto_sign_keypair(k->pk, k->sk);
	return 0;
}

void cn_sigkey_wipe(cn_sigkey *k)
{
	if (k != NULL)
		sodium_memzero(k, sizeof *k);
}

const uint8_t *cn_sigkey_public(const cn_sigkey *k)
{
	assert(k != NULL);
	return k->pk;
}

int cn_sigkey_to_blob(const cn_sigkey *k, uint8_t *out, size_t cap, size_t *outlen)
{
	assert(k != NULL && out != NULL && outlen != NULL);
	if (cap < CN_SIGKEY_BLOB_LEN)
		return CN_ENOSPACE;
	char text[CN_KEYTEXT_SIZE];
	cn_keytext_encode(k->sk, text); /* the first 32 bytes of sk: the seed */
	size_t pos = 0;
	memcpy(out, magic, sizeof magic - 1);
	pos += sizeof magic - 1;
	out[pos++] = (uint8_t)('0' + CN_SIGKEY_FORMAT_VERSION);
	out[pos++] = '\n';
	memcpy(out + pos, text, CN_KEYTEXT_LEN);
	pos += CN_KEYTEXT_LEN;
	out[pos++] = '\n';
	sodium_memzero(text, sizeof text);
	assert(pos == CN_SIGKEY_BLOB_LEN);
	*outlen = pos;
	return 0;
}

/* Record a failure: wipe k, write the reason, return err. */
__attribute__((format(printf, 5, 6)))
static int fail(cn_sigkey *k, int err, char *why, size_t why_cap, const char *fmt, ...)
{
	cn_sigkey_wipe(k);
	if (why != NULL && why_cap > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Line [start, end) of blob: end at the next '\n' or the end of the blob;
 * *next after the newline. The CR of a CRLF is dropped; a lone CR is not. */
static size_t line_at(const uint8_t *blob, size_t len, size_t start, size_t *next, bool *had_nl)
{
	const uint8_t *nl = memchr(blob + start, '\n', len - start);
	size_t end = nl != NULL ? (size_t)(nl - blob) : len;
	*had_nl = nl != NULL;
	*next = end + (nl != NULL);
	if (nl != NULL && end > start && blob[end - 1] == '\r')
		end--;
	return end;
}

int cn_sigkey_from_blob(cn_sigkey *k, const uint8_t *blob, size_t len, char *why,
			size_t why_cap)
{
	assert(k != NULL);
	assert(blob != NULL || len == 0);
	if (why != NULL && why_cap > 0)
		why[0] = '\0';
	if (len > CN_SIGKEY_BLOB_MAX)
		return fail(k, CN_EINVAL, why, why_cap, "identity: longer than %d bytes",
			    CN_SIGKEY_BLOB_MAX);
	const size_t mlen = sizeof magic - 1;
	if (len < mlen || memcmp(blob, magic, mlen) != 0)
		return fail(k, CN_EINVAL, why, why_cap,
			    "identity: not a canopy identity (first line must be '%s%d')", magic,
			    CN_SIGKEY_FORMAT_VERSION);
	/* Line 1: the version, decimal, 1..9 digits, no leading zero. */
	size_t next = 0;
	bool had_nl = false;
	size_t end = line_at(blob, len, mlen, &next, &had_nl);
	size_t ndigits = end - mlen;
	unsigned long version = 0;
	bool digits_ok = ndigits >= 1 && ndigits <= 9 && blob[mlen] != '0';
	for (size_t i = mlen; digits_ok && i < end; i++) {
		digits_ok = blob[i] >= '0' && blob[i] <= '9';
		version = version * 10 + (unsigned long)(blob[i] - '0');
	}
	if (!digits_ok || !had_nl)
		return fail(k, CN_EINVAL, why, why_cap,
			    "identity: line 1: must be '%s%d'", magic, CN_SIGKEY_FORMAT_VERSION);
	if (version != CN_SIGKEY_FORMAT_VERSION)
		return fail(k, CN_EVERSION, why, why_cap,
			    "identity: format version %lu not supported (this build reads v%d)",
			    version, CN_SIGKEY_FORMAT_VERSION);
	/* Line 2: the seed. */
	size_t start = next;
	end = line_at(blob, len, start, &next, &had_nl);
	uint8_t seed[CN_SIGKEY_SEED_BYTES];
	if (cn_keytext_decode((const char *)blob + start, end - start, seed) != 0)
		return fail(k, CN_EINVAL, why, why_cap,
			    "identity: line 2: secret is not 32 bytes of base64");
	if (next != len) {
		sodium_memzero(seed, sizeof seed);
		return fail(k, CN_EINVAL, why, why_cap, "identity: trailing data after line 2");
	}
	int err = cn_sigkey_from_seed(k, seed);
	sodium_memzero(seed, sizeof seed);
	if (err)
		return fail(k, err, why, why_cap, "identity: libsodium failed to initialise");
	return 0;
}

void cn_sigkey_sign(const cn_sigkey *k, const uint8_t *msg, size_t len,
		    uint8_t sig[CN_SIG_BYTES])
{
	assert(k != NULL && sig != NULL);
	assert(msg != NULL || len == 0);
	static const uint8_t empty[1];
	crypto_sign_detached(sig, NULL, msg != NULL ? msg : empty, len, k->sk);
}

int cn_sigkey_verify(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES], const uint8_t *msg, size_t len,
		     const uint8_t sig[CN_SIG_BYTES])
{
	assert(pk != NULL && sig != NULL);
	assert(msg != NULL || len == 0);
	static const uint8_t empty[1];
	return crypto_sign_verify_detached(sig, msg != NULL ? msg : empty, len, pk) == 0
		       ? 0
		       : CN_EAUTH;
}

void cn_sigkey_node_id(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES], char out[CN_NODE_ID_SIZE])
{
	uint8_t h[crypto_generichash_BYTES];
	crypto_generichash(h, sizeof h, pk, CN_SIGKEY_PUBLIC_BYTES, NULL, 0);
	sodium_bin2hex(out, CN_NODE_ID_SIZE, h, CN_NODE_ID_BYTES);
}

void cn_sigkey_public_encode(const uint8_t pk[CN_SIGKEY_PUBLIC_BYTES],
			     char out[CN_SIGKEY_TEXT_SIZE])
{
	cn_keytext_encode(pk, out);
}

int cn_sigkey_public_decode(const char *text, size_t len, uint8_t pk[CN_SIGKEY_PUBLIC_BYTES])
{
	return cn_keytext_decode(text, len, pk);
}
