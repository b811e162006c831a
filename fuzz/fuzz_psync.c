/* Policy replication messages (core/psync): every decoder of bytes a peer
 * sends. The first byte picks the path, the rest is the peer's bytes:
 *   0: a request we serve (FETCH, SYNC, AUDIT_SYNC) — cn_psync_serve;
 *   1: the reply to our FETCH, 2: to our SYNC, 3: to our AUDIT_SYNC —
 *      cn_psync_result on a request that is really in flight.
 * The replica holds a few signed documents and audit entries, so serving
 * and listing do real work.
 *
 * Oracles: no crash or sanitizer report; a served reply is well-formed
 * msgpack of one object (cn_mp_skip consumes it exactly); serving returns
 * only codes of util/err.h; after any reply the replica still verifies its
 * audit chains and the psync's wants stay bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/policy_mem.h"
#include "core/psync.h"
#include "crypto/identity.h"
#include "util/err.h"
#include "wire/mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                    \
	do {                                                                        \
		if (!(c)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                    \
		}                                                                   \
	} while (0)

static const uint64_t WALL = UINT64_C(1790000000000);

static cn_policy_mem *mem;
static cn_policy *pol;
static cn_sigkey root;

static void setup(void)
{
	uint8_t seed[CN_SIGKEY_SEED_BYTES];
	memset(seed, 7, sizeof seed);
	cn_sigkey_from_seed(&root, seed);
	mem = cn_policy_mem_new();
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, "fuzz-node");
	cn_trust roots;
	cn_trust_init(&roots);
	CHECK(cn_trust_add_root(&roots, cn_sigkey_public(&root)) == 0);
	CHECK(cn_policy_open(&cfg, cn_policy_mem_store(mem), &roots, WALL, &pol, NULL, 0) == 0);
	cn_trust_free(&roots);
	for (int i = 0; i < 8; i++) {
		uint8_t body[16];
		cn_mp_writer w;
		size_t bl;
		cn_mp_writer_init(&w, body, sizeof body);
		cn_mp_put_uint(&w, (uint64_t)i);
		cn_mp_writer_end(&w, &bl);
		char name[16];
		snprintf(name, sizeof name, "n%d", i);
		uint64_t v;
		CHECK(cn_policy_stamp(pol, WALL, &v) == 0);
		cn_doc d;
		CHECK(cn_doc_init(&d, "config", name, v, "fuzz-node", cn_sigkey_public(&root), false,
				  body, bl, NULL, 0) == 0);
		uint8_t canon[CN_DOC_CANON_MAX];
		size_t cl;
		CHECK(cn_doc_canonical(&d, canon, sizeof canon, &cl) == 0);
		cn_sigkey_sign(&root, canon, cl, d.sig);
		int outcome;
		CHECK(cn_policy_apply_local(pol, &d, WALL, &outcome, NULL, 0) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (pol == NULL)
		setup();
	if (size < 1)
		return 0;
	uint8_t path = data[0] & 3;
	data++;
	size--;
	cn_psync *s;
	CHECK(cn_psync_new(pol, &s) == 0);
	cn_psync_set_wall_offset(s, (int64_t)WALL);
	cn_addr peer = {.family = CN_ADDR_V4, .ip = {127, 0, 0, 2}, .port = 7980};
	if (path == 0) {
		uint8_t *reply = NULL;
		size_t rl = 0;
		int rc = cn_psync_serve(s, data, size, 1000, &reply, &rl);
		CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
		if (rc == 0) {
			cn_mp_reader r;
			cn_mp_reader_init(&r, reply, rl);
			CHECK(cn_mp_skip(&r) == 0 && cn_mp_remaining(&r) == 0);
		}
		free(reply);
	} else {
		/* Put requests in flight: an announcement (FETCH) and a digest
		 * that differs (SYNC and AUDIT_SYNC). */
		cn_msg_policy_announce a;
		memset(&a, 0, sizeof a);
		strcpy(a.kind, "config");
		strcpy(a.name, "wanted");
		a.version = 5;
		strcpy(a.writer, "other");
		memset(a.hash, 0x5a, sizeof a.hash);
		cn_psync_on_announce(s, &peer, NULL, &a, 1000);
		uint8_t other[CN_HASH_BYTES];
		memset(other, 0xee, sizeof other);
		cn_psync_on_peer_digest(s, &peer, true, other, 1000);
		cn_addr to;
		uint8_t *buf;
		size_t len;
		uint32_t tag;
		uint8_t want_type = path == 1 ? CN_MSG_POLICY_FETCH
				    : path == 2 ? CN_MSG_POLICY_SYNC
						: CN_MSG_AUDIT_SYNC;
		for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX &&
				cn_psync_next_request(s, &to, &buf, &len, &tag) == 0;
		     i++) {
			bool match = len > 3 && buf[2] == want_type;
			free(buf);
			if (match)
				cn_psync_result(s, tag, data, size, 1001);
		}
		char why[CN_POLICY_WHY_MAX];
		CHECK(cn_policy_audit_verify(pol, NULL, why, sizeof why) == 0);
	}
	cn_psync_free(s);
	return 0;
}
