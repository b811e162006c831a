/* Identity blobs: cn_sigkey_from_blob on arbitrary bytes.
 *
 * Oracles: a blob that parses serializes to the canonical blob, which parses
 * to the same key pair; the key signs something its public key verifies and
 * a flipped signature does not; a blob that does not parse leaves the key
 * wiped and says why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
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
	cn_sigkey k, back;
	char why[CN_SIGKEY_WHY_MAX];
	int rc = cn_sigkey_from_blob(&k, data, size, why, sizeof why);
	if (rc != 0) {
		CHECK(rc == CN_EINVAL || rc == CN_EVERSION);
		CHECK(all_zero(&k, sizeof k));
		CHECK(strncmp(why, "identity: ", 10) == 0 && strlen(why) < sizeof why);
		return 0;
	}
	CHECK(why[0] == '\0');
	CHECK(size >= CN_SIGKEY_BLOB_LEN - 1 && size <= CN_SIGKEY_BLOB_LEN + 2);
	uint8_t blob[CN_SIGKEY_BLOB_LEN];
	size_t n = 0;
	CHECK(cn_sigkey_to_blob(&k, blob, sizeof blob, &n) == 0 && n == CN_SIGKEY_BLOB_LEN);
	CHECK(cn_sigkey_from_blob(&back, blob, n, NULL, 0) == 0);
	CHECK(memcmp(&back, &k, sizeof k) == 0);
	/* The canonical blob is the input without the CRs of CRLFs and with a
	 * final LF. */
	uint8_t norm[CN_SIGKEY_BLOB_LEN + 3];
	size_t nn = 0;
	for (size_t i = 0; i < size; i++)
		if (!(data[i] == '\r' && i + 1 < size && data[i + 1] == '\n'))
			norm[nn++] = data[i];
	if (norm[nn - 1] != '\n')
		norm[nn++] = '\n';
	CHECK(nn == n && memcmp(norm, blob, n) == 0);

	uint8_t sig[CN_SIG_BYTES];
	cn_sigkey_sign(&k, data, size, sig);
	CHECK(cn_sigkey_verify(cn_sigkey_public(&k), data, size, sig) == 0);
	sig[size % CN_SIG_BYTES] ^= 1;
	CHECK(cn_sigkey_verify(cn_sigkey_public(&k), data, size, sig) == CN_EAUTH);
	char id[CN_NODE_ID_SIZE];
	cn_sigkey_node_id(cn_sigkey_public(&k), id);
	CHECK(strlen(id) == CN_NODE_ID_LEN);
	cn_sigkey_wipe(&k);
	cn_sigkey_wipe(&back);
	return 0;
}
