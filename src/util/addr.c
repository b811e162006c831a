#include "util/addr.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *out)
{
	if (*s == '\0' || strlen(s) > 5)
		return CN_EINVAL;
	unsigned v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return CN_EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return CN_EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int cn_addr_parse(const char *text, uint16_t default_port, cn_addr *out)
{
	char host[64];
	const char *port_s = NULL;
	memset(out, 0, sizeof *out);
	if (text == NULL)
		return CN_EINVAL;
	size_t n = strlen(text);
	if (n == 0 || n >= sizeof host)
		return CN_EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close == text + 1)
			return CN_EINVAL;
		size_t hl = (size_t)(close - text - 1);
		memcpy(host, text + 1, hl);
		host[hl] = '\0';
		if (close[1] == ':')
			port_s = close + 2;
		else if (close[1] != '\0')
			return CN_EINVAL;
		if (inet_pton(AF_INET6, host, out->ip) != 1)
			return CN_EINVAL;
		out->family = CN_ADDR_V6;
	} else {
		const char *colon = strchr(text, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return CN_EINVAL; /* bare IPv6 needs brackets */
		size_t hl = colon ? (size_t)(colon - text) : n;
		memcpy(host, text, hl);
		host[hl] = '\0';
		if (colon)
			port_s = colon + 1;
		if (inet_pton(AF_INET, host, out->ip) != 1)
			return CN_EINVAL;
		out->family = CN_ADDR_V4;
	}
	if (port_s != NULL) {
		if (parse_port(port_s, &out->port) != 0)
			return CN_EINVAL;
	} else if (default_port != 0) {
		out->port = default_port;
	} else {
		return CN_EINVAL;
	}
	return 0;
}

void cn_addr_format(const cn_addr *a, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	if (a->family == CN_ADDR_V4) {
		inet_ntop(AF_INET, a->ip, ip, sizeof ip);
		snprintf(buf, cap, "%s:%u", ip, (unsigned)a->port);
	} else if (a->family == CN_ADDR_V6) {
		inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
		snprintf(buf, cap, "[%s]:%u", ip, (unsigned)a->port);
	} else {
		snprintf(buf, cap, "-");
	}
}

bool cn_addr_eq(const cn_addr *a, const cn_addr *b)
{
	return cn_addr_cmp(a, b) == 0;
}

int cn_addr_cmp(const cn_addr *a, const cn_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->ip, b->ip, 16);
	if (c != 0)
		return c < 0 ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

size_t cn_addr_to_wire(const cn_addr *a, uint8_t *out)
{
	size_t iplen = a->family == CN_ADDR_V6 ? 16 : 4;
	memcpy(out, a->ip, iplen);
	out[iplen] = (uint8_t)(a->port >> 8);
	out[iplen + 1] = (uint8_t)(a->port & 0xff);
	return iplen + 2;
}

int cn_addr_from_wire(const uint8_t *in, size_t len, cn_addr *out)
{
	memset(out, 0, sizeof *out);
	if (len == CN_ADDR_WIRE_V4)
		out->family = CN_ADDR_V4;
	else if (len == CN_ADDR_WIRE_V6)
		out->family = CN_ADDR_V6;
	else
		return CN_EINVAL;
	size_t iplen = len - 2;
	memcpy(out->ip, in, iplen);
	out->port = (uint16_t)((in[iplen] << 8) | in[iplen + 1]);
	if (out->port == 0)
		return CN_EINVAL;
	return 0;
}
