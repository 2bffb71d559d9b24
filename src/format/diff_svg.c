// SPDX-License-Identifier: MIT
/*
 * The diff as an SVG flamegraph (svg.c draws it): the comparison profile's boxes, each
 * coloured by how much it changed from the base, red where it grew and blue where it shrank,
 * more saturated the larger the relative change; the tooltip gives both values. Boxes that
 * only the base has are not drawn (they have no width in the comparison): the text and JSON
 * diffs list them.
 */
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dsvg_ctx {
	const struct ap_profile *cmp;
	int vi;
	const struct ap_flame_set *s;
	const struct ap_flame_tree *t;
	const struct ap_flame_rows *r;
};

/* rel in [-1, 1]: (cmp - base) / max(base, cmp). */
static void change_colour(double rel, uint8_t rgb[3])
{
	double a = fabs(rel);
	/* sqrt: a 10 % change must already be visible next to an unchanged box */
	uint8_t pale = (uint8_t)(225.0 * (1.0 - sqrt(a)) + 0.5);

	if (rel > 0) {
		rgb[0] = 255, rgb[1] = pale, rgb[2] = pale;
	} else if (rel < 0) {
		rgb[0] = pale, rgb[1] = pale, rgb[2] = 255;
	} else {
		rgb[0] = rgb[1] = rgb[2] = 225;
	}
}

static void dsvg_box(const void *ctx, size_t i, struct ap_svg_box *b, char *info, size_t infolen)
{
	const struct dsvg_ctx *c = ctx;
	const struct ap_flame_node *n = &c->t->nodes[i];
	uint64_t base = n->total[0], cmp = n->total[1], hi = base > cmp ? base : cmp;
	double rel = hi ? ((double)cmp - (double)base) / (double)hi : 0.0;
	char b1[64], b2[64], pct[32];

	b->x = c->r->x[i][1];
	b->w = cmp;
	b->depth = n->depth;
	b->name = n->name == UINT32_MAX ? "all" : c->s->names[n->name];
	b->cls = n->name == UINT32_MAX ? AP_FLAME_ROOT
		 : n->depth == 1       ? AP_FLAME_COMM
				       : c->s->cls[n->name];
	b->has_rgb = true;
	change_colour(rel, b->rgb);
	if (!info)
		return;
	if (!base)
		snprintf(pct, sizeof(pct), "new");
	else
		snprintf(pct, sizeof(pct), "%+.2f%%",
			 100.0 * ((double)cmp - (double)base) / (double)base);
	/* no parentheses: the script takes the name up to the last " (" */
	snprintf(info, infolen, "base %s, comparison %s, %s",
		 ap_svg_fmt_weight(c->cmp, c->vi, base, b1, sizeof(b1)),
		 ap_svg_fmt_weight(c->cmp, c->vi, cmp, b2, sizeof(b2)), pct);
}

int ap_diff_write_svg(FILE *out, const struct ap_profile *cmp, int vi, const struct ap_flame_set *s,
		      bool normalized, uint64_t base_raw, const char *title)
{
	const char *mode = ap_profile_get_meta(cmp, "mode");
	struct ap_flame_tree tree;
	struct ap_flame_rows rows;
	char tbuf[160], sub[384], b1[64], b2[64], b3[64];
	struct dsvg_ctx c = {.cmp = cmp, .vi = vi, .s = s};
	struct ap_svg_doc d = {.box = dsvg_box, .ctx = &c};
	int err;

	/* boxes too narrow to draw are not even built: 200k stacks make millions */
	err = ap_flame_tree_build(s, 0, ap_svg_min_visible(s->total[1]), &tree);
	if (err)
		return err;
	err = ap_flame_rows_build(&tree, &rows);
	if (err) {
		ap_flame_tree_release(&tree);
		return err;
	}
	c.t = &tree;
	c.r = &rows;
	d.total = tree.nodes[0].total[1];
	d.nboxes = tree.n;
	if (!title) {
		if (mode && *mode)
			snprintf(tbuf, sizeof(tbuf), "Diff of %.64s profiles", mode);
		else
			snprintf(tbuf, sizeof(tbuf), "Differential flame graph");
		title = tbuf;
	}
	d.title = title;
	if (normalized && base_raw != s->total[0])
		snprintf(b3, sizeof(b3), ", scaled from %s",
			 ap_svg_fmt_weight(cmp, vi, base_raw, b1, sizeof(b1)));
	else
		b3[0] = '\0';
	snprintf(sub, sizeof(sub), "comparison %s, base %s%s \xe2\x80\x94 red grew, blue shrank",
		 ap_svg_fmt_weight(cmp, vi, s->total[1], b1, sizeof(b1)),
		 ap_svg_fmt_weight(cmp, vi, s->total[0], b2, sizeof(b2)), b3);
	d.subtitle = sub;
	err = ap_svg_write_doc(out, &d);
	ap_flame_rows_release(&rows);
	ap_flame_tree_release(&tree);
	return err;
}
