// SPDX-License-Identifier: MIT
/* Run metadata and statistics in the profile, and the summary printed at the end. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "lib/log.h"
#include "lib/parse.h"
#include "summary.h"

void ap_summary_add_meta(struct ap_profile *p, const struct ap_agent_opts *opts)
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

void ap_summary_add_symbolizer_stats(struct ap_profile *p, const struct ap_symbolizer *sym)
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
	ap_profile_set_stat(p, "debug_cache_untrusted", st.debug_cache_untrusted);
	ap_profile_set_stat(p, "symbol_parse_limits_hit", st.parse_limits_hit);
	ap_profile_set_stat(p, "debuginfod_fetched", st.debuginfod_fetched);
	ap_profile_set_stat(p, "debuginfod_failed", st.debuginfod_failed);
}

void ap_summary_print(const struct ap_agent_opts *opts, const struct ap_profile *p,
		      bool with_shared)
{
	static const char *const drop_stats[] = {
		"user_stack_errors",	"kernel_stack_errors", "stack_map_full",
		"counts_map_full",	"proc_events_dropped", "drain_errors",
		"sample_events_dropped", "lock_events_lost",    "calls_lost",
		"processes_missed",	"waits_lost",		"holders_lost",
		"stacks_map_full",	"inflight_map_full",
		"gpu_events_lost",	"gpu_inflight_full",   "gpu_nest_overflow",
		"gpu_proc_events_lost", "gpu_attach_failed",
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
	if (with_shared && ap_profile_get_stat(p, "unwind_cache_write_errors"))
		ap_warn("%llu compiled unwind tables could not be written to the cache (disk "
			"full or read-only?): the next run compiles them again",
			(unsigned long long)ap_profile_get_stat(p, "unwind_cache_write_errors"));
}
