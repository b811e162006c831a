/* Text forms of cluster keys, for people and for the key ring file.
 *
 * A key's text is its 32 bytes in standard base64 with padding (RFC 4648
 * section 4, libsodium's sodium_base64_VARIANT_ORIGINAL): exactly 44
 * characters, the last one '='. Decoding is strict and canonical (no
 * whitespace inside, no URL-safe alphabet, unused low bits must be zero), so
 * every key has exactly one text and text -> key -> text is the identity.
 *
 * Key ring file (the agent reads it, passes the bytes here; it should be
 * mode 0600):
 *
 *   # comment lines start with '#' (after optional blanks)
 *   <base64 key>      first key line: the primary, which seals
 *   <base64 key>      further keys: accepted when opening
 *
 * Rules: UTF-8 text, at most CN_KEYTEXT_FILE_MAX bytes, LF or CRLF line
 * ends; an optional UTF-8 byte order mark; blanks (space, tab) around a key
 * are ignored, as are blank lines and comment lines; no comment after a key
 * on the same line; no NUL bytes; 1..CN_KEYRING_MAX keys, no duplicates.
 * A parse error names the 1-based line, e.g.
 * "line 3: key is not 32 bytes of base64 (got 12 characters, want 44)".
 *
 * Secrets: key text is as secret as the key. Functions here wipe their own
 * temporaries; text buffers the caller passes in or gets back are the
 * caller's to wipe (sodium_memzero). */
#ifndef CN_CRYPTO_KEYTEXT_H
#define CN_CRYPTO_KEYTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"

enum {
	CN_KEYTEXT_LEN = 44,                  /* characters of one key's text */
	CN_KEYTEXT_SIZE = CN_KEYTEXT_LEN + 1, /* with the NUL */
	CN_KEYTEXT_FILE_MAX = 64 * 1024,      /* bytes of a key ring file */
	CN_KEYTEXT_WHY_MAX = 128,             /* enough for any reason string */
	/* Bytes cn_keytext_format_ring() needs at most, NUL included. */
	CN_KEYTEXT_RING_MAX = 128 + CN_KEYRING_MAX * (CN_KEYTEXT_LEN + 1) + 1,
};

/* Encode a key as text.
 * @param[out] out  CN_KEYTEXT_SIZE bytes: 44 characters and a NUL. Never fails. */
void cn_keytext_encode(const uint8_t key[CN_KEY_BYTES], char out[CN_KEYTEXT_SIZE]);

/* Decode one key's text (exactly 44 characters, no blanks, not
 * NUL-terminated necessarily).
 * @param[out] key  set only on success.
 * @return 0, or CN_EINVAL if text is not the canonical base64 of 32 bytes. */
int cn_keytext_decode(const char *text, size_t len, uint8_t key[CN_KEY_BYTES]);

/* Generate a fresh random key and write its text (for `canopy keygen`).
 * @param[out] out  CN_KEYTEXT_SIZE bytes.
 * @return 0, or CN_EIO if libsodium could not initialise. */
int cn_keytext_keygen(char out[CN_KEYTEXT_SIZE]);

/* Parse a key ring file.
 * @param[in] text, len  the file's bytes (hostile: any bytes are safe).
 * @param[out] ring  initialised here (cn_keyring_init); on success it holds
 *                   the file's keys in file order, the first one primary; on
 *                   failure it is wiped and empty.
 * @param[out] why, why_cap  if why != NULL and why_cap > 0, a NUL-terminated
 *                   reason on failure ("" on success), truncated to fit;
 *                   CN_KEYTEXT_WHY_MAX bytes always suffice.
 * @param[out] line_out  if not NULL, the 1-based line of the error, or 0 for
 *                   errors about the whole file (size, "no keys") and success.
 * @return 0, or
 *   CN_EINVAL  bad file: the reason names the line ("line 3: ...") or says
 *              "no keys" / "file larger than 65536 bytes";
 *   CN_EIO     libsodium could not initialise. */
int cn_keytext_parse_ring(const uint8_t *text, size_t len, cn_keyring *ring, char *why,
			  size_t why_cap, size_t *line_out);

/* Write a ring as a key ring file: a comment line, then one key per line,
 * the primary first, the others in install order. NUL-terminated.
 * @param[out] out, cap  destination; CN_KEYTEXT_RING_MAX always suffices.
 * @param[out] outlen    characters written, NUL excluded, set on success.
 * @return 0, or
 *   CN_ENOKEY    the ring is empty (a file with no keys would not parse);
 *   CN_ENOSPACE  cap is too small (out is then wiped). */
int cn_keytext_format_ring(const cn_keyring *ring, char *out, size_t cap, size_t *outlen);

#endif
