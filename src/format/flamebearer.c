// SPDX-License-Identifier: MIT
/*
 * The flamegraph JSON of /api/v1/flamegraph (docs/api.md), laid out as Pyroscope's
 * "flamebearer": names[0] = "total", levels[d] = 4-tuples [x delta, total, self, name] per node
 * of depth d, left to right. Depth 1 is the comm, then frames root first, as in our folded
 * output. At most max_nodes nodes are written; smaller subtrees fold into their parent's self
 * and are counted in "nodes_truncated".
 */
#include "diff.h"
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_NODES 16384

static void put_value_type(FILE *out, const struct ap_profile *p, size_t vi)
{
	const struct ap_value_type *vt = ap_profile_value_type(p, vi);

	fputs("{\"type\": ", out);
	ap_format_json_str(out, vt ? ap_profile_str(p, vt->type) : "samples");
	fputs(", \"unit\": ", out);
	ap_format_json_str(out, vt ? ap_profile_str(p, vt->unit) : "count");
	fputc('}', out);
}

/* "{mode, value_type, value_types", shared with the diff's flamegraph. */
void ap_flame_put_header(FILE *out, const struct ap_profile *p, int vi)
{
	const char *mode = ap_profile_get_meta(p, "mode");

	fputs("{\"mode\": ", out);
	ap_format_json_str(out, mode ? mode : "");
	fputs(", \"value_type\": ", out);
	put_value_type(out, p, (size_t)vi);
	fputs(", \"value_types\": [", out);
	for (size_t i = 0; i < ap_profile_nvalues(p); i++) {
		if (i)
			fputs(", ", out);
		put_value_type(out, p, i);
	}
	fputs("]", out);
}

/* ", names, levels" of the kept nodes: 4-tuples (sides = 1) or 7 (sides = 2, diffs).
 * *max_self = the largest self shown. Returns 0 or -ENOMEM. */
int ap_flame_put_levels(FILE *out, const struct ap_flame_set *s, const struct ap_flame_tree *t,
			int sides, uint64_t *max_self)
{
	struct ap_flame_rows r;
	uint32_t *name_out, next = 1;
	int err;

	*max_self = 0;
	name_out = malloc((s->nnames ? s->nnames : 1) * sizeof(*name_out));
	if (!name_out)
		return -ENOMEM;
	err = ap_flame_rows_build(t, &r);
	if (err) {
		free(name_out);
		return err;
	}
	for (size_t i = 0; i < s->nnames; i++)
		name_out[i] = UINT32_MAX;
	/* names in order of first appearance, row by row: only those of shown nodes */
	fputs(", \"names\": [\"total\"", out);
	for (size_t k = 0; k < t->n; k++) {
		uint32_t nm = t->nodes[r.order[k]].name;

		if (nm == UINT32_MAX || name_out[nm] != UINT32_MAX)
			continue;
		name_out[nm] = next++;
		fputs(", ", out);
		ap_format_json_str(out, s->names[nm]);
	}
	fputs("], \"levels\": [", out);
	for (uint32_t d = 0; d < r.ndepths; d++) {
		uint64_t end[2] = {0, 0};

		if (r.start[d] == r.start[d + 1])
			break; /* rows are contiguous: nothing deeper was kept */
		fputs(d ? ",\n  [" : "\n  [", out);
		for (size_t k = r.start[d]; k < r.start[d + 1]; k++) {
			uint32_t i = r.order[k];
			const struct ap_flame_node *n = &t->nodes[i];
			uint32_t nm = n->name == UINT32_MAX ? 0 : name_out[n->name];

			if (k > r.start[d])
				fputs(", ", out);
			for (int side = 0; side < sides; side++) {
				fprintf(out, "%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", ",
					r.x[i][side] - end[side], n->total[side], n->self[side]);
				end[side] = r.x[i][side] + n->total[side];
				if (n->self[side] > *max_self)
					*max_self = n->self[side];
			}
			fprintf(out, "%" PRIu32, nm);
		}
		fputc(']', out);
	}
	fputs("]", out);
	ap_flame_rows_release(&r);
	free(name_out);
	return 0;
}

/* The value index named `type` in p, its default when type is NULL; -EINVAL if none. */
int ap_flame_value_index(const struct ap_profile *p, const char *type)
{
	int vi;

	if (!type) {
		struct ap_write_opts o = {.value_index = -1};

		return ap_format_value_index(p, &o);
	}
	vi = ap_profile_value_index(p, type);
	return vi < 0 ? -EINVAL : vi;
}

int ap_write_flamebearer(const struct ap_profile *p, FILE *out,
			 const struct ap_flamebearer_opts *opts)
{
	size_t max_nodes = opts && opts->max_nodes ? opts->max_nodes : DEFAULT_MAX_NODES;
	struct ap_flame_set set = {0};
	struct ap_flame_tree tree = {0};
	uint64_t max_self;
	int vi, err;

	vi = ap_flame_value_index(p, opts ? opts->value_type : NULL);
	if (vi < 0)
		return vi;
	err = ap_flame_set_add(&set, p, vi, 0);
	if (!err)
		err = ap_flame_set_finish(&set);
	if (!err)
		err = ap_flame_tree_build(&set, max_nodes, 0, &tree);
	if (err)
		goto out;
	ap_flame_put_header(out, p, vi);
	err = ap_flame_put_levels(out, &set, &tree, 1, &max_self);
	if (err)
		goto out;
	fprintf(out,
		",\n \"total\": %" PRIu64 ", \"max_self\": %" PRIu64
		", \"nodes_truncated\": %zu}\n",
		tree.nodes[0].total[0], max_self, tree.truncated);
	err = ap_stream_status(out);
out:
	ap_flame_tree_release(&tree);
	ap_flame_set_release(&set);
	return err;
}
