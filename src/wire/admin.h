/* Admin plane messages: the CLI talking to its local agent.
 *
 * Request  [version, command, [arg, ...], flags]
 * Reply    [status, text]          status 0 ok, else a negative cn_err
 * Event    [text_line, json_line]  on the monitor pub socket
 *
 * The agent does the rendering (human text or JSON, by CN_ADMIN_JSON), so
 * the CLI stays a thin, dependency-free client and every view looks the
 * same from any tool. The peer is a local process of an allowed uid, but
 * its bytes are still decoded with the bounded reader. */
#ifndef CN_WIRE_ADMIN_H
#define CN_WIRE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/mp.h"

enum {
	CN_ADMIN_VERSION = 1,
	CN_ADMIN_CMD_MAX = 32,
	CN_ADMIN_ARGS_MAX = 64,
	CN_ADMIN_ARG_MAX = 131072,  /* a base64 policy document (agent/policy_admin.c) */
	CN_ADMIN_REQUEST_MAX = 1 << 20,
	CN_ADMIN_REPLY_MAX = 64 << 20,
	CN_ADMIN_JSON = 1u << 0,
};

typedef struct cn_admin_req {
	char cmd[CN_ADMIN_CMD_MAX + 1];
	uint32_t n_args;
	const char *args[CN_ADMIN_ARGS_MAX]; /* point into the input, NUL-free */
	uint32_t arg_len[CN_ADMIN_ARGS_MAX];
	uint32_t flags;
} cn_admin_req;

/* Encode into w (caller checks cn_mp_writer_end). args are C strings. */
void cn_admin_req_encode(cn_mp_writer *w, const char *cmd, const char *const *args,
			 uint32_t n_args, uint32_t flags);
/* Decode; args point into buf, which must outlive *out. Errors: CN_ETRUNC,
 * CN_ETYPE, CN_ELIMIT, CN_EVERSION, CN_EINVAL (NUL inside an argument or
 * an empty command), CN_ETRAILING. */
int cn_admin_req_decode(const uint8_t *buf, size_t len, cn_admin_req *out);

void cn_admin_reply_encode(cn_mp_writer *w, int status, const char *text, size_t len);
/* text points into buf. */
int cn_admin_reply_decode(const uint8_t *buf, size_t len, int *status, const char **text,
			  size_t *text_len);

#endif
