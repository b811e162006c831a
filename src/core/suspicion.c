#include "core/suspicion.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

uint64_t cn_suspicion_min_ms(uint32_t mult, uint32_t n, uint32_t probe_interval_ms)
{
	double n_scale = log10(n > 1 ? (double)n : 1.0);
	if (n_scale < 1.0)
		n_scale = 1.0; /* small clusters still get mult intervals */
	double ms = (double)mult * n_scale * (double)probe_interval_ms;
	assert(ms >= 0.0 && ms < 1e15);
	return (uint64_t)ms;
}

uint64_t cn_suspicion_timeout_ms(uint32_t confirmations, uint32_t k, uint64_t min_ms,
				 uint64_t max_ms)
{
	assert(min_ms <= max_ms);
	if (k < 1)
		return min_ms;
	if (confirmations > k)
		confirmations = k;
	double frac = log((double)confirmations + 1.0) / log((double)k + 1.0);
	double raw = (double)max_ms - frac * (double)(max_ms - min_ms);
	uint64_t t = (uint64_t)floor(raw);
	return t < min_ms ? min_ms : t;
}

void cn_suspicion_start(cn_suspicion *s, uint32_t ident, uint32_t accuser, uint32_t k,
			uint64_t min_ms, uint64_t max_ms, uint64_t now_ms)
{
	assert(min_ms <= max_ms);
	*s = (cn_suspicion){0};
	s->ident = ident;
	s->accuser = accuser;
	s->start_ms = now_ms;
	s->min_ms = min_ms;
	s->max_ms = max_ms;
	s->k = (uint8_t)(k > CN_SUSPICION_CONFIRM_MAX ? CN_SUSPICION_CONFIRM_MAX : k);
	s->deadline_ms = now_ms + cn_suspicion_timeout_ms(0, s->k, min_ms, max_ms);
}

bool cn_suspicion_confirm(cn_suspicion *s, uint32_t from)
{
	assert(s->confirmations <= s->k);
	if (s->confirmations >= s->k || from == s->accuser)
		return false;
	for (uint32_t i = 0; i < s->confirmations; i++)
		if (s->confirmers[i] == from)
			return false;
	s->confirmers[s->confirmations++] = from;
	s->deadline_ms = s->start_ms +
			 cn_suspicion_timeout_ms(s->confirmations, s->k, s->min_ms, s->max_ms);
	assert(s->deadline_ms >= s->start_ms + s->min_ms);
	return true;
}

/* ---- table: binary min-heap on deadline, idmap ident -> heap index ---- */

/* A stored suspicion: cn_suspicion with room for only k_max confirmers. */
typedef struct susp_ent {
	uint64_t deadline_ms, start_ms, min_ms, max_ms;
	uint32_t ident, accuser;
	uint8_t k, confirmations;
	uint8_t pad_[2];
	uint32_t confirmers[]; /* k_max of them (the table's esz) */
} susp_ent;

_Static_assert(offsetof(susp_ent, confirmers) == 44, "susp_ent layout");

static susp_ent *ent(const cn_suspicion_table *t, uint32_t i)
{
	assert(i < t->cap);
	return (susp_ent *)(void *)(t->heap + (size_t)i * t->esz);
}

static void ent_store(const cn_suspicion_table *t, susp_ent *e, const cn_suspicion *s)
{
	assert(s->k <= t->k_max && s->confirmations <= s->k);
	e->deadline_ms = s->deadline_ms;
	e->start_ms = s->start_ms;
	e->min_ms = s->min_ms;
	e->max_ms = s->max_ms;
	e->ident = s->ident;
	e->accuser = s->accuser;
	e->k = s->k;
	e->confirmations = s->confirmations;
	e->pad_[0] = e->pad_[1] = 0;
	memcpy(e->confirmers, s->confirmers, (size_t)s->confirmations * sizeof(uint32_t));
	(void)t;
}

static void ent_load(const susp_ent *e, cn_suspicion *s)
{
	*s = (cn_suspicion){0};
	s->deadline_ms = e->deadline_ms;
	s->start_ms = e->start_ms;
	s->min_ms = e->min_ms;
	s->max_ms = e->max_ms;
	s->ident = e->ident;
	s->accuser = e->accuser;
	s->k = e->k;
	s->confirmations = e->confirmations;
	memcpy(s->confirmers, e->confirmers, (size_t)e->confirmations * sizeof(uint32_t));
}

void cn_suspicion_table_init(cn_suspicion_table *t, uint32_t k_max)
{
	if (k_max > CN_SUSPICION_CONFIRM_MAX)
		k_max = CN_SUSPICION_CONFIRM_MAX;
	t->heap = NULL;
	t->count = t->cap = 0;
	t->k_max = (uint8_t)k_max;
	size_t esz = offsetof(susp_ent, confirmers) + (size_t)k_max * sizeof(uint32_t);
	t->esz = (uint32_t)((esz + 7) & ~(size_t)7); /* keeps the 64-bit fields aligned */
	cn_idmap_init(&t->pos);
}

void cn_suspicion_table_free(cn_suspicion_table *t)
{
	free(t->heap);
	cn_idmap_free(&t->pos);
	t->heap = NULL;
	t->count = t->cap = 0;
}

/* Copy *e to index i and record it in the index (the map already holds
 * the ident, so put only replaces a value and cannot fail). */
static void place(cn_suspicion_table *t, uint32_t i, const susp_ent *e)
{
	memcpy(ent(t, i), e, t->esz);
	int rc = cn_idmap_put(&t->pos, e->ident, i);
	assert(rc == 0);
	(void)rc;
}

static void sift_up(cn_suspicion_table *t, uint32_t i)
{
	uint64_t e_tmp[(offsetof(susp_ent, confirmers) + CN_SUSPICION_CONFIRM_MAX * 4 + 7) / 8];
	susp_ent *s = (susp_ent *)(void *)e_tmp;
	memcpy(s, ent(t, i), t->esz);
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (ent(t, parent)->deadline_ms <= s->deadline_ms)
			break;
		place(t, i, ent(t, parent));
		i = parent;
	}
	place(t, i, s);
}

static void sift_down(cn_suspicion_table *t, uint32_t i)
{
	uint64_t e_tmp[(offsetof(susp_ent, confirmers) + CN_SUSPICION_CONFIRM_MAX * 4 + 7) / 8];
	susp_ent *s = (susp_ent *)(void *)e_tmp;
	memcpy(s, ent(t, i), t->esz);
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= t->count)
			break;
		if (c + 1 < t->count && ent(t, c + 1)->deadline_ms < ent(t, c)->deadline_ms)
			c++;
		if (s->deadline_ms <= ent(t, c)->deadline_ms)
			break;
		place(t, i, ent(t, c));
		i = c;
	}
	place(t, i, s);
}

int cn_suspicion_table_add(cn_suspicion_table *t, const cn_suspicion *s)
{
	uint32_t unused;
	assert(!cn_idmap_get(&t->pos, s->ident, &unused));
	assert(s->k <= t->k_max);
	(void)unused; /* NDEBUG builds */
	if (t->count == t->cap) {
		/* A quarter more, not double: at a partition every node of a
		 * big fleet holds thousands of these at once, and the slack of
		 * doubling was a third of the table on average. */
		uint32_t cap = t->cap + t->cap / 4 + 8;
		uint8_t *h = realloc(t->heap, (size_t)cap * t->esz);
		if (h == NULL)
			return CN_ENOMEM;
		t->heap = h;
		t->cap = cap;
	}
	/* Reserve the index entry first so place() never allocates. */
	if (cn_idmap_put(&t->pos, s->ident, t->count) != 0)
		return CN_ENOMEM;
	ent_store(t, ent(t, t->count++), s);
	sift_up(t, t->count - 1);
	return 0;
}

bool cn_suspicion_table_find(const cn_suspicion_table *t, uint32_t ident, cn_suspicion *out)
{
	uint32_t i;
	if (!cn_idmap_get(&t->pos, ident, &i))
		return false;
	assert(i < t->count && ent(t, i)->ident == ident);
	if (out != NULL)
		ent_load(ent(t, i), out);
	return true;
}

bool cn_suspicion_table_confirm(cn_suspicion_table *t, uint32_t ident, uint32_t from)
{
	uint32_t i;
	if (!cn_idmap_get(&t->pos, ident, &i))
		return false;
	susp_ent *e = ent(t, i);
	/* The cheap refusals first (cn_suspicion_confirm's rules): most
	 * confirmations in a suspicion storm are repeats. */
	if (e->confirmations >= e->k || from == e->accuser)
		return false;
	for (uint32_t c = 0; c < e->confirmations; c++)
		if (e->confirmers[c] == from)
			return false;
	cn_suspicion s;
	ent_load(e, &s);
	bool moved = cn_suspicion_confirm(&s, from);
	assert(moved);
	ent_store(t, e, &s);
	sift_up(t, i); /* deadlines only move earlier */
	return moved;
}

static void remove_at(cn_suspicion_table *t, uint32_t i)
{
	assert(i < t->count);
	bool had = cn_idmap_del(&t->pos, ent(t, i)->ident);
	assert(had);
	(void)had;
	t->count--;
	if (i == t->count)
		return;
	place(t, i, ent(t, t->count));
	sift_down(t, i);
	sift_up(t, i);
}

bool cn_suspicion_table_remove(cn_suspicion_table *t, uint32_t ident)
{
	uint32_t i;
	if (!cn_idmap_get(&t->pos, ident, &i))
		return false;
	remove_at(t, i);
	if (t->count == 0) { /* give the memory back: most nodes suspect nobody */
		free(t->heap);
		t->heap = NULL;
		t->cap = 0;
	}
	return true;
}

uint64_t cn_suspicion_table_next_ms(const cn_suspicion_table *t)
{
	return t->count == 0 ? UINT64_MAX : ent(t, 0)->deadline_ms;
}

bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0 || ent(t, 0)->deadline_ms > now_ms)
		return false;
	ent_load(ent(t, 0), out);
	return cn_suspicion_table_remove(t, out->ident);
}
