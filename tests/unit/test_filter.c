// SPDX-License-Identifier: MIT
/*
 * WebAssembly filters (src/filter): the SDK examples, every hostile module of
 * tests/data/filters on both engines, and identical decisions across engines on a generated
 * event stream. The aot engine's cases are skipped (with a note) where wasm2c or a compiler
 * is missing; the interpreter always runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter/engine.h"
#include "filter/filter.h"
#include "filter/wasm_module.h"

static char cache_dir[] = "/tmp/aperture-test-filter-XXXXXX";
static bool aot_ok;
static const enum ap_filter_engine engines[] = { AP_FILTER_ENGINE_INTERP, AP_FILTER_ENGINE_AOT };
/* Run the block once per engine; the aot engine only where it is available. */
#define FOR_EACH_ENGINE(e)                                                                         \
	for (int ei_ = 0; ei_ < 2; ei_++)                                                          \
		for (enum ap_filter_engine e = engines[ei_], once_ = 0;                            \
		     !once_ && (e != AP_FILTER_ENGINE_AOT || aot_ok); once_ = 1)

static const char *path_of(const char *dir, const char *name)
{
	static char bufs[4][512];
	static int i;
	char *b = bufs[i++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s.wasm", dir, name);
	return b;
}
#define TF(name) path_of(AP_TEST_FILTER_DIR, name)
#define SDK(name) path_of(AP_SDK_FILTER_DIR, name)

static void opts_for(struct ap_filter_opts *o, enum ap_filter_engine e)
{
	ap_filter_opts_init(o);
	o->engine = e;
	o->cache_dir = cache_dir;
}

static struct ap_filter *load_opts(const char *path, const char *config,
				   const struct ap_filter_opts *o)
{
	struct ap_filter *f = NULL;
	char err[1024];
	int ret = ap_filter_load(path, config, o, &f, err, sizeof(err));
	if (ret)
		fail_msg("loading %s: %s", path, err);
	return f;
}

static struct ap_filter *load(const char *path, const char *config, enum ap_filter_engine e)
{
	struct ap_filter_opts o;
	opts_for(&o, e);
	return load_opts(path, config, &o);
}

static void make_event(struct ap_filter_event *ev, uint32_t pid, const char *comm, unsigned nk,
		       unsigned nu)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = AP_FILTER_EV_SYSCALL;
	ev->pid = pid;
	ev->tid = pid + 1;
	ev->weight = 5;
	ev->timestamp_ns = 1000 + pid;
	snprintf(ev->comm, sizeof(ev->comm), "%s", comm);
	ev->n_kernel = (uint16_t)nk;
	ev->n_user = (uint16_t)nu;
	for (unsigned i = 0; i < nk; i++)
		ev->frames[i] = 0xffffffff81000000ull + i * 16;
	for (unsigned i = 0; i < nu; i++)
		ev->frames[nk + i] = 0x400000 + i * 16;
	ev->syscall.nr = pid % 300;
	ev->syscall.latency_ns = pid * 10;
}

static int run1(struct ap_filter *f, uint32_t pid, const char *comm)
{
	struct ap_filter_event ev, out;
	make_event(&ev, pid, comm, 1, 2);
	return ap_filter_run(f, &ev, &out);
}

/* ---- SDK examples ---- */

static void test_process_filter(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter_opts o;
		struct ap_filter *f = load(SDK("process_filter"), "pid=42,comm=nginx", e);
		char err[1024];

		assert_int_equal(run1(f, 42, "x"), AP_FILTER_KEEP);
		assert_int_equal(run1(f, 7, "nginx"), AP_FILTER_KEEP);
		assert_int_equal(run1(f, 7, "sshd"), AP_FILTER_DROP);
		assert_int_equal(run1(f, 43, "nginx2"), AP_FILTER_DROP);
		ap_filter_free(f);

		/* comm is NUL-padded and NUL-terminated by the host whatever the caller left */
		f = load(SDK("process_filter"), "comm=ab,comm=abcdefghijklmno", e);
		{
			struct ap_filter_event ev, out;
			make_event(&ev, 7, "ab", 0, 0);
			memcpy(ev.comm + 3, "garbage!!!!!", 12);
			assert_int_equal(ap_filter_run(f, &ev, &out), AP_FILTER_KEEP);
			memcpy(ev.comm, "abcdefghijklmnoX", 16); /* no NUL at all */
			assert_int_equal(ap_filter_run(f, &ev, &out), AP_FILTER_KEEP);
			memcpy(ev.comm, "abcdefghijklmn\0X", 16);
			assert_int_equal(ap_filter_run(f, &ev, &out), AP_FILTER_DROP);
			memcpy(ev.comm, "\0bcdefgh\xff\x80jklmno", 16);
			assert_int_equal(ap_filter_run(f, &ev, &out), AP_FILTER_DROP);
		}
		ap_filter_free(f);

		opts_for(&o, e);
		o.agent_pid = 99;
		f = load_opts(SDK("process_filter"), NULL, &o);
		assert_int_equal(run1(f, 99, "aperture-agent"), AP_FILTER_DROP);
		assert_int_equal(run1(f, 98, "anything"), AP_FILTER_KEEP);
		ap_filter_free(f);

		assert_int_equal(
		    ap_filter_load(SDK("process_filter"), "pid=abc", &o, &f, err, sizeof(err)),
		    -EINVAL);
		assert_non_null(strstr(err, "pid= needs a positive number"));
		assert_int_equal(
		    ap_filter_load(SDK("process_filter"), "color=red", &o, &f, err, sizeof(err)),
		    -EINVAL);
		assert_non_null(strstr(err, "unknown key"));
		assert_null(f);
	}
}

/* Symbols: frame i is "k<i>" in the kernel, "u<i>" in user space, plus a few real names. */
static int symbolize(void *ctx, const struct ap_filter_event *ev, uint32_t frame,
		     enum ap_filter_sym_kind kind, char *buf, size_t len)
{
	static const char *const names[] = { "je_malloc", "pthread_mutex_lock", "main" };
	(void)ctx;
	if (kind == AP_FILTER_SYM_MODULE)
		return snprintf(buf, len, "%s", frame < ev->n_kernel ? "[kernel]" : "app");
	if (ev->pid % 5 == 0)
		return -ENOENT;
	if (frame < ev->n_kernel)
		return snprintf(buf, len, "k%u", frame);
	if (ev->pid % 7 == 0)
		return snprintf(buf, len, "%s", names[(frame + ev->pid) % 3]);
	return snprintf(buf, len, "u%u", frame - ev->n_kernel);
}

static int run_stack(struct ap_filter *f, uint32_t pid, unsigned nk, unsigned nu)
{
	struct ap_filter_event ev, out;
	make_event(&ev, pid, "app", nk, nu);
	return ap_filter_run(f, &ev, &out);
}

static void test_stack_filter(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter_opts o;
		struct ap_filter *f;
		char err[1024];

		opts_for(&o, e);
		o.symbolize = symbolize;
		f = load_opts(SDK("stack_filter"), "function=k1,function=u3", &o);
		assert_int_equal(run_stack(f, 1, 2, 0), AP_FILTER_KEEP); /* k1 */
		assert_int_equal(run_stack(f, 1, 1, 3), AP_FILTER_DROP); /* k0 u0..u2 */
		assert_int_equal(run_stack(f, 1, 0, 4), AP_FILTER_KEEP); /* u3 */
		assert_int_equal(run_stack(f, 5, 3, 5), AP_FILTER_DROP); /* no symbols */
		ap_filter_free(f);
		f = load_opts(SDK("stack_filter"), "contains=mutex", &o);
		assert_int_equal(run_stack(f, 7, 0, 3), AP_FILTER_KEEP);
		assert_int_equal(run_stack(f, 8, 0, 3), AP_FILTER_DROP);
		ap_filter_free(f);
		assert_int_equal(
		    ap_filter_load(SDK("stack_filter"), NULL, &o, &f, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "needs function=NAME"));
		/* without a symbolizer every lookup is unknown: nothing matches */
		o.symbolize = NULL;
		f = load_opts(SDK("stack_filter"), "function=k1", &o);
		assert_int_equal(run_stack(f, 1, 2, 0), AP_FILTER_DROP);
		ap_filter_free(f);
	}
}

static void test_sampling_filter(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter_event ev, out;
		struct ap_filter *f = load(SDK("sampling_filter"), "n=3", e), *g;
		struct ap_filter_stats st;

		for (int i = 0; i < 9; i++)
			assert_int_equal(run1(f, 1, "a"),
					 i % 3 == 0 ? AP_FILTER_KEEP : AP_FILTER_DROP);
		ap_filter_get_stats(f, &st);
		assert_int_equal(st.seen, 9);
		assert_int_equal(st.kept, 3);
		assert_int_equal(st.dropped, 6);
		/* a second instance of the same module has its own counter */
		g = load(SDK("sampling_filter"), "n=4,scale=1", e);
		make_event(&ev, 1, "a", 2, 3);
		assert_int_equal(ap_filter_run(g, &ev, &out), AP_FILTER_TRANSFORM);
		assert_int_equal(out.weight, 4 * ev.weight);
		assert_int_equal(out.n_user, 3);
		assert_memory_equal(out.frames, ev.frames, 5 * sizeof(ev.frames[0]));
		assert_int_equal(ap_filter_run(g, &ev, &out), AP_FILTER_DROP);
		assert_int_equal(run1(f, 1, "a"), AP_FILTER_KEEP); /* f's 10th event */
		ap_filter_free(f);
		ap_filter_free(g);
	}
}

/* Several handles alive at once, different modules and the same module twice: each runs its
 * own code and keeps its own state (the aot engine loads a private object per handle). */
static void test_handles_independent(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter *p = load(SDK("process_filter"), "pid=5", e);
		struct ap_filter *s1 = load(SDK("sampling_filter"), "n=2", e);
		struct ap_filter *s2 = load(SDK("sampling_filter"), "n=3", e);
		struct ap_filter *t = load(TF("trap_kinds"), NULL, e);
		for (int i = 0; i < 6; i++) {
			assert_int_equal(run1(p, 5, "x"), AP_FILTER_KEEP);
			assert_int_equal(run1(p, 6, "x"), AP_FILTER_DROP);
			assert_int_equal(run1(s1, 1, "x"), i % 2 ? AP_FILTER_DROP : AP_FILTER_KEEP);
			assert_int_equal(run1(s2, 1, "x"), i % 3 ? AP_FILTER_DROP : AP_FILTER_KEEP);
			assert_int_equal(run1(t, 7, "x"), AP_FILTER_DROP);
		}
		ap_filter_free(s1);
		s1 = load(TF("bad_result"), NULL, e); /* reuses freed resources */
		assert_int_equal(run1(s1, 1, "x"), AP_FILTER_KEEP);
		assert_int_equal(ap_filter_last_trap(s1, NULL), AP_FILTER_TRAP_BAD_RESULT);
		assert_int_equal(run1(s2, 1, "x"), AP_FILTER_KEEP); /* its 7th event */
		ap_filter_free(p);
		ap_filter_free(s1);
		ap_filter_free(s2);
		ap_filter_free(t);
	}
}

/* ---- hostile modules ---- */

static void test_load_errors(void **state)
{
	static const struct {
		const char *file, *config, *why;
	} cases[] = {
		{ "memory_initial_bomb", NULL, "initial memory of 65536 pages" },
		{ "huge_locals", NULL, "more than 1024 locals" },
		{ "start_function", NULL, "start function" },
		{ "import_wasi", NULL, "WASI is not available" },
		{ "import_unknown", NULL, "env.system, which is not an Aperture host function" },
		{ "import_bad_signature", NULL, "imports env.log with type (i32) -> ()" },
		{ "import_memory", NULL, "may import only host functions" },
		{ "wrong_abi", NULL, "ABI version 99" },
		{ "missing_export", NULL, "missing export 'ap_filter'" },
		{ "bad_buffer", NULL, "ap_event_buffer() returned 65000" },
		{ "bulk_memory", NULL, "bulk-memory" },
		{ "init_loop", "x=1", "ap_init trapped (fuel)" },
		{ "big_table", NULL, "above the limit of 65536" },
		{ "bad_result", "x=1", "takes no configuration" },
		{ "does_not_exist", NULL, "No such file" },
	};
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct ap_filter_opts o;
			struct ap_filter *f = (struct ap_filter *)&o;
			char err[1024] = "";
			opts_for(&o, e);
			assert_true(ap_filter_load(TF(cases[i].file), cases[i].config, &o, &f, err,
						   sizeof(err)) < 0);
			assert_null(f);
			if (!strstr(err, cases[i].why) || !strstr(err, cases[i].file))
				fail_msg("%s: got \"%s\", want \"%s\"", cases[i].file, err,
					 cases[i].why);
		}
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Odd pids trap with `reason`, even pids are dropped; traps keep the event (fail open) or
 * drop it (on_error drop); the instance keeps working after every trap. */
static void check_odd_traps(const char *file, enum ap_filter_trap reason)
{
	FOR_EACH_ENGINE(e)
	{
		for (int policy = 0; policy < 2; policy++) {
			struct ap_filter_opts o;
			struct ap_filter_stats st;
			struct ap_filter *f;
			const char *msg;
			double t0 = now_s();

			opts_for(&o, e);
			o.on_error = policy ? AP_FILTER_ON_ERROR_DROP : AP_FILTER_ON_ERROR_KEEP;
			f = load_opts(TF(file), NULL, &o);
			for (uint32_t pid = 0; pid < 8; pid++) {
				int v = run1(f, pid, "victim");
				if (pid % 2 == 0) {
					assert_int_equal(v, AP_FILTER_DROP);
					assert_int_equal(ap_filter_last_trap(f, NULL),
							 AP_FILTER_TRAP_NONE);
					continue;
				}
				assert_int_equal(v, policy ? AP_FILTER_DROP : AP_FILTER_KEEP);
				if (ap_filter_last_trap(f, &msg) != reason)
					fail_msg("%s on %s: trap %s (%s), want %s", file,
						 ap_filter_get_info(f)->engine,
						 ap_filter_trap_name(ap_filter_last_trap(f, NULL)),
						 msg, ap_filter_trap_name(reason));
			}
			ap_filter_get_stats(f, &st);
			assert_int_equal(st.seen, 8);
			assert_int_equal(st.traps, 4);
			assert_int_equal(st.trap_reasons[reason], 4);
			assert_int_equal(st.kept + st.dropped, 8);
			assert_int_equal(st.dropped, policy ? 8 : 4);
			assert_int_equal(st.fuel_exhausted, reason == AP_FILTER_TRAP_FUEL ? 4 : 0);
			assert_true(now_s() - t0 < 20.0); /* bounded, not hung */
			ap_filter_free(f);
		}
	}
}

static void test_infinite_loop(void **state)
{
	(void)state;
	check_odd_traps("infinite_loop", AP_FILTER_TRAP_FUEL);
}

static void test_deep_recursion(void **state)
{
	(void)state;
	check_odd_traps("deep_recursion", AP_FILTER_TRAP_CALL_DEPTH);
}

static void test_out_of_bounds(void **state)
{
	(void)state;
	check_odd_traps("oob_load", AP_FILTER_TRAP_MEMORY);
	check_odd_traps("oob_store", AP_FILTER_TRAP_MEMORY);
}

static void test_memory_grow_bomb(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		static const uint32_t caps[] = { 0, 16 };
		for (size_t i = 0; i < 2; i++) {
			struct ap_filter_event ev, out;
			struct ap_filter_opts o;
			struct ap_filter *f;
			char want[16];

			opts_for(&o, e);
			o.limits.max_memory_pages = caps[i];
			f = load_opts(TF("memory_grow_bomb"), NULL, &o);
			make_event(&ev, 3, "bomb", 0, 1);
			snprintf(want, sizeof(want), "%04u", caps[i] ? caps[i] : 64);
			for (int k = 0; k < 3; k++) {
				assert_int_equal(ap_filter_run(f, &ev, &out), AP_FILTER_TRANSFORM);
				assert_string_equal(out.tag, want);
			}
			assert_int_equal(ap_filter_get_info(f)->memory_max_pages,
					 caps[i] ? caps[i] : 64);
			ap_filter_free(f);
		}
	}
}

static void test_bad_result_and_transform(void **state)
{
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter_event ev, out;
		struct ap_filter *f = load(TF("bad_result"), NULL, e);
		assert_int_equal(run1(f, 1, "x"), AP_FILTER_KEEP);
		assert_int_equal(ap_filter_last_trap(f, NULL), AP_FILTER_TRAP_BAD_RESULT);
		ap_filter_free(f);

		f = load(TF("bad_transform"), NULL, e);
		for (uint32_t pid = 6; pid < 18; pid++) {
			int v;
			make_event(&ev, pid, "orig", 1, 3);
			v = ap_filter_run(f, &ev, &out);
			if (pid % 6 == 5) {
				assert_int_equal(v, AP_FILTER_TRANSFORM);
				assert_string_equal(out.tag, "ok");
				assert_string_equal(out.comm, "orig");
				assert_int_equal(out.n_kernel, 1);
				assert_int_equal(out.n_user, 1);
				assert_int_equal(out.frames[1], ev.frames[1]);
				assert_int_equal(out.size, AP_FILTER_EVENT_SIZE(2));
			} else {
				assert_int_equal(v, AP_FILTER_KEEP);
				assert_int_equal(ap_filter_last_trap(f, NULL),
						 AP_FILTER_TRAP_BAD_TRANSFORM);
			}
		}
		ap_filter_free(f);
	}
}

static void test_trap_kinds(void **state)
{
	static const enum ap_filter_trap want[8] = {
		AP_FILTER_TRAP_NONE,	      AP_FILTER_TRAP_UNREACHABLE,
		AP_FILTER_TRAP_ARITHMETIC,    AP_FILTER_TRAP_INDIRECT_CALL,
		AP_FILTER_TRAP_INDIRECT_CALL, AP_FILTER_TRAP_HOST_CALL,
		AP_FILTER_TRAP_ARITHMETIC,    AP_FILTER_TRAP_NONE,
	};
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		struct ap_filter *f = load(TF("trap_kinds"), NULL, e);
		for (uint32_t pid = 0; pid < 16; pid++) {
			int v = run1(f, pid, "x");
			assert_int_equal(ap_filter_last_trap(f, NULL), want[pid % 8]);
			assert_int_equal(v, pid % 8 == 7 ? AP_FILTER_DROP : AP_FILTER_KEEP);
		}
		ap_filter_free(f);
	}
}

/* Big native frames: the aot engine runs the module only when its worst-case native stack
 * fits the budget (then the depth limit stops the recursion), else it is not used. */
static void test_big_frames(void **state)
{
	struct ap_filter_opts o;
	struct ap_filter *f = NULL;
	char err[1024];
	(void)state;
	FOR_EACH_ENGINE(e)
	{
		f = load(TF("big_frames"), NULL, e);
		assert_int_equal(run1(f, 126, "x"), AP_FILTER_KEEP);
		assert_int_equal(ap_filter_last_trap(f, NULL), AP_FILTER_TRAP_NONE);
		assert_int_equal(run1(f, 100000, "x"), AP_FILTER_KEEP);
		assert_int_equal(ap_filter_last_trap(f, NULL), AP_FILTER_TRAP_CALL_DEPTH);
		ap_filter_free(f);
	}
	if (!aot_ok)
		return;
	opts_for(&o, AP_FILTER_ENGINE_AOT);
	o.limits.max_native_stack = 256 << 10;
	assert_int_equal(ap_filter_load(TF("big_frames"), NULL, &o, &f, err, sizeof(err)),
			 -ENOTSUP);
	assert_non_null(strstr(err, "native stack"));
	o.engine = AP_FILTER_ENGINE_AUTO; /* falls back to the interpreter, and says why */
	f = load_opts(TF("big_frames"), NULL, &o);
	assert_string_equal(ap_filter_get_info(f)->engine, "interp");
	assert_non_null(strstr(ap_filter_get_info(f)->engine_note, "native stack"));
	ap_filter_free(f);
}

/* A raw module whose one function declares 2^32 - 1 locals: the count must not overflow. */
static void test_locals_overflow(void **state)
{
	static const uint8_t mod[] = {
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, /* magic, version */
		0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,	/* type: () -> i32 */
		0x03, 0x02, 0x01, 0x00,				/* one function */
		0x05, 0x03, 0x01, 0x00, 0x02,			/* memory 2 */
		0x0a, 0x0e, 0x01, 0x0c,				/* code: one body */
		0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7e,	/* 2^32-1 x i64 */
		0x01, 0x7f,					/* + 1 x i32 */
		0x41, 0x01, 0x0b,				/* i32.const 1 end */
	};
	struct ap_filter *f = NULL;
	char err[512];
	(void)state;
	assert_int_equal(
	    ap_filter_load_mem("locals.wasm", mod, sizeof(mod), NULL, NULL, &f, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "locals"));
}

/* Random bytes, truncations and byte flips of a real module: load fails cleanly or the
 * module runs; nothing crashes or hangs. */
static void test_garbage(void **state)
{
	FILE *fp = fopen(SDK("process_filter"), "rb");
	uint8_t good[16384], buf[16384];
	size_t n = fp ? fread(good, 1, sizeof(good), fp) : 0;
	unsigned seed = 12345, loaded = 0, compiled = 0;
	struct ap_filter_opts o, oa;
	(void)state;
	if (fp)
		fclose(fp);
	assert_true(n > 100);
	opts_for(&o, AP_FILTER_ENGINE_INTERP);
	opts_for(&oa, AP_FILTER_ENGINE_AOT);
	for (int round = 0; round < 1500; round++) {
		struct ap_filter *f = NULL;
		char err[512];
		size_t len = n;
		memcpy(buf, good, n);
		seed = seed * 1103515245u + 12345u;
		if (round < 200) { /* pure noise, with a valid header half of the time */
			for (size_t i = 0; i < 256; i++)
				buf[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
			if (round % 2)
				memcpy(buf, good, 8);
			len = 256;
		} else if (round < 500) { /* truncated */
			len = (size_t)(round - 200) * n / 300;
		} else { /* 1-4 flipped bytes */
			for (int k = 0; k <= round % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				buf[8 + (seed >> 8) % (n - 8)] ^=
				    (uint8_t)(1u << ((seed >> 4) % 8));
			}
		}
		if (ap_filter_load_mem("fuzz.wasm", buf, len, "pid=1", &o, &f, err, sizeof(err)) ==
		    0) {
			int v[4];
			loaded++;
			for (uint32_t pid = 0; pid < 4; pid++)
				v[pid] = run1(f, pid, "x");
			ap_filter_free(f);
			/* a few of the mutants that load also go through wasm2c and cc */
			if (aot_ok && round >= 500 && compiled < 8 &&
			    ap_filter_load_mem("fuzz.wasm", buf, len, "pid=1", &oa, &f, err,
					       sizeof(err)) == 0) {
				compiled++;
				for (uint32_t pid = 0; pid < 4; pid++)
					assert_int_equal(run1(f, pid, "x"), v[pid]);
				ap_filter_free(f);
			}
		} else {
			assert_null(f);
			assert_true(strncmp(err, "fuzz.wasm: ", 11) == 0);
		}
	}
	assert_true(loaded > 0);
}

/* The metering rewrite of any module that passes parsing, the filter policy and validation
 * is itself valid: checked on the test modules and on thousands of mutants. */
static int instrument_checks(const uint8_t *wasm, size_t len, bool *applied)
{
	struct wasm_limits lim = { .max_module_bytes = 1 << 22,
				   .max_functions = 10000,
				   .max_locals = 1024,
				   .max_memory_pages = 64,
				   .max_table_elems = 65536 };
	struct wasm_instrument_opts io = { .max_call_depth = 128, .max_memory_pages = 64 };
	struct wasm_module m;
	uint8_t *out = NULL;
	size_t outlen;
	char err[512];
	int ret = 0;

	*applied = false;
	if (wasm_module_parse(&m, wasm, len, &lim, err, sizeof(err)) == 0 &&
	    wasm_module_check_filter(&m, &lim, err, sizeof(err)) == 0 &&
	    ap_wabt_validate(wasm, len, err, sizeof(err)) == 0) {
		*applied = true;
		ret = wasm_instrument(&m, &io, &out, &outlen, err, sizeof(err));
		if (!ret)
			ret = ap_wabt_validate(out, outlen, err, sizeof(err));
		if (ret)
			print_message("instrumented module invalid: %s\n", err);
	}
	free(out);
	wasm_module_release(&m);
	return ret;
}

static size_t read_wasm(const char *path, uint8_t *buf, size_t cap)
{
	FILE *fp = fopen(path, "rb");
	size_t n = fp ? fread(buf, 1, cap, fp) : 0;
	if (fp)
		fclose(fp);
	return n;
}

static void test_instrument_valid(void **state)
{
	static const char *const mods[] = { "complex_filter", "trap_kinds",    "loop_n",
					    "recursion_n",    "bad_transform", "deep_recursion" };
	static uint8_t good[65536], buf[65536];
	unsigned seed = 7, applied_count = 0;
	bool applied;
	(void)state;
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		size_t n = read_wasm(TF(mods[i]), good, sizeof(good));
		assert_true(n > 8);
		assert_int_equal(instrument_checks(good, n, &applied), 0);
		assert_true(applied);
		for (int round = 0; round < 600; round++) {
			memcpy(buf, good, n);
			for (int k = 0; k <= round % 3; k++) {
				seed = seed * 1103515245u + 12345u;
				buf[8 + (seed >> 8) % (n - 8)] ^=
				    (uint8_t)(1u << ((seed >> 4) % 8));
			}
			if (instrument_checks(buf, n, &applied))
				fail_msg("%s mutant %d: rewrite produced an invalid module",
					 mods[i], round);
			applied_count += applied;
		}
	}
	assert_true(applied_count > 100);
}

/* ---- both engines, same decisions ---- */

struct decision {
	int verdict;
	enum ap_filter_trap trap;
	uint64_t weight;
	char comm[16], tag[32];
	uint16_t nk, nu;
};

static void run_stream(const char *path, const char *config, enum ap_filter_engine e,
		       const struct ap_filter_limits *lim, struct decision *d, size_t n)
{
	struct ap_filter_opts o;
	struct ap_filter_event ev, out;
	struct ap_filter *f;
	static const char *const comms[] = { "nginx", "redis-server", "sshd", "app", "java" };
	unsigned seed = 42;

	opts_for(&o, e);
	o.symbolize = symbolize;
	if (lim)
		o.limits = *lim;
	f = load_opts(path, config, &o);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		make_event(&ev, (seed >> 8) % 400, comms[(seed >> 20) % 5], (seed >> 4) % 6,
			   (seed >> 12) % 40);
		ev.weight = 1 + (seed >> 24);
		memset(&out, 0, sizeof(out));
		d[i].verdict = ap_filter_run(f, &ev, &out);
		d[i].trap = ap_filter_last_trap(f, NULL);
		d[i].weight = out.weight;
		memcpy(d[i].comm, out.comm, sizeof(d[i].comm));
		memcpy(d[i].tag, out.tag, sizeof(d[i].tag));
		d[i].nk = out.n_kernel;
		d[i].nu = out.n_user;
	}
	ap_filter_free(f);
}

static void compare_engines(const char *path, const char *config,
			    const struct ap_filter_limits *lim, unsigned *kinds)
{
	enum { N = 3000 };
	static struct decision a[N], b[N];
	if (!aot_ok) {
		print_message("SKIP: aot engine unavailable, %s compared on interp only\n", path);
		return;
	}
	run_stream(path, config, AP_FILTER_ENGINE_INTERP, lim, a, N);
	run_stream(path, config, AP_FILTER_ENGINE_AOT, lim, b, N);
	for (size_t i = 0; i < N; i++) {
		if (a[i].verdict != b[i].verdict || a[i].trap != b[i].trap ||
		    (a[i].verdict == AP_FILTER_TRANSFORM && memcmp(&a[i], &b[i], sizeof(a[i]))))
			fail_msg(
			    "%s event %zu: interp %s/%s, aot %s/%s", path, i,
			    ap_filter_verdict_name(a[i].verdict), ap_filter_trap_name(a[i].trap),
			    ap_filter_verdict_name(b[i].verdict), ap_filter_trap_name(b[i].trap));
		kinds[a[i].trap ? 3 : (unsigned)a[i].verdict]++;
	}
}

static void test_engines_identical(void **state)
{
	struct ap_filter_limits small = { .fuel = 3000 }, shallow = { .max_call_depth = 40 };
	unsigned k[4] = { 0 }; /* drop, keep, transform, trap */
	(void)state;
	compare_engines(SDK("process_filter"), "pid=3,pid=5,comm=nginx,comm=java", NULL, k);
	compare_engines(SDK("stack_filter"), "contains=mutex,function=k2", NULL, k);
	compare_engines(SDK("sampling_filter"), "n=7,scale=1,per_pid=1", NULL, k);
	compare_engines(TF("bad_transform"), NULL, NULL, k);
	compare_engines(TF("trap_kinds"), NULL, NULL, k);
	compare_engines(TF("complex_filter"), NULL, NULL, k);
	compare_engines(TF("loop_n"), NULL, &small, k);	       /* fuel runs out at some pids */
	compare_engines(TF("recursion_n"), NULL, &shallow, k); /* depth runs out at some */
	if (aot_ok)
		assert_true(k[0] && k[1] && k[2] && k[3]); /* every outcome was exercised */
}

/* Fuel and depth limits trip at exactly the same pid on both engines. */
static void test_limits_identical(void **state)
{
	(void)state;
	if (!aot_ok) {
		skip();
		return;
	}
	for (int which = 0; which < 2; which++) {
		uint32_t first[2] = { 0, 0 };
		for (size_t ei = 0; ei < 2; ei++) {
			struct ap_filter_opts o;
			struct ap_filter *f;
			opts_for(&o, engines[ei]);
			if (which == 0)
				o.limits.fuel = 2000;
			else
				o.limits.max_call_depth = 20;
			f = load_opts(TF(which ? "recursion_n" : "loop_n"), NULL, &o);
			for (uint32_t pid = 0; pid < 400 && !first[ei]; pid++) {
				run1(f, pid, "x");
				if (ap_filter_last_trap(f, NULL))
					first[ei] = pid;
			}
			assert_int_equal(ap_filter_last_trap(f, NULL),
					 which ? AP_FILTER_TRAP_CALL_DEPTH : AP_FILTER_TRAP_FUEL);
			ap_filter_free(f);
		}
		assert_int_not_equal(first[0], 0);
		assert_int_equal(first[0], first[1]);
		if (which == 1) /* ap_filter + down(19) .. down(0): 21 nested calls */
			assert_int_equal(first[0], 19);
	}
}

/* ---- API edges ---- */

static unsigned log_count;
static void count_log(void *ctx, enum ap_filter_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
	log_count++;
}

static void test_api_edges(void **state)
{
	struct ap_filter_event ev, out;
	struct ap_filter_opts o;
	struct ap_filter_stats st;
	struct ap_filter *f;
	char err[512], big[AP_FILTER_CONFIG_MAX + 2];
	(void)state;

	opts_for(&o, AP_FILTER_ENGINE_INTERP);
	o.log = count_log;
	f = load_opts(TF("trap_kinds"), NULL, &o);
	make_event(&ev, 1, "x", 0, 0);
	ev.n_user = AP_FILTER_MAX_FRAMES + 1;
	assert_int_equal(ap_filter_run(f, &ev, &out), -EINVAL);
	log_count = 0;
	for (int i = 0; i < 500; i++)
		run1(f, 1, "x"); /* unreachable every time */
	ap_filter_get_stats(f, &st);
	assert_int_equal(st.traps, 500);
	assert_true(log_count <= 25);	       /* rate-limited */
	assert_true(st.log_suppressed >= 400); /* and counted */
	ap_filter_free(f);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ap_filter_load(SDK("process_filter"), big, &o, &f, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "above the limit"));
	o.limits.max_call_depth = AP_FILTER_MAX_CALL_DEPTH + 1;
	assert_int_equal(ap_filter_load(SDK("process_filter"), NULL, &o, &f, err, sizeof(err)),
			 -EINVAL);
	ap_filter_free(NULL);
	assert_string_equal(ap_filter_trap_name(AP_FILTER_TRAP_FUEL), "fuel");
}

static int remove_cache(void)
{
	char cmd[sizeof(cache_dir) + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_process_filter),
		cmocka_unit_test(test_stack_filter),
		cmocka_unit_test(test_sampling_filter),
		cmocka_unit_test(test_handles_independent),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_infinite_loop),
		cmocka_unit_test(test_deep_recursion),
		cmocka_unit_test(test_out_of_bounds),
		cmocka_unit_test(test_memory_grow_bomb),
		cmocka_unit_test(test_bad_result_and_transform),
		cmocka_unit_test(test_trap_kinds),
		cmocka_unit_test(test_big_frames),
		cmocka_unit_test(test_locals_overflow),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_instrument_valid),
		cmocka_unit_test(test_engines_identical),
		cmocka_unit_test(test_limits_identical),
		cmocka_unit_test(test_api_edges),
	};
	char why[256];
	int ret;

	if (!mkdtemp(cache_dir)) {
		perror("mkdtemp");
		return 1;
	}
	aot_ok = ap_filter_aot_available(NULL, why, sizeof(why));
	if (!aot_ok)
		printf("SKIP: aot engine cases: %s\n", why);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	remove_cache();
	return ret;
}
