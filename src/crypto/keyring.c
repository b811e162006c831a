#include "crypto/keyring.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "util/err.h"

static_assert(CN_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
static_assert(CN_KEY_ID_BYTES == sizeof(uint32_t), "key id is a u32");
static_assert(CN_KEYRING_MAX > 1, "rotation needs two keys at once");

/* Invariants of keyring.h, checked in debug builds. The cheap shape check
 * runs on every call (the open path included); the full one, which hashes
 * every key, only around changes. */
static void assert_shape(const cn_keyring *ring)
{
	assert(ring != NULL);
	assert(ring->count <= CN_KEYRING_MAX);
	assert(ring->count == 0 || ring->primary < ring->count);
	(void)ring;
}

static void assert_ring(const cn_keyring *ring)
{
	assert_shape(ring);
#ifndef NDEBUG
	for (uint32_t i = 0; i < ring->count; i++) {
		assert(ring->ids[i] == cn_key_id(ring->keys[i]));
		for (uint32_t j = i + 1; j < ring->count; j++)
			assert(ring->ids[i] != ring->ids[j]);
	}
#else
	(void)ring;
#endif
}

/* Slot of the key with this id, or -1. */
static int find_slot(const cn_keyring *ring, uint32_t id)
{
	for (uint32_t i = 0; i < ring->count; i++)
		if (ring->ids[i] == id)
			return (int)i;
	return -1;
}

uint32_t cn_key_id(const uint8_t key[CN_KEY_BYTES])
{
	uint8_t h[crypto_generichash_BYTES];
	crypto_generichash(h, sizeof h, key, CN_KEY_BYTES, NULL, 0);
	uint32_t id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	/* The hash is not secret, but it is derived from one: no residue. */
	sodium_memzero(h, sizeof h);
	return id;
}

int cn_key_generate(uint8_t key[CN_KEY_BYTES])
{
	int err = cn_crypto_init();
	if (err)
		return err;
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	return 0;
}

int cn_keyring_init(cn_keyring *ring)
{
	assert(ring != NULL);
	sodium_memzero(ring, sizeof *ring);
	return cn_crypto_init();
}

void cn_keyring_wipe(cn_keyring *ring)
{
	if (ring != NULL)
		sodium_memzero(ring, sizeof *ring);
}

int cn_keyring_install(cn_keyring *ring, const uint8_t key[CN_KEY_BYTES], uint32_t *id_out)
{
	assert_ring(ring);
	assert(key != NULL);
	uint32_t id = cn_key_id(key);
	if (find_slot(ring, id) >= 0)
		return CN_EEXIST;
	if (ring->count == CN_KEYRING_MAX)
		return CN_EFULL;
	memcpy(ring->keys[ring->count], key, CN_KEY_BYTES);
	ring->ids[ring->count] = id;
	if (ring->count == 0)
		ring->primary = 0;
	ring->count++;
	if (id_out != NULL)
		*id_out = id;
	assert_ring(ring);
	return 0;
}

int cn_keyring_use(cn_keyring *ring, uint32_t id)
{
	assert_ring(ring);
	int slot = find_slot(ring, id);
	if (slot < 0)
		return CN_ENOENT;
	ring->primary = (uint32_t)slot;
	return 0;
}

int cn_keyring_remove(cn_keyring *ring, uint32_t id)
{
	assert_ring(ring);
	int found = find_slot(ring, id);
	if (found < 0)
		return CN_ENOENT;
	uint32_t slot = (uint32_t)found;
	if (slot == ring->primary)
		return CN_EPERM;
	/* Shift the later slots down so install order survives; the last slot,
	 * now a duplicate, is wiped. */
	for (uint32_t i = slot; i + 1 < ring->count; i++) {
		memcpy(ring->keys[i], ring->keys[i + 1], CN_KEY_BYTES);
		ring->ids[i] = ring->ids[i + 1];
	}
	ring->count--;
	sodium_memzero(ring->keys[ring->count], CN_KEY_BYTES);
	ring->ids[ring->count] = 0;
	if (ring->primary > slot)
		ring->primary--;
	assert_ring(ring);
	return 0;
}

size_t cn_keyring_count(const cn_keyring *ring)
{
	assert_shape(ring);
	return ring->count;
}

size_t cn_keyring_list(const cn_keyring *ring, cn_keyring_entry out[CN_KEYRING_MAX])
{
	assert_shape(ring);
	for (uint32_t i = 0; i < ring->count; i++) {
		out[i].id = ring->ids[i];
		out[i].primary = i == ring->primary;
	}
	return ring->count;
}

int cn_keyring_primary_id(const cn_keyring *ring, uint32_t *id_out)
{
	assert_shape(ring);
	if (ring->count == 0)
		return CN_ENOKEY;
	*id_out = ring->ids[ring->primary];
	return 0;
}

const uint8_t *cn_keyring_find(const cn_keyring *ring, uint32_t id)
{
	assert_shape(ring);
	int slot = find_slot(ring, id);
	return slot < 0 ? NULL : ring->keys[slot];
}

const uint8_t *cn_keyring_primary(const cn_keyring *ring)
{
	assert_shape(ring);
	return ring->count == 0 ? NULL : ring->keys[ring->primary];
}

const uint8_t *cn_keyring_at(const cn_keyring *ring, size_t i)
{
	assert_shape(ring);
	assert(i < ring->count);
	return ring->keys[i];
}
