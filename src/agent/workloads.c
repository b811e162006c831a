/* The agent's workloads; see workloads.h. */
#include "agent/workloads.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/sched.h"
#include "runtime/runtime.h"
#include "store/kv.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/admin.h"

enum { WANTS_MAX = CN_RT_INSTANCES_MAX };

struct cn_workloads {
	cn_rt *rt;
	cn_kv *kv;
	cn_rtstore store;
	cn_placer *placer;
	cn_sched_jobs jobs;
	cn_sched_view view;
	cn_place_result res;
	bool have_res;
	cn_rt_want *wants;          /* point into jobs */
	size_t n_wants;
	/* what the runtime was last given, to hand it only changes */
	char (*given_job)[CN_JOB_NAME_MAX + 1];
	uint32_t *given_replica;
	uint64_t *given_version;
	size_t n_given;
	bool ever_given;
	uint64_t next_place_ms;
	char self[CN_NAME_MAX + 1];
	uint64_t placements, place_errors, desired_changes, wants_dropped;
};

/* ---- the runtime's record store on LMDB ---- */

static int rs_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
	return cn_kv_put(ctx, key, val, len);
}

static int rs_del(void *ctx, const char *key)
{
	return cn_kv_del(ctx, key);
}

static int rs_scan(void *ctx, cn_rtstore_scan_cb cb, void *cb_ctx)
{
	return cn_kv_scan(ctx, cb, cb_ctx);
}

static void rt_log(void *ctx, const char *line)
{
	(void)ctx;
	cn_agent_log("runtime: %s", line);
}

int cn_workloads_open(cn_agent *a, uint64_t now_ms, cn_workloads **out, char *err, size_t errcap)
{
	cn_workloads *w = calloc(1, sizeof *w);
	if (w == NULL)
		return CN_ENOMEM;
	snprintf(w->self, sizeof w->self, "%s", a->opts.name);
	w->wants = malloc(WANTS_MAX * sizeof *w->wants);
	w->given_job = malloc(WANTS_MAX * sizeof *w->given_job);
	w->given_replica = malloc(WANTS_MAX * sizeof *w->given_replica);
	w->given_version = malloc(WANTS_MAX * sizeof *w->given_version);
	int rc = CN_ENOMEM;
	if (w->wants == NULL || w->given_job == NULL || w->given_replica == NULL ||
	    w->given_version == NULL || cn_placer_new(&w->placer) != 0) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}
	if ((rc = cn_kv_open(a->store, "runtime", &w->kv)) != 0) {
		snprintf(err, errcap, "cannot open the runtime records in the store: %s",
			 cn_strerror(rc));
		goto fail;
	}
	w->store = (cn_rtstore){w->kv, rs_put, rs_del, rs_scan};
	cn_rt_cfg cfg;
	cn_rt_cfg_default(&cfg);
	cfg.dir = a->opts.data_dir;
	cfg.node = a->opts.name;
	cfg.store = &w->store;
	cfg.log = rt_log;
	if ((rc = cn_rt_new(&cfg, now_ms, &w->rt)) != 0) {
		snprintf(err, errcap, "cannot start the workload runtime in %s: %s", a->opts.data_dir,
			 cn_strerror(rc));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	cn_workloads_close(w);
	return rc;
}

void cn_workloads_close(cn_workloads *w)
{
	if (w == NULL)
		return;
	cn_rt_free(w->rt);
	cn_kv_close(w->kv);
	cn_placer_free(w->placer);
	if (w->have_res)
		cn_place_result_free(&w->res);
	cn_sched_jobs_free(&w->jobs);
	cn_sched_view_free(&w->view);
	free(w->wants);
	free(w->given_job);
	free(w->given_replica);
	free(w->given_version);
	free(w);
}

/* ---- placement ---- */

static bool wants_changed(const cn_workloads *w)
{
	if (!w->ever_given || w->n_wants != w->n_given)
		return true;
	for (size_t i = 0; i < w->n_wants; i++)
		if (strcmp(w->wants[i].job, w->given_job[i]) != 0 ||
		    w->wants[i].replica != w->given_replica[i] ||
		    w->wants[i].version != w->given_version[i])
			return true;
	return false;
}

static void place(cn_workloads *w, cn_agent *a, uint64_t now_ms)
{
	w->placements++;
	int rc = a->policy != NULL ? cn_sched_jobs_load(&w->jobs, a->policy) : 0;
	if (rc == 0)
		rc = cn_sched_view_load(&w->view, a->node);
	cn_place_result res;
	memset(&res, 0, sizeof res);
	if (rc == 0)
		rc = cn_sched_place(w->placer, &w->view, &w->jobs, &res);
	if (rc != 0) {
		/* Keep running what runs: a failed computation is no reason to
		 * stop workloads. */
		if (w->place_errors++ == 0)
			cn_agent_log("placement failed: %s (keeping the current workloads)",
				     cn_strerror(rc));
		return;
	}
	if (w->have_res)
		cn_place_result_free(&w->res);
	w->res = res;
	w->have_res = true;
	size_t n = cn_sched_wants(&w->res, &w->jobs, w->self, w->wants, WANTS_MAX);
	if (n > WANTS_MAX) {
		w->wants_dropped += n - WANTS_MAX;
		n = WANTS_MAX;
	}
	w->n_wants = n;
	if (!wants_changed(w))
		return;
	rc = cn_rt_set_desired(w->rt, w->wants, w->n_wants, now_ms);
	if (rc != 0) {
		cn_agent_log("runtime refused the desired set: %s", cn_strerror(rc));
		return;
	}
	w->desired_changes++;
	for (size_t i = 0; i < n; i++) {
		snprintf(w->given_job[i], sizeof w->given_job[i], "%s", w->wants[i].job);
		w->given_replica[i] = w->wants[i].replica;
		w->given_version[i] = w->wants[i].version;
	}
	w->n_given = n;
	w->ever_given = true;
	cn_agent_log("workloads: %zu replica%s here", n, n == 1 ? "" : "s");
}

void cn_workloads_tick(cn_workloads *w, cn_agent *a, uint64_t now_ms, bool force)
{
	if (force || now_ms >= w->next_place_ms) {
		place(w, a, now_ms);
		w->next_place_ms = now_ms + CN_WORKLOADS_INTERVAL_MS;
		force = true;
	}
	if (force || now_ms >= cn_rt_deadline(w->rt))
		cn_rt_tick(w->rt, now_ms);
}

uint64_t cn_workloads_deadline(const cn_workloads *w)
{
	uint64_t d = cn_rt_deadline(w->rt);
	return d < w->next_place_ms ? d : w->next_place_ms;
}

size_t cn_workloads_pollfds(const cn_workloads *w, struct pollfd *pfd, size_t cap)
{
	return cn_rt_pollfds(w->rt, pfd, cap);
}

void cn_workloads_stop_all(cn_workloads *w, uint64_t (*now)(void))
{
	uint64_t start = now();
	if (cn_rt_set_desired(w->rt, NULL, 0, start) != 0)
		return;
	w->n_given = 0;
	for (int i = 0; i < 10000 && !cn_rt_idle(w->rt); i++) {
		uint64_t t = now();
		if (t - start > CN_WORKLOADS_STOP_MS)
			break;
		cn_rt_tick(w->rt, t);
		usleep(10000);
	}
	cn_rt_tick(w->rt, now());
	if (!cn_rt_idle(w->rt))
		cn_agent_log("workloads: some did not stop within %d ms", CN_WORKLOADS_STOP_MS);
}

/* ---- admin ---- */

static void instance_json(cn_json *j, const cn_rt_info *in)
{
	cn_json_obj_begin(j);
	cn_json_kv_str(j, "job", in->job);
	cn_json_kv_u64(j, "replica", in->replica);
	cn_json_kv_str(j, "state", cn_rt_state_name(in->state));
	cn_json_kv_bool(j, "wanted", in->wanted);
	cn_json_kv_bool(j, "adopted", in->adopted);
	cn_json_kv_u64(j, "pid", (uint64_t)(in->pid > 0 ? in->pid : 0));
	cn_json_kv_u64(j, "version", in->version);
	cn_json_kv_u64(j, "restarts", in->restarts);
	if (in->has_exit)
		cn_json_kv_u64(j, "last_exit", (uint64_t)(unsigned)in->last_exit);
	cn_json_kv_str(j, "log", in->log_path);
	cn_json_kv_str(j, "why", in->why);
	cn_json_obj_end(j);
}

static void instance_line(cn_buf *out, const cn_rt_info *in)
{
	cn_buf_printf(out, "  %s/%u %-9s pid %-7d version %llu restarts %u%s%s%s\n", in->job,
		      in->replica, cn_rt_state_name(in->state), (int)in->pid,
		      (unsigned long long)in->version, in->restarts, in->adopted ? " (adopted)" : "",
		      in->why[0] ? ": " : "", in->why);
}

static cn_rt_info *instances(const cn_workloads *w, size_t *n)
{
	size_t count = cn_rt_list(w->rt, NULL, 0);
	cn_rt_info *v = malloc((count ? count : 1) * sizeof *v);
	if (v == NULL) {
		*n = 0;
		return NULL;
	}
	*n = cn_rt_list(w->rt, v, count);
	if (*n > count)
		*n = count;
	return v;
}

static int cmd_jobs(cn_workloads *w, cn_agent *a, bool json)
{
	size_t n;
	cn_rt_info *v = instances(w, &n);
	if (v == NULL && n != 0)
		return CN_ENOMEM;
	if (json) {
		cn_json j;
		cn_json_init(&j, &a->reply);
		cn_json_obj_begin(&j);
		cn_json_key(&j, "jobs");
		if (w->have_res) {
			cn_sched_jobs_json(&w->res, &j);
		} else {
			cn_json_arr_begin(&j);
			cn_json_arr_end(&j);
		}
		cn_json_kv_str(&j, "node", w->self);
		cn_json_key(&j, "instances");
		cn_json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			instance_json(&j, &v[i]);
		cn_json_arr_end(&j);
		cn_json_obj_end(&j);
	} else {
		if (w->have_res)
			cn_sched_render_jobs(&w->res, false, &a->reply);
		cn_buf_printf(&a->reply, "\ninstances on %s: %zu\n", w->self, n);
		for (size_t i = 0; i < n; i++)
			instance_line(&a->reply, &v[i]);
		cn_buf_printf(&a->reply, "%s\n", cn_rt_cgroup_status(w->rt));
	}
	free(v);
	return 0;
}

static int cmd_job_status(cn_workloads *w, cn_agent *a, const char *name, bool json)
{
	const cn_place_job_out *jo = w->have_res ? cn_place_result_job(&w->res, name) : NULL;
	if (jo == NULL) {
		cn_buf_printf(&a->reply, "no job named '%s' (canopy jobs lists them)\n", name);
		return CN_ENOENT;
	}
	cn_json j;
	if (json) {
		cn_json_init(&j, &a->reply);
		cn_json_obj_begin(&j);
		cn_json_kv_str(&j, "name", jo->name);
		cn_json_kv_u64(&j, "version", jo->version);
		cn_json_kv_u64(&j, "want", jo->want);
		cn_json_kv_u64(&j, "placed", jo->n_placed);
		cn_json_kv_u64(&j, "eligible", jo->n_eligible);
		cn_json_kv_bool(&j, "quorum", jo->quorum);
		cn_json_key(&j, "replicas");
		cn_json_arr_begin(&j);
	} else {
		cn_buf_printf(&a->reply, "job %s version %llu: %u of %u placed (%u eligible)%s\n",
			      jo->name, (unsigned long long)jo->version, jo->n_placed, jo->want,
			      jo->n_eligible,
			      jo->majority_only ? (jo->quorum ? ", quorum held" : ", NO QUORUM here")
						: "");
	}
	for (uint32_t x = 0; x < jo->n_placed; x++) {
		const char *member = w->res.members[w->res.slots[jo->first + x]].name;
		cn_member m;
		const char *mstate = cn_node_member_find(a->node, member, &m) == 0
					     ? cn_member_state_name(m.state)
					     : "unknown";
		cn_rt_info in;
		bool local = strcmp(member, w->self) == 0 &&
			     cn_rt_get(w->rt, name, x, &in) == 0;
		if (json) {
			cn_json_obj_begin(&j);
			cn_json_kv_u64(&j, "replica", x);
			cn_json_kv_str(&j, "member", member);
			cn_json_kv_str(&j, "member_state", mstate);
			if (local) {
				cn_json_kv_str(&j, "state", cn_rt_state_name(in.state));
				cn_json_kv_u64(&j, "pid", (uint64_t)(in.pid > 0 ? in.pid : 0));
				cn_json_kv_u64(&j, "restarts", in.restarts);
				cn_json_kv_u64(&j, "running_version", in.version);
			}
			cn_json_obj_end(&j);
		} else if (local) {
			cn_buf_printf(&a->reply, "  replica %u on %s (%s): %s, pid %d, restarts %u, version %llu\n",
				      x, member, mstate, cn_rt_state_name(in.state), (int)in.pid,
				      in.restarts, (unsigned long long)in.version);
		} else {
			cn_buf_printf(&a->reply, "  replica %u on %s (%s)\n", x, member, mstate);
		}
	}
	if (json) {
		cn_json_arr_end(&j);
		cn_json_obj_end(&j);
	}
	return 0;
}

static int unhex(const char *s, size_t len, uint8_t *out, size_t cap)
{
	if (len % 2 != 0 || len / 2 > cap)
		return CN_EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + (size_t)k];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
						       : -1;
			if (d < 0)
				return CN_EINVAL;
			v = v * 16 + d;
		}
		out[i] = (uint8_t)v;
	}
	return (int)(len / 2);
}

/* Admin arguments point into the request and are not NUL-terminated. */
static bool arg_copy(const cn_admin_req *req, uint32_t i, char *out, size_t cap)
{
	if (i >= req->n_args || req->arg_len[i] >= cap)
		return false;
	memcpy(out, req->args[i], req->arg_len[i]);
	out[req->arg_len[i]] = 0;
	return true;
}

/* plan NAME HEXSPEC [NAME HEXSPEC]...: placement with these jobs added or
 * replaced (an empty spec removes the job), against the current one. */
static int cmd_plan(cn_workloads *w, cn_agent *a, const cn_admin_req *req, bool json)
{
	if (req->n_args == 0 || req->n_args % 2 != 0) {
		cn_buf_printf(&a->reply, "plan: expected NAME SPEC pairs\n");
		return CN_EINVAL;
	}
	cn_sched_jobs after = {0};
	int rc = a->policy != NULL ? cn_sched_jobs_load(&after, a->policy) : 0;
	uint8_t *spec = malloc(CN_JOB_DOC_MAX);
	if (spec == NULL)
		rc = CN_ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < req->n_args; i += 2) {
		char name[CN_JOB_NAME_MAX + 1];
		if (!arg_copy(req, i, name, sizeof name)) {
			cn_buf_printf(&a->reply, "plan: job name too long\n");
			rc = CN_EINVAL;
			break;
		}
		int len = unhex(req->args[i + 1], req->arg_len[i + 1], spec, CN_JOB_DOC_MAX);
		if (len < 0) {
			cn_buf_printf(&a->reply, "plan: job %s: spec is not hex msgpack\n", name);
			rc = CN_EINVAL;
			break;
		}
		for (size_t k = 0; k < after.n; k++) { /* replaced: drop the stored one */
			if (strcmp(after.v[k].name, name) == 0) {
				after.v[k] = after.v[--after.n];
				break;
			}
		}
		if (len == 0)
			continue;
		cn_jobspec_err e = {0};
		/* A planned version sorts after every stored one. */
		rc = cn_sched_jobs_add(&after, name, UINT64_MAX, spec, (size_t)len, true, &e);
		if (rc != 0) {
			char msg[CN_JOB_ERR_PATH_MAX + CN_JOB_ERR_MSG_MAX + 8];
			cn_jobspec_err_format(&e, msg, sizeof msg);
			cn_buf_printf(&a->reply, "plan: job %s: %s\n", name, msg);
		}
	}
	free(spec);
	cn_sched_view view = {0};
	cn_place_result before, res;
	memset(&before, 0, sizeof before);
	memset(&res, 0, sizeof res);
	if (rc == 0)
		rc = cn_sched_view_load(&view, a->node);
	if (rc == 0)
		rc = cn_sched_place(w->placer, &view, &w->jobs, &before);
	if (rc == 0)
		rc = cn_sched_place(w->placer, &view, &after, &res);
	if (rc == 0)
		cn_sched_render_plan(&before, &res, json, &a->reply);
	else if (a->reply.len == 0)
		cn_buf_printf(&a->reply, "plan failed: %s\n", cn_strerror(rc));
	cn_place_result_free(&before);
	cn_place_result_free(&res);
	cn_sched_view_free(&view);
	cn_sched_jobs_free(&after);
	return rc;
}

static int tail_file(cn_buf *out, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CN_ENOENT;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) == 0 && st.st_size > CN_WORKLOADS_LOG_TAIL)
		(void)lseek(fd, st.st_size - CN_WORKLOADS_LOG_TAIL, SEEK_SET);
	char buf[8192];
	for (int i = 0; i < CN_WORKLOADS_LOG_TAIL / (int)sizeof buf + 1; i++) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (cn_buf_append(out, buf, (size_t)n) != 0) {
			rc = CN_ENOMEM;
			break;
		}
	}
	close(fd);
	return rc;
}

static int cmd_logs(cn_workloads *w, cn_agent *a, const cn_admin_req *req)
{
	char job[CN_JOB_NAME_MAX + 1], rep[16];
	if (!arg_copy(req, 0, job, sizeof job)) {
		cn_buf_printf(&a->reply, "logs: job name too long\n");
		return CN_EINVAL;
	}
	long want = -1;
	if (req->n_args == 2) {
		char *end = NULL;
		if (arg_copy(req, 1, rep, sizeof rep))
			want = strtol(rep, &end, 10);
		if (end == NULL || *end != 0 || want < 0 || end == rep) {
			cn_buf_printf(&a->reply, "logs: REPLICA must be a replica number\n");
			return CN_EINVAL;
		}
	}
	size_t n;
	cn_rt_info *v = instances(w, &n);
	int shown = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].job, job) != 0 || (want >= 0 && v[i].replica != (uint32_t)want))
			continue;
		cn_buf_printf(&a->reply, "==> %s (replica %u on %s) <==\n", v[i].log_path,
			      v[i].replica, w->self);
		if (tail_file(&a->reply, v[i].log_path) != 0)
			cn_buf_printf(&a->reply, "(no log yet)\n");
		shown++;
	}
	free(v);
	if (shown == 0) {
		cn_buf_printf(&a->reply, "no replica of %s runs on %s", job, w->self);
		const cn_place_job_out *jo = w->have_res ? cn_place_result_job(&w->res, job) : NULL;
		if (jo != NULL && jo->n_placed > 0) {
			cn_buf_puts(&a->reply, "; it runs on ");
			for (uint32_t x = 0; x < jo->n_placed; x++)
				cn_buf_printf(&a->reply, "%s%s", x ? ", " : "",
					      w->res.members[w->res.slots[jo->first + x]].name);
			cn_buf_puts(&a->reply, " (ask their agents)");
		}
		cn_buf_puts(&a->reply, "\n");
		return CN_ENOENT;
	}
	return 0;
}

int cn_workloads_admin(cn_workloads *w, cn_agent *a, const cn_admin_req *req, bool json,
		       uint64_t now_ms)
{
	(void)now_ms;
	if (strcmp(req->cmd, "jobs") == 0)
		return cmd_jobs(w, a, json);
	if (strcmp(req->cmd, "job-status") == 0) {
		char name[CN_JOB_NAME_MAX + 1];
		if (req->n_args != 1 || !arg_copy(req, 0, name, sizeof name))
			return CN_EINVAL;
		return cmd_job_status(w, a, name, json);
	}
	if (strcmp(req->cmd, "plan") == 0)
		return cmd_plan(w, a, req, json);
	if (strcmp(req->cmd, "logs") == 0) {
		if (req->n_args < 1 || req->n_args > 2)
			return CN_EINVAL;
		return cmd_logs(w, a, req);
	}
	return CN_EUNKNOWN;
}

size_t cn_workloads_counters(const cn_workloads *w, cn_workloads_counter *out, size_t cap)
{
	cn_rt_stats st;
	cn_rt_stats_get(w->rt, &st);
	cn_workloads_counter all[] = {
		{"workload_spawns", st.spawns},
		{"workload_spawn_errors", st.spawn_errors},
		{"workload_exits", st.exits},
		{"workload_restarts", st.restarts},
		{"workload_adopted", st.adopted},
		{"workload_probes_failed", st.probes_failed},
		{"placements", w->placements},
		{"placement_errors", w->place_errors},
		{"placement_changes", w->desired_changes},
	};
	size_t n = sizeof all / sizeof all[0];
	if (n > cap)
		n = cap;
	memcpy(out, all, n * sizeof *out);
	return n;
}
