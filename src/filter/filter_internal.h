/* SPDX-License-Identifier: MIT */
/* Internal to src/filter: the event copy into linear memory (hot path, inline) and the
 * transform rules of filter_abi.h. */
#ifndef AP_FILTER_INTERNAL_H
#define AP_FILTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aperture/filter_abi.h"

/* One word of a NUL-padded string: bytes after the first NUL cleared (and every word after
 * it, through *end). strnlen + memset cost more than the rest of a fast filter's call. */
static inline uint64_t pad_word(uint64_t v, bool *end)
{
	uint64_t z;
	if (*end)
		return 0;
	z = (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
	if (!z)
		return v;
	*end = true; /* lowest set bit: the first zero byte (little-endian), bit 8 * byte + 7 */
	return v & ((1ull << (__builtin_ctzll(z) - 7)) - 1);
}

static inline uint64_t load_word(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store_word(char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The header of ev into w: comm NUL-padded and NUL-terminated, tag cleared (it is "" on
 * input). Words in registers, read from ev: reading back a fresh copy made with wider stores
 * (or going through a stack array) stalls store forwarding, which costs more than a fast
 * filter's whole call. */
static inline void copy_header(struct ap_filter_event *w, const struct ap_filter_event *ev)
{
	bool end = false;
	uint64_t c0 = pad_word(load_word(ev->comm), &end);
	uint64_t c1 = pad_word(load_word(ev->comm + 8), &end) & 0x00ffffffffffffffull;

	memcpy(w, ev, offsetof(struct ap_filter_event, comm));
	store_word(w->comm, c0);
	store_word(w->comm + 8, c1);
	memset(w->tag, 0, sizeof(w->tag));
	memcpy(w->raw, ev->raw, sizeof(w->raw));
}

/* Frames into linear memory, four at a time in fixed-size moves, kept a loop: gcc would
 * otherwise call memmove, or turn a variable-size memcpy into `rep movsq`; either costs more
 * than a fast filter's whole call. */
#if defined(__GNUC__) && !defined(__clang__)
#define AP_NO_LOOP_TO_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define AP_NO_LOOP_TO_MEMCPY
#endif

AP_NO_LOOP_TO_MEMCPY static inline void copy_frames(uint64_t *dst, const uint64_t *src, uint32_t n)
{
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4)
		memcpy(dst + i, src + i, 4 * sizeof(*dst));
	for (; i < n; i++)
		dst[i] = src[i];
}

/* Accept the record the filter transformed in place (w) against the input (in), per the
 * rules of filter_abi.h, and copy it to out. Returns 0, or -1 with the broken rule in msg. */
int ap_filter_check_transform(const struct ap_filter_event *in, const struct ap_filter_event *w,
			      struct ap_filter_event *out, char *msg, size_t len);

#endif
