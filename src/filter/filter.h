/* SPDX-License-Identifier: MIT */
/*
 * WebAssembly event filters: the engine-neutral API the agent and the CLI call. This is the
 * only interface to src/filter; no engine header leaks through it.
 *
 * A filter is loaded once (validated, checked against the filter contract of
 * include/aperture/filter_abi.h, rewritten to meter its own fuel and call depth, instantiated
 * on an engine, configured through ap_init) and then runs on each event:
 *
 *	struct ap_filter_opts o;
 *	ap_filter_opts_init(&o);           // then set engine, on_error, limits, callbacks
 *	if (ap_filter_load(path, config, &o, &f, err, sizeof(err)))  // fail fast: exit 2
 *	...
 *	int v = ap_filter_run(f, &ev, &out);  // KEEP: ev, TRANSFORM: out, DROP: nothing
 *	...
 *	ap_filter_get_stats(f, &st); ap_filter_free(f);
 *
 * Running is fail-open: a trap, an invalid verdict or an invalid transform is counted and
 * logged (rate-limited) and resolved by opts.on_error (keep by default). A handle must be
 * used by one thread at a time; handles are independent (each has its own instance, memory
 * and state, even for the same file).
 */
#ifndef AP_FILTER_H
#define AP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aperture/filter_abi.h"

/* Defaults (docs/filters.md lists them with the agent flags). */
#define AP_FILTER_DEFAULT_FUEL 1000000ull	/* per event */
#define AP_FILTER_DEFAULT_INIT_FUEL 10000000ull /* _initialize + ap_init + ABI queries */
#define AP_FILTER_DEFAULT_MEMORY_PAGES 64u	/* 4 MiB of linear memory */
#define AP_FILTER_DEFAULT_CALL_DEPTH 128u
#define AP_FILTER_DEFAULT_MODULE_BYTES (4u << 20)
#define AP_FILTER_DEFAULT_FUNCTIONS 10000u
#define AP_FILTER_DEFAULT_LOCALS 1024u		  /* params + locals per function */
#define AP_FILTER_DEFAULT_NATIVE_STACK (4u << 20) /* aot: worst-case C stack of one call */
/* Upper bounds of the settable limits. */
#define AP_FILTER_MAX_MEMORY_PAGES 16384u /* 1 GiB */
#define AP_FILTER_MAX_CALL_DEPTH 500u
#define AP_FILTER_MAX_LOCALS 50000u

enum ap_filter_engine {
	AP_FILTER_ENGINE_AUTO = 0, /* aot when wasm2c and a C compiler are present, else interp */
	AP_FILTER_ENGINE_INTERP,   /* libwabt's interpreter: always available */
	AP_FILTER_ENGINE_AOT,	   /* wasm2c + cc: fails the load when unavailable */
};

enum ap_filter_on_error {
	AP_FILTER_ON_ERROR_KEEP = 0, /* fail open: the event goes on unchanged */
	AP_FILTER_ON_ERROR_DROP,
};

/* Why a call did not produce a usable verdict. */
enum ap_filter_trap {
	AP_FILTER_TRAP_NONE = 0,
	AP_FILTER_TRAP_FUEL,	      /* instruction budget exhausted */
	AP_FILTER_TRAP_CALL_DEPTH,    /* nested calls past the limit */
	AP_FILTER_TRAP_MEMORY,	      /* out-of-bounds linear memory access */
	AP_FILTER_TRAP_UNREACHABLE,   /* the module executed `unreachable` (abort, assert) */
	AP_FILTER_TRAP_ARITHMETIC,    /* integer divide by zero, overflow, bad conversion */
	AP_FILTER_TRAP_INDIRECT_CALL, /* call_indirect to a missing or mistyped function */
	AP_FILTER_TRAP_HOST_CALL,     /* a host function got an out-of-bounds buffer */
	AP_FILTER_TRAP_BAD_RESULT,    /* ap_filter returned no enum ap_filter_verdict */
	AP_FILTER_TRAP_BAD_TRANSFORM, /* the transformed record broke a transform rule */
	AP_FILTER_TRAP_OTHER,
	AP_FILTER_TRAP__COUNT,
};

enum ap_filter_sym_kind {
	AP_FILTER_SYM_FUNCTION = 0, /* env.frame_symbol */
	AP_FILTER_SYM_MODULE = 1,   /* env.frame_module */
};

/*
 * Supplies names for the lazy accessors: write the NUL-terminated name of ev->frames[frame]
 * (a kernel frame when frame < ev->n_kernel) into buf (len >= 1 bytes, truncating), and
 * return its full length, or a negative errno (-ENOENT: unknown). `ev` is the event given to
 * ap_filter_run. Called only while a filter runs, on the same thread.
 */
typedef int (*ap_filter_symbolize_fn)(void *ctx, const struct ap_filter_event *ev, uint32_t frame,
				      enum ap_filter_sym_kind kind, char *buf, size_t len);

/* Receives the filter's env.log messages and trap reports (already rate-limited). */
typedef void (*ap_filter_log_fn)(void *ctx, enum ap_filter_log_level level, const char *msg);

/* Zero fields mean the default above. */
struct ap_filter_limits {
	uint64_t fuel;		   /* per event */
	uint64_t init_fuel;	   /* for _initialize, ap_init and the ABI queries */
	uint32_t max_memory_pages; /* linear memory cap (64 KiB pages) */
	uint32_t max_call_depth;
	uint32_t max_module_bytes;
	uint32_t max_functions;
	uint32_t max_locals;
	uint64_t max_native_stack; /* aot only: bytes */
};

struct ap_filter_opts {
	enum ap_filter_engine engine;
	enum ap_filter_on_error on_error;
	struct ap_filter_limits limits;
	int agent_pid;	       /* what env.agent_pid returns; 0 = getpid() */
	const char *cache_dir; /* aot: NULL = $APERTURE_CACHE_DIR, /var/cache/aperture/filters
				* (root) or ~/.cache/aperture/filters */
	const char *cc;	       /* aot: NULL = $CC, else cc */
	const char *wasm2c;    /* aot: NULL = wasm2c from PATH */
	ap_filter_symbolize_fn symbolize;
	void *symbolize_ctx;
	ap_filter_log_fn log; /* NULL: messages are counted, not shown */
	void *log_ctx;
};

struct ap_filter_stats {
	uint64_t seen, kept, dropped, transformed; /* kept/dropped include resolved traps */
	uint64_t traps;				   /* calls without a usable verdict */
	uint64_t trap_reasons[AP_FILTER_TRAP__COUNT];
	uint64_t fuel_exhausted; /* == trap_reasons[AP_FILTER_TRAP_FUEL] */
	uint64_t fuel_used;	 /* total fuel spent by ap_filter calls */
	uint64_t time_ns;	 /* estimated time inside ap_filter_run (sampled 1 in 16) */
	uint64_t log_messages;	 /* env.log calls */
	uint64_t log_suppressed; /* messages and trap reports held back by the rate limit */
};

struct ap_filter_symbol {
	char name[64]; /* "module.name" for imports; truncated with "..." */
	char type[64]; /* "(i32, i32) -> i32", or "memory", "global", "table" */
};

struct ap_filter_info {
	char path[256];
	const char *engine;    /* "interp" or "aot" */
	char engine_note[256]; /* auto fallback reason, aot cache hit/compile time */
	uint32_t abi_version;
	uint32_t buffer_offset; /* ap_event_buffer() */
	size_t module_bytes, instrumented_bytes;
	uint32_t functions, imported_functions, depth_counted_functions;
	uint32_t memory_initial_pages, memory_max_pages; /* max after the cap */
	uint32_t memory_declared_max;			 /* UINT32_MAX: none declared */
	bool has_init, has_initialize;
	size_t nimports, nexports;
	struct ap_filter_symbol *imports, *exports;
	struct ap_filter_limits limits; /* effective */
	double load_ms, compile_ms;
	bool aot_cached;
};

struct ap_filter;

/* Fill `o` with the defaults (engine auto, fail open). */
void ap_filter_opts_init(struct ap_filter_opts *o);

/*
 * Load the module at `path`, configured with `config` (NULL or "" for none; passed to
 * ap_init). On failure returns -errno (-EINVAL bad module or configuration, -ENOENT ...)
 * with "path: reason" in err; the CLI and agent exit 2. On success *out is the handle;
 * free it with ap_filter_free(). opts may be NULL for the defaults.
 */
int ap_filter_load(const char *path, const char *config, const struct ap_filter_opts *opts,
		   struct ap_filter **out, char *err, size_t errlen);
/* Same from bytes in memory; `name` is used in messages. The bytes are not kept. */
int ap_filter_load_mem(const char *name, const uint8_t *wasm, size_t len, const char *config,
		       const struct ap_filter_opts *opts, struct ap_filter **out, char *err,
		       size_t errlen);

/*
 * Run the filter on `ev`: only the header and its n_kernel + n_user (<= AP_FILTER_MAX_FRAMES)
 * frames are read; abi_version and size need not be set, comm is NUL-padded and tag cleared
 * in the copy the filter sees. Returns the verdict to apply: AP_FILTER_KEEP (use ev),
 * AP_FILTER_DROP, or AP_FILTER_TRANSFORM (use *out, a full struct, already validated; it
 * must not alias ev). Traps are resolved by on_error and show in the stats and
 * ap_filter_last_trap(). Returns -EINVAL for a malformed input event.
 */
int ap_filter_run(struct ap_filter *f, const struct ap_filter_event *ev,
		  struct ap_filter_event *out);

/* Reason the last ap_filter_run had no usable verdict (NONE if it had one), and the
 * engine's message for it in *msg (valid until the next call; may be NULL). */
enum ap_filter_trap ap_filter_last_trap(const struct ap_filter *f, const char **msg);

void ap_filter_get_stats(const struct ap_filter *f, struct ap_filter_stats *st);
const struct ap_filter_info *ap_filter_get_info(const struct ap_filter *f);
void ap_filter_free(struct ap_filter *f);

/* "fuel", "call_depth", ... (stable: used as JSON keys). */
const char *ap_filter_trap_name(enum ap_filter_trap t);
const char *ap_filter_verdict_name(int verdict); /* "drop", "keep", "transform" */
/* Parse "auto"/"interp"/"aot" and "keep"/"drop". Return 0 or -EINVAL. */
int ap_filter_parse_engine(const char *s, enum ap_filter_engine *out);
int ap_filter_parse_on_error(const char *s, enum ap_filter_on_error *out);
/* Whether the aot engine can run here; if not, the reason in why. */
bool ap_filter_aot_available(const struct ap_filter_opts *opts, char *why, size_t whylen);

/* The counters as indented "name: value" lines, or as one JSON object (no newline). */
void ap_filter_stats_print(FILE *out, const struct ap_filter_stats *st, const char *indent);
void ap_filter_stats_json(FILE *out, const struct ap_filter_stats *st);

#endif
