#include "agent/opts.h"
#include "util/err.h"

#include <errno.h>
#include <getopt.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_str(char *dst, size_t cap, const char *src, const char *what)
{
	if (strlen(src) >= cap || src[0] == '\0') {
		fprintf(stderr, "canopy agent: %s: empty or longer than %zu bytes\n", what, cap - 1);
		return CN_EINVAL;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int add_label(cn_agent_opts *o, const char *kv, const char *where)
{
	char key[CN_LABEL_KEY_MAX + 2];
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv || (size_t)(eq - kv) > CN_LABEL_KEY_MAX) {
		fprintf(stderr, "canopy agent: %s: label '%s' is not KEY=VALUE (key 1..%d bytes)\n",
			where, kv, CN_LABEL_KEY_MAX);
		return CN_EINVAL;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	int rc = cn_meta_set_label(&o->meta, key, eq + 1);
	if (rc != 0) {
		fprintf(stderr, "canopy agent: %s: label '%s': %s (at most %d labels, value at most %d bytes)\n",
			where, kv, cn_strerror(rc), CN_LABELS_MAX, CN_LABEL_VALUE_MAX);
		return CN_EINVAL;
	}
	return 0;
}

struct tunable {
	const char *name;
	size_t offset;
};
#define T(f) {#f, offsetof(cn_node_config, f)}
static const struct tunable tunables[] = {
	T(probe_interval_ms), T(probe_timeout_ms), T(indirect_checks), T(retransmit_mult),
	T(suspicion_mult), T(suspicion_max_mult), T(awareness_max), T(gossip_interval_ms),
	T(gossip_nodes), T(pushpull_interval_ms), T(reconnect_interval_ms), T(dead_reap_ms),
	T(meta_min_interval_ms), T(join_retry_max_ms), T(max_members), T(gossip_to_dead_ms),
	T(queue_max),
};
#undef T

static int set_tunable(cn_agent_opts *o, const char *name, const char *value, const char *where)
{
	for (size_t i = 0; i < sizeof tunables / sizeof tunables[0]; i++) {
		if (strcmp(tunables[i].name, name) != 0)
			continue;
		char *end;
		errno = 0;
		unsigned long v = strtoul(value, &end, 10);
		if (errno || *end || value[0] == '-' || v == 0 || v > UINT32_MAX) {
			fprintf(stderr, "canopy agent: %s: %s must be a positive integer, got '%s'\n",
				where, name, value);
			return CN_EINVAL;
		}
		*(uint32_t *)((char *)&o->node + tunables[i].offset) = (uint32_t)v;
		return 0;
	}
	return CN_ENOENT;
}

/* 1-based line of a scalar node, 0 when unknown. */
static int node_line(struct fy_node *n)
{
	struct fy_token *t = n ? fy_node_get_scalar_token(n) : NULL;
	const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
	return m ? m->line + 1 : 0;
}

/* Scalar text of a node, or NULL with a message naming the key. */
static const char *scalar(struct fy_node *n, const char *file, const char *key)
{
	if (n == NULL || fy_node_get_type(n) != FYNT_SCALAR) {
		int line = node_line(n);
		fprintf(stderr, "canopy agent: %s:%d: %s must be a single value\n", file, line, key);
		return NULL;
	}
	return fy_node_get_scalar0(n);
}

static int load_config(cn_agent_opts *o, const char *file)
{
	struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
	struct fy_document *doc = fy_document_build_from_file(&cfg, file);
	if (doc == NULL) {
		fprintf(stderr, "canopy agent: %s: cannot read or parse as YAML\n", file);
		return CN_EINVAL;
	}
	int rc = 0;
	struct fy_node *root = fy_document_root(doc);
	if (root == NULL || fy_node_get_type(root) != FYNT_MAPPING) {
		fprintf(stderr, "canopy agent: %s: top level must be a mapping\n", file);
		fy_document_destroy(doc);
		return CN_EINVAL;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	while (rc == 0 && (p = fy_node_mapping_iterate(root, &it)) != NULL) {
		struct fy_node *kn = fy_node_pair_key(p), *vn = fy_node_pair_value(p);
		const char *key = fy_node_get_scalar0(kn);
		char where[CN_PATH_MAX + 32];
		snprintf(where, sizeof where, "%s:%d", file, node_line(kn));
		if (key == NULL) {
			fprintf(stderr, "canopy agent: %s: keys must be plain text\n", where);
			rc = CN_EINVAL;
			break;
		}
		const char *v;
		if (!strcmp(key, "seeds")) {
			if (fy_node_get_type(vn) != FYNT_SEQUENCE) {
				fprintf(stderr, "canopy agent: %s: seeds must be a list\n", where);
				rc = CN_EINVAL;
				break;
			}
			void *si = NULL;
			struct fy_node *s;
			while (rc == 0 && (s = fy_node_sequence_iterate(vn, &si)) != NULL) {
				if (o->n_seeds == CN_SEEDS_MAX) {
					fprintf(stderr, "canopy agent: %s: more than %d seeds\n", where, CN_SEEDS_MAX);
					rc = CN_EINVAL;
				} else if ((v = scalar(s, file, "seeds[]")) == NULL) {
					rc = CN_EINVAL;
				} else {
					rc = set_str(o->seeds[o->n_seeds++], sizeof o->seeds[0], v, where);
				}
			}
		} else if (!strcmp(key, "labels")) {
			if (fy_node_get_type(vn) != FYNT_MAPPING) {
				fprintf(stderr, "canopy agent: %s: labels must be a mapping\n", where);
				rc = CN_EINVAL;
				break;
			}
			void *li = NULL;
			struct fy_node_pair *lp;
			while (rc == 0 && (lp = fy_node_mapping_iterate(vn, &li)) != NULL) {
				const char *lk = fy_node_get_scalar0(fy_node_pair_key(lp));
				const char *lv = scalar(fy_node_pair_value(lp), file, "labels value");
				char kv[CN_LABEL_KEY_MAX + CN_LABEL_VALUE_MAX + 4];
				if (lk == NULL || lv == NULL) {
					rc = CN_EINVAL;
				} else {
					snprintf(kv, sizeof kv, "%s=%s", lk, lv);
					rc = add_label(o, kv, where);
				}
			}
		} else if ((v = scalar(vn, file, key)) == NULL) {
			rc = CN_EINVAL;
		} else if (!strcmp(key, "name")) {
			if (o->name[0] == '\0')
				rc = set_str(o->name, sizeof o->name, v, where);
		} else if (!strcmp(key, "bind")) {
			if (o->bind[0] == '\0')
				rc = set_str(o->bind, sizeof o->bind, v, where);
		} else if (!strcmp(key, "advertise")) {
			if (o->advertise[0] == '\0')
				rc = set_str(o->advertise, sizeof o->advertise, v, where);
		} else if (!strcmp(key, "data_dir")) {
			if (o->data_dir[0] == '\0')
				rc = set_str(o->data_dir, sizeof o->data_dir, v, where);
		} else if (!strcmp(key, "metrics")) {
			if (o->metrics[0] == '\0')
				rc = set_str(o->metrics, sizeof o->metrics, v, where);
		} else if (!strcmp(key, "keyring")) {
			if (o->keyring[0] == '\0')
				rc = set_str(o->keyring, sizeof o->keyring, v, where);
		} else if (!strcmp(key, "trust")) {
			if (o->trust[0] == '\0')
				rc = set_str(o->trust, sizeof o->trust, v, where);
		} else {
			rc = set_tunable(o, key, v, where);
			if (rc == CN_ENOENT) {
				fprintf(stderr, "canopy agent: %s: unknown key '%s'\n", where, key);
				rc = CN_EINVAL;
			}
		}
	}
	fy_document_destroy(doc);
	return rc;
}

int cn_agent_opts_parse(int argc, char **argv, cn_agent_opts *o)
{
	static const struct option longopts[] = {
		{"name", required_argument, NULL, 'n'},
		{"bind", required_argument, NULL, 'b'},
		{"advertise", required_argument, NULL, 'a'},
		{"seed", required_argument, NULL, 's'},
		{"data-dir", required_argument, NULL, 'd'},
		{"keyring", required_argument, NULL, 'k'},
		{"label", required_argument, NULL, 'l'},
		{"config", required_argument, NULL, 'c'},
		{"admin-mode", required_argument, NULL, 'm'},
		{"admin-uid", required_argument, NULL, 'u'},
		{"set", required_argument, NULL, 'S'},
		{"metrics", required_argument, NULL, 'M'},
		{"trust", required_argument, NULL, 't'},
		{0, 0, 0, 0},
	};
	memset(o, 0, sizeof *o);
	cn_node_config_default(&o->node);
	o->admin_mode = 0600;
	o->admin_uid = -1;
	optind = 1;
	int c, rc = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': rc = set_str(o->name, sizeof o->name, optarg, "--name"); break;
		case 'b': rc = set_str(o->bind, sizeof o->bind, optarg, "--bind"); break;
		case 'a': rc = set_str(o->advertise, sizeof o->advertise, optarg, "--advertise"); break;
		case 's':
			if (o->n_seeds == CN_SEEDS_MAX) {
				fprintf(stderr, "canopy agent: more than %d --seed\n", CN_SEEDS_MAX);
				rc = CN_EINVAL;
			} else {
				rc = set_str(o->seeds[o->n_seeds++], sizeof o->seeds[0], optarg, "--seed");
			}
			break;
		case 'd': rc = set_str(o->data_dir, sizeof o->data_dir, optarg, "--data-dir"); break;
		case 'k': rc = set_str(o->keyring, sizeof o->keyring, optarg, "--keyring"); break;
		case 'l': rc = add_label(o, optarg, "--label"); break;
		case 'c': rc = set_str(o->config, sizeof o->config, optarg, "--config"); break;
		case 'M': rc = set_str(o->metrics, sizeof o->metrics, optarg, "--metrics"); break;
		case 't': rc = set_str(o->trust, sizeof o->trust, optarg, "--trust"); break;
		case 'm': {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (*end || m > 0777 || (m & 0600) != 0600) {
				fprintf(stderr, "canopy agent: --admin-mode: octal mode including 0600, got '%s'\n", optarg);
				rc = CN_EINVAL;
			}
			o->admin_mode = (unsigned)m;
			break;
		}
		case 'u': {
			char *end;
			long u = strtol(optarg, &end, 10);
			if (*end || u < 0) {
				fprintf(stderr, "canopy agent: --admin-uid: a numeric uid, got '%s'\n", optarg);
				rc = CN_EINVAL;
			}
			o->admin_uid = u;
			break;
		}
		case 'S': {
			/* --set tunable=value, for tests and experiments. */
			char name[64];
			const char *eq = strchr(optarg, '=');
			if (eq == NULL || (size_t)(eq - optarg) >= sizeof name) {
				fprintf(stderr, "canopy agent: --set takes NAME=VALUE\n");
				rc = CN_EINVAL;
				break;
			}
			memcpy(name, optarg, (size_t)(eq - optarg));
			name[eq - optarg] = '\0';
			rc = set_tunable(o, name, eq + 1, "--set");
			if (rc == CN_ENOENT) {
				fprintf(stderr, "canopy agent: --set: unknown tunable '%s'\n", name);
				rc = CN_EINVAL;
			}
			break;
		}
		default: rc = CN_EINVAL; break;
		}
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "canopy agent: unexpected argument '%s'\n", argv[optind]);
		rc = CN_EINVAL;
	}
	if (rc == 0 && o->config[0])
		rc = load_config(o, o->config);
	if (rc == 0 && o->name[0] == '\0') {
		fprintf(stderr, "canopy agent: --name is required\n");
		rc = CN_EINVAL;
	}
	if (rc == 0 && o->data_dir[0] == '\0') {
		fprintf(stderr, "canopy agent: --data-dir is required\n");
		rc = CN_EINVAL;
	}
	if (rc == 0) {
		/* A faster probe interval alone implies a proportionally
		 * shorter direct-ack timeout (half, as in the defaults). */
		cn_node_config d;
		cn_node_config_default(&d);
		if (o->node.probe_interval_ms != d.probe_interval_ms &&
		    o->node.probe_timeout_ms == d.probe_timeout_ms)
			o->node.probe_timeout_ms = o->node.probe_interval_ms / 2 ? o->node.probe_interval_ms / 2 : 1;
		if (o->node.probe_timeout_ms > o->node.probe_interval_ms) {
			fprintf(stderr, "canopy agent: probe_timeout_ms (%u) must not exceed "
				"probe_interval_ms (%u)\n", o->node.probe_timeout_ms, o->node.probe_interval_ms);
			rc = CN_EINVAL;
		}
	}
	if (rc == 0 && o->bind[0] == '\0')
		snprintf(o->bind, sizeof o->bind, "0.0.0.0:%d", CN_AGENT_PORT_DEFAULT);
	return rc;
}
