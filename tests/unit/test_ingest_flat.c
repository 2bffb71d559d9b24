// SPDX-License-Identifier: MIT
/*
 * The aggregator's fast ingest path: the flat pprof decoder (src/format/pprof_flat.c) against
 * the model reader (pprof_read.c) on real profiles and on hand-made edge cases, and the SQLite
 * store fed the flat form against the same store fed the model: the same merged profile.
 */
#define _GNU_SOURCE /* asprintf */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "format/format.h"
#include "format/pprof_flat.h"
#include "storage/storage.h"

#define CORPUS AP_TEST_DATA_DIR "/../fuzz/corpus/pprof"
/* whole-system pushes of a busy machine: hundreds of processes, thousands of stacks */
#define BENCH AP_TEST_DATA_DIR "/../../bench/data"

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t cap = 0, n = 0, r;

	assert_non_null(f);
	do {
		cap = cap ? cap * 2 : 65536;
		b = realloc(b, cap);
		assert_non_null(b);
		r = fread(b + n, 1, cap - n, f);
		n += r;
	} while (n == cap);
	fclose(f);
	*len = n;
	return b;
}

/* ---- a canonical form both readings are compared in: sorted "key\tv0 v1 v2 v3" lines ---- */

struct lines {
	char **v;
	size_t n, cap;
};

static void lines_add(struct lines *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort by key and sum the values of equal keys (the model merges samples; flat does not). */
static void lines_merge(struct lines *l)
{
	size_t o = 0;

	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	for (size_t i = 0; i < l->n; i++) {
		char *tab = strrchr(l->v[i], '\t');
		unsigned long long v[AP_MAX_VALUES] = { 0 }, w[AP_MAX_VALUES] = { 0 };
		char *ptab;

		sscanf(tab + 1, "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]);
		if (o && (ptab = strrchr(l->v[o - 1], '\t')) &&
		    (size_t)(ptab - l->v[o - 1]) == (size_t)(tab - l->v[i]) &&
		    !memcmp(l->v[o - 1], l->v[i], (size_t)(tab - l->v[i]))) {
			sscanf(ptab + 1, "%llu %llu %llu %llu", &w[0], &w[1], &w[2], &w[3]);
			snprintf(ptab + 1, 100, "%llu %llu %llu %llu", v[0] + w[0], v[1] + w[1],
				 v[2] + w[2], v[3] + w[3]);
			free(l->v[i]);
			continue;
		}
		l->v[o] = realloc(l->v[i], strlen(l->v[i]) + 100); /* room for larger sums */
		o++;
	}
	l->n = o;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

struct sb {
	char *b;
	size_t n;
	FILE *f;
};

static void sb_open(struct sb *s)
{
	s->b = NULL;
	s->n = 0;
	s->f = open_memstream(&s->b, &s->n);
	assert_non_null(s->f);
}

static char *sb_close(struct sb *s)
{
	fclose(s->f);
	return s->b;
}

/* Labels in name order (the two readers keep them in different orders). */
static char *label_str(const char *k, const char *str, int64_t num)
{
	char *o = NULL;

	if (str)
		assert_true(asprintf(&o, " %s=%s", k, str) > 0);
	else
		assert_true(asprintf(&o, " %s=#%lld", k, (long long)num) > 0);
	return o;
}

static void print_labels(FILE *f, char **ls, size_t n)
{
	qsort(ls, n, sizeof(*ls), cmp_str);
	for (size_t k = 0; k < n; k++) {
		fputs(ls[k], f);
		free(ls[k]);
	}
}

static void model_lines(const struct ap_profile *p, struct lines *out, bool with_tid)
{
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		const struct ap_label *lab;
		const uint32_t *st;
		size_t n, nl;
		struct sb b;

		sb_open(&b);
		fprintf(b.f, "pid=%u tid=%u comm=%s", s->pid, with_tid ? s->tid : 0,
			ap_profile_str(p, s->comm));
		lab = ap_profile_labels(p, s->labels, &nl);
		{
			char *ls[AP_MAX_LABELS];

			for (size_t k = 0; k < nl; k++)
				ls[k] = label_str(ap_profile_str(p, lab[k].key),
						  lab[k].str ? ap_profile_str(p, lab[k].str) : NULL,
						  lab[k].num);
			print_labels(b.f, ls, nl);
		}
		st = ap_profile_stack(p, s->stack, &n);
		for (size_t k = 0; k < n; k++) {
			const struct ap_frame *f = ap_profile_frame(p, st[k]);

			fprintf(b.f, "|%s@%s:%s:%u:%u:%u", ap_profile_str(p, f->name),
				ap_profile_str(p, f->module), ap_profile_str(p, f->file), f->line,
				f->kind, f->flags & AP_FRAME_INLINED);
		}
		fprintf(b.f, "\t%llu %llu %llu %llu", (unsigned long long)s->values[0],
			(unsigned long long)s->values[1], (unsigned long long)s->values[2],
			(unsigned long long)s->values[3]);
		lines_add(out, sb_close(&b));
	}
	lines_merge(out);
}

static void flat_lines(const struct ap_flat_profile *p, struct lines *out)
{
	for (size_t i = 0; i < p->nsamples; i++) {
		const struct ap_flat_sample *s = &p->samples[i];
		struct sb b;

		sb_open(&b);
		fprintf(b.f, "pid=%u tid=%u comm=%s", s->pid, s->tid, p->strs[s->comm]);
		{
			char *ls[AP_MAX_LABELS];

			for (uint32_t k = 0; k < s->nlabels; k++) {
				const struct ap_flat_label *l = &p->labels[s->labels + k];

				ls[k] = label_str(p->strs[l->key], l->str ? p->strs[l->str] : NULL,
						  l->num);
			}
			print_labels(b.f, ls, s->nlabels);
		}
		for (uint32_t k = 0; k < s->nlocs; k++) {
			uint32_t li = p->loc_refs[s->locs + k];

			for (uint32_t fi = p->loc_frames[li]; fi < p->loc_frames[li + 1]; fi++) {
				const struct ap_flat_frame *f = &p->frames[fi];

				fprintf(b.f, "|%s@%s:%s:%u:%u:%u", p->strs[f->name],
					p->strs[f->module], p->strs[f->file], f->line, f->kind,
					f->flags);
			}
		}
		fprintf(b.f, "\t%llu %llu %llu %llu", (unsigned long long)s->values[0],
			(unsigned long long)s->values[1], (unsigned long long)s->values[2],
			(unsigned long long)s->values[3]);
		lines_add(out, sb_close(&b));
	}
	lines_merge(out);
}

static void assert_same(struct lines *a, struct lines *b, const char *what)
{
	if (a->n != b->n)
		fail_msg("%s: %zu distinct samples flat, %zu in the model", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			fail_msg("%s: sample %zu differs:\n  flat:  %.300s\n  model: %.300s", what,
				 i, a->v[i], b->v[i]);
}

/* Labels other than pid/tid/comm are compared sorted by name in both lines. */
static void decode_both(struct ap_flat_ctx *c, const void *buf, size_t len, const char *what)
{
	struct ap_profile *m = ap_profile_new();
	const struct ap_flat_profile *f;
	struct lines a = { 0 }, b = { 0 };
	char err[512];

	assert_int_equal(ap_read_pprof(buf, len, m, err, sizeof(err)), 0);
	if (ap_pprof_flat_decode(c, buf, len, 0, &f, err, sizeof(err)))
		fail_msg("%s: %s", what, err);
	assert_int_equal(f->nvalues, ap_profile_nvalues(m));
	for (size_t v = 0; v < f->nvalues; v++) {
		assert_string_equal(f->strs[f->vtype[v]],
				    ap_profile_str(m, ap_profile_value_type(m, v)->type));
		assert_string_equal(f->strs[f->vunit[v]],
				    ap_profile_str(m, ap_profile_value_type(m, v)->unit));
		assert_true(ap_flat_total(f, v) == ap_profile_total(m, v));
	}
	assert_int_equal(f->period, ap_profile_period(m));
	assert_int_equal(f->default_value, ap_profile_default_value(m));
	flat_lines(f, &a);
	model_lines(m, &b, true);
	assert_same(&a, &b, what);
	lines_free(&a);
	lines_free(&b);
	ap_profile_free(m);
}

/* Every real profile of the fuzz corpus (the agent's cpu/lock/syscall, Node.js's heap and wall
 * profiles, gzipped and raw) reads the same both ways, with one context reused for all. */
static void test_real_profiles(void **state)
{
	struct ap_flat_ctx *c = ap_flat_ctx_new();
	DIR *d = opendir(CORPUS);
	struct dirent *e;
	int n = 0;

	(void)state;
	assert_non_null(c);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[1024];
		size_t len;
		void *buf;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS, e->d_name);
		buf = slurp(path, &len);
		decode_both(c, buf, len, e->d_name);
		free(buf);
		n++;
	}
	closedir(d);
	assert_true(n >= 5);
	d = opendir(BENCH);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[1024];
		size_t len;
		void *buf;

		if (!strstr(e->d_name, ".pb.gz"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", BENCH, e->d_name);
		buf = slurp(path, &len);
		decode_both(c, buf, len, e->d_name);
		free(buf);
		n++;
	}
	closedir(d);
	assert_true(n >= 9);
	ap_flat_ctx_free(c);
}

/* ---- hand-made protobuf ---- */

struct pb {
	uint8_t b[4096];
	size_t n;
};

static void pv(struct pb *p, uint64_t v)
{
	do {
		p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void pkey(struct pb *p, uint32_t field, uint32_t wt)
{
	pv(p, (uint64_t)field << 3 | wt);
}

static void pint(struct pb *p, uint32_t field, uint64_t v)
{
	pkey(p, field, 0);
	pv(p, v);
}

static void pmsg(struct pb *p, uint32_t field, const struct pb *m)
{
	pkey(p, field, 2);
	pv(p, m->n);
	memcpy(p->b + p->n, m->b, m->n);
	p->n += m->n;
}

static void pstr(struct pb *p, uint32_t field, const char *s)
{
	struct pb m = { .n = strlen(s) };

	memcpy(m.b, s, m.n);
	pmsg(p, field, &m);
}

/* Knobs of the test profile built by mkprof(). */
struct knobs {
	uint64_t loc_id;	/* 1 */
	uint64_t ref_loc;	/* the sample's location id: 1 */
	uint64_t fn_ref;	/* the line's function id: 1 */
	int64_t value;		/* 5 */
	bool packed;		/* location ids and values packed */
	bool dup_loc;		/* a second location with the same id */
	bool first_not_empty;	/* string 0 is "x" */
	bool bad_wire;		/* the sample's value as fixed32 */
	bool unknown_fields;	/* fields protobuf-c skips */
	bool labels;		/* pid, comm, tid, 9 more labels, one key twice */
	bool mapping_after_lines; /* the location's mapping_id after its lines */
};

static size_t mkprof(const struct knobs *k, uint8_t *out)
{
	static const char *const strs[] = { "", "samples", "count", "leaf", "main", "/usr/bin/app",
					    "pid", "comm", "tid", "worker", "k", "v" };
	struct pb p = { .n = 0 }, m, l, s;

	m.n = 0; /* sample_type {samples, count} */
	pint(&m, 1, 1);
	pint(&m, 2, 2);
	pmsg(&p, 1, &m);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		pstr(&p, 6, i == 0 && k->first_not_empty ? "x" : strs[i]);
	m.n = 0; /* mapping 1: /usr/bin/app */
	pint(&m, 1, 1);
	pint(&m, 2, 0x1000);
	pint(&m, 3, 0x2000);
	pint(&m, 5, 5);
	pmsg(&p, 3, &m);
	for (uint64_t f = 1; f <= 2; f++) { /* functions 1 leaf, 2 main */
		m.n = 0;
		pint(&m, 1, f);
		pint(&m, 2, f + 2);
		pmsg(&p, 5, &m);
	}
	/* location loc_id: main inlined into... two lines: leaf (inlined), main */
	m.n = 0;
	pint(&m, 1, k->loc_id);
	if (!k->mapping_after_lines)
		pint(&m, 2, 1);
	pint(&m, 3, 0x1234);
	l.n = 0;
	pint(&l, 1, k->fn_ref);
	pint(&l, 2, 10);
	if (k->unknown_fields)
		pint(&l, 3, 7); /* column */
	pmsg(&m, 4, &l);
	l.n = 0;
	pint(&l, 1, 2);
	pint(&l, 2, 20);
	pmsg(&m, 4, &l);
	if (k->mapping_after_lines)
		pint(&m, 2, 1);
	pmsg(&p, 4, &m);
	if (k->dup_loc)
		pmsg(&p, 4, &m);
	m.n = 0; /* location 99: no line */
	pint(&m, 1, 99);
	pmsg(&p, 4, &m);
	/* the sample: [ref_loc, 99], value */
	s.n = 0;
	if (k->packed) {
		struct pb ids = { .n = 0 };

		pv(&ids, k->ref_loc);
		pv(&ids, 99);
		pmsg(&s, 1, &ids);
		ids.n = 0;
		pv(&ids, (uint64_t)k->value);
		pmsg(&s, 2, &ids);
	} else {
		pint(&s, 1, k->ref_loc);
		pint(&s, 1, 99);
		if (k->bad_wire) {
			pkey(&s, 2, 5);
			memset(s.b + s.n, 0, 4);
			s.n += 4;
		} else {
			pint(&s, 2, (uint64_t)k->value);
		}
	}
	if (k->labels) {
		struct { uint64_t key, str, num; } ls[] = {
			{ 6, 0, 42 }, { 7, 9, 0 }, { 8, 0, 43 }, { 10, 11, 0 }, { 10, 3, 0 },
			{ 1, 0, 1 }, { 2, 0, 2 }, { 3, 0, 3 }, { 4, 0, 4 }, { 5, 0, 5 },
			{ 11, 0, 6 }, { 9, 0, 7 }, { 3, 0, 8 },
		};

		for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
			l.n = 0;
			pint(&l, 1, ls[i].key);
			if (ls[i].str)
				pint(&l, 2, ls[i].str);
			else
				pint(&l, 3, ls[i].num);
			pmsg(&s, 3, &l);
		}
	}
	if (k->unknown_fields) {
		pkey(&s, 100, 1); /* fixed64 */
		memset(s.b + s.n, 0xff, 8);
		s.n += 8;
		pstr(&s, 101, "unknown");
	}
	pmsg(&p, 2, &s);
	if (k->unknown_fields)
		pint(&p, 200, 1);
	pint(&p, 12, 10000000); /* period */
	memcpy(out, p.b, p.n);
	return p.n;
}

static const struct knobs base_knobs = { .loc_id = 1, .ref_loc = 1, .fn_ref = 1, .value = 5 };

static int flat(struct ap_flat_ctx *c, const struct knobs *k, const struct ap_flat_profile **f,
		char *err)
{
	uint8_t buf[4096];
	size_t n = mkprof(k, buf);

	return ap_pprof_flat_decode(c, buf, n, 0, f, err, 512);
}

/* Valid variants read the same as the model reader reads them. */
static void test_variants(void **state)
{
	struct ap_flat_ctx *c = ap_flat_ctx_new();
	const struct ap_flat_profile *f;
	uint8_t buf[4096];
	char err[512];
	struct knobs k;
	size_t n;

	(void)state;
	k = base_knobs;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "base");
	assert_int_equal(flat(c, &k, &f, err), 0);
	assert_int_equal(f->nsamples, 1);
	/* leaf (inlined into main) at 0x1234, then the "[unknown]" frame of location 99 */
	assert_int_equal(f->samples[0].nlocs, 2);
	assert_string_equal(f->strs[f->frames[0].name], "leaf");
	assert_int_equal(f->frames[0].flags, AP_FRAME_INLINED);
	assert_string_equal(f->strs[f->frames[0].module], "app");
	assert_string_equal(f->strs[f->frames[1].name], "main");
	assert_int_equal(f->frames[1].flags, 0);
	assert_string_equal(f->strs[f->frames[2].name], "[unknown]");
	assert_int_equal(f->samples[0].values[0], 5);
	assert_int_equal(f->period, 10000000);

	k = base_knobs;
	k.packed = true;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "packed");
	k = base_knobs;
	k.unknown_fields = true;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "unknown fields");
	k = base_knobs;
	k.mapping_after_lines = true;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "mapping after lines");
	assert_int_equal(flat(c, &k, &f, err), 0);
	assert_string_equal(f->strs[f->frames[0].module], "app");
	/* ids far apart: the sorted index instead of the direct one */
	k = base_knobs;
	k.loc_id = k.ref_loc = 1ULL << 40;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "sparse ids");

	/* pid, tid, comm; 8 other labels kept, the 9th and a repeated key dropped and counted */
	k = base_knobs;
	k.labels = true;
	n = mkprof(&k, buf);
	decode_both(c, buf, n, "labels");
	assert_int_equal(flat(c, &k, &f, err), 0);
	assert_int_equal(f->samples[0].pid, 42);
	assert_int_equal(f->samples[0].tid, 43);
	assert_string_equal(f->strs[f->samples[0].comm], "worker");
	assert_int_equal(f->samples[0].nlabels, AP_MAX_LABELS);
	assert_int_equal(f->labels_dropped, 2);
	ap_flat_ctx_free(c);
}

static void expect_refusal(struct ap_flat_ctx *c, const struct knobs *k, const char *reason)
{
	const struct ap_flat_profile *f = (void *)1;
	uint8_t buf[4096];
	struct ap_profile *m = ap_profile_new();
	char err[512] = "", merr[512];
	size_t n = mkprof(k, buf);

	assert_int_equal(ap_pprof_flat_decode(c, buf, n, 0, &f, err, sizeof(err)), -EINVAL);
	assert_null(f);
	if (!strstr(err, reason))
		fail_msg("expected \"%s\" in \"%s\"", reason, err);
	/* the model reader refuses it too */
	assert_int_equal(ap_read_pprof(buf, n, m, merr, sizeof(merr)), -EINVAL);
	ap_profile_free(m);
}

static void test_refusals(void **state)
{
	struct ap_flat_ctx *c = ap_flat_ctx_new();
	const struct ap_flat_profile *f;
	uint8_t buf[4096], gz[8192], zeros[65536] = { 0 };
	char err[512];
	struct knobs k;
	uLongf gzn = sizeof(gz);
	z_stream zs = { 0 };
	size_t n;

	(void)state;
	k = base_knobs;
	k.dup_loc = true;
	expect_refusal(c, &k, "duplicate location id 1");
	k = base_knobs;
	k.ref_loc = 7;
	expect_refusal(c, &k, "location id 7 does not exist");
	k = base_knobs;
	k.fn_ref = 9;
	expect_refusal(c, &k, "function id 9 does not exist");
	k = base_knobs;
	k.value = -1;
	expect_refusal(c, &k, "negative value -1");
	k = base_knobs;
	k.first_not_empty = true;
	expect_refusal(c, &k, "string table does not start with");
	k = base_knobs;
	k.bad_wire = true;
	expect_refusal(c, &k, "not a valid profile.proto message");
	k = base_knobs;
	k.loc_id = 0;
	k.ref_loc = 0;
	expect_refusal(c, &k, "has id 0");

	/* every truncation of a valid profile is refused or read, never over-read (ASan) */
	k = base_knobs;
	k.labels = true;
	n = mkprof(&k, buf);
	for (size_t cut = 1; cut < n; cut++)
		if (!ap_pprof_flat_decode(c, buf, cut, 0, &f, err, sizeof(err)))
			assert_true(f->nsamples <= 1);
	assert_int_equal(ap_pprof_flat_decode(c, buf, 0, 0, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty input"));

	/* gzip: read as the raw bytes; a bomb stops at the limit */
	k = base_knobs;
	n = mkprof(&k, buf);
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = buf;
	zs.avail_in = (uInt)n;
	zs.next_out = gz;
	zs.avail_out = (uInt)gzn;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	gzn = zs.total_out;
	deflateEnd(&zs);
	decode_both(c, gz, gzn, "gzipped");
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = zeros;
	zs.avail_in = sizeof(zeros);
	zs.next_out = gz;
	zs.avail_out = sizeof(gz);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	gzn = zs.total_out;
	deflateEnd(&zs);
	assert_int_equal(ap_pprof_flat_decode(c, gz, gzn, 4096, &f, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "gzip trailer says"));
	gz[gzn - 1] = gz[gzn - 2] = gz[gzn - 3] = gz[gzn - 4] = 0; /* a lying trailer */
	assert_int_equal(ap_pprof_flat_decode(c, gz, gzn, 4096, &f, err, sizeof(err)), -EFBIG);
	ap_flat_ctx_free(c);
}

/* ---- the store: flat and model writes of the same pushes give the same data ---- */

static char g_tmp[256];

static struct ap_store *open_store(const char *name)
{
	char spec[512], err[512];
	struct ap_store *s = NULL;

	snprintf(spec, sizeof(spec), "sqlite:%s/%s/store.db", g_tmp, name);
	if (ap_store_open(spec, NULL, &s, err, sizeof(err)))
		fail_msg("open %s: %s", spec, err);
	return s;
}

static void merged_lines(struct ap_store *s, uint64_t from, uint64_t until, struct lines *out)
{
	struct ap_selector sel;
	struct ap_store_query q = { .sel = &sel, .from_ns = from, .until_ns = until };
	struct ap_profile *p = NULL;
	char err[512];

	assert_int_equal(ap_selector_parse("{mode=\"cpu\"}", &sel, err, sizeof(err)), 0);
	if (s->ops->merge(s, &q, &p, err, sizeof(err)))
		fail_msg("merge: %s", err);
	model_lines(p, out, false);
	ap_profile_free(p);
	ap_selector_free(&sel);
}

static void test_store_same(void **state)
{
	struct ap_store *a, *b;
	struct ap_flat_ctx *c = ap_flat_ctx_new();
	struct lines la = { 0 }, lb = { 0 };
	struct ap_store_stats sa, sb;
	uint64_t t0 = (uint64_t)time(NULL) / 3600 * 3600 * 1000000000ULL - 3600000000000ULL;
	const char *files[] = { BENCH "/cpu-0.pb.gz", BENCH "/cpu-1.pb.gz",
				CORPUS "/agent_cpu_pid.pb.gz", CORPUS "/cpu.pb" };
	int i = 0;

	(void)state;
	a = open_store("flat");
	b = open_store("model");
	assert_true(a->ops->takes_flat);
	for (size_t fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
		for (int rep = 0; rep < 2; rep++, i++) {
			char path[1024], err[512], id[32];
			struct ap_label_kv labels[] = { { "mode", "cpu" }, { "host", "h1" } };
			struct ap_store_write w = { .labels = labels, .nlabels = 2 };
			const struct ap_flat_profile *f;
			struct ap_profile *m = ap_profile_new();
			bool dup;
			size_t len;
			void *buf;

			snprintf(path, sizeof(path), "%s", files[fi]);
			buf = slurp(path, &len);
			snprintf(id, sizeof(id), "push-%d", i);
			w.push_id = id;
			w.from_ns = t0 + (uint64_t)i * 10000000000ULL;
			w.until_ns = w.from_ns + 10000000000ULL;
			assert_int_equal(ap_pprof_flat_decode(c, buf, len, 0, &f, err, sizeof(err)), 0);
			w.flat = f;
			if (a->ops->write(a, &w, &dup, err, sizeof(err)))
				fail_msg("flat write: %s", err);
			assert_false(dup);
			assert_int_equal(ap_read_pprof(buf, len, m, err, sizeof(err)), 0);
			w.flat = NULL;
			w.profile = m;
			if (b->ops->write(b, &w, &dup, err, sizeof(err)))
				fail_msg("model write: %s", err);
			ap_profile_free(m);
			free(buf);
		}
	}
	merged_lines(a, t0, t0 + 3600000000000ULL, &la);
	merged_lines(b, t0, t0 + 3600000000000ULL, &lb);
	if (la.n < 1000)
		fail_msg("only %zu merged samples flat, %zu model", la.n, lb.n);
	assert_same(&la, &lb, "merged store");
	a->ops->stats(a, &sa);
	b->ops->stats(b, &sb);
	assert_int_equal(sa.series, sb.series);
	assert_int_equal(sa.stacks, sb.stacks);
	assert_int_equal(sa.sample_rows, sb.sample_rows);
	lines_free(&la);
	lines_free(&lb);
	ap_store_close(a);
	ap_store_close(b);
	ap_flat_ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_profiles),
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_store_same),
	};
	char cmd[300];
	int ret;

	snprintf(g_tmp, sizeof(g_tmp), "/tmp/ap_test_ingest_flat.XXXXXX");
	if (!mkdtemp(g_tmp))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
	if (system(cmd))
		ret = ret ? ret : 1;
	return ret;
}
