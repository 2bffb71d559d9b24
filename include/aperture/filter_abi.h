/* SPDX-License-Identifier: MIT */
/*
 * Aperture filter ABI, version 1: what a WebAssembly filter module sees and must provide.
 *
 * This header is shared by the agent (x86_64) and by filter modules (wasm32). It uses only
 * fixed-width fields at fixed offsets, little-endian, with named padding; the offsets are
 * checked below on every compiler that includes it. A record is the 160-byte header followed
 * by n_kernel + n_user 8-byte frame addresses: its `size` is 160 + 8 * (n_kernel + n_user).
 *
 * Module contract (docs/filters.md has the full text):
 *   exports  memory
 *            i32 ap_abi_version(void)          must return AP_FILTER_ABI_VERSION
 *            i32 ap_event_buffer(void)         offset of AP_FILTER_BUFFER_SIZE bytes, 8-aligned
 *            i32 ap_filter(i32 event, i32 len) called once per event: enum ap_filter_verdict
 *            i32 ap_init(i32 cfg, i32 len)     optional: the configuration string, once at
 *                                              load; 0 accepts it, anything else fails the load
 *            _initialize()                     optional (wasi-libc reactors): called first
 *   imports  only functions of module "env" listed in enum ap_filter_hostfn; anything else
 *            (WASI included) is rejected at load.
 *   forbidden: a start function; more than one memory; shared or 64-bit memory.
 *
 * Host functions (all in module "env"; pointers are offsets into the module's memory, and a
 * range outside it traps the call):
 *   void log(i32 level, i32 msg, i32 len)             enum ap_filter_log_level, rate-limited
 *   i64  get_timestamp(void)                          CLOCK_MONOTONIC ns (event clock)
 *   i32  frame_symbol(i32 frame, i32 buf, i32 cap)    function name of frames[frame]
 *   i32  frame_module(i32 frame, i32 buf, i32 cap)    binary/module name of frames[frame]
 *   i32  agent_pid(void)                              pid of the agent process
 * frame_symbol/frame_module copy at most cap - 1 bytes plus a NUL and return the full length
 * (a result >= cap means truncated), AP_FILTER_ENOENT when unknown or AP_FILTER_EINVAL for
 * a frame index >= n_kernel + n_user.
 *
 * Transform: when ap_filter returns AP_FILTER_TRANSFORM, the host reads the record back from
 * the same place and accepts it only if:
 *   - comm holds at most 15 bytes then a NUL, tag at most 31 then a NUL, neither with a
 *     control byte (< 0x20 or 0x7f). Bytes after the NUL are ignored (zeroed).
 *   - 1 <= weight <= AP_FILTER_MAX_WEIGHT_SCALE * original weight (scale it, never zero it:
 *     return AP_FILTER_DROP instead).
 *   - n_kernel and n_user did not grow, and each stack is a contiguous run of the original
 *     one (frames trimmed at the leaf end, the root end, or both; never new addresses).
 *     Frames are read from the new layout: kernel frames first, then user frames.
 *   - every other field (abi_version, type, flags, pid, tid, timestamp_ns, cpu and the
 *     type-specific fields) is unchanged. `size` is ignored and recomputed.
 * A record that breaks a rule counts as a trap of reason "bad_transform"; the event is then
 * kept unchanged (or dropped with --filter-on-error drop).
 */
#ifndef APERTURE_FILTER_ABI_H
#define APERTURE_FILTER_ABI_H

#include <stdint.h>

#define AP_FILTER_ABI_VERSION 1u

#define AP_FILTER_COMM_LEN 16
#define AP_FILTER_TAG_LEN 32
#define AP_FILTER_MAX_FRAMES 256 /* kernel + user frames in one record */
#define AP_FILTER_HEADER_SIZE 160u
#define AP_FILTER_EVENT_MAX_SIZE (AP_FILTER_HEADER_SIZE + 8u * AP_FILTER_MAX_FRAMES)
/* Size of the buffer whose offset ap_event_buffer() returns: holds one event, or the
 * configuration string plus a NUL. */
#define AP_FILTER_BUFFER_SIZE 4096u
#define AP_FILTER_CONFIG_MAX (AP_FILTER_BUFFER_SIZE - 1u)
#define AP_FILTER_MAX_WEIGHT_SCALE 1024u

/* Negative results of the frame_* host functions. */
#define AP_FILTER_ENOENT (-1)
#define AP_FILTER_EINVAL (-2)

enum ap_filter_event_type {
	AP_FILTER_EV_CPU = 1,	  /* a CPU sample; weight = samples */
	AP_FILTER_EV_LOCK = 2,	  /* a contended lock wait; weight = wait ns */
	AP_FILTER_EV_SYSCALL = 3, /* a system call; weight = calls (1) or ns, per the mode */
	AP_FILTER_EV_GPU = 4,	  /* a GPU operation (reserved) */
};

/* What ap_filter returns. Any other value counts as a trap ("bad_result"). */
enum ap_filter_verdict {
	AP_FILTER_DROP = 0,
	AP_FILTER_KEEP = 1,
	AP_FILTER_TRANSFORM = 2,
};

enum ap_filter_log_level {
	AP_FILTER_LOG_ERROR = 0,
	AP_FILTER_LOG_WARN = 1,
	AP_FILTER_LOG_INFO = 2,
	AP_FILTER_LOG_DEBUG = 3,
};

/* Event flags. */
#define AP_FILTER_F_KERNEL_TRUNCATED (1u << 0) /* kernel stack hit the capture depth */
#define AP_FILTER_F_USER_TRUNCATED (1u << 1)   /* user stack hit the capture depth */
#define AP_FILTER_F_IDLE (1u << 2)	       /* cpu: sample of the idle task */

/* Type-specific fields (64 bytes, selected by `type`). */
struct ap_filter_cpu {
	uint64_t period_ns; /* CPU time one sample stands for */
	uint64_t pad[7];
};

struct ap_filter_lock {
	uint64_t addr;	     /* lock address (user or kernel) */
	uint64_t wait_ns;    /* how long this wait blocked */
	uint32_t kind;	     /* enum ap_lock_kind (src/bpf/lock.h values) */
	uint32_t flags;	     /* kernel: contention_begin flags; user: futex op */
	uint32_t holder_tid; /* 0 unknown, 0xFFFFFFFE readers */
	uint32_t lclass;     /* well-known kernel lock class, 0 none */
	uint64_t pad[4];
};

struct ap_filter_syscall {
	uint64_t latency_ns; /* entry to exit */
	int64_t ret;	     /* return value (negative errno on failure) */
	uint32_t nr;	     /* x86_64 system call number */
	uint32_t pad0;
	uint64_t pad[5];
};

struct ap_filter_gpu {
	uint64_t duration_ns;
	uint64_t bytes;		 /* memcpy/memset size, 0 for kernels */
	uint64_t correlation_id; /* ties a launch to its completion */
	uint32_t kind;		 /* reserved: kernel, memcpy, memset, sync */
	uint32_t device;
	uint32_t stream;
	uint32_t pad0;
	uint64_t pad[3];
};

struct ap_filter_event {
	uint32_t abi_version;			  /* 0: AP_FILTER_ABI_VERSION */
	uint32_t size;				  /* 4: bytes of this record */
	uint32_t type;				  /* 8: enum ap_filter_event_type */
	uint32_t flags;				  /* 12: AP_FILTER_F_* */
	uint32_t pid;				  /* 16: process (thread group) id */
	uint32_t tid;				  /* 20: thread id */
	uint64_t timestamp_ns;			  /* 24: CLOCK_MONOTONIC */
	uint64_t weight;			  /* 32: what the event adds to the profile */
	uint32_t cpu;				  /* 40: CPU the event happened on */
	uint16_t n_kernel;			  /* 44: kernel frames, frames[0 .. n_kernel) */
	uint16_t n_user;			  /* 46: user frames, frames[n_kernel .. +n_user) */
	char comm[AP_FILTER_COMM_LEN];		  /* 48: NUL-terminated thread name */
	char tag[AP_FILTER_TAG_LEN];		  /* 64: NUL-terminated label; "" on input */
	union {					  /* 96: by type */
		struct ap_filter_cpu sample;	  /* AP_FILTER_EV_CPU */
		struct ap_filter_lock lock;	  /* AP_FILTER_EV_LOCK */
		struct ap_filter_syscall syscall; /* AP_FILTER_EV_SYSCALL */
		struct ap_filter_gpu gpu;	  /* AP_FILTER_EV_GPU */
		uint8_t raw[64];
	};
	uint64_t frames[AP_FILTER_MAX_FRAMES]; /* 160: leaf first, kernel then user */
};

#define AP_FILTER_EVENT_SIZE(nframes) (AP_FILTER_HEADER_SIZE + 8u * (uint32_t)(nframes))

/* Host functions a module may import from "env" (the index is internal to the host). */
enum ap_filter_hostfn {
	AP_FILTER_HOST_LOG = 0,
	AP_FILTER_HOST_GET_TIMESTAMP,
	AP_FILTER_HOST_FRAME_SYMBOL,
	AP_FILTER_HOST_FRAME_MODULE,
	AP_FILTER_HOST_AGENT_PID,
	AP_FILTER_HOST__COUNT,
};

_Static_assert(sizeof(struct ap_filter_cpu) == 64, "cpu fields");
_Static_assert(sizeof(struct ap_filter_lock) == 64, "lock fields");
_Static_assert(sizeof(struct ap_filter_syscall) == 64, "syscall fields");
_Static_assert(sizeof(struct ap_filter_gpu) == 64, "gpu fields");
_Static_assert(__builtin_offsetof(struct ap_filter_event, timestamp_ns) == 24, "timestamp");
_Static_assert(__builtin_offsetof(struct ap_filter_event, cpu) == 40, "cpu");
_Static_assert(__builtin_offsetof(struct ap_filter_event, n_kernel) == 44, "n_kernel");
_Static_assert(__builtin_offsetof(struct ap_filter_event, comm) == 48, "comm");
_Static_assert(__builtin_offsetof(struct ap_filter_event, tag) == 64, "tag");
_Static_assert(__builtin_offsetof(struct ap_filter_event, raw) == 96, "fields");
_Static_assert(__builtin_offsetof(struct ap_filter_event, frames) == AP_FILTER_HEADER_SIZE,
	       "frames");
_Static_assert(sizeof(struct ap_filter_event) == AP_FILTER_EVENT_MAX_SIZE, "event size");
_Static_assert(AP_FILTER_EVENT_MAX_SIZE <= AP_FILTER_BUFFER_SIZE, "buffer holds an event");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the filter ABI is little-endian"
#endif

#endif
