/* Operator trust: who may write which policy documents.
 *
 * Three inputs, all pure data:
 *   ROOTS        operator public keys the agent was started with (--trust
 *                FILE; the agent reads the file, cn_trust_parse_roots parses
 *                its bytes). A root key may sign any document, and only
 *                root keys may sign "role" and "revoke" documents.
 *   ROLES        documents of kind "role", signed by a root, granting one
 *                operator key a scope. Body (a msgpack map with string keys,
 *                what the CLI makes of a YAML "spec" mapping):
 *                  key:      str, the grantee's public key, 44 chars base64
 *                  kinds:    array of 1..16 str: kinds it may write, or "*"
 *                            for every kind but "role" and "revoke"
 *                  prefixes: array of 1..16 str: name prefixes it may write
 *                            (a tenant: "tenant-a/"), or "*" for any name
 *                A key may hold several roles; its scope is their union.
 *   REVOCATIONS  documents of kind "revoke", signed by a root, named
 *                "key/<64 hex chars of the public key>" or "node/<node name>".
 *                From the revocation document's version on (its HLC
 *                timestamp is the cutoff), documents signed by that key, or
 *                stamped by that writer node, are refused; earlier ones stay
 *                valid. Revocations are a grow-only set: a tombstone of a
 *                "revoke" document is refused, so nothing un-revokes.
 *
 * cn_trust_check(doc) is a pure function of the document and this state, so
 * every replica holding the same roles and revocations decides the same.
 * core/policy.c keeps the state equal to the winning role and revoke
 * documents of its store, and re-checks stored documents when it changes
 * (policy.h, "re-validation").
 *
 * Refusal reasons name what is wrong, for the operator: "unsigned",
 * "bad signature", "unknown key 3fa1c2d4e5f60718", "key 3fa1... revoked",
 * "writer node n7 revoked", "kind 'job' not granted to key 3fa1...",
 * "name 'b/x' outside prefixes of key 3fa1...", "kind 'role' needs a root
 * key", "role spec: kinds[2]: ...".
 *
 * Memory: roots are a fixed array; grants and revocations are heap arrays
 * sized to what the store holds (a simulator runs 1,000 of these). */
#ifndef CN_CORE_TRUST_H
#define CN_CORE_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/doc.h"

enum {
	CN_TRUST_ROOTS_MAX = 64,
	CN_TRUST_FILE_MAX = 64 * 1024,   /* bytes of a --trust file */
	CN_TRUST_LINE_MAX = 512,
	CN_TRUST_LABEL_MAX = 64,
	CN_TRUST_ROLES_MAX = 4096,       /* role documents in force */
	CN_TRUST_REVOKED_MAX = 16384,    /* revocations in force */
	CN_TRUST_SCOPE_MAX = 16,         /* kinds, and prefixes, per role */
	CN_TRUST_WHY_MAX = 192,          /* any reason fits */
	CN_TRUST_KEY_ID_SIZE = 17,       /* 16 hex chars + NUL */
	CN_TRUST_KEY_B64_LEN = 44,
};

#define CN_KIND_ROLE "role"
#define CN_KIND_REVOKE "revoke"

typedef struct cn_trust_grant cn_trust_grant; /* trust.c */

typedef struct cn_trust_revocation {
	bool node;                         /* true: writer node; false: key */
	uint8_t key[CN_DOC_KEY_BYTES];     /* when !node */
	char writer[CN_DOC_WRITER_MAX + 1];/* when node */
	char doc_name[CN_DOC_NAME_MAX + 1];/* the revoke document's name */
	uint64_t cutoff;                   /* the revoke document's version */
} cn_trust_revocation;

typedef struct cn_trust {
	uint8_t roots[CN_TRUST_ROOTS_MAX][CN_DOC_KEY_BYTES];
	uint32_t n_roots;
	cn_trust_grant *grants;            /* owned; n_grants used of cap */
	uint32_t n_grants, cap_grants;
	cn_trust_revocation *revoked;      /* owned */
	uint32_t n_revoked, cap_revoked;
} cn_trust;

/* Empty state (no roots: every document is refused). Never fails. */
void cn_trust_init(cn_trust *t);
/* Free grants and revocations; t is then empty. t may be NULL. */
void cn_trust_free(cn_trust *t);

/* Parse a --trust file. Text, one entry per line:
 *     # comment               (also after a key)
 *     <44 chars base64 Ed25519 public key> [label]
 * Blank lines and CR before LF are fine; a label is up to 64 printable
 * characters. At least one key, at most CN_TRUST_ROOTS_MAX, no repeats.
 * @param[out] t     its roots are replaced on success; untouched on failure.
 * @param[out] why   "line 3: not a base64 public key" and the like (the
 *                   line number also in *line; 0 for whole-file errors such
 *                   as "no keys"); may be NULL.
 * @return 0 or CN_EINVAL. */
int cn_trust_parse_roots(cn_trust *t, const uint8_t *text, size_t len, char *why,
			 size_t why_cap, size_t *line);
/* Add one root. @return 0, CN_EEXIST (already a root), CN_EFULL. */
int cn_trust_add_root(cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES]);
bool cn_trust_is_root(const cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES]);

/* Short display id of a key: first 8 bytes of BLAKE2b-256(key) in hex (the
 * same rule as node ids, crypto/identity.h). */
void cn_trust_key_id(const uint8_t key[CN_DOC_KEY_BYTES], char out[CN_TRUST_KEY_ID_SIZE]);

/* Parse a role body (format above) without installing it.
 * @return 0 or CN_EINVAL with the field in why. */
int cn_trust_role_parse(const uint8_t *body, size_t len, char *why, size_t why_cap);
/* Parse a revoke document name. @return 0 or CN_EINVAL. */
int cn_trust_revoke_parse(const char *name, cn_trust_revocation *out);

/* Is d allowed? Checks, in this order: signature present, signature valid;
 * then for role/revoke documents: signer is a root, well-formed body/name,
 * no revoke tombstone (revocations do not apply to them: they depend on the
 * roots alone, so trust state has no cycles); for every other kind: signer
 * known (root or granted), signer key not revoked at d's version, writer
 * node not revoked at d's version, kind and name inside one of the
 * signer's roles (a root may write anything).
 * @return 0, or CN_EPERM with the reason in why (may be NULL). */
int cn_trust_check(const cn_trust *t, const cn_doc *d, char *why, size_t why_cap);

/* The same without the signature verification (about 50 us each): for
 * re-checking documents whose signature was verified when they were stored,
 * after the trust state changed. */
int cn_trust_check_scope(const cn_trust *t, const cn_doc *d, char *why, size_t why_cap);

/* Install, replace (same role name) or remove the grant of a role document,
 * and install a revocation. The caller (policy.c) passes winning, checked
 * documents. A role tombstone removes the grant.
 * @return 0, CN_EINVAL (not a role/revoke document or malformed body/name),
 *         CN_EFULL (CN_TRUST_ROLES_MAX / CN_TRUST_REVOKED_MAX), CN_ENOMEM. */
int cn_trust_set_role(cn_trust *t, const cn_doc *role);
int cn_trust_set_revocation(cn_trust *t, const cn_doc *revoke);
/* Drop every grant and revocation (roots stay): before a rebuild. */
void cn_trust_clear_docs(cn_trust *t);

/* Is this key, or this writer node, revoked for versions >= the cutoff?
 * at_version 0 asks "revoked at all". */
bool cn_trust_key_revoked(const cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES],
			  uint64_t at_version);
bool cn_trust_node_revoked(const cn_trust *t, const char *node, uint64_t at_version);

#endif
