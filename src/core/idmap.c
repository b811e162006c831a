#include "core/idmap.h"

#include <assert.h>
#include <stdlib.h>

#include "util/err.h"
#include "util/rng.h"

enum { IDMAP_CAP_MIN = 16 };

static uint32_t home(const cn_idmap *m, uint32_t key)
{
	return (uint32_t)cn_mix64(key) & (m->cap - 1);
}

void cn_idmap_init(cn_idmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void cn_idmap_free(cn_idmap *m)
{
	free(m->slots);
	cn_idmap_init(m);
}

/* Rehash into a table of new_cap slots (a power of two, > 2 * count). */
static int resize(cn_idmap *m, uint32_t new_cap)
{
	assert(new_cap >= IDMAP_CAP_MIN && (new_cap & (new_cap - 1)) == 0);
	assert(new_cap >= 2 * m->count);
	cn_idmap_slot *old = m->slots;
	uint32_t old_cap = m->cap;
	cn_idmap_slot *s = calloc(new_cap, sizeof *s);
	if (s == NULL)
		return CN_ENOMEM;
	m->slots = s;
	m->cap = new_cap;
	for (uint32_t i = 0; i < old_cap; i++) {
		if (old[i].key1 == 0)
			continue;
		uint32_t j = home(m, old[i].key1 - 1);
		while (s[j].key1 != 0)
			j = (j + 1) & (new_cap - 1);
		s[j] = old[i];
	}
	free(old);
	return 0;
}

static bool find(const cn_idmap *m, uint32_t key, uint32_t *at)
{
	if (m->cap == 0)
		return false;
	uint32_t j = home(m, key);
	/* Load <= 1/2 guarantees an empty slot, so the loop ends. */
	while (m->slots[j].key1 != 0) {
		if (m->slots[j].key1 == key + 1) {
			*at = j;
			return true;
		}
		j = (j + 1) & (m->cap - 1);
	}
	*at = j;
	return false;
}

int cn_idmap_put(cn_idmap *m, uint32_t key, uint32_t val)
{
	assert(key < UINT32_MAX);
	uint32_t at = 0;
	if (find(m, key, &at)) {
		m->slots[at].val = val;
		return 0;
	}
	if (2 * (m->count + 1) > m->cap) {
		int rc = resize(m, m->cap == 0 ? IDMAP_CAP_MIN : 2 * m->cap);
		if (rc != 0)
			return rc;
		(void)find(m, key, &at);
	}
	m->slots[at].key1 = key + 1;
	m->slots[at].val = val;
	m->count++;
	assert(2 * m->count <= m->cap);
	return 0;
}

bool cn_idmap_get(const cn_idmap *m, uint32_t key, uint32_t *val)
{
	uint32_t at = 0;
	if (!find(m, key, &at))
		return false;
	*val = m->slots[at].val;
	return true;
}

/* Backward-shift deletion: pull later members of the probe run into the
 * hole so lookups never need tombstones. */
static void shift_back(cn_idmap *m, uint32_t hole)
{
	uint32_t mask = m->cap - 1;
	uint32_t j = hole;
	for (;;) {
		j = (j + 1) & mask;
		if (m->slots[j].key1 == 0)
			break;
		uint32_t h = home(m, m->slots[j].key1 - 1);
		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (stays)
			continue;
		m->slots[hole] = m->slots[j];
		hole = j;
	}
	m->slots[hole].key1 = 0;
}

bool cn_idmap_del(cn_idmap *m, uint32_t key)
{
	uint32_t at = 0;
	if (!find(m, key, &at))
		return false;
	shift_back(m, at);
	m->count--;
	/* Shrink when sparse; failure to shrink is harmless. */
	if (m->cap > IDMAP_CAP_MIN && 8 * m->count < m->cap)
		(void)resize(m, m->cap / 2);
	return true;
}
