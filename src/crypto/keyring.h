/* Cluster key ring: the symmetric keys that seal every packet and stream
 * message (see seal.h for the envelope).
 *
 * A ring holds up to CN_KEYRING_MAX 32-byte XChaCha20-Poly1305 keys. Exactly
 * one of them, the primary, seals outgoing envelopes; any installed key
 * opens incoming ones, chosen by the key id carried in the envelope header.
 * That is what makes rotation work without a flag day, as in memberlist's
 * keyring:
 *
 *   1. install the new key B on every node          (A primary, B installed)
 *   2. `use` B on every node                        (B primary, A installed)
 *   3. once no node seals with A any more, remove A (B primary)
 *
 * Between steps, every node still opens what any other node seals.
 *
 * Key id: the first 4 bytes, big-endian, of BLAKE2b-256 (crypto_generichash,
 * unkeyed) over the key. It names a key in envelopes, logs and the CLI
 * without revealing it. Two distinct keys whose ids collide (chance 2^-32
 * per pair) cannot share a ring: install refuses the second with CN_EEXIST
 * and the operator generates another key.
 *
 * Invariants (checked by assertions in debug builds):
 *   - count <= CN_KEYRING_MAX; slots [0, count) hold keys, the rest are zero;
 *   - ids[i] == cn_key_id(keys[i]) and the ids are pairwise distinct;
 *   - count == 0 or primary < count.
 *
 * Secrets: the keys live inside the struct. cn_keyring_wipe() zeroes it with
 * sodium_memzero and every function wipes its temporaries on every path.
 * Do not copy a ring by value (the copy would need its own wipe); place the
 * struct in sodium_malloc() memory if it must be kept out of swap and core
 * dumps. A ring is not thread-safe: one thread owns it. */
#ifndef CN_CRYPTO_KEYRING_H
#define CN_CRYPTO_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	CN_KEY_BYTES = 32,   /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */
	CN_KEYRING_MAX = 8,  /* keys per ring */
	CN_KEY_ID_BYTES = 4, /* key id in the envelope header */
};

typedef struct cn_keyring {
	uint8_t keys[CN_KEYRING_MAX][CN_KEY_BYTES]; /* secret; slots in install order */
	uint32_t ids[CN_KEYRING_MAX];
	uint32_t count;
	uint32_t primary; /* slot of the sealing key; meaningless when count == 0 */
} cn_keyring;

/* One row of cn_keyring_list(). */
typedef struct cn_keyring_entry {
	uint32_t id;
	bool primary;
} cn_keyring_entry;

/* Initialise an empty ring (and libsodium, see crypto.h).
 * @param[out] ring  the ring to initialise; any previous content is wiped.
 * @return 0, or CN_EIO if libsodium could not initialise (the ring is still
 *         valid and empty). */
int cn_keyring_init(cn_keyring *ring);

/* Zero every byte of the ring (keys included). The ring is then empty and
 * may be reused without another init. Never fails. */
void cn_keyring_wipe(cn_keyring *ring);

/* Install a key. The first key installed into an empty ring becomes the
 * primary; later ones only open until `cn_keyring_use` selects them.
 * @param[in] key  CN_KEY_BYTES bytes, copied into the ring (the caller keeps
 *                 and wipes its own copy).
 * @param[out] id_out  if not NULL, receives the key's id on success.
 * @return 0, or
 *   CN_EEXIST  a key with the same id (the same key, or a 2^-32 collision)
 *              is installed;
 *   CN_EFULL   the ring already holds CN_KEYRING_MAX keys. */
int cn_keyring_install(cn_keyring *ring, const uint8_t key[CN_KEY_BYTES], uint32_t *id_out);

/* Make the installed key with this id the primary (the one that seals).
 * @return 0, or CN_ENOENT if no installed key has this id. */
int cn_keyring_use(cn_keyring *ring, uint32_t id);

/* Remove the key with this id and wipe its slot. Envelopes sealed with it no
 * longer open (CN_ENOKEY). Remaining keys keep their relative order.
 * @return 0, or
 *   CN_EPERM   the key is the primary (make another primary first);
 *   CN_ENOENT  no installed key has this id. */
int cn_keyring_remove(cn_keyring *ring, uint32_t id);

/* Number of installed keys, 0..CN_KEYRING_MAX. */
size_t cn_keyring_count(const cn_keyring *ring);

/* List the installed keys, in install order, with the primary flagged.
 * @param[out] out  room for CN_KEYRING_MAX entries.
 * @return the number of entries written (== cn_keyring_count). */
size_t cn_keyring_list(const cn_keyring *ring, cn_keyring_entry out[CN_KEYRING_MAX]);

/* The primary key's id.
 * @return 0, or CN_ENOKEY if the ring is empty. */
int cn_keyring_primary_id(const cn_keyring *ring, uint32_t *id_out);

/* The installed key with this id, or NULL. The pointer is into the ring and
 * valid until the ring is changed or wiped; never copy it out unwiped. */
const uint8_t *cn_keyring_find(const cn_keyring *ring, uint32_t id);

/* The primary key, or NULL if the ring is empty. Same lifetime as above. */
const uint8_t *cn_keyring_primary(const cn_keyring *ring);

/* The key at slot i (0 <= i < count), in install order. Same lifetime. */
const uint8_t *cn_keyring_at(const cn_keyring *ring, size_t i);

/* Key id of a key: BLAKE2b-256(key)[0..4) read big-endian. Never fails. */
uint32_t cn_key_id(const uint8_t key[CN_KEY_BYTES]);

/* Fill key with CN_KEY_BYTES fresh random bytes (libsodium's CSPRNG).
 * @return 0, or CN_EIO if libsodium could not initialise. */
int cn_key_generate(uint8_t key[CN_KEY_BYTES]);

#endif
