/* Protocol messages: C structs and their msgpack codec.
 *
 * A message on the wire is the msgpack array [version, type, body], body a
 * map with integer keys (wire/proto.h). A datagram's plaintext is one or
 * more messages back to back: the first is the probe message (ping, ack,
 * ...), the rest are piggybacked gossip (alive, suspect, ...).
 *
 * Decoding copies every string into the fixed-size fields below after
 * checking its length against the protocol limit, so a decoded message owns
 * no pointers and holds no reference to the input. Names and label text
 * must be valid, NUL-free, printable UTF-8-ish bytes (no bytes < 0x20).
 *
 * Forward compatibility: unknown body keys are skipped (counted in
 * cn_msg_stats.unknown_keys); an unknown type is skipped as a whole and
 * reported as CN_EUNKNOWN with the reader advanced past it, so the caller
 * can count it and go on with the next message. */
#ifndef CN_WIRE_MSG_H
#define CN_WIRE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"
#include "wire/mp.h"
#include "wire/proto.h"

typedef struct cn_label {
	char key[CN_LABEL_KEY_MAX + 1];
	char value[CN_LABEL_VALUE_MAX + 1];
} cn_label;

typedef struct cn_accel {
	char kind[CN_ACCEL_KIND_MAX + 1];
	uint32_t count;
} cn_accel;

/* One staged-rollout report (agent/rollout.h): what this member knows of
 * job `job_hash` (FNV-1a 32 of its name) rolling out to `version`. */
enum {
	CN_ROLLOUT_SETTLED = 1,  /* all its replicas at version healthy for healthy_for_ms */
	CN_ROLLOUT_FAILED = 2,   /* one of its replicas at version failed */
	CN_ROLLOUT_REVERTED = 4, /* the fleet returns to the previous version (sticky) */
};
typedef struct cn_rollout_report {
	uint64_t version;
	uint32_t job_hash;
	uint16_t done_stage;   /* stages known complete: 0 .. done_stage-1 */
	uint8_t flags;         /* CN_ROLLOUT_*; unknown bits kept as they came */
	uint8_t pad_;          /* zero */
} cn_rollout_report;

/* One workload replica this member runs (agent/workloads.c), so that
 * `canopy job status` on any member shows every replica's state. */
typedef struct cn_workload_report {
	uint64_t version;      /* job document version it runs */
	uint32_t job_hash;     /* FNV-1a 32 of the job name */
	uint32_t restarts;
	uint16_t replica;
	uint8_t state;         /* runtime state (runtime/runtime.h enum cn_rt_state);
				* unknown values kept as they came */
	uint8_t pad_;          /* zero */
} cn_workload_report;

/* Member metadata: slow-changing labels and capacity, fast-changing health.
 * Labels are kept sorted by key with unique keys (the encoder asserts it,
 * the decoder refuses anything else with CN_EINVAL) so that two agents
 * holding the same metadata hold the same bytes. */
typedef struct cn_meta {
	uint8_t n_labels;
	cn_label labels[CN_LABELS_MAX];
	char arch[CN_ARCH_MAX + 1];
	char os[CN_OS_MAX + 1];
	uint32_t cpus;
	uint32_t mem_mb;
	uint8_t n_accel;
	cn_accel accel[CN_ACCEL_MAX];
	/* health */
	uint32_t load_milli;   /* 1-minute load average x 1000 */
	uint32_t mem_free_mb;
	uint8_t power;         /* enum cn_power */
	uint8_t battery_pct;   /* 0..100, 255 = unknown */
	/* staged rollouts this member reports, most important first; the
	 * encoder writes only as many as fit CN_META_WIRE_MAX */
	uint8_t n_rollout;
	cn_rollout_report rollout[CN_ROLLOUT_REPORTS_MAX];
	/* workload replicas this member runs, in (job_hash, replica) order;
	 * written after the rollout reports, as many as fit */
	uint8_t n_workloads;
	cn_workload_report workloads[CN_WORKLOAD_REPORTS_MAX];
} cn_meta;

typedef struct cn_coord {
	float vec[CN_COORD_DIM];
	float height;
	float error;
	float adjustment;
} cn_coord;

typedef struct cn_msg_ping {
	uint32_t seq;
	char target[CN_NAME_MAX + 1]; /* who the sender thinks it is pinging */
	char source[CN_NAME_MAX + 1];
} cn_msg_ping;

typedef struct cn_msg_ack {
	uint32_t seq;
	char source[CN_NAME_MAX + 1];
	bool has_coord;
	cn_coord coord;
} cn_msg_ack;

typedef struct cn_msg_ping_req {
	uint32_t seq;
	char target[CN_NAME_MAX + 1];
	cn_addr target_addr;
	bool want_nack;
	char source[CN_NAME_MAX + 1];
} cn_msg_ping_req;

typedef struct cn_msg_nack {
	uint32_t seq;
	char source[CN_NAME_MAX + 1];
} cn_msg_nack;

typedef struct cn_msg_alive {
	char name[CN_NAME_MAX + 1];
	uint64_t incarnation;
	cn_addr addr;
	uint64_t meta_version;
	cn_meta meta;
	uint8_t vmin, vmax; /* protocol versions the member speaks */
} cn_msg_alive;

/* suspect, dead: "from" accused "name" at "incarnation". */
typedef struct cn_msg_accuse {
	char name[CN_NAME_MAX + 1];
	uint64_t incarnation;
	char from[CN_NAME_MAX + 1];
} cn_msg_accuse;

typedef struct cn_msg_leave {
	char name[CN_NAME_MAX + 1];
	uint64_t incarnation;
} cn_msg_leave;

typedef struct cn_msg_meta {
	char name[CN_NAME_MAX + 1];
	uint64_t incarnation;
	uint64_t meta_version;
	cn_meta meta;
} cn_msg_meta;

typedef struct cn_msg_policy_announce {
	char kind[CN_POLICY_KIND_MAX + 1];
	char name[CN_POLICY_NAME_MAX + 1];
	uint64_t version; /* hybrid logical clock */
	char writer[CN_NAME_MAX + 1];
	uint8_t hash[CN_HASH_BYTES];
} cn_msg_policy_announce;

typedef struct cn_msg {
	uint8_t version;
	uint8_t type; /* enum cn_msg_type */
	union {
		cn_msg_ping ping;
		cn_msg_ack ack;
		cn_msg_ping_req ping_req;
		cn_msg_nack nack;
		cn_msg_alive alive;
		cn_msg_accuse suspect;
		cn_msg_accuse dead;
		cn_msg_leave leave;
		cn_msg_meta meta;
		cn_msg_policy_announce announce;
	} u;
} cn_msg;

/* One member as carried in push-pull. meta comes last so that a decoder
 * that leaves it alone (cn_pushpull_decode_lazy) clears only the rest. */
typedef struct cn_member_wire {
	char name[CN_NAME_MAX + 1];
	cn_addr addr;
	uint64_t incarnation;
	uint8_t state; /* enum cn_member_state_code */
	uint64_t meta_version;
	uint8_t vmin, vmax;
	/* Failed (dead) and left members only: how long ago the sender
	 * recorded the state, in ms, so that a receiver that learns the
	 * member from this push-pull reaps it when the sender does. The
	 * encoder writes it only when has_down_ms and the state is failed or
	 * left; the decoder clears it for the other states (old senders: not
	 * there). */
	bool has_down_ms;
	uint32_t down_ms;
	/* Decoder output only (the encoder ignores them): the member's
	 * metadata map inside the decoded buffer when meta was left undecoded
	 * (cn_pushpull_decode_lazy); NULL and 0 otherwise. */
	const uint8_t *meta_raw;
	size_t meta_len;
	cn_meta meta;
} cn_member_wire;

/* Push-pull header: everything but the member list. */
typedef struct cn_pushpull {
	bool join;
	char source[CN_NAME_MAX + 1];
	bool has_policy_digest;
	uint8_t policy_digest[CN_HASH_BYTES];
	uint32_t n_members; /* filled by the decoder */
} cn_pushpull;

/* Decoder statistics that a caller may aggregate; any of the pointers
 * passed to decoders may be NULL. */
typedef struct cn_msg_stats {
	uint64_t unknown_keys;
	uint64_t unknown_types;
} cn_msg_stats;

/* Encode one datagram message (types 1..15) at the writer's position. */
void cn_msg_encode(cn_mp_writer *w, const cn_msg *m);
/* Size cn_msg_encode would write; for the piggyback budget. */
size_t cn_msg_encoded_size(const cn_msg *m);

/* Decode one datagram message from r.
 * Returns 0 with *out filled, CN_EUNKNOWN (unknown type, skipped: r is past
 * it), CN_EVERSION (version below CN_PROTO_VERSION_MIN, skipped), or a
 * decoding error (CN_ETRUNC, CN_ETYPE, CN_ELIMIT, CN_ERANGE, CN_EMISSING,
 * CN_EINVAL, CN_EDEPTH) after which r is unspecified and the rest of the
 * datagram must be dropped. */
int cn_msg_decode(cn_mp_reader *r, cn_msg *out, cn_msg_stats *stats);

/* Push-pull (stream plane). Encoding is streaming: begin writes the header
 * and the member array header for n members, then add each member. */
void cn_pushpull_encode_begin(cn_mp_writer *w, uint8_t type, const cn_pushpull *pp,
			      uint32_t n_members);
void cn_pushpull_encode_member(cn_mp_writer *w, const cn_member_wire *ms);
/* The same with the metadata map given as the bytes cn_meta_encode wrote
 * for it (ms->meta is not read): a view of N members holds a handful of
 * distinct metadata, each encoded once by a caller that keeps them. */
void cn_pushpull_encode_member_raw(cn_mp_writer *w, const cn_member_wire *ms,
				   const uint8_t *meta, size_t meta_len);

/* Decode a whole push-pull message. For each member in order, calls
 * on_member(ctx, ms) (ms valid only during the call); a non-zero return
 * from the callback stops decoding and is returned. *type_out gets
 * CN_MSG_PUSH_PULL or CN_MSG_PUSH_PULL_REPLY. Trailing bytes after the
 * message are CN_ETRAILING. Errors as cn_msg_decode. */
typedef int (*cn_member_cb)(void *ctx, const cn_member_wire *ms);
int cn_pushpull_decode(const uint8_t *buf, size_t len, uint8_t *type_out, cn_pushpull *pp,
		       cn_member_cb on_member, void *ctx, cn_msg_stats *stats);
/* The same validation (every member, metadata included, is decoded in
 * full before the first callback), but the callbacks get ms->meta
 * UNFILLED: ms->meta_raw and ms->meta_len point at the member's metadata
 * inside buf, and cn_member_wire_meta() decodes it for a caller that needs
 * it. A receiver that already holds a member at the same incarnation and
 * meta_version (all of them, in a converged fleet) needs none: the
 * metadata map is most of a member's bytes and of its decoding time. */
int cn_pushpull_decode_lazy(const uint8_t *buf, size_t len, uint8_t *type_out, cn_pushpull *pp,
			    cn_member_cb on_member, void *ctx, cn_msg_stats *stats);
/* ms's metadata into *out: decoded from meta_raw when the lazy decoder
 * left it there (it was validated, so this cannot fail on bytes
 * cn_pushpull_decode_lazy accepted; 0 or a decoding error otherwise), else
 * copied from ms->meta. buf must still be alive. */
int cn_member_wire_meta(const cn_member_wire *ms, cn_meta *out);

/* Metadata alone (also used by the admin plane). */
void cn_meta_encode(cn_mp_writer *w, const cn_meta *m);
int cn_meta_decode(cn_mp_reader *r, cn_meta *out, cn_msg_stats *stats);
/* Drop the trailing rollout reports, then the trailing workload reports,
 * that cn_meta_encode would leave out (the whole map must fit
 * CN_META_WIRE_MAX), so that what a member holds is what its peers decode.
 * Returns the number of rollout reports kept. */
unsigned cn_meta_rollout_fit(cn_meta *m);
/* Insert or replace a label keeping the sort order. CN_EINVAL for bad text,
 * CN_EFULL past CN_LABELS_MAX. */
int cn_meta_set_label(cn_meta *m, const char *key, const char *value);
const char *cn_meta_get_label(const cn_meta *m, const char *key);

/* Protocol names for logs and JSON. */
const char *cn_msg_type_name(uint8_t type);
const char *cn_member_state_name(uint8_t state); /* alive/suspect/failed/left */

#endif
