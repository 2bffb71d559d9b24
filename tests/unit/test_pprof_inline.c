// SPDX-License-Identifier: MIT
/*
 * pprof and inlining: a chain of inlined frames and the physical frame at one address is one
 * Location with one Line per frame (innermost first), as pprof expects; the reader turns it
 * back into the same flagged frames. Checked with our decoder and with protoc.
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
/* cmocka needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"
#include "profile.pb-c.h"
#include "test_pprof_util.h"

#define INL_ADDR 0x401234ULL

/* main calls work, into which mid and leaf were inlined (three frames at INL_ADDR); work also
 * runs at another address on its own. A chain cut to its outer two frames (inline_truncated)
 * is another Location. With `stray`, a flagged frame whose caller has another address: it
 * cannot share a Location and is written on its own. */
static struct ap_profile *build_inline_profile(bool stray)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t app, leaf, mid, work, work2, main_, bad;

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	app = add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/app", "abcdef");
	leaf = add_frame_flags(p, INL_ADDR, "leaf", "app", "leaf.h", 7, app, AP_FRAME_USER,
			       AP_FRAME_INLINED);
	mid = add_frame_flags(p, INL_ADDR, "mid", "app", "mid.h", 30, app, AP_FRAME_USER,
			      AP_FRAME_INLINED);
	work = add_frame(p, INL_ADDR, "work", "app", "app.c", 55, app, AP_FRAME_USER);
	work2 = add_frame(p, 0x401300, "work", "app", "app.c", 60, app, AP_FRAME_USER);
	main_ = add_frame(p, 0x401000, "main", "app", "app.c", 10, app, AP_FRAME_USER);

	uint32_t full[] = {leaf, mid, work, main_};
	uint32_t cut[] = {mid, work, main_};
	uint32_t plain[] = {work2, main_};

	add_sample(p, full, 4, 100, 101, "a", 3, NULL, 0);
	add_sample(p, full, 4, 100, 102, "b", 2, NULL, 0);
	add_sample(p, cut, 3, 100, 103, "c", 1, NULL, 0);
	add_sample(p, plain, 2, 100, 104, "d", 4, NULL, 0);
	if (stray) {
		bad = add_frame_flags(p, 0x402000, "stray", "app", "leaf.h", 3, app, AP_FRAME_USER,
				      AP_FRAME_INLINED);
		uint32_t st[] = {bad, main_};

		add_sample(p, st, 2, 100, 105, "e", 5, NULL, 0);
	}
	return p;
}

/* The Lines of a decoded Location as "name file:line", innermost first, joined by "|". */
static void loc_lines(const Perftools__Profiles__Profile *m, const Perftools__Profiles__Location *l,
		      char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n_line; i++) {
		const Perftools__Profiles__Function *fn = NULL;

		for (size_t j = 0; j < m->n_function; j++)
			if (m->function[j]->id == l->line[i]->function_id)
				fn = m->function[j];
		assert_non_null(fn);
		off += (size_t)snprintf(buf + off, len - off, "%s%s %s:%lld", i ? "|" : "",
					m->string_table[fn->name], m->string_table[fn->filename],
					(long long)l->line[i]->line);
		assert_true(off < len);
	}
}

static const Perftools__Profiles__Location *find_loc(const Perftools__Profiles__Profile *m,
						     uint64_t id)
{
	for (size_t i = 0; i < m->n_location; i++)
		if (m->location[i]->id == id)
			return m->location[i];
	fail_msg("location %llu missing", (unsigned long long)id);
	return NULL;
}

/* Line numbers per Location at INL_ADDR, as protoc (not our decoder) sees the file: "7,30,55"
 * and "30,55" expected, in some order. Returns false when protoc or gzip is missing. */
static bool protoc_inline_lines(const char *path, char out[2][64])
{
	char line[256];
	enum { TOP, LOC, LINE } where = TOP;
	char cur[64] = "";
	unsigned long long addr = 0;
	size_t nout = 0;
	FILE *f;

	f = protoc_decode(path);
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		long long v;

		line[strcspn(line, "\n")] = '\0';
		if (where == TOP && strcmp(line, "location {") == 0) {
			where = LOC;
			cur[0] = '\0';
			addr = 0;
		} else if (where == LOC && strcmp(line, "  line {") == 0) {
			where = LINE;
		} else if (where == LOC && sscanf(line, "  address: %llu", &addr) == 1) {
			continue;
		} else if (where == LOC && strcmp(line, "}") == 0) {
			where = TOP;
			if (addr == INL_ADDR) {
				assert_true(nout < 2);
				strcpy(out[nout++], cur);
			}
		} else if (where == LINE && sscanf(line, "    line: %lld", &v) == 1) {
			size_t n = strlen(cur);

			snprintf(cur + n, sizeof(cur) - n, "%s%lld", n ? "," : "", v);
		} else if (where == LINE && strcmp(line, "  }") == 0) {
			where = LOC;
		}
	}
	assert_int_equal(pclose(f), 0);
	assert_int_equal(nout, 2);
	return true;
}

static void test_inline_location(void **state)
{
	struct ap_profile *p = build_inline_profile(false), *q = NULL;
	Perftools__Profiles__Profile *m;
	const Perftools__Profiles__Location *l;
	char path[64], err[256], buf[256], pl[2][64];
	struct blob gz, raw;
	size_t nfull = 0;

	write_file(p, path);
	gz = slurp(path);
	raw = gz_transform(gz.data, gz.len, false);
	m = perftools__profiles__profile__unpack(NULL, raw.len, raw.data);
	assert_non_null(m);
	/* [leaf mid work], [mid work], work elsewhere, main */
	assert_int_equal(m->n_location, 4);
	assert_int_equal(m->n_sample, 4);
	for (size_t i = 0; i < m->n_sample; i++) {
		const Perftools__Profiles__Sample *s = m->sample[i];

		/* every stack is one Location shorter than its frames for the chain */
		if (s->value[0] == 3 || s->value[0] == 2) {
			assert_int_equal(s->n_location_id, 2);
			l = find_loc(m, s->location_id[0]);
			assert_int_equal(l->address, INL_ADDR);
			loc_lines(m, l, buf, sizeof(buf));
			/* pprof order: innermost inlined function first, physical one last */
			assert_string_equal(buf, "leaf leaf.h:7|mid mid.h:30|work app.c:55");
			assert_int_not_equal(l->mapping_id, 0);
			nfull++;
		} else if (s->value[0] == 1) {
			assert_int_equal(s->n_location_id, 2);
			loc_lines(m, find_loc(m, s->location_id[0]), buf, sizeof(buf));
			assert_string_equal(buf, "mid mid.h:30|work app.c:55");
		} else {
			assert_int_equal(s->n_location_id, 2);
			loc_lines(m, find_loc(m, s->location_id[0]), buf, sizeof(buf));
			assert_string_equal(buf, "work app.c:60");
		}
		loc_lines(m, find_loc(m, s->location_id[s->n_location_id - 1]), buf, sizeof(buf));
		assert_string_equal(buf, "main app.c:10");
	}
	assert_int_equal(nfull, 2);
	/* both samples of the full chain use the same Location */
	for (size_t i = 0, first = 0; i < m->n_sample; i++) {
		if (m->sample[i]->value[0] != 3 && m->sample[i]->value[0] != 2)
			continue;
		if (!first)
			first = m->sample[i]->location_id[0];
		assert_int_equal(m->sample[i]->location_id[0], first);
	}
	perftools__profiles__profile__free_unpacked(m, NULL);

	if (protoc_inline_lines(path, pl)) {
		assert_true((!strcmp(pl[0], "7,30,55") && !strcmp(pl[1], "30,55")) ||
			    (!strcmp(pl[1], "7,30,55") && !strcmp(pl[0], "30,55")));
	}

	/* read back: the same frames with the same flags, which write the same Locations again */
	assert_int_equal(read_blob(gz.data, gz.len, &q, err, sizeof(err)), 0);
	assert_same_profile(p, q);
	{
		char path2[64];
		struct blob gz2;

		write_file(q, path2);
		gz2 = slurp(path2);
		free(raw.data);
		raw = gz_transform(gz2.data, gz2.len, false);
		m = perftools__profiles__profile__unpack(NULL, raw.len, raw.data);
		assert_non_null(m);
		assert_int_equal(m->n_location, 4);
		perftools__profiles__profile__free_unpacked(m, NULL);
		free(gz2.data);
		unlink(path2);
	}
	ap_profile_free(q);
	free(raw.data);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

/* A flagged frame whose caller is at another address gets a Location of its own; read back it
 * is an ordinary frame (pprof has no way to say "inlined into a frame elsewhere"). */
static void test_inline_stray(void **state)
{
	struct ap_profile *p = build_inline_profile(true), *q = NULL;
	char path[64], err[256];
	struct blob gz;
	bool seen = false;

	write_file(p, path);
	gz = slurp(path);
	assert_int_equal(read_blob(gz.data, gz.len, &q, err, sizeof(err)), 0);
	for (size_t i = 0; i < ap_profile_nsamples(q); i++) {
		const struct ap_sample *s = ap_profile_sample(q, i);
		const struct ap_frame *f;
		const uint32_t *st;
		size_t n;

		if (s->tid != 105)
			continue;
		st = ap_profile_stack(q, s->stack, &n);
		assert_int_equal(n, 2);
		f = ap_profile_frame(q, st[0]);
		assert_string_equal(ap_profile_str(q, f->name), "stray");
		assert_int_equal(f->addr, 0x402000);
		assert_int_equal(f->flags, 0);
		assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[1])->name), "main");
		seen = true;
	}
	assert_true(seen);
	ap_profile_free(q);
	free(gz.data);
	unlink(path);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inline_location),
	    cmocka_unit_test(test_inline_stray),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
