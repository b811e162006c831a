#include "agent/agent.h"
#include "agent/workloads.h"
#include "util/resolve.h"
#include "agent/sysinfo.h"
#include "crypto/crypto.h"
#include "crypto/identity.h"
#include "crypto/keytext.h"
#include <sodium.h>
#include <netdb.h>
#include "crypto/seal.h"
#include "util/err.h"
#include "wire/admin.h"
#include "wire/keyop.h"

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/ipc/ipc.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Work done per readiness before going back to poll(): keeps one busy
 * source from starving the others and the timers. */
enum { BATCH_MAX = 64 };

uint64_t cn_agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cn_agent_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cn_agent_log(const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s.%03ldZ ", stamp, ts.tv_nsec / 1000000);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- addresses ---------------------------------------------------------- */

static socklen_t to_sockaddr(const cn_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (a->family == CN_ADDR_V4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		memcpy(&s4->sin_addr, a->ip, 4);
		return sizeof *s4;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(a->port);
	memcpy(&s6->sin6_addr, a->ip, 16);
	return sizeof *s6;
}

static void from_sockaddr(const struct sockaddr_storage *ss, cn_addr *a)
{
	memset(a, 0, sizeof *a);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		a->family = CN_ADDR_V4;
		memcpy(a->ip, &s4->sin_addr, 4);
		a->port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		a->family = CN_ADDR_V6;
		memcpy(a->ip, &s6->sin6_addr, 16);
		a->port = ntohs(s6->sin6_port);
	}
}

/* Resolve "host:port" once, at start (names allowed here, unlike in core;
 * util/resolve.h says how, without NSS in this static binary). */
static int resolve(const char *text, cn_addr *out)
{
	char err[256];
	int rc = cn_resolve(text, CN_AGENT_PORT_DEFAULT, NULL, NULL, out, err, sizeof err);
	if (rc != 0)
		cn_agent_log("error: %s", err);
	return rc;
}

static void url_of(const cn_addr *a, char *url, size_t cap)
{
	char t[CN_ADDR_STR_MAX];
	cn_addr_format(a, t, sizeof t);
	snprintf(url, cap, "tcp://%s", t);
}

/* ---- files --------------------------------------------------------------- */

static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	ssize_t r;
	while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (n == cap)
		return -EFBIG;
	*len = n;
	return 0;
}

/* Write via a temporary file and rename, so a crash leaves the old or the
 * new content, never a torn one. */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[CN_PATH_MAX + 16];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w <= 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			return -e;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) != 0)
		return -errno;
	return 0;
}

static int load_keyring(cn_agent *a)
{
	char text[8192], err[256];
	size_t len = 0;
	int rc = read_file(a->keyring_path, text, sizeof text - 1, &len);
	if (rc != 0) {
		cn_agent_log("error: cannot read key ring %s: %s%s", a->keyring_path, strerror(-rc),
			     rc == -ENOENT ? " (make one with: canopy keygen > FILE, then --keyring FILE)" : "");
		return CN_EIO;
	}
	text[len] = '\0';
	size_t line = 0;
	rc = cn_keytext_parse_ring((const uint8_t *)text, len, &a->ring, err, sizeof err, &line);
	sodium_memzero(text, sizeof text);
	if (rc != 0) {
		cn_agent_log("error: key ring %s is malformed: %s", a->keyring_path, err);
		return CN_EINVAL;
	}
	return 0;
}

static int save_keyring(cn_agent *a)
{
	char text[CN_KEYTEXT_RING_MAX];
	size_t len;
	int rc = cn_keytext_format_ring(&a->ring, text, sizeof text, &len);
	if (rc == 0)
		rc = write_file_atomic(a->keyring_path, text, len, 0600) ? CN_EIO : 0;
	sodium_memzero(text, sizeof text);
	return rc;
}

static int load_identity(cn_agent *a, cn_sigkey *id)
{
	char path[CN_PATH_MAX + 16], text[1024], err[256];
	size_t len;
	snprintf(path, sizeof path, "%s/node.key", a->opts.data_dir);
	int rc = read_file(path, text, sizeof text - 1, &len);
	if (rc == -ENOENT) {
		if ((rc = cn_sigkey_generate(id)) != 0)
			return rc;
		rc = cn_sigkey_to_blob(id, (uint8_t *)text, sizeof text, &len);
		if (rc == 0 && write_file_atomic(path, text, len, 0600) != 0) {
			cn_agent_log("error: cannot write %s: %s", path, strerror(errno));
			rc = CN_EIO;
		}
		sodium_memzero(text, sizeof text);
		if (rc == 0)
			cn_agent_log("created node identity %s", path);
		return rc;
	}
	if (rc != 0) {
		cn_agent_log("error: cannot read %s: %s", path, strerror(-rc));
		return CN_EIO;
	}
	text[len] = '\0';
	rc = cn_sigkey_from_blob(id, (const uint8_t *)text, len, err, sizeof err);
	sodium_memzero(text, sizeof text);
	if (rc != 0)
		cn_agent_log("error: %s: %s", path, err);
	return rc;
}

/* ---- sealing and sending ------------------------------------------------- */

/* Seal with the key whose id is key_id, or with the primary when key_id is
 * 0. Answering a peer in the key it used lets a member that missed a
 * rotation still hear us while that key is installed here. */
static int seal_with(cn_agent *a, uint32_t key_id, uint8_t plane, const uint8_t *plain, size_t len,
		     uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t primary;
	if (key_id == 0 || (cn_keyring_primary_id(&a->ring, &primary) == 0 && primary == key_id))
		return cn_seal(&a->ring, plane, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX, plain, len,
			       out, cap, outlen);
	const uint8_t *key = cn_keyring_find(&a->ring, key_id);
	if (key == NULL)
		return CN_ENOKEY;
	cn_keyring one;
	uint32_t id;
	cn_keyring_init(&one);
	int rc = cn_keyring_install(&one, key, &id);
	if (rc == 0)
		rc = cn_seal(&one, plane, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX, plain, len, out,
			     cap, outlen);
	cn_keyring_wipe(&one);
	return rc;
}

static void send_datagram(cn_agent *a, const cn_addr *to, const uint8_t *data, size_t len)
{
	uint8_t sealed[CN_DATAGRAM_MAX];
	size_t slen;
	int rc = cn_seal(&a->ring, CN_PLANE_DATAGRAM, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX,
			 data, len, sealed, sizeof sealed, &slen);
	if (rc != 0) {
		a->send_errors++;
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(to, &ss);
	if (sendto(a->udp_fd, sealed, slen, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0)
		a->send_errors++;
}

static void stream_close(cn_agent *a, cn_stream_req *r)
{
	(void)a;
	if (r->pending) {
		nng_msg_free(r->pending);
		r->pending = NULL;
	}
	nng_close(r->sock);
	r->used = false;
}

static void core_stream_failed(cn_agent *a, uint32_t core_id, uint64_t now_ms)
{
	cn_node_stream_result(a->node, core_id, NULL, 0, now_ms);
}

static int stream_start_key(cn_agent *a, uint8_t owner, const cn_addr *to, const char *peer,
			    const uint8_t *plain, size_t len, uint64_t now_ms, uint32_t seal_key_id,
			    cn_stream_req **out);

/* Hand a waiting request to NNG if it can take it without blocking. */
static void stream_try_send(cn_stream_req *r)
{
	if (r->pending == NULL)
		return;
	if (nng_sendmsg(r->sock, r->pending, NNG_FLAG_NONBLOCK) == 0)
		r->pending = NULL; /* NNG owns it now */
}

int cn_agent_stream_start(cn_agent *a, uint8_t owner, const cn_addr *to, const char *peer,
			  const uint8_t *plain, size_t len, uint64_t now_ms, cn_stream_req **out)
{
	return stream_start_key(a, owner, to, peer, plain, len, now_ms, 0, out);
}

/* seal_key_id 0 seals with the primary; otherwise with that installed key
 * (a key sync must be readable by a peer that lacks our primary). */
static int stream_start_key(cn_agent *a, uint8_t owner, const cn_addr *to, const char *peer,
			    const uint8_t *plain, size_t len, uint64_t now_ms, uint32_t seal_key_id,
			    cn_stream_req **out)
{
	cn_stream_req *r = NULL;
	for (size_t i = 0; i < CN_STREAMS_MAX; i++) {
		if (!a->reqs[i].used) {
			r = &a->reqs[i];
			break;
		}
	}
	if (r == NULL)
		return CN_EFULL;
	size_t slen;
	int rc = seal_with(a, seal_key_id, CN_PLANE_STREAM, plain, len, a->seal_buf, CN_STREAM_MAX, &slen);
	if (rc != 0)
		return rc;
	char url[128];
	url_of(to, url, sizeof url);
	memset(r, 0, sizeof *r);
	if (nng_req0_open(&r->sock) != 0)
		return CN_EIO;
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, CN_STREAM_MAX);
	/* The request is sent once; our own deadline decides failure. */
	nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, CN_STREAM_TIMEOUT_MS * 2);
	nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_msg *m = NULL;
	int nrc;
	/* The dial completes in the background; until a connection exists
	 * the request cannot be handed to NNG without blocking, so it waits
	 * in r->pending and the loop polls NNG_OPT_SENDFD for the moment it
	 * can go. */
	if ((nrc = nng_dial(r->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
	    (nrc = nng_socket_get_int(r->sock, NNG_OPT_RECVFD, &r->fd)) != 0 ||
	    (nrc = nng_socket_get_int(r->sock, NNG_OPT_SENDFD, &r->send_fd)) != 0 ||
	    (nrc = nng_msg_alloc(&m, 0)) != 0 || (nrc = nng_msg_append(m, a->seal_buf, slen)) != 0) {
		cn_agent_log("stream to %s: %s", url, nng_strerror(nrc));
		if (m)
			nng_msg_free(m);
		nng_close(r->sock);
		return CN_EIO;
	}
	r->pending = m;
	stream_try_send(r);
	r->used = true;
	r->owner = owner;
	if (peer != NULL)
		snprintf(r->peer, sizeof r->peer, "%s", peer);
	else
		cn_addr_format(to, r->peer, sizeof r->peer);
	r->deadline_ms = now_ms + CN_STREAM_TIMEOUT_MS;
	if (out)
		*out = r;
	return 0;
}

static void handle_keyop_reply(cn_agent *a, cn_stream_req *r, const uint8_t *plain, size_t len);
static void note_unknown_key(cn_agent *a, const char *from, const uint8_t *pkt, size_t len);

static void stream_done(cn_agent *a, cn_stream_req *r, const uint8_t *plain, size_t len,
			uint64_t now_ms)
{
	uint8_t owner = r->owner;
	uint32_t core_id = r->core_id;
	if (owner == OWNER_CORE) {
		char peer[sizeof r->peer];
		memcpy(peer, r->peer, sizeof peer);
		stream_close(a, r);
		if (plain) {
			cn_node_stream_result(a->node, core_id, plain, len, now_ms);
			return;
		}
		core_stream_failed(a, core_id, now_ms);
		/* Alone and unanswered: the likeliest causes are a seed that is
		 * down or a key ring that shares no key with the fleet's. */
		a->lonely_failures = cn_node_member_count(a->node) <= 1 ? a->lonely_failures + 1 : 0;
		if (a->lonely_failures && (a->lonely_failures & (a->lonely_failures - 1)) == 0) {
			uint32_t primary = 0;
			cn_keyring_primary_id(&a->ring, &primary);
			cn_agent_log("join: no answer from %s (%llu attempts so far); if it is up, its key "
				     "ring may not share a key with ours (our primary: %08x)", peer,
				     (unsigned long long)a->lonely_failures, (unsigned)primary);
		}
	} else if (owner == OWNER_KEYOP) {
		handle_keyop_reply(a, r, plain, len);
		stream_close(a, r);
	} else {
		stream_close(a, r);
	}
}

static void stream_readable(cn_agent *a, cn_stream_req *r, uint64_t now_ms)
{
	nng_msg *m;
	if (nng_recvmsg(r->sock, &m, NNG_FLAG_NONBLOCK) != 0)
		return;
	size_t plen;
	cn_seal_hdr hdr;
	int rc = cn_seal_open(&a->ring, CN_PLANE_STREAM, nng_msg_body(m), nng_msg_len(m),
			      a->open_buf, CN_STREAM_MAX, &plen, &hdr);
	if (rc != 0) {
		a->unsealable++;
		if (rc == CN_ENOKEY)
			note_unknown_key(a, r->peer, nng_msg_body(m), nng_msg_len(m));
		nng_msg_free(m);
		stream_done(a, r, NULL, 0, now_ms);
		return;
	}
	nng_msg_free(m);
	stream_done(a, r, a->open_buf, plen, now_ms);
}

/* ---- outbox ---------------------------------------------------------------- */

static void flush_outbox(cn_agent *a, uint64_t now_ms)
{
	cn_out out;
	/* Bounded: the core's outbox is bounded, but never loop forever on a
	 * misbehaving core either. */
	for (int i = 0; i < 100000 && cn_node_next_output(a->node, &out) == 0; i++) {
		switch (out.kind) {
		case CN_OUT_DATAGRAM:
			send_datagram(a, &out.to, out.data, out.len);
			break;
		case CN_OUT_STREAM: {
			cn_stream_req *r;
			int rc = cn_agent_stream_start(a, OWNER_CORE, &out.to, NULL, out.data, out.len,
						       now_ms, &r);
			if (rc == 0) {
				r->core_id = out.stream_id;
			} else {
				core_stream_failed(a, out.stream_id, now_ms);
			}
			break;
		}
		case CN_OUT_EVENT:
			if (out.event.type == CN_EV_SELF_INCARNATION) {
				if (out.event.incarnation > a->incarnation_saved &&
				    cn_store_meta_put_u64(a->store, "incarnation", out.event.incarnation) == 0)
					a->incarnation_saved = out.event.incarnation;
			} else {
				cn_agent_publish_event(a, &out.event);
			}
			break;
		default:
			break;
		}
	}
}

/* ---- receiving ------------------------------------------------------------- */

/* A peer sealing with a key that is not our primary may have missed a
 * rotation while it was away: send it every key we hold, so it can open
 * the fleet's traffic again. Only installs, never a change of primary: a
 * peer that is merely ahead of us in a rotation must not be pulled back.
 * At most one sync per peer address per CN_KEYSYNC_INTERVAL_MS. */
static void maybe_keysync(cn_agent *a, const cn_addr *to, uint32_t their_key_id, uint64_t now_ms)
{
	size_t oldest = 0;
	for (size_t i = 0; i < CN_KEYSYNC_SLOTS; i++) {
		if (cn_addr_eq(&a->keysync_addr[i], to)) {
			if (now_ms < a->keysync_at[i] + CN_KEYSYNC_INTERVAL_MS)
				return;
			oldest = i;
			break;
		}
		if (a->keysync_at[i] < a->keysync_at[oldest])
			oldest = i;
	}
	a->keysync_addr[oldest] = *to;
	a->keysync_at[oldest] = now_ms;
	cn_keyop_req req = {.op = CN_KEYOP_SYNC, .version = a->ring_version};
	memcpy(req.ring[req.n_ring++], cn_keyring_primary(&a->ring), CN_KEY_BYTES);
	for (size_t i = 0; i < cn_keyring_count(&a->ring) && req.n_ring < CN_KEYOP_KEYS_MAX; i++)
		if (cn_keyring_at(&a->ring, i) != cn_keyring_primary(&a->ring))
			memcpy(req.ring[req.n_ring++], cn_keyring_at(&a->ring, i), CN_KEY_BYTES);
	uint8_t buf[1024];
	size_t len;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_keyop_req_encode(&w, &req);
	sodium_memzero(&req, sizeof req);
	if (cn_mp_writer_end(&w, &len) == 0 &&
	    stream_start_key(a, OWNER_KEYSYNC, to, NULL, buf, len, now_ms, their_key_id, NULL) == 0)
		a->keysyncs_sent++;
	sodium_memzero(buf, sizeof buf);
}

/* Traffic sealed with a key we lack: one of the two key rings missed a
 * rotation. Say so to the operator now and then, not per packet. */
static void note_unknown_key(cn_agent *a, const char *from, const uint8_t *pkt, size_t len)
{
	cn_seal_hdr peek;
	uint32_t primary = 0;
	a->unknown_key++;
	if (cn_seal_peek(pkt, len, &peek) == 0)
		a->last_unknown_key_id = peek.key_id;
	if ((a->unknown_key & (a->unknown_key - 1)) != 0)
		return;
	cn_keyring_primary_id(&a->ring, &primary);
	cn_agent_log("warning: %llu messages (latest from %s) sealed with key %08x, which this agent "
		     "does not have (our primary: %08x): one of the two key rings is out of date; "
		     "see `canopy keys list` and `canopy keys install`",
		     (unsigned long long)a->unknown_key, from, (unsigned)a->last_unknown_key_id,
		     (unsigned)primary);
}

/* A member whose node is revoked (refresh_revoked keeps the list). */
static bool from_revoked(const cn_agent *a, const cn_addr *from)
{
	for (size_t i = 0; i < a->n_revoked_addrs; i++)
		if (cn_addr_eq(&a->revoked_addrs[i], from))
			return true;
	return false;
}

static void udp_readable(cn_agent *a, uint64_t now_ms)
{
	uint8_t pkt[CN_DATAGRAM_MAX + 1];
	uint8_t plain[CN_DATAGRAM_MAX];
	for (int i = 0; i < BATCH_MAX; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		ssize_t n = recvfrom(a->udp_fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
		if (n < 0)
			return;
		cn_addr from;
		from_sockaddr(&ss, &from);
		size_t plen;
		cn_seal_hdr hdr;
		int rc = n > CN_DATAGRAM_MAX ? CN_ELIMIT
					     : cn_seal_open(&a->ring, CN_PLANE_DATAGRAM, pkt, (size_t)n,
							    plain, sizeof plain, &plen, &hdr);
		if (rc != 0) {
			a->unsealable++;
			if (rc == CN_ENOKEY) {
				char t[CN_ADDR_STR_MAX];
				cn_addr_format(&from, t, sizeof t);
				note_unknown_key(a, t, pkt, (size_t)n);
			}
			continue;
		}
		if (a->n_revoked_addrs > 0 && from_revoked(a, &from)) {
			a->revoked_dropped++;
			continue;
		}
		cn_node_recv(a->node, &from, plain, plen, now_ms);
		uint32_t primary;
		if (cn_keyring_primary_id(&a->ring, &primary) == 0 && hdr.key_id != primary)
			maybe_keysync(a, &from, hdr.key_id, now_ms);
	}
}

static void serve_keyop(cn_agent *a, const uint8_t *plain, size_t len, cn_mp_writer *w);

/* The TCP peer of a stream request (its ephemeral port, for logs and for
 * the core's bookkeeping; members are known by their advertised address). */
static void remote_addr(nng_msg *m, cn_addr *from)
{
	nng_sockaddr sa;
	memset(from, 0, sizeof *from);
	if (nng_pipe_get_addr(nng_msg_get_pipe(m), NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET) {
		from->family = CN_ADDR_V4;
		memcpy(from->ip, &sa.s_in.sa_addr, 4);
		from->port = ntohs(sa.s_in.sa_port);
	} else if (sa.s_family == NNG_AF_INET6) {
		from->family = CN_ADDR_V6;
		memcpy(from->ip, sa.s_in6.sa_addr, 16);
		from->port = ntohs(sa.s_in6.sa_port);
	}
}

static void stream_srv_readable(cn_agent *a, uint64_t now_ms)
{
	for (int i = 0; i < BATCH_MAX; i++) {
		nng_msg *m;
		if (nng_recvmsg(a->stream_srv, &m, NNG_FLAG_NONBLOCK) != 0)
			return;
		cn_addr from;
		remote_addr(m, &from);
		size_t plen;
		cn_seal_hdr hdr;
		int rc = cn_seal_open(&a->ring, CN_PLANE_STREAM, nng_msg_body(m), nng_msg_len(m),
				      a->open_buf, CN_STREAM_MAX, &plen, &hdr);
		const uint8_t *reply = NULL;
		size_t reply_len = 0;
		uint8_t small[1024];
		if (rc != 0) {
			a->unsealable++;
			if (rc == CN_ENOKEY) {
				char t[CN_ADDR_STR_MAX];
				cn_addr_format(&from, t, sizeof t);
				note_unknown_key(a, t, nng_msg_body(m), nng_msg_len(m));
			}
		} else {
			uint8_t type = 0;
			if (cn_stream_peek_type(a->open_buf, plen, &type) == 0 &&
			    (type == CN_MSG_KEY_OP)) {
				cn_mp_writer w;
				cn_mp_writer_init(&w, small, sizeof small);
				serve_keyop(a, a->open_buf, plen, &w);
				if (cn_mp_writer_end(&w, &reply_len) == 0)
					reply = small;
			} else if (cn_node_stream_serve(a->node, &from, a->open_buf, plen, now_ms, &reply,
							&reply_len) != 0) {
				reply = NULL;
			}
		}
		nng_msg_free(m);
		if (reply == NULL)
			continue; /* the requester times out */
		size_t slen;
		if (seal_with(a, hdr.key_id, CN_PLANE_STREAM, reply, reply_len, a->seal_buf,
			      CN_STREAM_MAX, &slen) != 0)
			continue;
		nng_msg *out;
		if (nng_msg_alloc(&out, 0) == 0) {
			if (nng_msg_append(out, a->seal_buf, slen) != 0 ||
			    nng_sendmsg(a->stream_srv, out, NNG_FLAG_NONBLOCK) != 0)
				nng_msg_free(out);
		}
	}
}

/* ---- key operations ---------------------------------------------------------- */

static int save_ring_version(cn_agent *a, uint64_t version)
{
	if (version <= a->ring_version)
		return 0;
	int rc = cn_store_meta_put_u64(a->store, "keyring_version", version);
	if (rc == 0)
		a->ring_version = version;
	return rc;
}

int cn_agent_keyop_apply(cn_agent *a, uint8_t op, const uint8_t key[CN_KEY_BYTES], uint64_t version,
			 char *err, size_t errcap)
{
	int rc = 0;
	uint32_t id = key ? cn_key_id(key) : 0;
	err[0] = '\0';
	switch (op) {
	case CN_KEYOP_LIST:
		return 0;
	case CN_KEYOP_INSTALL:
		rc = cn_keyring_install(&a->ring, key, &id);
		if (rc == CN_EEXIST)
			return save_ring_version(a, version); /* idempotent across retries */
		if (rc == CN_EFULL)
			snprintf(err, errcap, "key ring full (%d keys): remove one first", CN_KEYRING_MAX);
		break;
	case CN_KEYOP_USE:
		rc = cn_keyring_use(&a->ring, id);
		if (rc == CN_ENOENT)
			snprintf(err, errcap, "key %08x is not installed: install it first", (unsigned)id);
		break;
	case CN_KEYOP_REMOVE:
		rc = cn_keyring_remove(&a->ring, id);
		if (rc == CN_ENOENT)
			return save_ring_version(a, version);
		if (rc == CN_EPERM)
			snprintf(err, errcap, "key %08x is the primary: use another key first", (unsigned)id);
		break;
	default:
		return CN_EINVAL;
	}
	if (rc == 0 && (rc = save_keyring(a)) != 0)
		snprintf(err, errcap, "cannot write key ring %s", a->keyring_path);
	/* version 0: the change starts here, one above all we have seen. */
	if (rc == 0 && (rc = save_ring_version(a, version ? version : a->ring_version + 1)) != 0)
		snprintf(err, errcap, "cannot record the key ring version: %s", cn_strerror(rc));
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errcap, "%s", cn_strerror(rc));
	if (rc == 0)
		cn_agent_log("key ring: %s %08x", op == CN_KEYOP_INSTALL ? "installed"
						  : op == CN_KEYOP_USE ? "now using" : "removed",
			     (unsigned)id);
	return rc;
}

static void fill_reply_ids(const cn_agent *a, cn_keyop_reply *rep)
{
	cn_keyring_entry e[CN_KEYRING_MAX];
	size_t n = cn_keyring_list(&a->ring, e);
	rep->n_ids = 0;
	for (size_t i = 0; i < n && i < CN_KEYOP_KEYS_MAX; i++) {
		rep->ids[rep->n_ids++] = e[i].id;
		if (e[i].primary)
			rep->primary = e[i].id;
	}
}

/* A peer's whole ring: install what we lack; adopt its primary only if its
 * ring is newer than ours (see wire/keyop.h), so a member that was away
 * during a rotation catches up and one that is ahead stays ahead. */
static int apply_sync(cn_agent *a, const cn_keyop_req *req)
{
	bool changed = false;
	int rc = 0;
	for (uint32_t i = 0; i < req->n_ring && rc == 0; i++) {
		uint32_t id;
		if (cn_keyring_find(&a->ring, cn_key_id(req->ring[i])) != NULL)
			continue;
		rc = cn_keyring_install(&a->ring, req->ring[i], &id);
		if (rc == 0) {
			changed = true;
			cn_agent_log("key ring: installed %08x from a peer (catching up on a rotation)",
				     (unsigned)id);
		}
	}
	uint32_t primary, theirs = cn_key_id(req->ring[0]);
	if (rc == 0 && req->version > a->ring_version && cn_keyring_primary_id(&a->ring, &primary) == 0 &&
	    primary != theirs && (rc = cn_keyring_use(&a->ring, theirs)) == 0) {
		changed = true;
		cn_agent_log("key ring: now using %08x, as the fleet does (ring version %llu)",
			     (unsigned)theirs, (unsigned long long)req->version);
	}
	if (changed) {
		a->keysyncs_applied++;
		if (rc == 0)
			rc = save_keyring(a);
	}
	if (rc == 0)
		rc = save_ring_version(a, req->version);
	return rc;
}

static void serve_keyop(cn_agent *a, const uint8_t *plain, size_t len, cn_mp_writer *w)
{
	cn_keyop_req req;
	cn_keyop_reply rep;
	memset(&rep, 0, sizeof rep);
	int rc = cn_keyop_req_decode(plain, len, &req);
	if (rc != 0) {
		rep.status = rc;
		snprintf(rep.err, sizeof rep.err, "malformed key operation: %s", cn_strerror(rc));
	} else if (req.op == CN_KEYOP_SYNC) {
		rep.status = apply_sync(a, &req);
	} else {
		rep.status = cn_agent_keyop_apply(a, req.op, req.has_key ? req.key : NULL, req.version,
						  rep.err, sizeof rep.err);
	}
	sodium_memzero(&req, sizeof req);
	fill_reply_ids(a, &rep);
	cn_keyop_reply_encode(w, &rep);
}

static void keyop_count_ids(cn_keyop *k, const uint32_t *ids, uint32_t n, uint32_t primary)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j;
		for (j = 0; j < k->n_ids && k->ids[j] != ids[i]; j++)
			;
		if (j == k->n_ids) {
			if (k->n_ids == sizeof k->ids / sizeof k->ids[0])
				continue;
			k->ids[k->n_ids++] = ids[i];
		}
		k->holders[j]++;
		if (ids[i] == primary)
			k->primaries[j]++;
	}
}

static void handle_keyop_reply(cn_agent *a, cn_stream_req *r, const uint8_t *plain, size_t len)
{
	cn_keyop *k = &a->keyop;
	if (!k->active)
		return;
	cn_keyop_reply rep;
	int rc = plain ? cn_keyop_reply_decode(plain, len, &rep) : CN_ETIMEDOUT;
	if (rc != 0) {
		k->failed++;
		cn_buf_printf(&k->failures, "%s: %s\n", r->peer,
			      plain ? "malformed reply" : "no answer (down, unreachable, or a different key ring)");
	} else if (rep.status != 0) {
		k->failed++;
		cn_buf_printf(&k->failures, "%s: %s\n", r->peer, rep.err[0] ? rep.err : cn_strerror(rep.status));
	} else {
		k->answered++;
		keyop_count_ids(k, rep.ids, rep.n_ids, rep.primary);
	}
}

/* ---- admin ---------------------------------------------------------------------- */

static bool admin_uid_allowed(const cn_agent *a, nng_msg *m, uint64_t *uid_out)
{
	uint64_t uid = UINT64_MAX;
	nng_pipe p = nng_msg_get_pipe(m);
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0)
		return false;
	*uid_out = uid;
	return uid == 0 || uid == (uint64_t)geteuid() ||
	       (a->opts.admin_uid >= 0 && uid == (uint64_t)a->opts.admin_uid);
}

static void admin_send(cn_agent *a, int status)
{
	size_t cap = a->reply.len + 64, len;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	cn_admin_reply_encode(&w, status, cn_buf_str(&a->reply), a->reply.len);
	nng_msg *m;
	if (cn_mp_writer_end(&w, &len) == 0 && nng_msg_alloc(&m, 0) == 0) {
		if (nng_msg_append(m, buf, len) != 0 || nng_sendmsg(a->admin, m, NNG_FLAG_NONBLOCK) != 0)
			nng_msg_free(m);
	}
	free(buf);
}

static void admin_readable(cn_agent *a, uint64_t now_ms)
{
	if (a->admin_deferred)
		return; /* rep serves one request at a time; finish the first */
	nng_msg *m;
	if (nng_recvmsg(a->admin, &m, NNG_FLAG_NONBLOCK) != 0)
		return;
	cn_buf_reset(&a->reply);
	uint64_t uid = UINT64_MAX;
	int status;
	cn_admin_req req;
	if (!admin_uid_allowed(a, m, &uid)) {
		a->admin_refused++;
		cn_buf_printf(&a->reply, "permission denied: uid %llu may not administer this agent "
			      "(allowed: root and uid %u)", (unsigned long long)uid, (unsigned)geteuid());
		status = CN_EPERM;
		cn_agent_log("admin: refused a request from uid %llu", (unsigned long long)uid);
	} else if ((status = cn_admin_req_decode(nng_msg_body(m), nng_msg_len(m), &req)) != 0) {
		cn_buf_printf(&a->reply, "malformed admin request: %s", cn_strerror(status));
	} else {
		status = cn_agent_admin(a, &req, now_ms);
	}
	nng_msg_free(m);
	if (status == CN_EAGAIN) {
		a->admin_deferred = true;
		return;
	}
	admin_send(a, status);
}

static void keyop_check_done(cn_agent *a, uint64_t now_ms)
{
	cn_keyop *k = &a->keyop;
	if (!k->active)
		return;
	bool pending = false;
	for (size_t i = 0; i < CN_STREAMS_MAX; i++)
		pending |= a->reqs[i].used && a->reqs[i].owner == OWNER_KEYOP;
	if (pending && now_ms < k->deadline_ms)
		return;
	int status = cn_agent_keyop_finish(a);
	k->active = false;
	sodium_memzero(k->key, sizeof k->key);
	if (a->admin_deferred) {
		a->admin_deferred = false;
		admin_send(a, status);
	}
}

/* ---- events ------------------------------------------------------------------- */

static void pipe_check_uid(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	/* Runs on an NNG thread: reads only immutable options, touches no
	 * node state. Closing the pipe refuses the subscriber. */
	const cn_agent *a = arg;
	uint64_t uid;
	(void)ev;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0)
		return;
	if (uid != 0 && uid != (uint64_t)geteuid() &&
	    !(a->opts.admin_uid >= 0 && uid == (uint64_t)a->opts.admin_uid))
		nng_pipe_close(p);
}

/* ---- setup ----------------------------------------------------------------------- */

static int open_udp(cn_agent *a)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(&a->bind, &ss);
	a->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->udp_fd < 0)
		return -errno;
	int big = 4 << 20;
	setsockopt(a->udp_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (bind(a->udp_fd, (struct sockaddr *)&ss, sl) != 0)
		return -errno;
	return 0;
}

static int listen_ipc(nng_socket s, const char *path, unsigned mode)
{
	char url[CN_PATH_MAX + 32];
	nng_listener l;
	snprintf(url, sizeof url, "ipc://%s", path);
	/* A socket file left by a killed agent would block the listener. Any
	 * live agent on this data dir was ruled out by the store lock. */
	unlink(path);
	int rc = nng_listener_create(&l, s, url);
	if (rc == 0)
		rc = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)mode);
	if (rc == 0)
		rc = nng_listener_start(l, 0);
	return rc;
}

static void signal_set(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGPIPE);
	sigaddset(mask, SIGCHLD); /* workloads exited: tick the runtime */
}

static int setup_sockets(cn_agent *a)
{
	char url[128], path[CN_PATH_MAX + 16];
	int rc = open_udp(a);
	if (rc != 0) {
		char t[CN_ADDR_STR_MAX];
		cn_addr_format(&a->bind, t, sizeof t);
		cn_agent_log("error: cannot bind UDP %s: %s", t, strerror(-rc));
		return CN_EIO;
	}
	url_of(&a->bind, url, sizeof url);
	if ((rc = nng_rep0_open(&a->stream_srv)) != 0 ||
	    (rc = nng_socket_set_size(a->stream_srv, NNG_OPT_RECVMAXSZ, CN_STREAM_MAX)) != 0 ||
	    (rc = nng_listen(a->stream_srv, url, NULL, 0)) != 0 ||
	    (rc = nng_socket_get_int(a->stream_srv, NNG_OPT_RECVFD, &a->stream_srv_fd)) != 0) {
		cn_agent_log("error: cannot listen on %s: %s", url, nng_strerror(rc));
		return CN_EIO;
	}
	snprintf(path, sizeof path, "%s/admin.sock", a->opts.data_dir);
	if ((rc = nng_rep0_open(&a->admin)) != 0 ||
	    (rc = nng_socket_set_size(a->admin, NNG_OPT_RECVMAXSZ, CN_ADMIN_REQUEST_MAX)) != 0 ||
	    (rc = listen_ipc(a->admin, path, a->opts.admin_mode)) != 0 ||
	    (rc = nng_socket_get_int(a->admin, NNG_OPT_RECVFD, &a->admin_fd)) != 0) {
		cn_agent_log("error: cannot open admin socket %s: %s", path, nng_strerror(rc));
		return CN_EIO;
	}
	snprintf(path, sizeof path, "%s/events.sock", a->opts.data_dir);
	if ((rc = nng_pub0_open(&a->events)) != 0 ||
	    (rc = nng_pipe_notify(a->events, NNG_PIPE_EV_ADD_POST, pipe_check_uid, a)) != 0 ||
	    (rc = listen_ipc(a->events, path, a->opts.admin_mode)) != 0) {
		cn_agent_log("error: cannot open event socket %s: %s", path, nng_strerror(rc));
		return CN_EIO;
	}
	sigset_t mask;
	signal_set(&mask);
	a->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return a->sig_fd < 0 ? CN_EIO : 0;
}

/* ---- policy replica ------------------------------------------------------- */

/* Meta key: the last wall time (ms) this agent was up with its replica,
 * written at start and hourly. With cn_policy_last_active() it tells how
 * long the replica may have missed the fleet's writes (the offline rule). */
#define META_POLICY_ONLINE "policy_online_ms"

static int load_trust(cn_agent *a, cn_trust *roots)
{
	cn_trust_init(roots);
	if (a->opts.trust[0] == '\0') {
		cn_agent_log("warning: no --trust FILE: this agent knows no operator root key and "
			     "refuses every policy write (make one with `canopy operator keygen --out "
			     "FILE`, then start agents with --trust FILE.pub)");
		return 0;
	}
	char *text = malloc(CN_TRUST_FILE_MAX + 1);
	char why[CN_TRUST_WHY_MAX];
	size_t len = 0, line = 0;
	if (text == NULL)
		return CN_ENOMEM;
	int rc = read_file(a->opts.trust, text, CN_TRUST_FILE_MAX + 1, &len);
	if (rc != 0) {
		cn_agent_log("error: --trust %s: %s", a->opts.trust,
			     rc == -EFBIG ? "larger than 64 KiB" : strerror(-rc));
		free(text);
		return CN_EIO;
	}
	rc = cn_trust_parse_roots(roots, (const uint8_t *)text, len, why, sizeof why, &line);
	free(text);
	if (rc != 0) {
		cn_agent_log("error: --trust %s: %s", a->opts.trust, why);
		return CN_EINVAL;
	}
	a->have_roots = true;
	cn_agent_log("trust: %u root operator key(s) from %s", roots->n_roots, a->opts.trust);
	return 0;
}

typedef struct name_list {
	char (*kind)[CN_DOC_KIND_MAX + 1];
	char (*name)[CN_DOC_NAME_MAX + 1];
	size_t n, cap;
} name_list;

static int collect_name(void *arg, const cn_doc *d)
{
	name_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *k = realloc(l->kind, cap * sizeof *l->kind);
		if (k == NULL)
			return CN_ENOMEM;
		l->kind = k;
		void *nm = realloc(l->name, cap * sizeof *l->name);
		if (nm == NULL)
			return CN_ENOMEM;
		l->name = nm;
		l->cap = cap;
	}
	memcpy(l->kind[l->n], d->kind, sizeof l->kind[0]);
	memcpy(l->name[l->n], d->name, sizeof l->name[0]);
	l->n++;
	return 0;
}

/* The offline rule (core/policy.h, TOMBSTONES): a replica that has been
 * away longer than the tombstone ttl may hold live versions of names the
 * fleet deleted and has since forgotten; sending them back through
 * anti-entropy would resurrect them. So it forgets every document (winner
 * and history; the audit chains stay: they only grow) and refetches from
 * the fleet when it joins. Only with seeds: an agent with no one to
 * refetch from keeps what it has and says so. */
static int policy_offline_rule(cn_agent *a, const cn_policy_config *cfg, uint64_t wall)
{
	uint64_t online = 0, last = cn_policy_last_active(a->policy);
	int rc = cn_store_meta_get_u64(a->store, META_POLICY_ONLINE, &online);
	if (rc != 0 && rc != CN_ENOENT)
		return rc;
	if (online > last)
		last = online;
	if (last == 0 || cn_policy_names(a->policy) == 0 || wall < last ||
	    wall - last <= cfg->tombstone_ttl_ms)
		return 0;
	unsigned long long days = (unsigned long long)((wall - last) / 86400000u);
	if (a->opts.n_seeds == 0) {
		cn_agent_log("warning: policy: this replica was last active %llu day(s) ago, longer "
			     "than the tombstone ttl; it keeps its %u document(s) because it has no "
			     "--seed to refetch from (deletions it missed may come back)", days,
			     cn_policy_names(a->policy));
		return 0;
	}
	name_list l = {0};
	rc = cn_policy_list(a->policy, NULL, collect_name, &l);
	cn_policy_store st = cn_policy_lmdb_store(a->policy_lmdb);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		cn_policy_commit c = {.erase_kind = l.kind[i], .erase_name = l.name[i],
				      .history_max = cfg->history_max};
		rc = st.ops->commit(st.ctx, &c);
	}
	if (rc == 0) {
		a->policy_wiped = l.n;
		cn_agent_log("policy: last active %llu day(s) ago, longer than the tombstone ttl: "
			     "forgot %zu document(s); they are fetched again from the fleet", days, l.n);
	}
	free(l.kind);
	free(l.name);
	return rc;
}

static int open_policy(cn_agent *a, uint64_t wall)
{
	char err[512];
	cn_trust roots;
	int rc = load_trust(a, &roots);
	if (rc != 0)
		return rc;
	if ((rc = cn_policy_lmdb_open(a->store, &a->policy_lmdb, err, sizeof err)) != 0) {
		cn_agent_log("error: policy store: %s", err);
		cn_trust_free(&roots);
		return rc;
	}
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, a->opts.name);
	for (int pass = 0; pass < 2; pass++) {
		err[0] = '\0';
		rc = cn_policy_open(&cfg, cn_policy_lmdb_store(a->policy_lmdb), &roots, wall,
				    &a->policy, err, sizeof err);
		if (rc != 0) {
			cn_agent_log("error: policy replica: %s%s%s", cn_strerror(rc), err[0] ? ": " : "",
				     err);
			break;
		}
		if (pass == 1)
			break;
		rc = policy_offline_rule(a, &cfg, wall);
		if (rc != 0) {
			cn_agent_log("error: policy: offline rule: %s", cn_strerror(rc));
			break;
		}
		if (a->policy_wiped == 0)
			break;
		/* Reopen so the digest and counts match the emptied store. */
		cn_policy_free(a->policy);
		a->policy = NULL;
	}
	cn_trust_free(&roots);
	if (rc == 0 && (rc = cn_store_meta_put_u64(a->store, META_POLICY_ONLINE, wall)) != 0)
		cn_agent_log("error: store: cannot record the policy online time: %s", cn_strerror(rc));
	if (rc == 0)
		cn_agent_log("policy: %u document(s), %s", cn_policy_names(a->policy),
			     a->have_roots ? "operator writes accepted from trusted keys"
					   : "no root key: writes refused");
	return rc;
}

/* The replica's clock runs on wall time, the node's on the monotonic
 * clock: tell the node the difference (again every second, so a step of
 * the wall clock reaches replication within a second). */
static void policy_wall_offset(cn_agent *a)
{
	int64_t wall = (int64_t)cn_agent_wall_ms(), mono = (int64_t)cn_agent_now_ms();
	cn_node_policy_wall_offset(a->node, wall - mono);
}

/* Hourly: forget tombstones older than the ttl, note that we are up. */
static void policy_housekeeping(cn_agent *a)
{
	uint64_t wall = cn_agent_wall_ms();
	uint32_t n = 0;
	int rc = cn_policy_collect(a->policy, wall, CN_POLICY_COLLECT_MAX, &n);
	if (rc != 0)
		cn_agent_log("policy: collecting tombstones: %s", cn_strerror(rc));
	else if (n > 0)
		cn_agent_log("policy: forgot %u tombstone(s) older than the ttl", n);
	cn_store_meta_put_u64(a->store, META_POLICY_ONLINE, wall);
}

/* Addresses of members whose node is revoked (trust "node/NAME"), so
 * their datagrams are dropped before they reach the node. Cheap: nothing
 * to do unless some node is revoked. */
static void refresh_revoked(cn_agent *a)
{
	const cn_trust *t = cn_policy_trust(a->policy);
	a->n_revoked_addrs = 0;
	for (uint32_t i = 0; i < t->n_revoked && a->n_revoked_addrs < CN_REVOKED_ADDRS_MAX; i++) {
		cn_member m;
		if (t->revoked[i].node && cn_node_member_find(a->node, t->revoked[i].writer, &m) == 0)
			a->revoked_addrs[a->n_revoked_addrs++] = m.addr;
	}
}

static int setup(cn_agent *a, uint64_t now_ms)
{
	char err[512];
	if (cn_crypto_init() != 0) {
		cn_agent_log("error: libsodium failed to initialise");
		return CN_EIO;
	}
	if (mkdir(a->opts.data_dir, 0700) != 0 && errno != EEXIST) {
		cn_agent_log("error: cannot create data directory %s: %s", a->opts.data_dir, strerror(errno));
		return CN_EIO;
	}
	if (resolve(a->opts.bind, &a->bind) != 0) {
		cn_agent_log("error: --bind %s is not HOST:PORT", a->opts.bind);
		return CN_EINVAL;
	}
	a->advertise = a->bind;
	if (a->opts.advertise[0] && resolve(a->opts.advertise, &a->advertise) != 0) {
		cn_agent_log("error: --advertise %s is not HOST:PORT", a->opts.advertise);
		return CN_EINVAL;
	}
	bool unspecified = true;
	for (int i = 0; i < 16; i++)
		unspecified &= a->advertise.ip[i] == 0;
	if (unspecified) {
		cn_agent_log("error: bound to a wildcard address: give --advertise HOST:PORT so peers "
			     "know where to reach this agent");
		return CN_EINVAL;
	}
	if (a->opts.keyring[0])
		snprintf(a->keyring_path, sizeof a->keyring_path, "%s", a->opts.keyring);
	else
		snprintf(a->keyring_path, sizeof a->keyring_path, "%s/keyring", a->opts.data_dir);
	cn_keyring_init(&a->ring);
	int rc = load_keyring(a);
	if (rc != 0)
		return rc;
	cn_sigkey id;
	if ((rc = load_identity(a, &id)) != 0)
		return rc;
	cn_sigkey_node_id(cn_sigkey_public(&id), a->node_id_hex);
	cn_sigkey_wipe(&id);

	if ((rc = cn_store_open(a->opts.data_dir, 0, &a->store, err, sizeof err)) != 0) {
		cn_agent_log("error: %s", err);
		return rc;
	}
	uint64_t inc = 0;
	rc = cn_store_meta_get_u64(a->store, "incarnation", &inc);
	if (rc != 0 && rc != CN_ENOENT) {
		cn_agent_log("error: store: cannot read incarnation: %s", cn_strerror(rc));
		return rc;
	}
	/* Start above anything we ever used; persist before anyone hears it. */
	inc += 1;
	if ((rc = cn_store_meta_put_u64(a->store, "incarnation", inc)) != 0) {
		cn_agent_log("error: store: cannot write incarnation: %s", cn_strerror(rc));
		return rc;
	}
	a->incarnation_saved = inc;
	rc = cn_store_meta_get_u64(a->store, "keyring_version", &a->ring_version);
	if (rc != 0 && rc != CN_ENOENT) {
		cn_agent_log("error: store: cannot read the key ring version: %s", cn_strerror(rc));
		return rc;
	}
	if ((rc = open_policy(a, cn_agent_wall_ms())) != 0)
		return rc;

	a->seal_buf = malloc(CN_STREAM_MAX);
	a->open_buf = malloc(CN_STREAM_MAX);
	if (a->seal_buf == NULL || a->open_buf == NULL)
		return CN_ENOMEM;
	if ((rc = setup_sockets(a)) != 0)
		return rc;

	cn_node_config cfg = a->opts.node;
	snprintf(cfg.name, sizeof cfg.name, "%s", a->opts.name);
	cfg.addr = a->advertise;
	cfg.incarnation = inc;
	cfg.meta = a->opts.meta;
	cn_sysinfo_capacity(&cfg.meta, "");
	cn_sysinfo_health(&cfg.meta, "");
	uint64_t seed;
	randombytes_buf(&seed, sizeof seed);
	if ((rc = cn_node_new(&cfg, NULL, seed, now_ms, &a->node)) != 0) {
		cn_agent_log("error: bad node configuration: %s", cn_strerror(rc));
		return rc;
	}
	if ((rc = cn_node_attach_policy(a->node, a->policy, now_ms)) != 0) {
		cn_agent_log("error: cannot attach the policy replica: %s", cn_strerror(rc));
		return rc;
	}
	policy_wall_offset(a); /* the replica's hybrid clock reads wall time */
	/* Workloads a previous agent left running are adopted here, before
	 * any placement: they are not stopped until the first one. */
	if ((rc = cn_workloads_open(a, now_ms, &a->workloads, err, sizeof err)) != 0) {
		cn_agent_log("error: %s", err);
		return rc;
	}
	a->next_collect_ms = now_ms + CN_POLICY_COLLECT_INTERVAL_MS;
	a->next_revoked_ms = now_ms;
	char t[CN_ADDR_STR_MAX];
	cn_addr_format(&a->advertise, t, sizeof t);
	cn_agent_log("agent %s (node id %s) at %s, incarnation %llu, %zu key(s), data %s", cfg.name,
		     a->node_id_hex, t, (unsigned long long)inc, cn_keyring_count(&a->ring),
		     a->opts.data_dir);
	if (a->opts.n_seeds > 0) {
		cn_addr seeds[CN_SEEDS_MAX];
		size_t n = 0;
		for (size_t i = 0; i < a->opts.n_seeds; i++) {
			if (resolve(a->opts.seeds[i], &seeds[n]) != 0) {
				cn_agent_log("error: --seed %s does not resolve", a->opts.seeds[i]);
				return CN_EINVAL;
			}
			if (!cn_addr_eq(&seeds[n], &a->advertise))
				n++;
		}
		if (n > 0)
			cn_node_join(a->node, seeds, n, now_ms);
	}
	a->next_health_ms = now_ms + CN_HEALTH_INTERVAL_MS;
	a->health_sent_ms = now_ms;
	if (a->opts.metrics[0]) {
		if ((rc = cn_metrics_start(a->opts.metrics, &a->metrics, err, sizeof err)) != 0) {
			cn_agent_log("error: %s", err);
			return rc;
		}
		a->next_metrics_ms = now_ms;
	}
	return 0;
}

static void teardown(cn_agent *a)
{
	cn_metrics_stop(a->metrics);
	for (size_t i = 0; i < CN_STREAMS_MAX; i++)
		if (a->reqs[i].used)
			stream_close(a, &a->reqs[i]);
	nng_close(a->stream_srv);
	nng_close(a->admin);
	nng_close(a->events);
	if (a->udp_fd >= 0)
		close(a->udp_fd);
	if (a->sig_fd >= 0)
		close(a->sig_fd);
	char path[CN_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/admin.sock", a->opts.data_dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/events.sock", a->opts.data_dir);
	unlink(path);
	cn_workloads_close(a->workloads); /* leaves workloads running: see the loop's end */
	cn_node_free(a->node);
	cn_policy_free(a->policy);
	cn_policy_lmdb_close(a->policy_lmdb);
	cn_store_close(a->store);
	cn_keyring_wipe(&a->ring);
	free(a->seal_buf);
	free(a->open_buf);
	cn_buf_free(&a->reply);
	cn_buf_free(&a->keyop.failures);
}

/* Health is for operators' views, never for placement, and every change
 * is gossiped to the whole fleet: republish only on a change worth a
 * message (load by a quarter and at least 0.5, free memory by a tenth,
 * the power source, the battery by 5 points), or after
 * CN_HEALTH_REFRESH_MS so views never go stale for long. The benchmark
 * showed small-step republishing costing 7x serf's bytes at 50 agents. */
static bool health_changed(const cn_meta *was, const cn_meta *now)
{
	uint32_t dl = was->load_milli > now->load_milli ? was->load_milli - now->load_milli
							: now->load_milli - was->load_milli;
	uint32_t dm = was->mem_free_mb > now->mem_free_mb ? was->mem_free_mb - now->mem_free_mb
							  : now->mem_free_mb - was->mem_free_mb;
	int db = (int)was->battery_pct - (int)now->battery_pct;
	return (dl >= 500 && dl * 4 >= was->load_milli) || dm * 10 > was->mem_free_mb ||
	       was->power != now->power || db >= 5 || db <= -5;
}

static void sample_health(cn_agent *a, uint64_t now_ms)
{
	cn_member self;
	cn_node_self(a->node, &self);
	cn_meta m = self.meta;
	cn_sysinfo_health(&m, "");
	if (health_changed(&self.meta, &m) || now_ms >= a->health_sent_ms + CN_HEALTH_REFRESH_MS) {
		cn_node_set_meta(a->node, &m, now_ms);
		a->health_sent_ms = now_ms;
	}
}

static void start_leave(cn_agent *a, uint64_t now_ms)
{
	if (a->leaving)
		return;
	a->leaving = true;
	a->leave_deadline_ms = now_ms + CN_LEAVE_TIMEOUT_MS;
	cn_agent_log("leaving the fleet");
	cn_node_leave(a->node, now_ms);
}

enum { WL_POLLFDS_MAX = 64 };

static int loop(cn_agent *a)
{
	struct pollfd pfd[4 + CN_STREAMS_MAX + WL_POLLFDS_MAX];
	assert(CN_STREAMS_MAX > 0);
	cn_stream_req *pmap[4 + CN_STREAMS_MAX + WL_POLLFDS_MAX];
	bool wl_force = true;
	while (!a->stop) {
		uint64_t now = cn_agent_now_ms();
		cn_node_tick(a->node, now);
		if (!a->leaving)
			cn_workloads_tick(a->workloads, a, now, wl_force);
		wl_force = false;
		for (size_t i = 0; i < CN_STREAMS_MAX; i++) {
			cn_stream_req *r = &a->reqs[i];
			if (r->used && now >= r->deadline_ms)
				stream_done(a, r, NULL, 0, now);
		}
		keyop_check_done(a, now);
		if (!a->leaving && now >= a->next_health_ms) {
			sample_health(a, now);
			a->next_health_ms = now + CN_HEALTH_INTERVAL_MS;
		}
		if (now >= a->next_collect_ms) {
			policy_housekeeping(a);
			a->next_collect_ms = now + CN_POLICY_COLLECT_INTERVAL_MS;
		}
		if (now >= a->next_revoked_ms) {
			policy_wall_offset(a); /* follows steps of the wall clock */
			refresh_revoked(a);
			a->next_revoked_ms = now + CN_REVOKED_REFRESH_MS;
		}
		if (a->metrics && now >= a->next_metrics_ms) {
			cn_buf page;
			cn_buf_init(&page, 1 << 20);
			cn_agent_render_metrics(a, &page);
			if (page.err == 0)
				cn_metrics_publish(a->metrics, cn_buf_str(&page), page.len);
			cn_buf_free(&page);
			a->next_metrics_ms = now + CN_METRICS_INTERVAL_MS;
		}
		flush_outbox(a, now);
		if (a->leaving && (cn_node_leave_done(a->node) || now >= a->leave_deadline_ms)) {
			cn_agent_log("left the fleet");
			/* Leaving for good: the fleet places our replicas elsewhere,
			 * so ours stop (a crash, by contrast, leaves them to be
			 * adopted by the next agent). */
			cn_workloads_stop_all(a->workloads, cn_agent_now_ms);
			break;
		}

		uint64_t deadline = cn_node_deadline(a->node);
		if (deadline > a->next_health_ms)
			deadline = a->next_health_ms;
		if (deadline > a->next_collect_ms)
			deadline = a->next_collect_ms;
		if (a->metrics && deadline > a->next_metrics_ms)
			deadline = a->next_metrics_ms;
		size_t n = 0;
		pfd[n] = (struct pollfd){.fd = a->udp_fd, .events = POLLIN};
		pmap[n++] = NULL;
		pfd[n] = (struct pollfd){.fd = a->stream_srv_fd, .events = POLLIN};
		pmap[n++] = NULL;
		pfd[n] = (struct pollfd){.fd = a->admin_fd, .events = a->admin_deferred ? 0 : POLLIN};
		pmap[n++] = NULL;
		pfd[n] = (struct pollfd){.fd = a->sig_fd, .events = POLLIN};
		pmap[n++] = NULL;
		for (size_t i = 0; i < CN_STREAMS_MAX; i++) {
			if (!a->reqs[i].used)
				continue;
			if (a->reqs[i].deadline_ms < deadline)
				deadline = a->reqs[i].deadline_ms;
			pfd[n] = (struct pollfd){.fd = a->reqs[i].pending ? a->reqs[i].send_fd : a->reqs[i].fd,
						 .events = POLLIN};
			pmap[n++] = &a->reqs[i];
		}
		if (a->keyop.active && a->keyop.deadline_ms < deadline)
			deadline = a->keyop.deadline_ms;
		if (a->leaving && a->leave_deadline_ms < deadline)
			deadline = a->leave_deadline_ms;
		size_t wl_first = n;
		if (!a->leaving) {
			uint64_t wd = cn_workloads_deadline(a->workloads);
			if (wd < deadline)
				deadline = wd;
			size_t k = cn_workloads_pollfds(a->workloads, &pfd[n], WL_POLLFDS_MAX);
			for (size_t i = 0; i < k && i < WL_POLLFDS_MAX; i++)
				pmap[n++] = NULL;
		}
		now = cn_agent_now_ms();
		int timeout = deadline <= now ? 0 : (int)(deadline - now > 1000 ? 1000 : deadline - now);
		if (a->leaving && timeout > 50)
			timeout = 50;
		int ready = poll(pfd, n, timeout);
		if (ready < 0 && errno != EINTR) {
			cn_agent_log("error: poll: %s", strerror(errno));
			return 1;
		}
		if (ready <= 0)
			continue;
		now = cn_agent_now_ms();
		if (pfd[0].revents & POLLIN)
			udp_readable(a, now);
		if (pfd[1].revents & POLLIN)
			stream_srv_readable(a, now);
		if (pfd[2].revents & POLLIN)
			admin_readable(a, now);
		if (pfd[3].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(a->sig_fd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGCHLD)
					wl_force = true;
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
					if (a->leaving)
						a->stop = true; /* second signal: stop now */
					start_leave(a, now);
				}
			}
		}
		for (size_t i = wl_first; i < n; i++)
			wl_force |= pfd[i].revents != 0; /* a health probe can progress */
		for (size_t i = 4; i < wl_first; i++) {
			if (!(pfd[i].revents & POLLIN) || !pmap[i]->used)
				continue;
			if (pmap[i]->pending)
				stream_try_send(pmap[i]);
			else
				stream_readable(a, pmap[i], now);
		}
	}
	return 0;
}

void cn_agent_request_leave(cn_agent *a, uint64_t now_ms)
{
	start_leave(a, now_ms);
}

int cn_agent_main(int argc, char **argv)
{
	/* Block the signals we read from a signalfd before NNG starts its
	 * threads: threads inherit the mask, and a thread that does not block
	 * SIGTERM would take it with the default action (exit, no leave). */
	sigset_t mask;
	signal_set(&mask);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	cn_agent *a = calloc(1, sizeof *a);
	if (a == NULL)
		return 1;
	a->udp_fd = -1;
	a->sig_fd = -1;
	cn_buf_init(&a->reply, CN_ADMIN_REPLY_MAX - 64);
	cn_buf_init(&a->keyop.failures, 64 * 1024);
	if (cn_agent_opts_parse(argc, argv, &a->opts) != 0) {
		free(a);
		return 2;
	}
	int code = 1;
	if (setup(a, cn_agent_now_ms()) == 0)
		code = loop(a);
	teardown(a);
	free(a);
	nng_fini();
	return code;
}
