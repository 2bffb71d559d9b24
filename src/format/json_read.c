// SPDX-License-Identifier: MIT
/*
 * Reader of Aperture's own JSON profile (docs/json-format.md), so `aperture report` takes back
 * what `--format json` wrote. Every id is range-checked against the arrays it names; ids are
 * renumbered by interning, so a document need not be in the writer's exact order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "lib/json_parse.h"

/* Bytes of parse tree per JSON value, at worst (node, literal copy, array growth). */
#define AP_JSON_READ_VALUE_COST 128

struct jr {
	struct ap_profile *p;
	char *err;
	size_t errlen;
	uint32_t *maps;	  /* JSON mapping id -> model id (index = JSON id) */
	size_t nmaps;	  /* entries in maps (max JSON id + 1) */
	uint32_t *frames; /* JSON frame index -> model frame id */
	size_t nframes;
	uint32_t *stacks; /* JSON stack index -> model stack id */
	size_t nstacks;
	uint32_t *scratch;
};

static int __attribute__((format(printf, 3, 4)))
jfail(struct jr *r, const struct ap_json *at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->err && r->errlen) {
		if (at)
			snprintf(r->err, r->errlen, "json: line %u, column %u: %s", at->line,
				 at->column, msg);
		else
			snprintf(r->err, r->errlen, "json: %s", msg);
	}
	return -EINVAL;
}

/* Member `key` of `obj` with type `t`; absent is allowed only when `optional`. */
static int member(struct jr *r, const struct ap_json *obj, const char *key, enum ap_json_type t,
		  bool optional, const struct ap_json **out)
{
	const struct ap_json *v = ap_json_get(obj, key);

	*out = v;
	if (!v)
		return optional ? 0 : jfail(r, obj, "missing \"%s\"", key);
	if (v->type != t)
		return jfail(r, v, "\"%s\" is a %s, expected a %s", key,
			     ap_json_type_name(v->type), ap_json_type_name(t));
	return 0;
}

static int get_u64(struct jr *r, const struct ap_json *obj, const char *key, bool optional,
		   uint64_t max, uint64_t *out)
{
	const struct ap_json *v = ap_json_get(obj, key);

	*out = 0;
	if (!v)
		return optional ? 0 : jfail(r, obj, "missing \"%s\"", key);
	if (ap_json_u64(v, out) || *out > max)
		return jfail(r, v, "\"%s\" is not an integer in 0..%llu", key,
			     (unsigned long long)max);
	return 0;
}

/* A string member interned into the model (absent = ""). */
static int get_str(struct jr *r, const struct ap_json *obj, const char *key, uint32_t *out)
{
	const struct ap_json *v;
	int err = member(r, obj, key, AP_JSON_STRING, true, &v);

	if (err)
		return err;
	*out = ap_profile_intern(r->p, v ? v->str : "");
	return *out == UINT32_MAX ? -ENOMEM : 0;
}

static const char *str_or_empty(const struct ap_json *obj, const char *key)
{
	const struct ap_json *v = ap_json_get(obj, key);

	return v && v->type == AP_JSON_STRING ? v->str : "";
}

static int rd_header(struct jr *r, const struct ap_json *root)
{
	const struct ap_json *v, *vts, *o;
	uint64_t ver, a, b;
	int err;

	if ((err = member(r, root, "format", AP_JSON_STRING, false, &v)))
		return err;
	if (strcmp(v->str, "aperture-profile") != 0)
		return jfail(r, v, "\"format\" is \"%.40s\", not \"aperture-profile\"", v->str);
	if ((err = get_u64(r, root, "version", false, UINT64_MAX, &ver)))
		return err;
	if (ver != 1)
		return jfail(r, ap_json_get(root, "version"),
			     "version %llu: this aperture reads version 1",
			     (unsigned long long)ver);
	if ((err = member(r, root, "meta", AP_JSON_OBJECT, true, &o)))
		return err;
	for (size_t i = 0; o && i < o->len; i++) {
		if (o->items[i].type != AP_JSON_STRING)
			return jfail(r, &o->items[i], "meta \"%.40s\" is not a string", o->keys[i]);
		if ((err = ap_profile_set_meta(r->p, o->keys[i], o->items[i].str)))
			return err;
	}
	if ((err = member(r, root, "stats", AP_JSON_OBJECT, true, &o)))
		return err;
	for (size_t i = 0; o && i < o->len; i++) {
		if (ap_json_u64(&o->items[i], &a))
			return jfail(r, &o->items[i], "stat \"%.40s\" is not an integer",
				     o->keys[i]);
		if ((err = ap_profile_set_stat(r->p, o->keys[i], a)))
			return err;
	}
	/* times and the period are int64 in pprof (and Go's time.Duration): larger ones are
	 * refused here rather than written as negative numbers */
	if ((err = get_u64(r, root, "start_ns", true, INT64_MAX, &a)) ||
	    (err = get_u64(r, root, "duration_ns", true, INT64_MAX, &b)))
		return err;
	ap_profile_set_time(r->p, a, b);
	if ((err = member(r, root, "period", AP_JSON_OBJECT, true, &o)))
		return err;
	if (o) {
		if ((err = get_u64(r, o, "value", true, INT64_MAX, &a)))
			return err;
		ap_profile_set_period(r->p, str_or_empty(o, "type"), str_or_empty(o, "unit"), a);
	}
	if ((err = member(r, root, "value_types", AP_JSON_ARRAY, false, &vts)))
		return err;
	if (vts->len > AP_MAX_VALUES)
		return jfail(r, vts, "%zu value types, at most %d supported", vts->len,
			     AP_MAX_VALUES);
	for (size_t i = 0; i < vts->len; i++) {
		if (vts->items[i].type != AP_JSON_OBJECT)
			return jfail(r, &vts->items[i], "value type is not an object");
		err = ap_profile_add_value_type(r->p, str_or_empty(&vts->items[i], "type"),
						str_or_empty(&vts->items[i], "unit"));
		if (err)
			return err;
	}
	/* added after version 1 first shipped: absent means the last value type */
	if ((err = get_u64(r, root, "default_value", true, UINT64_MAX, &a)))
		return err;
	if (ap_json_get(root, "default_value")) {
		if (a >= vts->len)
			return jfail(r, ap_json_get(root, "default_value"),
				     "default_value %llu names no value type",
				     (unsigned long long)a);
		ap_profile_set_default_value(r->p, (size_t)a);
	}
	return 0;
}

static int rd_mappings(struct jr *r, const struct ap_json *root)
{
	const struct ap_json *a;
	int err = member(r, root, "mappings", AP_JSON_ARRAY, true, &a);

	if (err || !a)
		return err;
	/* ids are 1..n in the writer's output; allow any order but no gaps beyond n */
	r->nmaps = a->len + 1;
	r->maps = calloc(r->nmaps, sizeof(*r->maps));
	if (!r->maps)
		return -ENOMEM;
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *m = &a->items[i];
		struct ap_mapping am = {0};
		uint64_t id;

		if (m->type != AP_JSON_OBJECT)
			return jfail(r, m, "mapping is not an object");
		if ((err = get_u64(r, m, "id", false, a->len, &id)))
			return err;
		if (!id || r->maps[id])
			return jfail(r, m, "mapping id %llu is 0 or a duplicate",
				     (unsigned long long)id);
		if ((err = get_u64(r, m, "start", true, UINT64_MAX, &am.start)) ||
		    (err = get_u64(r, m, "limit", true, UINT64_MAX, &am.limit)) ||
		    (err = get_u64(r, m, "offset", true, UINT64_MAX, &am.offset)) ||
		    (err = get_str(r, m, "file", &am.file)) ||
		    (err = get_str(r, m, "build_id", &am.build_id)))
			return err;
		r->maps[id] = ap_profile_add_mapping(r->p, &am);
		if (r->maps[id] == UINT32_MAX)
			return -ENOMEM;
	}
	return 0;
}

static int rd_frames(struct jr *r, const struct ap_json *root)
{
	const struct ap_json *a, *v;
	int err = member(r, root, "frames", AP_JSON_ARRAY, false, &a);

	if (err)
		return err;
	r->nframes = a->len;
	r->frames = calloc(a->len + 1, sizeof(*r->frames));
	if (!r->frames)
		return -ENOMEM;
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *fj = &a->items[i];
		struct ap_frame f = {0};
		uint64_t id, line, mapping;
		const char *kind;

		if (fj->type != AP_JSON_OBJECT)
			return jfail(r, fj, "frame is not an object");
		if ((err = get_u64(r, fj, "id", true, UINT64_MAX, &id)))
			return err;
		/* stacks refer to frames by index: an id elsewhere would be misread */
		if (ap_json_get(fj, "id") && id != i)
			return jfail(r, fj, "frame id %llu at index %zu", (unsigned long long)id,
				     i);
		if ((err = get_str(r, fj, "name", &f.name)) ||
		    (err = get_str(r, fj, "module", &f.module)) ||
		    (err = get_str(r, fj, "file", &f.file)) ||
		    (err = get_u64(r, fj, "addr", true, UINT64_MAX, &f.addr)) ||
		    (err = get_u64(r, fj, "rel_addr", true, UINT64_MAX, &f.rel_addr)) ||
		    (err = get_u64(r, fj, "line", true, UINT32_MAX, &line)) ||
		    (err = get_u64(r, fj, "mapping", true, UINT32_MAX, &mapping)))
			return err;
		if (mapping && (mapping >= r->nmaps || !r->maps[mapping]))
			return jfail(r, fj, "mapping %llu does not exist",
				     (unsigned long long)mapping);
		f.mapping = mapping ? r->maps[mapping] : 0;
		f.line = (uint32_t)line;
		kind = str_or_empty(fj, "kind");
		if (strcmp(kind, "kernel") == 0)
			f.kind = AP_FRAME_KERNEL;
		else if (!*kind || strcmp(kind, "user") == 0)
			f.kind = AP_FRAME_USER;
		else
			return jfail(r, fj, "kind \"%.40s\" is neither \"user\" nor \"kernel\"", kind);
		if ((err = member(r, fj, "inlined", AP_JSON_BOOL, true, &v)))
			return err;
		f.flags = v && v->boolean ? AP_FRAME_INLINED : 0;
		r->frames[i] = ap_profile_add_frame(r->p, &f);
		if (r->frames[i] == UINT32_MAX)
			return -ENOMEM;
	}
	return 0;
}

static int rd_stacks(struct jr *r, const struct ap_json *root)
{
	const struct ap_json *a;
	int err = member(r, root, "stacks", AP_JSON_ARRAY, false, &a);

	if (err)
		return err;
	r->nstacks = a->len;
	r->stacks = calloc(a->len + 1, sizeof(*r->stacks));
	r->scratch = calloc(AP_FORMAT_MAX_STACK_DEPTH, sizeof(*r->scratch));
	if (!r->stacks || !r->scratch)
		return -ENOMEM;
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *s = &a->items[i];

		if (s->type != AP_JSON_ARRAY)
			return jfail(r, s, "stack %zu is not an array", i);
		if (s->len > AP_FORMAT_MAX_STACK_DEPTH)
			return jfail(r, s, "stack %zu is deeper than %d frames", i,
				     AP_FORMAT_MAX_STACK_DEPTH);
		for (size_t j = 0; j < s->len; j++) {
			uint64_t id;

			if (ap_json_u64(&s->items[j], &id) || id >= r->nframes)
				return jfail(r, &s->items[j], "stack %zu: frame %zu does not exist",
					     i, j);
			r->scratch[j] = r->frames[id];
		}
		r->stacks[i] = ap_profile_add_stack(r->p, r->scratch, s->len);
		if (r->stacks[i] == UINT32_MAX)
			return -ENOMEM;
	}
	return 0;
}

static int rd_labels(struct jr *r, const struct ap_json *o, struct ap_sample *as)
{
	struct ap_label labels[AP_MAX_LABELS];
	int err;

	if (o->len > AP_MAX_LABELS)
		return jfail(r, o, "%zu labels, at most %d supported", o->len, AP_MAX_LABELS);
	for (size_t i = 0; i < o->len; i++) {
		const struct ap_json *v = &o->items[i];

		memset(&labels[i], 0, sizeof(labels[i]));
		labels[i].key = ap_profile_intern(r->p, o->keys[i]);
		if (labels[i].key == UINT32_MAX)
			return -ENOMEM;
		if (v->type == AP_JSON_STRING) {
			labels[i].str = ap_profile_intern(r->p, v->str);
			if (labels[i].str == UINT32_MAX)
				return -ENOMEM;
		} else if (v->type == AP_JSON_OBJECT) {
			if (ap_json_i64(ap_json_get(v, "value"), &labels[i].num))
				return jfail(r, v, "label \"%.40s\": bad \"value\"", o->keys[i]);
			if ((err = get_str(r, v, "unit", &labels[i].num_unit)))
				return err;
		} else if (ap_json_i64(v, &labels[i].num)) {
			return jfail(r, v, "label \"%.40s\" is not a string or integer",
				     o->keys[i]);
		}
	}
	as->labels = ap_profile_add_labels(r->p, labels, o->len);
	return as->labels == UINT32_MAX ? -ENOMEM : 0;
}

static int rd_samples(struct jr *r, const struct ap_json *root)
{
	size_t nv = ap_profile_nvalues(r->p);
	const struct ap_json *a, *vals, *labels;
	int err = member(r, root, "samples", AP_JSON_ARRAY, false, &a);

	if (err)
		return err;
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *s = &a->items[i];
		struct ap_sample as = {0};
		uint64_t stack, pid, tid;

		if (s->type != AP_JSON_OBJECT)
			return jfail(r, s, "sample %zu is not an object", i);
		if ((err = get_u64(r, s, "stack", false, UINT32_MAX, &stack)) ||
		    (err = get_u64(r, s, "pid", true, UINT32_MAX, &pid)) ||
		    (err = get_u64(r, s, "tid", true, UINT32_MAX, &tid)) ||
		    (err = get_str(r, s, "comm", &as.comm)) ||
		    (err = member(r, s, "values", AP_JSON_ARRAY, false, &vals)) ||
		    (err = member(r, s, "labels", AP_JSON_OBJECT, true, &labels)))
			return err;
		if (stack >= r->nstacks)
			return jfail(r, s, "sample %zu: stack %llu does not exist", i,
				     (unsigned long long)stack);
		if (vals->len != nv)
			return jfail(r, vals, "sample %zu has %zu values, value_types has %zu", i,
				     vals->len, nv);
		for (size_t v = 0; v < nv; v++)
			if (ap_json_u64(&vals->items[v], &as.values[v]))
				return jfail(r, &vals->items[v],
					     "sample %zu: value %zu is not an unsigned integer", i,
					     v);
		if (labels && (err = rd_labels(r, labels, &as)))
			return err;
		as.stack = r->stacks[stack];
		as.pid = (uint32_t)pid;
		as.tid = (uint32_t)tid;
		if ((err = ap_profile_add_sample(r->p, &as)))
			return err;
	}
	return 0;
}

int ap_read_json(const char *buf, size_t len, uint64_t max_mem, struct ap_profile *p, char *err,
		 size_t errlen)
{
	struct jr r = {.p = p, .err = err, .errlen = errlen};
	struct ap_json *root;
	size_t max_values;
	char msg[200];
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (ap_profile_nvalues(p) || ap_profile_nsamples(p))
		return jfail(&r, NULL, "the destination profile is not empty");
	/* the parse tree costs up to ~128 bytes a value (for 2 bytes of text): bound it by
	 * value count, the memory a hostile document can make us spend */
	if (!max_mem)
		max_mem = AP_FORMAT_MAX_INFLATED;
	max_values = (size_t)(max_mem / AP_JSON_READ_VALUE_COST);
	root = ap_json_parse_max(buf, len, max_values, msg, sizeof(msg));
	if (!root) {
		if (errno == ENOMEM)
			return -ENOMEM;
		if (strstr(msg, "more than") && strstr(msg, "values")) {
			char a[32];

			snprintf(err, errlen,
				 "json: more than %zu values would take over %s to parse; "
				 "refusing (raise with aperture report --max-size)",
				 max_values, ap_format_size(max_mem, a, sizeof(a)));
			return -EFBIG;
		}
		return jfail(&r, NULL, "%s", msg);
	}
	if (root->type != AP_JSON_OBJECT) {
		ret = jfail(&r, root, "the document is a %s, not an Aperture profile object",
			    ap_json_type_name(root->type));
		goto out;
	}
	if ((ret = rd_header(&r, root)) || (ret = rd_mappings(&r, root)) ||
	    (ret = rd_frames(&r, root)) || (ret = rd_stacks(&r, root)) ||
	    (ret = rd_samples(&r, root)))
		goto out;
out:
	if (ret == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "json: out of memory");
	free(r.scratch);
	free(r.stacks);
	free(r.frames);
	free(r.maps);
	ap_json_free(root);
	return ret;
}
