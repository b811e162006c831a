/* The canopy command-line client: every command but `agent` talks to the
 * local agent over the admin socket (NNG req/rep over IPC), except those
 * that need no agent (keygen). The agent renders the output; the client
 * prints it and maps the status to an exit code:
 *   0 success, 1 the agent refused or failed, 2 usage error,
 *   3 no agent reachable. */
#ifndef CN_CLI_CLI_H
#define CN_CLI_CLI_H

/* argv[0] is the command name (e.g. "members"). */
int cn_cli_main(int argc, char **argv);
void cn_cli_usage(void);

#endif
