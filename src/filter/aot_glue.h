/* SPDX-License-Identifier: MIT */
/*
 * The contract between the host and a filter compiled by the aot engine. This header is
 * compiled into Aperture and, embedded as text, into every compiled module (with
 * aot_runtime.c), so it must stay plain C with no other Aperture includes. Bump
 * AP_AOT_API_VERSION on any change: it is part of the compile cache key.
 */
#ifndef AP_FILTER_AOT_GLUE_H
#define AP_FILTER_AOT_GLUE_H

#include <stddef.h>
#include <stdint.h>

#define AP_AOT_API_VERSION 1
#define AP_AOT_API_SYMBOL "ap_aot_api"

/* Globals the metering rewrite adds to every module. */
#define AP_METER_FUEL_NAME "__ap_fuel"
#define AP_METER_DEPTH_NAME "__ap_depth"

enum ap_engine_export {
	AP_EXPORT_ABI_VERSION = 0,
	AP_EXPORT_EVENT_BUFFER,
	AP_EXPORT_FILTER,
	AP_EXPORT_INIT,
	AP_EXPORT_INITIALIZE, /* _initialize */
	AP_EXPORT__COUNT,
};

/* Raw trap classes an engine reports (filter.c refines UNREACHABLE into fuel/depth). */
enum ap_engine_trap {
	AP_ETRAP_NONE = 0,
	AP_ETRAP_UNREACHABLE,
	AP_ETRAP_MEMORY,
	AP_ETRAP_STACK, /* the engine's own call-stack limit (a backstop) */
	AP_ETRAP_ARITH,
	AP_ETRAP_INDIRECT,
	AP_ETRAP_HOST, /* a host function failed the call */
	AP_ETRAP_OTHER,
};

/* Host function numbers (== enum ap_filter_hostfn; filter.c asserts it). */
#define AP_HOSTFN_LOG 0
#define AP_HOSTFN_GET_TIMESTAMP 1
#define AP_HOSTFN_FRAME_SYMBOL 2
#define AP_HOSTFN_FRAME_MODULE 3
#define AP_HOSTFN_AGENT_PID 4

/* What a host function sees of the calling instance. It may lower `fuel` (its own cost);
 * it returns 0, or a nonzero trap reason that aborts the call. */
struct ap_hostcall {
	uint8_t *mem;
	uint64_t mem_size;
	int64_t fuel;
};

typedef int (*ap_host_fn)(void *ctx, unsigned fn, const uint64_t *args, uint64_t *ret,
			  struct ap_hostcall *hc);

/* One call of an export. */
struct ap_engine_call {
	int export_id; /* enum ap_engine_export */
	uint32_t args[2];
	unsigned nargs;
	uint32_t result; /* out */
	int64_t fuel;	 /* in: budget; out: what is left (negative when exhausted) */
	uint32_t depth;	 /* out: the depth global after the call (> limit: depth trap) */
	int host_trap;	 /* out with AP_ETRAP_HOST: what the host function returned */
	uint8_t *mem;	 /* out: linear memory after the call (it moves on memory.grow) */
	uint64_t mem_size;
	char msg[160]; /* out: the engine's trap message, if it has one */
};

/* The one symbol a compiled module exports. */
struct ap_aot_api {
	uint32_t version;   /* AP_AOT_API_VERSION */
	uint32_t exports;   /* bit (1 << enum ap_engine_export) per export present */
	uint32_t max_depth; /* the native call-depth backstop it was compiled with */
	uint32_t pad;
	/* Instantiate; NULL with a reason in err on failure. */
	void *(*create)(ap_host_fn host, void *ctx, char *err, size_t errlen);
	/* Call an export with fuel set and depth reset; returns enum ap_engine_trap and fills
	 * the out fields of c. */
	int (*call)(void *inst, struct ap_engine_call *c);
	uint8_t *(*memory)(void *inst, uint64_t *size);
	void (*destroy)(void *inst);
};

#endif
