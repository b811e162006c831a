/* Policy replication; see psync.h for the three paths and their bounds.
 *
 * Stream messages are [version, type, body map] like every stream message
 * (proto/PROTOCOL.md, "Policy replication"):
 *
 *   POLICY_FETCH        {1: [[kind, name], ...]}           <= FETCH_BATCH names
 *   POLICY_FETCH_REPLY  {1: [doc bytes (bin) | nil, ...]}  one per name, in order
 *   POLICY_SYNC         {1: bucket hashes (bin, 256 x 32), 2: first bucket}
 *   POLICY_SYNC_REPLY   {1: [[kind, name, version, writer, hash], ...],
 *                        2: next bucket (256: the listing is complete)}
 *   AUDIT_SYNC          {1: [[node, head seq], ...]}       <= CHAINS_MAX chains
 *   AUDIT_SYNC_REPLY    {1: [entry bytes (bin), ...], 2: more (bool)}
 *
 * Unknown body keys are skipped; a repeated known key is an error. */
#include "core/psync.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "wire/mp.h"

enum {
	BUCKET_BYTES = CN_POLICY_BUCKETS * CN_DOC_HASH_BYTES,
	REFUSED_RING = 256,       /* hashes of documents we refused: not refetched */
	PEER_SLOTS = 32,          /* peers remembered for the SYNC rate limit */
	FILL_EMIT_MAX = 8,        /* announcements per datagram */
	REQ_NONE = 0, REQ_FETCH = 1, REQ_SYNC = 2, REQ_AUDIT = 3,
	HDR_MAX = 16,             /* array + version + type + map headers */
};

typedef struct name_key {
	char kind[CN_DOC_KIND_MAX + 1];
	char name[CN_DOC_NAME_MAX + 1];
} name_key;

typedef struct want {
	name_key k;
	uint64_t version;
	char writer[CN_DOC_WRITER_MAX + 1];
	uint8_t hash[CN_DOC_HASH_BYTES];
	cn_addr src[CN_PSYNC_SOURCES + 1]; /* announcers, then the writer (last resort) */
	uint8_t n_src, cur, tries;
	bool has_writer;                   /* src[n_src - 1] is the writer's */
	bool inflight;
	uint64_t next_ms;
} want;

typedef struct announce {
	cn_msg_policy_announce a;
	uint8_t transmits;
	uint32_t fill_gen;        /* last fill that offered it */
} announce;

typedef struct flight {
	uint32_t tag;             /* 0 = free */
	uint8_t type;             /* REQ_* */
	bool handed;              /* taken by next_request */
	cn_addr to;
	uint8_t *buf;             /* request bytes until handed over */
	size_t len;
	name_key *names;          /* REQ_FETCH: what was asked */
	uint32_t n_names;
} flight;

typedef struct peer_slot {
	cn_addr addr;
	uint64_t sync_ms, audit_ms;
} peer_slot;

struct cn_psync {
	cn_policy *p;
	int64_t wall_offset;
	uint64_t now_ms;
	cn_psync_stats st;

	announce *ann;
	uint32_t n_ann, fill_gen;
	want *wants;
	uint32_t n_wants;
	flight fl[CN_PSYNC_INFLIGHT_MAX];
	uint32_t next_tag;
	uint8_t refused[REFUSED_RING][CN_DOC_HASH_BYTES];
	uint32_t refused_next;
	uint8_t announced[REFUSED_RING][CN_DOC_HASH_BYTES]; /* queued lately: not again */
	uint32_t announced_next;
	peer_slot peers[PEER_SLOTS];
	uint8_t *body;            /* CN_DOC_BODY_MAX scratch for winner lookups */
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t wall(const cn_psync *s)
{
	int64_t w = (int64_t)s->now_ms + s->wall_offset;
	return w > 0 ? (uint64_t)w : 1;
}

static void key_set(name_key *k, const char *kind, const char *name)
{
	snprintf(k->kind, sizeof k->kind, "%s", kind);
	snprintf(k->name, sizeof k->name, "%s", name);
}

static bool key_eq(const name_key *k, const char *kind, const char *name)
{
	return strcmp(k->kind, kind) == 0 && strcmp(k->name, name) == 0;
}

/* The document order of doc.h: (version, writer, document hash). */
static int order(uint64_t va, const char *wa, const uint8_t *ha, uint64_t vb, const char *wb,
		 const uint8_t *hb)
{
	if (va != vb)
		return va < vb ? -1 : 1;
	int c = strcmp(wa, wb);
	if (c != 0)
		return c < 0 ? -1 : 1;
	c = memcmp(ha, hb, CN_DOC_HASH_BYTES);
	return (c > 0) - (c < 0);
}

/* Does our winner for kind/name come at or after (v, w, h)? */
static bool have_at_least(cn_psync *s, const char *kind, const char *name, uint64_t v,
			  const char *w, const uint8_t *h)
{
	cn_doc d;
	if (cn_policy_get(s->p, kind, name, 0, &d, s->body, CN_DOC_BODY_MAX) != 0)
		return false;
	uint8_t mine[CN_DOC_HASH_BYTES];
	cn_doc_hash(&d, mine);
	return order(d.version, d.writer, mine, v, w, h) >= 0;
}

static bool refused(const cn_psync *s, const uint8_t *hash)
{
	for (int i = 0; i < REFUSED_RING; i++)
		if (memcmp(s->refused[i], hash, CN_DOC_HASH_BYTES) == 0)
			return true;
	return false;
}

static void refuse(cn_psync *s, const uint8_t *hash)
{
	memcpy(s->refused[s->refused_next], hash, CN_DOC_HASH_BYTES);
	s->refused_next = (s->refused_next + 1) % REFUSED_RING;
}

static peer_slot *peer_of(cn_psync *s, const cn_addr *a)
{
	peer_slot *oldest = &s->peers[0];
	for (int i = 0; i < PEER_SLOTS; i++) {
		if (cn_addr_eq(&s->peers[i].addr, a))
			return &s->peers[i];
		uint64_t ti = s->peers[i].sync_ms > s->peers[i].audit_ms ? s->peers[i].sync_ms
									 : s->peers[i].audit_ms;
		uint64_t to = oldest->sync_ms > oldest->audit_ms ? oldest->sync_ms : oldest->audit_ms;
		if (ti < to)
			oldest = &s->peers[i];
	}
	memset(oldest, 0, sizeof *oldest);
	oldest->addr = *a;
	return oldest;
}

static void header(cn_mp_writer *w, uint8_t type, uint32_t n_fields)
{
	cn_mp_put_array(w, 3);
	cn_mp_put_uint(w, CN_PROTO_VERSION);
	cn_mp_put_uint(w, type);
	cn_mp_put_map(w, n_fields);
}

/* [version, type, map]: leaves r at the first key; extra array elements
 * after the map are a newer sender's and are not read. */
static int read_header(cn_mp_reader *r, uint8_t want_type, uint32_t *n_fields)
{
	uint32_t n, version, type;
	int rc;
	if ((rc = cn_mp_read_array(r, &n, 16)) != 0)
		return rc;
	if (n < 3)
		return CN_ETRUNC;
	if ((rc = cn_mp_read_u32(r, &version)) != 0)
		return rc;
	if (version < CN_PROTO_VERSION_MIN)
		return CN_EVERSION;
	if ((rc = cn_mp_read_u32(r, &type)) != 0)
		return rc;
	if (type != want_type)
		return CN_EUNKNOWN;
	return cn_mp_read_map(r, n_fields, CN_MSG_FIELDS_MAX);
}

static int read_cstr(cn_mp_reader *r, char *out, size_t cap)
{
	const char *p;
	uint32_t len;
	int rc = cn_mp_read_str(r, &p, &len, (uint32_t)(cap - 1));
	if (rc != 0)
		return rc;
	if (memchr(p, 0, len) != NULL)
		return CN_EINVAL;
	memcpy(out, p, len);
	out[len] = 0;
	return 0;
}

/* A tuple [a, b, ...] of at least `need` elements (a newer sender may add
 * more): read its header; *extra is how many trailing elements to skip
 * after reading the first `need` (tuple_end). */
static int tuple_begin(cn_mp_reader *r, uint32_t need, uint32_t *extra)
{
	uint32_t m;
	int rc = cn_mp_read_array(r, &m, 16);
	if (rc != 0)
		return rc;
	if (m < need)
		return CN_ETRUNC;
	*extra = m - need;
	return 0;
}

static int tuple_end(cn_mp_reader *r, uint32_t extra)
{
	int rc = 0;
	for (uint32_t x = 0; rc == 0 && x < extra; x++)
		rc = cn_mp_skip(r);
	return rc;
}

/* Read a known key once: seen is a bit set over keys 1..31. */
static int once(uint32_t *seen, uint64_t key)
{
	if (*seen & (1u << key))
		return CN_EINVAL;
	*seen |= 1u << key;
	return 0;
}

/* ---- life cycle ------------------------------------------------------- */

int cn_psync_new(cn_policy *p, cn_psync **out)
{
	assert(p != NULL);
	cn_psync *s = calloc(1, sizeof *s);
	if (s == NULL)
		return CN_ENOMEM;
	s->body = malloc(CN_DOC_BODY_MAX);
	if (s->body == NULL) {
		free(s);
		return CN_ENOMEM;
	}
	s->p = p;
	/* An all-zero hash is no document's: the empty ring refuses nothing. */
	*out = s;
	return 0;
}

static void flight_clear(flight *f)
{
	free(f->buf);
	free(f->names);
	memset(f, 0, sizeof *f);
}

void cn_psync_free(cn_psync *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX; i++)
		flight_clear(&s->fl[i]);
	free(s->ann);
	free(s->wants);
	free(s->body);
	free(s);
}

void cn_psync_set_wall_offset(cn_psync *s, int64_t off) { s->wall_offset = off; }
const cn_psync_stats *cn_psync_stats_get(const cn_psync *s) { return &s->st; }
cn_policy *cn_psync_policy(const cn_psync *s) { return s->p; }

void cn_psync_root(const cn_psync *s, uint8_t root[CN_HASH_BYTES])
{
	cn_policy_digest_root(s->p, root);
}

bool cn_psync_stream_type(uint8_t t)
{
	return t >= CN_MSG_POLICY_SYNC && t <= CN_MSG_AUDIT_SYNC_REPLY;
}

/* ---- announcements ---------------------------------------------------- */

static void announce_remove(cn_psync *s, uint32_t i)
{
	assert(i < s->n_ann);
	s->ann[i] = s->ann[--s->n_ann];
}

/* Queue an announcement, once per document: a relayed announcement and
 * the later apply of the fetched body are the same news. */
static bool announce_msg(cn_psync *s, const cn_msg_policy_announce *m)
{
	cn_msg_policy_announce a = *m;
	for (int i = 0; i < REFUSED_RING; i++)
		if (memcmp(s->announced[i], a.hash, CN_DOC_HASH_BYTES) == 0)
			return false;
	memcpy(s->announced[s->announced_next], a.hash, CN_DOC_HASH_BYTES);
	s->announced_next = (s->announced_next + 1) % REFUSED_RING;
	for (uint32_t i = 0; i < s->n_ann; i++) {
		if (strcmp(s->ann[i].a.kind, a.kind) == 0 && strcmp(s->ann[i].a.name, a.name) == 0) {
			s->ann[i].a = a; /* the newer version supersedes */
			s->ann[i].transmits = 0;
			return true;
		}
	}
	if (s->ann == NULL) {
		s->ann = malloc(CN_PSYNC_ANNOUNCE_MAX * sizeof *s->ann);
		if (s->ann == NULL) {
			s->st.announces_dropped++;
			return false;
		}
	}
	if (s->n_ann == CN_PSYNC_ANNOUNCE_MAX) { /* drop the most-sent one */
		uint32_t worst = 0;
		for (uint32_t i = 1; i < s->n_ann; i++)
			if (s->ann[i].transmits > s->ann[worst].transmits)
				worst = i;
		announce_remove(s, worst);
		s->st.announces_dropped++;
	}
	s->ann[s->n_ann++] = (announce){.a = a, .transmits = 0, .fill_gen = 0};
	s->st.announces_queued++;
	return true;
}

void cn_psync_announce(cn_psync *s, const cn_doc *d)
{
	cn_msg_policy_announce a;
	memset(&a, 0, sizeof a);
	snprintf(a.kind, sizeof a.kind, "%s", d->kind);
	snprintf(a.name, sizeof a.name, "%s", d->name);
	a.version = d->version;
	snprintf(a.writer, sizeof a.writer, "%s", d->writer);
	cn_doc_hash(d, a.hash);
	announce_msg(s, &a);
}

bool cn_psync_has_announcements(const cn_psync *s) { return s->n_ann > 0; }

uint32_t cn_psync_fill(cn_psync *s, uint32_t limit, cn_psync_emit_fn emit, void *ctx)
{
	if (s->n_ann == 0)
		return 0;
	if (++s->fill_gen == 0)
		s->fill_gen = 1;
	uint32_t sent = 0;
	while (sent < FILL_EMIT_MAX && s->n_ann > 0) {
		/* fewest sends first; each entry at most once per datagram */
		uint32_t best = UINT32_MAX;
		for (uint32_t i = 0; i < s->n_ann; i++)
			if (s->ann[i].fill_gen != s->fill_gen &&
			    (best == UINT32_MAX || s->ann[i].transmits < s->ann[best].transmits))
				best = i;
		if (best == UINT32_MAX)
			break;
		announce *e = &s->ann[best];
		e->fill_gen = s->fill_gen;
		cn_msg m;
		memset(&m, 0, sizeof m);
		m.version = CN_PROTO_VERSION;
		m.type = CN_MSG_POLICY_ANNOUNCE;
		m.u.announce = e->a;
		if (emit(ctx, &m) == 0)
			break; /* the datagram is full */
		sent++;
		if (++e->transmits >= limit)
			announce_remove(s, best);
	}
	return sent;
}

/* ---- wants ------------------------------------------------------------ */

static want *want_find(cn_psync *s, const char *kind, const char *name)
{
	for (uint32_t i = 0; i < s->n_wants; i++)
		if (key_eq(&s->wants[i].k, kind, name))
			return &s->wants[i];
	return NULL;
}

static void want_remove(cn_psync *s, want *w)
{
	size_t i = (size_t)(w - s->wants);
	assert(i < s->n_wants);
	s->wants[i] = s->wants[--s->n_wants];
}

static void want_add_source(want *w, const cn_addr *from)
{
	for (uint8_t i = 0; i < w->n_src; i++)
		if (cn_addr_eq(&w->src[i], from))
			return;
	uint8_t announcers = (uint8_t)(w->n_src - w->has_writer);
	if (announcers >= CN_PSYNC_SOURCES) {
		w->src[(w->cur + CN_PSYNC_SOURCES - 1) % CN_PSYNC_SOURCES] = *from;
		return;
	}
	if (w->has_writer) /* keep the writer last */
		w->src[w->n_src] = w->src[w->n_src - 1];
	w->src[announcers] = *from;
	w->n_src++;
}

/* The writer always holds its document: asked only when no announcer could
 * serve, so a write does not make its writer serve the whole fleet. */
static void want_add_writer(want *w, const cn_addr *writer)
{
	for (uint8_t i = 0; i < w->n_src; i++)
		if (cn_addr_eq(&w->src[i], writer))
			return;
	if (w->has_writer) {
		w->src[w->n_src - 1] = *writer;
		return;
	}
	w->src[w->n_src++] = *writer;
	w->has_writer = true;
}

/* Ask for (kind, name) at (v, writer, hash) from `from`. */
static void want_doc(cn_psync *s, const cn_addr *from, const char *kind, const char *name,
		     uint64_t v, const char *writer, const uint8_t *hash)
{
	want *w = want_find(s, kind, name);
	if (w != NULL) {
		int c = order(v, writer, hash, w->version, w->writer, w->hash);
		if (c == 0) {
			want_add_source(w, from);
			return;
		}
		if (c < 0)
			return; /* we already want something newer */
		/* newer than what we wanted: start over with this source (an
		 * in-flight fetch for the old target is judged on return) */
		w->version = v;
		snprintf(w->writer, sizeof w->writer, "%s", writer);
		memcpy(w->hash, hash, CN_DOC_HASH_BYTES);
		w->src[0] = *from;
		w->n_src = 1;
		w->has_writer = false;
		w->cur = 0;
		w->tries = 0;
		w->next_ms = s->now_ms;
		return;
	}
	if (s->wants == NULL) {
		s->wants = malloc(CN_PSYNC_WANTS_MAX * sizeof *s->wants);
		if (s->wants == NULL) {
			s->st.wants_dropped++;
			return;
		}
	}
	if (s->n_wants == CN_PSYNC_WANTS_MAX) {
		s->st.wants_dropped++; /* anti-entropy will repair it */
		return;
	}
	w = &s->wants[s->n_wants++];
	memset(w, 0, sizeof *w);
	key_set(&w->k, kind, name);
	w->version = v;
	snprintf(w->writer, sizeof w->writer, "%s", writer);
	memcpy(w->hash, hash, CN_DOC_HASH_BYTES);
	w->src[0] = *from;
	w->n_src = 1;
	w->next_ms = s->now_ms;
}

/* ---- requests --------------------------------------------------------- */

static flight *flight_new(cn_psync *s, uint8_t type, const cn_addr *to)
{
	for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX; i++) {
		if (s->fl[i].tag == 0) {
			flight *f = &s->fl[i];
			memset(f, 0, sizeof *f);
			if (++s->next_tag == 0)
				s->next_tag = 1;
			f->tag = s->next_tag;
			f->type = type;
			f->to = *to;
			return f;
		}
	}
	return NULL;
}

static uint32_t flights(const cn_psync *s, uint8_t type, const cn_addr *to)
{
	uint32_t n = 0;
	for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX; i++)
		n += s->fl[i].tag != 0 && (type == REQ_NONE || s->fl[i].type == type) &&
		     (to == NULL || cn_addr_eq(&s->fl[i].to, to));
	return n;
}

static flight *flight_by_tag(cn_psync *s, uint32_t tag)
{
	for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX && tag != 0; i++)
		if (s->fl[i].tag == tag)
			return &s->fl[i];
	return NULL;
}

/* Encode into a fresh buffer of cap bytes; the flight owns it. */
static bool flight_set(flight *f, uint8_t *buf, cn_mp_writer *w)
{
	size_t len;
	if (cn_mp_writer_end(w, &len) != 0) {
		free(buf);
		return false;
	}
	f->buf = buf;
	f->len = len;
	return true;
}

/* One FETCH to the source of the first due want, carrying every due want
 * whose current source is the same member. */
static bool start_fetch(cn_psync *s)
{
	want *first = NULL;
	for (uint32_t i = 0; i < s->n_wants && first == NULL; i++)
		if (!s->wants[i].inflight && s->wants[i].next_ms <= s->now_ms)
			first = &s->wants[i];
	if (first == NULL)
		return false;
	cn_addr to = first->src[first->cur];
	flight *f = flight_new(s, REQ_FETCH, &to);
	if (f == NULL)
		return false;
	f->names = malloc(CN_PSYNC_FETCH_BATCH * sizeof *f->names);
	size_t cap = HDR_MAX + 8 + CN_PSYNC_FETCH_BATCH * (8 + CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + 8);
	uint8_t *buf = malloc(cap);
	if (f->names == NULL || buf == NULL) {
		free(buf);
		flight_clear(f);
		return false;
	}
	for (uint32_t i = 0; i < s->n_wants && f->n_names < CN_PSYNC_FETCH_BATCH; i++) {
		want *w = &s->wants[i];
		if (!w->inflight && w->next_ms <= s->now_ms && cn_addr_eq(&w->src[w->cur], &to)) {
			w->inflight = true;
			f->names[f->n_names++] = w->k;
		}
	}
	assert(f->n_names > 0);
	cn_mp_writer wr;
	cn_mp_writer_init(&wr, buf, cap);
	header(&wr, CN_MSG_POLICY_FETCH, 1);
	cn_mp_put_uint(&wr, 1);
	cn_mp_put_array(&wr, f->n_names);
	for (uint32_t i = 0; i < f->n_names; i++) {
		cn_mp_put_array(&wr, 2);
		cn_mp_put_cstr(&wr, f->names[i].kind);
		cn_mp_put_cstr(&wr, f->names[i].name);
	}
	bool ok = flight_set(f, buf, &wr);
	assert(ok && "the buffer is sized for a full batch");
	(void)ok;
	s->st.fetches_out++;
	return true;
}

static void start_sync(cn_psync *s, const cn_addr *to, uint32_t first_bucket)
{
	flight *f = flight_new(s, REQ_SYNC, to);
	if (f == NULL)
		return;
	size_t cap = HDR_MAX + 16 + BUCKET_BYTES;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		flight_clear(f);
		return;
	}
	cn_mp_writer wr;
	cn_mp_writer_init(&wr, buf, cap);
	header(&wr, CN_MSG_POLICY_SYNC, 2);
	cn_mp_put_uint(&wr, 1);
	cn_mp_put_bin(&wr, cn_policy_digest(s->p), BUCKET_BYTES);
	cn_mp_put_uint(&wr, 2);
	cn_mp_put_uint(&wr, first_bucket);
	if (!flight_set(f, buf, &wr)) {
		flight_clear(f);
		return;
	}
	s->st.syncs_out++;
}

typedef struct heads_ctx {
	cn_mp_writer *w;   /* NULL: count only */
	uint32_t n;
	char last[CN_DOC_WRITER_MAX + 1];
	uint64_t last_seq;
} heads_ctx;

static void heads_flush(heads_ctx *h)
{
	if (h->last[0] == 0)
		return;
	if (h->w != NULL && h->n < CN_PSYNC_CHAINS_MAX) {
		cn_mp_put_array(h->w, 2);
		cn_mp_put_cstr(h->w, h->last);
		cn_mp_put_uint(h->w, h->last_seq);
	}
	h->n++;
}

static int heads_cb(void *arg, const cn_audit_entry *e)
{
	heads_ctx *h = arg;
	if (strcmp(e->node, h->last) != 0) {
		heads_flush(h);
		snprintf(h->last, sizeof h->last, "%s", e->node);
	}
	h->last_seq = e->seq;
	return 0;
}

static void start_audit(cn_psync *s, const cn_addr *to)
{
	heads_ctx h = {0};
	if (cn_policy_audit_list(s->p, heads_cb, &h) != 0)
		return;
	heads_flush(&h);
	uint32_t n = h.n < CN_PSYNC_CHAINS_MAX ? h.n : CN_PSYNC_CHAINS_MAX;
	flight *f = flight_new(s, REQ_AUDIT, to);
	if (f == NULL)
		return;
	size_t cap = HDR_MAX + 16 + (size_t)n * (8 + CN_DOC_WRITER_MAX + 9);
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		flight_clear(f);
		return;
	}
	cn_mp_writer wr;
	cn_mp_writer_init(&wr, buf, cap);
	header(&wr, CN_MSG_AUDIT_SYNC, 1);
	cn_mp_put_uint(&wr, 1);
	cn_mp_put_array(&wr, n);
	heads_ctx h2 = {.w = &wr};
	if (cn_policy_audit_list(s->p, heads_cb, &h2) != 0) {
		free(buf);
		flight_clear(f);
		return;
	}
	heads_flush(&h2);
	if (h2.n != h.n || !flight_set(f, buf, &wr)) { /* changed under us: next time */
		if (h2.n != h.n)
			free(buf);
		flight_clear(f);
		return;
	}
	s->st.audit_out++;
}

static void pump(cn_psync *s)
{
	/* Keep two slots for anti-entropy so a flood of fetches cannot starve it. */
	while (flights(s, REQ_NONE, NULL) < CN_PSYNC_INFLIGHT_MAX - 2 && start_fetch(s))
		;
}

void cn_psync_on_peer_digest(cn_psync *s, const cn_addr *peer, bool has, const uint8_t *root,
			     uint64_t now_ms)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	if (!has)
		return; /* a peer without policy replication */
	peer_slot *ps = peer_of(s, peer);
	uint8_t mine[CN_HASH_BYTES];
	cn_policy_digest_root(s->p, mine);
	bool due_sync = ps->sync_ms == 0 || s->now_ms >= ps->sync_ms + CN_PSYNC_SYNC_MIN_MS;
	if (memcmp(mine, root, CN_HASH_BYTES) != 0 && due_sync &&
	    flights(s, REQ_SYNC, peer) == 0) {
		ps->sync_ms = s->now_ms;
		start_sync(s, peer, 0);
	}
	bool due_audit = ps->audit_ms == 0 || s->now_ms >= ps->audit_ms + CN_PSYNC_SYNC_MIN_MS;
	if (due_audit && flights(s, REQ_AUDIT, peer) == 0) {
		ps->audit_ms = s->now_ms;
		start_audit(s, peer);
	}
}

int cn_psync_next_request(cn_psync *s, cn_addr *to, uint8_t **buf, size_t *len, uint32_t *tag)
{
	for (int i = 0; i < CN_PSYNC_INFLIGHT_MAX; i++) {
		flight *f = &s->fl[i];
		if (f->tag != 0 && !f->handed && f->buf != NULL) {
			f->handed = true;
			*to = f->to;
			*buf = f->buf;
			*len = f->len;
			*tag = f->tag;
			f->buf = NULL;
			return 0;
		}
	}
	return CN_EAGAIN;
}

/* ---- applying what arrives -------------------------------------------- */

/* Apply fetched bytes; announce what wins. */
static void apply_fetched(cn_psync *s, const uint8_t *bytes, size_t len)
{
	cn_doc d;
	uint64_t unknown = 0;
	s->st.docs_fetched++;
	if (cn_doc_decode(bytes, len, &d, &unknown) != 0) {
		s->st.decode_errors++;
		return;
	}
	int outcome = 0;
	int rc = cn_policy_apply_remote(s->p, &d, wall(s), &outcome, NULL, 0);
	if (rc == CN_EPERM || rc == CN_EINVAL || rc == CN_ERANGE || outcome == CN_POLICY_EXPIRED) {
		uint8_t h[CN_DOC_HASH_BYTES];
		cn_doc_hash(&d, h);
		refuse(s, h);
		s->st.docs_refused++;
		return;
	}
	if (rc == 0 && outcome == CN_POLICY_APPLIED) {
		s->st.docs_applied++;
		cn_psync_announce(s, &d);
	}
}

static void fetch_done(cn_psync *s, flight *f, const uint8_t *reply, size_t len)
{
	if (reply != NULL) {
		cn_mp_reader r;
		uint32_t n_fields, n;
		cn_mp_reader_init(&r, reply, len);
		int rc = read_header(&r, CN_MSG_POLICY_FETCH_REPLY, &n_fields);
		for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
			uint64_t key;
			if ((rc = cn_mp_read_u64(&r, &key)) != 0)
				break;
			if (key != 1) {
				rc = cn_mp_skip(&r);
				continue;
			}
			if ((rc = cn_mp_read_array(&r, &n, CN_PSYNC_FETCH_BATCH)) != 0)
				break;
			for (uint32_t j = 0; rc == 0 && j < n; j++) {
				if (cn_mp_peek_nil(&r)) {
					rc = cn_mp_read_nil(&r);
					continue;
				}
				const uint8_t *b;
				uint32_t blen;
				if ((rc = cn_mp_read_bin(&r, &b, &blen, CN_DOC_WIRE_MAX)) == 0)
					apply_fetched(s, b, blen);
			}
		}
		if (rc != 0)
			s->st.decode_errors++;
	}
	/* Judge each asked name by what we hold now. */
	bool failed = true;
	for (uint32_t i = 0; i < f->n_names; i++) {
		want *w = want_find(s, f->names[i].kind, f->names[i].name);
		if (w == NULL)
			continue;
		w->inflight = false;
		if (refused(s, w->hash) ||
		    have_at_least(s, w->k.kind, w->k.name, w->version, w->writer, w->hash)) {
			want_remove(s, w);
			failed = false;
			continue;
		}
		/* The source lacks it (still fetching it, likely) or failed:
		 * the next source, a moment later; after a full round, back off. */
		w->cur = (uint8_t)((w->cur + 1) % w->n_src);
		w->next_ms = s->now_ms + CN_PSYNC_NEXT_SOURCE_MS;
		if (w->cur == 0) {
			if (++w->tries >= CN_PSYNC_TRIES_MAX) {
				want_remove(s, w);
				s->st.wants_dropped++;
				continue;
			}
			w->next_ms = s->now_ms + ((uint64_t)CN_PSYNC_RETRY_MS << (w->tries - 1));
		}
	}
	if (failed && f->n_names > 0)
		s->st.fetch_failures++;
	/* Audit entries follow the documents: whoever served a body has
	 * likely its audit entry too (rate-limited per peer). */
	if (!failed) {
		peer_slot *ps = peer_of(s, &f->to);
		if ((ps->audit_ms == 0 || s->now_ms >= ps->audit_ms + CN_PSYNC_SYNC_MIN_MS) &&
		    flights(s, REQ_AUDIT, &f->to) == 0) {
			ps->audit_ms = s->now_ms;
			start_audit(s, &f->to);
		}
	}
}

static void sync_done(cn_psync *s, flight *f, const uint8_t *reply, size_t len)
{
	if (reply == NULL)
		return;
	cn_mp_reader r;
	uint32_t n_fields, n, seen = 0;
	uint64_t next = CN_POLICY_BUCKETS;
	cn_mp_reader_init(&r, reply, len);
	int rc = read_header(&r, CN_MSG_POLICY_SYNC_REPLY, &n_fields);
	for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(&r, &key)) != 0)
			break;
		if (key == 2) {
			if ((rc = once(&seen, key)) == 0 && (rc = cn_mp_read_u64(&r, &next)) == 0 &&
			    next > CN_POLICY_BUCKETS)
				rc = CN_ERANGE;
			continue;
		}
		if (key != 1) {
			rc = cn_mp_skip(&r);
			continue;
		}
		if ((rc = once(&seen, key)) != 0 ||
		    (rc = cn_mp_read_array(&r, &n, CN_PSYNC_LIST_MAX)) != 0)
			break;
		for (uint32_t j = 0; rc == 0 && j < n; j++) {
			uint32_t m;
			name_key k;
			uint64_t v;
			char writer[CN_DOC_WRITER_MAX + 1];
			const uint8_t *h;
			uint32_t hl;
			if ((rc = tuple_begin(&r, 5, &m)) != 0 ||
			    (rc = read_cstr(&r, k.kind, sizeof k.kind)) != 0 ||
			    (rc = read_cstr(&r, k.name, sizeof k.name)) != 0 ||
			    (rc = cn_mp_read_u64(&r, &v)) != 0 ||
			    (rc = read_cstr(&r, writer, sizeof writer)) != 0 ||
			    (rc = cn_mp_read_bin(&r, &h, &hl, CN_DOC_HASH_BYTES)) != 0)
				break;
			if (hl != CN_DOC_HASH_BYTES) {
				rc = CN_EINVAL;
				break;
			}
			if ((rc = tuple_end(&r, m)) != 0)
				break;
			s->st.listed++;
			if (!cn_doc_kind_ok(k.kind, strlen(k.kind)) ||
			    !cn_doc_name_ok(k.name, strlen(k.name)) || refused(s, h) ||
			    have_at_least(s, k.kind, k.name, v, writer, h))
				continue;
			want_doc(s, &f->to, k.kind, k.name, v, writer, h);
		}
	}
	if (rc != 0) {
		s->st.decode_errors++;
		return;
	}
	if (next < CN_POLICY_BUCKETS) /* the next page; the slot is freed by the caller */
		start_sync(s, &f->to, (uint32_t)next);
}

static void audit_done(cn_psync *s, flight *f, const uint8_t *reply, size_t len)
{
	if (reply == NULL)
		return;
	cn_mp_reader r;
	uint32_t n_fields, n, seen = 0;
	bool more = false, progress = false;
	cn_mp_reader_init(&r, reply, len);
	int rc = read_header(&r, CN_MSG_AUDIT_SYNC_REPLY, &n_fields);
	for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(&r, &key)) != 0)
			break;
		if (key == 2) {
			if ((rc = once(&seen, key)) == 0)
				rc = cn_mp_read_bool(&r, &more);
			continue;
		}
		if (key != 1) {
			rc = cn_mp_skip(&r);
			continue;
		}
		if ((rc = once(&seen, key)) != 0 ||
		    (rc = cn_mp_read_array(&r, &n, CN_PSYNC_AUDIT_PAGE)) != 0)
			break;
		for (uint32_t j = 0; rc == 0 && j < n; j++) {
			const uint8_t *b;
			uint32_t bl;
			if ((rc = cn_mp_read_bin(&r, &b, &bl, CN_POLICY_AUDIT_MAX)) != 0)
				break;
			int arc = cn_policy_audit_apply_remote(s->p, b, bl);
			if (arc == 0) {
				s->st.audit_added++;
				progress = true;
			} else if (arc != CN_EEXIST) {
				s->st.audit_refused++;
			}
		}
	}
	if (rc != 0) {
		s->st.decode_errors++;
		return;
	}
	if (more && progress)
		start_audit(s, &f->to);
}

void cn_psync_result(cn_psync *s, uint32_t tag, const uint8_t *reply, size_t len,
		     uint64_t now_ms)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	flight *f = flight_by_tag(s, tag);
	if (f == NULL)
		return;
	flight done = *f; /* the handlers may start new requests in this slot */
	memset(f, 0, sizeof *f);
	switch (done.type) {
	case REQ_FETCH: fetch_done(s, &done, reply, len); break;
	case REQ_SYNC: sync_done(s, &done, reply, len); break;
	case REQ_AUDIT: audit_done(s, &done, reply, len); break;
	default: assert(0 && "flights have a type");
	}
	free(done.buf);
	free(done.names);
	pump(s);
}

bool cn_psync_on_announce(cn_psync *s, const cn_addr *from, const cn_addr *writer,
			  const cn_msg_policy_announce *a, uint64_t now_ms)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	s->st.announces_in++;
	if (!cn_doc_kind_ok(a->kind, strlen(a->kind)) || !cn_doc_name_ok(a->name, strlen(a->name)) ||
	    !cn_doc_writer_ok(a->writer, strlen(a->writer)) || refused(s, a->hash) ||
	    have_at_least(s, a->kind, a->name, a->version, a->writer, a->hash))
		return false;
	s->st.announces_new++;
	/* Relay at once, before the body is here: the news then spreads as fast
	 * as a membership update, and the body follows one fetch behind. A
	 * member asked for a body it is still fetching answers nil, and the
	 * asker tries its next source shortly after (see fetch_done). */
	bool relayed = announce_msg(s, a);
	want_doc(s, from, a->kind, a->name, a->version, a->writer, a->hash);
	want *w = want_find(s, a->kind, a->name);
	if (w != NULL && writer != NULL && !cn_addr_eq(writer, from))
		want_add_writer(w, writer);
	pump(s);
	return relayed;
}

/* ---- serving ---------------------------------------------------------- */

static int serve_fetch(cn_psync *s, cn_mp_reader *r, uint32_t n_fields, uint8_t **reply,
		       size_t *reply_len)
{
	name_key names[CN_PSYNC_FETCH_BATCH];
	uint32_t n = 0, seen = 0;
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(r, &key)) != 0)
			break;
		if (key != 1) {
			rc = cn_mp_skip(r);
			continue;
		}
		if ((rc = once(&seen, key)) != 0 ||
		    (rc = cn_mp_read_array(r, &n, CN_PSYNC_FETCH_BATCH)) != 0)
			break;
		for (uint32_t j = 0; rc == 0 && j < n; j++) {
			uint32_t extra;
			if ((rc = tuple_begin(r, 2, &extra)) != 0 ||
			    (rc = read_cstr(r, names[j].kind, sizeof names[j].kind)) != 0 ||
			    (rc = read_cstr(r, names[j].name, sizeof names[j].name)) != 0)
				break;
			rc = tuple_end(r, extra);
		}
	}
	if (rc != 0)
		return rc;
	if (!(seen & 2u))
		return CN_EMISSING;
	size_t cap = HDR_MAX + 8 + (size_t)n * (CN_DOC_WIRE_MAX + 8);
	uint8_t *buf = malloc(cap);
	uint8_t *doc = malloc(CN_DOC_WIRE_MAX);
	if (buf == NULL || doc == NULL) {
		free(buf);
		free(doc);
		return CN_ENOMEM;
	}
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	header(&w, CN_MSG_POLICY_FETCH_REPLY, 1);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_array(&w, n);
	for (uint32_t j = 0; j < n; j++) {
		cn_doc d;
		size_t dl;
		if (!cn_doc_kind_ok(names[j].kind, strlen(names[j].kind)) ||
		    !cn_doc_name_ok(names[j].name, strlen(names[j].name)) ||
		    cn_policy_get(s->p, names[j].kind, names[j].name, 0, &d, s->body,
				  CN_DOC_BODY_MAX) != 0 ||
		    cn_doc_encode(&d, doc, CN_DOC_WIRE_MAX, &dl) != 0) {
			cn_mp_put_nil(&w);
			continue;
		}
		cn_mp_put_bin(&w, doc, dl);
	}
	free(doc);
	if ((rc = cn_mp_writer_end(&w, reply_len)) != 0) {
		free(buf);
		return rc;
	}
	s->st.served_fetch++;
	*reply = buf;
	return 0;
}

typedef struct list_item {
	uint16_t bucket;
	name_key k;
	uint64_t version;
	char writer[CN_DOC_WRITER_MAX + 1];
	uint8_t hash[CN_DOC_HASH_BYTES];
} list_item;

typedef struct list_ctx {
	list_item *v;
	uint32_t n, cap;
	int rc;
} list_ctx;

static int list_cb(void *arg, const cn_doc *d)
{
	list_ctx *c = arg;
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 64;
		list_item *v = realloc(c->v, cap * sizeof *v);
		if (v == NULL) {
			c->rc = CN_ENOMEM;
			return 1;
		}
		c->v = v;
		c->cap = cap;
	}
	list_item *it = &c->v[c->n++];
	it->bucket = cn_policy_bucket_of(d->kind, d->name);
	key_set(&it->k, d->kind, d->name);
	it->version = d->version;
	snprintf(it->writer, sizeof it->writer, "%s", d->writer);
	cn_doc_hash(d, it->hash);
	return 0;
}

static int by_bucket(const void *a, const void *b)
{
	const list_item *x = a, *y = b;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	int c = strcmp(x->k.kind, y->k.kind);
	return c != 0 ? c : strcmp(x->k.name, y->k.name);
}

static int serve_sync(cn_psync *s, cn_mp_reader *r, uint32_t n_fields, uint8_t **reply,
		      size_t *reply_len)
{
	const uint8_t *theirs = NULL;
	uint32_t tl = 0, seen = 0;
	uint64_t first = 0;
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(r, &key)) != 0)
			break;
		if (key == 1) {
			if ((rc = once(&seen, key)) == 0 &&
			    (rc = cn_mp_read_bin(r, &theirs, &tl, BUCKET_BYTES)) == 0 &&
			    tl != BUCKET_BYTES)
				rc = CN_EINVAL;
		} else if (key == 2) {
			if ((rc = once(&seen, key)) == 0 && (rc = cn_mp_read_u64(r, &first)) == 0 &&
			    first > CN_POLICY_BUCKETS)
				rc = CN_ERANGE;
		} else {
			rc = cn_mp_skip(r);
		}
	}
	if (rc != 0)
		return rc;
	if (theirs == NULL)
		return CN_EMISSING;
	const uint8_t(*mine)[CN_DOC_HASH_BYTES] = cn_policy_digest(s->p);
	uint8_t mask[CN_POLICY_BUCKETS / 8] = {0};
	for (uint32_t b = (uint32_t)first; b < CN_POLICY_BUCKETS; b++)
		if (memcmp(mine[b], theirs + (size_t)b * CN_DOC_HASH_BYTES, CN_DOC_HASH_BYTES) != 0)
			mask[b / 8] |= (uint8_t)(1u << (b % 8));
	list_ctx c = {0};
	rc = cn_policy_bucket_list(s->p, mask, list_cb, &c);
	if (rc == 0)
		rc = c.rc;
	if (rc != 0) {
		free(c.v);
		return rc;
	}
	if (c.n > 1) /* qsort's pointer must not be NULL, even for 0 items */
		qsort(c.v, c.n, sizeof *c.v, by_bucket);
	/* Cut at a bucket boundary at most LIST_MAX names in; a single bucket
	 * bigger than that is cut inside and finished by the next SYNC round. */
	uint32_t take = c.n, next = CN_POLICY_BUCKETS;
	if (c.n > CN_PSYNC_LIST_MAX) {
		take = CN_PSYNC_LIST_MAX;
		while (take > 0 && c.v[take].bucket == c.v[take - 1].bucket)
			take--;
		if (take == 0)
			take = CN_PSYNC_LIST_MAX;
		next = c.v[take].bucket + (take == CN_PSYNC_LIST_MAX &&
					   c.v[take].bucket == c.v[take - 1].bucket);
	}
	size_t cap = HDR_MAX + 16 +
		     (size_t)take * (8 + CN_DOC_KIND_MAX + CN_DOC_NAME_MAX + CN_DOC_WRITER_MAX + 50);
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		free(c.v);
		return CN_ENOMEM;
	}
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	header(&w, CN_MSG_POLICY_SYNC_REPLY, 2);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_array(&w, take);
	for (uint32_t j = 0; j < take; j++) {
		cn_mp_put_array(&w, 5);
		cn_mp_put_cstr(&w, c.v[j].k.kind);
		cn_mp_put_cstr(&w, c.v[j].k.name);
		cn_mp_put_uint(&w, c.v[j].version);
		cn_mp_put_cstr(&w, c.v[j].writer);
		cn_mp_put_bin(&w, c.v[j].hash, CN_DOC_HASH_BYTES);
	}
	cn_mp_put_uint(&w, 2);
	cn_mp_put_uint(&w, next);
	free(c.v);
	if ((rc = cn_mp_writer_end(&w, reply_len)) != 0) {
		free(buf);
		return rc;
	}
	s->st.syncs_served++;
	*reply = buf;
	return 0;
}

typedef struct head_item {
	char node[CN_DOC_WRITER_MAX + 1];
	uint64_t seq;
} head_item;

static int by_node(const void *a, const void *b)
{
	return strcmp(((const head_item *)a)->node, ((const head_item *)b)->node);
}

typedef struct audit_ctx {
	const head_item *heads;
	uint32_t n_heads;
	cn_mp_writer *w;
	uint32_t n;
	bool more;
} audit_ctx;

static int audit_cb(void *arg, const cn_audit_entry *e)
{
	audit_ctx *c = arg;
	head_item key;
	snprintf(key.node, sizeof key.node, "%s", e->node);
	const head_item *h = bsearch(&key, c->heads, c->n_heads, sizeof *c->heads, by_node);
	if (h != NULL && e->seq <= h->seq)
		return 0;
	if (c->n == CN_PSYNC_AUDIT_PAGE) {
		c->more = true;
		return 1;
	}
	uint8_t buf[CN_POLICY_AUDIT_MAX];
	size_t len;
	if (cn_policy_audit_encode(e, buf, sizeof buf, &len) != 0)
		return 0;
	if (c->w != NULL)
		cn_mp_put_bin(c->w, buf, len);
	c->n++;
	return 0;
}

static int serve_audit(cn_psync *s, cn_mp_reader *r, uint32_t n_fields, uint8_t **reply,
		       size_t *reply_len)
{
	head_item *heads = NULL;
	uint32_t n = 0, seen = 0;
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < n_fields; i++) {
		uint64_t key;
		if ((rc = cn_mp_read_u64(r, &key)) != 0)
			break;
		if (key != 1) {
			rc = cn_mp_skip(r);
			continue;
		}
		if ((rc = once(&seen, key)) != 0 ||
		    (rc = cn_mp_read_array(r, &n, CN_PSYNC_CHAINS_MAX)) != 0)
			break;
		heads = malloc(((size_t)n + 1) * sizeof *heads);
		if (heads == NULL) {
			rc = CN_ENOMEM;
			break;
		}
		for (uint32_t j = 0; rc == 0 && j < n; j++) {
			uint32_t extra;
			if ((rc = tuple_begin(r, 2, &extra)) != 0 ||
			    (rc = read_cstr(r, heads[j].node, sizeof heads[j].node)) != 0 ||
			    (rc = cn_mp_read_u64(r, &heads[j].seq)) != 0)
				break;
			rc = tuple_end(r, extra);
		}
	}
	if (rc == 0 && heads == NULL)
		rc = CN_EMISSING;
	if (rc != 0) {
		free(heads);
		return rc;
	}
	if (n > 1)
		qsort(heads, n, sizeof *heads, by_node);
	/* Count first, then write: the array header needs the count. */
	audit_ctx c = {heads, n, NULL, 0, false};
	if ((rc = cn_policy_audit_list(s->p, audit_cb, &c)) != 0) {
		free(heads);
		return rc;
	}
	size_t cap = HDR_MAX + 16 + (size_t)c.n * (CN_POLICY_AUDIT_MAX + 8);
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		free(heads);
		return CN_ENOMEM;
	}
	cn_mp_writer w;
	cn_mp_writer_init(&w, buf, cap);
	header(&w, CN_MSG_AUDIT_SYNC_REPLY, 2);
	cn_mp_put_uint(&w, 1);
	cn_mp_put_array(&w, c.n);
	audit_ctx c2 = {heads, n, &w, 0, false};
	rc = cn_policy_audit_list(s->p, audit_cb, &c2);
	free(heads);
	if (rc == 0 && c2.n != c.n)
		rc = CN_ESTATE; /* cannot happen: nothing changes between the walks */
	cn_mp_put_uint(&w, 2);
	cn_mp_put_bool(&w, c2.more);
	if (rc == 0)
		rc = cn_mp_writer_end(&w, reply_len);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	s->st.audit_served++;
	*reply = buf;
	return 0;
}

int cn_psync_serve(cn_psync *s, const uint8_t *req, size_t len, uint64_t now_ms, uint8_t **reply,
		   size_t *reply_len)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	cn_mp_reader r;
	uint32_t n_fields;
	uint8_t types[3] = {CN_MSG_POLICY_FETCH, CN_MSG_POLICY_SYNC, CN_MSG_AUDIT_SYNC};
	int rc = CN_EUNKNOWN;
	for (int i = 0; i < 3 && rc == CN_EUNKNOWN; i++) {
		cn_mp_reader_init(&r, req, len);
		rc = read_header(&r, types[i], &n_fields);
		if (rc == 0) {
			switch (types[i]) {
			case CN_MSG_POLICY_FETCH: rc = serve_fetch(s, &r, n_fields, reply, reply_len); break;
			case CN_MSG_POLICY_SYNC: rc = serve_sync(s, &r, n_fields, reply, reply_len); break;
			default: rc = serve_audit(s, &r, n_fields, reply, reply_len); break;
			}
			break;
		}
	}
	if (rc != 0 && rc != CN_ENOMEM)
		s->st.decode_errors++;
	return rc;
}

/* ---- time ------------------------------------------------------------- */

void cn_psync_tick(cn_psync *s, uint64_t now_ms)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
	pump(s);
}

uint64_t cn_psync_deadline(const cn_psync *s)
{
	uint64_t d = UINT64_MAX;
	for (uint32_t i = 0; i < s->n_wants; i++)
		if (!s->wants[i].inflight && s->wants[i].next_ms < d)
			d = s->wants[i].next_ms;
	return d;
}
