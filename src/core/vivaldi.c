#include "core/vivaldi.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "util/err.h"

/* Tunables: see the header. */
static const double ERROR_MAX = 1.5;
static const double CE = 0.25;
static const double CC = 0.25;
static const double HEIGHT_MIN_S = 10.0e-6;
static const double GRAVITY_RHO_S = 150.0;
static const double ZERO_S = 1.0e-6;   /* below this a distance is "zero" */
static const double COORD_LIMIT_S = 1.0e4; /* a coordinate beyond ~3 h is garbage */
static const double RTT_MAX_S = 60.0;  /* ignore samples above a minute */

void cn_vivaldi_init(cn_vivaldi *v, uint64_t seed)
{
	memset(v, 0, sizeof *v);
	v->height = HEIGHT_MIN_S;
	v->error = ERROR_MAX;
	cn_rng_seed(&v->rng, seed);
}

void cn_vivaldi_get(const cn_vivaldi *v, cn_coord *out)
{
	for (int i = 0; i < CN_COORD_DIM; i++)
		out->vec[i] = (float)v->vec[i];
	out->height = (float)v->height;
	out->error = (float)v->error;
	out->adjustment = (float)v->adjustment;
}

static bool fine(double x, double lo, double hi) { return isfinite(x) && x >= lo && x <= hi; }

bool cn_coord_valid(const cn_coord *c)
{
	for (int i = 0; i < CN_COORD_DIM; i++)
		if (!fine(c->vec[i], -COORD_LIMIT_S, COORD_LIMIT_S))
			return false;
	return fine(c->height, 0.0, COORD_LIMIT_S) && fine(c->error, 0.0, 1e3) &&
	       fine(c->adjustment, -COORD_LIMIT_S, COORD_LIMIT_S);
}

/* |a - b| over the Euclidean part. */
static double vec_dist(const double *a, const cn_coord *b)
{
	double sum = 0.0;
	for (int i = 0; i < CN_COORD_DIM; i++) {
		double d = a[i] - (double)b->vec[i];
		sum += d * d;
	}
	return sqrt(sum);
}

static double raw_dist_s(const cn_vivaldi *v, const cn_coord *o)
{
	return vec_dist(v->vec, o) + v->height + (double)o->height;
}

static double dist_s(const cn_vivaldi *v, const cn_coord *o)
{
	double raw = raw_dist_s(v, o);
	double adj = raw + v->adjustment + (double)o->adjustment;
	return adj > 0.0 ? adj : raw;
}

double cn_coord_rtt_ms(const cn_coord *a, const cn_coord *b)
{
	double sum = 0.0;
	for (int i = 0; i < CN_COORD_DIM; i++) {
		double d = (double)a->vec[i] - (double)b->vec[i];
		sum += d * d;
	}
	double raw = sqrt(sum) + (double)a->height + (double)b->height;
	double adj = raw + (double)a->adjustment + (double)b->adjustment;
	return 1000.0 * (adj > 0.0 ? adj : raw);
}

/* Unit vector from o towards v (and the distance); a random direction
 * when they coincide, drawn from the node's seeded generator. */
static double unit_from(cn_vivaldi *v, const cn_coord *o, double *unit)
{
	double mag = vec_dist(v->vec, o);
	if (mag > ZERO_S) {
		for (int i = 0; i < CN_COORD_DIM; i++)
			unit[i] = (v->vec[i] - (double)o->vec[i]) / mag;
		return mag;
	}
	double sum = 0.0;
	for (int tries = 0; tries < 16 && sum <= ZERO_S; tries++) {
		sum = 0.0;
		for (int i = 0; i < CN_COORD_DIM; i++) {
			unit[i] = cn_rng_unit(&v->rng) - 0.5;
			sum += unit[i] * unit[i];
		}
	}
	if (sum <= ZERO_S) { /* practically unreachable; any axis will do */
		memset(unit, 0, CN_COORD_DIM * sizeof *unit);
		unit[0] = 1.0;
		return 0.0;
	}
	double n = sqrt(sum);
	for (int i = 0; i < CN_COORD_DIM; i++)
		unit[i] /= n;
	return 0.0;
}

/* Move by `force` seconds along the line from o (away when positive). */
static void apply_force(cn_vivaldi *v, double force, const cn_coord *o)
{
	double unit[CN_COORD_DIM];
	double mag = unit_from(v, o, unit);
	for (int i = 0; i < CN_COORD_DIM; i++)
		v->vec[i] += unit[i] * force;
	if (mag > ZERO_S) {
		v->height = (v->height + (double)o->height) * force / mag + v->height;
		if (v->height < HEIGHT_MIN_S)
			v->height = HEIGHT_MIN_S;
	}
}

static double filtered_rtt_s(cn_vivaldi *v, uint32_t key, double rtt_s)
{
	cn_vivaldi_filter *f = &v->filter[key % CN_VIVALDI_FILTER_SLOTS];
	if (f->key1 != key + 1) {
		memset(f, 0, sizeof *f);
		f->key1 = key + 1;
	}
	f->rtt_s[f->next] = rtt_s;
	f->next = (uint8_t)((f->next + 1) % CN_VIVALDI_FILTER_SAMPLES);
	if (f->n < CN_VIVALDI_FILTER_SAMPLES)
		f->n++;
	double s[CN_VIVALDI_FILTER_SAMPLES];
	memcpy(s, f->rtt_s, sizeof s);
	for (int i = 1; i < f->n; i++) /* insertion sort of <= 3 values */
		for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	return s[f->n / 2];
}

static void update_vivaldi(cn_vivaldi *v, const cn_coord *o, double rtt_s)
{
	double dist = dist_s(v, o);
	double wrongness = fabs(dist - rtt_s) / rtt_s;
	double total = v->error + (double)o->error;
	if (total < ZERO_S)
		total = ZERO_S;
	double weight = v->error / total;
	v->error = CE * weight * wrongness + v->error * (1.0 - CE * weight);
	if (v->error > ERROR_MAX)
		v->error = ERROR_MAX;
	apply_force(v, CC * weight * (rtt_s - dist), o);
}

static void update_adjustment(cn_vivaldi *v, const cn_coord *o, double rtt_s)
{
	v->adj_samples[v->adj_index] = rtt_s - raw_dist_s(v, o);
	v->adj_index = (v->adj_index + 1) % CN_VIVALDI_ADJ_WINDOW;
	double sum = 0.0;
	for (int i = 0; i < CN_VIVALDI_ADJ_WINDOW; i++)
		sum += v->adj_samples[i];
	v->adjustment = sum / (2.0 * CN_VIVALDI_ADJ_WINDOW);
}

static void update_gravity(cn_vivaldi *v)
{
	cn_coord origin;
	memset(&origin, 0, sizeof origin);
	double d = dist_s(v, &origin) / GRAVITY_RHO_S;
	apply_force(v, -(d * d), &origin);
}

static bool self_valid(const cn_vivaldi *v)
{
	cn_coord c;
	cn_vivaldi_get(v, &c);
	return cn_coord_valid(&c) && isfinite(v->error);
}

int cn_vivaldi_update(cn_vivaldi *v, uint32_t peer_key, const cn_coord *peer, double rtt_ms)
{
	double rtt_s = rtt_ms / 1000.0;
	if (!cn_coord_valid(peer) || !fine(rtt_s, 0.0, RTT_MAX_S))
		return CN_EINVAL;
	if (rtt_s < ZERO_S)
		rtt_s = ZERO_S;
	rtt_s = filtered_rtt_s(v, peer_key, rtt_s);
	update_vivaldi(v, peer, rtt_s);
	update_adjustment(v, peer, rtt_s);
	update_gravity(v);
	v->updates++;
	if (!self_valid(v)) { /* numerical trouble: start over rather than spread it */
		cn_rng keep = v->rng;
		cn_vivaldi_init(v, 0);
		v->rng = keep;
		return CN_EINVAL;
	}
	assert(v->height >= HEIGHT_MIN_S && v->error <= ERROR_MAX);
	return 0;
}
