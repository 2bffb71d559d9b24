/* SPDX-License-Identifier: MIT */
/*
 * The one internal profile model. Every mode (cpu, lock, syscall) fills it and every output
 * format reads it; a new mode adds value types and labels, not a new pipeline.
 *
 * Strings, mappings, frames and stacks are interned: adding the same content twice returns the
 * same id. Samples with the same key (stack, pid, tid, comm, labels) are merged by adding their
 * values, so a profile's size grows with distinct stacks, not with run length.
 *
 * Ids: string id 0 is "", mapping/label-set id 0 means "none"; frame and stack ids start at 0.
 * Stacks are stored leaf first (as in pprof); printers that need root first walk backwards.
 */
#ifndef AP_PROFILE_H
#define AP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_MAX_VALUES 4
#define AP_MAX_LABELS 8

enum ap_frame_kind {
	AP_FRAME_USER = 0,
	AP_FRAME_KERNEL = 1,
};

/* ap_frame.flags bits. */
enum ap_frame_flag {
	/* The call was inlined: the frame shares its address with the next frame of the stack
	 * (its caller), and the two are one machine frame. pprof writes such a run, up to the
	 * first frame without the flag (the physical function), as one Location with one Line
	 * per frame. */
	AP_FRAME_INLINED = 1u << 0,
};

struct ap_mapping {
	uint64_t start;	   /* runtime start address */
	uint64_t limit;	   /* runtime end address (exclusive) */
	uint64_t offset;   /* file offset of start */
	uint32_t file;	   /* string id: path as seen by the process */
	uint32_t build_id; /* string id: hex build-id, 0 if none */
};

struct ap_frame {
	uint64_t addr;	   /* runtime address (0 when unknown, e.g. read from folded text) */
	uint64_t rel_addr; /* address in the ELF file's vaddr space (for offline symbolization) */
	uint32_t name;	   /* string id: function name; "[unknown]" when unresolved */
	uint32_t module;   /* string id: module basename, "[kernel.kallsyms]" for the kernel */
	uint32_t file;	   /* string id: source file, 0 when unknown */
	uint32_t line;	   /* source line, 0 when unknown */
	uint32_t mapping;  /* mapping id, 0 = none */
	uint32_t kind;	   /* enum ap_frame_kind */
	uint32_t flags;	   /* enum ap_frame_flag bits */
	uint32_t pad;	   /* zero: frames are hashed and compared as bytes */
};

/* A label: a string value (str != 0) or a number (num, with an optional unit string id). */
struct ap_label {
	int64_t num;
	uint32_t key;
	uint32_t str;
	uint32_t num_unit;
	uint32_t pad;
};

struct ap_value_type {
	uint32_t type; /* string id, e.g. "samples", "cpu" */
	uint32_t unit; /* string id, e.g. "count", "nanoseconds" */
};

struct ap_sample {
	uint64_t values[AP_MAX_VALUES];
	uint32_t stack;	 /* stack id */
	uint32_t pid;	 /* process (thread group) id */
	uint32_t tid;	 /* thread id, 0 when aggregated over threads */
	uint32_t comm;	 /* string id: thread or process name */
	uint32_t labels; /* label-set id, 0 = no extra labels */
	uint32_t pad;
};

struct ap_stat {
	const char *name; /* owned by the profile */
	uint64_t value;
};

struct ap_profile;

/* Returns NULL with errno set on allocation failure. Free with ap_profile_free(). */
struct ap_profile *ap_profile_new(void);
void ap_profile_free(struct ap_profile *p);

/* Strings. Returns the id, or UINT32_MAX on allocation failure. NULL interns as "". */
uint32_t ap_profile_intern(struct ap_profile *p, const char *s);
uint32_t ap_profile_intern_n(struct ap_profile *p, const char *s, size_t len);
const char *ap_profile_str(const struct ap_profile *p, uint32_t id);
size_t ap_profile_nstrings(const struct ap_profile *p);

/* Value types: the first call defines value 0, and so on (at most AP_MAX_VALUES). */
int ap_profile_add_value_type(struct ap_profile *p, const char *type, const char *unit);
size_t ap_profile_nvalues(const struct ap_profile *p);
const struct ap_value_type *ap_profile_value_type(const struct ap_profile *p, size_t i);
/* Index of the value type named `type`, or -1. */
int ap_profile_value_index(const struct ap_profile *p, const char *type);

/* Sampling period, e.g. ("cpu", "nanoseconds", 10101010) at 99 Hz. */
void ap_profile_set_period(struct ap_profile *p, const char *type, const char *unit,
			   uint64_t period);
const struct ap_value_type *ap_profile_period_type(const struct ap_profile *p);
uint64_t ap_profile_period(const struct ap_profile *p);

/* Wall-clock start (ns since the epoch) and duration of the recording. */
void ap_profile_set_time(struct ap_profile *p, uint64_t start_ns, uint64_t duration_ns);
uint64_t ap_profile_start_ns(const struct ap_profile *p);
uint64_t ap_profile_duration_ns(const struct ap_profile *p);

/* Mappings (id 0 reserved for "none"). Returns the id or UINT32_MAX. */
uint32_t ap_profile_add_mapping(struct ap_profile *p, const struct ap_mapping *m);
size_t ap_profile_nmappings(const struct ap_profile *p); /* counts id 0 */
const struct ap_mapping *ap_profile_mapping(const struct ap_profile *p, uint32_t id);

/* Frames, interned on all fields (flags included). Returns the id or UINT32_MAX. */
uint32_t ap_profile_add_frame(struct ap_profile *p, const struct ap_frame *f);
size_t ap_profile_nframes(const struct ap_profile *p);
const struct ap_frame *ap_profile_frame(const struct ap_profile *p, uint32_t id);

/* Rename frame `id` in place (e.g. a JIT frame whose name was published late): every stack
 * holding it shows the new name. Returns 0, -EINVAL or -ENOMEM. */
int ap_profile_rename_frame(struct ap_profile *p, uint32_t id, const char *name,
			    const char *module);

/* Frames recorded without a name that may get one later: JIT code whose runtime had not yet
 * written it to its perf map (V8 buffers it). The symbolizer looks them up again at each
 * drain (ap_symbolizer_resolve_pending). At most AP_MAX_PENDING_NAMES wait. */
#define AP_MAX_PENDING_NAMES 4096
struct ap_pending_name {
	uint64_t addr; /* the address to look up (a return address already moved into its call) */
	uint32_t frame;
	int32_t pid;
};
/* Returns 0, -ENOSPC (too many waiting: it stays unnamed) or -ENOMEM. */
int ap_profile_pend_name(struct ap_profile *p, uint32_t frame, int pid, uint64_t addr);
/* Keep the pending frames for which keep() returns true; keep() may rename frames. */
void ap_profile_sweep_pending(struct ap_profile *p,
			      bool (*keep)(void *ctx, struct ap_profile *p,
					   const struct ap_pending_name *e),
			      void *ctx);
size_t ap_profile_npending(const struct ap_profile *p);

/* Stacks: n frame ids, leaf first. n may be 0. Returns the id or UINT32_MAX. */
uint32_t ap_profile_add_stack(struct ap_profile *p, const uint32_t *frames, size_t n);
size_t ap_profile_nstacks(const struct ap_profile *p);
const uint32_t *ap_profile_stack(const struct ap_profile *p, uint32_t id, size_t *n);

/* Label sets (id 0 = empty). Labels are sorted by key before interning. */
uint32_t ap_profile_add_labels(struct ap_profile *p, const struct ap_label *labels, size_t n);
const struct ap_label *ap_profile_labels(const struct ap_profile *p, uint32_t id, size_t *n);

/* Add a sample, merging it into an existing one with the same key. A merged value that would
 * pass UINT64_MAX stays at UINT64_MAX and counts one in the stat AP_STAT_VALUES_SATURATED.
 * Returns 0 or -ENOMEM. */
#define AP_STAT_VALUES_SATURATED "values_saturated"
int ap_profile_add_sample(struct ap_profile *p, const struct ap_sample *s);
size_t ap_profile_nsamples(const struct ap_profile *p);
const struct ap_sample *ap_profile_sample(const struct ap_profile *p, size_t i);
/* Sum of value `vi` over all samples (UINT64_MAX when it would overflow). */
uint64_t ap_profile_total(const struct ap_profile *p, size_t vi);

/* Run statistics (drops, errors, counts) reported with the profile. Setting a name twice
 * replaces its value. Returns 0 or -ENOMEM. */
int ap_profile_set_stat(struct ap_profile *p, const char *name, uint64_t value);
size_t ap_profile_nstats(const struct ap_profile *p);
const struct ap_stat *ap_profile_stat(const struct ap_profile *p, size_t i);
/* Returns the value of a stat, or 0 if it was never set. */
uint64_t ap_profile_get_stat(const struct ap_profile *p, const char *name);

/* Free-form metadata (mode, host, kernel, command line). Same rules as stats. */
int ap_profile_set_meta(struct ap_profile *p, const char *key, const char *value);
const char *ap_profile_get_meta(const struct ap_profile *p, const char *key);
size_t ap_profile_nmeta(const struct ap_profile *p);
void ap_profile_meta(const struct ap_profile *p, size_t i, const char **key, const char **value);

/* The value that weights flamegraphs and tables when the user does not choose one
 * (CPU: samples). Defaults to the last value type, as pprof's default_sample_type does. */
void ap_profile_set_default_value(struct ap_profile *p, size_t i);
size_t ap_profile_default_value(const struct ap_profile *p);

/* Convenience: intern a user/kernel frame by name and module only (no address). */
uint32_t ap_profile_add_named_frame(struct ap_profile *p, const char *name, const char *module,
				    enum ap_frame_kind kind);
/* The same with its source position and flags, as a store keeps a frame (file NULL: none).
 * UINT32_MAX when out of memory. */
uint32_t ap_profile_add_frame_text(struct ap_profile *p, const char *name, const char *module,
				   const char *file, uint32_t line, enum ap_frame_kind kind,
				   uint8_t flags);

#endif
