/* Integration tests for core/node: N nodes on the deterministic in-memory
 * network of tests/simnet.h with explicit virtual time. */
#include "simnet.h"

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

/* A holder that missed a refutation (sim loss-10, 1,000 nodes: the gossip
 * tail) must not fail the live member: before the deadline it tells the
 * suspect, whose answer (its alive) clears the suspicion. Two real nodes,
 * wired by hand: "x" refuted long ago (incarnation 4) while "me" still
 * holds a suspicion at 3. me's own pings to x are dropped, as in a large
 * cluster where me probes x once per N periods (else the buddy system on
 * those pings would already do it). */
START_TEST(stale_suspicion_cleared_by_last_call)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	uint64_t now = 0, inc;
	cn_node_config c;
	cn_node_config_default(&c);
	strcpy(c.name, "me");
	c.addr = node_addr(0);
	c.gossip_nodes = 0; /* no gossip to x: only pings (dropped) and calls reach it */
	cn_node *n;
	ck_assert_int_eq(cn_node_new(&c, pool, 1, now, &n), 0);
	cn_node_config_default(&c);
	strcpy(c.name, "x");
	c.addr = node_addr(9); /* where feed_alive puts x */
	c.incarnation = 4;
	cn_node *x;
	ck_assert_int_eq(cn_node_new(&c, pool, 2, now, &x), 0);
	feed_alive(n, "x", 3, 1, now);
	feed_unprobed(n, "y", 1, now); /* the accuser; never probed */
	feed_accuse(n, CN_MSG_SUSPECT, "x", 3, "y", now);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_SUSPECT);
	cn_addr me_addr = node_addr(0), x_addr = node_addr(9);
	int calls = 0, failed = 0;
	uint64_t cleared = 0;
	while (now < 120000 && failed == 0 && cleared == 0) {
		now = cn_node_deadline(n);
		cn_node_tick(n, now);
		cn_out o;
		while (cn_node_next_output(n, &o) == 0) {
			failed += o.kind == CN_OUT_EVENT && o.event.type == CN_EV_FAILED;
			if (o.kind != CN_OUT_DATAGRAM || !cn_addr_eq(&o.to, &x_addr))
				continue;
			uint8_t t[16];
			cn_msg first;
			ck_assert_int_ge(msg_types(&o, t, &first, NULL), 1);
			if (t[0] == CN_MSG_PING)
				continue; /* dropped */
			/* A last call: the accusation alone, as the suspect's
			 * buddy would send it. */
			ck_assert_int_eq(msg_types(&o, t, &first, NULL), 1);
			ck_assert_uint_eq(t[0], CN_MSG_SUSPECT);
			ck_assert_str_eq(first.u.suspect.name, "x");
			ck_assert_str_eq(first.u.suspect.from, "y");
			ck_assert_uint_eq(first.u.suspect.incarnation, 3);
			calls++;
			/* The first call is lost; x hears the second. */
			if (calls == 1)
				continue;
			ck_assert_int_eq(cn_node_recv(x, &me_addr, o.data, o.len, now), 0);
		}
		/* x's answer goes back to me. */
		while (cn_node_next_output(x, &o) == 0)
			if (o.kind == CN_OUT_DATAGRAM && cn_addr_eq(&o.to, &me_addr))
				ck_assert_int_eq(cn_node_recv(n, &x_addr, o.data, o.len, now), 0);
		if (cleared == 0 && view(n, "x", NULL) == CN_STATE_ALIVE)
			cleared = now;
	}
	ck_assert_int_eq(failed, 0);
	ck_assert_uint_gt(cleared, 0);
	ck_assert_int_ge(calls, 2);
	ck_assert_uint_eq(view(n, "x", &inc), CN_STATE_ALIVE);
	ck_assert_uint_eq(inc, 4); /* x's own alive, no new refutation needed */
	cn_member xs;
	cn_node_self(x, &xs);
	ck_assert_uint_eq(xs.incarnation, 4);
	cn_node_assert_invariants(n);
	cn_node_free(x);
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

/* ---- failed and left members learnt from push-pull ---- */

static uint64_t last_event_at(const net *t, int node, uint8_t type, const char *name)
{
	uint64_t at = UINT64_MAX;
	for (size_t k = 0; k < t->log_len; k++)
		if (t->log[k].node == node && t->log[k].type == type && !strcmp(t->log[k].name, name))
			at = t->log[k].at_ms;
	return at;
}

static uint64_t events_of(const net *t, int node, uint8_t type, const char *name)
{
	uint64_t c = 0;
	for (size_t k = 0; k < t->log_len; k++)
		c += t->log[k].node == node && t->log[k].type == type && !strcmp(t->log[k].name, name);
	return c;
}

/* A node that joins after member X crashed and member Y left learns both
 * from its join push-pull: X failed and Y left, at their incarnations,
 * with their metadata, stamped as old as the seed's records, and forgets
 * them at about the time the older nodes do (dead_reap_ms after the
 * fact, not after its join). Nothing is declared: no CN_EV_FAILED or
 * CN_EV_LEFT, no suspicion on the joiner. */
START_TEST(joiner_learns_failed_and_left_members)
{
	enum { N = 7, JOINER = 6, OLD = 6, VICTIM = 3, LEAVER = 4, REAP_MS = 60000 };
	net t;
	net_init(&t, N, 21, true);
	for (int i = 0; i < N; i++)
		t.nodes[i].cfg.dead_reap_ms = REAP_MS;
	ck_assert_int_eq(cn_meta_set_label(&t.nodes[VICTIM].cfg.meta, "zone", "eu-1"), 0);
	ck_assert_int_eq(cn_meta_set_label(&t.nodes[LEAVER].cfg.meta, "zone", "eu-2"), 0);
	start_and_join(&t, OLD);
	ck_assert_uint_ne(net_run_until(&t, all_alive, NULL, 30000), UINT64_MAX);
	t.nodes[VICTIM].crashed = true;
	ck_assert_int_eq(cn_node_leave(t.nodes[LEAVER].node, t.now_ms), 0);
	drain_all(&t);
	for (int k = 0; k < 100 && !cn_node_leave_done(t.nodes[LEAVER].node); k++)
		net_run(&t, 100);
	t.nodes[LEAVER].crashed = true;
	who_state dead = {VICTIM, CN_STATE_DEAD}, left = {LEAVER, CN_STATE_LEFT};
	ck_assert_uint_ne(net_run_until(&t, all_see, &dead, 60000), UINT64_MAX);
	ck_assert_uint_ne(net_run_until(&t, all_see, &left, 10000), UINT64_MAX);
	net_run(&t, 20000); /* old news by the time the joiner comes */

	node_start(&t, JOINER);
	cn_addr seed = node_addr(0);
	ck_assert_int_eq(cn_node_join(t.nodes[JOINER].node, &seed, 1, t.now_ms), 0);
	drain_all(&t); /* the join push-pull is served synchronously */
	const cn_node *jn = t.nodes[JOINER].node;
	const int who[2] = {VICTIM, LEAVER};
	const uint8_t state[2] = {CN_STATE_DEAD, CN_STATE_LEFT};
	const char *zone[2] = {"eu-1", "eu-2"};
	for (int k = 0; k < 2; k++) {
		const char *name = t.nodes[who[k]].cfg.name;
		cn_member got, seed_view;
		ck_assert_int_eq(cn_node_member_find(jn, name, &got), 0);
		ck_assert_int_eq(cn_node_member_find(t.nodes[0].node, name, &seed_view), 0);
		ck_assert_uint_eq(got.state, state[k]);
		ck_assert_uint_eq(got.incarnation, seed_view.incarnation);
		ck_assert(cn_addr_eq(&got.addr, &t.nodes[who[k]].cfg.addr));
		ck_assert_str_eq(cn_meta_get_label(&got.meta, "zone"), zone[k]);
		/* Stamped with the seed's age: the stamps are whole seconds on
		 * each table's own grid, so they agree within one. */
		printf("learnt %s: joiner's stamp %lld ms from the seed's, %llu ms old\n", name,
		       (long long)(got.state_change_ms - seed_view.state_change_ms),
		       (unsigned long long)(t.now_ms - got.state_change_ms));
		ck_assert_uint_le(got.state_change_ms, seed_view.state_change_ms);
		ck_assert_uint_lt(seed_view.state_change_ms - got.state_change_ms, 1000);
		ck_assert_uint_ge(t.now_ms - got.state_change_ms, 20000);
		ck_assert_uint_eq(events_of(&t, JOINER, CN_EV_FAILED, name), 0);
		ck_assert_uint_eq(events_of(&t, JOINER, CN_EV_LEFT, name), 0);
	}
	ck_assert_uint_eq(events_of(&t, JOINER, CN_EV_KNOWN_FAILED, t.nodes[VICTIM].cfg.name), 1);
	ck_assert_uint_eq(events_of(&t, JOINER, CN_EV_KNOWN_LEFT, t.nodes[LEAVER].cfg.name), 1);
	ck_assert_uint_eq(cn_node_count_state(jn, CN_STATE_DEAD), 1);
	ck_assert_uint_eq(cn_node_count_state(jn, CN_STATE_LEFT), 1);
	ck_assert_uint_eq(cn_node_stats_get(jn)->deaths_declared, 0);
	ck_assert_uint_eq(cn_node_stats_get(jn)->suspicions, 0);

	/* Everyone else meets the joiner; nobody revives or re-declares. */
	ck_assert_uint_ne(net_run_until(&t, all_see, &dead, 30000), UINT64_MAX);
	net_run(&t, 2 * REAP_MS);
	uint64_t first = UINT64_MAX, last = 0;
	for (int i = 0; i < OLD; i++) {
		if (i == VICTIM || i == LEAVER)
			continue;
		for (int k = 0; k < 2; k++) {
			uint64_t at = last_event_at(&t, i, CN_EV_REAP, t.nodes[who[k]].cfg.name);
			ck_assert_uint_ne(at, UINT64_MAX);
			first = at < first ? at : first;
			last = at > last ? at : last;
		}
	}
	for (int k = 0; k < 2; k++) {
		const char *name = t.nodes[who[k]].cfg.name;
		uint64_t at = last_event_at(&t, JOINER, CN_EV_REAP, name);
		printf("learnt %s: reaped by the joiner at %+lld ms from the first old node, "
		       "old nodes within %llu ms\n", name, (long long)(at - first),
		       (unsigned long long)(last - first));
		/* The same age, give or take a second, plus at most one probe
		 * pass (about 5 s here) for the reap to run. */
		ck_assert_uint_ne(at, UINT64_MAX);
		ck_assert_uint_ge(at + 1000, first);
		ck_assert_uint_le(at, last + 6000);
		ck_assert_uint_eq(events_of(&t, JOINER, CN_EV_REAP, name), 1); /* not re-learnt */
		ck_assert_uint_eq(state_in(&t, JOINER, who[k]), 255);
	}
	ck_assert_uint_eq(count_events(&t, CN_EV_ALIVE, NULL), 0);
	check_invariants(&t);
	net_free(&t);
}
END_TEST

/* A hand-made push-pull reply: peer "p" alive, then the given members. */
typedef struct pp_member {
	const char *name;
	uint64_t inc;
	uint8_t state;
	bool has_down_ms;
	uint32_t down_ms;
} pp_member;

static void feed_pushpull(cn_node *n, const pp_member *ms, int count, uint64_t now)
{
	static uint8_t buf[1 << 16];
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_pushpull pp;
	memset(&pp, 0, sizeof pp);
	strcpy(pp.source, "p");
	cn_pushpull_encode_begin(&w, CN_MSG_PUSH_PULL, &pp, (uint32_t)count + 1);
	for (int i = -1; i < count; i++) {
		cn_member_wire m;
		memset(&m, 0, sizeof m);
		strcpy(m.name, i < 0 ? "p" : ms[i].name);
		m.addr = node_addr(i + 2);
		m.incarnation = i < 0 ? 1 : ms[i].inc;
		m.state = i < 0 ? CN_STATE_ALIVE : ms[i].state;
		m.has_down_ms = i >= 0 && ms[i].has_down_ms;
		m.down_ms = i < 0 ? 0 : ms[i].down_ms;
		m.vmin = m.vmax = CN_PROTO_VERSION;
		m.meta.battery_pct = 255;
		m.meta.cpus = 4;
		ck_assert_int_eq(cn_meta_set_label(&m.meta, "zone", i < 0 ? "p" : ms[i].name), 0);
		cn_pushpull_encode_member(&w, &m);
	}
	size_t len;
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	const uint8_t *reply;
	size_t reply_len;
	cn_addr from = node_addr(1);
	ck_assert_int_eq(cn_node_stream_serve(n, &from, buf, len, now, &reply, &reply_len), 0);
}

/* What a push-pull teaches about failed and left members, by hand: ages
 * from key 10 (absent: now; too old: nothing), no detection, no gossip;
 * nothing about ourselves; a member we know keeps today's rules. */
START_TEST(pushpull_failed_members_by_hand)
{
	cn_pool *pool;
	ck_assert_int_eq(cn_pool_new(&pool), 0);
	enum { DAY = 24 * 3600 * 1000 };
	uint64_t now = 2ull * DAY; /* a day of uptime: stamps a day back fit */
	cn_node *n = lone_node(pool, now);
	feed_alive(n, "known", 4, 1, now);
	uint8_t ev[16];
	(void)drain_events(n, ev);
	const pp_member ms[] = {
		{"x", 5, CN_STATE_DEAD, true, 300000},     /* failed 5 min ago */
		{"y", 2, CN_STATE_LEFT, true, DAY - 7200000}, /* left 22 h ago (before we existed) */
		{"old", 1, CN_STATE_DEAD, false, 0},       /* a sender without key 10 */
		{"gone", 1, CN_STATE_DEAD, true, DAY},     /* due for reaping: not recorded */
		{"late", 1, CN_STATE_DEAD, true, DAY - 3600000}, /* out (> 15/16 day): not recorded */
		{"me", 1, CN_STATE_DEAD, true, 1000},      /* ourselves: never recorded */
		{"known", 4, CN_STATE_DEAD, true, 5000},   /* known: a suspicion, as before */
	};
	feed_pushpull(n, ms, 7, now);
	cn_member m;
	ck_assert_int_eq(cn_node_member_find(n, "x", &m), 0);
	ck_assert_uint_eq(m.state, CN_STATE_DEAD);
	ck_assert_uint_eq(m.incarnation, 5);
	ck_assert_str_eq(cn_meta_get_label(&m.meta, "zone"), "x");
	ck_assert_uint_eq(m.meta.cpus, 4);
	ck_assert_uint_eq(m.state_change_ms, now - 300000);
	ck_assert_int_eq(cn_node_member_find(n, "y", &m), 0);
	ck_assert_uint_eq(m.state, CN_STATE_LEFT);
	ck_assert_uint_eq(m.incarnation, 2);
	ck_assert_uint_eq(m.state_change_ms, now - (DAY - 7200000));
	ck_assert(!cn_node_member_out(n, &m)); /* 22 h < 22.5 h */
	ck_assert_int_eq(cn_node_member_find(n, "old", &m), 0);
	ck_assert_uint_eq(m.state, CN_STATE_DEAD);
	ck_assert_uint_eq(m.state_change_ms, now);
	ck_assert_uint_eq(view(n, "gone", NULL), 255);
	ck_assert_uint_eq(view(n, "late", NULL), 255);
	cn_member self;
	cn_node_self(n, &self);
	ck_assert_uint_eq(self.state, CN_STATE_ALIVE);
	ck_assert_uint_eq(self.state_change_ms, now);
	ck_assert_uint_eq(view(n, "known", NULL), CN_STATE_SUSPECT);
	ck_assert_uint_eq(cn_node_member_count(n), 6); /* me, known, p, x, y, old */
	ck_assert_uint_eq(cn_node_count_state(n, CN_STATE_ALIVE), 2);
	ck_assert_uint_eq(cn_node_count_state(n, CN_STATE_DEAD), 2);
	ck_assert_uint_eq(cn_node_count_state(n, CN_STATE_LEFT), 1);
	int k = drain_events(n, ev);
	int known_failed = 0, known_left = 0, declared = 0;
	for (int i = 0; i < k; i++) {
		known_failed += ev[i] == CN_EV_KNOWN_FAILED;
		known_left += ev[i] == CN_EV_KNOWN_LEFT;
		declared += ev[i] == CN_EV_FAILED || ev[i] == CN_EV_LEFT;
	}
	ck_assert_int_eq(known_failed, 2);
	ck_assert_int_eq(known_left, 1);
	ck_assert_int_eq(declared, 0);
	ck_assert_uint_eq(cn_node_stats_get(n)->deaths_declared, 0);
	ck_assert_uint_eq(cn_node_stats_get(n)->suspicions, 1); /* "known" only */
	/* Old news is not gossiped: p hears of "known" (suspect) and of p,
	 * never a dead or leave about x, y or old. */
	int about_learnt = 0;
	for (uint64_t t = now; t < now + 5000; t += 50) {
		cn_node_tick(n, t);
		cn_out o;
		while (cn_node_next_output(n, &o) == 0) {
			if (o.kind != CN_OUT_DATAGRAM)
				continue;
			cn_mp_reader r;
			cn_mp_reader_init(&r, o.data, o.len);
			cn_msg msg;
			while (cn_mp_remaining(&r) > 0 && cn_msg_decode(&r, &msg, NULL) == 0) {
				const char *about = msg.type == CN_MSG_DEAD    ? msg.u.dead.name
						    : msg.type == CN_MSG_LEAVE ? msg.u.leave.name
						    : msg.type == CN_MSG_ALIVE ? msg.u.alive.name
									       : "";
				about_learnt += !strcmp(about, "x") || !strcmp(about, "y") ||
						!strcmp(about, "old");
			}
		}
	}
	ck_assert_int_eq(about_learnt, 0);
	/* y is out of placement's base half an hour after our start (age
	 * 22.5 h, by age, not by the reap pass) and comes of age two hours
	 * after it: reaped at the end of the probe pass after that. */
	uint64_t t = now + 5000, out_at = 0;
	for (; t < now + 7200000 + 10000 && view(n, "y", NULL) != 255; t += 500) {
		cn_node_tick(n, t);
		(void)drain_events(n, ev);
		if (out_at == 0 && cn_node_member_find(n, "y", &m) == 0 && cn_node_member_out(n, &m))
			out_at = t;
	}
	ck_assert_uint_ge(out_at, now + 1800000);
	ck_assert_uint_le(out_at, now + 1800000 + 500);
	ck_assert_uint_ge(t, now + 7200000);
	ck_assert_uint_le(t, now + 7200000 + 5000);
	ck_assert_uint_eq(view(n, "x", NULL), CN_STATE_DEAD);
	cn_node_assert_invariants(n);
	cn_node_free(n);

	/* The same right after boot (the agent's clock is monotonic): a state
	 * older than our clock still comes of age on time; its stamp shows 0. */
	now = 5000;
	n = lone_node(pool, now);
	feed_pushpull(n, &ms[1], 1, now);
	ck_assert_int_eq(cn_node_member_find(n, "y", &m), 0);
	ck_assert_uint_eq(m.state, CN_STATE_LEFT);
	ck_assert_uint_eq(m.state_change_ms, 0);
	for (t = now; t < now + 7200000 + 10000 && view(n, "y", NULL) != 255; t += 500) {
		cn_node_tick(n, t);
		(void)drain_events(n, ev);
	}
	ck_assert_uint_ge(t, now + 7200000);
	ck_assert_uint_le(t, now + 7200000 + 5000);
	cn_node_assert_invariants(n);
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
	tcase_add_test(tc, stale_suspicion_cleared_by_last_call);
	tcase_add_test(tc, table_limit_refuses_new_members);
	tcase_add_test(tc, bad_config_is_refused);
	tcase_add_test(tc, unknown_types_are_skipped_and_counted);
	tcase_add_test(tc, joiner_learns_failed_and_left_members);
	tcase_add_test(tc, pushpull_failed_members_by_hand);
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
