/* Job specifications: the `job` policy document as a C struct, its
 * canonical msgpack form, and a bounded decoder whose errors name the field.
 *
 * A job document is the msgpack map (string keys, the YAML names exactly):
 *
 *   {kind: "job", name: "thermal-inference", spec: {tenant, priority,
 *    replicas | per_node, command, env, workdir, resources, constraints,
 *    near, energy, spread, restart, health, update, partition}}
 *
 * docs/placement.md documents every field, its default and its limit. The
 * YAML an operator writes is turned into this map outside the core
 * (cli/yaml2mp.h); stored policy documents hold the msgpack bytes.
 *
 * Storage: every string of a spec lives in one arena inside the struct
 * (`text`) and fields hold {offset, length} references, so a spec is a
 * plain value: it can be copied with memcpy, holds no pointer and no
 * reference to the input, and two equal specs decoded from the canonical
 * encoding are equal byte for byte (the arena is filled in field order and
 * zeroed beforehand). cn_jobspec_str() turns a reference into a C string.
 *
 * Canonical encoding (cn_jobspec_encode): keys in the order of the struct
 * below, defaults written explicitly, env and accelerators sorted by key,
 * absent optional fields (near, spread, workdir, health) omitted. Decoding
 * the canonical encoding gives back the same struct; encoding that struct
 * gives the same bytes (the fuzz target checks both).
 *
 * Forward compatibility: with strict == false, unknown keys are skipped and
 * counted (stored documents written by a newer operator tool); with strict
 * == true (what an operator just typed) they are an error naming the key. */
#ifndef CN_CORE_JOBSPEC_H
#define CN_CORE_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/mp.h"
#include "wire/proto.h"

enum {
	CN_JOB_NAME_MAX = CN_POLICY_NAME_MAX, /* document name bytes */
	CN_JOB_TENANT_MAX = 64,
	CN_JOB_ARGS_MAX = 64,          /* command elements; health exec elements */
	CN_JOB_ARG_MAX = 4096,         /* bytes of one argument, env value, path */
	CN_JOB_ENV_MAX = 64,
	CN_JOB_ENV_KEY_MAX = 128,
	CN_JOB_CONSTRAINTS_MAX = 16,
	CN_JOB_VALUES_MAX = 16,        /* values of one `in` / `not in` */
	CN_JOB_ACCEL_MAX = CN_ACCEL_MAX,
	CN_JOB_TEXT_MAX = 16384,       /* arena: all strings of one spec, NULs included */
	CN_JOB_DOC_MAX = 65536,        /* encoded document bytes (encoder's need) */
	CN_JOB_PRIORITY_MAX = 1000,
	CN_JOB_REPLICAS_MAX = 10000,
	CN_JOB_PORT_MAX = 65535,
	CN_JOB_MS_MAX = 86400000,      /* one day: any interval or backoff */
	CN_JOB_PARALLEL_MAX = 10000,   /* update.max_parallel, update.canary */
	CN_JOB_ERR_PATH_MAX = 96,
	CN_JOB_ERR_MSG_MAX = 160,
};
static_assert(CN_JOB_TEXT_MAX <= UINT16_MAX, "arena offsets are 16-bit");
static_assert(CN_JOB_ARG_MAX < CN_JOB_TEXT_MAX, "one argument fits the arena");

/* A string in the spec's arena: text + off, len bytes, NUL-terminated.
 * {0, 0} is the empty string (text[0] is always NUL). */
typedef struct cn_jstr {
	uint16_t off, len;
} cn_jstr;

enum cn_job_op {
	CN_JOB_OP_EQ = 1,     /* label = value */
	CN_JOB_OP_NE = 2,     /* label != value (true when the label is absent) */
	CN_JOB_OP_IN = 3,     /* label in values */
	CN_JOB_OP_NOT_IN = 4, /* label not in values (true when absent) */
	CN_JOB_OP_ACCEL = 5,  /* {accelerator: KIND}: the member has at least one */
};

enum cn_job_energy {
	CN_JOB_ENERGY_ANY = 0,
	CN_JOB_ENERGY_PREFER_MAINS = 1,    /* mains over unknown over battery */
	CN_JOB_ENERGY_PREFER_LOW_COST = 2, /* as prefer-mains, and label energy-cost=low */
};

enum cn_job_restart {
	CN_JOB_RESTART_ON_FAILURE = 0,
	CN_JOB_RESTART_ALWAYS = 1,
	CN_JOB_RESTART_NEVER = 2,
};

enum cn_job_health {
	CN_JOB_HEALTH_NONE = 0,
	CN_JOB_HEALTH_EXEC = 1,
	CN_JOB_HEALTH_TCP = 2,
	CN_JOB_HEALTH_HTTP = 3,
};

enum cn_job_partition {
	CN_JOB_PARTITION_KEEP_RUNNING = 0,
	CN_JOB_PARTITION_MAJORITY_ONLY = 1,
};

typedef struct cn_job_constraint {
	uint8_t op;           /* enum cn_job_op */
	uint8_t n_values;     /* 1 for = and !=; 1..CN_JOB_VALUES_MAX for in/not in; 0 for accelerator */
	cn_jstr label;        /* label key ("arch" and "os" read the member's arch/os);
			       * the accelerator kind for CN_JOB_OP_ACCEL */
	cn_jstr values[CN_JOB_VALUES_MAX];
} cn_job_constraint;

typedef struct cn_job_env {
	cn_jstr key, value;
} cn_job_env;

typedef struct cn_job_accel {
	cn_jstr kind;
	uint32_t count;       /* >= 1 */
} cn_job_accel;

typedef struct cn_jobspec {
	cn_jstr name;                 /* document name */
	cn_jstr tenant;               /* default "default" */
	uint16_t priority;            /* 0..CN_JOB_PRIORITY_MAX, default 50 */
	bool per_node;                /* one replica on every eligible member */
	uint32_t replicas;            /* 0..CN_JOB_REPLICAS_MAX; 0 when per_node */
	uint8_t n_command;            /* >= 1 */
	cn_jstr command[CN_JOB_ARGS_MAX];
	uint8_t n_env;                /* sorted by key, keys unique */
	cn_job_env env[CN_JOB_ENV_MAX];
	cn_jstr workdir;              /* empty: the runtime's choice */
	/* resources */
	uint32_t cpu_millis;
	uint32_t memory_mb;
	uint8_t n_accel;              /* sorted by kind, kinds unique */
	cn_job_accel accel[CN_JOB_ACCEL_MAX];
	/* placement */
	uint8_t n_constraints;
	cn_job_constraint constraints[CN_JOB_CONSTRAINTS_MAX];
	bool has_near;
	cn_jstr near_label, near_value;
	uint8_t energy;               /* enum cn_job_energy, default any */
	cn_jstr spread;               /* label key; empty: no spread */
	/* runtime */
	uint8_t restart_policy;       /* enum cn_job_restart, default on-failure */
	uint32_t backoff_min_ms, backoff_max_ms; /* default 1000, 60000 */
	uint8_t health_kind;          /* enum cn_job_health */
	uint16_t health_port;         /* tcp, http */
	cn_jstr health_path;          /* http, default "/" */
	uint8_t n_health_exec;
	cn_jstr health_exec[CN_JOB_ARGS_MAX];
	uint32_t health_interval_ms;  /* default 10000 */
	uint32_t health_timeout_ms;   /* default 2000 */
	/* update */
	uint32_t update_max_parallel; /* default 1 */
	uint32_t update_canary;       /* default 0 */
	uint32_t update_healthy_for_ms; /* default 10000 */
	bool update_auto_revert;      /* default false */
	uint8_t partition;            /* enum cn_job_partition */
	/* arena */
	uint16_t text_len;
	char text[CN_JOB_TEXT_MAX];
} cn_jobspec;

/* Where and why a decode failed: path like "spec.constraints[1].op" and a
 * message like "must be one of =, !=, in, not in". */
typedef struct cn_jobspec_err {
	char path[CN_JOB_ERR_PATH_MAX];
	char msg[CN_JOB_ERR_MSG_MAX];
} cn_jobspec_err;

/* The string a reference points at; valid as long as *s is. */
static inline const char *cn_jobspec_str(const cn_jobspec *s, cn_jstr r)
{
	return s->text + r.off;
}

/* Decode one job document (the whole map {kind, name, spec}) from buf.
 * Fills *out completely (zeroed first). strict: unknown keys are errors.
 * *unknown (may be NULL) counts unknown keys skipped when !strict.
 * err (may be NULL) receives the field path and the reason.
 * Returns 0, CN_EINVAL (a field has a wrong value; err says which),
 * CN_ETYPE, CN_ETRUNC, CN_ELIMIT, CN_EMISSING, CN_EDEPTH, CN_ETRAILING,
 * CN_ENOSPACE (strings do not fit the arena). Never aborts on any input. */
int cn_jobspec_decode(const uint8_t *buf, size_t len, bool strict, cn_jobspec *out,
		      uint32_t *unknown, cn_jobspec_err *err);

/* Canonical encoding of the whole document. Returns 0 and *len, or
 * CN_ENOSPACE (cap too small; CN_JOB_DOC_MAX always suffices for a spec
 * that decoded). The spec must be valid (decoded, or built by hand to the
 * same rules; asserts on broken invariants). */
int cn_jobspec_encode(const cn_jobspec *s, uint8_t *buf, size_t cap, size_t *len);

/* "path: message" into buf (cap >= 1). */
void cn_jobspec_err_format(const cn_jobspec_err *e, char *buf, size_t cap);

/* Names for logs and JSON. */
const char *cn_job_op_name(uint8_t op);
const char *cn_job_energy_name(uint8_t energy);
const char *cn_job_restart_name(uint8_t policy);
const char *cn_job_partition_name(uint8_t partition);

#endif
