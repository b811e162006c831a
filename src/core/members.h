/* The member table of one node: its view of every member, self included.
 *
 * Size is the point (see core/pool.h): a record is 32 bytes
 * (_Static_assert below) and the only index is slot_of[ident], 4 bytes per
 * pool ident, so a view entry costs ~36 bytes all-in; the 10,000-node
 * simulation (10^8 entries) fits in ~3.4 GiB. There is no separate probe
 * list: the dense record array itself is the probe order. The node shuffles
 * it once per probe pass (O(N) per pass, i.e. O(1) per probe) and inserts
 * new members at a random position, as randomized round-robin probing
 * wants (SWIM section 4.3).
 *
 * Everything large lives in the pool behind 32-bit refs (endpoint = address
 * + versions, metadata); suspicion timers live in core/suspicion.h and
 * exist only for suspects. The table neither acquires nor releases pool
 * refs: the node does, around add/remove.
 *
 * Invariants (checked by cn_members_check):
 *   M1 slot_of[recs[i].ident] == i + 1 for every i < count
 *   M2 count <= max
 *   M3 n_state[s] == number of records in state s
 * Lookup O(1); add O(1) amortised; remove O(1) (swap with the last). */
#ifndef CN_CORE_MEMBERS_H
#define CN_CORE_MEMBERS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/rng.h"
#include "wire/proto.h"

enum cn_member_flag {
	CN_MF_INCOMPAT = 1 << 0, /* no common protocol version: recorded, never probed */
};

typedef struct cn_member_rec {
	uint64_t incarnation;
	uint32_t ident;          /* pool identity */
	uint32_t meta;           /* pool metadata ref (0 = none) */
	uint32_t endpoint;       /* pool endpoint ref: address, vmin, vmax */
	uint32_t meta_version;   /* saturates at UINT32_MAX (see node.c) */
	uint32_t state_change_s; /* seconds since the table's epoch */
	uint8_t state;           /* enum cn_member_state_code */
	uint8_t flags;           /* enum cn_member_flag */
	uint16_t spare;
} cn_member_rec;

_Static_assert(sizeof(cn_member_rec) == 32, "member record must stay 32 bytes");

typedef struct cn_members {
	cn_member_rec *recs;
	uint32_t count, cap, max;
	uint32_t *slot_of;       /* ident -> slot + 1; 0 = not a member */
	uint32_t slot_of_cap;
	uint32_t n_state[CN_STATE_MAX_ + 1];
	uint64_t epoch_ms;       /* time base of state_change_s */
} cn_members;

void cn_members_init(cn_members *m, uint32_t max, uint64_t epoch_ms);
void cn_members_free(cn_members *m);
/* Record of ident or NULL. Valid until the next add/remove/swap. */
cn_member_rec *cn_members_find(const cn_members *m, uint32_t ident);
static inline uint32_t cn_members_slot(const cn_members *m, const cn_member_rec *r)
{
	return (uint32_t)(r - m->recs);
}
/* Append *rec (its ident must be absent). Returns 0, CN_EFULL (max
 * reached) or CN_ENOMEM. */
int cn_members_add(cn_members *m, const cn_member_rec *rec);
/* Exchange slots i and j (probe order). */
void cn_members_swap(cn_members *m, uint32_t i, uint32_t j);
/* Remove slot i, moving the last record into it; *out gets the removed one. */
void cn_members_remove(cn_members *m, uint32_t i, cn_member_rec *out);
/* Change a record's state and stamp the time of change. */
void cn_members_set_state(cn_members *m, cn_member_rec *r, uint8_t state, uint64_t now_ms);
/* Stamp of the last state change, in the caller's milliseconds. */
uint64_t cn_members_changed_ms(const cn_members *m, const cn_member_rec *r);
/* Fisher-Yates over the records (keeps slot_of right). */
void cn_members_shuffle(cn_members *m, cn_rng *rng);
/* Give back slack capacity (growth leaves up to a third unused; at 10^8
 * entries that is a gigabyte). O(N): call once per probe pass. */
void cn_members_compact(cn_members *m);
/* Verify M1..M3 (O(N); for debug builds and tests). */
bool cn_members_check(const cn_members *m);

#endif
