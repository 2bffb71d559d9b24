/* SPDX-License-Identifier: MIT */
/*
 * The two execution engines behind src/filter/filter.h. Both receive the module after the
 * policy checks and the metering rewrite (wasm_module.h), so fuel and call depth are enforced
 * by the module's own code and mean the same in each; an engine only instantiates, calls an
 * export, reports traps and exposes the linear memory.
 *
 *   interp  libwabt's interpreter (wabt_shim.cc, the only C++ file): always available.
 *   aot     wasm2c + a C compiler into a cached shared object (aot.c + aot_runtime.c).
 */
#ifndef AP_FILTER_ENGINE_H
#define AP_FILTER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aot_glue.h" /* ap_engine_call, ap_hostcall, ap_host_fn: shared with compiled modules */

#ifdef __cplusplus
extern "C" {
#endif

struct ap_engine_load {
	const uint8_t *wasm; /* the instrumented module */
	size_t len;
	const char *label;  /* file name, for messages */
	const int *hostfns; /* enum ap_filter_hostfn of each function import, in order */
	unsigned nhostfns;
	ap_host_fn host;
	void *host_ctx;
	uint32_t max_call_depth; /* the limit baked into the module */
	uint32_t exports;	 /* bit (1 << enum ap_engine_export) per export present */
	/* aot only */
	const char *cache_dir; /* NULL: default */
	const char *cc;	       /* NULL: $CC, else "cc" */
	const char *wasm2c;    /* NULL: "wasm2c" from PATH */
	uint64_t max_stack_bytes;
	bool cached;	   /* out: reused a compiled object */
	char note[192];	   /* out: why nothing was cached, if so */
	double compile_ms; /* out: translation + compilation time */
};

struct ap_engine_ops {
	const char *name;
	/* Returns 0 and *inst, or -errno with a reason in err. */
	int (*create)(struct ap_engine_load *ld, void **inst, char *err, size_t errlen);
	/* Whether the module exports `id`. */
	bool (*has_export)(void *inst, int id);
	/* Returns enum ap_engine_trap and sets c->mem/mem_size. The instance stays usable after
	 * a trap. */
	int (*call)(void *inst, struct ap_engine_call *c);
	/* The function and context that perform `call` with one indirection less. */
	void (*direct)(void *inst, int (**fn)(void *ctx, struct ap_engine_call *c), void **ctx);
	/* Linear memory (moves only during calls: memory.grow). */
	uint8_t *(*memory)(void *inst, uint64_t *size);
	void (*destroy)(void *inst);
};

extern const struct ap_engine_ops ap_engine_interp;
extern const struct ap_engine_ops ap_engine_aot;

/* Full validation with libwabt, restricted to the features filters may use. Returns 0 or
 * -EINVAL with "offset N: reason" in err. */
int ap_wabt_validate(const uint8_t *wasm, size_t len, char *err, size_t errlen);

/* Whether the aot engine can run here (wasm2c, the runtime header and a compiler found).
 * On false, `why` says what is missing. */
bool ap_engine_aot_available(const char *cc, const char *wasm2c, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif

#endif
