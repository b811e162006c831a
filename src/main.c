/* canopy: one binary for every device. `canopy agent` runs the agent;
 * every other command is a client of the local agent (src/cli). */
#include "agent/agent.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

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
	if (!strcmp(argv[1], "agent"))
		return cn_agent_main(argc - 1, argv + 1);
	return cn_cli_main(argc - 1, argv + 1);
}
