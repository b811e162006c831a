/* Staged rollouts: the pure rules (docs/rollouts.md).
 *
 * When job J's winning document version V replaces an earlier version P,
 * J's replicas (numbered 0..n-1 by agent/sched.c) move to V in stages:
 *
 *   stage(r) = 0                                   for r < canary
 *            = (canary > 0) + (r - canary) / max_parallel   otherwise
 *
 * Replica r runs V iff stage(r) < done + 1 (stages 0..done-1 are complete
 * and stage `done` is the one rolling out) and V is not reverted;
 * otherwise it runs P. Stage `done` completes when every replica of a
 * stage <= done is up at V for healthy_for_ms: its host is alive and
 * reports `settled` having known at least that stage (or, for this agent's
 * own replicas, its runtime says so). A completed rollout sets done to
 * CN_ROLLOUT_DONE_ALL, so replicas added later start at V.
 *
 * The state is a CRDT carried in member metadata (wire/msg.h
 * cn_rollout_report): done is a max-register, reverted an OR of sticky
 * flags; merging is commutative, associative and idempotent, so any agent
 * computes the same progress from what it has heard, through restarts
 * (each agent also keeps its own state in its store) and partitions (each
 * side advances with the members it sees; the max wins on healing).
 *
 * Failure (a replica at V failed, unhealthy, or restarting): with
 * auto_revert the agent that sees it sets reverted and every agent returns
 * to P; without, the rollout pauses while any live member reports it.
 *
 * No I/O, no clock, no allocation. */
#ifndef CN_AGENT_ROLLOUT_H
#define CN_AGENT_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/msg.h"

enum {
	CN_ROLLOUT_DONE_ALL = CN_ROLLOUT_STAGE_MAX, /* done_stage of a completed rollout */
	CN_ROLLOUT_FAIL_RESTARTS = 3, /* failures in a row at V that count as failed */
};

/* FNV-1a 32 of a job name: how reports name jobs on the wire. */
uint32_t cn_rollout_job_hash(const char *name);

/* Stage of replica r; max_parallel 0 counts as 1. */
uint32_t cn_rollout_stage(uint32_t replica, uint32_t canary, uint32_t max_parallel);
/* Stages of n replicas (0 when n is 0). */
uint32_t cn_rollout_stages(uint32_t n, uint32_t canary, uint32_t max_parallel);

/* What one agent knows of one rollout (J, V): the merge of every report. */
typedef struct cn_rollout_state {
	uint32_t job_hash;
	uint64_t version;
	uint16_t done;      /* stages complete, CN_ROLLOUT_DONE_ALL when all */
	bool reverted;      /* sticky */
} cn_rollout_state;

/* Fold a report into s if it is about (s->job_hash, s->version): done =
 * max, reverted |= flag. Returns true if it was about s. */
bool cn_rollout_merge(cn_rollout_state *s, const cn_rollout_report *r);

/* Whether replica r runs the new version. */
bool cn_rollout_runs_new(const cn_rollout_state *s, uint32_t replica, uint32_t canary,
			 uint32_t max_parallel);

/* Advance s->done over the stages whose replicas are all settled.
 * settled[r] (r < n) says replica r is up at V long enough, as known to
 * this agent (see the header comment); `paused` (a live member reports a
 * failure and auto_revert is off) holds it. Nothing moves once reverted.
 * Returns true if done changed. */
bool cn_rollout_advance(cn_rollout_state *s, const bool *settled, uint32_t n, uint32_t canary,
			uint32_t max_parallel, bool paused);

/* "complete", "reverted", "paused" or "in_progress". */
const char *cn_rollout_state_name(const cn_rollout_state *s, uint32_t n_stages, bool paused);

#endif
