#include "store/store.h"
#include "util/err.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct cn_store {
	MDB_env *env;
	MDB_dbi meta;
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

int cn_store_open(const char *dir, size_t map_size_mb, cn_store **out, char *err, size_t errcap)
{
	char path[4096];
	*out = NULL;
	if (snprintf(path, sizeof path, "%s/store", dir) >= (int)sizeof path) {
		snprintf(err, errcap, "data directory path too long");
		return CN_EINVAL;
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
		return CN_EIO;
	}
	cn_store *s = calloc(1, sizeof *s);
	if (s == NULL)
		return CN_ENOMEM;
	int rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, 16);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, (map_size_mb ? map_size_mb : 256) << 20);
	if (rc == 0)
		rc = mdb_env_open(s->env, path, MDB_NOTLS, 0600);
	MDB_txn *txn = NULL;
	if (rc == 0)
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		if (txn)
			mdb_txn_abort(txn);
		snprintf(err, errcap, "cannot open store %s: %s", path, mdb_strerror(rc));
		if (s->env)
			mdb_env_close(s->env);
		free(s);
		return map_err(rc) == CN_ENOMEM ? CN_ENOMEM : CN_EIO;
	}
	*out = s;
	return 0;
}

struct MDB_env *cn_store_env(cn_store *s)
{
	return s->env;
}

void cn_store_close(cn_store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	free(s);
}

int cn_store_meta_get(cn_store *s, const char *key, void *buf, size_t cap, size_t *len)
{
	size_t kl = strlen(key);
	if (kl == 0 || kl > CN_STORE_KEY_MAX)
		return CN_EINVAL;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc);
	MDB_val k = {kl, (void *)key}, v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0) {
		*len = v.mv_size;
		if (v.mv_size > cap)
			rc = -1;
		else
			memcpy(buf, v.mv_data, v.mv_size);
	}
	mdb_txn_abort(txn);
	return rc == -1 ? CN_ENOSPACE : map_err(rc);
}

int cn_store_meta_put(cn_store *s, const char *key, const void *val, size_t len)
{
	size_t kl = strlen(key);
	if (kl == 0 || kl > CN_STORE_KEY_MAX)
		return CN_EINVAL;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return map_err(rc);
	MDB_val k = {kl, (void *)key}, v = {len, (void *)val};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return map_err(rc);
	}
	return map_err(mdb_txn_commit(txn));
}

int cn_store_meta_get_u64(cn_store *s, const char *key, uint64_t *v)
{
	uint8_t b[8];
	size_t len;
	int rc = cn_store_meta_get(s, key, b, sizeof b, &len);
	if (rc)
		return rc;
	if (len != 8)
		return CN_EINVAL;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = (x << 8) | b[i];
	*v = x;
	return 0;
}

int cn_store_meta_put_u64(cn_store *s, const char *key, uint64_t v)
{
	uint8_t b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	return cn_store_meta_put(s, key, b, sizeof b);
}
