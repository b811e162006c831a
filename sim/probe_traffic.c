/* Traffic probe: datagrams and bytes per node, their fates, the largest
 * datagram; bytes.csv (bytes/s per live node: min, mean, max, and one
 * column per node for small runs). */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util/buf.h"
#include "world.h"

enum { PER_NODE_COLUMNS_MAX = 64, CSV_MAX = 64u << 20 };

typedef struct traffic {
	uint64_t fate[FATE_MAX_];
	uint64_t bytes, max_len;
	uint64_t *bytes_node, *bytes_prev;  /* per slot, cumulative / at last sample */
	uint64_t last_sample_us;
	cn_buf csv;
} traffic;

static int t_init(sim_world *w, void **st)
{
	traffic *t = calloc(1, sizeof *t);
	if (t == NULL)
		return -1;
	t->bytes_node = calloc(w->cap, sizeof *t->bytes_node);
	t->bytes_prev = calloc(w->cap, sizeof *t->bytes_prev);
	cn_buf_init(&t->csv, CSV_MAX);
	*st = t;
	if (t->bytes_node == NULL || t->bytes_prev == NULL)
		return -1;
	cn_buf_puts(&t->csv, "t_s,total_bytes_per_s,min,mean,max");
	for (uint32_t i = 0; w->cap <= PER_NODE_COLUMNS_MAX && i < w->cap; i++)
		cn_buf_printf(&t->csv, ",n%u", i);
	cn_buf_puts(&t->csv, "\n");
	return 0;
}

static void t_datagram(void *st, sim_world *w, uint32_t from, uint32_t to, size_t len,
		       uint8_t fate)
{
	(void)w;
	(void)to;
	traffic *t = st;
	t->fate[fate]++;
	t->bytes += len;
	t->bytes_node[from] += len;
	if (len > t->max_len)
		t->max_len = len;
}

static void t_sample(void *st, sim_world *w)
{
	traffic *t = st;
	double dt = (double)(w->now_us - t->last_sample_us) / 1e6;
	t->last_sample_us = w->now_us;
	if (dt <= 0)
		return;
	double mn = 0, mx = 0, sum = 0, total = 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->n_used; i++) {
		double r = (double)(t->bytes_node[i] - t->bytes_prev[i]) / dt;
		total += r;
		if (sim_node_live(w, i)) {
			mn = n == 0 || r < mn ? r : mn;
			mx = n == 0 || r > mx ? r : mx;
			sum += r;
			n++;
		}
	}
	cn_buf_printf(&t->csv, "%.3f,%.0f,%.0f,%.1f,%.0f", (double)w->now_us / 1e6, total, mn,
		      n ? sum / n : 0.0, mx);
	for (uint32_t i = 0; w->cap <= PER_NODE_COLUMNS_MAX && i < w->cap; i++)
		cn_buf_printf(&t->csv, ",%.0f", (double)(t->bytes_node[i] - t->bytes_prev[i]) / dt);
	cn_buf_puts(&t->csv, "\n");
	memcpy(t->bytes_prev, t->bytes_node, w->cap * sizeof *t->bytes_prev);
}

static void t_summary(void *st, sim_world *w, cn_json *j)
{
	traffic *t = st;
	double ns = sim_world_node_seconds(w);
	uint64_t msgs = 0, sent = 0;
	for (uint32_t i = 0; i < w->n_used; i++)
		msgs += sim_node_msgs_out(w, i);
	for (int f = 0; f < FATE_MAX_; f++)
		sent += t->fate[f];
	cn_json_kv_f64(j, "msgs_per_node_s", ns > 0 ? (double)msgs / ns : 0);
	cn_json_kv_f64(j, "bytes_per_node_s", ns > 0 ? (double)t->bytes / ns : 0);
	cn_json_kv_f64(j, "datagrams_per_node_s", ns > 0 ? (double)sent / ns : 0);
	cn_json_kv_u64(j, "max_datagram_bytes", t->max_len);
	cn_json_key(j, "datagrams");
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "sent", sent);
	cn_json_kv_u64(j, "delivered", t->fate[FATE_SENT]);
	cn_json_kv_u64(j, "lost", t->fate[FATE_LOSS]);
	cn_json_kv_u64(j, "partitioned", t->fate[FATE_PARTITION]);
	cn_json_kv_u64(j, "bandwidth_dropped", t->fate[FATE_BANDWIDTH]);
	cn_json_kv_u64(j, "no_address", t->fate[FATE_NOADDR]);
	cn_json_kv_u64(j, "messages", msgs);
	cn_json_kv_u64(j, "bytes", t->bytes);
	cn_json_obj_end(j);
	cn_json_key(j, "streams");
	cn_json_obj_begin(j);
	cn_json_kv_u64(j, "requests", w->streams);
	cn_json_kv_u64(j, "failures", w->stream_failures);
	cn_json_obj_end(j);
}

static int t_write(void *st, sim_world *w, const char *dir)
{
	(void)w;
	traffic *t = st;
	FILE *f = sim_open_csv(dir, "bytes.csv");
	if (f == NULL)
		return -1;
	fwrite(t->csv.data, 1, t->csv.len, f);
	return fclose(f) == 0 ? 0 : -1;
}

static void t_free(void *st)
{
	traffic *t = st;
	if (t == NULL)
		return;
	free(t->bytes_node);
	free(t->bytes_prev);
	cn_buf_free(&t->csv);
	free(t);
}

const sim_probe_ops sim_probe_traffic = {
	.name = "traffic",
	.init = t_init,
	.on_datagram = t_datagram,
	.on_sample = t_sample,
	.summary = t_summary,
	.write_files = t_write,
	.free = t_free,
};
