#include "util/err.h"

const char *cn_strerror(int err)
{
	switch (err) {
	case CN_OK: return "success";
	case CN_ETRUNC: return "input truncated";
	case CN_ETYPE: return "unexpected type";
	case CN_ERANGE: return "value out of range";
	case CN_ELIMIT: return "count exceeds limit";
	case CN_EDEPTH: return "nesting too deep";
	case CN_EMISSING: return "required field missing";
	case CN_EVERSION: return "unsupported protocol version";
	case CN_EUNKNOWN: return "unknown message type";
	case CN_ETRAILING: return "trailing bytes";
	case CN_ENOSPACE: return "output buffer too small";
	case CN_EAUTH: return "authentication failed";
	case CN_ENOKEY: return "no matching key";
	case CN_EINVAL: return "invalid argument";
	case CN_EEXIST: return "already exists";
	case CN_ENOENT: return "not found";
	case CN_EFULL: return "table full";
	case CN_EIO: return "I/O error";
	case CN_ENOMEM: return "out of memory";
	case CN_ESTATE: return "invalid state";
	case CN_EAGAIN: return "try again";
	case CN_EPERM: return "permission denied";
	case CN_ETIMEDOUT: return "timed out";
	default: return "unknown error";
	}
}
