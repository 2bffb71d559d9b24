// SPDX-License-Identifier: MIT
/*
 * pprof writer/reader: round trip through a file, an independent decode of the file with
 * protoc (so we know real pprof tooling sees the same samples and totals), and hostile inputs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"
#include "profile.pb-c.h"
#include "test_pprof_util.h"

/* A CPU profile with user frames in two mapped ELF files (with build-ids), an inlined frame
 * (same address as its caller), an unresolved frame, kernel and kernel-module frames,
 * labels of both kinds, stats, meta, and one zero-valued sample that the writer drops. */
static struct ap_profile *build_profile(void)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t app, libc, u_main, u_work, u_inl, u_memcpy, u_unk, k_entry, k_sys, k_ext4;
	struct ap_label web[2], db[1];

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	ap_profile_set_period(p, "cpu", "nanoseconds", PERIOD_NS);
	ap_profile_set_time(p, 1700000000123456789ULL, 5000000000ULL);

	app = add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/app", "abcdef0123456789");
	libc = add_mapping(p, 0x7f0000000000, 0x7f0000200000, 0x28000,
			   "/usr/lib/x86_64-linux-gnu/libc.so.6", "00112233445566778899");
	u_main = add_frame(p, 0x401000, "main", "app", "app.c", 10, app, AP_FRAME_USER);
	u_work = add_frame(p, 0x401100, "work", "app", "app.c", 20, app, AP_FRAME_USER);
	u_inl = add_frame_flags(p, 0x401100, "helper", "app", "helper.h", 5, app, AP_FRAME_USER,
				AP_FRAME_INLINED);
	u_memcpy =
	    add_frame(p, 0x7f0000030000, "memcpy", "libc.so.6", NULL, 0, libc, AP_FRAME_USER);
	u_unk =
	    add_frame(p, 0x7f0000031234, "[unknown]", "libc.so.6", NULL, 0, libc, AP_FRAME_USER);
	k_entry = add_frame(p, 0xffffffff81000100, "entry_SYSCALL_64", "[kernel.kallsyms]", NULL, 0,
			    0, AP_FRAME_KERNEL);
	k_sys = add_frame(p, 0xffffffff81000010, "do_syscall_64", "[kernel.kallsyms]", NULL, 0, 0,
			  AP_FRAME_KERNEL);
	k_ext4 = add_frame(p, 0xffffffffc0001000, "ext4_file_write_iter", "[ext4]", NULL, 0, 0,
			   AP_FRAME_KERNEL);

	memset(web, 0, sizeof(web));
	web[0].key = ap_profile_intern(p, "container");
	web[0].str = ap_profile_intern(p, "web");
	web[1].key = ap_profile_intern(p, "cpu");
	web[1].num = 3;
	web[1].num_unit = ap_profile_intern(p, "core");
	memset(db, 0, sizeof(db));
	db[0].key = ap_profile_intern(p, "container");
	db[0].str = ap_profile_intern(p, "db");

	/* leaf first: kernel frames, then user frames */
	uint32_t s1[] = {k_ext4, k_sys, k_entry, u_memcpy, u_work, u_main};
	uint32_t s2[] = {u_inl, u_work, u_main};
	uint32_t s3[] = {u_unk, u_main};
	uint32_t s4[] = {k_sys, k_entry};

	add_sample(p, s1, 6, 100, 101, "app", 3, web, 2);
	add_sample(p, s2, 3, 100, 102, "worker", 5, NULL, 0);
	add_sample(p, s3, 2, 200, 0, "other", 1, db, 1);
	add_sample(p, s2, 3, 300, 300, "idle", 0, NULL, 0);
	add_sample(p, s4, 2, 0, 0, "swapper/0", 2, NULL, 0);
	add_sample(p, NULL, 0, 400, 401, "", 7, NULL, 0);

	assert_int_equal(ap_profile_set_stat(p, "user_stack_errors", 3), 0);
	assert_int_equal(ap_profile_set_stat(p, "lost_samples", 0), 0);
	assert_int_equal(ap_profile_set_meta(p, "mode", "cpu"), 0);
	assert_int_equal(ap_profile_set_meta(p, "host", "test host=1"), 0);
	return p;
}

#define NONZERO_SAMPLES 5

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	struct ap_profile *p = build_profile(), *q = NULL;
	char path[64], err[256];
	struct blob gz, raw;
	size_t n;

	write_file(p, path);
	gz = slurp(path);
	assert_int_equal(gz.data[0], 0x1f);
	assert_int_equal(gz.data[1], 0x8b);

	assert_int_equal(read_blob(gz.data, gz.len, &q, err, sizeof(err)), 0);
	assert_same_profile(p, q);
	assert_string_equal(ap_profile_get_meta(q, "mode"), "cpu");
	assert_int_equal(ap_profile_get_stat(q, "user_stack_errors"), 3);

	/* the leaf of the first sample is the module frame, kernel-kind, module "[ext4]" */
	for (size_t i = 0; i < ap_profile_nsamples(q); i++) {
		const struct ap_sample *s = ap_profile_sample(q, i);
		const uint32_t *st = ap_profile_stack(q, s->stack, &n);

		if (s->pid == 100 && s->tid == 101) {
			const struct ap_frame *f = ap_profile_frame(q, st[0]);

			assert_int_equal(f->kind, AP_FRAME_KERNEL);
			assert_string_equal(ap_profile_str(q, f->module), "[ext4]");
			assert_int_equal(ap_profile_frame(q, st[3])->kind, AP_FRAME_USER);
		}
	}
	ap_profile_free(q);
	q = NULL;

	/* the reader takes raw (not gzipped) protobuf too */
	raw = gz_transform(gz.data, gz.len, false);
	assert_int_equal(read_blob(raw.data, raw.len, &q, err, sizeof(err)), 0);
	assert_same_profile(p, q);
	ap_profile_free(q);

	/* writing again gives the same bytes: the output is deterministic */
	{
		char path2[64];
		struct blob gz2;

		write_file(p, path2);
		gz2 = slurp(path2);
		assert_int_equal(gz2.len, gz.len);
		assert_memory_equal(gz2.data, gz.data, gz.len);
		free(gz2.data);
		unlink(path2);
	}

	free(raw.data);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

/* Strips protoc's quoting of a string_table entry; the fixture has no escapes but '"'. */
static char *unquote(const char *s)
{
	const char *q = strchr(s, '"');
	char *out = strdup(q ? q + 1 : s), *end;

	assert_non_null(out);
	end = strrchr(out, '"');
	if (end)
		*end = '\0';
	return out;
}

static void test_protoc_decode(void **state)
{
	struct ap_profile *p = build_profile();
	char path[64], line[1024];
	char *strs[256] = {0};
	size_t nstrs = 0, nsamples = 0, vi = 0, ntypes = 0;
	int64_t types[4] = {0}, period = -1, period_type = -1;
	uint64_t sums[2] = {0};
	bool have_stat = false, have_meta = false;
	enum { TOP, SAMPLE, STYPE, PTYPE, OTHER } where = TOP;
	FILE *f;

	write_file(p, path);
	f = protoc_decode(path);
	if (!f) {
		unlink(path);
		ap_profile_free(p);
		skip();
	}
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		long long v;

		line[strcspn(line, "\n")] = '\0';
		if (where == TOP) {
			if (strcmp(line, "sample {") == 0) {
				where = SAMPLE;
				nsamples++;
				vi = 0;
			} else if (strcmp(line, "sample_type {") == 0) {
				where = STYPE;
			} else if (strcmp(line, "period_type {") == 0) {
				where = PTYPE;
			} else if (strncmp(line, "string_table: ", 14) == 0) {
				assert_true(nstrs < 256);
				strs[nstrs++] = unquote(line + 14);
			} else if (sscanf(line, "period: %lld", &v) == 1) {
				period = v;
			} else if (line[strlen(line) - 1] == '{') {
				where = OTHER;
			}
			continue;
		}
		if (strcmp(line, "}") == 0) {
			where = TOP;
		} else if (where == SAMPLE && sscanf(line, "  value: %lld", &v) == 1) {
			assert_true(vi < 2);
			sums[vi++] += (uint64_t)v;
		} else if (where == STYPE && sscanf(line, "  type: %lld", &v) == 1) {
			types[ntypes++] = v;
		} else if (where == PTYPE && sscanf(line, "  type: %lld", &v) == 1) {
			period_type = v;
		}
	}
	assert_int_equal(pclose(f), 0);

	/* protoc prints fields in tag order, so string_table (6) follows sample_type (1):
	 * indexes are resolved only now */
	assert_int_equal(nsamples, NONZERO_SAMPLES);
	assert_int_equal(sums[0], ap_profile_total(p, 0));
	assert_int_equal(sums[1], ap_profile_total(p, 1));
	assert_int_equal(sums[1], ap_profile_total(p, 0) * PERIOD_NS);
	assert_int_equal(ntypes, 2);
	assert_true(types[0] > 0 && (size_t)types[0] < nstrs);
	assert_true(types[1] > 0 && (size_t)types[1] < nstrs);
	assert_string_equal(strs[types[0]], "samples");
	assert_string_equal(strs[types[1]], "cpu");
	assert_int_equal(period, PERIOD_NS);
	assert_true(period_type > 0 && (size_t)period_type < nstrs);
	assert_string_equal(strs[period_type], "cpu");
	assert_string_equal(strs[0], "");
	for (size_t i = 0; i < nstrs; i++) {
		have_stat = have_stat || strcmp(strs[i], "stat user_stack_errors=3") == 0;
		have_meta = have_meta || strcmp(strs[i], "meta mode=cpu") == 0;
	}
	assert_true(have_stat);
	assert_true(have_meta);
	for (size_t i = 0; i < nstrs; i++)
		free(strs[i]);
	unlink(path);
	ap_profile_free(p);
}

/* Mapping filenames come before the string table in protoc's output (field 3 vs 6), so the
 * kernel mapping is checked by decoding with protobuf-c directly. */
static void test_kernel_mapping(void **state)
{
	struct ap_profile *p = build_profile();
	Perftools__Profiles__Profile *m;
	char path[64];
	struct blob gz, raw;
	size_t nk = 0;

	write_file(p, path);
	gz = slurp(path);
	raw = gz_transform(gz.data, gz.len, false);
	m = perftools__profiles__profile__unpack(NULL, raw.len, raw.data);
	assert_non_null(m);
	for (size_t i = 0; i < m->n_mapping; i++) {
		const char *name = m->string_table[m->mapping[i]->filename];

		if (strcmp(name, "[kernel.kallsyms]") == 0)
			nk++;
		if (strcmp(name, "/usr/bin/app") == 0) {
			assert_string_equal(m->string_table[m->mapping[i]->build_id],
					    "abcdef0123456789");
			assert_int_equal(m->mapping[i]->memory_start, 0x400000);
			assert_true(m->mapping[i]->has_functions);
		}
	}
	assert_int_equal(nk, 1);
	/* one Location per machine frame: helper and work (inlined, one address) share one in
	 * the second sample, work alone in the first has its own; 8 frames, 8 Locations */
	assert_int_equal(m->n_location, 8);
	assert_int_equal(m->default_sample_type, m->sample_type[1]->type);
	perftools__profiles__profile__free_unpacked(m, NULL);
	free(raw.data);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

static void test_write_error(void **state)
{
	struct ap_profile *p = build_profile();
	FILE *f = fopen("/dev/null", "r");

	assert_non_null(f);
	assert_int_equal(ap_write_pprof(p, f, NULL), -EIO);
	fclose(f);
	ap_profile_free(p);
}

static void test_empty_profile(void **state)
{
	struct ap_profile *p = ap_profile_new(), *q = NULL;
	char path[64], err[256];
	struct blob gz;

	assert_non_null(p);
	write_file(p, path);
	gz = slurp(path);
	assert_int_equal(read_blob(gz.data, gz.len, &q, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_nsamples(q), 0);
	assert_int_equal(ap_profile_nvalues(q), 0);
	ap_profile_free(q);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

/* ---- hand-built pprof messages ---- */

struct msg {
	Perftools__Profiles__Profile p;
	Perftools__Profiles__ValueType vt, *vtp;
	Perftools__Profiles__Function fn[2], *fnp[2];
	Perftools__Profiles__Line ln[2], *lnp[2];
	Perftools__Profiles__Location loc[2], *locp[2];
	Perftools__Profiles__Mapping map, *mapp;
	Perftools__Profiles__Sample s, *sp;
	Perftools__Profiles__Label lab, *labp;
	uint64_t locids[2];
	int64_t vals[1];
	char *strs[8];
};

/* One sample whose location 1 has two Lines (inner, then outer: inlined) and location 2 one. */
static void msg_init(struct msg *m)
{
	static char *strs[] = {"", "samples", "count", "inner", "outer", "main", "/bin/x", "pid"};
	Perftools__Profiles__Profile pi = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vi = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Perftools__Profiles__Function fi = PERFTOOLS__PROFILES__FUNCTION__INIT;
	Perftools__Profiles__Line li = PERFTOOLS__PROFILES__LINE__INIT;
	Perftools__Profiles__Location lo = PERFTOOLS__PROFILES__LOCATION__INIT;
	Perftools__Profiles__Mapping mi = PERFTOOLS__PROFILES__MAPPING__INIT;
	Perftools__Profiles__Sample si = PERFTOOLS__PROFILES__SAMPLE__INIT;
	Perftools__Profiles__Label lai = PERFTOOLS__PROFILES__LABEL__INIT;

	memset(m, 0, sizeof(*m));
	memcpy(m->strs, strs, sizeof(strs));
	m->p = pi;
	m->vt = vi;
	m->vt.type = 1;
	m->vt.unit = 2;
	m->vtp = &m->vt;
	m->p.n_sample_type = 1;
	m->p.sample_type = &m->vtp;
	for (int i = 0; i < 2; i++) {
		m->fn[i] = fi;
		m->fn[i].id = 10 + i;
		m->fn[i].name = 3 + i;
		m->fnp[i] = &m->fn[i];
		m->ln[i] = li;
		m->ln[i].function_id = 10 + i;
		m->ln[i].line = 100 + i;
		m->lnp[i] = &m->ln[i];
		m->loc[i] = lo;
		m->loc[i].id = 1 + i;
		m->loc[i].mapping_id = 5;
		m->loc[i].address = 0x1000 + i;
		m->locp[i] = &m->loc[i];
	}
	m->loc[0].n_line = 2;
	m->loc[0].line = m->lnp;
	/* location 2: no Line, an unsymbolized address */
	m->map = mi;
	m->map.id = 5;
	m->map.memory_start = 0x1000;
	m->map.memory_limit = 0x2000;
	m->map.filename = 6;
	m->mapp = &m->map;
	m->lab = lai;
	m->lab.key = 7;
	m->lab.num = 42;
	m->labp = &m->lab;
	m->locids[0] = 1;
	m->locids[1] = 2;
	m->vals[0] = 9;
	m->s = si;
	m->s.n_location_id = 2;
	m->s.location_id = m->locids;
	m->s.n_value = 1;
	m->s.value = m->vals;
	m->s.n_label = 1;
	m->s.label = &m->labp;
	m->sp = &m->s;
	m->p.n_sample = 1;
	m->p.sample = &m->sp;
	m->p.n_mapping = 1;
	m->p.mapping = &m->mapp;
	m->p.n_location = 2;
	m->p.location = m->locp;
	m->p.n_function = 2;
	m->p.function = m->fnp;
	m->p.n_string_table = 8;
	m->p.string_table = m->strs;
}

static struct blob msg_pack(const struct msg *m)
{
	struct blob b;

	b.len = perftools__profiles__profile__get_packed_size(&m->p);
	b.data = malloc(b.len + 1);
	assert_non_null(b.data);
	assert_int_equal(perftools__profiles__profile__pack(&m->p, b.data), b.len);
	return b;
}

static void test_inline_lines(void **state)
{
	struct ap_profile *q = NULL;
	struct msg m;
	struct blob raw, gz;
	char err[256];
	const struct ap_sample *s;
	const uint32_t *st;
	size_t n;

	msg_init(&m);
	raw = msg_pack(&m);
	gz = gz_transform(raw.data, raw.len, true);
	assert_int_equal(read_blob(gz.data, gz.len, &q, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_nsamples(q), 1);
	s = ap_profile_sample(q, 0);
	assert_int_equal(s->pid, 42);
	assert_int_equal(s->values[0], 9);
	st = ap_profile_stack(q, s->stack, &n);
	/* location 1 has two Lines: two frames, innermost first; location 2 has none */
	assert_int_equal(n, 3);
	assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[0])->name), "inner");
	assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[1])->name), "outer");
	assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[2])->name), "[unknown]");
	assert_int_equal(ap_profile_frame(q, st[0])->line, 100);
	assert_int_equal(ap_profile_frame(q, st[0])->addr, 0x1000);
	assert_int_equal(ap_profile_frame(q, st[1])->addr, 0x1000);
	assert_int_equal(ap_profile_frame(q, st[2])->addr, 0x1001);
	assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[0])->module), "x");
	assert_int_equal(ap_profile_frame(q, st[0])->kind, AP_FRAME_USER);
	/* all Lines but the last are inlined into the next; a Line-less location is not */
	assert_int_equal(ap_profile_frame(q, st[0])->flags, AP_FRAME_INLINED);
	assert_int_equal(ap_profile_frame(q, st[1])->flags, 0);
	assert_int_equal(ap_profile_frame(q, st[2])->flags, 0);
	ap_profile_free(q);
	free(gz.data);
	free(raw.data);
}

/* Each case breaks one rule of a valid message; the reader must say why. */
static void test_invalid_messages(void **state)
{
	static const struct {
		const char *want; /* substring of the error message */
	} cases[] = {
	    {"location id 7"},	{"string index"}, {"values"},	    {"duplicate location"},
	    {"function id 99"}, {"string table"}, {"mapping id 6"}, {"negative value"},
	    {"sample types"},	{"label string"},
	};
	Perftools__Profiles__ValueType *five[5];
	struct msg m;
	char err[256];

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct blob b;

		msg_init(&m);
		switch (c) {
		case 0:
			m.locids[1] = 7;
			break;
		case 1:
			m.vt.unit = 99;
			break;
		case 2:
			m.s.n_value = 0;
			break;
		case 3:
			m.loc[1].id = 1;
			break;
		case 4:
			m.ln[1].function_id = 99;
			break;
		case 5:
			m.strs[0] = "x";
			break;
		case 6:
			m.loc[1].mapping_id = 6;
			break;
		case 7:
			m.vals[0] = -1;
			break;
		case 8:
			for (int i = 0; i < 5; i++)
				five[i] = &m.vt;
			m.p.n_sample_type = 5;
			m.p.sample_type = five;
			break;
		case 9:
			m.lab.num_unit = 8;
			break;
		}
		b = msg_pack(&m);
		err[0] = '\0';
		assert_int_equal(read_blob(b.data, b.len, NULL, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[c].want))
			fail_msg("case %zu: error \"%s\" lacks \"%s\"", c, err, cases[c].want);
		free(b.data);
	}
}

static void test_corrupt_inputs(void **state)
{
	struct ap_profile *p = build_profile();
	char path[64], err[256];
	struct blob gz, raw;
	uint8_t junk[512];
	int rc;

	write_file(p, path);
	gz = slurp(path);
	raw = gz_transform(gz.data, gz.len, false);

	/* every truncation of the gzip file */
	for (size_t n = 0; n < gz.len; n++) {
		err[0] = '\0';
		assert_int_equal(read_blob(gz.data, n, NULL, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
	}
	/* truncations of the raw message may still be a valid (shorter) message: no crash */
	for (size_t n = 0; n < raw.len; n++) {
		rc = read_blob(raw.data, n, NULL, err, sizeof(err));
		assert_true(rc == 0 || rc == -EINVAL);
	}

	/* random bytes, raw and behind a gzip magic */
	srand(1234);
	for (int i = 0; i < 300; i++) {
		size_t n = 1 + (size_t)rand() % sizeof(junk);

		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rand();
		if (i % 2 && n >= 2) {
			junk[0] = 0x1f;
			junk[1] = 0x8b;
		}
		err[0] = '\0';
		assert_int_equal(read_blob(junk, n, NULL, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
	}

	/* single byte flips anywhere in the raw message: accepted or refused, never a crash */
	for (size_t i = 0; i < raw.len; i++) {
		uint8_t save = raw.data[i];

		raw.data[i] ^= (uint8_t)(1u << (i % 8));
		rc = read_blob(raw.data, raw.len, NULL, err, sizeof(err));
		assert_true(rc == 0 || rc == -EINVAL);
		raw.data[i] = save;
	}

	/* a gzip trailer claiming ~4 GiB uncompressed is refused before inflating */
	{
		uint8_t *bomb = malloc(gz.len);

		assert_non_null(bomb);
		memcpy(bomb, gz.data, gz.len);
		bomb[gz.len - 4] = 0xf0;
		bomb[gz.len - 3] = 0xff;
		bomb[gz.len - 2] = 0xff;
		bomb[gz.len - 1] = 0xff;
		assert_int_equal(read_blob(bomb, gz.len, NULL, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "limit"));
		/* a wrong small claim fails zlib's length check */
		bomb[gz.len - 1] = 0;
		bomb[gz.len - 2] = 0;
		assert_int_equal(read_blob(bomb, gz.len, NULL, err, sizeof(err)), -EINVAL);
		free(bomb);
	}

	/* garbage after a valid gzip member: found while inflating, or (when its last bytes
	 * read as a huge size) by the trailer check */
	{
		uint8_t *tail = malloc(gz.len + 3);

		assert_non_null(tail);
		memcpy(tail, gz.data, gz.len);
		memcpy(tail + gz.len, "\x01\x02\x03", 3);
		assert_int_equal(read_blob(tail, gz.len + 3, NULL, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "trailing"));
		memcpy(tail + gz.len, "xyz", 3);
		assert_int_equal(read_blob(tail, gz.len + 3, NULL, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "not a complete gzip file"));
		free(tail);
	}

	/* two concatenated members (as `cat a.gz b.gz` makes) are one stream: but here the
	 * second member repeats the message, which duplicates ids, so it is refused cleanly */
	{
		uint8_t *two = malloc(gz.len * 2);

		assert_non_null(two);
		memcpy(two, gz.data, gz.len);
		memcpy(two + gz.len, gz.data, gz.len);
		assert_int_equal(read_blob(two, gz.len * 2, NULL, err, sizeof(err)), -EINVAL);
		free(two);
	}

	err[0] = '\0';
	assert_int_equal(read_blob("", 0, NULL, err, sizeof(err)), -EINVAL);
	assert_true(err[0] != '\0');
	/* a NULL error buffer is allowed */
	assert_int_equal(read_blob(junk, 16, NULL, NULL, 0), -EINVAL);

	free(raw.data);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

static void test_reader_needs_empty_profile(void **state)
{
	struct ap_profile *p = build_profile();
	char path[64], err[256];
	struct blob gz;

	write_file(p, path);
	gz = slurp(path);
	assert_int_equal(ap_read_pprof(gz.data, gz.len, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not empty"));
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_protoc_decode),
	    cmocka_unit_test(test_kernel_mapping),
	    cmocka_unit_test(test_write_error),
	    cmocka_unit_test(test_empty_profile),
	    cmocka_unit_test(test_inline_lines),
	    cmocka_unit_test(test_invalid_messages),
	    cmocka_unit_test(test_corrupt_inputs),
	    cmocka_unit_test(test_reader_needs_empty_profile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
