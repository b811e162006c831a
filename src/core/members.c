#include "core/members.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void cn_members_init(cn_members *m, uint32_t max, uint64_t epoch_ms)
{
	assert(max >= 1);
	memset(m, 0, sizeof *m);
	m->max = max;
	m->epoch_ms = epoch_ms;
}

void cn_members_free(cn_members *m)
{
	free(m->recs);
	free(m->slot_of);
	m->recs = NULL;
	m->slot_of = NULL;
	m->count = m->cap = m->slot_of_cap = 0;
}

cn_member_rec *cn_members_find(const cn_members *m, uint32_t ident)
{
	if (ident >= m->slot_of_cap || m->slot_of[ident] == 0)
		return NULL;
	uint32_t i = m->slot_of[ident] - 1;
	assert(i < m->count && m->recs[i].ident == ident);
	return &m->recs[i];
}

static int grow_index(cn_members *m, uint32_t ident)
{
	if (ident < m->slot_of_cap)
		return 0;
	/* Grow by half again, by a sixteenth past 4,096: idents are dense from
	 * 0, so this tracks the pool, and a 10,000-node simulation holds 10^4
	 * of these tables (slack there is 0.5 GiB at a half). */
	uint32_t cap = ident + 1 + (ident + 1) / (ident < 4096 ? 2 : 16);
	if (cap < 64)
		cap = 64;
	uint32_t *s = realloc(m->slot_of, (size_t)cap * sizeof *s);
	if (s == NULL)
		return CN_ENOMEM;
	memset(s + m->slot_of_cap, 0, (size_t)(cap - m->slot_of_cap) * sizeof *s);
	m->slot_of = s;
	m->slot_of_cap = cap;
	return 0;
}

static int grow_recs(cn_members *m)
{
	if (m->count < m->cap)
		return 0;
	/* Grow by a quarter, by a sixteenth past 4,096: at 10^8 entries the
	 * slack is what costs, not the (amortised O(1)) copying.
	 * cn_members_compact trims the rest. */
	uint32_t cap = m->cap == 0 ? 16 : m->cap + m->cap / (m->cap < 4096 ? 4 : 16) + 16;
	if (cap > m->max)
		cap = m->max;
	cn_member_rec *r = realloc(m->recs, (size_t)cap * sizeof *r);
	if (r == NULL)
		return CN_ENOMEM;
	m->recs = r;
	m->cap = cap;
	return 0;
}

int cn_members_add(cn_members *m, const cn_member_rec *rec)
{
	assert(cn_members_find(m, rec->ident) == NULL);
	assert(rec->state <= CN_STATE_MAX_);
	if (m->count >= m->max)
		return CN_EFULL;
	if (grow_index(m, rec->ident) != 0 || grow_recs(m) != 0)
		return CN_ENOMEM;
	m->recs[m->count] = *rec;
	m->slot_of[rec->ident] = ++m->count;
	m->n_state[rec->state]++;
	return 0;
}

void cn_members_swap(cn_members *m, uint32_t i, uint32_t j)
{
	assert(i < m->count && j < m->count);
	if (i == j)
		return;
	cn_member_rec t = m->recs[i];
	m->recs[i] = m->recs[j];
	m->recs[j] = t;
	m->slot_of[m->recs[i].ident] = i + 1;
	m->slot_of[m->recs[j].ident] = j + 1;
}

void cn_members_remove(cn_members *m, uint32_t i, cn_member_rec *out)
{
	assert(i < m->count);
	*out = m->recs[i];
	m->n_state[out->state]--;
	m->slot_of[out->ident] = 0;
	uint32_t last = --m->count;
	if (i != last) {
		m->recs[i] = m->recs[last];
		m->slot_of[m->recs[i].ident] = i + 1;
	}
	assert(cn_members_find(m, out->ident) == NULL);
}

void cn_members_set_state(cn_members *m, cn_member_rec *r, uint8_t state, uint64_t now_ms)
{
	assert(state <= CN_STATE_MAX_ && m->n_state[r->state] > 0);
	assert(now_ms >= m->epoch_ms);
	m->n_state[r->state]--;
	m->n_state[state]++;
	r->state = state;
	uint64_t s = (now_ms - m->epoch_ms) / 1000;
	r->state_change_s = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

uint64_t cn_members_changed_ms(const cn_members *m, const cn_member_rec *r)
{
	return m->epoch_ms + (uint64_t)r->state_change_s * 1000;
}

void cn_members_shuffle(cn_members *m, cn_rng *rng)
{
	for (uint32_t i = m->count; i > 1; i--)
		cn_members_swap(m, i - 1, (uint32_t)cn_rng_below(rng, i));
}

void cn_members_compact(cn_members *m)
{
	uint32_t want = m->count + m->count / 16 + 4;
	if (m->cap > want + want / 8 && m->count > 0) {
		cn_member_rec *r = realloc(m->recs, (size_t)want * sizeof *r);
		if (r != NULL) { /* a failed shrink changes nothing */
			m->recs = r;
			m->cap = want;
		}
	}
	uint32_t top = 0; /* highest ident + 1 */
	for (uint32_t i = 0; i < m->count; i++)
		top = m->recs[i].ident + 1 > top ? m->recs[i].ident + 1 : top;
	uint32_t keep = top + top / 16 + 16;
	if (m->slot_of_cap > keep + keep / 8) {
		uint32_t *s = realloc(m->slot_of, (size_t)keep * sizeof *s);
		if (s != NULL) {
			m->slot_of = s;
			m->slot_of_cap = keep;
		}
	}
	assert(m->cap >= m->count);
}

bool cn_members_check(const cn_members *m)
{
	uint32_t n[CN_STATE_MAX_ + 1] = {0};
	if (m->count > m->max)
		return false;
	for (uint32_t i = 0; i < m->count; i++) {
		const cn_member_rec *r = &m->recs[i];
		if (r->ident >= m->slot_of_cap || m->slot_of[r->ident] != i + 1)
			return false;
		if (r->state > CN_STATE_MAX_)
			return false;
		n[r->state]++;
	}
	return memcmp(n, m->n_state, sizeof n) == 0;
}
