/* Agent options: command line, optionally on top of a YAML config file.
 *
 * The config file uses the long option names as keys:
 *   name: edge-17
 *   bind: 0.0.0.0:7980
 *   advertise: 10.0.0.17:7980
 *   seeds: [10.0.0.1:7980, 10.0.0.2:7980]
 *   data_dir: /var/lib/canopy
 *   keyring: /etc/canopy/keyring
 *   labels: {site: plant-7, zone: a}
 *   trust: /etc/canopy/operators   # root operator public keys (--trust)
 *   probe_interval_ms: 1000   # and the other cn_node_config tunables
 * Flags given on the command line win over the file. */
#ifndef CN_AGENT_OPTS_H
#define CN_AGENT_OPTS_H

#include <stddef.h>

#include "core/node.h"

enum { CN_SEEDS_MAX = 64, CN_PATH_MAX = 4096, CN_AGENT_PORT_DEFAULT = 7980 };

typedef struct cn_agent_opts {
	char name[CN_NAME_MAX + 1];
	char bind[256];
	char advertise[256];
	char seeds[CN_SEEDS_MAX][256];
	size_t n_seeds;
	char data_dir[CN_PATH_MAX];
	char keyring[CN_PATH_MAX];  /* "" = DIR/keyring */
	char trust[CN_PATH_MAX];    /* root operator keys (core/trust.h); "" = none:
				     * every policy write is refused */
	char config[CN_PATH_MAX];
	char metrics[64];           /* loopback IP:PORT for /metrics, "" = off */
	unsigned admin_mode;        /* admin/events socket file mode (0600) */
	long admin_uid;             /* an extra uid allowed to administer (-1 none) */
	cn_meta meta;               /* labels from --label / config */
	cn_node_config node;        /* tunables */
} cn_agent_opts;

/* Parse argv (argv[0] = "agent"). On error prints a message naming the
 * option or the config file line and returns CN_EINVAL. */
int cn_agent_opts_parse(int argc, char **argv, cn_agent_opts *o);

#endif
