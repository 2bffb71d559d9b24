/* SPDX-License-Identifier: MIT */
/*
 * aperture-aggregator's HTTP side: options, the libmicrohttpd glue (http.c), auth (auth.c),
 * /metrics (metrics.c), the ingest and query routes (routes_*.c), query times (qtime.c).
 * Handlers are thin: ingest decodes with ingest.h and writes through storage.h; queries ask
 * storage.h and write with the format module.
 */
#ifndef AP_SERVER_H
#define AP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "storage/storage.h"

#define AP_SERVER_DEFAULT_LISTEN "127.0.0.1:7070"
#define AP_SERVER_DEFAULT_STORAGE "sqlite:./aperture-data/aperture.db"
#define AP_SERVER_DEFAULT_RETENTION_NS (7ULL * 86400 * 1000000000ULL)
#define AP_SERVER_DEFAULT_MAX_BODY (32ULL << 20)
#define AP_SERVER_MAX_THREADS 256
/* the default --threads with a ClickHouse store (at least) */
#define AP_SERVER_CLICKHOUSE_THREADS 32
#define AP_SERVER_MAX_TOKEN 4096

/* Exit codes of aperture-aggregator. */
#define AP_SERVER_EXIT_OK 0
#define AP_SERVER_EXIT_FAIL 1
#define AP_SERVER_EXIT_USAGE 2

struct ap_server_opts {
	const char *prog;
	char listen_host[256]; /* numeric address: "127.0.0.1", "::", "0.0.0.0" */
	uint16_t port;
	const char *storage;
	uint64_t retention_ns; /* 0 = forever */
	const char *ingest_token_file, *read_token_file;
	const char *tls_cert, *tls_key;
	uint64_t max_body;     /* bytes of one request body */
	uint64_t max_inflated; /* bytes a gzipped profile may inflate to */
	unsigned threads;
	unsigned max_connections;
	unsigned conn_timeout_s;
	bool verbose;
	bool help;
};

/* Parse argv. Returns 0, or AP_SERVER_EXIT_USAGE after printing the reason to stderr
 * (opts->help set: the caller prints the usage and exits 0). */
int ap_server_parse_args(int argc, char **argv, struct ap_server_opts *opts);
void ap_server_usage(FILE *out, const char *prog);

/* A token file: its first line, trimmed of whitespace. Refuses an unreadable, empty, group-
 * or world-writable file, a file that is not a regular file, or a token with control
 * characters. Returns 0 (*out malloc'ed) or -errno with the reason in err. */
int ap_server_read_token(const char *path, char **out, char *err, size_t errlen);

/* Query times (docs/api.md "Time"): "now", "now-1h" (s, m, h, d; also "now+5m"), RFC 3339
 * ("2026-12-06T14:00:00Z", fractions and offsets allowed), or unix time whose digit count
 * picks the unit (up to 10 digits: s, 13: ms, 16: us, 19: ns). Returns 0 or -EINVAL. */
int ap_server_parse_time(const char *s, uint64_t now_ns, uint64_t *out_ns);
/* A duration with units s, m, h, d (and ms, us, ns), e.g. "60s", "7d", "1.5h". > 0. */
int ap_server_parse_duration(const char *s, uint64_t *out_ns);

struct ap_server;

/* Start listening (threads of opts->threads) on the given open store. Returns NULL with the
 * reason in err (address in use, TLS files unreadable or not a certificate/key). */
struct ap_server *ap_server_start(const struct ap_server_opts *opts, struct ap_store *store,
				  const char *ingest_token, const char *read_token, char *err,
				  size_t errlen);
/* The port it listens on (useful with port 0). */
uint16_t ap_server_port(const struct ap_server *s);
/* Stop accepting connections, wait up to timeout_ms for requests in flight to be answered,
 * stop the threads. Returns the number of requests still in flight at the end (0 = clean).
 * The store stays open (the caller closes it). */
unsigned ap_server_shutdown(struct ap_server *s, unsigned timeout_ms);

#endif
