/* Protocol constants: versions, message types, field keys and every limit.
 *
 * proto/PROTOCOL.md is the prose version of this file; the two must agree.
 * A limit here bounds both what we send and what we accept: a decoder
 * refuses anything larger with CN_ELIMIT before it copies a byte. */
#ifndef CN_WIRE_PROTO_H
#define CN_WIRE_PROTO_H

#include <assert.h>

enum {
	CN_PROTO_VERSION_MIN = 1, /* oldest message version we still decode */
	/* Newest version we speak. 2 = version 1's messages plus push-pull
	 * key 10 and placement rule 2 (PROTOCOL.md "Versions"): its messages
	 * are version 1's, so we still write 1 and every version-1 agent
	 * reads us; what a member's vmax says is which placement rule it can
	 * compute (agent/sched.h). */
	CN_PROTO_VERSION_MAX = 2,
	CN_PROTO_VERSION = 1,     /* version we write */
};

/* Message types. Datagram plane: 1..15; stream plane: 16..31. */
enum cn_msg_type {
	CN_MSG_PING = 1,
	CN_MSG_ACK = 2,
	CN_MSG_PING_REQ = 3,
	CN_MSG_NACK = 4,
	CN_MSG_ALIVE = 5,
	CN_MSG_SUSPECT = 6,
	CN_MSG_DEAD = 7,
	CN_MSG_LEAVE = 8,
	CN_MSG_META = 9,
	CN_MSG_POLICY_ANNOUNCE = 10,
	CN_MSG_PUSH_PULL = 16,       /* stream request: join or anti-entropy */
	CN_MSG_PUSH_PULL_REPLY = 17, /* stream reply */
	CN_MSG_KEY_OP = 18,          /* stream request: key ring operation */
	CN_MSG_KEY_OP_REPLY = 19,    /* stream reply */
	CN_MSG_POLICY_SYNC = 20,     /* stream request: bucket hashes -> listing */
	CN_MSG_POLICY_SYNC_REPLY = 21,
	CN_MSG_POLICY_FETCH = 22,    /* stream request: names -> documents */
	CN_MSG_POLICY_FETCH_REPLY = 23,
	CN_MSG_AUDIT_SYNC = 24,      /* stream request: chain heads -> entries */
	CN_MSG_AUDIT_SYNC_REPLY = 25,
	CN_MSG_TYPE_MAX = 31,
};

/* Sealed envelope (see crypto/seal.h). */
enum {
	CN_ENVELOPE_MAGIC = 0xC7,
	CN_ENVELOPE_HEADER = 32, /* magic, vmin, vmax, plane, key id, nonce */
	CN_ENVELOPE_TAG = 16,    /* Poly1305 tag */
	CN_ENVELOPE_OVERHEAD = CN_ENVELOPE_HEADER + CN_ENVELOPE_TAG,
	CN_PLANE_DATAGRAM = 1,
	CN_PLANE_STREAM = 2,
};

/* Sizes. */
enum {
	CN_DATAGRAM_MAX = 1400, /* sealed bytes on the wire */
	CN_DATAGRAM_PLAIN_MAX = CN_DATAGRAM_MAX - CN_ENVELOPE_OVERHEAD,
	CN_STREAM_MAX = 16 * 1024 * 1024, /* sealed stream message */
	CN_NAME_MAX = 64,          /* node name bytes */
	CN_LABELS_MAX = 16,        /* labels per member */
	CN_LABEL_KEY_MAX = 32,
	CN_LABEL_VALUE_MAX = 64,
	CN_ARCH_MAX = 16,
	CN_OS_MAX = 16,
	CN_ACCEL_MAX = 4,          /* accelerator kinds per member */
	CN_ACCEL_KIND_MAX = 16,
	CN_META_WIRE_MAX = 1024,   /* encoded member metadata */
	/* Sum of all label key and value bytes of one member. Without it 16
	 * maximal labels (16 x 96 bytes) alone would overflow
	 * CN_META_WIRE_MAX; wire/msg.c checks the worst case statically. */
	CN_LABELS_TEXT_MAX = 768,
	CN_COORD_DIM = 8,          /* Vivaldi dimensions */
	CN_PUSHPULL_MEMBERS_MAX = 65536,
	CN_POLICY_KIND_MAX = 16,
	CN_POLICY_NAME_MAX = 128,
	CN_HASH_BYTES = 32,
	CN_MSG_FIELDS_MAX = 64,    /* keys in one body map */
	CN_ROLLOUT_REPORTS_MAX = 8, /* rollout reports in one member's metadata */
	CN_ROLLOUT_STAGE_MAX = 65535,
	CN_WORKLOAD_REPORTS_MAX = 16, /* workload reports in one member's metadata */
};

static_assert(CN_DATAGRAM_PLAIN_MAX == 1352, "datagram budget");
static_assert(CN_META_WIRE_MAX + 3 * CN_NAME_MAX < CN_DATAGRAM_PLAIN_MAX,
	      "an alive message with full metadata must fit one datagram");

/* Body keys. Each message body is a map with these integer keys; unknown
 * keys are skipped and counted, missing required keys are CN_EMISSING. */
enum {
	/* ping / ack / ping-req / nack */
	CN_K_SEQ = 1,
	CN_K_TARGET = 2,
	CN_K_SOURCE = 3,
	CN_K_TARGET_ADDR = 4,
	CN_K_WANT_NACK = 5,
	CN_K_COORD = 6,
	/* alive / suspect / dead / leave / meta / member state */
	CN_K_NAME = 1,
	CN_K_INCARNATION = 2,
	CN_K_ADDR = 3,
	CN_K_META = 4,
	CN_K_META_VERSION = 5,
	CN_K_VMIN = 6,
	CN_K_VMAX = 7,
	CN_K_FROM = 8,
	CN_K_STATE = 9,
	CN_K_DOWN_MS = 10,    /* member state only: age of a failed/left record */
	/* push-pull */
	CN_K_PP_JOIN = 1,
	CN_K_PP_SOURCE = 2,
	CN_K_PP_MEMBERS = 3,
	CN_K_PP_POLICY_DIGEST = 4,
	/* policy announcement */
	CN_K_PA_KIND = 1,
	CN_K_PA_NAME = 2,
	CN_K_PA_VERSION = 3,
	CN_K_PA_WRITER = 4,
	CN_K_PA_HASH = 5,
	/* metadata map */
	CN_K_M_LABELS = 1,
	CN_K_M_ARCH = 2,
	CN_K_M_OS = 3,
	CN_K_M_CPUS = 4,
	CN_K_M_MEM_MB = 5,
	CN_K_M_ACCEL = 6,
	CN_K_M_LOAD = 7,
	CN_K_M_MEM_FREE_MB = 8,
	CN_K_M_POWER = 9,
	CN_K_M_BATTERY = 10,
	CN_K_M_ROLLOUT = 11,
	CN_K_M_WORKLOADS = 12,
};

/* Member states as carried in push-pull. */
enum cn_member_state_code {
	CN_STATE_ALIVE = 0,
	CN_STATE_SUSPECT = 1,
	CN_STATE_DEAD = 2, /* "failed" to operators */
	CN_STATE_LEFT = 3,
	CN_STATE_MAX_ = 3,
};

enum cn_power {
	CN_POWER_UNKNOWN = 0,
	CN_POWER_MAINS = 1,
	CN_POWER_BATTERY = 2,
};

#endif
