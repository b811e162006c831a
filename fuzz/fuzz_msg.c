/* Datagram plaintext: messages back to back (wire/msg.h).
 *
 * Oracle: every message that decodes is re-encoded (canonically) and
 * decoded again; the two decoded structs must be identical and a third
 * encoding must equal the second byte for byte. The size predicted by
 * cn_msg_encoded_size must match what was written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t encode(const cn_msg *m, uint8_t *buf)
{
	cn_mp_writer w;
	size_t len = 0;
	cn_mp_writer_init(&w, buf, CN_DATAGRAM_PLAIN_MAX);
	cn_msg_encode(&w, m);
	/* Anything within the limits fits one datagram. */
	CHECK(cn_mp_writer_end(&w, &len) == 0);
	CHECK(len == cn_msg_encoded_size(m));
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_mp_reader r;
	cn_msg_stats st = {0};
	cn_mp_reader_init(&r, data, size);
	while (cn_mp_remaining(&r) > 0) {
		cn_msg m, again;
		const uint8_t *before = r.p;
		int rc = cn_msg_decode(&r, &m, &st);
		CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
		if (rc == CN_EUNKNOWN || rc == CN_EVERSION) {
			CHECK(r.p > before && r.p <= r.end); /* skipped as a whole */
			continue;
		}
		if (rc != 0)
			break;
		CHECK(r.p > before && r.p <= r.end);
		uint8_t b1[CN_DATAGRAM_PLAIN_MAX], b2[CN_DATAGRAM_PLAIN_MAX];
		size_t l1 = encode(&m, b1);
		cn_mp_reader r2;
		cn_mp_reader_init(&r2, b1, l1);
		CHECK(cn_msg_decode(&r2, &again, NULL) == 0);
		CHECK(cn_mp_remaining(&r2) == 0);
		CHECK(memcmp(&m, &again, sizeof m) == 0);
		size_t l2 = encode(&again, b2);
		CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
	}
	return 0;
}
