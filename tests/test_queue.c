/* Unit tests for core/queue: retransmit limit, fewest-sent-first order,
 * supersede rules, bound and drop counting. The "encoder" here writes a
 * fixed-size record per entry so the tests control the datagram budget. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/queue.h"
#include "wire/proto.h"

typedef struct sink {
	uint32_t idents[256];
	uint8_t kinds[256];
	uint32_t n;
	size_t size;        /* bytes per message */
	uint32_t stale;     /* ident reported stale, UINT32_MAX none */
} sink;

static int emit(void *ctx, const cn_queue_item *it, size_t room)
{
	sink *s = ctx;
	if (it->ident == s->stale)
		return -1;
	if (room < s->size)
		return 0;
	s->idents[s->n] = it->ident;
	s->kinds[s->n++] = it->kind;
	return (int)s->size;
}

static sink fill(cn_queue *q, uint32_t limit, size_t room, size_t size)
{
	sink s = {.size = size, .stale = UINT32_MAX};
	cn_queue_fill(q, limit, room, emit, &s);
	return s;
}

START_TEST(retransmit_limit_formula)
{
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 0), 1);
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 1), 4);
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 9), 4);
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 10), 8);
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 99), 8);
	ck_assert_uint_eq(cn_queue_retransmit_limit(4, 10000), 20);
	ck_assert_uint_eq(cn_queue_retransmit_limit(100, 10000), CN_QUEUE_TRANSMIT_MAX);
}
END_TEST

START_TEST(fewest_sent_first_then_newest)
{
	cn_queue q;
	cn_queue_init(&q, 100);
	ck_assert_int_eq(cn_queue_push(&q, 1, CN_MSG_ALIVE, 0), 0);
	ck_assert_int_eq(cn_queue_push(&q, 2, CN_MSG_ALIVE, 0), 0);
	/* Room for one: the newest goes first. */
	sink s = fill(&q, 3, 20, 20);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.idents[0], 2);
	/* Now 1 has fewer transmits than 2. */
	s = fill(&q, 3, 20, 20);
	ck_assert_uint_eq(s.idents[0], 1);
	ck_assert_int_eq(cn_queue_push(&q, 3, CN_MSG_DEAD, 9), 0);
	s = fill(&q, 3, 100, 20);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_uint_eq(s.idents[0], 3); /* 0 sends */
	/* Each entry leaves after 3 sends. */
	for (int i = 0; i < 5; i++)
		(void)fill(&q, 3, 100, 20);
	ck_assert_uint_eq(cn_queue_len(&q), 0);
	cn_queue_free(&q);
}
END_TEST

START_TEST(each_entry_sent_exactly_limit_times)
{
	cn_queue q;
	cn_queue_init(&q, 1000);
	uint32_t count[50] = {0};
	for (uint32_t i = 0; i < 50; i++)
		ck_assert_int_eq(cn_queue_push(&q, i, CN_MSG_ALIVE, 0), 0);
	for (int round = 0; round < 1000 && cn_queue_len(&q) > 0; round++) {
		sink s = fill(&q, 5, 7 * 30, 30);
		for (uint32_t k = 0; k < s.n; k++)
			count[s.idents[k]]++;
		/* Never the same update twice in one datagram. */
		for (uint32_t a = 0; a < s.n; a++)
			for (uint32_t b = a + 1; b < s.n; b++)
				ck_assert_uint_ne(s.idents[a], s.idents[b]);
	}
	for (uint32_t i = 0; i < 50; i++)
		ck_assert_uint_eq(count[i], 5);
	cn_queue_free(&q);
}
END_TEST

START_TEST(newer_update_supersedes)
{
	cn_queue q;
	cn_queue_init(&q, 100);
	cn_queue_item it;
	ck_assert_int_eq(cn_queue_push(&q, 7, CN_MSG_ALIVE, 0), 0);
	(void)fill(&q, 10, 100, 10);
	ck_assert(cn_queue_find(&q, 7, &it));
	ck_assert_uint_eq(it.transmits, 1);
	ck_assert_int_eq(cn_queue_push(&q, 7, CN_MSG_SUSPECT, 3), 0);
	ck_assert(cn_queue_find(&q, 7, &it));
	ck_assert_uint_eq(it.kind, CN_MSG_SUSPECT);
	ck_assert_uint_eq(it.from, 3);
	ck_assert_uint_eq(it.transmits, 0);
	ck_assert_uint_eq(cn_queue_len(&q), 1);
	/* Metadata does not displace a suspicion... */
	ck_assert_int_eq(cn_queue_push(&q, 7, CN_MSG_META, 0), 0);
	ck_assert(cn_queue_find(&q, 7, &it));
	ck_assert_uint_eq(it.kind, CN_MSG_SUSPECT);
	/* ...but refreshes an alive without turning it into a meta. */
	ck_assert_int_eq(cn_queue_push(&q, 8, CN_MSG_ALIVE, 0), 0);
	(void)fill(&q, 10, 100, 10);
	ck_assert_int_eq(cn_queue_push(&q, 8, CN_MSG_META, 0), 0);
	ck_assert(cn_queue_find(&q, 8, &it));
	ck_assert_uint_eq(it.kind, CN_MSG_ALIVE);
	ck_assert_uint_eq(it.transmits, 0);
	ck_assert_uint_eq(q.superseded, 2); /* the kept suspicion is not one */
	cn_queue_remove(&q, 7);
	ck_assert(!cn_queue_find(&q, 7, &it));
	cn_queue_free(&q);
}
END_TEST

START_TEST(full_queue_drops_most_sent)
{
	cn_queue q;
	cn_queue_init(&q, 4);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_int_eq(cn_queue_push(&q, i, CN_MSG_ALIVE, 0), 0);
	/* Room for one per fill: 3 (newest), 2, 1, 0, then 3 again. */
	uint32_t want[5] = {3, 2, 1, 0, 3};
	for (int i = 0; i < 5; i++) {
		sink s = fill(&q, 10, 20, 20);
		ck_assert_uint_eq(s.idents[0], want[i]);
	}
	cn_queue_item it;
	ck_assert(cn_queue_find(&q, 3, &it));
	ck_assert_uint_eq(it.transmits, 2);
	ck_assert_int_eq(cn_queue_push(&q, 99, CN_MSG_ALIVE, 0), 0);
	ck_assert_uint_eq(cn_queue_len(&q), 4);
	ck_assert_uint_eq(q.dropped, 1);
	ck_assert(!cn_queue_find(&q, 3, &it));
	ck_assert(cn_queue_find(&q, 99, &it));
	cn_queue_free(&q);
}
END_TEST

START_TEST(stale_entries_are_dropped)
{
	cn_queue q;
	cn_queue_init(&q, 10);
	ck_assert_int_eq(cn_queue_push(&q, 1, CN_MSG_ALIVE, 0), 0);
	ck_assert_int_eq(cn_queue_push(&q, 2, CN_MSG_ALIVE, 0), 0);
	sink s = {.size = 10, .stale = 2};
	ck_assert_uint_eq(cn_queue_fill(&q, 5, 100, emit, &s), 1);
	ck_assert_uint_eq(cn_queue_len(&q), 1);
	cn_queue_free(&q);
}
END_TEST

static int calls;
static int emit_counting(void *ctx, const cn_queue_item *it, size_t room)
{
	(void)ctx;
	(void)it;
	calls++;
	return room >= 100 ? 100 : 0;
}

START_TEST(full_datagram_stops_the_scan)
{
	cn_queue q;
	cn_queue_init(&q, 1000);
	for (uint32_t i = 0; i < 500; i++)
		ck_assert_int_eq(cn_queue_push(&q, i, CN_MSG_ALIVE, 0), 0);
	calls = 0;
	ck_assert_uint_eq(cn_queue_fill(&q, 5, 1050, emit_counting, NULL), 10);
	ck_assert_int_eq(calls, 10 + CN_QUEUE_MISSES_MAX); /* not 500 */
	cn_queue_free(&q);
}
END_TEST

/* A refutation (urgent alive) and a suspicion are offered before a flood of
 * fresh bulk updates pushed after them, and a full queue drops bulk first. */
START_TEST(urgent_beats_a_flood_of_bulk_updates)
{
	cn_queue q;
	cn_queue_init(&q, 600);
	ck_assert_int_eq(cn_queue_push_class(&q, 7, CN_MSG_ALIVE, 0, true), 0);
	ck_assert_int_eq(cn_queue_push(&q, 8, CN_MSG_SUSPECT, 1), 0);
	for (uint32_t i = 100; i < 700; i++) /* 600 newer joins: queue full */
		ck_assert_int_eq(cn_queue_push(&q, i, CN_MSG_ALIVE, 0), 0);
	ck_assert_uint_eq(cn_queue_len(&q), 600);
	cn_queue_item it;
	ck_assert(cn_queue_find(&q, 7, &it)); /* bulk was dropped, not these */
	ck_assert(cn_queue_find(&q, 8, &it));
	sink s = fill(&q, 4, 40, 20); /* room for two */
	ck_assert_uint_eq(s.n, 2);
	ck_assert(s.idents[0] == 7 || s.idents[1] == 7);
	ck_assert(s.idents[0] == 8 || s.idents[1] == 8);
	/* Still ahead of unsent bulk after being sent (class before count). */
	s = fill(&q, 4, 40, 20);
	ck_assert(s.idents[0] == 7 || s.idents[0] == 8);
	/* A meta refresh keeps the refutation urgent; a plain alive does not. */
	ck_assert_int_eq(cn_queue_push(&q, 7, CN_MSG_META, 0), 0);
	ck_assert(cn_queue_find(&q, 7, &it));
	ck_assert_uint_eq(it.urgent, 1);
	ck_assert_uint_eq(it.kind, CN_MSG_ALIVE);
	ck_assert_int_eq(cn_queue_push(&q, 7, CN_MSG_ALIVE, 0), 0);
	ck_assert(cn_queue_find(&q, 7, &it));
	ck_assert_uint_eq(it.urgent, 0);
	cn_queue_free(&q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, retransmit_limit_formula);
	tcase_add_test(tc, fewest_sent_first_then_newest);
	tcase_add_test(tc, each_entry_sent_exactly_limit_times);
	tcase_add_test(tc, newer_update_supersedes);
	tcase_add_test(tc, full_queue_drops_most_sent);
	tcase_add_test(tc, stale_entries_are_dropped);
	tcase_add_test(tc, full_datagram_stops_the_scan);
	tcase_add_test(tc, urgent_beats_a_flood_of_bulk_updates);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
