/* Instance records: what the runtime persists about each workload process
 * so that a restarted agent can find and re-adopt it, and the storage
 * interface they go through.
 *
 * Encoding: a msgpack map with small-integer keys (the wire's style):
 *   1 job (str, 1..CN_JOB_NAME_MAX)      2 replica (uint, < CN_JOB_REPLICAS_MAX)
 *   3 version (uint)                     4 pid (uint, 2..INT32_MAX)
 *   5 start_ticks (uint, /proc field 22) 6 log path (str, < CN_RTREC_PATH_MAX)
 *   7 restarts (uint32)                  8 cgroup path (str, may be empty)
 * Keys 1-5 are required; unknown keys are skipped (a newer agent's record
 * read by an older one). The record key is "JOB/REPLICA".
 *
 * Records are read back from disk: the decoder treats them as hostile
 * (bounded, never aborts, error codes only; fuzz/fuzz_rtrecord.c). */
#ifndef CN_RUNTIME_RECORD_H
#define CN_RUNTIME_RECORD_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jobspec.h"

enum {
	CN_RTREC_PATH_MAX = 1024,   /* bytes of a path, NUL included */
	CN_RTREC_MAP_MAX = 32,      /* entries read from one record */
	CN_RTREC_BYTES_MAX = 4096,  /* an encoded record always fits */
	CN_RTREC_KEY_MAX = CN_JOB_NAME_MAX + 12, /* "job/replica" + NUL */
};
static_assert(CN_RTREC_BYTES_MAX > CN_JOB_NAME_MAX + 2 * CN_RTREC_PATH_MAX + 64,
	      "a record with every field at its maximum fits");

typedef struct cn_rtrec {
	char job[CN_JOB_NAME_MAX + 1];
	uint32_t replica;
	uint64_t version;
	int32_t pid;
	uint64_t start_ticks;
	uint32_t restarts;
	char log_path[CN_RTREC_PATH_MAX];
	char cgroup[CN_RTREC_PATH_MAX];
} cn_rtrec;

/* Encode into buf. Returns 0 and *len, or CN_ENOSPACE. Asserts a valid
 * record (non-empty job, pid > 1). */
int cn_rtrec_encode(const cn_rtrec *r, uint8_t *buf, size_t cap, size_t *len);

/* Decode untrusted bytes. *out is zeroed first and filled. Returns 0,
 * CN_ETRUNC, CN_ETYPE, CN_ERANGE, CN_ELIMIT, CN_EMISSING (a required key),
 * CN_EINVAL (a job name with a byte outside [A-Za-z0-9._:/-], an empty
 * one, a string with a NUL), CN_ETRAILING, CN_EDEPTH. */
int cn_rtrec_decode(const uint8_t *buf, size_t len, cn_rtrec *out);

/* "job/replica" into key (cap >= CN_RTREC_KEY_MAX). */
void cn_rtrec_key(const char *job, uint32_t replica, char *key, size_t cap);

/* True if s (len bytes) is a valid job name for the runtime: the policy
 * document name syntax (1..CN_JOB_NAME_MAX of [A-Za-z0-9._:/-], not
 * starting with '/'). */
bool cn_rtrec_job_ok(const char *s, size_t len);

/* Storage. Values are opaque bytes; keys are NUL-terminated "job/replica".
 * The agent backs this with LMDB (one put or delete = one transaction),
 * tests with memory (cn_rtmem_*). Every function returns 0 or a negative
 * code; del of an absent key is 0. scan calls cb once per record in any
 * order; the bytes are valid only during the call; a non-zero return from
 * cb stops the scan and is returned. The runtime calls these only from
 * cn_rt_new, cn_rt_tick and cn_rt_set_desired. */
typedef int (*cn_rtstore_scan_cb)(void *cb_ctx, const char *key, const uint8_t *val, size_t len);
typedef struct cn_rtstore {
	void *ctx;
	int (*put)(void *ctx, const char *key, const uint8_t *val, size_t len);
	int (*del)(void *ctx, const char *key);
	int (*scan)(void *ctx, cn_rtstore_scan_cb cb, void *cb_ctx);
} cn_rtstore;

/* A memory store (tests, simulations): at most CN_RTMEM_MAX records. put
 * when full: CN_EFULL. fail_puts (tests) makes puts fail with CN_EIO. */
enum { CN_RTMEM_MAX = 4096 };
typedef struct cn_rtmem cn_rtmem;
int cn_rtmem_new(cn_rtmem **out);
void cn_rtmem_free(cn_rtmem *m);
/* The interface over m; valid while m is. */
cn_rtstore cn_rtmem_store(cn_rtmem *m);
size_t cn_rtmem_count(const cn_rtmem *m);
void cn_rtmem_fail_puts(cn_rtmem *m, bool fail);
/* Raw access for tests: put bytes under key directly. */
int cn_rtmem_put(cn_rtmem *m, const char *key, const uint8_t *val, size_t len);

#endif
