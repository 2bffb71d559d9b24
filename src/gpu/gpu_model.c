// SPDX-License-Identifier: MIT
/*
 * The GPU model's state: its strings and demangled names, processes, kernel rows, the
 * launch samples' stacks, the timeline, and the model's life cycle. The calls are handled
 * in gpu_calls.c, correlations and activity records in gpu_join.c.
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
	size_t len = s ? strnlen(s, GPU_MAX_NAME_LEN + 1) : 0, before;
	uint32_t id;

	if (len > GPU_MAX_NAME_LEN) { /* a name that long is hostile or broken: its start */
		m->st.names_truncated++;
		len = GPU_MAX_NAME_LEN;
		while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	if (ap_profile_nstrings(m->strs) >= GPU_MAX_STRINGS ||
	    m->string_bytes + len > GPU_MAX_STRING_BYTES) {
		m->st.strings_dropped++;
		return ap_profile_intern(m->strs, "[dropped: too many names]");
	}
	before = ap_profile_nstrings(m->strs);
	id = ap_profile_intern_n(m->strs, s ? s : "", len);
	if (id == UINT32_MAX) {
		m->st.nomem++;
		return 0;
	}
	if (ap_profile_nstrings(m->strs) > before)
		m->string_bytes += len + 1;
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

struct gpu_name *gpu_name_find(struct gpu_proc *pr, uint64_t func)
{
	for (struct ap_hnode *n = ap_htab_first(&pr->names, ap_hash_mix64(func)); n;
	     n = ap_htab_next(n)) {
		struct gpu_name *e = AP_CONTAINER_OF(n, struct gpu_name, node);

		if (e->func == func)
			return e;
	}
	return NULL;
}

struct gpu_handle *gpu_handle_find(struct gpu_proc *pr, uint64_t handle)
{
	for (struct ap_hnode *n = ap_htab_first(&pr->handles, ap_hash_mix64(handle)); n;
	     n = ap_htab_next(n)) {
		struct gpu_handle *e = AP_CONTAINER_OF(n, struct gpu_handle, node);

		if (e->handle == handle)
			return e;
	}
	return NULL;
}

struct gpu_alloc *gpu_alloc_find(struct gpu_proc *pr, uint64_t ptr)
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
	n = gpu_name_find(pr, func);
	if (n && n->src > src)
		return 0; /* registration wins over the ELF symbol */
	if (!n) {
		if (pr->nnames >= GPU_MAX_NAMES_PER_PROC || m->nnames >= GPU_MAX_NAMES) {
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
		m->nnames++;
	}
	n->mangled = gpu_str(m, mangled);
	n->display = gpu_display_of(m, n->mangled);
	n->src = src;
	k = gpu_kernel_get(m, pr->pid, func, 0, false);
	if (k)
		gpu_kernel_set_name(m, k, n->mangled, n->display);
	return 0;
}

/* ---- kernel rows ---- */

static uint64_t name_hash(uint32_t pid, uint32_t mangled)
{
	return key_hash(pid, mangled, 3);
}

struct gpu_kernel *gpu_kernel_by_name(struct ap_gpu_model *m, uint32_t pid, uint32_t display)
{
	for (struct ap_hnode *n = ap_htab_first(&m->kernels_by_name, name_hash(pid, display)); n;
	     n = ap_htab_next(n)) {
		struct gpu_kernel *k = AP_CONTAINER_OF(n, struct gpu_kernel, name_node);

		if (k->pid == pid && k->display == display)
			return k;
	}
	return NULL;
}

void gpu_kernel_set_name(struct ap_gpu_model *m, struct gpu_kernel *k, uint32_t mangled,
			 uint32_t display)
{
	if (k->name_indexed) {
		ap_htab_remove(&m->kernels_by_name, &k->name_node);
		k->name_indexed = false;
	}
	k->mangled = mangled;
	k->display = display;
	/* by the demangled name: the static build's host stub symbol (L-marked) and the device
	 * name an activity record carries differ as mangled names, not demangled */
	if (k->func && mangled &&
	    !ap_htab_insert(&m->kernels_by_name, &k->name_node, name_hash(k->pid, display)))
		k->name_indexed = true;
}

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
	nm = pr ? gpu_name_find(pr, func) : NULL;
	if (keyname) {
		k->mangled = keyname;
		k->display = gpu_display_of(m, keyname);
	} else if (nm) {
		gpu_kernel_set_name(m, k, nm->mangled, nm->display);
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

struct leaf_stack {
	struct ap_hnode node;
	uint32_t cpu_stack, display, stack;
};

static uint32_t leaf_stack_make(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t display);

/* The launch's stack: its CPU stack with the kernel as one more leaf frame. Launches repeat
 * the same few (stack, kernel) pairs, so the answer is remembered for this profile. */
uint32_t gpu_leaf_stack(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t display)
{
	uint64_t h = key_hash(cpu_stack, display, 4);
	struct leaf_stack *e;

	for (struct ap_hnode *n = ap_htab_first(&m->leaf_stacks, h); n; n = ap_htab_next(n)) {
		e = AP_CONTAINER_OF(n, struct leaf_stack, node);
		if (e->cpu_stack == cpu_stack && e->display == display)
			return e->stack;
	}
	e = m->nleaf_stacks < GPU_MAX_LEAF_CACHE ? malloc(sizeof(*e)) : NULL;
	if (!e)
		return leaf_stack_make(m, cpu_stack, display);
	*e = (struct leaf_stack){ .cpu_stack = cpu_stack, .display = display };
	e->stack = leaf_stack_make(m, cpu_stack, display);
	if (e->stack == UINT32_MAX || ap_htab_insert(&m->leaf_stacks, &e->node, h)) {
		uint32_t id = e->stack;

		free(e);
		return id;
	}
	m->nleaf_stacks++;
	return e->stack;
}

static uint32_t leaf_stack_make(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t display)
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
	/* stack ids are the profile's: a new profile, new ids */
	ap_htab_sweep(&m->leaf_stacks, gpu_free_node, NULL);
	m->nleaf_stacks = 0;
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

/* ---- life cycle ---- */

bool gpu_free_node(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	free(n); /* every node is its entry's first member */
	return true;
}


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
	ap_htab_release(&m->kernels_by_name); /* its nodes are in the rows */
	ap_htab_sweep(&m->kernels, free_kernel, NULL);
	ap_htab_sweep(&m->apis, gpu_free_node, NULL);
	ap_htab_sweep(&m->syncs, gpu_free_node, NULL);
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
	gpu_proc_free(ctx, AP_CONTAINER_OF(n, struct gpu_proc, node), false);
	return true;
}

void ap_gpu_model_free(struct ap_gpu_model *m)
{
	if (!m)
		return;
	gpu_corr_free_all(m);
	ap_htab_sweep(&m->threads, gpu_free_node, NULL);
	ap_htab_sweep(&m->procs, free_proc, m);
	ap_htab_sweep(&m->kernels, free_kernel, NULL);
	ap_htab_sweep(&m->apis, gpu_free_node, NULL);
	ap_htab_sweep(&m->syncs, gpu_free_node, NULL);
	ap_htab_sweep(&m->demangled, gpu_free_node, NULL);
	ap_htab_release(&m->threads);
	ap_htab_release(&m->procs);
	ap_htab_release(&m->kernels);
	ap_htab_release(&m->kernels_by_name);
	ap_htab_sweep(&m->leaf_stacks, gpu_free_node, NULL);
	ap_htab_release(&m->leaf_stacks);
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
