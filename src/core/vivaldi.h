/* Vivaldi network coordinates (Dabek et al., SIGCOMM 2004) with the
 * refinements of Serf's coordinate package (height vector, adjustment
 * term, gravity, per-peer latency filter).
 *
 * Each node owns one cn_vivaldi. Coordinates are in seconds (like Serf) so
 * that cn_coord on the wire is unit-compatible with Serf's; the estimated
 * round trip between two coordinates is distance(a, b) * 1000 ms.
 *
 * Tunables (Serf's defaults, chosen there from the Dabek et al. paper and
 * simulations on the King dataset):
 *   CN_COORD_DIM = 8 dimensions          enough to embed Internet latencies
 *   error_max    = 1.5                   cap on the relative error estimate
 *   ce = 0.25, cc = 0.25                 error and coordinate step weights
 *   height_min   = 10 us                 floor on the access-link "height"
 *   adjustment window = 20 samples       non-Euclidean correction term
 *   gravity_rho  = 150 s                 gentle pull towards the origin so
 *                                        the whole system does not drift
 *   latency filter = median of 3 per peer (small direct-mapped cache: the
 *                                        member table has no room for it)
 *
 * Deterministic: where Serf draws a random unit vector (two coordinates
 * coincide), this draws from the cn_rng seeded at init. Samples and peer
 * coordinates are validated (finite, bounded) because they come off the
 * wire; an invalid one is refused with CN_EINVAL and changes nothing. */
#ifndef CN_CORE_VIVALDI_H
#define CN_CORE_VIVALDI_H

#include <stdbool.h>
#include <stdint.h>

#include "util/rng.h"
#include "wire/msg.h"

enum {
	CN_VIVALDI_ADJ_WINDOW = 20,
	CN_VIVALDI_FILTER_SLOTS = 16, /* peers whose recent samples we keep */
	CN_VIVALDI_FILTER_SAMPLES = 3,
};

typedef struct cn_vivaldi_filter {
	uint32_t key1;  /* peer key + 1; 0 = empty */
	uint8_t n, next;
	double rtt_s[CN_VIVALDI_FILTER_SAMPLES];
} cn_vivaldi_filter;

typedef struct cn_vivaldi {
	double vec[CN_COORD_DIM];
	double height, error, adjustment; /* seconds; error is relative */
	double adj_samples[CN_VIVALDI_ADJ_WINDOW];
	uint32_t adj_index;
	uint64_t updates;
	cn_vivaldi_filter filter[CN_VIVALDI_FILTER_SLOTS];
	cn_rng rng;
} cn_vivaldi;

void cn_vivaldi_init(cn_vivaldi *v, uint64_t seed);
/* Our coordinate as it travels on acks. */
void cn_vivaldi_get(const cn_vivaldi *v, cn_coord *out);
/* True when every field is finite and within sane bounds. */
bool cn_coord_valid(const cn_coord *c);
/* Feed one round-trip sample to the peer `peer_key` (any stable id, used
 * for the latency filter) whose coordinate is *peer. Returns 0 or
 * CN_EINVAL (bad sample or coordinate: ignored). */
int cn_vivaldi_update(cn_vivaldi *v, uint32_t peer_key, const cn_coord *peer, double rtt_ms);
/* Estimated round trip between two coordinates, in milliseconds. */
double cn_coord_rtt_ms(const cn_coord *a, const cn_coord *b);

#endif
