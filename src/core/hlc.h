/* Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
 *
 * A timestamp is one uint64_t: the high 48 bits are physical milliseconds
 * (any epoch the caller chooses, the agent uses Unix time; 2^48 ms is 8,900
 * years), the low 16 bits a logical counter that orders events inside one
 * millisecond. Packing it in 64 bits lets the timestamp travel as the
 * policy announcement's plain integer version (wire/msg.h) and compare with
 * one integer comparison. Ties between equal timestamps from different
 * nodes are broken by the node name (cn_hlc_cmp), so (ts, node) is a total
 * order.
 *
 * Properties (tests/test_hlc.c checks each):
 *   - now() is strictly increasing on one clock, even if wall time goes
 *     backwards;
 *   - after update(remote), every later now() is greater than remote
 *     (causality: a write made after seeing another orders after it);
 *   - the physical part never runs more than max_drift_ms ahead of the
 *     wall time given, except by the logical overflow rule below: a remote
 *     timestamp further ahead is refused with CN_ERANGE and counted, so one
 *     node with a clock set to 2099 cannot win every write forever.
 *
 * Logical overflow: 65,536 events in one millisecond are more than a policy
 * store sees; the 65,537th borrows the next millisecond (physical + 1,
 * logical 0) instead of failing, which keeps now() infallible.
 *
 * Sans-I/O: wall time is a parameter; nothing here reads a clock. */
#ifndef CN_CORE_HLC_H
#define CN_CORE_HLC_H

#include <stdbool.h>
#include <stdint.h>

enum {
	CN_HLC_LOGICAL_BITS = 16,
	CN_HLC_DRIFT_DEFAULT_MS = 60000,
};
#define CN_HLC_LOGICAL_MASK ((UINT64_C(1) << CN_HLC_LOGICAL_BITS) - 1)
#define CN_HLC_PHYSICAL_MAX ((UINT64_C(1) << (64 - CN_HLC_LOGICAL_BITS)) - 1)

typedef struct cn_hlc {
	uint64_t last;            /* highest timestamp issued or seen */
	uint64_t max_drift_ms;    /* refuse remote timestamps further ahead */
	uint64_t refused_future;  /* count of refused remote timestamps */
} cn_hlc;

static inline uint64_t cn_hlc_physical(uint64_t ts) { return ts >> CN_HLC_LOGICAL_BITS; }
static inline uint64_t cn_hlc_logical(uint64_t ts) { return ts & CN_HLC_LOGICAL_MASK; }
static inline uint64_t cn_hlc_make(uint64_t physical_ms, uint64_t logical)
{
	return (physical_ms << CN_HLC_LOGICAL_BITS) | (logical & CN_HLC_LOGICAL_MASK);
}

/* A clock that has issued nothing. max_drift_ms 0 = CN_HLC_DRIFT_DEFAULT_MS. */
void cn_hlc_init(cn_hlc *h, uint64_t max_drift_ms);

/* Never issue at or below ts again (restart: the caller restores the last
 * timestamp it persisted). Never lowers the clock. */
void cn_hlc_restore(cn_hlc *h, uint64_t ts);

/* Timestamp for a local event at wall time wall_ms.
 * @return 0, or CN_ERANGE if wall_ms > CN_HLC_PHYSICAL_MAX (*out untouched). */
int cn_hlc_now(cn_hlc *h, uint64_t wall_ms, uint64_t *out);

/* Is remote acceptable at wall time wall_ms (not more than max_drift_ms
 * ahead)? Pure; does not count. @return 0 or CN_ERANGE. */
int cn_hlc_check(const cn_hlc *h, uint64_t remote, uint64_t wall_ms);

/* Receive event: merge a remote timestamp into the clock.
 * @param[out] out  the receive event's own timestamp (> remote, > last);
 *                  may be NULL.
 * @return 0, or CN_ERANGE (clock unchanged, refused_future incremented) if
 *         remote's physical part is more than max_drift_ms ahead of wall_ms
 *         or wall_ms itself is out of range. */
int cn_hlc_update(cn_hlc *h, uint64_t remote, uint64_t wall_ms, uint64_t *out);

/* Total order on (timestamp, node): -1, 0 or 1. Node names compare as
 * bytes (memcmp order, shorter prefix first). */
int cn_hlc_cmp(uint64_t a, const char *node_a, uint64_t b, const char *node_b);

#endif
