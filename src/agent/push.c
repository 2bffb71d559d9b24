// SPDX-License-Identifier: MIT
/*
 * The sender: one thread owns the HTTP client (libcurl, one handle: its connection is kept
 * alive between pushes) and the spool. The run loop hands it pushes and never waits for the
 * network. Order is oldest first: while the spool holds anything, or while a failure's
 * backoff runs, new pushes go to the spool behind the older ones (so a crash loses nothing
 * either), and the spool is retried from its oldest file.
 *
 * An answer decides a push's fate: 2xx delivered (also "duplicate": an earlier try of the
 * same push_id was stored and its answer lost); 408, 429, 5xx and transport errors are
 * retried (a 429's Retry-After is honoured; the other failures try the next --server first);
 * any other 4xx is refused for good: logged with the server's reason, counted, dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "lib/json_parse.h"
#include "lib/log.h"
#include "push.h"

#define PUSH_PATH "/api/v1/push"
#define MAX_ANSWER 8192 /* bytes of an answer's body kept (for its reason) */
#define MAX_CONNECT_MS 5000
#define MAX_RETRY_AFTER_MS (3600 * 1000ULL) /* a longer Retry-After is capped */
/* What waits in memory for the sender; beyond, the oldest queued push is dropped (counted):
 * the sender is stuck (disk full?) and recording must not grow without bound. */
#define MAX_QUEUED 64

enum outcome { SENT, RETRY, REFUSED };

struct queued {
	struct ap_push *push;
	struct queued *next;
};

struct ap_pusher {
	struct ap_pusher_config cfg;
	char **servers;
	char *auth_header; /* "Authorization: Bearer ..." or NULL; never logged */
	CURL *curl;
	struct ap_spool *spool;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queued *head, *tail;
	size_t nqueued;
	bool stopping, final_failed;
	uint64_t deadline; /* CLOCK_MONOTONIC ns, when stopping */
	struct ap_push_stats st;

	/* the sender's own */
	size_t server;	       /* the one that answered last */
	unsigned int failures; /* in a row: the backoff's exponent */
	uint64_t next_try;     /* CLOCK_MONOTONIC ns before which the spool waits */
	bool outage_logged;
	char answer[MAX_ANSWER + 1];
	size_t answer_len;
	uint64_t retry_after_ms;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct ap_pusher *p = ctx;
	size_t len = size * n, room = MAX_ANSWER - p->answer_len;

	memcpy(p->answer + p->answer_len, data, len < room ? len : room);
	p->answer_len += len < room ? len : room;
	p->answer[p->answer_len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct ap_pusher *p = ctx;
	size_t len = size * n;
	const char *name = "retry-after:";

	if (len > strlen(name) && strncasecmp(data, name, strlen(name)) == 0) {
		char buf[32];
		size_t vl = len - strlen(name);
		char *end;
		unsigned long long v;

		if (vl >= sizeof(buf))
			vl = sizeof(buf) - 1;
		memcpy(buf, data + strlen(name), vl);
		buf[vl] = '\0';
		errno = 0;
		v = strtoull(buf, &end, 10); /* delay-seconds; an HTTP date: the backoff instead */
		while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
			end++;
		if (!errno && end != buf && !*end)
			p->retry_after_ms =
			    v > MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS : v * 1000;
	}
	return len;
}

/* An attempt in flight when the shutdown's deadline passes is abandoned (the push goes back
 * to the spool), so that --shutdown-timeout bounds the exit. */
static int on_progress(void *ctx, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct ap_pusher *p = ctx;

	return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE) &&
	       mono_ns() >= __atomic_load_n(&p->deadline, __ATOMIC_ACQUIRE);
}

/* The server's reason: the JSON error's "message", else the start of the body, printable. */
static void answer_reason(struct ap_pusher *p, char *out, size_t len)
{
	char err[64];
	struct ap_json *j = ap_json_parse(p->answer, p->answer_len, err, sizeof(err));
	const struct ap_json *m = j ? ap_json_get(j, "message") : NULL;
	const char *s = m && m->type == AP_JSON_STRING ? m->str : p->answer;
	size_t o = 0;

	for (; *s && o + 1 < len && o < 300; s++)
		out[o++] = (unsigned char)*s < ' ' || *s == 0x7f ? ' ' : *s;
	out[o] = '\0';
	ap_json_free(j);
}

/* One try at one server. Returns the HTTP status, or -1 with a transport error in `why`. */
static long attempt(struct ap_pusher *p, const char *server, const struct ap_push *push,
		    uint64_t timeout_ms, char *why, size_t whylen)
{
	struct curl_slist *h = NULL, *t;
	char ct[128], *url;
	long code = -1;
	CURLcode rc;

	if (asprintf(&url, "%s" PUSH_PATH "?%s", server, push->query) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	snprintf(ct, sizeof(ct), "Content-Type: %s", push->content_type);
	t = curl_slist_append(h, ct);
	h = t ? t : h;
	t = t ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
	h = t ? t : h;
	if (t && p->auth_header)
		t = curl_slist_append(h, p->auth_header);
	if (!t) {
		curl_slist_free_all(h);
		free(url);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	h = t;
	p->answer_len = 0;
	p->answer[0] = '\0';
	p->retry_after_ms = 0;
	curl_easy_setopt(p->curl, CURLOPT_URL, url);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, push->body);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)push->body_len);
	curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < MAX_CONNECT_MS ? timeout_ms : MAX_CONNECT_MS));
	rc = curl_easy_perform(p->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);
	else
		snprintf(why, whylen, "%s", curl_easy_strerror(rc));
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(url);
	return code;
}

/* Every server once, from the last one that answered; what the push's fate is. */
static enum outcome send_push(struct ap_pusher *p, const struct ap_push *push, uint64_t timeout_ms)
{
	char why[256] = "", reason[320];
	size_t n = p->cfg.nservers;

	for (size_t k = 0; k < n; k++) {
		size_t i = (p->server + k) % n;
		uint64_t t0 = mono_ns();
		long code = attempt(p, p->servers[i], push, timeout_ms, why, sizeof(why));

		if (code > 0) {
			pthread_mutex_lock(&p->mu);
			p->st.last_latency_us = (mono_ns() - t0) / 1000;
			pthread_mutex_unlock(&p->mu);
		}
		if (code >= 200 && code < 300) {
			p->server = i;
			if (p->outage_logged)
				ap_warn("%s: %s delivers again", p->cfg.prog, p->servers[i]);
			p->outage_logged = false;
			return SENT;
		}
		if (code == 429) {
			p->server = i;
			ap_info("%s: %s is busy (429): push %s waits %llu ms", p->cfg.prog,
				p->servers[i], push->id, (unsigned long long)p->retry_after_ms);
			return RETRY;
		}
		if (code >= 400 && code < 500 && code != 408) {
			answer_reason(p, reason, sizeof(reason));
			ap_warn("%s: %s refused the %s push %s (%ld): %s; dropped", p->cfg.prog,
				p->servers[i], push->mode, push->id, code,
				reason[0] ? reason : "no reason given");
			return REFUSED;
		}
		if (code > 0) {
			answer_reason(p, reason, sizeof(reason));
			snprintf(why, sizeof(why), "HTTP %ld: %.200s", code, reason);
		}
		if (n > 1)
			ap_info("%s: push to %s failed (%s)%s", p->cfg.prog, p->servers[i], why,
				k + 1 < n ? ": trying the next server" : "");
	}
	/* the first failure of an outage is worth a warning; the retries are -v */
	if (!p->outage_logged)
		ap_warn("%s: push to %s failed (%s): spooling and retrying", p->cfg.prog,
			n > 1 ? "every --server" : p->servers[0], why);
	else if (n == 1)
		ap_info("%s: push to %s failed (%s)", p->cfg.prog, p->servers[0], why);
	p->outage_logged = true;
	return RETRY; /* a 503's Retry-After (the last server's) is honoured as a 429's */
}

static uint64_t jitter(uint64_t ms)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)mono_ns();
	/* full range of [ms/2, ms]: agents that failed together do not retry together */
	return ms / 2 + (ms / 2 + 1) * (uint64_t)(r % 1024) / 1024;
}

/* After a failure: when the spool may be tried again. Called with mu held. */
static void back_off(struct ap_pusher *p)
{
	uint64_t ms = p->cfg.backoff_min_ms;

	for (unsigned int i = 0; i < p->failures && ms < p->cfg.backoff_max_ms; i++)
		ms *= 2;
	if (ms > p->cfg.backoff_max_ms)
		ms = p->cfg.backoff_max_ms;
	if (p->failures < 64)
		p->failures++;
	ms = p->retry_after_ms ? p->retry_after_ms : jitter(ms);
	p->next_try = mono_ns() + ms * 1000000ULL;
	ap_debug("%s: next try in %llu ms", p->cfg.prog, (unsigned long long)ms);
}

static void refresh_spool_stats(struct ap_pusher *p)
{
	p->st.spool_bytes = ap_spool_bytes(p->spool);
	p->st.spool_files = ap_spool_count(p->spool);
}

/* Into the spool (called without mu). */
static void spool_push(struct ap_pusher *p, struct ap_push *push)
{
	uint64_t dropped = 0;
	int err = ap_spool_put(p->spool, push, &dropped);

	if (err)
		ap_warn("%s: cannot spool the %s push %s: %s; dropped", p->cfg.prog, push->mode,
			push->id, strerror(-err));
	if (dropped)
		ap_warn("%s: spool full (--spool-max): dropped the %llu oldest pushes", p->cfg.prog,
			(unsigned long long)dropped);
	pthread_mutex_lock(&p->mu);
	p->st.dropped += dropped + (err != 0);
	p->st.spooled += err == 0;
	refresh_spool_stats(p);
	pthread_mutex_unlock(&p->mu);
	ap_push_free(push);
}

/* This attempt's time limit: the configured one, within the shutdown's deadline. 0: none
 * left. Called with mu held. */
static uint64_t attempt_ms(struct ap_pusher *p)
{
	uint64_t now = mono_ns(), left;

	if (!p->stopping)
		return p->cfg.timeout_ms;
	if (now >= p->deadline)
		return 0;
	left = (p->deadline - now) / 1000000;
	return left < p->cfg.timeout_ms ? (left ? left : 1) : p->cfg.timeout_ms;
}

/* The oldest spooled push, once. Called with mu held; returns with it held. */
static void try_spool(struct ap_pusher *p, uint64_t ms)
{
	struct ap_push *push = NULL;
	uint64_t dropped = 0;
	enum outcome o;
	int err;

	pthread_mutex_unlock(&p->mu);
	err = ap_spool_oldest(p->spool, &push, &dropped);
	o = push ? send_push(p, push, ms) : RETRY;
	if (push && o != RETRY)
		ap_spool_remove(p->spool, push);
	pthread_mutex_lock(&p->mu);
	p->st.dropped += dropped;
	if (push) {
		p->st.retried++;
		p->st.ok += o == SENT;
		p->st.rejected += o == REFUSED;
		if (o == RETRY) {
			p->st.failed++;
			back_off(p);
			p->final_failed = p->stopping;
		} else {
			p->failures = 0;
			p->next_try = 0;
		}
	} else if (err) {
		back_off(p); /* no memory to read it: later */
	}
	refresh_spool_stats(p);
	ap_push_free(push);
}

/* A new push, straight from the run loop. Called with mu held; returns with it held. */
static void try_new(struct ap_pusher *p, struct ap_push *push, uint64_t ms)
{
	enum outcome o;

	pthread_mutex_unlock(&p->mu);
	o = send_push(p, push, ms);
	pthread_mutex_lock(&p->mu);
	p->st.ok += o == SENT;
	p->st.rejected += o == REFUSED;
	if (o != RETRY) {
		p->failures = 0;
		ap_push_free(push);
		return;
	}
	p->st.failed++;
	back_off(p);
	p->final_failed = p->stopping;
	pthread_mutex_unlock(&p->mu);
	spool_push(p, push);
	pthread_mutex_lock(&p->mu);
}

static struct ap_push *pop(struct ap_pusher *p)
{
	struct queued *q = p->head;
	struct ap_push *push;

	if (!q)
		return NULL;
	p->head = q->next;
	if (!p->head)
		p->tail = NULL;
	p->nqueued--;
	push = q->push;
	free(q);
	return push;
}

static void wait_until(struct ap_pusher *p, uint64_t when)
{
	struct timespec ts;

	if (when == UINT64_MAX) {
		pthread_cond_wait(&p->cv, &p->mu);
		return;
	}
	ts.tv_sec = (time_t)(when / 1000000000ULL);
	ts.tv_nsec = (long)(when % 1000000000ULL);
	pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static void *sender(void *arg)
{
	struct ap_pusher *p = arg;
	struct ap_push *push;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		uint64_t now = mono_ns(), ms;
		bool spooled = ap_spool_count(p->spool) > 0, waiting = now < p->next_try;

		if (p->stopping && (p->final_failed || now >= p->deadline))
			break;
		/* behind older pushes or in a backoff: in line, on disk */
		if (p->head && (spooled || waiting)) {
			push = pop(p);
			pthread_mutex_unlock(&p->mu);
			spool_push(p, push);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (spooled && !waiting) {
			ms = attempt_ms(p);
			if (!ms)
				break;
			try_spool(p, ms);
			continue;
		}
		if (p->head) {
			ms = attempt_ms(p);
			if (!ms)
				break;
			try_new(p, pop(p), ms);
			continue;
		}
		if (p->stopping)
			break; /* all delivered */
		wait_until(p, spooled ? p->next_try : UINT64_MAX);
	}
	/* what could not be delivered by the deadline stays for the next start */
	while ((push = pop(p))) {
		pthread_mutex_unlock(&p->mu);
		spool_push(p, push);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void ap_pusher_enqueue(struct ap_pusher *p, struct ap_push *push)
{
	struct queued *q = calloc(1, sizeof(*q));
	struct ap_push *old = NULL;

	pthread_mutex_lock(&p->mu);
	if (!q) {
		p->st.dropped++;
		pthread_mutex_unlock(&p->mu);
		ap_push_free(push);
		return;
	}
	if (p->nqueued == MAX_QUEUED) {
		old = pop(p);
		p->st.dropped++;
	}
	q->push = push;
	if (p->tail)
		p->tail->next = q;
	else
		p->head = q;
	p->tail = q;
	p->nqueued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (old) {
		ap_warn("%s: the sender is behind by %d pushes: dropped the oldest (%s)",
			p->cfg.prog, MAX_QUEUED, old->id);
		ap_push_free(old);
	}
}

void ap_pusher_get_stats(struct ap_pusher *p, struct ap_push_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	pthread_mutex_unlock(&p->mu);
}

void ap_pusher_shutdown(struct ap_pusher *p, uint64_t timeout_ns)
{
	if (!p || !p->started)
		return;
	pthread_mutex_lock(&p->mu);
	__atomic_store_n(&p->deadline, mono_ns() + timeout_ns, __ATOMIC_RELEASE);
	__atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
	p->next_try = 0; /* one more try of the spool, whatever the backoff said */
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	p->started = false;
}

static int setup_curl(struct ap_pusher *p)
{
	p->curl = curl_easy_init();
	if (!p->curl)
		return -ENOMEM;
	curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L); /* a thread of a signal-handling agent */
	curl_easy_setopt(p->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(p->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(p->curl, CURLOPT_USERAGENT, "aperture-agent");
	curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(p->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(p->curl, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(p->curl, CURLOPT_NOPROGRESS, 0L);
	if (p->cfg.ca_file)
		curl_easy_setopt(p->curl, CURLOPT_CAINFO, p->cfg.ca_file);
	return 0;
}

int ap_pusher_start(struct ap_pusher *p, char *err, size_t len)
{
	sigset_t block, old;
	int e;

	if (p->started)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || setup_curl(p)) {
		snprintf(err, len, "out of memory (initialising libcurl)");
		return -ENOMEM;
	}
	/* SIGINT/SIGTERM go to the run loop, whose poll() they cut short */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	e = -pthread_create(&p->thread, NULL, sender, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		snprintf(err, len, "cannot start the sender thread: %s", strerror(-e));
		return e;
	}
	p->started = true;
	return 0;
}

struct ap_pusher *ap_pusher_new(const struct ap_pusher_config *cfg, char *err, size_t len)
{
	struct ap_pusher *p = calloc(1, sizeof(*p));
	int e = -ENOMEM;

	if (!p) {
		snprintf(err, len, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->cfg = *cfg;
	pthread_mutex_init(&p->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	p->servers = calloc(cfg->nservers, sizeof(*p->servers));
	if (!p->servers)
		goto oom;
	for (size_t i = 0; i < cfg->nservers; i++)
		if (!(p->servers[i] = strdup(cfg->servers[i])))
			goto oom;
	if (cfg->token && asprintf(&p->auth_header, "Authorization: Bearer %s", cfg->token) < 0) {
		p->auth_header = NULL;
		goto oom;
	}
	p->cfg.token = NULL; /* only the header keeps it */
	p->spool = ap_spool_open(cfg->spool_dir, cfg->spool_max, err, len);
	if (!p->spool) {
		e = -errno;
		goto fail;
	}
	ap_spool_trim(p->spool, &p->st.dropped);
	if (p->st.dropped)
		ap_warn("%s: the spool is over --spool-max: dropped its %llu oldest pushes",
			p->cfg.prog, (unsigned long long)p->st.dropped);
	refresh_spool_stats(p);
	if (!cfg->defer_start && (e = ap_pusher_start(p, err, len)))
		goto fail;
	return p;
oom:
	snprintf(err, len, "out of memory");
fail:
	ap_pusher_free(p);
	errno = -e;
	return NULL;
}

void ap_pusher_free(struct ap_pusher *p)
{
	struct ap_push *push;

	if (!p)
		return;
	ap_pusher_shutdown(p, 0);
	while ((push = pop(p)))
		ap_push_free(push);
	ap_spool_close(p->spool);
	if (p->curl)
		curl_easy_cleanup(p->curl);
	for (size_t i = 0; p->servers && i < p->cfg.nservers; i++)
		free(p->servers[i]);
	free(p->servers);
	if (p->auth_header) {
		explicit_bzero(p->auth_header, strlen(p->auth_header));
		free(p->auth_header);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
