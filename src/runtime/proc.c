/* Processes: posix_spawn, /proc/PID/stat, group signals (proc.h). */
#include "runtime/proc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static void say(char *err, size_t cap, const char *fmt, const char *a, int e)
{
	if (err == NULL || cap == 0)
		return;
	char tmp[CN_RTPROC_ERR_MAX];
	snprintf(tmp, sizeof tmp, fmt, a);
	if (e != 0)
		snprintf(err, cap, "%s: %s", tmp, strerror(e));
	else
		snprintf(err, cap, "%s", tmp);
}

static const char *env_path(const char *const *envp)
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			return envp[i] + 5;
	return DEFAULT_PATH;
}

/* Resolve argv0 against PATH into out. Returns 0, CN_ENOENT or CN_EPERM. */
static int resolve(const char *argv0, const char *path, char *out, size_t cap)
{
	if (strchr(argv0, '/') != NULL) {
		if (strlen(argv0) >= cap)
			return CN_ENOENT;
		strcpy(out, argv0);
		if (access(out, X_OK) == 0)
			return 0;
		return errno == EACCES ? CN_EPERM : CN_ENOENT;
	}
	bool seen_noexec = false;
	const char *p = path;
	for (int guard = 0; guard < 256; guard++) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		const char *dir = n == 0 ? "." : p;
		size_t dn = n == 0 ? 1 : n;
		if (dn + 1 + strlen(argv0) < cap) {
			memcpy(out, dir, dn);
			out[dn] = '/';
			strcpy(out + dn + 1, argv0);
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return 0;
				seen_noexec = true;
			}
		}
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	return seen_noexec ? CN_EPERM : CN_ENOENT;
}

static int actions_init(posix_spawn_file_actions_t *fa, const cn_rtproc_spawn *s)
{
	int e = posix_spawn_file_actions_init(fa);
	if (e != 0)
		return e;
	if (s->cwd != NULL && (e = posix_spawn_file_actions_addchdir_np(fa, s->cwd)) != 0)
		return e;
	if ((e = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)) != 0)
		return e;
	if (s->out_fd >= 0) {
		if ((e = posix_spawn_file_actions_adddup2(fa, s->out_fd, 1)) != 0 ||
		    (e = posix_spawn_file_actions_adddup2(fa, s->out_fd, 2)) != 0)
			return e;
	} else {
		if ((e = posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0)) != 0 ||
		    (e = posix_spawn_file_actions_adddup2(fa, 1, 2)) != 0)
			return e;
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* Descriptors the agent opened without O_CLOEXEC (a library's) must
	 * not leak into workloads. */
	if ((e = posix_spawn_file_actions_addclosefrom_np(fa, 3)) != 0)
		return e;
#endif
	return 0;
}

static int attr_init(posix_spawnattr_t *at)
{
	int e = posix_spawnattr_init(at);
	if (e != 0)
		return e;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
	flags |= POSIX_SPAWN_SETSID;
#else
	flags |= POSIX_SPAWN_SETPGROUP;
	if ((e = posix_spawnattr_setpgroup(at, 0)) != 0)
		return e;
#endif
	if ((e = posix_spawnattr_setsigmask(at, &none)) != 0 ||
	    (e = posix_spawnattr_setsigdefault(at, &all)) != 0 ||
	    (e = posix_spawnattr_setflags(at, flags)) != 0)
		return e;
	return 0;
}

int cn_rtproc_spawn_run(const cn_rtproc_spawn *s, pid_t *pid, char *err, size_t errcap)
{
	assert(s != NULL && s->argv != NULL && s->argv[0] != NULL && pid != NULL);
	assert(s->n_rlimits <= CN_RTPROC_RLIMITS_MAX);
	assert(s->out_fd == -1 || s->out_fd > 2);
	if (err != NULL && errcap > 0)
		err[0] = '\0';
	char prog[PATH_MAX];
	int rc = resolve(s->argv[0], env_path(s->envp), prog, sizeof prog);
	if (rc != 0) {
		say(err, errcap, rc == CN_EPERM ? "%s: not executable" : "%s: not found", s->argv[0], 0);
		return rc;
	}
	if (s->cwd != NULL) {
		struct stat st;
		if (stat(s->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {
			say(err, errcap, "workdir %s", s->cwd, errno != 0 ? errno : ENOTDIR);
			return CN_ENOENT;
		}
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int e = actions_init(&fa, s);
	if (e == 0)
		e = attr_init(&at);
	else
		posix_spawn_file_actions_destroy(&fa);
	if (e != 0) {
		say(err, errcap, "spawn setup for %s", s->argv[0], e);
		return CN_EIO;
	}
	e = posix_spawn(pid, prog, &fa, &at, (char *const *)s->argv, (char *const *)s->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (e != 0) {
		say(err, errcap, "spawn %s", prog, e);
		return e == ENOENT ? CN_ENOENT : e == EACCES ? CN_EPERM : CN_EIO;
	}
	for (size_t i = 0; i < s->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = (rlim_t)s->rlimits[i].soft,
				    .rlim_max = (rlim_t)s->rlimits[i].hard};
		if (prlimit(*pid, (__rlimit_resource_t)s->rlimits[i].resource, &rl, NULL) != 0)
			say(err, errcap, "prlimit on %s", s->argv[0], errno);
	}
	return 0;
}

int cn_rtproc_stat_parse(const char *text, size_t len, cn_rtproc_stat *out)
{
	/* "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime ...". comm may hold spaces and ')': the last
	 * ')' ends it. */
	const char *close = NULL;
	for (size_t i = 0; i < len; i++)
		if (text[i] == ')')
			close = text + i;
	if (close == NULL)
		return CN_EIO;
	const char *p = close + 1, *end = text + len;
	uint64_t field[22] = {0};
	char state = 0;
	/* fields 3 (state) .. 22 (starttime) */
	for (int f = 3; f <= 22; f++) {
		if (p >= end || *p != ' ')
			return CN_EIO;
		p++;
		if (f == 3) {
			if (p >= end || *p == ' ')
				return CN_EIO;
			state = *p++;
			continue;
		}
		bool neg = false;
		if (p < end && *p == '-') {
			neg = true;
			p++;
		}
		if (p >= end || *p < '0' || *p > '9')
			return CN_EIO;
		uint64_t v = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				return CN_EIO;
			v = v * 10 + (uint64_t)(*p - '0');
			p++;
		}
		field[f - 1] = neg ? 0 : v;
	}
	if (field[4] == 0 || field[4] > INT_MAX)
		return CN_EIO;
	out->state = state;
	out->pgrp = (pid_t)field[4];
	out->start_ticks = field[21];
	return 0;
}

int cn_rtproc_stat_read(pid_t pid, cn_rtproc_stat *out)
{
	assert(pid > 0);
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? CN_ENOENT : CN_EIO;
	ssize_t n = read(fd, text, sizeof text);
	int e = errno;
	close(fd);
	if (n < 0)
		return e == ESRCH ? CN_ENOENT : CN_EIO;
	return cn_rtproc_stat_parse(text, (size_t)n, out);
}

bool cn_rtproc_same(pid_t pid, uint64_t start_ticks)
{
	cn_rtproc_stat st;
	if (pid <= 0 || cn_rtproc_stat_read(pid, &st) != 0)
		return false;
	return st.state != 'Z' && st.state != 'X' && st.start_ticks == start_ticks;
}

int cn_rtproc_kill_group(pid_t pgid, int sig)
{
	assert(pgid > 1);
	if (kill(-pgid, sig) == 0 || errno == ESRCH)
		return 0;
	return CN_EIO;
}
