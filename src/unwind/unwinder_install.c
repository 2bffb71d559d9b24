// SPDX-License-Identifier: MIT
/*
 * The installer thread: puts the worker's filled inner maps in their slots of
 * `unwind_files`. Every update of a map-in-map returns only after an RCU grace period (the
 * kernel makes sure no program still sees the old inner map), about 10 ms here. Done one
 * by one in the worker, that made a start-up with a hundred files wait a second for grace
 * periods alone, the compiling stalled meanwhile. Here the compiling goes on, and all the
 * maps that are ready go in one batch update: one grace period for the lot.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "unwinder_internal.h"

#define MAX_BATCH 64

void ap_uw_install_queue(struct ap_unwinder *u, struct install *in)
{
	in->next = NULL;
	if (!u->installs)
		u->installs_tail = &u->installs;
	*u->installs_tail = in;
	u->installs_tail = &in->next;
	pthread_cond_signal(&u->install_wake);
}

/* Put n maps in their slots; errs[i]: 0 or -errno per map. */
static void install_batch(struct ap_unwinder *u, struct install **v, uint32_t n, int *errs)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 keys[MAX_BATCH], count = n;
	int fds[MAX_BATCH];
	uint32_t done = 0;

	for (uint32_t i = 0; i < n; i++) {
		keys[i] = v[i]->slot;
		fds[i] = v[i]->map_fd;
		errs[i] = 0;
	}
	if (n > 1 && !bpf_map_update_batch(u->files_fd, keys, fds, &count, &opts))
		done = n;
	else if (n > 1)
		done = count <= n ? count : 0; /* a kernel without batches for it: one by one */
	for (uint32_t i = done; i < n; i++)
		if (bpf_map_update_elem(u->files_fd, &keys[i], &fds[i], BPF_ANY))
			errs[i] = -errno;
}

static void *installer_main(void *arg)
{
	struct ap_unwinder *u = arg;
	struct install *v[MAX_BATCH];
	uint64_t bytes[MAX_BATCH];
	int errs[MAX_BATCH];

	pthread_mutex_lock(&u->lock);
	for (;;) {
		uint64_t t0;
		uint32_t n = 0;

		if (!u->installs) {
			if (u->install_stop)
				break;
			pthread_cond_wait(&u->install_wake, &u->lock);
			continue;
		}
		while (u->installs && n < MAX_BATCH) {
			v[n++] = u->installs;
			u->installs = u->installs->next;
		}
		pthread_mutex_unlock(&u->lock);
		t0 = ap_mono_ns();
		install_batch(u, v, n, errs);
		for (uint32_t i = 0; i < n; i++) {
			bytes[i] = errs[i] ? 0 : ap_uw_map_memlock(v[i]->map_fd, v[i]->map_len + 1024);
			close(v[i]->map_fd); /* once installed, the outer map holds it */
		}
		pthread_mutex_lock(&u->lock);
		u->st.install_batches++;
		u->st.compile_ns += ap_mono_ns() - t0;
		for (uint32_t i = 0; i < n; i++) {
			struct install *in = v[i];
			uint32_t slot = in->slot;

			u->inflight -= in->reserved;
			if (errs[i]) {
				u->free_slots[u->nfree++] = slot;
				slot = AP_UNWIND_NO_FILE;
			}
			ap_uw_job_finish(u, in->t, &in->c, slot, bytes[i], in->cached, errs[i],
					 in->t0);
			free(in);
			if (--u->busy == 0)
				pthread_cond_broadcast(&u->idle);
		}
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int ap_uw_installer_start(struct ap_unwinder *u)
{
	int err = pthread_create(&u->installer, NULL, installer_main, u);

	if (err)
		return -err;
	u->installer_ok = true;
	return 0;
}

void ap_uw_installer_stop(struct ap_unwinder *u)
{
	if (!u->installer_ok)
		return;
	pthread_mutex_lock(&u->lock);
	u->install_stop = true;
	pthread_cond_broadcast(&u->install_wake);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->installer, NULL); /* it installs what the worker queued first */
	u->installer_ok = false;
}
