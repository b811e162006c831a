/* Benchmark (prints figures, asserts nothing about speed): how fast the
 * decoders reject hostile inputs that declare huge sizes, and how fast they
 * decode real messages. Also prints the process's peak RSS, which shows
 * that declared sizes never turn into allocations.
 * Usage: bench_decode [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "util/err.h"
#include "wire/msg.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void run(const char *what, const uint8_t *in, size_t len, long iters)
{
	cn_msg m;
	int rc = 0;
	double t0 = now_s();
	for (long i = 0; i < iters; i++) {
		cn_mp_reader r;
		cn_mp_reader_init(&r, in, len);
		rc = cn_msg_decode(&r, &m, NULL);
	}
	double dt = now_s() - t0;
	printf("%-44s %8.1f ns/op  result %s\n", what, dt / (double)iters * 1e9,
	       rc == 0 ? "ok" : cn_strerror(rc));
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1000000;
	if (iters <= 0 || iters > 1000000000L) {
		fprintf(stderr, "iterations: 1..1e9\n");
		return 2;
	}
	/* A map declaring 0xbfffff28 entries (the example). */
	static const uint8_t huge_map[] = {0xdf, 0xbf, 0xff, 0xff, 0x28};
	/* [1, 5, {2: <str declaring 4 GiB>}] */
	static const uint8_t huge_str[] = {0x93, 0x01, 0x05, 0x81, 0x02, 0xdb, 0xff, 0xff, 0xff, 0xff};
	/* [1, 5, {4: {1: <map declaring 2^32-1 labels>}}] */
	static const uint8_t huge_labels[] = {0x93, 0x01, 0x05, 0x81, 0x04, 0x81, 0x01,
					      0xdf, 0xff, 0xff, 0xff, 0xff};
	/* An array declaring 2^32-1 elements. */
	static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	run("hostile: map declaring 3.2e9 entries", huge_map, sizeof huge_map, iters);
	run("hostile: string declaring 4 GiB", huge_str, sizeof huge_str, iters);
	run("hostile: labels map declaring 4.3e9", huge_labels, sizeof huge_labels, iters);
	run("hostile: array declaring 4.3e9", huge_array, sizeof huge_array, iters);

	/* Real messages, encoded by our own encoder. */
	uint8_t buf[CN_DATAGRAM_PLAIN_MAX];
	size_t len;
	cn_mp_writer w;
	cn_msg ping = {.version = CN_PROTO_VERSION, .type = CN_MSG_PING};
	ping.u.ping.seq = 77;
	strcpy(ping.u.ping.target, "edge-042");
	strcpy(ping.u.ping.source, "edge-007");
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_msg_encode(&w, &ping);
	if (cn_mp_writer_end(&w, &len) == 0)
		run("ping (valid)", buf, len, iters);
	cn_msg alive = {.version = CN_PROTO_VERSION, .type = CN_MSG_ALIVE};
	strcpy(alive.u.alive.name, "edge-042");
	alive.u.alive.incarnation = 9;
	cn_addr_parse("10.1.2.3:7980", 0, &alive.u.alive.addr);
	alive.u.alive.vmin = alive.u.alive.vmax = 1;
	strcpy(alive.u.alive.meta.arch, "arm64");
	strcpy(alive.u.alive.meta.os, "linux");
	alive.u.alive.meta.cpus = 4;
	alive.u.alive.meta.battery_pct = 255;
	for (int i = 0; i < 8; i++) {
		char k[16], v[16];
		snprintf(k, sizeof k, "key%d", i);
		snprintf(v, sizeof v, "value-%d", i);
		cn_meta_set_label(&alive.u.alive.meta, k, v);
	}
	cn_mp_writer_init(&w, buf, sizeof buf);
	cn_msg_encode(&w, &alive);
	if (cn_mp_writer_end(&w, &len) == 0)
		run("alive with 8 labels (valid)", buf, len, iters);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS after %ld iterations of each: %ld KiB\n", iters, ru.ru_maxrss);
	return 0;
}
