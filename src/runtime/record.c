/* Instance records and the memory store (record.h). */
#include "runtime/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

enum {
	K_JOB = 1,
	K_REPLICA = 2,
	K_VERSION = 3,
	K_PID = 4,
	K_START = 5,
	K_LOG = 6,
	K_RESTARTS = 7,
	K_CGROUP = 8,
	K_LAST_ = 8,
};

bool cn_rtrec_job_ok(const char *s, size_t len)
{
	if (len == 0 || len > CN_JOB_NAME_MAX || s[0] == '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

void cn_rtrec_key(const char *job, uint32_t replica, char *key, size_t cap)
{
	assert(cap >= CN_RTREC_KEY_MAX && strlen(job) <= CN_JOB_NAME_MAX);
	snprintf(key, cap, "%s/%u", job, (unsigned)replica);
}

int cn_rtrec_encode(const cn_rtrec *r, uint8_t *buf, size_t cap, size_t *len)
{
	assert(r->job[0] != '\0' && r->pid > 1);
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, K_LAST_);
	cn_mp_put_uint(&w, K_JOB);
	cn_mp_put_cstr(&w, r->job);
	cn_mp_put_uint(&w, K_REPLICA);
	cn_mp_put_uint(&w, r->replica);
	cn_mp_put_uint(&w, K_VERSION);
	cn_mp_put_uint(&w, r->version);
	cn_mp_put_uint(&w, K_PID);
	cn_mp_put_uint(&w, (uint64_t)r->pid);
	cn_mp_put_uint(&w, K_START);
	cn_mp_put_uint(&w, r->start_ticks);
	cn_mp_put_uint(&w, K_LOG);
	cn_mp_put_cstr(&w, r->log_path);
	cn_mp_put_uint(&w, K_RESTARTS);
	cn_mp_put_uint(&w, r->restarts);
	cn_mp_put_uint(&w, K_CGROUP);
	cn_mp_put_cstr(&w, r->cgroup);
	return cn_mp_writer_end(&w, len);
}

/* A string into a fixed buffer: bounded, no NUL inside. */
static int read_text(cn_mp_reader *rd, char *out, size_t cap)
{
	const char *s;
	uint32_t n;
	int rc = cn_mp_read_str(rd, &s, &n, (uint32_t)(cap - 1));
	if (rc != 0)
		return rc;
	if (memchr(s, '\0', n) != NULL)
		return CN_EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int read_field(cn_mp_reader *rd, uint64_t key, cn_rtrec *out)
{
	uint64_t v = 0;
	int rc;
	switch (key) {
	case K_JOB:
		if ((rc = read_text(rd, out->job, sizeof out->job)) != 0)
			return rc;
		return cn_rtrec_job_ok(out->job, strlen(out->job)) ? 0 : CN_EINVAL;
	case K_LOG:
		return read_text(rd, out->log_path, sizeof out->log_path);
	case K_CGROUP:
		return read_text(rd, out->cgroup, sizeof out->cgroup);
	case K_VERSION:
		return cn_mp_read_u64(rd, &out->version);
	case K_START:
		return cn_mp_read_u64(rd, &out->start_ticks);
	case K_RESTARTS:
		return cn_mp_read_u32(rd, &out->restarts);
	case K_REPLICA:
		if ((rc = cn_mp_read_u64(rd, &v)) != 0)
			return rc;
		if (v >= CN_JOB_REPLICAS_MAX)
			return CN_ERANGE;
		out->replica = (uint32_t)v;
		return 0;
	case K_PID:
		if ((rc = cn_mp_read_u64(rd, &v)) != 0)
			return rc;
		if (v < 2 || v > INT32_MAX)
			return CN_ERANGE;
		out->pid = (int32_t)v;
		return 0;
	default:
		return cn_mp_skip(rd);
	}
}

int cn_rtrec_decode(const uint8_t *buf, size_t len, cn_rtrec *out)
{
	memset(out, 0, sizeof *out);
	if (buf == NULL)
		return CN_ETRUNC;
	cn_mp_reader rd;
	cn_mp_reader_init(&rd, buf, len);
	uint32_t n;
	int rc = cn_mp_read_map(&rd, &n, CN_RTREC_MAP_MAX);
	if (rc != 0)
		return rc;
	uint32_t seen = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(&rd, &key)) != 0)
			return rc;
		if (key >= 1 && key <= K_LAST_) {
			if (seen & (1u << key))
				return CN_EINVAL; /* duplicate key */
			seen |= 1u << key;
		}
		if ((rc = read_field(&rd, key, out)) != 0)
			return rc;
	}
	if (cn_mp_remaining(&rd) != 0)
		return CN_ETRAILING;
	uint32_t required = (1u << K_JOB) | (1u << K_REPLICA) | (1u << K_VERSION) | (1u << K_PID) |
			    (1u << K_START);
	if ((seen & required) != required)
		return CN_EMISSING;
	return 0;
}

/* ---- memory store ---- */

typedef struct memrec {
	char key[CN_RTREC_KEY_MAX];
	uint8_t *val;
	size_t len;
} memrec;

struct cn_rtmem {
	memrec recs[CN_RTMEM_MAX];
	size_t n;
	bool fail_puts;
};

int cn_rtmem_new(cn_rtmem **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : CN_ENOMEM;
}

void cn_rtmem_free(cn_rtmem *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->recs[i].val);
	free(m);
}

static memrec *mem_find(cn_rtmem *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->recs[i].key, key) == 0)
			return &m->recs[i];
	return NULL;
}

int cn_rtmem_put(cn_rtmem *m, const char *key, const uint8_t *val, size_t len)
{
	if (strlen(key) >= CN_RTREC_KEY_MAX)
		return CN_EINVAL;
	uint8_t *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return CN_ENOMEM;
	if (len > 0)
		memcpy(copy, val, len);
	memrec *r = mem_find(m, key);
	if (r == NULL) {
		if (m->n == CN_RTMEM_MAX) {
			free(copy);
			return CN_EFULL;
		}
		r = &m->recs[m->n++];
		strcpy(r->key, key);
	} else {
		free(r->val);
	}
	r->val = copy;
	r->len = len;
	return 0;
}

static int mem_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
	cn_rtmem *m = ctx;
	if (m->fail_puts)
		return CN_EIO;
	return cn_rtmem_put(m, key, val, len);
}

static int mem_del(void *ctx, const char *key)
{
	cn_rtmem *m = ctx;
	memrec *r = mem_find(m, key);
	if (r == NULL)
		return 0;
	free(r->val);
	*r = m->recs[--m->n];
	return 0;
}

static int mem_scan(void *ctx, cn_rtstore_scan_cb cb, void *cb_ctx)
{
	cn_rtmem *m = ctx;
	for (size_t i = 0; i < m->n; i++) {
		int rc = cb(cb_ctx, m->recs[i].key, m->recs[i].val, m->recs[i].len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

cn_rtstore cn_rtmem_store(cn_rtmem *m)
{
	return (cn_rtstore){.ctx = m, .put = mem_put, .del = mem_del, .scan = mem_scan};
}

size_t cn_rtmem_count(const cn_rtmem *m)
{
	return m->n;
}

void cn_rtmem_fail_puts(cn_rtmem *m, bool fail)
{
	m->fail_puts = fail;
}
