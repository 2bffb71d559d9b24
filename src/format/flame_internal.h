/* SPDX-License-Identifier: MIT */
/*
 * Private to src/format: what the flamegraph writers share.
 *
 *  - The display-name tree of one or two profiles (flame_tree.c): stacks are matched by what
 *    they show (comm, then frames' display names root first), never by ids, so two profiles
 *    from separate models line up. The flamebearer JSON and every diff output read it.
 *  - The interactive SVG document (svg.c), drawn from any laid-out list of boxes: the
 *    single-profile flamegraph and the diff flamegraph differ only in their boxes' colours and
 *    tooltips.
 *  - JSON string output (json.c).
 */
#ifndef AP_FORMAT_FLAME_INTERNAL_H
#define AP_FORMAT_FLAME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/hashtab.h"
#include "lib/profile.h"

/* A name for a folded line: ';' (the separator) becomes ':', control bytes '?'. In place. */
void ap_folded_sanitize(char *s);
/* A name for a terminal: control bytes as '?', cut at AP_FORMAT_MAX_TEXT_NAME with "...". */
void ap_text_put_clean(FILE *out, const char *s);

enum ap_flame_class {
	AP_FLAME_ROOT,
	AP_FLAME_COMM,
	AP_FLAME_USER,
	AP_FLAME_KERNEL,
	AP_FLAME_UNKNOWN,
};

/* Distinct stacks of one (side 0) or two (sides 0 and 1) profiles, as paths of name ids:
 * path[0] is the comm, then frames root first. */
struct ap_flame_stack {
	const uint32_t *ids;
	size_t off;
	uint32_t len;
	uint64_t w[2];
};

struct ap_flame_set {
	char **names; /* owned; alphabetical once finished */
	uint8_t *cls; /* enum ap_flame_class of a name as a frame */
	size_t nnames, names_cap, cls_cap;
	struct ap_hidx name_idx;
	uint32_t *pool;
	size_t pool_len, pool_cap;
	struct ap_flame_stack *stacks;
	size_t nstacks, stacks_cap;
	uint64_t total[2];
	bool finished;
};

/* Adds profile p's samples weighted by value vi to `side` (0 or 1). Returns 0 or -ENOMEM. */
int ap_flame_set_add(struct ap_flame_set *s, const struct ap_profile *p, int vi, int side);
/* Sorts the names alphabetically and the stacks by path, merging equal paths. */
int ap_flame_set_finish(struct ap_flame_set *s);
/* Scales side's weights so that they sum to exactly `target` (largest remainders: each stack
 * moves by less than one unit from its exact share). No-op when the side is empty. */
int ap_flame_set_scale(struct ap_flame_set *s, int side, uint64_t target);
void ap_flame_set_release(struct ap_flame_set *s);

/* The merged call tree in pre-order (node 0 = the root "total"); children ordered by name. */
struct ap_flame_node {
	uint64_t total[2], self[2];
	uint32_t name;	/* name id; UINT32_MAX for the root */
	uint32_t depth; /* 0 = root, 1 = comm */
	uint32_t parent;
	uint32_t pad;
};

struct ap_flame_tree {
	struct ap_flame_node *nodes;
	size_t n;
	size_t truncated; /* nodes left out to keep max_nodes */
	uint32_t max_depth;
};

/* Builds the tree of s, keeping at most max_nodes nodes (root included; 0 = all): the largest
 * by max(total[0], total[1]), and none of those below min_total. A subtree left out adds its
 * totals to its parent's self, so every total kept is exact. Returns 0 or -ENOMEM. */
int ap_flame_tree_build(const struct ap_flame_set *s, size_t max_nodes, uint64_t min_total,
			struct ap_flame_tree *t);
void ap_flame_tree_release(struct ap_flame_tree *t);

/* The nodes row by row (depth 0 first), left to right, with their x per side: children
 * start at their parent's x and its self comes last, as Pyroscope draws it. */
struct ap_flame_rows {
	size_t *start;	  /* nodes of depth d: order[start[d] .. start[d + 1]) */
	uint32_t *order;  /* node indices */
	uint64_t (*x)[2]; /* x[node][side] */
	uint32_t ndepths;
};
int ap_flame_rows_build(const struct ap_flame_tree *t, struct ap_flame_rows *r);
void ap_flame_rows_release(struct ap_flame_rows *r);

/* Pieces of the flamegraph JSON (flamebearer.c), shared with the diff's: the opening
 * '{' with "mode", "value_type", "value_types"; then ", names, levels" of the kept nodes in
 * 4-tuples (sides = 1) or 7-tuples (sides = 2), setting *max_self. 0 or -ENOMEM. */
void ap_flame_put_header(FILE *out, const struct ap_profile *p, int vi);
int ap_flame_put_levels(FILE *out, const struct ap_flame_set *s, const struct ap_flame_tree *t,
			int sides, uint64_t *max_self);
/* The value index named `type` in p, p's default when type is NULL; -EINVAL if none. */
int ap_flame_value_index(const struct ap_profile *p, const char *type);

/* One box of the SVG flamegraph. */
struct ap_svg_box {
	uint64_t x, w;	  /* in weight units of the document's total */
	uint32_t depth;	  /* 0 = the root box */
	const char *name; /* label; the root's is "all" */
	uint32_t cls;	  /* enum ap_flame_class: the default palette */
	bool has_rgb;	  /* the caller's colour instead of the palette's */
	uint8_t rgb[3];
};

struct ap_svg_doc {
	uint64_t total;
	size_t nboxes;
	const char *title;    /* plain text (escaped when written) */
	const char *subtitle; /* plain text */
	/* Fills box i and, when info is not NULL, writes its tooltip details (shown as
	 * "name (info)") there. */
	void (*box)(const void *ctx, size_t i, struct ap_svg_box *b, char *info, size_t infolen);
	const void *ctx;
};

/* The whole self-contained SVG document. Returns 0 or -errno from the stream. */
/* The narrowest weight (of total) that may be drawn: narrower boxes are left out. */
uint64_t ap_svg_min_visible(uint64_t total);
int ap_svg_write_doc(FILE *out, const struct ap_svg_doc *d);
/* "1,234 samples" or "12.30 ms", after the value type vi of p. */
const char *ap_svg_fmt_weight(const struct ap_profile *p, int vi, uint64_t v, char *buf,
			      size_t len);

/* The diff's SVG (diff_svg.c): the comparison's flamegraph (side 1 of s, value vi of cmp),
 * each box red where it grew from the base (side 0), blue where it shrank. */
int ap_diff_write_svg(FILE *out, const struct ap_profile *cmp, int vi, const struct ap_flame_set *s,
		      bool normalized, uint64_t base_raw, const char *title);

#endif
