// SPDX-License-Identifier: MIT
/*
 * The GPU model's state: processes (kernel names, cudaKernel_t handles, live allocations),
 * the per-interval tables (kernels, API calls, memory, copies, syncs) and the launch samples
 * of the profile. Correlations and activity records are in gpu_join.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "symbol/symbolizer.h"

static uint64_t key_hash(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t k[3] = { a, b, c };

	return ap_hash_bytes(k, sizeof(k), 0x6770754dULL);
}

/* ---- strings ---- */

uint32_t gpu_str(struct ap_gpu_model *m, const char *s)
{
	uint32_t id;

	if (ap_profile_nstrings(m->strs) >= GPU_MAX_STRINGS) {
		m->st.strings_dropped++;
		return ap_profile_intern(m->strs, "[dropped: too many names]");
	}
	id = ap_profile_intern(m->strs, s);
	if (id == UINT32_MAX) {
		m->st.nomem++;
		return 0;
	}
	return id;
}

const char *gpu_s(const struct ap_gpu_model *m, uint32_t id)
{
	return ap_profile_str(m->strs, id);
}

struct demangled {
	struct ap_hnode node;
	uint32_t mangled, display;
};

/* Demangling is slow (a parser per name): once per distinct name. */
uint32_t gpu_display_of(struct ap_gpu_model *m, uint32_t mangled)
{
	uint64_t h = ap_hash_mix64(mangled + 1);
	struct demangled *d;
	char *dem;

	for (struct ap_hnode *n = ap_htab_first(&m->demangled, h); n; n = ap_htab_next(n)) {
		d = AP_CONTAINER_OF(n, struct demangled, node);
		if (d->mangled == mangled)
			return d->display;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		m->st.nomem++;
		return mangled;
	}
	dem = ap_symbolizer_demangle(gpu_s(m, mangled));
	d->mangled = mangled;
	d->display = dem ? gpu_str(m, dem) : mangled;
	free(dem);
	if (ap_htab_insert(&m->demangled, &d->node, h)) {
		uint32_t r = d->display;

		free(d);
		return r;
	}
	return d->display;
}

/* ---- processes ---- */

struct gpu_proc *gpu_proc_get(struct ap_gpu_model *m, uint32_t pid, bool create)
{
	uint64_t h = ap_hash_mix64(pid);
	struct gpu_proc *pr;

	for (struct ap_hnode *n = ap_htab_first(&m->procs, h); n; n = ap_htab_next(n)) {
		pr = AP_CONTAINER_OF(n, struct gpu_proc, node);
		if (pr->pid == pid)
			return pr;
	}
	if (!create)
		return NULL;
	if (m->nprocs >= GPU_MAX_PROCS) {
		m->st.procs_dropped++;
		return NULL;
	}
	pr = calloc(1, sizeof(*pr));
	if (!pr || ap_htab_insert(&m->procs, &pr->node, h)) {
		free(pr);
		m->st.nomem++;
		return NULL;
	}
	pr->pid = pid;
	m->nprocs++;
	return pr;
}

uint32_t gpu_proc_comm(struct ap_gpu_model *m, uint32_t pid)
{
	struct gpu_proc *pr = gpu_proc_get(m, pid, false);
	uint32_t id;

	if (!pr || !pr->comm)
		return 0;
	id = ap_profile_intern(m->p, gpu_s(m, pr->comm));
	return id == UINT32_MAX ? 0 : id;
}

static struct gpu_name *name_find(struct gpu_proc *pr, uint64_t func)
{
	for (struct ap_hnode *n = ap_htab_first(&pr->names, ap_hash_mix64(func)); n;
	     n = ap_htab_next(n)) {
		struct gpu_name *e = AP_CONTAINER_OF(n, struct gpu_name, node);

		if (e->func == func)
			return e;
	}
	return NULL;
}

static struct gpu_handle *handle_find(struct gpu_proc *pr, uint64_t handle)
{
	for (struct ap_hnode *n = ap_htab_first(&pr->handles, ap_hash_mix64(handle)); n;
	     n = ap_htab_next(n)) {
		struct gpu_handle *e = AP_CONTAINER_OF(n, struct gpu_handle, node);

		if (e->handle == handle)
			return e;
	}
	return NULL;
}

static struct gpu_alloc *alloc_find(struct gpu_proc *pr, uint64_t ptr)
{
	for (struct ap_hnode *n = ap_htab_first(&pr->allocs, ap_hash_mix64(ptr)); n;
	     n = ap_htab_next(n)) {
		struct gpu_alloc *e = AP_CONTAINER_OF(n, struct gpu_alloc, node);

		if (e->ptr == ptr)
			return e;
	}
	return NULL;
}

int gpu_set_name(struct ap_gpu_model *m, struct gpu_proc *pr, uint64_t func,
		 const char *mangled, uint32_t src)
{
	struct gpu_name *n;
	struct gpu_kernel *k;

	if (!mangled || !mangled[0])
		return 0;
	n = name_find(pr, func);
	if (n && n->src > src)
		return 0; /* registration wins over the ELF symbol */
	if (!n) {
		if (pr->nnames >= GPU_MAX_NAMES_PER_PROC) {
			m->st.names_dropped++;
			return 0;
		}
		n = calloc(1, sizeof(*n));
		if (!n || ap_htab_insert(&pr->names, &n->node, ap_hash_mix64(func))) {
			free(n);
			m->st.nomem++;
			return -ENOMEM;
		}
		n->func = func;
		pr->nnames++;
	}
	n->mangled = gpu_str(m, mangled);
	n->display = gpu_display_of(m, n->mangled);
	n->src = src;
	k = gpu_kernel_get(m, pr->pid, func, 0, false);
	if (k) {
		k->mangled = n->mangled;
		k->display = n->display;
	}
	return 0;
}

/* ---- kernel rows ---- */

struct gpu_kernel *gpu_kernel_get(struct ap_gpu_model *m, uint32_t pid, uint64_t func,
				  uint32_t keyname, bool create)
{
	uint64_t h = key_hash(pid, func, keyname);
	struct gpu_kernel *k;
	struct gpu_proc *pr;
	struct gpu_name *nm;
	char buf[64];

	for (struct ap_hnode *n = ap_htab_first(&m->kernels, h); n; n = ap_htab_next(n)) {
		k = AP_CONTAINER_OF(n, struct gpu_kernel, node);
		if (k->pid == pid && k->func == func && k->keyname == keyname)
			return k;
	}
	if (!create)
		return NULL;
	if (m->nkernels >= GPU_MAX_KERNELS) {
		m->st.kernels_dropped++;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k || ap_htab_insert(&m->kernels, &k->node, h)) {
		free(k);
		m->st.nomem++;
		return NULL;
	}
	m->nkernels++;
	k->pid = pid;
	k->func = func;
	k->keyname = keyname;
	pr = func ? gpu_proc_get(m, pid, false) : NULL;
	nm = pr ? name_find(pr, func) : NULL;
	if (keyname) {
		k->mangled = keyname;
		k->display = gpu_display_of(m, keyname);
	} else if (nm) {
		k->mangled = nm->mangled;
		k->display = nm->display;
	} else {
		snprintf(buf, sizeof(buf), "kernel@0x%" PRIx64, func);
		k->display = gpu_str(m, buf);
	}
	return k;
}

int gpu_kernel_stack(struct gpu_kernel *k, uint32_t stack, uint64_t launches, uint64_t gpu_ns)
{
	for (size_t i = 0; i < k->nstacks; i++) {
		if (k->stacks[i].stack == stack) {
			k->stacks[i].launches += launches;
			k->stacks[i].gpu_ns += gpu_ns;
			return 0;
		}
	}
	if (k->nstacks >= GPU_MAX_KSTACKS) {
		k->stacks_other += launches ? launches : 1;
		return -ENOSPC;
	}
	if (ap_grow_array((void **)&k->stacks, &k->cap, k->nstacks + 1, sizeof(*k->stacks)))
		return -ENOMEM;
	k->stacks[k->nstacks++] = (struct gpu_kstack){ stack, launches, gpu_ns };
	return 0;
}

void gpu_kernel_shape(struct gpu_kernel *k, const uint32_t grid[3], const uint32_t block[3],
		      uint32_t shmem)
{
	for (size_t i = 0; i < k->nshapes; i++) {
		struct gpu_shape *s = &k->shapes[i];

		if (!memcmp(s->grid, grid, sizeof(s->grid)) &&
		    !memcmp(s->block, block, sizeof(s->block)) && s->shmem == shmem) {
			s->n++;
			return;
		}
	}
	if (k->nshapes >= GPU_MAX_SHAPES) {
		k->shapes_other++;
		return;
	}
	memcpy(k->shapes[k->nshapes].grid, grid, sizeof(k->shapes[0].grid));
	memcpy(k->shapes[k->nshapes].block, block, sizeof(k->shapes[0].block));
	k->shapes[k->nshapes].shmem = shmem;
	k->shapes[k->nshapes++].n = 1;
}

/* ---- profile ---- */

uint32_t gpu_check_stack(struct ap_gpu_model *m, uint32_t stack)
{
	if (stack == 0)
		return m->empty_stack;
	if (stack >= ap_profile_nstacks(m->p)) {
		m->st.bad_stacks++;
		return m->empty_stack;
	}
	return stack;
}

/* The launch's stack: its CPU stack with the kernel as one more leaf frame. */
uint32_t gpu_leaf_stack(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t display)
{
	const uint32_t *frames;
	uint32_t frame, id, *v;
	char *name;
	size_t n;

	if (asprintf(&name, "[gpu] %s", gpu_s(m, display)) < 0)
		return UINT32_MAX;
	frame = ap_profile_add_named_frame(m->p, name, "[gpu]", AP_FRAME_USER);
	free(name);
	if (frame == UINT32_MAX)
		return UINT32_MAX;
	frames = ap_profile_stack(m->p, cpu_stack, &n);
	if (!frames)
		n = 0;
	v = malloc((n + 1) * sizeof(*v));
	if (!v)
		return UINT32_MAX;
	v[0] = frame;
	if (n)
		memcpy(v + 1, frames, n * sizeof(*v));
	id = ap_profile_add_stack(m->p, v, n + 1);
	free(v);
	return id;
}

int gpu_sample(struct ap_gpu_model *m, uint32_t stack, uint32_t pid, uint32_t tid, uint32_t comm,
	       uint64_t launches, uint64_t gpu_ns)
{
	struct ap_sample s = { .stack = stack, .pid = pid, .tid = tid, .comm = comm };

	if (stack == UINT32_MAX) {
		m->st.nomem++;
		return -ENOMEM;
	}
	s.values[m->vi_launch] = launches;
	s.values[m->vi_gpu] = gpu_ns;
	if (ap_profile_add_sample(m->p, &s)) {
		m->st.nomem++;
		return -ENOMEM;
	}
	return 0;
}

int gpu_setup_profile(struct ap_gpu_model *m, struct ap_profile *p)
{
	bool fresh = ap_profile_nvalues(p) == 0;
	int vl = ap_profile_value_index(p, "launches"), vg;

	if (vl < 0) {
		if (ap_profile_add_value_type(p, "launches", "count"))
			return -ENOMEM;
		vl = (int)ap_profile_nvalues(p) - 1;
	}
	vg = ap_profile_value_index(p, "gpu_time");
	if (vg < 0) {
		if (ap_profile_add_value_type(p, "gpu_time", "nanoseconds"))
			return -ENOMEM;
		vg = (int)ap_profile_nvalues(p) - 1;
	}
	if (vl >= AP_MAX_VALUES || vg >= AP_MAX_VALUES || vl < 0 || vg < 0)
		return -EINVAL;
	if (fresh)
		ap_profile_set_default_value(p, (size_t)vl);
	if (!ap_profile_get_meta(p, "mode") && ap_profile_set_meta(p, "mode", "gpu"))
		return -ENOMEM;
	m->empty_stack = ap_profile_add_stack(p, NULL, 0);
	if (m->empty_stack == UINT32_MAX)
		return -ENOMEM;
	m->vi_launch = vl;
	m->vi_gpu = vg;
	m->p = p;
	return 0;
}

/* ---- timeline ---- */

size_t gpu_event_add(struct ap_gpu_model *m, const struct gpu_event *e)
{
	if (m->timeline_off)
		return 0;
	if (m->nevents >= m->max_events) {
		m->st.timeline_dropped++;
		return 0;
	}
	if (ap_grow_array((void **)&m->events, &m->events_cap, m->nevents + 1,
			  sizeof(*m->events))) {
		m->st.nomem++;
		return 0;
	}
	m->events[m->nevents++] = *e;
	return m->nevents;
}

void gpu_note_ts(struct ap_gpu_model *m, uint64_t ts, uint64_t end)
{
	if (!ts)
		return;
	if (!m->first_ts || ts < m->first_ts)
		m->first_ts = ts;
	if (end > m->last_ts)
		m->last_ts = end;
}

/* ---- names of things ---- */

const char *gpu_mem_kind_name(uint32_t kind)
{
	static const char *const names[] = { "device", "managed", "host_pinned", "async" };

	return kind < 4 ? names[kind] : "device";
}

const char *gpu_dir_name(uint32_t dir)
{
	static const char *const names[] = { "unknown", "h2h", "h2d", "d2h",
					     "d2d",	"default", "peer" };

	return dir < GPU_NDIRS ? names[dir] : "unknown";
}

struct gpu_copy *gpu_copy_bucket(struct ap_gpu_model *m, uint32_t dir, const char *api)
{
	if (api && (strstr(api, "emset") || strstr(api, "EMSET")))
		return &m->memset;
	return &m->copies[dir < GPU_NDIRS ? dir : 0];
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
		if (c->name && c->name[0] && !name_find(pr, func))
			gpu_set_name(m, pr, func, c->name, GPU_NAME_LAUNCH);
		nm = name_find(pr, func);
		if (!nm) { /* a cudaKernel_t from __cudaGetKernel: its host stub */
			struct gpu_handle *h = handle_find(pr, func);

			if (h) {
				func = h->func;
				nm = name_find(pr, func);
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
	a = alloc_find(pr, c->ptr);
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
	a = pr ? alloc_find(pr, c->ptr) : NULL;
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
		.ret = c->ret, .stream = (uint32_t)c->stream, .shmem = c->shmem,
		.type = GPU_EV_API, .kind = (uint8_t)c->kind, .dir = (uint8_t)c->copy_dir,
	};

	switch (c->kind) {
	case AP_GPU_CALL_LAUNCH:
		e.a = c->func;
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
		e.b = c->bytes;
		break;
	case AP_GPU_CALL_REGISTER_FUNCTION:
	case AP_GPU_CALL_GET_KERNEL:
		e.a = c->func;
		e.b = c->handle;
		break;
	}
	l->event = gpu_event_add(m, &e);
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
			struct gpu_handle *h = handle_find(pr, c->handle);

			if (!h && pr->nhandles >= GPU_MAX_HANDLES_PER_PROC) {
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
			}
			if (h) {
				h->handle = c->handle;
				h->func = c->func;
			}
		}
		return 0;
	case AP_GPU_CALL_LAUNCH:
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

static bool free_node(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	free(n); /* every node is its entry's first member */
	return true;
}

static void proc_free(struct ap_gpu_model *m, struct gpu_proc *pr, bool leaks)
{
	struct exit_ctx x = { m, pr->pid };

	if (leaks) {
		ap_htab_sweep(&pr->allocs, leak_one, &x);
		m->mem.live_bytes -= pr->live_bytes;
	} else {
		ap_htab_sweep(&pr->allocs, free_node, NULL);
	}
	ap_htab_sweep(&pr->names, free_node, NULL);
	ap_htab_sweep(&pr->handles, free_node, NULL);
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
	pr = gpu_proc_get(m, pid, false);
	if (pr) {
		ap_htab_remove(&m->procs, &pr->node);
		m->nprocs--;
		proc_free(m, pr, true);
	}
	gpu_threads_exit(m, pid);
}

/* ---- life cycle ---- */

struct ap_gpu_model *ap_gpu_model_new(struct ap_profile *p, const struct ap_gpu_model_opts *o)
{
	struct ap_gpu_model *m;
	int err;

	if (!p) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->max_events = o && o->max_timeline_events ? o->max_timeline_events
						     : GPU_DEFAULT_TIMELINE;
	m->max_corr = o && o->max_pending_correlations ? o->max_pending_correlations
						       : GPU_DEFAULT_PENDING;
	m->timeline_off = o && o->no_timeline;
	m->strs = ap_profile_new();
	err = m->strs ? gpu_setup_profile(m, p) : -ENOMEM;
	if (err) {
		ap_gpu_model_free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

static bool free_kernel(struct ap_hnode *n, void *ctx)
{
	struct gpu_kernel *k = AP_CONTAINER_OF(n, struct gpu_kernel, node);

	(void)ctx;
	free(k->stacks);
	free(k);
	return true;
}

/* The interval's tables start over (rotate); live state stays. */
void gpu_tables_reset(struct ap_gpu_model *m)
{
	ap_htab_sweep(&m->kernels, free_kernel, NULL);
	ap_htab_sweep(&m->apis, free_node, NULL);
	ap_htab_sweep(&m->syncs, free_node, NULL);
	m->nkernels = m->napis = m->nsyncs = 0;
	memset(m->copies, 0, sizeof(m->copies));
	memset(&m->memset, 0, sizeof(m->memset));
	{
		uint64_t live = m->mem.live_bytes;

		memset(&m->mem, 0, sizeof(m->mem));
		m->mem.live_bytes = live;
		m->mem.peak_bytes = live;
	}
	m->nleaks = 0;
	m->nevents = 0;
	m->first_ts = m->last_ts = 0;
}

static bool free_proc(struct ap_hnode *n, void *ctx)
{
	proc_free(ctx, AP_CONTAINER_OF(n, struct gpu_proc, node), false);
	return true;
}

void ap_gpu_model_free(struct ap_gpu_model *m)
{
	if (!m)
		return;
	gpu_corr_free_all(m);
	ap_htab_sweep(&m->threads, free_node, NULL);
	ap_htab_sweep(&m->procs, free_proc, m);
	ap_htab_sweep(&m->kernels, free_kernel, NULL);
	ap_htab_sweep(&m->apis, free_node, NULL);
	ap_htab_sweep(&m->syncs, free_node, NULL);
	ap_htab_sweep(&m->demangled, free_node, NULL);
	ap_htab_release(&m->threads);
	ap_htab_release(&m->procs);
	ap_htab_release(&m->kernels);
	ap_htab_release(&m->apis);
	ap_htab_release(&m->syncs);
	ap_htab_release(&m->demangled);
	ap_htab_release(&m->corrs);
	free(m->leaks);
	free(m->unprobeable);
	free(m->events);
	ap_profile_free(m->strs);
	free(m);
}

int ap_gpu_model_finish(struct ap_gpu_model *m)
{
	char name[96];

	if (!m)
		return -EINVAL;
#define GPU_STAT_SET(n)                                                                         \
	snprintf(name, sizeof(name), "gpu_%s", #n);                                             \
	if (ap_profile_set_stat(m->p, name, m->st.n))                                           \
		return -ENOMEM;
	GPU_STATS(GPU_STAT_SET)
#undef GPU_STAT_SET
	/* GPU time weights the flamegraph once the injection library reported any */
	ap_profile_set_default_value(m->p, ap_profile_total(m->p, (size_t)m->vi_gpu)
						   ? (size_t)m->vi_gpu
						   : (size_t)m->vi_launch);
	return 0;
}
