/* SPDX-License-Identifier: MIT */
/* The agent: options, and the run loop that drives the collectors and writes the output. */
#ifndef AP_AGENT_H
#define AP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"
#include "format/format.h"

enum ap_mode {
	AP_MODE_CPU = 1u << 0,
	AP_MODE_LOCK = 1u << 1,
	AP_MODE_SYSCALL = 1u << 2,
	AP_MODE_GPU = 1u << 3, /* not in --mode all: it attaches uprobes (docs/gpu.md) */
};

#define AP_MAX_PIDS 256
#define AP_MAX_COMMS 16
#define AP_COMM_LEN 16
#define AP_MAX_SYSCALL_FILTER 64
#define AP_MAX_GPU_LIBS 16
/* continuous mode (docs/continuous.md) */
#define AP_MAX_SERVERS 8
#define AP_SERVER_URL_MAX 512
#define AP_MAX_PUSH_LABELS 32
#define AP_PUSH_LABEL_NAME_MAX 64
#define AP_PUSH_LABEL_VALUE_MAX 256

struct ap_agent_opts {
	const char *prog;	 /* name used in messages ("aperture-agent", "aperture record") */
	unsigned int modes;	 /* enum ap_mode bits */
	int pids[AP_MAX_PIDS];	 /* --pid, empty = whole system */
	size_t npids;
	uint64_t duration_ns;	 /* 0 = until SIGINT/SIGTERM */
	uint64_t sample_rate_hz; /* cpu-clock samples per second per CPU */
	uint64_t drain_interval_ns;
	uint32_t map_entries;	 /* --map-entries: per-slot aggregation map size; 0: sized */
	const char *output;	 /* NULL = stdout */
	enum ap_format format;	 /* from --format, else from the output's extension */
	size_t top_n;		 /* --top: also print the top functions to stdout */
	bool include_idle;
	const char *debuginfod; /* --debuginfod URLS: fetch missing debug info (opt-in) */
	bool no_dwarf;		/* --no-dwarf: ELF symbol names only, no inline frames/lines */
	const char *debug_cache; /* --debug-cache DIR: uncompressed debug copies; "" off */
	uint64_t unwind_memory;	 /* --unwind-memory: kernel memory for unwind tables; 0 default */
	bool per_event; /* deliver every event to userspace (filters) instead of in-kernel counts */
	int verbose;

	/* --filter FILE.wasm: every event goes through this WebAssembly module (docs/filters.md);
	 * implies per_event. The other filter_* fields are its settings (0: the default). */
	const char *filter;
	const char *filter_config; /* --filter-config, passed to the module's ap_init */
	enum ap_filter_on_error filter_on_error;
	enum ap_filter_engine filter_engine;
	uint64_t filter_fuel;
	uint32_t filter_memory_pages;
	uint32_t filter_call_depth;

	/* --comm: only tasks whose comm is one of these (syscall, lock) */
	char comms[AP_MAX_COMMS][AP_COMM_LEN];
	size_t ncomms;
	/* --syscall NAME[,NAME]: syscall numbers to trace (syscall mode), empty = all */
	int syscalls[AP_MAX_SYSCALL_FILTER];
	size_t nsyscalls;
	uint64_t min_latency_ns; /* --min-latency: calls at least this slow are "slow events" */
	bool slow_stacks;	 /* --slow-stacks: record user stacks of slow calls */
	bool histograms;	 /* --hist: print latency histograms in text reports */

	/* GPU mode (docs/gpu.md) */
	unsigned int gpu_probes;     /* --gpu-probes: AP_GPU_GROUP_* bits; 0: all */
	const char *gpu_probes_arg;  /* ... as given */
	const char *gpu_libs[AP_MAX_GPU_LIBS]; /* --gpu-lib: files to probe from the start */
	size_t ngpu_libs;

	/* Continuous mode (--server): every push_interval_ns one profile per mode is pushed to
	 * the aggregator (docs/continuous.md). nservers == 0: a one-shot run. */
	char servers[AP_MAX_SERVERS][AP_SERVER_URL_MAX]; /* http(s):// base URLs, in turn */
	size_t nservers;
	uint64_t push_interval_ns;
	char label_names[AP_MAX_PUSH_LABELS][AP_PUSH_LABEL_NAME_MAX + 1]; /* --label N=V */
	char label_values[AP_MAX_PUSH_LABELS][AP_PUSH_LABEL_VALUE_MAX + 1];
	size_t nlabels;
	const char *token_file;	 /* --token-file: Bearer token, read once at start */
	const char *spool_dir;	 /* --spool-dir; NULL: the default */
	uint64_t spool_max;	 /* --spool-max bytes */
	const char *ca_file;	 /* --ca-file: CA bundle for https:// servers */
	uint64_t shutdown_timeout_ns; /* --shutdown-timeout: last delivery attempt's bound */
};

/* Exit codes, shared by the agent and the CLI. */
enum ap_exit {
	AP_EXIT_OK = 0,
	AP_EXIT_FAILURE = 1, /* runtime failure: not root, BPF unsupported, I/O error */
	AP_EXIT_USAGE = 2,   /* bad flags or arguments */
};

/*
 * Parse agent flags (argv[0] is skipped). On a usage error prints the reason and a hint to
 * stderr and returns AP_EXIT_USAGE; after --help returns -1 (caller exits 0); else 0.
 */
int ap_agent_parse_args(int argc, char **argv, struct ap_agent_opts *opts);
void ap_agent_usage(FILE *out, const char *prog);

/* Record with the given options and write the output. Returns an enum ap_exit code. */
int ap_agent_run(const struct ap_agent_opts *opts);

/* parse + run: the whole `aperture-agent` / `aperture record` command. */
int ap_agent_main(int argc, char **argv, const char *prog);

#endif
