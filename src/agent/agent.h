/* The canopy agent: one event loop that owns one node (design Rule 2).
 *
 * The loop poll()s the UDP socket, the NNG receive descriptors of the
 * stream listener, of outstanding stream requests and of the admin socket,
 * and a signalfd; it feeds what arrives to the core, then drains the core's
 * outbox onto the network. NNG's own threads never touch node state: we
 * only use non-blocking nng_recvmsg/nng_sendmsg from this thread.
 *
 * Files in the data directory:
 *   store/       LMDB (incarnation, key ring version, the policy replica)
 *   node.key     Ed25519 identity, 0600, made at first start
 *   keyring      the cluster key ring unless --keyring names another file
 *   admin.sock   CLI requests (NNG req/rep over IPC, mode 0600)
 *   events.sock  membership events for `canopy monitor` (NNG pub/sub) */
#ifndef CN_AGENT_AGENT_H
#define CN_AGENT_AGENT_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/metrics.h"
#include "agent/opts.h"
#include "core/node.h"
#include "core/policy.h"
#include "crypto/identity.h"
#include "crypto/keyring.h"
#include "store/policy_store.h"
#include "store/store.h"
#include "util/buf.h"

enum {
	CN_STREAMS_MAX = 64,           /* outstanding outbound stream requests */
	CN_STREAM_TIMEOUT_MS = 10000,  /* give up on a stream request after */
	CN_HEALTH_INTERVAL_MS = 10000, /* sample device health */
	CN_METRICS_INTERVAL_MS = 1000, /* refresh the /metrics snapshot */
	CN_HEALTH_REFRESH_MS = 300000, /* republish health at least this often */
	CN_LEAVE_TIMEOUT_MS = 5000,    /* longest wait for the leave to spread */
	CN_KEYOP_TIMEOUT_MS = 8000,    /* fleet-wide key operation */
	CN_KEYSYNC_SLOTS = 16,         /* peers remembered for key sync rate limit */
	CN_KEYSYNC_INTERVAL_MS = 30000,
	CN_POLICY_COLLECT_INTERVAL_MS = 3600000, /* forget old tombstones; note we were up */
	CN_REVOKED_REFRESH_MS = 1000,  /* addresses of revoked nodes, for dropping */
	CN_REVOKED_ADDRS_MAX = 64,
};

enum stream_owner { OWNER_CORE = 1, OWNER_KEYOP = 2, OWNER_KEYSYNC = 3 };

typedef struct cn_stream_req {
	bool used;
	uint8_t owner;       /* enum stream_owner */
	uint32_t core_id;    /* the node's stream id, OWNER_CORE */
	char peer[CN_NAME_MAX + 1];
	nng_socket sock;
	int fd;              /* NNG_OPT_RECVFD: the reply is here */
	int send_fd;         /* NNG_OPT_SENDFD: the request can go now */
	nng_msg *pending;    /* request not yet taken by NNG (still connecting) */
	uint64_t deadline_ms;
} cn_stream_req;

/* One fleet-wide key operation in flight (at most one: the admin socket
 * serves one request at a time). */
typedef struct cn_keyop {
	bool active;
	uint8_t op;          /* CN_KEYOP_* */
	uint8_t key[CN_KEY_BYTES];
	uint32_t flags;      /* admin flags (JSON) */
	uint32_t asked, answered, failed;
	cn_buf failures;     /* "name: reason" lines */
	/* list: per key id, how many members hold it and how many use it as primary */
	uint32_t ids[CN_KEYRING_MAX * 4];
	uint32_t holders[CN_KEYRING_MAX * 4];
	uint32_t primaries[CN_KEYRING_MAX * 4];
	uint32_t n_ids;
	uint64_t deadline_ms;
} cn_keyop;

typedef struct cn_agent {
	cn_agent_opts opts;
	cn_addr bind, advertise;
	cn_node *node;
	cn_keyring ring;
	char keyring_path[CN_PATH_MAX + 16];
	cn_store *store;
	cn_policy_lmdb *policy_lmdb;  /* the replica's LMDB databases in store */
	cn_policy *policy;            /* the policy replica (core/policy.h) */
	bool have_roots;              /* --trust given: some operator may write */
	uint64_t next_collect_ms;
	cn_addr revoked_addrs[CN_REVOKED_ADDRS_MAX]; /* members whose node is revoked */
	size_t n_revoked_addrs;
	uint64_t next_revoked_ms;
	uint64_t incarnation_saved;
	uint64_t ring_version;  /* Lamport version of the key ring (wire/keyop.h) */

	int udp_fd;
	nng_socket stream_srv;
	int stream_srv_fd;
	cn_stream_req reqs[CN_STREAMS_MAX];
	nng_socket admin;
	int admin_fd;
	bool admin_deferred;  /* a request is waiting for a key operation */
	nng_socket events;
	int sig_fd;

	uint64_t next_health_ms;
	uint64_t health_sent_ms;
	bool leaving;
	uint64_t leave_deadline_ms;
	bool stop;

	cn_keyop keyop;
	char node_id_hex[CN_NODE_ID_SIZE]; /* from the identity's public key */

	/* Edge counters (the core counts protocol matters). */
	uint64_t unsealable;       /* datagrams/streams that failed to open */
	uint64_t unknown_key;      /* ... because no installed key matched */
	uint32_t last_unknown_key_id;
	uint64_t send_errors;
	uint64_t lonely_failures;  /* stream failures while we know no member */
	uint64_t admin_refused;
	uint64_t keysyncs_sent, keysyncs_applied;
	uint64_t revoked_dropped;  /* datagrams from revoked nodes */
	uint64_t policy_wiped;     /* names wiped by the offline rule at start */
	cn_addr keysync_addr[CN_KEYSYNC_SLOTS];
	uint64_t keysync_at[CN_KEYSYNC_SLOTS];

	uint8_t *seal_buf;         /* CN_STREAM_MAX scratch for sealing */
	uint8_t *open_buf;         /* CN_STREAM_MAX scratch for opening */
	cn_buf reply;              /* admin reply text */
	cn_metrics *metrics;       /* NULL unless --metrics */
	struct cn_workloads *workloads; /* placement and the runtime (workloads.h) */
	uint64_t next_metrics_ms;
} cn_agent;

/* Run the agent until SIGTERM/SIGINT or `canopy leave`. argv[0] = "agent".
 * Returns a process exit code. */
int cn_agent_main(int argc, char **argv);

/* Monotonic milliseconds (the clock the agent feeds the node). */
uint64_t cn_agent_now_ms(void);
/* Unix time in milliseconds: the policy replica's wall clock (its hybrid
 * logical clock keeps versions increasing even if this steps back). */
uint64_t cn_agent_wall_ms(void);

/* admin.c: handle one decoded admin request. Writes the reply text into
 * a->reply and returns the status, or CN_EAGAIN when the reply is deferred
 * (a key operation is under way). */
struct cn_admin_req;
int cn_agent_admin(cn_agent *a, const struct cn_admin_req *req, uint64_t now_ms);
/* policy_admin.c: `canopy policy ...` and `canopy audit` inside the agent. */
int cn_agent_admin_policy(cn_agent *a, const struct cn_admin_req *req, uint64_t now_ms);
int cn_agent_admin_audit(cn_agent *a, const struct cn_admin_req *req);
/* Finish a deferred key operation: render its result into a->reply. */
int cn_agent_keyop_finish(cn_agent *a);
/* Counters shown by `info` and exported as metrics. */
enum { CN_COUNTERS_MAX = 96 };
typedef struct cn_counter {
	const char *name;
	uint64_t value;
} cn_counter;
size_t cn_agent_counters(const cn_agent *a, cn_counter out[CN_COUNTERS_MAX]);
/* The Prometheus page (metrics.h publishes it). */
void cn_agent_render_metrics(const cn_agent *a, cn_buf *out);
/* Publish one membership event to monitors. */
void cn_agent_publish_event(cn_agent *a, const cn_event *ev);
/* Apply a key operation locally (also what peers do) and persist the ring. */
int cn_agent_keyop_apply(cn_agent *a, uint8_t op, const uint8_t key[CN_KEY_BYTES], uint64_t version,
			 char *err, size_t errcap);
/* Start a stream request of ours (not the core's) to addr. */
int cn_agent_stream_start(cn_agent *a, uint8_t owner, const cn_addr *to, const char *peer,
			  const uint8_t *plain, size_t len, uint64_t now_ms, cn_stream_req **out);
/* Begin a graceful leave; the loop exits once it has spread. */
void cn_agent_request_leave(cn_agent *a, uint64_t now_ms);
void cn_agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
