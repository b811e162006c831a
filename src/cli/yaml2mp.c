/* YAML to msgpack (yaml2mp.h). The converter recurses over the node tree
 * with an explicit depth limit (CN_MP_DEPTH_MAX), the same bound the
 * msgpack reader applies, so a deep file fails with a message instead of
 * exhausting the stack. */
#include "cli/yaml2mp.h"

#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

struct cn_yaml {
	struct fy_document *doc;
	char *text; /* libfyaml keeps pointers into the source */
	char file[256];
};

__attribute__((format(printf, 5, 6)))
static int say(char *err, size_t cap, const char *file, int line, const char *fmt, ...)
{
	if (err == NULL || cap == 0)
		return 0;
	int n = line > 0 ? snprintf(err, cap, "%s:%d: ", file, line) : snprintf(err, cap, "%s: ", file);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

/* Line of a node: a scalar's own token, a collection's first scalar. */
static int node_line(struct fy_node *n)
{
	for (int depth = 0; n != NULL && depth < CN_MP_DEPTH_MAX + 2; depth++) {
		switch (fy_node_get_type(n)) {
		case FYNT_SCALAR: {
			struct fy_token *t = fy_node_get_scalar_token(n);
			const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
			return m ? m->line + 1 : 0;
		}
		case FYNT_MAPPING: {
			struct fy_node_pair *p = fy_node_mapping_get_by_index(n, 0);
			n = p ? fy_node_pair_key(p) : NULL;
			break;
		}
		case FYNT_SEQUENCE:
			n = fy_node_sequence_get_by_index(n, 0);
			break;
		}
	}
	return 0;
}

int cn_yaml_parse(const char *text, size_t len, const char *file, cn_yaml **out, char *err,
		  size_t cap)
{
	*out = NULL;
	if (file == NULL)
		file = "<input>";
	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	if (diag == NULL)
		return CN_ENOMEM;
	fy_diag_set_collect_errors(diag, true);
	struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
	char *copy = malloc(len + 1);
	if (copy == NULL) {
		fy_diag_destroy(diag);
		return CN_ENOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	struct fy_document *doc = fy_document_build_from_string(&cfg, copy, len);
	if (doc == NULL) {
		free(copy);
		void *it = NULL;
		struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
		if (e)
			say(err, cap, file, e->line, "not valid YAML: %s", e->msg); /* 1-based */
		else
			say(err, cap, file, 0, "not valid YAML");
		fy_diag_destroy(diag);
		return CN_EINVAL;
	}
	fy_diag_destroy(diag);
	cn_yaml *y = calloc(1, sizeof *y);
	if (y == NULL || fy_document_root(doc) == NULL) {
		if (y != NULL)
			say(err, cap, file, 0, "empty document");
		fy_document_destroy(doc);
		free(copy);
		free(y);
		return y ? CN_EINVAL : CN_ENOMEM;
	}
	y->doc = doc;
	y->text = copy;
	snprintf(y->file, sizeof y->file, "%s", file);
	*out = y;
	return 0;
}

int cn_yaml_load(const char *path, cn_yaml **out, char *err, size_t cap)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		say(err, cap, path, 0, "cannot open: %s", strerror(errno));
		return CN_EIO;
	}
	size_t max = 4 * CN_JOB_DOC_MAX, n = 0;
	char *text = malloc(max + 1);
	if (text == NULL) {
		fclose(f);
		return CN_ENOMEM;
	}
	n = fread(text, 1, max + 1, f);
	int bad = ferror(f);
	fclose(f);
	int rc;
	if (bad) {
		say(err, cap, path, 0, "cannot read");
		rc = CN_EIO;
	} else if (n > max) {
		say(err, cap, path, 0, "larger than %zu bytes", max);
		rc = CN_EINVAL;
	} else {
		rc = cn_yaml_parse(text, n, path, out, err, cap);
	}
	free(text);
	return rc;
}

void cn_yaml_free(cn_yaml *y)
{
	if (y == NULL)
		return;
	fy_document_destroy(y->doc);
	free(y->text);
	free(y);
}

const char *cn_yaml_file(const cn_yaml *y)
{
	return y->file;
}

int cn_yaml_parse_stream(const char *text, size_t len, const char *file, cn_yaml_doc_fn fn,
			 void *arg, char *err, size_t cap)
{
	if (file == NULL)
		file = "<input>";
	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	if (diag == NULL)
		return CN_ENOMEM;
	fy_diag_set_collect_errors(diag, true);
	struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
	struct fy_parser *fyp = fy_parser_create(&cfg);
	char *copy = malloc(len + 1);
	if (fyp == NULL || copy == NULL) {
		free(copy);
		if (fyp)
			fy_parser_destroy(fyp);
		fy_diag_destroy(diag);
		return CN_ENOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	int rc = fy_parser_set_string(fyp, copy, len) == 0 ? 0 : CN_ENOMEM;
	size_t index = 0;
	cn_yaml y = {.text = NULL};
	snprintf(y.file, sizeof y.file, "%s", file);
	/* A stream holds at most as many documents as it has bytes. */
	for (size_t guard = 0; rc == 0 && guard <= len; guard++) {
		struct fy_document *doc = fy_parse_load_document(fyp);
		if (doc == NULL)
			break;
		struct fy_node *root = fy_document_root(doc);
		size_t sl = 1;
		/* An empty document (a trailing ---) is no document. */
		if (root != NULL && fy_node_get_type(root) == FYNT_SCALAR &&
		    (fy_node_get_scalar(root, &sl) == NULL || sl == 0))
			root = NULL;
		if (root != NULL) {
			y.doc = doc;
			rc = fn(arg, &y, index++);
		}
		fy_parse_document_destroy(fyp, doc);
	}
	if (rc == 0 && fy_parser_get_stream_error(fyp)) {
		void *it = NULL;
		struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
		if (e)
			say(err, cap, file, e->line, "not valid YAML: %s", e->msg); /* 1-based */
		else
			say(err, cap, file, 0, "not valid YAML");
		rc = CN_EINVAL;
	} else if (rc == 0 && index == 0) {
		say(err, cap, file, 0, "no documents");
		rc = CN_EINVAL;
	}
	fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	free(copy);
	return rc;
}

int cn_yaml_load_stream(const char *path, cn_yaml_doc_fn fn, void *arg, char *err, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		say(err, cap, path, 0, "cannot open: %s", strerror(errno));
		return CN_EIO;
	}
	size_t max = 4 * CN_JOB_DOC_MAX;
	char *text = malloc(max + 1);
	if (text == NULL) {
		fclose(f);
		return CN_ENOMEM;
	}
	size_t n = fread(text, 1, max + 1, f);
	int bad = ferror(f);
	fclose(f);
	int rc;
	if (bad || n > max) {
		if (bad)
			say(err, cap, path, 0, "cannot read");
		else
			say(err, cap, path, 0, "larger than %zu bytes", max);
		rc = bad ? CN_EIO : CN_EINVAL;
	} else {
		rc = cn_yaml_parse_stream(text, n, path, fn, arg, err, cap);
	}
	free(text);
	return rc;
}

/* ---- conversion ------------------------------------------------------------ */

static bool is_one_of(const char *s, size_t n, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == n && memcmp(*words, s, n) == 0)
			return true;
	return false;
}

static bool all_digits(const char *s, size_t n, int base)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = base == 16 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
					(c >= 'A' && c <= 'F'))
			  : base == 8 ? (c >= '0' && c <= '7') : (c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool looks_float(const char *s, size_t n)
{
	size_t i = 0, digits = 0;
	bool point = false, exp = false;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			digits++;
		} else if (c == '.' && !point && !exp) {
			point = true;
		} else if ((c == 'e' || c == 'E') && digits && !exp) {
			exp = true;
			if (i + 1 < n && (s[i + 1] == '-' || s[i + 1] == '+'))
				i++;
			if (i + 1 >= n)
				return false;
		} else {
			return false;
		}
	}
	return digits > 0 && (point || exp);
}

struct conv {
	cn_mp_writer w;
	const cn_yaml *y;
	char *err;
	size_t cap;
	int rc;
};

static int conv_fail(struct conv *c, struct fy_node *n, const char *msg)
{
	if (c->rc == 0) {
		c->rc = CN_EINVAL;
		say(c->err, c->cap, c->y->file, node_line(n), "%s", msg);
	}
	return c->rc;
}

static void put_scalar(struct conv *c, struct fy_node *n)
{
	size_t len;
	const char *s = fy_node_get_scalar(n, &len);
	if (s == NULL)
		s = "", len = 0;
	size_t tlen = 0;
	const char *tag = fy_node_get_tag(n, &tlen);
	bool forced_str = tag && ((tlen == 5 && memcmp(tag, "!!str", 5) == 0) ||
				  (tlen == 21 && memcmp(tag, "tag:yaml.org,2002:str", 21) == 0));
	if (fy_node_get_style(n) != FYNS_PLAIN || forced_str) {
		cn_mp_put_str(&c->w, s, len);
		return;
	}
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
	static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
	static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
	char buf[64];
	if (is_one_of(s, len, nulls)) {
		cn_mp_put_nil(&c->w);
	} else if (is_one_of(s, len, trues) || is_one_of(s, len, falses)) {
		cn_mp_put_bool(&c->w, is_one_of(s, len, trues));
	} else if (is_one_of(s, len, infs) || is_one_of(s, len, ninfs) || is_one_of(s, len, nans)) {
		cn_mp_put_f64(&c->w, is_one_of(s, len, nans) ? (double)NAN
				     : is_one_of(s, len, infs) ? (double)INFINITY : -(double)INFINITY);
	} else if (len < sizeof buf &&
		   (all_digits(s + (s[0] == '-' || s[0] == '+'), len - (s[0] == '-' || s[0] == '+'), 10) ||
		    (len > 2 && s[0] == '0' && s[1] == 'x' && all_digits(s + 2, len - 2, 16)) ||
		    (len > 2 && s[0] == '0' && s[1] == 'o' && all_digits(s + 2, len - 2, 8)))) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		int base = len > 2 && buf[1] == 'x' ? 16 : len > 2 && buf[1] == 'o' ? 8 : 10;
		const char *from = base == 10 ? buf : buf + 2;
		errno = 0;
		char *end;
		long long v = strtoll(from, &end, base);
		if (errno || *end) {
			conv_fail(c, n, "integer out of range");
			return;
		}
		cn_mp_put_int(&c->w, v);
	} else if (len < sizeof buf && looks_float(s, len)) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		cn_mp_put_f64(&c->w, strtod(buf, NULL));
	} else {
		cn_mp_put_str(&c->w, s, len);
	}
}

static int convert(struct conv *c, struct fy_node *n, int depth)
{
	if (c->rc)
		return c->rc;
	if (depth > CN_MP_DEPTH_MAX)
		return conv_fail(c, n, "nested too deeply");
	if (fy_node_get_style(n) == FYNS_ALIAS)
		return conv_fail(c, n, "anchors and aliases are not supported");
	void *it = NULL;
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		put_scalar(c, n);
		break;
	case FYNT_SEQUENCE: {
		int count = fy_node_sequence_item_count(n);
		cn_mp_put_array(&c->w, count < 0 ? 0 : (uint32_t)count);
		struct fy_node *item;
		while (c->rc == 0 && (item = fy_node_sequence_iterate(n, &it)) != NULL)
			convert(c, item, depth + 1);
		break;
	}
	case FYNT_MAPPING: {
		int count = fy_node_mapping_item_count(n);
		cn_mp_put_map(&c->w, count < 0 ? 0 : (uint32_t)count);
		struct fy_node_pair *p;
		while (c->rc == 0 && (p = fy_node_mapping_iterate(n, &it)) != NULL) {
			struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
			if (k == NULL || fy_node_get_type(k) != FYNT_SCALAR ||
			    fy_node_get_style(k) == FYNS_ALIAS)
				return conv_fail(c, k ? k : n, "keys must be plain text");
			size_t kl;
			const char *ks = fy_node_get_scalar(k, &kl);
			cn_mp_put_str(&c->w, ks ? ks : "", ks ? kl : 0);
			if (v == NULL)
				cn_mp_put_nil(&c->w);
			else
				convert(c, v, depth + 1);
		}
		break;
	}
	}
	return c->rc;
}

int cn_yaml_to_mp(const cn_yaml *y, uint8_t *buf, size_t cap, size_t *len, char *err,
		  size_t errcap)
{
	struct conv c = {.y = y, .err = err, .cap = errcap};
	cn_mp_writer_init(&c.w, buf, cap);
	int rc = convert(&c, fy_document_root(y->doc), 0);
	if (rc)
		return rc;
	rc = cn_mp_writer_end(&c.w, len);
	if (rc)
		say(err, errcap, y->file, 0, "larger than %zu bytes as msgpack", cap);
	return rc;
}

int cn_yaml_line_of(const cn_yaml *y, const char *path)
{
	struct fy_node *n = fy_document_root(y->doc);
	int line = node_line(n);
	const char *p = path;
	while (n != NULL && *p) {
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '[') {
			char *end;
			long i = strtol(p + 1, &end, 10);
			if (*end != ']' || fy_node_get_type(n) != FYNT_SEQUENCE)
				break;
			n = fy_node_sequence_get_by_index(n, (int)i);
			if (n)
				line = node_line(n);
			p = end + 1;
			continue;
		}
		size_t k = strcspn(p, ".[");
		if (fy_node_get_type(n) != FYNT_MAPPING)
			break;
		struct fy_node_pair *pair;
		void *it = NULL;
		struct fy_node *next = NULL;
		while ((pair = fy_node_mapping_iterate(n, &it)) != NULL) {
			size_t kl;
			const char *ks = fy_node_get_scalar(fy_node_pair_key(pair), &kl);
			if (ks && kl == k && memcmp(ks, p, k) == 0) {
				line = node_line(fy_node_pair_key(pair));
				next = fy_node_pair_value(pair);
				if (next && fy_node_get_type(next) == FYNT_SCALAR)
					line = node_line(next);
				break;
			}
		}
		n = next;
		p += k;
	}
	return line;
}

int cn_yaml_jobspec(const char *text, size_t len, const char *file, cn_jobspec *spec,
		    uint8_t *mp, size_t cap, size_t *mp_len, char *err, size_t errcap)
{
	cn_yaml *y;
	int rc = cn_yaml_parse(text, len, file, &y, err, errcap);
	if (rc)
		return rc;
	uint8_t *tmp = malloc(CN_JOB_DOC_MAX);
	size_t tlen = 0;
	if (tmp == NULL) {
		cn_yaml_free(y);
		return CN_ENOMEM;
	}
	rc = cn_yaml_to_mp(y, tmp, CN_JOB_DOC_MAX, &tlen, err, errcap);
	if (rc == 0) {
		cn_jobspec_err e;
		rc = cn_jobspec_decode(tmp, tlen, true, spec, NULL, &e);
		if (rc) {
			char msg[CN_JOB_ERR_PATH_MAX + CN_JOB_ERR_MSG_MAX + 4];
			cn_jobspec_err_format(&e, msg, sizeof msg);
			say(err, errcap, y->file, cn_yaml_line_of(y, e.path), "%s", msg);
		}
	}
	if (rc == 0) {
		rc = cn_jobspec_encode(spec, mp, cap, mp_len);
		if (rc)
			say(err, errcap, y->file, 0, "encoded job larger than %zu bytes", cap);
	}
	free(tmp);
	cn_yaml_free(y);
	return rc;
}

int cn_yaml_jobspec_file(const char *path, cn_jobspec *spec, uint8_t *mp, size_t cap,
			 size_t *mp_len, char *err, size_t errcap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		say(err, errcap, path, 0, "cannot open: %s", strerror(errno));
		return CN_EIO;
	}
	size_t max = 4 * CN_JOB_DOC_MAX;
	char *text = malloc(max + 1);
	if (text == NULL) {
		fclose(f);
		return CN_ENOMEM;
	}
	size_t n = fread(text, 1, max + 1, f);
	int bad = ferror(f);
	fclose(f);
	int rc;
	if (bad || n > max) {
		say(err, errcap, path, 0, bad ? "cannot read" : "file too large");
		rc = bad ? CN_EIO : CN_EINVAL;
	} else {
		rc = cn_yaml_jobspec(text, n, path, spec, mp, cap, mp_len, err, errcap);
	}
	free(text);
	return rc;
}
