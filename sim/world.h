/* sim_world: many cn_nodes on one virtual clock and one virtual network.
 *
 * One process, one thread, no wall clock: the run is a loop over a min-heap
 * of events (heap.h) in virtual microseconds. Nodes are the real core
 * (core/node.h) driven through its sans-I/O API; the world turns their
 * outputs into future events:
 *
 *   datagram  -> EV_DGRAM at the target after the link's latency, unless
 *                lost, partitioned, or over the sender's bandwidth queue;
 *                duplicated with probability `duplicate`. Reordering falls
 *                out of per-packet jitter.
 *   stream    -> EV_STREAM_REQ at the target after latency; the target
 *                serves it (cn_node_stream_serve) and EV_STREAM_REPLY goes
 *                back after latency + size/bandwidth; a partition, a crash
 *                or the stream timeout gives EV_STREAM_FAIL instead
 *                (cn_node_stream_result with NULL).
 *   event     -> the probes (metrics.h); CN_EV_SELF_INCARNATION is written
 *                to the world's "disk" (disk_inc), which survives crashes.
 *   deadline  -> one EV_TICK per node at cn_node_deadline() (lazy: stale
 *                ticks are recognised by tick_at_us and dropped).
 *
 * Datagrams travel as plaintext: sealing is crypto/, outside the core, and
 * sealing 10^8 packets would cost most of the run and test nothing the
 * crypto tests do not (the envelope overhead is already taken out of
 * CN_DATAGRAM_PLAIN_MAX, so sizes are the real ones minus 48 bytes).
 *
 * Randomness: everything from util/rng seeded from the scenario seed:
 * per-node core seeds mix(seed, node, life), per-node network generators
 * for the packets the node sends, a per-link fixed latency offset from
 * mix(seed, a, b), and one world generator for fault selection.
 *
 * Node names are "n<index>", addresses 10.a.b.c:7946 with a.b.c the index,
 * so both map back to the node index in O(1). */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/node.h"
#include "core/policy.h"
#include "core/policy_mem.h"
#include "core/psync.h"
#include "crypto/identity.h"
#include "heap.h"
#include "metrics.h"
#include "scenario.h"
#include "util/rng.h"

enum sim_status { ST_NEW = 0, ST_UP, ST_DOWN, ST_GONE };

enum { SIM_PROBES_MAX = 8, SIM_RULES_MAX = 64, SIM_PORT = 7946 };

typedef struct sim_node {
	cn_node *node;           /* NULL unless ST_UP */
	uint8_t status;          /* enum sim_status */
	bool leaving;
	uint8_t site;
	uint8_t slowed;          /* 1 while slow */
	uint16_t group;          /* partition group; different groups cannot talk */
	uint32_t life;           /* incremented at each start */
	uint64_t disk_inc;       /* persisted incarnation: survives crashes */
	uint64_t tick_at_us;     /* earliest pending tick; UINT64_MAX none */
	uint64_t pause_until_us;
	uint64_t slow_until_us, slow_last_us;
	uint32_t slow_delay_us, slow_jitter_us;
	int64_t skew_ms;
	int32_t drift_ppm;
	uint64_t last_local_ms;  /* local clock never goes backwards */
	uint64_t bandwidth, queue_bytes, tx_free_us;
	uint64_t up_since_us, up_us; /* node-seconds for the rates */
	uint64_t msgs_retired;   /* msgs_out of earlier lives */
	uint64_t net_touch_us;   /* last time a network rule involved it; UINT64_MAX now */
	cn_rng rng;              /* draws for the datagrams this node sends */
	/* Policy replica (scenario policy: on): the memory store behind a
	 * wrapper that reports every commit to the probes (world.c). */
	cn_policy_mem *pmem;     /* survives a crash only with policy.persist */
	cn_policy *pol;          /* NULL unless ST_UP with policy on */
	struct sim_pstore *pst;
} sim_node;

typedef struct sim_rule {    /* one-way block or symmetric flap between sets */
	uint8_t *a, *b;          /* membership bitmaps, one byte per node */
	bool flap;
	uint64_t start_us, period_us, down_us, until_us;
} sim_rule;

typedef struct sim_probe_inst {
	const sim_probe_ops *ops;
	void *st;
} sim_probe_inst;

struct sim_world {
	const sim_scenario *sc;
	uint64_t seed;
	uint32_t n_init, cap, n_used;  /* initial nodes, slots, slots started so far */
	sim_node *nodes;
	cn_pool *pool;
	sim_heap heap;
	uint64_t now_us, end_us;
	cn_rng rng;                    /* faults */
	sim_netcfg net;
	double site_ms[SIM_SITES_MAX][SIM_SITES_MAX];
	sim_rule rules[SIM_RULES_MAX];
	uint32_t n_rules;
	bool partitioned;              /* some group != 0 */
	uint32_t live;                 /* ST_UP and not leaving */
	uint64_t events;               /* heap events processed */
	uint64_t digest;               /* running hash of the trace */
	uint64_t dgrams_sent, streams, stream_failures, outputs_dropped, resyncs;
	uint64_t last_action_us;
	bool failed, stopped;
	char fail_msg[512];
	bool quiet;
	cn_addr seeds[16];
	uint32_t n_seeds;
	sim_probe_inst probes[SIM_PROBES_MAX];
	uint32_t n_probes;
	/* Policy: one root key signs every write; wall = node clock + epoch. */
	cn_sigkey root;
	uint64_t writes, writes_refused, meta_changes;
	uint32_t *write_seq;           /* per timeline action: writes made */
	sim_policy_ev *pev;            /* commits not yet handed to the probes */
	uint32_t n_pev, cap_pev;
	bool in_local_write;
	cn_psync_stats psync_gone;     /* counters of nodes that stopped */
	/* Converged start (start: converged): the join replies every initial
	 * node is answered with at t=0, built once per seed (world.c). */
	uint8_t *warm_full[16], *warm_one[16];
	size_t warm_full_len[16], warm_one_len[16];
	bool warming;                  /* node_start: hold join streams */
	uint32_t n_warm, warm_id[16], warm_to[16];
	/* Wall-clock figures, filled by main, never read by the simulation. */
	double wall_seconds;
};

/* Build the world for sc (sc must outlive it). 0, CN_EINVAL or CN_ENOMEM. */
int sim_world_new(sim_world *w, const sim_scenario *sc, bool quiet);
/* Run to the end or to the first failure. 0 or 1 (failure). */
int sim_world_run(sim_world *w);
void sim_world_free(sim_world *w);
/* Stop the run: an invariant failed. Prints the message with the seed. */
__attribute__((format(printf, 2, 3))) void sim_world_fail(sim_world *w, const char *fmt, ...);

/* Queries for probes. */
static inline bool sim_node_live(const sim_world *w, uint32_t i)
{
	return w->nodes[i].status == ST_UP && !w->nodes[i].leaving;
}
/* True when a network rule involved node i within grace_us of now. */
bool sim_net_touched(const sim_world *w, uint32_t i, uint64_t grace_us);
/* msgs_out over all lives of node i. */
uint64_t sim_node_msgs_out(const sim_world *w, uint32_t i);
/* Node-seconds of uptime so far, all nodes. */
double sim_world_node_seconds(const sim_world *w);
/* Bound on convergence after a heal, from the node configuration. */
uint64_t sim_world_heal_bound_us(const sim_world *w);
/* Scaled push-pull interval of node.c (pushpull_interval_ms) for n members. */
uint64_t sim_world_pushpull_us(const sim_world *w, uint32_t n);
/* Quiet time after which policy replicas must agree (scenario policy.settle,
 * or 3 reconnect intervals + one scaled push-pull interval). */
uint64_t sim_world_policy_settle_us(const sim_world *w);
/* wall = node clock + this (the replicas' hybrid clocks see 2026 dates). */
#define SIM_POLICY_EPOCH_MS INT64_C(1790000000000)
/* Index of a name "n<index>" or UINT32_MAX. */
uint32_t sim_name_index(const sim_world *w, const char *name);

#endif
