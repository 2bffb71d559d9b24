// SPDX-License-Identifier: MIT
/* Command-line flags of `aperture-agent` and `aperture record`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "agent.h"
#include "lib/label_name.h"
#include "lib/parse.h"
#include "lib/syscalls.h"
#include "gpu/probes.h"

#define DEFAULT_SAMPLE_RATE 99
/* Every sample is an interrupt on every CPU: beyond 10 kHz the profiler is the workload
 * (100 kHz kept a 2-CPU host busy for minutes past --duration). */
#define MAX_SAMPLE_RATE 10000
#define DEFAULT_DRAIN_INTERVAL_NS 1000000000ULL
#define MAX_MAP_ENTRIES (1u << 20)
#define MIN_DRAIN_INTERVAL_NS 10000000ULL
#define MAX_TOP 100000
#define MIN_UNWIND_MEMORY (1ULL << 20)
#define MAX_UNWIND_MEMORY (64ULL << 30)
/* Longer is a typo, not a plan (and a deadline that cannot wrap): recording until stopped
 * is what leaving out --duration is for. */
#define MAX_DURATION_HOURS (366ULL * 24)
#define MAX_DURATION_NS (MAX_DURATION_HOURS * 3600 * 1000000000ULL)
/* The kernel's cap on perf sampling rates (it lowers it itself when sampling interrupts
 * take too long); perf clamps to it, so do we. */
#define PERF_MAX_SAMPLE_RATE_FILE "/proc/sys/kernel/perf_event_max_sample_rate"
/* Continuous mode (docs/continuous.md). */
#define DEFAULT_PUSH_INTERVAL_NS (10 * 1000000000ULL)
#define MIN_PUSH_INTERVAL_NS 1000000000ULL
#define MAX_PUSH_INTERVAL_NS (3600 * 1000000000ULL)
#define DEFAULT_SPOOL_MAX (256ULL << 20)
#define MIN_SPOOL_MAX (1ULL << 20)
#define MAX_SPOOL_MAX (64ULL << 30)
#define DEFAULT_SHUTDOWN_TIMEOUT_NS (10 * 1000000000ULL)
#define MAX_SHUTDOWN_TIMEOUT_NS (600 * 1000000000ULL)

enum long_only_opt {
	OPT_FORMAT = 0x100,
	OPT_TOP,
	OPT_INCLUDE_IDLE,
	OPT_DRAIN_INTERVAL,
	OPT_COMM,
	OPT_SYSCALL,
	OPT_MIN_LATENCY,
	OPT_SLOW_STACKS,
	OPT_HIST,
	OPT_PER_EVENT,
	OPT_DEBUGINFOD,
	OPT_NO_DWARF,
	OPT_DEBUG_CACHE,
	OPT_UNWIND_MEMORY,
	OPT_FILTER,
	OPT_FILTER_CONFIG,
	OPT_FILTER_ON_ERROR,
	OPT_FILTER_ENGINE,
	OPT_FILTER_FUEL,
	OPT_FILTER_MEMORY_PAGES,
	OPT_FILTER_CALL_DEPTH,
	OPT_MAP_ENTRIES,
	OPT_SERVER,
	OPT_PUSH_INTERVAL,
	OPT_LABEL,
	OPT_TOKEN_FILE,
	OPT_SPOOL_DIR,
	OPT_SPOOL_MAX,
	OPT_CA_FILE,
	OPT_SHUTDOWN_TIMEOUT,
	OPT_GPU_PROBES,
	OPT_GPU_LIB,
};

static const struct option long_opts[] = {
	{ "mode", required_argument, NULL, 'm' },
	{ "pid", required_argument, NULL, 'p' },
	{ "duration", required_argument, NULL, 'd' },
	{ "sample-rate", required_argument, NULL, 's' },
	{ "output", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "include-idle", no_argument, NULL, OPT_INCLUDE_IDLE },
	{ "drain-interval", required_argument, NULL, OPT_DRAIN_INTERVAL },
	{ "map-entries", required_argument, NULL, OPT_MAP_ENTRIES },
	{ "comm", required_argument, NULL, OPT_COMM },
	{ "syscall", required_argument, NULL, OPT_SYSCALL },
	{ "min-latency", required_argument, NULL, OPT_MIN_LATENCY },
	{ "slow-stacks", no_argument, NULL, OPT_SLOW_STACKS },
	{ "hist", no_argument, NULL, OPT_HIST },
	{ "per-event", no_argument, NULL, OPT_PER_EVENT },
	{ "debuginfod", required_argument, NULL, OPT_DEBUGINFOD },
	{ "no-dwarf", no_argument, NULL, OPT_NO_DWARF },
	{ "debug-cache", required_argument, NULL, OPT_DEBUG_CACHE },
	{ "unwind-memory", required_argument, NULL, OPT_UNWIND_MEMORY },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "filter-config", required_argument, NULL, OPT_FILTER_CONFIG },
	{ "filter-on-error", required_argument, NULL, OPT_FILTER_ON_ERROR },
	{ "filter-engine", required_argument, NULL, OPT_FILTER_ENGINE },
	{ "filter-fuel", required_argument, NULL, OPT_FILTER_FUEL },
	{ "filter-memory-pages", required_argument, NULL, OPT_FILTER_MEMORY_PAGES },
	{ "filter-call-depth", required_argument, NULL, OPT_FILTER_CALL_DEPTH },
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "push-interval", required_argument, NULL, OPT_PUSH_INTERVAL },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR },
	{ "spool-max", required_argument, NULL, OPT_SPOOL_MAX },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
	{ "gpu-probes", required_argument, NULL, OPT_GPU_PROBES },
	{ "gpu-lib", required_argument, NULL, OPT_GPU_LIB },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void ap_agent_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s --mode MODE[,MODE...] [options]\n"
		"\n"
		"Sample the running system with eBPF and write a profile.\n"
		"\n"
		"  -m, --mode MODE          what to profile: cpu, lock, syscall, gpu, all\n"
		"                           (comma-separated; several modes write one file each;\n"
		"                           all = cpu,lock,syscall: gpu attaches uprobes, ask for it)\n"
		"  -p, --pid PID            only this process and all its threads (repeatable)\n"
		"  -d, --duration TIME      stop after TIME (e.g. 500ms, 10s, 5m, 1h; at most %lluh);\n"
		"                           default: until SIGINT/SIGTERM (a second one quits\n"
		"                           without writing)\n"
		"  -s, --sample-rate HZ     samples per second per CPU (default %d, at most %d and\n"
		"                           the kernel's perf_event_max_sample_rate)\n"
		"  -o, --output FILE        write here (default: text report to stdout)\n"
		"      --format FMT         svg | folded | pprof | json | text | trace (gpu mode)\n"
		"                           (default: from the output's extension: .svg,\n"
		"                           .folded/.txt, .pb.gz/.pprof, .trace.json, .json; must\n"
		"                           agree with it)\n"
		"      --top N              also print the N hottest functions to stdout\n"
		"      --include-idle       keep samples of idle CPUs (the swapper task)\n"
		"      --map-entries N      entries of each in-kernel counts and stacks map (cpu;\n"
		"                           default: CPUs x rate x drain interval, 1024..16384;\n"
		"                           max %u); samples that do not fit are counted\n"
		"      --comm NAME          only tasks with this name (repeatable; lock, syscall)\n"
		"      --syscall NAME[,..]  only these syscalls (syscall mode)\n"
		"      --min-latency TIME   calls at least this slow count as slow events (syscall)\n"
		"      --slow-stacks        record the user stacks of slow calls (syscall)\n"
		"      --hist               print latency histograms in the text report\n"
		"      --gpu-probes GROUPS  gpu mode: launch,memory,copy,sync (default: all; each\n"
		"                           probed call costs a uprobe, docs/gpu.md)\n"
		"      --gpu-lib FILE       gpu mode: also probe this file from the start (a CUDA\n"
		"                           program or library not yet running; repeatable)\n"
		"      --debuginfod URLS    fetch missing debug info from these debuginfod servers\n"
		"                           ('env': $DEBUGINFOD_URLS); off by default\n"
		"      --no-dwarf           function names from ELF symbol tables only: no inline\n"
		"                           frames or file:line\n"
		"      --debug-cache DIR    keep uncompressed copies of compressed debug files here\n"
		"                           (default /var/cache/aperture/inflated, or under\n"
		"                           $APERTURE_CACHE_DIR); 'off' inflates them in memory\n"
		"      --unwind-memory SIZE kernel memory for the unwind tables of binaries without\n"
		"                           frame pointers (default 128M; e.g. 64M, 1G)\n"
		"      --per-event          aggregate in the agent, event by event, instead of in\n"
		"                           the kernel (what filters use; for checking and debugging)\n"
		"\n"
		"Continuous mode (docs/continuous.md): push one profile per mode every interval\n"
		"to an aperture-aggregator; without --duration until SIGTERM/SIGINT:\n"
		"      --server URL[,URL..] aggregator base URLs (http:// or https://), tried in\n"
		"                           turn when one fails; --output is refused with it\n"
		"      --push-interval TIME how much each push covers (default 10s; 1s..1h)\n"
		"      --label NAME=VALUE   a label on every push (repeatable, at most %d; NAME\n"
		"                           [A-Za-z_][A-Za-z0-9_.]*; host and mode are set)\n"
		"      --token-file FILE    send 'Authorization: Bearer' with the token in FILE\n"
		"      --spool-dir DIR      failed pushes wait here for their retry (default\n"
		"                           /var/lib/aperture/spool as root, else a cache dir)\n"
		"      --spool-max SIZE     bound of the spool; the oldest push goes first\n"
		"                           (default 256M)\n"
		"      --ca-file FILE       CA certificates for https:// servers\n"
		"      --shutdown-timeout TIME\n"
		"                           on SIGTERM, how long the last pushes may take\n"
		"                           (default 10s); what is left stays in the spool\n"
		"\n"
		"  -v, --verbose            more diagnostics (repeat for debug)\n"
		"  -h, --help               this help\n"
		"\n"
		"WebAssembly event filters (docs/filters.md); a filter implies --per-event:\n"
		"      --filter FILE.wasm   keep, drop or transform every event with this module\n"
		"      --filter-config STR  passed once to the module's ap_init (key=value,...)\n"
		"      --filter-on-error keep|drop\n"
		"                           what a trapping filter call does to its event\n"
		"                           (default keep: fail open)\n"
		"      --filter-engine auto|interp|aot\n"
		"                           aot compiles the module with wasm2c and cc at load;\n"
		"                           auto (default) falls back to the interpreter\n"
		"      --filter-fuel N      instruction budget per event (default %llu)\n"
		"      --filter-memory-pages N\n"
		"                           linear memory cap in 64 KiB pages (default %u, max %u)\n"
		"      --filter-call-depth N\n"
		"                           nested call limit (default %u, max %u)\n",
		prog, MAX_DURATION_HOURS, DEFAULT_SAMPLE_RATE, MAX_SAMPLE_RATE, MAX_MAP_ENTRIES,
		AP_MAX_PUSH_LABELS, (unsigned long long)AP_FILTER_DEFAULT_FUEL,
		AP_FILTER_DEFAULT_MEMORY_PAGES, AP_FILTER_MAX_MEMORY_PAGES,
		AP_FILTER_DEFAULT_CALL_DEPTH, AP_FILTER_MAX_CALL_DEPTH);
}

/* Print "prog: <message>" and the --help hint; returns AP_EXIT_USAGE. */
static int usage_error(const struct ap_agent_opts *opts, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const struct ap_agent_opts *opts, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", opts->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", opts->prog);
	return AP_EXIT_USAGE;
}

static int parse_modes(struct ap_agent_opts *opts, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "cpu") == 0) {
			opts->modes |= AP_MODE_CPU;
		} else if (strcmp(tok, "lock") == 0) {
			opts->modes |= AP_MODE_LOCK;
		} else if (strcmp(tok, "syscall") == 0) {
			opts->modes |= AP_MODE_SYSCALL;
		} else if (strcmp(tok, "gpu") == 0) {
			opts->modes |= AP_MODE_GPU;
		} else if (strcmp(tok, "all") == 0) {
			opts->modes |= AP_MODE_CPU | AP_MODE_LOCK | AP_MODE_SYSCALL;
		} else {
			ret = usage_error(opts, "unknown mode '%s' (available: cpu, lock, syscall, gpu, all)",
					  tok);
			break;
		}
	}
	free(copy);
	return ret;
}

/* --syscall read,write: names from the build's syscall table for this architecture
 * (repeatable; a name given twice counts once). */
static int parse_syscalls(struct ap_agent_opts *opts, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	size_t named = 0;
	int ret = 0, nr;

	if (!copy)
		return AP_EXIT_FAILURE;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		nr = ap_syscall_from_name(tok);
		if (nr < 0) {
			ret = usage_error(opts, "unknown syscall '%.40s' (not in the %s syscall table)",
					  tok, ap_syscall_arch());
			break;
		}
		named++;
		for (i = 0; i < opts->nsyscalls && opts->syscalls[i] != nr; i++)
			;
		if (i < opts->nsyscalls)
			continue;
		if (opts->nsyscalls == AP_MAX_SYSCALL_FILTER) {
			ret = usage_error(opts, "too many --syscall names (at most %d)",
					  AP_MAX_SYSCALL_FILTER);
			break;
		}
		opts->syscalls[opts->nsyscalls++] = nr;
	}
	if (!ret && !named)
		ret = usage_error(opts, "--syscall needs names, e.g. --syscall read,openat");
	free(copy);
	return ret;
}

static int check_pid_exists(const struct ap_agent_opts *opts, int pid, const char *arg)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st) != 0)
		return usage_error(opts, "no such process: %s", arg);
	return 0;
}

/* --server URL[,URL...]: http:// or https:// URLs without spaces or control characters;
 * repeatable, the lists add up. */
static int parse_servers(struct ap_agent_opts *opts, const char *arg)
{
	const char *p = arg;

	if (!*arg)
		return usage_error(opts, "empty --server: give http://HOST:PORT (or https://)");
	while (*p) {
		size_t n = strcspn(p, ",");
		size_t scheme = strncmp(p, "http://", 7) == 0	 ? 7 :
				strncmp(p, "https://", 8) == 0 ? 8 : 0;

		if (!scheme || n <= scheme)
			return usage_error(opts,
					   "invalid --server '%.*s': expected http://HOST[:PORT] or "
					   "https://HOST[:PORT]",
					   (int)(n > 200 ? 200 : n), p);
		if (n >= AP_SERVER_URL_MAX)
			return usage_error(opts, "--server URL longer than %d characters",
					   AP_SERVER_URL_MAX - 1);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
				return usage_error(opts, "invalid --server '%.*s': a URL has no spaces "
						   "or control characters", (int)(n > 200 ? 200 : n), p);
		if (opts->nservers == AP_MAX_SERVERS)
			return usage_error(opts, "too many --server URLs (at most %d)",
					   AP_MAX_SERVERS);
		memcpy(opts->servers[opts->nservers], p, n);
		opts->servers[opts->nservers][n] = '\0';
		/* the API's paths are appended: drop a trailing slash */
		for (size_t e = n; e > scheme + 1 && opts->servers[opts->nservers][e - 1] == '/';)
			opts->servers[opts->nservers][--e] = '\0';
		opts->nservers++;
		p += n + (p[n] == ',');
		if (p[-1] == ',' && !*p)
			return usage_error(opts, "invalid --server '%s': empty URL after ','", arg);
	}
	return 0;
}

/* --label NAME=VALUE: validated here so that a bad one fails at start, not at every push. */
static int parse_label(struct ap_agent_opts *opts, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0, vlen;

	if (!eq || !ap_label_name_valid(arg, n, AP_PUSH_LABEL_NAME_MAX))
		return usage_error(opts,
				   "invalid --label '%.200s': expected NAME=VALUE, NAME of 1 to %d "
				   "characters [A-Za-z_][A-Za-z0-9_.]*",
				   arg, AP_PUSH_LABEL_NAME_MAX);
	vlen = strlen(eq + 1);
	if (!vlen || vlen > AP_PUSH_LABEL_VALUE_MAX)
		return usage_error(opts, "invalid --label '%.200s': the value has 1 to %d bytes",
				   arg, AP_PUSH_LABEL_VALUE_MAX);
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)eq[1 + i] < ' ' || eq[1 + i] == 0x7f)
			return usage_error(opts, "invalid --label '%.200s': control character in "
					   "the value", arg);
	if (n == 4 && strncmp(arg, "mode", 4) == 0)
		return usage_error(opts, "--label mode=...: the agent sets mode on every push");
	for (size_t i = 0; i < opts->nlabels; i++)
		if (strlen(opts->label_names[i]) == n && strncmp(opts->label_names[i], arg, n) == 0)
			return usage_error(opts, "--label %.*s given twice", (int)n, arg);
	if (opts->nlabels == AP_MAX_PUSH_LABELS)
		return usage_error(opts, "too many --label (at most %d)", AP_MAX_PUSH_LABELS);
	memcpy(opts->label_names[opts->nlabels], arg, n);
	opts->label_names[opts->nlabels][n] = '\0';
	memcpy(opts->label_values[opts->nlabels], eq + 1, vlen + 1);
	opts->nlabels++;
	return 0;
}

/* The continuous-mode flags need --server; --output is one-shot. */
static int check_continuous(struct ap_agent_opts *opts, const char *push_flag)
{
	if (!opts->nservers) {
		if (push_flag)
			return usage_error(opts, "%s needs --server URL (continuous mode)", push_flag);
		return 0;
	}
	if (opts->output)
		return usage_error(opts,
				   "--output is for one-shot runs: with --server every interval is "
				   "pushed (query the aggregator, or drop --server)");
	if (opts->top_n)
		return usage_error(opts, "--top is for one-shot runs, not with --server");
	return 0;
}

/* --format svg -o x.pb.gz would write SVG into a file every tool reads as pprof. An unknown
 * extension is the user's business; ".txt" also suits the text report. */
static int check_format_matches_path(const struct ap_agent_opts *opts)
{
	size_t len = strlen(opts->output);
	enum ap_format by_ext;

	if (ap_format_from_path(opts->output, &by_ext) || by_ext == opts->format)
		return 0;
	if (opts->format == AP_FORMAT_TEXT && len > 4 &&
	    strcasecmp(opts->output + len - 4, ".txt") == 0)
		return 0;
	return usage_error(opts,
			   "--format %s contradicts the extension of '%s' (%s): rename the output "
			   "or drop --format",
			   ap_format_name(opts->format), opts->output, ap_format_name(by_ext));
}

/* Above the kernel's perf_event_max_sample_rate the kernel would throttle the events (and
 * the host): sample at the limit instead, and say so. */
static void clamp_sample_rate(struct ap_agent_opts *opts)
{
	FILE *f = fopen(PERF_MAX_SAMPLE_RATE_FILE, "re");
	unsigned long long max = 0;
	int n;

	if (!f)
		return; /* no such knob: nothing to clamp to */
	n = fscanf(f, "%llu", &max);
	fclose(f);
	if (n != 1 || max == 0 || opts->sample_rate_hz <= max)
		return;
	fprintf(stderr,
		"%s: warning: --sample-rate %llu Hz is above the kernel's limit of %llu Hz (%s): "
		"sampling at %llu Hz\n",
		opts->prog, (unsigned long long)opts->sample_rate_hz, max,
		PERF_MAX_SAMPLE_RATE_FILE, max);
	opts->sample_rate_hz = max;
}

int ap_agent_parse_args(int argc, char **argv, struct ap_agent_opts *opts)
{
	const char *prog = opts->prog ? opts->prog : "aperture-agent";
	const char *filter_settings = NULL; /* the last --filter-* setting given */
	const char *push_flag = NULL;	    /* the last continuous-mode setting given */
	uint64_t v;
	int c, err, pid;

	memset(opts, 0, sizeof(*opts));
	opts->prog = prog;
	opts->sample_rate_hz = DEFAULT_SAMPLE_RATE;
	opts->drain_interval_ns = DEFAULT_DRAIN_INTERVAL_NS;
	opts->push_interval_ns = DEFAULT_PUSH_INTERVAL_NS;
	opts->spool_max = DEFAULT_SPOOL_MAX;
	opts->shutdown_timeout_ns = DEFAULT_SHUTDOWN_TIMEOUT_NS;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:p:d:s:o:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			err = parse_modes(opts, optarg);
			if (err)
				return err < 0 ? AP_EXIT_FAILURE : err;
			break;
		case 'p':
			if (ap_parse_pid(optarg, &pid))
				return usage_error(opts, "invalid pid '%s': expected a positive number",
						   optarg);
			if (check_pid_exists(opts, pid, optarg))
				return AP_EXIT_USAGE;
			if (opts->npids == AP_MAX_PIDS)
				return usage_error(opts, "too many --pid (at most %d)", AP_MAX_PIDS);
			opts->pids[opts->npids++] = pid;
			break;
		case 'd':
			err = ap_parse_duration_ns(optarg, &opts->duration_ns);
			if (err == -EINVAL)
				return usage_error(opts,
						   "invalid duration '%s': use a positive number with "
						   "an optional unit ms, s, m or h (e.g. 10s)",
						   optarg);
			if (err || opts->duration_ns > MAX_DURATION_NS)
				return usage_error(opts,
						   "invalid duration '%s': at most %lluh (leave out "
						   "--duration to record until SIGINT/SIGTERM)",
						   optarg, MAX_DURATION_HOURS);
			break;
		case 's':
			if (ap_parse_u64(optarg, 1, MAX_SAMPLE_RATE, &v))
				return usage_error(opts, "invalid sample rate '%s': expected 1..%d (Hz)",
						   optarg, MAX_SAMPLE_RATE);
			opts->sample_rate_hz = v;
			break;
		case 'o':
			opts->output = optarg;
			break;
		case OPT_FORMAT:
			if (ap_format_from_name(optarg, &opts->format))
				return usage_error(opts,
						   "unknown format '%s' (svg, folded, pprof, json, text, "
						   "trace)",
						   optarg);
			break;
		case OPT_TOP:
			if (ap_parse_u64(optarg, 1, MAX_TOP, &v))
				return usage_error(opts, "invalid --top '%s': expected 1..%d", optarg,
						   MAX_TOP);
			opts->top_n = v;
			break;
		case OPT_INCLUDE_IDLE:
			opts->include_idle = true;
			break;
		case OPT_DRAIN_INTERVAL:
			if (ap_parse_duration_ns(optarg, &opts->drain_interval_ns) ||
			    opts->drain_interval_ns < MIN_DRAIN_INTERVAL_NS)
				return usage_error(opts, "invalid drain interval '%s' (at least %llums)",
						   optarg, MIN_DRAIN_INTERVAL_NS / 1000000);
			break;
		case OPT_MAP_ENTRIES:
			if (ap_parse_u64(optarg, 1, MAX_MAP_ENTRIES, &v))
				return usage_error(opts,
						   "invalid --map-entries '%s': expected 1..%u "
						   "(entries of each counts and stacks map)",
						   optarg, MAX_MAP_ENTRIES);
			opts->map_entries = (uint32_t)v;
			break;
		case OPT_COMM:
			if (!optarg[0] || strlen(optarg) >= AP_COMM_LEN)
				return usage_error(opts,
						   "invalid --comm '%s': a task name has 1 to %d characters",
						   optarg, AP_COMM_LEN - 1);
			if (opts->ncomms == AP_MAX_COMMS)
				return usage_error(opts, "too many --comm (at most %d)", AP_MAX_COMMS);
			strcpy(opts->comms[opts->ncomms++], optarg);
			break;
		case OPT_SYSCALL:
			err = parse_syscalls(opts, optarg);
			if (err)
				return err;
			break;
		case OPT_MIN_LATENCY:
			if (ap_parse_duration_ns(optarg, &opts->min_latency_ns))
				return usage_error(opts,
						   "invalid --min-latency '%s': use e.g. 500us, 1ms, 2s",
						   optarg);
			break;
		case OPT_SLOW_STACKS:
			opts->slow_stacks = true;
			break;
		case OPT_HIST:
			opts->histograms = true;
			break;
		case OPT_PER_EVENT:
			opts->per_event = true;
			break;
		case OPT_GPU_PROBES: {
			char why[160];

			if (ap_gpu_groups_parse(optarg, &opts->gpu_probes, why, sizeof(why)))
				return usage_error(opts, "invalid --gpu-probes '%.60s': %s", optarg,
						   why);
			opts->gpu_probes_arg = optarg;
			break;
		}
		case OPT_GPU_LIB:
			if (opts->ngpu_libs == AP_MAX_GPU_LIBS)
				return usage_error(opts, "too many --gpu-lib (at most %d)",
						   AP_MAX_GPU_LIBS);
			opts->gpu_libs[opts->ngpu_libs++] = optarg;
			break;
		case OPT_NO_DWARF:
			opts->no_dwarf = true;
			break;
		case OPT_DEBUG_CACHE:
			if (!*optarg)
				return usage_error(opts, "empty --debug-cache: give a directory or 'off'");
			opts->debug_cache = strcmp(optarg, "off") == 0 ? "" : optarg;
			break;
		case OPT_UNWIND_MEMORY:
			if (ap_parse_size(optarg, MIN_UNWIND_MEMORY, MAX_UNWIND_MEMORY, &v))
				return usage_error(opts,
						   "invalid --unwind-memory '%s': expected a size from "
						   "%lluM to %lluG (e.g. 256M)",
						   optarg, MIN_UNWIND_MEMORY >> 20, MAX_UNWIND_MEMORY >> 30);
			opts->unwind_memory = v;
			break;
		case OPT_DEBUGINFOD:
			if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0 &&
			    strcmp(optarg, "env") != 0)
				return usage_error(opts,
						   "invalid --debuginfod '%s': give http(s):// URLs "
						   "(space-separated) or 'env' for $DEBUGINFOD_URLS",
						   optarg);
			opts->debuginfod = optarg;
			break;
		case OPT_FILTER:
			if (!optarg[0])
				return usage_error(opts, "--filter needs a file (FILE.wasm)");
			opts->filter = optarg;
			break;
		case OPT_FILTER_CONFIG:
			if (strlen(optarg) > AP_FILTER_CONFIG_MAX)
				return usage_error(opts, "--filter-config is longer than %d bytes",
						   AP_FILTER_CONFIG_MAX);
			opts->filter_config = optarg;
			filter_settings = "--filter-config";
			break;
		case OPT_FILTER_ON_ERROR:
			if (ap_filter_parse_on_error(optarg, &opts->filter_on_error))
				return usage_error(opts, "invalid --filter-on-error '%s' (keep or drop)",
						   optarg);
			filter_settings = "--filter-on-error";
			break;
		case OPT_FILTER_ENGINE:
			if (ap_filter_parse_engine(optarg, &opts->filter_engine))
				return usage_error(opts,
						   "invalid --filter-engine '%s' (auto, interp or aot)",
						   optarg);
			filter_settings = "--filter-engine";
			break;
		case OPT_FILTER_FUEL:
			if (ap_parse_u64(optarg, 1, UINT64_MAX / 2, &v))
				return usage_error(opts,
						   "invalid --filter-fuel '%s': expected a positive number",
						   optarg);
			opts->filter_fuel = v;
			filter_settings = "--filter-fuel";
			break;
		case OPT_FILTER_MEMORY_PAGES:
			if (ap_parse_u64(optarg, 1, AP_FILTER_MAX_MEMORY_PAGES, &v))
				return usage_error(opts,
						   "invalid --filter-memory-pages '%s': expected 1..%u "
						   "(64 KiB pages)",
						   optarg, (unsigned int)AP_FILTER_MAX_MEMORY_PAGES);
			opts->filter_memory_pages = (uint32_t)v;
			filter_settings = "--filter-memory-pages";
			break;
		case OPT_FILTER_CALL_DEPTH:
			if (ap_parse_u64(optarg, 1, AP_FILTER_MAX_CALL_DEPTH, &v))
				return usage_error(opts,
						   "invalid --filter-call-depth '%s': expected 1..%u",
						   optarg, (unsigned int)AP_FILTER_MAX_CALL_DEPTH);
			opts->filter_call_depth = (uint32_t)v;
			filter_settings = "--filter-call-depth";
			break;
		case OPT_SERVER:
			err = parse_servers(opts, optarg);
			if (err)
				return err;
			break;
		case OPT_PUSH_INTERVAL:
			if (ap_parse_duration_ns(optarg, &opts->push_interval_ns) ||
			    opts->push_interval_ns < MIN_PUSH_INTERVAL_NS ||
			    opts->push_interval_ns > MAX_PUSH_INTERVAL_NS)
				return usage_error(opts,
						   "invalid --push-interval '%s': expected 1s to 1h "
						   "(e.g. 10s, 1m)",
						   optarg);
			push_flag = "--push-interval";
			break;
		case OPT_LABEL:
			err = parse_label(opts, optarg);
			if (err)
				return err;
			push_flag = "--label";
			break;
		case OPT_TOKEN_FILE:
			if (!optarg[0])
				return usage_error(opts, "empty --token-file: give the token's file");
			opts->token_file = optarg;
			push_flag = "--token-file";
			break;
		case OPT_SPOOL_DIR:
			if (!optarg[0])
				return usage_error(opts, "empty --spool-dir: give a directory");
			opts->spool_dir = optarg;
			push_flag = "--spool-dir";
			break;
		case OPT_SPOOL_MAX:
			if (ap_parse_size(optarg, MIN_SPOOL_MAX, MAX_SPOOL_MAX, &opts->spool_max))
				return usage_error(opts,
						   "invalid --spool-max '%s': expected a size from 1M "
						   "to 64G (e.g. 256M)",
						   optarg);
			push_flag = "--spool-max";
			break;
		case OPT_CA_FILE:
			if (!optarg[0])
				return usage_error(opts, "empty --ca-file: give a PEM file");
			opts->ca_file = optarg;
			push_flag = "--ca-file";
			break;
		case OPT_SHUTDOWN_TIMEOUT:
			if (ap_parse_duration_ns(optarg, &opts->shutdown_timeout_ns) ||
			    opts->shutdown_timeout_ns > MAX_SHUTDOWN_TIMEOUT_NS)
				return usage_error(opts,
						   "invalid --shutdown-timeout '%s': expected up to 600s "
						   "(e.g. 10s)",
						   optarg);
			push_flag = "--shutdown-timeout";
			break;
		case 'v':
			opts->verbose++;
			break;
		case 'h':
			ap_agent_usage(stdout, prog);
			return -1;
		case ':':
			return usage_error(opts, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error(opts, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(opts, "unexpected argument '%s'", argv[optind]);
	if (!opts->modes)
		return usage_error(opts, "no --mode given (use --mode cpu)");
	if ((opts->gpu_probes_arg || opts->ngpu_libs) && !(opts->modes & AP_MODE_GPU))
		return usage_error(opts, "%s is for --mode gpu",
				   opts->gpu_probes_arg ? "--gpu-probes" : "--gpu-lib");
	if (filter_settings && !opts->filter)
		return usage_error(opts, "%s needs --filter FILE.wasm", filter_settings);
	if (opts->filter)
		opts->per_event = true; /* a filter sees every event before it is aggregated */
	if (opts->slow_stacks && !opts->min_latency_ns)
		return usage_error(opts,
				   "--slow-stacks needs --min-latency (e.g. --min-latency 1ms)");
	err = check_continuous(opts, push_flag);
	if (err)
		return err;
	if (opts->format != AP_FORMAT_NONE && opts->output) {
		err = check_format_matches_path(opts);
		if (err)
			return err;
	}
	if (opts->format == AP_FORMAT_NONE) {
		if (!opts->output)
			opts->format = AP_FORMAT_TEXT;
		else if (ap_format_from_path(opts->output, &opts->format))
			return usage_error(opts,
					   "cannot tell the format of '%s' from its extension: "
					   "use --format svg|folded|pprof|json|text",
					   opts->output);
	}
	/* the Chrome trace is the GPU mode's timeline of calls: no other mode keeps one */
	if (opts->format == AP_FORMAT_TRACE &&
	    (opts->modes & (AP_MODE_CPU | AP_MODE_LOCK | AP_MODE_SYSCALL)))
		return usage_error(opts,
				   "the trace format (a Chrome trace timeline%s) is written only by "
				   "--mode gpu: use svg, folded, pprof, json or text",
				   opts->output ? ", chosen by the extension .trace.json or "
						  ".perfetto.json or by --format"
						: "");
	clamp_sample_rate(opts);
	return 0;
}
