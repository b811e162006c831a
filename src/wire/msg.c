/* Protocol message codec (see msg.h and proto/PROTOCOL.md).
 *
 * Decoding goes only through the bounded cn_mp_reader: every count is
 * checked against the input before use and every string against its
 * protocol limit before it is copied, so hostile bytes can make a decoder
 * fail but never read out of bounds, allocate, or recurse.
 *
 * Canonical form: encoders write body keys in ascending order (push-pull
 * alone puts its member array last so that it can stream), integers in
 * their shortest form (msgpack-c does that), and leave out optional fields
 * that hold their default. Decoders accept any key order but refuse a key
 * that appears twice (CN_EINVAL), so one byte string has one meaning.
 *
 * Decoded structs are zeroed first: the bytes after a string's NUL and the
 * padding are zero, so two decodes of equal messages compare equal with
 * memcmp (the fuzz oracle relies on it). */
#include "wire/msg.h"
#include "util/err.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* Worst-case encoded metadata, field by field, in msgpack-c's shortest
 * forms: map header 1; labels key 1 + map16 header 3 + per label two str8
 * headers (2 + 2) + all text; arch and os key 1 + fixstr header 1 + text;
 * u32 fields key 1 + 5; accel key 1 + fixmap 1 + per kind (fixstr 1 + 16 +
 * u32 5); power and battery key 1 + uint8 2. */
enum {
	META_WORST = 1 + (1 + 3 + CN_LABELS_MAX * 4 + CN_LABELS_TEXT_MAX) + (1 + 1 + CN_ARCH_MAX) +
		     (1 + 1 + CN_OS_MAX) + 2 * (1 + 5) +
		     (1 + 1 + CN_ACCEL_MAX * (1 + CN_ACCEL_KIND_MAX + 5)) + 2 * (1 + 5) + 2 * (1 + 2),
	/* alive: array, version, type, map headers 4; name 1+2+64; two u64
	 * fields 2 x (1+9); addr 1+2+18; meta 1+META_WORST; vmin, vmax 2 x 3. */
	ALIVE_WORST = 4 + (1 + 2 + CN_NAME_MAX) + 2 * (1 + 9) + (1 + 2 + CN_ADDR_WIRE_V6) +
		      (1 + META_WORST) + 2 * 3,
	COORD_FIELDS = CN_COORD_DIM + 3,
};
static_assert((int)META_WORST <= (int)CN_META_WIRE_MAX, "maximal metadata must fit CN_META_WIRE_MAX");
static_assert((int)ALIVE_WORST <= (int)CN_DATAGRAM_PLAIN_MAX, "maximal alive must fit one datagram");
static_assert(CN_MSG_FIELDS_MAX <= 64, "seen-key bitmask is 64 bits");
static_assert(CN_LABEL_KEY_MAX < 256 && CN_LABEL_VALUE_MAX < 256 && CN_ARCH_MAX < 32 &&
		      CN_OS_MAX < 32 && CN_ACCEL_KIND_MAX < 32,
	      "string header sizes assumed by META_WORST");
static_assert(CN_LABELS_MAX < 65536 && CN_ACCEL_MAX < 16, "container header sizes");
static_assert(CN_ROLLOUT_REPORTS_MAX < 16 && CN_K_M_ROLLOUT < 128 && CN_ROLLOUT_STAGE_MAX <= UINT16_MAX,
	      "rollout array and key sizes assumed by reports_fit");
static_assert(CN_WORKLOAD_REPORTS_MAX < 65536 && CN_K_M_WORKLOADS < 128,
	      "workload array and key sizes assumed by reports_fit");

#define BIT(k) (UINT64_C(1) << (k))

/* ---- text ------------------------------------------------------------ */

static bool text_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)s[i] < 0x20)
			return false;
	return true;
}

/* A string field into dst[max + 1]: CN_ELIMIT above max, CN_EINVAL for a
 * control byte or (unless allow_empty) an empty string. */
static int read_text(cn_mp_reader *r, char *dst, uint32_t max, bool allow_empty)
{
	cn_mp_reader save = *r;
	const char *s;
	uint32_t len;
	int rc = cn_mp_read_str(r, &s, &len, max);
	if (rc)
		return rc;
	if ((len == 0 && !allow_empty) || !text_ok(s, len)) {
		*r = save;
		return CN_EINVAL;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

static int read_name(cn_mp_reader *r, char dst[CN_NAME_MAX + 1])
{
	return read_text(r, dst, CN_NAME_MAX, false);
}

/* Encoder side: the struct must already respect the limits. */
static void put_text(cn_mp_writer *w, const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);
	assert(len <= max);
	assert(text_ok(s, len));
	cn_mp_put_str(w, s, len);
}

static void put_name(cn_mp_writer *w, const char *s)
{
	assert(s[0] != '\0');
	put_text(w, s, CN_NAME_MAX);
}

/* ---- small field types ----------------------------------------------- */

static int read_u8(cn_mp_reader *r, uint8_t *out, uint8_t lo, uint8_t hi)
{
	cn_mp_reader save = *r;
	uint64_t v;
	int rc = cn_mp_read_u64(r, &v);
	if (rc)
		return rc;
	if (v < lo || v > hi) {
		*r = save;
		return CN_ERANGE;
	}
	*out = (uint8_t)v;
	return 0;
}

static int read_addr(cn_mp_reader *r, cn_addr *out)
{
	const uint8_t *p;
	uint32_t len;
	int rc = cn_mp_read_bin(r, &p, &len, CN_ADDR_WIRE_V6);
	if (rc)
		return rc;
	return cn_addr_from_wire(p, len, out);
}

static void put_addr(cn_mp_writer *w, const cn_addr *a)
{
	uint8_t b[CN_ADDR_WIRE_V6];
	assert(a->family == CN_ADDR_V4 || a->family == CN_ADDR_V6);
	assert(a->port != 0);
	size_t n = cn_addr_to_wire(a, b);
	cn_mp_put_bin(w, b, n);
}

static int read_hash(cn_mp_reader *r, uint8_t out[CN_HASH_BYTES])
{
	const uint8_t *p;
	uint32_t len;
	int rc = cn_mp_read_bin(r, &p, &len, CN_HASH_BYTES);
	if (rc)
		return rc;
	if (len != CN_HASH_BYTES)
		return CN_EINVAL;
	memcpy(out, p, CN_HASH_BYTES);
	return 0;
}

/* Coordinates: [vec0..vec7, height, error, adjustment] as float32. Any
 * msgpack number is accepted on input, but it must be finite as a float,
 * and height and error must not be negative. */
static int read_coord(cn_mp_reader *r, cn_coord *out)
{
	uint32_t n;
	int rc = cn_mp_read_array(r, &n, COORD_FIELDS);
	if (rc)
		return rc;
	if (n != COORD_FIELDS)
		return CN_EINVAL;
	float f[COORD_FIELDS];
	for (uint32_t i = 0; i < n; i++) {
		double d;
		if ((rc = cn_mp_read_f64(r, &d)))
			return rc;
		/* Also refuses NaN; converting a double outside the float
		 * range would be undefined behaviour. */
		if (!(fabs(d) <= FLT_MAX))
			return CN_ERANGE;
		f[i] = (float)d;
	}
	memcpy(out->vec, f, sizeof out->vec);
	out->height = f[CN_COORD_DIM];
	out->error = f[CN_COORD_DIM + 1];
	out->adjustment = f[CN_COORD_DIM + 2];
	if (out->height < 0 || out->error < 0)
		return CN_ERANGE;
	return 0;
}

static void put_coord(cn_mp_writer *w, const cn_coord *c)
{
	cn_mp_put_array(w, COORD_FIELDS);
	for (int i = 0; i < CN_COORD_DIM; i++) {
		assert(isfinite(c->vec[i]));
		cn_mp_put_f32(w, c->vec[i]);
	}
	assert(isfinite(c->height) && c->height >= 0);
	assert(isfinite(c->error) && c->error >= 0);
	assert(isfinite(c->adjustment));
	cn_mp_put_f32(w, c->height);
	cn_mp_put_f32(w, c->error);
	cn_mp_put_f32(w, c->adjustment);
}

/* ---- body maps ------------------------------------------------------- */

/* Iterates a body map with integer keys: refuses non-integer and repeated
 * keys, skips and counts unknown ones (body_skip), remembers which known
 * keys were seen for the required-field check. */
struct body {
	cn_mp_reader *r;
	uint32_t n, i;
	uint64_t seen; /* bit k: key k (< 64) was present */
	cn_msg_stats *stats;
};

static int body_open(struct body *b, cn_mp_reader *r, cn_msg_stats *stats)
{
	b->r = r;
	b->i = 0;
	b->seen = 0;
	b->stats = stats;
	return cn_mp_read_map(r, &b->n, CN_MSG_FIELDS_MAX);
}

/* 1 with *key set, 0 at the end of the map, or an error. */
static int body_next(struct body *b, uint64_t *key)
{
	if (b->i == b->n)
		return 0;
	b->i++;
	int rc = cn_mp_read_u64(b->r, key);
	if (rc)
		return rc == CN_ERANGE ? CN_ETYPE : rc; /* negative key */
	if (*key < 64) {
		if (b->seen & BIT(*key))
			return CN_EINVAL;
		b->seen |= BIT(*key);
	}
	return 1;
}

static int body_skip(struct body *b)
{
	if (b->stats)
		b->stats->unknown_keys++;
	return cn_mp_skip(b->r);
}

static int body_require(const struct body *b, uint64_t mask)
{
	return (b->seen & mask) == mask ? 0 : CN_EMISSING;
}

/* ---- metadata -------------------------------------------------------- */

static int label_cmp(const char *a, const char *b)
{
	return strcmp(a, b);
}

static size_t labels_text(const cn_meta *m)
{
	size_t t = 0;
	for (unsigned i = 0; i < m->n_labels; i++)
		t += strlen(m->labels[i].key) + strlen(m->labels[i].value);
	return t;
}

static int read_labels(cn_mp_reader *r, cn_meta *out)
{
	uint32_t n;
	int rc = cn_mp_read_map(r, &n, CN_LABELS_MAX);
	if (rc)
		return rc;
	size_t text = 0;
	for (uint32_t i = 0; i < n; i++) {
		cn_label *l = &out->labels[i];
		if ((rc = read_text(r, l->key, CN_LABEL_KEY_MAX, false)))
			return rc;
		if ((rc = read_text(r, l->value, CN_LABEL_VALUE_MAX, true)))
			return rc;
		/* Sorted and unique: one set of labels, one encoding. */
		if (i > 0 && label_cmp(out->labels[i - 1].key, l->key) >= 0)
			return CN_EINVAL;
		text += strlen(l->key) + strlen(l->value);
		if (text > CN_LABELS_TEXT_MAX)
			return CN_ELIMIT;
	}
	out->n_labels = (uint8_t)n;
	return 0;
}

static int read_accel(cn_mp_reader *r, cn_meta *out)
{
	uint32_t n;
	int rc = cn_mp_read_map(r, &n, CN_ACCEL_MAX);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		cn_accel *a = &out->accel[i];
		if ((rc = read_text(r, a->kind, CN_ACCEL_KIND_MAX, false)))
			return rc;
		if ((rc = cn_mp_read_u32(r, &a->count)))
			return rc;
		if (a->count == 0)
			return CN_ERANGE;
		if (i > 0 && strcmp(out->accel[i - 1].kind, a->kind) >= 0)
			return CN_EINVAL;
	}
	out->n_accel = (uint8_t)n;
	return 0;
}

/* [job_hash, version, done_stage, flags] */
static int read_rollout(cn_mp_reader *r, cn_meta *out)
{
	uint32_t n, k;
	int rc = cn_mp_read_array(r, &n, CN_ROLLOUT_REPORTS_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		cn_rollout_report *e = &out->rollout[i];
		uint32_t stage;
		if ((rc = cn_mp_read_array(r, &k, 4)) != 0)
			break;
		if (k != 4)
			return CN_EINVAL;
		if ((rc = cn_mp_read_u32(r, &e->job_hash)) != 0 ||
		    (rc = cn_mp_read_u64(r, &e->version)) != 0 ||
		    (rc = cn_mp_read_u32(r, &stage)) != 0 ||
		    (rc = read_u8(r, &e->flags, 0, 255)) != 0)
			break;
		if (stage > CN_ROLLOUT_STAGE_MAX)
			return CN_ERANGE;
		e->done_stage = (uint16_t)stage;
	}
	if (rc == 0)
		out->n_rollout = (uint8_t)n;
	return rc;
}

/* [job_hash, replica, state, restarts, version], strictly ascending by
 * (job_hash, replica) so that equal reports are equal bytes. */
static int read_workloads(cn_mp_reader *r, cn_meta *out)
{
	uint32_t n, k;
	int rc = cn_mp_read_array(r, &n, CN_WORKLOAD_REPORTS_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		cn_workload_report *e = &out->workloads[i];
		uint32_t replica;
		if ((rc = cn_mp_read_array(r, &k, 5)) != 0)
			break;
		if (k != 5)
			return CN_EINVAL;
		if ((rc = cn_mp_read_u32(r, &e->job_hash)) != 0 ||
		    (rc = cn_mp_read_u32(r, &replica)) != 0 ||
		    (rc = read_u8(r, &e->state, 0, 255)) != 0 ||
		    (rc = cn_mp_read_u32(r, &e->restarts)) != 0 ||
		    (rc = cn_mp_read_u64(r, &e->version)) != 0)
			break;
		if (replica > UINT16_MAX)
			return CN_ERANGE;
		e->replica = (uint16_t)replica;
		if (i > 0 && (out->workloads[i - 1].job_hash > e->job_hash ||
			      (out->workloads[i - 1].job_hash == e->job_hash &&
			       out->workloads[i - 1].replica >= e->replica)))
			return CN_EINVAL;
	}
	if (rc == 0)
		out->n_workloads = (uint8_t)n;
	return rc;
}

static void meta_defaults(cn_meta *m)
{
	memset(m, 0, sizeof *m);
	m->power = CN_POWER_UNKNOWN;
	m->battery_pct = 255;
}

int cn_meta_decode(cn_mp_reader *r, cn_meta *out, cn_msg_stats *stats)
{
	const uint8_t *start = r->p;
	struct body b;
	uint64_t k;
	int rc;
	meta_defaults(out);
	if ((rc = body_open(&b, r, stats)))
		return rc;
	while ((rc = body_next(&b, &k)) > 0) {
		switch (k) {
		case CN_K_M_LABELS: rc = read_labels(r, out); break;
		case CN_K_M_ARCH: rc = read_text(r, out->arch, CN_ARCH_MAX, true); break;
		case CN_K_M_OS: rc = read_text(r, out->os, CN_OS_MAX, true); break;
		case CN_K_M_CPUS: rc = cn_mp_read_u32(r, &out->cpus); break;
		case CN_K_M_MEM_MB: rc = cn_mp_read_u32(r, &out->mem_mb); break;
		case CN_K_M_ACCEL: rc = read_accel(r, out); break;
		case CN_K_M_LOAD: rc = cn_mp_read_u32(r, &out->load_milli); break;
		case CN_K_M_MEM_FREE_MB: rc = cn_mp_read_u32(r, &out->mem_free_mb); break;
		case CN_K_M_POWER: rc = read_u8(r, &out->power, 0, 255); break;
		case CN_K_M_BATTERY: rc = read_u8(r, &out->battery_pct, 0, 255); break;
		case CN_K_M_ROLLOUT: rc = read_rollout(r, out); break;
		case CN_K_M_WORKLOADS: rc = read_workloads(r, out); break;
		default: rc = body_skip(&b); break;
		}
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	if (out->battery_pct > 100 && out->battery_pct != 255)
		return CN_ERANGE;
	/* Unknown keys from a newer sender count against the same budget:
	 * metadata has to fit in a datagram next to the rest of an alive. */
	if ((size_t)(r->p - start) > CN_META_WIRE_MAX)
		return CN_ELIMIT;
	return 0;
}

static void check_meta(const cn_meta *m)
{
	assert(m->n_labels <= CN_LABELS_MAX);
	assert(m->n_accel <= CN_ACCEL_MAX);
	assert(labels_text(m) <= CN_LABELS_TEXT_MAX);
	for (unsigned i = 1; i < m->n_labels; i++)
		assert(label_cmp(m->labels[i - 1].key, m->labels[i].key) < 0);
	for (unsigned i = 0; i < m->n_accel; i++)
		assert(m->accel[i].count > 0);
	assert(m->battery_pct <= 100 || m->battery_pct == 255);
	assert(m->n_rollout <= CN_ROLLOUT_REPORTS_MAX);
	assert(m->n_workloads <= CN_WORKLOAD_REPORTS_MAX);
	for (unsigned i = 1; i < m->n_workloads; i++)
		assert(m->workloads[i - 1].job_hash < m->workloads[i].job_hash ||
		       (m->workloads[i - 1].job_hash == m->workloads[i].job_hash &&
			m->workloads[i - 1].replica < m->workloads[i].replica));
	(void)m;
}

/* Accelerators go out sorted by kind; the struct may hold them in the
 * order they were discovered. Returns the permutation in idx. */
static void accel_order(const cn_meta *m, uint8_t idx[CN_ACCEL_MAX])
{
	for (uint8_t i = 0; i < m->n_accel; i++) {
		uint8_t j = i;
		while (j > 0 && strcmp(m->accel[idx[j - 1]].kind, m->accel[i].kind) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	for (uint8_t i = 1; i < m->n_accel; i++)
		assert(strcmp(m->accel[idx[i - 1]].kind, m->accel[idx[i]].kind) < 0);
}

/* Every field but the rollout reports, under a map header of n fields
 * plus `extra`. */
static void meta_put_fields(cn_mp_writer *w, const cn_meta *m, uint32_t extra)
{
	uint32_t n = (m->n_labels > 0) + (m->arch[0] != 0) + (m->os[0] != 0) + (m->cpus != 0) +
		     (m->mem_mb != 0) + (m->n_accel > 0) + (m->load_milli != 0) +
		     (m->mem_free_mb != 0) + (m->power != CN_POWER_UNKNOWN) +
		     (m->battery_pct != 255);
	cn_mp_put_map(w, n + extra);
	if (m->n_labels > 0) {
		cn_mp_put_uint(w, CN_K_M_LABELS);
		cn_mp_put_map(w, m->n_labels);
		for (unsigned i = 0; i < m->n_labels; i++) {
			const cn_label *l = &m->labels[i];
			assert(l->key[0] != '\0');
			put_text(w, l->key, CN_LABEL_KEY_MAX);
			put_text(w, l->value, CN_LABEL_VALUE_MAX);
		}
	}
	if (m->arch[0]) {
		cn_mp_put_uint(w, CN_K_M_ARCH);
		put_text(w, m->arch, CN_ARCH_MAX);
	}
	if (m->os[0]) {
		cn_mp_put_uint(w, CN_K_M_OS);
		put_text(w, m->os, CN_OS_MAX);
	}
	if (m->cpus) {
		cn_mp_put_uint(w, CN_K_M_CPUS);
		cn_mp_put_uint(w, m->cpus);
	}
	if (m->mem_mb) {
		cn_mp_put_uint(w, CN_K_M_MEM_MB);
		cn_mp_put_uint(w, m->mem_mb);
	}
	if (m->n_accel > 0) {
		uint8_t idx[CN_ACCEL_MAX];
		accel_order(m, idx);
		cn_mp_put_uint(w, CN_K_M_ACCEL);
		cn_mp_put_map(w, m->n_accel);
		for (unsigned i = 0; i < m->n_accel; i++) {
			const cn_accel *a = &m->accel[idx[i]];
			put_text(w, a->kind, CN_ACCEL_KIND_MAX);
			cn_mp_put_uint(w, a->count);
		}
	}
	if (m->load_milli) {
		cn_mp_put_uint(w, CN_K_M_LOAD);
		cn_mp_put_uint(w, m->load_milli);
	}
	if (m->mem_free_mb) {
		cn_mp_put_uint(w, CN_K_M_MEM_FREE_MB);
		cn_mp_put_uint(w, m->mem_free_mb);
	}
	if (m->power != CN_POWER_UNKNOWN) {
		cn_mp_put_uint(w, CN_K_M_POWER);
		cn_mp_put_uint(w, m->power);
	}
	if (m->battery_pct != 255) {
		cn_mp_put_uint(w, CN_K_M_BATTERY);
		cn_mp_put_uint(w, m->battery_pct);
	}
}

static size_t uint_size(uint64_t v)
{
	return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static size_t rollout_entry_size(const cn_rollout_report *e)
{
	return 1 + uint_size(e->job_hash) + uint_size(e->version) + uint_size(e->done_stage) +
	       uint_size(e->flags);
}

static size_t workload_entry_size(const cn_workload_report *e)
{
	return 1 + uint_size(e->job_hash) + uint_size(e->replica) + uint_size(e->state) +
	       uint_size(e->restarts) + uint_size(e->version);
}

static size_t array_header_size(unsigned n) { return n < 16 ? 1 : 3; }

/* How many rollout reports, then workload reports, fit next to the other
 * fields. The others are at most META_WORST (993) bytes, so on a member
 * with few labels all eight rollout reports (8 x 20 bytes at most) and all
 * sixteen workload reports (16 x 25 at most) fit; on one that uses the
 * whole label budget the last ones are left out, workloads first. */
static void reports_fit(const cn_meta *m, unsigned *n_rollout, unsigned *n_workloads)
{
	*n_rollout = *n_workloads = 0;
	if (m->n_rollout == 0 && m->n_workloads == 0)
		return;
	uint8_t tmp[CN_META_WIRE_MAX + 64];
	cn_mp_writer w;
	cn_mp_writer_init(&w, tmp, sizeof tmp);
	meta_put_fields(&w, m, 2); /* fixmap either way: at most 12 keys */
	if (w.overflow)
		return;
	size_t len = w.len;
	if (m->n_rollout > 0 && len + 2 <= CN_META_WIRE_MAX) {
		size_t l = len + 2; /* key 11, fixarray header (at most 8) */
		unsigned k = 0;
		while (k < m->n_rollout && l + rollout_entry_size(&m->rollout[k]) <= CN_META_WIRE_MAX)
			l += rollout_entry_size(&m->rollout[k++]);
		if (k > 0) {
			*n_rollout = k;
			len = l;
		}
	}
	if (m->n_workloads > 0) {
		/* key 12 and the array header (fixarray below 16, else 3 bytes) */
		size_t l = len + 1 + array_header_size(m->n_workloads);
		unsigned k = 0;
		while (k < m->n_workloads &&
		       l + workload_entry_size(&m->workloads[k]) <= CN_META_WIRE_MAX)
			l += workload_entry_size(&m->workloads[k++]);
		*n_workloads = k;
	}
}

unsigned cn_meta_rollout_fit(cn_meta *m)
{
	check_meta(m);
	unsigned k, kw;
	reports_fit(m, &k, &kw);
	for (unsigned i = k; i < m->n_rollout; i++)
		memset(&m->rollout[i], 0, sizeof m->rollout[i]);
	m->n_rollout = (uint8_t)k;
	for (unsigned i = kw; i < m->n_workloads; i++)
		memset(&m->workloads[i], 0, sizeof m->workloads[i]);
	m->n_workloads = (uint8_t)kw;
	return k;
}

void cn_meta_encode(cn_mp_writer *w, const cn_meta *m)
{
	check_meta(m);
	size_t before = w->len;
	unsigned k, kw;
	reports_fit(m, &k, &kw);
	meta_put_fields(w, m, (k > 0) + (kw > 0));
	if (k > 0) {
		cn_mp_put_uint(w, CN_K_M_ROLLOUT);
		cn_mp_put_array(w, k);
		for (unsigned i = 0; i < k; i++) {
			const cn_rollout_report *e = &m->rollout[i];
			cn_mp_put_array(w, 4);
			cn_mp_put_uint(w, e->job_hash);
			cn_mp_put_uint(w, e->version);
			cn_mp_put_uint(w, e->done_stage);
			cn_mp_put_uint(w, e->flags);
		}
	}
	if (kw > 0) {
		cn_mp_put_uint(w, CN_K_M_WORKLOADS);
		cn_mp_put_array(w, kw);
		for (unsigned i = 0; i < kw; i++) {
			const cn_workload_report *e = &m->workloads[i];
			cn_mp_put_array(w, 5);
			cn_mp_put_uint(w, e->job_hash);
			cn_mp_put_uint(w, e->replica);
			cn_mp_put_uint(w, e->state);
			cn_mp_put_uint(w, e->restarts);
			cn_mp_put_uint(w, e->version);
		}
	}
	/* The fields are at most META_WORST (static_assert above) and the
	 * reports are cut to fit; checked here when the write fit. */
	assert(w->overflow || w->len - before <= CN_META_WIRE_MAX);
	(void)before;
}

int cn_meta_set_label(cn_meta *m, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	if (kl == 0 || kl > CN_LABEL_KEY_MAX || vl > CN_LABEL_VALUE_MAX || !text_ok(key, kl) ||
	    !text_ok(value, vl))
		return CN_EINVAL;
	unsigned i = 0;
	while (i < m->n_labels && strcmp(m->labels[i].key, key) < 0)
		i++;
	bool replace = i < m->n_labels && strcmp(m->labels[i].key, key) == 0;
	size_t text = labels_text(m) + kl + vl;
	if (replace)
		text -= kl + strlen(m->labels[i].value);
	if (text > CN_LABELS_TEXT_MAX || (!replace && m->n_labels >= CN_LABELS_MAX))
		return CN_EFULL;
	if (!replace) {
		memmove(&m->labels[i + 1], &m->labels[i],
			(m->n_labels - i) * sizeof m->labels[0]);
		m->n_labels++;
		memset(&m->labels[i], 0, sizeof m->labels[i]);
		memcpy(m->labels[i].key, key, kl + 1);
	}
	memset(m->labels[i].value, 0, sizeof m->labels[i].value);
	memcpy(m->labels[i].value, value, vl + 1);
	return 0;
}

const char *cn_meta_get_label(const cn_meta *m, const char *key)
{
	for (unsigned i = 0; i < m->n_labels; i++)
		if (strcmp(m->labels[i].key, key) == 0)
			return m->labels[i].value;
	return NULL;
}

/* ---- datagram messages ----------------------------------------------- */

static void put_key(cn_mp_writer *w, unsigned key)
{
	cn_mp_put_uint(w, key);
}

static void check_versions(uint8_t vmin, uint8_t vmax)
{
	assert(vmin >= 1 && vmin <= vmax);
	(void)vmin;
	(void)vmax;
}

static void enc_body(cn_mp_writer *w, const cn_msg *m)
{
	switch (m->type) {
	case CN_MSG_PING: {
		const cn_msg_ping *p = &m->u.ping;
		cn_mp_put_map(w, 3);
		put_key(w, CN_K_SEQ), cn_mp_put_uint(w, p->seq);
		put_key(w, CN_K_TARGET), put_name(w, p->target);
		put_key(w, CN_K_SOURCE), put_name(w, p->source);
		break;
	}
	case CN_MSG_ACK: {
		const cn_msg_ack *p = &m->u.ack;
		cn_mp_put_map(w, 2 + p->has_coord);
		put_key(w, CN_K_SEQ), cn_mp_put_uint(w, p->seq);
		put_key(w, CN_K_SOURCE), put_name(w, p->source);
		if (p->has_coord)
			put_key(w, CN_K_COORD), put_coord(w, &p->coord);
		break;
	}
	case CN_MSG_PING_REQ: {
		const cn_msg_ping_req *p = &m->u.ping_req;
		cn_mp_put_map(w, 4 + p->want_nack);
		put_key(w, CN_K_SEQ), cn_mp_put_uint(w, p->seq);
		put_key(w, CN_K_TARGET), put_name(w, p->target);
		put_key(w, CN_K_SOURCE), put_name(w, p->source);
		put_key(w, CN_K_TARGET_ADDR), put_addr(w, &p->target_addr);
		if (p->want_nack)
			put_key(w, CN_K_WANT_NACK), cn_mp_put_bool(w, true);
		break;
	}
	case CN_MSG_NACK: {
		const cn_msg_nack *p = &m->u.nack;
		cn_mp_put_map(w, 2);
		put_key(w, CN_K_SEQ), cn_mp_put_uint(w, p->seq);
		put_key(w, CN_K_SOURCE), put_name(w, p->source);
		break;
	}
	case CN_MSG_ALIVE: {
		const cn_msg_alive *p = &m->u.alive;
		check_versions(p->vmin, p->vmax);
		cn_mp_put_map(w, 7);
		put_key(w, CN_K_NAME), put_name(w, p->name);
		put_key(w, CN_K_INCARNATION), cn_mp_put_uint(w, p->incarnation);
		put_key(w, CN_K_ADDR), put_addr(w, &p->addr);
		put_key(w, CN_K_META), cn_meta_encode(w, &p->meta);
		put_key(w, CN_K_META_VERSION), cn_mp_put_uint(w, p->meta_version);
		put_key(w, CN_K_VMIN), cn_mp_put_uint(w, p->vmin);
		put_key(w, CN_K_VMAX), cn_mp_put_uint(w, p->vmax);
		break;
	}
	case CN_MSG_SUSPECT:
	case CN_MSG_DEAD: {
		const cn_msg_accuse *p = m->type == CN_MSG_SUSPECT ? &m->u.suspect : &m->u.dead;
		cn_mp_put_map(w, 3);
		put_key(w, CN_K_NAME), put_name(w, p->name);
		put_key(w, CN_K_INCARNATION), cn_mp_put_uint(w, p->incarnation);
		put_key(w, CN_K_FROM), put_name(w, p->from);
		break;
	}
	case CN_MSG_LEAVE: {
		const cn_msg_leave *p = &m->u.leave;
		cn_mp_put_map(w, 2);
		put_key(w, CN_K_NAME), put_name(w, p->name);
		put_key(w, CN_K_INCARNATION), cn_mp_put_uint(w, p->incarnation);
		break;
	}
	case CN_MSG_META: {
		const cn_msg_meta *p = &m->u.meta;
		cn_mp_put_map(w, 4);
		put_key(w, CN_K_NAME), put_name(w, p->name);
		put_key(w, CN_K_INCARNATION), cn_mp_put_uint(w, p->incarnation);
		put_key(w, CN_K_META), cn_meta_encode(w, &p->meta);
		put_key(w, CN_K_META_VERSION), cn_mp_put_uint(w, p->meta_version);
		break;
	}
	case CN_MSG_POLICY_ANNOUNCE: {
		const cn_msg_policy_announce *p = &m->u.announce;
		assert(p->kind[0] && p->name[0]);
		cn_mp_put_map(w, 5);
		put_key(w, CN_K_PA_KIND), put_text(w, p->kind, CN_POLICY_KIND_MAX);
		put_key(w, CN_K_PA_NAME), put_text(w, p->name, CN_POLICY_NAME_MAX);
		put_key(w, CN_K_PA_VERSION), cn_mp_put_uint(w, p->version);
		put_key(w, CN_K_PA_WRITER), put_name(w, p->writer);
		put_key(w, CN_K_PA_HASH), cn_mp_put_bin(w, p->hash, CN_HASH_BYTES);
		break;
	}
	default:
		assert(!"cn_msg_encode: not a datagram message type");
	}
}

static void put_header(cn_mp_writer *w, uint8_t version, uint8_t type)
{
	/* version 0 means "the one we write", so a zeroed struct works. */
	if (version == 0)
		version = CN_PROTO_VERSION;
	assert(version >= CN_PROTO_VERSION_MIN && version <= CN_PROTO_VERSION_MAX);
	cn_mp_put_array(w, 3);
	cn_mp_put_uint(w, version);
	cn_mp_put_uint(w, type);
}

void cn_msg_encode(cn_mp_writer *w, const cn_msg *m)
{
	assert(m->type >= CN_MSG_PING && m->type <= CN_MSG_POLICY_ANNOUNCE);
	put_header(w, m->version, m->type);
	enc_body(w, m);
}

size_t cn_msg_encoded_size(const cn_msg *m)
{
	/* Every datagram message within the limits fits one datagram (the
	 * static_asserts above), so the scratch buffer never overflows. */
	uint8_t scratch[CN_DATAGRAM_PLAIN_MAX];
	cn_mp_writer w;
	size_t len = 0;
	cn_mp_writer_init(&w, scratch, sizeof scratch);
	cn_msg_encode(&w, m);
	int rc = cn_mp_writer_end(&w, &len);
	assert(rc == 0);
	(void)rc;
	return len;
}

static int dec_ping(struct body *b, cn_msg_ping *p)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		switch (k) {
		case CN_K_SEQ: rc = cn_mp_read_u32(b->r, &p->seq); break;
		case CN_K_TARGET: rc = read_name(b->r, p->target); break;
		case CN_K_SOURCE: rc = read_name(b->r, p->source); break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	return rc ? rc : body_require(b, BIT(CN_K_SEQ) | BIT(CN_K_TARGET) | BIT(CN_K_SOURCE));
}

static int dec_ack(struct body *b, cn_msg_ack *p)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		switch (k) {
		case CN_K_SEQ: rc = cn_mp_read_u32(b->r, &p->seq); break;
		case CN_K_SOURCE: rc = read_name(b->r, p->source); break;
		case CN_K_COORD:
			rc = read_coord(b->r, &p->coord);
			p->has_coord = true;
			break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	return rc ? rc : body_require(b, BIT(CN_K_SEQ) | BIT(CN_K_SOURCE));
}

static int dec_ping_req(struct body *b, cn_msg_ping_req *p)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		switch (k) {
		case CN_K_SEQ: rc = cn_mp_read_u32(b->r, &p->seq); break;
		case CN_K_TARGET: rc = read_name(b->r, p->target); break;
		case CN_K_SOURCE: rc = read_name(b->r, p->source); break;
		case CN_K_TARGET_ADDR: rc = read_addr(b->r, &p->target_addr); break;
		case CN_K_WANT_NACK: rc = cn_mp_read_bool(b->r, &p->want_nack); break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	return rc ? rc
		  : body_require(b, BIT(CN_K_SEQ) | BIT(CN_K_TARGET) | BIT(CN_K_SOURCE) |
					    BIT(CN_K_TARGET_ADDR));
}

static int dec_nack(struct body *b, cn_msg_nack *p)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		switch (k) {
		case CN_K_SEQ: rc = cn_mp_read_u32(b->r, &p->seq); break;
		case CN_K_SOURCE: rc = read_name(b->r, p->source); break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	return rc ? rc : body_require(b, BIT(CN_K_SEQ) | BIT(CN_K_SOURCE));
}

/* Fields shared by alive, meta and the push-pull member state. */
struct member_fields {
	char *name;
	uint64_t *incarnation;
	cn_addr *addr;
	cn_meta *meta;
	uint64_t *meta_version;
	uint8_t *vmin, *vmax;
	char *from;
	uint8_t *state;
	/* meta == NULL and meta_raw != NULL: record where the metadata map is
	 * and step over it undecoded (an earlier pass validated it). */
	const uint8_t **meta_raw;
	size_t *meta_len;
	/* Non-NULL (validation pass of a push-pull): check the metadata
	 * through this memo instead of decoding it into meta. */
	struct meta_seen *seen;
	/* Push-pull member state only: key 10 (else skipped as unknown). */
	bool *has_down_ms;
	uint32_t *down_ms;
};

/* Metadata maps a push-pull's validation pass has already accepted. The
 * members of a fleet mostly carry byte-identical metadata (the same
 * labels and capacity), and whether a map is valid depends on its bytes
 * alone, so a map equal to one accepted before is accepted without
 * decoding it again; its unknown keys are counted again, as a decode
 * would. Same results, same errors (anything not found here is decoded). */
enum { META_SEEN_MAX = 8 };
struct meta_seen {
	const uint8_t *p[META_SEEN_MAX]; /* inside the buffer being decoded */
	size_t len[META_SEEN_MAX];
	uint64_t unknown[META_SEEN_MAX];
	uint32_t n, next;
	cn_meta scratch;
};

static int meta_check(cn_mp_reader *r, struct meta_seen *s, cn_msg_stats *stats)
{
	const uint8_t *start = r->p;
	cn_mp_reader end = *r;
	if (cn_mp_skip(&end) == 0) {
		size_t len = (size_t)(end.p - start);
		for (uint32_t k = 0; k < s->n; k++) {
			if (s->len[k] == len && memcmp(s->p[k], start, len) == 0) {
				r->p = end.p;
				if (stats)
					stats->unknown_keys += s->unknown[k];
				return 0;
			}
		}
	}
	uint64_t before = stats ? stats->unknown_keys : 0;
	int rc = cn_meta_decode(r, &s->scratch, stats);
	if (rc)
		return rc;
	uint32_t k = s->n < META_SEEN_MAX ? s->n++ : s->next++ % META_SEEN_MAX;
	s->p[k] = start;
	s->len[k] = (size_t)(r->p - start);
	s->unknown[k] = stats ? stats->unknown_keys - before : 0;
	return 0;
}

static int dec_member_fields(struct body *b, const struct member_fields *f, uint64_t required)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		cn_mp_reader *r = b->r;
		switch (k) {
		case CN_K_NAME: rc = read_name(r, f->name); break;
		case CN_K_INCARNATION: rc = cn_mp_read_u64(r, f->incarnation); break;
		case CN_K_ADDR: rc = f->addr ? read_addr(r, f->addr) : body_skip(b); break;
		case CN_K_META:
			if (f->seen) {
				rc = meta_check(r, f->seen, b->stats);
			} else if (f->meta) {
				rc = cn_meta_decode(r, f->meta, b->stats);
			} else if (f->meta_raw) {
				const uint8_t *start = r->p;
				rc = cn_mp_skip(r);
				*f->meta_raw = start;
				*f->meta_len = (size_t)(r->p - start);
			} else {
				rc = body_skip(b);
			}
			break;
		case CN_K_META_VERSION:
			rc = f->meta_version ? cn_mp_read_u64(r, f->meta_version) : body_skip(b);
			break;
		case CN_K_VMIN: rc = f->vmin ? read_u8(r, f->vmin, 1, 255) : body_skip(b); break;
		case CN_K_VMAX: rc = f->vmax ? read_u8(r, f->vmax, 1, 255) : body_skip(b); break;
		case CN_K_FROM: rc = f->from ? read_name(r, f->from) : body_skip(b); break;
		case CN_K_STATE:
			rc = f->state ? read_u8(r, f->state, 0, CN_STATE_MAX_) : body_skip(b);
			break;
		case CN_K_DOWN_MS:
			if (f->down_ms == NULL) {
				rc = body_skip(b);
			} else if ((rc = cn_mp_read_u32(r, f->down_ms)) == 0) {
				*f->has_down_ms = true;
			}
			break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	if ((rc = body_require(b, required)))
		return rc;
	if (f->vmin && *f->vmin > *f->vmax)
		return CN_ERANGE;
	return 0;
}

static int dec_policy_announce(struct body *b, cn_msg_policy_announce *p)
{
	uint64_t k;
	int rc;
	while ((rc = body_next(b, &k)) > 0) {
		switch (k) {
		case CN_K_PA_KIND: rc = read_text(b->r, p->kind, CN_POLICY_KIND_MAX, false); break;
		case CN_K_PA_NAME: rc = read_text(b->r, p->name, CN_POLICY_NAME_MAX, false); break;
		case CN_K_PA_VERSION: rc = cn_mp_read_u64(b->r, &p->version); break;
		case CN_K_PA_WRITER: rc = read_name(b->r, p->writer); break;
		case CN_K_PA_HASH: rc = read_hash(b->r, p->hash); break;
		default: rc = body_skip(b); break;
		}
		if (rc)
			return rc;
	}
	return rc ? rc
		  : body_require(b, BIT(CN_K_PA_KIND) | BIT(CN_K_PA_NAME) | BIT(CN_K_PA_VERSION) |
					    BIT(CN_K_PA_WRITER) | BIT(CN_K_PA_HASH));
}

static const uint64_t ALIVE_REQUIRED = BIT(CN_K_NAME) | BIT(CN_K_INCARNATION) | BIT(CN_K_ADDR) |
				       BIT(CN_K_META) | BIT(CN_K_META_VERSION) | BIT(CN_K_VMIN) |
				       BIT(CN_K_VMAX);

static int dec_body(struct body *b, cn_msg *m)
{
	switch (m->type) {
	case CN_MSG_PING: return dec_ping(b, &m->u.ping);
	case CN_MSG_ACK: return dec_ack(b, &m->u.ack);
	case CN_MSG_PING_REQ: return dec_ping_req(b, &m->u.ping_req);
	case CN_MSG_NACK: return dec_nack(b, &m->u.nack);
	case CN_MSG_ALIVE: {
		cn_msg_alive *p = &m->u.alive;
		struct member_fields f = {p->name, &p->incarnation, &p->addr, &p->meta,
					  &p->meta_version, &p->vmin, &p->vmax, NULL, NULL, NULL, NULL, NULL,
					  NULL, NULL};
		return dec_member_fields(b, &f, ALIVE_REQUIRED);
	}
	case CN_MSG_SUSPECT:
	case CN_MSG_DEAD: {
		cn_msg_accuse *p = m->type == CN_MSG_SUSPECT ? &m->u.suspect : &m->u.dead;
		struct member_fields f = {p->name, &p->incarnation, NULL, NULL, NULL, NULL, NULL,
					  p->from, NULL,    NULL,            NULL, NULL, NULL, NULL};
		return dec_member_fields(b, &f,
					 BIT(CN_K_NAME) | BIT(CN_K_INCARNATION) | BIT(CN_K_FROM));
	}
	case CN_MSG_LEAVE: {
		cn_msg_leave *p = &m->u.leave;
		struct member_fields f = {p->name, &p->incarnation, NULL, NULL, NULL, NULL, NULL,
					  NULL,    NULL,            NULL, NULL, NULL, NULL, NULL};
		return dec_member_fields(b, &f, BIT(CN_K_NAME) | BIT(CN_K_INCARNATION));
	}
	case CN_MSG_META: {
		cn_msg_meta *p = &m->u.meta;
		struct member_fields f = {p->name, &p->incarnation, NULL, &p->meta,
					  &p->meta_version, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
					  NULL, NULL};
		return dec_member_fields(b, &f,
					 BIT(CN_K_NAME) | BIT(CN_K_INCARNATION) | BIT(CN_K_META) |
						 BIT(CN_K_META_VERSION));
	}
	case CN_MSG_POLICY_ANNOUNCE: return dec_policy_announce(b, &m->u.announce);
	default: assert(!"dec_body: type checked by caller"); return CN_EUNKNOWN;
	}
}

static bool datagram_type(uint64_t t)
{
	return t >= CN_MSG_PING && t <= CN_MSG_POLICY_ANNOUNCE;
}

/* Reads the [version, type, ...] head. On an unsupported version or a type
 * the caller does not want, rewinds and skips the whole message so the
 * reader lands on the next one. On success the reader is at the body and
 * *n_extra holds the array elements after the body (a newer sender's). */
static int open_msg(cn_mp_reader *r, bool (*wanted)(uint64_t), uint8_t *version,
		    uint8_t *type, uint32_t *n_extra, cn_msg_stats *stats)
{
	cn_mp_reader start = *r;
	uint32_t n;
	uint64_t v, t;
	int rc;
	if ((rc = cn_mp_read_array(r, &n, CN_MSG_FIELDS_MAX)))
		return rc;
	if (n < 3)
		return CN_ETYPE;
	if ((rc = cn_mp_read_u64(r, &v)) || (rc = cn_mp_read_u64(r, &t)))
		return rc;
	if (v < CN_PROTO_VERSION_MIN || v > CN_PROTO_VERSION_MAX || !wanted(t)) {
		*r = start;
		if ((rc = cn_mp_skip(r)))
			return rc;
		if (v < CN_PROTO_VERSION_MIN || v > CN_PROTO_VERSION_MAX)
			return CN_EVERSION;
		if (stats)
			stats->unknown_types++;
		return CN_EUNKNOWN;
	}
	*version = (uint8_t)v;
	*type = (uint8_t)t;
	*n_extra = n - 3;
	return 0;
}

static int skip_extra(cn_mp_reader *r, uint32_t n_extra, cn_msg_stats *stats)
{
	for (uint32_t i = 0; i < n_extra; i++) {
		int rc = cn_mp_skip(r);
		if (rc)
			return rc;
		if (stats)
			stats->unknown_keys++;
	}
	return 0;
}

int cn_msg_decode(cn_mp_reader *r, cn_msg *out, cn_msg_stats *stats)
{
	uint32_t n_extra;
	struct body b;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = open_msg(r, datagram_type, &out->version, &out->type, &n_extra, stats)))
		return rc;
	if ((rc = body_open(&b, r, stats)) || (rc = dec_body(&b, out)))
		return rc;
	return skip_extra(r, n_extra, stats);
}

/* ---- push-pull ------------------------------------------------------- */

static bool pushpull_type(uint64_t t)
{
	return t == CN_MSG_PUSH_PULL || t == CN_MSG_PUSH_PULL_REPLY;
}

void cn_pushpull_encode_begin(cn_mp_writer *w, uint8_t type, const cn_pushpull *pp,
			      uint32_t n_members)
{
	assert(pushpull_type(type));
	assert(n_members <= CN_PUSHPULL_MEMBERS_MAX);
	put_header(w, CN_PROTO_VERSION, type);
	/* Keys ascending except the member array, which goes last so the
	 * members can follow it one by one. */
	cn_mp_put_map(w, 3 + pp->has_policy_digest);
	put_key(w, CN_K_PP_JOIN), cn_mp_put_bool(w, pp->join);
	put_key(w, CN_K_PP_SOURCE), put_name(w, pp->source);
	if (pp->has_policy_digest)
		put_key(w, CN_K_PP_POLICY_DIGEST),
			cn_mp_put_bin(w, pp->policy_digest, CN_HASH_BYTES);
	put_key(w, CN_K_PP_MEMBERS), cn_mp_put_array(w, n_members);
}

/* meta == NULL: encode ms->meta. */
static void encode_member(cn_mp_writer *w, const cn_member_wire *ms, const uint8_t *meta,
			  size_t meta_len)
{
	check_versions(ms->vmin, ms->vmax);
	assert(ms->state <= CN_STATE_MAX_);
	/* Key 10 last, and only for failed and left members: an alive or
	 * suspect member's bytes are what they were before key 10 existed. */
	bool down = ms->has_down_ms && ms->state >= CN_STATE_DEAD;
	cn_mp_put_map(w, 8 + down);
	put_key(w, CN_K_NAME), put_name(w, ms->name);
	put_key(w, CN_K_INCARNATION), cn_mp_put_uint(w, ms->incarnation);
	put_key(w, CN_K_ADDR), put_addr(w, &ms->addr);
	put_key(w, CN_K_META);
	if (meta != NULL) {
		assert(meta_len > 0 && meta_len <= CN_META_WIRE_MAX);
		cn_mp_put_raw(w, meta, meta_len);
	} else {
		cn_meta_encode(w, &ms->meta);
	}
	put_key(w, CN_K_META_VERSION), cn_mp_put_uint(w, ms->meta_version);
	put_key(w, CN_K_VMIN), cn_mp_put_uint(w, ms->vmin);
	put_key(w, CN_K_VMAX), cn_mp_put_uint(w, ms->vmax);
	put_key(w, CN_K_STATE), cn_mp_put_uint(w, ms->state);
	if (down)
		put_key(w, CN_K_DOWN_MS), cn_mp_put_uint(w, ms->down_ms);
}

void cn_pushpull_encode_member(cn_mp_writer *w, const cn_member_wire *ms)
{
	encode_member(w, ms, NULL, 0);
}

void cn_pushpull_encode_member_raw(cn_mp_writer *w, const cn_member_wire *ms,
				   const uint8_t *meta, size_t meta_len)
{
	assert(meta != NULL);
	encode_member(w, ms, meta, meta_len);
}

/* lazy: leave ms->meta alone and point meta_raw at its bytes. Only the
 * fields before meta are cleared: meta is required, and cn_meta_decode
 * sets all of it, so a member that decodes is fully defined either way
 * without clearing 1.7 KB of metadata twice per member. */
static int dec_member(cn_mp_reader *r, cn_member_wire *ms, cn_msg_stats *stats, bool lazy,
		      struct meta_seen *seen)
{
	struct body b;
	int rc;
	memset(ms, 0, offsetof(cn_member_wire, meta));
	if ((rc = body_open(&b, r, stats)))
		return rc;
	struct member_fields f = {ms->name,         &ms->incarnation, &ms->addr,
				  lazy ? NULL : &ms->meta, &ms->meta_version, &ms->vmin,
				  &ms->vmax,        NULL,             &ms->state,
				  &ms->meta_raw,    &ms->meta_len,    seen,
				  &ms->has_down_ms, &ms->down_ms};
	if ((rc = dec_member_fields(&b, &f, ALIVE_REQUIRED | BIT(CN_K_STATE))))
		return rc;
	/* An age means nothing for a member that is up: dropped, so that
	 * what a receiver acts on re-encodes to the canonical bytes. */
	if (ms->state < CN_STATE_DEAD)
		ms->has_down_ms = false, ms->down_ms = 0;
	return 0;
}

/* Decodes every member; calls on_member for each when on_member != NULL.
 * Without a callback (the validation pass) members are only checked, and
 * their metadata through a memo (struct meta_seen). */
static int members_pass(cn_mp_reader *r, uint32_t *n, cn_member_cb on_member, void *ctx,
			cn_msg_stats *stats, bool lazy)
{
	cn_member_wire ms;
	struct meta_seen memo;
	memo.n = memo.next = 0;
	struct meta_seen *seen = on_member == NULL ? &memo : NULL;
	int rc = cn_mp_read_array(r, n, CN_PUSHPULL_MEMBERS_MAX);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < *n; i++) {
		if ((rc = dec_member(r, &ms, stats, lazy, seen)))
			return rc;
		if (on_member && (rc = on_member(ctx, &ms)))
			return rc;
	}
	return 0;
}

int cn_member_wire_meta(const cn_member_wire *ms, cn_meta *out)
{
	if (ms->meta_raw == NULL) {
		*out = ms->meta;
		return 0;
	}
	cn_mp_reader r;
	cn_mp_reader_init(&r, ms->meta_raw, ms->meta_len);
	int rc = cn_meta_decode(&r, out, NULL);
	if (rc == 0 && cn_mp_remaining(&r) != 0)
		rc = CN_ETRAILING;
	return rc;
}

/* The whole message is validated before the first callback: a caller
 * never acts on half of a push-pull that turns out to be malformed. The
 * member array may sit under any key position; its start is remembered
 * and it is decoded a second time, with callbacks, after the map. Unknown
 * keys are counted in the first pass only. */
static int pushpull_decode(const uint8_t *buf, size_t len, uint8_t *type_out, cn_pushpull *pp,
			   cn_member_cb on_member, void *ctx, cn_msg_stats *stats, bool lazy)
{
	cn_mp_reader r, members = {0};
	uint8_t version, type;
	uint32_t n_extra;
	struct body b;
	uint64_t k;
	int rc;
	memset(pp, 0, sizeof *pp);
	cn_mp_reader_init(&r, buf, len);
	if ((rc = open_msg(&r, pushpull_type, &version, &type, &n_extra, stats)))
		return rc;
	if ((rc = body_open(&b, &r, stats)))
		return rc;
	while ((rc = body_next(&b, &k)) > 0) {
		switch (k) {
		case CN_K_PP_JOIN: rc = cn_mp_read_bool(&r, &pp->join); break;
		case CN_K_PP_SOURCE: rc = read_name(&r, pp->source); break;
		case CN_K_PP_MEMBERS:
			members = r;
			rc = members_pass(&r, &pp->n_members, NULL, NULL, stats, false);
			break;
		case CN_K_PP_POLICY_DIGEST:
			rc = read_hash(&r, pp->policy_digest);
			pp->has_policy_digest = true;
			break;
		default: rc = body_skip(&b); break;
		}
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	if ((rc = body_require(&b, BIT(CN_K_PP_JOIN) | BIT(CN_K_PP_SOURCE) |
					   BIT(CN_K_PP_MEMBERS))))
		return rc;
	if ((rc = skip_extra(&r, n_extra, stats)))
		return rc;
	if (cn_mp_remaining(&r) != 0)
		return CN_ETRAILING;
	*type_out = type;
	(void)version;
	uint32_t n;
	return members_pass(&members, &n, on_member, ctx, NULL, lazy);
}

int cn_pushpull_decode(const uint8_t *buf, size_t len, uint8_t *type_out, cn_pushpull *pp,
		       cn_member_cb on_member, void *ctx, cn_msg_stats *stats)
{
	return pushpull_decode(buf, len, type_out, pp, on_member, ctx, stats, false);
}

int cn_pushpull_decode_lazy(const uint8_t *buf, size_t len, uint8_t *type_out, cn_pushpull *pp,
			    cn_member_cb on_member, void *ctx, cn_msg_stats *stats)
{
	return pushpull_decode(buf, len, type_out, pp, on_member, ctx, stats, true);
}

/* ---- names ----------------------------------------------------------- */

const char *cn_msg_type_name(uint8_t type)
{
	switch (type) {
	case CN_MSG_PING: return "ping";
	case CN_MSG_ACK: return "ack";
	case CN_MSG_PING_REQ: return "ping-req";
	case CN_MSG_NACK: return "nack";
	case CN_MSG_ALIVE: return "alive";
	case CN_MSG_SUSPECT: return "suspect";
	case CN_MSG_DEAD: return "dead";
	case CN_MSG_LEAVE: return "leave";
	case CN_MSG_META: return "meta";
	case CN_MSG_POLICY_ANNOUNCE: return "policy-announce";
	case CN_MSG_PUSH_PULL: return "push-pull";
	case CN_MSG_PUSH_PULL_REPLY: return "push-pull-reply";
	case CN_MSG_KEY_OP: return "key-op";
	case CN_MSG_KEY_OP_REPLY: return "key-op-reply";
	case CN_MSG_POLICY_SYNC: return "policy-sync";
	case CN_MSG_POLICY_SYNC_REPLY: return "policy-sync-reply";
	case CN_MSG_POLICY_FETCH: return "policy-fetch";
	case CN_MSG_POLICY_FETCH_REPLY: return "policy-fetch-reply";
	case CN_MSG_AUDIT_SYNC: return "audit-sync";
	case CN_MSG_AUDIT_SYNC_REPLY: return "audit-sync-reply";
	default: return "unknown";
	}
}

const char *cn_member_state_name(uint8_t state)
{
	switch (state) {
	case CN_STATE_ALIVE: return "alive";
	case CN_STATE_SUSPECT: return "suspect";
	case CN_STATE_DEAD: return "failed";
	case CN_STATE_LEFT: return "left";
	default: return "unknown";
	}
}
