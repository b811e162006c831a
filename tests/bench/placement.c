/* Benchmark (prints figures, asserts nothing): cn_place on a synthetic
 * fleet. Time (best of 3, one thread), max/mean load, and the replicas
 * moved when one member leaves (then is reaped) or joins against the ideal, with bounded
 * loads on and off. Run by scripts/bench-placement.
 * Usage: bench_placement [members [jobs [replicas [load_factor_milli]]]]
 * Environment: BENCH_EVENTS=K measures K leaves and K joins (default 5
 * leaves, 1 join; one event moves ~10 replicas, so averages over 5 carry
 * roughly +-0.2x of noise: compare variants with K = 20 or more);
 * BENCH_BOUNDED_ONLY skips the unbounded run; BENCH_PLAIN makes every job
 * unconstrained (one job class: isolates cross-class effects).
 * "full" is the fraction of live members whose load reached their cap: a
 * replica displaced onto a full member displaces another one in turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/placement.h"
#include "util/err.h"
#include "util/rng.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static cn_jstr put(cn_jobspec *s, const char *t)
{
	size_t n = strlen(t);
	cn_jstr r = {s->text_len, (uint16_t)n};
	memcpy(s->text + s->text_len, t, n + 1);
	s->text_len = (uint16_t)(s->text_len + n + 1);
	return r;
}

enum { TEMPLATES = 8 };

/* Job templates: most jobs unconstrained, the rest use each feature. */
static void make_templates(cn_jobspec *t, uint32_t replicas)
{
	for (int i = 0; i < TEMPLATES; i++) {
		cn_jobspec *s = &t[i];
		memset(s, 0, sizeof *s);
		s->text_len = 1;
		s->priority = 50;
		s->replicas = replicas;
		s->n_command = 1;
		s->command[0] = put(s, "/bin/app");
		s->backoff_min_ms = 1000;
		s->backoff_max_ms = 60000;
		s->update_max_parallel = 1;
		s->cpu_millis = 250;
		s->memory_mb = 256;
	}
	/* 0..3 plain; 4 region eu; 5 arch in; 6 spread zone + prefer mains; 7 near a site */
	cn_job_constraint *c = &t[4].constraints[t[4].n_constraints++];
	c->op = CN_JOB_OP_EQ;
	c->label = put(&t[4], "region");
	c->values[c->n_values++] = put(&t[4], "eu");
	c = &t[5].constraints[t[5].n_constraints++];
	c->op = CN_JOB_OP_IN;
	c->label = put(&t[5], "arch");
	c->values[c->n_values++] = put(&t[5], "arm64");
	c->values[c->n_values++] = put(&t[5], "x86_64");
	t[6].spread = put(&t[6], "zone");
	t[6].energy = CN_JOB_ENERGY_PREFER_MAINS;
	t[7].has_near = true;
	t[7].near_label = put(&t[7], "site");
	t[7].near_value = put(&t[7], "site-7");
}

struct fleet {
	size_t n;
	cn_place_member *m;
	cn_meta *meta;
	char (*names)[32];
};

static void make_fleet(struct fleet *f, size_t n, bool uniform, uint64_t seed)
{
	cn_rng rng;
	cn_rng_seed(&rng, seed);
	f->n = n;
	f->m = calloc(n + 1, sizeof *f->m);
	f->meta = calloc(n + 1, sizeof *f->meta);
	f->names = calloc(n + 1, sizeof *f->names);
	static const char *zones[] = {"z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8"};
	static const char *regions[] = {"eu", "us", "ap"};
	static const char *arches[] = {"arm64", "x86_64", "riscv64"};
	for (size_t i = 0; i <= n; i++) {
		cn_meta *m = &f->meta[i];
		snprintf(f->names[i], sizeof f->names[i], "edge-%06zu", i);
		f->m[i].name = f->names[i];
		f->m[i].state = CN_STATE_ALIVE;
		f->m[i].meta = m;
		snprintf(m->arch, sizeof m->arch, "%s", arches[cn_rng_below(&rng, 3)]);
		snprintf(m->os, sizeof m->os, "linux");
		m->cpus = uniform ? 4 : 2u << cn_rng_below(&rng, 3);        /* 2, 4, 8 */
		m->mem_mb = uniform ? 4096 : 2048u << cn_rng_below(&rng, 3); /* 2-8 GiB */
		m->power = (uint8_t)(1 + cn_rng_below(&rng, 2));
		char site[16];
		snprintf(site, sizeof site, "site-%u", (unsigned)cn_rng_below(&rng, 100));
		cn_meta_set_label(m, "region", regions[cn_rng_below(&rng, 3)]);
		cn_meta_set_label(m, "site", site);
		cn_meta_set_label(m, "zone", zones[cn_rng_below(&rng, 8)]);
		f->m[i].has_coord = true;
		for (int d = 0; d < CN_COORD_DIM; d++)
			f->m[i].coord.vec[d] = (int32_t)cn_rng_below(&rng, 40) - 20;
		f->m[i].coord.height = 1;
	}
}

static void free_fleet(struct fleet *f)
{
	free(f->m);
	free(f->meta);
	free(f->names);
}

static double max_over_mean(const cn_place_result *r, double *raw)
{
	double worst = 0;
	uint32_t most = 0;
	size_t live = 0;
	for (size_t i = 0; i < r->n_members; i++) {
		const cn_place_member_out *m = &r->members[i];
		if (m->weight == 0)
			continue;
		live++;
		double e = (double)r->total_load * m->weight / (double)r->total_weight;
		worst = m->load / e > worst ? m->load / e : worst;
		most = m->load > most ? m->load : most;
	}
	*raw = live ? most / ((double)r->total_load / (double)live) : 0;
	return worst;
}

static cn_placer *placer;

static double timed(const struct fleet *f, size_t n, const cn_place_job *jobs, size_t nj,
		    const cn_place_opts *o, cn_place_result *out)
{
	double best = 1e9;
	for (int rep = 0; rep < 3; rep++) {
		cn_place_result r;
		double t0 = now_s();
		int rc = cn_place(placer, f->m, n, jobs, nj, o, &r);
		double dt = now_s() - t0;
		if (rc) {
			fprintf(stderr, "cn_place: %s\n", cn_strerror(rc));
			exit(1);
		}
		best = dt < best ? dt : best;
		if (rep == 2)
			*out = r;
		else
			cn_place_result_free(&r);
	}
	return best;
}

static uint64_t moved(const cn_place_result *a, const cn_place_result *b)
{
	cn_place_diff_stats st;
	cn_place_diff(a, b, NULL, NULL, &st);
	return st.started;
}

static void run(const char *title, bool uniform, size_t n, size_t nj, uint32_t replicas,
		uint32_t lf)
{
	struct fleet f;
	make_fleet(&f, n, uniform, 1);
	cn_jobspec *tpl = malloc(TEMPLATES * sizeof *tpl);
	make_templates(tpl, replicas);
	cn_place_job *jobs = calloc(nj, sizeof *jobs);
	char (*jn)[32] = calloc(nj, sizeof *jn);
	for (size_t q = 0; q < nj; q++) {
		snprintf(jn[q], sizeof jn[q], "job-%06zu", q);
		jobs[q].name = jn[q];
		jobs[q].spec = &tpl[q % 10 < 4 ? 0 : q % 10 - 2 < TEMPLATES ? q % 10 - 2 : 0];
		if (getenv("BENCH_PLAIN"))
			jobs[q].spec = &tpl[0];
	}
	printf("\n== %s: %zu members, %zu jobs x %u replicas\n", title, n, nj, replicas);
	for (int bounded = 1; bounded >= (getenv("BENCH_BOUNDED_ONLY") ? 1 : 0); bounded--) {
		cn_place_opts o;
		cn_place_opts_default(&o);
		o.load_factor_milli = bounded ? lf : 0;
		cn_place_result base, after;
		double t = timed(&f, n, jobs, nj, &o, &base);
		double raw, mm = max_over_mean(&base, &raw);
		size_t full = 0, live = 0;
		for (size_t i = 0; i < base.n_members; i++) {
			live += base.members[i].weight > 0;
			full += base.members[i].weight > 0 && base.members[i].load >= base.members[i].cap;
		}
		printf("%-9s c=%.2f  time %.3f s (best of 3)  replicas %llu  max/mean %.3f"
		       " (raw count %.3f)  overflow %llu  evictions %llu  scored %.1f%%  full %.2f\n",
		       bounded ? "bounded" : "unbounded", bounded ? lf / 1000.0 : 0.0, t,
		       (unsigned long long)base.total_load, mm, raw,
		       (unsigned long long)base.overflow, (unsigned long long)base.evictions,
		       100.0 * (double)base.scored / ((double)nj * (double)n),
		       live ? (double)full / (double)live : 0.0);
		/* leaves: 5 members (BENCH_EVENTS overrides), one at a time */
		const char *ev = getenv("BENCH_EVENTS");
		int events = ev ? atoi(ev) : 5;
		events = events < 1 ? 1 : events;
		double sum_ratio = 0, worst = 0, sum_frac = 0, rsum = 0, rworst = 0;
		double mm_down = 0, t_down = 0;
		uint64_t caps_changed = 0; /* members (not the leaver or joiner) */
		cn_place_member *rest = malloc(n * sizeof *rest);
		for (int k = 0; k < events; k++) {
			size_t gone = (size_t)(k * 1999 + 17) % n;
			uint32_t held = base.members[gone].load;
			/* a leave: the member is failed (or left) but still in the
			 * view, as it stays until reaped */
			f.m[gone].state = CN_STATE_LEFT;
			if (k == 0)
				t_down = timed(&f, n, jobs, nj, &o, &after);
			else
				cn_place(placer, f.m, n, jobs, nj, &o, &after);
			f.m[gone].state = CN_STATE_ALIVE;
			uint64_t mv = moved(&base, &after);
			for (size_t i = 0; i < n; i++)
				caps_changed += i != gone && base.members[i].cap != after.members[i].cap;
			double ratio = (double)mv / (held ? held : 1);
			sum_ratio += ratio;
			sum_frac += (double)mv / (double)base.total_load;
			worst = ratio > worst ? ratio : worst;
			double raw_down, m_down = max_over_mean(&after, &raw_down);
			mm_down = m_down > mm_down ? m_down : mm_down;
			/* the reap, later: the member leaves the view too */
			size_t nr = 0;
			for (size_t i = 0; i < n; i++)
				if (i != gone)
					rest[nr++] = f.m[i];
			cn_place_result reaped;
			cn_place(placer, rest, nr, jobs, nj, &o, &reaped);
			double rr = (double)moved(&after, &reaped) / (held ? held : 1);
			rsum += rr;
			rworst = rr > rworst ? rr : rworst;
			cn_place_result_free(&reaped);
			cn_place_result_free(&after);
		}
		free(rest);
		printf("          leave: moved %.5f of replicas (ideal 1/N = %.5f), %.2fx the"
		       " leaver's own replicas on average, %.2fx worst (%d leaves);"
		       " max/mean after it %.3f; time with it down %.3f s (best of 3)\n",
		       sum_frac / events, 1.0 / (double)n, sum_ratio / events, worst, events, mm_down,
		       t_down);
		printf("          out (the leaver leaves the base, default 22.5 h later): %.2fx its"
		       " share on average, %.2fx worst\n",
		       rsum / events, rworst);
		/* joins: a new member of median capacity (BENCH_EVENTS names) */
		int joins = ev ? events : 1;
		double jsum = 0, jworst = 0;
		for (int k = 0; k < joins; k++) {
			if (k > 0)
				snprintf(f.names[n], sizeof f.names[n], "join-%06d", k);
			f.meta[n].cpus = 4;
			f.meta[n].mem_mb = 4096;
			cn_place(placer, f.m, n + 1, jobs, nj, &o, &after);
			uint32_t got = 0;
			for (size_t i = 0; i < after.n_members; i++)
				if (strcmp(after.members[i].name, f.names[n]) == 0)
					got = after.members[i].load;
			uint64_t mv = moved(&base, &after);
			/* the joiner's name sorts after every edge-0..., so indices below n match */
			for (size_t i = 0; i < n; i++)
				caps_changed += base.members[i].cap != after.members[i].cap;
			double ratio = (double)mv / (got ? got : 1);
			jsum += ratio;
			jworst = ratio > jworst ? ratio : jworst;
			cn_place_result_free(&after);
		}
		snprintf(f.names[n], sizeof f.names[n], "edge-%06zu", n);
		printf("          join:  %.2fx the joiner's own replicas on average, %.2fx worst"
		       " (%d joins); caps changed on %llu members over all events\n",
		       jsum / joins, jworst, joins, (unsigned long long)caps_changed);
		cn_place_result_free(&base);
	}
	free(jobs);
	free(jn);
	free(tpl);
	free_fleet(&f);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	size_t nj = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
	uint32_t replicas = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 10;
	uint32_t lf = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : CN_PLACE_LOAD_FACTOR_DEFAULT;
	if (n == 0 || n > CN_PLACE_MEMBERS_MAX - 1 || nj > CN_PLACE_JOBS_MAX || replicas == 0 ||
	    replicas > CN_JOB_REPLICAS_MAX) {
		fprintf(stderr, "usage: bench_placement [members [jobs [replicas [c*1000]]]]\n");
		return 2;
	}
	if (cn_placer_new(&placer))
		return 1;
	run("uniform capacity, mixed jobs", true, n, nj, replicas, lf);
	run("varied capacity (2-8 cores, 2-8 GiB), mixed jobs", false, n, nj, replicas, lf);
	cn_placer_free(placer);
	return 0;
}
