// SPDX-License-Identifier: MIT
/* The SQLite backend's other queries: series (totals per step), label names and values,
 * modes, and the lock/syscall tables. Series come from the per-row totals (no blob is read),
 * over the resolutions whose buckets fall inside one step. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "sqlite_query.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static void clear_err(char *err, size_t errlen)
{
	if (err && errlen)
		*err = 0;
}

static int nomem(char *err, size_t errlen)
{
	return ap_errf(err, errlen, -ENOMEM, "sqlite: out of memory");
}

static int begin(struct sq_conn *c, char *err, size_t errlen)
{
	int rc = sqlite3_step(c->begin);

	sqlite3_reset(c->begin);
	return rc == SQLITE_DONE ? 0 : sq_fail(c->db, rc, "starting a read", err, errlen);
}

static void end(struct sq_conn *c)
{
	sqlite3_step(c->commit);
	sqlite3_reset(c->commit);
}

struct series_ctx {
	struct ap_store_series *out;
	uint64_t grid0, step, npoints;
};

static int series_row(void *ctx, const struct picked *pk, sqlite3_stmt *sel, char *err,
		      size_t errlen)
{
	struct series_ctx *sc = ctx;
	uint64_t t = (uint64_t)sqlite3_column_int64(sel, 1);
	struct ap_store_point *pt;

	(void)err;
	(void)errlen;
	if (t < sc->grid0 || (t - sc->grid0) / sc->step >= sc->npoints)
		return 0;
	pt = &sc->out->points[(t - sc->grid0) / sc->step];
	for (uint32_t k = 0; k < pk->nvalues && k < AP_MAX_VALUES; k++)
		if (pk->map[k] >= 0)
			pt->values[pk->map[k]] =
				sat_add(pt->values[pk->map[k]],
					(uint64_t)sqlite3_column_int64(sel, 2 + (int)k));
	return 0;
}

static int series_entry(void *ctx, const struct picked *pk, int64_t t, uint32_t stack,
			const uint64_t *v, uint32_t nv)
{
	struct series_ctx *sc = ctx;
	struct ap_store_point *pt;

	(void)stack;
	if ((uint64_t)t < sc->grid0 || ((uint64_t)t - sc->grid0) / sc->step >= sc->npoints)
		return 0;
	pt = &sc->out->points[((uint64_t)t - sc->grid0) / sc->step];
	for (uint32_t k = 0; k < nv && k < pk->nvalues; k++)
		if (pk->map[k] >= 0)
			pt->values[pk->map[k]] = sat_add(pt->values[pk->map[k]], v[k]);
	return 0;
}

int sq_series(struct ap_store *st, const struct ap_store_query *q, uint64_t step_ns,
	      struct ap_store_series *out, char *err, size_t errlen)
{
	struct sq_store *s = sq_of(st);
	struct sq_segment seg[2 * SQ_NTIERS];
	struct lineup l = { 0 };
	struct picked *pk = NULL;
	struct sq_conn *c = NULL;
	uint64_t grid0, npoints;
	unsigned mask = 1;
	size_t npk = 0, nseg = 0;
	const char *mode;
	int ret;

	memset(out, 0, sizeof(*out));
	clear_err(err, errlen);
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	if (!step_ns) { /* about 100 points, on a step the rollups divide */
		static const uint64_t nice[] = { 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600,
						 7200, 10800, 21600, 43200, 86400 };
		uint64_t want = (q->until_ns - q->from_ns) / 100;

		step_ns = nice[sizeof(nice) / sizeof(nice[0]) - 1] * 1000000000ULL;
		for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]); i++)
			if (nice[i] * 1000000000ULL >= want) {
				step_ns = nice[i] * 1000000000ULL;
				break;
			}
		if (step_ns < want) /* ranges over 100 days: whole days */
			step_ns = (want + step_ns - 1) / step_ns * step_ns;
	}
	if (step_ns < SQ_MIN_STEP_NS)
		step_ns = SQ_MIN_STEP_NS;
	step_ns -= step_ns % 1000000000ULL; /* whole seconds */
	grid0 = q->from_ns - q->from_ns % step_ns;
	npoints = (q->until_ns - grid0 + step_ns - 1) / step_ns;
	if (npoints > SQ_MAX_POINTS)
		return ap_errf(err, errlen, -EINVAL,
			       "series: %" PRIu64 " points of %" PRIu64 " s; at most %d: use a "
			       "larger step",
			       npoints, (uint64_t)(step_ns / 1000000000ULL), SQ_MAX_POINTS);
	for (int k = 1; k < SQ_NTIERS; k++)
		if (step_ns % sq_tiers[k].res_ns == 0)
			mask |= 1u << k;
	out->step_ns = step_ns;
	out->npoints = (size_t)npoints;
	out->points = calloc(npoints, sizeof(*out->points));
	if (!out->points) {
		ret = nomem(err, errlen);
		goto out;
	}
	for (uint64_t i = 0; i < npoints; i++)
		out->points[i].ts_ns = grid0 + i * step_ns;
	ret = sq_pick(s, q, NULL, &pk, &npk, &l);
	if (ret) {
		nomem(err, errlen);
		goto out;
	}
	if (npk) {
		c = sq_conn_get(s, err, errlen);
		if (!c) {
			ret = -EIO;
			goto out;
		}
		ret = begin(c, err, errlen);
		if (!ret) {
			int64_t wm[SQ_NTIERS];

			ret = sq_conn_marks(c, wm, err, errlen);
			nseg = sq_plan(q->from_ns, q->until_ns, mask, wm, seg);
		}
	}
	if (c && !ret) {
		struct series_ctx sc = { out, grid0, step_ns, npoints };

		ret = sq_scan(c, c->totals, c->totals_ids, l.span_h, seg, nseg, pk, npk, series_row,
			      series_entry, &sc, err, errlen);
	}
	if (c) {
		end(c);
		sq_conn_put(s, c);
	}
	if (ret)
		goto out;
	mode = ap_selector_mode(q->sel);
	out->mode = strdup(mode ? mode : l.mode ? l.mode : "");
	out->nvalues = l.n;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.type[i]) + strlen(l.unit[i]) + 2;

		out->value_types[i] = malloc(n);
		if (out->value_types[i])
			snprintf(out->value_types[i], n, "%s/%s", l.type[i], l.unit[i]);
		else
			ret = -ENOMEM;
	}
	if (!out->mode || ret)
		ret = nomem(err, errlen);
out:
	free(pk);
	sq_lineup_free(&l);
	if (ret)
		ap_store_series_free(out);
	return ret;
}

/* ---- strings of the selected series ---- */

struct strset {
	struct ap_htab idx;
	struct node {
		struct ap_hnode node;
		char *s;
	} **v;
	size_t n, cap;
};

static int strset_add(struct strset *set, const char *s)
{
	uint64_t h = ap_hash_bytes(s, strlen(s), 0);
	struct node *nd;

	for (struct ap_hnode *x = ap_htab_first(&set->idx, h); x; x = ap_htab_next(x))
		if (!strcmp(AP_CONTAINER_OF(x, struct node, node)->s, s))
			return 0;
	nd = calloc(1, sizeof(*nd));
	if (!nd || !(nd->s = strdup(s)) ||
	    ap_grow_array((void **)&set->v, &set->cap, set->n + 1, sizeof(*set->v)) ||
	    ap_htab_insert(&set->idx, &nd->node, h)) {
		if (nd)
			free(nd->s);
		free(nd);
		return -ENOMEM;
	}
	set->v[set->n++] = nd;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Move the set into out, sorted; frees the set. */
static int strset_take(struct strset *set, struct ap_store_strings *out, int ret)
{
	out->v = NULL;
	out->n = 0;
	if (!ret && set->n) {
		out->v = malloc(set->n * sizeof(*out->v));
		if (!out->v)
			ret = -ENOMEM;
	}
	for (size_t i = 0; i < set->n; i++) {
		if (!ret)
			out->v[out->n++] = set->v[i]->s;
		else
			free(set->v[i]->s);
		free(set->v[i]);
	}
	free(set->v);
	ap_htab_release(&set->idx);
	if (!ret && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	return ret;
}

enum what { NAMES, VALUES, MODES };

static int collect(struct sq_store *s, const struct ap_store_query *q, enum what what,
		   const char *name, struct ap_store_strings *out, char *err, size_t errlen)
{
	struct sq_dict *d = &s->dict;
	struct strset set = { 0 };
	int ret;

	clear_err(err, errlen);
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&d->lock);
	for (size_t i = 1; i < d->nseries && !ret; i++) {
		struct sq_series *e = d->series[i];

		if (!e || !sq_overlaps(e, q->from_ns, q->until_ns) ||
		    !ap_selector_match(q->sel, e->labels, e->nlabels))
			continue;
		if (what == MODES) {
			ret = strset_add(&set, e->mode);
			continue;
		}
		for (size_t k = 0; k < e->nlabels && !ret; k++)
			if (what == NAMES)
				ret = strset_add(&set, e->labels[k].name);
			else if (!strcmp(e->labels[k].name, name))
				ret = strset_add(&set, e->labels[k].value);
	}
	pthread_rwlock_unlock(&d->lock);
	ret = strset_take(&set, out, ret);
	return ret ? nomem(err, errlen) : 0;
}

int sq_label_names(struct ap_store *st, const struct ap_store_query *q,
		   struct ap_store_strings *out, char *err, size_t errlen)
{
	return collect(sq_of(st), q, NAMES, NULL, out, err, errlen);
}

int sq_label_values(struct ap_store *st, const char *name, const struct ap_store_query *q,
		    struct ap_store_strings *out, char *err, size_t errlen)
{
	out->v = NULL;
	out->n = 0;
	if (!name || !*name)
		return ap_errf(err, errlen, -EINVAL, "label values: no label name given");
	return collect(sq_of(st), q, VALUES, name, out, err, errlen);
}

int sq_modes(struct ap_store *st, const struct ap_store_query *q, struct ap_store_strings *out,
	     char *err, size_t errlen)
{
	return collect(sq_of(st), q, MODES, NULL, out, err, errlen);
}

/* ---- tables ---- */

struct rowset {
	struct ap_htab idx;
	struct rnode {
		struct ap_hnode node;
		struct ap_table_row r;
	} **v;
	size_t n, cap;
};

static struct ap_table_row *rowset_get(struct rowset *set, const char *tbl, const char *key)
{
	uint64_t h = ap_hash_bytes(key, strlen(key), ap_hash_bytes(tbl, strlen(tbl) + 1, 0));
	struct rnode *nd;

	for (struct ap_hnode *x = ap_htab_first(&set->idx, h); x; x = ap_htab_next(x)) {
		nd = AP_CONTAINER_OF(x, struct rnode, node);
		if (!strcmp(nd->r.table, tbl) && !strcmp(nd->r.key, key))
			return &nd->r;
	}
	nd = calloc(1, sizeof(*nd));
	if (!nd)
		return NULL;
	nd->r.table = strdup(tbl);
	nd->r.key = strdup(key);
	if (!nd->r.table || !nd->r.key ||
	    ap_grow_array((void **)&set->v, &set->cap, set->n + 1, sizeof(*set->v)) ||
	    ap_htab_insert(&set->idx, &nd->node, h)) {
		free((char *)nd->r.table);
		free((char *)nd->r.key);
		free(nd);
		return NULL;
	}
	set->v[set->n++] = nd;
	return &nd->r;
}

static int cmp_row(const void *a, const void *b)
{
	const struct ap_table_row *x = a, *y = b;
	int c = strcmp(x->table, y->table);

	return c ? c : strcmp(x->key, y->key);
}

int sq_rows(struct ap_store *st, const struct ap_store_query *q, struct ap_store_rows *out,
	    char *err, size_t errlen)
{
	struct sq_store *s = sq_of(st);
	struct sq_dict *d = &s->dict;
	struct sq_segment seg[2 * SQ_NTIERS];
	struct rowset set = { 0 };
	struct sq_conn *c = NULL;
	uint32_t *ids = NULL;
	size_t nids = 0, cap = 0, nseg;
	int ret, rc;

	out->rows = NULL;
	out->n = 0;
	clear_err(err, errlen);
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&d->lock);
	for (size_t i = 1; i < d->nseries && !ret; i++) {
		struct sq_series *e = d->series[i];

		if (e && sq_overlaps(e, q->from_ns, q->until_ns) &&
		    ap_selector_match(q->sel, e->labels, e->nlabels)) {
			if (ap_grow_array((void **)&ids, &cap, nids + 1, sizeof(*ids)))
				ret = -ENOMEM;
			else
				ids[nids++] = e->id;
		}
	}
	pthread_rwlock_unlock(&d->lock);
	if (ret) {
		free(ids);
		return nomem(err, errlen);
	}
	nseg = sq_plan(q->from_ns, q->until_ns, ~0u, NULL, seg); /* rows: every tier at once */
	if (nids) {
		c = sq_conn_get(s, err, errlen);
		ret = c ? begin(c, err, errlen) : -EIO;
	}
	for (size_t i = 0; i < nids && !ret; i++)
		for (size_t g = 0; g < nseg && !ret; g++) {
			sqlite3_stmt *sel = c->rows[seg[g].tier];

			sqlite3_bind_int64(sel, 1, ids[i]);
			sqlite3_bind_int64(sel, 2, seg[g].lo);
			sqlite3_bind_int64(sel, 3, seg[g].hi);
			while (!ret && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
				const char *tbl = (const char *)sqlite3_column_text(sel, 0);
				const char *key = (const char *)sqlite3_column_text(sel, 1);
				const unsigned char *h = sqlite3_column_blob(sel, 6);
				size_t hl = h ? (size_t)sqlite3_column_bytes(sel, 6) : 0;
				struct ap_table_row *r = rowset_get(&set, tbl ? tbl : "",
								    key ? key : "");

				if (!r) {
					ret = nomem(err, errlen);
					break;
				}
				for (int v = 0; v < AP_STORE_TABLE_VALUES; v++)
					r->v[v] = sat_add(r->v[v],
							  (uint64_t)sqlite3_column_int64(sel, 2 + v));
				for (size_t k = 0; k < AP_HIST_SLOTS && (k + 1) * 8 <= hl; k++) {
					uint64_t x;

					memcpy(&x, h + k * 8, 8);
					r->hist[k] = sat_add(r->hist[k], x);
				}
			}
			sqlite3_reset(sel);
			if (!ret && rc != SQLITE_DONE)
				ret = sq_fail(c->db, rc, "reading table rows", err, errlen);
		}
	if (c) {
		end(c);
		sq_conn_put(s, c);
	}
	free(ids);
	if (!ret && set.n) {
		out->rows = malloc(set.n * sizeof(*out->rows));
		if (!out->rows)
			ret = nomem(err, errlen);
	}
	for (size_t i = 0; i < set.n; i++) {
		if (!ret)
			out->rows[out->n++] = set.v[i]->r;
		else {
			free((char *)set.v[i]->r.table);
			free((char *)set.v[i]->r.key);
		}
		free(set.v[i]);
	}
	free(set.v);
	ap_htab_release(&set.idx);
	if (!ret && out->n > 1)
		qsort(out->rows, out->n, sizeof(*out->rows), cmp_row);
	return ret;
}
