// SPDX-License-Identifier: MIT
/*
 * NOT part of the Aperture build. This file is embedded as text (cmake/embed.cmake) and
 * compiled by the aot engine into a shared object, with the wasm2c output of one filter
 * module ("apf.c") included as part of this translation unit so the compiler can inline the
 * entry points into ap_aot_call. It provides:
 *
 *  - the wasm2c runtime (the wasm_rt_* functions of wabt's wasm-rt.h), written for this use:
 *    explicit bounds checks (WASM_RT_MEMCHECK_SIGNAL_HANDLER=0: no signal handlers, no
 *    guard-page reservations), the memory maximum from the module, traps by longjmp to the
 *    call in progress, and never abort();
 *  - the host imports (Z_envZ_*) forwarding to the host's callback;
 *  - struct ap_aot_api ap_aot_api, the only exported symbol.
 *
 * Every object is hidden (-fvisibility=hidden and the wasm-rt.h wrapper), and the host loads
 * a private copy of the object per filter instance, so this file's globals belong to one
 * instance used by one thread at a time.
 *
 * Build flags (aot.c): -DAP_HAS_IMPORTS, -DAP_HAS_INIT, -DAP_HAS_INITIALIZE as the module
 * needs, -DWASM_RT_MAX_CALL_STACK_DEPTH (a backstop above the module's own depth limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot_glue.h"
#include "apf.c" /* the generated module; includes apf.h and wasm-rt.h */

#define AP_TRAP_BASE 100 /* longjmp value = AP_TRAP_BASE + wasm_rt_trap_t */
#define AP_TRAP_HOST 99

uint32_t wasm_rt_call_stack_depth;

/* gcc and clang's builtin setjmp saves three words instead of the whole register file;
 * the trap code travels in ap_trap_code. */
#if defined(__GNUC__)
typedef void *AP_JMP_BUF[5];
#define AP_SETJMP(b) __builtin_setjmp(b)
#define AP_LONGJMP(b) __builtin_longjmp(b, 1)
#else
typedef jmp_buf AP_JMP_BUF;
#define AP_SETJMP(b) setjmp(b)
#define AP_LONGJMP(b) longjmp(b, 1)
#endif

static AP_JMP_BUF *ap_jmp; /* the call in progress, NULL outside calls */
static int ap_trap_code;
static int ap_host_reason;
static int ap_initialized;

/* ---- the runtime ---- */

/* Function types, interned: call_indirect compares the returned indices. */
struct ap_functype {
	uint32_t nparams, nresults;
	wasm_rt_type_t *types;
};
static struct ap_functype *ap_types;
static uint32_t ap_ntypes;

void wasm_rt_trap(wasm_rt_trap_t code)
{
	if (ap_jmp) {
		ap_trap_code = AP_TRAP_BASE + (int)code;
		AP_LONGJMP(*ap_jmp);
	}
	/* Unreachable by construction: module code only runs inside aot_call/aot_create. */
	for (;;)
		;
}

static void ap_trap_host(int reason)
{
	ap_host_reason = reason;
	if (ap_jmp) {
		ap_trap_code = AP_TRAP_HOST;
		AP_LONGJMP(*ap_jmp);
	}
	for (;;)
		;
}

void wasm_rt_init(void)
{
	ap_initialized = 1;
}

bool wasm_rt_is_initialized(void)
{
	return ap_initialized;
}

/* Releases what module initialisation registered; this object serves one instance. */
void wasm_rt_free(void)
{
	for (uint32_t i = 0; i < ap_ntypes; i++)
		free(ap_types[i].types);
	free(ap_types);
	ap_types = NULL;
	ap_ntypes = 0;
	ap_initialized = 0;
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
	switch (trap) {
	case WASM_RT_TRAP_NONE:
		return "no error";
	case WASM_RT_TRAP_OOB:
		return "out of bounds memory access";
	case WASM_RT_TRAP_INT_OVERFLOW:
		return "integer overflow";
	case WASM_RT_TRAP_DIV_BY_ZERO:
		return "integer divide by zero";
	case WASM_RT_TRAP_INVALID_CONVERSION:
		return "invalid conversion to integer";
	case WASM_RT_TRAP_UNREACHABLE:
		return "unreachable executed";
	case WASM_RT_TRAP_CALL_INDIRECT:
		return "invalid indirect call";
	case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
		return "uncaught exception";
	case WASM_RT_TRAP_EXHAUSTION:
		return "call stack exhausted";
	}
	return "unknown trap";
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
	uint32_t n = params + results;
	wasm_rt_type_t *types = calloc(n ? n : 1, sizeof(*types));
	struct ap_functype *nt;
	va_list ap;

	if (!types)
		wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
	va_start(ap, results);
	for (uint32_t i = 0; i < n; i++)
		types[i] = (wasm_rt_type_t)va_arg(ap, int);
	va_end(ap);
	for (uint32_t i = 0; i < ap_ntypes; i++) {
		if (ap_types[i].nparams == params && ap_types[i].nresults == results &&
		    memcmp(ap_types[i].types, types, n * sizeof(*types)) == 0) {
			free(types);
			return i;
		}
	}
	nt = realloc(ap_types, (ap_ntypes + 1) * sizeof(*ap_types));
	if (!nt) {
		free(types);
		wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
	}
	ap_types = nt;
	ap_types[ap_ntypes] = (struct ap_functype){ params, results, types };
	return ap_ntypes++;
}

/* Exception handling is disabled at validation; these only keep the linker satisfied. */
uint32_t wasm_rt_register_tag(uint32_t size)
{
	(void)size;
	return 0;
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
	(void)tag;
	(void)size;
	(void)values;
}

void wasm_rt_throw(void)
{
	wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

static WASM_RT_UNWIND_TARGET *ap_unwind;

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
	return ap_unwind;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
	ap_unwind = target;
}

uint32_t wasm_rt_exception_tag(void)
{
	return 0;
}

uint32_t wasm_rt_exception_size(void)
{
	return 0;
}

void *wasm_rt_exception(void)
{
	return NULL;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages, uint32_t max_pages)
{
	uint64_t bytes = (uint64_t)initial_pages * 65536u;
	mem->data = NULL;
	mem->pages = 0;
	mem->size = 0;
	mem->max_pages = max_pages;
	if (initial_pages > max_pages || bytes > UINT32_MAX)
		wasm_rt_trap(WASM_RT_TRAP_OOB);
	mem->data = calloc(bytes ? bytes : 1, 1);
	if (!mem->data)
		wasm_rt_trap(WASM_RT_TRAP_OOB);
	mem->pages = initial_pages;
	mem->size = (uint32_t)bytes;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
	uint32_t old = mem->pages;
	uint64_t pages = (uint64_t)old + delta, bytes = pages * 65536u;
	uint8_t *data;

	if (pages > mem->max_pages || bytes > UINT32_MAX)
		return UINT32_MAX;
	if (delta == 0)
		return old;
	data = realloc(mem->data, bytes);
	if (!data)
		return UINT32_MAX;
	memset(data + mem->size, 0, bytes - mem->size);
	mem->data = data;
	mem->pages = (uint32_t)pages;
	mem->size = (uint32_t)bytes;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	free(mem->data);
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}

#define AP_DEFINE_TABLE(type, null_value)                                                          \
	void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *t, uint32_t elements,       \
					     uint32_t max_elements)                                \
	{                                                                                          \
		t->size = 0;                                                                       \
		t->max_size = max_elements;                                                        \
		t->data = calloc(elements ? elements : 1, sizeof(*t->data));                       \
		if (!t->data)                                                                      \
			wasm_rt_trap(WASM_RT_TRAP_OOB);                                            \
		for (uint32_t i = 0; i < elements; i++)                                            \
			t->data[i] = null_value;                                                   \
		t->size = elements;                                                                \
	}                                                                                          \
	void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t *t)                              \
	{                                                                                          \
		free(t->data);                                                                     \
		t->data = NULL;                                                                    \
		t->size = 0;                                                                       \
	}                                                                                          \
	uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t *t, uint32_t delta,          \
					     wasm_rt_##type##_t init)                              \
	{                                                                                          \
		uint32_t old = t->size;                                                            \
		uint64_t n = (uint64_t)old + delta;                                                \
		void *p;                                                                           \
		if (n > t->max_size || n > (1u << 20))                                             \
			return UINT32_MAX;                                                         \
		if (delta == 0)                                                                    \
			return old;                                                                \
		p = realloc(t->data, n * sizeof(*t->data));                                        \
		if (!p)                                                                            \
			return UINT32_MAX;                                                         \
		t->data = p;                                                                       \
		for (uint64_t i = old; i < n; i++)                                                 \
			t->data[i] = init;                                                         \
		t->size = (uint32_t)n;                                                             \
		return old;                                                                        \
	}

AP_DEFINE_TABLE(funcref, wasm_rt_funcref_null_value)
AP_DEFINE_TABLE(externref, wasm_rt_externref_null_value)

/* ---- the host imports ---- */

struct ap_aot_inst;

struct Z_env_instance_t {
	ap_host_fn host;
	void *ctx;
	struct ap_aot_inst *ai;
};

struct ap_aot_inst {
	Z_apf_instance_t inst;
	struct Z_env_instance_t env;
	u64 *fuel;
	u32 *depth;
	wasm_rt_memory_t *mem;
};

static u64 ap_host(struct Z_env_instance_t *env, unsigned fn, u64 a, u64 b, u64 c)
{
	struct ap_aot_inst *ai = env->ai;
	wasm_rt_memory_t *mem = ai->mem;
	uint64_t args[3] = { a, b, c }, ret = 0;
	struct ap_hostcall hc = { mem->data, mem->size, (int64_t)*ai->fuel };
	int reason = env->host(env->ctx, fn, args, &ret, &hc);
	*ai->fuel = (u64)hc.fuel;
	if (reason)
		ap_trap_host(reason);
	return ret;
}

void Z_envZ_log(struct Z_env_instance_t *env, u32 level, u32 ptr, u32 len)
{
	ap_host(env, AP_HOSTFN_LOG, level, ptr, len);
}

u64 Z_envZ_get_timestamp(struct Z_env_instance_t *env)
{
	return ap_host(env, AP_HOSTFN_GET_TIMESTAMP, 0, 0, 0);
}

u32 Z_envZ_frame_symbol(struct Z_env_instance_t *env, u32 frame, u32 buf, u32 cap)
{
	return (u32)ap_host(env, AP_HOSTFN_FRAME_SYMBOL, frame, buf, cap);
}

u32 Z_envZ_frame_module(struct Z_env_instance_t *env, u32 frame, u32 buf, u32 cap)
{
	return (u32)ap_host(env, AP_HOSTFN_FRAME_MODULE, frame, buf, cap);
}

u32 Z_envZ_agent_pid(struct Z_env_instance_t *env)
{
	return (u32)ap_host(env, AP_HOSTFN_AGENT_PID, 0, 0, 0);
}

/* ---- the API ---- */

static int ap_map_trap(int code)
{
	switch (code - AP_TRAP_BASE) {
	case WASM_RT_TRAP_OOB:
		return AP_ETRAP_MEMORY;
	case WASM_RT_TRAP_INT_OVERFLOW:
	case WASM_RT_TRAP_DIV_BY_ZERO:
	case WASM_RT_TRAP_INVALID_CONVERSION:
		return AP_ETRAP_ARITH;
	case WASM_RT_TRAP_UNREACHABLE:
		return AP_ETRAP_UNREACHABLE;
	case WASM_RT_TRAP_CALL_INDIRECT:
		return AP_ETRAP_INDIRECT;
	case WASM_RT_TRAP_EXHAUSTION:
		return AP_ETRAP_STACK;
	default:
		return AP_ETRAP_OTHER;
	}
}

static void *ap_aot_create(ap_host_fn host, void *ctx, char *err, size_t errlen)
{
	struct ap_aot_inst *ai = calloc(1, sizeof(*ai));
	AP_JMP_BUF jb;
	int code;

	if (!ai) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ai->env = (struct Z_env_instance_t){ host, ctx, ai };
	ap_jmp = &jb;
	code = AP_SETJMP(jb) ? ap_trap_code : 0;
	if (code == 0) {
		if (!ap_initialized) {
			wasm_rt_init();
			Z_apf_init_module();
		}
#ifdef AP_HAS_IMPORTS
		Z_apf_instantiate(&ai->inst, &ai->env);
#else
		Z_apf_instantiate(&ai->inst);
#endif
	}
	ap_jmp = NULL;
	if (code) {
		snprintf(err, errlen, "instantiation failed: %s",
			 code == AP_TRAP_HOST
			     ? "host trap"
			     : wasm_rt_strerror((wasm_rt_trap_t)(code - AP_TRAP_BASE)));
		Z_apf_free(&ai->inst);
		free(ai);
		wasm_rt_free();
		return NULL;
	}
	ai->fuel = Z_apfZ___ap_fuel(&ai->inst);
	ai->depth = Z_apfZ___ap_depth(&ai->inst);
	ai->mem = Z_apfZ_memory(&ai->inst);
	return ai;
}

static int ap_aot_call(void *p, struct ap_engine_call *c)
{
	struct ap_aot_inst *ai = p;
	AP_JMP_BUF jb;
	int code;

	c->result = 0;
	c->host_trap = 0;
	c->msg[0] = '\0';
	*ai->fuel = (u64)c->fuel;
	*ai->depth = 0;
	wasm_rt_call_stack_depth = 0;
	ap_jmp = &jb;
	code = AP_SETJMP(jb);
	if (code == 0) {
		switch (c->export_id) {
		case AP_EXPORT_ABI_VERSION:
			c->result = Z_apfZ_ap_abi_version(&ai->inst);
			break;
		case AP_EXPORT_EVENT_BUFFER:
			c->result = Z_apfZ_ap_event_buffer(&ai->inst);
			break;
		case AP_EXPORT_FILTER:
			c->result = Z_apfZ_ap_filter(&ai->inst, c->args[0], c->args[1]);
			break;
#ifdef AP_HAS_INIT
		case AP_EXPORT_INIT:
			c->result = Z_apfZ_ap_init(&ai->inst, c->args[0], c->args[1]);
			break;
#endif
#ifdef AP_HAS_INITIALIZE
		case AP_EXPORT_INITIALIZE:
			Z_apfZ__initialize(&ai->inst);
			break;
#endif
		default:
			code = -1;
			break;
		}
	} else {
		code = ap_trap_code;
	}
	ap_jmp = NULL;
	c->fuel = (int64_t)*ai->fuel;
	c->depth = *ai->depth;
	c->mem = ai->mem->data;
	c->mem_size = ai->mem->size;
	if (code == 0)
		return AP_ETRAP_NONE;
	if (code == AP_TRAP_HOST) {
		c->host_trap = ap_host_reason;
		return AP_ETRAP_HOST;
	}
	return code < 0 ? AP_ETRAP_OTHER : ap_map_trap(code);
}

static uint8_t *ap_aot_memory(void *p, uint64_t *size)
{
	struct ap_aot_inst *ai = p;
	*size = ai->mem->size;
	return ai->mem->data;
}

static void ap_aot_destroy(void *p)
{
	struct ap_aot_inst *ai = p;
	if (!ai)
		return;
	Z_apf_free(&ai->inst);
	free(ai);
	wasm_rt_free();
}

__attribute__((visibility("default"))) const struct ap_aot_api ap_aot_api = {
	.version = AP_AOT_API_VERSION,
	.exports = (1u << AP_EXPORT_ABI_VERSION) | (1u << AP_EXPORT_EVENT_BUFFER) |
		   (1u << AP_EXPORT_FILTER)
#ifdef AP_HAS_INIT
		   | (1u << AP_EXPORT_INIT)
#endif
#ifdef AP_HAS_INITIALIZE
		   | (1u << AP_EXPORT_INITIALIZE)
#endif
	    ,
	.max_depth = WASM_RT_MAX_CALL_STACK_DEPTH,
	.create = ap_aot_create,
	.call = ap_aot_call,
	.memory = ap_aot_memory,
	.destroy = ap_aot_destroy,
};
