/* SPDX-License-Identifier: MIT */
/* Continuous mode's part of the run loop (continuous.c, docs/continuous.md). */
#ifndef AP_CONTINUOUS_H
#define AP_CONTINUOUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "symbol/symbolizer.h"

struct ap_collector;
struct ap_continuous;

/* Reads the token and opens the spool. NULL with a reason in err. */
struct ap_continuous *ap_continuous_new(const struct ap_agent_opts *opts, char *err, size_t errlen);
/* Starts libcurl and the sender (which first delivers what an earlier run left in the spool):
 * after the BPF programs are loaded, so that libcurl's TLS libraries do not add to that
 * memory peak. 0 or -errno with a reason in err. */
int ap_continuous_connect(struct ap_continuous *k, char *err, size_t errlen);
void ap_continuous_free(struct ap_continuous *k);
/* The first interval starts now (wall clock and CLOCK_MONOTONIC, ns). */
void ap_continuous_start(struct ap_continuous *k, uint64_t start_wall, uint64_t start_mono);
/* Whether the current interval is over; when it ends (CLOCK_MONOTONIC ns). */
bool ap_continuous_due(const struct ap_continuous *k, uint64_t now_mono);
uint64_t ap_continuous_next(const struct ap_continuous *k);
/* After a drain: note the processes of new samples (their cgroups are read while they run). */
void ap_continuous_observe(struct ap_continuous *k, struct ap_collector *cols, size_t n);
/* After a drain: close the interval of every collector and queue one push per mode. */
void ap_continuous_push(struct ap_continuous *k, struct ap_collector *cols, size_t n,
			struct ap_symbolizer *sym, uint64_t now_mono);
/* After the final drain and the stats: push the last interval, deliver within
 * --shutdown-timeout, print the run's summary. Returns an enum ap_exit code. */
int ap_continuous_finish(struct ap_continuous *k, struct ap_collector *cols, size_t n,
			 struct ap_symbolizer *sym);

#endif
