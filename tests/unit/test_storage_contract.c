// SPDX-License-Identifier: MIT
/*
 * The storage contract (storage/storage.h), for any backend: the spec comes from AP_STORE_SPEC
 * (e.g. "clickhouse://..."), else each test gets a new SQLite file in a temporary folder. Every
 * write carries a label `suite` unique to the test and every query selects it, so the tests
 * also hold on a shared store. Real storage, no mocks; expected values are computed by the test
 * from what it wrote.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"
#include "profile.pb-c.h"
#include <sqlite3.h>

#include "storage/storage.h"
#include "test_pprof_util.h"

#define SEC 1000000000ULL
#define MIN (60 * SEC)
#define HOUR (3600 * SEC)
/* a whole hour 30 days ago (set in main): pushes near now move the rollups (docs/storage.md),
 * and retention tests can cut before it */
static uint64_t T0;

struct ctx {
	struct ap_store *s;
	char tag[64];
	char path[512]; /* the SQLite file, "" for other backends */
	char spec[600];
};

static char g_tmp[256];
static int g_seq;

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	const char *env = getenv("AP_STORE_SPEC");
	char spec[600], err[512];

	snprintf(c->tag, sizeof(c->tag), "t%d_%d", (int)getpid(), ++g_seq);
	if (env && *env) {
		snprintf(spec, sizeof(spec), "%s", env);
	} else {
		/* a folder that does not exist yet: the backend creates it */
		snprintf(c->path, sizeof(c->path), "%s/%s/store.db", g_tmp, c->tag);
		snprintf(spec, sizeof(spec), "sqlite:%s", c->path);
	}
	snprintf(c->spec, sizeof(c->spec), "%s", spec);
	if (ap_store_open(spec, NULL, &c->s, err, sizeof(err))) {
		fprintf(stderr, "open %s: %s\n", spec, err);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	ap_store_close(c->s);
	if (c->path[0]) {
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", g_tmp, c->tag);
		if (system(cmd))
			return -1;
	}
	free(c);
	return 0;
}

/* ---- profiles ---- */

struct smp {
	const char *stack; /* root first, ';'-separated */
	uint32_t pid;
	const char *comm;
	uint64_t v0, v1;
	const char *lkey, *lval; /* an optional sample label */
};

/* nvalues 2: samples/count + cpu/nanoseconds; 1: cpu/nanoseconds only (v1). */
static struct ap_profile *mk(const struct smp *s, size_t n, int nvalues)
{
	struct ap_profile *p = ap_profile_new();

	assert_non_null(p);
	if (nvalues == 2)
		assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	ap_profile_set_period(p, "cpu", "nanoseconds", 10101010);
	for (size_t i = 0; i < n; i++) {
		uint32_t ids[64];
		size_t nf = 0;
		char *dup = strdup(s[i].stack), *save = NULL;
		struct ap_sample smp = { 0 };
		struct ap_label lab = { 0 };

		for (char *tok = strtok_r(dup, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
			ids[nf++] = ap_profile_add_named_frame(p, tok, "app", AP_FRAME_USER);
		for (size_t a = 0, b = nf ? nf - 1 : 0; a < b; a++, b--) { /* leaf first */
			uint32_t t = ids[a];

			ids[a] = ids[b];
			ids[b] = t;
		}
		free(dup);
		smp.stack = ap_profile_add_stack(p, ids, nf);
		smp.pid = s[i].pid;
		smp.comm = ap_profile_intern(p, s[i].comm);
		if (nvalues == 2) {
			smp.values[0] = s[i].v0;
			smp.values[1] = s[i].v1;
		} else {
			smp.values[0] = s[i].v1;
		}
		if (s[i].lkey) {
			lab.key = ap_profile_intern(p, s[i].lkey);
			lab.str = ap_profile_intern(p, s[i].lval);
			smp.labels = ap_profile_add_labels(p, &lab, 1);
		}
		assert_int_equal(ap_profile_add_sample(p, &smp), 0);
	}
	return p;
}

static int put_full(struct ctx *c, const char *id, const char *host, const char *mode,
		    uint64_t from, const struct ap_profile *p, const struct ap_table_row *rows,
		    size_t nrows, bool *dup, char *err, size_t errlen)
{
	struct ap_label_kv labels[] = { { "mode", mode }, { "host", host }, { "suite", c->tag } };
	char scoped[AP_STORE_MAX_PUSH_ID + 1];
	struct ap_store_write w = {
		.push_id = id,
		.labels = labels,
		.nlabels = 3,
		.from_ns = from,
		.until_ns = from + 10 * SEC,
		.profile = p,
		.rows = rows,
		.nrows = nrows,
	};

	/* push ids are global to a store: scoped by the test's tag, so that tests sharing one
	 * store (AP_STORE_SPEC) do not see each other's ids as duplicates */
	if (id && *id) {
		snprintf(scoped, sizeof(scoped), "%s_%s", c->tag, id);
		w.push_id = scoped;
	}
	return c->s->ops->write(c->s, &w, dup, err, errlen);
}

static void put(struct ctx *c, const char *id, const char *host, const char *mode, uint64_t from,
		const struct ap_profile *p)
{
	char err[512] = "";
	bool dup = true;
	int ret = put_full(c, id, host, mode, from, p, NULL, 0, &dup, err, sizeof(err));

	if (ret)
		fprintf(stderr, "write: %s\n", err);
	assert_int_equal(ret, 0);
	assert_false(dup);
}

/* The selector of this test plus `extra` matchers. */
static void sel(struct ctx *c, const char *extra, struct ap_selector *s)
{
	char text[1024], err[512];

	snprintf(text, sizeof(text), "{suite=\"%s\"%s%s}", c->tag, extra && *extra ? "," : "",
		 extra ? extra : "");
	if (ap_selector_parse(text, s, err, sizeof(err)))
		fail_msg("selector %s: %s", text, err);
}

static struct ap_profile *merge(struct ctx *c, const char *extra, uint64_t from, uint64_t until)
{
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = from, .until_ns = until };
	struct ap_profile *p = NULL;
	char err[512] = "";

	sel(c, extra, &s);
	if (c->s->ops->merge(c->s, &q, &p, err, sizeof(err)))
		fail_msg("merge: %s", err);
	ap_selector_free(&s);
	assert_non_null(p);
	return p;
}

/* The merged value of the stack written as `stack` (root first) for comm, or 0. */
static uint64_t value_of(const struct ap_profile *p, const char *type, const char *stack,
			 const char *comm)
{
	int vi = ap_profile_value_index(p, type);
	uint64_t sum = 0;

	if (vi < 0) { /* no series selected: no value types either */
		assert_int_equal(ap_profile_nsamples(p), 0);
		return 0;
	}
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		const uint32_t *fr;
		char buf[1024] = "";
		size_t n, len = 0;

		if (comm && strcmp(ap_profile_str(p, s->comm), comm))
			continue;
		fr = ap_profile_stack(p, s->stack, &n);
		for (size_t k = n; k-- > 0;)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
						len ? ";" : "",
						ap_profile_str(p, ap_profile_frame(p, fr[k])->name));
		if (!strcmp(buf, stack))
			sum += s->values[vi];
	}
	return sum;
}

static uint64_t total(const struct ap_profile *p, const char *type)
{
	int vi = ap_profile_value_index(p, type);

	return vi < 0 ? 0 : ap_profile_total(p, (size_t)vi);
}

/* ---- tests ---- */

static const struct smp web[] = {
	{ "main;serve;read", 10, "nginx", 3, 30, NULL, NULL },
	{ "main;serve;write", 10, "nginx", 2, 20, NULL, NULL },
	{ "main;gc", 11, "nginx", 1, 10, NULL, NULL },
};
static const struct smp db[] = {
	{ "main;query;scan", 20, "postgres", 5, 50, "container_id", "c0ffee" },
	{ "main;serve;read", 21, "postgres", 4, 40, NULL, NULL },
};

/* Totals and per-(stack, comm) values are exact sums; pid is dropped, comm kept. */
static void test_write_merge(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *a = mk(web, 3, 2), *b = mk(db, 2, 2), *m;

	put(c, "p1", "web1", "cpu", T0, a);
	put(c, "p2", "web1", "cpu", T0 + 10 * SEC, a);
	put(c, "p3", "db1", "cpu", T0 + 20 * SEC, b);
	m = merge(c, "", T0, T0 + MIN);
	assert_int_equal(total(m, "samples"), 2 * 6 + 9);
	assert_int_equal(total(m, "cpu"), 2 * 60 + 90);
	assert_int_equal(value_of(m, "samples", "main;serve;read", "nginx"), 6);
	assert_int_equal(value_of(m, "samples", "main;serve;read", "postgres"), 4);
	assert_int_equal(value_of(m, "cpu", "main;query;scan", "postgres"), 50);
	for (size_t i = 0; i < ap_profile_nsamples(m); i++) {
		assert_int_equal(ap_profile_sample(m, i)->pid, 0);
		assert_int_equal(ap_profile_sample(m, i)->tid, 0);
	}
	/* (stack, comm) keys: 4 nginx + 2 postgres stacks, one shared by both comms */
	assert_int_equal(ap_profile_nsamples(m), 5);
	assert_string_equal(ap_profile_get_meta(m, "mode"), "cpu");
	assert_string_equal(ap_profile_str(m, ap_profile_period_type(m)->type), "cpu");
	assert_int_equal(ap_profile_period(m), 10101010);
	ap_profile_free(m);
	/* the range is [from, until): the push at T0 + 20 s is outside [T0, T0 + 20 s) */
	m = merge(c, "", T0, T0 + 20 * SEC);
	assert_int_equal(total(m, "samples"), 12);
	ap_profile_free(m);
	m = merge(c, "", T0 + 20 * SEC, T0 + 21 * SEC);
	assert_int_equal(total(m, "samples"), 9);
	ap_profile_free(m);
	/* nothing outside */
	m = merge(c, "", T0 + MIN, T0 + 2 * MIN);
	assert_int_equal(ap_profile_nsamples(m), 0);
	ap_profile_free(m);
	ap_profile_free(a);
	ap_profile_free(b);
}

/* Frames keep name, module, file, line, kind and the inlined flag; the merged profile goes
 * through every writer, and pprof marks its mappings has_functions. */
static void test_frames_and_writers(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *p = ap_profile_new(), *m;
	uint32_t f[3];
	struct ap_sample s = { 0 };
	Perftools__Profiles__Profile *pb;
	struct blob gz, raw;
	char path[64];
	FILE *out;
	const struct ap_frame *fr;
	const uint32_t *st;
	size_t n;

	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	f[0] = add_frame_flags(p, 0x401000, "inl_leaf", "app", "src/a.c", 12, 0, AP_FRAME_USER,
			       AP_FRAME_INLINED);
	f[1] = add_frame(p, 0x401000, "outer", "app", "src/a.c", 40, 0, AP_FRAME_USER);
	f[2] = add_frame(p, 0xffffffff81000000, "do_syscall_64", "[kernel.kallsyms]", "", 0, 0,
			 AP_FRAME_KERNEL);
	s.stack = ap_profile_add_stack(p, (uint32_t[]){ f[2], f[0], f[1] }, 3);
	s.comm = ap_profile_intern(p, "app");
	s.pid = 7;
	s.values[0] = 9;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	put(c, "f1", "h", "cpu", T0, p);
	m = merge(c, "", T0, T0 + HOUR);
	assert_int_equal(ap_profile_nsamples(m), 1);
	st = ap_profile_stack(m, ap_profile_sample(m, 0)->stack, &n);
	assert_int_equal(n, 3);
	fr = ap_profile_frame(m, st[0]);
	assert_string_equal(ap_profile_str(m, fr->name), "do_syscall_64");
	assert_string_equal(ap_profile_str(m, fr->module), "[kernel.kallsyms]");
	assert_int_equal(fr->kind, AP_FRAME_KERNEL);
	fr = ap_profile_frame(m, st[1]);
	assert_string_equal(ap_profile_str(m, fr->name), "inl_leaf");
	assert_string_equal(ap_profile_str(m, fr->file), "src/a.c");
	assert_int_equal(fr->line, 12);
	assert_int_equal(fr->flags & AP_FRAME_INLINED, AP_FRAME_INLINED);
	fr = ap_profile_frame(m, st[2]);
	assert_string_equal(ap_profile_str(m, fr->name), "outer");
	assert_int_equal(fr->line, 40);
	assert_int_equal(fr->flags, 0);
	/* every writer takes it */
	out = fopen("/dev/null", "w");
	assert_int_equal(ap_write_folded(m, out, NULL), 0);
	assert_int_equal(ap_write_svg(m, out, NULL), 0);
	assert_int_equal(ap_write_json(m, out, NULL), 0);
	assert_int_equal(ap_write_text(m, out, NULL), 0);
	fclose(out);
	write_file(m, path);
	gz = slurp(path);
	raw = gz_transform(gz.data, gz.len, false);
	pb = perftools__profiles__profile__unpack(NULL, raw.len, raw.data);
	assert_non_null(pb);
	assert_true(pb->n_mapping > 0);
	for (size_t i = 0; i < pb->n_mapping; i++)
		assert_true(pb->mapping[i]->has_functions);
	assert_int_equal(pb->n_sample, 1);
	assert_int_equal(pb->sample[0]->value[0], 9);
	perftools__profiles__profile__free_unpacked(pb, NULL);
	free(raw.data);
	free(gz.data);
	unlink(path);
	ap_profile_free(m);
	ap_profile_free(p);
}

/* Value types line up by name across series with different sets. */
static void test_value_types(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *two = mk(web, 1, 2), *one = mk(db, 1, 1), *m;

	put(c, "v1", "a", "cpu", T0, two); /* samples=3, cpu=30 */
	put(c, "v2", "b", "cpu", T0, one); /* cpu=50 only */
	m = merge(c, "", T0, T0 + MIN);
	assert_int_equal(ap_profile_nvalues(m), 2);
	assert_int_equal(total(m, "samples"), 3);
	assert_int_equal(total(m, "cpu"), 80);
	assert_int_equal(value_of(m, "cpu", "main;query;scan", NULL), 50);
	assert_int_equal(value_of(m, "samples", "main;query;scan", NULL), 0);
	ap_profile_free(m);
	/* only the one-value series: one value type */
	m = merge(c, "host=\"b\"", T0, T0 + MIN);
	assert_int_equal(ap_profile_nvalues(m), 1);
	assert_int_equal(total(m, "cpu"), 50);
	ap_profile_free(m);
	ap_profile_free(two);
	ap_profile_free(one);
}

static void test_dedup(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *a = mk(web, 3, 2), *m;
	char err[512];
	bool dup = false;

	put(c, "same-id_1", "web1", "cpu", T0, a);
	assert_int_equal(put_full(c, "same-id_1", "web1", "cpu", T0, a, NULL, 0, &dup, err,
				  sizeof(err)),
			 0);
	assert_true(dup);
	/* even with other content and time: the id decides */
	assert_int_equal(put_full(c, "same-id_1", "web2", "cpu", T0 + MIN, a, NULL, 0, &dup, err,
				  sizeof(err)),
			 0);
	assert_true(dup);
	/* no id: no de-duplication (Pyroscope clients) */
	assert_int_equal(put_full(c, NULL, "web1", "cpu", T0, a, NULL, 0, &dup, err, sizeof(err)), 0);
	assert_false(dup);
	assert_int_equal(put_full(c, "", "web1", "cpu", T0, a, NULL, 0, &dup, err, sizeof(err)), 0);
	assert_false(dup);
	m = merge(c, "", T0, T0 + HOUR);
	assert_int_equal(total(m, "samples"), 3 * 6);
	ap_profile_free(m);
	ap_profile_free(a);
}

static uint64_t sel_total(struct ctx *c, const char *extra)
{
	struct ap_profile *m = merge(c, extra, T0, T0 + HOUR);
	uint64_t t = total(m, "samples");

	ap_profile_free(m);
	return t;
}

/* Every operator, on push labels, pid/comm and the samples' own labels, missing ones too. */
static void test_matchers(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *a = mk(web, 3, 2), *b = mk(db, 2, 2);

	put(c, "m1", "web1", "cpu", T0, a);	  /* 6 samples, pids 10 (5) and 11 (1) */
	put(c, "m2", "db1", "cpu", T0 + SEC, b); /* 9: pid 20 (5, container c0ffee), 21 (4) */
	assert_int_equal(sel_total(c, ""), 15);
	assert_int_equal(sel_total(c, "host=\"db1\""), 9);
	assert_int_equal(sel_total(c, "host!=\"db1\""), 6);
	assert_int_equal(sel_total(c, "host=~\"web.*\""), 6);
	assert_int_equal(sel_total(c, "host=~\"web\""), 0); /* anchored */
	assert_int_equal(sel_total(c, "host!~\"web.*\""), 9);
	assert_int_equal(sel_total(c, "comm=\"postgres\""), 9);
	assert_int_equal(sel_total(c, "comm=~\"post.*\",pid!=\"20\""), 4);
	assert_int_equal(sel_total(c, "pid=\"11\""), 1);
	assert_int_equal(sel_total(c, "container_id=\"c0ffee\""), 5);
	assert_int_equal(sel_total(c, "container_id=\"\""), 10); /* missing = "" */
	assert_int_equal(sel_total(c, "container_id!=\"\""), 5);
	assert_int_equal(sel_total(c, "container_id=~\".+\""), 5);
	assert_int_equal(sel_total(c, "container_id!~\".+\""), 10);
	assert_int_equal(sel_total(c, "mode=\"cpu\""), 15);
	assert_int_equal(sel_total(c, "mode=\"lock\""), 0);
	assert_int_equal(sel_total(c, "nosuch=\"x\""), 0);
	ap_profile_free(a);
	ap_profile_free(b);
}

static void strings_are(struct ap_store_strings *s, const char *const *want, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(s->v[i], want[i]);
	ap_store_strings_free(s);
}

static void test_modes_and_labels(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *a = mk(web, 3, 2), *b = mk(db, 2, 2);
	struct ap_store_strings out;
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = T0, .until_ns = T0 + HOUR };
	char err[512];

	put(c, "l1", "web1", "cpu", T0, a);
	put(c, "l2", "db1", "lock", T0, b);
	put(c, "l3", "db2", "syscall", T0, b);
	sel(c, "", &s);
	assert_int_equal(c->s->ops->modes(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "cpu", "lock", "syscall" }, 3);
	assert_int_equal(c->s->ops->label_names(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "comm", "container_id", "host", "mode", "pid", "suite" },
		    6);
	assert_int_equal(c->s->ops->label_values(c->s, "host", &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "db1", "db2", "web1" }, 3);
	assert_int_equal(c->s->ops->label_values(c->s, "comm", &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "nginx", "postgres" }, 2);
	assert_int_equal(c->s->ops->label_values(c->s, "nosuch", &q, &out, err, sizeof(err)), 0);
	strings_are(&out, NULL, 0);
	ap_selector_free(&s);
	sel(c, "host=~\"db.*\"", &s);
	assert_int_equal(c->s->ops->modes(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "lock", "syscall" }, 2);
	assert_int_equal(c->s->ops->label_names(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "comm", "container_id", "host", "mode", "pid", "suite" },
		    6);
	ap_selector_free(&s);
	sel(c, "host=\"web1\"", &s);
	assert_int_equal(c->s->ops->label_names(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, (const char *[]){ "comm", "host", "mode", "pid", "suite" }, 5);
	/* another time range: nothing */
	q.from_ns = T0 + 5 * HOUR;
	q.until_ns = T0 + 6 * HOUR;
	assert_int_equal(c->s->ops->modes(c->s, &q, &out, err, sizeof(err)), 0);
	strings_are(&out, NULL, 0);
	ap_selector_free(&s);
	ap_profile_free(a);
	ap_profile_free(b);
}

static void check_series(struct ctx *c, uint64_t from, uint64_t until, uint64_t step,
			 const uint64_t *times, const uint64_t *vals, size_t n)
{
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = from, .until_ns = until };
	struct ap_store_series out;
	char err[512];
	uint64_t grid0;

	sel(c, "", &s);
	if (c->s->ops->series(c->s, &q, step, &out, err, sizeof(err)))
		fail_msg("series: %s", err);
	assert_int_equal(out.step_ns, step);
	grid0 = from - from % step;
	assert_int_equal(out.npoints, (until - grid0 + step - 1) / step);
	assert_string_equal(out.mode, "cpu");
	assert_int_equal(out.nvalues, 2);
	assert_string_equal(out.value_types[0], "samples/count");
	assert_string_equal(out.value_types[1], "cpu/nanoseconds");
	for (size_t i = 0; i < out.npoints; i++) {
		uint64_t want = 0;

		assert_int_equal(out.points[i].ts_ns, grid0 + i * step);
		for (size_t k = 0; k < n; k++)
			if (times[k] >= from && times[k] < until && times[k] >= grid0 + i * step &&
			    times[k] < grid0 + (i + 1) * step)
				want += vals[k];
		assert_int_equal(out.points[i].values[0], want);
		assert_int_equal(out.points[i].values[1], want * 10);
	}
	ap_store_series_free(&out);
	ap_selector_free(&s);
}

/* Every step of the range, zeros included, at steps that use each resolution. */
static void test_series(void **state)
{
	struct ctx *c = *state;
	static const struct smp one[] = { { "main", 1, "x", 1, 10, NULL, NULL } };
	uint64_t times[40], vals[40];
	size_t n = 0;

	for (int i = 0; i < 40; i++) {
		struct smp s = one[0];
		struct ap_profile *p;
		char id[32];

		if (i % 3 == 1)
			continue; /* gaps: zeros */
		s.v0 = (uint64_t)i + 1;
		s.v1 = s.v0 * 10;
		p = mk(&s, 1, 2);
		times[n] = T0 + (uint64_t)i * 7 * MIN + (uint64_t)i * SEC;
		vals[n] = s.v0;
		snprintf(id, sizeof(id), "s%d", i);
		put(c, id, "h", "cpu", times[n], p);
		n++;
		ap_profile_free(p);
	}
	check_series(c, T0, T0 + 10 * MIN, 10 * SEC, times, vals, n);
	check_series(c, T0 + 5 * SEC, T0 + 3 * HOUR, MIN, times, vals, n);
	check_series(c, T0 - HOUR, T0 + 5 * HOUR, HOUR, times, vals, n);
	check_series(c, T0 + 17 * MIN + 3 * SEC, T0 + 4 * HOUR + 1, 5 * MIN, times, vals, n);
	{ /* step 0: about 100 points on a step the rollups divide (1 h: 60 s) */
		struct ap_selector s;
		struct ap_store_query q = { .sel = &s, .from_ns = T0, .until_ns = T0 + HOUR };
		struct ap_store_series out;
		char err[512];

		sel(c, "", &s);
		assert_int_equal(c->s->ops->series(c->s, &q, 0, &out, err, sizeof(err)), 0);
		assert_int_equal(out.step_ns, MIN);
		assert_int_equal(out.npoints, 60);
		ap_store_series_free(&out);
		ap_selector_free(&s);
	}
}

struct pushrec {
	uint64_t t;
	int stack;
	uint64_t v;
};

static void check_ranges(struct ctx *c, const struct pushrec *rec, const char *const *stacks,
			 unsigned *seedp)
{
	unsigned seed = *seedp;

	for (int r = 0; r < 30; r++) {
		uint64_t a = T0 - 10 * MIN + (uint64_t)(rand_r(&seed) % (6 * 3600)) * SEC;
		uint64_t b = a + 1 + (uint64_t)(rand_r(&seed) % (4 * 3600)) * SEC;
		uint64_t want[4] = { 0 }, want6[4] = { 0 };
		struct ap_profile *m;

		if (r % 5 == 0) /* whole hours and minutes too */
			a -= a % HOUR, b -= b % MIN;
		if (b <= a)
			b = a + MIN;
		for (int i = 0; i < 300; i++)
			if (rec[i].t >= a && rec[i].t < b) {
				want[rec[i].stack] += rec[i].v;
				want6[rec[i].stack] += i % 3 == 1 ? 0 : rec[i].v;
			}
		m = merge(c, "", a, b);
		for (int k = 0; k < 4; k++)
			assert_int_equal(value_of(m, "samples", stacks[k], "w"), want[k]);
		ap_profile_free(m);
		/* a series between the picked ones left out (the coarse tiers may be read by a
		 * range of series ids, filtered in memory) */
		m = merge(c, "pid!=\"6\"", a, b);
		for (int k = 0; k < 4; k++)
			assert_int_equal(value_of(m, "samples", stacks[k], "w"), want6[k]);
		ap_profile_free(m);
	}
}

/* The planner: merges over random ranges (hour, minute and push edges) equal the sums of the
 * pushes inside, per stack. */
static void test_resolutions_exact(void **state)
{
	struct ctx *c = *state;
	static const char *const stacks[] = { "a;b", "a;c", "a;b;d", "e" };
	struct pushrec rec[300];
	unsigned seed = 12345;
	char err[512];
	uint64_t ahead = T0 + 400 * 24 * HOUR; /* a push from a clock a year ahead */
	struct smp far = { "far;away", 9, "w", 7, 7, NULL, NULL }; /* a series of its own */
	struct ap_profile *fp = mk(&far, 1, 2), *fm;

	put(c, "ahead", "h", "cpu", ahead, fp);
	ap_profile_free(fp);

	for (int i = 0; i < 300; i++) {
		/* three series (pids 5, 6, 7), so a merge picks several */
		struct smp s = { stacks[i % 4], 5 + (uint32_t)(i % 3), "w", 0, 0, NULL, NULL };
		struct ap_profile *p;
		char id[32];

		rec[i].t = T0 + (uint64_t)(rand_r(&seed) % (5 * 3600)) * SEC +
			   (uint64_t)(rand_r(&seed) % 1000) * 1000000;
		rec[i].stack = i % 4;
		rec[i].v = (uint64_t)(rand_r(&seed) % 100) + 1;
		s.v0 = rec[i].v;
		s.v1 = rec[i].v;
		p = mk(&s, 1, 2);
		snprintf(id, sizeof(id), "r%d", i);
		put(c, id, "h", "cpu", rec[i].t, p);
		ap_profile_free(p);
	}
	check_ranges(c, rec, stacks, &seed);
	fm = merge(c, "", ahead, ahead + SEC);
	assert_int_equal(value_of(fm, "samples", "far;away", "w"), 7);
	ap_profile_free(fm);
	/* the same after reopening: dictionaries, ids and rollup marks come back from the file */
	ap_store_close(c->s);
	assert_int_equal(ap_store_open(c->spec, NULL, &c->s, err, sizeof(err)), 0);
	check_ranges(c, rec, stacks, &seed);
}

static void test_rows(void **state)
{
	struct ctx *c = *state;
	struct ap_table_row rows[3] = {
		{ .table = "syscall", .key = "read", .pid = 5, .comm = "app", .v = { 10, 1, 1000, 0 } },
		{ .table = "syscall", .key = "write", .pid = 5, .comm = "app", .v = { 4, 0, 400, 1 } },
		{ .table = "lock", .key = "mutex app_lock", .v = { 2, 500 } },
	};
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = T0, .until_ns = T0 + HOUR };
	struct ap_store_rows out;
	char err[512];
	bool dup;

	rows[0].hist[3] = 7;
	rows[0].hist[10] = 3;
	rows[2].hist[20] = 2;
	assert_int_equal(put_full(c, "r1", "h1", "syscall", T0, NULL, rows, 3, &dup, err,
				  sizeof(err)),
			 0);
	rows[0].pid = 6; /* another series, same key: merged */
	assert_int_equal(put_full(c, "r2", "h2", "syscall", T0 + 2 * MIN, NULL, rows, 1, &dup, err,
				  sizeof(err)),
			 0);
	sel(c, "", &s);
	assert_int_equal(c->s->ops->rows(c->s, &q, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 3);
	/* sorted by (table, key) */
	assert_string_equal(out.rows[0].table, "lock");
	assert_int_equal(out.rows[0].v[1], 500);
	assert_int_equal(out.rows[0].hist[20], 2);
	assert_string_equal(out.rows[1].key, "read");
	assert_int_equal(out.rows[1].v[0], 20);
	assert_int_equal(out.rows[1].v[2], 2000);
	assert_int_equal(out.rows[1].hist[3], 14);
	assert_int_equal(out.rows[1].hist[10], 6);
	assert_int_equal(out.rows[1].pid, 0);
	assert_null(out.rows[1].comm);
	assert_string_equal(out.rows[2].key, "write");
	assert_int_equal(out.rows[2].v[3], 1);
	ap_store_rows_free(&out);
	ap_selector_free(&s);
	/* selected by the row's pid label; and a range holding only the second push */
	sel(c, "pid=\"6\"", &s);
	assert_int_equal(c->s->ops->rows(c->s, &q, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.rows[0].v[0], 10);
	ap_store_rows_free(&out);
	ap_selector_free(&s);
	sel(c, "", &s);
	q.from_ns = T0 + MIN;
	assert_int_equal(c->s->ops->rows(c->s, &q, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.rows[0].v[0], 10);
	ap_store_rows_free(&out);
	ap_selector_free(&s);
}

static uint64_t file_bytes(const char *path)
{
	char wal[600];
	struct stat sb;
	uint64_t n = 0;

	if (!stat(path, &sb))
		n += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (!stat(wal, &sb))
		n += (uint64_t)sb.st_size;
	return n;
}

/* Retention deletes old data everywhere, and a store filled and expired over and over does
 * not grow. */
static void test_retention(void **state)
{
	struct ctx *c = *state;
	struct ap_store_stats st;
	struct ap_store_strings out;
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = 0, .until_ns = T0 + 100 * HOUR };
	struct ap_profile *m;
	uint64_t peak = 0, last = 0;
	char err[512];
	int cycles = c->path[0] ? 12 : 2;

	for (int cyc = 0; cyc < cycles; cyc++) {
		uint64_t base = T0 + (uint64_t)cyc * 2 * HOUR;

		for (int i = 0; i < 30; i++) {
			char stack[64], host[16], id[32];
			struct smp sm = { stack, (uint32_t)(100 + i), "w", 1, 1, NULL, NULL };
			struct ap_profile *p;

			/* stacks, series and ids of this cycle only */
			snprintf(stack, sizeof(stack), "main;c%d_f%d;leaf%d", cyc, i, i);
			snprintf(host, sizeof(host), "h%d_%d", cyc, i % 5);
			snprintf(id, sizeof(id), "c%d_%d", cyc, i);
			p = mk(&sm, 1, 2);
			put(c, id, host, "cpu", base + (uint64_t)i * 10 * SEC, p);
			ap_profile_free(p);
		}
		assert_int_equal(c->s->ops->retention(c->s, base, err, sizeof(err)), 0);
		m = merge(c, "", 0, T0 + 100 * HOUR);
		assert_int_equal(total(m, "samples"), 30); /* only this cycle's */
		ap_profile_free(m);
		if (c->path[0]) {
			last = file_bytes(c->path);
			if (cyc == 3)
				peak = last;
			if (cyc > 3)
				assert_true(last <= peak);
		}
	}
	(void)last;
	c->s->ops->stats(c->s, &st);
	assert_int_equal(st.retention_runs, (uint64_t)cycles);
	assert_true(st.retention_deleted_rows > 0);
	if (c->path[0]) {
		assert_int_equal(st.series, 30); /* this cycle's (host, pid) pairs */
		assert_int_equal(st.stacks, 30);
		assert_int_equal(st.pushes, 30);
		assert_int_equal(st.sample_rows, 30);
	}
	/* the old series are gone from label queries, their push ids forgotten */
	sel(c, "", &s);
	assert_int_equal(c->s->ops->label_values(c->s, "host", &q, &out, err, sizeof(err)), 0);
	assert_int_equal(out.n, 5);
	ap_store_strings_free(&out);
	ap_selector_free(&s);
	{
		struct smp sm = { "main;again", 1, "w", 1, 1, NULL, NULL };
		struct ap_profile *p = mk(&sm, 1, 2);

		put(c, "c0_0", "again", "cpu", T0 + 100 * HOUR, p); /* an expired id is new again */
		ap_profile_free(p);
	}
	/* everything goes */
	assert_int_equal(c->s->ops->retention(c->s, T0 + 200 * HOUR, err, sizeof(err)), 0);
	m = merge(c, "", 0, T0 + 300 * HOUR);
	assert_int_equal(ap_profile_nsamples(m), 0);
	ap_profile_free(m);
}

/* --retention: a store opened with retention_ns expires old data by itself. */
static void test_retention_option(void **state)
{
	struct ctx *c = *state;
	struct ap_store_opts opts = { .retention_ns = 2 * HOUR };
	struct ap_store_stats st = { 0 };
	struct smp sm = { "main;x", 1, "w", 1, 1, NULL, NULL };
	struct ap_profile *p = mk(&sm, 1, 2), *m;
	uint64_t now = (uint64_t)time(NULL) * SEC;
	char err[512];

	put(c, "old", "h", "cpu", now - 5 * HOUR, p);
	put(c, "new", "h", "cpu", now - MIN, p);
	ap_store_close(c->s);
	assert_int_equal(ap_store_open(c->spec, &opts, &c->s, err, sizeof(err)), 0);
	for (int i = 0; i < 1000 && !st.retention_runs; i++) {
		usleep(10000);
		c->s->ops->stats(c->s, &st);
	}
	assert_true(st.retention_runs >= 1);
	m = merge(c, "", now - 10 * HOUR, now + HOUR);
	assert_int_equal(total(m, "samples"), 1);
	ap_profile_free(m);
	ap_profile_free(p);
}

struct thr {
	struct ctx *c;
	int idx;
	int ret;
};

#define WRITERS 4
#define PER_WRITER 40

static void *writer_thread(void *arg)
{
	struct thr *t = arg;
	struct smp sm[2] = { { "main;w;x", 1, "t", 1, 2, NULL, NULL },
			     { "main;w;y", 2, "t", 3, 4, NULL, NULL } };
	struct ap_profile *p = mk(sm, 2, 2);

	for (int i = 0; i < PER_WRITER && !t->ret; i++) {
		char id[32], host[16], err[512];
		bool dup;

		snprintf(id, sizeof(id), "w%d_%d", t->idx, i);
		snprintf(host, sizeof(host), "h%d", t->idx);
		t->ret = put_full(t->c, id, host, "cpu", T0 + (uint64_t)i * 10 * SEC, p, NULL, 0,
				  &dup, err, sizeof(err));
		if (!t->ret && dup)
			t->ret = -EEXIST;
	}
	ap_profile_free(p);
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct thr *t = arg;

	for (int i = 0; i < 30 && !t->ret; i++) {
		struct ap_selector s;
		struct ap_store_query q = { .sel = &s, .from_ns = T0, .until_ns = T0 + HOUR };
		struct ap_store_series ser;
		struct ap_profile *p = NULL;
		char err[512], text[128];

		snprintf(text, sizeof(text), "{suite=\"%s\"}", t->c->tag);
		ap_selector_parse(text, &s, err, sizeof(err));
		t->ret = t->c->s->ops->merge(t->c->s, &q, &p, err, sizeof(err));
		/* a snapshot: whole pushes only (4 samples each) */
		if (!t->ret && p && ap_profile_nvalues(p) && ap_profile_total(p, 0) % 4)
			t->ret = -EPROTO;
		ap_profile_free(p);
		if (!t->ret)
			t->ret = t->c->s->ops->series(t->c->s, &q, MIN, &ser, err, sizeof(err));
		if (!t->ret)
			ap_store_series_free(&ser);
		ap_selector_free(&s);
	}
	return NULL;
}

static void test_concurrency(void **state)
{
	struct ctx *c = *state;
	pthread_t th[WRITERS + 3];
	struct thr t[WRITERS + 3];
	struct ap_profile *m;

	for (int i = 0; i < WRITERS + 3; i++) {
		t[i] = (struct thr){ c, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL,
						i < WRITERS ? writer_thread : reader_thread, &t[i]),
				 0);
	}
	for (int i = 0; i < WRITERS + 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ret, 0);
	}
	m = merge(c, "", T0, T0 + HOUR);
	assert_int_equal(total(m, "samples"), WRITERS * PER_WRITER * 4);
	assert_int_equal(total(m, "cpu"), WRITERS * PER_WRITER * 6);
	assert_int_equal(value_of(m, "samples", "main;w;y", "t"), WRITERS * PER_WRITER * 3);
	ap_profile_free(m);
}

static void refused(struct ctx *c, const struct ap_store_write *w, const char *why)
{
	char err[512] = "";
	bool dup;

	assert_int_equal(c->s->ops->write(c->s, w, &dup, err, sizeof(err)), -EINVAL);
	if (!strstr(err, why))
		fail_msg("expected '%s' in '%s'", why, err);
}

static void test_bad_input(void **state)
{
	struct ctx *c = *state;
	struct ap_profile *a = mk(web, 3, 2), *m;
	struct ap_label_kv labels[AP_STORE_MAX_LABELS + 2];
	struct ap_store_write w = { .labels = labels, .from_ns = T0, .until_ns = T0 + SEC,
				    .profile = a };
	char *longv = malloc(AP_STORE_MAX_LABEL_VALUE + 2), err[512], names[40][16];
	struct ap_store *bad;
	struct ap_selector s;
	struct ap_store_query q = { .sel = &s, .from_ns = T0, .until_ns = T0 };
	struct ap_store_series ser;
	struct ap_store_stats st;
	struct ap_store_strings strs;

	memset(longv, 'x', AP_STORE_MAX_LABEL_VALUE + 1);
	longv[AP_STORE_MAX_LABEL_VALUE + 1] = 0;
	labels[0] = (struct ap_label_kv){ "host", "h" };
	labels[1] = (struct ap_label_kv){ "suite", c->tag };
	w.nlabels = 2;
	refused(c, &w, "no mode label");
	labels[2] = (struct ap_label_kv){ "mode", "" };
	w.nlabels = 3;
	refused(c, &w, "mode is empty");
	labels[2].value = "cpu";
	labels[3] = (struct ap_label_kv){ "bad-name", "x" };
	w.nlabels = 4;
	refused(c, &w, "label name 'bad-name'");
	labels[3] = (struct ap_label_kv){ "host", "again" };
	refused(c, &w, "host given twice");
	labels[3] = (struct ap_label_kv){ "big", longv };
	refused(c, &w, "longer than 1024");
	for (int i = 0; i < 30; i++) { /* 33 push labels */
		snprintf(names[i], sizeof(names[i]), "l%d", i);
		labels[3 + i] = (struct ap_label_kv){ names[i], "v" };
	}
	w.nlabels = 33;
	refused(c, &w, "too many push labels");
	w.nlabels = 31; /* + pid + comm = 33 for the samples */
	refused(c, &w, "too many labels");
	w.nlabels = 3;
	w.push_id = "bad id!";
	refused(c, &w, "push id");
	w.push_id = "0123456789012345678901234567890123456789012345678901234567890123456789";
	refused(c, &w, "push id");
	w.push_id = NULL;
	w.until_ns = T0 - 1;
	refused(c, &w, "until");
	w.until_ns = T0 + SEC;
	/* nothing was stored by any of them; the refusals are counted */
	m = merge(c, "", 0, UINT64_MAX);
	assert_int_equal(ap_profile_nsamples(m), 0);
	ap_profile_free(m);
	c->s->ops->stats(c->s, &st);
	assert_int_equal(st.writes_failed, 10);
	assert_int_equal(st.writes_ok, 0);
	/* queries: empty or reversed ranges, too many points, no label name */
	sel(c, "", &s);
	assert_int_equal(c->s->ops->merge(c->s, &q, &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "time range"));
	q.until_ns = T0 + 365 * 24 * HOUR;
	assert_int_equal(c->s->ops->series(c->s, &q, 10 * SEC, &ser, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger step"));
	assert_int_equal(c->s->ops->label_values(c->s, "", &q, &strs, err, sizeof(err)), -EINVAL);
	ap_selector_free(&s);
	/* unknown storage scheme */
	assert_int_equal(ap_store_open("mongodb://x", NULL, &bad, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sqlite:PATH"));
	assert_null(bad);
	assert_int_equal(ap_store_open("sqlite:", NULL, &bad, err, sizeof(err)), -EINVAL);
	free(longv);
	ap_profile_free(a);
}

/* SQLite only: the file is not created through a planted symlink, and is private. */
static void test_sqlite_file(void **state)
{
	struct ctx *c = *state;
	struct ap_store *s2;
	struct stat sb;
	char link[600], err[512], spec[700];

	if (!c->path[0])
		skip();
	assert_int_equal(stat(c->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(link, sizeof(link), "%s.link", c->path);
	assert_int_equal(symlink("/tmp/ap-storage-victim", link), 0);
	snprintf(spec, sizeof(spec), "sqlite:%s", link);
	assert_true(ap_store_open(spec, NULL, &s2, err, sizeof(err)) < 0);
	assert_int_equal(access("/tmp/ap-storage-victim", F_OK), -1);
	unlink(link);
	/* a file that is not a store, and a store of another schema version: refused, said why */
	{
		char junk[600];
		FILE *f;
		sqlite3 *db;

		snprintf(junk, sizeof(junk), "%s.junk", c->path);
		f = fopen(junk, "w");
		for (int i = 0; i < 1000; i++)
			fputs("not a database at all\n", f);
		fclose(f);
		snprintf(spec, sizeof(spec), "sqlite:%s", junk);
		assert_int_equal(ap_store_open(spec, NULL, &s2, err, sizeof(err)), -EIO);
		assert_non_null(strstr(err, "not a database"));
		ap_store_close(c->s);
		c->s = NULL;
		assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "UPDATE meta SET v = 1 WHERE k = 'schema'", NULL,
					      NULL, NULL),
				 SQLITE_OK);
		sqlite3_close(db);
		assert_int_equal(ap_store_open(c->spec, NULL, &s2, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "schema version"));
		assert_null(s2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_and_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matchers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolutions_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_file, setup, teardown),
	};
	int ret;

	T0 = (uint64_t)time(NULL) / 3600 * HOUR - 30 * 24 * HOUR;
	snprintf(g_tmp, sizeof(g_tmp), "%s/ap-storage-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_tmp))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(g_tmp);
	return ret;
}
