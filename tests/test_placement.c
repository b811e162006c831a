/* Unit tests for core/placement: eligibility (every constraint kind, region
 * never violated, capacity), identical output for permutations of the
 * inputs, the prefilter changing nothing, balance, movement on join and
 * leave, spread, per_node, near and energy preferences, majority counts,
 * plan diffs and a golden hash of one placement (determinism across runs
 * and platforms). Synthetic fleets; no I/O. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/placement.h"
#include "util/err.h"
#include "util/rng.h"

#define GOLDEN 0x75e89302f6c223a4ULL

/* ---- fleet and job builders ---------------------------------------------- */

typedef struct fleet {
	size_t n;
	cn_place_member *m;
	cn_meta *meta;
	char (*names)[CN_NAME_MAX + 1];
} fleet;

static void fleet_init(fleet *f, size_t n)
{
	f->n = n;
	f->m = calloc(n, sizeof *f->m);
	f->meta = calloc(n, sizeof *f->meta);
	f->names = calloc(n, sizeof *f->names);
	for (size_t i = 0; i < n; i++) {
		snprintf(f->names[i], sizeof f->names[i], "node-%05zu", i);
		f->m[i].name = f->names[i];
		f->m[i].state = CN_STATE_ALIVE;
		f->m[i].meta = &f->meta[i];
		snprintf(f->meta[i].arch, sizeof f->meta[i].arch, "arm64");
		snprintf(f->meta[i].os, sizeof f->meta[i].os, "linux");
		f->meta[i].cpus = 4;
		f->meta[i].mem_mb = 4096;
		f->meta[i].power = CN_POWER_MAINS;
	}
}

static void fleet_free(fleet *f)
{
	free(f->m);
	free(f->meta);
	free(f->names);
}

static void label(fleet *f, size_t i, const char *k, const char *v)
{
	ck_assert_int_eq(cn_meta_set_label(&f->meta[i], k, v), 0);
}

static cn_jstr put(cn_jobspec *s, const char *t)
{
	size_t n = strlen(t);
	ck_assert_uint_lt(s->text_len + n + 1, sizeof s->text);
	cn_jstr r = {s->text_len, (uint16_t)n};
	memcpy(s->text + s->text_len, t, n + 1);
	s->text_len = (uint16_t)(s->text_len + n + 1);
	return r;
}

static void spec_init(cn_jobspec *s, uint32_t replicas)
{
	memset(s, 0, sizeof *s);
	s->text_len = 1;
	s->priority = 50;
	s->replicas = replicas;
	s->n_command = 1;
	s->command[0] = put(s, "/bin/x");
	s->backoff_min_ms = 1000;
	s->backoff_max_ms = 60000;
	s->update_max_parallel = 1;
}

static void constrain(cn_jobspec *s, uint8_t op, const char *key, const char *v1, const char *v2)
{
	cn_job_constraint *c = &s->constraints[s->n_constraints++];
	c->op = op;
	c->label = put(s, key);
	if (v1)
		c->values[c->n_values++] = put(s, v1);
	if (v2)
		c->values[c->n_values++] = put(s, v2);
}

typedef struct jobset {
	size_t n;
	cn_place_job *j;
	cn_jobspec *spec;
	char (*names)[32];
} jobset;

static void jobs_init(jobset *js, size_t n, uint32_t replicas)
{
	js->n = n;
	js->j = calloc(n, sizeof *js->j);
	js->spec = calloc(n, sizeof *js->spec);
	js->names = calloc(n, sizeof *js->names);
	for (size_t i = 0; i < n; i++) {
		snprintf(js->names[i], sizeof js->names[i], "job-%05zu", i);
		spec_init(&js->spec[i], replicas);
		js->j[i].name = js->names[i];
		js->j[i].version = i;
		js->j[i].spec = &js->spec[i];
	}
}

static void jobs_free(jobset *js)
{
	free(js->j);
	free(js->spec);
	free(js->names);
}

static cn_placer *placer;

static void place(const fleet *f, const jobset *js, const cn_place_opts *o, cn_place_result *r)
{
	ck_assert_int_eq(cn_place(placer, f->m, f->n, js->j, js->n, o, r), 0);
}

static const char *member_of(const cn_place_result *r, const cn_place_job_out *j, uint32_t k)
{
	return r->members[r->slots[j->first + k]].name;
}

/* FNV-1a over every job name and the member names of its replicas in order. */
static uint64_t result_hash(const cn_place_result *r)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t q = 0; q < r->n_jobs; q++) {
		const cn_place_job_out *j = &r->jobs[q];
		for (const char *p = j->name; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		for (uint32_t k = 0; k < j->n_placed; k++)
			for (const char *p = member_of(r, j, k); *p; p++)
				h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h = (h ^ '|') * 0x100000001b3ULL;
	}
	return h;
}

static size_t fleet_index(const fleet *f, const char *name)
{
	return (size_t)strtoul(name + 5, NULL, 10) + 0 * f->n;
}

/* A mixed fleet: zones, regions, sites, capacities, GPUs, power sources. */
static void mixed_fleet(fleet *f, size_t n, uint64_t seed)
{
	cn_rng rng;
	cn_rng_seed(&rng, seed);
	fleet_init(f, n);
	static const char *zones[] = {"z1", "z2", "z3", "z4"};
	static const char *regions[] = {"eu", "eu", "us", "ap"};
	for (size_t i = 0; i < n; i++) {
		char site[16];
		snprintf(site, sizeof site, "site-%u", (unsigned)cn_rng_below(&rng, 20));
		label(f, i, "zone", zones[cn_rng_below(&rng, 4)]);
		label(f, i, "region", regions[cn_rng_below(&rng, 4)]);
		label(f, i, "site", site);
		f->meta[i].cpus = 2u << cn_rng_below(&rng, 3);
		f->meta[i].mem_mb = 2048u << cn_rng_below(&rng, 3);
		if (cn_rng_below(&rng, 4) == 0) {
			f->meta[i].n_accel = 1;
			snprintf(f->meta[i].accel[0].kind, sizeof f->meta[i].accel[0].kind, "gpu");
			f->meta[i].accel[0].count = 1 + (uint32_t)cn_rng_below(&rng, 2);
		}
		if (cn_rng_below(&rng, 2))
			snprintf(f->meta[i].arch, sizeof f->meta[i].arch, "x86_64");
		f->meta[i].power = (uint8_t)cn_rng_below(&rng, 3);
		f->m[i].has_coord = true;
		for (int d = 0; d < CN_COORD_DIM; d++)
			f->m[i].coord.vec[d] = (int32_t)cn_rng_below(&rng, 20) - 10;
		f->m[i].coord.height = 1;
	}
}

/* A mix of jobs using every feature. */
static void mixed_jobs(jobset *js, size_t n, uint64_t seed)
{
	cn_rng rng;
	cn_rng_seed(&rng, seed);
	jobs_init(js, n, 3);
	for (size_t i = 0; i < n; i++) {
		cn_jobspec *s = &js->spec[i];
		s->replicas = 1 + (uint32_t)cn_rng_below(&rng, 6);
		s->priority = (uint16_t)(cn_rng_below(&rng, 3) * 100);
		s->cpu_millis = 250;
		s->memory_mb = 256;
		switch (cn_rng_below(&rng, 8)) {
		case 0: constrain(s, CN_JOB_OP_EQ, "region", "eu", NULL); break;
		case 1: constrain(s, CN_JOB_OP_IN, "arch", "x86_64", NULL); break;
		case 2: constrain(s, CN_JOB_OP_ACCEL, "gpu", NULL, NULL); break;
		case 3: constrain(s, CN_JOB_OP_NOT_IN, "zone", "z1", "z2"); break;
		default: break;
		}
		if (cn_rng_below(&rng, 4) == 0)
			s->spread = put(s, "zone");
		if (cn_rng_below(&rng, 5) == 0) {
			s->has_near = true;
			s->near_label = put(s, "site");
			s->near_value = put(s, "site-3");
		}
		s->energy = (uint8_t)cn_rng_below(&rng, 3);
		if (cn_rng_below(&rng, 20) == 0) {
			s->per_node = true; /* a light daemon: it runs on every member */
			s->replicas = 0;
			s->cpu_millis = 20;
			s->memory_mb = 16;
		}
	}
}

/* ---- tests ----------------------------------------------------------------------- */

START_TEST(eligibility_each_constraint)
{
	fleet f;
	fleet_init(&f, 12);
	/* 0..3 arm64 eu, 4..7 x86_64 us, 8..11 riscv64 eu */
	for (size_t i = 0; i < 12; i++) {
		snprintf(f.meta[i].arch, sizeof f.meta[i].arch, "%s",
			 i < 4 ? "arm64" : i < 8 ? "x86_64" : "riscv64");
		label(&f, i, "region", i >= 4 && i < 8 ? "us" : "eu");
		label(&f, i, "zone", i % 2 ? "odd" : "even");
	}
	snprintf(f.meta[9].os, sizeof f.meta[9].os, "freebsd");
	f.meta[2].n_accel = 1;
	snprintf(f.meta[2].accel[0].kind, sizeof f.meta[2].accel[0].kind, "gpu");
	f.meta[2].accel[0].count = 1;
	f.meta[6].n_accel = 1;
	snprintf(f.meta[6].accel[0].kind, sizeof f.meta[6].accel[0].kind, "gpu");
	f.meta[6].accel[0].count = 2;
	f.meta[10].cpus = 1;
	f.meta[11].mem_mb = 128;
	struct {
		uint8_t op;
		const char *key, *v1, *v2;
		uint32_t want_eligible;
	} cases[] = {
		{CN_JOB_OP_EQ, "arch", "arm64", NULL, 4},
		{CN_JOB_OP_NE, "arch", "arm64", NULL, 8},
		{CN_JOB_OP_IN, "arch", "arm64", "riscv64", 8},
		{CN_JOB_OP_NOT_IN, "arch", "arm64", "riscv64", 4},
		{CN_JOB_OP_EQ, "os", "freebsd", NULL, 1},
		{CN_JOB_OP_EQ, "region", "eu", NULL, 8},
		{CN_JOB_OP_NE, "missing", "x", NULL, 12},   /* absent label: != holds */
		{CN_JOB_OP_EQ, "missing", "x", NULL, 0},
		{CN_JOB_OP_NOT_IN, "missing", "x", NULL, 12},
		{CN_JOB_OP_ACCEL, "gpu", NULL, NULL, 2},
		{CN_JOB_OP_ACCEL, "npu", NULL, NULL, 0},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		jobset js;
		jobs_init(&js, 1, 12);
		constrain(&js.spec[0], cases[c].op, cases[c].key, cases[c].v1, cases[c].v2);
		cn_place_result r;
		place(&f, &js, NULL, &r);
		ck_assert_msg(r.jobs[0].n_eligible == cases[c].want_eligible, "case %zu: %u", c,
			      r.jobs[0].n_eligible);
		ck_assert_uint_eq(r.jobs[0].n_placed, cases[c].want_eligible);
		for (uint32_t k = 0; k < r.jobs[0].n_placed; k++) {
			const cn_meta *m = &f.meta[fleet_index(&f, member_of(&r, &r.jobs[0], k))];
			if (strcmp(cases[c].key, "arch") == 0 && cases[c].op == CN_JOB_OP_EQ)
				ck_assert_str_eq(m->arch, cases[c].v1);
		}
		cn_place_result_free(&r);
		jobs_free(&js);
	}
	/* capacity: 2 cores and 1 GiB exclude node 10 (1 core) and 11 (128 MB) */
	jobset js;
	jobs_init(&js, 1, 12);
	js.spec[0].cpu_millis = 2000;
	js.spec[0].memory_mb = 1024;
	cn_place_result r;
	place(&f, &js, NULL, &r);
	ck_assert_uint_eq(r.jobs[0].n_eligible, 10);
	for (uint32_t k = 0; k < r.jobs[0].n_placed; k++) {
		ck_assert_str_ne(member_of(&r, &r.jobs[0], k), "node-00010");
		ck_assert_str_ne(member_of(&r, &r.jobs[0], k), "node-00011");
	}
	cn_place_result_free(&r);
	/* accelerator count: gpu: 2 only fits node 6 */
	spec_init(&js.spec[0], 3);
	js.spec[0].n_accel = 1;
	js.spec[0].accel[0].kind = put(&js.spec[0], "gpu");
	js.spec[0].accel[0].count = 2;
	place(&f, &js, NULL, &r);
	ck_assert_uint_eq(r.jobs[0].n_placed, 1);
	ck_assert_str_eq(member_of(&r, &r.jobs[0], 0), "node-00006");
	cn_place_result_free(&r);
	/* states: dead and left are never used; suspect is, unless told */
	spec_init(&js.spec[0], 12);
	f.m[0].state = CN_STATE_DEAD;
	f.m[1].state = CN_STATE_LEFT;
	f.m[2].state = CN_STATE_SUSPECT;
	place(&f, &js, NULL, &r);
	ck_assert_uint_eq(r.jobs[0].n_placed, 10);
	ck_assert_uint_eq(r.jobs[0].n_eligible_known, 11);
	cn_place_result_free(&r);
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.suspect_is_alive = false;
	place(&f, &js, &o, &r);
	ck_assert_uint_eq(r.jobs[0].n_placed, 9);
	for (uint32_t k = 0; k < 9; k++) {
		const char *m = member_of(&r, &r.jobs[0], k);
		ck_assert(strcmp(m, "node-00000") && strcmp(m, "node-00001") && strcmp(m, "node-00002"));
	}
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

START_TEST(region_never_violated)
{
	/* 100 members, 10 in eu. Heavy eu-only demand: bounded loads would
	 * like to spill, but only ever within eu (overflow above caps). */
	fleet f;
	fleet_init(&f, 100);
	for (size_t i = 0; i < 100; i++)
		label(&f, i, "region", i % 10 == 0 ? "eu" : "us");
	jobset js;
	jobs_init(&js, 200, 5);
	for (size_t q = 0; q < 200; q++)
		if (q % 2 == 0)
			constrain(&js.spec[q], CN_JOB_OP_EQ, "region", "eu", NULL);
	js.spec[0].replicas = 50; /* more than eu has */
	cn_place_result r;
	place(&f, &js, NULL, &r);
	uint64_t eu_replicas = 0;
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		bool eu = strtoul(j->name + 4, NULL, 10) % 2 == 0;
		if (!eu)
			continue;
		ck_assert_uint_eq(j->n_eligible, 10);
		ck_assert_uint_le(j->n_placed, 10);
		for (uint32_t k = 0; k < j->n_placed; k++) {
			size_t i = fleet_index(&f, member_of(&r, j, k));
			ck_assert_str_eq(cn_meta_get_label(&f.meta[i], "region"), "eu");
			eu_replicas++;
		}
	}
	ck_assert_uint_eq(eu_replicas, 99 * 5 + 10);
	ck_assert_uint_gt(r.overflow, 0); /* eu members are over their caps */
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

static void shuffle_and_compare(uint64_t seed)
{
	fleet f;
	jobset js;
	mixed_fleet(&f, 300, seed);
	mixed_jobs(&js, 200, seed + 1);
	f.m[5].state = CN_STATE_DEAD;
	f.m[6].state = CN_STATE_SUSPECT;
	cn_place_result r0;
	place(&f, &js, NULL, &r0);
	uint64_t h0 = result_hash(&r0);
	cn_rng rng;
	cn_rng_seed(&rng, seed * 77);
	for (int round = 0; round < 4; round++) {
		cn_rng_shuffle(&rng, f.m, f.n, sizeof f.m[0]);
		cn_rng_shuffle(&rng, js.j, js.n, sizeof js.j[0]);
		cn_place_result r;
		place(&f, &js, NULL, &r);
		ck_assert_uint_eq(result_hash(&r), h0);
		ck_assert_uint_eq(r.n_slots, r0.n_slots);
		ck_assert_mem_eq(r.slots, r0.slots, r.n_slots * sizeof *r.slots);
		cn_place_result_free(&r);
	}
	/* the prefilter never changes a decision */
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.exhaustive = true;
	cn_place_result rx;
	place(&f, &js, &o, &rx);
	ck_assert_uint_eq(result_hash(&rx), h0);
	ck_assert_uint_gt(rx.scored, r0.scored);
	cn_place_result_free(&rx);
	o.load_factor_milli = 0;
	place(&f, &js, &o, &rx);
	o.exhaustive = false;
	cn_place_result ry;
	place(&f, &js, &o, &ry);
	ck_assert_uint_eq(result_hash(&rx), result_hash(&ry));
	cn_place_result_free(&rx);
	cn_place_result_free(&ry);
	cn_place_result_free(&r0);
	jobs_free(&js);
	fleet_free(&f);
}

START_TEST(permutations_give_identical_output)
{
	for (uint64_t seed = 1; seed <= 5; seed++)
		shuffle_and_compare(seed);
}
END_TEST

START_TEST(errors)
{
	fleet f;
	fleet_init(&f, 3);
	jobset js;
	jobs_init(&js, 2, 1);
	cn_place_result r;
	f.m[2].name = f.m[0].name;
	ck_assert_int_eq(cn_place(placer, f.m, f.n, js.j, js.n, NULL, &r), CN_EEXIST);
	f.m[2].name = "";
	ck_assert_int_eq(cn_place(placer, f.m, f.n, js.j, js.n, NULL, &r), CN_EINVAL);
	f.m[2].name = f.names[2];
	js.j[1].name = js.j[0].name;
	js.spec[1].priority = 7; /* not adjacent after the canonical sort */
	ck_assert_int_eq(cn_place(placer, f.m, f.n, js.j, js.n, NULL, &r), CN_EEXIST);
	js.j[1].name = js.names[1];
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.load_factor_milli = 999;
	ck_assert_int_eq(cn_place(placer, f.m, f.n, js.j, js.n, &o, &r), CN_EINVAL);
	ck_assert_int_eq(cn_place(placer, f.m, f.n, js.j, js.n, NULL, &r), 0);
	cn_place_result_free(&r);
	/* empty inputs */
	ck_assert_int_eq(cn_place(placer, NULL, 0, NULL, 0, NULL, &r), 0);
	ck_assert_uint_eq(r.n_jobs, 0);
	cn_place_result_free(&r);
	ck_assert_int_eq(cn_place(placer, NULL, 0, js.j, js.n, NULL, &r), 0);
	ck_assert_uint_eq(r.jobs[0].n_placed, 0);
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

/* max over members of load / expected, expected = total * weight share */
static double max_over_mean(const cn_place_result *r)
{
	double worst = 0;
	for (size_t i = 0; i < r->n_members; i++) {
		const cn_place_member_out *m = &r->members[i];
		if (m->weight == 0)
			continue;
		double e = (double)r->total_load * m->weight / (double)r->total_weight;
		double x = m->load / e;
		worst = x > worst ? x : worst;
	}
	return worst;
}

START_TEST(balance)
{
	fleet f;
	fleet_init(&f, 1000);
	jobset js;
	jobs_init(&js, 1000, 10);
	cn_place_result r;
	place(&f, &js, NULL, &r);
	double bounded = max_over_mean(&r);
	ck_assert_uint_eq(r.total_load, 10000);
	cn_place_result_free(&r);
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.load_factor_milli = 0;
	place(&f, &js, &o, &r);
	double free_ = max_over_mean(&r);
	cn_place_result_free(&r);
	printf("balance: 1000 members x 10 replicas avg: max/mean %.3f bounded, %.3f unbounded\n",
	       bounded, free_);
	ck_assert(bounded <= 1.10 + 1e-9);
	ck_assert(free_ > bounded);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

static uint64_t moved(const cn_place_result *a, const cn_place_result *b)
{
	cn_place_diff_stats st;
	ck_assert_int_eq(cn_place_diff(a, b, NULL, NULL, &st), 0);
	ck_assert_uint_eq(st.jobs_added + st.jobs_removed, 0);
	return st.started;
}

static void movement(uint32_t load_factor_milli, bool live_base, double bound)
{
	fleet f;
	mixed_fleet(&f, 1000, 42);
	jobset js;
	jobs_init(&js, 2000, 5);
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.load_factor_milli = load_factor_milli;
	o.live_base = live_base;
	cn_place_result before, after;
	place(&f, &js, &o, &before);
	double worst_leave = 0, worst_join = 0;
	for (int t = 0; t < 5; t++) {
		size_t gone = (size_t)t * 197 + 3;
		uint32_t held = before.members[gone].load;
		f.m[gone].state = CN_STATE_LEFT;
		place(&f, &js, &o, &after);
		uint64_t mv = moved(&before, &after);
		/* ideal: exactly the replicas the member held */
		double ratio = (double)mv / (held ? held : 1);
		worst_leave = ratio > worst_leave ? ratio : worst_leave;
		/* and back: a join moves about its new share */
		f.m[gone].state = CN_STATE_ALIVE;
		uint64_t mv2 = moved(&after, &before);
		double ratio2 = (double)mv2 / (held ? held : 1);
		worst_join = ratio2 > worst_join ? ratio2 : worst_join;
		cn_place_result_free(&after);
	}
	printf("movement (c=%.2f%s): worst moved/ideal %.2f on leave, %.2f on join\n",
	       load_factor_milli / 1000.0, live_base ? ", live base" : "", worst_leave, worst_join);
	ck_assert(worst_leave <= bound);
	ck_assert(worst_join <= bound);
	cn_place_result_free(&before);
	jobs_free(&js);
	fleet_free(&f);
}

START_TEST(movement_on_leave_and_join)
{
	movement(0, false, 1.0 + 1e-9); /* plain HRW: exactly the leaver's share */
	/* bounded loads with the stable base: a leave and the return move
	 * exactly the member's own replicas */
	movement(CN_PLACE_LOAD_FACTOR_DEFAULT, false, 1.0 + 1e-9);
	/* the old rule (base = live members): the matching reorders */
	movement(CN_PLACE_LOAD_FACTOR_DEFAULT, true, 2.0);
}
END_TEST

/* A member that is down (failed, left, or a suspect when suspects are not
 * placed) keeps its place in the base: its replicas, and only they, go to
 * live members with room under the live caps; nothing lands on it; when it
 * returns the placement is the one before, bit for bit. */
START_TEST(down_member_moves_only_its_replicas)
{
	fleet f;
	mixed_fleet(&f, 400, 9);
	jobset js;
	mixed_jobs(&js, 600, 10);
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.suspect_is_alive = false;
	cn_place_result before, after, back;
	place(&f, &js, &o, &before);
	static const uint8_t states[] = {CN_STATE_DEAD, CN_STATE_LEFT, CN_STATE_SUSPECT};
	for (size_t t = 0; t < 3 * 4; t++) {
		size_t gone = t * 31 + 5;
		uint32_t held = before.members[gone].load + before.members[gone].per_node_load;
		f.m[gone].state = states[t % 3];
		place(&f, &js, &o, &after);
		cn_place_diff_stats st;
		ck_assert_int_eq(cn_place_diff(&before, &after, NULL, NULL, &st), 0);
		ck_assert_uint_eq(st.stopped, held);
		/* per_node replicas are not restarted elsewhere */
		ck_assert_uint_eq(st.started, before.members[gone].load);
		ck_assert_uint_eq(after.members[gone].load + after.members[gone].per_node_load, 0);
		ck_assert_uint_eq(after.members[gone].weight, 0);
		for (size_t i = 0; i < after.n_members; i++)
			if (after.overflow == 0)
				ck_assert_uint_le(after.members[i].load, after.members[i].cap);
		for (size_t q = 0; q < after.n_jobs; q++) {
			const cn_place_job_out *j = &after.jobs[q];
			uint32_t expect = j->want < j->n_eligible ? j->want : j->n_eligible;
			ck_assert_uint_eq(j->n_placed + j->n_no_room, expect);
		}
		f.m[gone].state = CN_STATE_ALIVE;
		place(&f, &js, &o, &back);
		ck_assert_uint_eq(result_hash(&back), result_hash(&before));
		ck_assert_mem_eq(back.slots, before.slots, back.n_slots * sizeof *back.slots);
		cn_place_result_free(&back);
		cn_place_result_free(&after);
	}
	/* with live_base, a down member is as if it were not there */
	o.live_base = true;
	f.m[7].state = CN_STATE_LEFT;
	place(&f, &js, &o, &after);
	fleet g = f;
	cn_place_member *rest = calloc(f.n, sizeof *rest);
	size_t nr = 0;
	for (size_t i = 0; i < f.n; i++)
		if (i != 7)
			rest[nr++] = f.m[i];
	g.m = rest;
	g.n = nr;
	place(&g, &js, &o, &back);
	ck_assert_uint_eq(result_hash(&back), result_hash(&after));
	free(rest);
	f.m[7].state = CN_STATE_ALIVE;
	cn_place_result_free(&back);
	cn_place_result_free(&after);
	cn_place_result_free(&before);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

/* Random fleets with random members down (failed, left, suspect when
 * suspects are not placed): the invariants of the redirect pass hold on
 * every one. Nothing on a member that is not live; each job on distinct
 * members, on as many as it can have (min(replicas, live eligible));
 * loads within the live caps unless something overflowed; base_of names
 * the slot's own member when that member held the replica in the base and
 * otherwise a member that is down; the prefilter and a permutation of the
 * inputs change nothing; and with everyone back the base result returns. */
START_TEST(redirect_invariants_on_random_fleets)
{
	for (uint64_t seed = 1; seed <= 12; seed++) {
		fleet f;
		jobset js;
		mixed_fleet(&f, 150, seed * 1000);
		mixed_jobs(&js, 120, seed * 1000 + 1);
		for (size_t q = 0; seed % 2 && q < js.n; q++) {
			/* odd seeds: GPU requests, which bind */
			if (js.spec[q].per_node)
				continue;
			if (q % 7 == 0) {
				js.spec[q].n_accel = 1;
				js.spec[q].accel[0].kind = put(&js.spec[q], "gpu");
				js.spec[q].accel[0].count = 1;
			}
		}
		cn_place_opts o;
		cn_place_opts_default(&o);
		o.suspect_is_alive = false;
		cn_place_result all, r, rx;
		place(&f, &js, &o, &all);
		cn_rng rng;
		cn_rng_seed(&rng, seed);
		uint32_t pct = (uint32_t)cn_rng_below(&rng, 60); /* 0..59 % down */
		static const uint8_t down[] = {CN_STATE_DEAD, CN_STATE_LEFT, CN_STATE_SUSPECT};
		for (size_t i = 0; i < f.n; i++)
			if (cn_rng_below(&rng, 100) < pct)
				f.m[i].state = down[cn_rng_below(&rng, 3)];
		place(&f, &js, &o, &r);
		for (size_t q = 0; q < r.n_jobs; q++) {
			const cn_place_job_out *j = &r.jobs[q];
			uint32_t expect = j->want < j->n_eligible ? j->want : j->n_eligible;
			ck_assert_uint_eq(j->n_placed + j->n_no_room, expect);
			for (uint32_t k = 0; k < j->n_placed; k++) {
				const char *host = member_of(&r, j, k);
				size_t i = fleet_index(&f, host);
				ck_assert_int_eq(f.m[i].state, CN_STATE_ALIVE);
				for (uint32_t l = 0; l < k; l++)
					ck_assert_str_ne(member_of(&r, j, l), host);
				uint32_t b = r.base_of[j->first + k];
				ck_assert_uint_lt(b, r.n_members);
				if (b != r.slots[j->first + k])
					ck_assert_int_ne(f.m[fleet_index(&f, r.members[b].name)].state,
							 CN_STATE_ALIVE);
			}
		}
		for (size_t i = 0; i < r.n_members && r.overflow == 0; i++)
			ck_assert_uint_le(r.members[i].load, r.members[i].cap);
		/* GPU requests within each member's devices */
		uint64_t *gpu = calloc(f.n, sizeof *gpu);
		uint64_t no_room = 0;
		for (size_t q = 0; q < r.n_jobs; q++) {
			const cn_place_job_out *j = &r.jobs[q];
			const cn_jobspec *sp = NULL;
			for (size_t k = 0; k < js.n; k++)
				if (!strcmp(js.j[k].name, j->name))
					sp = js.j[k].spec;
			no_room += j->n_no_room;
			for (uint32_t k = 0; k < j->n_placed; k++) {
				size_t i = fleet_index(&f, member_of(&r, j, k));
				gpu[i] += sp->n_accel ? sp->accel[0].count : 0;
			}
		}
		for (size_t i = 0; i < f.n; i++) {
			uint32_t have = f.meta[i].n_accel ? f.meta[i].accel[0].count : 0;
			ck_assert_uint_le(gpu[i], have);
		}
		if (seed == 1)
			ck_assert_uint_gt(no_room, 0); /* the requests did bind */
		free(gpu);
		o.exhaustive = true;
		place(&f, &js, &o, &rx);
		ck_assert_uint_eq(result_hash(&rx), result_hash(&r));
		ck_assert_mem_eq(rx.base_of, r.base_of, r.n_slots * sizeof *r.base_of);
		cn_place_result_free(&rx);
		o.exhaustive = false;
		cn_rng_shuffle(&rng, f.m, f.n, sizeof f.m[0]);
		cn_rng_shuffle(&rng, js.j, js.n, sizeof js.j[0]);
		place(&f, &js, &o, &rx);
		ck_assert_uint_eq(result_hash(&rx), result_hash(&r));
		ck_assert_mem_eq(rx.base_of, r.base_of, r.n_slots * sizeof *r.base_of);
		cn_place_result_free(&rx);
		for (size_t i = 0; i < f.n; i++)
			f.m[i].state = CN_STATE_ALIVE;
		place(&f, &js, &o, &rx);
		ck_assert_uint_eq(result_hash(&rx), result_hash(&all));
		cn_place_result_free(&rx);
		cn_place_result_free(&r);
		cn_place_result_free(&all);
		jobs_free(&js);
		fleet_free(&f);
	}
}
END_TEST

/* Accelerator requests are accounted: a member takes replicas while
 * their requests fit the devices it has left, and a replica that fits
 * nowhere is not placed (n_no_room) rather than sharing a GPU. */
START_TEST(accelerators_never_overcommitted)
{
	fleet f;
	fleet_init(&f, 6);
	for (size_t i = 0; i < 4; i++) {
		f.meta[i].n_accel = 1;
		snprintf(f.meta[i].accel[0].kind, sizeof f.meta[i].accel[0].kind, "gpu");
		f.meta[i].accel[0].count = i == 3 ? 2 : 1; /* 5 GPUs on 4 members */
	}
	jobset js;
	jobs_init(&js, 3, 1);
	static const uint32_t reps[] = {3, 2, 1};
	static const uint16_t prio[] = {50, 40, 10};
	for (size_t q = 0; q < 3; q++) {
		js.spec[q].replicas = reps[q];
		js.spec[q].priority = prio[q];
		js.spec[q].n_accel = 1;
		js.spec[q].accel[0].kind = put(&js.spec[q], "gpu");
		js.spec[q].accel[0].count = 1;
	}
	cn_place_result r;
	place(&f, &js, NULL, &r);
	uint32_t gpus[6] = {0}, placed = 0;
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		ck_assert_uint_eq(j->n_eligible, 4);
		placed += j->n_placed;
		for (uint32_t k = 0; k < j->n_placed; k++)
			gpus[fleet_index(&f, member_of(&r, j, k))]++;
		/* the most important job runs in full; which of the others
		 * gives way depends on the hash order (the matching is greedy
		 * per member, not an optimal packing) */
		if (!strcmp(j->name, "job-00000"))
			ck_assert_uint_eq(j->n_placed, 3);
		ck_assert_uint_eq(j->n_placed + j->n_no_room, j->want);
	}
	ck_assert_uint_ge(placed, 4);
	ck_assert_uint_le(placed, 5);
	for (size_t i = 0; i < 6; i++)
		ck_assert_uint_le(gpus[i], i < 4 ? f.meta[i].accel[0].count : 0);
	cn_place_result_free(&r);
	/* the 2-GPU member goes down: its two replicas need GPUs elsewhere,
	 * and there are none free, so the least important give way */
	f.m[3].state = CN_STATE_DEAD;
	place(&f, &js, NULL, &r);
	memset(gpus, 0, sizeof gpus);
	placed = 0;
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		placed += j->n_placed;
		for (uint32_t k = 0; k < j->n_placed; k++)
			gpus[fleet_index(&f, member_of(&r, j, k))]++;
	}
	ck_assert_uint_le(placed, 3);
	for (size_t i = 0; i < 6; i++)
		ck_assert_uint_le(gpus[i], i < 3 ? 1 : 0);
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

/* Redirection never breaks a job: a spread job whose whole zone is down
 * takes the rest from the other zones, and a job with fewer live eligible
 * members than replicas runs on every live one. */
START_TEST(redirect_when_a_zone_or_most_members_are_down)
{
	fleet f;
	fleet_init(&f, 30);
	static const char *zones[] = {"a", "b", "c"};
	for (size_t i = 0; i < 30; i++)
		label(&f, i, "zone", zones[i % 3]);
	jobset js;
	jobs_init(&js, 40, 3);
	for (size_t q = 0; q < 40; q++)
		js.spec[q].spread = put(&js.spec[q], "zone");
	for (size_t i = 0; i < 30; i += 3)
		f.m[i].state = CN_STATE_DEAD; /* zone a */
	cn_place_result r;
	place(&f, &js, NULL, &r);
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		ck_assert_uint_eq(j->n_placed, 3);
		int per[3] = {0};
		for (uint32_t k = 0; k < j->n_placed; k++) {
			size_t i = fleet_index(&f, member_of(&r, j, k));
			ck_assert_int_eq(f.m[i].state, CN_STATE_ALIVE);
			per[i % 3]++;
			for (uint32_t l = 0; l < k; l++)
				ck_assert_str_ne(member_of(&r, j, l), member_of(&r, j, k));
		}
		ck_assert_int_eq(per[0], 0);
		ck_assert(per[1] >= 1 && per[2] >= 1);
	}
	cn_place_result_free(&r);
	/* only 2 members live: every job runs 2 replicas, on them */
	for (size_t i = 0; i < 30; i++)
		f.m[i].state = i == 4 || i == 17 ? CN_STATE_ALIVE : CN_STATE_DEAD;
	place(&f, &js, NULL, &r);
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		ck_assert_uint_eq(j->n_placed, 2);
		ck_assert_uint_eq(j->n_eligible, 2);
		ck_assert_str_ne(member_of(&r, j, 0), member_of(&r, j, 1));
	}
	ck_assert_uint_eq(r.total_load, 80);
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

START_TEST(spread_across_zones)
{
	fleet f;
	fleet_init(&f, 60);
	static const char *zones[] = {"a", "b", "c"};
	for (size_t i = 0; i < 60; i++)
		label(&f, i, "zone", zones[i % 3]);
	jobset js;
	jobs_init(&js, 300, 3);
	for (size_t q = 0; q < 300; q++) {
		js.spec[q].spread = put(&js.spec[q], "zone");
		if (q % 3 == 0)
			js.spec[q].replicas = 6;
	}
	cn_place_result r;
	place(&f, &js, NULL, &r);
	for (size_t q = 0; q < r.n_jobs; q++) {
		const cn_place_job_out *j = &r.jobs[q];
		int per[3] = {0};
		for (uint32_t k = 0; k < j->n_placed; k++)
			per[fleet_index(&f, member_of(&r, j, k)) % 3]++;
		for (int z = 0; z < 3; z++)
			ck_assert_int_eq(per[z], (int)j->n_placed / 3);
	}
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

START_TEST(per_node)
{
	fleet f;
	fleet_init(&f, 50);
	for (size_t i = 0; i < 50; i++)
		if (i % 5 == 0)
			snprintf(f.meta[i].os, sizeof f.meta[i].os, "windows");
	f.m[1].state = CN_STATE_DEAD;
	jobset js;
	jobs_init(&js, 2, 2);
	js.spec[0].per_node = true;
	js.spec[0].replicas = 0;
	constrain(&js.spec[0], CN_JOB_OP_EQ, "os", "linux", NULL);
	cn_place_result r;
	place(&f, &js, NULL, &r);
	const cn_place_job_out *j = cn_place_result_job(&r, "job-00000");
	ck_assert_ptr_nonnull(j);
	ck_assert(j->per_node);
	ck_assert_uint_eq(j->n_placed, 39);
	ck_assert_uint_eq(j->want, 39);
	for (size_t i = 0; i < 50; i++) {
		bool expect = i % 5 != 0 && i != 1;
		ck_assert_uint_eq(r.members[i].per_node_load, expect ? 1 : 0);
	}
	ck_assert_uint_eq(r.total_load, 2); /* per_node is outside the loads */
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

/* Fraction of all replicas that land on members for which pred holds. */
static double share(const fleet *f, const jobset *js, const cn_place_opts *o,
		    bool (*pred)(const fleet *, size_t))
{
	cn_place_result r;
	place(f, js, o, &r);
	uint64_t hit = 0;
	for (size_t s = 0; s < r.n_slots; s++)
		hit += pred(f, fleet_index(f, r.members[r.slots[s]].name));
	double x = (double)hit / (double)r.n_slots;
	cn_place_result_free(&r);
	return x;
}

static bool at_site0(const fleet *f, size_t i)
{
	return strcmp(cn_meta_get_label(&f->meta[i], "site"), "s0") == 0;
}

static bool close_to_site0(const fleet *f, size_t i)
{
	return f->m[i].coord.vec[0] <= 1;
}

static bool on_mains(const fleet *f, size_t i)
{
	return f->meta[i].power == CN_POWER_MAINS;
}

START_TEST(near_and_energy_preferences)
{
	fleet f;
	fleet_init(&f, 200);
	for (size_t i = 0; i < 200; i++) {
		char site[8];
		snprintf(site, sizeof site, "s%zu", i % 10);
		label(&f, i, "site", site);
		f.m[i].has_coord = true;
		f.m[i].coord.vec[0] = (int32_t)(i % 10) * 2; /* site k is 10k ms away from s0 */
		f.meta[i].power = i % 2 ? CN_POWER_BATTERY : CN_POWER_MAINS;
	}
	jobset js;
	jobs_init(&js, 400, 2);
	/* Preferences are weights: without bounded loads they pull hard; with
	 * them, capacity caps how far (so the direction is all we assert). */
	cn_place_opts free_, bounded;
	cn_place_opts_default(&bounded);
	free_ = bounded;
	free_.load_factor_milli = 0;
	const cn_place_opts *os[2] = {&free_, &bounded};
	for (int v = 0; v < 2; v++) {
		const cn_place_opts *o = os[v];
		for (size_t q = 0; q < js.n; q++) {
			js.spec[q].has_near = false;
			js.spec[q].energy = CN_JOB_ENERGY_ANY;
		}
		double base_site = share(&f, &js, o, at_site0);
		double base_close = share(&f, &js, o, close_to_site0);
		double base_mains = share(&f, &js, o, on_mains);
		for (size_t q = 0; q < js.n; q++) {
			js.spec[q].has_near = true;
			js.spec[q].near_label = put(&js.spec[q], "site");
			js.spec[q].near_value = put(&js.spec[q], "s0");
		}
		double near_site = share(&f, &js, o, at_site0);
		double near_close = share(&f, &js, o, close_to_site0);
		for (size_t q = 0; q < js.n; q++) {
			js.spec[q].has_near = false;
			js.spec[q].energy = CN_JOB_ENERGY_PREFER_MAINS;
		}
		double mains = share(&f, &js, o, on_mains);
		printf("%s: near: share at s0 %.3f -> %.3f, within 10 ms %.3f -> %.3f; "
		       "energy: share on mains %.3f -> %.3f\n", v ? "bounded" : "unbounded",
		       base_site, near_site, base_close, near_close, base_mains, mains);
		ck_assert(near_site > (v ? 1.0 : 2.0) * base_site);
		ck_assert(near_close > base_close);
		ck_assert(mains > base_mains + (v ? 0.0 : 0.2));
	}
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

START_TEST(majority_counts)
{
	fleet f;
	fleet_init(&f, 5);
	jobset js;
	jobs_init(&js, 1, 1);
	js.spec[0].partition = CN_JOB_PARTITION_MAJORITY_ONLY;
	cn_place_result r;
	f.m[0].state = CN_STATE_DEAD;
	f.m[1].state = CN_STATE_DEAD;
	place(&f, &js, NULL, &r);
	ck_assert(r.jobs[0].majority_only);
	ck_assert_uint_eq(r.jobs[0].n_eligible, 3);
	ck_assert_uint_eq(r.jobs[0].n_eligible_known, 5);
	ck_assert(r.jobs[0].quorum);
	cn_place_result_free(&r);
	/* A suspect is placed on, but is no vote: 2 alive of 5 known. */
	f.m[2].state = CN_STATE_SUSPECT;
	place(&f, &js, NULL, &r);
	ck_assert_uint_eq(r.jobs[0].n_eligible, 3);
	ck_assert(!r.jobs[0].quorum);
	cn_place_result_free(&r);
	f.m[2].state = CN_STATE_DEAD;
	place(&f, &js, NULL, &r);
	ck_assert(!r.jobs[0].quorum);
	ck_assert_uint_eq(r.jobs[0].n_placed, 1); /* placed; the runtime gates it */
	cn_place_result_free(&r);
	f.m[2].state = CN_STATE_LEFT; /* left gracefully: no longer counted */
	place(&f, &js, NULL, &r);
	ck_assert_uint_eq(r.jobs[0].n_eligible_known, 4);
	ck_assert(r.jobs[0].quorum == false); /* 2 of 4 is not a majority */
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

struct log {
	int n;
	char lines[64][96];
};

static int record(void *ctx, const cn_place_move *mv)
{
	struct log *l = ctx;
	if (l->n < 64)
		snprintf(l->lines[l->n++], sizeof l->lines[0], "%s %s %s",
			 mv->kind == CN_PLACE_START ? "start" : "stop", mv->job, mv->member);
	return 0;
}

START_TEST(plan_diff)
{
	fleet f;
	fleet_init(&f, 10);
	jobset js;
	jobs_init(&js, 3, 2);
	cn_place_result a, b;
	place(&f, &js, NULL, &a);
	/* the member holding job-00001's first replica fails */
	const cn_place_job_out *j1 = cn_place_result_job(&a, "job-00001");
	size_t gone = fleet_index(&f, member_of(&a, j1, 0));
	f.m[gone].state = CN_STATE_DEAD;
	js.n = 2; /* and job-00002 is deleted */
	place(&f, &js, NULL, &b);
	struct log l = {0};
	cn_place_diff_stats st;
	ck_assert_int_eq(cn_place_diff(&a, &b, record, &l, &st), 0);
	ck_assert_uint_eq(st.jobs_removed, 1);
	ck_assert_uint_eq(st.jobs_added, 0);
	ck_assert_uint_eq(st.stopped, st.started + 2);
	ck_assert_uint_eq(st.kept + st.stopped, a.n_slots);
	char want[96];
	snprintf(want, sizeof want, "stop job-00001 %s", f.names[gone]);
	bool found = false;
	for (int i = 0; i < l.n; i++)
		found |= strcmp(l.lines[i], want) == 0;
	ck_assert(found);
	/* sorted by job then member */
	for (int i = 1; i < l.n; i++)
		ck_assert_int_le(strcmp(l.lines[i - 1] + 5, l.lines[i] + 5) <= 0 ||
				 strncmp(l.lines[i - 1], l.lines[i], 4) != 0, 1);
	/* no change: nothing moves */
	ck_assert_int_eq(cn_place_diff(&b, &b, record, &l, &st), 0);
	ck_assert_uint_eq(st.started + st.stopped, 0);
	cn_place_result_free(&a);
	cn_place_result_free(&b);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

START_TEST(golden)
{
	/* The same inputs must give the same bytes on every run and platform:
	 * all decisions are integer arithmetic. If this value changes, the
	 * placement of every existing fleet changes with it. */
	fleet f;
	jobset js;
	mixed_fleet(&f, 500, 7);
	mixed_jobs(&js, 300, 8);
	cn_place_result r;
	place(&f, &js, NULL, &r);
	uint64_t h = result_hash(&r);
	printf("golden placement hash %016llx\n", (unsigned long long)h);
	ck_assert_uint_eq(h, GOLDEN);
	cn_place_result_free(&r);
	jobs_free(&js);
	fleet_free(&f);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("placement");
	TCase *t = tcase_create("all");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, eligibility_each_constraint);
	tcase_add_test(t, region_never_violated);
	tcase_add_test(t, permutations_give_identical_output);
	tcase_add_test(t, errors);
	tcase_add_test(t, balance);
	tcase_add_test(t, movement_on_leave_and_join);
	tcase_add_test(t, down_member_moves_only_its_replicas);
	tcase_add_test(t, redirect_when_a_zone_or_most_members_are_down);
	tcase_add_test(t, redirect_invariants_on_random_fleets);
	tcase_add_test(t, accelerators_never_overcommitted);
	tcase_add_test(t, spread_across_zones);
	tcase_add_test(t, per_node);
	tcase_add_test(t, near_and_energy_preferences);
	tcase_add_test(t, majority_counts);
	tcase_add_test(t, plan_diff);
	tcase_add_test(t, golden);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	if (cn_placer_new(&placer) != 0)
		return EXIT_FAILURE;
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cn_placer_free(placer);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
