/* Per-replica logs with copy-truncate rotation (logs.h). */
#include "runtime/logs.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

int cn_rtlog_init(cn_rtlog *l, const char *dir, const char *job, uint32_t replica)
{
	memset(l, 0, sizeof *l);
	l->src_fd = l->dst_fd = -1;
	char esc[3 * CN_JOB_NAME_MAX + 1];
	size_t n = 0;
	for (const char *c = job; *c && n + 4 < sizeof esc; c++) {
		if (*c == '/') {
			memcpy(esc + n, "%2F", 3);
			n += 3;
		} else {
			esc[n++] = *c;
		}
	}
	esc[n] = '\0';
	int w = snprintf(l->path, sizeof l->path, "%s/%s.%u.log", dir, esc, (unsigned)replica);
	return w < 0 || (size_t)w >= sizeof l->path ? CN_ENOSPACE : 0;
}

int cn_rtlog_open(const cn_rtlog *l)
{
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	return fd >= 0 ? fd : CN_EIO;
}

void cn_rtlog_note(const cn_rtlog *l, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "[canopy] ");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
	line[len++] = '\n';
	int fd = cn_rtlog_open(l);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, len);
	(void)w;
	close(fd);
}

void cn_rtlog_close(cn_rtlog *l)
{
	if (l->src_fd >= 0)
		close(l->src_fd);
	if (l->dst_fd >= 0)
		close(l->dst_fd);
	l->src_fd = l->dst_fd = -1;
	l->rotating = false;
}

static void numbered(const cn_rtlog *l, uint32_t i, const char *suffix, char *out, size_t cap)
{
	snprintf(out, cap, "%s.%u%s", l->path, (unsigned)i, suffix);
}

static bool begin(cn_rtlog *l, uint32_t keep)
{
	char a[CN_RTREC_PATH_MAX + 16], b[CN_RTREC_PATH_MAX + 16];
	if (keep == 0) {
		if (truncate(l->path, 0) == 0)
			l->rotations++;
		return false;
	}
	numbered(l, keep, "", a, sizeof a);
	unlink(a);
	for (uint32_t i = keep; i > 1; i--) {
		numbered(l, i - 1, "", a, sizeof a);
		numbered(l, i, "", b, sizeof b);
		rename(a, b); /* ENOENT for a gap: fine */
	}
	numbered(l, 1, ".tmp", a, sizeof a);
	l->src_fd = open(l->path, O_RDONLY | O_CLOEXEC);
	l->dst_fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (l->src_fd < 0 || l->dst_fd < 0) {
		cn_rtlog_close(l);
		return false;
	}
	l->copied = 0;
	l->rotating = true;
	return true;
}

static void finish(cn_rtlog *l)
{
	char a[CN_RTREC_PATH_MAX + 16], b[CN_RTREC_PATH_MAX + 16];
	/* Truncate first: the window in which a write is lost is between the
	 * last read and this call. */
	if (truncate(l->path, 0) != 0) {
		cn_rtlog_close(l);
		return;
	}
	cn_rtlog_close(l);
	numbered(l, 1, ".tmp", a, sizeof a);
	numbered(l, 1, "", b, sizeof b);
	rename(a, b);
	l->rotations++;
}

bool cn_rtlog_step(cn_rtlog *l, uint64_t max_bytes, uint32_t keep)
{
	assert(keep <= CN_RTLOG_KEEP_MAX);
	if (!l->rotating) {
		struct stat st;
		if (max_bytes == 0 || stat(l->path, &st) != 0 || (uint64_t)st.st_size < max_bytes)
			return false;
		if (!begin(l, keep))
			return false;
	}
	char buf[64 * 1024];
	uint64_t budget = CN_RTLOG_STEP_BYTES;
	while (budget > 0) {
		ssize_t n = read(l->src_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || l->copied > 2 * max_bytes) {
			/* end of file (or a writer faster than the copy: cut here) */
			finish(l);
			return false;
		}
		ssize_t w = write(l->dst_fd, buf, (size_t)n);
		if (w != n) {
			cn_rtlog_close(l);
			return false;
		}
		l->copied += (uint64_t)n;
		budget = budget > (uint64_t)n ? budget - (uint64_t)n : 0;
	}
	return true;
}
