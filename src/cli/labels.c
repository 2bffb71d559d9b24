// SPDX-License-Identifier: MIT
/* aperture labels [NAME]: the label names of the selected series, or the values of NAME, one
 * per line (GET /api/v1/labels, /api/v1/label-values). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli.h"
#include "lib/json_parse.h"
#include "remote.h"

#define TIME_LEN 128
/* The answer is a list of names: a few MiB is already absurd, refuse a runaway one. */
#define MAX_JSON_VALUES 10000000

static void labels_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: aperture labels [--server URL] [NAME] [--query Q] [--from TIME]\n"
	    "                       [--until TIME] [--token-file F] [--ca-file F]\n"
	    "\n"
	    "Print the label names of the series aperture-aggregator holds, or with NAME the\n"
	    "values of that label, one per line. --query narrows the series ('{mode=\"cpu\"}'),\n"
	    "--from/--until the time range (default: the last hour). Other options as for\n"
	    "'aperture query'.\n");
}

enum { OPT_SERVER = 256, OPT_QUERY, OPT_FROM, OPT_UNTIL, OPT_TOKEN, OPT_CA };

/* One line per string of the array `key`; control bytes (a hostile label) become '?'. */
static int print_list(const char *body, size_t len, const char *key)
{
	char err[256] = "";
	struct ap_json *j = ap_json_parse_max(body, len, MAX_JSON_VALUES, err, sizeof(err));
	const struct ap_json *list = j ? ap_json_get(j, key) : NULL;

	if (!list || list->type != AP_JSON_ARRAY) {
		fprintf(stderr, "aperture labels: the aggregator's answer has no \"%s\" list%s%s\n",
			key, err[0] ? ": " : "", err);
		ap_json_free(j);
		return AP_EXIT_FAILURE;
	}
	for (size_t i = 0; i < list->len; i++) {
		const struct ap_json *v = &list->items[i];

		if (v->type != AP_JSON_STRING)
			continue;
		for (size_t k = 0; k < v->len; k++)
			putchar((unsigned char)v->str[k] < 0x20 || v->str[k] == 0x7f ? '?'
										     : v->str[k]);
		putchar('\n');
	}
	ap_json_free(j);
	return fflush(stdout) || ferror(stdout) ? AP_EXIT_FAILURE : AP_EXIT_OK;
}

int ap_cli_labels(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"query", required_argument, NULL, OPT_QUERY},
	    {"from", required_argument, NULL, OPT_FROM},
	    {"until", required_argument, NULL, OPT_UNTIL},
	    {"token-file", required_argument, NULL, OPT_TOKEN},
	    {"ca-file", required_argument, NULL, OPT_CA},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const names[] = {"query", "from", "until", "name"};
	struct ap_remote r = {.cmd = "labels"};
	char from[TIME_LEN] = "now-1h", until[TIME_LEN] = "now";
	const char *values[4] = {NULL, from, until, NULL};
	struct ap_remote_body body;
	int c, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			r.server = optarg;
			break;
		case OPT_QUERY:
			values[0] = optarg;
			break;
		case OPT_FROM:
		case OPT_UNTIL:
			if (strlen(optarg) >= TIME_LEN ||
			    ap_remote_time(optarg, c == OPT_FROM ? from : until, TIME_LEN))
				return ap_cli_usage_error(
				    "labels",
				    "invalid %s '%s': use -1h, -30m, now, RFC "
				    "3339 or unix time",
				    c == OPT_FROM ? "--from" : "--until", optarg);
			break;
		case OPT_TOKEN:
			r.token_file = optarg;
			break;
		case OPT_CA:
			r.ca_file = optarg;
			break;
		case 'h':
			labels_usage(stdout);
			return AP_EXIT_OK;
		case ':':
			return ap_cli_usage_error("labels", "option '%s' needs a value",
						  argv[optind - 1]);
		default:
			return ap_cli_usage_error("labels", "unknown option '%s'",
						  argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return ap_cli_usage_error("labels", "too many arguments");
	if (optind < argc)
		values[3] = argv[optind];
	ret = ap_remote_init(&r);
	if (!ret)
		ret = ap_remote_get(&r, values[3] ? "/api/v1/label-values" : "/api/v1/labels",
				    names, values, 4, &body);
	ap_remote_close(&r);
	if (ret)
		return ret;
	ret = print_list(body.data, body.len, values[3] ? "values" : "names");
	ap_remote_body_free(&body);
	return ret;
}
