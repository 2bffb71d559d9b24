// SPDX-License-Identifier: MIT
/* Finding CUDA code in processes (discover.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "discover.h"
#include "lib/proc_maps.h"
#include "lib/safe_open.h"

/* Larger ELF files are not read (libtorch_cuda.so is ~1.5 GiB: still under it). */
#define MAX_ELF_BYTES (4ULL << 30)
/* Distinct files remembered; beyond, a file is scanned again at each visit (counted). */
#define MAX_FILES 65536
/* (pid, file) pairs reported as not probeable. */
#define MAX_REPORTED 65536

struct file_entry {
	dev_t dev;
	ino_t ino;
	int pid; /* per_pid: the process it was attached for; else -1 */
	enum ap_gpu_file_class cls;
	bool attached; /* probes (or the loader hook) attached: per pid with per_pid */
	char reason[256];
};

struct reported {
	int pid;
	dev_t dev;
	ino_t ino;
};

struct ap_gpu_discovery {
	struct ap_gpu_discovery_ops ops;
	void *ctx;
	bool per_pid;
	struct file_entry *files;
	size_t nfiles, cap;
	struct reported *rep;
	size_t nrep, repcap;
	struct ap_gpu_discovery_stats st;
};

struct ap_gpu_discovery *ap_gpu_discovery_new(const struct ap_gpu_discovery_ops *ops, void *ctx,
					      bool per_pid)
{
	struct ap_gpu_discovery *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ops = *ops;
	d->ctx = ctx;
	d->per_pid = per_pid;
	return d;
}

void ap_gpu_discovery_free(struct ap_gpu_discovery *d)
{
	if (!d)
		return;
	free(d->files);
	free(d->rep);
	free(d);
}

/* Files are few (a process maps tens to hundreds): a linear table is enough. */
static struct file_entry *find_file(struct ap_gpu_discovery *d, dev_t dev, ino_t ino, int pid)
{
	for (size_t i = 0; i < d->nfiles; i++) {
		struct file_entry *f = &d->files[i];

		if (f->dev == dev && f->ino == ino && (f->pid == -1 || f->pid == pid || !f->attached))
			return f;
	}
	return NULL;
}

static struct file_entry *add_file(struct ap_gpu_discovery *d)
{
	if (d->nfiles == MAX_FILES) {
		d->st.files_limit++;
		return NULL;
	}
	if (d->nfiles == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct file_entry *n = realloc(d->files, cap * sizeof(*n));

		if (!n)
			return NULL;
		d->files = n;
		d->cap = cap;
	}
	memset(&d->files[d->nfiles], 0, sizeof(d->files[0]));
	return &d->files[d->nfiles++];
}

static void report_unprobeable(struct ap_gpu_discovery *d, int pid, const char *path,
			       const struct file_entry *f)
{
	for (size_t i = 0; i < d->nrep; i++)
		if (d->rep[i].pid == pid && d->rep[i].dev == f->dev && d->rep[i].ino == f->ino)
			return;
	if (d->nrep == d->repcap && d->nrep < MAX_REPORTED) {
		size_t cap = d->repcap ? d->repcap * 2 : 64;
		struct reported *n = realloc(d->rep, cap * sizeof(*n));

		if (n) {
			d->rep = n;
			d->repcap = cap;
		}
	}
	if (d->nrep < d->repcap)
		d->rep[d->nrep++] = (struct reported){ pid, f->dev, f->ino };
	d->st.unprobeable++;
	if (d->ops.unprobeable)
		d->ops.unprobeable(d->ctx, pid, path, f->reason);
}

/* One opened file: scan, classify, act. */
static void visit_fd(struct ap_gpu_discovery *d, int pid, const char *path, int fd,
		     const struct stat *st)
{
	struct ap_gpu_scan scan;
	struct file_entry *f;
	char open_path[48];
	struct ap_gpu_found found = {
		.pid = pid,
		.path = path,
		.open_path = open_path,
		.fd = fd,
		.dev = st->st_dev,
		.ino = st->st_ino,
		.scan = &scan,
	};

	snprintf(open_path, sizeof(open_path), "/proc/self/fd/%d", fd);
	if (ap_gpu_scan_fd(fd, &scan))
		return;
	d->st.files_scanned++;
	f = add_file(d);
	if (f) {
		f->dev = st->st_dev;
		f->ino = st->st_ino;
		f->pid = d->per_pid && pid > 0 ? pid : -1;
		f->cls = scan.cls;
		f->attached = scan.cls == AP_GPU_FILE_PROBE || scan.loader;
		snprintf(f->reason, sizeof(f->reason), "%s", scan.reason);
	}
	if (d->ops.file)
		d->ops.file(d->ctx, &found);
	if (scan.loader && d->ops.loader)
		d->ops.loader(d->ctx, &found);
	if (scan.cls == AP_GPU_FILE_PROBE) {
		d->st.files_probed++;
		if (d->ops.probe(d->ctx, &found))
			d->st.probe_failed++;
	} else if (scan.cls == AP_GPU_FILE_UNPROBEABLE && f && pid > 0) {
		report_unprobeable(d, pid, path, f);
	}
	ap_gpu_scan_free(&scan);
}

struct scan_ctx {
	struct ap_gpu_discovery *d;
	int pid;
};

static int visit_mapping(const struct ap_maps_entry *e, void *arg)
{
	struct scan_ctx *sc = arg;
	struct ap_gpu_discovery *d = sc->d;
	struct file_entry *f;
	char mf[96];
	struct stat st;
	int fd;

	/* code: executables and libraries (their text is mapped executable) */
	if (e->perms[2] != 'x' || !e->path[0] || e->path[0] != '/' || !e->inode)
		return 0;
	f = find_file(d, (dev_t)makedev(e->dev_major, e->dev_minor), (ino_t)e->inode, sc->pid);
	if (f) {
		if (f->cls == AP_GPU_FILE_UNPROBEABLE)
			report_unprobeable(d, sc->pid, e->path, f);
		return 0;
	}
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", sc->pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	fd = ap_open_untrusted(AT_FDCWD, mf, AP_OPEN_MAGIC, MAX_ELF_BYTES, &st);
	if (fd < 0) {
		d->st.open_failed++;
		return 0;
	}
	/* the maps line's device numbers and the inode's agree unless the file was replaced */
	if (!find_file(d, st.st_dev, st.st_ino, sc->pid))
		visit_fd(d, sc->pid, e->path, fd, &st);
	close(fd);
	return 0;
}

int ap_gpu_discovery_scan_pid(struct ap_gpu_discovery *d, int pid)
{
	struct scan_ctx sc = { d, pid };

	d->st.scans++;
	return ap_maps_read(pid, visit_mapping, &sc);
}

int ap_gpu_discovery_scan_all(struct ap_gpu_discovery *d, int self)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		ap_gpu_discovery_scan_pid(d, (int)pid); /* gone meanwhile: fine */
	}
	closedir(dir);
	return 0;
}

int ap_gpu_discovery_add_path(struct ap_gpu_discovery *d, const char *path)
{
	struct stat st;
	int fd;

	/* a path the user or the standard CUDA layout names: symlinks followed (libcudart.so.13
	 * is one), but the file must be root's, as a system library is */
	fd = ap_open_untrusted(AT_FDCWD, path, 0, MAX_ELF_BYTES, &st);
	if (fd < 0) {
		if (fd != -ENOENT)
			d->st.open_failed++;
		return fd;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	if (!find_file(d, st.st_dev, st.st_ino, -1))
		visit_fd(d, -1, path, fd, &st);
	close(fd);
	return 0;
}

void ap_gpu_discovery_forget_pid(struct ap_gpu_discovery *d, int pid)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nrep; i++)
		if (d->rep[i].pid != pid)
			d->rep[k++] = d->rep[i];
	d->nrep = k;
	/* per-process attachments end with the process (the kernel drops them) */
	k = 0;
	for (size_t i = 0; i < d->nfiles; i++)
		if (!(d->per_pid && d->files[i].pid == pid))
			d->files[k++] = d->files[i];
	d->nfiles = k;
}

void ap_gpu_discovery_get_stats(const struct ap_gpu_discovery *d,
				struct ap_gpu_discovery_stats *out)
{
	*out = d->st;
}
