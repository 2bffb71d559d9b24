// SPDX-License-Identifier: MIT
/*
 * The GPU model's API calls: registration and handles (kernel names), launches (samples and
 * kernel rows), allocations and frees (live memory, leaks at process exit), copies, syncs,
 * and what the collector reports besides (ELF-symbol names, unprobeable binaries, exits).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "lib/grow.h"
#include "lib/hash.h"

static uint64_t key_hash(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t k[3] = { a, b, c };

	return ap_hash_bytes(k, sizeof(k), 0x6770754dULL);
}

/* ---- calls ---- */

static bool is_driver_api(const struct ap_gpu_call *c)
{
	const char *a = c->api;

	if (c->flags & AP_GPU_F_DRIVER_API)
		return true;
	return a && a[0] == 'c' && a[1] == 'u' && strncmp(a, "cuda", 4) != 0;
}

static struct gpu_api *api_get(struct ap_gpu_model *m, uint32_t name, bool driver)
{
	uint64_t h = key_hash(name, driver, 1);
	struct gpu_api *a;

	for (struct ap_hnode *n = ap_htab_first(&m->apis, h); n; n = ap_htab_next(n)) {
		a = AP_CONTAINER_OF(n, struct gpu_api, node);
		if (a->name == name && a->driver == driver)
			return a;
	}
	if (m->napis >= GPU_MAX_APIS) {
		m->st.apis_dropped++;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a || ap_htab_insert(&m->apis, &a->node, h)) {
		free(a);
		m->st.nomem++;
		return NULL;
	}
	a->name = name;
	a->driver = driver;
	m->napis++;
	return a;
}

static void api_count(struct gpu_api *a, const struct ap_gpu_call *c)
{
	a->calls++;
	a->cpu_ns += c->dur_ns;
	if (!c->ret)
		return;
	a->errors++;
	for (size_t i = 0; i < a->nerrs; i++) {
		if (a->errs[i].code == c->ret) {
			a->errs[i].n++;
			return;
		}
	}
	if (a->nerrs >= GPU_MAX_API_ERRS) {
		a->errs_other++;
		return;
	}
	a->errs[a->nerrs].code = c->ret;
	a->errs[a->nerrs++].n = 1;
}

static struct gpu_sync *sync_get(struct ap_gpu_model *m, uint32_t api, uint32_t stack)
{
	uint64_t h = key_hash(api, stack, 2);
	struct gpu_sync *s;

	for (struct ap_hnode *n = ap_htab_first(&m->syncs, h); n; n = ap_htab_next(n)) {
		s = AP_CONTAINER_OF(n, struct gpu_sync, node);
		if (s->api == api && s->stack == stack)
			return s;
	}
	if (m->nsyncs >= GPU_MAX_SYNC_SITES) {
		m->st.sync_dropped++;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || ap_htab_insert(&m->syncs, &s->node, h)) {
		free(s);
		m->st.nomem++;
		return NULL;
	}
	s->api = api;
	s->stack = stack;
	m->nsyncs++;
	return s;
}

static int on_launch(struct ap_gpu_model *m, const struct ap_gpu_call *c, struct gpu_proc *pr,
		     struct gpu_launch *l)
{
	struct gpu_name *nm = NULL;
	struct gpu_kernel *k;
	uint64_t func = c->func;
	uint32_t display;
	char buf[64];

	m->st.launches++;
	if (pr) {
		/* the collector knew the name (a driver CUfunction it resolved) */
		if (c->name && c->name[0] && !gpu_name_find(pr, func))
			gpu_set_name(m, pr, func, c->name, GPU_NAME_LAUNCH);
		nm = gpu_name_find(pr, func);
		if (!nm) { /* a cudaKernel_t from __cudaGetKernel: its host stub */
			struct gpu_handle *h = gpu_handle_find(pr, func);

			if (h) {
				func = h->func;
				nm = gpu_name_find(pr, func);
			}
		}
	}
	if (nm) {
		display = nm->display;
	} else {
		m->st.unnamed_launches++;
		snprintf(buf, sizeof(buf), "kernel@0x%" PRIx64, func);
		display = gpu_str(m, buf);
	}
	l->kfunc = func;
	l->sample_stack = gpu_leaf_stack(m, l->cpu_stack, display);
	k = gpu_kernel_get(m, c->pid, func, 0, true);
	if (k) {
		k->launches++;
		k->errors += c->ret != 0;
		gpu_kernel_shape(k, c->grid, c->block, c->shmem);
		if (gpu_kernel_stack(k, l->cpu_stack, 1, 0) == -ENOSPC)
			m->st.kernel_stacks_dropped++;
	}
	return gpu_sample(m, l->sample_stack, c->pid, c->tid, l->comm, 1, 0);
}

static void on_alloc(struct ap_gpu_model *m, const struct ap_gpu_call *c, struct gpu_proc *pr,
		     uint32_t stack)
{
	uint32_t kind = c->mem_kind < 4 ? c->mem_kind : AP_GPU_MEM_DEVICE;
	struct gpu_alloc *a;

	m->mem.allocations++;
	m->mem.by_kind[kind].allocations++;
	/* a failed allocation is an error, never live memory or a leak */
	if (c->ret || !c->ptr) {
		m->mem.failed_allocations++;
		m->mem.by_kind[kind].failed++;
		return;
	}
	m->mem.by_kind[kind].bytes += c->bytes;
	m->mem.allocated_bytes += c->bytes;
	if (!pr) {
		m->st.live_untracked++;
		return;
	}
	a = gpu_alloc_find(pr, c->ptr);
	if (a) { /* its free was not seen (lost, or not probed): the new one replaces it */
		m->st.alloc_replaced++;
		pr->live_bytes -= a->bytes;
		m->mem.live_bytes -= a->bytes;
	} else {
		if (m->nlive >= GPU_MAX_LIVE) {
			m->st.live_untracked++;
			return;
		}
		a = calloc(1, sizeof(*a));
		if (!a || ap_htab_insert(&pr->allocs, &a->node, ap_hash_mix64(c->ptr))) {
			free(a);
			m->st.nomem++;
			return;
		}
		m->nlive++;
		pr->nallocs++;
	}
	a->ptr = c->ptr;
	a->bytes = c->bytes;
	a->ts = c->ts_ns;
	a->stack = stack;
	a->kind = kind;
	a->tid = c->tid;
	pr->live_bytes += c->bytes;
	m->mem.live_bytes += c->bytes;
	if (m->mem.live_bytes > m->mem.peak_bytes)
		m->mem.peak_bytes = m->mem.live_bytes;
}

static void on_free(struct ap_gpu_model *m, const struct ap_gpu_call *c, struct gpu_proc *pr)
{
	struct gpu_alloc *a;

	m->mem.frees++;
	/* a failed free freed nothing; cudaFree(NULL) is a no-op */
	if (c->ret) {
		m->mem.failed_frees++;
		return;
	}
	if (!c->ptr)
		return;
	a = pr ? gpu_alloc_find(pr, c->ptr) : NULL;
	if (!a) { /* allocated before the agent came, or not tracked */
		m->mem.unknown_frees++;
		return;
	}
	m->mem.freed_bytes += a->bytes;
	pr->live_bytes -= a->bytes;
	m->mem.live_bytes -= a->bytes;
	ap_htab_remove(&pr->allocs, &a->node);
	pr->nallocs--;
	m->nlive--;
	free(a);
}

static void on_copy(struct ap_gpu_model *m, const struct ap_gpu_call *c)
{
	struct gpu_copy *b = gpu_copy_bucket(m, c->copy_dir, c->api);

	b->calls++;
	b->requested_bytes += c->bytes;
	b->cpu_ns += c->dur_ns;
	if (c->ret)
		b->errors++;
	else
		b->bytes += c->bytes;
}

static void add_event(struct ap_gpu_model *m, const struct ap_gpu_call *c, uint32_t api,
		      struct gpu_launch *l)
{
	struct gpu_event e = {
		.ts = c->ts_ns, .dur = c->dur_ns, .pid = c->pid, .tid = c->tid, .name = api,
		.ret = c->ret, .shmem = c->shmem,
		.type = GPU_EV_API, .kind = (uint8_t)c->kind, .dir = (uint8_t)c->copy_dir,
	};

	switch (c->kind) {
	case AP_GPU_CALL_LAUNCH:
		e.a = c->func;
		e.b = c->stream;
		memcpy(e.grid, c->grid, sizeof(e.grid));
		memcpy(e.block, c->block, sizeof(e.block));
		break;
	case AP_GPU_CALL_ALLOC:
	case AP_GPU_CALL_FREE:
		e.a = c->ptr;
		e.b = c->bytes;
		e.dir = (uint8_t)c->mem_kind;
		break;
	case AP_GPU_CALL_COPY:
		e.a = c->stream;
		e.b = c->bytes;
		break;
	case AP_GPU_CALL_SYNC:
		e.a = c->stream;
		break;
	case AP_GPU_CALL_REGISTER_FUNCTION:
	case AP_GPU_CALL_GET_KERNEL:
		e.a = c->func;
		e.b = c->handle;
		break;
	}
	l->event = gpu_event_add(m, &e);
}

/*
 * One launch seen twice: CUDA 13's __cudaLaunchKernel tail-jumps into cudaLaunchKernel (the
 * notes, 2.), so with probes on both, two records cover one launch, one inside the other. A
 * thread runs one call at a time, so launch records of one thread that overlap in time are
 * such a pair: the second is not counted again (the API table still counts both functions).
 */
static bool nested_launch(struct ap_gpu_model *m, const struct ap_gpu_call *c)
{
	struct gpu_thread *t;
	uint64_t end = c->ts_ns + c->dur_ns;

	if (!c->dur_ns)
		return false;
	t = gpu_thread_get(m, c->pid, c->tid, false);
	for (size_t i = 0; t && i < GPU_THREAD_RECENT; i++) {
		const struct gpu_launch *r = &t->recent[i];

		if (r->kind == AP_GPU_CALL_LAUNCH && r->dur && r->ts < end &&
		    c->ts_ns < r->ts + r->dur)
			return true;
	}
	return false;
}

int ap_gpu_model_add_call(struct ap_gpu_model *m, const struct ap_gpu_call *c)
{
	struct gpu_launch l = { 0 };
	struct gpu_proc *pr;
	struct gpu_api *a;
	struct gpu_thread *t;
	uint32_t api;
	int err = 0;

	if (!m || !c)
		return -EINVAL;
	if (c->kind == AP_GPU_CALL_CORRELATION)
		return gpu_join_correlation(m, c);
	m->st.calls++;
	if (c->kind > AP_GPU_CALL_CORRELATION) {
		m->st.bad_records++;
		return 0;
	}
	gpu_note_ts(m, c->ts_ns, c->ts_ns + c->dur_ns);
	api = gpu_str(m, c->api && c->api[0] ? c->api : "[unknown API]");
	a = api_get(m, api, is_driver_api(c));
	if (a)
		api_count(a, c);
	pr = gpu_proc_get(m, c->pid, true);
	if (pr && c->comm && c->comm[0])
		pr->comm = gpu_str(m, c->comm);
	l.ts = c->ts_ns;
	l.dur = c->dur_ns;
	l.cpu_stack = gpu_check_stack(m, c->stack);
	l.sample_stack = UINT32_MAX;
	l.pid = c->pid;
	l.tid = c->tid;
	l.comm = gpu_proc_comm(m, c->pid);
	l.kind = c->kind;
	l.api = api;
	add_event(m, c, api, &l);

	switch (c->kind) {
	case AP_GPU_CALL_REGISTER_FATBIN:
		m->st.fatbins++;
		return 0;
	case AP_GPU_CALL_REGISTER_FUNCTION:
		m->st.registrations++;
		return pr ? gpu_set_name(m, pr, c->func, c->name, GPU_NAME_REGISTER) : 0;
	case AP_GPU_CALL_GET_KERNEL:
		m->st.get_kernels++;
		/* here the handle is the host stub itself; a real driver hands out another */
		if (pr && c->handle && c->handle != c->func) {
			struct gpu_handle *h = gpu_handle_find(pr, c->handle);

			if (!h && (pr->nhandles >= GPU_MAX_HANDLES_PER_PROC ||
				   m->nhandles >= GPU_MAX_HANDLES)) {
				m->st.handles_dropped++;
			} else if (!h) {
				h = calloc(1, sizeof(*h));
				if (!h || ap_htab_insert(&pr->handles, &h->node,
							 ap_hash_mix64(c->handle))) {
					free(h);
					m->st.nomem++;
					return -ENOMEM;
				}
				pr->nhandles++;
				m->nhandles++;
			}
			if (h) {
				h->handle = c->handle;
				h->func = c->func;
			}
		}
		return 0;
	case AP_GPU_CALL_LAUNCH:
		if (nested_launch(m, c)) {
			m->st.launches_nested++;
			return 0;
		}
		err = on_launch(m, c, pr, &l);
		break;
	case AP_GPU_CALL_ALLOC:
		on_alloc(m, c, pr, l.cpu_stack);
		break;
	case AP_GPU_CALL_FREE:
		on_free(m, c, pr);
		break;
	case AP_GPU_CALL_COPY:
		on_copy(m, c);
		break;
	case AP_GPU_CALL_SYNC: {
		struct gpu_sync *s = sync_get(m, api, l.cpu_stack);

		if (s) {
			s->calls++;
			s->blocked_ns += c->dur_ns;
			if (c->dur_ns > s->max_ns)
				s->max_ns = c->dur_ns;
		}
		break;
	}
	default:
		break;
	}
	/* the correlation ids of the injection library join calls with a duration */
	if (c->dur_ns) {
		t = gpu_thread_get(m, c->pid, c->tid, true);
		if (t)
			gpu_join_call(m, t, &l);
	}
	return err;
}

/* ---- what the collector tells ---- */

int ap_gpu_model_name_kernel(struct ap_gpu_model *m, uint32_t pid, uint64_t func,
			     const char *mangled)
{
	struct gpu_proc *pr;

	if (!m || !mangled)
		return -EINVAL;
	pr = gpu_proc_get(m, pid, true);
	if (!pr)
		return 0; /* counted */
	m->st.named_by_symbol++;
	return gpu_set_name(m, pr, func, mangled, GPU_NAME_SYMBOL);
}

int ap_gpu_model_add_unprobeable(struct ap_gpu_model *m, uint32_t pid, const char *path,
				 const char *reason)
{
	uint32_t ps, rs;

	if (!m || !path)
		return -EINVAL;
	ps = gpu_str(m, path);
	rs = gpu_str(m, reason ? reason : "");
	for (size_t i = 0; i < m->nunprobeable; i++) {
		if (m->unprobeable[i].path == ps) {
			m->unprobeable[i].processes++;
			return 0;
		}
	}
	if (m->nunprobeable >= GPU_MAX_UNPROBEABLE) {
		m->st.unprobeable_dropped++;
		return 0;
	}
	if (ap_grow_array((void **)&m->unprobeable, &m->unprobeable_cap, m->nunprobeable + 1,
			  sizeof(*m->unprobeable)))
		return -ENOMEM;
	m->unprobeable[m->nunprobeable++] = (struct gpu_unprobeable){ pid, ps, rs, 1 };
	return 0;
}

struct exit_ctx {
	struct ap_gpu_model *m;
	uint32_t pid;
};

static bool leak_one(struct ap_hnode *n, void *ctx)
{
	struct exit_ctx *x = ctx;
	struct ap_gpu_model *m = x->m;
	struct gpu_alloc *a = AP_CONTAINER_OF(n, struct gpu_alloc, node);

	m->mem.leaks++;
	m->mem.leaked_bytes += a->bytes;
	if (m->nleaks >= GPU_MAX_LEAKS ||
	    ap_grow_array((void **)&m->leaks, &m->leaks_cap, m->nleaks + 1, sizeof(*m->leaks)))
		m->st.leaks_dropped++;
	else
		m->leaks[m->nleaks++] = (struct gpu_leak){ a->ptr, a->bytes, a->ts,
							   x->pid, a->tid, a->stack, a->kind };
	m->nlive--;
	free(a);
	return true;
}


void gpu_proc_free(struct ap_gpu_model *m, struct gpu_proc *pr, bool leaks)
{
	struct exit_ctx x = { m, pr->pid };

	if (leaks) {
		ap_htab_sweep(&pr->allocs, leak_one, &x);
		m->mem.live_bytes -= pr->live_bytes;
	} else {
		ap_htab_sweep(&pr->allocs, gpu_free_node, NULL);
	}
	m->nnames -= pr->nnames;
	m->nhandles -= pr->nhandles;
	ap_htab_sweep(&pr->names, gpu_free_node, NULL);
	ap_htab_sweep(&pr->handles, gpu_free_node, NULL);
	ap_htab_release(&pr->allocs);
	ap_htab_release(&pr->names);
	ap_htab_release(&pr->handles);
	free(pr);
}

void ap_gpu_model_process_exit(struct ap_gpu_model *m, uint32_t pid)
{
	struct gpu_proc *pr;

	if (!m)
		return;
	/* first the threads: their waiting correlations settle while the process is known */
	gpu_threads_exit(m, pid);
	pr = gpu_proc_get(m, pid, false);
	if (pr) {
		ap_htab_remove(&m->procs, &pr->node);
		m->nprocs--;
		gpu_proc_free(m, pr, true);
	}
}

