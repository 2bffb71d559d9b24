/* SPDX-License-Identifier: MIT */
/*
 * A pprof profile decoded flat, for the aggregator's ingest: one pass over the protobuf bytes
 * (no protobuf-c objects, no interning, no model), every id and index checked as the model
 * reader checks them (pprof_read.c). What a store needs and nothing more: the string table,
 * the frames of each location (one per Line, innermost first, the way the model reader
 * expands them), each sample's locations, values, pid/tid/comm and labels.
 *
 * Unlike struct ap_profile nothing is de-duplicated: two samples with the same stack stay two
 * samples, and strings keep their pprof indices. A consumer that needs identity hashes the
 * content (the SQLite store does anyway).
 *
 * The decoded arrays live in a context that is reused from one decode to the next (no
 * allocation per push once it has grown to the largest profile seen): one context per thread.
 */
#ifndef AP_PPROF_FLAT_H
#define AP_PPROF_FLAT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/profile.h"

struct ap_flat_frame {
	uint32_t name, module, file; /* string indices */
	uint32_t line;
	uint8_t kind;  /* enum ap_frame_kind */
	uint8_t flags; /* AP_FRAME_INLINED */
};

struct ap_flat_label {
	uint32_t key, str; /* string indices; str 0: a number */
	int64_t num;
};

struct ap_flat_sample {
	uint64_t values[AP_MAX_VALUES];
	uint32_t locs, nlocs;	  /* location indices at loc_refs[locs .. locs + nlocs) */
	uint32_t labels, nlabels; /* at labels[labels .. labels + nlabels), sorted by key */
	uint32_t pid, tid, comm;  /* comm: string index, 0 = none */
};

struct ap_flat_profile {
	/* the string table, each NUL-terminated (cut at an embedded NUL, as the model reader
	 * reads C strings), and its length */
	const char **strs;
	uint32_t *slen;
	size_t nstrs;
	uint32_t vtype[AP_MAX_VALUES], vunit[AP_MAX_VALUES]; /* string indices */
	size_t nvalues;
	uint32_t period_type, period_unit; /* string indices, 0 when absent */
	uint64_t period;
	size_t default_value; /* index of default_sample_type, else nvalues - 1 */
	/* location i has frames[loc_frames[i] .. loc_frames[i + 1]) */
	struct ap_flat_frame *frames;
	uint32_t *loc_frames;
	size_t nlocs;
	uint32_t *loc_refs;
	struct ap_flat_sample *samples;
	size_t nsamples;
	struct ap_flat_label *labels;
	uint64_t labels_dropped; /* over AP_MAX_LABELS in a sample, or a key twice */
};

struct ap_flat_ctx;

/* NULL with errno on allocation failure. */
struct ap_flat_ctx *ap_flat_ctx_new(void);
void ap_flat_ctx_free(struct ap_flat_ctx *c);
/* Release the arrays when they hold more than AP_FLAT_KEEP_BYTES (one huge push must not pin
 * its memory in every thread that once decoded one); the next decode grows them again. */
#define AP_FLAT_KEEP_BYTES (16u << 20)
void ap_flat_ctx_trim(struct ap_flat_ctx *c);

/*
 * Decode buf (gzipped or not; inflating to at most max_inflated bytes, 0 = the format's
 * default) into *out, whose arrays belong to c and stay valid until its next decode or free.
 * Returns 0, -EINVAL (malformed: the reason in err, as the model reader words it), -EFBIG (it
 * inflates beyond max_inflated) or -ENOMEM.
 */
int ap_pprof_flat_decode(struct ap_flat_ctx *c, const void *buf, size_t len,
			 uint64_t max_inflated, const struct ap_flat_profile **out, char *err,
			 size_t errlen);

/* The sum of value i over every sample (saturating). */
uint64_t ap_flat_total(const struct ap_flat_profile *p, size_t i);
/* The index of the value type named `type`, or -1. */
int ap_flat_value_index(const struct ap_flat_profile *p, const char *type);

#endif
