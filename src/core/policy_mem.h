/* In-memory policy store (the cn_policy_store interface of core/policy.h).
 *
 * For unit tests and the simulator, where a thousand replicas live in one
 * process: names are a sorted array of pointers (binary search), each
 * holding only the encoded bytes of its kept versions; audit entries are a
 * sorted array of encoded bytes; meta is a short list. Nothing is
 * persisted. A commit is all-or-nothing: everything it needs is allocated
 * before the first change.
 *
 * Fault injection (tests): bytes_max makes commits that would pass a byte
 * budget fail with CN_EFULL, like a full LMDB map; fail_commits makes the
 * next N commits fail with CN_EIO. Neither changes anything stored.
 *
 * Constraint on commits (checked by assert): all puts of one commit are for
 * the same kind/name, the erased one if any (policy.c never does otherwise). */
#ifndef CN_CORE_POLICY_MEM_H
#define CN_CORE_POLICY_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"

typedef struct cn_policy_mem cn_policy_mem;

/* @return the store, or NULL when out of memory. */
cn_policy_mem *cn_policy_mem_new(void);
void cn_policy_mem_free(cn_policy_mem *m);
/* The vtable view, valid while m is. */
cn_policy_store cn_policy_mem_store(cn_policy_mem *m);

/* 0 = no limit. Counts document, audit and meta bytes. */
void cn_policy_mem_set_bytes_max(cn_policy_mem *m, size_t bytes_max);
size_t cn_policy_mem_bytes(const cn_policy_mem *m);
void cn_policy_mem_fail_commits(cn_policy_mem *m, uint32_t n);

/* Tests: overwrite byte `offset` of audit entry number `index` (in
 * (node, seq) order) with `value`, or remove that entry. @return 0 or
 * CN_ENOENT. */
int cn_policy_mem_audit_poke(cn_policy_mem *m, size_t index, size_t offset, uint8_t value);
int cn_policy_mem_audit_remove(cn_policy_mem *m, size_t index);

#endif
