/* SPDX-License-Identifier: MIT */
/* What a run puts in every profile besides samples, and the summary it prints. */
#ifndef AP_SUMMARY_H
#define AP_SUMMARY_H

#include <stdbool.h>

#include "agent.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"

/* Host, kernel, arch, sample rate and --pid list as profile metadata. */
void ap_summary_add_meta(struct ap_profile *p, const struct ap_agent_opts *opts);

/* The symbolizer's counters as profile stats. */
void ap_summary_add_symbolizer_stats(struct ap_profile *p, const struct ap_symbolizer *sym);

/* The one-line summary (-v) and a warning per non-zero drop counter. The symbolizer's and
 * unwinder's counters are in every mode's profile: they are warned about only with_shared
 * (the last mode's summary, when all modes have drained). */
void ap_summary_print(const struct ap_agent_opts *opts, const struct ap_profile *p,
		      bool with_shared);

#endif
