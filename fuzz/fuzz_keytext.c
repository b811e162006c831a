/* Key ring text files: cn_keytext_parse_ring on arbitrary bytes.
 *
 * Oracles: a file that parses formats back (within CN_KEYTEXT_RING_MAX) and
 * the formatted text parses to the same ring, slot by slot, with the same
 * primary; a file that does not parse leaves the ring wiped and gives a
 * reason whose "line N:" prefix matches the reported line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keyring.h"
#include "crypto/keytext.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                    \
	do {                                                                        \
		if (!(c)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                    \
		}                                                                   \
	} while (0)

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_keyring ring, back;
	char why[CN_KEYTEXT_WHY_MAX];
	size_t line = 0;
	int rc = cn_keytext_parse_ring(data, size, &ring, why, sizeof why, &line);
	if (rc != 0) {
		CHECK(rc == CN_EINVAL);
		CHECK(all_zero(&ring, sizeof ring));
		CHECK(why[0] != '\0' && strlen(why) < sizeof why);
		if (line == 0) {
			CHECK(strcmp(why, "no keys") == 0 || strncmp(why, "file larger", 11) == 0);
		} else {
			char prefix[32];
			snprintf(prefix, sizeof prefix, "line %zu: ", line);
			CHECK(strncmp(why, prefix, strlen(prefix)) == 0);
		}
		return 0;
	}
	CHECK(why[0] == '\0' && line == 0);
	size_t count = cn_keyring_count(&ring);
	CHECK(count >= 1 && count <= CN_KEYRING_MAX);
	CHECK(ring.primary == 0); /* the first key line */

	char text[CN_KEYTEXT_RING_MAX];
	size_t n = 0;
	CHECK(cn_keytext_format_ring(&ring, text, sizeof text, &n) == 0);
	CHECK(n < sizeof text && text[n] == '\0' && strlen(text) == n);
	CHECK(cn_keytext_parse_ring((const uint8_t *)text, n, &back, why, sizeof why, &line) == 0);
	CHECK(cn_keyring_count(&back) == count && back.primary == ring.primary);
	for (size_t i = 0; i < count; i++) {
		CHECK(back.ids[i] == ring.ids[i]);
		CHECK(memcmp(cn_keyring_at(&back, i), cn_keyring_at(&ring, i), CN_KEY_BYTES) == 0);
	}
	cn_keyring_wipe(&ring);
	cn_keyring_wipe(&back);
	return 0;
}
