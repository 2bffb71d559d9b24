/* SPDX-License-Identifier: MIT */
/*
 * Finding CUDA code in processes, and attaching the GPU uprobes to it.
 *
 * Discovery reads /proc/PID/maps of one process (at its exec, or when the agent starts with
 * --pid) or of all of them (at start and at each periodic rescan, which catches libraries
 * dlopen'ed later: PyTorch loads libcudart long after exec). Each mapped file is opened
 * through /proc/PID/map_files (the mapped inode itself: no path a process could swap),
 * scanned once per (device, inode) (elf_scan.c), and handed to the caller by class:
 * probe it, or report it as not probeable (per process, once).
 *
 * Attaching (probes.c): the two generic programs on every function of a file that the
 * selected probe groups want, by file offset, with the function's cookie; the return probe
 * first, so that no entry is kept whose return is not seen.
 */
#ifndef AP_GPU_DISCOVER_H
#define AP_GPU_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "probes.h"

struct bpf_program;
struct ap_gpu_discovery;

/* A mapped file worth acting on. path: the file as the process names it (for messages);
 * open_path: a path that reaches the same inode now ("/proc/self/fd/N"), valid during the
 * call; fd: that descriptor. */
struct ap_gpu_found {
	int pid;
	const char *path;
	const char *open_path;
	int fd;
	dev_t dev;
	ino_t ino;
	const struct ap_gpu_scan *scan;
};

struct ap_gpu_discovery_ops {
	/* A file that defines probed functions, the first time it is seen (per pid with
	 * per_pid). Returns 0 or -errno (counted as an attach failure, reported by the caller). */
	int (*probe)(void *ctx, const struct ap_gpu_found *f);
	/* A CUDA file that cannot be probed, once per (pid, file). */
	void (*unprobeable)(void *ctx, int pid, const char *path, const char *reason);
	/* Optional: every mapped file seen for the first time, whatever its class (the caller
	 * checks e.g. for the CUPTI injection library). */
	void (*file)(void *ctx, const struct ap_gpu_found *f);
	/* Optional: the dynamic loader (scan->loader), the first time it is seen (per pid
	 * with per_pid). */
	void (*loader)(void *ctx, const struct ap_gpu_found *f);
};

struct ap_gpu_discovery_stats {
	uint64_t scans;		 /* process map reads */
	uint64_t files_scanned;	 /* distinct files whose ELF was read */
	uint64_t files_probed;	 /* ... handed to ops->probe */
	uint64_t probe_failed;	 /* ... for which it failed */
	uint64_t unprobeable;	 /* (pid, file) pairs reported as not probeable */
	uint64_t open_failed;	 /* files that could not be opened (gone, too big, not regular) */
	uint64_t files_limit;	 /* files not remembered: the table is full */
};

/* per_pid: probes are attached per process (--pid), else once per file for every process.
 * NULL with errno set. */
struct ap_gpu_discovery *ap_gpu_discovery_new(const struct ap_gpu_discovery_ops *ops, void *ctx,
					      bool per_pid);
void ap_gpu_discovery_free(struct ap_gpu_discovery *d);

/* Look at one process's mappings. Returns 0, -ESRCH (gone) or -errno. */
int ap_gpu_discovery_scan_pid(struct ap_gpu_discovery *d, int pid);
/* Look at every process (except `self`). Returns 0 or -errno (/proc unreadable). */
int ap_gpu_discovery_scan_all(struct ap_gpu_discovery *d, int self);
/* A file named by path (--gpu-lib, the standard CUDA library directories), for every
 * process: probed before any process maps it. Returns 0, -ENOENT, or -errno. */
int ap_gpu_discovery_add_path(struct ap_gpu_discovery *d, const char *path);
/* The process exited (or exec'd): forget which of its files were reported. */
void ap_gpu_discovery_forget_pid(struct ap_gpu_discovery *d, int pid);

void ap_gpu_discovery_get_stats(const struct ap_gpu_discovery *d,
				struct ap_gpu_discovery_stats *out);

/* --- attaching (probes.c) ------------------------------------------------------------ */

struct ap_gpu_probes;

struct ap_gpu_probes_stats {
	uint64_t files;		/* files attached to */
	uint64_t functions;	/* function entry (+ return) probes attached */
	uint64_t attach_failed; /* functions whose probes failed to attach */
	uint64_t skipped;	/* functions of probe groups not selected */
	uint64_t multi_links;	/* uprobe_multi links (all functions of a file in one) */
	uint64_t multi_unsupported; /* 1: the kernel has no uprobe_multi (one probe each) */
};

/* enter/exit: gpu.bpf.c's programs of a loaded object. groups: AP_GPU_GROUP_* bits. */
struct ap_gpu_probes *ap_gpu_probes_new(struct bpf_program *enter, struct bpf_program *exit,
					unsigned int groups);
void ap_gpu_probes_free(struct ap_gpu_probes *p);

/* uprobe_multi (Linux 6.6+): between open and load, give the multi programs their attach
 * type (0 or -errno); after load, hand them to the probes, which then attach each file with
 * two links and fall back to one probe per function where the kernel refuses. */
int ap_gpu_probes_prepare_multi(struct bpf_program *enter_multi, struct bpf_program *exit_multi);
void ap_gpu_probes_use_multi(struct ap_gpu_probes *p, struct bpf_program *enter_multi,
			     struct bpf_program *exit_multi);

/* Attach to the functions of `scan` in the file at `path` (for process pid, or -1: all).
 * Returns 0 when at least one function is attached (or none was wanted), else -errno with a
 * reason in err. */
int ap_gpu_probes_attach(struct ap_gpu_probes *p, const char *path, int pid,
			 const struct ap_gpu_scan *scan, char *err, size_t errlen);
/* Detach everything (the run's end: the final drains then see every call recorded). */
void ap_gpu_probes_detach(struct ap_gpu_probes *p);
void ap_gpu_probes_get_stats(const struct ap_gpu_probes *p, struct ap_gpu_probes_stats *out);

#endif
