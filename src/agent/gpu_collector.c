// SPDX-License-Identifier: MIT
/*
 * GPU mode (docs/gpu.md): owns the gpu skeleton, discovery of CUDA code in processes, the
 * uprobes on it, and the GPU model (src/gpu/gpu_model.h) its calls are decoded into.
 *
 * Calls arrive on one ring buffer (gpu.bpf.c), each with its CPU stack taken at the call's
 * return; calls of a process whose unwind tables are not loaded yet arrive as snapshots and
 * are unwound here (unwind_events.h) before they are recorded, in the order they come.
 * Discovery looks at every process at start, at each exec, and every RESCAN_NS (libraries
 * dlopen'ed later), and at the standard CUDA library directories and --gpu-lib files at
 * start, so that a program started later is probed from its first call.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "gpu.skel.h"
#include "map_dump.h"
#include "unwind_events.h"
#include "gpu/activity.h"
#include "gpu/discover.h"
#include "gpu/gpu_model.h"
#include "gpu/kernel_names.h"
#include "gpu/probes.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "unwind/unwinder.h"

_Static_assert(sizeof(struct ap_gpu_event) == 8 * 17 + 4 * 6 + AP_GPU_COMM_LEN,
	       "ap_gpu_event layout changed");
_Static_assert(offsetof(struct ap_gpu_deferred, snap) == sizeof(struct ap_gpu_event) &&
		       sizeof(struct ap_gpu_event) % 8 == 0,
	       "ap_gpu_deferred layout changed");

#define EVENT_RING_BYTES (4u << 20)
#define DEFER_RING_BYTES (2u << 20)
#define DEFER_QUEUE 256u
/* Every process's mappings are read again this often: a safety net behind the exec and
 * dynamic-loader events (a whole-system read costs ~40 ms of CPU here). */
#define RESCAN_NS (10ull * 1000 * 1000 * 1000)
#define MAX_PENDING 1024 /* processes to look at again after this read of the ring */
#define MAX_LOADER_LINKS 64
#define MAX_KERNEL_NAME 4096
/* (pid, function) pairs whose name is known or was looked for: beyond, lookups repeat */
#define MAX_KNOWN 262144

/* Where CUDA installs its libraries: probed at start, before any process maps them. */
static const char *const std_lib_dirs[] = {
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib64",
};

struct gpu_stats {
	uint64_t events, bad_events, decode_errors, model_errors;
	uint64_t names_read, names_from_symbol, names_missing, known_full;
	uint64_t attach_failed, unprobeable;
	uint64_t rescans, rescan_ns; /* whole-system rescans and their time */
	uint64_t dl_events, pending_full, loader_attach_failed;
};

struct gpu_collector {
	struct gpu_bpf *skel;
	struct bpf_link *proc_links[2];
	struct ring_buffer *events;
	struct ap_unwinder *unwinder;
	struct ap_unwind_events *uev;
	struct ap_gpu_model *model;
	struct ap_gpu_probes *probes;
	struct ap_gpu_discovery *disc;
	struct ap_gpu_activity_src *act; /* the injection library's records; NULL: none */
	int epfd; /* the run loop's one fd: our ring buffers and the activity source's */
	struct ap_collector *c;
	const struct ap_agent_opts *opts;
	bool stopped;
	uint64_t last_scan_ns;
	/* (pid, host stub or handle) already named: open addressing, key 0 = empty */
	uint64_t *known_pid_func; /* pairs: [2i] = pid + 1, [2i+1] = func */
	size_t known_cap, known_n;
	struct gpu_stats st;
	struct bpf_link *loader_links[MAX_LOADER_LINKS]; /* on ld.so's _dl_debug_state */
	size_t nloader_links;
	int pending[MAX_PENDING]; /* processes whose libraries changed: scanned after reading */
	size_t npending;
	/* processes gone, waiting for their deferred calls to be replayed (two drains) */
	struct gone { uint32_t pid, drains; } *gone;
	size_t ngone, gonecap;
	uint32_t frames[AP_GPU_STACK_DEPTH];
	char name[MAX_KERNEL_NAME];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether (pid, func) was known; remembers it. */
static bool known_add(struct gpu_collector *g, uint32_t pid, uint64_t func)
{
	size_t mask, i;

	if (g->known_n * 2 >= g->known_cap) {
		size_t ncap = g->known_cap ? g->known_cap * 2 : 1024;
		uint64_t *n;

		if (ncap > MAX_KNOWN) {
			g->st.known_full++;
			return false;
		}
		n = calloc(ncap * 2, sizeof(*n));
		if (!n)
			return false;
		for (size_t j = 0; j < g->known_cap; j++) {
			uint64_t p = g->known_pid_func[2 * j], f = g->known_pid_func[2 * j + 1];

			if (!p)
				continue;
			i = ap_hash_mix64(p * 0x9e3779b97f4a7c15ull ^ f) & (ncap - 1);
			while (n[2 * i])
				i = (i + 1) & (ncap - 1);
			n[2 * i] = p;
			n[2 * i + 1] = f;
		}
		free(g->known_pid_func);
		g->known_pid_func = n;
		g->known_cap = ncap;
	}
	mask = g->known_cap - 1;
	i = ap_hash_mix64(((uint64_t)pid + 1) * 0x9e3779b97f4a7c15ull ^ func) & mask;
	while (g->known_pid_func[2 * i]) {
		if (g->known_pid_func[2 * i] == (uint64_t)pid + 1 &&
		    g->known_pid_func[2 * i + 1] == func)
			return true;
		i = (i + 1) & mask;
	}
	g->known_pid_func[2 * i] = (uint64_t)pid + 1;
	g->known_pid_func[2 * i + 1] = func;
	g->known_n++;
	return false;
}

/* The process exited: its pairs go (rebuilt without them; exits are rare next to calls). */
static void known_forget_pid(struct gpu_collector *g, uint32_t pid)
{
	uint64_t *old = g->known_pid_func;
	size_t cap = g->known_cap;

	if (!old)
		return;
	g->known_pid_func = NULL;
	g->known_cap = g->known_n = 0;
	for (size_t j = 0; j < cap; j++)
		if (old[2 * j] && old[2 * j] != (uint64_t)pid + 1)
			known_add(g, (uint32_t)(old[2 * j] - 1), old[2 * j + 1]);
	free(old);
}

/* The CPU stack (return addresses, leaf first) into the profile: 0 when there is none. */
static uint32_t add_stack(struct ap_collector *c, struct gpu_collector *g, uint32_t pid,
			  const uint64_t *ips, size_t n)
{
	size_t k = 0;
	uint32_t id;

	if (!n)
		return 0;
	if (n > AP_GPU_STACK_DEPTH)
		n = AP_GPU_STACK_DEPTH;
	for (size_t i = 0; i < n; i++) {
		uint32_t f;

		if (!ips[i])
			break;
		/* taken at the call's return: every frame, the leaf too, is a return address */
		f = ap_symbolizer_user_frame(c->sym, c->profile, (int)pid, ips[i], true);
		if (f == UINT32_MAX)
			return 0;
		g->frames[k++] = f;
	}
	id = ap_profile_add_stack(c->profile, g->frames, k);
	return id == UINT32_MAX ? 0 : id;
}

/* The kernel name of a host stub: its ELF symbol, from the file discovery keeps, else
 * through the live process's mappings. */
static char *stub_symbol(struct gpu_collector *g, uint32_t pid, uint64_t func)
{
	char *sym = ap_gpu_discovery_symbol_at(g->disc, (int)pid, func);

	return sym ? sym : ap_gpu_stub_symbol((int)pid, func);
}

/* The device name of a registration: from the process (the string is there by now), else
 * from the host stub's ELF symbol. */
static const char *registration_name(struct gpu_collector *g, const struct ap_gpu_call *c,
				     uint64_t addr, const char *bpf_name)
{
	char *sym;

	/* read by BPF at the call, when its page was resident */
	if (bpf_name && bpf_name[0]) {
		snprintf(g->name, sizeof(g->name), "%s", bpf_name);
		g->st.names_read++;
		return g->name;
	}
	/* the process's memory (faults the page in); else the file it came from, which
	 * discovery keeps open: a short program may be gone already */
	if (ap_gpu_read_proc_string((int)c->pid, addr, g->name, sizeof(g->name)) == 0 ||
	    ap_gpu_discovery_read_string(g->disc, (int)c->pid, addr, g->name,
					 sizeof(g->name)) == 0) {
		g->st.names_read++;
		return g->name;
	}
	/* a runtime registration's host stub is code; a driver CUfunction is not */
	sym = (c->flags & AP_GPU_F_DRIVER_API) ? NULL : stub_symbol(g, c->pid, c->func);
	if (sym) {
		snprintf(g->name, sizeof(g->name), "%s", sym);
		free(sym);
		g->st.names_from_symbol++;
		return g->name;
	}
	g->st.names_missing++;
	return NULL;
}

/* A launch of a function never registered nor mapped by __cudaGetKernel while we watched:
 * the process registered before the agent came; its host stub's symbol names it. */
static void name_unregistered(struct gpu_collector *g, uint32_t pid, uint64_t func)
{
	char *sym;

	if (!func || known_add(g, pid, func))
		return;
	sym = stub_symbol(g, pid, func);
	if (!sym) {
		g->st.names_missing++;
		return;
	}
	g->st.names_from_symbol++;
	if (ap_gpu_model_name_kernel(g->model, pid, func, sym))
		g->st.model_errors++;
	free(sym);
}

struct add_map_ctx {
	struct ap_symbolizer *sym;
	int pid;
};

static void add_map(void *ctx, uint64_t start, uint64_t end, uint64_t offset, uint64_t dev,
		    uint64_t ino)
{
	struct add_map_ctx *am = ctx;

	ap_symbolizer_add_mapping(am->sym, am->pid, start, end, offset, dev, ino);
}

static void count_map(void *ctx, uint64_t start, uint64_t end, uint64_t offset, uint64_t dev,
		      uint64_t ino)
{
	(void)start, (void)end, (void)offset, (void)dev, (void)ino;
	++*(size_t *)ctx;
}

/*
 * Discovery looked at pid (at its exec, after ld.so mapped its libraries, or a rescan): when
 * it maps CUDA code, the symbolizer takes its mappings now. A short CUDA program can be gone
 * a millisecond after its first call (every call fails fast without a GPU), before its
 * announcement is read; its main() and callers are mapped by now, its later calls refresh
 * this, and a failed refresh keeps it.
 */
static void scanned(struct ap_collector *c, struct gpu_collector *g, int pid, int rc)
{
	size_t n = 0;

	if (rc)
		return;
	ap_gpu_discovery_pid_maps(g->disc, pid, count_map, &n);
	if (n)
		ap_symbolizer_snapshot_pid(c->sym, pid);
}

static void record_call(struct ap_collector *c, const struct ap_gpu_event *e,
			const uint64_t *ips, size_t n, const char *bpf_name)
{
	struct gpu_collector *g = c->priv;
	char comm[AP_GPU_COMM_LEN + 1];
	struct ap_gpu_call call;
	uint64_t name_addr;

	if (ap_gpu_decode(e, &call, &name_addr)) {
		g->st.decode_errors++;
		return;
	}
	g->st.events++;
	/* A process's first call (its registration, in a constructor): take its mappings for
	 * the symbolizer now. Its launches may reach us as stack snapshots to unwind after it
	 * exited (a short program), when /proc has nothing left to read. */
	if (!known_add(g, call.pid, UINT64_MAX) &&
	    ap_symbolizer_snapshot_pid(c->sym, (int)call.pid) < 0) {
		/* gone already: what discovery saw of it (its CUDA files) */
		struct add_map_ctx am = { c->sym, (int)call.pid };

		ap_gpu_discovery_pid_maps(g->disc, (int)call.pid, add_map, &am);
	}
	memcpy(comm, e->comm, AP_GPU_COMM_LEN);
	comm[AP_GPU_COMM_LEN] = '\0';
	call.comm = comm;
	switch (call.kind) {
	case AP_GPU_CALL_REGISTER_FUNCTION:
		call.name = registration_name(g, &call, name_addr, bpf_name);
		known_add(g, call.pid, call.func);
		break;
	case AP_GPU_CALL_GET_KERNEL:
		/* the model maps the handle to its host stub: the stub needs a name, from its
		 * registration or (the process registered before we came) its symbol */
		name_unregistered(g, call.pid, call.func);
		if (call.handle) /* here the handle is the host stub itself */
			known_add(g, call.pid, call.handle);
		break;
	case AP_GPU_CALL_LAUNCH:
		/* a driver launch's CUfunction is no code address: cuModuleGetFunction names it */
		if (!(call.flags & AP_GPU_F_DRIVER_API))
			name_unregistered(g, call.pid, call.func);
		break;
	default:
		break;
	}
	call.stack = add_stack(c, g, call.pid, ips, n);

	if (ap_gpu_model_add_call(g->model, &call))
		g->st.model_errors++;
}

static void process_gone_now(struct gpu_collector *g, uint32_t pid)
{
	ap_gpu_model_process_exit(g->model, pid);
	ap_gpu_discovery_forget_pid(g->disc, (int)pid);
	known_forget_pid(g, pid);
}

/*
 * A process's exit is acted on only after its last calls are recorded: those deferred for
 * want of unwind tables are replayed up to two drains later (unwind_events.h), and a call
 * recorded after its process's exit would find its kernel names and allocations gone.
 */
static void process_gone(struct gpu_collector *g, uint32_t pid)
{
	if (g->ngone == g->gonecap) {
		size_t cap = g->gonecap ? g->gonecap * 2 : 64;
		struct gone *n = realloc(g->gone, cap * sizeof(*n));

		if (!n) { /* no memory: now, at the risk of a late call unnamed */
			process_gone_now(g, pid);
			return;
		}
		g->gone = n;
		g->gonecap = cap;
	}
	g->gone[g->ngone++] = (struct gone){ pid, 0 };
}

static void flush_gone(struct gpu_collector *g, bool all)
{
	size_t k = 0;

	for (size_t i = 0; i < g->ngone; i++) {
		if (all || ++g->gone[i].drains > 2)
			process_gone_now(g, g->gone[i].pid);
		else
			g->gone[k++] = g->gone[i];
	}
	g->ngone = k;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;
	const struct ap_gpu_event *e = data;
	size_t n;
	int err;

	if (size < sizeof(*e)) {
		g->st.bad_events++;
		return 0;
	}
	switch (e->kind) {
	case AP_GPU_EV_CALL:
		if (e->flags & AP_GPU_EVF_NAME) {
			char name[AP_GPU_NAME_LEN];

			if (size < sizeof(*e) + AP_GPU_NAME_LEN) {
				g->st.bad_events++;
				break;
			}
			memcpy(name, e + 1, sizeof(name));
			name[sizeof(name) - 1] = '\0';
			record_call(c, e, NULL, 0, name);
			break;
		}
		n = (size - sizeof(*e)) / sizeof(uint64_t);
		if (n > e->nframes)
			n = e->nframes;
		record_call(c, e, (const uint64_t *)(e + 1), n, NULL);
		break;
	case AP_GPU_EV_EXEC:
		/* a new image: the old one's allocations leak now; look at the new one at once */
		if (e->flags & AP_GPU_EVF_WAS_GPU)
			process_gone(g, e->pid);
		else
			ap_gpu_discovery_forget_pid(g->disc, (int)e->pid);
		err = ap_gpu_discovery_scan_pid(g->disc, (int)e->pid);
		ap_debug("gpu: exec of %d (%.16s): scanned (%s)", e->pid, e->comm,
			 err ? strerror(-err) : "ok");
		scanned(c, g, (int)e->pid, err);
		break;
	case AP_GPU_EV_EXIT:
		process_gone(g, e->pid);
		break;
	case AP_GPU_EV_DLOPEN:
		/* ld.so calls its hook before and after each change: scan once, after the read */
		g->st.dl_events++;
		for (n = 0; n < g->npending && g->pending[n] != (int)e->pid; n++)
			;
		if (n == g->npending) {
			if (g->npending < MAX_PENDING)
				g->pending[g->npending++] = (int)e->pid;
			else
				g->st.pending_full++; /* found at the next rescan */
		}
		break;
	default:
		g->st.bad_events++;
	}
	return 0;
}

/* A call unwound here from its snapshot: recorded like one unwound in the kernel. */
static void record_replayed(void *ctx, const void *payload, const uint64_t *ips, size_t n,
			    uint32_t status)
{
	const struct ap_gpu_deferred *d = payload;

	(void)status;
	record_call(ctx, &d->ev, ips, n, NULL);
}

/* --- discovery callbacks ------------------------------------------------------------- */

static int on_probe(void *ctx, const struct ap_gpu_found *f)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;
	uint64_t t0 = mono_ns();
	char err[256];
	int rc;

	rc = ap_gpu_probes_attach(g->probes, f->open_path, g->opts->npids ? f->pid : -1, f->scan,
				  err, sizeof(err));
	if (rc) {
		g->st.attach_failed++;
		ap_warn("gpu: %s: %s", f->path, err);
		return rc;
	}
	ap_debug("gpu: probing %s (%zu functions%s, attached in %.1f ms)", f->path,
		 f->scan->nsites, f->scan->driver ? ", driver" : "", (mono_ns() - t0) / 1e6);
	return 0;
}

/* Every newly seen file: Aperture's CUPTI injection library gets its USDT probes. */
static void on_file(void *ctx, const struct ap_gpu_found *f)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;
	char err[256];

	if (!g->act || !ap_gpu_activity_is_inject_lib(f->fd))
		return;
	if (ap_gpu_activity_attach(g->act, f->pid > 0 ? f->pid : -1, f->map_path, err,
				   sizeof(err)))
		ap_warn("gpu: %s: GPU activity records unavailable: %s", f->path, err);
	else
		ap_debug("gpu: activity records from %s", f->path);
}

/* A process with CUDA code, seen at its exec or start: its unwind tables now, while it
 * initialises CUDA, so that its calls are unwound in the kernel (its symbols are taken at
 * its first call, when its libraries are mapped). */
static void on_cuda_process(void *ctx, int pid)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;

	ap_unwinder_load_pid(g->unwinder, pid);
}

/* The dynamic loader: its debugger hook tells when a process's libraries change. */
static void on_loader(void *ctx, const struct ap_gpu_found *f)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;
	struct bpf_link *l;

	if (g->nloader_links == MAX_LOADER_LINKS) {
		g->st.loader_attach_failed++;
		return;
	}
	l = bpf_program__attach_uprobe(g->skel->progs.gpu_dl_state, false,
				       g->opts->npids ? f->pid : -1, f->open_path,
				       (size_t)f->scan->loader_off);
	if (!l) {
		g->st.loader_attach_failed++;
		ap_debug("gpu: cannot hook the dynamic loader %s: %s", f->path, strerror(errno));
		return;
	}
	g->loader_links[g->nloader_links++] = l;
}

static void on_unprobeable(void *ctx, int pid, const char *path, const char *reason)
{
	struct ap_collector *c = ctx;
	struct gpu_collector *g = c->priv;

	g->st.unprobeable++;
	ap_warn("gpu: pid %d: %s cannot be probed: %s", pid, path, reason);
	if (ap_gpu_model_add_unprobeable(g->model, (uint32_t)pid, path, reason))
		g->st.model_errors++;
}

static void scan_std_dirs(struct gpu_collector *g)
{
	char path[512];

	for (size_t i = 0; i < sizeof(std_lib_dirs) / sizeof(std_lib_dirs[0]); i++) {
		DIR *d = opendir(std_lib_dirs[i]);
		struct dirent *de;

		if (!d)
			continue;
		while ((de = readdir(d)) != NULL) {
			/* the runtime (libcudart.so.13 ...) and the real driver, never a stub */
			if (strncmp(de->d_name, "libcudart.so.", 13) != 0 &&
			    strcmp(de->d_name, "libcuda.so.1") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", std_lib_dirs[i], de->d_name);
			ap_gpu_discovery_add_path(g->disc, path);
		}
		closedir(d);
	}
}

static void rescan(struct gpu_collector *g)
{
	const struct ap_agent_opts *o = g->opts;

	g->last_scan_ns = mono_ns();
	if (!o->npids) {
		ap_gpu_discovery_scan_all(g->disc, getpid());
		g->st.rescan_ns += mono_ns() - g->last_scan_ns;
		g->st.rescans++;
		return;
	}
	for (size_t i = 0; i < o->npids; i++)
		ap_gpu_discovery_scan_pid(g->disc, o->pids[i]);
}

/* --- life ---------------------------------------------------------------------------- */

static int setup_unwind_events(struct ap_collector *c, struct gpu_collector *g)
{
	struct gpu_bpf *s = g->skel;

	if (g->unwinder && !g->uev) { /* made once, kept when the programs are reloaded */
		g->uev = ap_unwind_events_new(g->unwinder, c->sym,
					      offsetof(struct ap_gpu_deferred, snap), DEFER_QUEUE,
					      record_replayed, c);
		if (!g->uev)
			return -errno;
	}
	s->rodata->cfg_defer_unwind = ap_unwind_events_deferring(g->uev);
	bpf_map__set_max_entries(s->maps.unwind_deferred, s->rodata->cfg_defer_unwind ?
								  DEFER_RING_BYTES :
								  (__u32)getpagesize());
	if (!g->uev)
		bpf_map__set_max_entries(s->maps.proc_events, (__u32)getpagesize());
	return 0;
}

static int fill_pid_filter(struct gpu_collector *g, char *msg, size_t len)
{
	__u8 yes = 1;

	for (size_t i = 0; i < g->opts->npids; i++) {
		__u32 pid = (__u32)g->opts->pids[i];

		if (bpf_map_update_elem(bpf_map__fd(g->skel->maps.target_pids), &pid, &yes, 0)) {
			snprintf(msg, len, "cannot add pid %u to the filter: %s", pid,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Back to before load(), to try again. */
static void unload(struct gpu_collector *g)
{
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(g->proc_links[i]);
		g->proc_links[i] = NULL;
	}
	ap_unwind_events_detach(g->uev);
	ring_buffer__free(g->events);
	g->events = NULL;
	gpu_bpf__destroy(g->skel);
	g->skel = NULL;
}

/* Open, size, load, read. multi: with the uprobe_multi programs (Linux 6.6+). */
static int load(struct ap_collector *c, struct gpu_collector *g, bool multi, char *msg,
		size_t len)
{
	const struct ap_agent_opts *o = g->opts;
	struct gpu_bpf *s;
	int err;

	g->skel = s = gpu_bpf__open();
	if (!s) {
		err = -errno;
		ap_explain_bpf_load_error(err, "gpu", "they need uprobes and BPF with BTF", msg,
					  len);
		return err;
	}
	s->rodata->cfg_self_pid = (__u32)getpid();
	s->rodata->cfg_filter_pids = o->npids > 0;
	bpf_map__set_max_entries(s->maps.gpu_events, EVENT_RING_BYTES);
	if (g->unwinder && (err = ap_unwinder_bind(g->unwinder, s->obj))) {
		ap_warn("gpu: unwind tables unavailable (%s): user stacks use frame pointers only",
			strerror(-err));
		g->unwinder = NULL;
	}
	if (!g->unwinder)
		s->rodata->cfg_unwind_tables = false;
	err = setup_unwind_events(c, g);
	if (err)
		return err;
	if (multi)
		err = ap_gpu_probes_prepare_multi(s->progs.gpu_enter_multi,
						  s->progs.gpu_exit_multi);
	if (!multi || err) {
		bpf_program__set_autoload(s->progs.gpu_enter_multi, false);
		bpf_program__set_autoload(s->progs.gpu_exit_multi, false);
	}
	err = gpu_bpf__load(s);
	if (err) {
		ap_explain_bpf_load_error(err, "gpu", "they need uprobes and BPF with BTF", msg,
					  len);
		return err;
	}
	err = fill_pid_filter(g, msg, len);
	if (err)
		return err;
	for (size_t i = 0; i < o->npids; i++)
		ap_unwinder_load_pid(g->unwinder, o->pids[i]);
	/* Calls first, unlike the other modes: a registration must be read while its process
	 * lives (its kernel name is read from /proc/PID/mem), and a short CUDA program exits
	 * within milliseconds of its last call; loading unwind tables for new processes (the
	 * process events) can take longer than that on a loaded host. */
	err = ap_ring_add(&g->events, bpf_map__fd(s->maps.gpu_events), handle_event, c);
	if (err) {
		snprintf(msg, len, "cannot open the gpu event ring buffer: %s", strerror(-err));
		return err;
	}
	if (g->uev) {
		err = ap_unwind_events_add_rings(g->uev, &g->events,
						 bpf_map__fd(s->maps.proc_events),
						 bpf_map__fd(s->maps.unwind_deferred));
		if (err) {
			snprintf(msg, len, "cannot open the process-event ring buffers: %s",
				 strerror(-err));
			return err;
		}
	}
	g->proc_links[0] = bpf_program__attach(s->progs.gpu_exit_proc);
	g->proc_links[1] = bpf_program__attach(s->progs.gpu_exec);
	if (!g->proc_links[0] || !g->proc_links[1])
		ap_warn("gpu: process exec/exit tracking unavailable (%s): leaks are reported at "
			"the end only, new programs found at the next rescan", strerror(errno));
	return 0;
}

/* One fd for the run loop: the probes' ring buffers and the activity source's, in one epoll
 * set. */
static int make_epoll(struct gpu_collector *g)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[2] = { ring_buffer__epoll_fd(g->events),
		       g->act ? ap_gpu_activity_poll_fd(g->act) : -1 };

	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g->epfd < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		ev.data.fd = fds[i];
		if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fds[i], &ev))
			return -errno;
	}
	return 0;
}

/* The CUPTI injection library's loader (src/gpu/activity.c): without it the mode still has
 * launches, stacks, memory and API time, only no GPU-side time. */
static void open_activity(struct gpu_collector *g)
{
	char err[256] = "";

	g->act = ap_gpu_activity_open(err, sizeof(err));
	if (!g->act)
		ap_warn("gpu: GPU activity records (CUPTI injection library) unavailable: %s",
			err[0] ? err : strerror(errno));
}

static int gpu_start(struct ap_collector *c, const struct ap_agent_opts *opts, char *msg,
		     size_t len)
{
	struct gpu_collector *g = calloc(1, sizeof(*g));
	static const struct ap_gpu_discovery_ops dops = {
		.probe = on_probe,
		.unprobeable = on_unprobeable,
		.loader = on_loader,
		.file = on_file,
		.cuda_process = on_cuda_process,
	};
	struct ap_gpu_model_opts mo = { 0 };
	int err;

	if (!g)
		return -ENOMEM;
	c->priv = g;
	g->c = c;
	g->epfd = -1;
	g->opts = opts;
	/* stack id 0 is "no stack" in the model: the empty stack takes it */
	if (ap_profile_add_stack(c->profile, NULL, 0) != 0) {
		snprintf(msg, len, "the profile is not empty");
		return -EINVAL;
	}
	ap_profile_set_meta(c->profile, "mode", "gpu");
	/* the timeline is kept only for the Chrome trace */
	mo.no_timeline = opts->format != AP_FORMAT_TRACE;
	g->model = ap_gpu_model_new(c->profile, &mo);
	if (!g->model)
		return -errno;
	g->unwinder = ap_collector_unwinder(c);
	if (!g->unwinder)
		ap_warn("gpu: unwind tables unavailable (%s): user stacks use frame pointers only",
			strerror(errno));
	/* APERTURE_GPU_NO_MULTI=1: one probe per function, as on kernels before 6.6 (tests) */
	err = load(c, g, !getenv("APERTURE_GPU_NO_MULTI"), msg, len);
	if (err && err != -EPERM && err != -EACCES) {
		/* a kernel without uprobe_multi (before 6.6) refuses those two programs */
		ap_debug("gpu: %s; loading without uprobe_multi", msg);
		unload(g);
		err = load(c, g, false, msg, len);
	}
	if (err)
		return err;
	g->probes = ap_gpu_probes_new(g->skel->progs.gpu_enter, g->skel->progs.gpu_exit,
				      opts->gpu_probes ? opts->gpu_probes : AP_GPU_GROUP_ALL);
	if (g->probes && bpf_program__fd(g->skel->progs.gpu_enter_multi) >= 0)
		ap_gpu_probes_use_multi(g->probes, g->skel->progs.gpu_enter_multi,
					g->skel->progs.gpu_exit_multi);
	g->disc = ap_gpu_discovery_new(&dops, c, opts->npids > 0);
	if (!g->probes || !g->disc)
		return -ENOMEM;
	open_activity(g);
	if (!opts->npids)
		scan_std_dirs(g);
	for (size_t i = 0; i < opts->ngpu_libs; i++) {
		err = ap_gpu_discovery_add_path(g->disc, opts->gpu_libs[i]);
		if (err) {
			snprintf(msg, len, "--gpu-lib %s: %s", opts->gpu_libs[i], strerror(-err));
			return err;
		}
	}
	err = make_epoll(g);
	if (err) {
		snprintf(msg, len, "cannot poll the GPU ring buffers: %s", strerror(-err));
		return err;
	}
	rescan(g);
	ap_profile_set_meta(c->profile, "gpu_probes", opts->gpu_probes_arg ?
			    opts->gpu_probes_arg : "launch,memory,copy,sync");
	return 0;
}

static int gpu_poll_fd(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;

	return g ? g->epfd : -1;
}

static int gpu_consume(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;
	int err;

	if (!g || !g->events)
		return 0;
	err = ap_unwind_events_consume(g->uev, g->events);
	/* after the probes' ring: a kernel's record joins a launch already recorded */
	if (g->act && ap_gpu_activity_consume(g->act, g->model))
		g->st.model_errors++;
	for (size_t i = 0; i < g->npending; i++) {
		int rc = ap_gpu_discovery_scan_pid(g->disc, g->pending[i]);
		ap_debug("gpu: libraries of %d changed: scanned (%d)", g->pending[i], rc);
		scanned(c, g, g->pending[i], rc);
	}
	g->npending = 0;
	return err;
}

static void drop_loader_links(struct gpu_collector *g)
{
	while (g->nloader_links)
		bpf_link__destroy(g->loader_links[--g->nloader_links]);
}

static void gpu_stop(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;

	if (!g)
		return;
	ap_gpu_probes_detach(g->probes);
	drop_loader_links(g);
	g->stopped = true;
}

static int gpu_drain(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;

	if (!g || !g->events)
		return 0;
	gpu_consume(c);
	ap_unwind_events_flush(g->uev, g->stopped);
	flush_gone(g, g->stopped);
	if (!g->stopped && mono_ns() - g->last_scan_ns >= RESCAN_NS)
		rescan(g);
	return 0;
}

static const char *const bpf_stat_names[AP_GPU_STAT_MAX] = {
	[AP_GPU_STAT_CALLS] = "gpu_calls_sent",
	[AP_GPU_STAT_EVENTS_LOST] = "gpu_events_lost",
	[AP_GPU_STAT_INFLIGHT_FULL] = "gpu_inflight_full",
	[AP_GPU_STAT_NEST_OVERFLOW] = "gpu_nest_overflow",
	[AP_GPU_STAT_NESTED] = "gpu_calls_nested",
	[AP_GPU_STAT_UNMATCHED_RETURN] = "gpu_returns_unmatched",
	[AP_GPU_STAT_UNBALANCED] = "gpu_calls_unbalanced",
	[AP_GPU_STAT_DEREF_FAILED] = "gpu_out_pointer_unreadable",
	[AP_GPU_STAT_SARGS_FAILED] = "gpu_stack_args_unreadable",
	[AP_GPU_STAT_STACK_ERR] = "gpu_stack_errors",
	[AP_GPU_STAT_FILTERED] = "gpu_calls_filtered",
	[AP_GPU_STAT_PROC_EVENTS_LOST] = "gpu_proc_events_lost",
};

static void gpu_report_stats(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;
	struct ap_gpu_discovery_stats ds = { 0 };
	struct ap_gpu_probes_stats ps = { 0 };
	struct ap_profile *p = c->profile;
	uint64_t uv[AP_UNWIND_STAT_MAX];

	if (!g || !g->skel)
		return;
	ap_percpu_stats_report(bpf_map__fd(g->skel->maps.gpu_stats), bpf_stat_names,
			       AP_GPU_STAT_MAX, p);
	ap_unwind_events_report(g->uev, bpf_map__fd(g->skel->maps.proc_stats), p);
	ap_unwind_report_stats(g->unwinder, bpf_map__fd(g->skel->maps.unwind_stats), p, uv);
	if (g->disc)
		ap_gpu_discovery_get_stats(g->disc, &ds);
	if (g->probes)
		ap_gpu_probes_get_stats(g->probes, &ps);
	ap_profile_set_stat(p, "gpu_calls_recorded", g->st.events);
	ap_profile_set_stat(p, "gpu_bad_events", g->st.bad_events + g->st.decode_errors);
	ap_profile_set_stat(p, "gpu_model_errors", g->st.model_errors);
	ap_profile_set_stat(p, "gpu_names_read", g->st.names_read);
	ap_profile_set_stat(p, "gpu_names_from_symbols", g->st.names_from_symbol);
	ap_profile_set_stat(p, "gpu_names_missing", g->st.names_missing);
	ap_profile_set_stat(p, "gpu_name_table_full", g->st.known_full);
	ap_profile_set_stat(p, "gpu_files_probed", ps.files);
	ap_profile_set_stat(p, "gpu_functions_probed", ps.functions);
	ap_profile_set_stat(p, "gpu_uprobe_multi_links", ps.multi_links);
	ap_profile_set_stat(p, "gpu_attach_failed", ps.attach_failed + g->st.attach_failed);
	ap_profile_set_stat(p, "gpu_unprobeable", g->st.unprobeable);
	ap_profile_set_stat(p, "gpu_process_scans", ds.scans);
	ap_profile_set_stat(p, "gpu_rescans", g->st.rescans);
	ap_profile_set_stat(p, "gpu_loader_events", g->st.dl_events);
	ap_profile_set_stat(p, "gpu_loader_pending_full", g->st.pending_full);
	ap_profile_set_stat(p, "gpu_loader_hook_failed", g->st.loader_attach_failed);
	ap_profile_set_stat(p, "gpu_rescan_ns", g->st.rescan_ns);
	ap_profile_set_stat(p, "gpu_files_scanned", ds.files_scanned);
	ap_profile_set_stat(p, "gpu_files_unreadable", ds.open_failed);
	ap_profile_set_stat(p, "gpu_files_table_full", ds.files_limit + ds.maps_limit);
	if (g->act) {
		struct ap_gpu_activity_stats as;

		ap_gpu_activity_get_stats(g->act, &as);
		ap_profile_set_stat(p, "gpu_activity_records", as.records);
		ap_profile_set_stat(p, "gpu_activity_correlations", as.correlations);
		ap_profile_set_stat(p, "gpu_activity_ringbuf_drops", as.ringbuf_drops);
		ap_profile_set_stat(p, "gpu_activity_lib_dropped", as.lib_dropped);
		ap_profile_set_stat(p, "gpu_activity_attach_failed", as.attach_failed);
	}
	ap_profile_set_stat(p, "gpu_activity_available", g->act != NULL);
	if (ap_gpu_model_finish(g->model))
		g->st.model_errors++;
}

static int gpu_write(struct ap_collector *c, enum ap_format fmt, FILE *out,
		     const struct ap_write_opts *opts)
{
	struct gpu_collector *g = c->priv;

	switch (fmt) {
	case AP_FORMAT_JSON:
		return ap_gpu_model_write_json(g->model, out);
	case AP_FORMAT_TEXT:
		return ap_gpu_model_write_text(g->model, out, opts ? opts->top_n : 0);
	case AP_FORMAT_TRACE:
		return ap_gpu_model_write_trace(g->model, out);
	default:
		return -ENOTSUP; /* folded, svg, pprof: the generic writers over the profile */
	}
}

static int gpu_rotate(struct ap_collector *c, struct ap_profile **profile, char **tables,
		      size_t *tables_len)
{
	struct gpu_collector *g = c->priv;
	struct ap_profile *np = ap_interval_fresh_profile(c->profile);
	int err;

	if (!np)
		return -ENOMEM;
	ap_profile_add_stack(np, NULL, 0);
	err = ap_gpu_model_rotate(g->model, np, tables, tables_len);
	if (err) {
		ap_profile_free(np);
		return err;
	}
	*profile = c->profile;
	c->profile = np;
	return 0;
}

static void gpu_destroy(struct ap_collector *c)
{
	struct gpu_collector *g = c->priv;

	if (!g)
		return;
	ap_gpu_probes_free(g->probes);
	drop_loader_links(g);
	ap_gpu_activity_free(g->act);
	if (g->epfd >= 0)
		close(g->epfd);
	unload(g);
	ap_unwind_events_free(g->uev);
	ap_gpu_discovery_free(g->disc);
	ap_gpu_model_free(g->model);
	free(g->known_pid_func);
	free(g->gone);
	free(g);
	c->priv = NULL;
}

const struct ap_collector_ops ap_gpu_collector_ops = {
	.name = "gpu",
	.mode = AP_MODE_GPU,
	.start = gpu_start,
	.poll_fd = gpu_poll_fd,
	.consume = gpu_consume,
	.stop = gpu_stop,
	.drain = gpu_drain,
	.report_stats = gpu_report_stats,
	.write = gpu_write,
	.rotate = gpu_rotate,
	.destroy = gpu_destroy,
};
