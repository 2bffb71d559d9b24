/* SPDX-License-Identifier: MIT */
/*
 * Every SQL statement of the ClickHouse backend, in one place, so that a newer-only feature can
 * be chosen by the server's version (SELECT version()). All of it runs on Debian's 18.16 and on
 * current releases: no TTL (added by version where the server has it), no Map, no
 * LowCardinality, no DateTime64, ARRAY JOIN only inside subqueries (none is needed).
 *
 * Placeholders: the C code fills `%s` with the (validated, [A-Za-z0-9_]) database name, table
 * names and engine clauses; values are never put into DDL, and the values that go into queries
 * (label values, push ids) are escaped by ch_sql_str() (clickhouse_http.c).
 *
 * In cluster mode every table below is created ON CLUSTER as `<name>_local` with the Replicated
 * variant of its engine, and `<name>` becomes a Distributed table over the locals sharded by
 * `shard_key`; the materialized views read and write the local tables on every shard.
 */
#ifndef AP_CLICKHOUSE_SQL_H
#define AP_CLICKHOUSE_SQL_H

#define CH_SCHEMA_VERSION 3

/* URL settings of queries: IN lists of many series, stacks or push ids exceed the default
 * 256 KiB of text and 50,000 AST elements */
#define CH_QUERY_SETTINGS                                                                          \
	"&max_query_size=268435456&max_ast_elements=5000000&max_expanded_ast_elements=5000000"

struct ch_table_def {
	const char *name;
	const char *columns;
	const char *engine;	 /* MergeTree family name (Replicated prefix added for clusters) */
	const char *engine_args; /* inside the engine's parentheses ("" or a version column) */
	const char *partition;	 /* PARTITION BY ("" = none) */
	const char *order;	 /* ORDER BY */
	const char *shard_key;	 /* the Distributed table's sharding expression */
	bool by_day;		 /* partitioned toYYYYMMDD: retention drops whole days */
};

/*
 * Schema version 1.
 * - ap_samples: one row per (push, series, stack) at the push's time (t seconds, ns exact);
 *   `push` = hash of the push id (recovery of an interrupted write), `rv` = the newest retention
 *   run the writer knew (rows hidden by later runs, see ch_vis()), `sk` the shard key (the
 *   push's host: a push lands on one shard, in one block; Distributed shards by cityHash64(sk),
 *   the stored hashes all being odd).
 * - ap_samples_m1 / _h1: sums per minute / hour (SummingMergeTree), filled by materialized views
 *   at insert; reads always sum (never rely on merges).
 * - ap_series, ap_stacks, ap_frames: content-addressed dictionaries (id = 64-bit content hash),
 *   ReplacingMergeTree keyed by id, re-inserted once per day of data so that dropping old day
 *   partitions never orphans live rows; reads take any() per id.
 * - ap_pushes: push ids (state 1 = being written, 2 = stored) for de-duplication in the
 *   database, shared by every aggregator.
 * - ap_retention: retention runs (run id = the aggregator's clock in ns, cut-off); queries hide
 *   rows below the cut-off of every run newer than the row (18.16 can resurrect dropped parts).
 * - ap_schema: the schema version (max(version) is the store's).
 * Version 2 adds:
 * - ap_stored: the pushes whose samples are stored (push hash, t, rv), filled by the
 *   materialized view ap_stored_mv from every INSERT into ap_samples, in that INSERT: the writer
 *   needs no "stored" statement of its own for a push with samples (ap_pushes state 2 stays for
 *   pushes without samples, and for stores written by version 1).
 * Version 3 replaces the three views of version 2 (and their tables ap_samples_m1, _h1,
 * ap_stored) by one:
 * - ap_roll: every rollup and the stored marks in one SummingMergeTree, filled by the one
 *   materialized view ap_roll_mv from every INSERT into ap_samples: `res` 1 = sums per minute,
 *   2 per hour, 3 per day (UTC buckets, computed from the seconds: the server's timezone does
 *   not matter), 4 = the stored mark of a push (series = the push hash, stack 0, v0 = its raw
 *   rows; a SummingMergeTree drops rows whose sums are all 0). A samples INSERT makes two parts
 *   (the samples and ap_roll) instead of four, and a day tier costs no part of its own.
 * - A store migrated from version 2 keeps the old tables (without their views) until retention
 *   empties them: rows inserted before the migration are there, rows after it in ap_roll, none
 *   in both, so queries read both (s->legacy_roll).
 * - gk, the group key (comm and value types, ch_group_key()), is a column of ap_series,
 *   ap_samples and ap_roll: a query groups the rows by it with no join to ap_series. Rows
 *   written before version 3 have gk 0; a store with such rows (ap_schema has a version below
 *   3: s->legacy_gk) computes the key from the labels and joins it, as version 2 did.
 */
static const struct ch_table_def ch_tables[] = {
    {"ap_schema", "version UInt32, at DateTime", "MergeTree", "", "", "version", "version", false},
    {"ap_retention", "run UInt64, cutoff DateTime", "MergeTree", "", "", "run", "run", false},
    {"ap_pushes", "id String, t DateTime, state UInt8, at UInt64, rv UInt64", "ReplacingMergeTree",
     "at", "toYYYYMMDD(t)", "(id, state)", "cityHash64(id)", true},
    {"ap_series",
     "day Date, id UInt64, lk Array(String), lv Array(String), vt Array(String), "
     "period UInt64, gk UInt64",
     "ReplacingMergeTree", "", "toYYYYMMDD(day)", "id", "cityHash64(id)", true},
    {"ap_stacks", "day Date, id UInt64, frames Array(UInt64)", "ReplacingMergeTree", "",
     "toYYYYMMDD(day)", "id", "cityHash64(id)", true},
    {"ap_frames",
     "day Date, id UInt64, name String, module String, file String, line UInt32, "
     "kind UInt8, flags UInt8",
     "ReplacingMergeTree", "", "toYYYYMMDD(day)", "id", "cityHash64(id)", true},
    {"ap_samples",
     "t DateTime, ns UInt64, series UInt64, stack UInt64, v0 UInt64, v1 UInt64, v2 UInt64, "
     "v3 UInt64, push UInt64, rv UInt64, sk UInt64, gk UInt64",
     "MergeTree", "", "toYYYYMMDD(t)", "(series, t)", "cityHash64(sk)", true},
    {"ap_roll",
     "res UInt8, t DateTime, series UInt64, stack UInt64, rv UInt64, v0 UInt64, v1 UInt64, "
     "v2 UInt64, v3 UInt64, gk UInt64",
     "SummingMergeTree", "(v0, v1, v2, v3)", "toYYYYMMDD(t)", "(res, series, t, stack, rv)",
     "cityHash64(series)", true},
    {"ap_rows",
     "t DateTime, ns UInt64, series UInt64, tbl String, key String, v0 UInt64, v1 UInt64, "
     "v2 UInt64, v3 UInt64, hist Array(UInt64), push UInt64, rv UInt64, sk UInt64",
     "MergeTree", "", "toYYYYMMDD(t)", "(series, t)", "cityHash64(sk)", true},
};
#define CH_NTABLES (sizeof(ch_tables) / sizeof(ch_tables[0]))

/* ap_roll's resolutions (res) */
enum ch_res { CH_RES_M1 = 1, CH_RES_H1 = 2, CH_RES_D1 = 3, CH_RES_STORED = 4 };

/* The tables and views of version 2 that version 3 replaced: a migrated store keeps the tables
 * (read with ap_roll, dropped by retention), the views go. */
static const char *const ch_legacy_tables[] = {"ap_samples_m1", "ap_samples_h1", "ap_stored"};
static const char *const ch_legacy_views[] = {"ap_samples_m1_mv", "ap_samples_h1_mv",
					       "ap_stored_mv"};
#define CH_NLEGACY (sizeof(ch_legacy_tables) / sizeof(ch_legacy_tables[0]))

/* DDL. %1 db, %2 table, %3 suffix ("" or "_local"), %4 ON CLUSTER clause, ... */
#define CH_SQL_CREATE_DB "CREATE DATABASE IF NOT EXISTS %s%s"
/* db, name, suffix, on_cluster, columns, engine, engine args, partition clause, order */
#define CH_SQL_CREATE_TABLE                                                                        \
	"CREATE TABLE IF NOT EXISTS %s.%s%s%s (%s) ENGINE = %s(%s)%s ORDER BY %s"
/* db, name, on_cluster, db, name, cluster, db, name, shard key */
#define CH_SQL_CREATE_DIST                                                                         \
	"CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s_local ENGINE = Distributed(%s, %s, "          \
	"%s_local, %s)"
/* The one view (version 3): each inserted sample row once per resolution (ARRAY JOIN), its
 * time cut to the bucket, summed per bucket; and per push one stored mark. db, on_cluster, db,
 * suffix, db, suffix. */
#define CH_ROLL_VIEW "ap_roll_mv"
#define CH_ROLL_BUCKET "multiIf(res = 1, 60, res = 2, 3600, res = 3, 86400, 1)"
#define CH_SQL_CREATE_ROLL_VIEW                                                                    \
	"CREATE MATERIALIZED VIEW IF NOT EXISTS %s.ap_roll_mv%s TO %s.ap_roll%s AS SELECT res, "   \
	"toDateTime(intDiv(toUInt32(t), " CH_ROLL_BUCKET ") * " CH_ROLL_BUCKET ") AS t, "          \
	"if(res = 4, push, series) AS series, if(res = 4, toUInt64(0), stack) AS stack, rv, "     \
	"sum(if(res = 4, toUInt64(1), v0)) AS v0, sum(if(res = 4, toUInt64(0), v1)) AS v1, "       \
	"sum(if(res = 4, toUInt64(0), v2)) AS v2, sum(if(res = 4, toUInt64(0), v3)) AS v3, "       \
	"if(res = 4, toUInt64(0), gk) AS gk FROM "                                                 \
	"%s.ap_samples%s ARRAY JOIN [1, 2, 3, 4] AS res WHERE res != 4 OR push != 0 GROUP BY "     \
	"res, t, series, stack, rv, gk"
/* db, view, on_cluster */
#define CH_SQL_DROP_VIEW "DROP TABLE IF EXISTS %s.%s%s"
/* Does the store have rows of versions before 3 (a version below 3 in ap_schema: rows
 * without gk), version 2's tables? db, db (their Distributed names in a cluster) */
#define CH_SQL_LEGACY                                                                              \
	"SELECT (SELECT toUInt64(min(version)) FROM %s.ap_schema), toUInt64(countIf(name = "      \
	"'ap_samples_h1')), toUInt64(countIf(name = 'ap_stored')) FROM system.tables WHERE "      \
	"database = '%s' FORMAT RowBinary"
/* Retention on servers with TTL (19.6 and later): db, table(+suffix), on_cluster, seconds */
#define CH_SQL_TTL "ALTER TABLE %s.%s%s MODIFY TTL t + toIntervalSecond(%llu)"
#define CH_TTL_MIN_MAJOR 19
#define CH_TTL_MIN_MINOR 6

/* Migrations: CH_MIGRATIONS[v] takes a store of version v to v + 1 (db, suffix, on_cluster
 * filled like the DDL). Version 0 is the layout before the schema table existed: ap_samples
 * without the shard key `sk`. A statement that fails because its work is already done (code
 * 15: the column exists, when two aggregators migrate at once) counts as done. */
#define CH_SQL_MIGRATE_0_SK "ALTER TABLE %s.ap_samples%s%s ADD COLUMN sk UInt64 DEFAULT 0"
/* Version 2 -> 3 also adds gk to ap_samples and ap_series: db, table(+suffix), on_cluster */
#define CH_SQL_MIGRATE_2_GK "ALTER TABLE %s.%s%s%s ADD COLUMN gk UInt64 DEFAULT 0"
/* Version 1 -> 2: ap_stored and ap_stored_mv were new objects, made by the creation step.
 * Version 2 -> 3: the three views of version 2 are dropped (CH_SQL_DROP_VIEW; their tables stay
 * and are read as legacy), then the creation step makes ap_roll and ap_roll_mv. Run it with no
 * other aggregator writing (docs/deploy.md, "Upgrades"): a sample INSERT between the two steps
 * gets no rollup rows. */

#define CH_SQL_VERSION "SELECT version()"
#define CH_SQL_HAS_TABLE                                                                           \
	"SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s' FORMAT RowBinary"
#define CH_SQL_SCHEMA_GET "SELECT toUInt32(max(version)) FROM %s.ap_schema FORMAT RowBinary"
/* The fast start: the version and how many of the expected tables and views exist, in one
 * query (an error, e.g. no database yet, means the full schema step). db, tables source
 * ("system.tables" or "cluster('NAME', system.tables)": every shard), db, names, cluster, db.
 * The last column is the number of shards ("" cluster: 0). */
#define CH_SQL_SCHEMA_CHECK                                                                        \
	"SELECT toUInt32(max(version)), (SELECT count() FROM %s WHERE database = '%s' AND name "   \
	"IN (%s)), (SELECT toUInt64(uniqExact(shard_num)) FROM system.clusters WHERE cluster = "   \
	"'%s') FROM %s.ap_schema FORMAT RowBinary"
#define CH_SQL_SCHEMA_PUT "INSERT INTO %s.ap_schema (version, at) VALUES (%d, now())"
/* a store of version 0 (no ap_schema) records that it has rows from before version 3 */
#define CH_SQL_SCHEMA_PUT_0 "INSERT INTO %s.ap_schema (version, at) VALUES (0, now())"

/* ---- retention ---- */
#define CH_SQL_RUNS_GET "SELECT run, toUInt32(cutoff) FROM %s.ap_retention FORMAT RowBinary"
#define CH_SQL_RUN_PUT "INSERT INTO %s.ap_retention (run, cutoff) VALUES (%llu, %llu)"
/* runs dominated by a later run with a cut-off as late (they hide nothing more) */
#define CH_SQL_RUNS_PRUNE                                                                          \
	"ALTER TABLE %s.ap_retention%s%s DELETE WHERE run < %llu AND cutoff <= %llu"
/* the visible sample rows a run hides (for the stats): db, visibility, cut-off */
#define CH_SQL_RUN_COUNT                                                                           \
	"SELECT count() FROM %s.ap_samples WHERE %s AND t < toDateTime(%llu) FORMAT RowBinary"
#define CH_SQL_PARTS                                                                               \
	"SELECT DISTINCT table, partition FROM system.parts WHERE database = '%s' AND active "     \
	"AND table IN (%s) FORMAT RowBinary"
/* db, table (with suffix), on_cluster, partition (digits: checked) */
#define CH_SQL_DROP_PART "ALTER TABLE %s.%s%s DROP PARTITION %s"

/* ---- writes ---- */
/* dedup: db, ids, visibility, db, push hashes, visibility, legacy part ("" or
 * CH_SQL_PUSHES_LEGACY). Rows (id, state, at of state 1, push hash): ap_pushes by id (hash 0),
 * then the pushes ap_roll marks stored (id "", state 2). */
#define CH_SQL_PUSHES_GET                                                                          \
	"SELECT id, max(state), maxIf(at, state = 1), toUInt64(0) FROM %s.ap_pushes WHERE id IN "  \
	"(%s) AND %s GROUP BY id UNION ALL SELECT '', toUInt8(2), toUInt64(0), series FROM "      \
	"%s.ap_roll WHERE res = 4 AND series IN (%s) AND %s GROUP BY series%s FORMAT RowBinary"
/* the marks of version 2 (a migrated store): db, push hashes, visibility */
#define CH_SQL_PUSHES_LEGACY                                                                       \
	" UNION ALL SELECT '', toUInt8(2), toUInt64(0), push FROM %s.ap_stored WHERE push IN (%s) " \
	"AND %s GROUP BY push"
#define CH_SQL_PUSHES_INS "INSERT INTO %s.ap_pushes (id, t, state, at, rv) FORMAT RowBinary"
/* did an interrupted write of this push store its rows? db, table, push hash, t */
#define CH_SQL_PUSH_ROWS                                                                           \
	"SELECT count() FROM %s.%s WHERE push = %llu AND t = toDateTime(%llu) FORMAT RowBinary"
#define CH_SQL_SERIES_INS                                                                          \
	"INSERT INTO %s.ap_series (day, id, lk, lv, vt, period, gk) FORMAT RowBinary"
#define CH_SQL_STACKS_INS "INSERT INTO %s.ap_stacks (day, id, frames) FORMAT RowBinary"
#define CH_SQL_FRAMES_INS                                                                          \
	"INSERT INTO %s.ap_frames (day, id, name, module, file, line, kind, flags) FORMAT "        \
	"RowBinary"
#define CH_SQL_SAMPLES_INS                                                                         \
	"INSERT INTO %s.ap_samples (t, ns, series, stack, v0, v1, v2, v3, push, rv, sk, gk) "      \
	"FORMAT RowBinary"
#define CH_SQL_ROWS_INS                                                                            \
	"INSERT INTO %s.ap_rows (t, ns, series, tbl, key, v0, v1, v2, v3, hist, push, rv, sk) "    \
	"FORMAT RowBinary"

/* ---- queries ---- */
/* The visibility rule (clickhouse.c, ch_vis()): rows of t and rv hidden by retention runs */
#define CH_SQL_VIS_ALL "1"
#define CH_SQL_VIS_BEGIN "multiIf("
#define CH_SQL_VIS_STEP "rv < %llu, t >= toDateTime(%llu), " /* run id, cut-off seconds */
#define CH_SQL_VIS_END "1)"
/*
 * Selecting series in the server. A label matcher = or != becomes a condition on the label
 * arrays with exactly the C selector's meaning (a missing label is ""); regex matchers are
 * applied in C (POSIX, not ClickHouse's re2), and then the ids of the series they keep are sent
 * once (CH_SQL_JOIN_IDS). Label name and value are quoted by ch_sql_str.
 */
#define CH_SQL_LABEL_EQ " AND arrayExists((k, v) -> k = %s AND v = %s, lk, lv)"
#define CH_SQL_LABEL_NE " AND NOT arrayExists((k, v) -> k = %s AND v = %s, lk, lv)"
#define CH_SQL_LABEL_EMPTY " AND NOT arrayExists((k, v) -> k = %s AND v != '', lk, lv)"
#define CH_SQL_LABEL_SET " AND arrayExists((k, v) -> k = %s AND v != '', lk, lv)"
/* dictionary rows of the days of the data (a day partition holds a row of every series with
 * samples that day): first day, last day ('YYYY-MM-DD', UTC) */
#define CH_SQL_SERIES_DAYS "day >= toDate('%s') AND day <= toDate('%s')"
/* A series' group key: its comm and value-type lineup (the C side's groups; C learns the key
 * of each series from CH_SQL_PICK): the gk column, or in a store with rows from before
 * version 3 this expression (and a join gives the rows their key) */
#define CH_SQL_GK_EXPR "cityHash64(lv[indexOf(lk, 'comm')], vt)"
#define CH_SQL_UNION " UNION ALL "
/* The series of the ids a subquery gives: db, series filter (days, matchers), subquery. */
#define CH_SQL_PICK                                                                                \
	"SELECT id, any(lk), any(lv), any(vt), any(period), any(%s) FROM %s.ap_series WHERE %s "   \
	"AND id GLOBAL IN (%s) GROUP BY id FORMAT RowBinary"
/* The series of the days of a range (a superset of those with samples in it; a merge keeps
 * only the groups that have rows): db, series filter. CH_SQL_PICK_GROUPS gives one series
 * per group (a whole row: any() of a tuple), enough when the filter is the whole selector. */
#define CH_SQL_PICK_DAYS                                                                           \
	"SELECT id, any(lk), any(lv), any(vt), any(period), any(%s) FROM %s.ap_series WHERE %s "   \
	"GROUP BY id FORMAT RowBinary"
#define CH_SQL_PICK_GROUPS                                                                         \
	"SELECT any((id, lk, lv, vt, period)), %s AS g FROM %s.ap_series WHERE %s GROUP BY g "     \
	"FORMAT RowBinary"
/* the series with samples in whole hours around the range: db, lo, hi seconds, visibility;
 * CH_SQL_PICK_H1_LEGACY the same from version 2's table */
#define CH_SQL_PICK_H1                                                                             \
	"SELECT series FROM %s.ap_roll WHERE res = 2 AND t >= toDateTime(%llu) AND t < "           \
	"toDateTime(%llu) AND %s"
#define CH_SQL_PICK_H1_LEGACY                                                                      \
	"SELECT series FROM %s.ap_samples_h1 WHERE t >= toDateTime(%llu) AND t < "                 \
	"toDateTime(%llu) AND %s"
/* the series with table rows there (rows have no rollup) */
#define CH_SQL_PICK_ROWS                                                                           \
	"SELECT series FROM %s.ap_rows WHERE t >= toDateTime(%llu) AND t < toDateTime(%llu) AND "  \
	"%s"
/* the rows of the selected series (no id list: ClickHouse selects them): db, series filter */
#define CH_SQL_SEL_SERIES "series GLOBAL IN (SELECT id FROM %s.ap_series WHERE %s)"
/* the series a regex matcher kept (C): the ids */
#define CH_SQL_JOIN_IDS " AND id IN (%s)"
#define CH_SQL_SEL_IDS " AND series IN (%s)"
/* The segments of a plan, one SELECT per table: the raw rows of the edges, the rollup rows of
 * the whole minutes, hours and days (ap_roll; a migrated store also version 2's tables). Each
 * SELECT: group key (", gk" or "": joined), time column ("" or CH_SQL_TS_*), values
 * (", v0, v1, ..."), db, table, resolution (CH_SQL_RES or "1"), series condition, the OR of
 * its ranges, visibility. */
#define CH_SQL_SEG                                                                                 \
	"SELECT series, stack%s%s%s FROM %s.%s WHERE %s AND %s AND (%s) AND %s"
#define CH_SQL_TS_RAW ", ns AS ts"
#define CH_SQL_TS_ROLL ", toUInt64(t) * 1000000000 AS ts"
#define CH_SQL_OR " OR "
/* a raw range [ns lo, ns hi) (t bounds for the index): t lo, t hi, ns lo, ns hi */
#define CH_SQL_RANGE_RAW                                                                           \
	"(t >= toDateTime(%llu) AND t <= toDateTime(%llu) AND ns >= %llu AND ns < %llu)"
/* ap_roll's rows of one resolution */
#define CH_SQL_RES "res = %d"
/* a rollup's range: lo, hi seconds */
#define CH_SQL_RANGE_T "(t >= toDateTime(%llu) AND t < toDateTime(%llu))"
/* The group key of every selected series, joined to the segments' rows: db, series filter,
 * kept ids ("" or CH_SQL_JOIN_IDS). A series has a dictionary row per day, all alike: ANY
 * takes one (no GROUP BY of the days' rows). */
#define CH_SQL_JOIN_GK                                                                             \
	"ANY INNER JOIN (SELECT id AS series, " CH_SQL_GK_EXPR " AS gk FROM %s.ap_series WHERE "   \
	"%s%s) USING series"
/* merge: the sums of the four values (zeros for values no series has), the UNION ALL of the
 * segments, the join */
#define CH_SQL_MERGE "SELECT stack, gk, %s FROM (%s) %s GROUP BY stack, gk FORMAT RowBinary"
/* series: grid origin ns, step ns, sums, segments, join */
#define CH_SQL_TIMELINE                                                                            \
	"SELECT toUInt64(intDiv(ts - %llu, %llu)) AS p, gk, %s FROM (%s) %s GROUP BY p, gk "       \
	"FORMAT RowBinary"
#define CH_SQL_STACKS_GET                                                                          \
	"SELECT id, any(frames) FROM %s.ap_stacks WHERE id IN (%s) GROUP BY id FORMAT RowBinary"
#define CH_SQL_FRAMES_GET                                                                          \
	"SELECT id, any(name), any(module), any(file), any(line), any(kind), any(flags) FROM "     \
	"%s.ap_frames WHERE id IN (%s) GROUP BY id FORMAT RowBinary"
/* table rows: db, series filter, ns lo, ns hi (and their seconds), visibility */
#define CH_SQL_ROWS_GET                                                                            \
	"SELECT tbl, key, sum(v0), sum(v1), sum(v2), sum(v3), sumForEach(hist) FROM %s.ap_rows "   \
	"WHERE %s AND t >= toDateTime(%llu) AND t <= toDateTime(%llu) AND ns >= %llu "             \
	"AND ns < %llu AND %s GROUP BY tbl, key ORDER BY tbl, key FORMAT RowBinary"
#define CH_SQL_STATS                                                                               \
	"SELECT table, toUInt64(sum(rows)), toUInt64(sum(bytes_on_disk)) FROM system.parts WHERE " \
	"database = '%s' AND active GROUP BY table FORMAT RowBinary"

#endif
