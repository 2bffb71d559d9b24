// SPDX-License-Identifier: MIT
/*
 * The SQLite backend's tables (docs/storage.md, "Schema") and the writer's prepared
 * statements. Values are unsigned 64-bit and stored in SQLite's signed INTEGER bit for bit;
 * sums in SQL go through ap_uadd(), which adds them as unsigned and saturates (SQLite's own +
 * would turn an overflow into a REAL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "sqlite_internal.h"
#include "sqlite_stmts.h"

int sq_fail(sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
	int ret;

	switch (rc & 0xff) {
	case SQLITE_NOMEM: ret = -ENOMEM; break;
	case SQLITE_FULL: ret = -ENOSPC; break;
	case SQLITE_BUSY: case SQLITE_LOCKED: ret = -EBUSY; break;
	case SQLITE_CANTOPEN: case SQLITE_PERM: case SQLITE_READONLY: ret = -EACCES; break;
	default: ret = -EIO;
	}
	return ap_errf(err, errlen, ret, "sqlite: %s: %s", what,
		       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static const char *const schema[] = {
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
	"CREATE TABLE IF NOT EXISTS frames(id INTEGER PRIMARY KEY, last_h INTEGER NOT NULL,"
	" name TEXT NOT NULL, module TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, flags INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS stacks(id INTEGER PRIMARY KEY, last_h INTEGER NOT NULL,"
	" frames BLOB NOT NULL)",
	"CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, first_h INTEGER NOT NULL,"
	" last_h INTEGER NOT NULL, labels BLOB NOT NULL, vtypes BLOB NOT NULL,"
	" period INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS pushes(id TEXT PRIMARY KEY, t INTEGER NOT NULL) WITHOUT ROWID",
	"CREATE INDEX IF NOT EXISTS pushes_t ON pushes(t)",
};

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc ? sq_fail(db, rc, sql, err, errlen) : 0;
}

int sq_schema_create(sqlite3 *db, char *err, size_t errlen)
{
	char sql[512];
	int ret;

	/* only effective before the first table exists: a new file reclaims freed pages on
	 * PRAGMA incremental_vacuum (retention) */
	ret = exec(db, "PRAGMA auto_vacuum=INCREMENTAL", err, errlen) ?:
	      exec(db, "BEGIN IMMEDIATE", err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]) && !ret; i++)
		ret = exec(db, schema[i], err, errlen);
	for (int k = 0; k < SQ_NTIERS && !ret; k++) {
		snprintf(sql, sizeof(sql),
			 "CREATE TABLE IF NOT EXISTS c_%s(series INTEGER NOT NULL, t INTEGER NOT NULL,"
			 " n INTEGER NOT NULL, v0 INTEGER NOT NULL, v1 INTEGER NOT NULL,"
			 " v2 INTEGER NOT NULL, v3 INTEGER NOT NULL, data BLOB NOT NULL,"
			 " PRIMARY KEY(%s)) WITHOUT ROWID",
			 sq_tiers[k].name, sq_tiers[k].time_major ? "t, series" : "series, t");
		ret = exec(db, sql, err, errlen);
		if (ret)
			break;
		snprintf(sql, sizeof(sql),
			 "CREATE TABLE IF NOT EXISTS r_%s(series INTEGER NOT NULL, t INTEGER NOT NULL,"
			 " tbl TEXT NOT NULL, key TEXT NOT NULL, v0 INTEGER NOT NULL,"
			 " v1 INTEGER NOT NULL, v2 INTEGER NOT NULL, v3 INTEGER NOT NULL, hist BLOB,"
			 " PRIMARY KEY(series, t, tbl, key)) WITHOUT ROWID",
			 sq_tiers[k].name);
		ret = exec(db, sql, err, errlen);
	}
	if (!ret)
		ret = exec(db, "INSERT OR IGNORE INTO meta(k, v) VALUES('schema', 3)", err, errlen);
	if (!ret) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = 'schema'", -1, &st,
					    NULL);

		if (rc)
			ret = sq_fail(db, rc, "reading the schema version", err, errlen);
		else {
			if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != 3)
				ret = ap_errf(err, errlen, -EINVAL,
					      "sqlite: the file has another schema version than "
					      "this build's (3): use a new file");
			sqlite3_finalize(st);
		}
	}
	if (ret) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
	return exec(db, "COMMIT", err, errlen);
}

/* ---- SQL functions ---- */

static uint64_t uadd(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static void fn_uadd(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_result_int64(ctx, (int64_t)uadd((uint64_t)sqlite3_value_int64(argv[0]),
						 (uint64_t)sqlite3_value_int64(argv[1])));
}

/* Histogram blobs: AP_HIST_SLOTS little-endian u64; NULL is all zeros. */
static void fn_hist_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *a = sqlite3_value_blob(argv[0]), *b = sqlite3_value_blob(argv[1]);
	size_t la = a ? (size_t)sqlite3_value_bytes(argv[0]) : 0;
	size_t lb = b ? (size_t)sqlite3_value_bytes(argv[1]) : 0;
	uint64_t out[AP_HIST_SLOTS];

	(void)argc;
	if (!la && !lb) {
		sqlite3_result_null(ctx);
		return;
	}
	memset(out, 0, sizeof(out));
	for (size_t i = 0; i < AP_HIST_SLOTS; i++) {
		uint64_t x = 0, y = 0;

		if ((i + 1) * 8 <= la)
			memcpy(&x, a + i * 8, 8);
		if ((i + 1) * 8 <= lb)
			memcpy(&y, b + i * 8, 8);
		out[i] = uadd(x, y);
	}
	sqlite3_result_blob(ctx, out, sizeof(out), SQLITE_TRANSIENT);
}

int sq_functions_register(sqlite3 *db)
{
	int rc = sqlite3_create_function(db, "ap_uadd", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
					 NULL, fn_uadd, NULL, NULL);

	if (!rc)
		rc = sqlite3_create_function(db, "ap_hist_add", 2,
					     SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_hist_add,
					     NULL, NULL);
	return rc;
}

/* ---- the writer's statements ---- */

void sq_writer_stmts_free(struct sq_writer_stmts *ws)
{
	sqlite3_stmt **all;

	if (!ws)
		return;
	all = (sqlite3_stmt **)ws;
	for (size_t i = 0; i < sizeof(*ws) / sizeof(sqlite3_stmt *); i++)
		sqlite3_finalize(all[i]);
	free(ws);
}

int sq_writer_stmts_prepare(sqlite3 *db, struct sq_writer_stmts **out, char *err,
			    size_t errlen)
{
	struct sq_writer_stmts *ws = calloc(1, sizeof(*ws));
	struct {
		sqlite3_stmt **st;
		char sql[512];
	} list[64];
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!ws)
		return -ENOMEM;
#define ADD(field, ...)                                                                            \
	do {                                                                                       \
		list[n].st = &ws->field;                                                           \
		snprintf(list[n].sql, sizeof(list[n].sql), __VA_ARGS__);                           \
		n++;                                                                               \
	} while (0)
	ADD(begin, "BEGIN IMMEDIATE");
	ADD(commit, "COMMIT");
	ADD(rollback, "ROLLBACK");
	ADD(push_get, "SELECT 1 FROM pushes WHERE id = ?1");
	ADD(push_put, "INSERT INTO pushes(id, t) VALUES(?1, ?2)");
	ADD(push_del, "DELETE FROM pushes WHERE t < ?1");
	ADD(frame_put, "INSERT INTO frames(id, last_h, name, module, file, line, kind, flags)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	ADD(stack_put, "INSERT INTO stacks(id, last_h, frames) VALUES(?1, ?2, ?3)");
	ADD(series_put, "INSERT INTO series(id, first_h, last_h, labels, vtypes, period)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
	ADD(frame_touch, "UPDATE frames SET last_h = ?2 WHERE id = ?1");
	ADD(stack_touch, "UPDATE stacks SET last_h = ?2 WHERE id = ?1");
	ADD(series_touch, "UPDATE series SET first_h = ?2, last_h = ?3 WHERE id = ?1");
	ADD(frame_del, "DELETE FROM frames WHERE id = ?1");
	ADD(stack_del, "DELETE FROM stacks WHERE id = ?1");
	ADD(series_del, "DELETE FROM series WHERE id = ?1");
	ADD(meta_put, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)");
	for (int k = 0; k < SQ_NTIERS; k++) {
		const char *t = sq_tiers[k].name;

		ADD(chunk_get[k], "SELECT n, v0, v1, v2, v3, data FROM c_%s WHERE series = ?1 AND t = ?2",
		    t);
		ADD(chunk_put[k],
		    "INSERT OR REPLACE INTO c_%s(series, t, n, v0, v1, v2, v3, data)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		    t);
		if (sq_tiers[k].time_major)
			ADD(chunk_del[k], "DELETE FROM c_%s WHERE t < ?2 RETURNING n", t);
		else
			ADD(chunk_del[k],
			    "DELETE FROM c_%s WHERE series = ?1 AND t < ?2 RETURNING n", t);
		ADD(row_put[k],
		    "INSERT INTO r_%s(series, t, tbl, key, v0, v1, v2, v3, hist)"
		    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		    " ON CONFLICT(series, t, tbl, key) DO UPDATE SET v0 = ap_uadd(v0, excluded.v0),"
		    " v1 = ap_uadd(v1, excluded.v1), v2 = ap_uadd(v2, excluded.v2),"
		    " v3 = ap_uadd(v3, excluded.v3), hist = ap_hist_add(hist, excluded.hist)",
		    t);
		ADD(row_del[k], "DELETE FROM r_%s WHERE series = ?1 AND t < ?2", t);
		if (sq_tiers[k].time_major)
			ADD(chunk_range[k],
			    "SELECT series, t, data FROM c_%s WHERE t >= ?2 AND t < ?3", t);
		else
			ADD(chunk_range[k],
			    "SELECT series, t, data FROM c_%s WHERE series = ?1 AND t >= ?2 AND"
			    " t < ?3", t);
	}
#undef ADD
	for (size_t i = 0; i < n; i++) {
		rc = sqlite3_prepare_v3(db, list[i].sql, -1, SQLITE_PREPARE_PERSISTENT, list[i].st,
					NULL);
		if (rc) {
			sq_fail(db, rc, list[i].sql, err, errlen);
			sq_writer_stmts_free(ws);
			return -EIO;
		}
	}
	*out = ws;
	return 0;
}
