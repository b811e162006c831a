/* Membership probe: what every live node believes against what is true.
 *
 * It keeps each node's view as the simulator learned it from the node's
 * events: one byte per (observer, member) pair, S[o * cap + m] (0 unknown,
 * else 1 + cn_member_state_code), plus, up to INC_PAIRS_MAX nodes, the low
 * 16 bits of the incarnation per pair (compared in serial-number
 * arithmetic: an incarnation only grows by refutations, far less than
 * 2^15 between two observations). 10,000 nodes: 100 MB of states.
 *
 * From the pairs, incrementally (O(1) per event, O(N) per crash/start):
 *   bad     pairs (live observer, member) where the view is wrong: a live
 *           member not seen alive or suspect, or a gone member still seen
 *           alive or suspect. bad == 0 is "converged"; each disturbance (crash,
 *           restart, leave, join, heal, churn) is closed at the first
 *           instant bad == 0 after it.
 *   n_up[m] live observers that see m alive or suspect: a crash of m is
 *           detected when it reaches 0 (detection_ms).
 *
 * Invariants (a violation stops the run):
 *   V1 an incarnation seen by a node for a member never decreases
 *      (pairs with incarnations tracked; else only in the paranoid scans)
 *   V2 no member is declared failed unless some node suspected it at an
 *      incarnation not above the declared one (the suspicion path)
 *      (skipped once a node's outbox overflowed: events were lost).
 *      A node that learns a member as already failed or left from a
 *      push-pull (CN_EV_KNOWN_FAILED/LEFT: it joined or restarted after
 *      the fact) declares nothing: the sender's declaration went through
 *      this check. The pair takes the state like any other (right for a
 *      gone member, wrong for a live one), and it is not counted as a
 *      failure or leave in events.csv.
 *   V3 after a heal, with no further action and a quiet network, views
 *      converge within sim_world_heal_bound_us()
 *   V4 paranoid mode (nodes <= paranoid_max): at every sample each live
 *      node passes cn_node_assert_invariants and its member table agrees
 *      with the states its events announced (every state change is
 *      reported by an event: the node.h contract).
 *
 * False positives: a live member declared failed (CN_EV_FAILED by anyone)
 * while neither it nor the declaring node was touched by a network rule
 * (partition, block, flap) within the heal bound; declarations inside
 * that window are counted apart as partition_declarations. Paused and
 * slow nodes are live: declaring them failed is a false positive. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util/buf.h"
#include "world.h"

enum {
	INC_PAIRS_MAX = 4096,         /* nodes up to which incarnations are kept per pair */
	DIST_MAX = 1u << 16,          /* disturbances recorded */
	SAMPLES_MAX = 1u << 22,       /* detection samples */
	DETAIL_ROWS_MAX = 200000,
	PER_NODE_COLUMNS_MAX = 64,
	CSV_MAX = 256u << 20,
};

enum { S_NONE = 0, S_ALIVE = 1, S_SUSPECT = 2, S_DEAD = 3, S_LEFT = 4 };

typedef struct dist {
	uint64_t at_us, conv_us;   /* conv_us UINT64_MAX while open */
	const char *kind;
	bool heal;
} dist;

typedef struct u64v {
	uint64_t *v;
	size_t n, cap;
} u64v;

typedef struct memb {
	uint32_t cap;
	uint8_t *S;
	uint16_t *inc;
	uint32_t *n_up;
	uint64_t bad;
	uint64_t *crash_us;        /* per member: crash time + 1 while undetected */
	uint64_t *first_susp_us, *first_fail_us;
	uint64_t *susp_min_inc;
	uint64_t *life_inc;        /* incarnation the member's current life started at */
	uint8_t *fp_flag;
	u64v det, first_susp, spread;
	uint64_t undetected, fp_decl, part_decl, fp_members, views_checked;
	dist *d;
	uint32_t n_d, n_open;
	uint64_t heal_bound_us;
	/* per-interval counts for events.csv */
	uint64_t c_susp, c_fail, c_alive, c_join, c_left, c_reap, c_fp;
	uint64_t detail_rows;
	cn_buf members_csv, events_csv, detail_csv;
} memb;

static bool up_state(uint8_t s) { return s == S_ALIVE || s == S_SUSPECT; }

static bool bad_of(bool expect_up, uint8_t s)
{
	/* A live member seen as suspect is still in the membership (as in
	 * memberlist): under loss some member is always suspect somewhere,
	 * and a stricter rule would make convergence unmeasurable. */
	return expect_up ? !up_state(s) : up_state(s);
}

static void vpush(sim_world *w, u64v *v, uint64_t x)
{
	if (v->n == v->cap) {
		if (v->cap >= SAMPLES_MAX)
			return;
		size_t cap = v->cap ? v->cap * 2 : 256;
		uint64_t *n = realloc(v->v, cap * sizeof *n);
		if (n == NULL) {
			sim_world_fail(w, "out of memory (samples)");
			return;
		}
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = x;
}

static void close_open(memb *p, sim_world *w)
{
	if (p->bad != 0 || p->n_open == 0)
		return;
	for (uint32_t k = 0; k < p->n_d; k++)
		if (p->d[k].conv_us == UINT64_MAX)
			p->d[k].conv_us = w->now_us;
	p->n_open = 0;
}

static void detected(memb *p, sim_world *w, uint32_t m)
{
	uint64_t t0 = p->crash_us[m] - 1;
	p->crash_us[m] = 0;
	vpush(w, &p->det, (w->now_us - t0) / 1000);
	if (p->first_fail_us[m])
		vpush(w, &p->spread, (w->now_us - (p->first_fail_us[m] - 1)) / 1000);
}

/* The one place a pair changes; counted = o is a live observer. */
static void set_pair(memb *p, sim_world *w, uint32_t o, uint32_t m, uint8_t s_new)
{
	size_t idx = (size_t)o * p->cap + m;
	uint8_t s_old = p->S[idx];
	if (s_old == s_new || o == m)
		return;
	p->S[idx] = s_new;
	if (!sim_node_live(w, o))
		return;
	bool e = sim_node_live(w, m);
	p->bad += (uint64_t)bad_of(e, s_new);
	p->bad -= (uint64_t)bad_of(e, s_old);
	if (up_state(s_old) && !up_state(s_new)) {
		if (--p->n_up[m] == 0 && p->crash_us[m])
			detected(p, w, m);
	} else if (!up_state(s_old) && up_state(s_new)) {
		p->n_up[m]++;
	}
	close_open(p, w);
}

static int m_init(sim_world *w, void **st)
{
	memb *p = calloc(1, sizeof *p);
	if (p == NULL)
		return -1;
	*st = p;
	p->cap = w->cap;
	size_t pairs = (size_t)w->cap * w->cap;
	p->S = calloc(pairs, 1);
	if (w->cap <= INC_PAIRS_MAX)
		p->inc = calloc(pairs, sizeof *p->inc);
	p->n_up = calloc(w->cap, sizeof *p->n_up);
	p->crash_us = calloc(w->cap, sizeof *p->crash_us);
	p->first_susp_us = calloc(w->cap, sizeof(uint64_t));
	p->first_fail_us = calloc(w->cap, sizeof(uint64_t));
	p->susp_min_inc = malloc(w->cap * sizeof(uint64_t));
	p->fp_flag = calloc(w->cap, 1);
	p->life_inc = calloc(w->cap, sizeof(uint64_t));
	p->d = calloc(DIST_MAX, sizeof *p->d);
	if (!p->S || (w->cap <= INC_PAIRS_MAX && !p->inc) || !p->n_up || !p->crash_us ||
	    !p->first_susp_us || !p->first_fail_us || !p->susp_min_inc || !p->fp_flag || !p->d ||
	    !p->life_inc)
		return -1;
	for (uint32_t i = 0; i < w->cap; i++)
		p->susp_min_inc[i] = UINT64_MAX;
	p->heal_bound_us = sim_world_heal_bound_us(w);
	cn_buf_init(&p->members_csv, CSV_MAX);
	cn_buf_init(&p->events_csv, CSV_MAX);
	cn_buf_init(&p->detail_csv, CSV_MAX);
	cn_buf_puts(&p->members_csv, "t_s,live,min,mean,max");
	for (uint32_t i = 0; w->cap <= PER_NODE_COLUMNS_MAX && i < w->cap; i++)
		cn_buf_printf(&p->members_csv, ",n%u", i);
	cn_buf_puts(&p->members_csv, "\n");
	cn_buf_puts(&p->events_csv,
		    "t_s,suspect,failed,alive_again,join,left,reap,false_positive_declarations,bad_pairs\n");
	cn_buf_puts(&p->detail_csv, "t_ms,observer,member,event,incarnation\n");
	return 0;
}

static uint8_t state_of_event(uint8_t type, uint8_t cur)
{
	switch (type) {
	case CN_EV_JOIN:
	case CN_EV_ALIVE: return S_ALIVE;
	case CN_EV_SUSPECT: return S_SUSPECT;
	case CN_EV_FAILED:
	case CN_EV_KNOWN_FAILED: return S_DEAD;
	case CN_EV_LEFT:
	case CN_EV_KNOWN_LEFT: return S_LEFT;
	case CN_EV_REAP: return S_NONE;
	default: return cur;
	}
}

static void check_inc(memb *p, sim_world *w, uint32_t o, uint32_t m, uint64_t inc,
		      uint8_t s_before, const char *why)
{
	if (p->inc == NULL)
		return;
	size_t idx = (size_t)o * p->cap + m;
	uint16_t lo = (uint16_t)inc;
	if (s_before != S_NONE && (int16_t)(uint16_t)(lo - p->inc[idx]) < 0)
		sim_world_fail(w, "V1: n%u's incarnation for n%u went from ~%u to %llu (%s)", o, m,
			       p->inc[idx], (unsigned long long)inc, why);
	p->inc[idx] = lo;
}

static void count_event(memb *p, sim_world *w, uint32_t o, uint32_t m, const cn_event *ev)
{
	static const char *names[] = {"?", "join", "alive", "suspect", "failed", "left",
				      "update", "reap", "self_incarnation"};
	switch (ev->type) {
	case CN_EV_SUSPECT: p->c_susp++; break;
	case CN_EV_FAILED: p->c_fail++; break;
	case CN_EV_ALIVE: p->c_alive++; break;
	case CN_EV_JOIN: p->c_join++; break;
	case CN_EV_LEFT: p->c_left++; break;
	case CN_EV_REAP: p->c_reap++; break;
	default: return;
	}
	if (ev->type == CN_EV_JOIN || ev->type == CN_EV_REAP || p->detail_rows >= DETAIL_ROWS_MAX)
		return;
	p->detail_rows++;
	cn_buf_printf(&p->detail_csv, "%.3f,%u,%u,%s,%llu\n", (double)w->now_us / 1e3, o, m,
		      names[ev->type], (unsigned long long)ev->incarnation);
}

static void on_failed(memb *p, sim_world *w, uint32_t o, uint32_t m, const cn_event *ev)
{
	if (w->outputs_dropped == 0 && p->susp_min_inc[m] > ev->incarnation)
		sim_world_fail(w, "V2: n%u declared n%u failed at incarnation %llu with no "
				  "suspicion of it at or below that incarnation",
			       o, m, (unsigned long long)ev->incarnation);
	if (p->first_fail_us[m] == 0 && p->crash_us[m])
		p->first_fail_us[m] = w->now_us + 1;
	/* A declaration about an earlier life (below the incarnation this life
	 * started at) is a correct detection of that life, not a false positive. */
	if (!sim_node_live(w, m) || ev->incarnation < p->life_inc[m])
		return;
	if (sim_net_touched(w, m, p->heal_bound_us) || sim_net_touched(w, o, p->heal_bound_us)) {
		p->part_decl++;
		return;
	}
	p->fp_decl++;
	p->c_fp++;
	if (!p->fp_flag[m]) {
		p->fp_flag[m] = 1;
		p->fp_members++;
	}
}

static void m_event(void *st, sim_world *w, uint32_t o, uint32_t m, const cn_event *ev)
{
	memb *p = st;
	if (m == UINT32_MAX || m == o || ev->type == CN_EV_SELF_INCARNATION)
		return;
	size_t idx = (size_t)o * p->cap + m;
	uint8_t before = p->S[idx];
	count_event(p, w, o, m, ev);
	if (ev->type != CN_EV_REAP)
		check_inc(p, w, o, m, ev->incarnation, before, "event");
	if (ev->type == CN_EV_SUSPECT) {
		if (ev->incarnation < p->susp_min_inc[m])
			p->susp_min_inc[m] = ev->incarnation;
		if (p->first_susp_us[m] == 0 && p->crash_us[m]) {
			p->first_susp_us[m] = w->now_us + 1;
			vpush(w, &p->first_susp, (w->now_us - (p->crash_us[m] - 1)) / 1000);
		}
	}
	if (ev->type == CN_EV_FAILED)
		on_failed(p, w, o, m, ev);
	set_pair(p, w, o, m, state_of_event(ev->type, before));
}

/* Rebuild row o from the node's member table. O(N) copies: only after an
 * outbox overflow and in paranoid scans. */
static void scan_row(memb *p, sim_world *w, uint32_t o, bool verify)
{
	const cn_node *n = w->nodes[o].node;
	uint8_t *seen = calloc(p->cap, 1);
	if (seen == NULL) {
		sim_world_fail(w, "out of memory (scan)");
		return;
	}
	size_t count = cn_node_member_count(n);
	cn_member mb;
	for (size_t i = 0; i < count && !w->failed; i++) {
		if (cn_node_member_get(n, i, &mb) != 0)
			break;
		uint32_t m = sim_name_index(w, mb.name);
		if (m == UINT32_MAX || m == o)
			continue;
		uint8_t s = (uint8_t)(mb.state + 1);
		size_t idx = (size_t)o * p->cap + m;
		if (verify && p->S[idx] != s)
			sim_world_fail(w, "V4: n%u holds n%u in state %u but its events said %u", o, m,
				       mb.state, (unsigned)p->S[idx] - 1);
		check_inc(p, w, o, m, mb.incarnation, p->S[idx], "view");
		seen[m] = s;
	}
	for (uint32_t m = 0; m < p->cap && !w->failed; m++) {
		if (verify && m != o && seen[m] == S_NONE && p->S[(size_t)o * p->cap + m] != S_NONE)
			sim_world_fail(w, "V4: n%u's events said it knows n%u; its table does not", o, m);
		set_pair(p, w, o, m, seen[m]);
	}
	free(seen);
	p->views_checked++;
}

static void m_resync(void *st, sim_world *w, uint32_t o)
{
	scan_row(st, w, o, false);
}

/* Member m's expected state changed from e0 to e1: re-score its column. */
static void column(memb *p, sim_world *w, uint32_t m, bool e0, bool e1)
{
	for (uint32_t o = 0; o < w->n_used; o++) {
		if (o == m || !sim_node_live(w, o))
			continue;
		uint8_t s = p->S[(size_t)o * p->cap + m];
		p->bad += (uint64_t)bad_of(e1, s);
		p->bad -= (uint64_t)bad_of(e0, s);
	}
}

/* Record a disturbance; starts coalesce into the open record of their kind
 * (a join storm is one disturbance, measured from its first start). */
static void open_dist(memb *p, sim_world *w, const char *kind, bool heal, bool coalesce)
{
	if (coalesce && p->n_d > 0 && p->d[p->n_d - 1].conv_us == UINT64_MAX &&
	    !strcmp(p->d[p->n_d - 1].kind, kind))
		return;
	if (p->n_d == DIST_MAX)
		return;
	p->d[p->n_d++] = (dist){.at_us = w->now_us, .conv_us = UINT64_MAX, .kind = kind,
				.heal = heal};
	p->n_open++;
}

static void m_fact(void *st, sim_world *w, const sim_fact *f)
{
	memb *p = st;
	uint32_t i = f->node;
	switch (f->kind) {
	case FACT_UP:
		p->life_inc[i] = w->nodes[i].disk_inc;
		open_dist(p, w, w->nodes[i].life > 1 ? "restart" : i < w->n_init ? "start" : "join",
			  false, true);
		if (p->crash_us[i]) {
			p->crash_us[i] = 0; /* back before everyone noticed */
			p->undetected++;
		}
		memset(p->S + (size_t)i * p->cap, 0, p->cap);
		if (p->inc)
			memset(p->inc + (size_t)i * p->cap, 0, p->cap * sizeof *p->inc);
		column(p, w, i, false, true);
		p->bad += w->live - 1; /* a new node knows nobody yet */
		break;
	case FACT_DOWN:
	case FACT_LEAVE:
		if (f->kind == FACT_DOWN && w->nodes[i].leaving) {
			memset(p->S + (size_t)i * p->cap, 0, p->cap); /* counted out at leave */
			break;
		}
		/* status already changed: count the row as a live observer's. */
		for (uint32_t m = 0; m < w->n_used; m++) {
			if (m == i)
				continue;
			uint8_t s = p->S[(size_t)i * p->cap + m];
			p->bad -= (uint64_t)bad_of(sim_node_live(w, m), s);
			if (up_state(s) && --p->n_up[m] == 0 && p->crash_us[m])
				detected(p, w, m);
		}
		column(p, w, i, true, false);
		if (f->kind == FACT_DOWN && p->n_up[i] > 0) {
			p->crash_us[i] = w->now_us + 1;
			p->first_susp_us[i] = p->first_fail_us[i] = 0;
		}
		if (f->kind == FACT_DOWN)
			memset(p->S + (size_t)i * p->cap, 0, p->cap);
		break;
	case FACT_GONE:
		memset(p->S + (size_t)i * p->cap, 0, p->cap);
		break;
	case FACT_ACTION:
		if (f->reality || f->heal)
			open_dist(p, w, f->action, f->heal, false);
		break;
	default:
		break;
	}
	close_open(p, w);
}

static bool network_quiet(const sim_world *w)
{
	if (w->partitioned || w->n_rules > 0)
		return false;
	for (uint32_t i = 0; i < w->n_used; i++)
		if (w->nodes[i].slowed || w->nodes[i].pause_until_us > w->now_us)
			return false;
	return true;
}

static void check_heal_bound(memb *p, sim_world *w)
{
	for (uint32_t k = 0; k < p->n_d && p->n_open > 0; k++) {
		const dist *d = &p->d[k];
		if (!d->heal || d->conv_us != UINT64_MAX || w->now_us < d->at_us + p->heal_bound_us)
			continue;
		if (w->last_action_us == d->at_us && network_quiet(w))
			sim_world_fail(w, "V3: not converged %.1fs after the heal at %.1fs (bound %.1fs "
					  "from the configuration); %llu view pairs still wrong",
				       (double)(w->now_us - d->at_us) / 1e6, (double)d->at_us / 1e6,
				       (double)p->heal_bound_us / 1e6, (unsigned long long)p->bad);
	}
}

static void sample_members(memb *p, sim_world *w)
{
	uint32_t n = 0;
	size_t mn = 0, mx = 0;
	double sum = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (!sim_node_live(w, i))
			continue;
		const cn_node *nd = w->nodes[i].node;
		size_t seen = cn_node_count_state(nd, CN_STATE_ALIVE) +
			      cn_node_count_state(nd, CN_STATE_SUSPECT);
		mn = n == 0 || seen < mn ? seen : mn;
		mx = n == 0 || seen > mx ? seen : mx;
		sum += (double)seen;
		n++;
	}
	cn_buf_printf(&p->members_csv, "%.3f,%u,%zu,%.2f,%zu", (double)w->now_us / 1e6, w->live, mn,
		      n ? sum / n : 0.0, mx);
	for (uint32_t i = 0; w->cap <= PER_NODE_COLUMNS_MAX && i < w->cap; i++) {
		const cn_node *nd = sim_node_live(w, i) ? w->nodes[i].node : NULL;
		if (nd)
			cn_buf_printf(&p->members_csv, ",%zu",
				      cn_node_count_state(nd, CN_STATE_ALIVE) +
					      cn_node_count_state(nd, CN_STATE_SUSPECT));
		else
			cn_buf_puts(&p->members_csv, ",");
	}
	cn_buf_puts(&p->members_csv, "\n");
}

static void m_sample(void *st, sim_world *w)
{
	memb *p = st;
	sample_members(p, w);
	cn_buf_printf(&p->events_csv, "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n",
		      (double)w->now_us / 1e6, (unsigned long long)p->c_susp,
		      (unsigned long long)p->c_fail, (unsigned long long)p->c_alive,
		      (unsigned long long)p->c_join, (unsigned long long)p->c_left,
		      (unsigned long long)p->c_reap, (unsigned long long)p->c_fp,
		      (unsigned long long)p->bad);
	p->c_susp = p->c_fail = p->c_alive = p->c_join = p->c_left = p->c_reap = p->c_fp = 0;
	check_heal_bound(p, w);
	if (w->cap <= w->sc->paranoid_max) {
		for (uint32_t i = 0; i < w->n_used && !w->failed; i++) {
			if (w->nodes[i].status != ST_UP)
				continue;
			cn_node_assert_invariants(w->nodes[i].node);
			if (sim_node_live(w, i))
				scan_row(p, w, i, true);
		}
	}
}

static void pctl(cn_json *j, const char *key, u64v *v)
{
	cn_json_key(j, key);
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "count", v->n);
	cn_json_kv_u64(j, "p50", sim_percentile(v->v, v->n, 50));
	cn_json_kv_u64(j, "p99", sim_percentile(v->v, v->n, 99));
	cn_json_kv_u64(j, "max", sim_percentile(v->v, v->n, 100));
	uint64_t sum = 0;
	for (size_t i = 0; i < v->n; i++)
		sum += v->v[i];
	cn_json_kv_f64(j, "mean", v->n ? (double)sum / (double)v->n : 0);
	cn_json_obj_end(j);
}

static void m_summary(void *st, sim_world *w, cn_json *j)
{
	memb *p = st;
	uint64_t mx = 0, unconv = 0;
	cn_json_key(j, "convergence_ms");
	cn_json_obj_begin(j);
	cn_json_key(j, "per_disturbance");
	cn_json_arr_begin(j);
	for (uint32_t k = 0; k < p->n_d; k++) {
		const dist *d = &p->d[k];
		cn_json_obj_begin(j);
		cn_json_kv_u64(j, "at_ms", d->at_us / 1000);
		cn_json_kv_str(j, "kind", d->kind);
		cn_json_key(j, "ms");
		if (d->conv_us == UINT64_MAX) {
			cn_json_null(j);
			unconv++;
		} else {
			uint64_t ms = (d->conv_us - d->at_us) / 1000;
			cn_json_u64(j, ms);
			mx = ms > mx ? ms : mx;
		}
		cn_json_obj_end(j);
	}
	cn_json_arr_end(j);
	cn_json_kv_u64(j, "max", mx);
	cn_json_kv_u64(j, "unconverged", unconv);
	cn_json_kv_u64(j, "heal_bound_ms", p->heal_bound_us / 1000);
	cn_json_kv_u64(j, "final_wrong_pairs", p->bad);
	cn_json_obj_end(j);
	pctl(j, "detection_ms", &p->det);
	cn_json_kv_u64(j, "undetected_restarted", p->undetected);
	pctl(j, "first_suspicion_ms", &p->first_susp);
	pctl(j, "spread_ms", &p->spread);
	cn_json_kv_u64(j, "false_positives", p->fp_members);
	cn_json_kv_u64(j, "false_positive_declarations", p->fp_decl);
	cn_json_kv_u64(j, "partition_declarations", p->part_decl);
	cn_json_key(j, "invariants");
	cn_json_obj_begin(j);
	cn_json_kv_bool(j, "ok", !w->failed);
	cn_json_kv_bool(j, "incarnation_pairs", p->inc != NULL);
	cn_json_kv_bool(j, "suspicion_path", w->outputs_dropped == 0);
	cn_json_kv_u64(j, "view_scans", p->views_checked);
	cn_json_kv_u64(j, "outbox_resyncs", w->resyncs);
	cn_json_obj_end(j);
}

static int m_expect(void *st, sim_world *w, const sim_expect *e)
{
	(void)w;
	memb *p = st;
	int bad = 0;
	uint64_t unconv = 0;
	for (uint32_t k = 0; k < p->n_d; k++)
		unconv += p->d[k].conv_us == UINT64_MAX;
	uint64_t p99 = sim_percentile(p->det.v, p->det.n, 99);
	if (e->has_fp_max && p->fp_members > e->fp_max) {
		fprintf(stderr, "canopy-sim: expect: false_positives %llu > %llu\n",
			(unsigned long long)p->fp_members, (unsigned long long)e->fp_max);
		bad++;
	}
	if (e->has_det_p99_max && p99 > e->det_p99_ms_max) {
		fprintf(stderr, "canopy-sim: expect: detection p99 %llu ms > %llu ms\n",
			(unsigned long long)p99, (unsigned long long)e->det_p99_ms_max);
		bad++;
	}
	if (e->has_detected_min && p->det.n < e->detected_min) {
		fprintf(stderr, "canopy-sim: expect: %zu crashes detected < %llu\n", p->det.n,
			(unsigned long long)e->detected_min);
		bad++;
	}
	if (e->has_converged && e->converged && unconv > 0) {
		fprintf(stderr, "canopy-sim: expect: %llu disturbances never converged\n",
			(unsigned long long)unconv);
		bad++;
	}
	return bad;
}

static int write_buf(const char *dir, const char *name, const cn_buf *b)
{
	FILE *f = sim_open_csv(dir, name);
	if (f == NULL)
		return -1;
	fwrite(b->data, 1, b->len, f);
	return fclose(f) == 0 ? 0 : -1;
}

static int m_write(void *st, sim_world *w, const char *dir)
{
	(void)w;
	memb *p = st;
	int rc = write_buf(dir, "members.csv", &p->members_csv);
	rc |= write_buf(dir, "events.csv", &p->events_csv);
	rc |= write_buf(dir, "events_detail.csv", &p->detail_csv);
	return rc;
}

static void m_free(void *st)
{
	memb *p = st;
	if (p == NULL)
		return;
	free(p->S);
	free(p->inc);
	free(p->n_up);
	free(p->crash_us);
	free(p->first_susp_us);
	free(p->first_fail_us);
	free(p->susp_min_inc);
	free(p->fp_flag);
	free(p->life_inc);
	free(p->det.v);
	free(p->first_susp.v);
	free(p->spread.v);
	free(p->d);
	cn_buf_free(&p->members_csv);
	cn_buf_free(&p->events_csv);
	cn_buf_free(&p->detail_csv);
	free(p);
}

const sim_probe_ops sim_probe_membership = {
	.name = "membership",
	.init = m_init,
	.on_event = m_event,
	.on_resync = m_resync,
	.on_fact = m_fact,
	.on_sample = m_sample,
	.summary = m_summary,
	.expect = m_expect,
	.write_files = m_write,
	.free = m_free,
};
