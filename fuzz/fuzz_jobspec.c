/* Job documents (core/jobspec.h), as stored in policy documents.
 *
 * Oracle: whatever decodes (strict or lenient) re-encodes canonically;
 * the canonical bytes decode (strictly: the encoder writes no unknown key)
 * to a spec whose encoding is the same bytes, and that second decode gives
 * an identical struct (the arena is filled in canonical order). Every
 * failure leaves an error message and returns a code in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jobspec.h"
#include "util/err.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Static: three specs and two documents are ~170 KB, too much for a stack
 * frame the fuzzer calls millions of times, and reusing them keeps ASan's
 * quarantine small. */
static cn_jobspec s1, s2, s3;
static uint8_t b1[CN_JOB_DOC_MAX], b2[CN_JOB_DOC_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_jobspec_err err;
	uint32_t unknown = 0;
	bool strict = size > 0 && (data[0] & 1);
	int rc = cn_jobspec_decode(data, size, strict, &s1, &unknown, &err);
	CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
	if (rc != 0) {
		CHECK(err.msg[0] != '\0');
		return 0;
	}
	CHECK(!strict || unknown == 0);
	size_t l1 = 0, l2 = 0;
	CHECK(cn_jobspec_encode(&s1, b1, sizeof b1, &l1) == 0);
	CHECK(cn_jobspec_decode(b1, l1, true, &s2, &unknown, &err) == 0);
	CHECK(unknown == 0);
	CHECK(cn_jobspec_encode(&s2, b2, sizeof b2, &l2) == 0);
	CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
	CHECK(cn_jobspec_decode(b2, l2, true, &s3, NULL, NULL) == 0);
	CHECK(memcmp(&s2, &s3, sizeof s2) == 0);
	return 0;
}
