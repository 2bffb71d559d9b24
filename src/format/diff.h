/* SPDX-License-Identifier: MIT */
/*
 * Comparing two profiles (the aggregator's /api/v1/diff, `aperture diff`) and the flamegraph
 * JSON the web UI draws (Pyroscope's "flamebearer" layout). Both read only the profile model.
 */
#ifndef AP_FORMAT_DIFF_H
#define AP_FORMAT_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/profile.h"

enum ap_diff_format {
	AP_DIFF_FLAMEGRAPH, /* JSON, levels of 7-tuples (docs/api.md) */
	AP_DIFF_JSON,	    /* per-function and per-stack deltas (docs/api.md) */
	AP_DIFF_TEXT,	    /* top changes for humans */
	AP_DIFF_FOLDED,	    /* "stack base cmp" lines (flamegraph.pl's difffolded) */
	AP_DIFF_SVG,	    /* red (grew) / blue (shrank) flamegraph, self-contained */
};

struct ap_diff_opts {
	const char *value_type; /* value type name ("cpu", "delay"); NULL = cmp's default */
	bool normalize;		/* scale base to cmp's total before comparing */
	size_t top_n;		/* rows in text/json (0 = 25 text, all json) */
	size_t max_nodes;	/* flamegraph nodes (0 = 16384) */
	const char *title;
};

/* "flamegraph", "json", "text", "folded", "svg" -> format. Returns 0 or -EINVAL. */
int ap_diff_format_from_name(const char *name, enum ap_diff_format *out);
/* Returns 0 or -errno (-EINVAL: the value type is in neither profile). */
int ap_write_diff(const struct ap_profile *base, const struct ap_profile *cmp,
		  enum ap_diff_format fmt, FILE *out, const struct ap_diff_opts *opts);

struct ap_flamebearer_opts {
	const char *value_type; /* NULL = the profile's default value */
	size_t max_nodes;	/* 0 = 16384; smaller nodes fold into their parent's self */
};
/* The flamegraph JSON of /api/v1/flamegraph (docs/api.md). Returns 0 or -errno. */
int ap_write_flamebearer(const struct ap_profile *p, FILE *out,
			 const struct ap_flamebearer_opts *opts);

#endif
