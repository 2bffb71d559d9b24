// SPDX-License-Identifier: MIT
/*
 * The SQLite backend's one writer thread. write() queues a prepared job and sleeps until the
 * transaction holding it has committed; the writer takes every job queued meanwhile (up to
 * SQ_BATCH_MAX) into one transaction (group commit), so the fsync of a commit is shared by the
 * pushes that arrived while the previous one ran. Inside a batch, samples of the same
 * (series, bucket, stack) are summed in memory before any row is read or written: a sample
 * costs a hash lookup, a row costs one read and one write per resolution.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "sqlite_job.h"
#include "sqlite_stmts.h"

#define SQ_AUTO_RETENTION_NS 60000000000ULL /* how often --retention is applied */

/* The sums of one (tier, series, bucket) in a batch. */
struct cell {
	struct ap_hnode node;
	int tier;
	uint32_t series, nvalues;
	int64_t t;
	struct sq_map idx; /* stack id -> entry */
	struct sq_entry *e;
	size_t n, cap;
};

struct undo {
	int64_t *slot;
	int64_t old;
};

struct batch {
	struct ap_htab cells;
	struct cell **list;
	size_t ncells, capcells;
	uint32_t *new_frames, *new_stacks, *new_series;
	size_t nnf, nns, nnser, capnf, capns, capnser;
	uint32_t *touch_frames, *touch_stacks, *touch_series;
	size_t ntf, nts, ntser, captf, capts, captser;
	struct undo *undo;
	size_t nundo, capundo;
	struct sq_buf buf;
	uint64_t raw_entries_added;
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static int push_u32(uint32_t **arr, size_t *n, size_t *cap, uint32_t v)
{
	if (ap_grow_array((void **)arr, cap, *n + 1, sizeof(**arr)))
		return -ENOMEM;
	(*arr)[(*n)++] = v;
	return 0;
}

static int set_h(struct batch *b, int64_t *slot, int64_t v)
{
	if (ap_grow_array((void **)&b->undo, &b->capundo, b->nundo + 1, sizeof(*b->undo)))
		return -ENOMEM;
	b->undo[b->nundo++] = (struct undo){ slot, *slot };
	*slot = v;
	return 0;
}

static struct cell *cell_get(struct batch *b, int tier, uint32_t series, int64_t t,
			     uint32_t nvalues)
{
	uint64_t h = ap_hash_mix64(((uint64_t)series << 2 | (uint64_t)tier) ^
				   ap_hash_mix64((uint64_t)t));
	struct cell *c;

	for (struct ap_hnode *n = ap_htab_first(&b->cells, h); n; n = ap_htab_next(n)) {
		c = AP_CONTAINER_OF(n, struct cell, node);
		if (c->tier == tier && c->series == series && c->t == t)
			return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c || ap_grow_array((void **)&b->list, &b->capcells, b->ncells + 1, sizeof(*b->list)) ||
	    ap_htab_insert(&b->cells, &c->node, h)) {
		free(c);
		return NULL;
	}
	c->tier = tier;
	c->series = series;
	c->t = t;
	c->nvalues = nvalues;
	b->list[b->ncells++] = c;
	return c;
}

static int cell_add(struct cell *c, uint32_t stack, const uint64_t *v)
{
	bool ins;
	uint32_t *slot = sq_map_put(&c->idx, stack, (uint32_t)c->n, &ins);

	if (!slot)
		return -ENOMEM;
	if (ins) {
		if (ap_grow_array((void **)&c->e, &c->cap, c->n + 1, sizeof(*c->e)))
			return -ENOMEM; /* the map slot stays: the batch fails as a whole */
		memset(&c->e[c->n], 0, sizeof(c->e[0]));
		c->e[c->n++].stack = stack;
	}
	for (uint32_t i = 0; i < c->nvalues; i++)
		c->e[*slot].v[i] = sat_add(c->e[*slot].v[i], v[i]);
	return 0;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->ncells; i++) {
		sq_map_free(&b->list[i]->idx);
		free(b->list[i]->e);
		free(b->list[i]);
	}
	free(b->list);
	ap_htab_release(&b->cells);
	free(b->new_frames);
	free(b->new_stacks);
	free(b->new_series);
	free(b->touch_frames);
	free(b->touch_stacks);
	free(b->touch_series);
	free(b->undo);
	free(b->buf.b);
}

/* A stored stack with the job stack's hash whose frames have the job frames' hashes: found
 * without comparing strings (frames are compared in full when they are first stored). */
static struct sq_stack *find_stack(struct sq_dict *d, const struct sq_job *j,
				   const struct pj_stack *st)
{
	for (struct ap_hnode *x = ap_htab_first(&d->sidx, st->hash); x; x = ap_htab_next(x)) {
		struct sq_stack *s = AP_CONTAINER_OF(x, struct sq_stack, node);
		uint32_t k = 0;

		if (s->n != st->n)
			continue;
		while (k < s->n && d->frames[s->frames[k]]->node.hash ==
					   j->frames[j->stack_frames[st->first + k]].hash)
			k++;
		if (k == s->n)
			return s;
	}
	return NULL;
}

static int frame_id(struct sq_store *s, struct batch *b, struct sq_job *j, uint32_t i, int64_t h)
{
	const struct pj_frame *f = &j->frames[i];
	struct sq_dict *d = &s->dict;
	struct sq_frame *e;

	if (j->frame_ids[i])
		return 0;
	e = sq_dict_find_frame(d, f->hash, f->name, f->module, f->file, f->line, f->kind,
			       f->flags);
	if (!e) {
		e = sq_dict_add_frame(d, 0, f->hash, f->name, f->module, f->file, f->line, f->kind,
				      f->flags, h);
		if (!e || push_u32(&b->new_frames, &b->nnf, &b->capnf, e->id))
			return -ENOMEM;
	} else if (e->last_h < h) {
		if (set_h(b, &e->last_h, h) || push_u32(&b->touch_frames, &b->ntf, &b->captf, e->id))
			return -ENOMEM;
	}
	j->frame_ids[i] = e->id;
	return 0;
}

/* Map a job's stacks and series to store ids, adding what is new (wrlock held). A frame's
 * last_h is never older than that of a stack holding it, so retention can judge each alone. */
static int resolve(struct sq_store *s, struct batch *b, struct sq_job *j)
{
	struct sq_dict *d = &s->dict;
	int64_t h = sq_hour(j->from_ns);
	uint32_t *ids = NULL;
	size_t cap = 0;

	j->frame_ids = calloc(j->nframes + 1, sizeof(uint32_t));
	j->stack_ids = calloc(j->nstacks + 1, sizeof(uint32_t));
	j->series_ids = calloc(j->nseries + 1, sizeof(uint32_t));
	if (!j->frame_ids || !j->stack_ids || !j->series_ids)
		return -ENOMEM;
	for (size_t i = 0; i < j->nstacks; i++) {
		const struct pj_stack *st = &j->stacks[i];
		struct sq_stack *e = find_stack(d, j, st);

		if (e) {
			if (e->last_h < h) {
				if (set_h(b, &e->last_h, h) ||
				    push_u32(&b->touch_stacks, &b->nts, &b->capts, e->id))
					goto nomem;
				for (uint32_t k = 0; k < e->n; k++) {
					struct sq_frame *f = d->frames[e->frames[k]];

					if (f->last_h < h &&
					    (set_h(b, &f->last_h, h) ||
					     push_u32(&b->touch_frames, &b->ntf, &b->captf, f->id)))
						goto nomem;
				}
			}
			j->stack_ids[i] = e->id;
			continue;
		}
		if (ap_grow_array((void **)&ids, &cap, st->n + 1, sizeof(*ids)))
			goto nomem;
		for (uint32_t k = 0; k < st->n; k++) {
			uint32_t jf = j->stack_frames[st->first + k];

			if (frame_id(s, b, j, jf, h))
				goto nomem;
			ids[k] = j->frame_ids[jf];
		}
		e = sq_dict_add_stack(d, 0, st->hash, ids, st->n, h);
		if (!e || push_u32(&b->new_stacks, &b->nns, &b->capns, e->id))
			goto nomem;
		j->stack_ids[i] = e->id;
	}
	free(ids);
	for (size_t i = 0; i < j->nseries; i++) {
		const struct pj_series *ps = &j->series[i];
		struct sq_series *e = sq_dict_find_series(d, ps->hash, ps->blob.b, ps->blob.n,
							  j->vtypes.b, j->vtypes.n, j->period);

		if (!e) {
			e = sq_dict_add_series(d, 0, ps->blob.b, ps->blob.n, j->vtypes.b,
					       j->vtypes.n, j->period, h, h);
			if (!e || push_u32(&b->new_series, &b->nnser, &b->capnser, e->id))
				return -ENOMEM;
		} else if (e->last_h < h || e->first_h > h) {
			if ((e->last_h < h && set_h(b, &e->last_h, h)) ||
			    (e->first_h > h && set_h(b, &e->first_h, h)) ||
			    push_u32(&b->touch_series, &b->ntser, &b->captser, e->id))
				return -ENOMEM;
		}
		j->series_ids[i] = e->id;
	}
	return 0;
nomem:
	free(ids);
	return -ENOMEM;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static int put_dict_rows(struct sq_store *s, struct batch *b)
{
	struct sq_writer_stmts *ws = s->ws;
	struct sq_dict *d = &s->dict;
	int rc = 0;

	for (size_t i = 0; i < b->nnf && !rc; i++) {
		struct sq_frame *f = d->frames[b->new_frames[i]];
		sqlite3_stmt *st = ws->frame_put;

		sqlite3_bind_int64(st, 1, f->id);
		sqlite3_bind_int64(st, 2, f->last_h);
		sqlite3_bind_text(st, 3, f->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, f->module, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, f->file, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, f->line);
		sqlite3_bind_int64(st, 7, f->kind);
		sqlite3_bind_int64(st, 8, f->flags);
		rc = step_done(st);
	}
	for (size_t i = 0; i < b->nns && !rc; i++) {
		struct sq_stack *k = d->stacks[b->new_stacks[i]];
		sqlite3_stmt *st = ws->stack_put;

		b->buf.n = 0;
		for (uint32_t f = 0; f < k->n && !rc; f++)
			rc = sq_buf_varint(&b->buf, k->frames[f]) ? SQLITE_NOMEM : 0;
		sqlite3_bind_int64(st, 1, k->id);
		sqlite3_bind_int64(st, 2, k->last_h);
		sqlite3_bind_blob(st, 3, b->buf.b ? (void *)b->buf.b : "", (int)b->buf.n,
				  SQLITE_STATIC);
		if (!rc)
			rc = step_done(st);
	}
	for (size_t i = 0; i < b->nnser && !rc; i++) {
		struct sq_series *e = d->series[b->new_series[i]];
		sqlite3_stmt *st = ws->series_put;

		sqlite3_bind_int64(st, 1, e->id);
		sqlite3_bind_int64(st, 2, e->first_h);
		sqlite3_bind_int64(st, 3, e->last_h);
		sqlite3_bind_blob(st, 4, e->labels_blob, (int)e->labels_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, e->vtypes_blob, (int)e->vtypes_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (int64_t)e->period);
		rc = step_done(st);
	}
	for (size_t i = 0; i < b->ntf && !rc; i++) {
		sqlite3_bind_int64(ws->frame_touch, 1, b->touch_frames[i]);
		sqlite3_bind_int64(ws->frame_touch, 2, d->frames[b->touch_frames[i]]->last_h);
		rc = step_done(ws->frame_touch);
	}
	for (size_t i = 0; i < b->nts && !rc; i++) {
		sqlite3_bind_int64(ws->stack_touch, 1, b->touch_stacks[i]);
		sqlite3_bind_int64(ws->stack_touch, 2, d->stacks[b->touch_stacks[i]]->last_h);
		rc = step_done(ws->stack_touch);
	}
	for (size_t i = 0; i < b->ntser && !rc; i++) {
		struct sq_series *e = d->series[b->touch_series[i]];

		sqlite3_bind_int64(ws->series_touch, 1, e->id);
		sqlite3_bind_int64(ws->series_touch, 2, e->first_h);
		sqlite3_bind_int64(ws->series_touch, 3, e->last_h);
		rc = step_done(ws->series_touch);
	}
	return rc;
}

/* Add a stored sample blob into a cell. Returns a SQLite code; *n = its entries. */
static int cell_add_blob(struct cell *c, const unsigned char *p, const unsigned char *end,
			 uint64_t *n)
{
	uint64_t stack = 0, d, v[AP_MAX_VALUES] = { 0 };

	*n = 0;
	p = p ? sq_varint_get(p, end, n) : NULL;
	for (uint64_t i = 0; p && i < *n; i++) {
		p = sq_varint_get(p, end, &d);
		stack += d;
		for (uint32_t k = 0; p && k < c->nvalues; k++)
			p = sq_varint_get(p, end, &v[k]);
		if (p && cell_add(c, (uint32_t)stack, v))
			return SQLITE_NOMEM;
	}
	return p ? 0 : SQLITE_CORRUPT;
}

/* Read the stored row of a cell, add it in, write it back. */
static int put_cell(struct sq_store *s, struct batch *b, struct cell *c)
{
	sqlite3_stmt *get = s->ws->chunk_get[c->tier], *put = s->ws->chunk_put[c->tier];
	uint64_t tot[AP_MAX_VALUES] = { 0 }, before = 0;
	int rc;

	sqlite3_bind_int64(get, 1, c->series);
	sqlite3_bind_int64(get, 2, c->t);
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_blob(get, 5);

		rc = cell_add_blob(c, p, p + sqlite3_column_bytes(get, 5), &before);
		sqlite3_reset(get);
		if (rc)
			return rc;
	} else {
		sqlite3_reset(get);
		if (rc != SQLITE_DONE)
			return rc;
	}
	if (sq_samples_encode(&b->buf, c->e, c->n, c->nvalues))
		return SQLITE_NOMEM;
	for (size_t i = 0; i < c->n; i++)
		for (uint32_t k = 0; k < c->nvalues; k++)
			tot[k] = sat_add(tot[k], c->e[i].v[k]);
	if (c->tier == 0)
		b->raw_entries_added += c->n - before;
	sqlite3_bind_int64(put, 1, c->series);
	sqlite3_bind_int64(put, 2, c->t);
	sqlite3_bind_int64(put, 3, (int64_t)c->n);
	for (int k = 0; k < AP_MAX_VALUES; k++)
		sqlite3_bind_int64(put, 4 + k, (int64_t)tot[k]);
	sqlite3_bind_blob(put, 8, b->buf.b, (int)b->buf.n, SQLITE_STATIC);
	return step_done(put);
}

static int put_rows(struct sq_store *s, struct sq_job *j)
{
	int rc = 0;

	for (size_t i = 0; i < j->nrows && !rc; i++) {
		const struct ap_table_row *r = j->rows[i].r;
		bool hist = false;

		for (int k = 0; k < AP_HIST_SLOTS; k++)
			hist |= r->hist[k] != 0;
		for (int k = 0; k < SQ_NTIERS && !rc; k++) {
			sqlite3_stmt *st = s->ws->row_put[k];
			uint64_t res = sq_tiers[k].res_ns;

			sqlite3_bind_int64(st, 1, j->series_ids[j->rows[i].series]);
			sqlite3_bind_int64(st, 2, (int64_t)(res ? j->from_ns - j->from_ns % res
							       : j->from_ns));
			sqlite3_bind_text(st, 3, r->table, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, r->key, -1, SQLITE_STATIC);
			for (int v = 0; v < AP_STORE_TABLE_VALUES; v++)
				sqlite3_bind_int64(st, 5 + v, (int64_t)r->v[v]);
			if (hist)
				sqlite3_bind_blob(st, 9, r->hist, sizeof(r->hist), SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 9);
			rc = step_done(st);
		}
	}
	return rc;
}

static bool seen_in_batch(struct sq_job **jobs, size_t upto, const char *id)
{
	for (size_t i = 0; i < upto; i++)
		if (!jobs[i]->duplicate && jobs[i]->push_id && !strcmp(jobs[i]->push_id, id))
			return true;
	return false;
}

/* One push of a batch: de-duplicate, resolve, sum into cells. Returns a SQLite code. */
static int batch_job(struct sq_store *s, struct batch *b, struct sq_job **jobs, size_t i)
{
	struct sq_writer_stmts *ws = s->ws;
	struct sq_job *j = jobs[i];
	int rc, ret;

	if (j->push_id) {
		if (seen_in_batch(jobs, i, j->push_id)) {
			j->duplicate = true;
			return 0;
		}
		sqlite3_bind_text(ws->push_get, 1, j->push_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(ws->push_get);
		sqlite3_reset(ws->push_get);
		if (rc == SQLITE_ROW) {
			j->duplicate = true;
			return 0;
		}
		if (rc != SQLITE_DONE)
			return rc;
		sqlite3_bind_text(ws->push_put, 1, j->push_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ws->push_put, 2, (int64_t)j->from_ns);
		rc = step_done(ws->push_put);
		if (rc)
			return rc;
	}
	pthread_rwlock_wrlock(&s->dict.lock);
	ret = resolve(s, b, j);
	pthread_rwlock_unlock(&s->dict.lock);
	if (ret)
		return SQLITE_NOMEM;
	for (size_t e = 0; e < j->nentries; e++) {
		const struct pj_entry *pe = &j->entries[e];

		for (int k = 0; k < SQ_NTIERS; k++) {
			uint64_t res = sq_tiers[k].res_ns;
			int64_t t = (int64_t)(res ? j->from_ns - j->from_ns % res : j->from_ns);
			struct cell *c;

			if (k && t >= s->wm[k])
				break; /* compaction will roll it up */
			c = cell_get(b, k, j->series_ids[pe->series], t, j->nvalues);
			if (!c || cell_add(c, j->stack_ids[pe->stack], pe->v))
				return SQLITE_NOMEM;
		}
	}
	return put_rows(s, j);
}

static void batch_undo(struct sq_store *s, struct batch *b)
{
	struct sq_dict *d = &s->dict;

	pthread_rwlock_wrlock(&d->lock);
	while (b->nundo--)
		*b->undo[b->nundo].slot = b->undo[b->nundo].old;
	for (size_t i = 0; i < b->nnser; i++)
		sq_dict_remove_series(d, b->new_series[i]);
	for (size_t i = 0; i < b->nns; i++)
		sq_dict_remove_stack(d, b->new_stacks[i]);
	for (size_t i = 0; i < b->nnf; i++)
		sq_dict_remove_frame(d, b->new_frames[i]);
	pthread_rwlock_unlock(&d->lock);
}

static int put_mark(struct sq_store *s, int k)
{
	char key[8];

	snprintf(key, sizeof(key), "wm%d", k);
	sqlite3_bind_text(s->ws->meta_put, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s->ws->meta_put, 2, s->wm[k]);
	return step_done(s->ws->meta_put);
}

static int roll_rows(struct sq_store *s, struct batch *b, sqlite3_stmt *st, int k)
{
	struct sq_dict *d = &s->dict;
	int64_t res = (int64_t)sq_tiers[k].res_ns;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t sid = sqlite3_column_int64(st, 0), t = sqlite3_column_int64(st, 1);
		const unsigned char *p = sqlite3_column_blob(st, 2);
		struct sq_series *e = sid > 0 && (size_t)sid < d->nseries ? d->series[sid] : NULL;
		struct cell *c;
		uint64_t n;

		if (!e)
			continue; /* cannot be: retention deletes a series with its rows */
		c = cell_get(b, k, e->id, t - t % res, e->nvalues);
		rc = c ? cell_add_blob(c, p, p + sqlite3_column_bytes(st, 2), &n) : SQLITE_NOMEM;
		if (rc)
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Sum tier k-1's rows of [wm[k], to) into tier k's buckets and move the mark to `to`. */
static int roll_up(struct sq_store *s, struct batch *b, int k, int64_t to)
{
	struct sq_dict *d = &s->dict;
	sqlite3_stmt *st = s->ws->chunk_range[k - 1];
	int64_t from = s->wm[k];
	int rc = 0;

	if (sq_tiers[k - 1].time_major) {
		sqlite3_bind_int64(st, 1, 0);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int64(st, 3, to);
		rc = roll_rows(s, b, st, k);
	}
	for (size_t i = 1; i < d->nseries && !rc && !sq_tiers[k - 1].time_major; i++) {
		struct sq_series *e = d->series[i];

		if (!e || !e->nvalues || e->last_h < from / (int64_t)SQ_HOUR_NS ||
		    e->first_h > to / (int64_t)SQ_HOUR_NS)
			continue;
		sqlite3_bind_int64(st, 1, e->id);
		sqlite3_bind_int64(st, 2, from);
		sqlite3_bind_int64(st, 3, to);
		rc = roll_rows(s, b, st, k);
	}
	s->wm[k] = to;
	return rc ?: put_mark(s, k);
}

/* Compaction: roll up the minutes the newest push has left SQ_ROLLUP_LAG_NS behind, and each
 * coarser tier's buckets the finer one has completed, in a transaction of its own (a failure
 * is retried next time; the pushes are safe in tier 0 meanwhile). */
static void compact(struct sq_store *s)
{
	int64_t old_wm[SQ_NTIERS], to[SQ_NTIERS];
	struct batch b = { 0 };
	bool any = false;
	int rc;

	if (!s->wm[1] || s->newest_ns < SQ_ROLLUP_LAG_NS)
		return;
	for (int k = 1; k < SQ_NTIERS; k++) {
		int64_t res = (int64_t)sq_tiers[k].res_ns;

		if (k == 1) {
			to[k] = (int64_t)(s->newest_ns - SQ_ROLLUP_LAG_NS);
			if (to[k] > s->wm[1] + (int64_t)SQ_COMPACT_MAX_NS)
				to[k] = s->wm[1] + (int64_t)SQ_COMPACT_MAX_NS;
		} else {
			to[k] = to[k - 1] > s->wm[k - 1] ? to[k - 1] : s->wm[k - 1];
		}
		to[k] -= to[k] % res;
		any |= to[k] > s->wm[k];
	}
	if (!any)
		return;
	memcpy(old_wm, s->wm, sizeof(old_wm));
	rc = step_done(s->ws->begin);
	for (int k = 1; k < SQ_NTIERS && !rc; k++) {
		if (to[k] <= s->wm[k])
			continue;
		rc = roll_up(s, &b, k, to[k]);
		/* written before the next tier reads them */
		for (size_t i = 0; i < b.ncells && !rc; i++)
			rc = put_cell(s, &b, b.list[i]);
		batch_free(&b);
		memset(&b, 0, sizeof(b));
	}
	if (!rc)
		rc = step_done(s->ws->commit);
	if (rc) {
		step_done(s->ws->rollback);
		memcpy(s->wm, old_wm, sizeof(old_wm));
		pthread_mutex_lock(&s->slock);
		s->st.compactions_failed++;
		pthread_mutex_unlock(&s->slock);
	}
}

static void process_writes(struct sq_store *s, struct sq_job **jobs, size_t n)
{
	struct sq_writer_stmts *ws = s->ws;
	struct batch b = { 0 };
	uint64_t ok = 0, dup = 0;
	const char *what = "starting a transaction";
	int rc;

	int64_t old_wm[SQ_NTIERS];
	uint64_t newest = s->newest_ns, future = realtime_ns() + SQ_FUTURE_NS;

	memcpy(old_wm, s->wm, sizeof(old_wm));
	rc = step_done(ws->begin);
	if (!rc && !s->wm[1]) {
		/* the first pushes of a new file: the rollups start at their hour (anything
		 * older that comes later is a late push) */
		uint64_t first = UINT64_MAX;

		for (size_t i = 0; i < n; i++)
			first = jobs[i]->from_ns < first ? jobs[i]->from_ns : first;
		what = "starting the rollups";
		for (int k = 1; k < SQ_NTIERS && !rc; k++) {
			s->wm[k] = (int64_t)(first - first % SQ_HOUR_NS);
			rc = put_mark(s, k);
		}
	}
	for (size_t i = 0; i < n && !rc; i++) {
		what = "storing a push";
		rc = batch_job(s, &b, jobs, i);
		/* a push from a clock far ahead is stored but does not move the rollups, or
		 * every correct push after it would be a late one */
		if (jobs[i]->from_ns > newest && jobs[i]->from_ns <= future)
			newest = jobs[i]->from_ns;
	}
	if (!rc) {
		what = "storing stacks and series";
		rc = put_dict_rows(s, &b);
	}
	for (size_t i = 0; i < b.ncells && !rc; i++) {
		what = "storing samples";
		rc = put_cell(s, &b, b.list[i]);
	}
	if (!rc) {
		what = "committing";
		rc = step_done(ws->commit);
	}
	if (rc) {
		char err[256];

		sq_fail(s->wdb, rc, what, err, sizeof(err));
		step_done(ws->rollback);
		batch_undo(s, &b);
		memcpy(s->wm, old_wm, sizeof(old_wm));
		for (size_t i = 0; i < n; i++) {
			jobs[i]->duplicate = false;
			jobs[i]->ret = sq_fail(s->wdb, rc, what, NULL, 0);
			memcpy(jobs[i]->err, err, sizeof(err));
		}
	}
	if (!rc)
		s->newest_ns = newest;
	for (size_t i = 0; i < n; i++)
		if (!jobs[i]->ret)
			jobs[i]->duplicate ? dup++ : ok++;
	pthread_mutex_lock(&s->slock);
	s->st.writes_ok += ok;
	s->st.duplicates += dup;
	s->st.writes_failed += rc ? n : 0;
	if (!rc) {
		s->st.sample_rows += b.raw_entries_added;
		for (size_t i = 0; i < n; i++)
			s->st.pushes += !jobs[i]->duplicate && jobs[i]->push_id;
		for (size_t i = 0; i < n; i++)
			s->st.label_conflicts += jobs[i]->duplicate ? 0 : jobs[i]->label_conflicts;
	}
	pthread_mutex_unlock(&s->slock);
	batch_free(&b);
}

/* ---- the thread ---- */

static void auto_retention(struct sq_store *s)
{
	struct sq_job j = { .kind = SQ_JOB_RETENTION };
	uint64_t now = realtime_ns();

	if (now <= s->opts.retention_ns)
		return;
	j.before_ns = now - s->opts.retention_ns;
	sq_retention_run(s, &j); /* a failure is counted in the stats and retried next time */
}

static void *writer_main(void *arg)
{
	struct sq_store *s = arg;
	struct sq_job *batch[SQ_BATCH_MAX];

	pthread_mutex_lock(&s->qlock);
	for (;;) {
		size_t n = 0;

		while (!s->qhead && !s->stopping) {
			if (s->opts.retention_ns) {
				struct timespec ts;
				uint64_t now;

				clock_gettime(CLOCK_MONOTONIC, &ts);
				now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
				if (now >= s->next_retention_ns) {
					s->next_retention_ns = now + SQ_AUTO_RETENTION_NS;
					pthread_mutex_unlock(&s->qlock);
					auto_retention(s);
					pthread_mutex_lock(&s->qlock);
					continue;
				}
				ts.tv_sec = (time_t)(s->next_retention_ns / 1000000000ULL);
				ts.tv_nsec = (long)(s->next_retention_ns % 1000000000ULL);
				pthread_cond_timedwait(&s->qcond, &s->qlock, &ts);
			} else {
				pthread_cond_wait(&s->qcond, &s->qlock);
			}
		}
		if (!s->qhead)
			break; /* stopping, and nothing left to write */
		if (s->qhead->kind == SQ_JOB_RETENTION) {
			batch[n++] = s->qhead;
			s->qhead = s->qhead->next;
		} else {
			while (s->qhead && s->qhead->kind == SQ_JOB_WRITE && n < SQ_BATCH_MAX) {
				batch[n++] = s->qhead;
				s->qhead = s->qhead->next;
			}
		}
		if (!s->qhead)
			s->qtail = NULL;
		s->qlen -= n;
		pthread_mutex_unlock(&s->qlock);
		if (batch[0]->kind == SQ_JOB_RETENTION)
			sq_retention_run(s, batch[0]);
		else
			process_writes(s, batch, n);
		pthread_mutex_lock(&s->qlock);
		for (size_t i = 0; i < n; i++)
			batch[i]->done = true;
		pthread_cond_broadcast(&s->donecond);
		/* after the answers: the pushes are durable, the rollups can wait */
		pthread_mutex_unlock(&s->qlock);
		compact(s);
		pthread_mutex_lock(&s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

int sq_writer_start(struct sq_store *s, char *err, size_t errlen)
{
	int ret = pthread_create(&s->writer, NULL, writer_main, s);

	if (ret)
		return ap_errf(err, errlen, -ret, "sqlite: cannot start the writer thread");
	s->writer_started = true;
	return 0;
}

void sq_writer_stop(struct sq_store *s)
{
	if (!s->writer_started)
		return;
	pthread_mutex_lock(&s->qlock);
	s->stopping = true;
	pthread_cond_broadcast(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
	pthread_join(s->writer, NULL);
	s->writer_started = false;
}

/* Queue a job and wait for the writer to finish it. */
static int run_job(struct sq_store *s, struct sq_job *j, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->qlock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->qlock);
		return ap_errf(err, errlen, -ESHUTDOWN, "sqlite: the store is closing");
	}
	if (s->qlen >= SQ_QUEUE_MAX && j->kind == SQ_JOB_WRITE) {
		pthread_mutex_unlock(&s->qlock);
		pthread_mutex_lock(&s->slock);
		s->st.writes_failed++;
		pthread_mutex_unlock(&s->slock);
		return ap_errf(err, errlen, -EAGAIN,
			       "sqlite: %d writes are waiting for the disk: retry later",
			       SQ_QUEUE_MAX);
	}
	j->next = NULL;
	if (s->qtail)
		s->qtail->next = j;
	else
		s->qhead = j;
	s->qtail = j;
	s->qlen++;
	pthread_cond_signal(&s->qcond);
	while (!j->done)
		pthread_cond_wait(&s->donecond, &s->qlock);
	pthread_mutex_unlock(&s->qlock);
	if (j->ret)
		ap_errf(err, errlen, j->ret, "%s", j->err);
	return j->ret;
}

int sq_write(struct ap_store *st, const struct ap_store_write *w, bool *duplicate, char *err,
	     size_t errlen)
{
	struct sq_store *s = sq_of(st);
	struct sq_job j;
	int ret;

	if (duplicate)
		*duplicate = false;
	ret = sq_job_prepare(&j, w, err, errlen);
	if (ret) {
		pthread_mutex_lock(&s->slock);
		s->st.writes_failed++;
		pthread_mutex_unlock(&s->slock);
		sq_job_release(&j);
		return ret;
	}
	ret = run_job(s, &j, err, errlen);
	if (!ret && duplicate)
		*duplicate = j.duplicate;
	sq_job_release(&j);
	return ret;
}

int sq_retention(struct ap_store *st, uint64_t before_ns, char *err, size_t errlen)
{
	struct sq_job j = { .kind = SQ_JOB_RETENTION, .before_ns = before_ns };

	return run_job(sq_of(st), &j, err, errlen);
}
