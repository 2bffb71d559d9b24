// SPDX-License-Identifier: MIT
/*
 * The GPU mode's JSON: the generic profile document (docs/json-format.md) with one more
 * top-level member "gpu" holding the tables (docs/gpu.md, "JSON"). The same "gpu" object is
 * continuous mode's per-interval `tables`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "gpu_internal.h"

#define TOP_STACKS 5
#define MAX_LIVE_ROWS GPU_MAX_LEAKS

/* ---- sorting (shared with the text writer) ---- */

static int cmp_kernel(const void *a, const void *b)
{
	const struct gpu_kernel *x = *(struct gpu_kernel *const *)a,
				*y = *(struct gpu_kernel *const *)b;

	if (x->gpu_total != y->gpu_total)
		return x->gpu_total < y->gpu_total ? 1 : -1;
	if (x->launches != y->launches)
		return x->launches < y->launches ? 1 : -1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->func < y->func ? -1 : x->func > y->func;
}

static int cmp_api(const void *a, const void *b)
{
	const struct gpu_api *x = *(struct gpu_api *const *)a, *y = *(struct gpu_api *const *)b;

	if (x->cpu_ns != y->cpu_ns)
		return x->cpu_ns < y->cpu_ns ? 1 : -1;
	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return x->name < y->name ? -1 : x->name > y->name;
}

static int cmp_sync(const void *a, const void *b)
{
	const struct gpu_sync *x = *(struct gpu_sync *const *)a, *y = *(struct gpu_sync *const *)b;

	if (x->blocked_ns != y->blocked_ns)
		return x->blocked_ns < y->blocked_ns ? 1 : -1;
	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static int cmp_kstack(const void *a, const void *b)
{
	const struct gpu_kstack *x = a, *y = b;

	if (x->gpu_ns != y->gpu_ns)
		return x->gpu_ns < y->gpu_ns ? 1 : -1;
	if (x->launches != y->launches)
		return x->launches < y->launches ? 1 : -1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static int cmp_shape(const void *a, const void *b)
{
	const struct gpu_shape *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static void **collect(const struct ap_htab *h, size_t count, size_t *n)
{
	void **v;
	size_t k = 0;

	*n = 0;
	if (!count)
		return NULL;
	v = malloc(count * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t b = 0; b < h->nbuckets; b++)
		for (struct ap_hnode *x = h->buckets[b]; x && k < count; x = x->next)
			v[k++] = x; /* the node is each entry's first member */
	*n = k;
	return v;
}

struct gpu_kernel **gpu_sorted_kernels(struct ap_gpu_model *m, size_t *n)
{
	struct gpu_kernel **v = (struct gpu_kernel **)collect(&m->kernels, m->nkernels, n);

	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_kernel);
	return v;
}

struct gpu_api **gpu_sorted_apis(struct ap_gpu_model *m, size_t *n)
{
	struct gpu_api **v = (struct gpu_api **)collect(&m->apis, m->napis, n);

	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_api);
	return v;
}

struct gpu_sync **gpu_sorted_syncs(struct ap_gpu_model *m, size_t *n)
{
	struct gpu_sync **v = (struct gpu_sync **)collect(&m->syncs, m->nsyncs, n);

	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_sync);
	return v;
}

void gpu_sort_kernel(struct gpu_kernel *k)
{
	if (k->nstacks > 1)
		qsort(k->stacks, k->nstacks, sizeof(*k->stacks), cmp_kstack);
	if (k->nshapes > 1)
		qsort(k->shapes, k->nshapes, sizeof(*k->shapes), cmp_shape);
}

/* ---- pieces ---- */

void gpu_write_frames(const struct ap_profile *p, FILE *out, uint32_t stack)
{
	size_t n = 0;
	const uint32_t *frames = ap_profile_stack(p, stack, &n);

	fputc('[', out);
	for (size_t i = 0; frames && i < n; i++) { /* root first */
		char *name = ap_frame_display_dup(p, frames[n - 1 - i]);

		fputs(i ? ", " : "", out);
		ap_format_json_str(out, name ? name : "[unknown]");
		free(name);
	}
	fputc(']', out);
}

static void u3(FILE *out, const uint32_t v[3])
{
	fprintf(out, "[%" PRIu32 ", %" PRIu32 ", %" PRIu32 "]", v[0], v[1], v[2]);
}

static void write_kernel(struct ap_gpu_model *m, FILE *out, struct gpu_kernel *k)
{
	gpu_sort_kernel(k);
	fputs("{\"name\": ", out);
	ap_format_json_str(out, gpu_s(m, k->display));
	fputs(", \"mangled\": ", out);
	if (k->mangled)
		ap_format_json_str(out, gpu_s(m, k->mangled));
	else
		fputs("null", out);
	fprintf(out, ", \"pid\": %" PRIu32 ", \"func\": ", k->pid);
	if (k->func)
		fprintf(out, "\"0x%" PRIx64 "\"", k->func);
	else
		fputs("null", out);
	fprintf(out, ", \"launches\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"shapes\": [",
		k->launches, k->errors);
	for (size_t i = 0; i < k->nshapes; i++) {
		fputs(i ? ", {\"grid\": " : "{\"grid\": ", out);
		u3(out, k->shapes[i].grid);
		fputs(", \"block\": ", out);
		u3(out, k->shapes[i].block);
		fprintf(out, ", \"shmem\": %" PRIu32 ", \"launches\": %" PRIu64 "}",
			k->shapes[i].shmem, k->shapes[i].n);
	}
	fprintf(out,
		"], \"shapes_other\": %" PRIu64 ", \"gpu_time_ns\": {\"total\": %" PRIu64
		", \"avg\": %" PRIu64 ", \"max\": %" PRIu64 ", \"records\": %" PRIu64
		"}, \"top_stacks\": [",
		k->shapes_other, k->gpu_total, k->gpu_records ? k->gpu_total / k->gpu_records : 0,
		k->gpu_max, k->gpu_records);
	for (size_t i = 0; i < k->nstacks && i < TOP_STACKS; i++) {
		fputs(i ? ", {\"frames\": " : "{\"frames\": ", out);
		gpu_write_frames(m->p, out, k->stacks[i].stack);
		fprintf(out, ", \"launches\": %" PRIu64 ", \"gpu_time_ns\": %" PRIu64 "}",
			k->stacks[i].launches, k->stacks[i].gpu_ns);
	}
	fprintf(out, "], \"stacks\": %zu, \"stacks_other\": %" PRIu64 "}", k->nstacks,
		k->stacks_other);
}

static void write_api(struct ap_gpu_model *m, FILE *out, const struct gpu_api *a)
{
	char buf[32];

	fputs("{\"name\": ", out);
	ap_format_json_str(out, gpu_s(m, a->name));
	fprintf(out, ", \"driver\": %s, \"calls\": %" PRIu64 ", \"failed\": %" PRIu64
		", \"errors\": {", a->driver ? "true" : "false", a->calls, a->errors);
	for (size_t i = 0; i < a->nerrs; i++) {
		fputs(i ? ", " : "", out);
		ap_format_json_str(out, ap_gpu_error_name(a->errs[i].code, a->driver, buf,
							  sizeof(buf)));
		fprintf(out, ": %" PRIu64, a->errs[i].n);
	}
	if (a->errs_other)
		fprintf(out, "%s\"other\": %" PRIu64, a->nerrs ? ", " : "", a->errs_other);
	fprintf(out, "}, \"cpu_time_ns\": %" PRIu64 "}", a->cpu_ns);
}

static void write_alloc_row(struct ap_gpu_model *m, FILE *out, uint32_t pid, uint32_t tid,
			    uint64_t ptr, uint64_t bytes, uint32_t kind, uint32_t stack)
{
	fprintf(out, "{\"pid\": %" PRIu32 ", \"tid\": %" PRIu32 ", \"ptr\": \"0x%" PRIx64
		"\", \"bytes\": %" PRIu64 ", \"kind\": \"%s\", \"frames\": ",
		pid, tid, ptr, bytes, gpu_mem_kind_name(kind));
	gpu_write_frames(m->p, out, stack);
	fputc('}', out);
}

struct live_ctx {
	struct ap_gpu_model *m;
	FILE *out;
	const char *ind;
	uint32_t pid;
	size_t shown, total;
};

static void write_live(struct live_ctx *x, const struct gpu_proc *pr)
{
	for (size_t b = 0; b < pr->allocs.nbuckets; b++) {
		for (struct ap_hnode *n = pr->allocs.buckets[b]; n; n = n->next) {
			const struct gpu_alloc *a = (const struct gpu_alloc *)n;

			x->total++;
			if (x->shown >= MAX_LIVE_ROWS)
				continue;
			fprintf(x->out, "%s%s      ", x->shown++ ? "," : "", "\n");
			fputs(x->ind, x->out);
			write_alloc_row(x->m, x->out, pr->pid, a->tid, a->ptr, a->bytes, a->kind,
					a->stack);
		}
	}
}

static void write_memory(struct ap_gpu_model *m, FILE *out, const char *ind)
{
	const struct gpu_mem *mm = &m->mem;
	struct live_ctx x = { m, out, ind, 0, 0, 0 };

	fprintf(out,
		"{\"allocations\": %" PRIu64 ", \"failed_allocations\": %" PRIu64
		", \"allocated_bytes\": %" PRIu64 ", \"frees\": %" PRIu64
		", \"failed_frees\": %" PRIu64 ", \"unknown_frees\": %" PRIu64
		", \"freed_bytes\": %" PRIu64 ", \"live_bytes\": %" PRIu64
		", \"peak_bytes\": %" PRIu64 ",\n%s    \"by_kind\": {",
		mm->allocations, mm->failed_allocations, mm->allocated_bytes, mm->frees,
		mm->failed_frees, mm->unknown_frees, mm->freed_bytes, mm->live_bytes,
		mm->peak_bytes, ind);
	for (uint32_t k = 0, shown = 0; k < 4; k++) {
		if (!mm->by_kind[k].allocations)
			continue;
		fprintf(out, "%s\"%s\": {\"allocations\": %" PRIu64 ", \"failed\": %" PRIu64
			", \"bytes\": %" PRIu64 "}", shown++ ? ", " : "", gpu_mem_kind_name(k),
			mm->by_kind[k].allocations, mm->by_kind[k].failed, mm->by_kind[k].bytes);
	}
	fprintf(out, "},\n%s    \"leaks_total\": %" PRIu64 ", \"leaked_bytes\": %" PRIu64
		", \"leaks_dropped\": %" PRIu64 ",\n%s    \"leaks\": [",
		ind, mm->leaks, mm->leaked_bytes, m->st.leaks_dropped, ind);
	for (size_t i = 0; i < m->nleaks; i++) {
		const struct gpu_leak *l = &m->leaks[i];

		fprintf(out, "%s\n%s      ", i ? "," : "", ind);
		write_alloc_row(m, out, l->pid, l->tid, l->ptr, l->bytes, l->kind, l->stack);
	}
	fprintf(out, "%s],\n%s    \"live_at_end\": [", m->nleaks ? "\n    " : "", ind);
	for (size_t b = 0; b < m->procs.nbuckets; b++)
		for (struct ap_hnode *n = m->procs.buckets[b]; n; n = n->next)
			write_live(&x, (const struct gpu_proc *)n);
	fprintf(out, "%s], \"live_at_end_total\": %zu}", x.shown ? "\n    " : "", x.total);
}

static void write_copy(FILE *out, const char *name, const struct gpu_copy *c, bool first)
{
	fprintf(out, "%s\"%s\": {\"calls\": %" PRIu64 ", \"errors\": %" PRIu64
		", \"bytes\": %" PRIu64 ", \"requested_bytes\": %" PRIu64
		", \"cpu_time_ns\": %" PRIu64 ", \"gpu_time_ns\": %" PRIu64
		", \"gpu_records\": %" PRIu64 ", \"gpu_bytes\": %" PRIu64 "}",
		first ? "" : ", ", name, c->calls, c->errors, c->bytes, c->requested_bytes,
		c->cpu_ns, c->gpu_ns, c->gpu_records, c->gpu_bytes);
}

static void write_stats(struct ap_gpu_model *m, FILE *out)
{
	bool first = true;
	uint64_t drops = ap_profile_get_stat(m->p, "gpu_ringbuf_drops");

	if (!drops)
		drops = ap_profile_get_stat(m->p, "ringbuf_drops");
	fprintf(out, "{\"ringbuf_drops\": %" PRIu64, drops);
	first = false;
#define GPU_STAT_JSON(n) fprintf(out, "%s\"%s\": %" PRIu64, first ? "" : ", ", #n, m->st.n);
	GPU_STATS(GPU_STAT_JSON)
#undef GPU_STAT_JSON
	fputc('}', out);
}

void gpu_write_tables(struct ap_gpu_model *m, FILE *out, const char *ind)
{
	struct gpu_kernel **ks;
	struct gpu_api **as;
	struct gpu_sync **ss;
	size_t nk, na, ns;

	ks = gpu_sorted_kernels(m, &nk);
	fprintf(out, "{\n%s  \"kernels\": [", ind);
	for (size_t i = 0; i < nk; i++) {
		fprintf(out, "%s\n%s    ", i ? "," : "", ind);
		write_kernel(m, out, ks[i]);
	}
	free(ks);
	as = gpu_sorted_apis(m, &na);
	fprintf(out, "%s],\n%s  \"api\": [", nk ? "\n  " : "", ind);
	for (size_t i = 0; i < na; i++) {
		fprintf(out, "%s\n%s    ", i ? "," : "", ind);
		write_api(m, out, as[i]);
	}
	free(as);
	fprintf(out, "%s],\n%s  \"memory\": ", na ? "\n  " : "", ind);
	write_memory(m, out, ind);
	fprintf(out, ",\n%s  \"copies\": {", ind);
	for (uint32_t d = 0; d < GPU_NDIRS; d++)
		write_copy(out, gpu_dir_name(d), &m->copies[d], d == 0);
	write_copy(out, "memset", &m->memset, false);
	ss = gpu_sorted_syncs(m, &ns);
	fprintf(out, "},\n%s  \"sync\": [", ind);
	for (size_t i = 0; i < ns; i++) {
		fprintf(out, "%s\n%s    {\"api\": ", i ? "," : "", ind);
		ap_format_json_str(out, gpu_s(m, ss[i]->api));
		fprintf(out, ", \"calls\": %" PRIu64 ", \"blocked_ns\": %" PRIu64
			", \"max_ns\": %" PRIu64 ", \"frames\": ", ss[i]->calls, ss[i]->blocked_ns,
			ss[i]->max_ns);
		gpu_write_frames(m->p, out, ss[i]->stack);
		fputc('}', out);
	}
	free(ss);
	fprintf(out, "%s],\n%s  \"unprobeable\": [", ns ? "\n  " : "", ind);
	for (size_t i = 0; i < m->nunprobeable; i++) {
		const struct gpu_unprobeable *u = &m->unprobeable[i];

		fprintf(out, "%s\n%s    {\"pid\": %" PRIu32 ", \"path\": ", i ? "," : "", ind,
			u->pid);
		ap_format_json_str(out, gpu_s(m, u->path));
		fputs(", \"reason\": ", out);
		ap_format_json_str(out, gpu_s(m, u->reason));
		fprintf(out, ", \"processes\": %" PRIu64 "}", u->processes);
	}
	fprintf(out, "%s],\n%s  \"stats\": ", m->nunprobeable ? "\n  " : "", ind);
	write_stats(m, out);
	fprintf(out, "\n%s}", ind);
}

int ap_gpu_model_write_json(struct ap_gpu_model *m, FILE *out)
{
	if (!m || !out)
		return -EINVAL;
	ap_write_json_open(m->p, out);
	fputs(",\n  \"gpu\": ", out);
	gpu_write_tables(m, out, "  ");
	fputs("\n}\n", out);
	return ap_stream_status(out);
}
