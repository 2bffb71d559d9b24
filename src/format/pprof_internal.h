/* SPDX-License-Identifier: MIT */
/* Internal to the pprof writer and reader: shared limits and a small u64 -> u32 hash map. */
#ifndef AP_PPROF_INTERNAL_H
#define AP_PPROF_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "format.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/parse.h"
#include "profile.pb-c.h"

#define PPROF_KERNEL_MAPPING "[kernel.kallsyms]"
#define PPROF_UNKNOWN "[unknown]"

/* Reader limits: decompressed size, frames in one sample after expanding inlined lines, and
 * frames over all samples (inlined lines multiply, so a small file could otherwise expand into
 * an enormous model). */
#define PPROF_MAX_DECOMPRESSED AP_FORMAT_MAX_INFLATED
#define PPROF_MAX_DEPTH AP_FORMAT_MAX_STACK_DEPTH
#define PPROF_MAX_TOTAL_FRAMES (1ULL << 28)

/* zlib counts in uInt; feed it at most this much at a time. */
#define ZCHUNK (1U << 30)

/* Zero-initialised is empty. */
struct u64map {
	struct ap_hidx idx; /* over keys[] and vals[] */
	uint64_t *keys;
	uint32_t *vals;
	size_t cap_keys, cap_vals;
};

bool ap_pprof_map_get(const struct u64map *m, uint64_t key, uint32_t *val);
/* Returns 0, -EEXIST when the key is already there, or -ENOMEM. */
int ap_pprof_map_put(struct u64map *m, uint64_t key, uint32_t val);
void ap_pprof_map_free(struct u64map *m);

/* Inflate gzip data (one or more members) into *buf, a buffer of *bufcap bytes that is grown
 * as needed (NULL/0: a new one; the caller frees it, on failure too). Returns 0, -EINVAL
 * (corrupt, truncated, trailing garbage, a trailer claiming more than max), -EFBIG (inflates
 * beyond max) or -ENOMEM. */
int ap_pprof_gunzip(const uint8_t *buf, size_t len, uint64_t max, uint8_t **buf_out,
		    size_t *bufcap, size_t *outlen, char *err, size_t errlen);
/* Whether a mapping is the kernel's (by its name, or a range-less "[module]" of ours). */
bool ap_pprof_kernel_mapping(const char *name, uint64_t start, uint64_t limit);

#endif
