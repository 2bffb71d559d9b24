// SPDX-License-Identifier: MIT
/* Names, option parsing, counter printers and transform rules of the filter API. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "engine.h"
#include "filter.h"
#include "filter_internal.h"

static const char *const trap_names[AP_FILTER_TRAP__COUNT] = {
	[AP_FILTER_TRAP_NONE] = "none",
	[AP_FILTER_TRAP_FUEL] = "fuel",
	[AP_FILTER_TRAP_CALL_DEPTH] = "call_depth",
	[AP_FILTER_TRAP_MEMORY] = "memory",
	[AP_FILTER_TRAP_UNREACHABLE] = "unreachable",
	[AP_FILTER_TRAP_ARITHMETIC] = "arithmetic",
	[AP_FILTER_TRAP_INDIRECT_CALL] = "indirect_call",
	[AP_FILTER_TRAP_HOST_CALL] = "host_call",
	[AP_FILTER_TRAP_BAD_RESULT] = "bad_result",
	[AP_FILTER_TRAP_BAD_TRANSFORM] = "bad_transform",
	[AP_FILTER_TRAP_OTHER] = "other",
};

const char *ap_filter_trap_name(enum ap_filter_trap t)
{
	return (unsigned)t < AP_FILTER_TRAP__COUNT ? trap_names[t] : "other";
}

const char *ap_filter_verdict_name(int verdict)
{
	switch (verdict) {
	case AP_FILTER_DROP:
		return "drop";
	case AP_FILTER_KEEP:
		return "keep";
	case AP_FILTER_TRANSFORM:
		return "transform";
	}
	return "invalid";
}

int ap_filter_parse_engine(const char *s, enum ap_filter_engine *out)
{
	if (strcmp(s, "auto") == 0)
		*out = AP_FILTER_ENGINE_AUTO;
	else if (strcmp(s, "interp") == 0)
		*out = AP_FILTER_ENGINE_INTERP;
	else if (strcmp(s, "aot") == 0)
		*out = AP_FILTER_ENGINE_AOT;
	else
		return -EINVAL;
	return 0;
}

int ap_filter_parse_on_error(const char *s, enum ap_filter_on_error *out)
{
	if (strcmp(s, "keep") == 0)
		*out = AP_FILTER_ON_ERROR_KEEP;
	else if (strcmp(s, "drop") == 0)
		*out = AP_FILTER_ON_ERROR_DROP;
	else
		return -EINVAL;
	return 0;
}

bool ap_filter_aot_available(const struct ap_filter_opts *opts, char *why, size_t whylen)
{
	return ap_engine_aot_available(opts ? opts->cc : NULL, opts ? opts->wasm2c : NULL, why,
				       whylen);
}

void ap_filter_stats_print(FILE *out, const struct ap_filter_stats *st, const char *indent)
{
	const char *in = indent ? indent : "";

	fprintf(out, "%sevents seen:     %" PRIu64 "\n", in, st->seen);
	fprintf(out, "%skept:            %" PRIu64 "\n", in, st->kept);
	fprintf(out, "%sdropped:         %" PRIu64 "\n", in, st->dropped);
	fprintf(out, "%stransformed:     %" PRIu64 "\n", in, st->transformed);
	fprintf(out, "%straps:           %" PRIu64, in, st->traps);
	if (st->traps) {
		const char *sep = " (";
		for (int r = 1; r < AP_FILTER_TRAP__COUNT; r++) {
			if (!st->trap_reasons[r])
				continue;
			fprintf(out, "%s%s %" PRIu64, sep, trap_names[r], st->trap_reasons[r]);
			sep = ", ";
		}
		fputc(')', out);
	}
	fputc('\n', out);
	fprintf(out, "%sfuel exhausted:  %" PRIu64 "\n", in, st->fuel_exhausted);
	fprintf(out, "%sfilter time:     %.3f ms", in, (double)st->time_ns / 1e6);
	if (st->seen)
		fprintf(out, " (%.0f ns/event)", (double)st->time_ns / (double)st->seen);
	fputc('\n', out);
	if (st->log_messages || st->log_suppressed)
		fprintf(out, "%slog messages:    %" PRIu64 " (%" PRIu64 " suppressed)\n", in,
			st->log_messages, st->log_suppressed);
}

void ap_filter_stats_json(FILE *out, const struct ap_filter_stats *st)
{
	fprintf(out,
		"{\"seen\":%" PRIu64 ",\"kept\":%" PRIu64 ",\"dropped\":%" PRIu64
		",\"transformed\":%" PRIu64 ",\"traps\":%" PRIu64 ",\"trap_reasons\":{",
		st->seen, st->kept, st->dropped, st->transformed, st->traps);
	for (int r = 1; r < AP_FILTER_TRAP__COUNT; r++)
		fprintf(out, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", trap_names[r],
			st->trap_reasons[r]);
	fprintf(out,
		"},\"fuel_exhausted\":%" PRIu64 ",\"fuel_used\":%" PRIu64 ",\"time_ns\":%" PRIu64
		",\"log_messages\":%" PRIu64 ",\"log_suppressed\":%" PRIu64 "}",
		st->fuel_exhausted, st->fuel_used, st->time_ns, st->log_messages,
		st->log_suppressed);
}

/* ---- transform rules (filter_abi.h) ---- */

static int check_text(const char *s, size_t cap, const char *what, char *msg, size_t len)
{
	size_t n = strnlen(s, cap);
	if (n == cap)
		return snprintf(msg, len, "%s is not NUL-terminated", what), -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return snprintf(msg, len, "%s contains control byte 0x%02x", what, ch), -1;
	}
	return 0;
}

static bool is_run_of(const uint64_t *in, uint32_t nin, const uint64_t *out, uint32_t nout)
{
	if (nout == 0)
		return true;
	for (uint32_t o = 0; o + nout <= nin; o++)
		if (in[o] == out[0] && memcmp(in + o, out, nout * sizeof(*out)) == 0)
			return true;
	return false;
}

int ap_filter_check_transform(const struct ap_filter_event *in, const struct ap_filter_event *w,
			      struct ap_filter_event *out, char *msg, size_t len)
{
	uint32_t nk = w->n_kernel, nu = w->n_user;
	uint64_t scale = AP_FILTER_MAX_WEIGHT_SCALE;

	if (w->abi_version != AP_FILTER_ABI_VERSION || w->type != in->type ||
	    w->flags != in->flags || w->pid != in->pid || w->tid != in->tid ||
	    w->timestamp_ns != in->timestamp_ns || w->cpu != in->cpu ||
	    memcmp(w->raw, in->raw, sizeof(in->raw)) != 0)
		return snprintf(msg, len, "a read-only field changed"), -1;
	if (check_text(w->comm, sizeof(w->comm), "comm", msg, len) ||
	    check_text(w->tag, sizeof(w->tag), "tag", msg, len))
		return -1;
	if (w->weight == 0 || (in->weight <= UINT64_MAX / scale && w->weight > in->weight * scale))
		return snprintf(msg, len, "weight %llu is outside 1..%llu x the original",
				(unsigned long long)w->weight, (unsigned long long)scale),
		       -1;
	if (nk > in->n_kernel || nu > in->n_user)
		return snprintf(msg, len, "the stack grew"), -1;
	if (!is_run_of(in->frames, in->n_kernel, w->frames, nk) ||
	    !is_run_of(in->frames + in->n_kernel, in->n_user, w->frames + nk, nu))
		return snprintf(msg, len, "frames are not a trimmed run of the original stack"), -1;
	memcpy(out, w, AP_FILTER_HEADER_SIZE);
	copy_frames(out->frames, w->frames, nk + nu);
	out->size = AP_FILTER_EVENT_SIZE(nk + nu);
	memset(out->comm + strlen(out->comm), 0, sizeof(out->comm) - strlen(out->comm));
	memset(out->tag + strlen(out->tag), 0, sizeof(out->tag) - strlen(out->tag));
	return 0;
}
