/* Probes: the simulator's metrics and invariant checkers, one module each.
 *
 * A probe sees everything the world does through the callbacks below and
 * adds its keys to summary.json and its own CSV files. The world knows no
 * metric by name; it loops over sim_probes[] (metrics.c). Adding a metric
 * (policy propagation, placement agreement, ...) is one new probe_*.c file
 * and one line in that array.
 *
 * Every callback may be NULL. A probe that finds a violated invariant calls
 * sim_world_fail(), which stops the run; the seed is printed and the exit
 * code is 1. Probes must be deterministic: no wall clock, no pointer-keyed
 * ordering, randomness only from the world. */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/doc.h"
#include "core/node.h"
#include "util/json.h"

typedef struct sim_world sim_world;
typedef struct sim_expect sim_expect;

/* A change of reality (what is true, as opposed to what nodes believe). */
enum sim_fact_kind {
	FACT_UP = 1,     /* node started with a fresh state (start, restart, join) */
	FACT_DOWN,       /* node crashed: its state is gone */
	FACT_LEAVE,      /* node began a graceful leave: no longer a member */
	FACT_GONE,       /* a leaving node stopped */
	FACT_NET,        /* partition/block/flap rules changed */
	FACT_ACTION,     /* a timeline action ran (after its facts) */
};

typedef struct sim_fact {
	uint8_t kind;
	uint32_t node;        /* FACT_UP/DOWN/LEAVE/GONE */
	const char *action;   /* FACT_ACTION: action name */
	bool reality;         /* FACT_ACTION: changed who is a live member (or healed) */
	bool heal;            /* FACT_ACTION: healed the network */
} sim_fact;

/* Fate of a datagram. */
enum sim_fate {
	FATE_SENT = 0, FATE_LOSS, FATE_PARTITION, FATE_BANDWIDTH, FATE_NOADDR, FATE_MAX_,
};

/* A policy document became the winner of its name on a replica (reported
 * after the node call that caused it returned, so the replica's digest is
 * current), or an operator write was accepted (local). */
typedef struct sim_policy_ev {
	uint32_t node;
	bool local;           /* the operator write itself, on its writer */
	bool erase;           /* the name was forgotten (version 0) */
	uint64_t version;
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
	char writer[CN_DOC_WRITER_MAX + 1];
	uint8_t hash[CN_DOC_HASH_BYTES];
} sim_policy_ev;

typedef struct sim_probe_ops {
	const char *name;
	int (*init)(sim_world *w, void **state);
	/* An event a node reported: observer's view of member changed. member
	 * is UINT32_MAX for a name that is not a simulated node. */
	void (*on_event)(void *st, sim_world *w, uint32_t observer, uint32_t member,
			 const cn_event *ev);
	/* The node dropped outputs (events may be lost): rebuild from its view. */
	void (*on_resync)(void *st, sim_world *w, uint32_t node);
	void (*on_fact)(void *st, sim_world *w, const sim_fact *f);
	void (*on_datagram)(void *st, sim_world *w, uint32_t from, uint32_t to, size_t len,
			    uint8_t fate);
	void (*on_sample)(void *st, sim_world *w);
	void (*finish)(void *st, sim_world *w);
	void (*summary)(void *st, sim_world *w, cn_json *j);
	/* Number of unmet expectations, each printed to stderr. */
	int (*expect)(void *st, sim_world *w, const sim_expect *e);
	int (*write_files)(void *st, sim_world *w, const char *dir);
	void (*free)(void *st);
	/* Policy: a commit on a replica (see sim_policy_ev); an operator write
	 * accepted on node e->node (called before its commit event); a
	 * metadata change (label rev=<rev>) made on node. */
	void (*on_policy)(void *st, sim_world *w, const sim_policy_ev *e);
	void (*on_write)(void *st, sim_world *w, const sim_policy_ev *e);
	void (*on_meta)(void *st, sim_world *w, uint32_t node, uint64_t rev);
} sim_probe_ops;

extern const sim_probe_ops sim_probe_membership;
extern const sim_probe_ops sim_probe_traffic;
extern const sim_probe_ops sim_probe_policy;
extern const sim_probe_ops sim_probe_placement;

extern const sim_probe_ops *const sim_probes[];
extern const size_t sim_probes_count;

/* Helpers for probes. */
/* Percentile (0..100) of v[0..n) after sorting it in place; 0 when n == 0. */
uint64_t sim_percentile(uint64_t *v, size_t n, double pct);
/* fopen(dir/name, "w") with an error message on failure. */
FILE *sim_open_csv(const char *dir, const char *name);

#endif
