/* Hybrid logical clock; see hlc.h for the properties and packing. */
#include "core/hlc.h"

#include <assert.h>
#include <string.h>

#include "util/err.h"

static_assert(CN_HLC_LOGICAL_BITS > 0 && CN_HLC_LOGICAL_BITS < 32, "logical field width");

void cn_hlc_init(cn_hlc *h, uint64_t max_drift_ms)
{
	memset(h, 0, sizeof *h);
	h->max_drift_ms = max_drift_ms ? max_drift_ms : CN_HLC_DRIFT_DEFAULT_MS;
}

void cn_hlc_restore(cn_hlc *h, uint64_t ts)
{
	if (ts > h->last)
		h->last = ts;
}

/* The next timestamp above both floor and (wall_ms, 0). */
static uint64_t advance(uint64_t floor, uint64_t wall_ms)
{
	uint64_t wall = cn_hlc_make(wall_ms, 0);
	if (wall > floor)
		return wall;
	/* floor + 1 carries a full logical counter into the physical part:
	 * the overflow rule of hlc.h falls out of the packing. */
	assert(floor < UINT64_MAX);
	return floor + 1;
}

int cn_hlc_now(cn_hlc *h, uint64_t wall_ms, uint64_t *out)
{
	if (wall_ms > CN_HLC_PHYSICAL_MAX || h->last == UINT64_MAX)
		return CN_ERANGE;
	uint64_t ts = advance(h->last, wall_ms);
	assert(ts > h->last);
	h->last = ts;
	*out = ts;
	return 0;
}

int cn_hlc_check(const cn_hlc *h, uint64_t remote, uint64_t wall_ms)
{
	if (wall_ms > CN_HLC_PHYSICAL_MAX)
		return CN_ERANGE;
	uint64_t limit = wall_ms + h->max_drift_ms; /* no overflow: both < 2^63 */
	if (cn_hlc_physical(remote) > limit)
		return CN_ERANGE;
	return 0;
}

int cn_hlc_update(cn_hlc *h, uint64_t remote, uint64_t wall_ms, uint64_t *out)
{
	if (cn_hlc_check(h, remote, wall_ms) != 0 || remote == UINT64_MAX) {
		h->refused_future++;
		return CN_ERANGE;
	}
	uint64_t floor = remote > h->last ? remote : h->last;
	if (floor == UINT64_MAX) {
		h->refused_future++;
		return CN_ERANGE;
	}
	uint64_t ts = advance(floor, wall_ms);
	assert(ts > remote && ts > h->last);
	h->last = ts;
	if (out != NULL)
		*out = ts;
	return 0;
}

int cn_hlc_cmp(uint64_t a, const char *node_a, uint64_t b, const char *node_b)
{
	if (a != b)
		return a < b ? -1 : 1;
	int c = strcmp(node_a, node_b);
	return (c > 0) - (c < 0);
}
