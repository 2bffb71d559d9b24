/* SPDX-License-Identifier: MIT */
#ifndef AP_CLI_H
#define AP_CLI_H

#include <stdio.h>

#include "format/format.h"

struct ap_cli_command {
	const char *name;
	const char *help;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

int ap_cli_report(int argc, char **argv);
int ap_cli_filter(int argc, char **argv);
int ap_cli_query(int argc, char **argv);
int ap_cli_diff(int argc, char **argv);
int ap_cli_labels(int argc, char **argv);

/* Shared by the commands (report.c). */
/* "aperture CMD: message" and the --help hint on stderr; returns AP_EXIT_USAGE. */
int ap_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The output format as `report` picks it: *fmt from --format (AP_FORMAT_NONE: not given),
 * else OUT's extension, else text; a --format that contradicts OUT's extension is refused.
 * Prints the error; returns 0 or AP_EXIT_USAGE. */
int ap_cli_output_format(const char *cmd, const char *output, enum ap_format *fmt);
/* Runs write() on the output (NULL = stdout), which replaces a file only when complete;
 * prints failures. Returns an exit status. */
int ap_cli_write_output(const char *cmd, const char *output,
			int (*writer)(FILE *out, const void *ctx), const void *ctx);
/* ap_cli_write_output() of ap_format_write(p, fmt, ..., wo). */
int ap_cli_write_profile(const char *cmd, const struct ap_profile *p, enum ap_format fmt,
			 const char *output, const struct ap_write_opts *wo);

#endif
