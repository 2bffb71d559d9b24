// SPDX-License-Identifier: MIT
/* /metrics: counters kept with relaxed atomics, written in the Prometheus text format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "server_internal.h"

#define AGENT_MAX_ENTRIES 4096 /* (host, counter) pairs remembered */
#define AGENT_MAX_NAME 128

struct ap_agent_entry {
	char *host;
	char *name;
	uint64_t value;
};

static const char *const refusal_names[AP_REFUSE_N] = {
    [AP_REFUSE_UNAUTHORIZED] = "unauthorized",
    [AP_REFUSE_FORBIDDEN] = "forbidden",
    [AP_REFUSE_BODY_TOO_LARGE] = "body_too_large",
    [AP_REFUSE_INFLATED_TOO_LARGE] = "inflated_too_large",
    [AP_REFUSE_MALFORMED] = "malformed",
    [AP_REFUSE_LABELS] = "labels",
    [AP_REFUSE_BAD_QUERY] = "bad_query",
    [AP_REFUSE_NOT_FOUND] = "not_found",
    [AP_REFUSE_METHOD] = "method_not_allowed",
    [AP_REFUSE_OVERLOADED] = "overloaded",
    [AP_REFUSE_STORAGE] = "storage_error",
    [AP_REFUSE_INTERNAL] = "internal",
};
static const char *const ingest_names[AP_INGEST_N] = {"push", "pyroscope"};
static const char *const result_names[AP_RESULT_N] = {"stored", "duplicate", "refused"};
static const char *const query_names[AP_Q_N] = {
    "profile", "debug_pprof",  "flamegraph", "diff",   "series",
    "labels",  "label_values", "modes",	     "tables",
};
/* upper bounds in ms of the query latency buckets; the last is +Inf */
static const double bucket_ms[AP_HIST_BUCKETS - 1] = {5,   10,	 25,   50,   100,  250,
						      500, 1000, 2500, 5000, 10000};

const char *ap_server_refusal_name(enum ap_refusal r)
{
	return r < AP_REFUSE_N ? refusal_names[r] : "unknown";
}

static void inc(uint64_t *c, uint64_t n) { __atomic_add_fetch(c, n, __ATOMIC_RELAXED); }

static uint64_t get(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

void ap_server_metrics_init(struct ap_metrics *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->agent_lock, NULL);
}

void ap_server_metrics_destroy(struct ap_metrics *m)
{
	for (size_t i = 0; i < m->nagent; i++) {
		free(m->agent[i].host);
		free(m->agent[i].name);
	}
	free(m->agent);
	pthread_mutex_destroy(&m->agent_lock);
}

void ap_server_metrics_refusal(struct ap_metrics *m, enum ap_refusal why)
{
	if (why < AP_REFUSE_N)
		inc(&m->refusals[why], 1);
}

void ap_server_metrics_ingest(struct ap_metrics *m, enum ap_ingest_route route,
			      enum ap_ingest_result res, enum ap_refusal why, uint64_t bytes,
			      uint64_t samples)
{
	if (route >= AP_INGEST_N || res >= AP_RESULT_N)
		return;
	inc(&m->ingest[route][res], 1);
	inc(&m->ingest_bytes[route], bytes);
	inc(&m->ingest_samples[route], samples);
	if (res == AP_RESULT_REFUSED && why < AP_REFUSE_N)
		inc(&m->ingest_refused[route][why], 1);
}

void ap_server_metrics_query(struct ap_metrics *m, enum ap_query_route route, uint64_t ns)
{
	double ms = (double)ns / 1e6;
	size_t b = 0;

	if (route >= AP_Q_N)
		return;
	while (b < AP_HIST_BUCKETS - 1 && ms > bucket_ms[b])
		b++;
	inc(&m->query_buckets[route][b], 1);
	inc(&m->query_count[route], 1);
	inc(&m->query_sum_ns[route], ns);
}

void ap_server_metrics_status(struct ap_metrics *m, unsigned status)
{
	if (status >= 100 && status < 600)
		inc(&m->http_status[status / 100], 1);
	else
		inc(&m->http_status[0], 1); /* no answer sent */
}

static struct ap_agent_entry *agent_find(struct ap_metrics *m, const char *host, const char *name)
{
	for (size_t i = 0; i < m->nagent; i++)
		if (!strcmp(m->agent[i].host, host) && !strcmp(m->agent[i].name, name))
			return &m->agent[i];
	return NULL;
}

void ap_server_metrics_agent(struct ap_metrics *m, const char *host,
			     const struct ap_agent_counter *c, size_t n)
{
	pthread_mutex_lock(&m->agent_lock);
	for (size_t i = 0; i < n; i++) {
		struct ap_agent_entry *e;

		if (!c[i].name || strlen(c[i].name) > AGENT_MAX_NAME) {
			inc(&m->agent_counters_dropped, 1);
			continue;
		}
		e = agent_find(m, host, c[i].name);
		if (!e) {
			if (m->nagent >= AGENT_MAX_ENTRIES) {
				inc(&m->agent_counters_dropped, 1);
				continue;
			}
			if (m->nagent == m->agent_cap) {
				size_t cap = m->agent_cap ? m->agent_cap * 2 : 64;
				void *a = realloc(m->agent, cap * sizeof(*m->agent));

				if (!a) {
					inc(&m->agent_counters_dropped, 1);
					continue;
				}
				m->agent = a;
				m->agent_cap = cap;
			}
			e = &m->agent[m->nagent];
			e->host = strdup(host);
			e->name = strdup(c[i].name);
			if (!e->host || !e->name) {
				free(e->host);
				free(e->name);
				inc(&m->agent_counters_dropped, 1);
				continue;
			}
			m->nagent++;
		}
		e->value = c[i].value;
	}
	pthread_mutex_unlock(&m->agent_lock);
}

/* A label value in the text format: backslash, quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_metrics(struct ap_server *s, FILE *f)
{
	struct ap_metrics *m = &s->metrics;
	struct ap_store_stats st;

	header(f, "aperture_ingest_requests_total", "counter",
	       "Ingest requests by route and result.");
	for (int r = 0; r < AP_INGEST_N; r++)
		for (int x = 0; x < AP_RESULT_N; x++)
			fprintf(f,
				"aperture_ingest_requests_total{route=\"%s\",result=\"%s\"} %llu\n",
				ingest_names[r], result_names[x],
				(unsigned long long)get(&m->ingest[r][x]));
	header(f, "aperture_ingest_refusals_total", "counter",
	       "Refused ingest requests by route and reason.");
	for (int r = 0; r < AP_INGEST_N; r++)
		for (int x = 0; x < AP_REFUSE_N; x++)
			fprintf(f,
				"aperture_ingest_refusals_total{route=\"%s\",reason=\"%s\"} %llu\n",
				ingest_names[r], refusal_names[x],
				(unsigned long long)get(&m->ingest_refused[r][x]));
	header(f, "aperture_ingest_bytes_total", "counter",
	       "Request body bytes received by the ingest routes.");
	for (int r = 0; r < AP_INGEST_N; r++)
		fprintf(f, "aperture_ingest_bytes_total{route=\"%s\"} %llu\n", ingest_names[r],
			(unsigned long long)get(&m->ingest_bytes[r]));
	header(f, "aperture_ingest_samples_total", "counter",
	       "Samples stored (the 'samples' value where a profile has one, else sample rows).");
	for (int r = 0; r < AP_INGEST_N; r++)
		fprintf(f, "aperture_ingest_samples_total{route=\"%s\"} %llu\n", ingest_names[r],
			(unsigned long long)get(&m->ingest_samples[r]));

	header(f, "aperture_refusals_total", "counter",
	       "Every refused request, by reason (all routes).");
	for (int x = 0; x < AP_REFUSE_N; x++)
		fprintf(f, "aperture_refusals_total{reason=\"%s\"} %llu\n", refusal_names[x],
			(unsigned long long)get(&m->refusals[x]));

	header(f, "aperture_http_responses_total", "counter",
	       "Responses by status class (\"none\": the connection ended first).");
	for (int c = 0; c < 6; c++) {
		if (c == 0)
			fputs("aperture_http_responses_total{class=\"none\"} ", f);
		else
			fprintf(f, "aperture_http_responses_total{class=\"%dxx\"} ", c);
		fprintf(f, "%llu\n", (unsigned long long)get(&m->http_status[c]));
	}
	header(f, "aperture_requests_in_flight", "gauge", "Requests being received or answered.");
	fprintf(f, "aperture_requests_in_flight %llu\n",
		(unsigned long long)__atomic_load_n(&s->in_flight, __ATOMIC_RELAXED));
	header(f, "aperture_body_bytes_in_flight", "gauge",
	       "Bytes of request bodies held in memory now.");
	fprintf(f, "aperture_body_bytes_in_flight %llu\n",
		(unsigned long long)__atomic_load_n(&s->body_bytes, __ATOMIC_RELAXED));

	header(f, "aperture_query_duration_seconds", "histogram", "Time to answer a query route.");
	for (int q = 0; q < AP_Q_N; q++) {
		uint64_t cum = 0;

		for (int b = 0; b < AP_HIST_BUCKETS; b++) {
			cum += get(&m->query_buckets[q][b]);
			if (b < AP_HIST_BUCKETS - 1)
				fprintf(f,
					"aperture_query_duration_seconds_bucket{route=\"%s\","
					"le=\"%g\"} %llu\n",
					query_names[q], bucket_ms[b] / 1000.0,
					(unsigned long long)cum);
			else
				fprintf(f,
					"aperture_query_duration_seconds_bucket{route=\"%s\","
					"le=\"+Inf\"} %llu\n",
					query_names[q], (unsigned long long)cum);
		}
		fprintf(f, "aperture_query_duration_seconds_sum{route=\"%s\"} %.6f\n",
			query_names[q], (double)get(&m->query_sum_ns[q]) / 1e9);
		fprintf(f, "aperture_query_duration_seconds_count{route=\"%s\"} %llu\n",
			query_names[q], (unsigned long long)get(&m->query_count[q]));
	}

	memset(&st, 0, sizeof(st));
	s->store->ops->stats(s->store, &st);
	header(f, "aperture_storage_bytes", "gauge", "Bytes the store takes on disk.");
	fprintf(f, "aperture_storage_bytes %llu\n", (unsigned long long)st.bytes);
	header(f, "aperture_storage_series", "gauge", "Distinct label sets stored.");
	fprintf(f, "aperture_storage_series %llu\n", (unsigned long long)st.series);
	header(f, "aperture_storage_stacks", "gauge", "Distinct stacks stored.");
	fprintf(f, "aperture_storage_stacks %llu\n", (unsigned long long)st.stacks);
	header(f, "aperture_storage_sample_rows", "gauge", "Sample rows at the finest resolution.");
	fprintf(f, "aperture_storage_sample_rows %llu\n", (unsigned long long)st.sample_rows);
	header(f, "aperture_storage_push_ids", "gauge", "Push ids remembered for de-duplication.");
	fprintf(f, "aperture_storage_push_ids %llu\n", (unsigned long long)st.pushes);
	header(f, "aperture_storage_writes_total", "counter", "Storage writes by result.");
	fprintf(f, "aperture_storage_writes_total{result=\"ok\"} %llu\n",
		(unsigned long long)st.writes_ok);
	fprintf(f, "aperture_storage_writes_total{result=\"failed\"} %llu\n",
		(unsigned long long)st.writes_failed);
	fprintf(f, "aperture_storage_writes_total{result=\"duplicate\"} %llu\n",
		(unsigned long long)st.duplicates);
	header(f, "aperture_storage_retention_runs_total", "counter", "Retention passes run.");
	fprintf(f, "aperture_storage_retention_runs_total %llu\n",
		(unsigned long long)st.retention_runs);
	header(f, "aperture_storage_retention_deleted_rows_total", "counter",
	       "Rows deleted by retention.");
	fprintf(f, "aperture_storage_retention_deleted_rows_total %llu\n",
		(unsigned long long)st.retention_deleted_rows);

	header(f, "aperture_storage_label_conflicts_total", "counter",
	       "Sample labels not stored: the push had that label with another value (kept).");
	fprintf(f, "aperture_storage_label_conflicts_total %llu\n",
		(unsigned long long)st.label_conflicts);
	header(f, "aperture_storage_compactions_failed_total", "counter",
	       "Rollup (compaction) runs that failed; they are retried.");
	fprintf(f, "aperture_storage_compactions_failed_total %llu\n",
		(unsigned long long)st.compactions_failed);

	header(f, "aperture_agent_counter", "gauge",
	       "The agents' own counters as last pushed (pushes ok/failed/retried/spooled/"
	       "dropped, spool bytes, ...), by host and counter name.");
	pthread_mutex_lock(&m->agent_lock);
	for (size_t i = 0; i < m->nagent; i++) {
		fputs("aperture_agent_counter{host=", f);
		label_value(f, m->agent[i].host);
		fputs(",name=", f);
		label_value(f, m->agent[i].name);
		fprintf(f, "} %llu\n", (unsigned long long)m->agent[i].value);
	}
	pthread_mutex_unlock(&m->agent_lock);
	header(f, "aperture_agent_counters_dropped_total", "counter",
	       "Agent counters not remembered (table full, name too long).");
	fprintf(f, "aperture_agent_counters_dropped_total %llu\n",
		(unsigned long long)get(&m->agent_counters_dropped));
}

enum MHD_Result ap_server_route_metrics(struct ap_req *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return ap_server_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, AP_REFUSE_INTERNAL, 0,
				       "out of memory");
	write_metrics(r->srv, f);
	if (fclose(f)) {
		free(buf);
		return ap_server_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, AP_REFUSE_INTERNAL, 0,
				       "out of memory");
	}
	return ap_server_reply(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len,
			       true);
}
