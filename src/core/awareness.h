/* Lifeguard local health awareness ("LHA" in the Lifeguard paper).
 *
 * A node that is itself slow (CPU starved, paused, on a congested link)
 * sees its own probes fail and then accuses healthy peers. Lifeguard lets
 * the node notice that: a saturating score in 0 .. max-1 goes up when the
 * node's own probing looks unhealthy (a failed probe, each expected nack
 * that did not arrive, having to refute a suspicion of itself) and down by
 * one on every successful probe. Probe interval and probe timeout are then
 * multiplied by (score + 1), so an unhealthy node probes more gently and
 * waits longer before it accuses anyone.
 *
 * Pure value type: no allocation, no time. Owned by the node. */
#ifndef CN_CORE_AWARENESS_H
#define CN_CORE_AWARENESS_H

#include <stdint.h>

typedef struct cn_awareness {
	uint32_t max;   /* ceiling: score stays in 0 .. max-1; max >= 1 */
	uint32_t score;
} cn_awareness;

/* max >= 1 (max == 1 disables awareness: the score stays 0). */
void cn_awareness_init(cn_awareness *a, uint32_t max);
/* Add delta (may be negative) and saturate into 0 .. max-1. */
void cn_awareness_apply(cn_awareness *a, int32_t delta);
uint32_t cn_awareness_score(const cn_awareness *a);
/* timeout_ms * (score + 1), saturating at UINT32_MAX. */
uint32_t cn_awareness_scale_ms(const cn_awareness *a, uint32_t timeout_ms);

#endif
