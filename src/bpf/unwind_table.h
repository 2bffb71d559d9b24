/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Compact unwind tables: shared by the BPF stack walker (unwind.h) and the agent that compiles
 * them from .eh_frame/.debug_frame (src/unwind). Fixed-width fields, largest first.
 *
 * One table per ELF file (shared by every process that maps it), one inner ARRAY map of
 * 8-byte elements each:
 *   elements [0, row_base)  bucket index: nbuckets + 1 u32s, two per element; u32 b is the
 *                           row in effect at table pc b << shift (the last one: the last row)
 *   elements [row_base, +nrows)  rows sorted by pc; a row covers [pc, next row's pc)
 * with row_base = AP_UNWIND_ROW_BASE(nbuckets). The compiler picks the largest shift for which
 * no bucket spans more than AP_UNWIND_BUCKET_ROWS rows, so the walker finds a row with one or
 * two index reads and a 5-step search. Table pcs are relative to the file's first covered
 * page (u32: text up to 4 GiB).
 *
 * One mapping table per process, in the plain hash `unwind_pids`: its executable mappings
 * sorted by start, AP_UNWIND_CHUNK per entry, keyed by (pid, chunk number). A plain hash and
 * not a map of maps: replacing an inner map makes the kernel wait for an RCU grace period
 * (~16 ms), which would delay every new process.
 */
#ifndef AP_BPF_UNWIND_TABLE_H
#define AP_BPF_UNWIND_TABLE_H

#define AP_UNWIND_BUCKET_ROWS 32 /* rows a bucket may span (inclusive) */
#define AP_UNWIND_MIN_SHIFT 4
#define AP_UNWIND_MAX_SHIFT 12
#define AP_UNWIND_ROW_BASE(nbuckets) (((nbuckets) + 2) / 2)
#define AP_UNWIND_MAX_FILES 8192  /* slots of unwind_files (ELF files with tables) */
#define AP_UNWIND_MAX_CHUNKS 16384 /* entries of unwind_pids (most processes need one) */
#define AP_UNWIND_CHUNK 32	   /* mappings per entry */
#define AP_UNWIND_PID_CHUNKS 32	   /* entries per process: 1024 executable mappings */
#define AP_UNWIND_NO_FILE 0xffffu /* mapping without CFI: unwind it with frame pointers */
#define AP_UNWIND_MAX_FRAMES 127

/* How the CFA (the caller's stack pointer) of a row is found: low 3 bits of `kind`. */
enum ap_cfa_kind {
	AP_CFA_NONE = 0,	/* no CFI covers this pc: use frame pointers for the frame */
	AP_CFA_RSP = 1,		/* CFA = RSP + off */
	AP_CFA_RBP = 2,		/* CFA = RBP + off */
	AP_CFA_PLT = 3,		/* PLT: CFA = RSP + off + ((pc & 15) >= param ? 8 : 0) */
	AP_CFA_DEREF_RBP = 4,	/* realigned stack (DRAP): CFA = *(RBP + off) */
	AP_CFA_SIGNAL = 5,	/* signal trampoline: registers come from the ucontext at RSP */
	AP_CFA_END = 6,		/* return address undefined: outermost frame (_start) */
	AP_CFA_UNSUPPORTED = 7, /* a rule the walker does not model: try frame pointers */
};
#define AP_CFA_KIND_MASK 0x07
#define AP_CFA_PARAM_SHIFT 3 /* bits 3-6: kind parameter (the PLT threshold) */
#define AP_CFA_PARAM_MASK 0x0f
#define AP_CFA_SCALED 0x80 /* cfa_off is in units of 8 bytes */

/* rbp_off values that are not "saved at CFA + 8 * rbp_off" */
#define AP_RBP_SAME 0	   /* RBP is not changed by this frame */
#define AP_RBP_AT_RBP (-127) /* saved at [RBP] (DRAP frames) */
#define AP_RBP_LOST (-128)   /* not recoverable: the caller's RBP is unknown */

/* x86-64 ucontext_t offsets used to unwind through a signal trampoline (__restore_rt). */
#define AP_UCTX_RBP 0x78
#define AP_UCTX_RSP 0xa0
#define AP_UCTX_RIP 0xa8

/* The return address is always at CFA - 8 (x86-64); the table compiler checks it. */
struct ap_unwind_row {
	__u32 pc;      /* table-relative pc of the first byte this row covers */
	__s16 cfa_off; /* times 8 with AP_CFA_SCALED */
	__u8 kind;     /* enum ap_cfa_kind | param << AP_CFA_PARAM_SHIFT | AP_CFA_SCALED */
	__s8 rbp_off;  /* caller's RBP saved at CFA + 8 * rbp_off, or AP_RBP_* */
};

struct ap_unwind_mapping {
	__u64 start;	/* runtime [start, end) of an executable mapping */
	__u64 end;
	__u64 bias;	/* table pc = runtime pc - bias */
	__u32 nbuckets; /* of the file's table */
	__u16 file_id;	/* slot in unwind_files, or AP_UNWIND_NO_FILE */
	__u8 shift;	/* bucket size: 1 << shift bytes of code */
	__u8 flags;	/* AP_UNWIND_MAP_* */
};
#define AP_UNWIND_MAP_PENDING 1 /* its table is still being compiled */

struct ap_unwind_pid_key {
	__u32 pid;   /* thread group id */
	__u32 chunk; /* 0, 1, ... */
};

struct ap_unwind_pid_chunk {
	__u32 n;      /* mappings used in m[] */
	__u32 chunks; /* entries the process has in all */
	struct ap_unwind_mapping m[AP_UNWIND_CHUNK];
};

/* How a user stack walk ended; also stored in the top 4 bits of the stack id. */
enum ap_unwind_status {
	AP_UNWIND_NONE = 0,		/* not walked (kernel thread, unwinding off) */
	AP_UNWIND_COMPLETE = 1,		/* reached the outermost frame */
	AP_UNWIND_TRUNCATED = 2,	/* AP_UNWIND_MAX_FRAMES frames and not yet at the end */
	AP_UNWIND_FAIL_READ = 3,	/* stack memory unreadable */
	AP_UNWIND_FAIL_CFA = 4,		/* implausible frame (CFA below SP, bad RBP) */
	AP_UNWIND_FAIL_NO_MAPPING = 5,	/* pc outside every mapping and no frame pointer */
	AP_UNWIND_NO_TABLES = 6,	/* process not loaded yet: frame pointers only */
};
#define AP_UNWIND_STATUS_SHIFT 60

/* Per-CPU counters of the walker (`unwind_stats`), summed and reported by the agent. */
enum ap_unwind_stat {
	AP_UNWIND_STAT_STACKS = 0,	 /* user stacks walked */
	AP_UNWIND_STAT_COMPLETE,	 /* ... that reached the outermost frame with tables */
	AP_UNWIND_STAT_COMPLETE_FP,	 /* ... that did, with a frame-pointer step somewhere */
	AP_UNWIND_STAT_TRUNCATED,	 /* ... cut at AP_UNWIND_MAX_FRAMES */
	AP_UNWIND_STAT_FAIL_READ,
	AP_UNWIND_STAT_FAIL_CFA,
	AP_UNWIND_STAT_FAIL_NO_MAPPING,
	AP_UNWIND_STAT_NO_TABLES,	 /* process without tables yet: frame pointers */
	AP_UNWIND_STAT_FRAMES,		 /* frames produced */
	AP_UNWIND_STAT_FRAMES_FP,	 /* ... of which by frame pointer (no CFI for the pc) */
	AP_UNWIND_STAT_FRAMES_UNSUPPORTED, /* ... of which the CFI rule was not modelled */
	AP_UNWIND_STAT_UNKNOWN_PC,	 /* stacks with a pc outside every known mapping */
	AP_UNWIND_STAT_NS,		 /* time spent walking, nanoseconds */
	AP_UNWIND_STAT_MAX,
};

#endif
