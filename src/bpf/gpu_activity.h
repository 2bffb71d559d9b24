/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the CUPTI injection library (src/gpu/inject/, which lays out the records its USDT
 * probes point at), gpu_activity.bpf.c (which reads them) and its loader (src/gpu/activity.c).
 * Fixed-width fields only, largest first, padding named; the loader and the library
 * _Static_assert the sizes. Bump AP_GA_ABI when a layout changes: the BPF side refuses
 * records of another ABI (counted), so an old library never feeds garbage to a new agent.
 *
 * USDT probes of provider "aperture" (sys/sdt.h in the library):
 *   correlation(u32 correlation_id, u32 cbid, u32 domain)   on the launching thread, in the
 *        CUPTI API_ENTER callback of a launch/copy API; rate-limited per thread.
 *   activity(const struct ap_ga_rec *recs, u32 count, u32 abi)   from CUPTI's buffer
 *        completion: up to AP_GA_BATCH_MAX records, already on CLOCK_MONOTONIC.
 *   stats(const struct ap_ga_lib_stats *s)   every flush period and at exit: the library's
 *        cumulative counters.
 */
#ifndef AP_BPF_GPU_ACTIVITY_H
#define AP_BPF_GPU_ACTIVITY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define AP_GA_ABI 1
#define AP_GA_BATCH_MAX 32  /* records per activity probe hit */
#define AP_GA_NAME_MAX 256  /* kernel name bytes carried (NUL included); longer: cut */

/* ap_ga_rec.kind: the values of enum ap_gpu_activity_kind (src/gpu/gpu_model.h) */
#define AP_GA_KERNEL 1
#define AP_GA_MEMCPY 2
#define AP_GA_MEMSET 3
#define AP_GA_MEMORY 4

/* ap_ga_rec.op for AP_GA_MEMORY */
#define AP_GA_MEM_ALLOC 1
#define AP_GA_MEM_FREE 2

/* One activity record as the library hands it over (88 bytes). */
struct ap_ga_rec {
	__u64 start_ns; /* CLOCK_MONOTONIC; MEMORY: the operation's time (start == end) */
	__u64 end_ns;
	__u64 bytes;	/* MEMCPY/MEMSET/MEMORY */
	__u64 address;	/* MEMORY: the allocation's device address */
	__u64 name_ptr; /* KERNEL: the mangled name in the process's memory (CUPTI's), or 0 */
	__u32 correlation;
	__u32 kind;   /* AP_GA_* */
	__u32 device;
	__u32 stream;
	__u32 grid[3];
	__u32 block[3];
	__u32 copy_dir; /* MEMCPY: enum ap_gpu_copy_dir, already mapped from CUPTI's copyKind */
	__u32 op;	/* MEMORY: AP_GA_MEM_* */
};

/* ap_ga_lib_stats.clock */
#define AP_GA_CLOCK_CALLBACK 1 /* CUPTI calls our CLOCK_MONOTONIC timestamp callback */
#define AP_GA_CLOCK_OFFSET 2   /* CUPTI's own clock, shifted by a measured offset */

/* The library's counters, cumulative since it was loaded (112 bytes). */
struct ap_ga_lib_stats {
	__u32 abi;
	__u32 clock;		     /* AP_GA_CLOCK_* */
	__u64 correlations;	     /* correlation probes fired */
	__u64 rate_dropped;	     /* correlation probes the token bucket dropped */
	__u64 records;		     /* activity records handed over */
	__u64 records_other;	     /* records of kinds we do not forward */
	__u64 batches;		     /* activity probe hits */
	__u64 buffers_completed;
	__u64 buffers_refused;	     /* CUPTI asked for a buffer while all were in use */
	__u64 cupti_dropped;	     /* records CUPTI dropped (cuptiActivityGetNumDroppedRecords) */
	__u64 enable_failed;	     /* bit per activity kind CUPTI refused to enable */
	__u64 flushes;
	__u64 rate_per_s;	     /* the configuration, for the report */
	__u64 buf_size;
	__u64 buf_count;
};

/* ---- what the BPF programs send to the loader through the ring buffer ---- */

enum ap_ga_ev_type {
	AP_GA_EV_CORR = 1,
	AP_GA_EV_ACT = 2,
	AP_GA_EV_NAME = 3,
	AP_GA_EV_STATS = 4,
};

struct ap_ga_ev_hdr {
	__u32 type; /* enum ap_ga_ev_type */
	__u32 pid;
};

struct ap_ga_ev_corr {
	struct ap_ga_ev_hdr hdr;
	__u64 ts_ns; /* bpf_ktime_get_ns() at the probe */
	__u32 tid;
	__u32 correlation;
	__u32 cbid;
	__u32 domain; /* CUPTI's CUpti_CallbackDomain: 1 driver, 2 runtime */
};

struct ap_ga_ev_act {
	struct ap_ga_ev_hdr hdr;
	struct ap_ga_rec rec;
};

/* The first time a (pid, name pointer) is seen, its string (sent before the record). */
struct ap_ga_ev_name {
	struct ap_ga_ev_hdr hdr;
	__u64 ptr;
	char name[AP_GA_NAME_MAX];
};

struct ap_ga_ev_stats {
	struct ap_ga_ev_hdr hdr;
	struct ap_ga_lib_stats s;
};

/* BPF-side counters (per-CPU array gpu_activity_stats) */
enum ap_ga_stat {
	AP_GA_STAT_CORR = 0,	    /* correlation events sent */
	AP_GA_STAT_RECORDS,	    /* activity records sent */
	AP_GA_STAT_RINGBUF_DROPS,   /* events lost: the ring buffer was full */
	AP_GA_STAT_READ_FAULTS,	    /* a record or stats block could not be read */
	AP_GA_STAT_BAD_ABI,	    /* batches of another ABI, refused */
	AP_GA_STAT_NAME_FAULTS,	    /* names not readable at the probe (the loader reads them) */
	AP_GA_STAT_MAX,
};

#endif
