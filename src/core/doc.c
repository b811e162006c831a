/* Policy documents: syntax, canonical bytes, order, codec. See doc.h. */
#include "core/doc.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "wire/mp.h"

enum {
	K_KIND = 1,
	K_NAME = 2,
	K_VERSION = 3,
	K_WRITER = 4,
	K_KEY = 5,
	K_DELETED = 6,
	K_BODY = 7,
	K_SIG = 8,
	K_COUNT = 8,
};

static void say(char *why, size_t cap, const char *msg)
{
	if (why != NULL && cap > 0)
		snprintf(why, cap, "%s", msg);
}

bool cn_doc_kind_ok(const char *s, size_t len)
{
	if (len == 0 || len > CN_DOC_KIND_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool cn_doc_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > CN_DOC_NAME_MAX || s[0] == '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

bool cn_doc_writer_ok(const char *s, size_t len)
{
	if (len == 0 || len > CN_DOC_WRITER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Exactly one msgpack object, nested at most CN_MP_DEPTH_MAX. */
static bool body_ok(const uint8_t *body, size_t len)
{
	if (len == 0) /* a live document has a body; also no reader over NULL */
		return false;
	cn_mp_reader r;
	cn_mp_reader_init(&r, body, len);
	return cn_mp_skip(&r) == 0 && cn_mp_remaining(&r) == 0;
}

static void body_hash(const uint8_t *body, size_t len, uint8_t out[CN_DOC_HASH_BYTES])
{
	static const uint8_t empty = 0;
	crypto_generichash(out, CN_DOC_HASH_BYTES, body ? body : &empty, len, NULL, 0);
}

/* Checks shared by init and validate, before the hash. */
static int check_fields(const cn_doc *d, char *why, size_t cap)
{
	if (!cn_doc_kind_ok(d->kind, strlen(d->kind))) {
		say(why, cap, "kind: 1-16 characters of a-z, 0-9 and '-', starting with a letter");
		return CN_EINVAL;
	}
	if (!cn_doc_name_ok(d->name, strlen(d->name))) {
		say(why, cap, "name: 1-128 characters of A-Z a-z 0-9 . _ : / -, not starting with '/'");
		return CN_EINVAL;
	}
	if (d->version == 0) {
		say(why, cap, "version: must be a clock timestamp above 0");
		return CN_EINVAL;
	}
	if (!cn_doc_writer_ok(d->writer, strlen(d->writer))) {
		say(why, cap, "writer: 1-64 printable characters without spaces");
		return CN_EINVAL;
	}
	if (d->body_len > CN_DOC_BODY_MAX) {
		say(why, cap, "body: larger than 64 KiB");
		return CN_EINVAL;
	}
	if ((d->body == NULL) != (d->body_len == 0)) {
		say(why, cap, "body: pointer and length disagree");
		return CN_EINVAL;
	}
	if (d->deleted && d->body_len != 0) {
		say(why, cap, "body: a deletion (tombstone) carries no body");
		return CN_EINVAL;
	}
	if (!d->deleted && !body_ok(d->body, d->body_len)) {
		say(why, cap, "body: not exactly one msgpack object");
		return CN_EINVAL;
	}
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		return CN_EINVAL;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

int cn_doc_init(cn_doc *d, const char *kind, const char *name, uint64_t version,
		const char *writer, const uint8_t key[CN_DOC_KEY_BYTES], bool deleted,
		const uint8_t *body, size_t body_len, char *why, size_t why_cap)
{
	memset(d, 0, sizeof *d);
	if (copy_str(d->kind, sizeof d->kind, kind) != 0) {
		say(why, why_cap, "kind: longer than 16 characters");
		return CN_EINVAL;
	}
	if (copy_str(d->name, sizeof d->name, name) != 0) {
		say(why, why_cap, "name: longer than 128 characters");
		return CN_EINVAL;
	}
	if (copy_str(d->writer, sizeof d->writer, writer) != 0) {
		say(why, why_cap, "writer: longer than 64 characters");
		return CN_EINVAL;
	}
	if (body_len > CN_DOC_BODY_MAX) {
		say(why, why_cap, "body: larger than 64 KiB");
		return CN_EINVAL;
	}
	d->version = version;
	memcpy(d->key, key, CN_DOC_KEY_BYTES);
	d->deleted = deleted;
	d->body = body_len ? body : NULL;
	d->body_len = (uint32_t)body_len;
	int rc = check_fields(d, why, why_cap);
	if (rc != 0)
		return rc;
	body_hash(d->body, d->body_len, d->body_hash);
	return 0;
}

int cn_doc_validate(const cn_doc *d, char *why, size_t why_cap)
{
	int rc = check_fields(d, why, why_cap);
	if (rc != 0)
		return rc;
	uint8_t h[CN_DOC_HASH_BYTES];
	body_hash(d->body, d->body_len, h);
	if (sodium_memcmp(h, d->body_hash, sizeof h) != 0) {
		say(why, why_cap, "body: hash does not match the body");
		return CN_EINVAL;
	}
	return 0;
}

int cn_doc_canonical(const cn_doc *d, uint8_t *out, size_t cap, size_t *len)
{
	cn_mp_writer w;
	cn_mp_writer_init(&w, out, cap);
	cn_mp_put_array(&w, 8);
	cn_mp_put_cstr(&w, CN_DOC_DOMAIN);
	cn_mp_put_cstr(&w, d->kind);
	cn_mp_put_cstr(&w, d->name);
	cn_mp_put_uint(&w, d->version);
	cn_mp_put_cstr(&w, d->writer);
	cn_mp_put_bin(&w, d->key, CN_DOC_KEY_BYTES);
	cn_mp_put_bool(&w, d->deleted);
	cn_mp_put_bin(&w, d->body_hash, CN_DOC_HASH_BYTES);
	int rc = cn_mp_writer_end(&w, len);
	assert(rc != 0 || *len <= CN_DOC_CANON_MAX);
	return rc;
}

void cn_doc_hash(const cn_doc *d, uint8_t out[CN_DOC_HASH_BYTES])
{
	uint8_t canon[CN_DOC_CANON_MAX];
	size_t n = 0;
	int rc = cn_doc_canonical(d, canon, sizeof canon, &n);
	assert(rc == 0); /* CN_DOC_CANON_MAX covers the longest fields */
	(void)rc;
	crypto_generichash(out, CN_DOC_HASH_BYTES, canon, n, NULL, 0);
}

int cn_doc_verify_sig(const cn_doc *d)
{
	uint8_t canon[CN_DOC_CANON_MAX];
	size_t n = 0;
	if (cn_doc_canonical(d, canon, sizeof canon, &n) != 0)
		return CN_EAUTH;
	return crypto_sign_verify_detached(d->sig, canon, n, d->key) == 0 ? 0 : CN_EAUTH;
}

int cn_doc_cmp(const cn_doc *a, const cn_doc *b)
{
	if (a->version != b->version)
		return a->version < b->version ? -1 : 1;
	int c = strcmp(a->writer, b->writer);
	if (c != 0)
		return c < 0 ? -1 : 1;
	uint8_t ha[CN_DOC_HASH_BYTES], hb[CN_DOC_HASH_BYTES];
	cn_doc_hash(a, ha);
	cn_doc_hash(b, hb);
	c = memcmp(ha, hb, sizeof ha);
	return (c > 0) - (c < 0);
}

static void encode(cn_mp_writer *w, const cn_doc *d)
{
	cn_mp_put_map(w, K_COUNT);
	cn_mp_put_uint(w, K_KIND);
	cn_mp_put_cstr(w, d->kind);
	cn_mp_put_uint(w, K_NAME);
	cn_mp_put_cstr(w, d->name);
	cn_mp_put_uint(w, K_VERSION);
	cn_mp_put_uint(w, d->version);
	cn_mp_put_uint(w, K_WRITER);
	cn_mp_put_cstr(w, d->writer);
	cn_mp_put_uint(w, K_KEY);
	cn_mp_put_bin(w, d->key, CN_DOC_KEY_BYTES);
	cn_mp_put_uint(w, K_DELETED);
	cn_mp_put_bool(w, d->deleted);
	cn_mp_put_uint(w, K_BODY);
	static const uint8_t none = 0; /* memcpy from NULL is undefined even for 0 bytes */
	cn_mp_put_bin(w, d->body ? d->body : &none, d->body_len);
	cn_mp_put_uint(w, K_SIG);
	cn_mp_put_bin(w, d->sig, CN_DOC_SIG_BYTES);
}

int cn_doc_encode(const cn_doc *d, uint8_t *out, size_t cap, size_t *len)
{
	cn_mp_writer w;
	cn_mp_writer_init(&w, out, cap);
	encode(&w, d);
	return cn_mp_writer_end(&w, len);
}

static size_t str_size(size_t n)
{
	return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}

static size_t bin_size(size_t n)
{
	return n + (n < 256 ? 2 : n < 65536 ? 3 : 5);
}

static size_t uint_size(uint64_t v)
{
	return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

size_t cn_doc_encoded_size(const cn_doc *d)
{
	/* map header + 8 one-byte keys + values */
	return 1 + K_COUNT + str_size(strlen(d->kind)) + str_size(strlen(d->name)) +
	       uint_size(d->version) + str_size(strlen(d->writer)) +
	       bin_size(CN_DOC_KEY_BYTES) + 1 + bin_size(d->body_len) +
	       bin_size(CN_DOC_SIG_BYTES);
}

static int read_text(cn_mp_reader *r, char *dst, size_t max,
		     bool (*ok)(const char *, size_t))
{
	const char *s;
	uint32_t n;
	int rc = cn_mp_read_str(r, &s, &n, (uint32_t)max);
	if (rc != 0)
		return rc;
	if (!ok(s, n) || memchr(s, '\0', n) != NULL)
		return CN_EINVAL;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int read_fixed_bin(cn_mp_reader *r, uint8_t *dst, uint32_t want)
{
	const uint8_t *b;
	uint32_t n;
	int rc = cn_mp_read_bin(r, &b, &n, want);
	if (rc != 0)
		return rc;
	if (n != want)
		return CN_EINVAL;
	memcpy(dst, b, n);
	return 0;
}

static int read_field(cn_mp_reader *r, uint64_t key, cn_doc *d)
{
	switch (key) {
	case K_KIND: return read_text(r, d->kind, CN_DOC_KIND_MAX, cn_doc_kind_ok);
	case K_NAME: return read_text(r, d->name, CN_DOC_NAME_MAX, cn_doc_name_ok);
	case K_VERSION: return cn_mp_read_u64(r, &d->version);
	case K_WRITER: return read_text(r, d->writer, CN_DOC_WRITER_MAX, cn_doc_writer_ok);
	case K_KEY: return read_fixed_bin(r, d->key, CN_DOC_KEY_BYTES);
	case K_DELETED: return cn_mp_read_bool(r, &d->deleted);
	case K_BODY: {
		const uint8_t *b;
		uint32_t n;
		int rc = cn_mp_read_bin(r, &b, &n, CN_DOC_BODY_MAX);
		if (rc == 0) {
			d->body = n ? b : NULL;
			d->body_len = n;
		}
		return rc;
	}
	case K_SIG: return read_fixed_bin(r, d->sig, CN_DOC_SIG_BYTES);
	default: assert(!"unreachable"); return CN_EINVAL;
	}
}

int cn_doc_decode(const uint8_t *buf, size_t len, cn_doc *d, uint64_t *unknown_keys)
{
	memset(d, 0, sizeof *d);
	cn_mp_reader r;
	cn_mp_reader_init(&r, buf, len);
	uint32_t count;
	int rc = cn_mp_read_map(&r, &count, CN_DOC_FIELDS_MAX);
	if (rc != 0)
		return rc;
	unsigned seen = 0; /* bit k set once key k was read */
	for (uint32_t i = 0; i < count; i++) {
		uint64_t key = 0;
		rc = cn_mp_read_u64(&r, &key);
		if (rc == CN_ETYPE || rc == CN_ERANGE) { /* a non-uint key: unknown */
			rc = cn_mp_skip(&r);
			key = 0;
		}
		if (rc != 0)
			return rc;
		if (key < K_KIND || key > K_SIG) {
			if (unknown_keys != NULL)
				(*unknown_keys)++;
			rc = cn_mp_skip(&r);
			if (rc != 0)
				return rc;
			continue;
		}
		if (seen & (1u << key))
			return CN_EINVAL;
		seen |= 1u << key;
		rc = read_field(&r, key, d);
		if (rc != 0)
			return rc;
	}
	if (cn_mp_remaining(&r) != 0)
		return CN_ETRAILING;
	for (unsigned k = K_KIND; k <= K_SIG; k++)
		if (!(seen & (1u << k)))
			return CN_EMISSING;
	rc = check_fields(d, NULL, 0);
	if (rc != 0)
		return rc;
	body_hash(d->body, d->body_len, d->body_hash);
	return 0;
}

bool cn_doc_equal(const cn_doc *a, const cn_doc *b)
{
	return strcmp(a->kind, b->kind) == 0 && strcmp(a->name, b->name) == 0 &&
	       a->version == b->version && strcmp(a->writer, b->writer) == 0 &&
	       memcmp(a->key, b->key, CN_DOC_KEY_BYTES) == 0 && a->deleted == b->deleted &&
	       a->body_len == b->body_len &&
	       (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0) &&
	       memcmp(a->body_hash, b->body_hash, CN_DOC_HASH_BYTES) == 0 &&
	       memcmp(a->sig, b->sig, CN_DOC_SIG_BYTES) == 0;
}
