/* util/resolve: numeric, hosts file, getent, and refusals. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/resolve.h"

static char hosts[64];

static void write_hosts(void)
{
	snprintf(hosts, sizeof hosts, "/tmp/cn-hosts-%d", (int)getpid());
	FILE *f = fopen(hosts, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# comment\n127.0.0.1\tlocalhost\n10.1.2.3 edge-a edge-a.plant7 # trailing\n"
	      "fd00::7   edge-v6\n\n   \n",
	      f);
	fclose(f);
}

START_TEST(numeric_and_hosts_file)
{
	write_hosts();
	cn_addr a;
	char err[256] = "";
	char t[CN_ADDR_STR_MAX];
	ck_assert_int_eq(cn_resolve("10.0.0.5:7000", 7980, hosts, "", &a, err, sizeof err), 0);
	cn_addr_format(&a, t, sizeof t);
	ck_assert_str_eq(t, "10.0.0.5:7000");
	ck_assert_int_eq(cn_resolve("EDGE-A.plant7:9000", 7980, hosts, "", &a, err, sizeof err), 0);
	cn_addr_format(&a, t, sizeof t);
	ck_assert_str_eq(t, "10.1.2.3:9000");
	ck_assert_int_eq(cn_resolve("edge-v6", 7980, hosts, "", &a, err, sizeof err), 0);
	cn_addr_format(&a, t, sizeof t);
	ck_assert_str_eq(t, "[fd00::7]:7980");
	/* not in the file, no getent: a clear refusal */
	ck_assert_int_eq(cn_resolve("edge-z:1", 7980, hosts, "", &a, err, sizeof err), CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "edge-z"));
	unlink(hosts);
}
END_TEST

START_TEST(bad_text_is_refused_before_any_lookup)
{
	cn_addr a;
	char err[256];
	static const char *bad[] = {"", "-x:1", "a b:1", "host:0", "host:65536", "host:", "x;rm:1",
				    "h\xc3\xa9:1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		ck_assert_int_eq(cn_resolve(bad[i], 7980, "/nonexistent", "/nonexistent-getent", &a,
					    err, sizeof err), CN_EINVAL);
		ck_assert_msg(err[0] != 0, "no reason for '%s'", bad[i]);
	}
}
END_TEST

START_TEST(getent_answers_and_failures)
{
	cn_addr a;
	char err[256] = "";
	char t[CN_ADDR_STR_MAX];
	/* localhost through the system's getent (NSS), hosts file bypassed */
	if (access("/usr/bin/getent", X_OK) == 0) {
		ck_assert_int_eq(cn_resolve("localhost:7001", 7980, "/nonexistent", NULL, &a, err,
					    sizeof err), 0);
		cn_addr_format(&a, t, sizeof t);
		ck_assert_msg(strcmp(t, "127.0.0.1:7001") == 0 || strcmp(t, "[::1]:7001") == 0, "%s", t);
	}
	/* a "getent" that fails, and one that is missing */
	ck_assert_int_eq(cn_resolve("nowhere:1", 7980, "/nonexistent", "false", &a, err, sizeof err),
			 CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown host"));
	ck_assert_int_eq(cn_resolve("nowhere:1", 7980, "/nonexistent", "/nonexistent-getent", &a, err,
				    sizeof err), CN_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "cannot run"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc = tcase_create("resolve");
	tcase_add_test(tc, numeric_and_hosts_file);
	tcase_add_test(tc, bad_text_is_refused_before_any_lookup);
	tcase_add_test(tc, getent_answers_and_failures);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
