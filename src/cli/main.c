// SPDX-License-Identifier: MIT
/* aperture: the command-line front end. Commands come from one table. */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli.h"

static int cmd_record(int argc, char **argv)
{
	return ap_agent_main(argc, argv, "aperture record");
}

static const struct ap_cli_command commands[] = {
	{ "record", "record a profile (same flags as aperture-agent)", cmd_record },
	{ "report", "print the top functions of a profile file, or convert it", ap_cli_report },
	{ "filter", "check a WebAssembly event filter, or run it on recorded events", ap_cli_filter },
	{ "query", "fetch a merged profile from aperture-aggregator", ap_cli_query },
	{ "diff", "compare two queries or time ranges on aperture-aggregator", ap_cli_diff },
	{ "labels", "list label names, or a label's values, on aperture-aggregator", ap_cli_labels },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: aperture COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nquery, diff and labels talk to the aggregator at --server, else $APERTURE_SERVER,\n"
		     "else http://127.0.0.1:7070.\n");
	fprintf(out, "\nRun 'aperture COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return AP_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return AP_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "aperture: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return AP_EXIT_USAGE;
}
