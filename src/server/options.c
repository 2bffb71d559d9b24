// SPDX-License-Identifier: MIT
/* aperture-aggregator's flags: strict parsing, one clear message per mistake. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/parse.h"
#include "server.h"

#define MAX_BODY_LIMIT (4ULL << 30)
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_CONN_TIMEOUT_S 60

void ap_server_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [OPTIONS]\n"
		"The Aperture aggregator: agents push profiles to it, it stores them and answers\n"
		"queries, diffs and the web UI over HTTP (docs/api.md).\n"
		"\n"
		"  --listen ADDR:PORT        address to listen on (default %s;\n"
		"                            [::1]:7070 for IPv6, port 0 picks a free one)\n"
		"  --storage sqlite:PATH     where profiles are stored (default %s)\n"
		"  --retention DURATION      delete data older than this (default 7d; units s, m,\n"
		"                            h, d; 0 keeps everything)\n"
		"  --ingest-token-file FILE  pushes need this token (first line of FILE)\n"
		"  --read-token-file FILE    queries and the UI's API calls need this token\n"
		"  --tls-cert FILE           serve HTTPS with this PEM certificate (chain) ...\n"
		"  --tls-key FILE            ... and this PEM private key (unencrypted)\n"
		"  --max-body SIZE           largest request body (default 32M; K, M, G)\n"
		"  --max-inflated SIZE       largest size a gzipped profile may inflate to\n"
		"                            (default 8 x --max-body)\n"
		"  --threads N               HTTP worker threads (default 4 x CPUs, 8 to 64; at\n"
		"                            least 32 with a clickhouse:// store)\n"
		"  --max-connections N       open connections at most (default %d)\n"
		"  --timeout SECONDS         close a connection idle this long (default %d)\n"
		"  -v, --verbose             log every request (never tokens)\n"
		"  -h, --help                this help\n"
		"\n"
		"SIGTERM or SIGINT stops accepting connections, lets requests in flight finish\n"
		"(10 s at most) and closes the store.\n",
		prog, AP_SERVER_DEFAULT_LISTEN, AP_SERVER_DEFAULT_STORAGE, DEFAULT_MAX_CONNECTIONS,
		DEFAULT_CONN_TIMEOUT_S);
}

static int usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	return AP_SERVER_EXIT_USAGE;
}

/* "127.0.0.1:7070", "[::1]:7070", ":7070" (all IPv4 addresses), "0.0.0.0:0". */
static int parse_listen(const char *s, struct ap_server_opts *o)
{
	const char *colon, *host = s;
	size_t hlen;
	uint64_t port;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(end - host);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return -EINVAL; /* IPv6 needs brackets */
	}
	if (hlen >= sizeof(o->listen_host))
		return -EINVAL;
	if (hlen == 0) {
		strcpy(o->listen_host, "0.0.0.0");
	} else {
		memcpy(o->listen_host, host, hlen);
		o->listen_host[hlen] = 0;
	}
	if (ap_parse_u64(colon + 1, 0, 65535, &port))
		return -EINVAL;
	o->port = (uint16_t)port;
	return 0;
}

int ap_server_parse_args(int argc, char **argv, struct ap_server_opts *o)
{
	enum {
		OPT_LISTEN = 256,
		OPT_STORAGE,
		OPT_RETENTION,
		OPT_INGEST_TOKEN,
		OPT_READ_TOKEN,
		OPT_TLS_CERT,
		OPT_TLS_KEY,
		OPT_MAX_BODY,
		OPT_MAX_INFLATED,
		OPT_THREADS,
		OPT_MAX_CONN,
		OPT_TIMEOUT,
	};
	static const struct option long_opts[] = {
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"storage", required_argument, NULL, OPT_STORAGE},
	    {"retention", required_argument, NULL, OPT_RETENTION},
	    {"ingest-token-file", required_argument, NULL, OPT_INGEST_TOKEN},
	    {"read-token-file", required_argument, NULL, OPT_READ_TOKEN},
	    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
	    {"max-body", required_argument, NULL, OPT_MAX_BODY},
	    {"max-inflated", required_argument, NULL, OPT_MAX_INFLATED},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *prog = o->prog ? o->prog : "aperture-aggregator";
	uint64_t v;
	bool threads_given = false;
	long ncpu;
	int c;

	memset(o, 0, sizeof(*o));
	o->prog = prog;
	parse_listen(AP_SERVER_DEFAULT_LISTEN, o);
	o->storage = AP_SERVER_DEFAULT_STORAGE;
	o->retention_ns = AP_SERVER_DEFAULT_RETENTION_NS;
	o->max_body = AP_SERVER_DEFAULT_MAX_BODY;
	o->max_connections = DEFAULT_MAX_CONNECTIONS;
	o->conn_timeout_s = DEFAULT_CONN_TIMEOUT_S;
	/* A worker waits in each storage write until its batch is committed: more workers than
	 * CPUs keep the CPUs busy and the batches large. */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->threads = ncpu > 2 ? (unsigned)(ncpu * 4) : 8;
	if (o->threads > 64)
		o->threads = 64;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (parse_listen(optarg, o))
				return usage_error(prog,
						   "bad --listen '%s': expected ADDR:PORT with a "
						   "numeric address, e.g. 127.0.0.1:7070, "
						   "0.0.0.0:7070 or [::1]:7070",
						   optarg);
			break;
		case OPT_STORAGE:
			if (!*optarg)
				return usage_error(prog, "empty --storage: use sqlite:PATH");
			o->storage = optarg;
			break;
		case OPT_RETENTION:
			if (!strcmp(optarg, "0")) {
				o->retention_ns = 0;
			} else if (ap_server_parse_duration(optarg, &o->retention_ns)) {
				return usage_error(prog,
						   "bad --retention '%s': expected a duration such "
						   "as 7d, 12h, 30m (or 0 to keep everything)",
						   optarg);
			}
			break;
		case OPT_INGEST_TOKEN:
			o->ingest_token_file = optarg;
			break;
		case OPT_READ_TOKEN:
			o->read_token_file = optarg;
			break;
		case OPT_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = optarg;
			break;
		case OPT_MAX_BODY:
			if (ap_parse_size(optarg, 1024, MAX_BODY_LIMIT, &o->max_body))
				return usage_error(prog,
						   "bad --max-body '%s': expected a size from 1K "
						   "to 4G, e.g. 32M",
						   optarg);
			break;
		case OPT_MAX_INFLATED:
			if (ap_parse_size(optarg, 1024, 64ULL << 30, &o->max_inflated))
				return usage_error(prog,
						   "bad --max-inflated '%s': expected a size from "
						   "1K to 64G, e.g. 256M",
						   optarg);
			break;
		case OPT_THREADS:
			if (ap_parse_u64(optarg, 1, AP_SERVER_MAX_THREADS, &v))
				return usage_error(prog, "bad --threads '%s': expected 1..%d",
						   optarg, AP_SERVER_MAX_THREADS);
			o->threads = (unsigned)v;
			threads_given = true;
			break;
		case OPT_MAX_CONN:
			if (ap_parse_u64(optarg, 1, 1000000, &v))
				return usage_error(prog,
						   "bad --max-connections '%s': expected "
						   "1..1000000",
						   optarg);
			o->max_connections = (unsigned)v;
			break;
		case OPT_TIMEOUT:
			if (ap_parse_u64(optarg, 1, 86400, &v))
				return usage_error(
				    prog, "bad --timeout '%s': expected 1..86400 (s)", optarg);
			o->conn_timeout_s = (unsigned)v;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error(prog, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(prog,
				   "unexpected argument '%s' (this program takes options only)",
				   argv[optind]);
	if (!o->tls_cert != !o->tls_key)
		return usage_error(prog,
				   "--tls-cert and --tls-key go together: give both or neither");
	if (!o->max_inflated)
		o->max_inflated = o->max_body * 8;
	/* A ClickHouse write waits a network round trip or three (~100-300 ms) for its batch,
	 * against milliseconds for SQLite: the pushes in flight are what makes its batches, and
	 * its INSERTs cost per part, not per row (docs/deploy.md, "Sizing"). */
	if (!threads_given && !strncmp(o->storage, "clickhouse://", 13) &&
	    o->threads < AP_SERVER_CLICKHOUSE_THREADS)
		o->threads = AP_SERVER_CLICKHOUSE_THREADS;
	if (!strchr(o->storage, ':'))
		return usage_error(prog,
				   "bad --storage '%s': use sqlite:PATH, e.g. "
				   "sqlite:./aperture-data/aperture.db",
				   o->storage);
	return 0;
}
