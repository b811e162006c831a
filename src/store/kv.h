/* A named LMDB database of small records keyed by strings, in the agent's
 * store environment (store.h). The workload runtime keeps its re-adoption
 * records here (runtime/record.h's cn_rtstore is built on it by the agent).
 * Each put and delete is one durable write transaction. */
#ifndef CN_STORE_KV_H
#define CN_STORE_KV_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct cn_kv cn_kv;

/* Open (create) the database `name` in s's environment. @return 0,
 * CN_EIO, CN_ENOMEM. s must outlive the kv. */
int cn_kv_open(cn_store *s, const char *name, cn_kv **out);
void cn_kv_close(cn_kv *kv);
/* @return 0, CN_EINVAL (empty or over-long key), CN_EFULL (map full:
 * nothing written), CN_EIO. */
int cn_kv_put(cn_kv *kv, const char *key, const uint8_t *val, size_t len);
/* @return 0 (also when absent) or CN_EIO. */
int cn_kv_del(cn_kv *kv, const char *key);
/* Every record in key order; bytes valid during the call; a non-zero
 * return of cb stops the scan and is returned. Keys are NUL-terminated
 * copies (keys stored without a NUL or with one inside are skipped). */
typedef int (*cn_kv_scan_fn)(void *arg, const char *key, const uint8_t *val, size_t len);
int cn_kv_scan(cn_kv *kv, cn_kv_scan_fn cb, void *arg);

#endif
