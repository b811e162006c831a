/* libsodium start-up for the crypto layer.
 *
 * The crypto layer (src/crypto/) owns every use of libsodium: the cluster key
 * ring and sealed envelopes (keyring.h, seal.h), their text forms
 * (keytext.h) and Ed25519 signing keys (identity.h). It depends only on
 * src/util/ and libsodium and never touches files, sockets or clocks: the
 * agent reads files and hands their bytes in.
 *
 * The only global state is libsodium's own, set up by sodium_init(), which
 * is idempotent and thread-safe. Every constructor in this layer
 * (cn_keyring_init, cn_sigkey_generate, ...) calls cn_crypto_init() itself,
 * so callers never have to remember it. */
#ifndef CN_CRYPTO_CRYPTO_H
#define CN_CRYPTO_CRYPTO_H

/* Initialise libsodium. Safe to call any number of times from any thread.
 * @return 0, or CN_EIO if libsodium could not initialise (no entropy source). */
int cn_crypto_init(void);

#endif
