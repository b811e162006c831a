/* A tiny deterministic in-memory network of core/node instances with
 * explicit virtual time, shared by test_node.c and test_psync.c.
 * Header-only (static inline functions): each test program gets its copy.
 *
 *   - every node shares one cn_pool, as the 10,000-node simulator does;
 *   - datagrams go through a min-heap ordered by (delivery time, sequence
 *     number), so runs are a pure function of the seed;
 *   - faults: per-packet latency and jitter, loss, partitions (a group id
 *     per node, checked at delivery), crashes (a crashed node neither sends,
 *     receives nor ticks), slow nodes (extra delay on everything delivered
 *     to them, i.e. they process their inbox late);
 *   - stream requests are served synchronously by calling
 *     cn_node_stream_serve() on the target and handing the reply to
 *     cn_node_stream_result() (or NULL when the target is unreachable);
 *   - time advances to the earliest of the next delivery and every live
 *     node's cn_node_deadline(): no sleeps, no busy loops;
 *   - every event is folded into a trace hash (the determinism check) and
 *     kept in a log for the assertions. */
#ifndef CN_TESTS_SIMNET_H
#define CN_TESTS_SIMNET_H

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h"
#include "core/pool.h"
#include "util/err.h"
#include "util/rng.h"

enum { NET_MAX = 64, LOG_MAX = 1 << 16 };

typedef struct packet {
	uint64_t at_ms, seq;
	uint16_t from, to;
	uint32_t len;
	uint8_t *data;
} packet;

typedef struct logged {
	uint64_t at_ms;
	uint16_t node;
	uint8_t type;
	char name[CN_NAME_MAX + 1];
	uint64_t incarnation;
} logged;

typedef struct simnode {
	cn_node *node;
	cn_node_config cfg;
	bool up, crashed;
	int group;
	uint32_t slow_ms;   /* extra delay on inbound datagrams */
	uint64_t datagrams_to; /* datagrams addressed to this node's address */
} simnode;

typedef struct net {
	simnode nodes[NET_MAX];
	int n;
	cn_pool *pool;
	cn_rng rng;
	uint64_t now_ms, seq, seed;
	packet *heap;
	size_t heap_len, heap_cap;
	uint32_t lat_ms, jitter_ms;
	double loss;
	uint64_t trace;      /* FNV-1a over every event */
	uint64_t ev_count[16];
	logged *log;
	size_t log_len;
	cn_addr extra_addr;  /* an address the tests watch (no node there) */
	uint64_t extra_datagrams;
} net;

/* ---- the heap of datagrams in flight ---- */

static inline bool before(const packet *a, const packet *b)
{
	return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static inline void heap_push(net *t, packet p)
{
	if (t->heap_len == t->heap_cap) {
		t->heap_cap = t->heap_cap ? 2 * t->heap_cap : 1024;
		t->heap = realloc(t->heap, t->heap_cap * sizeof *t->heap);
		ck_assert_ptr_nonnull(t->heap);
	}
	size_t i = t->heap_len++;
	while (i > 0 && before(&p, &t->heap[(i - 1) / 2])) {
		t->heap[i] = t->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	t->heap[i] = p;
}

static inline packet heap_pop(net *t)
{
	packet top = t->heap[0], last = t->heap[--t->heap_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->heap_len)
			break;
		if (c + 1 < t->heap_len && before(&t->heap[c + 1], &t->heap[c]))
			c++;
		if (!before(&t->heap[c], &last))
			break;
		t->heap[i] = t->heap[c];
		i = c;
	}
	if (t->heap_len > 0)
		t->heap[i] = last;
	return top;
}

/* ---- nodes ---- */

static inline cn_addr node_addr(int i)
{
	cn_addr a = {.family = CN_ADDR_V4, .ip = {10, 0, (uint8_t)(i / 200), (uint8_t)(1 + i % 200)},
		     .port = 7946};
	return a;
}

static inline int node_at(const net *t, const cn_addr *a)
{
	for (int i = 0; i < t->n; i++)
		if (t->nodes[i].up && cn_addr_eq(&t->nodes[i].cfg.addr, a))
			return i;
	return -1;
}

static inline void net_init(net *t, int n, uint64_t seed, bool lifeguard)
{
	memset(t, 0, sizeof *t);
	ck_assert_int_le(n, NET_MAX);
	t->n = n;
	t->seed = seed;
	t->lat_ms = 5;
	t->jitter_ms = 5;
	t->now_ms = 1000000; /* any origin: the node must not care */
	t->trace = 0xcbf29ce484222325ULL;
	cn_rng_seed(&t->rng, seed);
	ck_assert_int_eq(cn_pool_new(&t->pool), 0);
	t->log = calloc(LOG_MAX, sizeof *t->log);
	for (int i = 0; i < n; i++) {
		cn_node_config *c = &t->nodes[i].cfg;
		cn_node_config_default(c);
		snprintf(c->name, sizeof c->name, "node-%02d", i);
		c->addr = node_addr(i);
		c->lifeguard = lifeguard;
	}
}

static inline void node_start(net *t, int i)
{
	simnode *s = &t->nodes[i];
	ck_assert_int_eq(cn_node_new(&s->cfg, t->pool, cn_mix64(t->seed * 1000 + (uint64_t)i),
				     t->now_ms, &s->node), 0);
	s->up = true;
	s->crashed = false;
}

static inline void node_stop(net *t, int i)
{
	simnode *s = &t->nodes[i];
	cn_node_free(s->node);
	s->node = NULL;
	s->up = false;
}

static inline void net_free(net *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->nodes[i].up)
			node_stop(t, i);
	while (t->heap_len > 0)
		free(heap_pop(t).data);
	free(t->heap);
	free(t->log);
	cn_pool_free(t->pool);
}

static inline bool reachable(const net *t, int a, int b)
{
	return t->nodes[a].up && t->nodes[b].up && !t->nodes[a].crashed && !t->nodes[b].crashed &&
	       t->nodes[a].group == t->nodes[b].group;
}

/* ---- outputs ---- */

static inline void log_event(net *t, int i, const cn_event *ev)
{
	const uint8_t *p = (const uint8_t *)ev->name;
	uint64_t h = t->trace;
	uint64_t words[4] = {(uint64_t)i, ev->type, ev->incarnation, ev->at_ms};
	for (int k = 0; k < 4; k++)
		h = (h ^ words[k]) * 0x100000001b3ULL;
	for (size_t k = 0; p[k]; k++)
		h = (h ^ p[k]) * 0x100000001b3ULL;
	t->trace = h;
	t->ev_count[ev->type & 15]++;
	if (t->log_len < LOG_MAX) {
		logged *l = &t->log[t->log_len++];
		l->at_ms = ev->at_ms;
		l->node = (uint16_t)i;
		l->type = ev->type;
		strcpy(l->name, ev->name);
		l->incarnation = ev->incarnation;
	}
}

static inline void send_datagram(net *t, int from, const cn_out *o)
{
	if (cn_addr_eq(&o->to, &t->extra_addr))
		t->extra_datagrams++;
	int to = node_at(t, &o->to);
	if (to < 0)
		return;
	t->nodes[to].datagrams_to++;
	if (t->loss > 0 && cn_rng_unit(&t->rng) < t->loss)
		return;
	uint64_t delay = t->lat_ms + (t->jitter_ms ? cn_rng_below(&t->rng, t->jitter_ms) : 0);
	packet p = {.at_ms = t->now_ms + delay + t->nodes[to].slow_ms, .seq = t->seq++,
		    .from = (uint16_t)from, .to = (uint16_t)to, .len = (uint32_t)o->len};
	p.data = malloc(o->len);
	memcpy(p.data, o->data, o->len);
	heap_push(t, p);
}

/* Serve a stream request synchronously on its target. */
static inline void do_stream(net *t, int from, const cn_out *o)
{
	int to = node_at(t, &o->to);
	cn_node *req = t->nodes[from].node;
	if (to < 0 || !reachable(t, from, to)) {
		cn_node_stream_result(req, o->stream_id, NULL, 0, t->now_ms);
		return;
	}
	/* o->data is the requester's; it stays valid until the requester is
	 * called again, which happens only after the serve. */
	const uint8_t *reply;
	size_t len;
	cn_addr from_addr = t->nodes[from].cfg.addr;
	int rc = cn_node_stream_serve(t->nodes[to].node, &from_addr, o->data, o->len, t->now_ms,
				      &reply, &len);
	uint32_t id = o->stream_id;
	if (rc != 0) {
		cn_node_stream_result(req, id, NULL, 0, t->now_ms);
		return;
	}
	uint8_t *copy = malloc(len);
	memcpy(copy, reply, len);
	cn_node_stream_result(req, id, copy, len, t->now_ms);
	free(copy);
}

/* Drain node i's outbox; true if anything came out. */
static inline bool drain(net *t, int i)
{
	simnode *s = &t->nodes[i];
	cn_out o;
	bool any = false;
	for (int guard = 0; guard < 100000 && cn_node_next_output(s->node, &o) == 0; guard++) {
		any = true;
		if (o.kind == CN_OUT_EVENT)
			log_event(t, i, &o.event);
		else if (s->crashed)
			continue; /* a crashed node's last words go nowhere */
		else if (o.kind == CN_OUT_DATAGRAM)
			send_datagram(t, i, &o);
		else
			do_stream(t, i, &o);
	}
	return any;
}

static inline void drain_all(net *t)
{
	for (int round = 0; round < 100; round++) {
		bool any = false;
		for (int i = 0; i < t->n; i++)
			if (t->nodes[i].up)
				any |= drain(t, i);
		if (!any)
			return;
	}
}

/* ---- time ---- */

static inline bool live(const net *t, int i) { return t->nodes[i].up && !t->nodes[i].crashed; }

/* Advance to the next thing that happens, no later than until_ms. */
static inline bool net_step(net *t, uint64_t until_ms)
{
	uint64_t next = until_ms;
	if (t->heap_len > 0 && t->heap[0].at_ms < next)
		next = t->heap[0].at_ms;
	for (int i = 0; i < t->n; i++)
		if (live(t, i) && cn_node_deadline(t->nodes[i].node) < next)
			next = cn_node_deadline(t->nodes[i].node);
	ck_assert_uint_ge(next, t->now_ms);
	t->now_ms = next;
	while (t->heap_len > 0 && t->heap[0].at_ms <= t->now_ms) {
		packet p = heap_pop(t);
		if (reachable(t, p.from, p.to))
			cn_node_recv(t->nodes[p.to].node, &t->nodes[p.from].cfg.addr, p.data, p.len,
				     t->now_ms);
		free(p.data);
	}
	for (int i = 0; i < t->n; i++)
		if (live(t, i) && cn_node_deadline(t->nodes[i].node) <= t->now_ms)
			cn_node_tick(t->nodes[i].node, t->now_ms);
	drain_all(t);
	return t->now_ms < until_ms;
}

static inline void net_run(net *t, uint64_t ms)
{
	uint64_t until = t->now_ms + ms;
	for (long guard = 0; guard < 50000000 && net_step(t, until); guard++)
		;
	ck_assert_uint_eq(t->now_ms, until);
}

/* Run until pred holds (checked every 100 ms) or max_ms pass; returns the
 * time it took, or UINT64_MAX. */
static inline uint64_t net_run_until(net *t, bool (*pred)(const net *, const void *), const void *arg,
			      uint64_t max_ms)
{
	uint64_t start = t->now_ms;
	while (t->now_ms - start < max_ms) {
		if (pred(t, arg))
			return t->now_ms - start;
		net_run(t, 100);
	}
	return pred(t, arg) ? t->now_ms - start : UINT64_MAX;
}

/* ---- views ---- */

static inline uint8_t state_in(const net *t, int viewer, int member)
{
	cn_member m;
	if (cn_node_member_find(t->nodes[viewer].node, t->nodes[member].cfg.name, &m) != 0)
		return 255;
	return m.state;
}

/* Every live node sees every other live node alive. */
static inline bool all_alive(const net *t, const void *arg)
{
	(void)arg;
	for (int i = 0; i < t->n; i++) {
		if (!live(t, i))
			continue;
		for (int j = 0; j < t->n; j++)
			if (live(t, j) && state_in(t, i, j) != CN_STATE_ALIVE)
				return false;
	}
	return true;
}

typedef struct who_state {
	int member;
	uint8_t state;
} who_state;

/* Every live node other than the member sees it in the given state. */
static inline bool all_see(const net *t, const void *arg)
{
	const who_state *w = arg;
	for (int i = 0; i < t->n; i++)
		if (live(t, i) && i != w->member && state_in(t, i, w->member) != w->state)
			return false;
	return true;
}

static inline void start_and_join(net *t, int count)
{
	for (int i = 0; i < count; i++)
		node_start(t, i);
	drain_all(t);
	cn_addr seed = node_addr(0);
	for (int i = 1; i < count; i++) {
		ck_assert_int_eq(cn_node_join(t->nodes[i].node, &seed, 1, t->now_ms), 0);
		drain_all(t);
	}
}

static inline void check_invariants(const net *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->nodes[i].up)
			cn_node_assert_invariants(t->nodes[i].node);
}

static inline uint64_t count_events(const net *t, uint8_t type, const char *name)
{
	uint64_t c = 0;
	for (size_t k = 0; k < t->log_len; k++)
		c += t->log[k].type == type && (name == NULL || strcmp(t->log[k].name, name) == 0);
	return c;
}

#endif
