/* SPDX-License-Identifier: MIT */
/* What the SQLite backend's query files share (sqlite_read.c, sqlite_labels.c). */
#ifndef AP_SQLITE_QUERY_H
#define AP_SQLITE_QUERY_H

#include "sqlite_internal.h"

/* A selected series, its values mapped onto the answer's value types. */
struct picked {
	uint32_t id;
	uint32_t nvalues;
	int map[AP_MAX_VALUES]; /* series value i -> output value, -1: dropped */
	uint32_t comm;		/* profile string id (merge) */
};

/* The answer's value types: the selected series' types by name, in order of appearance. */
struct lineup {
	char *type[AP_MAX_VALUES], *unit[AP_MAX_VALUES];
	size_t n;
	uint64_t dropped; /* value types beyond AP_MAX_VALUES */
	char *period_type, *period_unit, *mode;
	uint64_t period;
	/* hours with data of every series whose id lies between the first and the last picked
	 * one: about what reading a series-major tier by id range costs (sq_scan) */
	uint64_t span_h;
};
void sq_lineup_free(struct lineup *l);

bool sq_overlaps(const struct sq_series *e, uint64_t from, uint64_t until);
int sq_check_range(const struct ap_store_query *q, char *err, size_t errlen);
/* The series with samples a query selects; comm ids are interned into p when p != NULL. */
int sq_pick(struct sq_store *s, const struct ap_store_query *q, struct ap_profile *p,
	    struct picked **out, size_t *nout, struct lineup *l);

/* Run stmts[tier] over each segment for the picked series and call row() on each row of a
 * picked series (rows are (series, t, ...)); time-major tiers are read once for all series.
 * Tier 0's rows are (g, t, n, data) with every series of a push in one grouped blob: entry()
 * is called for each entry of a picked series instead. */
typedef int (*sq_row_fn)(void *ctx, const struct picked *pk, sqlite3_stmt *st, char *err,
			 size_t errlen);
typedef int (*sq_entry_fn)(void *ctx, const struct picked *pk, int64_t t, uint32_t stack,
			   const uint64_t *v, uint32_t nv);
/* by_ids: stmts's twins over a range of series ids (conn's *_ids), used for a series-major
 * tier when reading the rows of every series in the picked ids' range (about span_h hours
 * each, see struct lineup) costs less than a seek per picked series. */
int sq_scan(struct sq_conn *c, sqlite3_stmt *const *stmts, sqlite3_stmt *const *by_ids,
	    uint64_t span_h, const struct sq_segment *seg, size_t nseg, const struct picked *pk,
	    size_t npk, sq_row_fn row, sq_entry_fn entry, void *ctx, char *err, size_t errlen);

#endif
