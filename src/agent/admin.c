/* Admin commands: what `canopy members|info|join|leave|rtt|keys` do inside
 * the agent, and how their answers look (text for people, JSON for tools).
 * Field names in the JSON are a public interface: add, never rename. */
#include "agent/agent.h"

#include <assert.h>
#include "agent/workloads.h"
#include "core/psync.h"
#include "crypto/keytext.h"
#include "util/err.h"
#include "util/json.h"
#include "wire/admin.h"
#include "wire/keyop.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *power_name(uint8_t p)
{
	return p == CN_POWER_MAINS ? "mains" : p == CN_POWER_BATTERY ? "battery" : "unknown";
}

static int by_name(const void *x, const void *y)
{
	return strcmp(((const cn_member *)x)->name, ((const cn_member *)y)->name);
}

/* Members sorted by name; caller frees. */
static cn_member *sorted_members(const cn_agent *a, size_t *n_out)
{
	size_t n = cn_node_member_count(a->node);
	cn_member *v = calloc(n ? n : 1, sizeof *v);
	if (v == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (cn_node_member_get(a->node, i, &v[k]) == 0)
			k++;
	qsort(v, k, sizeof *v, by_name);
	*n_out = k;
	return v;
}

static void json_member(cn_json *j, const cn_agent *a, const cn_member *m)
{
	char addr[CN_ADDR_STR_MAX];
	cn_addr_format(&m->addr, addr, sizeof addr);
	cn_json_obj_begin(j);
	cn_json_kv_str(j, "name", m->name);
	cn_json_kv_str(j, "addr", addr);
	cn_json_kv_str(j, "state", cn_member_state_name(m->state));
	cn_json_kv_u64(j, "incarnation", m->incarnation);
	cn_json_kv_u64(j, "meta_version", m->meta_version);
	cn_json_key(j, "labels");
	cn_json_obj_begin(j);
	for (uint8_t i = 0; i < m->meta.n_labels; i++)
		cn_json_kv_str(j, m->meta.labels[i].key, m->meta.labels[i].value);
	cn_json_obj_end(j);
	cn_json_key(j, "capacity");
	cn_json_obj_begin(j);
	cn_json_kv_str(j, "arch", m->meta.arch);
	cn_json_kv_str(j, "os", m->meta.os);
	cn_json_kv_u64(j, "cpus", m->meta.cpus);
	cn_json_kv_u64(j, "memory_mb", m->meta.mem_mb);
	cn_json_key(j, "accelerators");
	cn_json_obj_begin(j);
	for (uint8_t i = 0; i < m->meta.n_accel; i++)
		cn_json_kv_u64(j, m->meta.accel[i].kind, m->meta.accel[i].count);
	cn_json_obj_end(j);
	cn_json_obj_end(j);
	cn_json_key(j, "health");
	cn_json_obj_begin(j);
	cn_json_kv_f64(j, "load", m->meta.load_milli / 1000.0);
	cn_json_kv_u64(j, "mem_free_mb", m->meta.mem_free_mb);
	cn_json_kv_str(j, "power", power_name(m->meta.power));
	cn_json_key(j, "battery_pct");
	if (m->meta.battery_pct <= 100)
		cn_json_u64(j, m->meta.battery_pct);
	else
		cn_json_null(j);
	cn_json_obj_end(j);
	cn_json_key(j, "protocol");
	cn_json_arr_begin(j);
	cn_json_u64(j, m->vmin);
	cn_json_u64(j, m->vmax);
	cn_json_arr_end(j);
	double rtt;
	cn_member self;
	cn_node_self(a->node, &self);
	cn_json_key(j, "rtt_ms");
	if (strcmp(self.name, m->name) != 0 && cn_node_rtt_ms(a->node, self.name, m->name, &rtt) == 0)
		cn_json_f64(j, rtt);
	else
		cn_json_null(j);
	cn_json_obj_end(j);
}

static int cmd_members(cn_agent *a, bool json)
{
	size_t n;
	cn_member *v = sorted_members(a, &n);
	if (v == NULL)
		return CN_ENOMEM;
	cn_buf *out = &a->reply;
	if (json) {
		cn_json j;
		cn_json_init(&j, out);
		cn_json_arr_begin(&j);
		for (size_t i = 0; i < n; i++)
			json_member(&j, a, &v[i]);
		cn_json_arr_end(&j);
		cn_buf_puts(out, "\n");
	} else {
		cn_buf_printf(out, "%-20s %-22s %-8s %6s %-7s %4s %7s %5s %-7s %s\n", "NAME", "ADDRESS",
			      "STATE", "INC", "ARCH", "CPUS", "MEM_MB", "LOAD", "POWER", "LABELS");
		for (size_t i = 0; i < n; i++) {
			const cn_member *m = &v[i];
			char addr[CN_ADDR_STR_MAX];
			cn_addr_format(&m->addr, addr, sizeof addr);
			cn_buf_printf(out, "%-20s %-22s %-8s %6llu %-7s %4u %7u %5.2f %-7s ", m->name, addr,
				      cn_member_state_name(m->state), (unsigned long long)m->incarnation,
				      m->meta.arch[0] ? m->meta.arch : "-", m->meta.cpus, m->meta.mem_mb,
				      m->meta.load_milli / 1000.0, power_name(m->meta.power));
			for (uint8_t l = 0; l < m->meta.n_labels; l++)
				cn_buf_printf(out, "%s%s=%s", l ? "," : "", m->meta.labels[l].key,
					      m->meta.labels[l].value);
			cn_buf_puts(out, m->meta.n_labels ? "\n" : "-\n");
		}
	}
	free(v);
	return out->err;
}

size_t cn_agent_counters(const cn_agent *a, cn_counter out[CN_COUNTERS_MAX])
{
	const cn_node_stats *st = cn_node_stats_get(a->node);
	static const cn_policy_stats none;
	const cn_policy_stats *ps = a->policy ? cn_policy_get_stats(a->policy) : &none;
	const cn_counter all[] = {
		{"datagrams_in", st->datagrams_in}, {"datagrams_out", st->datagrams_out},
		{"bytes_in", st->bytes_in}, {"bytes_out", st->bytes_out},
		{"msgs_in", st->msgs_in}, {"msgs_out", st->msgs_out},
		{"decode_errors", st->decode_errors}, {"unknown_types", st->unknown_types},
		{"unknown_keys", st->unknown_keys}, {"old_versions", st->old_versions},
		{"probes", st->probes}, {"indirect_probes", st->indirect_probes}, {"acks", st->acks},
		{"nacks_in", st->nacks_in}, {"probe_failures", st->probe_failures},
		{"suspicions", st->suspicions}, {"refutations", st->refutations},
		{"deaths_declared", st->deaths_declared}, {"streams_out", st->streams_out},
		{"stream_failures", st->stream_failures}, {"pushpulls_served", st->pushpulls_served},
		{"gossip_sent", st->gossip_sent}, {"gossip_dropped", st->gossip_dropped},
		{"misdirected", st->misdirected}, {"members_refused", st->members_refused},
		{"outputs_dropped", st->outputs_dropped}, {"streams_in", st->streams_in},
		{"unsealable", a->unsealable}, {"unknown_key_id", a->unknown_key},
		{"send_errors", a->send_errors}, {"admin_refused", a->admin_refused},
		{"keysyncs_sent", a->keysyncs_sent}, {"keysyncs_applied", a->keysyncs_applied},
		{"revoked_dropped", a->revoked_dropped},
		{"policy_applied_local", ps->applied_local},
		{"policy_applied_remote", ps->applied_remote},
		{"policy_duplicate", ps->duplicate}, {"policy_stale", ps->stale},
		{"policy_expired", ps->expired}, {"policy_refused_invalid", ps->refused_invalid},
		{"policy_refused_perm", ps->refused_perm},
		{"policy_refused_future", ps->refused_future},
		{"policy_refused_full", ps->refused_full}, {"policy_retracted", ps->retracted},
		{"policy_collected", ps->collected}, {"policy_audit_remote", ps->audit_remote},
		{"policy_audit_refused", ps->audit_refused}, {"policy_wiped", a->policy_wiped},
	};
	size_t n = sizeof all / sizeof all[0];
	_Static_assert(sizeof all / sizeof all[0] <= CN_COUNTERS_MAX - 32, "counter table");
	memcpy(out, all, sizeof all);
	const cn_psync_stats *ps2 = cn_node_psync_stats(a->node);
	if (ps2 != NULL) {
		const cn_counter rep[] = {
			{"policy_announces_in", ps2->announces_in},
			{"policy_fetches_out", ps2->fetches_out},
			{"policy_fetch_failures", ps2->fetch_failures},
			{"policy_docs_fetched", ps2->docs_fetched},
			{"policy_docs_refused", ps2->docs_refused},
			{"policy_syncs_out", ps2->syncs_out},
			{"policy_syncs_served", ps2->syncs_served},
			{"policy_audit_added", ps2->audit_added},
			{"policy_sync_decode_errors", ps2->decode_errors},
		};
		memcpy(out + n, rep, sizeof rep);
		n += sizeof rep / sizeof rep[0];
	}
	if (a->workloads != NULL) {
		cn_workloads_counter wc[16];
		size_t k = cn_workloads_counters(a->workloads, wc, 16);
		for (size_t i = 0; i < k && n < CN_COUNTERS_MAX; i++)
			out[n++] = (cn_counter){wc[i].name, wc[i].value};
	}
	assert(n <= CN_COUNTERS_MAX);
	return n;
}

void cn_agent_render_metrics(const cn_agent *a, cn_buf *out)
{
	cn_member self;
	cn_node_self(a->node, &self);
	static const struct {
		uint8_t state;
		const char *name;
	} states[] = {{CN_STATE_ALIVE, "alive"}, {CN_STATE_SUSPECT, "suspect"},
		      {CN_STATE_DEAD, "failed"}, {CN_STATE_LEFT, "left"}};
	cn_buf_puts(out, "# HELP canopy_members Members this agent knows, by state.\n"
			 "# TYPE canopy_members gauge\n");
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
		cn_buf_printf(out, "canopy_members{state=\"%s\"} %zu\n", states[i].name,
			      cn_node_count_state(a->node, states[i].state));
	cn_buf_printf(out, "# HELP canopy_health_score Lifeguard local health (0 is healthy).\n"
			   "# TYPE canopy_health_score gauge\ncanopy_health_score %u\n"
			   "# TYPE canopy_incarnation gauge\ncanopy_incarnation %llu\n"
			   "# TYPE canopy_keys gauge\ncanopy_keys %zu\n",
		      cn_node_health_score(a->node), (unsigned long long)self.incarnation,
		      cn_keyring_count(&a->ring));
	if (a->policy)
		cn_buf_printf(out, "# HELP canopy_policy_documents Policy names held (tombstones "
				   "included).\n# TYPE canopy_policy_documents gauge\n"
				   "canopy_policy_documents %u\n"
				   "# TYPE canopy_policy_root_keys gauge\ncanopy_policy_root_keys %u\n",
			      cn_policy_names(a->policy), cn_policy_trust(a->policy)->n_roots);
	cn_counter c[CN_COUNTERS_MAX];
	size_t n = cn_agent_counters(a, c);
	for (size_t i = 0; i < n; i++)
		cn_buf_printf(out, "# TYPE canopy_%s_total counter\ncanopy_%s_total %llu\n", c[i].name,
			      c[i].name, (unsigned long long)c[i].value);
}

static int cmd_info(cn_agent *a, bool json)
{
	cn_member self;
	cn_node_self(a->node, &self);
	char addr[CN_ADDR_STR_MAX];
	cn_addr_format(&self.addr, addr, sizeof addr);
	cn_keyring_entry keys[CN_KEYRING_MAX];
	size_t n_keys = cn_keyring_list(&a->ring, keys);
	size_t alive = cn_node_count_state(a->node, CN_STATE_ALIVE);
	size_t suspect = cn_node_count_state(a->node, CN_STATE_SUSPECT);
	size_t failed = cn_node_count_state(a->node, CN_STATE_DEAD);
	size_t left = cn_node_count_state(a->node, CN_STATE_LEFT);
	cn_buf *out = &a->reply;
	cn_counter counters[CN_COUNTERS_MAX];
	size_t n_counters = cn_agent_counters(a, counters);
	if (json) {
		cn_json j;
		cn_json_init(&j, out);
		cn_json_obj_begin(&j);
		cn_json_kv_str(&j, "name", self.name);
		cn_json_kv_str(&j, "node_id", a->node_id_hex);
		cn_json_kv_str(&j, "addr", addr);
		cn_json_kv_str(&j, "state", cn_member_state_name(self.state));
		cn_json_kv_u64(&j, "incarnation", self.incarnation);
		cn_json_kv_u64(&j, "health_score", cn_node_health_score(a->node));
		cn_json_kv_str(&j, "data_dir", a->opts.data_dir);
		cn_json_key(&j, "protocol");
		cn_json_obj_begin(&j);
		cn_json_kv_u64(&j, "min", CN_PROTO_VERSION_MIN);
		cn_json_kv_u64(&j, "max", CN_PROTO_VERSION_MAX);
		cn_json_obj_end(&j);
		cn_json_key(&j, "members");
		cn_json_obj_begin(&j);
		cn_json_kv_u64(&j, "alive", alive);
		cn_json_kv_u64(&j, "suspect", suspect);
		cn_json_kv_u64(&j, "failed", failed);
		cn_json_kv_u64(&j, "left", left);
		cn_json_obj_end(&j);
		cn_json_key(&j, "keys");
		cn_json_arr_begin(&j);
		for (size_t i = 0; i < n_keys; i++) {
			char id[9];
			snprintf(id, sizeof id, "%08x", (unsigned)keys[i].id);
			cn_json_obj_begin(&j);
			cn_json_kv_str(&j, "id", id);
			cn_json_kv_bool(&j, "primary", keys[i].primary);
			cn_json_obj_end(&j);
		}
		cn_json_arr_end(&j);
		if (a->policy) {
			uint8_t root[CN_DOC_HASH_BYTES];
			char hex[2 * CN_DOC_HASH_BYTES + 1];
			cn_policy_digest_root(a->policy, root);
			sodium_bin2hex(hex, sizeof hex, root, sizeof root);
			cn_json_key(&j, "policy");
			cn_json_obj_begin(&j);
			cn_json_kv_u64(&j, "documents", cn_policy_names(a->policy));
			cn_json_kv_u64(&j, "root_keys", cn_policy_trust(a->policy)->n_roots);
			cn_json_kv_u64(&j, "roles", cn_policy_trust(a->policy)->n_grants);
			cn_json_kv_u64(&j, "revocations", cn_policy_trust(a->policy)->n_revoked);
			cn_json_kv_str(&j, "digest", hex);
			cn_json_obj_end(&j);
		}
		cn_json_key(&j, "stats");
		cn_json_obj_begin(&j);
		for (size_t i = 0; i < n_counters; i++)
			cn_json_kv_u64(&j, counters[i].name, counters[i].value);
		cn_json_obj_end(&j);
		cn_json_obj_end(&j);
		cn_buf_puts(out, "\n");
	} else {
		cn_buf_printf(out, "name:          %s\nnode id:       %s\naddress:       %s\n"
			      "state:         %s\nincarnation:   %llu\nhealth score:  %u (0 is healthy)\n"
			      "data dir:      %s\nprotocol:      %d..%d\n"
			      "members:       %zu alive, %zu suspect, %zu failed, %zu left\nkeys:         ",
			      self.name, a->node_id_hex, addr, cn_member_state_name(self.state),
			      (unsigned long long)self.incarnation, cn_node_health_score(a->node),
			      a->opts.data_dir, CN_PROTO_VERSION_MIN, CN_PROTO_VERSION_MAX, alive, suspect,
			      failed, left);
		for (size_t i = 0; i < n_keys; i++)
			cn_buf_printf(out, " %08x%s", (unsigned)keys[i].id, keys[i].primary ? " (primary)" : "");
		cn_buf_puts(out, "\n");
		if (a->unknown_key)
			cn_buf_printf(out, "warning:       %llu packets sealed with key %08x, which this agent "
				      "lacks: its key ring is out of date\n",
				      (unsigned long long)a->unknown_key, (unsigned)a->last_unknown_key_id);
		if (a->policy)
			cn_buf_printf(out, "policy:        %u document(s), %u root key(s)%s, %u role(s), "
				      "%u revocation(s)\n", cn_policy_names(a->policy),
				      cn_policy_trust(a->policy)->n_roots,
				      cn_policy_trust(a->policy)->n_roots ? "" : " (no --trust: writes refused)",
				      cn_policy_trust(a->policy)->n_grants,
				      cn_policy_trust(a->policy)->n_revoked);
		cn_buf_puts(out, "counters:\n");
		for (size_t i = 0; i < n_counters; i++)
			cn_buf_printf(out, "  %-24s %llu\n", counters[i].name, (unsigned long long)counters[i].value);
	}
	return out->err;
}

static int cmd_join(cn_agent *a, const cn_admin_req *req, uint64_t now_ms)
{
	cn_addr seeds[CN_ADMIN_ARGS_MAX];
	for (uint32_t i = 0; i < req->n_args; i++) {
		char text[256];
		snprintf(text, sizeof text, "%.*s", (int)req->arg_len[i], req->args[i]);
		if (cn_addr_parse(text, CN_AGENT_PORT_DEFAULT, &seeds[i]) != 0) {
			cn_buf_printf(&a->reply, "join: '%s' is not an address (IP:PORT or [IPv6]:PORT)", text);
			return CN_EINVAL;
		}
	}
	int rc = cn_node_join(a->node, seeds, req->n_args, now_ms);
	if (rc == 0)
		cn_buf_printf(&a->reply, "joining through %u address(es)", req->n_args);
	else
		cn_buf_printf(&a->reply, "join: %s", cn_strerror(rc));
	return rc;
}

static int cmd_rtt(cn_agent *a, const cn_admin_req *req, bool json)
{
	char x[CN_NAME_MAX + 1], y[CN_NAME_MAX + 1];
	cn_member self;
	cn_node_self(a->node, &self);
	snprintf(x, sizeof x, "%.*s", (int)req->arg_len[0], req->args[0]);
	if (req->n_args == 2)
		snprintf(y, sizeof y, "%.*s", (int)req->arg_len[1], req->args[1]);
	else
		snprintf(y, sizeof y, "%s", self.name);
	double ms;
	int rc = cn_node_rtt_ms(a->node, x, y, &ms);
	if (rc != 0) {
		cn_buf_printf(&a->reply, "rtt: no coordinate for %s or %s yet (unknown member, or no "
			      "probe has reached it)", x, y);
		return rc;
	}
	if (json)
		cn_buf_printf(&a->reply, "{\"a\":\"%s\",\"b\":\"%s\",\"rtt_ms\":%.3f}\n", x, y, ms);
	else
		cn_buf_printf(&a->reply, "estimated round trip %s <-> %s: %.3f ms\n", x, y, ms);
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int cmd_keys(cn_agent *a, const cn_admin_req *req, uint64_t now_ms)
{
	char sub[16];
	snprintf(sub, sizeof sub, "%.*s", (int)req->arg_len[0], req->args[0]);
	cn_keyop *k = &a->keyop;
	memset(k->ids, 0, sizeof k->ids);
	memset(k->holders, 0, sizeof k->holders);
	memset(k->primaries, 0, sizeof k->primaries);
	k->n_ids = 0;
	k->asked = k->answered = k->failed = 0;
	cn_buf_reset(&k->failures);
	k->flags = req->flags;
	if (!strcmp(sub, "list")) {
		k->op = CN_KEYOP_LIST;
	} else {
		k->op = !strcmp(sub, "install") ? CN_KEYOP_INSTALL
			: !strcmp(sub, "use")   ? CN_KEYOP_USE
			: !strcmp(sub, "remove") ? CN_KEYOP_REMOVE
						 : 0;
		if (k->op == 0 || req->n_args != 2) {
			cn_buf_printf(&a->reply, "usage: canopy keys list|install KEY|use KEY|remove KEY");
			return CN_EINVAL;
		}
		if (cn_keytext_decode(req->args[1], req->arg_len[1], k->key) != 0) {
			cn_buf_printf(&a->reply, "keys %s: KEY must be 44 characters of base64 encoding "
				      "32 bytes (as printed by canopy keygen)", sub);
			return CN_EINVAL;
		}
	}
	/* Here first: an operator error (removing the primary, using an
	 * unknown key) stops before it reaches the fleet. */
	char err[CN_KEYOP_ERR_MAX + 1];
	int rc = k->op == CN_KEYOP_LIST ? 0 : cn_agent_keyop_apply(a, k->op, k->key, 0, err, sizeof err);
	if (rc != 0) {
		cn_buf_printf(&a->reply, "keys %s: %s", sub, err);
		sodium_memzero(k->key, sizeof k->key);
		return rc;
	}
	cn_keyring_entry e[CN_KEYRING_MAX];
	size_t n = cn_keyring_list(&a->ring, e);
	for (size_t i = 0; i < n; i++) {
		uint32_t id = e[i].id;
		k->ids[k->n_ids] = id;
		k->holders[k->n_ids] = 1;
		k->primaries[k->n_ids] = e[i].primary ? 1 : 0;
		k->n_ids++;
	}
	k->answered = 1; /* ourselves */
	k->asked = 1;

	cn_keyop_req kreq = {.op = k->op, .has_key = k->op != CN_KEYOP_LIST,
			     .version = k->op == CN_KEYOP_LIST ? 0 : a->ring_version};
	memcpy(kreq.key, k->key, sizeof kreq.key);
	uint8_t buf[512];
	size_t len;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_keyop_req_encode(&w, &kreq);
	sodium_memzero(&kreq, sizeof kreq);
	if (cn_mp_writer_end(&w, &len) != 0)
		return CN_ENOSPACE;
	cn_member self;
	cn_node_self(a->node, &self);
	size_t count = cn_node_member_count(a->node);
	for (size_t i = 0; i < count; i++) {
		cn_member m;
		if (cn_node_member_get(a->node, i, &m) != 0 || m.state != CN_STATE_ALIVE ||
		    !strcmp(m.name, self.name))
			continue;
		k->asked++;
		if (cn_agent_stream_start(a, OWNER_KEYOP, &m.addr, m.name, buf, len, now_ms, NULL) != 0) {
			k->failed++;
			cn_buf_printf(&k->failures, "%s: could not start a request\n", m.name);
		}
	}
	sodium_memzero(buf, sizeof buf);
	k->active = true;
	k->deadline_ms = now_ms + CN_KEYOP_TIMEOUT_MS;
	return CN_EAGAIN;
}

int cn_agent_keyop_finish(cn_agent *a)
{
	cn_keyop *k = &a->keyop;
	cn_buf *out = &a->reply;
	static const char *verbs[] = {"", "listed", "installed", "now primary", "removed", "synced"};
	char keyid[9] = "";
	cn_buf_reset(out);
	if (k->op != CN_KEYOP_LIST)
		snprintf(keyid, sizeof keyid, "%08x", (unsigned)cn_key_id(k->key));
	if (k->flags & CN_ADMIN_JSON) {
		cn_json j;
		cn_json_init(&j, out);
		cn_json_obj_begin(&j);
		cn_json_kv_str(&j, "op", verbs[k->op]);
		if (keyid[0])
			cn_json_kv_str(&j, "key", keyid);
		cn_json_kv_u64(&j, "members", k->asked);
		cn_json_kv_u64(&j, "ok", k->answered);
		cn_json_kv_u64(&j, "failed", k->asked - k->answered);
		cn_json_key(&j, "keys");
		cn_json_arr_begin(&j);
		for (uint32_t i = 0; i < k->n_ids; i++) {
			char id[9];
			snprintf(id, sizeof id, "%08x", (unsigned)k->ids[i]);
			cn_json_obj_begin(&j);
			cn_json_kv_str(&j, "id", id);
			cn_json_kv_u64(&j, "members", k->holders[i]);
			cn_json_kv_u64(&j, "primary_on", k->primaries[i]);
			cn_json_obj_end(&j);
		}
		cn_json_arr_end(&j);
		cn_json_key(&j, "errors");
		cn_json_arr_begin(&j);
		const char *p = cn_buf_str(&k->failures);
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t l = nl ? (size_t)(nl - p) : strlen(p);
			cn_json_strn(&j, p, l);
			p += l + (nl ? 1 : 0);
		}
		cn_json_arr_end(&j);
		cn_json_obj_end(&j);
		cn_buf_puts(out, "\n");
	} else {
		if (k->op == CN_KEYOP_LIST)
			cn_buf_printf(out, "%u of %u members answered\n", k->answered, k->asked);
		else
			cn_buf_printf(out, "key %s %s on %u of %u members\n", keyid, verbs[k->op],
				      k->answered, k->asked);
		for (uint32_t i = 0; i < k->n_ids; i++)
			cn_buf_printf(out, "  key %08x: installed on %u, primary on %u\n",
				      (unsigned)k->ids[i], k->holders[i], k->primaries[i]);
		if (k->failures.len)
			cn_buf_printf(out, "failed:\n%s", cn_buf_str(&k->failures));
	}
	int status = k->answered == k->asked ? 0 : CN_EIO;
	if (status != 0 && !(k->flags & CN_ADMIN_JSON))
		cn_buf_printf(out, "%u member(s) did not apply the change; they catch up when they next "
			      "talk to a member that still shares a key with them\n", k->asked - k->answered);
	return out->err ? out->err : status;
}

/* ---- events ---------------------------------------------------------------- */

static const char *event_name(uint8_t t)
{
	switch (t) {
	case CN_EV_JOIN: return "join";
	case CN_EV_ALIVE: return "alive";
	case CN_EV_SUSPECT: return "suspect";
	case CN_EV_FAILED: return "failed";
	case CN_EV_LEFT: return "left";
	case CN_EV_UPDATE: return "update";
	case CN_EV_REAP: return "reap";
	case CN_EV_KNOWN_FAILED: return "known-failed";
	case CN_EV_KNOWN_LEFT: return "known-left";
	default: return "unknown";
	}
}

void cn_agent_publish_event(cn_agent *a, const cn_event *ev)
{
	char addr[CN_ADDR_STR_MAX], stamp[40];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	cn_addr_format(&ev->addr, addr, sizeof addr);
	cn_buf text, json;
	cn_buf_init(&text, 4096);
	cn_buf_init(&json, 4096);
	cn_buf_printf(&text, "%s member-%s %s %s incarnation %llu", stamp, event_name(ev->type),
		      ev->name, addr, (unsigned long long)ev->incarnation);
	cn_json j;
	cn_json_init(&j, &json);
	cn_json_obj_begin(&j);
	cn_json_kv_str(&j, "time", stamp);
	cn_json_kv_str(&j, "event", event_name(ev->type));
	cn_json_kv_str(&j, "name", ev->name);
	cn_json_kv_str(&j, "addr", addr);
	cn_json_kv_u64(&j, "incarnation", ev->incarnation);
	cn_json_obj_end(&j);
	if (ev->type != CN_EV_UPDATE)
		cn_agent_log("%s", cn_buf_str(&text) + strlen(stamp) + 1);
	uint8_t buf[9000];
	size_t len;
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_mp_put_array(&w, 2);
	cn_mp_put_str(&w, cn_buf_str(&text), text.len);
	cn_mp_put_str(&w, cn_buf_str(&json), json.len);
	nng_msg *m;
	if (cn_mp_writer_end(&w, &len) == 0 && nng_msg_alloc(&m, 0) == 0) {
		/* pub never blocks: a slow monitor loses events, the agent doesn't wait. */
		if (nng_msg_append(m, buf, len) != 0 || nng_sendmsg(a->events, m, NNG_FLAG_NONBLOCK) != 0)
			nng_msg_free(m);
	}
	cn_buf_free(&text);
	cn_buf_free(&json);
}

int cn_agent_admin(cn_agent *a, const cn_admin_req *req, uint64_t now_ms)
{
	bool json = (req->flags & CN_ADMIN_JSON) != 0;
	const char *cmd = req->cmd;
	if (!strcmp(cmd, "members"))
		return cmd_members(a, json);
	if (!strcmp(cmd, "info"))
		return cmd_info(a, json);
	if (!strcmp(cmd, "join") && req->n_args >= 1)
		return cmd_join(a, req, now_ms);
	if (!strcmp(cmd, "leave")) {
		cn_agent_request_leave(a, now_ms);
		cn_buf_printf(&a->reply, "leaving: the agent stops once the fleet has heard");
		return 0;
	}
	if (!strcmp(cmd, "rtt") && req->n_args >= 1 && req->n_args <= 2)
		return cmd_rtt(a, req, json);
	if (!strcmp(cmd, "keys") && req->n_args >= 1)
		return cmd_keys(a, req, now_ms);
	if (!strcmp(cmd, "policy") && req->n_args >= 1)
		return cn_agent_admin_policy(a, req, now_ms);
	if (!strcmp(cmd, "audit"))
		return cn_agent_admin_audit(a, req);
	if (a->workloads != NULL) {
		int rc = cn_workloads_admin(a->workloads, a, req, json, now_ms);
		if (rc != CN_EUNKNOWN)
			return rc;
	}
	cn_buf_printf(&a->reply, "unknown command or wrong arguments: %s", cmd);
	return CN_EINVAL;
}
