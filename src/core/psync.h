/* Policy replication: how one replica (core/policy.h) catches up with the
 * fleet. Sans-I/O like the node that owns it (core/node.h): the node hands
 * it what arrives and carries what it wants to send.
 *
 * THREE PATHS, fastest first:
 *
 * 1. ANNOUNCE (gossip plane). A document that comes out APPLIED here (an
 *    operator's write, or one fetched from a peer) is announced: (kind,
 *    name, version, writer, document hash), about 250 bytes, piggybacked on
 *    the node's datagrams after its membership updates, each announcement
 *    sent about λ·log N times like a membership update. A replica that hears
 *    of a version above its winner relays the announcement at once and
 *    fetches the body from the member that told it, so the news spreads at
 *    the speed of a membership update and the body arrives one fetch
 *    behind. Bodies never travel in datagrams. (An earlier version relayed
 *    only after the fetch: 1.26x the membership dissemination time at the
 *    p99 with 1,000 nodes, one round trip per hop.)
 *
 * 2. FETCH (stream plane): [[kind, name], ...] -> the sender's encoded
 *    winners. A source that lacks the version (it is still fetching it) or
 *    fails is left for the next member that announced it (up to
 *    CN_PSYNC_SOURCES are remembered) CN_PSYNC_NEXT_SOURCE_MS later, and
 *    the writer, which always holds it, is asked last; after a full round,
 *    backoff; after CN_PSYNC_TRIES_MAX rounds the name is left to
 *    anti-entropy.
 *
 * 3. ANTI-ENTROPY. Every push-pull carries the digest root of the sender's
 *    store. A replica that sees a root other than its own (on either end of a
 *    push-pull) sends that peer SYNC: its 256 bucket hashes; the peer lists
 *    (kind, name, version, writer, hash) of its winners in the buckets that
 *    differ, paged by bucket; the replica fetches what it lacks or holds lower.
 *    Both ends of a push-pull do this, so one push-pull repairs both, and a
 *    member that missed every write is repaired by its first push-pull.
 *    Each push-pull also starts an AUDIT exchange: the replica sends the head
 *    seq of every audit chain it holds and the peer answers with the entries
 *    that follow them, in chain order, paged.
 *
 * WALL TIME. The replica's hybrid clock needs wall time (to refuse versions
 * from the future); the node's clock is monotonic. The caller gives the
 * offset (wall = now + offset), cn_psync_set_wall_offset.
 *
 * BOUNDS. Announce queue CN_PSYNC_ANNOUNCE_MAX (when full the most-sent entry
 * goes), wants CN_PSYNC_WANTS_MAX (beyond it anti-entropy repairs), streams in
 * flight CN_PSYNC_INFLIGHT_MAX, a fetch asks for CN_PSYNC_FETCH_BATCH names, a
 * listing carries at most CN_PSYNC_LIST_MAX names, an audit page
 * CN_PSYNC_AUDIT_PAGE entries. Decoders check every count against these limits
 * and the bytes left (fuzz/fuzz_psync.c).
 *
 * Not thread-safe; one node owns one psync. */
#ifndef CN_CORE_PSYNC_H
#define CN_CORE_PSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "util/addr.h"
#include "wire/msg.h"

enum {
	CN_PSYNC_ANNOUNCE_MAX = 512,
	CN_PSYNC_WANTS_MAX = 4096,
	CN_PSYNC_SOURCES = 4,
	CN_PSYNC_FETCH_BATCH = 64,
	CN_PSYNC_INFLIGHT_MAX = 8,
	CN_PSYNC_LIST_MAX = 2048,
	CN_PSYNC_AUDIT_PAGE = 512,
	CN_PSYNC_CHAINS_MAX = 4096,
	CN_PSYNC_TRIES_MAX = 7,
	CN_PSYNC_RETRY_MS = 200,       /* after a round of sources: 200 ms, doubling */
	CN_PSYNC_NEXT_SOURCE_MS = 50,  /* between two sources of one round */
	CN_PSYNC_SYNC_MIN_MS = 5000,   /* at most one SYNC per peer in this time */
};

typedef struct cn_psync cn_psync;

typedef struct cn_psync_stats {
	uint64_t announces_in, announces_new, announces_queued, announces_dropped;
	uint64_t fetches_out, fetch_failures, docs_fetched, docs_applied, docs_refused;
	uint64_t syncs_out, syncs_served, listed, audit_out, audit_served;
	uint64_t audit_added, audit_refused, wants_dropped, decode_errors, served_fetch;
} cn_psync_stats;

/* p is borrowed and must outlive the psync. @return 0 or CN_ENOMEM. */
int cn_psync_new(cn_policy *p, cn_psync **out);
void cn_psync_free(cn_psync *s);
void cn_psync_set_wall_offset(cn_psync *s, int64_t wall_minus_now_ms);
const cn_psync_stats *cn_psync_stats_get(const cn_psync *s);
cn_policy *cn_psync_policy(const cn_psync *s);

/* A document this replica applied: queue its announcement. */
void cn_psync_announce(cn_psync *s, const cn_doc *d);
/* An announcement heard from the member at `from`; writer (may be NULL) is
 * the address of the member that wrote the version, if known. */
/* @return true when the announcement was news, queued to be relayed (the
 * node then gossips at once). */
bool cn_psync_on_announce(cn_psync *s, const cn_addr *from, const cn_addr *writer,
			  const cn_msg_policy_announce *a, uint64_t now_ms);
/* Piggyback: offer queued announcements to emit() (which returns the bytes
 * it added, 0 when the message does not fit) until one does not fit; each
 * is dropped after `limit` sends. @return announcements emitted. */
typedef size_t (*cn_psync_emit_fn)(void *ctx, const cn_msg *m);
uint32_t cn_psync_fill(cn_psync *s, uint32_t limit, cn_psync_emit_fn emit, void *ctx);
bool cn_psync_has_announcements(const cn_psync *s);

/* A push-pull with the member at `peer` showed its digest root (has = false:
 * it sent none). Starts SYNC if the roots differ and AUDIT either way,
 * rate-limited per peer. */
void cn_psync_on_peer_digest(cn_psync *s, const cn_addr *peer, bool has, const uint8_t *root,
			     uint64_t now_ms);
/* Our digest root, for push-pull. */
void cn_psync_root(const cn_psync *s, uint8_t root[CN_HASH_BYTES]);

/* Stream requests of ours. Drain with next_request (buf is malloc'd and
 * handed over), report each with result (reply NULL: failed). */
bool cn_psync_stream_type(uint8_t type);
int cn_psync_next_request(cn_psync *s, cn_addr *to, uint8_t **buf, size_t *len, uint32_t *tag);
void cn_psync_result(cn_psync *s, uint32_t tag, const uint8_t *reply, size_t len,
		     uint64_t now_ms);
/* Serve a peer's request. On 0, *reply is malloc'd and handed over.
 * @return 0, a decode error (CN_ETRUNC, CN_ETYPE, CN_ELIMIT, ...), CN_ENOMEM. */
int cn_psync_serve(cn_psync *s, const uint8_t *req, size_t len, uint64_t now_ms, uint8_t **reply,
		   size_t *reply_len);

/* Retries. */
void cn_psync_tick(cn_psync *s, uint64_t now_ms);
uint64_t cn_psync_deadline(const cn_psync *s);

#endif
