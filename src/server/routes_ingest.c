// SPDX-License-Identifier: MIT
/*
 * POST /api/v1/push (the agent) and POST /ingest, /pyroscope/ingest (Pyroscope clients):
 * decode with ingest.h, write through storage.h, answer only once the write is durable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "lib/grow.h"
#include "server_internal.h"

#define MAX_ARGS 1024 /* query parameters of one request */

struct args {
	struct ap_http_arg *v;
	size_t n, cap;
	bool overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct args *a = cls;
	void *v = a->v;

	(void)kind;
	if (a->n >= MAX_ARGS || ap_grow_array(&v, &a->cap, a->n + 1, sizeof(*a->v))) {
		a->overflow = true;
		return MHD_NO;
	}
	a->v = v;
	a->v[a->n].name = key;
	a->v[a->n].value = value ? value : "";
	a->n++;
	return MHD_YES;
}

enum MHD_Result ap_server_push_precheck(struct ap_req *r, bool *refused)
{
	struct args a = {0};
	size_t nlabels = 0;
	enum MHD_Result ret = MHD_YES;

	*refused = false;
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
	if (a.overflow) {
		*refused = true;
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_MALFORMED, 0,
				      "too many query parameters (at most %d)", MAX_ARGS);
		goto out;
	}
	for (size_t i = 0; i < a.n; i++) {
		const char *eq;
		size_t nlen;

		if (strcmp(a.v[i].name, "label"))
			continue;
		if (++nlabels > AP_STORE_MAX_LABELS) {
			*refused = true;
			ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_LABELS, 0,
					      "too many labels: a push has at most %d",
					      AP_STORE_MAX_LABELS);
			goto out;
		}
		eq = strchr(a.v[i].value, '=');
		nlen = eq ? (size_t)(eq - a.v[i].value) : strlen(a.v[i].value);
		if (nlen > AP_STORE_MAX_LABEL_NAME ||
		    (eq && strlen(eq + 1) > AP_STORE_MAX_LABEL_VALUE)) {
			*refused = true;
			ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_LABELS, 0,
					      "label %zu is too long: names take at most %d bytes, "
					      "values %d",
					      nlabels, AP_STORE_MAX_LABEL_NAME,
					      AP_STORE_MAX_LABEL_VALUE);
			goto out;
		}
	}
out:
	free(a.v);
	return ret;
}

/* Each server thread decodes pushes into its own flat context, kept from one push to the next
 * (no allocation per push once it has grown; freed when the thread ends). */
static pthread_key_t flat_key;
static pthread_once_t flat_once = PTHREAD_ONCE_INIT;
static bool flat_key_ok;

static void flat_free(void *c)
{
	ap_flat_ctx_free(c);
}

static void flat_key_init(void)
{
	flat_key_ok = pthread_key_create(&flat_key, flat_free) == 0;
}

/* This thread's context, or NULL (then the push is decoded into an ap_profile). */
static struct ap_flat_ctx *flat_ctx(void)
{
	struct ap_flat_ctx *c;

	pthread_once(&flat_once, flat_key_init);
	if (!flat_key_ok)
		return NULL;
	c = pthread_getspecific(flat_key);
	if (!c && (c = ap_flat_ctx_new()) && pthread_setspecific(flat_key, c)) {
		ap_flat_ctx_free(c);
		c = NULL;
	}
	return c;
}

static uint64_t samples_of(const struct ap_ingest *in)
{
	const struct ap_profile *p = in->profile;
	int vi;

	if (in->flat) {
		vi = ap_flat_value_index(in->flat, "samples");
		return vi >= 0 ? ap_flat_total(in->flat, (size_t)vi) : in->flat->nsamples;
	}
	if (!p)
		return 0;
	vi = ap_profile_value_index(p, "samples");
	return vi >= 0 ? ap_profile_total(p, (size_t)vi) : ap_profile_nsamples(p);
}

static const char *label_of(const struct ap_ingest *in, const char *name)
{
	for (size_t i = 0; i < in->nlabels; i++)
		if (!strcmp(in->labels[i].name, name))
			return in->labels[i].value;
	return NULL;
}

static enum MHD_Result ingest(struct ap_req *r, bool push)
{
	struct ap_server *s = r->srv;
	enum ap_ingest_route route = push ? AP_INGEST_PUSH : AP_INGEST_PYROSCOPE;
	struct ap_ingest_req req = {0};
	struct ap_ingest in = {0};
	struct ap_store_write w;
	struct args a = {0};
	char err[512] = "";
	bool dup = false;
	enum MHD_Result ret;
	int rc;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
	if (a.overflow) {
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_MALFORMED, 0,
				      "too many query parameters (at most %d)", MAX_ARGS);
		goto out;
	}
	req.args = a.v;
	req.nargs = a.n;
	req.content_type =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req.content_encoding =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
	req.tenant = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Scope-OrgID");
	req.body = r->body;
	req.len = r->len;
	req.now_ns = ap_server_now_ns();
	req.max_inflated = s->opts.max_inflated;
	/* the agent's pushes go the fast way to a store that takes it */
	if (push && s->store->ops->takes_flat)
		req.flat_ctx = flat_ctx();

	rc = push ? ap_ingest_decode_push(&req, &in, err, sizeof(err))
		  : ap_ingest_decode_pyroscope(&req, &in, err, sizeof(err));
	if (rc == -EFBIG) {
		ret =
		    ap_server_error(r, MHD_HTTP_CONTENT_TOO_LARGE, AP_REFUSE_INFLATED_TOO_LARGE, 0,
				    "%s (limit: aperture-aggregator --max-inflated %llu bytes)",
				    err, (unsigned long long)s->opts.max_inflated);
		goto out;
	}
	if (rc == -E2BIG) {
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_LABELS, 0, "%s", err);
		goto out;
	}
	if (rc == -ENOMEM) {
		ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				      "out of memory decoding the push");
		goto out;
	}
	if (rc) {
		/* the decoders say -EINVAL for every malformed input; label limits and names
		 * are told apart by their message, so /metrics can count them on their own */
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST,
				      strstr(err, "label") ? AP_REFUSE_LABELS : AP_REFUSE_MALFORMED,
				      0, "%s", err[0] ? err : "malformed push");
		goto out;
	}

	ap_ingest_to_write(&in, &w);
	err[0] = 0;
	rc = s->store->ops->write(s->store, &w, &dup, err, sizeof(err));
	if (rc == -EAGAIN || rc == -EBUSY || rc == -ENOBUFS) {
		ret = ap_server_error(r, MHD_HTTP_TOO_MANY_REQUESTS, AP_REFUSE_OVERLOADED, 1,
				      "storage is busy (%s); retry after the Retry-After seconds",
				      err[0] ? err : "write queue full");
		goto out;
	}
	if (rc == -EINVAL || rc == -E2BIG) {
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST,
				      rc == -E2BIG ? AP_REFUSE_LABELS : AP_REFUSE_MALFORMED, 0,
				      "%s", err[0] ? err : "storage refused the push");
		goto out;
	}
	if (rc) {
		ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_STORAGE, 5,
				      "storage failed: %s", err[0] ? err : strerror(-rc));
		goto out;
	}
	ap_server_metrics_ingest(&s->metrics, route, dup ? AP_RESULT_DUPLICATE : AP_RESULT_STORED,
				 AP_REFUSE_N, r->len, dup ? 0 : samples_of(&in));
	if (in.nagent) {
		const char *host = label_of(&in, "host");

		ap_server_metrics_agent(&s->metrics, host ? host : "", in.agent, in.nagent);
	}
	if (!push) {
		/* Pyroscope's own server answers an empty 200 */
		ret = ap_server_reply(r, MHD_HTTP_OK, "text/plain", "", 0, false);
	} else {
		static const char stored[] = "{\"status\":\"stored\"}\n";
		static const char duplicate[] = "{\"status\":\"duplicate\"}\n";

		ret = ap_server_reply(r, MHD_HTTP_OK, "application/json",
				      (void *)(dup ? duplicate : stored),
				      dup ? sizeof(duplicate) - 1 : sizeof(stored) - 1, false);
	}
out:
	ap_ingest_free(&in);
	if (req.flat_ctx)
		ap_flat_ctx_trim(req.flat_ctx);
	free(a.v);
	return ret;
}

enum MHD_Result ap_server_route_push(struct ap_req *r) { return ingest(r, true); }

enum MHD_Result ap_server_route_pyroscope(struct ap_req *r) { return ingest(r, false); }
