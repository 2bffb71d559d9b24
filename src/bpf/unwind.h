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
 *
 * Use from another program (lock, syscall events): include this file, call
 * ap_unwinder_bind(unwinder, obj) between open and load, and in the program
 *     struct ap_uregs start = {};     // pc 0: the user registers saved at kernel entry
 *     st = ap_unwind_user(&start, tgid, &n, &status, &flags);
 * then store st (n frames, zero tail) with stack_store.h's ap_store_stack(); report
 * unwind_stats with ap_unwind_read_bpf_stats() and ap_unwind_stat_name(). proc_announce.h
 * adds what a walk without tables needs: announcing the process, deferring the event.
 */
#ifndef AP_BPF_UNWIND_H
#define AP_BPF_UNWIND_H

#define AP_UNWIND_INLINE __always_inline
#define AP_UNWIND_READ(rctx, dst, addr) \
	bpf_probe_read_user((dst), sizeof(__u64), (const void *)(addr))
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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AP_UNWIND_MAX_FILES);
	__type(key, __u32);
	__array(values, struct ap_unwind_file_table);
} unwind_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AP_UNWIND_MAX_CHUNKS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* written by the agent only */
	__type(key, struct ap_unwind_pid_key);
	__type(value, struct ap_unwind_pid_chunk);
} unwind_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_UNWIND_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} unwind_stats SEC(".maps");


#define AP_UNWIND_F_FP 1u	   /* some frame was unwound by frame pointer */
#define AP_UNWIND_F_UNKNOWN_PC 2u /* some pc was outside every known mapping */
#define AP_UNWIND_F_NO_TABLES 4u  /* the process has no tables: frame pointers only */
#define AP_UNWIND_F_PENDING 8u	  /* a frame's table is still being compiled */
/* the walk would have been complete had the tables been there: worth unwinding later */
#define AP_UNWIND_F_RETRY (AP_UNWIND_F_UNKNOWN_PC | AP_UNWIND_F_NO_TABLES | AP_UNWIND_F_PENDING)

struct ap_unwind_walk {
	struct ap_uregs r;
	__u64 m_start, m_end, m_bias; /* the last mapping found */
	__u32 m_file, m_nbuckets, m_shift, m_flags;
	__u32 tgid;
	__u32 depth;
	__u32 status;
	__u32 flags;
};

/*
 * The walk's state and the walked stack, per CPU. The state lives in a map value rather
 * than on the BPF stack: the verifier re-checks a bpf_loop callback until the state it
 * leaves behind converges, and constants it tracks on the stack (flags, depth, status) would
 * make it walk every combination (0.4 s to load; a map value is opaque to it).
 */
struct ap_unwind_scratch {
	struct ap_stack st;
	struct ap_unwind_walk w;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_unwind_scratch);
} unwind_scratch SEC(".maps");

static __always_inline void ap_unwind_stat_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&unwind_stats, &which);

	if (v)
		*v += n;
}

/*
 * Binary search over a file's rows (an inner ARRAY map), as a bpf_loop callback: the
 * verifier checks a callback body once instead of every unrolled path of an open loop.
 * Finds the last row in [lo, hi) whose pc is <= key.
 */
struct ap_unwind_search {
	void *map;
	__u64 key;
	__u32 lo, hi;
	__u32 base; /* map index of row 0 */
	__u32 err;
};

static long ap_unwind_search_step(__u64 index, void *ctx)
{
	struct ap_unwind_search *s = ctx;
	__u32 mid, key;
	__u64 v;
	void *e;

	if (s->lo + 1 >= s->hi)
		return 1;
	mid = s->lo + (s->hi - s->lo) / 2;
	key = mid + s->base;
	e = bpf_map_lookup_elem(s->map, &key);
	if (!e) {
		s->err = 1;
		return 1;
	}
	v = ((struct ap_unwind_row *)e)->pc;
	if (v <= s->key)
		s->lo = mid;
	else
		s->hi = mid;
	return 0;
}

/* Make the mapping of `pc` the cached one. Returns false when no mapping holds pc. */
static __always_inline bool ap_unwind_find_mapping(struct ap_unwind_walk *w, __u64 pc)
{
	struct ap_unwind_pid_key key = { .pid = w->tgid };
	struct ap_unwind_pid_chunk *ch;
	struct ap_unwind_mapping *m;
	__u32 n, lo, hi, mid;

	if (pc >= w->m_start && pc < w->m_end)
		return true;
	/* the first chunk whose last mapping ends above pc */
	for (__u32 c = 0; c < AP_UNWIND_PID_CHUNKS; c++) {
		key.chunk = c;
		ch = bpf_map_lookup_elem(&unwind_pids, &key);
		if (!ch)
			return false;
		n = ch->n;
		if (n == 0 || n > AP_UNWIND_CHUNK)
			return false;
		if (pc < ch->m[(n - 1) & (AP_UNWIND_CHUNK - 1)].end)
			break;
		if (c + 1 >= ch->chunks)
			return false;
	}
	if (!ch)
		return false;
	/* last mapping in the chunk with start <= pc */
	lo = 0;
	hi = n;
	for (int i = 0; i < 6 && lo + 1 < hi; i++) {
		mid = lo + (hi - lo) / 2;
		if (ch->m[mid & (AP_UNWIND_CHUNK - 1)].start <= pc)
			lo = mid;
		else
			hi = mid;
	}
	m = &ch->m[lo & (AP_UNWIND_CHUNK - 1)];
	if (pc < m->start || pc >= m->end)
		return false;
	w->m_start = m->start;
	w->m_end = m->end;
	w->m_bias = m->bias;
	w->m_file = m->file_id;
	w->m_nbuckets = m->nbuckets;
	w->m_shift = m->shift;
	w->m_flags = m->flags;
	return true;
}

/* The row covering table pc `tpc` in `rows`, or NULL. */
static __always_inline struct ap_unwind_row *ap_unwind_find_row(void *rows, __u32 nbuckets,
								__u32 shift, __u64 tpc)
{
	struct ap_unwind_search s = {};
	struct ap_unwind_row *r;
	__u64 bk = tpc >> (shift & 31);
	__u32 e, lo, hi, key, base = AP_UNWIND_ROW_BASE(nbuckets);
	__u32 *ix;

	if (bk >= nbuckets)
		return NULL;
	/* the bucket's rows: from the one in effect at its start to the one at the next's */
	e = bk >> 1;
	ix = bpf_map_lookup_elem(rows, &e);
	if (!ix)
		return NULL;
	if (bk & 1) {
		lo = ix[1];
		e++;
		ix = bpf_map_lookup_elem(rows, &e);
		if (!ix)
			return NULL;
		hi = ix[0];
	} else {
		lo = ix[0];
		hi = ix[1];
	}
	if (hi < lo)
		return NULL;
	if (hi - lo < AP_UNWIND_BUCKET_ROWS) {
		/* the last row <= tpc within 32: five steps of 16, 8, 4, 2, 1 */
#pragma clang loop unroll(full)
		for (__u32 step = 16; step > 0; step >>= 1) {
			if (lo + step > hi)
				continue;
			key = base + lo + step;
			r = bpf_map_lookup_elem(rows, &key);
			if (!r)
				return NULL;
			if (r->pc <= tpc)
				lo += step;
		}
	} else {
		/* a crowded bucket (the compiler's shift floor): a callback loop */
		s.lo = lo;
		s.hi = hi + 1;
		s.map = rows;
		s.key = tpc;
		s.base = base;
		bpf_loop(16, ap_unwind_search_step, &s, 0);
		if (s.err)
			return NULL;
		lo = s.lo;
	}
	key = base + lo;
	r = bpf_map_lookup_elem(rows, &key);
	if (!r || r->pc > tpc)
		return NULL;
	return r;
}

/*
 * One frame (the index-th): record its pc, then find the caller's registers. A global
 * function: the verifier checks it once, on its own, instead of once per state of every
 * caller (a static one took 0.4 s to load). Returns 0 to go on, 1 when the walk ended.
 */
__noinline int ap_unwind_frame(__u64 index)
{
	struct ap_unwind_row *row = NULL;
	struct ap_unwind_scratch *sc;
	struct ap_unwind_walk *w;
	__u32 zero = 0;
	__u64 d = index; /* 64-bit: a u32 would be re-extended from an unchecked copy */
	int res = AP_STEP_USE_FP;
	bool unknown = false;

	/* keep clang from re-deriving d from index after the bounds check */
	asm volatile("" : "+r"(d));
	sc = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!sc)
		return 1;
	w = &sc->w;
	if (d >= AP_UNWIND_MAX_FRAMES) {
		w->status = AP_UNWIND_TRUNCATED;
		return 1;
	}
	sc->st.ips[d] = w->r.pc;
	w->depth = (__u32)d + 1;

	if (!(w->flags & AP_UNWIND_F_NO_TABLES)) {
		__u64 pc = ap_unwind_lookup_pc(&w->r);

		if (!ap_unwind_find_mapping(w, pc)) {
			unknown = true;
			/* reached by exact steps: a mapping not scanned yet (dlopen), worth a
			 * re-scan and a retry; after a frame-pointer guess, likely garbage */
			if (!(w->flags & AP_UNWIND_F_FP))
				w->flags |= AP_UNWIND_F_UNKNOWN_PC;
		} else if (w->m_file == AP_UNWIND_NO_FILE) {
			if (w->m_flags & AP_UNWIND_MAP_PENDING)
				w->flags |= AP_UNWIND_F_PENDING;
		} else {
			void *rows = bpf_map_lookup_elem(&unwind_files, &w->m_file);

			if (rows)
				row = ap_unwind_find_row(rows, w->m_nbuckets, w->m_shift,
							 pc - w->m_bias);
		}
		if (row) {
			res = ap_unwind_row_step(row, &w->r, NULL);
			if (res == AP_STEP_USE_FP &&
			    (row->kind & AP_CFA_KIND_MASK) == AP_CFA_UNSUPPORTED)
				ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES_UNSUPPORTED, 1);
		}
	}
	if (res == AP_STEP_USE_FP) {
		w->flags |= AP_UNWIND_F_FP;
		if (!(w->flags & AP_UNWIND_F_NO_TABLES))
			ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES_FP, 1);
		res = ap_unwind_fp_step(&w->r, NULL);
		/* an unmapped pc whose frame pointer leads nowhere: the pc was garbage */
		if (res != AP_STEP_OK && res != AP_UNWIND_COMPLETE && unknown)
			res = AP_UNWIND_FAIL_NO_MAPPING;
	}
	if (res == AP_STEP_OK)
		return 0;
	w->status = res;
	return 1;
}

static long ap_unwind_step(__u64 index, void *ctx)
{
	return ap_unwind_frame(index) ? 1 : 0;
}

/*
 * Walk the current task's user stack into the per-CPU scratch stack (leaf first, zero tail).
 * `start` holds the user registers of the sample when it interrupted user mode; when its pc
 * is 0 the user registers saved at kernel entry are used (and stored there). Returns the
 * scratch stack (NULL when there is no user stack: kernel thread) and sets *nframes,
 * *status (enum ap_unwind_status) and *flags (AP_UNWIND_F_*).
 */
static __always_inline struct ap_stack *ap_unwind_user(struct ap_uregs *start, __u32 tgid,
							__u32 *nframes, __u32 *status,
							__u32 *flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ap_unwind_scratch *sc;
	struct ap_unwind_walk *w;
	__u32 zero = 0, n, st_code;
	__u64 t0 = bpf_ktime_get_ns();

	*nframes = 0;
	*status = AP_UNWIND_NONE;
	*flags = 0;
	if (!task->mm)
		return NULL;
	sc = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!sc)
		return NULL;
	w = &sc->w;
	__builtin_memset(w, 0, sizeof(*w));
	/* straight-line stores: a loop zeroing just the tail costs the verifier far more */
#pragma clang loop unroll(full)
	for (int i = 0; i < AP_UNWIND_MAX_FRAMES; i++)
		*(volatile __u64 *)&sc->st.ips[i] = 0; /* volatile: not a memset call */
	if (start->pc) {
		w->r.pc = start->pc;
		w->r.sp = start->sp;
		w->r.bp = start->bp;
	} else {
		/* helper reads: clang would merge direct loads with the caller's context loads
		 * into one instruction on two pointer types, which the verifier refuses */
		struct pt_regs *u = (struct pt_regs *)bpf_task_pt_regs(task);

		if (!u || bpf_probe_read_kernel(&w->r.pc, 8, &PT_REGS_IP(u)) ||
		    bpf_probe_read_kernel(&w->r.sp, 8, &PT_REGS_SP(u)) ||
		    bpf_probe_read_kernel(&w->r.bp, 8, &PT_REGS_FP(u)))
			return NULL;
		start->pc = w->r.pc;
		start->sp = w->r.sp;
		start->bp = w->r.bp;
	}
	if (!w->r.pc)
		return NULL;
	w->r.exact = 1;
	w->tgid = tgid;
	struct ap_unwind_pid_key pk = { .pid = tgid };

	if (!bpf_map_lookup_elem(&unwind_pids, &pk))
		w->flags = AP_UNWIND_F_NO_TABLES;

	bpf_loop(AP_UNWIND_MAX_FRAMES + 1, ap_unwind_step, NULL, 0);

	n = w->depth;
	st_code = w->status ? w->status : AP_UNWIND_TRUNCATED;
	if (w->flags & AP_UNWIND_F_NO_TABLES)
		st_code = AP_UNWIND_NO_TABLES;

	ap_unwind_stat_add(AP_UNWIND_STAT_STACKS, 1);
	ap_unwind_stat_add(AP_UNWIND_STAT_FRAMES, n);
	ap_unwind_stat_add(AP_UNWIND_STAT_NS, bpf_ktime_get_ns() - t0);
	if (w->flags & AP_UNWIND_F_UNKNOWN_PC)
		ap_unwind_stat_add(AP_UNWIND_STAT_UNKNOWN_PC, 1);
	switch (st_code) {
	case AP_UNWIND_COMPLETE:
		ap_unwind_stat_add(w->flags & AP_UNWIND_F_FP ? AP_UNWIND_STAT_COMPLETE_FP :
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
	*nframes = n;
	*status = st_code;
	*flags = w->flags;
	return &sc->st;
}

#endif
