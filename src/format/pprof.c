// SPDX-License-Identifier: MIT
/*
 * pprof (profile.proto) writer and reader.
 *
 * How the model maps onto pprof:
 * - String table: the profile's own strings keep their ids (both tables have "" at 0); the few
 *   strings pprof needs that the profile lacks (label keys, comments) are appended.
 * - One Location per model frame (location id = frame id + 1) with one Line. Unresolved frames
 *   ("[unknown]") get no Line, which is how pprof marks a location it may symbolize itself
 *   from the mapping's file and build-id.
 * - One Function per distinct (name, file).
 * - Model mappings keep their ids. Frames without a mapping but with a module (always the case
 *   for kernel frames) get a synthetic mapping with an empty address range named after the
 *   module: "[kernel.kallsyms]" for the kernel, "[ext4]" for a module. The reader turns such
 *   bracketed, zero-range mappings back into kernel frames.
 * - Sample labels: "pid" (numeric), "tid" (numeric, when non-zero), "comm" (string, when
 *   non-empty), then the sample's label set.
 * - Run stats and meta travel as comments "stat NAME=VALUE" and "meta KEY=VALUE".
 * pprof has no field for rel_addr; frames read back have rel_addr 0.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format.h"
#include "parse.h"
#include "profile.pb-c.h"

#define PPROF_KERNEL_MAPPING "[kernel.kallsyms]"
#define PPROF_UNKNOWN "[unknown]"

/* Reader limits: decompressed size, frames in one sample after expanding inlined lines, and
 * frames over all samples (inlined lines multiply, so a small file could otherwise expand into
 * an enormous model). */
#define PPROF_MAX_DECOMPRESSED (1ULL << 30)
#define PPROF_MAX_DEPTH 65536
#define PPROF_MAX_TOTAL_FRAMES (1ULL << 28)

/* zlib counts in uInt; feed it at most this much at a time. */
#define ZCHUNK (1U << 30)

/* ---- a small u64 -> u32 hash map (function keys, pprof ids) ---- */

struct u64map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	size_t cap; /* power of two */
	size_t n;
};

static size_t mix64(uint64_t k)
{
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (size_t)k;
}

static size_t map_slot(const struct u64map *m, uint64_t key)
{
	size_t j;

	for (j = mix64(key) & (m->cap - 1); m->used[j] && m->keys[j] != key;
	     j = (j + 1) & (m->cap - 1))
		;
	return j;
}

static bool map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
	size_t j;

	if (!m->cap)
		return false;
	j = map_slot(m, key);
	if (!m->used[j])
		return false;
	*val = m->vals[j];
	return true;
}

static int map_grow(struct u64map *m)
{
	struct u64map n = {0};

	n.cap = m->cap ? m->cap * 2 : 64;
	n.keys = malloc(n.cap * sizeof(*n.keys));
	n.vals = malloc(n.cap * sizeof(*n.vals));
	n.used = calloc(n.cap, 1);
	if (!n.keys || !n.vals || !n.used) {
		free(n.keys);
		free(n.vals);
		free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->used[i])
			continue;
		j = map_slot(&n, m->keys[i]);
		n.used[j] = 1;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
	}
	n.n = m->n;
	free(m->keys);
	free(m->vals);
	free(m->used);
	*m = n;
	return 0;
}

/* Returns 0, -EEXIST when the key is already there, or -ENOMEM. */
static int map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	size_t j;

	if ((m->n + 1) * 2 > m->cap) {
		int err = map_grow(m);

		if (err)
			return err;
	}
	j = map_slot(m, key);
	if (m->used[j])
		return -EEXIST;
	m->used[j] = 1;
	m->keys[j] = key;
	m->vals[j] = val;
	m->n++;
	return 0;
}

static void map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof(*m));
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *n;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*arr, ncap * size);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

/* ======================================================================================== */
/* Writer                                                                                   */
/* ======================================================================================== */

struct writer {
	const struct ap_profile *p;
	size_t nprof_strs; /* strs[0..nprof_strs) borrow the profile's strings */
	char **strs;	   /* strs[nprof_strs..nstrs) are owned */
	size_t nstrs, cap_strs;
	uint32_t unknown_id; /* "[unknown]" in the profile, UINT32_MAX when absent */

	Perftools__Profiles__Mapping *maps; /* index = pprof mapping id - 1 */
	size_t nmaps, cap_maps;
	struct u64map synth; /* (kind << 32 | module) -> synthetic mapping id */

	Perftools__Profiles__Function *funcs;
	size_t nfuncs, cap_funcs;
	struct u64map func_idx; /* (name << 32 | file) -> function id */

	uint64_t *frame_map; /* per frame: pprof mapping id */
};

/* Index of `s` in the table, appending an owned copy when it is not there yet. */
static int wr_str(struct writer *w, const char *s, int64_t *out)
{
	char *copy;

	for (size_t i = 0; i < w->nstrs; i++) {
		if (strcmp(w->strs[i], s) == 0) {
			*out = (int64_t)i;
			return 0;
		}
	}
	if (grow_array((void **)&w->strs, &w->cap_strs, w->nstrs + 1, sizeof(*w->strs)))
		return -ENOMEM;
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	w->strs[w->nstrs] = copy;
	*out = (int64_t)w->nstrs++;
	return 0;
}

/* Appends an owned, already formatted string without looking for a duplicate. */
static int wr_str_take(struct writer *w, char *s, int64_t *out)
{
	if (!s)
		return -ENOMEM;
	if (grow_array((void **)&w->strs, &w->cap_strs, w->nstrs + 1, sizeof(*w->strs))) {
		free(s);
		return -ENOMEM;
	}
	w->strs[w->nstrs] = s;
	*out = (int64_t)w->nstrs++;
	return 0;
}

static Perftools__Profiles__Mapping *wr_new_mapping(struct writer *w)
{
	Perftools__Profiles__Mapping init = PERFTOOLS__PROFILES__MAPPING__INIT;

	if (grow_array((void **)&w->maps, &w->cap_maps, w->nmaps + 1, sizeof(*w->maps)))
		return NULL;
	w->maps[w->nmaps] = init;
	w->maps[w->nmaps].id = w->nmaps + 1;
	return &w->maps[w->nmaps++];
}

static int wr_mappings(struct writer *w)
{
	size_t n = ap_profile_nmappings(w->p);

	/* model mapping ids are kept: model id i is pprof id i */
	for (uint32_t i = 1; i < n; i++) {
		const struct ap_mapping *am = ap_profile_mapping(w->p, i);
		Perftools__Profiles__Mapping *m = wr_new_mapping(w);

		if (!m)
			return -ENOMEM;
		m->memory_start = am->start;
		m->memory_limit = am->limit;
		m->file_offset = am->offset;
		m->filename = am->file;
		m->build_id = am->build_id;
	}
	return 0;
}

/* The pprof mapping of a frame: its own, or a synthetic one named after its module. */
static int wr_frame_mapping(struct writer *w, const struct ap_frame *f, uint64_t *out)
{
	Perftools__Profiles__Mapping *m;
	uint64_t key = ((uint64_t)f->kind << 32) | f->module;
	const char *mod = ap_profile_str(w->p, f->module);
	uint32_t id;
	int64_t file = f->module;
	int err = 0;

	if (f->mapping && f->mapping < ap_profile_nmappings(w->p)) {
		*out = f->mapping;
		return 0;
	}
	if (f->kind != AP_FRAME_KERNEL && !mod[0]) {
		*out = 0;
		return 0;
	}
	if (map_get(&w->synth, key, &id)) {
		*out = id;
		return 0;
	}
	if (f->kind == AP_FRAME_KERNEL && mod[0] != '[') {
		/* the reader recognises kernel mappings by their bracketed names */
		char *wrapped = NULL;

		if (!mod[0])
			err = wr_str(w, PPROF_KERNEL_MAPPING, &file);
		else if (asprintf(&wrapped, "[%s]", mod) < 0)
			err = -ENOMEM;
		else
			err = wr_str_take(w, wrapped, &file);
		if (err)
			return err;
	}
	m = wr_new_mapping(w);
	if (!m)
		return -ENOMEM;
	m->filename = file;
	*out = m->id;
	return map_put(&w->synth, key, (uint32_t)m->id);
}

static int wr_function(struct writer *w, const struct ap_frame *f, uint64_t *out)
{
	Perftools__Profiles__Function init = PERFTOOLS__PROFILES__FUNCTION__INIT;
	uint64_t key = ((uint64_t)f->name << 32) | f->file;
	uint32_t id;

	if (map_get(&w->func_idx, key, &id)) {
		*out = id;
		return 0;
	}
	if (grow_array((void **)&w->funcs, &w->cap_funcs, w->nfuncs + 1, sizeof(*w->funcs)))
		return -ENOMEM;
	init.id = w->nfuncs + 1;
	init.name = f->name;
	init.system_name = f->name;
	init.filename = f->file;
	w->funcs[w->nfuncs++] = init;
	*out = init.id;
	return map_put(&w->func_idx, key, (uint32_t)init.id);
}

/* Gzip sink for protobuf-c: packed bytes are staged, deflated and written to the FILE. */
struct gz_sink {
	ProtobufCBuffer base; /* first: protobuf-c hands us this pointer */
	z_stream zs;
	FILE *out;
	int err;
	size_t in_len;
	uint8_t in[1 << 16];
	uint8_t buf[1 << 16];
};

static int gz_deflate(struct gz_sink *s, int flush)
{
	int rc;

	s->zs.next_in = s->in;
	s->zs.avail_in = (uInt)s->in_len;
	do {
		size_t n;

		s->zs.next_out = s->buf;
		s->zs.avail_out = sizeof(s->buf);
		rc = deflate(&s->zs, flush);
		if (rc == Z_STREAM_ERROR)
			return -EIO;
		n = sizeof(s->buf) - s->zs.avail_out;
		if (n && fwrite(s->buf, 1, n, s->out) != n)
			return -EIO;
	} while (s->zs.avail_out == 0);
	s->in_len = 0;
	if (flush == Z_FINISH && rc != Z_STREAM_END)
		return -EIO;
	return 0;
}

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct gz_sink *s = (struct gz_sink *)b;

	while (len && !s->err) {
		size_t n = sizeof(s->in) - s->in_len;

		if (n > len)
			n = len;
		memcpy(s->in + s->in_len, data, n);
		s->in_len += n;
		data += n;
		len -= n;
		if (s->in_len == sizeof(s->in))
			s->err = gz_deflate(s, Z_NO_FLUSH);
	}
}

static int wr_emit(const Perftools__Profiles__Profile *msg, FILE *out)
{
	struct gz_sink *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->base.append = gz_append;
	s->out = out;
	/* windowBits 15 + 16: gzip wrapper, which is what pprof tools expect */
	if (deflateInit2(&s->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(s);
		return -ENOMEM;
	}
	perftools__profiles__profile__pack_to_buffer(msg, &s->base);
	err = s->err ? s->err : gz_deflate(s, Z_FINISH);
	deflateEnd(&s->zs);
	free(s);
	if (!err && (fflush(out) != 0 || ferror(out)))
		err = -EIO;
	return err;
}

static bool sample_is_zero(const struct ap_sample *s, size_t nv)
{
	for (size_t v = 0; v < nv; v++)
		if (s->values[v])
			return false;
	return true;
}

/* Sample messages with their ids, values and labels carved out of a few big arrays. */
struct wr_samples {
	Perftools__Profiles__Sample *msgs;
	Perftools__Profiles__Sample **ptrs;
	uint64_t *locs;
	int64_t *vals;
	Perftools__Profiles__Label *labels;
	Perftools__Profiles__Label **label_ptrs;
	size_t n;
};

static void wr_samples_free(struct wr_samples *ws)
{
	free(ws->msgs);
	free(ws->ptrs);
	free(ws->locs);
	free(ws->vals);
	free(ws->labels);
	free(ws->label_ptrs);
}

static int wr_samples(struct writer *w, struct wr_samples *ws)
{
	Perftools__Profiles__Sample sinit = PERFTOOLS__PROFILES__SAMPLE__INIT;
	Perftools__Profiles__Label linit = PERFTOOLS__PROFILES__LABEL__INIT;
	const struct ap_profile *p = w->p;
	size_t nv = ap_profile_nvalues(p), ns = ap_profile_nsamples(p);
	size_t nlocs = 0, nlabels = 0, li = 0, lo = 0;
	int64_t kpid, ktid, kcomm;
	int err;

	if ((err = wr_str(w, "pid", &kpid)) || (err = wr_str(w, "tid", &ktid)) ||
	    (err = wr_str(w, "comm", &kcomm)))
		return err;
	for (size_t i = 0; i < ns; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		size_t n;

		if (sample_is_zero(s, nv))
			continue;
		ap_profile_stack(p, s->stack, &n);
		nlocs += n;
		ap_profile_labels(p, s->labels, &n);
		nlabels += 1 + (s->tid != 0) + (s->comm != 0) + n;
		ws->n++;
	}
	ws->msgs = calloc(ws->n ? ws->n : 1, sizeof(*ws->msgs));
	ws->ptrs = calloc(ws->n ? ws->n : 1, sizeof(*ws->ptrs));
	ws->locs = calloc(nlocs ? nlocs : 1, sizeof(*ws->locs));
	ws->vals = calloc(ws->n * nv + 1, sizeof(*ws->vals));
	ws->labels = calloc(nlabels ? nlabels : 1, sizeof(*ws->labels));
	ws->label_ptrs = calloc(nlabels ? nlabels : 1, sizeof(*ws->label_ptrs));
	if (!ws->msgs || !ws->ptrs || !ws->locs || !ws->vals || !ws->labels || !ws->label_ptrs)
		return -ENOMEM;

	for (size_t i = 0, k = 0; i < ns; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		Perftools__Profiles__Sample *m = &ws->msgs[k];
		const struct ap_label *ls;
		const uint32_t *stack;
		size_t n;

		if (sample_is_zero(s, nv))
			continue;
		*m = sinit;
		ws->ptrs[k] = m;
		/* both the model and pprof keep stacks leaf first */
		stack = ap_profile_stack(p, s->stack, &n);
		m->location_id = &ws->locs[lo];
		m->n_location_id = n;
		for (size_t j = 0; j < n; j++)
			ws->locs[lo++] = (uint64_t)stack[j] + 1;
		m->value = &ws->vals[k * nv];
		m->n_value = nv;
		for (size_t v = 0; v < nv; v++)
			m->value[v] = s->values[v] > INT64_MAX ? INT64_MAX : (int64_t)s->values[v];

		m->label = &ws->label_ptrs[li];
		ls = ap_profile_labels(p, s->labels, &n);
		for (size_t j = 0; j < n + 3; j++) {
			Perftools__Profiles__Label l = linit;

			if (j == 0) {
				l.key = kpid;
				l.num = s->pid;
			} else if (j == 1) {
				if (!s->tid)
					continue;
				l.key = ktid;
				l.num = s->tid;
			} else if (j == 2) {
				if (!s->comm)
					continue;
				l.key = kcomm;
				l.str = s->comm;
			} else {
				l.key = ls[j - 3].key;
				l.str = ls[j - 3].str;
				l.num = ls[j - 3].str ? 0 : ls[j - 3].num;
				l.num_unit = ls[j - 3].str ? 0 : ls[j - 3].num_unit;
			}
			ws->labels[li] = l;
			ws->label_ptrs[li] = &ws->labels[li];
			li++;
			m->n_label++;
		}
		k++;
	}
	return 0;
}

static int wr_comments(struct writer *w, int64_t **out, size_t *n)
{
	size_t nst = ap_profile_nstats(w->p), nmeta = ap_profile_nmeta(w->p);
	int64_t *c = calloc(nst + nmeta + 1, sizeof(*c));
	int err = 0;
	char *s;

	if (!c)
		return -ENOMEM;
	*out = c;
	*n = 0;
	for (size_t i = 0; i < nst && !err; i++) {
		const struct ap_stat *st = ap_profile_stat(w->p, i);

		if (asprintf(&s, "stat %s=%llu", st->name, (unsigned long long)st->value) < 0)
			s = NULL;
		err = wr_str_take(w, s, &c[(*n)++]);
	}
	for (size_t i = 0; i < nmeta && !err; i++) {
		const char *k, *v;

		ap_profile_meta(w->p, i, &k, &v);
		if (asprintf(&s, "meta %s=%s", k, v) < 0)
			s = NULL;
		err = wr_str_take(w, s, &c[(*n)++]);
	}
	return err;
}

int ap_write_pprof(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts)
{
	Perftools__Profiles__Profile msg = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vinit = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Perftools__Profiles__Location linit = PERFTOOLS__PROFILES__LOCATION__INIT;
	Perftools__Profiles__Line lninit = PERFTOOLS__PROFILES__LINE__INIT;
	Perftools__Profiles__ValueType vtypes[AP_MAX_VALUES], *vtype_ptrs[AP_MAX_VALUES];
	Perftools__Profiles__ValueType period_type = vinit;
	Perftools__Profiles__Mapping **map_ptrs = NULL;
	Perftools__Profiles__Function **func_ptrs = NULL;
	Perftools__Profiles__Location *locs = NULL, **loc_ptrs = NULL;
	Perftools__Profiles__Line *lines = NULL, **line_ptrs = NULL;
	struct wr_samples ws = {0};
	struct writer w = {0};
	const struct ap_value_type *pt = ap_profile_period_type(p);
	size_t nframes = ap_profile_nframes(p), nv = ap_profile_nvalues(p);
	int64_t *comments = NULL;
	size_t ncomments = 0;
	int err = -ENOMEM;

	w.p = p;
	w.nprof_strs = ap_profile_nstrings(p);
	if (grow_array((void **)&w.strs, &w.cap_strs, w.nprof_strs + 8, sizeof(*w.strs)))
		goto out;
	w.unknown_id = UINT32_MAX;
	for (size_t i = 0; i < w.nprof_strs; i++) {
		w.strs[i] = (char *)ap_profile_str(p, (uint32_t)i);
		if (w.unknown_id == UINT32_MAX && strcmp(w.strs[i], PPROF_UNKNOWN) == 0)
			w.unknown_id = (uint32_t)i;
	}
	w.nstrs = w.nprof_strs;

	err = wr_mappings(&w);
	if (err)
		goto out;
	err = -ENOMEM;
	w.frame_map = calloc(nframes + 1, sizeof(*w.frame_map));
	locs = calloc(nframes + 1, sizeof(*locs));
	loc_ptrs = calloc(nframes + 1, sizeof(*loc_ptrs));
	lines = calloc(nframes + 1, sizeof(*lines));
	line_ptrs = calloc(nframes + 1, sizeof(*line_ptrs));
	if (!w.frame_map || !locs || !loc_ptrs || !lines || !line_ptrs)
		goto out;
	for (uint32_t i = 0; i < nframes; i++) {
		const struct ap_frame *f = ap_profile_frame(p, i);

		locs[i] = linit;
		locs[i].id = (uint64_t)i + 1;
		locs[i].address = f->addr;
		err = wr_frame_mapping(&w, f, &w.frame_map[i]);
		if (err)
			goto out;
		locs[i].mapping_id = w.frame_map[i];
		loc_ptrs[i] = &locs[i];
		if (f->name == w.unknown_id)
			continue;
		lines[i] = lninit;
		lines[i].line = f->line;
		err = wr_function(&w, f, &lines[i].function_id);
		if (err)
			goto out;
		line_ptrs[i] = &lines[i];
		locs[i].line = &line_ptrs[i];
		locs[i].n_line = 1;
	}

	/* What pprof may expect of each mapping: it symbolizes only mappings that lack
	 * functions, so a mapping with an unresolved location says so. */
	for (size_t i = 0; i < w.nmaps; i++)
		w.maps[i].has_functions = w.maps[i].has_filenames = w.maps[i].has_line_numbers = 1;
	for (uint32_t i = 0; i < nframes; i++) {
		const struct ap_frame *f = ap_profile_frame(p, i);
		Perftools__Profiles__Mapping *m;

		if (!w.frame_map[i])
			continue;
		m = &w.maps[w.frame_map[i] - 1];
		if (f->name == w.unknown_id)
			m->has_functions = 0;
		if (!f->file)
			m->has_filenames = 0;
		if (!f->line)
			m->has_line_numbers = 0;
	}

	err = wr_samples(&w, &ws);
	if (err)
		goto out;
	err = wr_comments(&w, &comments, &ncomments);
	if (err)
		goto out;

	err = -ENOMEM;
	map_ptrs = calloc(w.nmaps + 1, sizeof(*map_ptrs));
	func_ptrs = calloc(w.nfuncs + 1, sizeof(*func_ptrs));
	if (!map_ptrs || !func_ptrs)
		goto out;
	for (size_t i = 0; i < w.nmaps; i++)
		map_ptrs[i] = &w.maps[i];
	for (size_t i = 0; i < w.nfuncs; i++)
		func_ptrs[i] = &w.funcs[i];
	for (size_t i = 0; i < nv; i++) {
		const struct ap_value_type *vt = ap_profile_value_type(p, i);

		vtypes[i] = vinit;
		vtypes[i].type = vt->type;
		vtypes[i].unit = vt->unit;
		vtype_ptrs[i] = &vtypes[i];
	}

	msg.n_sample_type = nv;
	msg.sample_type = vtype_ptrs;
	msg.n_sample = ws.n;
	msg.sample = ws.ptrs;
	msg.n_mapping = w.nmaps;
	msg.mapping = map_ptrs;
	msg.n_location = nframes;
	msg.location = loc_ptrs;
	msg.n_function = w.nfuncs;
	msg.function = func_ptrs;
	msg.n_string_table = w.nstrs;
	msg.string_table = w.strs;
	msg.time_nanos = (int64_t)ap_profile_start_ns(p);
	msg.duration_nanos = (int64_t)ap_profile_duration_ns(p);
	if (pt->type || pt->unit || ap_profile_period(p)) {
		period_type.type = pt->type;
		period_type.unit = pt->unit;
		msg.period_type = &period_type;
	}
	msg.period = (int64_t)ap_profile_period(p);
	msg.n_comment = ncomments;
	msg.comment = comments;
	if (nv)
		msg.default_sample_type = vtypes[ap_profile_default_value(p)].type;

	err = wr_emit(&msg, out);
out:
	free(comments);
	free(map_ptrs);
	free(func_ptrs);
	wr_samples_free(&ws);
	free(line_ptrs);
	free(lines);
	free(loc_ptrs);
	free(locs);
	free(w.frame_map);
	map_free(&w.func_idx);
	free(w.funcs);
	map_free(&w.synth);
	free(w.maps);
	for (size_t i = w.nprof_strs; i < w.nstrs; i++)
		free(w.strs[i]);
	free(w.strs);
	return err;
}

/* ======================================================================================== */
/* Reader                                                                                   */
/* ======================================================================================== */

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static uint32_t le32(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Inflates one or more concatenated gzip members into *out (caller frees). */
static int gunzip(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen, char *err,
		  size_t errlen)
{
	z_stream zs = {0};
	uint8_t *data = NULL, *n;
	size_t cap, have = 0, fed = 0;
	uint32_t claim = len >= 18 ? le32(buf + len - 4) : 0;
	int rc, ret;

	/* The trailer holds the (last member's) size mod 2^32. An honest claim over the limit
	 * is a file we would reject anyway, a dishonest one is corrupt: refuse both before
	 * inflating anything. A small claim is only an allocation hint. */
	if (claim > PPROF_MAX_DECOMPRESSED)
		return fail(err, errlen,
			    "pprof: gzip trailer claims %u bytes uncompressed: over the %llu byte "
			    "limit, or not a complete gzip file",
			    claim, (unsigned long long)PPROF_MAX_DECOMPRESSED);
	cap = claim && claim / 1100 <= len ? (size_t)claim + 1 : len * 4;
	if (cap < 4096)
		cap = 4096;
	if (cap > PPROF_MAX_DECOMPRESSED)
		cap = PPROF_MAX_DECOMPRESSED;
	data = malloc(cap);
	if (!data || inflateInit2(&zs, 15 + 16) != Z_OK) {
		free(data);
		return -ENOMEM;
	}
	for (;;) {
		if (!zs.avail_in && fed < len) {
			zs.next_in = (Bytef *)(buf + fed);
			zs.avail_in = len - fed > ZCHUNK ? ZCHUNK : (uInt)(len - fed);
			fed += zs.avail_in;
		}
		if (have == cap) {
			if (cap >= PPROF_MAX_DECOMPRESSED) {
				ret = fail(err, errlen,
					   "pprof: decompressed data exceeds the %llu byte limit",
					   (unsigned long long)PPROF_MAX_DECOMPRESSED);
				goto out;
			}
			cap = cap * 2 > PPROF_MAX_DECOMPRESSED ? PPROF_MAX_DECOMPRESSED : cap * 2;
			n = realloc(data, cap);
			if (!n) {
				ret = -ENOMEM;
				goto out;
			}
			data = n;
		}
		zs.next_out = data + have;
		zs.avail_out = cap - have > ZCHUNK ? ZCHUNK : (uInt)(cap - have);
		rc = inflate(&zs, Z_NO_FLUSH);
		have = (size_t)(zs.next_out - data);
		if (rc == Z_STREAM_END) {
			size_t used = fed - zs.avail_in;

			if (used == len)
				break;
			if (len - used >= 2 && buf[used] == 0x1f && buf[used + 1] == 0x8b) {
				inflateReset(&zs);
				continue;
			}
			ret = fail(err, errlen,
				   "pprof: trailing garbage after gzip data at byte %zu", used);
			goto out;
		}
		if (rc == Z_MEM_ERROR) {
			ret = -ENOMEM;
			goto out;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			ret = fail(err, errlen, "pprof: corrupt gzip data near byte %zu: %s",
				   fed - zs.avail_in, zs.msg ? zs.msg : "inflate failed");
			goto out;
		}
		if (!zs.avail_in && fed == len && zs.avail_out) {
			ret = fail(err, errlen, "pprof: truncated gzip data (%zu bytes)", len);
			goto out;
		}
	}
	*out = data;
	*outlen = have;
	data = NULL;
	ret = 0;
out:
	inflateEnd(&zs);
	free(data);
	return ret;
}

struct rd_map {
	uint32_t model_id; /* 0 for synthetic (empty range) mappings */
	uint32_t module;
	uint32_t kind;
};

struct rd_func {
	uint32_t name, file;
};

struct reader {
	const Perftools__Profiles__Profile *m;
	struct ap_profile *p;
	char *err;
	size_t errlen;
	uint32_t *strid; /* pprof string index -> model string id, 0 = not interned yet */
	struct rd_map *maps;
	struct u64map map_idx;
	struct rd_func *funcs;
	struct u64map func_idx;
	uint32_t *frames; /* frames of location i: frames[loc_off[i] .. loc_off[i+1]) */
	size_t *loc_off;
	struct u64map loc_idx;
	uint32_t *stack;
	size_t cap_stack;
	uint64_t labels_dropped;
};

static bool rd_str_ok(const struct reader *r, int64_t idx)
{
	return idx >= 0 && (uint64_t)idx < r->m->n_string_table;
}

/* Model string id of pprof string `idx` (range-checked by the caller). */
static int rd_str(struct reader *r, int64_t idx, uint32_t *out)
{
	uint32_t id = r->strid[idx];

	if (!id && idx) {
		id = ap_profile_intern(r->p, r->m->string_table[idx]);
		if (id == UINT32_MAX)
			return -ENOMEM;
		r->strid[idx] = id;
	}
	*out = id;
	return 0;
}

static bool rd_kernel_mapping(const char *name, uint64_t start, uint64_t limit)
{
	static const char *const user[] = {"[vdso]",  "[vsyscall]", "[vvar]",	"[heap]",
					   "[stack]", "[uprobes]",  "[unknown]"};
	size_t len = strlen(name);

	if (strncmp(name, PPROF_KERNEL_MAPPING, strlen(PPROF_KERNEL_MAPPING)) == 0)
		return true;
	/* otherwise only the synthetic, range-less "[module]" mappings this writer emits */
	if (start || limit || len < 3 || name[0] != '[' || name[len - 1] != ']')
		return false;
	if (strncmp(name, "[anon", 5) == 0 || strncmp(name, "[stack:", 7) == 0)
		return false;
	for (size_t i = 0; i < sizeof(user) / sizeof(user[0]); i++)
		if (strcmp(name, user[i]) == 0)
			return false;
	return true;
}

static int rd_header(struct reader *r)
{
	const Perftools__Profiles__Profile *m = r->m;
	const Perftools__Profiles__ValueType *pt = m->period_type;
	int err;

	if (m->n_sample_type > AP_MAX_VALUES)
		return fail(r->err, r->errlen, "pprof: %zu sample types, at most %d supported",
			    m->n_sample_type, AP_MAX_VALUES);
	for (size_t i = 0; i < m->n_sample_type; i++) {
		const Perftools__Profiles__ValueType *vt = m->sample_type[i];

		if (!rd_str_ok(r, vt->type) || !rd_str_ok(r, vt->unit))
			return fail(r->err, r->errlen,
				    "pprof: sample_type %zu: string index out of range", i);
		err = ap_profile_add_value_type(r->p, m->string_table[vt->type],
						m->string_table[vt->unit]);
		if (err)
			return err;
	}
	if (pt && (!rd_str_ok(r, pt->type) || !rd_str_ok(r, pt->unit)))
		return fail(r->err, r->errlen, "pprof: period_type: string index out of range");
	if (!rd_str_ok(r, m->drop_frames) || !rd_str_ok(r, m->keep_frames) ||
	    !rd_str_ok(r, m->default_sample_type))
		return fail(r->err, r->errlen, "pprof: string index out of range in the header");
	if (m->period < 0 || m->time_nanos < 0 || m->duration_nanos < 0)
		return fail(r->err, r->errlen, "pprof: negative period, time or duration");
	/* the default sample type names one of the value types; keep it as the default weight */
	for (size_t i = 0; m->default_sample_type && i < m->n_sample_type; i++)
		if (m->sample_type[i]->type == m->default_sample_type)
			ap_profile_set_default_value(r->p, i);
	if (pt || m->period)
		ap_profile_set_period(r->p, pt ? m->string_table[pt->type] : "",
				      pt ? m->string_table[pt->unit] : "", (uint64_t)m->period);
	ap_profile_set_time(r->p, (uint64_t)m->time_nanos, (uint64_t)m->duration_nanos);

	for (size_t i = 0; i < m->n_comment; i++) {
		const char *c, *eq;
		bool is_stat = false;
		char *key;
		uint64_t v = 0;

		if (!rd_str_ok(r, m->comment[i]))
			return fail(r->err, r->errlen,
				    "pprof: comment %zu: string index out of range", i);
		c = m->string_table[m->comment[i]];
		/* comments that are not ours are free text for humans: skip them */
		if (strncmp(c, "stat ", 5) == 0) {
			c += 5;
			eq = strrchr(c, '=');
			if (!eq || eq == c || ap_parse_u64(eq + 1, 0, UINT64_MAX, &v))
				continue;
			is_stat = true;
		} else if (strncmp(c, "meta ", 5) == 0) {
			c += 5;
			eq = strchr(c, '=');
			if (!eq || eq == c)
				continue;
		} else {
			continue;
		}
		key = strndup(c, (size_t)(eq - c));
		if (!key)
			return -ENOMEM;
		if (is_stat)
			err = ap_profile_set_stat(r->p, key, v);
		else
			err = ap_profile_set_meta(r->p, key, eq + 1);
		free(key);
		if (err)
			return err;
	}
	return 0;
}

static int rd_mappings(struct reader *r)
{
	const Perftools__Profiles__Profile *m = r->m;
	int err;

	r->maps = calloc(m->n_mapping + 1, sizeof(*r->maps));
	if (!r->maps)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_mapping; i++) {
		const Perftools__Profiles__Mapping *mm = m->mapping[i];
		struct rd_map *rm = &r->maps[i];
		const char *name, *base;

		if (!mm->id)
			return fail(r->err, r->errlen, "pprof: mapping %zu has id 0", i);
		if (!rd_str_ok(r, mm->filename) || !rd_str_ok(r, mm->build_id))
			return fail(r->err, r->errlen,
				    "pprof: mapping %llu: string index out of range",
				    (unsigned long long)mm->id);
		err = map_put(&r->map_idx, mm->id, (uint32_t)i);
		if (err == -EEXIST)
			return fail(r->err, r->errlen, "pprof: duplicate mapping id %llu",
				    (unsigned long long)mm->id);
		if (err)
			return err;
		name = m->string_table[mm->filename];
		base = strrchr(name, '/');
		base = base && base[1] ? base + 1 : name;
		rm->module = ap_profile_intern(r->p, base);
		if (rm->module == UINT32_MAX)
			return -ENOMEM;
		rm->kind = rd_kernel_mapping(name, mm->memory_start, mm->memory_limit)
			       ? AP_FRAME_KERNEL
			       : AP_FRAME_USER;
		/* range-less mappings only name a module (see the top of this file) */
		if (mm->memory_start || mm->memory_limit) {
			struct ap_mapping am = {0};

			am.start = mm->memory_start;
			am.limit = mm->memory_limit;
			am.offset = mm->file_offset;
			if ((err = rd_str(r, mm->filename, &am.file)) ||
			    (err = rd_str(r, mm->build_id, &am.build_id)))
				return err;
			rm->model_id = ap_profile_add_mapping(r->p, &am);
			if (rm->model_id == UINT32_MAX)
				return -ENOMEM;
		}
	}
	return 0;
}

static int rd_functions(struct reader *r)
{
	const Perftools__Profiles__Profile *m = r->m;
	int err;

	r->funcs = calloc(m->n_function + 1, sizeof(*r->funcs));
	if (!r->funcs)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_function; i++) {
		const Perftools__Profiles__Function *f = m->function[i];
		int64_t name;

		if (!f->id)
			return fail(r->err, r->errlen, "pprof: function %zu has id 0", i);
		if (!rd_str_ok(r, f->name) || !rd_str_ok(r, f->system_name) ||
		    !rd_str_ok(r, f->filename))
			return fail(r->err, r->errlen,
				    "pprof: function %llu: string index out of range",
				    (unsigned long long)f->id);
		err = map_put(&r->func_idx, f->id, (uint32_t)i);
		if (err == -EEXIST)
			return fail(r->err, r->errlen, "pprof: duplicate function id %llu",
				    (unsigned long long)f->id);
		if (err)
			return err;
		name = m->string_table[f->name][0] ? f->name : f->system_name;
		if (!m->string_table[name][0])
			r->funcs[i].name = ap_profile_intern(r->p, PPROF_UNKNOWN);
		else if ((err = rd_str(r, name, &r->funcs[i].name)))
			return err;
		if (r->funcs[i].name == UINT32_MAX)
			return -ENOMEM;
		err = rd_str(r, f->filename, &r->funcs[i].file);
		if (err)
			return err;
	}
	return 0;
}

/* Every location becomes one frame per Line (innermost first, like the model's leaf-first
 * stacks), or a single "[unknown]" frame when it has no Line. */
static int rd_locations(struct reader *r)
{
	const Perftools__Profiles__Profile *m = r->m;
	size_t total = 0, k = 0;
	uint32_t unknown = ap_profile_intern(r->p, PPROF_UNKNOWN);
	int err;

	if (unknown == UINT32_MAX)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_location; i++)
		total += m->location[i]->n_line ? m->location[i]->n_line : 1;
	r->frames = calloc(total + 1, sizeof(*r->frames));
	r->loc_off = calloc(m->n_location + 1, sizeof(*r->loc_off));
	if (!r->frames || !r->loc_off)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_location; i++) {
		const Perftools__Profiles__Location *l = m->location[i];
		const struct rd_map *rm = NULL;
		struct ap_frame f = {0};
		uint32_t idx;

		if (!l->id)
			return fail(r->err, r->errlen, "pprof: location %zu has id 0", i);
		err = map_put(&r->loc_idx, l->id, (uint32_t)i);
		if (err == -EEXIST)
			return fail(r->err, r->errlen, "pprof: duplicate location id %llu",
				    (unsigned long long)l->id);
		if (err)
			return err;
		if (l->mapping_id) {
			if (!map_get(&r->map_idx, l->mapping_id, &idx))
				return fail(r->err, r->errlen,
					    "pprof: location %llu: mapping id %llu does not exist",
					    (unsigned long long)l->id,
					    (unsigned long long)l->mapping_id);
			rm = &r->maps[idx];
		}
		f.addr = l->address;
		f.mapping = rm ? rm->model_id : 0;
		f.module = rm ? rm->module : 0;
		f.kind = rm ? rm->kind : AP_FRAME_USER;
		f.name = unknown;
		r->loc_off[i] = k;
		if (!l->n_line) {
			r->frames[k] = ap_profile_add_frame(r->p, &f);
			if (r->frames[k++] == UINT32_MAX)
				return -ENOMEM;
		}
		for (size_t j = 0; j < l->n_line; j++) {
			const Perftools__Profiles__Line *ln = l->line[j];

			f.name = unknown;
			f.file = 0;
			if (ln->function_id) {
				if (!map_get(&r->func_idx, ln->function_id, &idx))
					return fail(
					    r->err, r->errlen,
					    "pprof: location %llu: function id %llu does not "
					    "exist",
					    (unsigned long long)l->id,
					    (unsigned long long)ln->function_id);
				f.name = r->funcs[idx].name;
				f.file = r->funcs[idx].file;
			}
			f.line = ln->line > 0 && ln->line <= UINT32_MAX ? (uint32_t)ln->line : 0;
			r->frames[k] = ap_profile_add_frame(r->p, &f);
			if (r->frames[k++] == UINT32_MAX)
				return -ENOMEM;
		}
	}
	r->loc_off[m->n_location] = k;
	return 0;
}

static int rd_labels(struct reader *r, size_t si, const Perftools__Profiles__Sample *s,
		     struct ap_sample *as)
{
	const Perftools__Profiles__Profile *m = r->m;
	struct ap_label labels[AP_MAX_LABELS];
	size_t n = 0;
	int err;

	for (size_t j = 0; j < s->n_label; j++) {
		const Perftools__Profiles__Label *l = s->label[j];
		const char *key;

		if (!rd_str_ok(r, l->key) || !rd_str_ok(r, l->str) || !rd_str_ok(r, l->num_unit))
			return fail(r->err, r->errlen,
				    "pprof: sample %zu: label string index out of range", si);
		key = m->string_table[l->key];
		if (!l->str && (strcmp(key, "pid") == 0 || strcmp(key, "tid") == 0)) {
			if (l->num < 0 || l->num > UINT32_MAX)
				return fail(r->err, r->errlen, "pprof: sample %zu: bad %s %lld", si,
					    key, (long long)l->num);
			if (key[0] == 'p')
				as->pid = (uint32_t)l->num;
			else
				as->tid = (uint32_t)l->num;
			continue;
		}
		if (l->str && strcmp(key, "comm") == 0) {
			err = rd_str(r, l->str, &as->comm);
			if (err)
				return err;
			continue;
		}
		if (n == AP_MAX_LABELS) {
			r->labels_dropped++;
			continue;
		}
		memset(&labels[n], 0, sizeof(labels[n]));
		if ((err = rd_str(r, l->key, &labels[n].key)) ||
		    (err = rd_str(r, l->str, &labels[n].str)) ||
		    (err = rd_str(r, l->num_unit, &labels[n].num_unit)))
			return err;
		labels[n].num = l->num;
		n++;
	}
	as->labels = ap_profile_add_labels(r->p, labels, n);
	return as->labels == UINT32_MAX ? -ENOMEM : 0;
}

static int rd_samples(struct reader *r)
{
	const Perftools__Profiles__Profile *m = r->m;
	uint64_t total = 0;
	int err;

	for (size_t i = 0; i < m->n_sample; i++) {
		const Perftools__Profiles__Sample *s = m->sample[i];
		struct ap_sample as = {0};
		size_t depth = 0;

		if (s->n_value != m->n_sample_type)
			return fail(r->err, r->errlen,
				    "pprof: sample %zu has %zu values, sample_type has %zu", i,
				    s->n_value, m->n_sample_type);
		for (size_t v = 0; v < s->n_value; v++) {
			if (s->value[v] < 0)
				return fail(r->err, r->errlen,
					    "pprof: sample %zu: negative value %lld", i,
					    (long long)s->value[v]);
			as.values[v] = (uint64_t)s->value[v];
		}
		for (size_t j = 0; j < s->n_location_id; j++) {
			uint32_t li;
			size_t off, n;

			if (!map_get(&r->loc_idx, s->location_id[j], &li))
				return fail(r->err, r->errlen,
					    "pprof: sample %zu: location id %llu does not exist", i,
					    (unsigned long long)s->location_id[j]);
			off = r->loc_off[li];
			n = r->loc_off[li + 1] - off;
			if (depth + n > PPROF_MAX_DEPTH)
				return fail(r->err, r->errlen,
					    "pprof: sample %zu: stack deeper than %d frames", i,
					    PPROF_MAX_DEPTH);
			if (grow_array((void **)&r->stack, &r->cap_stack, depth + n,
				       sizeof(*r->stack)))
				return -ENOMEM;
			memcpy(&r->stack[depth], &r->frames[off], n * sizeof(*r->stack));
			depth += n;
		}
		total += depth;
		if (total > PPROF_MAX_TOTAL_FRAMES)
			return fail(r->err, r->errlen,
				    "pprof: samples expand to more than %llu frames",
				    (unsigned long long)PPROF_MAX_TOTAL_FRAMES);
		err = rd_labels(r, i, s, &as);
		if (err)
			return err;
		as.stack = ap_profile_add_stack(r->p, r->stack, depth);
		if (as.stack == UINT32_MAX)
			return -ENOMEM;
		err = ap_profile_add_sample(r->p, &as);
		if (err)
			return err;
	}
	if (r->labels_dropped)
		return ap_profile_set_stat(r->p, "pprof_labels_dropped", r->labels_dropped);
	return 0;
}

int ap_read_pprof(const void *buf, size_t len, struct ap_profile *p, char *err, size_t errlen)
{
	Perftools__Profiles__Profile *m = NULL;
	struct reader r = {0};
	const uint8_t *b = buf;
	uint8_t *raw = NULL;
	size_t rawlen = len;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!buf || !len)
		return fail(err, errlen, "pprof: empty input");
	if (ap_profile_nvalues(p) || ap_profile_nsamples(p))
		return fail(err, errlen, "pprof: the destination profile is not empty");
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
		ret = gunzip(b, len, &raw, &rawlen, err, errlen);
		if (ret)
			return ret;
		b = raw;
	} else if (len > PPROF_MAX_DECOMPRESSED) {
		return fail(err, errlen, "pprof: %zu bytes, over the %llu byte limit", len,
			    (unsigned long long)PPROF_MAX_DECOMPRESSED);
	}
	m = perftools__profiles__profile__unpack(NULL, rawlen, b);
	if (!m) {
		/* protobuf-c says no more than that; allocation failure looks the same */
		ret = fail(err, errlen,
			   "pprof: %zu bytes are not a valid profile.proto message "
			   "(protobuf decoding failed)",
			   rawlen);
		goto out;
	}
	/* pprof requires string_table[0] == "" */
	if (!m->n_string_table || m->string_table[0][0]) {
		ret = fail(err, errlen, "pprof: string table does not start with \"\"");
		goto out;
	}
	r.m = m;
	r.p = p;
	r.err = err;
	r.errlen = errlen;
	r.strid = calloc(m->n_string_table, sizeof(*r.strid));
	if (!r.strid) {
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = rd_header(&r)) || (ret = rd_mappings(&r)) || (ret = rd_functions(&r)) ||
	    (ret = rd_locations(&r)) || (ret = rd_samples(&r)))
		goto out;
out:
	if (ret == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "pprof: out of memory");
	free(r.stack);
	map_free(&r.loc_idx);
	free(r.loc_off);
	free(r.frames);
	map_free(&r.func_idx);
	free(r.funcs);
	map_free(&r.map_idx);
	free(r.maps);
	free(r.strid);
	if (m)
		perftools__profiles__profile__free_unpacked(m, NULL);
	free(raw);
	return ret;
}
