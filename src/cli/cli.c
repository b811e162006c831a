#include "cli/cli.h"
#include "cli/polfile.h"
#include "core/doc.h"
#include "core/trust.h"
#include "crypto/crypto.h"
#include "crypto/identity.h"
#include "crypto/keytext.h"
#include "util/err.h"
#include "wire/admin.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_NOAGENT = 3 };

void cn_cli_usage(void)
{
	fputs("usage: canopy COMMAND [options]\n"
	      "\n"
	      "  agent --name NAME --bind HOST:PORT --data-dir DIR [--seed HOST:PORT]...\n"
	      "        [--advertise HOST:PORT] [--keyring FILE] [--label KEY=VALUE]...\n"
	      "        [--config FILE] [--metrics 127.0.0.1:PORT] [--set TUNABLE=VALUE]...\n"
	      "        [--trust FILE]\n"
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
	      "  operator keygen --out FILE       new operator key: FILE (secret, 0600) and\n"
	      "                                   FILE.pub (a line for the agents' --trust file)\n"
	      "  policy apply -f FILE [--dry-run] [--key FILE]\n"
	      "                                   sign and apply the YAML documents in FILE (- stdin)\n"
	      "  policy get KIND/NAME [--version V] [--json]\n"
	      "  policy list [--kind KIND] [--json]\n"
	      "  policy history KIND/NAME [--json]  kept versions, oldest first\n"
	      "  policy rollback KIND/NAME --to VERSION [--key FILE]\n"
	      "                                   write the body of an old version again\n"
	      "  policy delete KIND/NAME [--key FILE]\n"
	      "  audit [--verify] [--json]        who changed what, where, when\n"
	      "  jobs [--json]                    placement of every job; instances here\n"
	      "  job status NAME [--json]         where each replica runs, its state\n"
	      "  rollout status NAME [--json]     staged rollout of NAME's version: stage, replicas\n"
	      "  plan -f FILE [--json]            where the file's jobs would run, what\n"
	      "                                   would move (nothing is applied)\n"
	      "  logs JOB [REPLICA]               output of this device's replicas of JOB\n"
	      "\n"
	      "Agent location: --data-dir DIR, $CANOPY_DATA_DIR, or --socket PATH.\n"
	      "Operator key for policy writes: --key FILE or $CANOPY_OPERATOR_KEY.\n"
	      "Agent --trust FILE: root operator public keys (as in FILE.pub of operator\n"
	      "keygen); without it the agent refuses every policy write.\n",
	      stderr);
}

typedef struct cli_opts {
	const char *data_dir;
	const char *socket;
	bool json;
	long count;
	/* policy, operator, audit */
	const char *file;     /* -f */
	const char *key;      /* --key */
	const char *kind;     /* --kind */
	const char *version;  /* --version */
	const char *to;       /* --to */
	const char *out;      /* --out */
	bool dry_run, verify;
	bool unsigned_;       /* --unsigned: send without a signature (tests) */
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

/* One request to the agent. On 0, out holds the agent's status and text
 * (free it with reply_free); otherwise an exit code, with the message
 * already printed. */
typedef struct agent_reply {
	int status;
	const char *text;
	size_t len;
	void *msg;
	size_t msg_len;
} agent_reply;

static int request(const cli_opts *o, const char *cmd, const char *const *args, uint32_t n_args,
		   uint32_t flags, agent_reply *out)
{
	char path[4200], url[4300];
	memset(out, 0, sizeof *out);
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
	cn_admin_req_encode(&w, cmd, args, n_args, flags);
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
	nng_close(s);
	rc = cn_admin_reply_decode(reply, reply_len, &out->status, &out->text, &out->len);
	if (rc != 0) {
		fprintf(stderr, "canopy: malformed reply from agent: %s\n", cn_strerror(rc));
		nng_free(reply, reply_len);
		return EXIT_REFUSED;
	}
	out->msg = reply;
	out->msg_len = reply_len;
	return 0;
}

static void reply_free(agent_reply *r)
{
	if (r->msg)
		nng_free(r->msg, r->msg_len);
	r->msg = NULL;
}

/* Print a reply: text on stdout when it succeeded, on stderr when not. */
static void reply_print(const agent_reply *r, const char *prefix)
{
	FILE *out = r->status == 0 ? stdout : stderr;
	if (r->status != 0 && r->len == 0)
		fprintf(stderr, "canopy: %s%s\n", prefix, cn_strerror(r->status));
	if (r->len > 0)
		fputs(prefix, out);
	fwrite(r->text, 1, r->len, out);
	if (r->len > 0 && r->text[r->len - 1] != '\n')
		fputc('\n', out);
}

static int call(const cli_opts *o, const char *cmd, const char *const *args, uint32_t n_args)
{
	agent_reply r;
	int rc = request(o, cmd, args, n_args, o->json ? CN_ADMIN_JSON : 0, &r);
	if (rc != 0)
		return rc;
	reply_print(&r, "");
	rc = r.status == 0 ? 0 : (r.status == CN_EINVAL ? EXIT_USAGE : EXIT_REFUSED);
	reply_free(&r);
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

/* ---- operator keys ------------------------------------------------------------ */

/* Create path exclusively with mode, write data. 0 or an errno. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return errno;
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w <= 0) {
			int e = errno ? errno : EIO;
			close(fd);
			unlink(path);
			return e;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(path);
		return EIO;
	}
	return 0;
}

static int operator_keygen(const cli_opts *o)
{
	char pub_path[4200];
	if (o->out == NULL) {
		fprintf(stderr, "canopy: usage: canopy operator keygen --out FILE\n");
		return EXIT_USAGE;
	}
	if (snprintf(pub_path, sizeof pub_path, "%s.pub", o->out) >= (int)sizeof pub_path) {
		fprintf(stderr, "canopy: --out: path too long\n");
		return EXIT_USAGE;
	}
	struct stat st;
	if (stat(o->out, &st) == 0 || stat(pub_path, &st) == 0) {
		fprintf(stderr, "canopy: operator keygen: %s exists; refusing to overwrite a key\n",
			stat(o->out, &st) == 0 ? o->out : pub_path);
		return EXIT_REFUSED;
	}
	cn_sigkey k;
	uint8_t blob[CN_SIGKEY_BLOB_LEN];
	size_t len = 0;
	char pub[CN_SIGKEY_TEXT_SIZE + 1], id[CN_TRUST_KEY_ID_SIZE];
	if (cn_sigkey_generate(&k) != 0 || cn_sigkey_to_blob(&k, blob, sizeof blob, &len) != 0) {
		cn_sigkey_wipe(&k);
		fprintf(stderr, "canopy: operator keygen: libsodium failed\n");
		return EXIT_REFUSED;
	}
	cn_sigkey_public_encode(cn_sigkey_public(&k), pub);
	cn_trust_key_id(cn_sigkey_public(&k), id);
	cn_sigkey_wipe(&k);
	int e = write_new(o->out, blob, len, 0600);
	sodium_memzero(blob, sizeof blob);
	if (e != 0) {
		fprintf(stderr, "canopy: operator keygen: %s: %s\n", o->out, strerror(e));
		return EXIT_REFUSED;
	}
	size_t pl = strlen(pub);
	pub[pl] = '\n';
	if ((e = write_new(pub_path, pub, pl + 1, 0644)) != 0) {
		fprintf(stderr, "canopy: operator keygen: %s: %s\n", pub_path, strerror(e));
		unlink(o->out);
		return EXIT_REFUSED;
	}
	pub[pl] = '\0';
	printf("secret key: %s (mode 0600; keep it off the devices)\n"
	       "public key: %s (add this line to the agents' --trust file, or grant it a role)\n"
	       "key id:     %s\n%s\n", o->out, pub_path, id, pub);
	return 0;
}

/* The operator key from --key or $CANOPY_OPERATOR_KEY. */
static int load_operator_key(const cli_opts *o, cn_sigkey *k)
{
	const char *path = o->key ? o->key : getenv("CANOPY_OPERATOR_KEY");
	if (path == NULL || *path == '\0') {
		fprintf(stderr, "canopy: a policy write is signed with an operator key: give --key FILE "
				"or set CANOPY_OPERATOR_KEY (make one with: canopy operator keygen --out "
				"FILE)\n");
		return EXIT_USAGE;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "canopy: operator key %s: %s\n", path, strerror(errno));
		return EXIT_REFUSED;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "canopy: warning: operator key %s is readable by others (mode %03o); "
				"chmod 600 it\n", path, (unsigned)(st.st_mode & 0777));
	uint8_t blob[CN_SIGKEY_BLOB_MAX + 1];
	ssize_t n = read(fd, blob, sizeof blob);
	close(fd);
	char why[CN_SIGKEY_WHY_MAX];
	int rc = n < 0 || (size_t)n > CN_SIGKEY_BLOB_MAX
			 ? CN_EINVAL
			 : cn_sigkey_from_blob(k, blob, (size_t)n, why, sizeof why);
	sodium_memzero(blob, sizeof blob);
	if (rc != 0) {
		fprintf(stderr, "canopy: operator key %s: %s\n", path,
			n < 0 ? strerror(errno) : (size_t)n > CN_SIGKEY_BLOB_MAX ? "too large" : why);
		return EXIT_REFUSED;
	}
	return 0;
}

/* ---- policy writes ---------------------------------------------------------------- */

/* A write in progress: what the CLI signs (the agent never sees the key). */
typedef struct writer {
	const cli_opts *o;
	cn_sigkey key;
	bool have_key;
	char *b64;        /* base64 of the encoded document */
	uint8_t *enc;     /* CN_DOC_WIRE_MAX */
} writer;

static int writer_open(writer *w, const cli_opts *o)
{
	memset(w, 0, sizeof *w);
	w->o = o;
	if (cn_crypto_init() != 0) {
		fprintf(stderr, "canopy: libsodium failed to initialise\n");
		return EXIT_REFUSED;
	}
	if (!o->unsigned_) {
		int rc = load_operator_key(o, &w->key);
		if (rc != 0)
			return rc;
		w->have_key = true;
	}
	w->enc = malloc(CN_DOC_WIRE_MAX);
	w->b64 = malloc(sodium_base64_ENCODED_LEN(CN_DOC_WIRE_MAX, sodium_base64_VARIANT_ORIGINAL));
	return w->enc && w->b64 ? 0 : EXIT_REFUSED;
}

static void writer_close(writer *w)
{
	cn_sigkey_wipe(&w->key);
	free(w->enc);
	free(w->b64);
}

/* Ask the agent for a version and its node name ("VERSION WRITER"). */
static int stamp(const cli_opts *o, uint64_t *version, char writer_name[CN_DOC_WRITER_MAX + 1])
{
	const char *args[] = {"stamp"};
	agent_reply r;
	int rc = request(o, "policy", args, 1, 0, &r);
	if (rc != 0)
		return rc;
	char text[160];
	snprintf(text, sizeof text, "%.*s", (int)(r.len < sizeof text - 1 ? r.len : sizeof text - 1),
		 r.text);
	if (r.status != 0 || sscanf(text, "%" SCNu64 " %64s", version, writer_name) != 2) {
		reply_print(&r, "policy stamp: ");
		reply_free(&r);
		return EXIT_REFUSED;
	}
	reply_free(&r);
	return 0;
}

/* Stamp, build, sign and send one document (op "apply" or "check").
 * where (may be NULL) prefixes refusals ("file:line: "). Prints the
 * agent's answer. Returns an exit code. */
static int write_doc(writer *w, const char *op, const char *kind, const char *name, bool deleted,
		     const uint8_t *body, size_t body_len, const char *where)
{
	uint64_t version = 0;
	char node[CN_DOC_WRITER_MAX + 1], why[256];
	int rc = stamp(w->o, &version, node);
	if (rc != 0)
		return rc;
	static const uint8_t no_key[CN_DOC_KEY_BYTES];
	cn_doc d;
	if (cn_doc_init(&d, kind, name, version, node, w->have_key ? cn_sigkey_public(&w->key) : no_key,
			deleted, deleted ? NULL : body, deleted ? 0 : body_len, why, sizeof why) != 0) {
		fprintf(stderr, "canopy: %s%s/%s: %s\n", where ? where : "", kind, name, why);
		return EXIT_REFUSED;
	}
	if (w->have_key) {
		uint8_t canon[CN_DOC_CANON_MAX];
		size_t cl = 0;
		if (cn_doc_canonical(&d, canon, sizeof canon, &cl) != 0)
			return EXIT_REFUSED;
		cn_sigkey_sign(&w->key, canon, cl, d.sig);
	}
	size_t len = 0;
	if (cn_doc_encode(&d, w->enc, CN_DOC_WIRE_MAX, &len) != 0) {
		fprintf(stderr, "canopy: %s%s/%s: document too large\n", where ? where : "", kind, name);
		return EXIT_REFUSED;
	}
	sodium_bin2base64(w->b64, sodium_base64_ENCODED_LEN(CN_DOC_WIRE_MAX,
							   sodium_base64_VARIANT_ORIGINAL),
			  w->enc, len, sodium_base64_VARIANT_ORIGINAL);
	const char *args[] = {op, w->b64};
	agent_reply r;
	if ((rc = request(w->o, "policy", args, 2, 0, &r)) != 0)
		return rc;
	char prefix[CN_POLFILE_WHERE_MAX + 4] = "";
	if (r.status != 0 && where)
		snprintf(prefix, sizeof prefix, "%s", where);
	reply_print(&r, prefix);
	rc = r.status == 0 ? 0 : EXIT_REFUSED;
	reply_free(&r);
	return rc;
}

static int policy_apply(const cli_opts *o)
{
	if (o->file == NULL) {
		fprintf(stderr, "canopy: usage: canopy policy apply -f FILE [--dry-run] [--key FILE]\n");
		return EXIT_USAGE;
	}
	cn_polfile_doc *docs = NULL;
	size_t n = 0;
	char err[CN_POLFILE_ERR_MAX];
	int rc;
	if (strcmp(o->file, "-") == 0) {
		/* -f -: the documents on standard input (a pipeline, a template). */
		size_t cap = 4 * (size_t)CN_DOC_BODY_MAX, len = 0;
		char *text = malloc(cap + 1);
		if (text == NULL)
			return EXIT_REFUSED;
		len = fread(text, 1, cap + 1, stdin);
		if (len > cap) {
			fprintf(stderr, "canopy: <stdin>: larger than %zu bytes\n", cap);
			free(text);
			return EXIT_REFUSED;
		}
		rc = cn_polfile_parse(text, len, "<stdin>", &docs, &n, err, sizeof err);
		free(text);
	} else {
		rc = cn_polfile_load(o->file, &docs, &n, err, sizeof err);
	}
	if (rc != 0) {
		fprintf(stderr, "canopy: %s\n", err[0] ? err : cn_strerror(rc));
		return EXIT_REFUSED;
	}
	writer w;
	rc = writer_open(&w, o);
	size_t done = 0, refused = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char where[CN_POLFILE_WHERE_MAX + 4];
		snprintf(where, sizeof where, "%s: ", docs[i].where);
		int one = write_doc(&w, o->dry_run ? "check" : "apply", docs[i].kind, docs[i].name,
				    false, docs[i].body, docs[i].body_len, where);
		if (one == EXIT_NOAGENT || one == EXIT_USAGE) {
			rc = one;
		} else if (one != 0) {
			refused++;
			if (!o->dry_run)
				rc = one; /* later documents may depend on this one: stop */
		} else {
			done++;
		}
	}
	if (n > 1 && rc != EXIT_NOAGENT)
		fprintf(refused ? stderr : stdout, "%zu of %zu document(s) %s%s\n", done, n,
			o->dry_run ? "would apply" : "applied",
			refused && !o->dry_run && done + refused < n ? " (stopped at the first refusal)" : "");
	writer_close(&w);
	cn_polfile_free(docs, n);
	return rc ? rc : refused ? EXIT_REFUSED : 0;
}

static int policy_rollback(const cli_opts *o, const char *target)
{
	if (o->to == NULL) {
		fprintf(stderr, "canopy: usage: canopy policy rollback KIND/NAME --to VERSION [--key FILE]\n");
		return EXIT_USAGE;
	}
	writer w;
	int rc = writer_open(&w, o);
	if (rc != 0) {
		writer_close(&w);
		return rc;
	}
	const char *args[] = {"raw", target, o->to};
	agent_reply r;
	if ((rc = request(o, "policy", args, 3, 0, &r)) != 0) {
		writer_close(&w);
		return rc;
	}
	if (r.status != 0) {
		reply_print(&r, "");
		rc = r.status == CN_EINVAL ? EXIT_USAGE : EXIT_REFUSED;
		reply_free(&r);
		writer_close(&w);
		return rc;
	}
	size_t len = 0;
	cn_doc old;
	if (sodium_base642bin(w.enc, CN_DOC_WIRE_MAX, r.text, r.len, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    cn_doc_decode(w.enc, len, &old, NULL) != 0) {
		fprintf(stderr, "canopy: policy rollback: the agent sent a malformed document\n");
		rc = EXIT_REFUSED;
	} else if (old.deleted) {
		fprintf(stderr, "canopy: policy rollback: version %s of %s is a deletion; to delete, "
				"use canopy policy delete %s\n", o->to, target, target);
		rc = EXIT_REFUSED;
	}
	reply_free(&r);
	uint8_t *body = NULL;
	if (rc == 0 && (body = malloc(old.body_len)) == NULL)
		rc = EXIT_REFUSED;
	if (rc == 0) {
		/* old.body points into w.enc, which write_doc reuses: copy. */
		char kind[CN_DOC_KIND_MAX + 1], name[CN_DOC_NAME_MAX + 1];
		memcpy(body, old.body, old.body_len);
		memcpy(kind, old.kind, sizeof kind);
		memcpy(name, old.name, sizeof name);
		printf("rolling back %s to the body of version %s\n", target, o->to);
		rc = write_doc(&w, "apply", kind, name, false, body, old.body_len, NULL);
	}
	free(body);
	writer_close(&w);
	return rc;
}

static int policy_delete(const cli_opts *o, const char *target)
{
	const char *slash = strchr(target, '/');
	char kind[CN_DOC_KIND_MAX + 1];
	if (slash == NULL || (size_t)(slash - target) > CN_DOC_KIND_MAX) {
		fprintf(stderr, "canopy: '%s' is not KIND/NAME (e.g. config/app-a)\n", target);
		return EXIT_USAGE;
	}
	memcpy(kind, target, (size_t)(slash - target));
	kind[slash - target] = '\0';
	writer w;
	int rc = writer_open(&w, o);
	if (rc == 0)
		rc = write_doc(&w, "apply", kind, slash + 1, true, NULL, 0, NULL);
	writer_close(&w);
	return rc;
}

static int policy_main(const cli_opts *o, const char *const *args, uint32_t n_args)
{
	const char *sub = n_args ? args[0] : "";
	bool one_target = n_args == 2;
	bool writes = !strcmp(sub, "apply") || !strcmp(sub, "rollback") || !strcmp(sub, "delete");
	if (!writes && (o->key || o->dry_run || o->unsigned_)) {
		fprintf(stderr, "canopy: --key, --dry-run: only for policy apply, rollback, delete\n");
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "apply") && n_args == 1)
		return policy_apply(o);
	if (!strcmp(sub, "rollback") && one_target)
		return policy_rollback(o, args[1]);
	if (!strcmp(sub, "delete") && one_target)
		return policy_delete(o, args[1]);
	if (!strcmp(sub, "get") && one_target) {
		const char *a[] = {"get", args[1], o->version};
		return call(o, "policy", a, o->version ? 3 : 2);
	}
	if (!strcmp(sub, "list") && n_args == 1) {
		const char *a[] = {"list", o->kind};
		return call(o, "policy", a, o->kind ? 2 : 1);
	}
	if (!strcmp(sub, "history") && one_target) {
		const char *a[] = {"history", args[1]};
		return call(o, "policy", a, 2);
	}
	fprintf(stderr, "canopy: usage: canopy policy apply -f FILE [--dry-run] [--key FILE]\n"
			"       canopy policy get KIND/NAME [--version V] [--json]\n"
			"       canopy policy list [--kind KIND] [--json]\n"
			"       canopy policy history KIND/NAME [--json]\n"
			"       canopy policy rollback KIND/NAME --to VERSION [--key FILE]\n"
			"       canopy policy delete KIND/NAME [--key FILE]\n");
	return EXIT_USAGE;
}

/* `canopy plan -f FILE`: the file's job documents (parsed and checked as
 * for policy apply) go to the agent as NAME HEXSPEC pairs; the agent
 * places them with the stored jobs and shows what would move. Nothing is
 * signed and nothing is written. */
static int plan(const cli_opts *o)
{
	if (o->file == NULL) {
		fprintf(stderr, "canopy: usage: canopy plan -f FILE [--json]\n");
		return EXIT_USAGE;
	}
	cn_polfile_doc *docs;
	size_t n;
	char err[CN_POLFILE_ERR_MAX];
	int rc = cn_polfile_load(o->file, &docs, &n, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "canopy: %s\n", err);
		return EXIT_REFUSED;
	}
	const char *args[CN_ADMIN_ARGS_MAX];
	char *hex[CN_ADMIN_ARGS_MAX / 2];
	uint32_t n_args = 0, n_hex = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (strcmp(docs[i].kind, "job") != 0)
			continue; /* only jobs have a placement */
		if (n_args + 2 > CN_ADMIN_ARGS_MAX || 2 * docs[i].body_len >= CN_ADMIN_ARG_MAX) {
			fprintf(stderr, "canopy: %s: too many or too large jobs to plan at once\n",
				docs[i].where);
			rc = EXIT_USAGE;
			break;
		}
		char *h = malloc(2 * docs[i].body_len + 1);
		if (h == NULL) {
			rc = EXIT_REFUSED;
			break;
		}
		for (size_t k = 0; k < docs[i].body_len; k++)
			snprintf(h + 2 * k, 3, "%02x", docs[i].body[k]);
		h[2 * docs[i].body_len] = 0;
		hex[n_hex++] = h;
		args[n_args++] = docs[i].name;
		args[n_args++] = h;
	}
	if (rc == 0 && n_args == 0) {
		fprintf(stderr, "canopy: %s holds no job document\n", o->file);
		rc = EXIT_USAGE;
	}
	if (rc == 0)
		rc = call(o, "plan", args, n_args);
	for (uint32_t i = 0; i < n_hex; i++)
		free(hex[i]);
	cn_polfile_free(docs, n);
	return rc;
}

int cn_cli_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"count", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"file", required_argument, NULL, 'f'},
		{"key", required_argument, NULL, 'K'},
		{"kind", required_argument, NULL, 'k'},
		{"version", required_argument, NULL, 'V'},
		{"to", required_argument, NULL, 'T'},
		{"out", required_argument, NULL, 'o'},
		{"dry-run", no_argument, NULL, 'D'},
		{"verify", no_argument, NULL, 'v'},
		{"unsigned", no_argument, NULL, 'U'}, /* tests: the agent must refuse it */
		{0, 0, 0, 0},
	};
	cli_opts o = {0};
	const char *cmd = argv[0];
	int c;
	/* Options may follow the arguments (`canopy keys install KEY --json`). */
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.file = optarg; break;
		case 'K': o.key = optarg; break;
		case 'k': o.kind = optarg; break;
		case 'V': o.version = optarg; break;
		case 'T': o.to = optarg; break;
		case 'o': o.out = optarg; break;
		case 'D': o.dry_run = true; break;
		case 'v': o.verify = true; break;
		case 'U': o.unsigned_ = true; break;
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

	bool policy_opts = o.file || o.key || o.kind || o.version || o.to || o.dry_run ||
			   o.unsigned_;
	if (!strcmp(cmd, "plan")) {
		if (n_args != 0 || o.key || o.kind || o.version || o.to || o.dry_run || o.unsigned_) {
			fprintf(stderr, "canopy: usage: canopy plan -f FILE [--json]\n");
			return EXIT_USAGE;
		}
		return plan(&o);
	}
	if (strcmp(cmd, "policy") != 0 && policy_opts) {
		fprintf(stderr, "canopy: -f, --key, --kind, --version, --to, --dry-run belong to "
				"canopy policy\n");
		return EXIT_USAGE;
	}
	if ((o.out && strcmp(cmd, "operator") != 0) || (o.verify && strcmp(cmd, "audit") != 0)) {
		fprintf(stderr, "canopy: --out belongs to canopy operator keygen, --verify to canopy "
				"audit\n");
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "operator")) {
		if (n_args != 1 || strcmp(args[0], "keygen") != 0) {
			fprintf(stderr, "canopy: usage: canopy operator keygen --out FILE\n");
			return EXIT_USAGE;
		}
		return operator_keygen(&o);
	}
	if (!strcmp(cmd, "policy"))
		return policy_main(&o, args, n_args);
	if (!strcmp(cmd, "audit")) {
		if (n_args != 0) {
			fprintf(stderr, "canopy: usage: canopy audit [--verify] [--json]\n");
			return EXIT_USAGE;
		}
		const char *a[] = {"verify"};
		return call(&o, "audit", a, o.verify ? 1 : 0);
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
	} else if (!strcmp(cmd, "jobs")) {
		if (n_args != 0) {
			fprintf(stderr, "canopy: usage: canopy jobs [--json]\n");
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "job")) {
		if (n_args != 2 || strcmp(args[0], "status") != 0) {
			fprintf(stderr, "canopy: usage: canopy job status NAME [--json]\n");
			return EXIT_USAGE;
		}
		return call(&o, "job-status", args + 1, 1);
	} else if (!strcmp(cmd, "rollout")) {
		if (n_args != 2 || strcmp(args[0], "status") != 0) {
			fprintf(stderr, "canopy: usage: canopy rollout status NAME [--json]\n");
			return EXIT_USAGE;
		}
		return call(&o, "rollout-status", args + 1, 1);
	} else if (!strcmp(cmd, "logs")) {
		if (n_args < 1 || n_args > 2) {
			fprintf(stderr, "canopy: usage: canopy logs JOB [REPLICA]\n");
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
