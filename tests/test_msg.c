/* Unit tests for src/wire/msg: round trips of every message type with
 * minimal and maximal fields, forward-compatibility rules, limits, hostile
 * input (truncation at every offset, random mutations) and the committed
 * vectors in proto/vectors. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
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

static void rollout_fill(cn_meta *m, unsigned n)
{
	m->n_rollout = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		m->rollout[i] = (cn_rollout_report){UINT64_MAX - i, UINT32_MAX - i,
						    CN_ROLLOUT_STAGE_MAX, 255, 0};
}

static void meta_roundtrip(const cn_meta *m, cn_meta *out, size_t *len)
{
	uint8_t buf[2 * CN_META_WIRE_MAX];
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_meta_encode(&w, m);
	ck_assert_int_eq(cn_mp_writer_end(&w, len), 0);
	ck_assert_uint_le(*len, CN_META_WIRE_MAX);
	cn_mp_reader r;
	cn_mp_reader_init(&r, buf, *len);
	ck_assert_int_eq(cn_meta_decode(&r, out, NULL), 0);
}

/* Rollout reports fill what the other fields leave of CN_META_WIRE_MAX:
 * all eight next to typical metadata, fewer next to maximal labels, and
 * cn_meta_rollout_fit trims the struct to exactly what goes out. */
START_TEST(rollout_reports_fit_the_budget)
{
	cn_meta m, d;
	size_t len;
	meta_min(&m);
	strcpy(m.arch, "arm64");
	rollout_fill(&m, CN_ROLLOUT_REPORTS_MAX);
	meta_roundtrip(&m, &d, &len);
	ck_assert_uint_eq(d.n_rollout, CN_ROLLOUT_REPORTS_MAX);
	ck_assert_int_eq(memcmp(&m, &d, sizeof m), 0);
	ck_assert_uint_eq(cn_meta_rollout_fit(&m), CN_ROLLOUT_REPORTS_MAX);

	meta_max(&m);
	rollout_fill(&m, CN_ROLLOUT_REPORTS_MAX);
	meta_roundtrip(&m, &d, &len);
	ck_assert_uint_lt(d.n_rollout, CN_ROLLOUT_REPORTS_MAX);
	ck_assert_uint_ge(d.n_rollout, 1); /* 993 + 2 + 20 <= 1024 */
	unsigned k = cn_meta_rollout_fit(&m);
	ck_assert_uint_eq(k, d.n_rollout);
	ck_assert_uint_eq(memcmp(m.rollout, d.rollout, sizeof m.rollout), 0);
	ck_assert_uint_gt(len + 20, CN_META_WIRE_MAX); /* the next one would not fit */
}
END_TEST

static void workloads_fill(cn_meta *m, unsigned n)
{
	m->n_workloads = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		m->workloads[i] = (cn_workload_report){UINT64_MAX - i, 0x80000000u + i, UINT32_MAX,
						       (uint16_t)(60000 + i), 255, 0};
}

/* Workload reports take what rollout reports leave: all sixteen next to
 * typical metadata with all eight rollouts; next to maximal labels the
 * rollouts come first and the workloads are cut (possibly to none), and
 * the struct trimmed by cn_meta_rollout_fit decodes to itself. */
START_TEST(workload_reports_fit_after_rollouts)
{
	cn_meta m, d;
	size_t len;
	meta_min(&m);
	strcpy(m.arch, "arm64");
	rollout_fill(&m, CN_ROLLOUT_REPORTS_MAX);
	workloads_fill(&m, CN_WORKLOAD_REPORTS_MAX);
	meta_roundtrip(&m, &d, &len);
	ck_assert_uint_eq(d.n_rollout, CN_ROLLOUT_REPORTS_MAX);
	ck_assert_uint_eq(d.n_workloads, CN_WORKLOAD_REPORTS_MAX);
	ck_assert_int_eq(memcmp(&m, &d, sizeof m), 0);

	meta_max(&m);
	rollout_fill(&m, CN_ROLLOUT_REPORTS_MAX);
	workloads_fill(&m, CN_WORKLOAD_REPORTS_MAX);
	meta_roundtrip(&m, &d, &len);
	ck_assert_uint_ge(d.n_rollout, 1);
	ck_assert_uint_lt(d.n_workloads, CN_WORKLOAD_REPORTS_MAX);
	ck_assert_uint_eq(cn_meta_rollout_fit(&m), d.n_rollout);
	ck_assert_uint_eq(m.n_workloads, d.n_workloads);
	/* (accelerators come back sorted, so compare the reports alone) */
	ck_assert_int_eq(memcmp(m.rollout, d.rollout, sizeof m.rollout), 0);
	ck_assert_int_eq(memcmp(m.workloads, d.workloads, sizeof m.workloads), 0);

	/* Labels at the limit and no rollout: the workloads get the room. */
	meta_max(&m);
	workloads_fill(&m, CN_WORKLOAD_REPORTS_MAX);
	meta_roundtrip(&m, &d, &len);
	ck_assert_uint_eq(d.n_rollout, 0);
	ck_assert_uint_ge(d.n_workloads, 1); /* 993 + 2 + 25 <= 1024 */
	ck_assert_uint_gt(len + 25, CN_META_WIRE_MAX); /* the next one would not fit */
}
END_TEST

/* ---- explicit rules ------------------------------------------------- */

static int decode_one(const uint8_t *b, size_t len, cn_msg *m, cn_msg_stats *st)
{
	cn_mp_reader r;
	cn_mp_reader_init(&r, b, len);
	return cn_msg_decode(&r, m, st);
}

/* Builds a message by hand so tests can break the rules the encoder keeps. */
static size_t raw_ping(uint8_t *buf, size_t cap, int n_fields, bool extra_key,
		       const char *target, size_t target_len)
{
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_array(&w, 3);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_uint(&w, CN_MSG_PING);
	cn_mp_put_map(&w, (uint32_t)(n_fields + extra_key));
	if (n_fields >= 1)
		cn_mp_put_uint(&w, CN_K_SEQ), cn_mp_put_uint(&w, 9);
	if (n_fields >= 2)
		cn_mp_put_uint(&w, CN_K_TARGET), cn_mp_put_str(&w, target, target_len);
	if (extra_key)
		cn_mp_put_uint(&w, 77), cn_mp_put_map(&w, 1), cn_mp_put_cstr(&w, "x"),
			cn_mp_put_array(&w, 0);
	if (n_fields >= 3)
		cn_mp_put_uint(&w, CN_K_SOURCE), cn_mp_put_cstr(&w, "a");
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	return len;
}

START_TEST(unknown_key_ignored_and_counted)
{
	uint8_t b[256];
	size_t len = raw_ping(b, sizeof b, 3, true, "b", 1);
	cn_msg m;
	cn_msg_stats st = {0};
	ck_assert_int_eq(decode_one(b, len, &m, &st), 0);
	ck_assert_uint_eq(st.unknown_keys, 1);
	ck_assert_uint_eq(m.u.ping.seq, 9);
	ck_assert_str_eq(m.u.ping.target, "b");
	ck_assert_str_eq(m.u.ping.source, "a");
	/* NULL stats are allowed. */
	ck_assert_int_eq(decode_one(b, len, &m, NULL), 0);
}
END_TEST

START_TEST(unknown_type_skipped)
{
	uint8_t b[256];
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, b, sizeof b);
	cn_mp_put_array(&w, 3);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_uint(&w, 12);
	cn_mp_put_map(&w, 1);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_array(&w, 2), cn_mp_put_nil(&w), cn_mp_put_cstr(&w, "zz");
	size_t first = w.len;
	cn_msg m;
	sample(CN_MSG_NACK, false, &m);
	cn_msg_encode(&w, &m);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);

	cn_mp_reader r;
	cn_msg_stats st = {0};
	cn_mp_reader_init(&r, b, len);
	ck_assert_int_eq(cn_msg_decode(&r, &m, &st), CN_EUNKNOWN);
	ck_assert_uint_eq(st.unknown_types, 1);
	ck_assert_ptr_eq(r.p, b + first);
	ck_assert_int_eq(cn_msg_decode(&r, &m, &st), 0);
	ck_assert_uint_eq(m.type, CN_MSG_NACK);
	ck_assert_uint_eq(cn_mp_remaining(&r), 0);
}
END_TEST

START_TEST(missing_required_field)
{
	uint8_t b[256];
	cn_msg m;
	for (int n = 0; n < 3; n++) {
		size_t len = raw_ping(b, sizeof b, n, n == 1, "b", 1);
		ck_assert_int_eq(decode_one(b, len, &m, NULL), CN_EMISSING);
	}
}
END_TEST

START_TEST(over_limit_strings)
{
	uint8_t b[512];
	char name[CN_NAME_MAX + 2];
	cn_msg m;
	fill(name, CN_NAME_MAX, 'x');
	size_t len = raw_ping(b, sizeof b, 3, false, name, CN_NAME_MAX);
	ck_assert_int_eq(decode_one(b, len, &m, NULL), 0);
	ck_assert_uint_eq(strlen(m.u.ping.target), CN_NAME_MAX);
	fill(name, CN_NAME_MAX + 1, 'x');
	len = raw_ping(b, sizeof b, 3, false, name, CN_NAME_MAX + 1);
	ck_assert_int_eq(decode_one(b, len, &m, NULL), CN_ELIMIT);
	len = raw_ping(b, sizeof b, 3, false, "a\x1f", 2);
	ck_assert_int_eq(decode_one(b, len, &m, NULL), CN_EINVAL);
	len = raw_ping(b, sizeof b, 3, false, "", 0);
	ck_assert_int_eq(decode_one(b, len, &m, NULL), CN_EINVAL);
}
END_TEST

static size_t raw_labels(uint8_t *buf, size_t cap, const char *k1, const char *k2)
{
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, 1);
	cn_mp_put_uint(&w, CN_K_M_LABELS);
	cn_mp_put_map(&w, 2);
	cn_mp_put_cstr(&w, k1), cn_mp_put_cstr(&w, "v");
	cn_mp_put_cstr(&w, k2), cn_mp_put_cstr(&w, "v");
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	return len;
}

START_TEST(labels_must_be_sorted_and_unique)
{
	uint8_t b[128];
	cn_meta m;
	cn_mp_reader r;
	size_t len = raw_labels(b, sizeof b, "a", "b");
	cn_mp_reader_init(&r, b, len);
	ck_assert_int_eq(cn_meta_decode(&r, &m, NULL), 0);
	ck_assert_uint_eq(m.n_labels, 2);
	ck_assert_str_eq(cn_meta_get_label(&m, "b"), "v");
	ck_assert_uint_eq(m.battery_pct, 255); /* absent means unknown */
	len = raw_labels(b, sizeof b, "b", "a");
	cn_mp_reader_init(&r, b, len);
	ck_assert_int_eq(cn_meta_decode(&r, &m, NULL), CN_EINVAL);
	len = raw_labels(b, sizeof b, "a", "a");
	cn_mp_reader_init(&r, b, len);
	ck_assert_int_eq(cn_meta_decode(&r, &m, NULL), CN_EINVAL);
}
END_TEST

START_TEST(set_label_keeps_order_and_limits)
{
	cn_meta m;
	meta_min(&m);
	ck_assert_int_eq(cn_meta_set_label(&m, "zone", "b"), 0);
	ck_assert_int_eq(cn_meta_set_label(&m, "arch", "x"), 0);
	ck_assert_int_eq(cn_meta_set_label(&m, "role", "cam"), 0);
	ck_assert_int_eq(cn_meta_set_label(&m, "zone", "a"), 0); /* replace */
	ck_assert_uint_eq(m.n_labels, 3);
	ck_assert_str_eq(m.labels[0].key, "arch");
	ck_assert_str_eq(m.labels[1].key, "role");
	ck_assert_str_eq(m.labels[2].key, "zone");
	ck_assert_str_eq(cn_meta_get_label(&m, "zone"), "a");
	ck_assert_ptr_null(cn_meta_get_label(&m, "nope"));
	ck_assert_int_eq(cn_meta_set_label(&m, "", "x"), CN_EINVAL);
	ck_assert_int_eq(cn_meta_set_label(&m, "a\tb", "x"), CN_EINVAL);
	ck_assert_int_eq(cn_meta_set_label(&m, "k", "line\n"), CN_EINVAL);
	char longk[CN_LABEL_KEY_MAX + 2], longv[CN_LABEL_VALUE_MAX + 2];
	fill(longk, CN_LABEL_KEY_MAX + 1, 'k');
	fill(longv, CN_LABEL_VALUE_MAX + 1, 'v');
	ck_assert_int_eq(cn_meta_set_label(&m, longk, "x"), CN_EINVAL);
	ck_assert_int_eq(cn_meta_set_label(&m, "k", longv), CN_EINVAL);
	/* Fill up: the label count or the text budget runs out first, and
	 * the result always encodes within CN_META_WIRE_MAX. */
	meta_min(&m);
	longv[CN_LABEL_VALUE_MAX] = '\0';
	int rc = 0, i = 0;
	for (; i < 64 && rc == 0; i++) {
		char k[8];
		snprintf(k, sizeof k, "k%02d", i);
		rc = cn_meta_set_label(&m, k, longv);
	}
	ck_assert_int_eq(rc, CN_EFULL);
	ck_assert_uint_eq(m.n_labels, CN_LABELS_TEXT_MAX / (3 + CN_LABEL_VALUE_MAX));
	for (i = 1; i < m.n_labels; i++)
		ck_assert_int_lt(strcmp(m.labels[i - 1].key, m.labels[i].key), 0);
	meta_min(&m);
	for (i = 0; i < CN_LABELS_MAX; i++) {
		char k[8];
		snprintf(k, sizeof k, "%02d", CN_LABELS_MAX - i);
		ck_assert_int_eq(cn_meta_set_label(&m, k, "v"), 0);
	}
	ck_assert_int_eq(cn_meta_set_label(&m, "extra", "v"), CN_EFULL);
	ck_assert_int_eq(cn_meta_set_label(&m, "01", "w"), 0); /* replace still works */
}
END_TEST

START_TEST(names_for_logs)
{
	ck_assert_str_eq(cn_msg_type_name(CN_MSG_PING_REQ), "ping-req");
	ck_assert_str_eq(cn_msg_type_name(CN_MSG_PUSH_PULL_REPLY), "push-pull-reply");
	ck_assert_str_eq(cn_msg_type_name(200), "unknown");
	ck_assert_str_eq(cn_member_state_name(CN_STATE_DEAD), "failed");
	ck_assert_str_eq(cn_member_state_name(9), "unknown");
}
END_TEST

/* ---- push-pull ------------------------------------------------------ */

static void sample_member(uint32_t i, cn_member_wire *ms)
{
	memset(ms, 0, sizeof *ms);
	snprintf(ms->name, sizeof ms->name, "node-%05u", (unsigned)i);
	addr_v4(&ms->addr);
	ms->addr.ip[3] = (uint8_t)i;
	ms->incarnation = i * 7u;
	ms->state = (uint8_t)(i % 4);
	ms->meta_version = i;
	if (i % 3 == 0)
		meta_max(&ms->meta);
	else
		meta_min(&ms->meta);
	sort_accel(&ms->meta);
	ms->vmin = 1;
	ms->vmax = (uint8_t)(1 + i % 3);
	if (ms->state >= CN_STATE_DEAD && i % 5 != 0) { /* i % 5 == 0: an older sender */
		ms->has_down_ms = true;
		ms->down_ms = i % 7 == 0 ? UINT32_MAX : i * 1000u;
	}
}

struct collect {
	uint32_t n, stop_at;
	bool ok;
};

static int check_member(void *ctx, const cn_member_wire *ms)
{
	struct collect *c = ctx;
	cn_member_wire want;
	sample_member(c->n, &want);
	c->ok = c->ok && memcmp(&want, ms, sizeof want) == 0;
	c->n++;
	return c->n == c->stop_at ? 42 : 0;
}

static size_t encode_pushpull(uint8_t *buf, size_t cap, uint8_t type, const cn_pushpull *pp,
			      uint32_t n)
{
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, cap);
	cn_pushpull_encode_begin(&w, type, pp, n);
	for (uint32_t i = 0; i < n; i++) {
		cn_member_wire ms;
		sample_member(i, &ms);
		cn_pushpull_encode_member(&w, &ms);
	}
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	return len;
}

START_TEST(pushpull_roundtrip)
{
	enum { N = 300 };
	size_t cap = N * 1200 + 256;
	uint8_t *buf = malloc(cap);
	cn_pushpull pp = {.join = true, .has_policy_digest = true}, out;
	strcpy(pp.source, "node-a");
	memset(pp.policy_digest, 0xab, sizeof pp.policy_digest);
	size_t len = encode_pushpull(buf, cap, CN_MSG_PUSH_PULL_REPLY, &pp, N);
	uint8_t type = 0;
	struct collect c = {.stop_at = UINT32_MAX, .ok = true};
	cn_msg_stats st = {0};
	ck_assert_int_eq(cn_pushpull_decode(buf, len, &type, &out, check_member, &c, &st), 0);
	ck_assert_uint_eq(type, CN_MSG_PUSH_PULL_REPLY);
	ck_assert(c.ok);
	ck_assert_uint_eq(c.n, N);
	ck_assert_uint_eq(out.n_members, N);
	ck_assert(out.join && out.has_policy_digest);
	ck_assert_str_eq(out.source, "node-a");
	ck_assert_mem_eq(out.policy_digest, pp.policy_digest, CN_HASH_BYTES);
	ck_assert_uint_eq(st.unknown_keys, 0);

	/* A callback's non-zero return stops decoding and is returned. */
	c = (struct collect){.stop_at = 5, .ok = true};
	ck_assert_int_eq(cn_pushpull_decode(buf, len, &type, &out, check_member, &c, NULL), 42);
	ck_assert_uint_eq(c.n, 5);

	/* Empty, no digest. */
	pp.has_policy_digest = false;
	pp.join = false;
	len = encode_pushpull(buf, cap, CN_MSG_PUSH_PULL, &pp, 0);
	c = (struct collect){.stop_at = UINT32_MAX, .ok = true};
	ck_assert_int_eq(cn_pushpull_decode(buf, len, &type, &out, check_member, &c, NULL), 0);
	ck_assert_uint_eq(type, CN_MSG_PUSH_PULL);
	ck_assert(!out.join && !out.has_policy_digest);
	ck_assert_uint_eq(c.n, 0);
	free(buf);
}
END_TEST

static int count_calls(void *ctx, const cn_member_wire *ms)
{
	(void)ms;
	(*(uint32_t *)ctx)++;
	return 0;
}

static int keep_member(void *ctx, const cn_member_wire *ms)
{
	*(cn_member_wire *)ctx = *ms;
	return 0;
}

/* One member in a push-pull reply; returns its length. */
static size_t pushpull_one(uint8_t *buf, size_t cap, const cn_member_wire *ms)
{
	cn_pushpull pp = {.join = false};
	strcpy(pp.source, "a");
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, cap);
	cn_pushpull_encode_begin(&w, CN_MSG_PUSH_PULL_REPLY, &pp, 1);
	cn_pushpull_encode_member(&w, ms);
	ck_assert_int_eq(cn_mp_writer_end(&w, &len), 0);
	return len;
}

/* Member-state key 10 (down_ms): written last, only for failed and left
 * members, read back by both decoders; an alive member's bytes do not
 * change; a wrong type or a value above 32 bits is refused. */
START_TEST(pushpull_down_ms)
{
	uint8_t buf[4096], plain[4096];
	cn_member_wire ms, got;
	cn_pushpull out;
	uint8_t type;
	memset(&ms, 0, sizeof ms);
	strcpy(ms.name, "x");
	addr_v4(&ms.addr);
	ms.incarnation = 3;
	ms.vmin = ms.vmax = 1;
	ms.meta.battery_pct = 255;
	cn_meta_set_label(&ms.meta, "zone", "a");
	for (uint8_t st = CN_STATE_ALIVE; st <= CN_STATE_LEFT; st++) {
		ms.state = st;
		ms.has_down_ms = false;
		ms.down_ms = 0;
		size_t plen = pushpull_one(plain, sizeof plain, &ms);
		ms.has_down_ms = true;
		ms.down_ms = 86400000;
		size_t len = pushpull_one(buf, sizeof buf, &ms);
		bool down = st >= CN_STATE_DEAD;
		/* 0x0a (key 10), 0xce + 4 bytes: 6 more bytes, at the end. */
		ck_assert_uint_eq(len, plen + (down ? 6 : 0));
		static const uint8_t tail[] = {0x0a, 0xce, 0x05, 0x26, 0x5c, 0x00};
		if (down)
			ck_assert_mem_eq(buf + plen, tail, sizeof tail);
		if (!down)
			ck_assert_mem_eq(buf, plain, len); /* alive and suspect: as before */
		for (int lazy = 0; lazy < 2; lazy++) {
			memset(&got, 0xff, sizeof got);
			int rc = lazy ? cn_pushpull_decode_lazy(buf, len, &type, &out, keep_member, &got, NULL)
				      : cn_pushpull_decode(buf, len, &type, &out, keep_member, &got, NULL);
			ck_assert_int_eq(rc, 0);
			ck_assert_uint_eq(got.state, st);
			ck_assert(got.has_down_ms == down);
			ck_assert_uint_eq(got.down_ms, down ? 86400000 : 0);
			/* Absent (an older sender): no age. */
			rc = lazy ? cn_pushpull_decode_lazy(plain, plen, &type, &out, keep_member, &got, NULL)
				  : cn_pushpull_decode(plain, plen, &type, &out, keep_member, &got, NULL);
			ck_assert_int_eq(rc, 0);
			ck_assert(!got.has_down_ms);
			ck_assert_uint_eq(got.down_ms, 0);
		}
	}
	/* UINT32_MAX is the largest age; the value is the last thing written. */
	ms.state = CN_STATE_LEFT;
	ms.down_ms = UINT32_MAX;
	size_t len = pushpull_one(buf, sizeof buf, &ms);
	ck_assert_int_eq(cn_pushpull_decode(buf, len, &type, &out, keep_member, &got, NULL), 0);
	ck_assert_uint_eq(got.down_ms, UINT32_MAX);
	/* Patch the value: a string of the same size (0xa4 + 4 bytes) is
	 * CN_ETYPE, a uint64 above 32 bits CN_ERANGE, for both decoders. */
	ck_assert_uint_eq(buf[len - 5], 0xce);
	memcpy(buf + len - 5, "\xa4" "9000", 5);
	uint32_t calls = 0;
	ck_assert_int_eq(cn_pushpull_decode(buf, len, &type, &out, count_calls, &calls, NULL),
			 CN_ETYPE);
	ck_assert_int_eq(cn_pushpull_decode_lazy(buf, len, &type, &out, count_calls, &calls, NULL),
			 CN_ETYPE);
	ck_assert_uint_eq(calls, 0);
	uint8_t big[4096];
	memcpy(big, buf, len - 5);
	memcpy(big + len - 5, "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9);
	ck_assert_int_eq(cn_pushpull_decode(big, len + 4, &type, &out, count_calls, &calls, NULL),
			 CN_ERANGE);
	ck_assert_int_eq(cn_pushpull_decode_lazy(big, len + 4, &type, &out, count_calls, &calls, NULL),
			 CN_ERANGE);
	ck_assert_uint_eq(calls, 0);
}
END_TEST

/* The lazy decoder: same members, metadata left as bytes that
 * cn_member_wire_meta decodes to what was sent; the raw encoder writes
 * the same bytes as the ordinary one. */
static int check_member_lazy(void *ctx, const cn_member_wire *ms)
{
	struct collect *c = ctx;
	cn_member_wire want, got;
	sample_member(c->n, &want);
	got = *ms;
	c->ok = c->ok && ms->meta_raw != NULL && ms->meta_len > 0;
	c->ok = c->ok && cn_member_wire_meta(ms, &got.meta) == 0;
	got.meta_raw = NULL;
	got.meta_len = 0;
	c->ok = c->ok && memcmp(&want, &got, sizeof want) == 0;
	c->n++;
	return 0;
}

START_TEST(pushpull_lazy_and_raw)
{
	enum { N = 50 };
	size_t cap = N * 1200 + 256;
	uint8_t *buf = malloc(cap), *raw = malloc(cap), meta[CN_META_WIRE_MAX];
	cn_pushpull pp = {.join = false}, out;
	strcpy(pp.source, "node-a");
	size_t len = encode_pushpull(buf, cap, CN_MSG_PUSH_PULL, &pp, N);
	uint8_t type = 0;
	struct collect c = {.stop_at = UINT32_MAX, .ok = true};
	cn_msg_stats st = {0};
	ck_assert_int_eq(cn_pushpull_decode_lazy(buf, len, &type, &out, check_member_lazy, &c, &st),
			 0);
	ck_assert(c.ok);
	ck_assert_uint_eq(c.n, N);
	ck_assert_uint_eq(st.unknown_keys, 0);

	cn_mp_writer w;
	size_t rlen;
	cn_mp_writer_init(&w, raw, cap);
	cn_pushpull_encode_begin(&w, CN_MSG_PUSH_PULL, &pp, N);
	for (uint32_t i = 0; i < N; i++) {
		cn_member_wire ms;
		cn_mp_writer mw;
		size_t mlen;
		sample_member(i, &ms);
		cn_mp_writer_init(&mw, meta, sizeof meta);
		cn_meta_encode(&mw, &ms.meta);
		ck_assert_int_eq(cn_mp_writer_end(&mw, &mlen), 0);
		memset(&ms.meta, 0, sizeof ms.meta); /* not read */
		cn_pushpull_encode_member_raw(&w, &ms, meta, mlen);
	}
	ck_assert_int_eq(cn_mp_writer_end(&w, &rlen), 0);
	ck_assert_uint_eq(rlen, len);
	ck_assert_mem_eq(raw, buf, len);
	free(buf);
	free(raw);
}
END_TEST

START_TEST(pushpull_validated_before_callbacks)
{
	enum { N = 20 };
	size_t cap = N * 1200 + 256;
	uint8_t *buf = malloc(cap);
	cn_pushpull pp = {.join = false}, out;
	strcpy(pp.source, "node-a");
	size_t len = encode_pushpull(buf, cap, CN_MSG_PUSH_PULL, &pp, N);
	/* Every strict prefix fails and never reaches the callback. */
	for (size_t cut = 0; cut < len; cut++) {
		uint32_t calls = 0;
		uint8_t type;
		int rc = cn_pushpull_decode(buf, cut, &type, &out, count_calls, &calls, NULL);
		ck_assert_int_lt(rc, 0);
		ck_assert_uint_eq(calls, 0);
	}
	free(buf);
}
END_TEST

/* ---- vectors -------------------------------------------------------- */

enum { LINES_MAX = 1024, LINE_STORE = 1 << 17 };

struct lines {
	int n;
	size_t used;
	char *v[LINES_MAX];
	char store[LINE_STORE];
};

static void add(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct lines *l, const char *fmt, ...)
{
	va_list ap;
	ck_assert_int_lt(l->n, LINES_MAX);
	va_start(ap, fmt);
	int n = vsnprintf(l->store + l->used, LINE_STORE - l->used, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < LINE_STORE - l->used);
	l->v[l->n++] = l->store + l->used;
	l->used += (size_t)n + 1;
}

static const char *err_name(int rc)
{
	static const char *names[] = {
		"ok",          "CN_ETRUNC",   "CN_ETYPE",    "CN_ERANGE",  "CN_ELIMIT",
		"CN_EDEPTH",   "CN_EMISSING", "CN_EVERSION", "CN_EUNKNOWN", "CN_ETRAILING",
		"CN_ENOSPACE", "CN_EAUTH",    "CN_ENOKEY",   "CN_EINVAL",
	};
	return rc <= 0 && -rc < (int)(sizeof names / sizeof names[0]) ? names[-rc] : "other";
}

static void hex(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void render_meta(struct lines *l, const char *p, const cn_meta *m)
{
	for (int i = 0; i < m->n_labels; i++)
		add(l, "%smeta.label.%s = %s", p, m->labels[i].key, m->labels[i].value);
	for (int i = 0; i < m->n_accel; i++)
		add(l, "%smeta.accel.%s = %u", p, m->accel[i].kind, (unsigned)m->accel[i].count);
	if (m->arch[0])
		add(l, "%smeta.arch = %s", p, m->arch);
	if (m->os[0])
		add(l, "%smeta.os = %s", p, m->os);
	if (m->cpus)
		add(l, "%smeta.cpus = %u", p, (unsigned)m->cpus);
	if (m->mem_mb)
		add(l, "%smeta.mem_mb = %u", p, (unsigned)m->mem_mb);
	if (m->load_milli)
		add(l, "%smeta.load_milli = %u", p, (unsigned)m->load_milli);
	if (m->mem_free_mb)
		add(l, "%smeta.mem_free_mb = %u", p, (unsigned)m->mem_free_mb);
	if (m->power)
		add(l, "%smeta.power = %u", p, (unsigned)m->power);
	if (m->battery_pct != 255)
		add(l, "%smeta.battery_pct = %u", p, (unsigned)m->battery_pct);
	for (int i = 0; i < m->n_rollout; i++)
		add(l, "%smeta.rollout.%d = %08x %llu %u %u", p, i, (unsigned)m->rollout[i].job_hash,
		    (unsigned long long)m->rollout[i].version, (unsigned)m->rollout[i].done_stage,
		    (unsigned)m->rollout[i].flags);
	for (int i = 0; i < m->n_workloads; i++)
		add(l, "%smeta.workload.%d = %08x %u %u %u %llu", p, i,
		    (unsigned)m->workloads[i].job_hash, (unsigned)m->workloads[i].replica,
		    (unsigned)m->workloads[i].state, (unsigned)m->workloads[i].restarts,
		    (unsigned long long)m->workloads[i].version);
}

static void render_addr(struct lines *l, const char *p, const char *field, const cn_addr *a)
{
	char s[CN_ADDR_STR_MAX];
	cn_addr_format(a, s, sizeof s);
	add(l, "%s%s = %s", p, field, s);
}

static void render_msg(struct lines *l, const char *p, const cn_msg *m)
{
	add(l, "%sversion = %u", p, (unsigned)m->version);
	add(l, "%stype = %s", p, cn_msg_type_name(m->type));
	switch (m->type) {
	case CN_MSG_PING:
		add(l, "%sseq = %u", p, (unsigned)m->u.ping.seq);
		add(l, "%starget = %s", p, m->u.ping.target);
		add(l, "%ssource = %s", p, m->u.ping.source);
		break;
	case CN_MSG_ACK:
		add(l, "%sseq = %u", p, (unsigned)m->u.ack.seq);
		add(l, "%ssource = %s", p, m->u.ack.source);
		if (m->u.ack.has_coord) {
			const cn_coord *c = &m->u.ack.coord;
			char s[512];
			size_t o = 0;
			for (int i = 0; i < CN_COORD_DIM; i++)
				o += (size_t)snprintf(s + o, sizeof s - o, "%.9g ", (double)c->vec[i]);
			snprintf(s + o, sizeof s - o, "%.9g %.9g %.9g", (double)c->height,
				 (double)c->error, (double)c->adjustment);
			add(l, "%scoord = %s", p, s);
		}
		break;
	case CN_MSG_PING_REQ:
		add(l, "%sseq = %u", p, (unsigned)m->u.ping_req.seq);
		add(l, "%starget = %s", p, m->u.ping_req.target);
		add(l, "%ssource = %s", p, m->u.ping_req.source);
		render_addr(l, p, "target_addr", &m->u.ping_req.target_addr);
		add(l, "%swant_nack = %s", p, m->u.ping_req.want_nack ? "true" : "false");
		break;
	case CN_MSG_NACK:
		add(l, "%sseq = %u", p, (unsigned)m->u.nack.seq);
		add(l, "%ssource = %s", p, m->u.nack.source);
		break;
	case CN_MSG_ALIVE: {
		const cn_msg_alive *a = &m->u.alive;
		add(l, "%sname = %s", p, a->name);
		add(l, "%sincarnation = %llu", p, (unsigned long long)a->incarnation);
		render_addr(l, p, "addr", &a->addr);
		add(l, "%smeta_version = %llu", p, (unsigned long long)a->meta_version);
		add(l, "%svmin = %u", p, (unsigned)a->vmin);
		add(l, "%svmax = %u", p, (unsigned)a->vmax);
		render_meta(l, p, &a->meta);
		break;
	}
	case CN_MSG_SUSPECT:
	case CN_MSG_DEAD: {
		const cn_msg_accuse *a = m->type == CN_MSG_SUSPECT ? &m->u.suspect : &m->u.dead;
		add(l, "%sname = %s", p, a->name);
		add(l, "%sincarnation = %llu", p, (unsigned long long)a->incarnation);
		add(l, "%sfrom = %s", p, a->from);
		break;
	}
	case CN_MSG_LEAVE:
		add(l, "%sname = %s", p, m->u.leave.name);
		add(l, "%sincarnation = %llu", p, (unsigned long long)m->u.leave.incarnation);
		break;
	case CN_MSG_META:
		add(l, "%sname = %s", p, m->u.meta.name);
		add(l, "%sincarnation = %llu", p, (unsigned long long)m->u.meta.incarnation);
		add(l, "%smeta_version = %llu", p, (unsigned long long)m->u.meta.meta_version);
		render_meta(l, p, &m->u.meta.meta);
		break;
	case CN_MSG_POLICY_ANNOUNCE: {
		const cn_msg_policy_announce *a = &m->u.announce;
		char h[2 * CN_HASH_BYTES + 1];
		hex(h, a->hash, CN_HASH_BYTES);
		add(l, "%skind = %s", p, a->kind);
		add(l, "%sname = %s", p, a->name);
		add(l, "%sversion = %llu", p, (unsigned long long)a->version);
		add(l, "%swriter = %s", p, a->writer);
		add(l, "%shash = %s", p, h);
		break;
	}
	default:
		ck_abort_msg("render: type %u", m->type);
	}
}

/* Decodes a datagram message by message into lines; appends the canonical
 * re-encoding of every decoded message to re (when re != NULL). */
static void render_datagram(struct lines *l, const uint8_t *b, size_t len, cn_mp_writer *re)
{
	cn_mp_reader r;
	cn_msg_stats st = {0};
	cn_mp_reader_init(&r, b, len);
	for (int i = 0; cn_mp_remaining(&r) > 0; i++) {
		ck_assert_int_lt(i, 1000);
		char p[16];
		cn_msg m;
		snprintf(p, sizeof p, "m%d.", i);
		int rc = cn_msg_decode(&r, &m, &st);
		add(l, "%src = %s", p, err_name(rc));
		if (rc == CN_EUNKNOWN || rc == CN_EVERSION)
			continue;
		if (rc != 0)
			return; /* fatal: no statistics */
		render_msg(l, p, &m);
		if (re)
			cn_msg_encode(re, &m);
	}
	add(l, "unknown_keys = %llu", (unsigned long long)st.unknown_keys);
	add(l, "unknown_types = %llu", (unsigned long long)st.unknown_types);
}

struct render_ctx {
	struct lines *l;
	uint32_t i;
	cn_mp_writer *re;
};

static int render_member(void *ctx, const cn_member_wire *ms)
{
	struct render_ctx *c = ctx;
	char p[32];
	snprintf(p, sizeof p, "member.%u.", (unsigned)c->i++);
	add(c->l, "%sname = %s", p, ms->name);
	render_addr(c->l, p, "addr", &ms->addr);
	add(c->l, "%sincarnation = %llu", p, (unsigned long long)ms->incarnation);
	add(c->l, "%sstate = %s", p, cn_member_state_name(ms->state));
	add(c->l, "%smeta_version = %llu", p, (unsigned long long)ms->meta_version);
	add(c->l, "%svmin = %u", p, (unsigned)ms->vmin);
	add(c->l, "%svmax = %u", p, (unsigned)ms->vmax);
	if (ms->has_down_ms)
		add(c->l, "%sdown_ms = %u", p, (unsigned)ms->down_ms);
	render_meta(c->l, p, &ms->meta);
	if (c->re)
		cn_pushpull_encode_member(c->re, ms);
	return 0;
}

static void render_stream(struct lines *l, const uint8_t *b, size_t len, cn_mp_writer *re,
			  uint8_t *members_buf, size_t members_cap)
{
	cn_mp_writer mw;
	cn_mp_writer_init(&mw, members_buf, members_cap);
	struct render_ctx c = {l, 0, &mw};
	cn_msg_stats st = {0};
	cn_pushpull pp;
	uint8_t type;
	int rc = cn_pushpull_decode(b, len, &type, &pp, render_member, &c, &st);
	add(l, "rc = %s", err_name(rc));
	if (rc)
		return;
	add(l, "type = %s", cn_msg_type_name(type));
	add(l, "join = %s", pp.join ? "true" : "false");
	add(l, "source = %s", pp.source);
	add(l, "members = %u", (unsigned)pp.n_members);
	if (pp.has_policy_digest) {
		char h[2 * CN_HASH_BYTES + 1];
		hex(h, pp.policy_digest, CN_HASH_BYTES);
		add(l, "digest = %s", h);
	}
	add(l, "unknown_keys = %llu", (unsigned long long)st.unknown_keys);
	add(l, "unknown_types = %llu", (unsigned long long)st.unknown_types);
	size_t mlen;
	ck_assert_int_eq(cn_mp_writer_end(&mw, &mlen), 0);
	cn_pushpull_encode_begin(re, type, &pp, pp.n_members);
	msgpack_pack_str_body(&re->pk, members_buf, mlen); /* raw append */
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct vector {
	char name[128];
	bool stream, canonical;
	size_t len;
	uint8_t bytes[8192];
	struct lines want;
};

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void load_vector(const char *path, struct vector *v)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	memset(v, 0, offsetof(struct vector, want));
	v->want.n = 0;
	v->want.used = 0;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		size_t n = strcspn(line, "\n");
		line[n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (strncmp(line, "name: ", 6) == 0) {
			snprintf(v->name, sizeof v->name, "%.100s", line + 6);
		} else if (strncmp(line, "plane: ", 7) == 0) {
			v->stream = strcmp(line + 7, "stream") == 0;
		} else if (strncmp(line, "canonical: ", 11) == 0) {
			v->canonical = strcmp(line + 11, "yes") == 0;
		} else if (strncmp(line, "hex: ", 5) == 0) {
			for (const char *h = line + 5; h[0] && h[1]; h += 2) {
				int hi = unhex(h[0]), lo = unhex(h[1]);
				ck_assert_msg(hi >= 0 && lo >= 0, "%s: bad hex", path);
				ck_assert_uint_lt(v->len, sizeof v->bytes);
				v->bytes[v->len++] = (uint8_t)(hi << 4 | lo);
			}
		} else {
			ck_assert_msg(strstr(line, " = ") != NULL, "%s: bad line '%s'", path, line);
			add(&v->want, "%s", line);
		}
	}
	fclose(f);
	ck_assert_msg(v->name[0] && v->len > 0 && v->want.n > 0, "%s: incomplete", path);
}

enum { VECTOR_PATH_MAX = 4096 + 300 };

/* Every *.vec file in proto/vectors, sorted by name. */
static int list_vectors(char names[][VECTOR_PATH_MAX], int max)
{
	DIR *d = opendir(CN_SOURCE_ROOT "/proto/vectors");
	ck_assert_msg(d != NULL, "cannot open " CN_SOURCE_ROOT "/proto/vectors");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 4 && l < 256 && strcmp(e->d_name + l - 4, ".vec") == 0) {
			ck_assert_int_lt(n, max);
			/* The checkout may live anywhere; the path can be long. */
			int w = snprintf(names[n++], VECTOR_PATH_MAX, "%s/proto/vectors/%.255s",
					 CN_SOURCE_ROOT, e->d_name);
			ck_assert_msg(w > 0 && w < VECTOR_PATH_MAX, "vector path too long");
		}
	}
	closedir(d);
	qsort(names, (size_t)n, VECTOR_PATH_MAX, (int (*)(const void *, const void *))strcmp);
	return n;
}

enum { VECTORS_MAX = 256 };

START_TEST(vectors_decode_and_reencode)
{
	static char names[VECTORS_MAX][VECTOR_PATH_MAX];
	int n = list_vectors(names, VECTORS_MAX);
	ck_assert_int_ge(n, 60);
	struct vector *v = malloc(sizeof *v);
	struct lines *got = malloc(sizeof *got);
	uint8_t *re_buf = malloc(1 << 16), *members = malloc(1 << 16);
	int canonical = 0, hostile = 0;
	for (int i = 0; i < n; i++) {
		load_vector(names[i], v);
		got->n = 0;
		got->used = 0;
		cn_mp_writer re;
		cn_mp_writer_init(&re, re_buf, 1 << 16);
		if (v->stream)
			render_stream(got, v->bytes, v->len, &re, members, 1 << 16);
		else
			render_datagram(got, v->bytes, v->len, &re);
		qsort(got->v, (size_t)got->n, sizeof got->v[0], line_cmp);
		qsort(v->want.v, (size_t)v->want.n, sizeof v->want.v[0], line_cmp);
		for (int j = 0; j < got->n && j < v->want.n; j++)
			ck_assert_msg(strcmp(got->v[j], v->want.v[j]) == 0,
				      "%s: decoded '%s', vector says '%s'", v->name, got->v[j],
				      v->want.v[j]);
		ck_assert_msg(got->n == v->want.n, "%s: %d lines decoded, %d expected", v->name,
			      got->n, v->want.n);
		if (v->canonical) {
			size_t len;
			ck_assert_int_eq(cn_mp_writer_end(&re, &len), 0);
			ck_assert_msg(len == v->len && memcmp(re_buf, v->bytes, len) == 0,
				      "%s: re-encoding differs", v->name);
			canonical++;
		}
		hostile += strncmp(v->name, "hostile-", 8) == 0;
	}
	ck_assert_int_ge(canonical, 15);
	ck_assert_int_ge(hostile, 40);
	free(v);
	free(got);
	free(re_buf);
	free(members);
}
END_TEST

/* ---- hostile input ---------------------------------------------------- */

/* Decodes a datagram; every message that decodes must re-encode and decode
 * to the same struct (the oracle). Returns how many decoded. */
static int datagram_oracle(const uint8_t *b, size_t len, cn_msg *out, int max)
{
	cn_mp_reader r;
	int n = 0;
	cn_mp_reader_init(&r, b, len);
	while (cn_mp_remaining(&r) > 0) {
		cn_msg m, again;
		const uint8_t *before = r.p;
		int rc = cn_msg_decode(&r, &m, NULL);
		if (rc == CN_EUNKNOWN || rc == CN_EVERSION) {
			ck_assert(r.p > before);
			continue;
		}
		if (rc != 0)
			break;
		ck_assert(r.p > before);
		uint8_t e[CN_DATAGRAM_PLAIN_MAX];
		size_t el = encode(&m, e, sizeof e);
		ck_assert_int_eq(decode_one(e, el, &again, NULL), 0);
		ck_assert(memcmp(&m, &again, sizeof m) == 0);
		if (out && n < max)
			out[n] = m;
		n++;
	}
	return n;
}

static int pushpull_any(const uint8_t *b, size_t len)
{
	uint32_t calls = 0;
	uint8_t type;
	cn_pushpull pp;
	int rc = cn_pushpull_decode(b, len, &type, &pp, count_calls, &calls, NULL);
	if (rc)
		ck_assert_uint_eq(calls, 0);
	else
		ck_assert_uint_eq(calls, pp.n_members);
	return rc;
}

START_TEST(truncation_at_every_offset)
{
	static char names[VECTORS_MAX][VECTOR_PATH_MAX];
	int n = list_vectors(names, VECTORS_MAX);
	struct vector *v = malloc(sizeof *v);
	enum { MSGS = 16 };
	cn_msg full[MSGS], part[MSGS];
	for (int i = 0; i < n; i++) {
		load_vector(names[i], v);
		if (v->stream) {
			int rc = pushpull_any(v->bytes, v->len);
			for (size_t cut = 0; cut < v->len; cut++)
				if (rc == 0)
					ck_assert_int_ne(pushpull_any(v->bytes, cut), 0);
				else
					(void)pushpull_any(v->bytes, cut);
			continue;
		}
		int nf = datagram_oracle(v->bytes, v->len, full, MSGS);
		for (size_t cut = 0; cut < v->len; cut++) {
			/* Whatever a prefix yields must be a prefix of the full
			 * decode: never a message the sender did not send. */
			int np = datagram_oracle(v->bytes, cut, part, MSGS);
			ck_assert_int_le(np, nf);
			for (int j = 0; j < np && j < MSGS; j++)
				ck_assert_msg(memcmp(&part[j], &full[j], sizeof full[j]) == 0,
					      "%s cut at %zu: message %d differs", v->name, cut, j);
		}
	}
	/* And the samples, which include the maximal messages. */
	for (int t = 0; t < N_DGRAM_TYPES; t++)
		for (int maximal = 0; maximal < 2; maximal++) {
			cn_msg m;
			uint8_t b[CN_DATAGRAM_PLAIN_MAX];
			sample(dgram_types[t], maximal, &m);
			size_t len = encode(&m, b, sizeof b);
			for (size_t cut = 0; cut < len; cut++)
				ck_assert_int_eq(datagram_oracle(b, cut, NULL, 0), 0);
		}
	free(v);
}
END_TEST

static size_t mutate(cn_rng *g, uint8_t *b, size_t len, size_t cap)
{
	static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xc0, 0xc1, 0xc4,
					      0xca, 0xcb, 0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd,
					      0xde, 0xdf, 0xff, 0x20, 0x1f, 0x41};
	int k = 1 + (int)cn_rng_below(g, 4);
	for (int i = 0; i < k && len > 0; i++) {
		size_t at = (size_t)cn_rng_below(g, len);
		switch (cn_rng_below(g, 6)) {
		case 0: b[at] ^= (uint8_t)(1u << cn_rng_below(g, 8)); break;
		case 1: b[at] = interesting[cn_rng_below(g, sizeof interesting)]; break;
		case 2: b[at] = (uint8_t)cn_rng_next(g); break;
		case 3: /* insert */
			if (len < cap) {
				memmove(b + at + 1, b + at, len - at);
				b[at] = interesting[cn_rng_below(g, sizeof interesting)];
				len++;
			}
			break;
		case 4: /* delete */
			memmove(b + at, b + at + 1, len - at - 1);
			len--;
			break;
		default: len = at; break; /* truncate */
		}
	}
	return len;
}

START_TEST(million_mutations)
{
	static char names[VECTORS_MAX][VECTOR_PATH_MAX];
	int n = list_vectors(names, VECTORS_MAX);
	struct vector *vs = malloc((size_t)n * sizeof *vs);
	for (int i = 0; i < n; i++)
		load_vector(names[i], &vs[i]);
	cn_rng g;
	cn_rng_seed(&g, 0xC0FFEE);
	uint8_t b[8192 + 64];
	uint64_t decoded = 0, failed = 0;
	for (long it = 0; it < 1000000; it++) {
		const struct vector *v = &vs[cn_rng_below(&g, (uint64_t)n)];
		memcpy(b, v->bytes, v->len);
		size_t len = mutate(&g, b, v->len, sizeof b);
		if (v->stream) {
			if (pushpull_any(b, len) == 0)
				decoded++;
			else
				failed++;
		} else {
			int k = datagram_oracle(b, len, NULL, 0);
			decoded += k > 0;
			failed += k == 0;
		}
	}
	/* Both outcomes must occur, or the mutations test nothing. */
	ck_assert_uint_gt(decoded, 10000);
	ck_assert_uint_gt(failed, 10000);
	free(vs);
}
END_TEST

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, roundtrip_every_type);
	tcase_add_test(tc, maximal_meta_fits);
	tcase_add_test(tc, rollout_reports_fit_the_budget);
	tcase_add_test(tc, workload_reports_fit_after_rollouts);
	tcase_add_test(tc, unknown_key_ignored_and_counted);
	tcase_add_test(tc, unknown_type_skipped);
	tcase_add_test(tc, missing_required_field);
	tcase_add_test(tc, over_limit_strings);
	tcase_add_test(tc, labels_must_be_sorted_and_unique);
	tcase_add_test(tc, set_label_keeps_order_and_limits);
	tcase_add_test(tc, names_for_logs);
	tcase_add_test(tc, pushpull_roundtrip);
	tcase_add_test(tc, pushpull_lazy_and_raw);
	tcase_add_test(tc, pushpull_down_ms);
	tcase_add_test(tc, pushpull_validated_before_callbacks);
	tcase_add_test(tc, vectors_decode_and_reencode);
	suite_add_tcase(s, tc);
	TCase *th = tcase_create("hostile");
	tcase_set_timeout(th, 600);
	tcase_add_test(th, truncation_at_every_offset);
	tcase_add_test(th, million_mutations);
	suite_add_tcase(s, th);
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
