#include "crypto/crypto.h"

#include <sodium.h>

#include "util/err.h"

int cn_crypto_init(void)
{
	/* 0: initialised now, 1: already initialised, -1: failure. */
	return sodium_init() < 0 ? CN_EIO : 0;
}
