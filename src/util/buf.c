#include "util/buf.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cn_buf_init(cn_buf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

void cn_buf_free(cn_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void cn_buf_reset(cn_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(cn_buf *b, size_t extra)
{
	if (b->err)
		return b->err;
	/* +1 keeps room for the terminating NUL. */
	if (extra > b->max || b->len + extra + 1 > b->max) {
		b->err = CN_ENOSPACE;
		return b->err;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	uint8_t *p = realloc(b->data, cap);
	if (p == NULL) {
		b->err = CN_ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int cn_buf_append(cn_buf *b, const void *p, size_t n)
{
	int rc = reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cn_buf_puts(cn_buf *b, const char *s)
{
	return cn_buf_append(b, s, strlen(s));
}

int cn_buf_vprintf(cn_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return CN_EINVAL;
	int rc = reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int cn_buf_printf(cn_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}
