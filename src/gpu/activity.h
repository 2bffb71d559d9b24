/* SPDX-License-Identifier: MIT */
/*
 * GPU-side activity from Aperture's CUPTI injection library (src/gpu/inject/,
 * libaperture_cupti.so, loaded by the CUDA driver through CUDA_INJECTION64_PATH): the loader
 * of the BPF programs on the library's USDT probes (src/bpf/gpu_activity.bpf.c), and the
 * decoding of what they send into the GPU model (AP_GPU_CALL_CORRELATION calls and struct
 * ap_gpu_activity records, on the agent's clock).
 *
 * The GPU collector owns one of these; discovery tells it which mapped files are the
 * injection library (ap_gpu_activity_is_inject_lib), and it attaches once per file.
 */
#ifndef AP_GPU_ACTIVITY_H
#define AP_GPU_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu_model.h"

struct ap_gpu_activity_src;

struct ap_gpu_activity_stats {
	uint64_t records;	   /* activity records received */
	uint64_t correlations;	   /* correlation records received */
	uint64_t ringbuf_drops;	   /* records the BPF side could not queue */
	uint64_t lib_dropped;	   /* records the injection library dropped (its own counters:
				    * full buffers, rate limit), as it last reported them */
	uint64_t attach_failed;	   /* library files whose probes could not be attached */
};

/* Open and load the BPF object (nothing attached yet). NULL with errno set and a reason in
 * err. */
struct ap_gpu_activity_src *ap_gpu_activity_open(char *err, size_t errlen);
void ap_gpu_activity_free(struct ap_gpu_activity_src *s);

/* Whether a mapped file is the injection library (by its ELF note/symbol, not only its
 * name). fd: an open descriptor of the file. */
bool ap_gpu_activity_is_inject_lib(int fd);

/* Attach the USDT probes of the injection library at `path` (as the agent can open it, e.g.
 * /proc/PID/map_files/...) for process `pid`. Attaching the same file twice is a no-op.
 * Returns 0 or -errno with a reason in err. */
int ap_gpu_activity_attach(struct ap_gpu_activity_src *s, int pid, const char *path, char *err,
			   size_t errlen);

/* The process exited: drop the attachments made for `pid` alone (an all-process attachment,
 * pid -1, stays). Returns how many were dropped. (Added after the pinned contract.) */
int ap_gpu_activity_detach_pid(struct ap_gpu_activity_src *s, int pid);

/* The ring buffer's epoll fd, and consuming what is ready into the model (non-blocking).
 * Returns 0 or -errno. */
int ap_gpu_activity_poll_fd(struct ap_gpu_activity_src *s);
int ap_gpu_activity_consume(struct ap_gpu_activity_src *s, struct ap_gpu_model *m);

void ap_gpu_activity_get_stats(const struct ap_gpu_activity_src *s,
			       struct ap_gpu_activity_stats *out);

#endif
