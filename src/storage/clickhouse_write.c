// SPDX-License-Identifier: MIT
/*
 * The ClickHouse writer: writer threads take every queued push (group commit) and write them
 * with a few INSERTs in RowBinary; write() returns once the INSERT holding its push returned
 * OK. Per batch, three round trips when the pushes have no table rows:
 *   1. the batch's push ids are looked up in ap_pushes and ap_roll (state 2 or stored ->
 *      duplicate; state 1 only: a write that began elsewhere or failed: if recent, "retry
 *      later"; if older, its rows are looked for by push hash and only the missing tables are
 *      written);
 *   2. at once, on parallel connections: ap_pushes gets state 1 rows for the new ids, and the
 *      new dictionary rows (frames, stacks, series; once per id and day of data);
 *   3. the table rows, if any; then the samples (one INSERT: one block, so a reader sees whole
 *      pushes), whose materialized view fills ap_roll: the rollups and the "stored" mark, in
 *      one part;
 *   4. only for pushes without samples in that INSERT (table rows only, or a recovered push
 *      whose samples were in): ap_pushes gets state 2 rows. The pushes are acknowledged.
 * A failure anywhere fails every push of the batch not yet acknowledged: the agent keeps it and
 * retries; step 1 then finds what was stored. Retention runs in this thread too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clickhouse_internal.h"
#include "clickhouse_sql.h"
#include "lib/errbuf.h"
#include "lib/hash.h"
#include "sqlite_job.h"

void ch_runs_invalidate(struct ch_store *s);

enum { JOB_WRITE, JOB_RETENTION };

struct ch_job {
	struct ch_job *next;
	int kind;
	struct sq_job sj; /* the prepared push (sqlite_prep.c) */
	uint64_t push_h, sk, before_ns;
	uint64_t *gk; /* the group key of each series (ch_group_key()) */
	uint8_t state;	    /* what the push-id lookup found: 0 none, 1 being written, 2 stored */
	uint64_t state1_at; /* the newest state 1 row's writer clock */
	bool has_pending, skip_samples, skip_rows;
	bool done, duplicate; /* done: settled within the batch (the writer's own mark) */
	bool finished;	      /* the waiter may return (set under qlock, after the batch) */
	int ret;
	char err[256];
};

/* ---- (dictionary id, day) pairs already written ---- */

struct ch_seen {
	uint64_t *id;
	uint32_t *day; /* day + 1: 0 = empty slot */
	size_t cap, n;
};

static size_t seen_slot(const struct ch_seen *t, uint64_t id, uint32_t day)
{
	return (size_t)(ap_hash_mix64(id ^ ((uint64_t)day << 40)) & (t->cap - 1));
}

static bool seen_has(const struct ch_seen *t, uint64_t id, uint32_t day)
{
	if (!t->cap)
		return false;
	for (size_t i = seen_slot(t, id, day);; i = (i + 1) & (t->cap - 1)) {
		if (!t->day[i])
			return false;
		if (t->id[i] == id && t->day[i] == day + 1)
			return true;
	}
}

static void seen_clear(struct ch_seen *t)
{
	free(t->id);
	free(t->day);
	memset(t, 0, sizeof(*t));
}

/* Failure to remember costs a second insert of the row later, never a missing one. */
static void seen_add(struct ch_seen *t, uint64_t id, uint32_t day)
{
	if (t->n >= CH_SEEN_MAX)
		seen_clear(t);
	if ((t->n + 1) * 2 > t->cap) {
		struct ch_seen nt = {0};

		nt.cap = t->cap ? t->cap * 2 : 4096;
		nt.id = calloc(nt.cap, sizeof(*nt.id));
		nt.day = calloc(nt.cap, sizeof(*nt.day));
		if (!nt.id || !nt.day) {
			free(nt.id);
			free(nt.day);
			return;
		}
		for (size_t i = 0; i < t->cap; i++)
			if (t->day[i]) {
				size_t k = seen_slot(&nt, t->id[i], t->day[i] - 1);

				while (nt.day[k])
					k = (k + 1) & (nt.cap - 1);
				nt.id[k] = t->id[i];
				nt.day[k] = t->day[i];
				nt.n++;
			}
		seen_clear(t);
		*t = nt;
	}
	for (size_t i = seen_slot(t, id, day);; i = (i + 1) & (t->cap - 1)) {
		if (!t->day[i]) {
			t->id[i] = id;
			t->day[i] = day + 1;
			t->n++;
			return;
		}
		if (t->id[i] == id && t->day[i] == day + 1)
			return;
	}
}

/* ---- a batch ---- */

static void fail_all(struct ch_job **v, size_t n, int ret, const char *err)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i]->done) {
			v[i]->ret = ret;
			snprintf(v[i]->err, sizeof(v[i]->err), "%s", err);
			v[i]->done = true;
		}
}

/* INSERTs of the bodies that have rows, at once (an empty body is no statement). */
struct ins {
	const char *fmt;
	struct ch_buf *body;
};

static int insert_many(struct ch_store *s, const struct ins *v, size_t n, char *err, size_t errlen)
{
	char q[CH_STMT_MAX][512];
	struct ch_stmt st[CH_STMT_MAX];
	size_t k = 0;

	for (size_t i = 0; i < n && k < CH_STMT_MAX; i++) {
		if (!v[i].body->n)
			continue;
		if (v[i].body->oom)
			return ap_errf(err, errlen, -ENOMEM, "out of memory building an insert");
		snprintf(q[k], sizeof(q[k]), v[i].fmt, s->db);
		st[k] = (struct ch_stmt){q[k], v[i].body->b, v[i].body->n, s->ins_settings, NULL};
		k++;
	}
	return ch_http_exec_many(s->http, st, k, err, errlen);
}

static int insert(struct ch_store *s, const char *fmt, struct ch_buf *body, char *err,
		  size_t errlen)
{
	struct ins one = {fmt, body};

	return insert_many(s, &one, 1, err, errlen);
}

/* A count() answer. */
static int get_count(struct ch_store *s, uint64_t *n, char *err, size_t errlen, const char *fmt,
		     const char *table, unsigned long long a, unsigned long long b)
{
	struct ch_buf out = {0};
	struct ch_cur c;
	int ret = ch_exec_fmt(s, &out, err, errlen, fmt, s->db, table, a, b);

	if (!ret) {
		c = ch_cur_of(&out);
		*n = ch_get_u64(&c);
		if (c.bad || c.p != c.end)
			ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed count");
	}
	ch_buf_free(&out);
	return ret;
}

/* Step 1: which pushes are duplicates, being written elsewhere, or half-written. */
static int check_ids(struct ch_store *s, struct ch_job **v, size_t n, const char *vis, char *err,
		     size_t errlen)
{
	struct ch_buf q = {0}, ans = {0}, ids = {0}, hashes = {0}, legacy = {0};
	struct ch_cur c;
	uint64_t now = ch_real_ns();
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i]->done || !v[i]->sj.push_id)
			continue;
		for (size_t k = 0; k < i; k++) /* twice in one batch: the later is a duplicate */
			if (!v[k]->duplicate && v[k]->sj.push_id && !v[k]->done &&
			    !strcmp(v[k]->sj.push_id, v[i]->sj.push_id)) {
				v[i]->duplicate = v[i]->done = true;
				break;
			}
		if (v[i]->done)
			continue;
		if (ids.n) {
			ch_buf_put(&ids, ",", 1);
			ch_buf_put(&hashes, ",", 1);
		}
		ch_sql_str(&ids, v[i]->sj.push_id);
		ch_buf_printf(&hashes, "%llu", (unsigned long long)v[i]->push_h);
	}
	if (!ids.n)
		return 0;
	if (s->legacy_stored)
		ch_buf_printf(&legacy, CH_SQL_PUSHES_LEGACY, s->db, hashes.b, vis);
	ch_buf_printf(&q, CH_SQL_PUSHES_GET, s->db, ids.b, vis, s->db, hashes.b, vis,
		      legacy.b ? legacy.b : "");
	ret = q.oom || ids.oom || hashes.oom || legacy.oom
		  ? -ENOMEM
		  : ch_http_exec(s->http, q.b, NULL, 0, CH_QUERY_SETTINGS, &ans, err, errlen);
	c = ch_cur_of(&ans);
	/* a push may have rows of both kinds: first what is known of each, then the verdict */
	while (!ret && ch_cur_more(&c)) {
		size_t len;
		const char *id = ch_get_str(&c, &len);
		uint8_t state = ch_get_u8(&c);
		uint64_t at = ch_get_u64(&c);
		uint64_t h = ch_get_u64(&c);

		if (c.bad)
			break;
		for (size_t i = 0; i < n; i++) {
			struct ch_job *j = v[i];

			if (j->done || !j->sj.push_id ||
			    (len ? strlen(j->sj.push_id) != len || memcmp(j->sj.push_id, id, len)
				 : j->push_h != h))
				continue;
			if (state > j->state)
				j->state = state;
			if (state == 1 && at > j->state1_at)
				j->state1_at = at;
		}
	}
	if (!ret && c.bad)
		ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (push ids)");
	for (size_t i = 0; i < n && !ret; i++) {
		struct ch_job *j = v[i];

		if (j->done || !j->state)
			continue;
		if (j->state >= 2) {
			j->duplicate = j->done = true;
		} else if (j->state1_at + CH_PENDING_NS > now) {
			j->ret = ap_errf(j->err, sizeof(j->err), -EINPROGRESS,
					 "push %s is being stored by another writer; retry later",
					 j->sj.push_id);
			j->done = true;
		} else {
			j->has_pending = true;
		}
	}
	/* a write that began and failed (or timed out) long enough ago: store only the tables
	 * that lack its rows (each table's rows of one push went in one block: all or none) */
	for (size_t i = 0; i < n && !ret; i++) {
		struct ch_job *j = v[i];
		uint64_t cnt = 0;

		if (j->done || !j->has_pending)
			continue;
		if (j->sj.nentries) {
			ret = get_count(s, &cnt, err, errlen, CH_SQL_PUSH_ROWS, "ap_samples",
					(unsigned long long)j->push_h,
					(unsigned long long)(j->sj.from_ns / 1000000000ULL));
			j->skip_samples = cnt > 0;
		}
		if (!ret && j->sj.nrows) {
			ret = get_count(s, &cnt, err, errlen, CH_SQL_PUSH_ROWS, "ap_rows",
					(unsigned long long)j->push_h,
					(unsigned long long)(j->sj.from_ns / 1000000000ULL));
			j->skip_rows = cnt > 0;
		}
	}
	ch_buf_free(&q);
	ch_buf_free(&ans);
	ch_buf_free(&ids);
	ch_buf_free(&hashes);
	ch_buf_free(&legacy);
	return ret;
}

/* Does the samples INSERT mark this push stored (ap_roll_mv)? */
static bool marked_by_samples(const struct ch_job *j)
{
	return j->sj.nentries && !j->skip_samples && j->push_h;
}

/* ap_pushes rows: state 1 for the new pushes; state 2 for those the samples INSERT does not
 * mark (table rows only, or a recovered push whose samples were in already). */
static void push_rows(struct ch_buf *b, struct ch_job **v, size_t n, uint8_t state, uint64_t rv)
{
	uint64_t now = ch_real_ns();

	for (size_t i = 0; i < n; i++) {
		struct ch_job *j = v[i];

		if (j->done || !j->sj.push_id || (state == 1 && j->has_pending) ||
		    (state == 2 && marked_by_samples(j)))
			continue;
		ch_rb_str(b, j->sj.push_id);
		ch_rb_u32(b, (uint32_t)(j->sj.from_ns / 1000000000ULL));
		ch_rb_u8(b, state);
		ch_rb_u64(b, now);
		ch_rb_u64(b, rv);
	}
}

static uint16_t day_of(uint64_t ns)
{
	uint64_t d = ns / 1000000000ULL / 86400;

	return (uint16_t)(d > 65535 ? 65535 : d);
}

/* Label pairs (or value types) of a canonical blob as RowBinary arrays. */
static int put_pairs(struct ch_buf *b, const struct sq_buf *blob, bool two_arrays)
{
	struct ap_label_kv kv[AP_STORE_MAX_LABELS + 2];
	char *strs = NULL;
	int n = sq_pairs_decode(blob->b, blob->n, kv, AP_STORE_MAX_LABELS + 2, &strs);

	if (n < 0)
		return n;
	if (two_arrays) {
		ch_rb_len(b, (uint64_t)n);
		for (int i = 0; i < n; i++)
			ch_rb_str(b, kv[i].name);
		ch_rb_len(b, (uint64_t)n);
		for (int i = 0; i < n; i++)
			ch_rb_str(b, kv[i].value);
	} else {
		ch_rb_len(b, 2 * (uint64_t)n);
		for (int i = 0; i < n; i++) {
			ch_rb_str(b, kv[i].name);
			ch_rb_str(b, kv[i].value);
		}
	}
	free(strs);
	return 0;
}

/* Step 2: dictionary rows not written yet for their day, into fr, st, se. */
static int dicts(struct ch_store *s, struct ch_job **v, size_t n, struct ch_buf *fr,
		 struct ch_buf *st, struct ch_buf *se, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&s->seenlock);
	for (size_t i = 0; i < n && !ret; i++) {
		struct sq_job *j = &v[i]->sj;
		uint16_t day = day_of(j->from_ns);

		if (v[i]->done)
			continue;
		for (size_t k = 0; k < j->nframes; k++) {
			const struct pj_frame *f = &j->frames[k];

			if (seen_has(s->seen, f->hash, day))
				continue;
			ch_rb_u16(fr, day);
			ch_rb_u64(fr, f->hash);
			ch_rb_str(fr, f->name);
			ch_rb_str(fr, f->module);
			ch_rb_str(fr, f->file);
			ch_rb_u32(fr, f->line);
			ch_rb_u8(fr, (uint8_t)f->kind);
			ch_rb_u8(fr, (uint8_t)f->flags);
		}
		for (size_t k = 0; k < j->nstacks; k++) {
			const struct pj_stack *t = &j->stacks[k];

			if (seen_has(s->seen, t->hash, day))
				continue;
			ch_rb_u16(st, day);
			ch_rb_u64(st, t->hash);
			ch_rb_len(st, t->n);
			for (uint32_t f = 0; f < t->n; f++)
				ch_rb_u64(st, j->frames[j->stack_frames[t->first + f]].hash);
		}
		for (size_t k = 0; k < j->nseries && !ret; k++) {
			const struct pj_series *e = &j->series[k];

			if (seen_has(s->seen, e->hash, day))
				continue;
			ch_rb_u16(se, day);
			ch_rb_u64(se, e->hash);
			ret = put_pairs(se, &e->blob, true) ?: put_pairs(se, &j->vtypes, false);
			ch_rb_u64(se, j->period);
			ch_rb_u64(se, v[i]->gk[k]);
		}
	}
	pthread_mutex_unlock(&s->seenlock);
	return ret ? ap_errf(err, errlen, ret, "cannot encode a series") : 0;
}

/* Remembered only once all three tables have them (a stack is never written without its
 * frames), before the samples that use them are written (step 3). */
static void dicts_written(struct ch_store *s, struct ch_job **v, size_t n)
{
	pthread_mutex_lock(&s->seenlock);
	for (size_t i = 0; i < n; i++) {
		struct sq_job *j = &v[i]->sj;
		uint16_t day = day_of(j->from_ns);

		if (v[i]->done)
			continue;
		for (size_t k = 0; k < j->nframes; k++)
			seen_add(s->seen, j->frames[k].hash, day);
		for (size_t k = 0; k < j->nstacks; k++)
			seen_add(s->seen, j->stacks[k].hash, day);
		for (size_t k = 0; k < j->nseries; k++)
			seen_add(s->seen, j->series[k].hash, day);
	}
	pthread_mutex_unlock(&s->seenlock);
}

/* Step 3's bodies: the samples into sm, the table rows into rw. */
static void data(struct ch_job **v, size_t n, uint64_t rv, struct ch_buf *sm, struct ch_buf *rw)
{
	for (size_t i = 0; i < n; i++) {
		struct ch_job *cj = v[i];
		struct sq_job *j = &cj->sj;
		uint32_t t = (uint32_t)(j->from_ns / 1000000000ULL);

		if (cj->done)
			continue;
		for (size_t k = 0; k < j->nentries && !cj->skip_samples; k++) {
			const struct pj_entry *e = &j->entries[k];

			ch_rb_u32(sm, t);
			ch_rb_u64(sm, j->from_ns);
			ch_rb_u64(sm, j->series[e->series].hash);
			ch_rb_u64(sm, j->stacks[e->stack].hash);
			for (int x = 0; x < AP_MAX_VALUES; x++)
				ch_rb_u64(sm, x < (int)j->nvalues ? e->v[x] : 0);
			ch_rb_u64(sm, cj->push_h);
			ch_rb_u64(sm, rv);
			ch_rb_u64(sm, cj->sk);
			ch_rb_u64(sm, cj->gk[e->series]);
		}
		for (size_t k = 0; k < j->nrows && !cj->skip_rows; k++) {
			const struct ap_table_row *r = j->rows[k].r;

			ch_rb_u32(rw, t);
			ch_rb_u64(rw, j->from_ns);
			ch_rb_u64(rw, j->series[j->rows[k].series].hash);
			ch_rb_str(rw, r->table);
			ch_rb_str(rw, r->key);
			for (int x = 0; x < AP_STORE_TABLE_VALUES; x++)
				ch_rb_u64(rw, r->v[x]);
			ch_rb_len(rw, AP_HIST_SLOTS);
			for (int x = 0; x < AP_HIST_SLOTS; x++)
				ch_rb_u64(rw, r->hist[x]);
			ch_rb_u64(rw, cj->push_h);
			ch_rb_u64(rw, rv);
			ch_rb_u64(rw, cj->sk);
		}
	}
}

/* A batch between its two stages. */
struct stage {
	uint64_t rv;
	int ret;
	char err[256];
};

/* Stage 1 (steps 1 and 2): what to write, and the marks and dictionaries it needs. */
static void batch_front(struct ch_store *s, struct ch_job **v, size_t n, struct stage *g)
{
	struct ch_buf vis = {0}, p1 = {0}, fr = {0}, st = {0}, se = {0};

	g->ret = ch_vis(s, &vis, &g->rv, g->err, sizeof(g->err));
	if (!g->ret)
		g->ret = check_ids(s, v, n, vis.b, g->err, sizeof(g->err));
	if (!g->ret) {
		push_rows(&p1, v, n, 1, g->rv);
		g->ret = dicts(s, v, n, &fr, &st, &se, g->err, sizeof(g->err));
	}
	if (!g->ret) {
		/* independent of each other, all needed before the samples: one round trip */
		const struct ins step2[] = {{CH_SQL_PUSHES_INS, &p1},
					    {CH_SQL_FRAMES_INS, &fr},
					    {CH_SQL_STACKS_INS, &st},
					    {CH_SQL_SERIES_INS, &se}};

		g->ret = insert_many(s, step2, 4, g->err, sizeof(g->err));
	}
	if (!g->ret)
		dicts_written(s, v, n);
	ch_buf_free(&vis);
	ch_buf_free(&p1);
	ch_buf_free(&fr);
	ch_buf_free(&st);
	ch_buf_free(&se);
}

/* Stage 2 (steps 3 and 4): the data, then the state 2 rows the samples did not give. */
static void batch_back(struct ch_store *s, struct ch_job **v, size_t n, struct stage *g)
{
	struct ch_buf p2 = {0}, sm = {0}, rw = {0};

	if (!g->ret) {
		data(v, n, g->rv, &sm, &rw);
		/* the table rows before the samples: the samples INSERT marks a push stored */
		g->ret = insert(s, CH_SQL_ROWS_INS, &rw, g->err, sizeof(g->err));
	}
	if (!g->ret)
		g->ret = insert(s, CH_SQL_SAMPLES_INS, &sm, g->err, sizeof(g->err));
	if (!g->ret) {
		push_rows(&p2, v, n, 2, g->rv);
		g->ret = insert(s, CH_SQL_PUSHES_INS, &p2, g->err, sizeof(g->err));
	}
	if (g->ret) {
		fail_all(v, n, g->ret, g->err);
	} else {
		for (size_t i = 0; i < n; i++)
			v[i]->done = true;
	}
	ch_buf_free(&p2);
	ch_buf_free(&sm);
	ch_buf_free(&rw);
}

/* ---- retention (writer thread) ---- */

/* The latest cut-off of the known runs (seconds), 0 when none. */
static uint64_t max_cutoff(struct ch_store *s)
{
	uint64_t m = 0;

	pthread_mutex_lock(&s->rlock);
	for (size_t i = 0; i < s->nruns; i++)
		if (s->runs[i].cutoff > m)
			m = s->runs[i].cutoff;
	pthread_mutex_unlock(&s->rlock);
	return m;
}

static void retention_run(struct ch_store *s, struct ch_job *j)
{
	uint64_t cutoff = j->before_ns / CH_HOUR_NS * 3600; /* seconds, a whole hour */
	uint64_t hidden = 0, newest = 0, run;
	struct ch_buf vis = {0}, q = {0}, parts = {0};
	time_t ct = (time_t)cutoff;
	struct tm tm;
	unsigned cut_day;
	bool dropped_dict = false, recorded = false;
	char *err = j->err;
	size_t errlen = sizeof(j->err);
	int ret;

	gmtime_r(&ct, &tm);
	cut_day = (unsigned)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
	ret = ch_vis(s, &vis, &newest, err, errlen);
	if (!ret) {
		struct ch_buf cq = {0};
		struct ch_cur c;

		ch_buf_printf(&cq, CH_SQL_RUN_COUNT, s->db, vis.b, (unsigned long long)cutoff);
		ret =
		    cq.oom ? -ENOMEM : ch_http_exec(s->http, cq.b, NULL, 0, NULL, &q, err, errlen);
		c = ch_cur_of(&q);
		if (!ret) {
			hidden = ch_get_u64(&c);
			if (c.bad || c.p != c.end)
				ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed count");
		}
		ch_buf_free(&cq);
	}
	/* the run first: from now on queries hide the rows, whatever a restart brings back. The
	 * aggregator calls this every D/100 (--retention D): a run that would hide nothing (no
	 * visible sample row below a cut-off that an earlier run already has) is not recorded, so
	 * runs, and the rv values of rows, change about once an hour */
	run = ch_real_ns();
	if (run <= newest)
		run = newest + 1;
	if (!ret && (hidden || max_cutoff(s) < cutoff)) {
		ret = ch_exec_fmt(s, NULL, err, errlen, CH_SQL_RUN_PUT, s->db,
				  (unsigned long long)run, (unsigned long long)cutoff);
		ch_runs_invalidate(s);
		recorded = true;
	}
	/* then the space: whole days below the cut-off, every day-partitioned table */
	if (!ret) {
		struct ch_buf names = {0};

		char t[96];

		for (size_t i = 0; i < CH_NTABLES; i++)
			if (ch_tables[i].by_day) {
				snprintf(t, sizeof(t), "%s%s", ch_tables[i].name, s->suffix);
				if (names.n)
					ch_buf_put(&names, ",", 1);
				ch_sql_str(&names, t);
			}
		for (size_t i = 0; i < CH_NLEGACY; i++) { /* none: no parts listed */
			snprintf(t, sizeof(t), "%s%s", ch_legacy_tables[i], s->suffix);
			ch_buf_put(&names, ",", 1);
			ch_sql_str(&names, t);
		}
		q.n = 0;
		ch_buf_printf(&q, CH_SQL_PARTS, s->db, names.b ? names.b : "''");
		ret = q.oom || names.oom
			  ? -ENOMEM
			  : ch_http_exec(s->http, q.b, NULL, 0, NULL, &parts, err, errlen);
		ch_buf_free(&names);
	}
	if (!ret) {
		struct ch_cur c = ch_cur_of(&parts);

		while (!ret && ch_cur_more(&c)) {
			size_t tn, pn;
			const char *t = ch_get_str(&c, &tn), *p = ch_get_str(&c, &pn);
			char tname[96], pname[16];

			if (c.bad || !tn || tn >= sizeof(tname) || !pn || pn >= sizeof(pname) ||
			    strspn(p, "0123456789") < pn)
				break;
			memcpy(tname, t, tn);
			tname[tn] = 0;
			memcpy(pname, p, pn);
			pname[pn] = 0;
			if (strspn(tname, "abcdefghijklmnopqrstuvwxyz0123456789_") != tn ||
			    strtoul(pname, NULL, 10) >= cut_day)
				continue;
			ret = ch_exec_fmt(s, NULL, err, errlen, CH_SQL_DROP_PART, s->db, tname,
					  s->on_cluster, pname);
			if (!strncmp(tname, "ap_series", 9) || !strncmp(tname, "ap_stacks", 9) ||
			    !strncmp(tname, "ap_frames", 9))
				dropped_dict = true;
		}
		if (!ret && c.bad)
			ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (parts)");
	}
	/* runs that a later run with a cut-off as late makes redundant (best effort) */
	if (!ret && recorded) {
		char e2[128];

		ch_exec_fmt(s, NULL, e2, sizeof(e2), CH_SQL_RUNS_PRUNE, s->db, s->suffix,
			    s->on_cluster, (unsigned long long)run, (unsigned long long)cutoff);
	}
	if (dropped_dict) {
		pthread_mutex_lock(&s->seenlock);
		seen_clear(s->seen);
		pthread_mutex_unlock(&s->seenlock);
	}
	pthread_mutex_lock(&s->slock);
	if (!ret) {
		s->st.retention_runs++;
		s->st.retention_deleted_rows += hidden;
	}
	pthread_mutex_unlock(&s->slock);
	j->ret = ret;
	ch_buf_free(&vis);
	ch_buf_free(&q);
	ch_buf_free(&parts);
}

/* ---- the thread and write() ---- */

/* A push whose id is in another writer's batch right now (an agent's retry while the first
 * try is being written): "retry later" rather than a second copy. qlock held. */
static bool in_flight(struct ch_store *s, int me, const struct ch_job *j)
{
	if (!j->sj.push_id)
		return false;
	for (size_t w = 0; w < s->nwriters; w++)
		for (size_t k = 0; (int)w != me && k < s->nflight[w]; k++)
			if (s->flight[w][k]->sj.push_id &&
			    !strcmp(s->flight[w][k]->sj.push_id, j->sj.push_id))
				return true;
	return false;
}

/*
 * The writers form a two-stage pipeline: one writer at a time (front) takes the queued pushes
 * and runs the first stage (push ids, state 1 rows, dictionaries), then waits for the second
 * stage (back: the data) and hands the front on. So a batch's samples INSERT overlaps the next
 * batch's first stage, and the pushes that arrive meanwhile make the batch after it: batches
 * grow with the load instead of splitting it between writers (every INSERT makes a part per
 * table, whatever its size).
 */
static void *writer_main(void *arg)
{
	struct ch_wctx *wc = arg;
	struct ch_store *s = wc->s;
	int me = wc->idx;
	struct ch_job **batch = s->flight[me];

	for (;;) {
		size_t n = 0, entries = 0;
		struct ch_job *rj = NULL;
		struct stage g = {0};
		bool periodic = false;

		pthread_mutex_lock(&s->front);
		pthread_mutex_lock(&s->qlock);
		while (!s->qhead && !s->stopping) {
			struct timespec ts;

			if (s->next_retention_mono && ch_mono_ns() >= s->next_retention_mono)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->qcond, &s->qlock, &ts);
		}
		if (!s->qhead && s->stopping) {
			pthread_mutex_unlock(&s->qlock);
			pthread_mutex_unlock(&s->front);
			break;
		}
		if (!s->qhead) { /* --retention */
			periodic = true;
			s->next_retention_mono = ch_mono_ns() + 60 * 1000000000ULL;
		} else if (s->qhead->kind == JOB_RETENTION) {
			rj = s->qhead;
			s->qhead = rj->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->qlen--;
		}
		for (uint64_t until = 0; !periodic && !rj;) {
			struct ch_job *j = s->qhead;

			if (!j && n && n < CH_BATCH_MAX && s->preparing && !s->stopping) {
				/* pushes are being decoded for write() right now: wait a little
				 * for them rather than give each its own INSERTs */
				uint64_t now = ch_real_ns();
				struct timespec ts;

				if (!until)
					until = now + CH_GATHER_NS;
				if (now < until) {
					ts.tv_sec = (time_t)(until / 1000000000ULL);
					ts.tv_nsec = (long)(until % 1000000000ULL);
					pthread_cond_timedwait(&s->qcond, &s->qlock, &ts);
					continue;
				}
			}
			if (!j || j->kind != JOB_WRITE || n >= CH_BATCH_MAX ||
			    (n && entries + j->sj.nentries > CH_BATCH_ENTRIES))
				break;

			s->qhead = j->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->qlen--;
			if (in_flight(s, me, j)) {
				j->ret =
				    ap_errf(j->err, sizeof(j->err), -EINPROGRESS,
					    "push %s is being stored by this aggregator; retry "
					    "later",
					    j->sj.push_id);
				j->done = j->finished = true;
				pthread_cond_broadcast(&s->donecond);
				continue;
			}
			entries += j->sj.nentries;
			batch[n++] = j;
			s->nflight[me] = n;
		}
		pthread_mutex_unlock(&s->qlock);
		if (periodic || rj || !n) {
			/* retention beside the writes, as one more writer */
			pthread_mutex_unlock(&s->front);
			if (periodic) {
				struct ch_job j = {.kind = JOB_RETENTION};

				j.before_ns = ch_real_ns() - s->opts.retention_ns;
				retention_run(s, &j);
			} else if (rj) {
				retention_run(s, rj);
				pthread_mutex_lock(&s->qlock);
				rj->done = rj->finished = true;
				pthread_cond_broadcast(&s->donecond);
				pthread_mutex_unlock(&s->qlock);
			}
			continue;
		}
		batch_front(s, batch, n, &g);
		pthread_mutex_lock(&s->back);
		pthread_mutex_unlock(&s->front);
		batch_back(s, batch, n, &g);
		pthread_mutex_unlock(&s->back);
		pthread_mutex_lock(&s->qlock);
		for (size_t i = 0; i < n; i++)
			batch[i]->finished = true;
		s->nflight[me] = 0;
		pthread_cond_broadcast(&s->donecond);
		pthread_mutex_unlock(&s->qlock);
	}
	return NULL;
}

int ch_writer_start(struct ch_store *s, char *err, size_t errlen)
{
	s->seen = calloc(1, sizeof(*s->seen));
	if (!s->seen)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	if (s->opts.retention_ns)
		s->next_retention_mono = ch_mono_ns(); /* a first run at once */
	for (int i = 0; i < CH_WRITERS; i++) {
		s->wctx[i] = (struct ch_wctx){s, i};
		if (pthread_create(&s->writers[i], NULL, writer_main, &s->wctx[i])) {
			if (i)
				break; /* fewer writers: slower, not wrong */
			free(s->seen);
			s->seen = NULL;
			return ap_errf(err, errlen, -EAGAIN, "cannot start the writer thread");
		}
		s->nwriters++;
	}
	return 0;
}

void ch_writer_stop(struct ch_store *s)
{
	if (s->nwriters) {
		pthread_mutex_lock(&s->qlock);
		s->stopping = true;
		pthread_cond_broadcast(&s->qcond);
		pthread_mutex_unlock(&s->qlock);
		for (size_t i = 0; i < s->nwriters; i++)
			pthread_join(s->writers[i], NULL);
		s->nwriters = 0;
	}
	if (s->seen) {
		seen_clear(s->seen);
		free(s->seen);
		s->seen = NULL;
	}
}

static int enqueue_wait(struct ch_store *s, struct ch_job *j, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->qlock);
	if (j->kind == JOB_WRITE)
		s->preparing--;
	if (s->qlen >= CH_QUEUE_MAX) {
		pthread_cond_broadcast(&s->qcond);
		pthread_mutex_unlock(&s->qlock);
		return ap_errf(err, errlen, -EAGAIN, "%d writes are queued for ClickHouse",
			       CH_QUEUE_MAX);
	}
	if (s->qtail)
		s->qtail->next = j;
	else
		s->qhead = j;
	s->qtail = j;
	s->qlen++;
	/* every writer: the one gathering a batch and an idle one */
	pthread_cond_broadcast(&s->qcond);
	while (!j->finished)
		pthread_cond_wait(&s->donecond, &s->qlock);
	pthread_mutex_unlock(&s->qlock);
	return 0;
}

static uint64_t shard_key(const struct ap_store_write *w)
{
	for (size_t i = 0; i < w->nlabels; i++)
		if (w->labels[i].name && !strcmp(w->labels[i].name, "host") && w->labels[i].value)
			return sq_str_hash(w->labels[i].value, strlen(w->labels[i].value));
	return w->push_id && *w->push_id ? sq_str_hash(w->push_id, strlen(w->push_id)) : 0;
}

/* A series' group key (ap_series.gk, ap_samples.gk): its comm and value-type lineup, the
 * groups of a query's answer; never 0 (the key of rows written before schema version 3). */
static uint64_t ch_group_key(const char *comm, const void *vtypes, size_t len)
{
	return ap_hash_bytes(vtypes, len, ap_hash_bytes(comm, strlen(comm), 0x676b)) | 1;
}

/* The group key of each of the push's series (in the caller's thread, before the queue). */
static int group_keys(struct ch_job *j, char *err, size_t errlen)
{
	struct sq_job *sj = &j->sj;

	j->gk = calloc(sj->nseries ? sj->nseries : 1, sizeof(*j->gk));
	if (!j->gk)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	for (size_t k = 0; k < sj->nseries; k++) {
		struct ap_label_kv kv[AP_STORE_MAX_LABELS + 2];
		char *strs = NULL;
		const char *comm = "";
		int n = sq_pairs_decode(sj->series[k].blob.b, sj->series[k].blob.n, kv,
					AP_STORE_MAX_LABELS + 2, &strs);

		if (n < 0)
			return ap_errf(err, errlen, n, "cannot decode a series' labels");
		for (int i = 0; i < n; i++)
			if (!strcmp(kv[i].name, "comm"))
				comm = kv[i].value;
		j->gk[k] = ch_group_key(comm, sj->vtypes.b, sj->vtypes.n);
		free(strs);
	}
	return 0;
}

int ch_write(struct ap_store *st, const struct ap_store_write *w, bool *duplicate, char *err,
	     size_t errlen)
{
	struct ch_store *s = ch_of(st);
	struct ch_job *j = calloc(1, sizeof(*j));
	int ret;

	*duplicate = false;
	if (!j)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	j->kind = JOB_WRITE;
	pthread_mutex_lock(&s->qlock);
	s->preparing++;
	pthread_mutex_unlock(&s->qlock);
	ret = sq_job_prepare(&j->sj, w, err, errlen);
	if (!ret) {
		j->push_h = j->sj.push_id ? sq_str_hash(j->sj.push_id, strlen(j->sj.push_id)) : 0;
		j->sk = shard_key(w);
		ret = group_keys(j, err, errlen);
	}
	if (ret) {
		pthread_mutex_lock(&s->qlock);
		s->preparing--;
		pthread_cond_broadcast(&s->qcond);
		pthread_mutex_unlock(&s->qlock);
	} else {
		ret = enqueue_wait(s, j, err, errlen);
		if (!ret) {
			ret = j->ret;
			if (ret)
				ap_errf(err, errlen, ret, "ClickHouse %s: %s", s->where, j->err);
			*duplicate = j->duplicate;
		}
	}
	pthread_mutex_lock(&s->slock);
	if (ret)
		s->st.writes_failed++;
	else if (*duplicate)
		s->st.duplicates++;
	else
		s->st.writes_ok++;
	s->st.label_conflicts += ret ? 0 : j->sj.label_conflicts;
	pthread_mutex_unlock(&s->slock);
	sq_job_release(&j->sj);
	free(j->gk);
	free(j);
	return ret;
}

int ch_retention(struct ap_store *st, uint64_t before_ns, char *err, size_t errlen)
{
	struct ch_store *s = ch_of(st);
	struct ch_job j = {.kind = JOB_RETENTION, .before_ns = before_ns};
	int ret = enqueue_wait(s, &j, err, errlen);

	if (!ret && j.ret)
		ret = ap_errf(err, errlen, j.ret, "ClickHouse %s: retention: %s", s->where, j.err);
	return ret;
}
