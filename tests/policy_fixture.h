/* Shared by the policy tests (test_doc, test_trust, test_policy,
 * test_policy_lmdb, crash_writer): deterministic operator keys and signed
 * documents with small msgpack bodies. Header-only (static functions). */
#ifndef CN_TESTS_POLICY_FIXTURE_H
#define CN_TESTS_POLICY_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/doc.h"
#include "crypto/identity.h"
#include "wire/mp.h"

typedef struct fx_doc {
	cn_doc d;
	uint8_t body[256];
} fx_doc;

/* A deterministic key pair; different tags give different keys. */
static inline void fx_key(cn_sigkey *k, uint8_t tag)
{
	uint8_t seed[CN_SIGKEY_SEED_BYTES];
	memset(seed, tag, sizeof seed);
	seed[0] = 0xa5;
	cn_sigkey_from_seed(k, seed);
}

static inline void fx_sign(cn_doc *d, const cn_sigkey *k)
{
	uint8_t canon[CN_DOC_CANON_MAX];
	size_t n = 0;
	cn_doc_canonical(d, canon, sizeof canon, &n);
	cn_sigkey_sign(k, canon, n, d->sig);
}

/* {"v": value} */
static inline size_t fx_body(uint8_t *buf, size_t cap, uint64_t value)
{
	cn_mp_writer w;
	size_t n = 0;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, 1);
	cn_mp_put_cstr(&w, "v");
	cn_mp_put_uint(&w, value);
	cn_mp_writer_end(&w, &n);
	return n;
}

/* A signed document (signed by k; unsigned when k is NULL). Returns the
 * cn_doc_init result. f->d.body points into f: do not copy f by value. */
static inline int fx_make(fx_doc *f, const char *kind, const char *name, uint64_t version,
			  const char *writer, const cn_sigkey *k, bool deleted, uint64_t value)
{
	size_t n = deleted ? 0 : fx_body(f->body, sizeof f->body, value);
	static const uint8_t zero_key[32];
	int rc = cn_doc_init(&f->d, kind, name, version, writer,
			     k ? cn_sigkey_public(k) : zero_key, deleted, n ? f->body : NULL, n,
			     NULL, 0);
	if (rc == 0 && k)
		fx_sign(&f->d, k);
	return rc;
}

/* Re-point the body after a struct copy. */
static inline void fx_fix(fx_doc *f)
{
	if (f->d.body_len)
		f->d.body = f->body;
}

/* A role body: {"key": b64, "kinds": [...], "prefixes": [...]} */
static inline size_t fx_role_body(uint8_t *buf, size_t cap, const uint8_t pk[32],
				  const char *const *kinds, uint32_t nk,
				  const char *const *prefixes, uint32_t np)
{
	char b64[CN_SIGKEY_TEXT_SIZE];
	cn_sigkey_public_encode(pk, b64);
	cn_mp_writer w;
	size_t n = 0;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, 3);
	cn_mp_put_cstr(&w, "key");
	cn_mp_put_cstr(&w, b64);
	cn_mp_put_cstr(&w, "kinds");
	cn_mp_put_array(&w, nk);
	for (uint32_t i = 0; i < nk; i++)
		cn_mp_put_cstr(&w, kinds[i]);
	cn_mp_put_cstr(&w, "prefixes");
	cn_mp_put_array(&w, np);
	for (uint32_t i = 0; i < np; i++)
		cn_mp_put_cstr(&w, prefixes[i]);
	cn_mp_writer_end(&w, &n);
	return n;
}

/* A role document granting grantee (kinds, prefixes), signed by root. */
static inline int fx_role(fx_doc *f, const char *name, uint64_t version, const char *writer,
			  const cn_sigkey *root, const cn_sigkey *grantee,
			  const char *const *kinds, uint32_t nk, const char *const *prefixes,
			  uint32_t np)
{
	size_t n = fx_role_body(f->body, sizeof f->body, cn_sigkey_public(grantee), kinds, nk,
				prefixes, np);
	int rc = cn_doc_init(&f->d, "role", name, version, writer, cn_sigkey_public(root), false,
			     f->body, n, NULL, 0);
	if (rc == 0)
		fx_sign(&f->d, root);
	return rc;
}

#endif
