/* Staged rollouts, the pure rules; see rollout.h. */
#include "agent/rollout.h"

#include <assert.h>

static_assert(CN_ROLLOUT_DONE_ALL > 10000 + 1, "DONE_ALL must exceed every stage count");

uint32_t cn_rollout_job_hash(const char *name)
{
	uint32_t h = 2166136261u;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

uint32_t cn_rollout_stage(uint32_t replica, uint32_t canary, uint32_t max_parallel)
{
	if (max_parallel == 0)
		max_parallel = 1;
	if (replica < canary)
		return 0;
	return (canary > 0 ? 1u : 0u) + (replica - canary) / max_parallel;
}

uint32_t cn_rollout_stages(uint32_t n, uint32_t canary, uint32_t max_parallel)
{
	return n == 0 ? 0 : cn_rollout_stage(n - 1, canary, max_parallel) + 1;
}

bool cn_rollout_merge(cn_rollout_state *s, const cn_rollout_report *r)
{
	if (r->job_hash != s->job_hash || r->version != s->version)
		return false;
	if (r->done_stage > s->done)
		s->done = r->done_stage;
	if (r->flags & CN_ROLLOUT_REVERTED)
		s->reverted = true;
	return true;
}

bool cn_rollout_runs_new(const cn_rollout_state *s, uint32_t replica, uint32_t canary,
			 uint32_t max_parallel)
{
	return !s->reverted && cn_rollout_stage(replica, canary, max_parallel) <= s->done;
}

bool cn_rollout_advance(cn_rollout_state *s, const bool *settled, uint32_t n, uint32_t canary,
			uint32_t max_parallel, bool paused)
{
	uint16_t was = s->done;
	uint32_t stages = cn_rollout_stages(n, canary, max_parallel);
	/* Nothing to judge with no replicas placed, nor when fewer stages are
	 * placed than are known done (a view that sees few members, e.g.
	 * just after a restart): completing here would complete the
	 * rollout for the whole fleet. */
	if (s->reverted || paused || s->done == CN_ROLLOUT_DONE_ALL || n == 0 || s->done >= stages)
		return false;
	/* Replicas are in stage order, so the replicas of stages <= done are
	 * a prefix; each pass extends it by one stage. At most `stages`
	 * passes over n replicas. */
	while (s->done < stages) {
		bool all = true;
		for (uint32_t r = 0; r < n && all; r++)
			if (cn_rollout_stage(r, canary, max_parallel) <= s->done && !settled[r])
				all = false;
		if (!all)
			break;
		s->done++;
	}
	if (s->done == stages) /* every stage judged settled, just now */
		s->done = CN_ROLLOUT_DONE_ALL;
	assert(s->done >= was);
	return s->done != was;
}

const char *cn_rollout_state_name(const cn_rollout_state *s, uint32_t n_stages, bool paused)
{
	if (s->reverted)
		return "reverted";
	if (s->done == CN_ROLLOUT_DONE_ALL || s->done >= n_stages)
		return "complete";
	return paused ? "paused" : "in_progress";
}
