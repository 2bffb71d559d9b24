/* SPDX-License-Identifier: MIT */
/* Userspace side of the log2 histograms of src/bpf/hist.h: merge, estimate, print. */
#ifndef AP_HIST_H
#define AP_HIST_H

#include <linux/types.h>
#include <stdint.h>
#include <stdio.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "bpf/hist_bits.h"

/* Slot of a value (same function the BPF programs use). */
unsigned int ap_hist_slot(uint64_t v);
/* Lower and upper (exclusive) bound of slot i. */
uint64_t ap_hist_slot_low(unsigned int i);
uint64_t ap_hist_slot_high(unsigned int i);

uint64_t ap_hist_count(const uint64_t *slots);
/*
 * Estimate the q-quantile (0 < q <= 1) by linear interpolation inside the slot that holds it,
 * clamped to [min, max] when those are known (pass 0 and UINT64_MAX otherwise).
 */
uint64_t ap_hist_quantile(const uint64_t *slots, double q, uint64_t min, uint64_t max);

/* Print a bcc-style table of the non-empty slot range, values scaled for humans
 * (unit "ns" prints ns/us/ms/s ranges). indent is prepended to each line. */
void ap_hist_print(FILE *out, const uint64_t *slots, const char *unit, const char *indent);

#endif
