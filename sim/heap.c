#include "heap.h"

#include <assert.h>
#include <stdlib.h>

#include "util/err.h"

static bool before(const sim_ev *a, const sim_ev *b)
{
	return a->at_us < b->at_us || (a->at_us == b->at_us && a->seq < b->seq);
}

void sim_heap_init(sim_heap *h)
{
	h->ev = NULL;
	h->count = h->cap = 0;
	h->next_seq = 0;
}

void sim_heap_free(sim_heap *h)
{
	for (size_t i = 0; i < h->count; i++)
		free(h->ev[i].data);
	free(h->ev);
	sim_heap_init(h);
}

int sim_heap_push(sim_heap *h, sim_ev *ev)
{
	if (h->count == h->cap) {
		if (h->cap >= SIM_HEAP_MAX)
			return CN_EFULL;
		size_t cap = h->cap ? h->cap * 2 : 1024;
		sim_ev *n = realloc(h->ev, cap * sizeof *n);
		if (n == NULL)
			return CN_ENOMEM;
		h->ev = n;
		h->cap = cap;
	}
	ev->seq = h->next_seq++;
	size_t i = h->count++;
	while (i > 0) { /* sift up: O(log n) */
		size_t p = (i - 1) / 2;
		if (!before(ev, &h->ev[p]))
			break;
		h->ev[i] = h->ev[p];
		i = p;
	}
	h->ev[i] = *ev;
	return 0;
}

bool sim_heap_pop(sim_heap *h, sim_ev *out)
{
	if (h->count == 0)
		return false;
	*out = h->ev[0];
	sim_ev last = h->ev[--h->count];
	size_t i = 0, n = h->count;
	for (;;) { /* sift down: O(log n) */
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && before(&h->ev[c + 1], &h->ev[c]))
			c++;
		if (!before(&h->ev[c], &last))
			break;
		h->ev[i] = h->ev[c];
		i = c;
	}
	if (n > 0)
		h->ev[i] = last;
	assert(h->count == 0 || h->ev[0].at_us >= out->at_us);
	return true;
}
