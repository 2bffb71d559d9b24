// SPDX-License-Identifier: MIT
/* Lock mode presentation: the per-lock text and JSON reports. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "lib/hist.h"
#include "lib/parse.h"
#include "lock_record.h"

/* ---- shared report helpers ---- */

/*
 * The kernel function that contended a kernel lock: the first frame of its heaviest stack
 * below the lock primitives (perf lock's "caller"). Names unnamed heap locks usefully.
 */
static const char *kernel_caller(const struct ap_profile *p, const struct ap_lock_entry *e,
				 char *buf, size_t len)
{
	static const char *const prims[] = {
		"_raw_", "__raw_", "raw_spin", "queued_", "__pv_queued", "native_queued",
		"pv_queued", "do_raw_", "rwsem_", "down_", "__down", "mutex_lock", "__mutex_lock",
		"mutex_spin", "rt_mutex", "__rt_mutex", "rtlock", "rt_spin", "rwbase_", "__rwbase",
		"percpu_down", "__percpu_down", "osq_lock", "schedule", "__schedule",
		"preempt_schedule", "[unknown]", "bpf_", "__bpf_", "_raw", "spin_lock", "read_lock",
		"write_lock", "lock_acquire", "__lock_",
	};
	const struct ap_lock_stack *best = NULL;
	const uint32_t *frames;
	size_t n;

	buf[0] = '\0';
	for (size_t i = 0; i < e->nstacks; i++) {
		ap_profile_stack(p, e->stacks[i].stack, &n);
		if (n && (!best || e->stacks[i].wait_ns > best->wait_ns))
			best = &e->stacks[i];
	}
	if (!best)
		return buf;
	frames = ap_profile_stack(p, best->stack, &n);
	for (size_t i = 0; i < n; i++) {
		const char *name = ap_profile_str(p, ap_profile_frame(p, frames[i])->name);
		bool prim = false;

		for (size_t j = 0; j < sizeof(prims) / sizeof(prims[0]) && !prim; j++)
			prim = !strncmp(name, prims[j], strlen(prims[j]));
		if (!prim) {
			snprintf(buf, len, "%s", name);
			break;
		}
	}
	return buf;
}

/* Why a lock has no holder tid. */
static const char *no_holder_reason(const struct ap_lock_entry *e)
{
	if (e->kernel)
		return "not tracked for kernel locks";
	switch (e->kind) {
	case AP_LOCK_FUTEX_LOCK:
		return "no owner field (bare futex lock)";
	case AP_LOCK_CONDVAR:
		return "condition variables have no owner";
	case AP_LOCK_OTHER:
		return "unknown futex protocol";
	default:
		return "owner field was empty when the wait started";
	}
}

static int cmp_holder(const void *a, const void *b)
{
	const struct ap_lock_holder *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

static int cmp_stack(const void *a, const void *b)
{
	const struct ap_lock_stack *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

static int cmp_waiter(const void *a, const void *b)
{
	const struct ap_lock_waiter *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

/* The top waiter: the pid/comm a lock is reported under. */
static const struct ap_lock_waiter *top_waiter(const struct ap_lock_entry *e)
{
	const struct ap_lock_waiter *best = NULL;

	for (size_t i = 0; i < e->nwaiters; i++)
		if (!best || e->waiters[i].wait_ns > best->wait_ns)
			best = &e->waiters[i];
	return best;
}

/* Sorting happens on the (const) table's arrays in place: order is presentation only. */
static void sort_entry(const struct ap_lock_entry *ce)
{
	struct ap_lock_entry *e = (struct ap_lock_entry *)ce;

	if (e->nholders > 1) /* qsort(NULL, 0) is UB */
		qsort(e->holders, e->nholders, sizeof(*e->holders), cmp_holder);
	if (e->nstacks > 1) /* qsort(NULL, 0) is UB */
		qsort(e->stacks, e->nstacks, sizeof(*e->stacks), cmp_stack);
	if (e->nwaiters > 1) /* qsort(NULL, 0) is UB */
		qsort(e->waiters, e->nwaiters, sizeof(*e->waiters), cmp_waiter);
}

/* ---- text ---- */

static void text_holders(FILE *out, const struct ap_lock_entry *e)
{
	uint64_t known = 0;
	size_t shown = 0;

	for (size_t i = 0; i < e->nholders; i++)
		if (e->holders[i].tid != AP_HOLDER_UNKNOWN && e->holders[i].count)
			known += e->holders[i].wait_ns;
	if (!known) {
		fprintf(out, "    holder: unknown (%s)\n", no_holder_reason(e));
		return;
	}
	fprintf(out, "    holders (share of wait):");
	for (size_t i = 0; i < e->nholders && shown < 5; i++) {
		const struct ap_lock_holder *h = &e->holders[i];
		double pct = e->total_ns ? 100.0 * (double)h->wait_ns / (double)e->total_ns : 0;

		if (!h->count)
			continue;
		fprintf(out, "%s", shown++ ? ", " : " ");
		if (h->tid == AP_HOLDER_UNKNOWN)
			fprintf(out, "unknown %.1f%%", pct);
		else if (h->tid == AP_HOLDER_READERS)
			fprintf(out, "readers %.1f%%", pct);
		else
			fprintf(out, "%u (%s) %.1f%%", h->tid, h->comm[0] ? h->comm : "?", pct);
	}
	fprintf(out, "\n");
}

static void text_stack(FILE *out, const struct ap_profile *p, const struct ap_lock_stack *s,
		       const struct ap_lock_entry *e)
{
	const uint32_t *frames;
	size_t n;
	char name[256];

	frames = ap_profile_stack(p, s->stack, &n);
	fprintf(out, "    %5.1f%% of wait, %" PRIu64 " waits:", e->total_ns ?
		100.0 * (double)s->wait_ns / (double)e->total_ns : 0.0, s->count);
	if (!n)
		fprintf(out, " (no stack)");
	for (size_t i = 0; i < n && i < 10; i++)
		fprintf(out, "%s%s", i ? " <- " : " ",
			ap_frame_display_name(p, frames[i], name, sizeof(name)));
	fprintf(out, "%s\n", n > 10 ? " <- ..." : "");
}

static void text_entry(FILE *out, const struct ap_profile *p, const struct ap_lock_entry *e,
		       size_t rank, bool hist)
{
	const struct ap_lock_waiter *w = top_waiter(e);
	char a[32], b[32], c[32], q50[32], q99[32], fl[64], caller[128];

	sort_entry(e);
	fprintf(out, "#%zu %s 0x%" PRIx64 "%s%s", rank, ap_lock_kind_name(e->kind), e->addr,
		e->name[0] ? " " : "", e->name);
	if (e->kernel && kernel_caller(p, e, caller, sizeof(caller))[0])
		fprintf(out, " (in %s)", caller);
	if (e->kernel)
		fprintf(out, "  flags %s", ap_lock_flags_str(e->flags, fl, sizeof(fl)));
	if (!e->kernel)
		fprintf(out, "  pid %u", e->pid);
	if (w)
		fprintf(out, "  top waiter %s%u (%s)", e->kernel ? "pid " : "tid ",
			e->kernel ? w->pid : w->tid, w->comm);
	fprintf(out, "\n    contentions %" PRIu64 "  total %s  avg %s  max %s  p50 %s  p99 %s\n",
		e->count, ap_format_duration(e->total_ns, a, sizeof(a)),
		ap_format_duration(e->count ? e->total_ns / e->count : 0, b, sizeof(b)),
		ap_format_duration(e->max_ns, c, sizeof(c)),
		ap_format_duration(ap_hist_quantile(e->hist, 0.5, 0, e->max_ns), q50, sizeof(q50)),
		ap_format_duration(ap_hist_quantile(e->hist, 0.99, 0, e->max_ns), q99, sizeof(q99)));
	if (e->timeout || e->interrupted || e->error || e->eagain)
		fprintf(out, "    results: %" PRIu64 " acquired/woken, %" PRIu64 " timed out, %"
			PRIu64 " interrupted, %" PRIu64 " errors; %" PRIu64
			" EAGAIN (value changed, no wait)\n",
			e->count - e->timeout - e->interrupted - e->error, e->timeout,
			e->interrupted, e->error, e->eagain);
	if (ap_lock_kind_group(e->kind) == AP_LOCK_GROUP_LOCK)
		text_holders(out, e);
	for (size_t i = 0; i < e->nstacks && i < 2; i++)
		text_stack(out, p, &e->stacks[i], e);
	if (hist)
		ap_hist_print(out, e->hist, "ns", "    ");
	fprintf(out, "\n");
}

static int text_group(FILE *out, const struct ap_lock_table *t, const struct ap_profile *p,
		      enum ap_lock_group g, const char *title, size_t top_n, bool hist)
{
	const struct ap_lock_entry **v;
	long n = ap_lock_table_sorted(t, g, &v);
	uint64_t count = 0, total = 0;
	size_t shown = 0, nonzero = 0;
	char d[32];

	if (n < 0)
		return (int)n;
	for (long i = 0; i < n; i++) {
		count += v[i]->count;
		total += v[i]->total_ns;
		nonzero += v[i]->count > 0;
	}
	fprintf(out, "%s: %zu, %" PRIu64 " waits, %s total wait\n", title, nonzero, count,
		ap_format_duration(total, d, sizeof(d)));
	if (nonzero)
		fprintf(out, "\n");
	for (long i = 0; i < n && shown < top_n; i++)
		if (v[i]->count)
			text_entry(out, p, v[i], ++shown, hist);
	if (nonzero > shown)
		fprintf(out, "  ... %zu more (use --top)\n\n", nonzero - shown);
	free(v);
	return 0;
}

static void text_stats(FILE *out, const struct ap_profile *p)
{
	bool any = false;

	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *s = ap_profile_stat(p, i);

		if (!s->value || (!strstr(s->name, "full") && !strstr(s->name, "err") &&
				  !strstr(s->name, "collision") && !strstr(s->name, "unavailable") &&
				  !strstr(s->name, "lost")))
			continue;
		fprintf(out, "%s%s=%" PRIu64, any ? ", " : "warnings: ", s->name, s->value);
		any = true;
	}
	if (any)
		fprintf(out, "\n");
}

int ap_lock_write_text(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out,
		       size_t top_n, bool histograms)
{
	char d[32];
	int err;

	if (!top_n)
		top_n = 10;
	fprintf(out, "Lock contention over %s (waits that blocked; wait = time asleep)\n\n",
		ap_format_duration(ap_profile_duration_ns(p), d, sizeof(d)));
	err = text_group(out, t, p, AP_LOCK_GROUP_LOCK, "Contended locks", top_n, true);
	if (!err)
		err = text_group(out, t, p, AP_LOCK_GROUP_CONDVAR,
				 "Condition-variable waits (not lock contention)", top_n,
				 histograms);
	if (!err)
		err = text_group(out, t, p, AP_LOCK_GROUP_OTHER,
				 "Other futex waits (not recognised as locks)", top_n, histograms);
	text_stats(out, p);
	if (!err)
		err = ap_stream_status(out);
	return err;
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else if (*c < 0x80)
			fputc(*c, out);
		else {
			size_t l = ap_utf8_seq_len((const char *)c, strlen((const char *)c));

			if (!l) {
				fputs("\\ufffd", out);
				continue;
			}
			fwrite(c, 1, l, out);
			c += l - 1;
		}
	}
	fputc('"', out);
}

static void json_entry(FILE *out, const struct ap_profile *p, const struct ap_lock_entry *e)
{
	const struct ap_lock_waiter *w = top_waiter(e);
	char buf[64];

	sort_entry(e);
	fprintf(out, "{\"addr\":\"0x%" PRIx64 "\",\"kind\":", e->addr);
	json_str(out, ap_lock_kind_name(e->kind));
	fprintf(out, ",\"kernel\":%s,\"name\":", e->kernel ? "true" : "false");
	if (e->name[0])
		json_str(out, e->name);
	else
		fputs("null", out);
	if (e->kernel) {
		char caller[128];

		fputs(",\"flags\":", out);
		json_str(out, ap_lock_flags_str(e->flags, buf, sizeof(buf)));
		fputs(",\"caller\":", out);
		json_str(out, kernel_caller(p, e, caller, sizeof(caller)));
	}
	fprintf(out, ",\"pid\":%u,\"comm\":", w ? w->pid : e->pid);
	json_str(out, w ? w->comm : "");
	fprintf(out, ",\"contentions\":%" PRIu64 ",\"wait_ns_total\":%" PRIu64
		",\"wait_ns_max\":%" PRIu64 ",\"wait_ns_avg\":%" PRIu64,
		e->count, e->total_ns, e->max_ns, e->count ? e->total_ns / e->count : 0);
	fprintf(out, ",\"results\":{\"acquired\":%" PRIu64 ",\"timeout\":%" PRIu64
		",\"interrupted\":%" PRIu64 ",\"error\":%" PRIu64 ",\"eagain\":%" PRIu64 "}",
		e->count - e->timeout - e->interrupted - e->error, e->timeout, e->interrupted,
		e->error, e->eagain);
	fputs(",\"hist\":[", out);
	for (unsigned int i = 0; i < AP_LOCK_HIST_SLOTS; i++)
		fprintf(out, "%s%" PRIu64, i ? "," : "", e->hist[i]);
	fputs("],\"holder_known\":", out);
	{
		bool known = false;

		for (size_t i = 0; i < e->nholders; i++)
			known |= e->holders[i].tid != AP_HOLDER_UNKNOWN && e->holders[i].count;
		fputs(known ? "true" : "false", out);
		if (!known) {
			fputs(",\"holder_note\":", out);
			json_str(out, no_holder_reason(e));
		}
	}
	fputs(",\"holders\":[", out);
	for (size_t i = 0, k = 0; i < e->nholders; i++) {
		const struct ap_lock_holder *h = &e->holders[i];

		if (!h->count && !h->eagain)
			continue;
		fprintf(out, "%s{\"tid\":", k++ ? "," : "");
		if (h->tid == AP_HOLDER_UNKNOWN || h->tid == AP_HOLDER_READERS)
			fputs("null", out);
		else
			fprintf(out, "%u", h->tid);
		fputs(",\"comm\":", out);
		json_str(out, h->tid == AP_HOLDER_READERS ? "[readers]" :
			      h->tid == AP_HOLDER_UNKNOWN ? "[unknown]" : h->comm);
		fprintf(out, ",\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"eagain\":%" PRIu64
			"}", h->count, h->wait_ns, h->eagain);
	}
	fputs("],\"waiters\":[", out);
	for (size_t i = 0; i < e->nwaiters; i++) {
		fprintf(out, "%s{\"pid\":%u,\"tid\":%u,\"comm\":", i ? "," : "", e->waiters[i].pid,
			e->waiters[i].tid);
		json_str(out, e->waiters[i].comm);
		fprintf(out, ",\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 "}",
			e->waiters[i].count, e->waiters[i].wait_ns);
	}
	fputs("],\"stacks\":[", out);
	for (size_t i = 0; i < e->nstacks; i++) {
		const uint32_t *frames;
		size_t n;
		char name[512];

		frames = ap_profile_stack(p, e->stacks[i].stack, &n);
		fprintf(out, "%s{\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"frames\":[",
			i ? "," : "", e->stacks[i].count, e->stacks[i].wait_ns);
		for (size_t j = 0; j < n; j++) {
			fputs(j ? "," : "", out);
			json_str(out, ap_frame_display_name(p, frames[j], name, sizeof(name)));
		}
		fputs("]}", out);
	}
	fputs("]}", out);
}

static int json_group(FILE *out, const struct ap_lock_table *t, const struct ap_profile *p,
		      enum ap_lock_group g, const char *key)
{
	const struct ap_lock_entry **v;
	long n = ap_lock_table_sorted(t, g, &v);
	size_t k = 0;

	if (n < 0)
		return (int)n;
	fprintf(out, ",\"%s\":[", key);
	for (long i = 0; i < n; i++) {
		if (!v[i]->count && !v[i]->eagain)
			continue;
		fputs(k++ ? ",\n" : "\n", out);
		json_entry(out, p, v[i]);
	}
	fputs("]", out);
	free(v);
	return 0;
}

int ap_lock_write_json(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out)
{
	int err;

	fprintf(out, "{\"format\":\"aperture-lock-report\",\"version\":1,\"mode\":\"lock\","
		"\"start_ns\":%" PRIu64 ",\"duration_ns\":%" PRIu64
		",\"hist_unit\":\"ns\",\"hist_slots\":\"log2: slot i counts waits in [2^i, "
		"2^(i+1)) ns, slot 0 also 0\"",
		ap_profile_start_ns(p), ap_profile_duration_ns(p));
	for (size_t i = 0; i < ap_profile_nmeta(p); i++) {
		const char *k, *v;

		ap_profile_meta(p, i, &k, &v);
		if (strcmp(k, "futex_hook") && strcmp(k, "kernel_locks"))
			continue;
		fputc(',', out);
		json_str(out, k);
		fputc(':', out);
		json_str(out, v);
	}
	err = json_group(out, t, p, AP_LOCK_GROUP_LOCK, "locks");
	if (!err)
		err = json_group(out, t, p, AP_LOCK_GROUP_CONDVAR, "condvars");
	if (!err)
		err = json_group(out, t, p, AP_LOCK_GROUP_OTHER, "other_waits");
	fputs(",\n\"stats\":{", out);
	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *s = ap_profile_stat(p, i);

		fputs(i ? "," : "", out);
		json_str(out, s->name);
		fprintf(out, ":%" PRIu64, s->value);
	}
	fputs("}}\n", out);
	if (!err)
		err = ap_stream_status(out);
	return err;
}
