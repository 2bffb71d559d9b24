/* SPDX-License-Identifier: MIT */
/* Continuous mode: one interval's profile, relabeled for its push (interval.c). */
#ifndef AP_INTERVAL_H
#define AP_INTERVAL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/profile.h"

/* Labels a process adds to each of its samples (cgroup: container_id, unit). */
#define AP_INTERVAL_MAX_EXTRA 2

struct ap_interval_label {
	const char *key;
	const char *value;
};

/* Fills at most `max` labels of process `pid`; returns how many. The strings live until the
 * next call. */
typedef size_t (*ap_interval_labeler)(void *ctx, uint32_t pid, struct ap_interval_label *out,
				      size_t max);

/* A copy of `p` (strings, frames, stacks, samples, stats, metadata) in which every sample
 * also carries the labels `fn` gives for its pid (fn may be NULL: a plain copy). A sample
 * keeps at most AP_MAX_LABELS labels, its own first. NULL with errno set. */
struct ap_profile *ap_interval_relabel(const struct ap_profile *p, ap_interval_labeler fn,
				       void *ctx);

#endif
