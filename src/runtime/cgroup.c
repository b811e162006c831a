/* cgroup v2 detection and per-replica limits (cgroup.h). */
#include "runtime/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "util/err.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

static int write_small(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int e = errno;
	close(fd);
	return n == (ssize_t)len ? 0 : (n < 0 ? -e : -EIO);
}

static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; (p = strstr(p, word)) != NULL; p += wl) {
		bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
		bool end = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
		if (start && end)
			return true;
	}
	return false;
}

/* The agent's own cgroup v2 directory: mount point + "0::PATH". */
static int own_cgroup(char *out, size_t cap, char *why, size_t whycap)
{
	char text[4096], rel[1024] = "";
	if (read_small("/proc/self/cgroup", text, sizeof text) != 0) {
		snprintf(why, whycap, "cannot read /proc/self/cgroup");
		return -1;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "0::", 3) == 0)
			snprintf(rel, sizeof rel, "%s", line + 3);
	if (rel[0] == '\0') {
		snprintf(why, whycap, "no cgroup v2 hierarchy in /proc/self/cgroup");
		return -1;
	}
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL) {
		snprintf(why, whycap, "cannot read /proc/self/mountinfo");
		return -1;
	}
	char line[4096], mnt[1024] = "";
	while (fgets(line, sizeof line, f) != NULL) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE ... */
		char *dash = strstr(line, " - ");
		if (dash == NULL || strncmp(dash + 3, "cgroup2 ", 8) != 0)
			continue;
		char root[1024], point[1024];
		if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, point) == 2 && strcmp(root, "/") == 0) {
			snprintf(mnt, sizeof mnt, "%s", point);
			break;
		}
	}
	fclose(f);
	if (mnt[0] == '\0') {
		snprintf(why, whycap, "no cgroup2 filesystem mounted");
		return -1;
	}
	int n = snprintf(out, cap, "%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel);
	if (n < 0 || (size_t)n >= cap) {
		snprintf(why, whycap, "cgroup path too long");
		return -1;
	}
	return 0;
}

void cn_rtcg_detect(cn_rtcg *cg, const char *dir)
{
	memset(cg, 0, sizeof *cg);
	char why[256] = "";
	/* fmt is a literal: the status is formatted once, in place. */
#define UNAVAILABLE(fmt, ...)                                                                  \
	do {                                                                                   \
		snprintf(cg->status, sizeof cg->status, "cgroups: unavailable (" fmt ")",      \
			 __VA_ARGS__);                                                         \
		return;                                                                        \
	} while (0)
	if (dir != NULL && dir[0] == '\0')
		UNAVAILABLE("%s", "turned off by configuration");
	if (dir != NULL) {
		if (strlen(dir) >= sizeof cg->root - 64)
			UNAVAILABLE("%s", "cgroup path too long");
		snprintf(cg->root, sizeof cg->root, "%s", dir);
	} else if (own_cgroup(cg->root, sizeof cg->root - 64, why, sizeof why) != 0) {
		UNAVAILABLE("%s", why);
	}
	struct statfs sf;
	if (statfs(cg->root, &sf) != 0)
		UNAVAILABLE("%s: %s", cg->root, strerror(errno));
	if ((unsigned long)sf.f_type != (unsigned long)CGROUP2_SUPER_MAGIC)
		UNAVAILABLE("%s is not on a cgroup2 filesystem", cg->root);
	if (access(cg->root, W_OK) != 0)
		UNAVAILABLE("%s is not writable: %s", cg->root, strerror(errno));
	char path[CN_RTREC_PATH_MAX + 32], ctl[512];
	snprintf(path, sizeof path, "%s/cgroup.controllers", cg->root);
	if (read_small(path, ctl, sizeof ctl) != 0)
		UNAVAILABLE("cannot read %s", path);
	if (!has_word(ctl, "cpu") || !has_word(ctl, "memory"))
		UNAVAILABLE("controllers cpu and memory not delegated to %s (it has: %.*s)", cg->root,
			    (int)strcspn(ctl, "\n"), ctl);
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", cg->root);
	if (read_small(path, ctl, sizeof ctl) != 0)
		UNAVAILABLE("cannot read %s", path);
	if (!has_word(ctl, "cpu") || !has_word(ctl, "memory")) {
		int e = write_small(path, "+cpu +memory");
		if (e == -EBUSY)
			UNAVAILABLE("%s has processes of its own, so it cannot enable controllers for "
				    "children: give the agent an empty delegated subtree",
				    cg->root);
		if (e != 0)
			UNAVAILABLE("cannot enable cpu, memory in %s: %s", path, strerror(-e));
	}
#undef UNAVAILABLE
	cg->ok = true;
	snprintf(cg->status, sizeof cg->status, "cgroups: v2 at %s (cpu, memory)", cg->root);
}

int cn_rtcg_create(const cn_rtcg *cg, const char *job, uint32_t replica, uint32_t cpu_millis,
		   uint32_t memory_mb, char *path, size_t cap, char *err, size_t errcap)
{
	if (!cg->ok)
		return CN_ESTATE;
	char esc[3 * 128 + 1];
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
	int w = snprintf(path, cap, "%s/%s.%u", cg->root, esc, (unsigned)replica);
	if (w < 0 || (size_t)w + 16 >= cap)
		return CN_ENOSPACE;
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errcap, "mkdir %s: %s", path, strerror(errno));
		return CN_EIO;
	}
	char file[CN_RTREC_PATH_MAX + 32], val[64];
	snprintf(file, sizeof file, "%s/cpu.max", path);
	if (cpu_millis > 0) {
		uint64_t quota = (uint64_t)cpu_millis * 100;
		snprintf(val, sizeof val, "%llu 100000", (unsigned long long)(quota < 1000 ? 1000 : quota));
	} else {
		snprintf(val, sizeof val, "max 100000");
	}
	int e = write_small(file, val);
	if (e == 0) {
		snprintf(file, sizeof file, "%s/memory.max", path);
		if (memory_mb > 0)
			snprintf(val, sizeof val, "%llu", (unsigned long long)memory_mb << 20);
		else
			snprintf(val, sizeof val, "max");
		e = write_small(file, val);
	}
	if (e != 0) {
		snprintf(err, errcap, "write %s: %s", file, strerror(-e));
		return CN_EIO;
	}
	return 0;
}

int cn_rtcg_attach(const char *path, pid_t pid)
{
	char file[CN_RTREC_PATH_MAX + 32], val[32];
	snprintf(file, sizeof file, "%s/cgroup.procs", path);
	snprintf(val, sizeof val, "%d", (int)pid);
	return write_small(file, val) == 0 ? 0 : CN_EIO;
}

int cn_rtcg_remove(const char *path)
{
	if (path[0] == '\0' || rmdir(path) == 0 || errno == ENOENT)
		return 0;
	return errno == EBUSY ? CN_EAGAIN : CN_EIO;
}
