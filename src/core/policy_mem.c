/* In-memory policy store; see policy_mem.h. */
#include "core/policy_mem.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

typedef struct mem_ver {
	uint8_t *bytes;
	uint32_t len;
} mem_ver;

typedef struct mem_name {
	char *kind;        /* owned: "kind\0name\0" in one allocation */
	const char *name;  /* into kind */
	uint32_t n, cap;   /* versions held, oldest first; v[n-1] is the winner */
	mem_ver *v;        /* owned; cap slots (history_max + 1 at most) */
} mem_name;

typedef struct mem_audit {
	char *node; /* owned */
	uint64_t seq;
	uint8_t *bytes;
	uint32_t len;
} mem_audit;

typedef struct mem_meta {
	char *key;
	uint8_t *val;
	size_t len;
} mem_meta;

struct cn_policy_mem {
	mem_name **names;
	size_t n_names, cap_names;
	mem_audit *audit;
	size_t n_audit, cap_audit;
	mem_meta *meta;
	size_t n_meta, cap_meta;
	size_t bytes, bytes_max;
	uint32_t fail_commits;
};

cn_policy_mem *cn_policy_mem_new(void)
{
	return calloc(1, sizeof(cn_policy_mem));
}

static void name_free(mem_name *nm)
{
	for (uint32_t i = 0; i < nm->n; i++)
		free(nm->v[i].bytes);
	free(nm->v);
	free(nm->kind);
	free(nm);
}

void cn_policy_mem_free(cn_policy_mem *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_names; i++)
		name_free(m->names[i]);
	for (size_t i = 0; i < m->n_audit; i++) {
		free(m->audit[i].node);
		free(m->audit[i].bytes);
	}
	for (size_t i = 0; i < m->n_meta; i++) {
		free(m->meta[i].key);
		free(m->meta[i].val);
	}
	free(m->names);
	free(m->audit);
	free(m->meta);
	free(m);
}

void cn_policy_mem_set_bytes_max(cn_policy_mem *m, size_t bytes_max) { m->bytes_max = bytes_max; }
size_t cn_policy_mem_bytes(const cn_policy_mem *m) { return m->bytes; }
void cn_policy_mem_fail_commits(cn_policy_mem *m, uint32_t n) { m->fail_commits = n; }

static int name_cmp(const char *k1, const char *n1, const char *k2, const char *n2)
{
	int c = strcmp(k1, k2);
	return c != 0 ? c : strcmp(n1, n2);
}

/* First index whose (kind, name) >= the given one. */
static size_t lower_bound(const cn_policy_mem *m, const char *kind, const char *name)
{
	size_t lo = 0, hi = m->n_names;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (name_cmp(m->names[mid]->kind, m->names[mid]->name, kind, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static mem_name *find(const cn_policy_mem *m, const char *kind, const char *name, size_t *at)
{
	size_t i = lower_bound(m, kind, name);
	if (at)
		*at = i;
	if (i < m->n_names && name_cmp(m->names[i]->kind, m->names[i]->name, kind, name) == 0)
		return m->names[i];
	return NULL;
}

static int m_latest(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		    void *arg)
{
	mem_name *nm = find(ctx, kind, name, NULL);
	if (nm == NULL || nm->n == 0)
		return CN_ENOENT;
	int rc = fn(arg, nm->v[nm->n - 1].bytes, nm->v[nm->n - 1].len);
	return rc < 0 ? rc : 0;
}

static int m_history(void *ctx, const char *kind, const char *name, cn_policy_bytes_fn fn,
		     void *arg)
{
	mem_name *nm = find(ctx, kind, name, NULL);
	for (uint32_t i = 0; nm != NULL && i < nm->n; i++) {
		int rc = fn(arg, nm->v[i].bytes, nm->v[i].len);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static int m_scan(void *ctx, const char *kind, cn_policy_bytes_fn fn, void *arg)
{
	cn_policy_mem *m = ctx;
	size_t i = kind ? lower_bound(m, kind, "") : 0;
	for (; i < m->n_names; i++) {
		mem_name *nm = m->names[i];
		if (kind && strcmp(nm->kind, kind) != 0)
			break;
		int rc = fn(arg, nm->v[nm->n - 1].bytes, nm->v[nm->n - 1].len);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static int m_audit_scan(void *ctx, cn_policy_bytes_fn fn, void *arg)
{
	cn_policy_mem *m = ctx;
	for (size_t i = 0; i < m->n_audit; i++) {
		int rc = fn(arg, m->audit[i].bytes, m->audit[i].len);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static mem_meta *meta_find(const cn_policy_mem *m, const char *key)
{
	for (size_t i = 0; i < m->n_meta; i++)
		if (strcmp(m->meta[i].key, key) == 0)
			return &m->meta[i];
	return NULL;
}

static int m_meta_get(void *ctx, const char *key, uint8_t *buf, size_t cap, size_t *len)
{
	mem_meta *e = meta_find(ctx, key);
	if (e == NULL)
		return CN_ENOENT;
	*len = e->len;
	if (e->len > cap)
		return CN_ENOSPACE;
	memcpy(buf, e->val, e->len);
	return 0;
}

static int audit_cmp(const mem_audit *a, const char *node, uint64_t seq)
{
	int c = strcmp(a->node, node);
	if (c != 0)
		return c;
	return a->seq < seq ? -1 : a->seq > seq ? 1 : 0;
}

static size_t audit_lower(const cn_policy_mem *m, const char *node, uint64_t seq)
{
	size_t lo = 0, hi = m->n_audit;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (audit_cmp(&m->audit[mid], node, seq) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * elem);
	if (p == NULL)
		return CN_ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

static uint8_t *dup_bytes(const void *b, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	if (p != NULL && n)
		memcpy(p, b, n);
	return p;
}

/* Everything a commit allocates, taken before it changes anything. */
typedef struct prepared {
	mem_name *fresh;                         /* a new name record, or NULL */
	uint8_t *put_bytes[CN_POLICY_HISTORY_MAX + 1];
	mem_audit audit;
	mem_meta meta[2];
} prepared;

static void prepared_free(prepared *pr, size_t n_puts)
{
	if (pr->fresh)
		name_free(pr->fresh);
	for (size_t i = 0; i < n_puts; i++)
		free(pr->put_bytes[i]);
	free(pr->audit.node);
	free(pr->audit.bytes);
	for (int i = 0; i < 2; i++) {
		free(pr->meta[i].key);
		free(pr->meta[i].val);
	}
}

/* Grow nm->v to hold need versions (before a commit changes anything). */
static bool name_reserve(mem_name *nm, uint32_t need)
{
	if (need <= nm->cap)
		return true;
	mem_ver *v = realloc(nm->v, need * sizeof *v);
	if (v == NULL)
		return false;
	nm->v = v;
	nm->cap = need;
	return true;
}

static mem_name *name_new(const char *kind, const char *name, uint32_t slots)
{
	mem_name *nm = calloc(1, sizeof *nm);
	size_t kl = strlen(kind), nl = strlen(name);
	if (nm == NULL || (nm->kind = malloc(kl + nl + 2)) == NULL || !name_reserve(nm, slots)) {
		if (nm)
			free(nm->kind);
		free(nm);
		return NULL;
	}
	memcpy(nm->kind, kind, kl + 1);
	memcpy(nm->kind + kl + 1, name, nl + 1);
	nm->name = nm->kind + kl + 1;
	return nm;
}

static int prepare(cn_policy_mem *m, const cn_policy_commit *c, prepared *pr)
{
	memset(pr, 0, sizeof *pr);
	bool ok = true;
	mem_name *old = c->n_puts ? find(m, c->puts[0].kind, c->puts[0].name, NULL) : NULL;
	if (c->n_puts > 0 && (c->erase_kind != NULL || old == NULL)) {
		pr->fresh = name_new(c->puts[0].kind, c->puts[0].name, (uint32_t)c->n_puts);
		ok = pr->fresh != NULL;
	} else if (old != NULL) {
		ok = name_reserve(old, old->n + (uint32_t)c->n_puts);
	}
	for (size_t i = 0; ok && i < c->n_puts; i++)
		ok = (pr->put_bytes[i] = dup_bytes(c->puts[i].bytes, c->puts[i].len)) != NULL;
	if (ok && c->audit_node) {
		pr->audit.node = (char *)dup_bytes(c->audit_node, strlen(c->audit_node) + 1);
		pr->audit.bytes = dup_bytes(c->audit, c->audit_len);
		pr->audit.seq = c->audit_seq;
		pr->audit.len = (uint32_t)c->audit_len;
		ok = pr->audit.node && pr->audit.bytes;
	}
	for (size_t i = 0; ok && i < c->n_meta; i++) {
		if (meta_find(m, c->meta_key[i]) == NULL)
			ok = (pr->meta[i].key = (char *)dup_bytes(c->meta_key[i],
							  strlen(c->meta_key[i]) + 1)) != NULL;
		ok = ok && (pr->meta[i].val = dup_bytes(c->meta_val[i], c->meta_len[i])) != NULL;
		pr->meta[i].len = c->meta_len[i];
	}
	if (ok)
		ok = reserve((void **)&m->names, &m->cap_names, m->n_names + 1, sizeof *m->names) == 0 &&
		     reserve((void **)&m->audit, &m->cap_audit, m->n_audit + 1, sizeof *m->audit) == 0 &&
		     reserve((void **)&m->meta, &m->cap_meta, m->n_meta + 2, sizeof *m->meta) == 0;
	if (!ok) {
		prepared_free(pr, c->n_puts);
		return CN_ENOMEM;
	}
	return 0;
}

static void erase(cn_policy_mem *m, const char *kind, const char *name)
{
	size_t at;
	mem_name *nm = find(m, kind, name, &at);
	if (nm == NULL)
		return;
	for (uint32_t i = 0; i < nm->n; i++)
		m->bytes -= nm->v[i].len;
	name_free(nm);
	memmove(&m->names[at], &m->names[at + 1], (m->n_names - at - 1) * sizeof *m->names);
	m->n_names--;
}

static int m_commit(void *ctx, const cn_policy_commit *c)
{
	cn_policy_mem *m = ctx;
	assert(c->n_puts <= CN_POLICY_HISTORY_MAX + 1 && c->n_meta <= 2);
	assert(c->history_max >= 1 && c->history_max <= CN_POLICY_HISTORY_MAX);
	for (size_t i = 0; i < c->n_puts; i++)
		assert(name_cmp(c->puts[i].kind, c->puts[i].name, c->puts[0].kind,
				c->puts[0].name) == 0 &&
		       (c->erase_kind == NULL ||
			name_cmp(c->erase_kind, c->erase_name, c->puts[0].kind, c->puts[0].name) == 0));
	if (m->fail_commits > 0) {
		m->fail_commits--;
		return CN_EIO;
	}
	if (c->audit_node) {
		size_t at = audit_lower(m, c->audit_node, c->audit_seq);
		if (at < m->n_audit && audit_cmp(&m->audit[at], c->audit_node, c->audit_seq) == 0)
			return CN_EEXIST;
	}
	size_t added = c->audit_len;
	for (size_t i = 0; i < c->n_puts; i++)
		added += c->puts[i].len;
	for (size_t i = 0; i < c->n_meta; i++)
		added += c->meta_len[i];
	if (m->bytes_max != 0 && m->bytes + added > m->bytes_max)
		return CN_EFULL;
	prepared pr;
	int rc = prepare(m, c, &pr);
	if (rc != 0)
		return rc;
	/* From here on nothing can fail. */
	if (c->erase_kind)
		erase(m, c->erase_kind, c->erase_name);
	if (c->n_puts > 0) {
		size_t at;
		mem_name *nm = find(m, c->puts[0].kind, c->puts[0].name, &at);
		if (nm == NULL) {
			assert(pr.fresh != NULL);
			nm = pr.fresh;
			pr.fresh = NULL;
			memmove(&m->names[at + 1], &m->names[at], (m->n_names - at) * sizeof *m->names);
			m->names[at] = nm;
			m->n_names++;
		}
		for (size_t i = 0; i < c->n_puts; i++) {
			nm->v[nm->n++] = (mem_ver){pr.put_bytes[i], (uint32_t)c->puts[i].len};
			pr.put_bytes[i] = NULL;
			m->bytes += c->puts[i].len;
			while (nm->n > c->history_max) {
				m->bytes -= nm->v[0].len;
				free(nm->v[0].bytes);
				memmove(&nm->v[0], &nm->v[1], (nm->n - 1) * sizeof nm->v[0]);
				nm->n--;
			}
		}
	}
	if (c->audit_node) {
		size_t at = audit_lower(m, c->audit_node, c->audit_seq);
		memmove(&m->audit[at + 1], &m->audit[at], (m->n_audit - at) * sizeof *m->audit);
		m->audit[at] = pr.audit;
		memset(&pr.audit, 0, sizeof pr.audit);
		m->n_audit++;
		m->bytes += c->audit_len;
	}
	for (size_t i = 0; i < c->n_meta; i++) {
		mem_meta *e = meta_find(m, c->meta_key[i]);
		if (e == NULL) {
			e = &m->meta[m->n_meta++];
			e->key = pr.meta[i].key;
			pr.meta[i].key = NULL;
		} else {
			m->bytes -= e->len;
			free(e->val);
		}
		e->val = pr.meta[i].val;
		e->len = pr.meta[i].len;
		pr.meta[i].val = NULL;
		m->bytes += e->len;
	}
	prepared_free(&pr, c->n_puts);
	return 0;
}

static const cn_policy_store_ops mem_ops = {
	.latest = m_latest,
	.history = m_history,
	.scan = m_scan,
	.audit_scan = m_audit_scan,
	.meta_get = m_meta_get,
	.commit = m_commit,
};

cn_policy_store cn_policy_mem_store(cn_policy_mem *m)
{
	return (cn_policy_store){&mem_ops, m};
}

int cn_policy_mem_audit_poke(cn_policy_mem *m, size_t index, size_t offset, uint8_t value)
{
	if (index >= m->n_audit || offset >= m->audit[index].len)
		return CN_ENOENT;
	m->audit[index].bytes[offset] = value;
	return 0;
}

int cn_policy_mem_audit_remove(cn_policy_mem *m, size_t index)
{
	if (index >= m->n_audit)
		return CN_ENOENT;
	m->bytes -= m->audit[index].len;
	free(m->audit[index].node);
	free(m->audit[index].bytes);
	memmove(&m->audit[index], &m->audit[index + 1],
		(m->n_audit - index - 1) * sizeof *m->audit);
	m->n_audit--;
	return 0;
}
