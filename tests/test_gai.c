/* agent/numeric_gai.c: the static build's numeric-only getaddrinfo. */
#include <arpa/inet.h>
#include <check.h>
#include <netdb.h>
#include <string.h>

START_TEST(numeric_hosts_and_ports)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	ck_assert_int_eq(getaddrinfo("127.0.0.5", "7980", &hints, &res), 0);
	ck_assert_int_eq(res->ai_family, AF_INET);
	ck_assert_int_eq(res->ai_socktype, SOCK_STREAM);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)res->ai_addr;
	ck_assert_uint_eq(ntohs(s4->sin_port), 7980);
	ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0x7f000005u);
	ck_assert_ptr_null(res->ai_next);
	freeaddrinfo(res);

	ck_assert_int_eq(getaddrinfo("::1", "80", &hints, &res), 0);
	ck_assert_int_eq(res->ai_family, AF_INET6);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)res->ai_addr;
	ck_assert_uint_eq(ntohs(s6->sin6_port), 80);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	freeaddrinfo(res);

	hints.ai_flags = AI_PASSIVE;
	ck_assert_int_eq(getaddrinfo(NULL, "9000", &hints, &res), 0);
	ck_assert_uint_eq(((const struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr, INADDR_ANY);
	freeaddrinfo(res);
}
END_TEST

START_TEST(names_and_bad_ports_are_refused)
{
	struct addrinfo hints = {0}, *res = NULL;
	ck_assert_int_eq(getaddrinfo("localhost", "80", &hints, &res), EAI_NONAME);
	ck_assert_int_eq(getaddrinfo("10.0.0.1", "http", &hints, &res), EAI_SERVICE);
	ck_assert_int_eq(getaddrinfo("10.0.0.1", "70000", &hints, &res), EAI_SERVICE);
	ck_assert_int_eq(getaddrinfo(NULL, NULL, &hints, &res), EAI_NONAME);
	hints.ai_family = AF_INET6;
	ck_assert_int_eq(getaddrinfo("10.0.0.1", "1", &hints, &res), EAI_NONAME);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gai");
	TCase *tc = tcase_create("gai");
	tcase_add_test(tc, numeric_hosts_and_ports);
	tcase_add_test(tc, names_and_bad_ports_are_refused);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
