/* SPDX-License-Identifier: MIT */
/*
 * Helpers of test_flamebearer.c and test_diff.c: profiles built from folded-like rows, a
 * writer's output captured in memory and parsed back with lib/json_parse.h, and the
 * flamegraph levels decoded into absolute boxes.
 */
#ifndef AP_TEST_FLAME_UTIL_H
#define AP_TEST_FLAME_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "format/diff.h"
#include "format/format.h"
#include "lib/json_parse.h"
#include "lib/profile.h"

/* One input row: comm, frames root first separated by ';' (a "_[k]" suffix makes a kernel
 * frame), the weight (samples; cpu = 1000 × samples). */
struct row {
	const char *comm;
	const char *stack;
	uint64_t w;
};

/* Builds a cpu profile. `addr_salt` gives every frame a different address per profile, so
 * frame ids and addresses never line up between two profiles: only names can match them. */
static inline struct ap_profile *profile_of(const struct row *rows, size_t n, uint64_t addr_salt)
{
	struct ap_profile *p = ap_profile_new();

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	ap_profile_set_default_value(p, 0);
	assert_int_equal(ap_profile_set_meta(p, "mode", "cpu"), 0);
	for (size_t i = 0; i < n; i++) {
		uint32_t frames[64];
		size_t nf = 0;
		char *copy = strdup(rows[i].stack), *save = NULL;
		struct ap_sample s = {0};

		assert_non_null(copy);
		for (char *tok = strtok_r(copy, ";", &save); tok;
		     tok = strtok_r(NULL, ";", &save)) {
			struct ap_frame f = {0};
			size_t len = strlen(tok);

			assert_true(nf < 64);
			if (len > 4 && strcmp(tok + len - 4, "_[k]") == 0) {
				tok[len - 4] = '\0';
				f.kind = AP_FRAME_KERNEL;
			}
			f.name = ap_profile_intern(p, tok);
			f.module = ap_profile_intern(p, f.kind ? "[kernel.kallsyms]" : "app");
			/* the same function at a new address per row and profile */
			f.addr = 0x1000 + addr_salt * 0x100000 + i * 0x100 + nf;
			frames[nf] = ap_profile_add_frame(p, &f);
			assert_true(frames[nf] != UINT32_MAX);
			nf++;
		}
		free(copy);
		/* the model is leaf first */
		for (size_t a = 0, b = nf ? nf - 1 : 0; a < b; a++, b--) {
			uint32_t t = frames[a];

			frames[a] = frames[b];
			frames[b] = t;
		}
		s.stack = ap_profile_add_stack(p, frames, nf);
		s.comm = ap_profile_intern(p, rows[i].comm);
		s.pid = (uint32_t)(100 + i); /* distinct samples: the writers must merge by name */
		s.values[0] = rows[i].w;
		s.values[1] = rows[i].w * 1000;
		assert_int_equal(ap_profile_add_sample(p, &s), 0);
	}
	return p;
}

/* Captured output, NUL-terminated. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static inline void capture_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static inline void capture_close(struct capture *c) { assert_int_equal(fclose(c->f), 0); }

static inline struct ap_json *parse_json(const char *buf, size_t len)
{
	char err[256] = "";
	struct ap_json *j = ap_json_parse(buf, len, err, sizeof(err));

	if (!j)
		fail_msg("output is not JSON: %s\n%.2000s", err, buf);
	return j;
}

static inline uint64_t json_u64(const struct ap_json *j, const char *key)
{
	const struct ap_json *v = ap_json_get(j, key);
	uint64_t x = 0;

	if (!v)
		fail_msg("no member '%s'", key);
	assert_int_equal(ap_json_u64(v, &x), 0);
	return x;
}

static inline uint64_t item_u64(const struct ap_json *j)
{
	uint64_t x = 0;

	assert_int_equal(j->type, AP_JSON_NUMBER);
	assert_int_equal(ap_json_u64(j, &x), 0);
	return x;
}

/* A flamegraph box decoded from levels: absolute x per side. */
struct box {
	uint32_t depth;
	uint64_t x[2], total[2], self[2];
	const char *name;
};

/* Decodes "levels" (tuple 4 or 7) into boxes; checks the tuple shape, name indices and that
 * boxes on a row do not overlap. Returns the count; *out is malloc'ed. */
static inline size_t decode_levels(const struct ap_json *root, int sides, struct box **out)
{
	const struct ap_json *names = ap_json_get(root, "names");
	const struct ap_json *levels = ap_json_get(root, "levels");
	size_t tuple = sides == 1 ? 4 : 7, n = 0, cap = 0;
	struct box *boxes = NULL;

	assert_non_null(names);
	assert_non_null(levels);
	assert_int_equal(names->type, AP_JSON_ARRAY);
	assert_true(names->len >= 1);
	assert_string_equal(names->items[0].str, "total");
	for (size_t d = 0; d < levels->len; d++) {
		const struct ap_json *row = &levels->items[d];
		uint64_t end[2] = {0, 0};

		assert_int_equal(row->type, AP_JSON_ARRAY);
		assert_int_equal(row->len % tuple, 0);
		assert_true(row->len > 0);
		for (size_t k = 0; k < row->len; k += tuple) {
			struct box b = {.depth = (uint32_t)d};
			uint64_t ni;

			for (int side = 0; side < sides; side++) {
				b.x[side] = end[side] + item_u64(&row->items[k + 3 * side]);
				b.total[side] = item_u64(&row->items[k + 3 * side + 1]);
				b.self[side] = item_u64(&row->items[k + 3 * side + 2]);
				assert_true(b.self[side] <= b.total[side]);
				end[side] = b.x[side] + b.total[side];
			}
			ni = item_u64(&row->items[k + tuple - 1]);
			assert_true(ni < names->len);
			b.name = names->items[ni].str;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				boxes = realloc(boxes, cap * sizeof(*boxes));
				assert_non_null(boxes);
			}
			boxes[n++] = b;
		}
	}
	*out = boxes;
	return n;
}

/* Every box lies inside exactly one box of the row below (its parent) on every side, and a
 * box's total is its self plus its children's totals. Quadratic: small trees only. Returns
 * the sum of all selfs of side `side_sum`. */
static inline uint64_t check_nesting(const struct box *b, size_t n, int sides, int side_sum)
{
	uint64_t self_sum = 0, (*kids)[2] = calloc(n, sizeof(*kids));

	assert_non_null(kids);
	assert_true(n >= 1);
	assert_int_equal(b[0].depth, 0);
	for (size_t i = 1; i < n; i++) {
		size_t parent = SIZE_MAX;

		/* a box has width on some side, and boxes of one row do not overlap: the parent
		 * containing it there is unique */
		for (size_t j = 0; j < n && parent == SIZE_MAX; j++) {
			bool inside = b[j].depth + 1 == b[i].depth;

			for (int side = 0; inside && side < sides; side++)
				inside = b[i].x[side] >= b[j].x[side] &&
					 b[i].x[side] + b[i].total[side] <=
					     b[j].x[side] + b[j].total[side];
			if (inside)
				parent = j;
		}
		if (parent == SIZE_MAX)
			fail_msg("box %zu (%s, depth %u) has no parent", i, b[i].name, b[i].depth);
		for (int side = 0; side < sides; side++)
			kids[parent][side] += b[i].total[side];
	}
	for (size_t i = 0; i < n; i++) {
		self_sum += b[i].self[side_sum];
		for (int side = 0; side < sides; side++)
			assert_int_equal(kids[i][side] + b[i].self[side], b[i].total[side]);
	}
	free(kids);
	return self_sum;
}

/* The path of box i ("comm;f1;...") rebuilt from its ancestors: the box of the row below
 * that contains it on every side. */
static inline void box_path(const struct box *b, size_t n, int sides, size_t i, char *out,
			    size_t len)
{
	const char *parts[128];
	size_t np = 0;

	while (b[i].depth > 0) {
		size_t parent = SIZE_MAX;

		assert_true(np < 128);
		parts[np++] = b[i].name;
		for (size_t j = 0; j < n && parent == SIZE_MAX; j++) {
			bool inside = b[j].depth + 1 == b[i].depth;

			for (int side = 0; inside && side < sides; side++)
				inside = b[i].x[side] >= b[j].x[side] &&
					 b[i].x[side] + b[i].total[side] <=
					     b[j].x[side] + b[j].total[side];
			if (inside)
				parent = j;
		}
		assert_true(parent != SIZE_MAX);
		i = parent;
	}
	out[0] = '\0';
	while (np-- > 0) {
		strncat(out, parts[np], len - strlen(out) - 1);
		if (np)
			strncat(out, ";", len - strlen(out) - 1);
	}
}

/* CPU time of this process: the machine is shared, wall time says little. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A profile of `n` distinct stacks (depth 8..23, names from a 2,000-word pool, a few comms):
 * the 200k-stack load the UI and the diff must handle. */
static inline struct ap_profile *synthetic_profile(size_t n, uint64_t seed)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t frames[2000];
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	for (size_t i = 0; i < 2000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fn_%zu", i);
		frames[i] = ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t st[24];
		size_t depth;
		struct ap_sample s = {0};

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		depth = 8 + x % 16;
		/* shared roots (a real program's main and its layers), varied leaves */
		for (size_t d = 0; d < depth; d++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			st[depth - 1 - d] = frames[d < 3 ? d : d < 6 ? 3 + x % 8 : x % 2000];
		}
		s.stack = ap_profile_add_stack(p, st, depth);
		assert_true(s.stack != UINT32_MAX);
		s.comm = ap_profile_intern(p, i % 3 ? "app" : "worker");
		s.values[0] = 1 + x % 50;
		assert_int_equal(ap_profile_add_sample(p, &s), 0);
	}
	return p;
}

#endif
