/* Operator trust: roots, role grants, revocations, and the check. See trust.h. */
#include "core/trust.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "wire/mp.h"

/* One role in force. The kind and prefix strings live in text, each
 * NUL-terminated, kinds first: one allocation per grant keeps a replica
 * small when a simulator runs a thousand of them. */
struct cn_trust_grant {
	char role[CN_DOC_NAME_MAX + 1];
	uint8_t key[CN_DOC_KEY_BYTES];
	uint8_t n_kinds, n_prefixes;
	char *text; /* owned */
};

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
	if (why == NULL || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

void cn_trust_init(cn_trust *t)
{
	memset(t, 0, sizeof *t);
}

void cn_trust_clear_docs(cn_trust *t)
{
	for (uint32_t i = 0; i < t->n_grants; i++)
		free(t->grants[i].text);
	t->n_grants = 0;
	t->n_revoked = 0;
}

void cn_trust_free(cn_trust *t)
{
	if (t == NULL)
		return;
	cn_trust_clear_docs(t);
	free(t->grants);
	free(t->revoked);
	cn_trust_init(t);
}

void cn_trust_key_id(const uint8_t key[CN_DOC_KEY_BYTES], char out[CN_TRUST_KEY_ID_SIZE])
{
	uint8_t h[32];
	crypto_generichash(h, sizeof h, key, CN_DOC_KEY_BYTES, NULL, 0);
	sodium_bin2hex(out, CN_TRUST_KEY_ID_SIZE, h, 8);
}

bool cn_trust_is_root(const cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES])
{
	for (uint32_t i = 0; i < t->n_roots; i++)
		if (memcmp(t->roots[i], key, CN_DOC_KEY_BYTES) == 0)
			return true;
	return false;
}

int cn_trust_add_root(cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES])
{
	if (cn_trust_is_root(t, key))
		return CN_EEXIST;
	if (t->n_roots == CN_TRUST_ROOTS_MAX)
		return CN_EFULL;
	memcpy(t->roots[t->n_roots++], key, CN_DOC_KEY_BYTES);
	return 0;
}

/* Strict, canonical base64 (libsodium ORIGINAL variant) of 32 bytes. */
static int key_from_b64(const char *s, size_t len, uint8_t key[CN_DOC_KEY_BYTES])
{
	if (len != CN_TRUST_KEY_B64_LEN)
		return CN_EINVAL;
	uint8_t k[CN_DOC_KEY_BYTES];
	size_t n = 0;
	const char *end = NULL;
	if (sodium_base642bin(k, sizeof k, s, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != sizeof k || end != s + len)
		return CN_EINVAL;
	char back[CN_TRUST_KEY_B64_LEN + 1];
	sodium_bin2base64(back, sizeof back, k, sizeof k, sodium_base64_VARIANT_ORIGINAL);
	if (memcmp(back, s, len) != 0) /* non-canonical padding bits */
		return CN_EINVAL;
	memcpy(key, k, sizeof k);
	return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* One line (without its LF; a trailing CR already removed). Adds to roots. */
static int parse_root_line(const char *s, size_t n, uint8_t (*roots)[CN_DOC_KEY_BYTES],
			   uint32_t *count, char *why, size_t cap, size_t lineno)
{
	size_t i = 0;
	while (i < n && is_space(s[i]))
		i++;
	if (i == n || s[i] == '#')
		return 0;
	size_t start = i;
	while (i < n && !is_space(s[i]) && s[i] != '#')
		i++;
	uint8_t key[CN_DOC_KEY_BYTES];
	if (key_from_b64(s + start, i - start, key) != 0) {
		say(why, cap, "line %zu: not a base64 Ed25519 public key (44 characters)", lineno);
		return CN_EINVAL;
	}
	while (i < n && is_space(s[i]))
		i++;
	size_t label = i;
	while (i < n && s[i] != '#')
		i++;
	size_t label_end = i;
	while (label_end > label && is_space(s[label_end - 1]))
		label_end--;
	if (label_end - label > CN_TRUST_LABEL_MAX) {
		say(why, cap, "line %zu: label longer than %d characters", lineno, CN_TRUST_LABEL_MAX);
		return CN_EINVAL;
	}
	for (size_t j = label; j < label_end; j++) {
		unsigned char c = (unsigned char)s[j];
		if (c < 0x20 || c > 0x7e) {
			say(why, cap, "line %zu: label: non-printable character", lineno);
			return CN_EINVAL;
		}
	}
	for (uint32_t r = 0; r < *count; r++) {
		if (memcmp(roots[r], key, sizeof key) == 0) {
			say(why, cap, "line %zu: key listed twice", lineno);
			return CN_EINVAL;
		}
	}
	if (*count == CN_TRUST_ROOTS_MAX) {
		say(why, cap, "line %zu: more than %d root keys", lineno, CN_TRUST_ROOTS_MAX);
		return CN_EINVAL;
	}
	memcpy(roots[(*count)++], key, sizeof key);
	return 0;
}

int cn_trust_parse_roots(cn_trust *t, const uint8_t *text, size_t len, char *why,
			 size_t why_cap, size_t *line)
{
	size_t dummy;
	if (line == NULL)
		line = &dummy;
	*line = 0;
	say(why, why_cap, "%s", "");
	if (len > CN_TRUST_FILE_MAX) {
		say(why, why_cap, "file larger than %d bytes", CN_TRUST_FILE_MAX);
		return CN_EINVAL;
	}
	uint8_t roots[CN_TRUST_ROOTS_MAX][CN_DOC_KEY_BYTES];
	uint32_t count = 0;
	const char *s = (const char *)text;
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		lineno++;
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - s) : len;
		size_t n = end - pos;
		if (n > 0 && s[pos + n - 1] == '\r')
			n--;
		int rc = CN_EINVAL;
		if (n > CN_TRUST_LINE_MAX)
			say(why, why_cap, "line %zu: longer than %d characters", lineno, CN_TRUST_LINE_MAX);
		else if (memchr(s + pos, '\0', n) != NULL)
			say(why, why_cap, "line %zu: NUL byte", lineno);
		else
			rc = parse_root_line(s + pos, n, roots, &count, why, why_cap, lineno);
		if (rc != 0) {
			*line = lineno;
			sodium_memzero(roots, sizeof roots);
			return rc;
		}
		pos = end + 1;
	}
	if (count == 0) {
		say(why, why_cap, "no keys");
		return CN_EINVAL;
	}
	memcpy(t->roots, roots, sizeof roots[0] * count);
	t->n_roots = count;
	return 0;
}

/* --- role bodies ------------------------------------------------------- */

typedef struct role_spec {
	uint8_t key[CN_DOC_KEY_BYTES];
	uint8_t n_kinds, n_prefixes;
	const char *kinds[CN_TRUST_SCOPE_MAX];
	uint32_t kind_len[CN_TRUST_SCOPE_MAX];
	const char *prefixes[CN_TRUST_SCOPE_MAX];
	uint32_t prefix_len[CN_TRUST_SCOPE_MAX];
} role_spec;

static int read_list(cn_mp_reader *r, const char *field, const char **out, uint32_t *lens,
		     uint8_t *count, bool kinds, char *why, size_t cap)
{
	uint32_t n;
	int rc = cn_mp_read_array(r, &n, CN_TRUST_SCOPE_MAX);
	if (rc != 0 || n == 0) {
		say(why, cap, "role spec: %s: must be a list of 1 to %d strings", field,
		    CN_TRUST_SCOPE_MAX);
		return CN_EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *s;
		uint32_t len;
		rc = cn_mp_read_str(r, &s, &len, CN_DOC_NAME_MAX);
		if (rc != 0) {
			say(why, cap, "role spec: %s[%u]: not a string of at most %d bytes", field, i,
			    CN_DOC_NAME_MAX);
			return CN_EINVAL;
		}
		bool star = len == 1 && s[0] == '*';
		if (kinds && !star && !cn_doc_kind_ok(s, len)) {
			say(why, cap, "role spec: %s[%u]: not a kind", field, i);
			return CN_EINVAL;
		}
		if (kinds && ((len == 4 && memcmp(s, CN_KIND_ROLE, 4) == 0) ||
			      (len == 6 && memcmp(s, CN_KIND_REVOKE, 6) == 0))) {
			say(why, cap, "role spec: %s[%u]: '%.*s' can only be written by a root key",
			    field, i, (int)len, s);
			return CN_EINVAL;
		}
		if (!kinds && !star && !cn_doc_name_ok(s, len)) {
			say(why, cap, "role spec: %s[%u]: not a name prefix", field, i);
			return CN_EINVAL;
		}
		out[i] = s;
		lens[i] = len;
	}
	*count = (uint8_t)n;
	return 0;
}

static int role_spec_parse(const uint8_t *body, size_t len, role_spec *spec, char *why,
			   size_t cap)
{
	memset(spec, 0, sizeof *spec);
	cn_mp_reader r;
	static const uint8_t none = 0; /* no reader over NULL, even for 0 bytes */
	cn_mp_reader_init(&r, len ? body : &none, len);
	uint32_t n;
	if (cn_mp_read_map(&r, &n, 8) != 0) {
		say(why, cap, "role spec: not a mapping of key, kinds, prefixes");
		return CN_EINVAL;
	}
	bool have_key = false, have_kinds = false, have_prefixes = false;
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		uint32_t kl;
		if (cn_mp_read_str(&r, &k, &kl, 32) != 0) {
			say(why, cap, "role spec: field names must be strings");
			return CN_EINVAL;
		}
		int rc;
		if (kl == 3 && memcmp(k, "key", 3) == 0 && !have_key) {
			const char *s;
			uint32_t sl;
			rc = cn_mp_read_str(&r, &s, &sl, 64);
			if (rc != 0 || key_from_b64(s, sl, spec->key) != 0) {
				say(why, cap, "role spec: key: not a base64 Ed25519 public key");
				return CN_EINVAL;
			}
			have_key = true;
		} else if (kl == 5 && memcmp(k, "kinds", 5) == 0 && !have_kinds) {
			rc = read_list(&r, "kinds", spec->kinds, spec->kind_len, &spec->n_kinds, true,
				       why, cap);
			if (rc != 0)
				return rc;
			have_kinds = true;
		} else if (kl == 8 && memcmp(k, "prefixes", 8) == 0 && !have_prefixes) {
			rc = read_list(&r, "prefixes", spec->prefixes, spec->prefix_len,
				       &spec->n_prefixes, false, why, cap);
			if (rc != 0)
				return rc;
			have_prefixes = true;
		} else {
			say(why, cap, "role spec: unknown or repeated field '%.*s'", (int)kl, k);
			return CN_EINVAL;
		}
	}
	if (!have_key || !have_kinds || !have_prefixes) {
		say(why, cap, "role spec: %s: required", !have_key ? "key" :
		    !have_kinds ? "kinds" : "prefixes");
		return CN_EINVAL;
	}
	if (cn_mp_remaining(&r) != 0) {
		say(why, cap, "role spec: trailing bytes");
		return CN_EINVAL;
	}
	return 0;
}

int cn_trust_role_parse(const uint8_t *body, size_t len, char *why, size_t why_cap)
{
	role_spec spec;
	return role_spec_parse(body, len, &spec, why, why_cap);
}

int cn_trust_revoke_parse(const char *name, cn_trust_revocation *out)
{
	memset(out, 0, sizeof *out);
	size_t n = strlen(name);
	if (n == 4 + 64 && memcmp(name, "key/", 4) == 0) {
		size_t got = 0;
		const char *end = NULL;
		if (sodium_hex2bin(out->key, sizeof out->key, name + 4, 64, NULL, &got, &end) != 0 ||
		    got != sizeof out->key || end != name + n)
			return CN_EINVAL;
		for (size_t i = 4; i < n; i++) /* lowercase only: one name per key */
			if (name[i] >= 'A' && name[i] <= 'F')
				return CN_EINVAL;
		out->node = false;
	} else if (n > 5 && memcmp(name, "node/", 5) == 0 &&
		   cn_doc_writer_ok(name + 5, n - 5)) {
		memcpy(out->writer, name + 5, n - 5 + 1);
		out->node = true;
	} else {
		return CN_EINVAL;
	}
	if (n >= sizeof out->doc_name)
		return CN_EINVAL;
	memcpy(out->doc_name, name, n + 1);
	return 0;
}

/* --- installing role and revoke documents ------------------------------ */

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem, uint32_t max)
{
	if (need <= *cap)
		return 0;
	if (need > max)
		return CN_EFULL;
	uint32_t c = *cap ? *cap * 2 : 4;
	if (c > max)
		c = max;
	void *p = realloc(*arr, (size_t)c * elem);
	if (p == NULL)
		return CN_ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

static void remove_grant(cn_trust *t, const char *role)
{
	for (uint32_t i = 0; i < t->n_grants; i++) {
		if (strcmp(t->grants[i].role, role) == 0) {
			free(t->grants[i].text);
			t->grants[i] = t->grants[--t->n_grants];
			return;
		}
	}
}

int cn_trust_set_role(cn_trust *t, const cn_doc *role)
{
	if (strcmp(role->kind, CN_KIND_ROLE) != 0)
		return CN_EINVAL;
	if (role->deleted) {
		remove_grant(t, role->name);
		return 0;
	}
	role_spec spec;
	if (role_spec_parse(role->body, role->body_len, &spec, NULL, 0) != 0)
		return CN_EINVAL;
	size_t text_len = 0;
	for (unsigned i = 0; i < spec.n_kinds; i++)
		text_len += spec.kind_len[i] + 1;
	for (unsigned i = 0; i < spec.n_prefixes; i++)
		text_len += spec.prefix_len[i] + 1;
	char *text = malloc(text_len);
	if (text == NULL)
		return CN_ENOMEM;
	char *p = text;
	for (unsigned i = 0; i < spec.n_kinds; i++) {
		memcpy(p, spec.kinds[i], spec.kind_len[i]);
		p += spec.kind_len[i];
		*p++ = '\0';
	}
	for (unsigned i = 0; i < spec.n_prefixes; i++) {
		memcpy(p, spec.prefixes[i], spec.prefix_len[i]);
		p += spec.prefix_len[i];
		*p++ = '\0';
	}
	assert((size_t)(p - text) == text_len);
	remove_grant(t, role->name);
	int rc = grow((void **)&t->grants, &t->cap_grants, t->n_grants + 1, sizeof *t->grants,
		      CN_TRUST_ROLES_MAX);
	if (rc != 0) {
		free(text);
		return rc;
	}
	cn_trust_grant *g = &t->grants[t->n_grants++];
	memcpy(g->role, role->name, sizeof g->role);
	memcpy(g->key, spec.key, sizeof g->key);
	g->n_kinds = spec.n_kinds;
	g->n_prefixes = spec.n_prefixes;
	g->text = text;
	return 0;
}

int cn_trust_set_revocation(cn_trust *t, const cn_doc *revoke)
{
	if (strcmp(revoke->kind, CN_KIND_REVOKE) != 0 || revoke->deleted)
		return CN_EINVAL;
	cn_trust_revocation rv;
	if (cn_trust_revoke_parse(revoke->name, &rv) != 0)
		return CN_EINVAL;
	rv.cutoff = revoke->version;
	for (uint32_t i = 0; i < t->n_revoked; i++) {
		if (strcmp(t->revoked[i].doc_name, rv.doc_name) == 0) {
			/* A newer version of the same revocation (LWW winner). */
			t->revoked[i] = rv;
			return 0;
		}
	}
	int rc = grow((void **)&t->revoked, &t->cap_revoked, t->n_revoked + 1,
		      sizeof *t->revoked, CN_TRUST_REVOKED_MAX);
	if (rc != 0)
		return rc;
	t->revoked[t->n_revoked++] = rv;
	return 0;
}

bool cn_trust_key_revoked(const cn_trust *t, const uint8_t key[CN_DOC_KEY_BYTES],
			  uint64_t at_version)
{
	for (uint32_t i = 0; i < t->n_revoked; i++) {
		const cn_trust_revocation *r = &t->revoked[i];
		if (!r->node && memcmp(r->key, key, CN_DOC_KEY_BYTES) == 0 &&
		    (at_version == 0 || at_version >= r->cutoff))
			return true;
	}
	return false;
}

bool cn_trust_node_revoked(const cn_trust *t, const char *node, uint64_t at_version)
{
	for (uint32_t i = 0; i < t->n_revoked; i++) {
		const cn_trust_revocation *r = &t->revoked[i];
		if (r->node && strcmp(r->writer, node) == 0 &&
		    (at_version == 0 || at_version >= r->cutoff))
			return true;
	}
	return false;
}

/* --- the check --------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static bool matches_kind(const cn_trust_grant *g, const char *kind)
{
	const char *p = g->text;
	for (unsigned i = 0; i < g->n_kinds; i++, p += strlen(p) + 1)
		if (strcmp(p, "*") == 0 || strcmp(p, kind) == 0)
			return true;
	return false;
}

static bool matches_prefix(const cn_trust_grant *g, const char *name)
{
	const char *p = g->text;
	for (unsigned i = 0; i < g->n_kinds; i++)
		p += strlen(p) + 1;
	for (unsigned i = 0; i < g->n_prefixes; i++, p += strlen(p) + 1)
		if (strcmp(p, "*") == 0 || strncmp(name, p, strlen(p)) == 0)
			return true;
	return false;
}

static bool is_trust_kind(const char *kind)
{
	return strcmp(kind, CN_KIND_ROLE) == 0 || strcmp(kind, CN_KIND_REVOKE) == 0;
}

/* Body/name rules of role and revoke documents (signed by a root). */
static int check_trust_doc(const cn_doc *d, char *why, size_t cap)
{
	if (strcmp(d->kind, CN_KIND_REVOKE) == 0) {
		cn_trust_revocation rv;
		if (d->deleted) {
			say(why, cap, "revoke %s: revocations cannot be deleted", d->name);
			return CN_EPERM;
		}
		if (cn_trust_revoke_parse(d->name, &rv) != 0) {
			say(why, cap, "revoke: name must be key/<64 lowercase hex> or node/<node name>");
			return CN_EPERM;
		}
		return 0;
	}
	if (!d->deleted && cn_trust_role_parse(d->body, d->body_len, why, cap) != 0)
		return CN_EPERM;
	return 0;
}

static int check(const cn_trust *t, const cn_doc *d, bool verify_sig, char *why, size_t why_cap)
{
	char id[CN_TRUST_KEY_ID_SIZE];
	cn_trust_key_id(d->key, id);
	if (all_zero(d->sig, CN_DOC_SIG_BYTES)) {
		say(why, why_cap, "unsigned");
		return CN_EPERM;
	}
	if (verify_sig && cn_doc_verify_sig(d) != 0) {
		say(why, why_cap, "bad signature (key %s)", id);
		return CN_EPERM;
	}
	bool root = cn_trust_is_root(t, d->key);
	/* Role and revoke documents depend on the roots alone, never on other
	 * documents: trust state then has no cycles (a revocation cannot
	 * revoke the document that would revoke it). */
	if (is_trust_kind(d->kind)) {
		if (!root) {
			say(why, why_cap, "kind '%s' needs a root key (key %s)", d->kind, id);
			return CN_EPERM;
		}
		return check_trust_doc(d, why, why_cap);
	}
	bool granted = false;
	for (uint32_t i = 0; i < t->n_grants && !granted; i++)
		granted = memcmp(t->grants[i].key, d->key, CN_DOC_KEY_BYTES) == 0;
	if (!root && !granted) {
		say(why, why_cap, "unknown key %s", id);
		return CN_EPERM;
	}
	if (cn_trust_key_revoked(t, d->key, d->version)) {
		say(why, why_cap, "key %s revoked", id);
		return CN_EPERM;
	}
	if (cn_trust_node_revoked(t, d->writer, d->version)) {
		say(why, why_cap, "writer node %s revoked", d->writer);
		return CN_EPERM;
	}
	if (root)
		return 0;
	bool kind_ok = false;
	for (uint32_t i = 0; i < t->n_grants; i++) {
		const cn_trust_grant *g = &t->grants[i];
		if (memcmp(g->key, d->key, CN_DOC_KEY_BYTES) != 0 || !matches_kind(g, d->kind))
			continue;
		kind_ok = true;
		if (matches_prefix(g, d->name))
			return 0;
	}
	if (!kind_ok)
		say(why, why_cap, "kind '%s' not granted to key %s", d->kind, id);
	else
		say(why, why_cap, "name '%s' outside the prefixes of key %s", d->name, id);
	return CN_EPERM;
}

int cn_trust_check(const cn_trust *t, const cn_doc *d, char *why, size_t why_cap)
{
	return check(t, d, true, why, why_cap);
}

int cn_trust_check_scope(const cn_trust *t, const cn_doc *d, char *why, size_t why_cap)
{
	return check(t, d, false, why, why_cap);
}
