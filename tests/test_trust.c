/* Unit tests for core/trust: the --trust file parser (line-numbered
 * errors), role bodies, and the check: root, unsigned, forged, unknown key,
 * kinds and prefixes, root-only kinds, revocation of keys and writer nodes
 * with their cutoff, and that revocations cannot be deleted. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/trust.h"
#include "crypto/crypto.h"
#include "policy_fixture.h"
#include "util/err.h"

static cn_sigkey root, op, stranger;

static void setup(void)
{
	fx_key(&root, 1);
	fx_key(&op, 2);
	fx_key(&stranger, 3);
}

static void teardown(void)
{
	cn_sigkey_wipe(&root);
	cn_sigkey_wipe(&op);
	cn_sigkey_wipe(&stranger);
}

static size_t line_of(const char *text, cn_trust *t, char *why, size_t cap)
{
	size_t line = 99;
	ck_assert_int_eq(cn_trust_parse_roots(t, (const uint8_t *)text, strlen(text), why, cap, &line),
			 CN_EINVAL);
	return line;
}

START_TEST(roots_file)
{
	char b1[CN_SIGKEY_TEXT_SIZE], b2[CN_SIGKEY_TEXT_SIZE];
	cn_sigkey_public_encode(cn_sigkey_public(&root), b1);
	cn_sigkey_public_encode(cn_sigkey_public(&op), b2);
	char text[1024], why[CN_TRUST_WHY_MAX];
	snprintf(text, sizeof text, "# fleet roots\r\n\n  %s  alice (security)  # primary\r\n%s\n", b1, b2);
	cn_trust t;
	cn_trust_init(&t);
	size_t line = 7;
	ck_assert_int_eq(cn_trust_parse_roots(&t, (const uint8_t *)text, strlen(text), why, sizeof why, &line), 0);
	ck_assert_uint_eq(t.n_roots, 2);
	ck_assert_uint_eq(line, 0);
	ck_assert_str_eq(why, "");
	ck_assert(cn_trust_is_root(&t, cn_sigkey_public(&root)));
	ck_assert(cn_trust_is_root(&t, cn_sigkey_public(&op)));
	ck_assert(!cn_trust_is_root(&t, cn_sigkey_public(&stranger)));

	cn_trust u;
	cn_trust_init(&u);
	snprintf(text, sizeof text, "# x\n%s\nnot-a-key\n", b1);
	ck_assert_uint_eq(line_of(text, &u, why, sizeof why), 3);
	ck_assert_str_eq(why, "line 3: not a base64 Ed25519 public key (44 characters)");
	snprintf(text, sizeof text, "%s\n%s extra\n", b1, b1);
	ck_assert_uint_eq(line_of(text, &u, why, sizeof why), 2);
	ck_assert_str_eq(why, "line 2: key listed twice");
	ck_assert_uint_eq(line_of("# only comments\n\n", &u, why, sizeof why), 0);
	ck_assert_str_eq(why, "no keys");
	snprintf(text, sizeof text, "%s %0100d\n", b1, 0);
	ck_assert_uint_eq(line_of(text, &u, why, sizeof why), 1);
	snprintf(text, sizeof text, "%s\n\n%.43s=\n", b1, b2 + 1); /* 44 chars, wrong */
	ck_assert_uint_eq(line_of(text, &u, why, sizeof why), 3);
	char nul[] = "abc\0def\n";
	line = 0;
	ck_assert_int_eq(cn_trust_parse_roots(&u, (const uint8_t *)nul, sizeof nul - 1, why, sizeof why, &line), CN_EINVAL);
	ck_assert_uint_eq(line, 1);
	ck_assert_uint_eq(u.n_roots, 0); /* untouched on failure */
	cn_trust_free(&t);
}
END_TEST

static void trust_with_root(cn_trust *t)
{
	cn_trust_init(t);
	ck_assert_int_eq(cn_trust_add_root(t, cn_sigkey_public(&root)), 0);
	ck_assert_int_eq(cn_trust_add_root(t, cn_sigkey_public(&root)), CN_EEXIST);
}

START_TEST(root_unsigned_forged_unknown)
{
	cn_trust t;
	trust_with_root(&t);
	char why[CN_TRUST_WHY_MAX];
	fx_doc f;
	fx_make(&f, "config", "a", 10, "n1", &root, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), 0);
	fx_make(&f, "config", "a", 10, "n1", NULL, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_str_eq(why, "unsigned");
	/* forged: signed by a stranger but claiming the root key */
	fx_make(&f, "config", "a", 10, "n1", &stranger, false, 1);
	memcpy(f.d.key, cn_sigkey_public(&root), 32);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "bad signature"));
	/* tampered after signing */
	fx_make(&f, "config", "a", 10, "n1", &root, false, 1);
	f.d.version = 11;
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "bad signature"));
	/* a valid signature by a key nobody granted anything */
	fx_make(&f, "config", "a", 10, "n1", &stranger, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	char id[CN_TRUST_KEY_ID_SIZE], want[64];
	cn_trust_key_id(cn_sigkey_public(&stranger), id);
	snprintf(want, sizeof want, "unknown key %s", id);
	ck_assert_str_eq(why, want);
	cn_trust_free(&t);
}
END_TEST

START_TEST(roles_grant_kinds_and_prefixes)
{
	cn_trust t;
	trust_with_root(&t);
	char why[CN_TRUST_WHY_MAX];
	const char *kinds[] = {"job", "config"}, *prefixes[] = {"tenant-a/", "shared."};
	fx_doc role, f;
	ck_assert_int_eq(fx_role(&role, "ops-a", 5, "n1", &root, &op, kinds, 2, prefixes, 2), 0);
	ck_assert_int_eq(cn_trust_check(&t, &role.d, why, sizeof why), 0);
	ck_assert_int_eq(cn_trust_set_role(&t, &role.d), 0);
	fx_make(&f, "job", "tenant-a/web", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), 0);
	fx_make(&f, "config", "shared.dns", 10, "n1", &op, true, 0);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), 0);
	fx_make(&f, "alert", "tenant-a/cpu", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "kind 'alert' not granted"));
	fx_make(&f, "job", "tenant-b/web", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "name 'tenant-b/web' outside the prefixes"));
	/* root-only kinds */
	fx_role(&f, "self-promote", 10, "n1", &op, &op, kinds, 2, prefixes, 2);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "kind 'role' needs a root key"));
	/* a second role widens the scope (union) */
	const char *all[] = {"*"};
	fx_doc role2;
	fx_role(&role2, "ops-alerts", 6, "n1", &root, &op, (const char *[]){"alert"}, 1, all, 1);
	ck_assert_int_eq(cn_trust_set_role(&t, &role2.d), 0);
	fx_make(&f, "alert", "anything", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), 0);
	/* replacing a role (same name) narrows it; a tombstone removes it */
	fx_role(&role, "ops-a", 7, "n1", &root, &op, kinds, 2, (const char *[]){"tenant-c/"}, 1);
	ck_assert_int_eq(cn_trust_set_role(&t, &role.d), 0);
	fx_make(&f, "job", "tenant-a/web", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	fx_make(&role, "role", "ops-alerts", 8, "n1", &root, true, 0);
	ck_assert_int_eq(cn_trust_check(&t, &role.d, why, sizeof why), 0);
	ck_assert_int_eq(cn_trust_set_role(&t, &role.d), 0);
	fx_make(&f, "alert", "anything", 10, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_uint_eq(t.n_grants, 1);
	cn_trust_free(&t);
}
END_TEST

START_TEST(role_spec_errors)
{
	cn_trust t;
	trust_with_root(&t);
	char why[CN_TRUST_WHY_MAX];
	fx_doc r;
	const char *p[] = {"x/"};
	fx_role(&r, "bad", 5, "n1", &root, &op, (const char *[]){"role"}, 1, p, 1);
	ck_assert_int_eq(cn_trust_check(&t, &r.d, why, sizeof why), CN_EPERM);
	ck_assert_str_eq(why, "role spec: kinds[0]: 'role' can only be written by a root key");
	fx_role(&r, "bad", 5, "n1", &root, &op, (const char *[]){"job", "Bad"}, 2, p, 1);
	ck_assert_int_eq(cn_trust_check(&t, &r.d, why, sizeof why), CN_EPERM);
	ck_assert_str_eq(why, "role spec: kinds[1]: not a kind");
	fx_role(&r, "bad", 5, "n1", &root, &op, (const char *[]){"job"}, 1, p, 0);
	ck_assert_int_eq(cn_trust_check(&t, &r.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "prefixes: must be a list"));
	/* a body that is not a map */
	fx_make(&r, "role", "bad", 5, "n1", &root, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &r.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "unknown or repeated field 'v'"));
	ck_assert_int_eq(cn_trust_set_role(&t, &r.d), CN_EINVAL);
	/* an empty body (found by fuzz_trust: no reader over NULL) */
	ck_assert_int_eq(cn_trust_role_parse(NULL, 0, why, sizeof why), CN_EINVAL);
	cn_trust_free(&t);
}
END_TEST

static void revoke_doc(fx_doc *f, const char *name, uint64_t version)
{
	ck_assert_int_eq(fx_make(f, "revoke", name, version, "n1", &root, false, 0), 0);
}

START_TEST(revocation_cutoff)
{
	cn_trust t;
	trust_with_root(&t);
	char why[CN_TRUST_WHY_MAX];
	const char *all[] = {"*"};
	fx_doc role, rv, f;
	fx_role(&role, "ops", 5, "n1", &root, &op, all, 1, all, 1);
	ck_assert_int_eq(cn_trust_set_role(&t, &role.d), 0);
	char name[80] = "key/";
	sodium_bin2hex(name + 4, 65, cn_sigkey_public(&op), 32);
	revoke_doc(&rv, name, 100);
	ck_assert_int_eq(cn_trust_check(&t, &rv.d, why, sizeof why), 0);
	ck_assert_int_eq(cn_trust_set_revocation(&t, &rv.d), 0);
	ck_assert(cn_trust_key_revoked(&t, cn_sigkey_public(&op), 0));
	fx_make(&f, "job", "w", 99, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), 0); /* before the cutoff */
	fx_make(&f, "job", "w", 100, "n1", &op, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "revoked"));
	/* writer nodes */
	revoke_doc(&rv, "node/bad-node", 200);
	ck_assert_int_eq(cn_trust_set_revocation(&t, &rv.d), 0);
	fx_make(&f, "job", "w", 250, "bad-node", &root, false, 1);
	ck_assert_int_eq(cn_trust_check(&t, &f.d, why, sizeof why), CN_EPERM);
	ck_assert_str_eq(why, "writer node bad-node revoked");
	ck_assert(cn_trust_node_revoked(&t, "bad-node", 0));
	ck_assert(!cn_trust_node_revoked(&t, "bad-node", 199));
	/* revocations cannot be deleted, revoke names are checked, non-roots
	 * cannot revoke */
	fx_make(&rv, "revoke", "node/bad-node", 300, "n1", &root, true, 0);
	ck_assert_int_eq(cn_trust_check(&t, &rv.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "cannot be deleted"));
	ck_assert_int_eq(cn_trust_set_revocation(&t, &rv.d), CN_EINVAL);
	revoke_doc(&rv, "key/ABCD", 300);
	ck_assert_int_eq(cn_trust_check(&t, &rv.d, why, sizeof why), CN_EPERM);
	for (size_t i = 4; name[i]; i++)
		if (name[i] >= 'a' && name[i] <= 'f')
			name[i] = (char)(name[i] - 'a' + 'A');
	revoke_doc(&rv, name, 300);
	ck_assert_int_eq(cn_trust_check(&t, &rv.d, why, sizeof why), CN_EPERM);
	fx_make(&rv, "revoke", "node/x", 300, "n1", &op, false, 0);
	ck_assert_int_eq(cn_trust_check(&t, &rv.d, why, sizeof why), CN_EPERM);
	ck_assert_ptr_nonnull(strstr(why, "needs a root key"));
	cn_trust_free(&t);
}
END_TEST

int main(void)
{
	if (cn_crypto_init() != 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("trust");
	TCase *tc = tcase_create("trust");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, roots_file);
	tcase_add_test(tc, root_unsigned_forged_unknown);
	tcase_add_test(tc, roles_grant_kinds_and_prefixes);
	tcase_add_test(tc, role_spec_errors);
	tcase_add_test(tc, revocation_cutoff);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
