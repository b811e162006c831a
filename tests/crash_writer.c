/* Crash-test helper for tests/test_policy_lmdb.c (not a unit test itself).
 *
 *   crash_writer DIR FIRST COUNT
 *
 * Opens the LMDB policy store in DIR, then writes documents config/k<i>
 * (body {"v": i}) for i = FIRST .. FIRST+COUNT-1, each signed by the
 * fixture's root key, through cn_policy_apply_local; after each write
 * returns 0 it prints "i\n" on stdout (unbuffered). The test SIGKILLs it at
 * a random moment: every number printed is a write the store acknowledged.
 * Every 7th write also rewrites config/shared so history trimming is part
 * of what gets interrupted. Exit status 0 when all were written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/policy.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "store/policy_store.h"
#include "store/store.h"

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	if (argc != 4 || cn_crypto_init() != 0)
		return 2;
	uint64_t first = strtoull(argv[2], NULL, 10), count = strtoull(argv[3], NULL, 10);
	char err[256];
	cn_store *s;
	cn_policy_lmdb *l;
	if (cn_store_open(argv[1], 4, &s, err, sizeof err) != 0 ||
	    cn_policy_lmdb_open(s, &l, err, sizeof err) != 0) {
		fprintf(stderr, "crash_writer: %s\n", err);
		return 1;
	}
	cn_sigkey root;
	fx_key(&root, 1);
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, "crash");
	cn_policy *p;
	if (cn_policy_open(&cfg, cn_policy_lmdb_store(l), &roots, wall_ms(), &p, err, sizeof err) != 0) {
		fprintf(stderr, "crash_writer: %s\n", err);
		return 1;
	}
	for (uint64_t i = first; i < first + count; i++) {
		for (int pass = 0; pass < (i % 7 == 0 ? 2 : 1); pass++) {
			char name[32];
			snprintf(name, sizeof name, pass ? "shared" : "k%llu", (unsigned long long)i);
			uint64_t now = wall_ms(), v;
			fx_doc f;
			if (cn_policy_stamp(p, now, &v) != 0 ||
			    fx_make(&f, "config", name, v, "crash", &root, false, i) != 0)
				return 1;
			int out, rc = cn_policy_apply_local(p, &f.d, now, &out, err, sizeof err);
			if (rc != 0) {
				fprintf(stderr, "crash_writer: %llu: %s\n", (unsigned long long)i, err);
				return 1;
			}
		}
		char line[32];
		int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)i);
		if (write(1, line, (size_t)n) != n)
			return 1;
	}
	cn_policy_free(p);
	cn_trust_free(&roots);
	cn_policy_lmdb_close(l);
	cn_store_close(s);
	return 0;
}
