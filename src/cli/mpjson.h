/* msgpack to JSON, for showing policy bodies to operators (`canopy policy
 * get --json`, the `--dry-run` diff).
 *
 * Mapping: nil -> null, bool -> true/false, integers -> JSON integers
 * (full int64/uint64 range, printed exactly), float32/64 -> numbers
 * (%.17g; NaN and infinities -> null), str -> string (escaped per RFC 8259;
 * bytes >= 0x80 pass through), bin -> {"base64": "..."}, array -> array,
 * map -> object in the stored order. Map keys must be scalars: a string
 * key as is, an integer, bool or nil key as its text ("1", "true",
 * "null"). A container or ext key, an ext value, or the unused byte 0xc1
 * is CN_ETYPE: such bodies are shown as base64 by the callers.
 *
 * The input is hostile (a body signed by any operator, read back from the
 * store): it is walked with the bounded reader of wire/mp.h, iteratively,
 * at most CN_MP_DEPTH_MAX containers deep, and must be exactly one object.
 * Nothing allocates beyond the output buffer.
 *
 * Pretty form: the same JSON, one scalar or opening bracket per line,
 * indented by two spaces, "key": value, empty containers as {} and [].
 * It is what the line diff compares, so a changed field is one line. */
#ifndef CN_CLI_MPJSON_H
#define CN_CLI_MPJSON_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/json.h"

/* Append one msgpack object as compact JSON to out.
 * @return 0, or CN_ETYPE (see above), CN_EDEPTH, CN_ETRUNC, CN_ETRAILING,
 *         CN_ENOSPACE (out's ceiling). On error out holds a partial value:
 *         render into a scratch buffer when that matters. */
int cn_mpjson(const uint8_t *mp, size_t len, cn_buf *out);

/* As cn_mpjson, then indent it (pretty form above) and end with a newline. */
int cn_mpjson_pretty(const uint8_t *mp, size_t len, cn_buf *out);

/* Write "key": <the body as JSON> into j. A body that does not render is
 * written as "key": null plus "key_base64": "<base64 of the bytes>", so a
 * tool still gets every byte. Never fails beyond out's sticky error. */
void cn_mpjson_kv(cn_json *j, const char *key, const uint8_t *mp, size_t len);

/* Line diff of two texts (each a sequence of '\n'-terminated lines) into
 * out: "  line" for common lines, "- line" for lines only in a, "+ line"
 * for lines only in b, in order. Uses a longest common subsequence on the
 * lines between the common prefix and suffix while that table stays under
 * CN_DIFF_CELLS_MAX cells; beyond it, every differing line is shown as
 * removed and then added (still correct, only less minimal).
 * @return 0, CN_ENOMEM, or out's sticky error. */
enum { CN_DIFF_CELLS_MAX = 4 * 1024 * 1024 };
int cn_text_diff(const char *a, const char *b, cn_buf *out);

#endif
