#include "util/rng.h"

#include <assert.h>
#include <string.h>

uint64_t cn_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void cn_rng_seed(cn_rng *rng, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		seed = cn_mix64(seed);
		rng->s[i] = seed;
	}
	/* xoshiro must not start from the all-zero state. */
	if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
		rng->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t cn_rng_next(cn_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t cn_rng_below(cn_rng *rng, uint64_t bound)
{
	assert(bound > 0);
	/* Reject the top sliver so every residue is equally likely. */
	uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
	uint64_t x;
	do {
		x = cn_rng_next(rng);
	} while (x >= limit);
	return x % bound;
}

double cn_rng_unit(cn_rng *rng)
{
	return (double)(cn_rng_next(rng) >> 11) * 0x1.0p-53;
}

void cn_rng_shuffle(cn_rng *rng, void *base, size_t n, size_t elem_size)
{
	unsigned char tmp[64];
	unsigned char *b = base;
	assert(elem_size <= sizeof tmp);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)cn_rng_below(rng, i);
		if (j == i - 1)
			continue;
		memcpy(tmp, b + (i - 1) * elem_size, elem_size);
		memcpy(b + (i - 1) * elem_size, b + j * elem_size, elem_size);
		memcpy(b + j * elem_size, tmp, elem_size);
	}
}
