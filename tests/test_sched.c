/* agent/sched: job documents to placement to this member's runtime wants. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/sched.h"
#include "util/err.h"
#include "wire/mp.h"

enum { N = 6 };

typedef struct world {
	cn_sched_view v;
	cn_member m[N];
	cn_place_member in[N];
	cn_sched_jobs j;
	cn_placer *pl;
} world;

static void world_init(world *w)
{
	memset(w, 0, sizeof *w);
	for (int i = 0; i < N; i++) {
		cn_member *m = &w->m[i];
		snprintf(m->name, sizeof m->name, "n%d", i);
		m->state = CN_STATE_ALIVE;
		snprintf(m->meta.arch, sizeof m->meta.arch, "%s", i % 2 ? "arm64" : "x86_64");
		snprintf(m->meta.os, sizeof m->meta.os, "linux");
		m->meta.cpus = 4;
		m->meta.mem_mb = 4096;
		ck_assert_int_eq(cn_meta_set_label(&m->meta, "region", i < 4 ? "eu" : "us"), 0);
		w->in[i] = (cn_place_member){.name = m->name, .state = m->state, .meta = &m->meta};
	}
	w->v.members = w->m;
	w->v.in = w->in;
	w->v.n = N;
	ck_assert_int_eq(cn_placer_new(&w->pl), 0);
}

static void world_free(world *w)
{
	cn_placer_free(w->pl);
	cn_sched_jobs_free(&w->j);
	/* the view's arrays are the world's own */
}

/* A spec map: {replicas: R, command: ["/bin/true"], partition: P,
 * constraints: [{label: region, op: "=", value: REGION}] (when region)} */
static size_t spec(uint8_t *buf, size_t cap, uint32_t replicas, const char *partition,
		   const char *region)
{
	cn_mp_writer w;
	size_t n = 0;
	cn_mp_writer_init(&w, buf, cap);
	cn_mp_put_map(&w, region ? 4 : 3);
	cn_mp_put_cstr(&w, "replicas");
	cn_mp_put_uint(&w, replicas);
	cn_mp_put_cstr(&w, "command");
	cn_mp_put_array(&w, 1);
	cn_mp_put_cstr(&w, "/bin/true");
	cn_mp_put_cstr(&w, "partition");
	cn_mp_put_cstr(&w, partition);
	if (region) {
		cn_mp_put_cstr(&w, "constraints");
		cn_mp_put_array(&w, 1);
		cn_mp_put_map(&w, 3);
		cn_mp_put_cstr(&w, "label");
		cn_mp_put_cstr(&w, "region");
		cn_mp_put_cstr(&w, "op");
		cn_mp_put_cstr(&w, "=");
		cn_mp_put_cstr(&w, "value");
		cn_mp_put_cstr(&w, region);
	}
	ck_assert_int_eq(cn_mp_writer_end(&w, &n), 0);
	return n;
}

static void add(world *w, const char *name, uint64_t version, uint32_t replicas,
		const char *partition, const char *region)
{
	uint8_t buf[512];
	size_t n = spec(buf, sizeof buf, replicas, partition, region);
	cn_jobspec_err e;
	ck_assert_int_eq(cn_sched_jobs_add(&w->j, name, version, buf, n, true, &e), 0);
}

START_TEST(every_replica_falls_to_exactly_one_member)
{
	world w;
	world_init(&w);
	add(&w, "web", 7, 3, "keep_running", NULL);
	add(&w, "eu-db", 9, 2, "keep_running", "eu");
	cn_place_result r;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r), 0);
	uint32_t web[3] = {0}, eu = 0;
	for (int i = 0; i < N; i++) {
		cn_rt_want want[8];
		size_t n = cn_sched_wants(&r, &w.j, w.m[i].name, false, want, 8);
		for (size_t k = 0; k < n; k++) {
			if (strcmp(want[k].job, "web") == 0) {
				ck_assert_uint_lt(want[k].replica, 3);
				ck_assert_uint_eq(want[k].version, 7);
				web[want[k].replica]++;
			} else {
				ck_assert_str_eq(want[k].job, "eu-db");
				ck_assert_int_lt(i, 4); /* region = eu only */
				ck_assert_str_eq(cn_jobspec_str(want[k].spec, want[k].spec->command[0]),
						 "/bin/true");
				eu++;
			}
		}
	}
	ck_assert_uint_eq(web[0], 1);
	ck_assert_uint_eq(web[1], 1);
	ck_assert_uint_eq(web[2], 1);
	ck_assert_uint_eq(eu, 2);
	cn_place_result_free(&r);
	world_free(&w);
}
END_TEST

/* A member going down hands its replica numbers to the members its
 * replicas are redirected to; every other replica keeps its member and
 * number (no restart), and the return restores the same numbering. */
START_TEST(down_member_renumbers_no_survivor)
{
	world w;
	world_init(&w);
	add(&w, "web", 1, 3, "keep_running", NULL);
	add(&w, "api", 1, 4, "keep_running", NULL);
	add(&w, "eu-db", 1, 2, "keep_running", "eu");
	cn_place_result before, after;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &before), 0);
	int moved_total = 0;
	for (int d = 0; d < N; d++) {
		w.in[d].state = d % 2 ? CN_STATE_DEAD : CN_STATE_LEFT;
		ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &after), 0);
		for (size_t k = 0; k < before.n_jobs; k++) {
			const cn_place_job_out *jb = &before.jobs[k], *ja = &after.jobs[k];
			ck_assert_str_eq(jb->name, ja->name);
			ck_assert_uint_eq(ja->n_placed, jb->n_placed);
			for (uint32_t x = 0; x < jb->n_placed; x++) {
				const char *hb = before.members[before.slots[jb->first + x]].name;
				const char *ha = after.members[after.slots[ja->first + x]].name;
				if (strcmp(hb, w.m[d].name) != 0) {
					ck_assert_str_eq(ha, hb); /* same member, same number */
				} else {
					ck_assert_str_ne(ha, hb);
					/* the stand-in holds the down member's base place */
					ck_assert_str_eq(after.members[after.base_of[ja->first + x]].name,
							 w.m[d].name);
					moved_total++;
				}
			}
		}
		cn_place_result_free(&after);
		w.in[d].state = CN_STATE_ALIVE;
		ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &after), 0);
		ck_assert_uint_eq(after.n_slots, before.n_slots);
		ck_assert_mem_eq(after.slots, before.slots, before.n_slots * sizeof *before.slots);
		cn_place_result_free(&after);
	}
	ck_assert_int_eq(moved_total, 3 + 4 + 2); /* each replica's host went down once */
	cn_place_result_free(&before);
	world_free(&w);
}
END_TEST

/* The rule follows the oldest live member: during a rolling upgrade the
 * upgraded agents place as the old ones do (rule 1: base of live members,
 * accelerators not accounted), and switch once no live member is old. */
START_TEST(placement_rule_follows_the_oldest_live_member)
{
	world w;
	world_init(&w);
	for (int i = 0; i < N; i++)
		w.m[i].vmin = 1, w.m[i].vmax = 2;
	ck_assert_uint_eq(cn_sched_rule(w.m, N), CN_PLACE_RULE_2);
	w.m[4].vmax = 1;
	ck_assert_uint_eq(cn_sched_rule(w.m, N), CN_PLACE_RULE_1);
	w.m[4].state = CN_STATE_SUSPECT;
	ck_assert_uint_eq(cn_sched_rule(w.m, N), CN_PLACE_RULE_1);
	w.m[4].state = CN_STATE_DEAD; /* an old member that is down: no vote */
	ck_assert_uint_eq(cn_sched_rule(w.m, N), CN_PLACE_RULE_2);
	w.m[4].state = CN_STATE_ALIVE;

	/* rule 1 with a member down places as if it were not there */
	add(&w, "web", 1, 3, "keep_running", NULL);
	add(&w, "api", 1, 4, "keep_running", NULL);
	cn_place_result r1, gone, r2;
	/* the down member: one that hosts a replica */
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r1), 0);
	int d = atoi(r1.members[r1.slots[r1.jobs[0].first]].name + 1);
	cn_place_result_free(&r1);
	w.in[d].state = CN_STATE_DEAD;
	w.v.rule = CN_PLACE_RULE_1;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r1), 0);
	cn_sched_view v = w.v;
	cn_place_member in[N];
	size_t k = 0;
	for (int i = 0; i < N; i++)
		if (i != d)
			in[k++] = w.in[i];
	v.in = in;
	v.n = k;
	ck_assert_int_eq(cn_sched_place(w.pl, &v, &w.j, &gone), 0);
	for (size_t q = 0; q < r1.n_jobs; q++)
		for (uint32_t x = 0; x < r1.jobs[q].n_placed; x++)
			ck_assert_str_eq(r1.members[r1.slots[r1.jobs[q].first + x]].name,
					 gone.members[gone.slots[gone.jobs[q].first + x]].name);
	/* and rule 2 keeps the down member in the base (differs here) */
	w.v.rule = CN_PLACE_RULE_2;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r2), 0);
	bool differs = false;
	for (size_t q = 0; q < r2.n_jobs; q++)
		for (uint32_t x = 0; x < r2.jobs[q].n_placed; x++)
			differs |= r2.base_of[r2.jobs[q].first + x] != r2.slots[r2.jobs[q].first + x];
	ck_assert(differs); /* some replica stands in for the down member */
	cn_place_result_free(&r1);
	cn_place_result_free(&gone);
	cn_place_result_free(&r2);
	world_free(&w);
}
END_TEST

START_TEST(majority_only_runs_only_with_quorum)
{
	world w;
	world_init(&w);
	add(&w, "singleton", 1, 1, "majority_only", NULL);
	/* This member sees only 2 of 6 alive: no quorum, nothing runs. */
	for (int i = 2; i < N; i++)
		w.in[i].state = CN_STATE_DEAD;
	cn_place_result r;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r), 0);
	cn_rt_want want[4];
	for (int i = 0; i < 2; i++)
		ck_assert_uint_eq(cn_sched_wants(&r, &w.j, w.m[i].name, false, want, 4), 0);
	cn_place_result_free(&r);
	/* With 4 of 6 alive it runs on exactly one of them. */
	w.in[2].state = w.in[3].state = CN_STATE_ALIVE;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r), 0);
	size_t total = 0;
	for (int i = 0; i < 4; i++)
		total += cn_sched_wants(&r, &w.j, w.m[i].name, false, want, 4);
	ck_assert_uint_eq(total, 1);
	cn_place_result_free(&r);
	world_free(&w);
}
END_TEST

/* A fenced member (its own probes fail: cut off) runs no majority_only
 * replica even with quorum in its view; other jobs are unaffected. */
START_TEST(fenced_member_runs_no_majority_only)
{
	world w;
	world_init(&w);
	add(&w, "singleton", 1, 1, "majority_only", NULL);
	add(&w, "web", 1, N, "keep_running", NULL);
	cn_place_result r;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &r), 0);
	cn_rt_want want[4];
	size_t with = 0, fenced = 0;
	for (int i = 0; i < N; i++) {
		with += cn_sched_wants(&r, &w.j, w.m[i].name, false, want, 4);
		fenced += cn_sched_wants(&r, &w.j, w.m[i].name, true, want, 4);
		for (size_t k = 0; k < cn_sched_wants(&r, &w.j, w.m[i].name, true, want, 4); k++)
			ck_assert_str_eq(want[k].job, "web");
	}
	ck_assert_uint_eq(with, N + 1);
	ck_assert_uint_eq(fenced, N);
	ck_assert(cn_sched_fenced(CN_SCHED_FENCE_HEALTH, false));
	ck_assert(!cn_sched_fenced(CN_SCHED_FENCE_HEALTH - 1, false));
	ck_assert(!cn_sched_fenced(7, true)); /* one acked probe: reachable again */
	cn_place_result_free(&r);
	world_free(&w);
}
END_TEST

static bool runs_nothing(void *ctx, const char *job, uint32_t replica)
{
	(void)ctx, (void)job, (void)replica;
	return false;
}

static bool runs_everything(void *ctx, const char *job, uint32_t replica)
{
	(void)ctx, (void)job, (void)replica;
	return true;
}

/* A majority_only replica starts only after being wanted for hold_ms in a
 * row; one that already runs, and other jobs, pass at once; a gap in the
 * wanting starts the wait again. */
START_TEST(majority_only_start_is_held)
{
	world w;
	world_init(&w);
	add(&w, "singleton", 1, 1, "majority_only", NULL);
	add(&w, "web", 1, 1, "keep_running", NULL);
	cn_rt_want base[2] = {{"singleton", 0, 1, &w.j.v[0].spec}, {"web", 0, 1, &w.j.v[1].spec}};
	cn_rt_want v[2];
	cn_sched_hold h = {0};
	const uint64_t hold = 5000;
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h, v, 2, 100000, hold, runs_nothing, NULL), 1);
	ck_assert_str_eq(v[0].job, "web");
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h, v, 2, 104999, hold, runs_nothing, NULL), 1);
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h, v, 2, 105000, hold, runs_nothing, NULL), 2);
	/* not wanted once: the hold starts over */
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h, v + 1, 1, 106000, hold, runs_nothing, NULL), 1);
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h, v, 2, 107000, hold, runs_nothing, NULL), 1);
	ck_assert_uint_eq(h.n, 1);
	/* already running here (e.g. adopted after an agent restart): no wait */
	cn_sched_hold h2 = {0};
	memcpy(v, base, sizeof v);
	ck_assert_uint_eq(cn_sched_hold_filter(&h2, v, 2, 200000, hold, runs_everything, NULL), 2);
	ck_assert_uint_eq(h.held, 3);
	cn_sched_hold_free(&h);
	cn_sched_hold_free(&h2);
	world_free(&w);
}
END_TEST

START_TEST(bad_specs_name_the_field)
{
	world w;
	world_init(&w);
	uint8_t buf[64];
	cn_mp_writer mw;
	size_t n;
	cn_mp_writer_init(&mw, buf, sizeof buf);
	cn_mp_put_map(&mw, 1);
	cn_mp_put_cstr(&mw, "replicas");
	cn_mp_put_cstr(&mw, "three");
	ck_assert_int_eq(cn_mp_writer_end(&mw, &n), 0);
	cn_jobspec_err e = {0};
	ck_assert_int_ne(cn_sched_jobs_add(&w.j, "bad", 1, buf, n, true, &e), 0);
	ck_assert_uint_eq(w.j.n, 0);
	ck_assert_msg(strstr(e.path, "replicas") != NULL || strstr(e.path, "command") != NULL,
		      "error path '%s'", e.path);
	world_free(&w);
}
END_TEST

/* A job of `replicas` replicas that each ask for one GPU. */
static void gpu_job(world *w, const char *name, unsigned priority, uint32_t replicas)
{
	uint8_t buf[512];
	cn_mp_writer mw;
	size_t n = 0;
	cn_mp_writer_init(&mw, buf, sizeof buf);
	cn_mp_put_map(&mw, 4);
	cn_mp_put_cstr(&mw, "replicas");
	cn_mp_put_uint(&mw, replicas);
	cn_mp_put_cstr(&mw, "priority");
	cn_mp_put_uint(&mw, priority);
	cn_mp_put_cstr(&mw, "command");
	cn_mp_put_array(&mw, 1);
	cn_mp_put_cstr(&mw, "/bin/true");
	cn_mp_put_cstr(&mw, "resources");
	cn_mp_put_map(&mw, 1);
	cn_mp_put_cstr(&mw, "accelerators");
	cn_mp_put_map(&mw, 1);
	cn_mp_put_cstr(&mw, "gpu");
	cn_mp_put_uint(&mw, 1);
	ck_assert_int_eq(cn_mp_writer_end(&mw, &n), 0);
	cn_jobspec_err e;
	ck_assert_int_eq(cn_sched_jobs_add(&w->j, name, 1, buf, n, true, &e), 0);
}

START_TEST(rendering_lists_jobs_and_moves)
{
	world w;
	world_init(&w);
	add(&w, "web", 7, 3, "keep_running", NULL);
	cn_place_result before, after;
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &before), 0);
	add(&w, "batch", 8, 2, "keep_running", NULL);
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &after), 0);
	cn_buf out;
	cn_buf_init(&out, 1 << 20);
	cn_sched_render_plan(&before, &after, false, &out);
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "2 to start, 0 to stop, 3 kept"));
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "+ batch on n"));
	cn_buf_reset(&out);
	cn_sched_render_plan(&before, &after, true, &out);
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "\"started\":2"));
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "\"action\":\"start\""));
	cn_buf_reset(&out);
	cn_sched_render_jobs(&after, true, &out);
	ck_assert_int_eq(cn_buf_str(&out)[0], '[');
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "\"name\":\"web\""));
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "\"no_room\":0"));
	cn_place_result_free(&after);
	/* Two members have one GPU each. "train" (priority 90, one replica)
	 * takes one; "infer" (priority 10, two replicas) gets the other and
	 * says the rest finds no free accelerator. */
	for (int i = 0; i < 2; i++) {
		w.m[i].meta.n_accel = 1;
		snprintf(w.m[i].meta.accel[0].kind, sizeof w.m[i].meta.accel[0].kind, "gpu");
		w.m[i].meta.accel[0].count = 1;
	}
	gpu_job(&w, "train", 90, 1);
	gpu_job(&w, "infer", 10, 2);
	ck_assert_int_eq(cn_sched_place(w.pl, &w.v, &w.j, &after), 0);
	const cn_place_job_out *jo = cn_place_result_job(&after, "infer");
	ck_assert_ptr_nonnull(jo);
	ck_assert_uint_eq(jo->n_eligible, 2);
	ck_assert_uint_eq(jo->n_placed, 1);
	ck_assert_uint_eq(jo->n_no_room, 1);
	const cn_place_job_out *jt = cn_place_result_job(&after, "train");
	ck_assert_uint_eq(jt->n_placed, 1);
	ck_assert_str_ne(after.members[after.slots[jt->first]].name,
			 after.members[after.slots[jo->first]].name);
	cn_buf_reset(&out);
	cn_sched_render_jobs(&after, false, &out);
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "(1 without a free accelerator)"));
	cn_buf_reset(&out);
	cn_sched_render_jobs(&after, true, &out);
	ck_assert_ptr_nonnull(strstr(cn_buf_str(&out), "\"no_room\":1"));
	cn_place_result_free(&after);
	cn_buf_reset(&out);
	cn_buf_free(&out);
	cn_place_result_free(&before);
	world_free(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");
	tcase_add_test(tc, every_replica_falls_to_exactly_one_member);
	tcase_add_test(tc, down_member_renumbers_no_survivor);
	tcase_add_test(tc, placement_rule_follows_the_oldest_live_member);
	tcase_add_test(tc, majority_only_runs_only_with_quorum);
	tcase_add_test(tc, fenced_member_runs_no_majority_only);
	tcase_add_test(tc, majority_only_start_is_held);
	tcase_add_test(tc, bad_specs_name_the_field);
	tcase_add_test(tc, rendering_lists_jobs_and_moves);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
