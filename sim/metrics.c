/* The probe registry and helpers shared by probes (metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One line per probe; order is the order of keys in summary.json. */
const sim_probe_ops *const sim_probes[] = {
	&sim_probe_traffic,
	&sim_probe_membership,
	&sim_probe_policy,
	&sim_probe_placement,
};
const size_t sim_probes_count = sizeof sim_probes / sizeof sim_probes[0];

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t sim_percentile(uint64_t *v, size_t n, double pct)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	/* Nearest rank. */
	size_t rank = (size_t)(pct / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

FILE *sim_open_csv(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fprintf(stderr, "canopy-sim: %s: %s\n", path, strerror(errno));
	return f;
}
