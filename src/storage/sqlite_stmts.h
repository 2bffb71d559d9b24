/* SPDX-License-Identifier: MIT */
/* The SQLite writer's prepared statements (sqlite_schema.c prepares them; only pointers, so
 * that one loop finalizes them all). */
#ifndef AP_SQLITE_STMTS_H
#define AP_SQLITE_STMTS_H

#include <sqlite3.h>

#include "sqlite_internal.h"

struct sq_writer_stmts {
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *push_get, *push_put, *push_del;
	sqlite3_stmt *frame_put, *stack_put, *series_put;
	sqlite3_stmt *frame_touch, *stack_touch, *series_touch;
	sqlite3_stmt *frame_del, *stack_del, *series_del;
	sqlite3_stmt *chunk_get[SQ_NTIERS], *chunk_put[SQ_NTIERS], *chunk_del[SQ_NTIERS];
	sqlite3_stmt *row_put[SQ_NTIERS], *row_del[SQ_NTIERS];
	sqlite3_stmt *chunk_range[SQ_NTIERS]; /* t, data of (series, [lo, hi)) */
	sqlite3_stmt *meta_put;
};

/* ap_uadd(a, b) and ap_hist_add(a, b) on a connection. Returns a SQLite code. */
int sq_functions_register(sqlite3 *db);

#endif
