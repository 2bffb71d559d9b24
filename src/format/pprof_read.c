// SPDX-License-Identifier: MIT
/* pprof reader: validates every id and index, never trusts sizes. See pprof_write.c for how
 * the model maps onto pprof. */
#include "pprof_internal.h"
#include "lib/errbuf.h"

/* ======================================================================================== */
/* Reader                                                                                   */
/* ======================================================================================== */

/* a malformed profile: the reason into err, -EINVAL */
#define fail(err, errlen, ...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)

static uint32_t le32(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Inflates one or more concatenated gzip members into *buf (of *bufcap bytes, grown as needed:
 * the flat decoder reuses it from one profile to the next). */
int ap_pprof_gunzip(const uint8_t *buf, size_t len, uint64_t max, uint8_t **bufp,
		    size_t *bufcap, size_t *outlen, char *err, size_t errlen)
{
	z_stream zs = {0};
	uint8_t *data = *bufp, *n;
	size_t cap, have = 0, fed = 0;
	uint32_t claim = len >= 18 ? le32(buf + len - 4) : 0;
	int rc, ret;

	/* The trailer holds the (last member's) size mod 2^32. An honest claim over the limit
	 * is a file we would reject anyway, a dishonest one is corrupt: refuse both before
	 * inflating anything. A small claim is only an allocation hint. */
	if (claim > max) {
		char a[32], b[32];

		fail(err, errlen,
		     "pprof: gzip trailer says the data inflates to %s, beyond the %s limit; "
		     "refusing (raise with aperture report --max-size), or not a complete gzip "
		     "file",
		     ap_format_size(claim, a, sizeof(a)), ap_format_size(max, b, sizeof(b)));
		/* most often a truncated file whose last bytes are not a trailer: bad data */
		return -EINVAL;
	}
	cap = claim && claim / 1100 <= len ? (size_t)claim + 1 : len * 4;
	if (cap < 4096)
		cap = 4096;
	if (cap > max)
		cap = (size_t)max;
	if (*bufcap >= cap) {
		cap = *bufcap < max ? *bufcap : (size_t)max; /* a bomb still stops at max */
	} else {
		data = realloc(data, cap);
		if (!data)
			return -ENOMEM;
		*bufp = data;
		*bufcap = cap;
	}
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	for (;;) {
		if (!zs.avail_in && fed < len) {
			zs.next_in = (Bytef *)(buf + fed);
			zs.avail_in = len - fed > ZCHUNK ? ZCHUNK : (uInt)(len - fed);
			fed += zs.avail_in;
		}
		if (have == cap) {
			/* a gzip bomb (1000:1) must cost at most `max` bytes of memory */
			if (cap >= max) {
				char a[32];

				fail(err, errlen,
				     "pprof: gzip data inflates beyond %s; refusing (raise with "
				     "aperture report --max-size)",
				     ap_format_size(max, a, sizeof(a)));
				ret = -EFBIG;
				goto out;
			}
			cap = cap * 2 > max ? (size_t)max : cap * 2;
			n = realloc(data, cap);
			if (!n) {
				ret = -ENOMEM;
				goto out;
			}
			data = n;
			*bufp = data;
			*bufcap = cap;
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
	*outlen = have;
	ret = 0;
out:
	inflateEnd(&zs);
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

bool ap_pprof_kernel_mapping(const char *name, uint64_t start, uint64_t limit)
{
	static const char *const user[] = {"[vdso]",  "[vsyscall]", "[vvar]",	"[heap]",
					   "[stack]", "[uprobes]",  "[unknown]",
					   "[gpu]" /* the GPU mode's kernel leaves */};
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
		err = ap_pprof_map_put(&r->map_idx, mm->id, (uint32_t)i);
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
		rm->kind = ap_pprof_kernel_mapping(name, mm->memory_start, mm->memory_limit)
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
		err = ap_pprof_map_put(&r->func_idx, f->id, (uint32_t)i);
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
 * stacks), all but the last flagged AP_FRAME_INLINED, or a single "[unknown]" frame when it
 * has no Line. */
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
		err = ap_pprof_map_put(&r->loc_idx, l->id, (uint32_t)i);
		if (err == -EEXIST)
			return fail(r->err, r->errlen, "pprof: duplicate location id %llu",
				    (unsigned long long)l->id);
		if (err)
			return err;
		if (l->mapping_id) {
			if (!ap_pprof_map_get(&r->map_idx, l->mapping_id, &idx))
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
				if (!ap_pprof_map_get(&r->func_idx, ln->function_id, &idx))
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
			f.flags = j + 1 < l->n_line ? AP_FRAME_INLINED : 0;
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
		if ((err = rd_str(r, l->key, &labels[n].key)))
			return err;
		/* a key twice in one sample has no meaning in the model, and the JSON writer
		 * would emit an object with a duplicate key no strict reader takes: keep the
		 * first, count the rest */
		for (size_t k = 0; k < n; k++) {
			if (labels[k].key == labels[n].key) {
				r->labels_dropped++;
				labels[n].key = UINT32_MAX;
				break;
			}
		}
		if (labels[n].key == UINT32_MAX)
			continue;
		if ((err = rd_str(r, l->str, &labels[n].str)) ||
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

			if (!ap_pprof_map_get(&r->loc_idx, s->location_id[j], &li))
				return fail(r->err, r->errlen,
					    "pprof: sample %zu: location id %llu does not exist", i,
					    (unsigned long long)s->location_id[j]);
			off = r->loc_off[li];
			n = r->loc_off[li + 1] - off;
			if (depth + n > PPROF_MAX_DEPTH)
				return fail(r->err, r->errlen,
					    "pprof: sample %zu: stack deeper than %d frames", i,
					    PPROF_MAX_DEPTH);
			if (ap_grow_array((void **)&r->stack, &r->cap_stack, depth + n,
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
	return ap_read_pprof_limited(buf, len, 0, p, err, errlen);
}

int ap_read_pprof_limited(const void *buf, size_t len, uint64_t max_inflated,
			  struct ap_profile *p, char *err, size_t errlen)
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
	if (!max_inflated)
		max_inflated = PPROF_MAX_DECOMPRESSED;
	if (max_inflated > SIZE_MAX / 2)
		max_inflated = SIZE_MAX / 2;
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
		size_t rawcap = 0;

		ret = ap_pprof_gunzip(b, len, max_inflated, &raw, &rawcap, &rawlen, err, errlen);
		if (ret) {
			free(raw);
			return ret;
		}
		b = raw;
	} else if (len > max_inflated) {
		char a[32];

		fail(err, errlen,
		     "pprof: %zu bytes of protobuf, over the %s limit; refusing (raise with "
		     "aperture report --max-size)",
		     len, ap_format_size(max_inflated, a, sizeof(a)));
		return -EFBIG;
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
	ap_pprof_map_free(&r.loc_idx);
	free(r.loc_off);
	free(r.frames);
	ap_pprof_map_free(&r.func_idx);
	free(r.funcs);
	ap_pprof_map_free(&r.map_idx);
	free(r.maps);
	free(r.strid);
	if (m)
		perftools__profiles__profile__free_unpacked(m, NULL);
	free(raw);
	return ret;
}
