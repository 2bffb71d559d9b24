// SPDX-License-Identifier: MIT
/*
 * Not hostile: a filter that uses what compiled C produces beyond the SDK examples (function
 * pointer tables -> call_indirect, switch -> br_table, recursion, nested loops, 64-bit and
 * floating-point arithmetic, per-process state, host calls), so the engine comparison test
 * runs both engines over every construct the metering rewrite must handle.
 */
#include "aperture_filter.h"

#define NOINLINE __attribute__((noinline))

typedef int32_t (*rule_fn)(const struct ap_filter_event *ev);

static uint32_t seen_per_slot[256];

static NOINLINE int32_t by_pid(const struct ap_filter_event *ev)
{
	return ev->pid % 3 == 0;
}

static NOINLINE int32_t by_comm(const struct ap_filter_event *ev)
{
	uint32_t h = 2166136261u;
	for (const char *p = ev->comm; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % 5 == 1;
}

static NOINLINE int32_t by_stack(const struct ap_filter_event *ev)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < ap_event_frames(ev); i++)
		for (uint32_t k = 0; k < 3; k++)
			sum += (ev->frames[i] >> (k * 8)) & 0xff;
	return sum % 7 < 3;
}

static NOINLINE int32_t by_type(const struct ap_filter_event *ev)
{
	switch (ev->type) {
	case AP_FILTER_EV_CPU:
		return 1;
	case AP_FILTER_EV_LOCK:
		return ev->lock.wait_ns > 1000;
	case AP_FILTER_EV_SYSCALL:
		return ev->syscall.nr % 2;
	case AP_FILTER_EV_GPU:
		return 0;
	default:
		return -1;
	}
}

static const rule_fn rules[] = { by_pid, by_comm, by_stack, by_type };

static NOINLINE uint64_t fib(uint32_t n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static NOINLINE int32_t symbol_len(const struct ap_filter_event *ev)
{
	char name[64];
	int32_t total = 0;
	for (uint32_t i = 0; i < ap_event_frames(ev) && i < 4; i++) {
		int32_t n = ap_frame_symbol(i, name, sizeof(name));
		total += n > 0 ? n : 0;
	}
	return total;
}

AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
{
	uint32_t slot = (ev->pid * 2654435761u) >> 24;
	int32_t keep = rules[ev->pid % 4](ev);
	uint64_t f = fib(ev->pid % 14);
	double scaled = (double)ev->weight * 1.25 + (double)f / 3.0;

	(void)len;
	seen_per_slot[slot]++;
	if (keep < 0)
		return AP_FILTER_DROP;
	if (f % 5 == 3 && ev->n_user > 2) {
		ap_trim_user(ev, 2);
		return ap_set_tag(ev, "fib");
	}
	if ((uint64_t)scaled % 11 == 4 && seen_per_slot[slot] < 64)
		return ap_scale_weight(ev, seen_per_slot[slot] % 4 + 1);
	if (symbol_len(ev) % 9 == 2)
		return ap_set_comm(ev, "renamed");
	return keep ? AP_FILTER_KEEP : AP_FILTER_DROP;
}
