/* Policy probe: how operator writes of policy documents spread through the
 * fleet's replicas (core/psync.h), and, measured the same way, how a
 * metadata change spreads through membership gossip, so the two can be
 * compared at the same fleet size. Adds "policy" and "membership" to
 * summary.json and writes policy_writes.csv and meta_changes.csv.
 *
 * DEFINITIONS (docs/sim.md repeats them):
 *
 * A write W is an operator write accepted on its writer (apply_local came
 * out APPLIED) at time t0. Documents of one name are ordered as in doc.h:
 * (version, writer, document hash). A replica HOLDS W when its winner for
 * W's name is W or comes after it in that order (a newer write superseded
 * it there).
 *
 * Propagation of W: its REQUIRED set is fixed at t0: every live node with a
 * replica in the writer's partition group, the writer excluded (block and
 * flap rules are not counted as disconnection). A required node leaves the
 * set when it crashes or leaves (it no longer needs W) or when a later
 * partition puts it in another group than the writer (no longer connected).
 * W is PROPAGATED at the first instant its required set is empty — every
 * node that was required holds W — and propagation_ms = that instant - t0.
 * W is UNPROPAGATED when the run ends first. half_ms is the same for half
 * of the initial set.
 *
 * Lost writes: at the end, W is LOST if no live replica holds W (no live
 * node has W or a newer version of its name). Exception, counted apart as
 * lost_to_crash: with policy.persist off a crash wipes the replica, so a
 * write whose every holder crashed (e.g. the writer crashed before anyone
 * fetched it) is gone by the model's construction, not by replication;
 * the agent's LMDB store would keep it. lost_writes > 0 is an invariant
 * violation (the run fails at its end).
 *
 * Divergence: at the end, a name DIVERGES when two live replicas hold
 * different winners for it (a replica without the name differs from one
 * with it). When the network is whole (no partition, block or flap rule)
 * and nothing happened for at least the settle time (scenario
 * policy.settle, default 3 reconnect intervals + one scaled push-pull
 * interval) since the last write, heal, start or crash, diverged_names > 0
 * is an invariant violation.
 *
 * Repair: a node REPAIRS when it starts again after a crash (empty unless
 * policy.persist) or joins late, and, at a heal, every node that a
 * partition or rule had cut. Its repair closes at the first instant the
 * fleet agrees (every live replica has the same digest root);
 * repair_ms = the last time its own digest changed before that instant -
 * the time it returned (0 if it never changed): when it came to hold the
 * state the fleet converged on. heal_converge_ms: heal -> the fleet agrees.
 *
 * Membership dissemination: a metadata change (label rev=<k>) made on node
 * m at t0 (cn_node_set_meta, the same instant as a write with meta: true).
 * Its required set is formed and maintained like a write's; a node is done
 * when its view of m carries rev >= k (checked at each event it reports
 * about m). dissemination_ms = time until every required node is done. A
 * change whose node crashes first is cancelled, not counted. */
#include <stdlib.h>
#include <string.h>

#include "core/psync.h"
#include "metrics.h"
#include "util/buf.h"
#include "world.h"

enum { CSV_ROWS_MAX = 100000, BODY_CAP = CN_DOC_BODY_MAX };
enum { W_PENDING = 0, W_DONE, W_CRASH_LOST };

typedef struct pwrite {
	uint64_t at_us, done_us, half_us;      /* UINT64_MAX: not (yet) */
	uint32_t writer, name_id;
	uint64_t version;
	char wname[CN_DOC_WRITER_MAX + 1];
	uint8_t hash[CN_DOC_HASH_BYTES];
	uint8_t *req, *held;                   /* per slot */
	uint32_t n0, remaining, holders;
	uint8_t status;
} pwrite;

typedef struct pname {
	char *s;
	uint64_t h;
	uint32_t *writes;
	uint32_t n_writes, cap_writes;
} pname;

typedef struct pmeta {
	uint64_t at_us, done_us, half_us;
	uint32_t node, life;
	uint64_t rev;
	uint8_t *req;
	uint32_t n0, remaining;
	uint8_t status;                        /* W_PENDING, W_DONE, W_CRASH_LOST (cancelled) */
} pmeta;

typedef struct repair {
	uint32_t node, life;
	uint64_t open_us;
} repair;

typedef struct polp {
	bool enabled;
	uint32_t cap;
	pwrite *w;
	uint32_t n_w, cap_w, n_pending;
	pname *names;
	uint32_t n_names, cap_names;
	uint32_t *slots;                       /* name table: index + 1, 0 empty */
	uint32_t n_slots;
	pmeta *m;
	uint32_t n_m, cap_m, n_m_pending;
	uint32_t *m_pending_of;                /* per slot: pending metas it wrote */
	/* digests */
	uint64_t *fp;
	uint8_t *dirty, *was_cut;
	uint64_t *last_change_us;
	repair *rep;
	uint32_t n_rep, cap_rep;
	uint64_t *repair_ms;
	uint32_t n_repair_ms, cap_repair_ms;
	uint32_t unrepaired_cancelled;
	uint64_t heal_us;                      /* open heal measurement, UINT64_MAX none */
	int64_t heal_ms[64];                   /* -1: never converged */
	uint32_t n_heal;
	uint64_t last_disturb_us;
	/* results of finish */
	bool finished, settled, whole;
	uint64_t lost, diverged, lost_crash, unprop, settle_us, audit_entries;
	uint8_t *body;
} polp;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

static int order(uint64_t va, const char *wa, const uint8_t *ha, uint64_t vb, const char *wb,
		 const uint8_t *hb)
{
	if (va != vb)
		return va < vb ? -1 : 1;
	int c = strcmp(wa, wb);
	if (c != 0)
		return c < 0 ? -1 : 1;
	c = memcmp(ha, hb, CN_DOC_HASH_BYTES);
	return (c > 0) - (c < 0);
}

static bool grow(void **v, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return true;
	uint32_t c = *cap ? 2 * *cap : 64;
	void *x = realloc(*v, (size_t)c * elem);
	if (x == NULL)
		return false;
	*v = x;
	*cap = c;
	return true;
}

/* Name id, creating it when add; UINT32_MAX if absent (or no memory). */
static uint32_t name_id(polp *p, const char *s, bool add)
{
	uint64_t h = fnv(s);
	if (p->n_slots == 0 || (add && 2 * (p->n_names + 1) > p->n_slots)) {
		if (!add)
			return UINT32_MAX;
		uint32_t ns = p->n_slots ? 2 * p->n_slots : 1024;
		uint32_t *sl = calloc(ns, sizeof *sl);
		if (sl == NULL)
			return UINT32_MAX;
		for (uint32_t k = 0; k < p->n_names; k++) {
			uint32_t i = (uint32_t)p->names[k].h & (ns - 1);
			while (sl[i] != 0)
				i = (i + 1) & (ns - 1);
			sl[i] = k + 1;
		}
		free(p->slots);
		p->slots = sl;
		p->n_slots = ns;
	}
	uint32_t i = (uint32_t)h & (p->n_slots - 1);
	for (; p->slots[i] != 0; i = (i + 1) & (p->n_slots - 1)) {
		pname *n = &p->names[p->slots[i] - 1];
		if (n->h == h && strcmp(n->s, s) == 0)
			return p->slots[i] - 1;
	}
	if (!add || !grow((void **)&p->names, &p->cap_names, p->n_names, sizeof *p->names))
		return UINT32_MAX;
	pname *n = &p->names[p->n_names];
	memset(n, 0, sizeof *n);
	n->s = strdup(s);
	n->h = h;
	if (n->s == NULL)
		return UINT32_MAX;
	p->slots[i] = ++p->n_names;
	return p->n_names - 1;
}

static bool holds(polp *p, sim_world *w, uint32_t node, const pwrite *x, const char *name)
{
	cn_policy *pol = w->nodes[node].pol;
	cn_doc d;
	if (pol == NULL || cn_policy_get(pol, "config", name, 0, &d, p->body, BODY_CAP) != 0)
		return false;
	uint8_t h[CN_DOC_HASH_BYTES];
	cn_doc_hash(&d, h);
	return order(d.version, d.writer, h, x->version, x->wname, x->hash) >= 0;
}

/* ---- writes ----------------------------------------------------------- */

static void write_progress(polp *p, sim_world *w, pwrite *x)
{
	if (x->half_us == UINT64_MAX && 2 * (x->n0 - x->remaining) >= x->n0)
		x->half_us = w->now_us;
	if (x->status == W_PENDING && x->remaining == 0) {
		x->status = W_DONE;
		x->done_us = w->now_us;
		p->n_pending--;
	}
}

static void write_unrequire(polp *p, sim_world *w, pwrite *x, uint32_t node)
{
	if (x->req == NULL || !x->req[node])
		return;
	x->req[node] = 0;
	x->remaining--;
	write_progress(p, w, x);
}

static void write_hold(polp *p, sim_world *w, pwrite *x, uint32_t node)
{
	if (!x->held[node]) {
		x->held[node] = 1;
		x->holders++;
	}
	write_unrequire(p, w, x, node);
}

static void p_on_write(void *st, sim_world *w, const sim_policy_ev *e)
{
	polp *p = st;
	uint32_t id = name_id(p, e->name, true);
	if (id == UINT32_MAX || !grow((void **)&p->w, &p->cap_w, p->n_w, sizeof *p->w) ||
	    !grow((void **)&p->names[id].writes, &p->names[id].cap_writes, p->names[id].n_writes,
		  sizeof(uint32_t))) {
		sim_world_fail(w, "policy probe: out of memory");
		return;
	}
	pwrite *x = &p->w[p->n_w];
	memset(x, 0, sizeof *x);
	x->at_us = w->now_us;
	x->done_us = x->half_us = UINT64_MAX;
	x->writer = e->node;
	x->name_id = id;
	x->version = e->version;
	snprintf(x->wname, sizeof x->wname, "%s", e->writer);
	memcpy(x->hash, e->hash, sizeof x->hash);
	x->req = calloc(p->cap, 1);
	x->held = calloc(p->cap, 1);
	if (x->req == NULL || x->held == NULL) {
		free(x->req);
		free(x->held);
		sim_world_fail(w, "policy probe: out of memory");
		return;
	}
	p->names[id].writes[p->names[id].n_writes++] = p->n_w;
	p->n_w++;
	p->n_pending++;
	x->held[e->node] = 1;
	x->holders = 1;
	uint16_t g = w->nodes[e->node].group;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (i == e->node || !sim_node_live(w, i) || w->nodes[i].pol == NULL ||
		    w->nodes[i].group != g)
			continue;
		/* A concurrent newer write of the same name may be there already. */
		if (holds(p, w, i, x, e->name)) {
			x->held[i] = 1;
			x->holders++;
			continue;
		}
		x->req[i] = 1;
		x->n0++;
	}
	x->remaining = x->n0;
	write_progress(p, w, x);
	p->last_disturb_us = w->now_us;
}

/* ---- digests and repair ----------------------------------------------- */

static bool measuring(const polp *p) { return p->n_rep > 0 || p->heal_us != UINT64_MAX; }

static uint64_t fp_of(polp *p, sim_world *w, uint32_t i)
{
	if (p->dirty[i]) {
		uint8_t root[CN_DOC_HASH_BYTES];
		cn_policy_digest_root(w->nodes[i].pol, root);
		memcpy(&p->fp[i], root, sizeof p->fp[i]);
		p->dirty[i] = 0;
	}
	return p->fp[i];
}

/* Every live replica has the same digest root. */
static bool fleet_agrees(polp *p, sim_world *w)
{
	bool have = false;
	uint64_t first = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (!sim_node_live(w, i) || w->nodes[i].pol == NULL)
			continue;
		uint64_t f = fp_of(p, w, i);
		if (have && f != first)
			return false;
		first = f;
		have = true;
	}
	return true;
}

static void check_agree(polp *p, sim_world *w)
{
	if (!measuring(p) || !fleet_agrees(p, w))
		return;
	for (uint32_t k = 0; k < p->n_rep; k++) {
		const repair *r = &p->rep[k];
		if (!sim_node_live(w, r->node) || w->nodes[r->node].life != r->life) {
			p->unrepaired_cancelled++;
			continue;
		}
		uint64_t lc = p->last_change_us[r->node];
		uint64_t ms = lc > r->open_us ? (lc - r->open_us) / 1000 : 0;
		if (grow((void **)&p->repair_ms, &p->cap_repair_ms, p->n_repair_ms, sizeof(uint64_t)))
			p->repair_ms[p->n_repair_ms++] = ms;
	}
	p->n_rep = 0;
	if (p->heal_us != UINT64_MAX) {
		if (p->n_heal > 0)
			p->heal_ms[p->n_heal - 1] = (int64_t)((w->now_us - p->heal_us) / 1000);
		p->heal_us = UINT64_MAX;
	}
}

static void open_repair(polp *p, sim_world *w, uint32_t i)
{
	for (uint32_t k = 0; k < p->n_rep; k++)
		if (p->rep[k].node == i) {
			p->rep[k].life = w->nodes[i].life;
			p->rep[k].open_us = w->now_us;
			return;
		}
	if (!grow((void **)&p->rep, &p->cap_rep, p->n_rep, sizeof *p->rep))
		return;
	p->rep[p->n_rep++] = (repair){.node = i, .life = w->nodes[i].life, .open_us = w->now_us};
}

static void p_on_policy(void *st, sim_world *w, const sim_policy_ev *e)
{
	polp *p = st;
	p->dirty[e->node] = 1;
	p->last_change_us[e->node] = w->now_us;
	uint32_t id = name_id(p, e->name, false);
	if (id != UINT32_MAX && strcmp(e->kind, "config") == 0) {
		const pname *n = &p->names[id];
		for (uint32_t k = 0; k < n->n_writes; k++) {
			pwrite *x = &p->w[n->writes[k]];
			if (e->erase) {
				if (x->held[e->node]) {
					x->held[e->node] = 0;
					x->holders--;
				}
			} else if (order(e->version, e->writer, e->hash, x->version, x->wname,
					 x->hash) >= 0) {
				write_hold(p, w, x, e->node);
			}
		}
	}
	check_agree(p, w);
}

/* ---- metadata --------------------------------------------------------- */

static void meta_progress(polp *p, sim_world *w, pmeta *m)
{
	if (m->half_us == UINT64_MAX && 2 * (m->n0 - m->remaining) >= m->n0)
		m->half_us = w->now_us;
	if (m->status == W_PENDING && m->remaining == 0) {
		m->status = W_DONE;
		m->done_us = w->now_us;
		p->n_m_pending--;
		p->m_pending_of[m->node]--;
	}
}

static void meta_unrequire(polp *p, sim_world *w, pmeta *m, uint32_t node)
{
	if (m->status != W_PENDING || !m->req[node])
		return;
	m->req[node] = 0;
	m->remaining--;
	meta_progress(p, w, m);
}

static uint64_t rev_seen(sim_world *w, uint32_t observer, uint32_t member)
{
	cn_member mem;
	char name[16];
	snprintf(name, sizeof name, "n%u", member);
	if (w->nodes[observer].node == NULL ||
	    cn_node_member_find(w->nodes[observer].node, name, &mem) != 0)
		return 0;
	for (uint32_t k = 0; k < mem.meta.n_labels && k < CN_LABELS_MAX; k++)
		if (strcmp(mem.meta.labels[k].key, "rev") == 0)
			return strtoull(mem.meta.labels[k].value, NULL, 10);
	return 0;
}

static void meta_check(polp *p, sim_world *w, uint32_t observer, uint32_t member)
{
	if (member >= p->cap || p->m_pending_of[member] == 0)
		return;
	uint64_t rev = rev_seen(w, observer, member);
	for (uint32_t k = 0; k < p->n_m && p->m_pending_of[member] > 0; k++) {
		pmeta *m = &p->m[k];
		if (m->status == W_PENDING && m->node == member && m->rev <= rev)
			meta_unrequire(p, w, m, observer);
	}
}

static void p_on_meta(void *st, sim_world *w, uint32_t node, uint64_t rev)
{
	polp *p = st;
	if (!grow((void **)&p->m, &p->cap_m, p->n_m, sizeof *p->m)) {
		sim_world_fail(w, "policy probe: out of memory");
		return;
	}
	pmeta *m = &p->m[p->n_m];
	memset(m, 0, sizeof *m);
	m->at_us = w->now_us;
	m->done_us = m->half_us = UINT64_MAX;
	m->node = node;
	m->life = w->nodes[node].life;
	m->rev = rev;
	m->req = calloc(p->cap, 1);
	if (m->req == NULL) {
		sim_world_fail(w, "policy probe: out of memory");
		return;
	}
	p->n_m++;
	p->n_m_pending++;
	p->m_pending_of[node]++;
	uint16_t g = w->nodes[node].group;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (i == node || !sim_node_live(w, i) || w->nodes[i].group != g)
			continue;
		m->req[i] = 1;
		m->n0++;
	}
	m->remaining = m->n0;
	meta_progress(p, w, m);
}

static void p_on_event(void *st, sim_world *w, uint32_t observer, uint32_t member,
		       const cn_event *ev)
{
	(void)ev;
	polp *p = st;
	if (p->n_m_pending > 0 && member != UINT32_MAX)
		meta_check(p, w, observer, member);
}

static void p_on_resync(void *st, sim_world *w, uint32_t node)
{
	polp *p = st;
	for (uint32_t k = 0; k < p->n_m && p->n_m_pending > 0; k++)
		if (p->m[k].status == W_PENDING && p->m[k].req[node])
			meta_check(p, w, node, p->m[k].node);
}

/* ---- reality ---------------------------------------------------------- */

static void node_gone(polp *p, sim_world *w, uint32_t i, bool wiped)
{
	for (uint32_t k = 0; k < p->n_w; k++) {
		pwrite *x = &p->w[k];
		write_unrequire(p, w, x, i);
		if (wiped && x->held[i]) {
			x->held[i] = 0;
			x->holders--;
			if (x->holders == 0 && x->status != W_CRASH_LOST) {
				if (x->status == W_PENDING)
					p->n_pending--;
				x->status = W_CRASH_LOST;
			}
		}
	}
	for (uint32_t k = 0; k < p->n_m; k++) {
		pmeta *m = &p->m[k];
		if (m->status != W_PENDING)
			continue;
		if (m->node == i) { /* its node is gone: nobody can still learn it */
			m->status = W_CRASH_LOST;
			p->n_m_pending--;
			p->m_pending_of[i]--;
		} else {
			meta_unrequire(p, w, m, i);
		}
	}
	p->dirty[i] = 1;
}

static void p_on_fact(void *st, sim_world *w, const sim_fact *f)
{
	polp *p = st;
	bool wiped = !w->sc->policy.persist;
	switch (f->kind) {
	case FACT_UP:
		p->dirty[f->node] = 1;
		p->last_change_us[f->node] = w->now_us;
		if (w->nodes[f->node].life > 1 || f->node >= w->n_init) {
			p->last_disturb_us = w->now_us;
			if (p->enabled)
				open_repair(p, w, f->node);
		}
		break;
	case FACT_DOWN:
	case FACT_GONE:
		node_gone(p, w, f->node, wiped);
		p->last_disturb_us = w->now_us;
		break;
	case FACT_LEAVE:
		node_gone(p, w, f->node, false);
		p->last_disturb_us = w->now_us;
		break;
	case FACT_NET: {
		bool whole = !w->partitioned && w->n_rules == 0;
		p->last_disturb_us = w->now_us;
		/* Required nodes now cut from their writer are no longer required. */
		for (uint32_t k = 0; k < p->n_w; k++) {
			pwrite *x = &p->w[k];
			if (x->status != W_PENDING)
				continue;
			for (uint32_t i = 0; i < w->n_used; i++)
				if (x->req[i] && w->nodes[i].group != w->nodes[x->writer].group)
					write_unrequire(p, w, x, i);
		}
		for (uint32_t k = 0; k < p->n_m; k++) {
			pmeta *m = &p->m[k];
			for (uint32_t i = 0; m->status == W_PENDING && i < w->n_used; i++)
				if (m->req[i] && w->nodes[i].group != w->nodes[m->node].group)
					meta_unrequire(p, w, m, i);
		}
		if (!whole) {
			for (uint32_t i = 0; i < w->n_used; i++)
				if (w->nodes[i].group != 0 || w->nodes[i].net_touch_us == UINT64_MAX)
					p->was_cut[i] = 1;
			break;
		}
		if (!p->enabled)
			break;
		bool any = false;
		for (uint32_t i = 0; i < w->n_used; i++) {
			if (p->was_cut[i] && sim_node_live(w, i)) {
				open_repair(p, w, i);
				any = true;
			}
			p->was_cut[i] = 0;
		}
		if (any && p->n_heal < sizeof p->heal_ms / sizeof p->heal_ms[0]) {
			p->heal_ms[p->n_heal++] = -1;
			p->heal_us = w->now_us;
		}
		break;
	}
	default:
		break;
	}
	if (p->enabled && f->kind != FACT_ACTION)
		check_agree(p, w);
}

static void p_on_sample(void *st, sim_world *w)
{
	polp *p = st;
	if (p->enabled)
		check_agree(p, w);
}

/* ---- the end ---------------------------------------------------------- */

static void p_finish(void *st, sim_world *w)
{
	polp *p = st;
	p->finished = true;
	p->settle_us = sim_world_policy_settle_us(w);
	p->whole = !w->partitioned && w->n_rules == 0;
	p->settled = p->whole && w->now_us >= p->last_disturb_us + p->settle_us;
	for (uint32_t k = 0; k < p->n_w; k++) {
		if (p->w[k].status == W_PENDING)
			p->unprop++;
		if (p->w[k].status == W_CRASH_LOST)
			p->lost_crash++;
	}
	if (!p->enabled)
		return;
	/* Ask the replicas themselves (not the event bookkeeping above). */
	cn_doc d;
	uint8_t h[CN_DOC_HASH_BYTES];
	for (uint32_t id = 0; id < p->n_names; id++) {
		const pname *n = &p->names[id];
		bool have_max = false, diverged = false, first = true, first_has = false;
		uint64_t mv = 0;
		char mw[CN_DOC_WRITER_MAX + 1] = "";
		uint8_t mh[CN_DOC_HASH_BYTES] = {0}, fh[CN_DOC_HASH_BYTES] = {0};
		for (uint32_t i = 0; i < w->n_used; i++) {
			if (!sim_node_live(w, i) || w->nodes[i].pol == NULL)
				continue;
			bool has = cn_policy_get(w->nodes[i].pol, "config", n->s, 0, &d, p->body,
						 BODY_CAP) == 0;
			if (has)
				cn_doc_hash(&d, h);
			if (first) {
				first = false;
				first_has = has;
				if (has)
					memcpy(fh, h, sizeof fh);
			} else if (has != first_has || (has && memcmp(fh, h, sizeof fh) != 0)) {
				diverged = true;
			}
			if (has && (!have_max || order(d.version, d.writer, h, mv, mw, mh) > 0)) {
				have_max = true;
				mv = d.version;
				snprintf(mw, sizeof mw, "%s", d.writer);
				memcpy(mh, h, sizeof mh);
			}
		}
		p->diverged += diverged;
		for (uint32_t k = 0; k < n->n_writes; k++) {
			const pwrite *x = &p->w[n->writes[k]];
			if (x->status == W_CRASH_LOST)
				continue;
			if (!have_max || order(mv, mw, mh, x->version, x->wname, x->hash) < 0)
				p->lost++;
		}
	}
	/* Audit chains travel only by the push-pull AUDIT exchange; every live
	 * replica's chains must verify, and audit_entries_mean says how much of
	 * them it holds (complete: one entry per accepted write, all writers). */
	for (uint32_t i = 0; i < w->n_used && !w->failed; i++) {
		cn_policy_audit_report rep = {0};
		char why[CN_POLICY_WHY_MAX] = "";
		if (!sim_node_live(w, i) || w->nodes[i].pol == NULL)
			continue;
		if (cn_policy_audit_verify(w->nodes[i].pol, &rep, why, sizeof why) != 0)
			sim_world_fail(w, "policy: the audit chains of n%u do not verify: %s", i, why);
		p->audit_entries += rep.entries;
	}
	if (p->lost > 0)
		sim_world_fail(w, "policy: %llu acknowledged write(s) lost: no live replica holds "
				  "them or a newer version of their name",
			       (unsigned long long)p->lost);
	else if (p->diverged > 0 && p->settled)
		sim_world_fail(w, "policy: %llu name(s) differ between live replicas %.1fs after the "
				  "last disturbance (settle bound %.1fs, network whole)",
			       (unsigned long long)p->diverged,
			       (double)(w->now_us - p->last_disturb_us) / 1e6,
			       (double)p->settle_us / 1e6);
}

static void dist(cn_json *j, const char *key, uint64_t *v, size_t n)
{
	double sum = 0;
	uint64_t mx = 0;
	for (size_t k = 0; k < n; k++) {
		sum += (double)v[k];
		mx = v[k] > mx ? v[k] : mx;
	}
	cn_json_key(j, key);
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "count", n);
	cn_json_kv_u64(j, "p50", sim_percentile(v, n, 50));
	cn_json_kv_u64(j, "p90", sim_percentile(v, n, 90));
	cn_json_kv_u64(j, "p99", sim_percentile(v, n, 99));
	cn_json_kv_u64(j, "max", mx);
	cn_json_kv_f64(j, "mean", n ? sum / (double)n : 0);
	cn_json_obj_end(j);
}

static void stats_add(cn_psync_stats *a, const cn_psync_stats *b)
{
	const uint64_t *s = (const uint64_t *)b;
	uint64_t *d = (uint64_t *)a;
	for (size_t k = 0; k < sizeof *a / sizeof(uint64_t); k++)
		d[k] += s[k];
}

static void p_summary(void *st, sim_world *w, cn_json *j)
{
	polp *p = st;
	size_t nmax = p->n_w > p->n_m ? p->n_w : p->n_m;
	uint64_t *v = malloc((nmax + p->n_repair_ms + 1) * sizeof *v);
	uint64_t *h = malloc((nmax + 1) * sizeof *h);
	if (v == NULL || h == NULL) {
		free(v);
		free(h);
		return;
	}
	size_t n = 0, nh = 0;
	cn_json_key(j, "policy");
	cn_json_obj_begin(j);
	cn_json_kv_bool(j, "enabled", p->enabled);
	cn_json_kv_bool(j, "persist", w->sc->policy.persist);
	cn_json_kv_u64(j, "writes", p->n_w);
	cn_json_kv_u64(j, "writes_refused", w->writes_refused);
	cn_json_kv_u64(j, "names", p->n_names);
	for (uint32_t k = 0; k < p->n_w; k++) {
		if (p->w[k].status == W_DONE)
			v[n++] = (p->w[k].done_us - p->w[k].at_us) / 1000;
		if (p->w[k].half_us != UINT64_MAX && p->w[k].n0 > 0)
			h[nh++] = (p->w[k].half_us - p->w[k].at_us) / 1000;
	}
	dist(j, "propagation_ms", v, n);
	dist(j, "half_ms", h, nh);
	cn_json_kv_u64(j, "unpropagated", p->unprop);
	cn_json_kv_u64(j, "lost_writes", p->lost);
	cn_json_kv_u64(j, "lost_to_crash", p->lost_crash);
	cn_json_kv_u64(j, "diverged_names", p->diverged);
	cn_json_kv_bool(j, "settled", p->settled);
	cn_json_kv_u64(j, "settle_bound_ms", p->settle_us / 1000);
	cn_json_kv_u64(j, "quiet_ms", (w->now_us - p->last_disturb_us) / 1000);
	cn_json_kv_u64(j, "pushpull_interval_ms",
		       sim_world_pushpull_us(w, w->live > 2 ? w->live : 2) / 1000);
	if (p->n_repair_ms > 0)
		memcpy(v, p->repair_ms, p->n_repair_ms * sizeof *v);
	dist(j, "repair_ms", v, p->n_repair_ms);
	cn_json_kv_u64(j, "unrepaired", p->n_rep);
	cn_json_key(j, "heal_converge_ms");
	cn_json_arr_begin(j);
	for (uint32_t k = 0; k < p->n_heal; k++) {
		if (p->heal_ms[k] < 0)
			cn_json_null(j);
		else
			cn_json_u64(j, (uint64_t)p->heal_ms[k]);
	}
	cn_json_arr_end(j);
	/* Replication counters: live nodes now plus nodes that stopped. */
	cn_psync_stats s = w->psync_gone;
	uint64_t bytes = 0, live = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		if (w->nodes[i].node == NULL)
			continue;
		const cn_psync_stats *x = cn_node_psync_stats(w->nodes[i].node);
		if (x != NULL)
			stats_add(&s, x);
		if (w->nodes[i].pmem != NULL && sim_node_live(w, i)) {
			bytes += cn_policy_mem_bytes(w->nodes[i].pmem);
			live++;
		}
	}
	cn_json_kv_u64(j, "replica_bytes_mean", live ? bytes / live : 0);
	cn_json_kv_f64(j, "audit_entries_mean", live ? (double)p->audit_entries / (double)live : 0);
	cn_json_key(j, "psync");
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "announces_in", s.announces_in);
	cn_json_kv_u64(j, "announces_new", s.announces_new);
	cn_json_kv_u64(j, "announces_queued", s.announces_queued);
	cn_json_kv_u64(j, "announces_dropped", s.announces_dropped);
	cn_json_kv_u64(j, "fetches_out", s.fetches_out);
	cn_json_kv_u64(j, "fetch_failures", s.fetch_failures);
	cn_json_kv_u64(j, "docs_fetched", s.docs_fetched);
	cn_json_kv_u64(j, "docs_applied", s.docs_applied);
	cn_json_kv_u64(j, "docs_refused", s.docs_refused);
	cn_json_kv_u64(j, "syncs_out", s.syncs_out);
	cn_json_kv_u64(j, "syncs_served", s.syncs_served);
	cn_json_kv_u64(j, "listed", s.listed);
	cn_json_kv_u64(j, "audit_out", s.audit_out);
	cn_json_kv_u64(j, "audit_added", s.audit_added);
	cn_json_kv_u64(j, "wants_dropped", s.wants_dropped);
	cn_json_kv_u64(j, "decode_errors", s.decode_errors);
	cn_json_obj_end(j);
	cn_json_obj_end(j);

	n = nh = 0;
	uint64_t cancelled = 0, unfinished = 0;
	for (uint32_t k = 0; k < p->n_m; k++) {
		const pmeta *m = &p->m[k];
		if (m->status == W_DONE)
			v[n++] = (m->done_us - m->at_us) / 1000;
		if (m->half_us != UINT64_MAX && m->n0 > 0)
			h[nh++] = (m->half_us - m->at_us) / 1000;
		cancelled += m->status == W_CRASH_LOST;
		unfinished += m->status == W_PENDING;
	}
	cn_json_key(j, "membership");
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "meta_changes", p->n_m);
	dist(j, "dissemination_ms", v, n);
	dist(j, "half_ms", h, nh);
	cn_json_kv_u64(j, "unfinished", unfinished);
	cn_json_kv_u64(j, "cancelled", cancelled);
	cn_json_obj_end(j);
	free(v);
	free(h);
}

static int p_write(void *st, sim_world *w, const char *dir)
{
	(void)w;
	polp *p = st;
	if (p->n_w == 0 && p->n_m == 0)
		return 0;
	static const char *status[] = {"pending", "done", "lost_to_crash"};
	FILE *f = sim_open_csv(dir, "policy_writes.csv");
	if (f == NULL)
		return -1;
	fprintf(f, "at_ms,writer,name,version,required,half_ms,propagation_ms,status\n");
	for (uint32_t k = 0; k < p->n_w && k < CSV_ROWS_MAX; k++) {
		const pwrite *x = &p->w[k];
		fprintf(f, "%llu,n%u,%s,%llu,%u,", (unsigned long long)(x->at_us / 1000), x->writer,
			p->names[x->name_id].s, (unsigned long long)x->version, x->n0);
		if (x->half_us != UINT64_MAX)
			fprintf(f, "%llu", (unsigned long long)((x->half_us - x->at_us) / 1000));
		fputc(',', f);
		if (x->done_us != UINT64_MAX)
			fprintf(f, "%llu", (unsigned long long)((x->done_us - x->at_us) / 1000));
		fprintf(f, ",%s\n", status[x->status]);
	}
	int rc = fclose(f) == 0 ? 0 : -1;
	f = sim_open_csv(dir, "meta_changes.csv");
	if (f == NULL)
		return -1;
	static const char *mstatus[] = {"pending", "done", "cancelled"};
	fprintf(f, "at_ms,node,rev,required,half_ms,dissemination_ms,status\n");
	for (uint32_t k = 0; k < p->n_m && k < CSV_ROWS_MAX; k++) {
		const pmeta *m = &p->m[k];
		fprintf(f, "%llu,n%u,%llu,%u,", (unsigned long long)(m->at_us / 1000), m->node,
			(unsigned long long)m->rev, m->n0);
		if (m->half_us != UINT64_MAX)
			fprintf(f, "%llu", (unsigned long long)((m->half_us - m->at_us) / 1000));
		fputc(',', f);
		if (m->done_us != UINT64_MAX)
			fprintf(f, "%llu", (unsigned long long)((m->done_us - m->at_us) / 1000));
		fprintf(f, ",%s\n", mstatus[m->status]);
	}
	return fclose(f) == 0 ? rc : -1;
}

static int p_init(sim_world *w, void **st)
{
	polp *p = calloc(1, sizeof *p);
	if (p == NULL)
		return -1;
	*st = p;
	p->enabled = w->sc->policy.enabled;
	p->cap = w->cap;
	p->heal_us = UINT64_MAX;
	p->fp = calloc(w->cap, sizeof *p->fp);
	p->dirty = calloc(w->cap, 1);
	p->was_cut = calloc(w->cap, 1);
	p->last_change_us = calloc(w->cap, sizeof *p->last_change_us);
	p->m_pending_of = calloc(w->cap, sizeof *p->m_pending_of);
	p->body = malloc(BODY_CAP);
	if (p->fp == NULL || p->dirty == NULL || p->was_cut == NULL || p->last_change_us == NULL ||
	    p->m_pending_of == NULL || p->body == NULL)
		return -1;
	return 0;
}

static void p_free(void *st)
{
	polp *p = st;
	if (p == NULL)
		return;
	for (uint32_t k = 0; k < p->n_w; k++) {
		free(p->w[k].req);
		free(p->w[k].held);
	}
	for (uint32_t k = 0; k < p->n_names; k++) {
		free(p->names[k].s);
		free(p->names[k].writes);
	}
	for (uint32_t k = 0; k < p->n_m; k++)
		free(p->m[k].req);
	free(p->w);
	free(p->names);
	free(p->slots);
	free(p->m);
	free(p->fp);
	free(p->dirty);
	free(p->was_cut);
	free(p->last_change_us);
	free(p->m_pending_of);
	free(p->rep);
	free(p->repair_ms);
	free(p->body);
	free(p);
}

const sim_probe_ops sim_probe_policy = {
	.name = "policy",
	.init = p_init,
	.on_event = p_on_event,
	.on_resync = p_on_resync,
	.on_fact = p_on_fact,
	.on_sample = p_on_sample,
	.finish = p_finish,
	.summary = p_summary,
	.write_files = p_write,
	.free = p_free,
	.on_policy = p_on_policy,
	.on_write = p_on_write,
	.on_meta = p_on_meta,
};
