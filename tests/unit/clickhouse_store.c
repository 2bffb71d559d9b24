// SPDX-License-Identifier: MIT
/*
 * What the ClickHouse backend does beyond the storage contract (test_storage_contract runs that
 * against it too), on a real server that tests/unit/clickhouse_server.py starts: bad specs and
 * an unreachable server, the migration of a version-0 store, ClickHouse stopped under a writer
 * (errors, nothing acknowledged, the retry stored once), the recovery of a push whose write was
 * interrupted, and retention that stays done across a restart of 18.16 (which brings dropped
 * parts back); the write path's shape: the "stored" mark that the samples INSERT writes (no
 * statement of its own), concurrent pushes gathered into shared INSERTs, the fast start that
 * skips the DDL of a complete store, and the migrations of version-1 and version-2 stores.
 * Needs AP_STORE_SPEC, AP_CH_HTTP, AP_CH_STOP and AP_CH_START (from the launcher).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/profile.h"
#include "storage/clickhouse_internal.h"
#include "storage/clickhouse_sql.h"
#include "storage/storage.h"

#define SEC 1000000000ULL
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)

static char g_base[512]; /* clickhouse://127.0.0.1:PORT/ */
static struct ch_http *g_http;
static uint64_t T0; /* a whole day 30 days ago */

/* A raw statement; its TabSeparated answer (static buffer) or NULL when it failed. */
static const char *q(const char *fmt, ...)
{
	static char text[65536];
	char sql[4096], err[512];
	struct ch_buf out = {0};
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	ret = ch_http_exec(g_http, sql, NULL, 0, NULL, &out, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "%s: %s\n", sql, err);
		ch_buf_free(&out);
		return NULL;
	}
	snprintf(text, sizeof(text), "%.*s", (int)out.n, out.b ? out.b : "");
	ch_buf_free(&out);
	return text;
}

static uint64_t qnum(const char *fmt, const char *arg)
{
	const char *r = q(fmt, arg);

	assert_non_null(r);
	return strtoull(r, NULL, 10);
}

static struct ap_store *open_db(const char *db)
{
	char spec[600], err[512];
	struct ap_store *s = NULL;

	snprintf(spec, sizeof(spec), "%s%s", g_base, db);
	if (ap_store_open(spec, NULL, &s, err, sizeof(err)))
		fail_msg("open %s: %s", spec, err);
	return s;
}

static struct ap_profile *one_sample_of(uint64_t v, const char *comm)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_sample s = {0};
	uint32_t f[2];

	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	f[0] = ap_profile_add_named_frame(p, "leaf", "app", AP_FRAME_USER);
	f[1] = ap_profile_add_named_frame(p, "main", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, f, 2);
	s.comm = ap_profile_intern(p, comm);
	s.pid = 3;
	s.values[0] = v;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	return p;
}

static struct ap_profile *one_sample(uint64_t v) { return one_sample_of(v, "w"); }

static int put(struct ap_store *s, const char *id, uint64_t t, uint64_t v, bool *dup, char *err,
	       size_t errlen)
{
	struct ap_label_kv labels[] = {{"mode", "cpu"}, {"host", "h1"}};
	struct ap_profile *p = one_sample(v);
	struct ap_store_write w = {.push_id = id,
				   .labels = labels,
				   .nlabels = 2,
				   .from_ns = t,
				   .until_ns = t + 10 * SEC,
				   .profile = p};
	int ret = s->ops->write(s, &w, dup, err, errlen);

	ap_profile_free(p);
	return ret;
}

static void put_ok(struct ap_store *s, const char *id, uint64_t t, uint64_t v)
{
	char err[512] = "";
	bool dup = true;

	if (put(s, id, t, v, &dup, err, sizeof(err)))
		fail_msg("write %s: %s", id, err);
	assert_false(dup);
}

/* A push of one sample of value v by comm, with the labels given. */
static void put_labels(struct ap_store *s, const char *id, uint64_t t, uint64_t v, const char *comm,
		       const struct ap_label_kv *labels, size_t n)
{
	struct ap_profile *p = one_sample_of(v, comm);
	struct ap_store_write w = {.push_id = id,
				   .labels = labels,
				   .nlabels = n,
				   .from_ns = t,
				   .until_ns = t + 10 * SEC,
				   .profile = p};
	char err[512] = "";
	bool dup = true;

	if (s->ops->write(s, &w, &dup, err, sizeof(err)))
		fail_msg("write %s: %s", id, err);
	assert_false(dup);
	ap_profile_free(p);
}

/* The merged total (and the number of comms) of a selector over [from, until). */
static uint64_t sel_total(struct ap_store *s, const char *selector, uint64_t from, uint64_t until,
			  size_t *ncomms)
{
	struct ap_selector sel;
	struct ap_store_query qq = {.sel = &sel, .from_ns = from, .until_ns = until};
	struct ap_profile *p = NULL;
	char err[512];
	uint64_t t;

	if (ap_selector_parse(selector, &sel, err, sizeof(err)))
		fail_msg("%s: %s", selector, err);
	if (s->ops->merge(s, &qq, &p, err, sizeof(err)))
		fail_msg("merge %s: %s", selector, err);
	ap_selector_free(&sel);
	t = ap_profile_nvalues(p) ? ap_profile_total(p, 0) : 0;
	if (ncomms) {
		*ncomms = 0;
		for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
			size_t k = 0;

			while (k < i &&
			       ap_profile_sample(p, k)->comm != ap_profile_sample(p, i)->comm)
				k++;
			*ncomms += k == i;
		}
	}
	ap_profile_free(p);
	return t;
}

static uint64_t total(struct ap_store *s, uint64_t from, uint64_t until)
{
	struct ap_selector sel;
	struct ap_store_query qq = {.sel = &sel, .from_ns = from, .until_ns = until};
	struct ap_profile *p = NULL;
	char err[512];
	uint64_t t;

	assert_int_equal(ap_selector_parse("{host=\"h1\"}", &sel, err, sizeof(err)), 0);
	if (s->ops->merge(s, &qq, &p, err, sizeof(err)))
		fail_msg("merge: %s", err);
	ap_selector_free(&sel);
	t = ap_profile_nvalues(p) ? ap_profile_total(p, 0) : 0;
	ap_profile_free(p);
	return t;
}

static void server(const char *what)
{
	const char *cmd = getenv(!strcmp(what, "stop") ? "AP_CH_STOP" : "AP_CH_START");

	assert_non_null(cmd);
	assert_int_equal(system(cmd), 0);
}

/* Specs are checked before anything is sent; an unreachable server is said so. */
static void test_specs(void **state)
{
	static const char *const bad[] = {
	    "clickhouse:127.0.0.1:8123/db",
	    "clickhouse://127.0.0.1:8123",
	    "clickhouse://127.0.0.1:8123/bad-name",
	    "clickhouse://127.0.0.1:99999/db",
	    "clickhouse://127.0.0.1:8123/db?nosuch=1",
	    "clickhouse://127.0.0.1:8123/db?cluster=a;b",
	    "clickhouse://127.0.0.1:8123/db?user=x&password_file=/nonexistent/pw",
	};
	struct ap_store *s;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_true(ap_store_open(bad[i], NULL, &s, err, sizeof(err)) < 0);
		assert_null(s);
		assert_true(err[0] != 0);
	}
	/* nothing listens on port 1 */
	assert_int_equal(ap_store_open("clickhouse://127.0.0.1:1/db", NULL, &s, err, sizeof(err)),
			 -ECONNREFUSED);
	assert_non_null(strstr(err, "unreachable"));
}

/* A store of version 0 (no schema table, ap_samples without the shard key) is migrated, its
 * rows kept; a store newer than the code is refused. */
static void test_migrate(void **state)
{
	struct ap_store *s;
	char spec[600], err[512];
	const char *r;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_mig"));
	assert_non_null(q("CREATE DATABASE ap_mig"));
	assert_non_null(q("CREATE TABLE ap_mig.ap_samples (t DateTime, ns UInt64, series UInt64, "
			  "stack UInt64, v0 UInt64, v1 UInt64, v2 UInt64, v3 UInt64, push UInt64, "
			  "rv UInt64) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(t) ORDER BY "
			  "(series, t)"));
	assert_non_null(q("INSERT INTO ap_mig.ap_samples (t, ns, series, stack, v0) VALUES "
			  "(1700000000, 1700000000000000000, 1, 2, 5)"));
	assert_int_equal(qnum("SELECT count() FROM system.columns WHERE database = 'ap_mig' AND "
			      "table = '%s' AND name = 'sk'",
			      "ap_samples"),
			 0);
	s = open_db("ap_mig");
	assert_int_equal(qnum("SELECT count() FROM system.columns WHERE database = 'ap_mig' AND "
			      "table = '%s' AND name = 'sk'",
			      "ap_samples"),
			 1);
	assert_int_equal(qnum("SELECT max(version) FROM ap_mig.%s", "ap_schema"),
			 CH_SCHEMA_VERSION);
	assert_int_equal(qnum("SELECT sum(v0) FROM ap_mig.%s", "ap_samples"), 5);
	assert_true(ch_of(s)->legacy_gk); /* its row has no group key */
	assert_int_equal(qnum("SELECT min(version) FROM ap_mig.%s", "ap_schema"), 0);
	/* idempotent: a second open changes nothing */
	ap_store_close(s);
	s = open_db("ap_mig");
	ap_store_close(s);
	assert_int_equal(qnum("SELECT count() FROM ap_mig.%s", "ap_schema"), 2); /* 0 and now */
	/* written by a newer aggregator: refused, said why */
	r = q("INSERT INTO ap_mig.ap_schema (version, at) VALUES (99, now())");
	assert_non_null(r);
	snprintf(spec, sizeof(spec), "%sap_mig", g_base);
	assert_int_equal(ap_store_open(spec, NULL, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "schema version 99 is newer"));
}

/* ClickHouse stops under a writer: the write fails with "unavailable" (the aggregator's 503),
 * nothing is acknowledged; once it is back the retry is stored, and once. */
static void test_down(void **state)
{
	struct ap_store *s;
	char err[512];
	bool dup = false;
	int ret;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_down"));
	s = open_db("ap_down");
	put_ok(s, "d1", T0, 3);
	server("stop");
	ret = put(s, "d2", T0 + SEC, 4, &dup, err, sizeof(err));
	assert_true(ret == -ECONNREFUSED || ret == -EHOSTUNREACH || ret == -ETIMEDOUT);
	assert_non_null(strstr(err, "ClickHouse"));
	server("start");
	put_ok(s, "d2", T0 + SEC, 4);
	assert_int_equal(put(s, "d2", T0 + SEC, 4, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	assert_int_equal(total(s, T0, T0 + HOUR), 7);
	ap_store_close(s);
}

/* A push id marked "being written" (state 1): recent -> "retry later"; older -> its tables are
 * looked at and only the missing rows are written. */
static void test_pending(void **state)
{
	struct ap_store *s;
	char err[512];
	bool dup = false;
	uint64_t now = (uint64_t)time(NULL) * SEC;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_pend"));
	s = open_db("ap_pend");
	assert_non_null(q("INSERT INTO ap_pend.ap_pushes (id, t, state, at, rv) VALUES "
			  "('young', %llu, 1, %llu, 0), ('old', %llu, 1, %llu, 0)",
			  (unsigned long long)(T0 / SEC), (unsigned long long)now,
			  (unsigned long long)(T0 / SEC), (unsigned long long)(now - 600 * SEC)));
	assert_int_equal(put(s, "young", T0, 1, &dup, err, sizeof(err)), -EINPROGRESS);
	assert_non_null(strstr(err, "retry"));
	put_ok(s, "old", T0, 10); /* began, wrote nothing: written now */
	assert_int_equal(total(s, T0, T0 + HOUR), 10);
	/* began and wrote its samples, but the "stored" mark is missing (the samples INSERT's
	 * part landed, the view's did not): not written again */
	put_ok(s, "half", T0 + SEC, 100);
	assert_non_null(q("ALTER TABLE ap_pend.ap_pushes DELETE WHERE id = 'half'"));
	assert_non_null(q("ALTER TABLE ap_pend.ap_roll DELETE WHERE res = %d", CH_RES_STORED));
	for (int i = 0; i < 300 && qnum("SELECT count() FROM system.mutations WHERE database = "
					"'ap_pend' AND NOT is_done AND table != '%s'",
					"");
	     i++)
		usleep(100000);
	assert_int_equal(qnum("SELECT count() FROM ap_pend.%s WHERE res = 4", "ap_roll"), 0);
	assert_non_null(q("INSERT INTO ap_pend.ap_pushes (id, t, state, at, rv) VALUES "
			  "('half', %llu, 1, %llu, 0)",
			  (unsigned long long)(T0 / SEC + 1),
			  (unsigned long long)(now - 600 * SEC)));
	assert_int_equal(qnum("SELECT count() FROM ap_pend.ap_pushes WHERE id = '%s'", "half"), 1);
	put_ok(s, "half", T0 + SEC, 100);
	assert_int_equal(total(s, T0, T0 + HOUR), 110);
	assert_int_equal(put(s, "half", T0 + SEC, 100, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	ap_store_close(s);
}

/* Retention drops whole days; after a restart 18.16 may load parts that merges had replaced
 * before the drop: the rows must stay gone for queries (the retention run is recorded and
 * filtered on). A later push is stored and visible. */
static void test_retention_restart(void **state)
{
	struct ap_store *s;
	char err[512], id[32];
	const char *r;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_res"));
	s = open_db("ap_res");
	for (int i = 0; i < 30; i++) { /* 30 parts, then merged: 30 outdated parts on disk */
		snprintf(id, sizeof(id), "r%d", i);
		put_ok(s, id, T0 + (uint64_t)i * 60 * SEC, 1);
	}
	assert_int_equal(total(s, T0, T0 + DAY), 30);
	assert_non_null(q("OPTIMIZE TABLE ap_res.ap_samples FINAL"));
	assert_int_equal(s->ops->retention(s, T0 + 2 * DAY, err, sizeof(err)), 0);
	assert_int_equal(total(s, T0, T0 + DAY), 0);
	assert_int_equal(qnum("SELECT count() FROM ap_res.%s", "ap_samples"), 0); /* dropped */
	ap_store_close(s);
	server("stop");
	server("start");
	r = q("SELECT count() FROM ap_res.ap_samples");
	assert_non_null(r);
	fprintf(stderr, "rows on disk after the restart: %s", r); /* 18.16: often 30 again */
	s = open_db("ap_res");
	assert_int_equal(total(s, T0, T0 + DAY), 0);
	put_ok(s, "after", T0 + 3 * DAY, 5);
	assert_int_equal(total(s, T0, T0 + 4 * DAY), 5);
	ap_store_close(s);
}

/*
 * Label matchers = and != run in ClickHouse, regex matchers in C: both must select the same
 * series (a missing label is ""), over a range that the plan splits into raw edges, minute and
 * hour rollups, and with the groups (comm) kept apart.
 */
static void test_selectors(void **state)
{
	static const struct ap_label_kv a[] = {{"mode", "cpu"}, {"host", "h1"}, {"x", "1"}},
					b[] = {{"mode", "cpu"}, {"host", "h2"}},
					c[] = {{"mode", "cpu"}, {"host", "h3"}, {"x", ""}};
	static const char *const same[][2] = {
	    {"{host=\"h1\"}", "{host=~\"h1\"}"},
	    {"{host!=\"h1\"}", "{host!~\"h1\"}"},
	    {"{x=\"\"}", "{x=~\"\"}"},
	    {"{x!=\"\"}", "{x=~\".+\"}"},
	    {"{x!=\"1\"}", "{x!~\"1\"}"},
	    {"{nosuch=\"\"}", "{nosuch=~\"\"}"},
	    {"{nosuch!=\"\"}", "{nosuch=~\".+\"}"},
	    {"{mode=\"cpu\",x=\"\"}", "{x!~\".+\"}"},
	};
	/* pushes at T0 + k * 7 min + 13 s, k = 0..39 (4.6 h), values 1 << (k % 20) per host */
	uint64_t from = T0 + 20 * 60 * SEC + 5 * SEC,
		 until = T0 + 3 * HOUR + 50 * 60 * SEC + 17 * SEC;
	uint64_t want_a = 0, want_b = 0, want_c = 0;
	struct ap_store *s;
	char id[32];
	size_t ncomms;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_sel"));
	s = open_db("ap_sel");
	for (uint64_t k = 0; k < 40; k++) {
		uint64_t t = T0 + k * 7 * 60 * SEC + 13 * SEC, v = 1ULL << (k % 20);
		bool in = t >= from && t < until;

		snprintf(id, sizeof(id), "a%llu", (unsigned long long)k);
		put_labels(s, id, t, v, k % 2 ? "odd" : "even", a, 3);
		snprintf(id, sizeof(id), "b%llu", (unsigned long long)k);
		put_labels(s, id, t, 3 * v, "b", b, 2);
		snprintf(id, sizeof(id), "c%llu", (unsigned long long)k);
		put_labels(s, id, t, 5 * v, "c", c, 3);
		want_a += in ? v : 0;
		want_b += in ? 3 * v : 0;
		want_c += in ? 5 * v : 0;
	}
	assert_int_equal(sel_total(s, "{host=\"h1\"}", from, until, &ncomms), want_a);
	assert_int_equal(ncomms, 2);
	assert_int_equal(sel_total(s, "{x=\"\"}", from, until, &ncomms), want_b + want_c);
	assert_int_equal(ncomms, 2);
	assert_int_equal(sel_total(s, "{}", from, until, &ncomms), want_a + want_b + want_c);
	assert_int_equal(ncomms, 4);
	assert_int_equal(sel_total(s, "{host=\"h1\",x=\"2\"}", from, until, NULL), 0);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		uint64_t sql = sel_total(s, same[i][0], from, until, NULL);

		assert_int_equal(sql, sel_total(s, same[i][1], from, until, NULL));
		fprintf(stderr, "%s = %s: %llu\n", same[i][0], same[i][1], (unsigned long long)sql);
	}
	ap_store_close(s);
}

/* A push with samples is marked stored by the samples INSERT itself (ap_roll's res 4 rows,
 * through the view): ap_pushes holds only its state 1 row, and a second write is a duplicate. A push of
 * table rows only gets its state 2 row in ap_pushes. */
static void test_stored_mark(void **state)
{
	struct ap_table_row row = {
	    .table = "syscall", .key = "read", .pid = 5, .comm = "app", .v = {10, 1, 1000, 0}};
	struct ap_label_kv labels[] = {{"mode", "syscall"}, {"host", "h1"}};
	struct ap_store_write w = {.push_id = "rows1",
				   .labels = labels,
				   .nlabels = 2,
				   .from_ns = T0 + 5 * SEC,
				   .until_ns = T0 + 15 * SEC,
				   .rows = &row,
				   .nrows = 1};
	struct ap_store *s;
	char err[512];
	bool dup = true;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_mark"));
	s = open_db("ap_mark");
	put_ok(s, "m1", T0, 7);
	assert_int_equal(qnum("SELECT count() FROM ap_mark.%s WHERE res = 4", "ap_roll"), 1);
	assert_int_equal(qnum("SELECT count() FROM ap_mark.ap_pushes WHERE id = '%s'", "m1"), 1);
	assert_int_equal(qnum("SELECT max(state) FROM ap_mark.ap_pushes WHERE id = '%s'", "m1"), 1);
	assert_int_equal(put(s, "m1", T0, 7, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	/* table rows only: no samples INSERT to mark it */
	if (s->ops->write(s, &w, &dup, err, sizeof(err)))
		fail_msg("write rows1: %s", err);
	assert_false(dup);
	assert_int_equal(
	    qnum("SELECT count() FROM ap_mark.ap_pushes WHERE id = '%s' AND state = 2", "rows1"),
	    1);
	assert_int_equal(qnum("SELECT count() FROM ap_mark.%s WHERE res = 4", "ap_roll"), 1);
	assert_int_equal(s->ops->write(s, &w, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	assert_int_equal(total(s, T0, T0 + HOUR), 7);
	ap_store_close(s);
}

/* Pushes written at the same moment share INSERTs (group commit): 16 pushes from 16 threads
 * need fewer INSERT statements than 16 pushes written one by one (at least two each: the
 * state 1 rows and the samples), and every one is stored once. */
struct conc {
	struct ap_store *s;
	pthread_barrier_t *go;
	int i, ret;
	bool dup;
	char err[256];
};

static void *conc_put(void *arg)
{
	struct conc *c = arg;
	char id[16];

	snprintf(id, sizeof(id), "c%d", c->i);
	pthread_barrier_wait(c->go);
	c->ret = put(c->s, id, T0 + (uint64_t)c->i * SEC, 1, &c->dup, c->err, sizeof(c->err));
	return NULL;
}

static void test_group_commit(void **state)
{
	enum { N = 16 };
	struct conc c[N];
	pthread_t th[N];
	pthread_barrier_t go;
	struct ap_store *s;
	uint64_t before, inserts;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_group"));
	s = open_db("ap_group");
	put_ok(s, "warm", T0 + 100 * SEC, 1); /* the dictionaries are in: no dictionary INSERTs */
	pthread_barrier_init(&go, NULL, N);
	before = qnum("SELECT value FROM system.events WHERE event = '%s'", "InsertQuery");
	for (int i = 0; i < N; i++) {
		c[i] = (struct conc){.s = s, .go = &go, .i = i};
		assert_int_equal(pthread_create(&th[i], NULL, conc_put, &c[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (c[i].ret)
			fail_msg("push c%d: %s", i, c[i].err);
		assert_false(c[i].dup);
	}
	inserts =
	    qnum("SELECT value FROM system.events WHERE event = '%s'", "InsertQuery") - before;
	fprintf(stderr, "%d concurrent pushes: %llu INSERT statements\n", N,
		(unsigned long long)inserts);
	assert_true(inserts < 2 * N);
	assert_int_equal(total(s, T0, T0 + HOUR), N + 1);
	assert_int_equal(qnum("SELECT uniqExact(series) FROM ap_group.%s WHERE res = 4", "ap_roll"),
			 N + 1);
	pthread_barrier_destroy(&go);
	ap_store_close(s);
}

/* A store with the current schema complete opens without DDL; one missing object (here the
 * view that writes the stored marks) sends the open through the full step, which makes it. */
static void test_fast_start(void **state)
{
	struct ap_store *s;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_fast"));
	s = open_db("ap_fast");
	assert_false(ch_of(s)->fast_start);
	assert_false(ch_of(s)->legacy_gk || ch_of(s)->legacy_roll || ch_of(s)->legacy_stored);
	ap_store_close(s);
	s = open_db("ap_fast");
	assert_true(ch_of(s)->fast_start);
	put_ok(s, "f1", T0, 2);
	ap_store_close(s);
	assert_non_null(q("DROP TABLE ap_fast.ap_roll_mv"));
	s = open_db("ap_fast");
	assert_false(ch_of(s)->fast_start);
	assert_int_equal(qnum("SELECT count() FROM system.tables WHERE database = 'ap_fast' AND "
			      "name = '%s'",
			      "ap_roll_mv"),
			 1);
	put_ok(s, "f2", T0 + SEC, 3);
	assert_int_equal(qnum("SELECT count() FROM ap_fast.%s WHERE res = 4", "ap_roll"), 2);
	assert_int_equal(total(s, T0, T0 + HOUR), 5);
	ap_store_close(s);
}

/* Ranges over days, hours, minutes and raw edges give the exact sums, and a day that a
 * retention cut-off falls inside is read by its hours (the visibility rule judges a day row by
 * the day's start). Pushes of 1, 2, 4, ... at known times. */
static void test_days(void **state)
{
	static const uint64_t at[] = {30 * 60, 2 * 3600, 23 * 3600, 29 * 3600, 48 * 3600 + 20 * 60,
				      61 * 3600};
	struct ap_store *s;
	char id[16], err[512];

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_days"));
	s = open_db("ap_days");
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		snprintf(id, sizeof(id), "c%zu", i);
		put_ok(s, id, T0 + at[i] * SEC, 1ULL << i);
	}
	assert_int_equal(total(s, T0 + HOUR, T0 + 2 * DAY + HOUR), 2 + 4 + 8 + 16);
	assert_int_equal(total(s, T0 + HOUR, T0 + 23 * HOUR + 30 * 60 * SEC), 2 + 4);
	assert_int_equal(total(s, T0 + 10 * 60 * SEC, T0 + 2 * DAY + 14 * HOUR), 63);
	assert_int_equal(total(s, T0 + 40 * 60 * SEC, T0 + DAY + 5 * HOUR + SEC), 2 + 4 + 8);
	assert_int_equal(total(s, T0 + DAY + 4 * HOUR, T0 + 2 * DAY + 13 * HOUR), 8 + 16);
	assert_int_equal(total(s, T0 + 2 * HOUR + 30 * SEC, T0 + 2 * HOUR + 50 * 60 * SEC), 0);
	assert_int_equal(total(s, T0 + 2 * HOUR - 30 * SEC, T0 + 2 * HOUR + 50 * 60 * SEC), 2);
	/* a cut-off at T0 + 6 h hides the first two: that day is read by its hours */
	if (s->ops->retention(s, T0 + 6 * HOUR, err, sizeof(err)))
		fail_msg("retention: %s", err);
	assert_int_equal(total(s, T0 + HOUR, T0 + 2 * DAY + HOUR), 4 + 8 + 16);
	assert_int_equal(total(s, T0, T0 + 3 * DAY), 4 + 8 + 16 + 32);
	ap_store_close(s);
}

/* Back to the layout of version 1 or 2, the rollups and (version 2) stored marks written so
 * far moved into that version's tables, with that version's views. */
static void to_old_layout(const char *db, int version)
{
	static const char *const roll_cols =
	    "(t DateTime, series UInt64, stack UInt64, rv UInt64, v0 UInt64, v1 UInt64, v2 "
	    "UInt64, v3 UInt64) ENGINE = SummingMergeTree((v0, v1, v2, v3)) PARTITION BY "
	    "toYYYYMMDD(t) ORDER BY (series, t, stack, rv)";
	static const char *const bucket[] = {"m1", "toStartOfMinute", "h1", "toStartOfHour"};

	assert_non_null(q("DROP TABLE %s.ap_roll_mv", db));
	for (int i = 0; i < 2; i++) {
		assert_non_null(q("CREATE TABLE %s.ap_samples_%s %s", db, bucket[2 * i], roll_cols));
		assert_non_null(q("INSERT INTO %s.ap_samples_%s SELECT t, series, stack, rv, v0, v1, "
				  "v2, v3 FROM %s.ap_roll WHERE res = %d",
				  db, bucket[2 * i], db, i + 1));
		assert_non_null(q("CREATE MATERIALIZED VIEW %s.ap_samples_%s_mv TO %s.ap_samples_%s "
				  "AS SELECT %s(t) AS t, series, stack, rv, sum(v0) AS v0, sum(v1) "
				  "AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM %s.ap_samples GROUP BY t, "
				  "series, stack, rv",
				  db, bucket[2 * i], db, bucket[2 * i], bucket[2 * i + 1], db));
	}
	if (version == 2) {
		assert_non_null(q("CREATE TABLE %s.ap_stored (t DateTime, push UInt64, rv UInt64) "
				  "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMMDD(t) ORDER "
				  "BY push",
				  db));
		assert_non_null(q("INSERT INTO %s.ap_stored SELECT t, series, rv FROM %s.ap_roll "
				  "WHERE res = 4",
				  db, db));
		assert_non_null(q("CREATE MATERIALIZED VIEW %s.ap_stored_mv TO %s.ap_stored AS "
				  "SELECT t, push, any(rv) AS rv FROM %s.ap_samples WHERE push != 0 "
				  "GROUP BY t, push",
				  db, db, db));
	}
	assert_non_null(q("DROP TABLE %s.ap_roll", db));
	assert_non_null(q("ALTER TABLE %s.ap_samples DROP COLUMN gk", db));
	assert_non_null(q("ALTER TABLE %s.ap_series DROP COLUMN gk", db));
	assert_non_null(q("DROP TABLE %s.ap_schema", db));
	assert_non_null(q("CREATE TABLE %s.ap_schema (version UInt32, at DateTime) ENGINE = "
			  "MergeTree() ORDER BY version",
			  db));
	assert_non_null(q("INSERT INTO %s.ap_schema (version, at) VALUES (%d, now())", db, version));
}

/* A version-1 store (no ap_stored; its writers marked pushes stored with state 2 rows) is
 * migrated: the old marks still answer duplicates, and new pushes get the new mark. */
static void test_migrate_v1(void **state)
{
	struct ap_store *s;
	char err[512];
	bool dup = false;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_v1"));
	s = open_db("ap_v1");
	ap_store_close(s);
	to_old_layout("ap_v1", 1);
	assert_non_null(q("INSERT INTO ap_v1.ap_pushes (id, t, state, at, rv) VALUES "
			  "('old', %llu, 1, 1, 0), ('old', %llu, 2, 2, 0)",
			  (unsigned long long)(T0 / SEC), (unsigned long long)(T0 / SEC)));
	s = open_db("ap_v1");
	assert_false(ch_of(s)->fast_start);
	assert_true(ch_of(s)->legacy_roll);
	assert_false(ch_of(s)->legacy_stored);
	assert_int_equal(qnum("SELECT max(version) FROM ap_v1.%s", "ap_schema"),
			 CH_SCHEMA_VERSION);
	assert_int_equal(put(s, "old", T0, 4, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	put_ok(s, "new", T0 + SEC, 6);
	assert_int_equal(qnum("SELECT count() FROM ap_v1.%s WHERE res = 4", "ap_roll"), 1);
	assert_int_equal(total(s, T0, T0 + HOUR), 6);
	ap_store_close(s);
	s = open_db("ap_v1");
	assert_true(ch_of(s)->fast_start);
	ap_store_close(s);
}

/* A version-2 store with data is migrated to version 3: its views go, its tables stay and are
 * read with ap_roll at every resolution (raw edges, minutes, hours, days), its stored marks
 * still answer duplicates, and the rows written after the migration are counted once. */
static void test_migrate_v2(void **state)
{
	static const char *const views =
	    "SELECT count() FROM system.tables WHERE database = 'ap_v2' AND name IN "
	    "('ap_samples_m1_mv', 'ap_samples_h1_mv', 'ap_stored_mv', '%s')";
	struct ap_store *s;
	char err[512];
	bool dup = false;

	(void)state;
	assert_non_null(q("DROP DATABASE IF EXISTS ap_v2"));
	s = open_db("ap_v2");
	put_ok(s, "old1", T0 + 90 * SEC, 5);
	put_ok(s, "old2", T0 + DAY + 3 * HOUR, 7);
	ap_store_close(s);
	to_old_layout("ap_v2", 2);
	assert_int_equal(qnum(views, "ap_roll_mv"), 3);
	s = open_db("ap_v2");
	assert_true(ch_of(s)->legacy_gk); /* rows without their group key: joined */
	assert_true(ch_of(s)->legacy_roll);
	assert_true(ch_of(s)->legacy_stored);
	assert_int_equal(qnum(views, "ap_roll_mv"), 1); /* only the new view */
	assert_int_equal(qnum("SELECT max(version) FROM ap_v2.%s", "ap_schema"),
			 CH_SCHEMA_VERSION);
	assert_int_equal(put(s, "old1", T0 + 90 * SEC, 5, &dup, err, sizeof(err)), 0);
	assert_true(dup);
	put_ok(s, "new1", T0 + 2 * HOUR + 30 * SEC, 11);
	put_ok(s, "new2", T0 + 2 * DAY + 5 * HOUR, 13);
	assert_int_equal(total(s, T0 - DAY, T0 + 4 * DAY), 36);		   /* days */
	assert_int_equal(total(s, T0, T0 + 3 * HOUR), 16);		   /* hours */
	assert_int_equal(total(s, T0 + 60 * SEC, T0 + 150 * SEC), 5);	   /* a minute */
	assert_int_equal(total(s, T0 + 89 * SEC, T0 + DAY + 3 * HOUR + SEC), 23); /* edges */
	assert_int_equal(total(s, T0 + DAY, T0 + 3 * DAY), 20);
	/* the old views are gone: the new rows are in ap_roll only */
	assert_int_equal(qnum("SELECT sum(v0) FROM ap_v2.%s", "ap_samples_h1"), 12);
	ap_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_specs),
	    cmocka_unit_test(test_migrate),
	    cmocka_unit_test(test_down),
	    cmocka_unit_test(test_pending),
	    cmocka_unit_test(test_retention_restart),
	    cmocka_unit_test(test_selectors),

	    cmocka_unit_test(test_stored_mark),
	    cmocka_unit_test(test_group_commit),
	    cmocka_unit_test(test_fast_start),
	    cmocka_unit_test(test_migrate_v1),
	    cmocka_unit_test(test_migrate_v2),
	    cmocka_unit_test(test_days),
	};
	const char *spec = getenv("AP_STORE_SPEC"), *http = getenv("AP_CH_HTTP");
	struct ch_http_opts o = {0};
	char err[256], *slash;

	if (!spec || strncmp(spec, "clickhouse://", 13) || !http || !getenv("AP_CH_STOP")) {
		printf("SKIP: run through tests/unit/clickhouse_server.py (needs a ClickHouse)\n");
		return 77;
	}
	snprintf(g_base, sizeof(g_base), "%s", spec);
	slash = strrchr(g_base, '/');
	slash[1] = 0;
	o.base_url = http;
	o.timeout_ms = 60000;
	if (ch_http_new(&o, &g_http, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	T0 = ((uint64_t)time(NULL) / 86400 - 30) * DAY;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
