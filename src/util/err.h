/* Error codes shared by every Canopy module.
 *
 * Functions return 0 on success or one of these negative codes; results go
 * through out-parameters. Programmer errors (broken invariants) assert
 * instead; these codes are for operating errors: bad input, full tables,
 * missing files. cn_strerror() gives a one-line English description. */
#ifndef CN_UTIL_ERR_H
#define CN_UTIL_ERR_H

enum cn_err {
	CN_OK = 0,
	CN_ETRUNC = -1,     /* input ended inside an object */
	CN_ETYPE = -2,      /* object of the wrong msgpack type */
	CN_ERANGE = -3,     /* integer or length outside its allowed range */
	CN_ELIMIT = -4,     /* a count exceeds a protocol limit */
	CN_EDEPTH = -5,     /* nesting deeper than allowed */
	CN_EMISSING = -6,   /* a required field is absent */
	CN_EVERSION = -7,   /* protocol version not supported */
	CN_EUNKNOWN = -8,   /* unknown message type (ignored and counted) */
	CN_ETRAILING = -9,  /* bytes left after a complete object */
	CN_ENOSPACE = -10,  /* output buffer too small */
	CN_EAUTH = -11,     /* sealed envelope did not authenticate */
	CN_ENOKEY = -12,    /* no installed key matches */
	CN_EINVAL = -13,    /* malformed argument or text */
	CN_EEXIST = -14,    /* already present */
	CN_ENOENT = -15,    /* not present */
	CN_EFULL = -16,     /* table or queue full */
	CN_EIO = -17,       /* operating-system or storage error */
	CN_ENOMEM = -18,    /* allocation failed */
	CN_ESTATE = -19,    /* operation not valid in the current state */
	CN_EAGAIN = -20,    /* nothing to do now */
	CN_EPERM = -21,     /* not allowed */
	CN_ETIMEDOUT = -22, /* peer did not answer in time */
	CN_ERR_MIN_ = -22,
};

/* Static English text for a code; never NULL. */
const char *cn_strerror(int err);

#endif
