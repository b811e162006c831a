/* Admin requests and replies, key operations: the agent's other decoders.
 * Oracle: anything that decodes re-encodes and decodes to the same value. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/admin.h"
#include "wire/keyop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 17];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cn_admin_req req;
	if (cn_admin_req_decode(data, size, &req) == 0) {
		/* Arguments are not NUL-terminated in the input; copy them. */
		static char store[CN_ADMIN_ARGS_MAX][256];
		const char *args[CN_ADMIN_ARGS_MAX];
		bool fits = true;
		for (uint32_t i = 0; i < req.n_args; i++) {
			if (req.arg_len[i] >= sizeof store[i]) {
				fits = false;
				break;
			}
			memcpy(store[i], req.args[i], req.arg_len[i]);
			store[i][req.arg_len[i]] = '\0';
			args[i] = store[i];
		}
		if (fits) {
			cn_mp_writer w;
			size_t len;
			cn_admin_req again;
			cn_mp_writer_init(&w, out, sizeof out);
			cn_admin_req_encode(&w, req.cmd, args, req.n_args, req.flags);
			assert(cn_mp_writer_end(&w, &len) == 0);
			assert(cn_admin_req_decode(out, len, &again) == 0);
			assert(strcmp(again.cmd, req.cmd) == 0 && again.n_args == req.n_args &&
			       again.flags == req.flags);
		}
	}
	int status;
	const char *text;
	size_t tl;
	if (cn_admin_reply_decode(data, size, &status, &text, &tl) == 0)
		assert(status <= 0 && text + tl <= (const char *)data + size);

	cn_keyop_req k;
	if (cn_keyop_req_decode(data, size, &k) == 0) {
		cn_mp_writer w;
		size_t len;
		cn_keyop_req again;
		cn_mp_writer_init(&w, out, sizeof out);
		cn_keyop_req_encode(&w, &k);
		assert(cn_mp_writer_end(&w, &len) == 0);
		assert(cn_keyop_req_decode(out, len, &again) == 0);
		assert(memcmp(&again, &k, sizeof k) == 0);
	}
	cn_keyop_reply r;
	if (cn_keyop_reply_decode(data, size, &r) == 0) {
		cn_mp_writer w;
		size_t len;
		cn_keyop_reply again;
		cn_mp_writer_init(&w, out, sizeof out);
		cn_keyop_reply_encode(&w, &r);
		assert(cn_mp_writer_end(&w, &len) == 0);
		assert(cn_keyop_reply_decode(out, len, &again) == 0);
		assert(again.status == r.status && again.n_ids == r.n_ids &&
		       strcmp(again.err, r.err) == 0);
	}
	uint8_t type;
	(void)cn_stream_peek_type(data, size, &type);
	return 0;
}
