// SPDX-License-Identifier: MIT
/*
 * Top-N table for humans: functions by self weight, with cumulative weight. A function is a
 * (display name, module) pair, so the same function at several addresses is one row.
 * Cumulative weight counts a function once per sample even when it recurses, so it never
 * exceeds the total.
 */
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/parse.h"

#define DEFAULT_TOP_N 25
#define MAX_NAME_COL 60

struct fn {
	char *name;
	const char *module;
	uint64_t self, cum;
	size_t stamp; /* 1 + index of the last sample that counted this function */
};

struct frame_ent {
	char *name;
	const char *module;
	uint32_t frame;
};

static int frame_ent_cmp(const void *a, const void *b)
{
	const struct frame_ent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->module, y->module);
}

static int fn_cmp(const void *a, const void *b)
{
	const struct fn *x = a, *y = b;

	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	if (x->cum != y->cum)
		return x->cum > y->cum ? -1 : 1;
	return frame_ent_cmp(&(struct frame_ent){x->name, x->module, 0},
			     &(struct frame_ent){y->name, y->module, 0});
}

/* Terminal output: control bytes (escape sequences from a hostile binary) become '?'. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void ap_text_put_clean(FILE *out, const char *s)
{
	size_t len = strlen(s);

	/* a 64 MiB name (C++ templates, or hostile input) must not flood the terminal */
	if (len > AP_FORMAT_MAX_TEXT_NAME)
		len = AP_FORMAT_MAX_TEXT_NAME - 3;
	for (size_t i = 0; i < len; i++)
		fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i], out);
	if (s[len])
		fputs("...", out);
}

/* s, or a copy in buf cut at AP_FORMAT_MAX_TEXT_NAME bytes (on a UTF-8 character boundary)
 * and ending in "...". Rows group by the full name, only the printed text is cut. */
static const char *short_name(const char *s, char *buf)
{
	size_t len = strlen(s), cut = AP_FORMAT_MAX_TEXT_NAME - 3;

	if (len <= AP_FORMAT_MAX_TEXT_NAME)
		return s;
	while (cut && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	memcpy(buf, s, cut);
	memcpy(buf + cut, "...", 4);
	return buf;
}

/* Groups frames into functions: fn_of[frame id] = function index. */
static int build_functions(const struct ap_profile *p, struct fn **fns_out, size_t *nfns_out,
			   uint32_t *fn_of)
{
	size_t nframes = ap_profile_nframes(p), nfns = 0;
	struct frame_ent *ents = calloc(nframes ? nframes : 1, sizeof(*ents));
	struct fn *fns = calloc(nframes ? nframes : 1, sizeof(*fns));
	int err = -ENOMEM;

	if (!ents || !fns)
		goto out;
	for (size_t i = 0; i < nframes; i++) {
		const struct ap_frame *f = ap_profile_frame(p, (uint32_t)i);

		ents[i].frame = (uint32_t)i;
		ents[i].module = ap_profile_str(p, f->module);
		ents[i].name = ap_frame_display_dup(p, (uint32_t)i);
		if (!ents[i].name)
			goto out;
		sanitize(ents[i].name);
	}
	if (nframes > 1) /* qsort(NULL, 0) is UB */
		qsort(ents, nframes, sizeof(*ents), frame_ent_cmp);
	for (size_t i = 0; i < nframes; i++) {
		/* compare with the last function: ents[i - 1].name may have moved into it */
		if (!nfns ||
		    frame_ent_cmp(&ents[i], &(struct frame_ent){fns[nfns - 1].name,
								fns[nfns - 1].module, 0}) != 0) {
			fns[nfns].name = ents[i].name;
			fns[nfns++].module = ents[i].module;
			ents[i].name = NULL; /* owned by fns now */
		}
		fn_of[ents[i].frame] = (uint32_t)nfns - 1;
	}
	*fns_out = fns;
	*nfns_out = nfns;
	fns = NULL;
	err = 0;
out:
	for (size_t i = 0; ents && i < nframes; i++)
		free(ents[i].name);
	free(ents);
	free(fns);
	return err;
}

static void accumulate(const struct ap_profile *p, int vi, struct fn *fns, const uint32_t *fn_of)
{
	size_t nframes = ap_profile_nframes(p);

	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		uint64_t w = s->values[vi];
		const uint32_t *frames;
		size_t n;

		if (!w)
			continue;
		frames = ap_profile_stack(p, s->stack, &n);
		if (n && frames[0] < nframes)
			fns[fn_of[frames[0]]].self = ap_sat_add(fns[fn_of[frames[0]]].self, w);
		for (size_t j = 0; j < n; j++) {
			struct fn *f;

			if (frames[j] >= nframes)
				continue;
			f = &fns[fn_of[frames[j]]];
			if (f->stamp == i + 1)
				continue; /* recursion: already counted for this sample */
			f->stamp = i + 1;
			f->cum = ap_sat_add(f->cum, w);
		}
	}
}

static const char *fmt_value(uint64_t v, bool ns, char *buf, size_t len)
{
	return ns ? ap_format_duration(v, buf, len) : ap_format_count(v, buf, len);
}

static double pct(uint64_t v, uint64_t total)
{
	return total ? 100.0 * (double)v / (double)total : 0.0;
}

static void write_header(FILE *out, const struct ap_profile *p, int vi, uint64_t total, size_t nfns)
{
	const struct ap_value_type *vt = ap_profile_value_type(p, (size_t)vi);
	const char *type = vt ? ap_profile_str(p, vt->type) : "samples";
	const char *unit = vt ? ap_profile_str(p, vt->unit) : "count";
	const char *mode = ap_profile_get_meta(p, "mode");
	uint64_t dur = ap_profile_duration_ns(p);
	bool ns = strcmp(unit, "nanoseconds") == 0;
	char buf[64];
	bool first = true;

	fprintf(out, "Total: %s %s", fmt_value(total, ns, buf, sizeof(buf)),
		ns || strcmp(unit, "count") == 0 || !*unit ? (*type ? type : "samples") : unit);
	if (dur)
		fprintf(out, " in %s", ap_format_duration(dur, buf, sizeof(buf)));
	if (mode && *mode) {
		fputs(", mode ", out);
		ap_text_put_clean(out, mode);
	}
	fprintf(out, ", %zu stacks, %zu functions\n", ap_profile_nstacks(p), nfns);
	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *st = ap_profile_stat(p, i);

		if (!st->value)
			continue;
		fputs(first ? "Stats: " : ", ", out);
		ap_text_put_clean(out, st->name);
		fprintf(out, "=%s", ap_format_count(st->value, buf, sizeof(buf)));
		first = false;
	}
	if (!first)
		fputc('\n', out);
}

int ap_write_text(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts)
{
	size_t nframes = ap_profile_nframes(p), nfns = 0, rows, top_n;
	const struct ap_value_type *vt;
	uint32_t *fn_of = NULL;
	struct fn *fns = NULL;
	int vi, err, width = 8;
	uint64_t total;
	char b1[64], b2[64], nbuf[AP_FORMAT_MAX_TEXT_NAME + 1];
	bool ns;

	vi = ap_format_value_index(p, opts);
	if (vi < 0)
		return vi;
	vt = ap_profile_value_type(p, (size_t)vi);
	ns = vt && strcmp(ap_profile_str(p, vt->unit), "nanoseconds") == 0;
	top_n = opts && opts->top_n ? opts->top_n : DEFAULT_TOP_N;
	total = ap_profile_total(p, (size_t)vi);

	fn_of = calloc(nframes ? nframes : 1, sizeof(*fn_of));
	if (!fn_of)
		return -ENOMEM;
	err = build_functions(p, &fns, &nfns, fn_of);
	if (err)
		goto out;
	accumulate(p, vi, fns, fn_of);
	if (nfns > 1) /* qsort(NULL, 0) is UB */
		qsort(fns, nfns, sizeof(*fns), fn_cmp);

	write_header(out, p, vi, total, nfns);
	rows = nfns < top_n ? nfns : top_n;
	if (!total || !rows) {
		fputs("No samples.\n", out);
		goto flush;
	}
	for (size_t i = 0; i < rows; i++) {
		int len = (int)strlen(short_name(fns[i].name, nbuf));

		if (len > width)
			width = len < MAX_NAME_COL ? len : MAX_NAME_COL;
	}
	fprintf(out, "Showing top %zu of %zu functions by self weight\n\n", rows, nfns);
	fprintf(out, "%8s %12s %8s %12s  %-*s  %s\n", "self%", "self", "cum%", "cum", width,
		"function", "module");
	for (size_t i = 0; i < rows; i++) {
		fprintf(out, "%7.2f%% %12s %7.2f%% %12s  %-*s  ", pct(fns[i].self, total),
			fmt_value(fns[i].self, ns, b1, sizeof(b1)), pct(fns[i].cum, total),
			fmt_value(fns[i].cum, ns, b2, sizeof(b2)), width,
			short_name(fns[i].name, nbuf));
		ap_text_put_clean(out, fns[i].module);
		fputc('\n', out);
	}
flush:
	err = ap_stream_status(out);
out:
	for (size_t i = 0; fns && i < nfns; i++)
		free(fns[i].name);
	free(fns);
	free(fn_of);
	return err;
}
