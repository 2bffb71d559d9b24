// SPDX-License-Identifier: MIT
/*
 * Retention, run by the writer thread (so it never races a write): everything before the cut,
 * rounded down to a whole hour so that every resolution loses the same time, is deleted; then
 * the frames, stacks and series whose newest reference is older than the cut (their last_h, kept
 * by the writer) and the remembered push ids of that time; then the freed pages go back to the
 * file system (incremental vacuum) and the WAL is truncated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "sqlite_job.h"
#include "sqlite_stmts.h"

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static int del_id(sqlite3_stmt *st, uint32_t id)
{
	sqlite3_bind_int64(st, 1, id);
	return step_done(st);
}

struct dead {
	uint32_t *v;
	size_t n, cap;
};

static int dead_add(struct dead *d, uint32_t id)
{
	if (ap_grow_array((void **)&d->v, &d->cap, d->n + 1, sizeof(*d->v)))
		return SQLITE_NOMEM;
	d->v[d->n++] = id;
	return 0;
}

void sq_retention_run(struct sq_store *s, struct sq_job *j)
{
	struct sq_writer_stmts *ws = s->ws;
	struct sq_dict *d = &s->dict;
	int64_t cut_h = sq_hour(j->before_ns);
	int64_t cut = cut_h * (int64_t)SQ_HOUR_NS;
	struct dead ds = { 0 }, dk = { 0 }, df = { 0 }, trim = { 0 };
	uint64_t rows = 0, raw = 0, pushes = 0;
	const char *what = "starting a transaction";
	int rc;

	rc = step_done(ws->begin);
	what = "deleting old samples";
	for (int k = 0; k < SQ_NTIERS && !rc; k++) {
		sqlite3_stmt *st = ws->chunk_del[k];

		if (!sq_tiers[k].time_major)
			continue;
		sqlite3_bind_int64(st, 1, 0);
		sqlite3_bind_int64(st, 2, cut);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			if (k == 0)
				raw += (uint64_t)sqlite3_column_int64(st, 0);
		}
		sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? 0 : rc;
	}
	/* the dictionaries change only in this thread: reading them needs no lock */
	for (size_t i = 1; i < d->nseries && !rc; i++) {
		struct sq_series *e = d->series[i];

		if (!e || e->first_h >= cut_h)
			continue;
		what = "deleting old samples";
		for (int k = 0; k < SQ_NTIERS && !rc; k++) {
			sqlite3_stmt *st = ws->chunk_del[k];

			if (!sq_tiers[k].time_major) {
				sqlite3_bind_int64(st, 1, e->id);
				sqlite3_bind_int64(st, 2, cut);
				while ((rc = sqlite3_step(st)) == SQLITE_ROW)
					rows++;
				sqlite3_reset(st);
				rc = rc == SQLITE_DONE ? 0 : rc;
			}
			if (!rc) {
				sqlite3_bind_int64(ws->row_del[k], 1, e->id);
				sqlite3_bind_int64(ws->row_del[k], 2, cut);
				rc = step_done(ws->row_del[k]);
				rows += (uint64_t)sqlite3_changes(s->wdb);
			}
		}
		if (rc)
			break;
		if (e->last_h < cut_h) {
			rc = del_id(ws->series_del, e->id) ?: dead_add(&ds, e->id);
		} else {
			sqlite3_bind_int64(ws->series_touch, 1, e->id);
			sqlite3_bind_int64(ws->series_touch, 2, cut_h);
			sqlite3_bind_int64(ws->series_touch, 3, e->last_h);
			rc = step_done(ws->series_touch) ?: dead_add(&trim, e->id);
		}
	}
	what = "deleting old stacks";
	for (size_t i = 1; i < d->nstacks && !rc; i++)
		if (d->stacks[i] && d->stacks[i]->last_h < cut_h)
			rc = del_id(ws->stack_del, (uint32_t)i) ?: dead_add(&dk, (uint32_t)i);
	for (size_t i = 1; i < d->nframes && !rc; i++)
		if (d->frames[i] && d->frames[i]->last_h < cut_h)
			rc = del_id(ws->frame_del, (uint32_t)i) ?: dead_add(&df, (uint32_t)i);
	if (!rc) {
		what = "deleting old push ids";
		sqlite3_bind_int64(ws->push_del, 1, cut);
		rc = step_done(ws->push_del);
		pushes = (uint64_t)sqlite3_changes(s->wdb);
	}
	if (!rc) {
		what = "committing";
		rc = step_done(ws->commit);
	}
	if (rc) {
		j->ret = sq_fail(s->wdb, rc, what, j->err, sizeof(j->err));
		step_done(ws->rollback);
	} else {
		pthread_rwlock_wrlock(&d->lock);
		for (size_t i = 0; i < ds.n; i++)
			sq_dict_remove_series(d, ds.v[i]);
		for (size_t i = 0; i < dk.n; i++)
			sq_dict_remove_stack(d, dk.v[i]);
		for (size_t i = 0; i < df.n; i++)
			sq_dict_remove_frame(d, df.v[i]);
		for (size_t i = 0; i < trim.n; i++)
			d->series[trim.v[i]]->first_h = cut_h;
		pthread_rwlock_unlock(&d->lock);
		/* give the freed pages back; both only fail when busy, and are retried next run */
		sqlite3_exec(s->wdb, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
		sqlite3_exec(s->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	pthread_mutex_lock(&s->slock);
	s->st.retention_runs++;
	if (!rc) {
		s->st.retention_deleted_rows += rows;
		s->st.sample_rows -= raw < s->st.sample_rows ? raw : s->st.sample_rows;
		s->st.pushes -= pushes < s->st.pushes ? pushes : s->st.pushes;
	}
	pthread_mutex_unlock(&s->slock);
	free(ds.v);
	free(dk.v);
	free(df.v);
	free(trim.v);
}
