/* Tests for store/policy_store (the LMDB policy store) under core/policy:
 * persistence across reopen, audit tampering by a raw LMDB transaction,
 * a full map (CN_EFULL, store still usable, every committed write kept),
 * and the crash test: tests/crash_writer SIGKILLed at random moments, 30
 * rounds, every acknowledged write present after each restart. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <lmdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/policy.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "store/policy_store.h"
#include "store/store.h"
#include "util/err.h"
#include "util/rng.h"

extern char **environ;

#define T0 UINT64_C(1700000000000)

static cn_sigkey root;

typedef struct lrep {
	char dir[256];
	cn_store *s;
	cn_policy_lmdb *l;
	cn_policy *p;
} lrep;

static void lrep_open(lrep *r, size_t map_mb)
{
	char err[256] = "";
	ck_assert_msg(cn_store_open(r->dir, map_mb, &r->s, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(cn_policy_lmdb_open(r->s, &r->l, err, sizeof err) == 0, "%s", err);
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, "n1");
	ck_assert_msg(cn_policy_open(&cfg, cn_policy_lmdb_store(r->l), &roots, T0, &r->p, err,
				     sizeof err) == 0, "%s", err);
	cn_trust_free(&roots);
}

static void lrep_close(lrep *r)
{
	cn_policy_free(r->p);
	cn_policy_lmdb_close(r->l);
	cn_store_close(r->s);
	r->p = NULL;
	r->l = NULL;
	r->s = NULL;
}

static void lrep_new(lrep *r, size_t map_mb)
{
	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "/tmp/cn-policy-lmdb-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(r->dir));
	lrep_open(r, map_mb);
}

static void lrep_destroy(lrep *r)
{
	if (r->p)
		lrep_close(r);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int64_t value_of(cn_policy *p, const char *kind, const char *name)
{
	cn_doc d;
	static uint8_t body[CN_DOC_BODY_MAX];
	int rc = cn_policy_get(p, kind, name, 0, &d, body, sizeof body);
	if (rc == CN_ENOENT)
		return -1;
	ck_assert_int_eq(rc, 0);
	if (d.deleted)
		return -2;
	cn_mp_reader rd;
	uint32_t n, kl;
	const char *k;
	uint64_t v;
	cn_mp_reader_init(&rd, d.body, d.body_len);
	ck_assert_int_eq(cn_mp_read_map(&rd, &n, 1), 0);
	ck_assert_int_eq(cn_mp_read_str(&rd, &k, &kl, 8), 0);
	ck_assert_int_eq(cn_mp_read_u64(&rd, &v), 0);
	return (int64_t)v;
}

static int count_cb(void *arg, const cn_doc *d)
{
	(void)d;
	(*(size_t *)arg)++;
	return 0;
}

START_TEST(persists_across_reopen)
{
	lrep r;
	lrep_new(&r, 0);
	fx_doc f;
	int out;
	for (uint64_t i = 1; i <= 40; i++) {
		char name[16];
		snprintf(name, sizeof name, "c%" PRIu64, i % 5);
		fx_make(&f, i % 2 ? "config" : "job", name, cn_hlc_make(T0 - 1000 + i, 0), "n1", &root,
			i % 9 == 0, i);
		ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, NULL, 0), 0);
	}
	uint8_t d0[32], d1[32];
	cn_policy_digest_root(r.p, d0);
	int64_t v = value_of(r.p, "config", "c4");
	size_t hist0 = 0, hist1 = 0;
	ck_assert_int_eq(cn_policy_history(r.p, "config", "c4", count_cb, &hist0), 0);
	ck_assert_uint_eq(hist0, 4);
	lrep_close(&r);
	lrep_open(&r, 0);
	cn_policy_digest_root(r.p, d1);
	ck_assert_mem_eq(d0, d1, 32);
	ck_assert_int_eq(value_of(r.p, "config", "c4"), v);
	ck_assert_int_eq(cn_policy_history(r.p, "config", "c4", count_cb, &hist1), 0);
	ck_assert_uint_eq(hist1, hist0);
	size_t listed = 0;
	ck_assert_int_eq(cn_policy_list(r.p, "job", count_cb, &listed), 0);
	ck_assert_uint_eq(listed, 5);
	ck_assert_uint_eq(cn_policy_names(r.p), 10);
	char why[CN_POLICY_WHY_MAX];
	cn_policy_audit_report rep;
	ck_assert_int_eq(cn_policy_audit_verify(r.p, &rep, why, sizeof why), 0);
	ck_assert_uint_eq(rep.entries, 40);
	/* the clock survived: a new stamp is above every stored version */
	uint64_t s;
	ck_assert_int_eq(cn_policy_stamp(r.p, T0 - 5000, &s), 0);
	ck_assert_uint_gt(s, cn_hlc_make(T0 - 1000 + 40, 0));
	/* history trimming in LMDB: 20 more writes of one name keep 16 */
	for (uint64_t i = 1; i <= 20; i++) {
		fx_make(&f, "config", "busy", cn_hlc_make(T0 - 900 + i, 0), "n1", &root, false, i);
		ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, NULL, 0), 0);
	}
	hist1 = 0;
	ck_assert_int_eq(cn_policy_history(r.p, "config", "busy", count_cb, &hist1), 0);
	ck_assert_uint_eq(hist1, CN_POLICY_HISTORY_DEFAULT);
	/* collection in LMDB */
	uint32_t collected = 0;
	ck_assert_int_eq(cn_policy_collect(r.p, T0 + CN_POLICY_TTL_DEFAULT_MS, 100, &collected), 0);
	ck_assert_uint_gt(collected, 0);
	lrep_destroy(&r);
}
END_TEST

/* Raw LMDB access, as an attacker with the file would have. */
static void raw_audit(lrep *r, size_t index, int action)
{
	MDB_env *env = cn_store_env(r->s);
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
	ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
	MDB_val k, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (size_t i = 0; i < index && rc == 0; i++)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	ck_assert_int_eq(rc, 0);
	if (action == 0) { /* flip one byte of the value */
		uint8_t copy[CN_POLICY_AUDIT_MAX];
		memcpy(copy, v.mv_data, v.mv_size);
		copy[v.mv_size / 2] ^= 0x20;
		MDB_val nv = {v.mv_size, copy};
		ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
	} else {
		ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
	}
	mdb_cursor_close(cur);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
}

START_TEST(audit_tamper_detected)
{
	for (int action = 0; action < 2; action++) {
		for (size_t index = 0; index < 5; index += 2) {
			lrep r;
			lrep_new(&r, 0);
			fx_doc f;
			int out;
			for (uint64_t i = 1; i <= 5; i++) {
				fx_make(&f, "config", "x", cn_hlc_make(T0 - 100 + i, 0), "n1", &root, false, i);
				ck_assert_int_eq(cn_policy_apply_local(r.p, &f.d, T0, &out, NULL, 0), 0);
			}
			char why[CN_POLICY_WHY_MAX];
			ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
			raw_audit(&r, index, action);
			ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), CN_EAUTH);
			ck_assert_str_ne(why, "");
			/* and after a restart too */
			lrep_close(&r);
			lrep_open(&r, 0);
			ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), CN_EAUTH);
			lrep_destroy(&r);
		}
	}
}
END_TEST

START_TEST(map_full_is_clear_and_recoverable)
{
	lrep r;
	lrep_new(&r, 1); /* 1 MiB map */
	static uint8_t body[50 * 1024];
	static char acked[64][16];
	size_t n_acked = 0;
	int rc = 0;
	uint64_t i;
	char why[CN_POLICY_WHY_MAX];
	for (i = 1; i < 64; i++) {
		cn_mp_writer w;
		size_t blen = 0;
		memset(body, (int)i, sizeof body);
		uint8_t enc[sizeof body + 8];
		cn_mp_writer_init(&w, enc, sizeof enc);
		cn_mp_put_bin(&w, body, sizeof body - 16);
		cn_mp_writer_end(&w, &blen);
		char name[16];
		snprintf(name, sizeof name, "big%" PRIu64, i);
		cn_doc d;
		ck_assert_int_eq(cn_doc_init(&d, "config", name, cn_hlc_make(T0 - 1000 + i, 0), "n1",
					     cn_sigkey_public(&root), false, enc, blen, NULL, 0), 0);
		fx_sign(&d, &root);
		int out;
		rc = cn_policy_apply_local(r.p, &d, T0, &out, why, sizeof why);
		if (rc != 0)
			break;
		strcpy(acked[n_acked++], name);
	}
	ck_assert_int_eq(rc, CN_EFULL);
	ck_assert_str_eq(why, "policy store is full (nothing was written)");
	ck_assert_uint_gt(n_acked, 2);
	/* still usable: reads work, the next big write is refused the same way */
	uint8_t d0[32], d1[32];
	cn_policy_digest_root(r.p, d0);
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
	fx_doc f;
	int out;
	fx_make(&f, "config", "big1", cn_hlc_make(T0 - 10, 0), "n1", &root, true, 0);
	rc = cn_policy_apply_local(r.p, &f.d, T0, &out, why, sizeof why);
	ck_assert(rc == 0 || rc == CN_EFULL);
	bool deleted_big1 = rc == 0;
	if (deleted_big1)
		cn_policy_digest_root(r.p, d0);
	lrep_close(&r);
	lrep_open(&r, 1);
	cn_policy_digest_root(r.p, d1);
	ck_assert_mem_eq(d0, d1, 32);
	for (size_t j = deleted_big1 ? 1 : 0; j < n_acked; j++) {
		cn_doc d;
		ck_assert_int_eq(cn_policy_get(r.p, "config", acked[j], 0, &d, body, sizeof body), 0);
		ck_assert_uint_eq(d.body_len, sizeof body - 16 + 3); /* bin16 header */
		ck_assert_uint_eq(d.body[3], (uint8_t)(j + 1));
	}
	size_t listed = 0;
	ck_assert_int_eq(cn_policy_list(r.p, "config", count_cb, &listed), 0);
	ck_assert_uint_eq(listed, n_acked);
	ck_assert_int_eq(cn_policy_audit_verify(r.p, NULL, why, sizeof why), 0);
	lrep_destroy(&r);
}
END_TEST

static void crash_writer_path(char *out, size_t cap)
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	snprintf(out, cap, "%s/crash_writer", dirname(self));
}

START_TEST(sigkill_loses_no_acknowledged_write)
{
	enum { ROUNDS = 30 };
	char exe[600];
	crash_writer_path(exe, sizeof exe);
	ck_assert_int_eq(access(exe, X_OK), 0);
	lrep r;
	lrep_new(&r, 4);
	lrep_close(&r);
	cn_rng rng;
	cn_rng_seed(&rng, 2024);
	static uint8_t acked[100000];
	uint64_t next = 1, total = 0, max_acked = 0;
	for (int round = 0; round < ROUNDS; round++) {
		int fds[2];
		ck_assert_int_eq(pipe(fds), 0);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
		posix_spawn_file_actions_addclose(&fa, fds[0]);
		char first[24], count[24];
		snprintf(first, sizeof first, "%" PRIu64, next);
		snprintf(count, sizeof count, "%d", 1000);
		char *argv[] = {exe, r.dir, first, count, NULL};
		pid_t pid;
		ck_assert_int_eq(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0);
		posix_spawn_file_actions_destroy(&fa);
		close(fds[1]);
		/* Even rounds: kill after a random 5-80 ms, during open or
		 * anywhere. Odd rounds: once the first write was acknowledged
		 * (so a slow, loaded machine still kills mid-writing), after a
		 * random 0-20 ms more. */
		char buf[8192];
		size_t have = 0;
		ssize_t got;
		long delay_ms = (long)(5 + cn_rng_below(&rng, 76));
		if (round % 2 == 1) {
			while (memchr(buf, '\n', have) == NULL &&
			       (got = read(fds[0], buf + have, sizeof buf - 1 - have)) > 0)
				have += (size_t)got;
			delay_ms = (long)cn_rng_below(&rng, 21);
		}
		struct timespec ts = {0, delay_ms * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		while ((got = read(fds[0], buf + have, sizeof buf - 1 - have)) > 0)
			have += (size_t)got;
		close(fds[0]);
		buf[have] = '\0';
		/* only whole lines are acknowledgements */
		char *end = strrchr(buf, '\n');
		if (end)
			end[1] = '\0';
		else
			buf[0] = '\0';
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			uint64_t v = strtoull(line, NULL, 10);
			ck_assert_uint_lt(v, sizeof acked);
			acked[v] = 1;
			total++;
			if (v > max_acked)
				max_acked = v;
		}
		next = max_acked + 1;
		/* restart: opens cleanly, every acknowledged write is there */
		lrep_open(&r, 4);
		for (uint64_t v = 1; v <= max_acked; v++) {
			if (!acked[v])
				continue;
			char name[32];
			snprintf(name, sizeof name, "k%" PRIu64, v);
			ck_assert_msg(value_of(r.p, "config", name) == (int64_t)v,
				      "round %d: acknowledged write %" PRIu64 " lost", round, v);
		}
		char why[CN_POLICY_WHY_MAX];
		ck_assert_msg(cn_policy_audit_verify(r.p, NULL, why, sizeof why) == 0, "round %d: %s",
			      round, why);
		lrep_close(&r);
	}
	fprintf(stderr, "crash test: %d SIGKILLs, %" PRIu64 " acknowledged writes, all present\n",
		ROUNDS, total);
	ck_assert_uint_gt(total, ROUNDS);
	lrep_destroy(&r);
}
END_TEST

int main(void)
{
	if (cn_crypto_init() != 0)
		return EXIT_FAILURE;
	fx_key(&root, 1);
	Suite *s = suite_create("policy_lmdb");
	TCase *tc = tcase_create("policy_lmdb");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, persists_across_reopen);
	tcase_add_test(tc, audit_tamper_detected);
	tcase_add_test(tc, map_full_is_clear_and_recoverable);
	tcase_add_test(tc, sigkill_loses_no_acknowledged_write);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cn_sigkey_wipe(&root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
