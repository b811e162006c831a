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
	s->call_ms = UINT64_MAX; /* no last calls unless armed */
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

/* The heap key: the timer's next event, a last call or the deadline. */
static uint64_t due_ms(const cn_suspicion *s)
{
	return s->call_ms < s->deadline_ms ? s->call_ms : s->deadline_ms;
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
		if (due_ms(&t->heap[parent]) <= due_ms(&s))
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
		if (c + 1 < t->count && due_ms(&t->heap[c + 1]) < due_ms(&t->heap[c]))
			c++;
		if (due_ms(&s) <= due_ms(&t->heap[c]))
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
	sift_up(t, i); /* deadlines and calls only move earlier */
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
	return t->count == 0 ? UINT64_MAX : due_ms(&t->heap[0]);
}

bool cn_suspicion_table_take_call(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0)
		return false;
	cn_suspicion *s = &t->heap[0];
	if (s->call_ms > now_ms || s->call_ms >= s->deadline_ms)
		return false;
	assert(s->calls_left > 0);
	*out = *s;
	s->calls_left--;
	s->last_call_ms = s->call_ms;
	schedule_call(s); /* only later: the key grows */
	sift_down(t, 0);
	return true;
}

bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out)
{
	if (t->count == 0 || t->heap[0].deadline_ms > now_ms)
		return false;
	*out = t->heap[0];
	return cn_suspicion_table_remove(t, out->ident);
}
