/* sim_heap: the simulator's event queue, a binary min-heap on virtual time.
 *
 * Ties are broken by a sequence number given at push, so two events due at
 * the same microsecond run in the order they were scheduled: the order is
 * a pure function of the inputs, which is what makes a seed replay exactly.
 *
 * An event owns its payload (data, len): whoever pops it frees it (or hands
 * it on). Bounded: at most SIM_HEAP_MAX events; a push beyond it returns
 * CN_EFULL and the caller treats the run as failed (it would mean a runaway
 * producer, not a workload). */
#ifndef SIM_HEAP_H
#define SIM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SIM_HEAP_MAX = 1u << 26 };

typedef struct sim_ev {
	uint64_t at_us;      /* virtual time, microseconds */
	uint64_t seq;        /* tie-break: push order */
	uint8_t kind;        /* enum sim_ev_kind (world.c) */
	uint8_t flags;
	uint16_t spare;
	uint32_t node;       /* node the event is for */
	uint32_t from;       /* sender / requester node */
	uint32_t life;       /* life of node (or requester) when scheduled */
	uint32_t arg;        /* stream id, action index, ... */
	uint32_t len;
	uint8_t *data;       /* owned payload or NULL */
} sim_ev;

typedef struct sim_heap {
	sim_ev *ev;
	size_t count, cap;
	uint64_t next_seq;
} sim_heap;

void sim_heap_init(sim_heap *h);
/* Frees the array; payloads still queued are freed with free(). */
void sim_heap_free(sim_heap *h);
/* Copies *ev, assigning its seq. Returns 0, CN_EFULL or CN_ENOMEM. */
int sim_heap_push(sim_heap *h, sim_ev *ev);
/* Earliest event into *out; false when empty. */
bool sim_heap_pop(sim_heap *h, sim_ev *out);
static inline const sim_ev *sim_heap_peek(const sim_heap *h) { return h->count ? &h->ev[0] : NULL; }

#endif
