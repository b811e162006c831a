/* The workload runtime: supervises the replicas placement gives this agent.
 *
 * Driven by its caller, with no threads and no blocking: the agent's event
 * loop says what it wants (cn_rt_set_desired), calls cn_rt_tick when a
 * deadline passes, when SIGCHLD arrives on its signalfd, or when one of the
 * descriptors from cn_rt_pollfds is ready, and reads the state back
 * (cn_rt_list, cn_rt_get, cn_rt_stats_get). Every call returns within a few milliseconds:
 * children are reaped with waitpid(WNOHANG), health probes are state
 * machines (health.h), log rotation copies at most 1 MiB per tick.
 *
 * An instance is one (job, replica) this agent runs or has run:
 *
 *                 spawn ok                 probe ok
 *   (wanted) --> STARTING ----------------------------> HEALTHY <--+
 *                  |  no health check                    | fails   | ok
 *                  +---------------> RUNNING             v >= N    |
 *                                      |              UNHEALTHY ---+
 *      exit (not stopping) / spawn error                 | restart policy
 *        always, or on-failure and failed --> BACKOFF    | is not never
 *        on-failure and exit 0, never ------> EXITED     v
 *        never and failed ------------------> FAILED   STOPPING --> BACKOFF
 *   BACKOFF --delay passed--> spawn again (STARTING)
 *   unwanted, or wanted at another version --> STOPPING: SIGTERM to the
 *   process group, SIGKILL after stop_grace_ms; on exit the instance is
 *   forgotten (unwanted) or started again at the wanted version at once.
 *
 * Restart delay: backoff_min_ms * 2^(k-1), capped at backoff_max_ms, k the
 * number of failures in a row; k returns to 0 once the process has been
 * RUNNING or HEALTHY for healthy_reset_ms (default: the spec's
 * update.healthy_for_ms). An instance in EXITED or FAILED stays there until
 * its wanted version changes (a new spec) or it is wanted again after not
 * being wanted.
 *
 * When the process leader exits, whatever is left of its process group gets
 * SIGKILL (the leader is first left a zombie with waitid(WNOWAIT) so its
 * pid, which is the group id, cannot be reused in between).
 *
 * Re-adoption: each live process has a record (record.h) in the store
 * given in the configuration, written after spawn and deleted after exit.
 * cn_rt_new reads them all; a record whose pid is alive with the same start
 * time (/proc/PID/stat field 22) becomes an ADOPTED instance (adopted =
 * true in its info): it is not our child, so its exit is noticed by
 * polling /proc every poll_ms, and its exit status is unknown (treated as
 * a failure by the restart policy). Any other record is deleted. Adopted
 * instances are not stopped before the first cn_rt_set_desired (the agent
 * may not yet know its jobs); then an adopted instance that is wanted at
 * its version is kept, otherwise it is stopped like any other.
 *
 * Ownership: cn_rt copies everything given to it (wants, specs, strings in
 * the configuration); the store's ctx and functions must outlive it.
 * Not thread-safe: one thread (the agent's loop) owns a cn_rt. */
#ifndef CN_RUNTIME_RUNTIME_H
#define CN_RUNTIME_RUNTIME_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/jobspec.h"
#include "runtime/proc.h"
#include "runtime/record.h"

enum {
	CN_RT_INSTANCES_MAX = 1024,     /* instances (wanted or winding down) */
	CN_RT_ENV_MAX = 32,             /* base environment entries */
	CN_RT_STOP_GRACE_MS_DEFAULT = 10000,
	CN_RT_HEALTH_FAILURES_DEFAULT = 3,
	CN_RT_POLL_MS_DEFAULT = 1000,
	CN_RT_LOG_MAX_BYTES_DEFAULT = 10 << 20,
	CN_RT_LOG_KEEP_DEFAULT = 3,
	CN_RT_ZOMBIES_MAX = 256,        /* killed probes awaiting waitpid */
	CN_RT_WHY_MAX = 160,
};

enum cn_rt_state {
	CN_RT_STARTING = 1,   /* spawned; health check defined, no verdict yet */
	CN_RT_RUNNING = 2,    /* alive; no health check defined */
	CN_RT_HEALTHY = 3,    /* last probe passed */
	CN_RT_UNHEALTHY = 4,  /* health_failures probes failed in a row */
	CN_RT_BACKOFF = 5,    /* down; restarts at next_start_ms */
	CN_RT_STOPPING = 6,   /* SIGTERM sent (and SIGKILL after the grace) */
	CN_RT_EXITED = 7,     /* exited 0 and the policy does not restart */
	CN_RT_FAILED = 8,     /* failed and the policy does not restart */
};

/* One replica the agent wants running. Read only during cn_rt_set_desired. */
typedef struct cn_rt_want {
	const char *job;      /* job name (policy name syntax) */
	uint32_t replica;     /* < CN_JOB_REPLICAS_MAX */
	uint64_t version;     /* the job document's version or spec hash */
	const cn_jobspec *spec;
} cn_rt_want;

typedef void (*cn_rt_log_fn)(void *ctx, const char *line);

typedef struct cn_rt_cfg {
	const char *dir;          /* required: logs go to DIR/logs (made if absent) */
	const char *node;         /* CANOPY_NODE; required */
	const cn_rtstore *store;  /* NULL: no records, no re-adoption */
	const char *cgroup_dir;   /* NULL: detect the agent's own; "": off (cgroup.h) */
	const char *const *base_env; /* NULL-terminated "K=V" under every workload's
				      * environment; NULL: PATH=/usr/local/sbin:...:/bin */
	const char *workdir;      /* for specs without workdir; NULL: DIR/work
				   * (made if absent; not DIR itself, which holds
				   * the agent's keys and store) */
	uint32_t stop_grace_ms;   /* SIGTERM to SIGKILL */
	uint32_t health_failures; /* failed probes in a row that make UNHEALTHY */
	uint32_t healthy_reset_ms;/* 0: the spec's update.healthy_for_ms */
	uint32_t poll_ms;         /* liveness polling of adopted processes, log
				   * size checks, and a reaping backstop */
	uint64_t log_max_bytes;   /* rotate at this size; 0: never */
	uint32_t log_keep;        /* rotated files kept, <= CN_RTLOG_KEEP_MAX */
	cn_rtproc_rlimit rlimits[CN_RTPROC_RLIMITS_MAX]; /* for every workload */
	size_t n_rlimits;
	cn_rt_log_fn log;         /* events for the operator's log; may be NULL */
	void *log_ctx;
} cn_rt_cfg;

/* Defaults for everything but dir, node and store. */
void cn_rt_cfg_default(cn_rt_cfg *c);

typedef struct cn_rt cn_rt;

/* Create a runtime, detect cgroups, load the store's records and adopt the
 * processes they name that are still alive. Returns 0, CN_EINVAL (cfg),
 * CN_EIO (DIR/logs or DIR/work cannot be made), CN_ENOMEM. Store errors while loading
 * are counted in the stats, not fatal. */
int cn_rt_new(const cn_rt_cfg *cfg, uint64_t now_ms, cn_rt **out);

/* Free the runtime WITHOUT stopping anything: live workloads keep running
 * and their records stay, so the next cn_rt_new adopts them (an agent
 * restart or upgrade). To stop everything first, cn_rt_set_desired(rt,
 * NULL, 0, now) and tick until cn_rt_idle(rt). Exec probes in flight are
 * killed. */
void cn_rt_free(cn_rt *rt);

/* Replace the desired set. Copies every want and its spec. Instances are
 * started and stopped by the next cn_rt_tick (call it right after). A job
 * name that is invalid, a duplicate (job, replica), a spec with no command
 * or more than CN_RT_INSTANCES_MAX instances makes the whole call fail with
 * CN_EINVAL / CN_EEXIST / CN_ELIMIT and changes nothing; CN_ENOMEM too. */
int cn_rt_set_desired(cn_rt *rt, const cn_rt_want *w, size_t n, uint64_t now_ms);

/* Do everything due at now_ms: reap, health, stop timers, restarts,
 * reconcile, rotation. now_ms must not go back (asserted). */
void cn_rt_tick(cn_rt *rt, uint64_t now_ms);

/* When cn_rt_tick next has something to do (UINT64_MAX: nothing; it is
 * still right to tick on SIGCHLD). */
uint64_t cn_rt_deadline(const cn_rt *rt);

/* Descriptors of health probes in flight, to add to the caller's poll set;
 * tick when any is ready. Returns how many were written (<= cap). */
size_t cn_rt_pollfds(const cn_rt *rt, struct pollfd *pfd, size_t cap);

typedef struct cn_rt_info {
	char job[CN_JOB_NAME_MAX + 1];
	uint32_t replica;
	uint8_t state;            /* enum cn_rt_state */
	bool wanted;
	bool adopted;             /* process from a previous agent */
	pid_t pid;                /* 0 when none */
	uint64_t version;         /* of the process (or last process) */
	uint64_t want_version;
	uint32_t restarts;        /* spawns after the first */
	uint32_t failures_in_row;
	bool has_exit;            /* last_exit is known */
	int last_exit;            /* wait status (WIFEXITED etc.) of the last exit */
	uint64_t next_start_ms;   /* BACKOFF: when it restarts */
	char log_path[CN_RTREC_PATH_MAX];
	char why[CN_RT_WHY_MAX];  /* the last spawn error or failed probe (kept
				   * after a restart, for the operator), or "" */
} cn_rt_info;

/* Fill out[0..cap) in (job, replica) order; returns the number of
 * instances (may exceed cap). */
size_t cn_rt_list(const cn_rt *rt, cn_rt_info *out, size_t cap);

/* One instance; CN_ENOENT if unknown. */
int cn_rt_get(const cn_rt *rt, const char *job, uint32_t replica, cn_rt_info *out);

typedef struct cn_rt_stats {
	uint32_t instances, wanted, live;  /* live: has a process */
	uint32_t drift;           /* wanted without a live process of the wanted
				   * version, or live and not wanted */
	uint64_t spawns, spawn_errors, exits, restarts, kills, adopted, discarded;
	uint64_t probes_ok, probes_failed, rotations;
	uint64_t store_errors, bad_records;
	bool cgroups;
} cn_rt_stats;
void cn_rt_stats_get(const cn_rt *rt, cn_rt_stats *out);

/* True when no instance has a process (after set_desired(NULL, 0), the
 * moment everything has stopped). */
bool cn_rt_idle(const cn_rt *rt);

/* "cgroups: v2 at DIR (cpu, memory)" or "cgroups: unavailable (REASON)";
 * also logged once through cfg.log by cn_rt_new. Valid while rt is. */
const char *cn_rt_cgroup_status(const cn_rt *rt);

const char *cn_rt_state_name(uint8_t state);

#endif
