/* cgroup v2 limits for workloads, when the device lets the agent have them.
 *
 * The runtime needs a cgroup v2 directory it may write (a delegated
 * subtree: systemd's Delegate=yes, or a directory made for it), with the
 * cpu and memory controllers available in cgroup.controllers and enabled,
 * or enableable, in cgroup.subtree_control. Each replica gets a child
 * directory JOB.REPLICA ('/' as "%2F") with
 *   cpu.max    = "cpu_millis*100 100000" (cpu_millis/1000 of one CPU per
 *                100 ms period; absent when cpu_millis is 0)
 *   memory.max = memory_mb MiB (absent when 0)
 * and the process is moved there by writing its pid to cgroup.procs right
 * after posix_spawn (posix_spawn cannot start it inside; the process runs
 * a few microseconds unconfined).
 *
 * Detection runs once (cn_rtcg_detect) and sets a status line for the
 * operator: "cgroups: v2 at DIR (cpu, memory)" or
 * "cgroups: unavailable (REASON)"; without cgroups workloads run unlimited. */
#ifndef CN_RUNTIME_CGROUP_H
#define CN_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/record.h"

enum { CN_RTCG_STATUS_MAX = 2 * CN_RTREC_PATH_MAX + 256 };

typedef struct cn_rtcg {
	bool ok;
	char root[CN_RTREC_PATH_MAX];
	char status[CN_RTCG_STATUS_MAX];
} cn_rtcg;

/* dir: a cgroup v2 directory to use; NULL: the agent's own cgroup (from
 * /proc/self/cgroup and the cgroup2 mount in /proc/self/mountinfo); "":
 * cgroups off. Never fails: cg->ok and cg->status say what was found. */
void cn_rtcg_detect(cn_rtcg *cg, const char *dir);

/* Make (or reuse) the replica's cgroup and write its limits. path gets the
 * directory. Returns 0, CN_ESTATE (!cg->ok), CN_ENOSPACE, CN_EIO (reason in
 * err). */
int cn_rtcg_create(const cn_rtcg *cg, const char *job, uint32_t replica, uint32_t cpu_millis,
		   uint32_t memory_mb, char *path, size_t cap, char *err, size_t errcap);

/* Move pid into the cgroup at path. Returns 0 or CN_EIO. */
int cn_rtcg_attach(const char *path, pid_t pid);

/* Remove an empty replica cgroup: 0, CN_EAGAIN (still has processes), or
 * CN_EIO. */
int cn_rtcg_remove(const char *path);

#endif
