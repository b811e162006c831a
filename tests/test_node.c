/* Integration tests for core/node: N nodes on a tiny deterministic
 * in-memory network with explicit virtual time.
 *
 * The harness ("net") is written to be lifted into sim/:
 *   - every node shares one cn_pool, as the 10,000-node simulator will;
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

static bool before(const packet *a, const packet *b)
{
	return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_push(net *t, packet p)
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

static packet heap_pop(net *t)
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

static cn_addr node_addr(int i)
{
	cn_addr a = {.family = CN_ADDR_V4, .ip = {10, 0, (uint8_t)(i / 200), (uint8_t)(1 + i % 200)},
		     .port = 7946};
	return a;
}

static int node_at(const net *t, const cn_addr *a)
{
	for (int i = 0; i < t->n; i++)
		if (t->nodes[i].up && cn_addr_eq(&t->nodes[i].cfg.addr, a))
			return i;
	return -1;
}

static void net_init(net *t, int n, uint64_t seed, bool lifeguard)
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

static void node_start(net *t, int i)
{
	simnode *s = &t->nodes[i];
	ck_assert_int_eq(cn_node_new(&s->cfg, t->pool, cn_mix64(t->seed * 1000 + (uint64_t)i),
				     t->now_ms, &s->node), 0);
	s->up = true;
	s->crashed = false;
}

static void node_stop(net *t, int i)
{
	simnode *s = &t->nodes[i];
	cn_node_free(s->node);
	s->node = NULL;
	s->up = false;
}

static void net_free(net *t)
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

static bool reachable(const net *t, int a, int b)
{
	return t->nodes[a].up && t->nodes[b].up && !t->nodes[a].crashed && !t->nodes[b].crashed &&
	       t->nodes[a].group == t->nodes[b].group;
}

/* ---- outputs ---- */

static void log_event(net *t, int i, const cn_event *ev)
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

static void send_datagram(net *t, int from, const cn_out *o)
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
static void do_stream(net *t, int from, const cn_out *o)
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
static bool drain(net *t, int i)
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

static void drain_all(net *t)
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

static bool live(const net *t, int i) { return t->nodes[i].up && !t->nodes[i].crashed; }

/* Advance to the next thing that happens, no later than until_ms. */
static bool net_step(net *t, uint64_t until_ms)
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

static void net_run(net *t, uint64_t ms)
{
	uint64_t until = t->now_ms + ms;
	for (long guard = 0; guard < 50000000 && net_step(t, until); guard++)
		;
	ck_assert_uint_eq(t->now_ms, until);
}

/* Run until pred holds (checked every 100 ms) or max_ms pass; returns the
 * time it took, or UINT64_MAX. */
static uint64_t net_run_until(net *t, bool (*pred)(const net *, const void *), const void *arg,
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

static uint8_t state_in(const net *t, int viewer, int member)
{
	cn_member m;
	if (cn_node_member_find(t->nodes[viewer].node, t->nodes[member].cfg.name, &m) != 0)
		return 255;
	return m.state;
}

/* Every live node sees every other live node alive. */
static bool all_alive(const net *t, const void *arg)
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
static bool all_see(const net *t, const void *arg)
{
	const who_state *w = arg;
	for (int i = 0; i < t->n; i++)
		if (live(t, i) && i != w->member && state_in(t, i, w->member) != w->state)
			return false;
	return true;
}

static void start_and_join(net *t, int count)
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

static void check_invariants(const net *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->nodes[i].up)
			cn_node_assert_invariants(t->nodes[i].node);
}

static uint64_t count_events(const net *t, uint8_t type, const char *name)
{
	uint64_t c = 0;
	for (size_t k = 0; k < t->log_len; k++)
		c += t->log[k].type == type && (name == NULL || strcmp(t->log[k].name, name) == 0);
	return c;
}

/* ------------------------------------------------------------------ */

START_TEST(join_converges)
{
	static const int sizes[] = {3, 16, 64};
	for (int s = 0; s < 3; s++) {
		net t;
		net_init(&t, sizes[s], 1, true);
		start_and_join(&t, sizes[s]);
		uint64_t took = net_run_until(&t, all_alive, NULL, 60000);
		printf("join: %d nodes converged in %llu ms\n", sizes[s], (unsigned long long)took);
		ck_assert_uint_ne(took, UINT64_MAX);
		for (int i = 0; i < t.n; i++)
			ck_assert_uint_eq(cn_node_count_state(t.nodes[i].node, CN_STATE_ALIVE),
					  (size_t)t.n);
		/* Stable: a quiet minute later nobody was ever suspected. */
		net_run(&t, 60000);
		ck_assert(all_alive(&t, NULL));
		ck_assert_uint_eq(t.ev_count[CN_EV_SUSPECT], 0);
		/* Vivaldi learned the 10..20 ms round trips from the acks. */
		double rtt;
		ck_assert_int_eq(cn_node_rtt_ms(t.nodes[0].node, t.nodes[0].cfg.name,
						t.nodes[1].cfg.name, &rtt), 0);
		printf("join: %d nodes, estimated rtt node-00 <-> node-01 %.1f ms (true 10..20)\n",
		       sizes[s], rtt);
		ck_assert(rtt > 3.0 && rtt < 40.0);
		check_invariants(&t);
		net_free(&t);
	}
}
END_TEST

START_TEST(crash_is_detected_in_time)
{
	enum { N = 32, VICTIM = 5 };
	net t;
	net_init(&t, N, 2, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	t.nodes[VICTIM].crashed = true;
	uint64_t crash_ms = t.now_ms;
	who_state w = {VICTIM, CN_STATE_DEAD};
	uint64_t took = net_run_until(&t, all_see, &w, 120000);
	/* SWIM expectation: someone probes the victim within ~e/(e-1)
	 * intervals, then the suspicion timeout runs: between min =
	 * 4 * log10(32) * 1 s = 6.0 s (K = 3 confirmations reached) and
	 * max = 6 * min = 36 s; dissemination takes O(log N) gossip rounds. */
	uint64_t first = UINT64_MAX, last = 0;
	for (size_t k = 0; k < t.log_len; k++) {
		const logged *l = &t.log[k];
		if (l->type == CN_EV_FAILED && strcmp(l->name, t.nodes[VICTIM].cfg.name) == 0) {
			first = l->at_ms < first ? l->at_ms : first;
			last = l->at_ms > last ? l->at_ms : last;
		}
	}
	printf("crash: first failed after %llu ms, all %d after %llu ms\n",
	       (unsigned long long)(first - crash_ms), N - 1, (unsigned long long)(last - crash_ms));
	ck_assert_uint_ne(took, UINT64_MAX);
	ck_assert_uint_ge(first - crash_ms, 6000);  /* never before suspicion min */
	ck_assert_uint_le(last - crash_ms, 20000);  /* confirmations shrank the timeout */
	ck_assert_uint_eq(count_events(&t, CN_EV_FAILED, NULL), N - 1); /* nobody else */
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(suspected_member_refutes)
{
	enum { N = 8, VICTIM = 3 };
	net t;
	net_init(&t, N, 3, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	cn_member before;
	cn_node_self(t.nodes[VICTIM].node, &before);
	/* Cut the victim off briefly: it is suspected, then hears it and refutes. */
	t.nodes[VICTIM].group = 1;
	net_run(&t, 3000);
	ck_assert_uint_gt(count_events(&t, CN_EV_SUSPECT, t.nodes[VICTIM].cfg.name), 0);
	t.nodes[VICTIM].group = 0;
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	cn_member after;
	cn_node_self(t.nodes[VICTIM].node, &after);
	ck_assert_uint_gt(after.incarnation, before.incarnation);
	ck_assert_uint_ge(cn_node_stats_get(t.nodes[VICTIM].node)->refutations, 1);
	ck_assert_uint_ge(count_events(&t, CN_EV_SELF_INCARNATION, t.nodes[VICTIM].cfg.name), 1);
	for (int i = 0; i < N; i++) {
		cn_member m;
		ck_assert_int_eq(cn_node_member_find(t.nodes[i].node, after.name, &m), 0);
		ck_assert_uint_eq(m.incarnation, after.incarnation);
	}
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(graceful_leave)
{
	enum { N = 8, LEAVER = 2 };
	net t;
	net_init(&t, N, 4, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	ck_assert_int_eq(cn_node_leave(t.nodes[LEAVER].node, t.now_ms), 0);
	drain_all(&t);
	uint64_t done = UINT64_MAX;
	for (int k = 0; k < 100 && done == UINT64_MAX; k++) {
		net_run(&t, 100);
		if (cn_node_leave_done(t.nodes[LEAVER].node))
			done = t.now_ms;
	}
	ck_assert_uint_ne(done, UINT64_MAX);
	t.nodes[LEAVER].crashed = true; /* the process exits */
	who_state w = {LEAVER, CN_STATE_LEFT};
	ck_assert_uint_ne(net_run_until(&t, all_see, &w, 10000), UINT64_MAX);
	net_run(&t, 60000); /* and it stays left, never "failed" */
	ck_assert(all_see(&t, &w));
	ck_assert_uint_eq(count_events(&t, CN_EV_FAILED, NULL), 0);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

static uint64_t slow_node_suspicions(bool lifeguard, uint64_t *failed)
{
	enum { N = 16, SLOW = 0 };
	net t;
	net_init(&t, N, 5, lifeguard);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	uint64_t before = t.ev_count[CN_EV_SUSPECT], failed_before = t.ev_count[CN_EV_FAILED];
	t.nodes[SLOW].slow_ms = 1100; /* processes its inbox 1.1 s late */
	net_run(&t, 120000);
	*failed = t.ev_count[CN_EV_FAILED] - failed_before;
	uint64_t suspicions = t.ev_count[CN_EV_SUSPECT] - before;
	const cn_node_stats *st = cn_node_stats_get(t.nodes[SLOW].node);
	printf("slow node, lifeguard %s: %llu false suspicion events, %llu false failures; "
	       "the slow node's own probes: %llu, failed %llu; health score %u\n",
	       lifeguard ? "on " : "off", (unsigned long long)suspicions,
	       (unsigned long long)*failed, (unsigned long long)st->probes,
	       (unsigned long long)st->probe_failures, cn_node_health_score(t.nodes[SLOW].node));
	check_invariants(&t);
	net_free(&t);
	return suspicions;
}

START_TEST(lifeguard_reduces_false_suspicions)
{
	uint64_t failed_on, failed_off;
	uint64_t on = slow_node_suspicions(true, &failed_on);
	uint64_t off = slow_node_suspicions(false, &failed_off);
	ck_assert_uint_lt(on, off);
	ck_assert_uint_le(failed_on, failed_off);
}
END_TEST

static bool side_sees_other_failed(const net *t, const void *arg)
{
	(void)arg;
	for (int i = 0; i < t->n; i++)
		for (int j = 0; j < t->n; j++)
			if (t->nodes[i].group != t->nodes[j].group &&
			    state_in(t, i, j) != CN_STATE_DEAD)
				return false;
	return true;
}

START_TEST(partition_heals_by_itself)
{
	enum { N = 16 };
	net t;
	net_init(&t, N, 6, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	for (int i = N / 2; i < N; i++)
		t.nodes[i].group = 1;
	uint64_t split = net_run_until(&t, side_sees_other_failed, NULL, 180000);
	ck_assert_uint_ne(split, UINT64_MAX);
	for (int i = 0; i < N; i++)
		ck_assert_uint_eq(cn_node_count_state(t.nodes[i].node, CN_STATE_ALIVE), N / 2);
	net_run(&t, 30000);
	for (int i = 0; i < N; i++)
		t.nodes[i].group = 0;
	uint64_t healed = net_run_until(&t, all_alive, NULL, 180000);
	printf("partition: halves failed each other after %llu ms, healed %llu ms after the "
	       "network came back\n",
	       (unsigned long long)split, (unsigned long long)healed);
	ck_assert_uint_ne(healed, UINT64_MAX);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(long_partition_heals_by_itself)
{
	/* Apart for ten minutes: long past gossip_to_dead_ms, so nothing but
	 * the reconnect timer can bring the halves back together. */
	enum { N = 12 };
	net t;
	net_init(&t, N, 13, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	for (int i = 0; i < N; i++)
		t.nodes[i].group = i % 3 == 0; /* uneven halves: 4 and 8 */
	ck_assert_uint_ne(net_run_until(&t, side_sees_other_failed, NULL, 180000), UINT64_MAX);
	net_run(&t, 600000);
	for (int i = 0; i < N; i++)
		t.nodes[i].group = 0;
	uint64_t healed = net_run_until(&t, all_alive, NULL, 180000);
	printf("long partition: healed %llu ms after the network came back\n",
	       (unsigned long long)healed);
	ck_assert_uint_ne(healed, UINT64_MAX);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(whole_fleet_restart_rejoins)
{
	enum { N = 10 };
	net t;
	net_init(&t, N, 14, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	/* Power cut: everyone restarts with a higher incarnation; the seed
	 * (node 0) comes back 20 s after the others, which must keep retrying. */
	for (int i = 0; i < N; i++) {
		cn_member me;
		cn_node_self(t.nodes[i].node, &me);
		node_stop(&t, i);
		t.nodes[i].cfg.incarnation = me.incarnation + 1;
	}
	cn_addr seed = node_addr(0);
	for (int i = 1; i < N; i++) {
		node_start(&t, i);
		ck_assert_int_eq(cn_node_join(t.nodes[i].node, &seed, 1, t.now_ms), 0);
		drain_all(&t);
	}
	net_run(&t, 20000);
	for (int i = 1; i < N; i++)
		ck_assert_uint_eq(cn_node_member_count(t.nodes[i].node), 1);
	node_start(&t, 0);
	drain_all(&t);
	uint64_t took = net_run_until(&t, all_alive, NULL, 120000);
	printf("fleet restart: all %d alive %llu ms after the seed returned\n", N,
	       (unsigned long long)took);
	ck_assert_uint_ne(took, UINT64_MAX);
	ck_assert_uint_le(took, 35000); /* within one maximal join backoff */
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(failed_members_are_reaped)
{
	enum { N = 6, VICTIM = 4 };
	net t;
	net_init(&t, N, 15, true);
	for (int i = 0; i < N; i++)
		t.nodes[i].cfg.dead_reap_ms = 60000;
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	t.nodes[VICTIM].crashed = true;
	who_state w = {VICTIM, CN_STATE_DEAD};
	ck_assert_uint_ne(net_run_until(&t, all_see, &w, 60000), UINT64_MAX);
	net_run(&t, 90000); /* reap age + one probe pass */
	for (int i = 0; i < N; i++) {
		if (i == VICTIM)
			continue;
		ck_assert_uint_eq(cn_node_member_count(t.nodes[i].node), N - 1);
		ck_assert_uint_eq(state_in(&t, i, VICTIM), 255);
	}
	ck_assert_uint_eq(count_events(&t, CN_EV_REAP, t.nodes[VICTIM].cfg.name), N - 1);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(lossy_network_no_false_failures)
{
	enum { N = 32 };
	net t;
	net_init(&t, N, 16, true);
	t.loss = 0.05;
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	uint64_t s0 = t.ev_count[CN_EV_SUSPECT];
	net_run(&t, 300000);
	uint64_t probes = 0;
	for (int i = 0; i < N; i++)
		probes += cn_node_stats_get(t.nodes[i].node)->probes;
	printf("5%% loss, %d nodes, 5 min: %llu probes, %llu suspicion events, %llu failures\n",
	       N, (unsigned long long)probes, (unsigned long long)(t.ev_count[CN_EV_SUSPECT] - s0),
	       (unsigned long long)t.ev_count[CN_EV_FAILED]);
	ck_assert_uint_eq(t.ev_count[CN_EV_FAILED], 0);
	ck_assert(all_alive(&t, NULL));
	check_invariants(&t);
	net_free(&t);
}
END_TEST

static bool all_see_meta(const net *t, const void *arg)
{
	const int *who = arg;
	for (int i = 0; i < t->n; i++) {
		cn_member m;
		if (cn_node_member_find(t->nodes[i].node, t->nodes[*who].cfg.name, &m) != 0 ||
		    m.meta.cpus != 99 || strcmp(m.meta.arch, "riscv64") != 0)
			return false;
	}
	return true;
}

START_TEST(metadata_spreads_without_incarnation)
{
	enum { N = 8, WHO = 4 };
	net t;
	net_init(&t, N, 7, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 60000), UINT64_MAX);
	cn_member before;
	cn_node_self(t.nodes[WHO].node, &before);
	cn_meta m = before.meta;
	strcpy(m.arch, "riscv64");
	m.cpus = 98;
	ck_assert_int_eq(cn_node_set_meta(t.nodes[WHO].node, &m, t.now_ms), 0);
	/* Re-setting what is already published changes nothing... */
	ck_assert_int_eq(cn_node_set_meta(t.nodes[WHO].node, &m, t.now_ms), 0);
	/* ...a second change right away is held by the rate limit... */
	m.cpus = 99;
	ck_assert_int_eq(cn_node_set_meta(t.nodes[WHO].node, &m, t.now_ms), 0);
	cn_member mid;
	cn_node_self(t.nodes[WHO].node, &mid);
	ck_assert_uint_eq(mid.meta.cpus, 98);
	drain_all(&t);
	/* ...and goes out when the interval ends. */
	int who = WHO;
	uint64_t took = net_run_until(&t, all_see_meta, &who, 10000);
	printf("metadata: reached all %d nodes in %llu ms\n", N, (unsigned long long)took);
	ck_assert_uint_ne(took, UINT64_MAX);
	for (int i = 0; i < N; i++) {
		cn_member x;
		ck_assert_int_eq(cn_node_member_find(t.nodes[i].node, before.name, &x), 0);
		ck_assert_uint_eq(x.incarnation, before.incarnation);
		ck_assert_uint_eq(x.meta_version, before.meta_version + 2);
	}
	check_invariants(&t);
	net_free(&t);
}
END_TEST

static uint64_t scenario_trace(uint64_t seed)
{
	net t;
	net_init(&t, 12, seed, true);
	t.loss = 0.02;
	start_and_join(&t, 12);
	net_run(&t, 20000);
	t.nodes[7].crashed = true;
	net_run(&t, 30000);
	uint64_t h = t.trace;
	net_free(&t);
	return h;
}

START_TEST(same_seed_same_trace)
{
	uint64_t a = scenario_trace(11), b = scenario_trace(11), c = scenario_trace(12);
	ck_assert_uint_eq(a, b);
	ck_assert_uint_ne(a, c);
}
END_TEST

START_TEST(garbage_only_counts_decode_errors)
{
	net t;
	net_init(&t, 4, 8, true);
	start_and_join(&t, 4);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	cn_node *n = t.nodes[0].node;
	cn_node_stats before = *cn_node_stats_get(n);
	size_t members = cn_node_member_count(n);
	cn_rng r;
	cn_rng_seed(&r, 99);
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX + 10];
	cn_addr from = node_addr(50);
	int fed = 0;
	for (int k = 0; k < 2000; k++) {
		size_t len = 1 + cn_rng_below(&r, sizeof buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)cn_rng_next(&r);
		buf[0] = (uint8_t)(0x90 | (k & 0x0f)); /* arrays of odd sizes, mostly */
		if (k % 3 == 0)
			buf[0] = (uint8_t)cn_rng_next(&r);
		cn_node_recv(n, &from, buf, len, t.now_ms);
		fed++;
		cn_out o;
		ck_assert_int_eq(cn_node_next_output(n, &o), CN_EAGAIN);
	}
	const uint8_t *reply;
	size_t reply_len;
	ck_assert_int_ne(cn_node_stream_serve(n, &from, buf, 100, t.now_ms, &reply, &reply_len), 0);
	const cn_node_stats *after = cn_node_stats_get(n);
	ck_assert_uint_eq(after->decode_errors - before.decode_errors, (uint64_t)fed + 1);
	ck_assert_uint_eq(after->msgs_in, before.msgs_in);
	ck_assert_uint_eq(after->suspicions, before.suspicions);
	ck_assert_uint_eq(cn_node_member_count(n), members);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

static bool all_see_addr(const net *t, const void *arg)
{
	const int *who = arg;
	for (int i = 0; i < t->n; i++) {
		cn_member m;
		if (cn_node_member_find(t->nodes[i].node, t->nodes[*who].cfg.name, &m) != 0 ||
		    !cn_addr_eq(&m.addr, &t->nodes[*who].cfg.addr))
			return false;
	}
	return true;
}

START_TEST(rejoin_at_new_address_updates_views)
{
	enum { N = 6, WHO = 2 };
	net t;
	net_init(&t, N, 9, true);
	start_and_join(&t, N);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	cn_member old;
	cn_node_self(t.nodes[WHO].node, &old);
	node_stop(&t, WHO);
	t.nodes[WHO].cfg.addr = node_addr(40);
	t.nodes[WHO].cfg.incarnation = old.incarnation + 10; /* the agent persists it */
	node_start(&t, WHO);
	cn_addr seed = node_addr(0);
	ck_assert_int_eq(cn_node_join(t.nodes[WHO].node, &seed, 1, t.now_ms), 0);
	drain_all(&t);
	int who = WHO;
	uint64_t took = net_run_until(&t, all_see_addr, &who, 30000);
	printf("rejoin: new address known to all %d nodes in %llu ms\n", N,
	       (unsigned long long)took);
	ck_assert_uint_ne(took, UINT64_MAX);
	ck_assert(all_alive(&t, NULL));
	for (int i = 0; i < N; i++) {
		cn_member m;
		ck_assert_int_eq(cn_node_member_find(t.nodes[i].node, old.name, &m), 0);
		ck_assert(cn_addr_eq(&m.addr, &t.nodes[WHO].cfg.addr));
		ck_assert_uint_eq(m.incarnation, old.incarnation + 10);
	}
	check_invariants(&t);
	net_free(&t);
}
END_TEST

START_TEST(incompatible_member_recorded_not_probed)
{
	net t;
	net_init(&t, 4, 10, true);
	start_and_join(&t, 4);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	/* A push-pull from a future agent that speaks only version 9. */
	cn_pushpull pp;
	memset(&pp, 0, sizeof pp);
	strcpy(pp.source, "future");
	cn_member_wire w;
	memset(&w, 0, sizeof w);
	strcpy(w.name, "future");
	w.addr = node_addr(60);
	w.incarnation = 1;
	w.vmin = w.vmax = 9;
	static uint8_t buf[8192];
	cn_mp_writer wr;
	cn_mp_writer_init(&wr, buf, sizeof buf);
	cn_pushpull_encode_begin(&wr, CN_MSG_PUSH_PULL, &pp, 1);
	cn_pushpull_encode_member(&wr, &w);
	size_t len;
	ck_assert_int_eq(cn_mp_writer_end(&wr, &len), 0);
	const uint8_t *reply;
	size_t reply_len;
	ck_assert_int_eq(cn_node_stream_serve(t.nodes[0].node, &w.addr, buf, len, t.now_ms, &reply,
					      &reply_len), 0);
	drain_all(&t);
	t.extra_addr = w.addr;
	net_run(&t, 30000);
	for (int i = 0; i < 4; i++) {
		cn_member m;
		ck_assert_int_eq(cn_node_member_find(t.nodes[i].node, "future", &m), 0);
		ck_assert_uint_eq(m.vmin, 9);
	}
	ck_assert_uint_eq(t.extra_datagrams, 0);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

/* ---- single-node tests with hand-made messages ---- */

static cn_node *lone_node(cn_pool *pool, uint64_t now)
{
	cn_node_config c;
	cn_node_config_default(&c);
	strcpy(c.name, "me");
	c.addr = node_addr(0);
	cn_node *n;
	ck_assert_int_eq(cn_node_new(&c, pool, 1, now, &n), 0);
	return n;
}

static void feed(cn_node *n, const cn_msg *m, uint64_t now)
{
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX];
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_msg_encode(&w, m);
	size_t len;
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_addr from = node_addr(9);
	ck_assert_int_eq(cn_node_recv(n, &from, buf, len, now), 0);
}

static void feed_alive(cn_node *n, const char *name, uint64_t inc, uint64_t mv, uint64_t now)
{
	cn_msg m;
	memset(&m, 0, sizeof m);
	m.version = CN_PROTO_VERSION;
	m.type = CN_MSG_ALIVE;
	strcpy(m.u.alive.name, name);
	m.u.alive.incarnation = inc;
	m.u.alive.addr = node_addr(9);
	m.u.alive.meta_version = mv;
	m.u.alive.meta.cpus = (uint32_t)mv;
	m.u.alive.vmin = m.u.alive.vmax = CN_PROTO_VERSION;
	feed(n, &m, now);
}

static void feed_accuse(cn_node *n, uint8_t type, const char *name, uint64_t inc, const char *from,
			uint64_t now)
{
	cn_msg m;
	memset(&m, 0, sizeof m);
	m.version = CN_PROTO_VERSION;
	m.type = type;
	cn_msg_accuse *a = type == CN_MSG_SUSPECT ? &m.u.suspect : &m.u.dead;
	if (type == CN_MSG_LEAVE) {
		strcpy(m.u.leave.name, name);
		m.u.leave.incarnation = inc;
	} else {
		strcpy(a->name, name);
		a->incarnation = inc;
		strcpy(a->from, from);
	}
	feed(n, &m, now);
}

static uint8_t view(cn_node *n, const char *name, uint64_t *inc)
{
	cn_member m;
	if (cn_node_member_find(n, name, &m) != 0)
		return 255;
	if (inc)
		*inc = m.incarnation;
	return m.state;
}

/* Drain, returning the event types seen (in order, up to 16). */
static int drain_events(cn_node *n, uint8_t *types)
{
	cn_out o;
	int k = 0;
	while (cn_node_next_output(n, &o) == 0)
		if (o.kind == CN_OUT_EVENT && k < 16)
			types[k++] = o.event.type;
	return k;
}

START_TEST(merge_precedence_rules)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t now = 5000, inc;
	cn_node *n = lone_node(pool, now);
	uint8_t ev[16];
	feed_alive(n, "x", 5, 1, now);
	ck_assert_uint_eq(view(n, "x", &inc), CN_STATE_ALIVE);
	ck_assert_int_eq(drain_events(n, ev), 1);
	ck_assert_uint_eq(ev[0], CN_EV_JOIN);
	/* Older accusations are ignored. */
	feed_accuse(n, CN_MSG_SUSPECT, "x", 4, "y", now);
	feed_accuse(n, CN_MSG_DEAD, "x", 4, "y", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_ALIVE);
	/* Equal incarnation: suspect > alive, and an alive does not undo it. */
	feed_accuse(n, CN_MSG_SUSPECT, "x", 5, "y", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_SUSPECT);
	feed_alive(n, "x", 5, 1, now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_SUSPECT);
	/* ...but a newer meta_version at that incarnation updates metadata. */
	feed_alive(n, "x", 5, 2, now);
	cn_member m;
	ck_assert_int_eq(cn_node_member_find(n, "x", &m), 0);
	ck_assert_uint_eq(m.meta.cpus, 2);
	ck_assert_uint_eq(m.state, CN_STATE_SUSPECT);
	/* Refutation: a higher incarnation. */
	feed_alive(n, "x", 6, 2, now);
	ck_assert_uint_eq(view(n, "x", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 6);
	/* dead > alive at equal incarnation; no resurrection. */
	feed_accuse(n, CN_MSG_DEAD, "x", 6, "y", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_DEAD);
	feed_alive(n, "x", 6, 3, now);
	feed_accuse(n, CN_MSG_SUSPECT, "x", 6, "y", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_DEAD);
	/* left > dead; left stays left at equal incarnation. */
	feed_accuse(n, CN_MSG_LEAVE, "x", 6, "", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_LEFT);
	feed_accuse(n, CN_MSG_DEAD, "x", 6, "y", now);
	feed_alive(n, "x", 6, 9, now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_LEFT);
	/* Only the member's own newer alive brings it back. */
	feed_alive(n, "x", 7, 1, now);
	ck_assert_uint_eq(view(n, "x", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 7);
	int k = drain_events(n, ev);
	uint8_t want[] = {CN_EV_SUSPECT, CN_EV_UPDATE, CN_EV_ALIVE, CN_EV_FAILED, CN_EV_LEFT,
			  CN_EV_ALIVE};
	ck_assert_int_eq(k, (int)sizeof want);
	for (int i = 0; i < k; i++)
		ck_assert_uint_eq(ev[i], want[i]);
	/* Unknown members are not created by accusations. */
	feed_accuse(n, CN_MSG_DEAD, "ghost", 1, "y", now);
	ck_assert_uint_eq(view(n, "ghost", NULL), 255);
	cn_node_assert_invariants(n);
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

/* An alive member that speaks no version of ours: recorded, never probed,
 * so only the messages the test feeds move its suspicion. */
static void feed_unprobed(cn_node *n, const char *name, uint64_t inc, uint64_t now)
{
	cn_msg m;
	memset(&m, 0, sizeof m);
	m.version = CN_PROTO_VERSION;
	m.type = CN_MSG_ALIVE;
	strcpy(m.u.alive.name, name);
	m.u.alive.incarnation = inc;
	m.u.alive.addr = node_addr(9);
	m.u.alive.vmin = m.u.alive.vmax = 200;
	feed(n, &m, now);
}

/* A suspect accused again at a higher incarnation (it refuted, we missed the
 * alive) gets a fresh timer: the old accusation's clock does not fail it. */
START_TEST(suspicion_at_newer_incarnation_restarts_timer)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t t0 = 5000, inc;
	cn_node *n = lone_node(pool, t0);
	feed_unprobed(n, "x", 5, t0);
	feed_unprobed(n, "w", 5, t0); /* control: same timeout, not re-accused */
	feed_accuse(n, CN_MSG_SUSPECT, "x", 5, "y", t0);
	feed_accuse(n, CN_MSG_SUSPECT, "w", 5, "y", t0);
	uint64_t t1 = t0 + 3000;
	feed_accuse(n, CN_MSG_SUSPECT, "x", 6, "z", t1);
	ck_assert_uint_eq(view(n, "x", &inc), CN_STATE_SUSPECT);
	ck_assert_uint_eq(inc, 6);
	uint64_t now = t1, w_dead = 0, x_dead = 0;
	while (x_dead == 0 && now < t0 + 600000) {
		now += 10;
		cn_node_tick(n, now);
		uint8_t ev[16];
		(void)drain_events(n, ev);
		if (w_dead == 0 && view(n, "w", NULL) == CN_STATE_DEAD) {
			w_dead = now;
			ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_SUSPECT);
		}
		if (view(n, "x", NULL) == CN_STATE_DEAD)
			x_dead = now;
	}
	ck_assert_uint_gt(w_dead, 0);
	ck_assert_uint_ge(x_dead, t1 + (w_dead - t0) - 10);
	cn_node_assert_invariants(n);
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

/* Members first learned from a push-pull are not gossiped on; the peer that
 * sent it is (that is how a joiner becomes known). */
START_TEST(pushpull_learned_members_are_not_gossiped)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t now = 1000;
	cn_node *n = lone_node(pool, now);
	static uint8_t buf[1 << 16];
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_pushpull pp;
	memset(&pp, 0, sizeof pp);
	pp.join = true;
	strcpy(pp.source, "p");
	const char *names[] = {"p", "a", "b", "c"};
	cn_pushpull_encode_begin(&w, CN_MSG_PUSH_PULL, &pp, 4);
	for (int i = 0; i < 4; i++) {
		cn_member_wire m;
		memset(&m, 0, sizeof m);
		strcpy(m.name, names[i]);
		m.addr = node_addr(i + 1);
		m.incarnation = 1;
		m.state = CN_STATE_ALIVE;
		m.vmin = m.vmax = CN_PROTO_VERSION;
		cn_pushpull_encode_member(&w, &m);
	}
	size_t len;
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	const uint8_t *reply;
	size_t reply_len;
	cn_addr from = node_addr(1);
	ck_assert_int_eq(cn_node_stream_serve(n, &from, buf, len, now, &reply, &reply_len), 0);
	ck_assert_uint_eq(cn_node_count_state(n, CN_STATE_ALIVE), 5); /* all merged */
	int alive_p = 0, alive_other = 0;
	for (uint64_t t = now; t < now + 5000; t += 50) {
		cn_node_tick(n, t);
		cn_out o;
		while (cn_node_next_output(n, &o) == 0) {
			if (o.kind != CN_OUT_DATAGRAM)
				continue;
			cn_mp_reader r;
			cn_mp_reader_init(&r, o.data, o.len);
			cn_msg m;
			while (cn_mp_remaining(&r) > 0 && cn_msg_decode(&r, &m, NULL) == 0) {
				if (m.type != CN_MSG_ALIVE)
					continue;
				if (strcmp(m.u.alive.name, "p") == 0)
					alive_p++;
				else if (strcmp(m.u.alive.name, "me") != 0)
					alive_other++;
			}
		}
	}
	ck_assert_int_gt(alive_p, 0);
	/* Quiet bulk joins are off (node.c CN_QUIET_BULK_JOINS): then the
	 * others are gossiped too. */
	(void)alive_other;
	/* The same member heard of through gossip is news: gossiped on. */
	feed_alive(n, "d", 1, 0, now + 5000);
	bool seen_d = false;
	for (uint64_t t = now + 5000; t < now + 8000 && !seen_d; t += 50) {
		cn_node_tick(n, t);
		cn_out o;
		while (cn_node_next_output(n, &o) == 0) {
			if (o.kind != CN_OUT_DATAGRAM)
				continue;
			cn_mp_reader r;
			cn_mp_reader_init(&r, o.data, o.len);
			cn_msg m;
			while (cn_mp_remaining(&r) > 0 && cn_msg_decode(&r, &m, NULL) == 0)
				seen_d |= m.type == CN_MSG_ALIVE && strcmp(m.u.alive.name, "d") == 0;
		}
	}
	ck_assert(seen_d);
	cn_node_assert_invariants(n);
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

START_TEST(accused_self_refutes)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t now = 0, inc;
	cn_node *n = lone_node(pool, now);
	uint8_t ev[16];
	feed_accuse(n, CN_MSG_SUSPECT, "me", 1, "y", now);
	ck_assert_uint_eq(view(n, "me", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 2);
	ck_assert_int_eq(drain_events(n, ev), 1);
	ck_assert_uint_eq(ev[0], CN_EV_SELF_INCARNATION);
	feed_accuse(n, CN_MSG_DEAD, "me", 7, "y", now); /* from a previous life */
	ck_assert_uint_eq(view(n, "me", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 8);
	feed_accuse(n, CN_MSG_DEAD, "me", 3, "y", now); /* stale: nothing to do */
	ck_assert_uint_eq(view(n, "me", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 8);
	ck_assert_uint_eq(cn_node_stats_get(n)->refutations, 2);
	ck_assert_uint_eq(cn_node_health_score(n), 2); /* Lifeguard: refuting costs health */
	/* Leaving: accusations are no longer refuted. */
	ck_assert_int_eq(cn_node_leave(n, now), 0);
	feed_accuse(n, CN_MSG_DEAD, "me", 8, "y", now);
	ck_assert_uint_eq(view(n, "me", &inc), CN_STATE_LEFT);
	ck_assert_uint_eq(inc, 8);
	ck_assert(cn_node_leave_done(n)); /* nobody to tell */
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

/* Decode a datagram into its message types. */
static int msg_types(const cn_out *o, uint8_t *types, cn_msg *first, cn_msg *second)
{
	cn_mp_reader r;
	cn_mp_reader_init(&r, o->data, o->len);
	int k = 0;
	cn_msg m;
	while (cn_mp_remaining(&r) > 0 && k < 16 && cn_msg_decode(&r, &m, NULL) == 0) {
		if (k == 0 && first)
			*first = m;
		if (k == 1 && second)
			*second = m;
		types[k++] = m.type;
	}
	return k;
}

START_TEST(buddy_system_tells_suspect_first)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t now = 0;
	cn_node *n = lone_node(pool, now);
	feed_alive(n, "x", 3, 1, now);
	feed_alive(n, "y", 1, 1, now);
	feed_accuse(n, CN_MSG_SUSPECT, "x", 3, "y", now);
	cn_out o;
	while (cn_node_next_output(n, &o) == 0)
		;
	/* Every ping to x must carry the suspicion (and its accuser) first. */
	bool seen = false;
	for (int step = 0; step < 50 && !seen; step++) {
		now = cn_node_deadline(n);
		cn_node_tick(n, now);
		while (cn_node_next_output(n, &o) == 0) {
			uint8_t t[16];
			cn_msg first, second;
			if (o.kind != CN_OUT_DATAGRAM || msg_types(&o, t, &first, &second) < 1 ||
			    t[0] != CN_MSG_PING || strcmp(first.u.ping.target, "x") != 0)
				continue;
			ck_assert_int_ge(msg_types(&o, t, &first, &second), 2);
			ck_assert_uint_eq(t[1], CN_MSG_SUSPECT);
			ck_assert_str_eq(second.u.suspect.name, "x");
			ck_assert_str_eq(second.u.suspect.from, "y");
			seen = true;
		}
	}
	ck_assert(seen);
	/* And a member we think failed gets told so on our ack. */
	feed_accuse(n, CN_MSG_DEAD, "x", 3, "y", now);
	while (cn_node_next_output(n, &o) == 0)
		;
	cn_msg ping;
	memset(&ping, 0, sizeof ping);
	ping.version = CN_PROTO_VERSION;
	ping.type = CN_MSG_PING;
	ping.u.ping.seq = 77;
	strcpy(ping.u.ping.target, "me");
	strcpy(ping.u.ping.source, "x");
	feed(n, &ping, now);
	ck_assert_int_eq(cn_node_next_output(n, &o), 0);
	uint8_t t[16];
	cn_msg second;
	ck_assert_int_ge(msg_types(&o, t, NULL, &second), 2);
	ck_assert_uint_eq(t[0], CN_MSG_ACK);
	ck_assert_uint_eq(t[1], CN_MSG_DEAD);
	ck_assert_str_eq(second.u.dead.name, "x");
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

START_TEST(table_limit_refuses_new_members)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	cn_node_config c;
	cn_node_config_default(&c);
	strcpy(c.name, "me");
	c.addr = node_addr(0);
	c.max_members = 3; /* self and two others */
	cn_node *n;
	ck_assert_int_eq(cn_node_new(&c, pool, 1, 0, &n), 0);
	const char *names[] = {"a", "b", "c", "d"};
	for (int i = 0; i < 4; i++)
		feed_alive(n, names[i], 1, 1, 0);
	ck_assert_uint_eq(cn_node_member_count(n), 3);
	ck_assert_uint_eq(cn_node_stats_get(n)->members_refused, 2);
	ck_assert_uint_eq(view(n, "c", NULL), 255);
	cn_node_assert_invariants(n);
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

START_TEST(time_going_backwards_is_a_bug)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	cn_node *n = lone_node(pool, 1000);
	cn_node_tick(n, 2000);
	cn_node_tick(n, 1999); /* asserts */
}
END_TEST

START_TEST(bad_config_is_refused)
{
	cn_node_config c;
	cn_node_config_default(&c);
	cn_node *n;
	c.addr = node_addr(0);
	ck_assert_int_eq(cn_node_new(&c, NULL, 1, 0, &n), CN_EINVAL); /* no name */
	strcpy(c.name, "ok");
	c.probe_timeout_ms = c.probe_interval_ms + 1;
	ck_assert_int_eq(cn_node_new(&c, NULL, 1, 0, &n), CN_EINVAL);
	c.probe_timeout_ms = 500;
	c.addr.family = 0;
	ck_assert_int_eq(cn_node_new(&c, NULL, 1, 0, &n), CN_EINVAL);
	c.addr = node_addr(0);
	ck_assert_int_eq(cn_node_new(&c, NULL, 1, 0, &n), 0); /* private pool */
	ck_assert_int_eq(cn_node_leave(n, 0), 0);
	ck_assert_int_eq(cn_node_join(n, &c.addr, 1, 0), CN_ESTATE);
	cn_meta m;
	memset(&m, 0, sizeof m);
	ck_assert_int_eq(cn_node_set_meta(n, &m, 0), CN_ESTATE);
	cn_node_free(n);
}
END_TEST

START_TEST(unknown_types_are_skipped_and_counted)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	cn_node *n = lone_node(pool, 0);
	/* [1, 15, {}] (a datagram type from the future), then an alive. */
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX] = {0x93, 0x01, 0x0f, 0x80};
	cn_msg m;
	memset(&m, 0, sizeof m);
	m.version = CN_PROTO_VERSION;
	m.type = CN_MSG_ALIVE;
	strcpy(m.u.alive.name, "later");
	m.u.alive.incarnation = 1;
	m.u.alive.addr = node_addr(3);
	m.u.alive.vmin = m.u.alive.vmax = CN_PROTO_VERSION;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf + 4, sizeof buf - 4);
	cn_msg_encode(&w, &m);
	size_t len;
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	cn_addr from = node_addr(3);
	ck_assert_int_eq(cn_node_recv(n, &from, buf, len + 4, 0), 0);
	const cn_node_stats *st = cn_node_stats_get(n);
	ck_assert_uint_eq(st->unknown_types, 1);
	ck_assert_uint_eq(st->msgs_in, 1);
	ck_assert_uint_eq(st->decode_errors, 0);
	ck_assert_uint_eq(view(n, "later", NULL), CN_STATE_ALIVE);
	cn_node_free(n);
	cn_pool_free(pool);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("node");
	TCase *tc = tcase_create("net");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, join_converges);
	tcase_add_test(tc, crash_is_detected_in_time);
	tcase_add_test(tc, suspected_member_refutes);
	tcase_add_test(tc, graceful_leave);
	tcase_add_test(tc, lifeguard_reduces_false_suspicions);
	tcase_add_test(tc, partition_heals_by_itself);
	tcase_add_test(tc, metadata_spreads_without_incarnation);
	tcase_add_test(tc, same_seed_same_trace);
	tcase_add_test(tc, garbage_only_counts_decode_errors);
	tcase_add_test(tc, rejoin_at_new_address_updates_views);
	tcase_add_test(tc, incompatible_member_recorded_not_probed);
	tcase_add_test(tc, long_partition_heals_by_itself);
	tcase_add_test(tc, whole_fleet_restart_rejoins);
	tcase_add_test(tc, failed_members_are_reaped);
	tcase_add_test(tc, lossy_network_no_false_failures);
	tcase_add_test(tc, merge_precedence_rules);
	tcase_add_test(tc, accused_self_refutes);
	tcase_add_test(tc, suspicion_at_newer_incarnation_restarts_timer);
	tcase_add_test(tc, pushpull_learned_members_are_not_gossiped);
	tcase_add_test(tc, buddy_system_tells_suspect_first);
	tcase_add_test(tc, table_limit_refuses_new_members);
	tcase_add_test(tc, bad_config_is_refused);
	tcase_add_test(tc, unknown_types_are_skipped_and_counted);
#ifndef NDEBUG
	tcase_add_test_raise_signal(tc, time_going_backwards_is_a_bug, SIGABRT);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
