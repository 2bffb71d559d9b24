/* SPDX-License-Identifier: MIT */
/*
 * Engine-neutral view of a filter module: a strict structural parse of the WebAssembly
 * binary, the load-time policy (imports, exports, start, limits), and the metering rewrite
 * that both engines run, so fuel and call depth mean the same thing in each.
 *
 * Nothing here executes the module; full validation (types, stack discipline) is done by
 * libwabt's validator afterwards. The parser only trusts what it has bounds-checked.
 */
#ifndef AP_FILTER_WASM_MODULE_H
#define AP_FILTER_WASM_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aot_glue.h"

/* Wasm value types (MVP). */
#define WASM_I32 0x7f
#define WASM_I64 0x7e
#define WASM_F32 0x7d
#define WASM_F64 0x7c

/* External kinds. */
#define WASM_EXT_FUNC 0
#define WASM_EXT_TABLE 1
#define WASM_EXT_MEMORY 2
#define WASM_EXT_GLOBAL 3

#define WASM_PAGE 65536u

struct wasm_name {
	const uint8_t *p; /* into the module bytes, not NUL-terminated */
	uint32_t len;
};

struct wasm_type {
	const uint8_t *params, *results;
	uint32_t nparams, nresults;
};

struct wasm_import {
	struct wasm_name module, name;
	uint8_t kind;
	uint32_t type; /* functions: type index */
	int hostfn;    /* enum ap_filter_hostfn once checked, else -1 */
};

struct wasm_export {
	struct wasm_name name;
	uint8_t kind;
	uint32_t index;
};

struct wasm_func {
	uint32_t type;
	uint32_t body_off; /* offset of the body (local declarations) in the module bytes */
	uint32_t body_len;
	uint32_t locals_len; /* bytes of the local declarations at body_off */
	uint32_t nlocals;    /* declared locals, params excluded */
	bool calls;	     /* calls a defined function or call_indirect: depth-counted */
	bool calls_host;     /* calls a host function directly */
	bool loops;	     /* contains a loop */
	uint32_t ninsns;     /* instructions in the body */
	/* Loop-free leaf: every call runs at most ninsns instructions, so it needs no meter;
	 * callers (or the host, for an export) charge this many units. 0 for metered ones. */
	uint32_t static_cost;
};

struct wasm_section {
	uint32_t off, len; /* contents */
	bool present;
};

/* Limits checked at load. */
struct wasm_limits {
	uint32_t max_module_bytes;
	uint32_t max_functions; /* imported + defined */
	uint32_t max_locals;	/* params + locals of one function */
	uint32_t max_memory_pages;
	uint32_t max_table_elems;
};

struct wasm_module {
	const uint8_t *bytes;
	size_t len;
	struct wasm_type *types;
	uint32_t ntypes;
	struct wasm_import *imports;
	uint32_t nimports, nfunc_imports;
	struct wasm_func *funcs; /* defined functions */
	uint32_t nfuncs;
	uint32_t nglobals; /* defined globals */
	uint32_t nmemories, ntables;
	uint32_t mem_min, mem_max; /* pages; mem_max == UINT32_MAX: none declared */
	struct wasm_export *exports;
	uint32_t nexports;
	bool has_start;
	uint32_t max_static_cost;    /* charged at call_indirect sites */
	struct wasm_section sec[13]; /* by section id; custom sections are skipped */
};

/* Structural parse. `m` is filled (free with wasm_module_release even on failure). The
 * module bytes must outlive `m`. Returns 0 or -EINVAL with a reason in err. */
int wasm_module_parse(struct wasm_module *m, const uint8_t *bytes, size_t len,
		      const struct wasm_limits *lim, char *err, size_t errlen);
void wasm_module_release(struct wasm_module *m);

/* The Aperture filter contract: imports only from the host API, required exports with
 * their signatures, one memory within the cap, no start function. Sets imports[].hostfn.
 * Returns 0 or -EINVAL with a reason. */
int wasm_module_check_filter(struct wasm_module *m, const struct wasm_limits *lim, char *err,
			     size_t errlen);

/* Index of the export `name` of `kind`, or -1. */
int wasm_module_find_export(const struct wasm_module *m, const char *name, uint8_t kind);
/* Type of function `index` (imported or defined), or NULL. */
const struct wasm_type *wasm_module_func_type(const struct wasm_module *m, uint32_t index);
/* "(i32, i32) -> i32" into buf. */
const char *wasm_type_str(const struct wasm_type *t, char *buf, size_t len);

/* Names of the globals the metering rewrite adds and exports. */
#define AP_METER_FUEL_EXPORT AP_METER_FUEL_NAME
#define AP_METER_DEPTH_EXPORT AP_METER_DEPTH_NAME

struct wasm_instrument_opts {
	uint32_t max_call_depth;   /* nested calls of depth-counted functions */
	uint32_t max_memory_pages; /* memory maximum written into the module */
};

/*
 * Metering rewrite. Adds two mutable globals, exported as AP_METER_FUEL_EXPORT (i64) and
 * AP_METER_DEPTH_EXPORT (i32); at every function entry and every loop iteration subtracts
 * the static instruction count of that straight-line region from fuel and executes
 * `unreachable` when it drops below zero; wraps every function that calls another defined
 * function (or call_indirect) so the wrapper counts depth and traps past max_call_depth;
 * clamps the memory maximum; drops custom sections. The caller frees *out with free().
 * Returns 0, -ENOMEM, or -EINVAL with a reason.
 */
int wasm_instrument(const struct wasm_module *m, const struct wasm_instrument_opts *o,
		    uint8_t **out, size_t *outlen, char *err, size_t errlen);

#endif
