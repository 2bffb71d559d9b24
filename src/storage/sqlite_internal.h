/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend's shared internals (docs/storage.md has the design):
 * - sqlite.c: open/close, the reader connection pool, stats, the ops table;
 * - sqlite_schema.c: tables and the writer's prepared statements;
 * - sqlite_dict.c: the in-memory dictionaries of frames, stacks and series (authoritative for
 *   this process: the store is the only writer of its file), loaded at open;
 * - sqlite_codec.c: the sample blob format and the small hash maps of the write and read paths;
 * - sqlite_prep.c: a push turned into hashes and job-local indices in the caller's thread;
 * - sqlite_write.c: the writer thread (group commit) and retention;
 * - sqlite_read.c: the query planner over the resolutions and every query.
 */
#ifndef AP_SQLITE_INTERNAL_H
#define AP_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/hashtab.h"
#include "storage.h"

/* ---- resolutions ---- */

/* Tier 0 keeps each push at its exact time; the others sum a bucket of res_ns. A query takes
 * whole buckets of the coarsest tier inside its range and the edges from finer tiers. */
#define SQ_NTIERS 4
struct sq_tier {
	const char *name; /* table suffix */
	uint64_t res_ns;  /* 0: exact times */
	/* tier 0 keys its rows (t, g) with g the smallest series id of the push, and holds all
	 * of the push's series in one grouped blob: a whole-system push has hundreds of
	 * processes, each its own series.
	 * keyed (t, series): rows of a batch or a compaction land together at the end of the
	 * tree instead of on one page per series (a page written per row, ~20x the data); read
	 * by time range for all series at once, which the planner uses only at a range's edges.
	 * The coarse tiers are keyed (series, t), read per selected series over long ranges. */
	bool time_major;
};
extern const struct sq_tier sq_tiers[SQ_NTIERS];
#define SQ_HOUR_NS 3600000000000ULL
#define SQ_MIN_STEP_NS 10000000000ULL /* the finest series step: pushes come every 10 s */
#define SQ_MAX_POINTS 11000		/* points of one series query (Prometheus's limit) */

struct sq_segment {
	int tier;
	int64_t lo, hi; /* t >= lo AND t < hi */
};
/* Split [from, until) over the tiers in tier_mask (bit i = tier i; tier 0 always allowed),
 * using tier k > 0 only below its watermark wm[k] (NULL: every tier is complete). Returns the
 * number of segments (at most 2 * SQ_NTIERS - 1). */
size_t sq_plan(uint64_t from, uint64_t until, unsigned tier_mask, const int64_t *wm,
	       struct sq_segment *out);
/* Tier k > 0 holds exactly the pushes with t < its watermark (meta 'wmK'): the writer
 * fills it from the finer tier once the newest push is SQ_ROLLUP_LAG_NS past a bucket
 * (compaction), and adds a push older than the mark to it at once (a late push). */
#define SQ_ROLLUP_LAG_NS 120000000000ULL
#define SQ_FUTURE_NS SQ_HOUR_NS /* pushes further ahead of this clock do not move the marks */
#define SQ_COMPACT_MAX_NS (6 * SQ_HOUR_NS) /* of tier 1 per compaction run */

/* ---- dictionaries ---- */

struct sq_frame {
	struct ap_hnode node;
	uint32_t id;
	uint32_t line, kind, flags;
	int64_t last_h; /* hour of the newest data that references it (retention) */
	char *name, *module, *file;
};

struct sq_stack {
	struct ap_hnode node;
	uint32_t id;
	uint32_t n;
	int64_t last_h;
	uint32_t *frames; /* frame ids, leaf first */
};

struct sq_series {
	struct ap_hnode node;
	uint32_t id;
	uint32_t nvalues;
	int64_t first_h, last_h; /* hours with data */
	uint64_t period;
	const char *mode, *comm; /* point into labels ("" when absent) */
	struct ap_label_kv *labels; /* sorted by name; strings in one allocation */
	size_t nlabels;
	char *vt_type[AP_MAX_VALUES], *vt_unit[AP_MAX_VALUES];
	char *period_type, *period_unit;
	void *labels_blob, *vtypes_blob; /* canonical encodings (hashed and stored) */
	size_t labels_len, vtypes_len;
	char *strs[2]; /* the decoded strings the pointers above point into */
};

struct sq_dict {
	pthread_rwlock_t lock; /* readers: rdlock; the writer: wrlock to add or remove */
	struct sq_frame **frames;
	struct sq_stack **stacks;
	struct sq_series **series;
	size_t nframes, nstacks, nseries; /* next id (ids start at 1; NULL = deleted) */
	size_t capframes, capstacks, capseries;
	struct ap_htab fidx, sidx, seridx;
	uint64_t live_frames, live_stacks, live_series;
};

uint64_t sq_str_hash(const char *s, size_t n);
uint64_t sq_frame_hash2(uint64_t name_h, uint64_t module_h, uint64_t file_h, uint32_t line,
			uint32_t kind, uint32_t flags);
uint64_t sq_frame_hash(const char *name, const char *module, const char *file, uint32_t line,
		       uint32_t kind, uint32_t flags);
uint64_t sq_stack_hash(const uint64_t *frame_hashes, size_t n);
uint64_t sq_series_hash(const void *labels, size_t llen, const void *vtypes, size_t vlen);

int sq_dict_init(struct sq_dict *d);
void sq_dict_free(struct sq_dict *d);
int sq_dict_load(struct sq_dict *d, sqlite3 *db, char *err, size_t errlen);
/* Lookups by content (the caller holds the lock). */
struct sq_frame *sq_dict_find_frame(struct sq_dict *d, uint64_t h, const char *name,
				    const char *module, const char *file, uint32_t line,
				    uint32_t kind, uint32_t flags);
struct sq_stack *sq_dict_find_stack(struct sq_dict *d, uint64_t h, const uint32_t *frames,
				    size_t n);
struct sq_series *sq_dict_find_series(struct sq_dict *d, uint64_t h, const void *labels,
				      size_t llen, const void *vtypes, size_t vlen,
				      uint64_t period);
/* Adding (wrlock held). id 0: assign the next id. */
struct sq_frame *sq_dict_add_frame(struct sq_dict *d, uint32_t id, uint64_t h, const char *name,
				   const char *module, const char *file, uint32_t line,
				   uint32_t kind, uint32_t flags, int64_t last_h);
struct sq_stack *sq_dict_add_stack(struct sq_dict *d, uint32_t id, uint64_t h,
				   const uint32_t *frames, size_t n, int64_t last_h);
struct sq_series *sq_dict_add_series(struct sq_dict *d, uint32_t id, const void *labels,
				     size_t llen, const void *vtypes, size_t vlen, uint64_t period,
				     int64_t first_h, int64_t last_h);
void sq_dict_remove_frame(struct sq_dict *d, uint32_t id);
void sq_dict_remove_stack(struct sq_dict *d, uint32_t id);
void sq_dict_remove_series(struct sq_dict *d, uint32_t id);

/* ---- encodings ---- */

/* Length-prefixed string pairs: (name, value) labels, (type, unit) value types. */
struct sq_buf {
	unsigned char *b;
	size_t n, cap;
};
int sq_buf_put(struct sq_buf *b, const void *p, size_t n);
int sq_buf_varint(struct sq_buf *b, uint64_t v);
int sq_buf_str(struct sq_buf *b, const char *s); /* varint length + bytes */
/* Decode a pair blob into up to max pairs of NUL-terminated strings copied into one
 * allocation (*strings, freed by the caller). Returns the count or -EINVAL. */
int sq_pairs_decode(const void *blob, size_t len, struct ap_label_kv *out, size_t max,
		    char **strings);
const unsigned char *sq_varint_get(const unsigned char *p, const unsigned char *end,
				   uint64_t *v);

/* Sample blobs: varint count, then per entry (sorted by stack) the stack id as a delta from
 * the previous one and nvalues varint values. */
struct sq_entry {
	uint32_t series, stack; /* series: grouped blobs only */
	uint32_t nv;		 /* values of the entry's series */
	uint64_t v[AP_MAX_VALUES];
};
int sq_samples_encode(struct sq_buf *b, struct sq_entry *e, size_t n, uint32_t nvalues);
/* Grouped blobs (tier 0: one row per push holds all its series): varint count of series,
 * then per series (ascending) its id as a delta, its number of values, its entry count and
 * the entries as above. */
int sq_grouped_encode(struct sq_buf *b, struct sq_entry *e, size_t n);
typedef int (*sq_grouped_fn)(void *ctx, uint32_t series, uint32_t nv, uint32_t stack,
			     const uint64_t *v);
/* Calls fn for every entry; returns 0, fn's nonzero value, or -EINVAL (damaged blob). */
int sq_grouped_walk(const unsigned char *p, const unsigned char *end, sq_grouped_fn fn,
		    void *ctx);

/* Open addressing map of nonzero u64 keys to u32 values. */
struct sq_map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, n;
};
/* Returns a pointer to the value of key, inserting it with value `fresh` when absent
 * (*inserted set); NULL on allocation failure. */
uint32_t *sq_map_put(struct sq_map *m, uint64_t key, uint32_t fresh, bool *inserted);
uint32_t *sq_map_get(const struct sq_map *m, uint64_t key);
void sq_map_clear(struct sq_map *m);
void sq_map_free(struct sq_map *m);

/* ---- the store ---- */

#define SQ_POOL_MAX 16
#define SQ_QUEUE_MAX 4096 /* queued writes before write() answers -EAGAIN */
#define SQ_BATCH_MAX 512  /* pushes in one transaction */

struct sq_conn {
	sqlite3 *db;
	/* series, t, n, data of ?1 = series (ignored when time-major: every series) and t in
	 * [?2, ?3) */
	sqlite3_stmt *chunks[SQ_NTIERS];
	sqlite3_stmt *totals[SQ_NTIERS]; /* series, t, v0..v3, the same way */
	/* the same for the series-major tiers over the series ids in [?1, ?4] and t in [?2, ?3)
	 * (NULL for time-major tiers): sq_scan() reads a tier this way when many series are
	 * picked, filtering the ids in memory, instead of one B-tree seek per series */
	sqlite3_stmt *chunks_ids[SQ_NTIERS], *totals_ids[SQ_NTIERS];
	sqlite3_stmt *rows[SQ_NTIERS];	 /* tbl, key, v0..v3, hist */
	sqlite3_stmt *begin, *commit;
	sqlite3_stmt *marks; /* k, v of the watermarks */
};
/* The watermarks of the read transaction just begun on c (its first statement, so they are
 * those of its snapshot). */
int sq_conn_marks(struct sq_conn *c, int64_t *wm, char *err, size_t errlen);

struct sq_job;
struct sq_writer_stmts;

struct sq_store {
	struct ap_store base;
	char *path;
	struct ap_store_opts opts;
	struct sq_dict dict;

	/* writer */
	sqlite3 *wdb;
	struct sq_writer_stmts *ws;
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t qlock;
	pthread_cond_t qcond, donecond;
	struct sq_job *qhead, *qtail;
	size_t qlen;
	bool stopping;
	uint64_t next_retention_ns; /* monotonic; 0 = none */
	int64_t wm[SQ_NTIERS];	    /* the writer's watermarks (wm[0] unused) */
	uint64_t newest_ns;	    /* the newest push time committed */

	/* readers */
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	struct sq_conn *pool[SQ_POOL_MAX];
	size_t npool, nopen;

	/* counters, under slock */
	pthread_mutex_t slock;
	struct ap_store_stats st;
};

/* Writer side (sqlite_write.c, sqlite_schema.c). */
int sq_schema_create(sqlite3 *db, char *err, size_t errlen);
int sq_writer_stmts_prepare(sqlite3 *db, struct sq_writer_stmts **out, char *err,
			    size_t errlen);
void sq_writer_stmts_free(struct sq_writer_stmts *ws);
int sq_writer_start(struct sq_store *s, char *err, size_t errlen);
void sq_writer_stop(struct sq_store *s);
int sq_write(struct ap_store *st, const struct ap_store_write *w, bool *duplicate, char *err,
	     size_t errlen);
int sq_retention(struct ap_store *st, uint64_t before_ns, char *err, size_t errlen);

/* Reader side (sqlite.c: pool; sqlite_read.c: queries). */
struct sq_conn *sq_conn_get(struct sq_store *s, char *err, size_t errlen);
void sq_conn_put(struct sq_store *s, struct sq_conn *c);
int sq_merge(struct ap_store *st, const struct ap_store_query *q, struct ap_profile **out,
	     char *err, size_t errlen);
int sq_series(struct ap_store *st, const struct ap_store_query *q, uint64_t step_ns,
	      struct ap_store_series *out, char *err, size_t errlen);
int sq_label_names(struct ap_store *st, const struct ap_store_query *q,
		   struct ap_store_strings *out, char *err, size_t errlen);
int sq_label_values(struct ap_store *st, const char *name, const struct ap_store_query *q,
		    struct ap_store_strings *out, char *err, size_t errlen);
int sq_modes(struct ap_store *st, const struct ap_store_query *q, struct ap_store_strings *out,
	     char *err, size_t errlen);
int sq_rows(struct ap_store *st, const struct ap_store_query *q, struct ap_store_rows *out,
	    char *err, size_t errlen);

/* A SQLite failure as -EIO (or -ENOMEM, -ENOSPC, -EBUSY) with its message. */
int sq_fail(sqlite3 *db, int rc, const char *what, char *err, size_t errlen);

static inline struct sq_store *sq_of(struct ap_store *s)
{
	return (struct sq_store *)s;
}

static inline int64_t sq_hour(uint64_t ns)
{
	return (int64_t)(ns / SQ_HOUR_NS);
}

#endif
