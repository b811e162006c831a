/* Scheduling glue: from what this agent knows (its membership view and its
 * policy replica's job documents) to the replicas it runs.
 *
 * Every agent runs the same pure placement (core/placement.h) over the same
 * replicated inputs, so every agent that shares a view computes the same
 * assignment and starts exactly its own share; nobody coordinates. Inputs:
 * members in any state but left (placement filters the live ones), their
 * static metadata and quantized coordinates, and every live `job` document
 * (body = the job's spec map; the document name is the job name, its
 * version the job version). Never live load.
 *
 * A majority_only job's replica runs here only while this agent sees a
 * majority of that job's eligible members (placement reports it as quorum).
 *
 * Owned by the agent's loop thread; no I/O but reading the replica. */
#ifndef CN_AGENT_SCHED_H
#define CN_AGENT_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobspec.h"
#include "core/node.h"
#include "core/placement.h"
#include "core/policy.h"
#include "runtime/runtime.h"
#include "util/buf.h"

typedef struct cn_sched_job {
	char name[CN_JOB_NAME_MAX + 1];
	uint64_t version;
	cn_jobspec spec;
} cn_sched_job;

typedef struct cn_sched_jobs {
	cn_sched_job *v;
	size_t n, cap;
	uint64_t bad;          /* stored job documents that do not decode */
} cn_sched_jobs;

/* Append a job from a spec map's msgpack bytes. err (may be NULL) names
 * the field on failure. @return 0, a jobspec decode error, CN_ENOMEM. */
int cn_sched_jobs_add(cn_sched_jobs *j, const char *name, uint64_t version, const uint8_t *spec,
		      size_t len, bool strict, cn_jobspec_err *err);
/* Every live job document of the replica (tombstones skipped). */
int cn_sched_jobs_load(cn_sched_jobs *j, cn_policy *p);
void cn_sched_jobs_free(cn_sched_jobs *j);

typedef struct cn_sched_view {
	cn_member *members;    /* every member until it is out, self included */
	cn_place_member *in;
	size_t n;
	uint8_t rule;          /* placement rule (cn_sched_rule); 0 = newest */
} cn_sched_view;

/* The placement rule every agent of the fleet can compute: the newest
 * rule while every alive or suspect member advertises a protocol version
 * that has it (vmax), else the older one. During a rolling upgrade the
 * new agents keep placing as the old ones do, so no two agents place the
 * same view differently (a majority_only job would run twice); once the
 * last old agent is gone or failed, all switch together. */
uint8_t cn_sched_rule(const cn_member *members, size_t n);

int cn_sched_view_load(cn_sched_view *v, const cn_node *n);
void cn_sched_view_free(cn_sched_view *v);

/* Place jobs over the view. *out is overwritten. */
int cn_sched_place(cn_placer *pl, const cn_sched_view *v, const cn_sched_jobs *j,
		   cn_place_result *out);

/* The replicas of `r` that fall to member `self` and may run now, as
 * runtime wants pointing into j. A majority_only replica needs its job's
 * quorum, and this device not `fenced`. Returns the count (may exceed cap:
 * then only cap were written).
 *
 * Fencing: quorum is counted in this device's view, and a device cut off
 * alone declares its peers failed one probe at a time (with Lifeguard, at
 * an ever slower pace), so it can keep "seeing a majority" for minutes
 * while the rest of the fleet has declared it failed and started the
 * replica elsewhere (sim/scenarios/placement-isolate.yaml: 84 s of two
 * copies). Its own failed probes tell it sooner: callers pass
 * cn_sched_fenced(...) and majority_only replicas stop while it holds. */
size_t cn_sched_wants(const cn_place_result *r, const cn_sched_jobs *j, const char *self,
		      bool fenced, cn_rt_want *out, size_t cap);

/* Fenced: the Lifeguard local-health score (core/node.h) is at or above
 * CN_SCHED_FENCE_HEALTH and the last probe failed. An isolated device gets
 * there with its first failed probe (no helper even nacks: +3); under 10 %
 * loss a healthy one stays below. The score alone would keep a device
 * fenced for ~25 s after a heal (Lifeguard probes a device with a high
 * score slowly, and each success lowers it by one), while one acked probe
 * already shows it reaches its peers again. */
enum { CN_SCHED_FENCE_HEALTH = 3 };
static inline bool cn_sched_fenced(uint32_t health_score, bool last_probe_ok)
{
	return health_score >= CN_SCHED_FENCE_HEALTH && !last_probe_ok;
}

/* Start hold for majority_only replicas. Quorum and fencing are judged
 * in each device's own view, and views disagree for a moment after every
 * change: a device returning from isolation sees itself as the host
 * before the fleet has learnt it is back, and a device that has just
 * declared the host failed may still count members of the host's side.
 * So a majority_only replica that is not already running here starts only
 * after it has been wanted here continuously for hold_ms (the agent: 5
 * probe periods); stopping is never delayed. Replicas of other jobs pass.
 * One table per device; entries are dropped when no longer wanted. */
typedef struct cn_sched_hold_ent {
	uint32_t job_hash;
	uint32_t replica;
	uint64_t since_ms;
} cn_sched_hold_ent;
typedef struct cn_sched_hold {
	cn_sched_hold_ent *v;
	size_t n, cap;
	uint64_t held;          /* wants held back, counted per call */
} cn_sched_hold;
/* Is replica `replica` of `job` running here now (the caller's runtime)? */
typedef bool (*cn_sched_running_fn)(void *ctx, const char *job, uint32_t replica);
/* Filter want[0..n) in place; returns the new count. On allocation
 * failure the hold table is left as it was and held-back replicas stay
 * held (CN_ENOMEM is not returned: holding is the safe side). */
size_t cn_sched_hold_filter(cn_sched_hold *h, cn_rt_want *want, size_t n, uint64_t now_ms,
			    uint64_t hold_ms, cn_sched_running_fn running, void *ctx);
void cn_sched_hold_free(cn_sched_hold *h);

/* Renderings for the admin plane. */
/* `canopy jobs`: one line (or JSON object) per job: name, version, wanted,
 * placed, eligible, quorum, hosting members. */
void cn_sched_render_jobs(const cn_place_result *r, bool json, cn_buf *out);
/* The JSON array of render_jobs, as one value of an enclosing writer. */
struct cn_json;
void cn_sched_jobs_json(const cn_place_result *r, struct cn_json *jw);
/* `canopy plan -f FILE`: where every replica of `after` runs and what
 * moves relative to `before`. */
void cn_sched_render_plan(const cn_place_result *before, const cn_place_result *after,
			  bool json, cn_buf *out);

#endif
