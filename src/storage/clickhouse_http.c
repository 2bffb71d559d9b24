// SPDX-License-Identifier: MIT
/*
 * ClickHouse's HTTP interface through libcurl. Easy handles are pooled and reused, so every
 * thread's statements go over kept-alive connections. `wait_end_of_query=1` makes the server
 * buffer an answer before the status line, so a failure half-way through a result is an HTTP
 * error rather than rows followed by an exception text.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clickhouse_internal.h"
#include "lib/errbuf.h"

#define POOL_MAX 32

struct ch_http {
	char *base;
	char *user, *password;
	long timeout_ms;
	pthread_mutex_t lock;
	CURL *pool[POOL_MAX];
	size_t npool;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init;

static void global_init(void) { g_init = curl_global_init(CURL_GLOBAL_DEFAULT); }

int ch_http_new(const struct ch_http_opts *o, struct ch_http **out, char *err, size_t errlen)
{
	struct ch_http *h;

	*out = NULL;
	pthread_once(&g_once, global_init);
	if (g_init != CURLE_OK)
		return ap_errf(err, errlen, -EIO, "libcurl: %s", curl_easy_strerror(g_init));
	h = calloc(1, sizeof(*h));
	if (!h)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	h->base = strdup(o->base_url);
	h->user = o->user ? strdup(o->user) : NULL;
	h->password = o->password ? strdup(o->password) : NULL;
	h->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	pthread_mutex_init(&h->lock, NULL);
	if (!h->base || (o->user && !h->user) || (o->password && !h->password)) {
		ch_http_free(h);
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	}
	*out = h;
	return 0;
}

void ch_http_free(struct ch_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	pthread_mutex_destroy(&h->lock);
	free(h->base);
	free(h->user);
	if (h->password) {
		memset(h->password, 0, strlen(h->password));
		free(h->password);
	}
	free(h);
}

static CURL *take(struct ch_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->npool)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->lock);
	return c ? c : curl_easy_init();
}

static void give(struct ch_http *h, CURL *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_cleanup(c);
}

struct sink {
	struct ch_buf *out;
	struct ch_buf errtext; /* the body of an error answer (bounded) */
	bool too_big;
	long *status;
	CURL *c;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	long code = 0;

	curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		if (s->errtext.n < 4096)
			ch_buf_put(&s->errtext, p,
				   n < 4096 - s->errtext.n ? n : 4096 - s->errtext.n);
		return n;
	}
	if (!s->out)
		return n;
	if (s->out->n + n > CH_MAX_ANSWER) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	ch_buf_put(s->out, p, n);
	return s->out->oom ? 0 : n;
}

static char *url_of(struct ch_http *h, CURL *c, const char *query, const char *settings)
{
	struct ch_buf u = {0};

	ch_buf_printf(&u, "%s?wait_end_of_query=1%s", h->base, settings ? settings : "");
	if (query) {
		char *esc = curl_easy_escape(c, query, 0);

		if (!esc) {
			ch_buf_free(&u);
			return NULL;
		}
		ch_buf_printf(&u, "&query=%s", esc);
		curl_free(esc);
	}
	if (u.oom) {
		ch_buf_free(&u);
		return NULL;
	}
	return u.b;
}

int ch_error_code(const char *err)
{
	const char *p = err ? strstr(err, "Code: ") : NULL;

	return p ? atoi(p + 6) : -1;
}

/* One statement's transfer: its handle, headers, URL and answer sink. */
struct xfer {
	CURL *c;
	struct curl_slist *hdr;
	char *url;
	struct sink s;
};

/* Set up a transfer (see ch_http_exec). Returns 0 or -ENOMEM with err. */
static int xfer_setup(struct ch_http *h, struct xfer *x, const struct ch_stmt *st, char *err,
		      size_t errlen)
{
	memset(x, 0, sizeof(*x));
	x->c = take(h);
	if (!x->c)
		return ap_errf(err, errlen, -ENOMEM, "out of memory (curl handle)");
	x->s.out = st->out;
	x->s.c = x->c;
	curl_easy_reset(x->c);
	x->url = url_of(h, x->c, st->body ? st->query : NULL, st->settings);
	if (!x->url) {
		curl_easy_cleanup(x->c);
		x->c = NULL;
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	}
	x->hdr = curl_slist_append(x->hdr, "Content-Type: application/octet-stream");
	x->hdr = curl_slist_append(x->hdr, "Expect:"); /* no 100-continue round trip for bodies */
	curl_easy_setopt(x->c, CURLOPT_URL, x->url);
	curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, x->hdr);
	curl_easy_setopt(x->c, CURLOPT_POST, 1L);
	if (st->body) {
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDS, st->body);
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st->bodylen);
	} else {
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDS, st->query);
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(st->query));
	}
	curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(x->c, CURLOPT_WRITEDATA, &x->s);
	curl_easy_setopt(x->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(x->c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(x->c, CURLOPT_TCP_KEEPALIVE, 1L);
	/* only http: the spec names the server; no redirects to elsewhere */
	curl_easy_setopt(x->c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->c, CURLOPT_FOLLOWLOCATION, 0L);
	if (h->user) {
		curl_easy_setopt(x->c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(x->c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(x->c, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	return 0;
}

/* The result of a finished transfer (rc: its curl code); the handle goes back to the pool
 * unless its connection broke. */
static int xfer_finish(struct ch_http *h, struct xfer *x, CURLcode rc, char *err, size_t errlen)
{
	struct ch_buf *out = x->s.out;
	long code = 0;
	int ret = 0;

	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
	if (x->s.too_big) {
		ret = ap_errf(err, errlen, -EFBIG, "ClickHouse's answer is larger than %u MiB",
			      CH_MAX_ANSWER >> 20);
	} else if (out && out->oom) {
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory reading ClickHouse's answer");
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		ret = ap_errf(err, errlen, -ETIMEDOUT, "ClickHouse did not answer within %ld ms",
			      h->timeout_ms);
	} else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		   rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) {
		ret = ap_errf(err, errlen,
			      rc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EHOSTUNREACH,
			      "ClickHouse is unreachable: %s", curl_easy_strerror(rc));
	} else if (rc != CURLE_OK) {
		ret = ap_errf(err, errlen, -EIO, "ClickHouse request failed: %s",
			      curl_easy_strerror(rc));
	} else if (code != 200) {
		/* the server's message, first line only (it may hold a stack trace) */
		const char *t = x->s.errtext.b ? x->s.errtext.b : "";
		size_t n = strcspn(t, "\n");

		ret = ap_errf(err, errlen, code >= 500 && code != 500 ? -EHOSTUNREACH : -EIO,
			      "ClickHouse answered %ld: %.*s", code, (int)(n > 400 ? 400 : n), t);
	}
	/* an empty answer still gets a buffer, so readers never make a cursor over NULL */
	if (!ret && out && !out->b) {
		out->b = malloc(1);
		if (!out->b)
			ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
		else
			out->cap = 1;
	}
	curl_slist_free_all(x->hdr);
	free(x->url);
	ch_buf_free(&x->s.errtext);
	if (ret && ret != -EIO)
		curl_easy_cleanup(x->c); /* a broken connection is not reused */
	else
		give(h, x->c);
	x->c = NULL;
	return ret;
}

int ch_http_exec(struct ch_http *h, const char *query, const void *body, size_t bodylen,
		 const char *settings, struct ch_buf *out, char *err, size_t errlen)
{
	struct ch_stmt st = {query, body, bodylen, settings, out};
	struct xfer x;
	int ret = xfer_setup(h, &x, &st, err, errlen);

	if (ret)
		return ret;
	return xfer_finish(h, &x, curl_easy_perform(x.c), err, errlen);
}

int ch_http_exec_many(struct ch_http *h, const struct ch_stmt *v, size_t n, char *err,
		      size_t errlen)
{
	struct xfer x[CH_STMT_MAX];
	CURLM *m;
	CURLMsg *msg;
	int running = 0, left, ret = 0, first = -1;
	char e2[256];
	size_t ready = 0;

	if (n > CH_STMT_MAX)
		return ap_errf(err, errlen, -E2BIG, "%zu statements at once (at most %d)", n,
			       CH_STMT_MAX);
	if (n == 1)
		return ch_http_exec(h, v[0].query, v[0].body, v[0].bodylen, v[0].settings, v[0].out,
				    err, errlen);
	if (!n)
		return 0;
	m = curl_multi_init();
	if (!m)
		return ap_errf(err, errlen, -ENOMEM, "out of memory (curl multi handle)");
	for (; ready < n && !ret; ready++) {
		ret = xfer_setup(h, &x[ready], &v[ready], err, errlen);
		if (ret)
			break;
		if (curl_multi_add_handle(m, x[ready].c) != CURLM_OK) {
			xfer_finish(h, &x[ready], CURLE_FAILED_INIT, e2, sizeof(e2));
			ret = ap_errf(err, errlen, -ENOMEM, "out of memory (curl multi)");
			break;
		}
	}
	/* every statement that was sent runs to its end, also when one fails: the caller
	 * treats the whole set as failed, and a half-read connection is not reused */
	while (curl_multi_perform(m, &running) == CURLM_OK && running)
		if (curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE)
			for (size_t i = 0; i < ready; i++)
				if (x[i].c == msg->easy_handle) {
					int r;

					curl_multi_remove_handle(m, x[i].c);
					r = xfer_finish(h, &x[i], msg->data.result,
							first < 0 && !ret ? err : e2,
							first < 0 && !ret ? errlen : sizeof(e2));
					if (r && first < 0 && !ret) {
						first = (int)i;
						ret = r;
					}
				}
	for (size_t i = 0; i < ready; i++)
		if (x[i].c) { /* not finished (the multi loop failed) */
			curl_multi_remove_handle(m, x[i].c);
			if (!ret)
				ret = ap_errf(err, errlen, -EIO,
					      "ClickHouse request failed: transfer not finished");
			xfer_finish(h, &x[i], CURLE_RECV_ERROR, e2, sizeof(e2));
		}
	curl_multi_cleanup(m);
	return ret;
}
