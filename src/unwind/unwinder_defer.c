// SPDX-License-Identifier: MIT
/* Deferred samples: snapshots waiting for their process's tables (unwinder.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unwinder.h"

struct item {
	struct item *next;
	int pid;
	unsigned int age; /* flushes waited */
	struct ap_unwinder_snapshot snap;
	size_t payload_len;
	unsigned char data[]; /* payload, then the stack bytes */
};

struct ap_unwind_deferq {
	struct ap_unwinder *u;
	ap_unwind_replayed_fn fn;
	void *ctx;
	struct item *head, **tail;
	size_t n, max;
	/* the memory bound: max full-window snapshots (BPF cuts most to what the stack holds,
	 * so many more short ones fit) */
	size_t bytes, max_bytes;
	struct ap_unwind_deferq_stats st;
};

struct ap_unwind_deferq *ap_unwind_deferq_new(struct ap_unwinder *u, size_t max,
					      ap_unwind_replayed_fn fn, void *ctx)
{
	struct ap_unwind_deferq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->u = u;
	q->fn = fn;
	q->ctx = ctx;
	q->max = max * 8;
	q->max_bytes = max * (sizeof(struct item) + 1024 + 8192);
	q->tail = &q->head;
	return q;
}

static void replay(struct ap_unwind_deferq *q, const struct item *it, bool early)
{
	uint64_t ips[AP_UNWIND_MAX_FRAMES + 1] = { 0 };
	uint32_t status;
	size_t n = ap_unwinder_replay(q->u, it->pid, &it->snap, ips, AP_UNWIND_MAX_FRAMES, &status);

	q->st.replayed++;
	q->st.complete += status == AP_UNWIND_COMPLETE;
	q->st.early += early;
	q->fn(q->ctx, it->data, ips, n, status);
}

static void flush(struct ap_unwind_deferq *q, unsigned int max_age, bool aging);

int ap_unwind_deferq_push(struct ap_unwind_deferq *q, int pid, const void *payload,
			  size_t payload_len, const struct ap_unwinder_snapshot *s)
{
	struct item *it = malloc(sizeof(*it) + payload_len + s->stack_len);

	if (!it)
		return -ENOMEM;
	it->next = NULL;
	it->pid = pid;
	it->age = 0;
	it->payload_len = payload_len;
	memcpy(it->data, payload, payload_len);
	memcpy(it->data + payload_len, s->stack, s->stack_len);
	it->snap = *s;
	it->snap.stack = it->data + payload_len;
	if (q->n >= q->max || q->bytes >= q->max_bytes) /* make room: the ready ones go now */
		flush(q, UINT32_MAX, false);
	if (q->n >= q->max || q->bytes >= q->max_bytes) { /* bounded: unwind with what there is */
		replay(q, it, true);
		free(it);
		return 0;
	}
	*q->tail = it;
	q->tail = &it->next;
	q->n++;
	q->bytes += sizeof(*it) + payload_len + s->stack_len;
	return 0;
}

void ap_unwind_deferq_flush(struct ap_unwind_deferq *q, unsigned int max_age)
{
	if (q)
		flush(q, max_age, true);
}

/* Replay the ready items, and the others that waited max_age flushes (0: all); `aging`:
 * this is a periodic flush (the items waited one more). */
static void flush(struct ap_unwind_deferq *q, unsigned int max_age, bool aging)
{
	struct item **pp;

	/* A process that exited is symbolized for the last time in this drain: if its tables
	 * are still compiling, give the worker a moment. */
	for (struct item *it = aging ? q->head : NULL; it; it = it->next) {
		int state = ap_unwinder_pid_state(q->u, it->pid);

		if ((state & AP_UNWINDER_PID_EXITED) && (state & AP_UNWINDER_PID_PENDING)) {
			ap_unwinder_wait_idle(q->u, 100);
			break;
		}
	}
	for (pp = &q->head; *pp;) {
		struct item *it = *pp;
		int state = ap_unwinder_pid_state(q->u, it->pid);
		bool ready = (state & ~AP_UNWINDER_PID_EXITED) == AP_UNWINDER_PID_READY;

		it->age += aging;
		if (max_age && !ready && (!aging || !(state & AP_UNWINDER_PID_EXITED)) &&
		    it->age < max_age) {
			pp = &it->next;
			continue;
		}
		replay(q, it, !ready);
		*pp = it->next;
		q->n--;
		q->bytes -= sizeof(*it) + it->payload_len + it->snap.stack_len;
		free(it);
	}
	q->tail = pp;
}

void ap_unwind_deferq_free(struct ap_unwind_deferq *q)
{
	if (!q)
		return;
	while (q->head) {
		struct item *it = q->head;

		q->head = it->next;
		free(it);
	}
	free(q);
}

void ap_unwind_deferq_get_stats(const struct ap_unwind_deferq *q,
				struct ap_unwind_deferq_stats *out)
{
	if (q)
		*out = q->st;
	else
		memset(out, 0, sizeof(*out));
}
