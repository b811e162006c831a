#include "core/pool.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/rng.h"

/* ---- a content-addressed, refcounted table of fixed-size values ---- */

typedef struct intern {
	size_t elem;       /* bytes per value */
	uint8_t *vals;     /* cap values */
	uint32_t *refs;    /* refcount per slot; 0 = free slot */
	uint64_t *hashes;  /* hash per slot */
	uint32_t *free;    /* stack of free slots */
	uint32_t used, cap, n_free, live;
	uint32_t *index;   /* open addressing: slot + 1, 0 = empty */
	uint32_t index_cap;
	uint64_t hits;
} intern;

/* 64 bits at a time: metadata is ~1.7 KB and hashed on every intern,
 * which a 10,000-node join storm does 10^8 times. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	size_t i = 0;
	if (n >= 256) {
		/* Four independent chains: one chain is bound by the multiply's
		 * latency (a quarter of the speed on the ~1.8 KB metadata).
		 * Hashes only place values in the index, so this changes no
		 * outcome (names, below 256 bytes, hash as before). */
		uint64_t l[4] = {h, h ^ 0x243f6a8885a308d3ULL, h ^ 0x13198a2e03707344ULL,
				 h ^ 0xa4093822299f31d0ULL};
		for (; i + 32 <= n; i += 32) {
			for (int k = 0; k < 4; k++) {
				uint64_t w;
				memcpy(&w, b + i + 8 * (size_t)k, sizeof w);
				l[k] = (l[k] ^ w) * 0xff51afd7ed558ccdULL;
				l[k] ^= l[k] >> 32;
			}
		}
		h = cn_mix64(l[0]) ^ cn_mix64(l[1] + 1) ^ cn_mix64(l[2] + 2) ^ cn_mix64(l[3] + 3);
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, sizeof w);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return cn_mix64(h);
}

static void intern_init(intern *t, size_t elem)
{
	memset(t, 0, sizeof *t);
	t->elem = elem;
}

static void intern_free(intern *t)
{
	free(t->vals);
	free(t->refs);
	free(t->hashes);
	free(t->free);
	free(t->index);
}

static int index_rebuild(intern *t, uint32_t cap)
{
	uint32_t *ix = calloc(cap, sizeof *ix);
	if (ix == NULL)
		return CN_ENOMEM;
	for (uint32_t s = 0; s < t->used; s++) {
		if (t->refs[s] == 0)
			continue;
		uint32_t j = (uint32_t)t->hashes[s] & (cap - 1);
		while (ix[j] != 0)
			j = (j + 1) & (cap - 1);
		ix[j] = s + 1;
	}
	free(t->index);
	t->index = ix;
	t->index_cap = cap;
	return 0;
}

/* Index position holding value v (true) or the empty slot to put it. */
static bool intern_lookup(const intern *t, const void *v, uint64_t h, uint32_t *pos)
{
	uint32_t mask = t->index_cap - 1;
	for (uint32_t j = (uint32_t)h & mask;; j = (j + 1) & mask) {
		uint32_t s1 = t->index[j];
		if (s1 == 0) {
			*pos = j;
			return false;
		}
		if (t->hashes[s1 - 1] == h && memcmp(t->vals + (s1 - 1) * t->elem, v, t->elem) == 0) {
			*pos = j;
			return true;
		}
	}
}

static int intern_grow(intern *t)
{
	uint32_t cap = t->cap == 0 ? 16 : 2 * t->cap;
	uint8_t *v = realloc(t->vals, (size_t)cap * t->elem);
	if (v == NULL)
		return CN_ENOMEM;
	t->vals = v;
	uint32_t *r = realloc(t->refs, (size_t)cap * sizeof *r);
	if (r == NULL)
		return CN_ENOMEM;
	t->refs = r;
	uint64_t *h = realloc(t->hashes, (size_t)cap * sizeof *h);
	if (h == NULL)
		return CN_ENOMEM;
	t->hashes = h;
	uint32_t *f = realloc(t->free, (size_t)cap * sizeof *f);
	if (f == NULL)
		return CN_ENOMEM;
	t->free = f;
	t->cap = cap;
	return 0;
}

static int intern_acquire(intern *t, const void *v, uint32_t *ref)
{
	uint64_t h = hash_bytes(v, t->elem);
	if (2 * (t->live + 1) > t->index_cap &&
	    index_rebuild(t, t->index_cap == 0 ? 32 : 2 * t->index_cap) != 0)
		return CN_ENOMEM;
	uint32_t pos;
	if (intern_lookup(t, v, h, &pos)) {
		uint32_t s = t->index[pos] - 1;
		t->refs[s]++;
		t->hits++;
		*ref = s + 1;
		return 0;
	}
	if (t->n_free == 0 && t->used == t->cap && intern_grow(t) != 0)
		return CN_ENOMEM;
	uint32_t s = t->n_free > 0 ? t->free[--t->n_free] : t->used++;
	memcpy(t->vals + (size_t)s * t->elem, v, t->elem);
	t->refs[s] = 1;
	t->hashes[s] = h;
	t->index[pos] = s + 1;
	t->live++;
	*ref = s + 1;
	assert(2 * t->live <= t->index_cap);
	return 0;
}

static void intern_retain(intern *t, uint32_t ref)
{
	assert(ref >= 1 && ref <= t->used && t->refs[ref - 1] > 0);
	assert(t->refs[ref - 1] < UINT32_MAX);
	t->refs[ref - 1]++;
}

/* Remove slot s from the index (backward-shift deletion). */
static void index_remove(intern *t, uint32_t s)
{
	uint32_t mask = t->index_cap - 1, hole = (uint32_t)t->hashes[s] & mask;
	while (t->index[hole] != s + 1)
		hole = (hole + 1) & mask;
	for (uint32_t j = (hole + 1) & mask; t->index[j] != 0; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)t->hashes[t->index[j] - 1] & mask;
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		t->index[hole] = t->index[j];
		hole = j;
	}
	t->index[hole] = 0;
}

static void intern_release(intern *t, uint32_t ref)
{
	if (ref == 0)
		return;
	uint32_t s = ref - 1;
	assert(s < t->used && t->refs[s] > 0);
	if (--t->refs[s] > 0)
		return;
	index_remove(t, s);
	t->free[t->n_free++] = s;
	t->live--;
}

static const void *intern_get(const intern *t, uint32_t ref)
{
	assert(ref >= 1 && ref <= t->used && t->refs[ref - 1] > 0);
	return t->vals + (size_t)(ref - 1) * t->elem;
}

/* ---- the pool ---- */

typedef struct ident_rec {
	char name[CN_NAME_MAX + 1];
	bool has_coord;
	uint64_t hash;
	cn_coord coord;
} ident_rec;

struct cn_pool {
	ident_rec *idents;
	uint32_t n_idents, cap_idents;
	uint32_t *name_index; /* open addressing: ident + 1 */
	uint32_t name_index_cap;
	intern endpoints, metas;
};

int cn_pool_new(cn_pool **out)
{
	cn_pool *p = calloc(1, sizeof *p);
	if (p == NULL)
		return CN_ENOMEM;
	intern_init(&p->endpoints, sizeof(cn_pool_endpoint));
	intern_init(&p->metas, sizeof(cn_meta));
	*out = p;
	return 0;
}

void cn_pool_free(cn_pool *p)
{
	if (p == NULL)
		return;
	free(p->idents);
	free(p->name_index);
	intern_free(&p->endpoints);
	intern_free(&p->metas);
	free(p);
}

bool cn_pool_name_valid(const char *name)
{
	size_t n = strnlen(name, CN_NAME_MAX + 1);
	if (n == 0 || n > CN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20)
			return false;
	return true;
}

static bool name_lookup(const cn_pool *p, const char *name, uint64_t h, uint32_t *pos)
{
	uint32_t mask = p->name_index_cap - 1;
	for (uint32_t j = (uint32_t)h & mask;; j = (j + 1) & mask) {
		uint32_t i1 = p->name_index[j];
		if (i1 == 0) {
			*pos = j;
			return false;
		}
		if (p->idents[i1 - 1].hash == h && strcmp(p->idents[i1 - 1].name, name) == 0) {
			*pos = j;
			return true;
		}
	}
}

static int name_index_grow(cn_pool *p)
{
	uint32_t cap = p->name_index_cap == 0 ? 64 : 2 * p->name_index_cap;
	uint32_t *ix = calloc(cap, sizeof *ix);
	if (ix == NULL)
		return CN_ENOMEM;
	for (uint32_t i = 0; i < p->n_idents; i++) {
		uint32_t j = (uint32_t)p->idents[i].hash & (cap - 1);
		while (ix[j] != 0)
			j = (j + 1) & (cap - 1);
		ix[j] = i + 1;
	}
	free(p->name_index);
	p->name_index = ix;
	p->name_index_cap = cap;
	return 0;
}

int cn_pool_find_name(const cn_pool *p, const char *name, uint32_t *ident)
{
	if (p->name_index_cap == 0 || !cn_pool_name_valid(name))
		return CN_ENOENT;
	uint32_t pos;
	if (!name_lookup(p, name, hash_bytes(name, strlen(name)), &pos))
		return CN_ENOENT;
	*ident = p->name_index[pos] - 1;
	return 0;
}

int cn_pool_intern_name(cn_pool *p, const char *name, uint32_t *ident)
{
	if (!cn_pool_name_valid(name))
		return CN_EINVAL;
	if (cn_pool_find_name(p, name, ident) == 0)
		return 0;
	if (p->n_idents >= CN_POOL_IDENTS_MAX)
		return CN_EFULL;
	if (2 * (p->n_idents + 1) > p->name_index_cap && name_index_grow(p) != 0)
		return CN_ENOMEM;
	if (p->n_idents == p->cap_idents) {
		uint32_t cap = p->cap_idents == 0 ? 64 : 2 * p->cap_idents;
		ident_rec *r = realloc(p->idents, (size_t)cap * sizeof *r);
		if (r == NULL)
			return CN_ENOMEM;
		p->idents = r;
		p->cap_idents = cap;
	}
	uint64_t h = hash_bytes(name, strlen(name));
	uint32_t pos;
	bool found = name_lookup(p, name, h, &pos);
	assert(!found);
	(void)found;
	ident_rec *r = &p->idents[p->n_idents];
	memset(r, 0, sizeof *r);
	strcpy(r->name, name); /* length checked by cn_pool_name_valid */
	r->hash = h;
	p->name_index[pos] = ++p->n_idents;
	*ident = p->n_idents - 1;
	return 0;
}

const char *cn_pool_name(const cn_pool *p, uint32_t ident)
{
	assert(ident < p->n_idents);
	return p->idents[ident].name;
}

uint32_t cn_pool_ident_count(const cn_pool *p) { return p->n_idents; }

void cn_pool_set_coord(cn_pool *p, uint32_t ident, const cn_coord *c)
{
	assert(ident < p->n_idents);
	p->idents[ident].coord = *c;
	p->idents[ident].has_coord = true;
}

bool cn_pool_get_coord(const cn_pool *p, uint32_t ident, cn_coord *out)
{
	assert(ident < p->n_idents);
	if (!p->idents[ident].has_coord)
		return false;
	*out = p->idents[ident].coord;
	return true;
}

int cn_pool_endpoint_acquire(cn_pool *p, const cn_addr *addr, uint8_t vmin, uint8_t vmax,
			     uint32_t *ref)
{
	cn_pool_endpoint e;
	memset(&e, 0, sizeof e); /* padding must hash equal */
	e.addr.family = addr->family;
	memcpy(e.addr.ip, addr->ip, sizeof e.addr.ip);
	e.addr.port = addr->port;
	e.vmin = vmin;
	e.vmax = vmax;
	return intern_acquire(&p->endpoints, &e, ref);
}

void cn_pool_endpoint_retain(cn_pool *p, uint32_t ref) { intern_retain(&p->endpoints, ref); }
void cn_pool_endpoint_release(cn_pool *p, uint32_t ref) { intern_release(&p->endpoints, ref); }

const cn_pool_endpoint *cn_pool_endpoint_get(const cn_pool *p, uint32_t ref)
{
	return intern_get(&p->endpoints, ref);
}

static void copy_text(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void cn_meta_canon(const cn_meta *in, cn_meta *out)
{
	memset(out, 0, sizeof *out);
	out->n_labels = in->n_labels > CN_LABELS_MAX ? CN_LABELS_MAX : in->n_labels;
	for (uint8_t i = 0; i < out->n_labels; i++) {
		copy_text(out->labels[i].key, in->labels[i].key, sizeof out->labels[i].key);
		copy_text(out->labels[i].value, in->labels[i].value, sizeof out->labels[i].value);
	}
	copy_text(out->arch, in->arch, sizeof out->arch);
	copy_text(out->os, in->os, sizeof out->os);
	out->cpus = in->cpus;
	out->mem_mb = in->mem_mb;
	out->n_accel = in->n_accel > CN_ACCEL_MAX ? CN_ACCEL_MAX : in->n_accel;
	for (uint8_t i = 0; i < out->n_accel; i++) {
		copy_text(out->accel[i].kind, in->accel[i].kind, sizeof out->accel[i].kind);
		out->accel[i].count = in->accel[i].count;
	}
	out->load_milli = in->load_milli;
	out->mem_free_mb = in->mem_free_mb;
	out->power = in->power;
	out->battery_pct = in->battery_pct;
	out->n_rollout = in->n_rollout > CN_ROLLOUT_REPORTS_MAX ? CN_ROLLOUT_REPORTS_MAX : in->n_rollout;
	for (uint8_t i = 0; i < out->n_rollout; i++) {
		out->rollout[i] = in->rollout[i];
		out->rollout[i].pad_ = 0;
	}
	out->n_workloads = in->n_workloads > CN_WORKLOAD_REPORTS_MAX ? CN_WORKLOAD_REPORTS_MAX
								     : in->n_workloads;
	for (uint8_t i = 0; i < out->n_workloads; i++) {
		out->workloads[i] = in->workloads[i];
		out->workloads[i].pad_ = 0;
	}
}

int cn_pool_meta_acquire(cn_pool *p, const cn_meta *meta, uint32_t *ref)
{
	cn_meta c;
	cn_meta_canon(meta, &c);
	return intern_acquire(&p->metas, &c, ref);
}

void cn_pool_meta_retain(cn_pool *p, uint32_t ref) { intern_retain(&p->metas, ref); }
void cn_pool_meta_release(cn_pool *p, uint32_t ref) { intern_release(&p->metas, ref); }

const cn_meta *cn_pool_meta_get(const cn_pool *p, uint32_t ref)
{
	return intern_get(&p->metas, ref);
}

void cn_pool_stats_get(const cn_pool *p, cn_pool_stats *out)
{
	out->idents = p->n_idents;
	out->endpoints = p->endpoints.live;
	out->metas = p->metas.live;
	out->meta_hits = p->metas.hits;
	size_t per_slot = sizeof(uint32_t) * 2 + sizeof(uint64_t);
	out->bytes = (size_t)p->cap_idents * sizeof(ident_rec) +
		     (size_t)p->name_index_cap * sizeof(uint32_t) +
		     (size_t)p->endpoints.cap * (p->endpoints.elem + per_slot) +
		     (size_t)p->endpoints.index_cap * sizeof(uint32_t) +
		     (size_t)p->metas.cap * (p->metas.elem + per_slot) +
		     (size_t)p->metas.index_cap * sizeof(uint32_t);
}
