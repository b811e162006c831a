/* Policy documents and audit entries: cn_doc_decode and
 * cn_policy_audit_decode on arbitrary bytes. The first byte picks the
 * decoder (even: document, odd: audit entry); the rest is the input.
 *
 * Oracles (re-encode): a document that decodes passes cn_doc_validate,
 * encodes to exactly cn_doc_encoded_size bytes within CN_DOC_WIRE_MAX, and
 * those bytes decode to an equal document that encodes to the same bytes;
 * its canonical bytes fit CN_DOC_CANON_MAX; cn_doc_cmp with itself is 0.
 * An audit entry that decodes re-encodes to exactly the input (only the
 * canonical form is accepted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/doc.h"
#include "core/policy.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                    \
	do {                                                                        \
		if (!(c)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                    \
		}                                                                   \
	} while (0)

static uint8_t enc1[CN_DOC_WIRE_MAX], enc2[CN_DOC_WIRE_MAX];

static void fuzz_doc(const uint8_t *data, size_t size)
{
	cn_doc d, back;
	uint64_t unknown = 0;
	int rc = cn_doc_decode(data, size, &d, &unknown);
	if (rc != 0) {
		CHECK(rc < 0 && rc >= CN_ERR_MIN_);
		return;
	}
	CHECK(cn_doc_validate(&d, NULL, 0) == 0);
	CHECK(d.body_len == 0 || (d.body >= data && d.body + d.body_len <= data + size));
	size_t n1 = 0, n2 = 0;
	CHECK(cn_doc_encode(&d, enc1, sizeof enc1, &n1) == 0);
	CHECK(n1 == cn_doc_encoded_size(&d) && n1 <= CN_DOC_WIRE_MAX);
	CHECK(cn_doc_decode(enc1, n1, &back, NULL) == 0);
	CHECK(cn_doc_equal(&d, &back));
	CHECK(cn_doc_encode(&back, enc2, sizeof enc2, &n2) == 0);
	CHECK(n1 == n2 && memcmp(enc1, enc2, n1) == 0);
	uint8_t canon[CN_DOC_CANON_MAX];
	size_t cn = 0;
	CHECK(cn_doc_canonical(&d, canon, sizeof canon, &cn) == 0);
	CHECK(cn_doc_cmp(&d, &back) == 0);
	/* the encoding without unknown keys is never longer */
	CHECK(unknown > 0 || n1 <= size);
}

static void fuzz_audit(const uint8_t *data, size_t size)
{
	cn_audit_entry e;
	int rc = cn_policy_audit_decode(data, size, &e);
	if (rc != 0) {
		CHECK(rc < 0 && rc >= CN_ERR_MIN_);
		return;
	}
	uint8_t out[CN_POLICY_AUDIT_MAX];
	size_t n = 0;
	CHECK(cn_policy_audit_encode(&e, out, sizeof out, &n) == 0);
	CHECK(n == size && memcmp(out, data, n) == 0);
	CHECK(e.seq >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_audit(data + 1, size - 1);
	else
		fuzz_doc(data + 1, size - 1);
	return 0;
}
