/* The agent's workloads: placement, the runtime, and their admin commands.
 *
 * Once a second (and whenever the runtime has work), the agent recomputes
 * the placement of every job from its view and its policy replica
 * (agent/sched.h), hands the replicas that fall to it to the runtime
 * (runtime/runtime.h) when they changed, and ticks the runtime. Workloads
 * survive an agent restart: the runtime's records are in the agent's LMDB
 * store (database "runtime") and are re-adopted at start. A graceful leave
 * stops every workload (the fleet places them elsewhere); a crash or
 * SIGKILL of the agent leaves them running for the next agent to adopt.
 *
 * After a start, placement waits until the view holds another live member
 * (or CN_WORKLOADS_JOIN_WAIT_MS): a view of ourselves alone would place
 * replicas here that belong elsewhere, and rollouts need the fleet's
 * reports; adopted workloads are left alone meanwhile.
 *
 * A new job version rolls out in stages (agent/rollout.h, docs/rollouts.md):
 * each replica runs the previous or the new version by its stage; progress
 * is gossiped in this member's metadata and kept in database "rollout".
 *
 * Admin commands (CLI in cli/jobs.c):
 *   jobs                   placement of every job, and this agent's instances
 *   job-status NAME        where each replica of NAME runs, its state here
 *   rollout-status NAME    the staged rollout of NAME's current version
 *   plan NAME B64SPEC ...  placement with these job specs added or replaced
 *   logs JOB [REPLICA]     the tail of this agent's log files of JOB */
#ifndef CN_AGENT_WORKLOADS_H
#define CN_AGENT_WORKLOADS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cn_agent;
struct cn_admin_req;
typedef struct cn_workloads cn_workloads;

enum {
	CN_WORKLOADS_INTERVAL_MS = 1000,   /* placement recomputed at least this often */
	CN_WORKLOADS_REPORT_MIN_MS = 10000, /* metadata changes for restart counts alone */
	CN_WORKLOADS_MAJORITY_HOLD_PERIODS = 5, /* majority_only start hold, in probe periods */
	CN_WORKLOADS_STOP_MS = 15000,      /* longest wait for workloads to stop on leave */
	CN_WORKLOADS_JOIN_WAIT_MS = 5000,  /* no placement before a peer is seen, this long */
	CN_WORKLOADS_LOG_TAIL = 64 * 1024, /* bytes of a log file `logs` returns */
};

/* Open the runtime (adopting what a previous agent left running).
 * @return 0, or an error with the reason in err. */
int cn_workloads_open(struct cn_agent *a, uint64_t now_ms, cn_workloads **out, char *err,
		      size_t errcap);
/* Free without stopping anything (workloads are adopted next time). */
void cn_workloads_close(cn_workloads *w);

/* Do what is due: placement (every CN_WORKLOADS_INTERVAL_MS, or at once
 * when `force`, e.g. after SIGCHLD or a membership change) and the runtime. */
void cn_workloads_tick(cn_workloads *w, struct cn_agent *a, uint64_t now_ms, bool force);
uint64_t cn_workloads_deadline(const cn_workloads *w);
size_t cn_workloads_pollfds(const cn_workloads *w, struct pollfd *pfd, size_t cap);
/* Stop everything (leave): want nothing and tick until all processes are
 * gone or CN_WORKLOADS_STOP_MS passed. Blocks the loop (it is ending). */
void cn_workloads_stop_all(cn_workloads *w, uint64_t (*now)(void));

/* An admin command of the list above: renders into out, returns the status
 * (0 or a negative cn_err), or CN_EUNKNOWN if cmd is not ours. */
int cn_workloads_admin(cn_workloads *w, struct cn_agent *a, const struct cn_admin_req *req,
		       bool json, uint64_t now_ms);

/* Counters for `info` and metrics: name/value pairs appended to out;
 * returns how many (<= cap). */
typedef struct cn_workloads_counter {
	const char *name;
	uint64_t value;
} cn_workloads_counter;
size_t cn_workloads_counters(const cn_workloads *w, cn_workloads_counter *out, size_t cap);

#endif
