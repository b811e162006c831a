/* A numeric-only getaddrinfo for the static canopy binary.
 *
 * glibc's getaddrinfo loads NSS modules at run time, which a static binary
 * can only do with the exact glibc it was linked with (the linker warns).
 * canopy resolves host names itself (util/resolve.h); the one other caller
 * is NNG's TCP transport, and canopy only ever hands NNG numeric URLs
 * (tcp://IP:PORT, built from cn_addr). So the static build links this
 * replacement, which parses numeric hosts and ports and refuses names with
 * EAI_NONAME; libc's version is then never linked in. Built only into the
 * static binary (and tests/test_gai.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct gai_one {
	struct addrinfo ai;
	struct sockaddr_storage ss;
} gai_one;

static int port_of(const char *service, uint16_t *port)
{
	if (service == NULL || *service == 0) {
		*port = 0;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(service, &end, 10);
	if (errno != 0 || *end != 0 || p > 65535)
		return EAI_SERVICE; /* service names would need NSS too */
	*port = (uint16_t)p;
	return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	struct addrinfo h = {0};
	if (hints != NULL)
		h = *hints;
	if (node == NULL && service == NULL)
		return EAI_NONAME;
	uint16_t port;
	int rc = port_of(service, &port);
	if (rc != 0)
		return rc;
	gai_one *one = calloc(1, sizeof *one);
	if (one == NULL)
		return EAI_MEMORY;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&one->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&one->ss;
	int family = 0;
	if (node == NULL) { /* passive: any address; loopback otherwise */
		if (h.ai_family == AF_INET6) {
			family = AF_INET6;
			s6->sin6_addr = (h.ai_flags & AI_PASSIVE) ? in6addr_any : in6addr_loopback;
		} else {
			family = AF_INET;
			s4->sin_addr.s_addr = htonl((h.ai_flags & AI_PASSIVE) ? INADDR_ANY
									  : INADDR_LOOPBACK);
		}
	} else if (h.ai_family != AF_INET6 && inet_pton(AF_INET, node, &s4->sin_addr) == 1) {
		family = AF_INET;
	} else if (h.ai_family != AF_INET && inet_pton(AF_INET6, node, &s6->sin6_addr) == 1) {
		family = AF_INET6;
	} else {
		free(one);
		return EAI_NONAME;
	}
	if (family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		one->ai.ai_addrlen = sizeof *s4;
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		one->ai.ai_addrlen = sizeof *s6;
	}
	one->ai.ai_family = family;
	one->ai.ai_socktype = h.ai_socktype;
	one->ai.ai_protocol = h.ai_protocol;
	one->ai.ai_addr = (struct sockaddr *)&one->ss;
	*res = &one->ai;
	return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
	/* Every list this file returns is one gai_one, whose first member is
	 * the addrinfo. */
	free(res);
}
