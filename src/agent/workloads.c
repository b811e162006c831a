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
#include "agent/rollout.h"
#include "agent/sched.h"
#include "runtime/runtime.h"
#include "store/kv.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/admin.h"

enum {
	WANTS_MAX = CN_RT_INSTANCES_MAX,
	ROLLS_MAX = 256,        /* rollouts tracked (current and reverted ones) */
	ROLL_VAL_LEN = 3,       /* stored: done (u16 LE), flags */
};

/* One rollout (job, version V) as this agent tracks it; see agent/rollout.h.
 * Entries whose V is no longer the winner are dropped, except reverted
 * ones: choosing the previous version of a later one skips them. */
typedef struct roll {
	char name[CN_JOB_NAME_MAX + 1];
	cn_rollout_state st;
	bool resolved;          /* prev looked up in the history */
	uint64_t prev;          /* P; 0: no earlier version, V runs everywhere */
	cn_jobspec *prev_spec;  /* P's spec while P may still run, else NULL */
	bool live;              /* V is the winner (this tick) */
	bool stored;            /* the store has an entry */
	uint16_t saved_done;    /* what the store holds */
	bool saved_reverted;
	/* from the last tick, for status and reports */
	uint32_t n_stages, canary, max_parallel;
	bool paused, settled_here, failed_here;
	/* First seen in this agent's first placement with nothing stored: the
	 * version ran before this agent (or this code) knew of a rollout, so
	 * it counts as complete, unpublished, unless a member reports it. */
	bool baseline;
} roll;

/* A local instance up (running or healthy) at one version since when. */
typedef struct up_rec {
	char job[CN_JOB_NAME_MAX + 1];
	uint32_t replica;
	pid_t pid;
	uint64_t version;
	uint64_t since_ms;
	uint8_t state;
	uint32_t failures_in_row;
	/* failures_in_row carried over from an earlier version: the runtime
	 * resets the count for a new version, except when the old process
	 * exits just as the version changes (then its restart counts on) */
	uint32_t fail_base;
} up_rec;

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
	/* staged rollouts */
	cn_kv *roll_kv;
	roll *rolls;
	size_t n_rolls;
	up_rec *up, *up_next;   /* every local instance with a process */
	size_t n_up;
	cn_rt_info *infos;
	uint64_t rolls_dropped, rollout_steps, rollout_reverts;
	size_t n_infos;
	bool *settled;          /* scratch, CN_JOB_REPLICAS_MAX */
	bool placed_once;
	uint64_t opened_ms;
	uint64_t reports_sent_ms;   /* last metadata change for workload reports */
	uint64_t reports_unsent;    /* replicas left out of the reports (budget) */
	bool fenced;                /* see cn_sched_fenced */
	cn_sched_hold hold;         /* majority_only start hold (sched.h) */
	uint64_t fences;            /* times it became fenced */
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

/* ---- rollout state in the store ----
 * Database "rollout": key "%016llx/NAME" (V in hex, the job name), value
 * done (u16 little-endian) and flags (CN_ROLLOUT_REVERTED), so progress and
 * reverts survive agent restarts. */

static void roll_key(const roll *r, char *key, size_t cap)
{
	snprintf(key, cap, "%016llx/%s", (unsigned long long)r->st.version, r->name);
}

static roll *roll_add(cn_workloads *w, const char *name, uint64_t version)
{
	if (w->n_rolls == ROLLS_MAX) {
		/* Full: forget the oldest reverted entry that is not current. */
		size_t victim = ROLLS_MAX;
		for (size_t i = 0; i < w->n_rolls; i++)
			if (!w->rolls[i].live && (victim == ROLLS_MAX ||
						  w->rolls[i].st.version < w->rolls[victim].st.version))
				victim = i;
		if (victim == ROLLS_MAX) {
			w->rolls_dropped++;
			return NULL;
		}
		char key[CN_JOB_NAME_MAX + 24];
		roll_key(&w->rolls[victim], key, sizeof key);
		(void)cn_kv_del(w->roll_kv, key);
		free(w->rolls[victim].prev_spec);
		w->rolls[victim] = w->rolls[--w->n_rolls];
	}
	roll *r = &w->rolls[w->n_rolls++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	r->st.job_hash = cn_rollout_job_hash(name);
	r->st.version = version;
	return r;
}

static int roll_load_cb(void *arg, const char *key, const uint8_t *val, size_t len)
{
	cn_workloads *w = arg;
	char *end = NULL;
	unsigned long long v = strtoull(key, &end, 16);
	if (len != ROLL_VAL_LEN || end != key + 16 || *end != '/' || end[1] == 0 ||
	    strlen(end + 1) > CN_JOB_NAME_MAX || w->n_rolls == ROLLS_MAX)
		return 0; /* not ours, or too many: skipped */
	roll *r = roll_add(w, end + 1, v);
	if (r == NULL)
		return 0;
	r->st.done = (uint16_t)(val[0] | val[1] << 8);
	r->st.reverted = (val[2] & CN_ROLLOUT_REVERTED) != 0;
	r->saved_done = r->st.done;
	r->saved_reverted = r->st.reverted;
	r->stored = true;
	return 0;
}

static void roll_save(cn_workloads *w, roll *r)
{
	if (r->stored && r->st.done == r->saved_done && r->st.reverted == r->saved_reverted)
		return;
	char key[CN_JOB_NAME_MAX + 24];
	roll_key(r, key, sizeof key);
	uint8_t val[ROLL_VAL_LEN] = {(uint8_t)(r->st.done & 0xff), (uint8_t)(r->st.done >> 8),
				     r->st.reverted ? CN_ROLLOUT_REVERTED : 0};
	int rc = cn_kv_put(w->roll_kv, key, val, sizeof val);
	if (rc != 0) {
		cn_agent_log("rollout %s: cannot save its state: %s", r->name, cn_strerror(rc));
		return;
	}
	r->saved_done = r->st.done;
	r->saved_reverted = r->st.reverted;
	r->stored = true;
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
	w->rolls = calloc(ROLLS_MAX, sizeof *w->rolls);
	w->up = malloc(WANTS_MAX * sizeof *w->up);
	w->up_next = malloc(WANTS_MAX * sizeof *w->up_next);
	w->infos = malloc(WANTS_MAX * sizeof *w->infos);
	w->settled = malloc(CN_JOB_REPLICAS_MAX * sizeof *w->settled);
	int rc = CN_ENOMEM;
	if (w->wants == NULL || w->given_job == NULL || w->given_replica == NULL ||
	    w->given_version == NULL || w->rolls == NULL || w->up == NULL || w->up_next == NULL ||
	    w->infos == NULL || w->settled == NULL || cn_placer_new(&w->placer) != 0) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}
	if ((rc = cn_kv_open(a->store, "runtime", &w->kv)) != 0) {
		snprintf(err, errcap, "cannot open the runtime records in the store: %s",
			 cn_strerror(rc));
		goto fail;
	}
	if ((rc = cn_kv_open(a->store, "rollout", &w->roll_kv)) != 0 ||
	    (rc = cn_kv_scan(w->roll_kv, roll_load_cb, w)) != 0) {
		snprintf(err, errcap, "cannot read the rollout state in the store: %s",
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
	w->opened_ms = now_ms;
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
	cn_kv_close(w->roll_kv);
	for (size_t i = 0; w->rolls != NULL && i < w->n_rolls; i++)
		free(w->rolls[i].prev_spec);
	free(w->rolls);
	free(w->up);
	free(w->up_next);
	free(w->infos);
	free(w->settled);
	cn_placer_free(w->placer);
	if (w->have_res)
		cn_place_result_free(&w->res);
	cn_sched_jobs_free(&w->jobs);
	cn_sched_hold_free(&w->hold);
	cn_sched_view_free(&w->view);
	free(w->wants);
	free(w->given_job);
	free(w->given_replica);
	free(w->given_version);
	free(w);
}

/* ---- staged rollouts (agent/rollout.h, docs/rollouts.md) ---- */

static roll *roll_find(cn_workloads *w, const char *name, uint64_t version)
{
	for (size_t i = 0; i < w->n_rolls; i++)
		if (w->rolls[i].st.version == version && strcmp(w->rolls[i].name, name) == 0)
			return &w->rolls[i];
	return NULL;
}

/* The rollout of job `name`'s current winner, or NULL. */
static roll *roll_live(cn_workloads *w, const char *name)
{
	for (size_t i = 0; i < w->n_rolls; i++)
		if (w->rolls[i].live && strcmp(w->rolls[i].name, name) == 0)
			return &w->rolls[i];
	return NULL;
}

typedef struct prev_ctx {
	cn_workloads *w;
	uint64_t version;       /* V */
	uint8_t v_hash[CN_DOC_HASH_BYTES];
	bool have_v_hash;
	uint64_t best;
	uint8_t *body;
	uint32_t body_len;
	int rc;
} prev_ctx;

static int prev_hash_cb(void *arg, const cn_doc *d)
{
	prev_ctx *c = arg;
	if (d->version == c->version && !d->deleted) {
		memcpy(c->v_hash, d->body_hash, sizeof c->v_hash);
		c->have_v_hash = true;
	}
	return 0;
}

static int prev_pick_cb(void *arg, const cn_doc *d)
{
	prev_ctx *c = arg;
	if (d->deleted || d->version >= c->version || d->version <= c->best || d->body_len == 0 ||
	    d->body_len > CN_JOB_DOC_MAX)
		return 0;
	if (c->have_v_hash && memcmp(d->body_hash, c->v_hash, sizeof c->v_hash) == 0)
		return 0; /* same body: nothing to roll from */
	/* A version whose own rollout did not complete (reverted, paused or
	 * still going: V replaced it mid-way) never ran everywhere and may be
	 * bad: roll from the one before it. Entries of first versions (no
	 * P, ran everywhere at once) and baseline ones count as complete. */
	const roll *old = roll_find(c->w, d->name, d->version);
	if (old != NULL && (old->prev != 0 || !old->resolved) && !old->baseline &&
	    (old->st.reverted || old->st.done != CN_ROLLOUT_DONE_ALL))
		return 0;
	uint8_t *b = realloc(c->body, d->body_len);
	if (b == NULL) {
		c->rc = CN_ENOMEM;
		return 0;
	}
	memcpy(b, d->body, d->body_len);
	c->body = b;
	c->body_len = d->body_len;
	c->best = d->version;
	return 0;
}

/* P for r from the policy history: the newest kept version before V, not
 * a tombstone, with another body, whose own rollout completed (as far as
 * this agent knows). None: prev = 0. */
static void roll_resolve(cn_workloads *w, cn_agent *a, roll *r)
{
	r->resolved = true;
	r->prev = 0;
	free(r->prev_spec);
	r->prev_spec = NULL;
	if (a->policy == NULL)
		return;
	prev_ctx c = {.w = w, .version = r->st.version};
	(void)cn_policy_history(a->policy, "job", r->name, prev_hash_cb, &c);
	(void)cn_policy_history(a->policy, "job", r->name, prev_pick_cb, &c);
	if (c.best != 0 && c.rc == 0) {
		cn_sched_jobs tmp = {0};
		r->prev_spec = malloc(sizeof *r->prev_spec);
		if (r->prev_spec != NULL &&
		    cn_sched_jobs_add(&tmp, r->name, c.best, c.body, c.body_len, false, NULL) == 0) {
			*r->prev_spec = tmp.v[0].spec;
			r->prev = c.best;
		} else {
			free(r->prev_spec);
			r->prev_spec = NULL;
		}
		cn_sched_jobs_free(&tmp);
	}
	free(c.body);
}

/* Whether replica x of r's job runs V (else P). */
static bool roll_runs_new(const roll *r, uint32_t x)
{
	return r->prev == 0 || r->baseline ||
	       cn_rollout_runs_new(&r->st, x, r->canary, r->max_parallel);
}

static bool up_state(uint8_t st)
{
	return st == CN_RT_RUNNING || st == CN_RT_HEALTHY;
}

static const up_rec *up_find(const cn_workloads *w, const char *job, uint32_t replica)
{
	for (size_t i = 0; i < w->n_up; i++)
		if (w->up[i].replica == replica && strcmp(w->up[i].job, job) == 0)
			return &w->up[i];
	return NULL;
}

/* Every local instance, with how long it has been up at its version. */
static void observe(cn_workloads *w, uint64_t now_ms)
{
	size_t n = cn_rt_list(w->rt, w->infos, WANTS_MAX);
	if (n > WANTS_MAX)
		n = WANTS_MAX;
	w->n_infos = n;
	for (size_t i = 0; i < n; i++) {
		const cn_rt_info *in = &w->infos[i];
		up_rec *u = &w->up_next[i];
		const up_rec *old = up_find(w, in->job, in->replica);
		memcpy(u->job, in->job, sizeof u->job);
		u->replica = in->replica;
		u->pid = in->pid;
		u->version = in->version;
		u->state = in->state;
		u->failures_in_row = in->failures_in_row;
		bool same = old != NULL && up_state(old->state) && old->pid == in->pid &&
			    old->version == in->version;
		u->since_ms = same ? old->since_ms : now_ms;
		if (old == NULL)
			u->fail_base = 0;
		else if (old->version != in->version)
			u->fail_base = in->failures_in_row >= old->failures_in_row ? old->failures_in_row : 0;
		else
			u->fail_base = in->failures_in_row >= old->fail_base ? old->fail_base : 0;
	}
	up_rec *t = w->up;
	w->up = w->up_next;
	w->up_next = t;
	w->n_up = n;
}

static bool member_alive(const cn_member *m)
{
	return m->state == CN_STATE_ALIVE || m->state == CN_STATE_SUSPECT;
}

static bool view_has_peer(const cn_workloads *w)
{
	for (size_t i = 0; i < w->view.n; i++)
		if (w->view.members[i].state == CN_STATE_ALIVE &&
		    strcmp(w->view.members[i].name, w->self) != 0)
			return true;
	return false;
}

static const cn_member *view_member(const cn_workloads *w, const char *name)
{
	for (size_t i = 0; i < w->view.n; i++)
		if (strcmp(w->view.in[i].name, name) == 0)
			return &w->view.members[i];
	return NULL;
}

static const cn_rollout_report *report_of(const cn_member *m, const roll *r)
{
	for (unsigned i = 0; m != NULL && i < m->meta.n_rollout && i < CN_ROLLOUT_REPORTS_MAX; i++)
		if (m->meta.rollout[i].job_hash == r->st.job_hash &&
		    m->meta.rollout[i].version == r->st.version)
			return &m->meta.rollout[i];
	return NULL;
}

/* One job's rollout, every placement: merge the reports, judge this
 * agent's replicas, revert or pause on failure, advance, save. */
static void roll_step(cn_workloads *w, cn_agent *a, const cn_place_job_out *jo,
		      const cn_sched_job *sj, bool first, uint64_t now_ms)
{
	roll *r = roll_find(w, jo->name, sj->version);
	if (r == NULL) {
		r = roll_add(w, jo->name, sj->version);
		if (r == NULL)
			return; /* table full: V runs everywhere */
		r->baseline = first;
	}
	const cn_jobspec *sp = &sj->spec;
	r->live = true;
	r->canary = sp->update_canary;
	r->max_parallel = sp->update_max_parallel ? sp->update_max_parallel : 1;
	uint32_t n = jo->n_placed < CN_JOB_REPLICAS_MAX ? jo->n_placed : CN_JOB_REPLICAS_MAX;
	r->n_stages = cn_rollout_stages(n, r->canary, r->max_parallel);
	bool complete = r->st.done == CN_ROLLOUT_DONE_ALL && !r->st.reverted;
	if (!r->resolved || (!complete && r->prev != 0 && r->prev_spec == NULL))
		roll_resolve(w, a, r);
	if (r->prev == 0)
		return;
	bool failed_elsewhere = false, heard = false;
	for (size_t i = 0; i < w->view.n; i++) {
		const cn_member *m = &w->view.members[i];
		const cn_rollout_report *rep = report_of(m, r);
		if (rep == NULL)
			continue;
		heard = true;
		cn_rollout_merge(&r->st, rep);
		if ((rep->flags & CN_ROLLOUT_FAILED) && member_alive(m) &&
		    strcmp(m->name, w->self) != 0)
			failed_elsewhere = true;
	}
	if (r->baseline && heard)
		r->baseline = false; /* the fleet knows this rollout: follow it */
	if (r->baseline)
		return; /* runs V everywhere (roll_runs_new), judges nothing */
	r->failed_here = false;
	for (uint32_t x = 0; x < n; x++) {
		const char *host = w->res.members[w->res.slots[jo->first + x]].name;
		uint32_t stage = cn_rollout_stage(x, r->canary, r->max_parallel);
		if (strcmp(host, w->self) == 0) {
			const up_rec *u = up_find(w, jo->name, x);
			bool at_v = u != NULL && u->version == r->st.version;
			w->settled[x] = at_v && up_state(u->state) &&
					now_ms - u->since_ms >= sp->update_healthy_for_ms;
			if (at_v && (u->state == CN_RT_FAILED || u->state == CN_RT_UNHEALTHY ||
				     u->failures_in_row - u->fail_base >= CN_ROLLOUT_FAIL_RESTARTS))
				r->failed_here = true;
		} else {
			const cn_member *m = view_member(w, host);
			const cn_rollout_report *rep = report_of(m, r);
			w->settled[x] = m != NULL && member_alive(m) && rep != NULL &&
					(rep->flags & CN_ROLLOUT_SETTLED) && rep->done_stage >= stage;
		}
	}
	complete = r->st.done == CN_ROLLOUT_DONE_ALL && !r->st.reverted;
	if (r->failed_here && !complete && sp->update_auto_revert && !r->st.reverted) {
		r->st.reverted = true;
		w->rollout_reverts++;
		cn_agent_log("rollout %s: version %llu failed here; reverting the fleet to %llu",
			     r->name, (unsigned long long)r->st.version,
			     (unsigned long long)r->prev);
	}
	r->paused = !sp->update_auto_revert && !complete && (r->failed_here || failed_elsewhere);
	uint16_t was = r->st.done;
	if (cn_rollout_advance(&r->st, w->settled, n, r->canary, r->max_parallel, r->paused)) {
		w->rollout_steps++;
		if (r->st.done == CN_ROLLOUT_DONE_ALL)
			cn_agent_log("rollout %s: version %llu complete", r->name,
				     (unsigned long long)r->st.version);
		else
			cn_agent_log("rollout %s: version %llu stage %u of %u (from %u)", r->name,
				     (unsigned long long)r->st.version, r->st.done + 1, r->n_stages,
				     was + 1);
	}
	r->settled_here = true;
	for (uint32_t x = 0; x < n; x++)
		if (strcmp(w->res.members[w->res.slots[jo->first + x]].name, w->self) == 0 &&
		    cn_rollout_runs_new(&r->st, x, r->canary, r->max_parallel) && !w->settled[x])
			r->settled_here = false;
	roll_save(w, r); /* also a new entry at stage 0: a restart resumes it */
	if (r->st.done == CN_ROLLOUT_DONE_ALL && !r->st.reverted) {
		free(r->prev_spec); /* every replica runs V now */
		r->prev_spec = NULL;
	}
}

static void rollouts_step(cn_workloads *w, cn_agent *a, uint64_t now_ms)
{
	bool first = !w->placed_once;
	w->placed_once = true;
	observe(w, now_ms);
	for (size_t i = 0; i < w->n_rolls; i++)
		w->rolls[i].live = false;
	for (size_t k = 0; k < w->res.n_jobs; k++) {
		const cn_place_job_out *jo = &w->res.jobs[k];
		const cn_sched_job *sj = NULL;
		for (size_t i = 0; i < w->jobs.n && sj == NULL; i++)
			if (strcmp(w->jobs.v[i].name, jo->name) == 0)
				sj = &w->jobs.v[i];
		if (sj != NULL)
			roll_step(w, a, jo, sj, first, now_ms);
	}
	/* Forget what is no longer current, except reverts (see roll). */
	for (size_t i = 0; a->policy != NULL && i < w->n_rolls;) {
		roll *r = &w->rolls[i];
		if (r->live || r->st.reverted) {
			i++;
			continue;
		}
		char key[CN_JOB_NAME_MAX + 24];
		roll_key(r, key, sizeof key);
		(void)cn_kv_del(w->roll_kv, key);
		free(r->prev_spec);
		w->rolls[i] = w->rolls[--w->n_rolls];
	}
}

/* Which version each of this agent's replicas runs: P before its stage
 * and after a revert. */
static void rollouts_wants(cn_workloads *w)
{
	for (size_t i = 0; i < w->n_wants; i++) {
		cn_rt_want *wt = &w->wants[i];
		const roll *r = roll_live(w, wt->job);
		if (r == NULL || r->prev_spec == NULL || roll_runs_new(r, wt->replica))
			continue;
		wt->version = r->prev;
		wt->spec = r->prev_spec;
	}
}

static int roll_newer_first(const void *x, const void *y)
{
	const roll *a = *(const roll *const *)x, *b = *(const roll *const *)y;
	return a->st.version > b->st.version ? -1 : a->st.version < b->st.version ? 1 : 0;
}

static int report_cmp(const void *x, const void *y)
{
	const cn_workload_report *a = x, *b = y;
	if (a->job_hash != b->job_hash)
		return a->job_hash < b->job_hash ? -1 : 1;
	return a->replica < b->replica ? -1 : a->replica > b->replica;
}

/* The replicas this agent runs, as key-12 reports in (job_hash, replica)
 * order. Instances being stopped and ones not wanted are left out: the
 * reports answer "who runs what". Two jobs whose names share a hash
 * would collide on one replica number: the second is left out. */
static unsigned workload_reports(cn_workloads *w, cn_workload_report *out)
{
	size_t n = cn_rt_list(w->rt, w->infos, WANTS_MAX);
	if (n > WANTS_MAX)
		n = WANTS_MAX;
	cn_workload_report all[WANTS_MAX];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const cn_rt_info *in = &w->infos[i];
		if (!in->wanted || in->replica > UINT16_MAX)
			continue;
		all[k++] = (cn_workload_report){in->version, cn_rollout_job_hash(in->job),
						in->restarts, (uint16_t)in->replica, in->state, 0};
	}
	qsort(all, k, sizeof all[0], report_cmp);
	unsigned m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m > 0 && report_cmp(&out[m - 1], &all[i]) == 0)
			continue;
		if (m == CN_WORKLOAD_REPORTS_MAX) {
			w->reports_unsent += k - i;
			break;
		}
		out[m++] = all[i];
	}
	return m;
}

/* Equal but for restart counts. */
static bool reports_same_shape(const cn_meta *a, const cn_meta *b)
{
	if (a->n_workloads != b->n_workloads)
		return false;
	for (unsigned i = 0; i < a->n_workloads; i++) {
		const cn_workload_report *x = &a->workloads[i], *y = &b->workloads[i];
		if (x->job_hash != y->job_hash || x->replica != y->replica || x->state != y->state ||
		    x->version != y->version)
			return false;
	}
	return true;
}

/* Our reports into our metadata: the newest CN_ROLLOUT_REPORTS_MAX live
 * rollouts, then the replicas we run (what fits the metadata budget). One
 * metadata change carries both. Every change is gossiped to the whole
 * fleet, so a change of restart counts alone (a crash loop) waits
 * CN_WORKLOADS_REPORT_MIN_MS since the last one; anything else goes now. */
static void reports_publish(cn_workloads *w, cn_agent *a, uint64_t now_ms)
{
	const roll *pick[ROLLS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < w->n_rolls; i++)
		if (w->rolls[i].live && w->rolls[i].prev != 0 && !w->rolls[i].baseline)
			pick[n++] = &w->rolls[i];
	qsort(pick, n, sizeof pick[0], roll_newer_first);
	if (n > CN_ROLLOUT_REPORTS_MAX)
		n = CN_ROLLOUT_REPORTS_MAX;
	cn_member self;
	cn_node_self(a->node, &self);
	cn_meta m = self.meta;
	memset(m.rollout, 0, sizeof m.rollout);
	m.n_rollout = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		const roll *r = pick[i];
		m.rollout[i] = (cn_rollout_report){
			r->st.version, r->st.job_hash, r->st.done,
			(uint8_t)((r->settled_here ? CN_ROLLOUT_SETTLED : 0) |
				  (r->failed_here ? CN_ROLLOUT_FAILED : 0) |
				  (r->st.reverted ? CN_ROLLOUT_REVERTED : 0)),
			0};
	}
	memset(m.workloads, 0, sizeof m.workloads);
	m.n_workloads = (uint8_t)workload_reports(w, m.workloads);
	cn_meta_rollout_fit(&m);
	bool rollouts_same = m.n_rollout == self.meta.n_rollout &&
			     memcmp(m.rollout, self.meta.rollout, sizeof m.rollout) == 0;
	bool workloads_same = m.n_workloads == self.meta.n_workloads &&
			      memcmp(m.workloads, self.meta.workloads, sizeof m.workloads) == 0;
	if (rollouts_same && workloads_same)
		return;
	if (rollouts_same && reports_same_shape(&m, &self.meta) &&
	    now_ms < w->reports_sent_ms + CN_WORKLOADS_REPORT_MIN_MS)
		return; /* restart counts alone: later */
	if (cn_node_set_meta(a->node, &m, now_ms) == 0)
		w->reports_sent_ms = now_ms;
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

/* cn_sched_running_fn over the runtime: a process runs for that replica. */
static bool has_process(void *ctx, const char *job, uint32_t replica)
{
	cn_rt_info in;
	return cn_rt_get(ctx, job, replica, &in) == 0 && in.pid > 0;
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
	if (!w->ever_given && !view_has_peer(w) &&
	    now_ms - w->opened_ms < CN_WORKLOADS_JOIN_WAIT_MS) {
		cn_place_result_free(&res); /* not joined yet: see workloads.h */
		return;
	}
	if (w->have_res)
		cn_place_result_free(&w->res);
	w->res = res;
	w->have_res = true;
	bool fenced = cn_sched_fenced(cn_node_health_score(a->node),
				      cn_node_last_probe_ok(a->node));
	if (fenced != w->fenced)
		cn_agent_log(fenced ? "workloads: local health %u: fenced, majority_only replicas stop"
				    : "workloads: local health %u: no longer fenced",
			     cn_node_health_score(a->node));
	w->fences += fenced && !w->fenced;
	w->fenced = fenced;
	size_t n = cn_sched_wants(&w->res, &w->jobs, w->self, fenced, w->wants, WANTS_MAX);
	if (n > WANTS_MAX) {
		w->wants_dropped += n - WANTS_MAX;
		n = WANTS_MAX;
	}
	n = cn_sched_hold_filter(&w->hold, w->wants, n, now_ms,
				 CN_WORKLOADS_MAJORITY_HOLD_PERIODS *
					 (uint64_t)a->opts.node.probe_interval_ms,
				 has_process, w->rt);
	w->n_wants = n;
	rollouts_step(w, a, now_ms);
	rollouts_wants(w);
	reports_publish(w, a, now_ms);
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
		cn_json_kv_u64(&j, "placement_rule", w->view.rule ? w->view.rule : CN_PLACE_RULE_NEWEST);
		cn_json_key(&j, "instances");
		cn_json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			instance_json(&j, &v[i]);
		cn_json_arr_end(&j);
		cn_json_obj_end(&j);
	} else {
		if (w->have_res)
			cn_sched_render_jobs(&w->res, false, &a->reply);
		if (w->view.rule == CN_PLACE_RULE_1)
			cn_buf_puts(&a->reply, "placement rule 1: a live member speaks only protocol "
					       "version 1 (PROTOCOL.md \"Versions\")\n");
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
		cn_json_kv_u64(&j, "no_room", jo->n_no_room);
		cn_json_kv_bool(&j, "quorum", jo->quorum);
		cn_json_key(&j, "replicas");
		cn_json_arr_begin(&j);
	} else {
		cn_buf_printf(&a->reply, "job %s version %llu: %u of %u placed (%u eligible)%s%s\n",
			      jo->name, (unsigned long long)jo->version, jo->n_placed, jo->want,
			      jo->n_eligible,
			      jo->majority_only ? (jo->quorum ? ", quorum held" : ", NO QUORUM here")
						: "",
			      jo->n_no_room ? ", the rest find no free accelerator" : "");
	}
	uint32_t hash = cn_rollout_job_hash(name);
	for (uint32_t x = 0; x < jo->n_placed; x++) {
		const char *member = w->res.members[w->res.slots[jo->first + x]].name;
		cn_member m;
		bool known = cn_node_member_find(a->node, member, &m) == 0;
		const char *mstate = known ? cn_member_state_name(m.state) : "unknown";
		/* A replica redirected off a member that is down holds that
		 * member's place in placement's base (placement.h step 5): it
		 * goes back when the member returns. */
		const char *base = w->res.members[w->res.base_of[jo->first + x]].name;
		bool stand_in = strcmp(base, member) != 0;
		char where[CN_NAME_MAX + 64];
		snprintf(where, sizeof where, "%s%s%s", mstate, stand_in ? "; in place of " : "",
			 stand_in ? base : "");
		cn_rt_info in;
		bool local = strcmp(member, w->self) == 0 && cn_rt_get(w->rt, name, x, &in) == 0;
		/* Elsewhere: what the host reports in its metadata (key 12).
		 * The host numbers replicas from its own view; if that differs
		 * from ours, any report of this job from that host stands in. */
		const cn_workload_report *rep = NULL;
		for (unsigned i = 0; !local && known && i < m.meta.n_workloads; i++) {
			const cn_workload_report *e = &m.meta.workloads[i];
			if (e->job_hash == hash && (rep == NULL || e->replica == x))
				rep = e;
		}
		const char *source = local ? "local" : rep != NULL ? "gossip" : "none";
		if (json) {
			cn_json_obj_begin(&j);
			cn_json_kv_u64(&j, "replica", x);
			cn_json_kv_str(&j, "member", member);
			cn_json_kv_str(&j, "member_state", mstate);
			cn_json_kv_str(&j, "source", source);
			if (stand_in)
				cn_json_kv_str(&j, "stand_in_for", base);
			if (local) {
				cn_json_kv_str(&j, "state", cn_rt_state_name(in.state));
				cn_json_kv_u64(&j, "pid", (uint64_t)(in.pid > 0 ? in.pid : 0));
				cn_json_kv_u64(&j, "restarts", in.restarts);
				cn_json_kv_u64(&j, "running_version", in.version);
			} else if (rep != NULL) {
				cn_json_kv_str(&j, "state", cn_rt_state_name(rep->state));
				cn_json_kv_u64(&j, "restarts", rep->restarts);
				cn_json_kv_u64(&j, "running_version", rep->version);
				if (rep->replica != x)
					cn_json_kv_u64(&j, "host_replica", rep->replica);
			}
			cn_json_obj_end(&j);
		} else if (local) {
			cn_buf_printf(&a->reply, "  replica %u on %s (%s): %s, pid %d, restarts %u, version %llu\n",
				      x, member, where, cn_rt_state_name(in.state), (int)in.pid,
				      in.restarts, (unsigned long long)in.version);
		} else if (rep != NULL) {
			cn_buf_printf(&a->reply, "  replica %u on %s (%s): %s, restarts %u, version %llu (reported)\n",
				      x, member, where, cn_rt_state_name(rep->state), rep->restarts,
				      (unsigned long long)rep->version);
		} else {
			cn_buf_printf(&a->reply, "  replica %u on %s (%s): no report yet\n", x, member,
				      where);
		}
	}
	if (json) {
		cn_json_arr_end(&j);
		cn_json_obj_end(&j);
	}
	return 0;
}

/* rollout-status NAME: the rollout of NAME's current version as this
 * agent knows it (its merge of every member's report). */
static int cmd_rollout_status(cn_workloads *w, cn_agent *a, const char *name, bool json)
{
	const cn_place_job_out *jo = w->have_res ? cn_place_result_job(&w->res, name) : NULL;
	const roll *r = roll_live(w, name);
	if (jo == NULL || r == NULL) {
		cn_buf_printf(&a->reply, "no job named '%s' (canopy jobs lists them)\n", name);
		return CN_ENOENT;
	}
	bool staged = r->prev != 0 && !r->baseline;
	uint32_t n = jo->n_placed;
	uint32_t stages = staged ? r->n_stages : (n > 0);
	uint32_t stage = !staged || r->st.done == CN_ROLLOUT_DONE_ALL ? stages
			 : r->st.done < stages ? r->st.done
			 : stages;
	cn_rollout_state st = r->st;
	if (!staged)
		st.done = CN_ROLLOUT_DONE_ALL;
	const char *state = cn_rollout_state_name(&st, stages, r->paused);
	cn_json j;
	if (json) {
		cn_json_init(&j, &a->reply);
		cn_json_obj_begin(&j);
		cn_json_kv_str(&j, "name", r->name);
		cn_json_kv_u64(&j, "version", r->st.version);
		cn_json_kv_u64(&j, "previous", staged ? r->prev : 0);
		cn_json_kv_u64(&j, "stage", stage);
		cn_json_kv_u64(&j, "stages", stages);
		cn_json_kv_str(&j, "state", state);
		cn_json_kv_u64(&j, "canary", r->canary);
		cn_json_kv_u64(&j, "max_parallel", r->max_parallel);
		cn_json_key(&j, "replicas");
		cn_json_arr_begin(&j);
	} else {
		cn_buf_printf(&a->reply, "rollout %s: version %llu", r->name,
			      (unsigned long long)r->st.version);
		if (staged)
			cn_buf_printf(&a->reply, " from %llu", (unsigned long long)r->prev);
		else
			cn_buf_puts(&a->reply, " (no earlier version to roll from: runs everywhere)");
		if (!strcmp(state, "in_progress"))
			cn_buf_printf(&a->reply, "\nstate: in progress (stage %u of %u)\n", stage + 1,
				      stages);
		else if (!strcmp(state, "paused"))
			cn_buf_printf(&a->reply, "\nstate: paused at stage %u of %u (a replica failed; "
						 "auto_revert is off)\n", stage + 1, stages);
		else
			cn_buf_printf(&a->reply, "\nstate: %s\n", state);
		cn_buf_printf(&a->reply, "canary %u, max_parallel %u, %u stage%s\n", r->canary,
			      r->max_parallel, stages, stages == 1 ? "" : "s");
		cn_buf_printf(&a->reply, "  %-8s %-24s %-6s %-20s %s\n", "REPLICA", "MEMBER", "STAGE",
			      "VERSION", "REPORT");
	}
	for (uint32_t x = 0; x < n; x++) {
		const char *member = w->res.members[w->res.slots[jo->first + x]].name;
		uint32_t xs = staged ? cn_rollout_stage(x, r->canary, r->max_parallel) : 0;
		uint64_t ver = roll_runs_new(r, x) ? r->st.version : r->prev;
		bool settled, failed;
		if (strcmp(member, w->self) == 0) {
			settled = r->settled_here;
			failed = r->failed_here;
		} else {
			const cn_rollout_report *rep = report_of(view_member(w, member), r);
			settled = rep != NULL && (rep->flags & CN_ROLLOUT_SETTLED);
			failed = rep != NULL && (rep->flags & CN_ROLLOUT_FAILED);
		}
		if (json) {
			cn_json_obj_begin(&j);
			cn_json_kv_u64(&j, "replica", x);
			cn_json_kv_str(&j, "member", member);
			cn_json_kv_u64(&j, "stage", xs);
			cn_json_kv_u64(&j, "version", ver);
			cn_json_kv_bool(&j, "settled", settled);
			cn_json_kv_bool(&j, "failed", failed);
			cn_json_obj_end(&j);
		} else {
			cn_buf_printf(&a->reply, "  %-8u %-24s %-6u %-20llu %s%s\n", x, member, xs,
				      (unsigned long long)ver, settled ? "settled" : "-",
				      failed ? " failed" : "");
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
	if (strcmp(req->cmd, "rollout-status") == 0) {
		char name[CN_JOB_NAME_MAX + 1];
		if (req->n_args != 1 || !arg_copy(req, 0, name, sizeof name))
			return CN_EINVAL;
		return cmd_rollout_status(w, a, name, json);
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
		{"rollout_steps", w->rollout_steps},
		{"rollout_reverts", w->rollout_reverts},
	};
	size_t n = sizeof all / sizeof all[0];
	if (n > cap)
		n = cap;
	memcpy(out, all, n * sizeof *out);
	return n;
}
