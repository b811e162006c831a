/* Placement (placement.h): eligibility, weighted rendezvous hashing and
 * bounded loads as a deferred-acceptance matching.
 *
 * Steps of cn_place, each a function below:
 *   canon_members / canon_jobs   sort inputs, hash names, base weights
 *   elig_for                     eligible members per distinct filter
 *                                (jobs sharing constraints and resources
 *                                share one list; cached by signature)
 *   build_list                   the job's preference order, a prefix of
 *                                min(E, 2*want + 8) members (top_scan,
 *                                spread_scan) or all of it (full_list)
 *   match_bounded / match_free   replicas to members
 *   assemble                     the result arrays
 *
 * Cost: one pass over the eligible members of each job, hashing each one
 * (one multiply-xorshift mix) and comparing with a threshold; only members
 * whose hash clears the threshold get an exact score (a table log2 and two
 * 128-bit products). For 10,000 jobs over 10,000 members that is 10^8
 * hashes, the bulk of the time; see docs/placement.md for figures.
 *
 * Invariants:
 *   1. A replica is only ever placed on a member of its job's eligible set.
 *   2. A job holds at most one replica per member.
 *   3. In bounded mode, load[m] <= cap[m] except for replicas counted in
 *      overflow.
 *   4. Every decision compares integers; the prefilter only skips members
 *      whose exact score provably cannot enter the current top list. */
#include "core/placement.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

__extension__ typedef unsigned __int128 u128;

enum {
	LOG_BITS = 12,                  /* table index bits */
	LOG_SIZE = (1 << LOG_BITS) + 1, /* entries: log2(1 + i/4096), i = 0..4096 */
	NEAR_MULT_MAX = 4,
	ENERGY_MULT_MAX = 8,
	LIST_EXTRA = 8,                 /* spare list entries beyond 2 * want */
	NEAR_CLOSE_Q = 2,               /* <= 10 ms: x3 */
	NEAR_MID_Q = 6,                 /* <= 30 ms: x2 */
};
static_assert(CN_PLACE_MEMBERS_MAX <= 1 << 24 && CN_PLACE_JOBS_MAX <= 1 << 24,
	      "heap keys hold 24-bit ranks and job indices");
static_assert(CN_JOB_PRIORITY_MAX < 1 << 16, "heap keys hold 16-bit priorities");
static_assert((uint64_t)CN_PLACE_WEIGHT_MAX * NEAR_MULT_MAX * ENERGY_MULT_MAX < 1u << 24,
	      "weight * log fits 128 bits with room");

struct cn_placer {
	uint64_t log2_q48[LOG_SIZE]; /* log2(1 + i/4096) in Q48 */
};

/* ---- deterministic arithmetic ------------------------------------------ */

static inline uint64_t fmix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_str(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return fmix64(h);
}

/* log2(y) for y in [1, 2] given in Q62, result in Q48; integers only. */
static uint64_t log2_q62(uint64_t y)
{
	uint64_t r = 0;
	if (y >= (1ULL << 63)) {
		r = 1ULL << 48;
		y >>= 1;
	}
	for (int b = 47; b >= 0; b--) {
		y = (uint64_t)(((u128)y * y) >> 62);
		if (y >= (1ULL << 63)) {
			y >>= 1;
			r |= 1ULL << b;
		}
	}
	return r;
}

/* -log2(h / 2^64) in Q48, > 0. Table lookup with linear interpolation:
 * absolute error below 1e-8. */
static inline uint64_t neglog2(const uint64_t *t, uint64_t h)
{
	uint64_t x = h | 1;
	int lz = __builtin_clzll(x);
	uint64_t m = x << lz;
	unsigned i = (unsigned)(m >> (63 - LOG_BITS)) & ((1u << LOG_BITS) - 1);
	uint64_t rem = (m >> (63 - LOG_BITS - 16)) & 0xffff;
	uint64_t lm = t[i] + (((t[i + 1] - t[i]) * rem) >> 16);
	return ((uint64_t)(1 + lz) << 48) - lm;
}

struct cand {
	uint32_t w;   /* job-specific weight */
	uint32_t idx; /* canonical member index */
	uint64_t l;   /* -log2(u), Q48 */
};

/* a scores higher than b: w_a / l_a > w_b / l_b, ties to the lower index. */
static inline bool better(const struct cand *a, const struct cand *b)
{
	u128 x = (u128)a->w * b->l, y = (u128)b->w * a->l;
	if (x != y)
		return x > y;
	return a->idx < b->idx;
}

/* Smallest hash that could still beat t for a member of weight <= wmax.
 * Needs l <= wmax * t.l / t.w, i.e. h >= 2^(64 - that). The 1e-6 slack
 * (in log2 units) covers the table error (1e-8) and floating rounding, so
 * the bound is conservative: it only skips members that cannot qualify. */
static uint64_t hash_floor(uint64_t wmax, const struct cand *t)
{
	double lmax = (double)wmax * ((double)t->l / 281474976710656.0) / (double)t->w + 1e-6;
	if (lmax >= 63.0)
		return 0;
	double v = exp2(64.0 - lmax);
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

/* ---- small tables ---------------------------------------------------------- */

/* 64-bit hash -> chain of entity indices; entities keep their own `next`. */
struct htab {
	uint32_t *head; /* index + 1, 0 = empty */
	size_t mask;
};

static int htab_init(struct htab *t, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap <<= 1;
	t->head = calloc(cap, sizeof *t->head);
	t->mask = cap - 1;
	return t->head ? 0 : CN_ENOMEM;
}

/* ---- working state --------------------------------------------------------- */

struct elig {
	uint64_t sig;
	uint32_t next;         /* chain, index + 1 */
	const cn_jobspec *rep; /* a spec with this filter */
	uint32_t n_base;       /* entries in idx */
	uint32_t n_live, n_known, n_alive, wmax; /* n_alive: not even suspect */
	uint32_t *idx;         /* eligible members of the base, ascending */
	uint64_t *hash;        /* their name hashes */
};

struct nearinfo {
	uint64_t sig;
	uint32_t next;
	const cn_jobspec *rep;
	uint8_t *holder;       /* per member: holds label = value */
	bool has_centroid;
	int64_t c[CN_COORD_DIM], ch;
};

struct zones {
	uint64_t sig;
	uint32_t next;
	const char *label;
	uint32_t n;            /* zone ids 0..n-1; 0 = label absent */
	uint32_t *zone;        /* per member */
};

struct jobw {                  /* per canonical job */
	const cn_place_job *in;
	uint64_t hash;
	uint32_t set, near, zones; /* indices; UINT32_MAX = none */
	uint32_t want, held, next, len;
	bool complete, per_node, queued;
	bool container;        /* spread job: its zone sub-jobs do the placing */
	uint32_t parent;       /* sub-job: the spread job; UINT32_MAX otherwise */
	uint32_t zone, sub;    /* sub-job: zone id and ordinal (zone order) */
	uint32_t *list;        /* preference prefix (pool or own) */
	bool list_owned;
};

struct room {                  /* a member's accelerators not yet taken */
	uint32_t acc[CN_ACCEL_MAX]; /* by the member's accelerator kinds, in its order */
};

struct disp {                  /* a replica taken off a member that is down */
	uint32_t job;          /* top-level */
	uint64_t key;          /* slot key */
};

struct ctx {
	cn_placer *p;
	cn_place_opts o;
	size_t n, nj;
	size_t nj_all;         /* jobs then spread sub-jobs */
	const cn_place_member **m;
	uint64_t *mhash;
	uint32_t *weight;      /* static weight, 0 when not in the base */
	uint8_t *live;         /* may run replicas now */
	uint8_t *base;         /* in the preference base: live, or down (failed,
				* left, excluded suspect) with a stable base */
	bool redirect;         /* some base member is not live: run redirect() */
	uint32_t *cap_live;    /* redirect(): caps from the live weight */
	/* redirect(): the replicas taken off members that are down, as slot
	 * keys (see assemble) by top-level job, and how many overflow
	 * entries were the first pass's */
	struct disp *disp;
	size_t n_disp, n_over_pinned;
	struct room *room;     /* per member: what its replicas leave free */
	uint8_t *known, *low_cost;
	uint8_t *power_k;      /* energy multiplier of the power source: read
				* for every scored pair, so kept here rather
				* than behind two pointers (a cache miss each) */
	struct jobw *j;
	struct elig *sets;
	size_t n_sets;
	struct htab set_tab;
	struct nearinfo *nears;
	size_t n_nears;
	struct htab near_tab;
	struct zones *zs;
	size_t n_zs;
	struct htab zone_tab;
	struct cand *scratch;  /* n entries */
	uint32_t *zcount;      /* per zone id (n + 1 entries): entries in zbuf */
	uint32_t *zsize;       /* per zone id: eligible members (spread_scan) */
	uint32_t *zquota;      /* per zone id: replicas (spread_lists) */
	uint32_t *zslot;       /* per zone id: slice in zbuf */
	uint64_t *zfloor;      /* per zone id: prefilter floor */
	uint32_t *touched;     /* zone ids seen by the current job */
	struct cand *zbuf;     /* per touched zone: top m */
	size_t zbuf_cap;
	uint64_t scored, extensions;
};

/* ---- canonical order ------------------------------------------------------- */

static int cmp_member(const void *a, const void *b)
{
	const cn_place_member *x = *(const cn_place_member *const *)a;
	const cn_place_member *y = *(const cn_place_member *const *)b;
	return strcmp(x->name, y->name);
}

static int cmp_job(const void *a, const void *b)
{
	const cn_place_job *x = *(const cn_place_job *const *)a;
	const cn_place_job *y = *(const cn_place_job *const *)b;
	if (x->spec->priority != y->spec->priority)
		return x->spec->priority > y->spec->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool name_ok(const char *s, size_t max)
{
	if (s == NULL || s[0] == '\0')
		return false;
	return strnlen(s, max + 1) <= max;
}

/* Static capacity weight: one core counts as much as 2 GiB of memory. */
static uint32_t base_weight(const cn_meta *m)
{
	uint64_t w = (uint64_t)m->cpus * 8 + m->mem_mb / 256;
	if (w < 1)
		w = 1;
	return w > CN_PLACE_WEIGHT_MAX ? CN_PLACE_WEIGHT_MAX : (uint32_t)w;
}

/* ---- eligibility ----------------------------------------------------------- */

static const char *member_value(const cn_meta *m, const char *key)
{
	if (strcmp(key, "arch") == 0 && m->arch[0])
		return m->arch;
	if (strcmp(key, "os") == 0 && m->os[0])
		return m->os;
	return cn_meta_get_label(m, key);
}

static uint32_t accel_count(const cn_meta *m, const char *kind)
{
	for (unsigned i = 0; i < m->n_accel && i < CN_ACCEL_MAX; i++)
		if (strcmp(m->accel[i].kind, kind) == 0)
			return m->accel[i].count;
	return 0;
}

static bool constraint_ok(const cn_jobspec *s, const cn_job_constraint *c, const cn_meta *m)
{
	const char *key = cn_jobspec_str(s, c->label);
	if (c->op == CN_JOB_OP_ACCEL)
		return accel_count(m, key) >= 1;
	const char *v = member_value(m, key);
	bool match = false;
	for (unsigned i = 0; v && i < c->n_values && !match; i++)
		match = strcmp(v, cn_jobspec_str(s, c->values[i])) == 0;
	if (c->op == CN_JOB_OP_EQ || c->op == CN_JOB_OP_IN)
		return match;
	return !match; /* != and not in: true when the label is absent */
}

static bool fits(const cn_jobspec *s, const cn_meta *m)
{
	if (s->cpu_millis > (uint64_t)m->cpus * 1000 || s->memory_mb > m->mem_mb)
		return false;
	for (unsigned i = 0; i < s->n_accel; i++)
		if (accel_count(m, cn_jobspec_str(s, s->accel[i].kind)) < s->accel[i].count)
			return false;
	for (unsigned i = 0; i < s->n_constraints; i++)
		if (!constraint_ok(s, &s->constraints[i], m))
			return false;
	return true;
}

static uint64_t mix_in(uint64_t h, uint64_t v)
{
	return fmix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
}

static uint64_t mix_str(uint64_t h, const cn_jobspec *s, cn_jstr r)
{
	return mix_in(h, hash_str(cn_jobspec_str(s, r), r.len));
}

static uint64_t filter_sig(const cn_jobspec *s)
{
	uint64_t h = mix_in(mix_in(1, s->cpu_millis), s->memory_mb);
	for (unsigned i = 0; i < s->n_accel; i++)
		h = mix_in(mix_str(h, s, s->accel[i].kind), s->accel[i].count);
	for (unsigned i = 0; i < s->n_constraints; i++) {
		const cn_job_constraint *c = &s->constraints[i];
		h = mix_str(mix_in(h, c->op), s, c->label);
		for (unsigned k = 0; k < c->n_values; k++)
			h = mix_str(h, s, c->values[k]);
	}
	return h;
}

static bool jstr_eq(const cn_jobspec *a, cn_jstr x, const cn_jobspec *b, cn_jstr y)
{
	return x.len == y.len && memcmp(cn_jobspec_str(a, x), cn_jobspec_str(b, y), x.len) == 0;
}

static bool filter_eq(const cn_jobspec *a, const cn_jobspec *b)
{
	if (a->cpu_millis != b->cpu_millis || a->memory_mb != b->memory_mb ||
	    a->n_accel != b->n_accel || a->n_constraints != b->n_constraints)
		return false;
	for (unsigned i = 0; i < a->n_accel; i++)
		if (a->accel[i].count != b->accel[i].count ||
		    !jstr_eq(a, a->accel[i].kind, b, b->accel[i].kind))
			return false;
	for (unsigned i = 0; i < a->n_constraints; i++) {
		const cn_job_constraint *x = &a->constraints[i], *y = &b->constraints[i];
		if (x->op != y->op || x->n_values != y->n_values || !jstr_eq(a, x->label, b, y->label))
			return false;
		for (unsigned k = 0; k < x->n_values; k++)
			if (!jstr_eq(a, x->values[k], b, y->values[k]))
				return false;
	}
	return true;
}

/* The eligible set for spec s (computed once per distinct filter). */
static int elig_for(struct ctx *c, const cn_jobspec *s, uint32_t *out)
{
	uint64_t sig = filter_sig(s);
	uint32_t *slot = &c->set_tab.head[sig & c->set_tab.mask];
	for (uint32_t i = *slot; i != 0; i = c->sets[i - 1].next) {
		struct elig *e = &c->sets[i - 1];
		if (e->sig == sig && filter_eq(e->rep, s)) {
			*out = i - 1;
			return 0;
		}
	}
	struct elig *e = &c->sets[c->n_sets];
	memset(e, 0, sizeof *e);
	e->sig = sig;
	e->rep = s;
	uint32_t n_base = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (!fits(s, c->m[i]->meta))
			continue;
		e->n_known += c->known[i];
		e->n_alive += c->m[i]->state == CN_STATE_ALIVE;
		e->n_live += c->live[i];
		if (c->base[i])
			c->scratch[n_base++].idx = (uint32_t)i;
	}
	e->idx = malloc((n_base ? n_base : 1) * sizeof *e->idx);
	e->hash = malloc((n_base ? n_base : 1) * sizeof *e->hash);
	if (e->idx == NULL || e->hash == NULL) {
		free(e->idx);
		free(e->hash);
		return CN_ENOMEM;
	}
	for (uint32_t k = 0; k < n_base; k++) {
		uint32_t i = c->scratch[k].idx;
		e->idx[k] = i;
		e->hash[k] = c->mhash[i];
		if (c->weight[i] > e->wmax)
			e->wmax = c->weight[i];
	}
	e->n_base = n_base;
	e->next = *slot;
	*out = (uint32_t)c->n_sets++;
	*slot = *out + 1;
	return 0;
}

/* ---- preferences: near, energy, spread -------------------------------------- */

static int near_for(struct ctx *c, const cn_jobspec *s, uint32_t *out)
{
	uint64_t sig = mix_str(mix_str(7, s, s->near_label), s, s->near_value);
	uint32_t *slot = &c->near_tab.head[sig & c->near_tab.mask];
	for (uint32_t i = *slot; i != 0; i = c->nears[i - 1].next) {
		struct nearinfo *ni = &c->nears[i - 1];
		if (ni->sig == sig && jstr_eq(ni->rep, ni->rep->near_label, s, s->near_label) &&
		    jstr_eq(ni->rep, ni->rep->near_value, s, s->near_value)) {
			*out = i - 1;
			return 0;
		}
	}
	struct nearinfo *ni = &c->nears[c->n_nears];
	memset(ni, 0, sizeof *ni);
	ni->sig = sig;
	ni->rep = s;
	ni->holder = calloc(c->n ? c->n : 1, 1);
	if (ni->holder == NULL)
		return CN_ENOMEM;
	const char *key = cn_jobspec_str(s, s->near_label), *val = cn_jobspec_str(s, s->near_value);
	int64_t sum[CN_COORD_DIM + 1] = {0}, k = 0;
	for (size_t i = 0; i < c->n; i++) {
		const char *v = member_value(c->m[i]->meta, key);
		if (v == NULL || strcmp(v, val) != 0)
			continue;
		ni->holder[i] = 1;
		if (!c->base[i] || !c->m[i]->has_coord)
			continue;
		for (int d = 0; d < CN_COORD_DIM; d++)
			sum[d] += c->m[i]->coord.vec[d];
		sum[CN_COORD_DIM] += c->m[i]->coord.height;
		k++;
	}
	if (k > 0) {
		ni->has_centroid = true;
		for (int d = 0; d < CN_COORD_DIM; d++)
			ni->c[d] = sum[d] / k;
		ni->ch = sum[CN_COORD_DIM] / k;
	}
	ni->next = *slot;
	*out = (uint32_t)c->n_nears++;
	*slot = *out + 1;
	return 0;
}

/* Estimated round trip from member coordinate to the centroid is at most
 * q quanta: sqrt(S) + heights <= q, in integers. */
static bool within(const struct nearinfo *ni, const cn_place_coord *pc, int64_t q)
{
	int64_t room = q - pc->height - ni->ch;
	if (room < 0)
		return false;
	int64_t s = 0;
	for (int d = 0; d < CN_COORD_DIM; d++) {
		int64_t x = (int64_t)pc->vec[d] - ni->c[d];
		s += x * x;
		if (s > room * room)
			return false;
	}
	return true;
}

static uint32_t near_mult(const struct ctx *c, const struct jobw *j, uint32_t i)
{
	if (j->near == UINT32_MAX)
		return 1;
	const struct nearinfo *ni = &c->nears[j->near];
	if (ni->holder[i])
		return 4;
	if (!ni->has_centroid || !c->m[i]->has_coord)
		return 1;
	if (within(ni, &c->m[i]->coord, NEAR_CLOSE_Q))
		return 3;
	return within(ni, &c->m[i]->coord, NEAR_MID_Q) ? 2 : 1;
}

static uint32_t energy_mult(const struct ctx *c, const struct jobw *j, uint32_t i)
{
	uint8_t e = j->in->spec->energy;
	if (e == CN_JOB_ENERGY_ANY)
		return 1;
	uint32_t k = c->power_k[i];
	if (e == CN_JOB_ENERGY_PREFER_LOW_COST && c->low_cost[i])
		k *= 2;
	return k;
}

static uint32_t mult_max(const struct jobw *j)
{
	uint8_t e = j->in->spec->energy;
	return (j->near == UINT32_MAX ? 1 : NEAR_MULT_MAX) *
	       (e == CN_JOB_ENERGY_ANY ? 1 : e == CN_JOB_ENERGY_PREFER_MAINS ? 4 : ENERGY_MULT_MAX);
}

static int zones_for(struct ctx *c, const cn_jobspec *s, uint32_t *out)
{
	const char *label = cn_jobspec_str(s, s->spread);
	uint64_t sig = hash_str(label, 11);
	uint32_t *slot = &c->zone_tab.head[sig & c->zone_tab.mask];
	for (uint32_t i = *slot; i != 0; i = c->zs[i - 1].next)
		if (c->zs[i - 1].sig == sig && strcmp(c->zs[i - 1].label, label) == 0) {
			*out = i - 1;
			return 0;
		}
	struct zones *z = &c->zs[c->n_zs];
	memset(z, 0, sizeof *z);
	z->sig = sig;
	z->label = label;
	z->zone = calloc(c->n ? c->n : 1, sizeof *z->zone);
	struct htab vt;
	uint32_t *first = malloc((c->n ? c->n : 1) * sizeof *first); /* zone -> a member */
	uint32_t *chain = calloc(c->n ? c->n : 1, sizeof *chain);
	if (z->zone == NULL || first == NULL || chain == NULL || htab_init(&vt, c->n)) {
		free(z->zone);
		free(first);
		free(chain);
		return CN_ENOMEM;
	}
	z->n = 1;
	for (size_t i = 0; i < c->n; i++) {
		const char *v = member_value(c->m[i]->meta, label);
		if (v == NULL)
			continue; /* zone 0 */
		uint64_t h = hash_str(v, 13);
		uint32_t *vs = &vt.head[h & vt.mask], found = 0;
		for (uint32_t k = *vs; k != 0 && !found; k = chain[k - 1])
			if (strcmp(member_value(c->m[first[k - 1]]->meta, label), v) == 0)
				found = k;
		if (!found) {
			first[z->n - 1] = (uint32_t)i;
			chain[z->n - 1] = *vs;
			*vs = z->n;
			found = z->n++;
		}
		z->zone[i] = found;
	}
	free(vt.head);
	free(first);
	free(chain);
	z->next = *slot;
	*out = (uint32_t)c->n_zs++;
	*slot = *out + 1;
	return 0;
}

/* ---- preference lists -------------------------------------------------------- */

static inline struct cand score(struct ctx *c, const struct jobw *j, uint32_t i, uint64_t mh)
{
	struct cand x;
	x.idx = i;
	x.w = c->weight[i] * near_mult(c, j, i) * energy_mult(c, j, i);
	x.l = neglog2(c->p->log2_q48, fmix64(j->hash ^ mh));
	return x;
}

/* Insert x into top[0..*n) (best first, capacity m) if it belongs. */
static inline bool top_insert(struct cand *top, uint32_t *n, uint32_t m, const struct cand *x)
{
	if (*n == m && !better(x, &top[m - 1]))
		return false;
	uint32_t k = *n < m ? (*n)++ : m - 1;
	while (k > 0 && better(x, &top[k - 1])) {
		top[k] = top[k - 1];
		k--;
	}
	top[k] = *x;
	return true;
}

/* The first m members of the job's HRW order (no spread). */
static uint32_t top_scan(struct ctx *c, const struct jobw *j, struct cand *top, uint32_t m)
{
	const struct elig *e = &c->sets[j->set];
	uint64_t wmax = (uint64_t)e->wmax * mult_max(j), floor = 0, jh = j->hash;
	uint32_t n = 0;
	for (uint32_t k = 0; k < e->n_base; k++) {
		uint64_t h = fmix64(jh ^ e->hash[k]);
		if (h < floor)
			continue;
		struct cand x = score(c, j, e->idx[k], e->hash[k]);
		c->scored++;
		if (top_insert(top, &n, m, &x) && n == m)
			floor = hash_floor(wmax, &top[m - 1]);
	}
	return n;
}

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->idx == y->idx)
		return 0;
	return better(x, y) ? -1 : 1;
}

/* Spread order: the best member of each zone (zones ordered by that
 * member's score), then each zone's second best, and so on. The first m
 * entries involve only each zone's top m members, so each zone keeps a
 * top-m list with its own prefilter floor; levels are then merged. */
static int spread_scan(struct ctx *c, const struct jobw *j, uint32_t *list, uint32_t m,
		       uint32_t *len_out)
{
	const struct elig *e = &c->sets[j->set];
	const struct zones *z = &c->zs[j->zones];
	uint64_t wmax = (uint64_t)e->wmax * mult_max(j), jh = j->hash;
	uint32_t n_touched = 0;
	for (uint32_t k = 0; k < e->n_base; k++) {
		uint32_t zi = z->zone[e->idx[k]];
		if (c->zfloor[zi] != UINT64_MAX - 1) {
			c->zfloor[zi] = UINT64_MAX - 1; /* mark: reset below */
			c->zcount[zi] = 0;
			c->zsize[zi] = 0;
			c->touched[n_touched++] = zi;
		}
		c->zsize[zi]++;
	}
	for (uint32_t t = 0; t < n_touched; t++) {
		c->zfloor[c->touched[t]] = 0;
		c->zslot[c->touched[t]] = t;
	}
	size_t need = (size_t)n_touched * m;
	if (need > c->zbuf_cap) {
		struct cand *b = realloc(c->zbuf, need * sizeof *b);
		if (b == NULL) {
			for (uint32_t t = 0; t < n_touched; t++)
				c->zfloor[c->touched[t]] = 0;
			return CN_ENOMEM;
		}
		c->zbuf = b;
		c->zbuf_cap = need;
	}
	for (uint32_t k = 0; k < e->n_base; k++) {
		uint32_t i = e->idx[k], zi = z->zone[i];
		uint64_t h = fmix64(jh ^ e->hash[k]);
		if (h < c->zfloor[zi])
			continue;
		struct cand x = score(c, j, i, e->hash[k]);
		c->scored++;
		struct cand *top = c->zbuf + (size_t)c->zslot[zi] * m;
		if (top_insert(top, &c->zcount[zi], m, &x) && c->zcount[zi] == m)
			c->zfloor[zi] = hash_floor(wmax, &top[m - 1]);
	}
	uint32_t len = 0;
	for (uint32_t level = 0; level < m && len < m; level++) {
		uint32_t g = 0;
		for (uint32_t t = 0; t < n_touched; t++) {
			uint32_t zi = c->touched[t];
			if (c->zcount[zi] > level)
				c->scratch[g++] = c->zbuf[(size_t)t * m + level];
		}
		if (g == 0)
			break;
		qsort(c->scratch, g, sizeof *c->scratch, cmp_cand);
		for (uint32_t k = 0; k < g && len < m; k++)
			list[len++] = c->scratch[k].idx;
	}
	for (uint32_t t = 0; t < n_touched; t++)
		c->zfloor[c->touched[t]] = 0;
	*len_out = len;
	return 0;
}

/* The job's whole preference order, exactly, into list (E entries). */
static int full_order(struct ctx *c, const struct jobw *j, uint32_t *list)
{
	const struct elig *e = &c->sets[j->set];
	uint32_t n = e->n_base;
	for (uint32_t k = 0; k < n; k++)
		c->scratch[k] = score(c, j, e->idx[k], e->hash[k]);
	c->scored += n;
	qsort(c->scratch, n, sizeof *c->scratch, cmp_cand);
	if (j->zones == UINT32_MAX) {
		for (uint32_t k = 0; k < n; k++)
			list[k] = c->scratch[k].idx;
		return 0;
	}
	/* levels: rank of each member inside its zone, in score order */
	const struct zones *z = &c->zs[j->zones];
	uint32_t *lvl = malloc((n ? n : 1) * sizeof *lvl);
	uint32_t *start = calloc((size_t)n + 2, sizeof *start);
	if (lvl == NULL || start == NULL) {
		free(lvl);
		free(start);
		return CN_ENOMEM;
	}
	for (uint32_t k = 0; k < n; k++)
		c->zcount[z->zone[c->scratch[k].idx]] = 0;
	for (uint32_t k = 0; k < n; k++) {
		lvl[k] = c->zcount[z->zone[c->scratch[k].idx]]++;
		start[lvl[k] + 1]++;
	}
	for (uint32_t l = 0; l < n; l++)
		start[l + 1] += start[l];
	for (uint32_t k = 0; k < n; k++)
		list[start[lvl[k]]++] = c->scratch[k].idx;
	free(lvl);
	free(start);
	return 0;
}

/* Extend job j's list to its full order (DA ran past the prefix). */
static int extend_list(struct ctx *c, struct jobw *j)
{
	uint32_t n = c->sets[j->set].n_base;
	uint32_t *l = malloc((n ? n : 1) * sizeof *l);
	if (l == NULL)
		return CN_ENOMEM;
	int rc = full_order(c, j, l);
	if (rc) {
		free(l);
		return rc;
	}
	if (j->parent != UINT32_MAX) { /* a zone's members, in score order */
		const uint32_t *zone = c->zs[j->zones].zone;
		uint32_t k = 0;
		for (uint32_t i = 0; i < n; i++)
			if (zone[l[i]] == j->zone)
				l[k++] = l[i];
		n = k;
	}
	/* the old list is a prefix of the full order */
	assert(memcmp(l, j->list, j->len * sizeof *l) == 0);
	if (j->list_owned)
		free(j->list);
	j->list = l;
	j->list_owned = true;
	j->len = n;
	j->complete = true;
	c->extensions++;
	return 0;
}

/* ---- matching --------------------------------------------------------------- */

/* Rank of a spread job's replica placed by redirect()'s fallback: after
 * every zone's own (keys hold 24-bit ranks). */
#define FALLBACK_RANK 0xffffffu

struct heaps {
	uint64_t *key;    /* all members' heaps back to back */
	uint64_t *off;    /* per member */
	uint32_t *cap, *len;
	uint32_t *over_job, *over_rank, *over_member;
	size_t n_over, over_cap;
};

static inline uint64_t mkkey(const struct ctx *c, uint32_t job, uint32_t rank)
{
	uint64_t prio = c->j[job].in->spec->priority;
	return ((uint64_t)(CN_JOB_PRIORITY_MAX - prio) << 48) | ((uint64_t)rank << 24) | job;
}

static void heap_push(uint64_t *h, uint32_t *n, uint64_t k)
{
	uint32_t i = (*n)++;
	while (i > 0 && h[(i - 1) / 2] < k) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = k;
}

/* Replace the top (largest key, the least preferred) with k; returns it. */
static uint64_t heap_replace(uint64_t *h, uint32_t n, uint64_t k)
{
	uint64_t old = h[0];
	uint32_t i = 0;
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, big = i;
		uint64_t bk = k;
		if (l < n && h[l] > bk) {
			big = l;
			bk = h[l];
		}
		if (r < n && h[r] > bk)
			big = r;
		if (big == i)
			break;
		h[i] = h[big];
		i = big;
	}
	h[i] = k;
	return old;
}

/* Per-member arrays of a set of heaps (the keys come once the caps are
 * known). */
static int heaps_alloc(struct heaps *h, size_t n1)
{
	h->off = malloc(n1 * sizeof *h->off);
	h->cap = calloc(n1, sizeof *h->cap);
	h->len = calloc(n1, sizeof *h->len);
	return h->off && h->cap && h->len ? 0 : CN_ENOMEM;
}

/* T: the replicas wanted by replicas-jobs (per_node jobs are outside caps). */
static uint64_t total_want(const struct ctx *c)
{
	uint64_t total = 0;
	for (size_t q = 0; q < c->nj; q++)
		if (!c->j[q].per_node)
			total += c->j[q].want;
	return total;
}

/* caps: ceil(c * q(T/W) * w); q rounds up to 7 significant bits. */
static void compute_caps(struct ctx *c, struct heaps *hp, uint64_t total, uint64_t weight)
{
	u128 lam = weight ? (((u128)total << 32) + weight - 1) / weight : 0;
	int bits = 0;
	for (u128 v = lam; v; v >>= 1)
		bits++;
	if (bits > 7) {
		u128 mask = ((u128)1 << (bits - 7)) - 1;
		lam = (lam + mask) & ~mask;
	}
	u128 den = (u128)1000 << 32;
	for (size_t i = 0; i < c->n; i++) {
		u128 v = ((u128)c->o.load_factor_milli * lam * c->weight[i] + den - 1) / den;
		hp->cap[i] = c->weight[i] == 0 ? 0 : v > total ? (uint32_t)total : (uint32_t)v;
	}
}

static int push_overflow(struct heaps *hp, uint32_t job, uint32_t rank, uint32_t m)
{
	if (hp->n_over == hp->over_cap) {
		size_t cap = hp->over_cap ? hp->over_cap * 2 : 64;
		uint32_t *a = realloc(hp->over_job, cap * sizeof *a);
		if (a) hp->over_job = a;
		uint32_t *b = realloc(hp->over_rank, cap * sizeof *b);
		if (b) hp->over_rank = b;
		uint32_t *d = realloc(hp->over_member, cap * sizeof *d);
		if (d) hp->over_member = d;
		if (!a || !b || !d)
			return CN_ENOMEM;
		hp->over_cap = cap;
	}
	hp->over_job[hp->n_over] = job;
	hp->over_rank[hp->n_over] = rank;
	hp->over_member[hp->n_over++] = m;
	return 0;
}

static inline uint32_t top_of(const struct ctx *c, uint32_t q)
{
	return c->j[q].parent == UINT32_MAX ? q : c->j[q].parent;
}

/* A replica's sort key within its top-level job: rank (for a spread job,
 * the level), then the zone's order, then the member (nothing else can
 * tie: one job, one member). */
static inline uint64_t slot_key(const struct ctx *c, uint32_t q, uint32_t rank, uint32_t m)
{
	return ((uint64_t)rank << 40) | ((uint64_t)c->j[q].sub << 20) | m;
}

/* ---- accelerators: a member takes replicas while their requests fit ----
 *
 * Accelerators are exclusive devices: two replicas cannot share one GPU,
 * so their requests are accounted and never overcommitted. CPU and memory
 * are not: they are shared and elastic on these devices (cgroup limits
 * bound each replica), each replica must fit the member on its own
 * (eligibility), and the bounded-load caps, proportional to capacity,
 * bound how many land there. Accounting them too was tried: on the
 * benchmark's varied fleet (2-8 cores x 2-8 GiB drawn independently) the
 * capacity weight and the binding resource disagree, 658 replicas
 * overflowed their caps and max/mean rose from 1.23 to 1.87; that needs a
 * weight derived from the binding resource first (docs/placement.md). */

static int accel_index(const cn_meta *m, const char *kind)
{
	for (unsigned i = 0; i < m->n_accel && i < CN_ACCEL_MAX; i++)
		if (strcmp(m->accel[i].kind, kind) == 0)
			return (int)i;
	return -1;
}

/* Whether one replica of job q fits the accelerators member m has left. */
static bool room_fits(const struct ctx *c, uint32_t q, uint32_t m)
{
	const cn_jobspec *s = c->j[q].in->spec;
	const struct room *r = &c->room[m];
	if (c->o.rule == CN_PLACE_RULE_1)
		return true; /* not accounted then */
	for (unsigned k = 0; k < s->n_accel; k++) {
		int i = accel_index(c->m[m]->meta, cn_jobspec_str(s, s->accel[k].kind));
		if (i < 0 || r->acc[i] < s->accel[k].count)
			return false;
	}
	return true;
}

/* Take (sign 1) or give back (sign -1) one replica of job q on member m.
 * Taking saturates at 0: per_node replicas are placed whatever is left. */
static void room_take(struct ctx *c, uint32_t q, uint32_t m, int sign)
{
	const cn_jobspec *s = c->j[q].in->spec;
	struct room *r = &c->room[m];
#define ROOM_ADJ(x, v) ((x) = sign > 0 ? ((x) > (v) ? (x) - (v) : 0) : (x) + (v))
	for (unsigned k = 0; k < s->n_accel; k++) {
		int i = accel_index(c->m[m]->meta, cn_jobspec_str(s, s->accel[k].kind));
		if (i >= 0)
			ROOM_ADJ(r->acc[i], s->accel[k].count);
	}
#undef ROOM_ADJ
}

/* Every member's accelerators, less what per_node jobs (placed outside the
 * matching, on every live eligible member) take first. Members of the base
 * that are down are charged too, as if they ran them: the first pass must
 * not depend on who is live (placement.h step 5). */
static int room_init(struct ctx *c)
{
	c->room = calloc(c->n + 1, sizeof *c->room);
	if (c->room == NULL)
		return CN_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		const cn_meta *m = c->m[i]->meta;
		for (unsigned k = 0; k < m->n_accel && k < CN_ACCEL_MAX; k++)
			c->room[i].acc[k] = m->accel[k].count;
	}
	for (size_t q = 0; q < c->nj; q++) {
		const struct jobw *j = &c->j[q];
		const struct elig *e = &c->sets[j->set];
		for (uint32_t k = 0; j->per_node && k < e->n_base; k++)
			room_take(c, (uint32_t)q, e->idx[k], 1);
	}
	return 0;
}

static bool heap_holds(const struct ctx *c, const struct heaps *hp, uint32_t m, uint32_t top)
{
	const uint64_t *h = hp->key + hp->off[m];
	for (uint32_t k = 0; k < hp->len[m]; k++)
		if (top_of(c, (uint32_t)(h[k] & 0xffffff)) == top)
			return true;
	return false;
}

/* Whether member m holds a replica of top-level job `top` in either pass
 * (b may be NULL) or above a cap (the overflow list is hp's). Sub-jobs of
 * a spread job count as their job. */
static bool holds(const struct ctx *c, const struct heaps *hp, const struct heaps *b, uint32_t m,
		  uint32_t top)
{
	if (heap_holds(c, hp, m, top) || (b != NULL && heap_holds(c, b, m, top)))
		return true;
	for (size_t k = 0; k < hp->n_over; k++)
		if (hp->over_member[k] == m && top_of(c, hp->over_job[k]) == top)
			return true;
	return false;
}

/* Deferred acceptance: jobs short of their want propose down their lists;
 * a full member keeps its preferred keys. Unique outcome whatever the
 * proposal order. */
static int da_loop(struct ctx *c, struct heaps *hp, uint64_t *proposals, uint64_t *evictions)
{
	uint32_t *stack = malloc((c->nj_all ? c->nj_all : 1) * sizeof *stack), sp = 0;
	if (stack == NULL)
		return CN_ENOMEM;
	for (size_t q = c->nj_all; q-- > 0;) {
		struct jobw *j = &c->j[q];
		if (!j->per_node && !j->container && j->held < j->want) {
			stack[sp++] = (uint32_t)q;
			j->queued = true;
		}
	}
	int rc = 0;
	while (sp > 0 && rc == 0) {
		uint32_t q = stack[--sp];
		struct jobw *j = &c->j[q];
		j->queued = false;
		while (j->held < j->want) {
			if (j->next == j->len) {
				if (j->complete)
					break;
				if ((rc = extend_list(c, j)) != 0)
					break;
			}
			uint32_t rank = j->next++, m = j->list[rank];
			uint64_t key = mkkey(c, q, rank), *h = hp->key + hp->off[m];
			(*proposals)++;
			/* A member takes a replica while it has a slot under its cap
			 * (unbounded: its heap's storage) and the requests fit; else
			 * it may send its least preferred replica on for a preferred
			 * one, if the newcomer then fits. */
			if (hp->len[m] < hp->cap[m] && room_fits(c, q, m)) {
				heap_push(h, &hp->len[m], key);
				room_take(c, q, m, 1);
				j->held++;
			} else if (hp->len[m] > 0 && key < h[0]) {
				uint32_t oq = (uint32_t)(h[0] & 0xffffff);
				room_take(c, oq, m, -1);
				if (!room_fits(c, q, m)) {
					room_take(c, oq, m, 1);
					continue;
				}
				(void)heap_replace(h, hp->len[m], key);
				room_take(c, q, m, 1);
				j->held++;
				struct jobw *o = &c->j[oq];
				o->held--;
				(*evictions)++;
				if (!o->queued) {
					o->queued = true;
					stack[sp++] = oq;
				}
			}
		}
	}
	free(stack);
	return rc;
}

/* Overflow: replicas nobody took go to their best members without one
 * whose resources they fit, above the cap (canonical job order; live
 * members only when redirecting, b = the redirect pass's heaps). Every
 * list is complete here: the loop above stops short only at the end of a
 * complete list. A replica that fits nowhere stays unplaced. */
static int overflow(struct ctx *c, struct heaps *hp, const struct heaps *b)
{
	int rc = 0;
	for (size_t q = 0; q < c->nj_all && rc == 0; q++) {
		struct jobw *j = &c->j[q];
		if (j->per_node || j->container)
			continue;
		assert(j->held == j->want || j->complete);
		for (uint32_t r = 0; j->held < j->want && r < j->len && rc == 0; r++) {
			uint32_t m = j->list[r];
			if ((b != NULL && !c->live[m]) || holds(c, hp, b, m, top_of(c, (uint32_t)q)) ||
			    !room_fits(c, (uint32_t)q, m))
				continue;
			rc = push_overflow(hp, (uint32_t)q, r, m);
			room_take(c, (uint32_t)q, m, 1);
			j->held++;
		}
	}
	return rc;
}

/* A spread job whose zones ran out of room or of live members (a site
 * down) takes the rest from its whole spread order (live members only
 * when redirecting). */
static int spread_fallback(struct ctx *c, struct heaps *hp, const struct heaps *b)
{
	uint32_t *list = NULL;
	int rc = 0;
	for (size_t q = 0; q < c->nj && rc == 0; q++) {
		struct jobw *j = &c->j[q];
		if (!j->container)
			continue;
		uint32_t placed = j->held;
		for (size_t s = c->nj; s < c->nj_all; s++)
			placed += c->j[s].parent == q ? c->j[s].held : 0;
		if (placed >= j->want)
			continue;
		if (list == NULL && (list = malloc((c->n + 1) * sizeof *list)) == NULL)
			return CN_ENOMEM;
		rc = full_order(c, j, list);
		for (uint32_t r = 0; rc == 0 && placed < j->want && r < c->sets[j->set].n_base; r++) {
			uint32_t m = list[r];
			if ((b != NULL && !c->live[m]) || holds(c, hp, b, m, (uint32_t)q) ||
			    !room_fits(c, (uint32_t)q, m))
				continue;
			rc = push_overflow(hp, (uint32_t)q, FALLBACK_RANK, m);
			room_take(c, (uint32_t)q, m, 1);
			j->held++;
			placed++;
		}
	}
	free(list);
	return rc;
}

/* The first pass (setup_heaps sized the heaps for either mode). */
static int match(struct ctx *c, struct heaps *hp, uint64_t *proposals, uint64_t *evictions)
{
	int rc = da_loop(c, hp, proposals, evictions);
	if (rc == 0)
		rc = overflow(c, hp, NULL);
	return rc ? rc : spread_fallback(c, hp, NULL);
}

/* Redirect (step 5 of placement.h): the replicas that the first pass put
 * on members that are not live go on down their lists to live members,
 * into room left under caps from the live weight (b, a second set of
 * heaps). What the first pass put on live members stays: it is pinned, so
 * a member going down moves its own replicas and nothing else. */
static int redirect(struct ctx *c, struct heaps *hp, struct heaps *b, uint64_t *proposals,
		    uint64_t *evictions)
{
	size_t nd = hp->n_over;
	for (size_t i = 0; i < c->n; i++)
		nd += c->live[i] ? 0 : hp->len[i];
	c->disp = malloc((nd ? nd : 1) * sizeof *c->disp);
	if (c->disp == NULL)
		return CN_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		if (c->live[i])
			continue;
		const uint64_t *h = hp->key + hp->off[i];
		for (uint32_t k = 0; k < hp->len[i]; k++) {
			uint32_t q = (uint32_t)(h[k] & 0xffffff);
			c->j[q].held--;
			c->disp[c->n_disp++] = (struct disp){
				top_of(c, q), slot_key(c, q, (uint32_t)((h[k] >> 24) & 0xffffff), (uint32_t)i)};
		}
		hp->len[i] = 0;
	}
	size_t w = 0;
	for (size_t k = 0; k < hp->n_over; k++) {
		if (!c->live[hp->over_member[k]]) {
			c->j[hp->over_job[k]].held--;
			c->disp[c->n_disp++] = (struct disp){
				top_of(c, hp->over_job[k]),
				slot_key(c, hp->over_job[k], hp->over_rank[k], hp->over_member[k])};
			continue;
		}
		hp->over_job[w] = hp->over_job[k];
		hp->over_rank[w] = hp->over_rank[k];
		hp->over_member[w++] = hp->over_member[k];
	}
	hp->n_over = w;
	c->n_over_pinned = w;
	size_t n1 = c->n + 1;
	c->cap_live = calloc(n1, sizeof *c->cap_live);
	if (heaps_alloc(b, n1) != 0 || c->cap_live == NULL)
		return CN_ENOMEM;
	uint64_t weight = 0;
	for (size_t i = 0; i < c->n; i++)
		weight += c->live[i] ? c->weight[i] : 0;
	compute_caps(c, b, total_want(c), weight);
	for (size_t i = 0; i < c->n; i++)
		c->cap_live[i] = c->live[i] ? b->cap[i] : 0;
	for (size_t i = 0; i < c->n; i++)
		b->len[i] = hp->len[i]; /* scratch: load so far */
	for (size_t k = 0; k < hp->n_over; k++)
		b->len[hp->over_member[k]]++;
	uint64_t sum = 0;
	for (size_t i = 0; i < c->n; i++) {
		b->cap[i] = c->cap_live[i] > b->len[i] ? c->cap_live[i] - b->len[i] : 0;
		b->len[i] = 0;
		b->off[i] = sum;
		sum += b->cap[i];
	}
	b->key = malloc((sum ? sum : 1) * sizeof *b->key);
	if (b->key == NULL)
		return CN_ENOMEM;
	int rc = da_loop(c, b, proposals, evictions);
	if (rc == 0)
		rc = overflow(c, hp, b);
	return rc ? rc : spread_fallback(c, hp, b);
}

/* ---- the result ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void count_heap(const struct ctx *c, const struct heaps *hp, uint32_t *cnt)
{
	for (size_t i = 0; i < c->n; i++) {
		const uint64_t *h = hp->key + hp->off[i];
		for (uint32_t k = 0; k < hp->len[i]; k++)
			cnt[top_of(c, (uint32_t)(h[k] & 0xffffff))]++;
	}
}

/* Sort keys of one heap's replicas into tmp at pos[top job]. */
static void collect_heap(const struct ctx *c, const struct heaps *hp, uint64_t *tmp, uint32_t *pos)
{
	for (size_t i = 0; i < c->n; i++) {
		const uint64_t *h = hp->key + hp->off[i];
		for (uint32_t k = 0; k < hp->len[i]; k++) {
			uint32_t q = (uint32_t)(h[k] & 0xffffff), rank = (uint32_t)((h[k] >> 24) & 0xffffff);
			tmp[pos[top_of(c, q)]++] = slot_key(c, q, rank, (uint32_t)i);
		}
	}
}

static int cmp_disp(const void *a, const void *b)
{
	const struct disp *x = a, *y = b;
	if (x->job != y->job)
		return x->job < y->job ? -1 : 1;
	return (x->key > y->key) - (x->key < y->key);
}

/* base_of for redirected replicas: per top-level job, the replicas the
 * redirect pass placed (neither in a first-pass heap nor first-pass
 * overflow), in slot order, take the places of the replicas it took off
 * members that were down, in base order. */
static void pair_redirected(struct ctx *c, const struct heaps *hp, cn_place_result *r)
{
	/* displaced, by (job, key): one sort, then a cursor per job */
	const struct disp *d = c->disp;
	qsort(c->disp, c->n_disp, sizeof *c->disp, cmp_disp);
	size_t at = 0;
	for (size_t q = 0; q < c->nj; q++) {
		const cn_place_job_out *jo = &r->jobs[q];
		while (at < c->n_disp && d[at].job < q)
			at++;
		for (uint32_t k = 0; k < jo->n_placed && !jo->per_node; k++) {
			uint32_t m = r->slots[jo->first + k];
			bool pinned = heap_holds(c, hp, m, (uint32_t)q);
			for (size_t o = 0; o < c->n_over_pinned && !pinned; o++)
				pinned = hp->over_member[o] == m && top_of(c, hp->over_job[o]) == q;
			if (pinned)
				continue;
			assert(at < c->n_disp && d[at].job == q);
			if (at < c->n_disp && d[at].job == q)
				r->base_of[jo->first + k] = (uint32_t)(d[at++].key & 0xfffff);
		}
	}
}

/* b: the redirect pass's heaps, or NULL. */
static int assemble(struct ctx *c, const struct heaps *hp, const struct heaps *b, bool bounded,
		    cn_place_result *r)
{
	size_t name_bytes = 0, n_slots = 0;
	uint32_t *cnt = calloc(c->nj ? c->nj : 1, sizeof *cnt);
	if (cnt == NULL)
		return CN_ENOMEM;
	for (size_t i = 0; i < c->n; i++)
		name_bytes += strlen(c->m[i]->name) + 1;
	count_heap(c, hp, cnt);
	if (b != NULL)
		count_heap(c, b, cnt);
	for (size_t k = 0; k < hp->n_over; k++)
		cnt[top_of(c, hp->over_job[k])]++;
	for (size_t q = 0; q < c->nj; q++) {
		name_bytes += strlen(c->j[q].in->name) + 1;
		if (c->j[q].per_node)
			cnt[q] = c->sets[c->j[q].set].n_live;
		/* Fewer than want when too few are live or requests fit
		 * nowhere (n_no_room). */
		assert(cnt[q] <= c->j[q].want);
		n_slots += cnt[q];
	}
	r->names_ = malloc(name_bytes ? name_bytes : 1);
	r->members = calloc(c->n ? c->n : 1, sizeof *r->members);
	r->jobs = calloc(c->nj ? c->nj : 1, sizeof *r->jobs);
	r->slots = malloc((n_slots ? n_slots : 1) * sizeof *r->slots);
	r->base_of = malloc((n_slots ? n_slots : 1) * sizeof *r->base_of);
	uint64_t *tmp = malloc((n_slots ? n_slots : 1) * sizeof *tmp);
	uint32_t *pos = malloc((c->nj ? c->nj : 1) * sizeof *pos);
	static_assert(CN_PLACE_MEMBERS_MAX <= 1 << 20, "slot keys hold 20-bit members");
	if (!r->names_ || !r->members || !r->jobs || !r->slots || !r->base_of || !tmp || !pos) {
		free(tmp);
		free(pos);
		free(cnt);
		return CN_ENOMEM;
	}
	char *np = r->names_;
	r->n_members = c->n;
	r->n_jobs = c->nj;
	r->n_slots = n_slots;
	for (size_t i = 0; i < c->n; i++) {
		cn_place_member_out *mo = &r->members[i];
		size_t len = strlen(c->m[i]->name) + 1;
		memcpy(np, c->m[i]->name, len);
		mo->name = np;
		np += len;
		mo->weight = c->live[i] ? c->weight[i] : 0;
		mo->cap = !bounded ? UINT32_MAX : b != NULL ? c->cap_live[i] : hp->cap[i];
		mo->load = hp->len[i] + (b != NULL ? b->len[i] : 0);
	}
	uint32_t first = 0;
	for (size_t q = 0; q < c->nj; q++) {
		const struct jobw *j = &c->j[q];
		const struct elig *e = &c->sets[j->set];
		cn_place_job_out *jo = &r->jobs[q];
		size_t len = strlen(j->in->name) + 1;
		memcpy(np, j->in->name, len);
		jo->name = np;
		np += len;
		jo->version = j->in->version;
		jo->priority = j->in->spec->priority;
		jo->per_node = j->per_node;
		jo->majority_only = j->in->spec->partition == CN_JOB_PARTITION_MAJORITY_ONLY;
		jo->want = j->per_node ? e->n_live : j->in->spec->replicas;
		jo->n_placed = cnt[q];
		uint32_t can = jo->want < e->n_live ? jo->want : e->n_live;
		jo->n_no_room = can > cnt[q] ? can - cnt[q] : 0;
		jo->first = first;
		jo->n_eligible = e->n_live;
		jo->n_eligible_known = e->n_known;
		/* Suspects do not count toward a majority: as a partition is
		 * detected member by member, a side that has declared the host
		 * failed but still counts the rest of the other side as suspect
		 * would otherwise see a majority and start a second copy while
		 * the host still runs it (sim placement-partition showed it). A
		 * suspect that refutes counts again. */
		jo->quorum = 2 * (uint64_t)e->n_alive > e->n_known;
		pos[q] = first;
		first += cnt[q];
		if (j->per_node)
			for (uint32_t k = 0; k < e->n_base; k++) {
				uint32_t i = e->idx[k];
				if (!c->live[i])
					continue;
				tmp[pos[q]++] = i; /* name order */
				r->members[i].per_node_load++;
			}
	}
	collect_heap(c, hp, tmp, pos);
	if (b != NULL)
		collect_heap(c, b, tmp, pos);
	for (size_t k = 0; k < hp->n_over; k++) {
		uint32_t top = top_of(c, hp->over_job[k]);
		tmp[pos[top]++] = slot_key(c, hp->over_job[k], hp->over_rank[k], hp->over_member[k]);
		r->members[hp->over_member[k]].load++;
		r->jobs[top].n_overflow++;
	}
	for (size_t q = 0; q < c->nj; q++) {
		cn_place_job_out *jo = &r->jobs[q];
		assert(pos[q] == jo->first + jo->n_placed);
		qsort(tmp + jo->first, jo->n_placed, sizeof *tmp, cmp_u64);
		for (uint32_t k = 0; k < jo->n_placed; k++)
			r->slots[jo->first + k] = r->base_of[jo->first + k] =
				(uint32_t)(tmp[jo->first + k] & 0xfffff);
	}
	if (b != NULL)
		pair_redirected(c, hp, r);
	for (size_t i = 0; i < c->n; i++) {
		r->total_load += r->members[i].load;
		r->total_weight += r->members[i].weight;
	}
	r->overflow = hp->n_over;
	free(tmp);
	free(pos);
	free(cnt);
	return 0;
}

/* ---- cn_place ------------------------------------------------------------------ */

void cn_place_opts_default(cn_place_opts *o)
{
	memset(o, 0, sizeof *o);
	o->load_factor_milli = CN_PLACE_LOAD_FACTOR_DEFAULT;
	o->suspect_is_alive = true;
}

int cn_placer_new(cn_placer **out)
{
	cn_placer *p = malloc(sizeof *p);
	if (p == NULL)
		return CN_ENOMEM;
	for (uint64_t i = 0; i < LOG_SIZE; i++)
		p->log2_q48[i] = log2_q62((4096 + i) << 50);
	assert(p->log2_q48[0] == 0 && p->log2_q48[LOG_SIZE - 1] == 1ULL << 48);
	*out = p;
	return 0;
}

void cn_placer_free(cn_placer *p)
{
	free(p);
}

bool cn_place_coord_quantize(const cn_coord *c, cn_place_coord *out)
{
	memset(out, 0, sizeof *out);
	double q[CN_COORD_DIM + 1];
	for (int d = 0; d < CN_COORD_DIM; d++)
		q[d] = c->vec[d];
	q[CN_COORD_DIM] = c->height;
	int32_t v[CN_COORD_DIM + 1];
	for (int d = 0; d <= CN_COORD_DIM; d++) {
		double x = q[d] * 1000.0 / CN_PLACE_COORD_QUANTUM_MS;
		if (!isfinite(x))
			return false;
		if (x > 1073741824.0)
			x = 1073741824.0;
		if (x < -1073741824.0)
			x = -1073741824.0;
		v[d] = (int32_t)llround(x);
	}
	memcpy(out->vec, v, sizeof out->vec);
	out->height = v[CN_COORD_DIM];
	return true;
}

static void heaps_free(struct heaps *hp)
{
	free(hp->key);
	free(hp->off);
	free(hp->cap);
	free(hp->len);
	free(hp->over_job);
	free(hp->over_rank);
	free(hp->over_member);
}

static void ctx_free(struct ctx *c, struct heaps *hp, uint32_t *pool)
{
	for (size_t k = 0; k < c->n_sets; k++) {
		free(c->sets[k].idx);
		free(c->sets[k].hash);
	}
	for (size_t k = 0; k < c->n_nears; k++)
		free(c->nears[k].holder);
	for (size_t k = 0; k < c->n_zs; k++)
		free(c->zs[k].zone);
	for (size_t q = 0; c->j && q < c->nj_all; q++)
		if (c->j[q].list_owned)
			free(c->j[q].list);
	free(c->sets);
	free(c->nears);
	free(c->zs);
	free(c->set_tab.head);
	free(c->near_tab.head);
	free(c->zone_tab.head);
	free(c->m);
	free(c->mhash);
	free(c->weight);
	free(c->live);
	free(c->base);
	free(c->cap_live);
	free(c->disp);
	free(c->room);
	free(c->known);
	free(c->low_cost);
	free(c->power_k);
	free(c->j);
	free(c->scratch);
	free(c->zcount);
	free(c->zsize);
	free(c->zquota);
	free(c->zslot);
	free(c->zfloor);
	free(c->touched);
	free(c->zbuf);
	free(pool);
	heaps_free(hp);
}

static int cmp_job_name(const void *a, const void *b)
{
	return strcmp((*(const cn_place_job *const *)a)->name, (*(const cn_place_job *const *)b)->name);
}

static int setup(struct ctx *c, const cn_place_member *members, const cn_place_job *jobs)
{
	size_t n = c->n, nj = c->nj, n1 = n + 1;
	c->m = malloc(n1 * sizeof *c->m);
	c->mhash = malloc(n1 * sizeof *c->mhash);
	c->weight = calloc(n1, sizeof *c->weight);
	c->live = calloc(n1, 1);
	c->base = calloc(n1, 1);
	c->known = calloc(n1, 1);
	c->low_cost = calloc(n1, 1);
	c->power_k = calloc(n1, 1);
	c->scratch = malloc(n1 * sizeof *c->scratch);
	c->zcount = calloc(n1, sizeof *c->zcount);
	c->zsize = calloc(n1, sizeof *c->zsize);
	c->zquota = calloc(n1, sizeof *c->zquota);
	c->zslot = calloc(n1, sizeof *c->zslot);
	c->zfloor = calloc(n1, sizeof *c->zfloor);
	c->touched = malloc(n1 * sizeof *c->touched);
	c->j = calloc(nj + 1, sizeof *c->j);
	c->sets = malloc((nj + 1) * sizeof *c->sets);
	c->nears = malloc((nj + 1) * sizeof *c->nears);
	c->zs = malloc((nj + 1) * sizeof *c->zs);
	const cn_place_job **jp = malloc((nj + 1) * sizeof *jp);
	if (!c->m || !c->mhash || !c->weight || !c->live || !c->base || !c->known || !c->low_cost || !c->power_k ||
	    !c->scratch || !c->zcount || !c->zsize || !c->zquota || !c->zslot || !c->zfloor || !c->touched || !c->j ||
	    !c->sets || !c->nears || !c->zs || !jp || htab_init(&c->set_tab, nj) ||
	    htab_init(&c->near_tab, nj) || htab_init(&c->zone_tab, nj)) {
		free(jp);
		return CN_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!name_ok(members[i].name, CN_NAME_MAX) || members[i].meta == NULL) {
			free(jp);
			return CN_EINVAL;
		}
		c->m[i] = &members[i];
	}
	qsort(c->m, n, sizeof *c->m, cmp_member);
	for (size_t i = 0; i < n; i++) {
		const cn_place_member *pm = c->m[i];
		if (i > 0 && strcmp(c->m[i - 1]->name, pm->name) == 0) {
			free(jp);
			return CN_EEXIST;
		}
		c->mhash[i] = hash_str(pm->name, 0x6d656d626572ULL);
		bool live = pm->state == CN_STATE_ALIVE ||
			    (pm->state == CN_STATE_SUSPECT && c->o.suspect_is_alive);
		/* Down vs out (Ceph's split): with bounded loads, a member that
		 * is failed, left or an excluded suspect stays in every job's
		 * preference order and in the caps until the caller stops
		 * passing it (out), and redirect() moves only its own replicas.
		 * A leave, failure or return then moves that member's share and
		 * nothing else; the cascade of a changed base is paid once, when
		 * it is out (docs/placement.md "Down versus out"). */
		bool stable = c->o.load_factor_milli != 0 && !c->o.live_base &&
			      c->o.rule != CN_PLACE_RULE_1;
		c->live[i] = live;
		c->base[i] = live || stable;
		c->redirect |= c->base[i] && !live;
		c->known[i] = pm->state != CN_STATE_LEFT;
		c->weight[i] = c->base[i] ? base_weight(pm->meta) : 0;
		const char *cost = cn_meta_get_label(pm->meta, "energy-cost");
		c->low_cost[i] = cost != NULL && strcmp(cost, "low") == 0;
		uint8_t pw = pm->meta->power;
		c->power_k[i] = pw == CN_POWER_MAINS ? 4 : pw == CN_POWER_BATTERY ? 1 : 2;
	}
	for (size_t q = 0; q < nj; q++) {
		if (!name_ok(jobs[q].name, CN_JOB_NAME_MAX) || jobs[q].spec == NULL) {
			free(jp);
			return CN_EINVAL;
		}
		jp[q] = &jobs[q];
	}
	qsort(jp, nj, sizeof *jp, cmp_job_name);
	for (size_t q = 1; q < nj; q++)
		if (strcmp(jp[q - 1]->name, jp[q]->name) == 0) {
			free(jp);
			return CN_EEXIST;
		}
	qsort(jp, nj, sizeof *jp, cmp_job);
	for (size_t q = 0; q < nj; q++) {
		struct jobw *j = &c->j[q];
		const cn_jobspec *s = jp[q]->spec;
		j->in = jp[q];
		j->hash = hash_str(jp[q]->name, 0x6a6f62ULL);
		j->near = j->zones = j->parent = UINT32_MAX;
		j->per_node = s->per_node;
		int rc = elig_for(c, s, &j->set);
		if (rc == 0 && s->has_near)
			rc = near_for(c, s, &j->near);
		if (rc == 0 && s->spread.len > 0)
			rc = zones_for(c, s, &j->zones);
		if (rc) {
			free(jp);
			return rc;
		}
		/* a replicas job asks for as many as the base holds; redirect()
		 * places those of members that are down, or drops them when
		 * fewer are live */
		uint32_t e = j->per_node ? c->sets[j->set].n_live : c->sets[j->set].n_base;
		j->want = j->per_node ? e : s->replicas < e ? s->replicas : e;
	}
	free(jp);
	/* room for the spread jobs' zone sub-jobs (at most one per replica) */
	size_t subs = 0;
	for (size_t q = 0; q < nj; q++)
		if (c->j[q].zones != UINT32_MAX && !c->j[q].per_node)
			subs += c->j[q].want;
	if (nj + subs > CN_PLACE_JOBS_MAX * 2ULL)
		return CN_ELIMIT;
	struct jobw *more = realloc(c->j, (nj + subs + 1) * sizeof *more);
	if (more == NULL)
		return CN_ENOMEM;
	c->j = more;
	memset(c->j + nj, 0, (subs + 1) * sizeof *more);
	c->nj_all = nj;
	return 0;
}

/* A spread job becomes one sub-job per zone that its first `want` entries
 * of the spread order touch, each wanting that zone's share and proposing
 * down that zone's own members: the zone counts hold whatever the bounded
 * loads do. zl[0..zn) are the zone's members in score order. */
static void add_subjob(struct ctx *c, uint32_t parent, uint32_t zone, uint32_t quota,
		       const uint32_t *zl, uint32_t zn, bool complete, uint32_t **pool_at)
{
	struct jobw *p = &c->j[parent], *s = &c->j[c->nj_all];
	*s = *p;
	s->container = false;
	s->parent = parent;
	s->zone = zone;
	s->sub = (uint32_t)(c->nj_all - c->j[parent].next);
	s->want = quota;
	s->next = 0;
	s->held = 0;
	s->list = *pool_at;
	s->len = zn;
	s->complete = complete;
	s->list_owned = false;
	memcpy(s->list, zl, zn * sizeof *zl);
	*pool_at += zn;
	c->nj_all++;
}

static int spread_lists(struct ctx *c, uint32_t q, uint32_t m, uint32_t **pool_at)
{
	struct jobw *j = &c->j[q];
	const uint32_t *zone = c->zs[j->zones].zone;
	uint32_t e = c->sets[j->set].n_base, got = 0;
	uint32_t *lead = malloc((size_t)(e ? e : 1) * sizeof *lead);
	uint32_t *zl = malloc((size_t)(e ? e : 1) * sizeof *zl);
	int rc = lead && zl ? 0 : CN_ENOMEM;
	if (rc == 0 && c->o.exhaustive)
		rc = full_order(c, j, lead);
	else if (rc == 0)
		rc = spread_scan(c, j, lead, m, &got);
	j->container = true;
	j->next = (uint32_t)c->nj_all; /* first sub-job, for ordinals */
	/* quotas: zones of the first want entries, in order of appearance */
	for (uint32_t k = 0; rc == 0 && k < j->want; k++)
		c->zquota[zone[lead[k]]] = 0;
	for (uint32_t k = 0; rc == 0 && k < j->want; k++)
		c->zquota[zone[lead[k]]]++;
	for (uint32_t k = 0; rc == 0 && k < j->want; k++) {
		uint32_t zi = zone[lead[k]], quota = c->zquota[zi], zn = 0;
		if (quota == 0)
			continue; /* this zone has its sub-job already */
		c->zquota[zi] = 0;
		bool complete;
		if (c->o.exhaustive) {
			for (uint32_t i = 0; i < e; i++)
				if (zone[lead[i]] == zi)
					zl[zn++] = lead[i];
			complete = true;
		} else {
			/* spread_scan left each touched zone's top m in zbuf */
			const struct cand *top = c->zbuf + (size_t)c->zslot[zi] * m;
			for (zn = 0; zn < c->zcount[zi]; zn++)
				zl[zn] = top[zn].idx;
			complete = c->zsize[zi] == zn;
		}
		add_subjob(c, q, zi, quota, zl, zn, complete, pool_at);
	}
	free(zl);
	free(lead);
	return rc;
}

/* Preference prefixes for every replicas-job, in one pool. */
static int build_lists(struct ctx *c, uint32_t **pool_out)
{
	size_t total = 0;
	for (size_t q = 0; q < c->nj; q++) {
		struct jobw *j = &c->j[q];
		if (j->per_node || j->want == 0)
			continue;
		uint32_t e = c->sets[j->set].n_base;
		uint64_t m = c->o.exhaustive ? e : 2 * (uint64_t)j->want + LIST_EXTRA;
		j->len = m < e ? (uint32_t)m : e;
		/* a spread job's zone lists: at most want zones of len each */
		uint64_t room = j->zones == UINT32_MAX ? j->len : (uint64_t)j->want * j->len;
		total += room < e ? room : e;
	}
	uint32_t *pool = malloc((total ? total : 1) * sizeof *pool);
	*pool_out = pool;
	if (pool == NULL)
		return CN_ENOMEM;
	uint32_t *at = pool;
	for (size_t q = 0; q < c->nj; q++) {
		struct jobw *j = &c->j[q];
		if (j->per_node || j->want == 0)
			continue;
		if (j->zones != UINT32_MAX) {
			int rc = spread_lists(c, (uint32_t)q, j->len, &at);
			if (rc)
				return rc;
			continue;
		}
		j->list = at;
		at += j->len;
		j->complete = j->len == c->sets[j->set].n_base;
		if (c->o.exhaustive) {
			int rc = full_order(c, j, j->list);
			if (rc)
				return rc;
			continue;
		}
		uint32_t got = top_scan(c, j, c->scratch, j->len);
		assert(got == j->len);
		for (uint32_t k = 0; k < got; k++)
			j->list[k] = c->scratch[k].idx;
	}
	assert((size_t)(at - pool) <= total);
	return 0;
}

static int setup_heaps(struct ctx *c, struct heaps *hp, bool bounded)
{
	size_t n1 = c->n + 1;
	if (heaps_alloc(hp, n1) != 0)
		return CN_ENOMEM;
	uint64_t weight = 0;
	for (size_t i = 0; i < c->n; i++)
		weight += c->weight[i];
	if (bounded) {
		compute_caps(c, hp, total_want(c), weight);
	} else {
		for (size_t q = 0; q < c->nj_all; q++) {
			const struct jobw *j = &c->j[q];
			/* storage for every member of the job's list prefix: a
			 * replica whose requests do not fit goes further down */
			for (uint32_t r = 0; !j->per_node && !j->container && r < j->len; r++)
				hp->cap[j->list[r]]++;
		}
	}
	uint64_t sum = 0;
	for (size_t i = 0; i < c->n; i++) {
		hp->off[i] = sum;
		sum += hp->cap[i];
	}
	hp->key = malloc((sum ? sum : 1) * sizeof *hp->key);
	return hp->key ? 0 : CN_ENOMEM;
}

int cn_place(cn_placer *p, const cn_place_member *members, size_t n_members,
	     const cn_place_job *jobs, size_t n_jobs, const cn_place_opts *opts,
	     cn_place_result *out)
{
	assert(p != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	if (n_members > CN_PLACE_MEMBERS_MAX || n_jobs > CN_PLACE_JOBS_MAX)
		return CN_ELIMIT;
	if ((n_members && members == NULL) || (n_jobs && jobs == NULL))
		return CN_EINVAL;
	struct ctx c = {.p = p, .n = n_members, .nj = n_jobs};
	if (opts)
		c.o = *opts;
	else
		cn_place_opts_default(&c.o);
	if (c.o.load_factor_milli != 0 &&
	    (c.o.load_factor_milli < 1000 || c.o.load_factor_milli > 100000))
		return CN_EINVAL;
	if (c.o.rule > CN_PLACE_RULE_NEWEST)
		return CN_EINVAL;
	bool bounded = c.o.load_factor_milli != 0;
	struct heaps hp = {0};
	uint32_t *pool = NULL;
	int rc = setup(&c, members, jobs);
	if (rc == 0)
		rc = build_lists(&c, &pool);
	if (rc == 0)
		rc = setup_heaps(&c, &hp, bounded);
	if (rc == 0)
		rc = room_init(&c);
	if (rc == 0)
		rc = match(&c, &hp, &out->proposals, &out->evictions);
	struct heaps b = {0};
	if (rc == 0 && c.redirect)
		rc = redirect(&c, &hp, &b, &out->proposals, &out->evictions);
	if (rc == 0)
		rc = assemble(&c, &hp, c.redirect ? &b : NULL, bounded, out);
	out->scored = c.scored;
	out->list_extensions = c.extensions;
	heaps_free(&b);
	ctx_free(&c, &hp, pool);
	if (rc)
		cn_place_result_free(out);
	return rc;
}

void cn_place_result_free(cn_place_result *r)
{
	free(r->jobs);
	free(r->members);
	free(r->slots);
	free(r->base_of);
	free(r->names_);
	memset(r, 0, sizeof *r);
}

const cn_place_job_out *cn_place_result_job(const cn_place_result *r, const char *name)
{
	for (size_t q = 0; q < r->n_jobs; q++)
		if (strcmp(r->jobs[q].name, name) == 0)
			return &r->jobs[q];
	return NULL;
}

/* ---- plan ------------------------------------------------------------------------ */

static int cmp_jobout_name(const void *a, const void *b)
{
	return strcmp((*(const cn_place_job_out *const *)a)->name,
		      (*(const cn_place_job_out *const *)b)->name);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Member names of a job's replicas, sorted, into names[]. */
static size_t job_members(const cn_place_result *r, const cn_place_job_out *jo, const char **names)
{
	if (jo == NULL)
		return 0;
	for (uint32_t k = 0; k < jo->n_placed; k++)
		names[k] = r->members[r->slots[jo->first + k]].name;
	qsort(names, jo->n_placed, sizeof *names, cmp_cstr);
	return jo->n_placed;
}

static int diff_job(const cn_place_result *a, const cn_place_job_out *ja,
		    const cn_place_result *b, const cn_place_job_out *jb, const char **na,
		    const char **nb, cn_place_move_cb cb, void *ctx, cn_place_diff_stats *st)
{
	size_t la = job_members(a, ja, na), lb = job_members(b, jb, nb), x = 0, y = 0;
	const char *job = ja ? ja->name : jb->name;
	while (x < la || y < lb) {
		int d = x == la ? 1 : y == lb ? -1 : strcmp(na[x], nb[y]);
		cn_place_move mv = {0, job, NULL};
		if (d == 0) {
			st->kept++;
			x++;
			y++;
			continue;
		}
		if (d < 0) {
			mv.kind = CN_PLACE_STOP;
			mv.member = na[x++];
			st->stopped++;
		} else {
			mv.kind = CN_PLACE_START;
			mv.member = nb[y++];
			st->started++;
		}
		int rc = cb ? cb(ctx, &mv) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

int cn_place_diff(const cn_place_result *before, const cn_place_result *after,
		  cn_place_move_cb on_move, void *ctx, cn_place_diff_stats *stats)
{
	cn_place_diff_stats st = {0};
	size_t na = before->n_jobs, nb = after->n_jobs, most = 1;
	const cn_place_job_out **ja = malloc((na + 1) * sizeof *ja);
	const cn_place_job_out **jb = malloc((nb + 1) * sizeof *jb);
	for (size_t q = 0; q < na; q++)
		most = before->jobs[q].n_placed > most ? before->jobs[q].n_placed : most;
	for (size_t q = 0; q < nb; q++)
		most = after->jobs[q].n_placed > most ? after->jobs[q].n_placed : most;
	const char **ma = malloc(most * sizeof *ma), **mb = malloc(most * sizeof *mb);
	int rc = 0;
	if (!ja || !jb || !ma || !mb) {
		rc = CN_ENOMEM;
		goto out;
	}
	for (size_t q = 0; q < na; q++)
		ja[q] = &before->jobs[q];
	for (size_t q = 0; q < nb; q++)
		jb[q] = &after->jobs[q];
	qsort(ja, na, sizeof *ja, cmp_jobout_name);
	qsort(jb, nb, sizeof *jb, cmp_jobout_name);
	size_t x = 0, y = 0;
	while (rc == 0 && (x < na || y < nb)) {
		int d = x == na ? 1 : y == nb ? -1 : strcmp(ja[x]->name, jb[y]->name);
		const cn_place_job_out *a = d <= 0 ? ja[x++] : NULL;
		const cn_place_job_out *b = d >= 0 ? jb[y++] : NULL;
		st.jobs_added += a == NULL;
		st.jobs_removed += b == NULL;
		rc = diff_job(before, a, after, b, ma, mb, on_move, ctx, &st);
	}
out:
	free(ja);
	free(jb);
	free(ma);
	free(mb);
	if (stats)
		*stats = st;
	return rc;
}
