// SPDX-License-Identifier: MIT
/*
 * The libmicrohttpd access handler: routing, auth before the body is read, bodies bounded by
 * --max-body (413 from Content-Length before a byte of the body is read) and by a budget for
 * all bodies in flight together (429), replies, the access log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "format/format.h"
#include "lib/grow.h"
#include "lib/log.h"
#include "server_internal.h"
#include "web_assets.h"

/* clang-format off */
static const struct ap_route routes[] = {
	{ "/api/v1/push", "POST", AP_ROUTE_INGEST, ap_server_route_push, AP_INGEST_PUSH },
	{ "/ingest", "POST", AP_ROUTE_INGEST, ap_server_route_pyroscope, AP_INGEST_PYROSCOPE },
	{ "/pyroscope/ingest", "POST", AP_ROUTE_INGEST, ap_server_route_pyroscope,
	  AP_INGEST_PYROSCOPE },
	{ "/api/v1/profile", "GET", AP_ROUTE_READ, ap_server_route_profile, AP_Q_PROFILE },
	{ "/debug/pprof/profile", "GET", AP_ROUTE_READ, ap_server_route_pprof, AP_Q_PPROF },
	{ "/api/v1/flamegraph", "GET", AP_ROUTE_READ, ap_server_route_flamegraph, AP_Q_FLAMEGRAPH },
	{ "/api/v1/diff", "GET", AP_ROUTE_READ, ap_server_route_diff, AP_Q_DIFF },
	{ "/api/v1/series", "GET", AP_ROUTE_READ, ap_server_route_series, AP_Q_SERIES },
	{ "/api/v1/labels", "GET", AP_ROUTE_READ, ap_server_route_labels, AP_Q_LABELS },
	{ "/api/v1/label-values", "GET", AP_ROUTE_READ, ap_server_route_label_values,
	  AP_Q_LABEL_VALUES },
	{ "/api/v1/modes", "GET", AP_ROUTE_READ, ap_server_route_modes, AP_Q_MODES },
	{ "/api/v1/tables", "GET", AP_ROUTE_READ, ap_server_route_tables, AP_Q_TABLES },
	{ "/metrics", "GET", AP_ROUTE_OPEN, ap_server_route_metrics, -1 },
	{ "/healthz", "GET", AP_ROUTE_OPEN, NULL, -1 },
};
/* clang-format on */

uint64_t ap_server_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

const char *ap_server_arg(struct ap_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

#define GZIP_MIN_BYTES 4096

/* Whether the client takes a gzip answer: "gzip" in Accept-Encoding, not with q=0. */
static bool accepts_gzip(struct ap_req *r)
{
	const char *ae =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *g = ae ? strstr(ae, "gzip") : NULL;

	if (!g)
		return false;
	g += 4;
	while (*g == ' ')
		g++;
	return !(*g == ';' && strstr(g, "q=0") && !strstr(g, "q=0."));
}

/* gzip of buf (level 1: the answers are large and the CPU is the server's), or NULL. */
static void *gzip_buf(const void *buf, size_t len, size_t *outlen)
{
	z_stream z = {0};
	uLong cap;
	void *out;

	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	cap = deflateBound(&z, (uLong)len);
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)buf;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

enum MHD_Result ap_server_reply(struct ap_req *r, unsigned status, const char *content_type,
				void *buf, size_t len, bool take)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	/* Large text answers (flamegraph JSON of many stacks, SVG) shrink ~10x; pprof is
	 * gzipped already. */
	bool eligible = status == MHD_HTTP_OK && len >= GZIP_MIN_BYTES && len <= UINT32_MAX &&
			content_type && strcmp(content_type, "application/octet-stream");
	bool gz = false;

	if (eligible && accepts_gzip(r)) {
		size_t zlen;
		void *z = gzip_buf(buf, len, &zlen);

		if (z) {
			if (take)
				free(buf);
			buf = z;
			len = zlen;
			take = true;
			gz = true;
		}
	}
	resp = MHD_create_response_from_buffer(
	    len, buf, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		if (take)
			free(buf);
		return MHD_NO;
	}
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (gz)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	if (eligible)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->answered = true;
		r->status = status;
	}
	return ret;
}

enum MHD_Result ap_server_reply_json(struct ap_req *r, unsigned status, char *json, size_t len)
{
	return ap_server_reply(r, status, "application/json", json, len, true);
}

static enum MHD_Result reply_error_v(struct ap_req *r, unsigned status, enum ap_refusal why,
				     unsigned retry_after_s, const char *fmt, va_list ap)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char msg[1024], num[16];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	ap_server_metrics_refusal(&r->srv->metrics, why);
	if (r->route && r->route->kind == AP_ROUTE_INGEST)
		ap_server_metrics_ingest(&r->srv->metrics, (enum ap_ingest_route)r->route->metric,
					 AP_RESULT_REFUSED, why, r->len, 0);
	ap_info("%s %s: %u %s", r->method, r->url, status, msg);
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	fprintf(f, "{\"code\":%u,\"message\":", status);
	ap_format_json_str(f, msg);
	fputs("}\n", f);
	if (fclose(f)) {
		free(buf);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (retry_after_s) {
		snprintf(num, sizeof(num), "%u", retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"aperture\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED && r->route)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					strcmp(r->route->method, "GET") ? r->route->method
									: "GET, HEAD");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->answered = true;
		r->status = status;
	}
	return ret;
}

enum MHD_Result ap_server_error(struct ap_req *r, unsigned status, enum ap_refusal why,
				unsigned retry_after_s, const char *fmt, ...)
{
	enum MHD_Result ret;
	va_list ap;

	va_start(ap, fmt);
	ret = reply_error_v(r, status, why, retry_after_s, fmt, ap);
	va_end(ap);
	return ret;
}

static const struct ap_route *find_route(const char *url)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].path, url))
			return &routes[i];
	return NULL;
}

static enum MHD_Result serve_static(struct ap_req *r)
{
	const struct ap_web_asset *a;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return ap_server_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, AP_REFUSE_METHOD, 0,
				       "%s %s: static files are GET only", r->method, r->url);
	a = ap_web_asset_find(r->url);
	if (!a) {
		if (!strcmp(r->url, "/") || !strcmp(r->url, "/index.html"))
			return ap_server_error(r, MHD_HTTP_NOT_FOUND, AP_REFUSE_NOT_FOUND, 0,
					       "web UI not built: this aggregator was built "
					       "without web/ files; the HTTP API is under /api/v1/ "
					       "(docs/api.md)");
		return ap_server_error(r, MHD_HTTP_NOT_FOUND, AP_REFUSE_NOT_FOUND, 0,
				       "no such path: %s (the HTTP API is in docs/api.md)", r->url);
	}
	resp = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
	/* The UI changes with the binary: let the browser revalidate, never serve stale. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->answered = true;
		r->status = MHD_HTTP_OK;
	}
	return ret;
}

static enum MHD_Result run_handler(struct ap_req *r)
{
	uint64_t t0 = mono_ns();
	enum MHD_Result ret;

	if (!r->route)
		return serve_static(r);
	if (!r->route->handler) /* /healthz */
		return ap_server_reply(r, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3,
				       false);
	ret = r->route->handler(r);
	if (r->route->kind == AP_ROUTE_READ)
		ap_server_metrics_query(&r->srv->metrics, (enum ap_query_route)r->route->metric,
					mono_ns() - t0);
	return ret;
}

static void release_budget(struct ap_req *r)
{
	if (r->reserved) {
		__atomic_sub_fetch(&r->srv->body_bytes, r->reserved, __ATOMIC_RELAXED);
		r->reserved = 0;
	}
}

/* Take n more bytes of the budget for all bodies in flight; false when it is spent. */
static bool reserve_budget(struct ap_req *r, uint64_t n)
{
	uint64_t now = __atomic_add_fetch(&r->srv->body_bytes, n, __ATOMIC_RELAXED);

	if (now > r->srv->body_budget) {
		__atomic_sub_fetch(&r->srv->body_bytes, n, __ATOMIC_RELAXED);
		return false;
	}
	r->reserved += n;
	return true;
}

/* First call: headers are in; decide everything that needs no body. */
static enum MHD_Result first_call(struct ap_req *r)
{
	struct ap_server *s = r->srv;
	const char *cl;
	char msg[256];
	unsigned st;
	bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");

	r->route = find_route(r->url);
	if (!r->route) {
		if (!strncmp(r->url, "/api/", 5))
			return ap_server_error(r, MHD_HTTP_NOT_FOUND, AP_REFUSE_NOT_FOUND, 0,
					       "no such API route: %s (docs/api.md lists them)",
					       r->url);
		return serve_static(r);
	}
	if (!strcmp(r->route->method, "GET") ? !get : strcmp(r->method, r->route->method))
		return ap_server_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, AP_REFUSE_METHOD, 0,
				       "%s %s: use %s", r->method, r->url, r->route->method);
	st = ap_server_auth_check(s, r->conn, r->route->kind, msg, sizeof(msg));
	if (st)
		return ap_server_error(
		    r, st, st == MHD_HTTP_FORBIDDEN ? AP_REFUSE_FORBIDDEN : AP_REFUSE_UNAUTHORIZED,
		    0, "%s", msg);
	if (get)
		return run_handler(r);

	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno || end == cl || *end)
			return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_MALFORMED, 0,
					       "bad Content-Length '%.32s'", cl);
		if (n > s->opts.max_body)
			return ap_server_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
					       AP_REFUSE_BODY_TOO_LARGE, 0,
					       "body of %llu bytes is over the limit of %llu bytes "
					       "(aperture-aggregator --max-body)",
					       n, (unsigned long long)s->opts.max_body);
		if (n && !reserve_budget(r, n))
			return ap_server_error(r, MHD_HTTP_TOO_MANY_REQUESTS, AP_REFUSE_OVERLOADED,
					       1,
					       "too many request bodies in flight; retry shortly");
		if (n) {
			r->body = malloc(n);
			if (!r->body)
				return ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
						       AP_REFUSE_INTERNAL, 1, "out of memory");
			r->cap = n;
		}
	}
	if (r->route->metric == AP_INGEST_PUSH && r->route->kind == AP_ROUTE_INGEST) {
		bool refused = false;
		enum MHD_Result ret = ap_server_push_precheck(r, &refused);

		if (refused)
			return ret;
	}
	return MHD_YES;
}

static enum MHD_Result upload(struct ap_req *r, const char *data, size_t n)
{
	struct ap_server *s = r->srv;

	if (r->too_large || r->overloaded) {
		/* MHD cannot answer in the middle of a body (MHD_queue_response fails there), so
		 * what follows is read and dropped, to answer 413/429 at its end; but not
		 * forever: past four more --max-body, hang up. (A body with a Content-Length
		 * over the limit is refused before any of it is read.) */
		r->discarded += n;
		return r->discarded > 4 * s->opts.max_body ? MHD_NO : MHD_YES;
	}
	if (n > s->opts.max_body - r->len) {
		r->too_large = true;
		r->discarded = n;
		free(r->body);
		r->body = NULL;
		r->cap = 0;
		release_budget(r);
		return MHD_YES;
	}
	if (r->len + n > r->cap) {
		/* chunked (no Content-Length), or more than it announced */
		size_t cap = r->cap;
		void *body = r->body;

		if (!reserve_budget(r, r->len + n - r->cap)) {
			r->overloaded = true;
			return MHD_YES;
		}
		if (ap_grow_array(&body, &cap, r->len + n, 1)) {
			r->overloaded = true;
			return MHD_YES;
		}
		/* the budget counts what was asked for; cap may be more */
		r->body = body;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *data,
				 size_t *data_size, void **con_cls)
{
	struct ap_server *s = cls;
	struct ap_req *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = s;
		r->conn = conn;
		r->method = method;
		r->url = strdup(url);
		r->start_ns = mono_ns();
		*con_cls = r;
		__atomic_add_fetch(&s->in_flight, 1, __ATOMIC_RELAXED);
		if (!r->url)
			return MHD_NO;
		/* A reply queued on this first call ends the connection (MHD cannot know
		 * whether a body follows), so requests without a body are answered on the
		 * next call, keeping the connection alive. */
		if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
			return MHD_YES;
		return first_call(r);
	}
	if (!r->route && !r->answered && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
		*data_size = 0;
		return first_call(r);
	}
	if (r->answered) {
		*data_size = 0;
		return MHD_YES;
	}
	if (*data_size) {
		enum MHD_Result ret = upload(r, data, *data_size);

		*data_size = 0;
		return ret;
	}
	if (r->too_large)
		return ap_server_error(r, MHD_HTTP_CONTENT_TOO_LARGE, AP_REFUSE_BODY_TOO_LARGE, 0,
				       "body is over the limit of %llu bytes "
				       "(aperture-aggregator --max-body)",
				       (unsigned long long)s->opts.max_body);
	if (r->overloaded)
		return ap_server_error(r, MHD_HTTP_TOO_MANY_REQUESTS, AP_REFUSE_OVERLOADED, 1,
				       "too many request bodies in flight; retry shortly");
	return run_handler(r);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ap_server *s = cls;
	struct ap_req *r = *con_cls;

	(void)conn;
	if (!r)
		return;
	ap_server_metrics_status(&s->metrics, r->answered ? r->status : 0);
	if (ap_log_get_level() >= AP_LOG_INFO) {
		double ms = (double)(mono_ns() - r->start_ns) / 1e6;

		if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
			ap_info("%s %s %u %zu bytes in, %.1f ms", r->method, r->url ? r->url : "",
				r->status, r->len + (size_t)r->discarded, ms);
		else
			ap_info("%s %s: connection ended before the answer was sent (%d), %.1f ms",
				r->method, r->url ? r->url : "", (int)toe, ms);
	}
	release_budget(r);
	free(r->body);
	free(r->url);
	free(r);
	*con_cls = NULL;
	__atomic_sub_fetch(&s->in_flight, 1, __ATOMIC_RELAXED);
}

/* Query strings as browsers and Python's urlencode write them: '+' is a space. MHD's own
 * unescaper decodes only %XX. Decodes in place; returns the new length. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;

	(void)cls;
	(void)c;
	for (const char *p = s; *p; p++) {
		if (*p == '+') {
			*w++ = ' ';
		} else if (*p == '%' && p[1] && p[2] && strchr("0123456789abcdefABCDEF", p[1]) &&
			   strchr("0123456789abcdefABCDEF", p[2])) {
			char hex[3] = {p[1], p[2], 0};

			*w++ = (char)strtoul(hex, NULL, 16);
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

void ap_server_http_callbacks(MHD_AccessHandlerCallback *access, MHD_RequestCompletedCallback *done,
			      ap_unescape_fn *unescape)
{
	*access = access_cb;
	*done = completed_cb;
	*unescape = unescape_cb;
}
