#include "core/outbox.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void cn_outbox_init(cn_outbox *ob, uint32_t max)
{
	assert(max >= 1);
	memset(ob, 0, sizeof *ob);
	ob->max = max;
}

void cn_outbox_free(cn_outbox *ob)
{
	cn_outbox_release(ob);
	for (uint32_t i = 0; i < ob->count; i++)
		free((void *)ob->q[(ob->head + i) % ob->cap].data);
	free(ob->q);
	memset(ob, 0, sizeof *ob);
}

void cn_outbox_release(cn_outbox *ob)
{
	free(ob->popped);
	ob->popped = NULL;
}

static int grow(cn_outbox *ob)
{
	if (ob->count < ob->cap)
		return 0;
	uint32_t cap = ob->cap == 0 ? 8 : 2 * ob->cap;
	if (cap > ob->max)
		cap = ob->max;
	cn_out *q = malloc((size_t)cap * sizeof *q);
	if (q == NULL)
		return CN_ENOMEM;
	for (uint32_t i = 0; i < ob->count; i++) /* unroll the ring */
		q[i] = ob->q[(ob->head + i) % ob->cap];
	free(ob->q);
	ob->q = q;
	ob->cap = cap;
	ob->head = 0;
	return 0;
}

static cn_out *slot(cn_outbox *ob)
{
	if (ob->count >= ob->max) {
		ob->dropped++;
		return NULL;
	}
	if (grow(ob) != 0)
		return NULL;
	cn_out *o = &ob->q[(ob->head + ob->count++) % ob->cap];
	memset(o, 0, sizeof *o);
	return o;
}

int cn_outbox_push_owned(cn_outbox *ob, uint8_t kind, const cn_addr *to, uint32_t stream_id,
			 uint8_t *data, size_t len)
{
	assert(kind == CN_OUT_DATAGRAM || kind == CN_OUT_STREAM);
	cn_out *o = slot(ob);
	if (o == NULL) {
		free(data);
		return ob->count >= ob->max ? CN_EFULL : CN_ENOMEM;
	}
	o->kind = kind;
	o->to = *to;
	o->stream_id = stream_id;
	o->data = data;
	o->len = len;
	return 0;
}

int cn_outbox_push_copy(cn_outbox *ob, uint8_t kind, const cn_addr *to, uint32_t stream_id,
			const uint8_t *data, size_t len)
{
	assert(len > 0);
	uint8_t *copy = malloc(len);
	if (copy == NULL)
		return CN_ENOMEM;
	memcpy(copy, data, len);
	return cn_outbox_push_owned(ob, kind, to, stream_id, copy, len);
}

int cn_outbox_push_event(cn_outbox *ob, const cn_event *ev)
{
	cn_out *o = slot(ob);
	if (o == NULL)
		return ob->count >= ob->max ? CN_EFULL : CN_ENOMEM;
	o->kind = CN_OUT_EVENT;
	o->event = *ev;
	return 0;
}

int cn_outbox_pop(cn_outbox *ob, cn_out *out)
{
	cn_outbox_release(ob);
	if (ob->count == 0)
		return CN_EAGAIN;
	*out = ob->q[ob->head];
	ob->head = (ob->head + 1) % ob->cap;
	ob->count--;
	ob->popped = (uint8_t *)out->data; /* ours until the next touch */
	if (ob->count == 0 && ob->cap > 16) {
		/* A burst (a join merges thousands of members, each an event)
		 * must not pin a large ring on each of 10,000 simulated nodes. */
		free(ob->q);
		ob->q = NULL;
		ob->cap = 0;
		ob->head = 0;
	}
	assert(out->kind >= CN_OUT_DATAGRAM && out->kind <= CN_OUT_EVENT);
	return 0;
}
