/* Per-replica log files with copy-truncate rotation.
 *
 * A workload's stdout and stderr are one O_APPEND descriptor on
 * DIR/logs/JOB.REPLICA.log ('/' in a job name is written "%2F": '%' is not
 * allowed in job names, so the mapping is one-to-one). The runtime keeps
 * no descriptor of its own: a re-adopted process keeps writing through the
 * descriptor it was born with, and that is why rotation is copy-truncate
 * and not rename: renaming would leave the process writing into the
 * renamed file forever, since nothing can reopen its descriptor.
 *
 * Rotation, once the file reaches max_bytes:
 *   1. shift LOG.(keep-1) -> LOG.keep, ..., LOG.1 -> LOG.2 (LOG.keep is
 *      dropped);
 *   2. copy LOG into LOG.1.tmp, at most step_bytes per cn_rtlog_step call,
 *      so the event loop is never held for long;
 *   3. when the copy reaches the end of LOG: truncate LOG to 0 and rename
 *      LOG.1.tmp -> LOG.1.
 * O_APPEND makes the writer's next write land at the new end (offset 0),
 * with no hole. Lines written between the last copy and the truncate (a
 * few microseconds) are lost: the known price of copy-truncate. keep == 0
 * truncates without copying. */
#ifndef CN_RUNTIME_LOGS_H
#define CN_RUNTIME_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/record.h"

enum {
	CN_RTLOG_KEEP_MAX = 32,
	CN_RTLOG_STEP_BYTES = 1 << 20,
};

typedef struct cn_rtlog {
	char path[CN_RTREC_PATH_MAX];
	bool rotating;
	int src_fd, dst_fd;
	uint64_t copied;
	uint64_t rotations;    /* completed */
} cn_rtlog;

/* Set the path (dir/JOB.REPLICA.log). Returns 0 or CN_ENOSPACE. */
int cn_rtlog_init(cn_rtlog *l, const char *dir, const char *job, uint32_t replica);

/* Open for a new process: O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640.
 * Returns the descriptor or a negative code (CN_EIO). */
int cn_rtlog_open(const cn_rtlog *l);

/* Append one line "[canopy] TEXT\n" (a start, an exit), best effort. */
void cn_rtlog_note(const cn_rtlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Check the size and rotate, copying at most CN_RTLOG_STEP_BYTES. Returns
 * true while a rotation is in progress (call again soon). */
bool cn_rtlog_step(cn_rtlog *l, uint64_t max_bytes, uint32_t keep);

/* Abandon a rotation in progress (close descriptors). */
void cn_rtlog_close(cn_rtlog *l);

#endif
