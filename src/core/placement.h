/* Placement: a pure, deterministic function from (members, jobs) to an
 * assignment of replicas to members. docs/placement.md has the design, the
 * reasons and the measured figures; this header is the contract.
 *
 *   1. Eligibility (hard filters, never relaxed): member alive (suspect
 *      counts as alive unless opts say otherwise), every constraint of the
 *      job (label =, !=, in, not in; "arch" and "os" read the member's
 *      arch/os; accelerator present), and the static capacity fits one
 *      replica (cpu_millis <= cpus*1000, memory_mb <= mem_mb, each
 *      accelerator kind's count). A region constraint is a label
 *      constraint and is therefore never violated, overflow included.
 *   2. Preference order per job: weighted rendezvous hashing (HRW) over the
 *      eligible members, score = weight / -log2(u), u = hash(job, member) in
 *      (0, 1); weight = static capacity (cpus, memory) times the job's
 *      `near` and `energy` multipliers; ties by member name. With `spread`,
 *      the order takes the best member of each label value first (ordered
 *      by score), then the second of each, and so on.
 *   3. Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018) computed as a
 *      deferred-acceptance matching: each member accepts at most
 *      cap = ceil(c * q(T / W) * weight) replicas (T replicas wanted in
 *      total, W the total weight of live members, q rounds up to 7
 *      significant bits so one join or leave rarely changes any cap);
 *      replicas go down their job's preference order; a full member keeps
 *      the replicas it prefers (higher priority, then an earlier place in
 *      the job's order, then the canonically earlier job) and sends the
 *      other on. A replica that no eligible member will take is placed
 *      above a cap on its best eligible member without it ("overflow").
 *   4. per_node jobs: one replica on every eligible member, outside caps.
 *   5. Down versus out (with bounded loads, unless opts.live_base): steps
 *      2 and 3 run over the *base*, every member passed in (failed, left
 *      and suspect ones included), with caps from the base's weight; the
 *      callers pass failed and left members until they are out
 *      (agent/sched.c, cn_node_member_out). Then the replicas that
 *      landed on members that are not live are redirected: they continue
 *      down their job's order to live members
 *      with room under caps computed from the live weight, without
 *      displacing anything placed in the first pass (a spread job whose
 *      zones have no room falls back to its whole spread order). So a
 *      failure, a leave or a return moves only that member's replicas;
 *      a member entering or leaving the base (a new join, out) moves
 *      1.4-2 times its share, as a changed base reorders the matching.
 *
 * Only the inputs below are read: names, states, labels, arch, os, cpus,
 * mem_mb, accelerators, power source and quantized coordinates. Load,
 * free memory and battery level are never read, so agents that share a
 * view compute the same assignment.
 *
 * Determinism: members are sorted by name and jobs by (priority desc,
 * name asc) inside, so any permutation of the inputs gives the same
 * result. Every decision is integer arithmetic (hashes, a fixed-point
 * log2 from a table built with integers, 128-bit products); floating point
 * is used only for a conservative prefilter that skips members that cannot
 * enter a job's top list and never changes a decision (a test compares it
 * with the exhaustive scan).
 *
 * majority_only: the function places such jobs like any other and reports,
 * per job, n_eligible (live eligible members this view sees) and
 * n_eligible_known (eligible members in any state but left, i.e. including
 * failed and suspect ones this agent still knows of). `quorum` is
 * 2 * (eligible members that are alive, suspects excluded) >
 * n_eligible_known; the runtime runs a majority_only replica only while
 * its job's quorum holds.
 *
 * Not thread-safe per placer; one placer per thread. No I/O, no clock. */
#ifndef CN_CORE_PLACEMENT_H
#define CN_CORE_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobspec.h"
#include "wire/msg.h"

enum {
	CN_PLACE_MEMBERS_MAX = 1 << 20,
	CN_PLACE_JOBS_MAX = 1 << 20,
	CN_PLACE_COORD_QUANTUM_MS = 5, /* coordinate grid */
	CN_PLACE_WEIGHT_MAX = 65535,   /* static capacity weight */
	CN_PLACE_LOAD_FACTOR_DEFAULT = 1080, /* c = 1.08 (milli) */
	CN_PLACE_RULE_1 = 1, /* protocol version 1's placement */
	CN_PLACE_RULE_2 = 2, /* + stable base (step 5), accelerators accounted */
	CN_PLACE_RULE_NEWEST = CN_PLACE_RULE_2,
};

/* A Vivaldi coordinate on a CN_PLACE_COORD_QUANTUM_MS grid. */
typedef struct cn_place_coord {
	int32_t vec[CN_COORD_DIM];
	int32_t height;
} cn_place_coord;

/* Quantize (round to the grid, clamp to +-2^30 quanta). Returns false and
 * zeroes *out for an invalid coordinate (non-finite). */
bool cn_place_coord_quantize(const cn_coord *c, cn_place_coord *out);

typedef struct cn_place_member {
	const char *name;      /* unique; NUL-terminated; <= CN_NAME_MAX bytes */
	uint8_t state;         /* enum cn_member_state_code */
	const cn_meta *meta;   /* labels, arch, os, cpus, mem_mb, accel, power */
	bool has_coord;
	cn_place_coord coord;
} cn_place_member;

typedef struct cn_place_job {
	const char *name;      /* unique; NUL-terminated; <= CN_JOB_NAME_MAX bytes */
	uint64_t version;      /* passed through to the result */
	const cn_jobspec *spec;
} cn_place_job;

typedef struct cn_place_opts {
	uint32_t load_factor_milli; /* c * 1000, >= 1000; 0 turns bounded loads off */
	bool suspect_is_alive;      /* place on suspect members (default true) */
	bool live_base;             /* preference base = live members only (the
				     * old rule; default false: failed, left and
				     * excluded suspect members stay in the base,
				     * see step 5 above) */
	uint8_t rule;               /* CN_PLACE_RULE_*; 0 = the newest. Rule 1
				     * is version 1's: live base, accelerators
				     * not accounted. Agents of a fleet must use
				     * one rule (agent/sched.h) */
	bool exhaustive;            /* no prefilter: score every eligible member
				     * (tests; same result, slower) */
} cn_place_opts;

void cn_place_opts_default(cn_place_opts *o);

typedef struct cn_place_job_out {
	const char *name;          /* owned by the result */
	uint64_t version;
	uint16_t priority;
	bool per_node;
	bool majority_only;
	uint32_t want;             /* replicas asked (per_node: n_eligible) */
	uint32_t n_placed;         /* min(want, n_eligible) */
	uint32_t first;            /* slots[first .. first + n_placed) */
	uint32_t n_eligible;       /* live eligible members */
	uint32_t n_eligible_known; /* eligible members in any state but left */
	uint32_t n_overflow;       /* replicas placed above a cap */
	uint32_t n_no_room;        /* replicas not placed although eligible
				    * members are live: their accelerator
				    * requests fit no member's devices left */
	bool quorum;               /* 2 * alive eligible (no suspects) > n_eligible_known */
} cn_place_job_out;

typedef struct cn_place_member_out {
	const char *name;          /* owned by the result */
	uint32_t weight;           /* static capacity weight, 0 if not live */
	uint32_t cap;              /* bounded-load cap (UINT32_MAX when off) */
	uint32_t load;             /* replicas of replicas-jobs */
	uint32_t per_node_load;    /* replicas of per_node jobs */
} cn_place_member_out;

/* The assignment. jobs[] is in canonical order (priority desc, name asc);
 * members[] sorted by name (live or not). For job j, replica r runs on
 * members[slots[jobs[j].first + r]]; replica 0 is the job's most preferred
 * member. Owns all its memory; free with cn_place_result_free. */
typedef struct cn_place_result {
	size_t n_jobs;
	cn_place_job_out *jobs;
	size_t n_members;
	cn_place_member_out *members;
	size_t n_slots;
	uint32_t *slots;
	/* Per slot, the member whose place in the base this replica holds:
	 * the slot's own member, or for a replica redirected off a member
	 * that is down (step 5), that member (paired in base order). Callers
	 * that number replicas key the numbers on it, so that a failure or a
	 * return renumbers no survivor. Reorder it with slots. */
	uint32_t *base_of;
	/* figures */
	uint64_t total_load;      /* sum of load (not per_node) */
	uint64_t total_weight;    /* of live members */
	uint64_t proposals;       /* deferred-acceptance proposals made */
	uint64_t evictions;       /* replicas sent on by a full member */
	uint64_t overflow;        /* replicas above a cap */
	uint64_t scored;          /* exact scores computed (after the prefilter) */
	uint64_t list_extensions; /* preference lists recomputed in full */
	char *names_;             /* arena behind the name pointers */
} cn_place_result;

typedef struct cn_placer cn_placer;

/* A placer holds the log2 table and reusable scratch. Returns 0 or
 * CN_ENOMEM. Free with cn_placer_free. */
int cn_placer_new(cn_placer **out);
void cn_placer_free(cn_placer *p);

/* Place jobs over members. Inputs are read only during the call. *out is
 * overwritten (call cn_place_result_free first if it holds a result).
 * Returns 0, CN_EINVAL (a NULL/empty/too long name, a NULL meta or spec,
 * load_factor_milli in 1..999), CN_EEXIST (two members or two jobs with
 * one name), CN_ELIMIT (above CN_PLACE_*_MAX) or CN_ENOMEM; on error *out
 * is empty. */
int cn_place(cn_placer *p, const cn_place_member *members, size_t n_members,
	     const cn_place_job *jobs, size_t n_jobs, const cn_place_opts *opts,
	     cn_place_result *out);
void cn_place_result_free(cn_place_result *r);

/* The job of that name, or NULL. O(log n). */
const cn_place_job_out *cn_place_result_job(const cn_place_result *r, const char *name);

/* `canopy plan`: what changes from `before` to `after`. Replicas are
 * compared as sets of members per job (a replica index changing its member
 * while the set stays is not a move). on_move (may be NULL) is called for
 * each change in job-name then member-name order; a non-zero return stops
 * and is returned. */
enum cn_place_move_kind {
	CN_PLACE_START = 1, /* job gets a replica on member */
	CN_PLACE_STOP = 2,  /* job's replica on member stops */
};
typedef struct cn_place_move {
	uint8_t kind;
	const char *job;
	const char *member;
} cn_place_move;
typedef struct cn_place_diff_stats {
	uint64_t started, stopped, kept;
	uint64_t jobs_added, jobs_removed;
} cn_place_diff_stats;
typedef int (*cn_place_move_cb)(void *ctx, const cn_place_move *mv);
int cn_place_diff(const cn_place_result *before, const cn_place_result *after,
		  cn_place_move_cb on_move, void *ctx, cn_place_diff_stats *stats);

#endif
