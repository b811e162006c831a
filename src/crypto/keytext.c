#include "crypto/keytext.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"

static_assert(CN_KEYTEXT_LEN == sodium_base64_ENCODED_LEN(CN_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1,
	      "44 characters per key");

static const char ring_header[] =
	"# canopy cluster key ring: one base64 key per line, the first one seals\n";
static_assert(sizeof ring_header - 1 <= 128, "header fits CN_KEYTEXT_RING_MAX");

void cn_keytext_encode(const uint8_t key[CN_KEY_BYTES], char out[CN_KEYTEXT_SIZE])
{
	sodium_bin2base64(out, CN_KEYTEXT_SIZE, key, CN_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
	assert(strlen(out) == CN_KEYTEXT_LEN);
}

static bool is_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int cn_keytext_decode(const char *text, size_t len, uint8_t key[CN_KEY_BYTES])
{
	if (len != CN_KEYTEXT_LEN)
		return CN_EINVAL;
	assert(text != NULL);
	/* Check the alphabet ourselves: libsodium 1.0.18's decoder reads bytes
	 * 0x80..0xFF as '/' (found by fuzz_identity), which would give one key
	 * many texts. 32 bytes are 43 characters and one '='. */
	for (size_t i = 0; i + 1 < CN_KEYTEXT_LEN; i++)
		if (!is_b64_char((unsigned char)text[i]))
			return CN_EINVAL;
	if (text[CN_KEYTEXT_LEN - 1] != '=')
		return CN_EINVAL;
	uint8_t tmp[CN_KEY_BYTES + 1]; /* one spare byte: a longer decode fails */
	size_t bin_len = 0;
	const char *end = NULL;
	/* libsodium 1.0.18 rejects non-zero unused bits, so this is canonical. */
	int rc = sodium_base642bin(tmp, sizeof tmp, text, len, NULL, &bin_len, &end,
				   sodium_base64_VARIANT_ORIGINAL);
	bool ok = rc == 0 && end == text + len && bin_len == CN_KEY_BYTES;
	if (ok)
		memcpy(key, tmp, CN_KEY_BYTES);
	sodium_memzero(tmp, sizeof tmp);
	return ok ? 0 : CN_EINVAL;
}

int cn_keytext_keygen(char out[CN_KEYTEXT_SIZE])
{
	uint8_t key[CN_KEY_BYTES];
	int err = cn_key_generate(key);
	if (err == 0)
		cn_keytext_encode(key, out);
	sodium_memzero(key, sizeof key);
	return err;
}

/* One well-formed UTF-8 sequence (no overlongs, surrogates or code points
 * above U+10FFFF), per RFC 3629 table 3.7. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint8_t lo = 0x80, hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (n - i <= need)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += need + 1;
	}
	return true;
}

static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Record a parse failure at a line (0: the whole file): wipe the ring,
 * write the reason. Always returns CN_EINVAL. */
__attribute__((format(printf, 6, 7)))
static int fail(cn_keyring *ring, char *why, size_t why_cap, size_t *line_out, size_t line,
		const char *fmt, ...)
{
	cn_keyring_wipe(ring);
	if (line_out != NULL)
		*line_out = line;
	if (why != NULL && why_cap > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, why_cap, fmt, ap);
		va_end(ap);
	}
	return CN_EINVAL;
}

/* Install one key line's text; on failure the reason goes to why. */
static int parse_key_line(cn_keyring *ring, const uint8_t *l, size_t n, size_t line,
			  const size_t key_lines[CN_KEYRING_MAX], char *why, size_t why_cap,
			  size_t *line_out)
{
	if (cn_keyring_count(ring) == CN_KEYRING_MAX)
		return fail(ring, why, why_cap, line_out, line, "line %zu: more than %d keys", line,
			    CN_KEYRING_MAX);
	uint8_t key[CN_KEY_BYTES];
	if (cn_keytext_decode((const char *)l, n, key) != 0) {
		if (n != CN_KEYTEXT_LEN)
			return fail(ring, why, why_cap, line_out, line,
				    "line %zu: key is not 32 bytes of base64 (got %zu characters, want %d)",
				    line, n, CN_KEYTEXT_LEN);
		return fail(ring, why, why_cap, line_out, line, "line %zu: key is not 32 bytes of base64",
			    line);
	}
	uint32_t id = cn_key_id(key);
	int err = cn_keyring_install(ring, key, NULL);
	sodium_memzero(key, sizeof key);
	if (err == CN_EEXIST) {
		size_t first = 0;
		for (size_t i = 0; i < cn_keyring_count(ring); i++)
			if (ring->ids[i] == id)
				first = key_lines[i];
		return fail(ring, why, why_cap, line_out, line,
			    "line %zu: duplicate key (id %08x, first on line %zu)", line, id, first);
	}
	assert(err == 0);
	return err;
}

int cn_keytext_parse_ring(const uint8_t *text, size_t len, cn_keyring *ring, char *why,
			  size_t why_cap, size_t *line_out)
{
	assert(ring != NULL);
	assert(text != NULL || len == 0);
	if (why != NULL && why_cap > 0)
		why[0] = '\0';
	if (line_out != NULL)
		*line_out = 0;
	int err = cn_keyring_init(ring);
	if (err) {
		if (why != NULL && why_cap > 0)
			snprintf(why, why_cap, "libsodium failed to initialise");
		return err;
	}
	if (len > CN_KEYTEXT_FILE_MAX)
		return fail(ring, why, why_cap, line_out, 0, "file larger than %d bytes",
			    CN_KEYTEXT_FILE_MAX);

	size_t key_lines[CN_KEYRING_MAX] = {0}; /* line of each slot, for duplicates */
	size_t pos = 0, line = 0;
	if (len >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF)
		pos = 3; /* UTF-8 byte order mark */
	/* Each iteration consumes one line; pos strictly grows, so at most
	 * len + 1 iterations. */
	while (pos < len) {
		line++;
		const uint8_t *l = text + pos;
		const uint8_t *nl = memchr(l, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - l) : len - pos;
		pos += n + (nl != NULL);
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (memchr(l, '\0', n) != NULL)
			return fail(ring, why, why_cap, line_out, line, "line %zu: NUL byte", line);
		if (!utf8_valid(l, n))
			return fail(ring, why, why_cap, line_out, line, "line %zu: not valid UTF-8",
				    line);
		while (n > 0 && is_blank(l[0])) {
			l++;
			n--;
		}
		while (n > 0 && is_blank(l[n - 1]))
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		size_t slot = cn_keyring_count(ring);
		err = parse_key_line(ring, l, n, line, key_lines, why, why_cap, line_out);
		if (err)
			return err;
		key_lines[slot] = line;
	}
	if (cn_keyring_count(ring) == 0)
		return fail(ring, why, why_cap, line_out, 0, "no keys");
	return 0;
}

/* Append n bytes at *pos if they fit (leaving room for the NUL). */
static bool put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (cap - *pos <= n)
		return false;
	memcpy(out + *pos, s, n);
	*pos += n;
	return true;
}

static bool put_key(char *out, size_t cap, size_t *pos, const uint8_t *key)
{
	char t[CN_KEYTEXT_SIZE];
	cn_keytext_encode(key, t);
	t[CN_KEYTEXT_LEN] = '\n';
	bool ok = put(out, cap, pos, t, CN_KEYTEXT_LEN + 1);
	sodium_memzero(t, sizeof t);
	return ok;
}

int cn_keytext_format_ring(const cn_keyring *ring, char *out, size_t cap, size_t *outlen)
{
	assert(ring != NULL && out != NULL && outlen != NULL);
	size_t count = cn_keyring_count(ring);
	if (count == 0)
		return CN_ENOKEY;
	if (cap == 0)
		return CN_ENOSPACE;
	size_t pos = 0;
	bool ok = put(out, cap, &pos, ring_header, sizeof ring_header - 1);
	ok = ok && put_key(out, cap, &pos, cn_keyring_primary(ring));
	for (size_t i = 0; ok && i < count; i++)
		if (i != ring->primary)
			ok = put_key(out, cap, &pos, cn_keyring_at(ring, i));
	if (!ok) {
		sodium_memzero(out, cap);
		return CN_ENOSPACE;
	}
	assert(pos < cap && pos < CN_KEYTEXT_RING_MAX);
	out[pos] = '\0';
	*outlen = pos;
	return 0;
}
