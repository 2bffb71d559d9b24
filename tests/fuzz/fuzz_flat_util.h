/* SPDX-License-Identifier: MIT */
/* Checks of a flat-decoded pprof (src/format/pprof_flat.h) every fuzz target that makes one
 * runs: every index in range and every string readable (ASan sees an over-read), and, when the
 * model reader accepted the same bytes, the same value types and totals. */
#ifndef FUZZ_FLAT_UTIL_H
#define FUZZ_FLAT_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "format/pprof_flat.h"
#include "lib/profile.h"

static size_t fuzz_flat_str(const struct ap_flat_profile *f, uint32_t i)
{
	if (i >= f->nstrs || strlen(f->strs[i]) != f->slen[i])
		abort();
	return f->slen[i];
}

static void fuzz_check_flat(const struct ap_flat_profile *f, const struct ap_profile *model)
{
	size_t nframes = f->nlocs ? f->loc_frames[f->nlocs] : 0;

	if (!f->nstrs || f->slen[0] || f->nvalues > AP_MAX_VALUES)
		abort();
	for (size_t i = 0; i < f->nvalues; i++) {
		fuzz_flat_str(f, f->vtype[i]);
		fuzz_flat_str(f, f->vunit[i]);
	}
	fuzz_flat_str(f, f->period_type);
	fuzz_flat_str(f, f->period_unit);
	for (size_t i = 0; i < f->nlocs; i++)
		if (f->loc_frames[i] >= f->loc_frames[i + 1]) /* every location has a frame */
			abort();
	for (size_t i = 0; i < nframes; i++) {
		const struct ap_flat_frame *fr = &f->frames[i];

		fuzz_flat_str(f, fr->name);
		fuzz_flat_str(f, fr->module);
		fuzz_flat_str(f, fr->file);
		if (fr->kind > AP_FRAME_KERNEL || (fr->flags & ~AP_FRAME_INLINED))
			abort();
	}
	for (size_t i = 0; i < f->nsamples; i++) {
		const struct ap_flat_sample *s = &f->samples[i];

		fuzz_flat_str(f, s->comm);
		for (uint32_t k = 0; k < s->nlocs; k++)
			if (f->loc_refs[s->locs + k] >= f->nlocs)
				abort();
		if (s->nlabels > AP_MAX_LABELS)
			abort();
		for (uint32_t k = 0; k < s->nlabels; k++) {
			const struct ap_flat_label *l = &f->labels[s->labels + k];

			fuzz_flat_str(f, l->key);
			fuzz_flat_str(f, l->str);
			if (k && f->labels[s->labels + k - 1].key > l->key)
				abort(); /* sorted by key */
		}
		for (size_t v = 0; v < f->nvalues; v++)
			if (s->values[v] > INT64_MAX)
				abort();
	}
	if (!model)
		return;
	/* the same bytes read into the model: the same value types and totals (the model merges
	 * samples of one key, so only the sums compare) */
	if (ap_profile_nvalues(model) != f->nvalues)
		abort();
	for (size_t v = 0; v < f->nvalues; v++) {
		const struct ap_value_type *vt = ap_profile_value_type(model, v);

		if (strcmp(ap_profile_str(model, vt->type), f->strs[f->vtype[v]]) ||
		    strcmp(ap_profile_str(model, vt->unit), f->strs[f->vunit[v]]) ||
		    ap_profile_total(model, v) != ap_flat_total(f, v))
			abort();
	}
}

#endif
