#include "store/kv.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

enum { KEY_MAX = 480 }; /* LMDB's default key limit is 511 bytes */

struct cn_kv {
	MDB_env *env;
	MDB_dbi dbi;
};

static int map_err(int rc)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return CN_ENOENT;
	case MDB_MAP_FULL: return CN_EFULL;
	case ENOMEM: return CN_ENOMEM;
	default: return CN_EIO;
	}
}

int cn_kv_open(cn_store *s, const char *name, cn_kv **out)
{
	cn_kv *kv = calloc(1, sizeof *kv);
	if (kv == NULL)
		return CN_ENOMEM;
	kv->env = cn_store_env(s);
	MDB_txn *txn;
	int rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, name, MDB_CREATE, &kv->dbi);
		rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	}
	if (rc != 0) {
		free(kv);
		return map_err(rc);
	}
	*out = kv;
	return 0;
}

void cn_kv_close(cn_kv *kv)
{
	free(kv); /* the handle belongs to the environment */
}

int cn_kv_put(cn_kv *kv, const char *key, const uint8_t *val, size_t len)
{
	size_t kl = strlen(key);
	if (kl == 0 || kl > KEY_MAX)
		return CN_EINVAL;
	MDB_txn *txn;
	int rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
	if (rc != 0)
		return map_err(rc);
	MDB_val k = {kl, (void *)key}, v = {len, (void *)val};
	rc = mdb_put(txn, kv->dbi, &k, &v, 0);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return map_err(rc);
	}
	return map_err(mdb_txn_commit(txn));
}

int cn_kv_del(cn_kv *kv, const char *key)
{
	size_t kl = strlen(key);
	if (kl == 0 || kl > KEY_MAX)
		return CN_EINVAL;
	MDB_txn *txn;
	int rc = mdb_txn_begin(kv->env, NULL, 0, &txn);
	if (rc != 0)
		return map_err(rc);
	MDB_val k = {kl, (void *)key};
	rc = mdb_del(txn, kv->dbi, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return map_err(rc);
	}
	return map_err(mdb_txn_commit(txn));
}

int cn_kv_scan(cn_kv *kv, cn_kv_scan_fn cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = mdb_txn_begin(kv->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return map_err(rc);
	if ((rc = mdb_cursor_open(txn, kv->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return map_err(rc);
	}
	MDB_val k, v;
	int out = 0;
	char key[KEY_MAX + 1];
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && out == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == 0 || k.mv_size > KEY_MAX || memchr(k.mv_data, 0, k.mv_size) != NULL)
			continue;
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = 0;
		out = cb(arg, key, v.mv_data, v.mv_size);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (out != 0)
		return out;
	return rc == MDB_NOTFOUND ? 0 : map_err(rc);
}
