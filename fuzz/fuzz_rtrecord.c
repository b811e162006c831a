/* Runtime instance records (runtime/record.h), read back from the agent's
 * store at start: bytes on disk are treated as hostile.
 *
 * Oracle: whatever decodes re-encodes; the encoding decodes to an identical
 * struct (every field, the string buffers zero-padded alike) and encodes to
 * the same bytes. Every failure returns a code in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/record.h"
#include "util/err.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cn_rtrec r1, r2;
static uint8_t b1[CN_RTREC_BYTES_MAX], b2[CN_RTREC_BYTES_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc = cn_rtrec_decode(data, size, &r1);
	CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
	if (rc != 0)
		return 0;
	CHECK(r1.job[0] != '\0' && r1.pid > 1);
	CHECK(cn_rtrec_job_ok(r1.job, strlen(r1.job)));
	size_t l1 = 0, l2 = 0;
	CHECK(cn_rtrec_encode(&r1, b1, sizeof b1, &l1) == 0);
	CHECK(cn_rtrec_decode(b1, l1, &r2) == 0);
	CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
	CHECK(cn_rtrec_encode(&r2, b2, sizeof b2, &l2) == 0);
	CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
	char key[CN_RTREC_KEY_MAX];
	cn_rtrec_key(r1.job, r1.replica, key, sizeof key);
	CHECK(strlen(key) < sizeof key);
	return 0;
}
