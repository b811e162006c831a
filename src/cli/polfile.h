/* Operator policy files: YAML documents to (kind, name, body) for signing.
 *
 * A file holds one or more YAML documents separated by `---`. Each is a
 * mapping with exactly these keys:
 *   kind: a policy kind ([a-z][a-z0-9-]{0,15}: job, config, role, revoke, ...)
 *   name: the document name ([A-Za-z0-9._:/-]{1,128}, not starting with /)
 *   spec: a mapping; the document's body is its msgpack (cli/yaml2mp.h
 *         typing), at most CN_DOC_BODY_MAX bytes
 * Checks by kind, before anything is signed or sent:
 *   job     the whole document passes cn_jobspec_decode (strict: unknown
 *           fields are errors); the body is the `spec` value of the
 *           CANONICAL encoding (cn_jobspec_encode), so equal specs give
 *           equal bodies. To decode a stored job body, wrap it back as
 *           {kind: job, name: NAME, spec: BODY} (cn_polfile_job_wrap).
 *   role    the spec passes cn_trust_role_parse (key, kinds, prefixes);
 *   revoke  the name passes cn_trust_revoke_parse;
 *   others  (config, ...) any mapping.
 * Every error names the file, the line and the field:
 *   "jobs.yaml:14: spec.replicas: must be an integer 0..10000".
 *
 * Files are read whole (at most 4 * CN_JOB_DOC_MAX bytes); at most
 * CN_POLFILE_DOCS_MAX documents per file. */
#ifndef CN_CLI_POLFILE_H
#define CN_CLI_POLFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/doc.h"

enum {
	CN_POLFILE_DOCS_MAX = 256,
	CN_POLFILE_ERR_MAX = 512,
	CN_POLFILE_WHERE_MAX = 288,
};

typedef struct cn_polfile_doc {
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
	uint8_t *body;                   /* owned (cn_polfile_free) */
	size_t body_len;
	char where[CN_POLFILE_WHERE_MAX]; /* "file:line" of the document */
} cn_polfile_doc;

/* Parse text (file names it in messages). On success *out is an array of
 * *n >= 1 documents in file order, freed with cn_polfile_free; on failure
 * nothing is returned and err (cap bytes) says "file:line: field: reason".
 * @return 0, CN_EINVAL, CN_EIO (load: cannot read), CN_ENOMEM. */
int cn_polfile_parse(const char *text, size_t len, const char *file, cn_polfile_doc **out,
		     size_t *n, char *err, size_t cap);
int cn_polfile_load(const char *path, cn_polfile_doc **out, size_t *n, char *err, size_t cap);
void cn_polfile_free(cn_polfile_doc *docs, size_t n);

/* {kind: "job", name: name, spec: <body>} into buf, for cn_jobspec_decode
 * of a stored job body. @return 0 and *len, or CN_ENOSPACE. */
int cn_polfile_job_wrap(const char *name, const uint8_t *body, size_t body_len, uint8_t *buf,
			size_t cap, size_t *len);

#endif
