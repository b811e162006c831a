/* Placement probe: does every node, placing the scenario's jobs from its
 * own membership view with the agent's scheduling code (agent/sched.h),
 * run what it should, and do the instances across the fleet add up?
 *
 * Every `placement.every` each live node loads its view, places, and
 * "runs" the replicas cn_sched_wants gives it (the runtime's lag is not
 * modelled: a node runs exactly what its view says). The probe compares
 * that with reality: the placement over the live nodes a node can reach
 * (its partition group alive, every other live node failed, so a
 * majority_only job's quorum is judged as the agent judges it).
 *
 *   agreement  nodes whose whole placement equals their side's reality
 *   instances  replicas running, over the fleet
 *   expected   instances the sides' realities assign, together
 *   duplicates instances beyond what the fleet wants (replicas, or one per
 *              eligible live node for per_node jobs): both sides of a
 *              partition running a keep_running job count here
 *   orphans    instances on a node its side's reality does not assign
 *              that job (a stale view keeps it running)
 *   missing    replicas reality assigns whose node does not run them
 *
 * "Settled" is agreement on every live node, instances == expected, and
 * no orphan or missing replica. After each disturbance the probe records
 * how long until the instances are right (work_ms) and until every view
 * agrees as well (ms); during a partition it records, at the last sample
 * before the heal, how many sides ran every keep_running job in full.
 * placement.csv has one row per sample. */
#include <stdlib.h>
#include <string.h>

#include "agent/sched.h"
#include "metrics.h"
#include "util/buf.h"
#include "util/err.h"
#include "wire/mp.h"
#include "world.h"

enum { CSV_MAX = 32u << 20, DISTURB_MAX = 4096, GROUPS_MAX = 16, HEALS_MAX = 256 };

typedef struct disturb {
	uint64_t at_us;
	const char *kind;
	uint64_t work_us;     /* first sample with the right instances: none
			       * missing, no orphan, no excess; UINT64_MAX: not yet */
	uint64_t settled_us;  /* ... and every view agreeing; UINT64_MAX: not yet */
} disturb;

typedef struct heal_rec {
	uint64_t at_us;
	uint32_t groups, groups_full;
} heal_rec;

typedef struct placement {
	bool on;
	cn_placer *pl;
	cn_sched_jobs jobs;
	uint64_t next_us;
	/* per sample */
	cn_sched_view view;
	cn_place_result mine;
	cn_place_result real[GROUPS_MAX], all;
	uint16_t group_id[GROUPS_MAX];
	uint32_t n_groups;
	cn_member *selfs;          /* cap: each node's own record when last up */
	cn_place_member *in;       /* cap */
	uint8_t *runs;             /* cap * n_jobs: instances of job k on node i */
	uint8_t *runs_prev;        /* the same at the previous sample */
	cn_sched_hold *hold;       /* cap: each node's majority_only start hold */
	uint64_t hold_ms;
	uint32_t cap_nodes;
	cn_rt_want *wants;
	size_t wants_cap;
	/* figures */
	uint64_t samples, settled_samples;
	uint64_t max_dup, max_orphans, max_missing;
	uint64_t last_live, last_agree, last_inst, last_expected, last_dup, last_orph, last_miss;
	bool last_settled;
	uint64_t majority_overlap_max;  /* majority_only instances beyond want */
	uint64_t majority_overlap_last_us; /* last sample with any */
	uint64_t majority_overlap_samples;  /* samples with any */
	uint32_t part_groups, part_full; /* last partitioned sample */
	bool part_seen;
	disturb dist[DISTURB_MAX];
	uint32_t n_dist;
	heal_rec heals[HEALS_MAX];
	uint32_t n_heals;
	uint64_t place_errors;
	cn_buf csv;
} placement;

/* The job's spec as an operator would write it (command is required). */
static int add_job(cn_sched_jobs *j, const sim_jobcfg *jc)
{
	uint8_t buf[512];
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_mp_put_map(&w, 3 + (jc->spread[0] != '\0') + (jc->priority != 0));
	cn_mp_put_cstr(&w, "command");
	cn_mp_put_array(&w, 1);
	cn_mp_put_cstr(&w, "/bin/true");
	cn_mp_put_cstr(&w, jc->per_node ? "per_node" : "replicas");
	if (jc->per_node)
		cn_mp_put_bool(&w, true);
	else
		cn_mp_put_uint(&w, jc->replicas);
	cn_mp_put_cstr(&w, "partition");
	cn_mp_put_cstr(&w, jc->majority_only ? "majority_only" : "keep_running");
	if (jc->spread[0] != '\0') {
		cn_mp_put_cstr(&w, "spread");
		cn_mp_put_cstr(&w, jc->spread);
	}
	if (jc->priority != 0) {
		cn_mp_put_cstr(&w, "priority");
		cn_mp_put_uint(&w, jc->priority);
	}
	size_t len;
	if (cn_mp_writer_end(&w, &len) != 0)
		return CN_ENOSPACE;
	cn_jobspec_err err;
	return cn_sched_jobs_add(j, jc->name, 1, buf, len, true, &err);
}

static int p_init(sim_world *w, void **st)
{
	placement *p = calloc(1, sizeof *p);
	if (p == NULL)
		return -1;
	*st = p;
	const sim_placecfg *pc = &w->sc->placement;
	if (pc->every_us == 0)
		return 0;
	p->on = true;
	for (uint32_t k = 0; k < pc->n_jobs; k++) {
		int rc = add_job(&p->jobs, &pc->jobs[k]);
		if (rc != 0) {
			fprintf(stderr, "canopy-sim: %s: placement job '%s': %s\n", w->sc->file,
				pc->jobs[k].name, cn_strerror(rc));
			return -1;
		}
	}
	p->selfs = calloc(w->cap, sizeof *p->selfs);
	p->in = calloc(w->cap, sizeof *p->in);
	p->runs = calloc((size_t)w->cap * p->jobs.n, 1);
	p->runs_prev = calloc((size_t)w->cap * p->jobs.n, 1);
	p->hold = calloc(w->cap, sizeof *p->hold);
	p->cap_nodes = w->cap;
	/* as the agent: 5 probe periods (workloads.c) */
	p->hold_ms = 5 * (uint64_t)w->sc->node.probe_interval_ms;
	p->wants_cap = 256;
	p->wants = calloc(p->wants_cap, sizeof *p->wants);
	if (cn_placer_new(&p->pl) != 0 || p->selfs == NULL || p->in == NULL || p->runs == NULL ||
	    p->runs_prev == NULL || p->hold == NULL || p->wants == NULL)
		return -1;
	cn_buf_init(&p->csv, CSV_MAX);
	cn_buf_puts(&p->csv, "t_s,live,agree,instances,expected,duplicates,orphans,missing\n");
	p->dist[p->n_dist++] = (disturb){0, "start", UINT64_MAX, UINT64_MAX};
	return 0;
}

static void node_name(uint32_t i, char *out, size_t cap) { snprintf(out, cap, "n%u", i); }

static void p_fact(void *st, sim_world *w, const sim_fact *f)
{
	placement *p = st;
	if (!p->on)
		return;
	bool now = p->n_dist > 0 && p->dist[p->n_dist - 1].at_us == w->now_us;
	if (f->kind == FACT_ACTION) {
		if (f->heal && p->part_seen && p->n_heals < HEALS_MAX) {
			p->heals[p->n_heals++] = (heal_rec){w->now_us, p->part_groups, p->part_full};
			p->part_seen = false;
		}
		/* The action names the disturbance its facts (network rules,
		 * crashes) opened at this instant. */
		if (now && (f->heal || f->reality || !strcmp(p->dist[p->n_dist - 1].kind, "network")))
			p->dist[p->n_dist - 1].kind = f->heal ? "heal" : f->action;
		else if (!now && (f->heal || f->reality) && p->n_dist < DISTURB_MAX)
			p->dist[p->n_dist++] =
				(disturb){w->now_us, f->heal ? "heal" : f->action, UINT64_MAX, UINT64_MAX};
		return;
	}
	/* Facts at one instant, and the joins of the start's spread, are one
	 * disturbance. */
	if (now || w->now_us <= w->sc->start_spread_us || p->n_dist >= DISTURB_MAX)
		return;
	if (f->kind == FACT_NET || f->kind == FACT_DOWN || f->kind == FACT_LEAVE ||
	    f->kind == FACT_UP)
		p->dist[p->n_dist++] = (disturb){w->now_us,
						 f->kind == FACT_NET ? "network"
						 : f->kind == FACT_DOWN ? "crash"
						 : f->kind == FACT_LEAVE ? "leave"
									 : "up",
						 UINT64_MAX, UINT64_MAX};
}

/* Same jobs, same members in the same replica order, same quorum. */
static bool same_placement(const cn_place_result *a, const cn_place_result *b)
{
	if (a->n_jobs != b->n_jobs)
		return false;
	for (size_t k = 0; k < a->n_jobs; k++) {
		const cn_place_job_out *x = &a->jobs[k], *y = &b->jobs[k];
		if (strcmp(x->name, y->name) != 0 || x->n_placed != y->n_placed ||
		    x->quorum != y->quorum)
			return false;
		for (uint32_t r = 0; r < x->n_placed; r++)
			if (strcmp(a->members[a->slots[x->first + r]].name,
				   b->members[b->slots[y->first + r]].name) != 0)
				return false;
	}
	return true;
}

/* Does reality r run job k (canonical index) on member `name`? */
static bool assigns(const cn_place_result *r, size_t k, const char *name)
{
	const cn_place_job_out *jo = &r->jobs[k];
	if (jo->majority_only && !jo->quorum)
		return false;
	for (uint32_t x = 0; x < jo->n_placed; x++)
		if (strcmp(r->members[r->slots[jo->first + x]].name, name) == 0)
			return true;
	return false;
}

struct ran_ctx {
	const placement *p;
	uint32_t node;
};

/* Did node run job `job` at the previous sample? (the agent asks its
 * runtime; the probe's runtime is the previous sample) */
static bool ran_before(void *ctx, const char *job, uint32_t replica)
{
	(void)replica;
	const struct ran_ctx *c = ctx;
	const cn_place_job_out *jo = cn_place_result_job(&c->p->all, job);
	if (jo == NULL)
		return false;
	size_t k = (size_t)(jo - c->p->all.jobs);
	return c->p->runs_prev[(size_t)c->node * c->p->jobs.n + k] > 0;
}

static int group_slot(const placement *p, uint16_t g)
{
	for (uint32_t k = 0; k < p->n_groups; k++)
		if (p->group_id[k] == g)
			return (int)k;
	return -1;
}

/* Reality as seen from group g (g == UINT32_MAX: the whole live fleet).
 * It holds every node that was ever up, as the agents' views do until they
 * reap a member (dead_reap_ms, far beyond any scenario): placement keeps
 * failed and left members in its base and redirects their replicas, so a
 * reality without them would disagree with every correct view. A node is
 * up and on this side (alive), up on the other side or crashed (failed),
 * or leaving or gone (left); its record is the last one seen while up. */
static int place_reality(placement *p, sim_world *w, uint32_t g, cn_place_result *out)
{
	size_t n = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		const sim_node *sn = &w->nodes[i];
		if (sn->status == ST_UP)
			cn_node_self(sn->node, &p->selfs[i]);
		if (p->selfs[i].name[0] == '\0')
			continue; /* never up yet */
		uint8_t state = CN_STATE_DEAD;
		if (sn->status == ST_GONE || (sn->status == ST_UP && sn->leaving))
			state = CN_STATE_LEFT;
		else if (sn->status == ST_UP && (g == UINT32_MAX || sn->group == g))
			state = CN_STATE_ALIVE;
		p->in[n] = (cn_place_member){
			.name = p->selfs[i].name,
			.state = state,
			.meta = &p->selfs[i].meta,
		};
		p->in[n].has_coord = p->selfs[i].has_coord &&
				     cn_place_coord_quantize(&p->selfs[i].coord, &p->in[n].coord);
		n++;
	}
	cn_sched_view v = {.members = NULL, .in = p->in, .n = n};
	cn_place_result_free(out);
	return cn_sched_place(p->pl, &v, &p->jobs, out);
}

static void p_sample(void *st, sim_world *w)
{
	placement *p = st;
	if (!p->on || w->now_us < p->next_us)
		return;
	p->next_us = w->now_us + w->sc->placement.every_us;
	size_t nj = p->jobs.n;
	/* Reality: one placement per partition group among live nodes. */
	p->n_groups = 0;
	for (uint32_t i = 0; i < w->n_used; i++)
		if (sim_node_live(w, i) && group_slot(p, w->nodes[i].group) < 0 &&
		    p->n_groups < GROUPS_MAX)
			p->group_id[p->n_groups++] = w->nodes[i].group;
	for (uint32_t g = 0; g < p->n_groups; g++)
		if (place_reality(p, w, p->group_id[g], &p->real[g]) != 0) {
			p->place_errors++;
			return;
		}
	if (place_reality(p, w, UINT32_MAX, &p->all) != 0) {
		p->place_errors++;
		return;
	}
	/* Every live node places from its own view and runs its share. */
	memcpy(p->runs_prev, p->runs, (size_t)w->cap * nj);
	memset(p->runs, 0, (size_t)w->cap * nj);
	uint64_t live = 0, agree = 0, orphans = 0;
	uint64_t *inst = calloc(nj ? nj : 1, sizeof *inst);
	uint64_t *inst_group = calloc((nj ? nj : 1) * GROUPS_MAX, sizeof *inst_group);
	if (inst == NULL || inst_group == NULL) {
		free(inst);
		free(inst_group);
		p->place_errors++;
		return;
	}
	char name[32];
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (!sim_node_live(w, i))
			continue;
		live++;
		int gs = group_slot(p, w->nodes[i].group);
		const cn_place_result *real = gs >= 0 ? &p->real[gs] : &p->all;
		if (cn_sched_view_load(&p->view, w->nodes[i].node) != 0 ||
		    cn_sched_place(p->pl, &p->view, &p->jobs, &p->mine) != 0) {
			p->place_errors++;
			continue;
		}
		agree += same_placement(&p->mine, real);
		node_name(i, name, sizeof name);
		bool fenced = cn_sched_fenced(cn_node_health_score(w->nodes[i].node),
					      cn_node_last_probe_ok(w->nodes[i].node));
		size_t nw = cn_sched_wants(&p->mine, &p->jobs, name, fenced, p->wants, p->wants_cap);
		if (nw > p->wants_cap) {
			p->place_errors++; /* more than wants_cap replicas on one node */
			nw = p->wants_cap;
		}
		struct ran_ctx rc = {p, i};
		nw = cn_sched_hold_filter(&p->hold[i], p->wants, nw, w->now_us / 1000, p->hold_ms,
					  ran_before, &rc);
		for (size_t x = 0; x < nw; x++) {
			const cn_place_job_out *jo = cn_place_result_job(real, p->wants[x].job);
			if (jo == NULL)
				continue;
			size_t k = (size_t)(jo - real->jobs);
			p->runs[(size_t)i * nj + k]++;
			inst[k]++;
			if (gs >= 0)
				inst_group[(size_t)gs * nj + k]++;
			orphans += !assigns(real, k, name);
		}
		cn_place_result_free(&p->mine);
	}
	/* Missing: assigned by a side's reality, not run by that node. */
	uint64_t missing = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (!sim_node_live(w, i))
			continue;
		int gs = group_slot(p, w->nodes[i].group);
		const cn_place_result *real = gs >= 0 ? &p->real[gs] : &p->all;
		node_name(i, name, sizeof name);
		for (size_t k = 0; k < nj && k < real->n_jobs; k++)
			missing += assigns(real, k, name) && p->runs[(size_t)i * nj + k] == 0;
	}
	/* What the sides' realities assign, together. */
	uint64_t expected = 0;
	for (uint32_t g = 0; g < p->n_groups; g++)
		for (size_t k = 0; k < p->real[g].n_jobs; k++) {
			const cn_place_job_out *jo = &p->real[g].jobs[k];
			expected += jo->majority_only && !jo->quorum ? 0 : jo->n_placed;
		}
	/* Duplicates against what the whole fleet wants. */
	uint64_t dup = 0;
	for (size_t k = 0; k < nj && k < p->all.n_jobs; k++) {
		const cn_place_job_out *jo = &p->all.jobs[k];
		uint64_t want = jo->per_node ? jo->n_placed : jo->want;
		if (inst[k] > want) {
			dup += inst[k] - want;
			if (jo->majority_only && inst[k] - want > p->majority_overlap_max)
				p->majority_overlap_max = inst[k] - want;
			if (jo->majority_only)
				p->majority_overlap_last_us = w->now_us;
		}
	}
	bool overlap = false;
	for (size_t k = 0; k < nj && k < p->all.n_jobs; k++)
		overlap = overlap || (p->all.jobs[k].majority_only && inst[k] > p->all.jobs[k].want);
	p->majority_overlap_samples += overlap;
	/* A partition: does each side run every keep_running job in full? */
	if (p->n_groups > 1) {
		uint32_t full = 0;
		for (uint32_t g = 0; g < p->n_groups; g++) {
			bool ok = true;
			for (size_t k = 0; k < nj && k < p->real[g].n_jobs; k++) {
				const cn_place_job_out *jo = &p->real[g].jobs[k];
				if (!jo->majority_only && inst_group[(size_t)g * nj + k] < jo->n_placed)
					ok = false;
			}
			full += ok;
		}
		p->part_seen = true;
		p->part_groups = p->n_groups;
		p->part_full = full;
	}
	free(inst);
	free(inst_group);

	uint64_t total = 0;
	for (uint32_t i = 0; i < w->n_used; i++)
		for (size_t k = 0; k < nj; k++)
			total += p->runs[(size_t)i * nj + k];
	bool work = total == expected && orphans == 0 && missing == 0;
	bool settled = work && agree == live;
	p->samples++;
	p->settled_samples += settled;
	p->max_dup = dup > p->max_dup ? dup : p->max_dup;
	p->max_orphans = orphans > p->max_orphans ? orphans : p->max_orphans;
	p->max_missing = missing > p->max_missing ? missing : p->max_missing;
	p->last_live = live, p->last_agree = agree, p->last_inst = total, p->last_expected = expected;
	p->last_dup = dup, p->last_orph = orphans, p->last_miss = missing;
	p->last_settled = settled;
	disturb *d = p->n_dist > 0 ? &p->dist[p->n_dist - 1] : NULL;
	if (work && d != NULL && d->work_us == UINT64_MAX)
		d->work_us = w->now_us;
	if (settled && d != NULL && d->settled_us == UINT64_MAX)
		d->settled_us = w->now_us;
	cn_buf_printf(&p->csv, "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", (double)w->now_us / 1e6,
		      (unsigned long long)live, (unsigned long long)agree,
		      (unsigned long long)total, (unsigned long long)expected, (unsigned long long)dup,
		      (unsigned long long)orphans, (unsigned long long)missing);
}

/* key: ms from at_us to when_us, or null when it never came. */
static void kv_ms_after(cn_json *j, const char *key, uint64_t at_us, uint64_t when_us)
{
	cn_json_key(j, key);
	if (when_us == UINT64_MAX)
		cn_json_null(j);
	else
		cn_json_u64(j, (when_us - at_us) / 1000);
}

static void p_summary(void *st, sim_world *w, cn_json *j)
{
	(void)w;
	placement *p = st;
	cn_json_key(j, "placement");
	cn_json_obj_begin(j);
	cn_json_kv_bool(j, "enabled", p->on);
	cn_json_kv_u64(j, "jobs", p->jobs.n);
	cn_json_kv_u64(j, "samples", p->samples);
	cn_json_kv_u64(j, "settled_samples", p->settled_samples);
	cn_json_kv_u64(j, "errors", p->place_errors);
	cn_json_key(j, "final");
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "live", p->last_live);
	cn_json_kv_u64(j, "agreement", p->last_agree);
	cn_json_kv_u64(j, "instances", p->last_inst);
	cn_json_kv_u64(j, "expected", p->last_expected);
	cn_json_kv_u64(j, "duplicates", p->last_dup);
	cn_json_kv_u64(j, "orphans", p->last_orph);
	cn_json_kv_u64(j, "missing", p->last_miss);
	cn_json_kv_bool(j, "settled", p->last_settled);
	cn_json_obj_end(j);
	cn_json_kv_u64(j, "duplicates_max", p->max_dup);
	cn_json_kv_u64(j, "orphans_max", p->max_orphans);
	cn_json_kv_u64(j, "missing_max", p->max_missing);
	cn_json_kv_u64(j, "majority_only_overlap_max", p->majority_overlap_max);
	cn_json_kv_u64(j, "majority_only_overlap_last_ms", p->majority_overlap_last_us / 1000);
	cn_json_kv_u64(j, "majority_only_overlap_samples", p->majority_overlap_samples);
	cn_json_key(j, "settle_ms");
	cn_json_arr_begin(j);
	for (uint32_t d = 0; d < p->n_dist; d++) {
		cn_json_obj_begin(j);
		cn_json_kv_u64(j, "at_ms", p->dist[d].at_us / 1000);
		cn_json_kv_str(j, "kind", p->dist[d].kind);
		kv_ms_after(j, "work_ms", p->dist[d].at_us, p->dist[d].work_us);
		kv_ms_after(j, "ms", p->dist[d].at_us, p->dist[d].settled_us);
		cn_json_obj_end(j);
	}
	cn_json_arr_end(j);
	cn_json_key(j, "partitions");
	cn_json_arr_begin(j);
	for (uint32_t h = 0; h < p->n_heals; h++) {
		cn_json_obj_begin(j);
		cn_json_kv_u64(j, "heal_ms", p->heals[h].at_us / 1000);
		cn_json_kv_u64(j, "sides", p->heals[h].groups);
		cn_json_kv_u64(j, "sides_running_all", p->heals[h].groups_full);
		cn_json_obj_end(j);
	}
	cn_json_arr_end(j);
	cn_json_obj_end(j);
}

static int p_expect(void *st, sim_world *w, const sim_expect *e)
{
	placement *p = st;
	int bad = 0;
	if (e->has_placement_settled && (p->on && p->last_settled) != e->placement_settled) {
		fprintf(stderr,
			"expect: placement_settled %s, got agreement %llu/%llu live, instances %llu, "
			"duplicates %llu, orphans %llu, missing %llu (seed %llu)\n",
			e->placement_settled ? "true" : "false", (unsigned long long)p->last_agree,
			(unsigned long long)p->last_live, (unsigned long long)p->last_inst,
			(unsigned long long)p->last_dup, (unsigned long long)p->last_orph,
			(unsigned long long)p->last_miss, (unsigned long long)w->seed);
		bad++;
	}
	if (e->has_partition_sides_run) {
		bool all = p->n_heals > 0;
		for (uint32_t h = 0; h < p->n_heals; h++)
			all = all && p->heals[h].groups_full == p->heals[h].groups;
		if (all != e->partition_sides_run) {
			fprintf(stderr, "expect: partition_sides_run %s, got %s over %u heal(s) (seed %llu)\n",
				e->partition_sides_run ? "true" : "false", all ? "true" : "false",
				p->n_heals, (unsigned long long)w->seed);
			bad++;
		}
	}
	return bad;
}

static int p_write(void *st, sim_world *w, const char *dir)
{
	(void)w;
	placement *p = st;
	if (!p->on)
		return 0;
	FILE *f = sim_open_csv(dir, "placement.csv");
	if (f == NULL)
		return -1;
	fwrite(p->csv.data, 1, p->csv.len, f);
	return fclose(f) == 0 ? 0 : -1;
}

static void p_free(void *st)
{
	placement *p = st;
	if (p == NULL)
		return;
	cn_placer_free(p->pl);
	cn_sched_jobs_free(&p->jobs);
	cn_sched_view_free(&p->view);
	cn_place_result_free(&p->mine);
	for (uint32_t g = 0; g < GROUPS_MAX; g++)
		cn_place_result_free(&p->real[g]);
	cn_place_result_free(&p->all);
	free(p->selfs);
	free(p->in);
	free(p->runs);
	free(p->runs_prev);
	for (uint32_t i = 0; p->hold != NULL && i < p->cap_nodes; i++)
		cn_sched_hold_free(&p->hold[i]);
	free(p->hold);
	free(p->wants);
	cn_buf_free(&p->csv);
	free(p);
}

const sim_probe_ops sim_probe_placement = {
	.name = "placement",
	.init = p_init,
	.on_fact = p_fact,
	.on_sample = p_sample,
	.summary = p_summary,
	.expect = p_expect,
	.write_files = p_write,
	.free = p_free,
};
