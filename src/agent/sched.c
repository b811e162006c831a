/* Scheduling glue; see sched.h. */
#include "agent/sched.h"

#include <stdlib.h>
#include <string.h>

#include "agent/rollout.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/mp.h"

int cn_sched_jobs_add(cn_sched_jobs *j, const char *name, uint64_t version, const uint8_t *spec,
		      size_t len, bool strict, cn_jobspec_err *err)
{
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 8;
		cn_sched_job *v = realloc(j->v, cap * sizeof *v);
		if (v == NULL)
			return CN_ENOMEM;
		j->v = v;
		j->cap = cap;
	}
	/* The decoder reads a whole job document {kind, name, spec}; stored
	 * documents carry the spec alone (kind and name are the document's). */
	size_t cap = len + 64 + strlen(name);
	uint8_t *doc = malloc(cap);
	if (doc == NULL)
		return CN_ENOMEM;
	cn_mp_writer w;
	size_t dl;
	cn_mp_writer_init(&w, doc, cap);
	cn_mp_put_map(&w, 3);
	cn_mp_put_cstr(&w, "kind");
	cn_mp_put_cstr(&w, "job");
	cn_mp_put_cstr(&w, "name");
	cn_mp_put_cstr(&w, name);
	cn_mp_put_cstr(&w, "spec");
	int rc = cn_mp_writer_end(&w, &dl);
	if (rc == 0 && dl + len <= cap) {
		memcpy(doc + dl, spec, len);
		dl += len;
	} else if (rc == 0) {
		rc = CN_ENOSPACE;
	}
	cn_sched_job *out = &j->v[j->n];
	if (rc == 0)
		rc = cn_jobspec_decode(doc, dl, strict, &out->spec, NULL, err);
	free(doc);
	if (rc != 0)
		return rc;
	snprintf(out->name, sizeof out->name, "%s", name);
	out->version = version;
	j->n++;
	return 0;
}

static int load_cb(void *arg, const cn_doc *d)
{
	cn_sched_jobs *j = arg;
	if (d->deleted)
		return 0;
	int rc = cn_sched_jobs_add(j, d->name, d->version, d->body, d->body_len, false, NULL);
	if (rc == CN_ENOMEM)
		return rc;
	j->bad += rc != 0; /* a newer tool's document we cannot read: skipped */
	return 0;
}

int cn_sched_jobs_load(cn_sched_jobs *j, cn_policy *p)
{
	j->n = 0;
	j->bad = 0;
	return cn_policy_list(p, "job", load_cb, j);
}

void cn_sched_jobs_free(cn_sched_jobs *j)
{
	free(j->v);
	memset(j, 0, sizeof *j);
}

int cn_sched_view_load(cn_sched_view *v, const cn_node *n)
{
	size_t count = cn_node_member_count(n);
	cn_sched_view_free(v);
	v->members = malloc((count ? count : 1) * sizeof *v->members);
	v->in = malloc((count ? count : 1) * sizeof *v->in);
	if (v->members == NULL || v->in == NULL) {
		cn_sched_view_free(v);
		return CN_ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		cn_member *m = &v->members[v->n];
		/* Failed and left members too, until they are out: placement
		 * keeps them in its base so that their going moves only their
		 * own replicas (placement.h step 5); the base shrinks when they
		 * are out, by age, at about the same time on every agent. */
		if (cn_node_member_get(n, i, m) != 0 || cn_node_member_out(n, m))
			continue;
		cn_place_member *pm = &v->in[v->n++];
		memset(pm, 0, sizeof *pm);
		pm->name = m->name;
		pm->state = m->state;
		pm->meta = &m->meta;
		pm->has_coord = m->has_coord && cn_place_coord_quantize(&m->coord, &pm->coord);
	}
	v->rule = cn_sched_rule(v->members, v->n);
	return 0;
}

uint8_t cn_sched_rule(const cn_member *members, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((members[i].state == CN_STATE_ALIVE || members[i].state == CN_STATE_SUSPECT) &&
		    members[i].vmax < 2)
			return CN_PLACE_RULE_1;
	return CN_PLACE_RULE_2;
}

void cn_sched_view_free(cn_sched_view *v)
{
	free(v->members);
	free(v->in);
	memset(v, 0, sizeof *v);
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL; /* terminator: "ab"+"c" != "a"+"bc" */
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Placement decides WHICH members run a job; the replica numbers (what
 * the runtime and CANOPY_REPLICA know a replica by) are ours to give.
 * Placement lists the members in preference order, so one member leaving
 * would renumber, and restart, every replica after it. Instead replica r
 * goes to the member, among those not yet numbered, with the highest
 * hash(job, r, member): when one member is replaced, the others keep
 * their numbers unless the newcomer outbids them (a model of 2,000 random
 * replacements: 0.62 survivors renumbered per replacement with 3 replicas,
 * 1.84 with 10; placement's order gave 0.66 and 3.08). The hash is of
 * the member whose place in placement's base the replica holds
 * (result.base_of): a replica redirected off a member that is down takes
 * that member's number, so a failure, a leave or a return renumbers no
 * survivor at all; only a change of the base (a new member, a reap) does
 * as above. Deterministic, so every agent numbers alike. Quadratic, hence
 * only up to REORDER_MAX replicas; bigger jobs keep placement's order. */
enum { REORDER_MAX = 256 };

static void stable_numbers(cn_place_result *r)
{
	uint32_t tmp[REORDER_MAX], tmpb[REORDER_MAX];
	for (size_t k = 0; k < r->n_jobs; k++) {
		const cn_place_job_out *jo = &r->jobs[k];
		uint32_t n = jo->n_placed;
		if (n < 2 || n > REORDER_MAX)
			continue;
		uint32_t *slot = &r->slots[jo->first], *bof = &r->base_of[jo->first];
		memcpy(tmp, slot, n * sizeof *tmp);
		memcpy(tmpb, bof, n * sizeof *tmpb);
		uint64_t base = fnv(0xcbf29ce484222325ULL, jo->name);
		for (uint32_t x = 0; x < n; x++) {
			uint32_t best = UINT32_MAX;
			uint64_t best_h = 0;
			for (uint32_t c = 0; c < n; c++) {
				if (tmp[c] == UINT32_MAX)
					continue;
				uint64_t h = mix(fnv(base ^ mix(x + 1), r->members[tmpb[c]].name));
				if (best == UINT32_MAX || h > best_h) {
					best = c;
					best_h = h;
				}
			}
			slot[x] = tmp[best];
			bof[x] = tmpb[best];
			tmp[best] = UINT32_MAX;
		}
	}
}

int cn_sched_place(cn_placer *pl, const cn_sched_view *v, const cn_sched_jobs *j,
		   cn_place_result *out)
{
	cn_place_job *jobs = malloc((j->n ? j->n : 1) * sizeof *jobs);
	if (jobs == NULL)
		return CN_ENOMEM;
	for (size_t i = 0; i < j->n; i++)
		jobs[i] = (cn_place_job){j->v[i].name, j->v[i].version, &j->v[i].spec};
	cn_place_opts o;
	cn_place_opts_default(&o);
	o.rule = v->rule;
	int rc = cn_place(pl, v->in, v->n, jobs, j->n, &o, out);
	free(jobs);
	if (rc == 0)
		stable_numbers(out);
	return rc;
}

static const cn_sched_job *job_named(const cn_sched_jobs *j, const char *name)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->v[i].name, name) == 0)
			return &j->v[i];
	return NULL;
}

size_t cn_sched_wants(const cn_place_result *r, const cn_sched_jobs *j, const char *self,
		      bool fenced, cn_rt_want *out, size_t cap)
{
	size_t n = 0;
	for (size_t k = 0; k < r->n_jobs; k++) {
		const cn_place_job_out *jo = &r->jobs[k];
		if (jo->majority_only && (!jo->quorum || fenced))
			continue; /* must not run twice: only the majority side runs it */
		const cn_sched_job *sj = job_named(j, jo->name);
		if (sj == NULL)
			continue;
		for (uint32_t x = 0; x < jo->n_placed; x++) {
			if (strcmp(r->members[r->slots[jo->first + x]].name, self) != 0)
				continue;
			if (n < cap)
				out[n] = (cn_rt_want){sj->name, x, sj->version, &sj->spec};
			n++;
		}
	}
	return n;
}

/* ---- majority_only start hold ---------------------------------------- */

size_t cn_sched_hold_filter(cn_sched_hold *h, cn_rt_want *want, size_t n, uint64_t now_ms,
			    uint64_t hold_ms, cn_sched_running_fn running, void *ctx)
{
	/* The new table: one entry per majority_only want, keeping the time
	 * it was first wanted (entries of replicas no longer wanted go). */
	size_t need = 0;
	for (size_t i = 0; i < n; i++)
		need += want[i].spec->partition == CN_JOB_PARTITION_MAJORITY_ONLY;
	cn_sched_hold_ent *next = malloc((need ? need : 1) * sizeof *next);
	size_t kept = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		cn_rt_want *wt = &want[i];
		if (wt->spec->partition != CN_JOB_PARTITION_MAJORITY_ONLY) {
			want[kept++] = *wt;
			continue;
		}
		uint32_t jh = cn_rollout_job_hash(wt->job);
		uint64_t since = now_ms;
		for (size_t e = 0; e < h->n; e++)
			if (h->v[e].job_hash == jh && h->v[e].replica == wt->replica) {
				since = h->v[e].since_ms;
				break;
			}
		if (running != NULL && running(ctx, wt->job, wt->replica) && now_ms >= hold_ms &&
		    since > now_ms - hold_ms)
			since = now_ms - hold_ms; /* already runs here: nothing to wait for */
		if (next != NULL)
			next[m++] = (cn_sched_hold_ent){jh, wt->replica, since};
		if (next != NULL && now_ms - since >= hold_ms)
			want[kept++] = *wt;
		else
			h->held++;
	}
	if (next != NULL) {
		free(h->v);
		h->v = next;
		h->n = m;
		h->cap = need;
	}
	return kept;
}

void cn_sched_hold_free(cn_sched_hold *h)
{
	free(h->v);
	memset(h, 0, sizeof *h);
}

/* ---- renderings ------------------------------------------------------- */

void cn_sched_jobs_json(const cn_place_result *r, cn_json *jw)
{
	cn_json_arr_begin(jw);
	for (size_t k = 0; k < r->n_jobs; k++) {
		const cn_place_job_out *jo = &r->jobs[k];
		cn_json_obj_begin(jw);
		cn_json_kv_str(jw, "name", jo->name);
		cn_json_kv_u64(jw, "version", jo->version == UINT64_MAX ? 0 : jo->version);
		cn_json_kv_bool(jw, "planned", jo->version == UINT64_MAX);
		cn_json_kv_u64(jw, "priority", jo->priority);
		cn_json_kv_bool(jw, "per_node", jo->per_node);
		cn_json_kv_bool(jw, "majority_only", jo->majority_only);
		cn_json_kv_u64(jw, "want", jo->want);
		cn_json_kv_u64(jw, "placed", jo->n_placed);
		cn_json_kv_u64(jw, "eligible", jo->n_eligible);
		cn_json_kv_u64(jw, "no_room", jo->n_no_room);
		cn_json_kv_bool(jw, "quorum", jo->quorum);
		cn_json_key(jw, "members");
		cn_json_arr_begin(jw);
		for (uint32_t x = 0; x < jo->n_placed; x++)
			cn_json_str(jw, r->members[r->slots[jo->first + x]].name);
		cn_json_arr_end(jw);
		cn_json_obj_end(jw);
	}
	cn_json_arr_end(jw);
}

void cn_sched_render_jobs(const cn_place_result *r, bool json, cn_buf *out)
{
	if (json) {
		cn_json jw;
		cn_json_init(&jw, out);
		cn_sched_jobs_json(r, &jw);
		return;
	}
	cn_buf_printf(out, "%-24s %-20s %6s %6s %8s %-6s %s\n", "JOB", "VERSION", "WANT", "PLACED",
		      "ELIGIBLE", "QUORUM", "MEMBERS");
	for (size_t k = 0; k < r->n_jobs; k++) {
		const cn_place_job_out *jo = &r->jobs[k];
		char ver[24];
		if (jo->version == UINT64_MAX) /* cn_sched plan: not stored yet */
			snprintf(ver, sizeof ver, "planned");
		else
			snprintf(ver, sizeof ver, "%llu", (unsigned long long)jo->version);
		cn_buf_printf(out, "%-24s %-20s %6u %6u %8u %-6s ", jo->name, ver, jo->want,
			      jo->n_placed, jo->n_eligible,
			      jo->majority_only ? (jo->quorum ? "yes" : "NO") : "-");
		for (uint32_t x = 0; x < jo->n_placed; x++)
			cn_buf_printf(out, "%s%s", x ? "," : "", r->members[r->slots[jo->first + x]].name);
		if (jo->n_no_room)
			cn_buf_printf(out, "%s(%u without a free accelerator)", jo->n_placed ? " " : "",
				      jo->n_no_room);
		cn_buf_puts(out, "\n");
	}
}

typedef struct plan_ctx {
	bool json;
	cn_json *jw;
	cn_buf *out;
} plan_ctx;

static int plan_move(void *arg, const cn_place_move *mv)
{
	plan_ctx *c = arg;
	const char *what = mv->kind == CN_PLACE_START ? "start" : "stop";
	if (c->json) {
		cn_json_obj_begin(c->jw);
		cn_json_kv_str(c->jw, "action", what);
		cn_json_kv_str(c->jw, "job", mv->job);
		cn_json_kv_str(c->jw, "member", mv->member);
		cn_json_obj_end(c->jw);
	} else {
		cn_buf_printf(c->out, "  %s %s on %s\n", mv->kind == CN_PLACE_START ? "+" : "-", mv->job,
			      mv->member);
	}
	return 0;
}

void cn_sched_render_plan(const cn_place_result *before, const cn_place_result *after,
			  bool json, cn_buf *out)
{
	cn_json jw;
	plan_ctx c = {json, &jw, out};
	cn_place_diff_stats st = {0};
	if (json) {
		cn_json_init(&jw, out);
		cn_json_obj_begin(&jw);
		cn_json_key(&jw, "placement");
		cn_sched_jobs_json(after, &jw);
		cn_json_key(&jw, "moves");
		cn_json_arr_begin(&jw);
		(void)cn_place_diff(before, after, plan_move, &c, &st);
		cn_json_arr_end(&jw);
		cn_json_kv_u64(&jw, "started", st.started);
		cn_json_kv_u64(&jw, "stopped", st.stopped);
		cn_json_kv_u64(&jw, "kept", st.kept);
		cn_json_obj_end(&jw);
		return;
	}
	cn_buf_puts(out, "placement after the change:\n");
	cn_sched_render_jobs(after, false, out);
	cn_buf_puts(out, "moves:\n");
	(void)cn_place_diff(before, after, plan_move, &c, &st);
	cn_buf_printf(out, "%llu to start, %llu to stop, %llu kept (dry run: nothing was changed)\n",
		      (unsigned long long)st.started, (unsigned long long)st.stopped,
		      (unsigned long long)st.kept);
}
