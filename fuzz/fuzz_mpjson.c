/* msgpack -> JSON (src/cli/mpjson.c): the agent renders bodies of documents
 * that came from any replica. Oracles: never crash or read out of bounds;
 * when the compact form renders, the pretty form renders too and, with the
 * whitespace outside strings removed, equals the compact form; brackets
 * balance; a text diffed against itself has only common lines. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/mpjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* pretty minus the whitespace it added (outside strings). */
static size_t squeeze(const char *s, size_t n, char *out)
{
	size_t k = 0;
	int in_str = 0, esc = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			out[k++] = c;
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		if (c == ' ' || c == '\n')
			continue;
		out[k++] = c;
	}
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_buf flat, pretty;
	cn_buf_init(&flat, 1 << 22);
	cn_buf_init(&pretty, 1 << 22);
	int rc = cn_mpjson(data, size, &flat);
	int rp = cn_mpjson_pretty(data, size, &pretty);
	if (rc == 0) {
		assert(rp == 0);
		char *sq = malloc(pretty.len + 1);
		assert(sq != NULL);
		size_t k = squeeze(cn_buf_str(&pretty), pretty.len, sq);
		assert(k == flat.len && memcmp(sq, flat.data, k) == 0);
		free(sq);
		long depth = 0;
		int in_str = 0, esc = 0;
		for (size_t i = 0; i < flat.len; i++) {
			char c = (char)flat.data[i];
			if (in_str) {
				if (esc)
					esc = 0;
				else if (c == '\\')
					esc = 1;
				else if (c == '"')
					in_str = 0;
				continue;
			}
			if (c == '"')
				in_str = 1;
			depth += (c == '{' || c == '[') - (c == '}' || c == ']');
			assert(depth >= 0);
		}
		assert(depth == 0 && !in_str);
		cn_buf d;
		cn_buf_init(&d, 1 << 23);
		assert(cn_text_diff(cn_buf_str(&pretty), cn_buf_str(&pretty), &d) == 0);
		for (size_t i = 0; i < d.len; i++)
			assert(i > 0 && d.data[i - 1] != '\n' ? 1 : (d.data[i] == ' '));
		cn_buf_free(&d);
	}
	cn_buf_free(&flat);
	cn_buf_free(&pretty);
	return 0;
}
