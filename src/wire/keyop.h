/* Key ring operations between agents (stream plane).
 *
 * `canopy keys install|use|remove|list` on one agent fans out as KEY_OP
 * requests to every live member; each applies the operation to its own
 * ring, persists it and answers KEY_OP_REPLY. KEYOP_SYNC carries a whole
 * ring (primary first) to a member seen sealing with a key that is no
 * longer primary, so a member that was away during a rotation catches up
 * while any key it still holds is installed somewhere.
 *
 * Every change to a ring raises its version (a Lamport clock: the change's
 * version is one above the highest the changer has seen), so a member
 * catching up adopts a synced primary only when the sync is newer than
 * what it has, and a member ahead in a rotation is never pulled back.
 *
 * Request body: {1: op, 2: key (bin 32), 3: ring ([bin 32, ...], primary
 *                first), 4: ring version (u64)}
 * Reply body:   {1: status (0 or negative cn_err), 2: key ids ([u32]),
 *                3: primary id (u32), 4: error text} */
#ifndef CN_WIRE_KEYOP_H
#define CN_WIRE_KEYOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/mp.h"

enum {
	CN_KEYOP_LIST = 1,
	CN_KEYOP_INSTALL = 2,
	CN_KEYOP_USE = 3,
	CN_KEYOP_REMOVE = 4,
	CN_KEYOP_SYNC = 5,
	CN_KEYOP_KEYS_MAX = 8,
	CN_KEYOP_KEY_BYTES = 32,
	CN_KEYOP_ERR_MAX = 200,
};

typedef struct cn_keyop_req {
	uint8_t op;
	bool has_key;
	uint8_t key[CN_KEYOP_KEY_BYTES];
	uint32_t n_ring;
	uint8_t ring[CN_KEYOP_KEYS_MAX][CN_KEYOP_KEY_BYTES];
	uint64_t version; /* ring version after this change (0: unversioned) */
} cn_keyop_req;

typedef struct cn_keyop_reply {
	int32_t status;
	uint32_t n_ids;
	uint32_t ids[CN_KEYOP_KEYS_MAX];
	uint32_t primary;
	char err[CN_KEYOP_ERR_MAX + 1];
} cn_keyop_reply;

/* Whole messages: [version, type, body]. */
void cn_keyop_req_encode(cn_mp_writer *w, const cn_keyop_req *req);
void cn_keyop_reply_encode(cn_mp_writer *w, const cn_keyop_reply *rep);
/* Errors: CN_ETRUNC, CN_ETYPE, CN_ELIMIT, CN_ERANGE, CN_EMISSING,
 * CN_EVERSION, CN_EUNKNOWN (not this message type), CN_ETRAILING,
 * CN_EINVAL (op out of range, key of the wrong size). */
int cn_keyop_req_decode(const uint8_t *buf, size_t len, cn_keyop_req *out);
int cn_keyop_reply_decode(const uint8_t *buf, size_t len, cn_keyop_reply *out);

/* The message type of a stream plaintext, without decoding the body:
 * 0 or CN_ETRUNC/CN_ETYPE/CN_EVERSION. */
int cn_stream_peek_type(const uint8_t *buf, size_t len, uint8_t *type);

#endif
