/* Lifeguard suspicion timers ("LSA" in the Lifeguard paper).
 *
 * A suspected member gets a timeout that starts at max_ms and shrinks
 * towards min_ms as distinct other members independently confirm the
 * suspicion, because k independent accusers make a false positive
 * unlikely, while a lone (possibly slow) accuser gives the member a long
 * window to refute:
 *
 *     timeout(C) = max(min, max - (max - min) * log(C + 1) / log(K + 1))
 *
 * C = distinct confirmations beyond the first accuser (capped at K),
 * K = confirmations expected (the node uses min(indirect_checks, N - 2)).
 * K < 1 gives min at once: in a tiny cluster nobody else can confirm.
 *
 *     min = suspicion_mult * max(1, log10(max(N, 1))) * probe_interval
 *     max = suspicion_max_mult * min
 *
 * The pure formulas come first; cn_suspicion is the thin per-suspect
 * object; cn_suspicion_table holds the suspects of one node (and only the
 * suspects: a healthy cluster pays nothing) with O(1) lookup by member
 * ident and a min-heap on the deadline so the node's next deadline is O(1). */
#ifndef CN_CORE_SUSPICION_H
#define CN_CORE_SUSPICION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/idmap.h"

enum { CN_SUSPICION_CONFIRM_MAX = 8 }; /* K is clamped to this */

/* Pure formulas. n is the estimated cluster size (alive + suspect, self
 * included). */
uint64_t cn_suspicion_min_ms(uint32_t mult, uint32_t n, uint32_t probe_interval_ms);
uint64_t cn_suspicion_timeout_ms(uint32_t confirmations, uint32_t k, uint64_t min_ms,
				 uint64_t max_ms);

typedef struct cn_suspicion {
	uint32_t ident;        /* suspected member */
	uint32_t accuser;      /* first accuser: never counts as a confirmation */
	uint64_t start_ms;
	uint64_t min_ms, max_ms;
	uint64_t deadline_ms;  /* start_ms + timeout(confirmations) */
	uint8_t k;             /* expected confirmations, <= CN_SUSPICION_CONFIRM_MAX */
	uint8_t confirmations; /* distinct confirmers so far, <= k */
	uint32_t confirmers[CN_SUSPICION_CONFIRM_MAX];
} cn_suspicion;

/* Fill s for a new suspicion (k clamped to CN_SUSPICION_CONFIRM_MAX). */
void cn_suspicion_start(cn_suspicion *s, uint32_t ident, uint32_t accuser, uint32_t k,
			uint64_t min_ms, uint64_t max_ms, uint64_t now_ms);
/* Count a confirmation from `from`; true when it was new (the accuser,
 * repeats and any beyond k are ignored) and the deadline moved. */
bool cn_suspicion_confirm(cn_suspicion *s, uint32_t from);

/* The table stores a suspect in 44 + 4 * k_max bytes rounded up to 8 (56
 * with the default indirect_checks of 3; a cn_suspicion is 80): when a
 * partition makes every node suspect half of a 10,000-node fleet, these
 * entries are most of the memory (5 * 10^7 of them). */
typedef struct cn_suspicion_table {
	uint8_t *heap;      /* min-heap on deadline_ms, entries of esz bytes */
	uint32_t count, cap;
	uint32_t esz;       /* bytes per entry */
	uint8_t k_max;      /* every entry's k is <= this */
	cn_idmap pos;       /* ident -> index in heap */
} cn_suspicion_table;

/* k_max: the largest k any suspicion added will have (clamped to
 * CN_SUSPICION_CONFIRM_MAX); confirmers beyond it are never stored. */
void cn_suspicion_table_init(cn_suspicion_table *t, uint32_t k_max);
void cn_suspicion_table_free(cn_suspicion_table *t);
/* Add a started suspicion; its ident must not be present and its k must be
 * <= k_max (asserted). Returns 0 or CN_ENOMEM. */
int cn_suspicion_table_add(cn_suspicion_table *t, const cn_suspicion *s);
/* true when ident is suspected, with a copy of its suspicion in *out
 * (out may be NULL). */
bool cn_suspicion_table_find(const cn_suspicion_table *t, uint32_t ident, cn_suspicion *out);
/* Confirm through the table (keeps the heap ordered). Returns
 * cn_suspicion_confirm's result; false when ident is not suspected. */
bool cn_suspicion_table_confirm(cn_suspicion_table *t, uint32_t ident, uint32_t from);
/* Remove ident's timer; true when it was present. */
bool cn_suspicion_table_remove(cn_suspicion_table *t, uint32_t ident);
/* Earliest deadline, or UINT64_MAX when nobody is suspected. */
uint64_t cn_suspicion_table_next_ms(const cn_suspicion_table *t);
/* Pop one suspicion whose deadline is <= now_ms into *out; false if none. */
bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out);

#endif
