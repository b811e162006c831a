/* canopy: one binary for every device. `canopy agent` runs the agent;
 * every other command is a client of the local agent (src/cli). */
#include "agent/agent.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* glibc gives each thread that allocates an arena of its own, up to eight
 * per core. The agent's other threads are NNG's (13 on two cores), nearly
 * idle: two arenas instead of ten save about 40 kB of resident memory per
 * agent (docs/bench-membership.md). Must run before the first thread
 * starts; MALLOC_ARENA_MAX or a glibc.malloc.arena_max tunable in the
 * environment wins. */
static void limit_malloc_arenas(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	const char *tunables = getenv("GLIBC_TUNABLES");

	if (getenv("MALLOC_ARENA_MAX") || (tunables && strstr(tunables, "arena_max")))
		return;
	mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cn_cli_usage();
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("canopy %s\n", CANOPY_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "agent")) {
		limit_malloc_arenas();
		return cn_agent_main(argc - 1, argv + 1);
	}
	return cn_cli_main(argc - 1, argv + 1);
}
