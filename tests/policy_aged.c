/* Helper for tests/integration/test_policy.py (not a unit test itself).
 *
 *   policy_aged DATA_DIR NODE DAYS COUNT
 *
 * Makes DATA_DIR's policy store look like that of an agent named NODE that
 * was last up DAYS days ago: COUNT documents config/aged-<i>, signed by
 * the test fixture's root key, written with the wall clock DAYS days in
 * the past, and the agent's "policy_online_ms" marker set to that time.
 * Prints the root's public key (base64, one line) for the --trust file.
 * The agent's offline rule (docs/policy.md) must then forget them when it
 * starts with a --seed, and keep them without one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/policy.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "store/policy_store.h"
#include "store/store.h"

int main(int argc, char **argv)
{
	if (argc != 5 || cn_crypto_init() != 0) {
		fprintf(stderr, "usage: policy_aged DATA_DIR NODE DAYS COUNT\n");
		return 2;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t days = strtoull(argv[3], NULL, 10), count = strtoull(argv[4], NULL, 10);
	uint64_t wall = (uint64_t)ts.tv_sec * 1000 - days * 86400000u;
	char err[256];
	cn_store *s;
	cn_policy_lmdb *l;
	mkdir(argv[1], 0700);
	if (cn_store_open(argv[1], 0, &s, err, sizeof err) != 0 ||
	    cn_policy_lmdb_open(s, &l, err, sizeof err) != 0) {
		fprintf(stderr, "policy_aged: %s\n", err);
		return 1;
	}
	cn_sigkey root;
	fx_key(&root, 1);
	cn_trust roots;
	cn_trust_init(&roots);
	cn_trust_add_root(&roots, cn_sigkey_public(&root));
	cn_policy_config cfg;
	cn_policy_config_default(&cfg, argv[2]);
	cn_policy *p;
	if (cn_policy_open(&cfg, cn_policy_lmdb_store(l), &roots, wall, &p, err, sizeof err) != 0) {
		fprintf(stderr, "policy_aged: %s\n", err);
		return 1;
	}
	for (uint64_t i = 0; i < count; i++) {
		char name[32];
		uint64_t v;
		fx_doc f;
		int out;
		snprintf(name, sizeof name, "aged-%llu", (unsigned long long)i);
		if (cn_policy_stamp(p, wall, &v) != 0 ||
		    fx_make(&f, "config", name, v, argv[2], &root, false, i) != 0 ||
		    cn_policy_apply_local(p, &f.d, wall, &out, err, sizeof err) != 0) {
			fprintf(stderr, "policy_aged: %s: %s\n", name, err);
			return 1;
		}
	}
	if (cn_store_meta_put_u64(s, "policy_online_ms", wall) != 0) {
		fprintf(stderr, "policy_aged: cannot write the online marker\n");
		return 1;
	}
	char pub[CN_SIGKEY_TEXT_SIZE];
	cn_sigkey_public_encode(cn_sigkey_public(&root), pub);
	printf("%s\n", pub);
	cn_policy_free(p);
	cn_trust_free(&roots);
	cn_policy_lmdb_close(l);
	cn_store_close(s);
	cn_sigkey_wipe(&root);
	return 0;
}
