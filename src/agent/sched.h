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
	cn_member *members;    /* every member but left ones, self included */
	cn_place_member *in;
	size_t n;
} cn_sched_view;

int cn_sched_view_load(cn_sched_view *v, const cn_node *n);
void cn_sched_view_free(cn_sched_view *v);

/* Place jobs over the view. *out is overwritten. */
int cn_sched_place(cn_placer *pl, const cn_sched_view *v, const cn_sched_jobs *j,
		   cn_place_result *out);

/* The replicas of `r` that fall to member `self` and may run now (quorum
 * for majority_only jobs), as runtime wants pointing into j. Returns the
 * count (may exceed cap: then only cap were written). */
size_t cn_sched_wants(const cn_place_result *r, const cn_sched_jobs *j, const char *self,
		      cn_rt_want *out, size_t cap);

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
