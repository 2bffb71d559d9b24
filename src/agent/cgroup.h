/* SPDX-License-Identifier: MIT */
/*
 * Where a process lives: its cgroup v2 path (/proc/PID/cgroup) as the labels `container_id`
 * (docker, containerd/CRI, CRI-O, podman, kubepods) and `unit` (its systemd service or
 * scope), for continuous mode's per-sample labels (docs/continuous.md).
 */
#ifndef AP_CGROUP_H
#define AP_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#define AP_CONTAINER_ID_LEN 64
#define AP_UNIT_MAX 256

/* From a cgroup v2 path ("/system.slice/docker-<64 hex>.scope"): the innermost container id
 * (64 lower-case hex digits, "" if none) and the innermost *.service or *.scope component
 * that is not a container's scope ("" if none). Pure. */
void ap_cgroup_parse(const char *path, char *container_id, size_t idlen, char *unit,
		     size_t unitlen);

/* The cgroup v2 path of /proc/PID/cgroup's "0::" line into buf. Returns 0 or -errno
 * (-ENOENT: no such process or no v2 line). The file is opened without following links and
 * read up to a bound. */
int ap_cgroup_read(int pid, char *buf, size_t len);

/* Labels per process, read once an interval while the process is there (an exited process
 * keeps what was read before). */
struct ap_cgroup_cache;
struct ap_cgroup_cache *ap_cgroup_cache_new(void);
void ap_cgroup_cache_free(struct ap_cgroup_cache *c);
/* Note that pid has samples in this interval: reads its cgroup unless read already. */
void ap_cgroup_cache_observe(struct ap_cgroup_cache *c, uint32_t pid);
/* Its labels (NULL: none known). The strings live until the next _observe or _rotate. */
void ap_cgroup_cache_get(struct ap_cgroup_cache *c, uint32_t pid, const char **container_id,
			 const char **unit);
/* The interval's end: forget processes that had no samples in it, re-read the others when
 * next observed. */
void ap_cgroup_cache_rotate(struct ap_cgroup_cache *c);
/* Processes whose cgroup could not be read (counted for the agent's stats). */
uint64_t ap_cgroup_cache_failures(const struct ap_cgroup_cache *c);

#endif
