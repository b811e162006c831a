/* Operator policy files (polfile.h): YAML stream -> checked documents. */
#include "cli/polfile.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/yaml2mp.h"
#include "core/jobspec.h"
#include "core/trust.h"
#include "util/err.h"
#include "wire/mp.h"

/* The whole document as msgpack: the body plus kind, name and map headers. */
enum { DOC_MP_MAX = CN_DOC_BODY_MAX + 1024 };

typedef struct walk {
	cn_polfile_doc *docs;
	size_t n;
	char *err;
	size_t cap;
	uint8_t *mp;      /* DOC_MP_MAX scratch */
	uint8_t *canon;   /* CN_JOB_DOC_MAX scratch for a job's canonical form */
	cn_jobspec *spec; /* scratch (large: 16 KiB arena) */
} walk;

__attribute__((format(printf, 4, 5)))
static int fail(walk *w, const cn_yaml *y, const char *path, const char *fmt, ...)
{
	int line = cn_yaml_line_of(y, path);
	int k = line > 0 ? snprintf(w->err, w->cap, "%s:%d: ", cn_yaml_file(y), line)
			 : snprintf(w->err, w->cap, "%s: ", cn_yaml_file(y));
	if (k >= 0 && (size_t)k < w->cap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err + k, w->cap - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return CN_EINVAL;
}

/* A string value into dst (NUL-terminated), checked by ok. */
static int read_field(walk *w, const cn_yaml *y, cn_mp_reader *r, const char *field, char *dst,
		      size_t max, bool (*ok)(const char *, size_t), const char *rule)
{
	const char *s;
	uint32_t n;
	if (cn_mp_read_str(r, &s, &n, (uint32_t)max) != 0 || !ok(s, n))
		return fail(w, y, field, "%s: must be %s", field, rule);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* The `spec` value of a canonical job document: {kind, name, spec} in
 * that order (cn_jobspec_encode), so it is what follows the name. */
static int job_spec_span(const uint8_t *doc, size_t len, const uint8_t **spec, size_t *spec_len)
{
	cn_mp_reader r;
	uint32_t n;
	cn_mp_reader_init(&r, doc, len);
	int rc = cn_mp_read_map(&r, &n, 3);
	for (int i = 0; rc == 0 && i < 4; i++)
		rc = cn_mp_skip(&r); /* "kind", "job", "name", NAME */
	if (rc == 0)
		rc = cn_mp_skip(&r); /* "spec" */
	if (rc != 0 || n != 3)
		return rc ? rc : CN_EINVAL;
	*spec = r.p;
	*spec_len = cn_mp_remaining(&r);
	return 0;
}

/* "role spec: kinds[1]: not a kind" -> path "spec.kinds[1]" when the
 * reason names a field, else "spec". */
static void role_path(const char *why, char *path, size_t cap)
{
	const char *p = strncmp(why, "role spec: ", 11) == 0 ? why + 11 : why;
	size_t k = strcspn(p, ": ");
	if (k > 0 && p[k] == ':' && k + 6 < cap)
		snprintf(path, cap, "spec.%.*s", (int)k, p);
	else
		snprintf(path, cap, "spec");
}

static int check_kind(walk *w, const cn_yaml *y, cn_polfile_doc *d, const uint8_t *doc,
		      size_t doc_len, const uint8_t **body, size_t *body_len)
{
	char why[CN_TRUST_WHY_MAX];
	if (strcmp(d->kind, "job") == 0) {
		cn_jobspec_err e;
		memset(&e, 0, sizeof e);
		int rc = cn_jobspec_decode(doc, doc_len, true, w->spec, NULL, &e);
		if (rc != 0) {
			char msg[CN_JOB_ERR_PATH_MAX + CN_JOB_ERR_MSG_MAX + 4];
			cn_jobspec_err_format(&e, msg, sizeof msg);
			return fail(w, y, e.path, "%s", msg);
		}
		size_t clen = 0;
		if (cn_jobspec_encode(w->spec, w->canon, CN_JOB_DOC_MAX, &clen) != 0 ||
		    job_spec_span(w->canon, clen, body, body_len) != 0)
			return fail(w, y, "spec", "spec: encoded job larger than %d bytes", CN_JOB_DOC_MAX);
	} else if (strcmp(d->kind, CN_KIND_ROLE) == 0) {
		if (cn_trust_role_parse(*body, *body_len, why, sizeof why) != 0) {
			char path[64];
			role_path(why, path, sizeof path);
			return fail(w, y, path, "%s", why);
		}
	} else if (strcmp(d->kind, CN_KIND_REVOKE) == 0) {
		cn_trust_revocation rv;
		if (cn_trust_revoke_parse(d->name, &rv) != 0)
			return fail(w, y, "name", "name: a revocation is named key/<64 lowercase hex> "
				    "or node/<node name>");
	}
	return 0;
}

static int on_doc(void *arg, const cn_yaml *y, size_t index)
{
	walk *w = arg;
	if (index >= CN_POLFILE_DOCS_MAX)
		return fail(w, y, "", "more than %d documents in one file", CN_POLFILE_DOCS_MAX);
	size_t len = 0;
	int rc = cn_yaml_to_mp(y, w->mp, DOC_MP_MAX, &len, w->err, w->cap);
	if (rc != 0)
		return rc == CN_ENOSPACE ? fail(w, y, "", "document larger than %d bytes as msgpack",
						DOC_MP_MAX)
					 : rc;
	cn_polfile_doc *d = &w->docs[w->n];
	memset(d, 0, sizeof *d);
	snprintf(d->where, sizeof d->where, "%s:%d", cn_yaml_file(y), cn_yaml_line_of(y, ""));

	cn_mp_reader r;
	uint32_t pairs;
	cn_mp_reader_init(&r, w->mp, len);
	if (cn_mp_read_map(&r, &pairs, 16) != 0)
		return fail(w, y, "", "a policy document is a mapping with kind, name and spec");
	const uint8_t *spec = NULL;
	size_t spec_len = 0;
	for (uint32_t i = 0; i < pairs; i++) {
		const char *k;
		uint32_t kl;
		if (cn_mp_read_str(&r, &k, &kl, 64) != 0)
			return fail(w, y, "", "keys must be kind, name and spec");
		if (kl == 4 && memcmp(k, "kind", 4) == 0) {
			rc = read_field(w, y, &r, "kind", d->kind, CN_DOC_KIND_MAX, cn_doc_kind_ok,
					"a kind: a lowercase letter, then up to 15 of a-z 0-9 -");
		} else if (kl == 4 && memcmp(k, "name", 4) == 0) {
			rc = read_field(w, y, &r, "name", d->name, CN_DOC_NAME_MAX, cn_doc_name_ok,
					"1 to 128 of A-Z a-z 0-9 . _ : / -, not starting with /");
		} else if (kl == 4 && memcmp(k, "spec", 4) == 0) {
			uint32_t m;
			cn_mp_reader at = r;
			if (cn_mp_read_map(&at, &m, UINT32_MAX) != 0)
				return fail(w, y, "spec", "spec: must be a mapping");
			spec = r.p;
			rc = cn_mp_skip(&r);
			spec_len = (size_t)(r.p - spec);
		} else {
			char key[72];
			snprintf(key, sizeof key, "%.*s", (int)kl, k);
			return fail(w, y, key, "%s: unknown key (a document has kind, name and spec)", key);
		}
		if (rc != 0)
			return rc;
	}
	if (d->kind[0] == '\0' || d->name[0] == '\0' || spec == NULL)
		return fail(w, y, "", "%s: required", d->kind[0] == '\0' ? "kind"
						       : d->name[0] == '\0' ? "name" : "spec");
	const uint8_t *body = spec;
	size_t body_len = spec_len;
	if ((rc = check_kind(w, y, d, w->mp, len, &body, &body_len)) != 0)
		return rc;
	if (body_len > CN_DOC_BODY_MAX)
		return fail(w, y, "spec", "spec: larger than %d bytes as msgpack", CN_DOC_BODY_MAX);
	d->body = malloc(body_len);
	if (d->body == NULL)
		return CN_ENOMEM;
	memcpy(d->body, body, body_len);
	d->body_len = body_len;
	w->n++;
	return 0;
}

static int finish(walk *w, int rc, cn_polfile_doc **out, size_t *n)
{
	free(w->mp);
	free(w->canon);
	free(w->spec);
	if (rc != 0) {
		cn_polfile_free(w->docs, w->n);
		return rc;
	}
	*out = w->docs;
	*n = w->n;
	return 0;
}

static int start(walk *w, char *err, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->err = err;
	w->cap = cap;
	if (cap > 0)
		err[0] = '\0';
	w->docs = calloc(CN_POLFILE_DOCS_MAX, sizeof *w->docs);
	w->mp = malloc(DOC_MP_MAX);
	w->canon = malloc(CN_JOB_DOC_MAX);
	w->spec = malloc(sizeof *w->spec);
	return w->docs && w->mp && w->canon && w->spec ? 0 : CN_ENOMEM;
}

int cn_polfile_parse(const char *text, size_t len, const char *file, cn_polfile_doc **out,
		     size_t *n, char *err, size_t cap)
{
	walk w;
	int rc = start(&w, err, cap);
	if (rc == 0)
		rc = cn_yaml_parse_stream(text, len, file, on_doc, &w, err, cap);
	return finish(&w, rc, out, n);
}

int cn_polfile_load(const char *path, cn_polfile_doc **out, size_t *n, char *err, size_t cap)
{
	walk w;
	int rc = start(&w, err, cap);
	if (rc == 0)
		rc = cn_yaml_load_stream(path, on_doc, &w, err, cap);
	return finish(&w, rc, out, n);
}

void cn_polfile_free(cn_polfile_doc *docs, size_t n)
{
	if (docs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(docs[i].body);
	free(docs);
}

int cn_polfile_job_wrap(const char *name, const uint8_t *body, size_t body_len, uint8_t *buf,
			size_t cap, size_t *len)
{
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, 3);
	cn_mp_put_cstr(&w, "kind");
	cn_mp_put_cstr(&w, "job");
	cn_mp_put_cstr(&w, "name");
	cn_mp_put_cstr(&w, name);
	cn_mp_put_cstr(&w, "spec");
	int rc = cn_mp_writer_end(&w, len);
	if (rc != 0 || *len + body_len > cap)
		return CN_ENOSPACE;
	memcpy(buf + *len, body, body_len);
	*len += body_len;
	return 0;
}
