#include "wire/mp.h"
#include "util/err.h"

#include <assert.h>
#include <string.h>

void cn_mp_reader_init(cn_mp_reader *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf + len;
}

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Decoded header of one object: its kind, a scalar or length, and how many
 * bytes the header itself takes. Payload bytes (str/bin/ext) are checked
 * against the remaining input here, element counts by the callers. */
enum kind { K_NIL, K_BOOL, K_UINT, K_INT, K_F32, K_F64, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT };

struct head {
	enum kind kind;
	uint64_t u;  /* uint value, bool, length or count */
	int64_t i;   /* negative int value */
	size_t hlen; /* header bytes */
};

static int head(const cn_mp_reader *r, struct head *h)
{
	size_t rem = cn_mp_remaining(r);
	if (rem == 0)
		return CN_ETRUNC;
	const uint8_t *p = r->p;
	uint8_t b = p[0];
	size_t need = 1;
	memset(h, 0, sizeof *h);
	if (b <= 0x7f) { h->kind = K_UINT; h->u = b; }
	else if (b >= 0xe0) { h->kind = K_INT; h->i = (int8_t)b; }
	else if ((b & 0xf0) == 0x80) { h->kind = K_MAP; h->u = b & 0x0f; }
	else if ((b & 0xf0) == 0x90) { h->kind = K_ARRAY; h->u = b & 0x0f; }
	else if ((b & 0xe0) == 0xa0) { h->kind = K_STR; h->u = b & 0x1f; }
	else {
		static const uint8_t extra[32] = {
			/* c0 */ 0, 0xff, 0, 0, 1, 2, 4, 2, 3, 5, 4, 8, 1, 2, 4, 8,
			/* d0 */ 1, 2, 4, 8, 2, 3, 5, 9, 17, 1, 2, 4, 2, 4, 2, 4,
		};
		uint8_t x = extra[b - 0xc0];
		if (x == 0xff)
			return CN_ETYPE; /* 0xc1 is never used */
		need = 1 + (size_t)x;
		if (rem < need)
			return CN_ETRUNC;
		const uint8_t *q = p + 1;
		switch (b) {
		case 0xc0: h->kind = K_NIL; break;
		case 0xc2: h->kind = K_BOOL; h->u = 0; break;
		case 0xc3: h->kind = K_BOOL; h->u = 1; break;
		case 0xc4: case 0xc5: case 0xc6: h->kind = K_BIN; h->u = be(q, x); break;
		case 0xc7: case 0xc8: case 0xc9:
			h->kind = K_EXT; h->u = be(q, x - 1); break; /* length, then type byte */
		case 0xca: h->kind = K_F32; h->u = be(q, 4); break;
		case 0xcb: h->kind = K_F64; h->u = be(q, 8); break;
		case 0xcc: case 0xcd: case 0xce: case 0xcf: h->kind = K_UINT; h->u = be(q, x); break;
		case 0xd0: h->kind = K_INT; h->i = (int8_t)q[0]; break;
		case 0xd1: h->kind = K_INT; h->i = (int16_t)be(q, 2); break;
		case 0xd2: h->kind = K_INT; h->i = (int32_t)be(q, 4); break;
		case 0xd3: h->kind = K_INT; h->i = (int64_t)be(q, 8); break;
		case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
			/* fixext: one type byte and 1..16 data bytes, all counted in x */
			h->kind = K_EXT; h->u = 0; break;
		case 0xd9: case 0xda: case 0xdb: h->kind = K_STR; h->u = be(q, x); break;
		case 0xdc: case 0xdd: h->kind = K_ARRAY; h->u = be(q, x); break;
		case 0xde: case 0xdf: h->kind = K_MAP; h->u = be(q, x); break;
		default: return CN_ETYPE;
		}
	}
	h->hlen = need;
	/* Payload must be present in full before anyone looks at it. */
	if ((h->kind == K_STR || h->kind == K_BIN || h->kind == K_EXT) && h->u > rem - need)
		return CN_ETRUNC;
	/* Signed encodings of non-negative values read as unsigned. */
	if (h->kind == K_INT && h->i >= 0) {
		h->kind = K_UINT;
		h->u = (uint64_t)h->i;
	}
	return 0;
}

bool cn_mp_peek_nil(const cn_mp_reader *r)
{
	return cn_mp_remaining(r) > 0 && r->p[0] == 0xc0;
}

int cn_mp_read_nil(cn_mp_reader *r)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind != K_NIL)
		return CN_ETYPE;
	r->p += h.hlen;
	return 0;
}

int cn_mp_read_bool(cn_mp_reader *r, bool *out)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind != K_BOOL)
		return CN_ETYPE;
	*out = h.u != 0;
	r->p += h.hlen;
	return 0;
}

int cn_mp_read_u64(cn_mp_reader *r, uint64_t *out)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind == K_INT)
		return CN_ERANGE;
	if (h.kind != K_UINT)
		return CN_ETYPE;
	*out = h.u;
	r->p += h.hlen;
	return 0;
}

int cn_mp_read_u32(cn_mp_reader *r, uint32_t *out)
{
	cn_mp_reader save = *r;
	uint64_t v;
	int rc = cn_mp_read_u64(r, &v);
	if (rc)
		return rc;
	if (v > UINT32_MAX) {
		*r = save;
		return CN_ERANGE;
	}
	*out = (uint32_t)v;
	return 0;
}

int cn_mp_read_i64(cn_mp_reader *r, int64_t *out)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind == K_INT)
		*out = h.i;
	else if (h.kind == K_UINT && h.u <= INT64_MAX)
		*out = (int64_t)h.u;
	else if (h.kind == K_UINT)
		return CN_ERANGE;
	else
		return CN_ETYPE;
	r->p += h.hlen;
	return 0;
}

int cn_mp_read_f64(cn_mp_reader *r, double *out)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	switch (h.kind) {
	case K_F32: {
		uint32_t bits = (uint32_t)h.u;
		float f;
		memcpy(&f, &bits, sizeof f);
		*out = f;
		break;
	}
	case K_F64: {
		double d;
		memcpy(&d, &h.u, sizeof d);
		*out = d;
		break;
	}
	case K_UINT: *out = (double)h.u; break;
	case K_INT: *out = (double)h.i; break;
	default: return CN_ETYPE;
	}
	r->p += h.hlen;
	return 0;
}

static int read_bytes(cn_mp_reader *r, enum kind want, const uint8_t **out, uint32_t *len,
		      uint32_t max_len)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind != want)
		return CN_ETYPE;
	if (h.u > max_len)
		return CN_ELIMIT;
	*out = r->p + h.hlen;
	*len = (uint32_t)h.u;
	r->p += h.hlen + h.u;
	return 0;
}

int cn_mp_read_str(cn_mp_reader *r, const char **out, uint32_t *len, uint32_t max_len)
{
	const uint8_t *p;
	int rc = read_bytes(r, K_STR, &p, len, max_len);
	if (rc == 0)
		*out = (const char *)p;
	return rc;
}

int cn_mp_read_bin(cn_mp_reader *r, const uint8_t **out, uint32_t *len, uint32_t max_len)
{
	return read_bytes(r, K_BIN, out, len, max_len);
}

static int read_container(cn_mp_reader *r, enum kind want, uint32_t *count, uint32_t max_count)
{
	struct head h;
	int rc = head(r, &h);
	if (rc)
		return rc;
	if (h.kind != want)
		return CN_ETYPE;
	if (h.u > max_count)
		return CN_ELIMIT;
	/* Every element takes at least one byte: a count the input cannot
	 * hold is a lie, refused before any caller sizes anything by it. */
	uint64_t min_bytes = want == K_MAP ? h.u * 2 : h.u;
	if (min_bytes > cn_mp_remaining(r) - h.hlen)
		return CN_ETRUNC;
	*count = (uint32_t)h.u;
	r->p += h.hlen;
	return 0;
}

int cn_mp_read_array(cn_mp_reader *r, uint32_t *count, uint32_t max_count)
{
	return read_container(r, K_ARRAY, count, max_count);
}

int cn_mp_read_map(cn_mp_reader *r, uint32_t *count, uint32_t max_count)
{
	return read_container(r, K_MAP, count, max_count);
}

int cn_mp_skip(cn_mp_reader *r)
{
	/* pending[d] = objects still to skip at depth d. Counts are bounded by
	 * the remaining input so they fit comfortably in 64 bits. */
	uint64_t pending[CN_MP_DEPTH_MAX + 1];
	int depth = 0;
	cn_mp_reader cur = *r;
	pending[0] = 1;
	while (depth >= 0) {
		if (pending[depth] == 0) {
			depth--;
			continue;
		}
		pending[depth]--;
		struct head h;
		int rc = head(&cur, &h);
		if (rc)
			return rc;
		cur.p += h.hlen;
		if (h.kind == K_STR || h.kind == K_BIN || h.kind == K_EXT) {
			cur.p += h.u;
		} else if (h.kind == K_ARRAY || h.kind == K_MAP) {
			uint64_t n = h.kind == K_MAP ? h.u * 2 : h.u;
			if (n > cn_mp_remaining(&cur))
				return CN_ETRUNC;
			if (n == 0)
				continue;
			if (depth == CN_MP_DEPTH_MAX)
				return CN_EDEPTH;
			pending[++depth] = n;
		}
	}
	*r = cur;
	return 0;
}

static int writer_cb(void *data, const char *buf, size_t len)
{
	cn_mp_writer *w = data;
	if (w->overflow || len > w->cap - w->len) {
		w->overflow = true;
		return -1;
	}
	memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

void cn_mp_writer_init(cn_mp_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
	msgpack_packer_init(&w->pk, w, writer_cb);
}

int cn_mp_writer_end(const cn_mp_writer *w, size_t *len)
{
	if (w->overflow)
		return CN_ENOSPACE;
	*len = w->len;
	return 0;
}

void cn_mp_put_uint(cn_mp_writer *w, uint64_t v) { msgpack_pack_uint64(&w->pk, v); }
void cn_mp_put_int(cn_mp_writer *w, int64_t v) { msgpack_pack_int64(&w->pk, v); }
void cn_mp_put_bool(cn_mp_writer *w, bool v)
{
	if (v)
		msgpack_pack_true(&w->pk);
	else
		msgpack_pack_false(&w->pk);
}
void cn_mp_put_f64(cn_mp_writer *w, double v) { msgpack_pack_double(&w->pk, v); }
void cn_mp_put_f32(cn_mp_writer *w, float v) { msgpack_pack_float(&w->pk, v); }
void cn_mp_put_str(cn_mp_writer *w, const char *s, size_t len)
{
	msgpack_pack_str(&w->pk, len);
	msgpack_pack_str_body(&w->pk, s, len);
}
void cn_mp_put_cstr(cn_mp_writer *w, const char *s) { cn_mp_put_str(w, s, strlen(s)); }
void cn_mp_put_raw(cn_mp_writer *w, const void *b, size_t len)
{
	(void)writer_cb(w, b, len); /* an overflow is recorded in w */
}
void cn_mp_put_bin(cn_mp_writer *w, const void *b, size_t len)
{
	msgpack_pack_bin(&w->pk, len);
	msgpack_pack_bin_body(&w->pk, b, len);
}
void cn_mp_put_array(cn_mp_writer *w, uint32_t n) { msgpack_pack_array(&w->pk, n); }
void cn_mp_put_map(cn_mp_writer *w, uint32_t n) { msgpack_pack_map(&w->pk, n); }
void cn_mp_put_nil(cn_mp_writer *w) { msgpack_pack_nil(&w->pk); }
