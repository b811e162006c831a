#include "agent/metrics.h"
#include "util/addr.h"
#include "util/err.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cn_metrics {
	nng_http_server *srv;
	nng_mtx *mtx;
	char *text; /* guarded by mtx */
	size_t len;
};

static void handle(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	cn_metrics *m = nng_http_handler_get_data(h);
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_mtx_lock(m->mtx);
	int rc = nng_http_res_copy_data(res, m->text ? m->text : "", m->len);
	nng_mtx_unlock(m->mtx);
	if (rc == 0)
		rc = nng_http_res_set_header(res, "Content-Type", "text/plain; version=0.0.4");
	if (rc != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rc);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static bool loopback(const cn_addr *a)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return (a->family == CN_ADDR_V4 && a->ip[0] == 127) ||
	       (a->family == CN_ADDR_V6 && memcmp(a->ip, v6lo, 16) == 0);
}

int cn_metrics_start(const char *addr, cn_metrics **out, char *err, size_t errcap)
{
	cn_addr a;
	char urltext[80];
	*out = NULL;
	if (cn_addr_parse(addr, 0, &a) != 0 || !loopback(&a)) {
		snprintf(err, errcap, "--metrics %s: must be a loopback IP:PORT (127.0.0.1:9980, [::1]:9980)",
			 addr);
		return CN_EINVAL;
	}
	char host[CN_ADDR_STR_MAX];
	cn_addr_format(&a, host, sizeof host);
	snprintf(urltext, sizeof urltext, "http://%s", host);
	cn_metrics *m = calloc(1, sizeof *m);
	if (m == NULL)
		return CN_ENOMEM;
	nng_url *url = NULL;
	nng_http_handler *h = NULL;
	int rc = nng_mtx_alloc(&m->mtx);
	if (rc == 0)
		rc = nng_url_parse(&url, urltext);
	if (rc == 0)
		rc = nng_http_server_hold(&m->srv, url);
	if (rc == 0)
		rc = nng_http_handler_alloc(&h, "/metrics", handle);
	if (rc == 0)
		rc = nng_http_handler_set_method(h, "GET");
	if (rc == 0)
		rc = nng_http_handler_set_data(h, m, NULL);
	if (rc == 0) {
		rc = nng_http_server_add_handler(m->srv, h);
		if (rc == 0)
			h = NULL; /* the server owns it now */
	}
	if (rc == 0)
		rc = nng_http_server_start(m->srv);
	if (h)
		nng_http_handler_free(h);
	if (url)
		nng_url_free(url);
	if (rc != 0) {
		snprintf(err, errcap, "--metrics %s: %s", addr, nng_strerror(rc));
		cn_metrics_stop(m);
		return CN_EIO;
	}
	*out = m;
	return 0;
}

void cn_metrics_publish(cn_metrics *m, const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return; /* keep serving the previous snapshot */
	memcpy(copy, text, len);
	copy[len] = '\0';
	nng_mtx_lock(m->mtx);
	char *old = m->text;
	m->text = copy;
	m->len = len;
	nng_mtx_unlock(m->mtx);
	free(old);
}

void cn_metrics_stop(cn_metrics *m)
{
	if (m == NULL)
		return;
	if (m->srv) {
		nng_http_server_stop(m->srv);
		nng_http_server_release(m->srv);
	}
	if (m->mtx)
		nng_mtx_free(m->mtx);
	free(m->text);
	free(m);
}
