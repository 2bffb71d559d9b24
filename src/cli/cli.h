/* SPDX-License-Identifier: MIT */
#ifndef AP_CLI_H
#define AP_CLI_H

struct ap_cli_command {
	const char *name;
	const char *help;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

int ap_cli_report(int argc, char **argv);
int ap_cli_filter(int argc, char **argv);

#endif
