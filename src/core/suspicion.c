#include "core/suspicion.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

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

void cn_suspicion_table_init(cn_suspicion_table *t)
{
	t->heap = NULL;
	t->count = t->cap = 0;
	cn_idmap_init(&t->pos);
}

void cn_suspicion_table_free(cn_suspicion_table *t)
{
	free(t->heap);
	cn_idmap_free(&t->pos);
	t->heap = NULL;
	t->count = t->cap = 0;
}

/* Place s at index i and record it in the index (the map already holds the
 * ident, so put only replaces a value and cannot fail). */
static void place(cn_suspicion_table *t, uint32_t i, const cn_suspicion *s)
{
	t->heap[i] = *s;
	int rc = cn_idmap_put(&t->pos, s->ident, i);
	assert(rc == 0);
	(void)rc;
}

static void sift_up(cn_suspicion_table *t, uint32_t i)
{
	cn_suspicion s = t->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (t->heap[parent].deadline_ms <= s.deadline_ms)
			break;
		place(t, i, &t->heap[parent]);
		i = parent;
	}
	place(t, i, &s);
}

static void sift_down(cn_suspicion_table *t, uint32_t i)
{
	cn_suspicion s = t->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= t->count)
			break;
		if (c + 1 < t->count && t->heap[c + 1].deadline_ms < t->heap[c].deadline_ms)
			c++;
		if (s.deadline_ms <= t->heap[c].deadline_ms)
			break;
		place(t, i, &t->heap[c]);
		i = c;
	}
	place(t, i, &s);
}

int cn_suspicion_table_add(cn_suspicion_table *t, const cn_suspicion *s)
{
	uint32_t unused;
	assert(!cn_idmap_get(&t->pos, s->ident, &unused));
	(void)unused; /* NDEBUG builds */
	if (t->count == t->cap) {
		uint32_t cap = t->cap == 0 ? 8 : 2 * t->cap;
		cn_suspicion *h = realloc(t->heap, (size_t)cap * sizeof *h);
		if (h == NULL)
			return CN_ENOMEM;
		t->heap = h;
		t->cap = cap;
	}
	/* Reserve the index entry first so place() never allocates. */
	if (cn_idmap_put(&t->pos, s->ident, t->count) != 0)
		return CN_ENOMEM;
	t->heap[t->count++] = *s;
	sift_up(t, t->count - 1);
	return 0;
}

const cn_suspicion *cn_suspicion_table_find(const cn_suspicion_table *t, uint32_t ident)
{
	uint32_t i;
	if (!cn_idmap_get(&t->pos, ident, &i))
		return NULL;
	assert(i < t->count && t->heap[i].ident == ident);
	return &t->heap[i];
}

bool cn_suspicion_table_confirm(cn_suspicion_table *t, uint32_t ident, uint32_t from)
{
	uint32_t i;
	if (!cn_idmap_get(&t->pos, ident, &i))
		return false;
	if (!cn_suspicion_confirm(&t->heap[i], from))
		return false;
	sift_up(t, i); /* deadlines only move earlier */
	return true;
}

static void remove_at(cn_suspicion_table *t, uint32_t i)
{
	assert(i < t->count);
	bool had = cn_idmap_del(&t->pos, t->heap[i].ident);
	assert(had);
	(void)had;
	t->count--;
	if (i == t->count)
		return;
	place(t, i, &t->heap[t->count]);
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
	return t->count == 0 ? UINT64_MAX : t->heap[0].deadline_ms;
}

bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0 || t->heap[0].deadline_ms > now_ms)
		return false;
	*out = t->heap[0];
	return cn_suspicion_table_remove(t, out->ident);
}
