// SPDX-License-Identifier: MIT
/* Text and JSON reports of syscall mode, from the aggregated table (pure, unit-tested). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "lib/parse.h"
#include "syscall_record.h"
#include "lib/syscalls.h"

#define DEFAULT_ROWS 50
#define TOP_ERRNOS 3

/* Counters that mean calls (or their details) were lost; named in the text report. */
static const char *const loss_stats[] = {
	"calls_lost",	    "errno_lost",	   "slow_events_lost",	   "task_storage_errors",
	"stale_inflight",   "user_stack_errors", "stack_map_collisions", "recursion_misses",
	"drain_errors",
};

static uint64_t calls_of(const struct ap_sys_entry *e)
{
	return e->sum.count + e->sum.noreturn;
}

static int by_total(const void *a, const void *b)
{
	const struct ap_sys_entry *x = *(const struct ap_sys_entry *const *)a;
	const struct ap_sys_entry *y = *(const struct ap_sys_entry *const *)b;

	if (x->sum.total_ns != y->sum.total_ns)
		return x->sum.total_ns < y->sum.total_ns ? 1 : -1;
	if (calls_of(x) != calls_of(y))
		return calls_of(x) < calls_of(y) ? 1 : -1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->nr < y->nr ? -1 : x->nr > y->nr;
}

/* Entries sorted by total time, descending. Caller frees. */
static const struct ap_sys_entry **sorted_entries(const struct ap_sys_table *t, size_t *n)
{
	const struct ap_sys_entry **v;

	*n = ap_sys_table_len(t);
	v = calloc(*n ? *n : 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < *n; i++)
		v[i] = ap_sys_table_entry(t, i);
	if (*n > 1) /* qsort(NULL, 0) is UB */
		qsort(v, *n, sizeof(*v), by_total);
	return v;
}

static size_t count_processes(const struct ap_sys_entry **v, size_t n)
{
	size_t procs = 0;

	/* n is small (processes x syscalls); quadratic is fine and needs no allocation */
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		while (j < i && v[j]->pid != v[i]->pid)
			j++;
		procs += j == i;
	}
	return procs;
}

static void latency_cols(FILE *out, const struct ap_sys_entry *e)
{
	char a[16], b[16], c[16], d[16];
	uint64_t p50, p99;

	if (!e->sum.count) {
		fprintf(out, " %9s %9s %9s %9s", "-", "-", "-", "-");
		return;
	}
	p50 = ap_hist_quantile(e->sum.hist, 0.5, e->sum.min_ns, e->sum.max_ns);
	p99 = ap_hist_quantile(e->sum.hist, 0.99, e->sum.min_ns, e->sum.max_ns);
	fprintf(out, " %9s %9s %9s %9s", ap_format_duration(e->sum.total_ns / e->sum.count, a, 16),
		ap_format_duration(p50, b, 16), ap_format_duration(p99, c, 16),
		ap_format_duration(e->sum.max_ns, d, 16));
}

static void errno_col(FILE *out, const struct ap_sys_entry *e)
{
	char buf[16];

	for (size_t i = 0; i < e->nerrnos && i < TOP_ERRNOS; i++)
		fprintf(out, "%s%s %llu", i ? ", " : "  ", ap_errno_label((int)e->errnos[i].err,
									 buf, sizeof(buf)),
			(unsigned long long)e->errnos[i].count);
	if (e->nerrnos > TOP_ERRNOS)
		fprintf(out, ", +%zu more", e->nerrnos - TOP_ERRNOS);
}

int ap_sys_write_text(const struct ap_sys_table *t, const struct ap_profile *p, FILE *out,
		      const struct ap_sys_report_opts *o)
{
	size_t n, rows, procs, namew = 7;
	uint64_t total_ns = 0, calls = 0, errors = 0, slow = 0, lost = 0;
	const struct ap_sys_entry **v = sorted_entries(t, &n);
	bool slowcol = o && o->min_latency_ns;
	char b1[32], b2[32], b3[32], name[64];

	if (!v)
		return -ENOMEM;
	rows = o && o->top_n ? o->top_n : DEFAULT_ROWS;
	if (rows > n)
		rows = n;
	procs = count_processes(v, n);
	for (size_t i = 0; i < n; i++) {
		total_ns += v[i]->sum.total_ns;
		calls += calls_of(v[i]);
		errors += v[i]->sum.errors;
		slow += v[i]->sum.slow;
	}
	for (size_t i = 0; i < rows; i++) {
		size_t l = strlen(ap_syscall_key_name(v[i]->nr, name, sizeof(name)));

		namew = l > namew ? l : namew;
	}

	fprintf(out, "Syscalls: %s calls, %s errors in %zu process%s over %s (%s syscall table)",
		ap_format_count(calls, b1, sizeof(b1)), ap_format_count(errors, b2, sizeof(b2)),
		procs, procs == 1 ? "" : "es",
		ap_format_duration(p ? ap_profile_duration_ns(p) : 0, b3, sizeof(b3)),
		ap_syscall_arch());
	if (slowcol)
		fprintf(out, "; %s calls >= %s", ap_format_count(slow, b1, sizeof(b1)),
			ap_format_duration(o->min_latency_ns, b2, sizeof(b2)));
	fprintf(out, "\n");
	if (procs == 1)
		fprintf(out, "Process %u (%s)\n", v[0]->pid, v[0]->comm);
	fprintf(out, "\n%7s %9s %12s %9s", "% time", "total", "calls", "errors");
	if (slowcol)
		fprintf(out, " %9s", "slow");
	fprintf(out, " %9s %9s %9s %9s  %-*s", "avg", "p50", "p99", "max", (int)namew, "syscall");
	if (procs > 1)
		fprintf(out, " %7s %-16s", "pid", "comm");
	fprintf(out, "  errors by errno\n");

	for (size_t i = 0; i < rows; i++) {
		const struct ap_sys_entry *e = v[i];

		fprintf(out, "%7.2f %9s %12s %9s",
			total_ns ? 100.0 * (double)e->sum.total_ns / (double)total_ns : 0.0,
			ap_format_duration(e->sum.total_ns, b1, sizeof(b1)),
			ap_format_count(calls_of(e), b2, sizeof(b2)),
			ap_format_count(e->sum.errors, b3, sizeof(b3)));
		if (slowcol)
			fprintf(out, " %9s", ap_format_count(e->sum.slow, b1, sizeof(b1)));
		latency_cols(out, e);
		ap_syscall_key_name(e->nr, name, sizeof(name));
		/* no padding at the end of a line */
		if (procs > 1)
			fprintf(out, "  %-*s %7u %-*s", (int)namew, name, e->pid,
				e->nerrnos ? 16 : 0, e->comm);
		else
			fprintf(out, "  %-*s", e->nerrnos ? (int)namew : 0, name);
		errno_col(out, e);
		fprintf(out, "\n");
	}
	if (rows < n)
		fprintf(out, "... %zu more rows (use --top N, or --format json for all)\n", n - rows);
	fprintf(out, "%7s %9s %12s %9s", "100.00", ap_format_duration(total_ns, b1, sizeof(b1)),
		ap_format_count(calls, b2, sizeof(b2)), ap_format_count(errors, b3, sizeof(b3)));
	if (slowcol)
		fprintf(out, " %9s", ap_format_count(slow, b1, sizeof(b1)));
	fprintf(out, " %9s %9s %9s %9s  total\n", "", "", "", "");

	if (o && o->histograms) {
		for (size_t i = 0; i < rows; i++) {
			const struct ap_sys_entry *e = v[i];

			if (!e->sum.count)
				continue;
			fprintf(out, "\n%s, pid %u (%s): %s call%s\n",
				ap_syscall_key_name(e->nr, name, sizeof(name)), e->pid, e->comm,
				ap_format_count(e->sum.count, b1, sizeof(b1)),
				e->sum.count == 1 ? "" : "s");
			ap_hist_print(out, e->sum.hist, "ns", "  ");
		}
	}
	for (size_t i = 0; p && i < sizeof(loss_stats) / sizeof(loss_stats[0]); i++)
		lost += ap_profile_get_stat(p, loss_stats[i]);
	if (lost) {
		fprintf(out, "\nwarning: data was lost:");
		for (size_t i = 0; i < sizeof(loss_stats) / sizeof(loss_stats[0]); i++) {
			uint64_t val = ap_profile_get_stat(p, loss_stats[i]);

			if (val)
				fprintf(out, " %s=%llu", loss_stats[i], (unsigned long long)val);
		}
		fprintf(out, "\n");
	}
	free(v);
	return ap_stream_status(out);
}

/* A JSON string: escapes, and invalid UTF-8 bytes as U+FFFD. */
static void json_str(FILE *out, const char *s)
{
	size_t len = strlen(s);

	fputc('"', out);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = ap_utf8_seq_len(s + i, len - i);

		if (c == '"' || c == '\\') {
			fprintf(out, "\\%c", c);
		} else if (c < 0x20) {
			fprintf(out, "\\u%04x", c);
		} else if (n == 0) {
			fputs("\\ufffd", out);
			n = 1;
		} else {
			fwrite(s + i, 1, n, out);
		}
		i += n ? n : 1;
	}
	fputc('"', out);
}

static void json_entry(FILE *out, const struct ap_sys_entry *e)
{
	const struct ap_sys_totals *s = &e->sum;
	char name[64], buf[16];
	bool first = true;

	fprintf(out, "    {\"pid\": %u, \"comm\": ", e->pid);
	json_str(out, e->comm);
	fprintf(out, ", \"name\": ");
	json_str(out, ap_syscall_key_name(e->nr, name, sizeof(name)));
	fprintf(out, ", \"nr\": %u, \"abi\": \"%s\"", e->nr & AP_SYSCALL_NR_MASK,
		ap_syscall_key_abi(e->nr));
	fprintf(out, ",\n     \"count\": %llu, \"noreturn\": %llu, \"error_count\": %llu",
		(unsigned long long)calls_of(e), (unsigned long long)s->noreturn,
		(unsigned long long)s->errors);
	fprintf(out, ", \"errors\": {");
	for (size_t i = 0; i < e->nerrnos; i++) {
		fprintf(out, "%s\"%s\": %llu", i ? ", " : "",
			ap_errno_label((int)e->errnos[i].err, buf, sizeof(buf)),
			(unsigned long long)e->errnos[i].count);
	}
	fprintf(out, "},\n     \"total_ns\": %llu, \"min_ns\": %llu, \"max_ns\": %llu",
		(unsigned long long)s->total_ns, (unsigned long long)(s->count ? s->min_ns : 0),
		(unsigned long long)s->max_ns);
	fprintf(out, ", \"avg_ns\": %llu, \"p50_ns\": %llu, \"p99_ns\": %llu, \"slow\": %llu",
		(unsigned long long)(s->count ? s->total_ns / s->count : 0),
		(unsigned long long)ap_hist_quantile(s->hist, 0.5, s->min_ns, s->max_ns),
		(unsigned long long)ap_hist_quantile(s->hist, 0.99, s->min_ns, s->max_ns),
		(unsigned long long)s->slow);
	fprintf(out, ",\n     \"hist\": [");
	for (unsigned int i = 0; i < AP_HIST_SLOTS; i++) {
		if (!s->hist[i])
			continue;
		fprintf(out, "%s{\"low_ns\": %llu, \"high_ns\": %llu, \"count\": %llu}",
			first ? "" : ", ", (unsigned long long)ap_hist_slot_low(i),
			(unsigned long long)ap_hist_slot_high(i), (unsigned long long)s->hist[i]);
		first = false;
	}
	fprintf(out, "]}");
}

int ap_sys_write_json(const struct ap_sys_table *t, const struct ap_profile *p, FILE *out,
		      const struct ap_sys_report_opts *o)
{
	size_t n;
	const struct ap_sys_entry **v = sorted_entries(t, &n);

	if (!v)
		return -ENOMEM;
	fprintf(out, "{\n  \"mode\": \"syscall\",\n  \"arch\": ");
	json_str(out, ap_syscall_arch());
	fprintf(out, ",\n  \"start_ns\": %llu,\n  \"duration_ns\": %llu,\n  \"min_latency_ns\": %llu,\n",
		(unsigned long long)(p ? ap_profile_start_ns(p) : 0),
		(unsigned long long)(p ? ap_profile_duration_ns(p) : 0),
		(unsigned long long)(o ? o->min_latency_ns : 0));
	fprintf(out, "  \"attach\": ");
	json_str(out, p && ap_profile_get_meta(p, "attach") ? ap_profile_get_meta(p, "attach") : "");
	fprintf(out, ",\n  \"hist_scale\": \"log2\",\n  \"entries\": [");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s\n", i ? "," : "");
		json_entry(out, v[i]);
	}
	fprintf(out, "%s],\n  \"stats\": {", n ? "\n  " : "");
	for (size_t i = 0; p && i < ap_profile_nstats(p); i++) {
		const struct ap_stat *st = ap_profile_stat(p, i);

		fprintf(out, "%s\n    ", i ? "," : "");
		json_str(out, st->name);
		fprintf(out, ": %llu", (unsigned long long)st->value);
	}
	fprintf(out, "%s}\n}\n", p && ap_profile_nstats(p) ? "\n  " : "");
	free(v);
	return ap_stream_status(out);
}
