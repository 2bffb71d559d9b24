// SPDX-License-Identifier: MIT
/*
 * The run loop: open the outputs, set up the symbolizer, start the collectors, drain them
 * periodically, stop on time or signal, drain the rest, write. Output files are output.c's,
 * signals signals.c's, the summary summary.c's.
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "caps.h"
#include "collector.h"
#include "continuous.h"
#include "unwind/unwinder.h"
#include "filter_hook.h"
#include "lib/log.h"
#include "output.h"
#include "signals.h"
#include "summary.h"
#include "unwind_events.h"

static const struct ap_collector_ops *const all_collectors[] = {
	&ap_cpu_collector_ops,
	&ap_lock_collector_ops,
	&ap_syscall_collector_ops,
	&ap_gpu_collector_ops,
};

#define NCOLLECTORS (sizeof(all_collectors) / sizeof(all_collectors[0]))

/* Records read per wake-up of the event loop, and per periodic drain: at most a fraction of
 * a second of handling each, so that the loop keeps its drain interval and deadline. */
#define RING_BUDGET_RECORDS 16384
#define DRAIN_BUDGET_RECORDS 16384

/* One run's state, from the outputs to the last write. */
struct run {
	const struct ap_agent_opts *opts;
	struct ap_collector cols[NCOLLECTORS];
	size_t ncols;
	struct ap_output outs[NCOLLECTORS]; /* outs[i] is cols[i]'s */
	size_t nouts;
	struct ap_symbolizer *sym;
	struct ap_unwinder *unwinder; /* shared by the modes, made by the first that asks */
	struct ap_unwinder_opts unwinder_opts;
	uint64_t start_mono, start_wall;
	struct ap_continuous *cont; /* --server: pushes every interval; NULL: one-shot */
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && ap_log_get_level() < AP_LOG_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && ap_log_get_level() < AP_LOG_INFO)
		return 0;
	if (level == LIBBPF_WARN && ap_log_get_level() < AP_LOG_INFO)
		return 0; /* the agent explains failures itself; libbpf's detail is for -v */
	return vfprintf(stderr, fmt, args);
}

/*
 * Can this process load tracing BPF programs at all? Asked first, so that a run without the
 * privileges says exactly that, before any mode warns about what it cannot set up (the
 * unwinder's tables, ...) as if that were the problem. A tracepoint program needs both
 * CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), as every mode's programs do.
 */
static int check_bpf_access(const char *prog)
{
	const struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 }, /* r0 = 0 */
		{ .code = 0x95 },			   /* exit */
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, NULL, "GPL", insns, 2, NULL);

	if (fd >= 0) {
		close(fd);
		return AP_EXIT_OK;
	}
	if (errno == EPERM || errno == EACCES) {
		char msg[512];

		/* the one explanation of refused loads (names a missing capability, else LSM) */
		ap_explain_bpf_load_error(-errno, "agent's", "needs CAP_BPF and CAP_PERFMON, or "
					  "CAP_SYS_ADMIN; run as root", msg, sizeof(msg));
		fprintf(stderr, "%s: %s\n", prog, msg);
		return AP_EXIT_FAILURE;
	}
	/* anything else (no bpf() at all, ...): the modes explain it in their own terms */
	return AP_EXIT_OK;
}

/*
 * Open every mode's output before recording, so a bad path fails in a second, not after the
 * run (output.h: how a regular file is replaced only by a complete profile).
 */
static int open_outputs(struct run *r)
{
	const struct ap_agent_opts *opts = r->opts;
	size_t nwanted = 0;
	char path[4096], msg[512];
	int err;

	for (size_t i = 0; i < NCOLLECTORS; i++)
		nwanted += (opts->modes & all_collectors[i]->mode) != 0;
	for (size_t i = 0; i < NCOLLECTORS; i++) {
		if (!(opts->modes & all_collectors[i]->mode))
			continue;
		if (opts->output)
			ap_output_path(opts->output, all_collectors[i]->name, nwanted > 1, path,
				       sizeof(path));
		err = ap_output_open(&r->outs[r->nouts], opts->output ? path : NULL, msg,
				     sizeof(msg));
		if (err) {
			if (msg[0])
				fprintf(stderr, "%s: cannot write output: %s\n", opts->prog, msg);
			else
				fprintf(stderr, "%s: cannot write output '%s': %s\n", opts->prog,
					opts->output ? path : "stdout", strerror(-err));
			return err == -ENOMEM ? AP_EXIT_FAILURE : AP_EXIT_USAGE;
		}
		r->nouts++;
	}
	return AP_EXIT_OK;
}

static void tune_allocator(void)
{
	/* The symbolizer's and unwinder's helper threads allocate little and rarely: one arena
	 * for all threads keeps their freed memory reusable instead of parked per thread. */
	mallopt(M_ARENA_MAX, 1);
	/* Big transient buffers (a large library's unwind rows, its symbol names) are mapped on
	 * their own: they go back to the system when freed instead of leaving the heap bloated,
	 * and growing them remaps instead of copying. A fixed threshold also stops glibc from
	 * raising it after the first such free. Not lower: the per-drain buffers (a map dump is
	 * about 1 MiB) would then be mapped, faulted in and unmapped every second, which slows
	 * drains enough for lock mode's wait maps to fill under thread-churn. */
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
}

static int setup_symbolizer(struct run *r)
{
	const struct ap_agent_opts *opts = r->opts;
	int err;

	r->sym = ap_symbolizer_new();
	if (!r->sym) {
		fprintf(stderr, "%s: out of memory\n", opts->prog);
		return AP_EXIT_FAILURE;
	}
	if (opts->debuginfod) {
		/* "env" takes $DEBUGINFOD_URLS; the fetches run on the symbolizer's own thread */
		err = ap_symbolizer_set_debuginfod(r->sym, strcmp(opts->debuginfod, "env") == 0 ?
							   NULL : opts->debuginfod);
		if (err) {
			fprintf(stderr, "%s: cannot enable debuginfod: %s\n", opts->prog,
				strerror(-err));
			return AP_EXIT_FAILURE;
		}
	}
	if (opts->no_dwarf)
		ap_symbolizer_set_dwarf(r->sym, false);
	if (opts->debug_cache) {
		err = ap_symbolizer_set_debug_cache(r->sym, opts->debug_cache);
		if (err)
			ap_warn("%s: cannot use --debug-cache %s: %s; compressed debug files are "
				"inflated in memory", opts->prog, opts->debug_cache, strerror(-err));
	}
	return AP_EXIT_OK;
}

/* After the collectors are loaded, not before: loading BPF programs (libbpf reads the kernel's
 * BTF, twice its 5+ MiB, for CO-RE) is the agent's memory peak, and kallsyms (several MiB of
 * names) need not add to it. Nothing is symbolized before record() drains. */
static void load_kernel_symbols(struct run *r)
{
	if (ap_symbolizer_load_kernel(r->sym))
		ap_warn("%s: cannot read /proc/kallsyms: kernel frames will show as [unknown]",
			r->opts->prog);
}

/* One collector per mode asked for, with its profile and (--filter) its filter. */
static int make_collectors(struct run *r)
{
	const struct ap_agent_opts *opts = r->opts;
	char msg[512] = "";
	int err;

	for (size_t i = 0; i < NCOLLECTORS; i++) {
		struct ap_collector *c = &r->cols[r->ncols];

		if (!(opts->modes & all_collectors[i]->mode))
			continue;
		c->ops = all_collectors[i];
		c->sym = r->sym;
		c->unwinder = &r->unwinder;
		c->unwinder_opts = &r->unwinder_opts;
		c->profile = ap_profile_new();
		if (!c->profile) {
			fprintf(stderr, "%s: out of memory\n", opts->prog);
			return AP_EXIT_FAILURE;
		}
		r->ncols++;
	}
	/* filters load (and compile) before anything is recorded; a bad one is a usage error */
	for (size_t i = 0; opts->filter && i < r->ncols; i++) {
		err = ap_filter_hook_new(opts, r->cols[i].ops->name, r->sym, &r->cols[i].filter,
					 msg, sizeof(msg));
		if (err) {
			fprintf(stderr, "%s: filter %s\n", opts->prog, msg);
			return err == -ENOMEM ? AP_EXIT_FAILURE : AP_EXIT_USAGE;
		}
	}
	return AP_EXIT_OK;
}

static int start_collectors(struct run *r)
{
	char msg[512];
	int err;

	for (size_t i = 0; i < r->ncols; i++) {
		msg[0] = '\0';
		err = r->cols[i].ops->start(&r->cols[i], r->opts, msg, sizeof(msg));
		if (err) {
			fprintf(stderr, "%s: %s mode: %s\n", r->opts->prog, r->cols[i].ops->name,
				msg[0] ? msg : strerror(-err));
			return AP_EXIT_FAILURE;
		}
		ap_summary_add_meta(r->cols[i].profile, r->opts);
	}
	return AP_EXIT_OK;
}

void ap_explain_bpf_load_error(int err, const char *what, const char *needs, char *msg,
			       size_t len)
{
	char missing[384];

	/* ap_caps_check() names missing capabilities before loading; this is for a set that
	 * changed since, and for a refusal with every capability held */
	if ((err == -EPERM || err == -EACCES) &&
	    ap_caps_describe_missing(ap_caps_effective(), ap_caps_last_cap(), missing,
				     sizeof(missing)))
		snprintf(msg, len, "permission denied loading the %s BPF programs: %s "
			 "(docs/security.md)", what, missing);
	else if (err == -EPERM)
		snprintf(msg, len, "permission denied loading the %s BPF programs although "
			 "CAP_BPF and CAP_PERFMON are held: a security module or lockdown refuses "
			 "(%s)", what, needs);
	else if (err == -EACCES || err == -EINVAL)
		/* with the capabilities held, EACCES is the verifier saying no */
		snprintf(msg, len, "the kernel refused the %s BPF programs (%s): run with -vv for "
			 "the verifier's log; %s", what, strerror(-err), needs);
	else
		snprintf(msg, len, "cannot load the %s BPF programs: %s (%s)", what,
			 strerror(-err), needs);
}

struct ap_unwinder *ap_collector_unwinder(struct ap_collector *c)
{
	if (!c->unwinder) {
		errno = EINVAL;
		return NULL;
	}
	if (!*c->unwinder)
		*c->unwinder = ap_unwinder_new(c->unwinder_opts);
	return *c->unwinder;
}

/* Wait for events until the next drain, the deadline or a signal. */
static void wait_events(struct ap_collector *cols, size_t n, uint64_t until_ns)
{
	struct pollfd pfds[NCOLLECTORS];
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	int timeout_ms = until_ns > now ? (int)((until_ns - now + 999999) / 1000000) : 0;
	size_t np = 0;

	for (size_t i = 0; i < n; i++) {
		pfds[np].fd = cols[i].ops->poll_fd(&cols[i]);
		pfds[np].events = POLLIN;
		np++;
	}
	if (poll(pfds, np, timeout_ms) <= 0)
		return;
	/* a bounded read: an overloaded host's producers must not keep us from the next drain,
	 * the deadline or a signal (unwind_events.h); the drains read the rest */
	ap_ring_budget(RING_BUDGET_RECORDS);
	for (size_t i = 0; i < np; i++)
		if (pfds[i].revents & POLLIN)
			cols[i].ops->consume(&cols[i]);
	ap_ring_budget(0);
}

/* Drain every drain interval until the deadline or a signal. */
static void record(struct run *r)
{
	const struct ap_agent_opts *opts = r->opts;
	uint64_t deadline, next_drain;

	r->start_mono = now_ns(CLOCK_MONOTONIC);
	r->start_wall = now_ns(CLOCK_REALTIME);
	/* the options bound the duration, so this cannot wrap; saturate all the same */
	deadline = !opts->duration_ns ? UINT64_MAX :
		   opts->duration_ns > UINT64_MAX - r->start_mono ? UINT64_MAX :
		   r->start_mono + opts->duration_ns;
	next_drain = r->start_mono + opts->drain_interval_ns;
	if (r->cont) {
		ap_continuous_start(r->cont, r->start_wall, r->start_mono);
		if (next_drain > ap_continuous_next(r->cont))
			next_drain = ap_continuous_next(r->cont);
	}
	if (opts->verbose)
		ap_info("%s: recording%s; Ctrl-C to stop", opts->prog,
			opts->duration_ns ? "" : " until interrupted");

	while (!ap_signals_stop_requested()) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (now >= deadline)
			break;
		if (now >= next_drain) {
			for (size_t i = 0; i < r->ncols; i++) {
				/* bounded too: a ring the producers keep full must not hold the
				 * loop here; the final drain, after the detach, reads everything */
				ap_ring_budget(DRAIN_BUDGET_RECORDS);
				r->cols[i].ops->drain(&r->cols[i]);
				ap_ring_budget(0);
				/* before gc: an exited process's perf map is complete now */
				ap_symbolizer_resolve_pending(r->sym, r->cols[i].profile);
			}
			if (r->cont) {
				/* the interval's end is a drain: nothing drained twice or left out */
				if (ap_continuous_due(r->cont, now))
					ap_continuous_push(r->cont, r->cols, r->ncols, r->sym, now);
				else
					ap_continuous_observe(r->cont, r->cols, r->ncols);
			}
			ap_symbolizer_gc(r->sym);
			malloc_trim(0); /* give back what symbolizing a burst of new stacks used */
			next_drain = now + opts->drain_interval_ns;
			if (r->cont && next_drain > ap_continuous_next(r->cont))
				next_drain = ap_continuous_next(r->cont);
		}
		wait_events(r->cols, r->ncols, next_drain < deadline ? next_drain : deadline);
	}
}

/* Stop every probe first, then drain both slots: nothing recorded is left behind. Then the
 * stats and the summary of each mode. */
static void final_drain(struct run *r)
{
	if (r->opts->debuginfod) /* let fetches in flight land before the last symbolization */
		ap_symbolizer_debuginfod_wait(r->sym, 2000);
	for (size_t i = 0; i < r->ncols; i++)
		if (r->cols[i].ops->stop)
			r->cols[i].ops->stop(&r->cols[i]);
	for (size_t i = 0; i < r->ncols; i++) {
		struct ap_collector *c = &r->cols[i];
		struct ap_profile *p = c->profile;

		c->ops->drain(c);
		c->ops->drain(c);
		ap_symbolizer_resolve_pending(r->sym, p);
		ap_profile_set_time(p, r->start_wall, now_ns(CLOCK_MONOTONIC) - r->start_mono);
		c->ops->report_stats(c);
		ap_summary_add_symbolizer_stats(p, r->sym);
		ap_filter_hook_report(c->filter, p);
		ap_summary_print(r->opts, p, i + 1 == r->ncols);
		ap_filter_hook_print(c->filter, stderr);
	}
}

/* The mode's own writer, else the generic one. */
static int write_profile(struct ap_collector *c, enum ap_format fmt, FILE *out,
			 const struct ap_write_opts *wo)
{
	int err = -ENOTSUP;

	if (c->ops->write)
		err = c->ops->write(c, fmt, out, wo);
	if (err == -ENOTSUP)
		err = ap_format_write(c->profile, fmt, out, wo);
	return err;
}

static int write_output(const struct ap_agent_opts *opts, struct ap_collector *c,
			struct ap_output *o)
{
	struct ap_write_opts wo = {
		.value_index = (int)ap_profile_default_value(c->profile),
		.top_n = opts->top_n,
	};
	bool to_stdout = o->kind == AP_OUTPUT_STDOUT;
	int err = write_profile(c, opts->format, o->f, &wo);

	if (!err && fflush(o->f) != 0)
		err = -errno;
	if (!err)
		err = ap_output_commit(o);
	if (err) {
		fprintf(stderr, "%s: writing %s output to '%s' failed: %s\n", opts->prog,
			ap_format_name(opts->format), o->path,
			strerror(-ap_output_error(o, err)));
		return AP_EXIT_FAILURE;
	}
	if (opts->top_n && opts->format != AP_FORMAT_TEXT && !to_stdout) {
		err = write_profile(c, AP_FORMAT_TEXT, stdout, &wo);
		fflush(stdout);
	}
	return err ? AP_EXIT_FAILURE : AP_EXIT_OK;
}

static int write_outputs(struct run *r)
{
	int ret = AP_EXIT_OK;

	for (size_t i = 0; i < r->ncols && ret == AP_EXIT_OK; i++)
		ret = write_output(r->opts, &r->cols[i], &r->outs[i]);
	return ret;
}

static void free_run(struct run *r)
{
	for (size_t i = 0; i < r->ncols; i++) {
		r->cols[i].ops->destroy(&r->cols[i]);
		ap_filter_hook_free(r->cols[i].filter);
		ap_profile_free(r->cols[i].profile);
	}
	ap_unwinder_free(r->unwinder); /* after the collectors: their queues use it */
	ap_continuous_free(r->cont);
	ap_symbolizer_free(r->sym);
	/* what was not committed (a failed run) leaves nothing behind */
	for (size_t i = 0; i < r->nouts; i++)
		ap_output_discard(&r->outs[i]);
}

int ap_agent_run(const struct ap_agent_opts *opts)
{
	struct run r = {
		.opts = opts,
		.unwinder_opts = { .max_table_bytes = opts->unwind_memory },
	};
	int ret, err;

	ap_log_set_level(opts->verbose >= 2 ? AP_LOG_DEBUG :
			 opts->verbose == 1 ? AP_LOG_INFO : AP_LOG_WARN);
	libbpf_set_print(libbpf_log);

	/* a missing capability is named before anything else is tried (caps.h) */
	if (ap_caps_check(opts->prog))
		return AP_EXIT_FAILURE;
	ret = check_bpf_access(opts->prog);
	if (!ret && !opts->nservers)
		ret = open_outputs(&r);
	if (!ret && opts->nservers) {
		char msg[512] = "";

		/* a bad token or spool fails now; an earlier run's spool starts going out */
		r.cont = ap_continuous_new(opts, msg, sizeof(msg));
		if (!r.cont) {
			fprintf(stderr, "%s: %s\n", opts->prog, msg);
			ret = AP_EXIT_FAILURE;
		}
	}
	if (ret)
		goto out;
	tune_allocator();
	ret = setup_symbolizer(&r);
	if (ret)
		goto out;
	ap_signals_install(opts->prog, ap_output_remove_temporaries);
	ret = make_collectors(&r);
	if (!ret)
		ret = start_collectors(&r);
	if (ret)
		goto out;
	load_kernel_symbols(&r);
	if (r.cont) {
		char msg[512] = "";

		/* libcurl and its TLS libraries start after the BPF load too (same reason) */
		if (ap_continuous_connect(r.cont, msg, sizeof(msg))) {
			fprintf(stderr, "%s: %s\n", opts->prog, msg);
			ret = AP_EXIT_FAILURE;
			goto out;
		}
	}
	/* every program is attached: keep only what recording needs (caps.c) */
	err = ap_caps_drop_keeping(opts->modes & AP_MODE_GPU);
	if (err)
		ap_warn("%s: cannot drop the capabilities recording does not need: %s", opts->prog,
			strerror(-err));
	record(&r);
	final_drain(&r);
	ret = r.cont ? ap_continuous_finish(r.cont, r.cols, r.ncols, r.sym) : write_outputs(&r);
out:
	free_run(&r);
	return ret;
}

int ap_agent_main(int argc, char **argv, const char *prog)
{
	struct ap_agent_opts opts = { .prog = prog };
	int ret = ap_agent_parse_args(argc, argv, &opts);

	if (ret < 0)
		return AP_EXIT_OK; /* --help */
	if (ret)
		return ret;
	return ap_agent_run(&opts);
}
