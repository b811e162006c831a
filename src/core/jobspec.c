/* Job specifications: bounded decoder and canonical encoder (jobspec.h).
 *
 * The decoder walks the msgpack map with the bounded reader of wire/mp.h:
 * every count is checked against its CN_JOB_* limit before a byte is
 * copied, strings are copied into the spec's arena (CN_ENOSPACE when it is
 * full), nesting is fixed by the schema (no recursion; unknown values are
 * skipped by cn_mp_skip, which has its own depth limit). The current field
 * path is kept in the decoder so that every error names its field.
 *
 * Invariants of a decoded spec (checked by the encoder's asserts):
 *   1. per_node implies replicas == 0.
 *   2. n_command >= 1.
 *   3. env sorted by key, keys unique; accel sorted by kind, kinds unique.
 *   4. backoff_min_ms <= backoff_max_ms.
 *   5. health_kind == EXEC iff n_health_exec > 0.
 *   6. every cn_jstr lies inside text[0, text_len). */
#include "core/jobspec.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* ---- decoder state ----------------------------------------------------- */

struct dec {
	cn_mp_reader r;
	cn_jobspec *s;
	bool strict;
	uint32_t unknown;
	cn_jobspec_err *err;
	char path[CN_JOB_ERR_PATH_MAX];
	size_t path_len;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct dec *d, int rc, const char *fmt, ...)
{
	if (d->err != NULL && d->err->msg[0] == '\0') {
		snprintf(d->err->path, sizeof d->err->path, "%s", d->path);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err->msg, sizeof d->err->msg, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Message for a reader error at the current path. */
static int fail_mp(struct dec *d, int rc, const char *want)
{
	switch (rc) {
	case CN_ETYPE:
	case CN_ERANGE:
		return fail(d, rc, "must be %s", want);
	case CN_ELIMIT:
		return fail(d, rc, "too long or too many elements (must be %s)", want);
	case CN_ETRUNC:
		return fail(d, rc, "input ends inside the value");
	default:
		return fail(d, rc, "%s", cn_strerror(rc));
	}
}

static size_t path_push_key(struct dec *d, const char *key, size_t n)
{
	size_t old = d->path_len;
	size_t room = sizeof d->path - old - 1;
	size_t dot = old > 0 ? 1 : 0;
	if (n + dot > room)
		n = room > dot ? room - dot : 0;
	if (dot && room > 0)
		d->path[d->path_len++] = '.';
	memcpy(d->path + d->path_len, key, n);
	d->path_len += n;
	d->path[d->path_len] = '\0';
	return old;
}

static size_t path_push_index(struct dec *d, uint32_t i)
{
	size_t old = d->path_len;
	int n = snprintf(d->path + old, sizeof d->path - old, "[%u]", i);
	if (n > 0)
		d->path_len = old + (size_t)n < sizeof d->path ? old + (size_t)n : sizeof d->path - 1;
	return old;
}

static void path_pop(struct dec *d, size_t old)
{
	d->path_len = old;
	d->path[old] = '\0';
}

/* ---- scalar readers ------------------------------------------------------ */

enum charset {
	CS_NAME,  /* [A-Za-z0-9._-], at least one byte */
	CS_LABEL, /* no byte below 0x20 or 0x7f, at least one byte */
	CS_ANY,   /* anything but NUL; may be empty */
	CS_ENV,   /* [A-Za-z_][A-Za-z0-9_]* */
};

static bool text_ok(const char *p, uint32_t n, enum charset cs)
{
	if (n == 0)
		return cs == CS_ANY;
	for (uint32_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		bool digit = c >= '0' && c <= '9';
		switch (cs) {
		case CS_NAME:
			if (!alpha && !digit && c != '.' && c != '_' && c != '-')
				return false;
			break;
		case CS_LABEL:
			if (c < 0x20 || c == 0x7f)
				return false;
			break;
		case CS_ANY:
			if (c == 0)
				return false;
			break;
		case CS_ENV:
			if (!alpha && c != '_' && !(digit && i > 0))
				return false;
			break;
		}
	}
	return true;
}

static const char *charset_text(enum charset cs)
{
	switch (cs) {
	case CS_NAME: return "letters, digits, '.', '_' or '-'";
	case CS_LABEL: return "printable text";
	case CS_ENV: return "a shell variable name ([A-Za-z_][A-Za-z0-9_]*)";
	case CS_ANY: break;
	}
	return "text without NUL bytes";
}

/* Copy n bytes into the arena; *out refers to them. */
static int arena_put(struct dec *d, const char *p, uint32_t n, cn_jstr *out)
{
	cn_jobspec *s = d->s;
	if (n == 0) {
		*out = (cn_jstr){0, 0};
		return 0;
	}
	if ((size_t)s->text_len + n + 1 > sizeof s->text)
		return fail(d, CN_ENOSPACE, "the spec's text exceeds %d bytes", CN_JOB_TEXT_MAX);
	memcpy(s->text + s->text_len, p, n);
	s->text[s->text_len + n] = '\0';
	*out = (cn_jstr){s->text_len, (uint16_t)n};
	s->text_len = (uint16_t)(s->text_len + n + 1);
	return 0;
}

static int read_text(struct dec *d, cn_jstr *out, uint32_t max, enum charset cs)
{
	const char *p;
	uint32_t n;
	int rc = cn_mp_read_str(&d->r, &p, &n, max);
	if (rc) {
		char want[64];
		snprintf(want, sizeof want, "a string of at most %u bytes", max);
		return fail_mp(d, rc, want);
	}
	if (!text_ok(p, n, cs))
		return fail(d, CN_EINVAL, "must be %s%s", charset_text(cs),
			    n == 0 && cs != CS_ANY ? " (not empty)" : "");
	return arena_put(d, p, n, out);
}

static int read_uint(struct dec *d, uint32_t *out, uint32_t min, uint32_t max)
{
	int64_t v;
	int rc = cn_mp_read_i64(&d->r, &v);
	if (rc || v < min || v > max) {
		if (rc == 0)
			rc = CN_EINVAL;
		return fail(d, rc, "must be an integer from %u to %u", min, max);
	}
	*out = (uint32_t)v;
	return 0;
}

static int read_bool(struct dec *d, bool *out)
{
	int rc = cn_mp_read_bool(&d->r, out);
	return rc ? fail_mp(d, rc, "true or false") : 0;
}

/* A string that must be one of names[]; *out = its index. */
static int read_enum(struct dec *d, const char *const *names, size_t n, uint8_t *out)
{
	const char *p;
	uint32_t len;
	char list[128] = "";
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
		if (k > 0 && used + (size_t)k < sizeof list)
			used += (size_t)k;
	}
	int rc = cn_mp_read_str(&d->r, &p, &len, 64);
	if (rc) {
		char want[160];
		snprintf(want, sizeof want, "one of %s", list);
		return fail_mp(d, rc, want);
	}
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], p, len) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	return fail(d, CN_EINVAL, "must be one of %s", list);
}

static int read_array(struct dec *d, uint32_t *n, uint32_t min, uint32_t max)
{
	int rc = cn_mp_read_array(&d->r, n, max);
	if (rc) {
		char want[64];
		snprintf(want, sizeof want, "a list of at most %u elements", max);
		return fail_mp(d, rc, want);
	}
	if (*n < min)
		return fail(d, CN_EINVAL, "must have at least %u element%s", min, min == 1 ? "" : "s");
	return 0;
}

static int read_map(struct dec *d, uint32_t *n, uint32_t max)
{
	int rc = cn_mp_read_map(&d->r, n, max);
	if (rc) {
		char want[64];
		snprintf(want, sizeof want, "a map of at most %u entries", max);
		return fail_mp(d, rc, want);
	}
	return 0;
}

/* Read the next key of a map whose known keys are keys[0..n). On 0, *which
 * is the key's index, or -1 for an unknown key already skipped (with its
 * value). The key is pushed on the path; the caller pops *old. */
static int next_key(struct dec *d, const char *const *keys, int n, uint32_t *seen, int *which,
		    size_t *old)
{
	const char *p;
	uint32_t len;
	int rc = cn_mp_read_str(&d->r, &p, &len, 64);
	if (rc)
		return fail_mp(d, rc, "a map with string keys of at most 64 bytes");
	*old = path_push_key(d, p, len);
	for (int i = 0; i < n; i++) {
		if (strlen(keys[i]) != len || memcmp(keys[i], p, len) != 0)
			continue;
		if (*seen & (1u << i))
			return fail(d, CN_EINVAL, "appears twice");
		*seen |= 1u << i;
		*which = i;
		return 0;
	}
	if (d->strict)
		return fail(d, CN_EINVAL, "unknown field");
	d->unknown++;
	*which = -1;
	rc = cn_mp_skip(&d->r);
	return rc ? fail_mp(d, rc, "a valid value") : 0;
}

/* ---- spec parts ---------------------------------------------------------- */

static int read_args(struct dec *d, uint8_t *n_out, cn_jstr *args)
{
	uint32_t n;
	int rc = read_array(d, &n, 1, CN_JOB_ARGS_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		size_t old = path_push_index(d, i);
		rc = read_text(d, &args[i], CN_JOB_ARG_MAX, i == 0 ? CS_LABEL : CS_ANY);
		path_pop(d, old);
	}
	*n_out = rc ? 0 : (uint8_t)n;
	return rc;
}

static int cmp_key(const cn_jobspec *s, cn_jstr a, cn_jstr b)
{
	return strcmp(cn_jobspec_str(s, a), cn_jobspec_str(s, b));
}

static int read_env(struct dec *d)
{
	cn_jobspec *s = d->s;
	uint32_t n;
	int rc = read_map(d, &n, CN_JOB_ENV_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		cn_job_env e;
		rc = read_text(d, &e.key, CN_JOB_ENV_KEY_MAX, CS_ENV);
		if (rc)
			return rc;
		size_t old = path_push_key(d, cn_jobspec_str(s, e.key), e.key.len);
		rc = read_text(d, &e.value, CN_JOB_ARG_MAX, CS_ANY);
		/* insertion keeps env sorted; at most 64 entries */
		uint32_t j = s->n_env;
		while (rc == 0 && j > 0 && cmp_key(s, s->env[j - 1].key, e.key) > 0)
			j--;
		if (rc == 0 && j > 0 && cmp_key(s, s->env[j - 1].key, e.key) == 0)
			rc = fail(d, CN_EINVAL, "appears twice");
		if (rc == 0) {
			memmove(&s->env[j + 1], &s->env[j], (s->n_env - j) * sizeof s->env[0]);
			s->env[j] = e;
			s->n_env++;
		}
		path_pop(d, old);
	}
	return rc;
}

static int read_accels(struct dec *d)
{
	cn_jobspec *s = d->s;
	uint32_t n;
	int rc = read_map(d, &n, CN_JOB_ACCEL_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		cn_job_accel a;
		rc = read_text(d, &a.kind, CN_ACCEL_KIND_MAX, CS_LABEL);
		if (rc)
			return rc;
		size_t old = path_push_key(d, cn_jobspec_str(s, a.kind), a.kind.len);
		rc = read_uint(d, &a.count, 1, 1024);
		uint32_t j = s->n_accel;
		while (rc == 0 && j > 0 && cmp_key(s, s->accel[j - 1].kind, a.kind) > 0)
			j--;
		if (rc == 0 && j > 0 && cmp_key(s, s->accel[j - 1].kind, a.kind) == 0)
			rc = fail(d, CN_EINVAL, "appears twice");
		if (rc == 0) {
			memmove(&s->accel[j + 1], &s->accel[j], (s->n_accel - j) * sizeof s->accel[0]);
			s->accel[j] = a;
			s->n_accel++;
		}
		path_pop(d, old);
	}
	return rc;
}

static int read_resources(struct dec *d)
{
	static const char *const keys[] = {"cpu_millis", "memory_mb", "accelerators"};
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0;
	int rc = read_map(d, &n, 16);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, keys, 3, &seen, &k, &old);
		if (rc == 0 && k == 0)
			rc = read_uint(d, &s->cpu_millis, 0, 1024 * 1000);
		else if (rc == 0 && k == 1)
			rc = read_uint(d, &s->memory_mb, 0, 1024 * 1024 * 16);
		else if (rc == 0 && k == 2)
			rc = read_accels(d);
		if (rc == 0)
			path_pop(d, old);
	}
	return rc;
}

static const char *const op_names[] = {"=", "!=", "in", "not in"};

static int read_constraint(struct dec *d, cn_job_constraint *c)
{
	static const char *const keys[] = {"label", "op", "value", "values", "accelerator"};
	uint32_t n, seen = 0;
	int rc = read_map(d, &n, 8);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		uint8_t op = 0;
		uint32_t nv;
		rc = next_key(d, keys, 5, &seen, &k, &old);
		if (rc)
			break;
		switch (k) {
		case 0:
			rc = read_text(d, &c->label, CN_LABEL_KEY_MAX, CS_LABEL);
			break;
		case 1:
			rc = read_enum(d, op_names, 4, &op);
			c->op = (uint8_t)(op + CN_JOB_OP_EQ);
			break;
		case 2:
			rc = read_text(d, &c->values[0], CN_LABEL_VALUE_MAX, CS_LABEL);
			break;
		case 3:
			rc = read_array(d, &nv, 1, CN_JOB_VALUES_MAX);
			for (uint32_t j = 0; rc == 0 && j < nv; j++) {
				size_t o2 = path_push_index(d, j);
				rc = read_text(d, &c->values[j], CN_LABEL_VALUE_MAX, CS_LABEL);
				path_pop(d, o2);
			}
			if (rc == 0)
				c->n_values = (uint8_t)nv;
			break;
		case 4:
			rc = read_text(d, &c->label, CN_ACCEL_KIND_MAX, CS_LABEL);
			break;
		default:
			break;
		}
		if (rc == 0)
			path_pop(d, old);
	}
	if (rc)
		return rc;
	/* The shape: {label, op, value | values} or {accelerator}. */
	bool has_label = seen & 1, has_op = seen & 2, has_value = seen & 4, has_values = seen & 8;
	if (seen & 16) {
		if (seen != 16)
			return fail(d, CN_EINVAL, "an accelerator constraint takes no other field");
		c->op = CN_JOB_OP_ACCEL;
		c->n_values = 0;
		return 0;
	}
	if (!has_label)
		return fail(d, CN_EMISSING, "needs label (or accelerator)");
	if (!has_op)
		return fail(d, CN_EMISSING, "needs op (one of =, !=, in, not in)");
	bool single = c->op == CN_JOB_OP_EQ || c->op == CN_JOB_OP_NE;
	if (single && (!has_value || has_values))
		return fail(d, CN_EINVAL, "op %s takes value, not values", cn_job_op_name(c->op));
	if (!single && (!has_values || has_value))
		return fail(d, CN_EINVAL, "op %s takes values (a list), not value",
			    cn_job_op_name(c->op));
	if (single)
		c->n_values = 1;
	return 0;
}

static int read_constraints(struct dec *d)
{
	cn_jobspec *s = d->s;
	uint32_t n;
	int rc = read_array(d, &n, 0, CN_JOB_CONSTRAINTS_MAX);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		size_t old = path_push_index(d, i);
		rc = read_constraint(d, &s->constraints[i]);
		if (rc == 0)
			path_pop(d, old);
	}
	if (rc == 0)
		s->n_constraints = (uint8_t)n;
	return rc;
}

static int read_near(struct dec *d)
{
	static const char *const keys[] = {"label", "value"};
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0;
	int rc = read_map(d, &n, 4);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, keys, 2, &seen, &k, &old);
		if (rc == 0 && k == 0)
			rc = read_text(d, &s->near_label, CN_LABEL_KEY_MAX, CS_LABEL);
		else if (rc == 0 && k == 1)
			rc = read_text(d, &s->near_value, CN_LABEL_VALUE_MAX, CS_LABEL);
		if (rc == 0)
			path_pop(d, old);
	}
	if (rc == 0 && seen != 3)
		return fail(d, CN_EMISSING, "needs label and value");
	s->has_near = rc == 0;
	return rc;
}

static int read_restart(struct dec *d)
{
	static const char *const keys[] = {"policy", "backoff_ms"};
	static const char *const policies[] = {"on-failure", "always", "never"};
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0, nb;
	int rc = read_map(d, &n, 4);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, keys, 2, &seen, &k, &old);
		if (rc == 0 && k == 0) {
			rc = read_enum(d, policies, 3, &s->restart_policy);
		} else if (rc == 0 && k == 1) {
			rc = read_array(d, &nb, 2, 2);
			if (rc == 0 && nb != 2)
				rc = fail(d, CN_EINVAL, "must be [min, max]");
			if (rc == 0)
				rc = read_uint(d, &s->backoff_min_ms, 1, CN_JOB_MS_MAX);
			if (rc == 0)
				rc = read_uint(d, &s->backoff_max_ms, 1, CN_JOB_MS_MAX);
			if (rc == 0 && s->backoff_min_ms > s->backoff_max_ms)
				rc = fail(d, CN_EINVAL, "min must not exceed max");
		}
		if (rc == 0)
			path_pop(d, old);
	}
	return rc;
}

static int read_health(struct dec *d)
{
	static const char *const keys[] = {"exec", "tcp", "http", "path", "interval_ms",
					   "timeout_ms"};
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0, port = 0;
	int rc = read_map(d, &n, 8);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, keys, 6, &seen, &k, &old);
		if (rc)
			break;
		switch (k) {
		case 0:
			rc = read_args(d, &s->n_health_exec, s->health_exec);
			s->health_kind = CN_JOB_HEALTH_EXEC;
			break;
		case 1:
		case 2:
			rc = read_uint(d, &port, 1, CN_JOB_PORT_MAX);
			s->health_port = (uint16_t)port;
			s->health_kind = k == 1 ? CN_JOB_HEALTH_TCP : CN_JOB_HEALTH_HTTP;
			break;
		case 3:
			rc = read_text(d, &s->health_path, 1024, CS_LABEL);
			if (rc == 0 && cn_jobspec_str(s, s->health_path)[0] != '/')
				rc = fail(d, CN_EINVAL, "must start with '/'");
			break;
		case 4:
			rc = read_uint(d, &s->health_interval_ms, 100, CN_JOB_MS_MAX);
			break;
		case 5:
			rc = read_uint(d, &s->health_timeout_ms, 10, CN_JOB_MS_MAX);
			break;
		default:
			break;
		}
		if (rc == 0)
			path_pop(d, old);
	}
	if (rc)
		return rc;
	uint32_t kinds = seen & 7;
	if (kinds == 0 || (kinds & (kinds - 1)) != 0)
		return fail(d, CN_EINVAL, "needs exactly one of exec, tcp, http");
	if ((seen & 8) && s->health_kind != CN_JOB_HEALTH_HTTP)
		return fail(d, CN_EINVAL, "path goes with http only");
	if (s->health_kind == CN_JOB_HEALTH_HTTP && !(seen & 8)) {
		cn_jstr slash;
		rc = arena_put(d, "/", 1, &slash);
		s->health_path = slash;
	}
	return rc;
}

static int read_update(struct dec *d)
{
	static const char *const keys[] = {"max_parallel", "canary", "healthy_for_ms",
					   "auto_revert"};
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0;
	int rc = read_map(d, &n, 8);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, keys, 4, &seen, &k, &old);
		if (rc == 0 && k == 0)
			rc = read_uint(d, &s->update_max_parallel, 1, CN_JOB_PARALLEL_MAX);
		else if (rc == 0 && k == 1)
			rc = read_uint(d, &s->update_canary, 0, CN_JOB_PARALLEL_MAX);
		else if (rc == 0 && k == 2)
			rc = read_uint(d, &s->update_healthy_for_ms, 0, CN_JOB_MS_MAX);
		else if (rc == 0 && k == 3)
			rc = read_bool(d, &s->update_auto_revert);
		if (rc == 0)
			path_pop(d, old);
	}
	return rc;
}

enum {
	F_TENANT, F_PRIORITY, F_REPLICAS, F_PER_NODE, F_COMMAND, F_ENV, F_WORKDIR,
	F_RESOURCES, F_CONSTRAINTS, F_NEAR, F_ENERGY, F_SPREAD, F_RESTART, F_HEALTH,
	F_UPDATE, F_PARTITION, F_COUNT_
};
static const char *const spec_keys[F_COUNT_] = {
	"tenant", "priority", "replicas", "per_node", "command", "env", "workdir",
	"resources", "constraints", "near", "energy", "spread", "restart", "health",
	"update", "partition",
};
static const char *const energy_names[] = {"any", "prefer-mains", "prefer-low-cost"};
static const char *const partition_names[] = {"keep_running", "majority_only"};

static int read_spec_field(struct dec *d, int k)
{
	cn_jobspec *s = d->s;
	uint32_t v = 0;
	int rc;
	switch (k) {
	case F_TENANT: return read_text(d, &s->tenant, CN_JOB_TENANT_MAX, CS_NAME);
	case F_PRIORITY:
		rc = read_uint(d, &v, 0, CN_JOB_PRIORITY_MAX);
		s->priority = (uint16_t)v;
		return rc;
	case F_REPLICAS: return read_uint(d, &s->replicas, 0, CN_JOB_REPLICAS_MAX);
	case F_PER_NODE: return read_bool(d, &s->per_node);
	case F_COMMAND: return read_args(d, &s->n_command, s->command);
	case F_ENV: return read_env(d);
	case F_WORKDIR:
		rc = read_text(d, &s->workdir, CN_JOB_ARG_MAX, CS_LABEL);
		if (rc == 0 && cn_jobspec_str(s, s->workdir)[0] != '/')
			rc = fail(d, CN_EINVAL, "must be an absolute path");
		return rc;
	case F_RESOURCES: return read_resources(d);
	case F_CONSTRAINTS: return read_constraints(d);
	case F_NEAR: return read_near(d);
	case F_ENERGY: return read_enum(d, energy_names, 3, &s->energy);
	case F_SPREAD: return read_text(d, &s->spread, CN_LABEL_KEY_MAX, CS_LABEL);
	case F_RESTART: return read_restart(d);
	case F_HEALTH: return read_health(d);
	case F_UPDATE: return read_update(d);
	case F_PARTITION: return read_enum(d, partition_names, 2, &s->partition);
	default: return 0; /* unknown, already skipped */
	}
}

static int read_spec(struct dec *d)
{
	cn_jobspec *s = d->s;
	uint32_t n, seen = 0;
	static_assert(F_COUNT_ <= 32, "seen is a 32-bit mask");
	int rc = read_map(d, &n, 64);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(d, spec_keys, F_COUNT_, &seen, &k, &old);
		if (rc == 0)
			rc = read_spec_field(d, k);
		if (rc == 0)
			path_pop(d, old);
	}
	if (rc)
		return rc;
	bool has_replicas = seen & (1u << F_REPLICAS);
	if (s->per_node && has_replicas)
		return fail(d, CN_EINVAL, "replicas and per_node: true exclude each other");
	if (!s->per_node && !has_replicas)
		return fail(d, CN_EMISSING, "needs replicas: N or per_node: true");
	if (!(seen & (1u << F_COMMAND)))
		return fail(d, CN_EMISSING, "needs command");
	if (!(seen & (1u << F_TENANT)))
		rc = arena_put(d, "default", 7, &s->tenant);
	return rc;
}

static void set_defaults(cn_jobspec *s)
{
	memset(s, 0, sizeof *s);
	s->text_len = 1; /* text[0] = NUL: the empty string */
	s->priority = 50;
	s->restart_policy = CN_JOB_RESTART_ON_FAILURE;
	s->backoff_min_ms = 1000;
	s->backoff_max_ms = 60000;
	s->health_interval_ms = 10000;
	s->health_timeout_ms = 2000;
	s->update_max_parallel = 1;
	s->update_healthy_for_ms = 10000;
}

int cn_jobspec_decode(const uint8_t *buf, size_t len, bool strict, cn_jobspec *out,
		      uint32_t *unknown, cn_jobspec_err *err)
{
	static const char *const keys[] = {"kind", "name", "spec"};
	struct dec d = {.s = out, .strict = strict, .err = err};
	assert(out != NULL && (buf != NULL || len == 0));
	if (err)
		memset(err, 0, sizeof *err);
	set_defaults(out);
	cn_mp_reader_init(&d.r, buf, len);
	uint32_t n, seen = 0;
	int rc = read_map(&d, &n, 16);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		int k = -1;
		size_t old = 0;
		rc = next_key(&d, keys, 3, &seen, &k, &old);
		if (rc == 0 && k == 0) {
			uint8_t kind;
			static const char *const kinds[] = {"job"};
			rc = read_enum(&d, kinds, 1, &kind);
		} else if (rc == 0 && k == 1) {
			rc = read_text(&d, &out->name, CN_JOB_NAME_MAX, CS_NAME);
		} else if (rc == 0 && k == 2) {
			rc = read_spec(&d);
		}
		if (rc == 0)
			path_pop(&d, old);
	}
	if (rc == 0 && seen != 7)
		rc = fail(&d, CN_EMISSING, "needs %s", !(seen & 1) ? "kind: job"
					   : !(seen & 2) ? "name" : "spec");
	if (rc == 0 && cn_mp_remaining(&d.r) != 0)
		rc = fail(&d, CN_ETRAILING, "bytes after the document");
	if (unknown)
		*unknown = d.unknown;
	if (rc) {
		set_defaults(out);
		if (err && err->msg[0] == '\0')
			fail(&d, rc, "%s", cn_strerror(rc));
	}
	return rc;
}

/* ---- encoder --------------------------------------------------------------- */

static void put_js(cn_mp_writer *w, const cn_jobspec *s, cn_jstr r)
{
	assert((size_t)r.off + r.len < sizeof s->text && (r.len == 0 || r.off + r.len < s->text_len));
	cn_mp_put_str(w, s->text + r.off, r.len);
}

static void put_args(cn_mp_writer *w, const cn_jobspec *s, uint8_t n, const cn_jstr *a)
{
	cn_mp_put_array(w, n);
	for (unsigned i = 0; i < n; i++)
		put_js(w, s, a[i]);
}

static void put_constraint(cn_mp_writer *w, const cn_jobspec *s, const cn_job_constraint *c)
{
	if (c->op == CN_JOB_OP_ACCEL) {
		cn_mp_put_map(w, 1);
		cn_mp_put_cstr(w, "accelerator");
		put_js(w, s, c->label);
		return;
	}
	assert(c->op >= CN_JOB_OP_EQ && c->op <= CN_JOB_OP_NOT_IN);
	cn_mp_put_map(w, 3);
	cn_mp_put_cstr(w, "label");
	put_js(w, s, c->label);
	cn_mp_put_cstr(w, "op");
	cn_mp_put_cstr(w, op_names[c->op - CN_JOB_OP_EQ]);
	if (c->op == CN_JOB_OP_EQ || c->op == CN_JOB_OP_NE) {
		assert(c->n_values == 1);
		cn_mp_put_cstr(w, "value");
		put_js(w, s, c->values[0]);
	} else {
		assert(c->n_values >= 1 && c->n_values <= CN_JOB_VALUES_MAX);
		cn_mp_put_cstr(w, "values");
		put_args(w, s, c->n_values, c->values);
	}
}

static void put_health(cn_mp_writer *w, const cn_jobspec *s)
{
	bool http = s->health_kind == CN_JOB_HEALTH_HTTP;
	cn_mp_put_map(w, http ? 4 : 3);
	switch (s->health_kind) {
	case CN_JOB_HEALTH_EXEC:
		cn_mp_put_cstr(w, "exec");
		put_args(w, s, s->n_health_exec, s->health_exec);
		break;
	case CN_JOB_HEALTH_TCP:
		cn_mp_put_cstr(w, "tcp");
		cn_mp_put_uint(w, s->health_port);
		break;
	default:
		assert(http);
		cn_mp_put_cstr(w, "http");
		cn_mp_put_uint(w, s->health_port);
		cn_mp_put_cstr(w, "path");
		put_js(w, s, s->health_path);
		break;
	}
	cn_mp_put_cstr(w, "interval_ms");
	cn_mp_put_uint(w, s->health_interval_ms);
	cn_mp_put_cstr(w, "timeout_ms");
	cn_mp_put_uint(w, s->health_timeout_ms);
}

static void put_spec(cn_mp_writer *w, const cn_jobspec *s)
{
	uint32_t n = 11 + (s->workdir.len > 0) + s->has_near + (s->spread.len > 0) +
		     (s->health_kind != CN_JOB_HEALTH_NONE);
	cn_mp_put_map(w, n);
	cn_mp_put_cstr(w, "tenant");
	put_js(w, s, s->tenant);
	cn_mp_put_cstr(w, "priority");
	cn_mp_put_uint(w, s->priority);
	if (s->per_node) {
		cn_mp_put_cstr(w, "per_node");
		cn_mp_put_bool(w, true);
	} else {
		cn_mp_put_cstr(w, "replicas");
		cn_mp_put_uint(w, s->replicas);
	}
	cn_mp_put_cstr(w, "command");
	put_args(w, s, s->n_command, s->command);
	cn_mp_put_cstr(w, "env");
	cn_mp_put_map(w, s->n_env);
	for (unsigned i = 0; i < s->n_env; i++) {
		put_js(w, s, s->env[i].key);
		put_js(w, s, s->env[i].value);
	}
	if (s->workdir.len > 0) {
		cn_mp_put_cstr(w, "workdir");
		put_js(w, s, s->workdir);
	}
	cn_mp_put_cstr(w, "resources");
	cn_mp_put_map(w, 3);
	cn_mp_put_cstr(w, "cpu_millis");
	cn_mp_put_uint(w, s->cpu_millis);
	cn_mp_put_cstr(w, "memory_mb");
	cn_mp_put_uint(w, s->memory_mb);
	cn_mp_put_cstr(w, "accelerators");
	cn_mp_put_map(w, s->n_accel);
	for (unsigned i = 0; i < s->n_accel; i++) {
		put_js(w, s, s->accel[i].kind);
		cn_mp_put_uint(w, s->accel[i].count);
	}
	cn_mp_put_cstr(w, "constraints");
	cn_mp_put_array(w, s->n_constraints);
	for (unsigned i = 0; i < s->n_constraints; i++)
		put_constraint(w, s, &s->constraints[i]);
	if (s->has_near) {
		cn_mp_put_cstr(w, "near");
		cn_mp_put_map(w, 2);
		cn_mp_put_cstr(w, "label");
		put_js(w, s, s->near_label);
		cn_mp_put_cstr(w, "value");
		put_js(w, s, s->near_value);
	}
	cn_mp_put_cstr(w, "energy");
	cn_mp_put_cstr(w, cn_job_energy_name(s->energy));
	if (s->spread.len > 0) {
		cn_mp_put_cstr(w, "spread");
		put_js(w, s, s->spread);
	}
	cn_mp_put_cstr(w, "restart");
	cn_mp_put_map(w, 2);
	cn_mp_put_cstr(w, "policy");
	cn_mp_put_cstr(w, cn_job_restart_name(s->restart_policy));
	cn_mp_put_cstr(w, "backoff_ms");
	cn_mp_put_array(w, 2);
	cn_mp_put_uint(w, s->backoff_min_ms);
	cn_mp_put_uint(w, s->backoff_max_ms);
	if (s->health_kind != CN_JOB_HEALTH_NONE) {
		cn_mp_put_cstr(w, "health");
		put_health(w, s);
	}
	cn_mp_put_cstr(w, "update");
	cn_mp_put_map(w, 4);
	cn_mp_put_cstr(w, "max_parallel");
	cn_mp_put_uint(w, s->update_max_parallel);
	cn_mp_put_cstr(w, "canary");
	cn_mp_put_uint(w, s->update_canary);
	cn_mp_put_cstr(w, "healthy_for_ms");
	cn_mp_put_uint(w, s->update_healthy_for_ms);
	cn_mp_put_cstr(w, "auto_revert");
	cn_mp_put_bool(w, s->update_auto_revert);
	cn_mp_put_cstr(w, "partition");
	cn_mp_put_cstr(w, cn_job_partition_name(s->partition));
}

int cn_jobspec_encode(const cn_jobspec *s, uint8_t *buf, size_t cap, size_t *len)
{
	assert(s->n_command >= 1 && s->n_command <= CN_JOB_ARGS_MAX);
	assert(!s->per_node || s->replicas == 0);
	assert(s->backoff_min_ms <= s->backoff_max_ms);
	assert((s->health_kind == CN_JOB_HEALTH_EXEC) == (s->n_health_exec > 0));
	assert(s->text_len >= 1 && s->text_len <= sizeof s->text && s->text[0] == '\0');
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, 3);
	cn_mp_put_cstr(&w, "kind");
	cn_mp_put_cstr(&w, "job");
	cn_mp_put_cstr(&w, "name");
	put_js(&w, s, s->name);
	cn_mp_put_cstr(&w, "spec");
	put_spec(&w, s);
	return cn_mp_writer_end(&w, len);
}

void cn_jobspec_err_format(const cn_jobspec_err *e, char *buf, size_t cap)
{
	assert(cap >= 1);
	if (e->path[0])
		snprintf(buf, cap, "%s: %s", e->path, e->msg);
	else
		snprintf(buf, cap, "%s", e->msg);
}

const char *cn_job_op_name(uint8_t op)
{
	if (op >= CN_JOB_OP_EQ && op <= CN_JOB_OP_NOT_IN)
		return op_names[op - CN_JOB_OP_EQ];
	return op == CN_JOB_OP_ACCEL ? "accelerator" : "?";
}

const char *cn_job_energy_name(uint8_t energy)
{
	return energy < 3 ? energy_names[energy] : "?";
}

const char *cn_job_restart_name(uint8_t policy)
{
	static const char *const names[] = {"on-failure", "always", "never"};
	return policy < 3 ? names[policy] : "?";
}

const char *cn_job_partition_name(uint8_t partition)
{
	return partition < 2 ? partition_names[partition] : "?";
}
