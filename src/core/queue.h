/* The transmit-limited broadcast queue (infection-style dissemination).
 *
 * Each membership update is piggybacked on outgoing datagrams until it has
 * been sent `limit` times, limit = retransmit_mult * ceil(log10(N + 1))
 * (cn_queue_retransmit_limit), which with random targets reaches every
 * member with high probability (SWIM section 4.1). Updates sent fewest
 * times go first; among equals, new updates before older ones (new news
 * matters most), and updates already sent rotate to the back of their
 * bucket so that equally-sent updates take turns.
 *
 * Entries are compact references (member ident, kind, accuser), 20 bytes
 * each: the message is encoded at send time from the node's current view,
 * so a stale entry costs nothing and a member's newest state is what goes
 * out. At most one entry per member: a new update about a member supersedes
 * the old one, except that a metadata-only update never replaces a
 * suspect/dead/leave entry (those matter more; the member's next alive
 * carries its metadata anyway) and only refreshes an alive entry.
 *
 * Two classes: URGENT updates (suspect, dead, leave, and an alive that
 * raises a known member's incarnation, i.e. a refutation) are all offered
 * before any BULK update (an alive announcing a new member, metadata). A
 * join flood fills the queue with thousands of fresh bulk alives; without
 * the classes a refutation competes with them in the "fewest transmits,
 * newest first" order, is buried under later joins, and the suspicion it
 * answers expires first (sim loss-10, 1,000 nodes: 26-38 false positives).
 * An entry's class follows its latest push (a metadata-only push keeps the
 * class of the alive it refreshes).
 *
 * Bounded: at most `max` entries; pushing into a full queue drops the bulk
 * entry sent most often (the oldest of those; urgent ones only when no bulk
 * entry is left), counted in `dropped`.
 * Cost: push/remove O(1); fill O(B + scanned) with B = 64 buckets; a fill
 * stops after CN_QUEUE_MISSES_MAX updates in a row did not fit, so a full
 * datagram does not cost an encoding attempt per queued update. */
#ifndef CN_CORE_QUEUE_H
#define CN_CORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/idmap.h"

enum {
	CN_QUEUE_TRANSMIT_MAX = 63,  /* ceiling on any retransmit limit */
	CN_QUEUE_BUCKETS = CN_QUEUE_TRANSMIT_MAX + 1, /* per class */
	CN_QUEUE_CLASSES = 2,        /* 0 urgent, 1 bulk: fill order */
	CN_QUEUE_FILL_MAX = 128,     /* entries considered by one fill */
	CN_QUEUE_MSG_MIN = 12,       /* smaller rooms are not worth scanning */
	CN_QUEUE_MISSES_MAX = 4,     /* consecutive "does not fit": datagram full */
};

typedef struct cn_queue_item {
	uint32_t ident;     /* member the update is about */
	uint32_t from;      /* suspect/dead: accuser ident; otherwise unused */
	uint8_t kind;       /* CN_MSG_ALIVE, _SUSPECT, _DEAD, _LEAVE or _META */
	uint8_t transmits;  /* times sent so far */
	uint8_t urgent;     /* 1: offered before every bulk entry */
} cn_queue_item;

typedef struct cn_queue_entry {
	cn_queue_item item;
	uint32_t prev, next; /* bucket list links; UINT32_MAX = none */
} cn_queue_entry;

typedef struct cn_queue {
	cn_queue_entry *e;   /* dense array of count entries */
	uint32_t count, cap, max;
	/* Lists by class and transmits; list = class * CN_QUEUE_BUCKETS + transmits. */
	uint32_t head[CN_QUEUE_CLASSES * CN_QUEUE_BUCKETS], tail[CN_QUEUE_CLASSES * CN_QUEUE_BUCKETS];
	cn_idmap by_ident;   /* ident -> index in e */
	uint64_t dropped;    /* pushed out of a full queue */
	uint64_t superseded; /* replaced by a newer update about the member */
} cn_queue;

/* limit = mult * ceil(log10(n + 1)), clamped to 1 .. CN_QUEUE_TRANSMIT_MAX. */
uint32_t cn_queue_retransmit_limit(uint32_t mult, uint32_t n);

void cn_queue_init(cn_queue *q, uint32_t max);
void cn_queue_free(cn_queue *q);
/* Queue an update about ident (supersede rules above). Returns 0 or
 * CN_ENOMEM (the queue is unchanged). Class by kind: suspect, dead and
 * leave are urgent; alive and meta are bulk. */
int cn_queue_push(cn_queue *q, uint32_t ident, uint8_t kind, uint32_t from);
/* The same with an explicit class (a refuting alive is pushed urgent). */
int cn_queue_push_class(cn_queue *q, uint32_t ident, uint8_t kind, uint32_t from, bool urgent);
/* Forget any update about ident (e.g. the member was reaped). */
void cn_queue_remove(cn_queue *q, uint32_t ident);
bool cn_queue_find(const cn_queue *q, uint32_t ident, cn_queue_item *out);
static inline uint32_t cn_queue_len(const cn_queue *q) { return q->count; }

/* The caller's encoder. Writes the message for `it` if it fits in `room`
 * bytes and returns the bytes written (> 0); returns 0 to skip it this
 * time (does not fit, or the caller already sent it); returns a negative
 * value when the update is stale (the member's state moved on) so the
 * queue drops it. */
typedef int (*cn_queue_emit_fn)(void *ctx, const cn_queue_item *it, size_t room);

/* Offer entries, urgent before bulk, fewest transmits first, while room lasts. Each entry sent
 * has its transmit count raised and is dropped once it reaches limit.
 * Returns the number of entries sent. */
uint32_t cn_queue_fill(cn_queue *q, uint32_t limit, size_t room, cn_queue_emit_fn emit,
		       void *ctx);

#endif
