#include "wire/keyop.h"
#include "util/err.h"
#include "wire/proto.h"

#include <string.h>

static void header(cn_mp_writer *w, uint8_t type, uint32_t n_fields)
{
	cn_mp_put_array(w, 3);
	cn_mp_put_uint(w, CN_PROTO_VERSION);
	cn_mp_put_uint(w, type);
	cn_mp_put_map(w, n_fields);
}

void cn_keyop_req_encode(cn_mp_writer *w, const cn_keyop_req *req)
{
	header(w, CN_MSG_KEY_OP, 1 + (req->has_key ? 1 : 0) + (req->n_ring ? 1 : 0) +
				     (req->version ? 1 : 0));
	cn_mp_put_uint(w, 1);
	cn_mp_put_uint(w, req->op);
	if (req->has_key) {
		cn_mp_put_uint(w, 2);
		cn_mp_put_bin(w, req->key, CN_KEYOP_KEY_BYTES);
	}
	if (req->n_ring) {
		cn_mp_put_uint(w, 3);
		cn_mp_put_array(w, req->n_ring);
		for (uint32_t i = 0; i < req->n_ring; i++)
			cn_mp_put_bin(w, req->ring[i], CN_KEYOP_KEY_BYTES);
	}
	if (req->version) {
		cn_mp_put_uint(w, 4);
		cn_mp_put_uint(w, req->version);
	}
}

void cn_keyop_reply_encode(cn_mp_writer *w, const cn_keyop_reply *rep)
{
	size_t el = strlen(rep->err);
	header(w, CN_MSG_KEY_OP_REPLY, 3 + (el ? 1 : 0));
	cn_mp_put_uint(w, 1);
	cn_mp_put_int(w, rep->status);
	cn_mp_put_uint(w, 2);
	cn_mp_put_array(w, rep->n_ids);
	for (uint32_t i = 0; i < rep->n_ids; i++)
		cn_mp_put_uint(w, rep->ids[i]);
	cn_mp_put_uint(w, 3);
	cn_mp_put_uint(w, rep->primary);
	if (el) {
		cn_mp_put_uint(w, 4);
		cn_mp_put_str(w, rep->err, el);
	}
}

/* Reads [version, type: the envelope every stream message shares. */
static int read_header(cn_mp_reader *r, uint32_t *n_elems, uint8_t *type)
{
	uint32_t version, t;
	int rc;
	if ((rc = cn_mp_read_array(r, n_elems, 16)))
		return rc;
	if (*n_elems < 3)
		return CN_ETRUNC;
	if ((rc = cn_mp_read_u32(r, &version)))
		return rc;
	if (version < CN_PROTO_VERSION_MIN)
		return CN_EVERSION;
	if ((rc = cn_mp_read_u32(r, &t)))
		return rc;
	if (t > CN_MSG_TYPE_MAX)
		return CN_ERANGE;
	*type = (uint8_t)t;
	return 0;
}

/* Reads [version, type, and the body map header]. */
static int open_msg(cn_mp_reader *r, uint8_t want, uint32_t *n_fields)
{
	uint32_t n;
	uint8_t type;
	int rc = read_header(r, &n, &type);
	if (rc == CN_ERANGE)
		return CN_EUNKNOWN;
	if (rc)
		return rc;
	if (type != want)
		return CN_EUNKNOWN;
	if ((rc = cn_mp_read_map(r, n_fields, CN_MSG_FIELDS_MAX)))
		return rc;
	/* Extra array elements after the body are a newer sender's; they
	 * are not allowed here because the body is last by definition. */
	return n == 3 ? 0 : CN_ELIMIT;
}

static int read_key(cn_mp_reader *r, uint8_t out[CN_KEYOP_KEY_BYTES])
{
	const uint8_t *p;
	uint32_t len;
	int rc = cn_mp_read_bin(r, &p, &len, CN_KEYOP_KEY_BYTES);
	if (rc)
		return rc;
	if (len != CN_KEYOP_KEY_BYTES)
		return CN_EINVAL;
	memcpy(out, p, len);
	return 0;
}

int cn_keyop_req_decode(const uint8_t *buf, size_t len, cn_keyop_req *out)
{
	cn_mp_reader r;
	uint32_t n;
	int rc;
	bool have_op = false;
	memset(out, 0, sizeof *out);
	cn_mp_reader_init(&r, buf, len);
	if ((rc = open_msg(&r, CN_MSG_KEY_OP, &n)))
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(&r, &key)))
			return rc;
		if (key == 1) {
			uint32_t op;
			if ((rc = cn_mp_read_u32(&r, &op)))
				return rc;
			if (op < CN_KEYOP_LIST || op > CN_KEYOP_SYNC)
				return CN_EINVAL;
			out->op = (uint8_t)op;
			have_op = true;
		} else if (key == 2) {
			if ((rc = read_key(&r, out->key)))
				return rc;
			out->has_key = true;
		} else if (key == 3) {
			if ((rc = cn_mp_read_array(&r, &out->n_ring, CN_KEYOP_KEYS_MAX)))
				return rc;
			for (uint32_t k = 0; k < out->n_ring; k++)
				if ((rc = read_key(&r, out->ring[k])))
					return rc;
		} else if (key == 4) {
			if ((rc = cn_mp_read_u64(&r, &out->version)))
				return rc;
		} else if ((rc = cn_mp_skip(&r))) {
			return rc;
		}
	}
	if (!have_op)
		return CN_EMISSING;
	if ((out->op == CN_KEYOP_INSTALL || out->op == CN_KEYOP_USE || out->op == CN_KEYOP_REMOVE) &&
	    !out->has_key)
		return CN_EMISSING;
	if (out->op == CN_KEYOP_SYNC && out->n_ring == 0)
		return CN_EMISSING;
	return cn_mp_remaining(&r) ? CN_ETRAILING : 0;
}

int cn_keyop_reply_decode(const uint8_t *buf, size_t len, cn_keyop_reply *out)
{
	cn_mp_reader r;
	uint32_t n;
	int rc;
	bool have_status = false;
	memset(out, 0, sizeof *out);
	cn_mp_reader_init(&r, buf, len);
	if ((rc = open_msg(&r, CN_MSG_KEY_OP_REPLY, &n)))
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(&r, &key)))
			return rc;
		if (key == 1) {
			int64_t st;
			if ((rc = cn_mp_read_i64(&r, &st)))
				return rc;
			if (st > 0 || st < -1000)
				return CN_ERANGE;
			out->status = (int32_t)st;
			have_status = true;
		} else if (key == 2) {
			if ((rc = cn_mp_read_array(&r, &out->n_ids, CN_KEYOP_KEYS_MAX)))
				return rc;
			for (uint32_t k = 0; k < out->n_ids; k++)
				if ((rc = cn_mp_read_u32(&r, &out->ids[k])))
					return rc;
		} else if (key == 3) {
			if ((rc = cn_mp_read_u32(&r, &out->primary)))
				return rc;
		} else if (key == 4) {
			const char *s;
			uint32_t sl;
			if ((rc = cn_mp_read_str(&r, &s, &sl, CN_KEYOP_ERR_MAX)))
				return rc;
			memcpy(out->err, s, sl);
			out->err[sl] = '\0';
			/* Peers' text reaches operators' terminals: no control bytes. */
			for (uint32_t k = 0; k < sl; k++)
				if ((unsigned char)out->err[k] < 0x20)
					out->err[k] = '?';
		} else if ((rc = cn_mp_skip(&r))) {
			return rc;
		}
	}
	if (!have_status)
		return CN_EMISSING;
	return cn_mp_remaining(&r) ? CN_ETRAILING : 0;
}

int cn_stream_peek_type(const uint8_t *buf, size_t len, uint8_t *type)
{
	cn_mp_reader r;
	uint32_t n;
	cn_mp_reader_init(&r, buf, len);
	return read_header(&r, &n, type);
}
