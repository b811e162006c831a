/* Operator trust inputs: cn_trust_parse_roots (a --trust file) and role
 * bodies (cn_trust_role_parse, cn_trust_set_role) on arbitrary bytes. The
 * first byte picks the parser (even: trust file, odd: role body).
 *
 * Oracles: a trust file either parses to 1..CN_TRUST_ROOTS_MAX distinct
 * roots, with an empty reason and line 0, or fails with CN_EINVAL, a reason
 * that fits, "line N: " matching the reported line (or line 0 for "no
 * keys"/"file larger..."), and the roots untouched. A role body that parses
 * installs as a grant (and a second install with the same role name
 * replaces it: still one grant); one that does not parse is refused by
 * cn_trust_set_role too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/trust.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                    \
	do {                                                                        \
		if (!(c)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                    \
		}                                                                   \
	} while (0)

static void fuzz_roots(const uint8_t *data, size_t size)
{
	cn_trust t;
	cn_trust_init(&t);
	char why[CN_TRUST_WHY_MAX];
	size_t line = 12345;
	int rc = cn_trust_parse_roots(&t, data, size, why, sizeof why, &line);
	if (rc != 0) {
		CHECK(rc == CN_EINVAL);
		CHECK(t.n_roots == 0);
		CHECK(why[0] != '\0' && strlen(why) < sizeof why);
		if (line == 0) {
			CHECK(strcmp(why, "no keys") == 0 || strncmp(why, "file larger", 11) == 0);
		} else {
			char prefix[32];
			snprintf(prefix, sizeof prefix, "line %zu: ", line);
			CHECK(strncmp(why, prefix, strlen(prefix)) == 0);
		}
		return;
	}
	CHECK(line == 0 && why[0] == '\0');
	CHECK(t.n_roots >= 1 && t.n_roots <= CN_TRUST_ROOTS_MAX);
	for (uint32_t i = 0; i < t.n_roots; i++)
		for (uint32_t j = i + 1; j < t.n_roots; j++)
			CHECK(memcmp(t.roots[i], t.roots[j], 32) != 0);
	cn_trust_free(&t);
}

static void fuzz_role(const uint8_t *data, size_t size)
{
	char why[CN_TRUST_WHY_MAX] = "";
	int rc = cn_trust_role_parse(data, size, why, sizeof why);
	cn_doc d;
	memset(&d, 0, sizeof d);
	strcpy(d.kind, "role");
	strcpy(d.name, "fuzz");
	d.body = size ? data : NULL;
	d.body_len = (uint32_t)size;
	cn_trust t;
	cn_trust_init(&t);
	int set = cn_trust_set_role(&t, &d);
	if (rc != 0) {
		CHECK(rc == CN_EINVAL && why[0] != '\0' && strlen(why) < sizeof why);
		CHECK(set == CN_EINVAL && t.n_grants == 0);
	} else {
		CHECK(set == 0 && t.n_grants == 1);
		CHECK(cn_trust_set_role(&t, &d) == 0 && t.n_grants == 1);
	}
	cn_trust_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 2 * CN_TRUST_FILE_MAX)
		return 0;
	if (sodium_init() < 0)
		abort();
	if (data[0] & 1)
		fuzz_role(data + 1, size - 1);
	else
		fuzz_roots(data + 1, size - 1);
	return 0;
}
