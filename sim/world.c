/* The simulation loop, the virtual network and the fault injector
 * (world.h). Layout: helpers; trace digest; network; node life cycle;
 * output draining; event handlers; timeline actions; the loop. */
#include "world.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/psync.h"
#include "core/suspicion.h"
#include "util/err.h"
#include "wire/mp.h"
#include "wire/msg.h"
#include "wire/proto.h"

enum sim_ev_kind {
	EV_TICK = 1, EV_DGRAM, EV_STREAM_REQ, EV_STREAM_REPLY, EV_STREAM_FAIL, EV_ACTION,
	EV_START, EV_SAMPLE, EV_CHURN, EV_LEAVE_TIMEOUT, EV_HEAL, EV_WRITE, EV_WRITE_POISSON,
};

enum { EVF_SLOWED = 1 }; /* already delayed by a slow node's inbox */

enum {
	LEAVE_TIMEOUT_US = 30000000,  /* stop a leaving node after this anyway */
	US_PER_MS = 1000,
};

/* ------------------------------------------------------------------ */
/* Trace digest: 64-bit, word-wise (splitmix64 finaliser chained). Every */
/* delivery, drop, stream, node event and action is folded in, in order. */

static void trace(sim_world *w, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = w->digest;
	h = cn_mix64(h ^ a);
	h = cn_mix64(h ^ b);
	h = cn_mix64(h ^ c);
	w->digest = h;
}

static uint64_t hash_bytes(const uint8_t *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		h = (h ^ x) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	uint64_t t = 0;
	memcpy(&t, p + i, len - i);
	return cn_mix64(h ^ t);
}

void sim_world_fail(sim_world *w, const char *fmt, ...)
{
	if (w->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
	va_end(ap);
	w->failed = true;
	fprintf(stderr, "canopy-sim: INVARIANT VIOLATED at t=%.3fs (scenario %s, seed %llu): %s\n"
			"canopy-sim: replay with: canopy-sim %s --seed %llu --nodes %u\n",
		(double)w->now_us / 1e6, w->sc->name, (unsigned long long)w->seed, w->fail_msg,
		w->sc->file, (unsigned long long)w->seed, w->n_init);
}

/* ------------------------------------------------------------------ */
/* Names and addresses                                                  */

static void node_addr(uint32_t i, cn_addr *a)
{
	memset(a, 0, sizeof *a);
	a->family = CN_ADDR_V4;
	a->ip[0] = 10;
	a->ip[1] = (uint8_t)(i >> 16);
	a->ip[2] = (uint8_t)(i >> 8);
	a->ip[3] = (uint8_t)i;
	a->port = SIM_PORT;
}

static uint32_t addr_index(const sim_world *w, const cn_addr *a)
{
	if (a->family != CN_ADDR_V4 || a->ip[0] != 10 || a->port != SIM_PORT)
		return UINT32_MAX;
	uint32_t i = (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
	return i < w->cap ? i : UINT32_MAX;
}

uint32_t sim_name_index(const sim_world *w, const char *name)
{
	if (name[0] != 'n' || name[1] < '0' || name[1] > '9')
		return UINT32_MAX;
	uint64_t v = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > SIM_NODES_MAX)
			return UINT32_MAX;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v < w->cap ? (uint32_t)v : UINT32_MAX;
}

/* ------------------------------------------------------------------ */
/* Clocks: node-local milliseconds with offset and drift, monotonic.    */

static uint64_t local_ms(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	int64_t v = (int64_t)(w->now_us / US_PER_MS);
	int64_t t = v + n->skew_ms + v * n->drift_ppm / 1000000;
	uint64_t l = t < 0 ? 0 : (uint64_t)t;
	if (l < n->last_local_ms)
		l = n->last_local_ms; /* skew moved back: the node's clock stands still */
	n->last_local_ms = l;
	return l;
}

/* Earliest virtual microsecond at which node i's clock reads >= d_ms. */
static uint64_t virtual_us_of(const sim_world *w, uint32_t i, uint64_t d_ms)
{
	const sim_node *n = &w->nodes[i];
	if (d_ms <= n->last_local_ms)
		return w->now_us;
	if (n->skew_ms == 0 && n->drift_ppm == 0)
		return d_ms * US_PER_MS;
	double v = ((double)d_ms - (double)n->skew_ms) * 1e6 / (1e6 + n->drift_ppm);
	int64_t vm = v < 0 ? 0 : (int64_t)ceil(v);
	/* Correct rounding: at most a few steps either way. */
	for (int k = 0; k < 4 && vm + n->skew_ms + vm * n->drift_ppm / 1000000 < (int64_t)d_ms; k++)
		vm++;
	uint64_t us = (uint64_t)vm * US_PER_MS;
	return us < w->now_us ? w->now_us : us;
}

/* ------------------------------------------------------------------ */
/* Network                                                              */

static void net_sites(sim_world *w)
{
	/* Sites as points in a unit square: latency grows with distance, so
	 * Vivaldi has a real geometry to learn. */
	cn_rng r;
	cn_rng_seed(&r, cn_mix64(w->seed ^ 0x5173e5ull));
	double x[SIM_SITES_MAX], y[SIM_SITES_MAX];
	for (uint32_t s = 0; s < SIM_SITES_MAX; s++) {
		x[s] = cn_rng_unit(&r);
		y[s] = cn_rng_unit(&r);
	}
	const sim_netcfg *c = &w->net;
	for (uint32_t a = 0; a < SIM_SITES_MAX; a++)
		for (uint32_t b = 0; b < SIM_SITES_MAX; b++) {
			double d = hypot(x[a] - x[b], y[a] - y[b]) / sqrt(2.0);
			w->site_ms[a][b] = a == b ? c->intra_ms
						  : c->inter_lo_ms + (c->inter_hi_ms - c->inter_lo_ms) * d;
		}
}

static double normal(cn_rng *r)
{
	double u1 = cn_rng_unit(r), u2 = cn_rng_unit(r);
	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* One-way delay of one packet from a to b, microseconds. */
static uint64_t net_delay_us(sim_world *w, uint32_t a, uint32_t b)
{
	const sim_netcfg *c = &w->net;
	uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
	uint64_t lh = cn_mix64(w->seed ^ cn_mix64((uint64_t)lo << 32 | hi));
	double ms = w->site_ms[w->nodes[a].site][w->nodes[b].site] +
		    c->link_spread_ms * (double)(lh >> 11) * 0x1.0p-53;
	if (c->jitter_ms > 0) {
		double s = c->jitter_sigma;
		ms += c->jitter_ms * exp(s * normal(&w->nodes[a].rng) - s * s / 2);
	}
	double us = ms * 1000.0;
	return us < 1.0 ? 1 : (uint64_t)us;
}

static bool rule_blocks(const sim_rule *r, uint32_t a, uint32_t b, uint64_t now)
{
	if (r->flap) {
		if (now < r->start_us || now >= r->until_us)
			return false;
		if ((now - r->start_us) % r->period_us >= r->down_us)
			return false;
		return (r->a[a] && r->b[b]) || (r->a[b] && r->b[a]);
	}
	return r->a[a] && r->b[b];
}

/* Can a packet go from a to b now (partitions, blocks, flaps)? */
static bool net_path_open(const sim_world *w, uint32_t a, uint32_t b)
{
	if (w->nodes[a].group != w->nodes[b].group)
		return false;
	for (uint32_t k = 0; k < w->n_rules; k++)
		if (rule_blocks(&w->rules[k], a, b, w->now_us))
			return false;
	return true;
}

bool sim_net_touched(const sim_world *w, uint32_t i, uint64_t grace_us)
{
	uint64_t t = w->nodes[i].net_touch_us;
	return t == UINT64_MAX || (t != 0 && w->now_us < t + grace_us);
}

/* ------------------------------------------------------------------ */
/* Probe dispatch                                                       */

static void fact(sim_world *w, const sim_fact *f)
{
	trace(w, 0xfac7, f->kind, f->node);
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_fact)
			w->probes[p].ops->on_fact(w->probes[p].st, w, f);
}

static void fact_node(sim_world *w, uint8_t kind, uint32_t i)
{
	sim_fact f = {.kind = kind, .node = i};
	fact(w, &f);
}

static void push(sim_world *w, sim_ev *ev)
{
	if (sim_heap_push(&w->heap, ev) != 0) {
		free(ev->data);
		sim_world_fail(w, "event heap full (%zu events): runaway producer", w->heap.count);
	}
}

/* ------------------------------------------------------------------ */
/* Node life cycle                                                      */

static void build_meta(const sim_world *w, uint32_t i, cn_meta *m)
{
	memset(m, 0, sizeof *m);
	m->n_labels = 1;
	strcpy(m->labels[0].key, "site");
	snprintf(m->labels[0].value, sizeof m->labels[0].value, "s%u", w->nodes[i].site);
	strcpy(m->arch, "x86_64");
	strcpy(m->os, "linux");
	m->cpus = 4;
	m->mem_mb = 4096;
	m->battery_pct = 255;
	m->power = CN_POWER_MAINS;
}

/* ------------------------------------------------------------------ */
/* Policy replicas: the memory store behind a wrapper that queues every */
/* committed winner for the probes (handed over in drain(), once the    */
/* replica's digest includes it).                                       */

typedef struct sim_pstore {
	sim_world *w;
	uint32_t node;
	cn_policy_store inner;
} sim_pstore;

static int ps_latest(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		     void *arg)
{
	sim_pstore *s = ctx;
	return s->inner.ops->latest(s->inner.ctx, kind, name, fn, arg);
}

static int ps_history(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		      void *arg)
{
	sim_pstore *s = ctx;
	return s->inner.ops->history(s->inner.ctx, kind, name, fn, arg);
}

static int ps_scan(void *ctx, const char *kind, cn_policy_bytes_fn fn, void *arg)
{
	sim_pstore *s = ctx;
	return s->inner.ops->scan(s->inner.ctx, kind, fn, arg);
}

static int ps_audit_scan(void *ctx, cn_policy_bytes_fn fn, void *arg)
{
	sim_pstore *s = ctx;
	return s->inner.ops->audit_scan(s->inner.ctx, fn, arg);
}

static int ps_meta_get(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
	sim_pstore *s = ctx;
	return s->inner.ops->meta_get(s->inner.ctx, key, buf, cap, len);
}

static sim_policy_ev *pev_add(sim_world *w)
{
	if (w->n_pev == w->cap_pev) {
		uint32_t cap = w->cap_pev ? 2 * w->cap_pev : 256;
		sim_policy_ev *v = realloc(w->pev, cap * sizeof *v);
		if (v == NULL) {
			sim_world_fail(w, "out of memory for policy events");
			return NULL;
		}
		w->pev = v;
		w->cap_pev = cap;
	}
	sim_policy_ev *e = &w->pev[w->n_pev++];
	memset(e, 0, sizeof *e);
	return e;
}

static int ps_commit(void *ctx, const cn_policy_commit *c)
{
	sim_pstore *s = ctx;
	int rc = s->inner.ops->commit(s->inner.ctx, c);
	if (rc != 0)
		return rc;
	sim_world *w = s->w;
	if (c->erase_kind != NULL && c->n_puts == 0) {
		sim_policy_ev *e = pev_add(w);
		if (e != NULL) {
			e->node = s->node;
			e->erase = true;
			snprintf(e->kind, sizeof e->kind, "%s", c->erase_kind);
			snprintf(e->name, sizeof e->name, "%s", c->erase_name);
		}
	}
	for (size_t k = 0; k < c->n_puts; k++) {
		const cn_policy_put *pu = &c->puts[k];
		sim_policy_ev *e = pev_add(w);
		if (e == NULL)
			break;
		e->node = s->node;
		e->local = w->in_local_write;
		e->version = pu->version;
		snprintf(e->kind, sizeof e->kind, "%s", pu->kind);
		snprintf(e->name, sizeof e->name, "%s", pu->name);
		snprintf(e->writer, sizeof e->writer, "%s", pu->writer);
		memcpy(e->hash, pu->hash, sizeof e->hash);
	}
	return 0;
}

static const cn_policy_store_ops pstore_ops = {
	.latest = ps_latest, .history = ps_history, .scan = ps_scan,
	.audit_scan = ps_audit_scan, .meta_get = ps_meta_get, .commit = ps_commit,
};

/* Hand the queued commits to the probes. */
static void pev_flush(sim_world *w)
{
	for (uint32_t k = 0; k < w->n_pev; k++) {
		const sim_policy_ev *e = &w->pev[k];
		trace(w, 0x90e7, e->node, e->version);
		for (uint32_t p = 0; p < w->n_probes; p++)
			if (w->probes[p].ops->on_policy)
				w->probes[p].ops->on_policy(w->probes[p].st, w, e);
	}
	w->n_pev = 0;
}

static uint64_t wall_ms(sim_world *w, uint32_t i)
{
	return (uint64_t)((int64_t)local_ms(w, i) + SIM_POLICY_EPOCH_MS);
}

/* Open node i's replica (empty, or what its store kept with persist) and
 * attach it to the node. */
static void policy_open(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	if (n->pmem == NULL)
		n->pmem = cn_policy_mem_new();
	if (n->pst == NULL)
		n->pst = calloc(1, sizeof *n->pst);
	if (n->pmem == NULL || n->pst == NULL) {
		sim_world_fail(w, "out of memory for n%u's policy replica", i);
		return;
	}
	n->pst->w = w;
	n->pst->node = i;
	n->pst->inner = cn_policy_mem_store(n->pmem);
	cn_policy_store store = {.ops = &pstore_ops, .ctx = n->pst};
	cn_policy_config cfg;
	char name[16];
	snprintf(name, sizeof name, "n%u", i);
	cn_policy_config_default(&cfg, name);
	cfg.history_max = 1; /* one encoded copy per name: 1,000 replicas in one process */
	cn_trust roots;
	cn_trust_init(&roots);
	char why[CN_POLICY_WHY_MAX] = "";
	int rc = cn_trust_add_root(&roots, cn_sigkey_public(&w->root));
	if (rc == 0)
		rc = cn_policy_open(&cfg, store, &roots, wall_ms(w, i), &n->pol, why, sizeof why);
	cn_trust_free(&roots);
	if (rc == 0)
		rc = cn_node_attach_policy(n->node, n->pol, local_ms(w, i));
	if (rc != 0) {
		sim_world_fail(w, "policy replica of n%u: %s %s", i, cn_strerror(rc), why);
		return;
	}
	cn_node_policy_wall_offset(n->node, SIM_POLICY_EPOCH_MS);
}

/* After the node is freed (it held the psync that borrowed the replica). */
static void policy_close(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	cn_policy_free(n->pol);
	n->pol = NULL;
	if (!w->sc->policy.persist) {
		cn_policy_mem_free(n->pmem); /* a crash wipes it: the restart is empty */
		n->pmem = NULL;
	}
}

static void schedule_tick(sim_world *w, uint32_t i, uint64_t at_us)
{
	sim_node *n = &w->nodes[i];
	if (at_us >= n->tick_at_us)
		return; /* an earlier tick is pending; it will reschedule */
	n->tick_at_us = at_us;
	sim_ev ev = {.at_us = at_us, .kind = EV_TICK, .node = i, .life = n->life};
	push(w, &ev);
}

static void drain(sim_world *w, uint32_t i);

/* Converged start. The reply a seed `src` would give to a join once the
 * whole initial fleet had joined: every initial node alive at incarnation 1
 * (its first life's) with its metadata (`all`), or only the seed itself.
 * Built with the wire encoder the core uses, so the node merges it through
 * its ordinary push-pull path (cn_node_stream_result). */
static int warm_reply(sim_world *w, uint32_t src, bool all, uint8_t **out, size_t *len)
{
	cn_pushpull pp;
	memset(&pp, 0, sizeof pp);
	snprintf(pp.source, sizeof pp.source, "n%u", src);
	uint32_t count = all ? w->n_init : 1;
	cn_member_wire *m = calloc(1, sizeof *m);
	if (m == NULL)
		return CN_ENOMEM;
	for (size_t cap = 4096 + (size_t)count * 160;; cap *= 2) { /* a few rounds */
		uint8_t *buf = malloc(cap);
		if (buf == NULL)
			break;
		cn_mp_writer wr;
		cn_mp_writer_init(&wr, buf, cap);
		cn_pushpull_encode_begin(&wr, CN_MSG_PUSH_PULL_REPLY, &pp, count);
		for (uint32_t k = 0; k < count && !wr.overflow; k++) {
			uint32_t i = all ? k : src;
			snprintf(m->name, sizeof m->name, "n%u", i);
			node_addr(i, &m->addr);
			m->incarnation = 1;
			m->state = CN_STATE_ALIVE;
			m->meta_version = 0;
			build_meta(w, i, &m->meta);
			m->vmin = CN_PROTO_VERSION_MIN;
			m->vmax = CN_PROTO_VERSION_MAX;
			cn_pushpull_encode_member(&wr, m);
		}
		if (cn_mp_writer_end(&wr, len) == 0) {
			free(m);
			*out = buf;
			return 0;
		}
		free(buf);
		if (cap > CN_STREAM_MAX)
			break;
	}
	free(m);
	return CN_ENOSPACE;
}

/* Answer the join streams node i just asked for (held by drain while
 * w->warming): the first with the full view, the others with their seed
 * alone, merged quietly (cn_node_set_quiet_bulk): every node starts with
 * the same view, so nothing is gossiped and the push-pull timers run as
 * after any join. */
static void warm_answer(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	cn_node_set_quiet_bulk(n->node, true);
	for (uint32_t k = 0; k < w->n_warm && !w->failed; k++) {
		uint32_t t = w->warm_to[k];
		uint8_t **buf = k == 0 ? &w->warm_full[t] : &w->warm_one[t];
		size_t *len = k == 0 ? &w->warm_full_len[t] : &w->warm_one_len[t];
		if (*buf == NULL && warm_reply(w, t, k == 0, buf, len) != 0) {
			sim_world_fail(w, "cannot encode the converged-start view");
			break;
		}
		trace(w, 0x3a53, (uint64_t)i << 32 | t, *len);
		int rc = cn_node_stream_result(n->node, w->warm_id[k], *buf, *len, local_ms(w, i));
		if (rc != 0)
			sim_world_fail(w, "n%u: converged-start view refused: %s", i, cn_strerror(rc));
	}
	cn_node_set_quiet_bulk(n->node, false);
	w->n_warm = 0;
}

static void node_start(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	assert(n->status != ST_UP);
	cn_node_config cfg = w->sc->node;
	snprintf(cfg.name, sizeof cfg.name, "n%u", i);
	node_addr(i, &cfg.addr);
	cfg.incarnation = n->disk_inc + 1; /* above any incarnation used before */
	n->disk_inc = cfg.incarnation;
	build_meta(w, i, &cfg.meta);
	n->life++;
	uint64_t seed = cn_mix64(w->seed ^ cn_mix64((uint64_t)i << 20 ^ n->life));
	int rc = cn_node_new(&cfg, w->pool, seed, local_ms(w, i), &n->node);
	if (rc != 0) {
		sim_world_fail(w, "cn_node_new(n%u): %s", i, cn_strerror(rc));
		return;
	}
	n->status = ST_UP;
	n->leaving = false;
	n->tick_at_us = UINT64_MAX;
	n->up_since_us = w->now_us;
	if (i >= w->n_used)
		w->n_used = i + 1;
	w->live++;
	if (w->sc->policy.enabled)
		policy_open(w, i);
	trace(w, 0x57a7, i, cfg.incarnation);
	fact_node(w, FACT_UP, i);
	rc = cn_node_join(n->node, w->seeds, w->n_seeds, local_ms(w, i));
	assert(rc == 0);
	/* Converged start: the initial fleet at t=0, first lives only. */
	bool warm = w->sc->start_converged && i < w->n_init && n->life == 1 && w->now_us == 0;
	w->warming = warm;
	w->n_warm = 0;
	drain(w, i);
	w->warming = false;
	if (warm) {
		warm_answer(w, i);
		drain(w, i);
	}
}

static void node_stop(sim_world *w, uint32_t i, uint8_t status)
{
	sim_node *n = &w->nodes[i];
	assert(n->status == ST_UP);
	if (!n->leaving)
		w->live--;
	n->msgs_retired += cn_node_stats_get(n->node)->msgs_out;
	const cn_psync_stats *ps = cn_node_psync_stats(n->node);
	if (ps != NULL) {
		uint64_t *d = (uint64_t *)&w->psync_gone;
		const uint64_t *x = (const uint64_t *)ps;
		for (size_t k = 0; k < sizeof *ps / sizeof *x; k++)
			d[k] += x[k];
	}
	cn_node_free(n->node);
	n->node = NULL;
	if (n->pol != NULL)
		policy_close(w, i);
	n->status = status;
	n->tick_at_us = UINT64_MAX;
	n->pause_until_us = 0;
	n->up_us += w->now_us - n->up_since_us;
	trace(w, 0x5709, i, status);
	fact_node(w, status == ST_DOWN ? FACT_DOWN : FACT_GONE, i);
}

uint64_t sim_node_msgs_out(const sim_world *w, uint32_t i)
{
	const sim_node *n = &w->nodes[i];
	return n->msgs_retired + (n->node ? cn_node_stats_get(n->node)->msgs_out : 0);
}

double sim_world_node_seconds(const sim_world *w)
{
	double s = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		const sim_node *n = &w->nodes[i];
		s += (double)(n->up_us + (n->status == ST_UP ? w->now_us - n->up_since_us : 0));
	}
	return s / 1e6;
}

uint64_t sim_world_pushpull_us(const sim_world *w, uint32_t n)
{
	/* node.c: base * (ceil(log2 N - log2 32) + 1) above 32 members. */
	uint64_t pp = w->sc->node.pushpull_interval_ms;
	if (n > 32)
		pp *= (uint64_t)(ceil(log2((double)n) - 5.0) + 1.0);
	return pp * US_PER_MS;
}

uint64_t sim_world_policy_settle_us(const sim_world *w)
{
	if (w->sc->policy.settle_us > 0)
		return w->sc->policy.settle_us;
	return 3ull * w->sc->node.reconnect_interval_ms * US_PER_MS +
	       sim_world_pushpull_us(w, w->live > 2 ? w->live : 2);
}

uint64_t sim_world_heal_bound_us(const sim_world *w)
{
	/* After a heal: a reconnect attempt within one or two reconnect
	 * intervals per node, push-pull exchanges, suspicion windows for the
	 * refutations, and dissemination; three of each is the bound. */
	const cn_node_config *c = &w->sc->node;
	uint32_t n = w->live > 2 ? w->live : 2;
	uint64_t pp = sim_world_pushpull_us(w, n) / US_PER_MS;
	uint64_t smin = cn_suspicion_min_ms(c->suspicion_mult, n, c->probe_interval_ms);
	uint64_t smax = c->lifeguard ? smin * c->suspicion_max_mult : smin;
	uint64_t ms = 3ull * c->reconnect_interval_ms + pp + 2 * smax + 10ull * c->probe_interval_ms;
	return ms * US_PER_MS;
}

/* ------------------------------------------------------------------ */
/* Outputs                                                              */

static void probes_datagram(sim_world *w, uint32_t from, uint32_t to, size_t len, uint8_t fate)
{
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_datagram)
			w->probes[p].ops->on_datagram(w->probes[p].st, w, from, to, len, fate);
}

static void send_datagram(sim_world *w, uint32_t from, const cn_out *o)
{
	sim_node *s = &w->nodes[from];
	uint32_t to = addr_index(w, &o->to);
	uint64_t h = hash_bytes(o->data, o->len);
	uint8_t fate = FATE_SENT;
	uint64_t depart = w->now_us;
	w->dgrams_sent++;
	if (to == UINT32_MAX) {
		fate = FATE_NOADDR;
	} else if (s->bandwidth > 0) {
		/* Egress queue: the packet leaves when the link is free; beyond
		 * queue_bytes of backlog it is dropped. */
		uint64_t start = s->tx_free_us > depart ? s->tx_free_us : depart;
		uint64_t backlog = (start - depart) * s->bandwidth / 1000000;
		if (backlog + o->len > s->queue_bytes) {
			fate = FATE_BANDWIDTH;
		} else {
			s->tx_free_us = start + (uint64_t)o->len * 1000000 / s->bandwidth;
			depart = s->tx_free_us;
		}
	}
	if (fate == FATE_SENT && !net_path_open(w, from, to))
		fate = FATE_PARTITION;
	if (fate == FATE_SENT && w->net.loss > 0 && cn_rng_unit(&s->rng) < w->net.loss)
		fate = FATE_LOSS;
	trace(w, (uint64_t)from << 32 | (to & 0xffffffffu), h, (uint64_t)fate << 32 | o->len);
	probes_datagram(w, from, to, o->len, fate);
	if (fate != FATE_SENT)
		return;
	int copies = w->net.duplicate > 0 && cn_rng_unit(&s->rng) < w->net.duplicate ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		uint8_t *d = malloc(o->len ? o->len : 1);
		if (d == NULL) {
			sim_world_fail(w, "out of memory for a datagram");
			return;
		}
		memcpy(d, o->data, o->len);
		sim_ev ev = {.at_us = depart + net_delay_us(w, from, to), .kind = EV_DGRAM,
			     .node = to, .from = from, .len = (uint32_t)o->len, .data = d};
		push(w, &ev);
	}
}

static void stream_fail_at(sim_world *w, uint32_t requester, uint32_t life, uint32_t id,
			   uint64_t at_us)
{
	w->stream_failures++;
	sim_ev ev = {.at_us = at_us, .kind = EV_STREAM_FAIL, .node = requester, .life = life,
		     .arg = id};
	push(w, &ev);
}

static void send_stream(sim_world *w, uint32_t from, const cn_out *o)
{
	uint32_t to = addr_index(w, &o->to);
	w->streams++;
	trace(w, 0x57e4, (uint64_t)from << 32 | (to & 0xffffffffu), o->len);
	uint32_t life = w->nodes[from].life;
	if (to == UINT32_MAX || !net_path_open(w, from, to)) {
		/* Connection attempt times out (a refused connection would be
		 * faster; a partition gives no answer at all). */
		stream_fail_at(w, from, life, o->stream_id, w->now_us + w->net.stream_timeout_us);
		return;
	}
	uint8_t *d = malloc(o->len ? o->len : 1);
	if (d == NULL) {
		sim_world_fail(w, "out of memory for a stream request");
		return;
	}
	memcpy(d, o->data, o->len);
	sim_ev ev = {.at_us = w->now_us + 2 * net_delay_us(w, from, to), /* connect + send */
		     .kind = EV_STREAM_REQ, .node = to, .from = from, .life = life,
		     .arg = o->stream_id, .len = (uint32_t)o->len, .data = d};
	push(w, &ev);
}

static void probes_event(sim_world *w, uint32_t i, const cn_event *e)
{
	uint32_t m = sim_name_index(w, e->name);
	trace(w, (uint64_t)e->type << 32 | i, m, e->incarnation);
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_event)
			w->probes[p].ops->on_event(w->probes[p].st, w, i, m, e);
}

/* Take every output of node i, then schedule its next tick. */
static void drain(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	if (n->status != ST_UP)
		return;
	cn_out o;
	/* Bounded by the outbox bound (CN_OUTBOX_MAX): the node adds nothing
	 * while we drain. */
	for (uint32_t k = 0; k < (1u << 20) && cn_node_next_output(n->node, &o) == 0; k++) {
		switch (o.kind) {
		case CN_OUT_DATAGRAM: send_datagram(w, i, &o); break;
		case CN_OUT_STREAM:
			if (w->warming) { /* a join of the converged start: answered here */
				uint32_t t = addr_index(w, &o.to);
				if (w->n_warm < 16 && t < w->n_seeds) {
					w->warm_id[w->n_warm] = o.stream_id;
					w->warm_to[w->n_warm++] = t;
				}
				break;
			}
			send_stream(w, i, &o);
			break;
		case CN_OUT_EVENT:
			if (o.event.type == CN_EV_SELF_INCARNATION && o.event.incarnation > n->disk_inc)
				n->disk_inc = o.event.incarnation; /* the "disk" write */
			probes_event(w, i, &o.event);
			break;
		default: break;
		}
	}
	if (w->n_pev > 0)
		pev_flush(w);
	uint64_t dropped = cn_node_stats_get(n->node)->outputs_dropped;
	if (dropped > w->outputs_dropped) {
		/* The outbox overflowed (a big push-pull merge): events were
		 * lost, so the probes rebuild their view of this node. */
		w->outputs_dropped = dropped;
		w->resyncs++;
		for (uint32_t p = 0; p < w->n_probes; p++)
			if (w->probes[p].ops->on_resync)
				w->probes[p].ops->on_resync(w->probes[p].st, w, i);
	}
	if (n->leaving && cn_node_leave_done(n->node)) {
		node_stop(w, i, ST_GONE);
		return;
	}
	schedule_tick(w, i, virtual_us_of(w, i, cn_node_deadline(n->node)));
}

/* ------------------------------------------------------------------ */
/* Event handlers                                                       */

/* A paused node handles nothing until the pause ends; events keep their
 * order because they are re-queued in the order they come due. */
static bool defer_if_paused(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	if (w->now_us >= n->pause_until_us)
		return false;
	if (ev->kind == EV_TICK)
		n->tick_at_us = n->pause_until_us;
	ev->at_us = n->pause_until_us;
	push(w, ev);
	return true;
}

/* A slow node's inbox is processed late: delay + jitter, FIFO. */
static bool defer_if_slow(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	if (!n->slowed || (ev->flags & EVF_SLOWED))
		return false;
	if (w->now_us >= n->slow_until_us) {
		n->slowed = 0;
		return false;
	}
	uint64_t j = n->slow_jitter_us ? cn_rng_below(&n->rng, n->slow_jitter_us) : 0;
	uint64_t at = w->now_us + n->slow_delay_us + j;
	if (at < n->slow_last_us)
		at = n->slow_last_us;
	n->slow_last_us = at;
	ev->at_us = at;
	ev->flags |= EVF_SLOWED;
	push(w, ev);
	return true;
}

static void on_tick(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	if (n->status != ST_UP || ev->life != n->life || ev->at_us != n->tick_at_us)
		return; /* stale */
	if (defer_if_paused(w, ev))
		return;
	n->tick_at_us = UINT64_MAX;
	uint64_t now = local_ms(w, ev->node);
	cn_node_tick(n->node, now);
	drain(w, ev->node);
	/* Time must move after a tick: the node's clock is in milliseconds. */
	if (n->status == ST_UP && n->tick_at_us <= w->now_us) {
		n->tick_at_us = UINT64_MAX;
		schedule_tick(w, ev->node, w->now_us + US_PER_MS);
	}
}

static void on_dgram(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	if (n->status != ST_UP) {
		free(ev->data);
		return; /* nobody listens at that address */
	}
	if (defer_if_paused(w, ev) || defer_if_slow(w, ev))
		return;
	cn_addr from;
	node_addr(ev->from, &from);
	trace(w, 0xde11, (uint64_t)ev->from << 32 | ev->node, ev->len);
	(void)cn_node_recv(n->node, &from, ev->data, ev->len, local_ms(w, ev->node));
	free(ev->data);
	drain(w, ev->node);
}

static void on_stream_req(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	sim_node *r = &w->nodes[ev->from];
	if (r->status != ST_UP || r->life != ev->life) {
		free(ev->data); /* the requester is gone: nobody reads the reply */
		return;
	}
	if (n->status != ST_UP) {
		free(ev->data); /* connection refused: fast failure */
		stream_fail_at(w, ev->from, ev->life, ev->arg,
			       w->now_us + net_delay_us(w, ev->node, ev->from));
		return;
	}
	if (defer_if_paused(w, ev) || defer_if_slow(w, ev))
		return;
	cn_addr from;
	node_addr(ev->from, &from);
	const uint8_t *reply = NULL;
	size_t rlen = 0;
	int rc = cn_node_stream_serve(n->node, &from, ev->data, ev->len, local_ms(w, ev->node),
				      &reply, &rlen);
	free(ev->data);
	uint8_t *copy = NULL;
	if (rc == 0) {
		copy = malloc(rlen ? rlen : 1); /* the reply dies at the next call */
		if (copy != NULL)
			memcpy(copy, reply, rlen);
	}
	trace(w, 0x5e4e, (uint64_t)ev->node << 32 | ev->from, rc == 0 ? hash_bytes(copy, rlen) : 0);
	drain(w, ev->node);
	if (copy == NULL || !net_path_open(w, ev->node, ev->from)) {
		free(copy);
		stream_fail_at(w, ev->from, ev->life, ev->arg, w->now_us + w->net.stream_timeout_us);
		return;
	}
	uint64_t at = w->now_us + net_delay_us(w, ev->node, ev->from);
	if (n->bandwidth > 0)
		at += rlen * 1000000 / n->bandwidth;
	sim_ev rep = {.at_us = at, .kind = EV_STREAM_REPLY, .node = ev->from, .from = ev->node,
		      .life = ev->life, .arg = ev->arg, .len = (uint32_t)rlen, .data = copy};
	push(w, &rep);
}

static void on_stream_done(sim_world *w, sim_ev *ev)
{
	sim_node *n = &w->nodes[ev->node];
	if (n->status != ST_UP || n->life != ev->life) {
		free(ev->data);
		return;
	}
	if (defer_if_paused(w, ev) || (ev->kind == EV_STREAM_REPLY && defer_if_slow(w, ev)))
		return;
	trace(w, 0xd0e, (uint64_t)ev->node << 32 | ev->arg, ev->data ? ev->len : UINT32_MAX);
	(void)cn_node_stream_result(n->node, ev->arg, ev->data, ev->len, local_ms(w, ev->node));
	free(ev->data);
	drain(w, ev->node);
}

static void on_sample(sim_world *w)
{
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_sample)
			w->probes[p].ops->on_sample(w->probes[p].st, w);
	if (!w->quiet && w->now_us % (10 * w->sc->sample_us) == 0)
		fprintf(stderr, "canopy-sim: t=%.0fs live=%u events=%llu heap=%zu\n",
			(double)w->now_us / 1e6, w->live, (unsigned long long)w->events,
			w->heap.count);
	sim_ev ev = {.at_us = w->now_us + w->sc->sample_us, .kind = EV_SAMPLE};
	if (ev.at_us <= w->end_us)
		push(w, &ev);
}

/* ------------------------------------------------------------------ */
/* Timeline actions                                                     */

/* Resolve a node set to a membership bitmap over all slots (calloc'd). */
static uint8_t *sel_resolve(sim_world *w, const sim_sel *s)
{
	uint8_t *m = calloc(w->cap, 1);
	if (m == NULL)
		return NULL;
	uint32_t n = w->n_used; /* nodes that exist or existed */
	uint32_t count = (uint32_t)(s->fraction ? floor(s->count * n + 0.5) : s->count);
	if (count > n)
		count = n;
	switch (s->kind) {
	case SEL_ALL:
		memset(m, 1, n);
		break;
	case SEL_LIVE:
		for (uint32_t i = 0; i < n; i++)
			m[i] = sim_node_live(w, i);
		break;
	case SEL_CRASHED:
		for (uint32_t i = 0; i < n; i++)
			m[i] = w->nodes[i].status == ST_DOWN;
		break;
	case SEL_IDS:
		for (uint32_t k = 0; k < s->n_ids; k++)
			if (s->ids[k] < w->cap)
				m[s->ids[k]] = 1;
		break;
	case SEL_RANGE:
		for (uint32_t i = s->lo; i < s->hi && i < w->cap; i++)
			m[i] = 1;
		break;
	case SEL_FIRST:
		memset(m, 1, count);
		break;
	case SEL_LAST:
		memset(m + (n - count), 1, count);
		break;
	case SEL_RANDOM: {
		/* count distinct live nodes, partial Fisher-Yates over live ones. */
		uint32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
		uint32_t k = 0;
		if (ids == NULL) {
			free(m);
			return NULL;
		}
		for (uint32_t i = 0; i < n; i++)
			if (sim_node_live(w, i))
				ids[k++] = i;
		for (uint32_t j = 0; j < count && j < k; j++) {
			uint32_t r = j + (uint32_t)cn_rng_below(&w->rng, k - j);
			uint32_t t = ids[j];
			ids[j] = ids[r];
			ids[r] = t;
			m[ids[j]] = 1;
		}
		free(ids);
		break;
	}
	case SEL_LABEL:
		for (uint32_t i = 0; i < n; i++) {
			char v[16];
			snprintf(v, sizeof v, "s%u", w->nodes[i].site);
			m[i] = !strcmp(s->key, "site") && !strcmp(s->value, v);
		}
		break;
	default:
		break;
	}
	return m;
}

static void touch(sim_world *w, const uint8_t *set, uint64_t value)
{
	for (uint32_t i = 0; i < w->cap; i++)
		if (set == NULL || set[i])
			w->nodes[i].net_touch_us = value;
}

static void heal(sim_world *w)
{
	for (uint32_t i = 0; i < w->cap; i++) {
		if (w->nodes[i].group != 0 || w->nodes[i].net_touch_us == UINT64_MAX)
			w->nodes[i].net_touch_us = w->now_us;
		w->nodes[i].group = 0;
	}
	for (uint32_t k = 0; k < w->n_rules; k++) {
		free(w->rules[k].a);
		free(w->rules[k].b);
	}
	w->n_rules = 0;
	w->partitioned = false;
	fact_node(w, FACT_NET, 0);
}

static void act_partition(sim_world *w, const sim_action *a)
{
	for (uint32_t s = 0; s < a->n_sets; s++) {
		uint8_t *m = sel_resolve(w, &a->sets[s]);
		if (m == NULL)
			{ sim_world_fail(w, "out of memory"); return; }
		for (uint32_t i = 0; i < w->cap; i++)
			if (m[i])
				w->nodes[i].group = (uint16_t)(s + 1);
		free(m);
	}
	w->partitioned = true;
	touch(w, NULL, UINT64_MAX); /* everyone is on one side or the other */
	fact_node(w, FACT_NET, 0);
	if (a->for_us > 0) {
		sim_ev ev = {.at_us = w->now_us + a->for_us, .kind = EV_HEAL};
		push(w, &ev);
	}
}

static void act_rule(sim_world *w, const sim_action *a, bool flap)
{
	if (w->n_rules == SIM_RULES_MAX)
		{ sim_world_fail(w, "more than %d block/flap rules active", SIM_RULES_MAX); return; }
	sim_rule *r = &w->rules[w->n_rules];
	r->a = sel_resolve(w, &a->sets[0]);
	r->b = sel_resolve(w, &a->sets[1]);
	if (r->a == NULL || r->b == NULL) {
		free(r->a);
		free(r->b);
		{ sim_world_fail(w, "out of memory"); return; }
	}
	r->flap = flap;
	r->start_us = w->now_us;
	r->period_us = a->period_us;
	r->down_us = a->down_us;
	r->until_us = a->for_us ? w->now_us + a->for_us : UINT64_MAX;
	w->n_rules++;
	touch(w, r->a, UINT64_MAX);
	touch(w, r->b, UINT64_MAX);
	fact_node(w, FACT_NET, 0);
	if (a->for_us > 0 && !flap) {
		sim_ev ev = {.at_us = w->now_us + a->for_us, .kind = EV_HEAL};
		push(w, &ev);
	}
}

static void crash(sim_world *w, uint32_t i)
{
	if (w->nodes[i].status == ST_UP)
		node_stop(w, i, ST_DOWN);
}

static void schedule_start(sim_world *w, uint32_t i, uint64_t at_us)
{
	sim_ev ev = {.at_us = at_us, .kind = EV_START, .node = i};
	push(w, &ev);
}

static void for_each(sim_world *w, const sim_sel *s, void (*fn)(sim_world *, uint32_t, const sim_action *),
		     const sim_action *a)
{
	uint8_t *m = sel_resolve(w, s);
	if (m == NULL)
		{ sim_world_fail(w, "out of memory"); return; }
	for (uint32_t i = 0; i < w->cap && !w->failed; i++)
		if (m[i])
			fn(w, i, a);
	free(m);
}

static void do_crash(sim_world *w, uint32_t i, const sim_action *a)
{
	(void)a;
	crash(w, i);
}

static void do_restart(sim_world *w, uint32_t i, const sim_action *a)
{
	if (w->nodes[i].status != ST_DOWN)
		return;
	uint64_t spread = a->over_us ? cn_rng_below(&w->rng, a->over_us) : 0;
	schedule_start(w, i, w->now_us + spread);
}

static void do_mass_restart(sim_world *w, uint32_t i, const sim_action *a)
{
	if (w->nodes[i].status != ST_UP)
		return;
	crash(w, i);
	uint64_t spread = a->over_us ? cn_rng_below(&w->rng, a->over_us) : 0;
	schedule_start(w, i, w->now_us + a->down_us + spread);
}

static void do_pause(sim_world *w, uint32_t i, const sim_action *a)
{
	if (w->nodes[i].status == ST_UP)
		w->nodes[i].pause_until_us = w->now_us + a->for_us;
}

static void do_slow(sim_world *w, uint32_t i, const sim_action *a)
{
	sim_node *n = &w->nodes[i];
	n->slowed = 1;
	n->slow_until_us = a->for_us ? w->now_us + a->for_us : UINT64_MAX;
	n->slow_delay_us = (uint32_t)a->delay_us;
	n->slow_jitter_us = (uint32_t)a->jitter_us;
}

static void do_skew(sim_world *w, uint32_t i, const sim_action *a)
{
	w->nodes[i].skew_ms = a->offset_ms;
	w->nodes[i].drift_ppm = a->drift_ppm;
}

static void do_leave(sim_world *w, uint32_t i, const sim_action *a)
{
	(void)a;
	sim_node *n = &w->nodes[i];
	if (n->status != ST_UP || n->leaving)
		return;
	n->leaving = true;
	w->live--;
	fact_node(w, FACT_LEAVE, i);
	(void)cn_node_leave(n->node, local_ms(w, i));
	sim_ev ev = {.at_us = w->now_us + LEAVE_TIMEOUT_US, .kind = EV_LEAVE_TIMEOUT, .node = i,
		     .life = n->life};
	push(w, &ev);
	drain(w, i);
}

static void do_bandwidth(sim_world *w, uint32_t i, const sim_action *a)
{
	w->nodes[i].bandwidth = a->bandwidth;
	if (a->queue_bytes)
		w->nodes[i].queue_bytes = a->queue_bytes;
}

static void act_join(sim_world *w, const sim_action *a)
{
	for (uint32_t k = 0; k < a->count; k++) {
		uint32_t i = w->n_used;
		if (i >= w->cap)
			{ sim_world_fail(w, "join beyond the node slots planned (%u)", w->cap); return; }
		w->n_used++; /* reserve the slot now; it starts later */
		uint64_t spread = a->over_us ? cn_rng_below(&w->rng, a->over_us) : 0;
		schedule_start(w, i, w->now_us + spread);
	}
}

static void act_net(sim_world *w, const sim_action *a)
{
	const sim_netcfg *s = &a->net;
	sim_netcfg *d = &w->net;
	uint32_t m = a->net_mask;
	if (m & NF_INTRA) d->intra_ms = s->intra_ms;
	if (m & NF_INTER) d->inter_lo_ms = s->inter_lo_ms, d->inter_hi_ms = s->inter_hi_ms;
	if (m & NF_SPREAD) d->link_spread_ms = s->link_spread_ms;
	if (m & NF_JITTER) d->jitter_ms = s->jitter_ms;
	if (m & NF_SIGMA) d->jitter_sigma = s->jitter_sigma;
	if (m & NF_LOSS) d->loss = s->loss;
	if (m & NF_DUP) d->duplicate = s->duplicate;
	if (m & NF_BW)
		for (uint32_t i = 0; i < w->cap; i++)
			w->nodes[i].bandwidth = s->bandwidth;
	if (m & NF_QUEUE)
		for (uint32_t i = 0; i < w->cap; i++)
			w->nodes[i].queue_bytes = s->queue_bytes;
	if (m & NF_STREAM_TIMEOUT) d->stream_timeout_us = s->stream_timeout_us;
	if (m & (NF_INTRA | NF_INTER))
		net_sites(w);
}

/* An operator write of config/<name> on node i: stamp, sign with the root
 * key, apply locally, announce (the sequence of tests/test_psync.c). */
static void policy_write(sim_world *w, uint32_t i, const char *name)
{
	sim_node *n = &w->nodes[i];
	char writer[16], why[CN_POLICY_WHY_MAX] = "";
	snprintf(writer, sizeof writer, "n%u", i);
	uint64_t wall = wall_ms(w, i), v = 0;
	uint8_t body[32];
	size_t blen = 0;
	cn_mp_writer mw;
	cn_mp_writer_init(&mw, body, sizeof body);
	cn_mp_put_map(&mw, 1);
	cn_mp_put_cstr(&mw, "v");
	cn_mp_put_uint(&mw, w->writes + w->writes_refused + 1);
	cn_doc d;
	int rc = cn_mp_writer_end(&mw, &blen);
	if (rc == 0)
		rc = cn_policy_stamp(n->pol, wall, &v);
	if (rc == 0)
		rc = cn_doc_init(&d, "config", name, v, writer, cn_sigkey_public(&w->root), false, body,
				 blen, why, sizeof why);
	if (rc != 0) {
		sim_world_fail(w, "write %s on n%u: %s %s", name, i, cn_strerror(rc), why);
		return;
	}
	uint8_t canon[CN_DOC_CANON_MAX];
	size_t clen = 0;
	(void)cn_doc_canonical(&d, canon, sizeof canon, &clen);
	cn_sigkey_sign(&w->root, canon, clen, d.sig);
	int outcome = 0;
	w->in_local_write = true;
	rc = cn_policy_apply_local(n->pol, &d, wall, &outcome, why, sizeof why);
	w->in_local_write = false;
	trace(w, 0x3217e, i, rc == 0 ? v : 0);
	if (rc != 0 || outcome != CN_POLICY_APPLIED) {
		w->writes_refused++; /* counted by the probe; not an invariant */
		drain(w, i);
		return;
	}
	w->writes++;
	sim_policy_ev e = {.node = i, .local = true, .version = v};
	snprintf(e.kind, sizeof e.kind, "%s", d.kind);
	snprintf(e.name, sizeof e.name, "%s", d.name);
	snprintf(e.writer, sizeof e.writer, "%s", d.writer);
	cn_doc_hash(&d, e.hash);
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_write)
			w->probes[p].ops->on_write(w->probes[p].st, w, &e);
	cn_node_policy_announce(n->node, &d, local_ms(w, i));
	drain(w, i);
}

/* A metadata change on node i: a label rev=<counter> beside site. */
static void meta_change(sim_world *w, uint32_t i)
{
	sim_node *n = &w->nodes[i];
	cn_meta m;
	build_meta(w, i, &m);
	uint64_t rev = ++w->meta_changes;
	/* Labels are sorted by key: rev before site. */
	m.labels[1] = m.labels[0];
	strcpy(m.labels[0].key, "rev");
	snprintf(m.labels[0].value, sizeof m.labels[0].value, "%llu", (unsigned long long)rev);
	m.n_labels = 2;
	int rc = cn_node_set_meta(n->node, &m, local_ms(w, i));
	trace(w, 0x3e7a, i, rev);
	if (rc != 0)
		return;
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->on_meta)
			w->probes[p].ops->on_meta(w->probes[p].st, w, i, rev);
	drain(w, i);
}

/* One write of timeline action idx on a random live node of its set. */
static void write_one(sim_world *w, uint32_t idx)
{
	const sim_action *a = &w->sc->actions[idx];
	uint8_t *m = a->n_sets ? sel_resolve(w, &a->sets[0]) : NULL;
	if (a->n_sets && m == NULL)
		{ sim_world_fail(w, "out of memory"); return; }
	uint32_t cand = 0, pick = 0, who = UINT32_MAX;
	for (int pass = 0; pass < 2 && who == UINT32_MAX; pass++) {
		for (uint32_t i = 0; i < w->n_used; i++) {
			if (!sim_node_live(w, i) || w->nodes[i].pol == NULL || (m && !m[i]) ||
			    (a->side >= 0 && w->nodes[i].group != (uint32_t)a->side))
				continue;
			if (pass == 0)
				cand++;
			else if (pick-- == 0)
				{ who = i; break; }
		}
		if (pass == 0 && cand == 0)
			break;
		if (pass == 0)
			pick = (uint32_t)cn_rng_below(&w->rng, cand);
	}
	free(m);
	uint32_t j = w->write_seq[idx]++;
	if (who == UINT32_MAX) {
		w->writes_refused++; /* no live writer in the set */
		return;
	}
	if (a->meta_only) {
		meta_change(w, who);
		return;
	}
	char name[SIM_WRITE_PREFIX_MAX + 16];
	if (a->prefix[0])
		snprintf(name, sizeof name, "%s-%u", a->prefix, a->names ? j % a->names : j);
	else
		snprintf(name, sizeof name, "w%u-%u", idx, a->names ? j % a->names : j);
	policy_write(w, who, name);
	if (a->meta && !w->failed && sim_node_live(w, who))
		meta_change(w, who);
}

static void write_next(sim_world *w, uint32_t idx)
{
	const sim_action *a = &w->sc->actions[idx];
	double u = cn_rng_unit(&w->rng);
	uint64_t gap = (uint64_t)(-log(1.0 - u) / a->rate * 1e6) + 1;
	sim_ev ev = {.at_us = w->now_us + gap, .kind = EV_WRITE_POISSON, .arg = idx};
	push(w, &ev);
}

static void act_write(sim_world *w, uint32_t idx)
{
	const sim_action *a = &w->sc->actions[idx];
	if (a->rate > 0) {
		write_next(w, idx);
		return;
	}
	for (uint32_t k = 0; k < a->count && !w->failed; k++) {
		if (a->over_us == 0) {
			write_one(w, idx);
			continue;
		}
		sim_ev ev = {.at_us = w->now_us + cn_rng_below(&w->rng, a->over_us), .kind = EV_WRITE,
			     .arg = idx};
		push(w, &ev);
	}
}

static void churn_next(sim_world *w, uint32_t idx)
{
	const sim_action *a = &w->sc->actions[idx];
	double u = cn_rng_unit(&w->rng);
	uint64_t gap = (uint64_t)(-log(1.0 - u) / a->rate * 1e6) + 1;
	sim_ev ev = {.at_us = w->now_us + gap, .kind = EV_CHURN, .arg = idx};
	push(w, &ev);
}

static const char *act_name(uint8_t t)
{
	static const char *names[] = {"?", "partition", "block", "heal", "flap", "crash",
				      "restart", "pause", "slow", "skew", "leave", "join",
				      "mass_restart", "churn", "net", "bandwidth", "write"};
	return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void run_action(sim_world *w, uint32_t idx)
{
	const sim_action *a = &w->sc->actions[idx];
	bool reality = false, healed = false;
	trace(w, 0xac7, idx, a->type);
	switch (a->type) {
	case ACT_PARTITION: act_partition(w, a); break;
	case ACT_BLOCK: act_rule(w, a, false); break;
	case ACT_FLAP: act_rule(w, a, true); break;
	case ACT_HEAL: heal(w); healed = true; break;
	case ACT_CRASH: for_each(w, &a->sets[0], do_crash, a); reality = true; break;
	case ACT_RESTART: for_each(w, &a->sets[0], do_restart, a); break;
	case ACT_MASS_RESTART: for_each(w, &a->sets[0], do_mass_restart, a); reality = true; break;
	case ACT_PAUSE: for_each(w, &a->sets[0], do_pause, a); break;
	case ACT_SLOW: for_each(w, &a->sets[0], do_slow, a); break;
	case ACT_SKEW: for_each(w, &a->sets[0], do_skew, a); break;
	case ACT_LEAVE: for_each(w, &a->sets[0], do_leave, a); reality = true; break;
	case ACT_BANDWIDTH: for_each(w, &a->sets[0], do_bandwidth, a); break;
	case ACT_JOIN: act_join(w, a); break;
	case ACT_NET: act_net(w, a); break;
	case ACT_CHURN: churn_next(w, idx); break;
	case ACT_WRITE: act_write(w, idx); break;
	default: break;
	}
	w->last_action_us = w->now_us;
	sim_fact f = {.kind = FACT_ACTION, .action = act_name(a->type), .reality = reality,
		      .heal = healed};
	fact(w, &f);
}

static void on_churn(sim_world *w, sim_ev *ev)
{
	const sim_action *a = &w->sc->actions[ev->arg];
	if (w->now_us >= a->at_us + a->for_us)
		return;
	sim_sel pool = a->n_sets ? a->sets[0] : (sim_sel){.kind = SEL_LIVE};
	uint8_t *m = sel_resolve(w, &pool);
	if (m == NULL)
		{ sim_world_fail(w, "out of memory"); return; }
	uint32_t cand = 0;
	for (uint32_t i = 0; i < w->n_used; i++)
		cand += m[i] && sim_node_live(w, i);
	if (cand > 0) {
		uint32_t pick = (uint32_t)cn_rng_below(&w->rng, cand);
		for (uint32_t i = 0; i < w->n_used; i++) {
			if (!(m[i] && sim_node_live(w, i)) || pick-- != 0)
				continue;
			crash(w, i);
			if (a->down_us > 0)
				schedule_start(w, i, w->now_us + a->down_us);
			break;
		}
		w->last_action_us = w->now_us;
		sim_fact f = {.kind = FACT_ACTION, .action = "churn", .reality = true};
		fact(w, &f);
	}
	free(m);
	churn_next(w, ev->arg);
}

/* ------------------------------------------------------------------ */
/* Setup and the loop                                                   */

int sim_world_new(sim_world *w, const sim_scenario *sc, bool quiet)
{
	memset(w, 0, sizeof *w);
	w->sc = sc;
	w->seed = sc->seed;
	w->quiet = quiet;
	w->n_init = sc->nodes;
	uint64_t cap = sc->nodes;
	for (uint32_t k = 0; k < sc->n_actions; k++)
		if (sc->actions[k].type == ACT_JOIN)
			cap += sc->actions[k].count;
	if (cap > SIM_NODES_MAX || cap > (1u << 24)) {
		fprintf(stderr, "canopy-sim: %llu nodes: at most %u\n", (unsigned long long)cap,
			SIM_NODES_MAX);
		return CN_EINVAL;
	}
	w->cap = (uint32_t)cap;
	w->end_us = sc->duration_us;
	w->net = sc->net;
	cn_rng_seed(&w->rng, cn_mix64(sc->seed ^ 0xfa017ull));
	w->nodes = calloc(w->cap, sizeof *w->nodes);
	w->write_seq = calloc((size_t)sc->n_actions + 1, sizeof *w->write_seq);
	if (w->nodes == NULL || w->write_seq == NULL || cn_pool_new(&w->pool) != 0)
		return CN_ENOMEM;
	if (sc->policy.enabled) {
		/* A fixed operator root key (not the scenario seed: the same
		 * documents sign the same way in every run). */
		uint8_t kseed[CN_SIGKEY_SEED_BYTES];
		memset(kseed, 0x5e, sizeof kseed);
		if (cn_sigkey_from_seed(&w->root, kseed) != 0)
			return CN_EINVAL;
	}
	sim_heap_init(&w->heap);
	net_sites(w);
	for (uint32_t i = 0; i < w->cap; i++) {
		sim_node *n = &w->nodes[i];
		n->site = (uint8_t)(i % w->net.sites);
		n->tick_at_us = UINT64_MAX;
		n->bandwidth = w->net.bandwidth;
		n->queue_bytes = w->net.queue_bytes;
		cn_rng_seed(&n->rng, cn_mix64(sc->seed ^ cn_mix64(0x6e6574ull << 32 | i)));
	}
	w->n_seeds = sc->seeds < sc->nodes ? sc->seeds : sc->nodes;
	for (uint32_t s = 0; s < w->n_seeds; s++)
		node_addr(s, &w->seeds[s]);
	for (size_t p = 0; p < sim_probes_count && p < SIM_PROBES_MAX; p++) {
		w->probes[p].ops = sim_probes[p];
		if (sim_probes[p]->init && sim_probes[p]->init(w, &w->probes[p].st) != 0)
			return CN_ENOMEM;
		w->n_probes++;
	}
	/* Initial starts: seeds at 0, everyone else spread over start_spread
	 * (converged start: everyone at 0, already knowing each other). */
	for (uint32_t i = 0; i < sc->nodes; i++) {
		uint64_t at = i < w->n_seeds || sc->start_spread_us == 0 || sc->start_converged
				      ? 0 : cn_rng_below(&w->rng, sc->start_spread_us);
		schedule_start(w, i, at);
	}
	w->n_used = sc->nodes;
	for (uint32_t k = 0; k < sc->n_actions; k++) {
		sim_ev ev = {.at_us = sc->actions[k].at_us, .kind = EV_ACTION, .arg = k};
		push(w, &ev);
	}
	sim_ev ev = {.at_us = sc->sample_us, .kind = EV_SAMPLE};
	push(w, &ev);
	return w->failed ? CN_ENOMEM : 0;
}

static void dispatch(sim_world *w, sim_ev *ev)
{
	switch (ev->kind) {
	case EV_TICK: on_tick(w, ev); break;
	case EV_DGRAM: on_dgram(w, ev); break;
	case EV_STREAM_REQ: on_stream_req(w, ev); break;
	case EV_STREAM_REPLY:
	case EV_STREAM_FAIL: on_stream_done(w, ev); break;
	case EV_ACTION: run_action(w, ev->arg); break;
	case EV_START:
		if (w->nodes[ev->node].status != ST_UP)
			node_start(w, ev->node);
		break;
	case EV_SAMPLE: on_sample(w); break;
	case EV_CHURN: on_churn(w, ev); break;
	case EV_WRITE: write_one(w, ev->arg); break;
	case EV_WRITE_POISSON: {
		const sim_action *a = &w->sc->actions[ev->arg];
		if (w->now_us < a->at_us + a->for_us) {
			write_one(w, ev->arg);
			write_next(w, ev->arg);
		}
		break;
	}
	case EV_HEAL: {
		heal(w);
		w->last_action_us = w->now_us;
		sim_fact f = {.kind = FACT_ACTION, .action = "heal", .heal = true};
		fact(w, &f);
		break;
	}
	case EV_LEAVE_TIMEOUT:
		if (w->nodes[ev->node].status == ST_UP && w->nodes[ev->node].life == ev->life)
			node_stop(w, ev->node, ST_GONE);
		break;
	default: free(ev->data); break;
	}
}

int sim_world_run(sim_world *w)
{
	sim_ev ev;
	/* Bounded: every event is at or before end_us, and each handler
	 * schedules new ones strictly later or (re-queues) at most once. */
	while (!w->failed && sim_heap_peek(&w->heap) != NULL &&
	       sim_heap_peek(&w->heap)->at_us <= w->end_us) {
		(void)sim_heap_pop(&w->heap, &ev);
		assert(ev.at_us >= w->now_us);
		w->now_us = ev.at_us;
		w->events++;
		dispatch(w, &ev);
	}
	if (!w->failed)
		w->now_us = w->end_us;
	for (uint32_t p = 0; p < w->n_probes && !w->failed; p++)
		if (w->probes[p].ops->finish)
			w->probes[p].ops->finish(w->probes[p].st, w);
	return w->failed ? 1 : 0;
}

void sim_world_free(sim_world *w)
{
	for (uint32_t p = 0; p < w->n_probes; p++)
		if (w->probes[p].ops->free)
			w->probes[p].ops->free(w->probes[p].st);
	for (uint32_t i = 0; w->nodes && i < w->cap; i++) {
		cn_node_free(w->nodes[i].node); /* before the replica it borrows */
		cn_policy_free(w->nodes[i].pol);
		cn_policy_mem_free(w->nodes[i].pmem);
		free(w->nodes[i].pst);
	}
	for (int k = 0; k < 16; k++) {
		free(w->warm_full[k]);
		free(w->warm_one[k]);
	}
	free(w->write_seq);
	free(w->pev);
	cn_sigkey_wipe(&w->root);
	for (uint32_t k = 0; k < w->n_rules; k++) {
		free(w->rules[k].a);
		free(w->rules[k].b);
	}
	sim_heap_free(&w->heap);
	free(w->nodes);
	if (w->pool)
		cn_pool_free(w->pool);
	memset(w, 0, sizeof *w);
}
