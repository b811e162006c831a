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
 * LAST CALLS (Lifeguard's buddy system, made certain): the suspect can
 * only refute a suspicion it hears of, and the holder can only drop it on
 * hearing the refutation. Both travel by gossip, and gossip has a tail:
 * with retransmit limit L and datagram loss p a member misses a given
 * update with probability about e^-(L(1-p)) (L = 12 at N = 999, p = 0.1:
 * 2e-5). A member that missed the refutation of a suspicion it holds
 * would wait out the whole timeout and declare a live member failed
 * (sim loss-10, 1,000 nodes: 7 false positives in 180 s, each one a
 * single holder that took the suspicion just as the refutation went out
 * and never heard the latter). The buddy system (ping the suspect with
 * the accusation piggybacked) would fix it, but it rides on the holder's
 * own probes, which reach a given member once per N probe periods. So a
 * timer may arm `calls` last calls spaced `gap_ms` apart, the last one
 * gap_ms before the deadline: the holder tells the suspect directly, and
 * a live suspect answers with its alive (refuting if it must), which
 * clears the suspicion here. A dead suspect costs `calls` datagrams per
 * holder and no time: the deadline does not move. The node skips
 * the calls while it suspects more than an eighth of its view (and more
 * than 8 members) at once
 * (node.c last_call): that is a partition, or trouble of its own, not a
 * missed refutation, and each node of a 10,000-node fleet split in halves
 * would otherwise send 15,000 calls to the side it cannot reach.
 * Known gap: a confirmation that pulls the deadline to or before now
 * fires the calls still owed and the verdict in the same instant, so
 * they cannot be answered (sim/tests/stale-suspicion.yaml, seed 6).
 * Making the verdict wait a gap after the last call fixed that case but
 * made sim slow-nodes at 48 nodes worse (reverted, efbb6b1).
 *
 * The pure formulas come first; cn_suspicion is the thin per-suspect
 * object; cn_suspicion_table holds the suspects of one node (and only the
 * suspects: a healthy cluster pays nothing) with O(1) lookup by member
 * ident and a min-heap on the next event (last call or deadline), so the
 * node's next deadline is O(1). */
#ifndef CN_CORE_SUSPICION_H
#define CN_CORE_SUSPICION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/idmap.h"

enum {
	CN_SUSPICION_CONFIRM_MAX = 8, /* K is clamped to this */
	/* Last calls the node arms (lifeguard on), a probe interval apart:
	 * each reaches a live suspect and brings its alive back with
	 * probability (1-p)^2, so 3 leave 0.19^3 < 1% of the rare misses
	 * above at p = 0.1. */
	CN_SUSPICION_LAST_CALLS = 3,
};

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
	/* Last calls (above): next one at call_ms, always < deadline_ms, or
	 * UINT64_MAX when none is left. */
	uint64_t call_ms, last_call_ms;
	uint32_t call_gap_ms;
	uint8_t calls_left;
} cn_suspicion;

/* Fill s for a new suspicion (k clamped to CN_SUSPICION_CONFIRM_MAX). */
void cn_suspicion_start(cn_suspicion *s, uint32_t ident, uint32_t accuser, uint32_t k,
			uint64_t min_ms, uint64_t max_ms, uint64_t now_ms);
/* Arm `calls` last calls gap_ms apart before the deadline (gap_ms >= 1;
 * they follow the deadline when confirmations move it; a call that would
 * fall at or after the deadline, or before the start, is not made). */
void cn_suspicion_arm_calls(cn_suspicion *s, uint8_t calls, uint32_t gap_ms);
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
/* Earliest deadline or last call, or UINT64_MAX when nobody is suspected. */
uint64_t cn_suspicion_table_next_ms(const cn_suspicion_table *t);
/* Take one last call due at now_ms: *out is a copy of the timer (kept,
 * with its next call scheduled); false if none is due. Take every due
 * call before popping expired timers (a due call can hide an expired
 * timer behind it in the heap). */
bool cn_suspicion_table_take_call(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out);
/* Pop one suspicion whose deadline is <= now_ms into *out; false if none
 * (or if a call is due first: see cn_suspicion_table_take_call). */
bool cn_suspicion_table_pop_expired(cn_suspicion_table *t, uint64_t now_ms, cn_suspicion *out);

#endif
