// SPDX-License-Identifier: MIT
/*
 * The change from a base profile to a comparison profile (/api/v1/diff, `aperture diff`).
 * The two are separate models, so stacks are matched by what they show (comm, then frames'
 * display names root first) and value types by name. Normalising scales the base's stacks to
 * the comparison's total once, up front, in whole units (largest remainders: every stack is
 * within one unit of its exact share and the sum is exact), so every output derives from the
 * same numbers and the flamegraph's boxes still nest exactly.
 */
#include "diff.h"
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/parse.h"

#define DEFAULT_TOP_N 25
#define DEFAULT_MAX_NODES 16384

static const struct {
	const char *name;
	enum ap_diff_format fmt;
} diff_names[] = {
    {"flamegraph", AP_DIFF_FLAMEGRAPH}, {"json", AP_DIFF_JSON}, {"text", AP_DIFF_TEXT},
    {"folded", AP_DIFF_FOLDED},		{"svg", AP_DIFF_SVG},
};

int ap_diff_format_from_name(const char *name, enum ap_diff_format *out)
{
	for (size_t i = 0; name && i < sizeof(diff_names) / sizeof(diff_names[0]); i++) {
		if (strcasecmp(name, diff_names[i].name) == 0) {
			*out = diff_names[i].fmt;
			return 0;
		}
	}
	return -EINVAL;
}

struct diff_ctx {
	const struct ap_profile *base, *cmp;
	const struct ap_diff_opts *opts;
	int vi_base, vi_cmp;
	bool ns; /* values are nanoseconds */
	uint64_t base_raw;
	struct ap_flame_set set;
};

/* Both value indices, the type matched by name. */
static int pick_values(struct diff_ctx *c)
{
	const struct ap_value_type *vt;
	const char *type;

	c->vi_cmp = ap_flame_value_index(c->cmp, c->opts->value_type);
	if (c->vi_cmp < 0)
		return -EINVAL;
	vt = ap_profile_value_type(c->cmp, (size_t)c->vi_cmp);
	if (!vt) { /* a hand-built profile without value types: values[0] on both sides */
		c->vi_base = 0;
		return ap_profile_nvalues(c->base) ? -EINVAL : 0;
	}
	type = ap_profile_str(c->cmp, vt->type);
	c->vi_base = ap_profile_value_index(c->base, type);
	if (c->vi_base < 0)
		return -EINVAL;
	c->ns = strcmp(ap_profile_str(c->cmp, vt->unit), "nanoseconds") == 0;
	return 0;
}

static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

/* Change in percent of the base; NaN-free: callers print "new" when the base is 0. */
static double rel_pct(uint64_t base, uint64_t cmp)
{
	return 100.0 * ((double)cmp - (double)base) / (double)base;
}

static const char *fmt_value(const struct diff_ctx *c, uint64_t v, char *buf, size_t len)
{
	return c->ns ? ap_format_duration(v, buf, len) : ap_format_count(v, buf, len);
}

/* "+1,234", "-12.30 ms", "0". */
static const char *fmt_delta(const struct diff_ctx *c, uint64_t base, uint64_t cmp, char *buf,
			     size_t len)
{
	char v[48];

	if (base == cmp)
		return "0";
	snprintf(buf, len, "%c%s", cmp > base ? '+' : '-',
		 fmt_value(c, absdiff(base, cmp), v, sizeof(v)));
	return buf;
}

static const char *fmt_pct(uint64_t base, uint64_t cmp, char *buf, size_t len)
{
	if (!base)
		return cmp ? "new" : "0.00%";
	snprintf(buf, len, "%+.2f%%", rel_pct(base, cmp));
	return buf;
}

/* ---- per-function deltas ---- */

struct fn_delta {
	uint32_t name;
	uint64_t self[2], total[2];
};

static int fn_delta_cmp(const void *a, const void *b)
{
	const struct fn_delta *x = a, *y = b;
	uint64_t dx = absdiff(x->self[0], x->self[1]), dy = absdiff(y->self[0], y->self[1]);

	if (dx != dy)
		return dx > dy ? -1 : 1;
	dx = absdiff(x->total[0], x->total[1]);
	dy = absdiff(y->total[0], y->total[1]);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name; /* ids are alphabetical */
}

/* Functions are display names of frames (the comm is not one). A function's total counts it
 * once per stack even when it recurses, so it never exceeds the profile's total. */
static int function_deltas(const struct ap_flame_set *s, struct fn_delta **out, size_t *nout)
{
	struct fn_delta *fns = calloc(s->nnames ? s->nnames : 1, sizeof(*fns));
	size_t *stamp = calloc(s->nnames ? s->nnames : 1, sizeof(*stamp));
	size_t n = 0;

	if (!fns || !stamp) {
		free(fns);
		free(stamp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nstacks; i++) {
		const struct ap_flame_stack *st = &s->stacks[i];

		if (st->len < 2)
			continue; /* a comm without frames */
		for (int side = 0; side < 2; side++) {
			uint32_t leaf = st->ids[st->len - 1];

			fns[leaf].self[side] = ap_sat_add(fns[leaf].self[side], st->w[side]);
		}
		for (uint32_t k = 1; k < st->len; k++) {
			uint32_t id = st->ids[k];

			if (stamp[id] == i + 1)
				continue; /* recursion: counted once for this stack */
			stamp[id] = i + 1;
			for (int side = 0; side < 2; side++)
				fns[id].total[side] = ap_sat_add(fns[id].total[side], st->w[side]);
		}
	}
	for (size_t id = 0; id < s->nnames; id++) {
		if (!stamp[id])
			continue;
		fns[id].name = (uint32_t)id;
		fns[n++] = fns[id]; /* n <= id: compacting in place */
	}
	free(stamp);
	if (n > 1)
		qsort(fns, n, sizeof(*fns), fn_delta_cmp);
	*out = fns;
	*nout = n;
	return 0;
}

static int stack_delta_cmp(const void *a, const void *b)
{
	const struct ap_flame_stack *x = *(const struct ap_flame_stack *const *)a;
	const struct ap_flame_stack *y = *(const struct ap_flame_stack *const *)b;
	uint64_t dx = absdiff(x->w[0], x->w[1]), dy = absdiff(y->w[0], y->w[1]);

	if (dx != dy)
		return dx > dy ? -1 : 1;
	return x < y ? -1 : x > y; /* path order */
}

static int sorted_stacks(const struct ap_flame_set *s, const struct ap_flame_stack ***out)
{
	const struct ap_flame_stack **v = malloc((s->nstacks ? s->nstacks : 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nstacks; i++)
		v[i] = &s->stacks[i];
	if (s->nstacks > 1)
		qsort(v, s->nstacks, sizeof(*v), stack_delta_cmp);
	*out = v;
	return 0;
}

/* ---- writers ---- */

static void put_totals_json(FILE *out, const struct diff_ctx *c)
{
	fprintf(out,
		"\"normalized\": %s, \"base_total\": %" PRIu64 ", \"base_total_raw\": %" PRIu64
		", \"cmp_total\": %" PRIu64,
		c->opts->normalize ? "true" : "false", c->set.total[0], c->base_raw,
		c->set.total[1]);
}

static int write_flamegraph(FILE *out, struct diff_ctx *c)
{
	size_t max_nodes = c->opts->max_nodes ? c->opts->max_nodes : DEFAULT_MAX_NODES;
	struct ap_flame_tree tree;
	uint64_t max_self;
	int err;

	err = ap_flame_tree_build(&c->set, max_nodes, 0, &tree);
	if (err)
		return err;
	ap_flame_put_header(out, c->cmp, c->vi_cmp);
	fputs(", ", out);
	put_totals_json(out, c);
	err = ap_flame_put_levels(out, &c->set, &tree, 2, &max_self);
	if (!err)
		fprintf(out, ",\n \"max_self\": %" PRIu64 ", \"nodes_truncated\": %zu}\n", max_self,
			tree.truncated);
	ap_flame_tree_release(&tree);
	return err;
}

static void put_frames_json(FILE *out, const struct ap_flame_set *s,
			    const struct ap_flame_stack *st)
{
	fputc('[', out);
	for (uint32_t k = 0; k < st->len; k++) {
		if (k)
			fputs(", ", out);
		ap_format_json_str(out, s->names[st->ids[k]]);
	}
	fputc(']', out);
}

static int write_json(FILE *out, struct diff_ctx *c)
{
	const struct ap_flame_stack **stacks = NULL;
	struct fn_delta *fns = NULL;
	size_t nfns = 0, top = c->opts->top_n, nf, ns;
	int err;

	err = function_deltas(&c->set, &fns, &nfns);
	if (!err)
		err = sorted_stacks(&c->set, &stacks);
	if (err)
		goto out;
	nf = top && top < nfns ? top : nfns;
	ns = top && top < c->set.nstacks ? top : c->set.nstacks;
	ap_flame_put_header(out, c->cmp, c->vi_cmp);
	fputs(",\n ", out);
	put_totals_json(out, c);
	fputs(",\n \"functions\": [", out);
	for (size_t i = 0; i < nf; i++) {
		fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", out);
		ap_format_json_str(out, c->set.names[fns[i].name]);
		fprintf(out,
			", \"base_self\": %" PRIu64 ", \"cmp_self\": %" PRIu64
			", \"base_total\": %" PRIu64 ", \"cmp_total\": %" PRIu64 "}",
			fns[i].self[0], fns[i].self[1], fns[i].total[0], fns[i].total[1]);
	}
	fprintf(out, "],\n \"functions_truncated\": %zu,\n \"stacks\": [", nfns - nf);
	for (size_t i = 0; i < ns; i++) {
		fputs(i ? ",\n  {\"frames\": " : "\n  {\"frames\": ", out);
		put_frames_json(out, &c->set, stacks[i]);
		fprintf(out, ", \"base\": %" PRIu64 ", \"cmp\": %" PRIu64 "}", stacks[i]->w[0],
			stacks[i]->w[1]);
	}
	fprintf(out, "],\n \"stacks_truncated\": %zu}\n", c->set.nstacks - ns);
out:
	free(fns);
	free(stacks);
	return err;
}

static int write_folded(FILE *out, struct diff_ctx *c)
{
	for (size_t i = 0; i < c->set.nstacks; i++) {
		const struct ap_flame_stack *st = &c->set.stacks[i];

		for (uint32_t k = 0; k < st->len; k++) {
			char *name = strdup(c->set.names[st->ids[k]]);

			if (!name)
				return -ENOMEM;
			ap_folded_sanitize(name);
			if (k)
				fputc(';', out);
			fputs(name, out);
			free(name);
		}
		fprintf(out, " %" PRIu64 " %" PRIu64 "\n", st->w[0], st->w[1]);
	}
	return 0;
}

static void put_value_label(FILE *out, const struct diff_ctx *c)
{
	const struct ap_value_type *vt = ap_profile_value_type(c->cmp, (size_t)c->vi_cmp);

	if (!vt)
		return;
	fputs(", value ", out);
	ap_text_put_clean(out, ap_profile_str(c->cmp, vt->type));
	fputs(" (", out);
	ap_text_put_clean(out, ap_profile_str(c->cmp, vt->unit));
	fputc(')', out);
}

static int write_text(FILE *out, struct diff_ctx *c)
{
	size_t top = c->opts->top_n ? c->opts->top_n : DEFAULT_TOP_N, nfns = 0, rows;
	const char *mode = ap_profile_get_meta(c->cmp, "mode");
	char b1[64], b2[64], b3[64], b4[32];
	struct fn_delta *fns = NULL;
	int err;

	err = function_deltas(&c->set, &fns, &nfns);
	if (err)
		return err;
	/* the table is about self weight: callers without any of their own are noise here */
	{
		size_t k = 0;

		for (size_t i = 0; i < nfns; i++)
			if (fns[i].self[0] || fns[i].self[1])
				fns[k++] = fns[i];
		nfns = k;
	}
	fputs("Diff", out);
	if (mode && *mode) {
		fputs(" of ", out);
		ap_text_put_clean(out, mode);
		fputs(" profiles", out);
	}
	put_value_label(out, c);
	fputc('\n', out);
	fprintf(out, "Base:       %s", fmt_value(c, c->base_raw, b1, sizeof(b1)));
	if (c->opts->normalize && c->base_raw != c->set.total[0])
		fprintf(out, ", scaled to %s (normalized to the comparison's total)",
			fmt_value(c, c->set.total[0], b2, sizeof(b2)));
	fprintf(out, "\nComparison: %s (%s, %s)\n", fmt_value(c, c->set.total[1], b1, sizeof(b1)),
		fmt_delta(c, c->base_raw, c->set.total[1], b2, sizeof(b2)),
		fmt_pct(c->base_raw, c->set.total[1], b3, sizeof(b3)));
	rows = nfns < top ? nfns : top;
	if (!rows) {
		fputs("No samples.\n", out);
		goto out;
	}
	fprintf(out, "Showing top %zu of %zu functions by change in self weight\n\n", rows, nfns);
	fprintf(out, "%14s %14s %14s %9s  %s\n", "base", "cmp", "delta", "delta%", "function");
	for (size_t i = 0; i < rows; i++) {
		const struct fn_delta *f = &fns[i];

		fprintf(out, "%14s %14s ", fmt_value(c, f->self[0], b1, sizeof(b1)),
			fmt_value(c, f->self[1], b2, sizeof(b2)));
		fprintf(out, "%14s %9s  ", fmt_delta(c, f->self[0], f->self[1], b3, sizeof(b3)),
			fmt_pct(f->self[0], f->self[1], b4, sizeof(b4)));
		ap_text_put_clean(out, c->set.names[f->name]);
		fputc('\n', out);
	}
out:
	free(fns);
	return 0;
}

int ap_write_diff(const struct ap_profile *base, const struct ap_profile *cmp,
		  enum ap_diff_format fmt, FILE *out, const struct ap_diff_opts *opts)
{
	struct ap_diff_opts defaults = {.normalize = true};
	struct diff_ctx c = {.base = base, .cmp = cmp, .opts = opts ? opts : &defaults};
	int err;

	err = pick_values(&c);
	if (err)
		return err;
	err = ap_flame_set_add(&c.set, base, c.vi_base, 0);
	if (!err)
		err = ap_flame_set_add(&c.set, cmp, c.vi_cmp, 1);
	if (!err)
		err = ap_flame_set_finish(&c.set);
	c.base_raw = c.set.total[0];
	if (!err && c.opts->normalize && c.set.total[1])
		err = ap_flame_set_scale(&c.set, 0, c.set.total[1]);
	if (err)
		goto out;
	switch (fmt) {
	case AP_DIFF_FLAMEGRAPH:
		err = write_flamegraph(out, &c);
		break;
	case AP_DIFF_JSON:
		err = write_json(out, &c);
		break;
	case AP_DIFF_TEXT:
		err = write_text(out, &c);
		break;
	case AP_DIFF_FOLDED:
		err = write_folded(out, &c);
		break;
	case AP_DIFF_SVG:
		err = ap_diff_write_svg(out, cmp, c.vi_cmp, &c.set, c.opts->normalize, c.base_raw,
					c.opts->title);
		break;
	default:
		err = -EINVAL;
	}
	if (!err)
		err = ap_stream_status(out);
out:
	ap_flame_set_release(&c.set);
	return err;
}
