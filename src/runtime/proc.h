/* Processes for the runtime: spawning without fork, reading a process's
 * identity from /proc, signalling a process group.
 *
 * Spawning uses posix_spawn (NNG is not fork-safe: glibc's posix_spawn uses
 * clone(CLONE_VM | CLONE_VFORK) and execs at once, with no user code in the
 * child). The child:
 *   - leads a new session (POSIX_SPAWN_SETSID where glibc has it, else a new
 *     process group with POSIX_SPAWN_SETPGROUP), so the whole tree it makes
 *     can be signalled as one group, and it has no controlling terminal;
 *   - has an empty signal mask and default dispositions (the agent blocks
 *     SIGTERM, SIGINT, SIGPIPE and reads them from a signalfd; a child must
 *     not inherit that);
 *   - has stdin from /dev/null, stdout and stderr on out_fd (or /dev/null);
 *   - has every other descriptor closed (closefrom(3) in the spawn actions);
 *   - runs in cwd, with exactly the environment envp.
 * rlimits cannot be set between fork and exec without fork: they are set
 * with prlimit(2) right after posix_spawn returns. The child may run a few
 * microseconds of its program before they apply (docs/runtime.md).
 *
 * Identity: a pid alone is reused by the kernel; (pid, start time in clock
 * ticks since boot, /proc/PID/stat field 22) names one process for the
 * machine's uptime. Every signal to a process the runtime did not reap
 * itself is preceded by that check. */
#ifndef CN_RUNTIME_PROC_H
#define CN_RUNTIME_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	CN_RTPROC_RLIMITS_MAX = 8,
	CN_RTPROC_ERR_MAX = 160,
};

typedef struct cn_rtproc_rlimit {
	int resource;          /* RLIMIT_* */
	uint64_t soft, hard;   /* RLIM_INFINITY allowed */
} cn_rtproc_rlimit;

typedef struct cn_rtproc_spawn {
	const char *const *argv;  /* argv[0] non-empty; NULL-terminated */
	const char *const *envp;  /* NULL-terminated; PATH in it resolves argv[0] */
	const char *cwd;          /* NULL: the caller's */
	int out_fd;               /* stdout and stderr; -1: /dev/null */
	const cn_rtproc_rlimit *rlimits;
	size_t n_rlimits;
} cn_rtproc_spawn;

/* Spawn. argv[0] without '/' is looked up in envp's PATH (the child's, not
 * the agent's). Returns 0 and *pid, or CN_ENOENT (no such program),
 * CN_EPERM (not executable), CN_EIO (any other spawn failure); err (may be
 * NULL) gets a one-line reason. An rlimit that cannot be applied is
 * reported in err with a 0 return (the process runs). */
int cn_rtproc_spawn_run(const cn_rtproc_spawn *s, pid_t *pid, char *err, size_t errcap);

/* What /proc/PID/stat says. */
typedef struct cn_rtproc_stat {
	char state;            /* R S D Z T ... */
	pid_t pgrp;
	uint64_t start_ticks;  /* field 22 */
} cn_rtproc_stat;

/* Returns 0, CN_ENOENT (no such process), CN_EIO (unreadable or malformed;
 * the parser is bounded and never trusts the comm field's contents). */
int cn_rtproc_stat_read(pid_t pid, cn_rtproc_stat *out);

/* Parse the text of a /proc/PID/stat file (exposed for tests). */
int cn_rtproc_stat_parse(const char *text, size_t len, cn_rtproc_stat *out);

/* True if pid is alive (not a zombie) and started at start_ticks. */
bool cn_rtproc_same(pid_t pid, uint64_t start_ticks);

/* Signal the process group pgid (kill(-pgid, sig)). ESRCH is success (the
 * group is gone). Returns 0 or CN_EIO. */
int cn_rtproc_kill_group(pid_t pgid, int sig);

#endif
