/* One health probe of one workload, as a non-blocking state machine.
 *
 *   IDLE --start--> EXEC     (a spawned command; exit 0 within the timeout)
 *               \-> CONNECT  (TCP to 127.0.0.1:PORT, non-blocking connect)
 *   CONNECT --writable--> tcp: done OK
 *                         http: SEND (GET PATH HTTP/1.0) --> RECV (status line)
 *   any --deadline passed--> done FAIL (an exec probe's group gets SIGKILL
 *                            and is reaped on a later step: REAP)
 *
 * cn_rthc_step() never blocks: it uses waitpid(WNOHANG), poll() with a zero
 * timeout, and non-blocking send/recv. The caller steps every probe from its
 * tick; cn_rthc_pollfd() names the descriptor (and events) the caller may
 * add to its poll set so it is woken when a step would make progress. */
#ifndef CN_RUNTIME_HEALTH_H
#define CN_RUNTIME_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/jobspec.h"

enum cn_rthc_phase {
	CN_RTHC_IDLE = 0,
	CN_RTHC_EXEC = 1,
	CN_RTHC_CONNECT = 2,
	CN_RTHC_SEND = 3,
	CN_RTHC_RECV = 4,
	CN_RTHC_REAP = 5,   /* the verdict is in; a killed exec probe is not reaped yet */
};

enum cn_rthc_result {
	CN_RTHC_PENDING = 0,
	CN_RTHC_OK = 1,
	CN_RTHC_FAIL = 2,
};

enum {
	CN_RTHC_REQ_MAX = CN_JOB_ARG_MAX + 128,
	CN_RTHC_RESP_MAX = 64,     /* the status line is all we read */
	CN_RTHC_WHY_MAX = 128,
};

typedef struct cn_rthc {
	uint8_t phase;
	uint8_t kind;              /* enum cn_job_health */
	int fd;                    /* CONNECT, SEND, RECV; else -1 */
	pid_t pid;                 /* EXEC, REAP; else 0 */
	uint64_t deadline_ms;
	size_t req_len, sent, got;
	char req[CN_RTHC_REQ_MAX];
	char resp[CN_RTHC_RESP_MAX];
	char why[CN_RTHC_WHY_MAX]; /* reason of the last FAIL */
} cn_rthc;

void cn_rthc_init(cn_rthc *h);

/* Start a probe of spec's health check. envp/cwd: for exec probes (the
 * workload's environment and directory). The probe's result comes from
 * cn_rthc_step; a start that fails at once (spawn or socket error) returns
 * CN_RTHC_FAIL with the reason in h->why, else CN_RTHC_PENDING. The probe
 * must be IDLE (asserted). */
int cn_rthc_start(cn_rthc *h, const cn_jobspec *spec, const char *const *envp, const char *cwd,
		  uint64_t now_ms);

/* Advance. Returns CN_RTHC_PENDING until the verdict, then OK or FAIL once;
 * after the verdict the probe is IDLE again, or REAP while a killed exec
 * probe waits to be reaped (cn_rthc_busy() is then still true; keep
 * stepping; a new probe cannot start until it is IDLE). */
int cn_rthc_step(cn_rthc *h, uint64_t now_ms);

/* True unless IDLE. */
bool cn_rthc_busy(const cn_rthc *h);

/* Abort: close the socket, SIGKILL an exec probe's group. Leaves IDLE.
 * Returns the pid of a killed exec probe that the caller must still reap
 * (waitpid(pid, WNOHANG) on later ticks: never block), or 0. */
pid_t cn_rthc_cancel(cn_rthc *h);

/* The descriptor to poll and its events (POLLOUT / POLLIN), or -1. */
int cn_rthc_pollfd(const cn_rthc *h, short *events);

/* The earliest time a step is due (deadline), or UINT64_MAX when idle. */
uint64_t cn_rthc_deadline(const cn_rthc *h);

#endif
