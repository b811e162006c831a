/* msgpack to JSON and a line diff (mpjson.h). The walker is iterative: an
 * explicit stack of open containers, CN_MP_DEPTH_MAX deep, no recursion. */
#include "cli/mpjson.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

/* Base64 (padded, original alphabet) of n bytes, appended in chunks of 3k
 * bytes so nothing is allocated: each whole chunk encodes without padding. */
static void put_b64(cn_buf *out, const uint8_t *p, size_t n)
{
	enum { CHUNK = 3 * 256 };
	char text[4 * 256 + 1];
	while (n > 0) {
		size_t k = n < CHUNK ? n : CHUNK;
		sodium_bin2base64(text, sizeof text, p, k, sodium_base64_VARIANT_ORIGINAL);
		cn_buf_puts(out, text);
		p += k;
		n -= k;
	}
}

static bool is_uint(uint8_t b) { return b <= 0x7f || (b >= 0xcc && b <= 0xcf); }
static bool is_int(uint8_t b) { return b >= 0xe0 || (b >= 0xd0 && b <= 0xd3); }
static bool is_str(uint8_t b) { return (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb); }
static bool is_bin(uint8_t b) { return b >= 0xc4 && b <= 0xc6; }
static bool is_float(uint8_t b) { return b == 0xca || b == 0xcb; }
static bool is_map(uint8_t b) { return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf; }
static bool is_array(uint8_t b) { return (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd; }

/* A scalar as JSON text (quoted: as a map key). */
static int scalar(cn_mp_reader *r, cn_buf *out, bool quoted)
{
	if (cn_mp_remaining(r) == 0)
		return CN_ETRUNC;
	uint8_t b = r->p[0];
	const char *q = quoted ? "\"" : "";
	int rc;
	if (b == 0xc0) {
		rc = cn_mp_read_nil(r);
		if (rc == 0)
			cn_buf_printf(out, "%snull%s", q, q);
	} else if (b == 0xc2 || b == 0xc3) {
		bool v = false;
		rc = cn_mp_read_bool(r, &v);
		if (rc == 0)
			cn_buf_printf(out, "%s%s%s", q, v ? "true" : "false", q);
	} else if (is_uint(b)) {
		uint64_t v = 0;
		rc = cn_mp_read_u64(r, &v);
		if (rc == 0)
			cn_buf_printf(out, "%s%" PRIu64 "%s", q, v, q);
	} else if (is_int(b)) {
		int64_t v = 0;
		rc = cn_mp_read_i64(r, &v);
		if (rc == 0)
			cn_buf_printf(out, "%s%" PRId64 "%s", q, v, q);
	} else if (is_float(b)) {
		double v = 0;
		rc = cn_mp_read_f64(r, &v);
		if (rc == 0 && isfinite(v))
			cn_buf_printf(out, "%s%.17g%s", q, v, q);
		else if (rc == 0)
			cn_buf_printf(out, "%snull%s", q, q);
	} else if (is_str(b)) {
		const char *s = NULL;
		uint32_t n = 0;
		rc = cn_mp_read_str(r, &s, &n, UINT32_MAX);
		if (rc == 0)
			cn_json_escape(out, s, n);
	} else if (is_bin(b) && !quoted) {
		const uint8_t *p = NULL;
		uint32_t n = 0;
		rc = cn_mp_read_bin(r, &p, &n, UINT32_MAX);
		if (rc == 0) {
			cn_buf_puts(out, "{\"base64\":\"");
			put_b64(out, p, n);
			cn_buf_puts(out, "\"}");
		}
	} else {
		rc = CN_ETYPE; /* ext, 0xc1, or a bin/container as a key */
	}
	return rc;
}

typedef struct frame {
	uint32_t left;  /* elements (arrays) or pairs (maps) still to come */
	uint32_t done;
	bool map;
} frame;

int cn_mpjson(const uint8_t *mp, size_t len, cn_buf *out)
{
	cn_mp_reader r;
	frame st[CN_MP_DEPTH_MAX];
	int depth = 0, rc = 0;
	if (len == 0)
		return CN_ETRUNC;
	cn_mp_reader_init(&r, mp, len);
	for (;;) {
		if (depth > 0) {
			frame *f = &st[depth - 1];
			if (f->left == 0) {
				cn_buf_puts(out, f->map ? "}" : "]");
				if (--depth == 0)
					break;
				continue;
			}
			if (f->done++ > 0)
				cn_buf_puts(out, ",");
			f->left--;
			if (f->map) {
				if ((rc = scalar(&r, out, true)) != 0)
					return rc;
				cn_buf_puts(out, ":");
			}
		}
		if (cn_mp_remaining(&r) == 0)
			return CN_ETRUNC;
		uint8_t b = r.p[0];
		if (is_map(b) || is_array(b)) {
			uint32_t n = 0;
			if (depth == CN_MP_DEPTH_MAX)
				return CN_EDEPTH;
			rc = is_map(b) ? cn_mp_read_map(&r, &n, UINT32_MAX)
				       : cn_mp_read_array(&r, &n, UINT32_MAX);
			if (rc != 0)
				return rc;
			st[depth++] = (frame){.left = n, .done = 0, .map = is_map(b)};
			cn_buf_puts(out, is_map(b) ? "{" : "[");
			continue;
		}
		if ((rc = scalar(&r, out, false)) != 0)
			return rc;
		if (depth == 0)
			break;
	}
	if (cn_mp_remaining(&r) != 0)
		return CN_ETRAILING;
	return out->err;
}

static void indent(cn_buf *out, int level)
{
	cn_buf_puts(out, "\n");
	for (int i = 0; i < level; i++)
		cn_buf_puts(out, "  ");
}

int cn_mpjson_pretty(const uint8_t *mp, size_t len, cn_buf *out)
{
	cn_buf flat;
	cn_buf_init(&flat, out->max);
	int rc = cn_mpjson(mp, len, &flat);
	if (rc != 0) {
		cn_buf_free(&flat);
		return rc;
	}
	const char *s = cn_buf_str(&flat);
	int level = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < flat.len; i++) {
		char c = s[i];
		if (in_str) {
			cn_buf_append(out, &c, 1);
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		switch (c) {
		case '"':
			in_str = true;
			cn_buf_append(out, &c, 1);
			break;
		case '{':
		case '[':
			if (i + 1 < flat.len && s[i + 1] == (c == '{' ? '}' : ']')) {
				cn_buf_puts(out, c == '{' ? "{}" : "[]");
				i++;
			} else {
				cn_buf_append(out, &c, 1);
				indent(out, ++level);
			}
			break;
		case '}':
		case ']':
			assert(level > 0);
			indent(out, --level);
			cn_buf_append(out, &c, 1);
			break;
		case ',':
			cn_buf_puts(out, ",");
			indent(out, level);
			break;
		case ':':
			cn_buf_puts(out, ": ");
			break;
		default:
			cn_buf_append(out, &c, 1);
		}
	}
	cn_buf_puts(out, "\n");
	cn_buf_free(&flat);
	return out->err;
}

void cn_mpjson_kv(cn_json *j, const char *key, const uint8_t *mp, size_t len)
{
	cn_buf flat;
	cn_buf_init(&flat, j->out->max);
	int rc = cn_mpjson(mp, len, &flat);
	cn_json_key(j, key);
	if (rc == 0) {
		/* The value is complete JSON: after a key, the writer only
		 * expects one value, so append it as it is. */
		j->after_key = false;
		cn_buf_append(j->out, flat.data, flat.len);
	} else {
		char k64[80];
		cn_json_null(j);
		snprintf(k64, sizeof k64, "%s_base64", key);
		cn_json_key(j, k64);
		j->after_key = false;
		cn_buf_puts(j->out, "\"");
		put_b64(j->out, mp, len);
		cn_buf_puts(j->out, "\"");
	}
	cn_buf_free(&flat);
}

/* ---- line diff ------------------------------------------------------------ */

typedef struct line {
	const char *p;
	size_t n;
} line;

/* Lines of s (a last line without '\n' counts). Caller frees. */
static line *split_lines(const char *s, size_t *count)
{
	size_t n = 0, cap = 0;
	line *v = NULL;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t k = nl ? (size_t)(nl - s) : strlen(s);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			line *nv = realloc(v, cap * sizeof *v);
			if (nv == NULL) {
				free(v);
				return NULL;
			}
			v = nv;
		}
		v[n++] = (line){s, k};
		s += k + (nl ? 1 : 0);
	}
	*count = n;
	return v ? v : calloc(1, sizeof *v);
}

static bool line_eq(line a, line b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

static void emit(cn_buf *out, char tag, line l)
{
	cn_buf_printf(out, "%c %.*s\n", tag, (int)l.n, l.p);
}

int cn_text_diff(const char *a, const char *b, cn_buf *out)
{
	size_t na = 0, nb = 0;
	line *la = split_lines(a, &na), *lb = split_lines(b, &nb);
	if (la == NULL || lb == NULL) {
		free(la);
		free(lb);
		return CN_ENOMEM;
	}
	size_t pre = 0, suf = 0;
	while (pre < na && pre < nb && line_eq(la[pre], lb[pre]))
		pre++;
	while (suf < na - pre && suf < nb - pre && line_eq(la[na - 1 - suf], lb[nb - 1 - suf]))
		suf++;
	for (size_t i = 0; i < pre; i++)
		emit(out, ' ', la[i]);
	size_t ma = na - pre - suf, mb = nb - pre - suf;
	const line *xa = la + pre, *xb = lb + pre;
	uint32_t *t = NULL;
	if (ma > 0 && mb > 0 && (ma + 1) <= CN_DIFF_CELLS_MAX / (mb + 1))
		t = calloc((ma + 1) * (mb + 1), sizeof *t);
	if (t != NULL) {
		/* t[i][j] = LCS length of xa[i..] and xb[j..]. */
		size_t w = mb + 1;
		for (size_t i = ma; i-- > 0;)
			for (size_t j = mb; j-- > 0;)
				t[i * w + j] = line_eq(xa[i], xb[j])
						       ? t[(i + 1) * w + j + 1] + 1
						       : (t[(i + 1) * w + j] >= t[i * w + j + 1]
								  ? t[(i + 1) * w + j]
								  : t[i * w + j + 1]);
		size_t i = 0, j = 0;
		while (i < ma || j < mb) {
			if (i < ma && j < mb && line_eq(xa[i], xb[j])) {
				emit(out, ' ', xa[i]);
				i++;
				j++;
			} else if (i < ma && (j == mb || t[(i + 1) * w + j] >= t[i * w + j + 1])) {
				emit(out, '-', xa[i++]);
			} else {
				emit(out, '+', xb[j++]);
			}
		}
		free(t);
	} else {
		for (size_t i = 0; i < ma; i++)
			emit(out, '-', xa[i]);
		for (size_t j = 0; j < mb; j++)
			emit(out, '+', xb[j]);
	}
	for (size_t i = na - suf; i < na; i++)
		emit(out, ' ', la[i]);
	free(la);
	free(lb);
	return out->err;
}
