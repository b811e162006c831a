/* The node's outbox: a bounded FIFO of outputs (datagrams, stream
 * requests, events) that the caller drains with cn_node_next_output().
 *
 * Ownership: every datagram or stream body is a heap copy owned by the
 * outbox. Popping hands the caller a pointer that stays valid until the
 * outbox is next touched (cn_outbox_release at the start of every node
 * entry point, or the next pop), matching node.h's promise "valid until
 * the next call into the node". Nothing is kept once drained, so an idle
 * node holds only the ring itself.
 *
 * Bounded: at most `max` outputs; a push into a full outbox is dropped and
 * counted (a caller that never drains must not grow the node forever). */
#ifndef CN_CORE_OUTBOX_H
#define CN_CORE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/node.h"

typedef struct cn_outbox {
	cn_out *q;          /* ring of cap entries */
	uint32_t head, count, cap, max;
	uint8_t *popped;    /* body of the last popped output */
	uint64_t dropped;
} cn_outbox;

void cn_outbox_init(cn_outbox *ob, uint32_t max);
void cn_outbox_free(cn_outbox *ob);
/* Free the body handed out by the last pop. */
void cn_outbox_release(cn_outbox *ob);
/* Queue a datagram or stream request; the body is copied. Returns 0,
 * CN_EFULL (dropped, counted) or CN_ENOMEM. */
int cn_outbox_push_copy(cn_outbox *ob, uint8_t kind, const cn_addr *to, uint32_t stream_id,
			const uint8_t *data, size_t len);
/* Same, taking ownership of a malloc'd body (freed on failure too). */
int cn_outbox_push_owned(cn_outbox *ob, uint8_t kind, const cn_addr *to, uint32_t stream_id,
			 uint8_t *data, size_t len);
int cn_outbox_push_event(cn_outbox *ob, const cn_event *ev);
/* 0 with *out filled, or CN_EAGAIN. */
int cn_outbox_pop(cn_outbox *ob, cn_out *out);
static inline uint32_t cn_outbox_len(const cn_outbox *ob) { return ob->count; }

#endif
