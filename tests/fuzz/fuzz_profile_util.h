/* SPDX-License-Identifier: MIT */
/* Shared by the profile-format fuzz targets: write a profile in every format (the writers must
 * take whatever a reader accepted) and check that pprof and JSON read back what they wrote. */
#ifndef AP_FUZZ_PROFILE_UTIL_H
#define AP_FUZZ_PROFILE_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "format/diff.h"
#include "format/format.h"
#include "lib/json_parse.h"

/* Memory the readers may use in a fuzz run: far under libFuzzer's -rss_limit_mb. */
#define FUZZ_MAX_MEM (64u << 20)

/* What writer w makes of p, in memory (caller frees); aborts when it fails. */
static char *fuzz_write_mem(const struct ap_profile *p,
			    int (*w)(const struct ap_profile *, FILE *, const struct ap_write_opts *),
			    size_t *len)
{
	struct ap_write_opts wo = {.value_index = -1};
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f || w(p, f, &wo) || fclose(f))
		abort();
	return buf;
}

/* A reader refused what our own writer made: the limits disagree, a bug. */
static void fuzz_check_read(const char *what, int ok, const char *err)
{
	if (!ok) {
		fprintf(stderr, "%s round trip failed: %s\n", what, err);
		abort();
	}
}

static void fuzz_write_all(const struct ap_profile *p)
{
	static const enum ap_format fmts[] = {AP_FORMAT_SVG, AP_FORMAT_FOLDED, AP_FORMAT_TEXT};
	struct ap_write_opts wo = {.value_index = -1};
	struct ap_profile *q;
	char *buf, err[512] = "";
	size_t len = 0;
	FILE *f = fopen("/dev/null", "w");

	if (!f)
		abort();
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (ap_format_write(p, fmts[i], f, &wo))
			abort();
	fclose(f);

	/* pprof: what the writer emits, the reader takes (the limits agree) */
	buf = fuzz_write_mem(p, ap_write_pprof, &len);
	q = ap_profile_new();
	fuzz_check_read("pprof", q && !ap_read_pprof_limited(buf, len, FUZZ_MAX_MEM * 4, q, err,
							       sizeof(err)), err);
	ap_profile_free(q);
	free(buf);

	/* the aggregator's flamegraph JSON (pruned hard, so pruning runs) parses as JSON */
	{
		struct ap_flamebearer_opts fo = {.max_nodes = 16};
		struct ap_json *j;
		FILE *m;

		buf = NULL;
		m = open_memstream(&buf, &len);
		if (!m || ap_write_flamebearer(p, m, &fo) || fclose(m))
			abort();
		j = ap_json_parse(buf, len, err, sizeof(err));
		fuzz_check_read("flamebearer JSON", j != NULL, err);
		ap_json_free(j);
		free(buf);
	}
	/* the diff of the profile with itself, every format, normalised and not */
	f = fopen("/dev/null", "w");
	if (!f)
		abort();
	for (int fmt = AP_DIFF_FLAMEGRAPH; fmt <= AP_DIFF_SVG; fmt++) {
		struct ap_diff_opts d = {.normalize = fmt % 2, .max_nodes = 16, .top_n = 5};

		if (ap_write_diff(p, p, (enum ap_diff_format)fmt, f, &d))
			abort();
	}
	fclose(f);

	/* JSON: aperture report reads its own JSON output */
	buf = fuzz_write_mem(p, ap_write_json, &len);
	q = ap_profile_new();
	fuzz_check_read("JSON", q && !ap_read_json(buf, len, FUZZ_MAX_MEM * 4, q, err,
						      sizeof(err)), err);
	ap_profile_free(q);
	free(buf);
}

#endif
