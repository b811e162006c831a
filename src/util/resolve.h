/* Host names to addresses, once, at start (agent options and `join`).
 *
 * The agent binary is linked statically (half the resident memory of a
 * dynamic one), and a static glibc cannot load the NSS modules that
 * getaddrinfo needs without the very glibc it was built with. So names are
 * resolved without NSS in this process:
 *   1. a numeric address ("10.0.0.5:7980", "[::1]:7980") is parsed;
 *   2. else the name is looked up in the hosts file (/etc/hosts);
 *   3. else `getent ahosts NAME` (libc-bin, on every Debian system) is run
 *      with posix_spawn — it uses the system's NSS configuration, DNS
 *      included — and its first address is taken. Bounded: 5 s, 64 KiB.
 * A name must be a DNS host name: letters, digits, '-', '.', at most 253
 * bytes; anything else is refused before any lookup. */
#ifndef CN_UTIL_RESOLVE_H
#define CN_UTIL_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

enum { CN_RESOLVE_TIMEOUT_MS = 5000 };

/* "host[:port]" or "[v6][:port]". hosts_path: NULL for /etc/hosts.
 * getent: NULL for "getent" on PATH (tests pass another program or "").
 * @return 0, or CN_EINVAL with the reason in err. */
int cn_resolve(const char *text, uint16_t default_port, const char *hosts_path, const char *getent,
	       cn_addr *out, char *err, size_t errcap);

#endif
