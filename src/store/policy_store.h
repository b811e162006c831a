/* The policy store in LMDB: core/policy.h's cn_policy_store for the agent.
 *
 * Named databases in the agent's environment (store/store.h):
 *   docs     "kind\0name"                                -> winner (cn_doc encoded)
 *   history  "kind\0name\0" version(8, BE) writer "\0" hash(32)
 *                                                        -> that version (encoded)
 *   audit    "node\0" seq(8, BE)                         -> audit entry (canonical)
 *   meta     "policy.*" keys (shared with store.c's meta) -> clock, chain heads
 * History keys sort in the documents' last-writer-wins order (version, then
 * writer as bytes, since "\0" ends the writer, then hash), so "oldest first"
 * is a cursor walk and trimming drops from the front.
 *
 * Every commit is one LMDB write transaction, committed (and synced: the
 * environment uses LMDB's default durable mode) before the call returns, so
 * a SIGKILL at any instant loses nothing acknowledged (tests/crash_writer.c).
 * MDB_MAP_FULL aborts the transaction and returns CN_EFULL: nothing of the
 * commit is stored, and the store stays usable for reads and for commits
 * that free or fit space.
 *
 * Not thread-safe; one thread owns it, like the cn_store it lives in. */
#ifndef CN_STORE_POLICY_STORE_H
#define CN_STORE_POLICY_STORE_H

#include <stddef.h>

#include "core/policy.h"
#include "store/store.h"

typedef struct cn_policy_lmdb cn_policy_lmdb;

/* Open (creating) the policy databases in s. s must outlive the result.
 * Clears reader slots left by dead processes (a SIGKILLed agent).
 * @return 0, CN_ENOMEM, or CN_EIO with a reason in err (may be NULL). */
int cn_policy_lmdb_open(cn_store *s, cn_policy_lmdb **out, char *err, size_t errcap);
void cn_policy_lmdb_close(cn_policy_lmdb *l);
/* The vtable view, valid while l is. */
cn_policy_store cn_policy_lmdb_store(cn_policy_lmdb *l);

#endif
