// SPDX-License-Identifier: MIT
/* aperture report FILE [-o OUT] [--format FMT] [--top N]: read a pprof or folded profile. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "cli.h"
#include "format/format.h"
#include "agent/output.h"
#include "lib/parse.h"

#define MAX_TOP 100000

static void report_usage(FILE *out)
{
	fprintf(out,
		"Usage: aperture report FILE [-o OUT] [--format FMT] [--top N] [--max-size SIZE]\n"
		"\n"
		"Read a pprof (.pb.gz), Aperture JSON or folded profile (FILE '-' = stdin).\n"
		"Without -o, print the top functions (self and cumulative); with -o, convert it\n"
		"(format from --format or OUT's extension: svg, folded, pprof, json, text).\n"
		"\n"
		"  --max-size SIZE  refuse inputs larger than SIZE, and gzip or JSON data that\n"
		"                   would take more than SIZE of memory to decode (default: 1GiB\n"
		"                   read, 256MiB decoded)\n");
}

int ap_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "aperture %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'aperture %s --help' for more information.\n", cmd);
	return AP_EXIT_USAGE;
}

#define report_error(...) ap_cli_usage_error("report", __VA_ARGS__)

/* -o x.pb.gz --format svg would write SVG where every tool expects pprof (as the agent). */
static int check_format_matches_path(const char *cmd, const char *output, enum ap_format fmt)
{
	size_t len = strlen(output);
	enum ap_format by_ext;

	if (ap_format_from_path(output, &by_ext) || by_ext == fmt ||
	    (fmt == AP_FORMAT_TEXT && len > 4 && strcasecmp(output + len - 4, ".txt") == 0))
		return 0;
	return ap_cli_usage_error(cmd,
				  "--format %s contradicts the extension of '%s' (%s): rename the "
				  "output or drop --format",
				  ap_format_name(fmt), output, ap_format_name(by_ext));
}

int ap_cli_output_format(const char *cmd, const char *output, enum ap_format *fmt)
{
	if (*fmt != AP_FORMAT_NONE && output && check_format_matches_path(cmd, output, *fmt))
		return AP_EXIT_USAGE;
	if (*fmt == AP_FORMAT_NONE) {
		if (!output)
			*fmt = AP_FORMAT_TEXT;
		else if (ap_format_from_path(output, fmt))
			return ap_cli_usage_error(cmd, "cannot tell the format of '%s': use --format",
						  output);
	}
	/* the Chrome trace is a timeline of calls: a profile has none (docs/gpu.md) */
	if (*fmt == AP_FORMAT_TRACE)
		return ap_cli_usage_error(cmd,
					  "the trace format is written only by 'aperture-agent "
					  "--mode gpu' (a profile holds no timeline): use svg, "
					  "folded, pprof, json or text%s",
					  output ? " (and another file extension than "
						   ".trace.json/.perfetto.json)"
						 : "");
	return 0;
}

int ap_cli_write_output(const char *cmd, const char *output,
			int (*writer)(FILE *out, const void *ctx), const void *ctx)
{
	char err[512] = "";
	struct ap_output out;
	int ret;

	/* as the agent's: a device or FIFO in place, a file replaced only when complete */
	ret = ap_output_open(&out, output, err, sizeof(err));
	if (ret) {
		if (err[0])
			fprintf(stderr, "aperture %s: cannot write: %s\n", cmd, err);
		else
			fprintf(stderr, "aperture %s: cannot write '%s': %s\n", cmd, output,
				strerror(-ret));
		return AP_EXIT_USAGE;
	}
	ret = writer(out.f, ctx);
	if (!ret)
		ret = ap_output_commit(&out);
	if (ret) {
		fprintf(stderr, "aperture %s: writing %s failed: %s\n", cmd,
			output ? output : "stdout", strerror(-ap_output_error(&out, ret)));
		ap_output_discard(&out);
		return AP_EXIT_FAILURE;
	}
	return AP_EXIT_OK;
}

struct profile_write {
	const struct ap_profile *p;
	enum ap_format fmt;
	const struct ap_write_opts *wo;
};

static int write_profile(FILE *out, const void *ctx)
{
	const struct profile_write *w = ctx;

	return ap_format_write(w->p, w->fmt, out, w->wo);
}

int ap_cli_write_profile(const char *cmd, const struct ap_profile *p, enum ap_format fmt,
			 const char *output, const struct ap_write_opts *wo)
{
	struct profile_write w = {.p = p, .fmt = fmt, .wo = wo};

	return ap_cli_write_output(cmd, output, write_profile, &w);
}

int ap_cli_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "top", required_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ap_write_opts wo = { .value_index = -1 };
	struct ap_read_limits limits = { 0 };
	enum ap_format fmt = AP_FORMAT_NONE;
	const char *output = NULL;
	struct ap_profile *p = NULL;
	char err[512] = "";
	uint64_t v;
	int c, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:f:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'f':
			if (ap_format_from_name(optarg, &fmt))
				return report_error("unknown format '%s'", optarg);
			break;
		case 'n':
			if (ap_parse_u64(optarg, 1, MAX_TOP, &v))
				return report_error("invalid --top '%s': expected 1..%d", optarg,
						    MAX_TOP);
			wo.top_n = v;
			break;
		case 'm':
			if (ap_parse_size(optarg, 4096, UINT64_MAX / 4, &v))
				return report_error("invalid --max-size '%s' (e.g. 2GiB)", optarg);
			limits.max_input = v;
			limits.max_inflated = v;
			break;
		case 'h':
			report_usage(stdout);
			return AP_EXIT_OK;
		case ':':
			return report_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return report_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return report_error("%s", optind >= argc ? "missing FILE" : "too many arguments");
	if (ap_cli_output_format("report", output, &fmt))
		return AP_EXIT_USAGE;

	ret = ap_read_profile_file_limited(argv[optind], &limits, &p, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "aperture report: %s\n", err[0] ? err : strerror(-ret));
		return ret == -ENOENT || ret == -EACCES || ret == -EINVAL ? AP_EXIT_USAGE
									 : AP_EXIT_FAILURE;
	}
	ret = ap_cli_write_profile("report", p, fmt, output, &wo);
	ap_profile_free(p);
	return ret;
}
