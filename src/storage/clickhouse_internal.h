/* SPDX-License-Identifier: MIT */
/*
 * The ClickHouse backend's internals (docs/storage.md, "ClickHouse backend"):
 * - clickhouse.c: the spec, open (schema, migrations), close, stats, the ops table;
 * - clickhouse_http.c: the HTTP client (libcurl, a pool of keep-alive handles), SQL quoting;
 * - clickhouse_rb.c: RowBinary encoding of inserts and bounded decoding of answers (network
 *   input: fuzzed by tests/fuzz/fuzz_clickhouse_answer.c);
 * - clickhouse_write.c: the writer thread (group commit, push de-duplication), retention;
 * - clickhouse_read.c: the queries (resolution planner, merge, series, labels, rows);
 * - clickhouse_stacks.c: the stacks and frames of query answers, fetched once and cached.
 * Writes are prepared by the SQLite backend's sq_job_prepare() (sqlite_job.h): the same
 * checks, messages and series construction for both backends.
 */
#ifndef AP_CLICKHOUSE_INTERNAL_H
#define AP_CLICKHOUSE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* ---- limits (answers are network input) ---- */
#define CH_MAX_ANSWER (256u << 20) /* bytes of one answer */
#define CH_MAX_STR (1u << 20)	   /* bytes of one string in an answer */
#define CH_MAX_ARRAY (1u << 20)	   /* elements of one array in an answer */
#define CH_MAX_PICK 200000	   /* series one query may select */
#define CH_QUEUE_MAX 4096	   /* queued writes before write() answers -EAGAIN */
#define CH_WRITERS 2		   /* writer threads: the two stages of a pipeline */
#define CH_BATCH_MAX 512	   /* pushes in one group commit */
#define CH_GATHER_NS 10000000ULL   /* a short batch waits this long for pushes being prepared */
#define CH_BATCH_ENTRIES 500000	   /* sample rows in one group commit */
#define CH_SEEN_MAX 2000000	   /* (dictionary id, day) pairs remembered as written */
#define CH_PENDING_NS                                                                              \
	60000000000ULL		     /* a push being written elsewhere: answer "retry" this long   \
				      */
#define CH_RUNS_TTL_NS 1000000000ULL /* retention runs cached this long */
#define CH_DAY_NS 86400000000000ULL
#define CH_HOUR_NS 3600000000000ULL
#define CH_MIN_NS 60000000000ULL

/* ---- growable byte buffer (SQL text and RowBinary bodies) ---- */
struct ch_buf {
	char *b;
	size_t n, cap;
	bool oom; /* an append failed: the buffer is unusable */
};
void ch_buf_free(struct ch_buf *b);
void ch_buf_put(struct ch_buf *b, const void *p, size_t n);
void __attribute__((format(printf, 2, 3))) ch_buf_printf(struct ch_buf *b, const char *fmt, ...);
/* a SQL string literal: quotes, backslash escapes, control bytes as \xHH */
void ch_sql_str(struct ch_buf *b, const char *s);
/* RowBinary */
void ch_rb_u8(struct ch_buf *b, uint8_t v);
void ch_rb_u16(struct ch_buf *b, uint16_t v);
void ch_rb_u32(struct ch_buf *b, uint32_t v);
void ch_rb_u64(struct ch_buf *b, uint64_t v);
void ch_rb_len(struct ch_buf *b, uint64_t n); /* LEB128: string lengths, array sizes */
void ch_rb_str(struct ch_buf *b, const char *s);
void ch_rb_strn(struct ch_buf *b, const char *s, size_t n);

/* Decoding an answer: every read checks the bounds; a failed read sets bad. */
struct ch_cur {
	const unsigned char *p, *end;
	bool bad;
};
/* A cursor over a buffer's bytes; an empty buffer (b may be NULL) gives an empty cursor. */
static inline struct ch_cur ch_cur_of(const struct ch_buf *b)
{
	struct ch_cur c = {0};

	if (b->b) {
		c.p = (const unsigned char *)b->b;
		c.end = c.p + b->n;
	}
	return c;
}
uint8_t ch_get_u8(struct ch_cur *c);
uint32_t ch_get_u32(struct ch_cur *c);
uint64_t ch_get_u64(struct ch_cur *c);
/* A string (not NUL-terminated; *len set) of at most CH_MAX_STR bytes. */
const char *ch_get_str(struct ch_cur *c, size_t *len);
/* An array's size, at most max (and no more than the bytes left could hold). */
size_t ch_get_arr(struct ch_cur *c, size_t max);
static inline bool ch_cur_more(const struct ch_cur *c) { return !c->bad && c->p < c->end; }

/* A series as an answer gives it (strings owned, in one allocation). */
struct ch_series {
	uint64_t id;
	struct ap_label_kv *labels; /* sorted by name */
	size_t nlabels;
	const char *mode, *comm;	       /* "" when absent */
	const char *vt[2 + 2 * AP_MAX_VALUES]; /* period type, unit, then type, unit per value */
	size_t nvalues;
	uint64_t period;
	uint64_t gk; /* group key (CH_SQL_GK): equal for the series of one comm and lineup */
	char *mem;
};
/* Parse the answer of CH_SQL_PICK: id, lk, lv, vt, period, group key per row. Returns 0 or -EPROTO
 * (err says where); max bounds the number of series. */
int ch_parse_series(const void *data, size_t len, size_t max, struct ch_series **out, size_t *n,
		    char *err, size_t errlen);
void ch_series_free(struct ch_series *v, size_t n);
/* Free the items only (the array stays). */
void ch_series_clear(struct ch_series *v, size_t n);

/* Rows of CH_SQL_MERGE (stack, group key, v0..v3) and CH_SQL_TIMELINE (point, group key,
 * v0..v3): key (stack or point) below key_max (0: any); the group key is looked up in keys
 * (nkeys, sorted by gk, groups 1..): a key not there (a series that appeared after the query
 * picked its series) skips the row and counts it in *late. */
struct ch_gkey {
	uint64_t gk;
	uint32_t g;
};
/* The group of a group key, 0 when unknown (keys sorted by gk). */
uint32_t ch_gkey_find(const struct ch_gkey *keys, size_t n, uint64_t gk);
struct ch_mrow {
	uint64_t key;
	uint32_t g;
	uint64_t v[AP_MAX_VALUES];
};
int ch_parse_mrows(const void *data, size_t len, const struct ch_gkey *keys, size_t nkeys,
		   uint64_t key_max, struct ch_mrow **out, size_t *n, uint64_t *late, char *err,
		   size_t errlen);
/* Rows of CH_SQL_ROWS_GET into out (strings owned). */
int ch_parse_trows(const void *data, size_t len, struct ap_store_rows *out, char *err,
		   size_t errlen);

/* ---- HTTP ---- */
struct ch_http;
struct ch_http_opts {
	const char *base_url; /* http://host:port/ */
	const char *user, *password;
	long timeout_ms;
};
int ch_http_new(const struct ch_http_opts *o, struct ch_http **out, char *err, size_t errlen);
void ch_http_free(struct ch_http *h);
/*
 * Run one statement. query goes in the URL when body is given (INSERT ... FORMAT RowBinary
 * with the rows as body), else it is the body. settings: "&name=value..." appended to the URL.
 * The answer (at most CH_MAX_ANSWER bytes) goes into out when given.
 * Errors: -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH (server down or slow: the aggregator
 * answers 503 + Retry-After), -EIO (the server refused the statement; err holds its message),
 * -EFBIG (answer too large), -ENOMEM.
 */
int ch_http_exec(struct ch_http *h, const char *query, const void *body, size_t bodylen,
		 const char *settings, struct ch_buf *out, char *err, size_t errlen);
/* One statement of ch_http_exec_many(): the arguments of ch_http_exec(). */
struct ch_stmt {
	const char *query;
	const void *body;
	size_t bodylen;
	const char *settings;
	struct ch_buf *out;
};
#define CH_STMT_MAX 8
/*
 * Run up to CH_STMT_MAX independent statements at once, each on its own connection (a batch's
 * state rows and dictionary rows: one round trip instead of four). Every statement runs to its
 * end; the result is 0 when all succeeded, else the first failure's error (err), as
 * ch_http_exec() gives it.
 */
int ch_http_exec_many(struct ch_http *h, const struct ch_stmt *v, size_t n, char *err,
		      size_t errlen);
/* The ClickHouse error code of the last -EIO message in err ("Code: N"), or -1. */
int ch_error_code(const char *err);

/* ---- the store ---- */
struct ch_job;

struct ch_run {
	uint64_t run;	 /* the aggregator clock (ns) of the run: orders runs */
	uint64_t cutoff; /* seconds */
};

struct ch_store {
	struct ap_store base;
	struct ch_http *http;
	char db[128];
	char cluster[128];	  /* "" = single node */
	char on_cluster[160];	  /* " ON CLUSTER name" or "" */
	char suffix[8];		  /* "_local" in cluster mode: the tables DDL and ALTERs touch */
	char where[420];	  /* "host:port/db" for messages */
	const char *ins_settings; /* URL settings of inserts */
	int ver_major, ver_minor;
	bool fast_start; /* open found the current schema complete and ran no DDL */
	/* a store migrated from version 2 keeps its tables: rollups (ap_samples_m1, _h1) and
	 * stored marks (ap_stored) of the rows inserted before the migration; legacy_gk: it has
	 * rows without their group key (written before version 3) */
	bool legacy_roll, legacy_stored, legacy_gk;
	struct ap_store_opts opts;

	/* writer */
	/* CH_WRITERS writer threads in a two-stage pipeline (clickhouse_write.c, writer_main());
	 * each writer's batch (flight) is checked by the others for equal push ids */
	pthread_t writers[CH_WRITERS];
	size_t nwriters;
	struct ch_wctx {
		struct ch_store *s;
		int idx;
	} wctx[CH_WRITERS];
	struct ch_job *flight[CH_WRITERS][CH_BATCH_MAX];
	size_t nflight[CH_WRITERS];
	pthread_mutex_t seenlock;
	pthread_mutex_t front, back; /* the writers' two stages (clickhouse_write.c) */
	pthread_mutex_t qlock;
	pthread_cond_t qcond, donecond;
	struct ch_job *qhead, *qtail;
	size_t qlen;
	bool stopping;
	uint64_t next_retention_mono; /* 0 = none */
	size_t preparing;	      /* write() calls preparing a push (qlock) */
	/* (dictionary id, day) pairs written (the writer thread only) */
	struct ch_seen *seen;

	/* retention runs, cached (rlock) */
	pthread_mutex_t rlock;
	struct ch_run *runs;
	size_t nruns;
	uint64_t runs_at; /* monotonic ns of the last fetch, 0 = never */

	/* stacks and frames read before (content-addressed: never stale), clock */
	pthread_mutex_t clock_;
	struct ch_cache *cache;

	pthread_mutex_t slock;
	struct ap_store_stats st;
};

static inline struct ch_store *ch_of(struct ap_store *s) { return (struct ch_store *)s; }

uint64_t ch_mono_ns(void);
uint64_t ch_real_ns(void);

/* SQL of the visibility rule (rows of retention runs newer than the row and below their
 * cut-off are hidden) for columns t and rv; newest_run gets the newest run id (0: none). */
int ch_vis(struct ch_store *s, struct ch_buf *out, uint64_t *newest_run, char *err, size_t errlen);
/* A statement with the database name filled in by printf-style formatting. */
int ch_exec_fmt(struct ch_store *s, struct ch_buf *out, char *err, size_t errlen, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));

int ch_writer_start(struct ch_store *s, char *err, size_t errlen);
void ch_writer_stop(struct ch_store *s);
int ch_write(struct ap_store *st, const struct ap_store_write *w, bool *duplicate, char *err,
	     size_t errlen);
int ch_retention(struct ap_store *st, uint64_t before_ns, char *err, size_t errlen);

int ch_merge(struct ap_store *st, const struct ap_store_query *q, struct ap_profile **out,
	     char *err, size_t errlen);
int ch_series_q(struct ap_store *st, const struct ap_store_query *q, uint64_t step_ns,
		struct ap_store_series *out, char *err, size_t errlen);
int ch_label_names(struct ap_store *st, const struct ap_store_query *q,
		   struct ap_store_strings *out, char *err, size_t errlen);
int ch_label_values(struct ap_store *st, const char *name, const struct ap_store_query *q,
		    struct ap_store_strings *out, char *err, size_t errlen);
int ch_modes(struct ap_store *st, const struct ap_store_query *q, struct ap_store_strings *out,
	     char *err, size_t errlen);
int ch_rows(struct ap_store *st, const struct ap_store_query *q, struct ap_store_rows *out,
	    char *err, size_t errlen);
void ch_cache_free(struct ch_cache *c);
/* clickhouse_stacks.c: fetch (into the cache) the stacks, and their frames, of the rows whose
 * keys are stack ids and are not cached yet. Returns 0 or -errno (err says what). */
int ch_fetch_stacks(struct ch_store *s, const struct ch_mrow *r, size_t n, char *err,
		    size_t errlen);
/* The profile's stack id of stored stack id (from the cache; its lock s->clock_ held),
 * UINT32_MAX - 1 when it is not cached, UINT32_MAX with *oom set when memory ran out. */
struct ap_profile;
uint32_t ch_profile_stack(struct ch_store *s, struct ap_profile *p, uint64_t id, bool *oom);

#endif
