/* Bounded msgpack reading and writing.
 *
 * Reading: a cursor over caller-owned bytes that never allocates. Strings
 * and binaries come back as pointers into the input (valid as long as the
 * input is). Every declared length or element count is checked against the
 * bytes that remain before anything trusts it, so a five-byte input that
 * declares a four-billion-entry map fails at once with CN_ETRUNC instead of
 * asking for gigabytes (the trap in msgpack-c's msgpack_unpack_next).
 * Skipping unknown values is iterative with a depth limit: no recursion.
 *
 * Writing: msgpack-c's packer over a fixed caller buffer. Overflow is sticky:
 * once a write does not fit, every later one fails too and cn_mp_writer_end
 * returns CN_ENOSPACE, so encoders need not check each call. */
#ifndef CN_WIRE_MP_H
#define CN_WIRE_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

enum { CN_MP_DEPTH_MAX = 16 };

typedef struct cn_mp_reader {
	const uint8_t *p;
	const uint8_t *end;
} cn_mp_reader;

void cn_mp_reader_init(cn_mp_reader *r, const uint8_t *buf, size_t len);
static inline size_t cn_mp_remaining(const cn_mp_reader *r)
{
	return (size_t)(r->end - r->p);
}

/* Each read consumes one object on success and leaves the cursor untouched
 * on failure. Errors: CN_ETRUNC (input ends), CN_ETYPE (other type),
 * CN_ERANGE (value does not fit the out type). */
int cn_mp_read_nil(cn_mp_reader *r);
bool cn_mp_peek_nil(const cn_mp_reader *r);
int cn_mp_read_bool(cn_mp_reader *r, bool *out);
int cn_mp_read_u64(cn_mp_reader *r, uint64_t *out);
int cn_mp_read_u32(cn_mp_reader *r, uint32_t *out);
int cn_mp_read_i64(cn_mp_reader *r, int64_t *out);
/* Accepts float32, float64 and integers. */
int cn_mp_read_f64(cn_mp_reader *r, double *out);
/* Strings/binaries: pointer into the input plus length (not NUL-terminated).
 * max_len bounds the accepted length (CN_ELIMIT above it). */
int cn_mp_read_str(cn_mp_reader *r, const char **out, uint32_t *len, uint32_t max_len);
int cn_mp_read_bin(cn_mp_reader *r, const uint8_t **out, uint32_t *len, uint32_t max_len);
/* Container headers. The count is bounded by max_count (CN_ELIMIT) and by
 * the remaining input (each element needs at least one byte; a map entry
 * two), CN_ETRUNC otherwise. */
int cn_mp_read_array(cn_mp_reader *r, uint32_t *count, uint32_t max_count);
int cn_mp_read_map(cn_mp_reader *r, uint32_t *count, uint32_t max_count);
/* Skip one complete object of any type, nested at most CN_MP_DEPTH_MAX. */
int cn_mp_skip(cn_mp_reader *r);

typedef struct cn_mp_writer {
	msgpack_packer pk;
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
} cn_mp_writer;

void cn_mp_writer_init(cn_mp_writer *w, uint8_t *buf, size_t cap);
/* Returns 0 and the written length, or CN_ENOSPACE. */
int cn_mp_writer_end(const cn_mp_writer *w, size_t *len);

/* Thin helpers over msgpack_pack_*; the packer is w->pk for anything else. */
void cn_mp_put_uint(cn_mp_writer *w, uint64_t v);
void cn_mp_put_int(cn_mp_writer *w, int64_t v);
void cn_mp_put_bool(cn_mp_writer *w, bool v);
void cn_mp_put_f64(cn_mp_writer *w, double v);
void cn_mp_put_f32(cn_mp_writer *w, float v);
void cn_mp_put_str(cn_mp_writer *w, const char *s, size_t len);
void cn_mp_put_cstr(cn_mp_writer *w, const char *s);
void cn_mp_put_bin(cn_mp_writer *w, const void *b, size_t len);
/* Bytes that are already msgpack (one or more whole objects), as they are. */
void cn_mp_put_raw(cn_mp_writer *w, const void *b, size_t len);
void cn_mp_put_array(cn_mp_writer *w, uint32_t n);
void cn_mp_put_map(cn_mp_writer *w, uint32_t n);
void cn_mp_put_nil(cn_mp_writer *w);

#endif
