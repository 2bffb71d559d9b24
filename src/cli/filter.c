// SPDX-License-Identifier: MIT
/*
 * aperture filter check FILE.wasm      validate a filter module, print its ABI, exports,
 *                                      imports and limits
 * aperture filter run FILE.wasm --events EVENTS.json
 *                                      run it on recorded events and print the decisions
 * Neither needs root. Load failures exit 2, like the agent's --filter.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli.h"
#include "filter/filter.h"
#include "filter_events.h"
#include "lib/json_parse.h"
#include "lib/log.h"
#include "lib/parse.h"

struct filter_args {
	const char *file, *events, *config;
	struct ap_filter_opts opts;
	bool json, verbose;
};

static void filter_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: aperture filter check FILE.wasm [OPTIONS]\n"
	    "       aperture filter run FILE.wasm --events EVENTS.json [OPTIONS]\n"
	    "\n"
	    "Validate a WebAssembly event filter, or run it on recorded events, without root.\n"
	    "docs/filters.md describes the ABI, the SDK and the events file.\n"
	    "\n"
	    "Options:\n"
	    "  --events FILE         JSON array of events to filter (run)\n"
	    "  --filter-config S     configuration passed to the filter's ap_init (key=value,...)\n"
	    "  --engine E            auto (default), interp or aot\n"
	    "  --on-error A          keep (default) or drop events whose filter call traps\n"
	    "  --fuel N              instruction budget per event (default %llu)\n"
	    "  --memory-pages N      linear memory cap in 64 KiB pages (default %u)\n"
	    "  --call-depth N        nested call limit (default %u)\n"
	    "  --agent-pid N         what env.agent_pid returns (default: this process)\n"
	    "  --json                JSON output\n"
	    "  -v, --verbose         also show the filter's info and debug messages\n",
	    (unsigned long long)AP_FILTER_DEFAULT_FUEL, AP_FILTER_DEFAULT_MEMORY_PAGES,
	    AP_FILTER_DEFAULT_CALL_DEPTH);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "aperture filter: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'aperture filter --help' for more information.\n");
	return AP_EXIT_USAGE;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void log_to_stderr(void *ctx, enum ap_filter_log_level level, const char *msg)
{
	static const enum ap_log_level map[] = { AP_LOG_ERROR, AP_LOG_WARN, AP_LOG_INFO,
						 AP_LOG_DEBUG };
	(void)ctx;
	ap_log(map[level <= AP_FILTER_LOG_DEBUG ? level : AP_FILTER_LOG_DEBUG], "%s", msg);
}

static int parse_args(int argc, char **argv, struct filter_args *a)
{
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'e' },
		{ "filter-config", required_argument, NULL, 'c' },
		{ "engine", required_argument, NULL, 'E' },
		{ "on-error", required_argument, NULL, 'O' },
		{ "fuel", required_argument, NULL, 'F' },
		{ "memory-pages", required_argument, NULL, 'M' },
		{ "call-depth", required_argument, NULL, 'D' },
		{ "agent-pid", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c, pid;

	ap_filter_opts_init(&a->opts);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			a->events = optarg;
			break;
		case 'c':
			a->config = optarg;
			break;
		case 'E':
			if (ap_filter_parse_engine(optarg, &a->opts.engine))
				return usage_error("--engine must be auto, interp or aot, not '%s'",
						   optarg);
			break;
		case 'O':
			if (ap_filter_parse_on_error(optarg, &a->opts.on_error))
				return usage_error("--on-error must be keep or drop, not '%s'",
						   optarg);
			break;
		case 'F':
			if (ap_parse_u64(optarg, 1, 1ull << 40, &v))
				return usage_error("invalid --fuel '%s'", optarg);
			a->opts.limits.fuel = v;
			break;
		case 'M':
			if (ap_parse_u64(optarg, 1, AP_FILTER_MAX_MEMORY_PAGES, &v))
				return usage_error("invalid --memory-pages '%s'", optarg);
			a->opts.limits.max_memory_pages = (uint32_t)v;
			break;
		case 'D':
			if (ap_parse_u64(optarg, 1, AP_FILTER_MAX_CALL_DEPTH, &v))
				return usage_error("invalid --call-depth '%s'", optarg);
			a->opts.limits.max_call_depth = (uint32_t)v;
			break;
		case 'P':
			if (ap_parse_pid(optarg, &pid))
				return usage_error("invalid --agent-pid '%s'", optarg);
			a->opts.agent_pid = pid;
			break;
		case 'j':
			a->json = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'h':
			filter_usage(stdout);
			return -1;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error("%s",
				   optind >= argc ? "missing FILE.wasm" : "too many arguments");
	a->file = argv[optind];
	if (a->verbose && ap_log_get_level() < AP_LOG_DEBUG)
		ap_log_set_level(AP_LOG_DEBUG);
	a->opts.log = log_to_stderr; /* warnings and errors; -v: all */
	return 0;
}

/* A load failure: message to stderr (and a JSON error document with --json), exit 2. */
static int load_failed(const struct filter_args *a, const char *err)
{
	fprintf(stderr, "aperture filter: %s\n", err);
	if (a->json) {
		printf("{\"file\":");
		json_str(stdout, a->file);
		printf(",\"valid\":false,\"error\":");
		json_str(stdout, err);
		printf("}\n");
	}
	return AP_EXIT_USAGE;
}

static void print_check_plain(const struct ap_filter_info *in, bool has_config)
{
	const struct ap_filter_limits *l = &in->limits;

	printf("%s: valid filter\n", in->path);
	printf("  ABI version:    %u\n", in->abi_version);
	printf("  engine:         %s%s%s%s\n", in->engine, in->engine_note[0] ? " (" : "",
	       in->engine_note, in->engine_note[0] ? ")" : "");
	printf("  size:           %zu bytes (%zu after metering)\n", in->module_bytes,
	       in->instrumented_bytes);
	printf("  functions:      %u (%u imported, %u depth-counted)\n", in->functions,
	       in->imported_functions, in->depth_counted_functions);
	printf("  memory:         %u pages initial, at most %u pages", in->memory_initial_pages,
	       in->memory_max_pages);
	if (in->memory_declared_max == UINT32_MAX)
		printf(" (no maximum declared)\n");
	else
		printf(" (declared %u)\n", in->memory_declared_max);
	printf("  event buffer:   offset %u\n", in->buffer_offset);
	printf("  configuration:  %s\n",
	       in->has_init ? has_config ? "accepted by ap_init" : "ap_init (none given)"
			    : "none (no ap_init)");
	printf("  exports:\n");
	for (size_t i = 0; i < in->nexports; i++)
		printf("    %-24s %s\n", in->exports[i].name, in->exports[i].type);
	printf("  imports:%s\n", in->nimports ? "" : " none");
	for (size_t i = 0; i < in->nimports; i++)
		printf("    %-24s %s\n", in->imports[i].name, in->imports[i].type);
	printf("  limits:\n");
	printf("    fuel per event         %llu\n", (unsigned long long)l->fuel);
	printf("    fuel for setup         %llu\n", (unsigned long long)l->init_fuel);
	printf("    memory                 %u pages (%u KiB)\n", l->max_memory_pages,
	       l->max_memory_pages * 64);
	printf("    call depth             %u\n", l->max_call_depth);
	printf("    module size            %u bytes\n", l->max_module_bytes);
	printf("    functions              %u\n", l->max_functions);
	printf("    locals per function    %u\n", l->max_locals);
	printf("    native stack (aot)     %llu KiB\n",
	       (unsigned long long)(l->max_native_stack / 1024));
}

static void print_check_json(const struct ap_filter_info *in)
{
	const struct ap_filter_limits *l = &in->limits;

	printf("{\"file\":");
	json_str(stdout, in->path);
	printf(",\"valid\":true,\"abi_version\":%u,\"engine\":\"%s\",\"engine_note\":",
	       in->abi_version, in->engine);
	json_str(stdout, in->engine_note);
	printf(",\"module_bytes\":%zu,\"instrumented_bytes\":%zu,\"functions\":%u,"
	       "\"imported_functions\":%u,\"memory\":{\"initial_pages\":%u,\"max_pages\":%u},"
	       "\"event_buffer\":%u,\"has_init\":%s,\"exports\":[",
	       in->module_bytes, in->instrumented_bytes, in->functions, in->imported_functions,
	       in->memory_initial_pages, in->memory_max_pages, in->buffer_offset,
	       in->has_init ? "true" : "false");
	for (size_t i = 0; i < in->nexports; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_str(stdout, in->exports[i].name);
		printf(",\"type\":");
		json_str(stdout, in->exports[i].type);
		printf("}");
	}
	printf("],\"imports\":[");
	for (size_t i = 0; i < in->nimports; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_str(stdout, in->imports[i].name);
		printf(",\"type\":");
		json_str(stdout, in->imports[i].type);
		printf("}");
	}
	printf("],\"limits\":{\"fuel\":%llu,\"init_fuel\":%llu,\"memory_pages\":%u,"
	       "\"call_depth\":%u,\"module_bytes\":%u,\"functions\":%u,\"locals\":%u,"
	       "\"native_stack_bytes\":%llu}}\n",
	       (unsigned long long)l->fuel, (unsigned long long)l->init_fuel, l->max_memory_pages,
	       l->max_call_depth, l->max_module_bytes, l->max_functions, l->max_locals,
	       (unsigned long long)l->max_native_stack);
}

static int cmd_check(const struct filter_args *a)
{
	struct ap_filter *f = NULL;
	char err[1024];

	if (ap_filter_load(a->file, a->config, &a->opts, &f, err, sizeof(err)))
		return load_failed(a, err);
	if (a->json)
		print_check_json(ap_filter_get_info(f));
	else
		print_check_plain(ap_filter_get_info(f), a->config && *a->config);
	ap_filter_free(f);
	return AP_EXIT_OK;
}

/* env.frame_symbol/frame_module from the names in the events file. */
static int names_lookup(void *ctx, const struct ap_filter_event *ev, uint32_t frame,
			enum ap_filter_sym_kind kind, char *buf, size_t len)
{
	const struct ap_cli_event_names *names = ctx;
	const char *s =
	    kind == AP_FILTER_SYM_FUNCTION ? names->symbol[frame] : names->module[frame];
	(void)ev;
	if (!s)
		return -ENOENT;
	snprintf(buf, len, "%s", s);
	return (int)strlen(s);
}

static void print_decision(bool json, size_t idx, const struct ap_filter_event *ev, int verdict,
			   const struct ap_filter_event *out, enum ap_filter_trap trap,
			   const char *trap_msg)
{
	if (!json) {
		printf("#%zu %s pid %u tid %u comm %s: %s", idx, ap_cli_event_type_name(ev->type),
		       ev->pid, ev->tid, ev->comm, ap_filter_verdict_name(verdict));
		if (verdict == AP_FILTER_TRANSFORM)
			printf(" (comm \"%s\", tag \"%s\", weight %" PRIu64
			       ", frames %u kernel + %u "
			       "user)",
			       out->comm, out->tag, out->weight, out->n_kernel, out->n_user);
		if (trap)
			printf(" (trap %s: %s)", ap_filter_trap_name(trap),
			       trap_msg ? trap_msg : "");
		printf("\n");
		return;
	}
	printf("%s{\"index\":%zu,\"verdict\":\"%s\",\"trap\":", idx ? "," : "", idx,
	       ap_filter_verdict_name(verdict));
	if (trap) {
		printf("{\"reason\":\"%s\",\"message\":", ap_filter_trap_name(trap));
		json_str(stdout, trap_msg ? trap_msg : "");
		printf("}");
	} else {
		printf("null");
	}
	if (verdict == AP_FILTER_TRANSFORM) {
		printf(",\"event\":{\"comm\":");
		json_str(stdout, out->comm);
		printf(",\"tag\":");
		json_str(stdout, out->tag);
		printf(",\"weight\":%" PRIu64 ",\"kernel_stack\":[", out->weight);
		for (uint32_t i = 0; i < out->n_kernel; i++)
			printf("%s\"0x%" PRIx64 "\"", i ? "," : "", out->frames[i]);
		printf("],\"user_stack\":[");
		for (uint32_t i = 0; i < out->n_user; i++)
			printf("%s\"0x%" PRIx64 "\"", i ? "," : "", out->frames[out->n_kernel + i]);
		printf("]}");
	}
	printf("}");
}

static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;
		if (*len == cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);
			if (!nb) {
				snprintf(err, errlen, "%s: out of memory", path);
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = fread(buf + *len, 1, cap - *len, fp);
		*len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static int cmd_run(struct filter_args *a)
{
	struct ap_cli_event_names *names = calloc(1, sizeof(*names));
	struct ap_filter_event *ev = malloc(sizeof(*ev)), *out = malloc(sizeof(*out));
	struct ap_json *root = NULL;
	struct ap_filter *f = NULL;
	struct ap_filter_stats st;
	char err[1024];
	size_t len = 0;
	char *text = NULL;
	int ret = AP_EXIT_FAILURE;

	if (!names || !ev || !out) {
		fprintf(stderr, "aperture filter: out of memory\n");
		goto out;
	}
	if (!a->events) {
		ret = usage_error("%s", "run needs --events EVENTS.json");
		goto out;
	}
	text = read_text(a->events, &len, err, sizeof(err));
	if (!text) {
		fprintf(stderr, "aperture filter: %s\n", err);
		ret = AP_EXIT_USAGE;
		goto out;
	}
	root = ap_json_parse(text, len, err, sizeof(err));
	if (!root || root->type != AP_JSON_ARRAY) {
		fprintf(stderr, "aperture filter: %s: %s\n", a->events,
			root ? "expected a JSON array of events" : err);
		ret = AP_EXIT_USAGE;
		goto out;
	}
	/* all events are checked before the filter is loaded */
	for (size_t i = 0; i < root->len; i++) {
		if (ap_cli_event_from_json(&root->items[i], ev, names, err, sizeof(err))) {
			fprintf(stderr, "aperture filter: %s: event %zu: %s\n", a->events, i, err);
			ret = AP_EXIT_USAGE;
			goto out;
		}
	}
	a->opts.symbolize = names_lookup;
	a->opts.symbolize_ctx = names;
	if (ap_filter_load(a->file, a->config, &a->opts, &f, err, sizeof(err))) {
		ret = load_failed(a, err);
		goto out;
	}
	if (a->json) {
		printf("{\"file\":");
		json_str(stdout, a->file);
		printf(",\"engine\":\"%s\",\"decisions\":[", ap_filter_get_info(f)->engine);
	}
	for (size_t i = 0; i < root->len; i++) {
		const char *msg;
		enum ap_filter_trap trap;
		int verdict;
		ap_cli_event_from_json(&root->items[i], ev, names, err, sizeof(err));
		verdict = ap_filter_run(f, ev, out);
		trap = ap_filter_last_trap(f, &msg);
		print_decision(a->json, i, ev, verdict, out, trap, msg);
	}
	ap_filter_get_stats(f, &st);
	if (a->json) {
		printf("],\"stats\":");
		ap_filter_stats_json(stdout, &st);
		printf("}\n");
	} else {
		printf("%s (engine %s):\n", a->file, ap_filter_get_info(f)->engine);
		ap_filter_stats_print(stdout, &st, "  ");
	}
	ret = AP_EXIT_OK;
out:
	ap_filter_free(f);
	ap_json_free(root);
	free(text);
	free(names);
	free(ev);
	free(out);
	return ret;
}

int ap_cli_filter(int argc, char **argv)
{
	struct filter_args a = { 0 };
	const char *verb = argc > 1 ? argv[1] : NULL;
	int ret;

	if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 ||
	    strcmp(verb, "help") == 0) {
		filter_usage(verb ? stdout : stderr);
		return verb ? AP_EXIT_OK : AP_EXIT_USAGE;
	}
	if (strcmp(verb, "check") && strcmp(verb, "run"))
		return usage_error("unknown verb '%s' (check or run)", verb);
	ret = parse_args(argc - 1, argv + 1, &a);
	if (ret)
		return ret < 0 ? AP_EXIT_OK : ret;
	if (strcmp(verb, "check") == 0) {
		if (a.events)
			return usage_error("%s", "--events is for 'run'");
		return cmd_check(&a);
	}
	return cmd_run(&a);
}
