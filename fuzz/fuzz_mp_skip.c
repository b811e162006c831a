/* The bounded msgpack reader (wire/mp.h).
 *
 * Oracles:
 * - cn_mp_skip walks the input object by object; each success consumes at
 *   least one byte, and msgpack-c's own parser (safe here: a successful skip
 *   proves every count fits the input) must agree on where the object ends;
 * - every typed read either consumes bytes within the input or fails and
 *   leaves the cursor exactly where it was (the contract in mp.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "util/err.h"
#include "wire/mp.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_read(const cn_mp_reader *r0, int rc, const cn_mp_reader *r)
{
	if (rc == 0)
		CHECK(r->p > r0->p && r->p <= r0->end);
	else
		CHECK(r->p == r0->p && rc < 0 && rc >= CN_ERR_MIN_);
}

static void typed_reads(const cn_mp_reader *r0)
{
	cn_mp_reader r;
	bool b;
	uint64_t u;
	uint32_t u32, n;
	int64_t i;
	double d;
	const char *s;
	const uint8_t *bin;
	int rc;
#define TRY(call) do { r = *r0; rc = (call); check_read(r0, rc, &r); } while (0)
	TRY(cn_mp_read_nil(&r));
	TRY(cn_mp_read_bool(&r, &b));
	TRY(cn_mp_read_u64(&r, &u));
	TRY(cn_mp_read_u32(&r, &u32));
	TRY(cn_mp_read_i64(&r, &i));
	TRY(cn_mp_read_f64(&r, &d));
	TRY(cn_mp_read_str(&r, &s, &n, 64));
	if (rc == 0)
		CHECK(n <= 64 && (const uint8_t *)s + n <= r0->end);
	TRY(cn_mp_read_bin(&r, &bin, &n, UINT32_MAX));
	if (rc == 0)
		CHECK(bin + n <= r0->end);
	TRY(cn_mp_read_array(&r, &n, UINT32_MAX));
	if (rc == 0)
		CHECK(n <= cn_mp_remaining(&r));
	TRY(cn_mp_read_map(&r, &n, UINT32_MAX));
	if (rc == 0)
		CHECK((uint64_t)n * 2 <= cn_mp_remaining(&r));
#undef TRY
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_mp_reader r;
	cn_mp_reader_init(&r, data, size);
	/* Bounded: every pass either consumes a byte or stops. */
	while (cn_mp_remaining(&r) > 0) {
		typed_reads(&r);
		cn_mp_reader before = r;
		int rc = cn_mp_skip(&r);
		if (rc != 0) {
			CHECK(r.p == before.p);
			CHECK(rc == CN_ETRUNC || rc == CN_ETYPE || rc == CN_EDEPTH);
			break;
		}
		CHECK(r.p > before.p && r.p <= r.end);
		size_t used = (size_t)(r.p - before.p);
		/* One zone for the whole run: a fresh one per input would fill
		 * ASan's quarantine with 8 KiB chunks and trip the RSS limit. */
		static msgpack_zone *zone;
		if (!zone)
			zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
		CHECK(zone != NULL);
		msgpack_object obj;
		size_t off = 0;
		msgpack_unpack_return ret = msgpack_unpack(
			(const char *)before.p, cn_mp_remaining(&before), &off, zone, &obj);
		CHECK(ret == MSGPACK_UNPACK_SUCCESS || ret == MSGPACK_UNPACK_EXTRA_BYTES);
		CHECK(off == used);
		msgpack_zone_clear(zone);
	}
	return 0;
}
