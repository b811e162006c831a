/* Prometheus text exposition on loopback (the metrics plane).
 *
 * NNG's HTTP server answers on its own threads, which must never touch
 * node state (design Rule 2). So the event loop renders the whole page
 * into a snapshot once a second and hands it over under a mutex; the
 * HTTP handler only copies the latest snapshot. */
#ifndef CN_AGENT_METRICS_H
#define CN_AGENT_METRICS_H

#include <stddef.h>

typedef struct cn_metrics cn_metrics;

/* Serve GET /metrics on addr ("127.0.0.1:PORT" or "[::1]:PORT"; loopback
 * only). Returns 0, CN_EINVAL (not loopback), CN_EIO (bind failed). */
int cn_metrics_start(const char *addr, cn_metrics **out, char *err, size_t errcap);
/* Replace the snapshot (copied). Called by the event loop only. */
void cn_metrics_publish(cn_metrics *m, const char *text, size_t len);
void cn_metrics_stop(cn_metrics *m);

#endif
