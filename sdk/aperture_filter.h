/* SPDX-License-Identifier: MIT */
/*
 * Aperture filter SDK: everything a C filter needs, with no libc. Include it in exactly one
 * translation unit of a module (it defines the ABI exports and memcpy/memset/memcmp), write
 *
 *	AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
 *	{
 *		return ev->pid == 42 ? AP_FILTER_KEEP : AP_FILTER_DROP;
 *	}
 *
 * and optionally AP_EXPORT("ap_init") int32_t ap_init(const char *config, uint32_t len),
 * which gets --filter-config once at load (0 accepts it). Build with Debian's clang and lld:
 *
 *	clang --target=wasm32 -O2 -nostdlib -ffreestanding -mno-bulk-memory \
 *	      -I/path/to/aperture/include -I/path/to/aperture/sdk \
 *	      -Wl,--no-entry -Wl,-z,stack-size=16384 -Wl,--initial-memory=131072 \
 *	      -o my_filter.wasm my_filter.c
 *
 * and check it with `aperture filter check my_filter.wasm`. The record layout, the verdicts
 * and the transform rules are in aperture/filter_abi.h; docs/filters.md has the details.
 */
#ifndef APERTURE_FILTER_SDK_H
#define APERTURE_FILTER_SDK_H

#include <stddef.h>
#include <stdint.h>

#include <aperture/filter_abi.h>

#if defined(AP_FILTER_NATIVE)
/* The same source as plain native code (benchmarks, debugging): no exports, and the host
 * functions are ordinary functions the program provides. */
#define AP_EXPORT(name)
#define AP_IMPORT(name)
#elif defined(__wasm32__)
#define AP_EXPORT(name) __attribute__((export_name(name)))
#define AP_IMPORT(name) __attribute__((import_module("env"), import_name(name)))
#else
#error "aperture_filter.h is for filter modules: compile with clang --target=wasm32"
#endif

/* ---- host functions (imported only when used) ---- */

/* A message in the agent's log (rate-limited). level: enum ap_filter_log_level. */
AP_IMPORT("log") void ap_host_log(int32_t level, const char *msg, uint32_t len);
/* CLOCK_MONOTONIC in ns, the clock of ev->timestamp_ns. */
AP_IMPORT("get_timestamp") uint64_t ap_timestamp(void);
/* Function / module name of ev->frames[frame] into buf (NUL-terminated, truncated to cap):
 * the full length, AP_FILTER_ENOENT when unknown, AP_FILTER_EINVAL for a bad index. */
AP_IMPORT("frame_symbol") int32_t ap_frame_symbol(uint32_t frame, char *buf, uint32_t cap);
AP_IMPORT("frame_module") int32_t ap_frame_module(uint32_t frame, char *buf, uint32_t cap);
/* The agent's own pid, e.g. to leave it out. */
AP_IMPORT("agent_pid") uint32_t ap_agent_pid(void);

/* ---- strings (no libc) ---- */

static inline uint32_t ap_strlen(const char *s)
{
	uint32_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* NUL-terminated a equals the len bytes at b. */
static inline int ap_streqn(const char *a, const char *b, uint32_t len)
{
	uint32_t i;
	for (i = 0; i < len; i++)
		if (a[i] != b[i] || !a[i])
			return 0;
	return a[len] == '\0';
}

static inline int ap_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* Whether the len bytes at needle occur in NUL-terminated hay. */
static inline int ap_contains(const char *hay, const char *needle, uint32_t len)
{
	if (len == 0)
		return 1;
	for (; *hay; hay++) {
		uint32_t i = 0;
		while (i < len && hay[i] && hay[i] == needle[i])
			i++;
		if (i == len)
			return 1;
	}
	return 0;
}

/* Decimal u32 from len bytes; 0 on success, -1 when not a number or out of range. */
static inline int ap_parse_u32(const char *s, uint32_t len, uint32_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 10)
		return -1;
	for (uint32_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > 0xffffffffu)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static inline void ap_log(int32_t level, const char *msg)
{
	ap_host_log(level, msg, ap_strlen(msg));
}

/* ---- configuration: "key=value,key=value" ---- */

struct ap_config {
	const char *p, *end;
};

static inline struct ap_config ap_config_begin(const char *cfg, uint32_t len)
{
	struct ap_config c = { cfg, cfg + len };
	return c;
}

/* Next pair: 1 with key/value set, 0 at the end, -1 for an item without '=' or an empty
 * key. Empty items (",,") are skipped. */
static inline int ap_config_next(struct ap_config *c, const char **key, uint32_t *klen,
				 const char **val, uint32_t *vlen)
{
	const char *item, *eq = 0;
	while (c->p < c->end && *c->p == ',')
		c->p++;
	if (c->p >= c->end)
		return 0;
	item = c->p;
	while (c->p < c->end && *c->p != ',') {
		if (*c->p == '=' && !eq)
			eq = c->p;
		c->p++;
	}
	if (!eq || eq == item)
		return -1;
	*key = item;
	*klen = (uint32_t)(eq - item);
	*val = eq + 1;
	*vlen = (uint32_t)(c->p - eq - 1);
	return 1;
}

/* ---- events ---- */

static inline uint32_t ap_event_frames(const struct ap_filter_event *ev)
{
	return (uint32_t)ev->n_kernel + ev->n_user;
}

/* A comm to compare events against: two words, NUL-padded like ev->comm (the host pads it),
 * so a comparison is two loads and no loop. */
struct ap_comm {
	uint64_t w[2];
};

/* 0, or -1 unless 1 <= len <= 15. */
static inline int ap_comm_init(struct ap_comm *c, const char *s, uint32_t len)
{
	char *b = (char *)c->w;
	if (len == 0 || len >= AP_FILTER_COMM_LEN)
		return -1;
	c->w[0] = c->w[1] = 0;
	for (uint32_t i = 0; i < len; i++)
		b[i] = s[i];
	return 0;
}

static inline int ap_comm_eq(const struct ap_filter_event *ev, const struct ap_comm *c)
{
	const uint64_t *w = (const uint64_t *)(const void *)ev->comm;
	return w[0] == c->w[0] && w[1] == c->w[1];
}

/* Set the tag (truncated to AP_FILTER_TAG_LEN - 1 bytes); return AP_FILTER_TRANSFORM. */
static inline int32_t ap_set_tag(struct ap_filter_event *ev, const char *tag)
{
	uint32_t i = 0;
	for (; tag[i] && i < AP_FILTER_TAG_LEN - 1; i++)
		ev->tag[i] = tag[i];
	for (; i < AP_FILTER_TAG_LEN; i++)
		ev->tag[i] = '\0';
	return AP_FILTER_TRANSFORM;
}

/* Re-label comm (truncated to 15 bytes); return AP_FILTER_TRANSFORM. */
static inline int32_t ap_set_comm(struct ap_filter_event *ev, const char *comm)
{
	uint32_t i = 0;
	for (; comm[i] && i < AP_FILTER_COMM_LEN - 1; i++)
		ev->comm[i] = comm[i];
	for (; i < AP_FILTER_COMM_LEN; i++)
		ev->comm[i] = '\0';
	return AP_FILTER_TRANSFORM;
}

/* Keep at most `keep` frames of the user stack, from the leaf (drop the root side). */
static inline int32_t ap_trim_user(struct ap_filter_event *ev, uint32_t keep)
{
	if (keep < ev->n_user)
		ev->n_user = (uint16_t)keep;
	return AP_FILTER_TRANSFORM;
}

/* Keep at most `keep` kernel frames from the leaf; user frames move down behind them. */
static inline int32_t ap_trim_kernel(struct ap_filter_event *ev, uint32_t keep)
{
	if (keep < ev->n_kernel) {
		for (uint32_t i = 0; i < ev->n_user; i++)
			ev->frames[keep + i] = ev->frames[ev->n_kernel + i];
		ev->n_kernel = (uint16_t)keep;
	}
	return AP_FILTER_TRANSFORM;
}

/* Multiply the weight (1 <= factor <= AP_FILTER_MAX_WEIGHT_SCALE). */
static inline int32_t ap_scale_weight(struct ap_filter_event *ev, uint32_t factor)
{
	ev->weight *= factor;
	return AP_FILTER_TRANSFORM;
}

/* ---- what every module exports, and what the compiler may call ---- */

#if !defined(AP_FILTER_NO_RUNTIME) && !defined(AP_FILTER_NATIVE)
static uint64_t ap_event_buffer_space[AP_FILTER_BUFFER_SIZE / 8];

AP_EXPORT("ap_abi_version") uint32_t ap_abi_version(void)
{
	return AP_FILTER_ABI_VERSION;
}

AP_EXPORT("ap_event_buffer") void *ap_event_buffer(void)
{
	return ap_event_buffer_space;
}

__attribute__((weak, no_builtin)) void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

__attribute__((weak, no_builtin)) void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

__attribute__((weak, no_builtin)) void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

__attribute__((weak, no_builtin)) int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}
#endif

#endif
