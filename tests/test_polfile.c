/* Operator policy files (src/cli/polfile.c) and the multi-document YAML
 * stream (cli/yaml2mp.h): documents in order with their bodies, job specs
 * made canonical, role and revoke checks, and every error naming
 * file:line: field. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cli/polfile.h"
#include "core/jobspec.h"
#include "core/trust.h"
#include "crypto/crypto.h"
#include "util/err.h"
#include "wire/mp.h"

static int parse(const char *text, cn_polfile_doc **docs, size_t *n, char *err, size_t cap)
{
	return cn_polfile_parse(text, strlen(text), "p.yaml", docs, n, err, cap);
}

START_TEST(several_documents)
{
	const char *text = "# two documents\n"
			   "kind: config\n"
			   "name: tenant-a/app\n"
			   "spec: {replicas: 2}\n"
			   "---\n"
			   "kind: job\n"
			   "name: web\n"
			   "spec:\n"
			   "  command: [/bin/true]\n"
			   "  replicas: 1\n"
			   "---\n";
	cn_polfile_doc *d;
	size_t n = 0;
	char err[CN_POLFILE_ERR_MAX];
	ck_assert_int_eq(parse(text, &d, &n, err, sizeof err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(d[0].kind, "config");
	ck_assert_str_eq(d[0].name, "tenant-a/app");
	ck_assert_str_eq(d[0].where, "p.yaml:2");
	uint8_t want[] = {0x81, 0xa8, 'r', 'e', 'p', 'l', 'i', 'c', 'a', 's', 0x02};
	ck_assert_uint_eq(d[0].body_len, sizeof want);
	ck_assert(memcmp(d[0].body, want, sizeof want) == 0);
	ck_assert_str_eq(d[1].kind, "job");
	ck_assert_str_eq(d[1].where, "p.yaml:6");
	/* The job body is the canonical spec: wrapped back, it decodes, and
	 * encodes to the same bytes. */
	uint8_t doc[CN_JOB_DOC_MAX], again[CN_JOB_DOC_MAX];
	size_t len = 0, len2 = 0;
	ck_assert_int_eq(cn_polfile_job_wrap("web", d[1].body, d[1].body_len, doc, sizeof doc, &len),
			 0);
	cn_jobspec *spec = malloc(sizeof *spec);
	ck_assert_int_eq(cn_jobspec_decode(doc, len, true, spec, NULL, NULL), 0);
	ck_assert_uint_eq(spec->replicas, 1);
	ck_assert_int_eq(cn_jobspec_encode(spec, again, sizeof again, &len2), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert(memcmp(doc, again, len) == 0);
	free(spec);
	cn_polfile_free(d, n);
}
END_TEST

static void error_is(const char *text, const char *want)
{
	cn_polfile_doc *d = NULL;
	size_t n = 0;
	char err[CN_POLFILE_ERR_MAX] = "";
	ck_assert_int_ne(parse(text, &d, &n, err, sizeof err), 0);
	ck_assert_ptr_null(d);
	ck_assert_msg(strstr(err, want) != NULL, "wanted \"%s\" in \"%s\"", want, err);
}

START_TEST(errors_name_file_line_field)
{
	error_is("kind: Config\nname: x\nspec: {}\n", "p.yaml:1: kind: must be a kind");
	error_is("kind: config\nname: /x\nspec: {}\n", "p.yaml:2: name: must be");
	error_is("kind: config\nname: x\nspec: [1]\n", "p.yaml:3: spec: must be a mapping");
	error_is("kind: config\nname: x\n", "p.yaml:1: spec: required");
	error_is("kind: config\nname: x\nspec: {}\nextra: 1\n", "p.yaml:4: extra: unknown key");
	error_is("- 1\n", "p.yaml:1: a policy document is a mapping");
	error_is("", "no documents");
	error_is("kind: config\nname: x\nspec: {a: [1, 2}\n", "p.yaml:3: not valid YAML");
	/* The second document is the bad one: its own line. */
	error_is("kind: config\nname: x\nspec: {}\n---\nkind: job\nname: j\nspec:\n"
		 "  command: [/bin/true]\n  replicas: -1\n",
		 "p.yaml:9: spec.replicas: ");
	error_is("kind: job\nname: j\nspec:\n  command: [a]\n  bogus: 1\n",
		 "p.yaml:5: spec.bogus: unknown field");
	error_is("kind: role\nname: r\nspec:\n  key: nope\n  kinds: [config]\n  prefixes: ['*']\n",
		 "p.yaml:4: role spec: key: not a base64");
	error_is("kind: role\nname: r\nspec:\n  key: e2abr/5GE5dN589z2/2RiJlHETBALGGlcQPByzhCs0w=\n"
		 "  kinds: [config, Bad]\n  prefixes: ['*']\n",
		 "role spec: kinds[1]: not a kind");
	error_is("kind: revoke\nname: somebody\nspec: {}\n", "p.yaml:2: name: a revocation");
}
END_TEST

START_TEST(role_and_revoke_accepted)
{
	const char *text = "kind: role\nname: tenant-a-ops\nspec:\n"
			   "  key: e2abr/5GE5dN589z2/2RiJlHETBALGGlcQPByzhCs0w=\n"
			   "  kinds: [config]\n  prefixes: [tenant-a/]\n---\n"
			   "kind: revoke\nname: node/n7\nspec: {reason: stolen}\n";
	cn_polfile_doc *d;
	size_t n = 0;
	char err[CN_POLFILE_ERR_MAX];
	ck_assert_int_eq(parse(text, &d, &n, err, sizeof err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(cn_trust_role_parse(d[0].body, d[0].body_len, err, sizeof err), 0);
	ck_assert_str_eq(d[1].name, "node/n7");
	cn_polfile_free(d, n);
}
END_TEST

int main(void)
{
	cn_crypto_init();
	Suite *s = suite_create("polfile");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, several_documents);
	tcase_add_test(tc, errors_name_file_line_field);
	tcase_add_test(tc, role_and_revoke_accepted);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
