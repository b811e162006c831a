#include "core/awareness.h"

#include <assert.h>
#include <stddef.h>

void cn_awareness_init(cn_awareness *a, uint32_t max)
{
	assert(a != NULL);
	assert(max >= 1);
	a->max = max;
	a->score = 0;
}

void cn_awareness_apply(cn_awareness *a, int32_t delta)
{
	assert(a->score < a->max);
	/* Work in int64 so neither a large delta nor the ceiling overflows. */
	int64_t s = (int64_t)a->score + delta;
	if (s < 0)
		s = 0;
	if (s > (int64_t)a->max - 1)
		s = (int64_t)a->max - 1;
	a->score = (uint32_t)s;
	assert(a->score < a->max);
}

uint32_t cn_awareness_score(const cn_awareness *a)
{
	assert(a->score < a->max);
	return a->score;
}

uint32_t cn_awareness_scale_ms(const cn_awareness *a, uint32_t timeout_ms)
{
	assert(a->score < a->max);
	uint64_t t = (uint64_t)timeout_ms * ((uint64_t)a->score + 1);
	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
