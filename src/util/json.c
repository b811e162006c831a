#include "util/json.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void cn_json_init(cn_json *j, cn_buf *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
}

static void before_value(cn_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->need_comma[j->depth])
		cn_buf_append(j->out, ",", 1);
	j->need_comma[j->depth] = true;
}

static void open(cn_json *j, char c)
{
	before_value(j);
	cn_buf_append(j->out, &c, 1);
	assert(j->depth + 1 < CN_JSON_DEPTH_MAX);
	j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_(cn_json *j, char c)
{
	assert(j->depth > 0 && !j->after_key);
	j->depth--;
	cn_buf_append(j->out, &c, 1);
}

void cn_json_obj_begin(cn_json *j) { open(j, '{'); }
void cn_json_obj_end(cn_json *j) { close_(j, '}'); }
void cn_json_arr_begin(cn_json *j) { open(j, '['); }
void cn_json_arr_end(cn_json *j) { close_(j, ']'); }

void cn_json_escape(cn_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	cn_buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': cn_buf_append(out, "\\\"", 2); break;
		case '\\': cn_buf_append(out, "\\\\", 2); break;
		case '\n': cn_buf_append(out, "\\n", 2); break;
		case '\r': cn_buf_append(out, "\\r", 2); break;
		case '\t': cn_buf_append(out, "\\t", 2); break;
		default:
			if (c < 0x20) {
				char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				cn_buf_append(out, u, 6);
			} else {
				cn_buf_append(out, &s[i], 1);
			}
		}
	}
	cn_buf_append(out, "\"", 1);
}

void cn_json_key(cn_json *j, const char *key)
{
	assert(!j->after_key);
	before_value(j);
	cn_json_escape(j->out, key, strlen(key));
	cn_buf_append(j->out, ":", 1);
	j->after_key = true;
}

void cn_json_strn(cn_json *j, const char *s, size_t n)
{
	before_value(j);
	cn_json_escape(j->out, s, n);
}

void cn_json_str(cn_json *j, const char *s) { cn_json_strn(j, s, strlen(s)); }

void cn_json_u64(cn_json *j, uint64_t v)
{
	before_value(j);
	cn_buf_printf(j->out, "%llu", (unsigned long long)v);
}

void cn_json_i64(cn_json *j, int64_t v)
{
	before_value(j);
	cn_buf_printf(j->out, "%lld", (long long)v);
}

void cn_json_f64(cn_json *j, double v)
{
	before_value(j);
	if (isfinite(v))
		cn_buf_printf(j->out, "%.6g", v);
	else
		cn_buf_puts(j->out, "null");
}

void cn_json_bool(cn_json *j, bool v)
{
	before_value(j);
	cn_buf_puts(j->out, v ? "true" : "false");
}

void cn_json_null(cn_json *j)
{
	before_value(j);
	cn_buf_puts(j->out, "null");
}

void cn_json_kv_str(cn_json *j, const char *key, const char *s) { cn_json_key(j, key); cn_json_str(j, s); }
void cn_json_kv_u64(cn_json *j, const char *key, uint64_t v) { cn_json_key(j, key); cn_json_u64(j, v); }
void cn_json_kv_f64(cn_json *j, const char *key, double v) { cn_json_key(j, key); cn_json_f64(j, v); }
void cn_json_kv_bool(cn_json *j, const char *key, bool v) { cn_json_key(j, key); cn_json_bool(j, v); }
