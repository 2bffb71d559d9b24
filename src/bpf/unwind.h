/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * In-kernel user stack unwinding from compact CFI tables (BPF side; include from a .bpf.c
 * after vmlinux.h and the libbpf headers).
 *
 * The agent (src/unwind) compiles each ELF file's .eh_frame/.debug_frame into a table held in
 * `unwind_files` and gives every process a sorted table of its executable mappings in
 * `unwind_pids` (layouts in unwind_table.h). The walker starts from the user registers and,
 * per frame: finds the mapping of the pc, binary-searches the file's rows, computes the CFA and
 * reads the return address and saved RBP. A pc without CFI (JIT code, a file without tables)
 * is unwound by frame pointer; a process without tables yet is walked by frame pointers only.
 *
 * Both table maps are created by the agent and shared by every program that includes this
 * file (bpf_map__reuse_fd before load). `unwind_stats` and the scratch stack are per object.
 */
#ifndef AP_BPF_UNWIND_H
#define AP_BPF_UNWIND_H

#define AP_UNWIND_INLINE __always_inline
#define AP_UNWIND_READ(dst, addr) bpf_probe_read_user((dst), sizeof(__u64), (const void *)(addr))
#include "unwind_step.h"

/* Walk user stacks with the tables (false: kernel frame-pointer walk, bpf_get_stack). */
const volatile bool cfg_unwind_tables = true;

struct ap_unwind_file_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* each file's table has its own size */
	/* sizes, not BTF types: clang emits inner maps' value structs as forward declarations */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct ap_unwind_row));
};

struct ap_unwind_pid_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct ap_unwind_mapping));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AP_UNWIND_MAX_FILES);
	__type(key, __u32);
	__array(values, struct ap_unwind_file_table);
} unwind_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, AP_UNWIND_MAX_PIDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tgid */
	__array(values, struct ap_unwind_pid_table);
} unwind_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_UNWIND_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} unwind_stats SEC(".maps");

/* The walked stack (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_stack);
} unwind_scratch SEC(".maps");

#define AP_UNWIND_F_FP 1u	   /* some frame was unwound by frame pointer */
#define AP_UNWIND_F_UNKNOWN_PC 2u /* some pc was outside every known mapping */
#define AP_UNWIND_F_NO_TABLES 4u  /* the process has no tables: frame pointers only */

struct ap_unwind_walk {
	struct ap_uregs r;
	__u64 m_start, m_end, m_bias; /* the last mapping found */
	__u32 m_file, m_npages;
	__u32 tgid;
	/* The verifier re-checks a bpf_loop callback until the state it leaves converges, so
	 * nothing here may count up from a constant: the depth is derived from the loop index
	 * and per-frame counts go straight to unwind_stats. */
	__u32 depth;
	__u32 status;
	__u32 flags;
};

static __always_inline void ap_unwind_stat_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&unwind_stats, &which);

	if (v)
		*v += n;
}

/* Make the mapping of `pc` the cached one. Returns false when no mapping holds pc. */
static __always_inline bool ap_unwind_find_mapping(struct ap_unwind_walk *w, __u64 pc)
{
	struct ap_unwind_mapping *m;
	__u32 zero = 0, lo = 1, hi, mid;
	void *maps;

	if (pc >= w->m_start && pc < w->m_end)
		return true;
	maps = bpf_map_lookup_elem(&unwind_pids, &w->tgid);
	if (!maps)
		return false;
	m = bpf_map_lookup_elem(maps, &zero);
	if (!m)
		return false;
	hi = (__u32)m->start + 1;
	/* last mapping with start <= pc; 14 halvings cover 16384 mappings */
	for (int i = 0; i < 14 && lo < hi; i++) {
		mid = lo + (hi - lo) / 2;
		m = bpf_map_lookup_elem(maps, &mid);
		if (!m)
			return false;
		if (m->start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < 2)
		return false;
	mid = lo - 1;
	m = bpf_map_lookup_elem(maps, &mid);
	if (!m || pc >= m->end)
		return false;
	w->m_start = m->start;
	w->m_end = m->end;
	w->m_bias = m->bias;
	w->m_file = m->file_id;
	w->m_npages = m->npages;
	return true;
}

/* The row covering table pc `tpc` in `rows`, or NULL. */
static __always_inline struct ap_unwind_row *ap_unwind_find_row(void *rows, __u32 npages,
								__u64 tpc)
{
	struct ap_unwind_row *r;
	__u32 page = tpc >> AP_UNWIND_PAGE_SHIFT, lo, hi, mid, next = page + 1;

	if (page >= npages)
		return NULL;
	r = bpf_map_lookup_elem(rows, &page);
	if (!r)
		return NULL;
	lo = r->pc;
	r = bpf_map_lookup_elem(rows, &next);
	if (!r)
		return NULL;
	hi = r->pc + 1;
	/* last row in [lo, hi) with pc <= tpc; a page holds at most 4097 distinct rows */
	for (int i = 0; i < 13 && lo + 1 < hi; i++) {
		mid = lo + (hi - lo) / 2;
		__u32 key = mid + npages + 1;

		r = bpf_map_lookup_elem(rows, &key);
		if (!r)
			return NULL;
		if (r->pc <= tpc)
			lo = mid;
		else
			hi = mid;
	}
	lo += npages + 1;
	r = bpf_map_lookup_elem(rows, &lo);
	if (!r || r->pc > tpc)
		return NULL;
	return r;
}

static long ap_unwind_step(__u64 index, void *ctx)
{
	struct ap_unwind_walk *w = ctx;
	struct ap_unwind_row *row = NULL;
	struct ap_stack *st;
	__u32 zero = 0;
	__u64 d = index; /* 64-bit: a u32 would be re-extended from an unchecked copy */
	int res = AP_STEP_USE_FP;

	/* keep clang from re-deriving d from index after the bounds check */
	asm volatile("" : "+r"(d));
	if (d >= AP_UNWIND_MAX_FRAMES) {
		w->status = AP_UNWIND_TRUNCATED;
		return 1;
	}
	st = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!st) {
		w->status = AP_UNWIND_FAIL_READ;
		return 1;
	}
	st->ips[d] = w->r.pc;
	w->depth = (__u32)d + 1;

	if (!(w->flags & AP_UNWIND_F_NO_TABLES)) {
		__u64 pc = ap_unwind_lookup_pc(&w->r);

		if (!ap_unwind_find_mapping(w, pc)) {
			w->flags |= AP_UNWIND_F_UNKNOWN_PC;
		} else if (w->m_file != AP_UNWIND_NO_FILE) {
			void *rows = bpf_map_lookup_elem(&unwind_files, &w->m_file);

			if (rows)
				row = ap_unwind_find_row(rows, w->m_npages, pc - w->m_bias);
		}
		if (row) {
			res = ap_unwind_row_step(row, &w->r);
			if (res == AP_STEP_USE_FP &&
			    (row->kind & AP_CFA_KIND_MASK) == AP_CFA_UNSUPPORTED)
				ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES_UNSUPPORTED, 1);
		}
	}
	if (res == AP_STEP_USE_FP) {
		w->flags |= AP_UNWIND_F_FP;
		if (!(w->flags & AP_UNWIND_F_NO_TABLES))
			ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES_FP, 1);
		res = ap_unwind_fp_step(&w->r);
		/* an unmapped pc whose frame pointer leads nowhere: the pc was garbage */
		if (res != AP_STEP_OK && res != AP_UNWIND_COMPLETE &&
		    (w->flags & AP_UNWIND_F_UNKNOWN_PC))
			res = AP_UNWIND_FAIL_NO_MAPPING;
	}
	if (res == AP_STEP_OK)
		return 0;
	w->status = res;
	return 1;
}

/*
 * Walk the current task's user stack into the per-CPU scratch stack (leaf first, zero tail).
 * `start` holds the user registers of the sample when it interrupted user mode; when its pc
 * is 0 the user registers saved at kernel entry are used. Returns the scratch stack (NULL
 * when there is no user stack: kernel thread) and sets *nframes, *status (enum
 * ap_unwind_status) and *flags.
 */
static __always_inline struct ap_stack *ap_unwind_user(const struct ap_uregs *start, __u32 tgid,
							__u32 *nframes, __u32 *status,
							__u32 *flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ap_unwind_walk w = {};
	struct ap_stack *st;
	__u32 zero = 0;

	*nframes = 0;
	*status = AP_UNWIND_NONE;
	*flags = 0;
	if (!task->mm)
		return NULL;
	if (start->pc) {
		w.r.pc = start->pc;
		w.r.sp = start->sp;
		w.r.bp = start->bp;
	} else {
		/* helper reads: clang would merge direct loads with the caller's context loads
		 * into one instruction on two pointer types, which the verifier refuses */
		struct pt_regs *u = (struct pt_regs *)bpf_task_pt_regs(task);

		if (!u || bpf_probe_read_kernel(&w.r.pc, 8, &u->ip) ||
		    bpf_probe_read_kernel(&w.r.sp, 8, &u->sp) ||
		    bpf_probe_read_kernel(&w.r.bp, 8, &u->bp))
			return NULL;
	}
	if (!w.r.pc)
		return NULL;
	w.r.exact = 1;
	w.tgid = tgid;
	if (!bpf_map_lookup_elem(&unwind_pids, &tgid))
		w.flags = AP_UNWIND_F_NO_TABLES;

	bpf_loop(AP_UNWIND_MAX_FRAMES + 1, ap_unwind_step, &w, 0);

	st = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!st)
		return NULL;
	for (__u32 i = 0; i < AP_UNWIND_MAX_FRAMES; i++)
		if (i >= w.depth)
			st->ips[i] = 0;
	if (!w.status)
		w.status = AP_UNWIND_TRUNCATED;
	if (w.flags & AP_UNWIND_F_NO_TABLES)
		w.status = AP_UNWIND_NO_TABLES;

	ap_unwind_stat_add(AP_UNWIND_STAT_STACKS, 1);
	ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES, w.depth);
	if (w.flags & AP_UNWIND_F_UNKNOWN_PC)
		ap_unwind_stat_add(AP_UNWIND_STAT_UNKNOWN_PC, 1);
	switch (w.status) {
	case AP_UNWIND_COMPLETE:
		ap_unwind_stat_add(w.flags & AP_UNWIND_F_FP ? AP_UNWIND_STAT_COMPLETE_FP :
							      AP_UNWIND_STAT_COMPLETE, 1);
		break;
	case AP_UNWIND_TRUNCATED:
		ap_unwind_stat_add(AP_UNWIND_STAT_TRUNCATED, 1);
		break;
	case AP_UNWIND_FAIL_READ:
		ap_unwind_stat_add(AP_UNWIND_STAT_FAIL_READ, 1);
		break;
	case AP_UNWIND_FAIL_CFA:
		ap_unwind_stat_add(AP_UNWIND_STAT_FAIL_CFA, 1);
		break;
	case AP_UNWIND_FAIL_NO_MAPPING:
		ap_unwind_stat_add(AP_UNWIND_STAT_FAIL_NO_MAPPING, 1);
		break;
	default:
		ap_unwind_stat_add(AP_UNWIND_STAT_NO_TABLES, 1);
		break;
	}
	*nframes = w.depth;
	*status = w.status;
	*flags = w.flags;
	return st;
}

#endif
