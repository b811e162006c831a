#include "util/resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

extern char **environ;

enum { HOST_MAX = 253, OUT_MAX = 64 * 1024 };

static bool host_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > HOST_MAX || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* "ADDR" (v4 or v6 text) plus port into out. */
static int numeric(const char *ip, uint16_t port, cn_addr *out)
{
	char t[128];
	if (strchr(ip, ':') != NULL)
		snprintf(t, sizeof t, "[%s]:%u", ip, (unsigned)port);
	else
		snprintf(t, sizeof t, "%s:%u", ip, (unsigned)port);
	return cn_addr_parse(t, port, out);
}

static bool same_name(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* First hosts-file line naming host: 0, CN_ENOENT. */
static int from_hosts(const char *path, const char *host, uint16_t port, cn_addr *out)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return CN_ENOENT;
	char line[1024];
	int rc = CN_ENOENT;
	for (int n = 0; n < 100000 && rc != 0 && fgets(line, sizeof line, f) != NULL; n++) {
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = 0;
		char *save = NULL;
		char *ip = strtok_r(line, " \t\r\n", &save);
		if (ip == NULL)
			continue;
		for (char *name = strtok_r(NULL, " \t\r\n", &save); name != NULL;
		     name = strtok_r(NULL, " \t\r\n", &save)) {
			if (same_name(name, host) && numeric(ip, port, out) == 0) {
				rc = 0;
				break;
			}
		}
	}
	fclose(f);
	return rc;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run `getent ahosts host`; take the first address of its output. */
static int from_getent(const char *prog, const char *host, uint16_t port, cn_addr *out,
		       char *err, size_t errcap)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errcap, "cannot resolve %s: pipe: %s", host, strerror(errno));
		return CN_EINVAL;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *argv[] = {(char *)prog, (char *)"ahosts", (char *)host, NULL};
	pid_t pid;
	int e = posix_spawnp(&pid, prog, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fds[1]);
	if (e != 0) {
		close(fds[0]);
		snprintf(err, errcap, "cannot resolve %s: cannot run %s: %s", host, prog, strerror(e));
		return CN_EINVAL;
	}
	char *buf = malloc(OUT_MAX + 1);
	size_t got = 0;
	uint64_t deadline = now_ms() + CN_RESOLVE_TIMEOUT_MS;
	bool timed_out = false;
	for (int i = 0; i < 10000 && buf != NULL; i++) {
		uint64_t t = now_ms();
		if (t >= deadline) {
			timed_out = true;
			break;
		}
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		int r = poll(&p, 1, (int)(deadline - t));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = r == 0;
			break;
		}
		ssize_t n = read(fds[0], buf + got, OUT_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == OUT_MAX)
			break;
	}
	close(fds[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = CN_EINVAL;
	if (buf == NULL) {
		snprintf(err, errcap, "cannot resolve %s: out of memory", host);
	} else if (timed_out) {
		snprintf(err, errcap, "cannot resolve %s: no answer within %d ms", host,
			 CN_RESOLVE_TIMEOUT_MS);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errcap, "cannot resolve %s: unknown host", host);
	} else {
		buf[got] = 0;
		char *save = NULL;
		char *ip = strtok_r(buf, " \t\r\n", &save);
		if (ip != NULL && numeric(ip, port, out) == 0)
			rc = 0;
		else
			snprintf(err, errcap, "cannot resolve %s: unexpected answer from %s", host, prog);
	}
	free(buf);
	return rc;
}

int cn_resolve(const char *text, uint16_t default_port, const char *hosts_path, const char *getent,
	       cn_addr *out, char *err, size_t errcap)
{
	if (cn_addr_parse(text, default_port, out) == 0)
		return 0;
	char host[HOST_MAX + 8];
	if (snprintf(host, sizeof host, "%s", text) >= (int)sizeof host) {
		snprintf(err, errcap, "'%.40s...': host name too long", text);
		return CN_EINVAL;
	}
	uint16_t port = default_port;
	char *colon = strrchr(host, ':');
	if (colon != NULL) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (colon[1] == 0 || *end != 0 || p == 0 || p > 65535) {
			snprintf(err, errcap, "'%s': bad port", text);
			return CN_EINVAL;
		}
		port = (uint16_t)p;
		*colon = 0;
	}
	if (!host_ok(host)) {
		snprintf(err, errcap, "'%s': not an address or a host name", text);
		return CN_EINVAL;
	}
	if (from_hosts(hosts_path ? hosts_path : "/etc/hosts", host, port, out) == 0)
		return 0;
	if (getent != NULL && getent[0] == 0) {
		snprintf(err, errcap, "cannot resolve %s: not in the hosts file", host);
		return CN_EINVAL;
	}
	return from_getent(getent ? getent : "getent", host, port, out, err, errcap);
}
