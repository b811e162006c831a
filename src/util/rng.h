/* Deterministic pseudo-random generator (xoshiro256**, seeded by splitmix64).
 *
 * The core never draws randomness from the OS: every node gets a generator
 * seeded by its caller, so a simulation with the same seed replays exactly.
 * Not for cryptography. */
#ifndef CN_UTIL_RNG_H
#define CN_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct cn_rng {
	uint64_t s[4];
} cn_rng;

void cn_rng_seed(cn_rng *rng, uint64_t seed);
uint64_t cn_rng_next(cn_rng *rng);
/* Uniform in [0, bound); bound > 0. Unbiased (rejection sampling). */
uint64_t cn_rng_below(cn_rng *rng, uint64_t bound);
/* Uniform double in [0, 1). */
double cn_rng_unit(cn_rng *rng);
/* Fisher-Yates shuffle of n elements of size elem_size (elem_size <= 64). */
void cn_rng_shuffle(cn_rng *rng, void *base, size_t n, size_t elem_size);

/* splitmix64 step, also useful as a cheap 64-bit mixer/hash. */
uint64_t cn_mix64(uint64_t x);

#endif
