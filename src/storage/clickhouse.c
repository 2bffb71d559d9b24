// SPDX-License-Identifier: MIT
/*
 * The ClickHouse backend: clickhouse://HOST:PORT/DB[?cluster=NAME&user=U&password_file=F].
 * This file parses the spec, creates or migrates the schema (clickhouse_sql.h), keeps the
 * retention runs that every query filters by, and holds the ops table.
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clickhouse_internal.h"
#include "clickhouse_sql.h"
#include "lib/errbuf.h"

uint64_t ch_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t ch_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int ch_exec_fmt(struct ch_store *s, struct ch_buf *out, char *err, size_t errlen, const char *fmt,
		...)
{
	char *q = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&q, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	/* IN lists of many series ids exceed the default 256 KiB */
	ret = ch_http_exec(s->http, q, NULL, 0, CH_QUERY_SETTINGS, out, err, errlen);
	free(q);
	return ret;
}

/* ---- the spec ---- */

static bool ident_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* The password: a private file, read without following a planted link, at most 4 KiB. */
static int read_password(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	struct stat sb;
	ssize_t n;

	if (fd < 0)
		return ap_errf(err, errlen, -errno, "password_file %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size >= (off_t)outlen) {
		close(fd);
		return ap_errf(err, errlen, -EINVAL,
			       "password_file %s: must be a regular file under %zu bytes", path,
			       outlen);
	}
	n = read(fd, out, outlen - 1);
	close(fd);
	if (n < 0)
		return ap_errf(err, errlen, -EIO, "password_file %s: %s", path, strerror(errno));
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = 0;
	return 0;
}

struct spec {
	char host[256], port[8], db[128], cluster[128], user[128], pwfile[512];
};

static int parse_spec(const char *loc, struct spec *sp, char *err, size_t errlen)
{
	const char *p = loc, *q;
	size_t n;
	static const char usage[] =
	    "use clickhouse://HOST:PORT/DB[?cluster=NAME&user=U&password_file=F]";

	memset(sp, 0, sizeof(*sp));
	if (strncmp(p, "//", 2))
		return ap_errf(err, errlen, -EINVAL, "storage clickhouse:%s: %s", loc, usage);
	p += 2;
	if (*p == '[') { /* [v6 address] */
		q = strchr(p, ']');
		if (!q)
			return ap_errf(err, errlen, -EINVAL, "storage: unclosed '[' in %s", loc);
		q++;
	} else {
		q = p + strcspn(p, ":/?");
	}
	n = (size_t)(q - p);
	if (!n || n >= sizeof(sp->host))
		return ap_errf(err, errlen, -EINVAL, "storage clickhouse:%s: no host; %s", loc,
			       usage);
	memcpy(sp->host, p, n);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:",
			    sp->host[i]))
			return ap_errf(err, errlen, -EINVAL, "storage: bad host '%s'", sp->host);
	p = q;
	snprintf(sp->port, sizeof(sp->port), "8123");
	if (*p == ':') {
		p++;
		n = strspn(p, "0123456789");
		if (!n || n > 5 || atoi(p) < 1 || atoi(p) > 65535)
			return ap_errf(err, errlen, -EINVAL, "storage: bad port in %s", loc);
		memcpy(sp->port, p, n);
		sp->port[n] = 0;
		p += n;
	}
	if (*p != '/')
		return ap_errf(err, errlen, -EINVAL, "storage clickhouse:%s: no database; %s", loc,
			       usage);
	p++;
	n = strcspn(p, "?");
	if (n >= sizeof(sp->db))
		return ap_errf(err, errlen, -EINVAL, "storage: database name too long");
	memcpy(sp->db, p, n);
	if (!ident_ok(sp->db, 64))
		return ap_errf(err, errlen, -EINVAL,
			       "storage: database '%s' must be 1-64 characters of [A-Za-z0-9_]",
			       sp->db);
	p += n;
	if (*p == '?')
		p++;
	while (*p) {
		const char *eq = strchr(p, '='), *amp = p + strcspn(p, "&");
		char *dst;
		size_t cap, vn;

		if (!eq || eq > amp)
			return ap_errf(err, errlen, -EINVAL, "storage: option without '=' in %s",
				       loc);
		if ((size_t)(eq - p) == 7 && !strncmp(p, "cluster", 7))
			dst = sp->cluster, cap = sizeof(sp->cluster);
		else if ((size_t)(eq - p) == 4 && !strncmp(p, "user", 4))
			dst = sp->user, cap = sizeof(sp->user);
		else if ((size_t)(eq - p) == 13 && !strncmp(p, "password_file", 13))
			dst = sp->pwfile, cap = sizeof(sp->pwfile);
		else
			return ap_errf(err, errlen, -EINVAL,
				       "storage: unknown option '%.*s' (cluster, user, "
				       "password_file)",
				       (int)(eq - p), p);
		vn = (size_t)(amp - eq - 1);
		if (!vn || vn >= cap)
			return ap_errf(err, errlen, -EINVAL,
				       "storage: option '%.*s' is empty or too long", (int)(eq - p),
				       p);
		memcpy(dst, eq + 1, vn);
		dst[vn] = 0;
		p = *amp ? amp + 1 : amp;
	}
	if (sp->cluster[0] && !ident_ok(sp->cluster, 64))
		return ap_errf(err, errlen, -EINVAL,
			       "storage: cluster '%s' must be characters of [A-Za-z0-9_]",
			       sp->cluster);
	if (sp->user[0] && !ident_ok(sp->user, 64))
		return ap_errf(err, errlen, -EINVAL,
			       "storage: user '%s' must be characters of [A-Za-z0-9_]", sp->user);
	return 0;
}

/* ---- schema ---- */

static int has_table(struct ch_store *s, const char *name, bool *yes, char *err, size_t errlen)
{
	struct ch_buf q = {0}, out = {0};
	struct ch_cur c;
	int ret;

	/* names are [A-Za-z0-9_] (checked): quoted as they are */
	ch_buf_printf(&q, CH_SQL_HAS_TABLE, s->db, name);
	ret = q.oom ? -ENOMEM : ch_http_exec(s->http, q.b, NULL, 0, NULL, &out, err, errlen);
	c = ch_cur_of(&out);
	if (!ret) {
		*yes = ch_get_u64(&c) > 0;
		if (c.bad || c.p != c.end)
			ret =
			    ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (tables)");
	}
	ch_buf_free(&q);
	ch_buf_free(&out);
	return ret;
}

/* A DDL statement that may fail only because its work is done (another aggregator did it). */
static int ddl(struct ch_store *s, const char *stmt, char *err, size_t errlen)
{
	int ret = ch_http_exec(s->http, stmt, NULL, 0, NULL, NULL, err, errlen);
	int code = ret == -EIO ? ch_error_code(err) : -1;

	/* 15 DUPLICATE_COLUMN, 44 ILLEGAL_COLUMN (exists), 57 TABLE_ALREADY_EXISTS */
	if (code == 15 || code == 57)
		return 0;
	return ret;
}

static int create_tables(struct ch_store *s, char *err, size_t errlen)
{
	struct ch_buf q = {0};
	int ret = 0;

	for (size_t i = 0; i < CH_NTABLES && !ret; i++) {
		const struct ch_table_def *t = &ch_tables[i];
		char engine[96], args[512], part[128];

		if (s->cluster[0]) {
			snprintf(engine, sizeof(engine), "Replicated%s", t->engine);
			snprintf(args, sizeof(args),
				 "'/clickhouse/tables/{shard}/%s/%s_local', '{replica}'%s%s", s->db,
				 t->name, t->engine_args[0] ? ", " : "", t->engine_args);
		} else {
			snprintf(engine, sizeof(engine), "%s", t->engine);
			snprintf(args, sizeof(args), "%s", t->engine_args);
		}
		snprintf(part, sizeof(part), "%s%s", t->partition[0] ? " PARTITION BY " : "",
			 t->partition);
		q.n = 0;
		ch_buf_printf(&q, CH_SQL_CREATE_TABLE, s->db, t->name, s->suffix, s->on_cluster,
			      t->columns, engine, args, part, t->order);
		ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
		if (!ret && s->cluster[0]) {
			q.n = 0;
			ch_buf_printf(&q, CH_SQL_CREATE_DIST, s->db, t->name, s->on_cluster, s->db,
				      t->name, s->cluster, s->db, t->name, t->shard_key);
			ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
		}
	}
	if (!ret) {
		q.n = 0;
		ch_buf_printf(&q, CH_SQL_CREATE_ROLL_VIEW, s->db, s->on_cluster, s->db, s->suffix,
			      s->db, s->suffix);
		ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
	}
	ch_buf_free(&q);
	return ret;
}

/* Version v -> v + 1 (clickhouse_sql.h). */
static int migrate(struct ch_store *s, int v, char *err, size_t errlen)
{
	struct ch_buf q = {0};
	int ret = 0;

	if (v == 0) {
		ch_buf_printf(&q, CH_SQL_MIGRATE_0_SK, s->db, s->suffix, s->on_cluster);
		ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
		if (!ret && s->cluster[0]) { /* the Distributed table's columns too */
			q.n = 0;
			ch_buf_printf(&q, CH_SQL_MIGRATE_0_SK, s->db, "", s->on_cluster);
			ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
		}
	}
	/* v == 1: ap_stored and its view were new (version 2); create_tables() made them */
	for (size_t i = 0; v == 2 && i < CH_NLEGACY && !ret; i++) {
		q.n = 0;
		ch_buf_printf(&q, CH_SQL_DROP_VIEW, s->db, ch_legacy_views[i], s->on_cluster);
		ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
	}
	for (int i = 0; v == 2 && i < (s->cluster[0] ? 4 : 2) && !ret; i++) {
		q.n = 0; /* the local tables, then (cluster) the Distributed ones */
		ch_buf_printf(&q, CH_SQL_MIGRATE_2_GK, s->db, i % 2 ? "ap_series" : "ap_samples",
			      i < 2 ? s->suffix : "", s->on_cluster);
		ret = q.oom ? -ENOMEM : ddl(s, q.b, err, errlen);
		/* 60 UNKNOWN_TABLE: a store of version 0 has no ap_series yet (made with gk) */
		if (ret == -EIO && ch_error_code(err) == 60)
			ret = 0;
	}
	ch_buf_free(&q);
	return ret;
}

/*
 * The fast start: true when the store has the current version and every table and view (on
 * every shard), so the DDL (seconds ON CLUSTER) can be skipped. Any error (no database yet, no
 * ap_schema, a shard down) answers false: the full step then creates what is missing or says
 * what failed.
 */
static bool schema_current(struct ch_store *s)
{
	struct ch_buf names = {0}, q = {0}, out = {0}, src = {0};
	char err[256], n[96];
	uint64_t expect = 0, have, shards;
	uint32_t version;
	bool ok = false;

	ch_sql_str(&names, CH_ROLL_VIEW);
	expect++;
	for (size_t i = 0; i < CH_NTABLES; i++) {
		snprintf(n, sizeof(n), "%s%s", ch_tables[i].name, s->suffix);
		ch_buf_put(&names, ",", 1);
		ch_sql_str(&names, n);
		expect++;
		if (s->cluster[0]) { /* the Distributed table too */
			ch_buf_put(&names, ",", 1);
			ch_sql_str(&names, ch_tables[i].name);
			expect++;
		}
	}
	if (s->cluster[0])
		ch_buf_printf(&src, "cluster('%s', system.tables)", s->cluster);
	else
		ch_buf_printf(&src, "system.tables");
	ch_buf_printf(&q, CH_SQL_SCHEMA_CHECK, src.b ? src.b : "", s->db, names.b ? names.b : "",
		      s->cluster, s->db);
	if (!q.oom && !names.oom && !src.oom &&
	    !ch_http_exec(s->http, q.b, NULL, 0, CH_QUERY_SETTINGS, &out, err, sizeof(err))) {
		struct ch_cur c = ch_cur_of(&out);

		version = ch_get_u32(&c);
		have = ch_get_u64(&c);
		shards = ch_get_u64(&c);
		ok = !c.bad && c.p == c.end && version == CH_SCHEMA_VERSION &&
		     have == expect * (s->cluster[0] ? shards : 1) && (!s->cluster[0] || shards);
	}
	ch_buf_free(&names);
	ch_buf_free(&q);
	ch_buf_free(&out);
	ch_buf_free(&src);
	return ok;
}

/* Does the store keep version 2's tables (a migrated store)? Queries then read them too. */
static int find_legacy(struct ch_store *s, char *err, size_t errlen)
{
	struct ch_buf out = {0};
	struct ch_cur c;
	int ret = ch_exec_fmt(s, &out, err, errlen, CH_SQL_LEGACY, s->db, s->db);

	c = ch_cur_of(&out);
	if (!ret) {
		s->legacy_gk = ch_get_u64(&c) < 3;
		s->legacy_roll = ch_get_u64(&c) != 0;
		s->legacy_stored = ch_get_u64(&c) != 0;
		if (c.bad || c.p != c.end)
			ret = ap_errf(err, errlen, -EPROTO,
				      "ClickHouse: malformed answer (version 2 tables)");
	}
	ch_buf_free(&out);
	return ret;
}

static int schema(struct ch_store *s, char *err, size_t errlen)
{
	char name[64];
	bool has_schema = false, has_samples = false;
	int version = CH_SCHEMA_VERSION, ret = 0;
	struct ch_buf out = {0};

	if (schema_current(s)) {
		s->fast_start = true;
		goto ttl;
	}
	ret = ch_exec_fmt(s, NULL, err, errlen, CH_SQL_CREATE_DB, s->db, s->on_cluster);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "ap_schema");
	ret = has_table(s, name, &has_schema, err, errlen);
	snprintf(name, sizeof(name), "ap_samples%s", s->suffix);
	if (!ret)
		ret = has_table(s, name, &has_samples, err, errlen);
	if (ret)
		return ret;
	if (has_schema) {
		struct ch_cur c;

		ret = ch_exec_fmt(s, &out, err, errlen, CH_SQL_SCHEMA_GET, s->db);
		c = ch_cur_of(&out);
		if (!ret) {
			version = (int)ch_get_u32(&c);
			if (c.bad || c.p != c.end)
				ret = ap_errf(err, errlen, -EPROTO,
					      "ClickHouse: malformed answer (schema version)");
		}
		ch_buf_free(&out);
		if (ret)
			return ret;
	} else if (has_samples) {
		version = 0; /* tables from before the version table */
	}
	if (version > CH_SCHEMA_VERSION)
		return ap_errf(
		    err, errlen, -EINVAL,
		    "ClickHouse %s: schema version %d is newer than this aggregator's (%d): "
		    "upgrade the aggregator",
		    s->where, version, CH_SCHEMA_VERSION);
	if (has_samples)
		for (int v = version; v < CH_SCHEMA_VERSION && !ret; v++)
			ret = migrate(s, v, err, errlen);
	if (!ret)
		ret = create_tables(s, err, errlen);
	if (!ret && has_samples && !has_schema) /* version 0: rows without a group key */
		ret = ch_exec_fmt(s, NULL, err, errlen, CH_SQL_SCHEMA_PUT_0, s->db);
	if (!ret && (!has_schema || version != CH_SCHEMA_VERSION))
		ret =
		    ch_exec_fmt(s, NULL, err, errlen, CH_SQL_SCHEMA_PUT, s->db, CH_SCHEMA_VERSION);
ttl:
	/* retention by TTL where the server has it (18.16 has not: the writer drops days) */
	if (!ret && s->opts.retention_ns &&
	    (s->ver_major > CH_TTL_MIN_MAJOR ||
	     (s->ver_major == CH_TTL_MIN_MAJOR && s->ver_minor >= CH_TTL_MIN_MINOR)))
		for (size_t i = 0; i < CH_NTABLES && !ret; i++)
			if (!strncmp(ch_tables[i].name, "ap_samples", 10) ||
			    !strcmp(ch_tables[i].name, "ap_roll") ||
			    !strcmp(ch_tables[i].name, "ap_rows"))
				ret = ch_exec_fmt(
				    s, NULL, err, errlen, CH_SQL_TTL, s->db, ch_tables[i].name,
				    s->suffix,
				    (unsigned long long)(s->opts.retention_ns / 1000000000ULL) +
					3600);
	return ret;
}

/* ---- retention runs and the visibility rule ---- */

static int cmp_run(const void *a, const void *b)
{
	const struct ch_run *x = a, *y = b;

	return x->run < y->run ? -1 : x->run > y->run;
}

static int fetch_runs(struct ch_store *s, char *err, size_t errlen)
{
	struct ch_buf out = {0};
	struct ch_cur c;
	struct ch_run *v = NULL;
	size_t n = 0;
	int ret = ch_exec_fmt(s, &out, err, errlen, CH_SQL_RUNS_GET, s->db);

	if (ret)
		return ret;
	if (out.n / 12 > 1000000 || out.n % 12) {
		ch_buf_free(&out);
		return ap_errf(err, errlen, -EPROTO,
			       "ClickHouse: malformed answer (retention runs)");
	}
	if (out.n && !(v = malloc(out.n / 12 * sizeof(*v)))) {
		ch_buf_free(&out);
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	}
	/* an empty answer has no buffer at all: no cursor over NULL */
	if (out.n) {
		c = ch_cur_of(&out);
		while (ch_cur_more(&c)) {
			v[n].run = ch_get_u64(&c);
			v[n].cutoff = ch_get_u32(&c);
			n++;
		}
	}
	ch_buf_free(&out);
	if (n)
		qsort(v, n, sizeof(*v), cmp_run);
	pthread_mutex_lock(&s->rlock);
	free(s->runs);
	s->runs = v;
	s->nruns = n;
	s->runs_at = ch_mono_ns();
	pthread_mutex_unlock(&s->rlock);
	return 0;
}

/*
 * A row (t, rv) is hidden by every run newer than rv whose cut-off is above t. For each row the
 * cut-off that applies is the largest of the runs after rv: a step function of rv, emitted as
 * multiIf(rv < R1, t >= C1, rv < R2, t >= C2, ..., 1) with one branch per step.
 */
int ch_vis(struct ch_store *s, struct ch_buf *out, uint64_t *newest_run, char *err, size_t errlen)
{
	uint64_t now = ch_mono_ns();
	uint64_t *cut = NULL;
	int ret = 0;

	pthread_mutex_lock(&s->rlock);
	if (!s->runs_at || now - s->runs_at > CH_RUNS_TTL_NS) {
		pthread_mutex_unlock(&s->rlock);
		ret = fetch_runs(s, err, errlen);
		if (ret)
			return ret;
		pthread_mutex_lock(&s->rlock);
	}
	if (newest_run)
		*newest_run = s->nruns ? s->runs[s->nruns - 1].run : 0;
	if (!s->nruns) {
		ch_buf_printf(out, CH_SQL_VIS_ALL);
	} else if (!(cut = malloc(s->nruns * sizeof(*cut)))) {
		ret = -ENOMEM;
	} else {
		/* suffix maxima of the cut-offs */
		for (size_t i = s->nruns; i-- > 0;)
			cut[i] = i + 1 < s->nruns && cut[i + 1] > s->runs[i].cutoff
				     ? cut[i + 1]
				     : s->runs[i].cutoff;
		ch_buf_printf(out, CH_SQL_VIS_BEGIN);
		for (size_t i = 0; i < s->nruns; i++) {
			if (i + 1 < s->nruns && cut[i + 1] == cut[i])
				continue; /* the step ends at the last run of equal cut-off */
			ch_buf_printf(out, CH_SQL_VIS_STEP, (unsigned long long)s->runs[i].run,
				      (unsigned long long)cut[i]);
		}
		ch_buf_printf(out, CH_SQL_VIS_END);
	}
	pthread_mutex_unlock(&s->rlock);
	free(cut);
	if (!ret && out->oom)
		ret = -ENOMEM;
	return ret ? ap_errf(err, errlen, ret, "out of memory") : 0;
}

/* Forget the cached runs (a run was just added). */
void ch_runs_invalidate(struct ch_store *s);
void ch_runs_invalidate(struct ch_store *s)
{
	pthread_mutex_lock(&s->rlock);
	s->runs_at = 0;
	pthread_mutex_unlock(&s->rlock);
}

/* ---- stats, close, open ---- */

static void ch_stats(struct ap_store *st, struct ap_store_stats *out)
{
	struct ch_store *s = ch_of(st);
	struct ch_buf q = {0}, ans = {0};
	struct ap_store_stats v;
	char err[256];

	pthread_mutex_lock(&s->slock);
	v = s->st;
	pthread_mutex_unlock(&s->slock);
	/* sizes from system.parts (rows before merges: dictionary rows counted once per day and
	 * writer; an estimate, not a distinct count) */
	ch_buf_printf(&q, CH_SQL_STATS, s->db);
	if (!q.oom && !ch_http_exec(s->http, q.b, NULL, 0, NULL, &ans, err, sizeof(err))) {
		struct ch_cur c = ch_cur_of(&ans);

		while (ch_cur_more(&c)) {
			size_t n;
			const char *t = ch_get_str(&c, &n);
			uint64_t rows = ch_get_u64(&c), bytes = ch_get_u64(&c);
			char name[64];

			if (c.bad || n >= sizeof(name))
				break;
			memcpy(name, t, n);
			name[n] = 0;
			if (s->suffix[0] && n > 6 && !strcmp(name + n - 6, "_local"))
				name[n - 6] = 0;
			v.bytes += bytes;
			if (!strcmp(name, "ap_series"))
				v.series += rows;
			else if (!strcmp(name, "ap_stacks"))
				v.stacks += rows;
			else if (!strcmp(name, "ap_samples"))
				v.sample_rows += rows;
			else if (!strcmp(name, "ap_pushes"))
				v.pushes += rows;
		}
	}
	ch_buf_free(&q);
	ch_buf_free(&ans);
	*out = v;
}

static void ch_close(struct ap_store *st)
{
	struct ch_store *s = ch_of(st);

	if (!s)
		return;
	ch_writer_stop(s);
	ch_http_free(s->http);
	ch_cache_free(s->cache);
	free(s->runs);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	pthread_cond_destroy(&s->donecond);
	pthread_mutex_destroy(&s->rlock);
	pthread_mutex_destroy(&s->clock_);
	pthread_mutex_destroy(&s->slock);
	pthread_mutex_destroy(&s->seenlock);
	pthread_mutex_destroy(&s->front);
	pthread_mutex_destroy(&s->back);
	free(s);
}

static int ch_open(const char *loc, const struct ap_store_opts *opts, struct ap_store **out,
		   char *err, size_t errlen)
{
	struct spec sp;
	struct ch_store *s;
	struct ch_http_opts ho = {0};
	char url[400], pw[4096] = "";
	struct ch_buf ver = {0};
	int ret;

	*out = NULL;
	ret = parse_spec(loc, &sp, err, errlen);
	if (ret)
		return ret;
	if (sp.pwfile[0]) {
		ret = read_password(sp.pwfile, pw, sizeof(pw), err, errlen);
		if (ret)
			return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	s->base.ops = &ap_clickhouse_store_ops;
	if (opts)
		s->opts = *opts;
	snprintf(s->db, sizeof(s->db), "%s", sp.db);
	snprintf(s->cluster, sizeof(s->cluster), "%s", sp.cluster);
	if (sp.cluster[0]) {
		snprintf(s->on_cluster, sizeof(s->on_cluster), " ON CLUSTER %s", sp.cluster);
		snprintf(s->suffix, sizeof(s->suffix), "_local");
		/* a push is acknowledged once the shards hold it, not a local queue */
		/* and without Replicated insert-block dedup: two pushes may give identical blocks
		 * (a push without id sent twice; equal rollup blocks of different pushes): dedup is
		 * by push id (ap_pushes) */
		s->ins_settings = "&insert_distributed_sync=1&insert_deduplicate=0";
	} else {
		s->ins_settings = "";
	}
	snprintf(s->where, sizeof(s->where), "%s:%s/%s", sp.host, sp.port, sp.db);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	pthread_cond_init(&s->donecond, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	pthread_mutex_init(&s->clock_, NULL);
	pthread_mutex_init(&s->slock, NULL);
	pthread_mutex_init(&s->seenlock, NULL);
	pthread_mutex_init(&s->front, NULL);
	pthread_mutex_init(&s->back, NULL);
	snprintf(url, sizeof(url), "http://%s:%s/", sp.host, sp.port);
	ho.base_url = url;
	ho.user = sp.user[0] ? sp.user : NULL;
	ho.password = sp.user[0] ? pw : NULL;
	ho.timeout_ms = 20000; /* below CH_PENDING_NS: a timed-out write is settled before a retry
				  may recover it */
	ret = ch_http_new(&ho, &s->http, err, errlen);
	memset(pw, 0, sizeof(pw));
	if (ret)
		goto fail;
	ret = ch_exec_fmt(s, &ver, err, errlen, CH_SQL_VERSION);
	if (ret) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		ret = ap_errf(err, errlen, ret, "ClickHouse %s: %s", s->where, why);
		goto fail;
	}
	if (sscanf(ver.b ? ver.b : "", "%d.%d", &s->ver_major, &s->ver_minor) != 2) {
		ret = ap_errf(err, errlen, -EPROTO, "ClickHouse %s: unexpected version '%.40s'",
			      s->where, ver.b ? ver.b : "");
		goto fail;
	}
	ret = schema(s, err, errlen);
	if (!ret)
		ret = find_legacy(s, err, errlen);
	if (ret)
		goto fail;
	ret = ch_writer_start(s, err, errlen);
	if (ret)
		goto fail;
	ch_buf_free(&ver);
	*out = &s->base;
	return 0;
fail:
	ch_buf_free(&ver);
	ch_close(&s->base);
	return ret;
}

const struct ap_store_ops ap_clickhouse_store_ops = {
    .scheme = "clickhouse",
    .open = ch_open,
    .write = ch_write,
    .merge = ch_merge,
    .series = ch_series_q,
    .label_names = ch_label_names,
    .label_values = ch_label_values,
    .modes = ch_modes,
    .rows = ch_rows,
    .retention = ch_retention,
    .stats = ch_stats,
    .close = ch_close,
    /* sq_job_prepare() reads the flat profile as SQLite's writer does; write() returns only
     * once the batch holding the push is written, so the flat buffers outlive the job */
    .takes_flat = true,
};
