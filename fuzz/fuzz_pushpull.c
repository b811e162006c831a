/* Push-pull stream messages (wire/msg.h).
 *
 * Oracle: a message that decodes is re-encoded canonically (header plus
 * every member the callback saw) and decoded again; the header must be
 * equal and the members must re-encode to the same bytes. A decode that
 * fails must not have called the callback at all (validation comes first).
 * The lazy decoder (metadata left as bytes) must agree with it on the
 * result, the unknown keys and, metadata decoded, every member. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	cn_mp_writer w;
	uint32_t calls;
};

static int on_member(void *ctx, const cn_member_wire *ms)
{
	struct sink *s = ctx;
	s->calls++;
	cn_pushpull_encode_member(&s->w, ms);
	return 0;
}

/* cn_pushpull_decode_lazy: the metadata left as bytes must decode (it was
 * validated) to what the eager decoder gives; re-encoded, the members
 * must come out as the eager ones did. */
static int on_member_lazy(void *ctx, const cn_member_wire *ms)
{
	static cn_member_wire full;
	struct sink *s = ctx;
	s->calls++;
	CHECK(ms->meta_raw != NULL && ms->meta_len > 0);
	full = *ms;
	CHECK(cn_member_wire_meta(ms, &full.meta) == 0);
	cn_pushpull_encode_member(&s->w, &full);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Canonical members are never longer than the ones they came from,
	 * so twice the input plus a header always holds the re-encoding. */
	size_t cap = 2 * size + 256;
	/* Buffers live for the whole run and only grow: a malloc/free per
	 * input fills ASan's quarantine and trips the RSS limit. */
	static uint8_t *members, *msg, *again, *lazy;
	static size_t have;
	if (cap > have) {
		free(members), free(msg), free(again), free(lazy);
		members = malloc(cap), msg = malloc(cap + 64), again = malloc(cap);
		lazy = malloc(cap);
		CHECK(members && msg && again && lazy);
		have = cap;
	}
	struct sink s = {.calls = 0};
	cn_mp_writer_init(&s.w, members, cap);
	cn_pushpull pp, pp2;
	uint8_t type = 0, type2 = 0;
	cn_msg_stats st = {0};
	int rc = cn_pushpull_decode(data, size, &type, &pp, on_member, &s, &st);
	CHECK(rc <= 0 && rc >= CN_ERR_MIN_);
	struct sink sl = {.calls = 0};
	cn_mp_writer_init(&sl.w, lazy, cap);
	cn_pushpull ppl;
	uint8_t typel = 0;
	cn_msg_stats stl = {0};
	CHECK(cn_pushpull_decode_lazy(data, size, &typel, &ppl, on_member_lazy, &sl, &stl) == rc);
	CHECK(sl.calls == s.calls && stl.unknown_keys == st.unknown_keys);
	if (rc != 0) {
		CHECK(s.calls == 0);
		return 0;
	}
	size_t llen;
	CHECK(cn_mp_writer_end(&sl.w, &llen) == 0);
	CHECK(typel == type && memcmp(&ppl, &pp, sizeof pp) == 0);
	CHECK(type == CN_MSG_PUSH_PULL || type == CN_MSG_PUSH_PULL_REPLY);
	CHECK(s.calls == pp.n_members && pp.n_members <= CN_PUSHPULL_MEMBERS_MAX);
	size_t mlen, hlen;
	CHECK(cn_mp_writer_end(&s.w, &mlen) == 0);
	CHECK(llen == mlen && memcmp(lazy, members, mlen) == 0);
	cn_mp_writer w;
	cn_mp_writer_init(&w, msg, 64 + cap);
	cn_pushpull_encode_begin(&w, type, &pp, pp.n_members);
	CHECK(cn_mp_writer_end(&w, &hlen) == 0);
	memcpy(msg + hlen, members, mlen);

	struct sink s2 = {.calls = 0};
	cn_mp_writer_init(&s2.w, again, cap);
	CHECK(cn_pushpull_decode(msg, hlen + mlen, &type2, &pp2, on_member, &s2, NULL) == 0);
	CHECK(type2 == type && memcmp(&pp, &pp2, sizeof pp) == 0);
	size_t alen;
	CHECK(cn_mp_writer_end(&s2.w, &alen) == 0);
	CHECK(alen == mlen && memcmp(again, members, mlen) == 0);
	return 0;
}
