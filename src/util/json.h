/* Minimal JSON writer over cn_buf for CLI and admin output.
 *
 * Commas are placed automatically: the writer remembers, per nesting level,
 * whether a value was already written. Strings are escaped per RFC 8259;
 * bytes >= 0x80 pass through (names are validated elsewhere). */
#ifndef CN_UTIL_JSON_H
#define CN_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum { CN_JSON_DEPTH_MAX = 32 };

typedef struct cn_json {
	cn_buf *out;
	int depth;
	bool need_comma[CN_JSON_DEPTH_MAX];
	bool after_key;
} cn_json;

void cn_json_init(cn_json *j, cn_buf *out);
void cn_json_obj_begin(cn_json *j);
void cn_json_obj_end(cn_json *j);
void cn_json_arr_begin(cn_json *j);
void cn_json_arr_end(cn_json *j);
void cn_json_key(cn_json *j, const char *key);
void cn_json_str(cn_json *j, const char *s);
void cn_json_strn(cn_json *j, const char *s, size_t n);
void cn_json_u64(cn_json *j, uint64_t v);
void cn_json_i64(cn_json *j, int64_t v);
void cn_json_f64(cn_json *j, double v); /* non-finite values print as null */
void cn_json_bool(cn_json *j, bool v);
void cn_json_null(cn_json *j);
/* Key and value in one call. */
void cn_json_kv_str(cn_json *j, const char *key, const char *s);
void cn_json_kv_u64(cn_json *j, const char *key, uint64_t v);
void cn_json_kv_f64(cn_json *j, const char *key, double v);
void cn_json_kv_bool(cn_json *j, const char *key, bool v);
/* Escape s as a JSON string literal (with quotes) into out. */
void cn_json_escape(cn_buf *out, const char *s, size_t n);

#endif
