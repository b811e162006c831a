/* The workload runtime (runtime.h): instances, reconcile, restarts,
 * health, stop, records and re-adoption.
 *
 * Invariants (checked by inst_check in debug builds):
 *   1. pid > 0 exactly when the state is STARTING, RUNNING, HEALTHY,
 *      UNHEALTHY or STOPPING (a "live" instance).
 *   2. A wanted instance has a spec (a copy owned by the instance).
 *   3. rt->v is sorted by (job, replica) without duplicates.
 *   4. A live instance has a record in the store (when there is a store and
 *      the put succeeded; failures are counted in store_errors).
 *   5. adopted implies the process is not our child: it is never passed to
 *      waitpid, and every signal to it is preceded by a start-time check. */
#include "runtime/runtime.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cgroup.h"
#include "runtime/health.h"
#include "runtime/logs.h"
#include "util/err.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum {
	ENVP_MAX = CN_RT_ENV_MAX + CN_JOB_ENV_MAX + 4,
	PROBE_FIRST_MS_MAX = 1000, /* first probe after spawn: min(interval, this) */
};

typedef struct inst {
	char job[CN_JOB_NAME_MAX + 1];
	uint32_t replica;
	uint8_t state;
	bool wanted, adopted, killed, restart_after_stop, started_once;
	cn_jobspec *spec;        /* owned; of want_version; NULL if never wanted */
	uint64_t want_version;
	uint64_t version;        /* of the (last) process */
	pid_t pid;
	uint64_t start_ticks;
	uint32_t restarts, fails_in_row, probe_fails;
	bool has_exit;
	int last_exit;
	uint64_t next_start_ms, stop_deadline_ms, up_since_ms, next_probe_ms;
	cn_rthc hc;
	cn_rtlog log;
	char cgroup[CN_RTREC_PATH_MAX];
	char why[CN_RT_WHY_MAX];
	char **envp;             /* of the process (exec probes reuse it); owned */
} inst;

struct cn_rt {
	cn_rt_cfg cfg;           /* string fields point at the copies below */
	char *dir, *node, *workdir, *logdir;
	char *base_env[CN_RT_ENV_MAX + 1];
	cn_rtstore store;
	bool has_store;
	cn_rtcg cg;
	inst *v[CN_RT_INSTANCES_MAX];
	size_t n;
	bool desired_set;
	uint64_t last_now_ms, next_poll_ms;
	pid_t zombies[CN_RT_ZOMBIES_MAX];
	size_t n_zombies;
	cn_rt_stats st;
};

/* ---- helpers ---- */

static void rt_log(const cn_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rt_log(const cn_rt *rt, const char *fmt, ...)
{
	if (rt->cfg.log == NULL)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	rt->cfg.log(rt->cfg.log_ctx, line);
}

static bool is_live(uint8_t state)
{
	return state == CN_RT_STARTING || state == CN_RT_RUNNING || state == CN_RT_HEALTHY ||
	       state == CN_RT_UNHEALTHY || state == CN_RT_STOPPING;
}

static void inst_check(const inst *in)
{
	assert(is_live(in->state) == (in->pid > 0));
	assert(!in->wanted || in->spec != NULL);
	assert(in->state >= CN_RT_STARTING && in->state <= CN_RT_FAILED);
	(void)in;
}

static int cmp_key(const char *job, uint32_t replica, const inst *in)
{
	int c = strcmp(job, in->job);
	if (c != 0)
		return c;
	return replica < in->replica ? -1 : replica > in->replica ? 1 : 0;
}

/* Index of (job, replica), or where it would go (*found false). */
static size_t find(const cn_rt *rt, const char *job, uint32_t replica, bool *found)
{
	size_t lo = 0, hi = rt->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_key(job, replica, rt->v[mid]);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

static void free_envp(char **envp)
{
	if (envp == NULL)
		return;
	for (size_t i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

static void add_zombie(cn_rt *rt, pid_t pid)
{
	if (pid <= 0)
		return;
	if (rt->n_zombies < CN_RT_ZOMBIES_MAX) {
		rt->zombies[rt->n_zombies++] = pid;
		return;
	}
	/* Full (should not happen: a probe per instance at most): a blocking
	 * reap of a child that was just sent SIGKILL. */
	int st;
	waitpid(pid, &st, 0);
}

static void reap_zombies(cn_rt *rt)
{
	for (size_t i = 0; i < rt->n_zombies;) {
		int st;
		pid_t r = waitpid(rt->zombies[i], &st, WNOHANG);
		if (r == rt->zombies[i] || (r < 0 && errno == ECHILD))
			rt->zombies[i] = rt->zombies[--rt->n_zombies];
		else
			i++;
	}
}

static void inst_free(cn_rt *rt, inst *in)
{
	add_zombie(rt, cn_rthc_cancel(&in->hc));
	cn_rtlog_close(&in->log);
	free_envp(in->envp);
	free(in->spec);
	free(in);
}

static void remove_at(cn_rt *rt, size_t i)
{
	assert(i < rt->n && !is_live(rt->v[i]->state));
	inst_free(rt, rt->v[i]);
	memmove(&rt->v[i], &rt->v[i + 1], (rt->n - i - 1) * sizeof rt->v[0]);
	rt->n--;
}

static inst *inst_new(cn_rt *rt, const char *job, uint32_t replica)
{
	inst *in = calloc(1, sizeof *in);
	if (in == NULL)
		return NULL;
	snprintf(in->job, sizeof in->job, "%s", job);
	in->replica = replica;
	in->state = CN_RT_BACKOFF;
	cn_rthc_init(&in->hc);
	if (cn_rtlog_init(&in->log, rt->logdir, job, replica) != 0) {
		free(in);
		return NULL;
	}
	return in;
}

/* ---- records ---- */

static void record_put(cn_rt *rt, const inst *in)
{
	if (!rt->has_store)
		return;
	cn_rtrec r;
	memset(&r, 0, sizeof r);
	snprintf(r.job, sizeof r.job, "%s", in->job);
	r.replica = in->replica;
	r.version = in->version;
	r.pid = (int32_t)in->pid;
	r.start_ticks = in->start_ticks;
	r.restarts = in->restarts;
	snprintf(r.log_path, sizeof r.log_path, "%s", in->log.path);
	snprintf(r.cgroup, sizeof r.cgroup, "%s", in->cgroup);
	uint8_t buf[CN_RTREC_BYTES_MAX];
	size_t len;
	char key[CN_RTREC_KEY_MAX];
	cn_rtrec_key(in->job, in->replica, key, sizeof key);
	if (cn_rtrec_encode(&r, buf, sizeof buf, &len) != 0 ||
	    rt->store.put(rt->store.ctx, key, buf, len) != 0) {
		rt->st.store_errors++;
		rt_log(rt, "cannot record %s (re-adoption after an agent restart will miss it)", key);
	}
}

static void record_del(cn_rt *rt, const char *job, uint32_t replica)
{
	if (!rt->has_store)
		return;
	char key[CN_RTREC_KEY_MAX];
	cn_rtrec_key(job, replica, key, sizeof key);
	if (rt->store.del(rt->store.ctx, key) != 0)
		rt->st.store_errors++;
}

/* ---- environment ---- */

static int env_set(char **envp, size_t *n, const char *key, size_t klen, const char *value)
{
	size_t vlen = strlen(value);
	char *s = malloc(klen + 1 + vlen + 1);
	if (s == NULL)
		return CN_ENOMEM;
	memcpy(s, key, klen);
	s[klen] = '=';
	memcpy(s + klen + 1, value, vlen + 1);
	for (size_t i = 0; i < *n; i++) {
		if (strncmp(envp[i], key, klen) == 0 && envp[i][klen] == '=') {
			free(envp[i]);
			envp[i] = s;
			return 0;
		}
	}
	assert(*n < ENVP_MAX);
	envp[(*n)++] = s;
	envp[*n] = NULL;
	return 0;
}

/* base, then the spec's env, then CANOPY_* (which nothing overrides). */
static char **build_env(const cn_rt *rt, const inst *in, const cn_jobspec *spec, uint64_t version)
{
	char **envp = calloc(ENVP_MAX + 1, sizeof *envp);
	if (envp == NULL)
		return NULL;
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; rt->base_env[i] != NULL && rc == 0; i++) {
		const char *eq = strchr(rt->base_env[i], '=');
		if (eq != NULL)
			rc = env_set(envp, &n, rt->base_env[i], (size_t)(eq - rt->base_env[i]), eq + 1);
	}
	for (size_t i = 0; i < spec->n_env && rc == 0; i++) {
		const char *k = cn_jobspec_str(spec, spec->env[i].key);
		rc = env_set(envp, &n, k, strlen(k), cn_jobspec_str(spec, spec->env[i].value));
	}
	char num[32];
	if (rc == 0)
		rc = env_set(envp, &n, "CANOPY_JOB", 10, in->job);
	snprintf(num, sizeof num, "%u", (unsigned)in->replica);
	if (rc == 0)
		rc = env_set(envp, &n, "CANOPY_REPLICA", 14, num);
	snprintf(num, sizeof num, "%" PRIu64, version);
	if (rc == 0)
		rc = env_set(envp, &n, "CANOPY_VERSION", 14, num);
	if (rc == 0)
		rc = env_set(envp, &n, "CANOPY_NODE", 11, rt->node);
	if (rc != 0) {
		free_envp(envp);
		return NULL;
	}
	return envp;
}

static const char *workdir_of(const cn_rt *rt, const cn_jobspec *spec)
{
	const char *w = cn_jobspec_str(spec, spec->workdir);
	return w[0] != '\0' ? w : rt->workdir;
}

/* ---- transitions ---- */

static uint64_t backoff_ms(const cn_jobspec *spec, uint32_t fails_in_row)
{
	uint64_t lo = spec ? spec->backoff_min_ms : 1000, hi = spec ? spec->backoff_max_ms : 60000;
	if (hi < lo)
		hi = lo;
	uint64_t d = lo;
	for (uint32_t i = 1; i < fails_in_row && d < hi; i++)
		d *= 2;
	return d < hi ? d : hi;
}

static uint32_t reset_ms(const cn_rt *rt, const inst *in)
{
	if (rt->cfg.healthy_reset_ms > 0)
		return rt->cfg.healthy_reset_ms;
	return in->spec && in->spec->update_healthy_for_ms > 0 ? in->spec->update_healthy_for_ms : 10000;
}

static void schedule_restart(cn_rt *rt, inst *in, uint64_t now_ms)
{
	in->fails_in_row++;
	uint64_t d = backoff_ms(in->spec, in->fails_in_row);
	in->state = CN_RT_BACKOFF;
	in->next_start_ms = now_ms + d;
	rt_log(rt, "%s/%u restarts in %" PRIu64 " ms (failure %u in a row)", in->job,
	       (unsigned)in->replica, d, (unsigned)in->fails_in_row);
}

static bool has_health(const inst *in)
{
	return in->spec != NULL && in->spec->health_kind != CN_JOB_HEALTH_NONE;
}

static void spawn(cn_rt *rt, inst *in, uint64_t now_ms)
{
	assert(in->wanted && in->spec != NULL && in->pid == 0);
	const cn_jobspec *spec = in->spec;
	free_envp(in->envp);
	in->envp = build_env(rt, in, spec, in->want_version);
	in->version = in->want_version;
	in->has_exit = false;
	int rc = CN_ENOMEM;
	char err[CN_RTPROC_ERR_MAX] = "out of memory";
	pid_t pid = 0;
	int fd = cn_rtlog_open(&in->log);
	if (fd < 0) {
		snprintf(err, sizeof err, "cannot open the log file: %s", strerror(errno));
		rc = CN_EIO;
	} else if (in->envp != NULL) {
		const char *argv[CN_JOB_ARGS_MAX + 1];
		for (size_t i = 0; i < spec->n_command; i++)
			argv[i] = cn_jobspec_str(spec, spec->command[i]);
		argv[spec->n_command] = NULL;
		in->cgroup[0] = '\0';
		char cgerr[CN_RTREC_PATH_MAX + 64] = "";
		if (rt->cg.ok &&
		    cn_rtcg_create(&rt->cg, in->job, in->replica, spec->cpu_millis, spec->memory_mb,
				   in->cgroup, sizeof in->cgroup, cgerr, sizeof cgerr) != 0) {
			rt_log(rt, "%s/%u runs without cgroup limits: %s", in->job,
			       (unsigned)in->replica, cgerr);
			in->cgroup[0] = '\0';
		}
		cn_rtlog_note(&in->log, "starting %s/%u version %" PRIu64 ": %s", in->job,
			      (unsigned)in->replica, in->version, argv[0]);
		cn_rtproc_spawn sp = {.argv = argv, .envp = (const char *const *)in->envp,
				      .cwd = workdir_of(rt, spec), .out_fd = fd,
				      .rlimits = rt->cfg.rlimits, .n_rlimits = rt->cfg.n_rlimits};
		rc = cn_rtproc_spawn_run(&sp, &pid, err, sizeof err);
	}
	if (fd >= 0)
		close(fd);
	bool again = in->started_once;
	if (again)
		in->restarts++;
	in->started_once = true;
	if (rc != 0) {
		rt->st.spawn_errors++;
		snprintf(in->why, sizeof in->why, "%s", err);
		cn_rtlog_note(&in->log, "cannot start: %s", err);
		rt_log(rt, "%s/%u cannot start: %s", in->job, (unsigned)in->replica, err);
		if (spec->restart_policy == CN_JOB_RESTART_NEVER) {
			in->state = CN_RT_FAILED;
			return;
		}
		schedule_restart(rt, in, now_ms);
		return;
	}
	if (err[0] != '\0')
		rt_log(rt, "%s/%u: %s", in->job, (unsigned)in->replica, err); /* rlimit */
	in->pid = pid;
	in->adopted = false;
	in->killed = false;
	in->restart_after_stop = false;
	in->probe_fails = 0;
	cn_rtproc_stat ps;
	in->start_ticks = cn_rtproc_stat_read(pid, &ps) == 0 ? ps.start_ticks : 0;
	if (in->cgroup[0] != '\0' && cn_rtcg_attach(in->cgroup, pid) != 0)
		rt_log(rt, "%s/%u: cannot move pid %d into %s", in->job, (unsigned)in->replica,
		       (int)pid, in->cgroup);
	in->state = has_health(in) ? CN_RT_STARTING : CN_RT_RUNNING;
	in->up_since_ms = now_ms;
	uint32_t iv = spec->health_interval_ms > 0 ? spec->health_interval_ms : 10000;
	in->next_probe_ms = now_ms + (iv < PROBE_FIRST_MS_MAX ? iv : PROBE_FIRST_MS_MAX);
	rt->st.spawns++;
	if (again)
		rt->st.restarts++;
	record_put(rt, in);
	rt_log(rt, "started %s/%u version %" PRIu64 " pid %d", in->job, (unsigned)in->replica,
	       in->version, (int)pid);
}

/* The process is gone (reaped, or an adopted one vanished). */
static void on_exit_(cn_rt *rt, inst *in, bool known, int status, uint64_t now_ms)
{
	assert(in->pid > 0);
	add_zombie(rt, cn_rthc_cancel(&in->hc));
	record_del(rt, in->job, in->replica);
	if (in->cgroup[0] != '\0' && cn_rtcg_remove(in->cgroup) == 0)
		in->cgroup[0] = '\0';
	rt->st.exits++;
	in->has_exit = known;
	in->last_exit = status;
	char what[64];
	if (!known)
		snprintf(what, sizeof what, "is gone (adopted; exit status unknown)");
	else if (WIFEXITED(status))
		snprintf(what, sizeof what, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(what, sizeof what, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	cn_rtlog_note(&in->log, "pid %d %s", (int)in->pid, what);
	rt_log(rt, "%s/%u pid %d %s", in->job, (unsigned)in->replica, (int)in->pid, what);
	in->pid = 0;
	in->adopted = false;
	bool ran_long = (in->state == CN_RT_RUNNING || in->state == CN_RT_HEALTHY) &&
			now_ms - in->up_since_ms >= reset_ms(rt, in);
	if (ran_long)
		in->fails_in_row = 0;
	bool failed = !known || !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (in->state == CN_RT_STOPPING) {
		bool restart = in->restart_after_stop;
		in->restart_after_stop = false;
		if (!in->wanted) {
			in->state = failed ? CN_RT_FAILED : CN_RT_EXITED;
		} else if (restart) {
			schedule_restart(rt, in, now_ms); /* stopped for being unhealthy */
		} else {
			in->state = CN_RT_BACKOFF;        /* a new version: start it now */
			in->fails_in_row = 0;
			in->next_start_ms = now_ms;
		}
		return;
	}
	uint8_t policy = in->spec ? in->spec->restart_policy : CN_JOB_RESTART_ON_FAILURE;
	if (!in->wanted)
		in->state = failed ? CN_RT_FAILED : CN_RT_EXITED;
	else if (policy == CN_JOB_RESTART_ALWAYS || (policy == CN_JOB_RESTART_ON_FAILURE && failed))
		schedule_restart(rt, in, now_ms);
	else
		in->state = failed ? CN_RT_FAILED : CN_RT_EXITED;
}

/* Signal the instance's process group. An adopted process is checked
 * first (same start time: not a reused pid) and, if it left the group it
 * was born leading, only the process itself is signalled. Returns false if
 * the process is not there any more. */
static bool signal_inst(const inst *in, int sig)
{
	assert(in->pid > 1);
	if (!in->adopted) {
		cn_rtproc_kill_group(in->pid, sig);
		return true;
	}
	cn_rtproc_stat ps;
	if (cn_rtproc_stat_read(in->pid, &ps) != 0 || ps.start_ticks != in->start_ticks ||
	    ps.state == 'Z')
		return false;
	if (ps.pgrp == in->pid)
		cn_rtproc_kill_group(in->pid, sig);
	else
		kill(in->pid, sig);
	return true;
}

static void begin_stop(cn_rt *rt, inst *in, bool restart_after, uint64_t now_ms)
{
	assert(in->pid > 0 && in->state != CN_RT_STOPPING);
	add_zombie(rt, cn_rthc_cancel(&in->hc));
	if (!signal_inst(in, SIGTERM)) {
		in->state = CN_RT_STOPPING;
		on_exit_(rt, in, false, 0, now_ms);
		return;
	}
	in->state = CN_RT_STOPPING;
	in->killed = false;
	in->restart_after_stop = restart_after;
	uint32_t grace = rt->cfg.stop_grace_ms;
	in->stop_deadline_ms = now_ms + grace;
	cn_rtlog_note(&in->log, "stopping pid %d (SIGTERM, SIGKILL after %u ms)", (int)in->pid,
		      (unsigned)grace);
	rt_log(rt, "stopping %s/%u pid %d", in->job, (unsigned)in->replica, (int)in->pid);
}

/* Has the process ended? Our child: waitid(WNOWAIT) first so the leader
 * stays a zombie (its pid, the group id, cannot be reused) while the rest
 * of its group gets SIGKILL, then reap. Adopted: /proc, every poll. */
static void check_exit(cn_rt *rt, inst *in, bool poll_due, uint64_t now_ms)
{
	if (!in->adopted) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)in->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
			if (errno == ECHILD) /* reaped behind our back (waitpid(-1) elsewhere) */
				on_exit_(rt, in, false, 0, now_ms);
			return;
		}
		if (si.si_pid != in->pid)
			return;
		cn_rtproc_kill_group(in->pid, SIGKILL);
		int st = 0;
		if (waitpid(in->pid, &st, WNOHANG) == in->pid)
			on_exit_(rt, in, true, st, now_ms);
		return;
	}
	if (!poll_due || cn_rtproc_same(in->pid, in->start_ticks))
		return;
	/* If no process has the pid any more, no group can have it as its id
	 * either except the leftovers of this one: kill them. */
	cn_rtproc_stat ps;
	if (cn_rtproc_stat_read(in->pid, &ps) == CN_ENOENT)
		cn_rtproc_kill_group(in->pid, SIGKILL);
	on_exit_(rt, in, false, 0, now_ms);
}

/* One step of the instance's probe: a verdict or CN_RTHC_PENDING. */
static int probe_step(cn_rt *rt, inst *in, uint64_t now_ms)
{
	if (cn_rthc_busy(&in->hc))
		return cn_rthc_step(&in->hc, now_ms); /* REAP: always PENDING */
	if (now_ms < in->next_probe_ms)
		return CN_RTHC_PENDING;
	if (in->envp == NULL && (in->envp = build_env(rt, in, in->spec, in->version)) == NULL)
		return CN_RTHC_PENDING;
	int r = cn_rthc_start(&in->hc, in->spec, (const char *const *)in->envp,
			      workdir_of(rt, in->spec), now_ms);
	return r == CN_RTHC_PENDING ? cn_rthc_step(&in->hc, now_ms) : r;
}

static void probe(cn_rt *rt, inst *in, uint64_t now_ms)
{
	if (!has_health(in) || !is_live(in->state) || in->state == CN_RT_STOPPING ||
	    in->version != in->want_version)
		return;
	int r = probe_step(rt, in, now_ms);
	if (r == CN_RTHC_PENDING)
		return;
	uint32_t iv = in->spec->health_interval_ms > 0 ? in->spec->health_interval_ms : 10000;
	in->next_probe_ms = now_ms + iv;
	if (r == CN_RTHC_OK) {
		rt->st.probes_ok++;
		in->probe_fails = 0;
		if (in->state != CN_RT_HEALTHY) {
			in->state = CN_RT_HEALTHY;
			in->up_since_ms = now_ms;
		}
		return;
	}
	rt->st.probes_failed++;
	in->probe_fails++;
	snprintf(in->why, sizeof in->why, "health: %s", in->hc.why);
	if (in->probe_fails >= rt->cfg.health_failures && in->state != CN_RT_UNHEALTHY) {
		in->state = CN_RT_UNHEALTHY;
		cn_rtlog_note(&in->log, "unhealthy after %u failed probes: %s", (unsigned)in->probe_fails,
			      in->hc.why);
		rt_log(rt, "%s/%u unhealthy: %s", in->job, (unsigned)in->replica, in->hc.why);
	}
}

/* ---- tick ---- */

/* A live instance (not STOPPING) that must be stopped now: unwanted or
 * at another version (adopted ones only once a desired set arrived), or
 * unhealthy under a policy that restarts. Its second result, *restart, says
 * which. */
static bool needs_stop_why(const cn_rt *rt, const inst *in, bool *restart)
{
	*restart = false;
	if (in->adopted && !rt->desired_set)
		return false;
	if (!in->wanted || in->version != in->want_version)
		return true;
	*restart = in->state == CN_RT_UNHEALTHY && in->spec->restart_policy != CN_JOB_RESTART_NEVER;
	return *restart;
}

static bool needs_stop(const cn_rt *rt, const inst *in)
{
	bool restart;
	return needs_stop_why(rt, in, &restart);
}

/* Decide for one instance; returns false if it was removed. */
static bool reconcile(cn_rt *rt, size_t i, uint64_t now_ms)
{
	inst *in = rt->v[i];
	bool live = in->pid > 0;
	if (live && in->state != CN_RT_STOPPING) {
		bool restart;
		if (needs_stop_why(rt, in, &restart))
			begin_stop(rt, in, restart, now_ms);
		return true;
	}
	if (live) {
		if (!in->killed && now_ms >= in->stop_deadline_ms) {
			signal_inst(in, SIGKILL);
			in->killed = true;
			rt->st.kills++;
			cn_rtlog_note(&in->log, "pid %d did not stop in time: SIGKILL", (int)in->pid);
		}
		return true;
	}
	if (!in->wanted) {
		if (in->cgroup[0] != '\0' && cn_rtcg_remove(in->cgroup) == CN_EAGAIN)
			return true; /* leftovers still dying */
		remove_at(rt, i);
		return false;
	}
	if (in->state == CN_RT_BACKOFF && now_ms >= in->next_start_ms)
		spawn(rt, in, now_ms);
	return true;
}

void cn_rt_tick(cn_rt *rt, uint64_t now_ms)
{
	assert(now_ms >= rt->last_now_ms);
	rt->last_now_ms = now_ms;
	bool poll_due = now_ms >= rt->next_poll_ms;
	if (poll_due)
		rt->next_poll_ms = now_ms + rt->cfg.poll_ms;
	reap_zombies(rt);
	for (size_t i = 0; i < rt->n;) {
		inst *in = rt->v[i];
		if (in->pid > 0)
			check_exit(rt, in, poll_due, now_ms);
		probe(rt, in, now_ms);
		if (!reconcile(rt, i, now_ms))
			continue;
		if (in->log.rotating || poll_due) {
			uint64_t before = in->log.rotations;
			cn_rtlog_step(&in->log, rt->cfg.log_max_bytes, rt->cfg.log_keep);
			rt->st.rotations += in->log.rotations - before;
		}
		if ((in->state == CN_RT_RUNNING || in->state == CN_RT_HEALTHY) && in->fails_in_row > 0 &&
		    now_ms - in->up_since_ms >= reset_ms(rt, in))
			in->fails_in_row = 0;
		inst_check(in);
		i++;
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t cn_rt_deadline(const cn_rt *rt)
{
	uint64_t d = UINT64_MAX;
	bool need_poll = rt->n_zombies > 0;
	for (size_t i = 0; i < rt->n; i++) {
		const inst *in = rt->v[i];
		if (in->log.rotating)
			d = min_u64(d, rt->last_now_ms);
		if (in->pid > 0) {
			need_poll = true;
			if (cn_rthc_busy(&in->hc))
				d = min_u64(d, cn_rthc_deadline(&in->hc));
			if (in->state == CN_RT_STOPPING) {
				if (!in->killed)
					d = min_u64(d, in->stop_deadline_ms);
				continue;
			}
			if (!cn_rthc_busy(&in->hc) && has_health(in))
				d = min_u64(d, in->next_probe_ms);
			if (needs_stop(rt, in))
				d = min_u64(d, rt->last_now_ms);
		} else if (in->wanted && in->state == CN_RT_BACKOFF) {
			d = min_u64(d, in->next_start_ms);
		} else if (!in->wanted) {
			d = min_u64(d, rt->next_poll_ms); /* removal (cgroup may lag) */
		}
	}
	if (need_poll)
		d = min_u64(d, rt->next_poll_ms);
	return d;
}

size_t cn_rt_pollfds(const cn_rt *rt, struct pollfd *pfd, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < rt->n && n < cap; i++) {
		short ev = 0;
		int fd = cn_rthc_pollfd(&rt->v[i]->hc, &ev);
		if (fd >= 0)
			pfd[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	return n;
}

/* ---- desired set ---- */

typedef struct want_ref {
	const cn_rt_want *w;
	cn_jobspec *copy;
} want_ref;

static int cmp_want(const void *a, const void *b)
{
	const cn_rt_want *x = ((const want_ref *)a)->w, *y = ((const want_ref *)b)->w;
	int c = strcmp(x->job, y->job);
	return c != 0 ? c : (x->replica < y->replica ? -1 : x->replica > y->replica);
}

static int check_want(const cn_rt_want *w)
{
	if (w->job == NULL || !cn_rtrec_job_ok(w->job, strlen(w->job)) ||
	    w->replica >= CN_JOB_REPLICAS_MAX || w->spec == NULL || w->spec->n_command == 0 ||
	    w->spec->n_command > CN_JOB_ARGS_MAX ||
	    cn_jobspec_str(w->spec, w->spec->command[0])[0] == '\0' ||
	    w->spec->n_env > CN_JOB_ENV_MAX || w->spec->n_health_exec > CN_JOB_ARGS_MAX)
		return CN_EINVAL;
	return 0;
}

int cn_rt_set_desired(cn_rt *rt, const cn_rt_want *w, size_t n, uint64_t now_ms)
{
	assert(n == 0 || w != NULL);
	if (n > CN_RT_INSTANCES_MAX)
		return CN_ELIMIT;
	for (size_t i = 0; i < n; i++)
		if (check_want(&w[i]) != 0)
			return CN_EINVAL;
	want_ref *refs = calloc(n > 0 ? n : 1, sizeof *refs);
	if (refs == NULL)
		return CN_ENOMEM;
	for (size_t i = 0; i < n; i++)
		refs[i].w = &w[i];
	qsort(refs, n, sizeof *refs, cmp_want);
	int rc = 0;
	size_t fresh = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i > 0 && cmp_want(&refs[i - 1], &refs[i]) == 0)
			rc = CN_EEXIST;
		bool found;
		find(rt, refs[i].w->job, refs[i].w->replica, &found);
		fresh += !found;
	}
	/* Unwanted instances keep their slots while they stop. */
	if (rc == 0 && rt->n + fresh > CN_RT_INSTANCES_MAX)
		rc = CN_ELIMIT;
	for (size_t i = 0; i < n && rc == 0; i++) {
		refs[i].copy = malloc(sizeof *refs[i].copy);
		if (refs[i].copy == NULL)
			rc = CN_ENOMEM;
		else
			memcpy(refs[i].copy, refs[i].w->spec, sizeof *refs[i].copy);
	}
	inst *made[CN_RT_INSTANCES_MAX];
	size_t n_made = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool found;
		find(rt, refs[i].w->job, refs[i].w->replica, &found);
		if (!found) {
			made[n_made] = inst_new(rt, refs[i].w->job, refs[i].w->replica);
			if (made[n_made] == NULL)
				rc = CN_ENOMEM;
			else
				n_made++;
		}
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			free(refs[i].copy);
		for (size_t i = 0; i < n_made; i++)
			inst_free(rt, made[i]);
		free(refs);
		return rc;
	}
	/* Commit: nothing below fails. */
	for (size_t i = 0; i < n_made; i++) {
		bool found;
		size_t at = find(rt, made[i]->job, made[i]->replica, &found);
		assert(!found && rt->n < CN_RT_INSTANCES_MAX);
		memmove(&rt->v[at + 1], &rt->v[at], (rt->n - at) * sizeof rt->v[0]);
		rt->v[at] = made[i];
		rt->n++;
	}
	bool *was_wanted = calloc(rt->n > 0 ? rt->n : 1, sizeof *was_wanted);
	for (size_t i = 0; i < rt->n; i++) {
		if (was_wanted != NULL)
			was_wanted[i] = rt->v[i]->wanted;
		rt->v[i]->wanted = false;
	}
	for (size_t i = 0; i < n; i++) {
		bool found;
		size_t at = find(rt, refs[i].w->job, refs[i].w->replica, &found);
		assert(found);
		inst *in = rt->v[at];
		bool new_version = in->spec == NULL || in->want_version != refs[i].w->version;
		bool again = was_wanted != NULL && !was_wanted[at];
		free(in->spec);
		in->spec = refs[i].copy;
		in->want_version = refs[i].w->version;
		in->wanted = true;
		if ((in->state == CN_RT_EXITED || in->state == CN_RT_FAILED) && (new_version || again)) {
			in->state = CN_RT_BACKOFF;
			in->next_start_ms = now_ms;
			in->fails_in_row = 0;
		}
		if (in->adopted && in->state == CN_RT_RUNNING && has_health(in) &&
		    in->version == in->want_version) {
			in->state = CN_RT_STARTING; /* its probes resume: no verdict yet */
			in->next_probe_ms = now_ms;
		}
		if (new_version && in->state == CN_RT_BACKOFF && in->pid == 0) {
			in->next_start_ms = now_ms; /* a new spec is worth trying at once */
			in->fails_in_row = 0;
		}
	}
	free(was_wanted);
	free(refs);
	rt->desired_set = true;
	return 0;
}

/* ---- queries ---- */

static void info_of(const inst *in, cn_rt_info *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->job, sizeof o->job, "%s", in->job);
	o->replica = in->replica;
	o->state = in->state;
	o->wanted = in->wanted;
	o->adopted = in->adopted;
	o->pid = in->pid;
	o->version = in->version;
	o->want_version = in->want_version;
	o->restarts = in->restarts;
	o->failures_in_row = in->fails_in_row;
	o->has_exit = in->has_exit;
	o->last_exit = in->last_exit;
	o->next_start_ms = in->next_start_ms;
	snprintf(o->log_path, sizeof o->log_path, "%s", in->log.path);
	snprintf(o->why, sizeof o->why, "%s", in->why);
}

size_t cn_rt_list(const cn_rt *rt, cn_rt_info *out, size_t cap)
{
	for (size_t i = 0; i < rt->n && i < cap; i++)
		info_of(rt->v[i], &out[i]);
	return rt->n;
}

int cn_rt_get(const cn_rt *rt, const char *job, uint32_t replica, cn_rt_info *out)
{
	bool found;
	size_t at = find(rt, job, replica, &found);
	if (!found)
		return CN_ENOENT;
	info_of(rt->v[at], out);
	return 0;
}

void cn_rt_stats_get(const cn_rt *rt, cn_rt_stats *out)
{
	*out = rt->st;
	out->instances = (uint32_t)rt->n;
	out->wanted = out->live = out->drift = 0;
	for (size_t i = 0; i < rt->n; i++) {
		const inst *in = rt->v[i];
		bool live = in->pid > 0 && in->state != CN_RT_STOPPING;
		out->wanted += in->wanted;
		out->live += in->pid > 0;
		if (in->wanted ? !(live && in->version == in->want_version) : in->pid > 0)
			out->drift++;
	}
	out->cgroups = rt->cg.ok;
}

bool cn_rt_idle(const cn_rt *rt)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->v[i]->pid > 0)
			return false;
	return true;
}

const char *cn_rt_cgroup_status(const cn_rt *rt)
{
	return rt->cg.status;
}

const char *cn_rt_state_name(uint8_t state)
{
	static const char *const names[] = {"?", "starting", "running", "healthy", "unhealthy",
					    "backoff", "stopping", "exited", "failed"};
	return state < sizeof names / sizeof names[0] ? names[state] : "?";
}

/* ---- lifecycle ---- */

void cn_rt_cfg_default(cn_rt_cfg *c)
{
	memset(c, 0, sizeof *c);
	c->stop_grace_ms = CN_RT_STOP_GRACE_MS_DEFAULT;
	c->health_failures = CN_RT_HEALTH_FAILURES_DEFAULT;
	c->poll_ms = CN_RT_POLL_MS_DEFAULT;
	c->log_max_bytes = CN_RT_LOG_MAX_BYTES_DEFAULT;
	c->log_keep = CN_RT_LOG_KEEP_DEFAULT;
}

typedef struct loaded {
	char key[CN_RTREC_KEY_MAX];
	bool ok;
	cn_rtrec rec;
} loaded;

typedef struct load_ctx {
	loaded *v;
	size_t n, cap;
	uint64_t dropped;
} load_ctx;

static int load_one(void *ctx, const char *key, const uint8_t *val, size_t len)
{
	load_ctx *lc = ctx;
	if (lc->n == lc->cap || strlen(key) >= CN_RTREC_KEY_MAX) {
		lc->dropped++;
		return 0;
	}
	loaded *l = &lc->v[lc->n++];
	snprintf(l->key, sizeof l->key, "%s", key);
	l->ok = cn_rtrec_decode(val, len, &l->rec) == 0;
	if (l->ok) {
		char want[CN_RTREC_KEY_MAX];
		cn_rtrec_key(l->rec.job, l->rec.replica, want, sizeof want);
		l->ok = strcmp(want, key) == 0;
	}
	return 0;
}

static void adopt(cn_rt *rt, const cn_rtrec *r, uint64_t now_ms)
{
	bool found;
	size_t at = find(rt, r->job, r->replica, &found);
	assert(!found && rt->n < CN_RT_INSTANCES_MAX);
	inst *in = inst_new(rt, r->job, r->replica);
	if (in == NULL)
		return; /* the process runs on unsupervised; the record stays */
	if (r->log_path[0] != '\0')
		snprintf(in->log.path, sizeof in->log.path, "%s", r->log_path);
	snprintf(in->cgroup, sizeof in->cgroup, "%s", r->cgroup);
	in->pid = r->pid;
	in->start_ticks = r->start_ticks;
	in->version = in->want_version = r->version;
	in->restarts = r->restarts;
	in->adopted = true;
	in->started_once = true;
	in->state = CN_RT_RUNNING;
	in->up_since_ms = now_ms;
	memmove(&rt->v[at + 1], &rt->v[at], (rt->n - at) * sizeof rt->v[0]);
	rt->v[at] = in;
	rt->n++;
	rt->st.adopted++;
	cn_rtlog_note(&in->log, "adopted pid %d by a new agent", (int)r->pid);
	rt_log(rt, "adopted %s/%u pid %d version %" PRIu64, r->job, (unsigned)r->replica,
	       (int)r->pid, r->version);
}

static void load_records(cn_rt *rt, uint64_t now_ms)
{
	load_ctx lc = {.cap = CN_RT_INSTANCES_MAX};
	lc.v = calloc(lc.cap, sizeof *lc.v);
	if (lc.v == NULL) {
		rt->st.store_errors++;
		return;
	}
	if (rt->store.scan(rt->store.ctx, load_one, &lc) != 0)
		rt->st.store_errors++;
	rt->st.bad_records += lc.dropped;
	for (size_t i = 0; i < lc.n; i++) {
		loaded *l = &lc.v[i];
		bool found = false;
		if (l->ok)
			find(rt, l->rec.job, l->rec.replica, &found);
		if (!l->ok || found) {
			rt->st.bad_records++;
			if (rt->store.del(rt->store.ctx, l->key) != 0)
				rt->st.store_errors++;
			continue;
		}
		if (cn_rtproc_same(l->rec.pid, l->rec.start_ticks)) {
			adopt(rt, &l->rec, now_ms);
			continue;
		}
		rt->st.discarded++;
		rt_log(rt, "%s/%u pid %d is gone or is another process now: not adopted",
		       l->rec.job, (unsigned)l->rec.replica, (int)l->rec.pid);
		if (rt->store.del(rt->store.ctx, l->key) != 0)
			rt->st.store_errors++;
	}
	free(lc.v);
}

static char *dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

int cn_rt_new(const cn_rt_cfg *cfg, uint64_t now_ms, cn_rt **out)
{
	*out = NULL;
	if (cfg->dir == NULL || cfg->dir[0] == '\0' || cfg->node == NULL ||
	    cfg->n_rlimits > CN_RTPROC_RLIMITS_MAX || cfg->log_keep > CN_RTLOG_KEEP_MAX ||
	    cfg->health_failures == 0 || cfg->poll_ms == 0 || strlen(cfg->dir) > CN_RTREC_PATH_MAX - 200)
		return CN_EINVAL;
	size_t n_env = 0;
	while (cfg->base_env != NULL && cfg->base_env[n_env] != NULL)
		if (++n_env > CN_RT_ENV_MAX)
			return CN_EINVAL;
	if (cfg->store != NULL && (cfg->store->put == NULL || cfg->store->del == NULL ||
				   cfg->store->scan == NULL))
		return CN_EINVAL;
	cn_rt *rt = calloc(1, sizeof *rt);
	if (rt == NULL)
		return CN_ENOMEM;
	rt->cfg = *cfg;
	bool default_workdir = false;
	rt->dir = dup_str(cfg->dir);
	rt->node = dup_str(cfg->node);
	if (cfg->workdir != NULL) {
		rt->workdir = dup_str(cfg->workdir);
	} else if ((rt->workdir = malloc(strlen(cfg->dir) + 8)) != NULL) {
		snprintf(rt->workdir, strlen(cfg->dir) + 8, "%s/work", cfg->dir);
		default_workdir = true;
	}
	size_t ll = strlen(cfg->dir) + 8;
	rt->logdir = malloc(ll);
	bool ok = rt->dir && rt->node && rt->workdir && rt->logdir;
	for (size_t i = 0; i < n_env && ok; i++)
		ok = (rt->base_env[i] = strdup(cfg->base_env[i])) != NULL;
	if (ok && n_env == 0)
		ok = (rt->base_env[0] = strdup(DEFAULT_PATH)) != NULL;
	if (!ok) {
		cn_rt_free(rt);
		return CN_ENOMEM;
	}
	snprintf(rt->logdir, ll, "%s/logs", cfg->dir);
	rt->cfg.dir = rt->dir;
	rt->cfg.node = rt->node;
	rt->cfg.workdir = rt->workdir;
	rt->cfg.base_env = (const char *const *)rt->base_env;
	rt->cfg.cgroup_dir = NULL;
	rt->cfg.store = NULL;
	if ((mkdir(rt->logdir, 0750) != 0 && errno != EEXIST) ||
	    (default_workdir && mkdir(rt->workdir, 0750) != 0 && errno != EEXIST)) {
		cn_rt_free(rt);
		return CN_EIO;
	}
	cn_rtcg_detect(&rt->cg, cfg->cgroup_dir);
	rt_log(rt, "%s", rt->cg.status);
	rt->last_now_ms = now_ms;
	rt->next_poll_ms = now_ms;
	if (cfg->store != NULL) {
		rt->store = *cfg->store;
		rt->has_store = true;
		load_records(rt, now_ms);
	}
	*out = rt;
	return 0;
}

void cn_rt_free(cn_rt *rt)
{
	if (rt == NULL)
		return;
	for (size_t i = 0; i < rt->n; i++)
		inst_free(rt, rt->v[i]);
	reap_zombies(rt);
	free(rt->dir);
	free(rt->node);
	free(rt->workdir);
	free(rt->logdir);
	for (size_t i = 0; i <= CN_RT_ENV_MAX; i++)
		free(rt->base_env[i]);
	free(rt);
}
