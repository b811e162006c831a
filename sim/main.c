/* canopy-sim: run a scenario (a YAML file under sim/scenarios/) against the real core.
 *
 *   canopy-sim SCENARIO.yaml [--nodes N] [--duration S] [--seed N]
 *              [--out DIR] [--lifeguard on|off] [--policy on|off]
 *              [--start join|converged] [--quiet]
 *
 * Exit status: 0 the run finished and met the scenario's expectations;
 * 1 an invariant was violated or an expectation was not met (the seed is
 * printed; --seed replays it); 2 usage, scenario or output errors.
 * Wall-clock time is read here only, for wall_seconds and the ratios. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "metrics.h"
#include "scenario.h"
#include "util/buf.h"
#include "util/json.h"
#include "world.h"

typedef struct opts {
	const char *file, *out;
	int64_t nodes, seed_set, lifeguard, policy, converged;
	uint64_t seed;
	int64_t duration_us;
	bool quiet;
} opts;

static void usage(void)
{
	fprintf(stderr, "usage: canopy-sim SCENARIO.yaml [--nodes N] [--duration S] [--seed N]\n"
			"                  [--out DIR] [--lifeguard on|off] [--policy on|off]\n"
			"                  [--start join|converged] [--quiet]\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (s[0] == '-' || end == s || *end || errno || v > max) {
		fprintf(stderr, "canopy-sim: %s: '%s' is not an integer in 0..%llu\n", flag, s,
			(unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
	memset(o, 0, sizeof *o);
	o->nodes = o->lifeguard = o->policy = o->converged = -1;
	o->duration_us = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;
		if (!strcmp(a, "--quiet")) {
			o->quiet = true;
			continue;
		}
		if (a[0] != '-') {
			if (o->file) {
				usage();
				return -1;
			}
			o->file = a;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "canopy-sim: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--nodes")) {
			if (parse_u64(a, v, SIM_NODES_MAX, &x) || x == 0)
				return -1;
			o->nodes = (int64_t)x;
		} else if (!strcmp(a, "--seed")) {
			if (parse_u64(a, v, UINT64_MAX, &o->seed))
				return -1;
			o->seed_set = 1;
		} else if (!strcmp(a, "--duration")) {
			if (sim_parse_duration_us(v, &o->duration_us) || o->duration_us <= 0) {
				fprintf(stderr, "canopy-sim: --duration: '%s' is not a duration\n", v);
				return -1;
			}
		} else if (!strcmp(a, "--out")) {
			o->out = v;
		} else if (!strcmp(a, "--lifeguard")) {
			if (strcmp(v, "on") && strcmp(v, "off")) {
				fprintf(stderr, "canopy-sim: --lifeguard: 'on' or 'off'\n");
				return -1;
			}
			o->lifeguard = !strcmp(v, "on");
		} else if (!strcmp(a, "--policy")) {
			if (strcmp(v, "on") && strcmp(v, "off")) {
				fprintf(stderr, "canopy-sim: --policy: 'on' or 'off'\n");
				return -1;
			}
			o->policy = !strcmp(v, "on");
		} else if (!strcmp(a, "--start")) {
			if (strcmp(v, "join") && strcmp(v, "converged")) {
				fprintf(stderr, "canopy-sim: --start: 'join' or 'converged'\n");
				return -1;
			}
			o->converged = !strcmp(v, "converged");
		} else {
			fprintf(stderr, "canopy-sim: unknown option %s\n", a);
			usage();
			return -1;
		}
	}
	if (o->file == NULL) {
		usage();
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_max_kb(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static void summary(sim_world *w, cn_buf *out, bool ok, int unmet)
{
	cn_json j;
	cn_json_init(&j, out);
	cn_json_obj_begin(&j);
	cn_json_kv_str(&j, "scenario", w->sc->name);
	cn_json_kv_u64(&j, "nodes", w->n_init);
	cn_json_kv_u64(&j, "nodes_total", w->n_used);
	cn_json_kv_u64(&j, "seed", w->seed);
	cn_json_kv_bool(&j, "lifeguard", w->sc->node.lifeguard);
	cn_json_kv_f64(&j, "virtual_seconds", (double)w->now_us / 1e6);
	cn_json_kv_u64(&j, "events", w->events);
	char hex[17];
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)w->digest);
	cn_json_kv_str(&j, "digest", hex);
	cn_json_kv_bool(&j, "ok", ok);
	cn_json_kv_u64(&j, "expectations_unmet", (uint64_t)unmet);
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->summary)
			w->probes[p].ops->summary(w->probes[p].st, w, &j);
	/* Wall-clock figures last: the only fields that differ between replays. */
	cn_json_kv_f64(&j, "wall_seconds", w->wall_seconds);
	cn_json_kv_f64(&j, "virtual_to_wall", w->wall_seconds > 0
						      ? (double)w->now_us / 1e6 / w->wall_seconds : 0);
	cn_json_kv_f64(&j, "events_per_s", w->wall_seconds > 0 ? (double)w->events / w->wall_seconds : 0);
	cn_json_kv_u64(&j, "max_rss_kb", (uint64_t)rss_max_kb());
	cn_json_obj_end(&j);
	cn_buf_puts(out, "\n");
}

static int write_out(sim_world *w, const char *dir, const cn_buf *sum)
{
	if (mkdir_p(dir) != 0) {
		fprintf(stderr, "canopy-sim: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	FILE *f = sim_open_csv(dir, "summary.json");
	if (f == NULL)
		return -1;
	fwrite(sum->data, 1, sum->len, f);
	int rc = fclose(f) == 0 ? 0 : -1;
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->write_files && w->probes[p].ops->write_files(w->probes[p].st, w, dir))
			rc = -1;
	return rc;
}

int main(int argc, char **argv)
{
	opts o;
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	sim_scenario sc;
	if (sim_scenario_load(&sc, o.file) != 0)
		return 2;
	if (o.nodes > 0)
		sc.nodes = (uint32_t)o.nodes;
	if (o.seed_set)
		sc.seed = o.seed;
	if (o.duration_us > 0)
		sc.duration_us = (uint64_t)o.duration_us;
	if (o.lifeguard >= 0)
		sc.node.lifeguard = o.lifeguard == 1;
	if (o.policy >= 0)
		sc.policy.enabled = o.policy == 1;
	if (o.converged >= 0)
		sc.start_converged = o.converged == 1;
	for (uint32_t k = 0; k < sc.n_actions && !sc.policy.enabled; k++) {
		if (sc.actions[k].type == ACT_WRITE) {
			fprintf(stderr, "canopy-sim: %s:%u: write: needs policy replicas "
					"(policy: on in the scenario, or --policy on)\n",
				sc.file, sc.actions[k].line);
			sim_scenario_free(&sc);
			return 2;
		}
	}
	sim_world *w = calloc(1, sizeof *w);
	if (w == NULL || sim_world_new(w, &sc, o.quiet) != 0) {
		fprintf(stderr, "canopy-sim: cannot set up the world (seed %llu)\n",
			(unsigned long long)sc.seed);
		if (w)
			sim_world_free(w);
		free(w);
		sim_scenario_free(&sc);
		return 2;
	}
	double t0 = wall_now();
	int rc = sim_world_run(w);
	w->wall_seconds = wall_now() - t0;
	int unmet = 0;
	for (uint32_t p = 0; rc == 0 && p < w->n_probes; p++)
		if (w->probes[p].ops->expect)
			unmet += w->probes[p].ops->expect(w->probes[p].st, w, &sc.expect);
	if (unmet > 0)
		fprintf(stderr, "canopy-sim: %d expectation(s) not met (scenario %s, seed %llu); "
				"replay with --seed %llu\n",
			unmet, sc.name, (unsigned long long)sc.seed, (unsigned long long)sc.seed);
	cn_buf sum;
	cn_buf_init(&sum, 64u << 20);
	summary(w, &sum, rc == 0 && unmet == 0, unmet);
	int out_rc = 0;
	if (o.out)
		out_rc = write_out(w, o.out, &sum);
	if (!o.quiet || rc != 0 || unmet > 0)
		fprintf(stderr, "canopy-sim: %s seed=%llu nodes=%u virtual=%.0fs wall=%.2fs "
				"virtual/wall=%.3f events=%llu events/s=%.0f max_rss=%ldMiB "
				"digest=%016llx %s\n",
			sc.name, (unsigned long long)sc.seed, w->n_init, (double)w->now_us / 1e6,
			w->wall_seconds,
			w->wall_seconds > 0 ? (double)w->now_us / 1e6 / w->wall_seconds : 0.0,
			(unsigned long long)w->events,
			w->wall_seconds > 0 ? (double)w->events / w->wall_seconds : 0.0,
			rss_max_kb() / 1024, (unsigned long long)w->digest,
			rc == 0 && unmet == 0 ? "ok" : "FAILED");
	if (o.out == NULL)
		fwrite(sum.data, 1, sum.len, stdout);
	cn_buf_free(&sum);
	sim_world_free(w);
	free(w);
	sim_scenario_free(&sc);
	if (out_rc != 0)
		return 2;
	return rc != 0 || unmet > 0 ? 1 : 0;
}
