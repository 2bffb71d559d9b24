// SPDX-License-Identifier: MIT
/*
 * debuginfod fetches on a worker thread, so that a slow or unreachable server never stalls the
 * agent's drains: the symbolizer queues a build-id when it loads a file without local debug
 * info, and picks the downloaded file up at a later lookup (or waits a bounded time for it).
 *
 * libdebuginfod takes its configuration from the environment only (in elfutils 0.188), so the
 * client sets DEBUGINFOD_URLS, DEBUGINFOD_CACHE_PATH and DEBUGINFOD_TIMEOUT once, before its
 * thread exists. A fetch is abandoned when it runs past the timeout or the client is freed
 * (through the progress callback, which libdebuginfod calls about once a second, or more
 * often while data arrives).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>
#include <elfutils/debuginfod.h>

#include "lib/cache_dir.h"
#include "lib/clock.h"
#include "symbol_internal.h"

#define MAX_QUEUED 1024

enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct req {
	struct req *next;
	char *path; /* downloaded file (in the cache), when it worked */
	int err;
	int state;
	char bid[2 * AP_BUILD_ID_MAX + 1];
};

struct ap_dbgd {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a request was queued, or stop */
	pthread_cond_t done; /* a request finished */
	pthread_t thread;
	struct req *head, *tail; /* every request not yet collected, oldest first */
	size_t nqueued;
	uint64_t timeout_ns;
	uint64_t deadline_ns; /* of the running fetch */
	bool started;
	bool stop;
};

/*
 * libdebuginfod is loaded with dlopen when a user opts in: linking it would map libcurl,
 * GnuTLS, Kerberos and friends (~5 MiB of resident pages) into every agent, fetching or not.
 */
static struct {
	debuginfod_client *(*begin)(void);
	void (*end)(debuginfod_client *);
	int (*find_debuginfo)(debuginfod_client *, const unsigned char *, int, char **);
	void (*set_progressfn)(debuginfod_client *, debuginfod_progressfn_t);
	void (*set_user_data)(debuginfod_client *, void *);
	void *(*get_user_data)(debuginfod_client *);
} dl;
static pthread_once_t dl_once = PTHREAD_ONCE_INIT;
static bool dl_ok;

static void dl_load(void)
{
	void *h = dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
	dl.begin = (debuginfod_client * (*)(void)) dlsym(h, "debuginfod_begin");
	dl.end = (void (*)(debuginfod_client *))dlsym(h, "debuginfod_end");
	dl.find_debuginfo = (int (*)(debuginfod_client *, const unsigned char *, int,
				     char **))dlsym(h, "debuginfod_find_debuginfo");
	dl.set_progressfn = (void (*)(debuginfod_client *, debuginfod_progressfn_t))dlsym(
		h, "debuginfod_set_progressfn");
	dl.set_user_data = (void (*)(debuginfod_client *, void *))dlsym(h, "debuginfod_set_user_data");
	dl.get_user_data = (void *(*)(debuginfod_client *))dlsym(h, "debuginfod_get_user_data");
	dl_ok = dl.begin && dl.end && dl.find_debuginfo && dl.set_progressfn && dl.set_user_data &&
		dl.get_user_data;
}


static int progress(debuginfod_client *dc, long a, long b)
{
	struct ap_dbgd *c = dl.get_user_data(dc);
	bool abort_it;

	pthread_mutex_lock(&c->lock);
	abort_it = c->stop || ap_mono_ns() > c->deadline_ns;
	pthread_mutex_unlock(&c->lock);
	return abort_it;
}

static struct req *next_queued(struct ap_dbgd *c)
{
	for (struct req *r = c->head; r; r = r->next)
		if (r->state == REQ_QUEUED)
			return r;
	return NULL;
}

static void *worker(void *arg)
{
	struct ap_dbgd *c = arg;
	debuginfod_client *dc = dl.begin();

	if (dc) {
		dl.set_user_data(dc, c);
		dl.set_progressfn(dc, progress);
	}
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct req *r;
		char *path = NULL;
		int fd;

		while (!c->stop && !(r = next_queued(c)))
			pthread_cond_wait(&c->work, &c->lock);
		if (c->stop)
			break;
		r->state = REQ_RUNNING;
		c->nqueued--;
		c->deadline_ns = ap_mono_ns() + c->timeout_ns;
		pthread_mutex_unlock(&c->lock);

		fd = dc ? dl.find_debuginfo(dc, (const unsigned char *)r->bid, 0, &path)
			: -ENOMEM;
		if (fd >= 0)
			close(fd);

		pthread_mutex_lock(&c->lock);
		r->err = fd >= 0 ? 0 : fd;
		r->path = fd >= 0 ? path : NULL;
		if (fd < 0)
			free(path);
		r->state = REQ_DONE;
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
	if (dc)
		dl.end(dc);
	return NULL;
}

struct ap_dbgd *ap_dbgd_new(const char *urls, const char *cache_dir, unsigned timeout_ms)
{
	char secs[16];
	struct ap_dbgd *c;

	if (!urls || !*urls || !cache_dir) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&dl_once, dl_load);
	if (!dl_ok) {
		errno = ENOSYS; /* libdebuginfod1 is not installed */
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	/* whole seconds of no progress, for libcurl's connect and low-speed limits */
	snprintf(secs, sizeof(secs), "%u", timeout_ms / 1000 ? timeout_ms / 1000 : 1);
	if (setenv(DEBUGINFOD_URLS_ENV_VAR, urls, 1) ||
	    setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, cache_dir, 1) ||
	    setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, secs, 1)) {
		free(c);
		return NULL;
	}
	c->timeout_ns = (uint64_t)timeout_ms * 1000000ULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, NULL);
	return c;
}

void ap_dbgd_free(struct ap_dbgd *c)
{
	struct req *r, *next;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	if (c->started)
		pthread_join(c->thread, NULL);
	for (r = c->head; r; r = next) {
		next = r->next;
		free(r->path);
		free(r);
	}
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int ap_dbgd_request(struct ap_dbgd *c, const char *build_id)
{
	struct req *r;
	int err = 0;

	/* hex only: libdebuginfod makes a cache path of it */
	if (strlen(build_id) >= sizeof(r->bid) || !ap_cache_valid_id(build_id, sizeof(r->bid) / 2))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	strcpy(r->bid, build_id);
	pthread_mutex_lock(&c->lock);
	if (c->nqueued >= MAX_QUEUED) {
		err = -ENOSPC;
		goto out;
	}
	if (!c->started) {
		/* libdebuginfod may block in DNS and connect: never on the caller's thread */
		if (pthread_create(&c->thread, NULL, worker, c)) {
			err = -EAGAIN;
			goto out;
		}
		c->started = true;
	}
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->nqueued++;
	r = NULL;
	pthread_cond_signal(&c->work);
out:
	pthread_mutex_unlock(&c->lock);
	free(r);
	return err;
}

static bool finished(const struct ap_dbgd *c, const char *build_id)
{
	for (const struct req *r = c->head; r; r = r->next)
		if (r->state != REQ_DONE && (!build_id || !strcmp(r->bid, build_id)))
			return false;
	return true;
}

bool ap_dbgd_wait(struct ap_dbgd *c, const char *build_id, uint64_t timeout_ns)
{
	uint64_t end = ap_mono_ns() + timeout_ns;
	bool ok;

	pthread_mutex_lock(&c->lock);
	while (!(ok = finished(c, build_id)) && c->started) {
		uint64_t now = ap_mono_ns();
		struct timespec ts;

		if (now >= end)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)((end - now) / 1000000000ULL);
		ts.tv_nsec += (long)((end - now) % 1000000000ULL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->done, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

void ap_dbgd_collect(struct ap_dbgd *c,
		     void (*cb)(void *ctx, const char *build_id, const char *path, int err),
		     void *ctx)
{
	struct req *done = NULL, **pp, *r;

	/* unlink the finished ones under the lock, call back without it */
	pthread_mutex_lock(&c->lock);
	c->tail = NULL;
	for (pp = &c->head; (r = *pp);) {
		if (r->state == REQ_DONE) {
			*pp = r->next;
			r->next = done;
			done = r;
		} else {
			c->tail = r;
			pp = &r->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while ((r = done)) {
		done = r->next;
		cb(ctx, r->bid, r->path, r->err);
		free(r->path);
		free(r);
	}
}
