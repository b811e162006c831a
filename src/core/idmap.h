/* A small open-addressing map from a 32-bit id to a 32-bit value.
 *
 * Used where a per-node side table (suspicion timers, broadcast queue) must
 * find its entry for a member ident in O(1) without a pointer in the
 * compact member record. Linear probing with backward-shift deletion (no
 * tombstones), load factor <= 1/2; the table grows by doubling and shrinks
 * when it is 1/8 full, so a node whose side table is empty pays ~128 bytes.
 * Owned by its container; not thread-safe (one thread owns a node). */
#ifndef CN_CORE_IDMAP_H
#define CN_CORE_IDMAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cn_idmap_slot {
	uint32_t key1; /* key + 1; 0 marks an empty slot */
	uint32_t val;
} cn_idmap_slot;

typedef struct cn_idmap {
	cn_idmap_slot *slots; /* NULL until the first put */
	uint32_t cap;         /* 0 or a power of two >= 16 */
	uint32_t count;
} cn_idmap;

void cn_idmap_init(cn_idmap *m);
void cn_idmap_free(cn_idmap *m);
/* Insert or replace. key < UINT32_MAX. Returns 0 or CN_ENOMEM. */
int cn_idmap_put(cn_idmap *m, uint32_t key, uint32_t val);
/* true and *val when present. */
bool cn_idmap_get(const cn_idmap *m, uint32_t key, uint32_t *val);
/* true when the key was present (and is now gone). */
bool cn_idmap_del(cn_idmap *m, uint32_t key);

#endif
