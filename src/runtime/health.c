/* Health probes as non-blocking state machines (health.h). */
#include "runtime/health.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/proc.h"
#include "util/err.h"

void cn_rthc_init(cn_rthc *h)
{
	memset(h, 0, sizeof *h);
	h->fd = -1;
}

bool cn_rthc_busy(const cn_rthc *h)
{
	return h->phase != CN_RTHC_IDLE;
}

static int verdict(cn_rthc *h, int result)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (h->phase != CN_RTHC_REAP) {
		h->phase = CN_RTHC_IDLE;
		h->pid = 0;
	}
	return result;
}

static int fail(cn_rthc *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cn_rthc *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->why, sizeof h->why, fmt, ap);
	va_end(ap);
	return verdict(h, CN_RTHC_FAIL);
}

static int start_exec(cn_rthc *h, const cn_jobspec *spec, const char *const *envp, const char *cwd)
{
	const char *argv[CN_JOB_ARGS_MAX + 1];
	assert(spec->n_health_exec <= CN_JOB_ARGS_MAX);
	if (spec->n_health_exec == 0)
		return fail(h, "exec probe without a command");
	for (size_t i = 0; i < spec->n_health_exec; i++)
		argv[i] = cn_jobspec_str(spec, spec->health_exec[i]);
	argv[spec->n_health_exec] = NULL;
	cn_rtproc_spawn sp = {.argv = argv, .envp = envp, .cwd = cwd, .out_fd = -1};
	char err[CN_RTPROC_ERR_MAX];
	pid_t pid;
	if (cn_rtproc_spawn_run(&sp, &pid, err, sizeof err) != 0)
		return fail(h, "exec: %s", err);
	h->pid = pid;
	h->phase = CN_RTHC_EXEC;
	return CN_RTHC_PENDING;
}

static int start_connect(cn_rthc *h, const cn_jobspec *spec)
{
	if (spec->health_port == 0)
		return fail(h, "port 0");
	if (spec->health_kind == CN_JOB_HEALTH_HTTP) {
		const char *path = cn_jobspec_str(spec, spec->health_path);
		if (path[0] == '\0')
			path = "/";
		for (const char *c = path; *c; c++)
			if ((unsigned char)*c < 0x21 || (unsigned char)*c == 0x7f)
				return fail(h, "HTTP path has a space or control byte");
		int n = snprintf(h->req, sizeof h->req,
				 "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\nUser-Agent: canopy-health\r\n"
				 "Connection: close\r\n\r\n",
				 path, (unsigned)spec->health_port);
		if (n < 0 || (size_t)n >= sizeof h->req)
			return fail(h, "HTTP path too long");
		h->req_len = (size_t)n;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(h, "socket: %s", strerror(errno));
	h->fd = fd;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(spec->health_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
		return fail(h, "connect 127.0.0.1:%u: %s", (unsigned)spec->health_port, strerror(errno));
	h->phase = CN_RTHC_CONNECT;
	return CN_RTHC_PENDING;
}

int cn_rthc_start(cn_rthc *h, const cn_jobspec *spec, const char *const *envp, const char *cwd,
		  uint64_t now_ms)
{
	assert(h->phase == CN_RTHC_IDLE && h->fd < 0);
	h->kind = spec->health_kind;
	h->sent = h->got = h->req_len = 0;
	h->why[0] = '\0';
	uint32_t timeout = spec->health_timeout_ms > 0 ? spec->health_timeout_ms : 2000;
	h->deadline_ms = now_ms + timeout;
	switch (spec->health_kind) {
	case CN_JOB_HEALTH_EXEC:
		return start_exec(h, spec, envp, cwd);
	case CN_JOB_HEALTH_TCP:
	case CN_JOB_HEALTH_HTTP:
		return start_connect(h, spec);
	default:
		return fail(h, "no health check");
	}
}

static int step_exec(cn_rthc *h, uint64_t now_ms)
{
	int st;
	pid_t r = waitpid(h->pid, &st, WNOHANG);
	if (r == h->pid) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			return verdict(h, CN_RTHC_OK);
		if (WIFEXITED(st))
			return fail(h, "exec probe exited with status %d", WEXITSTATUS(st));
		return fail(h, "exec probe killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
	if (r < 0 && errno != EINTR)
		return fail(h, "exec probe: waitpid: %s", strerror(errno));
	if (now_ms < h->deadline_ms)
		return CN_RTHC_PENDING;
	cn_rtproc_kill_group(h->pid, SIGKILL);
	h->phase = CN_RTHC_REAP;
	snprintf(h->why, sizeof h->why, "exec probe timed out");
	return verdict(h, CN_RTHC_FAIL);
}

static int step_reap(cn_rthc *h)
{
	int st;
	pid_t r = waitpid(h->pid, &st, WNOHANG);
	if (r == h->pid || (r < 0 && errno == ECHILD)) {
		h->pid = 0;
		h->phase = CN_RTHC_IDLE;
	}
	return CN_RTHC_PENDING;
}

static bool ready(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	return poll(&p, 1, 0) > 0 && p.revents != 0;
}

/* "HTTP/1.x NNN ..." -> NNN, or -1. */
static int status_code(const char *s, size_t n)
{
	if (n < 12 || memcmp(s, "HTTP/", 5) != 0)
		return -1;
	const char *sp = memchr(s, ' ', n);
	if (sp == NULL || (size_t)(sp - s) + 4 > n)
		return -1;
	int code = 0;
	for (int i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return -1;
		code = code * 10 + (sp[i] - '0');
	}
	return code;
}

static int step_net(cn_rthc *h)
{
	if (h->phase == CN_RTHC_CONNECT) {
		if (!ready(h->fd, POLLOUT))
			return CN_RTHC_PENDING;
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0)
			return fail(h, "connect: %s", strerror(err));
		if (h->kind == CN_JOB_HEALTH_TCP)
			return verdict(h, CN_RTHC_OK);
		h->phase = CN_RTHC_SEND;
	}
	if (h->phase == CN_RTHC_SEND) {
		ssize_t n = send(h->fd, h->req + h->sent, h->req_len - h->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return CN_RTHC_PENDING;
		if (n < 0)
			return fail(h, "send: %s", strerror(errno));
		h->sent += (size_t)n;
		if (h->sent < h->req_len)
			return CN_RTHC_PENDING;
		h->phase = CN_RTHC_RECV;
	}
	assert(h->phase == CN_RTHC_RECV);
	for (int i = 0; i < 4; i++) {
		size_t room = sizeof h->resp - 1 - h->got;
		ssize_t n = room > 0 ? recv(h->fd, h->resp + h->got, room, MSG_DONTWAIT) : 0;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return CN_RTHC_PENDING;
		if (n < 0)
			return fail(h, "recv: %s", strerror(errno));
		h->got += (size_t)n;
		h->resp[h->got] = '\0';
		bool line = memchr(h->resp, '\n', h->got) != NULL;
		if (n == 0 || line || h->got == sizeof h->resp - 1) {
			int code = status_code(h->resp, h->got);
			if (code >= 200 && code <= 299)
				return verdict(h, CN_RTHC_OK);
			if (code < 0)
				return fail(h, "HTTP: no status line");
			return fail(h, "HTTP status %d", code);
		}
	}
	return CN_RTHC_PENDING;
}

int cn_rthc_step(cn_rthc *h, uint64_t now_ms)
{
	switch (h->phase) {
	case CN_RTHC_IDLE:
		return CN_RTHC_PENDING;
	case CN_RTHC_REAP:
		return step_reap(h);
	case CN_RTHC_EXEC:
		return step_exec(h, now_ms);
	default:
		break;
	}
	int rc = step_net(h);
	if (rc == CN_RTHC_PENDING && now_ms >= h->deadline_ms)
		return fail(h, "timed out");
	return rc;
}

pid_t cn_rthc_cancel(cn_rthc *h)
{
	pid_t left = 0;
	if ((h->phase == CN_RTHC_EXEC || h->phase == CN_RTHC_REAP) && h->pid > 0) {
		cn_rtproc_kill_group(h->pid, SIGKILL);
		int st;
		if (waitpid(h->pid, &st, WNOHANG) == 0)
			left = h->pid;
	}
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->pid = 0;
	h->phase = CN_RTHC_IDLE;
	return left;
}

int cn_rthc_pollfd(const cn_rthc *h, short *events)
{
	switch (h->phase) {
	case CN_RTHC_CONNECT:
	case CN_RTHC_SEND:
		*events = POLLOUT;
		return h->fd;
	case CN_RTHC_RECV:
		*events = POLLIN;
		return h->fd;
	default:
		return -1;
	}
}

uint64_t cn_rthc_deadline(const cn_rthc *h)
{
	if (h->phase == CN_RTHC_IDLE)
		return UINT64_MAX;
	return h->deadline_ms;
}
