/* The membership state machine: SWIM with all of Lifeguard (node.h).
 *
 * TIMERS. Every timer of the node is here; the rest of the file only
 * reports events to them. Times are the caller's now_ms; "scaled" means
 * multiplied by (awareness score + 1) when lifeguard is on (awareness.h).
 *
 *   probe        next_probe_ms = start + scaled(probe_interval_ms)
 *                One probe at a time, targets in randomized round-robin
 *                order (the member table is reshuffled at every pass end).
 *   indirect     probe.indirect_at_ms = start + scaled(probe_timeout_ms)
 *                No ack yet: ping-req through indirect_checks random alive
 *                members, want_nack when lifeguard is on.
 *   probe end    probe.end_ms = start + scaled(probe_interval_ms)
 *                Still no ack: awareness += missing nacks (or +1 without
 *                nack-capable helpers) and the target becomes suspect at the
 *                incarnation it had when the probe started.
 *   nack         fwd.nack_at_ms = relayed + 4/5 * min(probe_timeout_ms,
 *                probe_interval_ms - probe_timeout_ms): as intermediary, tell
 *                the prober the target did not answer, early enough to land
 *                before the prober's probe period ends.
 *   suspicion    start + max(min, max - (max-min) * log(C+1)/log(K+1))
 *                min = suspicion_mult * max(1, log10 N) * probe_interval_ms
 *                max = suspicion_max_mult * min (lifeguard; else max = min)
 *                K = min(indirect_checks, N-2), C = distinct confirmations.
 *                Expiry: the suspect is declared failed (suspicion.h).
 *   last call    (lifeguard) CN_SUSPICION_LAST_CALLS datagrams to the suspect,
 *                probe_interval_ms apart, the last one an interval before
 *                the suspicion deadline: buddy system for holders that
 *                missed the refutation (suspicion.h, LAST CALLS).
 *   gossip       next_gossip_ms = now + gossip_interval_ms; armed only while the
 *                broadcast queue is non-empty. gossip_nodes random members,
 *                including members failed less than gossip_to_dead_ms ago.
 *   push-pull    next_pushpull_ms = now + pushpull_interval_ms * scale(N),
 *                scale = 1 for N <= 32, else ceil(log2 N - log2 32) + 1
 *                (memberlist's pushPullScale). Full state with one random
 *                alive member over the stream plane. First one at a random
 *                offset inside the SCALED interval so nodes do not
 *                synchronise: drawn in the base interval at creation, then
 *                re-drawn from the creation time inside the scaled one when
 *                that first deadline comes (the size is known by then).
 *                (Not gossiping members first learned from a push-pull
 *                is implemented but off: see merge_member.)
 *   reconnect    next_reconnect_ms = now + reconnect_interval_ms: push-pull with
 *                one random failed (not left) member, else with a seed we
 *                do not currently see alive. This heals partitions and
 *                whole-fleet restarts with no operator. The request holds
 *                only us and the peer (see state_slots), the reply all.
 *   join retry   join_retry_ms = last try + backoff, backoff 1 s doubling
 *                up to join_retry_max_ms, while no other member is known.
 *   metadata     meta_sent_ms + meta_min_interval_ms: a held cn_node_set_meta
 *                goes out when the rate limit allows.
 *   reap         failed/left members older than dead_reap_ms are forgotten
 *                at the end of the probe pass in which they come of age
 *                (a pass is N probes, so at most one pass late). The age
 *                of one learnt from a push-pull counts from when its
 *                sender recorded it (learn_down, table_ms).
 *
 * cn_node_deadline() is the minimum of the armed timers above.
 *
 * STATE PRECEDENCE (merge rules, for gossip and push-pull alike):
 *   higher incarnation wins; at equal incarnation left > dead > suspect >
 *   alive; an alive at equal incarnation never resurrects (it may only
 *   bring a newer meta_version); left stays left until the member's own
 *   alive with a higher incarnation. Only the member itself raises its
 *   incarnation (refutation, CN_EV_SELF_INCARNATION). A push-pull's "dead"
 *   is taken as "suspect" (as memberlist does), so a healing exchange
 *   between two halves that failed each other lets each member refute
 *   instead of cementing the other side's verdict. A push-pull's "dead"
 *   or "left" about a member we have NO record of (we joined or restarted
 *   after the fact) is recorded as it is, aged as the sender's record
 *   (member-state key 10), not gossiped, not a detection (learn_down):
 *   every agent then holds the same failed/left members and reaps them
 *   at about the same time (placement's base).
 *
 * CHOICES the contract left open:
 *   - Same address, different name: no eager displacement (that would need
 *     an address index per view, 8 more bytes per entry). Both names are
 *     recorded; pings carry the target name and a node ignores pings for
 *     another name (stats.misdirected), so whichever name no longer lives
 *     at the address fails through ordinary probing, and only a newer alive
 *     (higher incarnation) brings it back.
 *   - A member that pings us while we think it failed gets our "dead"
 *     about it piggybacked first on the ack (buddy system extended to the
 *     dead): it refutes at once, which makes healing fast.
 *   - meta_version is kept in 32 bits per view entry (saturating): it
 *     starts at 0 with each process (whose persisted incarnation is higher,
 *     so the order (incarnation, meta_version) still only grows) and rises
 *     at most once per meta_min_interval_ms, so 2^32 is centuries.
 *   - Confirmations count by accuser ident; an accuser name we have never
 *     heard of does not count (it is not interned, so hostile gossip cannot
 *     grow the pool through the "from" field).
 *   - Two live processes with one name at two addresses refute each other
 *     forever (each sees the other's alive as an accusation). memberlist
 *     has the same property; the agent's identity store prevents it.
 *   - The probe does not fall back to a stream-plane ping.
 *
 * INVARIANTS (assert_node_invariants; O(1) ones on every entry point,
 * O(N) ones once per probe pass and in cn_node_assert_invariants):
 *   I1 our own record exists; it is alive unless we are leaving (then left)
 *   I2 our own incarnation never decreases
 *   I3 suspects and suspicion timers match one to one (counts; O(N): each)
 *   I4 broadcast queue length <= queue_max; outbox length <= its bound
 *   I5 an active probe targets a current member
 *   I6 awareness score < awareness_max (and 0 with lifeguard off)
 *   I7 member table invariants M1..M3 (members.h) (O(N))
 *   I8 time never goes backwards (asserted on entry)
 */
#include "core/node.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/awareness.h"
#include "core/members.h"
#include "core/outbox.h"
#include "core/pool.h"
#include "core/psync.h"
#include "core/queue.h"
#include "core/suspicion.h"
#include "core/vivaldi.h"
#include "util/err.h"
#include "util/rng.h"
#include "wire/keyop.h"
#include "wire/mp.h"

enum {
	CN_SEEDS_MAX = 16,        /* seeds remembered for joins and healing */
	CN_FWD_MAX = 64,          /* ping-reqs relayed at once */
	CN_STREAMS_MAX = 32,      /* our stream requests in flight */
	/* Outputs waiting for the caller. One push-pull of the largest size
	 * can yield two events per member (join, suspect); the ring only grows
	 * that far during such a burst and is given back once drained. */
	CN_OUTBOX_MAX = 2 * CN_PUSHPULL_MEMBERS_MAX + 4096,
	CN_INDIRECT_MAX = 16,     /* ceiling on indirect_checks */
	CN_JOIN_BACKOFF_MS = 1000,
	CN_PICK_TRIES = 32,       /* random picks before giving up on a round */
	CN_PUSHPULL_SCALE_N = 32, /* memberlist's pushPullScaleThreshold */
	CN_STREAM_PLAIN_MAX = CN_STREAM_MAX - CN_ENVELOPE_OVERHEAD,
};
static_assert(CN_INDIRECT_MAX <= UINT8_MAX, "nack counts are uint8_t");
static_assert(CN_SEEDS_MAX <= INT8_MAX, "seed indexes are int8_t");

#define CN_QUIET_BULK_JOINS 0 /* see merge_member */

enum stream_purpose { SP_JOIN = 1, SP_PUSHPULL = 2, SP_RECONNECT = 3, SP_POLICY = 4 };

static void psync_drain(cn_node *n);

typedef struct probe_state {
	bool active, acked, indirect_sent;
	uint8_t nacks_expected, nacks;
	uint32_t target, seq;
	uint64_t inc;              /* target's incarnation at probe start */
	uint64_t sent_ms, indirect_at_ms, end_ms;
} probe_state;

typedef struct fwd_state {    /* a ping-req we relay */
	bool used, want_nack;
	uint32_t seq_local, seq_origin;
	cn_addr origin;
	uint64_t nack_at_ms;
} fwd_state;

enum { CN_META_MEMO = 4 };
typedef struct meta_memo {
	const uint8_t *raw;        /* in the push-pull being merged */
	size_t len;
	uint32_t ref;              /* one pool reference held by the memo */
} meta_memo;

typedef struct stream_state {
	uint32_t id;               /* 0 = free */
	uint8_t purpose;
	int8_t seed;               /* index into seeds, -1 if not a seed */
	uint32_t tag;              /* SP_POLICY: the psync request */
	uint64_t at_ms;
} stream_state;

struct cn_node {
	cn_node_config cfg;
	cn_pool *pool;
	bool own_pool, leaving;
	uint32_t self;             /* our ident */
	uint64_t now_ms;
	uint64_t self_inc_seen;    /* I2 */
	cn_rng rng;
	cn_members members;
	cn_awareness aware;
	bool last_probe_ok;        /* the last finished probe was acked */
	cn_suspicion_table susp;
	cn_queue queue;
	cn_vivaldi viv;
	cn_outbox out;
	cn_node_stats stats;

	uint32_t probe_index, seq;
	probe_state probe;
	uint64_t next_probe_ms, next_gossip_ms, next_pushpull_ms, next_reconnect_ms;
	fwd_state fwd[CN_FWD_MAX];
	uint32_t fwd_used;         /* slots in use: skip the scans when 0 */
	uint64_t gossip_nomem;     /* broadcasts lost to allocation failure */

	cn_addr seeds[CN_SEEDS_MAX];
	uint32_t seed_ident[CN_SEEDS_MAX]; /* last name heard at the seed + 1; 0 none */
	uint32_t n_seeds;
	uint64_t join_retry_ms, join_backoff_ms;
	stream_state streams[CN_STREAMS_MAX];
	uint32_t next_stream_id;

	uint32_t meta_held;        /* pool ref of a rate-limited meta; 0 none */
	bool meta_ever_sent;
	uint64_t meta_sent_ms;

	uint8_t *reply;            /* last cn_node_stream_serve reply */
	const cn_addr *dgram_from; /* sender of the datagram being handled; else NULL */
	bool told_sender;          /* our alive already sent back to dgram_from */
	const char *bulk_source;   /* during a push-pull merge: the peer's name */
	bool quiet_join;           /* merging a member learned in bulk: no gossip */
	bool quiet_bulk;           /* cn_node_set_quiet_bulk: push-pulls teach quietly */
	bool pushpull_first;       /* the first push-pull is not placed yet */
	/* During a push-pull merge: metadata maps already interned, by their
	 * bytes in the buffer (memo_meta). A fleet's members share a handful
	 * of metadata; without it every new member of a 10,000-member view is
	 * decoded, canonicalised and hashed (1.7 KB) to find the same entry. */
	meta_memo memo[CN_META_MEMO];
	uint32_t n_memo, memo_next;
	uint64_t created_ms;
	cn_psync *psync;           /* policy replication, or NULL */
};

/* ------------------------------------------------------------------ */
/* Configuration                                                        */

void cn_node_config_default(cn_node_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->incarnation = 1;
	cfg->meta.battery_pct = 255;
	cfg->probe_interval_ms = 1000;
	cfg->probe_timeout_ms = 500;
	cfg->indirect_checks = 3;
	cfg->retransmit_mult = 4;
	cfg->suspicion_mult = 4;
	cfg->suspicion_max_mult = 6;
	cfg->awareness_max = 8;
	cfg->gossip_interval_ms = 200;
	cfg->gossip_nodes = 3;
	cfg->pushpull_interval_ms = 30000;
	cfg->reconnect_interval_ms = 10000;
	cfg->dead_reap_ms = 24u * 3600u * 1000u;
	cfg->meta_min_interval_ms = 1000;
	cfg->join_retry_max_ms = 30000;
	cfg->max_members = 65536;
	cfg->lifeguard = true;
	cfg->gossip_to_dead_ms = 30000;
	cfg->queue_max = 4096;
}

static bool config_valid(const cn_node_config *c)
{
	return cn_pool_name_valid(c->name) && c->addr.family != 0 && c->probe_interval_ms > 0 &&
	       c->probe_timeout_ms > 0 && c->probe_timeout_ms <= c->probe_interval_ms &&
	       c->indirect_checks <= CN_INDIRECT_MAX && c->retransmit_mult > 0 &&
	       c->suspicion_mult > 0 && c->suspicion_max_mult > 0 && c->awareness_max > 0 &&
	       c->gossip_interval_ms > 0 && c->pushpull_interval_ms > 0 &&
	       c->reconnect_interval_ms > 0 && c->join_retry_max_ms > 0 && c->max_members > 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static uint32_t rand_below(cn_node *n, uint32_t bound)
{
	return (uint32_t)cn_rng_below(&n->rng, bound);
}

static cn_member_rec *self_rec(const cn_node *n)
{
	cn_member_rec *r = cn_members_find(&n->members, n->self);
	assert(r != NULL); /* I1 */
	return r;
}

static const cn_pool_endpoint *ep_of(const cn_node *n, const cn_member_rec *r)
{
	return cn_pool_endpoint_get(n->pool, r->endpoint);
}

static const char *name_of(const cn_node *n, uint32_t ident)
{
	return cn_pool_name(n->pool, ident);
}

/* Estimated cluster size: members not failed or left (self included). */
static uint32_t est_n(const cn_node *n)
{
	return n->members.n_state[CN_STATE_ALIVE] + n->members.n_state[CN_STATE_SUSPECT];
}

/* Other members we believe are up. */
static uint32_t live_peers(const cn_node *n)
{
	uint32_t live = est_n(n);
	return n->leaving ? live : live - 1;
}

static bool versions_ok(uint8_t vmin, uint8_t vmax)
{
	return vmin <= vmax && vmax >= CN_PROTO_VERSION_MIN && vmin <= CN_PROTO_VERSION_MAX;
}

static uint32_t mv32(uint64_t mv) { return mv > UINT32_MAX ? UINT32_MAX : (uint32_t)mv; }

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The member table's state-change stamps run dead_reap_ms ahead of our
 * clock, from an epoch at our creation: a failed member learnt from a
 * push-pull is stamped when its sender recorded it (learn_down), up to
 * dead_reap_ms before we existed, even when our clock started less than
 * that ago (a monotonic clock shortly after boot). */
static uint64_t table_ms(const cn_node *n, uint64_t ms) { return ms + n->cfg.dead_reap_ms; }

/* How long ago r's state changed. */
static uint64_t state_age_ms(const cn_node *n, const cn_member_rec *r)
{
	return table_ms(n, n->now_ms) - cn_members_changed_ms(&n->members, r);
}

static uint32_t scaled(const cn_node *n, uint32_t ms)
{
	return n->cfg.lifeguard ? cn_awareness_scale_ms(&n->aware, ms) : ms;
}

static void emit_event(cn_node *n, uint8_t type, const cn_member_rec *r)
{
	cn_event ev;
	memset(&ev, 0, sizeof ev);
	ev.type = type;
	strcpy(ev.name, name_of(n, r->ident));
	ev.addr = ep_of(n, r)->addr;
	ev.incarnation = r->incarnation;
	ev.at_ms = n->now_ms;
	if (cn_outbox_push_event(&n->out, &ev) != 0)
		n->stats.outputs_dropped++;
}

/* Queue an update. Class (queue.h): suspect/dead/leave urgent, alive and
 * meta bulk; broadcast_refutation queues an alive as urgent. */
static void broadcast_class(cn_node *n, uint32_t ident, uint8_t kind, uint32_t from, bool urgent)
{
	if (cn_queue_push_class(&n->queue, ident, kind, from, urgent) != 0)
		n->gossip_nomem++;
	n->stats.gossip_dropped = n->queue.dropped + n->gossip_nomem;
}

static void broadcast(cn_node *n, uint32_t ident, uint8_t kind, uint32_t from)
{
	bool urgent = kind == CN_MSG_SUSPECT || kind == CN_MSG_DEAD || kind == CN_MSG_LEAVE;
	broadcast_class(n, ident, kind, from, urgent);
}

/* An alive that raises a known member's incarnation answers (or may answer)
 * a suspicion somewhere: it must outrun the suspicion timers. */
static void broadcast_refutation(cn_node *n, uint32_t ident)
{
	broadcast_class(n, ident, CN_MSG_ALIVE, 0, true);
}

static void set_incarnation(cn_member_rec *r, uint64_t inc)
{
	assert(inc >= r->incarnation); /* incarnations never decrease */
	r->incarnation = inc;
}

/* State change with its side tables: leaving "suspect" ends the timer. */
static void set_state(cn_node *n, cn_member_rec *r, uint8_t state)
{
	assert(state <= CN_STATE_MAX_);
	if (r->state == CN_STATE_SUSPECT && state != CN_STATE_SUSPECT)
		(void)cn_suspicion_table_remove(&n->susp, r->ident);
	cn_members_set_state(&n->members, r, state, table_ms(n, n->now_ms));
}

/* ------------------------------------------------------------------ */
/* Invariants                                                           */

static void assert_node_invariants(const cn_node *n, bool full)
{
#ifndef NDEBUG
	const cn_member_rec *me = self_rec(n);
	assert(me->state == (n->leaving ? CN_STATE_LEFT : CN_STATE_ALIVE));       /* I1 */
	assert(me->incarnation >= n->self_inc_seen);                                /* I2 */
	assert(n->susp.count == n->members.n_state[CN_STATE_SUSPECT]);              /* I3 */
	assert(cn_queue_len(&n->queue) <= n->cfg.queue_max);                        /* I4 */
	assert(cn_outbox_len(&n->out) <= CN_OUTBOX_MAX);                            /* I4 */
	assert(!n->probe.active || cn_members_find(&n->members, n->probe.target)); /* I5 */
	assert(n->fwd_used <= CN_FWD_MAX);
	assert(cn_awareness_score(&n->aware) < n->cfg.awareness_max);              /* I6 */
	assert(n->cfg.lifeguard || cn_awareness_score(&n->aware) == 0);            /* I6 */
	if (!full)
		return;
	assert(cn_members_check(&n->members)); /* I7 */
	for (uint32_t i = 0; i < n->members.count; i++) {
		const cn_member_rec *r = &n->members.recs[i];
		bool timed = cn_suspicion_table_find(&n->susp, r->ident, NULL);
		assert(timed == (r->state == CN_STATE_SUSPECT)); /* I3 */
		(void)timed;
	}
#else
	(void)n;
	(void)full;
#endif
}

void cn_node_assert_invariants(const cn_node *n)
{
	assert_node_invariants(n, true);
}

/* Every entry point starts here: time moves forward only (I8), and the
 * buffers handed out by the previous call are released. */
static void enter(cn_node *n, uint64_t now_ms)
{
	assert(now_ms >= n->now_ms); /* I8 */
	n->now_ms = now_ms;
	cn_outbox_release(&n->out);
	free(n->reply);
	n->reply = NULL;
	assert(self_rec(n)->incarnation >= n->self_inc_seen); /* I2 */
}

static void leave_entry(cn_node *n)
{
	n->self_inc_seen = self_rec(n)->incarnation;
	assert_node_invariants(n, false);
}

/* ------------------------------------------------------------------ */
/* Member table changes                                                 */

/* Point r at a new endpoint; true when the address changed. */
static int set_endpoint(cn_node *n, cn_member_rec *r, const cn_addr *addr, uint8_t vmin,
			uint8_t vmax, bool *changed)
{
	uint32_t ref;
	int rc = cn_pool_endpoint_acquire(n->pool, addr, vmin, vmax, &ref);
	if (rc != 0)
		return rc;
	*changed = r->endpoint == 0 || !cn_addr_eq(&ep_of(n, r)->addr, addr);
	cn_pool_endpoint_release(n->pool, r->endpoint);
	r->endpoint = ref;
	r->flags = (uint8_t)(versions_ok(vmin, vmax) ? r->flags & ~CN_MF_INCOMPAT
						     : r->flags | CN_MF_INCOMPAT);
	return 0;
}

/* Point r at new metadata; true when the content changed. */
static int set_meta(cn_node *n, cn_member_rec *r, const cn_meta *meta, bool *changed)
{
	assert(meta != NULL); /* merge_member decodes it whenever it may get here */
	uint32_t ref;
	int rc = cn_pool_meta_acquire(n->pool, meta, &ref);
	if (rc != 0)
		return rc;
	*changed = ref != r->meta;
	cn_pool_meta_release(n->pool, r->meta);
	r->meta = ref;
	return 0;
}

/* The same with metadata already interned (ref): one more reference. */
static int set_meta_ref(cn_node *n, cn_member_rec *r, uint32_t ref, bool *changed)
{
	assert(ref != 0);
	cn_pool_meta_retain(n->pool, ref);
	*changed = ref != r->meta;
	cn_pool_meta_release(n->pool, r->meta);
	r->meta = ref;
	return 0;
}

typedef struct alive_in {
	const char *name;
	uint64_t inc;
	const cn_addr *addr;
	uint64_t meta_version;
	const cn_meta *meta;
	uint8_t vmin, vmax;
	uint32_t meta_ref;         /* non-zero: meta as a pool ref (meta unused) */
} alive_in;

/* set_meta for an alive_in: by its pool ref when it carries one (a
 * push-pull's memo, see merge_member), else by content. */
static int set_meta_in(cn_node *n, cn_member_rec *r, const alive_in *a, bool *changed)
{
	return a->meta_ref != 0 ? set_meta_ref(n, r, a->meta_ref, changed)
				: set_meta(n, r, a->meta, changed);
}

/* Add a member at a random position of the probe order (SWIM 4.3: new
 * members must not all wait for the end of the pass), in state, which it
 * entered age_ms ago (0, except for a failed/left member learnt from a
 * push-pull: see learn_down; at most dead_reap_ms). */
static cn_member_rec *insert_member(cn_node *n, uint32_t ident, const alive_in *a, uint8_t state,
				    uint64_t age_ms)
{
	assert(age_ms <= n->cfg.dead_reap_ms);
	assert(state != CN_STATE_SUSPECT); /* a suspect needs a timer (I3) */
	cn_member_rec rec = {.ident = ident, .incarnation = a->inc, .state = state,
			     .meta_version = mv32(a->meta_version)};
	bool changed;
	if (set_endpoint(n, &rec, a->addr, a->vmin, a->vmax, &changed) != 0)
		return NULL;
	if (set_meta_in(n, &rec, a, &changed) != 0 || cn_members_add(&n->members, &rec) != 0) {
		cn_pool_endpoint_release(n->pool, rec.endpoint);
		cn_pool_meta_release(n->pool, rec.meta);
		n->stats.members_refused++;
		return NULL;
	}
	cn_member_rec *r = cn_members_find(&n->members, ident);
	cn_members_set_state(&n->members, r, state, table_ms(n, n->now_ms) - age_ms); /* stamp */
	uint32_t last = n->members.count - 1;
	cn_members_swap(&n->members, last, rand_below(n, n->members.count));
	return cn_members_find(&n->members, ident);
}

static void forget_member(cn_node *n, uint32_t slot)
{
	cn_member_rec gone;
	cn_member_rec *r = &n->members.recs[slot];
	assert(r->ident != n->self && r->state >= CN_STATE_DEAD);
	emit_event(n, CN_EV_REAP, r);
	cn_queue_remove(&n->queue, r->ident);
	cn_members_remove(&n->members, slot, &gone);
	cn_pool_endpoint_release(n->pool, gone.endpoint);
	cn_pool_meta_release(n->pool, gone.meta);
}

/* Raise our incarnation above an accusation and tell everyone. */
static void refute(cn_node *n, uint64_t accused_inc)
{
	cn_member_rec *me = self_rec(n);
	assert(!n->leaving);
	uint64_t inc = (accused_inc > me->incarnation ? accused_inc : me->incarnation) + 1;
	set_incarnation(me, inc);
	n->stats.refutations++;
	if (n->cfg.lifeguard)
		cn_awareness_apply(&n->aware, 1); /* being suspected hints we are slow */
	broadcast_refutation(n, n->self);
	emit_event(n, CN_EV_SELF_INCARNATION, me);
}

/* ------------------------------------------------------------------ */
/* Merge rules                                                          */

static void alive_self(cn_node *n, const alive_in *a)
{
	const cn_member_rec *me = self_rec(n);
	if (n->leaving)
		return;
	/* Someone speaks of us with an incarnation we did not issue (a
	 * previous life) or at another address: out-number it. */
	if (a->inc > me->incarnation ||
	    (a->inc == me->incarnation && !cn_addr_eq(a->addr, &ep_of(n, me)->addr)))
		refute(n, a->inc);
}

static void alive_newer(cn_node *n, cn_member_rec *r, const alive_in *a)
{
	bool addr_changed = false, meta_changed = false;
	if (set_endpoint(n, r, a->addr, a->vmin, a->vmax, &addr_changed) != 0 ||
	    set_meta_in(n, r, a, &meta_changed) != 0)
		return; /* out of memory: keep the old view, gossip will retry */
	uint8_t old = r->state;
	set_incarnation(r, a->inc);
	r->meta_version = mv32(a->meta_version);
	if (old != CN_STATE_ALIVE) {
		set_state(n, r, CN_STATE_ALIVE);
		emit_event(n, CN_EV_ALIVE, r);
	} else if (addr_changed || meta_changed) {
		emit_event(n, CN_EV_UPDATE, r);
	}
	broadcast_refutation(n, r->ident);
}

static void apply_alive(cn_node *n, const alive_in *a)
{
	uint32_t ident;
	if (cn_pool_intern_name(n->pool, a->name, &ident) != 0)
		return;
	if (ident == n->self) {
		alive_self(n, a);
		return;
	}
	cn_member_rec *r = cn_members_find(&n->members, ident);
	if (r == NULL) {
		r = insert_member(n, ident, a, CN_STATE_ALIVE, 0);
		if (r != NULL) {
			emit_event(n, CN_EV_JOIN, r);
			if (!n->quiet_join)
				broadcast(n, ident, CN_MSG_ALIVE, 0);
		}
		return;
	}
	if (a->inc > r->incarnation) {
		alive_newer(n, r, a);
		return;
	}
	/* Equal incarnation: never a resurrection, at most newer metadata. */
	bool up = r->state == CN_STATE_ALIVE || r->state == CN_STATE_SUSPECT;
	if (a->inc == r->incarnation && up && mv32(a->meta_version) > r->meta_version) {
		bool changed;
		if (set_meta_in(n, r, a, &changed) != 0)
			return;
		r->meta_version = mv32(a->meta_version);
		emit_event(n, CN_EV_UPDATE, r);
		broadcast(n, ident, CN_MSG_META, 0);
	}
}

/* Arm r's suspicion timer. Returns 0 or CN_ENOMEM (then r stays as it was:
 * the next failed probe will try again). */
static int start_suspicion(cn_node *n, const cn_member_rec *r, uint32_t accuser)
{
	uint32_t est = est_n(n);
	uint64_t min = cn_suspicion_min_ms(n->cfg.suspicion_mult, est, n->cfg.probe_interval_ms);
	uint64_t max = min;
	uint32_t k = 0;
	if (n->cfg.lifeguard) {
		max = min * n->cfg.suspicion_max_mult;
		k = est > 2 ? est - 2 : 0;
		if (k > n->cfg.indirect_checks)
			k = n->cfg.indirect_checks;
	}
	cn_suspicion s;
	cn_suspicion_start(&s, r->ident, accuser, k, min, max, n->now_ms);
	if (n->cfg.lifeguard) /* buddy system before the verdict (suspicion.h) */
		cn_suspicion_arm_calls(&s, CN_SUSPICION_LAST_CALLS, n->cfg.probe_interval_ms);
	return cn_suspicion_table_add(&n->susp, &s);
}

/* r is accused at incarnation inc by accuser (UINT32_MAX: unknown name). */
static void suspect_member(cn_node *n, cn_member_rec *r, uint64_t inc, uint32_t accuser)
{
	if (inc < r->incarnation)
		return;
	if (r->state == CN_STATE_SUSPECT && inc > r->incarnation) {
		/* The member refuted the suspicion we hold (we missed its alive)
		 * and is accused again at the new incarnation: a new suspicion
		 * with a fresh timer. Keeping the old timer would declare it
		 * failed on the old accusation's clock, and the refuting alive at
		 * this incarnation, when it comes, could no longer clear it. */
		uint32_t who = accuser == UINT32_MAX ? n->self : accuser;
		(void)cn_suspicion_table_remove(&n->susp, r->ident);
		if (start_suspicion(n, r, who) != 0) {
			/* No memory for a timer (I3): drop the suspicion; the
			 * next failed probe or accusation raises it again. */
			set_state(n, r, CN_STATE_ALIVE);
			emit_event(n, CN_EV_ALIVE, r);
			return;
		}
		set_incarnation(r, inc);
		n->stats.suspicions++;
		emit_event(n, CN_EV_SUSPECT, r);
		broadcast(n, r->ident, CN_MSG_SUSPECT, who);
		return;
	}
	if (r->state == CN_STATE_SUSPECT) {
		if (accuser != UINT32_MAX && cn_suspicion_table_confirm(&n->susp, r->ident, accuser))
			broadcast(n, r->ident, CN_MSG_SUSPECT, accuser); /* spread the confirmation */
		return;
	}
	if (r->state != CN_STATE_ALIVE)
		return; /* failed or left already outrank a suspicion */
	if (start_suspicion(n, r, accuser) != 0)
		return; /* timer first: every suspect has one (I3) */
	set_incarnation(r, inc);
	set_state(n, r, CN_STATE_SUSPECT);
	n->stats.suspicions++;
	emit_event(n, CN_EV_SUSPECT, r);
	broadcast(n, r->ident, CN_MSG_SUSPECT, accuser == UINT32_MAX ? n->self : accuser);
}

static uint32_t ident_or_none(const cn_node *n, const char *name)
{
	uint32_t ident;
	return cn_pool_find_name(n->pool, name, &ident) == 0 ? ident : UINT32_MAX;
}

static void send_self_alive(cn_node *n, const cn_addr *to);

/* Accusations about ourselves: refute unless we are leaving anyway. The
 * node that sent us the accusation holds it too, with a running timer,
 * maybe one we refuted long ago (it learned the suspicion from a push-pull
 * or missed our alive): answer it directly, once per datagram. The gossip
 * of our alive is over by then and would not reach it in time. */
static void accused_self(cn_node *n, uint64_t inc)
{
	if (n->leaving)
		return;
	if (inc >= self_rec(n)->incarnation)
		refute(n, inc);
	if (n->dgram_from != NULL && !n->told_sender) {
		n->told_sender = true;
		send_self_alive(n, n->dgram_from);
	}
}

static void apply_suspect(cn_node *n, const char *name, uint64_t inc, const char *from)
{
	uint32_t ident = ident_or_none(n, name);
	if (ident == n->self) {
		accused_self(n, inc);
		return;
	}
	cn_member_rec *r = ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
	/* suspect_member ignores an older incarnation and a member already
	 * failed or left: skip the accuser's name lookup for those (most of
	 * the accusations in flight after a partition's members failed). */
	if (r != NULL && inc >= r->incarnation &&
	    (r->state == CN_STATE_ALIVE || r->state == CN_STATE_SUSPECT))
		suspect_member(n, r, inc, ident_or_none(n, from));
}

static void declare_dead(cn_node *n, cn_member_rec *r, uint32_t accuser)
{
	assert(r->ident != n->self);
	assert(r->state == CN_STATE_ALIVE || r->state == CN_STATE_SUSPECT);
	set_state(n, r, CN_STATE_DEAD);
	emit_event(n, CN_EV_FAILED, r);
	broadcast(n, r->ident, CN_MSG_DEAD, accuser);
}

static void apply_dead(cn_node *n, const char *name, uint64_t inc, const char *from)
{
	uint32_t ident = ident_or_none(n, name);
	if (ident == n->self) {
		accused_self(n, inc);
		return;
	}
	cn_member_rec *r = ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
	if (r == NULL || inc < r->incarnation)
		return;
	set_incarnation(r, inc);
	if (r->state == CN_STATE_DEAD || r->state == CN_STATE_LEFT)
		return;
	uint32_t accuser = ident_or_none(n, from);
	declare_dead(n, r, accuser == UINT32_MAX ? n->self : accuser);
}

static void apply_leave(cn_node *n, const char *name, uint64_t inc)
{
	uint32_t ident = ident_or_none(n, name);
	if (ident == n->self) {
		accused_self(n, inc); /* a leave from a previous life */
		return;
	}
	cn_member_rec *r = ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
	if (r == NULL || inc < r->incarnation || r->state == CN_STATE_LEFT)
		return;
	set_incarnation(r, inc);
	set_state(n, r, CN_STATE_LEFT);
	emit_event(n, CN_EV_LEFT, r);
	broadcast(n, ident, CN_MSG_LEAVE, 0);
}

static void apply_meta(cn_node *n, const cn_msg_meta *m)
{
	uint32_t ident = ident_or_none(n, m->name);
	if (ident == UINT32_MAX || ident == n->self)
		return;
	cn_member_rec *r = cn_members_find(&n->members, ident);
	if (r == NULL || m->incarnation != r->incarnation || mv32(m->meta_version) <= r->meta_version)
		return;
	if (r->state != CN_STATE_ALIVE && r->state != CN_STATE_SUSPECT)
		return;
	bool changed;
	if (set_meta(n, r, &m->meta, &changed) != 0)
		return;
	r->meta_version = mv32(m->meta_version);
	emit_event(n, CN_EV_UPDATE, r);
	broadcast(n, ident, CN_MSG_META, 0);
}

/* ------------------------------------------------------------------ */
/* Datagram assembly: one probe message, then piggybacked gossip        */

typedef struct dgram {
	cn_node *n;
	size_t len;                /* bytes committed */
	uint32_t msgs;
	uint32_t skip;             /* ident already sent in this datagram */
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX];
} dgram;

static void dg_begin(dgram *d, cn_node *n)
{
	d->n = n;
	d->len = 0;
	d->msgs = 0;
	d->skip = UINT32_MAX;
}

static size_t dg_room(const dgram *d) { return sizeof d->buf - d->len; }

/* Append m if it fits, encoding it once: each message gets its own writer
 * over the free tail, and an overflow simply leaves len where it was. */
static size_t dg_add(dgram *d, const cn_msg *m)
{
	cn_mp_writer w;
	size_t used;
	cn_mp_writer_init(&w, d->buf + d->len, dg_room(d));
	cn_msg_encode(&w, m);
	if (cn_mp_writer_end(&w, &used) != 0)
		return 0;
	assert(used > 0 && used <= dg_room(d));
	d->len += used;
	d->msgs++;
	return used;
}

/* Zero the header and the small message bodies; alive and meta bodies
 * are filled field by field by their makers (no 1.8 KB memset per
 * gossip message: this is the hottest path of a simulation). */
static void msg_init(cn_msg *m, uint8_t type)
{
	m->version = CN_PROTO_VERSION;
	m->type = type;
	static const size_t small[] = {sizeof(cn_msg_ping), sizeof(cn_msg_ack),
				       sizeof(cn_msg_ping_req), sizeof(cn_msg_nack),
				       sizeof(cn_msg_accuse), sizeof(cn_msg_leave)};
	size_t z = 0;
	for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
		z = small[i] > z ? small[i] : z;
	if (type != CN_MSG_ALIVE && type != CN_MSG_META)
		memset(&m->u, 0, z);
}

static void make_alive(const cn_node *n, const cn_member_rec *r, cn_msg *m)
{
	msg_init(m, CN_MSG_ALIVE);
	const cn_pool_endpoint *ep = ep_of(n, r);
	strcpy(m->u.alive.name, name_of(n, r->ident));
	m->u.alive.incarnation = r->incarnation;
	m->u.alive.addr = ep->addr;
	m->u.alive.meta_version = r->meta_version;
	m->u.alive.meta = *cn_pool_meta_get(n->pool, r->meta);
	m->u.alive.vmin = ep->vmin;
	m->u.alive.vmax = ep->vmax;
}

static void make_accuse(const cn_node *n, uint8_t type, const cn_member_rec *r, uint32_t from,
			cn_msg *m)
{
	msg_init(m, type);
	cn_msg_accuse *a = type == CN_MSG_SUSPECT ? &m->u.suspect : &m->u.dead;
	strcpy(a->name, name_of(n, r->ident));
	a->incarnation = r->incarnation;
	strcpy(a->from, name_of(n, from == UINT32_MAX ? n->self : from));
}

/* Build the message for a queued update from the current view of its
 * member; false when the update is stale (the member moved on). */
static bool make_update(const cn_node *n, const cn_queue_item *it, const cn_member_rec *r,
			cn_msg *m)
{
	switch (it->kind) {
	case CN_MSG_ALIVE:
		if (r->state != CN_STATE_ALIVE)
			return false;
		make_alive(n, r, m);
		return true;
	case CN_MSG_META:
		if (r->state != CN_STATE_ALIVE && r->state != CN_STATE_SUSPECT)
			return false;
		msg_init(m, CN_MSG_META);
		strcpy(m->u.meta.name, name_of(n, r->ident));
		m->u.meta.incarnation = r->incarnation;
		m->u.meta.meta_version = r->meta_version;
		m->u.meta.meta = *cn_pool_meta_get(n->pool, r->meta);
		return true;
	case CN_MSG_SUSPECT:
	case CN_MSG_DEAD:
		if (r->state != (it->kind == CN_MSG_SUSPECT ? CN_STATE_SUSPECT : CN_STATE_DEAD))
			return false;
		make_accuse(n, it->kind, r, it->from, m);
		return true;
	case CN_MSG_LEAVE:
		if (r->state != CN_STATE_LEFT)
			return false;
		msg_init(m, CN_MSG_LEAVE);
		strcpy(m->u.leave.name, name_of(n, r->ident));
		m->u.leave.incarnation = r->incarnation;
		return true;
	default:
		assert(0 && "the queue holds only the five gossip kinds");
		return false;
	}
}

/* Encode a queued update into the datagram; see cn_queue_emit_fn. */
static int emit_update(void *ctx, const cn_queue_item *it, size_t room)
{
	dgram *d = ctx;
	assert(room == dg_room(d));
	if (it->ident == d->skip)
		return 0;
	const cn_member_rec *r = cn_members_find(&d->n->members, it->ident);
	cn_msg m;
	if (r == NULL || !make_update(d->n, it, r, &m))
		return -1;
	return (int)dg_add(d, &m); /* 0 when it does not fit: skipped this time */
}

typedef struct ann_room {
	dgram *d;
	size_t keep;               /* leave at least this much room */
} ann_room;

static size_t emit_announce(void *ctx, const cn_msg *m)
{
	ann_room *a = ctx;
	if (dg_room(a->d) < a->keep + cn_msg_encoded_size(m))
		return 0;
	return dg_add(a->d, m);
}

/* Policy announcements first, but in at most half of the datagram while
 * membership updates wait; membership updates fill the rest. Without the
 * reserved half, a membership backlog (a join flood, the refutations after
 * a heal) starves announcements for tens of seconds (sim, 1,000 nodes:
 * writes during the start's flood p99 42 s; with two slots reserved 2.3 s,
 * membership dissemination unchanged). Announcements are rare and small. */
static void dg_piggyback(dgram *d)
{
	cn_node *n = d->n;
	uint32_t limit = cn_queue_retransmit_limit(n->cfg.retransmit_mult, est_n(n));
	if (n->psync != NULL && cn_psync_has_announcements(n->psync)) {
		ann_room a = {d, cn_queue_len(&n->queue) > 0 ? dg_room(d) / 2 : 0};
		(void)cn_psync_fill(n->psync, limit, emit_announce, &a);
	}
	if (cn_queue_len(&n->queue) > 0)
		(void)cn_queue_fill(&n->queue, limit, dg_room(d), emit_update, d);
}

static bool gossip_pending(const cn_node *n)
{
	return cn_queue_len(&n->queue) > 0 ||
	       (n->psync != NULL && cn_psync_has_announcements(n->psync));
}

static void dg_send(dgram *d, const cn_addr *to)
{
	cn_node *n = d->n;
	size_t len = d->len;
	if (d->msgs == 0)
		return;
	if (cn_outbox_push_copy(&n->out, CN_OUT_DATAGRAM, to, 0, d->buf, len) != 0) {
		n->stats.outputs_dropped++;
		return;
	}
	n->stats.datagrams_out++;
	n->stats.bytes_out += len;
	n->stats.msgs_out += d->msgs;
}

/* ------------------------------------------------------------------ */
/* Probing                                                              */

static bool probeable(const cn_node *n, const cn_member_rec *r)
{
	return r->ident != n->self && !(r->flags & CN_MF_INCOMPAT) &&
	       (r->state == CN_STATE_ALIVE || r->state == CN_STATE_SUSPECT);
}

/* Forget failed/left members older than dead_reap_ms (once per pass). */
static void reap(cn_node *n)
{
	for (uint32_t i = n->members.count; i > 0; i--) {
		const cn_member_rec *r = &n->members.recs[i - 1];
		if (r->state < CN_STATE_DEAD || r->ident == n->self)
			continue;
		if (state_age_ms(n, r) >= n->cfg.dead_reap_ms)
			forget_member(n, i - 1);
	}
}

static void end_of_pass(cn_node *n)
{
	assert_node_invariants(n, true); /* O(N), once per N probes */
	reap(n);
	cn_members_compact(&n->members);
	cn_members_shuffle(&n->members, &n->rng);
	n->probe_index = 0;
}

static cn_member_rec *next_target(cn_node *n)
{
	bool wrapped = false;
	/* At most one pass boundary per call: O(N) only when nobody is up. */
	for (uint32_t tries = 0; tries <= n->members.count + 1; tries++) {
		if (n->probe_index >= n->members.count) {
			if (wrapped)
				break;
			wrapped = true;
			end_of_pass(n);
			if (n->members.count == 0)
				break;
		}
		cn_member_rec *r = &n->members.recs[n->probe_index++];
		if (probeable(n, r))
			return r;
	}
	return NULL;
}

static void send_ping(cn_node *n, const cn_member_rec *r, uint32_t seq, bool buddy)
{
	dgram d;
	cn_msg m;
	dg_begin(&d, n);
	msg_init(&m, CN_MSG_PING);
	m.u.ping.seq = seq;
	strcpy(m.u.ping.target, name_of(n, r->ident));
	strcpy(m.u.ping.source, name_of(n, n->self));
	(void)dg_add(&d, &m);
	if (buddy && r->state == CN_STATE_SUSPECT) {
		/* Lifeguard buddy system: tell the suspect first, so it can refute. */
		cn_suspicion s;
		bool timed = cn_suspicion_table_find(&n->susp, r->ident, &s);
		make_accuse(n, CN_MSG_SUSPECT, r, timed ? s.accuser : n->self, &m);
		if (dg_add(&d, &m))
			d.skip = r->ident;
	}
	dg_piggyback(&d);
	dg_send(&d, &ep_of(n, r)->addr);
}

static void probe_start(cn_node *n)
{
	uint32_t interval_ms = scaled(n, n->cfg.probe_interval_ms);
	n->next_probe_ms = n->now_ms + interval_ms;
	cn_member_rec *r = next_target(n);
	if (r == NULL)
		return;
	probe_state *p = &n->probe;
	*p = (probe_state){.active = true, .target = r->ident, .seq = ++n->seq,
			   .inc = r->incarnation, .sent_ms = n->now_ms,
			   .indirect_at_ms = n->now_ms + scaled(n, n->cfg.probe_timeout_ms),
			   .end_ms = n->now_ms + interval_ms};
	n->stats.probes++;
	send_ping(n, r, p->seq, n->cfg.lifeguard);
}

/* Pick up to want distinct random members that pass ok(); O(want) tries. */
static uint32_t pick_random(cn_node *n, uint32_t want, bool (*ok)(const cn_node *, const cn_member_rec *),
			    uint32_t exclude, uint32_t *out)
{
	uint32_t got = 0;
	if (n->members.count == 0)
		return 0;
	for (uint32_t tries = 0; tries < 4 * want + CN_PICK_TRIES && got < want; tries++) {
		const cn_member_rec *r = &n->members.recs[rand_below(n, n->members.count)];
		if (r->ident == exclude || r->ident == n->self || !ok(n, r))
			continue;
		bool dup = false;
		for (uint32_t k = 0; k < got; k++)
			dup |= out[k] == r->ident;
		if (!dup)
			out[got++] = r->ident;
	}
	return got;
}

static bool helper_ok(const cn_node *n, const cn_member_rec *r)
{
	(void)n;
	return r->state == CN_STATE_ALIVE && !(r->flags & CN_MF_INCOMPAT);
}

static void probe_indirect(cn_node *n)
{
	probe_state *p = &n->probe;
	if (!p->active || p->acked || p->indirect_sent || n->now_ms < p->indirect_at_ms)
		return;
	p->indirect_sent = true;
	const cn_member_rec *t = cn_members_find(&n->members, p->target);
	if (!probeable(n, t)) { /* gossip says it failed or left meanwhile */
		p->active = false;
		return;
	}
	uint32_t helpers[CN_INDIRECT_MAX];
	uint32_t k = pick_random(n, n->cfg.indirect_checks, helper_ok, p->target, helpers);
	for (uint32_t i = 0; i < k; i++) {
		dgram d;
		cn_msg m;
		dg_begin(&d, n);
		msg_init(&m, CN_MSG_PING_REQ);
		m.u.ping_req.seq = p->seq;
		strcpy(m.u.ping_req.target, name_of(n, t->ident));
		m.u.ping_req.target_addr = ep_of(n, t)->addr;
		m.u.ping_req.want_nack = n->cfg.lifeguard;
		strcpy(m.u.ping_req.source, name_of(n, n->self));
		(void)dg_add(&d, &m);
		dg_piggyback(&d);
		dg_send(&d, &ep_of(n, cn_members_find(&n->members, helpers[i]))->addr);
		n->stats.indirect_probes++;
	}
	p->nacks_expected = n->cfg.lifeguard ? (uint8_t)k : 0;
}

static void probe_finish(cn_node *n)
{
	probe_state *p = &n->probe;
	if (!p->active || n->now_ms < p->end_ms)
		return;
	p->active = false;
	n->last_probe_ok = false;
	n->stats.probe_failures++;
	if (n->cfg.lifeguard) {
		/* Lifeguard: helpers that did not even nack suggest that we, not
		 * the target, are the slow one. No helpers: count the failure. */
		int32_t delta = p->nacks_expected == 0 ? 1 : (int32_t)p->nacks_expected - p->nacks;
		cn_awareness_apply(&n->aware, delta > 0 ? delta : 0);
	}
	cn_member_rec *r = cn_members_find(&n->members, p->target);
	if (r != NULL && r->incarnation == p->inc)
		suspect_member(n, r, p->inc, n->self);
}

static void probe_acked(cn_node *n, const cn_addr *from, const cn_msg_ack *ack)
{
	probe_state *p = &n->probe;
	p->acked = true;
	p->active = false;
	n->last_probe_ok = true;
	if (n->cfg.lifeguard)
		cn_awareness_apply(&n->aware, -1);
	const cn_member_rec *r = cn_members_find(&n->members, p->target);
	/* Only a direct answer measures the path to the target. */
	if (r == NULL || !ack->has_coord || !cn_addr_eq(from, &ep_of(n, r)->addr) ||
	    strcmp(ack->source, name_of(n, r->ident)) != 0)
		return;
	if (cn_vivaldi_update(&n->viv, r->ident, &ack->coord, (double)(n->now_ms - p->sent_ms)) == 0)
		cn_pool_set_coord(n->pool, r->ident, &ack->coord);
}

/* ------------------------------------------------------------------ */
/* Datagram handlers                                                    */

static void send_simple(cn_node *n, const cn_addr *to, const cn_msg *m, uint32_t buddy_dead)
{
	dgram d;
	dg_begin(&d, n);
	(void)dg_add(&d, m);
	if (buddy_dead != UINT32_MAX) {
		/* The sender is failed in our view: say so first, so it refutes. */
		cn_msg dead;
		const cn_member_rec *r = cn_members_find(&n->members, buddy_dead);
		make_accuse(n, CN_MSG_DEAD, r, n->self, &dead);
		if (dg_add(&d, &dead))
			d.skip = buddy_dead;
	}
	dg_piggyback(&d);
	dg_send(&d, to);
}

static void send_self_alive(cn_node *n, const cn_addr *to)
{
	dgram d;
	cn_msg m;
	dg_begin(&d, n);
	make_alive(n, self_rec(n), &m);
	if (dg_add(&d, &m))
		d.skip = n->self;
	dg_piggyback(&d);
	dg_send(&d, to);
}

/* We took a suspicion second-hand (push-pull): tell the suspect at once so
 * it refutes, or, if it refuted already, answers us with its alive. */
static void tell_suspect(cn_node *n, const cn_member_rec *r)
{
	dgram d;
	cn_msg m;
	dg_begin(&d, n);
	make_accuse(n, CN_MSG_SUSPECT, r, n->self, &m);
	if (dg_add(&d, &m))
		d.skip = r->ident;
	dg_piggyback(&d);
	dg_send(&d, &ep_of(n, r)->addr);
}

static void on_ping(cn_node *n, const cn_addr *from, const cn_msg_ping *ping)
{
	if (strcmp(ping->target, name_of(n, n->self)) != 0) {
		n->stats.misdirected++;
		return;
	}
	cn_msg m;
	msg_init(&m, CN_MSG_ACK);
	m.u.ack.seq = ping->seq;
	strcpy(m.u.ack.source, name_of(n, n->self));
	m.u.ack.has_coord = true;
	cn_vivaldi_get(&n->viv, &m.u.ack.coord);
	uint32_t sender = ident_or_none(n, ping->source);
	const cn_member_rec *r = sender == UINT32_MAX ? NULL : cn_members_find(&n->members, sender);
	bool dead = r != NULL && r->state == CN_STATE_DEAD && sender != n->self;
	send_simple(n, from, &m, dead ? sender : UINT32_MAX);
}

static uint32_t nack_timeout_ms(const cn_node *n)
{
	uint32_t t = n->cfg.probe_timeout_ms, rest = n->cfg.probe_interval_ms - t;
	uint32_t base = rest > 0 && rest < t ? rest : t;
	return base - base / 5;
}

static fwd_state *fwd_slot(cn_node *n)
{
	fwd_state *best = &n->fwd[0];
	for (int i = 0; i < CN_FWD_MAX; i++) {
		if (!n->fwd[i].used)
			return &n->fwd[i];
		if (n->fwd[i].nack_at_ms < best->nack_at_ms)
			best = &n->fwd[i];
	}
	return best; /* all busy: replace the oldest relay */
}

static void on_ping_req(cn_node *n, const cn_addr *from, const cn_msg_ping_req *req)
{
	cn_msg m;
	if (strcmp(req->target, name_of(n, n->self)) == 0) {
		/* We are the target: answer the prober directly. */
		msg_init(&m, CN_MSG_ACK);
		m.u.ack.seq = req->seq;
		strcpy(m.u.ack.source, name_of(n, n->self));
		send_simple(n, from, &m, UINT32_MAX);
		return;
	}
	fwd_state *f = fwd_slot(n);
	n->fwd_used += !f->used;
	*f = (fwd_state){.used = true, .want_nack = req->want_nack, .seq_local = ++n->seq,
			 .seq_origin = req->seq, .origin = *from,
			 .nack_at_ms = n->now_ms + nack_timeout_ms(n)};
	msg_init(&m, CN_MSG_PING);
	m.u.ping.seq = f->seq_local;
	strcpy(m.u.ping.target, req->target);
	strcpy(m.u.ping.source, name_of(n, n->self));
	send_simple(n, &req->target_addr, &m, UINT32_MAX);
}

static void on_ack(cn_node *n, const cn_addr *from, const cn_msg_ack *ack)
{
	n->stats.acks++;
	if (n->probe.active && ack->seq == n->probe.seq) {
		probe_acked(n, from, ack);
		return;
	}
	for (int i = 0; i < CN_FWD_MAX && n->fwd_used > 0; i++) {
		fwd_state *f = &n->fwd[i];
		if (!f->used || f->seq_local != ack->seq)
			continue;
		cn_msg m;
		msg_init(&m, CN_MSG_ACK);
		m.u.ack.seq = f->seq_origin;
		strcpy(m.u.ack.source, ack->source);
		f->used = false;
		n->fwd_used--;
		send_simple(n, &f->origin, &m, UINT32_MAX);
		return;
	}
}

static void on_nack(cn_node *n, const cn_msg_nack *nack)
{
	n->stats.nacks_in++;
	if (n->probe.active && nack->seq == n->probe.seq && n->probe.nacks < n->probe.nacks_expected)
		n->probe.nacks++;
}

static void dispatch(cn_node *n, const cn_addr *from, const cn_msg *m)
{
	switch (m->type) {
	case CN_MSG_PING: on_ping(n, from, &m->u.ping); break;
	case CN_MSG_ACK: on_ack(n, from, &m->u.ack); break;
	case CN_MSG_PING_REQ: on_ping_req(n, from, &m->u.ping_req); break;
	case CN_MSG_NACK: on_nack(n, &m->u.nack); break;
	case CN_MSG_ALIVE: {
		const cn_msg_alive *a = &m->u.alive;
		alive_in in = {a->name, a->incarnation, &a->addr, a->meta_version, &a->meta,
			       a->vmin, a->vmax, 0};
		apply_alive(n, &in);
		break;
	}
	case CN_MSG_SUSPECT:
		apply_suspect(n, m->u.suspect.name, m->u.suspect.incarnation, m->u.suspect.from);
		break;
	case CN_MSG_DEAD:
		apply_dead(n, m->u.dead.name, m->u.dead.incarnation, m->u.dead.from);
		break;
	case CN_MSG_LEAVE: apply_leave(n, m->u.leave.name, m->u.leave.incarnation); break;
	case CN_MSG_META: apply_meta(n, &m->u.meta); break;
	case CN_MSG_POLICY_ANNOUNCE:
		if (n->psync != NULL) {
			uint32_t id = ident_or_none(n, m->u.announce.writer);
			const cn_member_rec *w = id == UINT32_MAX ? NULL : cn_members_find(&n->members, id);
			/* News of a write is relayed at once, not at the next gossip
			 * round: the last members to hear of it still wait a fetch. */
			if (cn_psync_on_announce(n->psync, from,
						 w != NULL && w->ident != n->self ? &ep_of(n, w)->addr
										   : NULL,
						 &m->u.announce, n->now_ms))
				n->next_gossip_ms = n->now_ms;
		}
		break;
	default: n->stats.unknown_types++; break;
	}
}

int cn_node_recv(cn_node *n, const cn_addr *from, const uint8_t *data, size_t len,
		 uint64_t now_ms)
{
	enter(n, now_ms);
	n->stats.datagrams_in++;
	n->stats.bytes_in += len;
	int first_err = 0;
	if (len > CN_DATAGRAM_PLAIN_MAX) {
		n->stats.decode_errors++;
		first_err = CN_ELIMIT;
		len = 0;
	}
	cn_mp_reader r;
	cn_mp_reader_init(&r, data, len);
	cn_msg_stats ms = {0};
	n->dgram_from = from;
	n->told_sender = false;
	/* Each message takes at least one byte: the loop is bounded by len. */
	for (size_t i = 0; i < len && cn_mp_remaining(&r) > 0; i++) {
		cn_msg m;
		int rc = cn_msg_decode(&r, &m, &ms);
		if (rc == CN_EUNKNOWN || rc == CN_EVERSION) {
			/* Skipped whole; the decoder counts unknown types in ms. */
			n->stats.old_versions += rc == CN_EVERSION;
			continue;
		}
		if (rc != 0) {
			n->stats.decode_errors++;
			first_err = rc;
			break;
		}
		n->stats.msgs_in++;
		dispatch(n, from, &m);
	}
	n->stats.unknown_keys += ms.unknown_keys;
	n->stats.unknown_types += ms.unknown_types;
	n->dgram_from = NULL;
	psync_drain(n);
	leave_entry(n);
	return first_err;
}

/* ------------------------------------------------------------------ */
/* Stream plane: push-pull                                              */

/* Everything but the metadata (see meta_enc). */
static void member_wire(const cn_node *n, const cn_member_rec *r, cn_member_wire *w)
{
	const cn_pool_endpoint *ep = ep_of(n, r);
	strcpy(w->name, name_of(n, r->ident));
	w->addr = ep->addr;
	w->incarnation = r->incarnation;
	w->state = r->state;
	w->meta_version = r->meta_version;
	w->vmin = ep->vmin;
	w->vmax = ep->vmax;
	/* The age of a failed/left record, so that a receiver that never knew
	 * the member records it as old as we do (learn_down). */
	w->has_down_ms = r->state >= CN_STATE_DEAD;
	uint64_t age = state_age_ms(n, r);
	w->down_ms = !w->has_down_ms ? 0 : age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
}

/* Encoded metadata by pool ref for one encode_state call, direct-mapped:
 * the members of a view share a handful of metadata (pool refs are
 * interned by content), so each is encoded once instead of once per
 * member, and never copied out of the pool (1.7 KB a member). The bytes
 * are cn_meta_encode's, so the push-pull is the same byte for byte. */
enum { META_ENC_SLOTS = 8 };
typedef struct meta_enc {
	bool used;
	uint32_t ref;
	size_t len;
	uint8_t buf[CN_META_WIRE_MAX];
} meta_enc;

/* The encoding of pool meta ref, or NULL (it does not fit: the caller
 * encodes it itself; cn_meta_encode keeps every map within the limit). */
static const meta_enc *meta_encoded(const cn_node *n, meta_enc *cache, uint32_t ref)
{
	meta_enc *e = &cache[ref % META_ENC_SLOTS];
	if (e->used && e->ref == ref)
		return e;
	cn_mp_writer w;
	cn_mp_writer_init(&w, e->buf, sizeof e->buf);
	cn_meta_encode(&w, cn_pool_meta_get(n->pool, ref));
	e->used = cn_mp_writer_end(&w, &e->len) == 0;
	e->ref = ref;
	return e->used ? e : NULL;
}

static const uint32_t STATE_ALL = UINT32_MAX; /* encode_state: every member */

/* Slots to send: everything, or (a reconnect attempt) only ourselves and
 * the member we contact, so that a probe of a long-dead peer costs a few
 * hundred bytes instead of our whole view. That is enough to heal: the
 * peer reads that we think it failed and refutes, its reply carries its
 * whole view, and from there gossip and push-pull do the rest. */
static uint32_t state_slots(const cn_node *n, uint32_t about, uint32_t *slots)
{
	if (about == STATE_ALL)
		return n->members.count;
	uint32_t k = 0;
	slots[k++] = cn_members_slot(&n->members, self_rec(n));
	const cn_member_rec *r = cn_members_find(&n->members, about);
	if (r != NULL && about != n->self)
		slots[k++] = cn_members_slot(&n->members, r);
	return k;
}

/* Encode our view (all of it, or see state_slots). On 0, *out is a
 * malloc'd buffer the caller owns. */
static int encode_state(const cn_node *n, uint8_t type, bool join, uint32_t about, uint8_t **out,
			size_t *len)
{
	uint32_t slots[2];
	uint32_t count = state_slots(n, about, slots);
	cn_pushpull pp;
	memset(&pp, 0, sizeof pp);
	pp.join = join;
	strcpy(pp.source, name_of(n, n->self));
	if (n->psync != NULL) {
		pp.has_policy_digest = true;
		cn_psync_root(n->psync, pp.policy_digest);
	}
	cn_member_wire *w = malloc(sizeof *w);
	meta_enc *cache = calloc(META_ENC_SLOTS, sizeof *cache);
	if (w == NULL || cache == NULL) {
		free(w);
		free(cache);
		return CN_ENOMEM;
	}
	size_t cap = 1024 + (size_t)count * 128;
	for (;;) { /* doubling: at most log2(16 MiB / 1 KiB) rounds */
		if (cap > CN_STREAM_PLAIN_MAX)
			cap = CN_STREAM_PLAIN_MAX;
		uint8_t *buf = malloc(cap);
		if (buf == NULL)
			break;
		cn_mp_writer wr;
		cn_mp_writer_init(&wr, buf, cap);
		cn_pushpull_encode_begin(&wr, type, &pp, count);
		for (uint32_t i = 0; i < count && !wr.overflow; i++) {
			const cn_member_rec *r = &n->members.recs[about == STATE_ALL ? i : slots[i]];
			const meta_enc *me = meta_encoded(n, cache, r->meta);
			member_wire(n, r, w);
			if (me != NULL) {
				cn_pushpull_encode_member_raw(&wr, w, me->buf, me->len);
			} else {
				w->meta = *cn_pool_meta_get(n->pool, r->meta);
				cn_pushpull_encode_member(&wr, w);
			}
		}
		if (cn_mp_writer_end(&wr, len) == 0) {
			free(w);
			free(cache);
			*out = buf;
			return 0;
		}
		free(buf);
		if (cap == CN_STREAM_PLAIN_MAX)
			break;
		cap *= 2;
	}
	free(w);
	free(cache);
	return CN_ENOSPACE;
}

/* Whether w is a failed/left member that learn_down records: we have no
 * record of it, it is not us, and it is younger than dead_reap_ms (an
 * older one is forgotten everywhere already, or about to be). */
/* Age at which a failed or left member is out (cn_node_member_out). */
static uint64_t out_after_ms(const cn_node *n)
{
	return n->cfg.dead_reap_ms - n->cfg.dead_reap_ms / 16;
}

bool cn_node_member_out(const cn_node *n, const cn_member *m)
{
	if (m->state != CN_STATE_DEAD && m->state != CN_STATE_LEFT)
		return false;
	uint64_t age = n->now_ms - min_u64(n->now_ms, m->state_change_ms);
	return age >= out_after_ms(n);
}

static bool learnable(const cn_node *n, const cn_member_wire *w)
{
	if (w->state != CN_STATE_DEAD && w->state != CN_STATE_LEFT)
		return false;
	/* one that is out already would only come back into placement's base
	 * for the moment until it is out again */
	if ((w->has_down_ms ? w->down_ms : 0) >= out_after_ms(n))
		return false;
	uint32_t ident = ident_or_none(n, w->name);
	return ident == UINT32_MAX ||
	       (ident != n->self && cn_members_find(&n->members, ident) == NULL);
}

/* Whether merging w may store its metadata: apply_alive reads it only for
 * a new member, a higher incarnation, or a newer meta_version (an alive or
 * suspect entry about someone else), learn_down for a failed/left member
 * it records. This may say yes more often than needed, never less. In a
 * converged fleet a push-pull of N members needs none of them, and the
 * metadata map is most of a member's decoding. */
static bool wire_needs_meta(const cn_node *n, const cn_member_wire *w)
{
	if (w->state != CN_STATE_ALIVE && w->state != CN_STATE_SUSPECT)
		return learnable(n, w); /* else merged without apply_alive */
	uint32_t ident = ident_or_none(n, w->name);
	if (ident == UINT32_MAX)
		return true;
	if (ident == n->self)
		return false; /* alive_self compares incarnation and address only */
	const cn_member_rec *r = cn_members_find(&n->members, ident);
	return r == NULL || w->incarnation > r->incarnation ||
	       mv32(w->meta_version) > r->meta_version;
}

/* Pool ref of w's metadata through the merge's memo (meta_memo), taking
 * it into the memo on a miss; 0 when that fails (out of memory: the
 * caller interns by content as before). The memo holds one reference per
 * entry, given back when it is evicted or the merge ends (memo_clear). */
static uint32_t memo_meta(cn_node *n, const cn_member_wire *w)
{
	assert(w->meta_raw != NULL);
	for (uint32_t k = 0; k < n->n_memo; k++) {
		const meta_memo *e = &n->memo[k];
		if (e->len == w->meta_len && memcmp(e->raw, w->meta_raw, e->len) == 0)
			return e->ref;
	}
	cn_meta meta;
	uint32_t ref;
	if (cn_member_wire_meta(w, &meta) != 0 || cn_pool_meta_acquire(n->pool, &meta, &ref) != 0)
		return 0;
	uint32_t k;
	if (n->n_memo < CN_META_MEMO) {
		k = n->n_memo++;
	} else {
		k = n->memo_next++ % CN_META_MEMO;
		cn_pool_meta_release(n->pool, n->memo[k].ref); /* evicted */
	}
	n->memo[k] = (meta_memo){.raw = w->meta_raw, .len = w->meta_len, .ref = ref};
	return ref;
}

static void memo_clear(cn_node *n)
{
	for (uint32_t k = 0; k < n->n_memo; k++)
		cn_pool_meta_release(n->pool, n->memo[k].ref);
	n->n_memo = n->memo_next = 0;
}

/* A failed or left member we have no record of, from a push-pull (we
 * joined or restarted after the fact). The sender declared it through the
 * suspicion path or heard its leave, down_ms ago: record it in that state,
 * stamped as old (no down_ms, an older sender: now), so that reap()
 * forgets it at about the time the sender does, and meanwhile every agent
 * holds the same failed/left members (placement's base). Old news: not
 * gossiped, not a detection (CN_EV_KNOWN_*, stats untouched). Such a
 * record is like any other failed/left one: never probed, a reconnect
 * target while failed, a gossip target while younger than
 * gossip_to_dead_ms, refuted only by the member's own newer alive.
 * Precondition: learnable(n, w). */
static void learn_down(cn_node *n, const alive_in *a, uint8_t state, uint32_t down_ms)
{
	uint32_t ident;
	if (cn_pool_intern_name(n->pool, a->name, &ident) != 0)
		return;
	assert(ident != n->self && cn_members_find(&n->members, ident) == NULL);
	assert(down_ms < n->cfg.dead_reap_ms); /* learnable; table_ms makes it fit */
	const cn_member_rec *r = insert_member(n, ident, a, state, down_ms);
	if (r != NULL)
		emit_event(n, state == CN_STATE_DEAD ? CN_EV_KNOWN_FAILED : CN_EV_KNOWN_LEFT, r);
}

static int merge_member(void *ctx, const cn_member_wire *w)
{
	cn_node *n = ctx;
	const char *me = name_of(n, n->self);
	/* A member first heard of in a push-pull is not gossiped on: the state
	 * was learned in bulk and whoever sent it has it too (memberlist-style
	 * bootstrap). Only the peer itself is news to spread: that is how a
	 * joining node becomes known (its seed gossips it). Everything else
	 * that changes (newer incarnation, suspicion, leave) is still gossiped.
	 * Without this, every node re-gossips every member of every view it
	 * merges: O(N^2 log N) messages for a fleet start.
	 *
	 * OFF for now (CN_QUIET_BULK_JOINS 0): measured on sim loss-10, 1,000
	 * nodes, seed 3, it cut messages per node from 407/s to 247-267/s but
	 * left 2,600-3,400 view pairs missing after 60 s (the seeds and the
	 * joiner alone are too few sources under 10% loss with the scaled
	 * push-pull). Needs a faster anti-entropy for new nodes first. */
	n->quiet_join = n->quiet_bulk || (CN_QUIET_BULK_JOINS && n->bulk_source != NULL &&
					   strcmp(w->name, n->bulk_source) != 0);
	/* The metadata is decoded only when apply_alive may take it (see
	 * wire_needs_meta); otherwise in.meta stays NULL, which set_meta
	 * asserts it never sees. */
	cn_meta meta;
	const cn_meta *mp = NULL;
	uint32_t ref = 0;
	if (wire_needs_meta(n, w) && (ref = memo_meta(n, w)) == 0) {
		int rc = cn_member_wire_meta(w, &meta);
		assert(rc == 0); /* validated by the decoder before any callback */
		if (rc != 0)
			return rc;
		mp = &meta;
	}
	alive_in in = {w->name, w->incarnation, &w->addr, w->meta_version, mp, w->vmin, w->vmax,
		       ref};
	if (learnable(n, w)) {
		learn_down(n, &in, w->state, w->has_down_ms ? w->down_ms : 0);
		n->quiet_join = false;
		return 0;
	}
	switch (w->state) {
	case CN_STATE_ALIVE:
		apply_alive(n, &in);
		break;
	case CN_STATE_SUSPECT:
	case CN_STATE_DEAD: { /* dead is taken as a suspicion: the member may refute */
		if (w->state == CN_STATE_SUSPECT)
			apply_alive(n, &in);
		uint32_t ident = ident_or_none(n, w->name);
		const cn_member_rec *r =
			ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
		bool was_up = r != NULL && r->state == CN_STATE_ALIVE;
		apply_suspect(n, w->name, w->incarnation, me);
		r = ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
		if (was_up && r != NULL && r->state == CN_STATE_SUSPECT && ident != n->self)
			tell_suspect(n, r);
		break;
	}
	case CN_STATE_LEFT:
		apply_leave(n, w->name, w->incarnation);
		break;
	default:
		break; /* the decoder bounds states; ignore anything newer */
	}
	n->quiet_join = false;
	return 0;
}

/* Decode a push-pull and merge it (merge_member). */
static int decode_merge(cn_node *n, const uint8_t *buf, size_t len, uint8_t *type, cn_pushpull *pp,
			cn_msg_stats *ms)
{
	/* The decoder reads the whole header (source) before the first member. */
	n->bulk_source = pp->source;
	assert(n->n_memo == 0);
	int rc = cn_pushpull_decode_lazy(buf, len, type, pp, merge_member, n, ms);
	memo_clear(n); /* its pointers are into buf */
	n->bulk_source = NULL;
	n->quiet_join = false;
	return rc;
}

/* Hand buf (malloc'd, owned from here on) to the caller as a stream request. */
static void push_stream(cn_node *n, uint8_t purpose, const cn_addr *to, int seed, uint32_t tag,
			uint8_t *buf, size_t len)
{
	stream_state *s = &n->streams[0];
	for (int i = 0; i < CN_STREAMS_MAX; i++) {
		if (n->streams[i].id == 0) {
			s = &n->streams[i];
			break;
		}
		if (n->streams[i].at_ms < s->at_ms)
			s = &n->streams[i];
	}
	if (s->id != 0) {
		n->stats.stream_failures++; /* forgotten: the caller never answered */
		if (s->purpose == SP_POLICY && n->psync != NULL)
			cn_psync_result(n->psync, s->tag, NULL, 0, n->now_ms);
	}
	if (++n->next_stream_id == 0)
		n->next_stream_id = 1;
	*s = (stream_state){.id = n->next_stream_id, .purpose = purpose, .seed = (int8_t)seed,
			    .tag = tag, .at_ms = n->now_ms};
	if (cn_outbox_push_owned(&n->out, CN_OUT_STREAM, to, s->id, buf, len) != 0) {
		n->stats.outputs_dropped++;
		s->id = 0;
		if (purpose == SP_POLICY) /* tell psync, or its request stays in flight */
			cn_psync_result(n->psync, tag, NULL, 0, n->now_ms);
		return;
	}
	n->stats.streams_out++;
}

static void start_stream(cn_node *n, uint8_t purpose, const cn_addr *to, int seed, uint32_t about)
{
	uint8_t *buf;
	size_t len;
	if (encode_state(n, CN_MSG_PUSH_PULL, purpose == SP_JOIN, about, &buf, &len) != 0)
		return;
	push_stream(n, purpose, to, seed, 0, buf, len);
}

/* Move psync's stream requests to the outbox. Bounded: psync has at most
 * CN_PSYNC_INFLIGHT_MAX requests, and a failed push completes one. */
static void psync_drain(cn_node *n)
{
	if (n->psync == NULL)
		return;
	cn_addr to;
	uint8_t *buf;
	size_t len;
	uint32_t tag;
	for (int i = 0; i < 4 * CN_PSYNC_INFLIGHT_MAX &&
			cn_psync_next_request(n->psync, &to, &buf, &len, &tag) == 0;
	     i++)
		push_stream(n, SP_POLICY, &to, -1, tag, buf, len);
}

/* A push-pull with the member named source showed its policy digest. */
static void psync_peer(cn_node *n, const cn_pushpull *pp)
{
	if (n->psync == NULL)
		return;
	uint32_t id = ident_or_none(n, pp->source);
	const cn_member_rec *r = id == UINT32_MAX ? NULL : cn_members_find(&n->members, id);
	if (r == NULL || r->ident == n->self)
		return;
	cn_psync_on_peer_digest(n->psync, &ep_of(n, r)->addr, pp->has_policy_digest,
				pp->policy_digest, n->now_ms);
}

int cn_node_stream_serve(cn_node *n, const cn_addr *from, const uint8_t *req, size_t len,
			 uint64_t now_ms, const uint8_t **reply, size_t *reply_len)
{
	(void)from;
	enter(n, now_ms);
	n->stats.streams_in++;
	uint8_t type = 0;
	cn_pushpull pp;
	cn_msg_stats ms = {0};
	if (cn_stream_peek_type(req, len, &type) == 0 && cn_psync_stream_type(type)) {
		int prc = CN_EUNKNOWN;
		if (n->psync != NULL)
			prc = cn_psync_serve(n->psync, req, len, now_ms, &n->reply, reply_len);
		if (prc == 0)
			*reply = n->reply;
		else
			n->stats.unknown_types += prc == CN_EUNKNOWN;
		psync_drain(n);
		leave_entry(n);
		return prc;
	}
	/* Merge first, then answer: the reply then carries any refutation
	 * the request provoked, which is what lets two halves re-merge. */
	int rc = decode_merge(n, req, len, &type, &pp, &ms);
	n->stats.unknown_keys += ms.unknown_keys;
	if (rc == 0 && type != CN_MSG_PUSH_PULL)
		rc = CN_EINVAL;
	if (rc == 0)
		psync_peer(n, &pp);
	if (rc == 0)
		rc = encode_state(n, CN_MSG_PUSH_PULL_REPLY, false, STATE_ALL, &n->reply, reply_len);
	if (rc == 0) {
		*reply = n->reply;
		n->stats.pushpulls_served++;
	} else {
		n->stats.decode_errors += rc != CN_ENOMEM && rc != CN_ENOSPACE;
	}
	psync_drain(n);
	leave_entry(n);
	return rc;
}

/* Find and free our pending request stream_id; false if unknown. */
static bool stream_take(cn_node *n, uint32_t stream_id, stream_state *out)
{
	for (int i = 0; i < CN_STREAMS_MAX && stream_id != 0; i++) {
		if (n->streams[i].id == stream_id) {
			*out = n->streams[i];
			n->streams[i].id = 0;
			return true;
		}
	}
	return false;
}

/* Merge a push-pull reply. Returns 0 or the decoding error. */
static int merge_reply(cn_node *n, const stream_state *done, const uint8_t *reply, size_t len)
{
	uint8_t type = 0;
	cn_pushpull pp;
	cn_msg_stats ms = {0};
	int rc = decode_merge(n, reply, len, &type, &pp, &ms);
	n->stats.unknown_keys += ms.unknown_keys;
	if (rc == 0 && type != CN_MSG_PUSH_PULL_REPLY)
		rc = CN_EINVAL;
	if (rc != 0) {
		n->stats.decode_errors++;
		n->stats.stream_failures++;
		return rc;
	}
	if (done->seed >= 0) { /* remember who lives at the seed, for healing */
		assert(done->seed < (int)n->n_seeds);
		uint32_t id = ident_or_none(n, pp.source);
		n->seed_ident[done->seed] = id == UINT32_MAX ? 0 : id + 1;
	}
	psync_peer(n, &pp);
	return 0;
}

int cn_node_stream_result(cn_node *n, uint32_t stream_id, const uint8_t *reply, size_t len,
			  uint64_t now_ms)
{
	enter(n, now_ms);
	stream_state done;
	int rc = CN_ENOENT;
	if (stream_take(n, stream_id, &done)) {
		rc = 0;
		if (done.purpose == SP_POLICY) {
			if (n->psync != NULL)
				cn_psync_result(n->psync, done.tag, reply, len, now_ms);
		} else if (reply == NULL)
			n->stats.stream_failures++;
		else
			rc = merge_reply(n, &done, reply, len);
	}
	psync_drain(n);
	leave_entry(n);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Periodic work                                                        */

static void fwd_tick(cn_node *n)
{
	for (int i = 0; i < CN_FWD_MAX && n->fwd_used > 0; i++) {
		fwd_state *f = &n->fwd[i];
		if (!f->used || n->now_ms < f->nack_at_ms)
			continue;
		f->used = false;
		n->fwd_used--;
		if (!f->want_nack)
			continue;
		cn_msg m;
		msg_init(&m, CN_MSG_NACK);
		m.u.nack.seq = f->seq_origin;
		strcpy(m.u.nack.source, name_of(n, n->self));
		send_simple(n, &f->origin, &m, UINT32_MAX);
	}
}

/* Lifeguard buddy system before the verdict (suspicion.h, LAST CALLS):
 * tell the suspect we still hold its suspicion. A live suspect answers
 * with its alive (accused_self), which clears it here; the datagram
 * carries nothing else, so calls to a dead suspect spend no gossip. */
static void last_call(cn_node *n, const cn_suspicion *s)
{
	const cn_member_rec *r = cn_members_find(&n->members, s->ident);
	assert(r != NULL && r->state == CN_STATE_SUSPECT); /* I3 */
	if (r->flags & CN_MF_INCOMPAT)
		return;
	/* Suspecting more than an eighth of the view (and more than a few)
	 * at once is a partition or our own trouble, not a refutation we
	 * missed: calls would go to members we cannot reach, 3 per suspect
	 * (suspicion.h). */
	if (n->susp.count > 8 && (uint64_t)n->susp.count * 8 > n->members.count) {
		n->stats.last_calls_skipped++;
		return;
	}
	n->stats.last_calls++;
	dgram d;
	cn_msg m;
	dg_begin(&d, n);
	make_accuse(n, CN_MSG_SUSPECT, r, s->accuser, &m);
	(void)dg_add(&d, &m);
	dg_send(&d, &ep_of(n, r)->addr);
}

static void suspicion_tick(cn_node *n)
{
	cn_suspicion s;
	for (;;) { /* calls first: a due call can hide an expired timer */
		if (cn_suspicion_table_take_call(&n->susp, n->now_ms, &s)) {
			last_call(n, &s);
			continue;
		}
		if (!cn_suspicion_table_pop_expired(&n->susp, n->now_ms, &s))
			break;
		cn_member_rec *r = cn_members_find(&n->members, s.ident);
		assert(r != NULL && r->state == CN_STATE_SUSPECT); /* I3 */
		n->stats.deaths_declared++;
		declare_dead(n, r, n->self);
	}
}

static bool gossip_ok(const cn_node *n, const cn_member_rec *r)
{
	if (r->flags & CN_MF_INCOMPAT)
		return false;
	if (r->state == CN_STATE_ALIVE || r->state == CN_STATE_SUSPECT)
		return true;
	/* Recently failed members still hear gossip, so they can refute. */
	return r->state == CN_STATE_DEAD &&
	       state_age_ms(n, r) < n->cfg.gossip_to_dead_ms;
}

static void gossip_tick(cn_node *n)
{
	if (n->now_ms < n->next_gossip_ms)
		return;
	n->next_gossip_ms = n->now_ms + n->cfg.gossip_interval_ms;
	if (!gossip_pending(n))
		return;
	uint32_t to[64];
	uint32_t want = n->cfg.gossip_nodes < 64 ? n->cfg.gossip_nodes : 64;
	uint32_t got = pick_random(n, want, gossip_ok, UINT32_MAX, to);
	for (uint32_t i = 0; i < got && gossip_pending(n); i++) {
		dgram d;
		dg_begin(&d, n);
		dg_piggyback(&d);
		if (d.msgs == 0)
			break;
		dg_send(&d, &ep_of(n, cn_members_find(&n->members, to[i]))->addr);
		n->stats.gossip_sent++;
	}
}

static uint64_t pushpull_interval_ms(const cn_node *n)
{
	uint32_t est = est_n(n);
	uint64_t base = n->cfg.pushpull_interval_ms;
	if (est <= CN_PUSHPULL_SCALE_N)
		return base;
	double mult = ceil(log2((double)est) - log2((double)CN_PUSHPULL_SCALE_N)) + 1.0;
	return base * (uint64_t)mult;
}

static bool pushpull_ok(const cn_node *n, const cn_member_rec *r)
{
	(void)n;
	return r->state == CN_STATE_ALIVE && !(r->flags & CN_MF_INCOMPAT);
}

static bool reconnect_ok(const cn_node *n, const cn_member_rec *r)
{
	(void)n;
	return r->state == CN_STATE_DEAD && !(r->flags & CN_MF_INCOMPAT);
}

static void pushpull_tick(cn_node *n)
{
	if (n->now_ms < n->next_pushpull_ms)
		return;
	uint64_t interval = pushpull_interval_ms(n);
	if (n->pushpull_first) {
		/* The first one was drawn in the base interval, before we knew
		 * the cluster size. Re-draw it inside the scaled interval, or
		 * every node of a big fleet started together push-pulls in the
		 * first base interval (10,000 full views in 30 s). */
		/* pushpull_first stays set on purpose: until a draw falls in
		 * the past (always, once created_ms + interval has passed), each
		 * due time draws again, so a node that was alone at its first
		 * draw (a whole-fleet restart) still exchanges views soon after
		 * it has peers. Clearing it here left a restarted 10-node fleet
		 * unconverged for 35.7 s after its seed returned, against 8.4 s
		 * (test_node whole_fleet_restart_rejoins). */
		uint64_t at = n->created_ms + cn_rng_below(&n->rng, interval);
		if (at > n->now_ms) {
			n->next_pushpull_ms = at;
			return;
		}
	}
	n->next_pushpull_ms = n->now_ms + interval;
	uint32_t peer;
	if (live_peers(n) > 0 && pick_random(n, 1, pushpull_ok, UINT32_MAX, &peer) == 1)
		start_stream(n, SP_PUSHPULL, &ep_of(n, cn_members_find(&n->members, peer))->addr, -1,
			     STATE_ALL);
}

static void reconnect_tick(cn_node *n)
{
	if (n->now_ms < n->next_reconnect_ms)
		return;
	n->next_reconnect_ms = n->now_ms + n->cfg.reconnect_interval_ms;
	if (n->leaving)
		return;
	uint32_t peer;
	if (n->members.n_state[CN_STATE_DEAD] > 0 &&
	    pick_random(n, 1, reconnect_ok, UINT32_MAX, &peer) == 1) {
		start_stream(n, SP_RECONNECT, &ep_of(n, cn_members_find(&n->members, peer))->addr, -1,
			     peer);
		return;
	}
	if (n->n_seeds == 0)
		return;
	uint32_t i = rand_below(n, n->n_seeds);
	const cn_member_rec *r =
		n->seed_ident[i] ? cn_members_find(&n->members, n->seed_ident[i] - 1) : NULL;
	if (r == NULL || r->state != CN_STATE_ALIVE) /* a seed we do not see: try it */
		start_stream(n, SP_RECONNECT, &n->seeds[i], (int)i, n->self);
}

static void send_joins(cn_node *n)
{
	for (uint32_t i = 0; i < n->n_seeds; i++)
		start_stream(n, SP_JOIN, &n->seeds[i], (int)i, STATE_ALL);
}

static void join_tick(cn_node *n)
{
	if (n->now_ms < n->join_retry_ms)
		return;
	if (live_peers(n) > 0 || n->leaving) {
		n->join_retry_ms = UINT64_MAX; /* joined: healing takes it from here */
		return;
	}
	n->join_backoff_ms *= 2;
	if (n->join_backoff_ms > n->cfg.join_retry_max_ms)
		n->join_backoff_ms = n->cfg.join_retry_max_ms;
	send_joins(n);
	n->join_retry_ms = n->now_ms + n->join_backoff_ms;
}

static void publish_meta(cn_node *n)
{
	cn_member_rec *me = self_rec(n);
	assert(n->meta_held != 0);
	cn_pool_meta_release(n->pool, me->meta);
	me->meta = n->meta_held; /* the held reference moves into the record */
	n->meta_held = 0;
	if (me->meta_version < UINT32_MAX)
		me->meta_version++;
	n->meta_ever_sent = true;
	n->meta_sent_ms = n->now_ms;
	broadcast(n, n->self, CN_MSG_META, 0);
	emit_event(n, CN_EV_UPDATE, me);
}

static uint64_t meta_due_ms(const cn_node *n)
{
	if (n->meta_held == 0)
		return UINT64_MAX;
	return n->meta_ever_sent ? n->meta_sent_ms + n->cfg.meta_min_interval_ms : 0;
}

void cn_node_tick(cn_node *n, uint64_t now_ms)
{
	enter(n, now_ms);
	fwd_tick(n);
	suspicion_tick(n);
	probe_indirect(n);
	probe_finish(n);
	if (now_ms >= n->next_probe_ms && !n->probe.active)
		probe_start(n);
	gossip_tick(n);
	pushpull_tick(n);
	reconnect_tick(n);
	join_tick(n);
	if (now_ms >= meta_due_ms(n) && !n->leaving)
		publish_meta(n);
	if (n->psync != NULL) {
		cn_psync_tick(n->psync, now_ms);
		psync_drain(n);
	}
	leave_entry(n);
}

uint64_t cn_node_deadline(const cn_node *n)
{
	uint64_t d = n->next_probe_ms;
	const probe_state *p = &n->probe;
	if (p->active) {
		d = min_u64(d, p->end_ms);
		if (!p->acked && !p->indirect_sent)
			d = min_u64(d, p->indirect_at_ms);
	}
	if (gossip_pending(n))
		d = min_u64(d, n->next_gossip_ms);
	if (n->psync != NULL)
		d = min_u64(d, cn_psync_deadline(n->psync));
	if (live_peers(n) > 0)
		d = min_u64(d, n->next_pushpull_ms);
	if (!n->leaving && (n->members.n_state[CN_STATE_DEAD] > 0 || n->n_seeds > 0))
		d = min_u64(d, n->next_reconnect_ms);
	d = min_u64(d, n->join_retry_ms);
	if (!n->leaving)
		d = min_u64(d, meta_due_ms(n));
	d = min_u64(d, cn_suspicion_table_next_ms(&n->susp));
	for (int i = 0; i < CN_FWD_MAX && n->fwd_used > 0; i++)
		if (n->fwd[i].used)
			d = min_u64(d, n->fwd[i].nack_at_ms);
	return d < n->now_ms ? n->now_ms : d;
}

int cn_node_next_output(cn_node *n, cn_out *out)
{
	free(n->reply);
	n->reply = NULL;
	return cn_outbox_pop(&n->out, out);
}

/* ------------------------------------------------------------------ */
/* Life cycle and operator actions                                      */

static void apply_defaults(cn_node_config *c)
{
	cn_node_config d;
	cn_node_config_default(&d);
	if (c->gossip_to_dead_ms == 0)
		c->gossip_to_dead_ms = d.gossip_to_dead_ms;
	if (c->queue_max == 0)
		c->queue_max = d.queue_max;
}

static int add_self(cn_node *n)
{
	const cn_node_config *c = &n->cfg;
	int rc = cn_pool_intern_name(n->pool, c->name, &n->self);
	if (rc != 0)
		return rc;
	cn_member_rec me = {.ident = n->self, .incarnation = c->incarnation,
			    .state = CN_STATE_ALIVE};
	bool changed;
	if ((rc = set_endpoint(n, &me, &c->addr, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX,
			       &changed)) != 0)
		return rc;
	if ((rc = set_meta(n, &me, &c->meta, &changed)) != 0 ||
	    (rc = cn_members_add(&n->members, &me)) != 0) {
		cn_pool_endpoint_release(n->pool, me.endpoint);
		cn_pool_meta_release(n->pool, me.meta);
		return rc == CN_EFULL ? CN_EINVAL : rc;
	}
	cn_members_set_state(&n->members, self_rec(n), CN_STATE_ALIVE, table_ms(n, n->now_ms));
	n->self_inc_seen = c->incarnation;
	return 0;
}

static void init_timers(cn_node *n, uint64_t now_ms)
{
	/* Random phases so that nodes started together do not move in step. */
	n->next_probe_ms = now_ms + rand_below(n, n->cfg.probe_interval_ms);
	n->next_gossip_ms = now_ms + rand_below(n, n->cfg.gossip_interval_ms);
	n->next_pushpull_ms = now_ms + rand_below(n, n->cfg.pushpull_interval_ms);
	n->pushpull_first = true;
	n->created_ms = now_ms;
	n->next_reconnect_ms = now_ms + n->cfg.reconnect_interval_ms +
			       rand_below(n, n->cfg.reconnect_interval_ms);
	n->join_retry_ms = UINT64_MAX;
	n->seq = (uint32_t)cn_rng_next(&n->rng);
}

int cn_node_new(const cn_node_config *cfg, cn_pool *pool, uint64_t seed, uint64_t now_ms,
		cn_node **out)
{
	if (!config_valid(cfg))
		return CN_EINVAL;
	cn_node *n = calloc(1, sizeof *n);
	if (n == NULL)
		return CN_ENOMEM;
	n->cfg = *cfg;
	apply_defaults(&n->cfg);
	n->pool = pool;
	if (pool == NULL) {
		n->own_pool = true;
		if (cn_pool_new(&n->pool) != 0) {
			free(n);
			return CN_ENOMEM;
		}
	}
	n->now_ms = now_ms;
	cn_rng_seed(&n->rng, seed);
	cn_members_init(&n->members, n->cfg.max_members, now_ms); /* see table_ms */
	cn_awareness_init(&n->aware, n->cfg.awareness_max);
	/* start_suspicion's k never exceeds indirect_checks (0 without lifeguard). */
	cn_suspicion_table_init(&n->susp, n->cfg.lifeguard ? n->cfg.indirect_checks : 0);
	cn_queue_init(&n->queue, n->cfg.queue_max);
	cn_vivaldi_init(&n->viv, cn_rng_next(&n->rng));
	cn_outbox_init(&n->out, CN_OUTBOX_MAX);
	init_timers(n, now_ms);
	int rc = add_self(n);
	if (rc != 0) {
		cn_node_free(n);
		return rc;
	}
	memset(&n->cfg.meta, 0, sizeof n->cfg.meta); /* lives in the pool now */
	*out = n;
	assert_node_invariants(n, true);
	return 0;
}

void cn_node_free(cn_node *n)
{
	if (n == NULL)
		return;
	for (uint32_t i = 0; i < n->members.count; i++) {
		cn_pool_endpoint_release(n->pool, n->members.recs[i].endpoint);
		cn_pool_meta_release(n->pool, n->members.recs[i].meta);
	}
	cn_pool_meta_release(n->pool, n->meta_held);
	cn_members_free(&n->members);
	cn_suspicion_table_free(&n->susp);
	cn_queue_free(&n->queue);
	cn_outbox_free(&n->out);
	cn_psync_free(n->psync);
	free(n->reply);
	if (n->own_pool)
		cn_pool_free(n->pool);
	free(n);
}

int cn_node_join(cn_node *n, const cn_addr *seeds, size_t n_seeds, uint64_t now_ms)
{
	enter(n, now_ms);
	int rc = n->leaving ? CN_ESTATE : 0;
	for (size_t i = 0; rc == 0 && i < n_seeds; i++) {
		bool known = cn_addr_eq(&seeds[i], &n->cfg.addr) || seeds[i].family == 0;
		for (uint32_t k = 0; k < n->n_seeds && !known; k++)
			known = cn_addr_eq(&seeds[i], &n->seeds[k]);
		if (!known && n->n_seeds < CN_SEEDS_MAX)
			n->seeds[n->n_seeds++] = seeds[i];
	}
	if (rc == 0 && n->n_seeds > 0) {
		send_joins(n);
		n->join_backoff_ms = CN_JOIN_BACKOFF_MS;
		n->join_retry_ms = now_ms + n->join_backoff_ms;
	}
	leave_entry(n);
	return rc;
}

void cn_node_set_quiet_bulk(cn_node *n, bool on) { n->quiet_bulk = on; }

int cn_node_leave(cn_node *n, uint64_t now_ms)
{
	enter(n, now_ms);
	if (!n->leaving) {
		cn_member_rec *me = self_rec(n);
		n->leaving = true;
		set_state(n, me, CN_STATE_LEFT);
		emit_event(n, CN_EV_LEFT, me);
		broadcast(n, n->self, CN_MSG_LEAVE, 0);
	}
	leave_entry(n);
	return 0;
}

bool cn_node_leave_done(const cn_node *n)
{
	cn_queue_item it;
	return n->leaving && (!cn_queue_find(&n->queue, n->self, &it) || live_peers(n) == 0);
}

int cn_node_set_meta(cn_node *n, const cn_meta *meta, uint64_t now_ms)
{
	enter(n, now_ms);
	int rc = n->leaving ? CN_ESTATE : 0;
	uint32_t ref = 0;
	if (rc == 0)
		rc = cn_pool_meta_acquire(n->pool, meta, &ref);
	if (rc == 0) {
		cn_pool_meta_release(n->pool, n->meta_held); /* only the latest counts */
		n->meta_held = ref;
		if (ref == self_rec(n)->meta) {
			/* Same content as what we publish (refs are content
			 * addressed): no new version, no gossip, nothing held. */
			cn_pool_meta_release(n->pool, ref);
			n->meta_held = 0;
		} else if (now_ms >= meta_due_ms(n)) {
			publish_meta(n);
		}
	}
	leave_entry(n);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Views                                                                */

size_t cn_node_member_count(const cn_node *n) { return n->members.count; }

static void fill_member(const cn_node *n, const cn_member_rec *r, cn_member *out)
{
	const cn_pool_endpoint *ep = ep_of(n, r);
	memset(out, 0, sizeof *out);
	strcpy(out->name, name_of(n, r->ident));
	out->addr = ep->addr;
	out->state = r->state;
	out->incarnation = r->incarnation;
	out->meta_version = r->meta_version;
	out->meta = *cn_pool_meta_get(n->pool, r->meta);
	out->vmin = ep->vmin;
	out->vmax = ep->vmax;
	/* In our clock; a learnt state older than our clock's origin shows 0. */
	uint64_t changed = cn_members_changed_ms(&n->members, r);
	out->state_change_ms = changed - min_u64(changed, n->cfg.dead_reap_ms);
	if (r->ident == n->self) {
		out->has_coord = true;
		cn_vivaldi_get(&n->viv, &out->coord);
	} else {
		out->has_coord = cn_pool_get_coord(n->pool, r->ident, &out->coord);
	}
}

int cn_node_member_get(const cn_node *n, size_t i, cn_member *out)
{
	if (i >= n->members.count)
		return CN_ENOENT;
	fill_member(n, &n->members.recs[i], out);
	return 0;
}

int cn_node_member_find(const cn_node *n, const char *name, cn_member *out)
{
	uint32_t ident = ident_or_none(n, name);
	const cn_member_rec *r = ident == UINT32_MAX ? NULL : cn_members_find(&n->members, ident);
	if (r == NULL)
		return CN_ENOENT;
	fill_member(n, r, out);
	return 0;
}

void cn_node_self(const cn_node *n, cn_member *out) { fill_member(n, self_rec(n), out); }

size_t cn_node_count_state(const cn_node *n, uint8_t state)
{
	return state <= CN_STATE_MAX_ ? n->members.n_state[state] : 0;
}

uint32_t cn_node_health_score(const cn_node *n) { return cn_awareness_score(&n->aware); }

bool cn_node_last_probe_ok(const cn_node *n) { return n->last_probe_ok; }

const cn_node_stats *cn_node_stats_get(const cn_node *n) { return &n->stats; }

static bool coord_of(const cn_node *n, const char *name, cn_coord *c)
{
	uint32_t ident = ident_or_none(n, name);
	if (ident == UINT32_MAX)
		return false;
	if (ident == n->self) {
		cn_vivaldi_get(&n->viv, c);
		return true;
	}
	return cn_pool_get_coord(n->pool, ident, c);
}

int cn_node_rtt_ms(const cn_node *n, const char *a, const char *b, double *rtt_ms)
{
	cn_coord ca, cb;
	if (!coord_of(n, a, &ca) || !coord_of(n, b, &cb))
		return CN_ENOENT;
	*rtt_ms = cn_coord_rtt_ms(&ca, &cb);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Policy replication: see core/psync.h                                 */

int cn_node_attach_policy(cn_node *n, struct cn_policy *p, uint64_t now_ms)
{
	enter(n, now_ms);
	cn_psync *ps = NULL;
	int rc = p == NULL ? 0 : cn_psync_new(p, &ps);
	if (rc == 0) {
		/* Requests of the old psync in flight complete as unknown ids. */
		for (int i = 0; i < CN_STREAMS_MAX; i++)
			if (n->streams[i].id != 0 && n->streams[i].purpose == SP_POLICY)
				n->streams[i].id = 0;
		cn_psync_free(n->psync);
		n->psync = ps;
	}
	leave_entry(n);
	return rc;
}

void cn_node_policy_wall_offset(cn_node *n, int64_t wall_minus_now_ms)
{
	if (n->psync != NULL)
		cn_psync_set_wall_offset(n->psync, wall_minus_now_ms);
}

void cn_node_policy_announce(cn_node *n, const struct cn_doc *d, uint64_t now_ms)
{
	enter(n, now_ms);
	if (n->psync != NULL) {
		cn_psync_announce(n->psync, d);
		n->next_gossip_ms = n->now_ms; /* tell the fleet now */
	}
	leave_entry(n);
}

const cn_psync_stats *cn_node_psync_stats(const cn_node *n)
{
	return n->psync != NULL ? cn_psync_stats_get(n->psync) : NULL;
}
