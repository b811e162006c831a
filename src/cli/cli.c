#include "cli/cli.h"
#include "crypto/keytext.h"
#include "util/err.h"
#include "wire/admin.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_NOAGENT = 3 };

void cn_cli_usage(void)
{
	fputs("usage: canopy COMMAND [options]\n"
	      "\n"
	      "  agent --name NAME --bind HOST:PORT --data-dir DIR [--seed HOST:PORT]...\n"
	      "        [--advertise HOST:PORT] [--keyring FILE] [--label KEY=VALUE]...\n"
	      "        [--config FILE] [--metrics 127.0.0.1:PORT] [--set TUNABLE=VALUE]...\n"
	      "                                   run an agent in the foreground\n"
	      "  members [--json]                 the fleet as this agent sees it\n"
	      "  info [--json]                    this agent: identity, counters, keys\n"
	      "  join HOST:PORT...                join through other agents\n"
	      "  leave                            leave the fleet gracefully and stop\n"
	      "  rtt NODE [NODE]                  estimated round trip (network coordinates)\n"
	      "  monitor [--json] [--count N]     stream membership events\n"
	      "  keygen                           print a new cluster key (base64)\n"
	      "  keys list|install KEY|use KEY|remove KEY [--json]\n"
	      "                                   rotate the cluster key ring fleet-wide\n"
	      "\n"
	      "Agent location: --data-dir DIR, $CANOPY_DATA_DIR, or --socket PATH.\n",
	      stderr);
}

typedef struct cli_opts {
	const char *data_dir;
	const char *socket;
	bool json;
	long count;
} cli_opts;

static int socket_path(const cli_opts *o, const char *file, char *out, size_t cap)
{
	const char *dir = o->data_dir ? o->data_dir : getenv("CANOPY_DATA_DIR");
	if (o->socket != NULL && strcmp(file, "admin.sock") == 0) {
		snprintf(out, cap, "%s", o->socket);
		return 0;
	}
	if (o->socket != NULL) {
		/* Sibling of the admin socket. */
		snprintf(out, cap, "%s", o->socket);
		char *slash = strrchr(out, '/');
		size_t base = slash ? (size_t)(slash - out + 1) : 0;
		snprintf(out + base, cap - base, "%s", file);
		return 0;
	}
	if (dir == NULL || *dir == '\0') {
		fprintf(stderr, "canopy: no agent location: use --data-dir DIR, "
				"CANOPY_DATA_DIR, or --socket PATH\n");
		return EXIT_USAGE;
	}
	if (snprintf(out, cap, "%s/%s", dir, file) >= (int)cap) {
		fprintf(stderr, "canopy: data directory path too long\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int call(const cli_opts *o, const char *cmd, const char *const *args, uint32_t n_args)
{
	char path[4200], url[4300];
	int rc = socket_path(o, "admin.sock", path, sizeof path);
	if (rc)
		return rc;
	snprintf(url, sizeof url, "ipc://%s", path);

	size_t cap = CN_ADMIN_REQUEST_MAX;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return EXIT_REFUSED;
	cn_mp_writer w;
	size_t len;
	cn_mp_writer_init(&w, buf, cap);
	cn_admin_req_encode(&w, cmd, args, n_args, o->json ? CN_ADMIN_JSON : 0);
	if (cn_mp_writer_end(&w, &len) != 0) {
		fprintf(stderr, "canopy: arguments too large\n");
		free(buf);
		return EXIT_USAGE;
	}

	nng_socket s;
	int nrc = nng_req0_open(&s);
	if (nrc == 0) {
		nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, CN_ADMIN_REPLY_MAX);
		/* Fleet-wide commands (keys) wait for every member; give them
		 * time, but never hang forever on a wedged agent. */
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 60000);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
		nrc = nng_dial(s, url, NULL, 0);
		if (nrc != 0) {
			fprintf(stderr, "canopy: no agent running at %s (%s)\n", path,
				nng_strerror(nrc));
			nng_close(s);
			free(buf);
			return EXIT_NOAGENT;
		}
	}
	if (nrc == 0)
		nrc = nng_send(s, buf, len, 0);
	free(buf);
	void *reply = NULL;
	size_t reply_len = 0;
	if (nrc == 0)
		nrc = nng_recv(s, &reply, &reply_len, NNG_FLAG_ALLOC);
	if (nrc != 0) {
		fprintf(stderr, "canopy: agent at %s did not answer: %s\n", path, nng_strerror(nrc));
		nng_close(s);
		return nrc == NNG_ECLOSED || nrc == NNG_ECONNREFUSED ? EXIT_NOAGENT : EXIT_REFUSED;
	}
	int status;
	const char *text;
	size_t text_len;
	rc = cn_admin_reply_decode(reply, reply_len, &status, &text, &text_len);
	if (rc != 0) {
		fprintf(stderr, "canopy: malformed reply from agent: %s\n", cn_strerror(rc));
		rc = EXIT_REFUSED;
	} else {
		FILE *out = status == 0 ? stdout : stderr;
		if (status != 0 && text_len == 0)
			fprintf(stderr, "canopy: %s\n", cn_strerror(status));
		fwrite(text, 1, text_len, out);
		if (text_len > 0 && text[text_len - 1] != '\n')
			fputc('\n', out);
		rc = status == 0 ? 0 : (status == CN_EINVAL ? EXIT_USAGE : EXIT_REFUSED);
	}
	nng_free(reply, reply_len);
	nng_close(s);
	return rc;
}

static volatile sig_atomic_t monitor_stop;
static void on_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

static int monitor(const cli_opts *o)
{
	char path[4200], url[4300];
	int rc = socket_path(o, "events.sock", path, sizeof path);
	if (rc)
		return rc;
	snprintf(url, sizeof url, "ipc://%s", path);
	nng_socket s;
	int nrc = nng_sub0_open(&s);
	if (nrc == 0)
		nrc = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	if (nrc == 0)
		nrc = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500);
	if (nrc == 0 && (nrc = nng_dial(s, url, NULL, 0)) != 0) {
		fprintf(stderr, "canopy: no agent running at %s (%s)\n", path, nng_strerror(nrc));
		nng_close(s);
		return EXIT_NOAGENT;
	}
	if (nrc != 0) {
		fprintf(stderr, "canopy: monitor: %s\n", nng_strerror(nrc));
		return EXIT_REFUSED;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	long seen = 0;
	while (!monitor_stop && (o->count <= 0 || seen < o->count)) {
		void *msg = NULL;
		size_t len = 0;
		nrc = nng_recv(s, &msg, &len, NNG_FLAG_ALLOC);
		if (nrc == NNG_ETIMEDOUT)
			continue;
		if (nrc != 0) {
			fprintf(stderr, "canopy: monitor: %s\n", nng_strerror(nrc));
			nng_close(s);
			return EXIT_NOAGENT;
		}
		/* Event = [text_line, json_line]; both strings. */
		cn_mp_reader r;
		uint32_t n, l1, l2;
		const char *t1, *t2;
		cn_mp_reader_init(&r, msg, len);
		if (cn_mp_read_array(&r, &n, 8) == 0 && n >= 2 &&
		    cn_mp_read_str(&r, &t1, &l1, 1 << 20) == 0 &&
		    cn_mp_read_str(&r, &t2, &l2, 1 << 20) == 0) {
			if (o->json)
				printf("%.*s\n", (int)l2, t2);
			else
				printf("%.*s\n", (int)l1, t1);
			fflush(stdout);
			seen++;
		}
		nng_free(msg, len);
	}
	nng_close(s);
	return 0;
}

static int keygen(void)
{
	char text[CN_KEYTEXT_SIZE];
	int rc = cn_keytext_keygen(text);
	if (rc != 0) {
		fprintf(stderr, "canopy: keygen: %s\n", cn_strerror(rc));
		return EXIT_REFUSED;
	}
	printf("%s\n", text);
	return 0;
}

int cn_cli_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"count", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	cli_opts o = {0};
	const char *cmd = argv[0];
	int c;
	/* Options may follow the arguments (`canopy keys install KEY --json`). */
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.data_dir = optarg; break;
		case 's': o.socket = optarg; break;
		case 'j': o.json = true; break;
		case 'c': {
			char *end;
			errno = 0;
			o.count = strtol(optarg, &end, 10);
			if (errno || *end || o.count < 1) {
				fprintf(stderr, "canopy: --count needs a positive number\n");
				return EXIT_USAGE;
			}
			break;
		}
		case 'h': cn_cli_usage(); return 0;
		default: cn_cli_usage(); return EXIT_USAGE;
		}
	}
	const char *const *args = (const char *const *)argv + optind;
	uint32_t n_args = (uint32_t)(argc - optind);
	if (n_args > CN_ADMIN_ARGS_MAX) {
		fprintf(stderr, "canopy: too many arguments\n");
		return EXIT_USAGE;
	}

	if (!strcmp(cmd, "keygen"))
		return n_args == 0 ? keygen() : (cn_cli_usage(), EXIT_USAGE);
	if (!strcmp(cmd, "monitor"))
		return n_args == 0 ? monitor(&o) : (cn_cli_usage(), EXIT_USAGE);
	if (!strcmp(cmd, "members") || !strcmp(cmd, "info") || !strcmp(cmd, "leave")) {
		if (n_args != 0) {
			fprintf(stderr, "canopy: %s takes no arguments\n", cmd);
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "join")) {
		if (n_args == 0) {
			fprintf(stderr, "canopy: join needs at least one HOST:PORT\n");
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "rtt")) {
		if (n_args < 1 || n_args > 2) {
			fprintf(stderr, "canopy: rtt needs NODE [NODE]\n");
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "keys")) {
		bool ok = n_args >= 1 &&
			  ((!strcmp(args[0], "list") && n_args == 1) ||
			   ((!strcmp(args[0], "install") || !strcmp(args[0], "use") ||
			     !strcmp(args[0], "remove")) && n_args == 2));
		if (!ok) {
			fprintf(stderr, "canopy: usage: canopy keys list|install KEY|use KEY|remove KEY\n");
			return EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "canopy: unknown command '%s'\n", cmd);
		cn_cli_usage();
		return EXIT_USAGE;
	}
	return call(&o, cmd, args, n_args);
}
