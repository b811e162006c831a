/* A Canopy node: the sans-I/O membership state machine (SWIM + Lifeguard).
 *
 * The node never reads a clock, touches a socket or draws OS randomness.
 * Its caller (the agent, the simulator, a unit test) drives it:
 *
 *   cn_node_recv()          a datagram's plaintext arrived (already opened)
 *   cn_node_stream_serve()  a stream request arrived; the node writes a reply
 *   cn_node_stream_result() a stream request the node asked for completed
 *   cn_node_tick()          time passed; call at cn_node_deadline() or later
 *   cn_node_next_output()   drain datagrams to send, stream requests to make
 *                           and events to report, until CN_EAGAIN
 *
 * Time is a uint64_t of milliseconds on any monotonic scale chosen by the
 * caller; it must never go backwards (asserted). Randomness comes from the
 * seed given at creation, so the same inputs give the same outputs.
 *
 * Ownership: the node owns every buffer it hands out; a cn_out's data stays
 * valid until the next call into the node. */
#ifndef CN_CORE_NODE_H
#define CN_CORE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"
#include "wire/msg.h"

typedef struct cn_node cn_node;
/* Interned names, addresses and metadata shared between nodes (core/pool.h).
 * The simulator hands one pool to thousands of nodes so each member's name
 * and metadata are stored once, not once per view. */
typedef struct cn_pool cn_pool;

typedef struct cn_node_config {
	char name[CN_NAME_MAX + 1];
	cn_addr addr;                  /* advertised address (UDP and TCP) */
	uint64_t incarnation;          /* start incarnation: above any used before */
	cn_meta meta;                  /* initial metadata */

	uint32_t probe_interval_ms;    /* base probe period (1000) */
	uint32_t probe_timeout_ms;     /* direct-ack wait before indirect probes (500) */
	uint32_t indirect_checks;      /* k members asked for indirect probes (3) */
	uint32_t retransmit_mult;      /* λ: each update sent λ·log(N+1) times (4) */
	uint32_t suspicion_mult;       /* suspicion min = mult·log10(N)·interval (4) */
	uint32_t suspicion_max_mult;   /* suspicion max = max_mult · min (6) */
	uint32_t awareness_max;        /* Lifeguard local-health ceiling (8) */
	uint32_t gossip_interval_ms;   /* extra gossip-only datagrams (200) */
	uint32_t gossip_nodes;         /* members per gossip round (3) */
	uint32_t pushpull_interval_ms; /* base; scaled up with cluster size (30000) */
	uint32_t reconnect_interval_ms;/* try one failed member or seed (10000) */
	uint32_t dead_reap_ms;         /* forget failed/left members after (24 h) */
	uint32_t meta_min_interval_ms; /* rate limit on metadata updates (1000) */
	uint32_t join_retry_max_ms;    /* join backoff ceiling (30000) */
	uint32_t max_members;          /* table limit (65536) */
	bool lifeguard;                /* awareness, dynamic suspicion, buddy (true) */
	/* Added after the first contract; 0 means "the default" so callers
	 * written before them keep working. */
	uint32_t gossip_to_dead_ms;    /* keep gossiping to a failed member this
					* long so it can hear of it and refute (30000) */
	uint32_t queue_max;            /* broadcast queue bound; beyond it the most
					* sent update is dropped (4096) */
} cn_node_config;

void cn_node_config_default(cn_node_config *cfg);

enum cn_event_type {
	CN_EV_JOIN = 1,        /* a member became known, alive */
	CN_EV_ALIVE = 2,       /* a suspect/failed/left member is alive again */
	CN_EV_SUSPECT = 3,
	CN_EV_FAILED = 4,
	CN_EV_LEFT = 5,
	CN_EV_UPDATE = 6,      /* address or metadata changed */
	CN_EV_REAP = 7,        /* a failed/left member was forgotten */
	CN_EV_SELF_INCARNATION = 8, /* our own incarnation rose: persist it */
	/* A member became known already failed / left: learnt from a
	 * push-pull (we joined or restarted after the fact), stamped with the
	 * sender's age of the state. Old news, not a detection: no
	 * CN_EV_FAILED / CN_EV_LEFT, not gossiped, not in the stats. */
	CN_EV_KNOWN_FAILED = 9,
	CN_EV_KNOWN_LEFT = 10,
};

typedef struct cn_event {
	uint8_t type;          /* enum cn_event_type */
	char name[CN_NAME_MAX + 1];
	cn_addr addr;
	uint64_t incarnation;
	uint64_t at_ms;
} cn_event;

enum cn_out_kind {
	CN_OUT_DATAGRAM = 1,   /* send data (plaintext, <= CN_DATAGRAM_PLAIN_MAX) to `to` */
	CN_OUT_STREAM = 2,     /* make a stream request to `to`; report with stream_id */
	CN_OUT_EVENT = 3,
};

typedef struct cn_out {
	uint8_t kind;          /* enum cn_out_kind */
	cn_addr to;
	uint32_t stream_id;
	const uint8_t *data;   /* owned by the node; valid until the next call */
	size_t len;
	cn_event event;
} cn_out;

/* A member as the node sees it. */
typedef struct cn_member {
	char name[CN_NAME_MAX + 1];
	cn_addr addr;
	uint8_t state;         /* enum cn_member_state_code */
	uint64_t incarnation;
	uint64_t meta_version;
	cn_meta meta;
	uint8_t vmin, vmax;
	/* When it entered its state, in our clock. A failed/left member learnt
	 * from a push-pull: its sender's age of the state (0 when that lies
	 * before our clock's origin). Whole seconds apart from our creation. */
	uint64_t state_change_ms;
	bool has_coord;
	cn_coord coord;        /* last Vivaldi coordinate heard from it */
} cn_member;

typedef struct cn_node_stats {
	uint64_t datagrams_in, datagrams_out, bytes_in, bytes_out;
	uint64_t msgs_in, msgs_out;
	uint64_t decode_errors, unknown_types, unknown_keys, old_versions;
	uint64_t probes, indirect_probes, acks, nacks_in, probe_failures;
	uint64_t suspicions, refutations, deaths_declared;
	uint64_t last_calls, last_calls_skipped; /* suspicion.h LAST CALLS */
	uint64_t streams_out, stream_failures, pushpulls_served;
	uint64_t gossip_sent, gossip_dropped;
	/* Added: */
	uint64_t misdirected;          /* pings/ping-reqs for another name at our address */
	uint64_t members_refused;      /* new members refused: table at max_members */
	uint64_t outputs_dropped;      /* outbox full (caller not draining) */
	uint64_t streams_in;           /* stream requests served, any type */
} cn_node_stats;

/* Create a node. cfg is copied. pool may be NULL (the node makes a private
 * one) or shared with other nodes of the same process; it must outlive
 * them. Returns 0, CN_EINVAL (bad config) or CN_ENOMEM. The caller frees
 * with cn_node_free(). */
int cn_node_new(const cn_node_config *cfg, cn_pool *pool, uint64_t seed, uint64_t now_ms,
		cn_node **out);
void cn_node_free(cn_node *n);

/* Feed one datagram's plaintext (one or more messages back to back).
 * Bad bytes are counted in the stats and dropped; the return is 0 or the
 * first decode error, for the caller's logs only. */
int cn_node_recv(cn_node *n, const cn_addr *from, const uint8_t *data, size_t len,
		 uint64_t now_ms);

/* Serve a stream request (push-pull). On 0, *reply and *reply_len give the reply
 * plaintext, owned by the node, valid until the next call. */
int cn_node_stream_serve(cn_node *n, const cn_addr *from, const uint8_t *req, size_t len,
			 uint64_t now_ms, const uint8_t **reply, size_t *reply_len);

/* Complete a stream request the node asked for: reply bytes, or
 * reply == NULL when it failed (timeout, refused, unsealable). */
int cn_node_stream_result(cn_node *n, uint32_t stream_id, const uint8_t *reply, size_t len,
			  uint64_t now_ms);

/* Advance timers. */
void cn_node_tick(cn_node *n, uint64_t now_ms);
/* The earliest time at which cn_node_tick has work to do. */
uint64_t cn_node_deadline(const cn_node *n);

/* Pop the next output; 0 with *out filled, or CN_EAGAIN when empty. */
int cn_node_next_output(cn_node *n, cn_out *out);

/* Join through seeds (push-pull with each until one answers; retried with
 * exponential backoff up to join_retry_max_ms while we know nobody).
 * Seeds are also remembered for healing after partitions. */
int cn_node_join(cn_node *n, const cn_addr *seeds, size_t n_seeds, uint64_t now_ms);
/* Converged start (simulators, tests): while on, members first learned from
 * a push-pull reply are merged without being gossiped on (the peer too).
 * For a fleet created already knowing itself: every node is answered the
 * same full view, so there is nothing to spread. Off by default; changes
 * nothing else. */
void cn_node_set_quiet_bulk(cn_node *n, bool on);
/* Gossip our leave. cn_node_leave_done() is true once the intent has been
 * sent about λ·log N times or no peer is left to tell. */
int cn_node_leave(cn_node *n, uint64_t now_ms);
bool cn_node_leave_done(const cn_node *n);

/* Replace our metadata; the change is gossiped with a new meta_version (not
 * a new incarnation). Rate-limited: a second change inside
 * meta_min_interval_ms is held and sent when the interval ends.
 * Setting the metadata already published is a no-op (no new version), so
 * callers may refresh it periodically. Returns 0, CN_ESTATE (leaving) or
 * CN_ENOMEM. */
int cn_node_set_meta(cn_node *n, const cn_meta *meta, uint64_t now_ms);

/* Members, self included. Copies out of the compact table: for views and
 * tests, not hot paths. Index order is stable between calls that change
 * nothing, but not sorted; callers sort if they need to. */
size_t cn_node_member_count(const cn_node *n);
int cn_node_member_get(const cn_node *n, size_t i, cn_member *out);           /* CN_ENOENT */
int cn_node_member_find(const cn_node *n, const char *name, cn_member *out);  /* CN_ENOENT */
void cn_node_self(const cn_node *n, cn_member *out);
/* Whether member m (copied out by the calls above) is failed or left and
 * "out": its state is older than 15/16 of dead_reap_ms. Placement keeps
 * failed and left members in its base until they are out (agent/sched.c).
 * Going by the state's age, which push-pull carries, every agent takes a
 * member out within a second or so of the others, where the reap (once
 * per probe pass: minutes apart in a large fleet) would not; and a member
 * that is out is not learnt again from a push-pull. */
bool cn_node_member_out(const cn_node *n, const cn_member *m);
/* Counts by state, for convergence checks. */
size_t cn_node_count_state(const cn_node *n, uint8_t state);

/* Lifeguard local-health score, 0 (healthy) .. awareness_max-1. */
uint32_t cn_node_health_score(const cn_node *n);
/* True when this node's last finished probe was acknowledged (false
 * before the first). */
bool cn_node_last_probe_ok(const cn_node *n);
const cn_node_stats *cn_node_stats_get(const cn_node *n);
/* Estimated round trip between two members' coordinates, or CN_ENOENT. */
int cn_node_rtt_ms(const cn_node *n, const char *a, const char *b, double *rtt_ms);

/* ---- policy replication (core/psync.h) -------------------------------
 * A node may carry a policy replica (core/policy.h). Once attached, the
 * node replicates it with no help from its caller: announcements ride the
 * gossip queue, bodies are fetched over the stream plane (the same
 * CN_OUT_STREAM / cn_node_stream_serve / cn_node_stream_result path as
 * push-pull), and push-pull carries the store's digest so anything missed
 * is repaired. The replica stays owned by the caller and must outlive the
 * node (or be detached with p == NULL). @return 0 or CN_ENOMEM. */
struct cn_policy;
struct cn_doc;
int cn_node_attach_policy(cn_node *n, struct cn_policy *p, uint64_t now_ms);
/* Tell the fleet about a document the caller applied locally (an
 * operator's write that came out APPLIED). Remote applies are announced
 * by the node itself. */
void cn_node_policy_announce(cn_node *n, const struct cn_doc *d, uint64_t now_ms);
/* The replica's hybrid clock needs wall time; the node's is monotonic.
 * wall = now + offset (the agent: realtime - monotonic; the simulator: its
 * epoch). Call after attaching. */
void cn_node_policy_wall_offset(cn_node *n, int64_t wall_minus_now_ms);
/* Replication counters, or NULL when no replica is attached. */
struct cn_psync_stats;
const struct cn_psync_stats *cn_node_psync_stats(const cn_node *n);

/* Added: check every numbered invariant of node.c, including the O(N)
 * ones that debug builds otherwise only check once per probe pass.
 * Aborts (assert) on a violation; a no-op when built with NDEBUG. For
 * tests and the simulator's paranoid mode. */
void cn_node_assert_invariants(const cn_node *n);

#endif
