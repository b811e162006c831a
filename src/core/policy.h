/* The policy replica: one node's copy of the replicated policy store.
 *
 * A replica holds, per kind/name, a last-writer-wins register of signed
 * documents (core/doc.h) with the last history_max accepted versions, plus
 * an audit log and its own hybrid logical clock. It is sans-I/O: storage is
 * reached through cn_policy_store (a vtable: memory in core/policy_mem.h
 * for tests and the simulator, LMDB in store/policy_store.h for the agent),
 * time is a parameter, and nothing is sent: replication (announce on
 * gossip, fetch on the stream plane, digest in push-pull) calls in here.
 *
 * APPLY (cn_policy_apply_local from the operator, _remote from a peer):
 *   1. the document is well-formed (doc.h syntax, body hash);
 *   2. its version is not more than max_drift_ms ahead of wall time (HLC);
 *   3. trust: signature and scope (core/trust.h), else CN_EPERM;
 *   4. merge: it must beat the stored winner in the (version, writer, hash)
 *      order; an equal document is a DUPLICATE, a lower one STALE (both
 *      inert: a replayed old write never wins);
 *   5. one store commit: new winner, history entry (oldest dropped beyond
 *      history_max), for local writes an audit entry, the clock.
 * Only after the commit succeeds does memory (digest, clock, trust, stats)
 * change, so a failed commit (CN_EFULL from a full LMDB map) leaves the
 * replica exactly as it was and usable.
 *
 * CONVERGENCE: the winner for a name is the maximum of the accepted
 * documents in a total order, so any two replicas that accepted the same
 * set, in any order, with any duplicates, hold the same winners and the
 * same digest (tests/test_policy.c checks it on random schedules).
 *
 * RE-VALIDATION: when a role or revoke document wins, the trust state
 * changes, and every stored winner is checked again (scope only; its
 * signature was verified on arrival). A winner that no longer passes (its
 * key's role was narrowed or deleted, its key or writer was revoked before
 * its version) is RETRACTED: the replica falls back to the newest version
 * in its history that still passes, or forgets the name. Because validity
 * is a pure function of (document, trust state), replicas that hold the
 * same trust documents agree on what is valid whatever the order things
 * arrived in; a replica that fell back further than another is repaired by
 * anti-entropy like any missing write. open() does the same with full
 * signature checks (the roots may have changed since the last run, and
 * bytes at rest are checked again).
 *
 * TOMBSTONES: delete is a write of a tombstone (deleted = true, no body).
 * cn_policy_collect() forgets tombstones older than tombstone_ttl_ms (by
 * their HLC physical time), and apply_remote ignores tombstones that old
 * (EXPIRED), so a collected tombstone does not come back. COLLECTION RULE:
 * it is safe iff every replica that holds an older live version of that
 * name has received the tombstone within tombstone_ttl_ms. The agent
 * guarantees it by (a) a ttl longer than the longest partition or
 * downtime it tolerates (default 7 days), and (b) refusing to rejoin with a
 * replica whose last activity (cn_policy_last_active) is older than the
 * ttl: such a node wipes its policy store and refetches everything, or it
 * could resurrect documents the rest of the fleet deleted and forgot.
 *
 * DIGEST: CN_POLICY_BUCKETS buckets; a winner falls into bucket
 * cn_policy_bucket_of(kind, name) (first byte of BLAKE2b-256 of
 * "kind\0name"); a bucket's hash is the XOR of the document hashes of its
 * winners (tombstones included). XOR makes the digest independent of
 * insertion order and O(1) to update. Two replicas exchange the 256 bucket
 * hashes (8 KiB) or first their 32-byte root (BLAKE2b of the 256), and list
 * only the differing buckets (cn_policy_bucket_list) to fetch what differs.
 *
 * AUDIT: every local accept appends an entry to this node's hash chain:
 * (node, seq, prev, when, who = key, what = kind/name/version/writer,
 * deleted, body hash), prev = BLAKE2b-256 of the previous entry's bytes
 * (zero for seq 1). Entries of other nodes' chains arrive through
 * cn_policy_audit_apply_remote, which accepts only the exact next link of
 * that chain, so the set of entries only grows and stays gap-free. Each
 * chain's head (seq, hash) is also recorded in the store's meta.
 * cn_policy_audit_verify walks every chain and checks: each entry decodes
 * and is in canonical form, seqs run 1..n without a gap, each prev is the
 * hash of its predecessor, and the last entry matches the recorded head.
 * It PROVES that nobody altered, removed, inserted or reordered entries
 * without also rewriting every later entry of that chain AND its recorded
 * head. It CANNOT prove: (a) that an attacker with write access to the whole
 * store did not rewrite a chain consistently (compare heads with other
 * replicas that copied the chain earlier, cn_policy_audit_head, to catch
 * that); (b) that an entry tells the truth: entries are not signed by the
 * accepting node, only chained; the who/what can be checked against the
 * signed document while it is in history; (c) anything about entries this
 * replica never received.
 *
 * Ownership: the replica does not own the store (the caller closes it after
 * cn_policy_free). Documents handed to callbacks are valid only during the
 * callback. Not thread-safe: one thread owns a replica. */
#ifndef CN_CORE_POLICY_H
#define CN_CORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/doc.h"
#include "core/hlc.h"
#include "core/trust.h"

enum {
	CN_POLICY_HISTORY_DEFAULT = 16,
	CN_POLICY_HISTORY_MAX = 64,
	CN_POLICY_NAMES_DEFAULT = 65536,
	CN_POLICY_BUCKETS = 256,
	CN_POLICY_WHY_MAX = 256,
	CN_POLICY_COLLECT_MAX = 4096,   /* tombstones one collect() call forgets */
	/* array hdr, domain, node, seq, prev, when, key, kind, name, version,
	 * writer, deleted, body hash: 1+15+66+9+34+9+34+17+130+9+66+1+34 = 425 */
	CN_POLICY_AUDIT_MAX = 448,
	CN_POLICY_META_KEY_MAX = 96,
};
#define CN_POLICY_TTL_DEFAULT_MS (UINT64_C(7) * 24 * 3600 * 1000)
#define CN_AUDIT_DOMAIN "canopy-audit/1"

/* ---- the store interface ---------------------------------------------- */

/* Visitor over stored bytes: valid only during the call. Return 0 to go on,
 * 1 to stop early (the scan then returns 0), a negative code to abort (the
 * scan returns it). The visitor must not call back into the store. */
typedef int (*cn_policy_bytes_fn)(void *arg, const uint8_t *bytes, size_t len);

typedef struct cn_policy_put {
	const char *kind, *name, *writer;  /* copies of the document's fields */
	uint64_t version;
	const uint8_t *hash;               /* cn_doc_hash, 32 bytes */
	const uint8_t *bytes;              /* cn_doc_encode output */
	size_t len;
} cn_policy_put;

/* One atomic change: everything or nothing. Applied in this order. */
typedef struct cn_policy_commit {
	const char *erase_kind, *erase_name; /* non-NULL: forget the name (winner
					       * and history) first */
	const cn_policy_put *puts;           /* each becomes the winner in turn, in
					       * ascending LWW order; each is added
					       * to history, oldest beyond
					       * history_max dropped */
	size_t n_puts;
	uint32_t history_max;
	const char *audit_node;              /* non-NULL: add this audit entry */
	uint64_t audit_seq;
	const uint8_t *audit;
	size_t audit_len;
	const char *meta_key[2];             /* meta values to set (n_meta <= 2) */
	const uint8_t *meta_val[2];
	size_t meta_len[2];
	size_t n_meta;
} cn_policy_commit;

typedef struct cn_policy_store_ops {
	/* The winner of kind/name: fn called once. CN_ENOENT if none. */
	int (*latest)(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		      void *arg);
	/* Every kept version of kind/name, oldest first. 0 even if none. */
	int (*history)(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		       void *arg);
	/* Every winner, in (kind, name) byte order; kind non-NULL: only it. */
	int (*scan)(void *ctx, const char *kind, cn_policy_bytes_fn fn, void *arg);
	/* Every audit entry, in (node, seq) order. */
	int (*audit_scan)(void *ctx, cn_policy_bytes_fn fn, void *arg);
	/* Small values. CN_ENOENT; CN_ENOSPACE (with *len the size needed). */
	int (*meta_get)(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len);
	/* Apply atomically. CN_EFULL (no room: nothing changed), CN_EEXIST (the
	 * audit entry's (node, seq) exists: nothing changed), CN_EIO, CN_ENOMEM. */
	int (*commit)(void *ctx, const cn_policy_commit *c);
} cn_policy_store_ops;

typedef struct cn_policy_store {
	const cn_policy_store_ops *ops;
	void *ctx;
} cn_policy_store;

/* ---- audit entries ---------------------------------------------------- */

typedef struct cn_audit_entry {
	char node[CN_DOC_WRITER_MAX + 1];  /* where: the accepting node */
	uint64_t seq;                      /* 1, 2, ... in that node's chain */
	uint8_t prev[CN_DOC_HASH_BYTES];   /* hash of entry seq-1; zero for 1 */
	uint64_t when;                     /* HLC at acceptance */
	uint8_t key[CN_DOC_KEY_BYTES];     /* who: the signing operator key */
	char kind[CN_DOC_KIND_MAX + 1];    /* what */
	char name[CN_DOC_NAME_MAX + 1];
	uint64_t version;
	char writer[CN_DOC_WRITER_MAX + 1];
	bool deleted;
	uint8_t body_hash[CN_DOC_HASH_BYTES];
} cn_audit_entry;

/* Canonical form: msgpack array of 12 in the order of the struct, prefixed
 * by the string CN_AUDIT_DOMAIN (13 elements). @return 0 or CN_ENOSPACE. */
int cn_policy_audit_encode(const cn_audit_entry *e, uint8_t *out, size_t cap, size_t *len);
/* Decode hostile bytes; only the canonical form is accepted (re-encoding
 * must give the same bytes), so one entry has exactly one byte string and
 * one hash. @return 0, CN_ETRUNC/CN_ETYPE/CN_ELIMIT, CN_EINVAL. */
int cn_policy_audit_decode(const uint8_t *buf, size_t len, cn_audit_entry *e);
/* BLAKE2b-256 of an entry's bytes: the next entry's prev. */
void cn_policy_audit_hash(const uint8_t *bytes, size_t len, uint8_t out[CN_DOC_HASH_BYTES]);

/* ---- the replica ------------------------------------------------------ */

typedef struct cn_policy cn_policy;

typedef struct cn_policy_config {
	char node[CN_DOC_WRITER_MAX + 1]; /* this node's name: audit "where" */
	uint32_t history_max;             /* versions kept per name (16), <= 64 */
	uint64_t tombstone_ttl_ms;        /* collection age (7 days) */
	uint64_t max_drift_ms;            /* HLC future limit (60 s) */
	uint32_t names_max;               /* names (winners) held (65536) */
} cn_policy_config;

/* Zero values in a config mean these defaults. */
void cn_policy_config_default(cn_policy_config *cfg, const char *node);

enum cn_policy_outcome {
	CN_POLICY_APPLIED = 1,   /* the document won and is stored */
	CN_POLICY_DUPLICATE = 2, /* the same document is already the winner */
	CN_POLICY_STALE = 3,     /* the stored winner is newer: inert */
	CN_POLICY_EXPIRED = 4,   /* a tombstone older than the ttl: inert */
};

typedef struct cn_policy_stats {
	uint64_t applied_local, applied_remote;
	uint64_t duplicate, stale, expired;
	uint64_t refused_invalid;  /* malformed documents */
	uint64_t refused_perm;     /* trust said no */
	uint64_t refused_future;   /* version too far ahead */
	uint64_t refused_full;     /* names_max or a full store */
	uint64_t retracted;        /* winners dropped by re-validation */
	uint64_t collected;        /* tombstones forgotten */
	uint64_t audit_remote;     /* entries added from other chains */
	uint64_t audit_refused;    /* entries from other chains refused */
} cn_policy_stats;

/* Open a replica over a store (which may hold a previous run's state).
 * roots: the root keys (a cn_trust whose roots are copied; its grants are
 * ignored). Rebuilds trust, re-validates every stored document with full
 * signature checks (retracting what fails, see above), computes the digest
 * and the audit chain heads, restores the clock. wall_ms is the time now.
 * @param[out] out  the replica, owned by the caller (cn_policy_free).
 * @return 0, CN_EINVAL (bad config, why says which field), CN_ENOMEM,
 *         or a store error (CN_EIO, CN_EFULL while retracting). */
int cn_policy_open(const cn_policy_config *cfg, cn_policy_store store, const cn_trust *roots,
		   uint64_t wall_ms, cn_policy **out, char *why, size_t why_cap);
/* Free the replica (not the store). p may be NULL. */
void cn_policy_free(cn_policy *p);

/* A fresh version for a local write: the CLI asks the agent for
 * (version, writer = cfg.node), fills and signs the document, and hands it
 * to apply_local. @return 0 or CN_ERANGE (wall time out of range). */
int cn_policy_stamp(cn_policy *p, uint64_t wall_ms, uint64_t *version);

/* Apply a signed document (see APPLY above). *outcome (may be NULL) is set
 * on 0. why (may be NULL) names the problem on failure.
 * @return 0 (APPLIED, DUPLICATE, STALE or EXPIRED for remote; APPLIED or
 *         DUPLICATE for local), or
 *   CN_EINVAL   malformed document (field named in why);
 *   CN_ERANGE   version too far in the future;
 *   CN_EPERM    trust refused it (reason in why);
 *   CN_ESTATE   local only: the stored winner is newer (why names it);
 *   CN_EFULL    names_max reached, or the store is full (nothing changed);
 *   CN_EIO, CN_ENOMEM  store errors (nothing changed). */
int cn_policy_apply_local(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			  char *why, size_t why_cap);
int cn_policy_apply_remote(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			   char *why, size_t why_cap);
/* Dry run of apply_local: steps 1-4 (syntax, clock, trust, merge) without
 * the commit. Nothing changes, not even the stats. *outcome (may be NULL)
 * is APPLIED when the document would win, DUPLICATE when it is already the
 * winner. @return as cn_policy_apply_local minus the store-commit errors
 * (CN_EIO/CN_ENOMEM may still come from reading the stored winner). */
int cn_policy_check_local(cn_policy *p, const cn_doc *d, uint64_t wall_ms, int *outcome,
			  char *why, size_t why_cap);
/* Decode (cn_doc_decode) then apply_remote: for fetched bytes. */
int cn_policy_apply_remote_bytes(cn_policy *p, const uint8_t *bytes, size_t len,
				 uint64_t wall_ms, int *outcome);

/* Visitor over documents: d valid only during the call; same return rule
 * as cn_policy_bytes_fn. */
typedef int (*cn_policy_doc_fn)(void *arg, const cn_doc *d);

/* Get the winner (version 0) or a kept version of kind/name; tombstones
 * are returned (d->deleted). The body is copied into body_buf.
 * @return 0, CN_ENOENT, CN_ENOSPACE (body_cap too small), store errors. */
int cn_policy_get(cn_policy *p, const char *kind, const char *name, uint64_t version,
		  cn_doc *out, uint8_t *body_buf, size_t body_cap);
/* Kept versions of kind/name, oldest first (history; rollback picks one and
 * the operator signs a NEW document carrying its body at a new version). */
int cn_policy_history(cn_policy *p, const char *kind, const char *name, cn_policy_doc_fn fn,
		      void *arg);
/* Every winner (tombstones included), kind NULL for all kinds. */
int cn_policy_list(cn_policy *p, const char *kind, cn_policy_doc_fn fn, void *arg);

/* Forget up to max (<= CN_POLICY_COLLECT_MAX) tombstones whose version's
 * physical time is at least tombstone_ttl_ms before wall_ms, one commit
 * each. *collected (may be NULL) counts them. @return 0 or a store error. */
int cn_policy_collect(cn_policy *p, uint64_t wall_ms, uint32_t max, uint32_t *collected);

/* Digest. buckets: CN_POLICY_BUCKETS x 32 bytes, valid while p is and
 * until the next change. root: BLAKE2b-256 of the buckets. */
const uint8_t (*cn_policy_digest(const cn_policy *p))[CN_DOC_HASH_BYTES];
void cn_policy_digest_root(const cn_policy *p, uint8_t root[CN_DOC_HASH_BYTES]);
uint8_t cn_policy_bucket_of(const char *kind, const char *name);
/* Winners in the buckets whose bit is set in mask (bit b = mask[b/8] >> (b%8)
 * & 1): the list a peer compares to decide what to fetch. */
int cn_policy_bucket_list(cn_policy *p, const uint8_t mask[CN_POLICY_BUCKETS / 8],
			  cn_policy_doc_fn fn, void *arg);

/* Audit. list: every entry in (node, seq) order, decoded. */
typedef int (*cn_policy_audit_fn)(void *arg, const cn_audit_entry *e);
int cn_policy_audit_list(cn_policy *p, cn_policy_audit_fn fn, void *arg);
typedef struct cn_policy_audit_report {
	uint64_t entries, chains;
} cn_policy_audit_report;
/* Verify every chain (see AUDIT above). report may be NULL.
 * @return 0, or CN_EAUTH with the first problem in why ("audit: node n1
 * seq 4: prev does not match entry 3"), or a store error. */
int cn_policy_audit_verify(cn_policy *p, cn_policy_audit_report *report, char *why,
			   size_t why_cap);
/* Add an entry of another node's chain (bytes as encoded).
 * @return 0 (added), CN_EEXIST (already held: seq <= head), CN_ESTATE (not the
 *         next link: a gap or a prev that does not match; fetch the earlier
 *         entries first), CN_EPERM (an entry for this node's own chain),
 *         CN_EINVAL (malformed), or a store error. */
int cn_policy_audit_apply_remote(cn_policy *p, const uint8_t *bytes, size_t len);
/* Head of node's chain. @return 0 or CN_ENOENT (no entry). */
int cn_policy_audit_head(const cn_policy *p, const char *node, uint64_t *seq,
			 uint8_t hash[CN_DOC_HASH_BYTES]);

/* Introspection. */
const cn_policy_stats *cn_policy_get_stats(const cn_policy *p);
const cn_trust *cn_policy_trust(const cn_policy *p);
uint32_t cn_policy_names(const cn_policy *p);
/* HLC physical ms of the last write this replica stored or stamped (the
 * offline check of the collection rule). */
uint64_t cn_policy_last_active(const cn_policy *p);

#endif
