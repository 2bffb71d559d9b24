// SPDX-License-Identifier: MIT
/*
 * The GPU mode's text report (docs/gpu.md, "Text"): kernels, API calls, memory, copies,
 * synchronisation, unprobeable binaries, then the warnings (limits hit, joins lost). Each
 * section is a table a reader scans top down; --top bounds the rows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "gpu_internal.h"
#include "lib/parse.h"

#define NAME_MAX_TEXT 100

static const char *dur(uint64_t ns, bool known, char *buf, size_t len)
{
	if (!known)
		return "-";
	return ap_format_duration(ns, buf, len);
}

/* A long (template) kernel name cut to fit a row, with "..." at the end. */
static void name_cut(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s);

	if (n < len && n <= NAME_MAX_TEXT) {
		memcpy(buf, s, n + 1);
		return;
	}
	n = NAME_MAX_TEXT < len - 4 ? NAME_MAX_TEXT : len - 4;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80) /* not inside a UTF-8 sequence */
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
}

/* The stack root first, "main > run > launch", at most 8 frames (the leaf end kept). */
static void text_stack(FILE *out, const struct ap_profile *p, uint32_t stack, const char *pre)
{
	size_t n = 0;
	const uint32_t *frames = ap_profile_stack(p, stack, &n);
	size_t first = n > 8 ? n - 8 : 0;
	char name[256];

	fputs(pre, out);
	if (!frames || !n) {
		fputs("(no stack)\n", out);
		return;
	}
	if (first)
		fputs("... > ", out);
	for (size_t i = first; i < n; i++) /* i-th from the root */
		fprintf(out, "%s%s", i > first ? " > " : "",
			ap_frame_display_name(p, frames[n - 1 - i], name, sizeof(name)));
	fputc('\n', out);
}

static void section_kernels(struct ap_gpu_model *m, FILE *out, size_t top_n)
{
	size_t nk;
	struct gpu_kernel **ks = gpu_sorted_kernels(m, &nk);
	uint64_t launches = 0, gpu = 0, recs = 0;
	char a[32], b[32], c[32], shape[96], name[NAME_MAX_TEXT + 8];

	for (size_t i = 0; i < nk; i++) {
		launches += ks[i]->launches;
		gpu += ks[i]->gpu_total;
		recs += ks[i]->gpu_records;
	}
	fprintf(out, "Kernels: %zu, %" PRIu64 " launches, GPU time %s\n", nk, launches,
		recs ? ap_format_duration(gpu, a, sizeof(a))
		     : "unknown (no activity records: see docs/gpu.md, injection library)");
	if (nk)
		fprintf(out, "  %10s %8s %10s %10s %10s  %-32s %s\n", "launches", "errors",
			"GPU total", "GPU avg", "GPU max", "top shape grid x block (shmem)",
			"kernel [pid]");
	for (size_t i = 0; i < nk && i < top_n; i++) {
		struct gpu_kernel *k = ks[i];

		gpu_sort_kernel(k);
		shape[0] = '\0';
		if (k->nshapes)
			snprintf(shape, sizeof(shape),
				 "(%" PRIu32 ",%" PRIu32 ",%" PRIu32 ")x(%" PRIu32 ",%" PRIu32
				 ",%" PRIu32 ") (%" PRIu32 ")",
				 k->shapes[0].grid[0], k->shapes[0].grid[1], k->shapes[0].grid[2],
				 k->shapes[0].block[0], k->shapes[0].block[1], k->shapes[0].block[2],
				 k->shapes[0].shmem);
		name_cut(gpu_s(m, k->display), name, sizeof(name));
		fprintf(out, "  %10" PRIu64 " %8" PRIu64 " %10s %10s %10s  %-32s %s [%" PRIu32 "]\n",
			k->launches, k->errors, dur(k->gpu_total, k->gpu_records, a, sizeof(a)),
			dur(k->gpu_records ? k->gpu_total / k->gpu_records : 0, k->gpu_records, b,
			    sizeof(b)),
			dur(k->gpu_max, k->gpu_records, c, sizeof(c)), shape, name, k->pid);
		if (k->nstacks)
			text_stack(out, m->p, k->stacks[0].stack, "             from: ");
	}
	if (nk > top_n)
		fprintf(out, "  ... %zu more kernels (use --top, or --format json for all)\n",
			nk - top_n);
	fputc('\n', out);
	free(ks);
}

static void section_api(struct ap_gpu_model *m, FILE *out, size_t top_n)
{
	size_t na;
	struct gpu_api **as = gpu_sorted_apis(m, &na);
	char a[32], e[32];

	fprintf(out, "API calls: %zu functions\n", na);
	if (na)
		fprintf(out, "  %10s %8s %10s  %-32s %s\n", "calls", "errors", "CPU time", "API",
			"errors by name");
	for (size_t i = 0; i < na && i < top_n; i++) {
		const struct gpu_api *x = as[i];

		fprintf(out, "  %10" PRIu64 " %8" PRIu64 " %10s  %-32s ", x->calls, x->errors,
			ap_format_duration(x->cpu_ns, a, sizeof(a)), gpu_s(m, x->name));
		for (size_t j = 0; j < x->nerrs; j++)
			fprintf(out, "%s%s=%" PRIu64, j ? ", " : "",
				ap_gpu_error_name(x->errs[j].code, x->driver, e, sizeof(e)),
				x->errs[j].n);
		if (x->errs_other)
			fprintf(out, ", other=%" PRIu64, x->errs_other);
		fputc('\n', out);
	}
	if (na > top_n)
		fprintf(out, "  ... %zu more\n", na - top_n);
	fputc('\n', out);
	free(as);
}

static size_t live_count(struct ap_gpu_model *m)
{
	size_t n = 0;

	for (size_t b = 0; b < m->procs.nbuckets; b++)
		for (struct ap_hnode *x = m->procs.buckets[b]; x; x = x->next)
			n += ((const struct gpu_proc *)x)->nallocs;
	return n;
}

static void section_memory(struct ap_gpu_model *m, FILE *out, size_t top_n)
{
	const struct gpu_mem *mm = &m->mem;
	char a[32], b[32], c[32];
	size_t shown = 0;

	fprintf(out, "Memory: %" PRIu64 " allocations (%" PRIu64 " failed, %s), %" PRIu64
		" frees (%" PRIu64 " failed, %" PRIu64 " of unknown pointers), live %s, peak %s\n",
		mm->allocations, mm->failed_allocations,
		ap_format_size(mm->allocated_bytes, a, sizeof(a)), mm->frees, mm->failed_frees,
		mm->unknown_frees, ap_format_size(mm->live_bytes, b, sizeof(b)),
		ap_format_size(mm->peak_bytes, c, sizeof(c)));
	for (uint32_t k = 0; k < 4; k++)
		if (mm->by_kind[k].allocations)
			fprintf(out, "  %-12s %" PRIu64 " allocations, %" PRIu64 " failed, %s\n",
				gpu_mem_kind_name(k), mm->by_kind[k].allocations,
				mm->by_kind[k].failed,
				ap_format_size(mm->by_kind[k].bytes, a, sizeof(a)));
	fprintf(out, "  leaks at process exit: %" PRIu64 " (%s)%s\n", mm->leaks,
		ap_format_size(mm->leaked_bytes, a, sizeof(a)),
		m->st.leaks_dropped ? " (some without their stacks: limit)" : "");
	for (size_t i = 0; i < m->nleaks && i < top_n; i++) {
		const struct gpu_leak *l = &m->leaks[i];

		fprintf(out, "    pid %" PRIu32 " 0x%" PRIx64 " %s %s\n", l->pid, l->ptr,
			ap_format_size(l->bytes, a, sizeof(a)), gpu_mem_kind_name(l->kind));
		text_stack(out, m->p, l->stack, "      allocated at: ");
	}
	fprintf(out, "  live at end (processes still running): %zu\n", live_count(m));
	for (size_t bk = 0; bk < m->procs.nbuckets && shown < top_n; bk++) {
		for (struct ap_hnode *x = m->procs.buckets[bk]; x && shown < top_n; x = x->next) {
			const struct gpu_proc *pr = (const struct gpu_proc *)x;

			for (size_t j = 0; j < pr->allocs.nbuckets && shown < top_n; j++) {
				for (struct ap_hnode *y = pr->allocs.buckets[j]; y && shown < top_n;
				     y = y->next) {
					const struct gpu_alloc *al = (const struct gpu_alloc *)y;

					fprintf(out, "    pid %" PRIu32 " 0x%" PRIx64 " %s %s\n",
						pr->pid, al->ptr,
						ap_format_size(al->bytes, a, sizeof(a)),
						gpu_mem_kind_name(al->kind));
					text_stack(out, m->p, al->stack, "      allocated at: ");
					shown++;
				}
			}
		}
	}
	fputc('\n', out);
}

static void copy_row(FILE *out, const char *name, const struct gpu_copy *c)
{
	char a[32], b[32], g[32];

	if (!c->calls && !c->gpu_records)
		return;
	fprintf(out, "  %-8s %8" PRIu64 " %8" PRIu64 " %12s %10s %10s\n", name, c->calls,
		c->errors, ap_format_size(c->bytes, a, sizeof(a)),
		ap_format_duration(c->cpu_ns, b, sizeof(b)),
		c->gpu_records ? ap_format_duration(c->gpu_ns, g, sizeof(g)) : "-");
}

static void section_copies(struct ap_gpu_model *m, FILE *out)
{
	uint64_t calls = m->memset.calls + m->memset.gpu_records;

	for (uint32_t d = 0; d < GPU_NDIRS; d++)
		calls += m->copies[d].calls + m->copies[d].gpu_records;
	fprintf(out, "Copies by direction%s\n", calls ? "" : ": none");
	if (calls)
		fprintf(out, "  %-8s %8s %8s %12s %10s %10s\n", "dir", "calls", "errors", "bytes",
			"CPU time", "GPU time");
	for (uint32_t d = 0; d < GPU_NDIRS; d++)
		copy_row(out, gpu_dir_name(d), &m->copies[d]);
	copy_row(out, "memset", &m->memset);
	fputc('\n', out);
}

static void section_sync(struct ap_gpu_model *m, FILE *out, size_t top_n)
{
	size_t ns;
	struct gpu_sync **ss = gpu_sorted_syncs(m, &ns);
	char a[32], b[32];

	fprintf(out, "Synchronisation (time threads were blocked, by call site): %zu sites\n", ns);
	for (size_t i = 0; i < ns && i < top_n; i++) {
		fprintf(out, "  %10s blocked, max %s, %" PRIu64 " calls  %s\n",
			ap_format_duration(ss[i]->blocked_ns, a, sizeof(a)),
			ap_format_duration(ss[i]->max_ns, b, sizeof(b)), ss[i]->calls,
			gpu_s(m, ss[i]->api));
		text_stack(out, m->p, ss[i]->stack, "             at: ");
	}
	if (ns > top_n)
		fprintf(out, "  ... %zu more\n", ns - top_n);
	fputc('\n', out);
	free(ss);
}

static void section_unprobeable(struct ap_gpu_model *m, FILE *out)
{
	fprintf(out, "Unprobeable binaries: %zu%s\n", m->nunprobeable,
		m->nunprobeable ? " (their CUDA calls are not seen)" : "");
	for (size_t i = 0; i < m->nunprobeable; i++)
		fprintf(out, "  %s (pid %" PRIu32 "%s): %s\n", gpu_s(m, m->unprobeable[i].path),
			m->unprobeable[i].pid,
			m->unprobeable[i].processes > 1 ? " and others" : "",
			gpu_s(m, m->unprobeable[i].reason));
	fputc('\n', out);
}

static void warnings(struct ap_gpu_model *m, FILE *out)
{
	static const char *const keys[] = { "dropped", "unmatched", "expired", "bad_",
					    "untracked", "nomem", "unnamed" };
	bool any = false;

#define GPU_STAT_WARN(n)                                                                        \
	for (size_t i = 0; m->st.n && i < sizeof(keys) / sizeof(keys[0]); i++) {                \
		if (strstr(#n, keys[i])) {                                                      \
			fprintf(out, "%s%s=%" PRIu64, any ? ", " : "warnings: ", #n, m->st.n); \
			any = true;                                                             \
			break;                                                                  \
		}                                                                               \
	}
	GPU_STATS(GPU_STAT_WARN)
#undef GPU_STAT_WARN
	if (any)
		fputc('\n', out);
}

int ap_gpu_model_write_text(struct ap_gpu_model *m, FILE *out, size_t top_n)
{
	char d[32];

	if (!m || !out)
		return -EINVAL;
	if (!top_n)
		top_n = 10;
	fprintf(out, "GPU profile over %s: %" PRIu64 " API calls, %" PRIu64
		" launches, %" PRIu64 " activity records\n\n",
		ap_format_duration(ap_profile_duration_ns(m->p) ? ap_profile_duration_ns(m->p)
								: m->last_ts - m->first_ts,
				   d, sizeof(d)),
		m->st.calls, m->st.launches, m->st.activity_records);
	section_kernels(m, out, top_n);
	section_api(m, out, top_n);
	section_memory(m, out, top_n);
	section_copies(m, out);
	section_sync(m, out, top_n);
	section_unprobeable(m, out);
	warnings(m, out);
	return ap_stream_status(out);
}
