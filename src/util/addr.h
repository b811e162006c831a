/* Network addresses as plain values: IPv4 or IPv6 plus a port.
 *
 * Parsing here is numeric only ("1.2.3.4:7980", "[::1]:7980"); resolving
 * host names is I/O and happens once, in the agent, at start. The wire form
 * is 6 bytes (IPv4) or 18 bytes (IPv6): address then port, big-endian. */
#ifndef CN_UTIL_ADDR_H
#define CN_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CN_ADDR_V4 = 4, CN_ADDR_V6 = 6 };
enum { CN_ADDR_STR_MAX = 48 }; /* "[ffff:...:ffff]:65535" plus NUL */
enum { CN_ADDR_WIRE_V4 = 6, CN_ADDR_WIRE_V6 = 18 };

typedef struct cn_addr {
	uint8_t family; /* CN_ADDR_V4, CN_ADDR_V6, or 0 for "none" */
	uint8_t ip[16]; /* IPv4 uses the first 4 bytes; the rest are zero */
	uint16_t port;
} cn_addr;

/* Parse "a.b.c.d:port" or "[v6]:port". A missing port takes default_port
 * when default_port != 0. Returns 0 or CN_EINVAL. */
int cn_addr_parse(const char *text, uint16_t default_port, cn_addr *out);
/* Writes "a.b.c.d:port" / "[v6]:port" into buf (cap >= CN_ADDR_STR_MAX). */
void cn_addr_format(const cn_addr *a, char *buf, size_t cap);
bool cn_addr_eq(const cn_addr *a, const cn_addr *b);
/* Total order, for sorting and tie-breaks. */
int cn_addr_cmp(const cn_addr *a, const cn_addr *b);

/* Wire form. to_wire writes 6 or 18 bytes into out (cap >= 18) and returns
 * the length; from_wire returns 0 or CN_EINVAL for any other length or
 * a zero port. */
size_t cn_addr_to_wire(const cn_addr *a, uint8_t *out);
int cn_addr_from_wire(const uint8_t *in, size_t len, cn_addr *out);

#endif
