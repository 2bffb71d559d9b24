// SPDX-License-Identifier: MIT
/*
 * Unwinding a stack snapshot in the agent: the deferred samples of unwinder.h. The walk is
 * the BPF walker's (src/bpf/unwind_step.h), over the same tables, read back from the kernel
 * through a read-only mapping of their inner maps.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "unwinder_internal.h"

struct snap {
	const uint8_t *mem;
	uint64_t base;
	size_t len;
};

static int snap_read(const struct snap *s, __u64 *dst, __u64 addr)
{
	if (addr < s->base || addr - s->base > s->len || s->len - (addr - s->base) < 8)
		return -1;
	memcpy(dst, s->mem + (addr - s->base), sizeof(*dst));
	return 0;
}

#define AP_UNWIND_INLINE inline
#define AP_UNWIND_READ(rctx, dst, addr) snap_read((const struct snap *)(rctx), (dst), (addr))
#include "bpf/unwind_step.h"

/* A file table's rows, mapped read-only from its inner map on first use and kept with the
 * table (replays come in bursts: a new process's first samples). */
static const uint64_t *view_get(struct ap_unwinder *u, struct utable *t)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len;
	__u32 id;
	void *mem;
	int fd;

	if (t->view)
		return t->view;
	if (bpf_map_lookup_elem(u->files_fd, &t->slot, &id))
		return NULL;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return NULL;
	len = ((size_t)(AP_UNWIND_ROW_BASE(t->nbuckets) + t->nrows) * 8 + page - 1) & ~(page - 1);
	mem = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED)
		return NULL;
	t->view = mem;
	t->view_len = len;
	return mem;
}

/* Index of the mapping holding pc, or -1. */
static int find_map(const struct upid *p, uint64_t pc)
{
	uint32_t lo = 0, hi = p->nmaps;

	while (lo < hi) { /* first mapping starting above pc */
		uint32_t mid = lo + (hi - lo) / 2;

		if (p->maps[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && pc < p->maps[lo - 1].end ? (int)lo - 1 : -1;
}

static const struct ap_unwind_row *row_for(struct ap_unwinder *u, const struct upid *p, int mi,
					   uint64_t pc)
{
	struct utable *t = p->mtab[mi];
	struct ap_cfi_table view;
	uint64_t bias;

	if (!t || t->state != TABLE_READY || t->slot == AP_UNWIND_NO_FILE)
		return NULL;
	memset(&view, 0, sizeof(view));
	view.image = (uint64_t *)view_get(u, t);
	view.segs = t->segs;
	view.nsegs = t->nsegs;
	view.base = t->base;
	view.nbuckets = t->nbuckets;
	view.row_base = AP_UNWIND_ROW_BASE(t->nbuckets);
	view.nrows = t->nrows;
	view.shift = t->shift;
	if (!view.image || ap_cfi_table_bias(&view, p->maps[mi].start, p->maps[mi].offset, &bias))
		return NULL;
	return ap_cfi_table_find(&view, pc - bias);
}

size_t ap_unwinder_replay(struct ap_unwinder *u, int pid, const struct ap_unwinder_snapshot *s,
			  uint64_t *ips, size_t max, uint32_t *status)
{
	struct snap sn = { s->stack, s->sp, s->stack_len };
	struct ap_uregs r = { .pc = s->pc, .sp = s->sp, .bp = s->bp, .exact = 1 };
	const struct upid *p;
	size_t n = 0;
	int res = AP_UNWIND_TRUNCATED;

	*status = AP_UNWIND_NONE;
	if (!u || !max || !r.pc)
		return 0;
	pthread_mutex_lock(&u->lock);
	p = ap_uw_pid_find(u, pid);
	while (n < max) {
		uint64_t pc = ap_unwind_lookup_pc(&r);
		const struct ap_unwind_row *row = NULL;
		int mi = p ? find_map(p, pc) : -1;

		ips[n++] = r.pc;
		if (mi >= 0)
			row = row_for(u, p, mi, pc);
		res = row ? ap_unwind_row_step(row, &r, &sn) : AP_STEP_USE_FP;
		if (res == AP_STEP_USE_FP) {
			res = ap_unwind_fp_step(&r, &sn);
			if (res != AP_STEP_OK && res != AP_UNWIND_COMPLETE && p && mi < 0)
				res = AP_UNWIND_FAIL_NO_MAPPING;
		}
		if (res != AP_STEP_OK)
			break;
		res = AP_UNWIND_TRUNCATED;
	}
	*status = p ? (uint32_t)res : AP_UNWIND_NO_TABLES;
	pthread_mutex_unlock(&u->lock);
	return n;
}

int ap_unwinder_pid_state(struct ap_unwinder *u, int pid)
{
	const struct upid *p;
	int state = AP_UNWINDER_PID_UNKNOWN;

	if (!u)
		return state;
	pthread_mutex_lock(&u->lock);
	p = ap_uw_pid_find(u, pid);
	if (p) {
		state = AP_UNWINDER_PID_READY;
		for (uint32_t i = 0; i < p->nmaps; i++)
			if (p->mtab[i] && p->mtab[i]->state == TABLE_PENDING)
				state = AP_UNWINDER_PID_PENDING;
		if (p->exited)
			state |= AP_UNWINDER_PID_EXITED;
	}
	pthread_mutex_unlock(&u->lock);
	return state;
}
