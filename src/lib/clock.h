/* SPDX-License-Identifier: MIT */
/* The monotonic clock in nanoseconds: the one timebase for intervals (and bpf_ktime_get_ns's). */
#ifndef AP_CLOCK_H
#define AP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t ap_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
