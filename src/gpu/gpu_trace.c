// SPDX-License-Identifier: MIT
/*
 * The GPU timeline as Chrome trace event JSON (docs/gpu.md, "Chrome trace"), which Perfetto
 * and chrome://tracing open: every API call a complete ("X") event on its process and thread,
 * every kernel/copy/memset activity record one on a pseudo thread per (device, stream) of its
 * process, named by metadata ("M") events, and a flow arrow from a launch to its kernel when
 * the correlation join tied them. Timestamps are microseconds (with ns decimals) on
 * CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "gpu_internal.h"
#include "lib/hash.h"

/* Stream rows get thread ids no real thread has (pid_max is at most 2^22). */
#define STREAM_TID_BASE (1u << 30)

static uint32_t stream_tid(const struct gpu_event *e)
{
	return STREAM_TID_BASE | ((e->device & 0xffu) << 20) | (e->stream & 0xfffffu);
}

static void us(FILE *out, const char *key, uint64_t ns)
{
	fprintf(out, ", \"%s\": %" PRIu64 ".%03" PRIu64, key, ns / 1000, ns % 1000);
}

static const char *cat_of(const struct gpu_event *e)
{
	switch (e->type) {
	case GPU_EV_KERNEL:
		return "kernel";
	case GPU_EV_MEMCPY:
		return "memcpy";
	case GPU_EV_MEMSET:
		return "memset";
	case GPU_EV_MEMORY:
		return "memory";
	default:
		return "cuda_api";
	}
}

static void api_args(struct ap_gpu_model *m, FILE *out, const struct gpu_event *e)
{
	char buf[32];
	bool driver = gpu_s(m, e->name)[0] == 'c' && gpu_s(m, e->name)[1] == 'u' &&
		      strncmp(gpu_s(m, e->name), "cuda", 4);

	fprintf(out, "\"ret\": %" PRId32 ", \"result\": ", e->ret);
	ap_format_json_str(out, e->ret ? ap_gpu_error_name(e->ret, driver, buf, sizeof(buf))
				       : "success");
	switch (e->kind) {
	case AP_GPU_CALL_LAUNCH:
		fprintf(out, ", \"func\": \"0x%" PRIx64 "\", \"grid\": [%u, %u, %u]"
			", \"block\": [%u, %u, %u], \"shmem\": %u, \"stream\": \"0x%" PRIx64 "\"",
			e->a, e->grid[0], e->grid[1], e->grid[2], e->block[0], e->block[1],
			e->block[2], e->shmem, e->b);
		break;
	case AP_GPU_CALL_ALLOC:
	case AP_GPU_CALL_FREE:
		fprintf(out, ", \"ptr\": \"0x%" PRIx64 "\", \"bytes\": %" PRIu64
			", \"kind\": \"%s\"", e->a, e->b, gpu_mem_kind_name(e->dir));
		break;
	case AP_GPU_CALL_COPY:
		fprintf(out, ", \"bytes\": %" PRIu64 ", \"dir\": \"%s\", \"stream\": \"0x%" PRIx64
			"\"", e->b, gpu_dir_name(e->dir), e->a);
		break;
	case AP_GPU_CALL_SYNC:
		fprintf(out, ", \"stream\": \"0x%" PRIx64 "\"", e->a);
		break;
	case AP_GPU_CALL_REGISTER_FUNCTION:
	case AP_GPU_CALL_GET_KERNEL:
		fprintf(out, ", \"func\": \"0x%" PRIx64 "\", \"handle\": \"0x%" PRIx64 "\"", e->a,
			e->b);
		break;
	}
	if (e->corr)
		fprintf(out, ", \"correlation\": %" PRIu64, e->corr);
}

static void activity_args(FILE *out, const struct gpu_event *e)
{
	fprintf(out, "\"device\": %u, \"stream\": %u, \"correlation\": %" PRIu64, e->device,
		e->stream, e->corr);
	if (e->type == GPU_EV_KERNEL)
		fprintf(out, ", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u]", e->grid[0],
			e->grid[1], e->grid[2], e->block[0], e->block[1], e->block[2]);
	else
		fprintf(out, ", \"bytes\": %" PRIu64, e->b);
}

/* Names of the rows: processes, their threads seen in calls, their stream rows. One set of
 * (pid, tid) pairs, kept small: a linear probe table sized for the events. */
struct seen {
	uint64_t *keys;
	size_t cap;
};

static bool seen_add(struct seen *s, uint64_t key)
{
	size_t i;

	if (!s->cap)
		return true; /* no table (ENOMEM): repeat names rather than lose them */
	for (i = ap_hash_mix64(key) & (s->cap - 1); s->keys[i]; i = (i + 1) & (s->cap - 1))
		if (s->keys[i] == key)
			return false;
	s->keys[i] = key;
	return true;
}

static void meta(struct ap_gpu_model *m, FILE *out, struct seen *s, const struct gpu_event *e,
		 bool *first)
{
	uint32_t tid = e->type == GPU_EV_API ? e->tid : stream_tid(e);
	struct gpu_proc *pr = gpu_proc_get(m, e->pid, false);
	char name[96];

	if (seen_add(s, ((uint64_t)e->pid << 32) | 0xffffffffu)) {
		fprintf(out, "%s\n  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %" PRIu32
			", \"tid\": 0, \"args\": {\"name\": ", *first ? "" : ",", e->pid);
		snprintf(name, sizeof(name), "%s (%" PRIu32 ")",
			 pr && pr->comm ? gpu_s(m, pr->comm) : "process", e->pid);
		ap_format_json_str(out, name);
		fputs("}}", out);
		*first = false;
	}
	if (seen_add(s, ((uint64_t)e->pid << 32) | tid)) {
		if (e->type == GPU_EV_API)
			snprintf(name, sizeof(name), "thread %" PRIu32, tid);
		else
			snprintf(name, sizeof(name), "GPU %u stream %u", e->device, e->stream);
		fprintf(out, "%s\n  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %" PRIu32
			", \"tid\": %" PRIu32 ", \"args\": {\"name\": \"%s\"}}",
			*first ? "" : ",", e->pid, tid, name);
		/* streams below the CPU threads */
		fprintf(out, ",\n  {\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": %" PRIu32
			", \"tid\": %" PRIu32 ", \"args\": {\"sort_index\": %" PRIu32 "}}",
			e->pid, tid, e->type == GPU_EV_API ? 0u : 1000u + (tid & 0xfffffu));
		*first = false;
	}
}

int ap_gpu_model_write_trace(struct ap_gpu_model *m, FILE *out)
{
	struct seen s = { 0 };
	bool first = true;

	if (!m || !out)
		return -EINVAL;
	for (s.cap = 64; s.cap < 4 * m->nevents + 8; s.cap *= 2)
		;
	s.keys = calloc(s.cap, sizeof(*s.keys));
	if (!s.keys)
		s.cap = 0;
	fputs("{\"traceEvents\": [", out);
	for (size_t i = 0; i < m->nevents; i++) {
		const struct gpu_event *e = &m->events[i];
		bool api = e->type == GPU_EV_API;
		uint32_t tid = api ? e->tid : stream_tid(e);

		meta(m, out, &s, e, &first);
		fprintf(out, "%s\n  {\"name\": ", first ? "" : ",");
		first = false;
		ap_format_json_str(out, gpu_s(m, e->name));
		fprintf(out, ", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %" PRIu32
			", \"tid\": %" PRIu32, cat_of(e), e->pid, tid);
		us(out, "ts", e->ts);
		us(out, "dur", e->dur);
		fputs(", \"args\": {", out);
		if (api)
			api_args(m, out, e);
		else
			activity_args(out, e);
		fputs("}}", out);
		/* launch -> kernel arrow: its start inside the call, its end at the kernel */
		if (e->corr && (e->kind == AP_GPU_CALL_LAUNCH || e->type == GPU_EV_KERNEL) &&
		    (api || e->type == GPU_EV_KERNEL)) {
			fprintf(out, ",\n  {\"name\": \"launch\", \"cat\": \"correlation\", "
				"\"ph\": \"%s\", \"id\": \"%" PRIu32 ":%" PRIu64 "\", \"pid\": %" PRIu32
				", \"tid\": %" PRIu32 "%s",
				api ? "s" : "f", e->pid, e->corr, e->pid, tid,
				api ? "" : ", \"bp\": \"e\"");
			us(out, "ts", e->ts);
			fputc('}', out);
		}
	}
	fprintf(out, "%s],\n \"displayTimeUnit\": \"ns\",\n \"otherData\": {\"source\": "
		"\"aperture --mode gpu\", \"events\": %zu, \"events_dropped\": %" PRIu64 "}}\n",
		first ? "" : "\n", m->nevents, m->st.timeline_dropped);
	free(s.keys);
	return ap_stream_status(out);
}
