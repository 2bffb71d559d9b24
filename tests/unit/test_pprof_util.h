/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the pprof tests: building model profiles, writing them to a file and
 * reading files back, gzip both ways, and comparing two profiles field by field. Include after
 * cmocka.h.
 */
#ifndef AP_TEST_PPROF_UTIL_H
#define AP_TEST_PPROF_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "format/format.h"
#include "lib/profile.h"

#define TP_UNUSED __attribute__((unused))
#define PERIOD_NS 10101010ULL

/* ---- fixture ---- */

TP_UNUSED static uint32_t add_frame_flags(struct ap_profile *p, uint64_t addr, const char *name,
					  const char *module, const char *file, uint32_t line,
					  uint32_t mapping, enum ap_frame_kind kind, uint32_t flags)
{
	struct ap_frame f = {0};
	uint32_t id;

	f.addr = addr;
	f.rel_addr = addr & 0xfffff;
	f.name = ap_profile_intern(p, name);
	f.module = ap_profile_intern(p, module);
	f.file = ap_profile_intern(p, file);
	f.line = line;
	f.mapping = mapping;
	f.kind = kind;
	f.flags = flags;
	id = ap_profile_add_frame(p, &f);
	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

TP_UNUSED static uint32_t add_frame(struct ap_profile *p, uint64_t addr, const char *name,
				    const char *module, const char *file, uint32_t line,
				    uint32_t mapping, enum ap_frame_kind kind)
{
	return add_frame_flags(p, addr, name, module, file, line, mapping, kind, 0);
}

TP_UNUSED static uint32_t add_mapping(struct ap_profile *p, uint64_t start, uint64_t limit,
				      uint64_t off, const char *file, const char *build_id)
{
	struct ap_mapping m = {start, limit, off, ap_profile_intern(p, file),
			       ap_profile_intern(p, build_id)};
	uint32_t id = ap_profile_add_mapping(p, &m);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

TP_UNUSED static void add_sample(struct ap_profile *p, const uint32_t *stack, size_t n,
				 uint32_t pid, uint32_t tid, const char *comm, uint64_t count,
				 const struct ap_label *labels, size_t nlabels)
{
	struct ap_sample s = {0};

	s.stack = ap_profile_add_stack(p, stack, n);
	s.pid = pid;
	s.tid = tid;
	s.comm = ap_profile_intern(p, comm);
	s.labels = ap_profile_add_labels(p, labels, nlabels);
	s.values[0] = count;
	s.values[1] = count * PERIOD_NS;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
}

struct blob {
	uint8_t *data;
	size_t len;
};

TP_UNUSED static void write_file(const struct ap_profile *p, char *path)
{
	int fd;
	FILE *f;

	strcpy(path, "/tmp/ap_test_pprof_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(ap_write_pprof(p, f, NULL), 0);
	assert_int_equal(fclose(f), 0);
}

TP_UNUSED static struct blob slurp(const char *path)
{
	struct blob b = {0};
	FILE *f = fopen(path, "rb");
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	b.data = malloc((size_t)n);
	assert_non_null(b.data);
	assert_int_equal(fread(b.data, 1, (size_t)n, f), (size_t)n);
	b.len = (size_t)n;
	fclose(f);
	return b;
}

TP_UNUSED static struct blob gz_transform(const uint8_t *in, size_t len, bool compress)
{
	struct blob b = {0};
	z_stream zs = {0};
	size_t cap = len * 8 + 1024;
	int rc;

	b.data = malloc(cap);
	assert_non_null(b.data);
	if (compress)
		assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	else
		assert_int_equal(inflateInit2(&zs, 31), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = b.data;
	zs.avail_out = (uInt)cap;
	rc = compress ? deflate(&zs, Z_FINISH) : inflate(&zs, Z_FINISH);
	assert_int_equal(rc, Z_STREAM_END);
	b.len = zs.total_out;
	if (compress)
		deflateEnd(&zs);
	else
		inflateEnd(&zs);
	return b;
}

TP_UNUSED static int read_blob(const void *data, size_t len, struct ap_profile **out, char *err,
			       size_t errlen)
{
	struct ap_profile *p = ap_profile_new();
	int rc;

	assert_non_null(p);
	rc = ap_read_pprof(data, len, p, err, errlen);
	if (out && rc == 0)
		*out = p;
	else
		ap_profile_free(p);
	return rc;
}

/* ---- comparing profiles ---- */

TP_UNUSED static void assert_same_str(const struct ap_profile *a, uint32_t x,
				      const struct ap_profile *b, uint32_t y)
{
	assert_string_equal(ap_profile_str(a, x), ap_profile_str(b, y));
}

TP_UNUSED static void assert_same_frame(const struct ap_profile *a, uint32_t fa,
					const struct ap_profile *b, uint32_t fb)
{
	const struct ap_frame *x = ap_profile_frame(a, fa), *y = ap_profile_frame(b, fb);

	assert_non_null(x);
	assert_non_null(y);
	assert_same_str(a, x->name, b, y->name);
	assert_same_str(a, x->module, b, y->module);
	assert_same_str(a, x->file, b, y->file);
	assert_int_equal(x->line, y->line);
	assert_int_equal(x->kind, y->kind);
	assert_int_equal(x->flags, y->flags);
	assert_int_equal(x->addr, y->addr);
	assert_int_equal(!!x->mapping, !!y->mapping);
	if (x->mapping) {
		const struct ap_mapping *ma = ap_profile_mapping(a, x->mapping);
		const struct ap_mapping *mb = ap_profile_mapping(b, y->mapping);

		assert_int_equal(ma->start, mb->start);
		assert_int_equal(ma->limit, mb->limit);
		assert_int_equal(ma->offset, mb->offset);
		assert_same_str(a, ma->file, b, mb->file);
		assert_same_str(a, ma->build_id, b, mb->build_id);
	}
}

TP_UNUSED static void assert_same_labels(const struct ap_profile *a, uint32_t la,
					 const struct ap_profile *b, uint32_t lb)
{
	size_t na, nb;
	const struct ap_label *x = ap_profile_labels(a, la, &na);
	const struct ap_label *y = ap_profile_labels(b, lb, &nb);

	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		size_t j;

		for (j = 0; j < nb; j++)
			if (strcmp(ap_profile_str(a, x[i].key), ap_profile_str(b, y[j].key)) == 0)
				break;
		assert_true(j < nb);
		assert_same_str(a, x[i].str, b, y[j].str);
		assert_int_equal(x[i].num, y[j].num);
		assert_same_str(a, x[i].num_unit, b, y[j].num_unit);
	}
}

/* Finds the read-back sample for `s` by its pid/tid/comm, which are unique in the fixture. */
TP_UNUSED static const struct ap_sample *
find_sample(const struct ap_profile *a, const struct ap_sample *s, const struct ap_profile *b)
{
	for (size_t i = 0; i < ap_profile_nsamples(b); i++) {
		const struct ap_sample *t = ap_profile_sample(b, i);

		if (t->pid == s->pid && t->tid == s->tid &&
		    strcmp(ap_profile_str(a, s->comm), ap_profile_str(b, t->comm)) == 0)
			return t;
	}
	return NULL;
}

TP_UNUSED static void assert_same_profile(const struct ap_profile *a, const struct ap_profile *b)
{
	size_t nv = ap_profile_nvalues(a), kept = 0;

	assert_int_equal(ap_profile_nvalues(b), nv);
	for (size_t v = 0; v < nv; v++) {
		assert_same_str(a, ap_profile_value_type(a, v)->type, b,
				ap_profile_value_type(b, v)->type);
		assert_same_str(a, ap_profile_value_type(a, v)->unit, b,
				ap_profile_value_type(b, v)->unit);
		assert_int_equal(ap_profile_total(a, v), ap_profile_total(b, v));
	}
	assert_same_str(a, ap_profile_period_type(a)->type, b, ap_profile_period_type(b)->type);
	assert_same_str(a, ap_profile_period_type(a)->unit, b, ap_profile_period_type(b)->unit);
	assert_int_equal(ap_profile_period(a), ap_profile_period(b));
	assert_int_equal(ap_profile_start_ns(a), ap_profile_start_ns(b));
	assert_int_equal(ap_profile_duration_ns(a), ap_profile_duration_ns(b));

	for (size_t i = 0; i < ap_profile_nsamples(a); i++) {
		const struct ap_sample *s = ap_profile_sample(a, i), *t;
		const uint32_t *fa, *fb;
		size_t na, nb;
		bool zero = true;

		for (size_t v = 0; v < nv; v++)
			zero = zero && !s->values[v];
		t = find_sample(a, s, b);
		if (zero) {
			assert_null(t);
			continue;
		}
		kept++;
		assert_non_null(t);
		for (size_t v = 0; v < nv; v++)
			assert_int_equal(s->values[v], t->values[v]);
		fa = ap_profile_stack(a, s->stack, &na);
		fb = ap_profile_stack(b, t->stack, &nb);
		assert_int_equal(na, nb);
		for (size_t j = 0; j < na; j++)
			assert_same_frame(a, fa[j], b, fb[j]);
		assert_same_labels(a, s->labels, b, t->labels);
	}
	assert_int_equal(ap_profile_nsamples(b), kept);

	for (size_t i = 0; i < ap_profile_nstats(a); i++) {
		const struct ap_stat *st = ap_profile_stat(a, i);

		assert_int_equal(ap_profile_get_stat(b, st->name), st->value);
	}
	assert_int_equal(ap_profile_nstats(b), ap_profile_nstats(a));
	assert_int_equal(ap_profile_nmeta(b), ap_profile_nmeta(a));
	for (size_t i = 0; i < ap_profile_nmeta(a); i++) {
		const char *k, *v;

		ap_profile_meta(a, i, &k, &v);
		assert_non_null(ap_profile_get_meta(b, k));
		assert_string_equal(ap_profile_get_meta(b, k), v);
	}
}

/* protoc's decoding of the pprof file at path, as a stream of text-format lines (our decoder
 * is not the judge), or NULL when protoc or gzip is missing. pclose() it. */
TP_UNUSED static FILE *protoc_decode(const char *path)
{
	char cmd[512];
	FILE *f;

	if (system("command -v protoc >/dev/null 2>&1 && command -v gzip >/dev/null 2>&1"))
		return NULL;
	snprintf(cmd, sizeof(cmd),
		 "gzip -dc < '%s' | protoc --decode=perftools.profiles.Profile "
		 "--proto_path='%s' profile.proto",
		 path, AP_PPROF_PROTO_DIR);
	f = popen(cmd, "r");
	assert_non_null(f);
	return f;
}

#endif
