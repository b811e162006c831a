/* Helper for tests/integration/test_policy.py (not a unit test itself).
 *
 *   audit_tamper DATA_DIR [INDEX]
 *
 * Flips one byte in the middle of the INDEX-th (default 0) entry of the
 * policy audit log in DATA_DIR/store with a raw LMDB transaction, as an
 * attacker with write access to the file would; the agent must be
 * stopped. Prints "tampered NODE seq N" and exits 0, or 1 with a reason.
 * `canopy audit --verify` must then fail. */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: audit_tamper DATA_DIR [INDEX]\n");
		return 2;
	}
	size_t index = argc == 3 ? strtoul(argv[2], NULL, 10) : 0;
	char err[256];
	cn_store *s;
	if (cn_store_open(argv[1], 0, &s, err, sizeof err) != 0) {
		fprintf(stderr, "audit_tamper: %s\n", err);
		return 1;
	}
	MDB_env *env = cn_store_env(s);
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "audit", 0, &dbi);
	if (rc == 0)
		rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0) {
		fprintf(stderr, "audit_tamper: %s\n", mdb_strerror(rc));
		cn_store_close(s);
		return 1;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (size_t i = 0; i < index && rc == 0; i++)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	uint8_t copy[CN_POLICY_AUDIT_MAX];
	if (rc == 0 && v.mv_size <= sizeof copy && k.mv_size > 9) {
		memcpy(copy, v.mv_data, v.mv_size);
		copy[v.mv_size / 2] ^= 0x20;
		MDB_val nv = {v.mv_size, copy};
		const uint8_t *key = k.mv_data;
		uint64_t seq = 0;
		for (size_t i = k.mv_size - 8; i < k.mv_size; i++)
			seq = seq << 8 | key[i];
		printf("tampered %.*s seq %llu\n", (int)(k.mv_size - 9), (const char *)key,
		       (unsigned long long)seq);
		rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
	} else if (rc == 0) {
		rc = MDB_CORRUPTED;
	}
	mdb_cursor_close(cur);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	cn_store_close(s);
	if (rc != 0) {
		fprintf(stderr, "audit_tamper: entry %zu: %s\n", index, mdb_strerror(rc));
		return 1;
	}
	return 0;
}
