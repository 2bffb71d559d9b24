// SPDX-License-Identifier: MIT
/*
 * aperture query / diff: a merged profile from aperture-aggregator (GET /api/v1/profile,
 * pprof), written as `report` writes a file; or two of them compared with the same diff
 * writer as the aggregator's /api/v1/diff, so both give the same output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli.h"
#include "format/diff.h"
#include "format/format.h"
#include "lib/parse.h"
#include "remote.h"

#define MAX_TOP 100000
#define MAX_NODES_LIMIT 1000000
#define TIME_LEN 128

static void query_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: aperture query [--server URL] QUERY [--from TIME] [--until TIME] [-o OUT]\n"
	    "                      [--format FMT] [--value TYPE] [--top N] [--token-file F]\n"
	    "                      [--ca-file F]\n"
	    "\n"
	    "Fetch the merged profile of QUERY over a time range from aperture-aggregator and\n"
	    "print its top functions, or write it as `aperture report` does (format from\n"
	    "--format or OUT's extension: svg, folded, pprof, json, text).\n"
	    "\n"
	    "  QUERY            label matchers, e.g. '{mode=\"cpu\",comm=~\"post.*\"}'; name the\n"
	    "                   mode when several modes match\n"
	    "  --from, --until  -1h, -30m (relative to now), now, RFC 3339 or unix time\n"
	    "                   (default: the last hour)\n"
	    "  --value TYPE     the value that weights the output (samples, cpu, delay, ...)\n"
	    "  --top N          rows of the text table (default 25)\n"
	    "  --server URL     the aggregator (default: $APERTURE_SERVER, else %s)\n"
	    "  --token-file F   the read token (default: $APERTURE_TOKEN_FILE)\n"
	    "  --ca-file F      CA certificate that signed an https:// server's certificate\n",
	    AP_CLI_DEFAULT_SERVER);
}

static void diff_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: aperture diff [--server URL] QUERY [--from TIME] [--until TIME]\n"
	    "                     [--to-query Q] [--to-from TIME] [--to-until TIME]\n"
	    "                     [--absolute] [-o OUT] [--format FMT] [--value TYPE]\n"
	    "                     [--top N] [--max-nodes N] [--token-file F] [--ca-file F]\n"
	    "\n"
	    "Compare the base (QUERY over --from..--until) with the comparison (--to-query over\n"
	    "--to-from..--to-until): per-function and per-stack changes, the base scaled to the\n"
	    "comparison's total unless --absolute. --to-query and --to-from default to the\n"
	    "base's; --to-until to now when --to-from is given, else to the base's --until.\n"
	    "Formats (--format, or OUT's extension): text (default), json, flamegraph (the\n"
	    "web UI's JSON), folded (\"stack base cmp\", for flamegraph.pl), svg (red = grew,\n"
	    "blue = shrank).\n"
	    "\n"
	    "  --top N          rows of the text table (default 25), of the json lists (all)\n"
	    "  --max-nodes N    nodes of the flamegraph JSON (default 16384)\n"
	    "  Other options as for 'aperture query'.\n");
}

/* The options both commands take. */
struct remote_args {
	struct ap_remote r;
	const char *query, *output, *format, *value;
	char from[TIME_LEN], until[TIME_LEN];
	size_t top_n;
};

enum {
	OPT_FROM = 256,
	OPT_UNTIL,
	OPT_VALUE,
	OPT_TOKEN,
	OPT_CA,
	OPT_SERVER,
	OPT_TO_QUERY,
	OPT_TO_FROM,
	OPT_TO_UNTIL,
	OPT_ABSOLUTE,
	OPT_MAX_NODES,
	OPT_TOP,
};

static int time_arg(const char *cmd, const char *flag, const char *in, char *out)
{
	if (strlen(in) >= TIME_LEN || ap_remote_time(in, out, TIME_LEN))
		return ap_cli_usage_error(cmd,
					  "invalid %s '%s': use -1h, -30m, now, RFC 3339 or unix "
					  "time",
					  flag, in);
	return 0;
}

/* Handles an option common to both commands. Returns 0, 1 (not one of them) or an exit
 * status. */
static int common_opt(struct remote_args *a, int c, const char *arg)
{
	const char *cmd = a->r.cmd;
	uint64_t v;

	switch (c) {
	case OPT_SERVER:
		a->r.server = arg;
		return 0;
	case OPT_FROM:
		return time_arg(cmd, "--from", arg, a->from);
	case OPT_UNTIL:
		return time_arg(cmd, "--until", arg, a->until);
	case 'o':
		a->output = arg;
		return 0;
	case 'f':
		a->format = arg;
		return 0;
	case OPT_VALUE:
		a->value = arg;
		return 0;
	case OPT_TOP:
		if (ap_parse_u64(arg, 1, MAX_TOP, &v))
			return ap_cli_usage_error(cmd, "invalid --top '%s': expected 1..%d", arg,
						  MAX_TOP);
		a->top_n = v;
		return 0;
	case OPT_TOKEN:
		a->r.token_file = arg;
		return 0;
	case OPT_CA:
		a->r.ca_file = arg;
		return 0;
	default:
		return 1;
	}
}

#define COMMON_LONG_OPTS                                                                           \
	{"server", required_argument, NULL, OPT_SERVER},                                           \
	    {"from", required_argument, NULL, OPT_FROM},                                           \
	    {"until", required_argument, NULL, OPT_UNTIL},                                         \
	    {"output", required_argument, NULL, 'o'}, {"format", required_argument, NULL, 'f'},    \
	    {"value", required_argument, NULL, OPT_VALUE},                                         \
	    {"top", required_argument, NULL, OPT_TOP},                                             \
	    {"token-file", required_argument, NULL, OPT_TOKEN},                                    \
	    {"ca-file", required_argument, NULL, OPT_CA},                                          \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

/* Fetches the merged pprof of query over [from, until) and decodes it. */
static int fetch_profile(struct ap_remote *r, const char *query, const char *from,
			 const char *until, struct ap_profile **out)
{
	static const char *const names[] = {"query", "from", "until", "format"};
	const char *values[] = {query, from, until, "pprof"};
	struct ap_remote_body body;
	struct ap_profile *p;
	char err[512] = "";
	int ret;

	ret = ap_remote_get(r, "/api/v1/profile", names, values, 4, &body);
	if (ret)
		return ret;
	p = ap_profile_new();
	if (!p) {
		ap_remote_body_free(&body);
		fprintf(stderr, "aperture %s: out of memory\n", r->cmd);
		return AP_EXIT_FAILURE;
	}
	ret = ap_read_pprof_limited(body.data, body.len, 0, p, err, sizeof(err));
	ap_remote_body_free(&body);
	if (ret) {
		fprintf(stderr,
			"aperture %s: the aggregator's answer is not a profile I can read: %s\n",
			r->cmd, err[0] ? err : strerror(-ret));
		ap_profile_free(p);
		return AP_EXIT_FAILURE;
	}
	*out = p;
	return 0;
}

/* "samples, cpu" into buf: the value types a profile has, for messages. */
static const char *value_list(const struct ap_profile *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ap_profile_nvalues(p) && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
					ap_profile_str(p, ap_profile_value_type(p, i)->type));
	if (!buf[0])
		snprintf(buf, len, "none");
	return buf;
}

int ap_cli_query(int argc, char **argv)
{
	static const struct option opts[] = {COMMON_LONG_OPTS, {NULL, 0, NULL, 0}};
	struct remote_args a = {.r.cmd = "query", .from = "now-1h", .until = "now"};
	struct ap_write_opts wo = {.value_index = -1};
	enum ap_format fmt = AP_FORMAT_NONE;
	struct ap_profile *p = NULL;
	char types[256];
	int c, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:f:h", opts, NULL)) != -1) {
		if (c == 'h') {
			query_usage(stdout);
			return AP_EXIT_OK;
		}
		if (c == ':')
			return ap_cli_usage_error("query", "option '%s' needs a value",
						  argv[optind - 1]);
		ret = c == '?' ? 1 : common_opt(&a, c, optarg);
		if (ret == 1)
			return ap_cli_usage_error("query", "unknown option '%s'", argv[optind - 1]);
		if (ret)
			return ret;
	}
	if (optind != argc - 1)
		return ap_cli_usage_error("query", "%s",
					  optind >= argc ? "missing QUERY (e.g. '{mode=\"cpu\"}')"
							 : "too many arguments");
	a.query = argv[optind];
	if (a.format && ap_format_from_name(a.format, &fmt))
		return ap_cli_usage_error("query", "unknown format '%s'", a.format);
	if (ap_cli_output_format("query", a.output, &fmt))
		return AP_EXIT_USAGE;
	wo.top_n = a.top_n;

	ret = ap_remote_init(&a.r);
	if (!ret)
		ret = fetch_profile(&a.r, a.query, a.from, a.until, &p);
	ap_remote_close(&a.r);
	if (ret)
		return ret;
	if (a.value) {
		wo.value_index = ap_profile_value_index(p, a.value);
		if (wo.value_index < 0) {
			ret = ap_cli_usage_error("query",
						 "no value type '%s' in this profile (it has: %s)",
						 a.value, value_list(p, types, sizeof(types)));
			ap_profile_free(p);
			return ret;
		}
	}
	ret = ap_cli_write_profile("query", p, fmt, a.output, &wo);
	ap_profile_free(p);
	return ret;
}

/* Whether `type` (NULL: cmp's default) is a value type of both: ap_write_diff's rule. */
static bool value_in_both(const struct ap_profile *base, const struct ap_profile *cmp,
			  const char *type)
{
	if (!type) {
		const struct ap_value_type *vt;

		if (!ap_profile_nvalues(cmp))
			return !ap_profile_nvalues(base);
		vt = ap_profile_value_type(cmp, ap_profile_default_value(cmp));
		type = ap_profile_str(cmp, vt->type);
	}
	return ap_profile_value_index(cmp, type) >= 0 && ap_profile_value_index(base, type) >= 0;
}

struct diff_write {
	const struct ap_profile *base, *cmp;
	enum ap_diff_format fmt;
	const struct ap_diff_opts *opts;
};

static int write_diff(FILE *out, const void *ctx)
{
	const struct diff_write *w = ctx;

	return ap_write_diff(w->base, w->cmp, w->fmt, out, w->opts);
}

/* --format, else the output's extension (.svg, .json, .folded/.txt), else text. */
static int diff_format(const char *format, const char *output, enum ap_diff_format *fmt)
{
	enum ap_format by_ext;

	if (format) {
		if (ap_diff_format_from_name(format, fmt))
			return ap_cli_usage_error("diff",
						  "unknown format '%s': text, json, flamegraph, "
						  "folded or svg",
						  format);
		return 0;
	}
	*fmt = AP_DIFF_TEXT;
	if (!output || (strcmp(output, "-") == 0))
		return 0;
	if (ap_format_from_path(output, &by_ext) || by_ext == AP_FORMAT_PPROF)
		return ap_cli_usage_error("diff", "cannot tell the format of '%s': use --format",
					  output);
	*fmt = by_ext == AP_FORMAT_SVG	  ? AP_DIFF_SVG
	       : by_ext == AP_FORMAT_JSON ? AP_DIFF_JSON
					  : AP_DIFF_FOLDED;
	return 0;
}

int ap_cli_diff(int argc, char **argv)
{
	static const struct option opts[] = {
	    COMMON_LONG_OPTS,
	    {"to-query", required_argument, NULL, OPT_TO_QUERY},
	    {"to-from", required_argument, NULL, OPT_TO_FROM},
	    {"to-until", required_argument, NULL, OPT_TO_UNTIL},
	    {"absolute", no_argument, NULL, OPT_ABSOLUTE},
	    {"max-nodes", required_argument, NULL, OPT_MAX_NODES},
	    {NULL, 0, NULL, 0},
	};
	struct remote_args a = {.r.cmd = "diff", .from = "now-1h", .until = "now"};
	struct ap_diff_opts dopts = {.normalize = true};
	char to_from[TIME_LEN] = "", to_until[TIME_LEN] = "", types[2][256];
	struct ap_profile *base = NULL, *cmp = NULL;
	const char *to_query = NULL;
	enum ap_diff_format fmt;
	struct diff_write w;
	uint64_t v;
	int c, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			diff_usage(stdout);
			return AP_EXIT_OK;
		case ':':
			return ap_cli_usage_error("diff", "option '%s' needs a value",
						  argv[optind - 1]);
		case OPT_TO_QUERY:
			to_query = optarg;
			continue;
		case OPT_TO_FROM:
			ret = time_arg("diff", "--to-from", optarg, to_from);
			if (ret)
				return ret;
			continue;
		case OPT_TO_UNTIL:
			ret = time_arg("diff", "--to-until", optarg, to_until);
			if (ret)
				return ret;
			continue;
		case OPT_ABSOLUTE:
			dopts.normalize = false;
			continue;
		case OPT_MAX_NODES:
			if (ap_parse_u64(optarg, 1, MAX_NODES_LIMIT, &v))
				return ap_cli_usage_error(
				    "diff", "invalid --max-nodes '%s': expected 1..%d", optarg,
				    MAX_NODES_LIMIT);
			dopts.max_nodes = v;
			continue;
		default:
			break;
		}
		ret = c == '?' ? 1 : common_opt(&a, c, optarg);
		if (ret == 1)
			return ap_cli_usage_error("diff", "unknown option '%s'", argv[optind - 1]);
		if (ret)
			return ret;
	}
	if (optind != argc - 1)
		return ap_cli_usage_error("diff", "%s",
					  optind >= argc ? "missing QUERY (e.g. '{mode=\"cpu\"}')"
							 : "too many arguments");
	a.query = argv[optind];
	if (diff_format(a.format, a.output, &fmt))
		return AP_EXIT_USAGE;
	dopts.value_type = a.value;
	dopts.top_n = a.top_n;

	ret = ap_remote_init(&a.r);
	if (!ret)
		ret = fetch_profile(&a.r, a.query, a.from, a.until, &base);
	if (!ret)
		ret = fetch_profile(&a.r, to_query ? to_query : a.query,
				    to_from[0] ? to_from : a.from,
				    /* "--to-from -1h" alone reads as "the last hour" */
				    to_until[0] ? to_until : to_from[0] ? "now" : a.until,
				    &cmp);
	ap_remote_close(&a.r);
	if (ret)
		goto out;
	w = (struct diff_write){.base = base, .cmp = cmp, .fmt = fmt, .opts = &dopts};
	/* a value type missing on one side: say which types each side has (the writer
	 * would only say EINVAL) */
	if (!value_in_both(base, cmp, a.value)) {
		ret = AP_EXIT_FAILURE;
		fprintf(stderr,
			"aperture diff: value type '%s' is not in both profiles (base: %s; "
			"comparison: %s)%s\n",
			a.value ? a.value : "(the comparison's default)",
			value_list(base, types[0], sizeof(types[0])),
			value_list(cmp, types[1], sizeof(types[1])),
			a.value ? "" : ": pick one with --value");
		goto out;
	}
	ret = ap_cli_write_output("diff", a.output, write_diff, &w);
out:
	ap_profile_free(base);
	ap_profile_free(cmp);
	return ret;
}
