#include "core/queue.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "util/err.h"
#include "wire/proto.h"

#define NONE UINT32_MAX

uint32_t cn_queue_retransmit_limit(uint32_t mult, uint32_t n)
{
	double scale = ceil(log10((double)n + 1.0));
	double limit = (double)mult * scale;
	if (limit < 1.0)
		return 1;
	return limit > CN_QUEUE_TRANSMIT_MAX ? CN_QUEUE_TRANSMIT_MAX : (uint32_t)limit;
}

void cn_queue_init(cn_queue *q, uint32_t max)
{
	assert(max >= 1 && max < NONE);
	q->e = NULL;
	q->count = q->cap = 0;
	q->max = max;
	for (int b = 0; b < CN_QUEUE_CLASSES * CN_QUEUE_BUCKETS; b++)
		q->head[b] = q->tail[b] = NONE;
	cn_idmap_init(&q->by_ident);
	q->dropped = q->superseded = 0;
}

void cn_queue_free(cn_queue *q)
{
	free(q->e);
	cn_idmap_free(&q->by_ident);
	q->e = NULL;
	q->count = q->cap = 0;
}

/* The list an item belongs to: urgent lists first (fill order). */
static uint32_t list_of(const cn_queue_item *it)
{
	return (it->urgent ? 0u : (uint32_t)CN_QUEUE_BUCKETS) + it->transmits;
}

static void unlink_entry(cn_queue *q, uint32_t i)
{
	cn_queue_entry *x = &q->e[i];
	uint32_t b = list_of(&x->item);
	if (x->prev != NONE)
		q->e[x->prev].next = x->next;
	else
		q->head[b] = x->next;
	if (x->next != NONE)
		q->e[x->next].prev = x->prev;
	else
		q->tail[b] = x->prev;
}

static void link_front(cn_queue *q, uint32_t i)
{
	uint32_t b = list_of(&q->e[i].item);
	q->e[i].prev = NONE;
	q->e[i].next = q->head[b];
	if (q->head[b] != NONE)
		q->e[q->head[b]].prev = i;
	else
		q->tail[b] = i;
	q->head[b] = i;
}

static void link_back(cn_queue *q, uint32_t i)
{
	uint32_t b = list_of(&q->e[i].item);
	q->e[i].next = NONE;
	q->e[i].prev = q->tail[b];
	if (q->tail[b] != NONE)
		q->e[q->tail[b]].next = i;
	else
		q->head[b] = i;
	q->tail[b] = i;
}

/* Remove entry i: unlink it, move the last entry into its place. */
static void remove_at(cn_queue *q, uint32_t i)
{
	assert(i < q->count);
	unlink_entry(q, i);
	(void)cn_idmap_del(&q->by_ident, q->e[i].item.ident);
	uint32_t last = --q->count;
	if (i != last) {
		cn_queue_entry *m = &q->e[last];
		q->e[i] = *m;
		uint32_t b = list_of(&m->item);
		if (m->prev != NONE)
			q->e[m->prev].next = i;
		else
			q->head[b] = i;
		if (m->next != NONE)
			q->e[m->next].prev = i;
		else
			q->tail[b] = i;
		int rc = cn_idmap_put(&q->by_ident, q->e[i].item.ident, i);
		assert(rc == 0); /* replaces an existing key: no allocation */
		(void)rc;
	}
	if (q->count == 0) { /* an idle node keeps no queue memory */
		free(q->e);
		q->e = NULL;
		q->cap = 0;
	}
}

/* Drop the bulk entry sent most often (the oldest among those); urgent
 * entries go only when no bulk one is left. */
static void drop_one(cn_queue *q)
{
	for (int b = CN_QUEUE_CLASSES * CN_QUEUE_BUCKETS - 1; b >= 0; b--) {
		if (q->tail[b] != NONE) {
			remove_at(q, q->tail[b]);
			q->dropped++;
			return;
		}
	}
	assert(0 && "count > 0 but every bucket empty");
}

static bool kind_is_meta(uint8_t kind) { return kind == CN_MSG_META; }

/* Supersede in place: returns true when the push is fully handled. */
static bool supersede(cn_queue *q, uint32_t i, uint8_t kind, uint32_t from, bool urgent)
{
	cn_queue_item *it = &q->e[i].item;
	if (kind_is_meta(kind) && it->kind != CN_MSG_ALIVE && !kind_is_meta(it->kind))
		return true; /* keep the suspect/dead/leave news */
	uint8_t keep_kind = kind_is_meta(kind) ? it->kind : kind;
	uint8_t keep_urgent = kind_is_meta(kind) ? (uint8_t)(it->urgent | urgent) : (uint8_t)urgent;
	unlink_entry(q, i);
	it->kind = keep_kind;
	it->urgent = keep_urgent;
	it->from = from;
	it->transmits = 0;
	link_front(q, i);
	q->superseded++;
	return true;
}

static int grow(cn_queue *q)
{
	if (q->count < q->cap)
		return 0;
	uint32_t cap = q->cap == 0 ? 8 : 2 * q->cap;
	if (cap > q->max)
		cap = q->max;
	cn_queue_entry *e = realloc(q->e, (size_t)cap * sizeof *e);
	if (e == NULL)
		return CN_ENOMEM;
	q->e = e;
	q->cap = cap;
	return 0;
}

int cn_queue_push(cn_queue *q, uint32_t ident, uint8_t kind, uint32_t from)
{
	bool urgent = kind != CN_MSG_ALIVE && !kind_is_meta(kind);
	return cn_queue_push_class(q, ident, kind, from, urgent);
}

int cn_queue_push_class(cn_queue *q, uint32_t ident, uint8_t kind, uint32_t from, bool urgent)
{
	assert(kind >= CN_MSG_ALIVE && kind <= CN_MSG_META);
	uint32_t i;
	if (cn_idmap_get(&q->by_ident, ident, &i) && supersede(q, i, kind, from, urgent))
		return 0;
	if (q->count == q->max)
		drop_one(q);
	if (grow(q) != 0)
		return CN_ENOMEM;
	i = q->count;
	if (cn_idmap_put(&q->by_ident, ident, i) != 0)
		return CN_ENOMEM;
	q->count++;
	q->e[i].item = (cn_queue_item){.ident = ident, .from = from, .kind = kind,
				       .urgent = (uint8_t)urgent};
	link_front(q, i);
	assert(q->count <= q->max);
	return 0;
}

void cn_queue_remove(cn_queue *q, uint32_t ident)
{
	uint32_t i;
	if (cn_idmap_get(&q->by_ident, ident, &i))
		remove_at(q, i);
}

bool cn_queue_find(const cn_queue *q, uint32_t ident, cn_queue_item *out)
{
	uint32_t i;
	if (!cn_idmap_get(&q->by_ident, ident, &i))
		return false;
	*out = q->e[i].item;
	return true;
}

/* After a fill: bump the sent ones (or retire them at the limit), drop the
 * stale ones. Done after the scan so that moving entries between buckets
 * cannot make the scan visit one twice. */
static void settle(cn_queue *q, const uint32_t *sent, uint32_t n_sent, const uint32_t *stale,
		   uint32_t n_stale, uint32_t limit)
{
	for (uint32_t k = 0; k < n_sent; k++) {
		uint32_t i;
		if (!cn_idmap_get(&q->by_ident, sent[k], &i))
			continue;
		if ((uint32_t)q->e[i].item.transmits + 1 >= limit) {
			remove_at(q, i);
			continue;
		}
		unlink_entry(q, i);
		q->e[i].item.transmits++;
		link_back(q, i);
	}
	for (uint32_t k = 0; k < n_stale; k++)
		cn_queue_remove(q, stale[k]);
}

uint32_t cn_queue_fill(cn_queue *q, uint32_t limit, size_t room, cn_queue_emit_fn emit,
		       void *ctx)
{
	assert(limit >= 1 && limit <= CN_QUEUE_TRANSMIT_MAX);
	uint32_t sent[CN_QUEUE_FILL_MAX], stale[CN_QUEUE_FILL_MAX];
	uint32_t n_sent = 0, n_stale = 0, seen = 0, misses = 0;
	for (int b = 0; b < CN_QUEUE_CLASSES * CN_QUEUE_BUCKETS && seen < CN_QUEUE_FILL_MAX; b++) {
		for (uint32_t i = q->head[b]; i != NONE && seen < CN_QUEUE_FILL_MAX;
		     i = q->e[i].next) {
			if (room < CN_QUEUE_MSG_MIN || misses >= CN_QUEUE_MISSES_MAX)
				goto done;
			seen++;
			int used = emit(ctx, &q->e[i].item, room);
			misses = used == 0 ? misses + 1 : 0;
			if (used < 0) {
				stale[n_stale++] = q->e[i].item.ident;
			} else if (used > 0) {
				assert((size_t)used <= room);
				room -= (size_t)used;
				sent[n_sent++] = q->e[i].item.ident;
			}
		}
	}
done:
	settle(q, sent, n_sent, stale, n_stale, limit);
	return n_sent;
}
