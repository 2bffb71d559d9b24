/* SPDX-License-Identifier: MIT */
/*
 * The aggregator's storage: one table of operations (like the agent's collector table) and one
 * file per backend (sqlite.c, the embedded default; clickhouse.c, the scale-out one). Ingest and query code
 * talk only to this header, so a backend slots in without touching them.
 *
 * Data model
 * - A *series* is a label set. Every series has the label `mode` (the profile type: "cpu",
 *   "lock", "syscall", or a Pyroscope profile name such as "process_cpu", "wall", "memory").
 *   A stored sample's series = the push's labels (host, mode, service_name, every --label,
 *   tenant) + the sample's own: `pid` and `comm` (when non-zero/non-empty) and every string or
 *   numeric label of the sample (numbers in decimal). Label names are [A-Za-z_][A-Za-z0-9_.]*.
 * - A series also has its value types (e.g. samples/count + cpu/nanoseconds, at most
 *   AP_MAX_VALUES) and its period type; merges line values up by value-type name.
 * - Stacks (frames: name, module, file, line, kind, inlined flag) and label sets are stored once,
 *   keyed by content hash; samples reference them with a time and values.
 * - Table rows (lock and syscall modes' own tables) are stored per series too and merged by
 *   (table, key) with their counters and histograms summed.
 *
 * Threads: every operation may be called from many threads at once (the HTTP server's pool).
 * A backend serialises writes itself (one writer thread, batched transactions).
 */
#ifndef AP_STORAGE_H
#define AP_STORAGE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/pprof_flat.h"
#include "lib/hist.h"
#include "lib/profile.h"

/* Limits every backend enforces (and the server before it). */
#define AP_STORE_MAX_LABELS 32	      /* labels per series, after the sample's own are added */
#define AP_STORE_MAX_LABEL_NAME 128   /* bytes */
#define AP_STORE_MAX_LABEL_VALUE 1024 /* bytes */
#define AP_STORE_MAX_PUSH_ID 64	      /* bytes: [A-Za-z0-9_-] */

struct ap_label_kv {
	const char *name;
	const char *value;
};

/* ---- selectors: {mode="cpu",host="db1",comm=~"post.*",pid!="1"} (Prometheus/Parca form) ---- */

enum ap_match_op {
	AP_MATCH_EQ,  /* =  */
	AP_MATCH_NE,  /* != */
	AP_MATCH_RE,  /* =~ (POSIX extended, anchored at both ends, as Prometheus does) */
	AP_MATCH_NRE, /* !~ */
};

struct ap_matcher {
	char *name;
	char *value;
	enum ap_match_op op;
	bool compiled; /* re is valid */
	regex_t re;
};

struct ap_selector {
	struct ap_matcher *m;
	size_t n;
};

/* Parse a selector. "" and "{}" select everything. Values are double-quoted with \" \\ \n
 * escapes; a bare profile-type prefix ("cpu{...}" or "cpu") is read as mode="cpu". On a syntax
 * error returns -EINVAL with the reason and the byte offset in err. */
int ap_selector_parse(const char *text, struct ap_selector *out, char *err, size_t errlen);
void ap_selector_free(struct ap_selector *s);
/* A missing label matches as the empty string (Prometheus). labels need not be sorted. */
bool ap_selector_match(const struct ap_selector *s, const struct ap_label_kv *labels, size_t n);
/* The value of `mode="X"` when the selector names one with =, else NULL. */
const char *ap_selector_mode(const struct ap_selector *s);

/* ---- tables of the lock and syscall modes ---- */

/*
 * One row of a mode's own table, summed over time and series:
 * - "syscall": key = syscall name; v = {calls, errors, total_ns, slow}; hist = latency log2.
 * - "syscall_errno": key = "NAME ERRNO" (e.g. "openat ENOENT"); v[0] = count.
 * - "lock": key = "KIND NAME-OR-ADDR" (e.g. "mutex app_state_lock"); v = {contentions,
 *   wait_ns}; hist = wait log2.
 * - "lock_holder": key = "KIND NAME-OR-ADDR\tHOLDER_COMM"; v = {count, wait_ns} (waits
 *   attributed to that holder).
 * hist slot i counts values in [2^i, 2^(i+1)) ns (slot 0 also 0), as lib/hist.h.
 */
#define AP_STORE_TABLE_VALUES 4
struct ap_table_row {
	const char *table;
	const char *key;
	uint32_t pid;	  /* 0 = none */
	const char *comm; /* NULL/"" = none */
	uint64_t v[AP_STORE_TABLE_VALUES];
	uint64_t hist[AP_HIST_SLOTS];
};

/* ---- writes ---- */

struct ap_store_write {
	/* unique per push; a second write with the same id stores nothing (*duplicate = true).
	 * NULL or "": no de-duplication (Pyroscope clients send none). */
	const char *push_id;
	const struct ap_label_kv *labels; /* the push's labels, `mode` among them */
	size_t nlabels;
	uint64_t from_ns, until_ns; /* the time the push covers; samples are stored at from_ns */
	const struct ap_profile *profile; /* may be NULL when only rows are written */
	/* instead of profile: the push's pprof decoded flat (format/pprof_flat.h), given only
	 * to a backend whose ops->takes_flat is set (the ingest decodes an ap_profile for the
	 * others); the same series, stacks and values as the profile it would make */
	const struct ap_flat_profile *flat;
	const struct ap_table_row *rows;
	size_t nrows;
};

/* ---- queries ---- */

struct ap_store_query {
	const struct ap_selector *sel;
	uint64_t from_ns, until_ns; /* [from, until) */
};

/* One point of a series query: the sums of each value type over [ts, ts + step). */
struct ap_store_point {
	uint64_t ts_ns;
	uint64_t values[AP_MAX_VALUES];
};

struct ap_store_series {
	char *mode;
	char *value_types[AP_MAX_VALUES]; /* "samples/count", ... ; NULL past nvalues */
	size_t nvalues;
	uint64_t step_ns;		  /* the step used (at least the storage's resolution) */
	struct ap_store_point *points;	  /* every step of the range, zeros included */
	size_t npoints;
};
void ap_store_series_free(struct ap_store_series *s);

struct ap_store_rows {
	struct ap_table_row *rows; /* merged by (table, key); pid 0, comm NULL; strings owned */
	size_t n;
};
void ap_store_rows_free(struct ap_store_rows *r);

struct ap_store_strings {
	char **v; /* sorted, unique */
	size_t n;
};
void ap_store_strings_free(struct ap_store_strings *s);

struct ap_store_stats {
	uint64_t bytes;	    /* on disk */
	uint64_t series;
	uint64_t stacks;
	uint64_t sample_rows; /* rows at the finest resolution */
	uint64_t pushes;      /* ids remembered for de-duplication */
	uint64_t writes_ok, writes_failed, duplicates;
	uint64_t retention_runs, retention_deleted_rows;
	/* sample labels not stored because the push had a label of that name with another value
	 * (the push's value is kept) */
	uint64_t label_conflicts;
	uint64_t compactions_failed; /* rollup runs that failed (retried later) */
};

struct ap_store_opts {
	uint64_t retention_ns; /* 0 = keep forever */
};

struct ap_store;

struct ap_store_ops {
	const char *scheme; /* "sqlite" in "sqlite:PATH" */
	int (*open)(const char *location, const struct ap_store_opts *opts, struct ap_store **out,
		    char *err, size_t errlen);
	/* Durable when it returns 0: a crash after that loses nothing. */
	int (*write)(struct ap_store *s, const struct ap_store_write *w, bool *duplicate,
		     char *err, size_t errlen);
	/* The merged profile of every selected series: samples keyed by (stack, comm), pid and
	 * tid 0; the mode's value types; frames symbolized (names, modules, files, lines). */
	int (*merge)(struct ap_store *s, const struct ap_store_query *q, struct ap_profile **out,
		     char *err, size_t errlen);
	int (*series)(struct ap_store *s, const struct ap_store_query *q, uint64_t step_ns,
		      struct ap_store_series *out, char *err, size_t errlen);
	int (*label_names)(struct ap_store *s, const struct ap_store_query *q,
			   struct ap_store_strings *out, char *err, size_t errlen);
	int (*label_values)(struct ap_store *s, const char *name, const struct ap_store_query *q,
			    struct ap_store_strings *out, char *err, size_t errlen);
	/* Distinct modes of the selected series (to refuse a query that mixes them). */
	int (*modes)(struct ap_store *s, const struct ap_store_query *q,
		     struct ap_store_strings *out, char *err, size_t errlen);
	int (*rows)(struct ap_store *s, const struct ap_store_query *q, struct ap_store_rows *out,
		    char *err, size_t errlen);
	/* Delete everything older than before_ns and reclaim the space. */
	int (*retention)(struct ap_store *s, uint64_t before_ns, char *err, size_t errlen);
	void (*stats)(struct ap_store *s, struct ap_store_stats *out);
	void (*close)(struct ap_store *s);
	/* write() takes ap_store_write.flat (the ingest's fast path); false: profile only */
	bool takes_flat;
};

struct ap_store {
	const struct ap_store_ops *ops;
};

/* "sqlite:PATH" or "clickhouse://HOST:PORT/DB...": picks the backend by scheme and opens it.
 * An unknown scheme fails with -EINVAL and a message listing the known ones. */
int ap_store_open(const char *spec, const struct ap_store_opts *opts, struct ap_store **out,
		  char *err, size_t errlen);
void ap_store_close(struct ap_store *s);

extern const struct ap_store_ops ap_sqlite_store_ops;
/* clickhouse://HOST:PORT/DB[?cluster=NAME&user=U&password_file=F] (docs/storage.md) */
extern const struct ap_store_ops ap_clickhouse_store_ops;

#endif
