// SPDX-License-Identifier: MIT
/* The run loop: start collectors, drain them periodically, stop on time or signal, write. */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "collector.h"
#include "unwinder.h"
#include "filter_hook.h"
#include "log.h"
#include "parse.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

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

static const struct ap_collector_ops *const all_collectors[] = {
	&ap_cpu_collector_ops,
	&ap_lock_collector_ops,
	&ap_syscall_collector_ops,
};

/* Where one mode's profile goes: a temporary file renamed into place at the end. */
struct run_output {
	FILE *f;
	char path[4096];
	char tmp[4200];
};

#define NCOLLECTORS (sizeof(all_collectors) / sizeof(all_collectors[0]))

static void add_run_meta(struct ap_profile *p, const struct ap_agent_opts *opts)
{
	struct utsname u;
	char buf[64];

	if (uname(&u) == 0) {
		ap_profile_set_meta(p, "host", u.nodename);
		ap_profile_set_meta(p, "kernel", u.release);
		ap_profile_set_meta(p, "arch", u.machine);
	}
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)opts->sample_rate_hz);
	ap_profile_set_meta(p, "sample_rate_hz", buf);
	if (opts->npids) {
		char pids[AP_MAX_PIDS * 12] = "";
		size_t off = 0;

		for (size_t i = 0; i < opts->npids && off < sizeof(pids); i++)
			off += (size_t)snprintf(pids + off, sizeof(pids) - off, "%s%d", i ? "," : "",
						opts->pids[i]);
		ap_profile_set_meta(p, "pids", pids);
	}
}

static void add_symbolizer_stats(struct ap_profile *p, const struct ap_symbolizer *sym)
{
	struct ap_symbolizer_stats st;

	ap_symbolizer_get_stats(sym, &st);
	ap_profile_set_stat(p, "processes_snapshotted", st.pids_snapshotted);
	ap_profile_set_stat(p, "symbol_mappings_from_samples", st.mappings_added);
	ap_profile_set_stat(p, "processes_missed", st.pids_missed);
	ap_profile_set_stat(p, "elf_files_loaded", st.elf_loaded);
	ap_profile_set_stat(p, "elf_files_unreadable", st.elf_failed);
	ap_profile_set_stat(p, "frames_unresolved", st.frames_unresolved);
	ap_profile_set_stat(p, "frames_with_source", st.frames_with_source);
	ap_profile_set_stat(p, "inline_frames", st.inline_frames);
	ap_profile_set_stat(p, "inline_chains_truncated", st.inline_truncated);
	ap_profile_set_stat(p, "jit_frames_resolved", st.jit_resolved);
	ap_profile_set_stat(p, "jit_frames_resolved_late", st.jit_resolved_late);
	ap_profile_set_stat(p, "debug_files_found", st.debug_found);
	ap_profile_set_stat(p, "debug_files_failed", st.debug_failed);
	ap_profile_set_stat(p, "debug_files_inflated", st.debug_inflated);
	ap_profile_set_stat(p, "debug_files_inflate_failed", st.debug_inflate_failed);
	ap_profile_set_stat(p, "debuginfod_fetched", st.debuginfod_fetched);
	ap_profile_set_stat(p, "debuginfod_failed", st.debuginfod_failed);
	ap_profile_set_stat(p, "symbol_parse_limits_hit", st.parse_limits_hit);
}

/*
 * With several modes each writes its own file: "out.svg" becomes "out.cpu.svg",
 * "out.lock.svg", ... (the mode goes before the extension, ".pb.gz" counting as one).
 */
static void output_path(const char *output, const char *mode, bool several, char *buf,
			size_t len)
{
	const char *base = strrchr(output, '/'), *ext;

	if (!several) {
		snprintf(buf, len, "%s", output);
		return;
	}
	base = base ? base + 1 : output;
	ext = strstr(base, ".pb.gz");
	if (!ext)
		ext = strrchr(base, '.');
	if (!ext || ext == base)
		snprintf(buf, len, "%s.%s", output, mode);
	else
		snprintf(buf, len, "%.*s.%s%s", (int)(ext - output), output, mode, ext);
}

/*
 * Open the output before recording, so a bad path fails in a second, not after the run. The
 * profile goes to a temporary file renamed over the output at the end: a failed run never
 * leaves a truncated file or destroys an older one.
 */
static int open_output(const struct ap_agent_opts *opts, const char *mode, bool several,
		       struct run_output *o)
{
	size_t len;

	if (!opts->output || strcmp(opts->output, "-") == 0) {
		o->f = stdout;
		return 0;
	}
	output_path(opts->output, mode, several, o->path, sizeof(o->path));
	len = strlen(o->path);
	memcpy(o->tmp, o->path, len);
	snprintf(o->tmp + len, sizeof(o->tmp) - len, ".tmp.%d", (int)getpid());
	o->f = fopen(o->tmp, "wb");
	if (!o->f) {
		fprintf(stderr, "%s: cannot write output '%s': %s\n", opts->prog, o->path,
			strerror(errno));
		return AP_EXIT_USAGE;
	}
	return 0;
}

/* Close the output; rename it into place on success, remove it on failure. */
static int close_output(const struct ap_agent_opts *opts, struct run_output *o, int ret)
{
	if (!o->f || o->f == stdout)
		return ret;
	if (fclose(o->f) != 0 && ret == AP_EXIT_OK) {
		fprintf(stderr, "%s: writing '%s' failed: %s\n", opts->prog, o->path,
			strerror(errno));
		ret = AP_EXIT_FAILURE;
	}
	o->f = NULL;
	if (ret == AP_EXIT_OK && rename(o->tmp, o->path) != 0) {
		fprintf(stderr, "%s: cannot move the profile to '%s': %s\n", opts->prog, o->path,
			strerror(errno));
		ret = AP_EXIT_FAILURE;
	}
	if (ret != AP_EXIT_OK)
		unlink(o->tmp);
	return ret;
}

static int write_output(const struct ap_agent_opts *opts, struct ap_collector *c,
			struct run_output *o)
{
	struct ap_write_opts wo = {
		.value_index = (int)ap_profile_default_value(c->profile),
		.top_n = opts->top_n,
	};
	const char *where = o->f == stdout ? "stdout" : o->path;
	int err = -ENOTSUP;

	if (c->ops->write)
		err = c->ops->write(c, opts->format, o->f, &wo);
	if (err == -ENOTSUP)
		err = ap_format_write(c->profile, opts->format, o->f, &wo);
	if (!err && fflush(o->f) != 0)
		err = -errno;
	if (err) {
		fprintf(stderr, "%s: writing %s output to '%s' failed: %s\n", opts->prog,
			ap_format_name(opts->format), where, strerror(-err));
		return AP_EXIT_FAILURE;
	}
	if (opts->top_n && opts->format != AP_FORMAT_TEXT && o->f != stdout) {
		err = -ENOTSUP;
		if (c->ops->write)
			err = c->ops->write(c, AP_FORMAT_TEXT, stdout, &wo);
		if (err == -ENOTSUP)
			err = ap_write_text(c->profile, stdout, &wo);
		fflush(stdout);
	}
	return err ? AP_EXIT_FAILURE : AP_EXIT_OK;
}

/* The symbolizer's stats are in every mode's profile: they are warned about with the last
 * mode's summary only (with_shared), when all modes have drained. */
static void print_summary(const struct ap_agent_opts *opts, const struct ap_profile *p,
			  bool with_shared)
{
	static const char *const drop_stats[] = {
		"user_stack_errors",	"kernel_stack_errors", "stack_map_full",
		"counts_map_full",	"proc_events_dropped", "drain_errors",
		"sample_events_dropped", "lock_events_lost",    "calls_lost",
		"processes_missed",	"waits_lost",		"holders_lost",
		"stacks_map_full",	"inflight_map_full",
	};
	char dur[32];

	ap_format_duration(ap_profile_duration_ns(p), dur, sizeof(dur));
	ap_info("%s: %s: %llu samples in %s, %zu distinct stacks", opts->prog,
		ap_profile_get_meta(p, "mode"), (unsigned long long)ap_profile_total(p, 0), dur,
		ap_profile_nstacks(p));
	for (size_t i = 0; i < sizeof(drop_stats) / sizeof(drop_stats[0]); i++) {
		uint64_t v = ap_profile_get_stat(p, drop_stats[i]);

		if (!with_shared && !strcmp(drop_stats[i], "processes_missed"))
			continue;
		if (v)
			ap_warn("%s: %s = %llu", ap_profile_get_meta(p, "mode"), drop_stats[i],
				(unsigned long long)v);
	}
	/* the unwinder is shared: say it once */
	if (with_shared && ap_profile_get_stat(p, "unwind_files_over_budget"))
		ap_warn("%llu files' unwind tables did not fit --unwind-memory (%llu MiB peak): "
			"their frames were unwound with frame pointers; raise it for complete "
			"stacks",
			(unsigned long long)ap_profile_get_stat(p, "unwind_files_over_budget"),
			(unsigned long long)ap_profile_get_stat(p, "unwind_table_bytes_peak") >> 20);
}

void ap_explain_bpf_load_error(int err, const char *what, const char *needs, char *msg,
			       size_t len)
{
	if ((err == -EPERM || err == -EACCES) && geteuid() != 0)
		snprintf(msg, len, "permission denied loading the %s BPF programs: run as root "
			 "(needs CAP_BPF and CAP_PERFMON)", what);
	else if (err == -EACCES || err == -EINVAL)
		/* as root, EACCES is the verifier saying no */
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
	for (size_t i = 0; i < np; i++)
		if (pfds[i].revents & POLLIN)
			cols[i].ops->consume(&cols[i]);
}

int ap_agent_run(const struct ap_agent_opts *opts)
{
	struct ap_collector cols[NCOLLECTORS] = { 0 };
	struct ap_unwinder *unwinder = NULL;
	struct ap_unwinder_opts unwinder_opts = { .max_table_bytes = opts->unwind_memory };
	struct run_output outs[NCOLLECTORS] = { 0 };
	struct ap_symbolizer *sym = NULL;
	struct sigaction sa = { 0 };
	uint64_t start_mono, start_wall, deadline, next_drain;
	size_t ncols = 0, nwanted = 0;
	char msg[512] = "";
	int ret = AP_EXIT_FAILURE, err;

	ap_log_set_level(opts->verbose >= 2 ? AP_LOG_DEBUG :
			 opts->verbose == 1 ? AP_LOG_INFO : AP_LOG_WARN);
	libbpf_set_print(libbpf_log);

	for (size_t i = 0; i < NCOLLECTORS; i++)
		nwanted += (opts->modes & all_collectors[i]->mode) != 0;
	for (size_t i = 0, j = 0; i < NCOLLECTORS; i++) {
		if (!(opts->modes & all_collectors[i]->mode))
			continue;
		ret = open_output(opts, all_collectors[i]->name, nwanted > 1, &outs[j++]);
		if (ret)
			goto cleanup;
	}
	ret = AP_EXIT_FAILURE;

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
	sym = ap_symbolizer_new();
	if (!sym) {
		fprintf(stderr, "%s: out of memory\n", opts->prog);
		goto cleanup;
	}
	if (opts->debuginfod) {
		/* "env" takes $DEBUGINFOD_URLS; the fetches run on the symbolizer's own thread */
		err = ap_symbolizer_set_debuginfod(sym, strcmp(opts->debuginfod, "env") == 0 ?
							NULL : opts->debuginfod);
		if (err) {
			fprintf(stderr, "%s: cannot enable debuginfod: %s\n", opts->prog,
				strerror(-err));
			goto cleanup;
		}
	}
	if (opts->no_dwarf)
		ap_symbolizer_set_dwarf(sym, false);
	if (opts->debug_cache) {
		err = ap_symbolizer_set_debug_cache(sym, opts->debug_cache);
		if (err)
			ap_warn("%s: cannot use --debug-cache %s: %s; compressed debug files are "
				"inflated in memory", opts->prog, opts->debug_cache, strerror(-err));
	}
	if (ap_symbolizer_load_kernel(sym))
		ap_warn("%s: cannot read /proc/kallsyms: kernel frames will show as [unknown]",
			opts->prog);
	stop_requested = 0;
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (size_t i = 0; i < NCOLLECTORS; i++) {
		const struct ap_collector_ops *ops = all_collectors[i];

		if (!(opts->modes & ops->mode))
			continue;
		cols[ncols].ops = ops;
		cols[ncols].sym = sym;
		cols[ncols].unwinder = &unwinder;
		cols[ncols].unwinder_opts = &unwinder_opts;
		cols[ncols].profile = ap_profile_new();
		if (!cols[ncols].profile) {
			fprintf(stderr, "%s: out of memory\n", opts->prog);
			goto cleanup;
		}
		ncols++;
	}
	/* filters load (and compile) before anything is recorded; a bad one is a usage error */
	for (size_t i = 0; opts->filter && i < ncols; i++) {
		err = ap_filter_hook_new(opts, cols[i].ops->name, sym, &cols[i].filter, msg,
					 sizeof(msg));
		if (err) {
			fprintf(stderr, "%s: filter %s\n", opts->prog, msg);
			ret = err == -ENOMEM ? AP_EXIT_FAILURE : AP_EXIT_USAGE;
			goto cleanup;
		}
	}
	for (size_t i = 0; i < ncols; i++) {
		err = cols[i].ops->start(&cols[i], opts, msg, sizeof(msg));
		if (err) {
			fprintf(stderr, "%s: %s mode: %s\n", opts->prog, cols[i].ops->name,
				msg[0] ? msg : strerror(-err));
			goto cleanup;
		}
		add_run_meta(cols[i].profile, opts);
	}

	start_mono = now_ns(CLOCK_MONOTONIC);
	start_wall = now_ns(CLOCK_REALTIME);
	deadline = opts->duration_ns ? start_mono + opts->duration_ns : UINT64_MAX;
	next_drain = start_mono + opts->drain_interval_ns;
	if (opts->verbose)
		ap_info("%s: recording%s; Ctrl-C to stop", opts->prog,
			opts->duration_ns ? "" : " until interrupted");

	while (!stop_requested) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (now >= deadline)
			break;
		if (now >= next_drain) {
			for (size_t i = 0; i < ncols; i++) {
				cols[i].ops->drain(&cols[i]);
				/* before gc: an exited process's perf map is complete now */
				ap_symbolizer_resolve_pending(sym, cols[i].profile);
			}
			ap_symbolizer_gc(sym);
			malloc_trim(0); /* give back what symbolizing a burst of new stacks used */
			next_drain = now + opts->drain_interval_ns;
		}
		wait_events(cols, ncols, next_drain < deadline ? next_drain : deadline);
	}

	if (opts->debuginfod) /* let fetches in flight land before the last symbolization */
		ap_symbolizer_debuginfod_wait(sym, 2000);
	/* stop every probe first, then drain both slots: nothing recorded is left behind */
	for (size_t i = 0; i < ncols; i++)
		if (cols[i].ops->stop)
			cols[i].ops->stop(&cols[i]);
	for (size_t i = 0; i < ncols; i++) {
		struct ap_profile *p = cols[i].profile;

		cols[i].ops->drain(&cols[i]);
		cols[i].ops->drain(&cols[i]);
		ap_symbolizer_resolve_pending(sym, p);
		ap_profile_set_time(p, start_wall, now_ns(CLOCK_MONOTONIC) - start_mono);
		cols[i].ops->report_stats(&cols[i]);
		add_symbolizer_stats(p, sym);
		ap_filter_hook_report(cols[i].filter, p);
		print_summary(opts, p, i + 1 == ncols);
		ap_filter_hook_print(cols[i].filter, stderr);
	}
	ret = AP_EXIT_OK;
	for (size_t i = 0; i < ncols && ret == AP_EXIT_OK; i++)
		ret = write_output(opts, &cols[i], &outs[i]);

cleanup:
	for (size_t i = 0; i < ncols; i++) {
		cols[i].ops->destroy(&cols[i]);
		ap_filter_hook_free(cols[i].filter);
		ap_profile_free(cols[i].profile);
	}
	ap_unwinder_free(unwinder); /* after the collectors: their queues use it */
	ap_symbolizer_free(sym);
	for (size_t i = 0; i < NCOLLECTORS; i++)
		ret = close_output(opts, &outs[i], ret);
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
