// SPDX-License-Identifier: MIT
/*
 * pprof (profile.proto) writer and reader.
 *
 * How the model maps onto pprof:
 * - String table: the profile's own strings keep their ids (both tables have "" at 0); the few
 *   strings pprof needs that the profile lacks (label keys, comments) are appended.
 * - One Location per machine frame: a frame with its own address has one Line; a run of
 *   AP_FRAME_INLINED frames and the frame they are inlined into (same address and mapping)
 *   share one Location with one Line each, innermost first, the physical function last, as
 *   pprof orders them. Locations are the distinct runs the samples use, numbered from 1 in
 *   order of first use. A lone unresolved frame ("[unknown]") gets no Line, which is how
 *   pprof marks a location it may symbolize itself from the mapping's file and build-id.
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
#include "pprof_internal.h"

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

	/* Scratch profile whose stack table interns the frame runs of Locations exactly:
	 * stack id i is the run of location id i + 1. */
	struct ap_profile *runs;

	/* Limits the reader enforces, applied here so every file written reads back: stacks
	 * cut to AP_FORMAT_MAX_STACK_DEPTH (root side dropped) and values above pprof's int64
	 * clamped, both counted in "stat" comments. */
	uint64_t stacks_truncated, values_clamped;
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
	if (ap_grow_array((void **)&w->strs, &w->cap_strs, w->nstrs + 1, sizeof(*w->strs)))
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
	if (ap_grow_array((void **)&w->strs, &w->cap_strs, w->nstrs + 1, sizeof(*w->strs))) {
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

	if (ap_grow_array((void **)&w->maps, &w->cap_maps, w->nmaps + 1, sizeof(*w->maps)))
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
	if (ap_pprof_map_get(&w->synth, key, &id)) {
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
	return ap_pprof_map_put(&w->synth, key, (uint32_t)m->id);
}

static int wr_function(struct writer *w, const struct ap_frame *f, uint64_t *out)
{
	Perftools__Profiles__Function init = PERFTOOLS__PROFILES__FUNCTION__INIT;
	uint64_t key = ((uint64_t)f->name << 32) | f->file;
	uint32_t id;

	if (ap_pprof_map_get(&w->func_idx, key, &id)) {
		*out = id;
		return 0;
	}
	if (ap_grow_array((void **)&w->funcs, &w->cap_funcs, w->nfuncs + 1, sizeof(*w->funcs)))
		return -ENOMEM;
	init.id = w->nfuncs + 1;
	init.name = f->name;
	init.system_name = f->name;
	init.filename = f->file;
	w->funcs[w->nfuncs++] = init;
	*out = init.id;
	return ap_pprof_map_put(&w->func_idx, key, (uint32_t)init.id);
}

/* Whether frame a is inlined into b, its caller in the stack: one machine frame. A flagged frame
 * whose caller was cut away or differs (a hand-built or filtered stack) stands alone. */
static bool inlined_into(const struct ap_frame *a, const struct ap_frame *b)
{
	return (a->flags & AP_FRAME_INLINED) && a->addr == b->addr && a->mapping == b->mapping &&
	       a->module == b->module && a->kind == b->kind;
}

/* Length of the run of frames from stack[i] that makes one Location. */
static size_t run_len(const struct ap_profile *p, const uint32_t *stack, size_t n, size_t i)
{
	size_t j = i;

	while (j + 1 < n &&
	       inlined_into(ap_profile_frame(p, stack[j]), ap_profile_frame(p, stack[j + 1])))
		j++;
	return j - i + 1;
}

/* Location id of a run, numbering it when it is new. */
static int wr_location_id(struct writer *w, const uint32_t *run, size_t n, uint64_t *out)
{
	uint32_t id = ap_profile_add_stack(w->runs, run, n);

	if (id == UINT32_MAX)
		return -ENOMEM;
	*out = (uint64_t)id + 1;
	return 0;
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
	if (!err)
		err = ap_stream_status(out);
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
		if (n > AP_FORMAT_MAX_STACK_DEPTH) {
			/* keep the leaf side, as perf does: it is where the time is spent */
			n = AP_FORMAT_MAX_STACK_DEPTH;
			w->stacks_truncated++;
		}
		m->location_id = &ws->locs[lo];
		for (size_t j = 0, len; j < n; j += len) {
			len = run_len(p, stack, n, j);
			err = wr_location_id(w, stack + j, len, &ws->locs[lo++]);
			if (err)
				return err;
		}
		m->n_location_id = (size_t)(&ws->locs[lo] - m->location_id);
		m->value = &ws->vals[k * nv];
		m->n_value = nv;
		for (size_t v = 0; v < nv; v++) {
			if (s->values[v] > INT64_MAX)
				w->values_clamped++;
			m->value[v] = s->values[v] > INT64_MAX ? INT64_MAX : (int64_t)s->values[v];
		}

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

/* Location messages for the runs wr_samples() numbered, with their Lines. */
struct wr_locs {
	Perftools__Profiles__Location *locs;
	Perftools__Profiles__Location **ptrs;
	Perftools__Profiles__Line *lines;
	Perftools__Profiles__Line **line_ptrs;
	size_t n;
};

static void wr_locs_free(struct wr_locs *wl)
{
	free(wl->locs);
	free(wl->ptrs);
	free(wl->lines);
	free(wl->line_ptrs);
}

/* What pprof may expect of each mapping: it symbolizes only mappings that lack functions, so a
 * mapping with an unresolved location says so. */
static void wr_mapping_flags(struct writer *w, const struct wr_locs *wl)
{
	for (size_t i = 0; i < w->nmaps; i++) {
		Perftools__Profiles__Mapping *m = &w->maps[i];

		m->has_functions = m->has_filenames = m->has_line_numbers = 1;
	}
	for (uint32_t i = 0; i < wl->n; i++) {
		const Perftools__Profiles__Location *l = &wl->locs[i];
		Perftools__Profiles__Mapping *m;
		const uint32_t *run;
		size_t n;

		if (!l->mapping_id)
			continue;
		m = &w->maps[l->mapping_id - 1];
		run = ap_profile_stack(w->runs, i, &n);
		for (size_t j = 0; j < n; j++) {
			const struct ap_frame *f = ap_profile_frame(w->p, run[j]);

			if (f->name == w->unknown_id)
				m->has_functions = 0;
			if (!f->file)
				m->has_filenames = 0;
			if (!f->line)
				m->has_line_numbers = 0;
		}
	}
}

static int wr_locations(struct writer *w, struct wr_locs *wl)
{
	Perftools__Profiles__Location linit = PERFTOOLS__PROFILES__LOCATION__INIT;
	Perftools__Profiles__Line lninit = PERFTOOLS__PROFILES__LINE__INIT;
	size_t nlines = 0, li = 0, n;
	int err;

	wl->n = ap_profile_nstacks(w->runs);
	for (uint32_t i = 0; i < wl->n; i++) {
		ap_profile_stack(w->runs, i, &n);
		nlines += n;
	}
	wl->locs = calloc(wl->n + 1, sizeof(*wl->locs));
	wl->ptrs = calloc(wl->n + 1, sizeof(*wl->ptrs));
	wl->lines = calloc(nlines + 1, sizeof(*wl->lines));
	wl->line_ptrs = calloc(nlines + 1, sizeof(*wl->line_ptrs));
	if (!wl->locs || !wl->ptrs || !wl->lines || !wl->line_ptrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < wl->n; i++) {
		const uint32_t *run = ap_profile_stack(w->runs, i, &n);
		Perftools__Profiles__Location *l = &wl->locs[i];

		*l = linit;
		l->id = (uint64_t)i + 1;
		/* the frames of a run share address and mapping: the leaf speaks for all */
		l->address = ap_profile_frame(w->p, run[0])->addr;
		err = wr_frame_mapping(w, ap_profile_frame(w->p, run[0]), &l->mapping_id);
		if (err)
			return err;
		wl->ptrs[i] = l;
		l->line = &wl->line_ptrs[li];
		for (size_t j = 0; j < n; j++) {
			const struct ap_frame *f = ap_profile_frame(w->p, run[j]);
			Perftools__Profiles__Line *ln = &wl->lines[li];

			/* a lone unresolved frame gets no Line; inside a run it keeps its place
			 * with a Line whose function is named "[unknown]" */
			if (n == 1 && f->name == w->unknown_id)
				continue;
			*ln = lninit;
			ln->line = f->line;
			err = wr_function(w, f, &ln->function_id);
			if (err)
				return err;
			wl->line_ptrs[li++] = ln;
			l->n_line++;
		}
	}
	wr_mapping_flags(w, wl);
	return 0;
}

static int wr_comments(struct writer *w, int64_t **out, size_t *n)
{
	size_t nst = ap_profile_nstats(w->p), nmeta = ap_profile_nmeta(w->p);
	int64_t *c = calloc(nst + nmeta + 3, sizeof(*c));
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
	if (w->stacks_truncated && !err) {
		if (asprintf(&s, "stat pprof_stacks_truncated=%llu",
			     (unsigned long long)w->stacks_truncated) < 0)
			s = NULL;
		err = wr_str_take(w, s, &c[(*n)++]);
	}
	if (w->values_clamped && !err) {
		if (asprintf(&s, "stat pprof_values_clamped=%llu",
			     (unsigned long long)w->values_clamped) < 0)
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
	Perftools__Profiles__ValueType vtypes[AP_MAX_VALUES], *vtype_ptrs[AP_MAX_VALUES];
	Perftools__Profiles__ValueType period_type = vinit;
	Perftools__Profiles__Mapping **map_ptrs = NULL;
	Perftools__Profiles__Function **func_ptrs = NULL;
	struct wr_samples ws = {0};
	struct wr_locs wl = {0};
	struct writer w = {0};
	const struct ap_value_type *pt = ap_profile_period_type(p);
	size_t nv = ap_profile_nvalues(p);
	int64_t *comments = NULL;
	size_t ncomments = 0;
	int err = -ENOMEM;

	w.p = p;
	w.nprof_strs = ap_profile_nstrings(p);
	if (ap_grow_array((void **)&w.strs, &w.cap_strs, w.nprof_strs + 8, sizeof(*w.strs)))
		goto out;
	w.unknown_id = UINT32_MAX;
	for (size_t i = 0; i < w.nprof_strs; i++) {
		w.strs[i] = (char *)ap_profile_str(p, (uint32_t)i);
		if (w.unknown_id == UINT32_MAX && strcmp(w.strs[i], PPROF_UNKNOWN) == 0)
			w.unknown_id = (uint32_t)i;
	}
	w.nstrs = w.nprof_strs;

	w.runs = ap_profile_new();
	if (!w.runs)
		goto out;
	err = wr_mappings(&w);
	if (err)
		goto out;
	err = wr_samples(&w, &ws);
	if (err)
		goto out;
	err = wr_locations(&w, &wl);
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
	msg.n_location = wl.n;
	msg.location = wl.ptrs;
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
	wr_locs_free(&wl);
	ap_profile_free(w.runs);
	ap_pprof_map_free(&w.func_idx);
	free(w.funcs);
	ap_pprof_map_free(&w.synth);
	free(w.maps);
	for (size_t i = w.nprof_strs; i < w.nstrs; i++)
		free(w.strs[i]);
	free(w.strs);
	return err;
}
