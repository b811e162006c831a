#include "wire/admin.h"
#include "util/err.h"

#include <string.h>

void cn_admin_req_encode(cn_mp_writer *w, const char *cmd, const char *const *args,
			 uint32_t n_args, uint32_t flags)
{
	cn_mp_put_array(w, 4);
	cn_mp_put_uint(w, CN_ADMIN_VERSION);
	cn_mp_put_cstr(w, cmd);
	cn_mp_put_array(w, n_args);
	for (uint32_t i = 0; i < n_args; i++)
		cn_mp_put_cstr(w, args[i]);
	cn_mp_put_uint(w, flags);
}

int cn_admin_req_decode(const uint8_t *buf, size_t len, cn_admin_req *out)
{
	cn_mp_reader r;
	uint32_t n, version;
	const char *s;
	uint32_t sl;
	int rc;
	memset(out, 0, sizeof *out);
	cn_mp_reader_init(&r, buf, len);
	if ((rc = cn_mp_read_array(&r, &n, 16)))
		return rc;
	if (n < 4)
		return CN_ETRUNC;
	if ((rc = cn_mp_read_u32(&r, &version)))
		return rc;
	if (version != CN_ADMIN_VERSION)
		return CN_EVERSION;
	if ((rc = cn_mp_read_str(&r, &s, &sl, CN_ADMIN_CMD_MAX)))
		return rc;
	if (sl == 0 || memchr(s, '\0', sl))
		return CN_EINVAL;
	memcpy(out->cmd, s, sl);
	out->cmd[sl] = '\0';
	if ((rc = cn_mp_read_array(&r, &out->n_args, CN_ADMIN_ARGS_MAX)))
		return rc;
	for (uint32_t i = 0; i < out->n_args; i++) {
		if ((rc = cn_mp_read_str(&r, &out->args[i], &out->arg_len[i], CN_ADMIN_ARG_MAX)))
			return rc;
		if (memchr(out->args[i], '\0', out->arg_len[i]))
			return CN_EINVAL;
	}
	if ((rc = cn_mp_read_u32(&r, &out->flags)))
		return rc;
	/* Newer clients may append fields; skip them. */
	for (uint32_t i = 4; i < n; i++)
		if ((rc = cn_mp_skip(&r)))
			return rc;
	return cn_mp_remaining(&r) ? CN_ETRAILING : 0;
}

void cn_admin_reply_encode(cn_mp_writer *w, int status, const char *text, size_t len)
{
	cn_mp_put_array(w, 2);
	cn_mp_put_int(w, status);
	cn_mp_put_str(w, text, len);
}

int cn_admin_reply_decode(const uint8_t *buf, size_t len, int *status, const char **text,
			  size_t *text_len)
{
	cn_mp_reader r;
	uint32_t n, sl;
	int64_t st;
	int rc;
	cn_mp_reader_init(&r, buf, len);
	if ((rc = cn_mp_read_array(&r, &n, 16)))
		return rc;
	if (n < 2)
		return CN_ETRUNC;
	if ((rc = cn_mp_read_i64(&r, &st)))
		return rc;
	if (st > 0 || st < -1000)
		return CN_ERANGE;
	if ((rc = cn_mp_read_str(&r, text, &sl, CN_ADMIN_REPLY_MAX)))
		return rc;
	for (uint32_t i = 2; i < n; i++)
		if ((rc = cn_mp_skip(&r)))
			return rc;
	*status = (int)st;
	*text_len = sl;
	return cn_mp_remaining(&r) ? CN_ETRAILING : 0;
}
