/* store/kv: named LMDB records survive a reopen; scan order; delete. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/kv.h"
#include "util/err.h"

typedef struct seen {
	char keys[8][64];
	size_t lens[8];
	int n;
} seen;

static int collect(void *arg, const char *key, const uint8_t *val, size_t len)
{
	seen *s = arg;
	(void)val;
	ck_assert_int_lt(s->n, 8);
	snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
	s->lens[s->n++] = len;
	return 0;
}

static int stop_at_first(void *arg, const char *key, const uint8_t *val, size_t len)
{
	(void)arg, (void)key, (void)val, (void)len;
	return 7;
}

START_TEST(records_survive_reopen)
{
	char dir[] = "/tmp/cn-kv-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char err[256];
	cn_store *st;
	cn_kv *kv;
	ck_assert_int_eq(cn_store_open(dir, 0, &st, err, sizeof err), 0);
	ck_assert_int_eq(cn_kv_open(st, "runtime", &kv), 0);
	ck_assert_int_eq(cn_kv_put(kv, "web/1", (const uint8_t *)"abc", 3), 0);
	ck_assert_int_eq(cn_kv_put(kv, "web/0", (const uint8_t *)"x", 1), 0);
	ck_assert_int_eq(cn_kv_put(kv, "db/0", (const uint8_t *)"", 0), 0);
	ck_assert_int_eq(cn_kv_put(kv, "web/1", (const uint8_t *)"abcd", 4), 0); /* replace */
	ck_assert_int_eq(cn_kv_put(kv, "", (const uint8_t *)"x", 1), CN_EINVAL);
	ck_assert_int_eq(cn_kv_del(kv, "db/0"), 0);
	ck_assert_int_eq(cn_kv_del(kv, "absent"), 0);
	cn_kv_close(kv);
	cn_store_close(st);

	ck_assert_int_eq(cn_store_open(dir, 0, &st, err, sizeof err), 0);
	ck_assert_int_eq(cn_kv_open(st, "runtime", &kv), 0);
	seen s = {0};
	ck_assert_int_eq(cn_kv_scan(kv, collect, &s), 0);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.keys[0], "web/0");
	ck_assert_str_eq(s.keys[1], "web/1");
	ck_assert_uint_eq(s.lens[1], 4);
	ck_assert_int_eq(cn_kv_scan(kv, stop_at_first, NULL), 7);
	/* Another database of the same environment is separate. */
	cn_kv *other;
	ck_assert_int_eq(cn_kv_open(st, "other", &other), 0);
	seen s2 = {0};
	ck_assert_int_eq(cn_kv_scan(other, collect, &s2), 0);
	ck_assert_int_eq(s2.n, 0);
	cn_kv_close(other);
	cn_kv_close(kv);
	cn_store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kv");
	TCase *tc = tcase_create("kv");
	tcase_add_test(tc, records_survive_reopen);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
