/* Unit tests for core/jobspec and cli/yaml2mp: every example parses, the
 * issue's example decodes to the expected struct, canonical round trips,
 * and each malformed field gets an error naming file:line and the field. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/yaml2mp.h"
#include "core/jobspec.h"
#include "util/err.h"

static uint8_t mp[CN_JOB_DOC_MAX];
static cn_jobspec spec;

static const char *S(cn_jstr r)
{
	return cn_jobspec_str(&spec, r);
}

/* Parse YAML text as a job; returns the code, err filled. */
static int job(const char *yaml, char *err, size_t cap)
{
	size_t len;
	err[0] = '\0';
	return cn_yaml_jobspec(yaml, strlen(yaml), "t.yaml", &spec, mp, sizeof mp, &len, err, cap);
}

static const char *base_head = "kind: job\nname: j\nspec:\n";

/* A minimal valid job with extra spec lines appended. */
static int job_with(const char *extra, char *err, size_t cap)
{
	static char text[8192];
	snprintf(text, sizeof text, "%s  replicas: 1\n  command: [/bin/true]\n%s", base_head, extra);
	return job(text, err, cap);
}

START_TEST(examples_parse)
{
	DIR *d = opendir(CN_SOURCE_ROOT "/examples");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0)
			continue;
		char path[1024], err[CN_YAML_ERR_MAX];
		snprintf(path, sizeof path, "%s/examples/%s", CN_SOURCE_ROOT, de->d_name);
		size_t len;
		int rc = cn_yaml_jobspec_file(path, &spec, mp, sizeof mp, &len, err, sizeof err);
		ck_assert_msg(rc == 0, "%s: %s", de->d_name, err);
		/* the canonical bytes decode to a spec that encodes identically */
		cn_jobspec again;
		ck_assert_int_eq(cn_jobspec_decode(mp, len, true, &again, NULL, NULL), 0);
		uint8_t b2[CN_JOB_DOC_MAX];
		size_t l2;
		ck_assert_int_eq(cn_jobspec_encode(&again, b2, sizeof b2, &l2), 0);
		ck_assert_uint_eq(len, l2);
		ck_assert_mem_eq(mp, b2, len);
		n++;
	}
	closedir(d);
	ck_assert_int_ge(n, 4);
}
END_TEST

START_TEST(issue_example_fields)
{
	char err[CN_YAML_ERR_MAX];
	size_t len;
	int rc = cn_yaml_jobspec_file(CN_SOURCE_ROOT "/examples/thermal-inference.yaml", &spec, mp,
				      sizeof mp, &len, err, sizeof err);
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_str_eq(S(spec.name), "thermal-inference");
	ck_assert_str_eq(S(spec.tenant), "plant-7");
	ck_assert_uint_eq(spec.priority, 50);
	ck_assert_uint_eq(spec.replicas, 3);
	ck_assert(!spec.per_node);
	ck_assert_uint_eq(spec.n_command, 3);
	ck_assert_str_eq(S(spec.command[0]), "/usr/bin/infer");
	ck_assert_str_eq(S(spec.command[2]), "/opt/models/thermal");
	ck_assert_uint_eq(spec.n_env, 1);
	ck_assert_str_eq(S(spec.env[0].key), "LOG_LEVEL");
	ck_assert_str_eq(S(spec.env[0].value), "info");
	ck_assert_uint_eq(spec.cpu_millis, 500);
	ck_assert_uint_eq(spec.memory_mb, 256);
	ck_assert_uint_eq(spec.n_accel, 1);
	ck_assert_str_eq(S(spec.accel[0].kind), "gpu");
	ck_assert_uint_eq(spec.accel[0].count, 1);
	ck_assert_uint_eq(spec.n_constraints, 2);
	ck_assert_uint_eq(spec.constraints[0].op, CN_JOB_OP_IN);
	ck_assert_str_eq(S(spec.constraints[0].label), "arch");
	ck_assert_uint_eq(spec.constraints[0].n_values, 2);
	ck_assert_str_eq(S(spec.constraints[0].values[1]), "x86_64");
	ck_assert_uint_eq(spec.constraints[1].op, CN_JOB_OP_EQ);
	ck_assert_str_eq(S(spec.constraints[1].values[0]), "eu");
	ck_assert(spec.has_near);
	ck_assert_str_eq(S(spec.near_label), "site");
	ck_assert_str_eq(S(spec.near_value), "plant-7");
	ck_assert_uint_eq(spec.energy, CN_JOB_ENERGY_PREFER_MAINS);
	ck_assert_str_eq(S(spec.spread), "zone");
	ck_assert_uint_eq(spec.restart_policy, CN_JOB_RESTART_ON_FAILURE);
	ck_assert_uint_eq(spec.backoff_min_ms, 1000);
	ck_assert_uint_eq(spec.backoff_max_ms, 60000);
	ck_assert_uint_eq(spec.health_kind, CN_JOB_HEALTH_TCP);
	ck_assert_uint_eq(spec.health_port, 8080);
	ck_assert_uint_eq(spec.health_interval_ms, 5000);
	ck_assert_uint_eq(spec.update_max_parallel, 1);
	ck_assert_uint_eq(spec.update_canary, 1);
	ck_assert_uint_eq(spec.update_healthy_for_ms, 10000);
	ck_assert(spec.update_auto_revert);
	ck_assert_uint_eq(spec.partition, CN_JOB_PARTITION_KEEP_RUNNING);
}
END_TEST

START_TEST(other_examples_fields)
{
	char err[CN_YAML_ERR_MAX];
	size_t len;
	ck_assert_int_eq(cn_yaml_jobspec_file(CN_SOURCE_ROOT "/examples/log-shipper.yaml", &spec, mp,
					      sizeof mp, &len, err, sizeof err), 0);
	ck_assert(spec.per_node);
	ck_assert_uint_eq(spec.replicas, 0);
	ck_assert_uint_eq(spec.constraints[1].op, CN_JOB_OP_NOT_IN);
	ck_assert_uint_eq(spec.health_kind, CN_JOB_HEALTH_EXEC);
	ck_assert_uint_eq(spec.n_health_exec, 3);
	ck_assert_str_eq(S(spec.env[1].key), "VECTOR_THREADS");
	ck_assert_str_eq(S(spec.env[1].value), "1");
	ck_assert_str_eq(S(spec.workdir), "/var/lib/vector");
	ck_assert_int_eq(cn_yaml_jobspec_file(CN_SOURCE_ROOT "/examples/line-controller.yaml", &spec,
					      mp, sizeof mp, &len, err, sizeof err), 0);
	ck_assert_uint_eq(spec.partition, CN_JOB_PARTITION_MAJORITY_ONLY);
	ck_assert_uint_eq(spec.health_kind, CN_JOB_HEALTH_HTTP);
	ck_assert_str_eq(S(spec.health_path), "/healthz");
	ck_assert_uint_eq(spec.constraints[2].op, CN_JOB_OP_NE);
	ck_assert_int_eq(cn_yaml_jobspec_file(CN_SOURCE_ROOT "/examples/eu-analytics.yaml", &spec,
					      mp, sizeof mp, &len, err, sizeof err), 0);
	ck_assert_uint_eq(spec.constraints[1].op, CN_JOB_OP_ACCEL);
	ck_assert_str_eq(S(spec.constraints[1].label), "npu");
	ck_assert_uint_eq(spec.energy, CN_JOB_ENERGY_PREFER_LOW_COST);
	ck_assert_str_eq(S(spec.health_path), "/"); /* default */
}
END_TEST

START_TEST(defaults)
{
	char err[CN_YAML_ERR_MAX];
	ck_assert_int_eq(job_with("", err, sizeof err), 0);
	ck_assert_str_eq(S(spec.tenant), "default");
	ck_assert_uint_eq(spec.priority, 50);
	ck_assert_uint_eq(spec.restart_policy, CN_JOB_RESTART_ON_FAILURE);
	ck_assert_uint_eq(spec.backoff_min_ms, 1000);
	ck_assert_uint_eq(spec.backoff_max_ms, 60000);
	ck_assert_uint_eq(spec.health_kind, CN_JOB_HEALTH_NONE);
	ck_assert_uint_eq(spec.update_max_parallel, 1);
	ck_assert_uint_eq(spec.partition, CN_JOB_PARTITION_KEEP_RUNNING);
	ck_assert_uint_eq(spec.energy, CN_JOB_ENERGY_ANY);
	ck_assert_uint_eq(spec.n_constraints, 0);
	ck_assert(!spec.has_near);
}
END_TEST

struct bad {
	const char *extra;
	const char *want; /* substring of the error */
};

START_TEST(errors_name_the_field)
{
	static const struct bad cases[] = {
		{"  constraints:\n    - {label: arch, op: in, values: [arm64]}\n"
		 "    - {label: region, op: like, value: eu}\n",
		 "t.yaml:8: spec.constraints[1].op: must be one of =, !=, in, not in"},
		{"  constraints:\n    - {label: region, op: in, value: eu}\n",
		 "t.yaml:7: spec.constraints[0]: op in takes values (a list), not value"},
		{"  constraints:\n    - {label: region, op: \"=\", values: [eu]}\n",
		 "spec.constraints[0]: op = takes value, not values"},
		{"  constraints:\n    - {op: \"=\", value: eu}\n", "spec.constraints[0]: needs label"},
		{"  constraints:\n    - {accelerator: gpu, op: \"=\"}\n",
		 "an accelerator constraint takes no other field"},
		{"  per_node: true\n", "replicas and per_node: true exclude each other"},
		{"  priority: 5000\n", "t.yaml:6: spec.priority: must be an integer from 0 to 1000"},
		{"  priority: high\n", "spec.priority: must be an integer from 0 to 1000"},
		{"  colour: blue\n", "t.yaml:6: spec.colour: unknown field"},
		{"  energy: solar\n", "spec.energy: must be one of any, prefer-mains, prefer-low-cost"},
		{"  restart: {policy: sometimes}\n", "spec.restart.policy: must be one of on-failure"},
		{"  restart: {backoff_ms: [5000, 10]}\n", "spec.restart.backoff_ms: min must not exceed max"},
		{"  restart: {backoff_ms: [5000]}\n", "spec.restart.backoff_ms: must have at least 2"},
		{"  health: {tcp: 80, http: 81}\n", "spec.health: needs exactly one of exec, tcp, http"},
		{"  health: {tcp: 70000}\n", "spec.health.tcp: must be an integer from 1 to 65535"},
		{"  health: {interval_ms: 1000}\n", "spec.health: needs exactly one of"},
		{"  health: {tcp: 80, path: /x}\n", "path goes with http only"},
		{"  update: {auto_revert: maybe}\n", "spec.update.auto_revert: must be true or false"},
		{"  partition: always\n", "spec.partition: must be one of keep_running, majority_only"},
		{"  env: {1BAD: x}\n", "spec.env: must be a shell variable name"},
		{"  resources: {cpu_millis: -1}\n", "spec.resources.cpu_millis: must be an integer"},
		{"  resources: {accelerators: {gpu: 0}}\n",
		 "spec.resources.accelerators.gpu: must be an integer from 1 to 1024"},
		{"  near: {label: site}\n", "spec.near: needs label and value"},
		{"  workdir: relative/dir\n", "spec.workdir: must be an absolute path"},
		{"  tenant: \"plant 7\"\n", "spec.tenant: must be letters, digits"},
		{"  spread: \"\"\n", "spec.spread: must be printable text (not empty)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[CN_YAML_ERR_MAX];
		int rc = job_with(cases[i].extra, err, sizeof err);
		ck_assert_msg(rc != 0, "case %zu accepted", i);
		ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: got '%s', want '%s'", i,
			      err, cases[i].want);
	}
}
END_TEST

START_TEST(document_level_errors)
{
	char err[CN_YAML_ERR_MAX];
	ck_assert_int_ne(job("kind: job\nname: j\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "needs spec"));
	ck_assert_int_ne(job("kind: policy\nname: j\nspec: {}\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "t.yaml:1: kind: must be one of job"));
	ck_assert_int_ne(job("kind: job\nname: \"a b\"\nspec: {replicas: 1, command: [x]}\n", err,
			     sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "t.yaml:2: name:"));
	ck_assert_int_ne(job("kind: job\nname: j\nspec: {replicas: 1}\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "spec: needs command"));
	ck_assert_int_ne(job("kind: job\nname: j\nspec: {command: [x]}\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "needs replicas: N or per_node: true"));
	/* YAML-level errors name file:line */
	ck_assert_int_eq(job("kind: job\nname: [unclosed\n", err, sizeof err), CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "t.yaml:"));
	ck_assert_ptr_nonnull(strstr(err, "not valid YAML"));
	ck_assert_int_ne(job("kind: job\nname: j\nname: k\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "t.yaml:"));
	ck_assert_int_eq(job("a: &x 1\nb: *x\n", err, sizeof err), CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "t.yaml:2: anchors and aliases are not supported"));
	ck_assert_int_ne(job("", err, sizeof err), 0);
}
END_TEST

START_TEST(strict_and_lenient)
{
	/* A stored document from a newer tool: unknown keys are skipped and
	 * counted when not strict, refused when strict. */
	char err[CN_YAML_ERR_MAX];
	cn_yaml *y;
	const char *text = "kind: job\nname: j\nfuture: 1\nspec:\n  replicas: 2\n"
			   "  command: [x]\n  gpu_sharing: {mode: mps}\n";
	ck_assert_int_eq(cn_yaml_parse(text, strlen(text), "f.yaml", &y, err, sizeof err), 0);
	size_t len;
	ck_assert_int_eq(cn_yaml_to_mp(y, mp, sizeof mp, &len, err, sizeof err), 0);
	cn_yaml_free(y);
	uint32_t unknown = 0;
	cn_jobspec_err e;
	ck_assert_int_eq(cn_jobspec_decode(mp, len, false, &spec, &unknown, &e), 0);
	ck_assert_uint_eq(unknown, 2);
	ck_assert_uint_eq(spec.replicas, 2);
	ck_assert_int_eq(cn_jobspec_decode(mp, len, true, &spec, NULL, &e), CN_EINVAL);
	ck_assert_str_eq(e.path, "future");
	ck_assert_str_eq(e.msg, "unknown field");
}
END_TEST

START_TEST(truncations_never_crash)
{
	char err[CN_YAML_ERR_MAX];
	size_t len;
	ck_assert_int_eq(cn_yaml_jobspec_file(CN_SOURCE_ROOT "/examples/thermal-inference.yaml",
					      &spec, mp, sizeof mp, &len, err, sizeof err), 0);
	for (size_t cut = 0; cut < len; cut++) {
		cn_jobspec_err e;
		int rc = cn_jobspec_decode(mp, cut, false, &spec, NULL, &e);
		ck_assert_int_lt(rc, 0);
		ck_assert(e.msg[0] != '\0');
	}
	/* trailing bytes */
	mp[len] = 0xc0;
	ck_assert_int_eq(cn_jobspec_decode(mp, len + 1, false, &spec, NULL, NULL), CN_ETRAILING);
	/* a buffer too small for the encoding */
	ck_assert_int_eq(cn_jobspec_decode(mp, len, false, &spec, NULL, NULL), 0);
	uint8_t small[64];
	ck_assert_int_eq(cn_jobspec_encode(&spec, small, sizeof small, &len), CN_ENOSPACE);
}
END_TEST

START_TEST(arena_limit)
{
	/* 5 arguments of 4000 bytes exceed the 16 KiB arena: CN_ENOSPACE, named */
	static char text[32768];
	size_t o = (size_t)snprintf(text, sizeof text, "%s  replicas: 1\n  command: [/x", base_head);
	for (int i = 0; i < 5; i++) {
		o += (size_t)snprintf(text + o, sizeof text - o, ", \"");
		memset(text + o, 'a', 4000);
		o += 4000;
		text[o++] = '"';
	}
	snprintf(text + o, sizeof text - o, "]\n");
	char err[CN_YAML_ERR_MAX];
	ck_assert_int_eq(job(text, err, sizeof err), CN_ENOSPACE);
	ck_assert_ptr_nonnull(strstr(err, "spec.command[5]: the spec's text exceeds 16384 bytes"));
}
END_TEST

START_TEST(env_sorted_and_unique)
{
	char err[CN_YAML_ERR_MAX];
	ck_assert_int_eq(job_with("  env: {ZED: \"1\", ALPHA: \"2\", MID: three}\n", err, sizeof err), 0);
	ck_assert_str_eq(S(spec.env[0].key), "ALPHA");
	ck_assert_str_eq(S(spec.env[1].key), "MID");
	ck_assert_str_eq(S(spec.env[2].key), "ZED");
	/* integers in env values are refused (quote them): the decoder wants text */
	ck_assert_int_eq(job_with("  env: {A: 1}\n", err, sizeof err), CN_ETYPE);
	ck_assert_ptr_nonnull(strstr(err, "spec.env.A: must be a string"));
}
END_TEST

START_TEST(line_of_paths)
{
	char err[CN_YAML_ERR_MAX];
	cn_yaml *y;
	const char *text = "kind: job\nname: j\nspec:\n  replicas: 1\n  constraints:\n"
			   "    - {label: a, op: \"=\", value: b}\n    -\n      label: c\n"
			   "      op: in\n";
	ck_assert_int_eq(cn_yaml_parse(text, strlen(text), "f", &y, err, sizeof err), 0);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec.replicas"), 4);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec.constraints[1].op"), 9);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec.constraints[1]"), 8);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec.constraints[0].value"), 6);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec.nothing.here"), 3);
	ck_assert_int_eq(cn_yaml_line_of(y, "spec"), 3);
	cn_yaml_free(y);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("jobspec");
	TCase *t = tcase_create("all");
	tcase_add_test(t, examples_parse);
	tcase_add_test(t, issue_example_fields);
	tcase_add_test(t, other_examples_fields);
	tcase_add_test(t, defaults);
	tcase_add_test(t, errors_name_the_field);
	tcase_add_test(t, document_level_errors);
	tcase_add_test(t, strict_and_lenient);
	tcase_add_test(t, truncations_never_crash);
	tcase_add_test(t, arena_limit);
	tcase_add_test(t, env_sorted_and_unique);
	tcase_add_test(t, line_of_paths);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
