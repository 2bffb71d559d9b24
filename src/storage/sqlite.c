// SPDX-License-Identifier: MIT
/*
 * The embedded SQLite backend ("sqlite:PATH"): open and close, the pool of reader connections
 * and the stats. Design in docs/storage.md; the other sqlite_*.c files do the work.
 *
 * Durability: WAL with synchronous=FULL. In WAL mode NORMAL would already survive a SIGKILL of
 * this process (a commit is in the WAL file, i.e. in the kernel, before COMMIT returns), but not
 * a power loss or kernel crash; FULL fsyncs the WAL at every commit, so an acknowledged push
 * survives those too. Its cost is one fsync per transaction, shared by every push of a batch
 * (group commit), so it does not limit the ingest rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/errbuf.h"
#include "sqlite_internal.h"
#include "sqlite_stmts.h"

/* Create the missing folders above path (0700: profiles show what runs where). */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path);
	int ret = 0;

	if (!dir)
		return -ENOMEM;
	for (char *p = dir + 1; *p && !ret; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			ret = ap_errf(err, errlen, -errno, "sqlite: cannot create the folder %s: %s",
				      dir, strerror(errno));
		*p = '/';
	}
	free(dir);
	return ret;
}

static int conn_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(path, out,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
					 SQLITE_OPEN_NOFOLLOW,
				 NULL);

	if (rc) {
		int ret = sq_fail(*out, rc, path, err, errlen);

		sqlite3_close(*out);
		*out = NULL;
		return ret;
	}
	sqlite3_extended_result_codes(*out, 1);
	sqlite3_busy_timeout(*out, 10000);
	return 0;
}

static void conn_free(struct sq_conn *c)
{
	if (!c)
		return;
	for (int k = 0; k < SQ_NTIERS; k++) {
		sqlite3_finalize(c->chunks[k]);
		sqlite3_finalize(c->totals[k]);
		sqlite3_finalize(c->chunks_ids[k]);
		sqlite3_finalize(c->totals_ids[k]);
		sqlite3_finalize(c->rows[k]);
	}
	sqlite3_finalize(c->begin);
	sqlite3_finalize(c->commit);
	sqlite3_finalize(c->marks);
	sqlite3_close(c->db);
	free(c);
}

static struct sq_conn *conn_new(struct sq_store *s, char *err, size_t errlen)
{
	struct sq_conn *c = calloc(1, sizeof(*c));
	char sql[256];
	int rc = 0;

	if (!c) {
		ap_errf(err, errlen, -ENOMEM, "sqlite: out of memory");
		return NULL;
	}
	if (conn_open(s->path, &c->db, err, errlen)) {
		free(c);
		return NULL;
	}
	sqlite3_exec(c->db, "PRAGMA query_only=1; PRAGMA cache_size=-16384;"
			    " PRAGMA mmap_size=2147418112",
		     NULL, NULL, NULL);
	for (int k = 0; k < SQ_NTIERS && !rc; k++) {
		const char *t = sq_tiers[k].name;

		const char *by = sq_tiers[k].time_major ? "?1 = ?1" : "series = ?1";

		snprintf(sql, sizeof(sql),
			 "SELECT series, t, n, data FROM c_%s WHERE %s AND t >= ?2 AND t < ?3", t,
			 by);
		rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->chunks[k],
					NULL);
		/* tier 0 has no per-series totals: its blobs are read (sq_scan) */
		snprintf(sql, sizeof(sql),
			 k ? "SELECT series, t, v0, v1, v2, v3 FROM c_%s WHERE %s AND t >= ?2 AND"
			     " t < ?3"
			   : "SELECT series, t, n, data FROM c_%s WHERE %s AND t >= ?2 AND t < ?3",
			 t, by);
		rc = rc ?: sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					      &c->totals[k], NULL);
		if (!sq_tiers[k].time_major) {
			snprintf(sql, sizeof(sql),
				 "SELECT series, t, n, data FROM c_%s WHERE series >= ?1 AND"
				 " series <= ?4 AND t >= ?2 AND t < ?3",
				 t);
			rc = rc ?: sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
						      &c->chunks_ids[k], NULL);
			snprintf(sql, sizeof(sql),
				 "SELECT series, t, v0, v1, v2, v3 FROM c_%s WHERE series >= ?1 AND"
				 " series <= ?4 AND t >= ?2 AND t < ?3",
				 t);
			rc = rc ?: sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
						      &c->totals_ids[k], NULL);
		}
		snprintf(sql, sizeof(sql),
			 "SELECT tbl, key, v0, v1, v2, v3, hist FROM r_%s WHERE series = ?1 AND"
			 " t >= ?2 AND t < ?3",
			 t);
		rc = rc ?: sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					      &c->rows[k], NULL);
	}
	rc = rc ?: sqlite3_prepare_v2(c->db, "BEGIN", -1, &c->begin, NULL);
	rc = rc ?: sqlite3_prepare_v2(c->db, "COMMIT", -1, &c->commit, NULL);
	rc = rc ?: sqlite3_prepare_v2(c->db, "SELECT k, v FROM meta WHERE k GLOB 'wm[0-9]'", -1,
				      &c->marks, NULL);
	if (rc) {
		sq_fail(c->db, rc, "preparing a reader", err, errlen);
		conn_free(c);
		return NULL;
	}
	return c;
}

struct sq_conn *sq_conn_get(struct sq_store *s, char *err, size_t errlen)
{
	struct sq_conn *c = NULL;

	pthread_mutex_lock(&s->plock);
	while (!s->npool && s->nopen >= SQ_POOL_MAX)
		pthread_cond_wait(&s->pcond, &s->plock);
	if (s->npool)
		c = s->pool[--s->npool];
	else
		s->nopen++;
	pthread_mutex_unlock(&s->plock);
	if (c)
		return c;
	c = conn_new(s, err, errlen);
	if (!c) {
		pthread_mutex_lock(&s->plock);
		s->nopen--;
		pthread_cond_signal(&s->pcond);
		pthread_mutex_unlock(&s->plock);
	}
	return c;
}

int sq_conn_marks(struct sq_conn *c, int64_t *wm, char *err, size_t errlen)
{
	int rc;

	for (int k = 0; k < SQ_NTIERS; k++)
		wm[k] = 0;
	while ((rc = sqlite3_step(c->marks)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(c->marks, 0);

		if (k && k[0] == 'w' && k[1] == 'm' && k[2] >= '1' && k[2] < '0' + SQ_NTIERS)
			wm[k[2] - '0'] = sqlite3_column_int64(c->marks, 1);
	}
	sqlite3_reset(c->marks);
	return rc == SQLITE_DONE ? 0 : sq_fail(c->db, rc, "reading the rollup marks", err, errlen);
}

void sq_conn_put(struct sq_store *s, struct sq_conn *c)
{
	if (!sqlite3_get_autocommit(c->db)) /* a query that failed half-way */
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&s->plock);
	s->pool[s->npool++] = c;
	pthread_cond_signal(&s->pcond);
	pthread_mutex_unlock(&s->plock);
}

static void sq_close(struct ap_store *st)
{
	struct sq_store *s = sq_of(st);

	if (!s)
		return;
	sq_writer_stop(s);
	for (size_t i = 0; i < s->npool; i++)
		conn_free(s->pool[i]);
	sq_writer_stmts_free(s->ws);
	if (s->wdb)
		sqlite3_close(s->wdb);
	sq_dict_free(&s->dict);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	pthread_cond_destroy(&s->donecond);
	pthread_mutex_destroy(&s->plock);
	pthread_cond_destroy(&s->pcond);
	pthread_mutex_destroy(&s->slock);
	free(s->path);
	free(s);
}

static int load_marks(struct sq_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->wdb, "SELECT k, v FROM meta WHERE k GLOB 'wm[0-9]'", -1,
				    &st, NULL);

	if (rc)
		return sq_fail(s->wdb, rc, "reading the rollup marks", err, errlen);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);

		if (k && k[2] >= '1' && k[2] < '0' + SQ_NTIERS)
			s->wm[k[2] - '0'] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	s->newest_ns = s->wm[1] > 0 ? (uint64_t)s->wm[1] : 0;
	return 0;
}

static int load_counters(struct sq_store *s, char *err, size_t errlen)
{
	static const char *const sql[] = { "SELECT count(*) FROM pushes",
					   "SELECT coalesce(sum(n), 0) FROM c_raw" };
	uint64_t *dst[] = { &s->st.pushes, &s->st.sample_rows };

	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(s->wdb, sql[i], -1, &st, NULL);

		if (rc)
			return sq_fail(s->wdb, rc, sql[i], err, errlen);
		if (sqlite3_step(st) == SQLITE_ROW)
			*dst[i] = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return 0;
}

static int sq_open(const char *location, const struct ap_store_opts *opts, struct ap_store **out,
		   char *err, size_t errlen)
{
	struct sq_store *s;
	pthread_condattr_t ca;
	const char *mode;
	sqlite3_stmt *st;
	int ret, fd, rc;

	*out = NULL;
	if (!location || !*location)
		return ap_errf(err, errlen, -EINVAL,
			       "sqlite: no file given: use sqlite:PATH (e.g. "
			       "sqlite:./aperture-data/aperture.db)");
	if (sqlite3_threadsafe() == 0)
		return ap_errf(err, errlen, -ENOTSUP,
			       "sqlite: this SQLite library was built without thread support");
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(location))) {
		free(s);
		return ap_errf(err, errlen, -ENOMEM, "sqlite: out of memory");
	}
	s->base.ops = &ap_sqlite_store_ops;
	if (opts)
		s->opts = *opts;
	pthread_mutex_init(&s->qlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->qcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->donecond, NULL);
	pthread_mutex_init(&s->plock, NULL);
	pthread_cond_init(&s->pcond, NULL);
	pthread_mutex_init(&s->slock, NULL);
	ret = sq_dict_init(&s->dict);
	if (ret) {
		ap_errf(err, errlen, ret, "sqlite: cannot create a lock");
		goto fail;
	}
	ret = make_parents(location, err, errlen);
	if (ret)
		goto fail;
	/* create the file ourselves: 0600, and never through a planted link */
	fd = open(location, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = ap_errf(err, errlen, -errno, "sqlite: cannot open %s: %s", location,
			      strerror(errno));
		goto fail;
	}
	close(fd);
	ret = conn_open(location, &s->wdb, err, errlen);
	if (ret)
		goto fail;
	rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc) {
		ret = sq_fail(s->wdb, rc, location, err, errlen);
		goto fail;
	}
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (!mode || strcmp(mode, "wal")) {
		ret = rc == SQLITE_ROW ? ap_errf(err, errlen, -ENOTSUP,
						 "sqlite: %s cannot use WAL mode (got '%s')",
						 location, mode ? mode : "")
				       : sq_fail(s->wdb, rc, location, err, errlen);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	rc = sqlite3_exec(s->wdb, "PRAGMA synchronous=FULL; PRAGMA cache_size=-32768;"
			  " PRAGMA journal_size_limit=67108864", NULL, NULL,
			  NULL);
	if (rc) {
		ret = sq_fail(s->wdb, rc, location, err, errlen);
		goto fail;
	}
	rc = sq_functions_register(s->wdb);
	if (rc) {
		ret = sq_fail(s->wdb, rc, "registering functions", err, errlen);
		goto fail;
	}
	ret = sq_schema_create(s->wdb, err, errlen) ?:
	      sq_writer_stmts_prepare(s->wdb, &s->ws, err, errlen) ?:
	      sq_dict_load(&s->dict, s->wdb, err, errlen) ?: load_counters(s, err, errlen) ?:
	      load_marks(s, err, errlen);
	if (ret)
		goto fail;
	ret = sq_writer_start(s, err, errlen);
	if (ret)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return ret;
}

static void sq_stats(struct ap_store *st, struct ap_store_stats *out)
{
	struct sq_store *s = sq_of(st);
	char wal[4096];
	struct stat sb;

	pthread_mutex_lock(&s->slock);
	*out = s->st;
	pthread_mutex_unlock(&s->slock);
	pthread_rwlock_rdlock(&s->dict.lock);
	out->series = s->dict.live_series;
	out->stacks = s->dict.live_stacks;
	pthread_rwlock_unlock(&s->dict.lock);
	out->bytes = 0;
	if (!stat(s->path, &sb))
		out->bytes += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (!stat(wal, &sb))
		out->bytes += (uint64_t)sb.st_size;
}

const struct ap_store_ops ap_sqlite_store_ops = {
	.scheme = "sqlite",
	.open = sq_open,
	.write = sq_write,
	.merge = sq_merge,
	.series = sq_series,
	.label_names = sq_label_names,
	.label_values = sq_label_values,
	.modes = sq_modes,
	.rows = sq_rows,
	.retention = sq_retention,
	.stats = sq_stats,
	.close = sq_close,
	.takes_flat = true,
};
