/* YAML scenario parser (scenario.h). One pass over the libfyaml document;
 * each key is looked up in a table, so an unknown key is an error that
 * names the line, not a silent no-op. */
#include "scenario.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/doc.h"
#include "util/err.h"

typedef struct pctx {
	const char *file;
	int err;
} pctx;

static int line_of(struct fy_node *n)
{
	struct fy_token *t = NULL;
	if (n != NULL && fy_node_get_type(n) == FYNT_SCALAR)
		t = fy_node_get_scalar_token(n);
	const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
	return m ? m->line + 1 : 0;
}

/* Report once: the first error is the one worth reading. */
__attribute__((format(printf, 4, 5))) static void perr(pctx *p, struct fy_node *key,
						     const char *field, const char *fmt, ...)
{
	if (p->err != 0)
		return;
	p->err = CN_EINVAL;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "canopy-sim: %s:%d: %s: ", p->file, line_of(key), field);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *scalar(pctx *p, struct fy_node *key, struct fy_node *v, const char *field)
{
	if (v == NULL || fy_node_get_type(v) != FYNT_SCALAR) {
		perr(p, key, field, "must be a single value");
		return NULL;
	}
	return fy_node_get_scalar0(v);
}

int sim_parse_duration_us(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || errno != 0 || !isfinite(v))
		return CN_EINVAL;
	double mult = 1e6;
	if (strcmp(end, "ms") == 0)
		mult = 1e3;
	else if (strcmp(end, "us") == 0)
		mult = 1.0;
	else if (strcmp(end, "m") == 0)
		mult = 60e6;
	else if (strcmp(end, "h") == 0)
		mult = 3600e6;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return CN_EINVAL;
	v *= mult;
	if (fabs(v) > 1e15)
		return CN_EINVAL;
	*out = (int64_t)llround(v);
	return 0;
}

static uint64_t get_dur(pctx *p, struct fy_node *k, struct fy_node *v, const char *field)
{
	const char *s = scalar(p, k, v, field);
	int64_t us = 0;
	if (s != NULL && (sim_parse_duration_us(s, &us) != 0 || us < 0))
		perr(p, k, field, "'%s' is not a duration (like 500ms, 3s, 2m)", s);
	return us > 0 ? (uint64_t)us : 0;
}

static int64_t get_sdur(pctx *p, struct fy_node *k, struct fy_node *v, const char *field)
{
	const char *s = scalar(p, k, v, field);
	int64_t us = 0;
	if (s != NULL && sim_parse_duration_us(s, &us) != 0)
		perr(p, k, field, "'%s' is not a duration (like -200ms, 1s)", s);
	return us;
}

static uint64_t get_u64(pctx *p, struct fy_node *k, struct fy_node *v, const char *field,
			uint64_t max)
{
	const char *s = scalar(p, k, v, field);
	if (s == NULL)
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (end == s || *end != '\0' || errno != 0 || s[0] == '-' || x > max) {
		perr(p, k, field, "'%s' is not an integer in 0..%llu", s, (unsigned long long)max);
		return 0;
	}
	return x;
}

static double get_f(pctx *p, struct fy_node *k, struct fy_node *v, const char *field, double lo,
		    double hi)
{
	const char *s = scalar(p, k, v, field);
	if (s == NULL)
		return 0;
	char *end;
	double x = strtod(s, &end);
	if (end == s || *end != '\0' || !(x >= lo && x <= hi)) {
		perr(p, k, field, "'%s' is not a number in %g..%g", s, lo, hi);
		return 0;
	}
	return x;
}

static bool get_bool(pctx *p, struct fy_node *k, struct fy_node *v, const char *field)
{
	const char *s = scalar(p, k, v, field);
	if (s == NULL)
		return false;
	if (!strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "yes"))
		return true;
	if (!strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "no"))
		return false;
	perr(p, k, field, "'%s' is not true/false", s);
	return false;
}

/* "12" or "25%". */
static void get_count(pctx *p, struct fy_node *k, struct fy_node *v, const char *field,
		      sim_sel *sel)
{
	const char *s = scalar(p, k, v, field);
	if (s == NULL)
		return;
	char *end;
	double x = strtod(s, &end);
	sel->fraction = strcmp(end, "%") == 0;
	if (end == s || (*end != '\0' && !sel->fraction) || !(x >= 0) ||
	    (sel->fraction && x > 100) || x > SIM_NODES_MAX) {
		perr(p, k, field, "'%s' is not a count (like 5 or 25%%)", s);
		return;
	}
	sel->count = sel->fraction ? x / 100.0 : floor(x);
}

typedef struct pair_iter {
	void *it;
} pair_iter;

/* Next key/value of a mapping; key text in *name. */
static bool next_pair(struct fy_node *map, void **it, struct fy_node **k, struct fy_node **v,
		      const char **name)
{
	struct fy_node_pair *pr = fy_node_mapping_iterate(map, it);
	if (pr == NULL)
		return false;
	*k = fy_node_pair_key(pr);
	*v = fy_node_pair_value(pr);
	*name = *k && fy_node_get_type(*k) == FYNT_SCALAR ? fy_node_get_scalar0(*k) : "?";
	return true;
}

static bool is_map(struct fy_node *v) { return v && fy_node_get_type(v) == FYNT_MAPPING; }
static bool is_seq(struct fy_node *v) { return v && fy_node_get_type(v) == FYNT_SEQUENCE; }

static void parse_sel(pctx *p, struct fy_node *k, struct fy_node *v, const char *field,
		      sim_sel *sel)
{
	memset(sel, 0, sizeof *sel);
	if (v == NULL || fy_node_get_type(v) == FYNT_SCALAR) {
		const char *s = v ? fy_node_get_scalar0(v) : "";
		if (!strcmp(s, "all"))
			sel->kind = SEL_ALL;
		else if (!strcmp(s, "live"))
			sel->kind = SEL_LIVE;
		else if (!strcmp(s, "crashed"))
			sel->kind = SEL_CRASHED;
		else
			perr(p, k, field, "'%s' is not a node set (all, live, crashed, or a map "
					  "with ids/range/first/last/random/label)", s);
		return;
	}
	if (!is_map(v)) {
		perr(p, k, field, "a node set is a word or a map");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	int n = 0;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		n++;
		if (!strcmp(key, "ids")) {
			sel->kind = SEL_IDS;
			if (!is_seq(vv)) {
				perr(p, kk, "ids", "must be a list of node indexes");
				return;
			}
			int cnt = fy_node_sequence_item_count(vv);
			if (cnt < 0 || cnt > SIM_IDS_MAX) {
				perr(p, kk, "ids", "at most %d ids", SIM_IDS_MAX);
				return;
			}
			sel->ids = calloc((size_t)cnt + 1, sizeof *sel->ids);
			if (sel->ids == NULL) {
				p->err = CN_ENOMEM;
				return;
			}
			void *si = NULL;
			struct fy_node *e;
			while ((e = fy_node_sequence_iterate(vv, &si)) != NULL && p->err == 0)
				sel->ids[sel->n_ids++] =
					(uint32_t)get_u64(p, e, e, "ids", SIM_NODES_MAX - 1);
		} else if (!strcmp(key, "range")) {
			sel->kind = SEL_RANGE;
			if (!is_seq(vv) || fy_node_sequence_item_count(vv) != 2) {
				perr(p, kk, "range", "must be [from, to) as two indexes");
				return;
			}
			sel->lo = (uint32_t)get_u64(p, kk, fy_node_sequence_get_by_index(vv, 0),
						    "range", SIM_NODES_MAX);
			sel->hi = (uint32_t)get_u64(p, kk, fy_node_sequence_get_by_index(vv, 1),
						    "range", SIM_NODES_MAX);
			if (sel->hi < sel->lo)
				perr(p, kk, "range", "to must not be below from");
		} else if (!strcmp(key, "first") || !strcmp(key, "last") || !strcmp(key, "random")) {
			sel->kind = key[0] == 'f' ? SEL_FIRST : key[0] == 'l' ? SEL_LAST : SEL_RANDOM;
			get_count(p, kk, vv, key, sel);
		} else if (!strcmp(key, "label")) {
			sel->kind = SEL_LABEL;
			const char *s = scalar(p, kk, vv, "label");
			const char *eq = s ? strchr(s, '=') : NULL;
			if (s && (eq == NULL || eq == s || (size_t)(eq - s) > CN_LABEL_KEY_MAX ||
				  strlen(eq + 1) > CN_LABEL_VALUE_MAX)) {
				perr(p, kk, "label", "'%s' is not key=value", s);
				return;
			}
			if (s) {
				memcpy(sel->key, s, (size_t)(eq - s));
				strcpy(sel->value, eq + 1);
			}
		} else {
			perr(p, kk, field, "unknown node-set key '%s'", key);
		}
	}
	if (n != 1 && p->err == 0)
		perr(p, k, field, "a node set map has exactly one key");
}

static void sel_free(sim_sel *s)
{
	free(s->ids);
	s->ids = NULL;
}

typedef struct net_key {
	const char *name;
	uint32_t mask;
} net_key;

static void parse_net(pctx *p, struct fy_node *k, struct fy_node *v, sim_netcfg *net,
		      uint32_t *mask, bool top)
{
	if (!is_map(v)) {
		perr(p, k, "network", "must be a map");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		uint32_t m = 0;
		if (!strcmp(key, "sites") && top) {
			net->sites = (uint32_t)get_u64(p, kk, vv, key, SIM_SITES_MAX);
			if (net->sites == 0)
				perr(p, kk, key, "at least 1");
		} else if (!strcmp(key, "intra_ms")) {
			net->intra_ms = get_f(p, kk, vv, key, 0, 1e5), m = NF_INTRA;
		} else if (!strcmp(key, "inter_ms")) {
			m = NF_INTER;
			if (!is_seq(vv) || fy_node_sequence_item_count(vv) != 2) {
				perr(p, kk, key, "must be [low, high] in ms");
				return;
			}
			net->inter_lo_ms = get_f(p, kk, fy_node_sequence_get_by_index(vv, 0), key, 0, 1e5);
			net->inter_hi_ms = get_f(p, kk, fy_node_sequence_get_by_index(vv, 1), key, 0, 1e5);
			if (net->inter_hi_ms < net->inter_lo_ms)
				perr(p, kk, key, "high below low");
		} else if (!strcmp(key, "link_spread_ms")) {
			net->link_spread_ms = get_f(p, kk, vv, key, 0, 1e5), m = NF_SPREAD;
		} else if (!strcmp(key, "jitter_ms")) {
			net->jitter_ms = get_f(p, kk, vv, key, 0, 1e5), m = NF_JITTER;
		} else if (!strcmp(key, "jitter_sigma")) {
			net->jitter_sigma = get_f(p, kk, vv, key, 0, 4), m = NF_SIGMA;
		} else if (!strcmp(key, "loss")) {
			net->loss = get_f(p, kk, vv, key, 0, 1), m = NF_LOSS;
		} else if (!strcmp(key, "duplicate")) {
			net->duplicate = get_f(p, kk, vv, key, 0, 1), m = NF_DUP;
		} else if (!strcmp(key, "bandwidth")) {
			net->bandwidth = get_u64(p, kk, vv, key, 1ull << 40), m = NF_BW;
		} else if (!strcmp(key, "queue_bytes")) {
			net->queue_bytes = get_u64(p, kk, vv, key, 1ull << 32), m = NF_QUEUE;
		} else if (!strcmp(key, "stream_timeout")) {
			net->stream_timeout_us = get_dur(p, kk, vv, key), m = NF_STREAM_TIMEOUT;
		} else {
			perr(p, kk, "network", "unknown key '%s'", key);
		}
		if (mask)
			*mask |= m;
	}
}

typedef struct cfg_field {
	const char *name;
	size_t off;
} cfg_field;

#define F(x) {#x, offsetof(cn_node_config, x)}
static const cfg_field cfg_fields[] = {
	F(probe_interval_ms), F(probe_timeout_ms), F(indirect_checks), F(retransmit_mult),
	F(suspicion_mult), F(suspicion_max_mult), F(awareness_max), F(gossip_interval_ms),
	F(gossip_nodes), F(pushpull_interval_ms), F(reconnect_interval_ms), F(dead_reap_ms),
	F(meta_min_interval_ms), F(join_retry_max_ms), F(max_members), F(gossip_to_dead_ms),
	F(queue_max),
};
#undef F

static void parse_node_cfg(pctx *p, struct fy_node *k, struct fy_node *v, cn_node_config *c)
{
	if (!is_map(v)) {
		perr(p, k, "node", "must be a map");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "lifeguard")) {
			c->lifeguard = get_bool(p, kk, vv, key);
			continue;
		}
		size_t i = 0, n = sizeof cfg_fields / sizeof cfg_fields[0];
		while (i < n && strcmp(cfg_fields[i].name, key) != 0)
			i++;
		if (i == n) {
			perr(p, kk, "node", "unknown config field '%s'", key);
			return;
		}
		uint32_t x = (uint32_t)get_u64(p, kk, vv, key, UINT32_MAX);
		memcpy((char *)c + cfg_fields[i].off, &x, sizeof x);
	}
}

static void parse_expect(pctx *p, struct fy_node *k, struct fy_node *v, sim_expect *e)
{
	if (!is_map(v)) {
		perr(p, k, "expect", "must be a map");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "false_positives_max"))
			e->fp_max = get_u64(p, kk, vv, key, UINT32_MAX), e->has_fp_max = true;
		else if (!strcmp(key, "detection_p99_ms_max"))
			e->det_p99_ms_max = get_u64(p, kk, vv, key, UINT32_MAX), e->has_det_p99_max = true;
		else if (!strcmp(key, "converged"))
			e->converged = get_bool(p, kk, vv, key), e->has_converged = true;
		else if (!strcmp(key, "detected_min"))
			e->detected_min = get_u64(p, kk, vv, key, UINT32_MAX), e->has_detected_min = true;
		else if (!strcmp(key, "placement_settled"))
			e->placement_settled = get_bool(p, kk, vv, key), e->has_placement_settled = true;
		else if (!strcmp(key, "partition_sides_run"))
			e->partition_sides_run = get_bool(p, kk, vv, key),
			e->has_partition_sides_run = true;
		else
			perr(p, kk, "expect", "unknown key '%s'", key);
	}
}

/* Keys of an action's argument map. */
static void action_args(pctx *p, struct fy_node *k, struct fy_node *v, sim_action *a,
			const char *act)
{
	if (!is_map(v)) {
		perr(p, k, act, "needs a map of arguments");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "nodes") || !strcmp(key, "a") || !strcmp(key, "from")) {
			parse_sel(p, kk, vv, key, &a->sets[0]);
			a->n_sets = a->n_sets < 1 ? 1 : a->n_sets;
		} else if (!strcmp(key, "b") || !strcmp(key, "to")) {
			parse_sel(p, kk, vv, key, &a->sets[1]);
			a->n_sets = 2;
		} else if (!strcmp(key, "sets")) {
			if (!is_seq(vv) || fy_node_sequence_item_count(vv) < 1 ||
			    fy_node_sequence_item_count(vv) > SIM_SETS_MAX) {
				perr(p, kk, key, "must be a list of 1..%d node sets", SIM_SETS_MAX);
				return;
			}
			void *si = NULL;
			struct fy_node *e;
			a->n_sets = 0;
			while ((e = fy_node_sequence_iterate(vv, &si)) != NULL && p->err == 0)
				parse_sel(p, kk, e, key, &a->sets[a->n_sets++]);
		} else if (!strcmp(key, "for")) {
			a->for_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "period")) {
			a->period_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "down")) {
			a->down_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "over")) {
			a->over_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "delay")) {
			a->delay_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "jitter")) {
			a->jitter_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "offset")) {
			a->offset_ms = get_sdur(p, kk, vv, key) / 1000;
		} else if (!strcmp(key, "drift_ppm")) {
			const char *s = scalar(p, kk, vv, key);
			long x = s ? strtol(s, NULL, 10) : 0;
			if (x < -500000 || x > 500000)
				perr(p, kk, key, "must be within +-500000");
			a->drift_ppm = (int32_t)x;
		} else if (!strcmp(key, "count")) {
			a->count = (uint32_t)get_u64(p, kk, vv, key, SIM_NODES_MAX);
		} else if (!strcmp(key, "rate")) {
			a->rate = get_f(p, kk, vv, key, 0, 1e6);
		} else if (!strcmp(key, "bytes_per_s")) {
			a->bandwidth = get_u64(p, kk, vv, key, 1ull << 40);
		} else if (!strcmp(key, "queue_bytes")) {
			a->queue_bytes = get_u64(p, kk, vv, key, 1ull << 32);
		} else if (a->type == ACT_WRITE && !strcmp(key, "node")) {
			sim_sel *sel = &a->sets[0];
			sel_free(sel);
			memset(sel, 0, sizeof *sel);
			sel->kind = SEL_IDS;
			sel->ids = calloc(1, sizeof *sel->ids);
			if (sel->ids == NULL) {
				p->err = CN_ENOMEM;
				return;
			}
			sel->ids[0] = (uint32_t)get_u64(p, kk, vv, key, SIM_NODES_MAX - 1);
			sel->n_ids = 1;
			a->n_sets = 1;
		} else if (a->type == ACT_WRITE && !strcmp(key, "side")) {
			a->side = (int32_t)get_u64(p, kk, vv, key, SIM_SETS_MAX);
		} else if (a->type == ACT_WRITE && !strcmp(key, "names")) {
			a->names = (uint32_t)get_u64(p, kk, vv, key, 1u << 20);
		} else if (a->type == ACT_WRITE && !strcmp(key, "meta")) {
			a->meta = get_bool(p, kk, vv, key);
		} else if (a->type == ACT_WRITE && !strcmp(key, "meta_only")) {
			a->meta_only = get_bool(p, kk, vv, key);
		} else if (a->type == ACT_WRITE && !strcmp(key, "name")) {
			const char *s = scalar(p, kk, vv, key);
			if (s != NULL && (strlen(s) > SIM_WRITE_PREFIX_MAX ||
					  !cn_doc_name_ok(s, strlen(s)))) {
				perr(p, kk, key, "'%s' is not a document name prefix "
						 "([A-Za-z0-9._:/-], 1..%d characters, no leading /)",
				     s, SIM_WRITE_PREFIX_MAX);
				return;
			}
			if (s != NULL)
				snprintf(a->prefix, sizeof a->prefix, "%s", s);
		} else {
			perr(p, kk, act, "unknown argument '%s'", key);
		}
	}
}

typedef struct act_name {
	const char *name;
	uint8_t type;
	bool sel_value; /* the value is a node set itself */
} act_name;

static const act_name act_names[] = {
	{"partition", ACT_PARTITION, false}, {"block", ACT_BLOCK, false},
	{"heal", ACT_HEAL, false},           {"flap", ACT_FLAP, false},
	{"crash", ACT_CRASH, true},          {"restart", ACT_RESTART, true},
	{"pause", ACT_PAUSE, false},         {"slow", ACT_SLOW, false},
	{"skew", ACT_SKEW, false},           {"leave", ACT_LEAVE, true},
	{"join", ACT_JOIN, false},           {"mass_restart", ACT_MASS_RESTART, false},
	{"churn", ACT_CHURN, false},         {"net", ACT_NET, false},
	{"bandwidth", ACT_BANDWIDTH, false}, {"write", ACT_WRITE, false},
};

/* Check the arguments each action needs. */
static void action_check(pctx *p, struct fy_node *k, sim_action *a, const char *act)
{
	switch (a->type) {
	case ACT_PARTITION:
		if (a->n_sets < 1)
			perr(p, k, act, "needs sets: [...]");
		break;
	case ACT_BLOCK:
	case ACT_FLAP:
		if (a->n_sets != 2)
			perr(p, k, act, "needs two node sets (from/to or a/b)");
		if (a->type == ACT_FLAP && (a->period_us == 0 || a->down_us > a->period_us))
			perr(p, k, act, "needs period > 0 and down <= period");
		break;
	case ACT_PAUSE:
	case ACT_SLOW:
	case ACT_SKEW:
	case ACT_BANDWIDTH:
	case ACT_MASS_RESTART:
		if (a->n_sets < 1)
			perr(p, k, act, "needs nodes: <node set>");
		if (a->type == ACT_PAUSE && a->for_us == 0)
			perr(p, k, act, "needs for: <duration>");
		break;
	case ACT_JOIN:
		if (a->count == 0)
			perr(p, k, act, "needs count > 0");
		break;
	case ACT_CHURN:
		if (a->rate <= 0 || a->for_us == 0)
			perr(p, k, act, "needs rate > 0 (crashes per second) and for");
		break;
	case ACT_WRITE:
		if (a->rate > 0 && a->for_us == 0)
			perr(p, k, act, "rate needs for: <duration>");
		else if (a->rate <= 0 && a->count == 0)
			a->count = 1;
		break;
	default:
		break;
	}
}

static void parse_action(pctx *p, struct fy_node *item, sim_action *a)
{
	memset(a, 0, sizeof *a);
	a->side = -1;
	if (!is_map(item)) {
		perr(p, item, "timeline", "each entry is a map: {at: T, <action>: ...}");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv, *actk = NULL;
	const char *key, *act = NULL;
	bool has_at = false;
	while (next_pair(item, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "at")) {
			a->at_us = get_dur(p, kk, vv, "at");
			has_at = true;
			continue;
		}
		size_t i = 0, n = sizeof act_names / sizeof act_names[0];
		while (i < n && strcmp(act_names[i].name, key) != 0)
			i++;
		if (i == n) {
			perr(p, kk, "timeline", "unknown action '%s'", key);
			return;
		}
		if (act != NULL) {
			perr(p, kk, "timeline", "one action per entry ('%s' and '%s')", act, key);
			return;
		}
		act = key;
		actk = kk;
		a->type = act_names[i].type;
		a->line = (uint32_t)line_of(kk);
		if (act_names[i].sel_value) {
			a->n_sets = 1;
			parse_sel(p, kk, vv, key, &a->sets[0]);
		} else if (a->type == ACT_NET) {
			parse_net(p, kk, vv, &a->net, &a->net_mask, false);
		} else if (a->type != ACT_HEAL || is_map(vv)) {
			action_args(p, kk, vv, a, key);
		}
	}
	if (p->err)
		return;
	if (act == NULL || !has_at) {
		perr(p, actk ? actk : item, "timeline", "each entry needs at: and one action");
		return;
	}
	action_check(p, actk, a, act);
}

static void parse_timeline(pctx *p, struct fy_node *k, struct fy_node *v, sim_scenario *sc)
{
	if (!is_seq(v)) {
		perr(p, k, "timeline", "must be a list");
		return;
	}
	int n = fy_node_sequence_item_count(v);
	if (n > SIM_ACTIONS_MAX) {
		perr(p, k, "timeline", "at most %d entries", SIM_ACTIONS_MAX);
		return;
	}
	sc->actions = calloc((size_t)n + 1, sizeof *sc->actions);
	if (sc->actions == NULL) {
		p->err = CN_ENOMEM;
		return;
	}
	void *si = NULL;
	struct fy_node *e;
	while ((e = fy_node_sequence_iterate(v, &si)) != NULL && p->err == 0) {
		parse_action(p, e, &sc->actions[sc->n_actions]);
		sc->n_actions++; /* counted even on error, so free sees its selectors */
	}
	/* Stable insertion sort by time: entries at the same time keep file order. */
	for (uint32_t i = 1; i < sc->n_actions && p->err == 0; i++) {
		sim_action t = sc->actions[i];
		uint32_t j = i;
		for (; j > 0 && sc->actions[j - 1].at_us > t.at_us; j--)
			sc->actions[j] = sc->actions[j - 1];
		sc->actions[j] = t;
	}
}

static void defaults(sim_scenario *sc, const char *file)
{
	memset(sc, 0, sizeof *sc);
	snprintf(sc->file, sizeof sc->file, "%s", file);
	const char *base = strrchr(file, '/');
	snprintf(sc->name, sizeof sc->name, "%s", base ? base + 1 : file);
	char *dot = strrchr(sc->name, '.');
	if (dot)
		*dot = '\0';
	sc->nodes = 32;
	sc->duration_us = 60000000;
	sc->seed = 1;
	sc->sample_us = 1000000;
	sc->start_spread_us = 2000000;
	sc->seeds = 3;
	sc->paranoid_max = 64;
	sc->net = (sim_netcfg){.sites = 4, .intra_ms = 0.5, .inter_lo_ms = 10, .inter_hi_ms = 60,
			       .link_spread_ms = 1, .jitter_ms = 1, .jitter_sigma = 0.5,
			       .queue_bytes = 256 * 1024, .stream_timeout_us = 10000000};
	cn_node_config_default(&sc->node);
}

/* join | converged */
static void parse_start_mode(pctx *p, struct fy_node *k, const char *s, sim_scenario *sc)
{
	if (!strcmp(s, "join"))
		sc->start_converged = false;
	else if (!strcmp(s, "converged"))
		sc->start_converged = true;
	else
		perr(p, k, "start", "'%s' is not a start mode (join or converged)", s);
}

/* start: join | converged | {mode: join|converged, spread, seeds} */
static void parse_start(pctx *p, struct fy_node *k, struct fy_node *v, sim_scenario *sc)
{
	if (v != NULL && fy_node_get_type(v) == FYNT_SCALAR) {
		parse_start_mode(p, k, fy_node_get_scalar0(v), sc);
		return;
	}
	if (!is_map(v)) {
		perr(p, k, "start", "must be a map, 'join' or 'converged'");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "spread")) {
			sc->start_spread_us = get_dur(p, kk, vv, key);
		} else if (!strcmp(key, "seeds")) {
			sc->seeds = (uint32_t)get_u64(p, kk, vv, key, 16);
		} else if (!strcmp(key, "mode")) {
			const char *s = scalar(p, kk, vv, key);
			if (s != NULL)
				parse_start_mode(p, kk, s, sc);
		} else
			perr(p, kk, "start", "unknown key '%s'", key);
	}
}

/* policy: on | off | {enabled, persist, settle} */
static void parse_policy(pctx *p, struct fy_node *k, struct fy_node *v, sim_policycfg *pc)
{
	if (v != NULL && fy_node_get_type(v) == FYNT_SCALAR) {
		pc->enabled = get_bool(p, k, v, "policy");
		return;
	}
	if (!is_map(v)) {
		perr(p, k, "policy", "must be on/off or a map {enabled, persist, settle}");
		return;
	}
	pc->enabled = true;
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "enabled"))
			pc->enabled = get_bool(p, kk, vv, key);
		else if (!strcmp(key, "persist"))
			pc->persist = get_bool(p, kk, vv, key);
		else if (!strcmp(key, "settle"))
			pc->settle_us = get_dur(p, kk, vv, key);
		else
			perr(p, kk, "policy", "unknown key '%s'", key);
	}
}

/* One job: {name, replicas | per_node, priority, partition, spread}. */
static void parse_job(pctx *p, struct fy_node *item, sim_jobcfg *jc)
{
	if (!is_map(item)) {
		perr(p, item, "placement.jobs", "each job must be a map {name, replicas, ...}");
		return;
	}
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	bool has_replicas = false;
	while (next_pair(item, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "name")) {
			const char *s = scalar(p, kk, vv, key);
			if (s != NULL && (strlen(s) == 0 || strlen(s) >= sizeof jc->name))
				perr(p, kk, key, "1 to %zu bytes", sizeof jc->name - 1);
			else if (s != NULL)
				snprintf(jc->name, sizeof jc->name, "%s", s);
		} else if (!strcmp(key, "replicas")) {
			jc->replicas = (uint32_t)get_u64(p, kk, vv, key, 10000);
			has_replicas = true;
		} else if (!strcmp(key, "per_node")) {
			jc->per_node = get_bool(p, kk, vv, key);
		} else if (!strcmp(key, "priority")) {
			jc->priority = (uint32_t)get_u64(p, kk, vv, key, 1000);
		} else if (!strcmp(key, "partition")) {
			const char *s = scalar(p, kk, vv, key);
			if (s != NULL && !strcmp(s, "majority_only"))
				jc->majority_only = true;
			else if (s != NULL && strcmp(s, "keep_running") != 0)
				perr(p, kk, key, "'%s' is not keep_running or majority_only", s);
		} else if (!strcmp(key, "spread")) {
			const char *s = scalar(p, kk, vv, key);
			if (s != NULL && strlen(s) >= sizeof jc->spread)
				perr(p, kk, key, "at most %zu bytes", sizeof jc->spread - 1);
			else if (s != NULL)
				snprintf(jc->spread, sizeof jc->spread, "%s", s);
		} else {
			perr(p, kk, "placement.jobs", "unknown key '%s'", key);
		}
	}
	if (p->err == 0 && jc->name[0] == '\0')
		perr(p, item, "placement.jobs", "a job needs a name");
	else if (p->err == 0 && has_replicas == jc->per_node)
		perr(p, item, "placement.jobs", "job '%s': give replicas or per_node: true (one)",
		     jc->name);
}

/* placement: {every: 1s, jobs: [...]} */
static void parse_placement(pctx *p, struct fy_node *k, struct fy_node *v, sim_placecfg *pc)
{
	if (!is_map(v)) {
		perr(p, k, "placement", "must be a map {every, jobs}");
		return;
	}
	pc->every_us = 1000000;
	void *it = NULL;
	struct fy_node *kk, *vv;
	const char *key;
	while (next_pair(v, &it, &kk, &vv, &key) && p->err == 0) {
		if (!strcmp(key, "every")) {
			pc->every_us = get_dur(p, kk, vv, key);
			if (p->err == 0 && pc->every_us < 100000)
				perr(p, kk, key, "at least 100ms");
		} else if (!strcmp(key, "jobs")) {
			if (!is_seq(vv) || fy_node_sequence_item_count(vv) < 1 ||
			    fy_node_sequence_item_count(vv) > SIM_JOBS_MAX) {
				perr(p, kk, key, "must be a list of 1 to %d jobs", SIM_JOBS_MAX);
				return;
			}
			void *si = NULL;
			struct fy_node *e;
			while ((e = fy_node_sequence_iterate(vv, &si)) != NULL && p->err == 0) {
				sim_jobcfg *jc = &pc->jobs[pc->n_jobs];
				parse_job(p, e, jc);
				for (uint32_t j = 0; j < pc->n_jobs && p->err == 0; j++)
					if (!strcmp(pc->jobs[j].name, jc->name))
						perr(p, e, "placement.jobs", "job '%s' twice", jc->name);
				pc->n_jobs++;
			}
		} else {
			perr(p, kk, "placement", "unknown key '%s'", key);
		}
	}
	if (p->err == 0 && pc->n_jobs == 0)
		perr(p, k, "placement", "needs jobs");
}

static void parse_root(pctx *p, struct fy_node *root, sim_scenario *sc)
{
	void *it = NULL;
	struct fy_node *k, *v;
	const char *key;
	while (next_pair(root, &it, &k, &v, &key) && p->err == 0) {
		if (!strcmp(key, "name")) {
			const char *s = scalar(p, k, v, key);
			if (s)
				snprintf(sc->name, sizeof sc->name, "%s", s);
		} else if (!strcmp(key, "nodes")) {
			sc->nodes = (uint32_t)get_u64(p, k, v, key, SIM_NODES_MAX);
		} else if (!strcmp(key, "duration")) {
			sc->duration_us = get_dur(p, k, v, key);
		} else if (!strcmp(key, "seed")) {
			sc->seed = get_u64(p, k, v, key, UINT64_MAX);
		} else if (!strcmp(key, "sample")) {
			sc->sample_us = get_dur(p, k, v, key);
			if (sc->sample_us < 1000)
				perr(p, k, key, "at least 1ms");
		} else if (!strcmp(key, "paranoid_max")) {
			sc->paranoid_max = (uint32_t)get_u64(p, k, v, key, SIM_NODES_MAX);
		} else if (!strcmp(key, "start")) {
			parse_start(p, k, v, sc);
		} else if (!strcmp(key, "network")) {
			parse_net(p, k, v, &sc->net, NULL, true);
		} else if (!strcmp(key, "node")) {
			parse_node_cfg(p, k, v, &sc->node);
		} else if (!strcmp(key, "expect")) {
			parse_expect(p, k, v, &sc->expect);
		} else if (!strcmp(key, "policy")) {
			parse_policy(p, k, v, &sc->policy);
		} else if (!strcmp(key, "placement")) {
			parse_placement(p, k, v, &sc->placement);
		} else if (!strcmp(key, "timeline")) {
			parse_timeline(p, k, v, sc);
		} else {
			perr(p, k, "scenario", "unknown key '%s'", key);
		}
	}
}

int sim_scenario_load(sim_scenario *sc, const char *file)
{
	defaults(sc, file);
	/* Not quiet: libfyaml's own syntax errors already name file:line:col. */
	struct fy_parse_cfg cfg = {.flags = 0};
	struct fy_document *doc = fy_document_build_from_file(&cfg, file);
	if (doc == NULL) {
		fprintf(stderr, "canopy-sim: %s: cannot read or parse (see above)\n", file);
		return CN_EIO;
	}
	pctx p = {.file = file};
	struct fy_node *root = fy_document_root(doc);
	if (!is_map(root))
		perr(&p, root, "scenario", "the document must be a map");
	else
		parse_root(&p, root, sc);
	fy_document_destroy(doc);
	if (p.err == 0 && sc->nodes == 0)
		perr(&p, NULL, "nodes", "at least 1");
	if (p.err != 0)
		sim_scenario_free(sc);
	return p.err;
}

void sim_scenario_free(sim_scenario *sc)
{
	for (uint32_t i = 0; i < sc->n_actions; i++)
		for (uint32_t s = 0; s < SIM_SETS_MAX; s++)
			sel_free(&sc->actions[i].sets[s]);
	free(sc->actions);
	sc->actions = NULL;
	sc->n_actions = 0;
}
