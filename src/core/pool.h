/* cn_pool: interned identities, endpoints, metadata and coordinates.
 *
 * Why: the simulator runs 10,000 nodes in one process, each with a view of
 * up to 10,000 members (10^8 view entries). A view entry must therefore be
 * a few dozen bytes (core/members.h), so everything large or repeated
 * lives here once, shared by all nodes of the process, and a view holds
 * 32-bit references:
 *
 *   identity  name -> ident (small integer, dense from 0), append-only:
 *             idents stay valid for the pool's lifetime, so every node can
 *             index by them. Also the last Vivaldi coordinate heard from
 *             that member (a member's coordinate is its own; whoever heard
 *             it last, it is the same value, so one copy is enough).
 *   endpoint  (address, vmin, vmax), content-addressed and refcounted.
 *             Kept apart from the identity, not inside it, because two
 *             views may disagree about a member's address while a rejoin
 *             at a new address spreads (each view holds its own ref).
 *   meta      cn_meta, canonicalised (unused bytes zeroed) and
 *             content-addressed, so identical metadata is stored once;
 *             refcounted so that frequently changing health values do not
 *             accumulate.
 *
 * References are uint32_t, 0 = none. Pointers returned by the getters stay
 * valid until the next call that interns into the same table (arrays may
 * move) — copy out if you need longer. Not thread-safe: one thread owns
 * all the nodes that share a pool. */
#ifndef CN_CORE_POOL_H
#define CN_CORE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"
#include "wire/msg.h"

/* Same typedef as core/node.h (C11 allows the repeat). */
typedef struct cn_pool cn_pool;

enum { CN_POOL_IDENTS_MAX = 1u << 24 }; /* distinct names per pool */

typedef struct cn_pool_endpoint {
	cn_addr addr;
	uint8_t vmin, vmax;
} cn_pool_endpoint;

typedef struct cn_pool_stats {
	uint32_t idents;      /* names interned (never shrinks) */
	uint32_t endpoints;   /* live endpoint entries */
	uint32_t metas;       /* live metadata entries */
	uint64_t meta_hits;   /* interns answered by an existing entry */
	size_t bytes;         /* approximate heap use */
} cn_pool_stats;

/* Returns 0 or CN_ENOMEM. Free with cn_pool_free after every node using it. */
int cn_pool_new(cn_pool **out);
void cn_pool_free(cn_pool *p);

/* Names: 1..CN_NAME_MAX bytes, none below 0x20. */
bool cn_pool_name_valid(const char *name);
/* Find or add. Returns 0, CN_EINVAL (bad name), CN_EFULL, CN_ENOMEM. */
int cn_pool_intern_name(cn_pool *p, const char *name, uint32_t *ident);
/* Find only. Returns 0 or CN_ENOENT. */
int cn_pool_find_name(const cn_pool *p, const char *name, uint32_t *ident);
/* The name of a valid ident (asserted). */
const char *cn_pool_name(const cn_pool *p, uint32_t ident);
uint32_t cn_pool_ident_count(const cn_pool *p);

/* Last coordinate heard from ident. */
void cn_pool_set_coord(cn_pool *p, uint32_t ident, const cn_coord *c);
bool cn_pool_get_coord(const cn_pool *p, uint32_t ident, cn_coord *out);

/* Endpoints: acquire returns a ref holding one reference (0, CN_ENOMEM). */
int cn_pool_endpoint_acquire(cn_pool *p, const cn_addr *addr, uint8_t vmin, uint8_t vmax,
			     uint32_t *ref);
void cn_pool_endpoint_retain(cn_pool *p, uint32_t ref);
void cn_pool_endpoint_release(cn_pool *p, uint32_t ref);
const cn_pool_endpoint *cn_pool_endpoint_get(const cn_pool *p, uint32_t ref);

/* Metadata: same contract as endpoints. */
int cn_pool_meta_acquire(cn_pool *p, const cn_meta *meta, uint32_t *ref);
void cn_pool_meta_retain(cn_pool *p, uint32_t ref);
void cn_pool_meta_release(cn_pool *p, uint32_t ref);
const cn_meta *cn_pool_meta_get(const cn_pool *p, uint32_t ref);
/* Canonical copy: every unused byte zero, counts clamped to the limits. */
void cn_meta_canon(const cn_meta *in, cn_meta *out);

void cn_pool_stats_get(const cn_pool *p, cn_pool_stats *out);

#endif
