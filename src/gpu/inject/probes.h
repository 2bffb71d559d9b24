/* SPDX-License-Identifier: MIT */
/*
 * The library's three USDT probes (provider "aperture"; layouts in bpf/gpu_activity.h).
 * A probe site is one nop plus an ELF note (.note.stapsdt) that tells a tracer where the
 * arguments are; when no tracer is attached it costs nothing but the nop.
 *
 * The test build compiles the library a second time with AP_CUPTI_TEST_SINK: each probe then
 * calls a function the test program provides, so the unit test sees exactly what a tracer
 * would, without BPF.
 */
#ifndef AP_CUPTI_PROBES_H
#define AP_CUPTI_PROBES_H

#include <stdint.h>

#include "bpf/gpu_activity.h"

#ifdef AP_CUPTI_TEST_SINK
void ap_cupti_sink_correlation(uint32_t corr, uint32_t cbid, uint32_t domain);
void ap_cupti_sink_activity(const struct ap_ga_rec *recs, uint32_t count, uint32_t abi);
void ap_cupti_sink_stats(const struct ap_ga_lib_stats *s);
#define AP_PROBE_CORRELATION(c, b, d) ap_cupti_sink_correlation(c, b, d)
#define AP_PROBE_ACTIVITY(r, n, a) ap_cupti_sink_activity(r, n, a)
#define AP_PROBE_STATS(s) ap_cupti_sink_stats(s)
#else
#include <sys/sdt.h>
/* sys/sdt.h marks a probe site with a one-byte nop. A uprobe there is single-stepped out of
 * line; on a five-byte nop the kernel emulates (and on recent x86 kernels optimises) it
 * instead: ~10x cheaper per hit on the test VM (docs/gpu.md). The macro is expanded where a
 * probe is used, so redefining it here takes effect for the probes below. */
#if defined(__x86_64__)
#undef _SDT_NOP
#define _SDT_NOP %{disp8%} nopl 0(%%rax, %%rax, 1)
#endif
#define AP_PROBE_CORRELATION(c, b, d) STAP_PROBE3(aperture, correlation, c, b, d)
#define AP_PROBE_ACTIVITY(r, n, a) STAP_PROBE3(aperture, activity, r, n, a)
#define AP_PROBE_STATS(s) STAP_PROBE1(aperture, stats, s)
#endif

#endif
