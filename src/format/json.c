// SPDX-License-Identifier: MIT
/*
 * The profile model as one JSON document, schema in docs/json-format.md. It mirrors the model
 * (interned frames and stacks referenced by id) so that it stays small and loses nothing.
 * Any byte string is written as valid JSON: invalid UTF-8 becomes U+FFFD.
 */
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void ap_format_json_str(FILE *out, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	fputc('"', out);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = ap_utf8_seq_len(s + i, len - i);

		if (!n) {
			fputs("\\ufffd", out);
			i++;
			continue;
		}
		if (n > 1) {
			fwrite(s + i, 1, n, out);
		} else if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
		} else if (c == '\n') {
			fputs("\\n", out);
		} else if (c == '\t') {
			fputs("\\t", out);
		} else if (c == '\r') {
			fputs("\\r", out);
		} else if (c < 0x20) {
			fprintf(out, "\\u%04x", c);
		} else {
			fputc(c, out);
		}
		i += n;
	}
	fputc('"', out);
}

/* Addresses are hex strings: they often exceed 2^53, where JSON numbers lose precision in
 * most parsers (JavaScript's among them). */
static void json_addr(FILE *out, uint64_t v) { fprintf(out, "\"0x%" PRIx64 "\"", v); }

static void json_key(FILE *out, const char *indent, const char *key)
{
	fputs(indent, out);
	ap_format_json_str(out, key);
	fputs(": ", out);
}

static const char *sep(size_t i) { return i ? ",\n" : "\n"; }

static void write_header(FILE *out, const struct ap_profile *p)
{
	const struct ap_value_type *pt = ap_profile_period_type(p);
	size_t nvalues = ap_profile_nvalues(p);

	fputs("{\n  \"format\": \"aperture-profile\",\n  \"version\": 1,\n  \"meta\": {", out);
	for (size_t i = 0; i < ap_profile_nmeta(p); i++) {
		const char *k, *v;

		ap_profile_meta(p, i, &k, &v);
		fputs(sep(i), out);
		json_key(out, "    ", k);
		ap_format_json_str(out, v);
	}
	fputs(ap_profile_nmeta(p) ? "\n  },\n" : "},\n", out);
	fprintf(out, "  \"start_ns\": %" PRIu64 ",\n  \"duration_ns\": %" PRIu64 ",\n",
		ap_profile_start_ns(p), ap_profile_duration_ns(p));
	fputs("  \"period\": {\"type\": ", out);
	ap_format_json_str(out, ap_profile_str(p, pt->type));
	fputs(", \"unit\": ", out);
	ap_format_json_str(out, ap_profile_str(p, pt->unit));
	fprintf(out, ", \"value\": %" PRIu64 "},\n  \"value_types\": [", ap_profile_period(p));
	for (size_t i = 0; i < nvalues; i++) {
		const struct ap_value_type *vt = ap_profile_value_type(p, i);

		fputs(i ? ", {\"type\": " : "{\"type\": ", out);
		ap_format_json_str(out, ap_profile_str(p, vt->type));
		fputs(", \"unit\": ", out);
		ap_format_json_str(out, ap_profile_str(p, vt->unit));
		fputc('}', out);
	}
	/* which value weights flamegraphs and tables by default, so a JSON file read back
	 * (aperture report) shows what the original did */
	fprintf(out, "],\n  \"default_value\": %zu", nvalues ? ap_profile_default_value(p) : 0);
	fputs(",\n  \"totals\": [", out);
	for (size_t i = 0; i < nvalues; i++)
		fprintf(out, "%s%" PRIu64, i ? ", " : "", ap_profile_total(p, i));
	fputs("],\n  \"stats\": {", out);
	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *st = ap_profile_stat(p, i);

		fputs(sep(i), out);
		json_key(out, "    ", st->name);
		fprintf(out, "%" PRIu64, st->value);
	}
	fputs(ap_profile_nstats(p) ? "\n  },\n" : "},\n", out);
}

static void write_mappings(FILE *out, const struct ap_profile *p)
{
	size_t n = ap_profile_nmappings(p);

	fputs("  \"mappings\": [", out);
	/* id 0 is the model's "no mapping" placeholder, not a mapping */
	for (size_t i = 1; i < n; i++) {
		const struct ap_mapping *m = ap_profile_mapping(p, (uint32_t)i);

		fprintf(out, "%s    {\"id\": %zu, \"start\": ", sep(i - 1), i);
		json_addr(out, m->start);
		fputs(", \"limit\": ", out);
		json_addr(out, m->limit);
		fputs(", \"offset\": ", out);
		json_addr(out, m->offset);
		fputs(", \"file\": ", out);
		ap_format_json_str(out, ap_profile_str(p, m->file));
		fputs(", \"build_id\": ", out);
		ap_format_json_str(out, ap_profile_str(p, m->build_id));
		fputc('}', out);
	}
	fputs(n > 1 ? "\n  ],\n" : "],\n", out);
}

static void write_frames(FILE *out, const struct ap_profile *p)
{
	size_t n = ap_profile_nframes(p);

	fputs("  \"frames\": [", out);
	for (size_t i = 0; i < n; i++) {
		const struct ap_frame *f = ap_profile_frame(p, (uint32_t)i);

		fprintf(out, "%s    {\"id\": %zu, \"name\": ", sep(i), i);
		ap_format_json_str(out, ap_profile_str(p, f->name));
		fputs(", \"module\": ", out);
		ap_format_json_str(out, ap_profile_str(p, f->module));
		fprintf(out, ", \"kind\": \"%s\", \"addr\": ",
			f->kind == AP_FRAME_KERNEL ? "kernel" : "user");
		json_addr(out, f->addr);
		fputs(", \"rel_addr\": ", out);
		json_addr(out, f->rel_addr);
		fputs(", \"file\": ", out);
		ap_format_json_str(out, ap_profile_str(p, f->file));
		fprintf(out, ", \"line\": %" PRIu32 ", \"mapping\": %" PRIu32, f->line, f->mapping);
		/* only where true: most frames are not inlined, and readers default to false */
		fputs(f->flags & AP_FRAME_INLINED ? ", \"inlined\": true}" : "}", out);
	}
	fputs(n ? "\n  ],\n" : "],\n", out);
}

static void write_stacks(FILE *out, const struct ap_profile *p)
{
	size_t n = ap_profile_nstacks(p);

	fputs("  \"stacks\": [", out);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const uint32_t *ids = ap_profile_stack(p, (uint32_t)i, &len);

		fprintf(out, "%s    [", sep(i));
		for (size_t j = 0; j < len; j++)
			fprintf(out, "%s%" PRIu32, j ? ", " : "", ids[j]);
		fputc(']', out);
	}
	fputs(n ? "\n  ],\n" : "],\n", out);
}

static void write_labels(FILE *out, const struct ap_profile *p, uint32_t id)
{
	size_t n;
	const struct ap_label *l = ap_profile_labels(p, id, &n);

	fputc('{', out);
	for (size_t i = 0; i < n; i++) {
		json_key(out, i ? ", " : "", ap_profile_str(p, l[i].key));
		if (l[i].str) {
			ap_format_json_str(out, ap_profile_str(p, l[i].str));
		} else if (l[i].num_unit) {
			fprintf(out, "{\"value\": %" PRId64 ", \"unit\": ", l[i].num);
			ap_format_json_str(out, ap_profile_str(p, l[i].num_unit));
			fputc('}', out);
		} else {
			fprintf(out, "%" PRId64, l[i].num);
		}
	}
	fputc('}', out);
}

static void write_samples(FILE *out, const struct ap_profile *p)
{
	size_t n = ap_profile_nsamples(p), nvalues = ap_profile_nvalues(p);

	fputs("  \"samples\": [", out);
	for (size_t i = 0; i < n; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);

		fprintf(out,
			"%s    {\"stack\": %" PRIu32 ", \"pid\": %" PRIu32 ", \"tid\": %" PRIu32
			", \"comm\": ",
			sep(i), s->stack, s->pid, s->tid);
		ap_format_json_str(out, ap_profile_str(p, s->comm));
		fputs(", \"labels\": ", out);
		write_labels(out, p, s->labels);
		fputs(", \"values\": [", out);
		for (size_t v = 0; v < nvalues; v++)
			fprintf(out, "%s%" PRIu64, v ? ", " : "", s->values[v]);
		fputs("]}", out);
	}
	fputs(n ? "\n  ]\n" : "]\n", out);
}

void ap_write_json_open(const struct ap_profile *p, FILE *out)
{
	write_header(out, p);
	write_mappings(out, p);
	write_frames(out, p);
	write_stacks(out, p);
	write_samples(out, p);
}

int ap_write_json(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts)
{
	(void)opts;
	ap_write_json_open(p, out);
	fputs("}\n", out);
	return ap_stream_status(out);
}
