/* Persistent state in LMDB.
 *
 * One LMDB environment per agent, in DIR/store (file mode 0600). Named
 * databases:
 *   meta   small agent facts: the highest incarnation used, first-start time;
 *          the policy replica's clock and audit heads ("policy.*" keys)
 *   docs, history, audit   the policy store (store/policy_store.h)
 * Every change is one write transaction, committed before the call
 * returns, so a SIGKILL at any instant loses nothing that was acknowledged.
 * A full map is CN_EFULL (a clear error; LMDB's MDB_MAP_FULL), never a crash.
 *
 * Not thread-safe: one thread (the agent's event loop) owns a cn_store. */
#ifndef CN_STORE_STORE_H
#define CN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cn_store cn_store;

enum { CN_STORE_KEY_MAX = 256 };

/* Open (creating if needed) the store under dir. map_size_mb 0 = 256 MiB.
 * Returns 0, CN_EIO with a reason in err (for the operator), or CN_ENOMEM. */
int cn_store_open(const char *dir, size_t map_size_mb, cn_store **out, char *err, size_t errcap);
void cn_store_close(cn_store *s);

/* The LMDB environment, for the other modules of src/store/ that keep their
 * own named databases in it (policy_store.c). Valid until cn_store_close. */
struct MDB_env;
struct MDB_env *cn_store_env(cn_store *s);

/* meta database. get: CN_ENOENT if absent, CN_ENOSPACE if cap is too small
 * (*len then says how much is needed). put: CN_EFULL, CN_EIO. */
int cn_store_meta_get(cn_store *s, const char *key, void *buf, size_t cap, size_t *len);
int cn_store_meta_put(cn_store *s, const char *key, const void *val, size_t len);
int cn_store_meta_get_u64(cn_store *s, const char *key, uint64_t *v);
int cn_store_meta_put_u64(cn_store *s, const char *key, uint64_t v);

#endif
