/* Tests for runtime/: the instance record codec and memory store, the
 * /proc stat parser, and the runtime with real processes: restart with
 * backoff, restart policies, exec/TCP/HTTP health checks, stop with
 * SIGTERM then SIGKILL, log capture and rotation, the environment,
 * re-adoption across runtimes, cgroup detection.
 *
 * Every wait is a loop bounded in iterations and in time (drive()); every
 * workload is bounded in time too (20 s at most: a failed test cannot run
 * its teardown, so nothing may rely on it), and each test ends
 * by stopping everything through the runtime, then SIGKILLing every
 * process group it saw and reaping every child. Timing assertions are
 * lower bounds and orderings, never exact values. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cgroup.h"
#include "runtime/health.h"
#include "runtime/logs.h"
#include "runtime/proc.h"
#include "runtime/record.h"
#include "runtime/runtime.h"
#include "store/kv.h"
#include "store/store.h"
#include "util/err.h"

#define PYTHON "/usr/bin/python3"

static char g_dir[64];
static cn_rtmem *g_mem;
static cn_rtstore g_store;
static pid_t g_seen[512];
static size_t g_n_seen;
static char g_logged[8192];

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void see(pid_t pid)
{
	if (pid <= 0)
		return;
	for (size_t i = 0; i < g_n_seen; i++)
		if (g_seen[i] == pid)
			return;
	if (g_n_seen < sizeof g_seen / sizeof g_seen[0])
		g_seen[g_n_seen++] = pid;
}

static void see_all(const cn_rt *rt)
{
	cn_rt_info info[16];
	size_t n = cn_rt_list(rt, info, 16);
	for (size_t i = 0; i < n && i < 16; i++)
		see(info[i].pid);
}

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	size_t have = strlen(g_logged);
	if (have + strlen(line) + 2 < sizeof g_logged) {
		strcat(g_logged, line);
		strcat(g_logged, "\n");
	}
}

static void setup(void)
{
	snprintf(g_dir, sizeof g_dir, "/tmp/cn_rt_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	ck_assert_int_eq(cn_rtmem_new(&g_mem), 0);
	g_store = cn_rtmem_store(g_mem);
	g_n_seen = 0;
	g_logged[0] = '\0';
}

/* Kill every group we saw, reap every child: nothing outlives a test. */
static void teardown(void)
{
	for (size_t i = 0; i < g_n_seen; i++)
		kill(-g_seen[i], SIGKILL);
	uint64_t end = now_ms() + 3000;
	for (int i = 0; i < 3000 && now_ms() < end; i++) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);
		if (r < 0)
			break; /* ECHILD: none left */
		if (r == 0)
			usleep(1000);
	}
	cn_rtmem_free(g_mem);
	g_mem = NULL;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *const g_env[] = {"PATH=/usr/bin:/bin", NULL};

static void mkcfg(cn_rt_cfg *c)
{
	cn_rt_cfg_default(c);
	c->dir = g_dir;
	c->node = "n1";
	c->store = &g_store;
	c->cgroup_dir = "";
	c->base_env = g_env;
	c->stop_grace_ms = 500;
	c->poll_ms = 50;
	c->health_failures = 2;
	c->log = log_line;
}

static void spec_init(cn_jobspec *s)
{
	memset(s, 0, sizeof *s);
	s->text_len = 1;
	s->restart_policy = CN_JOB_RESTART_ON_FAILURE;
	s->backoff_min_ms = 100;
	s->backoff_max_ms = 1000;
	s->health_interval_ms = 100;
	s->health_timeout_ms = 1000;
	s->update_healthy_for_ms = 10000;
}

static cn_jstr spec_str(cn_jobspec *s, const char *t)
{
	size_t n = strlen(t);
	ck_assert_uint_le(s->text_len + n + 1, CN_JOB_TEXT_MAX);
	cn_jstr r = {.off = s->text_len, .len = (uint16_t)n};
	memcpy(s->text + s->text_len, t, n + 1);
	s->text_len = (uint16_t)(s->text_len + n + 1);
	return r;
}

static void spec_sh(cn_jobspec *s, const char *script)
{
	s->n_command = 3;
	s->command[0] = spec_str(s, "/bin/sh");
	s->command[1] = spec_str(s, "-c");
	s->command[2] = spec_str(s, script);
}

static void spec_health_sh(cn_jobspec *s, const char *script)
{
	s->health_kind = CN_JOB_HEALTH_EXEC;
	s->n_health_exec = 3;
	s->health_exec[0] = spec_str(s, "/bin/sh");
	s->health_exec[1] = spec_str(s, "-c");
	s->health_exec[2] = spec_str(s, script);
}

static cn_rt *mkrt(const cn_rt_cfg *c)
{
	cn_rt *rt = NULL;
	ck_assert_int_eq(cn_rt_new(c, now_ms(), &rt), 0);
	return rt;
}

static void want1(cn_rt *rt, const char *job, uint32_t replica, uint64_t version, const cn_jobspec *s)
{
	cn_rt_want w = {.job = job, .replica = replica, .version = version, .spec = s};
	ck_assert_int_eq(cn_rt_set_desired(rt, &w, 1, now_ms()), 0);
}

typedef bool (*cond_fn)(cn_rt *rt, void *ctx);

/* Tick and poll until cond holds or timeout_ms passes (and at most 20,000
 * rounds). Returns whether cond held. */
static bool drive(cn_rt *rt, uint64_t timeout_ms, cond_fn cond, void *ctx)
{
	uint64_t end = now_ms() + timeout_ms;
	for (int i = 0; i < 20000; i++) {
		uint64_t t = now_ms();
		cn_rt_tick(rt, t);
		see_all(rt);
		if (cond != NULL && cond(rt, ctx))
			return true;
		if (t >= end)
			return false;
		uint64_t d = cn_rt_deadline(rt);
		uint64_t wait = d <= t ? 1 : d - t;
		if (wait > 20)
			wait = 20;
		struct pollfd p[16];
		size_t n = cn_rt_pollfds(rt, p, 16);
		poll(p, n, (int)wait);
	}
	return false;
}

typedef struct match {
	const char *job;
	uint32_t replica;
	int state;             /* 0: any */
	uint32_t restarts_min;
	pid_t not_pid;         /* 0: any */
	const char *why;       /* NULL: any; else a substring of info.why */
	cn_rt_info info;       /* last seen */
} match;

static bool cond_match(cn_rt *rt, void *ctx)
{
	match *m = ctx;
	if (cn_rt_get(rt, m->job, m->replica, &m->info) != 0)
		return false;
	return (m->state == 0 || m->info.state == m->state) && m->info.restarts >= m->restarts_min &&
	       (m->not_pid == 0 || (m->info.pid != 0 && m->info.pid != m->not_pid)) &&
	       (m->why == NULL || strstr(m->info.why, m->why) != NULL);
}

static bool cond_idle(cn_rt *rt, void *ctx)
{
	(void)ctx;
	return cn_rt_idle(rt);
}

static bool cond_gone(cn_rt *rt, void *ctx)
{
	const match *m = ctx;
	cn_rt_info info;
	return cn_rt_get(rt, m->job, m->replica, &info) == CN_ENOENT;
}

/* Stop everything through the runtime and free it. */
static void finish(cn_rt *rt)
{
	ck_assert_int_eq(cn_rt_set_desired(rt, NULL, 0, now_ms()), 0);
	ck_assert(drive(rt, 5000, cond_idle, NULL));
	cn_rt_free(rt);
}

static size_t read_text(const char *path, char *buf, size_t cap)
{
	buf[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	size_t n = 0;
	for (int i = 0; i < 1000 && n + 1 < cap; i++) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return n;
}

typedef struct text_has {
	const char *path;
	const char *needle;
} text_has;

static bool cond_file_has(cn_rt *rt, void *ctx)
{
	(void)rt;
	const text_has *t = ctx;
	static char buf[1 << 16];
	read_text(t->path, buf, sizeof buf);
	return strstr(buf, t->needle) != NULL;
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t len = sizeof sa;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- records, store, /proc parser ---- */

static void rec_sample(cn_rtrec *r)
{
	memset(r, 0, sizeof *r);
	snprintf(r->job, sizeof r->job, "plant-7/line:controller");
	r->replica = 3;
	r->version = 0x1234567890ull;
	r->pid = 4242;
	r->start_ticks = 987654321;
	r->restarts = 5;
	snprintf(r->log_path, sizeof r->log_path, "/var/lib/canopy/logs/x.3.log");
}

START_TEST(record_roundtrip_and_errors)
{
	cn_rtrec r, back;
	rec_sample(&r);
	uint8_t buf[CN_RTREC_BYTES_MAX];
	size_t len;
	ck_assert_int_eq(cn_rtrec_encode(&r, buf, sizeof buf, &len), 0);
	ck_assert_int_eq(cn_rtrec_decode(buf, len, &back), 0);
	ck_assert_mem_eq(&r, &back, sizeof r);
	/* every truncation fails cleanly */
	for (size_t i = 0; i < len; i++)
		ck_assert_int_ne(cn_rtrec_decode(buf, i, &back), 0);
	ck_assert_int_eq(cn_rtrec_decode(NULL, 0, &back), CN_ETRUNC);
	/* trailing bytes */
	buf[len] = 0xc0;
	ck_assert_int_eq(cn_rtrec_decode(buf, len + 1, &back), CN_ETRAILING);
	/* too small an output buffer */
	ck_assert_int_eq(cn_rtrec_encode(&r, buf, 10, &len), CN_ENOSPACE);
	/* a map declaring four billion entries in five bytes */
	const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_ne(cn_rtrec_decode(huge, sizeof huge, &back), 0);
	/* missing pid: {1: "a", 2: 0, 3: 1, 5: 1} */
	const uint8_t nopid[] = {0x84, 0x01, 0xa1, 'a', 0x02, 0x00, 0x03, 0x01, 0x05, 0x01};
	ck_assert_int_eq(cn_rtrec_decode(nopid, sizeof nopid, &back), CN_EMISSING);
	/* pid 1 is out of range; a bad job name; a duplicate key; unknown key skipped */
	const uint8_t pid1[] = {0x85, 0x01, 0xa1, 'a', 0x02, 0x00, 0x03, 0x01, 0x04, 0x01, 0x05, 0x01};
	ck_assert_int_eq(cn_rtrec_decode(pid1, sizeof pid1, &back), CN_ERANGE);
	const uint8_t badname[] = {0x85, 0x01, 0xa2, '.', ' ', 0x02, 0x00, 0x03, 0x01, 0x04, 0x09, 0x05, 0x01};
	ck_assert_int_eq(cn_rtrec_decode(badname, sizeof badname, &back), CN_EINVAL);
	const uint8_t dup[] = {0x86, 0x01, 0xa1, 'a', 0x02, 0x00, 0x03, 0x01, 0x04, 0x09, 0x05, 0x01, 0x04, 0x09};
	ck_assert_int_eq(cn_rtrec_decode(dup, sizeof dup, &back), CN_EINVAL);
	const uint8_t extra[] = {0x86, 0x01, 0xa1, 'a', 0x02, 0x00, 0x03, 0x01, 0x04, 0x09, 0x05, 0x01, 0x63, 0x91, 0xc0};
	ck_assert_int_eq(cn_rtrec_decode(extra, sizeof extra, &back), 0);
	ck_assert_str_eq(back.job, "a");
	ck_assert_int_eq(back.pid, 9);
	char key[CN_RTREC_KEY_MAX];
	cn_rtrec_key("a/b", 12, key, sizeof key);
	ck_assert_str_eq(key, "a/b/12");
}
END_TEST

START_TEST(memstore_put_del_scan)
{
	cn_rtmem *m;
	ck_assert_int_eq(cn_rtmem_new(&m), 0);
	cn_rtstore s = cn_rtmem_store(m);
	ck_assert_int_eq(s.put(s.ctx, "a/0", (const uint8_t *)"x", 1), 0);
	ck_assert_int_eq(s.put(s.ctx, "a/0", (const uint8_t *)"yy", 2), 0);
	ck_assert_int_eq(s.put(s.ctx, "b/1", (const uint8_t *)"z", 1), 0);
	ck_assert_uint_eq(cn_rtmem_count(m), 2);
	ck_assert_int_eq(s.del(s.ctx, "a/0"), 0);
	ck_assert_int_eq(s.del(s.ctx, "nope/0"), 0);
	ck_assert_uint_eq(cn_rtmem_count(m), 1);
	cn_rtmem_fail_puts(m, true);
	ck_assert_int_eq(s.put(s.ctx, "c/0", (const uint8_t *)"z", 1), CN_EIO);
	cn_rtmem_free(m);
}
END_TEST

START_TEST(proc_stat_parse)
{
	cn_rtproc_stat st;
	const char *t = "1234 (a) (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
			"5555 1000 100 18446744073709551615\n";
	ck_assert_int_eq(cn_rtproc_stat_parse(t, strlen(t), &st), 0);
	ck_assert_int_eq(st.state, 'S');
	ck_assert_int_eq(st.pgrp, 1234);
	ck_assert_uint_eq(st.start_ticks, 5555);
	ck_assert_int_eq(cn_rtproc_stat_parse("1 (x) S 1 2", 11, &st), CN_EIO);
	ck_assert_int_eq(cn_rtproc_stat_parse("garbage", 7, &st), CN_EIO);
	ck_assert_int_eq(cn_rtproc_stat_read(getpid(), &st), 0);
	ck_assert(cn_rtproc_same(getpid(), st.start_ticks));
	ck_assert(!cn_rtproc_same(getpid(), st.start_ticks + 1));
}
END_TEST

START_TEST(set_desired_validates)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "sleep 20");
	cn_rt_want w[2] = {{.job = "a", .replica = 0, .version = 1, .spec = &s},
			   {.job = "a", .replica = 0, .version = 1, .spec = &s}};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), CN_EEXIST);
	w[1].job = "/bad";
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), CN_EINVAL);
	w[1].job = "a b";
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), CN_EINVAL);
	cn_jobspec empty;
	spec_init(&empty);
	w[1].job = "b";
	w[1].spec = &empty;
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), CN_EINVAL);
	cn_rt_info info[2];
	ck_assert_uint_eq(cn_rt_list(rt, info, 2), 0); /* nothing changed */
	cn_rt_free(rt);
	cn_rt_cfg bad = c;
	bad.dir = NULL;
	ck_assert_int_eq(cn_rt_new(&bad, 0, &rt), CN_EINVAL);
	ck_assert_ptr_null(rt);
}
END_TEST

/* ---- processes ---- */

START_TEST(restart_on_crash_with_backoff)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	char stamps[128], script[256];
	snprintf(stamps, sizeof stamps, "%s/stamps", g_dir);
	snprintf(script, sizeof script, "date +%%s%%N >> %s; exit 3", stamps);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, script);
	s.backoff_min_ms = 100;
	s.backoff_max_ms = 400;
	want1(rt, "crashy", 0, 1, &s);
	ck_assert_uint_le(cn_rt_deadline(rt), now_ms()); /* a start is due at once */
	match m = {.job = "crashy", .replica = 0, .restarts_min = 4, .state = CN_RT_BACKOFF};
	ck_assert(drive(rt, 8000, cond_match, &m));
	ck_assert(m.info.has_exit);
	ck_assert(WIFEXITED(m.info.last_exit));
	ck_assert_int_eq(WEXITSTATUS(m.info.last_exit), 3);
	ck_assert_uint_ge(m.info.failures_in_row, 4);
	/* start times: gaps at least 100, 200, 400, 400 ms (less 10 ms of
	 * clock granularity), and growing until the cap */
	char text[4096];
	read_text(stamps, text, sizeof text);
	uint64_t t[8];
	size_t n = 0;
	for (char *p = strtok(text, "\n"); p && n < 8; p = strtok(NULL, "\n"))
		t[n++] = strtoull(p, NULL, 10) / 1000000u;
	ck_assert_uint_ge(n, 5);
	const uint64_t min_gap[] = {100, 200, 400, 400};
	for (size_t i = 0; i < 4; i++)
		ck_assert_uint_ge(t[i + 1] - t[i] + 10, min_gap[i]);
	ck_assert_uint_gt(t[3] - t[2], t[1] - t[0]);
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_ge(st.restarts, 4);
	ck_assert_uint_eq(st.spawn_errors, 0);
	ck_assert_ptr_nonnull(strstr(g_logged, "restarts in"));
	finish(rt);
}
END_TEST

START_TEST(backoff_resets_after_healthy_run)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.healthy_reset_ms = 150;
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "sleep 0.3; exit 1");
	s.backoff_min_ms = 50;
	s.backoff_max_ms = 5000;
	want1(rt, "steady", 0, 1, &s);
	match m = {.job = "steady", .replica = 0, .restarts_min = 3, .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 8000, cond_match, &m));
	/* each run lasted longer than the reset window: never two in a row */
	ck_assert_uint_le(m.info.failures_in_row, 1);
	finish(rt);
}
END_TEST

START_TEST(restart_policies)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec ok_onfail, fail_never, ok_always, bad_cmd;
	spec_init(&ok_onfail);
	spec_sh(&ok_onfail, "exit 0");
	spec_init(&fail_never);
	spec_sh(&fail_never, "exit 7");
	fail_never.restart_policy = CN_JOB_RESTART_NEVER;
	spec_init(&ok_always);
	spec_sh(&ok_always, "exit 0");
	ok_always.restart_policy = CN_JOB_RESTART_ALWAYS;
	ok_always.backoff_min_ms = 50;
	spec_init(&bad_cmd);
	bad_cmd.n_command = 1;
	bad_cmd.command[0] = spec_str(&bad_cmd, "/nonexistent/program");
	bad_cmd.restart_policy = CN_JOB_RESTART_NEVER;
	cn_jobspec bad_wd;
	spec_init(&bad_wd);
	spec_sh(&bad_wd, "exit 0");
	bad_wd.workdir = spec_str(&bad_wd, "/nonexistent/dir");
	bad_wd.restart_policy = CN_JOB_RESTART_NEVER;
	cn_rt_want w[] = {
		{.job = "a-onfail", .version = 1, .spec = &ok_onfail},
		{.job = "b-never", .version = 1, .spec = &fail_never},
		{.job = "c-always", .version = 1, .spec = &ok_always},
		{.job = "d-missing", .version = 1, .spec = &bad_cmd},
		{.job = "e-workdir", .version = 1, .spec = &bad_wd},
	};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 5, now_ms()), 0);
	match m = {.job = "c-always", .restarts_min = 3};
	ck_assert(drive(rt, 5000, cond_match, &m));
	drive(rt, 300, NULL, NULL); /* time for a wrong restart to show */
	cn_rt_info info[5];
	ck_assert_uint_eq(cn_rt_list(rt, info, 5), 5);
	ck_assert_str_eq(info[0].job, "a-onfail");
	ck_assert_int_eq(info[0].state, CN_RT_EXITED);
	ck_assert_uint_eq(info[0].restarts, 0);
	ck_assert_int_eq(info[1].state, CN_RT_FAILED);
	ck_assert_uint_eq(info[1].restarts, 0);
	ck_assert_int_eq(WEXITSTATUS(info[1].last_exit), 7);
	ck_assert_uint_ge(info[2].restarts, 3);
	ck_assert_int_eq(info[3].state, CN_RT_FAILED);
	ck_assert_ptr_nonnull(strstr(info[3].why, "not found"));
	ck_assert_int_eq(info[4].state, CN_RT_FAILED);
	ck_assert_ptr_nonnull(strstr(info[4].why, "workdir /nonexistent/dir"));
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_eq(st.spawn_errors, 2);
	ck_assert_uint_ge(st.drift, 3); /* wanted, not running */
	/* a new version of an exited job starts again */
	w[0].version = 2;
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 5, now_ms()), 0);
	match m2 = {.job = "a-onfail", .restarts_min = 1, .state = CN_RT_EXITED};
	ck_assert(drive(rt, 3000, cond_match, &m2));
	ck_assert_uint_eq(m2.info.version, 2);
	finish(rt);
}
END_TEST

START_TEST(health_exec_ok_fail_and_timeout)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec good, bad, slow_never;
	spec_init(&good);
	spec_sh(&good, "sleep 20");
	spec_health_sh(&good, "test \"$CANOPY_JOB\" = good");
	spec_init(&bad);
	spec_sh(&bad, "sleep 20");
	spec_health_sh(&bad, "exit 1");
	bad.backoff_min_ms = 50;
	spec_init(&slow_never);
	spec_sh(&slow_never, "sleep 20");
	spec_health_sh(&slow_never, "sleep 5");
	slow_never.health_timeout_ms = 150;
	slow_never.restart_policy = CN_JOB_RESTART_NEVER;
	cn_rt_want w[] = {
		{.job = "good", .version = 1, .spec = &good},
		{.job = "bad", .version = 1, .spec = &bad},
		{.job = "slow", .version = 1, .spec = &slow_never},
	};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 3, now_ms()), 0);
	match mg = {.job = "good", .state = CN_RT_HEALTHY};
	ck_assert(drive(rt, 5000, cond_match, &mg));
	match mb = {.job = "bad", .restarts_min = 1};
	ck_assert(drive(rt, 5000, cond_match, &mb));
	ck_assert_ptr_nonnull(strstr(g_logged, "bad/0 unhealthy"));
	match ms = {.job = "slow", .state = CN_RT_UNHEALTHY};
	ck_assert(drive(rt, 5000, cond_match, &ms));
	ck_assert_ptr_nonnull(strstr(ms.info.why, "timed out"));
	pid_t slow_pid = ms.info.pid;
	drive(rt, 400, NULL, NULL);
	ck_assert_int_eq(cn_rt_get(rt, "slow", 0, &ms.info), 0);
	ck_assert_int_eq(ms.info.pid, slow_pid); /* never: unhealthy, not restarted */
	ck_assert_uint_eq(ms.info.restarts, 0);
	ck_assert_int_eq(cn_rt_get(rt, "good", 0, &mg.info), 0);
	ck_assert_int_eq(mg.info.state, CN_RT_HEALTHY);
	ck_assert_uint_eq(mg.info.restarts, 0);
	finish(rt);
}
END_TEST

START_TEST(health_tcp)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	uint16_t port = free_port(), dead = free_port();
	char script[512];
	snprintf(script, sizeof script,
		 "import socket, time\n"
		 "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
		 "s.bind(('127.0.0.1', %u)); s.listen(16)\n"
		 "end = time.time() + 20\n"
		 "while time.time() < end:\n"
		 "    s.settimeout(1)\n"
		 "    try: s.accept()[0].close()\n"
		 "    except OSError: pass\n",
		 (unsigned)port);
	cn_jobspec up, down;
	spec_init(&up);
	up.n_command = 3;
	up.command[0] = spec_str(&up, PYTHON);
	up.command[1] = spec_str(&up, "-c");
	up.command[2] = spec_str(&up, script);
	up.health_kind = CN_JOB_HEALTH_TCP;
	up.health_port = port;
	spec_init(&down);
	spec_sh(&down, "sleep 20");
	down.health_kind = CN_JOB_HEALTH_TCP;
	down.health_port = dead;
	down.backoff_min_ms = 50;
	cn_rt_want w[] = {{.job = "listener", .version = 1, .spec = &up},
			  {.job = "nolistener", .version = 1, .spec = &down}};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), 0);
	match mu = {.job = "listener", .state = CN_RT_HEALTHY};
	ck_assert(drive(rt, 8000, cond_match, &mu));
	match md = {.job = "nolistener", .restarts_min = 1};
	ck_assert(drive(rt, 5000, cond_match, &md));
	ck_assert_ptr_nonnull(strstr(md.info.why, "connect"));
	finish(rt);
}
END_TEST

START_TEST(health_http)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	uint16_t p1 = free_port(), p2 = free_port();
	char port1[16], port2[16];
	snprintf(port1, sizeof port1, "%u", (unsigned)p1);
	snprintf(port2, sizeof port2, "%u", (unsigned)p2);
	cn_jobspec ok, missing;
	/* python3 -m http.server, ending by itself after 20 s (SIGALRM) even
	 * if a failed test never stops it */
	const char *srv[] = {PYTHON, "-c",
			     "import functools, http.server, signal, sys\n"
			     "signal.alarm(20)\n"
			     "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])\n"
			     "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), h).serve_forever()\n",
			     NULL, g_dir};
	spec_init(&ok);
	spec_init(&missing);
	ok.n_command = missing.n_command = 5;
	for (size_t i = 0; i < 5; i++) {
		ok.command[i] = spec_str(&ok, srv[i] ? srv[i] : port1);
		missing.command[i] = spec_str(&missing, srv[i] ? srv[i] : port2);
	}
	ok.health_kind = missing.health_kind = CN_JOB_HEALTH_HTTP;
	ok.health_port = p1;
	ok.health_path = spec_str(&ok, "/");
	missing.health_port = p2;
	missing.health_path = spec_str(&missing, "/no-such-file");
	missing.restart_policy = CN_JOB_RESTART_NEVER;
	cn_rt_want w[] = {{.job = "web", .version = 1, .spec = &ok},
			  {.job = "web404", .version = 1, .spec = &missing}};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), 0);
	match mo = {.job = "web", .state = CN_RT_HEALTHY};
	ck_assert(drive(rt, 10000, cond_match, &mo));
	/* the first probes may find the server not listening yet */
	match mm = {.job = "web404", .state = CN_RT_UNHEALTHY, .why = "HTTP status 404"};
	ck_assert(drive(rt, 10000, cond_match, &mm));
	ck_assert_ptr_nonnull(strstr(mm.info.why, "HTTP status 404"));
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_ge(st.probes_ok, 1);
	ck_assert_uint_ge(st.probes_failed, 2);
	finish(rt);
}
END_TEST

START_TEST(stop_term_then_kill)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.stop_grace_ms = 300;
	cn_rt *rt = mkrt(&c);
	cn_jobspec stubborn, polite;
	spec_init(&stubborn);
	spec_sh(&stubborn, "trap '' TERM; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done");
	spec_init(&polite);
	spec_sh(&polite, "echo ready; exec sleep 20");
	cn_rt_want w[] = {{.job = "polite", .version = 1, .spec = &polite},
			  {.job = "stubborn", .version = 1, .spec = &stubborn}};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), 0);
	match ms = {.job = "stubborn", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &ms));
	match mp = {.job = "polite", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &mp));
	text_has ready = {ms.info.log_path, "ready"};
	ck_assert(drive(rt, 3000, cond_file_has, &ready)); /* the trap is set */
	ready.path = mp.info.log_path;
	ck_assert(drive(rt, 3000, cond_file_has, &ready));
	pid_t spid = ms.info.pid, ppid = mp.info.pid;
	uint64_t t0 = now_ms();
	ck_assert_int_eq(cn_rt_set_desired(rt, NULL, 0, t0), 0);
	ck_assert(drive(rt, 3000, cond_gone, &mp));
	uint64_t t_polite = now_ms() - t0;
	ck_assert(drive(rt, 3000, cond_gone, &ms));
	uint64_t t_stubborn = now_ms() - t0;
	ck_assert_uint_ge(t_stubborn, 300);
	ck_assert_uint_lt(t_polite, 300);
	ck_assert_int_eq(kill(spid, 0), -1);
	ck_assert_int_eq(kill(ppid, 0), -1);
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_eq(st.kills, 1);
	char text[4096];
	read_text(ms.info.log_path, text, sizeof text);
	ck_assert_ptr_nonnull(strstr(text, "SIGKILL"));
	ck_assert_ptr_nonnull(strstr(text, "killed by signal 9"));
	read_text(mp.info.log_path, text, sizeof text);
	ck_assert_ptr_nonnull(strstr(text, "killed by signal 15"));
	ck_assert_uint_eq(cn_rtmem_count(g_mem), 0); /* records go with the processes */
	finish(rt);
}
END_TEST

/* The deadline never asks for a busy loop: not while running, not while
 * stopping, not while unhealthy under `never`. */
START_TEST(deadline_is_not_busy)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.stop_grace_ms = 400;
	cn_rt *rt = mkrt(&c);
	ck_assert_uint_eq(cn_rt_deadline(rt), UINT64_MAX); /* nothing to do */
	cn_jobspec run, sick;
	spec_init(&run);
	spec_sh(&run, "trap '' TERM; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done");
	spec_init(&sick);
	spec_sh(&sick, "exec sleep 20");
	spec_health_sh(&sick, "exit 1");
	sick.restart_policy = CN_JOB_RESTART_NEVER;
	sick.health_interval_ms = 200;
	cn_rt_want w[] = {{.job = "run", .version = 1, .spec = &run},
			  {.job = "sick", .version = 1, .spec = &sick}};
	ck_assert_int_eq(cn_rt_set_desired(rt, w, 2, now_ms()), 0);
	match mr = {.job = "run", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &mr));
	text_has ready = {mr.info.log_path, "ready"};
	ck_assert(drive(rt, 3000, cond_file_has, &ready));
	match ms = {.job = "sick", .state = CN_RT_UNHEALTHY};
	ck_assert(drive(rt, 5000, cond_match, &ms));
	uint64_t t = now_ms();
	cn_rt_tick(rt, t);
	ck_assert_uint_gt(cn_rt_deadline(rt), t);
	ck_assert_uint_le(cn_rt_deadline(rt), t + 200);
	/* stopping the one that ignores SIGTERM: next is the poll or the grace */
	ck_assert_int_eq(cn_rt_set_desired(rt, &w[1], 1, t), 0);
	cn_rt_tick(rt, t);
	ck_assert_int_eq(cn_rt_get(rt, "run", 0, &mr.info), 0);
	ck_assert_int_eq(mr.info.state, CN_RT_STOPPING);
	ck_assert_uint_gt(cn_rt_deadline(rt), t);
	ck_assert_uint_le(cn_rt_deadline(rt), t + 400);
	match mg = {.job = "run"};
	ck_assert(drive(rt, 3000, cond_gone, &mg));
	finish(rt);
}
END_TEST

START_TEST(version_change_replaces_process)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	want1(rt, "svc", 1, 10, &s);
	match m = {.job = "svc", .replica = 1, .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	pid_t old = m.info.pid;
	want1(rt, "svc", 1, 11, &s);
	match m2 = {.job = "svc", .replica = 1, .state = CN_RT_RUNNING, .not_pid = old};
	ck_assert(drive(rt, 3000, cond_match, &m2));
	ck_assert_uint_eq(m2.info.version, 11);
	ck_assert_int_eq(kill(old, 0), -1);
	ck_assert_uint_eq(m2.info.failures_in_row, 0);
	finish(rt);
}
END_TEST

START_TEST(logs_capture_env_and_workdir)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	char wd[128];
	snprintf(wd, sizeof wd, "%s/app-work", g_dir);
	ck_assert_int_eq(mkdir(wd, 0755), 0);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "echo out-line; echo err-line >&2; echo \"wd=$(pwd)\"; "
		    "echo \"job=$CANOPY_JOB rep=$CANOPY_REPLICA ver=$CANOPY_VERSION node=$CANOPY_NODE\"; "
		    "echo \"foo=$FOO path=$PATH\"; echo done-line; exec sleep 20");
	s.n_env = 2;
	s.env[0].key = spec_str(&s, "CANOPY_JOB"); /* may not override */
	s.env[0].value = spec_str(&s, "evil");
	s.env[1].key = spec_str(&s, "FOO");
	s.env[1].value = spec_str(&s, "bar baz");
	s.workdir = spec_str(&s, wd);
	want1(rt, "team/app", 2, 77, &s);
	match m = {.job = "team/app", .replica = 2, .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	char expect[256];
	snprintf(expect, sizeof expect, "%s/logs/team%%2Fapp.2.log", g_dir);
	ck_assert_str_eq(m.info.log_path, expect);
	text_has done = {m.info.log_path, "done-line"};
	ck_assert(drive(rt, 3000, cond_file_has, &done));
	char text[4096], line[256];
	read_text(m.info.log_path, text, sizeof text);
	ck_assert_ptr_nonnull(strstr(text, "out-line\n"));
	ck_assert_ptr_nonnull(strstr(text, "err-line\n"));
	snprintf(line, sizeof line, "wd=%s\n", wd);
	ck_assert_ptr_nonnull(strstr(text, line));
	ck_assert_ptr_nonnull(strstr(text, "job=team/app rep=2 ver=77 node=n1\n"));
	ck_assert_ptr_nonnull(strstr(text, "foo=bar baz path=/usr/bin:/bin\n"));
	ck_assert_ptr_nonnull(strstr(text, "[canopy] starting team/app/2 version 77"));
	/* without a workdir: DIR/work */
	cn_jobspec d;
	spec_init(&d);
	spec_sh(&d, "echo \"wd=$(pwd)\"; exec sleep 20");
	want1(rt, "plain", 0, 1, &d);
	match mp = {.job = "plain", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &mp));
	snprintf(line, sizeof line, "wd=%s/work\n", g_dir);
	text_has wdl = {mp.info.log_path, line};
	ck_assert(drive(rt, 3000, cond_file_has, &wdl));
	finish(rt);
}
END_TEST

START_TEST(log_rotation_copy_truncate)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.log_max_bytes = 4096;
	c.log_keep = 2;
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	/* ~100 bytes a line, 600 lines over ~3 s, then the last marker */
	spec_sh(&s, "i=0; while [ $i -lt 600 ]; do "
		    "echo \"line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; "
		    "i=$((i+1)); [ $((i % 20)) -eq 0 ] && sleep 0.1; done; echo last-line; exec sleep 20");
	want1(rt, "chatty", 0, 1, &s);
	match m = {.job = "chatty", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	text_has last = {m.info.log_path, "last-line"};
	ck_assert(drive(rt, 15000, cond_file_has, &last)); /* written after rotations, to the same fd */
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_ge(st.rotations, 3);
	char p1[1100], p2[1100], p3[1100], text[1 << 14];
	snprintf(p1, sizeof p1, "%s.1", m.info.log_path);
	snprintf(p2, sizeof p2, "%s.2", m.info.log_path);
	snprintf(p3, sizeof p3, "%s.3", m.info.log_path);
	struct stat sb;
	ck_assert_int_eq(stat(p1, &sb), 0);
	ck_assert_int_eq(stat(p2, &sb), 0);
	ck_assert_int_ne(stat(p3, &sb), 0); /* keep = 2 */
	read_text(p1, text, sizeof text);
	ck_assert_ptr_nonnull(strstr(text, "line "));
	ck_assert_int_eq(stat(m.info.log_path, &sb), 0);
	/* after a truncate, O_APPEND writes land at the start: no hole */
	read_text(m.info.log_path, text, sizeof text);
	ck_assert(text[0] != '\0');
	ck_assert_uint_eq(strlen(text), (size_t)sb.st_size);
	ck_assert_uint_eq(m.info.restarts, 0);
	finish(rt);
}
END_TEST

START_TEST(readopt_after_runtime_restart)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "echo first; exec sleep 20");
	spec_health_sh(&s, "true");
	want1(rt, "keep", 0, 5, &s);
	match m = {.job = "keep", .state = CN_RT_HEALTHY};
	ck_assert(drive(rt, 3000, cond_match, &m));
	pid_t pid = m.info.pid;
	ck_assert_uint_eq(cn_rtmem_count(g_mem), 1);
	cn_rt_free(rt); /* the agent restarts: nothing is stopped */
	ck_assert_int_eq(kill(pid, 0), 0);

	rt = mkrt(&c);
	cn_rt_info info;
	ck_assert_int_eq(cn_rt_get(rt, "keep", 0, &info), 0);
	ck_assert(info.adopted);
	ck_assert_int_eq(info.pid, pid);
	ck_assert_uint_eq(info.version, 5);
	ck_assert_int_eq(info.state, CN_RT_RUNNING);
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_eq(st.adopted, 1);
	/* before the first desired set, nothing is stopped */
	drive(rt, 200, NULL, NULL);
	ck_assert_int_eq(cn_rt_get(rt, "keep", 0, &info), 0);
	ck_assert_int_eq(info.pid, pid);
	/* wanted at the same version: kept, and probed */
	want1(rt, "keep", 0, 5, &s);
	ck_assert_int_eq(cn_rt_get(rt, "keep", 0, &info), 0);
	ck_assert_int_eq(info.state, CN_RT_STARTING);
	match mh = {.job = "keep", .state = CN_RT_HEALTHY};
	ck_assert(drive(rt, 3000, cond_match, &mh));
	ck_assert_int_eq(mh.info.pid, pid);
	ck_assert(mh.info.adopted);
	ck_assert_uint_eq(mh.info.restarts, 0);
	/* and it can be stopped through its group */
	ck_assert_int_eq(cn_rt_set_desired(rt, NULL, 0, now_ms()), 0);
	match mg = {.job = "keep"};
	ck_assert(drive(rt, 3000, cond_gone, &mg));
	/* it was our own child in this test: reap it to be sure it died */
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGTERM);
	ck_assert_uint_eq(cn_rtmem_count(g_mem), 0);
	cn_rt_free(rt);
}
END_TEST

static int count_cb(void *ctx, const char *key, const uint8_t *val, size_t len)
{
	(void)key, (void)val, (void)len;
	(*(int *)ctx)++;
	return 0;
}

static int kv_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
	return cn_kv_put(ctx, key, val, len);
}

static int kv_del(void *ctx, const char *key)
{
	return cn_kv_del(ctx, key);
}

static int kv_scan(void *ctx, cn_rtstore_scan_cb cb, void *cb_ctx)
{
	return cn_kv_scan(ctx, cb, cb_ctx);
}

/* The agent's way: records in a named LMDB database, closed and reopened
 * between the two runtimes as across an agent restart. */
START_TEST(readopt_through_lmdb)
{
	char sdir[128], err[256];
	snprintf(sdir, sizeof sdir, "%s/store", g_dir);
	ck_assert_int_eq(mkdir(sdir, 0700), 0);
	cn_store *st;
	cn_kv *kv;
	ck_assert_int_eq(cn_store_open(sdir, 0, &st, err, sizeof err), 0);
	ck_assert_int_eq(cn_kv_open(st, "runtime", &kv), 0);
	cn_rtstore store = {kv, kv_put, kv_del, kv_scan};
	cn_rt_cfg c;
	mkcfg(&c);
	c.store = &store;
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	want1(rt, "ns/db", 4, 9, &s);
	match m = {.job = "ns/db", .replica = 4, .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	cn_rt_free(rt);
	cn_kv_close(kv);
	cn_store_close(st);

	ck_assert_int_eq(cn_store_open(sdir, 0, &st, err, sizeof err), 0);
	ck_assert_int_eq(cn_kv_open(st, "runtime", &kv), 0);
	store.ctx = kv;
	rt = mkrt(&c);
	cn_rt_info info;
	ck_assert_int_eq(cn_rt_get(rt, "ns/db", 4, &info), 0);
	ck_assert(info.adopted);
	ck_assert_int_eq(info.pid, m.info.pid);
	ck_assert_uint_eq(info.version, 9);
	ck_assert_str_eq(info.log_path, m.info.log_path);
	finish(rt);
	int n = 0;
	ck_assert_int_eq(cn_kv_scan(kv, count_cb, &n), 0);
	ck_assert_int_eq(n, 0); /* the record went with the process */
	cn_kv_close(kv);
	cn_store_close(st);
}
END_TEST

/* An adopted process keeps the log descriptor it was born with: rotation
 * (copy-truncate) still works on it, and a stop still ends with SIGKILL
 * when it ignores SIGTERM. */
START_TEST(adopted_rotates_and_is_killed)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.stop_grace_ms = 300;
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "trap '' TERM; i=0; while [ $i -lt 400 ]; do "
		    "echo \"line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; "
		    "i=$((i+1)); [ $((i % 10)) -eq 0 ] && sleep 0.05; done; echo last-line; "
		    "i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done");
	want1(rt, "w", 0, 1, &s);
	match m = {.job = "w", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	cn_rt_free(rt);

	c.log_max_bytes = 4096;
	c.log_keep = 1;
	rt = mkrt(&c);
	want1(rt, "w", 0, 1, &s);
	text_has last = {m.info.log_path, "last-line"};
	ck_assert(drive(rt, 15000, cond_file_has, &last));
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_ge(st.rotations, 1);
	cn_rt_info info;
	ck_assert_int_eq(cn_rt_get(rt, "w", 0, &info), 0);
	ck_assert(info.adopted);
	ck_assert_int_eq(info.pid, m.info.pid);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(cn_rt_set_desired(rt, NULL, 0, t0), 0);
	match mg = {.job = "w"};
	ck_assert(drive(rt, 3000, cond_gone, &mg));
	ck_assert_uint_ge(now_ms() - t0, 300);
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_eq(st.kills, 1);
	int status = 0;
	ck_assert_int_eq(waitpid(m.info.pid, &status, 0), m.info.pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	cn_rt_free(rt);
}
END_TEST

START_TEST(readopt_refuses_mismatched_start_time)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	want1(rt, "job", 0, 1, &s);
	match m = {.job = "job", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	pid_t pid = m.info.pid;
	cn_rt_free(rt);
	/* the record now says the pid started at another time: a reused pid */
	cn_rtrec r;
	memset(&r, 0, sizeof r);
	snprintf(r.job, sizeof r.job, "job");
	r.pid = pid;
	cn_rtproc_stat ps;
	ck_assert_int_eq(cn_rtproc_stat_read(pid, &ps), 0);
	r.start_ticks = ps.start_ticks + 1;
	r.version = 1;
	uint8_t buf[CN_RTREC_BYTES_MAX];
	size_t len;
	ck_assert_int_eq(cn_rtrec_encode(&r, buf, sizeof buf, &len), 0);
	ck_assert_int_eq(cn_rtmem_put(g_mem, "job/0", buf, len), 0);
	/* and a garbage record, and one under the wrong key */
	ck_assert_int_eq(cn_rtmem_put(g_mem, "junk/0", (const uint8_t *)"\xdf\xff\xff", 3), 0);
	ck_assert_int_eq(cn_rtmem_put(g_mem, "other/9", buf, len), 0);

	rt = mkrt(&c);
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_eq(st.adopted, 0);
	ck_assert_uint_eq(st.discarded, 1);
	ck_assert_uint_eq(st.bad_records, 2);
	ck_assert_uint_eq(cn_rtmem_count(g_mem), 0);
	cn_rt_info info;
	ck_assert_int_eq(cn_rt_get(rt, "job", 0, &info), CN_ENOENT);
	ck_assert_int_eq(kill(pid, 0), 0); /* not ours: not touched */
	/* still wanted: a new process is started */
	want1(rt, "job", 0, 1, &s);
	match m2 = {.job = "job", .state = CN_RT_RUNNING, .not_pid = pid};
	ck_assert(drive(rt, 3000, cond_match, &m2));
	ck_assert(!m2.info.adopted);
	finish(rt);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

START_TEST(adopted_exit_is_noticed_and_restarted)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	s.backoff_min_ms = 50;
	want1(rt, "ad", 0, 1, &s);
	match m = {.job = "ad", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	pid_t pid = m.info.pid;
	cn_rt_free(rt);
	rt = mkrt(&c);
	want1(rt, "ad", 0, 1, &s);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid); /* as init would */
	match m2 = {.job = "ad", .state = CN_RT_RUNNING, .not_pid = pid};
	ck_assert(drive(rt, 3000, cond_match, &m2));
	ck_assert(!m2.info.adopted);
	ck_assert_uint_eq(m2.info.restarts, 1);
	ck_assert(!m2.info.has_exit || m2.info.pid != pid);
	finish(rt);
}
END_TEST

START_TEST(store_failures_are_counted)
{
	cn_rt_cfg c;
	mkcfg(&c);
	cn_rt *rt = mkrt(&c);
	cn_rtmem_fail_puts(g_mem, true);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	want1(rt, "x", 0, 1, &s);
	match m = {.job = "x", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	cn_rt_stats st;
	cn_rt_stats_get(rt, &st);
	ck_assert_uint_ge(st.store_errors, 1);
	ck_assert_ptr_nonnull(strstr(g_logged, "cannot record"));
	finish(rt);
}
END_TEST

START_TEST(cgroup_detection)
{
	cn_rtcg cg;
	cn_rtcg_detect(&cg, "");
	ck_assert(!cg.ok);
	ck_assert_str_eq(cg.status, "cgroups: unavailable (turned off by configuration)");
	cn_rtcg_detect(&cg, g_dir); /* a tmp directory is no cgroup */
	ck_assert(!cg.ok);
	ck_assert_ptr_nonnull(strstr(cg.status, "cgroups: unavailable ("));
	ck_assert_ptr_nonnull(strstr(cg.status, "not on a cgroup2 filesystem"));
	cn_rtcg_detect(&cg, NULL); /* whatever this machine has: a clear line */
	ck_assert(strncmp(cg.status, "cgroups: v2 at ", 15) == 0 ||
		  strncmp(cg.status, "cgroups: unavailable (", 22) == 0);
	char path[CN_RTREC_PATH_MAX], err[128];
	if (!cg.ok)
		ck_assert_int_eq(cn_rtcg_create(&cg, "a", 0, 100, 64, path, sizeof path, err, sizeof err),
				 CN_ESTATE);
	/* the files a replica's cgroup gets, on a stand-in directory (the
	 * kernel makes them in a real cgroup; here they are made first) */
	cn_rtcg fake;
	memset(&fake, 0, sizeof fake);
	fake.ok = true;
	snprintf(fake.root, sizeof fake.root, "%s", g_dir);
	char sub[256], file[300], text[128];
	snprintf(sub, sizeof sub, "%s/team%%2Fx.1", g_dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	const char *names[] = {"cpu.max", "memory.max", "cgroup.procs"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(file, sizeof file, "%s/%s", sub, names[i]);
		int fd = open(file, O_WRONLY | O_CREAT, 0644);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	ck_assert_int_eq(cn_rtcg_create(&fake, "team/x", 1, 250, 64, path, sizeof path, err, sizeof err), 0);
	ck_assert_str_eq(path, sub);
	snprintf(file, sizeof file, "%s/cpu.max", sub);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "25000 100000");
	snprintf(file, sizeof file, "%s/memory.max", sub);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "67108864");
	ck_assert_int_eq(cn_rtcg_create(&fake, "team/x", 1, 0, 0, path, sizeof path, err, sizeof err), 0);
	snprintf(file, sizeof file, "%s/cpu.max", sub);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "max 100000");
	ck_assert_int_eq(cn_rtcg_attach(sub, 4321), 0);
	snprintf(file, sizeof file, "%s/cgroup.procs", sub);
	read_text(file, text, sizeof text);
	ck_assert_str_eq(text, "4321");
	/* the runtime reports it once and runs without */
	cn_rt_cfg c;
	mkcfg(&c);
	c.cgroup_dir = NULL;
	cn_rt *rt = mkrt(&c);
	ck_assert_str_eq(cn_rt_cgroup_status(rt), cg.status);
	ck_assert_ptr_nonnull(strstr(g_logged, cg.status));
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "exec sleep 20");
	s.cpu_millis = 250;
	s.memory_mb = 64;
	want1(rt, "limited", 0, 1, &s);
	match m = {.job = "limited", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	finish(rt);
}
END_TEST

START_TEST(rlimits_apply)
{
	cn_rt_cfg c;
	mkcfg(&c);
	c.n_rlimits = 1;
	c.rlimits[0] = (cn_rtproc_rlimit){.resource = RLIMIT_NOFILE, .soft = 77, .hard = 77};
	cn_rt *rt = mkrt(&c);
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "sleep 0.3; echo \"nofile=$(ulimit -n)\"; exec sleep 20");
	want1(rt, "lim", 0, 1, &s);
	match m = {.job = "lim", .state = CN_RT_RUNNING};
	ck_assert(drive(rt, 3000, cond_match, &m));
	text_has t = {m.info.log_path, "nofile=77"};
	ck_assert(drive(rt, 3000, cond_file_has, &t));
	finish(rt);
}
END_TEST

START_TEST(health_probe_unit)
{
	/* a probe against a closed port fails without blocking */
	cn_jobspec s;
	spec_init(&s);
	spec_sh(&s, "true");
	s.health_kind = CN_JOB_HEALTH_HTTP;
	s.health_port = free_port();
	s.health_path = spec_str(&s, "/x y");
	cn_rthc h;
	cn_rthc_init(&h);
	ck_assert_int_eq(cn_rthc_start(&h, &s, g_env, NULL, now_ms()), CN_RTHC_FAIL);
	ck_assert_ptr_nonnull(strstr(h.why, "space"));
	ck_assert(!cn_rthc_busy(&h));
	s.health_path = spec_str(&s, "/");
	uint64_t t0 = now_ms();
	int r = cn_rthc_start(&h, &s, g_env, NULL, t0);
	for (int i = 0; i < 1000 && r == CN_RTHC_PENDING; i++) {
		usleep(1000);
		r = cn_rthc_step(&h, now_ms());
	}
	ck_assert_int_eq(r, CN_RTHC_FAIL);
	ck_assert_ptr_nonnull(strstr(h.why, "connect"));
	ck_assert_uint_lt(now_ms() - t0, 1000);
	ck_assert_int_eq(cn_rthc_cancel(&h), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime");
	TCase *unit = tcase_create("unit");
	tcase_add_checked_fixture(unit, setup, teardown);
	tcase_add_test(unit, record_roundtrip_and_errors);
	tcase_add_test(unit, memstore_put_del_scan);
	tcase_add_test(unit, proc_stat_parse);
	tcase_add_test(unit, set_desired_validates);
	tcase_add_test(unit, cgroup_detection);
	tcase_add_test(unit, health_probe_unit);
	suite_add_tcase(s, unit);
	TCase *proc = tcase_create("processes");
	tcase_add_checked_fixture(proc, setup, teardown);
	tcase_set_timeout(proc, 60);
	tcase_add_test(proc, restart_on_crash_with_backoff);
	tcase_add_test(proc, backoff_resets_after_healthy_run);
	tcase_add_test(proc, restart_policies);
	tcase_add_test(proc, health_exec_ok_fail_and_timeout);
	tcase_add_test(proc, health_tcp);
	tcase_add_test(proc, health_http);
	tcase_add_test(proc, stop_term_then_kill);
	tcase_add_test(proc, version_change_replaces_process);
	tcase_add_test(proc, deadline_is_not_busy);
	tcase_add_test(proc, logs_capture_env_and_workdir);
	tcase_add_test(proc, log_rotation_copy_truncate);
	tcase_add_test(proc, rlimits_apply);
	tcase_add_test(proc, store_failures_are_counted);
	suite_add_tcase(s, proc);
	TCase *adopt = tcase_create("adoption");
	tcase_add_checked_fixture(adopt, setup, teardown);
	tcase_set_timeout(adopt, 60);
	tcase_add_test(adopt, readopt_after_runtime_restart);
	tcase_add_test(adopt, readopt_through_lmdb);
	tcase_add_test(adopt, adopted_rotates_and_is_killed);
	tcase_add_test(adopt, readopt_refuses_mismatched_start_time);
	tcase_add_test(adopt, adopted_exit_is_noticed_and_restarted);
	suite_add_tcase(s, adopt);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
