/* Growable byte buffer with a hard ceiling.
 *
 * Used for replies and text built at the edges (admin replies, JSON). The
 * ceiling keeps a runaway producer from eating the device's memory: an
 * append past it fails with CN_ENOSPACE and leaves the buffer as it was. */
#ifndef CN_UTIL_BUF_H
#define CN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cn_buf {
	uint8_t *data; /* owned; NUL-terminated after every append for text use */
	size_t len;
	size_t cap;
	size_t max;    /* hard ceiling in bytes */
	int err;       /* first error seen (sticky), 0 if none */
} cn_buf;

void cn_buf_init(cn_buf *b, size_t max);
void cn_buf_free(cn_buf *b);
void cn_buf_reset(cn_buf *b);
int cn_buf_append(cn_buf *b, const void *p, size_t n);
int cn_buf_puts(cn_buf *b, const char *s);
int cn_buf_printf(cn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cn_buf_vprintf(cn_buf *b, const char *fmt, va_list ap);
static inline const char *cn_buf_str(const cn_buf *b) { return b->data ? (const char *)b->data : ""; }

#endif
