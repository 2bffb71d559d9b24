// SPDX-License-Identifier: MIT
/*
 * The correlation join: the injection library reports CUPTI's correlation id of the API call
 * in flight on a thread (AP_GPU_CALL_CORRELATION, fired inside the call); the probes report
 * the call itself when it returns. A correlation belongs to the call of the same (pid, tid)
 * whose [ts, ts + dur] contains it. Either may reach the model first (they come through
 * different ring buffers), so each thread keeps its correlations still waiting for a call and
 * its last calls still waiting for a correlation.
 *
 * Activity records then find their call by (pid, correlation id): a kernel's GPU time goes
 * to its launch's sample (its CPU stack + the [gpu] leaf) and its kernel row. A kernel
 * record whose correlation joined no probed call (a library we cannot probe, a call type we
 * do not probe) lands on the correlation's own stack when it has one, else on a stack of the
 * [gpu] frame alone: GPU time is never dropped for want of a stack.
 *
 * Bounded: GPU_THREAD_QUEUE correlations per thread, max_pending_correlations in all (the
 * oldest go first; those that had no activity yet are counted as expired).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "lib/hash.h"

static uint64_t pair_hash(uint64_t a, uint64_t b)
{
	return ap_hash_mix64(ap_hash_mix64(a) ^ b);
}

struct gpu_thread *gpu_thread_get(struct ap_gpu_model *m, uint32_t pid, uint32_t tid,
				  bool create)
{
	uint64_t h = pair_hash(pid, tid);
	struct gpu_thread *t;

	for (struct ap_hnode *n = ap_htab_first(&m->threads, h); n; n = ap_htab_next(n)) {
		t = AP_CONTAINER_OF(n, struct gpu_thread, node);
		if (t->pid == pid && t->tid == tid)
			return t;
	}
	if (!create)
		return NULL;
	if (m->nthreads >= GPU_MAX_THREADS) {
		m->st.threads_dropped++;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t || ap_htab_insert(&m->threads, &t->node, h)) {
		free(t);
		m->st.nomem++;
		return NULL;
	}
	t->pid = pid;
	t->tid = tid;
	m->nthreads++;
	return t;
}

static struct gpu_corr *corr_find(struct ap_gpu_model *m, uint32_t pid, uint64_t id)
{
	for (struct ap_hnode *n = ap_htab_first(&m->corrs, pair_hash(pid, id)); n;
	     n = ap_htab_next(n)) {
		struct gpu_corr *c = AP_CONTAINER_OF(n, struct gpu_corr, node);

		if (c->pid == pid && c->id == id)
			return c;
	}
	return NULL;
}

static void corr_unqueue(struct gpu_corr *c)
{
	struct gpu_thread *t = c->thr;

	if (!t)
		return;
	for (size_t i = 0; i < t->nqueue; i++) {
		if (t->queue[i] == c) {
			memmove(&t->queue[i], &t->queue[i + 1],
				(t->nqueue - i - 1) * sizeof(t->queue[0]));
			t->nqueue--;
			break;
		}
	}
	c->thr = NULL;
}

void gpu_corr_unlink(struct ap_gpu_model *m, struct gpu_corr *c)
{
	corr_unqueue(c);
	if (c->older)
		c->older->newer = c->newer;
	else
		m->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		m->newest = c->older;
	ap_htab_remove(&m->corrs, &c->node);
	m->ncorrs--;
	free(c);
}

/* GPU time of a kernel record on a stack that is not a probed launch's. */
static void apply_unjoined(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t pid,
			   uint32_t tid, uint64_t total, uint64_t max, uint64_t n, uint32_t name,
			   const uint32_t grid[3], const uint32_t block[3])
{
	uint32_t display = name ? gpu_display_of(m, name) : gpu_str(m, "[unnamed kernel]");
	struct gpu_kernel *k;

	gpu_sample(m, gpu_leaf_stack(m, cpu_stack, display), pid, tid, gpu_proc_comm(m, pid), 0,
		   total);
	/* the kernel's launch row when its launches were seen, else a row of its own */
	k = name ? gpu_kernel_by_name(m, pid, display) : NULL;
	if (!k)
		k = gpu_kernel_get(m, pid, 0, name ? name : display, true);
	if (!k)
		return;
	k->gpu_total += total;
	k->gpu_records += n;
	if (max > k->gpu_max)
		k->gpu_max = max;
	if (grid && block)
		gpu_kernel_shape(k, grid, block, 0);
	if (gpu_kernel_stack(k, cpu_stack, 0, total) == -ENOSPC)
		m->st.kernel_stacks_dropped++;
}

static void apply_corr(struct ap_gpu_model *m, struct gpu_corr *c, uint64_t total, uint64_t max,
		       uint64_t n, uint32_t name, const uint32_t grid[3], const uint32_t block[3])
{
	const struct gpu_launch *l = &c->l;
	struct gpu_kernel *k;

	c->has_activity = true;
	if (c->state != GPU_CORR_JOINED || l->kind != AP_GPU_CALL_LAUNCH) {
		/* a graph launch, a library's launch we could not probe: the call's stack */
		apply_unjoined(m, c->state == GPU_CORR_JOINED ? l->cpu_stack : c->stack, c->pid,
			       c->tid, total, max, n, name, grid, block);
		return;
	}
	gpu_sample(m, l->sample_stack, l->pid, l->tid, l->comm, 0, total);
	k = gpu_kernel_get(m, l->pid, l->kfunc, 0, true);
	if (!k)
		return;
	if (!k->mangled && name) { /* the record names a kernel its launch could not */
		struct gpu_proc *pr = gpu_proc_get(m, l->pid, false);

		if (pr)
			gpu_set_name(m, pr, l->kfunc, gpu_s(m, name), GPU_NAME_LAUNCH);
	}
	k->gpu_total += total;
	k->gpu_records += n;
	if (max > k->gpu_max)
		k->gpu_max = max;
	if (gpu_kernel_stack(k, l->cpu_stack, 0, total) == -ENOSPC)
		m->st.kernel_stacks_dropped++;
}

/* Kernel records that came before the correlation was settled. */
static void apply_early(struct ap_gpu_model *m, struct gpu_corr *c)
{
	if (!c->early_n)
		return;
	apply_corr(m, c, c->early_ns, c->early_max, c->early_n, c->early_name, NULL, NULL);
	c->early_n = c->early_ns = c->early_max = 0;
}

static void corr_orphan(struct ap_gpu_model *m, struct gpu_corr *c)
{
	corr_unqueue(c);
	c->state = GPU_CORR_ORPHAN;
	m->st.correlations_orphaned++;
	apply_early(m, c);
}

static void corr_join(struct ap_gpu_model *m, struct gpu_corr *c, const struct gpu_launch *l)
{
	corr_unqueue(c);
	c->state = GPU_CORR_JOINED;
	c->l = *l;
	m->st.correlations_joined++;
	if (l->event && l->event <= m->nevents)
		m->events[l->event - 1].corr = c->id;
	apply_early(m, c);
}

static bool contains(const struct gpu_launch *l, uint64_t ts)
{
	return l->kind && ts >= l->ts && ts - l->ts <= l->dur;
}

int gpu_join_call(struct ap_gpu_model *m, struct gpu_thread *t, const struct gpu_launch *l)
{
	for (size_t i = 0; i < t->nqueue;) {
		struct gpu_corr *c = t->queue[i];

		if (contains(l, c->ts)) {
			corr_join(m, c, l); /* unqueues it */
		} else if (c->ts < l->ts) {
			/* calls of one thread come in order: none will contain it any more */
			corr_orphan(m, c);
		} else {
			i++;
		}
	}
	t->recent[t->recent_next] = *l;
	t->recent_next = (t->recent_next + 1) % GPU_THREAD_RECENT;
	return 0;
}

int gpu_join_correlation(struct ap_gpu_model *m, const struct ap_gpu_call *call)
{
	struct gpu_thread *t;
	struct gpu_corr *c;

	m->st.correlations++;
	if (corr_find(m, call->pid, call->correlation)) {
		m->st.bad_records++; /* CUPTI's ids are unique per process */
		return 0;
	}
	while (m->ncorrs >= m->max_corr && m->oldest) {
		if (!m->oldest->has_activity)
			m->st.correlations_expired++;
		gpu_corr_unlink(m, m->oldest);
	}
	c = calloc(1, sizeof(*c));
	if (!c || ap_htab_insert(&m->corrs, &c->node, pair_hash(call->pid, call->correlation))) {
		free(c);
		m->st.nomem++;
		return -ENOMEM;
	}
	c->id = call->correlation;
	c->pid = call->pid;
	c->tid = call->tid;
	c->ts = call->ts_ns;
	c->cbid = call->cbid;
	c->stack = gpu_check_stack(m, call->stack);
	c->older = m->newest;
	if (m->newest)
		m->newest->newer = c;
	else
		m->oldest = c;
	m->newest = c;
	m->ncorrs++;

	t = gpu_thread_get(m, call->pid, call->tid, true);
	if (!t) {
		corr_orphan(m, c);
		return 0;
	}
	/* the call's record came first */
	for (size_t i = 0; i < GPU_THREAD_RECENT; i++) {
		size_t j = (t->recent_next + GPU_THREAD_RECENT - 1 - i) % GPU_THREAD_RECENT;

		if (contains(&t->recent[j], c->ts)) {
			corr_join(m, c, &t->recent[j]);
			return 0;
		}
	}
	if (t->nqueue == GPU_THREAD_QUEUE)
		corr_orphan(m, t->queue[0]);
	t->queue[t->nqueue++] = c;
	c->thr = t;
	return 0;
}

int ap_gpu_model_add_activity(struct ap_gpu_model *m, const struct ap_gpu_activity *a)
{
	uint64_t dur;
	struct gpu_event e = { 0 };
	struct gpu_copy *b;
	struct gpu_corr *c;
	uint32_t name;

	if (!m || !a)
		return -EINVAL;
	m->st.activity_records++;
	dur = a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0;
	gpu_note_ts(m, a->start_ns, a->start_ns + dur);
	e.ts = a->start_ns;
	e.dur = dur;
	e.pid = a->pid;
	e.corr = a->correlation;
	e.device = a->device;
	e.stream = a->stream;
	e.b = a->bytes;
	e.dir = (uint8_t)(a->copy_dir < GPU_NDIRS ? a->copy_dir : 0);
	switch (a->kind) {
	case AP_GPU_ACT_KERNEL:
		m->st.activity_kernels++;
		name = a->name && a->name[0] ? gpu_str(m, a->name) : 0;
		c = corr_find(m, a->pid, a->correlation);
		e.type = GPU_EV_KERNEL;
		memcpy(e.grid, a->grid, sizeof(e.grid));
		memcpy(e.block, a->block, sizeof(e.block));
		if (!c) {
			m->st.correlations_unmatched++;
			apply_unjoined(m, m->empty_stack, a->pid, 0, dur, dur, 1, name, a->grid,
				       a->block);
		} else if (c->state == GPU_CORR_PENDING) {
			c->early_ns += dur;
			c->early_n++;
			if (dur > c->early_max)
				c->early_max = dur;
			if (name)
				c->early_name = name;
			c->has_activity = true;
		} else {
			apply_corr(m, c, dur, dur, 1, name, a->grid, a->block);
		}
		if (!name && c && c->state == GPU_CORR_JOINED && c->l.kind == AP_GPU_CALL_LAUNCH) {
			struct gpu_kernel *k = gpu_kernel_get(m, c->pid, c->l.kfunc, 0, false);

			name = k ? k->display : 0;
		} else if (name) {
			name = gpu_display_of(m, name);
		}
		e.name = name ? name : gpu_str(m, "[unnamed kernel]");
		break;
	case AP_GPU_ACT_MEMCPY:
	case AP_GPU_ACT_MEMSET:
		if (a->kind == AP_GPU_ACT_MEMCPY) {
			m->st.activity_memcpy++;
			b = &m->copies[e.dir];
			e.type = GPU_EV_MEMCPY;
			e.name = gpu_str(m, gpu_dir_name(e.dir));
		} else {
			m->st.activity_memset++;
			b = &m->memset;
			e.type = GPU_EV_MEMSET;
			e.name = gpu_str(m, "memset");
		}
		b->gpu_ns += dur;
		b->gpu_records++;
		b->gpu_bytes += a->bytes;
		break;
	case AP_GPU_ACT_MEMORY:
		m->st.activity_memory++;
		e.type = GPU_EV_MEMORY;
		e.name = gpu_str(m, "memory");
		break;
	default:
		m->st.bad_records++;
		return 0;
	}
	gpu_event_add(m, &e);
	return 0;
}

struct exit_ctx {
	struct ap_gpu_model *m;
	uint32_t pid;
};

static bool drop_thread(struct ap_hnode *n, void *ctx)
{
	struct exit_ctx *x = ctx;
	struct gpu_thread *t = AP_CONTAINER_OF(n, struct gpu_thread, node);

	if (t->pid != x->pid)
		return false;
	/* its waiting correlations will get no call any more */
	while (t->nqueue)
		corr_orphan(x->m, t->queue[0]);
	x->m->nthreads--;
	free(t);
	return true;
}

void gpu_threads_exit(struct ap_gpu_model *m, uint32_t pid)
{
	struct exit_ctx x = { m, pid };

	ap_htab_sweep(&m->threads, drop_thread, &x);
}

void gpu_corr_free_all(struct ap_gpu_model *m)
{
	while (m->oldest)
		gpu_corr_unlink(m, m->oldest);
}
