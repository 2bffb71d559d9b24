// SPDX-License-Identifier: MIT
/* The agent's side of WebAssembly event filters: load per mode, run per event, report. */
#include "filter_hook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "lib/log.h"

/* Names looked up for filters are interned in a scratch profile; start it afresh past this
 * many frames so a long run cannot grow it without bound. */
#define NAMES_MAX_FRAMES 65536u

struct ap_filter_hook {
	struct ap_filter *f;
	struct ap_symbolizer *sym; /* shared, not owned */
	struct ap_profile *names;  /* scratch: frames resolved for env.frame_symbol/module */
	const char *mode;
	char path[256];
	bool loading;
	struct ap_filter_event ev;  /* what collectors fill */
	struct ap_filter_event out; /* a transformed record */
};

static int symbolize(void *ctx, const struct ap_filter_event *ev, uint32_t frame,
		     enum ap_filter_sym_kind kind, char *buf, size_t len)
{
	struct ap_filter_hook *h = ctx;
	bool kernel = frame < ev->n_kernel;
	const struct ap_frame *fr;
	const char *s;
	uint32_t id;

	if (!h->sym)
		return -ENOENT;
	if (!h->names || ap_profile_nframes(h->names) > NAMES_MAX_FRAMES) {
		ap_profile_free(h->names);
		h->names = ap_profile_new();
		if (!h->names)
			return -ENOMEM;
	}
	/* every frame but each stack's leaf is a return address, as the recorders see them */
	if (kernel)
		id = ap_symbolizer_kernel_frame(h->sym, h->names, ev->frames[frame], frame > 0);
	else
		id = ap_symbolizer_user_frame(h->sym, h->names, (int)ev->pid, ev->frames[frame],
					      frame > ev->n_kernel);
	if (id == UINT32_MAX)
		return -ENOMEM;
	fr = ap_profile_frame(h->names, id);
	s = fr ? ap_profile_str(h->names, kind == AP_FILTER_SYM_MODULE ? fr->module : fr->name)
	       : NULL;
	if (!s || !s[0] || strcmp(s, "[unknown]") == 0)
		return -ENOENT;
	snprintf(buf, len, "%s", s);
	return (int)strlen(s);
}

static void filter_log(void *ctx, enum ap_filter_log_level level, const char *msg)
{
	struct ap_filter_hook *h = ctx;

	/* at load, errors come back in the load's own message: say them once */
	if (h->loading && level <= AP_FILTER_LOG_WARN)
		return;
	switch (level) {
	case AP_FILTER_LOG_ERROR:
		ap_err("%s: %s", h->mode, msg);
		break;
	case AP_FILTER_LOG_WARN:
		ap_warn("%s: %s", h->mode, msg);
		break;
	case AP_FILTER_LOG_INFO:
		ap_info("%s: %s", h->mode, msg);
		break;
	default:
		ap_debug("%s: %s", h->mode, msg);
		break;
	}
}

int ap_filter_hook_new(const struct ap_agent_opts *opts, const char *mode,
		       struct ap_symbolizer *sym, struct ap_filter_hook **out, char *err,
		       size_t errlen)
{
	struct ap_filter_hook *h = calloc(1, sizeof(*h));
	const struct ap_filter_info *info;
	struct ap_filter_opts fo;
	int ret;

	*out = NULL;
	if (!h) {
		snprintf(err, errlen, "%s: out of memory", opts->filter);
		return -ENOMEM;
	}
	h->sym = sym;
	h->mode = mode;
	snprintf(h->path, sizeof(h->path), "%s", opts->filter);
	ap_filter_opts_init(&fo);
	fo.engine = opts->filter_engine;
	fo.on_error = opts->filter_on_error;
	fo.limits.fuel = opts->filter_fuel;
	fo.limits.max_memory_pages = opts->filter_memory_pages;
	fo.limits.max_call_depth = opts->filter_call_depth;
	fo.agent_pid = (int)getpid();
	fo.symbolize = symbolize;
	fo.symbolize_ctx = h;
	fo.log = filter_log;
	fo.log_ctx = h;
	h->loading = true;
	ret = ap_filter_load(opts->filter, opts->filter_config, &fo, &h->f, err, errlen);
	h->loading = false;
	if (ret) {
		free(h);
		return ret;
	}
	info = ap_filter_get_info(h->f);
	ap_info("%s: filter %s loaded (engine %s%s%s, %.1f ms)", mode, opts->filter, info->engine,
		info->engine_note[0] ? ": " : "", info->engine_note, info->load_ms);
	*out = h;
	return 0;
}

void ap_filter_hook_free(struct ap_filter_hook *h)
{
	if (!h)
		return;
	ap_filter_free(h->f);
	ap_profile_free(h->names);
	free(h);
}

struct ap_filter_event *ap_filter_hook_event(struct ap_filter_hook *h)
{
	return h ? &h->ev : NULL;
}

int ap_filter_hook_apply(struct ap_collector *c, struct ap_filter_event *ev,
			 const struct ap_filter_event **result)
{
	struct ap_filter_hook *h = c->filter;
	int v;

	*result = ev;
	if (!h)
		return AP_FILTER_KEEP;
	v = ap_filter_run(h->f, ev, &h->out);
	if (v == AP_FILTER_TRANSFORM) {
		*result = &h->out;
		return AP_FILTER_KEEP;
	}
	if (v == AP_FILTER_DROP)
		return AP_FILTER_DROP;
	if (v < 0) /* a record the agent built wrong: keep it, as a trap would be */
		ap_debug("%s: filter input rejected: %s", h->mode, strerror(-v));
	return AP_FILTER_KEEP;
}

void ap_filter_hook_report(const struct ap_filter_hook *h, struct ap_profile *p)
{
	struct ap_filter_stats st;
	char name[64];

	if (!h)
		return;
	ap_filter_get_stats(h->f, &st);
	ap_profile_set_stat(p, "filter_events_seen", st.seen);
	ap_profile_set_stat(p, "filter_kept", st.kept);
	ap_profile_set_stat(p, "filter_dropped", st.dropped);
	ap_profile_set_stat(p, "filter_transformed", st.transformed);
	ap_profile_set_stat(p, "filter_traps", st.traps);
	for (int r = AP_FILTER_TRAP_NONE + 1; r < AP_FILTER_TRAP__COUNT; r++) {
		snprintf(name, sizeof(name), "filter_traps_%s",
			 ap_filter_trap_name((enum ap_filter_trap)r));
		ap_profile_set_stat(p, name, st.trap_reasons[r]);
	}
	ap_profile_set_stat(p, "filter_fuel_exhausted", st.fuel_exhausted);
	ap_profile_set_stat(p, "filter_fuel_used", st.fuel_used);
	ap_profile_set_stat(p, "filter_time_ns", st.time_ns);
	ap_profile_set_stat(p, "filter_log_messages", st.log_messages);
	ap_profile_set_stat(p, "filter_log_suppressed", st.log_suppressed);
}

void ap_filter_hook_print(const struct ap_filter_hook *h, FILE *out)
{
	const struct ap_filter_info *info;
	struct ap_filter_stats st;

	if (!h)
		return;
	info = ap_filter_get_info(h->f);
	ap_filter_get_stats(h->f, &st);
	fprintf(out, "filter %s (%s mode, engine %s):\n", h->path, h->mode, info->engine);
	ap_filter_stats_print(out, &st, "  ");
}

/* ---- building records ---- */

void ap_filter_event_init(struct ap_filter_event *ev, uint32_t type, uint32_t pid, uint32_t tid,
			  uint64_t timestamp_ns, uint32_t cpu, const char *comm, uint64_t weight)
{
	memset(ev, 0, AP_FILTER_HEADER_SIZE);
	ev->abi_version = AP_FILTER_ABI_VERSION;
	ev->size = AP_FILTER_HEADER_SIZE;
	ev->type = type;
	ev->pid = pid;
	ev->tid = tid;
	ev->timestamp_ns = timestamp_ns;
	ev->weight = weight;
	ev->cpu = cpu;
	for (size_t i = 0; comm && i < AP_FILTER_COMM_LEN - 1 && comm[i]; i++)
		ev->comm[i] = comm[i];
}

void ap_filter_event_add_stack(struct ap_filter_event *ev, bool kernel, const __u64 *ips,
			       size_t max)
{
	size_t base = (size_t)ev->n_kernel + ev->n_user, n = 0;

	while (ips && n < max && ips[n] && base + n < AP_FILTER_MAX_FRAMES) {
		ev->frames[base + n] = ips[n];
		n++;
	}
	if (n && n == max)
		ev->flags |= kernel ? AP_FILTER_F_KERNEL_TRUNCATED : AP_FILTER_F_USER_TRUNCATED;
	if (kernel) /* kernel frames come first: only before any user frame */
		ev->n_kernel = (uint16_t)(ev->n_kernel + n);
	else
		ev->n_user = (uint16_t)(ev->n_user + n);
	ev->size = AP_FILTER_EVENT_SIZE((uint32_t)ev->n_kernel + ev->n_user);
}

size_t ap_filter_event_stack(const struct ap_filter_event *ev, bool kernel, __u64 *out,
			     size_t max)
{
	size_t from = kernel ? 0 : ev->n_kernel, n = kernel ? ev->n_kernel : ev->n_user;

	if (n > max)
		n = max;
	memcpy(out, ev->frames + from, n * sizeof(*out));
	out[n] = 0;
	return n;
}

const char *ap_filter_event_comm(const struct ap_filter_event *ev, char *buf)
{
	memcpy(buf, ev->comm, AP_FILTER_COMM_LEN);
	buf[AP_FILTER_COMM_LEN - 1] = '\0';
	return buf;
}
