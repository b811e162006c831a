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
	s->call_ms = s->last_call_ms = UINT64_MAX; /* no last calls unless armed */
}

/* Next last call: calls_left of them, gap apart, ending a gap before the
 * deadline; never before the start nor sooner than a gap after the
 * previous one (confirmations can pull the deadline in). */
static void schedule_call(cn_suspicion *s)
{
	s->call_ms = UINT64_MAX;
	if (s->calls_left == 0)
		return;
	uint64_t span = (uint64_t)s->calls_left * s->call_gap_ms;
	uint64_t at = s->deadline_ms > span ? s->deadline_ms - span : 0;
	if (at < s->start_ms)
		at = s->start_ms;
	if (s->last_call_ms != UINT64_MAX && at < s->last_call_ms + s->call_gap_ms)
		at = s->last_call_ms + s->call_gap_ms;
	if (at < s->deadline_ms)
		s->call_ms = at;
	assert(s->call_ms == UINT64_MAX || s->call_ms < s->deadline_ms);
}

void cn_suspicion_arm_calls(cn_suspicion *s, uint8_t calls, uint32_t gap_ms)
{
	assert(gap_ms >= 1);
	s->calls_left = calls;
	s->call_gap_ms = gap_ms;
	s->last_call_ms = UINT64_MAX;
	schedule_call(s);
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
	schedule_call(s); /* calls follow the deadline in (never later: see sift_up) */
	return true;
}

/* ---- table: binary min-heap on deadline, idmap ident -> heap index ---- */

/* A stored suspicion: cn_suspicion with room for only k_max confirmers. */
typedef struct susp_ent {
	uint64_t deadline_ms, start_ms, min_ms, max_ms;
	uint32_t ident, accuser;
	/* last calls as ms after start_ms (UINT32_MAX: none): a suspicion
	 * lasts at most max_ms, far below 2^32 ms, and 8 bytes per entry
	 * matter when a partitioned fleet holds ~5,000 per node */
	uint32_t call_off, last_call_off, call_gap_ms;
	uint8_t k, confirmations, calls_left;
	uint8_t pad_;
	uint32_t confirmers[]; /* k_max of them (the table's esz) */
} susp_ent;

_Static_assert(offsetof(susp_ent, confirmers) == 56, "susp_ent layout");

static uint32_t to_off(uint64_t start, uint64_t at)
{
	if (at == UINT64_MAX)
		return UINT32_MAX;
	assert(at >= start && at - start < UINT32_MAX);
	return (uint32_t)(at - start);
}

static uint64_t from_off(uint64_t start, uint32_t off)
{
	return off == UINT32_MAX ? UINT64_MAX : start + off;
}

/* The heap key of an entry: its next event, a last call or the deadline. */
static uint64_t ent_due(const susp_ent *e)
{
	uint64_t call = from_off(e->start_ms, e->call_off);
	return call < e->deadline_ms ? call : e->deadline_ms;
}

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
	e->call_off = to_off(s->start_ms, s->call_ms);
	e->last_call_off = to_off(s->start_ms, s->last_call_ms);
	e->call_gap_ms = s->call_gap_ms;
	e->calls_left = s->calls_left;
	e->pad_ = 0;
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
	s->call_ms = from_off(e->start_ms, e->call_off);
	s->last_call_ms = from_off(e->start_ms, e->last_call_off);
	s->call_gap_ms = e->call_gap_ms;
	s->calls_left = e->calls_left;
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
		if (ent_due(ent(t, parent)) <= ent_due(s))
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
		if (c + 1 < t->count && ent_due(ent(t, c + 1)) < ent_due(ent(t, c)))
			c++;
		if (ent_due(s) <= ent_due(ent(t, c)))
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
	sift_up(t, i); /* deadlines and calls only move earlier */
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
	return t->count == 0 ? UINT64_MAX : ent_due(ent(t, 0));
}

bool cn_suspicion_table_take_call(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0)
		return false;
	susp_ent *e = ent(t, 0);
	uint64_t call = from_off(e->start_ms, e->call_off);
	if (call > now_ms || call >= e->deadline_ms)
		return false;
	assert(e->calls_left > 0);
	ent_load(e, out);
	cn_suspicion s = *out;
	s.calls_left--;
	s.last_call_ms = s.call_ms;
	schedule_call(&s); /* only later: the key grows */
	ent_store(t, e, &s);
	sift_down(t, 0);
	return true;
}

bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0 || ent(t, 0)->deadline_ms > now_ms)
		return false;
	ent_load(ent(t, 0), out);
	return cn_suspicion_table_remove(t, out->ident);
}
