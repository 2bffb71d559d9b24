/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for libcupti.so.13 (a test double; SONAME libcupti.so.13, the toolkit's own
 * headers): the subset libaperture_cupti.so calls, behaving as CUPTI documents it, plus a
 * few mock_cupti_* entry points through which the harness (harness.c) plays the CUDA
 * runtime/driver: API calls that invoke the subscriber's callback, and GPU work that becomes
 * activity records in buffers obtained and completed through the registered callbacks.
 *
 * Buffer format (ours, opaque to the client as CUPTI's is): records back to back, each the
 * size of its kind's struct rounded up to 8; cuptiActivityGetNextRecord walks them by kind.
 *
 * Environment (for the tests' fault cases):
 *   MOCK_CUPTI_NO_TS_CALLBACK=1   cuptiActivityRegisterTimestampCallback fails (NOT_SUPPORTED)
 *   MOCK_CUPTI_REFUSE_KIND=N      cuptiActivityEnable(N) fails
 *   MOCK_CUPTI_DEFER_COMPLETE=1   a full buffer is completed only at the next flush (as CUPTI
 *                                 may: it asks for a new buffer before returning the old one)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cupti.h>

#include "mock_cupti.h"

#define MAX_CBID 2048
#define MAX_PENDING 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static CUpti_CallbackFunc sub_cb;
static void *sub_ud;
static int subscribed;
static unsigned char enabled[3][MAX_CBID]; /* [domain: 1 driver, 2 runtime][cbid] */
static unsigned char kind_on[128];
static CUpti_BuffersCallbackRequestFunc req_cb;
static CUpti_BuffersCallbackCompleteFunc comp_cb;
static CUpti_TimestampCallbackFunc ts_cb;
static _Atomic uint32_t next_corr = 1;
static _Atomic size_t dropped_pending;	 /* for cuptiActivityGetNumDroppedRecords */
static _Atomic uint64_t dropped_total;	 /* for the harness's check */
static _Atomic uint64_t records_total;

/* the buffer being filled */
static uint8_t *cur;
static size_t cur_size, cur_used;
/* full buffers not yet completed (MOCK_CUPTI_DEFER_COMPLETE) */
static struct {
	uint8_t *buf;
	size_t size, used;
} pending[MAX_PENDING];
static int npending;

static size_t rec_size(uint32_t kind)
{
	size_t s;

	switch (kind) {
	case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
		s = sizeof(CUpti_ActivityKernel10);
		break;
	case CUPTI_ACTIVITY_KIND_MEMCPY:
		s = sizeof(CUpti_ActivityMemcpy6);
		break;
	case CUPTI_ACTIVITY_KIND_MEMSET:
		s = sizeof(CUpti_ActivityMemset4);
		break;
	case CUPTI_ACTIVITY_KIND_MEMORY2:
		s = sizeof(CUpti_ActivityMemory4);
		break;
	case CUPTI_ACTIVITY_KIND_NAME: /* a kind the library does not forward */
		s = sizeof(CUpti_ActivityName);
		break;
	default:
		return 0;
	}
	return (s + 7) & ~(size_t)7;
}

static int env_on(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0");
}

/* ---- the CUPTI API subset ---- */

CUptiResult CUPTIAPI cuptiGetResultString(CUptiResult result, const char **str)
{
	if (!str)
		return CUPTI_ERROR_INVALID_PARAMETER;
	*str = result == CUPTI_SUCCESS ? "CUPTI_SUCCESS" : "CUPTI_ERROR (mock)";
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiSubscribe(CUpti_SubscriberHandle *subscriber, CUpti_CallbackFunc cb,
				    void *userdata)
{
	if (!subscriber)
		return CUPTI_ERROR_INVALID_PARAMETER;
	pthread_mutex_lock(&mu);
	if (subscribed) {
		pthread_mutex_unlock(&mu);
		return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
	}
	subscribed = 1;
	sub_cb = cb;
	sub_ud = userdata;
	pthread_mutex_unlock(&mu);
	*subscriber = (CUpti_SubscriberHandle)&subscribed;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiUnsubscribe(CUpti_SubscriberHandle subscriber)
{
	(void)subscriber;
	pthread_mutex_lock(&mu);
	subscribed = 0;
	sub_cb = NULL;
	pthread_mutex_unlock(&mu);
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle subscriber,
					 CUpti_CallbackDomain domain, CUpti_CallbackId cbid)
{
	if (subscriber != (CUpti_SubscriberHandle)&subscribed || domain < 1 || domain > 2 ||
	    cbid >= MAX_CBID)
		return CUPTI_ERROR_INVALID_PARAMETER;
	enabled[domain][cbid] = enable ? 1 : 0;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiEnableDomain(uint32_t enable, CUpti_SubscriberHandle subscriber,
				       CUpti_CallbackDomain domain)
{
	if (subscriber != (CUpti_SubscriberHandle)&subscribed || domain < 1 || domain > 2)
		return CUPTI_ERROR_INVALID_PARAMETER;
	memset(enabled[domain], enable ? 1 : 0, MAX_CBID);
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityEnable(CUpti_ActivityKind kind)
{
	const char *refuse = getenv("MOCK_CUPTI_REFUSE_KIND");

	if ((unsigned)kind >= sizeof(kind_on))
		return CUPTI_ERROR_INVALID_KIND;
	if (refuse && atoi(refuse) == (int)kind)
		return CUPTI_ERROR_NOT_COMPATIBLE;
	kind_on[kind] = 1;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityDisable(CUpti_ActivityKind kind)
{
	if ((unsigned)kind >= sizeof(kind_on))
		return CUPTI_ERROR_INVALID_KIND;
	kind_on[kind] = 0;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc r,
						    CUpti_BuffersCallbackCompleteFunc c)
{
	if (!r || !c)
		return CUPTI_ERROR_INVALID_PARAMETER;
	req_cb = r;
	comp_cb = c;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityRegisterTimestampCallback(CUpti_TimestampCallbackFunc f)
{
	if (env_on("MOCK_CUPTI_NO_TS_CALLBACK"))
		return CUPTI_ERROR_NOT_SUPPORTED;
	ts_cb = f;
	return CUPTI_SUCCESS;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CUPTI's own clock is CLOCK_REALTIME (measured on the real libcupti, shared/notes/gpu.md) */
CUptiResult CUPTIAPI cuptiGetTimestamp(uint64_t *timestamp)
{
	if (!timestamp)
		return CUPTI_ERROR_INVALID_PARAMETER;
	*timestamp = realtime_ns();
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityGetNextRecord(uint8_t *buffer, size_t valid,
						CUpti_Activity **record)
{
	uint8_t *p;
	size_t s;

	if (!buffer || !record)
		return CUPTI_ERROR_INVALID_PARAMETER;
	if (!*record) {
		p = buffer;
	} else {
		s = rec_size((*record)->kind);
		if (!s)
			return CUPTI_ERROR_INVALID_KIND;
		p = (uint8_t *)*record + s;
	}
	if (p + sizeof(CUpti_Activity) > buffer + valid)
		return CUPTI_ERROR_MAX_LIMIT_REACHED;
	s = rec_size(((CUpti_Activity *)p)->kind);
	if (!s || p + s > buffer + valid)
		return CUPTI_ERROR_INVALID_KIND;
	*record = (CUpti_Activity *)p;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityGetNumDroppedRecords(CUcontext ctx, uint32_t stream,
						       size_t *dropped)
{
	(void)ctx;
	(void)stream;
	if (!dropped)
		return CUPTI_ERROR_INVALID_PARAMETER;
	*dropped = atomic_exchange(&dropped_pending, 0);
	return CUPTI_SUCCESS;
}

/* Called with mu held. */
static void complete_locked(uint8_t *buf, size_t size, size_t used)
{
	if (buf && comp_cb)
		comp_cb(NULL, 0, buf, size, used);
}

CUptiResult CUPTIAPI cuptiActivityFlushAll(uint32_t flag)
{
	int i;

	(void)flag;
	pthread_mutex_lock(&mu);
	for (i = 0; i < npending; i++)
		complete_locked(pending[i].buf, pending[i].size, pending[i].used);
	npending = 0;
	if (cur && cur_used) {
		complete_locked(cur, cur_size, cur_used);
		cur = NULL;
		cur_used = cur_size = 0;
	}
	pthread_mutex_unlock(&mu);
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityFlushPeriod(uint32_t ms)
{
	(void)ms;
	return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiFinalize(void)
{
	return cuptiActivityFlushAll(0);
}

/* ---- the harness's side: play the driver ---- */

uint64_t mock_cupti_now(void)
{
	return ts_cb ? ts_cb() : realtime_ns();
}

int mock_cupti_api(uint32_t domain, uint32_t cbid, uint32_t site, uint32_t corr,
		   const char *func, const char *symbol)
{
	CUpti_CallbackData d;
	CUpti_CallbackFunc cb = sub_cb;

	if (!cb || domain < 1 || domain > 2 || cbid >= MAX_CBID || !enabled[domain][cbid])
		return 0;
	memset(&d, 0, sizeof(d));
	d.callbackSite = site ? CUPTI_API_EXIT : CUPTI_API_ENTER;
	d.functionName = func;
	d.symbolName = symbol;
	d.correlationId = corr;
	cb(sub_ud, (CUpti_CallbackDomain)domain, cbid, &d);
	return 1;
}

uint32_t mock_cupti_next_correlation(void)
{
	return atomic_fetch_add(&next_corr, 1);
}

/* Space for one record of `size` in the current buffer (mu held), asking for buffers as
 * CUPTI does; NULL when the client gave none (the record is dropped and counted). */
static uint8_t *reserve_locked(size_t size)
{
	uint8_t *b = NULL;
	size_t bs = 0, maxn = 0;

	if (cur && cur_used + size <= cur_size) {
		uint8_t *p = cur + cur_used;

		cur_used += size;
		return p;
	}
	if (cur) {
		if (env_on("MOCK_CUPTI_DEFER_COMPLETE") && npending < MAX_PENDING) {
			pending[npending].buf = cur;
			pending[npending].size = cur_size;
			pending[npending].used = cur_used;
			npending++;
		} else {
			complete_locked(cur, cur_size, cur_used);
		}
		cur = NULL;
		cur_size = cur_used = 0;
	}
	if (req_cb)
		req_cb(&b, &bs, &maxn);
	if (!b || bs < size)
		return NULL;
	cur = b;
	cur_size = bs;
	cur_used = size;
	return b;
}

int mock_cupti_record(const void *rec)
{
	uint32_t kind = ((const CUpti_Activity *)rec)->kind;
	size_t s = rec_size(kind);
	uint8_t *p;

	if (!s || kind >= sizeof(kind_on))
		return -1;
	if (!kind_on[kind] && kind != CUPTI_ACTIVITY_KIND_NAME)
		return 0;
	pthread_mutex_lock(&mu);
	p = reserve_locked(s);
	if (!p) {
		atomic_fetch_add(&dropped_pending, 1);
		atomic_fetch_add(&dropped_total, 1);
		pthread_mutex_unlock(&mu);
		return 0;
	}
	memset(p, 0, s);
	memcpy(p, rec, s);
	atomic_fetch_add(&records_total, 1);
	pthread_mutex_unlock(&mu);
	return 1;
}

uint64_t mock_cupti_dropped_total(void)
{
	return atomic_load(&dropped_total);
}

int mock_cupti_kind_enabled(uint32_t kind)
{
	return kind < sizeof(kind_on) && kind_on[kind];
}
