/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Stacks stored by content: a hash map keyed by a 64-bit FNV-1a hash of the frames, computed
 * in BPF. Unlike a STACK_TRACE map (keyed by bucket), two different stacks practically never
 * collide, and one stack never overwrites another's id. Shared by cpu.bpf.c and lock.bpf.c
 * (syscall.bpf.c keys by a 31-bit fold of the same hash).
 *
 * Include after bpf_stats.h, with `struct ap_stack` defined (ips[]: leaf first, zero tail).
 * Defines the per-CPU `stack_scratch` a stack is captured into (too big for the BPF stack).
 */
#ifndef AP_BPF_STACK_STORE_H
#define AP_BPF_STACK_STORE_H

#define AP_STACK_NFRAMES (sizeof(((struct ap_stack *)0)->ips) / sizeof(__u64))

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_stack);
} stack_scratch SEC(".maps");

/* FNV-1a over the first n frames; never 0, which means "no stack". No userspace code
 * recomputes it (the ids are opaque keys there), so it need not match src/lib/hash.h. */
static __always_inline __u64 ap_stack_hash(const struct ap_stack *st, __u32 n)
{
	__u64 h = 0xcbf29ce484222325ULL;

	for (__u32 i = 0; i < AP_STACK_NFRAMES; i++) {
		if (i >= n)
			break;
		h ^= st->ips[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

/*
 * Store a zero-tailed stack of n frames in `stacks` (a hash map of u64 -> struct ap_stack);
 * returns its id, 0 when the map is full (counted in stats[full_stat]). `tag` replaces the
 * id's top bits above `tag_shift` (user stacks: how the walk ended); 0: none.
 */
static __always_inline __u64 ap_store_stack(void *stacks, const struct ap_stack *st, __u32 n,
					    __u64 tag, __u32 tag_shift, void *stats,
					    __u32 full_stat)
{
	__u64 h = ap_stack_hash(st, n);

	if (tag) {
		h = (h & ((1ULL << tag_shift) - 1)) | tag;
		h = h ? h : 1;
	}
	if (bpf_map_update_elem(stacks, &h, st, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(stacks, &h)) {
		ap_stat_add(stats, full_stat, 1);
		return 0;
	}
	return h;
}

/*
 * Capture the current kernel or user (BPF_F_USER_STACK) stack into `stacks` through
 * stack_scratch, which keeps it until the next capture on this CPU. Returns its id, 0 when
 * there is none: -EFAULT (no stack of this kind: a kernel thread's user stack, a sample in
 * user mode's kernel stack) is not an error, any other failure counts in stats[err_stat].
 */
static __always_inline __u64 ap_capture_stack(void *ctx, void *stacks, __u64 flags, void *stats,
					      __u32 err_stat, __u32 full_stat)
{
	__u32 zero = 0;
	struct ap_stack *st = bpf_map_lookup_elem(&stack_scratch, &zero);
	long len;

	if (!st)
		return 0;
	/* the helper zero-fills the unused tail, so equal stacks are equal values */
	len = bpf_get_stack(ctx, st->ips, sizeof(st->ips), flags);
	if (len <= 0) {
		if (len != -14 /* EFAULT */ && len != 0)
			ap_stat_add(stats, err_stat, 1);
		return 0;
	}
	return ap_store_stack(stacks, st, (__u32)len / sizeof(__u64), 0, 0, stats, full_stat);
}

/* What the last ap_capture_stack() on this CPU left in stack_scratch, copied into dst
 * (AP_STACK_NFRAMES frames, zero-tailed). Valid only when that capture returned an id: the
 * caller passes the id along as the flag, rather than testing it here, since a branch on it
 * makes the verifier track its value and explore the rest of the program once more for
 * each (+30% verified instructions in lock.bpf.c). */
static __always_inline void ap_copy_captured_stack(__u64 *dst)
{
	__u32 zero = 0;
	struct ap_stack *st = bpf_map_lookup_elem(&stack_scratch, &zero);

	if (st)
		bpf_probe_read_kernel(dst, sizeof(st->ips), st->ips);
	else
		dst[0] = 0;
}

#endif
