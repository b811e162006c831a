/* sim_scenario: a simulation scenario read from YAML (sim/scenarios/).
 *
 * The file format is documented in docs/sim.md; in short:
 *
 *   name: steady            nodes: 64        duration: 120s     seed: 1
 *   sample: 1s              start: {spread: 2s, seeds: 3, mode: join|converged}
 *   network: {sites, intra_ms, inter_ms: [lo, hi], link_spread_ms,
 *             jitter_ms, jitter_sigma, loss, duplicate, bandwidth,
 *             queue_bytes, stream_timeout}
 *   node: {any cn_node_config integer field by name, lifeguard: bool}
 *   expect: {false_positives_max, detection_p99_ms_max, converged, ...}
 *   policy: on | {enabled, persist, settle}   (policy replicas, docs/sim.md)
 *   placement: {every: 1s, jobs: [{name, replicas | per_node, priority,
 *               partition, spread}]}         (placement agreement, docs/sim.md)
 *   timeline: [ {at: 30s, crash: {random: 1}}, ... ]
 *
 * Every error names the file, the line and the field. Durations are "250ms",
 * "3s", "2m" or a bare number of seconds; counts are integers or "25%".
 * Limits: SIM_ACTIONS_MAX timeline entries, SIM_SETS_MAX sets per action,
 * SIM_IDS_MAX explicit ids per selector, SIM_NODES_MAX nodes. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/node.h"

enum {
	SIM_NODES_MAX = 1u << 20,
	SIM_ACTIONS_MAX = 4096,
	SIM_SETS_MAX = 8,
	SIM_IDS_MAX = 65536,
	SIM_SITES_MAX = 64,
};

enum sim_sel_kind {
	SEL_ALL = 1, SEL_LIVE, SEL_CRASHED, SEL_IDS, SEL_RANGE, SEL_FIRST, SEL_LAST,
	SEL_RANDOM, SEL_LABEL,
};

/* A set of nodes, resolved against the world when the action runs. */
typedef struct sim_sel {
	uint8_t kind;
	bool fraction;        /* count is a fraction of the node count */
	double count;
	uint32_t lo, hi;      /* SEL_RANGE: [lo, hi) */
	uint32_t n_ids;
	uint32_t *ids;        /* SEL_IDS: owned */
	char key[CN_LABEL_KEY_MAX + 1], value[CN_LABEL_VALUE_MAX + 1];
} sim_sel;

/* Network parameters; the timeline's `net` action changes some of them. */
typedef struct sim_netcfg {
	uint32_t sites;          /* site=s<i> label, i = node index mod sites */
	double intra_ms;         /* one-way base latency within a site */
	double inter_lo_ms, inter_hi_ms; /* between sites: from site positions */
	double link_spread_ms;   /* fixed per-link extra, uniform [0, spread) */
	double jitter_ms;        /* mean per-packet extra, lognormal */
	double jitter_sigma;
	double loss, duplicate;  /* probabilities per datagram */
	uint64_t bandwidth;      /* bytes/s per node egress, 0 = unlimited */
	uint64_t queue_bytes;    /* egress queue beyond which datagrams drop */
	uint64_t stream_timeout_us;
} sim_netcfg;

enum sim_net_field {
	NF_INTRA = 1 << 0, NF_INTER = 1 << 1, NF_JITTER = 1 << 2, NF_SIGMA = 1 << 3,
	NF_LOSS = 1 << 4, NF_DUP = 1 << 5, NF_BW = 1 << 6, NF_QUEUE = 1 << 7,
	NF_SPREAD = 1 << 8, NF_STREAM_TIMEOUT = 1 << 9,
};

enum sim_act_type {
	ACT_PARTITION = 1, ACT_BLOCK, ACT_HEAL, ACT_FLAP, ACT_CRASH, ACT_RESTART, ACT_PAUSE,
	ACT_SLOW, ACT_SKEW, ACT_LEAVE, ACT_JOIN, ACT_MASS_RESTART, ACT_CHURN, ACT_NET,
	ACT_BANDWIDTH, ACT_WRITE,
};

enum { SIM_WRITE_PREFIX_MAX = 64 };

typedef struct sim_action {
	uint64_t at_us;
	uint32_t line;
	uint8_t type;
	uint32_t n_sets;
	sim_sel sets[SIM_SETS_MAX]; /* partition sets; block from,to; flap a,b; else nodes */
	uint64_t for_us, period_us, down_us, over_us, delay_us, jitter_us;
	int64_t offset_ms;
	int32_t drift_ppm;
	uint32_t count;
	double rate;
	uint64_t bandwidth, queue_bytes;
	sim_netcfg net;
	uint32_t net_mask;          /* enum sim_net_field */
	/* ACT_WRITE: operator writes of policy documents "<prefix>-<j mod names>"
	 * (j counts this action's writes; names 0 = every write a new name), on
	 * a random live node of sets[0] (all live nodes without one) that is in
	 * partition group `side` (-1: any); `count` at once (spread over `over`)
	 * or Poisson at `rate` per second during `for`; `meta`: the writer also
	 * changes a metadata label at the same instant. */
	char prefix[SIM_WRITE_PREFIX_MAX + 1];
	uint32_t names;
	int32_t side;
	bool meta;
	bool meta_only;  /* a metadata change alone, no write: membership
			  * dissemination measured away from any write */
} sim_action;

typedef struct sim_expect {
	bool has_fp_max, has_det_p99_max, has_converged, has_detected_min;
	bool has_placement_settled, placement_settled;
	bool has_partition_sides_run, partition_sides_run;
	uint64_t fp_max;
	uint64_t det_p99_ms_max;
	bool converged;
	uint64_t detected_min;
} sim_expect;

/* Policy replicas (core/policy.h + core/psync.h) on every node. */
typedef struct sim_policycfg {
	bool enabled;
	bool persist;                /* the replica survives a crash (an LMDB store);
				      * false: a restarted node starts EMPTY */
	uint64_t settle_us;          /* quiet time after which divergence is a
				      * violation; 0 = the default bound */
} sim_policycfg;

/* Jobs every node places from its own view (sim/probe_placement.c): the
 * agent's scheduling code (agent/sched.h) over each node's membership. */
enum { SIM_JOBS_MAX = 64 };
typedef struct sim_jobcfg {
	char name[64];
	uint32_t replicas;
	uint32_t priority;
	bool per_node;
	bool majority_only;
	char spread[32];             /* label key, "" none */
} sim_jobcfg;

typedef struct sim_placecfg {
	uint64_t every_us;           /* 0: placement off */
	uint32_t n_jobs;
	sim_jobcfg jobs[SIM_JOBS_MAX];
} sim_placecfg;

typedef struct sim_scenario {
	char name[64];
	char file[512];
	uint32_t nodes;
	uint64_t duration_us;
	uint64_t seed;
	uint64_t sample_us;
	uint64_t start_spread_us;
	uint32_t seeds;              /* nodes 0..seeds-1 are every node's join seeds */
	bool start_converged;        /* start: converged (world.c: converged start) */
	uint32_t paranoid_max;       /* full view checks when nodes <= this */
	sim_netcfg net;
	cn_node_config node;         /* name/addr/incarnation filled per node */
	sim_expect expect;
	sim_policycfg policy;
	sim_placecfg placement;
	uint32_t n_actions;
	sim_action *actions;         /* owned, sorted by at_us (stable) */
} sim_scenario;

/* Parse file into *sc (defaults first). Returns 0, or CN_EINVAL/CN_EIO after
 * printing "file:line: field: reason" to stderr. Free with sim_scenario_free. */
int sim_scenario_load(sim_scenario *sc, const char *file);
void sim_scenario_free(sim_scenario *sc);
/* Durations as in the file ("250ms", "3s"): 0 or CN_EINVAL. */
int sim_parse_duration_us(const char *text, int64_t *out);

#endif
