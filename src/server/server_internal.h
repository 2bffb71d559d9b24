/* SPDX-License-Identifier: MIT */
/* What the server's files share: the request, the route table, replies, metrics. */
#ifndef AP_SERVER_INTERNAL_H
#define AP_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "storage/storage.h"

/* Why a request was refused: one counter each in /metrics (aperture_refusals_total). */
enum ap_refusal {
	AP_REFUSE_UNAUTHORIZED,	      /* 401: no token or an unknown one */
	AP_REFUSE_FORBIDDEN,	      /* 403: the other side's token */
	AP_REFUSE_BODY_TOO_LARGE,     /* 413: body over --max-body */
	AP_REFUSE_INFLATED_TOO_LARGE, /* 413: gzip inflating over --max-inflated */
	AP_REFUSE_MALFORMED,	      /* 400: a push the decoders refused */
	AP_REFUSE_LABELS,	      /* 400: label count or length over the limits */
	AP_REFUSE_BAD_QUERY,	      /* 400: query parameters */
	AP_REFUSE_NOT_FOUND,	      /* 404 */
	AP_REFUSE_METHOD,	      /* 405 */
	AP_REFUSE_OVERLOADED,	      /* 429: write queue or body memory full */
	AP_REFUSE_STORAGE,	      /* 503: storage failed */
	AP_REFUSE_INTERNAL,	      /* 500: out of memory and the like */
	AP_REFUSE_N,
};
const char *ap_server_refusal_name(enum ap_refusal r);

enum ap_route_kind {
	AP_ROUTE_OPEN,	 /* /healthz, /metrics, static files */
	AP_ROUTE_INGEST, /* needs the ingest token */
	AP_ROUTE_READ,	 /* needs the read token */
};

/* Routes that count in the ingest metrics, and the query routes' latency histograms. */
enum ap_ingest_route { AP_INGEST_PUSH, AP_INGEST_PYROSCOPE, AP_INGEST_N };
enum ap_ingest_result {
	AP_RESULT_STORED,
	AP_RESULT_DUPLICATE,
	AP_RESULT_REFUSED,
	AP_RESULT_N,
};
enum ap_query_route {
	AP_Q_PROFILE,
	AP_Q_PPROF,
	AP_Q_FLAMEGRAPH,
	AP_Q_DIFF,
	AP_Q_SERIES,
	AP_Q_LABELS,
	AP_Q_LABEL_VALUES,
	AP_Q_MODES,
	AP_Q_TABLES,
	AP_Q_N,
};

struct ap_req;
typedef enum MHD_Result (*ap_handler_fn)(struct ap_req *r);

struct ap_route {
	const char *path;
	const char *method; /* "GET" (HEAD too) or "POST" */
	enum ap_route_kind kind;
	ap_handler_fn handler;
	int metric; /* enum ap_ingest_route for ingest, enum ap_query_route for reads, -1 */
};

#define AP_HIST_BUCKETS 12
struct ap_metrics {
	uint64_t refusals[AP_REFUSE_N];
	uint64_t ingest[AP_INGEST_N][AP_RESULT_N];
	uint64_t ingest_bytes[AP_INGEST_N];
	uint64_t ingest_samples[AP_INGEST_N];
	uint64_t ingest_refused[AP_INGEST_N][AP_REFUSE_N];
	uint64_t query_buckets[AP_Q_N][AP_HIST_BUCKETS]; /* not cumulative; the last is +Inf */
	uint64_t query_count[AP_Q_N];
	uint64_t query_sum_ns[AP_Q_N];
	uint64_t http_status[6]; /* by class: 1xx..5xx */
	uint64_t agent_counters_dropped;
	/* the agents' own counters, by (host, name); last value wins */
	pthread_mutex_t agent_lock;
	struct ap_agent_entry *agent;
	size_t nagent, agent_cap;
};

struct ap_server {
	struct ap_server_opts opts;
	struct ap_store *store;
	struct MHD_Daemon *daemon;
	const char *ingest_token; /* NULL = open */
	const char *read_token;
	uint64_t body_budget; /* bytes all bodies being received may take together */
	uint64_t body_bytes;  /* atomic: bytes they take now */
	uint64_t in_flight;   /* atomic: requests not yet completed */
	uint64_t started_ns;
	char *tls_cert_pem, *tls_key_pem;
	struct ap_metrics metrics;
	/* retention */
	pthread_t retention_thread;
	bool retention_running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
};

struct ap_req {
	struct ap_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	char *url; /* copy */
	const struct ap_route *route;
	uint8_t *body;
	size_t len, cap;
	uint64_t reserved;  /* bytes of srv->body_budget this request holds */
	uint64_t discarded; /* body bytes dropped after the limit */
	bool too_large;	    /* body over --max-body: answer 413 at the end */
	bool overloaded;    /* body budget full: answer 429 at the end */
	bool answered;	    /* a response is queued */
	unsigned status;
	uint64_t start_ns;
};

/* The daemon's callbacks (http.c), for server.c. */
typedef size_t (*ap_unescape_fn)(void *cls, struct MHD_Connection *c, char *s);
void ap_server_http_callbacks(MHD_AccessHandlerCallback *access, MHD_RequestCompletedCallback *done,
			      ap_unescape_fn *unescape);

/* ---- replies (http.c); each returns MHD_queue_response's result ---- */
enum MHD_Result ap_server_reply(struct ap_req *r, unsigned status, const char *content_type,
				void *buf, size_t len, bool take);
enum MHD_Result ap_server_reply_json(struct ap_req *r, unsigned status, char *json, size_t len);
/* {"code","message"} and the refusal counted by reason; retry_after_s > 0 adds Retry-After. */
enum MHD_Result ap_server_error(struct ap_req *r, unsigned status, enum ap_refusal why,
				unsigned retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Query parameter (URL-decoded by MHD), or NULL. */
const char *ap_server_arg(struct ap_req *r, const char *name);
uint64_t ap_server_now_ns(void);

/* ---- auth (auth.c) ---- */
/* 0 = allowed, else the status (401/403) with the reason written to msg. */
unsigned ap_server_auth_check(struct ap_server *s, struct MHD_Connection *conn,
			      enum ap_route_kind kind, char *msg, size_t msglen);

/* ---- metrics (metrics.c) ---- */
void ap_server_metrics_init(struct ap_metrics *m);
void ap_server_metrics_destroy(struct ap_metrics *m);
void ap_server_metrics_refusal(struct ap_metrics *m, enum ap_refusal why);
void ap_server_metrics_ingest(struct ap_metrics *m, enum ap_ingest_route route,
			      enum ap_ingest_result res, enum ap_refusal why, uint64_t bytes,
			      uint64_t samples);
void ap_server_metrics_query(struct ap_metrics *m, enum ap_query_route route, uint64_t ns);
void ap_server_metrics_status(struct ap_metrics *m, unsigned status);
/* Remember an agent's counters (pushes ok/failed/..., spool bytes) under its host. */
struct ap_agent_counter;
void ap_server_metrics_agent(struct ap_metrics *m, const char *host,
			     const struct ap_agent_counter *c, size_t n);
enum MHD_Result ap_server_route_metrics(struct ap_req *r);

/* ---- routes ---- */
enum MHD_Result ap_server_route_push(struct ap_req *r);
enum MHD_Result ap_server_route_pyroscope(struct ap_req *r);
enum MHD_Result ap_server_route_profile(struct ap_req *r);
enum MHD_Result ap_server_route_pprof(struct ap_req *r);
enum MHD_Result ap_server_route_flamegraph(struct ap_req *r);
enum MHD_Result ap_server_route_diff(struct ap_req *r);
enum MHD_Result ap_server_route_series(struct ap_req *r);
enum MHD_Result ap_server_route_labels(struct ap_req *r);
enum MHD_Result ap_server_route_label_values(struct ap_req *r);
enum MHD_Result ap_server_route_modes(struct ap_req *r);
enum MHD_Result ap_server_route_tables(struct ap_req *r);
/* Checked before the body is read: label count and lengths of a push's query. */
enum MHD_Result ap_server_push_precheck(struct ap_req *r, bool *refused);

#endif
