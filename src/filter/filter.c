// SPDX-License-Identifier: MIT
/* WebAssembly event filters: load pipeline, per-event run, host functions. See filter.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "filter.h"
#include "filter_internal.h"
#include "wasm_module.h"

_Static_assert(AP_HOSTFN_LOG == AP_FILTER_HOST_LOG, "host function numbers");
_Static_assert(AP_HOSTFN_GET_TIMESTAMP == AP_FILTER_HOST_GET_TIMESTAMP, "host function numbers");
_Static_assert(AP_HOSTFN_FRAME_SYMBOL == AP_FILTER_HOST_FRAME_SYMBOL, "host function numbers");
_Static_assert(AP_HOSTFN_FRAME_MODULE == AP_FILTER_HOST_FRAME_MODULE, "host function numbers");
_Static_assert(AP_HOSTFN_AGENT_PID == AP_FILTER_HOST_AGENT_PID, "host function numbers");

/* Fuel a host call costs, plus one unit per 8 bytes it copies. */
#define HOST_CALL_FUEL 50
#define LOG_MAX 512	/* bytes of one env.log message shown */
#define LOG_BURST 10	/* messages per second before the rate limit */
#define TIME_ALL 256	/* time the first events one by one, */
#define TIME_SAMPLE 128 /* then one in this many */

struct ap_filter {
	const struct ap_engine_ops *eng;
	void *inst;
	int (*call)(void *ctx, struct ap_engine_call *c); /* eng->call, one indirection less */
	void *call_ctx;
	struct ap_filter_opts opts;
	struct ap_filter_limits lim;
	uint8_t *mem; /* linear memory as of the last call */
	uint32_t buf_off;
	int64_t export_cost[AP_EXPORT__COUNT]; /* static cost of unmetered exports */
	int agent_pid;
	const struct ap_filter_event *cur; /* the event being filtered, for host calls */
	enum ap_filter_trap last_trap;
	char last_msg[192];
	struct ap_filter_stats st;
	struct {
		uint64_t start; /* one-second window */
		unsigned count;
		uint64_t held;
	} rl[2]; /* rate limits: the filter's own messages, trap reports */
	unsigned tick;
	bool in_setup;
	char setup_msg[200]; /* the filter's last error/warning logged during setup */
	char label[128];     /* file name for messages */
	struct ap_filter_info info;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum { RL_FILTER = 0, RL_TRAPS = 1 };

static void flog(struct ap_filter *f, int bucket, enum ap_filter_log_level level, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));

/* Rate-limited per bucket: LOG_BURST messages per second, then a count of what was held
 * back, so a chatty filter cannot hide its trap reports. */
static void flog(struct ap_filter *f, int bucket, enum ap_filter_log_level level, const char *fmt,
		 ...)
{
	char msg[LOG_MAX + 192];
	uint64_t now = mono_ns();
	va_list ap;

	if (now - f->rl[bucket].start >= 1000000000ull) {
		if (f->rl[bucket].held && f->opts.log) {
			snprintf(msg, sizeof(msg), "filter %s: %llu %s suppressed", f->label,
				 (unsigned long long)f->rl[bucket].held,
				 bucket == RL_TRAPS ? "trap reports" : "messages");
			f->opts.log(f->opts.log_ctx, AP_FILTER_LOG_WARN, msg);
		}
		f->rl[bucket].start = now;
		f->rl[bucket].count = 0;
		f->rl[bucket].held = 0;
	}
	if (f->rl[bucket].count >= LOG_BURST) {
		f->rl[bucket].held++;
		f->st.log_suppressed++;
		return;
	}
	f->rl[bucket].count++;
	if (!f->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->opts.log(f->opts.log_ctx, level, msg);
}

/* ---- host functions ---- */

static bool in_memory(const struct ap_hostcall *hc, uint64_t ptr, uint64_t len)
{
	return ptr <= hc->mem_size && len <= hc->mem_size - ptr;
}

static int host_frame_name(struct ap_filter *f, enum ap_filter_sym_kind kind, const uint64_t *a,
			   uint64_t *ret, struct ap_hostcall *hc)
{
	const struct ap_filter_event *ev = f->cur;
	uint32_t idx = (uint32_t)a[0];
	uint64_t buf = a[1], cap = a[2];
	char name[512];
	size_t copy;
	int len;

	if (!in_memory(hc, buf, cap))
		return AP_FILTER_TRAP_HOST_CALL;
	if (!ev || idx >= (uint32_t)ev->n_kernel + ev->n_user) {
		*ret = (uint32_t)AP_FILTER_EINVAL;
		return 0;
	}
	name[0] = '\0';
	len = f->opts.symbolize
		  ? f->opts.symbolize(f->opts.symbolize_ctx, ev, idx, kind, name, sizeof(name))
		  : -ENOENT;
	if (len < 0) {
		*ret = (uint32_t)AP_FILTER_ENOENT;
		return 0;
	}
	name[sizeof(name) - 1] = '\0';
	copy = strlen(name);
	if (cap == 0)
		copy = 0;
	else if (copy > cap - 1)
		copy = (size_t)cap - 1;
	if (cap) {
		memcpy(hc->mem + buf, name, copy);
		hc->mem[buf + copy] = '\0';
	}
	hc->fuel -= (int64_t)(copy / 8);
	*ret = (uint32_t)len;
	return 0;
}

static int host_log(struct ap_filter *f, const uint64_t *a, struct ap_hostcall *hc)
{
	uint32_t level = (uint32_t)a[0];
	uint64_t ptr = a[1], len = a[2];
	char msg[LOG_MAX + 1];
	size_t n;

	if (!in_memory(hc, ptr, len))
		return AP_FILTER_TRAP_HOST_CALL;
	hc->fuel -= (int64_t)(len / 8);
	f->st.log_messages++;
	n = len < LOG_MAX ? (size_t)len : LOG_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = hc->mem[ptr + i];
		msg[i] = ch >= 0x20 && ch != 0x7f ? (char)ch : '?';
	}
	msg[n] = '\0';
	if (level > AP_FILTER_LOG_DEBUG)
		level = AP_FILTER_LOG_DEBUG;
	if (f->in_setup && level <= AP_FILTER_LOG_WARN)
		snprintf(f->setup_msg, sizeof(f->setup_msg), "%.199s", msg);
	flog(f, RL_FILTER, (enum ap_filter_log_level)level, "filter %s: %s", f->label, msg);
	return 0;
}

static int host_dispatch(void *ctx, unsigned fn, const uint64_t *a, uint64_t *ret,
			 struct ap_hostcall *hc)
{
	struct ap_filter *f = ctx;
	int r = 0;

	*ret = 0;
	hc->fuel -= HOST_CALL_FUEL;
	if (hc->fuel < 0)
		return AP_FILTER_TRAP_FUEL;
	switch (fn) {
	case AP_HOSTFN_LOG:
		r = host_log(f, a, hc);
		break;
	case AP_HOSTFN_GET_TIMESTAMP:
		*ret = mono_ns();
		break;
	case AP_HOSTFN_FRAME_SYMBOL:
		r = host_frame_name(f, AP_FILTER_SYM_FUNCTION, a, ret, hc);
		break;
	case AP_HOSTFN_FRAME_MODULE:
		r = host_frame_name(f, AP_FILTER_SYM_MODULE, a, ret, hc);
		break;
	case AP_HOSTFN_AGENT_PID:
		*ret = (uint32_t)f->agent_pid;
		break;
	default:
		return AP_FILTER_TRAP_OTHER;
	}
	if (!r && hc->fuel < 0)
		r = AP_FILTER_TRAP_FUEL;
	return r;
}

/* ---- calls ---- */

static inline enum ap_filter_trap classify(const struct ap_filter *f, int etrap,
					   const struct ap_engine_call *c)
{
	switch (etrap) {
	case AP_ETRAP_NONE:
		return AP_FILTER_TRAP_NONE;
	case AP_ETRAP_UNREACHABLE:
		if (c->fuel < 0)
			return AP_FILTER_TRAP_FUEL;
		if (c->depth > f->lim.max_call_depth)
			return AP_FILTER_TRAP_CALL_DEPTH;
		return AP_FILTER_TRAP_UNREACHABLE;
	case AP_ETRAP_STACK:
		return AP_FILTER_TRAP_CALL_DEPTH;
	case AP_ETRAP_MEMORY:
		return AP_FILTER_TRAP_MEMORY;
	case AP_ETRAP_ARITH:
		return AP_FILTER_TRAP_ARITHMETIC;
	case AP_ETRAP_INDIRECT:
		return AP_FILTER_TRAP_INDIRECT_CALL;
	case AP_ETRAP_HOST:
		if (c->host_trap > 0 && c->host_trap < AP_FILTER_TRAP__COUNT)
			return (enum ap_filter_trap)c->host_trap;
		return AP_FILTER_TRAP_OTHER;
	default:
		return AP_FILTER_TRAP_OTHER;
	}
}

/* An engine-independent description of a trap (engines word their messages differently). */
static void trap_message(const struct ap_filter *f, enum ap_filter_trap r,
			 const struct ap_engine_call *c, uint64_t budget, char *out, size_t len)
{
	switch (r) {
	case AP_FILTER_TRAP_FUEL:
		snprintf(out, len, "fuel budget of %llu exhausted", (unsigned long long)budget);
		break;
	case AP_FILTER_TRAP_CALL_DEPTH:
		snprintf(out, len, "call depth above %u", f->lim.max_call_depth);
		break;
	case AP_FILTER_TRAP_MEMORY:
		snprintf(out, len, "out-of-bounds memory access");
		break;
	case AP_FILTER_TRAP_UNREACHABLE:
		snprintf(out, len, "unreachable executed");
		break;
	case AP_FILTER_TRAP_ARITHMETIC:
		snprintf(out, len, "integer divide by zero, overflow or invalid conversion");
		break;
	case AP_FILTER_TRAP_INDIRECT_CALL:
		snprintf(out, len, "invalid indirect call");
		break;
	case AP_FILTER_TRAP_HOST_CALL:
		snprintf(out, len, "host function called with an out-of-bounds buffer");
		break;
	default:
		snprintf(out, len, "%s", c && c->msg[0] ? c->msg : "engine error");
		break;
	}
}

/* Call an export during setup, with the init budget. */
static int setup_call(struct ap_filter *f, int export_id, uint32_t a0, uint32_t a1, unsigned nargs,
		      uint32_t *result, const char *what, char *reason, size_t len)
{
	struct ap_engine_call c = {
		.export_id = export_id, .args = { a0, a1 }, .nargs = nargs, .mem = NULL
	};
	enum ap_filter_trap r;
	char msg[192];

	c.fuel = (int64_t)f->lim.init_fuel - f->export_cost[export_id];
	if (c.fuel < 0)
		r = AP_FILTER_TRAP_FUEL;
	else
		r = classify(f, f->eng->call(f->inst, &c), &c);
	if (c.mem)
		f->mem = c.mem;
	if (r) {
		trap_message(f, r, &c, f->lim.init_fuel, msg, sizeof(msg));
		snprintf(reason, len, "%s trapped (%s): %s", what, ap_filter_trap_name(r), msg);
		return -EINVAL;
	}
	*result = c.result;
	return 0;
}

/* ---- running ---- */

static int resolve_trap(struct ap_filter *f, enum ap_filter_trap r, const char *msg,
			const struct ap_filter_event *ev)
{
	bool drop = f->opts.on_error == AP_FILTER_ON_ERROR_DROP;

	f->st.traps++;
	f->st.trap_reasons[r]++;
	if (r == AP_FILTER_TRAP_FUEL)
		f->st.fuel_exhausted++;
	f->last_trap = r;
	snprintf(f->last_msg, sizeof(f->last_msg), "%s", msg);
	flog(f, RL_TRAPS, AP_FILTER_LOG_WARN,
	     "filter %s: %s on an event of pid %u (%.16s): %s; event %s", f->label,
	     ap_filter_trap_name(r), ev->pid, ev->comm, msg, drop ? "dropped" : "kept");
	if (drop) {
		f->st.dropped++;
		return AP_FILTER_DROP;
	}
	f->st.kept++;
	return AP_FILTER_KEEP;
}

int ap_filter_run(struct ap_filter *f, const struct ap_filter_event *ev,
		  struct ap_filter_event *out)
{
	uint32_t n = (uint32_t)ev->n_kernel + ev->n_user, size;
	struct ap_engine_call c;
	struct ap_filter_event *w;
	enum ap_filter_trap r;
	uint64_t t0 = 0, weight = 0;
	char msg[192];
	int verdict = AP_FILTER_KEEP;

	if (n > AP_FILTER_MAX_FRAMES)
		return -EINVAL;
	if (f->st.seen < TIME_ALL)
		weight = 1;
	else if (++f->tick == TIME_SAMPLE)
		weight = TIME_SAMPLE;
	if (weight) {
		f->tick = 0;
		t0 = mono_ns();
	}
	size = AP_FILTER_EVENT_SIZE(n);
	w = (struct ap_filter_event *)(f->mem + f->buf_off);
	copy_header(w, ev);
	w->abi_version = AP_FILTER_ABI_VERSION;
	w->size = size;
	copy_frames(w->frames, ev->frames, n);
	c.export_id = AP_EXPORT_FILTER;
	c.args[0] = f->buf_off;
	c.args[1] = size;
	c.nargs = 2;
	c.fuel = (int64_t)f->lim.fuel - f->export_cost[AP_EXPORT_FILTER];
	f->cur = ev;
	if (c.fuel < 0) {
		r = AP_FILTER_TRAP_FUEL; /* a loop-free filter costing more than the budget */
		c.msg[0] = '\0';
	} else {
		r = classify(f, f->call(f->call_ctx, &c), &c);
		f->mem = c.mem;
	}
	f->cur = NULL;
	f->st.seen++;
	f->st.fuel_used += c.fuel > 0 ? f->lim.fuel - (uint64_t)c.fuel : f->lim.fuel;
	f->last_trap = AP_FILTER_TRAP_NONE;
	if (r == AP_FILTER_TRAP_NONE) {
		switch (c.result) {
		case AP_FILTER_KEEP:
			f->st.kept++;
			break;
		case AP_FILTER_DROP:
			f->st.dropped++;
			verdict = AP_FILTER_DROP;
			break;
		case AP_FILTER_TRANSFORM:
			w = (struct ap_filter_event *)(f->mem + f->buf_off);
			if (ap_filter_check_transform(ev, w, out, msg, sizeof(msg))) {
				r = AP_FILTER_TRAP_BAD_TRANSFORM;
				break;
			}
			f->st.transformed++;
			verdict = AP_FILTER_TRANSFORM;
			break;
		default:
			r = AP_FILTER_TRAP_BAD_RESULT;
			snprintf(msg, sizeof(msg),
				 "ap_filter returned %u, not 0 (drop), 1 (keep) "
				 "or 2 (transform)",
				 c.result);
			break;
		}
	} else {
		trap_message(f, r, &c, f->lim.fuel, msg, sizeof(msg));
	}
	if (r != AP_FILTER_TRAP_NONE)
		verdict = resolve_trap(f, r, msg, ev);
	if (weight)
		f->st.time_ns += (mono_ns() - t0) * weight;
	return verdict;
}

enum ap_filter_trap ap_filter_last_trap(const struct ap_filter *f, const char **msg)
{
	if (msg)
		*msg = f->last_trap ? f->last_msg : NULL;
	return f->last_trap;
}

void ap_filter_get_stats(const struct ap_filter *f, struct ap_filter_stats *st)
{
	*st = f->st;
}

const struct ap_filter_info *ap_filter_get_info(const struct ap_filter *f)
{
	return &f->info;
}

void ap_filter_free(struct ap_filter *f)
{
	if (!f)
		return;
	if (f->inst)
		f->eng->destroy(f->inst);
	free(f->info.imports);
	free(f->info.exports);
	free(f);
}

/* ---- loading ---- */

void ap_filter_opts_init(struct ap_filter_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->engine = AP_FILTER_ENGINE_AUTO;
	o->on_error = AP_FILTER_ON_ERROR_KEEP;
}

static int effective_limits(const struct ap_filter_limits *in, struct ap_filter_limits *l,
			    char *reason, size_t len)
{
	*l = *in;
	l->fuel = l->fuel ? l->fuel : AP_FILTER_DEFAULT_FUEL;
	l->init_fuel = l->init_fuel ? l->init_fuel : AP_FILTER_DEFAULT_INIT_FUEL;
	l->max_memory_pages =
	    l->max_memory_pages ? l->max_memory_pages : AP_FILTER_DEFAULT_MEMORY_PAGES;
	l->max_call_depth = l->max_call_depth ? l->max_call_depth : AP_FILTER_DEFAULT_CALL_DEPTH;
	l->max_module_bytes =
	    l->max_module_bytes ? l->max_module_bytes : AP_FILTER_DEFAULT_MODULE_BYTES;
	l->max_functions = l->max_functions ? l->max_functions : AP_FILTER_DEFAULT_FUNCTIONS;
	l->max_locals = l->max_locals ? l->max_locals : AP_FILTER_DEFAULT_LOCALS;
	l->max_native_stack =
	    l->max_native_stack ? l->max_native_stack : AP_FILTER_DEFAULT_NATIVE_STACK;
	if (l->fuel > INT64_MAX / 2 || l->init_fuel > INT64_MAX / 2)
		return snprintf(reason, len, "fuel budget too large"), -EINVAL;
	if (l->max_memory_pages > AP_FILTER_MAX_MEMORY_PAGES)
		return snprintf(reason, len, "memory limit above %u pages",
				AP_FILTER_MAX_MEMORY_PAGES),
		       -EINVAL;
	if (l->max_call_depth > AP_FILTER_MAX_CALL_DEPTH)
		return snprintf(reason, len, "call depth limit above %u", AP_FILTER_MAX_CALL_DEPTH),
		       -EINVAL;
	if (l->max_locals > AP_FILTER_MAX_LOCALS)
		return snprintf(reason, len, "locals limit above %u", AP_FILTER_MAX_LOCALS),
		       -EINVAL;
	return 0;
}

static void name_copy(char *dst, size_t cap, const char *a, size_t alen, const char *b, size_t blen)
{
	int n = snprintf(dst, cap, "%.*s%s%.*s", (int)alen, a, b ? "." : "", (int)blen, b ? b : "");
	if (n >= (int)cap && cap > 4)
		memcpy(dst + cap - 4, "...", 4);
}

static int fill_info(struct ap_filter *f, const struct wasm_module *m, size_t inst_len)
{
	static const char *const kinds[] = { "function", "table", "memory", "global" };
	struct ap_filter_info *in = &f->info;

	in->module_bytes = m->len;
	in->instrumented_bytes = inst_len;
	in->functions = m->nfunc_imports + m->nfuncs;
	in->imported_functions = m->nfunc_imports;
	for (uint32_t i = 0; i < m->nfuncs; i++)
		in->depth_counted_functions += m->funcs[i].calls;
	in->memory_initial_pages = m->mem_min;
	in->memory_declared_max = m->mem_max;
	in->memory_max_pages =
	    m->mem_max < f->lim.max_memory_pages ? m->mem_max : f->lim.max_memory_pages;
	in->has_init = wasm_module_find_export(m, "ap_init", WASM_EXT_FUNC) >= 0;
	in->has_initialize = wasm_module_find_export(m, "_initialize", WASM_EXT_FUNC) >= 0;
	in->limits = f->lim;
	in->imports = calloc(m->nimports ? m->nimports : 1, sizeof(*in->imports));
	in->exports = calloc(m->nexports ? m->nexports : 1, sizeof(*in->exports));
	if (!in->imports || !in->exports)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nimports; i++) {
		const struct wasm_import *im = &m->imports[i];
		name_copy(in->imports[i].name, sizeof(in->imports[i].name),
			  (const char *)im->module.p, im->module.len, (const char *)im->name.p,
			  im->name.len);
		wasm_type_str(&m->types[im->type], in->imports[i].type,
			      sizeof(in->imports[i].type));
	}
	in->nimports = m->nimports;
	for (uint32_t i = 0; i < m->nexports; i++) {
		const struct wasm_export *ex = &m->exports[i];
		const struct wasm_type *t;
		name_copy(in->exports[i].name, sizeof(in->exports[i].name),
			  (const char *)ex->name.p, ex->name.len, NULL, 0);
		t = ex->kind == WASM_EXT_FUNC ? wasm_module_func_type(m, ex->index) : NULL;
		if (t)
			wasm_type_str(t, in->exports[i].type, sizeof(in->exports[i].type));
		else
			snprintf(in->exports[i].type, sizeof(in->exports[i].type), "%s",
				 ex->kind < 4 ? kinds[ex->kind] : "?");
	}
	in->nexports = m->nexports;
	return 0;
}

/* Pick and start the engine. */
static int start_engine(struct ap_filter *f, struct ap_engine_load *ld, char *reason, size_t len)
{
	char why[256] = "";
	int ret;

	if (f->opts.engine != AP_FILTER_ENGINE_INTERP) {
		if (ap_engine_aot_available(f->opts.cc, f->opts.wasm2c, why, sizeof(why))) {
			ret = ap_engine_aot.create(ld, &f->inst, why, sizeof(why));
			if (ret == 0) {
				f->eng = &ap_engine_aot;
				f->info.aot_cached = ld->cached;
				f->info.compile_ms = ld->compile_ms;
				if (ld->cached)
					snprintf(f->info.engine_note, sizeof(f->info.engine_note),
						 "compiled object reused from the cache");
				else
					snprintf(f->info.engine_note, sizeof(f->info.engine_note),
						 "compiled in %.0f ms%s%.190s", ld->compile_ms,
						 ld->note[0] ? "; " : "", ld->note);
				return 0;
			}
		}
		if (f->opts.engine == AP_FILTER_ENGINE_AOT)
			return snprintf(reason, len, "aot engine unavailable: %s", why), -ENOTSUP;
		snprintf(f->info.engine_note, sizeof(f->info.engine_note),
			 "aot engine not used (%.200s)", why);
	}
	ret = ap_engine_interp.create(ld, &f->inst, reason, len);
	if (ret == 0)
		f->eng = &ap_engine_interp;
	return ret;
}

/* _initialize, ABI version, event buffer, configuration. */
static int setup_module(struct ap_filter *f, const char *config, char *reason, size_t len)
{
	uint32_t v = 0;
	uint64_t memsize;
	uint8_t *mem;
	size_t clen = config ? strlen(config) : 0;
	int ret;

	if (f->eng->has_export(f->inst, AP_EXPORT_INITIALIZE)) {
		ret = setup_call(f, AP_EXPORT_INITIALIZE, 0, 0, 0, &v, "_initialize", reason, len);
		if (ret)
			return ret;
	}
	ret = setup_call(f, AP_EXPORT_ABI_VERSION, 0, 0, 0, &v, "ap_abi_version", reason, len);
	if (ret)
		return ret;
	f->info.abi_version = v;
	if (v != AP_FILTER_ABI_VERSION)
		return snprintf(
			   reason, len,
			   "built for filter ABI version %u, this Aperture supports version %u", v,
			   AP_FILTER_ABI_VERSION),
		       -EINVAL;
	ret = setup_call(f, AP_EXPORT_EVENT_BUFFER, 0, 0, 0, &v, "ap_event_buffer", reason, len);
	if (ret)
		return ret;
	mem = f->mem = f->eng->memory(f->inst, &memsize);
	if ((v & 7) || (uint64_t)v + AP_FILTER_BUFFER_SIZE > memsize || !mem)
		return snprintf(reason, len,
				"ap_event_buffer() returned %u: %u bytes there must be inside the "
				"%llu-byte memory, 8-byte aligned",
				v, AP_FILTER_BUFFER_SIZE, (unsigned long long)memsize),
		       -EINVAL;
	f->buf_off = v;
	f->info.buffer_offset = v;
	if (!f->eng->has_export(f->inst, AP_EXPORT_INIT)) {
		if (clen)
			return snprintf(reason, len,
					"takes no configuration (it exports no ap_init), but one "
					"was given"),
			       -EINVAL;
		return 0;
	}
	if (clen > AP_FILTER_CONFIG_MAX)
		return snprintf(reason, len, "configuration is %zu bytes, above the limit of %u",
				clen, AP_FILTER_CONFIG_MAX),
		       -EINVAL;
	mem = f->mem;
	memcpy(mem + f->buf_off, config ? config : "", clen);
	mem[f->buf_off + clen] = '\0';
	ret = setup_call(f, AP_EXPORT_INIT, f->buf_off, (uint32_t)clen, 2, &v, "ap_init", reason,
			 len);
	if (ret)
		return ret;
	if (v != 0)
		return snprintf(reason, len,
				"rejected the configuration \"%.200s\" (ap_init returned %d)%s%s",
				config ? config : "", (int32_t)v, f->setup_msg[0] ? ": " : "",
				f->setup_msg),
		       -EINVAL;
	return 0;
}

int ap_filter_load_mem(const char *name, const uint8_t *wasm, size_t len, const char *config,
		       const struct ap_filter_opts *opts, struct ap_filter **out, char *err,
		       size_t errlen)
{
	struct ap_filter *f = calloc(1, sizeof(*f));
	struct wasm_module m;
	struct wasm_limits wl;
	struct wasm_instrument_opts io;
	struct ap_engine_load ld = { 0 };
	int hostfns[AP_FILTER_HOST__COUNT * 8];
	uint8_t *inst = NULL;
	size_t inst_len = 0;
	char reason[512] = "";
	const char *base = strrchr(name, '/');
	double t0 = (double)mono_ns();
	int ret;

	*out = NULL;
	memset(&m, 0, sizeof(m));
	if (!f) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (opts)
		f->opts = *opts;
	else
		ap_filter_opts_init(&f->opts);
	f->agent_pid = f->opts.agent_pid ? f->opts.agent_pid : getpid();
	snprintf(f->label, sizeof(f->label), "%s", base ? base + 1 : name);
	snprintf(f->info.path, sizeof(f->info.path), "%s", name);
	ret = effective_limits(&f->opts.limits, &f->lim, reason, sizeof(reason));
	if (ret)
		goto fail;
	wl = (struct wasm_limits){ .max_module_bytes = f->lim.max_module_bytes,
				   .max_functions = f->lim.max_functions,
				   .max_locals = f->lim.max_locals,
				   .max_memory_pages = f->lim.max_memory_pages,
				   .max_table_elems = 65536 };
	ret = wasm_module_parse(&m, wasm, len, &wl, reason, sizeof(reason));
	if (!ret)
		ret = wasm_module_check_filter(&m, &wl, reason, sizeof(reason));
	if (!ret && m.nimports > sizeof(hostfns) / sizeof(hostfns[0])) {
		snprintf(reason, sizeof(reason), "too many imports (%u)", m.nimports);
		ret = -EINVAL;
	}
	if (ret)
		goto fail;
	ret = ap_wabt_validate(wasm, len, reason, sizeof(reason));
	if (ret) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "invalid module: %.480s", reason);
		snprintf(reason, sizeof(reason), "%s", tmp);
		goto fail;
	}
	io = (struct wasm_instrument_opts){ .max_call_depth = f->lim.max_call_depth,
					    .max_memory_pages = f->lim.max_memory_pages };
	ret = wasm_instrument(&m, &io, &inst, &inst_len, reason, sizeof(reason));
	if (!ret)
		ret = fill_info(f, &m, inst_len);
	if (ret)
		goto fail;
	for (uint32_t i = 0; i < m.nimports; i++)
		hostfns[i] = m.imports[i].hostfn;
	for (int e = 0; e < AP_EXPORT__COUNT; e++) {
		static const char *const names[AP_EXPORT__COUNT] = {
			"ap_abi_version", "ap_event_buffer", "ap_filter", "ap_init", "_initialize",
		};
		int x = wasm_module_find_export(&m, names[e], WASM_EXT_FUNC);
		uint32_t fi = x >= 0 ? m.exports[x].index : 0;
		if (x >= 0 && fi >= m.nfunc_imports)
			f->export_cost[e] = m.funcs[fi - m.nfunc_imports].static_cost;
	}
	ld =
	    (struct ap_engine_load){ .wasm = inst,
				     .len = inst_len,
				     .label = f->label,
				     .hostfns = hostfns,
				     .nhostfns = m.nimports,
				     .host = host_dispatch,
				     .host_ctx = f,
				     .max_call_depth = f->lim.max_call_depth,
				     .exports =
					 (1u << AP_EXPORT_ABI_VERSION) |
					 (1u << AP_EXPORT_EVENT_BUFFER) | (1u << AP_EXPORT_FILTER) |
					 (f->info.has_init ? 1u << AP_EXPORT_INIT : 0) |
					 (f->info.has_initialize ? 1u << AP_EXPORT_INITIALIZE : 0),
				     .cache_dir = f->opts.cache_dir,
				     .cc = f->opts.cc,
				     .wasm2c = f->opts.wasm2c,
				     .max_stack_bytes = f->lim.max_native_stack };
	ret = start_engine(f, &ld, reason, sizeof(reason));
	if (ret)
		goto fail;
	f->info.engine = f->eng->name;
	f->eng->direct(f->inst, &f->call, &f->call_ctx);
	f->in_setup = true;
	ret = setup_module(f, config, reason, sizeof(reason));
	f->in_setup = false;
	if (ret)
		goto fail;
	free(inst);
	wasm_module_release(&m);
	f->info.load_ms = ((double)mono_ns() - t0) / 1e6;
	*out = f;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", name, reason[0] ? reason : strerror(-ret));
	free(inst);
	wasm_module_release(&m);
	ap_filter_free(f);
	return ret;
}

int ap_filter_load(const char *path, const char *config, const struct ap_filter_opts *opts,
		   struct ap_filter **out, char *err, size_t errlen)
{
	uint32_t max = opts && opts->limits.max_module_bytes ? opts->limits.max_module_bytes
							     : AP_FILTER_DEFAULT_MODULE_BYTES;
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		snprintf(err, errlen, "%s: module is %lld bytes, above the limit of %u", path,
			 (long long)st.st_size, max);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		snprintf(err, errlen, "%s: read failed", path);
		return -EIO;
	}
	ret = ap_filter_load_mem(path, buf, got, config, opts, out, err, errlen);
	free(buf);
	return ret;
}
