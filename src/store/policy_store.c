/* The policy store in LMDB; see policy_store.h for the layout. */
#include "store/policy_store.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

enum {
	/* kind \0 name \0 version writer \0 hash */
	HKEY_MAX = CN_DOC_KIND_MAX + 1 + CN_DOC_NAME_MAX + 1 + 8 + CN_DOC_WRITER_MAX + 1 +
		   CN_DOC_HASH_BYTES,
	AKEY_MAX = CN_DOC_WRITER_MAX + 1 + 8,
};
static_assert(HKEY_MAX <= 511, "LMDB's default key size limit");

struct cn_policy_lmdb {
	MDB_env *env;
	MDB_dbi docs, history, audit, meta;
};

static int map_err(int rc)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return CN_ENOENT;
	case MDB_MAP_FULL: return CN_EFULL;
	case MDB_KEYEXIST: return CN_EEXIST;
	case ENOMEM: return CN_ENOMEM;
	default: return CN_EIO;
	}
}

int cn_policy_lmdb_open(cn_store *s, cn_policy_lmdb **out, char *err, size_t errcap)
{
	*out = NULL;
	cn_policy_lmdb *l = calloc(1, sizeof *l);
	if (l == NULL)
		return CN_ENOMEM;
	l->env = cn_store_env(s);
	int dead = 0;
	(void)mdb_reader_check(l->env, &dead);
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "docs", MDB_CREATE, &l->docs);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "history", MDB_CREATE, &l->history);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "audit", MDB_CREATE, &l->audit);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &l->meta);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (rc != 0) {
		if (txn)
			mdb_txn_abort(txn);
		if (err && errcap)
			snprintf(err, errcap, "cannot open the policy databases: %s", mdb_strerror(rc));
		free(l);
		return map_err(rc) == CN_ENOMEM ? CN_ENOMEM : map_err(rc) == CN_EFULL ? CN_EFULL
											   : CN_EIO;
	}
	*out = l;
	return 0;
}

void cn_policy_lmdb_close(cn_policy_lmdb *l)
{
	free(l); /* the dbi handles live as long as the environment */
}

/* "kind\0name" (terminator=false) or "kind\0name\0" (true). */
static size_t name_key(uint8_t *out, const char *kind, const char *name, bool terminator)
{
	size_t kl = strlen(kind), nl = strlen(name);
	assert(kl <= CN_DOC_KIND_MAX && nl <= CN_DOC_NAME_MAX);
	memcpy(out, kind, kl + 1);
	memcpy(out + kl + 1, name, nl);
	if (terminator)
		out[kl + 1 + nl] = '\0';
	return kl + 1 + nl + (terminator ? 1 : 0);
}

static size_t history_key(uint8_t *out, const cn_policy_put *p)
{
	size_t n = name_key(out, p->kind, p->name, true);
	uint64_t v = p->version;
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[n + (size_t)i] = (uint8_t)v;
	n += 8;
	size_t wl = strlen(p->writer);
	assert(wl <= CN_DOC_WRITER_MAX);
	memcpy(out + n, p->writer, wl + 1);
	n += wl + 1;
	memcpy(out + n, p->hash, CN_DOC_HASH_BYTES);
	n += CN_DOC_HASH_BYTES;
	assert(n <= HKEY_MAX);
	return n;
}

static size_t audit_key(uint8_t *out, const char *node, uint64_t seq)
{
	size_t nl = strlen(node);
	assert(nl <= CN_DOC_WRITER_MAX);
	memcpy(out, node, nl + 1);
	for (int i = 7; i >= 0; i--, seq >>= 8)
		out[nl + 1 + (size_t)i] = (uint8_t)seq;
	return nl + 1 + 8;
}

static bool has_prefix(const MDB_val *k, const uint8_t *prefix, size_t n)
{
	return n == 0 || (k->mv_size >= n && memcmp(k->mv_data, prefix, n) == 0);
}

static int read_begin(cn_policy_lmdb *l, MDB_txn **txn)
{
	return map_err(mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn));
}

static int l_latest(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		    void *arg)
{
	cn_policy_lmdb *l = ctx;
	uint8_t key[CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + 2];
	MDB_val k = {name_key(key, kind, name, false), key}, v;
	MDB_txn *txn;
	int rc = read_begin(l, &txn);
	if (rc != 0)
		return rc;
	rc = map_err(mdb_get(txn, l->docs, &k, &v));
	if (rc == 0) {
		rc = fn(arg, v.mv_data, v.mv_size);
		rc = rc < 0 ? rc : 0;
	}
	mdb_txn_abort(txn);
	return rc;
}

/* Walk dbi from prefix (all keys when n == 0), calling fn on values. */
static int walk(cn_policy_lmdb *l, MDB_dbi dbi, const uint8_t *prefix, size_t n,
		cn_policy_bytes_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = read_begin(l, &txn);
	if (rc != 0)
		return rc;
	rc = map_err(mdb_cursor_open(txn, dbi, &cur));
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	MDB_val k = {n, (void *)prefix}, v;
	int mrc = n ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0 && has_prefix(&k, prefix, n)) {
		rc = fn(arg, v.mv_data, v.mv_size);
		if (rc != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = map_err(mrc);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc < 0 ? rc : 0;
}

static int l_history(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		     void *arg)
{
	cn_policy_lmdb *l = ctx;
	uint8_t key[CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + 2];
	return walk(l, l->history, key, name_key(key, kind, name, true), fn, arg);
}

static int l_scan(void *ctx, const char *kind, cn_policy_bytes_fn fn, void *arg)
{
	cn_policy_lmdb *l = ctx;
	uint8_t key[CN_DOC_KIND_MAX + 1];
	size_t n = 0;
	if (kind != NULL) {
		n = strlen(kind);
		assert(n <= CN_DOC_KIND_MAX);
		memcpy(key, kind, n + 1);
		n++;
	}
	return walk(l, l->docs, key, n, fn, arg);
}

static int l_audit_scan(void *ctx, cn_policy_bytes_fn fn, void *arg)
{
	cn_policy_lmdb *l = ctx;
	return walk(l, l->audit, NULL, 0, fn, arg);
}

static int l_meta_get(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
	cn_policy_lmdb *l = ctx;
	MDB_txn *txn;
	int rc = read_begin(l, &txn);
	if (rc != 0)
		return rc;
	MDB_val k = {strlen(key), (void *)key}, v;
	rc = map_err(mdb_get(txn, l->meta, &k, &v));
	if (rc == 0) {
		*len = v.mv_size;
		if (v.mv_size > cap)
			rc = CN_ENOSPACE;
		else
			memcpy(buf, v.mv_data, v.mv_size);
	}
	mdb_txn_abort(txn);
	return rc;
}

/* Delete every key of dbi starting with prefix. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t n)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {n, (void *)prefix}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && has_prefix(&k, prefix, n)) {
		rc = mdb_cursor_del(cur, 0);
		k = (MDB_val){n, (void *)prefix}; /* re-seek: no reliance on a cursor after del */
		if (rc == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Keep the newest max versions under prefix: drop from the front. */
static int trim(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t n, uint32_t max)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return rc;
	MDB_val k = {n, (void *)prefix}, v;
	uint32_t count = 0;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && has_prefix(&k, prefix, n) && count <= CN_POLICY_HISTORY_MAX + 1) {
		count++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && count > max) {
		k = (MDB_val){n, (void *)prefix};
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		for (uint32_t i = 0; rc == 0 && i < count - max; i++) {
			rc = mdb_cursor_del(cur, 0);
			k = (MDB_val){n, (void *)prefix};
			if (rc == 0 && i + 1 < count - max)
				rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

static int commit_in(cn_policy_lmdb *l, MDB_txn *txn, const cn_policy_commit *c)
{
	int rc = 0;
	uint8_t key[HKEY_MAX];
	if (c->erase_kind != NULL) {
		MDB_val k = {name_key(key, c->erase_kind, c->erase_name, false), key};
		rc = mdb_del(txn, l->docs, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (rc == 0)
			rc = del_prefix(txn, l->history, key,
					name_key(key, c->erase_kind, c->erase_name, true));
	}
	for (size_t i = 0; rc == 0 && i < c->n_puts; i++) {
		const cn_policy_put *p = &c->puts[i];
		MDB_val k = {name_key(key, p->kind, p->name, false), key};
		MDB_val v = {p->len, (void *)p->bytes};
		rc = mdb_put(txn, l->docs, &k, &v, 0);
		if (rc == 0) {
			k = (MDB_val){history_key(key, p), key};
			rc = mdb_put(txn, l->history, &k, &v, 0);
		}
		if (rc == 0)
			rc = trim(txn, l->history, key, name_key(key, p->kind, p->name, true),
				  c->history_max);
	}
	if (rc == 0 && c->audit_node != NULL) {
		MDB_val k = {audit_key(key, c->audit_node, c->audit_seq), key};
		MDB_val v = {c->audit_len, (void *)c->audit};
		rc = mdb_put(txn, l->audit, &k, &v, MDB_NOOVERWRITE);
	}
	for (size_t i = 0; rc == 0 && i < c->n_meta; i++) {
		MDB_val k = {strlen(c->meta_key[i]), (void *)c->meta_key[i]};
		MDB_val v = {c->meta_len[i], (void *)c->meta_val[i]};
		rc = mdb_put(txn, l->meta, &k, &v, 0);
	}
	return rc;
}

static int l_commit(void *ctx, const cn_policy_commit *c)
{
	cn_policy_lmdb *l = ctx;
	assert(c->history_max >= 1 && c->history_max <= CN_POLICY_HISTORY_MAX && c->n_meta <= 2);
	MDB_txn *txn;
	int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc != 0)
		return map_err(rc);
	rc = commit_in(l, txn, c);
	if (rc != 0) {
		mdb_txn_abort(txn); /* MDB_MAP_FULL included: nothing of it stays */
		return map_err(rc);
	}
	return map_err(mdb_txn_commit(txn));
}

static const cn_policy_store_ops lmdb_ops = {
	.latest = l_latest,
	.history = l_history,
	.scan = l_scan,
	.audit_scan = l_audit_scan,
	.meta_get = l_meta_get,
	.commit = l_commit,
};

cn_policy_store cn_policy_lmdb_store(cn_policy_lmdb *l)
{
	return (cn_policy_store){&lmdb_ops, l};
}
